//! `sim truth-models`: a models folder made from the world's hidden truth,
//! to measure what botify's recommenders lose to learning.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Args;

use analysis::train::item2vec::{Embedding, NeighbourLists};
use analysis::train::{write_embedding, write_listen_curve};
use botify::models::{ListenCurve, EMBEDDING_FILE, LISTEN_CURVE_FILE};

use crate::world::World;

/// Write `embedding.jsonl` and `listen_curve.json` from the world's true
/// track embeddings, for diagnosis only.
///
/// A learned recommender's gap to `item_oracle` has two parts: how it uses
/// its vectors, and how far its vectors are from the truth. Serving the same
/// recommender from these files (`sim run --in-process --models DIR`) with
/// the true vectors separates the two. The files break the rule that botify
/// never sees the simulator's embeddings: never serve them in an experiment.
///
/// The neighbour lists are the true nearest tracks, capped per artist as
/// `analysis train` caps its own; the listen curve is the population's mean
/// consume bias, sharpness and artist discount (docs/user-model.md).
#[derive(Debug, Args)]
pub struct TruthModelsArgs {
    /// The world to read.
    #[arg(long, default_value = "data/world")]
    pub world: PathBuf,
    /// Folder to write the two files to (created if missing; other model
    /// files in it are left as they are).
    #[arg(long)]
    pub out: PathBuf,
    /// Neighbours kept per track.
    #[arg(long, default_value_t = NeighbourLists::default().count)]
    pub neighbours: usize,
    /// At most this many neighbours of one artist (0: no cap).
    #[arg(long, default_value_t = NeighbourLists::default().per_artist)]
    pub per_artist: usize,
}

pub fn run(args: TruthModelsArgs) -> Result<()> {
    let world = World::load(&args.world)?;
    let lists = NeighbourLists {
        count: args.neighbours,
        per_artist: args.per_artist,
    };
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let (embedding, curve) = truth_models(&world, lists, threads);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    write_embedding(&args.out.join(EMBEDDING_FILE), &embedding)?;
    write_listen_curve(&args.out.join(LISTEN_CURVE_FILE), &curve)?;
    eprintln!(
        "wrote the true vectors of {} tracks, {} neighbours each, and the listen curve \
         (bias {:.3}, sharpness {:.2}, discount {:.3}) to {}",
        embedding.tracks(),
        lists.count,
        curve.bias,
        curve.sharpness,
        curve.discount,
        args.out.display()
    );
    Ok(())
}

/// The true vectors with their neighbour lists, and the population's mean
/// listen curve.
fn truth_models(world: &World, lists: NeighbourLists, threads: usize) -> (Embedding, ListenCurve) {
    let tracks = world.num_tracks() as u32;
    let vectors: Vec<f32> = (0..tracks)
        .flat_map(|t| world.embedding(t).iter().copied())
        .collect();
    let artist_of: Vec<u32> = (0..tracks).map(|t| world.artist_of(t)).collect();
    let embedding = Embedding::of_unit_vectors(vectors, world.dim(), &artist_of, lists, threads);
    let users = world.users();
    let mean = |of: fn(&crate::world::User) -> f64| {
        (users.iter().map(of).sum::<f64>() / users.len().max(1) as f64) as f32
    };
    let curve = ListenCurve {
        bias: mean(|u| u.consume_bias),
        sharpness: mean(|u| u.consume_sharpness),
        discount: mean(|u| u.artist_discount_gamma),
    };
    (embedding, curve)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{dot, generate, WorldParams};

    #[test]
    fn lists_the_truly_nearest_tracks_within_the_artist_cap_and_the_mean_curve() {
        let params = WorldParams {
            tracks: 300,
            users: 40,
            seed: 5,
            ..WorldParams::default()
        };
        let world = World::new(generate(&params, false).unwrap()).unwrap();
        let lists = NeighbourLists {
            count: 12,
            per_artist: 3,
        };
        let (embedding, curve) = truth_models(&world, lists, 2);
        let cosine = |a: u32, b: u32| dot(world.embedding(a), world.embedding(b));
        for track in [0, 17, 299] {
            assert_eq!(embedding.vector(track), world.embedding(track));
            let listed = &embedding.neighbours[track as usize];
            assert_eq!(listed.len(), 12);
            assert!(!listed.contains(&track));
            assert!(listed
                .windows(2)
                .all(|w| cosine(track, w[0]) >= cosine(track, w[1])));
            for &n in listed {
                let same = listed
                    .iter()
                    .filter(|&&m| world.artist_of(m) == world.artist_of(n));
                assert!(same.count() <= 3, "artist cap");
            }
            // No track left out is closer than the last listed, unless its
            // artist is already at the cap.
            let last = cosine(track, listed[11]);
            for other in (0..300).filter(|t| *t != track && !listed.contains(t)) {
                let capped = listed
                    .iter()
                    .filter(|&&m| world.artist_of(m) == world.artist_of(other))
                    .count()
                    == 3;
                assert!(capped || cosine(track, other) <= last, "{other} left out");
            }
        }
        let users = world.users();
        let mean_bias = users.iter().map(|u| u.consume_bias).sum::<f64>() / users.len() as f64;
        assert!((f64::from(curve.bias) - mean_bias).abs() < 1e-6);
        assert!(curve.sharpness > 0.0 && (0.0..=1.0).contains(&curve.discount));
    }
}

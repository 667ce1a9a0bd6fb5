//! `sim truth-models`: a models folder made from the world's hidden truth,
//! to measure what botify's recommenders lose to learning.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{ensure, Context as _, Result};
use clap::Args;

use analysis::train::item2vec::{Embedding, NeighbourLists};
use analysis::train::{write_embedding, write_listen_curve};
use botify::models::{EmbeddingIndex, ListenCurve, Models, EMBEDDING_FILE, LISTEN_CURVE_FILE};

use crate::world::{dot, World};

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
///
/// Three options split the gap further: `--lists-from` serves the true
/// vectors over a learned folder's neighbour lists (the candidates it
/// offers), `--vectors-from` a learned folder's vectors and listen curve
/// over the true lists (how it scores them), and `--artist-level` gives
/// every track its artist's mean true direction (an embedding that knows
/// where each artist lies and nothing of its tracks).
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
    /// Keep the neighbour lists of this learned models folder (`analysis
    /// train --out`); the vectors stay true.
    #[arg(long, value_name = "DIR", conflicts_with = "vectors_from")]
    pub lists_from: Option<PathBuf>,
    /// Keep the vectors and the listen curve of this learned models folder;
    /// the neighbour lists stay true.
    #[arg(long, value_name = "DIR", conflicts_with = "artist_level")]
    pub vectors_from: Option<PathBuf>,
    /// Each track's vector is its artist's mean true direction (the lists
    /// are still the true tracks' nearest, unless --lists-from).
    #[arg(long)]
    pub artist_level: bool,
}

pub fn run(args: TruthModelsArgs) -> Result<()> {
    let world = World::load(&args.world)?;
    let lists = NeighbourLists {
        count: args.neighbours,
        per_artist: args.per_artist,
    };
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let true_lists = args.lists_from.is_none().then_some(lists);
    let (mut embedding, mut curve) = truth_models(&world, true_lists, threads, args.artist_level);
    let learned = |dir: &PathBuf| -> Result<Models> {
        let models = Models::load(dir)
            .with_context(|| format!("cannot read the models in {}", dir.display()))?;
        ensure!(
            !models.embedding.is_empty(),
            "{} holds no {EMBEDDING_FILE}: expected the --out folder of `analysis train`",
            dir.display()
        );
        Ok(models)
    };
    if let Some(dir) = &args.lists_from {
        keep_lists(&mut embedding, &learned(dir)?.embedding);
    }
    if let Some(dir) = &args.vectors_from {
        let models = learned(dir)?;
        keep_vectors(&mut embedding, &models.embedding)?;
        curve = models.listen_curve;
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    write_embedding(&args.out.join(EMBEDDING_FILE), &embedding)?;
    write_listen_curve(&args.out.join(LISTEN_CURVE_FILE), &curve)?;
    let vectors = match (&args.vectors_from, args.artist_level) {
        (Some(dir), _) => format!("the vectors of {}", dir.display()),
        (None, true) => "the artists' true directions".to_string(),
        (None, false) => "the true vectors".to_string(),
    };
    let lists = match &args.lists_from {
        Some(dir) => format!("the neighbour lists of {}", dir.display()),
        None => format!("the true {} neighbours", lists.count),
    };
    eprintln!(
        "wrote {vectors} of {} tracks, {lists}, and the listen curve \
         (bias {:.3}, sharpness {:.2}, discount {:.3}) to {}",
        embedding.tracks(),
        curve.bias,
        curve.sharpness,
        curve.discount,
        args.out.display()
    );
    Ok(())
}

/// The true vectors (or, at `artist_level`, each artist's mean direction)
/// with the true tracks' neighbour lists, and the population's mean listen
/// curve. Without `lists` every list is left empty, for a caller that
/// brings its own: the scan for the true ones is the costly part.
fn truth_models(
    world: &World,
    lists: Option<NeighbourLists>,
    threads: usize,
    artist_level: bool,
) -> (Embedding, ListenCurve) {
    let tracks = world.num_tracks() as u32;
    let vectors: Vec<f32> = (0..tracks)
        .flat_map(|t| world.embedding(t).iter().copied())
        .collect();
    let mut embedding = match lists {
        Some(lists) => {
            let artist_of: Vec<u32> = (0..tracks).map(|t| world.artist_of(t)).collect();
            Embedding::of_unit_vectors(vectors, world.dim(), &artist_of, lists, threads)
        }
        None => Embedding {
            dim: world.dim(),
            vectors,
            neighbours: vec![Vec::new(); tracks as usize],
        },
    };
    if artist_level {
        embedding.vectors = artist_directions(world);
    }
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

/// Row `t`: the unit mean of the true vectors of `t`'s artist's tracks.
fn artist_directions(world: &World) -> Vec<f32> {
    let dim = world.dim();
    let tracks = world.num_tracks() as u32;
    let mut sums: HashMap<u32, Vec<f32>> = HashMap::new();
    for t in 0..tracks {
        let sum = sums
            .entry(world.artist_of(t))
            .or_insert_with(|| vec![0.0; dim]);
        sum.iter_mut()
            .zip(world.embedding(t))
            .for_each(|(s, x)| *s += x);
    }
    for sum in sums.values_mut() {
        let norm = dot(sum, sum).sqrt().max(f32::EPSILON);
        sum.iter_mut().for_each(|x| *x /= norm);
    }
    (0..tracks)
        .flat_map(|t| sums[&world.artist_of(t)].iter().copied())
        .collect()
}

/// Replaces each track's neighbour list by the learned one (tracks the
/// learned folder does not know keep an empty list, as botify serves them).
/// Tracks beyond the world's catalog (a loop's releases) are left out.
fn keep_lists(embedding: &mut Embedding, learned: &EmbeddingIndex) {
    let tracks = embedding.tracks() as u32;
    for (track, list) in embedding.neighbours.iter_mut().enumerate() {
        *list = learned
            .neighbours(track as u32)
            .iter()
            .copied()
            .filter(|&n| n < tracks)
            .collect();
    }
}

/// Replaces each track's vector by the learned one (zero where the learned
/// folder has none, which botify never scores).
fn keep_vectors(embedding: &mut Embedding, learned: &EmbeddingIndex) -> Result<()> {
    let dim = embedding.dim;
    ensure!(
        learned.dim() == dim,
        "the learned vectors have {} dimensions, the world's {dim}",
        learned.dim()
    );
    for (track, row) in embedding.vectors.chunks_exact_mut(dim).enumerate() {
        match learned.vector(track as u32) {
            Some(v) => row.copy_from_slice(&v.to_vec()),
            None => row.fill(0.0),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{dot, generate, WorldParams};

    #[test]
    fn lists_the_truly_nearest_tracks_within_the_artist_cap_and_the_mean_curve() {
        let world = small_world();
        let lists = NeighbourLists {
            count: 12,
            per_artist: 3,
        };
        let (embedding, curve) = truth_models(&world, Some(lists), 2, false);
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

    fn small_world() -> World {
        let params = WorldParams {
            tracks: 300,
            users: 40,
            seed: 5,
            ..WorldParams::default()
        };
        World::new(generate(&params, false).unwrap()).unwrap()
    }

    #[test]
    fn at_artist_level_every_track_serves_its_artists_mean_direction() {
        let world = small_world();
        let (embedding, _) = truth_models(&world, Some(NeighbourLists::default()), 2, true);
        let (truth, _) = truth_models(&world, Some(NeighbourLists::default()), 2, false);
        assert_eq!(
            embedding.neighbours, truth.neighbours,
            "the lists stay true"
        );
        for a in 0..300u32 {
            let v = embedding.vector(a);
            assert!((dot(v, v) - 1.0).abs() < 1e-5, "unit length");
            for b in (0..300).filter(|&b| world.artist_of(b) == world.artist_of(a)) {
                assert_eq!(embedding.vector(b), v, "{a} and {b}: one artist");
            }
            // The mean leans towards each of its tracks more than a track
            // of another artist usually does.
            assert!(dot(v, world.embedding(a)) > 0.5, "track {a}");
        }
        assert_ne!(embedding.vectors, truth.vectors);
    }

    #[test]
    fn a_learned_folder_lends_its_lists_or_its_vectors_and_curve() {
        let world = small_world();
        let (truth, true_curve) = truth_models(&world, Some(NeighbourLists::default()), 2, false);
        // A "learned" folder: every vector reversed, every list reversed and
        // naming a track beyond the catalog, its own curve.
        let mut learned = truth.clone();
        learned.vectors.iter_mut().for_each(|x| *x = -*x);
        for list in &mut learned.neighbours {
            list.reverse();
            list.push(300);
        }
        let curve = ListenCurve {
            bias: 0.4,
            sharpness: 3.0,
            discount: 0.7,
        };
        let dir = tempfile::tempdir().unwrap();
        write_embedding(&dir.path().join(EMBEDDING_FILE), &learned).unwrap();
        write_listen_curve(&dir.path().join(LISTEN_CURVE_FILE), &curve).unwrap();
        let models = Models::load(dir.path()).unwrap();

        let mut lists = truth.clone();
        keep_lists(&mut lists, &models.embedding);
        assert_eq!(lists.vectors, truth.vectors);
        for (kept, list) in lists.neighbours.iter().zip(&learned.neighbours) {
            assert_eq!(kept[..], list[..list.len() - 1], "learned, in the catalog");
        }

        let mut vectors = truth.clone();
        keep_vectors(&mut vectors, &models.embedding).unwrap();
        assert_eq!(vectors.neighbours, truth.neighbours);
        for t in [0, 150, 299] {
            let gap = vectors
                .vector(t)
                .iter()
                .zip(learned.vector(t))
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(gap < 0.01, "track {t}: bfloat16 of the learned vector");
        }
        assert_eq!(models.listen_curve, curve);
        assert_ne!(curve, true_curve);
    }
}

//! Deterministic generation of a world from a seed.
//!
//! The structure mimics a real catalog:
//! - **Popularity is heavy-tailed.** Artist `a` (0-based, in generation order)
//!   has popularity weight `(a + 1)^-artist_zipf`. With the default exponent 1
//!   and 1,600 artists, the top 1% of artists hold about 40% of all users'
//!   interests and the top 10% about 70%.
//! - **Embeddings cluster by genre and artist.** Each genre has a random unit
//!   centre; an artist's direction is its genre centre plus Gaussian noise of
//!   norm ≈ [`ARTIST_SPREAD`]; a track is its artist's direction plus noise of
//!   norm ≈ [`TRACK_SPREAD`]; everything normalised. On the default world two
//!   tracks of one artist have a mean inner product of 0.80, of one genre 0.40,
//!   of different genres 0.01 (sd 0.17).
//! - **Catalogs vary in size**: every artist has a track, the rest are spread
//!   by a log-normal weight (default world: median 7 tracks, max 95).
//! - **Users' interests (1..=max_interests tracks) are biased to popular
//!   artists**: drawn with probability proportional to artist popularity times
//!   the track's share of its artist's plays.
//! - **Listening habits**: `consume_bias` and `consume_sharpness` are uniform
//!   in the ranges of [`WorldParams`] (default 0.1..=0.3 and 5..=10).
//!   `session_budget`, `artist_discount_gamma` and `interest_neighbours` keep
//!   their defaults (5, 0.8, 10) and are therefore omitted from `users.jsonl`.
//!
//! Each stage draws from its own random stream ([`derived_rng`]), so changing
//! e.g. the number of users leaves the catalog unchanged.
//!
//! The habit ranges and the spreads were calibrated with
//! [`crate::calibration`] on the default world (seed 42, 20,000 sessions): a
//! uniformly random recommender gets a mean session time of 2.18 and a
//! same-artist-as-the-previous-track recommender 3.24 (+48.7%), inside the
//! targets 1.7..=2.4 and +30%..+60%. Raising the bias or the sharpness lowers
//! random (fewer liked tracks by chance) and widens the gap; sticky-artist is
//! capped near 3.4 by the 0.8 artist discount.

use std::collections::HashSet;

use anyhow::{ensure, Result};
use botify::catalog::Track;
use rand::distributions::{Distribution, WeightedIndex};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::{Exp, LogNormal, StandardNormal};
use tally::progress::{bar_if, Unit};

use super::DEFAULT_INTEREST_NEIGHBOURS;
use super::{names, User, WorldData};
use crate::rng::{derived_rng, SimRng};

/// Norm (in expectation) of the noise added to a genre centre to place an
/// artist: 1.0 puts artist directions at about 0.7 from their genre centre,
/// and artists of one genre at about 0.5 from each other.
pub const ARTIST_SPREAD: f64 = 1.0;
/// Norm (in expectation) of the noise added to an artist's direction to place
/// a track: tracks of one artist have inner products around 0.8, so an
/// artist's other tracks are liked almost as much as the interest itself.
pub const TRACK_SPREAD: f64 = 0.5;
/// Zipf exponent of genre sizes: a few big genres, a long tail of niche ones.
pub const GENRE_ZIPF: f64 = 0.7;
/// Log-normal sigma of an artist's catalog size weight: most artists have a
/// handful of tracks, a few have many.
pub const TRACKS_PER_ARTIST_SIGMA: f64 = 0.8;
/// Log-normal sigma of a track's share of its artist's plays: hits and
/// album tracks.
pub const TRACK_SHARE_SIGMA: f64 = 1.0;
/// Latest release year in the catalog.
const LAST_YEAR: i32 = 2024;
/// Earliest debut year of an artist.
const FIRST_YEAR: i32 = 1950;
/// Mean number of years between an artist's debut and [`LAST_YEAR`].
const MEAN_ARTIST_AGE: f64 = 15.0;
/// An artist releases tracks during at most this many years after its debut.
const MAX_CAREER_YEARS: i32 = 12;

// Stage identifiers for derived_rng: one independent stream per stage.
const STAGE_GENRES: u64 = 1;
const STAGE_ARTISTS: u64 = 2;
const STAGE_CATALOG_SIZES: u64 = 3;
const STAGE_TRACK_IDS: u64 = 4;
const STAGE_TRACKS: u64 = 5;
const STAGE_USERS: u64 = 6;

pub const DEFAULT_SEED: u64 = 42;
pub const DEFAULT_TRACKS: u32 = 16_000;
pub const DEFAULT_GENRES: u32 = 20;
pub const DEFAULT_USERS: u32 = 10_000;
pub const DEFAULT_DIM: usize = 32;
pub const DEFAULT_ARTIST_ZIPF: f64 = 1.0;
pub const DEFAULT_MAX_INTERESTS: u32 = 6;
/// The consume_bias range, the session budget and the artist discount are
/// calibrated together so that, with the listener dynamics on, a random
/// recommender's mean time per session in the analysts' metric (first track
/// included) is about 2.05 and sticky-artist's effect about +45%
/// (docs/user-model.md#calibration). Worlds written with other values
/// store them in `users.jsonl`, so older worlds keep their meaning.
pub const DEFAULT_CONSUME_BIAS_MIN: f64 = 0.13;
pub const DEFAULT_CONSUME_BIAS_MAX: f64 = 0.33;
pub const GENERATED_SESSION_BUDGET: u32 = 3;
pub const GENERATED_ARTIST_DISCOUNT_GAMMA: f64 = 0.75;
pub const DEFAULT_CONSUME_SHARPNESS_MIN: f64 = 5.0;
pub const DEFAULT_CONSUME_SHARPNESS_MAX: f64 = 10.0;

/// What to generate. The defaults are the calibrated default world.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct WorldParams {
    /// Seed of every random choice: the same seed and sizes give byte-identical files.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Number of tracks (ids 0..tracks).
    #[arg(long, default_value_t = DEFAULT_TRACKS)]
    pub tracks: u32,
    /// Number of artists, each with at least one track [default: tracks / 10].
    #[arg(long)]
    pub artists: Option<u32>,
    /// Number of genres.
    #[arg(long, default_value_t = DEFAULT_GENRES)]
    pub genres: u32,
    /// Number of users.
    #[arg(long, default_value_t = DEFAULT_USERS)]
    pub users: u32,
    /// Embedding dimension.
    #[arg(long, default_value_t = DEFAULT_DIM)]
    pub dim: usize,
    /// Zipf exponent of artist popularity: artist of rank r gets weight r^-s.
    /// 0 makes all artists equally popular; larger is more heavy-tailed.
    #[arg(long, default_value_t = DEFAULT_ARTIST_ZIPF)]
    pub artist_zipf: f64,
    /// Each user gets a uniform number of interests in 1..=max-interests.
    #[arg(long, default_value_t = DEFAULT_MAX_INTERESTS)]
    pub max_interests: u32,
    /// Per-user consume_bias is uniform in [min, max]: the inner product with
    /// the session's interest at which a fresh artist's track is half listened.
    #[arg(long, default_value_t = DEFAULT_CONSUME_BIAS_MIN)]
    pub consume_bias_min: f64,
    /// Upper end of the consume_bias range.
    #[arg(long, default_value_t = DEFAULT_CONSUME_BIAS_MAX)]
    pub consume_bias_max: f64,
    /// Per-user consume_sharpness is uniform in [min, max]: how steeply listen
    /// time rises with the inner product around consume_bias.
    #[arg(long, default_value_t = DEFAULT_CONSUME_SHARPNESS_MIN)]
    pub consume_sharpness_min: f64,
    /// Upper end of the consume_sharpness range.
    #[arg(long, default_value_t = DEFAULT_CONSUME_SHARPNESS_MAX)]
    pub consume_sharpness_max: f64,
    /// Every user's session_budget: the disappointments a session survives.
    #[arg(long, default_value_t = GENERATED_SESSION_BUDGET)]
    pub session_budget: u32,
    /// Every user's artist_discount_gamma: the listen-time factor per earlier
    /// play of the same artist in a session.
    #[arg(long, default_value_t = GENERATED_ARTIST_DISCOUNT_GAMMA)]
    pub artist_discount_gamma: f64,
}

impl Default for WorldParams {
    fn default() -> Self {
        WorldParams {
            seed: DEFAULT_SEED,
            tracks: DEFAULT_TRACKS,
            artists: None,
            genres: DEFAULT_GENRES,
            users: DEFAULT_USERS,
            dim: DEFAULT_DIM,
            artist_zipf: DEFAULT_ARTIST_ZIPF,
            max_interests: DEFAULT_MAX_INTERESTS,
            consume_bias_min: DEFAULT_CONSUME_BIAS_MIN,
            consume_bias_max: DEFAULT_CONSUME_BIAS_MAX,
            consume_sharpness_min: DEFAULT_CONSUME_SHARPNESS_MIN,
            consume_sharpness_max: DEFAULT_CONSUME_SHARPNESS_MAX,
            session_budget: GENERATED_SESSION_BUDGET,
            artist_discount_gamma: GENERATED_ARTIST_DISCOUNT_GAMMA,
        }
    }
}

impl WorldParams {
    /// The number of artists, resolving the default of one per ten tracks.
    pub fn artist_count(&self) -> u32 {
        self.artists.unwrap_or((self.tracks / 10).max(1))
    }

    fn validate(&self) -> Result<()> {
        ensure!(self.tracks >= 1, "--tracks must be at least 1");
        let artists = self.artist_count();
        ensure!(
            (1..=self.tracks).contains(&artists),
            "--artists must be in 1..=tracks ({}), got {artists}: every artist needs a track",
            self.tracks
        );
        ensure!(self.genres >= 1, "--genres must be at least 1");
        ensure!(self.users >= 1, "--users must be at least 1");
        ensure!(self.dim >= 1, "--dim must be at least 1");
        ensure!(
            self.artist_zipf.is_finite() && self.artist_zipf >= 0.0,
            "--artist-zipf must be a finite number >= 0"
        );
        ensure!(
            self.max_interests >= 1,
            "--max-interests must be at least 1"
        );
        ensure!(
            self.consume_bias_min.is_finite()
                && self.consume_bias_max.is_finite()
                && self.consume_bias_min <= self.consume_bias_max,
            "--consume-bias-min must be <= --consume-bias-max, both finite"
        );
        ensure!(
            self.consume_sharpness_min.is_finite()
                && self.consume_sharpness_max.is_finite()
                && 0.0 <= self.consume_sharpness_min
                && self.consume_sharpness_min <= self.consume_sharpness_max,
            "--consume-sharpness-min must be in 0..=--consume-sharpness-max, both finite"
        );
        ensure!(
            self.session_budget >= 1,
            "--session-budget must be at least 1"
        );
        ensure!(
            (0.0..=1.0).contains(&self.artist_discount_gamma),
            "--artist-discount-gamma must be in 0..=1"
        );
        Ok(())
    }
}

/// One generated artist, before its tracks exist.
struct Artist {
    name: String,
    genre: usize,
    /// Unit direction its tracks scatter around.
    direction: Vec<f64>,
    debut: i32,
}

/// Generates the world described by `params`. `progress` shows progress bars
/// on stderr (hidden anyway when stderr is not a terminal).
pub fn generate(params: &WorldParams, progress: bool) -> Result<WorldData> {
    params.validate()?;
    let seed = params.seed;
    let dim = params.dim;
    let n_tracks = params.tracks as usize;
    let n_artists = params.artist_count() as usize;

    let mut rng = derived_rng(seed, STAGE_GENRES, 0);
    let genre_count = params.genres as usize;
    let genre_centres: Vec<Vec<f64>> = (0..genre_count)
        .map(|_| unit(gaussian(&mut rng, dim, 1.0)))
        .collect();
    let genre_pick = WeightedIndex::new((0..genre_count).map(|g| zipf_weight(g, GENRE_ZIPF)))?;

    let mut rng = derived_rng(seed, STAGE_ARTISTS, 0);
    let age = Exp::new(1.0 / MEAN_ARTIST_AGE)?;
    let mut taken = HashSet::with_capacity(n_artists);
    let artists: Vec<Artist> = (0..n_artists)
        .map(|_| {
            let genre = genre_pick.sample(&mut rng);
            let noise = gaussian(&mut rng, dim, ARTIST_SPREAD);
            let direction = unit(add(&genre_centres[genre], &noise));
            let debut = (LAST_YEAR - age.sample(&mut rng) as i32).max(FIRST_YEAR);
            let name = names::artist(&mut rng, &mut taken);
            Artist {
                name,
                genre,
                direction,
                debut,
            }
        })
        .collect();
    let artist_popularity: Vec<f64> = (0..n_artists)
        .map(|a| zipf_weight(a, params.artist_zipf))
        .collect();

    // Every artist has one track; the rest go to artists by a log-normal
    // catalog-size weight, independent of popularity (niche artists can be prolific).
    let mut rng = derived_rng(seed, STAGE_CATALOG_SIZES, 0);
    let size_weight = LogNormal::new(0.0, TRACKS_PER_ARTIST_SIGMA)?;
    let catalog_pick = WeightedIndex::new((0..n_artists).map(|_| size_weight.sample(&mut rng)))?;
    let mut track_counts = vec![1usize; n_artists];
    for _ in n_artists..n_tracks {
        track_counts[catalog_pick.sample(&mut rng)] += 1;
    }

    // Track ids are shuffled so that ids say nothing about artists.
    let mut rng = derived_rng(seed, STAGE_TRACK_IDS, 0);
    let mut ids: Vec<u32> = (0..params.tracks).collect();
    ids.shuffle(&mut rng);

    let bar = bar_if(progress, Unit::Steps, n_tracks as u64, "tracks");
    let mut rng = derived_rng(seed, STAGE_TRACKS, 0);
    let share_weight = LogNormal::new(0.0, TRACK_SHARE_SIGMA)?;
    let mut embeddings = vec![0.0f32; n_tracks * dim];
    let mut tracks: Vec<Option<Track>> = vec![None; n_tracks];
    let mut artist_of = vec![0usize; n_tracks];
    let mut share = vec![0.0f64; n_tracks];
    let mut slot = 0;
    for (a, artist) in artists.iter().enumerate() {
        let genre = names::genre(artist.genre);
        for _ in 0..track_counts[a] {
            let id = ids[slot] as usize;
            slot += 1;
            let noise = gaussian(&mut rng, dim, TRACK_SPREAD);
            let row = unit(add(&artist.direction, &noise));
            for (e, x) in embeddings[id * dim..(id + 1) * dim].iter_mut().zip(&row) {
                *e = *x as f32;
            }
            share[id] = share_weight.sample(&mut rng);
            artist_of[id] = a;
            let year = (artist.debut + rng.gen_range(0..=MAX_CAREER_YEARS)).min(LAST_YEAR);
            tracks[id] = Some(Track {
                track: id as u32,
                artist: artist.name.clone(),
                title: names::title(&mut rng),
                genre: Some(genre.clone()),
                year: Some(year),
                popularity: None,
            });
            if slot % 4096 == 0 {
                bar.set_position(slot as u64);
            }
        }
    }
    bar.finish_and_clear();

    // Expected share of all plays: artist popularity split among its tracks.
    let mut artist_share_total = vec![0.0f64; n_artists];
    for (t, &a) in artist_of.iter().enumerate() {
        artist_share_total[a] += share[t];
    }
    let play_weight: Vec<f64> = (0..n_tracks)
        .map(|t| artist_popularity[artist_of[t]] * share[t] / artist_share_total[artist_of[t]])
        .collect();
    let catalog_popularity = log_scaled(&play_weight);
    let tracks: Vec<Track> = tracks
        .into_iter()
        .zip(catalog_popularity)
        .map(|(record, popularity)| Track {
            popularity: Some(popularity),
            ..record.expect("every id was assigned a track")
        })
        .collect();

    let users = generate_users(params, &play_weight, progress)?;
    Ok(WorldData {
        tracks,
        dim,
        embeddings,
        users,
    })
}

fn generate_users(params: &WorldParams, play_weight: &[f64], progress: bool) -> Result<Vec<User>> {
    let mut rng = derived_rng(params.seed, STAGE_USERS, 0);
    let interest_pick = WeightedIndex::new(play_weight)?;
    let n_tracks = play_weight.len();
    let bar = bar_if(progress, Unit::Steps, u64::from(params.users), "users");
    let users = (0..params.users)
        .map(|user| {
            let wanted = (rng.gen_range(1..=params.max_interests) as usize).min(n_tracks);
            let mut interests: Vec<u32> = Vec::with_capacity(wanted);
            // Popular tracks repeat a lot; a bounded number of draws keeps a
            // user with a tiny catalog from looping, at worst with fewer interests.
            for _ in 0..wanted * 50 {
                if interests.len() == wanted {
                    break;
                }
                let t = interest_pick.sample(&mut rng) as u32;
                if !interests.contains(&t) {
                    interests.push(t);
                }
            }
            let consume_bias = round_to(
                rng.gen_range(params.consume_bias_min..=params.consume_bias_max),
                3,
            );
            let consume_sharpness = round_to(
                rng.gen_range(params.consume_sharpness_min..=params.consume_sharpness_max),
                2,
            );
            if user % 4096 == 0 {
                bar.set_position(u64::from(user));
            }
            User {
                user: u64::from(user),
                interests,
                consume_bias,
                consume_sharpness,
                session_budget: params.session_budget,
                artist_discount_gamma: params.artist_discount_gamma,
                interest_neighbours: DEFAULT_INTEREST_NEIGHBOURS,
            }
        })
        .collect();
    bar.finish_and_clear();
    Ok(users)
}

/// Catalog popularity in 0..=1: the play weight on a log scale between the
/// least and the most popular track, rounded to 4 decimals. A log scale keeps
/// the long tail distinguishable instead of squashing it to 0.
fn log_scaled(weights: &[f64]) -> Vec<f64> {
    let min = weights.iter().copied().fold(f64::INFINITY, f64::min);
    let max = weights.iter().copied().fold(0.0, f64::max);
    let span = (max / min).ln();
    weights
        .iter()
        .map(|&w| {
            if span > 0.0 {
                round_to((w / min).ln() / span, 4)
            } else {
                1.0
            }
        })
        .collect()
}

fn zipf_weight(rank: usize, exponent: f64) -> f64 {
    (rank as f64 + 1.0).powf(-exponent)
}

/// A Gaussian vector whose expected squared norm is `scale²`.
pub(crate) fn gaussian(rng: &mut SimRng, dim: usize, scale: f64) -> Vec<f64> {
    let sd = scale / (dim as f64).sqrt();
    (0..dim)
        .map(|_| rng.sample::<f64, _>(StandardNormal) * sd)
        .collect()
}

pub(crate) fn add(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

/// `v` scaled to unit norm (a zero vector, vanishingly unlikely from Gaussian
/// noise, becomes the first axis so rows stay unit-norm).
pub(crate) fn unit(mut v: Vec<f64>) -> Vec<f64> {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    } else {
        v[0] = 1.0;
    }
    v
}

fn round_to(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{dot, World};

    fn small() -> WorldParams {
        WorldParams {
            tracks: 2000,
            users: 500,
            ..WorldParams::default()
        }
    }

    #[test]
    fn generation_is_deterministic_and_seed_dependent() {
        let a = generate(&small(), false).unwrap();
        assert_eq!(a, generate(&small(), false).unwrap());
        let other = generate(
            &WorldParams {
                seed: 43,
                ..small()
            },
            false,
        )
        .unwrap();
        assert_ne!(a.embeddings, other.embeddings);
    }

    #[test]
    fn sizes_and_ranges_follow_the_params() {
        let p = small();
        let data = generate(&p, false).unwrap();
        assert_eq!(data.tracks.len(), 2000);
        assert_eq!(data.embeddings.len(), 2000 * p.dim);
        assert_eq!(data.users.len(), 500);
        let world = World::new(data.clone()).unwrap();
        assert_eq!(world.num_artists(), 200);
        for u in &data.users {
            assert!((1..=6).contains(&u.interests.len()));
            assert!((p.consume_bias_min..=p.consume_bias_max).contains(&u.consume_bias));
            assert!(
                (p.consume_sharpness_min..=p.consume_sharpness_max).contains(&u.consume_sharpness)
            );
        }
        for t in &data.tracks {
            let pop = t.popularity.unwrap();
            assert!((0.0..=1.0).contains(&pop));
            assert!((FIRST_YEAR..=LAST_YEAR).contains(&t.year.unwrap()));
        }
    }

    #[test]
    fn interests_favour_popular_artists() {
        let data = generate(&small(), false).unwrap();
        let world = World::new(data.clone()).unwrap();
        // Artists are interned in order of first track id, so rank them by
        // catalog popularity instead: the top 10% of artists by their best
        // track's popularity must hold far more than 10% of interests.
        let mut best = vec![0.0f64; world.num_artists()];
        for t in &data.tracks {
            let a = world.artist_of(t.track) as usize;
            best[a] = best[a].max(t.popularity.unwrap());
        }
        let mut order: Vec<usize> = (0..best.len()).collect();
        order.sort_by(|&a, &b| best[b].total_cmp(&best[a]));
        let top: HashSet<usize> = order[..best.len() / 10].iter().copied().collect();
        let (mut in_top, mut total) = (0, 0);
        for u in &data.users {
            for &t in &u.interests {
                total += 1;
                in_top += usize::from(top.contains(&(world.artist_of(t) as usize)));
            }
        }
        assert!(
            in_top as f64 > 0.4 * total as f64,
            "{in_top} of {total} interests"
        );
    }

    #[test]
    fn embeddings_cluster_by_artist_then_genre() {
        let data = generate(&small(), false).unwrap();
        let world = World::new(data.clone()).unwrap();
        let (mut same_artist, mut same_genre, mut other) = (vec![], vec![], vec![]);
        let n = world.num_tracks() as u32;
        for a in 0..n {
            for b in (a + 1..n).step_by(7) {
                let d = dot(world.embedding(a), world.embedding(b));
                if world.artist_of(a) == world.artist_of(b) {
                    same_artist.push(d);
                } else if data.tracks[a as usize].genre == data.tracks[b as usize].genre {
                    same_genre.push(d);
                } else {
                    other.push(d);
                }
            }
        }
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        let (sa, sg, o) = (mean(&same_artist), mean(&same_genre), mean(&other));
        assert!(
            sa > sg + 0.2 && sg > o + 0.2,
            "artist {sa}, genre {sg}, other {o}"
        );
    }

    #[test]
    fn bad_params_are_errors() {
        let bad = [
            WorldParams {
                artists: Some(5000),
                ..small()
            },
            WorldParams {
                tracks: 0,
                ..small()
            },
            WorldParams {
                consume_bias_min: 1.0,
                consume_bias_max: 0.0,
                ..small()
            },
            WorldParams { dim: 0, ..small() },
        ];
        for p in bad {
            assert!(generate(&p, false).is_err(), "{p:?}");
        }
    }
}

//! The simulated world: a catalog of tracks with hidden embeddings, and users
//! with interests and listening habits (docs/world.md).
//!
//! [`WorldData`] is the world as records — what [`generate`] produces and what
//! the three files hold. [`World`] is the validated, indexed form the user model
//! runs on: embeddings in one contiguous row-major `Vec<f32>`, artists interned
//! to dense ids, and a lazily filled cache of each interest's nearest tracks.

mod generate;
mod io;
mod names;
mod neighbours;
pub mod releases;

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use anyhow::{bail, ensure, Result};
use botify::catalog::Track;
use serde::{Deserialize, Serialize};

pub use generate::{generate, WorldParams};
pub use io::{
    load_world_data, read_world_data, write_catalog, write_world, EMBEDDINGS_FILE, TRACKS_FILE,
    USERS_FILE,
};

use neighbours::ArtistBounds;

/// Default `session_budget` of a user: how many "disappointments" a session
/// survives (docs/world.md#users).
pub const DEFAULT_SESSION_BUDGET: u32 = 5;
/// Default `artist_discount_gamma`: each earlier play of an artist in the
/// session multiplies the listen time of its next track by this.
pub const DEFAULT_ARTIST_DISCOUNT_GAMMA: f64 = 0.8;
/// Default `interest_neighbours`: a session's first track is one of this many
/// tracks nearest to the chosen interest.
pub const DEFAULT_INTEREST_NEIGHBOURS: u32 = 10;

/// How far from 1 an embedding row's norm may be before the file is rejected:
/// float32 rounding of a normalised row stays far below this, a row that was
/// never normalised does not.
const UNIT_NORM_TOLERANCE: f64 = 1e-3;

/// One line of `users.jsonl`: a simulated listener (docs/world.md#users; its
/// behaviour: docs/user-model.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// The id the simulator uses in `/next/{user}`.
    pub user: u64,
    /// Tracks that start this user's sessions; one is drawn per session.
    pub interests: Vec<u32>,
    /// Inner product at which a track is listened to half-way (before the
    /// artist discount): higher means a choosier listener.
    pub consume_bias: f64,
    /// How sharply listen time rises around `consume_bias`.
    pub consume_sharpness: f64,
    #[serde(
        default = "default_session_budget",
        skip_serializing_if = "is_default_session_budget"
    )]
    pub session_budget: u32,
    #[serde(
        default = "default_artist_discount_gamma",
        skip_serializing_if = "is_default_artist_discount_gamma"
    )]
    pub artist_discount_gamma: f64,
    #[serde(
        default = "default_interest_neighbours",
        skip_serializing_if = "is_default_interest_neighbours"
    )]
    pub interest_neighbours: u32,
}

fn default_session_budget() -> u32 {
    DEFAULT_SESSION_BUDGET
}
fn is_default_session_budget(v: &u32) -> bool {
    *v == DEFAULT_SESSION_BUDGET
}
fn default_artist_discount_gamma() -> f64 {
    DEFAULT_ARTIST_DISCOUNT_GAMMA
}
fn is_default_artist_discount_gamma(v: &f64) -> bool {
    *v == DEFAULT_ARTIST_DISCOUNT_GAMMA
}
fn default_interest_neighbours() -> u32 {
    DEFAULT_INTEREST_NEIGHBOURS
}
fn is_default_interest_neighbours(v: &u32) -> bool {
    *v == DEFAULT_INTEREST_NEIGHBOURS
}

/// The world as plain records: what the generator makes and the files hold.
#[derive(Debug, Clone, PartialEq)]
pub struct WorldData {
    /// Catalog records (`tracks.jsonl`, botify's own [`Track`] type: the only
    /// thing botify sees); `tracks[i].track == i`. Popularity is derived from
    /// artist and track popularity only, never from embeddings.
    pub tracks: Vec<Track>,
    /// Embedding dimension.
    pub dim: usize,
    /// Row-major `[tracks, dim]` unit-norm embeddings.
    pub embeddings: Vec<f32>,
    pub users: Vec<User>,
}

/// A validated world, indexed for the user model.
///
/// `World` is `Sync`: runners may share one across threads; the neighbour
/// cache fills itself safely on first use of each interest.
pub struct World {
    dim: usize,
    embeddings: Vec<f32>,
    artist_of: Vec<u32>,
    artist_names: Vec<String>,
    /// Dense genre id per track (tracks without a genre share one id), for
    /// the boredom rule of the listener dynamics.
    genre_of: Vec<u32>,
    /// Tracks of artist `a` are `artist_tracks[artist_start[a]..artist_start[a + 1]]`.
    artist_start: Vec<u32>,
    artist_tracks: Vec<u32>,
    bounds: ArtistBounds,
    users: Vec<User>,
    /// Per track, its `max_neighbours` nearest tracks (itself first), computed
    /// the first time a session starts from it as an interest.
    neighbour_cache: Vec<OnceLock<Box<[u32]>>>,
    max_neighbours: usize,
}

impl World {
    /// Validates `data` and builds the indexes. Error messages name the file
    /// a bad value would have come from, so they are actionable after a load.
    pub fn new(data: WorldData) -> Result<World> {
        let WorldData {
            tracks,
            dim,
            embeddings,
            users,
        } = data;
        ensure!(
            !tracks.is_empty(),
            "{TRACKS_FILE} has no tracks; a world needs at least one"
        );
        ensure!(dim > 0, "{EMBEDDINGS_FILE} has embedding dimension 0");
        let n_tracks = tracks.len();
        ensure!(
            embeddings.len() == n_tracks * dim,
            "{EMBEDDINGS_FILE} has {} rows of dimension {dim} but {TRACKS_FILE} has {n_tracks} tracks; \
             both must come from the same `sim world` run",
            embeddings.len() / dim,
        );
        for (t, row) in embeddings.chunks_exact(dim).enumerate() {
            let norm = row
                .iter()
                .map(|&x| f64::from(x) * f64::from(x))
                .sum::<f64>()
                .sqrt();
            ensure!(
                (norm - 1.0).abs() <= UNIT_NORM_TOLERANCE,
                "{EMBEDDINGS_FILE} row {t} has norm {norm}; rows must be finite and unit-norm"
            );
        }

        let mut artist_ids: HashMap<&str, u32> = HashMap::new();
        let mut artist_names = Vec::new();
        let mut artist_of = Vec::with_capacity(n_tracks);
        let mut genre_ids: HashMap<&str, u32> = HashMap::new();
        let mut genre_of = Vec::with_capacity(n_tracks);
        for (i, record) in tracks.iter().enumerate() {
            let genre = record.genre.as_deref().unwrap_or("");
            let next_genre = genre_ids.len() as u32;
            genre_of.push(*genre_ids.entry(genre).or_insert(next_genre));
            ensure!(
                record.track as usize == i,
                "{TRACKS_FILE} record {i} has track id {}; ids must be contiguous from 0 in file order",
                record.track
            );
            let next = artist_names.len() as u32;
            let id = *artist_ids.entry(record.artist.as_str()).or_insert(next);
            if id == next {
                artist_names.push(record.artist.clone());
            }
            artist_of.push(id);
        }
        let (artist_start, artist_tracks) = group_by_artist(&artist_of, artist_names.len());

        ensure!(!users.is_empty(), "{USERS_FILE} has no users");
        let mut seen_ids = HashSet::with_capacity(users.len());
        for user in &users {
            validate_user(user, n_tracks)?;
            ensure!(
                seen_ids.insert(user.user),
                "{USERS_FILE}: user id {} appears more than once",
                user.user
            );
        }
        let max_neighbours = users
            .iter()
            .map(|u| u.interest_neighbours as usize)
            .max()
            .unwrap_or(1)
            .min(n_tracks);

        let bounds = ArtistBounds::build(&embeddings, dim, &artist_start, &artist_tracks);
        Ok(World {
            dim,
            embeddings,
            artist_of,
            artist_names,
            genre_of,
            artist_start,
            artist_tracks,
            bounds,
            users,
            neighbour_cache: (0..n_tracks).map(|_| OnceLock::new()).collect(),
            max_neighbours,
        })
    }

    /// Reads and validates the world in `dir` (the three files of `sim world`).
    pub fn load(dir: &std::path::Path) -> Result<World> {
        World::new(read_world_data(dir)?)
    }

    pub fn num_tracks(&self) -> usize {
        self.artist_of.len()
    }

    pub fn num_artists(&self) -> usize {
        self.artist_names.len()
    }

    pub fn num_users(&self) -> usize {
        self.users.len()
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The unit-norm embedding of `track`. Panics if `track` is not in the catalog.
    #[inline]
    pub fn embedding(&self, track: u32) -> &[f32] {
        let start = track as usize * self.dim;
        &self.embeddings[start..start + self.dim]
    }

    /// The dense artist id of `track` (0..num_artists, in order of first appearance).
    #[inline]
    pub fn artist_of(&self, track: u32) -> u32 {
        self.artist_of[track as usize]
    }

    /// The dense genre id of `track`.
    #[inline]
    pub fn genre_of(&self, track: u32) -> u32 {
        self.genre_of[track as usize]
    }

    pub fn artist_name(&self, artist: u32) -> &str {
        &self.artist_names[artist as usize]
    }

    /// All tracks of `artist`, in ascending id order.
    #[inline]
    pub fn artist_tracks(&self, artist: u32) -> &[u32] {
        let a = artist as usize;
        &self.artist_tracks[self.artist_start[a] as usize..self.artist_start[a + 1] as usize]
    }

    pub fn users(&self) -> &[User] {
        &self.users
    }

    /// The user at position `index` in `users.jsonl`. Panics if out of range.
    pub fn user(&self, index: usize) -> &User {
        &self.users[index]
    }

    /// The `k` tracks nearest to `interest` by inner product, itself included,
    /// best first (ties: lower id first); `k` is capped at the largest
    /// `interest_neighbours` of any user. Computed once per interest track and
    /// cached, so only the first session from an interest pays for the search.
    pub fn interest_neighbours(&self, interest: u32, k: usize) -> &[u32] {
        let list = self.neighbour_cache[interest as usize].get_or_init(|| {
            self.nearest(self.embedding(interest), self.max_neighbours)
                .into()
        });
        &list[..k.min(list.len())]
    }

    /// Fills the neighbour cache for every user's interests now, instead of
    /// on first use, and returns how many distinct interests there are.
    ///
    /// Costs one [`World::nearest`] search per distinct interest (tens of
    /// microseconds on the default world, about 0.3 s in all): worth it before
    /// a throughput measurement or a long run on a small world, not on a
    /// million-track world where most interests are used once, if at all.
    pub fn precompute_interest_neighbours(&self) -> usize {
        let mut done = vec![false; self.num_tracks()];
        let mut distinct = 0;
        for &interest in self.users.iter().flat_map(|u| &u.interests) {
            if !std::mem::replace(&mut done[interest as usize], true) {
                self.interest_neighbours(interest, 0);
                distinct += 1;
            }
        }
        distinct
    }

    /// The `k` tracks with the largest inner product with `query`, best first
    /// (ties: lower id first). Exact; see [`neighbours`] for how it avoids
    /// scanning the whole catalog.
    pub fn nearest(&self, query: &[f32], k: usize) -> Vec<u32> {
        self.bounds.nearest(query, k)
    }
}

/// Sizes only: the embeddings alone are millions of numbers.
impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("tracks", &self.num_tracks())
            .field("artists", &self.num_artists())
            .field("users", &self.num_users())
            .field("dim", &self.dim)
            .finish_non_exhaustive()
    }
}

fn validate_user(user: &User, n_tracks: usize) -> Result<()> {
    let id = user.user;
    ensure!(
        !user.interests.is_empty(),
        "{USERS_FILE}: user {id} has no interests; every user needs at least one track"
    );
    if let Some(&bad) = user.interests.iter().find(|&&t| t as usize >= n_tracks) {
        bail!("{USERS_FILE}: user {id} has interest track {bad} but {TRACKS_FILE} has only {n_tracks} tracks");
    }
    ensure!(
        user.consume_bias.is_finite(),
        "{USERS_FILE}: user {id} has a non-finite consume_bias"
    );
    ensure!(
        user.consume_sharpness.is_finite() && user.consume_sharpness >= 0.0,
        "{USERS_FILE}: user {id} has consume_sharpness {}; expected a finite number >= 0",
        user.consume_sharpness
    );
    ensure!(
        user.session_budget >= 1,
        "{USERS_FILE}: user {id} has session_budget 0; expected >= 1"
    );
    ensure!(
        (0.0..=1.0).contains(&user.artist_discount_gamma),
        "{USERS_FILE}: user {id} has artist_discount_gamma {}; expected 0..=1",
        user.artist_discount_gamma
    );
    ensure!(
        user.interest_neighbours >= 1,
        "{USERS_FILE}: user {id} has interest_neighbours 0; expected >= 1"
    );
    Ok(())
}

/// Groups track ids by artist (counting sort): tracks of artist `a` end up in
/// `tracks[start[a]..start[a + 1]]`, ascending.
fn group_by_artist(artist_of: &[u32], n_artists: usize) -> (Vec<u32>, Vec<u32>) {
    let mut start = vec![0u32; n_artists + 1];
    for &a in artist_of {
        start[a as usize + 1] += 1;
    }
    for a in 0..n_artists {
        start[a + 1] += start[a];
    }
    let mut next = start.clone();
    let mut tracks = vec![0u32; artist_of.len()];
    for (t, &a) in artist_of.iter().enumerate() {
        tracks[next[a as usize] as usize] = t as u32;
        next[a as usize] += 1;
    }
    (start, tracks)
}

/// Inner product of two embeddings (of equal length).
///
/// Eight independent accumulators over fixed 8-element blocks let the
/// compiler vectorise the loop while keeping a fixed summation order, so
/// results are identical run to run. Plain indexing into fixed-size arrays
/// (rather than an iterator chain) also keeps unoptimised test builds, which
/// simulate tens of thousands of sessions, several times faster.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len().min(b.len());
    let body = n - n % 8;
    let mut acc = [0.0f32; 8];
    let mut i = 0;
    while i < body {
        let x: &[f32; 8] = a[i..i + 8].try_into().expect("8-element block");
        let y: &[f32; 8] = b[i..i + 8].try_into().expect("8-element block");
        acc[0] += x[0] * y[0];
        acc[1] += x[1] * y[1];
        acc[2] += x[2] * y[2];
        acc[3] += x[3] * y[3];
        acc[4] += x[4] * y[4];
        acc[5] += x[5] * y[5];
        acc[6] += x[6] * y[6];
        acc[7] += x[7] * y[7];
        i += 8;
    }
    let mut tail = 0.0;
    while i < n {
        tail += a[i] * b[i];
        i += 1;
    }
    (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]) + tail
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A hand-made world for rule-level tests: 2-d embeddings, given artists.
    pub(crate) fn tiny_world(embeddings: &[[f32; 2]], artists: &[&str], users: Vec<User>) -> World {
        let tracks = artists
            .iter()
            .enumerate()
            .map(|(i, a)| Track {
                track: i as u32,
                artist: a.to_string(),
                title: format!("t{i}"),
                genre: None,
                year: None,
                popularity: None,
            })
            .collect();
        World::new(WorldData {
            tracks,
            dim: 2,
            embeddings: embeddings.iter().flatten().copied().collect(),
            users,
        })
        .unwrap()
    }

    pub(crate) fn user(interests: Vec<u32>, bias: f64, sharpness: f64) -> User {
        User {
            user: 0,
            interests,
            consume_bias: bias,
            consume_sharpness: sharpness,
            session_budget: DEFAULT_SESSION_BUDGET,
            artist_discount_gamma: DEFAULT_ARTIST_DISCOUNT_GAMMA,
            interest_neighbours: DEFAULT_INTEREST_NEIGHBOURS,
        }
    }

    #[test]
    fn precompute_fills_the_cache_once_per_distinct_interest() {
        let w = tiny_world(
            &[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]],
            &["A", "B", "A"],
            vec![
                user(vec![0, 2], 0.0, 1.0),
                User {
                    user: 1,
                    ..user(vec![2, 1, 0], 0.0, 1.0)
                },
            ],
        );
        assert_eq!(w.precompute_interest_neighbours(), 3);
        assert!(w.neighbour_cache.iter().all(|c| c.get().is_some()));
        assert_eq!(w.interest_neighbours(2, 10), &[0, 2, 1]);
    }

    #[test]
    fn dot_matches_naive_sum_for_odd_lengths() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.1).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.05).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-5);
    }

    #[test]
    fn artists_are_interned_and_grouped() {
        let w = tiny_world(
            &[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]],
            &["A", "B", "A"],
            vec![user(vec![0], 0.0, 1.0)],
        );
        assert_eq!(w.num_artists(), 2);
        assert_eq!(w.artist_of(2), w.artist_of(0));
        assert_eq!(w.artist_tracks(w.artist_of(0)), &[0, 2]);
        assert_eq!(w.artist_name(w.artist_of(1)), "B");
    }

    #[test]
    fn user_fields_default_when_absent_and_are_omitted_when_default() {
        let u: User = serde_json::from_str(
            r#"{"user": 3, "interests": [1], "consume_bias": 0.3, "consume_sharpness": 9.0}"#,
        )
        .unwrap();
        assert_eq!(u.session_budget, 5);
        assert_eq!(u.artist_discount_gamma, 0.8);
        assert_eq!(u.interest_neighbours, 10);
        let json = serde_json::to_string(&u).unwrap();
        assert!(!json.contains("session_budget"), "{json}");
    }

    /// One track by one artist in 2 dimensions, one user interested in it.
    fn one_track_world(embeddings: Vec<f32>) -> WorldData {
        WorldData {
            tracks: vec![Track {
                track: 0,
                artist: "A".into(),
                title: "t".into(),
                genre: None,
                year: None,
                popularity: None,
            }],
            dim: 2,
            embeddings,
            users: vec![user(vec![0], 0.0, 1.0)],
        }
    }

    #[test]
    fn invalid_worlds_are_rejected_with_the_file_named() {
        let data = || one_track_world(vec![1.0, 0.0]);
        assert!(World::new(data()).is_ok());

        let mut d = data();
        d.users[0].interests = vec![5];
        let e = World::new(d).unwrap_err().to_string();
        assert!(
            e.contains(USERS_FILE) && e.contains("interest track 5"),
            "{e}"
        );

        let mut d = data();
        d.embeddings = vec![2.0, 0.0];
        let e = World::new(d).unwrap_err().to_string();
        assert!(
            e.contains(EMBEDDINGS_FILE) && e.contains("unit-norm"),
            "{e}"
        );

        let mut d = data();
        d.embeddings = vec![1.0, 0.0, 1.0, 0.0];
        let e = World::new(d).unwrap_err().to_string();
        assert!(e.contains("2 rows"), "{e}");

        let mut d = data();
        d.tracks[0].track = 1;
        let e = World::new(d).unwrap_err().to_string();
        assert!(e.contains(TRACKS_FILE) && e.contains("contiguous"), "{e}");

        let mut d = data();
        d.users[0].artist_discount_gamma = 1.5;
        assert!(World::new(d).is_err());

        let mut d = data();
        d.users.push(d.users[0].clone());
        let e = World::new(d).unwrap_err().to_string();
        assert!(e.contains("more than once"), "{e}");
    }

    #[test]
    fn nan_embeddings_are_rejected() {
        let w = World::new(one_track_world(vec![f32::NAN, 0.0]));
        assert!(w.is_err());
    }
}

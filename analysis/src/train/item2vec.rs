//! Track vectors learned from sessions: item2vec (skip-gram with negative
//! sampling over sessions; Barkan & Koenigstein, 2016) where a track is the
//! sum of three tokens — the track itself, its artist and its genre.
//!
//! Why tokens: a day of logs sees most tracks only a handful of times, so a
//! per-track vector alone would be noise for the long tail and undefined for
//! a track never played. Summing the artist's and genre's vectors (as
//! fastText sums sub-words) shrinks a rarely heard track towards what its
//! artist and genre have earned, and gives a new release a vector from its
//! catalog metadata alone; a well-heard track moves away by its own token.
//!
//! Evidence, per session (the listener's first track counts as liked):
//! - **likes** (`time ≥ liked`): every pair of liked tracks at most `window`
//!   likes apart is a positive pair — the whole session, not only
//!   consecutive tracks, is co-listening evidence;
//! - **skips** (`time ≤ skipped`): the skipped track against the session's
//!   most recent liked track is an explicit negative pair, so exploration
//!   traffic full of skips teaches what does *not* go together;
//! - `negatives` random tracks per positive pair (drawn by play count^¾)
//!   keep popular tracks from being close to everything;
//! - every pair's step is scaled by its later listen's exposure weight
//!   ([`super::exposure`]), so what the policy explored counts as much as
//!   what it served again and again.
//!
//! Training is plain SGD on the logistic loss, single-threaded with a seeded
//! generator so the same logs give the same vectors. The served vector of a
//! track is the normalised sum of its input and output token vectors; its
//! neighbours are the `neighbours` tracks of highest cosine, found by an
//! exact scan split over threads.

use std::collections::HashMap;

use botify::catalog::Catalog;
use indicatif::ProgressBar;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tally::parallel::fan_out;

use super::Data;

/// Model size, evidence thresholds and training schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Vector dimensions.
    pub dim: usize,
    /// Passes over the sessions.
    pub epochs: usize,
    /// Likes at most this far apart (in likes) form a positive pair.
    pub window: usize,
    /// Random negative pairs per positive pair.
    pub negatives: usize,
    /// Initial SGD step, decayed linearly to a tenth.
    pub learning_rate: f32,
    /// A listen at or above this time is a like.
    pub liked: f64,
    /// A listen at or below this time is a skip.
    pub skipped: f64,
    /// Whether two likes of one artist form a positive pair. Their shared
    /// artist token already makes them close; traffic from recommenders that
    /// stay with an artist would otherwise teach mostly that, and little
    /// about which *other* artists go together.
    pub same_artist_pairs: bool,
    /// The served index's neighbour lists.
    pub neighbours: NeighbourLists,
    pub seed: u64,
    /// Threads for the neighbour scan.
    pub threads: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            dim: 32,
            epochs: 3,
            window: 4,
            negatives: 4,
            learning_rate: 0.05,
            liked: 0.5,
            skipped: 0.2,
            same_artist_pairs: true,
            neighbours: NeighbourLists::default(),
            seed: 42,
            threads: 2,
        }
    }
}

/// Learned vectors of every catalog track, with their nearest neighbours.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    pub dim: usize,
    /// Row `t` is track `t`'s unit vector.
    pub vectors: Vec<f32>,
    /// Row `t`: the most similar tracks to `t`, best first.
    pub neighbours: Vec<Vec<u32>>,
}

impl Embedding {
    /// An embedding of given unit `vectors` (row-major, `dim` wide) with
    /// neighbour lists computed from them as training computes its own.
    pub fn of_unit_vectors(
        vectors: Vec<f32>,
        dim: usize,
        artist_of: &[u32],
        lists: NeighbourLists,
        threads: usize,
    ) -> Embedding {
        let neighbours = nearest_neighbours(&vectors, dim, artist_of, lists, threads);
        Embedding {
            dim,
            vectors,
            neighbours,
        }
    }

    /// Whether every vector is a finite number: SGD that diverged leaves
    /// NaN or infinities, which must never reach botify's models folder.
    pub fn is_finite(&self) -> bool {
        self.vectors.iter().all(|x| x.is_finite())
    }

    pub fn vector(&self, track: u32) -> &[f32] {
        let start = track as usize * self.dim;
        &self.vectors[start..start + self.dim]
    }

    pub fn tracks(&self) -> usize {
        self.neighbours.len()
    }
}

/// Token ids of one track: itself, its artist, its genre (when known).
pub(super) struct Tokens {
    of_track: Vec<[u32; 3]>,
    pub(super) count: usize,
}

/// Marks an absent genre token.
const NO_TOKEN: u32 = u32::MAX;

impl Tokens {
    pub(super) fn new(catalog: &Catalog) -> Tokens {
        let tracks = catalog.len();
        let mut artists: HashMap<u32, u32> = HashMap::new();
        let mut genres: HashMap<&str, u32> = HashMap::new();
        let mut of_track = Vec::with_capacity(tracks);
        for t in 0..tracks as u32 {
            let next_artist = artists.len() as u32;
            let artist = *artists.entry(catalog.artist_of(t)).or_insert(next_artist);
            let genre = catalog.get(t).and_then(|r| r.genre.as_deref()).map(|g| {
                let next = genres.len() as u32;
                *genres.entry(g).or_insert(next)
            });
            of_track.push([t, artist, genre.unwrap_or(NO_TOKEN)]);
        }
        // Artist tokens follow the tracks, genre tokens follow the artists.
        let (n_artists, n_genres) = (artists.len() as u32, genres.len() as u32);
        for tokens in &mut of_track {
            tokens[1] += tracks as u32;
            if tokens[2] != NO_TOKEN {
                tokens[2] += tracks as u32 + n_artists;
            }
        }
        Tokens {
            of_track,
            count: tracks + (n_artists + n_genres) as usize,
        }
    }

    fn same_artist(&self, a: u32, b: u32) -> bool {
        self.of_track[a as usize][1] == self.of_track[b as usize][1]
    }

    /// `track`'s vector: the sum of its tokens' rows of `table` (`dim`
    /// wide), into `into`.
    pub(super) fn sum(&self, table: &[f32], dim: usize, track: u32, into: &mut [f32]) {
        into.fill(0.0);
        for tok in self.of(track) {
            let row = &table[tok * dim..(tok + 1) * dim];
            into.iter_mut().zip(row).for_each(|(x, r)| *x += r);
        }
    }

    /// Adds `scale · by` to each of `track`'s token rows of `table`.
    pub(super) fn add(&self, table: &mut [f32], dim: usize, track: u32, scale: f32, by: &[f32]) {
        for tok in self.of(track) {
            let row = &mut table[tok * dim..(tok + 1) * dim];
            row.iter_mut().zip(by).for_each(|(x, y)| *x += scale * y);
        }
    }

    pub(super) fn of(&self, track: u32) -> impl Iterator<Item = usize> + '_ {
        self.of_track[track as usize]
            .iter()
            .filter(|&&t| t != NO_TOKEN)
            .map(|&t| t as usize)
    }
}

/// The sessions as (liked tracks, (skipped track, the like before it)),
/// each with its listen's exposure weight.
struct Evidence {
    likes: Vec<Vec<(u32, f32)>>,
    skips: Vec<(u32, u32, f32)>,
    /// Plays per track, the base of the negative-sampling distribution.
    plays: Vec<f64>,
}

fn evidence(data: Data<'_>, tracks: usize, params: &Params) -> Evidence {
    let mut likes = Vec::with_capacity(data.sessions.len());
    let mut skips = Vec::new();
    let mut plays = vec![0.0; tracks];
    for session in data.sessions {
        let mut liked: Vec<(u32, f32)> = Vec::new();
        for (k, event) in session.events(data.records).iter().enumerate() {
            let track = event.track;
            if track as usize >= tracks {
                continue; // not in the catalog given: nothing to learn it into
            }
            plays[track as usize] += 1.0;
            let weight = data.weight(session, k) as f32;
            if event.time >= params.liked {
                liked.push((track, weight));
            } else if event.time <= params.skipped {
                if let Some(&(anchor, _)) = liked.last() {
                    skips.push((track, anchor, weight));
                }
            }
        }
        if liked.len() >= 2 {
            likes.push(liked);
        }
    }
    Evidence {
        likes,
        skips,
        plays,
    }
}

/// Draws tracks with probability ∝ plays^¾ (cumulative table + binary search).
struct NegativeSampler {
    cumulative: Vec<f64>,
}

impl NegativeSampler {
    fn new(plays: &[f64]) -> NegativeSampler {
        let mut total = 0.0;
        let cumulative = plays
            .iter()
            .map(|p| {
                total += p.powf(0.75);
                total
            })
            .collect();
        NegativeSampler { cumulative }
    }

    fn draw(&self, rng: &mut SmallRng) -> Option<u32> {
        let total = *self.cumulative.last()?;
        if total <= 0.0 {
            return None;
        }
        let x = rng.gen::<f64>() * total;
        Some(self.cumulative.partition_point(|&c| c <= x) as u32)
    }
}

struct Sgd<'a> {
    tokens: &'a Tokens,
    dim: usize,
    input: Vec<f32>,
    output: Vec<f32>,
    /// Scratch: the summed input and output vectors of the current pair.
    a: Vec<f32>,
    b: Vec<f32>,
}

impl Sgd<'_> {
    /// One logistic-loss step on the pair (`a` as input, `b` as output).
    fn step(&mut self, a: u32, b: u32, label: f32, rate: f32) {
        let mut va = std::mem::take(&mut self.a);
        let mut vb = std::mem::take(&mut self.b);
        self.tokens.sum(&self.input, self.dim, a, &mut va);
        self.tokens.sum(&self.output, self.dim, b, &mut vb);
        let score: f32 = va.iter().zip(&vb).map(|(x, y)| x * y).sum();
        let g = rate * (label - sigmoid(score));
        self.tokens.add(&mut self.input, self.dim, a, g, &vb);
        self.tokens.add(&mut self.output, self.dim, b, g, &va);
        self.a = va;
        self.b = vb;
    }
}

pub(super) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x.clamp(-30.0, 30.0)).exp())
}

/// Learns the vectors of every track of `catalog` from the sessions of
/// `data`, then indexes each track's nearest neighbours. `bar` counts epochs
/// and then the neighbour scan.
pub fn fit(data: Data<'_>, catalog: &Catalog, params: Params, bar: &ProgressBar) -> Embedding {
    let tokens = Tokens::new(catalog);
    let tracks = catalog.len();
    let dim = params.dim.max(1);
    let evidence = evidence(data, tracks, &params);
    let sampler = NegativeSampler::new(&evidence.plays);
    let mut rng = SmallRng::seed_from_u64(params.seed);
    let init = 0.5 / dim as f32;
    let mut sgd = Sgd {
        tokens: &tokens,
        dim,
        input: (0..tokens.count * dim)
            .map(|_| rng.gen_range(-init..init))
            .collect(),
        output: vec![0.0; tokens.count * dim],
        a: vec![0.0; dim],
        b: vec![0.0; dim],
    };
    // A track never heard learns nothing of its own: its token starts (and
    // stays) at zero, so its vector is exactly its artist's and genre's.
    for (t, &plays) in evidence.plays.iter().enumerate() {
        if plays == 0.0 {
            sgd.input[t * dim..(t + 1) * dim].fill(0.0);
        }
    }
    bar.set_length(params.epochs as u64 + 1);
    let epochs = params.epochs.max(1);
    for epoch in 0..epochs {
        let rate = params.learning_rate * (1.0 - 0.9 * epoch as f32 / epochs as f32);
        for liked in &evidence.likes {
            for (i, &(a, _)) in liked.iter().enumerate() {
                let end = (i + params.window + 1).min(liked.len());
                // A pair weighs what the later like's exposure weighs.
                for &(b, weight) in &liked[i + 1..end] {
                    if a == b || (!params.same_artist_pairs && tokens.same_artist(a, b)) {
                        continue;
                    }
                    let rate = rate * weight;
                    // Both directions: similarity is symmetric.
                    for (x, y) in [(a, b), (b, a)] {
                        sgd.step(x, y, 1.0, rate);
                        for _ in 0..params.negatives {
                            if let Some(n) = sampler.draw(&mut rng) {
                                if n != y {
                                    sgd.step(x, n, 0.0, rate);
                                }
                            }
                        }
                    }
                }
            }
        }
        for &(skipped, anchor, weight) in &evidence.skips {
            sgd.step(anchor, skipped, 0.0, rate * weight);
            sgd.step(skipped, anchor, 0.0, rate * weight);
        }
        bar.inc(1);
    }

    let mut vectors = vec![0.0f32; tracks * dim];
    let (mut a, mut b) = (vec![0.0; dim], vec![0.0; dim]);
    for t in 0..tracks {
        tokens.sum(&sgd.input, dim, t as u32, &mut a);
        tokens.sum(&sgd.output, dim, t as u32, &mut b);
        let row = &mut vectors[t * dim..(t + 1) * dim];
        row.iter_mut()
            .zip(a.iter().zip(&b))
            .for_each(|(v, (x, y))| *v = x + y);
    }
    let embedding = Embedding::indexed(vectors, dim, &tokens, params.neighbours, params.threads);
    bar.inc(1);
    embedding
}

impl Embedding {
    /// The served embedding of `vectors` (row `t` is track `t`'s): each row
    /// scaled to unit length, and each track's `neighbours` nearest tracks
    /// by cosine, scanned on `threads` threads.
    pub(super) fn indexed(
        mut vectors: Vec<f32>,
        dim: usize,
        tokens: &Tokens,
        lists: NeighbourLists,
        threads: usize,
    ) -> Embedding {
        for row in vectors.chunks_exact_mut(dim) {
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm > 0.0 {
                row.iter_mut().for_each(|v| *v /= norm);
            }
        }
        let artist_of: Vec<u32> = tokens.of_track.iter().map(|t| t[1]).collect();
        Embedding::of_unit_vectors(vectors, dim, &artist_of, lists, threads)
    }
}

/// Each row's `lists.count` nearest rows by inner product, best first
/// (ties: lower id), with at most `lists.per_artist` rows of one artist
/// (`artist_of[row]`).
fn nearest_neighbours(
    vectors: &[f32],
    dim: usize,
    artist_of: &[u32],
    lists: NeighbourLists,
    threads: usize,
) -> Vec<Vec<u32>> {
    let n = vectors.len() / dim;
    let threads = threads.max(1);
    let row = |t: usize| &vectors[t * dim..(t + 1) * dim];
    let parts = fan_out(0..threads, |part| {
        let mut scores: Vec<(f32, u32)> = Vec::with_capacity(n);
        (part..n)
            .step_by(threads)
            .map(|t| {
                let query = row(t);
                scores.clear();
                scores.extend((0..n).filter(|&u| u != t).map(|u| {
                    let s: f32 = query.iter().zip(row(u)).map(|(x, y)| x * y).sum();
                    (s, u as u32)
                }));
                (t, lists.best(&mut scores, artist_of))
            })
            .collect::<Vec<_>>()
    });
    let mut rows: Vec<(usize, Vec<u32>)> = parts.into_iter().flatten().collect();
    rows.sort_unstable_by_key(|(t, _)| *t);
    rows.into_iter().map(|(_, r)| r).collect()
}

/// How long a served neighbour list is, and how much of it one artist may
/// fill.
///
/// Why a cap per artist: the serving recommenders discount an artist the
/// session has already heard (listeners tire of one artist), so past a few
/// tracks of one artist a list entry is a candidate that never wins. An
/// artist with many tracks whose vectors are all close (a prolific artist's
/// new releases, heard too little to tell apart, share the artist token)
/// would otherwise fill a whole list, leave a session seeded there no other
/// artist to move to, and chain that artist to exhaustion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NeighbourLists {
    /// Neighbours kept per track.
    pub count: usize,
    /// At most this many of them by one artist; 0 for no limit.
    pub per_artist: usize,
}

impl Default for NeighbourLists {
    fn default() -> Self {
        NeighbourLists {
            count: 50,
            per_artist: 10,
        }
    }
}

impl NeighbourLists {
    /// The best of `scores` (score, track), best first (ties: lower id),
    /// within the per-artist cap. Reorders `scores`.
    fn best(&self, scores: &mut [(f32, u32)], artist_of: &[u32]) -> Vec<u32> {
        let by_score = |x: &(f32, u32), y: &(f32, u32)| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1));
        // Sorting a few times the list's length nearly always finds enough
        // tracks within the cap; the whole row is sorted only when not.
        let mut sorted = if self.per_artist == 0 {
            self.count
        } else {
            4 * self.count
        };
        loop {
            let keep = sorted.min(scores.len());
            if keep > 0 && keep < scores.len() {
                scores.select_nth_unstable_by(keep - 1, by_score);
            }
            scores[..keep].sort_unstable_by(by_score);
            let mut per_artist: HashMap<u32, usize> = HashMap::new();
            let best: Vec<u32> = scores[..keep]
                .iter()
                .map(|&(_, u)| u)
                .filter(|&u| {
                    let seen = per_artist.entry(artist_of[u as usize]).or_insert(0);
                    *seen += 1;
                    self.per_artist == 0 || *seen <= self.per_artist
                })
                .take(self.count)
                .collect();
            if best.len() == self.count || keep == scores.len() {
                return best;
            }
            sorted = scores.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        cosine, embed, largest_difference, mean_cosine_with_group, small_params, two_taste_groups,
    };
    use super::*;

    fn fit_on(sessions: &[Vec<(u32, f64)>], seed: u64) -> Embedding {
        embed(sessions, small_params!(20, seed), fit)
    }

    #[test]
    fn a_vector_that_is_not_a_finite_number_is_found() {
        let mut e = fit_on(&two_taste_groups().1, 42);
        assert!(e.is_finite());
        e.vectors[e.dim + 3] = f32::NAN;
        assert!(!e.is_finite());
    }

    #[test]
    fn tracks_liked_together_are_closer_than_tracks_skipped_across() {
        let e = fit_on(&two_taste_groups().1, 42);
        assert_eq!((e.tracks(), e.dim), (13, 8), "every catalog track");
        let group = |t: u32| t / 5;
        let (mut within, mut across) = (f32::MAX, f32::MIN);
        for a in 0..10 {
            for b in a + 1..10 {
                let c = cosine(&e, a, b);
                if group(a) == group(b) {
                    within = within.min(c);
                } else {
                    across = across.max(c);
                }
            }
        }
        assert!(
            within > across,
            "least similar pair of one group {within}, most similar pair across {across}"
        );
        for t in 0..10 {
            let near = e.neighbours[t as usize]
                .iter()
                .find(|&&n| n < 10)
                .copied()
                .unwrap();
            assert_eq!(group(near), group(t), "{t}'s nearest played track {near}");
        }
    }

    #[test]
    fn fit_is_deterministic_for_a_seed() {
        let sessions = two_taste_groups().1;
        let first = fit_on(&sessions, 5);
        assert_eq!(first, fit_on(&sessions, 5));
        assert_ne!(
            first.vectors,
            fit_on(&sessions, 6).vectors,
            "the seed matters"
        );
    }

    #[test]
    fn a_track_never_played_gets_a_vector_from_its_artist_and_genre() {
        let e = fit_on(&two_taste_groups().1, 42);
        // 10 and 11 differ only by their artists, each heard in one group.
        for (track, group) in [(10, 0), (11, 1)] {
            let norm: f32 = e.vector(track).iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "{track}: norm {norm}");
            let own = mean_cosine_with_group(&e, track, group);
            let other = mean_cosine_with_group(&e, track, 1 - group);
            assert!(
                own > other,
                "unplayed {track} by an artist of group {group}: {own} vs {other}"
            );
        }
    }

    /// The row of a track never played is never updated, so it must start
    /// at zero: a random start would stay in the served vector (cosine ≈
    /// 0.995 between 10 and 12, not 1) instead of the metadata's alone.
    #[test]
    fn unplayed_tracks_of_one_artist_and_genre_get_the_same_vector() {
        let e = fit_on(&two_taste_groups().1, 42);
        let gap = largest_difference(&e, 10, 12);
        assert!(gap < 1e-6, "10 and 12 differ by up to {gap}");
    }

    /// The list of track 0 when the catalog holds eight tracks: 1–5 by
    /// artist 0 (as track 0), all close to track 0; 6 and 7 by artists 1
    /// and 2, further away.
    fn list_of_one_prolific_artist(count: usize, per_artist: usize) -> Vec<u32> {
        let mut scores: Vec<(f32, u32)> = vec![
            (0.99, 1),
            (0.98, 2),
            (0.97, 3),
            (0.96, 4),
            (0.95, 5),
            (0.50, 6),
            (0.40, 7),
        ];
        let artist_of = [0, 0, 0, 0, 0, 0, 1, 2];
        NeighbourLists { count, per_artist }.best(&mut scores, &artist_of)
    }

    #[test]
    fn one_artist_fills_at_most_its_share_of_a_neighbour_list() {
        assert_eq!(list_of_one_prolific_artist(4, 2), vec![1, 2, 6, 7]);
    }

    #[test]
    fn without_a_cap_the_list_is_the_nearest_tracks() {
        assert_eq!(list_of_one_prolific_artist(4, 0), vec![1, 2, 3, 4]);
    }

    #[test]
    fn a_list_is_shorter_only_when_the_cap_leaves_too_few_tracks() {
        assert_eq!(list_of_one_prolific_artist(5, 1), vec![1, 6, 7]);
    }

    #[test]
    fn a_capped_list_looks_past_the_nearest_tracks_when_one_artist_fills_them() {
        // Tracks 1–10 by artist 0, nearest first; track 11 by artist 1, last.
        let mut scores: Vec<(f32, u32)> = (1..=11).map(|t| (1.0 - t as f32 / 100.0, t)).collect();
        let mut artist_of = vec![0; 12];
        artist_of[11] = 1;
        let lists = NeighbourLists {
            count: 2,
            per_artist: 1,
        };
        assert_eq!(lists.best(&mut scores, &artist_of), vec![1, 11]);
    }
}

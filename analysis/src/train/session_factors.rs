//! Track vectors from a factorisation of sessions × tracks: each session
//! has its own interest vector, and a track's listen time in it is
//! `sigmoid(interest · track + bias + artist_repeat[plays])`.
//!
//! Why sessions rather than pairs of likes (item2vec): a session follows one
//! interest, and every listen in it — long, short or skipped — says how
//! close the track is to that interest. Modelling that directly uses the
//! graded listen times and the skips as they are, needs no window, and
//! treats a long session of one policy's picks as one interest seen many
//! times rather than as many pairs of those picks, which a greedy policy's
//! logs would otherwise turn into an echo of its own choices. It is also
//! the very model `session_interest` serves with: the session's interest
//! estimated from feedback, tracks ranked by closeness to it.
//!
//! As in [`super::item2vec`], a track's vector is the sum of three tokens
//! (the track, its artist, its genre), so rarely heard and never served
//! tracks take their artist's and genre's place. The listener's own first
//! track counts as fully listened. `artist_repeat` absorbs the listener
//! tiring of an artist heard `plays` times before in the session, so a
//! short third listen of an artist does not push its track away. Each
//! listen weighs its [exposure weight](super::exposure); `negatives`
//! tracks per listen, drawn uniformly among those heard in training (not by
//! how often a policy served them), at `negative_weight`, stand for the
//! tracks the session did not reach (nearly all far from it).
//!
//! Plain SGD on the logistic loss, one thread with a seeded generator (the
//! same logs give the same vectors); the neighbour scan uses every thread.

use botify::catalog::Catalog;
use indicatif::ProgressBar;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::item2vec::{sigmoid, Embedding, NeighbourLists, Tokens};
use super::Data;

/// Model size and training schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub dim: usize,
    /// Passes over the sessions.
    pub epochs: usize,
    /// Initial SGD step, decayed linearly to a tenth.
    pub learning_rate: f32,
    /// L2 shrinkage per step, on session and token vectors.
    pub regularization: f32,
    /// Uniformly drawn tracks per listen, taken as not listened.
    pub negatives: usize,
    /// The weight of each drawn negative against a logged listen's.
    pub negative_weight: f32,
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
            epochs: 20,
            learning_rate: 0.05,
            regularization: 1e-4,
            negatives: 1,
            negative_weight: 0.5,
            neighbours: NeighbourLists::default(),
            seed: 42,
            threads: 2,
        }
    }
}

/// Artist plays before a listen are bucketed 0, 1, 2, 3 or more.
const PLAY_BUCKETS: usize = 4;

/// One logged listen: track, listen time, artist plays bucket, weight.
type Listen = (u32, f32, usize, f32);

/// The sessions' first listens of each track (repeats say nothing new),
/// sessions with fewer than two left out: one listen fixes no direction.
fn listens(data: Data<'_>, catalog: &Catalog) -> Vec<Vec<Listen>> {
    data.sessions
        .iter()
        .map(|session| {
            let listens = data.first_listens(session, catalog);
            listens
                .into_iter()
                .map(|(k, event, plays)| {
                    let time = if k == 0 { 1.0 } else { event.time as f32 };
                    let plays = (plays as usize).min(PLAY_BUCKETS - 1);
                    (event.track, time, plays, data.weight(session, k) as f32)
                })
                .collect::<Vec<Listen>>()
        })
        .filter(|listens| listens.len() >= 2)
        .collect()
}

/// The parameters SGD moves.
struct Model<'a> {
    tokens: &'a Tokens,
    dim: usize,
    table: Vec<f32>,
    interests: Vec<f32>,
    bias: f32,
    artist_repeat: [f32; PLAY_BUCKETS],
    /// Scratch: the current track's vector and the interest's step.
    track: Vec<f32>,
    step: Vec<f32>,
}

impl Model<'_> {
    /// One weighted logistic-loss step on (session, track, listen time).
    fn learn(&mut self, session: usize, listen: Listen, rate: f32, regularization: f32) {
        let (track, time, plays, weight) = listen;
        let dim = self.dim;
        self.track.fill(0.0);
        for tok in self.tokens.of(track) {
            let row = &self.table[tok * dim..(tok + 1) * dim];
            self.track.iter_mut().zip(row).for_each(|(x, r)| *x += r);
        }
        let interest = &mut self.interests[session * dim..(session + 1) * dim];
        let score = interest
            .iter()
            .zip(&self.track)
            .map(|(a, b)| a * b)
            .sum::<f32>()
            + self.bias
            + self.artist_repeat[plays];
        let g = rate * weight * (time - sigmoid(score));
        let shrink = rate * regularization;
        for ((s, x), u) in self.step.iter_mut().zip(&self.track).zip(interest.iter()) {
            *s = g * x - shrink * u;
        }
        for tok in self.tokens.of(track) {
            let row = &mut self.table[tok * dim..(tok + 1) * dim];
            for (r, u) in row.iter_mut().zip(interest.iter()) {
                *r += g * u - shrink * *r;
            }
        }
        interest
            .iter_mut()
            .zip(&self.step)
            .for_each(|(u, s)| *u += s);
        // The offsets are shared by every listen: smaller steps.
        self.bias += 0.1 * g;
        if plays > 0 {
            self.artist_repeat[plays] += 0.1 * g;
        }
    }
}

/// Learns the vector of every track of `catalog` from the sessions of
/// `data`, then indexes each track's nearest neighbours. `bar` counts
/// epochs and then the neighbour scan.
pub fn fit(data: Data<'_>, catalog: &Catalog, params: Params, bar: &ProgressBar) -> Embedding {
    let tokens = Tokens::new(catalog);
    let tracks = catalog.len();
    let dim = params.dim.max(1);
    let sessions = listens(data, catalog);
    // Negatives are drawn among tracks heard in training, so a track never
    // heard is never moved: its token stays at zero, and its vector is
    // exactly its artist's and genre's.
    let mut heard: Vec<u32> = sessions.iter().flatten().map(|l| l.0).collect();
    heard.sort_unstable();
    heard.dedup();
    let mut rng = SmallRng::seed_from_u64(params.seed);
    let init = 0.5 / dim as f32;
    let mut random =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.gen_range(-init..init)).collect() };
    let mut table = random(tokens.count * dim);
    for track in 0..tracks as u32 {
        if heard.binary_search(&track).is_err() {
            table[track as usize * dim..(track as usize + 1) * dim].fill(0.0);
        }
    }
    let mut model = Model {
        tokens: &tokens,
        dim,
        table,
        interests: random(sessions.len() * dim),
        bias: 0.0,
        artist_repeat: [0.0; PLAY_BUCKETS],
        track: vec![0.0; dim],
        step: vec![0.0; dim],
    };
    let epochs = params.epochs.max(1);
    bar.set_length(epochs as u64 + 1);
    for epoch in 0..epochs {
        let rate = params.learning_rate * (1.0 - 0.9 * epoch as f32 / epochs as f32);
        for (session, listens) in sessions.iter().enumerate() {
            for &listen in listens {
                model.learn(session, listen, rate, params.regularization);
                for _ in 0..params.negatives {
                    let track = heard[rng.gen_range(0..heard.len())];
                    let far = (track, 0.0, 0, params.negative_weight);
                    model.learn(session, far, rate, params.regularization);
                }
            }
        }
        bar.inc(1);
    }
    let mut vectors = vec![0.0f32; tracks * dim];
    for (t, row) in vectors.chunks_exact_mut(dim).enumerate() {
        for tok in tokens.of(t as u32) {
            let token = &model.table[tok * dim..(tok + 1) * dim];
            row.iter_mut().zip(token).for_each(|(x, r)| *x += r);
        }
    }
    let embedding = Embedding::indexed(vectors, dim, &tokens, params.neighbours, params.threads);
    bar.inc(1);
    embedding
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::testing::{
        cosine, data, embed, largest_difference, mean_cosine_with_group, small_params,
        two_taste_groups,
    };

    fn params(seed: u64) -> Params {
        small_params!(40, seed)
    }

    fn fit_on(sessions: &[Vec<(u32, f64)>], seed: u64) -> Embedding {
        embed(sessions, params(seed), fit)
    }

    #[test]
    fn tracks_of_one_interest_are_closer_than_tracks_skipped_across() {
        let (_, sessions) = two_taste_groups();
        let e = fit_on(&sessions, 42);
        assert_eq!((e.tracks(), e.dim), (13, 8), "every catalog track");
        let group = |t: u32| t / 5;
        for t in 0..10u32 {
            let near = e.neighbours[t as usize].iter().find(|&&n| n < 10).copied();
            assert_eq!(
                near.map(group),
                Some(group(t)),
                "{t}'s nearest played track"
            );
            let mean = |g: u32| mean_cosine_with_group(&e, t, g);
            assert!(mean(group(t)) > mean(1 - group(t)), "track {t}");
        }
    }

    #[test]
    fn unplayed_tracks_take_their_artists_and_genres_vector_and_fit_is_seeded() {
        let (_, sessions) = two_taste_groups();
        let e = fit_on(&sessions, 42);
        // 10 and 12: one artist and one genre, neither ever played.
        let gap = largest_difference(&e, 10, 12);
        assert!(gap < 1e-6, "10 and 12 differ by up to {gap}");
        assert_eq!(e, fit_on(&sessions, 42));
        assert_ne!(e.vectors, fit_on(&sessions, 7).vectors, "the seed matters");
    }

    #[test]
    fn a_heavier_listen_counts_more() {
        // Track 9 is liked once in a group-0 session: with its listen
        // weighing 30 it moves into group 0.
        let (_, mut sessions) = two_taste_groups();
        sessions.push(vec![(0, 1.0), (1, 1.0), (9, 1.0)]);
        let refs: Vec<&[(u32, f64)]> = sessions.iter().map(Vec::as_slice).collect();
        let (records, sessions) = data(&refs);
        let last = sessions.len() - 1;
        let mut weights = vec![1.0f32; records.len()];
        weights[sessions[last].first + 2] = 30.0;
        let (catalog, _) = two_taste_groups();
        let fit_with = |w: &[f32]| {
            let data = Data::new(&records, &sessions).with_exposure(w);
            let params = params(Params::default().seed);
            fit(data, &catalog, params, &ProgressBar::hidden())
        };
        let plain = fit_with(&[]);
        let weighted = fit_with(&weights);
        let pull = |e: &Embedding| cosine(e, 9, 0) + cosine(e, 9, 1);
        assert!(
            pull(&weighted) > pull(&plain) + 0.1,
            "{} vs {}",
            pull(&weighted),
            pull(&plain)
        );
    }
}

//! Track vectors from a factorisation of sessions × tracks: at each listen
//! the session has a taste, and the track's listen time in it is
//! `sigmoid(taste · track + bias + artist_repeat[plays])`.
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
//! The taste is the session's interest, drifted towards what it liked:
//! `share · (interest + offset) + pull · liked`, where each like (a listen
//! of at least [`LIKE_TIME`]) multiplies `share` by `drift` and adds the
//! track's vector to `liked`, whose older entries fade by `drift` per like;
//! `pull` is learned. Two reasons, each measured in the 14-day loop
//! (README, "The learning loop"):
//! - Listeners' taste does move with what they like, and a loop's sessions
//!   are long: one fixed point per session misfits them and drags every
//!   track a session heard towards one place. With drift, each listen is
//!   compared with the tracks liked just before it, which is what places
//!   a genre's artists relative to each other.
//! - A listener comes back to the same interests. The sessions of one
//!   listener that start at one artist share an `interest` vector; each
//!   keeps a small `offset` of its own, shrunk hard
//!   (`offset_regularization`), so an interest heard in ten sessions is
//!   estimated from all their listens instead of each session's few.
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

use std::collections::HashMap;

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
    /// L2 shrinkage per step, on interest and token vectors.
    pub regularization: f32,
    /// L2 shrinkage per step of a session's offset from the interest it
    /// shares with the listener's other sessions of that interest.
    pub offset_regularization: f32,
    /// The share of the taste that survives a like (the rest moves towards
    /// the liked track), at most [`MAX_DRIFT`]. 0.7: trained on days 11–13
    /// of a 14-day loop and served the next day, 0.5 and 0.7 served within
    /// a standard error of each other, 0.85 and 0.9 4% less.
    pub drift: f32,
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
            offset_regularization: 0.03,
            drift: 0.7,
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

/// The largest `drift`: the liked tracks' faded sum weighs up to
/// `1 / (1 − drift)` vectors in the taste, and SGD on a taste dominated by
/// it diverges (at 1, trained on three days of a 14-day loop, the vectors
/// turned to NaN).
pub const MAX_DRIFT: f32 = 0.9;

/// A listen at least this long is a like: it moves the taste.
const LIKE_TIME: f32 = 0.5;

/// The latest likes whose vectors a listen's step reaches. An older like
/// weighs at most `drift^5` (0.17 at 0.7) of the latest in the taste.
const DRIFT_LIKES: usize = 5;

/// One logged listen: track, listen time, artist plays bucket, weight.
type Listen = (u32, f32, usize, f32);

/// A session to learn from: the shared interest it belongs to, and its
/// first listens of each track.
struct Session {
    interest: usize,
    listens: Vec<Listen>,
}

/// The sessions' first listens of each track (repeats say nothing new),
/// sessions with fewer than two left out: one listen fixes no direction.
/// Sessions of one listener whose first track is by one artist share an
/// interest; the count of interests comes second.
fn sessions(data: Data<'_>, catalog: &Catalog) -> (Vec<Session>, usize) {
    let mut interests: HashMap<(u64, u32), usize> = HashMap::new();
    let mut sessions = Vec::with_capacity(data.sessions.len());
    for session in data.sessions {
        let first = data.first_listens(session, catalog);
        if first.len() < 2 {
            continue;
        }
        let key = (session.user, catalog.artist_of(first[0].1.track));
        let next = interests.len();
        let interest = *interests.entry(key).or_insert(next);
        let listens = first
            .into_iter()
            .map(|(k, event, plays)| {
                let time = if k == 0 { 1.0 } else { event.time as f32 };
                let plays = (plays as usize).min(PLAY_BUCKETS - 1);
                (event.track, time, plays, data.weight(session, k) as f32)
            })
            .collect();
        sessions.push(Session { interest, listens });
    }
    (sessions, interests.len())
}

/// Where a session's taste stands before a listen.
struct Taste {
    /// The interest's share: `drift` to the power of the likes so far.
    share: f32,
    /// The liked tracks' vectors, each faded by `drift` per later like.
    liked: Vec<f32>,
    /// The latest likes, oldest first, at most [`DRIFT_LIKES`].
    latest: Vec<u32>,
}

impl Taste {
    fn new(dim: usize) -> Taste {
        Taste {
            share: 1.0,
            liked: vec![0.0; dim],
            latest: Vec::with_capacity(DRIFT_LIKES + 1),
        }
    }

    /// The taste moves towards `track`, whose vector is `vector`.
    fn like(&mut self, track: u32, vector: &[f32], drift: f32) {
        self.share *= drift;
        for (l, v) in self.liked.iter_mut().zip(vector) {
            *l = drift * *l + v;
        }
        if self.latest.len() == DRIFT_LIKES {
            self.latest.remove(0);
        }
        self.latest.push(track);
    }
}

/// The parameters SGD moves.
struct Model<'a> {
    tokens: &'a Tokens,
    dim: usize,
    table: Vec<f32>,
    /// One row per shared interest.
    interests: Vec<f32>,
    /// One row per session: its departure from its shared interest.
    offsets: Vec<f32>,
    bias: f32,
    artist_repeat: [f32; PLAY_BUCKETS],
    /// How strongly the liked tracks move the taste.
    pull: f32,
    /// Scratch: the current track's vector and the taste.
    track: Vec<f32>,
    taste: Vec<f32>,
}

/// The rates of one step.
#[derive(Clone, Copy)]
struct Step {
    rate: f32,
    regularization: f32,
    offset_regularization: f32,
    drift: f32,
}

impl Model<'_> {
    /// `track`'s vector, into `out`.
    fn vector_of(&self, track: u32, out: &mut [f32]) {
        self.tokens.sum(&self.table, self.dim, track, out);
    }

    /// One weighted logistic-loss step on a listen of session `index`
    /// (of shared interest `interest`) at `taste`.
    fn learn(&mut self, index: usize, interest: usize, taste: &Taste, listen: Listen, step: Step) {
        let (track, time, plays, weight) = listen;
        let dim = self.dim;
        let mut vector = std::mem::take(&mut self.track);
        self.vector_of(track, &mut vector);
        let shared = &mut self.interests[interest * dim..(interest + 1) * dim];
        let own = &mut self.offsets[index * dim..(index + 1) * dim];
        for (((t, s), o), l) in self
            .taste
            .iter_mut()
            .zip(&*shared)
            .zip(&*own)
            .zip(&taste.liked)
        {
            *t = taste.share * (s + o) + self.pull * l;
        }
        let score = self
            .taste
            .iter()
            .zip(&vector)
            .map(|(a, b)| a * b)
            .sum::<f32>()
            + self.bias
            + self.artist_repeat[plays];
        let g = step.rate * weight * (time - sigmoid(score));
        let shrink = step.rate * step.regularization;
        let shrink_own = step.rate * step.offset_regularization;
        let towards = g * taste.share;
        for ((s, o), v) in shared.iter_mut().zip(own.iter_mut()).zip(&vector) {
            *s += towards * v - shrink * *s;
            *o += towards * v - shrink_own * *o;
        }
        for tok in self.tokens.of(track) {
            let row = &mut self.table[tok * dim..(tok + 1) * dim];
            for (r, t) in row.iter_mut().zip(&self.taste) {
                *r += g * t - shrink * *r;
            }
        }
        // The latest likes move towards (or away from) this track as the
        // taste they shaped did; the newest weighs most.
        let mut fade = g * self.pull;
        for &liked in taste.latest.iter().rev() {
            self.tokens.add(&mut self.table, dim, liked, fade, &vector);
            fade *= step.drift;
        }
        // `pull`, `bias` and `artist_repeat` are shared by every listen:
        // smaller steps.
        let along = taste
            .liked
            .iter()
            .zip(&vector)
            .map(|(a, b)| a * b)
            .sum::<f32>();
        self.pull += 0.1 * g * along;
        self.bias += 0.1 * g;
        if plays > 0 {
            self.artist_repeat[plays] += 0.1 * g;
        }
        self.track = vector;
    }
}

/// Learns the vector of every track of `catalog` from the sessions of
/// `data`, then indexes each track's nearest neighbours. `bar` counts
/// epochs and then the neighbour scan.
pub fn fit(data: Data<'_>, catalog: &Catalog, params: Params, bar: &ProgressBar) -> Embedding {
    let tokens = Tokens::new(catalog);
    let tracks = catalog.len();
    let dim = params.dim.max(1);
    let (sessions, interests) = sessions(data, catalog);
    // Negatives are drawn among tracks heard in training, so a track never
    // heard is never moved: its token stays at zero, and its vector is
    // exactly its artist's and genre's.
    let mut heard: Vec<u32> = sessions
        .iter()
        .flat_map(|s| s.listens.iter().map(|l| l.0))
        .collect();
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
        interests: random(interests * dim),
        offsets: vec![0.0; sessions.len() * dim],
        bias: 0.0,
        artist_repeat: [0.0; PLAY_BUCKETS],
        pull: 1.0,
        track: vec![0.0; dim],
        taste: vec![0.0; dim],
    };
    let epochs = params.epochs.max(1);
    bar.set_length(epochs as u64 + 1);
    let mut liked = vec![0.0; dim];
    for epoch in 0..epochs {
        let step = Step {
            rate: params.learning_rate * (1.0 - 0.9 * epoch as f32 / epochs as f32),
            regularization: params.regularization,
            offset_regularization: params.offset_regularization,
            drift: params.drift,
        };
        for (index, session) in sessions.iter().enumerate() {
            let mut taste = Taste::new(dim);
            for (k, &listen) in session.listens.iter().enumerate() {
                model.learn(index, session.interest, &taste, listen, step);
                for _ in 0..params.negatives {
                    let track = heard[rng.gen_range(0..heard.len())];
                    let far = (track, 0.0, 0, params.negative_weight);
                    model.learn(index, session.interest, &taste, far, step);
                }
                // The listener's own first pick is where the taste starts,
                // not a move away from it.
                if k > 0 && listen.1 >= LIKE_TIME {
                    model.vector_of(listen.0, &mut liked);
                    taste.like(listen.0, &liked, params.drift);
                }
            }
        }
        bar.inc(1);
    }
    let mut vectors = vec![0.0f32; tracks * dim];
    for (t, row) in vectors.chunks_exact_mut(dim).enumerate() {
        model.vector_of(t as u32, row);
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
    fn a_listeners_sessions_starting_at_one_artist_share_an_interest() {
        let (catalog, mut listens) = two_taste_groups();
        listens.push(vec![(3, 1.0)]);
        let refs: Vec<&[(u32, f64)]> = listens.iter().map(Vec::as_slice).collect();
        let (records, mut logged) = data(&refs);
        // Sessions 0, 1 and 4 start at tracks 0, 5 and 2, all by artist
        // a0; session 2 starts at track 1, by a1. One listener for all four.
        for k in [0, 1, 2, 4] {
            logged[k].user = 1_000;
        }
        let (sessions, interests) = sessions(Data::new(&records, &logged), &catalog);
        assert_eq!(sessions.len(), 60, "the one-listen session is left out");
        let of = |k: usize| sessions[k].interest;
        assert_eq!((of(0), of(1), of(4)), (of(0), of(0), of(0)));
        assert_ne!(of(2), of(0), "another artist, another interest");
        assert_eq!(
            interests, 58,
            "every other session has an interest of its own"
        );
    }

    #[test]
    fn each_like_moves_the_taste_and_older_likes_fade() {
        let mut taste = Taste::new(2);
        taste.like(1, &[1.0, 0.0], 0.5);
        taste.like(2, &[0.0, 1.0], 0.5);
        assert_eq!(taste.share, 0.25);
        assert_eq!(taste.liked, vec![0.5, 1.0]);
        for track in 3..=8 {
            taste.like(track, &[0.0, 0.0], 0.5);
        }
        assert_eq!(taste.latest, vec![4, 5, 6, 7, 8], "the five latest likes");
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

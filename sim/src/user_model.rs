//! The simulated listener (docs/user-model.md), one [`Session`] at a time.
//!
//! Rules, exactly:
//! - **Start**: one of the user's interests is drawn uniformly; the session
//!   embedding is that track's embedding; the first track is drawn uniformly
//!   from its `interest_neighbours` nearest tracks by inner product (itself
//!   included) and counts as listened with time 1.0. Budget = `session_budget`.
//! - **Listen** to `r`: if `r` was already played in this session, time 0.0;
//!   else `time = round2(sigmoid((emb[r]·session − consume_bias) × consume_sharpness)
//!   × gamma^plays)`, where `plays` is how many tracks of `r`'s artist were
//!   played earlier in the session (the first track included).
//! - **Budget**: after each listen, with probability `1 − time` it drops by 1;
//!   the session is over when it reaches 0.
//! - **Reward** = sum of times of recommended tracks (the first track excluded).
//!
//! A repeated track is not a new play of its artist: nothing new was heard.
//! Every other listen is a play, even one rounded to time 0.0.
//!
//! Cost per listen: one `dim`-long dot product, one `exp`, two hash-table
//! operations on small per-session tables and one random draw — no allocation
//! beyond the tables' occasional growth.

use rand::Rng;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::dynamics::{self, Fresh, Mood};
use crate::rng::SimRng;
use crate::world::{dot, User, World};

/// Listen time of the first track, which the listener chose themselves.
pub const FIRST_TRACK_TIME: f64 = 1.0;

/// One listening session of one user. Cloning it forks the session (same
/// state, same future budget draws), e.g. for look-ahead policies.
#[derive(Clone)]
pub struct Session<'w> {
    world: &'w World,
    user: &'w User,
    user_index: usize,
    interest: u32,
    first_track: u32,
    last_track: u32,
    budget: u32,
    heard: FxHashSet<u32>,
    /// Plays per artist in this session.
    artist_plays: FxHashMap<u32, u32>,
    /// Recommended tracks and their listen times, in order: the feedback a
    /// recommender sees, for agents that must infer the session from it.
    listens: Vec<(u32, f64)>,
    reward: f64,
    steps: u32,
    /// Budget draws come from the session's own stream, so a runner need not
    /// keep its generator alive between listens.
    rng: SimRng,
    /// The listener dynamics, when on (`None`: the static model).
    dynamic: Option<Dynamic>,
}

/// A session's share of the listener dynamics (crate::dynamics).
#[derive(Clone)]
struct Dynamic {
    /// The listener's recent plays, carried across sessions.
    mood: Mood,
    /// The session's taste: the interest's embedding, drifting toward likes.
    taste: Vec<f32>,
    fresh: Fresh,
}

impl<'w> Session<'w> {
    /// Starts a session of the user at position `user_index` in the world
    /// (runners draw it uniformly). Draws the interest and the first track from
    /// `rng`, and seeds the session's own stream from it. Panics if
    /// `user_index >= world.num_users()`.
    pub fn start<R: Rng + ?Sized>(world: &'w World, user_index: usize, rng: &mut R) -> Self {
        Self::begin(world, user_index, rng, None)
    }

    /// Starts a session with the listener dynamics on: the listener arrives
    /// in `mood` (their recent plays), and `fresh` are the tracks released
    /// lately. Draws as [`start`](Self::start) does, then one more: whether
    /// the session starts from the fresh release nearest to its interest.
    pub fn start_dynamic<R: Rng + ?Sized>(
        world: &'w World,
        user_index: usize,
        rng: &mut R,
        mood: Mood,
        fresh: Fresh,
    ) -> Self {
        Self::begin(world, user_index, rng, Some((mood, fresh)))
    }

    fn begin<R: Rng + ?Sized>(
        world: &'w World,
        user_index: usize,
        rng: &mut R,
        dynamic: Option<(Mood, Fresh)>,
    ) -> Self {
        let user = world.user(user_index);
        let interest = user.interests[rng.gen_range(0..user.interests.len())];
        let neighbours = world.interest_neighbours(interest, user.interest_neighbours as usize);
        let mut first_track = neighbours[rng.gen_range(0..neighbours.len())];
        let dynamic = dynamic.map(|(mut mood, fresh)| {
            if !fresh.is_empty() && rng.gen::<f64>() < dynamics::FRESH_START_PROBABILITY {
                first_track = fresh.nearest(world, interest).unwrap_or(first_track);
            }
            mood.played(world, first_track);
            Dynamic {
                mood,
                taste: world.embedding(interest).to_vec(),
                fresh,
            }
        });
        let mut session = Session {
            world,
            user,
            user_index,
            interest,
            first_track,
            last_track: first_track,
            budget: user.session_budget,
            heard: FxHashSet::default(),
            artist_plays: FxHashMap::default(),
            listens: Vec::new(),
            reward: 0.0,
            steps: 0,
            rng: SimRng::new(rng.gen()),
            dynamic,
        };
        session.heard.insert(first_track);
        session.artist_plays.insert(world.artist_of(first_track), 1);
        session
    }

    /// The track the user picked to start the session (time [`FIRST_TRACK_TIME`]).
    pub fn first_track(&self) -> u32 {
        self.first_track
    }

    /// The most recent track: the first track, or the last one listened to.
    pub fn last_track(&self) -> u32 {
        self.last_track
    }

    /// Listens to recommended `track` and returns its listen time in 0..=1
    /// (two decimals), updating budget, reward and the session's memory.
    ///
    /// Panics if the session is over or `track` is not in the catalog: both
    /// are bugs in the caller (a runner validates tracks a service returns).
    pub fn listen(&mut self, track: u32) -> f64 {
        assert!(!self.is_over(), "listen() on a session that is over");
        let time = if self.heard.insert(track) {
            let raw = self.raw_time(track);
            let plays = self
                .artist_plays
                .entry(self.world.artist_of(track))
                .or_insert(0);
            let discounted = raw * self.user.artist_discount_gamma.powi(*plays as i32);
            *plays += 1;
            match &mut self.dynamic {
                None => round2(discounted),
                Some(dynamic) => {
                    let time = round2(discounted * dynamic.mood.boredom(self.world, track));
                    dynamic.mood.played(self.world, track);
                    if time >= dynamics::LIKE_TIME {
                        dynamics::drift(&mut dynamic.taste, self.world.embedding(track));
                    }
                    time
                }
            }
        } else {
            0.0
        };
        if self.rng.gen::<f64>() < 1.0 - time {
            self.budget -= 1;
        }
        self.last_track = track;
        self.listens.push((track, time));
        self.reward += time;
        self.steps += 1;
        time
    }

    /// The time [`listen`](Self::listen) would return for `track` now, without
    /// listening. Lets agents with ground-truth access (the oracle) choose.
    pub fn expected_time(&self, track: u32) -> f64 {
        if self.heard.contains(&track) {
            return 0.0;
        }
        let plays = self.artist_plays_of(self.world.artist_of(track));
        let discounted = self.raw_time(track) * self.user.artist_discount_gamma.powi(plays as i32);
        match &self.dynamic {
            None => round2(discounted),
            Some(dynamic) => round2(discounted * dynamic.mood.boredom(self.world, track)),
        }
    }

    /// Listen time of `track` for a fresh artist: the sigmoid of
    /// docs/user-model.md#listen-time before the artist discount (and
    /// boredom) and rounding. With dynamics the affinity is with the
    /// session's drifting taste, and a fresh release gets a bonus.
    pub fn raw_time(&self, track: u32) -> f64 {
        let embedding = self.world.embedding(track);
        let affinity = match &self.dynamic {
            None => f64::from(dot(embedding, self.world.embedding(self.interest))),
            Some(dynamic) => {
                let bonus = if dynamic.fresh.contains(track) {
                    dynamics::FRESH_AFFINITY_BONUS
                } else {
                    0.0
                };
                f64::from(dot(embedding, &dynamic.taste)) + bonus
            }
        };
        sigmoid((affinity - self.user.consume_bias) * self.user.consume_sharpness)
    }

    /// Ends the session, giving back the listener's mood (their recent
    /// plays) for the next one; `None` without dynamics.
    pub fn into_mood(self) -> Option<Mood> {
        self.dynamic.map(|d| d.mood)
    }

    /// The recommended tracks listened so far with their times, oldest
    /// first (the first track, listened with [`FIRST_TRACK_TIME`], excluded).
    pub fn listens(&self) -> &[(u32, f64)] {
        &self.listens
    }

    pub fn is_over(&self) -> bool {
        self.budget == 0
    }

    /// Whether `track` was played in this session (the first track included).
    pub fn has_heard(&self, track: u32) -> bool {
        self.heard.contains(&track)
    }

    /// How many tracks of `artist` were played in this session.
    pub fn artist_plays_of(&self, artist: u32) -> u32 {
        self.artist_plays.get(&artist).copied().unwrap_or(0)
    }

    /// Episode reward: the sum of listen times of recommended tracks.
    pub fn reward(&self) -> f64 {
        self.reward
    }

    /// Number of recommended tracks listened to (the first track excluded).
    pub fn steps(&self) -> u32 {
        self.steps
    }

    pub fn budget(&self) -> u32 {
        self.budget
    }

    /// The interest track whose embedding is the session embedding.
    pub fn interest(&self) -> u32 {
        self.interest
    }

    pub fn user(&self) -> &'w User {
        self.user
    }

    /// Position of the user in [`World::users`].
    pub fn user_index(&self) -> usize {
        self.user_index
    }

    pub fn world(&self) -> &'w World {
        self.world
    }
}

/// The session's state, without the world it refers to.
impl std::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.user.user)
            .field("interest", &self.interest)
            .field("last_track", &self.last_track)
            .field("budget", &self.budget)
            .field("steps", &self.steps)
            .field("reward", &self.reward)
            .finish_non_exhaustive()
    }
}

pub(crate) fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Rounds to two decimals, as listen times are reported.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::session_rng;
    use crate::world::tests::{tiny_world, user};
    use crate::world::User;

    /// Unit vectors at the given angles (degrees) in the plane.
    fn at(angles: &[f64]) -> Vec<[f32; 2]> {
        angles
            .iter()
            .map(|a| {
                let r = a.to_radians();
                [r.cos() as f32, r.sin() as f32]
            })
            .collect()
    }

    #[test]
    fn first_track_is_a_near_neighbour_of_an_interest_with_time_one() {
        // Tracks 0..=3 are close to interest 0; 4 and 5 point elsewhere.
        let emb = at(&[0.0, 5.0, 10.0, 15.0, 120.0, 180.0]);
        let mut u = user(vec![0], 0.0, 1.0);
        u.interest_neighbours = 3;
        let w = tiny_world(&emb, &["A", "B", "C", "D", "E", "F"], vec![u]);
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..300 {
            let s = Session::start(&w, 0, &mut session_rng(1, i));
            assert_eq!(s.interest(), 0);
            assert_eq!(s.first_track(), s.last_track());
            assert!(s.has_heard(s.first_track()));
            assert_eq!(s.reward(), 0.0, "the first track is not rewarded");
            assert_eq!(s.steps(), 0);
            seen.insert(s.first_track());
        }
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            vec![0, 1, 2],
            "uniform over the 3 nearest, the interest included"
        );
        assert_eq!(FIRST_TRACK_TIME, 1.0);
    }

    #[test]
    fn interests_are_drawn_uniformly() {
        let emb = at(&[0.0, 90.0, 180.0]);
        let mut u = user(vec![0, 1, 2], 0.0, 1.0);
        u.interest_neighbours = 1;
        let w = tiny_world(&emb, &["A", "B", "C"], vec![u]);
        let mut counts = [0; 3];
        for i in 0..3000 {
            let s = Session::start(&w, 0, &mut session_rng(2, i));
            counts[s.interest() as usize] += 1;
            assert_eq!(s.first_track(), s.interest());
        }
        assert!(
            counts.iter().all(|&c| (900..1100).contains(&c)),
            "{counts:?}"
        );
    }

    fn one_interest_world(emb: &[[f32; 2]], artists: &[&str], tweak: impl Fn(&mut User)) -> World {
        let mut u = user(vec![0], 0.3, 9.0);
        u.interest_neighbours = 1;
        tweak(&mut u);
        tiny_world(emb, artists, vec![u])
    }

    #[test]
    fn listen_time_is_the_rounded_sigmoid_of_affinity() {
        let emb = at(&[0.0, 60.0, 90.0]);
        let w = one_interest_world(&emb, &["A", "B", "C"], |_| {});
        let mut s = Session::start(&w, 0, &mut session_rng(3, 0));
        // cos 60° = 0.5: sigmoid((0.5 - 0.3) * 9) = sigmoid(1.8) = 0.8581 -> 0.86
        assert_eq!(s.expected_time(1), 0.86);
        assert_eq!(s.listen(1), 0.86);
        // cos 90° = 0: sigmoid(-2.7) = 0.0630 -> 0.06
        assert_eq!(s.listen(2), 0.06);
        assert!((s.reward() - 0.92).abs() < 1e-12);
        assert_eq!(s.steps(), 2);
    }

    #[test]
    fn a_repeated_track_gets_zero_and_no_artist_play() {
        let emb = at(&[0.0, 10.0, 20.0]);
        let w = one_interest_world(&emb, &["A", "B", "B"], |u| u.session_budget = 100);
        let mut s = Session::start(&w, 0, &mut session_rng(4, 0));
        assert_eq!(s.listen(0), 0.0, "the first track was already played");
        let t = s.listen(1);
        assert!(t > 0.0);
        assert_eq!(s.listen(1), 0.0);
        assert_eq!(s.expected_time(1), 0.0);
        assert_eq!(s.artist_plays_of(w.artist_of(1)), 1);
    }

    #[test]
    fn artist_discount_is_gamma_to_the_prior_plays_of_the_artist() {
        // All tracks identical to the interest: raw = sigmoid((1 - 0.3) * 9) = 0.99817.
        let emb = at(&[0.0; 5]);
        let w = one_interest_world(&emb, &["A", "A", "A", "B", "A"], |u| {
            u.session_budget = 100;
            u.artist_discount_gamma = 0.5;
        });
        let mut s = Session::start(&w, 0, &mut session_rng(5, 0));
        assert_eq!(s.first_track(), 0);
        let raw = s.raw_time(1);
        assert!((raw - 0.998_17).abs() < 1e-5);
        // The first track already played A once.
        assert_eq!(s.listen(1), round2(raw * 0.5));
        assert_eq!(s.listen(2), round2(raw * 0.25));
        // A fresh artist is not discounted, and does not affect A's count.
        assert_eq!(s.listen(3), round2(raw));
        assert_eq!(s.listen(4), round2(raw * 0.125));
        assert_eq!(s.artist_plays_of(w.artist_of(0)), 4);
    }

    #[test]
    fn budget_drops_with_probability_one_minus_time() {
        // A track with time 1.0 never drops the budget.
        let emb = at(&[0.0, 0.0]);
        let w = one_interest_world(&emb, &["A", "B"], |u| {
            u.consume_sharpness = 100.0;
            u.session_budget = 1;
        });
        let mut s = Session::start(&w, 0, &mut session_rng(6, 0));
        assert_eq!(s.listen(1), 1.0);
        assert_eq!(s.budget(), 1);
        assert!(!s.is_over());
        // A repeat (time 0) always drops it; budget 1 -> session over.
        assert_eq!(s.listen(1), 0.0);
        assert!(s.is_over());

        // time 0.86: the budget drops in about 14% of listens.
        let emb = at(&[0.0, 60.0]);
        let w = one_interest_world(&emb, &["A", "B"], |u| u.session_budget = 2);
        let drops = (0..10_000)
            .filter(|&i| {
                let mut s = Session::start(&w, 0, &mut session_rng(7, i));
                assert_eq!(s.listen(1), 0.86);
                s.budget() == 1
            })
            .count();
        assert!((1250..1550).contains(&drops), "{drops} drops in 10000");
    }

    #[test]
    fn session_ends_at_budget_zero_and_reward_sums_recommended_times() {
        let emb = at(&[0.0, 80.0, 85.0, 90.0, 95.0, 100.0, 105.0, 110.0]);
        let w = one_interest_world(&emb, &["A", "B", "C", "D", "E", "F", "G", "H"], |u| {
            u.session_budget = 2
        });
        let mut s = Session::start(&w, 0, &mut session_rng(8, 0));
        let mut total = 0.0;
        let mut track = 1;
        // Past the 7 fresh tracks every listen is a repeat (time 0), which
        // must drop the budget, so 2 + 7 listens always end the session.
        for _ in 0..9 {
            if s.is_over() {
                break;
            }
            total += s.listen(track);
            track = if track == 7 { 1 } else { track + 1 };
        }
        assert!(s.is_over());
        assert_eq!(s.budget(), 0);
        assert!((s.reward() - total).abs() < 1e-12);
        assert!(s.steps() >= 2);
    }

    #[test]
    #[should_panic(expected = "over")]
    fn listening_after_the_end_is_a_bug() {
        let emb = at(&[0.0]);
        let w = one_interest_world(&emb, &["A"], |u| u.session_budget = 1);
        let mut s = Session::start(&w, 0, &mut session_rng(9, 0));
        s.listen(0);
        s.listen(0);
    }

    #[test]
    fn sessions_are_reproducible_from_their_seed() {
        let emb = at(&[0.0, 30.0, 60.0, 90.0]);
        let mut u = user(vec![0, 3], 0.3, 9.0);
        u.interest_neighbours = 2;
        let w = tiny_world(&emb, &["A", "B", "C", "D"], vec![u]);
        let run = |i| {
            let mut s = Session::start(&w, 0, &mut session_rng(10, i));
            let mut trace = vec![s.first_track()];
            for t in [1, 2, 3, 0] {
                if s.is_over() {
                    break;
                }
                s.listen(t);
                trace.push(s.budget());
            }
            trace
        };
        for i in 0..20 {
            assert_eq!(run(i), run(i));
        }
    }
}

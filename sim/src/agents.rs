//! Simulator-side policies: baselines and a ground-truth upper reference.
//!
//! These are not botify recommenders: they run inside the simulator, next to
//! the user model, and the oracle reads the hidden embeddings. They give every
//! experiment fixed reference points (random ≈ floor, oracle ≈ ceiling) and
//! are what the world generator was calibrated with ([`crate::calibration`]).
//!
//! Like every botify recommender, they never return a track already heard in
//! the session while an unheard one exists.

use rand::Rng;
use rustc_hash::FxHashMap;

use crate::rng::SimRng;
use crate::user_model::{sigmoid, Session};
use crate::world::World;

/// A policy choosing the next track of a session.
pub trait Agent {
    fn recommend(&mut self, session: &Session<'_>, rng: &mut SimRng) -> u32;
}

/// Uniformly random over the catalog's tracks not yet heard in the session.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomAgent;

/// Draws before giving up on rejection sampling: sessions are short compared
/// with the catalog, so one draw nearly always succeeds.
const RANDOM_DRAWS: usize = 32;

impl Agent for RandomAgent {
    fn recommend(&mut self, session: &Session<'_>, rng: &mut SimRng) -> u32 {
        let n = session.world().num_tracks() as u32;
        for _ in 0..RANDOM_DRAWS {
            let t = rng.gen_range(0..n);
            if !session.has_heard(t) {
                return t;
            }
        }
        // Nearly the whole catalog was heard: take the first unheard track
        // after a random offset, or any track when none is left.
        let offset = rng.gen_range(0..n);
        (0..n)
            .map(|i| (offset + i) % n)
            .find(|&t| !session.has_heard(t))
            .unwrap_or(offset)
    }
}

/// A uniformly random unheard track by the artist of the previous track,
/// falling back to [`RandomAgent`] when that artist has none left. This is
/// what botify's `sticky_artist` does, reproduced here for calibration.
#[derive(Debug, Clone, Copy, Default)]
pub struct StickyArtistAgent;

impl Agent for StickyArtistAgent {
    fn recommend(&mut self, session: &Session<'_>, rng: &mut SimRng) -> u32 {
        let world = session.world();
        let tracks = world.artist_tracks(world.artist_of(session.last_track()));
        let unheard = tracks.iter().filter(|&&t| !session.has_heard(t)).count();
        if unheard == 0 {
            return RandomAgent.recommend(session, rng);
        }
        let pick = rng.gen_range(0..unheard);
        tracks
            .iter()
            .copied()
            .filter(|&t| !session.has_heard(t))
            .nth(pick)
            .expect("pick < unheard")
    }
}

/// Each anchor track's nearest tracks by inner product, best first, cached:
/// both bounds scan the neighbourhood of one track per session (the
/// interest, or the first track), many sessions share it, and an exact
/// search costs a pass over the catalog. A list starts with `candidates`
/// tracks and grows fourfold when a session exhausts it; at most
/// [`OracleAgent::CACHE_LIMIT`] lists are kept, then the cache restarts.
#[derive(Debug, Clone)]
struct NearestLists {
    candidates: usize,
    lists: FxHashMap<u32, Vec<u32>>,
}

impl NearestLists {
    fn new(candidates: usize) -> NearestLists {
        NearestLists {
            candidates: candidates.max(1),
            lists: FxHashMap::default(),
        }
    }

    /// `anchor`'s list, computed on first use.
    fn of(&mut self, world: &World, anchor: u32) -> &[u32] {
        if self.lists.len() >= OracleAgent::CACHE_LIMIT && !self.lists.contains_key(&anchor) {
            self.lists.clear();
        }
        let candidates = self.candidates;
        self.lists
            .entry(anchor)
            .or_insert_with(|| world.nearest(world.embedding(anchor), candidates))
    }

    /// Grows `anchor`'s list fourfold; false when it already holds the
    /// whole catalog.
    fn grow(&mut self, world: &World, anchor: u32) -> bool {
        let Some(list) = self.lists.get_mut(&anchor) else {
            return true;
        };
        if list.len() >= world.num_tracks() {
            return false;
        }
        *list = world.nearest(world.embedding(anchor), list.len() * 4);
        true
    }

    /// What `choose` picks from `anchor`'s list, the list grown until it
    /// picks something; when the whole catalog was heard, any answer is a
    /// repeat, so the session's last track.
    fn pick(
        &mut self,
        session: &Session<'_>,
        anchor: u32,
        mut choose: impl FnMut(&[u32]) -> Option<u32>,
    ) -> u32 {
        let world = session.world();
        loop {
            if let Some(track) = choose(self.of(world, anchor)) {
                return track;
            }
            if !self.grow(world, anchor) {
                return session.last_track();
            }
        }
    }
}

/// Greedy ground truth: the unheard track with the highest listen time the
/// user would give right now (affinity to the session embedding, artist
/// discount and rounding included). Ties go to the higher raw affinity.
///
/// For speed it scans the session's nearest tracks (by inner product with the
/// session embedding) best first, starting with `candidates` of them, and stops
/// once a track's undiscounted time cannot beat the best found — every later
/// track, inside or outside the list, has a lower affinity. Only if the list
/// runs out first is it grown fourfold, so the choice is exactly the greedy
/// optimum over the whole catalog. Lists are cached per interest track.
///
/// Greedy is not globally optimal (saving a great track for later can pay),
/// but it is far above any log-trained recommender, which is what a ceiling
/// reference needs.
#[derive(Debug, Clone)]
pub struct OracleAgent {
    lists: NearestLists,
}

impl OracleAgent {
    /// Default size of the first candidate list per interest.
    pub const DEFAULT_CANDIDATES: usize = 256;
    /// Most interests whose candidate lists are kept at once (bounds memory on
    /// million-track worlds).
    pub const CACHE_LIMIT: usize = 1 << 16;

    pub fn new(candidates: usize) -> OracleAgent {
        OracleAgent {
            lists: NearestLists::new(candidates),
        }
    }
}

impl Default for OracleAgent {
    fn default() -> Self {
        OracleAgent::new(OracleAgent::DEFAULT_CANDIDATES)
    }
}

impl Agent for OracleAgent {
    fn recommend(&mut self, session: &Session<'_>, _rng: &mut SimRng) -> u32 {
        self.lists
            .pick(session, session.interest(), |list| best_in(session, list))
    }
}

/// The best unheard track of `list` (sorted by affinity, best first), if the
/// list proves it is the best in the catalog.
fn best_in(session: &Session<'_>, list: &[u32]) -> Option<u32> {
    let mut best: Option<(f64, u32)> = None;
    for &t in list {
        let ceiling = (session.raw_time(t) * 100.0).round() / 100.0;
        if let Some((best_time, best_track)) = best {
            if ceiling <= best_time {
                return Some(best_track);
            }
        }
        if session.has_heard(t) {
            continue;
        }
        let time = session.expected_time(t);
        if best.is_none_or(|(best_time, _)| time > best_time) {
            best = Some((time, t));
        }
    }
    None
}

/// Ground truth about tracks, none about the listener: the bound a
/// recommender could reach if it had learned the catalog perfectly.
///
/// It knows every track's embedding (as a perfectly trained item model
/// would) and the world's listening rule with its population-mean habits,
/// but not the session's interest, the user's own habits or the budget. Like
/// a recommender it sees only the first track and the listen time of each
/// recommendation, and infers from them where the session points:
///
/// ```text
/// query = emb(first) + Σ_k (time_k / γ^plays_k − ½) · emb(t_k)
/// ```
///
/// (a like pulls the query towards a track, a skip pushes it away; dividing
/// by the artist discount credits a repeated artist's low time to the
/// discount, not to the track). It then serves the unheard track with the
/// highest predicted time, `sigmoid((emb·querŷ − b̄)·s̄) · γ^plays`, among the
/// nearest tracks to the first one (grown fourfold when exhausted, like the
/// oracle's list).
#[derive(Debug, Clone)]
pub struct ItemOracleAgent {
    lists: NearestLists,
}

impl ItemOracleAgent {
    /// Population means of the default world's habit ranges (consume_bias
    /// uniform in 0.1..=0.3, consume_sharpness in 5..=10): what the agent
    /// assumes of a listener it does not know.
    const MEAN_BIAS: f64 = 0.2;
    const MEAN_SHARPNESS: f64 = 7.5;
    /// A listen time above this pulls the query towards the track.
    const NEUTRAL_TIME: f64 = 0.5;

    pub fn new(candidates: usize) -> ItemOracleAgent {
        ItemOracleAgent {
            lists: NearestLists::new(candidates),
        }
    }

    /// The session direction inferred from the feedback so far (not normalised).
    fn query(session: &Session<'_>) -> Vec<f32> {
        let world = session.world();
        let gamma = session.user().artist_discount_gamma;
        let mut query = world.embedding(session.first_track()).to_vec();
        let mut plays: FxHashMap<u32, i32> = FxHashMap::default();
        plays.insert(world.artist_of(session.first_track()), 1);
        for &(track, time) in session.listens() {
            let artist_plays = plays.entry(world.artist_of(track)).or_insert(0);
            let discount = gamma.powi(*artist_plays);
            *artist_plays += 1;
            let weight = ((time / discount).min(1.0) - Self::NEUTRAL_TIME) as f32;
            for (q, e) in query.iter_mut().zip(world.embedding(track)) {
                *q += weight * e;
            }
        }
        let norm = crate::world::dot(&query, &query).sqrt().max(f32::EPSILON);
        query.iter_mut().for_each(|q| *q /= norm);
        query
    }
}

impl Default for ItemOracleAgent {
    fn default() -> Self {
        ItemOracleAgent::new(OracleAgent::DEFAULT_CANDIDATES)
    }
}

impl Agent for ItemOracleAgent {
    fn recommend(&mut self, session: &Session<'_>, _rng: &mut SimRng) -> u32 {
        let world = session.world();
        let query = Self::query(session);
        let gamma = session.user().artist_discount_gamma;
        self.lists.pick(session, session.first_track(), |list| {
            list.iter()
                .copied()
                .filter(|&t| !session.has_heard(t))
                .map(|t| {
                    let affinity = f64::from(crate::world::dot(world.embedding(t), &query));
                    let raw = sigmoid((affinity - Self::MEAN_BIAS) * Self::MEAN_SHARPNESS);
                    let plays = session.artist_plays_of(world.artist_of(t)) as i32;
                    (raw * gamma.powi(plays), t)
                })
                .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)))
                .map(|(_, track)| track)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::session_rng;
    use crate::world::{generate, World, WorldParams};

    fn world() -> World {
        let p = WorldParams {
            tracks: 2000,
            users: 200,
            ..WorldParams::default()
        };
        World::new(generate(&p, false).unwrap()).unwrap()
    }

    /// The greedy optimum by brute force over the whole catalog.
    fn brute_force_best(s: &Session<'_>) -> f64 {
        (0..s.world().num_tracks() as u32)
            .filter(|&t| !s.has_heard(t))
            .map(|t| s.expected_time(t))
            .fold(0.0, f64::max)
    }

    #[test]
    fn oracle_is_the_exact_greedy_optimum() {
        let w = world();
        // Few candidates, so the list must grow during long sessions.
        let mut oracle = OracleAgent::new(4);
        for i in 0..30 {
            let mut rng = session_rng(11, i);
            let mut s = Session::start(&w, i as usize % w.num_users(), &mut rng);
            while !s.is_over() && s.steps() < 60 {
                let pick = oracle.recommend(&s, &mut rng);
                assert!(!s.has_heard(pick));
                assert_eq!(s.expected_time(pick), brute_force_best(&s), "session {i}");
                s.listen(pick);
            }
        }
    }

    #[test]
    fn agents_never_repeat_while_unheard_tracks_exist() {
        let w = world();
        let mut agents: Vec<Box<dyn Agent>> = vec![
            Box::new(RandomAgent),
            Box::new(StickyArtistAgent),
            Box::new(OracleAgent::default()),
            // Few candidates, so its list must grow during long sessions.
            Box::new(ItemOracleAgent::new(4)),
        ];
        for agent in &mut agents {
            for i in 0..50 {
                let mut rng = session_rng(12, i);
                let mut s = Session::start(&w, i as usize, &mut rng);
                while !s.is_over() && s.steps() < 200 {
                    let t = agent.recommend(&s, &mut rng);
                    assert!(!s.has_heard(t));
                    s.listen(t);
                }
            }
        }
    }

    #[test]
    fn sticky_artist_stays_with_the_artist_until_it_runs_out() {
        let w = world();
        let mut rng = session_rng(13, 0);
        let mut s = Session::start(&w, 0, &mut rng);
        let artist = w.artist_of(s.first_track());
        let catalog = w.artist_tracks(artist).len();
        let mut agent = StickyArtistAgent;
        for _ in 1..catalog {
            if s.is_over() {
                return;
            }
            let t = agent.recommend(&s, &mut rng);
            assert_eq!(w.artist_of(t), artist);
            s.listen(t);
        }
    }

    /// `agent`'s mean episode reward over 300 sessions drawn from `seed`.
    fn mean_reward(w: &World, agent: &mut dyn Agent, seed: u64) -> f64 {
        let sessions = 300;
        (0..sessions)
            .map(|i| {
                let mut rng = session_rng(seed, i);
                let mut s = Session::start(w, i as usize % w.num_users(), &mut rng);
                while !s.is_over() && s.steps() < 1000 {
                    let t = agent.recommend(&s, &mut rng);
                    s.listen(t);
                }
                s.reward()
            })
            .sum::<f64>()
            / sessions as f64
    }

    #[test]
    fn oracle_beats_random_by_far() {
        let w = world();
        let mean = |agent: &mut dyn Agent| mean_reward(&w, agent, 14);
        let (random, oracle) = (mean(&mut RandomAgent), mean(&mut OracleAgent::default()));
        assert!(oracle > 3.0 * random, "oracle {oracle}, random {random}");
    }

    #[test]
    fn item_oracle_beats_sticky_artist_by_far_and_stays_below_the_oracle() {
        let w = world();
        let mean = |agent: &mut dyn Agent| mean_reward(&w, agent, 15);
        let sticky = mean(&mut StickyArtistAgent);
        let item_oracle = mean(&mut ItemOracleAgent::default());
        let oracle = mean(&mut OracleAgent::default());
        assert!(
            item_oracle > 3.0 * sticky,
            "item oracle {item_oracle}, sticky artist {sticky}"
        );
        assert!(
            item_oracle < oracle,
            "item oracle {item_oracle}, oracle {oracle}"
        );
    }
}

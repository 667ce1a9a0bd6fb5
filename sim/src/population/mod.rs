//! A population that lives for days (docs/user-model.md#days): who listens
//! on a day, how many sessions, when, and who comes back tomorrow.
//!
//! The rules, each with its constant below:
//! - **Activity**: listener `u` has a heavy-tailed activity weight `w`
//!   (log-normal, mean 1, σ [`ACTIVITY_SIGMA`]). Their base visit
//!   probability is `min(MAX_VISIT, VISIT_SCALE × w)`, and an active day
//!   holds `1 + Poisson(k × w)` sessions, with `k` chosen so that the first
//!   day's expected sessions are the run's `--episodes`.
//! - **Returns**: an engaged listener is active on a day with probability
//!   `min(MAX_VISIT, base × (RETURN_BASE + satisfaction))`: satisfied
//!   listeners come back more (KuaiSim's return model).
//! - **Satisfaction**: after each session, `s ← (1 − SATISFACTION_MEMORY) s
//!   + SATISFACTION_MEMORY × (1 − exp(−reward / SATISFACTION_SCALE))`.
//! - **Churn**: after an active day, a listener churns with probability
//!   `CHURN_MAX × (1 − s)`. A churned listener comes back on a day with
//!   probability `base × COMEBACK_FACTOR`, engaged again, satisfaction reset.
//! - **Rhythm**: session start times follow [`rhythm`]; a listener's
//!   sessions of a day never overlap (the runner starts one after the
//!   previous ended).
//!
//! Sessions per listener per day, returns and active days are therefore
//! outcomes of what botify recommends. Every draw of listener `u` on day
//! `d` comes from its own stream, so a day plays the same whatever the
//! concurrency or the order visits finish in.

pub mod rhythm;

use rand::Rng;
use rand_distr::{Distribution, LogNormal, Poisson};

use crate::clock;
use crate::dynamics::{Fresh, Mood};
use crate::rng::{derived_rng, SimRng};
use crate::user_model::Session;
use crate::world::World;

pub const ACTIVITY_SIGMA: f64 = 1.0;
pub const VISIT_SCALE: f64 = 0.3;
pub const MAX_VISIT: f64 = 0.9;
pub const RETURN_BASE: f64 = 0.5;
pub const INITIAL_SATISFACTION: f64 = 0.5;
pub const SATISFACTION_MEMORY: f64 = 0.5;
pub const SATISFACTION_SCALE: f64 = 2.0;
pub const CHURN_MAX: f64 = 0.25;
pub const COMEBACK_FACTOR: f64 = 0.1;

const TRAITS_DOMAIN: u64 = 0x7a17_5000;
const DAY_DOMAIN: u64 = 0xda11_0000;
const CHURN_DOMAIN: u64 = 0xc4a2_0000;

/// One listener's life between visits.
#[derive(Debug, Clone)]
struct Listener {
    /// Chance of a visit on a day, before satisfaction.
    base_visit: f64,
    /// Activity weight `w`: sessions on an active day are `1 + Poisson(k w)`.
    activity: f64,
    chronotype_ms: f64,
    satisfaction: f64,
    churned: bool,
    /// Held here between visits; a visit takes it and gives it back.
    mood: Mood,
}

/// A listener's sessions of one day, played in order.
#[derive(Debug)]
pub struct Visit {
    pub user_index: usize,
    /// Planned start of each session (epoch ms), ascending. A session
    /// starts at its plan or when the previous one ended, if later.
    pub starts: Vec<u64>,
    /// The visit's own stream: its sessions draw from it.
    pub rng: SimRng,
    pub mood: Mood,
    /// Sessions started so far.
    started: usize,
    /// When the last session ended (epoch ms; 0 before the first).
    ended: u64,
    rewards: Vec<f64>,
}

/// A listener's next session of the day starts at least this long after
/// the previous one ended.
pub const BREAK_BETWEEN_SESSIONS_MS: u64 = 2 * 60 * 1000;

impl Visit {
    /// Starts the visit's next session and tells when (epoch ms): at its
    /// planned time, or a break after the previous session ended if later.
    /// `None` once every session was played. The runner plays it, then
    /// hands it back with [`finish_session`](Self::finish_session).
    pub fn next_session<'w>(
        &mut self,
        world: &'w World,
        fresh: Fresh,
    ) -> Option<(Session<'w>, u64)> {
        let planned = *self.starts.get(self.started)?;
        self.started += 1;
        let mood = std::mem::take(&mut self.mood);
        let session = Session::start_dynamic(world, self.user_index, &mut self.rng, mood, fresh);
        Some((session, planned.max(self.ended + BREAK_BETWEEN_SESSIONS_MS)))
    }

    /// Takes back a played session that ended at `ended` (epoch ms).
    pub fn finish_session(&mut self, session: Session<'_>, ended: u64) {
        self.ended = ended;
        self.rewards.push(session.reward());
        self.mood = session.into_mood().expect("a session with dynamics");
    }

    /// What the visit did, for [`Population::settle`].
    pub fn into_outcome(self) -> VisitOutcome {
        VisitOutcome {
            user_index: self.user_index,
            mood: self.mood,
            rewards: self.rewards,
        }
    }
}

/// What a visit did, for the population to remember.
#[derive(Debug)]
pub struct VisitOutcome {
    pub user_index: usize,
    pub mood: Mood,
    /// Each session's reward, in order.
    pub rewards: Vec<f64>,
}

/// Counts of a day's plan, for progress lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayCounts {
    pub visitors: u64,
    pub sessions: u64,
    /// Visitors who had churned and came back.
    pub comebacks: u64,
    /// Listeners churned at the start of the day.
    pub churned: u64,
}

pub struct Population {
    seed: u64,
    listeners: Vec<Listener>,
    /// `k`: sessions per unit of activity beyond the first on an active day.
    sessions_per_activity: f64,
}

impl Population {
    /// Every user of `world`, engaged, with traits drawn from `seed`, scaled
    /// so that the first day holds about `first_day_sessions` sessions.
    pub fn new(world: &World, seed: u64, first_day_sessions: u64) -> Population {
        let activity_law = LogNormal::new(-ACTIVITY_SIGMA * ACTIVITY_SIGMA / 2.0, ACTIVITY_SIGMA)
            .expect("a positive sigma");
        let mut listeners: Vec<Listener> = (0..world.num_users())
            .map(|u| {
                let mut rng = derived_rng(seed, TRAITS_DOMAIN, u as u64);
                let activity = activity_law.sample(&mut rng);
                Listener {
                    base_visit: (VISIT_SCALE * activity).min(MAX_VISIT),
                    activity,
                    chronotype_ms: rhythm::chronotype_ms(&mut rng),
                    satisfaction: INITIAL_SATISFACTION,
                    churned: false,
                    mood: Mood::default(),
                }
            })
            .collect();
        // Day one's visit probability is base × (RETURN_BASE + INITIAL_SATISFACTION) = base.
        let wanted = first_day_sessions as f64;
        let visits: f64 = listeners.iter().map(|l| l.base_visit).sum();
        let weighted: f64 = listeners.iter().map(|l| l.base_visit * l.activity).sum();
        let sessions_per_activity = if wanted > visits && weighted > 0.0 {
            (wanted - visits) / weighted
        } else {
            let scale = wanted / visits.max(f64::MIN_POSITIVE);
            listeners.iter_mut().for_each(|l| l.base_visit *= scale);
            0.0
        };
        Population {
            seed,
            listeners,
            sessions_per_activity,
        }
    }

    /// Who listens on `day` (0-based), how often and when; each visit takes
    /// its listener's mood until [`settle`](Self::settle) gives it back.
    pub fn plan_day(&mut self, day: u64) -> (Vec<Visit>, DayCounts) {
        let n = self.listeners.len() as u64;
        let mut counts = DayCounts::default();
        let mut visits = Vec::new();
        for (u, listener) in self.listeners.iter_mut().enumerate() {
            let mut rng = derived_rng(self.seed, DAY_DOMAIN, day * n + u as u64);
            counts.churned += u64::from(listener.churned);
            let chance = if listener.churned {
                listener.base_visit * COMEBACK_FACTOR
            } else {
                (listener.base_visit * (RETURN_BASE + listener.satisfaction)).min(MAX_VISIT)
            };
            if rng.gen::<f64>() >= chance {
                continue;
            }
            if listener.churned {
                listener.churned = false;
                listener.satisfaction = INITIAL_SATISFACTION;
                counts.comebacks += 1;
            }
            let rate = self.sessions_per_activity * listener.activity;
            let extra = if rate > 0.0 {
                Poisson::new(rate)
                    .expect("a positive rate")
                    .sample(&mut rng) as usize
            } else {
                0
            };
            let mut starts: Vec<u64> = (0..=extra)
                .map(|_| {
                    clock::day_start(day)
                        + rhythm::start_of_session(&mut rng, listener.chronotype_ms)
                })
                .collect();
            starts.sort_unstable();
            counts.visitors += 1;
            counts.sessions += starts.len() as u64;
            visits.push(Visit {
                user_index: u,
                starts,
                rng: SimRng::new(rng.gen()),
                mood: std::mem::take(&mut listener.mood),
                started: 0,
                ended: 0,
                rewards: Vec::new(),
            });
        }
        (visits, counts)
    }

    /// Takes back the day's visits: moods, satisfaction, then who churns.
    pub fn settle(&mut self, day: u64, outcomes: Vec<VisitOutcome>) {
        let n = self.listeners.len() as u64;
        for outcome in outcomes {
            let listener = &mut self.listeners[outcome.user_index];
            listener.mood = outcome.mood;
            for reward in outcome.rewards {
                let pleasure = 1.0 - (-reward / SATISFACTION_SCALE).exp();
                listener.satisfaction = (1.0 - SATISFACTION_MEMORY) * listener.satisfaction
                    + SATISFACTION_MEMORY * pleasure;
            }
            let mut rng = derived_rng(self.seed, CHURN_DOMAIN, day * n + outcome.user_index as u64);
            if rng.gen::<f64>() < CHURN_MAX * (1.0 - listener.satisfaction) {
                listener.churned = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{generate, WorldParams};

    fn world(users: u32) -> World {
        let params = WorldParams {
            tracks: 300,
            users,
            ..WorldParams::default()
        };
        World::new(generate(&params, false).unwrap()).unwrap()
    }

    /// Every visit back with the same reward per session.
    fn settle_all(population: &mut Population, day: u64, visits: Vec<Visit>, reward: f64) {
        let outcomes = visits
            .into_iter()
            .map(|v| VisitOutcome {
                user_index: v.user_index,
                mood: v.mood,
                rewards: vec![reward; v.starts.len()],
            })
            .collect();
        population.settle(day, outcomes);
    }

    #[test]
    fn the_first_day_holds_about_the_requested_sessions_with_a_heavy_tail() {
        let w = world(4000);
        let mut population = Population::new(&w, 1, 8000);
        let (visits, counts) = population.plan_day(0);
        let sessions = counts.sessions as f64;
        assert!((7200.0..8800.0).contains(&sessions), "{counts:?}");
        let mut per_visit: Vec<usize> = visits.iter().map(|v| v.starts.len()).collect();
        per_visit.sort_unstable();
        let median = per_visit[per_visit.len() / 2];
        let top = per_visit[per_visit.len() * 99 / 100];
        assert!(top >= 4 * median, "median {median}, 99th percentile {top}");
        for v in &visits {
            assert!(v.starts.windows(2).all(|p| p[0] <= p[1]));
            assert!(v
                .starts
                .iter()
                .all(|&s| s >= clock::day_start(0) && s < clock::day_start(1)));
        }
    }

    #[test]
    fn satisfied_listeners_come_back_more_and_churn_less() {
        let w = world(4000);
        let active_days = |reward: f64| {
            let mut population = Population::new(&w, 2, 6000);
            let mut active = 0;
            for day in 0..7 {
                let (visits, counts) = population.plan_day(day);
                active += counts.visitors;
                settle_all(&mut population, day, visits, reward);
            }
            active
        };
        let (bored, happy) = (active_days(0.2), active_days(5.0));
        assert!(
            happy as f64 > 1.3 * bored as f64,
            "happy {happy}, bored {bored}"
        );
    }

    #[test]
    fn churned_listeners_come_back_rarely() {
        let w = world(4000);
        let mut population = Population::new(&w, 3, 6000);
        for l in &mut population.listeners {
            l.churned = true;
        }
        let (_, counts) = population.plan_day(0);
        assert_eq!(counts.churned, 4000);
        let base: f64 = population.listeners.iter().map(|l| l.base_visit).sum();
        let expected = base * COMEBACK_FACTOR;
        assert!(
            (counts.comebacks as f64 - expected).abs() < 4.0 * expected.sqrt() + 5.0,
            "{counts:?}, expected about {expected:.0}"
        );
    }

    #[test]
    fn a_day_is_the_same_for_the_same_seed() {
        let w = world(500);
        let plan = |seed| {
            let mut population = Population::new(&w, seed, 1000);
            let (visits, _) = population.plan_day(4);
            visits
                .into_iter()
                .map(|v| (v.user_index, v.starts))
                .collect::<Vec<_>>()
        };
        assert_eq!(plan(5), plan(5));
        assert_ne!(plan(5), plan(6));
    }
}

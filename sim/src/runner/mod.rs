//! Runners: play many listening sessions against a recommender and summarise
//! them, the way the course simulator did.
//!
//! Session `i` of a run with seed `s` draws everything the listener does
//! (user, interest, first track, budget drops) from `session_rng(s, i)`, so
//! a run is reproducible whatever the concurrency or the order sessions
//! finish in. Days continue the session numbering: day `d` plays sessions
//! `d * episodes ..`, so each day has fresh but reproducible sessions.

pub mod days;
pub mod http;
pub mod in_process;

use std::time::Duration;

use hdrhistogram::Histogram;
use rand::Rng;
use tally::Moments;

use crate::dynamics::Fresh;
use crate::population::Visit;
use crate::rng::{session_rng, SimRng};
use crate::user_model::Session;
use crate::world::World;

/// Which sessions a run plays.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub seed: u64,
    /// Index of the first session (day × episodes).
    pub first: u64,
    pub episodes: u64,
}

impl Plan {
    /// Day `day` (0-based) of a multi-day run: fresh sessions each day.
    pub fn day(seed: u64, day: u64, episodes: u64) -> Plan {
        Plan {
            seed,
            first: day * episodes,
            episodes,
        }
    }

    /// Starts session number `offset` of the plan: its own random stream,
    /// its user (uniform over the world's users) and its first track.
    pub fn start<'w>(&self, world: &'w World, offset: u64) -> (Session<'w>, SimRng) {
        let mut rng = session_rng(self.seed, self.first + offset);
        let user_index = rng.gen_range(0..world.num_users());
        let session = Session::start(world, user_index, &mut rng);
        (session, rng)
    }
}

/// A day's sessions: the static model's plan, or a population's visits.
pub enum Work {
    Plan(Plan),
    /// Listeners' visits with the dynamics on; `fresh` are the releases of
    /// the last days.
    Visits {
        visits: Vec<Visit>,
        fresh: Fresh,
    },
}

impl Work {
    /// Sessions the day will play.
    pub fn sessions(&self) -> u64 {
        match self {
            Work::Plan(plan) => plan.episodes,
            Work::Visits { visits, .. } => visits.iter().map(|v| v.starts.len() as u64).sum(),
        }
    }
}

/// What a run (or a day of one) measured.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Episode reward: the sum of times of recommended tracks.
    pub reward: Moments,
    /// Recommendations listened per episode.
    pub steps: Moments,
    /// Requests answered (`/next` and `/last`).
    pub requests: u64,
    pub elapsed: Duration,
    /// Client-side request latency in microseconds (HTTP runs).
    pub latency: Option<Histogram<u64>>,
}

impl Summary {
    pub fn new(with_latency: bool) -> Summary {
        Summary {
            reward: Moments::default(),
            steps: Moments::default(),
            requests: 0,
            elapsed: Duration::ZERO,
            latency: with_latency.then(new_latency_histogram),
        }
    }

    pub fn record_session(&mut self, session: &Session<'_>) {
        self.reward.add(session.reward());
        self.steps.add(f64::from(session.steps()));
    }

    pub fn merge(&mut self, other: &Summary) {
        self.reward.merge(&other.reward);
        self.steps.merge(&other.steps);
        self.requests += other.requests;
        if let (Some(mine), Some(theirs)) = (&mut self.latency, &other.latency) {
            mine.add(theirs).expect("same histogram bounds");
        }
    }

    pub fn sessions(&self) -> u64 {
        self.reward.count()
    }

    /// Listens simulated: each session's recommendations plus its first track.
    pub fn listens(&self) -> u64 {
        (self.steps.mean() * self.steps.count() as f64).round() as u64 + self.sessions()
    }

    /// The course simulator's summary lines.
    pub fn report(&self, title: &str) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mut out = format!(
            "{title}: {} sessions, reward {:.4} ± {:.4} (mean ± s.e.), steps {:.3} ± {:.4}; \
             {} listens in {:.2} s ({:.0} listens/s)",
            self.sessions(),
            self.reward.mean(),
            self.reward.standard_error(),
            self.steps.mean(),
            self.steps.standard_error(),
            self.listens(),
            secs,
            self.listens() as f64 / secs,
        );
        if let Some(h) = &self.latency {
            if !h.is_empty() {
                out.push_str(&format!(
                    "\n  client latency (µs): p50 {} p90 {} p99 {} max {} over {} requests",
                    h.value_at_quantile(0.5),
                    h.value_at_quantile(0.9),
                    h.value_at_quantile(0.99),
                    h.max(),
                    h.len()
                ));
            }
        }
        out
    }
}

/// Microseconds from 1 µs to 60 s at 3 significant digits.
pub fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

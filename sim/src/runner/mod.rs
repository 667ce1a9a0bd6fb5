//! Runners: play many listening sessions against a recommender and summarise
//! them, the way the course simulator did.
//!
//! Session `i` of a run with seed `s` draws everything the listener does
//! (user, interest, first track, budget drops) from `session_rng(s, i)`, so
//! a run is reproducible whatever the concurrency or the order sessions
//! finish in. Days continue the session numbering: day `d` plays sessions
//! `d * episodes ..`, so each day has fresh but reproducible sessions.

pub mod http;
pub mod in_process;

use std::time::Duration;

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng;

use crate::rng::{session_rng, SimRng};
use crate::user_model::Session;
use crate::world::World;

/// A progress bar over a run's sessions (hidden when stderr is not a terminal).
pub fn progress_bar(len: u64, label: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:40}] {pos}/{len} sessions ({per_sec}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(label.to_string());
    bar
}

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

/// Running mean and variance (Welford), for rewards and steps.
#[derive(Debug, Clone, Copy, Default)]
pub struct Moments {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Moments {
    pub fn add(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    pub fn merge(&mut self, other: &Moments) {
        if other.n == 0 {
            return;
        }
        let n = self.n + other.n;
        let delta = other.mean - self.mean;
        self.mean += delta * other.n as f64 / n as f64;
        self.m2 += other.m2 + delta * delta * (self.n as f64 * other.n as f64) / n as f64;
        self.n = n;
    }

    pub fn count(&self) -> u64 {
        self.n
    }

    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Standard error of the mean.
    pub fn standard_error(&self) -> f64 {
        if self.n < 2 {
            return 0.0;
        }
        (self.m2 / (self.n - 1) as f64 / self.n as f64).sqrt()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_match_direct_formulas_and_merge() {
        let xs = [1.0, 2.0, 4.0, 7.0, 11.0];
        let mut all = Moments::default();
        xs.iter().for_each(|&x| all.add(x));
        let mean = xs.iter().sum::<f64>() / 5.0;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 4.0;
        assert!((all.mean() - mean).abs() < 1e-12);
        assert!((all.standard_error() - (var / 5.0).sqrt()).abs() < 1e-12);
        let (mut a, mut b) = (Moments::default(), Moments::default());
        xs[..2].iter().for_each(|&x| a.add(x));
        xs[2..].iter().for_each(|&x| b.add(x));
        a.merge(&b);
        assert!((a.mean() - all.mean()).abs() < 1e-12);
        assert!((a.standard_error() - all.standard_error()).abs() < 1e-12);
    }
}

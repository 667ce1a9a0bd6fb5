//! Daily looks with a planned horizon: a group-sequential test whose type I
//! error is spent over calendar time (Lan & DeMets 1983), with repeated
//! confidence intervals (Jennison & Turnbull 1989)
//! (docs/analysis.md#sequential-looks).
//!
//! Why not only the mixture test of `sequential.rs`: Ville's inequality holds
//! for monitoring after every single user, so with one look a day it leaves
//! most of α unused (about 0.5% false positives in 1,000 A/A experiments of
//! six looks). An analyst who knows the experiment runs `H` days can spend
//! exactly α over those days instead.
//!
//! At look k, on day `d` of the experiment, the spending time is
//! `t = min(1, d / H)` and the error spent so far is α(t):
//!
//! ```text
//! O'Brien–Fleming type   α(t) = 2 − 2 Φ(z₁₋α/₂ / √t)   (spends little early)
//! Pocock type            α(t) = α ln(1 + (e − 1) t)       (spends evenly)
//! ```
//!
//! The look's boundary c_k is set so that under the null the chance of first
//! crossing |Z| ≥ c at look k is α(t_k) − α(t_{k−1}). That needs the joint law
//! of the z-statistics of the looks. They are correlated (the same users
//! carry over day to day), and a user's metric keeps accruing, so their
//! correlation is *measured*: from each user's centred value at two
//! consecutive looks, corr(Δ̂_{k−1}, Δ̂_k) = Σ a_{i,k−1} a_{i,k} / √(Σ a²_{i,k−1} Σ a²_{i,k})
//! with a_{i,k} = (x_{i,k} − x̄_k) / n_k summed over both arms. The looks are
//! then taken as a Gaussian Markov chain with those correlations (exact for
//! the independent increments of a plain mean; the proof in
//! `sim proof` measures what it gives on the simulator's users).
//!
//! The boundary is found by simulation: [`PATHS`] null paths of the chain,
//! drawn from a fixed seed so that the same data give the same boundaries;
//! c_k is the |Z| that the paths still alive cross with exactly the
//! increment's share. An increment smaller than one path carries over.
//! After the horizon nothing is left to spend: a look there has an unbounded
//! interval, and the verdict stays what the horizon's look made it.
//!
//! The repeated interval Δ̂_k ± c_k √V_k covers each look's Δ_k at every
//! look at once with probability at least 1 − α, also when Δ_k moves from
//! day to day as a metric accumulates (so each look reports its own interval,
//! not an intersection). The test is significant once some look's interval
//! excludes 0, i.e. |Z_k| ≥ c_k: the experiment may stop there.

use rand::rngs::SmallRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use statrs::distribution::{ContinuousCDF, Normal};

use super::estimate::Sample;

/// Null paths simulated for the boundaries: the share of α each look spends
/// is resolved to 1/`PATHS` (10⁻⁵).
pub const PATHS: usize = 100_000;

/// How α is spent over the horizon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SpendingFunction {
    /// O'Brien–Fleming type: wide early intervals, a last look nearly as
    /// narrow as a fixed-horizon test.
    #[value(name = "obf")]
    OBrienFleming,
    /// Pocock type: about the same boundary every day.
    Pocock,
}

impl SpendingFunction {
    /// Error spent by spending time `t` ∈ [0, 1].
    pub fn spent(self, alpha: f64, t: f64) -> f64 {
        let t = t.clamp(0.0, 1.0);
        if t == 0.0 {
            return 0.0;
        }
        match self {
            SpendingFunction::OBrienFleming => {
                let normal = Normal::standard();
                2.0 * normal.sf(normal.inverse_cdf(1.0 - alpha / 2.0) / t.sqrt())
            }
            SpendingFunction::Pocock => alpha * (1.0 + (std::f64::consts::E - 1.0) * t).ln(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SpendingFunction::OBrienFleming => "O'Brien–Fleming type",
            SpendingFunction::Pocock => "Pocock type",
        }
    }
}

/// What a look needs of one arm: each user's centred value over the arm's
/// size, sorted by user (the `a_{i,k}` of the module docs).
#[derive(Debug, Clone, Default)]
struct Deviations(Vec<(u64, f64)>);

impl Deviations {
    fn of(sample: &Sample) -> Deviations {
        let n = sample.values.len() as f64;
        let mean = sample.values.iter().sum::<f64>() / n;
        let mut d: Vec<(u64, f64)> = sample
            .users
            .iter()
            .zip(&sample.values)
            .map(|(&u, &x)| (u, (x - mean) / n))
            .collect();
        d.sort_unstable_by_key(|p| p.0);
        Deviations(d)
    }

    fn square(&self) -> f64 {
        self.0.iter().map(|p| p.1 * p.1).sum()
    }

    /// Σ a_{i,j} a_{i,k} over the users in both.
    fn cross(&self, other: &Deviations) -> f64 {
        let (mut i, mut j, mut sum) = (0, 0, 0.0);
        while i < self.0.len() && j < other.0.len() {
            match self.0[i].0.cmp(&other.0[j].0) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    sum += self.0[i].1 * other.0[j].1;
                    i += 1;
                    j += 1;
                }
            }
        }
        sum
    }
}

/// The running state of one comparison's group-sequential test.
#[derive(Debug, Clone)]
pub struct Spending {
    alpha: f64,
    horizon: u32,
    function: SpendingFunction,
    rng: SmallRng,
    /// Each null path's z at the last look; NaN once it crossed a boundary.
    paths: Vec<f64>,
    crossed: usize,
    /// Control and treatment deviations at the last look.
    previous: Option<(Deviations, Deviations)>,
    /// The last look's repeated interval of Δ.
    pub lower: f64,
    pub upper: f64,
    /// Some look's |Z| reached its boundary.
    crossed_boundary: bool,
    /// The last look's boundary on |Z| (∞ when it spent nothing).
    pub boundary: f64,
}

impl Spending {
    /// A test over `horizon` days at level `alpha`.
    pub fn new(alpha: f64, horizon: u32, function: SpendingFunction) -> Spending {
        Spending {
            alpha,
            horizon: horizon.max(1),
            function,
            rng: SmallRng::seed_from_u64(0x5eed_a1fa),
            paths: Vec::new(),
            crossed: 0,
            previous: None,
            lower: f64::NEG_INFINITY,
            upper: f64::INFINITY,
            crossed_boundary: false,
            boundary: f64::INFINITY,
        }
    }

    /// The look on day `day` of the experiment (1 = its first day): the
    /// estimate `diff` with variance `variance`, from the arms' per-user
    /// values `control` and `treated`. A look with an undefined variance
    /// changes nothing (its share of α carries to the next).
    pub fn look(&mut self, day: u32, diff: f64, variance: f64, control: &Sample, treated: &Sample) {
        if !(variance > 0.0 && variance.is_finite() && diff.is_finite()) {
            return;
        }
        let now = (Deviations::of(control), Deviations::of(treated));
        let rho = match &self.previous {
            None => None,
            Some((c, t)) => {
                let cross = c.cross(&now.0) + t.cross(&now.1);
                let scale = ((c.square() + t.square()) * (now.0.square() + now.1.square())).sqrt();
                Some(if scale > 0.0 {
                    (cross / scale).clamp(0.0, 1.0)
                } else {
                    1.0
                })
            }
        };
        self.previous = Some(now);
        self.advance(rho);
        let t = f64::from(day) / f64::from(self.horizon);
        self.boundary = self.spend(self.function.spent(self.alpha, t));
        let half = self.boundary * variance.sqrt();
        self.lower = diff - half;
        self.upper = diff + half;
        self.crossed_boundary |= self.lower > 0.0 || self.upper < 0.0;
    }

    /// Moves the null paths to the next look, correlated `rho` with the
    /// last (None: the first look).
    fn advance(&mut self, rho: Option<f64>) {
        match rho {
            None => {
                self.paths = (0..PATHS)
                    .map(|_| StandardNormal.sample(&mut self.rng))
                    .collect();
            }
            Some(rho) => {
                let fresh = (1.0 - rho * rho).max(0.0).sqrt();
                for z in &mut self.paths {
                    let e: f64 = StandardNormal.sample(&mut self.rng);
                    // Crossed paths stay NaN.
                    *z = rho * *z + fresh * e;
                }
            }
        }
    }

    /// Sets the boundary that brings the paths crossed so far to `spent` ×
    /// [`PATHS`]; marks the newly crossed. ∞ when there is nothing to spend.
    fn spend(&mut self, spent: f64) -> f64 {
        let target = (spent * PATHS as f64).round() as usize;
        let extra = target.saturating_sub(self.crossed);
        if extra == 0 {
            return f64::INFINITY;
        }
        let mut alive: Vec<f64> = self
            .paths
            .iter()
            .filter(|z| !z.is_nan())
            .map(|z| z.abs())
            .collect();
        if alive.is_empty() {
            return f64::INFINITY;
        }
        let extra = extra.min(alive.len());
        let k = alive.len() - extra;
        alive.select_nth_unstable_by(k, f64::total_cmp);
        let boundary = alive[k];
        for z in &mut self.paths {
            if z.abs() >= boundary {
                *z = f64::NAN;
                self.crossed += 1;
            }
        }
        boundary
    }

    /// Some look's interval excluded 0.
    pub fn significant(&self) -> bool {
        self.crossed_boundary
    }

    /// The fixed-horizon two-sided level the last look's |Z| is held to.
    pub fn nominal_alpha(&self) -> f64 {
        2.0 * Normal::standard().sf(self.boundary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_functions_spend_all_of_alpha_by_the_horizon_and_none_before_it_starts() {
        for f in [SpendingFunction::OBrienFleming, SpendingFunction::Pocock] {
            assert_eq!(f.spent(0.05, 0.0), 0.0);
            assert!((f.spent(0.05, 1.0) - 0.05).abs() < 1e-9, "{f:?}");
            assert!((f.spent(0.05, 3.0) - 0.05).abs() < 1e-9, "capped at t = 1");
            let (a, b) = (f.spent(0.05, 0.3), f.spent(0.05, 0.6));
            assert!(0.0 < a && a < b && b < 0.05, "{f:?}: {a} {b}");
        }
        // O'Brien–Fleming spends less early than Pocock.
        assert!(
            SpendingFunction::OBrienFleming.spent(0.05, 0.2)
                < SpendingFunction::Pocock.spent(0.05, 0.2) / 10.0
        );
    }

    #[test]
    fn one_look_at_the_horizon_is_the_fixed_horizon_test() {
        let mut s = Spending::new(0.05, 1, SpendingFunction::OBrienFleming);
        let c = Sample::of_users(0..100, |u| (u % 7) as f64);
        s.look(1, 1.0, 0.25, &c, &c);
        // z₀.₉₇₅ = 1.95996; the simulated quantile of 10⁵ paths is within 0.02.
        assert!((s.boundary - 1.96).abs() < 0.02, "{}", s.boundary);
        assert!((s.nominal_alpha() - 0.05).abs() < 0.002);
        assert!((s.lower - (1.0 - s.boundary * 0.5)).abs() < 1e-12);
        assert!(s.significant());
    }

    #[test]
    fn equally_informative_looks_get_the_textbook_boundaries() {
        // Five equally spaced looks of independent increments: user i joins
        // at look ⌈i / 200⌉ with a fixed value, so corr(Z_j, Z_k) = √(j/k).
        // Lan & DeMets' boundaries for this design (as gsDesign and rpact
        // compute them): O'Brien–Fleming type 4.88, 3.36, 2.68, 2.29, 2.03;
        // Pocock type 2.44, 2.43, 2.41, 2.40, 2.39.
        for (function, last) in [
            (SpendingFunction::OBrienFleming, 2.03),
            (SpendingFunction::Pocock, 2.39),
        ] {
            let mut s = Spending::new(0.05, 5, function);
            let mut bounds = Vec::new();
            for k in 1..=5u64 {
                let value = |u: u64| ((u * 7919) % 101) as f64;
                let c = Sample::of_users(0..200 * k, value);
                let t = Sample::of_users(1_000_000..1_000_000 + 200 * k, value);
                s.look(k as u32, 0.0, 1.0, &c, &t);
                bounds.push(s.boundary);
            }
            assert!(
                (bounds[4] - last).abs() < 0.04,
                "{function:?}: {bounds:?}, textbook {last}"
            );
            if function == SpendingFunction::OBrienFleming {
                assert!(bounds.windows(2).all(|w| w[0] > w[1]), "{bounds:?}");
            }
        }
    }

    #[test]
    fn a_look_that_repeats_the_last_spends_its_share_on_the_same_z() {
        // No new data: correlation 1, so the paths do not move and the new
        // increment is spent on the paths just inside the last boundary.
        let mut s = Spending::new(0.05, 2, SpendingFunction::Pocock);
        let c = Sample::of_users(0..50, |u| (u % 5) as f64);
        let t = Sample::of_users(100..150, |u| (u % 3) as f64);
        s.look(1, 0.1, 0.04, &c, &t);
        let first = s.boundary;
        s.look(2, 0.1, 0.04, &c, &t);
        assert!(s.boundary < first, "{} then {}", first, s.boundary);
        // All of α is spent: the crossed share is α to the resolution.
        assert!((s.crossed as f64 / PATHS as f64 - 0.05).abs() < 1e-4);
    }

    #[test]
    fn looks_past_the_horizon_spend_nothing_and_significance_stays() {
        let mut s = Spending::new(0.05, 2, SpendingFunction::OBrienFleming);
        let c = Sample::of_users(0..80, |u| (u % 4) as f64);
        s.look(1, 0.2, 0.01, &c, &c);
        assert!(!s.significant());
        s.look(2, 0.5, 0.01, &c, &c);
        assert!(s.significant(), "z = 5 at the horizon");
        s.look(3, 5.0, 0.01, &c, &c);
        assert_eq!(s.boundary, f64::INFINITY);
        assert_eq!((s.lower, s.upper), (f64::NEG_INFINITY, f64::INFINITY));
        // A look near 0 later: its interval covers 0, the verdict stays.
        let mut s = Spending::new(0.05, 3, SpendingFunction::Pocock);
        s.look(1, 1.0, 0.01, &c, &c);
        s.look(2, 0.0, 0.01, &c, &c);
        assert!(s.lower < 0.0 && s.upper > 0.0 && s.significant());
        let interval = (s.lower, s.upper);
        s.look(3, f64::NAN, 0.01, &c, &c);
        assert_eq!(
            (s.lower, s.upper),
            interval,
            "an undefined look changes nothing"
        );
    }
}

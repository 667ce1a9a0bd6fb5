//! Always-valid intervals for daily looks: the mixture sequential probability
//! ratio test (mSPRT; Robbins 1970, Johari, Pekelis & Walsh 2017) with a
//! normal mixture (docs/analysis.md#sequential-looks).
//!
//! At each look the difference of means Δ̂ has (estimated) variance V. Against
//! the null Δ = δ, mixing the alternative over Δ ~ N(δ, τ²) gives the
//! likelihood ratio
//!
//! ```text
//! Λ = √(V / (V + τ²)) · exp( τ² (Δ̂ − δ)² / (2 V (V + τ²)) )
//! ```
//!
//! Under the null Λ is a martingale, so by Ville's inequality it ever
//! reaches 1/α with probability at most α, however often one looks. The
//! always-valid (1 − α) interval is the set of δ with Λ < 1/α:
//!
//! ```text
//! Δ̂ ± √( V (V + τ²) / τ² · (2 ln(1/α) + ln((V + τ²) / V)) )
//! ```
//!
//! and the always-valid p-value is min(1, 1 / max Λ over the looks so far)
//! at δ = 0; the test is significant once that p falls below α. Each look
//! reports its own interval rather than the running intersection: a metric
//! that accumulates over days (`time`, `active_days`) has a larger effect on
//! day 6 than on day 1, and intersecting intervals of different quantities
//! would exclude both. τ, the mixing
//! standard deviation, is the size of effect the test is tuned to find
//! fastest: `--mixing` × the control mean at the first look (default 5%),
//! fixed for the rest of the experiment.

/// Default mixing standard deviation, as a fraction of the control mean.
pub const DEFAULT_MIXING: f64 = 0.05;

/// The running state of one comparison's sequential test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sequential {
    /// Mixing variance τ², in the metric's units squared.
    pub tau2: f64,
    pub alpha: f64,
    /// The last look's always-valid interval of Δ.
    pub lower: f64,
    pub upper: f64,
    /// min(1, 1 / max Λ) so far.
    pub p_value: f64,
}

impl Sequential {
    /// A test whose mixture has standard deviation `tau`.
    pub fn new(tau: f64, alpha: f64) -> Sequential {
        Sequential {
            tau2: tau * tau,
            alpha,
            lower: f64::NEG_INFINITY,
            upper: f64::INFINITY,
            p_value: 1.0,
        }
    }

    /// One look: the estimate `diff` with variance `variance`. Looks with an
    /// undefined variance (too few users yet) change nothing.
    pub fn look(&mut self, diff: f64, variance: f64) {
        if !(variance > 0.0 && variance.is_finite() && diff.is_finite() && self.tau2 > 0.0) {
            return;
        }
        let (v, t2) = (variance, self.tau2);
        let half =
            (v * (v + t2) / t2 * (2.0 * (1.0 / self.alpha).ln() + ((v + t2) / v).ln())).sqrt();
        self.lower = diff - half;
        self.upper = diff + half;
        let log_lambda = 0.5 * (v / (v + t2)).ln() + t2 * diff * diff / (2.0 * v * (v + t2));
        self.p_value = self.p_value.min((-log_lambda).exp().min(1.0));
    }

    /// Some look's interval excluded 0 (equivalently p < α).
    pub fn significant(&self) -> bool {
        self.p_value < self.alpha
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_where_the_likelihood_ratio_stays_below_one_over_alpha() {
        let mut s = Sequential::new(0.5, 0.05);
        s.look(1.0, 0.04);
        let lambda = |delta: f64| {
            let (v, t2) = (0.04f64, 0.25f64);
            (v / (v + t2)).sqrt() * (t2 * (1.0 - delta).powi(2) / (2.0 * v * (v + t2))).exp()
        };
        assert!((lambda(s.lower) - 20.0).abs() < 1e-9, "{}", lambda(s.lower));
        assert!((lambda(s.upper) - 20.0).abs() < 1e-9);
        // Wider than the fixed-horizon interval 1 ± 1.96 × 0.2.
        assert!(s.lower < 1.0 - 1.96 * 0.2 && s.upper > 1.0 + 1.96 * 0.2);
        assert!(s.significant());
        assert!((s.p_value - 1.0 / lambda(0.0)).abs() < 1e-12);
        assert_eq!(s.significant(), s.p_value < 0.05);
    }

    #[test]
    fn significance_stays_once_reached_and_undefined_looks_are_skipped() {
        let mut s = Sequential::new(1.0, 0.05);
        s.look(3.0, 0.25);
        assert!(s.significant() && s.lower > 0.0);
        let first = (s.lower, s.upper, s.p_value);
        s.look(f64::NAN, 1.0);
        s.look(0.3, f64::NAN);
        assert_eq!((s.lower, s.upper, s.p_value), first);
        // A later look near 0: its own interval covers 0, the verdict stays.
        s.look(0.1, 0.25);
        assert!(s.lower < 0.0 && s.upper > 0.0);
        assert!(s.significant() && s.p_value == first.2);
    }
}

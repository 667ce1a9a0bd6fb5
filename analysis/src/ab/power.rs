//! `analysis power`: the minimum detectable effect (MDE) of an experiment of
//! N users over D days, from the variance of each metric in pre-period logs
//! (docs/analysis.md#power).
//!
//! With k arms of N/k users each, a two-sided test at level α and power 1 − β
//! detects a difference of means of
//!
//! ```text
//! MDE = (z(1 − α/2) + z(1 − β)) · σ · √(2 / (N/k))
//! ```
//!
//! where σ² is the variance over users of the metric measured over D days.
//! σ and the control mean come from the logs' first D days (the metric's
//! variance depends on the window: a week of `time` varies more than a day).
//! The relative MDE is MDE / mean. With CUPED, σ shrinks by √(1 − ρ²), which
//! `ab --start` reports as the variance reduction.

use statrs::distribution::{ContinuousCDF, Normal};

/// One metric's MDE.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mde {
    pub mean: f64,
    pub sd: f64,
    /// Users the variance was estimated on.
    pub sample_users: u64,
    pub users_per_arm: f64,
    /// Absolute and relative (fraction of the mean) MDE.
    pub absolute: f64,
    pub relative: f64,
}

/// The MDE for a metric with `mean` and standard deviation `sd` over users.
pub fn mde(
    mean: f64,
    sd: f64,
    sample_users: u64,
    users: f64,
    arms: usize,
    alpha: f64,
    power: f64,
) -> Mde {
    let normal = Normal::standard();
    let z = normal.inverse_cdf(1.0 - alpha / 2.0) + normal.inverse_cdf(power);
    let users_per_arm = users / arms as f64;
    let absolute = z * sd * (2.0 / users_per_arm).sqrt();
    Mde {
        mean,
        sd,
        sample_users,
        users_per_arm,
        absolute,
        relative: absolute / mean.abs(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_textbook_sample_size_formula() {
        // n per arm = 2 (z_.975 + z_.8)² σ² / δ²: σ = 1, δ = 0.1 → 1569.8 per arm.
        let m = mde(1.0, 1.0, 100, 2.0 * 1569.8, 2, 0.05, 0.8);
        assert!((m.absolute - 0.1).abs() < 1e-4, "{m:?}");
        assert!((m.relative - 0.1).abs() < 1e-4);
        // Four times the users halve the MDE.
        let m4 = mde(1.0, 1.0, 100, 4.0 * 2.0 * 1569.8, 2, 0.05, 0.8);
        assert!((m4.absolute - 0.05).abs() < 1e-4);
    }
}

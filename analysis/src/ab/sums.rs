//! Sufficient statistics: what every A/B statistic of one metric in one arm
//! is computed from (docs/analysis.md#sufficient-statistics).
//!
//! Per arm and metric, over the users i who count for the metric:
//! - n, Σyᵢ and Σyᵢ², where y is the user's value (user metrics) or the
//!   numerator of a ratio metric;
//! - for ratio metrics the denominators d: Σdᵢ, Σdᵢ² and Σyᵢdᵢ (the delta
//!   method);
//! - with a pre-period, over the users who have the covariate xᵢ (the same
//!   metric before the experiment): their count, Σxᵢ, Σxᵢ², Σxᵢyᵢ, Σxᵢdᵢ,
//!   and their Σyᵢ and Σdᵢ (CUPED, with the users without one imputed).
//!
//! `analysis ab` reduces the logs to these sums ([`Sums::add`]) and SQL
//! computes the same ones in a warehouse (`analysis/sql/ab_stats.sql`,
//! read by `ab --stats`); everything after them — means, variances, the
//! delta method, CUPED's fit and adjustment, Welch — is this one engine.
//!
//! The engine works in the deviations eᵢ = yᵢ − R dᵢ of a ratio metric
//! from its arm's ratio R = Σy / Σd, whose sums follow from the ones above
//! (Σe = Σy − RΣd, Σe² = Σy² − 2RΣyd + R²Σd², Σxe = Σxy − RΣxd). The
//! linearised value of a user is Lᵢ = R + eᵢ / d̄ (estimate.rs), so L's
//! mean and centred sums are e's, shifted and scaled. A user metric is the
//! case R = 0, d̄ = 1: L = e = y.

use tally::Moments;

use super::metrics::{Kind, Observation};

/// One arm's sums of one metric.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sums {
    /// Users who count for the metric.
    pub n: u64,
    /// Σy, Σy²: values, or numerators of a ratio metric.
    pub y: f64,
    pub yy: f64,
    /// Σd, Σd², Σyd: denominators of a ratio metric (user metrics: d = 1).
    pub d: f64,
    pub dd: f64,
    pub yd: f64,
    /// The pre-period covariate's sums; `None` without a pre-period.
    pub pre: Option<PreSums>,
}

/// Sums over the users with a pre-period value x.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PreSums {
    pub n: u64,
    pub x: f64,
    pub xx: f64,
    pub xy: f64,
    pub xd: f64,
    /// Σy and Σd over these users only.
    pub y: f64,
    pub d: f64,
}

impl Sums {
    /// Empty sums, with a pre-period part when `pre`.
    pub fn new(pre: bool) -> Sums {
        Sums {
            pre: pre.then(PreSums::default),
            ..Sums::default()
        }
    }

    /// An observation as `(y, d)`: a user metric's value over 1, a ratio
    /// metric's numerator over its denominator.
    pub fn parts(kind: Kind, observation: Observation) -> (f64, f64) {
        match (kind, observation) {
            (Kind::User, Observation::Value(v)) => (v, 1.0),
            (Kind::User, Observation::Ratio(n, d)) => (n / d, 1.0),
            (Kind::Ratio, Observation::Value(v)) => (v, 1.0),
            (Kind::Ratio, Observation::Ratio(n, d)) => (n, d),
        }
    }

    /// The sums of one arm's `(user, observation)` pairs, without a
    /// pre-period.
    pub fn of(kind: Kind, observations: &[(u64, Observation)]) -> Sums {
        let mut sums = Sums::new(false);
        for &(_, o) in observations {
            sums.add(kind, o, None);
        }
        sums
    }

    /// Adds one user's observation of a metric of `kind`, with the user's
    /// pre-period value when there is one (ignored without a pre-period).
    pub fn add(&mut self, kind: Kind, observation: Observation, x: Option<f64>) {
        let (y, d) = Sums::parts(kind, observation);
        self.n += 1;
        self.y += y;
        self.yy += y * y;
        self.d += d;
        self.dd += d * d;
        self.yd += y * d;
        if let (Some(pre), Some(x)) = (&mut self.pre, x) {
            pre.n += 1;
            pre.x += x;
            pre.xx += x * x;
            pre.xy += x * y;
            pre.xd += x * d;
            pre.y += y;
            pre.d += d;
        }
    }

    /// The arm's values (linearised for ratio metrics) as deviations.
    pub fn linear(&self, kind: Kind) -> Linear {
        let n = self.n as f64;
        let (offset, scale) = match kind {
            Kind::User => (0.0, 1.0),
            Kind::Ratio => (self.y / self.d, n / self.d),
        };
        let r = offset;
        let (e, ee) = match kind {
            Kind::User => (self.y, self.yy),
            Kind::Ratio => (
                self.y - r * self.d,
                self.yy - 2.0 * r * self.yd + r * r * self.dd,
            ),
        };
        Linear {
            n: self.n,
            offset,
            scale,
            e,
            ee,
            pre: self.pre.map(|p| LinearPre {
                n: p.n,
                x: p.x,
                xx: p.xx,
                xe: match kind {
                    Kind::User => p.xy,
                    Kind::Ratio => p.xy - r * p.xd,
                },
                e: match kind {
                    Kind::User => p.y,
                    Kind::Ratio => p.y - r * p.d,
                },
            }),
        }
    }
}

/// One arm's values Lᵢ = offset + scale · eᵢ as the sums of e.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Linear {
    pub n: u64,
    /// R for a ratio metric, 0 for a user metric.
    pub offset: f64,
    /// 1 / d̄ for a ratio metric, 1 for a user metric.
    pub scale: f64,
    /// Σe, Σe².
    pub e: f64,
    pub ee: f64,
    pub pre: Option<LinearPre>,
}

/// Σ over the users with a covariate: count, Σx, Σx², Σxe, Σe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearPre {
    pub n: u64,
    pub x: f64,
    pub xx: f64,
    pub xe: f64,
    pub e: f64,
}

impl Linear {
    /// Count, mean and centred sum of squares of the arm's values. Fewer
    /// than two users have no spread (a NaN variance, as two passes give).
    pub fn moments(&self) -> Moments {
        if self.n == 0 {
            return Moments::of(&[]);
        }
        let n = self.n as f64;
        let m2 = if self.n < 2 {
            0.0
        } else {
            (self.scale * self.scale * (self.ee - self.e * self.e / n)).max(0.0)
        };
        Moments::from_parts(self.n, self.offset + self.scale * self.e / n, m2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ab::estimate::{close, linearise};

    #[test]
    fn user_and_ratio_moments_equal_two_passes_over_the_values() {
        let values = [3.0, 1.5, 7.25, 0.0, 2.0];
        let mut sums = Sums::new(false);
        for v in values {
            sums.add(Kind::User, Observation::Value(v), None);
        }
        let (a, b) = (sums.linear(Kind::User).moments(), Moments::of(&values));
        assert_eq!((a.count(), a.mean()), (b.count(), b.mean()));
        assert!(close(a.var(), b.var(), 1e-14));

        let parts = [(2.0, 1.0), (3.0, 2.0), (10.0, 4.0), (1.0, 1.0), (6.0, 2.0)];
        let mut sums = Sums::new(false);
        for (n, d) in parts {
            sums.add(Kind::Ratio, Observation::Ratio(n, d), None);
        }
        let a = sums.linear(Kind::Ratio).moments();
        let b = Moments::of(&linearise(&parts));
        assert!(close(a.mean(), b.mean(), 1e-14) && close(a.mean(), 2.2, 1e-14));
        assert!(close(a.var(), b.var(), 1e-13), "{} vs {}", a.var(), b.var());
    }

    #[test]
    fn one_user_has_no_variance_and_none_has_no_mean() {
        let mut sums = Sums::new(false);
        sums.add(Kind::Ratio, Observation::Ratio(1.0, 3.0), None);
        let one = sums.linear(Kind::Ratio).moments();
        assert_eq!(one.count(), 1);
        assert!(one.var().is_nan());
        assert!(Sums::new(false)
            .linear(Kind::User)
            .moments()
            .mean()
            .is_nan());
    }

    #[test]
    fn the_pre_period_part_counts_only_users_with_a_covariate() {
        let mut sums = Sums::new(true);
        sums.add(Kind::User, Observation::Value(2.0), Some(1.0));
        sums.add(Kind::User, Observation::Value(5.0), None);
        let pre = sums.pre.unwrap();
        assert_eq!((pre.n, pre.x, pre.xy, pre.y), (1, 1.0, 2.0, 2.0));
        let mut without = Sums::new(false);
        without.add(Kind::User, Observation::Value(2.0), Some(1.0));
        assert!(without.pre.is_none());
    }
}

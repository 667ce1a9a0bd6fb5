//! Estimates and intervals of one metric in two arms: Welch for user metrics,
//! the delta method for ratio metrics, relative-lift intervals, p-values
//! (docs/analysis.md#ratio-metrics-the-delta-method).
//!
//! A ratio metric R = Σ nᵢ / Σ dᵢ over an arm's users becomes one
//! *linearised* value per user, `Lᵢ = R + (nᵢ − R dᵢ) / d̄`: their mean is R
//! exactly and their sample variance over n is the delta-method variance of
//! R (first-order Taylor expansion of the ratio of means). With that, every
//! metric is a sample of per-user values, and Welch, CUPED and the sequential
//! test apply to both kinds alike.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

use super::metrics::{Kind, Observation};
use tally::Moments;

/// One arm's per-user values of one metric (linearised for ratio metrics),
/// with the users they belong to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub users: Vec<u64>,
    pub values: Vec<f64>,
}

impl Sample {
    /// From `(user, observation)` pairs of one arm; ratio observations are
    /// linearised around the arm's ratio of sums.
    pub fn new(kind: Kind, observations: &[(u64, Observation)]) -> Sample {
        let users = observations.iter().map(|(u, _)| *u).collect();
        let values = match kind {
            Kind::User => observations
                .iter()
                .map(|(_, o)| match o {
                    Observation::Value(v) => *v,
                    Observation::Ratio(n, d) => n / d,
                })
                .collect(),
            Kind::Ratio => {
                let parts: Vec<(f64, f64)> = observations
                    .iter()
                    .map(|(_, o)| match o {
                        Observation::Ratio(n, d) => (*n, *d),
                        Observation::Value(v) => (*v, 1.0),
                    })
                    .collect();
                linearise(&parts)
            }
        };
        Sample { users, values }
    }

    pub fn moments(&self) -> Moments {
        Moments::of(&self.values)
    }
}

#[cfg(test)]
impl Sample {
    /// Users `users` with values `f(user)`: the unit tests' samples.
    pub fn of_users(users: std::ops::Range<u64>, f: impl Fn(u64) -> f64) -> Sample {
        Sample {
            users: users.clone().collect(),
            values: users.map(f).collect(),
        }
    }
}

/// Delta-method values of a ratio of sums: mean R, variance/n = Var(R̂).
pub fn linearise(parts: &[(f64, f64)]) -> Vec<f64> {
    let n = parts.len() as f64;
    let numerator: f64 = parts.iter().map(|p| p.0).sum();
    let denominator: f64 = parts.iter().map(|p| p.1).sum();
    let ratio = numerator / denominator;
    let mean_denominator = denominator / n;
    parts
        .iter()
        .map(|(x, d)| ratio + (x - ratio * d) / mean_denominator)
        .collect()
}

/// Treatment against control on one metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    pub control_mean: f64,
    pub treatment_mean: f64,
    pub control_users: u64,
    pub treatment_users: u64,
    /// treatment − control.
    pub diff: f64,
    /// Variance of `diff` (Welch: s²_C/n_C + s²_T/n_T).
    pub variance: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub dof: f64,
    /// Half-width of the 95% interval of `diff` (Student t quantile).
    pub half: f64,
    /// Two-sided Welch p-value of `diff` = 0.
    pub p_value: f64,
    /// Relative lift treatment / control − 1 and the half-width of its 95%
    /// interval by the delta method on the ratio of means.
    pub lift: f64,
    pub lift_half: f64,
}

impl Comparison {
    /// Welch's comparison of two samples' moments.
    pub fn new(control: Moments, treated: Moments) -> Comparison {
        let (mc, mt) = (control.mean(), treated.mean());
        let (nc, nt) = (control.count() as f64, treated.count() as f64);
        let vc = control.var() / nc;
        let vt = treated.var() / nt;
        let variance = vc + vt;
        let dof = variance.powi(2) / (vc.powi(2) / (nc - 1.0) + vt.powi(2) / (nt - 1.0));
        let diff = mt - mc;
        let half = t_quantile(0.975, dof) * variance.sqrt();
        let lift_variance = vt / mc.powi(2) + mt.powi(2) * vc / mc.powi(4);
        Comparison {
            control_mean: mc,
            treatment_mean: mt,
            control_users: control.count(),
            treatment_users: treated.count(),
            diff,
            variance,
            dof,
            half,
            p_value: welch_p(diff / variance.sqrt(), dof),
            lift: mt / mc - 1.0,
            lift_half: Normal::standard().inverse_cdf(0.975) * lift_variance.sqrt(),
        }
    }

    /// The effect and 95% bounds in percent of the control mean (the
    /// notebook's convention).
    pub fn percent(&self) -> (f64, f64, f64) {
        let scale = 100.0 / self.control_mean;
        (
            self.diff * scale,
            (self.diff - self.half) * scale,
            (self.diff + self.half) * scale,
        )
    }
}

/// What every comparison row reports of a treatment against the control:
/// the raw arm means, and the effect with its bounds in percent of the
/// control mean. Rows flatten it into their JSON, so its fields keep their
/// names there; the tables print it with the same columns.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EffectEstimate {
    pub control_mean: f64,
    pub treatment_mean: f64,
    pub effect: f64,
    pub lower: f64,
    pub upper: f64,
}

/// The `p` quantile of Student's t with `dof` degrees of freedom (scipy's
/// `t.ppf`); the normal quantile for infinite `dof`, NaN when undefined.
pub fn t_quantile(p: f64, dof: f64) -> f64 {
    if dof == f64::INFINITY {
        return Normal::standard().inverse_cdf(p);
    }
    match StudentsT::new(0.0, 1.0, dof) {
        Ok(t) => t.inverse_cdf(p),
        Err(_) => f64::NAN,
    }
}

/// Two-sided p-value of a t statistic; NaN when undefined.
pub fn welch_p(t: f64, dof: f64) -> f64 {
    if !t.is_finite() || dof.is_nan() {
        return f64::NAN;
    }
    let tail = if dof == f64::INFINITY || dof > 1e7 {
        Normal::standard().sf(t.abs())
    } else {
        match StudentsT::new(0.0, 1.0, dof) {
            Ok(dist) => dist.sf(t.abs()),
            Err(_) => return f64::NAN,
        }
    };
    (2.0 * tail).min(1.0)
}

/// `a` within `tol` of `b`, relative to |b| (absolute below 1).
#[cfg(test)]
pub(crate) fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantile_matches_scipy() {
        // scipy.stats.t.ppf(0.975, dof), scipy 1.17.1.
        let cases = [
            (1.0, 12.706204736174694),
            (2.5, 3.5746548420036817),
            (10.0, 2.228138851986274),
            (37.3, 2.0256425230779604),
            (1000.0, 1.9623390808264083),
            (123456.7, 1.9599832001362323),
            (f64::INFINITY, 1.9599639845400538),
        ];
        for (dof, expected) in cases {
            let got = t_quantile(0.975, dof);
            assert!(close(got, expected, 1e-9), "dof {dof}: {got} vs {expected}");
        }
        assert!(t_quantile(0.975, f64::NAN).is_nan());
    }

    #[test]
    fn linearised_values_give_the_ratio_and_the_delta_method_variance() {
        let parts = [(2.0, 1.0), (3.0, 2.0), (10.0, 4.0), (1.0, 1.0), (6.0, 2.0)];
        let values = linearise(&parts);
        let m = Moments::of(&values);
        let (sn, sd): (f64, f64) = (22.0, 10.0);
        assert!(close(m.mean(), sn / sd, 1e-12));
        // Delta method: Var(R̂) = (s²_x − 2R s_xd + R² s²_d) / (n d̄²).
        let n = 5.0;
        let r = sn / sd;
        let (mx, md) = (sn / n, sd / n);
        let cov =
            |f: &dyn Fn(&(f64, f64)) -> f64, g: &dyn Fn(&(f64, f64)) -> f64, mf: f64, mg: f64| {
                parts.iter().map(|p| (f(p) - mf) * (g(p) - mg)).sum::<f64>() / (n - 1.0)
            };
        let sxx = cov(&|p| p.0, &|p| p.0, mx, mx);
        let sdd = cov(&|p| p.1, &|p| p.1, md, md);
        let sxd = cov(&|p| p.0, &|p| p.1, mx, md);
        let delta = (sxx - 2.0 * r * sxd + r * r * sdd) / (n * md * md);
        assert!(
            close(m.var() / n, delta, 1e-12),
            "{} vs {delta}",
            m.var() / n
        );
    }

    #[test]
    fn comparison_matches_the_welch_row_and_scipy_p_value() {
        // Same moments as ab::tests::welch_row_matches_hand_computation.
        let c = Moments::of(&[13.0, 9.0, 9.0, 9.0]);
        let t = Moments::of(&[15.0, 15.0, 9.0, 9.0, 12.0]);
        let cmp = Comparison::new(c, t);
        let row = crate::ab::welch("time", "T1", c, t);
        let (effect, lower, upper) = cmp.percent();
        assert!(close(effect, row.estimate.effect, 1e-12));
        assert!(close(lower, row.estimate.lower, 1e-12) && close(upper, row.estimate.upper, 1e-12));
        // scipy.stats.ttest_ind([15,15,9,9,12], [13,9,9,9], equal_var=False).pvalue
        assert!(
            close(cmp.p_value, 0.2716920317837068, 1e-9),
            "{}",
            cmp.p_value
        );
        // Lift: 12/10 − 1; variance 1.8/100 + 144 × 1/10⁴ = 0.0324.
        assert!(close(cmp.lift, 0.2, 1e-12));
        assert!(close(cmp.lift_half, 1.959963984540054 * 0.18, 1e-9));
        assert!(welch_p(f64::NAN, 3.0).is_nan());
        assert!(close(welch_p(1.959963984540054, f64::INFINITY), 0.05, 1e-9));
    }
}

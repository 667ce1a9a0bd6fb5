//! CUPED (Deng, Xu, Kohavi & Walker 2013): variance reduction with each
//! user's pre-experiment data (docs/analysis.md#cuped).
//!
//! For a metric Y and the same metric X over the user's pre-period, the
//! adjusted value is `Y − β (Z − Z̄)`, where Z holds the covariates and β is
//! the least-squares slope of Y on Z pooled over arms, with each arm centred
//! on its own means so a treatment effect does not leak into β. The pre-period
//! does not depend on the assignment, so the arms' adjusted means differ by
//! the same effect in expectation, with less variance.
//!
//! Users with no pre-period (new users, or no session before the start) are
//! kept: their X is imputed with the pre-period mean and a second covariate,
//! an indicator of having no pre-period, lets their level differ. With
//! everyone observed the indicator is constant and dropped; with nobody
//! observed there is nothing to adjust with and the values are unchanged.
//!
//! Everything is computed from each arm's sufficient statistics
//! ([`super::sums`]): the imputed covariate's sums follow from the observed
//! users' (Σx̃ = Σx + n_missing · x̄_pre, Σx̃e = Σxe + x̄_pre · Σ_missing e, …),
//! so the fit is the same from the logs and from a warehouse's aggregates.

use std::collections::HashMap;

use super::estimate::Sample;
use super::sums::Linear;
use tally::Moments;

/// What the adjustment did to one metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CupedFit {
    /// Slope on the pre-period value (imputed where missing).
    pub theta: f64,
    /// Users with a pre-period value, and all users.
    pub with_pre: u64,
    pub users: u64,
    /// 1 − (pooled within-arm variance after / before): the share of variance
    /// removed; the interval narrows by √(1 − reduction).
    pub variance_reduction: f64,
}

/// The fitted adjustment y − θ (x̃ − zx) − γ (m − zm), where x̃ is the
/// covariate imputed with `pre_mean` and m the no-pre-period indicator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coefficients {
    pub theta: f64,
    pub gamma: f64,
    pub pre_mean: f64,
    /// The pooled means of x̃ and m.
    pub zx: f64,
    pub zm: f64,
}

/// Each arm's adjusted moments, and the fit.
#[derive(Debug, Clone, PartialEq)]
pub struct Adjusted {
    pub moments: Vec<Moments>,
    pub fit: CupedFit,
    /// `None` when nothing was adjusted (too few users with a pre-period, a
    /// covariate without spread): the moments are the raw ones.
    pub coefficients: Option<Coefficients>,
}

/// One arm's centred cross-products of (x̃, m, L), and its sums of x̃ and m.
struct Centred {
    n: f64,
    mean: f64,
    sum_x: f64,
    missing: f64,
    xx: f64,
    xm: f64,
    mm: f64,
    xy: f64,
    my: f64,
    yy: f64,
}

impl Centred {
    fn of(arm: &Linear, pre_mean: f64) -> Centred {
        let n = arm.n as f64;
        let pre = arm.pre.expect("CUPED needs the pre-period sums");
        let missing = n - pre.n as f64;
        // The imputed covariate's sums.
        let sum_x = pre.x + missing * pre_mean;
        let sum_xx = pre.xx + missing * pre_mean * pre_mean;
        let missing_e = arm.e - pre.e;
        let sum_xe = pre.xe + pre_mean * missing_e;
        let s = arm.scale;
        Centred {
            n,
            mean: arm.offset + s * arm.e / n,
            sum_x,
            missing,
            xx: sum_xx - sum_x * sum_x / n,
            xm: missing * pre_mean - sum_x * missing / n,
            mm: missing - missing * missing / n,
            xy: s * (sum_xe - sum_x * arm.e / n),
            my: s * (missing_e - missing * arm.e / n),
            yy: s * s * (arm.ee - arm.e * arm.e / n),
        }
    }
}

/// Fits CUPED on every arm's sums (each arm carrying its pre-period part)
/// and returns the adjusted moments.
pub fn fit(arms: &[Linear]) -> Adjusted {
    let users: u64 = arms.iter().map(|a| a.n).sum();
    let with_pre: u64 = arms.iter().filter_map(|a| a.pre).map(|p| p.n).sum();
    let unchanged = |theta| Adjusted {
        moments: arms.iter().map(Linear::moments).collect(),
        fit: CupedFit {
            theta,
            with_pre,
            users,
            variance_reduction: 0.0,
        },
        coefficients: None,
    };
    if with_pre < 2 {
        return unchanged(0.0);
    }
    let pre_mean = arms.iter().filter_map(|a| a.pre).map(|p| p.x).sum::<f64>() / with_pre as f64;
    let centred: Vec<Option<Centred>> = arms
        .iter()
        .map(|a| (a.n > 0).then(|| Centred::of(a, pre_mean)))
        .collect();
    // Within-arm centred cross-products, pooled.
    let (mut sxx, mut sxm, mut smm, mut sxy, mut smy, mut syy) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for c in centred.iter().flatten() {
        sxx += c.xx;
        sxm += c.xm;
        smm += c.mm;
        sxy += c.xy;
        smy += c.my;
        syy += c.yy;
    }
    let det = sxx * smm - sxm * sxm;
    let (theta, gamma) = if smm > 0.0 && det > 1e-12 * sxx * smm {
        ((sxy * smm - smy * sxm) / det, (smy * sxx - sxy * sxm) / det)
    } else if sxx > 0.0 {
        (sxy / sxx, 0.0)
    } else {
        return unchanged(0.0);
    };
    if !(theta.is_finite() && gamma.is_finite()) || syy == 0.0 {
        return unchanged(0.0);
    }
    // Centre on the pooled covariate means, so the adjusted overall mean
    // stays where it was.
    let zx = centred.iter().flatten().map(|c| c.sum_x).sum::<f64>() / users as f64;
    let zm = centred.iter().flatten().map(|c| c.missing).sum::<f64>() / users as f64;
    let moments = arms
        .iter()
        .zip(&centred)
        .map(|(arm, c)| match c {
            None => arm.moments(),
            Some(c) => {
                let mean = c.mean - theta * (c.sum_x / c.n - zx) - gamma * (c.missing / c.n - zm);
                let m2 = if arm.n < 2 {
                    0.0
                } else {
                    (c.yy - 2.0 * theta * c.xy - 2.0 * gamma * c.my
                        + theta * theta * c.xx
                        + 2.0 * theta * gamma * c.xm
                        + gamma * gamma * c.mm)
                        .max(0.0)
                };
                Moments::from_parts(arm.n, mean, m2)
            }
        })
        .collect();
    // Residual sum of squares of the within-arm regression.
    let explained = theta * sxy + gamma * smy;
    Adjusted {
        moments,
        fit: CupedFit {
            theta,
            with_pre,
            users,
            variance_reduction: (explained / syy).clamp(0.0, 1.0),
        },
        coefficients: Some(Coefficients {
            theta,
            gamma,
            pre_mean,
            zx,
            zm,
        }),
    }
}

/// Applies a fit to per-user values (the daily looks of `--sequential
/// --horizon` correlate users' adjusted values from look to look);
/// `pre` maps users to their pre-period values.
pub fn apply(samples: &mut [Sample], pre: &HashMap<u64, f64>, c: &Coefficients) {
    for s in samples {
        for (u, y) in s.users.iter().zip(s.values.iter_mut()) {
            let (x, m) = match pre.get(u) {
                Some(&x) => (x, 0.0),
                None => (c.pre_mean, 1.0),
            };
            *y -= c.theta * (x - c.zx) + c.gamma * (m - c.zm);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ab::estimate::close;
    use crate::ab::metrics::{Kind, Observation};
    use crate::ab::sums::Sums;

    /// Each sample's sums with `pre` as the covariate, fitted; and the
    /// samples adjusted value by value with the same fit.
    fn adjust(samples: &mut [Sample], pre: &HashMap<u64, f64>) -> (CupedFit, Vec<Moments>) {
        let arms: Vec<Linear> = samples
            .iter()
            .map(|s| {
                let mut sums = Sums::new(true);
                for (u, v) in s.users.iter().zip(&s.values) {
                    sums.add(Kind::User, Observation::Value(*v), pre.get(u).copied());
                }
                sums.linear(Kind::User)
            })
            .collect();
        let adjusted = fit(&arms);
        if let Some(c) = &adjusted.coefficients {
            apply(samples, pre, c);
        }
        // The sums' adjusted moments are the adjusted values' moments.
        for (s, m) in samples.iter().zip(&adjusted.moments) {
            let direct = s.moments();
            assert!(close(m.mean(), direct.mean(), 1e-9), "{m:?} vs {direct:?}");
            assert!(close(m.var(), direct.var(), 1e-7), "{m:?} vs {direct:?}");
        }
        (adjusted.fit, adjusted.moments)
    }

    #[test]
    fn a_perfect_covariate_removes_the_user_variance_and_keeps_the_effect() {
        // y = 2·pre + noise-free arm effect of +1 in the treatment.
        let pre: HashMap<u64, f64> = (0..200).map(|u| (u, (u % 17) as f64)).collect();
        let mut samples = vec![
            Sample::of_users(0..100, |u| 2.0 * (u % 17) as f64 + 0.1 * (u % 3) as f64),
            Sample::of_users(100..200, |u| {
                2.0 * (u % 17) as f64 + 1.0 + 0.1 * (u % 3) as f64
            }),
        ];
        let before: Vec<Moments> = samples.iter().map(Sample::moments).collect();
        let (fit, after) = adjust(&mut samples, &pre);
        assert!((fit.theta - 2.0).abs() < 0.01, "{fit:?}");
        assert!(fit.variance_reduction > 0.99, "{fit:?}");
        assert!(after[0].var() < before[0].var() / 50.0);
        let effect_before = before[1].mean() - before[0].mean();
        let effect_after = after[1].mean() - after[0].mean();
        assert!(
            (effect_after - 1.0).abs() < 0.05,
            "{effect_before} → {effect_after}"
        );
        assert_eq!((fit.with_pre, fit.users), (200, 200));
    }

    #[test]
    fn users_without_a_pre_period_are_kept_with_an_indicator() {
        // Half the users are new: their level is 5 higher, which the indicator
        // absorbs; imputing the mean alone would leave it in the variance.
        let pre: HashMap<u64, f64> = (0..200u64)
            .filter(|&u| u.is_multiple_of(2))
            .map(|u| (u, (u % 7) as f64))
            .collect();
        let y = |u: u64| {
            if u.is_multiple_of(2) {
                (u % 7) as f64
            } else {
                5.0 + (u % 3) as f64 * 0.01
            }
        };
        let mut samples = vec![Sample::of_users(0..100, y), Sample::of_users(100..200, y)];
        let (fit, after) = adjust(&mut samples, &pre);
        assert_eq!((fit.with_pre, fit.users), (100, 200));
        assert!(fit.variance_reduction > 0.99, "{fit:?}");
        assert_eq!(after[0].count(), 100, "nobody is dropped");
    }

    #[test]
    fn no_pre_period_changes_nothing() {
        let mut samples = vec![
            Sample::of_users(0..10, |u| u as f64),
            Sample::of_users(10..20, |u| u as f64),
        ];
        let copy = samples.clone();
        let (fit, after) = adjust(&mut samples, &HashMap::new());
        assert_eq!(samples, copy);
        assert_eq!((fit.variance_reduction, fit.with_pre), (0.0, 0));
        assert_eq!(after[1].mean(), 14.5);
    }
}

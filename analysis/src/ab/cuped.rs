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

use std::collections::HashMap;

use super::estimate::Sample;

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

/// Adjusts every arm's sample with pre-period values `pre` (user → value).
pub fn adjust(samples: &mut [Sample], pre: &HashMap<u64, f64>) -> CupedFit {
    let users: usize = samples.iter().map(|s| s.values.len()).sum();
    let observed: Vec<f64> = samples
        .iter()
        .flat_map(|s| s.users.iter().filter_map(|u| pre.get(u).copied()))
        .collect();
    let with_pre = observed.len();
    let unchanged = |theta| CupedFit {
        theta,
        with_pre: with_pre as u64,
        users: users as u64,
        variance_reduction: 0.0,
    };
    if with_pre < 2 {
        return unchanged(0.0);
    }
    let pre_mean = observed.iter().sum::<f64>() / with_pre as f64;
    // Covariates per arm: (x imputed, missing indicator).
    let covariates: Vec<Vec<(f64, f64)>> = samples
        .iter()
        .map(|s| {
            s.users
                .iter()
                .map(|u| match pre.get(u) {
                    Some(&x) => (x, 0.0),
                    None => (pre_mean, 1.0),
                })
                .collect()
        })
        .collect();
    // Within-arm centred cross-products.
    let (mut sxx, mut sxm, mut smm, mut sxy, mut smy, mut syy) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for (s, z) in samples.iter().zip(&covariates) {
        let n = s.values.len() as f64;
        if n == 0.0 {
            continue;
        }
        let my = s.values.iter().sum::<f64>() / n;
        let mx = z.iter().map(|c| c.0).sum::<f64>() / n;
        let mm = z.iter().map(|c| c.1).sum::<f64>() / n;
        for (y, (x, m)) in s.values.iter().zip(z) {
            let (y, x, m) = (y - my, x - mx, m - mm);
            sxx += x * x;
            sxm += x * m;
            smm += m * m;
            sxy += x * y;
            smy += m * y;
            syy += y * y;
        }
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
    let all: Vec<&(f64, f64)> = covariates.iter().flatten().collect();
    let zx = all.iter().map(|c| c.0).sum::<f64>() / users as f64;
    let zm = all.iter().map(|c| c.1).sum::<f64>() / users as f64;
    for (s, z) in samples.iter_mut().zip(&covariates) {
        for (y, (x, m)) in s.values.iter_mut().zip(z) {
            *y -= theta * (x - zx) + gamma * (m - zm);
        }
    }
    // Residual sum of squares of the within-arm regression.
    let explained = theta * sxy + gamma * smy;
    CupedFit {
        theta,
        with_pre: with_pre as u64,
        users: users as u64,
        variance_reduction: (explained / syy).clamp(0.0, 1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally::Moments;

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
        let fit = adjust(&mut samples, &pre);
        let after: Vec<Moments> = samples.iter().map(Sample::moments).collect();
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
        let fit = adjust(&mut samples, &pre);
        assert_eq!((fit.with_pre, fit.users), (100, 200));
        assert!(fit.variance_reduction > 0.99, "{fit:?}");
        assert_eq!(samples[0].values.len(), 100, "nobody is dropped");
    }

    #[test]
    fn no_pre_period_changes_nothing() {
        let mut samples = vec![
            Sample::of_users(0..10, |u| u as f64),
            Sample::of_users(10..20, |u| u as f64),
        ];
        let copy = samples.clone();
        let fit = adjust(&mut samples, &HashMap::new());
        assert_eq!(samples, copy);
        assert_eq!((fit.variance_reduction, fit.with_pre), (0.0, 0));
    }
}

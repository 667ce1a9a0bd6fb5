//! Several means of one arm taken over overlapping sets of users — one per
//! day, one per segment — and their joint covariance, for tests that
//! combine them (the trend over days, the heterogeneity between segments).
//!
//! A listener active on three days sits in three daily means; a listener
//! whose sessions start in two genres sits in two segments. Those means are
//! not independent, and a test that treated them so would misstate its
//! variance. The user is the unit of randomisation, so the covariance comes
//! from each user's *influence* on every mean (the sandwich estimator):
//! `φ_ug = (v_ug − m_g) / √(n_g (n_g − 1))` for each mean `g` the user is in,
//! `Cov(m_g, m_h) = Σ_u φ_ug φ_uh`. The diagonal is exactly Welch's
//! `s²/n`; disjoint groups get a diagonal matrix.

use super::estimate::welch_p;
use super::group_sums::GroupSums;
use super::metrics::Kind;
use super::sums::Linear;

/// One arm's group means and their covariance matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Means {
    pub means: Vec<f64>,
    pub counts: Vec<usize>,
    pub covariance: Vec<Vec<f64>>,
}

impl Means {
    /// The groups' means of a metric of `kind` and their covariance from
    /// the users' influence, computed from the groups' and pairs' sums
    /// ([`GroupSums`]): with `e = y − R·d` (R the group's ratio, 0 for a user
    /// metric), `Σ_{u∈a∩b} (e_ua − ē_a)(e_ub − ē_b)` expands into the pair's
    /// sums. A group of fewer than two users has a NaN variance.
    pub fn of(kind: Kind, sums: &GroupSums) -> Means {
        let lines: Vec<Linear> = sums.groups.iter().map(|g| g.linear(kind)).collect();
        let g = lines.len();
        let means = lines.iter().map(|l| l.moments().mean()).collect();
        let counts: Vec<usize> = lines.iter().map(|l| l.n as usize).collect();
        // e's mean, and the factor that turns Σ (e − ē)(e − ē) into a
        // covariance of the means: scale_a·scale_b / √(n_a(n_a−1)·n_b(n_b−1)).
        let centre = |l: &Linear| l.e / l.n as f64;
        let factor = |l: &Linear| l.scale / ((l.n * l.n.saturating_sub(1)) as f64).sqrt();
        let mut covariance = vec![vec![0.0; g]; g];
        for (a, l) in lines.iter().enumerate() {
            covariance[a][a] = if l.n < 2 {
                f64::NAN
            } else {
                factor(l).powi(2) * (l.ee - l.e * centre(l))
            };
        }
        for (&(a, b), p) in &sums.pairs {
            let (la, lb) = (&lines[a], &lines[b]);
            let (ra, rb) = (la.offset, lb.offset);
            let products = p.yy - rb * p.yd - ra * p.dy + ra * rb * p.dd;
            let (sum_a, sum_b) = (p.y_a - ra * p.d_a, p.y_b - rb * p.d_b);
            let (ca, cb) = (centre(la), centre(lb));
            let centred = products - cb * sum_a - ca * sum_b + p.n as f64 * ca * cb;
            let value = factor(la) * factor(lb) * centred;
            covariance[a][b] = value;
            covariance[b][a] = value;
        }
        Means {
            means,
            counts,
            covariance,
        }
    }

    /// The means of the groups `keep`, in that order.
    pub fn restrict(&self, keep: &[usize]) -> Means {
        Means {
            means: keep.iter().map(|&i| self.means[i]).collect(),
            counts: keep.iter().map(|&i| self.counts[i]).collect(),
            covariance: keep
                .iter()
                .map(|&i| keep.iter().map(|&j| self.covariance[i][j]).collect())
                .collect(),
        }
    }
}

/// Treatment minus control, group by group, with the covariance of the
/// differences (the arms' users are disjoint, so their covariances add).
#[derive(Debug, Clone, PartialEq)]
pub struct Contrast {
    pub diffs: Vec<f64>,
    pub covariance: Vec<Vec<f64>>,
}

impl Contrast {
    pub fn new(control: &Means, treated: &Means) -> Contrast {
        let diffs = treated
            .means
            .iter()
            .zip(&control.means)
            .map(|(t, c)| t - c)
            .collect();
        let covariance = treated
            .covariance
            .iter()
            .zip(&control.covariance)
            .map(|(t, c)| t.iter().zip(c).map(|(a, b)| a + b).collect())
            .collect();
        Contrast { diffs, covariance }
    }

    /// `Σ w_g d_g` and its variance `wᵀ V w`.
    pub fn combination(&self, weights: &[f64]) -> (f64, f64) {
        let value = weights.iter().zip(&self.diffs).map(|(w, d)| w * d).sum();
        let mut variance = 0.0;
        for (a, wa) in weights.iter().enumerate() {
            for (b, wb) in weights.iter().enumerate() {
                variance += wa * wb * self.covariance[a][b];
            }
        }
        (value, variance)
    }

    /// The Wald test that every group has the same difference (Cochran's Q,
    /// generalised to correlated groups): `Q = dᵀV⁻¹d − (1ᵀV⁻¹d)² / 1ᵀV⁻¹1`,
    /// χ² with one degree of freedom fewer than groups under equality.
    /// `None` when the covariance cannot be inverted.
    pub fn equality(&self) -> Option<(f64, usize)> {
        let g = self.diffs.len();
        if g < 2 {
            return None;
        }
        let v_inv_d = solve(&self.covariance, &self.diffs)?;
        let v_inv_1 = solve(&self.covariance, &vec![1.0; g])?;
        let dvd: f64 = self.diffs.iter().zip(&v_inv_d).map(|(a, b)| a * b).sum();
        let one_vd: f64 = v_inv_d.iter().sum();
        let one_v1: f64 = v_inv_1.iter().sum();
        let q = dvd - one_vd * one_vd / one_v1;
        q.is_finite().then_some((q.max(0.0), g - 1))
    }
}

/// Two-sided normal p-value of an estimate with `variance` (NaN when
/// undefined): the contrasts here rest on hundreds of users.
pub fn normal_p(value: f64, variance: f64) -> f64 {
    welch_p(value / variance.sqrt(), f64::INFINITY)
}

/// Solves `A x = b` by Gaussian elimination with partial pivoting; `None`
/// when `A` is singular (or holds NaN).
pub fn solve(a: &[Vec<f64>], b: &[f64]) -> Option<Vec<f64>> {
    let n = b.len();
    let mut m: Vec<Vec<f64>> = a
        .iter()
        .zip(b)
        .map(|(row, &rhs)| {
            let mut row = row.clone();
            row.push(rhs);
            row
        })
        .collect();
    let scale = a
        .iter()
        .flatten()
        .fold(0.0f64, |s, v| s.max(v.abs()))
        .max(f64::MIN_POSITIVE);
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs()))?;
        // NaN compares false: a NaN pivot is refused too.
        if m[pivot][col].abs().partial_cmp(&(1e-13 * scale)) != Some(std::cmp::Ordering::Greater) {
            return None;
        }
        m.swap(col, pivot);
        let (done, rest) = m.split_at_mut(col + 1);
        let pivot_row = &done[col];
        for row in rest {
            let factor = row[col] / pivot_row[col];
            for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= factor * p;
            }
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let rest: f64 = (row + 1..n).map(|k| m[row][k] * x[k]).sum();
        x[row] = (m[row][n] - rest) / m[row][row];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ab::estimate::{close, Sample};
    use crate::ab::metrics::Observation;

    fn users(users: std::ops::Range<u64>, f: impl Fn(u64) -> f64) -> Vec<(u64, Observation)> {
        users.map(|u| (u, Observation::Value(f(u)))).collect()
    }

    #[test]
    fn the_diagonal_is_welchs_variance_and_shared_users_covary() {
        let a = users(0..10, |u| u as f64);
        let b = users(5..15, |u| 2.0 * u as f64);
        let means = Means::of(
            Kind::User,
            &GroupSums::of(Kind::User, &[a.clone(), b.clone()]),
        );
        let welch = |s: &[(u64, Observation)]| {
            let m = Sample::new(Kind::User, s).moments();
            m.var() / m.count() as f64
        };
        assert!(close(means.covariance[0][0], welch(&a), 1e-12));
        assert!(close(means.covariance[1][1], welch(&b), 1e-12));
        // Users 5..10 are in both: (u − 4.5)(2u − 19) / 90 summed.
        let shared: f64 = (5..10)
            .map(|u| (u as f64 - 4.5) * (2.0 * u as f64 - 19.0) / 90.0)
            .sum();
        assert!(close(means.covariance[0][1], shared, 1e-12));
        assert_eq!(means.covariance[0][1], means.covariance[1][0]);
        let disjoint = GroupSums::of(Kind::User, &[a, users(20..30, |u| u as f64)]);
        assert_eq!(Means::of(Kind::User, &disjoint).covariance[0][1], 0.0);
    }

    #[test]
    fn ratio_groups_covary_through_their_linearised_values() {
        // Users 0..40 and 20..60, each with a ratio (3u + 1) / (u % 4 + 1):
        // the sums' covariance equals the influence of the delta method's
        // linearised values, computed user by user.
        let ratio = |range: std::ops::Range<u64>| -> Vec<(u64, Observation)> {
            range
                .map(|u| {
                    (
                        u,
                        Observation::Ratio(3.0 * u as f64 + 1.0, (u % 4 + 1) as f64),
                    )
                })
                .collect()
        };
        let (a, b) = (ratio(0..40), ratio(20..60));
        let means = Means::of(
            Kind::Ratio,
            &GroupSums::of(Kind::Ratio, &[a.clone(), b.clone()]),
        );
        let (sa, sb) = (Sample::new(Kind::Ratio, &a), Sample::new(Kind::Ratio, &b));
        let influence = |s: &Sample| {
            let m = s.moments();
            let scale = (m.count() as f64 * (m.count() as f64 - 1.0)).sqrt();
            s.users
                .iter()
                .zip(&s.values)
                .map(|(&u, v)| (u, (v - m.mean()) / scale))
                .collect::<std::collections::HashMap<u64, f64>>()
        };
        let (ia, ib) = (influence(&sa), influence(&sb));
        let shared: f64 = ia
            .iter()
            .filter_map(|(u, x)| ib.get(u).map(|y| x * y))
            .sum();
        assert!(
            close(means.covariance[0][1], shared, 1e-12),
            "{:?} {shared}",
            means.covariance
        );
        assert!(close(means.means[0], sa.moments().mean(), 1e-12));
        let welch = sa.moments().var() / 40.0;
        assert!(close(means.covariance[0][0], welch, 1e-12));
        let kept = means.restrict(&[1]);
        assert_eq!(
            (kept.means.len(), kept.covariance[0][0]),
            (1, means.covariance[1][1])
        );
    }

    #[test]
    fn equality_is_cochrans_q_for_independent_groups() {
        let contrast = Contrast {
            diffs: vec![1.0, 3.0, 2.0],
            covariance: vec![
                vec![1.0, 0.0, 0.0],
                vec![0.0, 4.0, 0.0],
                vec![0.0, 0.0, 0.25],
            ],
        };
        // Inverse-variance mean (1 + 0.75 + 8) / (1 + 0.25 + 4) = 9.75 / 5.25;
        // Q = Σ w (d − mean)².
        let pooled = 9.75 / 5.25;
        let q: f64 = [(1.0, 1.0), (0.25, 3.0), (4.0, 2.0)]
            .iter()
            .map(|(w, d)| w * (d - pooled) * (d - pooled))
            .sum();
        let (got, dof) = contrast.equality().unwrap();
        assert!(close(got, q, 1e-12), "{got} vs {q}");
        assert_eq!(dof, 2);
        let (value, variance) = contrast.combination(&[1.0, -1.0, 0.0]);
        assert_eq!((value, variance), (-2.0, 5.0));
    }

    #[test]
    fn singular_systems_are_refused() {
        assert!(solve(&[vec![1.0, 2.0], vec![2.0, 4.0]], &[1.0, 2.0]).is_none());
        assert!(solve(&[vec![f64::NAN]], &[1.0]).is_none());
        let x = solve(&[vec![0.0, 2.0], vec![3.0, 1.0]], &[4.0, 5.0]).unwrap();
        assert!(close(x[0], 1.0, 1e-12) && close(x[1], 2.0, 1e-12));
    }
}

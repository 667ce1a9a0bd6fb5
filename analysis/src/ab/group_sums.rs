//! One arm's sufficient statistics of one metric over several groups of
//! users that may overlap — one group per day, or per segment — for the
//! tests that combine the groups' means (the trend over days, the
//! heterogeneity between segments; [`clustered`](super::clustered)).
//!
//! Each group has its [`Sums`], as the whole window has. A listener in two
//! groups makes their means covary, and that covariance needs, for each
//! pair of groups, sums over the users in both: how many, Σy_a·y_b, Σy_a·d_b,
//! Σd_a·y_b, Σd_a·d_b, and each side's Σy and Σd over them. These are what a
//! warehouse's SQL computes for the pairs (`analysis/sql/ab_stats.sql`), and
//! what the logs reduce to here, so both paths meet in the same arithmetic.

use std::collections::{BTreeMap, HashMap};

use super::metrics::{Kind, Observation};
use super::sums::Sums;

/// Sums over the users in both groups `a < b` of a pair.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PairSums {
    pub n: u64,
    /// Σ y_a·y_b, Σ y_a·d_b, Σ d_a·y_b, Σ d_a·d_b.
    pub yy: f64,
    pub yd: f64,
    pub dy: f64,
    pub dd: f64,
    /// Σ y_a, Σ d_a, Σ y_b, Σ d_b over the shared users.
    pub y_a: f64,
    pub d_a: f64,
    pub y_b: f64,
    pub d_b: f64,
}

/// One arm's sums per group and per pair of groups that share users.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupSums {
    pub groups: Vec<Sums>,
    /// Keyed by `(a, b)`, `a < b`; pairs without a shared user are absent.
    pub pairs: BTreeMap<(usize, usize), PairSums>,
}

impl GroupSums {
    /// Each group's `(user, observation)` pairs reduced to sums.
    pub fn of(kind: Kind, groups: &[Vec<(u64, Observation)>]) -> GroupSums {
        let sums = groups.iter().map(|o| Sums::of(kind, o)).collect();
        let mut by_user: HashMap<u64, Vec<(usize, f64, f64)>> = HashMap::new();
        for (g, observations) in groups.iter().enumerate() {
            for &(user, o) in observations {
                let (y, d) = Sums::parts(kind, o);
                by_user.entry(user).or_default().push((g, y, d));
            }
        }
        let mut pairs: BTreeMap<(usize, usize), PairSums> = BTreeMap::new();
        for memberships in by_user.values() {
            for (i, &(a, ya, da)) in memberships.iter().enumerate() {
                for &(b, yb, db) in &memberships[i + 1..] {
                    // Groups are visited in order, so a < b.
                    let p = pairs.entry((a, b)).or_default();
                    p.n += 1;
                    p.yy += ya * yb;
                    p.yd += ya * db;
                    p.dy += da * yb;
                    p.dd += da * db;
                    p.y_a += ya;
                    p.d_a += da;
                    p.y_b += yb;
                    p.d_b += db;
                }
            }
        }
        GroupSums {
            groups: sums,
            pairs,
        }
    }
}

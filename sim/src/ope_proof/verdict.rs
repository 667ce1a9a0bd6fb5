//! Each estimate set against its truth, and the bars the proof is held to:
//! on `first_pick`, SNIPS or DR within ±10% of the truth on at least 80% of
//! the (logging, target) pairs with its 95% interval covering the truth on
//! at least 85%; the targets ranked as the truth ranks them from every
//! logging arm (Kendall τ ≥ 0.8); on `session`, the error reported wherever
//! the effective sample size reaches 1,000.
//!
//! A pair whose target puts more than [`MAX_OUTSIDE_SUPPORT`] of its
//! probability on tracks the logging arm never serves is left out of the
//! bars and counted apart: no estimator can recover the reward of what was
//! never served, and `analysis ope` says so on such a row.

use analysis::commands::ope::OpeRow;
use serde::Serialize;

/// A target's on-policy value on its own day.
#[derive(Debug, Clone, Serialize)]
pub struct Truth {
    pub target: String,
    pub first_pick: f64,
    pub session: f64,
}

impl Truth {
    /// From `analysis ope` of the target on its own log: every row carries
    /// the logging arm's own value of its reward.
    pub fn of(target: &str, own: &[OpeRow]) -> Truth {
        let value = |reward: &str| {
            own.iter()
                .find(|r| r.reward == reward)
                .map_or(f64::NAN, |r| r.logged_value)
        };
        Truth {
            target: target.to_string(),
            first_pick: value("first_pick"),
            session: value("session"),
        }
    }

    fn value(&self, reward: &str) -> f64 {
        if reward == "first_pick" {
            self.first_pick
        } else {
            self.session
        }
    }
}

/// One estimate next to its truth.
#[derive(Debug, Clone, Serialize)]
pub struct Pair {
    pub logging: String,
    pub target: String,
    pub reward: &'static str,
    pub estimator: &'static str,
    pub truth: f64,
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
    pub ess: f64,
    /// (estimate − truth) / truth.
    pub error: f64,
    pub covered: bool,
    pub outside_support: Option<f64>,
}

/// The estimators the bars are about (IPS is shown by `analysis ope`).
pub const JUDGED: [&str; 2] = ["snips", "dr"];
/// The effective sample size from which a `session` error is reported.
pub const SESSION_MIN_ESS: f64 = 1_000.0;
/// Beyond this share of the target's mass outside the logging arm's
/// support, a pair is not judged (`analysis ope`'s own warning threshold).
pub const MAX_OUTSIDE_SUPPORT: f64 = 0.05;

impl Pair {
    /// Whether the logging arm could have served what the target serves.
    pub fn supported(&self) -> bool {
        self.outside_support
            .is_none_or(|share| share <= MAX_OUTSIDE_SUPPORT)
    }
}

/// Every judged row of `rows` (`analysis ope` from `logging`'s log) with
/// its target's truth.
pub fn pairs(logging: &str, rows: &[OpeRow], truths: &[Truth]) -> Vec<Pair> {
    rows.iter()
        .filter(|r| JUDGED.contains(&r.estimator))
        .filter_map(|r| {
            let truth = truths
                .iter()
                .find(|t| t.target == r.target)?
                .value(r.reward);
            let v = &r.value;
            Some(Pair {
                logging: logging.to_string(),
                target: r.target.clone(),
                reward: r.reward,
                estimator: r.estimator,
                truth,
                estimate: v.estimate,
                lower: v.lower,
                upper: v.upper,
                ess: v.ess,
                error: (v.estimate - truth) / truth,
                covered: v.lower <= truth && truth <= v.upper,
                outside_support: r.outside_support,
            })
        })
        .collect()
}

/// One estimator's record over the pairs.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub estimator: &'static str,
    /// `first_pick`: share of pairs within ±10% of the truth.
    pub within_10: f64,
    /// `first_pick`: share of pairs whose interval covers the truth.
    pub coverage: f64,
    /// `first_pick`: per logging arm, Kendall τ between the estimates'
    /// ranking of the targets and the truth's.
    pub kendall: Vec<(String, f64)>,
    /// `session`, pairs with ESS ≥ 1,000: how many, their mean absolute
    /// relative error, and the share within ±25%.
    pub session_pairs: usize,
    pub session_mean_abs_error: f64,
    pub session_within_25: f64,
}

/// The bars, each estimator's record, and whether one estimator meets them.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub records: Vec<Record>,
    /// Pairs (per estimator and reward) left out for lack of support.
    pub unsupported: usize,
    /// The estimator meeting every `first_pick` bar, if one does.
    pub passes: Option<&'static str>,
}

impl Verdict {
    pub fn of(pairs: &[Pair], logging: &[String]) -> Verdict {
        let judged: Vec<Pair> = pairs.iter().filter(|p| p.supported()).cloned().collect();
        let records: Vec<Record> = JUDGED
            .iter()
            .map(|&estimator| Record::of(estimator, &judged, logging))
            .collect();
        let passes = records
            .iter()
            .find(|r| {
                r.within_10 >= 0.8 && r.coverage >= 0.85 && r.kendall.iter().all(|(_, t)| *t >= 0.8)
            })
            .map(|r| r.estimator);
        Verdict {
            records,
            unsupported: pairs.len() - judged.len(),
            passes,
        }
    }
}

impl Record {
    fn of(estimator: &'static str, pairs: &[Pair], logging: &[String]) -> Record {
        let of = |reward: &str| -> Vec<&Pair> {
            pairs
                .iter()
                .filter(|p| p.estimator == estimator && p.reward == reward)
                .collect()
        };
        let first = of("first_pick");
        let share = |hits: usize, n: usize| {
            if n == 0 {
                f64::NAN
            } else {
                hits as f64 / n as f64
            }
        };
        let kendall = logging
            .iter()
            .map(|l| {
                let from: Vec<&&Pair> = first.iter().filter(|p| &p.logging == l).collect();
                let estimates: Vec<f64> = from.iter().map(|p| p.estimate).collect();
                let truths: Vec<f64> = from.iter().map(|p| p.truth).collect();
                (l.clone(), kendall_tau(&estimates, &truths))
            })
            .collect();
        let session: Vec<&Pair> = of("session")
            .into_iter()
            .filter(|p| p.ess >= SESSION_MIN_ESS)
            .collect();
        Record {
            estimator,
            within_10: share(
                first.iter().filter(|p| p.error.abs() <= 0.10).count(),
                first.len(),
            ),
            coverage: share(first.iter().filter(|p| p.covered).count(), first.len()),
            kendall,
            session_pairs: session.len(),
            session_mean_abs_error: session.iter().map(|p| p.error.abs()).sum::<f64>()
                / session.len().max(1) as f64,
            session_within_25: share(
                session.iter().filter(|p| p.error.abs() <= 0.25).count(),
                session.len(),
            ),
        }
    }
}

/// Kendall's τ-a between two scorings of the same items: concordant minus
/// discordant pairs over all pairs (a tie in either counts as neither).
/// NaN for fewer than two items.
pub fn kendall_tau(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    if n < 2 {
        return f64::NAN;
    }
    let mut score = 0i64;
    for i in 0..n {
        for j in i + 1..n {
            let product = (a[i] - a[j]) * (b[i] - b[j]);
            score += i64::from(product > 0.0) - i64::from(product < 0.0);
        }
    }
    score as f64 / (n * (n - 1) / 2) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kendall_tau_counts_concordant_minus_discordant_pairs() {
        assert_eq!(kendall_tau(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]), 1.0);
        assert_eq!(kendall_tau(&[1.0, 2.0, 3.0], &[30.0, 20.0, 10.0]), -1.0);
        // One swapped neighbour among five items: 9 − 1 of 10 pairs.
        let tau = kendall_tau(&[1.0, 2.0, 3.0, 4.0, 5.0], &[1.0, 3.0, 2.0, 4.0, 5.0]);
        assert!((tau - 0.8).abs() < 1e-12, "{tau}");
        assert!(kendall_tau(&[1.0], &[1.0]).is_nan());
    }

    fn pair(logging: &str, target: &str, estimate: f64, truth: f64, half: f64) -> Pair {
        Pair {
            logging: logging.into(),
            target: target.into(),
            reward: "first_pick",
            estimator: "snips",
            truth,
            estimate,
            lower: estimate - half,
            upper: estimate + half,
            ess: 5_000.0,
            error: (estimate - truth) / truth,
            covered: (estimate - truth).abs() <= half,
            outside_support: Some(0.0),
        }
    }

    #[test]
    fn an_estimator_passes_only_when_close_covering_and_ranking_right() {
        let logging = vec!["L".to_string()];
        let good = vec![
            pair("L", "a", 0.30, 0.31, 0.02),
            pair("L", "b", 0.41, 0.40, 0.02),
            pair("L", "c", 0.52, 0.50, 0.03),
        ];
        let verdict = Verdict::of(&good, &logging);
        assert_eq!(verdict.passes, Some("snips"));
        assert_eq!(verdict.records[0].within_10, 1.0);
        assert_eq!(verdict.records[0].kendall[0].1, 1.0);

        // Close on every pair but ranking a and b the wrong way round.
        let swapped = vec![
            pair("L", "a", 0.36, 0.35, 0.02),
            pair("L", "b", 0.355, 0.36, 0.02),
            pair("L", "c", 0.52, 0.50, 0.03),
        ];
        let verdict = Verdict::of(&swapped, &logging);
        assert!(verdict.records[0].kendall[0].1 < 0.8);
        assert_eq!(verdict.passes, None);

        // Ranking right but 20% off with narrow intervals.
        let biased = vec![
            pair("L", "a", 0.36, 0.30, 0.01),
            pair("L", "b", 0.48, 0.40, 0.01),
            pair("L", "c", 0.60, 0.50, 0.01),
        ];
        let verdict = Verdict::of(&biased, &logging);
        assert_eq!(verdict.records[0].within_10, 0.0);
        assert_eq!(verdict.records[0].coverage, 0.0);
        assert_eq!(verdict.passes, None);

        // A target mostly outside the logging support is counted apart.
        let mut outside = good.clone();
        outside.push(Pair {
            outside_support: Some(0.6),
            ..pair("L", "d", 0.9, 0.3, 0.01)
        });
        let verdict = Verdict::of(&outside, &logging);
        assert_eq!(verdict.unsupported, 1);
        assert_eq!(verdict.passes, Some("snips"));
    }
}

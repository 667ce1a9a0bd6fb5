//! The notebook's statistics: per user per arm, over the user's closed
//! sessions,
//! - `time`: total listen time;
//! - `sessions`: number of sessions;
//! - `mean_request_latency`: the user's latency sum in ms / their track sum;
//! - `mean_tracks_per_session`, `mean_time_per_session`.
//!
//! Per arm: count, mean and sample variance (ddof = 1) of each metric, from
//! the arm's sums n, Σy, Σy² (`sums.rs`, as a warehouse computes them). Each
//! treatment against control: effect = (treatment mean − control mean) /
//! control mean × 100; a 95% Welch interval on the difference of means
//! (Welch–Satterthwaite degrees of freedom, Student t quantile), divided by the
//! control mean × 100; significant when the interval excludes 0. Then a
//! chi-square check of users per arm against the configured split (SRM).

use anyhow::{bail, Result};
use serde::Serialize;
use statrs::distribution::{ChiSquared, ContinuousCDF};

use super::estimate::{Comparison, EffectEstimate};
use super::metrics::{Kind, Observation};
use super::sums::Sums;
use crate::logs::NO_ARM;
use crate::sessions::Session;
use tally::Moments;

/// The notebook's metric names, in its column order.
pub const METRICS: [&str; 5] = [
    "time",
    "sessions",
    "mean_request_latency",
    "mean_tracks_per_session",
    "mean_time_per_session",
];

/// For coloring: a significant rise is good for every metric but latency.
pub(super) const HIGHER_IS_BETTER: [bool; 5] = [true, true, false, true, true];

/// The p-value under which the split is declared broken.
pub const SRM_ALPHA: f64 = 0.001;

/// One user's metrics in one arm, in [`METRICS`] order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UserMetrics {
    pub user: u64,
    pub arm: u8,
    pub values: [f64; 5],
}

/// Aggregates sessions into per-(user, arm) metrics. `sessions` must be
/// grouped by (user, arm), as [`crate::sessions::sessionize`] returns them.
pub fn user_metrics(sessions: &[Session]) -> Vec<UserMetrics> {
    let mut users = Vec::new();
    for group in sessions.chunk_by(|a, b| a.user == b.user && a.arm == b.arm) {
        let n = group.len() as f64;
        let time: f64 = group.iter().map(|s| s.time).sum();
        let latency: f64 = group.iter().map(|s| s.latency_ms).sum();
        let tracks: f64 = group.iter().map(|s| s.tracks as f64).sum();
        users.push(UserMetrics {
            user: group[0].user,
            arm: group[0].arm,
            values: [time, n, latency / tracks, tracks / n, time / n],
        });
    }
    users
}

/// One line of the notebook's table. Field names are the notebook's: the JSON
/// output is an array of these.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub treatment: String,
    pub metric: String,
    /// The arm means; the effect and its 95% interval bounds, percent of
    /// the control mean.
    #[serde(flatten)]
    pub estimate: EffectEstimate,
    pub significant: bool,
}

/// Welch's 95% interval of `treatment` − `control`, relative to the control
/// mean. The comparison is [`Comparison`]'s; the percentages divide by the
/// control mean before scaling, in the notebook's order of operations, so
/// the row matches pandas to the last bit.
pub fn welch(metric: &str, treatment: &str, control: Moments, treated: Moments) -> Row {
    let c = Comparison::new(control, treated);
    let lower = (c.diff - c.half) / c.control_mean * 100.0;
    let upper = (c.diff + c.half) / c.control_mean * 100.0;
    Row {
        treatment: treatment.to_string(),
        metric: metric.to_string(),
        estimate: EffectEstimate {
            control_mean: c.control_mean,
            treatment_mean: c.treatment_mean,
            effect: c.diff / c.control_mean * 100.0,
            lower,
            upper,
        },
        // NaN bounds (too few users) compare false: not significant, as in pandas.
        significant: lower > 0.0 || upper < 0.0,
    }
}

/// Sample-ratio-mismatch check: chi-square goodness of fit of users per arm
/// against the configured uniform split (mmh3 assignment is uniform).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Srm {
    /// Users per arm, arm index order.
    pub users: Vec<u64>,
    pub chi2: f64,
    pub p_value: f64,
}

impl Srm {
    pub fn mismatch(&self) -> bool {
        self.p_value < SRM_ALPHA
    }

    /// Users per arm and the test, without a verdict.
    pub fn counts(&self) -> String {
        let k = self.users.len();
        let per_arm: Vec<String> = self
            .users
            .iter()
            .enumerate()
            .map(|(a, n)| format!("{} {n}", botify::experiments::arm_label(a)))
            .collect();
        format!(
            "users per arm: {} (expected {:.1}% each); SRM chi2 = {:.2}, p = {:.3e}",
            per_arm.join(", "),
            100.0 / k as f64,
            self.chi2,
            self.p_value
        )
    }

    /// Users per arm and the SRM verdict, one paragraph.
    pub fn summary(&self) -> String {
        let verdict = if self.mismatch() {
            format!(
                "SAMPLE RATIO MISMATCH (p < {SRM_ALPHA}): users are not split as configured, so \
                 this table cannot be trusted; look for lost logs in one arm, a config change \
                 mid-experiment, or an assignment bug"
            )
        } else {
            "split as configured".to_string()
        };
        format!("{}: {verdict}", self.counts())
    }
}

pub fn srm(users: &[u64]) -> Srm {
    let total: u64 = users.iter().sum();
    let expected = total as f64 / users.len() as f64;
    let chi2: f64 = users
        .iter()
        .map(|&o| (o as f64 - expected).powi(2) / expected)
        .sum();
    let p_value = match ChiSquared::new(users.len() as f64 - 1.0) {
        Ok(dist) if total > 0 => dist.sf(chi2),
        // One arm (or no users): nothing to compare.
        _ => 1.0,
    };
    Srm {
        users: users.to_vec(),
        chi2,
        p_value,
    }
}

/// Per-arm summary.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmSummary {
    pub arm: u8,
    pub label: String,
    pub metrics: [Moments; 5],
}

/// The full result: arms, Welch rows for each treatment × metric, SRM.
#[derive(Debug, Clone, PartialEq)]
pub struct AbTable {
    pub experiment: String,
    pub control: u8,
    pub arms: Vec<ArmSummary>,
    pub rows: Vec<Row>,
    pub srm: Srm,
}

/// Builds the table from user metrics. `arms` is the configured number of
/// arms (the SRM's expected split); arms seen beyond it are counted too.
/// The users are reduced to each arm's sums ([`Sums`]), which
/// [`table_from_sums`] turns into the table.
pub fn table(experiment: &str, users: &[UserMetrics], arms: usize, control: u8) -> Result<AbTable> {
    let seen = users
        .iter()
        .filter(|u| u.arm != NO_ARM)
        .map(|u| u.arm as usize + 1)
        .max()
        .unwrap_or(0);
    let k = arms.max(seen);
    let mut sums: Vec<[Sums; 5]> = vec![[Sums::default(); 5]; k];
    for u in users.iter().filter(|u| u.arm != NO_ARM) {
        for (m, v) in u.values.iter().enumerate() {
            sums[u.arm as usize][m].add(Kind::User, Observation::Value(*v), None);
        }
    }
    table_from_sums(experiment, &sums, control)
}

/// The table from each arm's sums of the [`METRICS`] (arm index order, at
/// least the configured arms); an arm's users are its `time` count.
pub fn table_from_sums(experiment: &str, sums: &[[Sums; 5]], control: u8) -> Result<AbTable> {
    let k = sums.len();
    let counts: Vec<u64> = sums.iter().map(|s| s[0].n).collect();
    let label = |arm: usize| botify::experiments::arm_label(arm);
    if counts.get(control as usize).copied().unwrap_or(0) == 0 {
        let present: Vec<String> = (0..k).filter(|&a| counts[a] > 0).map(label).collect();
        bail!(
            "control arm {} has no users in experiment {experiment:?}; arms with users: {}; \
             choose the control with --control",
            label(control as usize),
            if present.is_empty() {
                "none".to_string()
            } else {
                present.join(", ")
            }
        );
    }
    let summaries: Vec<ArmSummary> = (0..k)
        .filter(|&a| counts[a] > 0)
        .map(|a| ArmSummary {
            arm: a as u8,
            label: label(a),
            metrics: std::array::from_fn(|m| sums[a][m].linear(Kind::User).moments()),
        })
        .collect();
    let control_summary = summaries
        .iter()
        .find(|s| s.arm == control)
        .expect("checked above");
    let mut rows = Vec::new();
    for treated in summaries.iter().filter(|s| s.arm != control) {
        for (m, metric) in METRICS.iter().enumerate() {
            rows.push(welch(
                metric,
                &treated.label,
                control_summary.metrics[m],
                treated.metrics[m],
            ));
        }
    }
    Ok(AbTable {
        experiment: experiment.to_string(),
        control,
        srm: srm(&counts),
        arms: summaries,
        rows,
    })
}

#[cfg(test)]
impl UserMetrics {
    /// A user whose listen time is `time` (one session of one track): the
    /// unit tests' users.
    pub(crate) fn with_time(user: u64, arm: u8, time: f64) -> UserMetrics {
        UserMetrics {
            user,
            arm,
            values: [time, 1.0, 1.0, 1.0, time],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ab::estimate::{close, t_quantile};
    use crate::output::Tone;

    #[test]
    fn welch_row_matches_hand_computation() {
        // control: n=4, mean 10, var 4; treatment: n=5, mean 12, var 9.
        // vc = 1, vt = 1.8, se = sqrt(2.8); dof = 2.8^2 / (1/3 + 1.8^2/4) = 7.84/1.1433… = 6.857…
        // scipy.stats.t.ppf(0.975, 6.857142857142857) = 2.3746474956860073
        // Values with exactly these moments: deviations (3, −1, −1, −1) and (3, 3, −3, −3, 0).
        let c = Moments::of(&[13.0, 9.0, 9.0, 9.0]);
        let t = Moments::of(&[15.0, 15.0, 9.0, 9.0, 12.0]);
        assert_eq!((c.count(), c.mean(), c.var()), (4, 10.0, 4.0));
        assert_eq!((t.count(), t.mean(), t.var()), (5, 12.0, 9.0));
        let row = welch("time", "T1", c, t);
        let dof: f64 = 7.84 / (1.0 / 3.0 + 3.24 / 4.0);
        let half = t_quantile(0.975, dof) * 2.8f64.sqrt();
        assert!(close(t_quantile(0.975, dof), 2.3746474956860073, 1e-9));
        assert!(close(row.estimate.effect, 20.0, 1e-12));
        assert!(close(row.estimate.lower, (2.0 - half) * 10.0, 1e-12));
        assert!(close(row.estimate.upper, (2.0 + half) * 10.0, 1e-12));
        assert!(
            !row.significant,
            "interval {}..{} spans 0",
            row.estimate.lower, row.estimate.upper
        );
    }

    #[test]
    fn srm_matches_scipy_chisquare() {
        // scipy.stats.chisquare([5000, 5000]).pvalue = 1.0;
        // chisquare([5200, 4800]) = (16.0, 6.334248366623988e-05);
        // chisquare([3300, 3350, 3350]) = (0.5, 0.7788007830714049).
        assert!(close(srm(&[5000, 5000]).p_value, 1.0, 1e-12));
        let s = srm(&[5200, 4800]);
        assert!(close(s.chi2, 16.0, 1e-12) && close(s.p_value, 6.334248366623988e-05, 1e-9));
        assert!(s.mismatch());
        let s = srm(&[3300, 3350, 3350]);
        assert!(close(s.chi2, 0.5, 1e-12) && close(s.p_value, 0.7788007830714049, 1e-9));
        assert!(!s.mismatch());
        assert!(srm(&[10]).p_value == 1.0);
    }

    #[test]
    fn one_user_arms_give_null_bounds_not_errors() {
        let users = vec![
            UserMetrics::with_time(1, 0, 1.0),
            UserMetrics::with_time(2, 1, 2.0),
        ];
        let t = table("AB", &users, 2, 0).unwrap();
        assert!(t.rows[0].estimate.lower.is_nan() && !t.rows[0].significant);
        assert_eq!(t.rows[0].estimate.effect, 100.0);
        let json: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
        assert!(json[0]["lower"].is_null() && json[0]["upper"].is_null());
        assert_eq!(t.to_table().rows[0].0[5], "n/a");
    }

    #[test]
    fn table_names_missing_control_and_colors_by_direction() {
        let users = vec![
            UserMetrics::with_time(1, 1, 1.0),
            UserMetrics::with_time(2, 1, 2.0),
        ];
        let err = table("AB", &users, 2, 0).unwrap_err().to_string();
        assert!(
            err.contains("control arm C has no users") && err.contains("T1"),
            "{err}"
        );

        let mut users: Vec<UserMetrics> = (0..50)
            .map(|i| UserMetrics::with_time(i, 0, 1.0 + (i % 5) as f64))
            .collect();
        users.extend((50..100).map(|i| UserMetrics::with_time(i, 1, 3.0 + (i % 5) as f64)));
        let mut t = table("AB", &users, 2, 0).unwrap();
        assert_eq!(t.rows.len(), 5);
        assert!(t.rows[0].significant && t.rows[0].estimate.effect > 0.0);
        assert_eq!(t.to_table().rows[0].1, Tone::Good);
        // A significant latency increase is a loss.
        t.rows[2] = Row {
            metric: "mean_request_latency".into(),
            significant: true,
            estimate: EffectEstimate {
                effect: 5.0,
                ..t.rows[2].estimate
            },
            ..t.rows[2].clone()
        };
        assert_eq!(t.to_table().rows[2].1, Tone::Bad);
        let json: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
        let mut keys: Vec<&str> = json[0]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "control_mean",
                "effect",
                "lower",
                "metric",
                "significant",
                "treatment",
                "treatment_mean",
                "upper"
            ]
        );
    }
}

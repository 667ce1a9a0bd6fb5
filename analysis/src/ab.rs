//! A/B tables exactly as the analysts' pandas/scipy notebook computes them
//! (docs/analysis.md#user-metrics), plus a sample-ratio-mismatch check.
//!
//! Per user per arm, over the user's closed sessions:
//! - `time`: total listen time;
//! - `sessions`: number of sessions;
//! - `mean_request_latency`: the user's latency sum in ms / their track sum;
//! - `mean_tracks_per_session`, `mean_time_per_session`.
//!
//! Per arm: count, mean and sample variance (ddof = 1) of each metric. Each
//! treatment against control: effect = (treatment mean − control mean) /
//! control mean × 100; a 95% Welch interval on the difference of means
//! (Welch–Satterthwaite degrees of freedom, Student t quantile), divided by the
//! control mean × 100; significant when the interval excludes 0.
//!
//! [`per_day`] runs the same analysis on each `day-<n>` log folder
//! (`ab --per-day`), for learning curves. [`extended`] is the analysis
//! beyond the notebook: the metric catalogue of [`metrics`] (multi-day,
//! ratio and guardrail metrics), the delta method and relative lifts
//! ([`estimate`]), CUPED ([`cuped`]), corrections ([`correction`]),
//! daily looks over a planned horizon ([`spending`]) or open-ended
//! ([`sequential`]), and power ([`power`]).

pub mod correction;
pub mod cuped;
pub mod estimate;
pub mod extended;
pub mod metrics;
pub mod per_day;
pub mod power;
pub mod sequential;
pub mod spending;

use anyhow::{bail, Result};
use serde::Serialize;
use statrs::distribution::{ChiSquared, ContinuousCDF, Normal, StudentsT};

use crate::logs::{Record, NO_ARM};
use crate::output::{self, Table, Tone};
use crate::sessions::{self, Session, SessionReport};
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
const HIGHER_IS_BETTER: [bool; 5] = [true, true, false, true, true];

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
/// grouped by (user, arm), as [`sessions::sessionize`] returns them.
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

/// One line of the notebook's table. Field names are the notebook's: the JSON
/// output is an array of these.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub treatment: String,
    pub metric: String,
    pub control_mean: f64,
    pub treatment_mean: f64,
    /// Percent of the control mean.
    pub effect: f64,
    /// 95% interval bounds, percent of the control mean.
    pub lower: f64,
    pub upper: f64,
    pub significant: bool,
}

/// Welch's 95% interval of `treatment` − `control`, relative to the control mean.
pub fn welch(metric: &str, treatment: &str, control: Moments, treated: Moments) -> Row {
    let (control_mean, treated_mean) = (control.mean(), treated.mean());
    let (control_n, treated_n) = (control.count() as f64, treated.count() as f64);
    let diff = treated_mean - control_mean;
    let vc = control.var() / control_n;
    let vt = treated.var() / treated_n;
    let se = (vc + vt).sqrt();
    let dof = (vc + vt).powi(2) / (vc.powi(2) / (control_n - 1.0) + vt.powi(2) / (treated_n - 1.0));
    let half = t_quantile(0.975, dof) * se;
    let lower = (diff - half) / control_mean * 100.0;
    let upper = (diff + half) / control_mean * 100.0;
    Row {
        treatment: treatment.to_string(),
        metric: metric.to_string(),
        control_mean,
        treatment_mean: treated_mean,
        effect: diff / control_mean * 100.0,
        lower,
        upper,
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

    /// Users per arm and the SRM verdict, one paragraph.
    pub fn summary(&self) -> String {
        let k = self.users.len();
        let per_arm: Vec<String> = self
            .users
            .iter()
            .enumerate()
            .map(|(a, n)| format!("{} {n}", botify::experiments::arm_label(a)))
            .collect();
        let verdict = if self.mismatch() {
            format!(
                "SAMPLE RATIO MISMATCH (p < {SRM_ALPHA}): users are not split as configured, so \
                 this table cannot be trusted; look for lost logs in one arm, a config change \
                 mid-experiment, or an assignment bug"
            )
        } else {
            "split as configured".to_string()
        };
        format!(
            "users per arm: {} (expected {:.1}% each); SRM chi2 = {:.2}, p = {:.3e}: {verdict}",
            per_arm.join(", "),
            100.0 / k as f64,
            self.chi2,
            self.p_value
        )
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
pub fn table(experiment: &str, users: &[UserMetrics], arms: usize, control: u8) -> Result<AbTable> {
    let seen = users
        .iter()
        .filter(|u| u.arm != NO_ARM)
        .map(|u| u.arm as usize + 1)
        .max()
        .unwrap_or(0);
    let k = arms.max(seen);
    let mut values: Vec<[Vec<f64>; 5]> = (0..k).map(|_| Default::default()).collect();
    for u in users.iter().filter(|u| u.arm != NO_ARM) {
        for (m, v) in u.values.iter().enumerate() {
            values[u.arm as usize][m].push(*v);
        }
    }
    let counts: Vec<u64> = values.iter().map(|v| v[0].len() as u64).collect();
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
            metrics: std::array::from_fn(|m| Moments::of(&values[a][m])),
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

impl AbTable {
    /// Rows for the terminal, CSV and Markdown: percent columns formatted,
    /// significant gains (by the metric's good direction) green, losses red.
    pub fn to_table(&self) -> Table {
        let mut t = Table::new(&[
            "treatment",
            "metric",
            "control_mean",
            "treatment_mean",
            "effect",
            "lower",
            "upper",
            "significant",
        ]);
        for row in &self.rows {
            let good = METRICS
                .iter()
                .position(|m| *m == row.metric)
                .is_none_or(|m| HIGHER_IS_BETTER[m]);
            let tone = match (row.significant, (row.effect > 0.0) == good) {
                (false, _) => Tone::Plain,
                (true, true) => Tone::Good,
                (true, false) => Tone::Bad,
            };
            t.push(
                vec![
                    row.treatment.clone(),
                    row.metric.clone(),
                    output::num(row.control_mean, 4),
                    output::num(row.treatment_mean, 4),
                    output::percent(row.effect),
                    output::percent(row.lower),
                    output::percent(row.upper),
                    row.significant.to_string(),
                ],
                tone,
            );
        }
        t
    }

    /// The notebook's JSON: an array of rows (non-finite numbers become null).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.rows).expect("rows serialize")
    }

    /// Users per arm and the SRM verdict, one paragraph.
    pub fn srm_summary(&self) -> String {
        self.srm.summary()
    }
}

/// Everything `ab` computes, kept for the report.
#[derive(Debug)]
pub struct Analysis {
    pub table: AbTable,
    /// Records of the experiment, sorted for sessionization.
    pub records: Vec<Record>,
    pub sessions: Vec<Session>,
    pub session_report: SessionReport,
    /// Events that do not carry the experiment (left out).
    pub events_without_arm: u64,
    /// The number of arms the assignment check used: configured, or inferred
    /// from the highest arm label in the logs.
    pub arms: usize,
    /// Users whose logged arm is not the mmh3 assignment with `arms` arms
    /// (a changed config or a wrong `--arms`).
    pub misassigned_users: u64,
}

/// Records (read with the experiment's arms) → sessions → user metrics →
/// table. `arms` is the configured number of arms; `None` infers it from the
/// highest arm label in the logs.
pub fn analyze(
    mut records: Vec<Record>,
    experiment: &str,
    arms: Option<usize>,
    control: u8,
) -> Result<Analysis> {
    let before = records.len();
    records.retain(|r| r.arm != NO_ARM);
    let events_without_arm = (before - records.len()) as u64;
    if records.is_empty() {
        bail!(
            "no event carries experiment {experiment:?} in its `experiments` field \
             ({events_without_arm} events read); check the name with a look at one log line"
        );
    }
    sessions::sort(&mut records);
    let (sessions, session_report) = sessions::sessionize(&records);
    let users = user_metrics(&sessions);
    let seen = users.iter().map(|u| u.arm as usize + 1).max().unwrap_or(1);
    let arms = arms.unwrap_or(seen);
    let misassigned_users = users
        .iter()
        .filter(|u| botify::experiments::assign(experiment, arms, u.user) != u.arm as usize)
        .count() as u64;
    let table = table(experiment, &users, arms, control)?;
    Ok(Analysis {
        table,
        records,
        sessions,
        session_report,
        events_without_arm,
        arms,
        misassigned_users,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1.0)
    }

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
        assert!(close(row.effect, 20.0, 1e-12));
        assert!(close(row.lower, (2.0 - half) * 10.0, 1e-12));
        assert!(close(row.upper, (2.0 + half) * 10.0, 1e-12));
        assert!(
            !row.significant,
            "interval {}..{} spans 0",
            row.lower, row.upper
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

    fn user(user: u64, arm: u8, time: f64) -> UserMetrics {
        UserMetrics {
            user,
            arm,
            values: [time, 1.0, 1.0, 1.0, time],
        }
    }

    #[test]
    fn one_user_arms_give_null_bounds_not_errors() {
        let users = vec![user(1, 0, 1.0), user(2, 1, 2.0)];
        let t = table("AB", &users, 2, 0).unwrap();
        assert!(t.rows[0].lower.is_nan() && !t.rows[0].significant);
        assert_eq!(t.rows[0].effect, 100.0);
        let json: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
        assert!(json[0]["lower"].is_null() && json[0]["upper"].is_null());
        assert_eq!(t.to_table().rows[0].0[5], "n/a");
    }

    #[test]
    fn table_names_missing_control_and_colors_by_direction() {
        let users = vec![user(1, 1, 1.0), user(2, 1, 2.0)];
        let err = table("AB", &users, 2, 0).unwrap_err().to_string();
        assert!(
            err.contains("control arm C has no users") && err.contains("T1"),
            "{err}"
        );

        let mut users: Vec<UserMetrics> =
            (0..50).map(|i| user(i, 0, 1.0 + (i % 5) as f64)).collect();
        users.extend((50..100).map(|i| user(i, 1, 3.0 + (i % 5) as f64)));
        let mut t = table("AB", &users, 2, 0).unwrap();
        assert_eq!(t.rows.len(), 5);
        assert!(t.rows[0].significant && t.rows[0].effect > 0.0);
        assert_eq!(t.to_table().rows[0].1, Tone::Good);
        // A significant latency increase is a loss.
        t.rows[2] = Row {
            metric: "mean_request_latency".into(),
            significant: true,
            effect: 5.0,
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

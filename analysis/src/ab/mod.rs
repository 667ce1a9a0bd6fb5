//! A/B tables exactly as the analysts' pandas/scipy notebook computes them
//! (docs/analysis.md#user-metrics), plus a sample-ratio-mismatch check.
//!
//! [`analyze`] is the flow: records (carrying their arm) → sessions →
//! per-user metrics ([`notebook`]) → the Welch table and SRM check. The
//! table's terminal, CSV, Markdown and JSON forms are in `render.rs`.
//!
//! [`per_day`] runs the same analysis on each `day-<n>` log folder
//! (`ab --per-day`), for learning curves. [`extended`] is the analysis
//! beyond the notebook: the metric catalogue of [`metrics`] (multi-day,
//! ratio and guardrail metrics), Welch's comparison, the delta method and
//! relative lifts ([`estimate`]), CUPED ([`cuped`]) with the pre-period of
//! [`periods`], corrections ([`correction`]), daily looks ([`looks`]) over a
//! planned horizon ([`spending`]) or open-ended ([`sequential`]), and power
//! ([`power`]). [`breakdown`] gathers what goes past one number per
//! metric: [`segments`], the effect over time ([`trend`]), [`quantiles`]
//! of session time, and [`exposure`] as the denominator, the first two on
//! the covariance of [`clustered`] means.

pub mod breakdown;
pub mod clustered;
pub mod correction;
pub mod cuped;
pub mod estimate;
pub mod exposure;
pub mod extended;
pub mod group_sums;
pub mod looks;
pub mod metrics;
pub mod notebook;
pub mod per_day;
pub mod periods;
pub mod power;
pub mod quantiles;
mod render;
pub mod segments;
pub mod sequential;
pub mod spending;
pub mod stats_file;
pub mod sums;
pub mod trend;

use anyhow::{bail, Result};

pub use estimate::t_quantile;
pub use notebook::{
    srm, table, table_from_sums, user_metrics, welch, AbTable, ArmSummary, Row, Srm, UserMetrics,
    METRICS, SRM_ALPHA,
};

use crate::logs::{Record, NO_ARM};
use crate::sessions::{self, Session, SessionReport};

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

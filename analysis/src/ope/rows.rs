//! The rows `analysis ope` returns: one per target, estimator and reward,
//! each estimate next to the logging policy's own value with the
//! diagnostics that say whether to trust it, and their table.

use serde::Serialize;

use super::estimators::{self, Estimate, Step, Trajectory};
use super::replay::{Arm, Replayed};
use crate::output::{num, percent_of_one, Column, Table, Tone};

/// One estimate of one target's value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpeRow {
    /// The target's arm spec as given.
    pub target: String,
    /// `ips`, `snips` or `dr`.
    pub estimator: &'static str,
    /// `first_pick` or `session`.
    pub reward: &'static str,
    /// The estimate, its interval and its weights' diagnostics (flattened
    /// into the row's JSON).
    #[serde(flatten)]
    pub value: Estimate,
    /// The cap (`--clip`).
    pub clip: f64,
    /// Mean share of the target's probability on tracks the logging arm
    /// could not serve; `None` when the logging arm is unknown.
    pub outside_support: Option<f64>,
    /// The logging policy's own on-policy value of this reward, on the
    /// same sessions.
    pub logged_value: f64,
}

/// An estimator over `T`s (requests or sessions), given the clip.
type Estimator<T> = fn(&[T], f64) -> Estimate;

/// The per-request estimators of `first_pick`, by name.
const FIRST_PICK: [(&str, Estimator<Step>); 3] = [
    ("ips", estimators::ips),
    ("snips", estimators::snips),
    ("dr", estimators::dr),
];

/// The per-decision estimators of `session`, by name.
const SESSION: [(&str, Estimator<Trajectory>); 3] = [
    ("ips", estimators::session_ips),
    ("snips", estimators::session_snips),
    ("dr", estimators::session_dr),
];

/// Target `t`'s rows: every estimator of both rewards, `logged` being the
/// logging policy's own `first_pick` and `session` values.
pub fn target_rows(
    target: &Arm,
    t: usize,
    kept: &[Replayed],
    clip: f64,
    logged: [f64; 2],
) -> Vec<OpeRow> {
    let first: Vec<Step> = kept.iter().map(|r| r.steps[t][0]).collect();
    let trajectories: Vec<Trajectory> = kept
        .iter()
        .map(|r| Trajectory {
            first: r.first,
            steps: r.steps[t].clone(),
        })
        .collect();
    let (first_outside, session_outside) = outside_support(kept, t);
    let first_pick = estimates(&FIRST_PICK, &first, clip);
    let session = estimates(&SESSION, &trajectories, clip);
    let rewards = [
        ("first_pick", first_pick, first_outside, logged[0]),
        ("session", session, session_outside, logged[1]),
    ];
    rewards
        .into_iter()
        .flat_map(|(reward, estimates, outside_support, logged_value)| {
            estimates.into_iter().map(move |(estimator, value)| OpeRow {
                target: target.name.clone(),
                estimator,
                reward,
                value,
                clip,
                outside_support,
                logged_value,
            })
        })
        .collect()
}

/// Each of `estimators`' estimate on `data`, by name.
fn estimates<T>(
    estimators: &[(&'static str, Estimator<T>)],
    data: &[T],
    clip: f64,
) -> Vec<(&'static str, Estimate)> {
    estimators
        .iter()
        .map(|&(name, estimate)| (name, estimate(data, clip)))
        .collect()
}

/// Target `t`'s mean mass outside the logging support: over first picks,
/// and over every decision; `None` when no session's logging arm is known.
fn outside_support(kept: &[Replayed], t: usize) -> (Option<f64>, Option<f64>) {
    let (mut first, mut all, mut sessions, mut decisions) = (0.0, 0.0, 0usize, 0usize);
    for r in kept {
        if let Some(outside) = &r.outside {
            first += outside[t][0];
            all += outside[t].iter().sum::<f64>();
            sessions += 1;
            decisions += outside[t].len();
        }
    }
    if sessions == 0 {
        return (None, None);
    }
    (Some(first / sessions as f64), Some(all / decisions as f64))
}

/// Why `row` cannot be trusted, as a warning; `None` when its diagnostics
/// pass: ESS of at least 100 and 1% of n, at most 5% of the target's mass
/// outside the logging support, a mean weight within 0.1 of 1, at most 5%
/// of the weights clipped.
pub fn distrust(row: &OpeRow) -> Option<String> {
    let mut reasons = Vec::new();
    let n = row.value.n as f64;
    if row.value.ess < 100.0 || row.value.ess < 0.01 * n {
        reasons.push(format!(
            "its effective sample size is {:.0} of {} (below 100 or 1%): a few sessions carry it",
            row.value.ess, row.value.n
        ));
    }
    if let Some(outside) = row.outside_support.filter(|&o| o > 0.05) {
        reasons.push(format!(
            "the target puts {} of its probability on tracks the logging arm never serves, whose rewards no weight can recover",
            percent_of_one(outside)
        ));
    }
    if (row.value.mean_weight - 1.0).abs() > 0.1 {
        reasons.push(format!(
            "its weights average {:.2} where right propensities within the logging support average 1: clipping removed mass, or the target leaves the support",
            row.value.mean_weight
        ));
    }
    if row.value.clipped > 0.05 {
        reasons.push(format!(
            "{} of the weights were clipped at {}: the estimate is biased towards the logging policy",
            percent_of_one(row.value.clipped),
            row.clip
        ));
    }
    (!reasons.is_empty()).then(|| {
        format!(
            "{} {} {}: this estimate cannot be trusted because {}",
            row.target,
            row.reward,
            row.estimator,
            reasons.join("; and ")
        )
    })
}

/// The rows as a table: each estimate with its interval next to the
/// logging policy's own value, and what tells whether to trust it.
pub fn to_table(rows: &[OpeRow]) -> Table {
    let columns: [Column<OpeRow>; 12] = [
        ("target", |r| r.target.clone()),
        ("reward", |r| r.reward.to_string()),
        ("estimator", |r| r.estimator.to_string()),
        ("estimate", |r| num(r.value.estimate, 4)),
        ("95% interval", |r| interval_cell(&r.value)),
        ("logged", |r| num(r.logged_value, 4)),
        ("ess", |r| num(r.value.ess, 0)),
        ("max w", |r| num(r.value.max_weight, 2)),
        ("mean w", |r| num(r.value.mean_weight, 2)),
        ("clipped", |r| percent_of_one(r.value.clipped)),
        ("outside", |r| {
            r.outside_support.map_or("n/a".to_string(), percent_of_one)
        }),
        ("n", |r| r.value.n.to_string()),
    ];
    Table::of(&columns, rows, |r| {
        if r.value.lower > r.logged_value {
            Tone::Good
        } else if r.value.upper < r.logged_value {
            Tone::Bad
        } else {
            Tone::Plain
        }
    })
}

/// An estimate's 95% interval as a cell: `[lower, upper]`.
pub fn interval_cell(e: &Estimate) -> String {
    format!("[{}, {}]", num(e.lower, 4), num(e.upper, 4))
}

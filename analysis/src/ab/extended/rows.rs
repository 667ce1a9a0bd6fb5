//! What the extended analysis is asked and what it answers: its options,
//! and the rows, looks and CUPED fits of a [`MetricsAnalysis`] that
//! `render.rs` prints.

use serde::Serialize;

use crate::ab::breakdown::{Asked, Breakdown};
use crate::ab::correction::Correction;
use crate::ab::cuped::CupedFit;
use crate::ab::estimate::EffectEstimate;
use crate::ab::looks::Design;
use crate::ab::metrics::{self, Metric};
use crate::ab::Srm;

/// What to compute.
#[derive(Debug, Clone)]
pub struct Options {
    pub metrics: Vec<&'static Metric>,
    pub correction: Correction,
    /// Level of every test and interval (0.05: 95% intervals).
    pub alpha: f64,
    /// First day of the experiment; earlier days are the pre-period.
    pub start: Option<u32>,
    /// How daily looks are tested; None: no daily looks.
    pub sequential: Option<Design>,
    /// Adjust with the pre-period when there is one (CUPED); off to measure
    /// what the adjustment buys.
    pub cuped: bool,
    /// Segments, trend, quantiles, exposure (`breakdown.rs`).
    pub breakdown: Asked,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            metrics: metrics::CATALOGUE.iter().collect(),
            correction: Correction::Holm,
            alpha: 0.05,
            start: None,
            sequential: None,
            cuped: true,
            breakdown: Asked::default(),
        }
    }
}

/// One treatment against the control on one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricRow {
    pub treatment: String,
    pub metric: String,
    /// `success` or `guardrail`.
    pub role: &'static str,
    pub control_users: u64,
    pub treatment_users: u64,
    /// Raw arm means (ratio metrics: the arm's ratio of sums); effect and
    /// 95% bounds of the difference, percent of the control mean
    /// (CUPED-adjusted when a pre-period is given).
    #[serde(flatten)]
    pub estimate: EffectEstimate,
    /// Relative lift interval, percent (delta method on the ratio of means).
    pub lift_lower: f64,
    pub lift_upper: f64,
    pub p_value: f64,
    /// After the correction, within the row's family (success or guardrail).
    pub p_adjusted: f64,
    pub significant: bool,
    /// CUPED's share of variance removed (None without a pre-period).
    pub variance_reduction: Option<f64>,
    /// Always-valid bounds at the last look, percent (with `--sequential`).
    pub sequential_lower: Option<f64>,
    pub sequential_upper: Option<f64>,
}

#[cfg(test)]
impl MetricRow {
    /// A significant row of treatment T1, 10 users per arm, its bounds one
    /// point either side of `effect`: what the unit tests start from.
    pub(crate) fn example(metric: &str, role: &'static str, effect: f64) -> MetricRow {
        MetricRow {
            treatment: "T1".into(),
            metric: metric.into(),
            role,
            control_users: 10,
            treatment_users: 10,
            estimate: EffectEstimate {
                control_mean: 2.0,
                treatment_mean: 2.5,
                effect,
                lower: effect - 1.0,
                upper: effect + 1.0,
            },
            lift_lower: effect - 1.5,
            lift_upper: effect + 1.5,
            p_value: 0.001,
            p_adjusted: 0.002,
            significant: true,
            variance_reduction: Some(0.25),
            sequential_lower: None,
            sequential_upper: None,
        }
    }
}

/// One daily look of the sequential test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Look {
    pub day: String,
    pub treatment: String,
    pub metric: String,
    /// The arm means; effect and running always-valid bounds, percent of
    /// the look's control mean.
    #[serde(flatten)]
    pub estimate: EffectEstimate,
    /// Always-valid p-value (the mixture design).
    pub p_value: Option<f64>,
    /// The level this look's fixed p-value is held to (the spending design):
    /// significant once some look's fixed p falls below its level.
    pub nominal_alpha: Option<f64>,
    pub significant: bool,
    /// The fixed-horizon (Welch) p-value of this look alone: what peeking
    /// without a sequential test would read.
    pub fixed_p_value: f64,
}

/// CUPED's fit of one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CupedRow {
    pub metric: String,
    pub theta: f64,
    pub users: u64,
    pub users_with_pre: u64,
    pub variance_reduction: f64,
    /// √(1 − reduction): the interval width relative to no adjustment.
    pub width_ratio: f64,
}

impl CupedRow {
    pub(super) fn new(metric: &Metric, fit: CupedFit) -> CupedRow {
        CupedRow {
            metric: metric.name.to_string(),
            theta: fit.theta,
            users: fit.users,
            users_with_pre: fit.with_pre,
            variance_reduction: fit.variance_reduction,
            width_ratio: (1.0 - fit.variance_reduction).sqrt(),
        }
    }
}

/// Everything the extended analysis found: the multi-metric comparison of
/// each treatment with the control, its daily looks and CUPED's fits.
#[derive(Debug, Clone, Serialize)]
pub struct MetricsAnalysis {
    pub rows: Vec<MetricRow>,
    pub looks: Vec<Look>,
    pub cuped: Vec<CupedRow>,
    #[serde(skip)]
    pub window: (String, String),
    #[serde(skip)]
    pub correction: Correction,
    #[serde(skip)]
    pub design: Option<Design>,
    #[serde(skip)]
    pub srm: Srm,
    #[serde(skip)]
    pub arm_labels: Vec<String>,
    #[serde(flatten)]
    pub breakdown: Breakdown,
}

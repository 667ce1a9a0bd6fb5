//! The fixed-horizon analysis of sufficient statistics: every metric's
//! rows from per-arm sums, whether `ab` reduced its logs to them or a
//! warehouse's SQL computed them (`ab --stats`), CUPED's fits and the
//! correction within each family.

use anyhow::{bail, Result};

use super::rows::{CupedRow, MetricRow, MetricsAnalysis, Options};
use crate::ab::breakdown::{self, Breakdown};
use crate::ab::correction::Correction;
use crate::ab::cuped::{self, Coefficients, CupedFit};
use crate::ab::estimate::{Comparison, EffectEstimate};
use crate::ab::metrics::{Metric, Role};
use crate::ab::srm;
use crate::ab::sums::{Linear, Sums};
use tally::Moments;

/// One metric's sufficient statistics in each arm (arms in index order):
/// the extended analysis's input for it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSums {
    pub metric: &'static Metric,
    pub arms: Vec<Sums>,
}

/// Everything the fixed-horizon analysis needs, whether `ab` reduced its
/// logs to it or a warehouse's SQL computed it (`ab --stats`).
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregates {
    /// Users per arm over the window, arm index order: at least the
    /// configured arms (the SRM's expected split), more when higher labels
    /// have users.
    pub users: Vec<u64>,
    pub metrics: Vec<MetricSums>,
    /// The sums carry a pre-period part: CUPED adjusts every metric.
    pub pre_period: bool,
    /// The window's first and last day, as labels.
    pub window: (String, String),
}

/// The fixed-horizon analysis of aggregates: every metric's rows (CUPED-
/// adjusted when they carry a pre-period), corrected within each family,
/// and the SRM check. Daily looks and the breakdowns (segments, trend,
/// quantiles) need per-user values, so there are none here ([`analyze`]
/// adds them from the logs).
pub fn from_aggregates(
    aggregates: &Aggregates,
    control: u8,
    options: &Options,
) -> Result<MetricsAnalysis> {
    let counts = &aggregates.users;
    if counts.get(control as usize).copied().unwrap_or(0) == 0 {
        bail!(
            "control arm {} has no users between days {} and {}; choose it with --control",
            botify::experiments::arm_label(control as usize),
            aggregates.window.0,
            aggregates.window.1
        );
    }
    let (mut rows, cuped) = fixed_horizon(aggregates, control);
    correct(&mut rows, options.correction, options.alpha);
    Ok(MetricsAnalysis {
        rows,
        looks: Vec::new(),
        cuped,
        window: aggregates.window.clone(),
        correction: options.correction,
        design: options.sequential,
        srm: srm(counts),
        arm_labels: (0..counts.len())
            .map(botify::experiments::arm_label)
            .collect(),
        // Aggregates carry no exposure: every metric over its active units.
        breakdown: Breakdown {
            denominators: breakdown::denominators(
                aggregates.metrics.iter().map(|m| m.metric),
                false,
            ),
            ..Breakdown::default()
        },
    })
}

/// Every metric over the whole window: one row per treatment (p-values not
/// yet corrected), and CUPED's fit per metric when there is a pre-period.
fn fixed_horizon(aggregates: &Aggregates, control: u8) -> (Vec<MetricRow>, Vec<CupedRow>) {
    let mut rows = Vec::new();
    let mut cuped = Vec::new();
    for sums in &aggregates.metrics {
        let metric = sums.metric;
        let Compared { pairs, fit, .. } = compare(metric, &sums.arms, control);
        if let Some(fit) = fit {
            cuped.push(CupedRow::new(metric, fit));
        }
        for (t, plain, used) in pairs {
            let (effect, lower, upper) = used.percent();
            rows.push(MetricRow {
                treatment: botify::experiments::arm_label(t as usize),
                metric: metric.name.to_string(),
                role: match metric.role {
                    Role::Success => "success",
                    Role::Guardrail => "guardrail",
                },
                control_users: plain.control_users,
                treatment_users: plain.treatment_users,
                estimate: EffectEstimate {
                    control_mean: plain.control_mean,
                    treatment_mean: plain.treatment_mean,
                    effect,
                    lower,
                    upper,
                },
                lift_lower: (used.lift - used.lift_half) * 100.0,
                lift_upper: (used.lift + used.lift_half) * 100.0,
                p_value: used.p_value,
                p_adjusted: f64::NAN,
                significant: false,
                variance_reduction: fit.map(|f| f.variance_reduction),
                sequential_lower: None,
                sequential_upper: None,
            });
        }
    }
    (rows, cuped)
}

/// One metric's comparisons of each treatment against the control.
pub(super) struct Compared {
    /// (treatment, unadjusted, CUPED-adjusted when the sums carry a
    /// pre-period, else the same twice).
    pub(super) pairs: Vec<(u8, Comparison, Comparison)>,
    pub(super) fit: Option<CupedFit>,
    pub(super) coefficients: Option<Coefficients>,
}

/// Each treatment with users against the control on one metric, plain and
/// CUPED-adjusted, from the arms' sums.
pub(super) fn compare(metric: &Metric, arms: &[Sums], control: u8) -> Compared {
    let linear: Vec<Linear> = arms.iter().map(|s| s.linear(metric.kind)).collect();
    let raw: Vec<Moments> = linear.iter().map(Linear::moments).collect();
    let adjusted = arms
        .first()
        .is_some_and(|a| a.pre.is_some())
        .then(|| cuped::fit(&linear));
    let used = adjusted.as_ref().map_or(&raw, |a| &a.moments);
    let c = control as usize;
    let pairs = (0..arms.len())
        .filter(|&t| t != c && arms[t].n > 0)
        .map(|t| {
            (
                t as u8,
                Comparison::new(raw[c], raw[t]),
                Comparison::new(used[c], used[t]),
            )
        })
        .collect();
    Compared {
        pairs,
        fit: adjusted.as_ref().map(|a| a.fit),
        coefficients: adjusted.and_then(|a| a.coefficients),
    }
}

/// Adjusts the p-values within each family (success metrics, guardrails)
/// and marks what stays under `alpha`.
pub(super) fn correct(rows: &mut [MetricRow], correction: Correction, alpha: f64) {
    for role in ["success", "guardrail"] {
        let family: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].role == role).collect();
        let p: Vec<f64> = family.iter().map(|&i| rows[i].p_value).collect();
        for (&i, q) in family.iter().zip(correction.adjust(&p)) {
            rows[i].p_adjusted = q;
            rows[i].significant = q < alpha;
        }
    }
}

//! Segments, the trend test, quantiles and the exposure design proven on
//! the same experiments as the metrics (docs/analysis.md#proof-on-simulated-ground-truth).
//!
//! Every played experiment is analysed once more for each method, as
//! `analysis ab` would with `--segment-by`, `--trend`, `--quantiles` and
//! `--exposure`:
//! - **segments** by listener (new or returning: a session in the
//!   pre-period), genre and daypart: an A/A false positive is any segment
//!   significant after Benjamini–Hochberg, or the heterogeneity test
//!   rejecting; coverage is of each segment's 95% interval, against the
//!   segment's effect pooled over the truth runs;
//! - **trend**: the slope test of the daily effects (A/A false positives),
//!   and its interval's coverage of the mean slope of the truth runs;
//! - **quantiles**: median and 90th percentile of session time, against the
//!   mid-distribution quantiles of every truth run's sessions pooled;
//! - **exposure**: `time` on the last day per exposed user (zeros for those
//!   who did not come back) against the same per active user of that day.
//!   The effect of interest is the treatment's on the listeners it was given
//!   to (intent to treat), pooled over the truth runs; the treatment changes
//!   who comes back, so the active users of a later day are a different
//!   population in each arm and their comparison is biased for it.

use analysis::ab::breakdown::Asked;
use analysis::ab::correction::Correction;
use analysis::ab::extended::{self, MetricRow, MetricsAnalysis};
use analysis::ab::metrics::{self, Metric};
use analysis::ab::periods::DayedSessions;
use analysis::ab::quantiles::{self, mid_quantile, QuantileRow};
use analysis::ab::segments::{Segmentation, Segments};
use analysis::ab::trend::TrendTest;
use analysis::ab::Analysis;
use analysis::logs::Days;
use anyhow::{Context as _, Result};
use serde::Serialize;

use super::Options;

/// The exposure proof's metric: a per-user total, so absent users count.
const EXPOSURE_METRIC: &str = "time";

/// What one experiment's breakdowns said.
#[derive(Debug, Clone)]
pub(super) struct Extra {
    /// One per segmentation, in [`Extra::segmentations`] order.
    segments: Vec<Segments>,
    trend: Option<TrendTest>,
    quantiles: Vec<QuantileRow>,
    /// Each arm's session times of the window (truth runs only).
    sessions: Option<[Vec<f64>; 2]>,
    exposed: MetricRow,
    exposed_srm: f64,
    active: MetricRow,
    active_srm: f64,
}

/// The segmentations proven: listener only when there is a pre-period.
pub(super) fn segmentations(options: &Options) -> Result<Vec<Segmentation>> {
    let flags = analysis::ab::breakdown::Flags {
        segment_by: Some(analysis::ab::segments::SegmentBy::Genre),
        catalog: options.world.join("tracks.jsonl"),
        ..Default::default()
    };
    let genre = flags.asked()?.segments.context("genre segmentation")?;
    let mut out = Vec::new();
    if options.pre_days > 0 {
        out.push(Segmentation::Listener);
    }
    out.extend([genre, Segmentation::Daypart]);
    Ok(out)
}

/// Analyses one experiment's sessions for every method.
pub(super) fn observe(
    proof: &Options,
    primary: &'static Metric,
    by: &[Segmentation],
    analysis: &Analysis,
    days: &Days,
    keep_sessions: bool,
) -> Result<Extra> {
    let start = proof.pre_days as u32 + 1;
    let base = extended::Options {
        metrics: vec![primary],
        correction: Correction::None,
        start: Some(start),
        cuped: false,
        ..extended::Options::default()
    };
    let run = |options: &extended::Options| -> Result<MetricsAnalysis> {
        extended::analyze(
            &analysis.records,
            &analysis.sessions,
            days,
            None,
            2,
            0,
            options,
        )
    };
    let mut segments = Vec::new();
    let mut trend = None;
    let mut quantile_rows = Vec::new();
    for (i, segmentation) in by.iter().enumerate() {
        let first = i == 0;
        let result = run(&extended::Options {
            breakdown: Asked {
                segments: Some(segmentation.clone()),
                trend: first,
                quantiles: first,
                exposure: false,
            },
            ..base.clone()
        })?;
        let b = result.breakdown;
        segments.push(b.segments.context("segments")?);
        if first {
            trend = b.trend.and_then(|t| t.tests.into_iter().next());
            quantile_rows = b.quantiles;
        }
    }
    let sessions = keep_sessions
        .then(|| -> Result<[Vec<f64>; 2]> {
            let dayed = DayedSessions::new(&analysis.sessions, &analysis.records, days)?;
            let window = metrics::Window {
                first: start,
                last: proof.days as u32,
            };
            let arms = quantiles::arm_sessions(&dayed, window, 2);
            Ok([arms[0].concat(), arms[1].concat()])
        })
        .transpose()?;
    let last_day = extended::Options {
        metrics: vec![metrics::find(EXPOSURE_METRIC).expect("in the catalogue")],
        start: Some(proof.days as u32),
        ..base.clone()
    };
    let exposed = run(&extended::Options {
        breakdown: Asked {
            exposure: true,
            ..Asked::default()
        },
        ..last_day.clone()
    })?;
    let active = run(&last_day)?;
    let row = |r: &MetricsAnalysis| r.rows.first().cloned().context("no exposure row");
    Ok(Extra {
        segments,
        trend,
        quantiles: quantile_rows,
        sessions,
        exposed: row(&exposed)?,
        exposed_srm: exposed.srm.p_value,
        active: row(&active)?,
        active_srm: active.srm.p_value,
    })
}

/// One segmentation's rates.
#[derive(Debug, Serialize)]
pub struct SegmentProof {
    pub by: String,
    /// Segments tested per experiment, on average.
    pub segments: f64,
    /// Some segment significant after Benjamini–Hochberg.
    pub aa_false_positive_any_segment: f64,
    pub aa_false_positive_heterogeneity: f64,
    /// Share of (experiment, segment) 95% intervals covering the segment's truth.
    pub coverage: f64,
    pub injected_heterogeneity_detected: f64,
}

#[derive(Debug, Serialize)]
pub struct TrendProof {
    pub aa_false_positive: f64,
    pub true_slope_percent_per_day: f64,
    pub coverage: f64,
    pub detected: f64,
}

#[derive(Debug, Serialize)]
pub struct QuantileProof {
    pub metric: String,
    pub aa_false_positive: f64,
    pub true_effect_percent: f64,
    pub coverage: f64,
    pub detected: f64,
}

#[derive(Debug, Serialize)]
pub struct ExposureProof {
    pub metric: String,
    pub day: u64,
    /// Intent to treat: the effect on every exposed listener, pooled truth.
    pub true_effect_percent: f64,
    pub exposure_aa_false_positive: f64,
    pub exposure_coverage: f64,
    pub exposure_mean_estimate_percent: f64,
    pub active_aa_false_positive: f64,
    pub active_coverage: f64,
    pub active_mean_estimate_percent: f64,
    /// The per-active-user design's mean estimate minus the truth, with the
    /// standard error of that mean over the injected experiments.
    pub active_bias_percent: f64,
    pub active_bias_standard_error: f64,
    pub exposure_bias_percent: f64,
    pub exposure_bias_standard_error: f64,
    /// Share of injected experiments whose SRM check rejects (p < 0.001).
    pub injected_srm_exposures: f64,
    pub injected_srm_active_users: f64,
}

/// Every method's rates.
#[derive(Debug, Serialize)]
pub struct BreakdownProof {
    pub metric: String,
    pub segments: Vec<SegmentProof>,
    pub trend: Option<TrendProof>,
    pub quantiles: Vec<QuantileProof>,
    pub exposure: ExposureProof,
}

fn share<T>(items: &[T], f: impl Fn(&T) -> bool) -> f64 {
    items.iter().filter(|i| f(i)).count() as f64 / items.len().max(1) as f64
}

/// Mean and standard error of the mean.
fn mean_and_error(values: &[f64]) -> (f64, f64) {
    let m = tally::Moments::of(values);
    (m.mean(), m.standard_error())
}

/// A pooled relative effect in percent: Σ mean × users per arm over runs.
fn pooled(pairs: impl Iterator<Item = (f64, u64, f64, u64)>) -> f64 {
    let (mut sc, mut nc, mut st, mut nt) = (0.0, 0.0, 0.0, 0.0);
    for (c, n_c, t, n_t) in pairs {
        sc += c * n_c as f64;
        nc += n_c as f64;
        st += t * n_t as f64;
        nt += n_t as f64;
    }
    ((st / nt) / (sc / nc) - 1.0) * 100.0
}

fn pooled_rows<'a>(rows: impl Iterator<Item = &'a MetricRow>) -> f64 {
    pooled(rows.map(|r| {
        (
            r.estimate.control_mean,
            r.control_users,
            r.estimate.treatment_mean,
            r.treatment_users,
        )
    }))
}

/// The rates of every method: truth from `truth`, false positives from
/// `aa`, coverage from `injected`.
pub(super) fn summarise(
    proof: &Options,
    metric: &str,
    truth: &[Extra],
    aa: &[Extra],
    injected: &[Extra],
) -> BreakdownProof {
    let segments = (0..truth.first().map_or(0, |e| e.segments.len()))
        .map(|k| {
            let true_effect = |label: &str| {
                pooled(truth.iter().flat_map(|e| {
                    e.segments[k]
                        .rows
                        .iter()
                        .filter(|r| r.segment == label)
                        .map(|r| {
                            (
                                r.estimate.control_mean,
                                r.control_users,
                                r.estimate.treatment_mean,
                                r.treatment_users,
                            )
                        })
                }))
            };
            let mut covered = (0usize, 0usize);
            for e in injected {
                for r in &e.segments[k].rows {
                    let t = true_effect(&r.segment);
                    if t.is_finite() {
                        covered.1 += 1;
                        covered.0 += usize::from(r.estimate.lower <= t && t <= r.estimate.upper);
                    }
                }
            }
            let differs = |e: &Extra| e.segments[k].heterogeneity.iter().any(|h| h.differs);
            SegmentProof {
                by: truth[0].segments[k].by.to_string(),
                segments: aa
                    .iter()
                    .chain(injected)
                    .map(|e| e.segments[k].rows.len() as f64)
                    .sum::<f64>()
                    / (aa.len() + injected.len()).max(1) as f64,
                aa_false_positive_any_segment: share(aa, |e| {
                    e.segments[k].rows.iter().any(|r| r.significant)
                }),
                aa_false_positive_heterogeneity: share(aa, differs),
                coverage: covered.0 as f64 / covered.1.max(1) as f64,
                injected_heterogeneity_detected: share(injected, differs),
            }
        })
        .collect();
    let slopes: Vec<&TrendTest> = truth.iter().filter_map(|e| e.trend.as_ref()).collect();
    let trend = (!slopes.is_empty()).then(|| {
        let true_slope = slopes.iter().map(|t| t.slope).sum::<f64>() / slopes.len() as f64;
        let true_percent =
            slopes.iter().map(|t| t.slope_percent).sum::<f64>() / slopes.len() as f64;
        let tests = |batch: &[Extra]| -> Vec<TrendTest> {
            batch.iter().filter_map(|e| e.trend.clone()).collect()
        };
        let (aa_tests, injected_tests) = (tests(aa), tests(injected));
        TrendProof {
            aa_false_positive: share(&aa_tests, |t| t.p_value < 0.05),
            true_slope_percent_per_day: true_percent,
            coverage: share(&injected_tests, |t| {
                t.slope_lower <= true_slope && true_slope <= t.slope_upper
            }),
            detected: share(&injected_tests, |t| t.p_value < 0.05),
        }
    });
    let quantiles = quantiles::QUANTILES
        .iter()
        .map(|&(name, p)| {
            let pooled_arm = |arm: usize| {
                let mut all: Vec<f64> = truth
                    .iter()
                    .filter_map(|e| e.sessions.as_ref())
                    .flat_map(|s| s[arm].iter().copied())
                    .collect();
                all.sort_by(f64::total_cmp);
                if all.is_empty() {
                    f64::NAN
                } else {
                    mid_quantile(&all, p)
                }
            };
            let truth = (pooled_arm(1) / pooled_arm(0) - 1.0) * 100.0;
            let rows = |batch: &[Extra]| -> Vec<QuantileRow> {
                batch
                    .iter()
                    .flat_map(|e| e.quantiles.iter().filter(|r| r.metric == name).cloned())
                    .collect()
            };
            let (aa_rows, injected_rows) = (rows(aa), rows(injected));
            QuantileProof {
                metric: name.to_string(),
                aa_false_positive: share(&aa_rows, |r| r.p_value < 0.05),
                true_effect_percent: truth,
                coverage: share(&injected_rows, |r| r.lower <= truth && truth <= r.upper),
                detected: share(&injected_rows, |r| r.p_value < 0.05),
            }
        })
        .collect();
    let truth_itt = pooled_rows(truth.iter().map(|e| &e.exposed));
    let covers = |r: &MetricRow| r.estimate.lower <= truth_itt && truth_itt <= r.estimate.upper;
    let effects = |f: fn(&Extra) -> &MetricRow| -> Vec<f64> {
        injected.iter().map(|e| f(e).estimate.effect).collect()
    };
    let (exposure_mean, exposure_error) = mean_and_error(&effects(|e| &e.exposed));
    let (active_mean, active_error) = mean_and_error(&effects(|e| &e.active));
    let exposure = ExposureProof {
        metric: EXPOSURE_METRIC.to_string(),
        day: proof.days,
        true_effect_percent: truth_itt,
        exposure_aa_false_positive: share(aa, |e| e.exposed.p_value < 0.05),
        exposure_coverage: share(injected, |e| covers(&e.exposed)),
        exposure_mean_estimate_percent: exposure_mean,
        active_aa_false_positive: share(aa, |e| e.active.p_value < 0.05),
        active_coverage: share(injected, |e| covers(&e.active)),
        active_mean_estimate_percent: active_mean,
        active_bias_percent: active_mean - truth_itt,
        active_bias_standard_error: active_error,
        exposure_bias_percent: exposure_mean - truth_itt,
        exposure_bias_standard_error: exposure_error,
        injected_srm_exposures: share(injected, |e| e.exposed_srm < analysis::ab::SRM_ALPHA),
        injected_srm_active_users: share(injected, |e| e.active_srm < analysis::ab::SRM_ALPHA),
    };
    BreakdownProof {
        metric: metric.to_string(),
        segments,
        trend,
        quantiles,
        exposure,
    }
}

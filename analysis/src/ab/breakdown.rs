//! What the extended analysis adds beyond one number per metric: segments
//! ([`segments`](super::segments)), the effect over time
//! ([`trend`](super::trend)), quantiles of session time
//! ([`quantiles`](super::quantiles)), and exposure as the denominator
//! ([`exposure`](super::exposure)). This file holds their flags, what the
//! analysis is asked ([`Asked`]), what it found ([`Breakdown`]) and its
//! tables; each method lives in its own module.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use super::correction::Correction;
use super::exposure::{self, Exposures};
use super::metrics::{Metric, Role, Window};
use super::periods::{DayedSessions, PrePeriod};
use super::quantiles::{self, QuantileRow};
use super::render::p_text as p;
use super::segments::{self, SegmentBy, Segmentation, Segments};
use super::trend::{self, DayEffect, Trend};
use crate::logs::{Days, Record};
use crate::output::{self, Column, Table, Tone};

/// `analysis ab`'s flags for segments, trend, quantiles and exposure.
#[derive(Debug, Clone, Args)]
pub struct Flags {
    /// Effects on the primary metric per segment: listener (new or returning:
    /// a session before the experiment, needs --start or --pre), genre (of the
    /// session's first track; reads --catalog) or daypart (UTC hour the session
    /// started). Benjamini–Hochberg across segments, and a test of whether the
    /// effect differs between them.
    #[arg(long, value_enum, value_name = "BY")]
    pub segment_by: Option<SegmentBy>,
    /// The catalog whose genres --segment-by genre reads.
    #[arg(long, value_name = "FILE", default_value = "data/world/tracks.jsonl")]
    pub catalog: PathBuf,
    /// The primary metric's effect per day and cumulative, with a trend test on
    /// the daily effects (novelty: fading; primacy: growing).
    #[arg(long)]
    pub trend: bool,
    /// Median and 90th percentile of session time, with intervals for sessions
    /// clustered in users.
    #[arg(long)]
    pub quantiles: bool,
    /// Exposure as the denominator: every user from their first assignment on
    /// any day read; per-user totals (time, sessions, active_days) count exposed
    /// users without a session as zeros; SRM counts exposures.
    #[arg(long)]
    pub exposure: bool,
}

impl Default for Flags {
    fn default() -> Flags {
        Flags {
            segment_by: None,
            catalog: PathBuf::from("data/world/tracks.jsonl"),
            trend: false,
            quantiles: false,
            exposure: false,
        }
    }
}

impl Flags {
    pub fn requested(&self) -> bool {
        self.segment_by.is_some() || self.trend || self.quantiles || self.exposure
    }

    /// What the analysis is asked, with the catalog read for genres.
    pub fn asked(&self) -> Result<Asked> {
        let segments = match self.segment_by {
            None => None,
            Some(SegmentBy::Listener) => Some(Segmentation::Listener),
            Some(SegmentBy::Daypart) => Some(Segmentation::Daypart),
            Some(SegmentBy::Genre) => {
                let catalog = botify::catalog::Catalog::load(&self.catalog).with_context(|| {
                    format!(
                        "--segment-by genre reads track genres from --catalog {} (the world's \
                         tracks.jsonl)",
                        self.catalog.display()
                    )
                })?;
                // Track ids are contiguous from 0.
                let genres: HashMap<u32, String> = (0..catalog.len() as u32)
                    .filter_map(|t| {
                        let genre = catalog.get(t)?.genre.clone()?;
                        Some((t, genre))
                    })
                    .collect();
                Some(Segmentation::Genre(Arc::new(genres)))
            }
        };
        Ok(Asked {
            segments,
            trend: self.trend,
            quantiles: self.quantiles,
            exposure: self.exposure,
        })
    }
}

/// What the extended analysis is asked beyond its table.
#[derive(Debug, Clone, Default)]
pub struct Asked {
    pub segments: Option<Segmentation>,
    pub trend: bool,
    pub quantiles: bool,
    pub exposure: bool,
}

/// What it found (flattened into the extended analysis's JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Breakdown {
    /// Whether per-user totals count every exposed user (`--exposure`).
    pub exposure: bool,
    /// What each metric's arm mean is taken over.
    pub denominators: BTreeMap<String, &'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segments: Option<Segments>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trend: Option<Trend>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub quantiles: Vec<QuantileRow>,
}

/// What the breakdowns read: the extended analysis's inputs.
pub struct Inputs<'a> {
    pub records: &'a [Record],
    pub dayed: &'a DayedSessions<'a>,
    pub days: &'a Days,
    pub window: Window,
    pub pre: Option<&'a PrePeriod>,
    pub exposures: Option<&'a Exposures>,
    pub metrics: &'a [&'static Metric],
    pub arms: usize,
    pub control: u8,
    pub correction: Correction,
    pub alpha: f64,
}

/// The metric segments and the trend break down: the first success metric,
/// else the first metric.
pub fn primary(metrics: &[&'static Metric]) -> Option<&'static Metric> {
    metrics
        .iter()
        .find(|m| m.role == Role::Success)
        .or(metrics.first())
        .copied()
}

/// Runs what `asked` asks for.
pub fn analyze(inputs: &Inputs<'_>, asked: &Asked) -> Result<Breakdown> {
    let primary = primary(inputs.metrics).context("no metric to break down")?;
    let segments = match &asked.segments {
        Some(by) => {
            let experiment = segments::Experiment {
                records: inputs.records,
                dayed: inputs.dayed,
                window: inputs.window,
                pre: inputs.pre,
                exposures: inputs.exposures,
                arms: inputs.arms,
                control: inputs.control,
                alpha: inputs.alpha,
            };
            Some(segments::analyze(&experiment, by, primary)?)
        }
        None => None,
    };
    let trend = asked.trend.then(|| {
        let experiment = trend::Experiment {
            dayed: inputs.dayed,
            days: inputs.days,
            window: inputs.window,
            exposures: inputs.exposures,
            arms: inputs.arms,
            control: inputs.control,
            alpha: inputs.alpha,
        };
        trend::analyze(&experiment, primary)
    });
    let quantiles = if asked.quantiles {
        quantiles::analyze(
            inputs.dayed,
            inputs.window,
            inputs.arms,
            inputs.control,
            inputs.correction,
            inputs.alpha,
        )
    } else {
        Vec::new()
    };
    Ok(Breakdown {
        exposure: asked.exposure,
        denominators: denominators(inputs.metrics.iter().copied(), asked.exposure),
        segments,
        trend,
        quantiles,
    })
}

/// Each metric's denominator, by name (exposed users only with
/// `--exposure`): what the table says every metric is averaged over.
pub fn denominators<'m>(
    metrics: impl Iterator<Item = &'m Metric>,
    exposure: bool,
) -> BTreeMap<String, &'static str> {
    metrics
        .map(|m| (m.name.to_string(), exposure::denominator(m, exposure)))
        .collect()
}

/// The cells segment and quantile rows share: two labels, the arms'
/// counts and values, the effect and bounds in percent, the raw and the
/// corrected p-value, and the verdict.
fn compared_cells(
    labels: [&str; 2],
    counts: [u64; 2],
    values: [f64; 2],
    effect: [f64; 3],
    p_values: [f64; 2],
    significant: bool,
) -> Vec<String> {
    let mut cells: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
    cells.extend(counts.iter().map(u64::to_string));
    cells.extend(values.iter().map(|&v| output::num(v, 4)));
    cells.extend(effect.iter().map(|&v| output::percent(v)));
    cells.extend(p_values.iter().map(|&v| p(v)));
    cells.push(significant.to_string());
    cells
}

fn significant_tone(significant: bool) -> Tone {
    if significant {
        Tone::Good
    } else {
        Tone::Plain
    }
}

impl Segments {
    /// One row per (treatment, segment): the effect, its BH-adjusted p and
    /// the segment's own SRM p always side by side.
    pub fn to_table(&self) -> Table {
        let mut t = Table::new(&[
            "treatment",
            "segment",
            "control_users",
            "treatment_users",
            "control_mean",
            "treatment_mean",
            "effect",
            "lower",
            "upper",
            "p_value",
            "p_bh",
            "significant",
            "srm_p",
        ]);
        for r in &self.rows {
            let tone = if r.srm_mismatch {
                Tone::Bad
            } else {
                significant_tone(r.significant)
            };
            let mut cells = compared_cells(
                [&r.treatment, &r.segment],
                [r.control_users, r.treatment_users],
                [r.estimate.control_mean, r.estimate.treatment_mean],
                [r.estimate.effect, r.estimate.lower, r.estimate.upper],
                [r.p_value, r.p_adjusted],
                r.significant,
            );
            cells.push(p(r.srm_p_value));
            t.push(cells, tone);
        }
        t
    }

    /// The heterogeneity tests and the untested segments, one line each.
    pub fn summary(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "{} by {}; significant: Benjamini–Hochberg-adjusted p (p_bh) < α across the \
             segments of a treatment; srm_p: each segment's own sample-ratio check",
            self.metric, self.by
        )];
        for h in &self.heterogeneity {
            lines.push(format!(
                "{}: does the effect differ between the {} segments? Q = {:.2} on {} dof, \
                 p = {}: {}",
                h.treatment,
                h.segments,
                h.q,
                h.dof,
                p(h.p_value),
                if h.differs { "yes" } else { "no evidence" }
            ));
        }
        if !self.too_small.is_empty() {
            lines.push(format!(
                "not tested (fewer than {} users in an arm): {}",
                segments::MIN_USERS,
                self.too_small.join(", ")
            ));
        }
        lines
    }
}

impl Trend {
    pub fn to_table(&self) -> Table {
        let columns: [Column<DayEffect>; 10] = [
            ("day", |d| d.day.clone()),
            ("treatment", |d| d.treatment.clone()),
            ("control_users", |d| d.control_users.to_string()),
            ("treatment_users", |d| d.treatment_users.to_string()),
            ("daily_effect", |d| output::percent(d.effect)),
            ("daily_lower", |d| output::percent(d.lower)),
            ("daily_upper", |d| output::percent(d.upper)),
            ("cumulative_effect", |d| {
                output::percent(d.cumulative_effect)
            }),
            ("cumulative_lower", |d| output::percent(d.cumulative_lower)),
            ("cumulative_upper", |d| output::percent(d.cumulative_upper)),
        ];
        Table::plain(&columns, &self.days)
    }

    /// One line per treatment: the slope, its interval and the verdict.
    pub fn summary(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .tests
            .iter()
            .map(|test| {
                format!(
                    "{} trend on {}: {:+.3}% of the control mean per day [{:+.3}%, {:+.3}%] over \
                     {} days, p = {}: {}",
                    test.treatment,
                    self.metric,
                    test.slope_percent,
                    test.slope_percent_lower,
                    test.slope_percent_upper,
                    test.days,
                    p(test.p_value),
                    match test.verdict {
                        "novelty" => "NOVELTY (the effect fades)",
                        "primacy" => "PRIMACY (the effect grows)",
                        _ => "steady (no significant trend)",
                    }
                )
            })
            .collect();
        if lines.is_empty() {
            lines.push(format!(
                "no trend test on {}: it needs 3 days with users in both arms",
                self.metric
            ));
        }
        lines
    }
}

/// The quantile rows as a table.
pub fn quantiles_table(rows: &[QuantileRow]) -> Table {
    let mut t = Table::new(&[
        "treatment",
        "metric",
        "control_sessions",
        "treatment_sessions",
        "control_value",
        "treatment_value",
        "effect",
        "lower",
        "upper",
        "p_value",
        "p_adjusted",
        "significant",
    ]);
    for r in rows {
        t.push(
            compared_cells(
                [&r.treatment, r.metric],
                [r.control_sessions, r.treatment_sessions],
                [r.control_value, r.treatment_value],
                [r.effect, r.lower, r.upper],
                [r.p_value, r.p_adjusted],
                r.significant,
            ),
            significant_tone(r.significant),
        );
    }
    t
}

impl Breakdown {
    /// The sections to print after the extended analysis's tables, each a
    /// title, a table and its lines.
    pub fn sections(&self) -> Vec<(String, Table, Vec<String>)> {
        let mut out = Vec::new();
        if let Some(s) = &self.segments {
            out.push((format!("Segments by {}", s.by), s.to_table(), s.summary()));
        }
        if let Some(t) = &self.trend {
            out.push((
                format!("Effect over time ({}): daily and cumulative", t.metric),
                t.to_table(),
                t.summary(),
            ));
        }
        if !self.quantiles.is_empty() {
            out.push((
                "Quantiles of session time".to_string(),
                quantiles_table(&self.quantiles),
                vec![
                    "intervals: delta method on the share of sessions below the quantile, \
                     users as clusters (Deng, Knoblich & Lu 2018)"
                        .to_string(),
                ],
            ));
        }
        out
    }
}

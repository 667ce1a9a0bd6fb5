//! The extended page's sections for segments, the effect over time (with
//! its chart: each treatment's daily and cumulative effect per day) and
//! quantiles of session time.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use plotters::prelude::SeriesLabelPosition;

use super::charts::{self, effect_range, Axes, DayEffect, EffectLine};
use super::html::{self, escape};
use crate::ab::breakdown::Breakdown;
use crate::ab::trend::Trend;
use crate::logs::parse_arm_label;

/// The chart of the daily and cumulative effects.
pub const TREND_CHART: &str = "trend.svg";

/// Draws the breakdown's charts into `dir`.
pub fn write_charts(dir: &Path, breakdown: &Breakdown) -> Result<()> {
    if let Some(trend) = breakdown.trend.as_ref().filter(|t| !t.days.is_empty()) {
        super::draw(dir, TREND_CHART, |path| trend_chart(path, trend))?;
    }
    Ok(())
}

/// Per treatment two lines over the days: that day's effect and the
/// cumulative one, each with its 95% interval.
fn trend_chart(path: &Path, trend: &Trend) -> Result<()> {
    let mut days: Vec<&str> = Vec::new();
    let mut treatments: Vec<&str> = Vec::new();
    for d in &trend.days {
        if !days.contains(&d.day.as_str()) {
            days.push(&d.day);
        }
        if !treatments.contains(&d.treatment.as_str()) {
            treatments.push(&d.treatment);
        }
    }
    let x = |day: &str| days.iter().position(|d| *d == day).unwrap_or(0) as f64;
    let mut lines = Vec::new();
    for treatment in &treatments {
        let arm = parse_arm_label(treatment).unwrap_or(1);
        let of = trend.days.iter().filter(|d| d.treatment == *treatment);
        lines.push(EffectLine {
            arm,
            label: format!("{treatment} that day"),
            points: of
                .clone()
                .map(|d| DayEffect {
                    x: x(&d.day),
                    effect: d.effect,
                    bounds: Some((d.lower, d.upper)),
                    significant: false,
                })
                .collect(),
        });
        lines.push(EffectLine {
            // Another colour for the cumulative line of the same arm.
            arm: arm + 3,
            label: format!("{treatment} cumulative"),
            points: of
                .map(|d| DayEffect {
                    x: x(&d.day),
                    effect: d.cumulative_effect,
                    bounds: Some((d.cumulative_lower, d.cumulative_upper)),
                    significant: false,
                })
                .collect(),
        });
    }
    let label = |v: &f64| charts::nth_label(&days, *v);
    let caption = format!(
        "{}: effect per day and cumulative, 95% (% of control)",
        trend.metric
    );
    let axes = Axes {
        caption: &caption,
        x: -0.5..days.len() as f64 - 0.5,
        y: effect_range(
            trend
                .days
                .iter()
                .flat_map(|d| [d.lower, d.upper, d.cumulative_lower, d.cumulative_upper]),
        ),
        x_desc: "day",
        y_desc: "effect, %",
        legend: SeriesLabelPosition::UpperLeft,
        x_format: Some((days.len().clamp(1, 12), &label)),
        markers: false,
    };
    charts::effects_per_day(path, &axes, lines)
}

/// The sections, after the extended page's own.
pub fn sections(page: &mut String, breakdown: &Breakdown) {
    for (title, table, lines) in breakdown.sections() {
        let _ = writeln!(page, "<h2>{}</h2>", escape(&title));
        let charted = breakdown.trend.as_ref().is_some_and(|t| !t.days.is_empty());
        if title.starts_with("Effect over time") && charted {
            html::image(page, TREND_CHART, "daily and cumulative effect per day");
        }
        html::table(page, &table);
        for line in lines {
            let _ = writeln!(page, "<p>{}</p>", escape(&line));
        }
    }
}

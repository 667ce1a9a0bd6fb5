//! The extended page's sections for segments, the effect over time (with
//! its chart: each treatment's daily and cumulative effect per day) and
//! quantiles of session time.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use super::charts::{self, DayEffect, EffectLine};
use super::html::{self, escape};
use crate::ab::breakdown::Breakdown;
use crate::ab::trend::{DayEffect as TrendDay, Trend};
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
    let days = charts::distinct(trend.days.iter().map(|d| d.day.as_str()));
    let treatments = charts::distinct(trend.days.iter().map(|d| d.treatment.as_str()));
    let x = |day: &str| days.iter().position(|d| *d == day).unwrap_or(0) as f64;
    // One line of a treatment: `point` picks (effect, lower, upper) of a day.
    let line = |treatment: &str, arm, label, point: fn(&TrendDay) -> (f64, f64, f64)| EffectLine {
        arm,
        label,
        points: trend
            .days
            .iter()
            .filter(|d| d.treatment == treatment)
            .map(|d| {
                let (effect, lower, upper) = point(d);
                DayEffect {
                    x: x(&d.day),
                    effect,
                    bounds: Some((lower, upper)),
                    significant: false,
                }
            })
            .collect(),
    };
    let mut lines = Vec::new();
    for treatment in &treatments {
        let arm = parse_arm_label(treatment).unwrap_or(1);
        let that_day = format!("{treatment} that day");
        lines.push(line(treatment, arm, that_day, |d| {
            (d.effect, d.lower, d.upper)
        }));
        // Another colour for the cumulative line of the same arm.
        let cumulative = format!("{treatment} cumulative");
        lines.push(line(treatment, arm + 3, cumulative, |d| {
            (d.cumulative_effect, d.cumulative_lower, d.cumulative_upper)
        }));
    }
    let caption = format!(
        "{}: effect per day and cumulative, 95% (% of control)",
        trend.metric
    );
    let values = trend
        .days
        .iter()
        .flat_map(|d| [d.lower, d.upper, d.cumulative_lower, d.cumulative_upper]);
    charts::effects_over_days(path, &caption, "day", &days, values, lines)
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

//! `ab --per-day --report DIR`: learning curves. An HTML page with the
//! per-day table and two SVG plots: each arm's mean `mean_time_per_session`
//! per day (one line per arm), and each treatment's effect on it per day with
//! its 95% Welch interval as error bars.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::prelude::SeriesLabelPosition;

use super::charts::{self, arm_lines, Axes, DayEffect, EffectLine, Line};
use super::html::{self, escape, head};
use crate::ab::per_day::{PerDay, METRIC};
use crate::ab::METRICS;

/// Files of the page, relative to its folder.
pub const INDEX: &str = "index.html";
pub const LEARNING_CURVE: &str = "learning_curve.svg";
pub const DAILY_EFFECTS: &str = "daily_effects.svg";

/// Writes the page and its plots into `dir`; returns the page's path.
pub fn write(dir: &Path, per_day: &PerDay) -> Result<PathBuf> {
    super::create_folder(dir)?;
    super::draw(dir, LEARNING_CURVE, |path| learning_curve(path, per_day))?;
    super::draw(dir, DAILY_EFFECTS, |path| daily_effects(path, per_day))?;
    super::write_page(dir, INDEX, &page(per_day))
}

/// Days across, half a day of margin either side, at most one label per
/// day (integer ticks only); legend upper left, no point markers.
fn day_axes<'a>(
    per_day: &PerDay,
    caption: &'a str,
    y: std::ops::Range<f64>,
    y_desc: &'a str,
) -> Axes<'a> {
    let first = per_day.days.first().map_or(1, |d| d.day) as f64;
    let last = per_day.days.last().map_or(1, |d| d.day) as f64;
    Axes {
        caption,
        x: first - 0.5..last + 0.5,
        y,
        x_desc: "day",
        y_desc,
        legend: SeriesLabelPosition::UpperLeft,
        x_format: Some((((last - first + 1.0) as usize).clamp(1, 12), &day_label)),
        markers: false,
    }
}

fn day_label(x: &f64) -> String {
    if (x - x.round()).abs() < 1e-6 {
        format!("{}", x.round() as i64)
    } else {
        String::new()
    }
}

/// `lo..hi` with a margin, never empty.
fn padded(values: impl Iterator<Item = f64>, include_zero: bool) -> std::ops::Range<f64> {
    let finite: Vec<f64> = values.filter(|v| v.is_finite()).collect();
    let start = if include_zero { 0.0 } else { f64::INFINITY };
    let end = if include_zero { 0.0 } else { f64::NEG_INFINITY };
    let lo = finite.iter().copied().fold(start, f64::min);
    let hi = finite.iter().copied().fold(end, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return -1.0..1.0;
    }
    let pad = ((hi - lo) * 0.1)
        .max(hi.abs().max(lo.abs()) * 0.02)
        .max(1e-3);
    lo - pad..hi + pad
}

/// Mean `mean_time_per_session` per arm per day: one line per arm.
fn learning_curve(path: &Path, per_day: &PerDay) -> Result<()> {
    let series: Vec<Line> = per_day
        .arms()
        .into_iter()
        .map(|(arm, label)| {
            let points = per_day
                .days
                .iter()
                .filter_map(|d| {
                    let summary = d.table.arms.iter().find(|a| a.arm == arm)?;
                    Some((d.day as f64, summary.metrics[METRIC].mean()))
                })
                .collect();
            Line::of(arm, &label, points)
        })
        .collect();
    let y = padded(
        series.iter().flat_map(|l| l.points.iter().map(|p| p.1)),
        false,
    );
    let caption = format!(
        "{}: {} per day, by arm (arm mean of the user-level metric)",
        per_day.experiment, METRICS[METRIC]
    );
    let axes = Axes {
        markers: true,
        ..day_axes(per_day, &caption, y, METRICS[METRIC])
    };
    arm_lines(path, &axes, series)
}

/// Each treatment's effect on `mean_time_per_session` per day, in percent of
/// that day's control mean, with its 95% interval as an error bar; filled
/// dots are significant. Treatments are spread a little around each day so
/// their bars do not overlap.
fn daily_effects(path: &Path, per_day: &PerDay) -> Result<()> {
    let rows: Vec<_> = per_day.rows();
    let lines: Vec<EffectLine> = per_day
        .arms()
        .into_iter()
        .filter(|(arm, _)| *arm != per_day.control)
        .map(|(arm, label)| EffectLine {
            arm,
            points: rows
                .iter()
                .filter(|r| r.arm == label)
                .filter_map(|r| {
                    Some(DayEffect {
                        x: r.day as f64,
                        effect: r.effect.filter(|e| e.is_finite())?,
                        bounds: r.lower.zip(r.upper),
                        significant: r.significant == Some(true),
                    })
                })
                .collect(),
            label,
        })
        .collect();
    let y = padded(
        rows.iter()
            .flat_map(|r| [r.effect, r.lower, r.upper])
            .flatten(),
        true,
    );
    let control = botify::experiments::arm_label(per_day.control as usize);
    let caption = format!(
        "{}: effect on {} vs control {control} per day (95% CI, % of control mean)",
        per_day.experiment, METRICS[METRIC]
    );
    let axes = day_axes(per_day, &caption, y, "effect, %");
    charts::effects_per_day(path, &axes, lines)
}

fn page(per_day: &PerDay) -> String {
    let name = escape(&per_day.experiment);
    let mut page = head(&format!("Learning curves: {}", per_day.experiment));
    let _ = writeln!(page, "<h1>Learning curves: experiment {name}</h1>");
    let control = botify::experiments::arm_label(per_day.control as usize);
    let _ = writeln!(
        page,
        "<p>Each day's logs (<code>day-&lt;n&gt;</code> folders) analysed on their own, as \
         <code>analysis ab</code> does: <code>{metric}</code> is the arm mean of the user-level \
         metric; effects are in percent of that day's control ({control}) mean, with Welch 95% \
         confidence intervals. Green: significantly longer sessions; red: significantly \
         shorter.</p>",
        metric = METRICS[METRIC],
        control = escape(&control)
    );
    for (file, alt) in [
        (
            LEARNING_CURVE,
            "mean time per session per day, one line per arm",
        ),
        (DAILY_EFFECTS, "effect per day with 95% CI, per treatment"),
    ] {
        html::image(&mut page, file, alt);
    }
    html::table(&mut page, &per_day.to_table());
    if let Some(retention) = &per_day.retention {
        page.push_str("<h2>Over the whole run: do listeners come back?</h2>\n");
        let _ = writeln!(
            page,
            "<p>Every day's logs together: <code>return_d1</code> (active the day after the \
             first active day), <code>active_days</code> and <code>time_per_day</code> per \
             user, each treatment against {control} (Welch 95% intervals, Holm-adjusted).</p>",
            control = escape(&control)
        );
        html::table(&mut page, &retention.to_table("success"));
    }
    page.push_str("<h2>Sample ratio per day</h2>\n");
    for (day, line) in per_day.days.iter().zip(per_day.srm_lines()) {
        let class = html::srm_class(&day.table.srm);
        let _ = writeln!(page, "<p{class}>{}</p>", escape(&line));
    }
    page.push_str("<h2>Data quality per day</h2>\n<pre>");
    for day in &per_day.days {
        let folders: Vec<String> = day
            .folders
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        let _ = writeln!(
            page,
            "day {} ({}): {}; {}; events without experiment {}: {}; users whose logged arm \
             differs from the mmh3 assignment: {}",
            day.day,
            escape(&folders.join(", ")),
            escape(&day.read.to_string()),
            escape(&day.session_report.to_string()),
            name,
            day.events_without_arm,
            day.misassigned_users
        );
    }
    page.push_str("</pre>\n</body></html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ab::per_day::Day;
    use crate::ab::{table, UserMetrics};
    use crate::logs::ReadReport;
    use crate::sessions::SessionReport;

    fn day(day: u32, treated: f64) -> Day {
        let mut users: Vec<UserMetrics> = (0..30)
            .map(|i| UserMetrics {
                user: i,
                arm: (i % 2) as u8,
                values: [0.0; 5],
            })
            .collect();
        for u in &mut users {
            let base = if u.arm == 1 { treated } else { 2.0 };
            u.values[METRIC] = base + (u.user % 3) as f64 * 0.1;
        }
        Day {
            day,
            folders: vec![PathBuf::from(format!("log/day-{day}"))],
            read: ReadReport::default(),
            table: table("AB", &users, 2, 0).unwrap(),
            session_report: SessionReport::default(),
            events_without_arm: 0,
            arms: 2,
            misassigned_users: 0,
        }
    }

    #[test]
    fn writes_learning_curves() {
        let per_day = PerDay {
            experiment: "AB".into(),
            control: 0,
            days: vec![day(1, 1.5), day(2, 2.0), day(3, 2.6)],
            retention: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let page = write(dir.path(), &per_day).unwrap();
        let html = std::fs::read_to_string(page).unwrap();
        assert!(html.contains("Learning curves: experiment AB"), "{html}");
        assert!(html.contains("class=\"good\"") && html.contains("class=\"bad\""));
        assert!(html.contains("day 3: users per arm: C 15, T1 15"), "{html}");
        for svg in [LEARNING_CURVE, DAILY_EFFECTS] {
            assert!(html.contains(&format!("src=\"{svg}\"")));
            let text = std::fs::read_to_string(dir.path().join(svg)).unwrap();
            assert!(text.starts_with("<svg") && text.contains("</svg>"), "{svg}");
            assert!(
                text.lines().any(|l| l.trim() == "T1"),
                "{svg}: legend names the arm"
            );
        }
        let curve = std::fs::read_to_string(dir.path().join(LEARNING_CURVE)).unwrap();
        assert!(
            curve.lines().any(|l| l.trim() == "C"),
            "control has its line"
        );
    }

    #[test]
    fn control_only_days_still_get_a_page() {
        let mut d = day(1, 1.0);
        d.table.arms.truncate(1);
        d.table.rows.clear();
        let per_day = PerDay {
            experiment: "AB".into(),
            control: 0,
            days: vec![d],
            retention: None,
        };
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &per_day).unwrap();
    }
}

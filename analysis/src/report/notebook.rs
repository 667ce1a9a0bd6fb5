//! `ab --report DIR`: an HTML page with the table and three SVG charts —
//! effect per metric with its 95% interval per treatment, session-length
//! distribution per arm, and cumulative listen time per arm over the
//! experiment.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::prelude::SeriesLabelPosition;

use super::charts::{self, arm_lines, Axes, EffectBar, Line};
use super::html::{self, escape};
use crate::ab::{Analysis, METRICS};
use crate::logs::ReadReport;
use crate::output;

/// Files of the report, relative to its folder.
pub const INDEX: &str = "index.html";
pub const EFFECTS: &str = "effects.svg";
pub const SESSION_LENGTH: &str = "session_length.svg";
pub const CUMULATIVE_TIME: &str = "cumulative_time.svg";

/// Writes the page and its charts into `dir`; returns the page's path.
pub fn write(dir: &Path, analysis: &Analysis, read: &ReadReport) -> Result<PathBuf> {
    super::create_folder(dir)?;
    super::draw(dir, EFFECTS, |path| effects(path, analysis))?;
    // A table from aggregates (`ab --stats`) has no sessions to chart.
    if !analysis.sessions.is_empty() {
        super::draw(dir, SESSION_LENGTH, |path| session_length(path, analysis))?;
        super::draw(dir, CUMULATIVE_TIME, |path| cumulative_time(path, analysis))?;
    }
    super::write_page(dir, INDEX, &page(analysis, read))
}

/// Effect and interval per (treatment, metric), one row each; green/red when
/// significant in the good/bad direction.
fn effects(path: &Path, analysis: &Analysis) -> Result<()> {
    let table = analysis.table.to_table();
    let bars: Vec<EffectBar> = analysis
        .table
        .rows
        .iter()
        .zip(&table.rows)
        .map(|(r, (_, tone))| EffectBar {
            label: format!("{} {}", r.treatment, r.metric),
            lower: r.estimate.lower,
            effect: r.estimate.effect,
            upper: r.estimate.upper,
            tone: *tone,
        })
        .collect();
    let caption = format!(
        "{}: effect vs control {} (95% CI, % of control mean)",
        analysis.table.experiment,
        control_label(analysis)
    );
    charts::effect_bars(path, &caption, &bars)
}

fn control_label(analysis: &Analysis) -> String {
    botify::experiments::arm_label(analysis.table.control as usize)
}

/// Share of sessions per session length (listen time), one line per arm.
fn session_length(path: &Path, analysis: &Analysis) -> Result<()> {
    const WIDTH: f64 = 0.5;
    let mut times: Vec<f64> = analysis.sessions.iter().map(|s| s.time).collect();
    times.sort_unstable_by(f64::total_cmp);
    // The 99th percentile bounds the axis: one marathon session would flatten the plot.
    let cap = times
        .get(times.len() * 99 / 100)
        .copied()
        .unwrap_or(1.0)
        .max(WIDTH);
    let bins = (cap / WIDTH).ceil() as usize + 1;
    let mut series = Vec::new();
    let mut top = 0.0f64;
    for summary in &analysis.table.arms {
        let mut counts = vec![0u64; bins];
        let mut total = 0u64;
        for s in analysis.sessions.iter().filter(|s| s.arm == summary.arm) {
            counts[((s.time / WIDTH) as usize).min(bins - 1)] += 1;
            total += 1;
        }
        let points: Vec<(f64, f64)> = counts
            .iter()
            .enumerate()
            .map(|(b, &c)| {
                (
                    (b as f64 + 0.5) * WIDTH,
                    100.0 * c as f64 / total.max(1) as f64,
                )
            })
            .collect();
        top = points.iter().map(|p| p.1).fold(top, f64::max);
        series.push(Line::of(summary.arm, &summary.label, points));
    }
    let x_desc = format!(
        "session listen time (sum of listened fractions; last bin ≥ {:.1})",
        (bins - 1) as f64 * WIDTH
    );
    let axes = Axes {
        caption: "Session length distribution per arm",
        x: 0.0..bins as f64 * WIDTH,
        y: 0.0..top * 1.1 + 0.1,
        x_desc: &x_desc,
        y_desc: "% of the arm's sessions",
        legend: SeriesLabelPosition::MiddleRight,
        x_format: None,
        markers: false,
    };
    arm_lines(path, &axes, series)
}

/// Cumulative listen time per user of each arm (so unequal arms compare), by
/// session end, over hours since the experiment's first event.
fn cumulative_time(path: &Path, analysis: &Analysis) -> Result<()> {
    const POINTS: usize = 300;
    let start = analysis
        .records
        .iter()
        .map(|r| r.timestamp)
        .min()
        .unwrap_or(0);
    let end = analysis
        .sessions
        .iter()
        .map(|s| s.end)
        .max()
        .unwrap_or(start)
        .max(start + 1);
    let hours = |ms: u64| (ms - start) as f64 / 3_600_000.0;
    let users = &analysis.table.srm.users;
    let mut series = Vec::new();
    let mut top = 0.0f64;
    for summary in &analysis.table.arms {
        let mut ends: Vec<(u64, f64)> = analysis
            .sessions
            .iter()
            .filter(|s| s.arm == summary.arm)
            .map(|s| (s.end, s.time))
            .collect();
        ends.sort_unstable_by_key(|e| e.0);
        let per_user = 1.0 / users[summary.arm as usize].max(1) as f64;
        let step = ends.len().div_ceil(POINTS).max(1);
        let mut total = 0.0;
        let mut points = vec![(0.0, 0.0)];
        for (i, (ts, time)) in ends.iter().enumerate() {
            total += time * per_user;
            if (i + 1) % step == 0 || i + 1 == ends.len() {
                points.push((hours(*ts), total));
            }
        }
        top = top.max(total);
        series.push(Line::of(summary.arm, &summary.label, points));
    }
    let axes = Axes {
        caption: "Cumulative listen time per user, by arm",
        x: 0.0..hours(end),
        y: 0.0..top * 1.05 + 1e-9,
        x_desc: "hours since the first event",
        y_desc: "listen time per user",
        legend: SeriesLabelPosition::UpperLeft,
        x_format: None,
        markers: false,
    };
    arm_lines(path, &axes, series)
}

fn page(analysis: &Analysis, read: &ReadReport) -> String {
    let t = &analysis.table;
    let mut page = html::ab_page(&t.experiment, &t.srm);
    let _ = writeln!(
        page,
        "<p>Effects are in percent of the control ({}) mean; intervals are Welch 95% confidence \
         intervals. Green: significant improvement; red: significant degradation (for latency, lower is better).</p>",
        escape(&control_label(analysis))
    );
    html::table(&mut page, &t.to_table());
    page.push_str("<h2>Per-arm means</h2>\n<table>\n<tr><th>arm</th><th>users</th>");
    for m in METRICS {
        let _ = write!(page, "<th>{m}</th>");
    }
    page.push_str("</tr>\n");
    for arm in &t.arms {
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td>",
            escape(&arm.label),
            arm.metrics[0].count()
        );
        for m in &arm.metrics {
            let _ = write!(page, "<td>{}</td>", output::num(m.mean(), 4));
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</table>\n");
    html::image(&mut page, EFFECTS, "effect per metric with 95% CI");
    if !analysis.sessions.is_empty() {
        html::image(
            &mut page,
            SESSION_LENGTH,
            "session length distribution per arm",
        );
        html::image(&mut page, CUMULATIVE_TIME, "cumulative listen time per arm");
    }
    html::data_quality(&mut page, analysis, read);
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ab;
    use crate::logs::Record;

    #[test]
    fn control_only_logs_still_get_a_report() {
        let records = vec![
            Record::new(1, 10, 5, 1.0, 0.001, Some(6), 0, false),
            Record::new(1, 20, 6, 0.5, 0.001, None, 0, true),
        ];
        let analysis = ab::analyze(records, "AB", None, 0).unwrap();
        assert!(analysis.table.rows.is_empty());
        let dir = tempfile::tempdir().unwrap();
        let page = write(dir.path(), &analysis, &ReadReport::default()).unwrap();
        assert!(std::fs::read_to_string(page)
            .unwrap()
            .contains("users per arm: C 1"));
    }

    #[test]
    fn writes_page_and_plots() {
        let mut records = Vec::new();
        let mut ts = 0;
        for user in 0..40u64 {
            let arm = (user % 2) as u8;
            for session in 0..3 {
                let n = 2 + (user + session) % 4;
                for i in 0..n {
                    ts += 60_000;
                    let last = i + 1 == n;
                    let time = if arm == 1 {
                        0.9
                    } else {
                        0.3 + 0.1 * (user % 3) as f64
                    };
                    records.push(Record::new(
                        user,
                        ts,
                        i as u32,
                        time,
                        0.001,
                        (!last).then_some(i as u32 + 1),
                        arm,
                        last,
                    ));
                }
            }
        }
        let analysis = ab::analyze(records, "AB", Some(2), 0).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let page = write(dir.path(), &analysis, &ReadReport::default()).unwrap();
        let html = std::fs::read_to_string(&page).unwrap();
        assert!(
            html.contains("experiment AB") && html.contains("class=\"good\""),
            "{html}"
        );
        for svg in [EFFECTS, SESSION_LENGTH, CUMULATIVE_TIME] {
            assert!(html.contains(&format!("src=\"{svg}\"")));
            let text = std::fs::read_to_string(dir.path().join(svg)).unwrap();
            assert!(text.starts_with("<svg") && text.contains("</svg>"), "{svg}");
        }
        let effects = std::fs::read_to_string(dir.path().join(EFFECTS)).unwrap();
        assert!(
            effects.contains("T1 time") && effects.contains("#1A933A"),
            "significant gain drawn green"
        );
    }
}

//! `ab --report DIR`: an HTML page with the table and three SVG plots —
//! effect per metric with its 95% interval per treatment, session-length
//! distribution per arm, and cumulative listen time per arm over the
//! experiment.
//!
//! Plots use plotters' SVG backend only: the bitmap backend pulls in font
//! rasterisation crates, and browsers render SVG text themselves.
//!
//! [`per_day`] is the `ab --per-day` page (learning curves) and
//! [`extended`] the extended analysis's page (guardrails, CUPED, daily
//! looks), drawn with the same helpers.

pub mod extended;
pub mod per_day;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use crate::ab::{Analysis, METRICS};
use crate::logs::ReadReport;
use crate::output::{self, Tone};

const GREEN: RGBColor = RGBColor(0x1a, 0x93, 0x3a);
const RED: RGBColor = RGBColor(0xc6, 0x28, 0x28);
const GREY: RGBColor = RGBColor(0x70, 0x70, 0x70);

/// Files of the report, relative to its folder.
pub const INDEX: &str = "index.html";
pub const EFFECTS: &str = "effects.svg";
pub const SESSION_LENGTH: &str = "session_length.svg";
pub const CUMULATIVE_TIME: &str = "cumulative_time.svg";

fn arm_color(arm: u8) -> RGBColor {
    const COLORS: [RGBColor; 6] = [
        RGBColor(0x1f, 0x77, 0xb4),
        RGBColor(0xff, 0x7f, 0x0e),
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0xd6, 0x27, 0x28),
        RGBColor(0x94, 0x67, 0xbd),
        RGBColor(0x8c, 0x56, 0x4b),
    ];
    COLORS[arm as usize % COLORS.len()]
}

/// Writes the page and its plots into `dir`; returns the page's path.
pub fn write(dir: &Path, analysis: &Analysis, read: &ReadReport) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "cannot create report folder {}: check permissions",
            dir.display()
        )
    })?;
    let plot = |name: &str, result: Result<()>| {
        result.with_context(|| format!("cannot draw {}", dir.join(name).display()))
    };
    plot(EFFECTS, effects(&dir.join(EFFECTS), analysis))?;
    plot(
        SESSION_LENGTH,
        session_length(&dir.join(SESSION_LENGTH), analysis),
    )?;
    plot(
        CUMULATIVE_TIME,
        cumulative_time(&dir.join(CUMULATIVE_TIME), analysis),
    )?;
    let page = dir.join(INDEX);
    let html = html(analysis, read);
    output::write_atomic(&page, |w| w.write_all(html.as_bytes()))?;
    Ok(page)
}

/// Effect and interval per (treatment, metric), one row each; green/red when
/// significant in the good/bad direction.
fn effects(path: &Path, analysis: &Analysis) -> Result<()> {
    let table = analysis.table.to_table();
    let rows = &analysis.table.rows;
    let finite: Vec<f64> = rows
        .iter()
        .flat_map(|r| [r.lower, r.upper, r.effect])
        .filter(|v| v.is_finite())
        .collect();
    let lo = finite.iter().copied().fold(0.0f64, f64::min);
    let hi = finite.iter().copied().fold(0.0f64, f64::max);
    let pad = ((hi - lo) * 0.1).max(0.5);
    let n = rows.len().max(1) as i32;
    let height = 80 + 34 * n as u32;
    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let labels: Vec<String> = rows
        .iter()
        .map(|r| format!("{} {}", r.treatment, r.metric))
        .collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{}: effect vs control {} (95% CI, % of control mean)",
                analysis.table.experiment,
                control_label(analysis)
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(230)
        .build_cartesian_2d(lo - pad..hi + pad, (0..n - 1).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc("effect, %")
        .y_labels(n as usize)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => labels
                .get((n - 1 - *i) as usize)
                .cloned()
                .unwrap_or_default(),
            SegmentValue::Last => String::new(),
        })
        .draw()?;
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(0.0, SegmentValue::Exact(0)), (0.0, SegmentValue::Last)],
        BLACK.stroke_width(1),
    )))?;
    for (i, (row, (_, tone))) in rows.iter().zip(&table.rows).enumerate() {
        if !(row.lower.is_finite() && row.upper.is_finite() && row.effect.is_finite()) {
            continue;
        }
        let y = SegmentValue::CenterOf(n - 1 - i as i32);
        let color = match tone {
            Tone::Good => GREEN,
            Tone::Bad => RED,
            Tone::Plain => GREY,
        };
        chart.draw_series([
            PathElement::new(
                vec![(row.lower, y.clone()), (row.upper, y.clone())],
                color.stroke_width(3),
            )
            .into_dyn(),
            Circle::new((row.effect, y), 5, color.filled()).into_dyn(),
        ])?;
    }
    root.present()?;
    Ok(())
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

/// Writes one tick label of an axis.
type TickLabel = dyn Fn(&f64) -> String;

/// Layout of a line chart with one line per arm.
struct Axes<'a> {
    caption: &'a str,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    x_desc: &'a str,
    y_desc: &'a str,
    legend: SeriesLabelPosition,
    /// At most this many x labels, each written by the function (default:
    /// plotters' numbers).
    x_format: Option<(usize, &'a TickLabel)>,
    /// Mark each point (for a few points per line, e.g. one per day).
    markers: bool,
}

/// One arm's line: its index (for the colour), label and points.
struct Line {
    arm: u8,
    label: String,
    points: Vec<(f64, f64)>,
}

impl Line {
    fn of(arm: u8, label: &str, points: Vec<(f64, f64)>) -> Line {
        Line {
            arm,
            label: label.to_string(),
            points,
        }
    }
}

/// Draws one line per arm, in the arm's colour, with a legend, as an SVG.
fn arm_lines(path: &Path, axes: &Axes<'_>, series: Vec<Line>) -> Result<()> {
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(axes.caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(axes.x.clone(), axes.y.clone())?;
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(axes.x_desc).y_desc(axes.y_desc);
    if let Some((labels, format)) = axes.x_format {
        mesh.x_labels(labels).x_label_formatter(format);
    }
    mesh.draw()?;
    let point_size = if axes.markers { 4 } else { 0 };
    for line in series {
        let color = arm_color(line.arm);
        chart
            .draw_series(
                LineSeries::new(line.points, color.stroke_width(2)).point_size(point_size),
            )?
            .label(line.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(axes.legend.clone())
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page's head and style, up to the opened body.
fn head(title: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title}</title>\n<style>\
         body{{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;font-size:14px}}td,th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}}\
         td:nth-child(-n+2),th:nth-child(-n+2){{text-align:left}}.good{{color:#1a933a;font-weight:bold}}\
         .bad{{color:#c62828;font-weight:bold}}.warn{{background:#fdecea;border:2px solid #c62828;padding:1em}}\
         pre{{background:#f6f6f6;padding:.6em;white-space:pre-wrap}}</style></head><body>\n",
        title = escape(title)
    )
}

/// An output table as HTML rows, toned rows classed `good`/`bad`.
fn html_table(page: &mut String, table: &output::Table) {
    page.push_str("<table>\n<tr>");
    for h in &table.headers {
        let _ = write!(page, "<th>{}</th>", escape(h));
    }
    page.push_str("</tr>\n");
    for (cells, tone) in &table.rows {
        let class = match tone {
            Tone::Good => " class=\"good\"",
            Tone::Bad => " class=\"bad\"",
            Tone::Plain => "",
        };
        let _ = write!(page, "<tr{class}>");
        for c in cells {
            let _ = write!(page, "<td>{}</td>", escape(c));
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</table>\n");
}

fn html(analysis: &Analysis, read: &ReadReport) -> String {
    let t = &analysis.table;
    let mut page = head(&format!("A/B report: {}", t.experiment));
    let _ = writeln!(
        page,
        "<h1>A/B report: experiment {}</h1>",
        escape(&t.experiment)
    );
    let srm = escape(&t.srm_summary());
    if t.srm.mismatch() {
        let _ = writeln!(page, "<p class=\"warn\">{srm}</p>");
    } else {
        let _ = writeln!(page, "<p>{srm}</p>");
    }
    let _ = writeln!(
        page,
        "<p>Effects are in percent of the control ({}) mean; intervals are Welch 95% confidence \
         intervals. Green: significant improvement; red: significant degradation (for latency, lower is better).</p>",
        escape(&control_label(analysis))
    );
    html_table(&mut page, &t.to_table());
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
    for (file, alt) in [
        (EFFECTS, "effect per metric with 95% CI"),
        (SESSION_LENGTH, "session length distribution per arm"),
        (CUMULATIVE_TIME, "cumulative listen time per arm"),
    ] {
        let _ = writeln!(
            page,
            "<p><img src=\"{file}\" alt=\"{alt}\" style=\"max-width:100%\"></p>"
        );
    }
    let _ = writeln!(
        page,
        "<h2>Data quality</h2>\n<pre>{}\n{}\nevents without experiment {}: {}\nusers whose logged arm differs from the mmh3 assignment: {}</pre>",
        escape(&read.to_string()),
        escape(&analysis.session_report.to_string()),
        escape(&t.experiment),
        analysis.events_without_arm,
        analysis.misassigned_users
    );
    page.push_str("</body></html>\n");
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

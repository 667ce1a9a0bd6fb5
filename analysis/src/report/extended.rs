//! `ab --report DIR` for the extended analysis: the success and guardrail
//! tables, CUPED's fits, the daily looks, and per metric a chart of each
//! treatment's effect per day with its sequential interval (repeated
//! interval over a horizon, or the mixture SPRT's always-valid one).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use plotters::prelude::*;

use super::{arm_color, escape, head, html_table, GREY};
use crate::ab::extended::MetricsAnalysis;
use crate::ab::Analysis;
use crate::logs::{parse_arm_label, ReadReport};
use crate::output;

/// Files of the page, relative to its folder.
pub const INDEX: &str = "index.html";

/// The chart of one metric's daily looks.
pub fn sequential_chart(metric: &str) -> String {
    format!("sequential_{metric}.svg")
}

/// Writes the page and its charts into `dir`; returns the page's path.
pub fn write(
    dir: &Path,
    analysis: &Analysis,
    result: &MetricsAnalysis,
    read: &ReadReport,
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "cannot create report folder {}: check permissions",
            dir.display()
        )
    })?;
    let mut charts = Vec::new();
    for metric in metrics_with_looks(result) {
        let file = sequential_chart(&metric);
        daily_looks(&dir.join(&file), result, &metric)
            .with_context(|| format!("cannot draw {}", dir.join(&file).display()))?;
        charts.push((metric, file));
    }
    let page = dir.join(INDEX);
    let html = html(analysis, result, read, &charts);
    output::write_atomic(&page, |w| w.write_all(html.as_bytes()))?;
    Ok(page)
}

/// Metrics with daily looks, in the order of the rows.
fn metrics_with_looks(result: &MetricsAnalysis) -> Vec<String> {
    let mut metrics: Vec<String> = Vec::new();
    for l in &result.looks {
        if !metrics.contains(&l.metric) {
            metrics.push(l.metric.clone());
        }
    }
    metrics
}

/// Each treatment's effect on `metric` at each daily look, in percent of the
/// look's control mean, with the look's sequential interval as an error bar
/// (none where it is unbounded: a look that spent no α); filled dots are
/// significant.
fn daily_looks(path: &Path, result: &MetricsAnalysis, metric: &str) -> Result<()> {
    let looks: Vec<_> = result.looks.iter().filter(|l| l.metric == metric).collect();
    let mut days: Vec<&str> = Vec::new();
    for l in &looks {
        if !days.contains(&l.day.as_str()) {
            days.push(&l.day);
        }
    }
    let mut treatments: Vec<&str> = Vec::new();
    for l in &looks {
        if !treatments.contains(&l.treatment.as_str()) {
            treatments.push(&l.treatment);
        }
    }
    let values: Vec<f64> = looks
        .iter()
        .flat_map(|l| [l.effect, l.lower, l.upper])
        .filter(|v| v.is_finite())
        .collect();
    let lo = values.iter().copied().fold(0.0, f64::min);
    let hi = values.iter().copied().fold(0.0, f64::max);
    let pad = ((hi - lo) * 0.1).max(0.5);
    let x = -0.5..days.len() as f64 - 0.5;
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{metric}: effect per day with its sequential 95% interval (% of control)"),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x.clone(), lo - pad..hi + pad)?;
    let label = |v: &f64| {
        let i = v.round();
        if (v - i).abs() < 1e-6 && i >= 0.0 {
            days.get(i as usize)
                .map_or(String::new(), |d| d.to_string())
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .x_desc("day (data up to and including it)")
        .y_desc("effect, %")
        .x_labels(days.len().clamp(1, 12))
        .x_label_formatter(&label)
        .draw()?;
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(x.start, 0.0), (x.end, 0.0)],
        GREY.stroke_width(1),
    )))?;
    let spread = 0.25 / treatments.len().max(1) as f64;
    for (i, treatment) in treatments.iter().enumerate() {
        let shift = (i as f64 - (treatments.len() as f64 - 1.0) / 2.0) * spread;
        let color = arm_color(parse_arm_label(treatment).unwrap_or(1));
        let points: Vec<_> = looks
            .iter()
            .filter(|l| l.treatment == *treatment && l.effect.is_finite())
            .filter_map(|l| {
                let day = days.iter().position(|d| *d == l.day)? as f64;
                Some((day + shift, l))
            })
            .collect();
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|(x, l)| (*x, l.effect)),
                color.stroke_width(2),
            ))?
            .label(treatment.to_string())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        for (x, l) in &points {
            if l.lower.is_finite() && l.upper.is_finite() {
                let cap = 0.04;
                chart.draw_series([
                    PathElement::new(vec![(*x, l.lower), (*x, l.upper)], color.stroke_width(2)),
                    PathElement::new(
                        vec![(x - cap, l.lower), (x + cap, l.lower)],
                        color.stroke_width(2),
                    ),
                    PathElement::new(
                        vec![(x - cap, l.upper), (x + cap, l.upper)],
                        color.stroke_width(2),
                    ),
                ])?;
            }
            let fill = if l.significant {
                color.filled()
            } else {
                WHITE.filled()
            };
            chart.draw_series([
                Circle::new((*x, l.effect), 5, fill),
                Circle::new((*x, l.effect), 5, color.stroke_width(2)),
            ])?;
        }
    }
    if !treatments.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

fn html(
    analysis: &Analysis,
    result: &MetricsAnalysis,
    read: &ReadReport,
    charts: &[(String, String)],
) -> String {
    let experiment = &analysis.table.experiment;
    let mut page = head(&format!("A/B report: {experiment}"));
    let _ = writeln!(
        page,
        "<h1>A/B report: experiment {}</h1>",
        escape(experiment)
    );
    let srm = escape(&result.srm.summary());
    let class = if result.srm.mismatch() {
        " class=\"warn\""
    } else {
        ""
    };
    let _ = writeln!(page, "<p{class}>{srm}</p>");
    let _ = writeln!(
        page,
        "<p>{}. Effects and bounds are in percent of the control mean; <code>lift_lower</code> \
         and <code>lift_upper</code> bound the relative lift (delta method on the ratio of \
         means). Green: significant improvement; red: significant degradation.</p>",
        escape(&result.summary())
    );
    page.push_str("<h2>Success metrics</h2>\n");
    html_table(&mut page, &result.to_table("success"));
    if result.rows.iter().any(|r| r.role == "guardrail") {
        page.push_str("<h2>Guardrails</h2>\n");
        html_table(&mut page, &result.to_table("guardrail"));
    }
    if !result.cuped.is_empty() {
        page.push_str(
            "<h2>CUPED</h2>\n<p>Each metric adjusted with the user's same metric over the \
             pre-period (users without one: the pre-period mean and an indicator). \
             <code>interval_width</code> is the adjusted interval's width relative to the \
             unadjusted one.</p>\n",
        );
        html_table(&mut page, &result.cuped_table());
    }
    if !result.looks.is_empty() {
        page.push_str(
            "<h2>Daily looks</h2>\n<p>At each day, the data up to that day; each look's \
             interval stays valid however many days are looked at (α spent over a planned \
             horizon, or the open-ended mixture SPRT), so looking every day keeps the \
             false-positive rate at 5%.</p>\n",
        );
        for (metric, file) in charts {
            let _ = writeln!(
                page,
                "<p><img src=\"{file}\" alt=\"{} per day with its sequential interval\" \
                 style=\"max-width:100%\"></p>",
                escape(metric)
            );
        }
        html_table(&mut page, &result.looks_table());
    }
    let _ = writeln!(
        page,
        "<h2>Data quality</h2>\n<pre>{}\n{}\nevents without experiment {}: {}\nusers whose \
         logged arm differs from the mmh3 assignment: {}</pre>",
        escape(&read.to_string()),
        escape(&analysis.session_report.to_string()),
        escape(experiment),
        analysis.events_without_arm,
        analysis.misassigned_users
    );
    page.push_str("</body></html>\n");
    page
}

//! `ab --report DIR` for the extended analysis: the success and guardrail
//! tables, CUPED's fits, the daily looks, and per metric a chart of each
//! treatment's effect per day with its sequential interval (repeated
//! interval over a horizon, or the mixture SPRT's always-valid one).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::charts::{self, DayEffect, EffectLine};
use super::html::{self, escape};
use crate::ab::extended::MetricsAnalysis;
use crate::ab::Analysis;
use crate::logs::{parse_arm_label, ReadReport};

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
    super::create_folder(dir)?;
    let mut charts = Vec::new();
    for metric in metrics_with_looks(result) {
        let file = sequential_chart(&metric);
        super::draw(dir, &file, |path| daily_looks(path, result, &metric))?;
        charts.push((metric, file));
    }
    super::breakdown::write_charts(dir, &result.breakdown)?;
    super::write_page(dir, INDEX, &page(analysis, result, read, &charts))
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
    let days = charts::distinct(looks.iter().map(|l| l.day.as_str()));
    let treatments = charts::distinct(looks.iter().map(|l| l.treatment.as_str()));
    let lines: Vec<EffectLine> = treatments
        .iter()
        .map(|treatment| EffectLine {
            arm: parse_arm_label(treatment).unwrap_or(1),
            label: treatment.to_string(),
            points: looks
                .iter()
                .filter(|l| l.treatment == *treatment && l.estimate.effect.is_finite())
                .filter_map(|l| {
                    Some(DayEffect {
                        x: days.iter().position(|d| *d == l.day)? as f64,
                        effect: l.estimate.effect,
                        bounds: Some((l.estimate.lower, l.estimate.upper)),
                        significant: l.significant,
                    })
                })
                .collect(),
        })
        .collect();
    let caption =
        format!("{metric}: effect per day with its sequential 95% interval (% of control)");
    let values = looks
        .iter()
        .flat_map(|l| [l.estimate.effect, l.estimate.lower, l.estimate.upper]);
    charts::effects_over_days(
        path,
        &caption,
        "day (data up to and including it)",
        &days,
        values,
        lines,
    )
}

fn page(
    analysis: &Analysis,
    result: &MetricsAnalysis,
    read: &ReadReport,
    charts: &[(String, String)],
) -> String {
    let mut page = html::ab_page(&analysis.table.experiment, &result.srm);
    let _ = writeln!(
        page,
        "<p>{}. Effects and bounds are in percent of the control mean; <code>lift_lower</code> \
         and <code>lift_upper</code> bound the relative lift (delta method on the ratio of \
         means). Green: significant improvement; red: significant degradation.</p>",
        escape(&result.summary())
    );
    page.push_str("<h2>Success metrics</h2>\n");
    html::table(&mut page, &result.to_table("success"));
    if result.rows.iter().any(|r| r.role == "guardrail") {
        page.push_str("<h2>Guardrails</h2>\n");
        html::table(&mut page, &result.to_table("guardrail"));
    }
    if !result.cuped.is_empty() {
        page.push_str(
            "<h2>CUPED</h2>\n<p>Each metric adjusted with the user's same metric over the \
             pre-period (users without one: the pre-period mean and an indicator). \
             <code>interval_width</code> is the adjusted interval's width relative to the \
             unadjusted one.</p>\n",
        );
        html::table(&mut page, &result.cuped_table());
    }
    if !result.looks.is_empty() {
        page.push_str(
            "<h2>Daily looks</h2>\n<p>At each day, the data up to that day; each look's \
             interval stays valid however many days are looked at (α spent over a planned \
             horizon, or the open-ended mixture SPRT), so looking every day keeps the \
             false-positive rate at 5%.</p>\n",
        );
        for (metric, file) in charts {
            let alt = format!("{} per day with its sequential interval", escape(metric));
            html::image(&mut page, file, &alt);
        }
        html::table(&mut page, &result.looks_table());
    }
    super::breakdown::sections(&mut page, &result.breakdown);
    html::data_quality(&mut page, analysis, read);
    page
}

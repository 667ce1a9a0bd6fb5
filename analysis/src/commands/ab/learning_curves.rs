//! `ab --per-day`: each day-<n> folder analysed on its own, as `ab`
//! analyses a log, then the whole run read once more for the returns no
//! single day can tell.

use anyhow::Result;

use super::{Ab, Options, Tables};
use crate::ab::extended::{self, MetricsAnalysis};
use crate::ab::{self, metrics, per_day};
use crate::commands::{read_logs, Input, Notes};
use crate::logs::ReadOptions;
use crate::report;
use tally::progress;

/// `ab --per-day`: every day-<n> folder analysed as `ab` analyses a log.
pub(super) fn run(
    options: &Options,
    arms: Option<usize>,
    control: u8,
    mut notes: Notes,
) -> Result<Ab> {
    let days = per_day::layout(&options.input.logs)?;
    let reading = ReadOptions {
        experiment: Some(options.experiment.clone()),
        threads: options.input.threads.max(1),
        progress: true,
        ..ReadOptions::default()
    };
    let mut analysed = Vec::with_capacity(days.len());
    for day in &days {
        let result = per_day::analyze_day(day, &reading, &options.experiment, arms, control)?;
        notes.info(format!(
            "day {}: {}; {}",
            day.day, result.read, result.session_report
        ));
        if result.events_without_arm > 0 {
            notes.info(format!(
                "day {}: left out {} events that do not carry experiment {:?}",
                day.day, result.events_without_arm, options.experiment
            ));
        }
        if result.misassigned_users > 0 {
            notes.warn(format!(
                "day {}: {} users are logged in an arm other than their mmh3 assignment with {} \
                 arms: was the config changed mid-experiment, or is --arms wrong?",
                day.day, result.misassigned_users, result.arms
            ));
        }
        analysed.push(result);
    }
    let retention = whole_run_retention(options, &days, arms, control, &mut notes)?;
    let result = per_day::PerDay {
        experiment: options.experiment.clone(),
        control,
        days: analysed,
        retention: Some(Box::new(retention)),
    };
    let report = match &options.report {
        Some(dir) => Some(report::per_day::write(dir, &result)?),
        None => None,
    };
    Ok(Ab {
        tables: Tables::PerDay(result),
        report,
        notes,
    })
}

/// `--per-day`'s [`per_day::RETENTION_METRICS`] over every day's logs
/// together: the day folders alone (not what else sits beside them, such
/// as the catalog `sim run` writes), which tell the days apart.
fn whole_run_retention(
    options: &Options,
    days: &[per_day::DayLogs],
    arms: Option<usize>,
    control: u8,
    notes: &mut Notes,
) -> Result<MetricsAnalysis> {
    let input = Input {
        logs: days
            .iter()
            .flat_map(|d| &d.folders)
            .map(|f| f.display().to_string())
            .collect(),
        threads: options.input.threads,
    };
    let logs = read_logs(&input, Some(&options.experiment), notes)?;
    let spinner = progress::spinner("computing returns over the whole run");
    let analysis = ab::analyze(logs.records, &options.experiment, arms, control)?;
    let computing = extended::Options {
        metrics: metrics::parse_list(per_day::RETENTION_METRICS).map_err(anyhow::Error::msg)?,
        ..extended::Options::default()
    };
    let result = extended::analyze(
        &analysis.records,
        &analysis.sessions,
        &logs.days,
        None,
        analysis.arms,
        analysis.table.control,
        &computing,
    )?;
    spinner.finish_and_clear();
    Ok(result)
}

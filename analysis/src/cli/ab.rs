//! `analysis ab`: the A/B table of one experiment, or with `--per-day` one
//! row per (day, arm) over `day-<n>` folders.

use std::path::PathBuf;
use std::time::Instant;

use anstream::{print, println};
use anyhow::{Context, Result};
use clap::Args;

use super::{note, read_logs, warn, Input};
use crate::ab::{self, per_day};
use crate::logs::{self, ReadOptions};
use crate::output::{Format, Table};
use crate::progress;
use crate::report;

#[derive(Args)]
pub(super) struct AbArgs {
    #[command(flatten)]
    input: Input,
    /// Experiment name, as in the events' `experiments` field.
    #[arg(long)]
    experiment: String,
    /// Control arm label.
    #[arg(long, default_value = "C")]
    control: String,
    /// Configured number of arms (the SRM's expected split); default: the highest arm label seen.
    #[arg(long, conflicts_with = "config", value_parser = clap::value_parser!(u8).range(1..=254))]
    arms: Option<u8>,
    /// botify's experiments TOML, to read the experiment's configured number of arms.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Output format of the table.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Also write an HTML report with SVG plots into this folder.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// Learning curves: analyse each day-<n> subfolder of the --logs folders on its own
    /// and print one row per (day, arm) instead of the table.
    #[arg(long)]
    per_day: bool,
}

/// Prints an A/B table in `format` and its sample-ratio check: after the
/// table on stdout for people (table, markdown), on stderr for machine
/// formats (csv, json), so their stdout stays parseable.
fn print_with_srm(format: Format, table: &Table, json: impl FnOnce() -> String, srm: &str) {
    match format {
        Format::Table => {
            print!("{}", table.to_terminal());
            println!("\n{srm}");
        }
        Format::Markdown => {
            print!("{}", table.to_markdown());
            println!("\n{srm}");
        }
        Format::Csv => {
            print!("{}", table.to_csv());
            note(srm);
        }
        Format::Json => {
            println!("{}", json());
            note(srm);
        }
    }
}

pub(super) fn run_ab(args: AbArgs) -> Result<()> {
    let started = Instant::now();
    let control = logs::parse_arm_label(&args.control).with_context(|| {
        format!(
            "--control {:?} is not an arm label: use C, T1, T2, …",
            args.control
        )
    })?;
    let arms = match (&args.config, args.arms) {
        (Some(path), _) => {
            let config = botify::experiments::Experiments::load(path)?;
            let experiment = config
                .experiments
                .iter()
                .find(|e| e.name == args.experiment)
                .with_context(|| {
                    let names: Vec<&str> =
                        config.experiments.iter().map(|e| e.name.as_str()).collect();
                    format!(
                        "experiment {:?} is not in {} (configured: {names:?})",
                        args.experiment,
                        path.display()
                    )
                })?;
            Some(experiment.arms.len())
        }
        (None, arms) => arms.map(usize::from),
    };
    if args.per_day {
        return run_ab_per_day(&args, arms, control, started);
    }
    let logs = read_logs(&args.input, Some(&args.experiment))?;
    let read_report = logs.report;
    let spinner = progress::spinner("computing");
    let analysis = ab::analyze(logs.records, &args.experiment, arms, control)?;
    spinner.finish_and_clear();
    note(&analysis.session_report);
    if analysis.events_without_arm > 0 {
        note(format!(
            "left out {} events that do not carry experiment {:?}",
            analysis.events_without_arm, args.experiment
        ));
    }
    if analysis.misassigned_users > 0 {
        warn(format!(
            "{} users are logged in an arm other than their mmh3 assignment with {} arms: \
             was the config changed mid-experiment, or is --arms wrong?",
            analysis.misassigned_users, analysis.arms
        ));
    }
    print_with_srm(
        args.format,
        &analysis.table.to_table(),
        || analysis.table.to_json(),
        &analysis.table.srm_summary(),
    );
    if analysis.table.srm.mismatch() {
        warn(format!(
            "sample ratio mismatch in {:?} (p = {:.2e} < {}): do not trust this table",
            args.experiment,
            analysis.table.srm.p_value,
            ab::SRM_ALPHA
        ));
    }
    if let Some(dir) = &args.report {
        let page = report::write(dir, &analysis, &read_report)?;
        note(format!("report: {}", page.display()));
    }
    note(format!("done in {:.2}s", started.elapsed().as_secs_f64()));
    Ok(())
}

/// `ab --per-day`: every day-<n> folder analysed as `ab` analyses a log.
fn run_ab_per_day(args: &AbArgs, arms: Option<usize>, control: u8, started: Instant) -> Result<()> {
    let days = per_day::layout(&args.input.logs)?;
    let options = ReadOptions {
        experiment: Some(args.experiment.clone()),
        threads: args.input.threads.max(1),
        progress: true,
        ..ReadOptions::default()
    };
    let mut analysed = Vec::with_capacity(days.len());
    for day in &days {
        let result = per_day::analyze_day(day, &options, &args.experiment, arms, control)?;
        note(format!(
            "day {}: {}; {}",
            day.day, result.read, result.session_report
        ));
        if result.events_without_arm > 0 {
            note(format!(
                "day {}: left out {} events that do not carry experiment {:?}",
                day.day, result.events_without_arm, args.experiment
            ));
        }
        if result.misassigned_users > 0 {
            warn(format!(
                "day {}: {} users are logged in an arm other than their mmh3 assignment with {} \
                 arms: was the config changed mid-experiment, or is --arms wrong?",
                day.day, result.misassigned_users, result.arms
            ));
        }
        analysed.push(result);
    }
    let result = per_day::PerDay {
        experiment: args.experiment.clone(),
        control,
        days: analysed,
    };
    print_with_srm(
        args.format,
        &result.to_table(),
        || result.to_json(),
        &result.srm_lines().join("\n"),
    );
    for day in result.days.iter().filter(|d| d.table.srm.mismatch()) {
        warn(format!(
            "sample ratio mismatch in {:?} on day {} (p = {:.2e} < {}): do not trust that day",
            args.experiment,
            day.day,
            day.table.srm.p_value,
            ab::SRM_ALPHA
        ));
    }
    if let Some(dir) = &args.report {
        let page = report::per_day::write(dir, &result)?;
        note(format!("report: {}", page.display()));
    }
    note(format!("done in {:.2}s", started.elapsed().as_secs_f64()));
    Ok(())
}

//! `analysis ab`: the A/B table of one experiment, or with `--per-day` one
//! row per (day, arm) over `day-<n>` folders.

use std::path::PathBuf;
use std::time::Instant;

use anstream::{print, println};
use anyhow::{bail, Context, Result};
use clap::Args;

use super::{note, read_logs, warn, Input};
use crate::ab::correction::Correction;
use crate::ab::extended::{self, Design, PrePeriod};
use crate::ab::metrics::{self, Metric};
use crate::ab::spending::SpendingFunction;
use crate::ab::{self, per_day, sequential};
use crate::logs::{self, DayScheme, Days, ReadOptions};
use crate::output::{Format, Table};
use crate::report;
use tally::progress;

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
    #[arg(long, conflicts_with_all = ["metrics", "correction", "pre", "start", "sequential"])]
    per_day: bool,
    #[command(flatten)]
    extended: ExtendedArgs,
}

/// The extended analysis; any of these flags switches from the notebook's
/// table to it.
#[derive(Args)]
struct ExtendedArgs {
    /// Metrics to compare, comma-separated, or `all` (the default of the extended
    /// analysis); the first success metric is the primary one, charted per day.
    /// Success: time, sessions, mean_tracks_per_session, mean_time_per_session,
    /// active_days, sessions_per_active_day, time_per_day, return_d1, return_d7,
    /// session_time, session_tracks; guardrails: mean_request_latency,
    /// fallback_rate, error_rate.
    #[arg(long, value_name = "LIST", value_parser = parse_metrics)]
    metrics: Option<MetricList>,
    /// Correction for many arms × metrics, applied within success metrics and within
    /// guardrails [default of the extended analysis: holm].
    #[arg(long, value_enum)]
    correction: Option<Correction>,
    /// Pre-experiment logs for CUPED (files, folders, globs): each user's same metric
    /// over these logs is the covariate.
    #[arg(long, value_name = "PATH|GLOB", num_args = 1.., conflicts_with = "start")]
    pre: Vec<String>,
    /// First day of the experiment: a day-<n> folder's n, or a UTC date YYYY-MM-DD for
    /// logs without day folders. Earlier days are the pre-period (CUPED).
    #[arg(long, value_name = "DAY")]
    start: Option<String>,
    /// A look at every day with intervals valid however many days are looked at:
    /// with --horizon, α spent over the planned days (5% false positives with
    /// daily looks, as planned); without, the open-ended mixture SPRT (at most
    /// 5%, far fewer with daily looks, and wider intervals).
    #[arg(long)]
    sequential: bool,
    /// Planned length of the experiment in days, from its first day: --sequential
    /// spends α over these days. Looks after it spend nothing more.
    #[arg(long, value_name = "DAYS", requires = "sequential",
          value_parser = clap::value_parser!(u32).range(1..))]
    horizon: Option<u32>,
    /// How --horizon spends α: obf (O'Brien–Fleming type: wide early, last look
    /// nearly the fixed-horizon test) or pocock (about the same boundary daily).
    #[arg(long, value_enum, default_value_t = SpendingFunction::OBrienFleming, requires = "horizon")]
    spending: SpendingFunction,
    /// Mixture SPRT's mixing standard deviation, as a fraction of the control mean
    /// (the effect size the open-ended test is tuned for).
    #[arg(long, value_name = "FRACTION", default_value_t = sequential::DEFAULT_MIXING,
          conflicts_with = "horizon")]
    mixing: f64,
}

/// A parsed `--metrics` list (clap needs a named type to hold a `Vec`).
#[derive(Clone)]
struct MetricList(Vec<&'static Metric>);

fn parse_metrics(text: &str) -> Result<MetricList, String> {
    metrics::parse_list(text).map(MetricList)
}

impl ExtendedArgs {
    fn requested(&self) -> bool {
        self.metrics.is_some()
            || self.correction.is_some()
            || !self.pre.is_empty()
            || self.start.is_some()
            || self.sequential
    }
}

/// `--start DAY`: a folder day `n` or a UTC date, checked against how the
/// logs tell days apart.
fn parse_start(text: &str, days: &Days) -> Result<u32> {
    let folder = text.bytes().all(|b| b.is_ascii_digit()) && !text.is_empty();
    match (days.scheme(), folder) {
        (DayScheme::Folders, true) => text
            .parse()
            .with_context(|| format!("--start {text:?} is not a day number")),
        (DayScheme::Timestamps, false) => logs::days::parse_date(text).with_context(|| {
            format!("--start {text:?} is not a date: expected YYYY-MM-DD (UTC)")
        }),
        (DayScheme::Folders, false) => bail!(
            "--start {text:?}: these logs are in day-<n> folders, so DAY is a day number n              (e.g. --start 4)"
        ),
        _ => bail!(
            "--start {text:?}: these logs have no day-<n> folders, so days are UTC dates:              pass --start YYYY-MM-DD"
        ),
    }
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
    let days = logs.days;
    let spinner = progress::spinner("computing");
    let analysis = ab::analyze(logs.records, &args.experiment, arms, control)?;
    spinner.finish_and_clear();
    if args.extended.requested() {
        return run_extended(&args, &analysis, &days, &read_report, started);
    }
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

/// The extended analysis: success metrics and guardrails in separate tables,
/// CUPED's fits, the daily looks.
fn run_extended(
    args: &AbArgs,
    analysis: &ab::Analysis,
    days: &Days,
    read_report: &logs::ReadReport,
    started: Instant,
) -> Result<()> {
    let flags = &args.extended;
    if !(flags.mixing > 0.0 && flags.mixing.is_finite()) {
        bail!(
            "--mixing must be a positive fraction of the control mean (e.g. 0.05), got {}",
            flags.mixing
        );
    }
    let options = extended::Options {
        metrics: flags
            .metrics
            .clone()
            .map(|m| m.0)
            .unwrap_or_else(|| metrics::CATALOGUE.iter().collect()),
        correction: flags.correction.unwrap_or(Correction::Holm),
        start: flags
            .start
            .as_deref()
            .map(|s| parse_start(s, days))
            .transpose()?,
        sequential: flags.sequential.then_some(match flags.horizon {
            Some(horizon) => Design::Spending {
                horizon,
                function: flags.spending,
            },
            None => Design::Mixture {
                mixing: flags.mixing,
            },
        }),
        ..extended::Options::default()
    };
    let pre = if flags.pre.is_empty() {
        None
    } else {
        let input = Input {
            logs: flags.pre.clone(),
            threads: args.input.threads,
        };
        let logs = read_logs(&input, None)?;
        Some(PrePeriod::from_logs(logs.records, &logs.days).context("--pre")?)
    };
    let result = extended::analyze(
        &analysis.records,
        &analysis.sessions,
        days,
        pre.as_ref(),
        analysis.arms,
        analysis.table.control,
        &options,
    )?;
    note(&analysis.session_report);
    let srm = result.srm.summary();
    match args.format {
        Format::Json => println!("{}", result.to_json()),
        Format::Csv => {
            let mut all = result.to_table("success");
            all.rows.extend(result.to_table("guardrail").rows);
            print!("{}", all.to_csv());
        }
        format => {
            let render = |t: &Table| match format {
                Format::Markdown => t.to_markdown(),
                _ => t.to_terminal(),
            };
            println!("Success metrics");
            print!("{}", render(&result.to_table("success")));
            if result.rows.iter().any(|r| r.role == "guardrail") {
                println!("\nGuardrails");
                print!("{}", render(&result.to_table("guardrail")));
            }
            if !result.cuped.is_empty() {
                println!("\nCUPED (pre-period covariate per metric)");
                print!("{}", render(&result.cuped_table()));
            }
            if !result.looks.is_empty() {
                println!("\nDaily looks (intervals valid at every look)");
                print!("{}", render(&result.looks_table()));
            }
            println!("\n{}\n{srm}", result.summary());
        }
    }
    if matches!(args.format, Format::Json | Format::Csv) {
        note(result.summary());
        note(&srm);
    }
    if result.srm.mismatch() {
        warn(format!(
            "sample ratio mismatch in {:?} (p = {:.2e} < {}): do not trust this table",
            args.experiment,
            result.srm.p_value,
            ab::SRM_ALPHA
        ));
    }
    if let Some(dir) = &args.report {
        let page = report::extended::write(dir, analysis, &result, read_report)?;
        note(format!("report: {}", page.display()));
    }
    note(format!("done in {:.2}s", started.elapsed().as_secs_f64()));
    Ok(())
}

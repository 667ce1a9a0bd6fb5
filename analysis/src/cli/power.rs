//! `analysis power`: the minimum detectable effect of a planned experiment,
//! from the variance of each metric in pre-period logs.

use anstream::print;
use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;

use super::{note, read_logs, warn, Input};
use crate::ab::estimate::Sample;
use crate::ab::extended::DayedSessions;
use crate::ab::metrics::{self, Metric, Window};
use crate::ab::power;
use crate::output::{self, Format, Table, Tone};
use crate::sessions;

#[derive(Args)]
pub(super) struct PowerArgs {
    #[command(flatten)]
    input: Input,
    /// Users the experiment will have, over all arms.
    #[arg(long, value_parser = clap::value_parser!(u64).range(2..))]
    users: u64,
    /// Days the experiment will run: each metric's variance is measured over the
    /// logs' first DAYS days (day-<n> folders, else UTC days).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    days: u32,
    /// Arms, users split evenly.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=254))]
    arms: u8,
    /// Two-sided significance level.
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// Chance of detecting an effect of the MDE's size.
    #[arg(long, default_value_t = 0.8)]
    power: f64,
    /// Metrics, comma-separated, or `all`.
    #[arg(long, value_name = "LIST", default_value = "all")]
    metrics: String,
    /// Output format of the table.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Serialize)]
struct Row {
    metric: &'static str,
    mean: f64,
    sd: f64,
    users_measured: u64,
    users_per_arm: f64,
    mde: f64,
    /// Percent of the mean.
    mde_percent: f64,
}

pub(super) fn run_power(args: PowerArgs) -> Result<()> {
    for (name, value) in [("--alpha", args.alpha), ("--power", args.power)] {
        if !(value > 0.0 && value < 1.0) {
            bail!("{name} must be strictly between 0 and 1, got {value}");
        }
    }
    let chosen: Vec<&'static Metric> =
        metrics::parse_list(&args.metrics).map_err(anyhow::Error::msg)?;
    let mut logs = read_logs(&args.input, None)?;
    sessions::sort(&mut logs.records);
    let (sessions, report) = sessions::sessionize(&logs.records);
    note(&report);
    let dayed = DayedSessions::new(&sessions, &logs.records, &logs.days)?;
    let (Some(&first), Some(&last)) = (dayed.days.iter().min(), dayed.days.iter().max()) else {
        bail!("the logs hold no closed session (no `last` event): nothing to measure");
    };
    let window = Window {
        first,
        last: last.min(first + args.days - 1),
    };
    let covered = window.last - window.first + 1;
    if covered < args.days {
        warn(format!(
            "the logs cover {covered} days, fewer than --days {}: variances are measured over \
             {covered} days, so metrics that grow with time (time, sessions, active_days) are \
             understated",
            args.days
        ));
    }
    let users = metrics::user_sums(&sessions, &dayed.days, window, true);
    let mut rows = Vec::new();
    for metric in chosen {
        let observations: Vec<_> = users
            .iter()
            .filter_map(|u| Some((u.user, metric.observe(u, window)?)))
            .collect();
        let m = Sample::new(metric.kind, &observations).moments();
        let mde = power::mde(
            m.mean(),
            m.var().sqrt(),
            m.count(),
            args.users as f64,
            usize::from(args.arms),
            args.alpha,
            args.power,
        );
        rows.push(Row {
            metric: metric.name,
            mean: mde.mean,
            sd: mde.sd,
            users_measured: mde.sample_users,
            users_per_arm: mde.users_per_arm,
            mde: mde.absolute,
            mde_percent: mde.relative * 100.0,
        });
    }
    let mut table = Table::new(&[
        "metric",
        "mean",
        "sd",
        "users_measured",
        "users_per_arm",
        "mde",
        "mde_percent",
    ]);
    for r in &rows {
        table.push(
            vec![
                r.metric.to_string(),
                output::num(r.mean, 4),
                output::num(r.sd, 4),
                r.users_measured.to_string(),
                output::num(r.users_per_arm, 0),
                output::num(r.mde, 4),
                output::num(r.mde_percent, 2) + "%",
            ],
            Tone::Plain,
        );
    }
    match args.format {
        Format::Table => print!("{}", table.to_terminal()),
        Format::Csv => print!("{}", table.to_csv()),
        Format::Markdown => print!("{}", table.to_markdown()),
        Format::Json => {
            print!(
                "{}",
                serde_json::to_string_pretty(&rows).expect("rows serialize") + "\n"
            )
        }
    }
    note(format!(
        "{} users in {} arms, {} days (measured on days {} to {}), two-sided α = {}, power {}",
        args.users,
        args.arms,
        args.days,
        logs.days.label(window.first),
        logs.days.label(window.last),
        args.alpha,
        args.power
    ));
    Ok(())
}

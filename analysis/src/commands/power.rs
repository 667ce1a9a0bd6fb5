//! `analysis power`: the minimum detectable effect of a planned experiment,
//! from the variance of each metric in pre-period logs.

use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;

use super::{read_logs, Input, Notes};
use crate::ab::estimate::Sample;
use crate::ab::extended::DayedSessions;
use crate::ab::metrics::{self, Metric, Window};
use crate::ab::power;
use crate::sessions;

/// `analysis power`'s flags.
#[derive(Debug, Clone, Args)]
pub struct Options {
    #[command(flatten)]
    pub input: Input,
    /// Users the experiment will have, over all arms.
    #[arg(long, value_parser = clap::value_parser!(u64).range(2..))]
    pub users: u64,
    /// Days the experiment will run: each metric's variance is measured over the
    /// logs' first DAYS days (day-<n> folders, else UTC days).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub days: u32,
    /// Arms, users split evenly.
    #[arg(long, default_value_t = Options::default().arms, value_parser = clap::value_parser!(u8).range(2..=254))]
    pub arms: u8,
    /// Two-sided significance level.
    #[arg(long, default_value_t = Options::default().alpha)]
    pub alpha: f64,
    /// Chance of detecting an effect of the MDE's size.
    #[arg(long, default_value_t = Options::default().power)]
    pub power: f64,
    /// Metrics, comma-separated, or `all`.
    #[arg(long, value_name = "LIST", default_value_t = Options::default().metrics)]
    pub metrics: String,
}

impl Default for Options {
    /// The defaults `analysis power --help` shows; set `input.logs`,
    /// `users` and `days` before running.
    fn default() -> Options {
        Options {
            input: Input::default(),
            users: 0,
            days: 0,
            arms: 2,
            alpha: 0.05,
            power: 0.8,
            metrics: "all".to_string(),
        }
    }
}

/// One metric's minimum detectable effect.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub metric: &'static str,
    pub mean: f64,
    pub sd: f64,
    pub users_measured: u64,
    pub users_per_arm: f64,
    pub mde: f64,
    /// Percent of the mean.
    pub mde_percent: f64,
}

/// The MDE of every chosen metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Power {
    pub rows: Vec<Row>,
    /// The first and last day the variances were measured on, as the logs
    /// name days (`day-<n>`'s n, else the UTC date).
    pub measured: (String, String),
    pub notes: Notes,
}

/// Measures each metric's variance on the logs' first `options.days` days
/// and turns it into the MDE of the planned experiment.
pub fn run(options: &Options) -> Result<Power> {
    for (name, value) in [("--alpha", options.alpha), ("--power", options.power)] {
        if !(value > 0.0 && value < 1.0) {
            bail!("{name} must be strictly between 0 and 1, got {value}");
        }
    }
    let chosen: Vec<&'static Metric> =
        metrics::parse_list(&options.metrics).map_err(anyhow::Error::msg)?;
    let mut notes = Notes::default();
    let mut logs = read_logs(&options.input, None, &mut notes)?;
    sessions::sort(&mut logs.records);
    let (sessions, report) = sessions::sessionize(&logs.records);
    notes.info(&report);
    let dayed = DayedSessions::new(&sessions, &logs.records, &logs.days)?;
    let (Some(&first), Some(&last)) = (dayed.days.iter().min(), dayed.days.iter().max()) else {
        bail!("the logs hold no closed session (no `last` event): nothing to measure");
    };
    let window = Window {
        first,
        last: last.min(first + options.days - 1),
    };
    let covered = window.last - window.first + 1;
    if covered < options.days {
        notes.warn(format!(
            "the logs cover {covered} days, fewer than --days {}: variances are measured over \
             {covered} days, so metrics that grow with time (time, sessions, active_days) are \
             understated",
            options.days
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
            options.users as f64,
            usize::from(options.arms),
            options.alpha,
            options.power,
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
    Ok(Power {
        rows,
        measured: (logs.days.label(window.first), logs.days.label(window.last)),
        notes,
    })
}

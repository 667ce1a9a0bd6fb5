//! `analysis ab`: the A/B table of one experiment, or with `--per-day` one
//! row per (day, arm) over `day-<n>` folders, or the extended analysis.

mod learning_curves;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;

use super::{read_logs, Input, Notes};
use crate::ab::correction::Correction;
use crate::ab::extended::{self, Design, MetricsAnalysis, PrePeriod};
use crate::ab::metrics::{self, Metric};
use crate::ab::spending::SpendingFunction;
use crate::ab::stats_file::StatsFile;
use crate::ab::{self, breakdown, per_day, segments, sequential, trend, Analysis};
use crate::logs::{self, DayScheme, Days, ReadReport};
use crate::report;
use tally::progress;

/// `analysis ab`'s flags, all but `--format`, which is the printer's.
/// `--logs` or `--stats` says what to analyse.
#[derive(Debug, Clone, Args)]
#[command(mut_arg("logs", |a| a.required(false).required_unless_present("stats")))]
pub struct Options {
    #[command(flatten)]
    pub input: Input,
    /// Instead of --logs: a warehouse's sufficient statistics (CSV, JSON or Parquet, as
    /// analysis/sql/ab_stats.sql or scripts/spark_ab.py write them); the same table and JSON
    /// as from the logs. A start day is the SQL's, so not with --start, --pre or --sequential.
    /// --segment-by and --trend read the file's per-segment and per-day rows (the SQL's
    /// segment_by and per_day); quantiles and exposure need per-session values, so --logs.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["logs", "pre", "start", "sequential", "per_day", "quantiles", "exposure"])]
    pub stats: Option<PathBuf>,
    /// Experiment name, as in the events' `experiments` field.
    #[arg(long)]
    pub experiment: String,
    /// Control arm label.
    #[arg(long, default_value_t = Options::default().control)]
    pub control: String,
    /// Configured number of arms (the SRM's expected split); default: the highest arm label seen.
    #[arg(long, conflicts_with = "config", value_parser = clap::value_parser!(u8).range(1..=254))]
    pub arms: Option<u8>,
    /// botify's experiments TOML, to read the experiment's configured number of arms.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Also write an HTML report with SVG plots into this folder.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Learning curves: analyse each day-<n> subfolder of the --logs folders on its own
    /// and print one row per (day, arm) instead of the table.
    #[arg(long, conflicts_with_all = ["metrics", "correction", "pre", "start", "sequential",
                                      "segment_by", "trend", "quantiles", "exposure"])]
    pub per_day: bool,
    #[command(flatten)]
    pub extended: MetricsAnalysisOptions,
}

impl Default for Options {
    /// The notebook's table with the defaults `analysis ab --help` shows;
    /// set `input.logs` and `experiment` before running.
    fn default() -> Options {
        Options {
            input: Input::default(),
            experiment: String::new(),
            control: "C".to_string(),
            arms: None,
            config: None,
            report: None,
            per_day: false,
            stats: None,
            extended: MetricsAnalysisOptions::default(),
        }
    }
}

/// The extended analysis; any of these flags switches from the notebook's
/// table to it.
#[derive(Debug, Clone, Args)]
pub struct MetricsAnalysisOptions {
    /// Metrics to compare, comma-separated, or `all` (the default of the extended
    /// analysis); the first success metric is the primary one, charted per day.
    /// Success: time, sessions, mean_tracks_per_session, mean_time_per_session,
    /// active_days, sessions_per_active_day, time_per_day, return_d1, return_d7,
    /// session_time, session_tracks; guardrails: mean_request_latency,
    /// fallback_rate, error_rate.
    #[arg(long, value_name = "LIST", value_parser = parse_metrics)]
    pub metrics: Option<MetricList>,
    /// Correction for many arms × metrics, applied within success metrics and within
    /// guardrails [default of the extended analysis: holm].
    #[arg(long, value_enum)]
    pub correction: Option<Correction>,
    /// Pre-experiment logs for CUPED (files, folders, globs): each user's same metric
    /// over these logs is the covariate.
    #[arg(long, value_name = "PATH|GLOB", num_args = 1.., conflicts_with = "start")]
    pub pre: Vec<String>,
    /// First day of the experiment: a day-<n> folder's n, or a UTC date YYYY-MM-DD for
    /// logs without day folders. Earlier days are the pre-period (CUPED).
    #[arg(long, value_name = "DAY")]
    pub start: Option<String>,
    /// A look at every day with intervals valid however many days are looked at:
    /// with --horizon, α spent over the planned days (5% false positives with
    /// daily looks, as planned); without, the open-ended mixture SPRT (at most
    /// 5%, far fewer with daily looks, and wider intervals).
    #[arg(long)]
    pub sequential: bool,
    /// Planned length of the experiment in days, from its first day: --sequential
    /// spends α over these days. Looks after it spend nothing more.
    #[arg(long, value_name = "DAYS", requires = "sequential",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub horizon: Option<u32>,
    /// How --horizon spends α: obf (O'Brien–Fleming type: wide early, last look
    /// nearly the fixed-horizon test) or pocock (about the same boundary daily).
    #[arg(long, value_enum, default_value_t = SpendingFunction::OBrienFleming, requires = "horizon")]
    pub spending: SpendingFunction,
    /// Mixture SPRT's mixing standard deviation, as a fraction of the control mean
    /// (the effect size the open-ended test is tuned for).
    #[arg(long, value_name = "FRACTION", default_value_t = sequential::DEFAULT_MIXING,
          conflicts_with = "horizon")]
    pub mixing: f64,
    /// Segments, trend, quantiles, exposure.
    #[command(flatten)]
    pub breakdown: breakdown::Flags,
}

impl Default for MetricsAnalysisOptions {
    /// None of the extended analysis: the notebook's table.
    fn default() -> MetricsAnalysisOptions {
        MetricsAnalysisOptions {
            metrics: None,
            correction: None,
            pre: Vec::new(),
            start: None,
            sequential: false,
            horizon: None,
            spending: SpendingFunction::OBrienFleming,
            mixing: sequential::DEFAULT_MIXING,
            breakdown: breakdown::Flags::default(),
        }
    }
}

/// A parsed `--metrics` list (clap needs a named type to hold a `Vec`).
#[derive(Debug, Clone)]
pub struct MetricList(pub Vec<&'static Metric>);

fn parse_metrics(text: &str) -> Result<MetricList, String> {
    metrics::parse_list(text).map(MetricList)
}

impl MetricsAnalysisOptions {
    /// The metrics and the correction these flags choose, with their
    /// defaults; the rest of the extended analysis's defaults.
    fn chosen(&self) -> extended::Options {
        extended::Options {
            metrics: self
                .metrics
                .clone()
                .map(|m| m.0)
                .unwrap_or_else(|| metrics::CATALOGUE.iter().collect()),
            correction: self.correction.unwrap_or(Correction::Holm),
            ..extended::Options::default()
        }
    }

    /// Whether any flag asks for the extended analysis.
    pub fn requested(&self) -> bool {
        self.metrics.is_some()
            || self.correction.is_some()
            || !self.pre.is_empty()
            || self.start.is_some()
            || self.sequential
            || self.breakdown.requested()
    }
}

/// What `ab` computed, by the analysis `Options` asked for.
#[derive(Debug)]
pub enum Tables {
    /// The notebook's table.
    Notebook(Analysis),
    /// `--per-day`: each day's table.
    PerDay(per_day::PerDay),
    /// The extended analysis, over the notebook's sessions.
    Metrics {
        analysis: Analysis,
        result: Box<MetricsAnalysis>,
    },
}

/// An A/B analysis: its tables, where its report went, and the notes.
#[derive(Debug)]
pub struct Ab {
    pub tables: Tables,
    /// The HTML report's page, when `Options::report` asked for one.
    pub report: Option<PathBuf>,
    pub notes: Notes,
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

/// Analyses the experiment `options` name in its logs, and writes the
/// report when asked.
pub fn run(options: &Options) -> Result<Ab> {
    let control = logs::parse_arm_label(&options.control).with_context(|| {
        format!(
            "--control {:?} is not an arm label: use C, T1, T2, …",
            options.control
        )
    })?;
    let arms = match (&options.config, options.arms) {
        (Some(path), _) => {
            let config = botify::experiments::Experiments::load(path)?;
            let experiment = config
                .experiments
                .iter()
                .find(|e| e.name == options.experiment)
                .with_context(|| {
                    let names: Vec<&str> =
                        config.experiments.iter().map(|e| e.name.as_str()).collect();
                    format!(
                        "experiment {:?} is not in {} (configured: {names:?})",
                        options.experiment,
                        path.display()
                    )
                })?;
            Some(experiment.arms.len())
        }
        (None, arms) => arms.map(usize::from),
    };
    let mut notes = Notes::default();
    if let Some(path) = &options.stats {
        return run_stats(options, path, arms, control, notes);
    }
    if options.per_day {
        return learning_curves::run(options, arms, control, notes);
    }
    let logs = read_logs(&options.input, Some(&options.experiment), &mut notes)?;
    let read_report = logs.report;
    let days = logs.days;
    let spinner = progress::spinner("computing");
    let analysis = ab::analyze(logs.records, &options.experiment, arms, control)?;
    spinner.finish_and_clear();
    if options.extended.requested() {
        return run_extended(options, analysis, &days, &read_report, notes);
    }
    notes.info(&analysis.session_report);
    if analysis.events_without_arm > 0 {
        notes.info(format!(
            "left out {} events that do not carry experiment {:?}",
            analysis.events_without_arm, options.experiment
        ));
    }
    if analysis.misassigned_users > 0 {
        notes.warn(format!(
            "{} users are logged in an arm other than their mmh3 assignment with {} arms: \
             was the config changed mid-experiment, or is --arms wrong?",
            analysis.misassigned_users, analysis.arms
        ));
    }
    let report = match &options.report {
        Some(dir) => Some(report::write(dir, &analysis, &read_report)?),
        None => None,
    };
    Ok(Ab {
        tables: Tables::Notebook(analysis),
        report,
        notes,
    })
}

/// `ab --stats FILE`: the notebook's table, or the extended analysis when
/// its flags ask for it or the sums carry a pre-period (the SQL ran with a
/// start day, as `ab --start`), from a warehouse's sufficient statistics.
fn run_stats(
    options: &Options,
    path: &Path,
    arms: Option<usize>,
    control: u8,
    mut notes: Notes,
) -> Result<Ab> {
    let file = StatsFile::read(path)?;
    let experiment = &options.experiment;
    notes.info(format!(
        "read {} rows of sufficient statistics from {}",
        file.rows.len(),
        path.display()
    ));
    let pre_period = file.has_pre_period(experiment)?;
    if options.extended.requested() || pre_period {
        let computing = options.extended.chosen();
        let aggregates = file.aggregates(experiment, &computing.metrics, arms)?;
        let mut result = extended::from_aggregates(&aggregates, control, &computing)?;
        let flags = &options.extended.breakdown;
        if flags.segment_by.is_some() || flags.trend {
            let primary =
                breakdown::primary(&computing.metrics).context("no metric to break down")?;
            let arms = aggregates.users.len();
            if let Some(by) = flags.segment_by {
                let sums = file.segment_sums(experiment, by.name(), primary, arms)?;
                result.breakdown.segments = Some(segments::compare(
                    by.name(),
                    primary,
                    &sums,
                    control,
                    computing.alpha,
                ));
            }
            if flags.trend {
                let sums = file.day_sums(experiment, primary, arms)?;
                result.breakdown.trend =
                    Some(trend::compare(primary, &sums, control, computing.alpha));
            }
        }
        let analysis = aggregate_analysis(experiment, control, aggregates.users.len());
        let report = match &options.report {
            Some(dir) => Some(report::extended::write(
                dir,
                &analysis,
                &result,
                &ReadReport::default(),
            )?),
            None => None,
        };
        return Ok(Ab {
            tables: Tables::Metrics {
                analysis,
                result: Box::new(result),
            },
            report,
            notes,
        });
    }
    let sums = file.notebook(experiment, arms)?;
    let mut analysis = aggregate_analysis(experiment, control, sums.len());
    analysis.table = ab::table_from_sums(experiment, &sums, control)?;
    let report = match &options.report {
        Some(dir) => Some(report::write(dir, &analysis, &ReadReport::default())?),
        None => None,
    };
    Ok(Ab {
        tables: Tables::Notebook(analysis),
        report,
        notes,
    })
}

/// An [`Analysis`] with no records or sessions: what a table computed from
/// aggregates has (the report then has no per-session charts).
fn aggregate_analysis(experiment: &str, control: u8, arms: usize) -> Analysis {
    Analysis {
        table: ab::AbTable {
            experiment: experiment.to_string(),
            control,
            arms: Vec::new(),
            rows: Vec::new(),
            srm: ab::srm(&[]),
        },
        records: Vec::new(),
        sessions: Vec::new(),
        session_report: Default::default(),
        events_without_arm: 0,
        arms,
        misassigned_users: 0,
    }
}

/// The extended analysis: success metrics and guardrails, CUPED's fits,
/// the daily looks.
fn run_extended(
    options: &Options,
    analysis: Analysis,
    days: &Days,
    read_report: &ReadReport,
    mut notes: Notes,
) -> Result<Ab> {
    let flags = &options.extended;
    if !(flags.mixing > 0.0 && flags.mixing.is_finite()) {
        bail!(
            "--mixing must be a positive fraction of the control mean (e.g. 0.05), got {}",
            flags.mixing
        );
    }
    let computing = extended::Options {
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
        breakdown: flags.breakdown.asked()?,
        ..flags.chosen()
    };
    let pre = if flags.pre.is_empty() {
        None
    } else {
        let input = Input {
            logs: flags.pre.clone(),
            threads: options.input.threads,
        };
        let logs = read_logs(&input, None, &mut notes)?;
        Some(PrePeriod::from_logs(logs.records, &logs.days).context("--pre")?)
    };
    let result = extended::analyze(
        &analysis.records,
        &analysis.sessions,
        days,
        pre.as_ref(),
        analysis.arms,
        analysis.table.control,
        &computing,
    )?;
    notes.info(&analysis.session_report);
    let report = match &options.report {
        Some(dir) => Some(report::extended::write(
            dir,
            &analysis,
            &result,
            read_report,
        )?),
        None => None,
    };
    Ok(Ab {
        tables: Tables::Metrics {
            analysis,
            result: Box::new(result),
        },
        report,
        notes,
    })
}

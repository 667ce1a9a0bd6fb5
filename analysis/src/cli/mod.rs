//! The `analysis` command line, as a library module so other programs (the
//! simulator's end-to-end `sim experiment`) can run it exactly as the binary
//! does. See `analysis --help` and each subcommand's `--help`.
//!
//! This module holds what every subcommand shares: the parser ([`Cli`]), the
//! dispatch ([`run`]), the `--logs` input and the notes and warnings on
//! stderr. Each subcommand's flags and run function live in its own file
//! (`ab.rs`, `train.rs`, `eval.rs`, `synth.rs`), so a flag sits next to the
//! code that reads it; the subcommands' long help stays on `Command`, where
//! `analysis --help` lists them.

mod ab;
mod eval;
mod export;
mod power;
mod synth;
mod train;

use anstream::eprintln;
use anstyle::{AnsiColor, Style};
use anyhow::{bail, Result};
pub use clap::Parser;
use clap::{Args, Subcommand};

use crate::logs::{self, Logs, ReadOptions};
use crate::sessions::{self, Session, SessionReport};
use ab::AbArgs;
use eval::EvalArgs;
use export::ExportArgs;
use power::PowerArgs;
use synth::SynthArgs;
use tally::progress;
use train::TrainArgs;

#[derive(Parser)]
#[command(
    name = "analysis",
    version,
    about = "A/B analysis, model training and offline evaluation from botify event logs",
    long_about = "A/B analysis, model training and offline evaluation from botify event logs.\n\n\
        Logs are botify's JSON lines (one per answered /next and /last). --logs takes files, \
        folders (searched recursively for *.jsonl*, so rotated and .gz files are included) and \
        quoted globs, several at once: one folder per replica is fine. Broken lines are counted \
        and reported, never fatal.",
    after_help = "Examples:\n  \
        analysis ab --logs 'log/**/*.jsonl*' --experiment ALL --report reports/all\n  \
        analysis train --logs log/ --out data/models --model all\n  \
        analysis eval --logs log/ --models data/models --k 10,50 --catalog data/world/tracks.jsonl"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A/B table of one experiment: five user-level metrics, Welch 95% CIs, SRM check.
    #[command(
        long_about = "A/B table of one experiment, computed as the analysts' notebook does.\n\n\
        Sessions end at `last`; per user per arm: time, sessions, mean_request_latency, \
        mean_tracks_per_session, mean_time_per_session. Each treatment vs control: effect in % of \
        the control mean with a Welch 95% confidence interval (Welch-Satterthwaite dof, Student t \
        quantile); significant when the interval excludes 0. A chi-square sample-ratio-mismatch \
        check compares users per arm with the configured uniform split and warns when p < 0.001. \
        Sessions still open when the log ends are left out and counted.\n\n\
        Learning curves: with --per-day, each --logs folder must hold one subfolder per day, \
        LOGDIR/day-1, LOGDIR/day-2, … (as `sim run --in-process --days N` writes them; a day \
        present under several --logs folders reads them all). Each day is analysed on its own, \
        as above, in numeric day order; the output is one row per (day, arm): users, the arm \
        mean of mean_time_per_session, and each treatment's effect vs the control with its \
        Welch 95% interval (empty for the control; JSON: an array of these rows), then the SRM \
        summary of each day. --report draws the learning curve (one line per arm over the days) \
        and the daily effects with their intervals.",
        after_help = "Examples:\n  \
        analysis ab --logs 'log/**/*.jsonl*' --experiment ALL --report reports/all\n  \
        analysis ab --logs log/ --experiment ALL --per-day --report reports/learning"
    )]
    Ab(AbArgs),
    /// Train the models botify serves: popularity, co-listening and ALS tables, the
    /// learned embedding and session_knn's recent sessions.
    #[command(
        long_about = "Train the models botify loads from its --models folder.\n\n\
        Always writes top_tracks.json (track ids by total listen time, most popular first). \
        --model colisten writes item2item.jsonl: tracks liked in the same session (within \
        --window likes) earn each other their listen time, a skip after a like costs the pair \
        skip_weight, and a pair is served only with at least --min-evidence net evidence, \
        ranked by S(a,b) / popularity(b)^alpha; below the threshold botify keeps its catalog \
        fallback. --model als writes item2item_als.jsonl: nearest tracks by cosine of \
        implicit-ALS item factors (user x track listen time). --model embedding writes \
        embedding.jsonl: item2vec vectors over tracks, artists and genres (needs --catalog) \
        with each track's nearest neighbours. --model session-knn writes sessions.jsonl: the \
        latest --keep-sessions sessions with a like. --model all (the default) writes \
        everything. Files are written to a temporary file and renamed, so a service \
        reloading mid-write never reads half a file."
    )]
    Train(TrainArgs),
    /// Offline next-track precision/recall/F1/NDCG@k of trained tables and of botify's
    /// recommenders on held-out sessions.
    #[command(long_about = "Offline next-track evaluation on held-out sessions.\n\n\
        The latest --holdout fraction of sessions (by start time) is held out; for each track \
        played in them, each model proposes its list (minus tracks already heard in the session) \
        and is scored on whether the next track, if listened at least --liked, is in its top k. \
        Train on the same logs with the same --holdout so the held-out sessions were not seen.\n\n\
        Models are the trained tables in --models (top_tracks.json as `popularity`, every \
        item2item*.jsonl by its name) and botify's own recommenders (--recommenders, by their \
        experiment names, default parameters), run by the code that serves traffic: each reads \
        --catalog and the --models folder as botify loads it, and gets the state botify's store \
        would hold (the session's listens up to and including the current one; no long-term \
        profile). Its list is its successive choices: `recommend` is called up to k times, each \
        pick added to the heard tracks, until it has none. Random choices use a generator seeded \
        from --seed per query, so runs are reproducible on any number of threads. Recommenders \
        are scored on the first --max-queries queries in session order (tables on all of them). \
        Without the catalog file only the tables are evaluated, with a warning.")]
    Eval(EvalArgs),
    /// Export the logs as a Parquet dataset partitioned by day and experiment arm, for
    /// DuckDB, Spark and other big-data tools.
    #[command(
        long_about = "Export the logs as a Parquet dataset for DuckDB, Spark, pandas and other \
        big-data tools.\n\n\
        Every valid event becomes one row with a typed column per field: message, timestamp \
        (UTC milliseconds), user (u64), track (u32), time, latency (f64), recommendation \
        (u32, null on `last`), experiments (map of experiment name to arm label), \
        recommender (string, may be null), fallback (bool), plus seq, the event's position in \
        reading order (files sorted by path, then line order), which breaks timestamp ties as \
        `ab` does. Broken lines are counted and reported, as by every command.\n\n\
        Files are partitioned Hive-style by day and by the arm of one experiment: \
        DIR/day=2026-01-01/MEMORY=T2/part-00000.parquet. An event's day is its day-<n> log \
        folder when it has one (simulated day n is 2026-01-01 plus n - 1 days), else the UTC \
        date of its timestamp. Events without the partition experiment go to \
        NAME=__HIVE_DEFAULT_PARTITION__, which Spark and DuckDB read as NULL. The export is \
        written beside DIR under a temporary name and renamed into place at the end, so \
        readers never see half of it.",
        after_help = "Examples:\n  \
        analysis export --format parquet --out export/ --logs 'log/**/*.jsonl*'\n  \
        analysis export --out export/ --logs log/loop --partition-experiment LEARN --overwrite\n\n\
        Then, in DuckDB:\n  \
        SELECT day, MEMORY, count(*) FROM read_parquet('export/**/*.parquet', \
        hive_partitioning = true) GROUP BY ALL ORDER BY ALL;"
    )]
    Export(ExportArgs),
    /// Minimum detectable effect per metric for N users over D days, from the variance
    /// of each metric in pre-period logs.
    #[command(
        long_about = "Minimum detectable effect (MDE) per metric for an experiment of \
        --users users over --days days, split evenly into --arms arms, at two-sided level \
        --alpha with --power.\n\n\
        Each metric's mean and variance over users are measured on the logs' first --days days \
        (day-<n> folders, else UTC days): MDE = (z(1 - alpha/2) + z(power)) x sd x \
        sqrt(2 / users per arm); mde_percent is MDE over the mean. Ratio metrics use their \
        delta-method variance. CUPED shrinks the MDE by sqrt(1 - variance reduction), which \
        `ab --start` reports."
    )]
    Power(PowerArgs),
    /// Write synthetic botify logs (several replicas, rotated files), for benchmarks and tests.
    Synth(SynthArgs),
}

#[derive(Args)]
struct Input {
    /// Log files, folders or quoted globs (e.g. 'log/**/*.jsonl*'); several allowed.
    #[arg(long, required = true, num_args = 1.., value_name = "PATH|GLOB")]
    logs: Vec<String>,
    /// Worker threads (default: every core).
    #[arg(long, default_value_t = logs::default_threads(), value_parser = clap::value_parser!(usize))]
    threads: usize,
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Ab(args) => ab::run_ab(args),
        Command::Train(args) => train::run_train(args),
        Command::Eval(args) => eval::run_eval(args),
        Command::Export(args) => export::run_export(args),
        Command::Power(args) => power::run_power(args),
        Command::Synth(args) => synth::run_synth(args),
    }
}

fn note(text: impl std::fmt::Display) {
    let style = Style::new().dimmed();
    eprintln!("{style}{text}{style:#}");
}

fn warn(text: impl std::fmt::Display) {
    let style = AnsiColor::Red.on_default().bold();
    eprintln!("{style}WARNING: {text}{style:#}");
}

fn read_logs(input: &Input, experiment: Option<&str>) -> Result<Logs> {
    let paths = logs::resolve(&input.logs)?;
    let options = ReadOptions {
        experiment: experiment.map(str::to_string),
        threads: input.threads.max(1),
        progress: true,
        ..ReadOptions::default()
    };
    let logs = logs::read(&paths, &options)?;
    note(&logs.report);
    if logs.records.is_empty() {
        bail!(
            "no valid events in {} files ({} broken lines): are these botify event logs?",
            logs.report.files,
            logs.report.broken()
        );
    }
    Ok(logs)
}

/// Records → sorted → sessions, for train and eval (no experiment).
fn load_sessions(input: &Input) -> Result<(Vec<logs::Record>, Vec<Session>, SessionReport)> {
    let mut records = read_logs(input, None)?.records;
    let spinner = progress::spinner("sessionizing");
    sessions::sort(&mut records);
    let (sessions, report) = sessions::sessionize(&records);
    spinner.finish_and_clear();
    note(&report);
    if sessions.is_empty() {
        bail!("the logs hold no closed session (no `last` event): nothing to learn from");
    }
    Ok((records, sessions, report))
}

fn check_holdout(holdout: f64) -> Result<()> {
    if !(0.0..1.0).contains(&holdout) {
        bail!("--holdout must be in 0 ≤ h < 1 (a fraction of sessions), got {holdout}");
    }
    Ok(())
}

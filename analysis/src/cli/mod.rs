//! The `analysis` command line: parsing into [`crate::commands`]' options,
//! and printing what the commands return. A library module so other
//! programs (the simulator's `sim experiment`) print an analysis exactly as
//! the binary does. See `analysis --help` and each subcommand's `--help`.
//!
//! This module holds what every subcommand shares: the parser ([`Cli`]), the
//! dispatch ([`run`]) and the notes and warnings on stderr ([`print_notes`]).
//! Each subcommand's call and printing live in its own file (`ab.rs`, `train.rs`,
//! `eval.rs`, `export.rs`, `ope.rs`, `power.rs`, `synth.rs`); its flags are its
//! options struct in [`crate::commands`], plus the output format where it
//! has one. The subcommands' long help stays on `Command`, where
//! `analysis --help` lists them.

pub mod ab;
mod eval;
mod export;
mod ingest;
mod ope;
mod power;
mod synth;
pub mod train;

use std::time::Instant;

use anstream::eprintln;
use anstyle::{AnsiColor, Style};
use anyhow::Result;
pub use clap::Parser;
use clap::Subcommand;

use crate::commands::{Note, Notes};
use ab::AbArgs;
use eval::EvalArgs;
use ope::OpeArgs;
use power::PowerArgs;

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
        analysis eval --logs log/ --models data/models --k 10,50 --catalog data/world/tracks.jsonl\n  \
        analysis ope --logs log/ --models data/models --config experiments.toml --target memory"
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
        summary of each day. In the terminal and Markdown, then, whether listeners came back: \
        return_d1, active_days and time_per_day per arm over the whole run (every day's logs \
        together, as --metrics return_d1,active_days,time_per_day analyses them). --report \
        draws the learning curve (one line per arm over the days) and the daily effects with \
        their intervals, and adds the whole run's table.",
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
    Train(crate::commands::train::Options),
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
        Without the catalog file only the tables are evaluated, with a warning.\n\n\
        With --counterfactual ARM..., each arm also gets its counterfactual score: what it would \
        have earned on the same held-out sessions (all of them with --holdout 0). The simulated \
        estimate serves the arm, with botify's own code, to a listener learned from --models \
        and the held-out logs (sessions start on the held-out first tracks; a track is heard for \
        the listen curve's expected time; the listener stays as often as the logs show after a \
        listen that long), and the arms are ranked by it. Beside it, `analysis ope`'s SNIPS \
        estimates from the logged propensities, for the first pick and for the mean time per \
        session, with intervals, effective sample sizes and (with --config) the share outside \
        the logging arm's support; they are trusted only when both pass `analysis ope`'s checks, \
        which in practice holds for arms close to the logging arm only.")]
    Eval(EvalArgs),
    /// Export the logs as a Parquet dataset partitioned by day and experiment arm, for
    /// DuckDB, Spark and other big-data tools.
    #[command(
        long_about = "Export the logs as a Parquet dataset for DuckDB, Spark, pandas and other \
        big-data tools.\n\n\
        Every valid event becomes one row with a typed column per field: message, timestamp \
        (UTC milliseconds), user (u64), track (u32), time, latency (f64), recommendation \
        (u32, null on `last`), propensity (f64, null on `last` and in older logs), experiments \
        (map of experiment name to arm label), \
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
    Export(crate::commands::export::Options),
    /// Collect botify's event streams (--log-sink redis-stream) into JSON Lines files, each
    /// line once.
    #[command(
        long_about = "Collect botify's event streams (--log-sink redis-stream) into the JSON \
        Lines files every other command reads.\n\n\
        Reads the namespace's streams as one consumer of a consumer group, appends each line to \
        events-<start ms>-<pid>-<seq>.jsonl files in --out, fsyncs them, and only then \
        acknowledges and deletes the entries: a reader killed before that reads them again \
        when started under the same --consumer. Lines are kept by their id, and the ids \
        already in --out are loaded first, so a line delivered twice is written once. Without \
        --follow it stops once the streams hold nothing new.",
        after_help = "Examples:\n  \
        analysis ingest --redis-url redis://127.0.0.1:6379 --out log/ingested --follow\n  \
        analysis ingest --redis-cluster --redis-url redis://10.0.0.1:7000,redis://10.0.0.2:7001 --out log/ingested\n  \
        analysis ab --logs 'log/ingested/*.jsonl' --experiment ALL"
    )]
    Ingest(crate::commands::ingest::Options),
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
    /// Off-policy evaluation: what a target arm would earn, estimated from the logs of the
    /// arms that served (IPS, SNIPS, doubly robust), with the diagnostics to trust it by.
    #[command(
        long_about = "Off-policy evaluation of target arms from logged propensities \
        (docs/ope.md).\n\n\
        Every /next logs `propensity`, the probability mu(a|x) with which the logging arm served \
        the track a. Each logged request is replayed: the session state botify's store held \
        (the session's listens up to and including the current one; no long-term profile, \
        default filters), the target's candidates and serving distribution there, with botify's \
        own code, giving pi(a|x) and the weight w = min(pi/mu, --clip). The reward of a request \
        is the listened fraction of the served track, reported by the session's next event; \
        sessions still open when the log ends are left out.\n\n\
        Rewards: first_pick is the listened fraction of each session's first recommendation, \
        whose context is the listener's own first track: a true contextual bandit, where IPS \
        is unbiased. session is the mean time per session (the listener's first track \
        included, as `ab` counts it), by per-decision importance sampling: the reward at step \
        t weighed by the product of the weights up to t, capped at --clip.\n\n\
        Estimators: ips = mean of w r; snips = sum w r / sum w (self-normalised: bounded, less \
        variable, slightly biased); dr = mean of qhat(x, pi) + w (r - qhat(a)) (doubly robust: \
        unbiased if either the propensities or the reward model qhat are right). qhat is each \
        track's mean listened fraction shrunk to its artist's then the global mean, fitted on \
        --reward-logs, or by default cross-fitted on the other half of the users. Intervals \
        are 95% normal ones on per-session contributions (the delta method for snips).\n\n\
        When to trust a number: an effective sample size (sum w)^2 / sum w^2 of at least 100 \
        and 1% of n, little probability outside the logging arm's support (outside_support, \
        which needs --config to replay the logging arm), few weights clipped; each failure is \
        a warning. A target far from the logging arm (greedy against a softmax log, another \
        recommender) has weights near 0 or huge: its estimate is unreliable whatever the \
        interval says. Each row shows the logging policy's own value on the same sessions.",
        after_help = "Examples:\n  \
        analysis ope --logs log/ --models data/models --catalog data/world/tracks.jsonl \
        --config experiments.toml --target memory\n  \
        analysis ope --logs log/ --models data/models --target \
        '{ recommender = \"memory\", policy = \"softmax\", temperature = 0.3 }' --format json \
        --report reports/ope"
    )]
    Ope(OpeArgs),
    /// Write synthetic botify logs (several replicas, rotated files), for benchmarks and tests.
    Synth(crate::commands::synth::Options),
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let started = Instant::now();
    match cli.command {
        Command::Ab(args) => ab::run(args, started),
        Command::Train(options) => train::run(&options, started),
        Command::Eval(args) => eval::run(args, started),
        Command::Export(options) => export::run(&options, started),
        Command::Ingest(options) => ingest::run(&options, started),
        Command::Ope(args) => ope::run(args, started),
        Command::Power(args) => power::run(args),
        Command::Synth(options) => synth::run(&options, started),
    }
}

/// The last line of a command: how long it took.
fn done(started: Instant) {
    note(format!("done in {:.2}s", started.elapsed().as_secs_f64()));
}

/// Prints a command's notes on stderr, warnings in red.
pub fn print_notes(notes: &Notes) {
    for n in &notes.0 {
        match n {
            Note::Info(text) => note(text),
            Note::Warning(text) => warn(text),
        }
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

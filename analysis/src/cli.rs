//! The `analysis` command line, as a library module so other programs (the
//! simulator's end-to-end `sim experiment`) can run it exactly as the binary
//! does. See `analysis --help` and each subcommand's `--help`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anstream::{eprintln, print, println};
use anstyle::{AnsiColor, Style};
use anyhow::{bail, Context, Result};
pub use clap::Parser;
use clap::{Args, Subcommand, ValueEnum};

use crate::logs::{self, Logs, ReadOptions};
use crate::output::{self, Format};
use crate::sessions::{self, Session, SessionReport};
use crate::synth::{self, SynthExperiment, SynthParams};
use crate::train::{self, als, colisten, popularity::Popularity, Data};
use crate::{ab, eval, report};

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
        analysis eval --logs log/ --models data/models --k 10,50"
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
        Sessions still open when the log ends are left out and counted."
    )]
    Ab(AbArgs),
    /// Train top_tracks.json, item2item.jsonl (co-listening) and item2item_als.jsonl (ALS).
    #[command(
        long_about = "Train the models botify loads from its --models folder.\n\n\
        Always writes top_tracks.json (track ids by total listen time, most popular first). \
        --model colisten writes item2item.jsonl: for consecutive tracks a -> b in a session, \
        S(a,b) = sum of b's listen time, ranked by S(a,b) / popularity(b)^alpha. --model als \
        writes item2item_als.jsonl: nearest tracks by cosine of implicit-ALS item factors \
        (user x track listen time). Files are written to a temporary file and renamed, so a \
        service reloading mid-write never reads half a file."
    )]
    Train(TrainArgs),
    /// Offline next-track precision/recall/F1/NDCG@k of trained tables on held-out sessions.
    #[command(long_about = "Offline next-track evaluation on held-out sessions.\n\n\
        The latest --holdout fraction of sessions (by start time) is held out; for each track \
        played in them, each model proposes its list (minus tracks already heard in the session) \
        and is scored on whether the next track, if listened at least --liked, is in its top k. \
        Train on the same logs with the same --holdout so the held-out sessions were not seen.")]
    Eval(EvalArgs),
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

#[derive(Args)]
struct AbArgs {
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
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ModelKind {
    Colisten,
    Als,
    All,
}

#[derive(Args)]
struct TrainArgs {
    #[command(flatten)]
    input: Input,
    /// Output folder (botify's --models).
    #[arg(long, default_value = "data/models", value_name = "DIR")]
    out: PathBuf,
    /// Item-to-item model(s) to train; popularity is always written.
    #[arg(long, value_enum, default_value_t = ModelKind::Colisten)]
    model: ModelKind,
    /// Neighbours kept per track in item-to-item tables.
    #[arg(long, default_value_t = 50)]
    neighbours: usize,
    /// Co-listening: popularity exponent (score = S(a,b) / popularity(b)^alpha).
    #[arg(long, default_value_t = 0.5)]
    alpha: f64,
    /// Leave out the latest fraction of sessions (by start time), for `eval --holdout`.
    #[arg(long, default_value_t = 0.0)]
    holdout: f64,
    /// ALS: latent factors.
    #[arg(long, default_value_t = 32)]
    factors: usize,
    /// ALS: iterations (each solves users, then tracks).
    #[arg(long, default_value_t = 10)]
    iterations: usize,
    /// ALS: L2 regularization.
    #[arg(long, default_value_t = 0.1)]
    regularization: f64,
    /// ALS: confidence slope, c = 1 + confidence × listen time.
    #[arg(long, default_value_t = 10.0)]
    confidence: f64,
    /// ALS: seed of the initial factors.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Args)]
struct EvalArgs {
    #[command(flatten)]
    input: Input,
    /// Folder with top_tracks.json / item2item.jsonl / item2item_als.jsonl.
    #[arg(long, value_name = "DIR")]
    models: PathBuf,
    /// Cut-offs, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10")]
    k: Vec<usize>,
    /// Latest fraction of sessions (by start time) to evaluate on.
    #[arg(long, default_value_t = 0.2)]
    holdout: f64,
    /// A next track counts as relevant when listened at least this fraction.
    #[arg(long, default_value_t = 0.5)]
    liked: f64,
    /// Output format of the table.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Args)]
struct SynthArgs {
    /// Output folder; replicas write into replica-N/ below it.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    #[arg(long, default_value_t = 10_000)]
    users: u64,
    #[arg(long, default_value_t = 16_000)]
    tracks: u32,
    #[arg(long, default_value_t = 2)]
    replicas: usize,
    /// Events per file before rotating.
    #[arg(long, default_value_t = 1_000_000)]
    rotate_events: u64,
    /// Experiments logged with every event: NAME:ARMS[:UPLIFT], repeatable;
    /// treatment arm Tk recommends in-cluster k × UPLIFT more often.
    #[arg(long = "experiment", default_values = ["AA:2", "AB:2:0.05"])]
    experiments: Vec<SynthExperiment>,
    /// Base probability that a recommendation stays in the session's cluster.
    #[arg(long, default_value_t = 0.5)]
    coherence: f64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Ab(args) => run_ab(args),
        Command::Train(args) => run_train(args),
        Command::Eval(args) => run_eval(args),
        Command::Synth(args) => run_synth(args),
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
    let spinner = output::spinner("sessionizing");
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

fn run_ab(args: AbArgs) -> Result<()> {
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
    let logs = read_logs(&args.input, Some(&args.experiment))?;
    let read_report = logs.report;
    let spinner = output::spinner("computing");
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
    let table = analysis.table.to_table();
    let srm = analysis.table.srm_summary();
    match args.format {
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
            note(&srm);
        }
        Format::Json => {
            println!("{}", analysis.table.to_json());
            note(&srm);
        }
    }
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

fn run_train(args: TrainArgs) -> Result<()> {
    let started = Instant::now();
    check_holdout(args.holdout)?;
    if args.neighbours == 0 {
        bail!("--neighbours must be at least 1 (botify serves from these lists)");
    }
    for (flag, value) in [
        ("--alpha", args.alpha),
        ("--confidence", args.confidence),
        ("--regularization", args.regularization),
    ] {
        if !(value.is_finite() && value >= 0.0) {
            bail!("{flag} must be a non-negative number, got {value}");
        }
    }
    let (records, mut sessions, _) = load_sessions(&args.input)?;
    if let Some(cutoff) = sessions::holdout_cutoff(&sessions, args.holdout) {
        sessions.retain(|s| s.start < cutoff);
        note(format!(
            "training on {} sessions that start before {cutoff} (epoch ms); the rest is held out",
            sessions.len()
        ));
    }
    let data = Data {
        records: &records,
        sessions: &sessions,
    };
    let threads = args.input.threads.max(1);
    let pop = Popularity::from_data(data);
    let ranking = pop.ranking();
    let top = args.out.join(train::TOP_TRACKS);
    train::write_top_tracks(&top, &ranking)?;
    note(format!(
        "wrote {} ({} tracks)",
        top.display(),
        ranking.len()
    ));
    if matches!(args.model, ModelKind::Colisten | ModelKind::All) {
        let spinner = output::spinner("co-listening");
        let params = colisten::Params {
            neighbours: args.neighbours,
            alpha: args.alpha,
            threads,
        };
        let table = colisten::build(data, &pop, params);
        spinner.finish_and_clear();
        write_table(&args.out.join(train::ITEM2ITEM), &table)?;
    }
    if matches!(args.model, ModelKind::Als | ModelKind::All) {
        let params = als::Params {
            factors: args.factors,
            iterations: args.iterations,
            regularization: args.regularization,
            alpha: args.confidence,
            seed: args.seed,
            threads,
        };
        let bar = output::steps_bar(2 * args.iterations as u64, "ALS half-steps");
        let model = als::fit(data, &pop.vocab, params, &bar);
        bar.finish_and_clear();
        let bar = output::steps_bar(pop.vocab.len() as u64, "ALS neighbours");
        let table = als::item_table(
            &model.item_factors,
            &pop.vocab,
            args.neighbours,
            threads,
            &bar,
        );
        bar.finish_and_clear();
        write_table(&args.out.join(train::ITEM2ITEM_ALS), &table)?;
    }
    note(format!("done in {:.2}s", started.elapsed().as_secs_f64()));
    Ok(())
}

fn write_table(path: &Path, table: &train::ItemTable) -> Result<()> {
    train::write_item_table(path, table)?;
    let mean = table.iter().map(|r| r.1.len()).sum::<usize>() as f64 / table.len().max(1) as f64;
    note(format!(
        "wrote {} ({} tracks, {mean:.1} neighbours on average)",
        path.display(),
        table.len()
    ));
    Ok(())
}

fn run_eval(args: EvalArgs) -> Result<()> {
    let started = Instant::now();
    check_holdout(args.holdout)?;
    if args.k.is_empty() || args.k.contains(&0) {
        bail!("--k takes positive cut-offs, e.g. --k 10 or --k 5,10,50");
    }
    let models = eval::load_models(&args.models)?;
    let (records, mut sessions, _) = load_sessions(&args.input)?;
    match sessions::holdout_cutoff(&sessions, args.holdout) {
        Some(cutoff) => {
            sessions.retain(|s| s.start >= cutoff);
            note(format!(
                "evaluating on {} held-out sessions starting at or after {cutoff} (epoch ms); \
                 the tables should be trained with the same --holdout",
                sessions.len()
            ));
        }
        None => warn("--holdout 0: evaluating on every session, including those the tables may have been trained on"),
    }
    let rows = eval::evaluate(&records, &sessions, &models, &args.k, args.liked);
    let table = eval::to_table(&rows);
    match args.format {
        Format::Table => print!("{}", table.to_terminal()),
        Format::Markdown => print!("{}", table.to_markdown()),
        Format::Csv => print!("{}", table.to_csv()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
    }
    note(format!("done in {:.2}s", started.elapsed().as_secs_f64()));
    Ok(())
}

fn run_synth(args: SynthArgs) -> Result<()> {
    let started = Instant::now();
    let params = SynthParams {
        events: args.events,
        users: args.users,
        tracks: args.tracks,
        replicas: args.replicas,
        rotate_events: args.rotate_events.max(1),
        experiments: args.experiments,
        coherence: args.coherence,
        seed: args.seed,
        ..SynthParams::default()
    };
    let bar = output::steps_bar(args.events, "events");
    let files = synth::generate(&args.out, &params, &bar)?;
    note(format!(
        "wrote {} events in {} files under {} in {:.2}s",
        args.events,
        files.len(),
        args.out.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

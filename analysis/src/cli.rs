//! The `analysis` command line, as a library module so other programs (the
//! simulator's end-to-end `sim experiment`) can run it exactly as the binary
//! does. See `analysis --help` and each subcommand's `--help`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anstream::{eprintln, print, println};
use anstyle::{AnsiColor, Style};
use anyhow::{bail, Context, Result};
pub use clap::Parser;
use clap::{Args, Subcommand, ValueEnum};

use crate::ab::per_day;
use crate::logs::{self, Logs, ReadOptions};
use crate::output::{Format, Table};
use crate::progress::{self, Unit};
use crate::sessions::{self, Session, SessionReport};
use crate::synth::{self, SynthExperiment, SynthParams};
use crate::train::{self, als, colisten, item2vec, popularity::Popularity, recent_sessions, Data};
use crate::{ab, eval, report};
use botify::catalog::Catalog;

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
    /// Learning curves: analyse each day-<n> subfolder of the --logs folders on its own
    /// and print one row per (day, arm) instead of the table.
    #[arg(long)]
    per_day: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ModelKind {
    Colisten,
    Als,
    Embedding,
    SessionKnn,
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
    #[arg(long, value_enum, default_value_t = ModelKind::All)]
    model: ModelKind,
    /// Neighbours kept per track in item-to-item tables.
    #[arg(long, default_value_t = 50)]
    neighbours: usize,
    /// Co-listening: popularity exponent (score = S(a,b) / popularity(b)^alpha).
    #[arg(long, default_value_t = 0.5)]
    alpha: f64,
    /// Co-listening: least net evidence S(a,b) (sum of co-liked listen time, minus
    /// skip_weight per skip) for b to be served after a; below it botify keeps its
    /// catalog fallback.
    #[arg(long, default_value_t = colisten::Params::default().min_evidence)]
    min_evidence: f64,
    /// Co-listening and embedding: likes at most this far apart in a session pair up.
    #[arg(long, default_value_t = colisten::Params::default().window)]
    window: usize,
    /// Catalog (tracks.jsonl) for the embedding's artist and genre tokens.
    #[arg(long, default_value = "data/world/tracks.jsonl", value_name = "FILE")]
    catalog: PathBuf,
    /// Embedding: vector dimensions.
    #[arg(long, default_value_t = item2vec::Params::default().dim)]
    dim: usize,
    /// Embedding: passes over the sessions.
    #[arg(long, default_value_t = item2vec::Params::default().epochs)]
    epochs: usize,
    /// Embedding: whether two likes of one artist form a positive pair (they
    /// share the artist token anyway).
    #[arg(long, default_value_t = item2vec::Params::default().same_artist_pairs, action = clap::ArgAction::Set)]
    same_artist_pairs: bool,
    /// session_knn: most recent sessions kept.
    #[arg(long, default_value_t = 50_000)]
    keep_sessions: usize,
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
    /// Folder with top_tracks.json / item2item*.jsonl, and whatever else botify loads
    /// from its --models (embedding.jsonl, sessions.jsonl, …) for the recommenders.
    #[arg(long, value_name = "DIR")]
    models: PathBuf,
    /// botify recommenders to evaluate, comma-separated experiment names (default
    /// parameters), or `none` for the tables only.
    #[arg(long, value_delimiter = ',', default_value = eval::DEFAULT_RECOMMENDERS, value_name = "LIST")]
    recommenders: Vec<String>,
    /// botify's catalog (tracks.jsonl), which the recommenders read; when the file is
    /// missing only the tables are evaluated.
    #[arg(long, default_value = "data/world/tracks.jsonl", value_name = "FILE")]
    catalog: PathBuf,
    /// Recommenders are scored on at most this many queries, the first ones in session
    /// order (each costs up to k calls); tables on all.
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    max_queries: u64,
    /// Seed of the recommenders' random choices.
    #[arg(long, default_value_t = 42)]
    seed: u64,
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
        let spinner = progress::spinner("co-listening");
        let params = colisten::Params {
            neighbours: args.neighbours,
            alpha: args.alpha,
            min_evidence: args.min_evidence,
            window: args.window.max(1),
            threads,
            ..colisten::Params::default()
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
        let bar = progress::bar(Unit::Steps, 2 * args.iterations as u64, "ALS half-steps");
        let model = als::fit(data, &pop.vocab, params, &bar);
        bar.finish_and_clear();
        let bar = progress::bar(Unit::Steps, pop.vocab.len() as u64, "ALS neighbours");
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
    let embedding_catalog = match args.model {
        ModelKind::Embedding => Some(Catalog::load(&args.catalog).with_context(|| {
            "the embedding needs the catalog for its artist and genre tokens; \
             pass --catalog FILE (botify's tracks.jsonl)"
        })?),
        ModelKind::All => match Catalog::load(&args.catalog) {
            Ok(catalog) => Some(catalog),
            Err(err) => {
                warn(format!(
                    "skipping the embedding: {err}; pass --catalog FILE (botify's tracks.jsonl) \
                     to train it"
                ));
                None
            }
        },
        _ => None,
    };
    if let Some(catalog) = embedding_catalog {
        let params = item2vec::Params {
            dim: args.dim.max(1),
            epochs: args.epochs.max(1),
            window: args.window.max(1),
            same_artist_pairs: args.same_artist_pairs,
            neighbours: args.neighbours,
            seed: args.seed,
            threads,
            ..item2vec::Params::default()
        };
        let bar = progress::bar(Unit::Steps, params.epochs as u64 + 1, "embedding epochs");
        let embedding = item2vec::fit(data, &catalog, params, &bar);
        bar.finish_and_clear();
        let path = args.out.join(train::EMBEDDING);
        train::write_embedding(&path, &embedding)?;
        note(format!(
            "wrote {} ({} tracks, {} dimensions)",
            path.display(),
            embedding.tracks(),
            embedding.dim
        ));
    }
    if matches!(args.model, ModelKind::SessionKnn | ModelKind::All) {
        let kept = recent_sessions::select(data, args.keep_sessions, botify::models::LIKED.into());
        let path = args.out.join(train::SESSIONS);
        train::write_sessions(&path, &kept)?;
        note(format!(
            "wrote {} ({} sessions)",
            path.display(),
            kept.len()
        ));
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
    if args.max_queries == 0 {
        bail!("--max-queries must be at least 1; use --recommenders none to skip the recommenders");
    }
    let mut names = eval::recommender_names(&args.recommenders)?;
    let catalog = if names.is_empty() {
        None
    } else if args.catalog.exists() {
        Some(Arc::new(Catalog::load(&args.catalog)?))
    } else {
        warn(format!(
            "no catalog at {}: evaluating the trained tables only; pass --catalog FILE \
             (botify's tracks.jsonl) to evaluate the recommenders too",
            args.catalog.display()
        ));
        names.clear();
        None
    };
    let mut models = match &catalog {
        Some(_) => eval::load_tables(&args.models)?,
        None => eval::load_models(&args.models)?,
    };
    if let Some(catalog) = &catalog {
        models.extend(eval::load_recommenders(
            &names,
            Arc::clone(catalog),
            &args.models,
        )?);
    }
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
    if let Some(catalog) = &catalog {
        let (outside, events) = eval::tracks_outside(&records, &sessions, catalog);
        if outside > 0 {
            warn(format!(
                "{outside} of {events} held-out events play tracks not in {}: botify refuses \
                 them, so the recommenders get no list there; is --catalog the world these \
                 logs came from?",
                args.catalog.display()
            ));
        }
        let queries = eval::count_queries(&records, &sessions, args.liked);
        let names = names.join(", ");
        if queries > args.max_queries {
            note(format!(
                "recommenders ({names}) are scored on the first {} of {queries} queries in \
                 session order (--max-queries); the tables on all {queries}",
                args.max_queries
            ));
        } else {
            note(format!(
                "recommenders ({names}) and tables are scored on all {queries} queries \
                 (at most --max-queries {} for recommenders)",
                args.max_queries
            ));
        }
    }
    let options = eval::Options {
        liked: args.liked,
        max_queries: args.max_queries,
        seed: args.seed,
        threads: args.input.threads.max(1),
        progress: true,
    };
    let rows = eval::evaluate(&records, &sessions, &models, &args.k, &options);
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
    let bar = progress::bar(Unit::Steps, args.events, "events");
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

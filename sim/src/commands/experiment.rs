//! `sim experiment`: the whole loop in one command, for a newcomer's first
//! result and for the end-to-end test.
//!
//! 1. generate the default world if it is missing;
//! 2. start botify on a free loopback port (embedded state store, or Redis
//!    with `--redis-url`) with an admin token of our own;
//! 3. simulate a first day of traffic in-process (botify's engine linked in,
//!    writing its own event log), train popularity and the item-to-item
//!    table from that day (`analysis train`), make the service reload them;
//! 4. simulate the experiment day(s) over HTTP against the service;
//! 5. stop the service (flushing its log), print the A/B table of the active
//!    experiment (`analysis ab`) and write the HTML report.
//!
//! Only the experiment days go through the service, so its log holds exactly
//! the traffic the A/B table should read.

use std::path::{Path, PathBuf};
use std::time::Instant;

use analysis::commands::{ab, train, Input};
use analysis::output::Format;
use anyhow::{bail, Context as _, Result};
use clap::Args;
use rand::{Rng, SeedableRng};
use tally::progress::{self, Unit};

use super::Listeners;
use crate::runner::days::describe;
use crate::runner::http::{self, Botify};
use crate::runner::in_process;
use crate::runner::Plan;
use crate::world::{generate, load_world_data, write_world, WorldParams};

/// The experiments file shipped at the repository root, used when
/// `--experiments` does not exist (e.g. when run from another folder).
const SHIPPED_EXPERIMENTS: &str = include_str!("../../../experiments.toml");

/// The whole loop in one command: world (if missing), botify on a free
/// port, a training day, `analysis train`, reload, the experiment day(s)
/// over HTTP, then the A/B table and its HTML report.
#[derive(Debug, Args)]
pub struct ExperimentArgs {
    /// World directory; generated with the default parameters if missing.
    #[arg(long, default_value = "data/world")]
    pub world: PathBuf,

    /// Experiments file; the active experiment is the one analysed. Missing:
    /// the repository's default (C = sticky_artist, T1 = contextual, T2 = memory).
    #[arg(long, default_value = "experiments.toml")]
    pub experiments: PathBuf,

    /// Sessions simulated on the training day (in-process); with dynamics,
    /// the sessions the population is scaled to hold on that first day.
    #[arg(long, default_value_t = 20_000)]
    pub training_episodes: u64,

    /// Sessions per experiment day (over HTTP) with --dynamics none; with
    /// dynamics the population decides how many sessions a day holds.
    #[arg(long, default_value_t = 20_000)]
    pub episodes: u64,

    /// Experiment days, each over HTTP after the training day.
    #[arg(long, default_value_t = 1)]
    pub days: u64,

    /// Keep per-user state in this Redis instead of the embedded store.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// Name of this run: its logs go to log/NAME/, its models to
    /// data/NAME/models, its report to reports/NAME/ (default:
    /// experiment-<epoch ms>, a new name each run).
    #[arg(long)]
    pub name: Option<String>,

    #[command(flatten)]
    pub listeners: Listeners,
}

/// Where one run writes.
struct RunDirs {
    training_log: PathBuf,
    service_log: PathBuf,
    models: PathBuf,
    report: PathBuf,
}

impl RunDirs {
    fn new(name: &str) -> RunDirs {
        RunDirs {
            training_log: PathBuf::from("log").join(name).join("training"),
            service_log: PathBuf::from("log").join(name).join("service"),
            models: PathBuf::from("data").join(name).join("models"),
            report: PathBuf::from("reports").join(name),
        }
    }
}

fn step(text: &str) {
    eprintln!("==> {text}");
}

fn ensure_world(dir: &Path) -> Result<()> {
    if dir.join(crate::world::TRACKS_FILE).exists() {
        return Ok(());
    }
    step(&format!(
        "generating the default world in {}",
        dir.display()
    ));
    let params = WorldParams::default();
    let data = generate(&params, true)?;
    write_world(dir, &data, true)
}

fn experiments_file(requested: &Path, run_dir: &Path) -> Result<PathBuf> {
    if requested.exists() {
        return Ok(requested.to_path_buf());
    }
    let shipped = run_dir.join("experiments.toml");
    std::fs::create_dir_all(run_dir)?;
    std::fs::write(&shipped, SHIPPED_EXPERIMENTS)?;
    eprintln!(
        "{} not found; using the shipped default, copied to {}",
        requested.display(),
        shipped.display()
    );
    Ok(shipped)
}

pub fn run(args: ExperimentArgs) -> Result<()> {
    let started = Instant::now();
    if args.episodes == 0 || args.training_episodes == 0 {
        bail!("--episodes and --training-episodes must be at least 1");
    }
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("experiment-{}", botify::events::now_millis()));
    let dirs = RunDirs::new(&name);
    ensure_world(&args.world)?;
    let mut days = args
        .listeners
        .days(load_world_data(&args.world)?, args.training_episodes)?;
    let experiments = experiments_file(&args.experiments, &PathBuf::from("data").join(&name))?;
    let active = botify::experiments::Experiments::load(&experiments)?.active;

    let mut config =
        botify::config::Config::for_catalog(args.world.join(crate::world::TRACKS_FILE));
    config.port = 0;
    config.host = "127.0.0.1".into();
    config.experiments = experiments.clone();
    config.models = dirs.models.clone();
    config.log_dir = dirs.service_log.clone();
    config.redis_url = args.redis_url.clone();
    config.redis_namespace = format!("botify-{name}");
    let token = format!("{:032x}", rand::rngs::StdRng::from_entropy().gen::<u128>());
    config.admin_token = Some(token.clone());
    config.workers = Some(2);
    // The simulator stamps its requests with its own clock, so the service
    // log reads like the simulated days.
    config.simulated_clock = true;

    step(&format!(
        "starting botify (state in {})",
        if args.redis_url.is_some() {
            "Redis"
        } else {
            "memory"
        }
    ));
    let service = botify::app::Background::start(config.clone())?;
    let base = format!("http://127.0.0.1:{}", service.port);
    eprintln!(
        "botify listening on {base}, experiment {active}, logs in {}",
        dirs.service_log.display()
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    step(&format!(
        "day 0: {} training sessions in-process, log in {}",
        args.training_episodes,
        dirs.training_log.display()
    ));
    let mut offline = config.clone();
    offline.redis_url = None;
    let engine = botify::app::build_engine(&offline, None)?;
    let (work, counts) = days.plan(0, Plan::day(args.listeners.seed, 0, args.training_episodes));
    if let Some(counts) = counts {
        eprintln!("{}", describe("day 0", &counts));
    }
    let (summary, outcomes, _) = in_process::run_logged(
        days.world(),
        &engine,
        &runtime,
        work,
        &dirs.training_log,
        offline.log_max_bytes,
        "day 0",
    )?;
    days.settle(0, outcomes);
    println!("{}", summary.report("day 0 (training)"));
    drop(engine);

    step(&format!("training on day 0 into {}", dirs.models.display()));
    let trained = train::run(&train::Options {
        input: Input::new([dirs.training_log.display()]),
        out: dirs.models.clone(),
        catalog: args.world.join(crate::world::TRACKS_FILE),
        ..train::Options::default()
    })?;
    analysis::cli::train::print(&trained);

    let botify = Botify::new(&base, args.listeners.concurrency);
    runtime.block_on(async {
        let reloaded = botify.reload(&token).await?;
        eprintln!("botify reloaded: {reloaded}");
        for day in 1..=args.days {
            let label = format!("day {day}");
            let released = days.release(day)?;
            for track in &released {
                botify.add_track(&token, track).await?;
            }
            // Static model: fresh listeners' sessions after the training day's.
            let plan = Plan {
                seed: args.listeners.seed,
                first: args.training_episodes + (day - 1) * args.episodes,
                episodes: args.episodes,
            };
            let (work, counts) = days.plan(day, plan);
            if let Some(counts) = counts {
                eprintln!("{}", describe(&label, &counts));
            }
            let sessions = work.sessions();
            step(&format!(
                "{label}: {sessions} sessions over HTTP, {} new tracks",
                released.len()
            ));
            let bar = progress::bar(Unit::Sessions, sessions, label.clone());
            let result = http::run(
                days.world(),
                work,
                &botify,
                args.listeners.concurrency,
                &bar,
            )
            .await;
            bar.finish_and_clear();
            match result {
                Ok((summary, outcomes)) => {
                    days.settle(day, outcomes);
                    println!("{}", summary.report(&label));
                }
                Err(stopped) => bail!(
                    "{label} stopped after {} of {sessions} sessions: {:#}",
                    stopped.completed,
                    stopped.error
                ),
            }
        }
        anyhow::Ok(())
    })?;
    let written = service.stop().context("stopping botify")?;
    eprintln!(
        "botify stopped; {written} event lines in {}",
        dirs.service_log.display()
    );

    step(&format!("A/B table of experiment {active}"));
    let ab = ab::run(&ab::Options {
        input: Input::new([dirs.service_log.display()]),
        experiment: active,
        config: Some(experiments),
        report: Some(dirs.report.clone()),
        ..ab::Options::default()
    })?;
    analysis::cli::ab::print(&ab, Format::Table);
    eprintln!(
        "done in {:.0} s: report {}/index.html, logs log/{name}/, models {}",
        started.elapsed().as_secs_f64(),
        dirs.report.display(),
        dirs.models.display()
    );
    Ok(())
}

//! `sim run`: play sessions against botify (over HTTP or in-process) or a
//! simulator-side agent, for one or more simulated days.

use std::path::{Path, PathBuf};
use std::time::Instant;

use analysis::commands::{train, Input};
use anyhow::{bail, Context as _, Result};
use clap::{Args, ValueEnum};
use tally::progress::{self, Unit};

use super::Listeners;
use crate::agents::{Agent, ItemOracleAgent, OracleAgent, RandomAgent};
use crate::dynamics::Dynamics;
use crate::runner::days::{describe, Days};
use crate::runner::http::{self, Botify};
use crate::runner::in_process::{self, Policy};
use crate::runner::Work;
use crate::world::load_world_data;

/// Simulator-side agents that replace botify entirely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AgentName {
    /// Uniformly random unheard tracks: the floor.
    Random,
    /// Knows the hidden embeddings; picks the highest expected listen time: the ceiling.
    Oracle,
    /// Knows the hidden track embeddings but not the listener; infers the
    /// session from feedback: the bound of a perfectly learned item model.
    ItemOracle,
}

/// Play listening sessions against botify (over HTTP, or in-process with
/// --in-process) or a simulator-side agent (--agent), for one or more
/// days, and print the mean and standard error of reward and steps.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// World directory written by `sim world`.
    #[arg(long, default_value = "data/world")]
    pub world: PathBuf,

    /// botify's base URL (HTTP mode).
    #[arg(long, default_value = "http://127.0.0.1:5001")]
    pub url: String,

    /// Run botify's recommenders inside the simulator instead of over HTTP
    /// (embedded state store; writes the same event log as the service).
    #[arg(long, conflicts_with = "agent")]
    pub in_process: bool,

    /// Play against a simulator-side agent instead of botify (no HTTP, no log).
    #[arg(long, value_enum)]
    pub agent: Option<AgentName>,

    /// Experiments file for --in-process.
    #[arg(long, default_value = "experiments.toml")]
    pub experiments: PathBuf,

    /// Trained models folder for --in-process.
    #[arg(long, default_value = "data/models")]
    pub models: PathBuf,

    /// Event log folder for --in-process (with several --days, one `day-N` folder per day).
    #[arg(long, default_value = "log/in-process")]
    pub log_dir: PathBuf,

    /// Sessions per day; with dynamics, the sessions the population is
    /// scaled to hold on its first day (later days' count is an outcome:
    /// listeners return, or not, depending on what they were served).
    #[arg(long, default_value_t = 20_000)]
    pub episodes: u64,

    /// Simulated days.
    #[arg(long, default_value_t = 1)]
    pub days: u64,

    /// Shell command run between days (e.g. retraining); DAY is set to the day just finished.
    #[arg(long)]
    pub between_days: Option<String>,

    /// After the between-days command, ask botify to reload its models
    /// (over HTTP this needs --admin-token).
    #[arg(long)]
    pub reload: bool,

    /// botify's admin token, for --reload over HTTP.
    #[arg(long, env = "BOTIFY_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Close the loop: every N days (the bare flag: every day), run `analysis
    /// train` on the logs so far (see --train-window), write the models to
    /// --models, and make botify reload them before the next day. Over HTTP
    /// this needs --train-logs (botify's --log-dir), --admin-token, and
    /// --models pointing at botify's --models folder.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "1",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub retrain_every: Option<u64>,

    /// Days of logs each retraining reads, in-process: the latest N day
    /// folders (0, the default: every day so far). Every day's logs teach
    /// more than the latest few: on `LOOP` the latest 3 fall 5–8% behind by
    /// day 14 (README, "The learning loop"); a window keeps training time
    /// flat on long runs. Over HTTP botify's whole --train-logs folder is
    /// read.
    #[arg(long, value_name = "DAYS", default_value_t = 0)]
    pub train_window: u64,

    /// botify's event-log folder, for --retrain-every over HTTP.
    #[arg(long, value_name = "DIR")]
    pub train_logs: Option<PathBuf>,

    #[command(flatten)]
    pub listeners: Listeners,
}

/// The catalog retraining reads: the world's own file until tracks are
/// released, then the grown catalog, written next to the logs.
fn training_catalog(args: &RunArgs, days: &Days) -> Result<PathBuf> {
    if !days.released_any() {
        return Ok(args.world.join(crate::world::TRACKS_FILE));
    }
    let grown = args.log_dir.join("catalog.jsonl");
    crate::world::write_catalog(&grown, days.tracks())?;
    Ok(grown)
}

/// Whether the models are retrained after `day` (1-based) finished.
fn retrain_after(args: &RunArgs, day: u64) -> bool {
    args.retrain_every
        .is_some_and(|every| day.is_multiple_of(every))
}

/// `analysis train` on `logs` into --models, in-process.
fn retrain(args: &RunArgs, logs: &[PathBuf], catalog: &Path, day: u64) -> Result<()> {
    eprintln!(
        "day {day}: retraining on {} into {}",
        logs.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        args.models.display()
    );
    let options = train::Options {
        input: Input::new(logs.iter().map(|p| p.display())),
        out: args.models.clone(),
        catalog: catalog.to_path_buf(),
        ..train::Options::default()
    };
    let trained = train::run(&options).with_context(|| format!("retraining after day {day}"))?;
    analysis::cli::train::print(&trained);
    Ok(())
}

/// Between `day` (1-based, just finished) and the next: the between-days
/// command, then retraining when one is due. Returns whether botify is to
/// reload its models.
fn between_days(args: &RunArgs, days: &Days, day: u64) -> Result<bool> {
    if let Some(hook) = &args.between_days {
        run_hook(hook, day)?;
    }
    let retrained = retrain_after(args, day);
    if retrained {
        let logs = if args.in_process {
            training_days(args, day)
        } else {
            args.train_logs.clone().into_iter().collect()
        };
        let catalog = training_catalog(args, days)?;
        retrain(args, &logs, &catalog, day)?;
    }
    Ok(args.reload || retrained)
}

/// The day folders a retraining after `day` reads: the latest --train-window.
fn training_days(args: &RunArgs, day: u64) -> Vec<PathBuf> {
    let first = match args.train_window {
        0 => 1,
        window => day.saturating_sub(window - 1).max(1),
    };
    (first..=day)
        .map(|d| args.log_dir.join(format!("day-{d}")))
        .collect()
}

fn run_hook(command: &str, day: u64) -> Result<()> {
    eprintln!("day {day}: running `{command}`");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("DAY", day.to_string())
        .status()
        .with_context(|| format!("cannot run between-days command `{command}`"))?;
    if !status.success() {
        bail!(
            "between-days command `{command}` failed ({status}); stopping before day {}",
            day + 1
        );
    }
    Ok(())
}

pub fn run(args: RunArgs) -> Result<()> {
    if args.episodes == 0 {
        bail!("--episodes must be at least 1");
    }
    let mut days = args
        .listeners
        .days(load_world_data(&args.world)?, args.episodes)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if let Some(agent) = args.agent {
        let mut agent: Box<dyn Agent> = match agent {
            AgentName::Random => Box::new(RandomAgent),
            AgentName::Oracle => Box::new(OracleAgent::default()),
            AgentName::ItemOracle => Box::new(ItemOracleAgent::default()),
        };
        for day in 0..args.days {
            let label = format!("day {}", day + 1);
            days.release(day)?;
            let work = plan_day(&mut days, day, &label);
            let bar = progress::bar(Unit::Sessions, work.sessions(), label.clone());
            let (summary, outcomes) =
                in_process::play_day(days.world(), work, &mut Policy::Agent(agent.as_mut()), &bar)?;
            bar.finish_and_clear();
            days.settle(day, outcomes);
            println!("{}", summary.report(&label));
        }
        return Ok(());
    }
    if args.in_process {
        return run_in_process(&args, &mut days, &runtime);
    }
    run_over_http(&args, &mut days, &runtime)
}

/// The day's work, with a line on who visits when the population lives.
fn plan_day(days: &mut Days, day: u64, label: &str) -> Work {
    let static_plan = days.static_plan(day);
    let (work, counts) = days.plan(day, static_plan);
    if let Some(counts) = counts {
        eprintln!("{}", describe(label, &counts));
    }
    work
}

fn run_in_process(
    args: &RunArgs,
    days: &mut Days,
    runtime: &tokio::runtime::Runtime,
) -> Result<()> {
    let mut config = botify::config::Config::for_catalog(args.world.join("tracks.jsonl"));
    config.experiments = args.experiments.clone();
    config.models = args.models.clone();
    config.redis_url = None;
    let engine = runtime.block_on(async { botify::app::build_engine(&config, None) })?;
    for day in 0..args.days {
        let label = format!("day {}", day + 1);
        for track in days.release(day)? {
            let id = track.track;
            engine
                .add_track(track)
                .with_context(|| format!("telling botify of released track {id}"))?;
        }
        // One log folder per day when there are several, so each day can
        // be trained on or analysed alone; the state store carries over.
        let log_dir = if args.days > 1 {
            args.log_dir.join(format!("day-{}", day + 1))
        } else {
            args.log_dir.clone()
        };
        let work = plan_day(days, day, &label);
        let (summary, outcomes, written) = in_process::run_logged(
            days.world(),
            &engine,
            runtime,
            work,
            &log_dir,
            config.log_max_bytes,
            &label,
        )?;
        days.settle(day, outcomes);
        println!("{}", summary.report(&label));
        eprintln!("event log: {written} lines in {}", log_dir.display());
        if day + 1 < args.days && between_days(args, days, day + 1)? {
            engine
                .reload_models()
                .context("reloading models between days")?;
        }
    }
    Ok(())
}

fn run_over_http(args: &RunArgs, days: &mut Days, runtime: &tokio::runtime::Runtime) -> Result<()> {
    if (args.reload || args.retrain_every.is_some()) && args.admin_token.is_none() {
        bail!("--reload and --retrain-every over HTTP need --admin-token (or BOTIFY_ADMIN_TOKEN), as configured on botify");
    }
    if args.retrain_every.is_some() && args.train_logs.is_none() {
        bail!("--retrain-every over HTTP needs --train-logs DIR: botify's --log-dir, to train on");
    }
    if args.listeners.dynamics == Dynamics::Full && args.days > 1 && args.admin_token.is_none() {
        bail!(
            "new tracks are released every day after the first, and botify learns of them through \
             POST /admin/tracks: pass --admin-token (or BOTIFY_ADMIN_TOKEN), or --releases-per-day 0"
        );
    }
    let botify = Botify::new(&args.url, args.listeners.concurrency);
    runtime.block_on(async {
        botify.check_reachable().await?;
        if args.listeners.dynamics == Dynamics::Full {
            eprintln!(
                "note: requests carry the simulated time (X-Simulated-Time); botify stamps its log with it only under --simulated-clock"
            );
        }
        for day in 0..args.days {
            let label = format!("day {}", day + 1);
            for track in days.release(day)? {
                let token = args.admin_token.as_deref().unwrap_or_default();
                botify.add_track(token, &track).await?;
            }
            let work = plan_day(days, day, &label);
            let bar = progress::bar(Unit::Sessions, work.sessions(), label.clone());
            let started = Instant::now();
            let expected = work.sessions();
            let result = http::run(days.world(), work, &botify, args.listeners.concurrency, &bar).await;
            bar.finish_and_clear();
            match result {
                Ok((summary, outcomes)) => {
                    days.settle(day, outcomes);
                    println!("{}", summary.report(&label));
                }
                Err(stopped) => {
                    println!("{}", stopped.partial.report(&format!("{label} (partial)")));
                    bail!(
                        "run stopped after {} of {expected} sessions of {label} ({:.1} s): {:#}",
                        stopped.completed,
                        started.elapsed().as_secs_f64(),
                        stopped.error
                    );
                }
            }
            if day + 1 < args.days && between_days(args, days, day + 1)? {
                if let Some(token) = &args.admin_token {
                    let answer = botify.reload(token).await?;
                    eprintln!("botify reloaded models: {answer}");
                }
            }
        }
        anyhow::Ok(())
    })
}

//! `sim run`: play sessions against botify (over HTTP or in-process) or a
//! simulator-side agent, for one or more simulated days.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use clap::{Args, ValueEnum};

use crate::agents::{Agent, OracleAgent, RandomAgent};
use crate::runner::http::{self, Botify};
use crate::runner::in_process::{self, Policy};
use crate::runner::{progress_bar, Plan};
use crate::world::World;

/// Simulator-side agents that replace botify entirely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AgentName {
    /// Uniformly random unheard tracks: the floor.
    Random,
    /// Knows the hidden embeddings; picks the highest expected listen time: the ceiling.
    Oracle,
}

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

    /// Sessions per day.
    #[arg(long, default_value_t = 20_000)]
    pub episodes: u64,

    /// Sessions in flight at once (HTTP mode).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,

    /// Seed of the sessions: the same seed plays the same listeners whatever the concurrency.
    #[arg(long, default_value_t = 31337)]
    pub seed: u64,

    /// Simulated days; each plays --episodes fresh sessions.
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
}

/// Worlds up to this many tracks get every interest's neighbours computed at
/// load (a fraction of a second for the default world), so runs measure
/// listening, not lazy nearest-neighbour searches. Bigger worlds stay lazy.
const PRECOMPUTE_NEIGHBOURS_UP_TO: usize = 200_000;

/// Loads a world with a message naming what to do when it is missing.
pub fn load_world(dir: &Path) -> Result<World> {
    let world = World::load(dir).with_context(|| {
        format!(
            "cannot load the world in {}; generate one with `sim world --out {}`",
            dir.display(),
            dir.display()
        )
    })?;
    if world.num_tracks() <= PRECOMPUTE_NEIGHBOURS_UP_TO {
        world.precompute_interest_neighbours();
    }
    Ok(world)
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
    let world = load_world(&args.world)?;
    if args.episodes == 0 {
        bail!("--episodes must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if let Some(agent) = args.agent {
        let mut agent: Box<dyn Agent> = match agent {
            AgentName::Random => Box::new(RandomAgent),
            AgentName::Oracle => Box::new(OracleAgent::default()),
        };
        for day in 0..args.days {
            let plan = Plan::day(args.seed, day, args.episodes);
            let bar = progress_bar(args.episodes, &format!("day {}", day + 1));
            let summary = in_process::run(&world, plan, &mut Policy::Agent(agent.as_mut()), &bar)?;
            bar.finish_and_clear();
            println!("{}", summary.report(&format!("day {}", day + 1)));
        }
        return Ok(());
    }
    if args.in_process {
        let mut config = botify::config::Config::for_catalog(args.world.join("tracks.jsonl"));
        config.experiments = args.experiments.clone();
        config.models = args.models.clone();
        config.redis_url = None;
        let engine = runtime.block_on(async { botify::app::build_engine(&config, None) })?;
        for day in 0..args.days {
            // One log folder per day when there are several, so each day can
            // be trained on or analysed alone; the state store carries over.
            let log_dir = if args.days > 1 {
                args.log_dir.join(format!("day-{}", day + 1))
            } else {
                args.log_dir.clone()
            };
            let plan = Plan::day(args.seed, day, args.episodes);
            let label = format!("day {}", day + 1);
            let (summary, written) = in_process::run_logged(
                &world,
                &engine,
                &runtime,
                plan,
                &log_dir,
                config.log_max_bytes,
                &label,
            )?;
            println!("{}", summary.report(&label));
            eprintln!("event log: {written} lines in {}", log_dir.display());
            if day + 1 < args.days {
                if let Some(hook) = &args.between_days {
                    run_hook(hook, day + 1)?;
                }
                if args.reload {
                    engine
                        .reload_models()
                        .context("reloading models between days")?;
                }
            }
        }
        return Ok(());
    }
    if args.reload && args.admin_token.is_none() {
        bail!("--reload over HTTP needs --admin-token (or BOTIFY_ADMIN_TOKEN), as configured on botify");
    }
    let botify = Botify::new(&args.url, args.concurrency);
    runtime.block_on(async {
        botify.check_reachable().await?;
        for day in 0..args.days {
            let plan = Plan::day(args.seed, day, args.episodes);
            let bar = progress_bar(args.episodes, &format!("day {}", day + 1));
            let started = Instant::now();
            let result = http::run(&world, plan, &botify, args.concurrency, &bar).await;
            bar.finish_and_clear();
            match result {
                Ok(summary) => println!("{}", summary.report(&format!("day {}", day + 1))),
                Err(stopped) => {
                    println!(
                        "{}",
                        stopped
                            .partial
                            .report(&format!("day {} (partial)", day + 1))
                    );
                    bail!(
                        "run stopped after {} of {} sessions of day {} ({:.1} s): {:#}",
                        stopped.completed,
                        args.episodes,
                        day + 1,
                        started.elapsed().as_secs_f64(),
                        stopped.error
                    );
                }
            }
            if day + 1 < args.days {
                if let Some(hook) = &args.between_days {
                    run_hook(hook, day + 1)?;
                }
                if let (true, Some(token)) = (args.reload, &args.admin_token) {
                    let answer = botify.reload(token).await?;
                    eprintln!("botify reloaded models: {answer}");
                }
            }
        }
        anyhow::Ok(())
    })
}

//! `sim`: generates simulator worlds and checks them against reference agents.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::{Parser, Subcommand};

use sim::agents::{Agent, OracleAgent, RandomAgent, StickyArtistAgent};
use sim::calibration::{play, RANDOM_TARGET, STICKY_EFFECT_TARGET};
use sim::world::{generate, write_world, World, WorldParams};

#[derive(Debug, Parser)]
#[command(name = "sim", version, about = "botify user simulator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Play listening sessions against botify (over HTTP, or in-process with
    /// --in-process) or a simulator-side agent (--agent), for one or more
    /// days, and print the mean and standard error of reward and steps.
    Run(sim::commands::RunArgs),
    /// The whole loop in one command: world (if missing), botify on a free
    /// port, a training day, `analysis train`, reload, the experiment day(s)
    /// over HTTP, then the A/B table and its HTML report.
    Experiment(sim::experiment::ExperimentArgs),

    /// Generate a world: tracks.jsonl, embeddings.npy and users.jsonl in --out.
    ///
    /// Artist popularity is Zipf-distributed; embeddings cluster by genre and
    /// artist; each user has 1..=max-interests interest tracks biased to
    /// popular artists, and listening habits drawn uniformly from the
    /// consume-bias and consume-sharpness ranges. The same seed and sizes give
    /// byte-identical files.
    World {
        /// Directory to write the world to (created if missing).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        params: WorldParams,
    },
    /// Simulate reference agents directly against the user model (no botify)
    /// and compare them with the calibration targets.
    Calibrate {
        /// Directory of a world written by `sim world`.
        #[arg(long)]
        world: PathBuf,
        /// Sessions per agent.
        #[arg(long, default_value_t = 20_000)]
        sessions: u64,
        /// Seed of the session streams (users, interests, budget draws).
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Also simulate the oracle (slower: its sessions are long).
        #[arg(long)]
        oracle: bool,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(args) => sim::commands::run(args),
        Command::Experiment(args) => sim::experiment::run(args),
        Command::World { out, params } => {
            let started = Instant::now();
            let data = generate(&params, true)?;
            write_world(&out, &data, true)?;
            eprintln!(
                "wrote {} tracks by {} artists, {} users (dim {}) to {} in {:.1}s",
                data.tracks.len(),
                params.artist_count(),
                data.users.len(),
                data.dim,
                out.display(),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Calibrate {
            world,
            sessions,
            seed,
            oracle,
        } => {
            let started = Instant::now();
            let world = World::load(&world)?;
            eprintln!(
                "loaded {} tracks, {} users in {:.2}s",
                world.num_tracks(),
                world.num_users(),
                started.elapsed().as_secs_f64()
            );
            let mut agents: Vec<(&str, Box<dyn Agent>)> = vec![
                ("random", Box::new(RandomAgent)),
                ("sticky_artist", Box::new(StickyArtistAgent)),
            ];
            if oracle {
                agents.push(("oracle", Box::new(OracleAgent::default())));
            }
            // Written through a handle so that a closed pipe (`| head`) is an
            // error to report, not a panic as with println!.
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:<14} {:>9} {:>10} {:>9} {:>11} {:>12}",
                "agent", "sessions", "mean_time", "std_err", "mean_steps", "vs_random"
            )?;
            let mut random_mean = None;
            for (name, mut agent) in agents {
                let s = play(&world, agent.as_mut(), sessions, seed)?;
                let mean_time = s.reward.mean();
                let base = *random_mean.get_or_insert(mean_time);
                let listens = s.steps.mean() * s.sessions() as f64;
                writeln!(
                    out,
                    "{name:<14} {:>9} {:>10.4} {:>9.4} {:>11.2} {:>+11.1}%   ({:.0} listens/s)",
                    s.sessions(),
                    mean_time,
                    s.reward.standard_error(),
                    s.steps.mean(),
                    (mean_time / base - 1.0) * 100.0,
                    listens / s.elapsed.as_secs_f64().max(1e-9)
                )?;
            }
            writeln!(
                out,
                "targets: random mean_time in {:?}, sticky_artist vs_random in +{:.0}%..+{:.0}%",
                RANDOM_TARGET,
                STICKY_EFFECT_TARGET.start() * 100.0,
                STICKY_EFFECT_TARGET.end() * 100.0
            )?;
            Ok(())
        }
    }
}

//! `sim calibrate`: the reference agents against the user model, without
//! botify, next to the calibration targets (see [`crate::calibration`]).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use crate::agents::{Agent, ItemOracleAgent, OracleAgent, RandomAgent, StickyArtistAgent};
use crate::calibration::{
    analysts_ab, play, returns, ANALYSTS_RANDOM_TARGET, ANALYSTS_STICKY_EFFECT_TARGET,
};
use crate::world::World;

/// Simulate reference agents directly against the user model (no botify)
/// and compare them with the calibration targets.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Directory of a world written by `sim world`.
    #[arg(long)]
    pub world: PathBuf,
    /// Sessions per agent.
    #[arg(long, default_value_t = 20_000)]
    pub sessions: u64,
    /// Seed of the session streams (users, interests, budget draws).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Days of the analysts' A/B: beyond one, also print how each arm's
    /// listeners of the first day came back (returns and active days).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub days: u64,
    /// Also simulate the two bounds (slower: their sessions are long):
    /// item_oracle, which knows the tracks' true embeddings but must infer
    /// the listener from feedback as a recommender does, and the oracle,
    /// which knows the listener too.
    #[arg(long)]
    pub oracle: bool,
}

pub fn run(args: CalibrateArgs) -> Result<()> {
    let started = Instant::now();
    let world = World::load(&args.world)?;
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
    if args.oracle {
        agents.push(("item_oracle", Box::new(ItemOracleAgent::default())));
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
        let s = play(&world, agent.as_mut(), args.sessions, args.seed)?;
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
        "(the static model's episode reward: first track excluded, sessions independent; \
         the calibration targets are on the analysts' A/B below)"
    )?;
    out.flush()?;

    // The analysts' metric: an A/B through botify's engine, dynamics on.
    let logs = tempfile::tempdir()?;
    let data = crate::world::load_world_data(&args.world)?;
    let ab = analysts_ab(data, args.sessions, args.seed, args.days, logs.path())?;
    writeln!(
        out,
        "analysts' A/B (dynamics on, {} sessions): random mean_time_per_session {:.4}, sticky_artist {:+.1}% [{:+.1}%, {:+.1}%]",
        ab.sessions,
        ab.random,
        ab.sticky_effect * 100.0,
        ab.sticky_interval.0 * 100.0,
        ab.sticky_interval.1 * 100.0
    )?;
    writeln!(
        out,
        "targets: random in {:?}, sticky_artist in +{:.0}%..+{:.0}%",
        ANALYSTS_RANDOM_TARGET,
        ANALYSTS_STICKY_EFFECT_TARGET.start() * 100.0,
        ANALYSTS_STICKY_EFFECT_TARGET.end() * 100.0
    )?;
    if args.days > 1 {
        for (name, arm) in ["random", "sticky_artist"]
            .iter()
            .zip(returns(logs.path(), args.days)?)
        {
            writeln!(
                out,
                "{name:<14} {} listeners on day 1: {:.1}% came back within {} days, {:.3} ± {:.3} active days",
                arm.listeners,
                arm.returned * 100.0,
                args.days,
                arm.active_days.mean(),
                arm.active_days.standard_error()
            )?;
        }
    }
    Ok(())
}

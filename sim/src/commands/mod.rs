//! The `sim` subcommands, one file each: a clap `Args` struct whose doc
//! comment is the command's help, and the command's `run`. `main.rs` only
//! parses, dispatches and prints errors.
//!
//! - `run.rs` — `sim run`: days of sessions against botify or an agent;
//! - `experiment.rs` — `sim experiment`: the whole loop, end to end;
//! - `world.rs` — `sim world`: generate and write a world;
//! - `calibrate.rs` — `sim calibrate`: reference agents vs the targets;
//! - `proof.rs` — `sim proof`: the A/B statistics against simulated truth;
//! - `ope_proof.rs` — `sim ope-proof`: off-policy evaluation against simulated truth;
//! - `truth_models.rs` — `sim truth-models`: models from the hidden truth, for diagnosis.
//!
//! Flags two commands share are one flattened struct here ([`Listeners`]),
//! so they read and default the same in both.

pub mod calibrate;
pub mod experiment;
pub mod ope_proof;
pub mod proof;
pub mod run;
pub mod truth_models;
pub mod world;

use std::path::Path;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};

use crate::dynamics::Dynamics;
use crate::runner::days::Days;
use crate::world::WorldData;

/// Every subcommand, in the order `sim --help` lists them.
#[derive(Debug, Subcommand)]
pub enum Command {
    Run(run::RunArgs),
    Experiment(experiment::ExperimentArgs),
    World(world::WorldArgs),
    Calibrate(calibrate::CalibrateArgs),
    Proof(proof::ProofArgs),
    OpeProof(ope_proof::OpeProofArgs),
    TruthModels(truth_models::TruthModelsArgs),
}

/// How the simulated listeners are played, the same in `sim run` and
/// `sim experiment`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Listeners")]
pub struct Listeners {
    /// The listener model: `full` (a population that lives for days, with
    /// returns, daily rhythm, boredom, drifting tastes and new releases;
    /// events on the simulated clock) or `none` (independent sessions, the
    /// static model; the same logs as before dynamics existed).
    #[arg(long, value_enum, default_value_t = Dynamics::Full)]
    pub dynamics: Dynamics,

    /// New tracks released each day after the first, with --dynamics full
    /// [default: half a percent of the world's catalog]. Over HTTP botify
    /// learns of them through POST /admin/tracks (with the admin token).
    #[arg(long, value_name = "N")]
    pub releases_per_day: Option<usize>,

    /// Sessions in flight at once over HTTP.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,

    /// Seed of the sessions: the same seed plays the same listeners whatever the concurrency.
    #[arg(long, default_value_t = 31337)]
    pub seed: u64,
}

impl Listeners {
    /// The days these listeners live in `data`, `episodes` sessions on the first.
    pub fn days(&self, data: WorldData, episodes: u64) -> Result<Days> {
        Days::new(
            data,
            self.dynamics,
            self.seed,
            episodes,
            self.releases_per_day,
        )
    }
}

/// Writes a proof's result as pretty JSON to `--out`, when given.
pub fn write_out(out: Option<&Path>, value: &impl serde::Serialize) -> Result<()> {
    let Some(path) = out else {
        return Ok(());
    };
    let json = serde_json::to_string_pretty(value)? + "\n";
    std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))
}

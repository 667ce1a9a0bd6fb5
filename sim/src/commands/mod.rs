//! The `sim` subcommands, one file each: a clap `Args` struct whose doc
//! comment is the command's help, and the command's `run`. `main.rs` only
//! parses, dispatches and prints errors.
//!
//! - `run.rs` — `sim run`: days of sessions against botify or an agent;
//! - `experiment.rs` — `sim experiment`: the whole loop, end to end;
//! - `world.rs` — `sim world`: generate and write a world;
//! - `calibrate.rs` — `sim calibrate`: reference agents vs the targets;
//! - `proof.rs` — `sim proof`: the A/B statistics against simulated truth.

pub mod calibrate;
pub mod experiment;
pub mod proof;
pub mod run;
pub mod world;

use clap::{Parser, Subcommand};

/// Every subcommand, in the order `sim --help` lists them.
#[derive(Debug, Subcommand)]
pub enum Command {
    Run(run::RunArgs),
    Experiment(experiment::ExperimentArgs),
    World(world::WorldArgs),
    Calibrate(calibrate::CalibrateArgs),
    Proof(proof::ProofArgs),
}

/// Runs `analysis` with these arguments, in-process, as its binary would:
/// how `sim experiment` and `sim run --retrain-every` train and analyse.
pub fn analysis(args: &[&str]) -> anyhow::Result<()> {
    let argv = std::iter::once("analysis").chain(args.iter().copied());
    analysis::cli::run(analysis::cli::Cli::try_parse_from(argv)?)
}

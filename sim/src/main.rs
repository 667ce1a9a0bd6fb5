//! `sim`: generates simulator worlds, plays listening sessions against botify
//! and runs whole experiments. Each subcommand lives in
//! [`sim::commands`]; this file parses, dispatches and prints errors.

use std::process::ExitCode;

use clap::Parser;

use sim::commands::{calibrate, experiment, ope_proof, proof, run, truth_models, world, Command};

#[derive(Debug, Parser)]
#[command(name = "sim", version, about = "botify user simulator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Run(args) => run::run(args),
        Command::Experiment(args) => experiment::run(args),
        Command::World(args) => world::run(args),
        Command::Calibrate(args) => calibrate::run(args),
        Command::Proof(args) => proof::run(args),
        Command::OpeProof(args) => ope_proof::run(args),
        Command::TruthModels(args) => truth_models::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

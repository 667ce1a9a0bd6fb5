//! `analysis`: A/B tables, model training and offline evaluation from botify's
//! event logs. The command line lives in [`analysis::cli`].

use std::process::ExitCode;

use analysis::cli::{self, Cli, Parser};

fn main() -> ExitCode {
    match cli::run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("analysis: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

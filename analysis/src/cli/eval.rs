//! `analysis eval` on the command line: evaluates, then prints the scores
//! table in the chosen format.

use std::time::Instant;

use anstream::{print, println};
use anyhow::Result;
use clap::Args;

use super::{done, print_notes};
use crate::commands::eval::{self as command, Options};
use crate::eval;
use crate::output::Format;

/// `analysis eval`'s flags: the evaluation, and how to print it.
#[derive(Args)]
pub(super) struct EvalArgs {
    #[command(flatten)]
    options: Options,
    /// Output format of the table.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub(super) fn run(args: EvalArgs, started: Instant) -> Result<()> {
    let evaluation = command::run(&args.options)?;
    print_notes(&evaluation.notes);
    let table = eval::to_table(&evaluation.rows);
    match args.format {
        Format::Table => print!("{}", table.to_terminal()),
        Format::Markdown => print!("{}", table.to_markdown()),
        Format::Csv => print!("{}", table.to_csv()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&evaluation.rows)?),
    }
    done(started);
    Ok(())
}

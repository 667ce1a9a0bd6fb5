//! `analysis ope` on the command line: estimates, then prints the rows in
//! the chosen format.

use std::time::Instant;

use anstream::{print, println};
use anyhow::Result;
use clap::Args;

use super::{done, note, print_notes};
use crate::commands::ope::{self as command, Options};
use crate::ope::to_table;
use crate::output::Format;

/// `analysis ope`'s flags: the evaluation, and how to print it.
#[derive(Args)]
pub(super) struct OpeArgs {
    #[command(flatten)]
    options: Options,
    /// Output format of the rows.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub(super) fn run(args: OpeArgs, started: Instant) -> Result<()> {
    let ope = command::run(&args.options)?;
    print_notes(&ope.notes);
    let table = to_table(&ope.rows);
    match args.format {
        Format::Table => print!("{}", table.to_terminal()),
        Format::Markdown => print!("{}", table.to_markdown()),
        Format::Csv => print!("{}", table.to_csv()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&ope.rows)?),
    }
    if let Some(page) = &ope.report {
        note(format!("report written to {}", page.display()));
    }
    done(started);
    Ok(())
}

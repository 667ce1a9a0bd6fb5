//! `analysis eval` on the command line: evaluates, then prints the scores
//! table in the chosen format, and after it the counterfactual score's
//! ranked table when `--counterfactual` asked for one.

use std::time::Instant;

use anstream::{print, println};
use anyhow::Result;
use clap::Args;

use super::{done, print_notes};
use crate::commands::eval::{self as command, Options};
use crate::eval::{self, counterfactual};
use crate::output::Format;

/// `analysis eval`'s flags: the evaluation, and how to print it.
#[derive(Args)]
pub(super) struct EvalArgs {
    #[command(flatten)]
    options: Options,
    /// Output format of the tables (json: the scores' rows, or with --counterfactual an
    /// object with `rows` and `counterfactual`, the ranked arms).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub(super) fn run(args: EvalArgs, started: Instant) -> Result<()> {
    let evaluation = command::run(&args.options)?;
    print_notes(&evaluation.notes);
    let scored = !args.options.counterfactual.arms.is_empty();
    if args.format == Format::Json {
        let json = if scored {
            serde_json::json!({
                "rows": evaluation.rows,
                "counterfactual": evaluation.counterfactual,
            })
        } else {
            serde_json::to_value(&evaluation.rows)?
        };
        println!("{}", serde_json::to_string_pretty(&json)?);
        done(started);
        return Ok(());
    }
    // With --counterfactual and nothing else to score, its table alone.
    let mut tables = Vec::new();
    if !scored || !evaluation.rows.is_empty() {
        tables.push(eval::to_table(&evaluation.rows));
    }
    if scored {
        tables.push(counterfactual::to_table(&evaluation.counterfactual));
    }
    for (i, table) in tables.iter().enumerate() {
        if i > 0 {
            println!();
        }
        if scored && i + 1 == tables.len() && args.format != Format::Csv {
            println!("counterfactual score (SNIPS on the held-out sessions, ranked by session):");
            if args.format == Format::Markdown {
                println!();
            }
        }
        match args.format {
            Format::Table => print!("{}", table.to_terminal()),
            Format::Markdown => print!("{}", table.to_markdown()),
            Format::Csv | Format::Json => print!("{}", table.to_csv()),
        }
    }
    done(started);
    Ok(())
}

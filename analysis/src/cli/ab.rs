//! `analysis ab` on the command line: analyses, then prints the notebook's
//! table, the per-day rows or the extended analysis, each with its
//! sample-ratio check.

use std::time::Instant;

use anstream::{print, println};
use anyhow::Result;
use clap::Args;

use super::{done, note, print_notes, warn};
use crate::ab::{self, extended::MetricsAnalysis, per_day::PerDay, Analysis};
use crate::commands::ab::{self as command, Ab, Options, Tables};
use crate::output::{Format, Table};

/// `analysis ab`'s flags: the analysis, and how to print it.
#[derive(Args)]
pub(super) struct AbArgs {
    #[command(flatten)]
    options: Options,
    /// Output format of the table.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub(super) fn run(args: AbArgs, started: Instant) -> Result<()> {
    let ab = command::run(&args.options)?;
    print(&ab, args.format);
    done(started);
    Ok(())
}

/// Prints an analysis as `analysis ab` does: notes, the tables in `format`,
/// sample-ratio warnings, the report's page.
pub fn print(ab: &Ab, format: Format) {
    print_notes(&ab.notes);
    match &ab.tables {
        Tables::Notebook(analysis) => print_notebook(analysis, format),
        Tables::PerDay(per_day) => print_per_day(per_day, format),
        Tables::Metrics { analysis, result } => {
            print_extended(&analysis.table.experiment, result, format)
        }
    }
    if let Some(page) = &ab.report {
        note(format!("report: {}", page.display()));
    }
}

/// Prints an A/B table in `format` and its sample-ratio check: after the
/// table on stdout for people (table, markdown), on stderr for machine
/// formats (csv, json), so their stdout stays parseable.
fn print_with_srm(format: Format, table: &Table, json: impl FnOnce() -> String, srm: &str) {
    match format {
        Format::Table => {
            print!("{}", table.to_terminal());
            println!("\n{srm}");
        }
        Format::Markdown => {
            print!("{}", table.to_markdown());
            println!("\n{srm}");
        }
        Format::Csv => {
            print!("{}", table.to_csv());
            note(srm);
        }
        Format::Json => {
            println!("{}", json());
            note(srm);
        }
    }
}

fn print_notebook(analysis: &Analysis, format: Format) {
    print_with_srm(
        format,
        &analysis.table.to_table(),
        || analysis.table.to_json(),
        &analysis.table.srm_summary(),
    );
    if analysis.table.srm.mismatch() {
        warn(format!(
            "sample ratio mismatch in {:?} (p = {:.2e} < {}): do not trust this table",
            analysis.table.experiment,
            analysis.table.srm.p_value,
            ab::SRM_ALPHA
        ));
    }
}

fn print_per_day(result: &PerDay, format: Format) {
    print_with_srm(
        format,
        &result.to_table(),
        || result.to_json(),
        &result.srm_lines().join("\n"),
    );
    // CSV and JSON stay one table each, for machines; `ab --metrics` gives
    // these rows in any format.
    if let (Some(retention), Format::Table | Format::Markdown) = (&result.retention, format) {
        let table = retention.to_table("success");
        println!("\nOver the whole run: do listeners come back?");
        match format {
            Format::Markdown => print!("{}", table.to_markdown()),
            _ => print!("{}", table.to_terminal()),
        }
    }
    let broken = |d: &&ab::per_day::Day| result.split_of(d) == ab::per_day::DaySplit::Broken;
    for day in result.days.iter().filter(broken) {
        warn(format!(
            "sample ratio mismatch in {:?} on day {} (p = {:.2e} < {}): do not trust that day",
            result.experiment,
            day.day,
            day.table.srm.p_value,
            ab::SRM_ALPHA
        ));
    }
}

fn print_extended(experiment: &str, result: &MetricsAnalysis, format: Format) {
    let srm = result.srm.summary();
    match format {
        Format::Json => println!("{}", result.to_json()),
        Format::Csv => {
            let mut all = result.to_table("success");
            all.rows.extend(result.to_table("guardrail").rows);
            print!("{}", all.to_csv());
        }
        format => {
            let render = |t: &Table| match format {
                Format::Markdown => t.to_markdown(),
                _ => t.to_terminal(),
            };
            println!("Success metrics");
            print!("{}", render(&result.to_table("success")));
            if result.rows.iter().any(|r| r.role == "guardrail") {
                println!("\nGuardrails");
                print!("{}", render(&result.to_table("guardrail")));
            }
            if !result.cuped.is_empty() {
                println!("\nCUPED (pre-period covariate per metric)");
                print!("{}", render(&result.cuped_table()));
            }
            if !result.looks.is_empty() {
                println!("\nDaily looks (intervals valid at every look)");
                print!("{}", render(&result.looks_table()));
            }
            for (title, table, lines) in result.breakdown.sections() {
                println!("\n{title}");
                print!("{}", render(&table));
                println!("{}", lines.join("\n"));
            }
            println!("\n{}\n{srm}", result.summary());
        }
    }
    if matches!(format, Format::Json | Format::Csv) {
        note(result.summary());
        note(&srm);
    }
    if result.srm.mismatch() {
        warn(format!(
            "sample ratio mismatch in {:?} (p = {:.2e} < {}): do not trust this table",
            experiment,
            result.srm.p_value,
            ab::SRM_ALPHA
        ));
    }
}

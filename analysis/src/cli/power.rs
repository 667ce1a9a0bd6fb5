//! `analysis power` on the command line: measures, then prints the MDE table
//! in the chosen format.

use anstream::print;
use anyhow::Result;
use clap::Args;

use super::{note, print_notes};
use crate::commands::power::{self as command, Options, Row};
use crate::output::{self, Column, Format, Table};

/// `analysis power`'s flags: the plan, and how to print its MDEs.
#[derive(Args)]
pub(super) struct PowerArgs {
    #[command(flatten)]
    options: Options,
    /// Output format of the table.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub(super) fn run(args: PowerArgs) -> Result<()> {
    let options = &args.options;
    let power = command::run(options)?;
    print_notes(&power.notes);
    let columns: [Column<Row>; 7] = [
        ("metric", |r| r.metric.to_string()),
        ("mean", |r| output::num(r.mean, 4)),
        ("sd", |r| output::num(r.sd, 4)),
        ("users_measured", |r| r.users_measured.to_string()),
        ("users_per_arm", |r| output::num(r.users_per_arm, 0)),
        ("mde", |r| output::num(r.mde, 4)),
        ("mde_percent", |r| output::num(r.mde_percent, 2) + "%"),
    ];
    let table = Table::plain(&columns, &power.rows);
    match args.format {
        Format::Table => print!("{}", table.to_terminal()),
        Format::Csv => print!("{}", table.to_csv()),
        Format::Markdown => print!("{}", table.to_markdown()),
        Format::Json => {
            print!(
                "{}",
                serde_json::to_string_pretty(&power.rows).expect("rows serialize") + "\n"
            )
        }
    }
    let (first, last) = &power.measured;
    note(format!(
        "{} users in {} arms, {} days (measured on days {first} to {last}), two-sided α = {}, power {}",
        options.users, options.arms, options.days, options.alpha, options.power
    ));
    Ok(())
}

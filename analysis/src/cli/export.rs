//! `analysis export` on the command line: runs the export, then prints one
//! line per partition and how the events were split by the partition experiment.

use std::time::Instant;

use anstream::println;
use anyhow::Result;

use super::{note, print_notes, warn};
use crate::commands::export::{self as command, Options};
use crate::export::NULL_PARTITION;
use crate::output::{Table, Tone};

pub(super) fn run(options: &Options, started: Instant) -> Result<()> {
    let exported = command::run(options)?;
    print_notes(&exported.notes);
    let report = &exported.report;
    let mut table = Table::new(&["partition", "files", "events"]);
    for (partition, (rows, files)) in report.partitions() {
        table.push(
            vec![
                partition
                    .dir(report.experiment.as_deref())
                    .display()
                    .to_string(),
                files.to_string(),
                rows.to_string(),
            ],
            Tone::Plain,
        );
    }
    println!("{}", table.to_terminal().trim_end());
    note(report);
    if let Some(experiment) = &report.experiment {
        let without = report.rows_without_arm();
        if without == report.rows() {
            warn(format!(
                "no event carries experiment {experiment:?}: every event is in \
                 {experiment}={NULL_PARTITION}; check the name with a look at one log line"
            ));
        } else if without > 0 {
            note(format!(
                "{without} events do not carry experiment {experiment:?}: they are in \
                 {experiment}={NULL_PARTITION} (NULL in Spark and DuckDB)"
            ));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    note(format!(
        "done in {seconds:.2}s ({:.0} events/s)",
        report.read.events as f64 / seconds
    ));
    Ok(())
}

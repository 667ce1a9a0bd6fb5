//! `analysis export`: the event logs as a Parquet dataset, partitioned by
//! day and experiment arm.

use std::path::PathBuf;
use std::time::Instant;

use anstream::println;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use super::{note, warn, Input};
use crate::export::{self, ExportOptions, NULL_PARTITION};
use crate::logs;
use crate::output::{Table, Tone};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExportFormat {
    /// Apache Parquet, snappy-compressed, Hive-style partition folders.
    Parquet,
}

#[derive(Args)]
pub(super) struct ExportArgs {
    #[command(flatten)]
    input: Input,
    /// Folder of the dataset; written beside it under a temporary name, then
    /// renamed into place.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// File format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Parquet)]
    format: ExportFormat,
    /// Experiment whose arms partition the files (DIR/day=…/NAME=C/…); default: the
    /// active experiment of --config, else the first experiment of the first event
    /// that carries any.
    #[arg(long, value_name = "NAME")]
    partition_experiment: Option<String>,
    /// botify's experiments TOML: its active experiment partitions the files.
    #[arg(long, value_name = "FILE", conflicts_with = "partition_experiment")]
    config: Option<PathBuf>,
    /// Replace an earlier export in --out (a folder holding only day=… folders).
    #[arg(long)]
    overwrite: bool,
    /// Rows per file: a partition's part-N.parquet is closed and the next started.
    #[arg(long, default_value_t = export::ROWS_PER_FILE, value_parser = clap::value_parser!(u64).range(1..))]
    rows_per_file: u64,
}

pub(super) fn run_export(args: ExportArgs) -> Result<()> {
    let started = Instant::now();
    let ExportFormat::Parquet = args.format;
    let paths = logs::resolve(&args.input.logs)?;
    let experiment = match (&args.partition_experiment, &args.config) {
        (Some(name), _) => Some(name.clone()),
        (None, Some(path)) => Some(botify::experiments::Experiments::load(path)?.active),
        (None, None) => {
            let first = export::first_experiments(&paths)?;
            match first.as_deref() {
                Some([only]) => Some(only.clone()),
                Some([first, others @ ..]) => {
                    note(format!(
                        "partitioning by experiment {first:?}, the first of {:?} in the logs; \
                         choose with --partition-experiment NAME or --config experiments.toml",
                        [std::slice::from_ref(first), others].concat()
                    ));
                    Some(first.clone())
                }
                _ => {
                    note("no event carries an experiment: partitioning by day only");
                    None
                }
            }
        }
    };
    let options = ExportOptions {
        overwrite: args.overwrite,
        rows_per_file: args.rows_per_file,
        threads: args.input.threads.max(1),
        progress: true,
        ..ExportOptions::new(&args.out, experiment)
    };
    let report = export::export(&paths, &options).with_context(|| {
        format!(
            "export to {} failed; nothing was written",
            args.out.display()
        )
    })?;
    note(&report.read);
    if report.files.is_empty() {
        bail!(
            "no valid events in {} files ({} broken lines): are these botify event logs? \
             Nothing was written",
            report.read.files,
            report.read.broken()
        );
    }
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
    note(&report);
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

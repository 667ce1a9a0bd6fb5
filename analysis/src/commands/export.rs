//! `analysis export`: the event logs as a Parquet dataset, partitioned by
//! day and experiment arm.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use super::{Input, Notes};
use crate::export::{self, ExportOptions, ExportReport};
use crate::logs;

/// The file format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Apache Parquet, snappy-compressed, Hive-style partition folders.
    Parquet,
}

/// `analysis export`'s flags.
#[derive(Debug, Clone, Args)]
pub struct Options {
    #[command(flatten)]
    pub input: Input,
    /// Folder of the dataset; written beside it under a temporary name, then
    /// renamed into place.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// File format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Parquet)]
    pub format: ExportFormat,
    /// Experiment whose arms partition the files (DIR/day=…/NAME=C/…); default: the
    /// active experiment of --config, else the first experiment of the first event
    /// that carries any.
    #[arg(long, value_name = "NAME")]
    pub partition_experiment: Option<String>,
    /// botify's experiments TOML: its active experiment partitions the files.
    #[arg(long, value_name = "FILE", conflicts_with = "partition_experiment")]
    pub config: Option<PathBuf>,
    /// Replace an earlier export in --out (a folder holding only day=… folders).
    #[arg(long)]
    pub overwrite: bool,
    /// Rows per file: a partition's part-N.parquet is closed and the next started.
    #[arg(long, default_value_t = export::ROWS_PER_FILE, value_parser = clap::value_parser!(u64).range(1..))]
    pub rows_per_file: u64,
}

impl Default for Options {
    /// The defaults `analysis export --help` shows; set `input.logs` and
    /// `out` before running.
    fn default() -> Options {
        Options {
            input: Input::default(),
            out: PathBuf::new(),
            format: ExportFormat::Parquet,
            partition_experiment: None,
            config: None,
            overwrite: false,
            rows_per_file: export::ROWS_PER_FILE,
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    pub report: ExportReport,
    pub notes: Notes,
}

/// Writes the logs of `options.input` as a dataset in `options.out`.
pub fn run(options: &Options) -> Result<Exported> {
    let ExportFormat::Parquet = options.format;
    let mut notes = Notes::default();
    let paths = logs::resolve(&options.input.logs)?;
    let experiment = match (&options.partition_experiment, &options.config) {
        (Some(name), _) => Some(name.clone()),
        (None, Some(path)) => Some(botify::experiments::Experiments::load(path)?.active),
        (None, None) => {
            let first = export::first_experiments(&paths)?;
            match first.as_deref() {
                Some([only]) => Some(only.clone()),
                Some([first, others @ ..]) => {
                    notes.info(format!(
                        "partitioning by experiment {first:?}, the first of {:?} in the logs; \
                         choose with --partition-experiment NAME or --config experiments.toml",
                        [std::slice::from_ref(first), others].concat()
                    ));
                    Some(first.clone())
                }
                _ => {
                    notes.info("no event carries an experiment: partitioning by day only");
                    None
                }
            }
        }
    };
    let writing = ExportOptions {
        overwrite: options.overwrite,
        rows_per_file: options.rows_per_file,
        threads: options.input.threads.max(1),
        progress: true,
        ..ExportOptions::new(&options.out, experiment)
    };
    let report = export::export(&paths, &writing).with_context(|| {
        format!(
            "export to {} failed; nothing was written",
            options.out.display()
        )
    })?;
    notes.info(&report.read);
    if report.files.is_empty() {
        bail!(
            "no valid events in {} files ({} broken lines): are these botify event logs? \
             Nothing was written",
            report.read.files,
            report.read.broken()
        );
    }
    Ok(Exported { report, notes })
}

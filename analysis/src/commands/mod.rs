//! The `analysis` commands as typed functions: each submodule has the
//! command's `Options` (the very struct its flags parse into, so a program
//! builds in code what a person types) and a `run` that returns what the
//! command produced — tables, rows, files written — with the [`Note`]s a
//! person should read, in the order they arose. Nothing here prints but
//! progress bars; [`crate::cli`] prints, and so may any other caller (the
//! simulator retrains and analyses through these functions).

pub mod ab;
pub mod eval;
pub mod export;
pub mod ingest;
pub mod ope;
pub mod power;
pub mod synth;
pub mod train;

use std::fmt;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use crate::logs::{self, Logs, ReadOptions, Record};
use crate::sessions::{self, Session};
use tally::progress;

/// The event logs a command reads (`--logs`, `--threads`), shared by every
/// command that reads logs.
#[derive(Debug, Clone, Args)]
pub struct Input {
    /// Log files, folders or quoted globs (e.g. 'log/**/*.jsonl*'); several allowed.
    #[arg(long, required = true, num_args = 1.., value_name = "PATH|GLOB")]
    pub logs: Vec<String>,
    /// Worker threads (default: every core).
    #[arg(long, default_value_t = logs::default_threads(), value_parser = clap::value_parser!(usize))]
    pub threads: usize,
}

impl Input {
    /// These logs, read on every core.
    pub fn new<P: fmt::Display>(logs: impl IntoIterator<Item = P>) -> Input {
        Input {
            logs: logs.into_iter().map(|p| p.to_string()).collect(),
            threads: logs::default_threads(),
        }
    }
}

impl Default for Input {
    fn default() -> Input {
        Input::new(std::iter::empty::<String>())
    }
}

/// What botify serves from, for the commands that run its recommenders on
/// logs (`eval`, `ope`): its `--models` folder and its catalog, flattened
/// into each so both read them alike.
#[derive(Debug, Clone, Args)]
pub struct Serving {
    /// botify's --models folder: the tables (top_tracks.json, item2item*.jsonl) and
    /// whatever else the recommenders read (embedding.jsonl, sessions.jsonl, …).
    #[arg(long, value_name = "DIR")]
    pub models: PathBuf,
    /// botify's catalog (tracks.jsonl), which the recommenders read.
    #[arg(long, default_value_os_t = Serving::default().catalog, value_name = "FILE")]
    pub catalog: PathBuf,
}

impl Default for Serving {
    /// No models folder (set it), the catalog where `sim world` writes it.
    fn default() -> Serving {
        Serving {
            models: PathBuf::new(),
            catalog: PathBuf::from("data/world/tracks.jsonl"),
        }
    }
}

/// Something a command has to tell a person besides its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// How the work went: what was read, left out, written.
    Info(String),
    /// Something that may make the result wrong or incomplete.
    Warning(String),
}

/// The notes of one run, in the order they arose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notes(pub Vec<Note>);

impl Notes {
    fn info(&mut self, text: impl fmt::Display) {
        self.0.push(Note::Info(text.to_string()));
    }

    fn warn(&mut self, text: impl fmt::Display) {
        self.0.push(Note::Warning(text.to_string()));
    }
}

fn read_logs(input: &Input, experiment: Option<&str>, notes: &mut Notes) -> Result<Logs> {
    let paths = logs::resolve(&input.logs)?;
    let options = ReadOptions {
        experiment: experiment.map(str::to_string),
        threads: input.threads.max(1),
        progress: true,
        ..ReadOptions::default()
    };
    let logs = logs::read(&paths, &options)?;
    notes.info(&logs.report);
    if logs.records.is_empty() {
        bail!(
            "no valid events in {} files ({} broken lines): are these botify event logs?",
            logs.report.files,
            logs.report.broken()
        );
    }
    Ok(logs)
}

/// Records → sorted → sessions, for train and eval (no experiment).
fn load_sessions(input: &Input, notes: &mut Notes) -> Result<(Vec<Record>, Vec<Session>)> {
    let mut records = read_logs(input, None, notes)?.records;
    let spinner = progress::spinner("sessionizing");
    sessions::sort(&mut records);
    let (sessions, report) = sessions::sessionize(&records);
    spinner.finish_and_clear();
    notes.info(&report);
    if sessions.is_empty() {
        bail!("the logs hold no closed session (no `last` event): nothing to learn from");
    }
    Ok((records, sessions))
}

fn check_holdout(holdout: f64) -> Result<()> {
    if !(0.0..1.0).contains(&holdout) {
        bail!("--holdout must be in 0 ≤ h < 1 (a fraction of sessions), got {holdout}");
    }
    Ok(())
}

//! `analysis export`: event logs to a Parquet dataset that DuckDB, Spark and
//! pandas read directly (docs/event-log.md#parquet-export).
//!
//! The files are read as every analysis reads them (`crate::logs`: folders,
//! globs, rotated and gzipped files, byte ranges in parallel, broken lines
//! counted), but each line is parsed into every field (`logs::parse_event`)
//! and appended to the typed columns of its partition (`columns.rs`,
//! `partition.rs`). Workers parse chunks in parallel; this thread takes their
//! batches back in reading order and hands them to the partitions' Parquet
//! writers (`writer.rs`), so the export is the same whatever the number of
//! threads, and `seq` numbers events in reading order, as `ab` does to break
//! timestamp ties.

mod columns;
mod partition;
mod writer;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Condvar, Mutex};

use anyhow::{Context, Result};
use arrow_array::RecordBatch;
use flate2::read::MultiGzDecoder;
use indicatif::ProgressBar;

use crate::logs::{self, parse_event, Chunk, LineCounts, ReadReport, ReportBuilder, NO_ARM};
pub use columns::schema;
use columns::{rebase_seq, Columns};
pub use partition::{check_experiment, Partition, NULL_PARTITION};
use partition::{day_of_folder, DayOf};
use tally::progress;
use writer::Dataset;
pub use writer::FileSummary;

/// Default [`ExportOptions::rows_per_file`].
pub const ROWS_PER_FILE: u64 = 10_000_000;

/// What to export and where.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The dataset's folder.
    pub out: PathBuf,
    /// The experiment whose arms partition the export (checked with
    /// [`check_experiment`]); `None`: days only.
    pub experiment: Option<String>,
    /// Replace an earlier export in `out`.
    pub overwrite: bool,
    /// A partition's file is closed and the next `part-N` started at this many rows.
    pub rows_per_file: u64,
    /// Worker threads.
    pub threads: usize,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Plain files are cut into byte ranges of this size (see `logs::ReadOptions`).
    pub chunk_bytes: u64,
}

impl ExportOptions {
    pub fn new(out: impl Into<PathBuf>, experiment: Option<String>) -> ExportOptions {
        let read = logs::ReadOptions::default();
        ExportOptions {
            out: out.into(),
            experiment,
            overwrite: false,
            rows_per_file: ROWS_PER_FILE,
            threads: read.threads,
            progress: false,
            chunk_bytes: read.chunk_bytes,
        }
    }
}

/// What an export read and wrote.
#[derive(Debug, Clone)]
pub struct ExportReport {
    pub read: ReadReport,
    pub out: PathBuf,
    pub experiment: Option<String>,
    /// Every file written, sorted by path.
    pub files: Vec<FileSummary>,
}

impl ExportReport {
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    /// Events that do not carry the partition experiment (in its null partition).
    pub fn rows_without_arm(&self) -> u64 {
        let null = |f: &&FileSummary| self.experiment.is_some() && f.partition.arm == NO_ARM;
        self.files.iter().filter(null).map(|f| f.rows).sum()
    }

    /// Rows per partition, in folder order.
    pub fn partitions(&self) -> BTreeMap<Partition, (u64, usize)> {
        let mut partitions = BTreeMap::new();
        for file in &self.files {
            let (rows, files) = partitions.entry(file.partition).or_insert((0, 0));
            *rows += file.rows;
            *files += 1;
        }
        partitions
    }
}

impl fmt::Display for ExportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes: u64 = self.files.iter().map(|f| f.bytes).sum();
        let partitions = self.partitions();
        let days: std::collections::BTreeSet<_> = partitions.keys().map(|p| p.day).collect();
        write!(
            f,
            "wrote {} events to {} ({} files, {:.1} MB) in {} partitions over {} day{}",
            self.rows(),
            self.out.display(),
            self.files.len(),
            bytes as f64 / 1e6,
            partitions.len(),
            days.len(),
            if days.len() == 1 { "" } else { "s" }
        )?;
        match &self.experiment {
            Some(experiment) => write!(f, ", by day and {experiment} arm"),
            None => write!(f, ", by day (no experiment in the logs)"),
        }
    }
}

/// The experiment names of the first event that carries any, in reading
/// order (`None` when no event does): the default partition experiment is
/// the first of them. Reads only as far as that event.
pub fn first_experiments(paths: &[PathBuf]) -> Result<Option<Vec<String>>> {
    for path in paths {
        let context = || format!("cannot read log file {}", path.display());
        let mut file = File::open(path).with_context(context)?;
        let mut magic = [0u8; 2];
        let gzip = file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
        let file = File::open(path).with_context(context)?;
        let reader: Box<dyn BufRead> = if gzip {
            Box::new(BufReader::new(MultiGzDecoder::new(file)))
        } else {
            Box::new(BufReader::new(file))
        };
        // A read error mid-file is the export's to report; here the file just ends.
        for line in reader.split(b'\n').map_while(|l| l.ok()) {
            if let Ok(event) = parse_event(line.trim_ascii(), None) {
                let mut names = Vec::new();
                event
                    .experiments
                    .for_each(|name, _| names.push(name.to_string()));
                if !names.is_empty() {
                    return Ok(Some(names));
                }
            }
        }
    }
    Ok(None)
}

/// One chunk's events, split by partition.
struct UnitOut {
    counts: LineCounts,
    events: u64,
    batches: Vec<(Partition, RecordBatch)>,
}

/// Lets workers run at most a few chunks ahead of the commit, so memory holds
/// a bounded number of parsed chunks whatever the size of the logs.
struct Window {
    committed: Mutex<usize>,
    moved: Condvar,
    ahead: usize,
    stop: AtomicBool,
}

impl Window {
    /// Waits until chunk `i` may be parsed; false when the export stopped.
    fn wait_for(&self, i: usize) -> bool {
        let mut committed = self.committed.lock().unwrap_or_else(|e| e.into_inner());
        while i >= *committed + self.ahead && !self.stop.load(Ordering::Relaxed) {
            committed = self
                .moved
                .wait(committed)
                .unwrap_or_else(|e| e.into_inner());
        }
        !self.stop.load(Ordering::Relaxed)
    }

    fn advance(&self, committed: usize) {
        *self.committed.lock().unwrap_or_else(|e| e.into_inner()) = committed;
        self.moved.notify_all();
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _guard = self.committed.lock().unwrap_or_else(|e| e.into_inner());
        self.moved.notify_all();
    }
}

/// Exports the events of `paths` (as `logs::resolve` lists them) into
/// `options.out`. Fails when a file cannot be opened or the dataset cannot
/// be written — leaving no partial export; broken lines are counted in the
/// report.
pub fn export(paths: &[PathBuf], options: &ExportOptions) -> Result<ExportReport> {
    if let Some(experiment) = &options.experiment {
        check_experiment(experiment)?;
    }
    let chunks = logs::plan(paths, options.chunk_bytes.max(1))?;
    let total_bytes = logs::total_bytes(paths);
    let folder_days: Vec<_> = paths.iter().map(|p| day_of_folder(p)).collect();
    let mut dataset = Dataset::create(
        &options.out,
        options.overwrite,
        options.experiment.clone(),
        options.rows_per_file,
    )?;
    let bar = progress::bar_if(
        options.progress,
        progress::Unit::Bytes,
        total_bytes,
        "exporting",
    );
    let threads = options.threads.clamp(1, chunks.len().max(1));
    let window = Window {
        committed: Mutex::new(0),
        moved: Condvar::new(),
        ahead: 2 * threads,
        stop: AtomicBool::new(false),
    };
    let next = AtomicUsize::new(0);
    let experiment = options.experiment.as_deref();
    let mut report = ReportBuilder::new(paths, total_bytes);
    let mut events = 0u64;
    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = mpsc::channel::<(usize, Result<UnitOut>)>();
        for _ in 0..threads {
            let tx = tx.clone();
            let (chunks, window, next, folder_days, bar) =
                (&chunks, &window, &next, &folder_days, &bar);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(chunk) = chunks.get(i) else { return };
                if !window.wait_for(i) {
                    return;
                }
                let path = &paths[chunk.file];
                let out = read_chunk(path, chunk, folder_days[chunk.file], experiment, bar);
                if tx.send((i, out)).is_err() {
                    return;
                }
            });
        }
        drop(tx);
        let mut pending = BTreeMap::new();
        let mut committed = 0;
        let commit = || -> Result<()> {
            for (i, out) in rx {
                pending.insert(i, out);
                while let Some(out) = pending.remove(&committed) {
                    let out = out?;
                    report.add(&chunks[committed], out.counts);
                    for (partition, batch) in out.batches {
                        dataset.write(partition, &rebase_seq(&batch, events))?;
                    }
                    events += out.events;
                    committed += 1;
                    window.advance(committed);
                }
            }
            Ok(())
        };
        let result = commit();
        if result.is_err() {
            window.stop();
        }
        result
    })?;
    bar.finish_and_clear();
    let files = dataset.finish()?;
    Ok(ExportReport {
        read: report.finish(events),
        out: options.out.clone(),
        experiment: options.experiment.clone(),
        files,
    })
}

/// Parses one chunk into per-partition batches.
fn read_chunk(
    path: &Path,
    chunk: &Chunk,
    folder_day: Option<chrono::NaiveDate>,
    experiment: Option<&str>,
    bar: &ProgressBar,
) -> Result<UnitOut> {
    let mut partitions: Vec<(Partition, Columns)> = Vec::new();
    let mut day_of = DayOf::default();
    let mut events = 0u64;
    let counts = logs::scan_chunk(path, chunk, bar, |line| {
        let event = parse_event(line, experiment)?;
        let day = folder_day.unwrap_or_else(|| day_of.timestamp(event.timestamp));
        let partition = Partition {
            day,
            arm: if experiment.is_some() { event.arm } else { 0 },
        };
        let columns = match partitions.iter().position(|(p, _)| *p == partition) {
            Some(i) => &mut partitions[i].1,
            None => {
                partitions.push((partition, Columns::new()));
                &mut partitions.last_mut().expect("pushed").1
            }
        };
        columns.push(&event, events);
        events += 1;
        Ok(())
    })?;
    Ok(UnitOut {
        counts,
        events,
        batches: partitions
            .into_iter()
            .map(|(partition, columns)| (partition, columns.finish()))
            .collect(),
    })
}

//! Reading files in parallel: every file is cut into byte ranges (a gzipped
//! file is one range, as gzip cannot be entered mid-stream), workers take
//! ranges off a shared counter, and the ranges' results are stitched back in
//! file order so records, line numbers and `Record::seq` do not depend on
//! the number of threads. A broken line is counted in the [`ReadReport`],
//! never fatal: logs of a live service end mid-write, and one bad replica
//! must not stop an analysis.

use std::fmt;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context, Result};
use flate2::read::MultiGzDecoder;
use indicatif::ProgressBar;

use super::days::{folder_day, Days};
use super::parse::parse;
use super::record::Record;
use tally::parallel::fan_out;
use tally::progress;

/// Default [`ReadOptions::chunk_bytes`].
const CHUNK_BYTES: u64 = 32 << 20;
/// How many broken lines are quoted in the report.
const MAX_EXAMPLES: usize = 5;

/// What to read and how.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Decode each event's arm in this experiment into [`Record::arm`];
    /// `None` skips the `experiments` field entirely (training needs no arms).
    pub experiment: Option<String>,
    /// Worker threads.
    pub threads: usize,
    /// Show a progress bar on stderr (indicatif hides it when stderr is not a terminal).
    pub progress: bool,
    /// Plain files are cut into byte ranges of this size, read by different
    /// workers, so that even one huge file keeps every core busy.
    pub chunk_bytes: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            experiment: None,
            threads: default_threads(),
            progress: false,
            chunk_bytes: CHUNK_BYTES,
        }
    }
}

/// Every core: reading is CPU-bound JSON parsing.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Events read and what was wrong with the rest.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReadReport {
    pub files: usize,
    pub bytes: u64,
    pub lines: u64,
    pub events: u64,
    /// Empty or whitespace-only lines (ignored, not an error).
    pub blank: u64,
    /// Lines that are not JSON.
    pub not_json: u64,
    /// Lines cut off mid-object (e.g. a file still being written).
    pub truncated: u64,
    /// JSON objects with a missing field, a wrong type or a value out of range.
    pub bad_fields: u64,
    /// Files whose reading failed part-way (I/O or gzip error); what was read is kept.
    pub files_cut_short: u64,
    /// A few of the problems above, as `file:line: what`.
    pub examples: Vec<String>,
}

impl ReadReport {
    /// Lines that could not be used.
    pub fn broken(&self) -> u64 {
        self.not_json + self.truncated + self.bad_fields
    }
}

impl fmt::Display for ReadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "read {} events from {} files ({:.1} MB, {} lines)",
            self.events,
            self.files,
            self.bytes as f64 / 1e6,
            self.lines
        )?;
        if self.broken() > 0 || self.files_cut_short > 0 {
            write!(
                f,
                "; skipped {} broken lines ({} not JSON, {} truncated, {} with missing or invalid fields)",
                self.broken(),
                self.not_json,
                self.truncated,
                self.bad_fields
            )?;
            if self.files_cut_short > 0 {
                write!(
                    f,
                    "; {} files could not be read to the end",
                    self.files_cut_short
                )?;
            }
            for example in &self.examples {
                write!(f, "\n  {example}")?;
            }
        }
        Ok(())
    }
}

/// The events of all files, in reading order, and the reading report.
#[derive(Debug, Default)]
pub struct Logs {
    pub records: Vec<Record>,
    pub report: ReadReport,
    /// Each record's day, from its file (see `days.rs`).
    pub days: Days,
}

/// A byte range of one file (the whole file when compressed): the work one
/// worker takes at a time.
pub(crate) struct Chunk {
    pub(crate) file: usize,
    start: u64,
    end: u64,
    gzip: bool,
}

/// What reading one chunk's lines found wrong, whatever the good lines become
/// (records here, Parquet rows in the export).
#[derive(Default)]
pub(crate) struct LineCounts {
    lines: u64,
    blank: u64,
    not_json: u64,
    truncated: u64,
    bad_fields: u64,
    cut_short: bool,
    /// (line number within the chunk, 1-based; message)
    examples: Vec<(u64, String)>,
}

/// Reads every file in parallel. Fails only when a file cannot be opened at
/// all, or there are more events than fit in memory-compact indices; broken
/// content is counted in the report.
pub fn read(paths: &[PathBuf], options: &ReadOptions) -> Result<Logs> {
    let chunks = plan(paths, options.chunk_bytes.max(1))?;
    let total_bytes = total_bytes(paths);
    let bar = progress::bar_if(
        options.progress,
        progress::Unit::Bytes,
        total_bytes,
        "reading logs",
    );
    let experiment = options.experiment.as_deref();
    let next = AtomicUsize::new(0);
    let threads = options.threads.clamp(1, chunks.len().max(1));
    let mut outs: Vec<Option<(Vec<Record>, LineCounts)>> =
        (0..chunks.len()).map(|_| None).collect();
    let parts = fan_out(
        0..threads,
        |_| -> Result<Vec<(usize, Vec<Record>, LineCounts)>> {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(chunk) = chunks.get(i) else {
                    return Ok(done);
                };
                let mut records = Vec::new();
                let counts = scan_chunk(&paths[chunk.file], chunk, &bar, |line| {
                    records.push(parse(line, experiment)?);
                    Ok(())
                })?;
                done.push((i, records, counts));
            }
        },
    );
    for done in parts {
        for (i, records, counts) in done? {
            outs[i] = Some((records, counts));
        }
    }
    bar.finish_and_clear();

    let total: usize = outs
        .iter()
        .flatten()
        .map(|(records, _)| records.len())
        .sum();
    if total > u32::MAX as usize {
        bail!(
            "{total} events are more than one run can analyse (at most {}); \
             pass fewer files with --logs",
            u32::MAX
        );
    }
    let mut records = Vec::with_capacity(total);
    let mut report = ReportBuilder::new(paths, total_bytes);
    let mut file_starts = Vec::with_capacity(paths.len());
    for (chunk, out) in chunks.iter().zip(outs) {
        let (chunk_records, counts) = out.expect("every chunk is read by some worker");
        if chunk.start == 0 {
            file_starts.push((records.len() as u32, folder_day(&paths[chunk.file])));
        }
        report.add(chunk, counts);
        for mut record in chunk_records {
            record.seq = records.len() as u32;
            records.push(record);
        }
    }
    let report = report.finish(records.len() as u64);
    Ok(Logs {
        records,
        report,
        days: Days::new(file_starts),
    })
}

/// The size of the files on disk (compressed files count compressed), for
/// progress bars and the report.
pub(crate) fn total_bytes(paths: &[PathBuf]) -> u64 {
    paths
        .iter()
        .map(|p| fs::metadata(p).map_or(0, |m| m.len()))
        .sum()
}

/// Stitches the chunks' [`LineCounts`], in chunk order, into one [`ReadReport`]:
/// the examples' line numbers, counted per chunk, become numbers in their file.
pub(crate) struct ReportBuilder<'a> {
    paths: &'a [PathBuf],
    report: ReadReport,
    first_line_of_chunk: u64,
    cut_short: Vec<bool>,
}

impl<'a> ReportBuilder<'a> {
    pub(crate) fn new(paths: &'a [PathBuf], total_bytes: u64) -> ReportBuilder<'a> {
        ReportBuilder {
            paths,
            report: ReadReport {
                files: paths.len(),
                bytes: total_bytes,
                ..ReadReport::default()
            },
            first_line_of_chunk: 1,
            cut_short: vec![false; paths.len()],
        }
    }

    /// Adds the next chunk's counts; chunks must come in [`plan`] order.
    pub(crate) fn add(&mut self, chunk: &Chunk, counts: LineCounts) {
        let report = &mut self.report;
        if chunk.start == 0 {
            self.first_line_of_chunk = 1;
        }
        for (line, message) in counts.examples {
            if report.examples.len() < MAX_EXAMPLES {
                let number = self.first_line_of_chunk + line - 1;
                report.examples.push(format!(
                    "{}:{number}: {message}",
                    self.paths[chunk.file].display()
                ));
            }
        }
        self.first_line_of_chunk += counts.lines;
        report.lines += counts.lines;
        report.blank += counts.blank;
        report.not_json += counts.not_json;
        report.truncated += counts.truncated;
        report.bad_fields += counts.bad_fields;
        self.cut_short[chunk.file] |= counts.cut_short;
    }

    /// The report, with `events` the lines that were accepted.
    pub(crate) fn finish(mut self, events: u64) -> ReadReport {
        self.report.files_cut_short = self.cut_short.iter().filter(|&&c| c).count() as u64;
        self.report.events = events;
        self.report
    }
}

/// Splits files into chunks. Opening every file here means a missing or
/// unreadable file fails fast with its name, before any work is done.
pub(crate) fn plan(paths: &[PathBuf], chunk_bytes: u64) -> Result<Vec<Chunk>> {
    let mut chunks = Vec::new();
    for (file, path) in paths.iter().enumerate() {
        let mut handle = File::open(path).with_context(|| {
            format!(
                "cannot open log file {}: check it exists and is readable",
                path.display()
            )
        })?;
        let len = handle
            .metadata()
            .with_context(|| format!("cannot stat log file {}", path.display()))?
            .len();
        let mut magic = [0u8; 2];
        let gzip = handle.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
        if gzip {
            chunks.push(Chunk {
                file,
                start: 0,
                end: u64::MAX,
                gzip,
            });
            continue;
        }
        let mut start = 0;
        loop {
            let end = (start + chunk_bytes).min(len);
            chunks.push(Chunk {
                file,
                start,
                end,
                gzip,
            });
            if end >= len {
                break;
            }
            start = end;
        }
    }
    Ok(chunks)
}

/// Reads the lines that *start* inside `[chunk.start, chunk.end)`: a line
/// straddling a boundary belongs to the chunk where it begins, so every line is
/// read exactly once. `parse` gets each non-blank line, trimmed; its errors
/// are counted, never fatal. Fails only when the file cannot be opened.
pub(crate) fn scan_chunk(
    path: &Path,
    chunk: &Chunk,
    bar: &ProgressBar,
    mut parse: impl FnMut(&[u8]) -> Result<(), serde_json::Error>,
) -> Result<LineCounts> {
    let open = || {
        File::open(path).with_context(|| {
            format!(
                "cannot open log file {}: check it exists and is readable",
                path.display()
            )
        })
    };
    let mut out = LineCounts::default();
    let mut line = Vec::with_capacity(1024);
    if chunk.gzip {
        let mut reader = BufReader::with_capacity(1 << 20, MultiGzDecoder::new(open()?));
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => out.line(&line, &mut parse),
                Err(err) => {
                    out.cut(err);
                    break;
                }
            }
        }
        bar.inc(fs::metadata(path).map_or(0, |m| m.len()));
        return Ok(out);
    }
    let mut file = open()?;
    let mut pos = chunk.start.saturating_sub(1);
    file.seek(SeekFrom::Start(pos))
        .with_context(|| format!("cannot seek in log file {}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    if chunk.start > 0 {
        match reader.read_until(b'\n', &mut line) {
            Ok(n) => pos += n as u64,
            Err(err) => {
                out.cut(err);
                return Ok(out);
            }
        }
    }
    let mut unreported = 0;
    while pos < chunk.end {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(n) => {
                pos += n as u64;
                unreported += n as u64;
                out.line(&line, &mut parse);
            }
            Err(err) => {
                out.cut(err);
                break;
            }
        }
        if unreported >= 1 << 22 {
            bar.inc(unreported);
            unreported = 0;
        }
    }
    bar.inc(unreported);
    Ok(out)
}

impl LineCounts {
    /// Counts one line and hands it to `parse` unless it is blank.
    #[inline]
    fn line(
        &mut self,
        line: &[u8],
        parse: &mut impl FnMut(&[u8]) -> Result<(), serde_json::Error>,
    ) {
        self.lines += 1;
        let line = line.trim_ascii();
        if line.is_empty() {
            self.blank += 1;
            return;
        }
        if let Err(err) = parse(line) {
            use serde_json::error::Category;
            match err.classify() {
                Category::Eof => self.truncated += 1,
                Category::Data => self.bad_fields += 1,
                Category::Syntax | Category::Io => self.not_json += 1,
            }
            if self.examples.len() < MAX_EXAMPLES {
                self.examples.push((self.lines, err.to_string()));
            }
        }
    }

    fn cut(&mut self, err: std::io::Error) {
        self.cut_short = true;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push((
                self.lines + 1,
                format!("reading stopped here: {err} (is the file truncated or corrupt?)"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // Discovery feeds reading, as in `analysis ab`; it does not depend on it.
    use crate::logs::files::resolve;
    use std::io::Write;

    fn line(user: u64, ts: u64, last: bool) -> String {
        let message = if last { "last" } else { "next" };
        let rec = if last {
            String::new()
        } else {
            ",\"recommendation\":1".to_string()
        };
        format!(
            "{{\"message\":\"{message}\",\"timestamp\":{ts},\"user\":{user},\"track\":1,\"time\":0.5,\"latency\":0.001{rec},\"experiments\":{{\"AA\":\"T1\"}}}}\n"
        )
    }

    #[test]
    fn counts_broken_lines_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut text = String::new();
        text.push_str(&line(1, 1, false));
        text.push_str("not json at all\n");
        text.push('\n');
        text.push_str("{\"message\":\"next\",\"timestamp\":2,\"user\":1}\n");
        text.push_str(&line(1, 3, true));
        text.push_str("{\"message\":\"next\",\"timest"); // cut mid-write, no newline
        fs::write(&path, text).unwrap();
        let logs = read(std::slice::from_ref(&path), &ReadOptions::default()).unwrap();
        let r = &logs.report;
        assert_eq!(logs.records.len(), 2);
        assert_eq!((r.lines, r.events, r.blank), (6, 2, 1));
        assert_eq!((r.not_json, r.bad_fields, r.truncated), (1, 1, 1));
        assert_eq!(r.broken(), 3);
        let where_ = format!("{}:4: missing field `track`", path.display());
        assert!(
            r.examples.iter().any(|e| e.starts_with(&where_)),
            "{:?}",
            r.examples
        );
        assert!(r.to_string().contains("skipped 3 broken lines"), "{r}");
    }

    #[test]
    fn a_propensity_outside_zero_to_one_is_a_bad_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let with = |p: &str| {
            format!("{{\"message\":\"next\",\"timestamp\":1,\"user\":1,\"track\":1,\"time\":1.0,\"latency\":0.001,\"recommendation\":2,\"propensity\":{p}}}\n")
        };
        let text = [
            with("0"),
            with("1.5"),
            with("-0.5"),
            with("0.25"),
            with("1"),
        ]
        .concat();
        fs::write(&path, text).unwrap();
        let logs = read(std::slice::from_ref(&path), &ReadOptions::default()).unwrap();
        assert_eq!((logs.report.bad_fields, logs.records.len()), (3, 2));
        let kept: Vec<_> = logs.records.iter().map(|r| r.propensity()).collect();
        assert_eq!(kept, [Some(0.25), Some(1.0)]);
        assert!(
            logs.report
                .examples
                .iter()
                .any(|e| e.contains("propensity 0 is outside (0, 1]")),
            "{:?}",
            logs.report.examples
        );
    }

    #[test]
    fn reads_chunks_gzip_folders_and_globs_in_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let replica_a = dir.path().join("replica-a");
        let replica_b = dir.path().join("replica-b");
        fs::create_dir_all(&replica_a).unwrap();
        fs::create_dir_all(&replica_b).unwrap();
        // Chunks of 1000 bytes: boundaries fall mid-line, at line ends, everywhere.
        // Line 2501 is broken: its number must survive the chunking.
        let big: String = (0..4_000)
            .map(|i| {
                if i == 2_500 {
                    "garbage\n".to_string()
                } else {
                    line(i, i, false)
                }
            })
            .collect();
        fs::write(replica_a.join("events-1.jsonl"), &big).unwrap();
        let gz = fs::File::create(replica_b.join("events-2.jsonl.1.gz")).unwrap();
        let mut encoder = flate2::write::GzEncoder::new(gz, flate2::Compression::fast());
        for i in 0..10 {
            encoder
                .write_all(line(i, 1000 + i, true).as_bytes())
                .unwrap();
        }
        encoder.finish().unwrap();
        fs::write(replica_b.join("notes.txt"), "not a log").unwrap();

        let folders = resolve(&[
            replica_a.display().to_string(),
            replica_b.display().to_string(),
        ])
        .unwrap();
        let glob = resolve(&[format!("{}/**/*.jsonl*", dir.path().display())]).unwrap();
        assert_eq!(folders, glob);
        assert_eq!(folders.len(), 2);

        let options = ReadOptions {
            experiment: Some("AA".into()),
            threads: 3,
            progress: false,
            chunk_bytes: 1000,
        };
        let logs = read(&folders, &options).unwrap();
        assert_eq!((logs.report.broken(), logs.report.lines), (1, 4_010));
        let at = format!("{}:2501: expected value", folders[0].display());
        assert!(
            logs.report.examples[0].starts_with(&at),
            "{:?}",
            logs.report.examples
        );
        assert_eq!(logs.records.len(), 4_009);
        let users: Vec<u64> = logs.records.iter().map(|r| r.user).collect();
        let expected: Vec<u64> = (0..4_000).filter(|&i| i != 2_500).chain(0..10).collect();
        assert_eq!(users, expected);
        assert!(logs
            .records
            .iter()
            .enumerate()
            .all(|(i, r)| r.seq == i as u32 && r.arm == 1));
        assert!(logs.records[3_999..].iter().all(|r| r.last));
    }
}

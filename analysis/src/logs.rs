//! Reading botify event logs (DESIGN §10): many files, rotated and gzipped
//! files, globs, several replicas' folders — robust to broken lines.
//!
//! Speed is the point here: `ab` must get through ten million events in a few
//! seconds on two cores. So a line is parsed by a hand-written serde visitor
//! straight into a fixed-size [`Record`] holding only what the analyses need
//! (no `BTreeMap` of experiments, no `String`s: the experiment's arm label is
//! matched and decoded while parsing), files are split into byte ranges read
//! by parallel workers, and a bad line is counted, never fatal.

use std::fmt;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context, Result};
use botify::events::Message;
use flate2::read::MultiGzDecoder;
use indicatif::ProgressBar;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::output;

mod fast;

/// `Record::recommendation` when the event has none (a `last`).
const NO_TRACK: u32 = u32::MAX;
/// `Record::arm` when the event does not carry the experiment asked for.
pub const NO_ARM: u8 = u8::MAX;
/// Default [`ReadOptions::chunk_bytes`].
const CHUNK_BYTES: u64 = 32 << 20;
/// How many broken lines are quoted in the report.
const MAX_EXAMPLES: usize = 5;

/// One event, reduced to the fields the analyses use. 48 bytes, so ten
/// million events fit in under half a gigabyte.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record {
    pub user: u64,
    /// Epoch milliseconds.
    pub timestamp: u64,
    /// Fraction of `track` listened, 0.0–1.0.
    pub time: f64,
    /// Seconds spent serving the request.
    pub latency: f64,
    /// The track just listened.
    pub track: u32,
    recommendation: u32,
    /// Position in reading order (files sorted by path, then line order):
    /// breaks timestamp ties so sessionization is deterministic.
    pub seq: u32,
    /// Arm index in the requested experiment (`C` = 0, `Tk` = k), or [`NO_ARM`].
    pub arm: u8,
    /// True for a `last` event (the session ends here).
    pub last: bool,
}

impl Record {
    /// Builds a record (for tests and generators; readers parse lines).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        user: u64,
        timestamp: u64,
        track: u32,
        time: f64,
        latency: f64,
        recommendation: Option<u32>,
        arm: u8,
        last: bool,
    ) -> Record {
        Record {
            user,
            timestamp,
            time,
            latency,
            track,
            recommendation: recommendation.unwrap_or(NO_TRACK),
            seq: 0,
            arm,
            last,
        }
    }

    /// The track served in answer to this event; `None` on `last`.
    pub fn recommendation(&self) -> Option<u32> {
        (self.recommendation != NO_TRACK).then_some(self.recommendation)
    }
}

/// `C` → 0, `T1` → 1, … (`botify::experiments::arm_label` in reverse).
/// `None` for anything else, including arms past 254.
pub fn parse_arm_label(label: &str) -> Option<u8> {
    if label == "C" {
        return Some(0);
    }
    let digits = label.strip_prefix('T')?;
    if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u8>().ok().filter(|&k| k >= 1 && k != NO_ARM)
}

/// Expands `--logs` arguments into a sorted list of files. Each argument may
/// be a file, a folder (searched recursively for names containing `.jsonl`,
/// which covers rotated `x.jsonl.1` and compressed `x.jsonl.gz`), or a glob
/// (`log/**/*.jsonl*`; quote it so the shell does not expand it first).
pub fn resolve(patterns: &[String]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for pattern in patterns {
        let before = files.len();
        let path = Path::new(pattern);
        if path.is_dir() {
            collect_dir(path, &mut files)?;
        } else if path.is_file() {
            files.push(path.to_path_buf());
        } else {
            let paths = glob::glob(pattern).with_context(|| {
                format!(
                    "--logs {pattern:?} is neither a file, a folder nor a valid glob; \
                     quote globs, e.g. --logs 'log/**/*.jsonl*'"
                )
            })?;
            for entry in paths {
                let path = entry.with_context(|| format!("cannot list files for {pattern:?}"))?;
                if path.is_file() {
                    files.push(path);
                }
            }
        }
        if files.len() == before {
            bail!(
                "no log files match {pattern:?}: pass a file, a folder of *.jsonl files, \
                 or a quoted glob such as 'log/**/*.jsonl*'"
            );
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn collect_dir(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries = fs::read_dir(dir).with_context(|| {
        format!(
            "cannot list log folder {}: check it exists and is readable",
            dir.display()
        )
    })?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot list log folder {}", dir.display()))?
            .path();
        if path.is_dir() {
            collect_dir(&path, files)?;
        } else if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains(".jsonl"))
        {
            files.push(path);
        }
    }
    Ok(())
}

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
}

/// A byte range of one file (the whole file when compressed).
struct Unit {
    file: usize,
    start: u64,
    end: u64,
    gzip: bool,
}

/// What one worker got from one unit.
#[derive(Default)]
struct UnitOut {
    records: Vec<Record>,
    lines: u64,
    blank: u64,
    not_json: u64,
    truncated: u64,
    bad_fields: u64,
    cut_short: bool,
    /// (line number within the unit, 1-based; message)
    examples: Vec<(u64, String)>,
}

/// Reads every file in parallel. Fails only when a file cannot be opened at
/// all, or there are more events than fit in memory-compact indices; broken
/// content is counted in the report.
pub fn read(paths: &[PathBuf], options: &ReadOptions) -> Result<Logs> {
    let units = plan(paths, options.chunk_bytes.max(1))?;
    let total_bytes: u64 = paths
        .iter()
        .map(|p| fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    let bar = if options.progress {
        output::bytes_bar(total_bytes, "reading logs")
    } else {
        ProgressBar::hidden()
    };
    let experiment = options.experiment.as_deref();
    let next = AtomicUsize::new(0);
    let threads = options.threads.clamp(1, units.len().max(1));
    let mut outs: Vec<Option<UnitOut>> = (0..units.len()).map(|_| None).collect();
    std::thread::scope(|scope| -> Result<()> {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Result<Vec<(usize, UnitOut)>> {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(unit) = units.get(i) else {
                            return Ok(done);
                        };
                        done.push((i, read_unit(&paths[unit.file], unit, experiment, &bar)?));
                    }
                })
            })
            .collect();
        for worker in workers {
            let done = worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            for (i, out) in done {
                outs[i] = Some(out);
            }
        }
        Ok(())
    })?;
    bar.finish_and_clear();

    let mut report = ReadReport {
        files: paths.len(),
        bytes: total_bytes,
        ..ReadReport::default()
    };
    let total: usize = outs.iter().flatten().map(|o| o.records.len()).sum();
    if total > u32::MAX as usize {
        bail!(
            "{total} events are more than one run can analyse (at most {}); \
             pass fewer files with --logs",
            u32::MAX
        );
    }
    let mut records = Vec::with_capacity(total);
    let mut first_line_of_unit = 1;
    let mut cut_short = vec![false; paths.len()];
    for (unit, out) in units.iter().zip(outs) {
        let out = out.expect("every unit is read by some worker");
        if unit.start == 0 {
            first_line_of_unit = 1;
        }
        for (line, message) in out.examples {
            if report.examples.len() < MAX_EXAMPLES {
                let number = first_line_of_unit + line - 1;
                report.examples.push(format!(
                    "{}:{number}: {message}",
                    paths[unit.file].display()
                ));
            }
        }
        first_line_of_unit += out.lines;
        report.lines += out.lines;
        report.blank += out.blank;
        report.not_json += out.not_json;
        report.truncated += out.truncated;
        report.bad_fields += out.bad_fields;
        cut_short[unit.file] |= out.cut_short;
        for mut record in out.records {
            record.seq = records.len() as u32;
            records.push(record);
        }
    }
    report.files_cut_short = cut_short.iter().filter(|&&c| c).count() as u64;
    report.events = records.len() as u64;
    Ok(Logs { records, report })
}

/// Splits files into units. Opening every file here means a missing or
/// unreadable file fails fast with its name, before any work is done.
fn plan(paths: &[PathBuf], chunk_bytes: u64) -> Result<Vec<Unit>> {
    let mut units = Vec::new();
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
            units.push(Unit {
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
            units.push(Unit {
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
    Ok(units)
}

/// Reads the lines that *start* inside `[unit.start, unit.end)`: a line
/// straddling a boundary belongs to the unit where it begins, so every line is
/// read exactly once.
fn read_unit(
    path: &Path,
    unit: &Unit,
    experiment: Option<&str>,
    bar: &ProgressBar,
) -> Result<UnitOut> {
    let open = || {
        File::open(path).with_context(|| {
            format!(
                "cannot open log file {}: check it exists and is readable",
                path.display()
            )
        })
    };
    let mut out = UnitOut::default();
    let mut line = Vec::with_capacity(1024);
    if unit.gzip {
        let mut reader = BufReader::with_capacity(1 << 20, MultiGzDecoder::new(open()?));
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => out.parse_line(&line, experiment),
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
    let mut pos = unit.start.saturating_sub(1);
    file.seek(SeekFrom::Start(pos))
        .with_context(|| format!("cannot seek in log file {}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    if unit.start > 0 {
        match reader.read_until(b'\n', &mut line) {
            Ok(n) => pos += n as u64,
            Err(err) => {
                out.cut(err);
                return Ok(out);
            }
        }
    }
    let mut unreported = 0;
    while pos < unit.end {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(n) => {
                pos += n as u64;
                unreported += n as u64;
                out.parse_line(&line, experiment);
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

impl UnitOut {
    fn parse_line(&mut self, line: &[u8], experiment: Option<&str>) {
        self.lines += 1;
        let line = line.trim_ascii();
        if line.is_empty() {
            self.blank += 1;
            return;
        }
        match parse(line, experiment) {
            Ok(record) => self.records.push(record),
            Err(err) => {
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

/// Parses one log line into a [`Record`], decoding the arm of `experiment`.
struct LineSeed<'a> {
    experiment: Option<&'a str>,
}

/// Parses one JSON line: the fast path for well-formed lines, serde_json for
/// anything the fast path does not handle (and for the error message).
pub fn parse_line(line: &str, experiment: Option<&str>) -> Result<Record, serde_json::Error> {
    parse(line.as_bytes(), experiment)
}

fn parse(line: &[u8], experiment: Option<&str>) -> Result<Record, serde_json::Error> {
    match fast::parse(line, experiment) {
        Some(record) => Ok(record),
        None => parse_with_serde(line, experiment),
    }
}

/// The reference parser: any valid JSON, precise errors.
fn parse_with_serde(line: &[u8], experiment: Option<&str>) -> Result<Record, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(line);
    let record = LineSeed { experiment }.deserialize(&mut de)?;
    de.end()?;
    Ok(record)
}

impl<'de> DeserializeSeed<'de> for LineSeed<'_> {
    type Value = Record;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Record, D::Error> {
        deserializer.deserialize_map(self)
    }
}

enum Field {
    Message,
    Timestamp,
    User,
    Track,
    Time,
    Latency,
    Recommendation,
    Experiments,
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Field, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                Ok(match v {
                    "message" => Field::Message,
                    "timestamp" => Field::Timestamp,
                    "user" => Field::User,
                    "track" => Field::Track,
                    "time" => Field::Time,
                    "latency" => Field::Latency,
                    "recommendation" => Field::Recommendation,
                    "experiments" => Field::Experiments,
                    _ => Field::Other,
                })
            }
        }
        deserializer.deserialize_identifier(FieldVisitor)
    }
}

impl<'de> Visitor<'de> for LineSeed<'_> {
    type Value = Record;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a botify event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record, A::Error> {
        let mut message = None;
        let mut timestamp = None;
        let mut user = None;
        let mut track = None;
        let mut time = None;
        let mut latency = None;
        let mut recommendation = None;
        let mut arm = NO_ARM;
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Message => message = Some(map.next_value::<Message>()?),
                Field::Timestamp => timestamp = Some(map.next_value::<u64>()?),
                Field::User => user = Some(map.next_value::<u64>()?),
                Field::Track => track = Some(map.next_value::<u32>()?),
                Field::Time => time = Some(map.next_value::<f64>()?),
                Field::Latency => latency = Some(map.next_value::<f64>()?),
                Field::Recommendation => recommendation = map.next_value::<Option<u32>>()?,
                Field::Experiments => match self.experiment {
                    Some(name) => arm = map.next_value_seed(ArmSeed(name))?,
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                },
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let message = message.ok_or_else(|| de::Error::missing_field("message"))?;
        let timestamp = timestamp.ok_or_else(|| de::Error::missing_field("timestamp"))?;
        let user = user.ok_or_else(|| de::Error::missing_field("user"))?;
        let track = track.ok_or_else(|| de::Error::missing_field("track"))?;
        let time = time.ok_or_else(|| de::Error::missing_field("time"))?;
        let latency = latency.ok_or_else(|| de::Error::missing_field("latency"))?;
        let fields = Fields {
            last: message == Message::Last,
            timestamp,
            user,
            track,
            time,
            latency,
            recommendation,
            arm,
        };
        fields.record().map_err(de::Error::custom)
    }
}

/// A line's values, before the checks both parsers share.
struct Fields {
    last: bool,
    timestamp: u64,
    user: u64,
    track: u32,
    time: f64,
    latency: f64,
    recommendation: Option<u32>,
    arm: u8,
}

impl Fields {
    fn record(self) -> Result<Record, String> {
        if !(0.0..=1.0).contains(&self.time) {
            return Err(format!("time {} is outside 0..=1", self.time));
        }
        if !(self.latency >= 0.0 && self.latency.is_finite()) {
            return Err(format!(
                "latency {} is not a non-negative number of seconds",
                self.latency
            ));
        }
        if self.track == NO_TRACK || self.recommendation == Some(NO_TRACK) {
            return Err("track id 4294967295 is reserved".to_string());
        }
        Ok(Record::new(
            self.user,
            self.timestamp,
            self.track,
            self.time,
            self.latency,
            self.recommendation,
            self.arm,
            self.last,
        ))
    }
}

/// Finds one experiment in the `experiments` object without allocating.
struct ArmSeed<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for ArmSeed<'_> {
    type Value = u8;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<u8, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ArmSeed<'_> {
    type Value = u8;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of experiment name to arm label")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u8, A::Error> {
        let mut arm = NO_ARM;
        while let Some(ours) = map.next_key_seed(KeyIs(self.0))? {
            if ours {
                arm = map.next_value_seed(LabelSeed(self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(arm)
    }
}

/// A map key, compared with the wanted name.
struct KeyIs<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an experiment name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

/// An arm label (`C`, `T1`, …), decoded to its index.
struct LabelSeed<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for LabelSeed<'_> {
    type Value = u8;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<u8, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for LabelSeed<'_> {
    type Value = u8;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an arm label such as \"C\" or \"T1\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u8, E> {
        parse_arm_label(v).ok_or_else(|| {
            E::custom(format_args!(
                "experiment {:?} has arm label {v:?}; expected C, T1, T2, …",
                self.0
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use botify::experiments::arm_label;
    use std::io::Write;

    const NEXT: &str = r#"{"message": "next", "timestamp": 1700000000123, "user": 3255, "track": 576, "time": 1.0, "latency": 0.00054, "recommendation": 14035, "experiments": {"ALL": "T6", "AA": "C"}, "recommender": "random"}"#;

    #[test]
    fn parses_the_documented_line() {
        let r = parse_line(NEXT, Some("ALL")).unwrap();
        assert_eq!(
            r,
            Record::new(
                3255,
                1_700_000_000_123,
                576,
                1.0,
                0.00054,
                Some(14035),
                6,
                false
            )
        );
        assert_eq!(r.recommendation(), Some(14035));
        assert_eq!(parse_line(NEXT, Some("AA")).unwrap().arm, 0);
        assert_eq!(parse_line(NEXT, Some("OTHER")).unwrap().arm, NO_ARM);
        assert_eq!(parse_line(NEXT, None).unwrap().arm, NO_ARM);
    }

    #[test]
    fn parses_a_last_without_recommendation() {
        let line = r#"{"message":"last","timestamp":5,"user":1,"track":2,"time":0.25,"latency":0.001,"experiments":{}}"#;
        let r = parse_line(line, Some("AA")).unwrap();
        assert!(r.last);
        assert_eq!(r.recommendation(), None);
        assert_eq!(r.arm, NO_ARM);
    }

    #[test]
    fn parses_what_botify_writes() {
        let event = botify::events::Event {
            message: Message::Next,
            timestamp: 42,
            user: 7,
            track: 3,
            time: 0.5,
            latency: 0.002,
            recommendation: Some(9),
            experiments: [("AB".to_string(), "T2".to_string())].into(),
            recommender: Some("memory".into()),
            fallback: true,
        };
        let line = serde_json::to_string(&event).unwrap();
        let r = parse_line(&line, Some("AB")).unwrap();
        assert_eq!(r, Record::new(7, 42, 3, 0.5, 0.002, Some(9), 2, false));
    }

    #[test]
    fn rejects_missing_fields_bad_types_and_ranges() {
        let cases = [
            (
                r#"{"message":"next","timestamp":1,"user":1,"track":2,"time":0.5}"#,
                "latency",
            ),
            (
                r#"{"message":"next","timestamp":1,"user":-1,"track":2,"time":0.5,"latency":0}"#,
                "invalid value",
            ),
            (
                r#"{"message":"skip","timestamp":1,"user":1,"track":2,"time":0.5,"latency":0}"#,
                "unknown variant",
            ),
            (
                r#"{"message":"next","timestamp":1,"user":1,"track":2,"time":1.5,"latency":0}"#,
                "outside 0..=1",
            ),
            (
                r#"{"message":"next","timestamp":1,"user":1,"track":2,"time":0.5,"latency":0,"experiments":{"AA":"B"}}"#,
                "arm label \"B\"",
            ),
        ];
        for (line, expected) in cases {
            let err = parse_line(line, Some("AA")).unwrap_err().to_string();
            assert!(err.contains(expected), "{line}: {err}");
        }
    }

    #[test]
    fn arm_labels_round_trip_with_botify() {
        for arm in 0..254usize {
            assert_eq!(parse_arm_label(&arm_label(arm)), Some(arm as u8));
        }
        for bad in ["", "c", "T", "T0", "T01", "T255", "T-1", "X1"] {
            assert_eq!(parse_arm_label(bad), None, "{bad}");
        }
    }

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

    #[test]
    fn resolve_names_the_pattern_that_matched_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let pattern = format!("{}/*.jsonl", dir.path().display());
        let err = resolve(std::slice::from_ref(&pattern))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&pattern) && err.contains("no log files match"),
            "{err}"
        );
    }
}

//! The event log: one JSON line per answered `/next` and `/last` (docs/event-log.md).
//!
//! Analysts read these files to sessionize traffic and compute A/B tables, and
//! `analysis train` learns the item-to-item table from them, so the format is a
//! contract. Lines are written by a dedicated thread: a request only pushes an
//! [`Event`] into an unbounded channel and never waits on the disk. Closing the
//! log drains the channel, so every answered request has its line.
//!
//! Where lines go is the [`LogSink`]: size-rotated files in `--log-dir`, or
//! Redis Streams (`stream.rs`), which survive the loss of the machine and
//! spill to the same files while Redis is out of reach. Each line carries an
//! `id`, unique across replicas and restarts, so whoever collects lines
//! delivered more than once (`analysis ingest`) keeps each once.

pub mod stream;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use self::stream::{StreamSink, StreamTarget};

/// Where the event log goes (`--log-sink`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogSink {
    /// Size-rotated JSON Lines files in `--log-dir`.
    #[default]
    File,
    /// Redis Streams on botify's Redis (or Redis Cluster), spilling to
    /// `--log-dir` while unreachable.
    RedisStream,
}

impl LogSink {
    /// The `--log-sink` value naming this sink.
    pub fn name(self) -> String {
        clap::ValueEnum::to_possible_value(&self)
            .expect("every sink has a name")
            .get_name()
            .to_string()
    }
}

/// What kind of request an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Message {
    Next,
    Last,
}

/// One log line. Field order and names are the analysts' contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub message: Message,
    /// Epoch milliseconds when the request was answered.
    pub timestamp: u64,
    pub user: u64,
    /// The track the user just listened to.
    pub track: u32,
    /// Fraction of `track` listened, 0.0–1.0.
    pub time: f64,
    /// Seconds spent serving the request.
    pub latency: f64,
    /// The track served; absent on `last`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<u32>,
    /// The probability, in (0, 1], that the arm's serving policy served
    /// `recommendation` (docs/policies.md): what off-policy evaluation and
    /// unbiased training weigh each answer by. Absent on `last`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propensity: Option<f64>,
    /// The user's arm in every configured experiment.
    #[serde(default)]
    pub experiments: BTreeMap<String, String>,
    /// Name of the recommender that served (extra field, for debugging).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommender: Option<String>,
    /// True when the answer came from the stateless fallback.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fallback: bool,
    /// The version of the trained models that served the request
    /// (`Models::version`); absent when none were loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
}

/// Epoch milliseconds now.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Counters shared between the writer thread and whoever reports metrics.
#[derive(Debug, Default)]
pub struct LogCounters {
    pub written: AtomicU64,
    pub write_errors: AtomicU64,
    /// Lines the stream sink could not send and wrote to `--log-dir`.
    pub spilled: AtomicU64,
    /// Lines of `--log-dir` files the stream sink sent later.
    pub shipped: AtomicU64,
}

/// What the writer thread receives.
enum Command {
    Write(Box<Event>),
    /// Everything queued before this is written; stop.
    Close,
}

/// Cheap handle for pushing events; clone one per worker.
#[derive(Clone)]
pub struct EventSender {
    tx: mpsc::Sender<Command>,
}

impl EventSender {
    /// Queues an event for writing. Never blocks.
    pub fn send(&self, event: Event) {
        // Fails only after the log was closed, when the service has already
        // stopped answering requests.
        let _ = self.tx.send(Command::Write(Box::new(event)));
    }
}

/// The writer: owns the thread that appends lines to size-rotated files.
pub struct EventLog {
    sender: Option<EventSender>,
    writer: Option<JoinHandle<()>>,
    counters: Arc<LogCounters>,
}

impl EventLog {
    /// Opens a new file set in `dir` (created if missing). Files are named
    /// `events-<start ms>-<pid>-<seq>.jsonl`, so restarts and replicas sharing a
    /// folder never overwrite each other; a file is rotated past `max_bytes`.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<EventLog> {
        let mut files = RotatingFile::new(dir, max_bytes)?;
        files.rotate()?;
        Self::start(files, None)
    }

    /// Opens a log sending lines to Redis Streams at `target`, spilling to
    /// files in `dir` (as [`Self::open`] names them) while Redis is out of
    /// reach, and shipping what `dir` holds once it answers.
    pub fn open_stream(dir: &Path, max_bytes: u64, target: StreamTarget) -> io::Result<EventLog> {
        let files = RotatingFile::new(dir, max_bytes)?;
        let sink = StreamSink::new(target).map_err(io::Error::other)?;
        Self::start(files, Some(sink))
    }

    fn start(files: RotatingFile, stream: Option<StreamSink>) -> io::Result<EventLog> {
        let counters = Arc::new(LogCounters::default());
        let (tx, rx) = mpsc::channel::<Command>();
        let thread_counters = counters.clone();
        let writer = std::thread::Builder::new()
            .name("event-log".into())
            .spawn(move || match stream {
                None => write_loop(rx, FileSink(files), &thread_counters),
                Some(mut stream) => {
                    stream.spill = Some(files);
                    write_loop(rx, stream, &thread_counters)
                }
            })?;
        Ok(EventLog {
            sender: Some(EventSender { tx }),
            writer: Some(writer),
            counters,
        })
    }

    pub fn sender(&self) -> EventSender {
        self.sender.clone().expect("sender lives until close")
    }

    pub fn counters(&self) -> Arc<LogCounters> {
        self.counters.clone()
    }

    /// Waits until every event sent so far is on disk, then stops the writer.
    /// Events sent after this are dropped, so stop serving requests first.
    pub fn close(mut self) -> u64 {
        self.shutdown();
        self.counters.written.load(Ordering::Relaxed)
    }

    fn shutdown(&mut self) {
        if let Some(sender) = self.sender.take() {
            let _ = sender.tx.send(Command::Close);
        }
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Size-rotated JSON Lines files `events-<start ms>-<pid>-<seq>.jsonl` in
/// one folder: botify's file log, its stream sink's spill, and what
/// `analysis ingest` writes.
pub struct RotatingFile {
    dir: PathBuf,
    prefix: String,
    seq: u32,
    max_bytes: u64,
    bytes: u64,
    out: Option<BufWriter<File>>,
    /// The open file's path.
    path: Option<PathBuf>,
    /// The open file is new since the last [`Self::sync`]: its folder entry
    /// must be synced too.
    created: bool,
}

impl RotatingFile {
    /// A file set in `dir` (created if missing); the first file is opened
    /// by the first line.
    pub fn new(dir: &Path, max_bytes: u64) -> io::Result<RotatingFile> {
        fs::create_dir_all(dir)?;
        Ok(RotatingFile {
            dir: dir.to_path_buf(),
            prefix: format!("events-{}-{}", now_millis(), std::process::id()),
            seq: 0,
            max_bytes: max_bytes.max(1),
            bytes: 0,
            out: None,
            path: None,
            created: false,
        })
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.close()?;
        let path = self
            .dir
            .join(format!("{}-{:05}.jsonl", self.prefix, self.seq));
        self.seq += 1;
        self.bytes = 0;
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        self.out = Some(BufWriter::with_capacity(1 << 16, file));
        self.path = Some(path);
        self.created = true;
        Ok(())
    }

    /// Flushes and closes the open file, if any; the next line opens a new
    /// one.
    pub fn close(&mut self) -> io::Result<()> {
        self.path = None;
        match self.out.take() {
            Some(mut out) => out.flush(),
            None => Ok(()),
        }
    }

    /// The file lines go to now, if one is open.
    pub fn current(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Puts every line written so far on disk (`fsync`), the folder entry
    /// of a new file included: what is acknowledged after this survives a
    /// crash of the machine.
    pub fn sync(&mut self) -> io::Result<()> {
        if let Some(out) = self.out.as_mut() {
            out.flush()?;
            out.get_ref().sync_data()?;
        }
        if std::mem::take(&mut self.created) {
            File::open(&self.dir)?.sync_all()?;
        }
        Ok(())
    }

    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        if self.out.is_none() || self.bytes >= self.max_bytes {
            self.rotate()?;
        }
        let out = self.out.as_mut().expect("opened above");
        out.write_all(line)?;
        self.bytes += line.len() as u64;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        match self.out.as_mut() {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

/// Event ids: this log's random 64-bit instance, then a counter, so two
/// replicas, or one replica's two runs, never hand out the same id.
struct Ids {
    instance: u64,
    next: u64,
}

impl Ids {
    fn new() -> Ids {
        Ids {
            instance: rand::random(),
            next: 0,
        }
    }
}

/// Appends `event` as one line with its `id` (the last field) and `\n`.
fn encode(event: &Event, ids: &mut Ids, line: &mut Vec<u8>) {
    serde_json::to_writer(&mut *line, event).expect("events serialize");
    line.pop(); // the closing brace
    let id = ids.next;
    ids.next += 1;
    let _ = write!(line, ",\"id\":\"{:016x}-{id:x}\"}}", ids.instance);
    line.push(b'\n');
}

/// Where the writer thread puts lines.
trait Sink {
    /// Writes a batch of encoded lines, each with its user.
    fn write(&mut self, lines: &[(u64, Vec<u8>)], counters: &LogCounters);
    /// The queue is empty: put what is buffered where it belongs.
    fn idle(&mut self, counters: &LogCounters);
    /// The log closes.
    fn close(&mut self, counters: &LogCounters);
}

/// The file log.
struct FileSink(RotatingFile);

impl Sink for FileSink {
    fn write(&mut self, lines: &[(u64, Vec<u8>)], counters: &LogCounters) {
        for (_, line) in lines {
            write_to_file(&mut self.0, line, counters);
        }
    }

    fn idle(&mut self, counters: &LogCounters) {
        if let Err(err) = self.0.flush() {
            tracing::error!(%err, "event log flush failed");
            self.0.out = None;
            counters.write_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn close(&mut self, _: &LogCounters) {
        let _ = self.0.flush();
    }
}

/// Appends one line, counting it written or failed; a failed file is
/// reopened by the next line.
fn write_to_file(files: &mut RotatingFile, line: &[u8], counters: &LogCounters) -> bool {
    match files.write_line(line) {
        Ok(()) => {
            counters.written.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(err) => {
            tracing::error!(%err, "event log write failed; reopening on next event");
            files.out = None;
            counters.write_errors.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

/// How long the writer sleeps when the queue is empty. Polling instead of
/// blocking on the channel means a request's send never has to wake a
/// parked thread (a syscall and a context switch per request under load).
const IDLE_POLL: Duration = Duration::from_millis(5);

/// Events encoded per batch at most: a stream sink sends a batch in one
/// round trip per shard.
const BATCH: usize = 512;

fn write_loop(rx: mpsc::Receiver<Command>, mut sink: impl Sink, counters: &LogCounters) {
    let mut ids = Ids::new();
    let mut batch: Vec<(u64, Vec<u8>)> = Vec::with_capacity(BATCH);
    let mut spare: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut closing = false;
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(Command::Write(event)) => {
                    let mut line = spare.pop().unwrap_or_else(|| Vec::with_capacity(512));
                    line.clear();
                    encode(&event, &mut ids, &mut line);
                    batch.push((event.user, line));
                }
                Ok(Command::Close) | Err(mpsc::TryRecvError::Disconnected) => {
                    closing = true;
                    break;
                }
                Err(mpsc::TryRecvError::Empty) => break,
            }
        }
        if !batch.is_empty() {
            sink.write(&batch, counters);
            spare.extend(batch.drain(..).map(|(_, line)| line));
        } else if !closing {
            // Idle: put what we have where it belongs, then wait for more.
            sink.idle(counters);
            std::thread::sleep(IDLE_POLL);
        }
        if closing {
            break;
        }
    }
    sink.close(counters);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(user: u64) -> Event {
        Event {
            message: Message::Next,
            timestamp: 1_700_000_000_123,
            user,
            track: 576,
            time: 1.0,
            latency: 0.00054,
            recommendation: Some(14035),
            propensity: Some(0.25),
            experiments: BTreeMap::from([("ALL".to_string(), "T6".to_string())]),
            recommender: None,
            fallback: false,
            model_version: None,
        }
    }

    fn read_lines(dir: &Path) -> Vec<String> {
        let mut paths: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        paths
            .iter()
            .flat_map(|p| {
                fs::read_to_string(p)
                    .unwrap()
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn line_has_the_documented_shape() {
        let line = serde_json::to_string(&event(3255)).unwrap();
        assert_eq!(
            line,
            r#"{"message":"next","timestamp":1700000000123,"user":3255,"track":576,"time":1.0,"latency":0.00054,"recommendation":14035,"propensity":0.25,"experiments":{"ALL":"T6"}}"#
        );
    }

    #[test]
    fn each_line_ends_with_an_id_of_its_log_and_its_number() {
        let mut ids = Ids::new();
        let (mut first, mut second) = (Vec::new(), Vec::new());
        encode(&event(1), &mut ids, &mut first);
        encode(&event(1), &mut ids, &mut second);
        let instance = format!("{:016x}", ids.instance);
        let line = String::from_utf8(first).unwrap();
        assert!(
            line.ends_with(&format!(",\"id\":\"{instance}-0\"}}\n")),
            "{line}"
        );
        assert!(String::from_utf8(second)
            .unwrap()
            .contains(&format!("{instance}-1")));
        let parsed: Event = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed, event(1), "readers of the line type skip the id");
        assert_ne!(Ids::new().instance, ids.instance, "another log, other ids");
    }

    #[test]
    fn last_event_has_no_recommendation() {
        let mut e = event(1);
        e.message = Message::Last;
        e.recommendation = None;
        e.propensity = None;
        let line = serde_json::to_string(&e).unwrap();
        assert!(!line.contains("recommendation"), "{line}");
        assert!(!line.contains("propensity"), "{line}");
        assert!(line.starts_with(r#"{"message":"last""#), "{line}");
    }

    #[test]
    fn close_writes_every_event_and_rotates_by_size() {
        let dir = std::env::temp_dir().join(format!("botify-events-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let log = EventLog::open(&dir, 4096).unwrap();
        let sender = log.sender();
        for user in 0..1000 {
            sender.send(event(user));
        }
        // `sender` is still alive: closing must not wait for it.
        assert_eq!(log.close(), 1000);
        drop(sender);
        let files = fs::read_dir(&dir).unwrap().count();
        assert!(files > 10, "expected rotation into many files, got {files}");
        let lines = read_lines(&dir);
        assert_eq!(lines.len(), 1000);
        let users: Vec<u64> = lines
            .iter()
            .map(|l| serde_json::from_str::<Event>(l).unwrap().user)
            .collect();
        assert_eq!(users, (0..1000).collect::<Vec<_>>());
        fs::remove_dir_all(&dir).unwrap();
    }
}

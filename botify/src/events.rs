//! The event log: one JSON line per answered `/next` and `/last` (docs/event-log.md).
//!
//! Analysts read these files to sessionize traffic and compute A/B tables, and
//! `analysis train` learns the item-to-item table from them, so the format is a
//! contract. Lines are written by a dedicated thread: a request only pushes an
//! [`Event`] into an unbounded channel and never waits on the disk. Closing the
//! log drains the channel, so every answered request has its line.

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
        fs::create_dir_all(dir)?;
        let prefix = format!("events-{}-{}", now_millis(), std::process::id());
        let mut files = RotatingFile {
            dir: dir.to_path_buf(),
            prefix,
            seq: 0,
            max_bytes: max_bytes.max(1),
            bytes: 0,
            out: None,
        };
        files.rotate()?;
        let counters = Arc::new(LogCounters::default());
        let (tx, rx) = mpsc::channel::<Command>();
        let thread_counters = counters.clone();
        let writer = std::thread::Builder::new()
            .name("event-log".into())
            .spawn(move || write_loop(rx, files, &thread_counters))?;
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

struct RotatingFile {
    dir: PathBuf,
    prefix: String,
    seq: u32,
    max_bytes: u64,
    bytes: u64,
    out: Option<BufWriter<File>>,
}

impl RotatingFile {
    fn rotate(&mut self) -> io::Result<()> {
        if let Some(mut out) = self.out.take() {
            out.flush()?;
        }
        let path = self
            .dir
            .join(format!("{}-{:05}.jsonl", self.prefix, self.seq));
        self.seq += 1;
        self.bytes = 0;
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        self.out = Some(BufWriter::with_capacity(1 << 16, file));
        Ok(())
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        if self.out.is_none() || self.bytes >= self.max_bytes {
            self.rotate()?;
        }
        let out = self.out.as_mut().expect("opened above");
        out.write_all(line)?;
        self.bytes += line.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.out.as_mut() {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

/// How long the writer sleeps when the queue is empty. Polling instead of
/// blocking on the channel means a request's send never has to wake a
/// parked thread (a syscall and a context switch per request under load).
const IDLE_POLL: Duration = Duration::from_millis(5);

fn write_loop(rx: mpsc::Receiver<Command>, mut files: RotatingFile, counters: &LogCounters) {
    let mut line = Vec::with_capacity(512);
    let mut dirty = false;
    loop {
        match rx.try_recv() {
            Ok(Command::Write(event)) => {
                line.clear();
                serde_json::to_writer(&mut line, &event).expect("events serialize");
                line.push(b'\n');
                match files.write_line(&line) {
                    Ok(()) => counters.written.fetch_add(1, Ordering::Relaxed),
                    Err(err) => {
                        tracing::error!(%err, "event log write failed; reopening on next event");
                        files.out = None;
                        counters.write_errors.fetch_add(1, Ordering::Relaxed)
                    }
                };
                dirty = true;
            }
            Ok(Command::Close) | Err(mpsc::TryRecvError::Disconnected) => break,
            Err(mpsc::TryRecvError::Empty) => {
                // Idle: put what we have on disk, then wait for more.
                if dirty {
                    if let Err(err) = files.flush() {
                        tracing::error!(%err, "event log flush failed");
                        files.out = None;
                        counters.write_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    dirty = false;
                }
                std::thread::sleep(IDLE_POLL);
            }
        }
    }
    let _ = files.flush();
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

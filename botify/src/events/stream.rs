//! The event log on Redis Streams (`--log-sink redis-stream`): lines leave
//! the machine as they are written, so a pod rescheduled with its disk
//! loses none of them; `analysis ingest` collects them into the files
//! analysts read.
//!
//! Layout, under the namespace (default `botify`): [`SHARDS`] streams
//! `{ns}:events:{events-<n>}`, each entry one field [`FIELD`] holding one
//! line (its `\n` left off). A user's events go to stream `user % SHARDS`,
//! in order; the hash tags put the streams on different slots, so a Redis
//! Cluster spreads them over its masters. A batch of lines is one pipeline
//! per stream.
//!
//! While Redis does not answer, lines *spill* to the files the file sink
//! writes (`--log-dir`, same names), and for [`RETRY_AFTER`] batches go
//! there without trying. Once Redis answers, the files in `--log-dir` are
//! *shipped*, one per idle moment, and deleted once sent whole: so the file
//! log's no-loss guarantee holds, and a replica started on the folder of
//! one that died ships what it left. A line sent twice (a timeout after
//! Redis took it, a file shipped again after a crash) keeps its `id`, and
//! `analysis ingest` keeps it once; lines of files written before ids get
//! one from their file name and line number when shipped.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use redis::{FromRedisValue, RedisResult};

use super::{write_to_file, LogCounters, RotatingFile, Sink};
use crate::redis_link::{RedisLink, RedisTarget};

/// Streams per namespace.
pub const SHARDS: usize = 16;
/// The entry field holding the line.
pub const FIELD: &str = "line";
/// After a failed send, batches spill without trying for this long.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Bound on one round trip of the sink.
const TIMEOUT: Duration = Duration::from_millis(500);
/// How often the folder is looked at for files to ship.
const SHIP_EVERY: Duration = Duration::from_secs(1);
/// Lines per pipeline when shipping a file.
const SHIP_CHUNK: usize = 1024;

/// Stream `shard` of `namespace`.
pub fn stream_key(namespace: &str, shard: usize) -> String {
    format!("{namespace}:events:{{events-{shard}}}")
}

/// Where the stream sink sends lines.
#[derive(Debug, Clone)]
pub struct StreamTarget {
    pub redis: RedisTarget,
    pub namespace: String,
}

/// A [`RedisLink`] for a thread of its own that blocks: the event log's
/// writer thread and `analysis ingest`. It runs its own single-threaded
/// runtime, so it never depends on the HTTP workers' runtimes (which stop
/// before the log's last lines are sent).
pub struct StreamLink {
    runtime: tokio::runtime::Runtime,
    link: RedisLink,
    timeout: Duration,
}

impl StreamLink {
    /// Creates the link without connecting; `timeout` bounds each call.
    pub fn new(target: &RedisTarget, timeout: Duration) -> RedisResult<StreamLink> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let link = {
            let _inside = runtime.enter();
            RedisLink::new(target, timeout)?
        };
        Ok(StreamLink {
            runtime,
            link,
            timeout,
        })
    }

    /// Runs `pipe` (its keys in one slot).
    pub fn pipe<T: FromRedisValue>(&self, pipe: &redis::Pipeline) -> RedisResult<T> {
        self.bounded(self.link.pipe(pipe))
    }

    /// Runs one command.
    pub fn cmd<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> RedisResult<T> {
        self.bounded(self.link.cmd(cmd))
    }

    fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = RedisResult<T>>,
    ) -> RedisResult<T> {
        self.runtime
            .block_on(async { tokio::time::timeout(self.timeout, call).await })
            .unwrap_or_else(|_| {
                Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "redis timed out").into())
            })
    }
}

/// The writer thread's sink: streams, else the spill files.
pub struct StreamSink {
    link: StreamLink,
    keys: Vec<String>,
    /// The spill files, in `--log-dir`.
    pub(super) spill: Option<RotatingFile>,
    /// Until when batches spill without trying, after a failure.
    down_until: Option<Instant>,
    next_ship: Instant,
}

impl StreamSink {
    pub fn new(target: StreamTarget) -> RedisResult<StreamSink> {
        Ok(StreamSink {
            link: StreamLink::new(&target.redis, TIMEOUT)?,
            keys: (0..SHARDS)
                .map(|shard| stream_key(&target.namespace, shard))
                .collect(),
            spill: None,
            down_until: None,
            next_ship: Instant::now(),
        })
    }

    /// The spill files, which the log gives the sink before any batch.
    fn spill(&mut self) -> &mut RotatingFile {
        self.spill
            .as_mut()
            .expect("the log gives the sink its files")
    }

    fn down(&self) -> bool {
        self.down_until.is_some_and(|until| Instant::now() < until)
    }

    /// Sends `lines` (shard, line) in one pipeline per shard; false, after
    /// marking Redis down, when a pipeline failed. Shards sent before the
    /// failure stay sent.
    fn send<'a>(
        &mut self,
        lines: impl Iterator<Item = (usize, &'a [u8])> + Clone,
    ) -> Option<usize> {
        let mut sent = 0;
        for shard in 0..SHARDS {
            let mut pipe = redis::pipe();
            let mut count = 0;
            for (_, line) in lines.clone().filter(|(s, _)| *s == shard) {
                pipe.cmd("XADD")
                    .arg(&self.keys[shard])
                    .arg("*")
                    .arg(FIELD)
                    .arg(line.strip_suffix(b"\n").unwrap_or(line))
                    .ignore();
                count += 1;
            }
            if count == 0 {
                continue;
            }
            if let Err(err) = self.link.pipe::<()>(&pipe) {
                if !self.down() {
                    tracing::warn!(%err, "event stream unreachable; spilling to --log-dir");
                }
                self.down_until = Some(Instant::now() + RETRY_AFTER);
                return None;
            }
            sent += count;
        }
        Some(sent)
    }

    fn spill_lines<'a>(&mut self, lines: impl Iterator<Item = &'a [u8]>, counters: &LogCounters) {
        let spill = self.spill();
        for line in lines {
            if write_to_file(spill, line, counters) {
                counters.spilled.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Sends one file of `--log-dir` (not the one being spilled to) and
    /// deletes it; stops at the first failure, to retry later.
    fn ship_one(&mut self, counters: &LogCounters) {
        let spill = self.spill();
        if let Err(err) = spill.close() {
            tracing::error!(%err, "event log flush failed");
        }
        let Some(path) = log_files(&spill.dir).into_iter().next() else {
            return;
        };
        let Ok(text) = fs::read(&path) else {
            return;
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let lines: Vec<Vec<u8>> = text
            .split(|&b| b == b'\n')
            .enumerate()
            .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
            .map(|(number, line)| with_id(line, &name, number + 1))
            .collect();
        for (chunk_index, chunk) in lines.chunks(SHIP_CHUNK).enumerate() {
            let base = chunk_index * SHIP_CHUNK;
            let shards = chunk
                .iter()
                .enumerate()
                .map(|(i, line)| ((base + i) % SHARDS, line.as_slice()));
            if self.send(shards).is_none() {
                return;
            }
        }
        counters
            .shipped
            .fetch_add(lines.len() as u64, Ordering::Relaxed);
        if let Err(err) = fs::remove_file(&path) {
            tracing::error!(%err, path = %path.display(), "cannot remove a shipped event log file");
        }
    }
}

/// The event log files of `dir`, oldest name first.
fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("events-") && n.ends_with(".jsonl"))
        })
        .collect();
    files.sort();
    files
}

/// `line` with an `id`: its own, or, for a line written before ids, one
/// made of its file's name and line number, the same each time the file is
/// shipped.
fn with_id(line: &[u8], file: &str, number: usize) -> Vec<u8> {
    let mut line = line.to_vec();
    let has_id = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&line)
        .map(|fields| fields.contains_key("id"));
    if let (Ok(false), Some(brace)) = (has_id, line.iter().rposition(|&b| b == b'}')) {
        line.truncate(brace);
        let id = serde_json::to_string(&format!("{file}:{number}")).expect("a string");
        line.extend_from_slice(format!(",\"id\":{id}}}").as_bytes());
    }
    line
}

impl Sink for StreamSink {
    fn write(&mut self, lines: &[(u64, Vec<u8>)], counters: &LogCounters) {
        let shards = lines
            .iter()
            .map(|(user, line)| ((*user % SHARDS as u64) as usize, line.as_slice()));
        let sent = if self.down() { None } else { self.send(shards) };
        match sent {
            Some(sent) => {
                counters.written.fetch_add(sent as u64, Ordering::Relaxed);
            }
            // Lines of shards sent before the failure are sent again, from
            // the spill: duplicates by id, which ingest drops.
            None => self.spill_lines(lines.iter().map(|(_, l)| l.as_slice()), counters),
        }
    }

    fn idle(&mut self, counters: &LogCounters) {
        let spill = self.spill();
        if let Err(err) = spill.flush() {
            tracing::error!(%err, "event log flush failed");
            spill.out = None;
            counters.write_errors.fetch_add(1, Ordering::Relaxed);
        }
        if !self.down() && Instant::now() >= self.next_ship {
            self.next_ship = Instant::now() + SHIP_EVERY;
            self.ship_one(counters);
        }
    }

    fn close(&mut self, _: &LogCounters) {
        if let Some(spill) = self.spill.as_mut() {
            let _ = spill.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_without_id_gets_one_from_its_place() {
        let line = br#"{"message":"next","user":1}"#;
        let shipped = with_id(line, "events-1-2-00000.jsonl", 7);
        assert_eq!(
            std::str::from_utf8(&shipped).unwrap(),
            r#"{"message":"next","user":1,"id":"events-1-2-00000.jsonl:7"}"#
        );
        assert_eq!(with_id(&shipped, "other", 1), shipped, "an id is kept");
        assert_eq!(with_id(b"{cut", "f", 1), b"{cut", "a broken line as it is");
    }

    #[test]
    fn streams_spread_over_the_cluster_slots() {
        use crate::redis_link::topology::slot;
        let slots: std::collections::BTreeSet<usize> = (0..SHARDS)
            .map(|shard| slot(stream_key("botify", shard).as_bytes()) * 3 / 16_384)
            .collect();
        assert_eq!(slots.len(), 3, "every third of the slots holds a stream");
    }
}

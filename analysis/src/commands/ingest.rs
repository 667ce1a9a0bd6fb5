//! `analysis ingest`: botify's event streams (`--log-sink redis-stream`)
//! collected into the JSON Lines files every other command reads.
//!
//! Reads every stream of the namespace as consumer `--consumer` of group
//! `--group` (created at the streams' start if missing), appends each line
//! to `events-<start ms>-<pid>-<seq>.jsonl` files in `--out` (named and
//! rotated as botify names its own), `fsync`s them, and only then
//! acknowledges and deletes the entries: a crash before the `fsync` leaves
//! them pending, and the next run with the same consumer reads them again.
//! Lines are kept by their `id`: the ids of the lines already in `--out`
//! are loaded first, so an entry delivered twice (redelivered after a
//! crash, or sent twice by botify) is written once. A line cut by a crash
//! at the end of a file is cut off on start, and its entry, never
//! acknowledged, comes again.

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use botify::events::stream::{stream_key, StreamLink, FIELD, SHARDS};
use botify::events::RotatingFile;
use botify::redis_link::RedisTarget;
use clap::Args;

/// `analysis ingest`'s flags.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// botify's Redis: one URL, or with --redis-cluster comma-separated seed nodes.
    #[arg(long, env = "REDIS_URL", value_name = "URL")]
    pub redis_url: String,
    /// --redis-url points at a Redis Cluster.
    #[arg(long, env = "BOTIFY_REDIS_CLUSTER")]
    pub redis_cluster: bool,
    /// botify's --redis-namespace.
    #[arg(long, env = "BOTIFY_REDIS_NAMESPACE", default_value = "botify")]
    pub redis_namespace: String,
    /// Folder of the JSON Lines files (created if missing); lines already in it are not written again.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Consumer group: every group receives every line once.
    #[arg(long, default_value = "analysis")]
    pub group: String,
    /// This reader's name in the group; a reader started again under the same name first reads what it had not acknowledged.
    #[arg(long, default_value = "ingest")]
    pub consumer: String,
    /// Keep reading new lines until stopped; without it, stop once the streams hold nothing new.
    #[arg(long)]
    pub follow: bool,
    /// Lines read per stream and round trip.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,
    /// Rotate an output file once it reaches this many bytes.
    #[arg(long, default_value_t = 64 << 20)]
    pub max_bytes: u64,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ingested {
    /// Entries read from the streams.
    pub read: u64,
    /// Lines written to `--out`.
    pub written: u64,
    /// Entries whose line `--out` already held (redelivered or sent twice).
    pub duplicates: u64,
    /// Lines already in `--out` when the run started.
    pub known: u64,
    /// Bytes of a line cut by a crash, cut off an output file on start.
    pub repaired: u64,
}

/// How long a follower waits when the streams hold nothing new.
const IDLE: Duration = Duration::from_millis(100);
/// Bound on one round trip.
const TIMEOUT: Duration = Duration::from_secs(5);

/// One entry read: its stream, its id in the stream, its line.
struct Entry {
    shard: usize,
    id: String,
    line: Option<String>,
}

/// Reads the streams into `options.out` until they hold nothing new (or,
/// with `follow`, forever).
pub fn run(options: &Options) -> Result<Ingested> {
    let mut ingested = Ingested::default();
    fs::create_dir_all(&options.out)
        .with_context(|| format!("cannot create {}", options.out.display()))?;
    let mut seen = HashSet::new();
    for path in jsonl_files(&options.out)? {
        ingested.repaired += cut_torn_tail(&path)?;
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        for line in text.lines() {
            if let Some(id) = line_id(line) {
                seen.insert(id);
                ingested.known += 1;
            }
        }
    }
    let target = RedisTarget::parse(&options.redis_url, options.redis_cluster)
        .map_err(anyhow::Error::msg)?;
    let link = StreamLink::new(&target, TIMEOUT).context("invalid --redis-url")?;
    let keys: Vec<String> = (0..SHARDS)
        .map(|shard| stream_key(&options.redis_namespace, shard))
        .collect();
    for key in &keys {
        create_group(&link, key, &options.group)?;
    }
    let mut out = RotatingFile::new(&options.out, options.max_bytes)?;
    // Each stream first yields what this consumer read but never
    // acknowledged (from id 0), then new entries (`>`).
    let mut pending = [true; SHARDS];
    loop {
        let started = Instant::now();
        // Only a round reading new entries of every stream can find them
        // all read.
        let caught_up = pending.iter().all(|p| !p);
        let mut entries = Vec::new();
        for (shard, key) in keys.iter().enumerate() {
            let from = if pending[shard] { "0" } else { ">" };
            let read = read_group(&link, options, key, shard, from)?;
            if pending[shard] && read.is_empty() {
                pending[shard] = false;
            }
            entries.extend(read);
        }
        if entries.is_empty() {
            if !options.follow && caught_up {
                return Ok(ingested);
            }
            std::thread::sleep(IDLE.saturating_sub(started.elapsed()));
            continue;
        }
        ingested.read += entries.len() as u64;
        for entry in &entries {
            let Some(line) = &entry.line else {
                continue; // deleted from the stream after its line was written
            };
            let id = line_id(line).unwrap_or_else(|| format!("{}:{}", keys[entry.shard], entry.id));
            if !seen.insert(id) {
                ingested.duplicates += 1;
                continue;
            }
            out.write_line(format!("{line}\n").as_bytes())?;
            ingested.written += 1;
        }
        out.sync().context("cannot sync the output")?;
        acknowledge(&link, &keys, &options.group, &entries)?;
    }
}

/// `XGROUP CREATE … 0 MKSTREAM`, unless the group exists.
fn create_group(link: &StreamLink, key: &str, group: &str) -> Result<()> {
    let created = link.cmd::<()>(
        redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(key)
            .arg(group)
            .arg("0")
            .arg("MKSTREAM"),
    );
    match created {
        Err(err) if err.code() == Some("BUSYGROUP") => Ok(()),
        other => other.with_context(|| format!("cannot create group {group} on {key}")),
    }
}

/// The reply of `XREADGROUP` on one stream: `[[key, [[id, [field, value,
/// …] or nil], …]]]`, or nil when nothing is there.
type ReadReply = Option<Vec<(String, Vec<(String, Option<Vec<String>>)>)>>;

fn read_group(
    link: &StreamLink,
    options: &Options,
    key: &str,
    shard: usize,
    from: &str,
) -> Result<Vec<Entry>> {
    let reply: ReadReply = link
        .cmd(
            redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(&options.group)
                .arg(&options.consumer)
                .arg("COUNT")
                .arg(options.batch)
                .arg("STREAMS")
                .arg(key)
                .arg(from),
        )
        .with_context(|| format!("cannot read {key}"))?;
    Ok(reply
        .into_iter()
        .flatten()
        .flat_map(|(_, entries)| entries)
        .map(|(id, fields)| Entry {
            shard,
            id,
            line: fields.and_then(|fields| {
                fields
                    .chunks(2)
                    .find(|pair| pair[0] == FIELD)
                    .and_then(|pair| pair.get(1).cloned())
            }),
        })
        .collect())
}

/// `XACK` then `XDEL` of every entry, one pipeline per stream: written
/// lines leave the streams.
fn acknowledge(link: &StreamLink, keys: &[String], group: &str, entries: &[Entry]) -> Result<()> {
    for (shard, key) in keys.iter().enumerate() {
        let ids: Vec<&str> = entries
            .iter()
            .filter(|e| e.shard == shard)
            .map(|e| e.id.as_str())
            .collect();
        if ids.is_empty() {
            continue;
        }
        let mut pipe = redis::pipe();
        pipe.cmd("XACK").arg(key).arg(group).arg(&ids).ignore();
        pipe.cmd("XDEL").arg(key).arg(&ids).ignore();
        link.pipe::<()>(&pipe)
            .with_context(|| format!("cannot acknowledge on {key}"))?;
    }
    Ok(())
}

/// A line's `id`, if it is a JSON object with a string one.
fn line_id(line: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Id {
        id: Option<String>,
    }
    serde_json::from_str::<Id>(line).ok()?.id
}

/// The `*.jsonl` files of `dir`.
fn jsonl_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Cuts what follows the last `\n` of `path` (a line a crash cut short);
/// returns the bytes cut.
fn cut_torn_tail(path: &Path) -> Result<u64> {
    let mut file = fs::OpenOptions::new().read(true).write(true).open(path)?;
    let length = file.metadata()?.len();
    let mut end = length;
    let mut buffer = [0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(buffer.len() as u64);
        let chunk = &mut buffer[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(newline) = chunk.iter().rposition(|&b| b == b'\n') {
            end = start + newline as u64 + 1;
            break;
        }
        end = start;
    }
    if end < length {
        file.set_len(end)?;
        file.sync_all()?;
    }
    Ok(length - end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_cut_and_whole_lines_stay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events-1-2-00000.jsonl");
        fs::write(&path, "{\"id\":\"a\"}\n{\"id\":\"b\"}\n{\"id\":").unwrap();
        assert_eq!(cut_torn_tail(&path).unwrap(), 6);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "{\"id\":\"a\"}\n{\"id\":\"b\"}\n"
        );
        assert_eq!(cut_torn_tail(&path).unwrap(), 0, "whole lines are kept");
        fs::write(&path, "no newline at all").unwrap();
        assert_eq!(cut_torn_tail(&path).unwrap(), 17);
        assert_eq!(fs::read(&path).unwrap(), b"");
    }

    #[test]
    fn ids_are_read_from_lines_that_have_one() {
        assert_eq!(
            line_id(r#"{"user":1,"id":"00ff-2"}"#).as_deref(),
            Some("00ff-2")
        );
        assert_eq!(line_id(r#"{"user":1}"#), None);
        assert_eq!(line_id("not json"), None);
    }
}

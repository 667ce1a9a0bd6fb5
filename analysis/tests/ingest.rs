//! `analysis ingest` collects botify's event streams (`--log-sink
//! redis-stream`) into JSON Lines files holding every answered request
//! exactly once: with `ingest` SIGKILLed mid-stream and started again, and a
//! botify replica stopped under load and its log folder deleted (a pod
//! rescheduled without its disk), on a real Redis Cluster; and with the
//! stream unreachable at first, the lines spilled to the replica's folder
//! and shipped once Redis answers.
//!
//! Needs `redis-server` and `redis-cli` (scripts/test installs them) and a
//! botify binary as new as botify/src (`cargo build -p botify`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use botify::config::Config;
use botify::events::LogSink;
use testkit::app::metric;
use testkit::binary::{botify_binary, botify_command};
use testkit::cli::run_ok;
use testkit::{free_port, test_config, Processes, RedisCluster, RedisServer};

/// One answered `/next`: (user, track listened, track recommended).
type Answer = (u64, u32, u32);

const CLIENTS: u64 = 4;
const USERS_PER_CLIENT: u64 = 20;

/// `POST path` with `body` on 127.0.0.1:`port`, one connection per request:
/// the status and the body, or `None` when the replica is not there.
fn post(port: u16, path: &str, body: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    Some((status, body.to_string()))
}

fn get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response.split_once("\r\n\r\n").unwrap().1.to_string()
}

/// One listener's `/next` on `port`; `Some` when answered 200.
fn next(port: u16, user: u64, track: u32) -> Option<Answer> {
    let (status, body) = post(
        port,
        &format!("/next/{user}"),
        &format!("{{\"track\": {track}, \"time\": 0.9}}"),
    )?;
    if status != 200 {
        return None;
    }
    let answer: serde_json::Value = serde_json::from_str(&body).ok()?;
    Some((user, track, answer["track"].as_u64()? as u32))
}

/// Clients sending `/next` to `ports` in turn until `running` ends; every
/// answered request is counted in `answered`.
fn load(
    ports: Vec<u16>,
    running: Arc<AtomicBool>,
    answered: Arc<Mutex<BTreeMap<Answer, usize>>>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..CLIENTS)
        .map(|client| {
            let (ports, running, answered) = (ports.clone(), running.clone(), answered.clone());
            std::thread::spawn(move || {
                let mut tracks: BTreeMap<u64, u32> = BTreeMap::new();
                let mut turn = 0;
                while running.load(Ordering::Relaxed) {
                    for user in client * USERS_PER_CLIENT..(client + 1) * USERS_PER_CLIENT {
                        turn += 1;
                        let track = tracks.entry(user).or_insert((user % 200) as u32);
                        if let Some(answer) = next(ports[turn % ports.len()], user, *track) {
                            *track = answer.2;
                            *answered.lock().unwrap().entry(answer).or_default() += 1;
                        }
                    }
                }
            })
        })
        .collect()
}

fn replica(dir: &Path, name: &str, redis_url: String, cluster: bool) -> Config {
    let mut config = test_config(dir, &["random"]);
    config.port = free_port();
    config.log_dir = dir.join("log").join(name);
    config.log_sink = LogSink::RedisStream;
    config.redis_url = Some(redis_url);
    config.redis_cluster = cluster;
    config
}

fn ingest_command(redis_url: &str, cluster: bool, out: &Path, follow: bool) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_analysis"));
    command
        .args(["ingest", "--redis-url", redis_url, "--batch", "50", "--out"])
        .arg(out);
    if cluster {
        command.arg("--redis-cluster");
    }
    if follow {
        command.arg("--follow");
    }
    command
}

/// Runs `ingest` to the end of the streams.
fn drain(redis_url: &str, cluster: bool, out: &Path) {
    run_ok(&mut ingest_command(redis_url, cluster, out, false));
}

/// What `out` holds: each `/next` line as an answer, counted, and every
/// line's id.
fn dataset(out: &Path) -> (BTreeMap<Answer, usize>, Vec<String>) {
    let mut answers = BTreeMap::new();
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(out).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            ids.push(
                event["id"]
                    .as_str()
                    .expect("every line has an id")
                    .to_string(),
            );
            if event["message"] == "next" {
                let answer = (
                    event["user"].as_u64().unwrap(),
                    event["track"].as_u64().unwrap() as u32,
                    event["recommendation"].as_u64().unwrap() as u32,
                );
                *answers.entry(answer).or_default() += 1;
            }
        }
    }
    (answers, ids)
}

/// Every answered request is in the dataset exactly once, and nothing else.
fn assert_exactly_once(answered: &BTreeMap<Answer, usize>, out: &Path) {
    let (lines, ids) = dataset(out);
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a line was written twice");
    let lost: Vec<_> = answered
        .iter()
        .filter(|(answer, n)| lines.get(answer) < Some(n))
        .collect();
    let doubled: Vec<_> = lines
        .iter()
        .filter(|(answer, n)| answered.get(answer) < Some(n))
        .collect();
    assert!(lost.is_empty(), "{} answers lost: {lost:?}", lost.len());
    assert!(
        doubled.is_empty(),
        "{} lines too many: {doubled:?}",
        doubled.len()
    );
    eprintln!(
        "{} answered requests, {} lines: 0 lost, 0 doubled",
        answered.values().sum::<usize>(),
        ids.len()
    );
}

#[test]
fn killing_ingest_and_a_replica_under_load_loses_and_doubles_no_line() {
    let cluster = RedisCluster::start();
    let url = cluster.url();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ingested");
    let binary = botify_binary();
    let mut processes = Processes::new();
    let one = replica(dir.path(), "one", url.clone(), true);
    let two = replica(dir.path(), "two", url.clone(), true);
    for (name, config) in [("one", &one), ("two", &two)] {
        processes
            .spawn(name, &mut botify_command(&binary, config))
            .wait_listening(config.port, Duration::from_secs(20));
    }
    processes.spawn("ingest-1", &mut ingest_command(&url, true, &out, true));

    let running = Arc::new(AtomicBool::new(true));
    let answered = Arc::new(Mutex::new(BTreeMap::new()));
    let clients = load(vec![one.port, two.port], running.clone(), answered.clone());
    std::thread::sleep(Duration::from_secs(1));
    // ingest crashes mid-stream and is started again under the same name.
    processes.get_mut("ingest-1").unwrap().kill();
    std::thread::sleep(Duration::from_millis(300));
    processes.spawn("ingest-2", &mut ingest_command(&url, true, &out, true));
    std::thread::sleep(Duration::from_millis(700));
    // A replica goes, and its disk with it.
    let stopped = processes.get_mut("two").unwrap().stop();
    assert!(stopped.success(), "two exited with {stopped}");
    std::fs::remove_dir_all(&two.log_dir).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    running.store(false, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    let stopped = processes.get_mut("one").unwrap().stop();
    assert!(stopped.success(), "one exited with {stopped}");
    processes.get_mut("ingest-2").unwrap().kill();
    drain(&url, true, &out);

    let answered = answered.lock().unwrap();
    assert!(answered.len() > 100, "load ran: {} answers", answered.len());
    assert_exactly_once(&answered, &out);
}

#[test]
fn lines_spill_while_the_stream_is_unreachable_and_are_shipped_later() {
    let port = free_port();
    let url = testkit::redis::url(port);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ingested");
    let config = replica(dir.path(), "one", url.clone(), false);
    let mut processes = Processes::new();
    processes
        .spawn("botify", &mut botify_command(&botify_binary(), &config))
        .wait_listening(config.port, Duration::from_secs(20));

    let mut answered = BTreeMap::new();
    for user in 0..50 {
        let answer = next(config.port, user, 3).expect("served without Redis");
        *answered.entry(answer).or_default() += 1;
    }
    let spilled = || metric(&get(config.port, "/metrics"), "botify_events_spilled_total");
    let deadline = Instant::now() + Duration::from_secs(10);
    while spilled() < 50.0 {
        assert!(Instant::now() < deadline, "spilled {}", spilled());
        std::thread::sleep(Duration::from_millis(20));
    }

    let _redis = RedisServer::start_on(port);
    let shipped = || metric(&get(config.port, "/metrics"), "botify_events_shipped_total");
    let deadline = Instant::now() + Duration::from_secs(15);
    while shipped() < 50.0 {
        assert!(Instant::now() < deadline, "shipped {}", shipped());
        std::thread::sleep(Duration::from_millis(50));
    }
    for user in 50..60 {
        let answer = next(config.port, user, 3).expect("served");
        *answered.entry(answer).or_default() += 1;
    }
    let stopped = processes.get_mut("botify").unwrap().stop();
    assert!(stopped.success());
    let left: Vec<_> = std::fs::read_dir(&config.log_dir).unwrap().collect();
    assert!(left.is_empty(), "shipped files are deleted: {left:?}");
    drain(&url, false, &out);
    assert_exactly_once(&answered, &out);
}

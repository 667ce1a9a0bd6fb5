//! A real `redis-server` on a free loopback port, answering `PING` by the
//! time it is returned: standalone ([`RedisServer`], stopped on drop; without
//! persistence, or with an append-only file as deployed) or as one of a
//! test's [`Processes`] ([`start_in`]).

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use botify::state::RedisStore;

use crate::ports::{free_port, LOOPBACK};
use crate::processes::{Process, Processes};

const NOT_INSTALLED: &str = "redis-server must be on PATH (Debian package `redis-server`; \
                             scripts/test installs it)";

/// `redis-server` on 127.0.0.1:`port`, saving nothing to disk.
pub fn command(port: u16) -> Command {
    let mut command = Command::new("redis-server");
    command
        .args(["--port", &port.to_string(), "--bind", &LOOPBACK.to_string()])
        .args(["--save", "", "--appendonly", "no"]);
    command
}

/// `redis://127.0.0.1:{port}/`.
pub fn url(port: u16) -> String {
    format!("redis://{LOOPBACK}:{port}/")
}

/// A new synchronous connection to the server on `port`.
pub fn connection(port: u16) -> ::redis::Connection {
    ::redis::Client::open(url(port))
        .and_then(|client| client.get_connection())
        .unwrap_or_else(|e| panic!("cannot connect to redis on port {port}: {e}"))
}

/// `redis-server` on 127.0.0.1:`port` with an append-only file in `dir`,
/// synced every second: how `docker-compose.yml` runs it.
pub fn persistent_command(port: u16, dir: &Path) -> Command {
    let mut command = Command::new("redis-server");
    command
        .args(["--port", &port.to_string(), "--bind", &LOOPBACK.to_string()])
        .args([
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
        ])
        .arg("--dir")
        .arg(dir);
    command
}

fn spawn(name: &str, port: u16, log: &Path) -> Process {
    spawn_command(name, &mut command(port), log)
}

fn spawn_command(name: &str, command: &mut Command, log: &Path) -> Process {
    Process::try_spawn(name, command, log).unwrap_or_else(|e| panic!("{NOT_INSTALLED}: {e}"))
}

/// Waits until the server answers `PING`; panics with its output if it
/// exits first (say, the port was taken) or does not answer in 10 s.
fn wait_ready(process: &mut Process, port: u16) {
    let client = ::redis::Client::open(url(port)).expect("a valid redis URL");
    let what = format!("answering PING on port {port}");
    process.wait_until(&what, Duration::from_secs(10), || {
        client
            .get_connection()
            .is_ok_and(|mut conn| ::redis::cmd("PING").query::<String>(&mut conn).is_ok())
    });
}

/// Starts a `redis-server` named `redis` among `processes` (so it is
/// checked by their `assert_alive` and stopped with them, after everything
/// started later) on a free port; returns the port once it answers.
pub fn start_in(processes: &mut Processes) -> u16 {
    let port = free_port();
    let log = processes.dir().join("redis.log");
    let process = processes.push(spawn("redis", port, &log));
    wait_ready(process, port);
    port
}

/// A `redis-server` child process of its own; stopped on drop.
pub struct RedisServer {
    pub port: u16,
    process: Process,
    _logs: tempfile::TempDir,
}

impl RedisServer {
    /// On a free port.
    pub fn start() -> RedisServer {
        Self::start_on(free_port())
    }

    /// On `port`, say the port of a server killed before.
    pub fn start_on(port: u16) -> RedisServer {
        let logs = tempfile::Builder::new()
            .prefix("testkit-redis")
            .tempdir()
            .expect("create a temp folder");
        let mut process = spawn("redis", port, &logs.path().join("redis.log"));
        wait_ready(&mut process, port);
        RedisServer {
            port,
            process,
            _logs: logs,
        }
    }

    /// On `port`, persisting to an append-only file in `dir`; a server
    /// started again on the same `dir` reads back what this one wrote.
    pub fn start_persistent_on(port: u16, dir: &Path) -> RedisServer {
        let logs = tempfile::Builder::new()
            .prefix("testkit-redis")
            .tempdir()
            .expect("create a temp folder");
        let mut process = spawn_command(
            "redis",
            &mut persistent_command(port, dir),
            &logs.path().join("redis.log"),
        );
        wait_ready(&mut process, port);
        RedisServer {
            port,
            process,
            _logs: logs,
        }
    }

    pub fn url(&self) -> String {
        url(self.port)
    }

    /// Stops the server as an operator's restart does (SIGTERM: it flushes
    /// its append-only file and exits).
    pub fn stop(&mut self) {
        self.process.stop();
    }

    pub fn connection(&self) -> ::redis::Connection {
        connection(self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to clients, like a crash).
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Panics, with the server's output, unless it is still running.
    pub fn assert_alive(&mut self) {
        self.process.assert_alive();
    }
}

/// A user's session listens as (track, time), oldest first: read through
/// the store's own key layout and entry format, so a test sees Redis as
/// the store writes it.
pub fn session_listens(
    redis: &mut dyn ::redis::ConnectionLike,
    namespace: &str,
    user: u64,
) -> Vec<(u32, f64)> {
    let entries: Vec<String> = ::redis::cmd("LRANGE")
        .arg(RedisStore::session_key(namespace, user))
        .arg(0)
        .arg(-1)
        .query(redis)
        .unwrap();
    entries
        .iter()
        .map(|entry| {
            let listen = RedisStore::parse_listen(entry)
                .unwrap_or_else(|e| panic!("not a session entry: {entry:?}: {e}"));
            (listen.track, listen.time)
        })
        .collect()
}

/// A user's profile hash (artist sums and counts, favourite), by the
/// store's key layout.
pub fn profile(
    redis: &mut dyn ::redis::ConnectionLike,
    namespace: &str,
    user: u64,
) -> HashMap<String, String> {
    ::redis::cmd("HGETALL")
        .arg(RedisStore::profile_key(namespace, user))
        .query(redis)
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping(port: u16) -> bool {
        ::redis::Client::open(url(port))
            .and_then(|client| client.get_connection())
            .and_then(|mut conn| ::redis::cmd("PING").query::<String>(&mut conn))
            .is_ok()
    }

    #[test]
    fn a_server_answers_until_killed_and_restarts_on_its_port() {
        let mut redis = RedisServer::start();
        let port = redis.port;
        assert_eq!(redis.url(), format!("redis://127.0.0.1:{port}/"));
        let mut conn = redis.connection();
        let _: () = ::redis::cmd("SET")
            .arg("k")
            .arg("v")
            .query(&mut conn)
            .unwrap();
        redis.assert_alive();
        redis.kill();
        assert!(!ping(port));
        let redis = RedisServer::start_on(port);
        let value: Option<String> = ::redis::cmd("GET")
            .arg("k")
            .query(&mut redis.connection())
            .unwrap();
        assert_eq!(value, None, "nothing persisted");
        drop(redis);
        assert!(!ping(port), "stopped on drop");
    }

    #[test]
    fn a_server_among_processes_stops_with_them() {
        let mut processes = Processes::new();
        let port = start_in(&mut processes);
        assert!(ping(port));
        processes.assert_alive();
        drop(processes);
        assert!(!ping(port));
    }
}

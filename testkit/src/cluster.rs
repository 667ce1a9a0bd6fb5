//! A real Redis Cluster of 3 masters and 3 replicas on loopback ports:
//! six `redis-server --cluster-enabled yes` joined by
//! `redis-cli --cluster create … --cluster-replicas 1`, answering with
//! `cluster_state:ok` on every node by the time it is returned. Stopped on
//! drop. Also moves slots (`redis-cli --cluster reshard`) and fails a master
//! over to its replica (`CLUSTER FAILOVER`), as operators do.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::ports::{free_port, LOOPBACK};
use crate::processes::Process;

/// Masters, each with one replica.
pub const MASTERS: usize = 3;
const NODES: usize = MASTERS * 2;
/// A node's cluster bus listens on its port plus this.
const BUS_OFFSET: u16 = 10_000;

const NOT_INSTALLED: &str = "redis-server and redis-cli must be on PATH (Debian packages \
                             `redis-server`, `redis-tools`; scripts/test installs them)";

pub struct RedisCluster {
    /// Every node's port; which are masters changes with failovers.
    pub ports: Vec<u16>,
    /// Behind a lock so a node can be killed through a shared cluster.
    nodes: std::sync::Mutex<Vec<Process>>,
    dir: tempfile::TempDir,
}

/// A free port whose cluster bus port is free too.
fn free_cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port < u16::MAX - BUS_OFFSET && TcpListener::bind((LOOPBACK, port + BUS_OFFSET)).is_ok()
        {
            return port;
        }
    }
}

fn node_command(port: u16, dir: &Path) -> Command {
    let mut command = Command::new("redis-server");
    command
        .args(["--port", &port.to_string(), "--bind", &LOOPBACK.to_string()])
        .args(["--cluster-enabled", "yes"])
        .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
        // Short, so a killed master is detected quickly.
        .args(["--cluster-node-timeout", "1000"])
        // The masters still alive keep serving their own slots while a dead
        // one's are unserved, as a production cluster should be set up
        // (docs/deployment.md): Redis's default stops every node then.
        .args(["--cluster-require-full-coverage", "no"])
        // A replica syncs as soon as it asks (the default waits 5 s for
        // more replicas), so it can take over from the start.
        .args(["--repl-diskless-sync-delay", "0"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir);
    command
}

/// `redis-cli` with `args`; panics with its output unless it succeeds.
fn redis_cli(args: &[String]) -> String {
    let output = Command::new("redis-cli")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{NOT_INSTALLED}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "redis-cli {args:?} failed:\n{text}"
    );
    text
}

/// One `CLUSTER NODES` line: id, address port, flags, slots served.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub port: u16,
    pub master: bool,
    /// The master's id, for a replica.
    pub master_id: Option<String>,
    pub slots: usize,
}

impl RedisCluster {
    /// Starts six nodes and makes them a cluster.
    pub fn start() -> RedisCluster {
        let dir = tempfile::Builder::new()
            .prefix("testkit-cluster")
            .tempdir()
            .expect("create a temp folder");
        let mut ports = Vec::new();
        while ports.len() < NODES {
            let port = free_cluster_port();
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
        let mut nodes: Vec<Process> = ports
            .iter()
            .map(|&port| {
                let log = dir.path().join(format!("redis-{port}.log"));
                Process::try_spawn(
                    &format!("redis-{port}"),
                    &mut node_command(port, dir.path()),
                    &log,
                )
                .unwrap_or_else(|e| panic!("{NOT_INSTALLED}: {e}"))
            })
            .collect();
        for (node, &port) in nodes.iter_mut().zip(&ports) {
            node.wait_listening(port, Duration::from_secs(10));
        }
        let cluster = RedisCluster {
            ports,
            nodes: std::sync::Mutex::new(nodes),
            dir,
        };
        let mut create = vec!["--cluster".to_string(), "create".to_string()];
        create.extend(cluster.ports.iter().map(|p| format!("{LOOPBACK}:{p}")));
        create.extend(["--cluster-replicas", "1", "--cluster-yes"].map(String::from));
        redis_cli(&create);
        cluster.wait_ok();
        cluster.wait_replicas_synced();
        cluster
    }

    /// Waits until every replica has synced with its master: a replica
    /// that never did cannot be elected when its master dies.
    fn wait_replicas_synced(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for replica in self.nodes().iter().filter(|n| !n.master) {
            while !self
                .cli(replica.port, &["INFO", "replication"])
                .contains("master_link_status:up")
            {
                assert!(
                    Instant::now() < deadline,
                    "replica {} never synced; logs in {}",
                    replica.port,
                    self.dir.path().display()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// The seed list botify takes with `--redis-cluster`:
    /// `redis://127.0.0.1:p1,redis://127.0.0.1:p2,…`, every node.
    pub fn url(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("redis://{LOOPBACK}:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A synchronous cluster connection, for tests to read state.
    pub fn connection(&self) -> ::redis::cluster::ClusterConnection {
        let seeds: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("redis://{LOOPBACK}:{p}/"))
            .collect();
        ::redis::cluster::ClusterClient::new(seeds)
            .and_then(|client| client.get_connection())
            .expect("connect to the cluster")
    }

    fn cli(&self, port: u16, args: &[&str]) -> String {
        let mut all = vec![
            "-h".to_string(),
            LOOPBACK.to_string(),
            "-p".to_string(),
            port.to_string(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        redis_cli(&all)
    }

    /// The cluster as a live node sees it.
    pub fn nodes(&self) -> Vec<Node> {
        let alive = self.ports[self.alive_index()];
        self.cli(alive, &["CLUSTER", "NODES"])
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if fields.len() < 8 || fields[2].contains("fail") {
                    return None;
                }
                let port = fields[1].split(['@', ':']).nth(1)?.parse().ok()?;
                let slots = fields[8..]
                    .iter()
                    .filter(|range| !range.starts_with('['))
                    .map(|range| match range.split_once('-') {
                        Some((a, b)) => {
                            b.parse::<usize>().unwrap_or(0) - a.parse::<usize>().unwrap_or(0) + 1
                        }
                        None => 1,
                    })
                    .sum();
                Some(Node {
                    id: fields[0].to_string(),
                    port,
                    master: fields[2].contains("master"),
                    master_id: (fields[3] != "-").then(|| fields[3].to_string()),
                    slots,
                })
            })
            .collect()
    }

    fn alive_index(&self) -> usize {
        (0..NODES)
            .find(|&i| {
                Command::new("redis-cli")
                    .args([
                        "-h",
                        &LOOPBACK.to_string(),
                        "-p",
                        &self.ports[i].to_string(),
                    ])
                    .arg("PING")
                    .output()
                    .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("PONG"))
            })
            .expect("a live cluster node")
    }

    /// The masters serving slots, as a live node sees them. A node that
    /// has just joined shows as a master without slots until gossip tells
    /// the others it is a replica; it is not one of these.
    pub fn masters(&self) -> Vec<Node> {
        self.nodes()
            .into_iter()
            .filter(|n| n.master && n.slots > 0)
            .collect()
    }

    /// Moves `slots` hash slots from master `from` to master `to` (node
    /// ids), key by key, while clients keep running.
    pub fn reshard(&self, from: &str, to: &str, slots: usize) {
        let seed = format!("{LOOPBACK}:{}", self.ports[self.alive_index()]);
        redis_cli(&[
            "--cluster".into(),
            "reshard".into(),
            seed,
            "--cluster-from".into(),
            from.into(),
            "--cluster-to".into(),
            to.into(),
            "--cluster-slots".into(),
            slots.to_string(),
            "--cluster-yes".into(),
        ]);
        self.wait_ok();
    }

    /// Makes a replica of `master` (a node id) take over with
    /// `CLUSTER FAILOVER`, as an operator does before maintenance; returns
    /// the new master's port once every live node agrees.
    pub fn failover(&self, master: &str) -> u16 {
        let replica = self.replica_of(master);
        self.cli(replica.port, &["CLUSTER", "FAILOVER"]);
        self.wait_promoted(&replica.id, Duration::from_millis(50));
        self.wait_ok();
        replica.port
    }

    /// The replica of `master` (a node id), as a live node sees it.
    pub fn replica_of(&self, master: &str) -> Node {
        self.nodes()
            .into_iter()
            .find(|n| n.master_id.as_deref() == Some(master))
            .expect("the master has a replica")
    }

    /// Waits, checking every `poll`, until node `replica` (an id) is a
    /// master serving slots; returns when that was first seen.
    pub fn wait_promoted(&self, replica: &str, poll: Duration) -> Instant {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let seen = Instant::now();
            if self.masters().iter().any(|m| m.id == replica) {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "{replica} was never promoted: {:?}; logs in {}",
                self.nodes(),
                self.dir.path().display()
            );
            std::thread::sleep(poll);
        }
    }

    /// Kills the node on `port` (SIGKILL, like a crash); if it was a
    /// master, its replica takes over once the others notice (the node
    /// timeout, 1 s) — wait with [`Self::wait_ok`].
    pub fn kill(&self, port: u16) {
        let i = self.ports.iter().position(|&p| p == port).expect("a node");
        self.nodes.lock().unwrap_or_else(|p| p.into_inner())[i].kill();
    }

    /// Waits until every live node reports `cluster_state:ok`, [`MASTERS`]
    /// masters serve slots, and every node's view of the slots agrees.
    pub fn wait_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = self.ports.iter().all(|&port| {
                let info = Command::new("redis-cli")
                    .args(["-h", &LOOPBACK.to_string(), "-p", &port.to_string()])
                    .args(["CLUSTER", "INFO"])
                    .output();
                match info {
                    Ok(out) => {
                        let text = String::from_utf8_lossy(&out.stdout);
                        // A killed node answers nothing: it does not vote.
                        text.is_empty() || text.contains("cluster_state:ok")
                    }
                    Err(_) => true,
                }
            });
            let seed = format!("{LOOPBACK}:{}", self.ports[self.alive_index()]);
            let serving = self.masters().len();
            let agreed = ok
                && serving == MASTERS
                && Command::new("redis-cli")
                    .args(["--cluster", "check", &seed])
                    .output()
                    .is_ok_and(|o| {
                        let text = String::from_utf8_lossy(&o.stdout);
                        text.contains("All nodes agree about slots configuration")
                            && text.contains("All 16384 slots covered")
                    });
            if agreed {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not settle; logs in {}",
                self.dir.path().display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

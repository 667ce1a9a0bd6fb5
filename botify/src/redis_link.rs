//! How botify reaches Redis: one server, or a Redis Cluster through
//! redis-rs `cluster-async`. The state store and the control plane both talk
//! through a [`RedisLink`] and never care which.
//!
//! Connections are made lazily, so the service starts without Redis, and are
//! remade after Redis restarts (the connection manager) or follow the
//! cluster's slot map after a resharding or a failover (the cluster client
//! refreshes it on `MOVED`). A request's keys share one hash slot (see
//! `state/redis.rs`), so one pipeline goes to one node in one round trip.

use std::sync::OnceLock;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{FromRedisValue, RedisResult};

/// Connections per link: one per HTTP worker thread on a small machine.
const CONNECTIONS: usize = 4;

/// Where Redis is: `--redis-url` (comma-separated seed nodes with
/// `--redis-cluster`) and whether it is a cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisTarget {
    pub urls: Vec<String>,
    pub cluster: bool,
}

impl RedisTarget {
    /// Splits `--redis-url` on commas; more than one URL needs `cluster`.
    pub fn parse(urls: &str, cluster: bool) -> Result<RedisTarget, String> {
        let urls: Vec<String> = urls
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(str::to_string)
            .collect();
        if urls.is_empty() {
            return Err("--redis-url is empty; expected redis://host:port".into());
        }
        if urls.len() > 1 && !cluster {
            return Err(format!(
                "--redis-url lists {} URLs; several seed nodes need --redis-cluster",
                urls.len()
            ));
        }
        Ok(RedisTarget { urls, cluster })
    }
}

/// One server or a cluster, each thread sticking to one of
/// [`CONNECTIONS`] connections so its driver task runs on that thread.
pub enum RedisLink {
    Single(Vec<ConnectionManager>),
    Cluster(Box<ClusterLink>),
}

pub struct ClusterLink {
    client: ClusterClient,
    config: ClusterConfig,
    /// Made on first use, on the using thread's runtime.
    connections: Vec<OnceLock<ClusterConnection>>,
}

impl ClusterLink {
    fn connection(&self) -> ClusterConnection {
        self.connections[slot()]
            .get_or_init(|| {
                self.client
                    .get_pending_async_connection_with_config(self.config.clone())
            })
            .clone()
    }
}

thread_local! {
    /// This thread's connection slot, assigned round-robin on first use.
    static SLOT: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}
static NEXT_SLOT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn slot() -> usize {
    SLOT.with(|slot| match slot.get() {
        Some(assigned) => assigned,
        None => {
            let assigned = NEXT_SLOT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            slot.set(Some(assigned));
            assigned
        }
    }) % CONNECTIONS
}

impl RedisLink {
    /// Creates the link without connecting: Redis may come up later.
    /// `timeout` bounds connecting and each answer.
    pub fn new(target: &RedisTarget, timeout: Duration) -> RedisResult<RedisLink> {
        if target.cluster {
            let client = ClusterClientBuilder::new(target.urls.clone())
                .connection_timeout(timeout)
                .response_timeout(timeout)
                // A moved slot or a failed-over master is retried after a
                // slot map refresh; the caller's own timeout bounds the whole.
                .retries(3)
                .min_retry_wait(10)
                .max_retry_wait(100)
                .build()?;
            let config = ClusterConfig::new()
                .set_connection_timeout(timeout)
                .set_response_timeout(timeout);
            return Ok(RedisLink::Cluster(Box::new(ClusterLink {
                client,
                config,
                connections: (0..CONNECTIONS).map(|_| OnceLock::new()).collect(),
            })));
        }
        let client = redis::Client::open(target.urls[0].as_str())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let connections = (0..CONNECTIONS)
            .map(|_| ConnectionManager::new_lazy_with_config(client.clone(), config.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RedisLink::Single(connections))
    }

    /// Runs `pipe`; on a cluster it goes to the node owning its first key.
    pub async fn pipe<T: FromRedisValue>(&self, pipe: &redis::Pipeline) -> RedisResult<T> {
        match self {
            RedisLink::Single(connections) => {
                let mut conn = connections[slot()].clone();
                pipe.query_async(&mut conn).await
            }
            RedisLink::Cluster(cluster) => {
                let mut conn = cluster.connection();
                pipe.query_async(&mut conn).await
            }
        }
    }

    /// Runs one command.
    pub async fn cmd<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> RedisResult<T> {
        match self {
            RedisLink::Single(connections) => {
                let mut conn = connections[slot()].clone();
                cmd.query_async(&mut conn).await
            }
            RedisLink::Cluster(cluster) => {
                let mut conn = cluster.connection();
                cmd.query_async(&mut conn).await
            }
        }
    }
}

/// Keys by pattern, for maintenance (`botify migrate`), never on a request.
impl RedisLink {
    /// Every key matching `pattern` (a `SCAN … MATCH` glob): from the one
    /// server, or from every master of a cluster (`SCAN` sees one node).
    pub async fn scan(&self, pattern: &str) -> RedisResult<Vec<String>> {
        let mut keys = Vec::new();
        match self {
            RedisLink::Single(connections) => {
                let mut conn = connections[slot()].clone();
                let mut cursor = 0;
                loop {
                    let (next, batch): (u64, Vec<String>) =
                        scan_step(cursor, pattern).query_async(&mut conn).await?;
                    keys.extend(batch);
                    if next == 0 {
                        break;
                    }
                    cursor = next;
                }
            }
            RedisLink::Cluster(cluster) => {
                let mut conn = cluster.connection();
                let nodes = conn
                    .route_command(
                        redis::cmd("CLUSTER").arg("NODES").to_owned(),
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
                    )
                    .await?;
                for (host, port) in masters(&redis::from_redis_value::<String>(nodes)?) {
                    let node = SingleNodeRoutingInfo::ByAddress { host, port };
                    let mut cursor = 0;
                    loop {
                        let reply = conn
                            .route_command(
                                scan_step(cursor, pattern),
                                RoutingInfo::SingleNode(node.clone()),
                            )
                            .await?;
                        let (next, batch): (u64, Vec<String>) = redis::from_redis_value(reply)?;
                        keys.extend(batch);
                        if next == 0 {
                            break;
                        }
                        cursor = next;
                    }
                }
            }
        }
        Ok(keys)
    }
}

fn scan_step(cursor: u64, pattern: &str) -> redis::Cmd {
    redis::cmd("SCAN")
        .arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(1000)
        .to_owned()
}

/// The addresses of the masters serving slots in a `CLUSTER NODES` reply:
/// lines of `<id> <ip>:<port>@<bus port>[,<hostname>] <flags> <master>
/// <ping> <pong> <epoch> <link> <slot ranges…>`. A master without slots
/// holds no keys (a node just added, or one about to become a replica).
fn masters(nodes: &str) -> Vec<(String, u16)> {
    nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags = fields.get(2)?;
            let master = flags.split(',').any(|f| f == "master");
            if !master || flags.contains("fail") || fields.len() <= 8 {
                return None;
            }
            let address = fields.get(1)?.split(['@', ',']).next()?;
            let (host, port) = address.rsplit_once(':')?;
            Some((host.to_string(), port.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masters_serving_slots_are_read_from_cluster_nodes() {
        let nodes = "\
a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7001@17001,node-2 master - 0 1 2 connected 5461-10922 [5461->-c3]
c3 127.0.0.1:7002@17002 slave a1 0 1 1 connected
d4 127.0.0.1:7003@17003 master - 0 1 4 connected
e5 127.0.0.1:7004@17004 master,fail - 0 1 5 disconnected 10923-16383
";
        assert_eq!(
            masters(nodes),
            [
                ("127.0.0.1".to_string(), 7000),
                ("127.0.0.1".to_string(), 7001)
            ]
        );
    }
}

//! How botify reaches Redis: one server, or a Redis Cluster through
//! redis-rs `cluster-async`. The state store and the control plane both talk
//! through a [`RedisLink`] and never care which.
//!
//! Connections are made lazily, so the service starts without Redis, and are
//! remade after Redis restarts (the connection manager) or follow the
//! cluster's slot map after a resharding or a failover (the cluster client
//! refreshes it on `MOVED`). A request's keys share one hash slot (see
//! `state/redis.rs`), so one pipeline goes to one node in one round trip.
//!
//! On a cluster the link also knows which master serves a key
//! ([`RedisLink::fault_domain`], `topology.rs`), so the state store's breaker
//! can keep one circuit per master: a master down costs only its listeners.

mod nodes;
pub mod topology;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{FromRedisValue, RedisFuture, RedisResult, Value};

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
    /// Which master serves which slot, refreshed in the background.
    topology: Arc<topology::Topology>,
    /// A connection to each master of the map.
    nodes: Arc<nodes::NodeLinks>,
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

    /// Starts a refresh of the slot map on this thread's runtime if one is
    /// due; outside a runtime (nothing to serve) there is nothing to do.
    fn refresh_topology(&self) {
        if tokio::runtime::Handle::try_current().is_err() || !self.topology.claim_refresh() {
            return;
        }
        let mut conn = self.connection();
        let topology = self.topology.clone();
        let links = self.nodes.clone();
        let ask = redis::cmd("CLUSTER").arg("NODES").to_owned();
        tokio::spawn(async move {
            let reply = tokio::time::timeout(
                REFRESH_TIMEOUT,
                conn.route_command(ask, RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random)),
            )
            .await;
            let nodes = match reply {
                Ok(Ok(value)) => redis::from_redis_value::<String>(value).ok(),
                _ => None,
            };
            match nodes {
                Some(nodes) => {
                    for (domain, address) in topology.apply(&nodes) {
                        links.assign(domain, &address);
                    }
                }
                None => topology.refresh_failed(),
            }
        });
    }
}

/// How a connection to one server reconnects: `timeout` bounds connecting
/// and each answer, and a lost server is retried at most every 200 ms.
fn manager_config(timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(200))
}

/// Bound on asking a node for the slot map.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(1);

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
                topology: Arc::default(),
                nodes: Arc::new(nodes::NodeLinks::new(timeout)),
            })));
        }
        let client = redis::Client::open(target.urls[0].as_str())?;
        let config = manager_config(timeout);
        let connections = (0..CONNECTIONS)
            .map(|_| ConnectionManager::new_lazy_with_config(client.clone(), config.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RedisLink::Single(connections))
    }

    /// How many fault domains [`Self::fault_domain`] hands out: one for a
    /// single server, one per master (up to a bound) for a cluster.
    pub fn fault_domains(&self) -> usize {
        match self {
            RedisLink::Single(_) => 1,
            RedisLink::Cluster(_) => topology::DOMAINS,
        }
    }

    /// The fault domain of `key`, in `0..fault_domains()`: on a cluster,
    /// the master serving its slot as last seen (and a refresh of that view
    /// when one is due).
    pub fn fault_domain(&self, key: &str) -> usize {
        match self {
            RedisLink::Single(_) => topology::WHOLE_STORE,
            RedisLink::Cluster(cluster) => {
                cluster.refresh_topology();
                cluster.topology.domain(key.as_bytes())
            }
        }
    }

    /// A call failed: on a cluster, the slot map may be stale (a master
    /// died, a replica took over), so it is refreshed soon.
    pub fn call_failed(&self) {
        if let RedisLink::Cluster(cluster) = self {
            cluster.topology.suspect();
        }
    }

    /// This thread's connection: to the server, or through the cluster
    /// client.
    fn connection(&self) -> Connection {
        match self {
            RedisLink::Single(connections) => Connection::Single(connections[slot()].clone()),
            RedisLink::Cluster(cluster) => Connection::Cluster(cluster.connection()),
        }
    }

    /// Runs `pipe`; on a cluster it goes to the node owning its first key.
    pub async fn pipe<T: FromRedisValue>(&self, pipe: &redis::Pipeline) -> RedisResult<T> {
        pipe.query_async(&mut self.connection()).await
    }

    /// Runs `pipe`, whose keys all hash to `key`'s slot: on a cluster
    /// straight to the master serving it (`nodes.rs`), so a dead master
    /// fails only its own slots' calls; through the cluster client when no
    /// master is known for it or the slot moved.
    pub async fn pipe_for<T: FromRedisValue>(
        &self,
        key: &str,
        pipe: &redis::Pipeline,
    ) -> RedisResult<T> {
        let RedisLink::Cluster(cluster) = self else {
            return self.pipe(pipe).await;
        };
        let node = cluster
            .nodes
            .get(self.fault_domain(key))
            .and_then(|node| node.connection());
        if let Some(mut conn) = node {
            match pipe.query_async(&mut conn).await {
                Err(err) if err.is_cluster_error() => cluster.topology.suspect(),
                answer => return answer,
            }
        }
        self.pipe(pipe).await
    }

    /// Runs one command.
    pub async fn cmd<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> RedisResult<T> {
        cmd.query_async(&mut self.connection()).await
    }
}

/// A [`RedisLink`]'s connection of either kind, so that a pipeline and a
/// command pick theirs in one place.
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(conn) => conn.req_packed_command(cmd),
            Connection::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipe: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(conn) => conn.req_packed_commands(pipe, offset, count),
            Connection::Cluster(conn) => conn.req_packed_commands(pipe, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(conn) => conn.get_db(),
            Connection::Cluster(conn) => conn.get_db(),
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
                let nodes = redis::from_redis_value::<String>(nodes)?;
                // A master without slots holds no keys (a node just added,
                // or one about to become a replica); a failed one answers
                // nothing.
                for master in topology::masters(&nodes)
                    .into_iter()
                    .filter(|m| !m.failed && !m.slots.is_empty())
                {
                    let node = SingleNodeRoutingInfo::ByAddress {
                        host: master.host,
                        port: master.port,
                    };
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

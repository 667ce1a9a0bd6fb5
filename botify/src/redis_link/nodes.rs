//! A connection to each master of a cluster, by fault domain, so a request
//! goes straight to the master serving its slot.
//!
//! The cluster client multiplexes every node over one driver, and while it
//! rebuilds its slot map after a node failed it holds back *every* request,
//! the healthy masters' too: one dead master would stall all listeners. A
//! connection per master keeps a failure where it happens. The cluster
//! client remains for what a direct connection cannot answer: a slot that
//! moved (`MOVED`/`ASK` during a resharding), a slot no known master serves,
//! and commands without a key.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::ConnectionManager;

use super::{manager_config, slot, topology::DOMAINS, CONNECTIONS};

/// One master: lazily made connection managers, one per thread slot.
pub struct NodeLink {
    client: redis::Client,
    timeout: Duration,
    connections: Vec<OnceLock<Option<ConnectionManager>>>,
}

impl NodeLink {
    /// This thread's connection; `None` if the address is not a valid URL.
    pub fn connection(&self) -> Option<ConnectionManager> {
        self.connections[slot()]
            .get_or_init(|| {
                ConnectionManager::new_lazy_with_config(
                    self.client.clone(),
                    manager_config(self.timeout),
                )
                .ok()
            })
            .clone()
    }
}

/// The link of each domain a slot map handed out.
pub struct NodeLinks {
    links: Box<[ArcSwapOption<NodeLink>]>,
    timeout: Duration,
}

impl NodeLinks {
    pub fn new(timeout: Duration) -> NodeLinks {
        NodeLinks {
            links: (0..DOMAINS).map(|_| ArcSwapOption::empty()).collect(),
            timeout,
        }
    }

    /// `domain` is now the master at `address` (`host:port`).
    pub fn assign(&self, domain: usize, address: &str) {
        let link = redis::Client::open(format!("redis://{address}"))
            .ok()
            .map(|client| {
                Arc::new(NodeLink {
                    client,
                    timeout: self.timeout,
                    connections: (0..CONNECTIONS).map(|_| OnceLock::new()).collect(),
                })
            });
        self.links[domain].store(link);
    }

    /// The master of `domain`, if one is known.
    pub fn get(&self, domain: usize) -> Option<Arc<NodeLink>> {
        self.links.get(domain)?.load_full()
    }
}

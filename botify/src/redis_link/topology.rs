//! Which Redis Cluster master serves which hash slot, as this replica last
//! saw it: the *fault domains* the state store's breaker isolates.
//!
//! One master down must cost only the listeners whose keys it holds. The
//! engine therefore keeps a circuit per domain, and a domain is a master: a
//! user's domain is the master serving the slot of the user's hash tag. The
//! map is learned from `CLUSTER NODES` and refreshed every
//! [`REFRESH_EVERY`], and sooner ([`MIN_REFRESH_GAP`]) once a call failed,
//! so a replica's promotion moves its slots to a fresh, closed circuit
//! within a fraction of a second. Until the first refresh every slot is in
//! domain [`WHOLE_STORE`], which is also the domain of a single Redis: what
//! fails there fails for everyone, as it does on a single server.
//!
//! A master keeps its domain as long as it serves slots. A failed master
//! still listed with its slots keeps them: its circuit stays open while
//! its replica is elected. Domains of masters that left are reused only
//! after every other one ([`DOMAINS`] of them, round robin), so a new node
//! does not inherit a circuit a dead one just opened.
//!
//! Reading a domain is one CRC16 and one relaxed atomic load; the map is
//! rewritten slot by slot on refresh, so a request reading mid-refresh sees
//! the old or the new owner of its slot, both of them answers the breaker
//! can live with.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::events::now_millis;

/// Redis Cluster's hash slots.
const SLOTS: usize = 16_384;
/// Fault domains a cluster's map hands out: far above any real cluster's
/// masters. Beyond them, masters share [`WHOLE_STORE`]: coarser isolation,
/// never a wrong answer.
pub const DOMAINS: usize = 1024;
/// The domain of a single Redis, of a slot no known master serves, and of
/// calls that are not about one user (`PING`).
pub const WHOLE_STORE: usize = 0;
/// How often a healthy cluster's map is refreshed (a resharding moves slots
/// without any call failing).
pub const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// The least time between two refreshes once calls fail.
pub const MIN_REFRESH_GAP: Duration = Duration::from_millis(100);

/// The hash slot of `key`: CRC16 (XMODEM) of its hash tag — the first
/// non-empty `{…}` — or of the whole key, modulo [`SLOTS`], as Redis
/// Cluster computes it.
pub fn slot(key: &[u8]) -> usize {
    let tag = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    crc16::State::<crc16::XMODEM>::calculate(tag) as usize % SLOTS
}

/// One master of a `CLUSTER NODES` reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Master {
    pub host: String,
    pub port: u16,
    /// Flagged `fail`: other nodes agree it is down.
    pub failed: bool,
    /// Inclusive slot ranges it serves.
    pub slots: Vec<(u16, u16)>,
}

/// The masters of a `CLUSTER NODES` reply: lines of `<id>
/// <ip>:<port>@<bus port>[,<hostname>] <flags> <master> <ping> <pong>
/// <epoch> <link> <slot ranges…>`. Slots being imported or migrated
/// (`[5461->-c3]`) still belong to the node listing them plainly.
pub fn masters(nodes: &str) -> Vec<Master> {
    nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags = fields.get(2)?;
            if !flags.split(',').any(|f| f == "master") {
                return None;
            }
            // `ip:port@bus,hostname`: an announced hostname is what the
            // node wants clients to use (and stays valid when a pod's IP
            // changes).
            let (endpoint, hostname) = match fields.get(1)?.split_once(',') {
                Some((endpoint, hostname)) => (endpoint, Some(hostname)),
                None => (*fields.get(1)?, None),
            };
            let address = endpoint.split('@').next()?;
            let (ip, port) = address.rsplit_once(':')?;
            let host = hostname.filter(|h| !h.is_empty()).unwrap_or(ip);
            let slots = fields
                .iter()
                .skip(8)
                .filter(|range| !range.starts_with('['))
                .filter_map(|range| match range.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => range.parse().ok().map(|s| (s, s)),
                })
                .collect();
            Some(Master {
                host: host.to_string(),
                port: port.parse().ok()?,
                failed: flags.split(',').any(|f| f == "fail"),
                slots,
            })
        })
        .collect()
}

/// The slot map and when to refresh it.
pub struct Topology {
    /// Slot → domain.
    owners: Box<[AtomicU16]>,
    /// Address → domain of the masters of the last refresh, and the round
    /// robin cursor handing out new domains; only touched by a refresh.
    domains: Mutex<(HashMap<String, u16>, u16)>,
    /// Epoch ms from which a refresh is due.
    due: AtomicU64,
    /// Epoch ms of the last refresh's start.
    last: AtomicU64,
    /// A refresh is in flight.
    refreshing: AtomicBool,
}

impl Default for Topology {
    fn default() -> Self {
        Topology {
            owners: (0..SLOTS).map(|_| AtomicU16::new(0)).collect(),
            domains: Mutex::new((HashMap::new(), 0)),
            due: AtomicU64::new(0),
            last: AtomicU64::new(0),
            refreshing: AtomicBool::new(false),
        }
    }
}

impl Topology {
    /// The fault domain of `key`.
    pub fn domain(&self, key: &[u8]) -> usize {
        self.owners[slot(key)].load(Ordering::Relaxed) as usize
    }

    /// Claims the refresh if one is due and none is in flight; the claimer
    /// must call [`Self::apply`] or [`Self::refresh_failed`].
    pub fn claim_refresh(&self) -> bool {
        let now = now_millis();
        if now < self.due.load(Ordering::Relaxed) || self.refreshing.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.last.store(now, Ordering::Relaxed);
        self.due
            .store(now + REFRESH_EVERY.as_millis() as u64, Ordering::Relaxed);
        true
    }

    /// A call failed: the map may be stale, refresh it soon.
    pub fn suspect(&self) {
        let soon = self.last.load(Ordering::Relaxed) + MIN_REFRESH_GAP.as_millis() as u64;
        self.due.fetch_min(soon, Ordering::Relaxed);
    }

    pub fn refresh_failed(&self) {
        self.suspect();
        self.refreshing.store(false, Ordering::Release);
    }

    /// Rewrites the map from a `CLUSTER NODES` reply; returns the domains
    /// handed out to new masters, with their `host:port`.
    pub fn apply(&self, nodes: &str) -> Vec<(usize, String)> {
        let masters: Vec<Master> = masters(nodes)
            .into_iter()
            .filter(|m| !m.slots.is_empty())
            .collect();
        let mut owners = vec![WHOLE_STORE as u16; SLOTS];
        let mut assigned = Vec::new();
        {
            let mut guard = self.domains.lock().unwrap_or_else(|p| p.into_inner());
            let (known, cursor) = &mut *guard;
            let mut current = HashMap::new();
            for master in &masters {
                let address = format!("{}:{}", master.host, master.port);
                let domain = match known.get(&address) {
                    Some(&domain) => domain,
                    None => {
                        let domain = next_domain(cursor, known, &current);
                        if domain != WHOLE_STORE as u16 {
                            assigned.push((domain as usize, address.clone()));
                        }
                        domain
                    }
                };
                for &(first, last) in &master.slots {
                    for slot in first..=last.min(SLOTS as u16 - 1) {
                        owners[slot as usize] = domain;
                    }
                }
                current.insert(address, domain);
            }
            *known = current;
        }
        for (owner, domain) in self.owners.iter().zip(owners) {
            owner.store(domain, Ordering::Relaxed);
        }
        self.refreshing.store(false, Ordering::Release);
        assigned
    }
}

/// The next domain, round robin, held by no master of the last refresh nor
/// of this one; [`WHOLE_STORE`] when every one is held.
fn next_domain(
    cursor: &mut u16,
    known: &HashMap<String, u16>,
    current: &HashMap<String, u16>,
) -> u16 {
    for _ in 1..DOMAINS {
        *cursor = (*cursor % (DOMAINS as u16 - 1)) + 1;
        let held = |d: &u16| *d == *cursor;
        if !known.values().any(held) && !current.values().any(held) {
            return *cursor;
        }
    }
    WHOLE_STORE as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = "\
a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7001@17001,node-2 master - 0 1 2 connected 5461-10922 [5461->-c3]
c3 127.0.0.1:7002@17002 slave a1 0 1 1 connected
d4 127.0.0.1:7003@17003 master - 0 1 4 connected
e5 127.0.0.1:7004@17004 master,fail - 0 1 5 disconnected 10923-16383
";

    #[test]
    fn slots_follow_redis_cluster_hash_tags() {
        // Values from `CLUSTER KEYSLOT`.
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        assert_eq!(slot(b"botify:user:{42}:session"), slot(b"42"));
        assert_eq!(
            slot(b"foo{}{bar}"),
            slot(b"foo{}{bar}"),
            "an empty tag hashes the key"
        );
        assert_eq!(
            slot(b"123456789"),
            0x31c3 % SLOTS,
            "CRC16 XMODEM's check value"
        );
    }

    #[test]
    fn masters_are_read_with_their_slots_and_failure() {
        let masters = masters(NODES);
        assert_eq!(masters.len(), 4);
        assert_eq!(masters[0].slots, [(0, 5460)]);
        assert_eq!(
            (masters[1].port, masters[1].slots.clone()),
            (7001, vec![(5461, 10922)])
        );
        assert!(masters[2].slots.is_empty(), "a master without slots");
        assert!(masters[3].failed && !masters[0].failed);
    }

    #[test]
    fn each_master_is_its_own_domain_and_keeps_it_across_refreshes() {
        let topology = Topology::default();
        assert_eq!(
            topology.domain(b"foo"),
            WHOLE_STORE,
            "unknown before a refresh"
        );
        let assigned = topology.apply(NODES);
        assert_eq!(assigned.len(), 3, "the masters serving slots: {assigned:?}");
        let domains: Vec<usize> = [0u16, 5460, 5461, 10923, 16383]
            .iter()
            .map(|&s| topology.owners[s as usize].load(Ordering::Relaxed) as usize)
            .collect();
        assert_eq!(domains[0], domains[1]);
        assert_ne!(domains[1], domains[2]);
        assert_eq!(domains[3], domains[4], "a failed master keeps its slots");
        assert!(domains.iter().all(|&d| d != WHOLE_STORE));

        // The failed master's replica (port 7002) is promoted: its slots
        // move to a new domain, the others stay where they were.
        let promoted = NODES
            .replace(
                "c3 127.0.0.1:7002@17002 slave a1",
                "c3 127.0.0.1:7002@17002 master -",
            )
            .replace("0 1 1 connected\n", "0 1 6 connected 10923-16383\n")
            .replace("disconnected 10923-16383", "disconnected");
        let assigned = topology.apply(&promoted);
        assert_eq!(assigned.len(), 1, "only the new master: {assigned:?}");
        assert_eq!(assigned[0].1, "127.0.0.1:7002");
        let after = |s: usize| topology.owners[s].load(Ordering::Relaxed) as usize;
        assert_eq!(after(0), domains[0]);
        assert_eq!(after(5461), domains[2]);
        assert_ne!(
            after(10923),
            domains[3],
            "a fresh circuit for the new master"
        );
        assert_ne!(after(10923), WHOLE_STORE);
    }

    #[test]
    fn a_failure_brings_the_next_refresh_forward() {
        let topology = Topology::default();
        assert!(topology.claim_refresh(), "due at once");
        assert!(!topology.claim_refresh(), "one at a time");
        topology.apply(NODES);
        assert!(!topology.claim_refresh(), "not due for a second");
        topology.suspect();
        std::thread::sleep(MIN_REFRESH_GAP + Duration::from_millis(20));
        assert!(topology.claim_refresh(), "due after the gap");
    }
}

//! Free loopback ports.
//!
//! A port is probed free and handed to a child process, which binds it a
//! moment later. Ports the kernel picks itself (`bind(0)`) come from its
//! ephemeral range, the same range every outgoing connection of a test's
//! Redis, botify or nginx draws its local port from, so under load one of
//! those connections could take the port in that moment (seen as "address
//! already in use"). These ports therefore come from below the ephemeral
//! range (Linux's default starts at 32768), with room for a Redis Cluster
//! node's bus port (port + 10,000) to stay below it too, and each is handed
//! out once per test process.

use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

/// The only address the harness binds or connects to.
pub const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The ports handed out: below the ephemeral range, and their
/// `+ 10_000` cluster bus ports too.
const FIRST: u32 = 12_000;
const COUNT: u32 = 10_000;

/// Where the next probe starts: a per-process offset (test binaries run one
/// after another, but a crashed one's children may linger) plus a counter,
/// so two tests of one process never get the same port.
static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);

/// A port free on 127.0.0.1 right now, for a child process to bind.
pub fn free_port() -> u16 {
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id() % COUNT,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..COUNT {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % COUNT) as u16;
        if TcpListener::bind((LOOPBACK, port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {FIRST}..{}", FIRST + COUNT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_port_can_be_bound_on_loopback() {
        let port = free_port();
        assert_ne!(port, 0);
        TcpListener::bind((LOOPBACK, port)).expect("the port is free");
    }

    #[test]
    fn ports_stay_below_the_ephemeral_range_and_are_not_handed_out_twice() {
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        for &port in &ports {
            assert!(
                u32::from(port) + 10_000 < 32_768,
                "{port} or its bus port is in the ephemeral range"
            );
        }
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len(), "{ports:?}");
    }
}

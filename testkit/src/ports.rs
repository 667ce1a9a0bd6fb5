//! Free loopback ports.

use std::net::{Ipv4Addr, TcpListener};

/// The only address the harness binds or connects to.
pub const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A port free on 127.0.0.1 right now, for a child process to bind: the
/// system picks it, and the probe listener is closed again at once.
pub fn free_port() -> u16 {
    TcpListener::bind((LOOPBACK, 0))
        .and_then(|listener| listener.local_addr())
        .expect("bind a loopback port")
        .port()
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
}

//! Whether a replica should be sent traffic (`GET /ready`), and the drain
//! that lets a rolling restart lose no request.
//!
//! Liveness (`/health`) and readiness differ: a replica that is starting or
//! draining is alive but should get no new traffic. On SIGTERM (or SIGINT)
//! the replica first says so on `/ready` and closes each connection after
//! its next answer, then keeps serving for the drain delay
//! so load balancers take it out of rotation while it still answers; only
//! then does it stop accepting, finish in-flight requests and flush its
//! event log.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::web;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::AppState;

/// Where a replica is in its life, as `/ready` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadyStatus {
    /// Catalog, models and state store are loaded but the server is not yet
    /// accepting.
    Starting,
    /// Serving; send traffic.
    Ready,
    /// Stopping after SIGTERM: still answering, but take it out of rotation.
    Draining,
}

/// The replica's [`ReadyStatus`], shared by the server and the signal task.
#[derive(Debug)]
pub struct Readiness(AtomicU8);

impl Default for Readiness {
    fn default() -> Self {
        Readiness(AtomicU8::new(ReadyStatus::Starting as u8))
    }
}

impl Readiness {
    pub fn status(&self) -> ReadyStatus {
        match self.0.load(Ordering::Relaxed) {
            s if s == ReadyStatus::Ready as u8 => ReadyStatus::Ready,
            s if s == ReadyStatus::Draining as u8 => ReadyStatus::Draining,
            _ => ReadyStatus::Starting,
        }
    }

    /// Serving starts; a draining replica stays draining.
    pub fn serving(&self) {
        let _ = self.0.compare_exchange(
            ReadyStatus::Starting as u8,
            ReadyStatus::Ready as u8,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// The drain starts; nothing makes the replica ready again.
    pub fn drain(&self) {
        self.0.store(ReadyStatus::Draining as u8, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.status() == ReadyStatus::Draining
    }
}

/// Middleware (`from_fn`): while draining, every answer closes its
/// connection. Clients and proxies that keep connections open (kube-proxy
/// balances connections, not requests) would otherwise keep sending to a
/// draining replica until its stop closes their connections, racing their
/// next request; closed after each answer, they reconnect, to a replica
/// that is staying, while this one still answers.
pub async fn close_connections_while_draining(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let readiness = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.readiness.clone());
    let mut response = next.call(req).await?;
    if readiness.is_some_and(|r| r.is_draining()) {
        response
            .response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(response)
}

/// Waits for SIGTERM or SIGINT, then drains: not ready at once, serving for
/// `delay`, then `stop` (graceful: in-flight requests finish). A second
/// signal during the delay stops at once, for an operator who means it.
pub async fn drain_on_signal<F, Fut>(readiness: Arc<Readiness>, delay: Duration, stop: F)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut signals = match Signals::new() {
        Ok(signals) => signals,
        Err(err) => {
            tracing::error!(%err, "cannot listen for SIGTERM/SIGINT; stop botify with SIGKILL");
            return;
        }
    };
    signals.next().await;
    readiness.drain();
    tracing::info!(
        drain_secs = delay.as_secs_f64(),
        "stopping: not ready, serving until the drain delay ends"
    );
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = signals.next() => tracing::info!("second signal: stopping without the rest of the drain"),
    }
    stop().await;
}

/// SIGTERM (what orchestrators send) and SIGINT (Ctrl-C).
struct Signals {
    term: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starting_then_ready_then_draining_for_good() {
        let readiness = Readiness::default();
        assert_eq!(readiness.status(), ReadyStatus::Starting);
        readiness.serving();
        assert_eq!(readiness.status(), ReadyStatus::Ready);
        readiness.drain();
        readiness.serving();
        assert_eq!(readiness.status(), ReadyStatus::Draining);
    }
}

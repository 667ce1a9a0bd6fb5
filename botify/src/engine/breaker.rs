//! The state store's circuit breaker, one circuit per fault domain.
//!
//! A dead or slow store must cost one timeout, not one per request. After a
//! failed call the circuit *opens* for a cooldown: store calls are skipped and
//! the engine answers statelessly. Once the cooldown has passed, the next call
//! probes the store; any answer closes the circuit, another failure opens it
//! again.
//!
//! A store may fail in parts: on a Redis Cluster one master can die while the
//! others serve. Each call therefore names its fault domain (the store's
//! [`StateStore::fault_domain`](crate::state::StateStore::fault_domain), a
//! master for a cluster, the whole store otherwise) and only that domain's
//! circuit opens, so only the listeners whose keys the dead master holds get
//! the fallback.
//!
//! A circuit's whole state is one atomic, the epoch millisecond until which it
//! is open (0: closed), so checking a healthy store is one relaxed load and no
//! clock read. Relaxed ordering is enough: the value guards no other
//! memory, and a request that reads a stale value makes or skips one store
//! call, which is what the breaker decides anyway.

use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec};

use crate::events::now_millis;
use crate::metrics::Metrics;
use crate::state::StoreError;

pub struct Breaker {
    /// How long calls are skipped after a failure.
    cooldown: Duration,
    /// Per fault domain, the epoch ms until which its circuit is open; 0
    /// when it is closed.
    open_until: Box<[AtomicU64]>,
    /// `botify_state_errors_total`, by operation.
    errors: IntCounterVec,
    /// `botify_state_circuit_opened_total`.
    opened: IntCounter,
}

impl Breaker {
    /// A breaker with `domains` closed circuits that counts into `metrics`.
    pub fn new(cooldown: Duration, domains: usize, metrics: &Metrics) -> Breaker {
        Breaker {
            cooldown,
            open_until: (0..domains.max(1)).map(|_| AtomicU64::new(0)).collect(),
            errors: metrics.state_errors.clone(),
            opened: metrics.state_circuit_opened.clone(),
        }
    }

    /// Awaits the store call `op` unless `domain`'s circuit is open; `None`
    /// means serve statelessly. A failure opens the circuit and an answer
    /// closes it; corrupt data is counted but leaves the circuit as it is.
    pub async fn call<T>(
        &self,
        domain: usize,
        op: &str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Option<T> {
        let circuit = self.circuit(domain);
        if is_open(circuit) {
            return None;
        }
        match call.await {
            Ok(value) => {
                close(circuit, domain);
                Some(value)
            }
            Err(StoreError::Corrupt(what)) => {
                // One user's bad data says nothing about the store's health:
                // serve this request statelessly, keep the circuit closed.
                self.errors.with_label_values(&[op]).inc();
                tracing::warn!(what, op, "corrupt state; serving stateless fallback");
                None
            }
            Err(err) => {
                self.failed(domain, op, &err);
                None
            }
        }
    }

    /// Counts a failed store call and opens `domain`'s circuit for the
    /// cooldown from now. Only an opening (the circuit was closed or its
    /// cooldown had passed) is logged and counted as one, so calls failing
    /// together while a node goes down make one warning, not one per request.
    pub fn failed(&self, domain: usize, op: &str, err: &dyn Display) {
        self.errors.with_label_values(&[op]).inc();
        let now = now_millis();
        let previous = self
            .circuit(domain)
            .swap(now + self.cooldown.as_millis() as u64, Ordering::Relaxed);
        if previous < now {
            self.opened.inc();
            tracing::warn!(%err, op, domain, "state store failed; serving stateless fallback");
        }
    }

    /// A domain out of range (a store handing out more than it said) shares
    /// the last circuit rather than failing the request.
    fn circuit(&self, domain: usize) -> &AtomicU64 {
        &self.open_until[domain.min(self.open_until.len() - 1)]
    }
}

fn is_open(circuit: &AtomicU64) -> bool {
    // 0 means closed: the healthy path costs no clock read.
    let until = circuit.load(Ordering::Relaxed);
    until != 0 && now_millis() < until
}

fn close(circuit: &AtomicU64, domain: usize) {
    if circuit.load(Ordering::Relaxed) != 0 {
        circuit.store(0, Ordering::Relaxed);
        tracing::info!(domain, "state store answers again");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(60);

    /// A store call that fails: the store is down.
    async fn failing() -> Result<u32, StoreError> {
        Err(StoreError::Timeout(Duration::from_millis(50)))
    }

    /// A store call that must not be made.
    async fn skipped() -> Result<u32, StoreError> {
        panic!("the breaker made a call while open")
    }

    fn errors(metrics: &Metrics, op: &str) -> u64 {
        metrics.state_errors.with_label_values(&[op]).get()
    }

    #[tokio::test]
    async fn a_healthy_store_is_called_and_nothing_is_counted() {
        let metrics = Metrics::new();
        let breaker = Breaker::new(LONG, 1, &metrics);
        assert_eq!(breaker.call(0, "record", async { Ok(7) }).await, Some(7));
        assert_eq!(breaker.call(0, "record", async { Ok(8) }).await, Some(8));
        assert_eq!(errors(&metrics, "record"), 0);
        assert_eq!(metrics.state_circuit_opened.get(), 0);
    }

    #[tokio::test]
    async fn a_failure_opens_the_circuit_for_the_cooldown() {
        let metrics = Metrics::new();
        let breaker = Breaker::new(LONG, 1, &metrics);
        assert_eq!(breaker.call(0, "record", failing()).await, None);
        assert_eq!(errors(&metrics, "record"), 1);
        assert_eq!(metrics.state_circuit_opened.get(), 1);
        assert_eq!(breaker.call(0, "apply", skipped()).await, None, "skipped");
        assert_eq!(errors(&metrics, "apply"), 0, "a skipped call is no error");
    }

    #[tokio::test]
    async fn failures_while_open_count_as_errors_but_not_as_openings() {
        let metrics = Metrics::new();
        let breaker = Breaker::new(LONG, 1, &metrics);
        breaker.failed(0, "record", &"refused");
        breaker.failed(0, "ping", &"refused");
        assert_eq!(errors(&metrics, "record"), 1);
        assert_eq!(errors(&metrics, "ping"), 1);
        assert_eq!(metrics.state_circuit_opened.get(), 1);
    }

    #[tokio::test]
    async fn after_the_cooldown_a_probe_that_answers_closes_the_circuit() {
        let metrics = Metrics::new();
        let breaker = Breaker::new(Duration::from_millis(20), 1, &metrics);
        breaker.failed(0, "record", &"refused");
        assert!(is_open(breaker.circuit(0)));
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(breaker.call(0, "record", async { Ok(1) }).await, Some(1));
        assert_eq!(breaker.circuit(0).load(Ordering::Relaxed), 0, "closed");
        breaker.failed(0, "record", &"refused");
        assert_eq!(metrics.state_circuit_opened.get(), 2, "a new opening");
    }

    #[tokio::test]
    async fn after_the_cooldown_a_probe_that_fails_opens_the_circuit_again() {
        let metrics = Metrics::new();
        let breaker = Breaker::new(Duration::from_millis(20), 1, &metrics);
        breaker.failed(0, "record", &"refused");
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(!is_open(breaker.circuit(0)), "the cooldown has passed");
        assert_eq!(breaker.call(0, "record", failing()).await, None);
        assert!(is_open(breaker.circuit(0)));
        assert_eq!(metrics.state_circuit_opened.get(), 2);
    }

    #[tokio::test]
    async fn corrupt_state_is_counted_but_keeps_the_circuit_closed() {
        let metrics = Metrics::new();
        let breaker = Breaker::new(LONG, 1, &metrics);
        let corrupt = async { Err::<u32, _>(StoreError::Corrupt("listen 3".into())) };
        assert_eq!(breaker.call(0, "record", corrupt).await, None);
        assert_eq!(errors(&metrics, "record"), 1);
        assert_eq!(metrics.state_circuit_opened.get(), 0);
        assert_eq!(breaker.call(0, "record", async { Ok(2) }).await, Some(2));
    }

    #[tokio::test]
    async fn an_answer_closes_a_circuit_another_request_opened() {
        // The circuit opens while this call is in flight (another request's
        // call failed); the store answering this one means it is back.
        let metrics = Metrics::new();
        let breaker = Breaker::new(LONG, 1, &metrics);
        let answered = breaker.call(0, "record", async {
            breaker.failed(0, "apply", &"refused");
            Ok(3)
        });
        assert_eq!(answered.await, Some(3));
        assert!(!is_open(breaker.circuit(0)));
    }

    #[tokio::test]
    async fn a_failed_domain_leaves_the_others_served() {
        let metrics = Metrics::new();
        let breaker = Breaker::new(LONG, 3, &metrics);
        assert_eq!(breaker.call(2, "record", failing()).await, None);
        assert_eq!(breaker.call(2, "record", skipped()).await, None, "skipped");
        assert_eq!(breaker.call(0, "record", async { Ok(4) }).await, Some(4));
        assert_eq!(breaker.call(1, "record", async { Ok(5) }).await, Some(5));
        assert_eq!(metrics.state_circuit_opened.get(), 1);
        breaker.failed(7, "record", &"a domain past the last");
        assert_eq!(breaker.call(2, "record", skipped()).await, None);
        assert_eq!(metrics.state_circuit_opened.get(), 1, "shares the last");
    }
}

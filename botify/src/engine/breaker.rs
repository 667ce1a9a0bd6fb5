//! The state store's circuit breaker.
//!
//! A dead or slow store must cost one timeout, not one per request. After a
//! failed call the circuit *opens* for a cooldown: store calls are skipped and
//! the engine answers statelessly. Once the cooldown has passed, the next call
//! probes the store; any answer closes the circuit, another failure opens it
//! again.
//!
//! The whole state is one atomic, the epoch millisecond until which the
//! circuit is open (0: closed), so checking a healthy store is one relaxed load
//! and no clock read. Relaxed ordering is enough: the value guards no other
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
    /// Epoch ms until which the circuit is open; 0 when it is closed.
    open_until: AtomicU64,
    /// `botify_state_errors_total`, by operation.
    errors: IntCounterVec,
    /// `botify_state_circuit_opened_total`.
    opened: IntCounter,
}

impl Breaker {
    /// A closed breaker that counts into `metrics`.
    pub fn new(cooldown: Duration, metrics: &Metrics) -> Breaker {
        Breaker {
            cooldown,
            open_until: AtomicU64::new(0),
            errors: metrics.state_errors.clone(),
            opened: metrics.state_circuit_opened.clone(),
        }
    }

    /// Awaits the store call `op` unless the circuit is open; `None` means
    /// serve statelessly. A failure opens the circuit and an answer closes
    /// it; corrupt data is counted but leaves the circuit as it is.
    pub async fn call<T>(
        &self,
        op: &str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Option<T> {
        if self.is_open() {
            return None;
        }
        match call.await {
            Ok(value) => {
                self.close();
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
                self.failed(op, &err);
                None
            }
        }
    }

    /// Counts a failed store call and opens the circuit for the cooldown
    /// from now. Only an opening (the circuit was closed or its cooldown had
    /// passed) is logged and counted as one, so calls failing together while
    /// the store goes down make one warning, not one per request.
    pub fn failed(&self, op: &str, err: &dyn Display) {
        self.errors.with_label_values(&[op]).inc();
        let now = now_millis();
        let previous = self
            .open_until
            .swap(now + self.cooldown.as_millis() as u64, Ordering::Relaxed);
        if previous < now {
            self.opened.inc();
            tracing::warn!(%err, op, "state store failed; serving stateless fallback");
        }
    }

    fn is_open(&self) -> bool {
        // 0 means closed: the healthy path costs no clock read.
        let until = self.open_until.load(Ordering::Relaxed);
        until != 0 && now_millis() < until
    }

    fn close(&self) {
        if self.open_until.load(Ordering::Relaxed) != 0 {
            self.open_until.store(0, Ordering::Relaxed);
            tracing::info!("state store answers again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(60);

    fn down() -> StoreError {
        StoreError::Timeout(Duration::from_millis(50))
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
        let breaker = Breaker::new(LONG, &metrics);
        assert_eq!(breaker.call("record", async { Ok(7) }).await, Some(7));
        assert_eq!(breaker.call("record", async { Ok(8) }).await, Some(8));
        assert_eq!(errors(&metrics, "record"), 0);
        assert_eq!(metrics.state_circuit_opened.get(), 0);
    }

    #[tokio::test]
    async fn a_failure_opens_the_circuit_for_the_cooldown() {
        let metrics = Metrics::new();
        let breaker = Breaker::new(LONG, &metrics);
        assert_eq!(
            breaker.call::<u32>("record", async { Err(down()) }).await,
            None
        );
        assert_eq!(errors(&metrics, "record"), 1);
        assert_eq!(metrics.state_circuit_opened.get(), 1);
        assert_eq!(breaker.call("apply", skipped()).await, None, "skipped");
        assert_eq!(errors(&metrics, "apply"), 0, "a skipped call is no error");
    }

    #[tokio::test]
    async fn failures_while_open_count_as_errors_but_not_as_openings() {
        let metrics = Metrics::new();
        let breaker = Breaker::new(LONG, &metrics);
        breaker.failed("record", &"refused");
        breaker.failed("ping", &"refused");
        assert_eq!(errors(&metrics, "record"), 1);
        assert_eq!(errors(&metrics, "ping"), 1);
        assert_eq!(metrics.state_circuit_opened.get(), 1);
    }

    #[tokio::test]
    async fn after_the_cooldown_a_probe_that_answers_closes_the_circuit() {
        let metrics = Metrics::new();
        let breaker = Breaker::new(Duration::from_millis(20), &metrics);
        breaker.failed("record", &"refused");
        assert!(breaker.is_open());
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(breaker.call("record", async { Ok(1) }).await, Some(1));
        assert_eq!(breaker.open_until.load(Ordering::Relaxed), 0, "closed");
        breaker.failed("record", &"refused");
        assert_eq!(metrics.state_circuit_opened.get(), 2, "a new opening");
    }

    #[tokio::test]
    async fn after_the_cooldown_a_probe_that_fails_opens_the_circuit_again() {
        let metrics = Metrics::new();
        let breaker = Breaker::new(Duration::from_millis(20), &metrics);
        breaker.failed("record", &"refused");
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(!breaker.is_open(), "the cooldown has passed");
        assert_eq!(
            breaker.call::<u32>("record", async { Err(down()) }).await,
            None
        );
        assert!(breaker.is_open());
        assert_eq!(metrics.state_circuit_opened.get(), 2);
    }

    #[tokio::test]
    async fn corrupt_state_is_counted_but_keeps_the_circuit_closed() {
        let metrics = Metrics::new();
        let breaker = Breaker::new(LONG, &metrics);
        let corrupt = async { Err::<u32, _>(StoreError::Corrupt("listen 3".into())) };
        assert_eq!(breaker.call("record", corrupt).await, None);
        assert_eq!(errors(&metrics, "record"), 1);
        assert_eq!(metrics.state_circuit_opened.get(), 0);
        assert_eq!(breaker.call("record", async { Ok(2) }).await, Some(2));
    }

    #[tokio::test]
    async fn an_answer_closes_a_circuit_another_request_opened() {
        // The circuit opens while this call is in flight (another request's
        // call failed); the store answering this one means it is back.
        let metrics = Metrics::new();
        let breaker = Breaker::new(LONG, &metrics);
        let answered = breaker.call("record", async {
            breaker.failed("apply", &"refused");
            Ok(3)
        });
        assert_eq!(answered.await, Some(3));
        assert!(!breaker.is_open());
    }
}

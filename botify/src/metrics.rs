//! Prometheus metrics, served as text by `GET /metrics`.
//!
//! One registry per service instance (not the global default), so tests can
//! run several servers in one process without their counters mixing.

use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Latency buckets in seconds: the service answers in well under a
/// millisecond, the contract caps it at 300 ms.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0,
];

pub struct Metrics {
    registry: Registry,
    /// HTTP requests by route pattern and status code.
    pub http_requests: IntCounterVec,
    /// HTTP latency by route pattern.
    pub http_duration: HistogramVec,
    /// 4xx answers by error code.
    pub request_errors: IntCounterVec,
    /// Recommendations served by arm (treatment) and recommender.
    pub recommendations: IntCounterVec,
    /// Time to serve a recommendation, by arm (treatment).
    pub recommend_duration: HistogramVec,
    /// Answers from the fallback, by reason.
    pub fallbacks: IntCounterVec,
    /// Failed state store operations, by operation.
    pub state_errors: IntCounterVec,
    /// Times the state store's circuit opened: requests then skip the store
    /// for the cooldown. Errors say how often calls fail; this says how
    /// often the store went down.
    pub state_circuit_opened: IntCounter,
    /// Requests that needed a second store round trip to write what a
    /// recommender decided (today: a change of favourite artist).
    pub state_updates: IntCounter,
    /// Event lines written and failed writes (refreshed on scrape).
    pub events_written: IntGauge,
    pub event_write_errors: IntGauge,
    /// Event lines the stream sink wrote to `--log-dir` instead, and lines
    /// of those files it sent later: a degraded log shows here.
    pub events_spilled: IntGauge,
    pub events_shipped: IntGauge,
    /// Model reloads that failed and left the previous models serving.
    pub reload_failures: IntCounter,
    /// Failed control plane operations, by operation: the replica keeps
    /// serving the last control plane it knows.
    pub control_errors: IntCounterVec,
    /// The control plane version this replica serves.
    pub control_version: IntGauge,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("botify".into()), None).expect("valid prefix");
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let opts = HistogramOpts::new(name, help).buckets(BUCKETS.to_vec());
            HistogramVec::new(opts, labels).expect("valid histogram")
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter")
        };
        let metrics = Metrics {
            http_requests: counter(
                "http_requests_total",
                "HTTP requests by route and status",
                &["route", "status"],
            ),
            http_duration: histogram(
                "http_request_duration_seconds",
                "HTTP request latency by route",
                &["route"],
            ),
            request_errors: counter(
                "request_errors_total",
                "Rejected requests by error code",
                &["code"],
            ),
            recommendations: counter(
                "recommendations_total",
                "Recommendations served by experiment arm and recommender",
                &["arm", "recommender"],
            ),
            recommend_duration: histogram(
                "recommend_duration_seconds",
                "Time to serve a recommendation by experiment arm",
                &["arm"],
            ),
            fallbacks: counter(
                "fallbacks_total",
                "Answers served by the fallback, by reason",
                &["reason"],
            ),
            state_errors: counter(
                "state_errors_total",
                "Failed state store operations",
                &["op"],
            ),
            state_circuit_opened: IntCounter::new(
                "state_circuit_opened_total",
                "Times a state store failure opened the circuit, so requests skip the store for the cooldown",
            )
            .expect("valid counter"),
            state_updates: IntCounter::new(
                "state_updates_total",
                "Second state store round trips, to write a recommender's decision",
            )
            .expect("valid counter"),
            events_written: IntGauge::new("events_written_total", "Event log lines written")
                .expect("valid gauge"),
            event_write_errors: IntGauge::new(
                "event_write_errors_total",
                "Event log write failures",
            )
            .expect("valid gauge"),
            events_spilled: IntGauge::new(
                "events_spilled_total",
                "Event lines the stream sink could not send and wrote to --log-dir",
            )
            .expect("valid gauge"),
            events_shipped: IntGauge::new(
                "events_shipped_total",
                "Event lines of --log-dir files the stream sink sent later",
            )
            .expect("valid gauge"),
            reload_failures: IntCounter::new(
                "model_reload_failures_total",
                "Model reloads that failed",
            )
            .expect("valid counter"),
            control_errors: counter(
                "control_plane_errors_total",
                "Failed control plane operations; the last known control plane keeps serving",
                &["op"],
            ),
            control_version: IntGauge::new(
                "control_plane_version",
                "The control plane version this replica serves",
            )
            .expect("valid gauge"),
            registry,
        };
        let collectors: [Box<dyn Collector>; 16] = [
            Box::new(metrics.http_requests.clone()),
            Box::new(metrics.http_duration.clone()),
            Box::new(metrics.request_errors.clone()),
            Box::new(metrics.recommendations.clone()),
            Box::new(metrics.recommend_duration.clone()),
            Box::new(metrics.fallbacks.clone()),
            Box::new(metrics.state_errors.clone()),
            Box::new(metrics.state_circuit_opened.clone()),
            Box::new(metrics.state_updates.clone()),
            Box::new(metrics.events_written.clone()),
            Box::new(metrics.event_write_errors.clone()),
            Box::new(metrics.events_spilled.clone()),
            Box::new(metrics.events_shipped.clone()),
            Box::new(metrics.reload_failures.clone()),
            Box::new(metrics.control_errors.clone()),
            Box::new(metrics.control_version.clone()),
        ];
        for collector in collectors {
            metrics
                .registry
                .register(collector)
                .expect("each metric is registered once, under its own name");
        }
        metrics
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding to memory cannot fail");
        String::from_utf8(out).expect("prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

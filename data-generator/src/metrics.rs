//! The generator's Prometheus metrics and its `/metrics` listener.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Every metric the generator exports.
pub struct Metrics {
    /// Target rate now, events/s.
    pub target_rate: Gauge<f64, AtomicU64>,
    /// Events acknowledged among those sent in the last whole second.
    pub achieved_rate: Gauge<f64, AtomicU64>,
    /// Events acknowledged by Pravega.
    pub events: Counter,
    /// Payload bytes acknowledged.
    pub bytes: Counter,
    /// Failed write attempts (each retried until --attempts).
    pub write_errors: Counter,
    /// Events given up after every attempt.
    pub failed_events: Counter,
    /// Time from write to acknowledgement.
    pub write_latency: Histogram,
    /// Segments --drive-segments aims for.
    pub segments_target: Gauge,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("data_generator");
        let m = Metrics {
            target_rate: Gauge::default(),
            achieved_rate: Gauge::default(),
            events: Counter::default(),
            bytes: Counter::default(),
            write_errors: Counter::default(),
            failed_events: Counter::default(),
            write_latency: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            segments_target: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "target_rate",
            "Target rate, events per second",
            m.target_rate.clone(),
        );
        registry.register(
            "achieved_rate",
            "Events acknowledged of those sent in the last second",
            m.achieved_rate.clone(),
        );
        registry.register("events", "Events acknowledged by Pravega", m.events.clone());
        registry.register(
            "bytes",
            "Payload bytes acknowledged by Pravega",
            m.bytes.clone(),
        );
        registry.register(
            "write_errors",
            "Failed write attempts",
            m.write_errors.clone(),
        );
        registry.register(
            "failed_events",
            "Events given up after every attempt",
            m.failed_events.clone(),
        );
        registry.register(
            "write_latency_seconds",
            "Time from write to acknowledgement",
            m.write_latency.clone(),
        );
        registry.register(
            "segments_target",
            "Segments --drive-segments aims for",
            m.segments_target.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// Records an acknowledged event.
    pub fn acknowledged(&self, bytes: usize, latency: Duration) {
        self.events.inc();
        self.bytes.inc_by(bytes as u64);
        self.write_latency.observe(latency.as_secs_f64());
    }

    /// The exit summary, one JSON object.
    pub fn summary(&self, seconds: f64) -> serde_json::Value {
        let events = self.events.get();
        serde_json::json!({
            "seconds": (seconds * 1000.0).round() / 1000.0,
            "events": events,
            "bytes": self.bytes.get(),
            "average_rate": if seconds > 0.0 { (events as f64 / seconds).round() } else { 0.0 },
            "write_errors": self.write_errors.get(),
            "failed_events": self.failed_events.get(),
        })
    }

    /// Serves `/metrics` on `listener` until the process ends.
    pub async fn serve(self: Arc<Self>, listener: tokio::net::TcpListener) {
        let router = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = self.clone();
                async move {
                    let mut text = String::new();
                    prometheus_client::encoding::text::encode(&mut text, &metrics.registry)
                        .expect("encoding to a String");
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        text,
                    )
                }
            }),
        );
        if let Err(e) = axum::serve(listener, router).await {
            tracing::warn!(error = %e, "the metrics listener stopped");
        }
    }
}

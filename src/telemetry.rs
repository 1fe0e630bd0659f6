//! Telemetry: Prometheus metrics, `/healthz` and `/readyz`, and log set-up.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of per-binding series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BindingLabels {
    /// The binding's name.
    pub binding: String,
}

/// Labels of per-stream series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabels {
    /// The binding's name.
    pub binding: String,
    /// `scope/stream`.
    pub stream: String,
}

/// Labels of decision counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// The binding's name.
    pub binding: String,
    /// `scale_up`, `scale_down` or `hold`.
    pub action: String,
}

/// Labels of source error counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    /// `prometheus` or `controller`.
    pub source: String,
}

/// Every metric the autoscaler exports, registered once.
pub struct Metrics {
    /// Active segments per bound stream (absent while unknown).
    pub stream_segments: Family<StreamLabels, Gauge>,
    /// Replicas of the target, as read.
    pub current_replicas: Family<BindingLabels, Gauge>,
    /// Replicas the segments call for.
    pub desired_replicas: Family<BindingLabels, Gauge>,
    /// Decisions taken, by action.
    pub decisions: Family<DecisionLabels, Counter>,
    /// Scale writes that failed.
    pub scale_errors: Family<BindingLabels, Counter>,
    /// Reads that failed, by source.
    pub source_errors: Family<SourceLabels, Counter>,
    /// Duration of a whole reconciliation.
    pub reconcile_duration: Histogram,
    /// Parallelism of the job's source vertex, per Flink's REST API.
    pub job_parallelism: Family<BindingLabels, Gauge>,
    /// 1 when the job runs at the desired parallelism (segments, within the replica bounds).
    pub job_aligned: Family<BindingLabels, Gauge>,
    /// 1 when this replica may act (leader, or no leader election), else 0.
    pub leader: Gauge,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("segment_autoscaler");
        let m = Metrics {
            stream_segments: Family::default(),
            current_replicas: Family::default(),
            desired_replicas: Family::default(),
            decisions: Family::default(),
            scale_errors: Family::default(),
            source_errors: Family::default(),
            reconcile_duration: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            job_parallelism: Family::default(),
            job_aligned: Family::default(),
            leader: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "stream_segments",
            "Active segments of a bound stream",
            m.stream_segments.clone(),
        );
        registry.register(
            "current_replicas",
            "Replicas of the binding's target",
            m.current_replicas.clone(),
        );
        registry.register(
            "desired_replicas",
            "Replicas the segments call for",
            m.desired_replicas.clone(),
        );
        registry.register(
            "decisions",
            "Decisions taken, by action",
            m.decisions.clone(),
        );
        registry.register(
            "scale_errors",
            "Scale writes that failed",
            m.scale_errors.clone(),
        );
        registry.register(
            "source_errors",
            "Segment-count reads that failed, by source",
            m.source_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one reconciliation",
            m.reconcile_duration.clone(),
        );
        registry.register(
            "job_parallelism",
            "Parallelism of the Flink job's source vertex",
            m.job_parallelism.clone(),
        );
        registry.register(
            "job_aligned",
            "1 if the job runs at the desired parallelism (segments, within the replica bounds)",
            m.job_aligned.clone(),
        );
        registry.register("leader", "1 if this replica may act", m.leader.clone());
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("encoding to a String");
        text
    }
}

/// Shared state of the telemetry endpoints.
pub struct Telemetry {
    /// The metrics.
    pub metrics: Metrics,
    last_reconcile: Mutex<Option<Instant>>,
    stale_after: Duration,
}

impl Telemetry {
    /// Telemetry for a loop running every `interval`: `/readyz` fails when no reconciliation
    /// completed within three intervals (at least 30 s).
    pub fn new(interval: Duration) -> Arc<Telemetry> {
        Arc::new(Telemetry {
            metrics: Metrics::default(),
            last_reconcile: Mutex::new(None),
            stale_after: (interval * 3).max(Duration::from_secs(30)),
        })
    }

    /// Notes that a reconciliation completed.
    pub fn reconciled(&self) {
        *self.last_reconcile.lock().expect("lock") = Some(Instant::now());
    }

    fn readiness(&self) -> Result<(), String> {
        match *self.last_reconcile.lock().expect("lock") {
            None => Err("no reconciliation completed yet".into()),
            Some(at) if at.elapsed() > self.stale_after => Err(format!(
                "last reconciliation {}s ago",
                at.elapsed().as_secs()
            )),
            Some(_) => Ok(()),
        }
    }

    /// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until `shutdown` completes.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = axum::Router::new()
            .route("/metrics", get(metrics))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .with_state(self);
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

async fn metrics(State(telemetry): State<Arc<Telemetry>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        telemetry.metrics.encode(),
    )
}

async fn readyz(State(telemetry): State<Arc<Telemetry>>) -> impl IntoResponse {
    match telemetry.readiness() {
        Ok(()) => (StatusCode::OK, "ok\n".to_string()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

/// Binds the telemetry listener, naming the address on failure.
pub async fn bind(address: SocketAddr) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("telemetry.listen {address}: {e}"))
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, for terminals.
    Text,
    /// One JSON object per line, for containers.
    Json,
}

/// Installs the `tracing` subscriber; `RUST_LOG` overrides the default: `info`, with the
/// Pravega client's per-retry warnings left out (its failures surface in our own logs).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        "info,pravega_controller_client=error,pravega_client_retry=error".into()
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_exported_with_their_labels() {
        let m = Metrics::default();
        m.current_replicas
            .get_or_create(&BindingLabels {
                binding: "b".into(),
            })
            .set(3);
        m.decisions
            .get_or_create(&DecisionLabels {
                binding: "b".into(),
                action: "scale_up".into(),
            })
            .inc();
        m.source_errors
            .get_or_create(&SourceLabels {
                source: "prometheus".into(),
            })
            .inc();
        let text = m.encode();
        assert!(
            text.contains("segment_autoscaler_current_replicas{binding=\"b\"} 3"),
            "{text}"
        );
        assert!(
            text.contains(
                "segment_autoscaler_decisions_total{binding=\"b\",action=\"scale_up\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("segment_autoscaler_source_errors_total{source=\"prometheus\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("segment_autoscaler_reconcile_duration_seconds_bucket"),
            "{text}"
        );
    }

    #[test]
    fn readiness_needs_a_recent_reconciliation() {
        let telemetry = Telemetry::new(Duration::from_secs(1));
        assert!(telemetry.readiness().is_err());
        telemetry.reconciled();
        assert!(telemetry.readiness().is_ok());
    }
}

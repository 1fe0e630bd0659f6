//! Telemetry: Prometheus metrics ([`metrics`], with what records them), `/healthz` and
//! `/readyz`, and log set-up.

pub mod metrics;

pub use metrics::Metrics;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;

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
    fn readiness_needs_a_recent_reconciliation() {
        let telemetry = Telemetry::new(Duration::from_secs(1));
        assert!(telemetry.readiness().is_err());
        telemetry.reconciled();
        assert!(telemetry.readiness().is_ok());
    }
}

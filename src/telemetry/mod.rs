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
    started: Instant,
    passes: Mutex<Passes>,
    stale_after: Duration,
    stuck_after: Duration,
}

/// When reconciliations last ended, each way.
#[derive(Default)]
struct Passes {
    completed: Option<Instant>,
    abandoned: Option<Instant>,
    abandoned_in_a_row: u64,
}

impl Telemetry {
    /// Telemetry for a loop running every `interval`, each reconciliation bounded by
    /// `reconcile_timeout`:
    /// - `/readyz` fails when no reconciliation *completed* within three intervals (at least
    ///   30 s): the autoscaler cannot act on what it sees;
    /// - `/healthz` fails when no reconciliation *ended* (completed or abandoned) within three
    ///   intervals plus the timeout: the loop itself is stuck, and a restart is the cure. While
    ///   it answers ok, it says how many reconciliations in a row were abandoned.
    pub fn new(interval: Duration, reconcile_timeout: Duration) -> Arc<Telemetry> {
        Arc::new(Telemetry {
            metrics: Metrics::default(),
            started: Instant::now(),
            passes: Mutex::new(Passes::default()),
            stale_after: (interval * 3).max(Duration::from_secs(30)),
            stuck_after: interval * 3 + reconcile_timeout,
        })
    }

    /// Notes that a reconciliation completed.
    pub fn reconciled(&self) {
        let mut passes = self.passes.lock().expect("lock");
        passes.completed = Some(Instant::now());
        passes.abandoned_in_a_row = 0;
    }

    /// Notes that a reconciliation was abandoned at its deadline.
    pub fn abandoned(&self) {
        self.metrics.reconciliations_abandoned.inc();
        let mut passes = self.passes.lock().expect("lock");
        passes.abandoned = Some(Instant::now());
        passes.abandoned_in_a_row += 1;
    }

    pub(crate) fn readiness(&self) -> Result<String, String> {
        match self.passes.lock().expect("lock").completed {
            None => Err("no reconciliation completed yet".into()),
            Some(at) if at.elapsed() > self.stale_after => Err(format!(
                "last reconciliation {}s ago",
                at.elapsed().as_secs()
            )),
            Some(_) => Ok("ok".into()),
        }
    }

    pub(crate) fn liveness(&self) -> Result<String, String> {
        let passes = self.passes.lock().expect("lock");
        let ended = passes.completed.max(passes.abandoned);
        let since = ended.unwrap_or(self.started).elapsed();
        if since > self.stuck_after {
            return Err(match ended {
                None => format!(
                    "no reconciliation ended in the {}s since start",
                    since.as_secs()
                ),
                Some(_) => format!(
                    "the loop is stuck: no reconciliation completed or was abandoned for {}s",
                    since.as_secs()
                ),
            });
        }
        Ok(match passes.abandoned_in_a_row {
            0 => "ok".into(),
            n => format!(
                "ok, but the last {n} reconciliation(s) were abandoned at reconcile_timeout"
            ),
        })
    }

    /// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until `shutdown` completes.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = axum::Router::new()
            .route("/metrics", get(metrics))
            .route("/healthz", get(healthz))
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
    probe_answer(telemetry.readiness(), "not ready")
}

async fn healthz(State(telemetry): State<Arc<Telemetry>>) -> impl IntoResponse {
    probe_answer(telemetry.liveness(), "unhealthy")
}

fn probe_answer(state: Result<String, String>, failing: &str) -> (StatusCode, String) {
    match state {
        Ok(note) => (StatusCode::OK, format!("{note}\n")),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{failing}: {why}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_needs_a_recent_reconciliation() {
        let telemetry = Telemetry::new(Duration::from_secs(1), Duration::from_secs(1));
        assert!(telemetry.readiness().is_err());
        telemetry.reconciled();
        assert!(telemetry.readiness().is_ok());
    }

    #[test]
    fn liveness_needs_a_reconciliation_that_ended_either_way() {
        let telemetry = Telemetry::new(Duration::from_millis(10), Duration::from_millis(20));
        assert!(telemetry.liveness().is_ok(), "healthy while starting");
        std::thread::sleep(Duration::from_millis(60));
        let error = telemetry.liveness().unwrap_err();
        assert!(error.contains("since start"), "{error}");
        telemetry.abandoned();
        assert!(
            telemetry.liveness().is_ok(),
            "an abandoned pass shows the loop turns"
        );
        assert!(telemetry.readiness().is_err(), "but nothing completed");
        std::thread::sleep(Duration::from_millis(60));
        let error = telemetry.liveness().unwrap_err();
        assert!(error.contains("stuck"), "{error}");
        assert!(telemetry
            .metrics
            .encode()
            .contains("segment_autoscaler_reconciliations_abandoned_total 1"));
    }
}

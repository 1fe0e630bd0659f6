//! The control loop: every interval, one reconciliation of every binding, each in its own
//! tracing span, through typed stages (`outcome.rs`): `Observed` (segments, the target's replicas
//! and the Flink job's status, read together) -> `Planned` (the pure plan, and the prewarmed
//! mode's writes) -> `Outcome` (the writes, by the leader only) -> verified and recorded (the
//! job's parallelism against the plan). The stages live in their modules; [`LiveBinding`]
//! sequences them for one binding, [`Autoscaler`] for all of them, every interval.

mod binding;
mod outcome;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

pub use binding::LiveBinding;
pub use outcome::{BindingReport, StreamEvidence};

use crate::leader::Leadership;
use crate::observe::Sources;
use crate::telemetry::Telemetry;

/// Every binding with the sources they read.
pub struct Autoscaler {
    sources: Sources,
    bindings: Vec<LiveBinding>,
    telemetry: Arc<Telemetry>,
}

impl Autoscaler {
    /// Assembles an autoscaler (see [`crate::setup::autoscaler`]; tests swap in their own
    /// sources and targets here).
    pub fn new(sources: Sources, bindings: Vec<LiveBinding>, telemetry: Arc<Telemetry>) -> Self {
        let metrics = &telemetry.metrics;
        for kind in sources.kinds() {
            metrics.register_source(kind);
        }
        for binding in &bindings {
            metrics.register_binding(&binding.config.name, binding.alignment);
        }
        Autoscaler {
            sources,
            bindings,
            telemetry,
        }
    }

    /// Reconciles every `interval` until `shutdown` completes, acting only while `leadership`
    /// is held (checked again right before each write). A reconciliation still running after
    /// `deadline` is abandoned and counted, so one stuck call never stops the loop.
    pub async fn run(
        mut self,
        interval: Duration,
        deadline: Duration,
        leadership: Leadership,
        shutdown: impl Future<Output = ()>,
    ) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        let mut leading = None;
        loop {
            // Shutdown first when both are ready: an unbiased select could pick the tick and run
            // again after SIGTERM.
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                _ = ticks.tick() => {}
            }
            let held = leadership.is_held();
            if leading.is_some_and(|was| was != held) {
                tracing::info!(leader = held, "leadership changed");
            }
            leading = Some(held);
            self.telemetry.metrics.leader.set(i64::from(held));
            // A standby still observes and plans, so its history is warm when it takes over.
            // Shutdown abandons a pass in flight: a pass waiting on a slow source must not keep
            // the Lease from being released while the pod's grace period runs out.
            let pass = tokio::time::timeout(deadline, self.reconcile(Some(&leadership)));
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                ended = pass => if ended.is_err() {
                    self.telemetry.abandoned();
                    tracing::warn!(?deadline, "reconciliation abandoned at its deadline (reconcile_timeout)");
                },
            }
        }
        tracing::info!("stopping");
    }

    /// Reconciles every binding once, writing only while `acting` is given and held; with
    /// `None` nothing is changed (plan mode).
    pub async fn reconcile(&mut self, acting: Option<&Leadership>) -> Vec<BindingReport> {
        let started = Instant::now();
        let readings = self
            .sources
            .read(
                self.bindings
                    .iter()
                    .map(|b| (b.config.source, b.config.streams.as_slice())),
            )
            .await;
        let metrics = &self.telemetry.metrics;
        metrics.record_source_failures(&readings.failures());
        let now = Instant::now();
        let reports = futures::future::join_all(self.bindings.iter_mut().map(|binding| {
            let span = tracing::info_span!("reconcile", binding = %binding.config.name);
            binding
                .reconcile(&readings, now, acting, metrics)
                .instrument(span)
        }))
        .await;
        metrics
            .reconcile_duration
            .observe(started.elapsed().as_secs_f64());
        self.telemetry.reconciled();
        reports
    }
}

#[cfg(test)]
mod tests;

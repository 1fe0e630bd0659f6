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
    declared: Option<Box<dyn DeclaredBindings>>,
    telemetry: Arc<Telemetry>,
}

/// Bindings declared while the autoscaler runs (SegmentScaler resources): brought up to date
/// before each pass, shown what each pass found after it.
#[async_trait::async_trait]
pub trait DeclaredBindings: Send {
    /// What changed since the last pass: bindings to add, and names of bindings to drop (an
    /// edited declaration is both).
    fn sync(&mut self) -> BindingChanges;
    /// Shows what this pass found for the declared bindings (`write` only on the leader).
    async fn publish(&mut self, reports: &[BindingReport], write: bool);
    /// Completes once every declaration has been read once (`plan` waits for it).
    async fn listed(&self);
}

/// The changes [`DeclaredBindings::sync`] found.
#[derive(Default)]
pub struct BindingChanges {
    /// Bindings to start reconciling.
    pub added: Vec<LiveBinding>,
    /// Names of bindings to stop reconciling.
    pub removed: Vec<String>,
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
            declared: None,
            telemetry,
        }
    }

    /// Adds bindings declared while running, synced before every pass.
    pub fn with_declared(mut self, declared: Box<dyn DeclaredBindings>) -> Self {
        self.declared = Some(declared);
        self
    }

    /// Completes once the declared bindings have been read once (at once without any).
    pub async fn declared_listed(&self) {
        if let Some(declared) = &self.declared {
            declared.listed().await;
        }
    }

    /// Applies the declared bindings' changes: a withdrawn binding is never written for again
    /// and its series leave `/metrics`.
    fn sync_declared(&mut self) {
        let Some(declared) = &mut self.declared else {
            return;
        };
        let changes = declared.sync();
        let metrics = &self.telemetry.metrics;
        for name in &changes.removed {
            if let Some(i) = self.bindings.iter().position(|b| &b.config.name == name) {
                let binding = self.bindings.remove(i);
                metrics.forget_binding(name, binding.alignment, &binding.config.streams);
            }
        }
        for binding in changes.added {
            metrics.register_binding(&binding.config.name, binding.alignment);
            self.bindings.push(binding);
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
        self.sync_declared();
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
        if let Some(declared) = &mut self.declared {
            let write = acting.is_some_and(Leadership::is_held);
            declared.publish(&reports, write).await;
        }
        metrics
            .reconcile_duration
            .observe(started.elapsed().as_secs_f64());
        self.telemetry.reconciled();
        reports
    }
}

#[cfg(test)]
mod tests;

//! The control loop: every interval, one reconciliation of every binding, each in its own
//! tracing span: observe (segments, the target's replicas and the Flink job's status, read
//! together) -> plan (pure) -> act (the leader only) -> verify (the job's parallelism against
//! the plan). The stages live in their modules; this one only sequences them.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::Instrument;

use crate::actuate::{Replicas, ScaleTarget};
use crate::config::Binding;
use crate::domain::StreamId;
use crate::leader::LeaderElector;
use crate::observe::{Observation, SourceReadings, Sources};
use crate::plan::{plan, Action, PlanInput, ScaleDecision, ScaleHistory, ScalingPolicy};
use crate::telemetry::{Metrics, Telemetry};
use crate::verify::{FlinkClient, JobStatus, VerifyError};

/// One binding's outcome: the record `segment-autoscaler plan` prints.
#[derive(Debug, Clone, Serialize)]
pub struct BindingReport {
    /// The binding's name.
    pub binding: String,
    /// Its streams.
    pub streams: Vec<StreamId>,
    /// Combined segment count, null when unknown.
    pub segments: Option<u32>,
    /// Which source(s) answered, e.g. `controller` or `prometheus`.
    pub source: String,
    /// The target's replicas, null when unknown.
    pub current_replicas: Option<u32>,
    /// The replicas the segments call for, null when unknown.
    pub desired_replicas: Option<u32>,
    /// `scale_up`, `scale_down` or `hold`.
    pub action: Action,
    /// Why.
    pub reason: String,
}

/// A binding with its live parts: target, Flink client and scale-down history.
pub struct LiveBinding {
    config: Binding,
    policy: ScalingPolicy,
    target: Box<dyn ScaleTarget>,
    flink: Option<FlinkClient>,
    history: ScaleHistory,
    last_reason: String,
}

impl LiveBinding {
    /// A binding acting on `target`, verified through `flink` when given.
    pub fn new(config: Binding, target: Box<dyn ScaleTarget>, flink: Option<FlinkClient>) -> Self {
        LiveBinding {
            policy: ScalingPolicy::from(&config),
            config,
            target,
            flink,
            history: ScaleHistory::default(),
            last_reason: String::new(),
        }
    }
}

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
            metrics.register_binding(&binding.config.name);
        }
        Autoscaler {
            sources,
            bindings,
            telemetry,
        }
    }

    /// Reconciles every `interval` until `shutdown` completes, acting only while `elector`
    /// (if any) holds the Lease; then releases the Lease.
    pub async fn run(
        mut self,
        interval: Duration,
        elector: Option<LeaderElector>,
        shutdown: impl Future<Output = ()>,
    ) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        let mut leading = false;
        loop {
            // Shutdown first when both are ready: an unbiased select could pick the tick and run
            // (and renew the Lease) again after SIGTERM.
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                _ = ticks.tick() => {}
            }
            let may_act = match &elector {
                None => true,
                Some(elector) => match elector.try_lead().await {
                    Ok(lead) => lead,
                    Err(e) => {
                        tracing::warn!(error = %e, "leader election failed; not acting this tick");
                        false
                    }
                },
            };
            if let (Some(elector), true) = (&elector, may_act != leading) {
                tracing::info!(
                    identity = elector.identity(),
                    leader = may_act,
                    "leadership changed"
                );
            }
            leading = may_act;
            self.telemetry.metrics.leader.set(i64::from(may_act));
            // A standby still observes and plans, so its history is warm when it takes over.
            // Shutdown abandons a pass in flight: a pass waiting on a slow source must not keep
            // the Lease from being released while the pod's grace period runs out.
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                _ = self.reconcile(may_act) => {}
            }
        }
        tracing::info!("stopping");
        if let Some(elector) = &elector {
            if let Err(e) = elector.release().await {
                tracing::warn!(error = %e, "could not release the lease; a standby takes over when it expires");
            }
        }
    }

    /// Reconciles every binding once. With `act` false nothing is changed (plan mode, or a
    /// replica that is not the leader).
    pub async fn reconcile(&mut self, act: bool) -> Vec<BindingReport> {
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
                .reconcile(&readings, now, act, metrics)
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

impl LiveBinding {
    async fn reconcile(
        &mut self,
        readings: &SourceReadings,
        now: Instant,
        act: bool,
        metrics: &Metrics,
    ) -> BindingReport {
        // Observe.
        let observations: Vec<Observation> = self
            .config
            .streams
            .iter()
            .map(|s| readings.observe(self.config.source, s))
            .collect();
        let job_status = async {
            match &self.flink {
                Some(flink) => Some(flink.job_status().await),
                None => None,
            }
        };
        let (current, job) = futures::join!(self.target.current(), job_status);
        let read: Option<Replicas> = current.as_ref().ok().cloned();
        let input = PlanInput {
            observations,
            current_replicas: current.map(|r| r.count),
            max_parallelism: job
                .as_ref()
                .and_then(|j| j.as_ref().ok())
                .map(|j| j.max_parallelism),
            now,
        };

        // Plan.
        let mut decision = plan(&self.policy, &input, &mut self.history);

        // Act.
        match (act, decision.apply_to(), &read) {
            (true, Some(replicas), Some(read)) => {
                self.apply(read, replicas, &mut decision, metrics).await
            }
            // Holds repeat every tick: log when the reason changes.
            _ if decision.reason != self.last_reason => {
                tracing::info!(action = decision.action.as_str(), act, reason = %decision.reason, "decision");
            }
            _ => {}
        }
        self.last_reason = decision.reason.clone();
        metrics.record_decision(&self.config.name, &input.observations, &decision);

        // Verify.
        if let Some(job) = &job {
            self.verify(job, &decision, metrics);
        }

        let sources: BTreeSet<&str> = input
            .observations
            .iter()
            .map(|o| o.source.as_str())
            .collect();
        BindingReport {
            binding: self.config.name.clone(),
            streams: self.config.streams.clone(),
            segments: decision.segments,
            source: sources.into_iter().collect::<Vec<_>>().join("+"),
            current_replicas: decision.current_replicas,
            desired_replicas: decision.desired_replicas,
            action: decision.action,
            reason: decision.reason,
        }
    }

    /// Writes `replicas`; a failure is counted and noted in the decision's reason.
    async fn apply(
        &self,
        read: &Replicas,
        replicas: u32,
        decision: &mut ScaleDecision,
        metrics: &Metrics,
    ) {
        match self.target.apply(read, replicas, &decision.reason).await {
            Ok(()) => tracing::info!(
                target_ref = %self.target.describe(), from = read.count, to = replicas,
                segments = decision.segments, reason = %decision.reason, "scaled"
            ),
            Err(e) => {
                metrics.record_scale_error(&self.config.name, e.reason());
                tracing::warn!(
                    target_ref = %self.target.describe(), error = %e,
                    reason = e.reason().as_str(), "scale failed; will retry"
                );
                decision.reason = format!("{} (not applied: {e})", decision.reason);
            }
        }
    }

    /// Whether the job runs at the parallelism the plan wants.
    fn verify(
        &self,
        job: &Result<JobStatus, VerifyError>,
        decision: &ScaleDecision,
        metrics: &Metrics,
    ) {
        match job {
            Ok(status) => {
                let slots = self.policy.slots_per_taskmanager;
                let aligned = decision
                    .desired_replicas
                    .is_some_and(|desired| status.aligned_with(desired, slots));
                metrics.record_job(&self.config.name, Some(status.parallelism), aligned);
            }
            Err(e) => {
                tracing::debug!(error = %e, reason = e.reason().as_str(), "flink job status unavailable");
                metrics.record_job(&self.config.name, None, false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actuate::ActuateError;
    use crate::config::Config;
    use crate::domain::{SourceChoice, SourceKind};
    use crate::observe::{SegmentReading, SegmentSource, SourceError};
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Readings a fake source answers with, shared with the test.
    type Table = Arc<Mutex<HashMap<StreamId, SegmentReading>>>;

    /// A source answering from a shared table.
    struct FakeSource(SourceKind, Table);

    #[async_trait::async_trait]
    impl SegmentSource for FakeSource {
        fn kind(&self) -> SourceKind {
            self.0
        }
        async fn read(&self, streams: &BTreeSet<StreamId>) -> HashMap<StreamId, SegmentReading> {
            let table = self.1.lock().unwrap();
            streams
                .iter()
                .map(|s| {
                    (
                        s.clone(),
                        table.get(s).cloned().unwrap_or(SegmentReading::Missing),
                    )
                })
                .collect()
        }
    }

    /// A target remembering its count and every write; writes fail while `conflict` is set.
    #[derive(Clone, Default)]
    struct FakeTarget {
        state: Arc<Mutex<(u32, Vec<u32>)>>,
        conflict: Arc<Mutex<bool>>,
    }

    #[async_trait::async_trait]
    impl ScaleTarget for FakeTarget {
        fn describe(&self) -> String {
            "fake".into()
        }
        async fn current(&self) -> Result<Replicas, ActuateError> {
            Ok(Replicas {
                count: self.state.lock().unwrap().0,
                version: None,
            })
        }
        async fn apply(
            &self,
            _current: &Replicas,
            replicas: u32,
            _reason: &str,
        ) -> Result<(), ActuateError> {
            if *self.conflict.lock().unwrap() {
                return Err(ActuateError::Conflict {
                    target: "fake".into(),
                });
            }
            let mut state = self.state.lock().unwrap();
            state.0 = replicas;
            state.1.push(replicas);
            Ok(())
        }
    }

    impl FakeTarget {
        fn writes(&self) -> Vec<u32> {
            self.state.lock().unwrap().1.clone()
        }
    }

    fn unavailable(message: &str) -> SegmentReading {
        SegmentReading::Unavailable(SourceError::Unreachable {
            endpoint: "fake".into(),
            message: message.into(),
        })
    }

    fn setup(source: SourceChoice) -> (Autoscaler, Table, FakeTarget, Arc<Telemetry>) {
        let config = Config::parse(&format!(
            "prometheus: {{url: http://p:1}}\npravega: {{controller: tcp://c:1}}\nbindings:\n- {{name: b, streams: [demo/load], source: {}, max_replicas: 8, target: {{kind: command, get: [x], set: [x, '{{replicas}}']}}}}\n",
            match source {
                SourceChoice::Prometheus => "prometheus",
                SourceChoice::Controller => "controller",
                SourceChoice::Auto => "auto",
            }
        ))
        .unwrap();
        let table = Arc::new(Mutex::new(HashMap::new()));
        let target = FakeTarget::default();
        target.state.lock().unwrap().0 = 1;
        let telemetry = Telemetry::new(config.interval);
        let sources = Sources {
            prometheus: Some(Box::new(FakeSource(SourceKind::Prometheus, table.clone()))),
            controller: Some(Box::new(FakeSource(
                SourceKind::Controller,
                Arc::new(Mutex::new(HashMap::new())),
            ))),
        };
        let binding = LiveBinding::new(config.bindings[0].clone(), Box::new(target.clone()), None);
        let autoscaler = Autoscaler::new(sources, vec![binding], telemetry.clone());
        (autoscaler, table, target, telemetry)
    }

    /// A source that never answers.
    struct StalledSource;

    #[async_trait::async_trait]
    impl SegmentSource for StalledSource {
        fn kind(&self) -> SourceKind {
            SourceKind::Prometheus
        }
        async fn read(&self, _: &BTreeSet<StreamId>) -> HashMap<StreamId, SegmentReading> {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn shutdown_stops_the_loop_during_a_pass_that_waits_on_a_source() {
        let (autoscaler, _, _, telemetry) = setup(SourceChoice::Prometheus);
        let bindings = autoscaler.bindings;
        let sources = Sources {
            prometheus: Some(Box::new(StalledSource)),
            controller: None,
        };
        let autoscaler = Autoscaler::new(sources, bindings, telemetry);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let run = tokio::spawn(autoscaler.run(Duration::from_millis(10), None, async {
            let _ = stopped.await;
        }));
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(2), run)
            .await
            .expect("the loop stopped though its pass was still waiting")
            .unwrap();
    }

    #[tokio::test]
    async fn plan_mode_never_writes_and_a_leader_writes_once() {
        let (mut autoscaler, table, target, _) = setup(SourceChoice::Prometheus);
        table
            .lock()
            .unwrap()
            .insert("demo/load".parse().unwrap(), SegmentReading::Segments(3));
        let reports = autoscaler.reconcile(false).await;
        assert_eq!(
            (reports[0].action, reports[0].desired_replicas),
            (Action::ScaleUp, Some(3))
        );
        assert!(target.writes().is_empty(), "plan mode wrote nothing");
        autoscaler.reconcile(true).await;
        autoscaler.reconcile(true).await;
        assert_eq!(target.writes(), vec![3], "one write, then aligned");
    }

    #[tokio::test]
    async fn a_failed_source_is_counted_with_its_reason_and_held_on() {
        let (mut autoscaler, table, target, telemetry) = setup(SourceChoice::Prometheus);
        table
            .lock()
            .unwrap()
            .insert("demo/load".parse().unwrap(), unavailable("refused"));
        let reports = autoscaler.reconcile(true).await;
        assert_eq!(
            (
                reports[0].action,
                reports[0].segments,
                reports[0].current_replicas
            ),
            (Action::Hold, None, Some(1))
        );
        assert!(
            reports[0]
                .reason
                .contains("(prometheus): source unavailable: fake: refused"),
            "{}",
            reports[0].reason
        );
        assert!(target.writes().is_empty());
        let text = telemetry.metrics.encode();
        assert!(
            text.contains(
                "segment_autoscaler_source_errors_total{source=\"prometheus\",reason=\"unreachable\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "segment_autoscaler_source_errors_total{source=\"prometheus\",reason=\"timeout\"} 0"
            ),
            "{text}"
        );
        assert!(
            !text.contains("segment_autoscaler_stream_segments{"),
            "an unknown count is not exported as a number"
        );
    }

    #[tokio::test]
    async fn a_failed_write_is_counted_with_its_reason_and_retried() {
        let (mut autoscaler, table, target, telemetry) = setup(SourceChoice::Prometheus);
        table
            .lock()
            .unwrap()
            .insert("demo/load".parse().unwrap(), SegmentReading::Segments(2));
        *target.conflict.lock().unwrap() = true;
        let reports = autoscaler.reconcile(true).await;
        assert!(
            reports[0].reason.contains("not applied")
                && reports[0].reason.contains("another writer"),
            "{}",
            reports[0].reason
        );
        let text = telemetry.metrics.encode();
        assert!(
            text.contains(
                "segment_autoscaler_scale_errors_total{binding=\"b\",reason=\"conflict\"} 1"
            ),
            "{text}"
        );
        *target.conflict.lock().unwrap() = false;
        autoscaler.reconcile(true).await;
        assert_eq!(target.writes(), vec![2], "the next tick retries");
    }

    #[tokio::test]
    async fn auto_falls_back_to_prometheus_when_the_controller_is_silent() {
        let (mut autoscaler, table, target, _) = setup(SourceChoice::Auto);
        // The fake controller answers Missing for everything; make it unavailable instead.
        autoscaler.sources.controller = Some(Box::new(FakeSource(
            SourceKind::Controller,
            Arc::new(Mutex::new(
                [("demo/load".parse().unwrap(), unavailable("down"))].into(),
            )),
        )));
        table
            .lock()
            .unwrap()
            .insert("demo/load".parse().unwrap(), SegmentReading::Segments(2));
        let reports = autoscaler.reconcile(true).await;
        assert_eq!(
            (reports[0].source.as_str(), reports[0].action),
            ("prometheus", Action::ScaleUp)
        );
        assert_eq!(target.writes(), vec![2]);
    }
}

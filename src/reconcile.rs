//! One reconciliation of every binding: observe -> plan -> actuate -> verify, with metrics and
//! a tracing span per binding. The I/O lives here and in the stage modules; the decision is
//! [`crate::plan::plan`].

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tracing::Instrument;

use crate::actuate::{CommandTarget, DeploymentTarget, ScaleTarget, StatefulSetTarget};
use crate::config::{Binding, Config, SourceChoice, TargetConfig};
use crate::observe::{
    ControllerSource, Observation, PrometheusSource, SegmentReading, SegmentSource, SourceKind,
    StreamId,
};
use crate::plan::{plan, Action, PlanInput, ScaleHistory, ScalingPolicy};
use crate::telemetry::{
    BindingLabels, DecisionLabels, Metrics, SourceLabels, StreamLabels, Telemetry,
};
use crate::verify::{FlinkClient, JobStatus};

/// Why the autoscaler could not be set up from a valid configuration.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The Kubernetes client could not be configured.
    #[error("kubernetes client: {0}")]
    Kubernetes(String),
    /// A secret could not be read.
    #[error("{field}: {message}")]
    Secret {
        /// The config field naming the secret.
        field: String,
        /// What went wrong (never the secret itself).
        message: String,
    },
}

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
struct BoundJob {
    config: Binding,
    policy: ScalingPolicy,
    target: Box<dyn ScaleTarget>,
    flink: Option<FlinkClient>,
    history: ScaleHistory,
    last_reason: String,
}

/// Every binding with the sources they read.
pub struct Autoscaler {
    prometheus: Option<Box<dyn SegmentSource>>,
    controller: Option<Box<dyn SegmentSource>>,
    bindings: Vec<BoundJob>,
    telemetry: Arc<Telemetry>,
}

/// Whether the configuration needs a Kubernetes client.
pub fn needs_kubernetes(config: &Config) -> bool {
    config.leader_election.is_some()
        || config
            .bindings
            .iter()
            .any(|b| !matches!(b.target, TargetConfig::Command { .. }))
}

/// A Kubernetes client from `kubernetes.kubeconfig`, or inferred (KUBECONFIG, ~/.kube/config,
/// in-cluster ServiceAccount).
pub async fn kube_client(config: &Config) -> Result<kube::Client, SetupError> {
    let kube_config = match &config.kubernetes.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                SetupError::Kubernetes(format!("kubernetes.kubeconfig {}: {e}", path.display()))
            })?;
            kube::Config::from_custom_kubeconfig(
                kubeconfig,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .map_err(|e| {
                SetupError::Kubernetes(format!("kubernetes.kubeconfig {}: {e}", path.display()))
            })?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| SetupError::Kubernetes(e.to_string()))?,
    };
    kube::Client::try_from(kube_config).map_err(|e| SetupError::Kubernetes(e.to_string()))
}

fn prometheus_token(
    config: &crate::config::PrometheusConfig,
) -> Result<Option<String>, SetupError> {
    if let Some(path) = &config.bearer_token_file {
        let token = std::fs::read_to_string(path).map_err(|e| SetupError::Secret {
            field: "prometheus.bearer_token_file".into(),
            message: format!("{}: {e}", path.display()),
        })?;
        return Ok(Some(token.trim().to_string()));
    }
    if let Some(name) = &config.bearer_token_env {
        let token = std::env::var(name).map_err(|_| SetupError::Secret {
            field: "prometheus.bearer_token_env".into(),
            message: format!("environment variable {name} is not set"),
        })?;
        return Ok(Some(token.trim().to_string()));
    }
    Ok(None)
}

impl Autoscaler {
    /// Builds sources and targets from a validated configuration. `kube` is required when
    /// [`needs_kubernetes`] says so; `identity` names this replica in Events.
    pub fn new(
        config: &Config,
        kube: Option<kube::Client>,
        identity: &str,
        telemetry: Arc<Telemetry>,
    ) -> Result<Autoscaler, SetupError> {
        let prometheus =
            match &config.prometheus {
                Some(p) => Some(Box::new(PrometheusSource::new(p, prometheus_token(p)?))
                    as Box<dyn SegmentSource>),
                None => None,
            };
        let controller = config
            .pravega
            .as_ref()
            .map(|p| Box::new(ControllerSource::new(p)) as Box<dyn SegmentSource>);
        // Checked by `needs_kubernetes` before, so a missing client is a caller's bug.
        let kube_client = || {
            kube.clone().ok_or_else(|| {
                SetupError::Kubernetes(
                    "a Deployment or StatefulSet target needs a Kubernetes client".into(),
                )
            })
        };
        let bindings = config
            .bindings
            .iter()
            .map(|b| {
                let target: Box<dyn ScaleTarget> = match &b.target {
                    TargetConfig::Deployment { namespace, name } => {
                        let client = kube_client()?;
                        Box::new(DeploymentTarget::new(client, namespace, name, identity))
                    }
                    TargetConfig::Statefulset { namespace, name } => {
                        let client = kube_client()?;
                        Box::new(StatefulSetTarget::new(client, namespace, name, identity))
                    }
                    TargetConfig::Command { get, set, timeout } => {
                        Box::new(CommandTarget::new(get.clone(), set.clone(), *timeout))
                    }
                };
                Ok((b.clone(), target))
            })
            .collect::<Result<Vec<_>, SetupError>>()?;
        Ok(Autoscaler::from_parts(
            prometheus, controller, bindings, telemetry,
        ))
    }

    /// Assembles an autoscaler from its sources and each binding's target (tests swap in their
    /// own implementations here).
    pub fn from_parts(
        prometheus: Option<Box<dyn SegmentSource>>,
        controller: Option<Box<dyn SegmentSource>>,
        bindings: Vec<(Binding, Box<dyn ScaleTarget>)>,
        telemetry: Arc<Telemetry>,
    ) -> Autoscaler {
        let bindings: Vec<BoundJob> = bindings
            .into_iter()
            .map(|(config, target)| BoundJob {
                policy: ScalingPolicy::from(&config),
                flink: config
                    .flink
                    .as_ref()
                    .map(|f| FlinkClient::new(&f.rest_url, f.timeout)),
                config,
                target,
                history: ScaleHistory::default(),
                last_reason: String::new(),
            })
            .collect();
        // Counters exist at 0 from the start, so rate() over them works before the first event.
        let metrics = &telemetry.metrics;
        for source in prometheus.iter().chain(controller.iter()) {
            metrics
                .source_errors
                .get_or_create(&SourceLabels {
                    source: source.kind().as_str().into(),
                })
                .inc_by(0);
        }
        for job in &bindings {
            for action in [Action::ScaleUp, Action::ScaleDown, Action::Hold] {
                metrics
                    .decisions
                    .get_or_create(&DecisionLabels {
                        binding: job.config.name.clone(),
                        action: action.as_str().into(),
                    })
                    .inc_by(0);
            }
            metrics.scale_errors.get_or_create(&job.labels()).inc_by(0);
        }
        Autoscaler {
            prometheus,
            controller,
            bindings,
            telemetry,
        }
    }

    /// Streams each source must read this tick.
    fn streams_per_source(&self) -> (BTreeSet<StreamId>, BTreeSet<StreamId>) {
        let (mut prometheus, mut controller) = (BTreeSet::new(), BTreeSet::new());
        for b in &self.bindings {
            let streams = b.config.streams.iter().cloned();
            match b.config.source {
                SourceChoice::Prometheus => prometheus.extend(streams),
                SourceChoice::Controller => controller.extend(streams),
                SourceChoice::Auto => {
                    // The controller first; Prometheus is read as the fallback, in the same tick.
                    if self.controller.is_some() {
                        controller.extend(streams.clone());
                    }
                    if self.prometheus.is_some() {
                        prometheus.extend(streams);
                    }
                }
            }
        }
        (prometheus, controller)
    }

    /// Reconciles every binding once. With `act` false nothing is changed (plan mode, or a
    /// replica that is not the leader).
    pub async fn reconcile(&mut self, act: bool) -> Vec<BindingReport> {
        let started = Instant::now();
        let (prometheus_streams, controller_streams) = self.streams_per_source();
        let (prometheus, controller) = futures::join!(
            read_source(self.prometheus.as_deref(), &prometheus_streams),
            read_source(self.controller.as_deref(), &controller_streams),
        );
        let metrics = &self.telemetry.metrics;
        for (kind, readings) in [
            (SourceKind::Prometheus, &prometheus),
            (SourceKind::Controller, &controller),
        ] {
            if readings
                .values()
                .any(|r| matches!(r, SegmentReading::Unavailable(_)))
            {
                metrics
                    .source_errors
                    .get_or_create(&SourceLabels {
                        source: kind.as_str().into(),
                    })
                    .inc();
            }
        }
        let now = Instant::now();
        let reports = futures::future::join_all(self.bindings.iter_mut().map(|job| {
            let span = tracing::info_span!("reconcile", binding = %job.config.name);
            job.reconcile(&prometheus, &controller, now, act, metrics)
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

async fn read_source(
    source: Option<&dyn SegmentSource>,
    streams: &BTreeSet<StreamId>,
) -> HashMap<StreamId, SegmentReading> {
    match source {
        Some(source) if !streams.is_empty() => source.read(streams).await,
        _ => HashMap::new(),
    }
}

/// The observation of `stream` for a binding reading from `choice`.
fn observe(
    choice: SourceChoice,
    stream: &StreamId,
    prometheus: &HashMap<StreamId, SegmentReading>,
    controller: &HashMap<StreamId, SegmentReading>,
) -> Observation {
    let from = |kind: SourceKind, readings: &HashMap<StreamId, SegmentReading>| Observation {
        stream: stream.clone(),
        reading: readings.get(stream).cloned().unwrap_or_else(|| {
            SegmentReading::Unavailable(format!("{} is not configured", kind.as_str()))
        }),
        source: kind,
    };
    match choice {
        SourceChoice::Prometheus => from(SourceKind::Prometheus, prometheus),
        SourceChoice::Controller => from(SourceKind::Controller, controller),
        SourceChoice::Auto => {
            let first = from(SourceKind::Controller, controller);
            let SegmentReading::Unavailable(controller_error) = &first.reading else {
                return first;
            };
            match prometheus.get(stream) {
                None => first,
                Some(SegmentReading::Unavailable(prometheus_error)) => Observation {
                    stream: stream.clone(),
                    reading: SegmentReading::Unavailable(format!(
                        "controller: {controller_error}; prometheus: {prometheus_error}"
                    )),
                    source: SourceKind::Prometheus,
                },
                Some(_) => from(SourceKind::Prometheus, prometheus),
            }
        }
    }
}

impl BoundJob {
    async fn reconcile(
        &mut self,
        prometheus: &HashMap<StreamId, SegmentReading>,
        controller: &HashMap<StreamId, SegmentReading>,
        now: Instant,
        act: bool,
        metrics: &Metrics,
    ) -> BindingReport {
        let observations: Vec<Observation> = self
            .config
            .streams
            .iter()
            .map(|s| observe(self.config.source, s, prometheus, controller))
            .collect();
        let job_status = async {
            match &self.flink {
                Some(flink) => Some(flink.job_status().await.map_err(|e| e.to_string())),
                None => None,
            }
        };
        let (current, job) = futures::join!(self.target.current(), job_status);
        let input = PlanInput {
            observations,
            current_replicas: current.as_ref().map(|r| r.count).map_err(|e| e.to_string()),
            max_parallelism: job
                .as_ref()
                .and_then(|j| j.as_ref().ok())
                .map(|j| j.max_parallelism),
            now,
        };
        let mut decision = plan(&self.policy, &input, &mut self.history);

        if let (true, Some(replicas), Ok(read)) = (act, decision.apply_to(), &current) {
            match self.target.apply(read, replicas, &decision.reason).await {
                Ok(()) => tracing::info!(
                    target_ref = %self.target.describe(), from = read.count, to = replicas,
                    segments = decision.segments, reason = %decision.reason, "scaled"
                ),
                Err(e) => {
                    metrics.scale_errors.get_or_create(&self.labels()).inc();
                    tracing::warn!(target_ref = %self.target.describe(), error = %e, "scale failed; will retry");
                    decision.reason = format!("{} (not applied: {e})", decision.reason);
                }
            }
        } else if decision.reason != self.last_reason {
            // Holds repeat every tick: log when the reason changes.
            tracing::info!(action = decision.action.as_str(), act, reason = %decision.reason, "decision");
        }
        self.last_reason = decision.reason.clone();
        self.record(metrics, &input.observations, &decision, job.as_ref());

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

    fn labels(&self) -> BindingLabels {
        BindingLabels {
            binding: self.config.name.clone(),
        }
    }

    fn record(
        &self,
        metrics: &Metrics,
        observations: &[Observation],
        decision: &crate::plan::ScaleDecision,
        job: Option<&Result<JobStatus, String>>,
    ) {
        let labels = self.labels();
        for o in observations {
            let stream_labels = StreamLabels {
                binding: self.config.name.clone(),
                stream: o.stream.to_string(),
            };
            match o.reading.segments() {
                Some(n) => {
                    metrics
                        .stream_segments
                        .get_or_create(&stream_labels)
                        .set(i64::from(n));
                }
                // Unknown is not 0: the series disappears rather than lie.
                None => {
                    metrics.stream_segments.remove(&stream_labels);
                }
            }
        }
        match decision.current_replicas {
            Some(n) => {
                metrics
                    .current_replicas
                    .get_or_create(&labels)
                    .set(i64::from(n));
            }
            None => {
                metrics.current_replicas.remove(&labels);
            }
        }
        if let Some(n) = decision.desired_replicas {
            metrics
                .desired_replicas
                .get_or_create(&labels)
                .set(i64::from(n));
        }
        metrics
            .decisions
            .get_or_create(&DecisionLabels {
                binding: self.config.name.clone(),
                action: decision.action.as_str().into(),
            })
            .inc();
        match job {
            Some(Ok(status)) => {
                metrics
                    .job_parallelism
                    .get_or_create(&labels)
                    .set(i64::from(status.parallelism));
                let expected = decision
                    .desired_replicas
                    .map(|d| (d * self.policy.slots_per_taskmanager).min(status.max_parallelism));
                let aligned = expected.is_some_and(|e| status.runs_at(e));
                metrics
                    .job_aligned
                    .get_or_create(&labels)
                    .set(i64::from(aligned));
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "flink job status unavailable");
                metrics.job_parallelism.remove(&labels);
                metrics.job_aligned.get_or_create(&labels).set(0);
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actuate::{ActuateError, Replicas};
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

    /// A target remembering its count and every write.
    #[derive(Clone, Default)]
    struct FakeTarget(Arc<Mutex<(u32, Vec<u32>)>>);

    #[async_trait::async_trait]
    impl ScaleTarget for FakeTarget {
        fn describe(&self) -> String {
            "fake".into()
        }
        async fn current(&self) -> Result<Replicas, ActuateError> {
            Ok(Replicas {
                count: self.0.lock().unwrap().0,
                version: None,
            })
        }
        async fn apply(
            &self,
            _current: &Replicas,
            replicas: u32,
            _reason: &str,
        ) -> Result<(), ActuateError> {
            let mut state = self.0.lock().unwrap();
            state.0 = replicas;
            state.1.push(replicas);
            Ok(())
        }
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
        target.0.lock().unwrap().0 = 1;
        let telemetry = Telemetry::new(config.interval);
        let autoscaler = Autoscaler::from_parts(
            Some(Box::new(FakeSource(SourceKind::Prometheus, table.clone()))),
            Some(Box::new(FakeSource(
                SourceKind::Controller,
                Arc::new(Mutex::new(HashMap::new())),
            ))),
            vec![(config.bindings[0].clone(), Box::new(target.clone()))],
            telemetry.clone(),
        );
        (autoscaler, table, target, telemetry)
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
        assert!(
            target.0.lock().unwrap().1.is_empty(),
            "plan mode wrote nothing"
        );
        autoscaler.reconcile(true).await;
        autoscaler.reconcile(true).await;
        assert_eq!(
            target.0.lock().unwrap().1,
            vec![3],
            "one write, then aligned"
        );
    }

    #[tokio::test]
    async fn a_failed_source_is_counted_and_held_on() {
        let (mut autoscaler, table, target, telemetry) = setup(SourceChoice::Prometheus);
        table.lock().unwrap().insert(
            "demo/load".parse().unwrap(),
            SegmentReading::Unavailable("refused".into()),
        );
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
                .contains("(prometheus): source unavailable: refused"),
            "{}",
            reports[0].reason
        );
        assert!(target.0.lock().unwrap().1.is_empty());
        let text = telemetry.metrics.encode();
        assert!(
            text.contains("segment_autoscaler_source_errors_total{source=\"prometheus\"} 1"),
            "{text}"
        );
        assert!(
            !text.contains("segment_autoscaler_stream_segments{"),
            "an unknown count is not exported as a number"
        );
    }

    #[tokio::test]
    async fn auto_falls_back_to_prometheus_when_the_controller_is_silent() {
        let (mut autoscaler, table, target, _) = setup(SourceChoice::Auto);
        // The fake controller answers Missing for everything; make it unavailable instead.
        autoscaler.controller = Some(Box::new(FakeSource(
            SourceKind::Controller,
            Arc::new(Mutex::new(
                [(
                    "demo/load".parse().unwrap(),
                    SegmentReading::Unavailable("down".into()),
                )]
                .into(),
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
        assert_eq!(target.0.lock().unwrap().1, vec![2]);
    }

    fn readings(pairs: &[(&str, SegmentReading)]) -> HashMap<StreamId, SegmentReading> {
        pairs
            .iter()
            .map(|(s, r)| (s.parse().unwrap(), r.clone()))
            .collect()
    }

    #[test]
    fn auto_prefers_the_controller_and_falls_back_to_prometheus() {
        let s: StreamId = "demo/load".parse().unwrap();
        let prom = readings(&[("demo/load", SegmentReading::Segments(3))]);
        let ok = readings(&[("demo/load", SegmentReading::Segments(4))]);
        let down = readings(&[("demo/load", SegmentReading::Unavailable("refused".into()))]);
        let o = observe(SourceChoice::Auto, &s, &prom, &ok);
        assert_eq!(
            (o.reading, o.source),
            (SegmentReading::Segments(4), SourceKind::Controller)
        );
        let o = observe(SourceChoice::Auto, &s, &prom, &down);
        assert_eq!(
            (o.reading, o.source),
            (SegmentReading::Segments(3), SourceKind::Prometheus)
        );
        let prom_down = readings(&[("demo/load", SegmentReading::Unavailable("timeout".into()))]);
        let o = observe(SourceChoice::Auto, &s, &prom_down, &down);
        assert!(
            matches!(&o.reading, SegmentReading::Unavailable(why) if why.contains("refused") && why.contains("timeout"))
        );
        // A controller that answers with nonsense is not overridden by Prometheus.
        let invalid = readings(&[("demo/load", SegmentReading::Invalid("0".into()))]);
        assert_eq!(
            observe(SourceChoice::Auto, &s, &prom, &invalid).source,
            SourceKind::Controller
        );
    }

    #[test]
    fn explicit_sources_are_used_alone() {
        let s: StreamId = "demo/load".parse().unwrap();
        let prom = readings(&[("demo/load", SegmentReading::Segments(3))]);
        let ctrl = readings(&[("demo/load", SegmentReading::Unavailable("down".into()))]);
        assert_eq!(
            observe(SourceChoice::Controller, &s, &prom, &ctrl).source,
            SourceKind::Controller
        );
        assert!(matches!(
            observe(SourceChoice::Controller, &s, &prom, &ctrl).reading,
            SegmentReading::Unavailable(_)
        ));
        assert_eq!(
            observe(SourceChoice::Prometheus, &s, &prom, &ctrl).reading,
            SegmentReading::Segments(3)
        );
        let none = HashMap::new();
        assert!(matches!(
            observe(SourceChoice::Prometheus, &s, &none, &ctrl).reading,
            SegmentReading::Unavailable(_)
        ));
    }
}

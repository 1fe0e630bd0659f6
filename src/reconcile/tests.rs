use super::*;
use crate::actuate::{ActuateError, Replicas, ScaleTarget};
use crate::config::Config;
use crate::domain::{Alignment, StreamId};
use crate::domain::{SourceChoice, SourceKind};
use crate::flink::{FlinkClient, FlinkError, JobSchedule, JobStatus};
use crate::observe::{SegmentReading, SegmentSource, SourceError, Undetermined};
use crate::plan::backlog::TuningBounds;
use crate::plan::prewarmed::REACTIVE_JOBMANAGER;
use crate::plan::Action;
use std::collections::BTreeSet;
use std::collections::HashMap;
use std::sync::Mutex;

/// A single replica: always allowed to act.
const ACTING: Option<&Leadership> = Some(&Leadership::unconditional());

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
                    table
                        .get(s)
                        .cloned()
                        .unwrap_or(SegmentReading::Undetermined(Undetermined::NoSeries {
                            lookback: Duration::from_secs(600),
                        })),
                )
            })
            .collect()
    }
}

/// A target remembering its count, every write and every Event (reason, note); writes
/// fail while `conflict` is set.
#[derive(Clone, Default)]
struct FakeTarget {
    state: Arc<Mutex<(u32, Vec<u32>)>>,
    conflict: Arc<Mutex<bool>>,
    events: Arc<Mutex<Vec<(String, String)>>>,
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
    async fn record(&self, reason: &str, note: &str) {
        self.events
            .lock()
            .unwrap()
            .push((reason.to_string(), note.to_string()));
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
    let telemetry = Telemetry::new(config.interval, config.reconcile_timeout);
    let sources = Sources::new([
        Box::new(FakeSource(SourceKind::Prometheus, table.clone())) as Box<dyn SegmentSource>,
        Box::new(FakeSource(
            SourceKind::Controller,
            Arc::new(Mutex::new(HashMap::new())),
        )),
    ]);
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
    let sources = Sources::new([Box::new(StalledSource) as Box<dyn SegmentSource>]);
    let autoscaler = Autoscaler::new(sources, bindings, telemetry);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(autoscaler.run(
        Duration::from_millis(10),
        Duration::from_secs(60),
        Leadership::unconditional(),
        async {
            let _ = stopped.await;
        },
    ));
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
    let reports = autoscaler.reconcile(None).await;
    assert_eq!(
        (reports[0].action, reports[0].desired_replicas),
        (Action::ScaleUp, Some(3))
    );
    assert!(target.writes().is_empty(), "plan mode wrote nothing");
    autoscaler.reconcile(ACTING).await;
    autoscaler.reconcile(ACTING).await;
    assert_eq!(target.writes(), vec![3], "one write, then aligned");
}

#[tokio::test]
async fn a_failed_source_is_counted_with_its_reason_and_held_on() {
    let (mut autoscaler, table, target, telemetry) = setup(SourceChoice::Prometheus);
    table
        .lock()
        .unwrap()
        .insert("demo/load".parse().unwrap(), unavailable("refused"));
    let reports = autoscaler.reconcile(ACTING).await;
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
    let reports = autoscaler.reconcile(ACTING).await;
    assert!(
        reports[0].reason.to_string().contains("not applied")
            && reports[0].reason.to_string().contains("another writer"),
        "{}",
        reports[0].reason
    );
    let text = telemetry.metrics.encode();
    assert!(
        text.contains("segment_autoscaler_scale_errors_total{binding=\"b\",reason=\"conflict\"} 1"),
        "{text}"
    );
    *target.conflict.lock().unwrap() = false;
    autoscaler.reconcile(ACTING).await;
    assert_eq!(target.writes(), vec![2], "the next tick retries");
}

#[tokio::test]
async fn auto_falls_back_to_prometheus_when_the_controller_is_silent() {
    let (mut autoscaler, table, target, _) = setup(SourceChoice::Auto);
    // The fake controller has no count for anything; make it unavailable instead.
    autoscaler.sources = Sources::new([
        Box::new(FakeSource(SourceKind::Prometheus, table.clone())) as Box<dyn SegmentSource>,
        Box::new(FakeSource(
            SourceKind::Controller,
            Arc::new(Mutex::new(
                [("demo/load".parse().unwrap(), unavailable("down"))].into(),
            )),
        )),
    ]);
    table
        .lock()
        .unwrap()
        .insert("demo/load".parse().unwrap(), SegmentReading::Segments(2));
    let reports = autoscaler.reconcile(ACTING).await;
    assert_eq!(
        (reports[0].source.as_str(), reports[0].action),
        ("prometheus", Action::ScaleUp)
    );
    assert_eq!(target.writes(), vec![2]);
}

/// A target whose reads take `delay` each, or never answer while `stalled` is set.
#[derive(Clone, Default)]
struct SlowTarget {
    inner: FakeTarget,
    delay: Duration,
    stalled: Arc<Mutex<bool>>,
}

#[async_trait::async_trait]
impl ScaleTarget for SlowTarget {
    fn describe(&self) -> String {
        "slow".into()
    }
    async fn current(&self) -> Result<Replicas, ActuateError> {
        tokio::time::sleep(self.delay).await;
        while *self.stalled.lock().unwrap() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.inner.current().await
    }
    async fn apply(&self, c: &Replicas, r: u32, why: &str) -> Result<(), ActuateError> {
        self.inner.apply(c, r, why).await
    }
}

fn with_target(autoscaler: Autoscaler, target: SlowTarget) -> Autoscaler {
    let config = autoscaler.bindings[0].config.clone();
    let binding = LiveBinding::new(config, Box::new(target), None);
    Autoscaler::new(autoscaler.sources, vec![binding], autoscaler.telemetry)
}

#[tokio::test]
async fn a_stuck_call_is_abandoned_at_the_deadline_and_the_loop_goes_on() {
    let (autoscaler, table, _, telemetry) = setup(SourceChoice::Prometheus);
    table
        .lock()
        .unwrap()
        .insert("demo/load".parse().unwrap(), SegmentReading::Segments(3));
    let target = SlowTarget {
        stalled: Arc::new(Mutex::new(true)),
        ..SlowTarget::default()
    };
    target.inner.state.lock().unwrap().0 = 1;
    let autoscaler = with_target(autoscaler, target.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(autoscaler.run(
        Duration::from_millis(20),
        Duration::from_millis(50),
        Leadership::unconditional(),
        async {
            let _ = stopped.await;
        },
    ));
    let abandoned = || {
        let text = telemetry.metrics.encode();
        text.lines()
            .find_map(|l| l.strip_prefix("segment_autoscaler_reconciliations_abandoned_total "))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(abandoned() >= 3, "abandoned {}", abandoned());
    assert!(telemetry.liveness().is_ok(), "the loop still turns");
    assert!(telemetry.readiness().is_err(), "nothing completed");
    assert!(target.inner.writes().is_empty());
    // The call answers again: the next pass completes and follows the segments.
    *target.stalled.lock().unwrap() = false;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(target.inner.writes(), vec![3]);
    assert!(telemetry.readiness().is_ok());
    stop.send(()).unwrap();
    run.await.unwrap();
}

#[tokio::test]
async fn a_lease_that_lapses_during_the_pass_fences_the_write() {
    let (autoscaler, table, _, _) = setup(SourceChoice::Prometheus);
    table
        .lock()
        .unwrap()
        .insert("demo/load".parse().unwrap(), SegmentReading::Segments(3));
    let target = SlowTarget {
        delay: Duration::from_millis(200),
        ..SlowTarget::default()
    };
    target.inner.state.lock().unwrap().0 = 1;
    let mut autoscaler = with_target(autoscaler, target.clone());
    // Held when the pass starts, lapsed by the time the slow read returns.
    let lapsing = Leadership::until(tokio::time::Instant::now() + Duration::from_millis(100));
    let reports = autoscaler.reconcile(Some(&lapsing)).await;
    assert!(target.inner.writes().is_empty(), "a deposed leader wrote");
    assert!(
        reports[0]
            .reason
            .contains("lost the lease before the write"),
        "{}",
        reports[0].reason
    );
    let held = Leadership::until(tokio::time::Instant::now() + Duration::from_secs(60));
    autoscaler.reconcile(Some(&held)).await;
    assert_eq!(target.inner.writes(), vec![3]);
}

#[tokio::test]
async fn the_max_parallelism_cap_survives_a_failed_flink_call() {
    let (autoscaler, _, _, _) = setup(SourceChoice::Prometheus);
    let mut binding = autoscaler.bindings.into_iter().next().unwrap();
    let status = JobStatus {
        job_id: "j".into(),
        state: "RUNNING".into(),
        max_parallelism: Some(4),
        adaptive: Some(true),
        schedule: JobSchedule::Running {
            source_vertex: "v".into(),
            parallelism: 2,
        },
    };
    let down = FlinkError::Unreachable {
        url: "http://flink".into(),
        message: "refused".into(),
    };
    assert_eq!(binding.max_parallelism(None), None, "no Flink, no cap");
    assert_eq!(
        binding.max_parallelism(Some(&Err(down))),
        None,
        "none known yet"
    );
    assert_eq!(binding.max_parallelism(Some(&Ok(status))), Some(4));
    let down = FlinkError::Unreachable {
        url: "http://flink".into(),
        message: "refused".into(),
    };
    assert_eq!(
        binding.max_parallelism(Some(&Err(down))),
        Some(4),
        "a failed call keeps the last known cap"
    );
}

/// Serves `router` on a free loopback port; its base URL.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// A stand-in for Flink's REST API: one running job of max parallelism 2 while `up`,
/// HTTP 502 (a JobManager down behind its proxy) otherwise.
async fn flink_stand_in(up: Arc<Mutex<bool>>) -> String {
    use axum::http::StatusCode;
    use axum::routing::get;
    let answer = move |body: serde_json::Value| {
        let up = up.clone();
        move || async move {
            if *up.lock().unwrap() {
                Ok(body.to_string())
            } else {
                Err(StatusCode::BAD_GATEWAY)
            }
        }
    };
    let router = axum::Router::new()
        .route(
            "/jobs/overview",
            get(answer(serde_json::json!({"jobs": [{"jid": "j", "state": "RUNNING", "start-time": 1}]}))),
        )
        .route(
            "/jobs/j",
            get(answer(serde_json::json!({"state": "RUNNING", "vertices": [
                {"name": "Source: reader", "parallelism": 1, "maxParallelism": 2, "tasks": {"RUNNING": 1}}
            ]}))),
        );
    serve(router).await
}

/// A stand-in for a reactive-mode JobManager of Flink 2.3.0 with `config` (what
/// `/jobmanager/config` lists), whose job checkpoints every 5 s.
async fn flink_with_config(config: serde_json::Value) -> String {
    use axum::routing::get;
    let json = |body: serde_json::Value| move || async move { body.to_string() };
    let router = axum::Router::new()
        .route(
            "/jobs/overview",
            get(json(serde_json::json!({"jobs": [
                {"jid": "j", "state": "RUNNING", "start-time": 1, "schedulerType": "Adaptive"}
            ]}))),
        )
        .route(
            "/jobs/j",
            get(json(serde_json::json!({"state": "RUNNING", "vertices": [
                {"name": "Source: reader", "parallelism": 1, "maxParallelism": 128, "tasks": {"RUNNING": 1}}
            ]}))),
        )
        .route(
            "/overview",
            get(json(serde_json::json!({"flink-version": "2.3.0"}))),
        )
        .route("/jobmanager/config", get(json(config)))
        .route(
            "/jobs/j/checkpoints/config",
            get(json(serde_json::json!({"interval": 5000}))),
        );
    serve(router).await
}

/// A one-binding autoscaler verified through the Flink REST API at `url`.
fn with_flink(url: &str) -> (Autoscaler, FakeTarget, Arc<Telemetry>) {
    let (autoscaler, _, target, telemetry) = with_flink_aligned(url, Alignment::Reactive);
    (autoscaler, target, telemetry)
}

/// [`with_flink`] in the given alignment mode, scaling down without stabilization.
fn with_flink_aligned(
    url: &str,
    alignment: Alignment,
) -> (Autoscaler, Table, FakeTarget, Arc<Telemetry>) {
    let (autoscaler, table, target, telemetry) = setup(SourceChoice::Prometheus);
    let mut config = autoscaler.bindings[0].config.clone();
    if alignment != Alignment::Reactive {
        config.scale_down_stabilization = Duration::ZERO;
    }
    config.flink = Some(crate::config::FlinkConfig {
        rest_url: url.to_string(),
        timeout: Duration::from_secs(2),
        rescale_tolerance: Duration::from_secs(15),
        alignment,
        backlog_window: Duration::from_secs(120),
        tls: None,
        basic_auth: None,
        bearer_token_file: None,
        bearer_token_env: None,
    });
    let flink = FlinkClient::new(url, Duration::from_secs(2));
    let binding = LiveBinding::new(config, Box::new(target.clone()), Some(flink));
    table
        .lock()
        .unwrap()
        .insert("demo/load".parse().unwrap(), SegmentReading::Segments(1));
    let autoscaler = Autoscaler::new(autoscaler.sources, vec![binding], telemetry.clone());
    (autoscaler, table, target, telemetry)
}

#[tokio::test]
async fn slow_flink_rescale_timers_are_warned_about_once_per_job() {
    let url = flink_with_config(serde_json::json!([])).await;
    let (mut autoscaler, target, telemetry) = with_flink(&url);
    autoscaler.reconcile(ACTING).await;
    autoscaler.reconcile(ACTING).await;
    let events = target.events.lock().unwrap().clone();
    assert_eq!(events.len(), 1, "once per job: {events:?}");
    let (reason, note) = &events[0];
    assert_eq!(reason, "SlowFlinkRescale");
    assert!(
        note.contains("up to 105s")
            && note.contains("executing.resource-stabilization-timeout = 60s (default)")
            && note.contains("flink.rescale_tolerance (15s)"),
        "{note}"
    );
    assert!(telemetry
        .metrics
        .encode()
        .contains("segment_autoscaler_flink_rescale_delay_seconds{binding=\"b\"} 105.0"));
}

#[tokio::test]
async fn rescale_timers_within_the_tolerance_are_not_warned_about() {
    let tuned = serde_json::json!([
        {"key": "jobmanager.adaptive-scheduler.executing.resource-stabilization-timeout", "value": "1 s"},
        {"key": "jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling", "value": "1 s"},
        {"key": "jobmanager.adaptive-scheduler.rescale-trigger.max-delay", "value": "0 ms"}
    ]);
    let url = flink_with_config(tuned).await;
    let (mut autoscaler, target, telemetry) = with_flink(&url);
    autoscaler.reconcile(ACTING).await;
    assert!(target.events.lock().unwrap().is_empty());
    assert!(telemetry
        .metrics
        .encode()
        .contains("segment_autoscaler_flink_rescale_delay_seconds{binding=\"b\"} 2.0"));
}

/// A one-binding autoscaler verified through [`flink_stand_in`], which answers while `up`.
async fn with_flink_stand_in(
    up: Arc<Mutex<bool>>,
) -> (Autoscaler, Table, FakeTarget, Arc<Telemetry>) {
    let (autoscaler, table, target, telemetry) = setup(SourceChoice::Prometheus);
    let url = flink_stand_in(up).await;
    let config = autoscaler.bindings[0].config.clone();
    let flink = FlinkClient::new(&url, Duration::from_secs(2));
    let binding = LiveBinding::new(config, Box::new(target.clone()), Some(flink));
    let autoscaler = Autoscaler::new(autoscaler.sources, vec![binding], telemetry.clone());
    (autoscaler, table, target, telemetry)
}

#[tokio::test]
async fn with_flink_down_the_segments_are_followed_within_the_last_known_cap() {
    let up = Arc::new(Mutex::new(true));
    let (mut autoscaler, table, target, telemetry) = with_flink_stand_in(up.clone()).await;
    let stream: StreamId = "demo/load".parse().unwrap();
    table
        .lock()
        .unwrap()
        .insert(stream.clone(), SegmentReading::Segments(1));
    autoscaler.reconcile(ACTING).await;
    assert!(telemetry
        .metrics
        .encode()
        .contains("segment_autoscaler_job_aligned{binding=\"b\"} 1"));

    *up.lock().unwrap() = false;
    table
        .lock()
        .unwrap()
        .insert(stream, SegmentReading::Segments(4));
    let reports = autoscaler.reconcile(ACTING).await;
    assert_eq!(
        target.writes(),
        vec![2],
        "followed up to the cap of 2, not 4"
    );
    let reason = &reports[0].reason;
    assert!(
        reason.contains("job alignment unknown (flink ")
            && reason.contains("502")
            && reason.ends_with("still capped by its last known max parallelism 2"),
        "{reason}"
    );
    let text = telemetry.metrics.encode();
    assert!(
        !text.contains("segment_autoscaler_job_aligned{"),
        "unknown, not 0:\n{text}"
    );
}

#[tokio::test]
async fn a_job_that_never_answered_holds_the_binding_until_it_does() {
    let up = Arc::new(Mutex::new(false));
    let (mut autoscaler, table, target, _) = with_flink_stand_in(up.clone()).await;
    table
        .lock()
        .unwrap()
        .insert("demo/load".parse().unwrap(), SegmentReading::Segments(2));
    let reports = autoscaler.reconcile(ACTING).await;
    assert_eq!(target.writes(), Vec::<u32>::new(), "nothing scaled");
    let report = &reports[0];
    assert_eq!(
        (
            report.reason_kind,
            report.flink_error,
            report.desired_replicas
        ),
        ("JobUnconfirmed", Some("rejected"), Some(2)),
        "{}",
        report.reason
    );

    // It answers: from then on the segments are followed, through later outages too.
    *up.lock().unwrap() = true;
    autoscaler.reconcile(ACTING).await;
    assert_eq!(target.writes(), vec![2]);
    *up.lock().unwrap() = false;
    let reports = autoscaler.reconcile(ACTING).await;
    assert_ne!(
        reports[0].reason_kind, "JobUnconfirmed",
        "{}",
        reports[0].reason
    );
}

/// A JobManager running the adaptive scheduler (not reactive): the job's parallelism
/// requirement as set through the REST API, the parallelism it runs at (set by the test,
/// as the scheduler would), and every PUT body.
#[derive(Default)]
struct AdaptiveJob {
    required: u32,
    running: u32,
    puts: Vec<serde_json::Value>,
    /// How often the JobManager's configuration was read.
    config_reads: u32,
    /// A `/jobs/j` answer Flink gave between two schedules, served instead while set.
    between: Option<&'static str>,
}

async fn adaptive_flink(job: Arc<Mutex<AdaptiveJob>>) -> String {
    use axum::extract::State;
    use axum::routing::get;
    use serde_json::json;
    type Job = State<Arc<Mutex<AdaptiveJob>>>;
    let json = |body: serde_json::Value| move || async move { body.to_string() };
    let details = |State(job): Job| async move {
        let (running, between) = {
            let job = job.lock().unwrap();
            (job.running, job.between)
        };
        if let Some(answer) = between {
            return answer.to_string();
        }
        json!({"state": "RUNNING", "vertices": [
            {"id": "src", "name": "Source: readers", "parallelism": running, "maxParallelism": 128, "tasks": {"RUNNING": running}},
            {"id": "chk", "name": "verify", "parallelism": running, "maxParallelism": 128, "tasks": {"RUNNING": running}}
        ]})
        .to_string()
    };
    let requirements = |State(job): Job| async move {
        let required = job.lock().unwrap().required;
        let bounds = json!({"parallelism": {"lowerBound": 1, "upperBound": required}});
        json!({"src": bounds, "chk": bounds}).to_string()
    };
    let put = |State(job): Job, body: String| async move {
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        let mut job = job.lock().unwrap();
        job.required = body["src"]["parallelism"]["upperBound"].as_u64().unwrap() as u32;
        job.puts.push(body);
    };
    let tuned = json!([
        {"key": "jobmanager.scheduler", "value": "adaptive"},
        {"key": "jobmanager.adaptive-scheduler.executing.resource-stabilization-timeout", "value": "1 s"},
        {"key": "jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling", "value": "1 s"},
        {"key": "jobmanager.adaptive-scheduler.rescale-trigger.max-delay", "value": "0 ms"}
    ]);
    let router = axum::Router::new()
        .route(
            "/jobs/overview",
            get(json(json!({"jobs": [
                {"jid": "j", "state": "RUNNING", "start-time": 1, "schedulerType": "Adaptive"}
            ]}))),
        )
        .route("/jobs/j", get(details))
        .route("/jobs/j/resource-requirements", get(requirements).put(put))
        .route("/overview", get(json(json!({"flink-version": "2.3.0"}))))
        .route(
            "/jobmanager/config",
            get(move |State(job): Job| async move {
                job.lock().unwrap().config_reads += 1;
                tuned.to_string()
            }),
        )
        .route(
            "/jobs/j/checkpoints/config",
            get(json(json!({"interval": 5000}))),
        )
        .with_state(job);
    serve(router).await
}

#[tokio::test]
async fn prewarmed_mode_moves_the_job_first_and_keeps_a_warm_taskmanager() {
    let job = Arc::new(Mutex::new(AdaptiveJob {
        required: 1,
        running: 1,
        puts: Vec::new(),
        config_reads: 0,
        between: None,
    }));
    let url = adaptive_flink(job.clone()).await;
    let (mut autoscaler, table, target, _) =
        with_flink_aligned(&url, Alignment::Prewarmed { headroom: 1 });
    let segments = |n: u32| {
        table
            .lock()
            .unwrap()
            .insert("demo/load".parse().unwrap(), SegmentReading::Segments(n));
    };
    let puts = || job.lock().unwrap().puts.clone();

    // One segment, the job at 1: the headroom's TaskManager is started.
    let reports = autoscaler.reconcile(ACTING).await;
    assert_eq!(target.writes(), vec![2], "{}", reports[0].reason);
    assert!(puts().is_empty(), "the job is where it should be");
    assert!(
        reports[0]
            .reason
            .to_string()
            .ends_with("TaskManagers 1 -> 2 (1 warm)"),
        "{}",
        reports[0].reason
    );

    // Two segments: the job is raised onto the warm slot, then one more is started.
    segments(2);
    let reports = autoscaler.reconcile(ACTING).await;
    assert_eq!(
        puts(),
        vec![serde_json::json!({
            "src": {"parallelism": {"lowerBound": 1, "upperBound": 2}},
            "chk": {"parallelism": {"lowerBound": 1, "upperBound": 2}}
        })],
        "every vertex listed"
    );
    assert_eq!(target.writes(), vec![2, 3]);
    assert!(
        reports[0]
            .reason
            .ends_with("job parallelism 1 -> 2; TaskManagers 2 -> 3 (1 warm)"),
        "{}",
        reports[0].reason
    );
    let job_events = || -> Vec<(String, String)> {
        let events = target.events.lock().unwrap();
        events
            .iter()
            .filter(|(r, _)| r.starts_with("Job"))
            .cloned()
            .collect()
    };
    let events = job_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "JobScaledUp");
    assert!(
        events[0]
            .1
            .starts_with("job j parallelism 1 -> 2: scale up"),
        "{events:?}"
    );
    // Until the scheduler has rescaled, the job is not aligned and nothing more is done.
    let reports = autoscaler.reconcile(ACTING).await;
    assert_eq!((puts().len(), target.writes().len()), (1, 2));
    assert_eq!(reports[0].action, Action::Hold);
    job.lock().unwrap().running = 2;

    // Back to one segment: the job is lowered first; its TaskManagers are kept until it
    // runs at 1, then one is released and one stays warm.
    segments(1);
    let reports = autoscaler.reconcile(ACTING).await;
    assert_eq!(puts().len(), 2);
    assert_eq!(job.lock().unwrap().required, 1);
    let events = job_events();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1].0, "JobScaledDown");
    assert_eq!(target.writes(), vec![2, 3], "{}", reports[0].reason);
    assert!(
        reports[0]
            .reason
            .ends_with("keeping 3 TaskManagers until the job runs at 1 (now at 2)"),
        "{}",
        reports[0].reason
    );
    autoscaler.reconcile(ACTING).await;
    assert_eq!(target.writes(), vec![2, 3], "still at 2");
    job.lock().unwrap().running = 1;
    let reports = autoscaler.reconcile(ACTING).await;
    assert_eq!(target.writes(), vec![2, 3, 2], "{}", reports[0].reason);
    assert_eq!(puts().len(), 2, "the job was left alone");
    assert_eq!(
        job.lock().unwrap().config_reads,
        1,
        "the JobManager's configuration is read once per job, for every check"
    );
}

/// The reason of a prewarmed binding, at 3 segments, on a stand-in JobManager with
/// `config` and no resource requirements to read; nothing may have been written.
async fn prewarmed_hold_reason(config: serde_json::Value) -> String {
    let url = flink_with_config(config).await;
    let (mut autoscaler, table, target, _) =
        with_flink_aligned(&url, Alignment::Prewarmed { headroom: 1 });
    table
        .lock()
        .unwrap()
        .insert("demo/load".parse().unwrap(), SegmentReading::Segments(3));
    let reports = autoscaler.reconcile(ACTING).await;
    assert!(target.writes().is_empty(), "{}", reports[0].reason);
    reports[0].reason.clone()
}

#[tokio::test]
async fn prewarmed_mode_holds_on_a_reactive_jobmanager_naming_the_setting() {
    // Reactive mode refuses a job's parallelism (HTTP 500 on every PUT): the binding holds
    // and says what to change, read from the JobManager's configuration.
    let reason =
        prewarmed_hold_reason(serde_json::json!([{"key": "scheduler-mode", "value": "reactive"}]))
            .await;
    assert_eq!(
        reason,
        format!("hold: current replicas unknown: {REACTIVE_JOBMANAGER}")
    );
}

#[tokio::test]
async fn prewarmed_mode_holds_when_the_job_requirement_is_unknown() {
    // A JobManager without the resource-requirements API (Flink before 1.18, here a
    // stand-in): the binding holds, naming the failed call.
    let reason = prewarmed_hold_reason(serde_json::json!([])).await;
    assert!(
        reason.starts_with(
            "hold: current replicas unknown: the job's parallelism requirement is unknown: flink "
        ) && reason.contains("/jobs/j/resource-requirements: HTTP 404"),
        "{reason}"
    );
}

/// The job's series as exported: parallelism and alignment.
fn job_series(telemetry: &Telemetry) -> Vec<String> {
    telemetry
        .metrics
        .encode()
        .lines()
        .filter(|l| {
            l.starts_with("segment_autoscaler_job_parallelism{")
                || l.starts_with("segment_autoscaler_job_aligned{")
        })
        .map(str::to_string)
        .collect()
}

/// Scale errors counted, over every reason.
fn scale_errors(telemetry: &Telemetry) -> f64 {
    telemetry
        .metrics
        .encode()
        .lines()
        .filter(|l| l.starts_with("segment_autoscaler_scale_errors_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn prewarmed_mode_holds_the_job_while_it_is_between_two_schedules() {
    use crate::flink::captured;
    for (version, name, why) in [
        (
            "2.3.0",
            "initializing",
            "the job is INITIALIZING with no vertices yet",
        ),
        ("2.3.0", "created-at-max-parallelism", "the job is CREATED"),
        ("1.20.5", "restarting", "the job is RESTARTING"),
        (
            "1.20.5",
            "running-deploying",
            "the job is RUNNING with 1 of 2 tasks not running yet",
        ),
    ] {
        let job = Arc::new(Mutex::new(AdaptiveJob {
            required: 1,
            running: 1,
            ..AdaptiveJob::default()
        }));
        let url = adaptive_flink(job.clone()).await;
        let (mut autoscaler, table, target, telemetry) =
            with_flink_aligned(&url, Alignment::Prewarmed { headroom: 1 });
        autoscaler.reconcile(ACTING).await;
        assert_eq!(
            target.writes(),
            vec![2],
            "{version} {name}: the warm TaskManager"
        );
        assert_eq!(
            job_series(&telemetry).len(),
            2,
            "{version} {name}: job series exported"
        );

        // Two segments while Flink is between two schedules: nothing is written, nothing
        // counted as an error, and the job's parallelism and alignment are unknown.
        job.lock().unwrap().between = Some(captured::job_details(version, name));
        table
            .lock()
            .unwrap()
            .insert("demo/load".parse().unwrap(), SegmentReading::Segments(2));
        let reports = autoscaler.reconcile(ACTING).await;
        let reason = &reports[0].reason;
        assert!(
            job.lock().unwrap().puts.is_empty(),
            "{version} {name}: {reason}"
        );
        assert_eq!(target.writes(), vec![2], "{version} {name}: {reason}");
        assert_eq!(reports[0].action, Action::Hold, "{reason}");
        assert!(
            reason.starts_with(&format!("hold: current replicas unknown: {why}"))
                && reason.ends_with("; holding until it runs")
                && reason.matches(why).count() == 1,
            "{version} {name}: {reason}"
        );
        assert_eq!(scale_errors(&telemetry), 0.0, "{version} {name}");
        assert_eq!(
            job_series(&telemetry),
            Vec::<String>::new(),
            "{version} {name}"
        );

        // Scheduled again: the job follows the segments.
        job.lock().unwrap().between = None;
        autoscaler.reconcile(ACTING).await;
        assert_eq!(job.lock().unwrap().required, 2, "{version} {name}");
    }
}

#[tokio::test]
async fn reactive_mode_follows_the_segments_while_the_job_is_between_two_schedules() {
    use crate::flink::captured;
    let job = Arc::new(Mutex::new(AdaptiveJob {
        required: 1,
        running: 1,
        between: Some(captured::job_details("2.3.0", "created-at-max-parallelism")),
        ..AdaptiveJob::default()
    }));
    let url = adaptive_flink(job.clone()).await;
    let (mut autoscaler, table, target, telemetry) = with_flink_aligned(&url, Alignment::Reactive);
    table
        .lock()
        .unwrap()
        .insert("demo/load".parse().unwrap(), SegmentReading::Segments(2));
    let reports = autoscaler.reconcile(ACTING).await;
    // The TaskManagers are what reactive mode scales: the job's restart does not hold them.
    assert_eq!(target.writes(), vec![2], "{}", reports[0].reason);
    assert!(
        reports[0]
            .reason
            .ends_with("; job alignment unknown (the job is CREATED)"),
        "{}",
        reports[0].reason
    );
    assert_eq!(scale_errors(&telemetry), 0.0);
    assert_eq!(
        job_series(&telemetry),
        Vec::<String>::new(),
        "never the max parallelism Flink shows meanwhile (128)"
    );
    job.lock().unwrap().between = None;
    job.lock().unwrap().running = 2;
    autoscaler.reconcile(ACTING).await;
    assert_eq!(
        job_series(&telemetry),
        vec![
            "segment_autoscaler_job_parallelism{binding=\"b\"} 2".to_string(),
            "segment_autoscaler_job_aligned{binding=\"b\"} 1".to_string()
        ]
    );
}

/// One pass's published binding names, and whether it could write.
type Published = (Vec<String>, bool);

/// Declared bindings a test hands over: the changes for the next sync, and what each pass
/// published, with whether it may write.
#[derive(Clone, Default)]
struct FakeDeclared {
    next: Arc<Mutex<Vec<BindingChanges>>>,
    published: Arc<Mutex<Vec<Published>>>,
}

#[async_trait::async_trait]
impl DeclaredBindings for FakeDeclared {
    fn sync(&mut self) -> BindingChanges {
        self.next.lock().unwrap().pop().unwrap_or_default()
    }
    async fn publish(&mut self, reports: &[BindingReport], write: bool) {
        let names = reports.iter().map(|r| r.binding.clone()).collect();
        self.published.lock().unwrap().push((names, write));
    }
    async fn listed(&self) {}
}

#[tokio::test]
async fn declared_bindings_join_and_leave_between_passes() {
    let (autoscaler, table, _, telemetry) = setup(SourceChoice::Prometheus);
    let declared = FakeDeclared::default();
    let mut autoscaler = autoscaler.with_declared(Box::new(declared.clone()));
    table
        .lock()
        .unwrap()
        .insert("demo/load".parse().unwrap(), SegmentReading::Segments(2));
    let config = Config::parse(
        "prometheus: {url: http://p:1}\nsegment_scalers: {}\nbindings:\n- {name: ns/scaler, streams: [demo/load], max_replicas: 8, source: prometheus, target: {kind: command, get: [x], set: [x, '{replicas}']}}\n",
    )
    .unwrap();
    let target = FakeTarget::default();
    target.state.lock().unwrap().0 = 1;
    let added = LiveBinding::new(config.bindings[0].clone(), Box::new(target.clone()), None);
    declared.next.lock().unwrap().push(BindingChanges {
        added: vec![added],
        removed: vec![],
    });

    let reports = autoscaler.reconcile(ACTING).await;
    let names: Vec<&str> = reports.iter().map(|r| r.binding.as_str()).collect();
    assert_eq!(names, ["b", "ns/scaler"]);
    assert_eq!(
        target.writes(),
        vec![2],
        "the declared binding acted in its first pass"
    );
    let series = "segment_autoscaler_desired_replicas{binding=\"ns/scaler\"} 2";
    assert!(telemetry.metrics.encode().contains(series));
    autoscaler.reconcile(None).await;
    assert_eq!(
        *declared.published.lock().unwrap(),
        [
            (vec!["b".to_string(), "ns/scaler".to_string()], true),
            (vec!["b".to_string(), "ns/scaler".to_string()], false)
        ],
        "every pass published, writing only while acting"
    );

    // Withdrawn: no more writes for it, and its series leave /metrics.
    declared.next.lock().unwrap().push(BindingChanges {
        added: vec![],
        removed: vec!["ns/scaler".into()],
    });
    table
        .lock()
        .unwrap()
        .insert("demo/load".parse().unwrap(), SegmentReading::Segments(5));
    let reports = autoscaler.reconcile(ACTING).await;
    assert_eq!(reports.len(), 1);
    assert_eq!(
        target.writes(),
        vec![2],
        "nothing written for a withdrawn binding"
    );
    let text = telemetry.metrics.encode();
    assert!(!text.contains("binding=\"ns/scaler\""), "{text}");
    assert!(text.contains("binding=\"b\""));
}

/// A stand-in for Flink's REST API whose one job, at parallelism 1, reports a backlog of
/// `pending` (taken at each read of the source's metrics) at 300 events/s, busy half the time.
async fn flink_with_backlog(pending: Arc<Mutex<Vec<u64>>>) -> String {
    use axum::extract::RawQuery;
    use axum::routing::get;
    let json = |body: serde_json::Value| move || async move { body.to_string() };
    let metrics = move |RawQuery(query): RawQuery| {
        let pending = pending.clone();
        async move {
            if !query.is_some_and(|q| q.contains("get=")) {
                return serde_json::json!([
                    {"id": "busyTimeMsPerSecond"},
                    {"id": "Source__reader.numRecordsOutPerSecond"},
                    {"id": "Source__reader.pendingRecords"}
                ])
                .to_string();
            }
            let mut pending = pending.lock().unwrap();
            let now = if pending.len() > 1 {
                pending.remove(0)
            } else {
                pending[0]
            };
            serde_json::json!([
                {"id": "Source__reader.pendingRecords", "sum": now, "avg": now},
                {"id": "Source__reader.numRecordsOutPerSecond", "sum": 300.0, "avg": 300.0},
                {"id": "busyTimeMsPerSecond", "sum": 500.0, "avg": 500.0}
            ])
            .to_string()
        }
    };
    let router = axum::Router::new()
        .route(
            "/jobs/overview",
            get(json(serde_json::json!({"jobs": [{"jid": "j", "state": "RUNNING", "start-time": 1}]}))),
        )
        .route(
            "/jobs/j",
            get(json(serde_json::json!({"state": "RUNNING", "vertices": [
                {"id": "v", "name": "Source: reader", "parallelism": 1, "maxParallelism": 8, "tasks": {"RUNNING": 1}}
            ]}))),
        )
        .route("/jobs/j/vertices/v/subtasks/metrics", get(metrics));
    serve(router).await
}

/// An autoscaler whose stream has one segment, its target, telemetry, and its binding's
/// configuration with the Flink at `url` and a backlog window of 400 ms.
fn one_segment_with_backlog_window(
    url: &str,
) -> (
    Autoscaler,
    FakeTarget,
    Arc<Telemetry>,
    crate::config::Binding,
) {
    let (autoscaler, table, target, telemetry) = setup(SourceChoice::Prometheus);
    table
        .lock()
        .unwrap()
        .insert("demo/load".parse().unwrap(), SegmentReading::Segments(1));
    let mut config = autoscaler.bindings[0].config.clone();
    config.flink = Some(crate::config::FlinkConfig {
        backlog_window: Duration::from_millis(400),
        ..with_flink_aligned(url, Alignment::Reactive).0.bindings[0]
            .config
            .flink
            .clone()
            .unwrap()
    });
    (autoscaler, target, telemetry, config)
}

/// Scaling policies by event rate, the shared (target in events/s per segment, fewest segments).
#[derive(Clone)]
struct FakePolicies(Arc<Mutex<(u32, u32)>>);

#[async_trait::async_trait]
impl crate::observe::controller::StreamPolicies for FakePolicies {
    async fn scaling(
        &self,
        _: &StreamId,
    ) -> Result<crate::observe::controller::StreamScaling, SourceError> {
        let (target_rate, min_segments) = *self.0.lock().unwrap();
        Ok(crate::observe::controller::StreamScaling {
            kind: crate::observe::controller::ScalingKind::EventsPerSecond,
            target_rate,
            scale_factor: 2,
            min_segments,
        })
    }

    async fn set_event_rate_policy(
        &self,
        stream: &StreamId,
        target_rate: u32,
        min_segments: u32,
    ) -> Result<crate::observe::controller::StreamScaling, SourceError> {
        let before = self.scaling(stream).await;
        *self.0.lock().unwrap() = (target_rate, min_segments);
        before
    }
}

#[tokio::test]
async fn an_aligned_job_whose_backlog_grows_is_reported_falling_behind_then_keeping_up() {
    // Grows by 100 per pass for 12 passes, then drains.
    let growing = (0..12).map(|i| 10_000 + 100 * i);
    let draining = (0..12).map(|i| 11_100 - 150 * i);
    let pending = Arc::new(Mutex::new(growing.chain(draining).collect::<Vec<u64>>()));
    let url = flink_with_backlog(pending).await;
    let (autoscaler, target, telemetry, config) = one_segment_with_backlog_window(&url);
    let flink = FlinkClient::new(&url, Duration::from_secs(2));
    let binding = LiveBinding::new(config, Box::new(target.clone()), Some(flink)).with_policies(
        Arc::new(FakePolicies(Arc::new(Mutex::new((1000, 1))))),
        None,
    );
    let mut autoscaler = Autoscaler::new(autoscaler.sources, vec![binding], telemetry.clone());

    let mut reports = Vec::new();
    for _ in 0..12 {
        reports = autoscaler.reconcile(ACTING).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = &reports[0];
    assert_eq!(report.reason_kind, "FallingBehind", "{report:?}");
    assert_eq!(
        report.action,
        Action::Hold,
        "the alignment rule is unchanged"
    );
    assert!(
        report.reason.starts_with("hold: aligned")
            && report
                .reason
                .contains("falling behind: the backlog grew from")
            && report
                .reason
                .contains("one subtask processes 600 events/s (busy time)")
            && report
                .reason
                .contains("the stream's policy splits a segment at 1000 events/s")
            && report
                .reason
                .contains("a target of 480 events/s per segment"),
        "{}",
        report.reason
    );
    let text = telemetry.metrics.encode();
    assert!(
        text.contains("segment_autoscaler_falling_behind{binding=\"b\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("segment_autoscaler_backlog_records{binding=\"b\"} 11100"),
        "{text}"
    );
    assert!(
        text.contains("segment_autoscaler_subtask_processing_rate{binding=\"b\"} 600.0"),
        "{text}"
    );

    for _ in 0..12 {
        reports = autoscaler.reconcile(ACTING).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(reports[0].reason_kind, "Aligned", "{:?}", reports[0]);
    let text = telemetry.metrics.encode();
    assert!(
        text.contains("segment_autoscaler_falling_behind{binding=\"b\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("segment_autoscaler_catch_up_seconds{binding=\"b\"}"),
        "{text}"
    );
    let events: Vec<String> = target
        .events
        .lock()
        .unwrap()
        .iter()
        .map(|(r, _)| r.clone())
        .collect();
    assert_eq!(events, ["FallingBehind", "KeepingUp"], "once each");
}

#[tokio::test]
async fn opted_in_a_job_falling_behind_lowers_its_streams_policy_target_once_within_bounds() {
    let growing: Vec<u64> = (0..40).map(|i| 10_000 + 100 * i).collect();
    let url = flink_with_backlog(Arc::new(Mutex::new(growing))).await;
    let (autoscaler, target, telemetry, config) = one_segment_with_backlog_window(&url);
    let policy = Arc::new(Mutex::new((1000, 1)));
    let bounds = TuningBounds {
        min_target: 100,
        max_target: 1000,
        min_segments: 1,
        max_segments: 8,
    };
    let binding = LiveBinding::new(
        config,
        Box::new(target.clone()),
        Some(FlinkClient::new(&url, Duration::from_secs(2))),
    )
    .with_policies(Arc::new(FakePolicies(policy.clone())), Some(bounds));
    let mut autoscaler = Autoscaler::new(autoscaler.sources, vec![binding], telemetry);

    // Observing only (not the leader): falling behind, and the stream left as it is.
    let mut reports = Vec::new();
    for _ in 0..12 {
        reports = autoscaler.reconcile(None).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(reports[0].reason_kind, "FallingBehind", "{:?}", reports[0]);
    assert_eq!(*policy.lock().unwrap(), (1000, 1));

    for _ in 0..8 {
        autoscaler.reconcile(ACTING).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // 600 events/s per subtask (300 read at half busy), 80 % of it; written at 300 events/s
    // plus the backlog's growth (100 per 50 ms pass, about 2000/s): 5 segments at 480.
    let (target_rate, min_segments) = *policy.lock().unwrap();
    assert_eq!(target_rate, 480);
    assert!((4..=7).contains(&min_segments), "{min_segments}");
    let events = target.events.lock().unwrap().clone();
    let tuned: Vec<&String> = events
        .iter()
        .filter(|(reason, _)| reason == "ScalingPolicyTuned")
        .map(|(_, note)| note)
        .collect();
    assert_eq!(tuned.len(), 1, "once: {events:?}");
    assert!(
        tuned[0].starts_with(&format!(
            "demo/load: scaling policy target 1000 -> 480 events/s per segment, min segments 1 -> {min_segments}: falling behind"
        )),
        "{}",
        tuned[0]
    );
}

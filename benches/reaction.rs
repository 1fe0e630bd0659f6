//! Reaction benchmark: segment-autoscaler against the HPA + prometheus-adapter pipeline.
//!
//! Run it through `benches/hpa-reaction`, which starts the two stacks, the HPA pipelines and
//! their Deployments, and sets the `BENCH_*` variables read here. This program starts
//! segment-autoscaler four times (controller and Prometheus source, default and tuned settings),
//! then changes the stream's segments through the controller's scale call, ROUNDS times STEPS.
//! For every change and system it measures the time from the change becoming visible through
//! `getCurrentSegments` to the system's Deployment `spec.replicas` reaching the new segment
//! count, as seen by a watch on the real API server.
//!
//! Without `--bench` (as under `cargo test --all-targets`) it only explains how to run it.

use test_support as support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{Api, WatchEvent, WatchParams};
use kube::ResourceExt;
use pravega_client_shared::{Scope, ScopedStream, Stream};
use pravega_controller_client::ControllerClientImpl;
use serde_json::json;
use support::config::{deployment, AutoscalerConfig};
use support::{eventually, pravega, AutoscalerProcess};

/// Every component at its defaults, or tuned for speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Settings {
    Default,
    Tuned,
}

impl Settings {
    fn name(self) -> &'static str {
        match self {
            Settings::Default => "default",
            Settings::Tuned => "tuned",
        }
    }
}

/// What moves a Deployment's replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scaler {
    AutoscalerController,
    AutoscalerPrometheus,
    Hpa,
}

impl Scaler {
    fn name(self) -> &'static str {
        match self {
            Scaler::AutoscalerController => "segment-autoscaler, controller source",
            Scaler::AutoscalerPrometheus => "segment-autoscaler, Prometheus source",
            Scaler::Hpa => "HPA + prometheus-adapter",
        }
    }
}

/// One system under measurement and the Deployment it scales.
struct System {
    scaler: Scaler,
    settings: Settings,
    deployment: String,
    replicas: ReplicaHistory,
}

/// Every `spec.replicas` value a Deployment took, with the instant the watch delivered it.
#[derive(Clone, Default)]
struct ReplicaHistory(Arc<Mutex<Vec<(Instant, i32)>>>);

impl ReplicaHistory {
    fn record(&self, replicas: i32) {
        let mut changes = self.0.lock().unwrap();
        if changes.last().map(|&(_, r)| r) != Some(replicas) {
            changes.push((Instant::now(), replicas));
        }
    }

    fn current(&self) -> Option<i32> {
        self.0.lock().unwrap().last().map(|&(_, r)| r)
    }

    /// The first instant at or after `since` when the replicas became `replicas`.
    fn reached(&self, replicas: i32, since: Instant) -> Option<Instant> {
        let changes = self.0.lock().unwrap();
        changes
            .iter()
            .find(|&&(at, r)| at >= since && r == replicas)
            .map(|&(at, _)| at)
    }

    /// How many changes happened at or after `since`.
    fn changes_since(&self, since: Instant) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|&&(at, _)| at >= since)
            .count()
    }
}

/// Follows one Deployment's spec.replicas with a watch, re-reading it whenever the watch ends.
async fn watch_replicas(api: Api<Deployment>, name: String, history: ReplicaHistory) {
    let spec_replicas = |d: &Deployment| d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    loop {
        let Ok(current) = api.get(&name).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        history.record(spec_replicas(&current));
        let params = WatchParams::default()
            .fields(&format!("metadata.name={name}"))
            .timeout(290);
        let version = current.resource_version().unwrap_or_default();
        let Ok(events) = api.watch(&params, &version).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let mut events = events.boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(WatchEvent::Added(d) | WatchEvent::Modified(d)) => {
                    history.record(spec_replicas(&d))
                }
                Ok(WatchEvent::Error(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}

/// The benchmark's inputs, set by `benches/hpa-reaction`.
struct Inputs {
    stream: ScopedStream,
    namespace: String,
    pravega_controller: String,
    tuned_kubeconfig: PathBuf,
    tuned_prometheus: String,
    default_kubeconfig: PathBuf,
    default_prometheus: String,
    out: PathBuf,
    rounds: usize,
    steps: Vec<usize>,
    step_timeout: Duration,
    jitter: Duration,
    /// Time between two streams created beside the measured one (zero: none).
    activity: Duration,
}

impl Inputs {
    fn from_env() -> Inputs {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: run this benchmark through benches/hpa-reaction")
            })
        };
        let number = |name: &str, default: &str| -> usize {
            let text = std::env::var(name).unwrap_or_else(|_| default.to_string());
            text.parse()
                .unwrap_or_else(|_| panic!("{name}: {text:?} is not a whole number"))
        };
        let steps: Vec<usize> = std::env::var("STEPS")
            .unwrap_or_else(|_| "2 4 2 1".into())
            .split_whitespace()
            .map(|s| match s.parse() {
                Ok(n) if (1..=32).contains(&n) => n,
                _ => panic!("STEPS: {s:?} is not a segment count from 1 to 32"),
            })
            .collect();
        assert!(
            !steps.is_empty() && steps.windows(2).all(|w| w[0] != w[1]) && steps[0] != 1,
            "STEPS must change the count at every step, starting from 1: {steps:?}"
        );
        Inputs {
            stream: ScopedStream {
                scope: Scope::from(var("BENCH_SCOPE")),
                stream: Stream::from(var("BENCH_STREAM")),
            },
            namespace: var("BENCH_NAMESPACE"),
            pravega_controller: var("BENCH_PRAVEGA_CONTROLLER"),
            tuned_kubeconfig: var("BENCH_TUNED_KUBECONFIG").into(),
            tuned_prometheus: var("BENCH_TUNED_PROMETHEUS"),
            default_kubeconfig: var("BENCH_DEFAULT_KUBECONFIG").into(),
            default_prometheus: var("BENCH_DEFAULT_PROMETHEUS"),
            out: var("BENCH_OUT").into(),
            rounds: number("ROUNDS", "3"),
            steps,
            step_timeout: Duration::from_secs(number("STEP_TIMEOUT", "600") as u64),
            jitter: Duration::from_secs(number("JITTER", "60") as u64),
            activity: Duration::from_secs(number("ACTIVITY", "30") as u64),
        }
    }
}

/// segment-autoscaler's configuration for one system: its defaults, or 1 s and no
/// stabilization; the Prometheus at the same settings.
fn autoscaler_config(inputs: &Inputs, scaler: Scaler, settings: Settings, name: &str) -> String {
    let (source, prometheus) = match (scaler, settings) {
        (Scaler::AutoscalerController, _) => ("controller", &inputs.tuned_prometheus),
        (Scaler::AutoscalerPrometheus, Settings::Default) => {
            ("prometheus", &inputs.default_prometheus)
        }
        (Scaler::AutoscalerPrometheus, Settings::Tuned) => ("prometheus", &inputs.tuned_prometheus),
        (Scaler::Hpa, _) => unreachable!("the HPA is not segment-autoscaler"),
    };
    let stream = format!("{}/{}", inputs.stream.scope.name, inputs.stream.stream.name);
    let config = AutoscalerConfig::binding(name, &[&stream], deployment(&inputs.namespace, name))
        .default_interval()
        .stabilization(None)
        .prometheus(prometheus)
        .pravega(&inputs.pravega_controller)
        .kubernetes(&inputs.tuned_kubeconfig, None)
        .source(source)
        .max_replicas(32);
    match settings {
        Settings::Default => config.yaml(),
        Settings::Tuned => config.interval("1s").stabilization(Some("0s")).yaml(),
    }
}

/// One measured reaction: a system following one segment change.
#[derive(Debug, Clone)]
struct Reaction {
    system: usize,
    from: usize,
    to: usize,
    /// Seconds from the change being visible to spec.replicas reaching it; None: timed out.
    seconds: Option<f64>,
    /// spec.replicas changes during the step (1 when the system moved straight there).
    changes: usize,
}

/// Scales the stream to `segments` and returns when the change was first seen through
/// `getCurrentSegments` (the instant that poll was sent).
async fn change_segments(
    controller: &ControllerClientImpl,
    stream: &ScopedStream,
    segments: usize,
) -> Instant {
    let visible = async {
        loop {
            let sent = Instant::now();
            if pravega::try_segment_count(controller, stream).await == Ok(segments) {
                return sent;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let ((), seen) = tokio::join!(pravega::scale_to(controller, stream, segments), visible);
    seen
}

/// A number in [0, 1) from the kernel's random source. Not the clock: a step starts a fixed time
/// after a system's move, which sits on that system's loop grid, so the clock's fraction of a
/// second would repeat from step to step.
fn random_fraction() -> f64 {
    use std::io::Read;
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).max(1);
    sorted[rank - 1]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("reaction: run benches/hpa-reaction (it starts the stacks this benchmark needs)");
        return;
    }
    let inputs = Inputs::from_env();
    tokio::runtime::Runtime::new()
        .expect("tokio runtime")
        .block_on(run(inputs));
}

async fn run(inputs: Inputs) {
    let tuned_client = support::kubernetes::client(&inputs.tuned_kubeconfig).await;
    let default_client = support::kubernetes::client(&inputs.default_kubeconfig).await;
    let tuned_api: Api<Deployment> = Api::namespaced(tuned_client.clone(), &inputs.namespace);
    let default_api: Api<Deployment> = Api::namespaced(default_client.clone(), &inputs.namespace);

    let mut systems = Vec::new();
    let mut autoscalers = Vec::new();
    for settings in [Settings::Default, Settings::Tuned] {
        for scaler in [
            Scaler::AutoscalerController,
            Scaler::AutoscalerPrometheus,
            Scaler::Hpa,
        ] {
            let deployment = match scaler {
                Scaler::AutoscalerController => format!("tm-ours-controller-{}", settings.name()),
                Scaler::AutoscalerPrometheus => format!("tm-ours-prometheus-{}", settings.name()),
                Scaler::Hpa => format!("tm-hpa-{}", settings.name()),
            };
            let api = match (scaler, settings) {
                (Scaler::Hpa, Settings::Default) => default_api.clone(),
                _ => tuned_api.clone(),
            };
            if scaler != Scaler::Hpa {
                let config = autoscaler_config(&inputs, scaler, settings, &deployment);
                autoscalers.push(AutoscalerProcess::start(
                    &format!("bench-{deployment}"),
                    &config,
                ));
            }
            let replicas = ReplicaHistory::default();
            tokio::spawn(watch_replicas(api, deployment.clone(), replicas.clone()));
            systems.push(System {
                scaler,
                settings,
                deployment,
                replicas,
            });
        }
    }

    // Both HPAs have computed a replica count from the External metric, and every system
    // holds its Deployment at the stream's one segment.
    for (client, name) in [
        (&default_client, "tm-hpa-default"),
        (&tuned_client, "tm-hpa-tuned"),
    ] {
        let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &inputs.namespace);
        eventually(
            &format!("HPA {name} reads the External metric"),
            Duration::from_secs(300),
            || async {
                let hpa = hpas.get(name).await.map_err(|e| e.to_string())?;
                let metrics = hpa
                    .status
                    .and_then(|s| s.current_metrics)
                    .unwrap_or_default();
                if metrics.is_empty() {
                    Err("no current metrics yet".to_string())
                } else {
                    Ok(())
                }
            },
        )
        .await;
    }
    eventually(
        "every Deployment at 1 replica",
        Duration::from_secs(120),
        || async {
            let off: Vec<_> = systems
                .iter()
                .filter(|s| s.replicas.current() != Some(1))
                .map(|s| format!("{}={:?}", s.deployment, s.replicas.current()))
                .collect();
            if off.is_empty() {
                Ok(())
            } else {
                Err(off.join(", "))
            }
        },
    )
    .await;

    let controller = pravega::controller(&inputs.pravega_controller);
    assert_eq!(
        pravega::segment_count(&controller, &inputs.stream).await,
        1,
        "the benchmark's stream starts with one segment"
    );
    // A controller in use: Pravega drops expired gauges (3 minutes unused) only when its
    // cache is next written, so on a controller that only ever scales the measured stream its
    // gauge would never go, as on no real cluster.
    if !inputs.activity.is_zero() {
        let (scope, prefix) = (
            inputs.stream.scope.name.clone(),
            inputs.stream.stream.name.clone(),
        );
        let (every, controller) = (
            inputs.activity,
            pravega::controller(&inputs.pravega_controller),
        );
        tokio::spawn(async move {
            for n in 0.. {
                tokio::time::sleep(every).await;
                pravega::create_stream(&controller, &scope, &format!("{prefix}-other{n}")).await;
            }
        });
    }
    let mut reactions = Vec::new();
    let mut segments = 1;
    for round in 1..=inputs.rounds {
        for &target in &inputs.steps {
            // A step starts right after the slowest system moved, so without this pause every
            // change would fall at the same phase of that system's loop (its sync period, the
            // scrape) and repeat the same figure instead of sampling the phases.
            let pause = inputs.jitter.mul_f64(random_fraction());
            tokio::time::sleep(pause).await;
            let requested = Instant::now();
            let visible = change_segments(&controller, &inputs.stream, target).await;
            let deadline = visible + inputs.step_timeout;
            while Instant::now() < deadline
                && systems
                    .iter()
                    .any(|s| s.replicas.reached(target as i32, requested).is_none())
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // A moment for an overshoot or a second move to show in the change count.
            tokio::time::sleep(Duration::from_secs(3)).await;
            let mut line = format!(
                "round {round}: {segments} -> {target} segments (after {:.1}s):",
                pause.as_secs_f64()
            );
            for (index, system) in systems.iter().enumerate() {
                let seconds = system
                    .replicas
                    .reached(target as i32, requested)
                    .map(|at| at.saturating_duration_since(visible).as_secs_f64());
                line += &match seconds {
                    Some(s) => format!(" {}={s:.2}s", system.deployment),
                    None => format!(" {}=timeout", system.deployment),
                };
                reactions.push(Reaction {
                    system: index,
                    from: segments,
                    to: target,
                    seconds,
                    changes: system.replicas.changes_since(requested),
                });
            }
            eprintln!("{line}");
            segments = target;
        }
    }
    drop(autoscalers);
    report(&inputs, &systems, &reactions);
}

/// Prints the table and writes every reaction to `reaction.json` under BENCH_OUT.
fn report(inputs: &Inputs, systems: &[System], reactions: &[Reaction]) {
    let direction = |r: &Reaction| if r.to > r.from { "up" } else { "down" };
    // (settings, direction) -> median of segment-autoscaler with the controller source.
    let mut ours = BTreeMap::new();
    let mut rows = Vec::new();
    for (index, system) in systems.iter().enumerate() {
        for dir in ["up", "down"] {
            let mine: Vec<&Reaction> = reactions
                .iter()
                .filter(|r| r.system == index && direction(r) == dir)
                .collect();
            let mut seconds: Vec<f64> = mine.iter().filter_map(|r| r.seconds).collect();
            seconds.sort_by(f64::total_cmp);
            let timeouts = mine.len() - seconds.len();
            let extra_changes: usize = mine.iter().map(|r| r.changes.saturating_sub(1)).sum();
            let figures = (!seconds.is_empty()).then(|| {
                (
                    percentile(&seconds, 0.5),
                    percentile(&seconds, 0.9),
                    seconds[seconds.len() - 1],
                )
            });
            if system.scaler == Scaler::AutoscalerController {
                if let Some((median, _, _)) = figures {
                    ours.insert((system.settings, dir), median);
                }
            }
            rows.push((system, dir, mine.len(), timeouts, extra_changes, figures));
        }
    }

    println!(
        "\nReaction: segment change visible through getCurrentSegments -> Deployment spec.replicas \
         equal to the segment count.\n{} round(s) of {:?} from 1 segment; a random 0-{:?} pause \
         before each change; step timeout {:?}; another stream created every {:?} (0s: none).\n",
        inputs.rounds, inputs.steps, inputs.jitter, inputs.step_timeout, inputs.activity
    );
    println!(
        "{:<8} {:<38} {:<5} {:>3} {:>9} {:>9} {:>9} {:>8} {:>8} {:>6}",
        "settings",
        "system",
        "dir",
        "n",
        "median s",
        "p90 s",
        "max s",
        "x ours",
        "timeouts",
        "extra"
    );
    let mut json_rows = Vec::new();
    for (system, dir, n, timeouts, extra, figures) in rows {
        let ratio = figures.and_then(|(median, _, _)| {
            let reference = *ours.get(&(system.settings, dir))?;
            (reference > 0.0).then(|| median / reference)
        });
        let show = |v: Option<f64>, digits: usize| {
            v.map(|v| format!("{v:.digits$}"))
                .unwrap_or_else(|| "-".into())
        };
        println!(
            "{:<8} {:<38} {:<5} {:>3} {:>9} {:>9} {:>9} {:>8} {:>8} {:>6}",
            system.settings.name(),
            system.scaler.name(),
            dir,
            n,
            show(figures.map(|f| f.0), 2),
            show(figures.map(|f| f.1), 2),
            show(figures.map(|f| f.2), 2),
            show(ratio, 1),
            timeouts,
            extra
        );
        json_rows.push(json!({
            "settings": system.settings.name(),
            "system": system.scaler.name(),
            "deployment": system.deployment,
            "direction": dir,
            "changes": n,
            "median_seconds": figures.map(|f| f.0),
            "p90_seconds": figures.map(|f| f.1),
            "max_seconds": figures.map(|f| f.2),
            "ratio_to_ours": ratio,
            "timeouts": timeouts,
            "extra_replica_changes": extra,
        }));
    }
    println!(
        "\nx ours: median over the median of segment-autoscaler (controller source) at the same \
         settings; extra: spec.replicas changes beyond the one expected per step."
    );
    let raw: Vec<_> = reactions
        .iter()
        .map(|r| {
            json!({
                "deployment": systems[r.system].deployment,
                "from": r.from,
                "to": r.to,
                "seconds": r.seconds,
                "replica_changes": r.changes,
            })
        })
        .collect();
    let path = inputs.out.join("reaction.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&json!({"summary": json_rows, "reactions": raw})).unwrap(),
    )
    .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    println!("Every reaction: {}", path.display());
}

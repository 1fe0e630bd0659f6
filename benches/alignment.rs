//! Alignment benchmark: how long from a change of a stream's segments until Flink runs the job at
//! the matching parallelism, on the Kubernetes demo stack and on the local stack (in the
//! reactive mode, and in the prewarmed mode with a headroom of 1 on Flink's adaptive
//! scheduler), with the autoscaler settings of deploy/k8s (2 s interval, 60 s scale-down
//! stabilization, controller source).
//!
//! Run it through `benches/alignment [kubernetes|local|modes|both]`, which sets
//! `BENCH_PLATFORMS`, `BENCH_STEPS`, `BENCH_ROUNDS` and `BENCH_OUT`. Each change is a scale call
//! on the real controller (it returns once the controller completed the scale), after a pause
//! of 5-10 s; from its return the benchmark polls every 250 ms until:
//! - *pods Ready* (Kubernetes only): the TaskManager Deployment has that many Ready pods;
//! - *registered*: the JobManager has as many TaskManagers registered as the mode keeps (the
//!   job's, plus the headroom in the prewarmed mode);
//! - *job aligned*: the job is RUNNING with every vertex at that parallelism.
//!
//! It also integrates, over every poll and pause of a platform, the TaskManagers registered and
//! those the job does not use: the headroom's cost in TaskManager-seconds.
//!
//! Without `--bench` (as under `cargo test --all-targets`) it only explains how to run it.

use test_support as support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::Api;
use serde_json::json;
use support::cluster::{self, NAMESPACE, TASKMANAGERS};
use support::config::{stack_taskmanagers, AutoscalerConfig};
use support::{flink, pravega, AutoscalerProcess, Component, Stack};

/// How long one change may take to align (the 60 s stabilization included).
const STEP_TIMEOUT: Duration = Duration::from_secs(300);

/// Time between two polls.
const POLL: Duration = Duration::from_millis(250);

/// The times of one change, from the scale call's return.
#[derive(Debug, Clone, serde::Serialize)]
struct Change {
    platform: &'static str,
    from: usize,
    to: usize,
    pods_ready_seconds: Option<f64>,
    registered_seconds: f64,
    aligned_seconds: f64,
}

/// Where the benchmark changes segments and reads Flink.
enum Platform {
    Kubernetes {
        controller: String,
        flink_rest: String,
        deployments: Api<Deployment>,
    },
    Local {
        controller: String,
        flink_rest: String,
        /// TaskManagers kept beyond the job's: 0 in the reactive mode.
        headroom: usize,
        _autoscaler: AutoscalerProcess,
    },
}

/// TaskManager-seconds over a platform's run.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
struct Usage {
    seconds: f64,
    taskmanager_seconds: f64,
    /// Of which the job used none of their slots (one slot each).
    idle_taskmanager_seconds: f64,
}

/// The most TaskManagers the benchmark's binding may have.
const MAX_REPLICAS: usize = 8;

impl Platform {
    fn name(&self) -> &'static str {
        match self {
            Platform::Kubernetes { .. } => "kubernetes",
            Platform::Local { headroom: 0, .. } => "local",
            Platform::Local { .. } => "local-prewarmed",
        }
    }

    /// The TaskManagers the autoscaler keeps for a job at `parallelism`.
    fn taskmanagers_for(&self, parallelism: usize) -> usize {
        match self {
            Platform::Local { headroom, .. } => (parallelism + headroom).min(MAX_REPLICAS),
            Platform::Kubernetes { .. } => parallelism,
        }
    }

    /// One poll of Flink, its TaskManagers counted into `usage` for `interval`.
    async fn poll(&self, usage: &mut Usage, interval: Duration) -> Option<flink::FlinkView> {
        let view = self.flink().await.ok();
        if let Some(view) = &view {
            let used = view.parallelism.iter().copied().max().unwrap_or(0);
            let seconds = interval.as_secs_f64();
            usage.seconds += seconds;
            usage.taskmanager_seconds += view.taskmanagers as f64 * seconds;
            usage.idle_taskmanager_seconds +=
                view.taskmanagers.saturating_sub(used) as f64 * seconds;
        }
        view
    }

    /// Polls for `pause`, counting the TaskManagers into `usage`.
    async fn idle(&self, pause: Duration, usage: &mut Usage) {
        let end = Instant::now() + pause;
        while Instant::now() < end {
            self.poll(usage, POLL).await;
            tokio::time::sleep(POLL).await;
        }
    }

    /// Scales the benchmark's stream to `n` segments (creating it first when `n` is `None`).
    async fn segments(&self, n: Option<usize>) {
        match self {
            Platform::Kubernetes { controller, .. } => {
                cluster::stream_segments(controller, "demo", "load", n).await
            }
            Platform::Local { controller, .. } => {
                let client = pravega::controller(controller);
                let stream = pravega::create_stream(&client, "bench", "alignment").await;
                if let Some(n) = n {
                    pravega::scale_to(&client, &stream, n).await;
                }
            }
        }
    }

    async fn flink(&self) -> Result<flink::FlinkView, String> {
        match self {
            Platform::Kubernetes { flink_rest, .. } | Platform::Local { flink_rest, .. } => {
                flink::view(flink_rest).await
            }
        }
    }

    /// Ready TaskManager pods, on Kubernetes.
    async fn pods_ready(&self) -> Option<i32> {
        match self {
            Platform::Kubernetes { deployments, .. } => {
                let status = deployments.get(TASKMANAGERS).await.ok()?.status?;
                Some(status.ready_replicas.unwrap_or(0))
            }
            Platform::Local { .. } => None,
        }
    }

    /// Changes the segments to `to` and times the three milestones.
    async fn change(&self, from: usize, to: usize, usage: &mut Usage) -> Change {
        self.segments(Some(to)).await;
        let start = Instant::now();
        let taskmanagers = self.taskmanagers_for(to);
        let (mut pods, mut registered, mut aligned) = (None, None, None);
        while aligned.is_none() || registered.is_none() || (pods.is_none() && self.has_pods()) {
            assert!(
                start.elapsed() < STEP_TIMEOUT,
                "{} {from} -> {to}: not aligned in {STEP_TIMEOUT:?} (pods {pods:?}, registered {registered:?})",
                self.name()
            );
            let now = start.elapsed().as_secs_f64();
            if pods.is_none() && self.pods_ready().await == Some(to as i32) {
                pods = Some(now);
            }
            if let Some(view) = self.poll(usage, POLL).await {
                if registered.is_none() && view.taskmanagers == taskmanagers as u64 {
                    registered = Some(now);
                }
                if aligned.is_none() && view.runs_at(to as u64) {
                    aligned = Some(now);
                }
            }
            tokio::time::sleep(POLL).await;
        }
        Change {
            platform: self.name(),
            from,
            to,
            pods_ready_seconds: pods,
            registered_seconds: registered.unwrap(),
            aligned_seconds: aligned.unwrap(),
        }
    }

    fn has_pods(&self) -> bool {
        matches!(self, Platform::Kubernetes { .. })
    }
}

/// deploy/k8s on the cluster through deploy/local/k8s, without the data generator.
async fn kubernetes() -> Platform {
    let stack = Stack::require(&[Component::Cluster]).await;
    stack.stack_command(&["images", "--load"]);
    let client = stack.kube_client(&stack.cluster_kubeconfig).await;
    cluster::deploy_without_generator(&stack, &[]);
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let (controller, flink_rest) = cluster::endpoints(&services).await;
    Platform::Kubernetes {
        controller,
        flink_rest,
        deployments: Api::namespaced(client, NAMESPACE),
    }
}

/// The local stack: Pravega, Flink and the autoscaler with a command target starting and
/// stopping local TaskManagers, at deploy/k8s's settings: in reactive mode (`headroom` 0), or
/// in the prewarmed mode with `headroom` on Flink's adaptive scheduler (Flink is restarted in
/// the scheduler the mode needs).
async fn local(headroom: usize) -> Platform {
    let stack = Stack::require(&[Component::Pravega, Component::Flink]).await;
    let (scheduler, alignment) = match headroom {
        0 => ("reactive", "{mode: reactive}".to_string()),
        n => ("adaptive", format!("{{mode: prewarmed, headroom: {n}}}")),
    };
    stack.restart_flink(&[("FLINK_SCHEDULER", scheduler)]).await;
    // deploy/k8s's 2 s unless the run asks for another (the tick bounds every alignment).
    let interval = std::env::var("BENCH_INTERVAL").unwrap_or_else(|_| "2s".into());
    let target = stack_taskmanagers(&stack.stack_script);
    let config = AutoscalerConfig::binding("local", &["bench/alignment"], target)
        .interval(&interval)
        .pravega(&stack.pravega_controller)
        .source("controller")
        .max_replicas(MAX_REPLICAS as u32)
        .stabilization(Some("60s"))
        .flink(&stack.flink_rest_url, &format!("alignment: {alignment}"))
        .yaml();
    Platform::Local {
        controller: stack.pravega_controller.clone(),
        flink_rest: stack.flink_rest_url.clone(),
        headroom,
        _autoscaler: AutoscalerProcess::start("bench-alignment", &config),
    }
}

/// Median and maximum of `values` (nearest rank), formatted.
fn median_max(mut values: Vec<f64>) -> String {
    if values.is_empty() {
        return "-".into();
    }
    values.sort_by(f64::total_cmp);
    format!(
        "{:.1} / {:.1}",
        values[values.len() / 2],
        values[values.len() - 1]
    )
}

/// Median, 90th percentile and maximum of `values` (nearest rank), formatted.
fn median_p90_max(mut values: Vec<f64>) -> String {
    if values.is_empty() {
        return "-".into();
    }
    values.sort_by(f64::total_cmp);
    let p90 = values[(values.len() * 9).div_ceil(10) - 1];
    format!(
        "{:.1} / {p90:.1} / {:.1}",
        values[values.len() / 2],
        values[values.len() - 1]
    )
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("alignment: run it with benches/alignment (it starts what it measures)");
        return;
    }
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let steps: Vec<usize> = var("BENCH_STEPS")
        .split_whitespace()
        .map(|s| s.parse().expect("BENCH_STEPS: whole numbers"))
        .collect();
    let rounds: usize = var("BENCH_ROUNDS").parse().expect("BENCH_ROUNDS");
    let out = std::path::PathBuf::from(var("BENCH_OUT"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut changes = Vec::new();
    let mut usages = Vec::new();
    for platform in var("BENCH_PLATFORMS").split_whitespace() {
        runtime.block_on(async {
            let platform = match platform {
                "kubernetes" => kubernetes().await,
                "local" => local(0).await,
                "local-prewarmed" => local(1).await,
                other => panic!("BENCH_PLATFORMS: unknown platform {other}"),
            };
            // Start aligned at one segment.
            platform.segments(None).await;
            let mut current = 1;
            let mut usage = Usage::default();
            platform.change(current, 1, &mut Usage::default()).await;
            for _ in 0..rounds {
                for &to in &steps {
                    // 5-10 s, so changes fall at random phases of the autoscaler's tick.
                    let nanos = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap()
                        .subsec_nanos();
                    let pause = 5.0 + 5.0 * f64::from(nanos % 1000) / 1000.0;
                    platform
                        .idle(Duration::from_secs_f64(pause), &mut usage)
                        .await;
                    let change = platform.change(current, to, &mut usage).await;
                    eprintln!("{change:?}");
                    changes.push(change);
                    current = to;
                }
            }
            eprintln!("{} {usage:?}", platform.name());
            usages.push((platform.name(), usage));
        });
    }
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("alignment.json"),
        serde_json::to_string_pretty(&json!({"changes": changes, "usage": usages})).unwrap(),
    )
    .unwrap();
    println!("| platform | direction | changes | pods Ready: median / max | registered: median / max | job aligned: median / p90 / max |");
    println!("|---|---|---|---|---|---|");
    for platform in ["local", "local-prewarmed", "kubernetes"] {
        for (direction, up) in [("up", true), ("down", false)] {
            let mine: Vec<&Change> = changes
                .iter()
                .filter(|c| c.platform == platform && (c.to > c.from) == up)
                .collect();
            if mine.is_empty() {
                continue;
            }
            println!(
                "| {platform} | {direction} | {} | {} | {} | {} |",
                mine.len(),
                median_max(mine.iter().filter_map(|c| c.pods_ready_seconds).collect()),
                median_max(mine.iter().map(|c| c.registered_seconds).collect()),
                median_p90_max(mine.iter().map(|c| c.aligned_seconds).collect()),
            );
        }
    }
    println!();
    println!("| platform | seconds | TaskManager-seconds | of which idle (no subtask) |");
    println!("|---|---|---|---|");
    for (platform, usage) in &usages {
        println!(
            "| {platform} | {:.0} | {:.0} | {:.0} |",
            usage.seconds, usage.taskmanager_seconds, usage.idle_taskmanager_seconds
        );
    }
}

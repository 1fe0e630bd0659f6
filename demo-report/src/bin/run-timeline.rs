//! `run-timeline`: samples a run every interval (one JSON line each, until SIGINT or
//! SIGTERM): the stream's active segments from the Pravega controller, the Flink job's running
//! parallelism and registered TaskManagers from its REST API, the target Deployment's desired
//! replicas and the autoscaler's Lease holder from the API server, and with `--prometheus` the
//! events written and verified. `demo-report --faults` judges each fault of a chaos run on it
//! ([`demo_report::faults`]), `peers-report` each contender of `benches/peers`
//! ([`demo_report::peers`]). Each read is bounded (`--read-timeout`); one that fails or times
//! out leaves its field empty for that sample and names its source in `unanswered`.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use demo_report::query::{events_now, prometheus_client};
use demo_report::timeline::{Source, TimelineSample};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use segment_autoscaler::config::{KubernetesConfig, PravegaConfig};
use segment_autoscaler::domain::StreamId;
use segment_autoscaler::flink::FlinkClient;
use segment_autoscaler::observe::{SegmentReading, SegmentSource};
use segment_autoscaler::setup;

/// Samples segments, job parallelism, TaskManagers, target replicas, Lease holder and events of a
/// run.
#[derive(Parser)]
#[command(version, long_about = None)]
struct Cli {
    /// The Pravega controller, `tcp://HOST:PORT`.
    #[arg(long)]
    controller: String,
    /// The `scope/stream` whose segments to count.
    #[arg(long)]
    stream: StreamId,
    /// The Flink JobManager's REST URL.
    #[arg(long)]
    flink: String,
    /// The kubeconfig to read the target and the Lease with.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Their namespace.
    #[arg(long)]
    namespace: String,
    /// The target Deployment.
    #[arg(long, default_value = "flink-taskmanager")]
    target: String,
    /// The autoscaler's Lease.
    #[arg(long, default_value = "segment-autoscaler")]
    lease: String,
    /// The Prometheus that scrapes the data generator and the busy reader: sample the events
    /// written and verified too.
    #[arg(long)]
    prometheus: Option<String>,
    /// Time between samples.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// The bound of each read. Longer than the interval: on a loaded node the API server or
    /// the JobManager can take over a second to answer, and a slow answer then delays the next
    /// sample instead of leaving the field unknown.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    read_timeout: Duration,
    /// Where the JSON lines go (appended).
    #[arg(long)]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    match sample(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn sample(cli: Cli) -> Result<(), String> {
    let bound = cli.read_timeout;
    let pravega = PravegaConfig {
        controller: cli.controller.clone(),
        timeout: bound,
        tls: None,
        credentials: None,
        tune_scaling_policy: None,
    };
    let source = setup::controller_source(&pravega)
        .map_err(|e| format!("--controller {}: {e}", cli.controller))?;
    let streams = BTreeSet::from([cli.stream.clone()]);
    let flink = FlinkClient::new(&cli.flink, bound);
    let kubernetes = KubernetesConfig {
        kubeconfig: Some(cli.kubeconfig.clone()),
        timeout: bound,
    };
    let client = setup::kube_clients(&kubernetes)
        .await
        .map_err(|e| format!("--kubeconfig {}: {e}", cli.kubeconfig.display()))?
        .calls;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &cli.namespace);
    let leases: Api<Lease> = Api::namespaced(client, &cli.namespace);
    let prometheus = cli
        .prometheus
        .as_deref()
        .map(|url| prometheus_client(url, bound, Default::default()))
        .transpose()
        .map_err(|e| e.to_string())?;
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&cli.out)
        .map_err(|e| format!("--out {}: {e}", cli.out.display()))?;

    let mut ticks = tokio::time::interval(cli.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = terminate.recv() => return Ok(()),
        }
        let at = demo_report::unix_now();
        let events = async {
            match &prometheus {
                Some(prometheus) => Some(events_now(prometheus).await),
                None => None,
            }
        };
        let (segments, job, taskmanagers, scale, lease, events) = tokio::join!(
            tokio::time::timeout(bound, source.read(&streams)),
            tokio::time::timeout(bound, flink.job_status()),
            tokio::time::timeout(bound, flink.registered_taskmanagers()),
            tokio::time::timeout(bound, deployments.get_scale(&cli.target)),
            tokio::time::timeout(bound, leases.get(&cli.lease)),
            tokio::time::timeout(bound, events),
        );
        let mut unanswered = Vec::new();
        let mut answer = |source: Source, answered: bool| {
            if !answered {
                unanswered.push(source);
            }
        };
        // The controller answers per stream: a stream it could not read is unanswered too.
        let segments = segments
            .ok()
            .map(|mut readings| readings.remove(&cli.stream));
        answer(
            Source::Segments,
            matches!(segments, Some(Some(SegmentReading::Segments(_)))),
        );
        let job = job.ok().and_then(Result::ok);
        answer(Source::Job, job.is_some());
        let taskmanagers = taskmanagers.ok().and_then(Result::ok);
        answer(Source::Taskmanagers, taskmanagers.is_some());
        let scale = scale.ok().and_then(Result::ok);
        answer(Source::Target, scale.is_some());
        let lease = lease.ok().and_then(Result::ok);
        answer(Source::Lease, lease.is_some());
        let (written, read) = match events {
            Ok(Some(Ok(counts))) => counts,
            Ok(None) => (None, None),
            Err(_) | Ok(Some(Err(_))) => {
                answer(Source::Events, false);
                (None, None)
            }
        };
        let sample = TimelineSample {
            at,
            segments: match segments {
                Some(Some(SegmentReading::Segments(n))) => Some(n),
                _ => None,
            },
            parallelism: job.and_then(|j| j.running_parallelism()),
            replicas: scale.and_then(|s| s.spec).and_then(|s| s.replicas),
            leader: lease
                .and_then(|l| l.spec)
                .and_then(|s| s.holder_identity)
                .filter(|h| !h.is_empty()),
            taskmanagers,
            written,
            read,
            unanswered,
        };
        let line = serde_json::to_string(&sample).expect("a sample serializes");
        writeln!(out, "{line}").map_err(|e| format!("--out {}: {e}", cli.out.display()))?;
    }
}

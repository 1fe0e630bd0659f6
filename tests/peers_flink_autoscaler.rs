//! Smoke test of Flink's own autoscaler, a peer benches/peers measures segment-autoscaler
//! against: on the real single-node cluster, the demo deployed on the adaptive scheduler
//! (deploy/k8s/prewarmed) with its own autoscaler stopped and a fixed pool of 4 TaskManagers,
//! the job set to run at 4 and no load, Flink's autoscaler standalone (the jar of
//! `../shared/peers/`, or `FLINK_AUTOSCALER_JAR`) with a short metrics window scales the idle
//! job down once, through the adaptive scheduler's resource requirements.
//!
//! Ignored by default (the jar is not part of a clone): `SEGMENT_AUTOSCALER_PEERS=1
//! deploy/local/test` runs it, or by hand `cargo test --test peers_flink_autoscaler --
//! --ignored`.

use test_support as support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{Api, Patch, PatchParams};
use segment_autoscaler::flink::FlinkClient;
use support::cluster::{self, NAMESPACE, TASKMANAGERS};
use support::{eventually, flink, Component, Stack};

/// The standalone autoscaler, stopped when the test ends (passing or not).
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

fn jar() -> PathBuf {
    let jar = std::env::var_os("FLINK_AUTOSCALER_JAR").map_or_else(
        || support::repo_root().join("../shared/peers/flink-autoscaler-standalone-1.15.0.jar"),
        PathBuf::from,
    );
    assert!(
        jar.is_file(),
        "no Flink autoscaler jar at {} (set FLINK_AUTOSCALER_JAR)",
        jar.display()
    );
    jar
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the jar of Flink's autoscaler (../shared/peers or FLINK_AUTOSCALER_JAR), then --ignored"]
async fn flink_autoscaler_rescales_the_job_once() {
    let jar = jar();
    let stack = Stack::require(&[Component::Cluster]).await;
    stack.stack_command(&["images", "--load"]);
    let client = stack.kube_client(&stack.cluster_kubeconfig).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ready = cluster::deploy_without_generator(&stack, &["deploy/k8s/prewarmed"]);
    eprintln!("every workload Ready {ready:?} after apply");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let replicas = |n: i32| Patch::Merge(serde_json::json!({"spec": {"replicas": n}}));
    // The peer alone sizes the job, on a fixed pool: the demo's autoscaler stopped.
    deployments
        .patch("segment-autoscaler", &PatchParams::default(), &replicas(0))
        .await
        .expect("stop the demo's autoscaler");
    deployments
        .patch(TASKMANAGERS, &PatchParams::default(), &replicas(4))
        .await
        .expect("4 TaskManagers");

    let (controller, flink_rest) = cluster::endpoints(&services).await;
    cluster::stream_segments(&controller, "demo", "load", None).await;
    let job = flink::wait_scheduled(&flink_rest, Duration::from_secs(180)).await;
    FlinkClient::new(&flink_rest, Duration::from_secs(10))
        .set_parallelism(&job.job_id, 4)
        .await
        .expect("the job allowed 4 subtasks");
    cluster::wait_running(&deployments, &flink_rest, 4, 4, Duration::from_secs(300)).await;

    let host = flink_rest
        .trim_start_matches("http://")
        .split(':')
        .next()
        .unwrap()
        .to_string();
    let log = std::env::temp_dir().join(support::unique_name("flink-autoscaler.log"));
    let _peer = Peer(
        Command::new("java")
            .arg("-Xmx256m")
            .arg("-jar")
            .arg(&jar)
            .args(["--autoscaler.standalone.fetcher.flink-cluster.host", &host])
            .args(["--autoscaler.standalone.fetcher.flink-cluster.port", "8081"])
            .args(["--job.autoscaler.enabled", "true"])
            .args(["--job.autoscaler.metrics.window", "1m"])
            .args(["--job.autoscaler.stabilization.interval", "30s"])
            .args(["--job.autoscaler.scale-down.interval", "30s"])
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::null())
            .spawn()
            .expect("java runs the jar"),
    );
    let started = Instant::now();
    // Idle (no load): it needs fewer than 4 readers, and says so through the scheduler.
    let parallelism = eventually(
        "Flink's autoscaler scaling the idle job below 4",
        Duration::from_secs(420),
        || async {
            let view = flink::view(&flink_rest).await?;
            (1..4)
                .find(|&p| view.runs_at(p))
                .ok_or(format!("not running below 4: {view:?}"))
        },
    )
    .await;
    eprintln!(
        "Flink's autoscaler ({}): the idle job 4 -> {parallelism} after {:?} (log {})",
        jar.display(),
        started.elapsed(),
        log.display()
    );
    cluster::delete_namespace(&namespaces).await;
}

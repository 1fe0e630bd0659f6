//! The prewarmed alignment mode on the real single-node cluster: deploy/k8s with the component
//! deploy/k8s/prewarmed (through the local overlay deploy/local/k8s, the data generator at
//! zero), the Deployment target:
//! - the JobManager runs the adaptive scheduler, not reactive mode;
//! - the TaskManager Deployment keeps one pod beyond the job's parallelism;
//! - when the stream's segments change, the autoscaler sets the job's parallelism through
//!   Flink's REST API, up (onto the warm TaskManager, then one more pod) and down (the job
//!   first, the pod released after), as its Events show in that order.

use test_support as support;

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Namespace, Service};
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use segment_autoscaler::flink::FlinkClient;
use support::cluster::{self, NAMESPACE};
use support::{flink, Component, Stack};

/// The autoscaler's Event with `reason`: when it was first and last recorded (a repeat of the
/// same reason on the same object is a series of one Event, Kubernetes' own grouping, which
/// keeps the first note), and its note.
fn recorded(events: &[Event], reason: &str) -> (Timestamp, Timestamp, String) {
    let event = events
        .iter()
        .find(|e| e.reason.as_deref() == Some(reason))
        .unwrap_or_else(|| {
            let all: Vec<_> = events.iter().map(|e| (&e.reason, &e.message)).collect();
            panic!("a {reason} Event: {all:?}")
        });
    let first = event.event_time.as_ref().expect("eventTime").0;
    let last = event
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref())
        .map_or(first, |t| t.0);
    (first, last, event.message.clone().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_follows_segments_on_warm_taskmanager_pods() {
    let stack = Stack::require(&[Component::Cluster]).await;
    stack.stack_command(&["images", "--load"]);
    let client = stack.kube_client(&stack.cluster_kubeconfig).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ready = cluster::deploy_without_generator(&stack, &["deploy/k8s/prewarmed"]);
    eprintln!("every workload Ready {ready:?} after apply");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let events: Api<Event> = Api::namespaced(client.clone(), NAMESPACE);

    let (controller, flink_rest) = cluster::endpoints(&services).await;
    // The busy reader's job restarts until its stream exists: create it first.
    let segments = |n| cluster::stream_segments(&controller, "demo", "load", n);
    segments(None).await;
    let flink_client = FlinkClient::new(&flink_rest, Duration::from_secs(10));
    // Every pod Ready is not the job scheduled: under the adaptive scheduler the JobManager
    // answers a job being created or waiting for resources with no vertices.
    let job = flink::wait_scheduled(&flink_rest, Duration::from_secs(180)).await;
    let settings = flink_client
        .jobmanager_settings(&job.job_id, job.adaptive)
        .await
        .expect("the JobManager's configuration");
    assert!(!settings.reactive, "the component turns reactive mode off");

    // One segment: the job at 1 and one TaskManager pod more, started and kept warm.
    cluster::wait_running(&deployments, &flink_rest, 2, 1, Duration::from_secs(300)).await;
    assert_eq!(
        flink_client.registered_taskmanagers().await.ok(),
        Some(2),
        "the JobManager's overview counts the warm TaskManager too"
    );

    // Scale-up: the job moves onto the warm pod, then one more pod is started.
    segments(Some(2)).await;
    let changed = Instant::now();
    flink::wait_runs_at(&flink_rest, 2, Duration::from_secs(120)).await;
    let up = changed.elapsed();
    cluster::wait_running(&deployments, &flink_rest, 3, 2, Duration::from_secs(180)).await;

    // Scale-down (after deploy/k8s's 60 s stabilization): the job first, then a pod released.
    segments(Some(1)).await;
    let down =
        cluster::wait_running(&deployments, &flink_rest, 2, 1, Duration::from_secs(300)).await;
    let version = flink::version(&flink_rest).await.unwrap_or_default();
    eprintln!(
        "Flink {version}, 1 -> 2 segments: the job RUNNING at 2 after {up:?}; 2 -> 1: aligned \
         after {down:?}"
    );

    let recorded_events = cluster::autoscaler_events(&events).await;
    // Up: the job first, then the pods topped up (the second ScaledUp, after the first pod
    // made warm). Down: the job first, and a pod released only once the job runs lower.
    let (job_up, _, _) = recorded(&recorded_events, "JobScaledUp");
    let (_, pods_up, _) = recorded(&recorded_events, "ScaledUp");
    let (job_down, _, _) = recorded(&recorded_events, "JobScaledDown");
    let (pods_down, _, released) = recorded(&recorded_events, "ScaledDown");
    assert!(
        job_up <= pods_up && job_down <= pods_down,
        "the job's parallelism changes before the pods: up {job_up} / {pods_up}, down \
         {job_down} / {pods_down}"
    );
    assert!(
        released.contains("replicas 3 -> 2") && released.contains("the job runs at 1"),
        "{released}"
    );

    cluster::delete_namespace(&namespaces).await;
}

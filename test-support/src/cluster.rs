//! deploy/k8s on the single-node cluster (the `cluster` component), through deploy/local/k8s.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams};

use crate::{eventually, flink, pravega, Stack};

/// The namespace deploy/k8s uses.
pub const NAMESPACE: &str = "segment-autoscaler-demo";
/// The TaskManager Deployment the autoscaler scales.
pub const TASKMANAGERS: &str = "flink-taskmanager";

/// The demo stack's Pravega controller (`tcp://IP:9090`) and Flink REST API
/// (`http://IP:8081`), through their Services' cluster IPs (the host routes them).
pub async fn endpoints(services: &Api<Service>) -> (String, String) {
    (
        format!("tcp://{}:9090", service_ip(services, "pravega").await),
        format!(
            "http://{}:8081",
            service_ip(services, "flink-jobmanager").await
        ),
    )
}

/// A Service's cluster IP.
async fn service_ip(services: &Api<Service>, name: &str) -> String {
    services
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("Service {name}: {e}"))
        .spec
        .and_then(|s| s.cluster_ip)
        .unwrap_or_else(|| panic!("Service {name} has a cluster IP"))
}

/// Creates `scope/stream` with one segment if missing, then scales it to `n` segments
/// unless `n` is `None`, through the controller at `tcp://IP:PORT` (the host routes the
/// cluster's pod and Service addresses to the node).
pub async fn stream_segments(controller: &str, scope: &str, stream: &str, n: Option<usize>) {
    let client = pravega::controller(controller);
    let stream = pravega::create_stream(&client, scope, stream).await;
    if let Some(n) = n {
        pravega::scale_to(&client, &stream, n).await;
    }
}

/// Waits until the TaskManager Deployment asks for and has `taskmanagers` Ready pods, as
/// many are registered with the JobManager, and the job runs with every vertex at
/// `parallelism`; returns how long that took.
pub async fn wait_running(
    deployments: &Api<Deployment>,
    flink_rest: &str,
    taskmanagers: i32,
    parallelism: u64,
    timeout: Duration,
) -> Duration {
    let start = std::time::Instant::now();
    eventually(
        &format!(
            "{taskmanagers} Ready TaskManager pods and the job RUNNING at parallelism \
             {parallelism}"
        ),
        timeout,
        || async {
            let status = deployments
                .get(TASKMANAGERS)
                .await
                .map_err(|e| e.to_string())?
                .status
                .unwrap_or_default();
            let job = flink::view(flink_rest).await?;
            if status.replicas == Some(taskmanagers)
                && status.ready_replicas == Some(taskmanagers)
                && job.taskmanagers == taskmanagers as u64
                && job.runs_at(parallelism)
            {
                Ok(())
            } else {
                Err(format!(
                    "replicas {:?}, Ready {:?}, Flink {job:?}",
                    status.replicas, status.ready_replicas
                ))
            }
        },
    )
    .await;
    start.elapsed()
}

/// The Events the autoscaler recorded in the namespace of `events`.
pub async fn autoscaler_events(events: &Api<Event>) -> Vec<Event> {
    events
        .list(&ListParams::default())
        .await
        .expect("list Events")
        .items
        .into_iter()
        .filter(|e| e.reporting_component.as_deref() == Some("segment-autoscaler"))
        .collect()
}

/// Whether a pod's Ready condition is true.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Ok when every Deployment has all the pods it asks for Ready and the JobManager's pod is
/// Ready; otherwise what is not.
pub async fn every_workload_ready(
    deployments: &Api<Deployment>,
    pods: &Api<Pod>,
) -> Result<(), String> {
    let mut waiting = Vec::new();
    for deployment in deployments
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?
    {
        let name = deployment.metadata.name.unwrap_or_default();
        let wanted = deployment.spec.and_then(|s| s.replicas).unwrap_or(1);
        let ready = deployment
            .status
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        if ready != wanted {
            waiting.push(format!("{name} {ready}/{wanted}"));
        }
    }
    let jobmanager = pods
        .list(&ListParams::default().labels("component=jobmanager"))
        .await
        .map_err(|e| e.to_string())?;
    if !jobmanager.items.iter().any(is_ready) {
        waiting.push("flink-jobmanager".into());
    }
    if waiting.is_empty() {
        Ok(())
    } else {
        Err(format!("not Ready: {}", waiting.join(", ")))
    }
}

/// Applies deploy/local/k8s with the data generator at zero replicas and `components`
/// (e.g. deploy/k8s/prewarmed; a namespace left by an earlier run deleted first) and waits until
/// every workload is Ready, through `deploy/local/stack demo-deploy` (what the demo runs);
/// returns how long that took after the apply.
pub fn deploy_without_generator(stack: &Stack, components: &[&str]) -> Duration {
    let mut args = vec!["demo-deploy", "--without-generator"];
    args.extend_from_slice(components);
    let output = stack.stack_command(&args);
    let seconds = output
        .lines()
        .find_map(|l| {
            l.strip_prefix("ready after ")?
                .strip_suffix(" s")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("`stack demo-deploy` printed no time: {output}"));
    Duration::from_secs(seconds)
}

/// Deletes the namespace, if there, and waits until it is gone.
pub async fn delete_namespace(namespaces: &Api<Namespace>) {
    if namespaces.get_opt(NAMESPACE).await.unwrap().is_none() {
        return;
    }
    let _ = namespaces.delete(NAMESPACE, &DeleteParams::default()).await;
    eventually("the namespace gone", Duration::from_secs(180), || async {
        match namespaces.get_opt(NAMESPACE).await {
            Ok(None) => Ok(()),
            other => Err(format!("{:?}", other.map(|n| n.and_then(|n| n.status)))),
        }
    })
    .await;
}

//! deploy/k8s as users apply it, through the local overlay deploy/local/k8s (images built here
//! from deploy/docker and deploy/local/images, no Grafana), on the real single-node cluster:
//! - every workload becomes Ready;
//! - the autoscaler's two replicas elect one leader, and only the leader records scale Events;
//! - when the stream's segments change, the TaskManager Deployment's Ready pods and the Flink
//!   job's parallelism follow, up and down;
//! - from inside the autoscaler's pod, its ServiceAccount token is denied pods, secrets and
//!   other Deployments (and allowed the one scale subresource it needs);
//! - deleting the leader's pod hands the Lease over within the lease duration.
//!
//! The data generator is scaled to zero here: the test drives the segments itself through the
//! Pravega controller in the cluster (the host routes pod and Service addresses to the node).

use test_support as support;

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::json;
use support::cluster::{self, NAMESPACE, TASKMANAGERS};
use support::kubernetes::kubectl;
use support::{eventually, Component, Stack};

/// The Lease deploy/k8s uses, and its replicas' label.
const LEASE: &str = "segment-autoscaler";
const AUTOSCALER: &str = "app.kubernetes.io/name=segment-autoscaler";
/// The lease duration in deploy/k8s's config (15 s) and a little slack for a slow machine.
const HANDOVER_BOUND: Duration = Duration::from_secs(17);

/// The names of the autoscaler's Ready pods that are not being deleted.
async fn ready_autoscaler_pods(pods: &Api<Pod>) -> Result<Vec<String>, String> {
    let list = pods
        .list(&ListParams::default().labels(AUTOSCALER))
        .await
        .map_err(|e| e.to_string())?;
    Ok(list
        .items
        .into_iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .filter(cluster::is_ready)
        .filter_map(|pod| pod.metadata.name)
        .collect())
}

/// The Lease's holder, if any.
async fn holder(leases: &Api<Lease>) -> Result<String, String> {
    let lease = leases.get(LEASE).await.map_err(|e| e.to_string())?;
    lease
        .spec
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
        .ok_or_else(|| "no holder".to_string())
}

/// The pod an identity ("HOSTNAME-PID", the host name being the pod's name) belongs to.
fn pod_of<'a>(identity: &str, pods: &'a [String]) -> Option<&'a String> {
    pods.iter().find(|pod| {
        identity
            .strip_prefix(pod.as_str())
            .is_some_and(|rest| rest.starts_with('-'))
    })
}

/// Runs curl in an ephemeral container of `pod` with the pod's ServiceAccount token, against
/// the API server; returns "CODE PATH" lines, one per path.
async fn api_codes_from_inside(
    stack: &Stack,
    pods: &Api<Pod>,
    pod: &str,
    image: &str,
    paths: &[&str],
) -> String {
    let spec = pods
        .get(pod)
        .await
        .expect("the autoscaler's pod")
        .spec
        .unwrap();
    let token_volume = spec
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.name)
        .find(|name| name.starts_with("kube-api-access-"))
        .expect("the pod mounts its ServiceAccount token");
    let script = format!(
        "set -e; dir=/var/run/secrets/kubernetes.io/serviceaccount; for path in {}; do \
         curl -sS -o /dev/null -w \"%{{http_code}} $path\\n\" --max-time 10 --cacert $dir/ca.crt \
         -H \"Authorization: Bearer $(cat $dir/token)\" https://kubernetes.default.svc/$path; done",
        paths.join(" ")
    );
    let patch = json!({"spec": {"ephemeralContainers": [{
        "name": "token-probe",
        "image": image,
        "imagePullPolicy": "Never",
        "command": ["/bin/sh", "-c", script],
        "securityContext": {"runAsUser": 65532, "runAsNonRoot": true, "allowPrivilegeEscalation": false},
        "volumeMounts": [{"name": token_volume, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}],
    }]}});
    let patched = kubectl(
        &stack.kubectl,
        &stack.cluster_kubeconfig,
        &[
            "-n",
            NAMESPACE,
            "patch",
            "pod",
            pod,
            "--subresource=ephemeralcontainers",
            "--type=strategic",
            "-p",
            &patch.to_string(),
        ],
        "",
    );
    assert!(
        patched.status.success(),
        "adding the ephemeral container: {}",
        String::from_utf8_lossy(&patched.stderr)
    );
    eventually(
        "the token probe finished",
        Duration::from_secs(60),
        || async {
            let pod = pods.get(pod).await.map_err(|e| e.to_string())?;
            let finished = pod
                .status
                .and_then(|s| s.ephemeral_container_statuses)
                .unwrap_or_default()
                .into_iter()
                .any(|c| {
                    c.name == "token-probe" && c.state.is_some_and(|s| s.terminated.is_some())
                });
            if finished {
                Ok(())
            } else {
                Err("running".to_string())
            }
        },
    )
    .await;
    let logs = kubectl(
        &stack.kubectl,
        &stack.cluster_kubeconfig,
        &["-n", NAMESPACE, "logs", pod, "-c", "token-probe"],
        "",
    );
    String::from_utf8_lossy(&logs.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_stack_runs_scales_with_the_segments_and_keeps_its_token_narrow() {
    let stack = Stack::require(&[Component::Cluster]).await;
    // Every image of the stack, built from deploy/docker and deploy/local/images (cached by
    // their inputs), imported into the node's containerd.
    stack.stack_command(&["images", "--load"]);
    let curl = stack.stack_command(&["images", "--load", "curl"]);
    let curl_image = curl
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("`stack images` printed NAME REFERENCE TARBALL: {curl}"))
        .to_string();

    let client = stack.kube_client(&stack.cluster_kubeconfig).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ready = cluster::deploy_without_generator(&stack, &[]);
    eprintln!("every workload Ready {ready:?} after apply");
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    let events: Api<Event> = Api::namespaced(client.clone(), NAMESPACE);

    // One leader among the two Ready replicas.
    let replicas = ready_autoscaler_pods(&pods).await.unwrap();
    assert_eq!(replicas.len(), 2, "two autoscaler replicas: {replicas:?}");
    let leader = eventually("a Lease holder", Duration::from_secs(60), || {
        holder(&leases)
    })
    .await;
    let leader_pod = pod_of(&leader, &replicas)
        .unwrap_or_else(|| panic!("the holder {leader} is one of {replicas:?}"))
        .clone();

    // Segments 1 -> 3 -> 1: the TaskManager pods and the job's parallelism follow.
    let (controller, flink_rest) = cluster::endpoints(&services).await;
    let segments = |n| cluster::stream_segments(&controller, "demo", "load", n);
    segments(None).await;
    cluster::wait_running(&deployments, &flink_rest, 1, 1, Duration::from_secs(300)).await;
    segments(Some(3)).await;
    let up = cluster::wait_running(&deployments, &flink_rest, 3, 3, Duration::from_secs(240)).await;
    segments(Some(1)).await;
    // Includes the 60 s scale-down stabilization of deploy/k8s's config.
    let down =
        cluster::wait_running(&deployments, &flink_rest, 1, 1, Duration::from_secs(300)).await;
    eprintln!("aligned after 1 -> 3 segments in {up:?}, after 3 -> 1 in {down:?}");

    // Only the leader scaled, and the Events say so.
    let scale_events = cluster::autoscaler_events(&events).await;
    for reason in ["ScaledUp", "ScaledDown"] {
        assert!(
            scale_events
                .iter()
                .any(|e| e.reason.as_deref() == Some(reason)),
            "a {reason} Event: {scale_events:?}"
        );
    }
    for event in &scale_events {
        assert_eq!(
            event.reporting_instance.as_deref(),
            Some(leader.as_str()),
            "every scale Event names the leader: {:?}",
            event.message
        );
    }

    // From inside the autoscaler's pod: its token may scale flink-taskmanager, nothing else.
    let ns = NAMESPACE;
    let codes = api_codes_from_inside(
        &stack,
        &pods,
        &leader_pod,
        &curl_image,
        &[
            &format!("apis/apps/v1/namespaces/{ns}/deployments/{TASKMANAGERS}/scale"),
            &format!("api/v1/namespaces/{ns}/pods"),
            &format!("api/v1/namespaces/{ns}/secrets"),
            &format!("apis/apps/v1/namespaces/{ns}/deployments/{TASKMANAGERS}"),
            &format!("apis/apps/v1/namespaces/{ns}/deployments/pravega/scale"),
            "api/v1/namespaces/kube-system/secrets",
        ],
    )
    .await;
    let lines: Vec<&str> = codes.lines().collect();
    assert_eq!(lines.len(), 6, "one answer per path: {codes}");
    assert!(
        lines[0].starts_with("200 "),
        "the scale subresource it needs: {codes}"
    );
    for line in &lines[1..] {
        assert!(line.starts_with("403 "), "denied: {line} (all: {codes})");
    }

    // The leader's pod goes (SIGTERM, as on a rollout or drain): another replica leads within
    // the lease.
    let deleted = Instant::now();
    pods.delete(&leader_pod, &DeleteParams::default())
        .await
        .expect("delete the leader's pod");
    let next = eventually("another replica leads", HANDOVER_BOUND * 2, || async {
        let now = holder(&leases).await?;
        let live: Vec<String> = pods
            .list(&ListParams::default().labels(AUTOSCALER))
            .await
            .map_err(|e| e.to_string())?
            .items
            .into_iter()
            .filter_map(|pod| pod.metadata.name)
            .filter(|name| *name != leader_pod)
            .collect();
        match pod_of(&now, &live) {
            Some(_) => Ok(now),
            None => Err(format!("holder {now}")),
        }
    })
    .await;
    let handover = deleted.elapsed();
    eprintln!("leader {leader} -> {next} in {handover:?} after its pod was deleted");
    assert!(
        handover <= HANDOVER_BOUND,
        "handover within the lease: {handover:?}"
    );

    cluster::delete_namespace(&namespaces).await;
}

//! deploy/k8s as users apply it, through the local overlay deploy/local/k8s (images built here
//! from deploy/docker and deploy/local/images, no Grafana), on the real single-node cluster:
//! - every workload becomes Ready;
//! - the autoscaler's two replicas elect one leader, and only the leader records scale Events;
//! - when the stream's segments change, the TaskManager Deployment's Ready pods and the Flink
//!   job's parallelism follow, up and down;
//! - deleting the JobManager's pod: a new one resumes the same job from its latest checkpoint
//!   (Kubernetes HA, checkpoints in the shared volume) at the parallelism the autoscaler set;
//! - from inside the autoscaler's pod, its ServiceAccount token is denied pods, secrets and
//!   other Deployments (and allowed the one scale subresource it needs);
//! - deleting the leader's pod hands the Lease over within the lease duration;
//! - the chart, installed with `helm install` in place of those manifests: every pod Ready, the
//!   demo's SegmentScaler edited and followed, its `kubectl get` row live, `helm upgrade` rolls
//!   the pods, a deleted SegmentScaler is written for no more, `helm uninstall` leaves only the
//!   CRD.
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

    // The JobManager's pod goes: its replacement takes the lead from the HA ConfigMaps and
    // resumes the same job from the latest checkpoint in the shared volume, at the 3
    // TaskManagers the autoscaler set.
    // A checkpoint completed after the one the rescale restored: only a new restore reaches it.
    let before = eventually(
        "a checkpoint completed since the last restore",
        Duration::from_secs(60),
        || async {
            let checkpoints = support::flink::checkpoints(&flink_rest).await?;
            match checkpoints.completed {
                Some(id) if Some(id) > checkpoints.restored => Ok((checkpoints.job, id)),
                _ => Err(format!("{checkpoints:?}")),
            }
        },
    )
    .await;
    let jobmanager = pods
        .list(&ListParams::default().labels("component=jobmanager"))
        .await
        .expect("list the JobManager's pods")
        .items
        .into_iter()
        .find_map(|pod| pod.metadata.name)
        .expect("the JobManager's pod");
    let deleted = Instant::now();
    pods.delete(&jobmanager, &DeleteParams::default())
        .await
        .expect("delete the JobManager's pod");
    // The old JobManager answers through the Service for a moment after the deletion, with
    // its own (earlier) restore: only a restore of that checkpoint or a later one counts. A job
    // started from the stream's head (no restore) or from an older checkpoint never gets there.
    let resumed = eventually(
        &format!(
            "the job resumed by a new JobManager from checkpoint {} or later",
            before.1
        ),
        Duration::from_secs(240),
        || async {
            let checkpoints = support::flink::checkpoints(&flink_rest).await?;
            match checkpoints.restored {
                Some(restored) if restored >= before.1 => Ok((checkpoints.job, restored)),
                _ => Err(format!("{checkpoints:?}")),
            }
        },
    )
    .await;
    assert_eq!(resumed.0, before.0, "the same job, recovered from HA");
    cluster::wait_running(&deployments, &flink_rest, 3, 3, Duration::from_secs(240)).await;
    eprintln!(
        "JobManager pod deleted: the job ran again at parallelism 3 from checkpoint {} after {:?}",
        resumed.1,
        deleted.elapsed()
    );

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

    // From inside the autoscaler's pod: its token may scale flink-taskmanager and read the
    // SegmentScalers, nothing else.
    let ns = NAMESPACE;
    let codes = api_codes_from_inside(
        &stack,
        &pods,
        &leader_pod,
        &curl_image,
        &[
            &format!("apis/apps/v1/namespaces/{ns}/deployments/{TASKMANAGERS}/scale"),
            &format!("apis/segment-autoscaler.io/v1alpha1/namespaces/{ns}/segmentscalers"),
            &format!("api/v1/namespaces/{ns}/pods"),
            &format!("api/v1/namespaces/{ns}/secrets"),
            &format!("apis/apps/v1/namespaces/{ns}/deployments/{TASKMANAGERS}"),
            &format!("apis/apps/v1/namespaces/{ns}/deployments/pravega/scale"),
            "api/v1/namespaces/kube-system/secrets",
        ],
    )
    .await;
    let lines: Vec<&str> = codes.lines().collect();
    assert_eq!(lines.len(), 7, "one answer per path: {codes}");
    for line in &lines[..2] {
        assert!(
            line.starts_with("200 "),
            "the scale subresource and the SegmentScalers it needs: {codes}"
        );
    }
    for line in &lines[2..] {
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

    helm_lifecycle(&stack, &client, &deployments, &controller, &flink_rest).await;
    cluster::delete_namespace(&namespaces).await;
}

/// The release's label on every object the chart makes.
const RELEASE: &str = "app.kubernetes.io/instance=segment-autoscaler";

/// `helm ARGS...` against the cluster; its output, or a panic with it.
fn helm(stack: &Stack, args: &[&str]) -> String {
    support::stdout_of(
        std::process::Command::new(&stack.helm)
            .arg("--kubeconfig")
            .arg(&stack.cluster_kubeconfig)
            .args(["--namespace", NAMESPACE])
            .args(args),
        &format!("helm {}", args.join(" ")),
    )
}

/// `kubectl ARGS...` against the cluster in the demo's namespace; its stdout.
fn kubectl_out(stack: &Stack, args: &[&str]) -> String {
    let mut all = vec!["-n", NAMESPACE];
    all.extend_from_slice(args);
    let output = kubectl(&stack.kubectl, &stack.cluster_kubeconfig, &all, "");
    assert!(
        output.status.success(),
        "kubectl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The chart as users install it, in place of the same manifests applied by kustomize: `helm
/// install` (every pod Ready), the demo's SegmentScaler followed and edited without a restart,
/// `kubectl get` showing its live row, `helm upgrade` rolling the pods, a deleted SegmentScaler
/// written for no more, and `helm uninstall` leaving only the CRD.
async fn helm_lifecycle(
    stack: &Stack,
    client: &kube::Client,
    deployments: &Api<Deployment>,
    controller: &str,
    flink_rest: &str,
) {
    use kube::api::{Patch, PatchParams};
    use segment_autoscaler::segment_scaler::SegmentScaler;

    let kinds =
        "deployment,configmap,service,poddisruptionbudget,serviceaccount,role,rolebinding,lease";
    kubectl_out(stack, &["delete", kinds, "-l", RELEASE, "--wait=true"]);
    let chart = support::repo_root().join("deploy/helm/segment-autoscaler");
    let values = support::repo_root().join("deploy/k8s/autoscaler-values.yaml");
    let installed = Instant::now();
    helm(
        stack,
        &[
            "install",
            "segment-autoscaler",
            chart.to_str().unwrap(),
            "-f",
            values.to_str().unwrap(),
            "--set",
            "image.repository=localhost/segment-autoscaler/segment-autoscaler",
            "--wait=watcher",
            "--timeout=5m",
        ],
    );
    eprintln!(
        "helm install: every pod Ready after {:?}",
        installed.elapsed()
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let before = ready_autoscaler_pods(&pods).await.unwrap();
    assert_eq!(before.len(), 2, "two replicas: {before:?}");

    // The SegmentScaler, edited while the installed autoscaler runs: at most 2 TaskManagers.
    let scalers: Api<SegmentScaler> = Api::namespaced(client.clone(), NAMESPACE);
    let max = |n: u32| {
        let scalers = scalers.clone();
        async move {
            scalers
                .patch(
                    "busy-reader",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"maxReplicas": n}})),
                )
                .await
                .expect("edit the SegmentScaler");
        }
    };
    max(2).await;
    cluster::stream_segments(controller, "demo", "load", Some(3)).await;
    cluster::wait_running(deployments, flink_rest, 2, 2, Duration::from_secs(240)).await;
    let row = eventually(
        "kubectl get shows the live row",
        Duration::from_secs(60),
        || async {
            let printed = kubectl_out(stack, &["get", "segmentscalers", "busy-reader"]);
            let row: Vec<String> = printed
                .lines()
                .nth(1)
                .unwrap_or_default()
                .split_whitespace()
                .map(String::from)
                .collect();
            if row.len() == 7
                && row[..6] == ["busy-reader", "[\"demo/load\"]", "3", "2", "2", "true"]
            {
                Ok(printed)
            } else {
                Err(printed)
            }
        },
    )
    .await;
    eprintln!("{row}");

    // A changed value rolls the pods: the configuration is read at start.
    helm(
        stack,
        &[
            "upgrade",
            "segment-autoscaler",
            chart.to_str().unwrap(),
            "--reuse-values",
            "--set",
            "config.interval=3s",
            "--wait=watcher",
            "--timeout=5m",
        ],
    );
    let after = eventually(
        "the upgrade rolled the pods",
        Duration::from_secs(120),
        || async {
            let now = ready_autoscaler_pods(&pods).await?;
            if now.len() == 2 && now.iter().all(|p| !before.contains(p)) {
                Ok(now)
            } else {
                Err(format!("{now:?}"))
            }
        },
    )
    .await;
    eprintln!("helm upgrade rolled {before:?} -> {after:?}");
    max(8).await;
    cluster::wait_running(deployments, flink_rest, 3, 3, Duration::from_secs(240)).await;

    // Deleted: the segments rise, and nothing follows.
    scalers
        .delete("busy-reader", &DeleteParams::default())
        .await
        .expect("delete the SegmentScaler");
    cluster::stream_segments(controller, "demo", "load", Some(4)).await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    let replicas = deployments
        .get(TASKMANAGERS)
        .await
        .unwrap()
        .spec
        .and_then(|s| s.replicas);
    assert_eq!(
        replicas,
        Some(3),
        "no write after the SegmentScaler was deleted"
    );

    // Uninstalled: nothing of the release is left but the CRD (Helm leaves crds/ in place).
    helm(stack, &["uninstall", "segment-autoscaler", "--wait"]);
    let left = kubectl_out(stack, &["get", kinds, "-l", RELEASE, "-o", "name"]);
    assert_eq!(left.trim(), "", "left after helm uninstall");
    kubectl_out(
        stack,
        &[
            "get",
            "crd",
            "segmentscalers.segment-autoscaler.io",
            "-o",
            "name",
        ],
    );
}

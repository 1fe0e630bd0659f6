//! The autoscaler as users run it: its image (built from deploy/docker with buildah), the
//! manifests of deploy/k8s, two replicas on the single-node cluster, each with the
//! ServiceAccount token Kubernetes mounts and the in-cluster API address (a ClusterIP through
//! kube-proxy). Exactly one replica leads; deleting the leader's pod hands over.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams};
use support::kubernetes::kubectl;
use support::{eventually, repo_root, Component, Stack};

/// The namespace and Lease deploy/k8s uses.
const NAMESPACE: &str = "segment-autoscaler-demo";
const LEASE: &str = "segment-autoscaler";
const SELECTOR: &str = "app.kubernetes.io/name=segment-autoscaler";

/// A kustomization applying deploy/k8s's namespace and autoscaler with the locally built image.
fn write_overlay(dir: &Path, image: &str) {
    std::fs::create_dir_all(dir).unwrap();
    for file in ["namespace.yaml", "autoscaler.yaml"] {
        std::fs::copy(repo_root().join("deploy/k8s").join(file), dir.join(file)).unwrap();
    }
    let (name, tag) = image.rsplit_once(':').expect("REFERENCE:TAG");
    std::fs::write(
        dir.join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
             namespace: {NAMESPACE}\nresources: [namespace.yaml, autoscaler.yaml]\n\
             images:\n  - {{name: segment-autoscaler, newName: {name}, newTag: \"{tag}\"}}\n"
        ),
    )
    .unwrap();
}

/// The names of the autoscaler's Ready pods.
async fn ready_pods(pods: &Api<Pod>) -> Result<Vec<String>, String> {
    let list = pods
        .list(&ListParams::default().labels(SELECTOR))
        .await
        .map_err(|e| e.to_string())?;
    Ok(list
        .items
        .into_iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .filter(|pod| {
            pod.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_elect_one_leader_and_hand_over_when_its_pod_goes() {
    let stack = Stack::require(&[Component::Cluster]).await;
    // Built from deploy/docker/segment-autoscaler.Dockerfile (cached by its inputs) and imported
    // into the node's containerd.
    let built = stack.stack_command(&["images", "--load", "segment-autoscaler"]);
    let image = built
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("`stack images` printed NAME REFERENCE TARBALL: {built}"))
        .to_string();

    let client = stack.kube_client(&stack.cluster_kubeconfig).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces.get_opt(NAMESPACE).await.unwrap().is_some() {
        let _ = namespaces.delete(NAMESPACE, &DeleteParams::default()).await;
        eventually("the old namespace gone", Duration::from_secs(120), || {
            let namespaces = namespaces.clone();
            async move {
                match namespaces.get_opt(NAMESPACE).await {
                    Ok(None) => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            }
        })
        .await;
    }
    let overlay = repo_root().join("target/cluster-autoscaler-overlay");
    write_overlay(&overlay, &image);
    let applied = kubectl(
        &stack.kubectl,
        &stack.cluster_kubeconfig,
        &["apply", "-k", overlay.to_str().unwrap()],
        "",
    );
    assert!(
        applied.status.success(),
        "kubectl apply -k: {}",
        String::from_utf8_lossy(&applied.stderr)
    );

    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    let ready = eventually(
        "both autoscaler replicas Ready",
        Duration::from_secs(180),
        || async {
            match ready_pods(&pods).await? {
                ready if ready.len() == 2 => Ok(ready),
                ready => Err(format!("Ready: {ready:?}")),
            }
        },
    )
    .await;

    // Exactly one leader, and it is one of the two pods; it stays the leader (no flapping).
    let first = eventually("a Lease holder", Duration::from_secs(60), || {
        holder(&leases)
    })
    .await;
    let leader_pod = pod_of(&first, &ready)
        .unwrap_or_else(|| panic!("the holder {first} is one of {ready:?}"))
        .clone();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(holder(&leases).await.unwrap(), first, "the leader stays");

    // The leader's pod is deleted (SIGTERM, as on a rollout or node drain): it releases the
    // Lease and another replica takes it within the lease duration (15 s in deploy/k8s):
    // the other original replica, or the one the Deployment starts in its place, whichever
    // asks first.
    let deleted = Instant::now();
    pods.delete(&leader_pod, &DeleteParams::default())
        .await
        .expect("delete the leader's pod");
    let next = eventually("another replica leads", Duration::from_secs(30), || async {
        let now = holder(&leases).await?;
        let live: Vec<String> = pods
            .list(&ListParams::default().labels(SELECTOR))
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
    eprintln!("leader {first} -> {next} in {handover:?} after its pod was deleted");
    assert!(
        handover <= Duration::from_secs(17),
        "handover within the lease: {handover:?}"
    );

    let _ = namespaces.delete(NAMESPACE, &DeleteParams::default()).await;
}

//! Smoke test of KEDA, a peer benches/peers measures segment-autoscaler against: on the real
//! single-node cluster, the demo deployed with its own autoscaler stopped, KEDA (`stack up keda`,
//! built from the Go module proxy) with pravega-samples' ScaledObject on the TaskManager
//! Deployment (deploy/local/peers/keda-pravega-samples.yaml: Prometheus trigger on
//! `pravega_controller_segments_count`, threshold 1, AverageValue, polling 15 s, cooldown 30 s,
//! 1-15 replicas) follows a segment change once.
//!
//! Ignored by default: KEDA's cold build (about 370 modules) does not fit CI's cold budget.
//! `SEGMENT_AUTOSCALER_PEERS=1 deploy/local/test` runs it, or by hand:
//! `deploy/local/stack install keda` then `cargo test --test peers_keda -- --ignored`.

use test_support as support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use support::cluster::{self, NAMESPACE};
use support::{eventually, Component, Stack};

/// The ScaledObject of pravega-samples' `scenarios/pravega-flink-autoscaling` on demo/load, as
/// `deploy/local/demo --peer keda-pravega-samples` applies it.
const PRAVEGA_SAMPLES_SCALED_OBJECT: &str =
    include_str!("../deploy/local/peers/keda-pravega-samples.yaml");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the keda peer: `deploy/local/stack install keda`, then --ignored"]
async fn keda_follows_a_segment_change_once() {
    let stack = Stack::require(&[Component::Cluster]).await;
    stack.stack_command(&["images", "--load"]);
    let client = stack.kube_client(&stack.cluster_kubeconfig).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ready = cluster::deploy_without_generator(&stack, &[]);
    eprintln!("every workload Ready {ready:?} after apply");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);

    // The peer alone owns the TaskManagers: the demo's autoscaler stopped.
    deployments
        .patch(
            "segment-autoscaler",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 0}})),
        )
        .await
        .expect("stop the demo's autoscaler");
    stack.stack_command(&["up", "keda"]);

    let (controller, flink_rest) = cluster::endpoints(&services).await;
    let segments = |n| cluster::stream_segments(&controller, "demo", "load", n);
    segments(None).await;
    cluster::wait_running(&deployments, &flink_rest, 1, 1, Duration::from_secs(300)).await;

    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "keda.sh",
        "v1alpha1",
        "ScaledObject",
    ));
    let scaled_objects: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NAMESPACE, &resource);
    let object: DynamicObject = serde_yaml_ng::from_str(PRAVEGA_SAMPLES_SCALED_OBJECT)
        .expect("deploy/local/peers/keda-pravega-samples.yaml is a ScaledObject");
    scaled_objects
        .create(&PostParams::default(), &object)
        .await
        .expect("create the ScaledObject");
    // KEDA reads the metric and keeps one TaskManager for one segment.
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), NAMESPACE);
    eventually(
        "KEDA's HPA reading 1 segment",
        Duration::from_secs(120),
        || async {
            let hpa = hpas
                .get("keda-hpa-taskmanager-scaledobject")
                .await
                .map_err(|e| e.to_string())?;
            let current = hpa
                .status
                .and_then(|s| s.current_metrics)
                .and_then(|m| m.into_iter().next())
                .and_then(|m| m.external)
                .and_then(|e| e.current.average_value);
            match current {
                Some(Quantity(value)) if value == "1" => Ok(()),
                other => Err(format!("current {other:?}")),
            }
        },
    )
    .await;

    segments(Some(3)).await;
    let aligned =
        cluster::wait_running(&deployments, &flink_rest, 3, 3, Duration::from_secs(300)).await;
    eprintln!("KEDA, 1 -> 3 segments: 3 TaskManagers Ready and the job at 3 after {aligned:?}");

    stack.stack_command(&["down", "keda"]);
    cluster::delete_namespace(&namespaces).await;
}

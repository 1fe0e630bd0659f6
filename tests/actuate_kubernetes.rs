//! The Kubernetes scale targets against the real API server, acting with the restricted
//! identity: concurrent writers never overwrite each other, an aligned target is not written,
//! StatefulSets and custom resources with a scale subresource (a CRD shaped like the Flink
//! Kubernetes Operator's `FlinkDeployment`) work like Deployments, and every change leaves an
//! Event.

use test_support as support;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use segment_autoscaler::actuate::ScaleResource;
use segment_autoscaler::actuate::{ActuateError, KubernetesScaleTarget, ScaleTarget};
use serde_json::json;
use std::time::Duration;
use support::kubernetes::{
    assert_forbidden, ensure_deployment, events_reported_by, replicas, set_replicas,
};
use support::kubernetes::{NAMESPACE, TASKMANAGERS};
use support::{eventually, unique_name, Component, Stack};

/// The target `config` names, acting with the restricted identity.
async fn target(stack: &Stack, resource: ScaleResource, instance: &str) -> KubernetesScaleTarget {
    KubernetesScaleTarget::new(
        stack.kube_client(&stack.kubeconfig_restricted).await,
        resource,
        instance,
        Duration::from_secs(5),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_write_conflicts_instead_of_overwriting() {
    let stack = Stack::require(&[Component::Kubernetes]).await;
    let admin: Api<Deployment> =
        Api::namespaced(stack.kube_client(&stack.kubeconfig_admin).await, NAMESPACE);
    ensure_deployment(&admin, TASKMANAGERS).await;
    set_replicas(&admin, TASKMANAGERS, 2).await;
    let target = target(
        &stack,
        ScaleResource::deployment(NAMESPACE, TASKMANAGERS),
        "actuate-test",
    )
    .await;

    let read = target.current().await.expect("read the scale");
    assert_eq!(read.count, 2);
    assert!(read.version.is_some(), "the read carries a resourceVersion");
    // Another writer changes the scale after our read.
    set_replicas(&admin, TASKMANAGERS, 5).await;
    let error = target
        .apply(&read, 3, "test")
        .await
        .expect_err("a stale write must fail");
    assert!(matches!(error, ActuateError::Conflict { .. }), "{error}");
    assert_eq!(
        replicas(&admin, TASKMANAGERS).await,
        5,
        "the other writer's change survives"
    );

    // Re-read and write: now it applies.
    let fresh = target.current().await.unwrap();
    target
        .apply(&fresh, 3, "test")
        .await
        .expect("a fresh write applies");
    assert_eq!(replicas(&admin, TASKMANAGERS).await, 3);

    // Already at target: no write at all (the resourceVersion does not move).
    let aligned = target.current().await.unwrap();
    target.apply(&aligned, 3, "aligned").await.unwrap();
    assert_eq!(
        target.current().await.unwrap().version,
        aligned.version,
        "no write when already at target"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_scale_is_set_and_recorded_as_an_event() {
    let stack = Stack::require(&[Component::Kubernetes]).await;
    let admin_client = stack.kube_client(&stack.kubeconfig_admin).await;
    let statefulsets: Api<StatefulSet> = Api::namespaced(admin_client.clone(), NAMESPACE);
    let statefulset: StatefulSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": TASKMANAGERS, "namespace": NAMESPACE},
        "spec": {
            "replicas": 1, "serviceName": TASKMANAGERS,
            "selector": {"matchLabels": {"app": "tm-sts"}},
            "template": {"metadata": {"labels": {"app": "tm-sts"}}, "spec": {"containers": [{"name": "tm", "image": "flink:1.16.3"}]}}
        }
    }))
    .unwrap();
    match statefulsets
        .create(&PostParams::default(), &statefulset)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("admin creates the StatefulSet: {e}"),
    }
    statefulsets
        .patch_scale(
            TASKMANAGERS,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap();

    let instance = unique_name("sts-");
    let target = target(
        &stack,
        ScaleResource::statefulset(NAMESPACE, TASKMANAGERS),
        &instance,
    )
    .await;
    assert_eq!(
        target.describe(),
        format!("statefulset {NAMESPACE}/{TASKMANAGERS}")
    );
    let read = target
        .current()
        .await
        .expect("read the StatefulSet's scale");
    assert_eq!(read.count, 1);
    target
        .apply(&read, 3, "3 segments -> 3 TaskManagers")
        .await
        .expect("scale the StatefulSet");
    let seen = statefulsets.get(TASKMANAGERS).await.unwrap();
    assert_eq!(seen.spec.and_then(|s| s.replicas), Some(3));

    let events: Api<Event> = Api::namespaced(admin_client, NAMESPACE);
    let reported = events_reported_by(&events, &instance).await;
    let event = reported.first().expect("an Event for the change");
    assert_eq!(event.involved_object.kind.as_deref(), Some("StatefulSet"));
    assert_eq!(event.reason.as_deref(), Some("ScaledUp"));
    assert_eq!(
        event.message.as_deref(),
        Some("replicas 1 -> 3: 3 segments -> 3 TaskManagers")
    );
    assert!(
        event.involved_object.uid.is_some(),
        "the Event points at the object's uid"
    );
}

/// A CRD shaped like the Flink Kubernetes Operator's `FlinkDeployment` where it matters here:
/// group, version, kind, plural, and its scale subresource on `.spec.taskManager.replicas`.
/// The rest of the schema is left open.
fn flink_deployment_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "flinkdeployments.flink.apache.org"},
        "spec": {
            "group": "flink.apache.org",
            "scope": "Namespaced",
            "names": {"kind": "FlinkDeployment", "plural": "flinkdeployments", "singular": "flinkdeployment"},
            "versions": [{
                "name": "v1beta1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                }}},
                "subresources": {"status": {}, "scale": {
                    "specReplicasPath": ".spec.taskManager.replicas",
                    "statusReplicasPath": ".status.taskManager.replicas",
                    "labelSelectorPath": ".status.taskManager.labelSelector"
                }}
            }]
        }
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flinkdeployment_is_scaled_through_its_scale_subresource_alone() {
    let stack = Stack::require(&[Component::Kubernetes]).await;
    let admin = stack.kube_client(&stack.kubeconfig_admin).await;
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    match crds
        .create(&PostParams::default(), &flink_deployment_crd())
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("admin creates the CRD: {e}"),
    }
    let resource = ScaleResource::new(
        "flink.apache.org/v1beta1",
        "FlinkDeployment",
        None,
        NAMESPACE,
        TASKMANAGERS,
    );
    assert_eq!(resource.plural, "flinkdeployments");
    let gvk = GroupVersionKind::gvk("flink.apache.org", "v1beta1", "FlinkDeployment");
    let api_resource = ApiResource::from_gvk_with_plural(&gvk, "flinkdeployments");
    let admin_flink: Api<DynamicObject> =
        Api::namespaced_with(admin.clone(), NAMESPACE, &api_resource);
    let object = json!({
        "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
        "metadata": {"name": TASKMANAGERS},
        "spec": {"flinkVersion": "v1_20", "taskManager": {"replicas": 2}}
    });
    // The CRD may still be settling right after its creation.
    eventually("the FlinkDeployment", Duration::from_secs(30), || async {
        let patch = Patch::Apply(&object);
        admin_flink
            .patch(
                TASKMANAGERS,
                &PatchParams::apply("actuate-test").force(),
                &patch,
            )
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    })
    .await;

    let instance = unique_name("flinkdep-");
    let target = target(&stack, resource.clone(), &instance).await;
    assert_eq!(
        target.describe(),
        format!("flinkdeployment.flink.apache.org {NAMESPACE}/{TASKMANAGERS}")
    );
    let read = eventually(
        "read the FlinkDeployment's scale",
        Duration::from_secs(30),
        || async { target.current().await.map_err(|e| e.to_string()) },
    )
    .await;
    assert_eq!(read.count, 2);
    target
        .apply(&read, 4, "4 segments -> 4 TaskManagers")
        .await
        .expect("scale the FlinkDeployment");
    let seen = admin_flink.get(TASKMANAGERS).await.unwrap();
    assert_eq!(
        seen.data["spec"]["taskManager"]["replicas"], 4,
        "the operator's field moved: {:?}",
        seen.data
    );
    assert_eq!(
        seen.data["spec"]["flinkVersion"], "v1_20",
        "nothing else did"
    );

    // The restricted identity holds the scale subresource only, not the object.
    let restricted = stack.kube_client(&stack.kubeconfig_restricted).await;
    let restricted_flink: Api<DynamicObject> =
        Api::namespaced_with(restricted, NAMESPACE, &api_resource);
    assert_forbidden(
        "get the FlinkDeployment",
        restricted_flink.get(TASKMANAGERS).await,
    );
    assert_forbidden(
        "patch the FlinkDeployment",
        restricted_flink
            .patch(
                TASKMANAGERS,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"taskManager": {"replicas": 1}}})),
            )
            .await,
    );

    let events: Api<Event> = Api::namespaced(admin, NAMESPACE);
    let reported = events_reported_by(&events, &instance).await;
    let event = reported.first().expect("an Event for the change");
    assert_eq!(
        event.involved_object.kind.as_deref(),
        Some("FlinkDeployment")
    );
    assert_eq!(
        event.involved_object.api_version.as_deref(),
        Some("flink.apache.org/v1beta1")
    );
    assert_eq!(event.reason.as_deref(), Some("ScaledUp"));
}

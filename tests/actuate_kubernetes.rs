//! The Kubernetes scale targets against the real API server, acting with the restricted
//! identity: concurrent writers never overwrite each other, an aligned target is not written,
//! StatefulSets work like Deployments, and every change leaves an Event.

mod support;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use segment_autoscaler::actuate::{ActuateError, DeploymentTarget, ScaleTarget, StatefulSetTarget};
use serde_json::json;
use std::time::Duration;
use support::kubernetes::{ensure_deployment, replicas, set_replicas, NAMESPACE, TASKMANAGERS};
use support::{unique_name, Component, Stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_write_conflicts_instead_of_overwriting() {
    let stack = Stack::require(&[Component::Kubernetes]).await;
    let admin: Api<Deployment> =
        Api::namespaced(stack.kube_client(&stack.kubeconfig_admin).await, NAMESPACE);
    ensure_deployment(&admin, TASKMANAGERS).await;
    set_replicas(&admin, TASKMANAGERS, 2).await;
    let target = DeploymentTarget::new(
        stack.kube_client(&stack.kubeconfig_restricted).await,
        NAMESPACE,
        TASKMANAGERS,
        "actuate-test",
        Duration::from_secs(5),
    );

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
    let target = StatefulSetTarget::new(
        stack.kube_client(&stack.kubeconfig_restricted).await,
        NAMESPACE,
        TASKMANAGERS,
        &instance,
        Duration::from_secs(5),
    );
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
    let list = events.list(&ListParams::default()).await.unwrap();
    let event = list
        .items
        .iter()
        .find(|e| e.reporting_instance.as_deref() == Some(instance.as_str()))
        .expect("an Event for the change");
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

//! The stack's kube-apiserver enforces RBAC: the autoscaler's ServiceAccount may read and patch
//! the scale of the one TaskManager Deployment it is bound to, and nothing else.

use test_support as support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use support::kubernetes::{assert_forbidden, ensure_deployment, NAMESPACE, TASKMANAGERS};
use support::{unique_name, Component, Stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_identity_may_scale_only_its_taskmanagers() {
    let stack = Stack::require(&[Component::Kubernetes]).await;
    let admin = stack.kube_client(&stack.kubeconfig_admin).await;
    let restricted = stack.kube_client(&stack.kubeconfig_restricted).await;

    let admin_deployments: Api<Deployment> = Api::namespaced(admin.clone(), NAMESPACE);
    let other = unique_name("other-");
    ensure_deployment(&admin_deployments, TASKMANAGERS).await;
    ensure_deployment(&admin_deployments, &other).await;

    // Allowed: read and patch the scale of the bound Deployment.
    let deployments: Api<Deployment> = Api::namespaced(restricted.clone(), NAMESPACE);
    let scale = deployments
        .get_scale(TASKMANAGERS)
        .await
        .expect("restricted identity reads the scale");
    let current = scale.spec.and_then(|s| s.replicas).unwrap_or(0);
    let wanted = if current == 3 { 4 } else { 3 };
    deployments
        .patch_scale(
            TASKMANAGERS,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": wanted}})),
        )
        .await
        .expect("restricted identity patches the scale");
    let seen = admin_deployments
        .get(TASKMANAGERS)
        .await
        .expect("admin reads the Deployment");
    assert_eq!(
        seen.spec.and_then(|s| s.replicas),
        Some(wanted),
        "the patch reached the Deployment"
    );

    // Denied: another Deployment's scale, the Deployment object itself, pods and secrets.
    assert_forbidden(
        "get scale of another Deployment",
        deployments.get_scale(&other).await,
    );
    assert_forbidden(
        "patch scale of another Deployment",
        deployments
            .patch_scale(
                &other,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": 5}})),
            )
            .await,
    );
    assert_forbidden(
        "get the Deployment object",
        deployments.get(TASKMANAGERS).await,
    );
    let pods: Api<Pod> = Api::namespaced(restricted.clone(), NAMESPACE);
    assert_forbidden("list pods", pods.list(&ListParams::default()).await);
    let secrets: Api<Secret> = Api::namespaced(restricted.clone(), NAMESPACE);
    assert_forbidden("list secrets", secrets.list(&ListParams::default()).await);
    assert_forbidden("get a secret", secrets.get("any").await);

    admin_deployments
        .delete(&other, &Default::default())
        .await
        .expect("admin deletes the other Deployment");
}

//! Kubernetes helpers on the real API server.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

/// The namespace and TaskManager Deployment the restricted identity may scale.
pub const NAMESPACE: &str = "flink";
/// The TaskManager Deployment's name.
pub const TASKMANAGERS: &str = "flink-taskmanager";

/// A client acting with the identity in `kubeconfig`.
pub async fn client(kubeconfig: &std::path::Path) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig)
        .unwrap_or_else(|e| panic!("read kubeconfig {}: {e}", kubeconfig.display()));
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("kubeconfig is usable");
    kube::Client::try_from(config).expect("build a Kubernetes client")
}

/// Runs `kubectl --kubeconfig KUBECONFIG ARGS...` with `stdin` on its standard input.
pub fn kubectl(
    kubectl: &std::path::Path,
    kubeconfig: &std::path::Path,
    args: &[&str],
    stdin: &str,
) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = std::process::Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", kubectl.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().expect("kubectl output")
}

/// A minimal Deployment (no controllers run on the test API server, so no pods appear).
pub fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "taskmanager", "image": "flink:1.16.3"}]}
            }
        }
    }))
    .expect("a valid Deployment")
}

/// Creates the Deployment as the administrator, or leaves an existing one in place.
pub async fn ensure_deployment(api: &Api<Deployment>, name: &str) {
    match api
        .create(&PostParams::default(), &deployment(name, 1))
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(e) => panic!("admin could not create Deployment {name}: {e}"),
    }
}

/// Sets the Deployment's replicas as the administrator.
pub async fn set_replicas(api: &Api<Deployment>, name: &str, replicas: i32) {
    api.patch_scale(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": replicas}})),
    )
    .await
    .expect("admin sets replicas");
}

/// Waits until the TaskManager Deployment's spec.replicas is `expected`; returns how long
/// that took.
pub async fn wait_for_replicas(
    api: &Api<Deployment>,
    expected: i32,
    timeout: std::time::Duration,
) -> std::time::Duration {
    let start = std::time::Instant::now();
    crate::eventually(
        &format!("{TASKMANAGERS} at {expected} replicas"),
        timeout,
        || async move {
            match replicas(api, TASKMANAGERS).await {
                n if n == expected => Ok(()),
                n => Err(format!("{n} replicas")),
            }
        },
    )
    .await;
    start.elapsed()
}

/// Asserts that `result` is the API server's 403 Forbidden.
pub fn assert_forbidden<T: std::fmt::Debug>(what: &str, result: Result<T, kube::Error>) {
    match result {
        Err(kube::Error::Api(status)) => assert!(
            status.is_forbidden(),
            "{what}: expected 403, got {status:?}"
        ),
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

/// The administrator's view of the TaskManager Deployment (created if missing, set to 1
/// replica) and of the Events of its namespace, on the stack's API server.
pub async fn taskmanagers_at_one(stack: &crate::Stack) -> (Api<Deployment>, Api<Event>) {
    let admin = stack.kube_client(&stack.kubeconfig_admin).await;
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), NAMESPACE);
    ensure_deployment(&deployments, TASKMANAGERS).await;
    set_replicas(&deployments, TASKMANAGERS, 1).await;
    (deployments, Api::namespaced(admin, NAMESPACE))
}

/// The Deployment's spec.replicas.
pub async fn replicas(api: &Api<Deployment>, name: &str) -> i32 {
    api.get(name)
        .await
        .expect("admin reads the Deployment")
        .spec
        .and_then(|s| s.replicas)
        .unwrap_or(0)
}

/// The reporting instances of the Events in `events`' namespace, one per Event (an autoscaler
/// names its replica's identity there).
pub async fn event_reporters(events: &Api<Event>) -> Vec<String> {
    all_events(events)
        .await
        .into_iter()
        .filter_map(|e| e.reporting_instance)
        .collect()
}

/// The Events in `events`' namespace that `instance` reported.
pub async fn events_reported_by(events: &Api<Event>, instance: &str) -> Vec<Event> {
    let mut reported = all_events(events).await;
    reported.retain(|e| e.reporting_instance.as_deref() == Some(instance));
    reported
}

async fn all_events(events: &Api<Event>) -> Vec<Event> {
    events
        .list(&ListParams::default())
        .await
        .expect("admin lists events")
        .items
}

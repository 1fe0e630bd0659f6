//! Acceptance (b): Prometheus stops mid-run. The binding holds (nothing is scaled down although
//! the stream merged meanwhile), the source-error metric rises with reason `unreachable`,
//! `plan` still answers (exit 0, naming the failed source), and scaling resumes when
//! Prometheus returns.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use support::kubernetes::{
    ensure_deployment, replicas, set_replicas, wait_for_replicas, NAMESPACE, TASKMANAGERS,
};
use support::pravega::{controller, create_stream, scale_to};
use support::{unique_name, AutoscalerProcess, Component, Stack};

/// Brings Prometheus back even if the test fails half-way, for the tests that run after it.
struct PrometheusBack<'a>(&'a Stack);

impl Drop for PrometheusBack<'_> {
    fn drop(&mut self) {
        let _ = Command::new(&self.0.stack_script)
            .args(["up", "prometheus"])
            .env("SEGMENT_AUTOSCALER_RUN_DIR", &self.0.run_dir)
            .status();
    }
}

/// A stopped Prometheus refuses connections: the failures are counted as `unreachable`.
const ERRORS: &str =
    "segment_autoscaler_source_errors_total{source=\"prometheus\",reason=\"unreachable\"}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_while_prometheus_is_down_and_resumes_after() {
    let stack = Stack::require(&[
        Component::Pravega,
        Component::Prometheus,
        Component::Kubernetes,
    ])
    .await;
    let admin = stack.kube_client(&stack.kubeconfig_admin).await;
    let deployments: Api<Deployment> = Api::namespaced(admin, NAMESPACE);
    ensure_deployment(&deployments, TASKMANAGERS).await;
    set_replicas(&deployments, TASKMANAGERS, 1).await;
    let controller = controller(&stack.pravega_controller);
    let scope = unique_name("outage");
    let stream = create_stream(&controller, &scope, "load").await;
    scale_to(&controller, &stream, 2).await;

    let config = format!(
        r#"
interval: 500ms
prometheus: {{url: "{prometheus}", timeout: 1s}}
kubernetes: {{kubeconfig: "{kubeconfig}"}}
bindings:
  - name: outage
    streams: [{scope}/load]
    source: prometheus
    max_replicas: 8
    scale_down_stabilization: 2s
    target: {{kind: deployment, namespace: {NAMESPACE}, name: {TASKMANAGERS}}}
"#,
        prometheus = stack.prometheus_url,
        kubeconfig = stack.kubeconfig_restricted.display(),
    );
    let autoscaler = AutoscalerProcess::start("outage", &config);
    // Replicas follow the 2 segments.
    wait_for_replicas(&deployments, 2, Duration::from_secs(30)).await;
    let errors_before = autoscaler.metric(ERRORS).await.unwrap_or(0.0);

    // Prometheus goes away, then the stream merges: a naive autoscaler would scale down.
    let _restore = PrometheusBack(&stack);
    stack.stack_command(&["down", "prometheus"]);
    scale_to(&controller, &stream, 1).await;
    let hold_until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < hold_until {
        assert_eq!(
            replicas(&deployments, TASKMANAGERS).await,
            2,
            "nothing is scaled while the source is down"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let errors_during = autoscaler
        .metric(ERRORS)
        .await
        .expect("the source-error counter is exported");
    assert!(
        errors_during >= errors_before + 5.0,
        "source errors rise: {errors_before} -> {errors_during}"
    );
    let log = autoscaler.log_text();
    assert!(
        log.contains("no series") || log.contains("source unavailable"),
        "the hold is logged with its reason:\n{log}"
    );

    // `plan` answers too, exit status 0, the binding holding with the failed source named.
    let config_path = autoscaler.log.with_extension("yaml");
    let plan = Command::new(env!("CARGO_BIN_EXE_segment-autoscaler"))
        .args([
            "plan",
            "--output",
            "json",
            "--log-format",
            "json",
            "--config",
        ])
        .arg(&config_path)
        .output()
        .expect("run plan");
    assert!(
        plan.status.success(),
        "plan exits 0 with a source down: {plan:?}"
    );
    let records: serde_json::Value =
        serde_json::from_slice(&plan.stdout).expect("plan prints JSON");
    let logs = String::from_utf8_lossy(&plan.stderr);
    assert!(!logs.trim().is_empty(), "plan logs its decision");
    for line in logs.lines() {
        let entry: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert!(
            entry["level"].is_string() && entry["timestamp"].is_string(),
            "{line}"
        );
    }
    let record = &records[0];
    assert_eq!(record["action"], "hold");
    assert_eq!(record["segments"], serde_json::Value::Null);
    assert_eq!(record["current_replicas"], 2);
    assert!(
        record["reason"]
            .as_str()
            .unwrap()
            .contains("(prometheus): source unavailable"),
        "{record}"
    );

    // Prometheus returns: the merge is seen and, after stabilization, applied.
    stack.stack_command(&["up", "prometheus"]);
    // Replicas follow the merge once Prometheus is back.
    wait_for_replicas(&deployments, 1, Duration::from_secs(60)).await;
}

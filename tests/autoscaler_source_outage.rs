//! Acceptance (b): Prometheus stops mid-run. The binding holds (nothing is scaled down although
//! the stream merged meanwhile), the source-error metric rises with reason `unreachable`,
//! `plan` still answers (exit 0, naming the failed source), and scaling resumes when
//! Prometheus returns. And `source: auto` (issue 14): with the controller cut off, Prometheus
//! serves; with both cut off, the binding holds.
//!
//! Both tests use the one TaskManager Deployment: they run one at a time.

use test_support as support;

use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use pravega_client_shared::ScopedStream;
use pravega_controller_client::ControllerClientImpl;
use support::config::{deployment, AutoscalerConfig};
use support::kubernetes::{replicas, taskmanagers_at_one, wait_for_replicas};
use support::kubernetes::{NAMESPACE, TASKMANAGERS};
use support::pravega::{controller, create_stream, scale_to};
use support::proxy::{Mode, Proxy};
use support::{unique_name, AutoscalerProcess, Component, Stack};

/// One test at a time: they share the Deployment, and one stops Prometheus.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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

/// The stack both tests need, the TaskManager Deployment at 1 replica, and a new stream
/// `scope/load` in a scope named after `prefix`.
async fn setup(
    prefix: &str,
) -> (
    Stack,
    Api<Deployment>,
    ControllerClientImpl,
    String,
    ScopedStream,
) {
    let stack = Stack::require(&[
        Component::Pravega,
        Component::Prometheus,
        Component::Kubernetes,
    ])
    .await;
    let (deployments, _) = taskmanagers_at_one(&stack).await;
    let controller = controller(&stack.pravega_controller);
    let scope = unique_name(prefix);
    let stream = create_stream(&controller, &scope, "load").await;
    (stack, deployments, controller, scope, stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_while_prometheus_is_down_and_resumes_after() {
    let _serial = SERIAL.lock().await;
    let (stack, deployments, controller, scope, stream) = setup("outage").await;
    scale_to(&controller, &stream, 2).await;

    let load = format!("{scope}/load");
    let config = AutoscalerConfig::binding("outage", &[&load], deployment(NAMESPACE, TASKMANAGERS))
        .section(format!(
            "prometheus: {{url: \"{}\", timeout: 1s}}",
            stack.prometheus_url
        ))
        .kubernetes(&stack.kubeconfig_restricted, None)
        .source("prometheus");
    let autoscaler = AutoscalerProcess::start("outage", &config.yaml());
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
    support::assert_json_logs(&logs);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_uses_prometheus_when_the_controller_is_cut_off_and_holds_without_both() {
    let _serial = SERIAL.lock().await;
    let (stack, deployments, controller, scope, stream) = setup("auto").await;
    // The autoscaler reaches both sources through proxies: the test cuts them off from it,
    // while Prometheus goes on scraping the real controller.
    let pravega = Proxy::start(stack.pravega_controller.trim_start_matches("tcp://")).await;
    let prometheus = Proxy::start(stack.prometheus_url.trim_start_matches("http://")).await;
    let load = format!("{scope}/load");
    let config = AutoscalerConfig::binding("auto", &[&load], deployment(NAMESPACE, TASKMANAGERS))
        .section(format!(
            "pravega: {{controller: \"tcp://{}\", timeout: 1s}}",
            pravega.address
        ))
        .section(format!(
            "prometheus: {{url: \"http://{}\", timeout: 1s}}",
            prometheus.address
        ))
        .kubernetes(&stack.kubeconfig_restricted, None)
        .source("auto")
        .stabilization(None);
    let autoscaler = AutoscalerProcess::start("auto", &config.yaml());
    scale_to(&controller, &stream, 2).await;
    wait_for_replicas(&deployments, 2, Duration::from_secs(30)).await;

    // The controller is cut off: the next change is seen through Prometheus.
    pravega.set(Mode::Cut);
    scale_to(&controller, &stream, 3).await;
    wait_for_replicas(&deployments, 3, Duration::from_secs(30)).await;
    let controller_errors = "segment_autoscaler_source_errors_total{source=\"controller\"";
    let errors = autoscaler.metric_sum(controller_errors).await;
    assert!(
        errors >= 1.0,
        "the controller's failures are counted: {errors}"
    );

    // Both cut off: the next change is not followed.
    prometheus.set(Mode::Cut);
    scale_to(&controller, &stream, 4).await;
    let hold_until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < hold_until {
        assert_eq!(
            replicas(&deployments, TASKMANAGERS).await,
            3,
            "nothing is scaled with both sources cut off"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let log = autoscaler.log_text();
    assert!(
        log.contains("(controller): source unavailable")
            || log.contains("(prometheus): source unavailable"),
        "the hold names the failed sources:\n{log}"
    );

    // The controller is back: followed again.
    pravega.set(Mode::Forward);
    wait_for_replicas(&deployments, 4, Duration::from_secs(30)).await;
}

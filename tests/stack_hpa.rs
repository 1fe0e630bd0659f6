//! The reference pipeline `benches/hpa-reaction` measures against (`deploy/local/stack up hpa`):
//! on a Prometheus and kube-apiserver of its own (ports +400, so the shared test stack keeps no
//! controllers) scraping the shared stack's Pravega, prometheus-adapter serves each stream's
//! segment count as an External metric through the API server's aggregation layer, and
//! kube-controller-manager's HPA, with the reference demo's spec, scales a Deployment to it.

use test_support as support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::{eventually, pravega, prometheus_values, repo_root, unique_name, Component, Stack};

/// Ports of this test's own stack: every default shifted by this.
const PORT_OFFSET: u16 = 400;

/// `deploy/local/stack` on this test's own stack; its components are stopped when dropped.
struct OwnStack {
    run_dir: PathBuf,
    pravega_rest_port: String,
    /// What `stack env` printed (paths and URLs; known before anything starts).
    env: Vec<(String, String)>,
}

impl OwnStack {
    fn command(&self, args: &[&str]) -> String {
        let output = Command::new(repo_root().join("deploy/local/stack"))
            .args(args)
            .env("STACK_PORT_OFFSET", PORT_OFFSET.to_string())
            .env("SEGMENT_AUTOSCALER_RUN_DIR", &self.run_dir)
            .env("PRAVEGA_CONTROLLER_REST_PORT", &self.pravega_rest_port)
            // Kubernetes' 5 min scale-down window would outlast the test.
            .env("HPA_SYNC_PERIOD", "1s")
            .env("HPA_DOWNSCALE_STABILIZATION", "0s")
            .output()
            .expect("run deploy/local/stack");
        assert!(
            output.status.success(),
            "deploy/local/stack {args:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn new(run_dir: PathBuf, pravega_rest_port: String) -> OwnStack {
        let mut stack = OwnStack {
            run_dir,
            pravega_rest_port,
            env: Vec::new(),
        };
        stack.env = stack
            .command(&["env"])
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        stack
    }

    /// The value of `NAME` in `stack env`.
    fn env(&self, name: &str) -> &str {
        self.env
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.as_str())
            .unwrap_or_else(|| panic!("stack env prints no {name}"))
    }

    fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        let output = support::kubernetes::kubectl(
            Path::new(self.env("STACK_KUBECTL")),
            Path::new(self.env("KUBECONFIG")),
            args,
            stdin.unwrap_or_default(),
        );
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    fn log_tail(&self, name: &str) -> String {
        let path = self.run_dir.join("hpa").join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for OwnStack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for log in ["prometheus-adapter.log", "kube-controller-manager.log"] {
                eprintln!("--- {log} ---\n{}", self.log_tail(log));
            }
        }
        let _ = Command::new(repo_root().join("deploy/local/stack"))
            .args(["down", "hpa", "kubernetes", "prometheus"])
            .env("STACK_PORT_OFFSET", PORT_OFFSET.to_string())
            .env("SEGMENT_AUTOSCALER_RUN_DIR", &self.run_dir)
            .status();
    }
}

/// The External metric values the aggregation layer serves for one stream.
fn external_values(stack: &OwnStack, scope: &str, stream: &str) -> Result<Vec<String>, String> {
    let path = format!(
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/flink/pravega_controller_segments_count\
         ?labelSelector=scope%3D{scope},stream%3D{stream}"
    );
    let text = stack.kubectl(&["get", "--raw", &path], None)?;
    let list: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    Ok(list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| item["value"].as_str().unwrap_or_default().to_string())
        .collect())
}

fn deployment_replicas(stack: &OwnStack, name: &str) -> Result<String, String> {
    stack.kubectl(
        &[
            "-n",
            "flink",
            "get",
            "deployment",
            name,
            "-o",
            "jsonpath={.spec.replicas}",
        ],
        None,
    )
}

#[tokio::test]
async fn reference_hpa_follows_one_streams_segments() {
    let shared = Stack::require(&[Component::Pravega]).await;
    let controller = pravega::controller(&shared.pravega_controller);
    let scope = unique_name("hpa");
    let followed = pravega::create_stream(&controller, &scope, "followed").await;
    let other = pravega::create_stream(&controller, &scope, "other").await;
    pravega::scale_to(&controller, &followed, 3).await;
    pravega::scale_to(&controller, &other, 2).await;

    let stack = OwnStack::new(
        repo_root().join("target/hpa-stack"),
        shared
            .pravega_rest_url
            .rsplit(':')
            .next()
            .unwrap()
            .to_string(),
    );
    stack.command(&["install", "hpa"]);
    stack.command(&["up", "prometheus", "kubernetes"]);
    // The adapter lists series when it starts (then every 10 min): start it once they exist.
    let prometheus = stack.env("PROMETHEUS_URL").to_string();
    for stream in ["followed", "other"] {
        eventually(
            &format!("Prometheus scrapes {scope}/{stream}"),
            Duration::from_secs(60),
            || async {
                let query = format!(
                    "pravega_controller_segments_count{{scope=\"{scope}\",stream=\"{stream}\"}}"
                );
                match prometheus_values(&prometheus, &query).await?.as_slice() {
                    [] => Err("no series yet".to_string()),
                    _ => Ok(()),
                }
            },
        )
        .await;
    }
    stack.command(&["up", "hpa"]);
    assert!(stack.command(&["status", "hpa"]).contains(" up "));

    // One value per stream: the HPA's selector reaches the query (the reference rule summed
    // every stream).
    let values = eventually(
        "the External metric for the followed stream",
        Duration::from_secs(60),
        || async { external_values(&stack, &scope, "followed") },
    )
    .await;
    assert_eq!(values, ["3"], "one value, the followed stream's 3 segments");
    assert_eq!(
        external_values(&stack, &scope, "other").unwrap(),
        ["2"],
        "the other stream has its own value"
    );

    let manifests = format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: taskmanagers, namespace: flink}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: taskmanagers}}}}
  template:
    metadata: {{labels: {{app: taskmanagers}}}}
    spec: {{containers: [{{name: taskmanager, image: "flink:1.16.3"}}]}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: taskmanagers, namespace: flink}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: taskmanagers}}
  minReplicas: 1
  maxReplicas: 32
  metrics:
    - type: External
      external:
        metric:
          name: pravega_controller_segments_count
          selector: {{matchLabels: {{scope: {scope}, stream: followed}}}}
        target: {{type: AverageValue, averageValue: "1"}}
"#
    );
    stack
        .kubectl(&["apply", "-f", "-"], Some(&manifests))
        .expect("apply the Deployment and its HPA");
    let wait_for = |expected: &'static str| {
        let stack = &stack;
        async move {
            eventually(
                &format!("the HPA scales the Deployment to {expected}"),
                Duration::from_secs(120),
                || async move {
                    match deployment_replicas(stack, "taskmanagers")? {
                        n if n == expected => Ok(()),
                        n => Err(format!("{n} replicas")),
                    }
                },
            )
            .await
        }
    };
    wait_for("3").await;
    pravega::scale_to(&controller, &followed, 2).await;
    wait_for("2").await;
    let status = stack
        .kubectl(
            &[
                "-n",
                "flink",
                "get",
                "hpa",
                "taskmanagers",
                "-o",
                "jsonpath={.status.currentMetrics}",
            ],
            None,
        )
        .unwrap();
    assert!(
        status.contains("pravega_controller_segments_count"),
        "the HPA reports the External metric: {status}"
    );
}

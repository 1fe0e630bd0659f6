//! SegmentScaler resources on the real API server, with the autoscaler's restricted identity
//! (the Role of deploy/k8s/rbac) and the real Pravega controller: the CRD refuses bad specs
//! naming the field; a SegmentScaler applied, edited and deleted takes effect while the
//! autoscaler runs; its status and `kubectl get` show the live figures; a second SegmentScaler
//! on the same target is refused as a `Conflict` and nothing fights; one whose Flink URL never
//! answers is not Ready and holds.

use test_support as support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use segment_autoscaler::segment_scaler::{SegmentScaler, SegmentScalerStatus};
use serde_json::json;
use support::kubernetes::{
    ensure_deployment, kubectl, set_replicas, wait_for_replicas, NAMESPACE, TASKMANAGERS,
};
use support::pravega::{controller, create_stream, scale_to};
use support::{eventually, repo_root, unique_name, AutoscalerProcess, Component, Stack};

const CRD_DIR: &str = "deploy/helm/segment-autoscaler/crds";

/// A SegmentScaler of `streams` on the TaskManager Deployment, as YAML for kubectl.
fn manifest(name: &str, streams: &str, extra: &str) -> String {
    format!(
        "apiVersion: segment-autoscaler.io/v1alpha1
kind: SegmentScaler
metadata: {{name: {name}, namespace: {NAMESPACE}}}
spec:
  streams: [{streams}]
  source: controller
  maxReplicas: 8
  scaleDownStabilization: 2s
  target: {{apiVersion: apps/v1, kind: Deployment, name: {TASKMANAGERS}}}
{extra}"
    )
}

fn apply(stack: &Stack, yaml: &str) -> std::process::Output {
    kubectl(
        &stack.kubectl,
        &stack.kubeconfig_admin,
        &["apply", "--server-side", "--field-manager=test", "-f", "-"],
        yaml,
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn status_of(api: &Api<SegmentScaler>, name: &str) -> Result<SegmentScalerStatus, String> {
    api.get(name)
        .await
        .map_err(|e| e.to_string())?
        .status
        .ok_or_else(|| "no status yet".to_string())
}

fn condition<'a>(status: &'a SegmentScalerStatus, type_: &str) -> Option<(&'a str, &'a str)> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.as_str(), c.reason.as_str()))
}

/// Waits until the SegmentScaler `name` shows every `(type, status, reason)` condition; its
/// status then.
async fn wait_for_conditions(
    api: &Api<SegmentScaler>,
    name: &str,
    expected: &[(&str, &str, &str)],
) -> SegmentScalerStatus {
    eventually(
        &format!("{name} shows {expected:?}"),
        Duration::from_secs(20),
        || async {
            let status = status_of(api, name).await?;
            let shown = expected
                .iter()
                .all(|&(type_, want, reason)| condition(&status, type_) == Some((want, reason)));
            if shown {
                Ok(status)
            } else {
                Err(format!("{status:?}"))
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_scalers_are_followed_while_the_autoscaler_runs() {
    let stack = Stack::require(&[Component::Pravega, Component::Kubernetes]).await;
    // What users apply first: the CRD (the stack applied it too; applying is idempotent).
    let output = kubectl(
        &stack.kubectl,
        &stack.kubeconfig_admin,
        &[
            "apply",
            "--server-side",
            "-f",
            repo_root().join(CRD_DIR).to_str().unwrap(),
        ],
        "",
    );
    assert!(
        output.status.success(),
        "apply the CRD: {}",
        text(&output.stderr)
    );
    let output = kubectl(
        &stack.kubectl,
        &stack.kubeconfig_admin,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/segmentscalers.segment-autoscaler.io",
        ],
        "",
    );
    assert!(
        output.status.success(),
        "CRD established: {}",
        text(&output.stderr)
    );

    let admin = stack.kube_client(&stack.kubeconfig_admin).await;
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), NAMESPACE);
    let scalers: Api<SegmentScaler> = Api::namespaced(admin.clone(), NAMESPACE);
    ensure_deployment(&deployments, TASKMANAGERS).await;
    set_replicas(&deployments, TASKMANAGERS, 1).await;
    for leftover in scalers.list(&Default::default()).await.unwrap().items {
        let name = leftover.metadata.name.unwrap();
        scalers.delete(&name, &DeleteParams::default()).await.ok();
    }

    // Bad specs are refused by the API server, naming the field.
    let scope = unique_name("scaler");
    let load = format!("{scope}/load");
    for (extra, field, message) in [
        (
            "  minReplicas: 9\n",
            "spec.maxReplicas",
            "maxReplicas must not be below minReplicas",
        ),
        (
            "  flink: {restUrl: 'http://jm:8081', alignment: {mode: reactive, headroom: 2}}\n",
            "spec.flink.alignment.headroom",
            "headroom applies only to mode prewarmed",
        ),
        (
            "  scaleDownStabilization: 5 fortnights\n",
            "spec.scaleDownStabilization",
            "should match",
        ),
        ("  source: sometimes\n", "spec.source", "Unsupported value"),
    ] {
        let mut yaml = manifest("invalid", &load, "");
        yaml = yaml.replace("  scaleDownStabilization: 2s\n", "");
        yaml.push_str(extra);
        let output = apply(&stack, &yaml);
        let stderr = text(&output.stderr);
        assert!(!output.status.success(), "{extra} was accepted");
        assert!(
            stderr.contains(field) && stderr.contains(message),
            "{extra}: {stderr}"
        );
    }

    let pravega = controller(&stack.pravega_controller);
    let stream = create_stream(&pravega, &scope, "load").await;
    let config = format!(
        "interval: 1s
pravega: {{controller: {}}}
kubernetes: {{kubeconfig: {}}}
segment_scalers: {{namespaces: [{NAMESPACE}]}}
",
        stack.pravega_controller,
        stack.kubeconfig_restricted.display()
    );
    let autoscaler = AutoscalerProcess::start("segment-scalers", &config);

    // Applied while it runs: followed within a few intervals.
    let output = apply(&stack, &manifest("reader", &load, ""));
    assert!(output.status.success(), "{}", text(&output.stderr));
    scale_to(&pravega, &stream, 3).await;
    wait_for_replicas(&deployments, 3, Duration::from_secs(30)).await;
    let status = eventually(
        "the status shows 3 segments and 3 TaskManagers",
        Duration::from_secs(20),
        || async {
            let status = status_of(&scalers, "reader").await?;
            match (
                status.segments,
                status.current_task_managers,
                condition(&status, "Ready"),
            ) {
                (Some(3), Some(3), Some(("True", "Reconciled"))) => Ok(status),
                _ => Err(format!("{status:?}")),
            }
        },
    )
    .await;
    assert_eq!(status.desired_task_managers, Some(3));
    assert_eq!(status.observed_generation, Some(1));
    assert!(status.last_scale_time.is_some(), "{status:?}");
    assert_eq!(condition(&status, "Holding"), Some(("False", "Aligned")));

    // kubectl get prints the live figures in the CRD's columns (no Flink bound: the
    // parallelism and aligned cells are empty).
    let output = kubectl(
        &stack.kubectl,
        &stack.kubeconfig_admin,
        &["-n", NAMESPACE, "get", "segmentscalers", "reader"],
        "",
    );
    let printed = text(&output.stdout);
    let lines: Vec<Vec<&str>> = printed
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        [
            "NAME",
            "STREAMS",
            "SEGMENTS",
            "REPLICAS",
            "PARALLELISM",
            "ALIGNED",
            "AGE"
        ],
        "{printed}"
    );
    let streams = format!("[\"{load}\"]");
    assert_eq!(
        lines[1][..4],
        ["reader", streams.as_str(), "3", "3"],
        "{printed}"
    );
    assert_eq!(
        lines[1].len(),
        5,
        "empty parallelism and aligned, then the age: {printed}"
    );

    // `plan` lists the SegmentScalers before its one pass.
    let records = support::autoscaler::plan_records("segment-scalers-plan", &config);
    let reader = records
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["binding"] == format!("{NAMESPACE}/reader"))
        .unwrap_or_else(|| panic!("no record of the SegmentScaler: {records}"));
    assert_eq!(reader["segments"], 3, "{reader}");

    // Edited while it runs: a lower max takes effect without a restart.
    scalers
        .patch(
            "reader",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"maxReplicas": 2}})),
        )
        .await
        .unwrap();
    wait_for_replicas(&deployments, 2, Duration::from_secs(30)).await;
    eventually(
        "the status shows generation 2",
        Duration::from_secs(20),
        || async {
            let status = status_of(&scalers, "reader").await?;
            match status.observed_generation {
                Some(2) if status.desired_task_managers == Some(2) => Ok(()),
                _ => Err(format!("{status:?}")),
            }
        },
    )
    .await;

    // A second SegmentScaler on the same Deployment: refused, and it writes nothing.
    let output = apply(&stack, &manifest("rival", &load, "  minReplicas: 5\n"));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let rival = wait_for_conditions(&scalers, "rival", &[("Ready", "False", "Conflict")]).await;
    assert_eq!(rival.segments, None);
    tokio::time::sleep(Duration::from_secs(4)).await;
    wait_for_replicas(&deployments, 2, Duration::from_secs(1)).await;

    // A target the autoscaler cannot read: not Ready, with the reason.
    let output = apply(
        &stack,
        &manifest("elsewhere", &load, "").replace(
            &format!("name: {TASKMANAGERS}}}"),
            "name: no-such-deployment}",
        ),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    wait_for_conditions(
        &scalers,
        "elsewhere",
        &[("Ready", "False", "TargetUnavailable")],
    )
    .await;

    // Deleted: never written for again, and its series leave /metrics.
    for name in ["rival", "elsewhere", "reader"] {
        scalers
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    eventually(
        "the deleted binding's series are gone",
        Duration::from_secs(20),
        || async {
            match autoscaler
                .metric(&format!(
                    "segment_autoscaler_desired_replicas{{binding=\"{NAMESPACE}/reader\"}}"
                ))
                .await
            {
                None => Ok(()),
                Some(v) => Err(format!("still exported: {v}")),
            }
        },
    )
    .await;
    scale_to(&pravega, &stream, 1).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    wait_for_replicas(&deployments, 2, Duration::from_secs(1)).await;
    let log = autoscaler.log_text();
    assert!(log.contains("binding withdrawn"), "{log}");

    // A Flink URL that never answers (nothing listens on port 9): not Ready, and it holds
    // rather than scale the TaskManagers for a job it cannot find (2 -> 1 here otherwise).
    let blind = manifest("blind", &load, "  flink: {restUrl: 'http://127.0.0.1:9'}\n");
    let output = apply(&stack, &blind);
    assert!(output.status.success(), "{}", text(&output.stderr));
    wait_for_conditions(
        &scalers,
        "blind",
        &[
            ("Ready", "False", "FlinkUnavailable"),
            ("Holding", "True", "JobUnconfirmed"),
        ],
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    wait_for_replicas(&deployments, 2, Duration::from_secs(1)).await;
    scalers
        .delete("blind", &DeleteParams::default())
        .await
        .unwrap();
}

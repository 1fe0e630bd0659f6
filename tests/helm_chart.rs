//! The chart `deploy/helm/segment-autoscaler` with the stack's real helm: it lints; the
//! autoscaler's manifests of `deploy/k8s` are its current rendering (`deploy/helm/render-k8s`);
//! its configuration is one the autoscaler accepts; per-namespace and cluster-wide RBAC grant
//! what the values allow and nothing else. (Installed on the real cluster:
//! `tests/cluster_helm.rs`.)

use test_support as support;

use std::process::Command;

use segment_autoscaler::config::Config;
use serde_json::Value;
use support::{repo_root, stdout_of, Component, Stack};

const CHART: &str = "deploy/helm/segment-autoscaler";

/// `helm template` of the chart with `args`, as one JSON value per object.
fn template(stack: &Stack, args: &[&str]) -> Vec<Value> {
    let text = stdout_of(
        Command::new(&stack.helm)
            .args(["template", "segment-autoscaler"])
            .arg(repo_root().join(CHART))
            .args(["--namespace", "apps"])
            .args(args),
        "helm template",
    );
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("a YAML object"))
        .filter(|o: &Value| !o.is_null())
        .collect()
}

fn kinds(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .map(|o| {
            format!(
                "{} {}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

fn config(objects: &[Value]) -> Config {
    let text = objects
        .iter()
        .find(|o| o["kind"] == "ConfigMap")
        .expect("the ConfigMap")["data"]["config.yaml"]
        .as_str()
        .unwrap()
        .to_string();
    Config::parse(&text).unwrap_or_else(|e| panic!("the autoscaler refuses {text}: {e}"))
}

#[tokio::test]
async fn the_chart_lints_and_deploy_k8s_is_its_current_rendering() {
    let stack = Stack::require(&[Component::Kubernetes]).await;
    let lint = stdout_of(
        Command::new(&stack.helm)
            .args(["lint", "--strict"])
            .arg(repo_root().join(CHART)),
        "helm lint",
    );
    assert!(lint.contains("0 chart(s) failed"), "{lint}");

    let out = repo_root().join("target/helm-render");
    std::fs::remove_dir_all(&out).ok();
    stdout_of(
        Command::new(repo_root().join("deploy/helm/render-k8s"))
            .arg(&out)
            .env("STACK_HELM", &stack.helm),
        "deploy/helm/render-k8s",
    );
    for file in [
        "deploy/k8s/autoscaler.yaml",
        "deploy/k8s/rbac/autoscaler-rbac.yaml",
        "deploy/k8s/secured/autoscaler-config.yaml",
    ] {
        let committed = std::fs::read_to_string(repo_root().join(file)).unwrap();
        let rendered = std::fs::read_to_string(out.join(file)).unwrap();
        assert!(
            committed == rendered,
            "{file} is not the chart's rendering: run deploy/helm/render-k8s"
        );
    }
}

#[tokio::test]
async fn the_defaults_watch_the_release_namespace_with_a_role_there() {
    let stack = Stack::require(&[Component::Kubernetes]).await;
    let objects = template(&stack, &[]);
    assert_eq!(
        kinds(&objects),
        [
            "PodDisruptionBudget segment-autoscaler",
            "ServiceAccount segment-autoscaler",
            "ConfigMap segment-autoscaler",
            "Role segment-autoscaler",
            "Role segment-autoscaler-targets",
            "RoleBinding segment-autoscaler",
            "RoleBinding segment-autoscaler-targets",
            "Service segment-autoscaler",
            "Deployment segment-autoscaler",
            "Lease segment-autoscaler",
        ]
    );
    let config = config(&objects);
    assert_eq!(config.segment_scalers.unwrap().namespaces, ["apps"]);
    assert_eq!(config.leader_election.unwrap().namespace, "apps");
    let deployment = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
    assert_eq!(deployment["spec"]["replicas"], 2);
    let template = &deployment["spec"]["template"];
    assert!(template["metadata"]["annotations"]["checksum/config"].is_string());
    assert_eq!(
        template["spec"]["containers"][0]["image"], "segment-autoscaler:0.1.0",
        "the chart's appVersion"
    );
}

#[tokio::test]
async fn rbac_follows_the_watched_namespaces_and_the_allowed_kinds() {
    let stack = Stack::require(&[Component::Kubernetes]).await;
    let objects = template(
        &stack,
        &[
            "--set",
            "segmentScalers.namespaces={team-a,team-b}",
            "--set",
            "rbac.scaleTargets[0].apiGroup=flink.apache.org",
            "--set",
            "rbac.scaleTargets[0].resource=flinkdeployments",
        ],
    );
    let roles: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == "Role" && o["metadata"]["name"] == "segment-autoscaler-targets")
        .collect();
    let namespaces: Vec<&str> = roles
        .iter()
        .map(|r| r["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(namespaces, ["team-a", "team-b"]);
    let resources: Vec<String> = roles[0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rule| {
            let groups = rule["apiGroups"].as_array().unwrap().clone();
            rule["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |r| format!("{}/{}", groups[0].as_str().unwrap(), r.as_str().unwrap()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        resources,
        [
            "segment-autoscaler.io/segmentscalers",
            "segment-autoscaler.io/segmentscalers/status",
            "flink.apache.org/flinkdeployments/scale",
        ]
    );
    assert_eq!(
        config(&objects).segment_scalers.unwrap().namespaces,
        ["team-a", "team-b"]
    );

    let objects = template(&stack, &["--set", "rbac.clusterWide=true"]);
    let kinds = kinds(&objects);
    assert!(
        kinds.contains(&"ClusterRole segment-autoscaler-targets".to_string()),
        "{kinds:?}"
    );
    assert!(
        !kinds.contains(&"Role segment-autoscaler-targets".to_string()),
        "{kinds:?}"
    );
    assert!(
        config(&objects)
            .segment_scalers
            .unwrap()
            .namespaces
            .is_empty(),
        "cluster wide: every namespace"
    );
}

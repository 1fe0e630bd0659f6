//! The Kubernetes demo stack (`deploy/k8s`) against the real API server: the kustomization
//! renders and the API server accepts every object (server-side dry run); the autoscaler's
//! RBAC, applied for real, allows exactly what it needs; the component `deploy/k8s/prewarmed`
//! changes only the scheduler and the SegmentScaler's alignment mode; the component `deploy/k8s/secured` is
//! accepted and mounts every file its clients are told to read. (The dashboards' PromQL is checked in
//! `demo-report/tests/dashboards.rs`.)

use test_support as support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod, Secret};
use k8s_openapi::api::events;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use segment_autoscaler::actuate::ScaleResource;
use segment_autoscaler::actuate::{KubernetesScaleTarget, ScaleTarget};
use segment_autoscaler::config::Config;
use segment_autoscaler::segment_scaler::SegmentScaler;
use serde_json::{json, Value};
use support::kubernetes::{assert_forbidden, deployment, kubectl};
use support::{repo_root, unique_name, Component, Stack};

const DEMO_NAMESPACE: &str = "segment-autoscaler-demo";

/// `kubectl kustomize deploy/k8s`, as one JSON value per object.
fn render(stack: &Stack) -> Vec<Value> {
    render_dir(stack, &repo_root().join("deploy/k8s"))
}

/// `kubectl kustomize DIR`, as one JSON value per object.
fn render_dir(stack: &Stack, dir: &Path) -> Vec<Value> {
    let output = Command::new(&stack.kubectl)
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("run kubectl kustomize");
    assert!(
        output.status.success(),
        "kustomize failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("a YAML object"))
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("rendered stack has no {kind} {name}"))
}

/// `kubectl apply ARGS -f -` with `objects` on stdin, as the administrator.
fn kubectl_apply(stack: &Stack, args: &[&str], objects: &[&Value]) -> std::process::Output {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    let args: Vec<&str> = ["apply"]
        .into_iter()
        .chain(args.iter().copied())
        .chain(["-f", "-"])
        .collect();
    kubectl(
        &stack.kubectl,
        &stack.kubeconfig_admin,
        &args,
        &list.to_string(),
    )
}

async fn ensure_namespace(stack: &Stack) {
    let namespaces: Api<Namespace> = Api::all(stack.kube_client(&stack.kubeconfig_admin).await);
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": DEMO_NAMESPACE}})).unwrap();
    match namespaces.create(&PostParams::default(), &namespace).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("create namespace {DEMO_NAMESPACE}: {e}"),
    }
}

/// The API server accepts every object (a server-side dry run in the demo's namespace).
async fn assert_accepted(stack: &Stack, objects: &[Value]) {
    // Namespaced objects can only be dry-run into a namespace that exists.
    ensure_namespace(stack).await;
    let all: Vec<&Value> = objects.iter().collect();
    // Field ownership is not validity: objects another test owns parts of still count.
    let output = kubectl_apply(
        stack,
        &[
            "--server-side",
            "--dry-run=server",
            "--force-conflicts",
            "--field-manager=manifest-test",
        ],
        &all,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "server-side dry run refused:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.matches("(server dry run)").count(),
        objects.len(),
        "every object accepted:\n{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stack_renders_and_the_api_server_accepts_every_object() {
    let stack = Stack::require(&[Component::Kubernetes]).await;
    let objects = render(&stack);
    for (kind, name) in [
        ("Deployment", "flink-taskmanager"),
        ("Deployment", "flink-jobmanager"),
        ("Deployment", "pravega"),
        ("Deployment", "prometheus"),
        ("Deployment", "grafana"),
        ("Deployment", "data-generator"),
        ("Deployment", "segment-autoscaler"),
        ("ConfigMap", "segment-autoscaler-dashboards"),
    ] {
        assert_eq!(
            find(&objects, kind, name)["metadata"]["namespace"],
            DEMO_NAMESPACE,
            "{kind} {name}"
        );
    }

    assert_accepted(&stack, &objects).await;

    // A lost JobManager pod is replaced at once, however often (a batch Job backs off and
    // gives up), and never by a second JobManager beside the first.
    let jobmanager = find(&objects, "Deployment", "flink-jobmanager");
    assert_eq!(jobmanager["spec"]["replicas"], 1);
    assert_eq!(jobmanager["spec"]["strategy"]["type"], "Recreate");
    assert!(
        !objects.iter().any(|o| o["kind"] == "Job"),
        "no batch Job in the stack"
    );

    // A Flink JVM slow to start on a busy node is waited for, not killed by its liveness probe
    // (each restart costs the node another JVM start): the liveness probe waits for a startup
    // probe that allows minutes.
    for name in ["flink-jobmanager", "flink-taskmanager"] {
        let container =
            &find(&objects, "Deployment", name)["spec"]["template"]["spec"]["containers"][0];
        let startup = &container["startupProbe"];
        let allowed = startup["periodSeconds"].as_u64().unwrap_or(10)
            * startup["failureThreshold"].as_u64().unwrap_or(0);
        assert!(
            startup["tcpSocket"].is_object() && allowed >= 180,
            "{name}: a startup probe allowing 3 minutes or more: {container}"
        );
        assert!(
            container["livenessProbe"].is_object(),
            "{name}: {container}"
        );
    }

    // The autoscaler runs as a hardened, probed, bounded container.
    let autoscaler = find(&objects, "Deployment", "segment-autoscaler");
    let pod = &autoscaler["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(pod["serviceAccountName"], "segment-autoscaler");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"],
        json!(["ALL"])
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert!(
        container["resources"]["limits"]["memory"].is_string()
            && container["resources"]["requests"]["cpu"].is_string()
    );
}

/// The autoscaler's configuration in a rendered stack, as YAML and as the autoscaler reads it.
fn autoscaler_config(objects: &[Value]) -> (Value, Config) {
    let text = find(objects, "ConfigMap", "segment-autoscaler")["data"]["config.yaml"]
        .as_str()
        .expect("the autoscaler's config.yaml")
        .to_string();
    let yaml: Value = serde_yaml_ng::from_str(&text).expect("config.yaml is YAML");
    let config = Config::parse(&text).unwrap_or_else(|e| panic!("the autoscaler refuses it: {e}"));
    (yaml, config)
}

/// deploy/k8s with the component deploy/k8s/NAME, rendered.
fn render_with_component(stack: &Stack, name: &str) -> Vec<Value> {
    let overlay = repo_root().join(format!("target/k8s-manifests-{name}"));
    std::fs::create_dir_all(&overlay).unwrap();
    std::fs::write(
        overlay.join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
             resources: [../../deploy/k8s]\ncomponents: [../../deploy/k8s/{name}]\n"
        ),
    )
    .unwrap();
    render_dir(stack, &overlay)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prewarmed_component_changes_only_the_scheduler_and_the_alignment() {
    let stack = Stack::require(&[Component::Kubernetes]).await;
    let base = render(&stack);
    let mut prewarmed = render_with_component(&stack, "prewarmed");
    assert_eq!(base.len(), prewarmed.len(), "the same objects");

    // The JobManager: the adaptive scheduler in place of reactive mode, nothing else.
    let args = |objects: &[Value]| {
        find(objects, "Deployment", "flink-jobmanager")["spec"]["template"]["spec"]["containers"][0]
            ["args"]
            .clone()
    };
    let (base_args, prewarmed_args) = (args(&base), args(&prewarmed));
    assert_eq!(base_args[1], "-Dscheduler-mode=reactive");
    assert_eq!(prewarmed_args[1], "-Djobmanager.scheduler=adaptive");
    let config_yaml = &find(&base, "ConfigMap", "flink-config")["data"]["config.yaml"];
    assert!(
        !config_yaml
            .as_str()
            .unwrap()
            .lines()
            .any(|line| line.starts_with("scheduler-mode:")
                || line.starts_with("jobmanager.scheduler:")),
        "the scheduler is set only by the argument the component replaces: {config_yaml}"
    );

    // The autoscaler: the SegmentScaler's prewarmed alignment, read on its next pass.
    let alignment = |objects: &[Value]| {
        find(objects, "SegmentScaler", "busy-reader")["spec"]["flink"]["alignment"].clone()
    };
    assert_eq!(alignment(&base), Value::Null, "reactive by default");
    assert_eq!(
        alignment(&prewarmed),
        json!({"mode": "prewarmed", "headroom": 1})
    );

    // Every other object is the same.
    for object in prewarmed.iter_mut() {
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let same = find(&base, &kind, &name);
        match (kind.as_str(), name.as_str()) {
            ("Deployment", "flink-jobmanager") => {
                object["spec"]["template"]["spec"]["containers"][0]["args"] = base_args.clone()
            }
            ("SegmentScaler", "busy-reader") => {
                object["spec"]["flink"]
                    .as_object_mut()
                    .unwrap()
                    .remove("alignment");
            }
            _ => {}
        }
        assert_eq!(object, same, "{kind} {name} is the same with the component");
    }
}

/// The pod spec of the workload `kind`/`name` in a rendered stack.
fn pod_spec<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    &find(objects, kind, name)["spec"]["template"]["spec"]
}

/// Panics unless `file` lies in a Secret mounted into the first container of `pod`: a mount
/// whose path is the file's directory, of a volume from a Secret.
fn assert_in_mounted_secret(pod: &Value, what: &str, file: &str) {
    let directory = Path::new(file).parent().expect("a file in a directory");
    let mount = pod["containers"][0]["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|mount| Path::new(mount["mountPath"].as_str().unwrap_or_default()) == directory)
        .unwrap_or_else(|| panic!("{what}: nothing is mounted at {}", directory.display()));
    let volume = pod["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|volume| volume["name"] == mount["name"])
        .unwrap_or_else(|| panic!("{what}: no volume {}", mount["name"]));
    assert!(
        volume["secret"]["secretName"].is_string(),
        "{what}: {file} is in {volume}, not a Secret"
    );
}

/// The values of the options `--NAME VALUE` and `--NAME=VALUE` in `args`.
fn option_values(args: &Value, name: &str) -> Vec<String> {
    let args: Vec<&str> = args
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let flag = format!("--{name}");
    let mut values = Vec::new();
    for (i, arg) in args.iter().enumerate() {
        if *arg == flag {
            values.push(args[i + 1].to_string());
        } else if let Some(value) = arg.strip_prefix(&format!("{flag}=")) {
            values.push(value.to_string());
        }
    }
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secured_component_is_accepted_and_mounts_every_file_its_clients_read() {
    let stack = Stack::require(&[Component::Kubernetes]).await;
    let base = render(&stack);
    let secured = render_with_component(&stack, "secured");
    assert_eq!(
        secured.len(),
        base.len() + 1,
        "one object more: the segment store's Service"
    );
    for object in &secured {
        if object["kind"] != "Namespace" {
            assert_eq!(
                object["metadata"]["namespace"], DEMO_NAMESPACE,
                "{} {}",
                object["kind"], object["metadata"]["name"]
            );
        }
    }
    find(&secured, "Service", "pravega-segmentstore");
    assert_accepted(&stack, &secured).await;

    // The autoscaler: TLS and an account for Pravega, mutual TLS for Flink, every file in a
    // mounted Secret; every other setting as in the base.
    let (mut yaml, config) = autoscaler_config(&secured);
    let pravega = config.pravega.as_ref().expect("pravega");
    let pravega_tls = pravega.tls.as_ref().expect("pravega.tls");
    let credentials = pravega.credentials.as_ref().expect("pravega.credentials");
    let flink_tls = config
        .segment_scalers
        .as_ref()
        .and_then(|s| s.flink.as_ref())
        .and_then(|f| f.tls.as_ref())
        .expect("segment_scalers.flink.tls");
    assert_eq!(
        find(&secured, "SegmentScaler", "busy-reader")["spec"]["flink"]["restUrl"],
        "https://flink-jobmanager:8081"
    );
    assert!(pravega.controller.starts_with("tls://"));
    assert_eq!(credentials.username, "autoscaler");
    let autoscaler = pod_spec(&secured, "Deployment", "segment-autoscaler");
    for file in [
        &pravega_tls.ca_file,
        &credentials.password_file,
        &flink_tls.ca_file,
        &flink_tls.cert_file,
        &flink_tls.key_file,
    ] {
        let file = file.as_ref().expect("a file").to_str().unwrap();
        assert_in_mounted_secret(autoscaler, "the autoscaler", file);
    }
    let (mut base_yaml, _) = autoscaler_config(&base);
    for yaml in [&mut yaml, &mut base_yaml] {
        yaml.as_object_mut().unwrap().remove("pravega");
        yaml["segment_scalers"]
            .as_object_mut()
            .unwrap()
            .remove("flink");
    }
    assert_eq!(
        yaml, base_yaml,
        "the component's copy of the autoscaler's configuration differs only in pravega and segment_scalers.flink"
    );

    // The generator and the job (its JobManager and TaskManagers) read Pravega with a CA and an
    // account from mounted Secrets; Flink's REST API asks for client certificates.
    let generator = pod_spec(&secured, "Deployment", "data-generator");
    let jobmanager = pod_spec(&secured, "Deployment", "flink-jobmanager");
    let taskmanager = pod_spec(&secured, "Deployment", "flink-taskmanager");
    for (what, args, pods) in [
        (
            "the generator",
            &generator["containers"][0]["args"],
            vec![generator],
        ),
        (
            "the job",
            &jobmanager["containers"][0]["args"],
            vec![jobmanager, taskmanager],
        ),
    ] {
        for option in ["tls-ca-file", "password-file"] {
            let values = option_values(args, option);
            assert_eq!(values.len(), 1, "{what}: --{option} once in {args}");
            for pod in &pods {
                assert_in_mounted_secret(pod, what, &values[0]);
            }
        }
        assert_eq!(
            option_values(args, "controller"),
            ["tls://pravega:9090"],
            "{what}"
        );
    }
    let jobmanager_args = jobmanager["containers"][0]["args"].to_string();
    for property in [
        "-Dsecurity.ssl.rest.enabled=true",
        "-Dsecurity.ssl.rest.authentication-enabled=true",
    ] {
        assert!(jobmanager_args.contains(property), "{jobmanager_args}");
    }

    // Prometheus: Pravega's scrape over HTTPS with an account, every other scrape as in the base.
    let scrapes = |objects: &[Value]| -> Value {
        let configmap = objects
            .iter()
            .find(|o| {
                o["kind"] == "ConfigMap"
                    && o["metadata"]["name"]
                        .as_str()
                        .is_some_and(|n| n.starts_with("prometheus-config"))
            })
            .expect("Prometheus' ConfigMap");
        serde_yaml_ng::from_str(configmap["data"]["prometheus.yml"].as_str().unwrap()).unwrap()
    };
    let (mut secured_scrapes, base_scrapes) = (scrapes(&secured), scrapes(&base));
    let pravega = secured_scrapes["scrape_configs"][0]
        .as_object_mut()
        .unwrap();
    assert_eq!(pravega["job_name"], "pravega");
    assert_eq!(pravega["scheme"], "https");
    let prometheus = pod_spec(&secured, "Deployment", "prometheus");
    for file in [
        pravega["tls_config"]["ca_file"].as_str().unwrap(),
        pravega["basic_auth"]["password_file"].as_str().unwrap(),
    ] {
        assert_in_mounted_secret(prometheus, "Prometheus", file);
    }
    for key in ["scheme", "tls_config", "basic_auth"] {
        pravega.remove(key);
    }
    assert_eq!(
        secured_scrapes, base_scrapes,
        "the component's copy of prometheus.yml differs only in Pravega's scrape"
    );

    // No secret in a manifest: passwords come from Secrets (files or secretKeyRef), and every
    // password option names a variable, never a value.
    let text = serde_json::to_string(&secured).unwrap();
    for needle in ["password=", "pwd="] {
        for (at, _) in text.match_indices(needle) {
            assert!(
                text[at + needle.len()..].starts_with("$("),
                "a password in the manifests: {}",
                &text[at.saturating_sub(60)..(at + 40).min(text.len())]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_autoscalers_rbac_allows_exactly_what_it_needs() {
    let stack = Stack::require(&[Component::Kubernetes]).await;
    let objects = render(&stack);
    ensure_namespace(&stack).await;
    let rbac = [
        find(&objects, "ServiceAccount", "segment-autoscaler"),
        find(&objects, "Role", "segment-autoscaler"),
        find(&objects, "RoleBinding", "segment-autoscaler"),
        find(&objects, "Role", "segment-autoscaler-targets"),
        find(&objects, "RoleBinding", "segment-autoscaler-targets"),
    ];
    let output = kubectl_apply(
        &stack,
        &["--server-side", "--field-manager=manifest-test"],
        &rbac,
    );
    assert!(
        output.status.success(),
        "apply RBAC: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The administrator creates the TaskManager Deployment (from the manifests) and another one.
    let taskmanagers = find(&objects, "Deployment", "flink-taskmanager");
    let output = kubectl_apply(
        &stack,
        &[
            "--server-side",
            "--force-conflicts",
            "--field-manager=manifest-test",
        ],
        &[taskmanagers],
    );
    assert!(
        output.status.success(),
        "apply flink-taskmanager: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let admin = stack.kube_client(&stack.kubeconfig_admin).await;
    let admin_deployments: Api<Deployment> = Api::namespaced(admin.clone(), DEMO_NAMESPACE);
    let other = unique_name("other-");
    let mut object = deployment(&other, 1);
    object.metadata.namespace = None;
    admin_deployments
        .create(&PostParams::default(), &object)
        .await
        .expect("create another Deployment");

    // Act as the ServiceAccount, with a real TokenRequest token.
    let token = kubectl(
        &stack.kubectl,
        &stack.kubeconfig_admin,
        &[
            "-n",
            DEMO_NAMESPACE,
            "create",
            "token",
            "segment-autoscaler",
            "--duration",
            "1h",
        ],
        "",
    );
    assert!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    let token = String::from_utf8(token.stdout).unwrap().trim().to_string();
    let admin_config = std::fs::read_to_string(&stack.kubeconfig_admin).unwrap();
    let sa_config = admin_config
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("token:") {
                format!("    token: {token}")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let sa_config_path = repo_root().join("target/k8s-manifests-autoscaler.kubeconfig");
    std::fs::write(&sa_config_path, sa_config).unwrap();
    let autoscaler = stack.kube_client(&sa_config_path).await;

    // Allowed: the TaskManager Deployment's scale, Events, its Lease.
    let deployments: Api<Deployment> = Api::namespaced(autoscaler.clone(), DEMO_NAMESPACE);
    let scale = deployments
        .get_scale("flink-taskmanager")
        .await
        .expect("get the scale");
    let wanted = if scale.spec.and_then(|s| s.replicas) == Some(2) {
        3
    } else {
        2
    };
    deployments
        .patch_scale(
            "flink-taskmanager",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": wanted}})),
        )
        .await
        .expect("patch the scale");
    // Events as the autoscaler records them (kube-runtime's Recorder): created, then
    // patched into a series when the same notice repeats.
    let instance = unique_name("manifest-");
    let target = KubernetesScaleTarget::new(
        autoscaler.clone(),
        ScaleResource::deployment(DEMO_NAMESPACE, "flink-taskmanager"),
        &instance,
        Duration::from_secs(5),
    );
    target.record("ManifestTest", "recorded twice").await;
    target.record("ManifestTest", "recorded twice").await;
    let recorded: Api<events::v1::Event> = Api::namespaced(admin.clone(), DEMO_NAMESPACE);
    let recorded = recorded.list(&ListParams::default()).await.unwrap();
    let event = recorded
        .items
        .iter()
        .find(|e| e.reporting_instance.as_deref() == Some(instance.as_str()))
        .expect("the Event was created");
    assert_eq!(
        event.series.as_ref().map(|s| s.count),
        Some(2),
        "the repeat was patched into a series"
    );
    let leases: Api<Lease> = Api::namespaced(autoscaler.clone(), DEMO_NAMESPACE);
    let lease: Lease =
        serde_json::from_value(json!({"metadata": {"name": "segment-autoscaler"}, "spec": {}}))
            .unwrap();
    match leases.create(&PostParams::default(), &lease).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("create the Lease: {e}"),
    }
    let mut held = leases
        .get("segment-autoscaler")
        .await
        .expect("get the Lease");
    held.spec
        .get_or_insert_with(Default::default)
        .holder_identity = Some("manifest-test".into());
    leases
        .replace("segment-autoscaler", &PostParams::default(), &held)
        .await
        .expect("renew the Lease");

    // Denied: other Deployments, the Deployment object, pods, secrets, other Leases.
    assert_forbidden(
        "get scale of another Deployment",
        deployments.get_scale(&other).await,
    );
    assert_forbidden(
        "get the Deployment object",
        deployments.get("flink-taskmanager").await,
    );
    assert_forbidden(
        "list Deployments",
        deployments.list(&ListParams::default()).await,
    );
    let core_events: Api<Event> = Api::namespaced(autoscaler.clone(), DEMO_NAMESPACE);
    assert_forbidden(
        "create a core/v1 Event",
        core_events
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "metadata": {"generateName": "x."},
                    "involvedObject": {"kind": "Deployment", "name": "flink-taskmanager"}
                }))
                .unwrap(),
            )
            .await,
    );
    let pods: Api<Pod> = Api::namespaced(autoscaler.clone(), DEMO_NAMESPACE);
    assert_forbidden("list pods", pods.list(&ListParams::default()).await);
    let secrets: Api<Secret> = Api::namespaced(autoscaler.clone(), DEMO_NAMESPACE);
    assert_forbidden("list secrets", secrets.list(&ListParams::default()).await);
    assert_forbidden("get another Lease", leases.get("someone-else").await);
    let elsewhere: Api<Deployment> = Api::namespaced(autoscaler.clone(), "default");
    assert_forbidden(
        "scale in another namespace",
        elsewhere.get_scale("flink-taskmanager").await,
    );

    // SegmentScalers: read and watched, their status written; their specs are the users'.
    let scalers: Api<SegmentScaler> = Api::namespaced(autoscaler.clone(), DEMO_NAMESPACE);
    scalers
        .list(&ListParams::default())
        .await
        .expect("list SegmentScalers");
    let scaler = find(&objects, "SegmentScaler", "busy-reader");
    let admin_scalers: Api<SegmentScaler> = Api::namespaced(admin.clone(), DEMO_NAMESPACE);
    let as_admin: SegmentScaler = serde_json::from_value(scaler.clone()).unwrap();
    match admin_scalers
        .create(&PostParams::default(), &as_admin)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("create the SegmentScaler: {e}"),
    }
    scalers
        .patch_status(
            "busy-reader",
            &PatchParams::apply("manifest-test").force(),
            &Patch::Apply(json!({
                "apiVersion": "segment-autoscaler.io/v1alpha1",
                "kind": "SegmentScaler",
                "status": {"segments": 1}
            })),
        )
        .await
        .expect("write a SegmentScaler's status");
    assert_forbidden(
        "change a SegmentScaler's spec",
        scalers
            .patch(
                "busy-reader",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"maxReplicas": 1}})),
            )
            .await,
    );
    assert_forbidden(
        "create a SegmentScaler",
        scalers.create(&PostParams::default(), &as_admin).await,
    );
    let scalers_elsewhere: Api<SegmentScaler> = Api::namespaced(autoscaler, "default");
    assert_forbidden(
        "list SegmentScalers in another namespace",
        scalers_elsewhere.list(&ListParams::default()).await,
    );
}

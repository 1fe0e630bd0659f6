//! The autoscaler image holds only what `deploy/docker/minimal-rootfs` puts in it: the binary,
//! the libraries it links, CA certificates and a passwd entry. Run from such a root file system
//! (chroot, as the unprivileged user), `plan` reads the real Pravega controller and the real
//! kube-apiserver over TLS, so nothing else is needed at run time.

use test_support as support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use support::config::{deployment, AutoscalerConfig};
use support::kubernetes::{ensure_deployment, set_replicas, NAMESPACE, TASKMANAGERS};
use support::pravega::{controller, create_stream, scale_to};
use support::{repo_root, unique_name, Component, Stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_runs_from_the_minimal_root_file_system() {
    let stack = Stack::require(&[Component::Pravega, Component::Kubernetes]).await;
    let rootfs = repo_root().join("target/image-rootfs");
    let built = Command::new(repo_root().join("deploy/docker/minimal-rootfs"))
        .arg(env!("CARGO_BIN_EXE_segment-autoscaler"))
        .arg(&rootfs)
        .output()
        .expect("run minimal-rootfs");
    assert!(built.status.success(), "minimal-rootfs failed: {built:?}");
    let mut files: Vec<String> = walk(&rootfs)
        .iter()
        .map(|p| p.strip_prefix(&rootfs).unwrap().display().to_string())
        .collect();
    files.sort();
    assert!(
        files
            .iter()
            .all(|f| f.starts_with("usr/local/bin/segment-autoscaler")
                || f.starts_with("etc/")
                || f.contains(".so")),
        "only the binary, libraries and /etc files: {files:?}"
    );

    let admin = stack.kube_client(&stack.kubeconfig_admin).await;
    let deployments: Api<Deployment> = Api::namespaced(admin, NAMESPACE);
    ensure_deployment(&deployments, TASKMANAGERS).await;
    set_replicas(&deployments, TASKMANAGERS, 1).await;
    let controller = controller(&stack.pravega_controller);
    let scope = unique_name("image");
    let stream = create_stream(&controller, &scope, "load").await;
    scale_to(&controller, &stream, 3).await;

    std::fs::create_dir_all(rootfs.join("etc/segment-autoscaler")).unwrap();
    // Mounted into a pod, a Secret is readable by the pod's user; so is this copy.
    let kubeconfig = rootfs.join("etc/segment-autoscaler/kubeconfig");
    std::fs::copy(&stack.kubeconfig_restricted, &kubeconfig).unwrap();
    std::fs::set_permissions(&kubeconfig, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(
        rootfs.join("etc/segment-autoscaler/config.yaml"),
        AutoscalerConfig::binding(
            "image",
            &[&format!("{scope}/load")],
            deployment(NAMESPACE, TASKMANAGERS),
        )
        .default_interval()
        .pravega(&stack.pravega_controller)
        .kubernetes(Path::new("/etc/segment-autoscaler/kubeconfig"), None)
        .source("controller")
        .stabilization(None)
        .yaml(),
    )
    .unwrap();
    let plan = Command::new("chroot")
        .args(["--userspec=65532:65532"])
        .arg(&rootfs)
        .args([
            "/usr/local/bin/segment-autoscaler",
            "plan",
            "--output",
            "json",
            "--config",
            "/etc/segment-autoscaler/config.yaml",
        ])
        // Nothing of this environment (KUBECONFIG, proxies) reaches the image; PATH only
        // finds chroot itself.
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .expect("run chroot");
    assert!(plan.status.success(), "plan in the image failed: {plan:?}");
    let records: serde_json::Value = serde_json::from_slice(&plan.stdout).expect("JSON");
    let record = &records[0];
    assert_eq!(
        (
            &record["segments"],
            &record["current_replicas"],
            &record["action"]
        ),
        (&3.into(), &1.into(), &"scale_up".into()),
        "{record}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

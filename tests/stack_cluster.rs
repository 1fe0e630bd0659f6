//! The stack's single-node cluster is a real Kubernetes: pods run on containerd, reach each
//! other through a Service name (CoreDNS, kube-proxy), the host reaches Service addresses, and
//! nothing routes out of the machine.

use test_support as support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube::api::{Api, DeleteParams, LogParams, PostParams};
use serde_json::json;
use support::{eventually, unique_name, Component, Stack};

const POD_TIMEOUT: Duration = Duration::from_secs(120);

/// A pod of the probe image running `script` with busybox's sh, as an unprivileged user, with
/// a writable /tmp (the image holds busybox only).
fn probe_pod(stack: &Stack, name: &str, script: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": false,
            "containers": [{
                "name": "probe",
                "image": stack.cluster_probe_image,
                "imagePullPolicy": "Never",
                "command": ["/bin/busybox", "sh", "-c", script],
                "securityContext": {"runAsUser": 65534, "allowPrivilegeEscalation": false},
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]
            }],
            "volumes": [{"name": "tmp", "emptyDir": {}}]
        }
    }))
    .expect("a valid Pod")
}

/// Waits until the pod has finished; returns whether it succeeded, and its log.
async fn finished(pods: &Api<Pod>, name: &str) -> (bool, String) {
    let phase = eventually(
        &format!("pod {name} finished"),
        POD_TIMEOUT,
        || async move {
            let pod = pods.get(name).await.map_err(|e| e.to_string())?;
            match pod.status.and_then(|s| s.phase).as_deref() {
                Some(phase @ ("Succeeded" | "Failed")) => Ok(phase.to_string()),
                other => Err(format!("phase {other:?}")),
            }
        },
    )
    .await;
    let log = pods
        .logs(name, &LogParams::default())
        .await
        .unwrap_or_else(|e| format!("(no log: {e})"));
    (phase == "Succeeded", log)
}

/// A namespace of its own for one test, deleted (without waiting) at the end.
async fn namespace(client: &kube::Client, prefix: &str) -> String {
    let name = unique_name(prefix);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
        )
        .await
        .expect("create a namespace");
    // A namespace's default ServiceAccount appears shortly after it; pods wait for it.
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), &name);
    eventually("the default ServiceAccount", POD_TIMEOUT, || {
        let accounts = accounts.clone();
        async move {
            accounts
                .get("default")
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
    })
    .await;
    name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_reach_a_service_by_name_and_the_host_reaches_its_address() {
    let stack = Stack::require(&[Component::Cluster]).await;
    let client = stack.kube_client(&stack.cluster_kubeconfig).await;
    let ns = namespace(&client, "svc-").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);

    // A web server pod (busybox httpd) serving a page that names this run, behind a Service.
    let page = unique_name("page-");
    let server = probe_pod(
        &stack,
        "web",
        &format!(
            "mkdir -p /tmp/www && echo {page} > /tmp/www/index.html && exec /bin/busybox httpd -f -p 8080 -h /tmp/www"
        ),
    );
    pods.create(&PostParams::default(), &server)
        .await
        .expect("create the web pod");
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}
    }))
    .unwrap();
    let service = services
        .create(&PostParams::default(), &service)
        .await
        .expect("create the Service");

    // Another pod fetches it by the Service's DNS name (bounded retries while it starts).
    // HTTP by hand through nc: the wget of Debian's static busybox crashes.
    let host = format!("web.{ns}.svc.cluster.local");
    let client_pod = probe_pod(
        &stack,
        "client",
        &format!(
            "for i in $(seq 60); do \
               printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 2 {host} 80 | grep -q {page} && echo fetched {page} && exit 0; \
               sleep 1; done; exit 1"
        ),
    );
    pods.create(&PostParams::default(), &client_pod)
        .await
        .expect("create the client pod");
    let (ok, log) = finished(&pods, "client").await;
    assert!(
        ok && log.contains(&page),
        "a pod fetched http://{host}/: {log}"
    );

    // The host routes the Service range to the node: the ClusterIP answers here too.
    let cluster_ip = service
        .spec
        .and_then(|s| s.cluster_ip)
        .expect("a ClusterIP");
    let http = reqwest::Client::new();
    let body = eventually(
        &format!("http://{cluster_ip}/ from the host"),
        POD_TIMEOUT,
        || {
            let request = http
                .get(format!("http://{cluster_ip}/"))
                .timeout(Duration::from_secs(3));
            async move {
                let response = request.send().await.map_err(|e| e.to_string())?;
                response.text().await.map_err(|e| e.to_string())
            }
        },
    )
    .await;
    assert!(body.contains(&page), "the host fetched the page: {body}");

    let namespaces: Api<Namespace> = Api::all(client);
    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_routes_out_of_the_machine() {
    let stack = Stack::require(&[Component::Cluster]).await;

    // The node's namespace has no route to an outside address.
    let route = std::process::Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", stack.cluster_netns))
        .args(["ip", "route", "get", "1.1.1.1"])
        .output()
        .expect("run ip route get in the node's namespace");
    let said = String::from_utf8_lossy(&route.stderr);
    assert!(
        !route.status.success() && said.contains("unreachable"),
        "the node has no route out: {} {said}",
        String::from_utf8_lossy(&route.stdout)
    );

    // A pod's packets to the outside are refused at once (not lost in a timeout), and the
    // cluster DNS answers no outside name (it has no upstream forwarder).
    let client = stack.kube_client(&stack.cluster_kubeconfig).await;
    let ns = namespace(&client, "egress-").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let script = "/bin/busybox nc -w 5 1.1.1.1 80 </dev/null 2>&1; \
                  /bin/busybox nslookup example.com 2>&1; \
                  /bin/busybox nslookup kubernetes.default.svc.cluster.local 2>&1";
    pods.create(&PostParams::default(), &probe_pod(&stack, "egress", script))
        .await
        .expect("create the egress pod");
    let (_, log) = finished(&pods, "egress").await;
    assert!(
        log.contains("Network is unreachable") || log.contains("No route to host"),
        "the pod's connection out was refused by the node: {log}"
    );
    assert!(
        !log.contains("timed out"),
        "nothing waited on an outside address: {log}"
    );
    assert!(
        log.contains("can't find example.com") && log.contains("10.96.0.1"),
        "the cluster DNS answers cluster names only: {log}"
    );

    let namespaces: Api<Namespace> = Api::all(client);
    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
}

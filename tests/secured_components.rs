//! The autoscaler against the real components with security on (the stack's
//! `STACK_SECURITY=on`): Pravega standalone with TLS and auth, Prometheus behind HTTPS and basic
//! auth, Flink's REST API behind mutual TLS. It follows segment changes through each source with
//! a read-only Pravega account, verifies the job over HTTPS, holds with a bounded reason on every
//! bad security input, and never prints a secret.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use test_support as support;

use support::config::{command, AutoscalerConfig};
use support::pravega::{create_stream, scale_to};
use support::secured::{SecuredStack, PRAVEGA_READER, PROMETHEUS_USER};
use support::{eventually, repo_root, unique_name, AutoscalerProcess};

/// The `pravega:` section: the controller at `controller`, trusting `ca`, as `password_file`'s
/// account (the read-only one unless given).
fn pravega(controller: &str, ca: &Path, password_file: &Path) -> String {
    format!(
        "pravega: {{controller: \"{controller}\", timeout: 3s, tls: {{ca_file: \"{}\"}}, credentials: {{username: {PRAVEGA_READER}, password_file: \"{}\"}}}}",
        ca.display(),
        password_file.display()
    )
}

/// The `prometheus:` section: `url`, trusting `ca`, with basic auth from `password_file`.
fn prometheus(url: &str, ca: &Path, password_file: &Path) -> String {
    format!(
        "prometheus: {{url: \"{url}\", timeout: 3s, tls: {{ca_file: \"{}\"}}, basic_auth: {{username: {PROMETHEUS_USER}, password_file: \"{}\"}}}}",
        ca.display(),
        password_file.display()
    )
}

/// The `flink` fields of a binding: trusting `ca`, showing the stack's client certificate.
fn flink_tls(secured: &SecuredStack, ca: &Path) -> String {
    format!(
        "tls: {{ca_file: \"{}\", cert_file: \"{}\", key_file: \"{}\"}}",
        ca.display(),
        secured.file("client.pem").display(),
        secured.file("client.key").display()
    )
}

/// Every secret of the stack, and the basic-auth header values made of them, each with a label
/// that says what it is without showing it.
fn secrets(secured: &SecuredStack) -> Vec<(String, String)> {
    use base64::Engine;
    let mut secrets = Vec::new();
    for (user, file) in [
        ("admin", "pravega-admin"),
        (PRAVEGA_READER, "pravega-autoscaler"),
        ("generator", "pravega-generator"),
        (PROMETHEUS_USER, "prometheus-autoscaler"),
    ] {
        let password = secured.password(file);
        let header = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        secrets.push((format!("{file}'s password"), password));
        secrets.push((format!("{file}'s basic-auth header"), header));
    }
    secrets
}

/// Asserts that no secret is in `text` (what `what` printed).
fn assert_no_secret(secrets: &[(String, String)], what: &str, text: &str) {
    for (label, secret) in secrets {
        assert!(!text.contains(secret.as_str()), "{what} shows {label}");
    }
}

#[tokio::test]
async fn secured_components() {
    let secured = SecuredStack::start();
    let secrets = secrets(&secured);
    follows_segments_through_each_secured_source(&secured, &secrets).await;
    bad_security_input_holds_with_its_reason(&secured, &secrets).await;
    the_generator_writes_with_its_own_account_only(&secured, &secrets);
}

/// The data generator writes over TLS with the account that may write the scope; the
/// autoscaler's read-only account may not.
fn the_generator_writes_with_its_own_account_only(
    secured: &SecuredStack,
    secrets: &[(String, String)],
) {
    let generate = |account: &str, stream: &str| {
        Command::new(support::workspace_binary("data-generator"))
            .args([
                "--controller",
                &secured.stack.pravega_controller,
                "--tls-ca-file",
            ])
            .arg(secured.file("ca.pem"))
            .args(["--username", account, "--password-file"])
            .arg(secured.password_file(&format!("pravega-{account}")))
            .args(["--scope", &secured.scope, "--stream", stream])
            .args(["--shape", "constant", "--base", "100", "--duration", "3s"])
            .args(["--connect-timeout", "30s"])
            .output()
            .expect("run data-generator")
    };
    let written = generate("generator", &unique_name("generated"));
    let stdout = String::from_utf8_lossy(&written.stdout);
    let stderr = String::from_utf8_lossy(&written.stderr);
    assert!(written.status.success(), "{stdout}\n{stderr}");
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("a JSON summary");
    assert!(summary["events"].as_u64().unwrap_or(0) > 0, "{summary}");
    assert_eq!(summary["failed_events"], 0, "{summary}");
    let refused = generate(PRAVEGA_READER, &unique_name("refused"));
    let refused_stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        refused_stderr.contains("PermissionDenied"),
        "{refused_stderr}"
    );
    let printed = format!("{stdout}{stderr}{refused_stderr}");
    assert_no_secret(secrets, "the generator's output", &printed);
}

/// The controller source (read-only account) and the Prometheus source (HTTPS, basic auth) each
/// bring the secured stack's TaskManagers to a stream's segments, and the job is verified over
/// mutual TLS.
async fn follows_segments_through_each_secured_source(
    secured: &SecuredStack,
    secrets: &[(String, String)],
) {
    let stack = &secured.stack;
    let ca = secured.file("ca.pem");
    let admin = secured.admin_controller();
    let stream = create_stream(&admin, &secured.scope, &unique_name("secured")).await;
    let name = format!("{}/{}", secured.scope, stream.stream.name);
    let (get, set) = secured.taskmanagers_command();
    let get: Vec<&str> = get.iter().map(String::as_str).collect();
    let set: Vec<&str> = set.iter().map(String::as_str).collect();
    let base = AutoscalerConfig::binding("secured", &[&name], command(&get, &set, Some("60s")))
        .interval("1s")
        .max_replicas(3)
        .stabilization(Some("0s"))
        .section(pravega(
            &stack.pravega_controller,
            &ca,
            &secured.password_file("pravega-autoscaler"),
        ))
        .section(prometheus(
            &stack.prometheus_url,
            &ca,
            &secured.password_file("prometheus-autoscaler"),
        ))
        .section("reconcile_timeout: 90s")
        .flink(&stack.flink_rest_url, &flink_tls(secured, &ca));

    let via_controller = AutoscalerProcess::start(
        "secured-controller",
        &base.clone().source("controller").yaml(),
    );
    scale_to(&admin, &stream, 3).await;
    via_controller.wait_aligned(3.0).await;
    let metrics = via_controller.get("/metrics").await.unwrap_or_default().1;
    let mut logs = via_controller.log_text();
    drop(via_controller);

    // Prometheus saw the scales through its own secured scrape of Pravega.
    let via_prometheus =
        AutoscalerProcess::start("secured-prometheus", &base.source("prometheus").yaml());
    scale_to(&admin, &stream, 2).await;
    via_prometheus.wait_aligned(2.0).await;
    logs.push_str(&via_prometheus.log_text());
    drop(via_prometheus);

    assert_no_secret(secrets, "the autoscaler's logs", &logs);
    assert_no_secret(secrets, "the autoscaler's metrics", &metrics);
}

/// One bad input of a secured connection, and the reason it must be counted under.
struct BadInput {
    name: &'static str,
    config: String,
    /// The error counter's series that must rise.
    series: String,
}

/// Every bad input holds (the target's `set` never runs) with its reason on the error counters,
/// and a file that cannot be read at start is a configuration error naming its field.
async fn bad_security_input_holds_with_its_reason(
    secured: &SecuredStack,
    secrets: &[(String, String)],
) {
    let stack = &secured.stack;
    let ca = secured.file("ca.pem");
    let other_ca = secured.file("other-ca.pem");
    let reader = secured.password_file("pravega-autoscaler");
    let prometheus_password = secured.password_file("prometheus-autoscaler");
    let wrong_password = repo_root().join("target/test-autoscaler/wrong-password");
    std::fs::create_dir_all(wrong_password.parent().unwrap()).unwrap();
    std::fs::write(&wrong_password, "not-the-password\n").unwrap();
    let admin = secured.admin_controller();
    let stream = create_stream(&admin, &secured.scope, &unique_name("held")).await;
    // Two segments for one TaskManager: a source that worked would scale.
    scale_to(&admin, &stream, 2).await;
    let held = format!("{}/{}", secured.scope, stream.stream.name);
    // One segment for one TaskManager: the binding of the Flink case holds whatever Flink says.
    let steady = create_stream(&admin, &secured.scope, &unique_name("steady")).await;
    let steady = format!("{}/{}", secured.scope, steady.stream.name);
    // A scope the read-only account has no access to.
    let elsewhere = create_stream(&admin, &unique_name("other"), "held").await;
    let elsewhere = format!("{}/held", elsewhere.scope.name);

    let expired = TlsServer::start(&secured.file("expired.pem"), &secured.file("expired.key"));
    let plain = PlainServer::start();
    let controller = &stack.pravega_controller; // tls://localhost:PORT
    let controller_port = controller.rsplit(':').next().unwrap();
    let prometheus_url = &stack.prometheus_url; // https://localhost:PORT
    let marker_dir = repo_root().join("target/test-autoscaler/held");
    std::fs::create_dir_all(&marker_dir).unwrap();

    let source = |reason: &str, kind: &str| {
        format!("segment_autoscaler_source_errors_total{{source=\"{kind}\",reason=\"{reason}\"}}")
    };
    let controller_case = |name, section: String, stream: &str, reason| BadInput {
        name,
        config: held_binding(name, stream, "controller", &marker_dir, &[section]),
        series: source(reason, "controller"),
    };
    let prometheus_case = |name, section: String, reason| BadInput {
        name,
        config: held_binding(name, &held, "prometheus", &marker_dir, &[section]),
        series: source(reason, "prometheus"),
    };
    let cases = vec![
        controller_case("ctl-other-ca", pravega(controller, &other_ca, &reader), &held, "tls"),
        controller_case(
            "ctl-wrong-host",
            pravega(&controller.replace("localhost", "127.0.0.1"), &ca, &reader),
            &held,
            "tls",
        ),
        controller_case(
            "ctl-expired",
            pravega(&format!("tls://localhost:{}", expired.port), &ca, &reader),
            &held,
            "tls",
        ),
        controller_case(
            "ctl-plain-to-tls",
            format!("pravega: {{controller: \"tcp://localhost:{controller_port}\", timeout: 3s}}"),
            &held,
            "tls",
        ),
        controller_case(
            "ctl-tls-to-plain",
            pravega(&format!("tls://localhost:{}", plain.port), &ca, &reader),
            &held,
            "tls",
        ),
        controller_case(
            "ctl-wrong-password",
            pravega(controller, &ca, &wrong_password),
            &held,
            "unauthenticated",
        ),
        controller_case(
            "ctl-other-scope",
            pravega(controller, &ca, &reader),
            &elsewhere,
            "forbidden",
        ),
        prometheus_case(
            "prom-other-ca",
            prometheus(prometheus_url, &other_ca, &prometheus_password),
            "tls",
        ),
        prometheus_case(
            "prom-wrong-host",
            prometheus(
                &prometheus_url.replace("localhost", "127.0.0.1"),
                &ca,
                &prometheus_password,
            ),
            "tls",
        ),
        prometheus_case(
            "prom-expired",
            prometheus(&format!("https://localhost:{}", expired.port), &ca, &prometheus_password),
            "tls",
        ),
        prometheus_case(
            "prom-plain-to-tls",
            format!(
                "prometheus: {{url: \"{}\", timeout: 3s}}",
                prometheus_url.replace("https://", "http://")
            ),
            "tls",
        ),
        prometheus_case(
            "prom-tls-to-plain",
            prometheus(&format!("https://localhost:{}", plain.port), &ca, &prometheus_password),
            "tls",
        ),
        prometheus_case(
            "prom-wrong-password",
            prometheus(prometheus_url, &ca, &wrong_password),
            "unauthenticated",
        ),
        BadInput {
            name: "flink-no-client-certificate",
            config: held_binding(
                "flink-no-client-certificate",
                &steady,
                "controller",
                &marker_dir,
                &[pravega(controller, &ca, &reader)],
            ) + &format!(
                "    flink: {{rest_url: \"{}\", tls: {{ca_file: \"{}\"}}}}\n",
                stack.flink_rest_url,
                ca.display()
            ),
            series: "segment_autoscaler_flink_errors_total{binding=\"flink-no-client-certificate\",reason=\"tls\"}".into(),
        },
    ];
    let processes: Vec<(BadInput, AutoscalerProcess)> = cases
        .into_iter()
        .map(|case| {
            let process = AutoscalerProcess::start(&format!("held-{}", case.name), &case.config);
            (case, process)
        })
        .collect();
    let mut printed = String::new();
    for (case, process) in &processes {
        eventually(
            &format!("{}: {} counted", case.name, case.series),
            Duration::from_secs(60),
            || async {
                match process.metric(&case.series).await {
                    Some(n) if n >= 1.0 => Ok(()),
                    other => Err(format!("{other:?}; log: {}", process.log_text())),
                }
            },
        )
        .await;
        printed.push_str(&process.log_text());
        printed.push_str(&process.get("/metrics").await.unwrap_or_default().1);
    }
    for (case, _) in &processes {
        assert!(
            !marker_dir.join(case.name).exists(),
            "{}: the target was written on a bad security input",
            case.name
        );
    }
    drop(processes);
    assert_no_secret(secrets, "the held autoscalers' logs and metrics", &printed);

    // A CA file that is not there: a configuration error, exit 2, the field named.
    let missing =
        AutoscalerConfig::binding("missing", &[&held], marker_target(&marker_dir, "missing"))
            .section(pravega(
                controller,
                Path::new("/nonexistent/ca.pem"),
                &reader,
            ));
    let mut process = AutoscalerProcess::start("held-missing-ca", &missing.yaml());
    let status = process
        .wait_exit(Duration::from_secs(30))
        .expect("a missing CA file ends the autoscaler");
    assert_eq!(status.code(), Some(2), "{}", process.log_text());
    assert!(
        process
            .log_text()
            .contains("pravega.tls.ca_file: /nonexistent/ca.pem"),
        "{}",
        process.log_text()
    );
}

/// A binding on `stream` through `source` whose target's `set` would leave a marker named after
/// it in `markers` (it must never run), with the given top-level sections.
fn held_binding(
    name: &str,
    stream: &str,
    source: &str,
    markers: &Path,
    sections: &[String],
) -> String {
    let mut config = AutoscalerConfig::binding(name, &[stream], marker_target(markers, name))
        .interval("1s")
        .source(source);
    for section in sections {
        config = config.section(section);
    }
    config.yaml()
}

/// A command target reading 1 replica, whose `set` writes a marker file.
fn marker_target(markers: &Path, name: &str) -> String {
    let marker: PathBuf = markers.join(name);
    command(
        &["echo", "1"],
        &[
            "sh",
            "-c",
            &format!("echo {{replicas}} > '{}'", marker.display()),
        ],
        None,
    )
}

/// `openssl s_server` presenting a certificate (e.g. the stack's expired one) on a free port.
struct TlsServer {
    port: u16,
    child: Child,
}

impl TlsServer {
    fn start(cert: &Path, key: &Path) -> TlsServer {
        let port = support::free_port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start openssl s_server");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "openssl s_server did not listen"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        TlsServer { port, child }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain-text server on a free port: it answers every connection with an HTTP 400 and closes.
struct PlainServer {
    port: u16,
}

impl PlainServer {
    fn start() -> PlainServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                use std::io::Write;
                let mut stream = stream;
                let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
            }
        });
        PlainServer { port }
    }
}

//! Test support: the real components of the local stack (`deploy/local/stack`).
//!
//! A test asks for the components it needs with [`Stack::require`]. When the variables printed
//! by `deploy/local/stack env` are set (the project's test command sets them), the test attaches
//! to that running stack; otherwise the components are installed and started here, once, and
//! left running for the next test run (`deploy/local/stack down` stops them).
//!
//! Either way every component is checked for readiness with a timeout and a message that says
//! what did not answer. Keep the returned [`Stack`] alive for the whole test: if the test panics,
//! dropping it prints the tail of each required component's log and where the full logs are.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A real component of the local stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// Pravega standalone: controller gRPC and REST, segment store.
    Pravega,
    /// Prometheus scraping every part of the stack.
    Prometheus,
    /// Flink in reactive mode: a JobManager running one job, and TaskManagers.
    Flink,
    /// kube-apiserver with etcd, RBAC enforced.
    Kubernetes,
    /// A real single-node Kubernetes: kubelet, containerd, kube-proxy, CoreDNS.
    Cluster,
}

impl Component {
    /// The name `deploy/local/stack` uses.
    pub fn name(self) -> &'static str {
        match self {
            Component::Pravega => "pravega",
            Component::Prometheus => "prometheus",
            Component::Flink => "flink",
            Component::Kubernetes => "kubernetes",
            Component::Cluster => "cluster",
        }
    }
}

/// Endpoints and credentials of a running stack, as printed by `deploy/local/stack env`.
#[derive(Debug)]
pub struct Stack {
    /// `tcp://host:port` of the Pravega controller's gRPC endpoint.
    pub pravega_controller: String,
    /// Base URL of the Pravega controller's REST API (also serves `/prometheus`).
    pub pravega_rest_url: String,
    /// Base URL of Prometheus.
    pub prometheus_url: String,
    /// Base URL of the Flink JobManager's REST API.
    pub flink_rest_url: String,
    /// Kubeconfig of the stack's administrator (group system:masters).
    pub kubeconfig_admin: PathBuf,
    /// Kubeconfig of the autoscaler's restricted ServiceAccount.
    pub kubeconfig_restricted: PathBuf,
    /// Kubeconfig of the single-node cluster's administrator.
    pub cluster_kubeconfig: PathBuf,
    /// An image with busybox that the cluster's node holds (nothing can be pulled).
    pub cluster_probe_image: String,
    /// The network namespace the cluster's node lives in.
    pub cluster_netns: String,
    /// The `deploy/local/stack` script, for commands such as `taskmanagers N`.
    pub stack_script: PathBuf,
    /// The stack's kubectl (built with the API server).
    pub kubectl: PathBuf,
    /// The stack's promtool (from the Prometheus package).
    pub promtool: PathBuf,
    /// Where the components keep their logs and state.
    pub run_dir: PathBuf,
    required: Vec<Component>,
}

/// The repository's root: the nearest folder above this crate holding `deploy/local/stack`
/// (the support module is shared by the root package and the data generator).
pub fn repo_root() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    while !dir.join("deploy/local/stack").exists() {
        assert!(
            dir.pop(),
            "no deploy/local/stack above {}",
            env!("CARGO_MANIFEST_DIR")
        );
    }
    dir
}

/// How long a component may take to answer before the test gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(180);

impl Stack {
    /// Attaches to, or starts, the given components and waits until each one answers.
    pub async fn require(components: &[Component]) -> Stack {
        let stack = if std::env::var_os("STACK_SCRIPT").is_some() {
            Stack::from_env(components)
        } else {
            Stack::start(components)
        };
        for &component in components {
            stack.wait_ready(component).await;
        }
        stack
    }

    fn from_env(components: &[Component]) -> Stack {
        Stack::from_vars(components, |name| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: run `eval \"$(deploy/local/stack env)\"` or unset STACK_SCRIPT")
            })
        })
    }

    /// A stack described by the variables `deploy/local/stack env` prints.
    fn from_vars(components: &[Component], var: impl Fn(&str) -> String) -> Stack {
        Stack {
            pravega_controller: var("PRAVEGA_CONTROLLER"),
            pravega_rest_url: var("PRAVEGA_REST_URL"),
            prometheus_url: var("PROMETHEUS_URL"),
            flink_rest_url: var("FLINK_REST_URL"),
            kubeconfig_admin: var("KUBECONFIG").into(),
            kubeconfig_restricted: var("KUBECONFIG_RESTRICTED").into(),
            cluster_kubeconfig: var("CLUSTER_KUBECONFIG").into(),
            cluster_probe_image: var("CLUSTER_PROBE_IMAGE"),
            cluster_netns: var("CLUSTER_NETNS"),
            stack_script: var("STACK_SCRIPT").into(),
            kubectl: var("STACK_KUBECTL").into(),
            promtool: var("STACK_PROMTOOL").into(),
            run_dir: var("STACK_RUN_DIR").into(),
            required: components.to_vec(),
        }
    }

    /// Installs and starts the components with the stack script. Test binaries run one after
    /// another but tests inside one run on threads, so an exclusive file lock serializes this.
    fn start(components: &[Component]) -> Stack {
        let script = repo_root().join("deploy/local/stack");
        let lock_path = repo_root().join("target/stack-start.lock");
        std::fs::create_dir_all(lock_path.parent().unwrap()).expect("create target/");
        let lock: File = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .expect("open the stack start lock");
        lock.lock().expect("take the stack start lock");
        let names: Vec<&str> = components.iter().map(|c| c.name()).collect();
        for action in ["install", "up"] {
            let status = Command::new(&script)
                .arg(action)
                .args(&names)
                .status()
                .unwrap_or_else(|e| panic!("could not run {}: {e}", script.display()));
            assert!(
                status.success(),
                "`deploy/local/stack {action} {}` failed ({status})",
                names.join(" ")
            );
        }
        let env = Command::new(&script)
            .arg("env")
            .output()
            .expect("run `stack env`");
        drop(lock);
        let text = String::from_utf8(env.stdout).expect("`stack env` prints UTF-8");
        Stack::from_vars(components, |name| {
            text.lines()
                .find_map(|line| line.strip_prefix(&format!("export {name}=")))
                .unwrap_or_else(|| panic!("`stack env` printed no {name}"))
                .to_string()
        })
    }

    async fn wait_ready(&self, component: Component) {
        if matches!(component, Component::Kubernetes | Component::Cluster) {
            let kubeconfig = if component == Component::Cluster {
                &self.cluster_kubeconfig
            } else {
                &self.kubeconfig_admin
            };
            let client = self.kube_client(kubeconfig).await;
            let what = format!("kube-apiserver ({})", kubeconfig.display());
            eventually(&what, READY_TIMEOUT, || {
                let client = client.clone();
                async move {
                    client
                        .apiserver_version()
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string())
                }
            })
            .await;
            return;
        }
        if component == Component::Flink {
            // The job must be scheduled, not just the JobManager answer.
            flink::wait_scheduled(&self.flink_rest_url, READY_TIMEOUT).await;
            return;
        }
        let (what, url) = match component {
            Component::Pravega => (
                "the Pravega controller REST API",
                format!("{}/v1/scopes", self.pravega_rest_url),
            ),
            Component::Prometheus => ("Prometheus", format!("{}/-/ready", self.prometheus_url)),
            Component::Flink | Component::Kubernetes | Component::Cluster => {
                unreachable!("handled above")
            }
        };
        let http = reqwest::Client::new();
        eventually(&format!("{what} at {url}"), READY_TIMEOUT, || {
            let request = http.get(&url).timeout(Duration::from_secs(5));
            async move {
                let response = request.send().await.map_err(|e| e.to_string())?;
                let status = response.status();
                let body = response.text().await.map_err(|e| e.to_string())?;
                if status.is_success() {
                    Ok(())
                } else {
                    Err(format!("HTTP {status}: {body}"))
                }
            }
        })
        .await;
    }

    /// A Kubernetes client acting with the identity in `kubeconfig`.
    pub async fn kube_client(&self, kubeconfig: &Path) -> kube::Client {
        kubernetes::client(kubeconfig).await
    }

    /// Runs `deploy/local/stack ARGS...` and returns its standard output.
    pub fn stack_command(&self, args: &[&str]) -> String {
        self.stack_command_with(args, &[])
    }

    /// Restarts the stack's Flink, on the Flink version running now, with `class` of the
    /// project's job jar as its job (`args` its arguments) and one TaskManager; returns once the
    /// job runs.
    pub async fn restart_flink_with_job(&self, class: &str, args: &str) {
        self.restart_flink(&[("FLINK_JOB_CLASS", class), ("FLINK_JOB_ARGS", args)])
            .await;
    }

    /// Restarts the stack's Flink, on the Flink version running now, with one TaskManager and
    /// the stack's `FLINK_*` variables in `env` (else their defaults: the smoke job in reactive
    /// mode); returns once the job runs.
    pub async fn restart_flink(&self, env: &[(&str, &str)]) {
        let version = flink::version(&self.flink_rest_url)
            .await
            .expect("the running Flink's version");
        self.stack_command(&["down", "flink"]);
        let mut vars = vec![
            ("FLINK_VERSION", version.as_str()),
            ("FLINK_TASKMANAGERS", "1"),
        ];
        vars.extend_from_slice(env);
        self.stack_command_with(&["up", "flink"], &vars);
        self.wait_ready(Component::Flink).await;
    }

    /// [`Stack::stack_command`] with extra environment variables.
    pub fn stack_command_with(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let output = Command::new(&self.stack_script)
            .args(args)
            .env("SEGMENT_AUTOSCALER_RUN_DIR", &self.run_dir)
            .envs(env.iter().copied())
            .output()
            .unwrap_or_else(|e| panic!("could not run {}: {e}", self.stack_script.display()));
        assert!(
            output.status.success(),
            "`stack {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The process id the stack script recorded for `name` (e.g. `kube-apiserver`).
    pub fn recorded_pid(&self, name: &str) -> u32 {
        let file = self.run_dir.join("pids").join(format!("{name}.pid"));
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        text.split_whitespace()
            .next()
            .and_then(|pid| pid.parse().ok())
            .unwrap_or_else(|| panic!("{}: no process id in {text:?}", file.display()))
    }

    /// Every `*.log` file the required components write (each in its own run subdirectory).
    fn log_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for component in &self.required {
            let Ok(entries) = std::fs::read_dir(self.run_dir.join(component.name())) else {
                continue;
            };
            let mut logs: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
                .collect();
            logs.sort();
            files.extend(logs);
        }
        files
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        eprintln!(
            "\n=== the test failed; component logs are kept in {} ===",
            self.run_dir.display()
        );
        for file in self.log_files() {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!("--- last lines of {} ---", file.display());
            for line in &lines[lines.len().saturating_sub(25)..] {
                eprintln!("{line}");
            }
        }
    }
}

/// Polls `probe` every 250 ms until it returns `Some`; panics after `timeout`, naming `what`
/// and the last value seen.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        let last = match probe().await {
            Ok(value) => return value,
            Err(last) => last,
        };
        if start.elapsed() > timeout {
            panic!("{what}: not reached after {timeout:?}; last seen: {last}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The values of an instant PromQL query, one per series.
pub async fn prometheus_values(prometheus_url: &str, query: &str) -> Result<Vec<f64>, String> {
    let client =
        prometheus_http_query::Client::try_from(prometheus_url).map_err(|e| e.to_string())?;
    let answer = client.query(query).get().await.map_err(|e| e.to_string())?;
    let series = answer
        .data()
        .as_vector()
        .ok_or_else(|| format!("{query}: not an instant vector"))?;
    Ok(series.iter().map(|s| s.sample().value()).collect())
}

/// Runs `segment-autoscaler plan --output json` on `config` (YAML) and returns its records;
/// panics, with its log, if it does not exit 0 (plan is bounded by its reconcile_timeout).
pub fn plan_records(name: &str, config: &str) -> serde_json::Value {
    let dir = repo_root().join("target/test-autoscaler");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.plan.yaml"));
    std::fs::write(&path, config).unwrap();
    let Some(binary) = option_env!("CARGO_BIN_EXE_segment-autoscaler") else {
        panic!("plan_records is for the root package's tests (no segment-autoscaler binary here)")
    };
    let output = Command::new(binary)
        .args(["plan", "--output", "json", "--config"])
        .arg(&path)
        .output()
        .expect("run plan");
    assert!(
        output.status.success(),
        "plan failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("plan prints JSON")
}

/// Asserts that every line of `logs` is a JSON object with a level and a timestamp, as the
/// binaries log with `--log-format json`.
pub fn assert_json_logs(logs: &str) {
    for line in logs.lines() {
        let entry: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert!(
            entry["level"].is_string() && entry["timestamp"].is_string(),
            "{line}"
        );
    }
}

/// A name unique to this test run, for scopes, streams and Kubernetes objects.
pub fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}{}", nanos % 1_000_000_000_000)
}

/// Pravega helpers on the real controller.
pub mod pravega {
    use pravega_client_config::ClientConfigBuilder;
    use pravega_client_shared::{
        PravegaNodeUri, Retention, ScaleType, Scaling, Scope, ScopedStream, Stream,
        StreamConfiguration,
    };
    use pravega_controller_client::{ControllerClient, ControllerClientImpl};

    /// A controller client for `tcp://host:port`.
    pub fn controller(endpoint: &str) -> ControllerClientImpl {
        let config = ClientConfigBuilder::default()
            .controller_uri(PravegaNodeUri::from(endpoint.trim_start_matches("tcp://")))
            .build()
            .expect("client config");
        ControllerClientImpl::new(config, &tokio::runtime::Handle::current())
    }

    /// Creates `scope/stream` with one segment and a fixed scaling policy (segments change only
    /// through [`scale_to`]).
    pub async fn create_stream(
        controller: &ControllerClientImpl,
        scope: &str,
        stream: &str,
    ) -> ScopedStream {
        let scoped = ScopedStream {
            scope: Scope::from(scope.to_string()),
            stream: Stream::from(stream.to_string()),
        };
        controller
            .create_scope(&scoped.scope)
            .await
            .expect("create scope");
        controller
            .create_stream(&StreamConfiguration {
                scoped_stream: scoped.clone(),
                scaling: Scaling {
                    scale_type: ScaleType::FixedNumSegments,
                    target_rate: 0,
                    scale_factor: 0,
                    min_num_segments: 1,
                },
                retention: Retention::default(),
                tags: None,
            })
            .await
            .expect("create stream");
        scoped
    }

    /// Active segments, over gRPC.
    pub async fn segment_count(controller: &ControllerClientImpl, stream: &ScopedStream) -> usize {
        try_segment_count(controller, stream)
            .await
            .expect("current segments")
    }

    /// Active segments, over gRPC, or why they could not be read (e.g. no such stream yet).
    pub async fn try_segment_count(
        controller: &ControllerClientImpl,
        stream: &ScopedStream,
    ) -> Result<usize, String> {
        let segments = controller
            .get_current_segments(stream)
            .await
            .map_err(|e| e.to_string())?;
        Ok(segments.get_segments().len())
    }

    /// Seals every active segment and replaces them with `n` equal key ranges; returns once the
    /// controller has completed the scale.
    pub async fn scale_to(controller: &ControllerClientImpl, stream: &ScopedStream, n: usize) {
        let current = controller
            .get_current_segments(stream)
            .await
            .expect("current segments");
        let sealed: Vec<_> = current
            .key_segment_map
            .values()
            .map(|s| s.get_segment())
            .collect();
        let ranges: Vec<(f64, f64)> = (0..n)
            .map(|i| (i as f64 / n as f64, (i + 1) as f64 / n as f64))
            .collect();
        controller
            .scale_stream(stream, &sealed, &ranges)
            .await
            .expect("scale the stream");
        assert_eq!(
            segment_count(controller, stream).await,
            n,
            "the stream has {n} segments after the scale"
        );
    }
}

/// Sends `signal` (a name such as `STOP`) to process `pid`.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// A process stopped with SIGSTOP until this guard is dropped, so that a failing test never
/// leaves a component frozen for the tests after it.
pub struct Frozen(u32);

impl Frozen {
    /// Stops `pid`.
    pub fn freeze(pid: u32) -> Frozen {
        send_signal(pid, "STOP");
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        send_signal(self.0, "CONT");
    }
}

/// A `segment-autoscaler run` child process, killed when dropped.
pub struct AutoscalerProcess {
    child: std::process::Child,
    /// Where it serves `/metrics`.
    pub metrics_url: String,
    /// Its log file.
    pub log: PathBuf,
}

impl AutoscalerProcess {
    /// Starts `segment-autoscaler run` with `config` (YAML, without a `telemetry` section: a
    /// free port is chosen here), logging to a file under `target/`.
    pub fn start(name: &str, config: &str) -> AutoscalerProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = repo_root().join("target/test-autoscaler");
        std::fs::create_dir_all(&dir).unwrap();
        let config_path = dir.join(format!("{name}.yaml"));
        std::fs::write(
            &config_path,
            format!("{config}\ntelemetry: {{listen: \"127.0.0.1:{port}\"}}\n"),
        )
        .unwrap();
        let log = dir.join(format!("{name}.log"));
        // Only the root package's tests have the binary; the data generator's never start it.
        let Some(binary) = option_env!("CARGO_BIN_EXE_segment-autoscaler") else {
            panic!("AutoscalerProcess is for the root package's tests (no segment-autoscaler binary here)")
        };
        let child = Command::new(binary)
            .args(["run", "--config"])
            .arg(&config_path)
            .stdout(File::create(&log).unwrap())
            .stderr(File::options().append(true).open(&log).unwrap())
            .spawn()
            .expect("start segment-autoscaler");
        AutoscalerProcess {
            child,
            metrics_url: format!("http://127.0.0.1:{port}/metrics"),
            log,
        }
    }

    /// The value of the first sample whose line starts with `series` (name and labels).
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = reqwest::get(&self.metrics_url)
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    /// The sum of every sample whose line starts with `series` (0 when there is none).
    pub async fn metric_sum(&self, series: &str) -> f64 {
        let Ok(response) = reqwest::get(&self.metrics_url).await else {
            return 0.0;
        };
        let text = response.text().await.unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with(series))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// The HTTP status and body of `path` (e.g. `/readyz`) on its telemetry listener.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let url = self.metrics_url.replace("/metrics", path);
        let response = reqwest::get(&url).await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    }

    /// Waits until it reports the Flink job aligned at `parallelism` (`job_parallelism` and
    /// `job_aligned` 1).
    pub async fn wait_aligned(&self, parallelism: f64) {
        eventually(
            &format!("job aligned at parallelism {parallelism}"),
            Duration::from_secs(120),
            || async {
                let running = self.metric("segment_autoscaler_job_parallelism{").await;
                let aligned = self.metric("segment_autoscaler_job_aligned{").await;
                match (running, aligned) {
                    (Some(p), Some(a)) if p == parallelism && a == 1.0 => Ok(()),
                    other => Err(format!("(job_parallelism, job_aligned) = {other:?}")),
                }
            },
        )
        .await;
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for it to exit; `None` if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Sends SIGTERM and waits for a graceful exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        self.child.wait().expect("wait for segment-autoscaler")
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for AutoscalerProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- log of segment-autoscaler ({}) ---\n{}",
                self.log.display(),
                self.log_text()
            );
        }
    }
}

/// Kubernetes helpers on the real API server.
pub mod kubernetes {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Event;
    use kube::api::{Api, Patch, PatchParams, PostParams};
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
        super::eventually(
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
    pub async fn taskmanagers_at_one(stack: &super::Stack) -> (Api<Deployment>, Api<Event>) {
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
}

/// The Flink job as its JobManager's REST API reports it.
pub mod flink {
    use std::time::Duration;

    use segment_autoscaler::flink::{FlinkClient, JobSchedule, JobStatus};
    use serde_json::Value;

    /// What the JobManager says of its cluster and job.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct FlinkView {
        /// Registered TaskManagers.
        pub taskmanagers: u64,
        /// The (unfinished) job's state, e.g. `RUNNING`.
        pub state: String,
        /// The parallelism of each of the job's vertices.
        pub parallelism: Vec<u64>,
        /// Subtasks that have finished (a streaming job's should never: a finished subtask
        /// keeps the job at a parallelism its TaskManagers no longer give).
        pub finished_subtasks: u64,
        /// Subtasks not RUNNING (still being deployed or initialized, finished or failed):
        /// Flink calls a job RUNNING before all of its tasks are.
        pub subtasks_not_running: u64,
    }

    impl FlinkView {
        /// Whether `n` TaskManagers are registered and the job runs with every vertex at `n`.
        pub fn aligned_at(&self, n: u64) -> bool {
            self.taskmanagers == n && self.runs_at(n)
        }

        /// Whether the job runs with every vertex at `n`, every subtask RUNNING.
        pub fn runs_at(&self, n: u64) -> bool {
            self.state == "RUNNING"
                && !self.parallelism.is_empty()
                && self.parallelism.iter().all(|&p| p == n)
                && self.finished_subtasks == 0
                && self.subtasks_not_running == 0
        }
    }

    async fn get(http: &reqwest::Client, url: String) -> Result<Value, String> {
        http.get(&url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?
            .json::<Value>()
            .await
            .map_err(|e| format!("{url}: {e}"))
    }

    /// The version the JobManager at `rest` runs (e.g. `2.3.0`).
    pub async fn version(rest: &str) -> Result<String, String> {
        let overview = get(&client()?, format!("{rest}/overview")).await?;
        overview["flink-version"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no flink-version in {overview}"))
    }

    fn client() -> Result<reqwest::Client, String> {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())
    }

    /// The id of the checkpoint the running job last restored from, if any.
    pub async fn restored_checkpoint(rest: &str) -> Result<Option<u64>, String> {
        let http = client()?;
        let id = running_job(&http, rest).await?;
        let stats = get(&http, format!("{rest}/jobs/{id}/checkpoints")).await?;
        Ok(stats["latest"]["restored"]["id"].as_u64())
    }

    async fn running_job(http: &reqwest::Client, rest: &str) -> Result<String, String> {
        let jobs = get(http, format!("{rest}/jobs/overview")).await?;
        jobs["jobs"]
            .as_array()
            .and_then(|jobs| jobs.iter().find(|j| j["state"] == "RUNNING"))
            .and_then(|j| j["jid"].as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("no running job: {jobs}"))
    }

    /// The sums over subtasks of the metrics `names` of the running job's first vertex whose
    /// name starts with `vertex`, by name (the operator's metrics are named `OPERATOR.NAME`).
    pub async fn vertex_metric_sums(
        rest: &str,
        vertex: &str,
        names: &[&str],
    ) -> Result<std::collections::BTreeMap<String, f64>, String> {
        let http = client()?;
        let id = running_job(&http, rest).await?;
        let details = get(&http, format!("{rest}/jobs/{id}")).await?;
        let vertex_id = details["vertices"]
            .as_array()
            .and_then(|v| {
                v.iter()
                    .find(|v| v["name"].as_str().is_some_and(|n| n.starts_with(vertex)))
            })
            .and_then(|v| v["id"].as_str())
            .ok_or_else(|| format!("no vertex named {vertex}...: {details}"))?
            .to_string();
        let answer = get(
            &http,
            format!(
                "{rest}/jobs/{id}/vertices/{vertex_id}/subtasks/metrics?get={}&agg=sum",
                names.join(",")
            ),
        )
        .await?;
        let sums: std::collections::BTreeMap<String, f64> = answer
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| Some((m["id"].as_str()?.to_string(), m["sum"].as_f64()?)))
            .collect();
        match names.iter().find(|n| !sums.contains_key(**n)) {
            Some(missing) => Err(format!("no {missing} in {answer}")),
            None => Ok(sums),
        }
    }

    /// Reads `/overview`, `/jobs/overview` and the job's details from the REST API at `rest`.
    pub async fn view(rest: &str) -> Result<FlinkView, String> {
        let http = client()?;
        let overview = get(&http, format!("{rest}/overview")).await?;
        let jobs = get(&http, format!("{rest}/jobs/overview")).await?;
        let job = jobs["jobs"]
            .as_array()
            .and_then(|jobs| jobs.iter().find(|j| j["state"] != "FINISHED"))
            .ok_or_else(|| format!("no job: {jobs}"))?;
        let id = job["jid"].as_str().ok_or("a job without id")?;
        let details = get(&http, format!("{rest}/jobs/{id}")).await?;
        Ok(FlinkView {
            taskmanagers: overview["taskmanagers"].as_u64().unwrap_or(0),
            state: details["state"].as_str().unwrap_or("?").to_string(),
            parallelism: details["vertices"]
                .as_array()
                .map(|v| v.iter().filter_map(|v| v["parallelism"].as_u64()).collect())
                .unwrap_or_default(),
            finished_subtasks: details["vertices"]
                .as_array()
                .map(|v| {
                    v.iter()
                        .filter_map(|v| v["tasks"]["FINISHED"].as_u64())
                        .sum()
                })
                .unwrap_or_default(),
            subtasks_not_running: details["vertices"]
                .as_array()
                .map(|v| {
                    v.iter()
                        .map(|v| {
                            let parallelism = v["parallelism"].as_u64().unwrap_or(0);
                            let running = v["tasks"]["RUNNING"].as_u64().unwrap_or(0);
                            parallelism.saturating_sub(running)
                        })
                        .sum()
                })
                .unwrap_or_default(),
        })
    }

    /// Waits until the JobManager at `rest` runs its job with every task RUNNING (not created,
    /// waiting for resources, restarting or being deployed), as the autoscaler reads it.
    pub async fn wait_scheduled(rest: &str, timeout: Duration) -> JobStatus {
        let client = FlinkClient::new(rest, Duration::from_secs(5));
        super::eventually(
            &format!("the Flink job at {rest} scheduled (RUNNING, every task running)"),
            timeout,
            || async {
                let job = client.job_status().await.map_err(|e| e.to_string())?;
                match &job.schedule {
                    JobSchedule::Running { .. } => Ok(job),
                    JobSchedule::Between(why) => Err(why.to_string()),
                }
            },
        )
        .await
    }

    /// Waits until the job at `rest` runs with every vertex at `parallelism` (see
    /// [`FlinkView::runs_at`]).
    pub async fn wait_runs_at(rest: &str, parallelism: u64, timeout: Duration) {
        super::eventually(
            &format!("the job RUNNING at parallelism {parallelism}"),
            timeout,
            || async {
                let job = view(rest).await?;
                if job.runs_at(parallelism) {
                    Ok(())
                } else {
                    Err(format!("{job:?}"))
                }
            },
        )
        .await;
    }
}

/// deploy/k8s on the single-node cluster (the `cluster` component), through deploy/local/k8s.
pub mod cluster {
    use std::path::Path;
    use std::time::Duration;

    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Event, Namespace, Pod, Service};
    use kube::api::{Api, DeleteParams, ListParams};

    use super::kubernetes::kubectl;
    use super::{eventually, flink, pravega, repo_root, Stack};

    /// The namespace deploy/k8s uses.
    pub const NAMESPACE: &str = "segment-autoscaler-demo";
    /// The TaskManager Deployment the autoscaler scales.
    pub const TASKMANAGERS: &str = "flink-taskmanager";

    /// Writes into `dir` (two levels below the repository root, e.g. target/NAME) a kustomization
    /// of deploy/local/k8s with the data generator at zero replicas, so only the caller changes
    /// the stream's segments, and with `components` (paths from the repository root).
    fn write_overlay_without_generator(dir: &Path, components: &[&str]) {
        std::fs::create_dir_all(dir).unwrap();
        let components: Vec<String> = components.iter().map(|c| format!("../../{c}")).collect();
        std::fs::write(
            dir.join("kustomization.yaml"),
            format!(
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
                 resources: [../../deploy/local/k8s]\n\
                 components: [{}]\n\
                 replicas: [{{name: data-generator, count: 0}}]\n",
                components.join(", ")
            ),
        )
        .unwrap();
    }

    /// The demo stack's Pravega controller (`tcp://IP:9090`) and Flink REST API
    /// (`http://IP:8081`), through their Services' cluster IPs (the host routes them).
    pub async fn endpoints(services: &Api<Service>) -> (String, String) {
        (
            format!("tcp://{}:9090", service_ip(services, "pravega").await),
            format!(
                "http://{}:8081",
                service_ip(services, "flink-jobmanager").await
            ),
        )
    }

    /// A Service's cluster IP.
    async fn service_ip(services: &Api<Service>, name: &str) -> String {
        services
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("Service {name}: {e}"))
            .spec
            .and_then(|s| s.cluster_ip)
            .unwrap_or_else(|| panic!("Service {name} has a cluster IP"))
    }

    /// Creates `scope/stream` with one segment if missing, then scales it to `n` segments
    /// unless `n` is `None`, through the controller at `tcp://IP:PORT` (the host routes the
    /// cluster's pod and Service addresses to the node).
    pub async fn stream_segments(controller: &str, scope: &str, stream: &str, n: Option<usize>) {
        let client = pravega::controller(controller);
        let stream = pravega::create_stream(&client, scope, stream).await;
        if let Some(n) = n {
            pravega::scale_to(&client, &stream, n).await;
        }
    }

    /// Waits until the TaskManager Deployment asks for and has `taskmanagers` Ready pods, as
    /// many are registered with the JobManager, and the job runs with every vertex at
    /// `parallelism`; returns how long that took.
    pub async fn wait_running(
        deployments: &Api<Deployment>,
        flink_rest: &str,
        taskmanagers: i32,
        parallelism: u64,
        timeout: Duration,
    ) -> Duration {
        let start = std::time::Instant::now();
        eventually(
            &format!(
                "{taskmanagers} Ready TaskManager pods and the job RUNNING at parallelism \
                 {parallelism}"
            ),
            timeout,
            || async {
                let status = deployments
                    .get(TASKMANAGERS)
                    .await
                    .map_err(|e| e.to_string())?
                    .status
                    .unwrap_or_default();
                let job = flink::view(flink_rest).await?;
                if status.replicas == Some(taskmanagers)
                    && status.ready_replicas == Some(taskmanagers)
                    && job.taskmanagers == taskmanagers as u64
                    && job.runs_at(parallelism)
                {
                    Ok(())
                } else {
                    Err(format!(
                        "replicas {:?}, Ready {:?}, Flink {job:?}",
                        status.replicas, status.ready_replicas
                    ))
                }
            },
        )
        .await;
        start.elapsed()
    }

    /// The Events the autoscaler recorded in the namespace of `events`.
    pub async fn autoscaler_events(events: &Api<Event>) -> Vec<Event> {
        events
            .list(&ListParams::default())
            .await
            .expect("list Events")
            .items
            .into_iter()
            .filter(|e| e.reporting_component.as_deref() == Some("segment-autoscaler"))
            .collect()
    }

    /// Whether a pod's Ready condition is true.
    pub fn is_ready(pod: &Pod) -> bool {
        pod.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    }

    /// Ok when every Deployment has all the pods it asks for Ready and the JobManager's pod is
    /// Ready; otherwise what is not.
    pub async fn every_workload_ready(
        deployments: &Api<Deployment>,
        pods: &Api<Pod>,
    ) -> Result<(), String> {
        let mut waiting = Vec::new();
        for deployment in deployments
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
        {
            let name = deployment.metadata.name.unwrap_or_default();
            let wanted = deployment.spec.and_then(|s| s.replicas).unwrap_or(1);
            let ready = deployment
                .status
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0);
            if ready != wanted {
                waiting.push(format!("{name} {ready}/{wanted}"));
            }
        }
        let jobmanager = pods
            .list(&ListParams::default().labels("component=jobmanager"))
            .await
            .map_err(|e| e.to_string())?;
        if !jobmanager.items.iter().any(is_ready) {
            waiting.push("flink-jobmanager".into());
        }
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(format!("not Ready: {}", waiting.join(", ")))
        }
    }

    /// Applies deploy/local/k8s with the data generator at zero replicas and `components`
    /// (e.g. deploy/k8s/prewarmed; its kustomization written to target/`name`; a namespace left
    /// by an earlier run deleted first) and waits until every workload is Ready; returns how
    /// long that took after the apply.
    pub async fn deploy_without_generator(
        stack: &Stack,
        client: &kube::Client,
        name: &str,
        components: &[&str],
    ) -> Duration {
        let namespaces: Api<Namespace> = Api::all(client.clone());
        delete_namespace(&namespaces).await;
        let overlay = repo_root().join("target").join(name);
        write_overlay_without_generator(&overlay, components);
        let applied = kubectl(
            &stack.kubectl,
            &stack.cluster_kubeconfig,
            &["apply", "-k", overlay.to_str().unwrap()],
            "",
        );
        assert!(
            applied.status.success(),
            "kubectl apply -k: {}",
            String::from_utf8_lossy(&applied.stderr)
        );
        let applied_at = std::time::Instant::now();
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
        let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
        eventually("every workload Ready", Duration::from_secs(600), || {
            every_workload_ready(&deployments, &pods)
        })
        .await;
        applied_at.elapsed()
    }

    /// Deletes the namespace, if there, and waits until it is gone.
    pub async fn delete_namespace(namespaces: &Api<Namespace>) {
        if namespaces.get_opt(NAMESPACE).await.unwrap().is_none() {
            return;
        }
        let _ = namespaces.delete(NAMESPACE, &DeleteParams::default()).await;
        eventually("the namespace gone", Duration::from_secs(180), || async {
            match namespaces.get_opt(NAMESPACE).await {
                Ok(None) => Ok(()),
                other => Err(format!("{:?}", other.map(|n| n.and_then(|n| n.status)))),
            }
        })
        .await;
    }
}

/// A TCP proxy in front of a real component, to cut it off from the autoscaler (as a network
/// partition or a crashed process behind its Service would) while it keeps running for
/// everything else, or to answer HTTP garbage in its place.
pub mod proxy {
    use std::sync::{Arc, Mutex};

    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    /// What the proxy does with a connection.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Mode {
        /// Forward to the upstream.
        Forward,
        /// Close every connection at once, open ones included.
        Cut,
        /// Answer every HTTP request with a 200 whose body is not JSON.
        Garbage,
    }

    /// A running proxy; it stops with the test's runtime.
    pub struct Proxy {
        /// `host:port` to point the autoscaler at.
        pub address: String,
        mode: Arc<Mutex<(Mode, u64)>>,
    }

    impl Proxy {
        /// Starts forwarding a local port to `upstream` (`host:port`).
        pub async fn start(upstream: &str) -> Proxy {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap().to_string();
            // The mode and a generation: a change of mode ends the connections of the last.
            let mode = Arc::new(Mutex::new((Mode::Forward, 0u64)));
            let shared = mode.clone();
            let upstream = upstream.to_string();
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let (mode, generation) = *shared.lock().unwrap();
                    let shared = shared.clone();
                    let upstream = upstream.clone();
                    tokio::spawn(async move {
                        serve(client, mode, generation, shared, &upstream).await;
                    });
                }
            });
            Proxy { address, mode }
        }

        /// Switches the mode; open connections are closed.
        pub fn set(&self, mode: Mode) {
            let mut current = self.mode.lock().unwrap();
            *current = (mode, current.1 + 1);
        }
    }

    async fn serve(
        mut client: TcpStream,
        mode: Mode,
        generation: u64,
        shared: Arc<Mutex<(Mode, u64)>>,
        upstream: &str,
    ) {
        match mode {
            Mode::Cut => {}
            Mode::Garbage => {
                let mut request = [0u8; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut client, &mut request).await;
                let body = "<html>surprise</html>";
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = client.write_all(answer.as_bytes()).await;
            }
            Mode::Forward => {
                let Ok(mut server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let changed = async {
                    while shared.lock().unwrap().1 == generation {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    _ = changed => {}
                }
            }
        }
    }
}

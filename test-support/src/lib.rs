//! Test support: the real components of the local stack (`deploy/local/stack`), shared by the
//! tests and benchmarks of every package, with one module per system: [`pravega`], [`flink`],
//! [`prometheus`], [`kubernetes`] (the API server), [`cluster`] (the single-node Kubernetes),
//! [`autoscaler`] (the binary as a process), [`config`] (its configuration), [`proxy`] (a
//! fault-injecting TCP proxy) and [`secured`] (the stack with TLS and authentication on).
//! Features `pravega`, `flink` and `kubernetes` (all on by default) keep a package that needs
//! only part of the stack (`demo-report`) free of the others' crates.
//!
//! Shared fixtures, such as the API server's `flink/flink-taskmanager` Deployment, are safe only
//! because cargo runs one test binary at a time: each binary guards its own tests (a mutex);
//! nothing guards two binaries run concurrently.
//!
//! A test asks for the components it needs with [`Stack::require`]. When the variables printed
//! by `deploy/local/stack env` are set (the project's test command sets them), the test attaches
//! to that running stack; otherwise the components are installed and started here, once, and
//! left running for the next test run (`deploy/local/stack down` stops them).
//!
//! Either way every component is checked for readiness with a timeout and a message that says
//! what did not answer. Keep the returned [`Stack`] alive for the whole test: if the test panics,
//! dropping it prints the tail of each required component's log and where the full logs are.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub mod autoscaler;
#[cfg(all(feature = "kubernetes", feature = "pravega", feature = "flink"))]
pub mod cluster;
pub mod config;
#[cfg(feature = "flink")]
pub mod flink;
#[cfg(feature = "kubernetes")]
pub mod kubernetes;
#[cfg(feature = "pravega")]
pub mod pravega;
pub mod prometheus;
pub mod proxy;
pub mod secured;

pub use autoscaler::{assert_json_logs, plan_records, send_signal, AutoscalerProcess, Frozen};
pub use prometheus::prometheus_values;

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
    /// The stack's helm (built with the API server).
    pub helm: PathBuf,
    /// The stack's promtool (from the Prometheus package).
    pub promtool: PathBuf,
    /// Where the components keep their logs and state.
    pub run_dir: PathBuf,
    required: Vec<Component>,
}

/// The repository's root: the nearest folder above this crate holding `deploy/local/stack`.
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

/// Runs `command` (`what` names it in a failure) and returns its standard output; panics, with
/// its standard error, unless it exits 0.
pub fn stdout_of(command: &mut Command, what: &str) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("could not run {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A binary of the workspace (`segment-autoscaler`, `data-generator`) that cargo built for the
/// running test or benchmark: cargo names it in `CARGO_BIN_EXE_<name>` while it runs its own
/// package's tests; otherwise it is beside the test's directory (`target/<profile>/deps/..`),
/// where `cargo build --workspace --bins` (the test command's first step) puts it.
pub fn workspace_binary(name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(format!("CARGO_BIN_EXE_{name}")) {
        return path.into();
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join(name)));
    match beside {
        Some(path) if path.exists() => path,
        _ => panic!("no {name} binary: build it first (cargo build --workspace --bins)"),
    }
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
    pub(crate) fn from_vars(components: &[Component], var: impl Fn(&str) -> String) -> Stack {
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
            helm: var("STACK_HELM").into(),
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
            self.wait_apiserver(kubeconfig).await;
            return;
        }
        if component == Component::Flink {
            self.wait_scheduled().await;
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

    #[cfg(feature = "kubernetes")]
    async fn wait_apiserver(&self, kubeconfig: &Path) {
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
    }

    #[cfg(not(feature = "kubernetes"))]
    async fn wait_apiserver(&self, _: &Path) {
        panic!("test-support is built without its kubernetes feature");
    }

    /// The job must be scheduled, not just the JobManager answer.
    #[cfg(feature = "flink")]
    async fn wait_scheduled(&self) {
        flink::wait_scheduled(&self.flink_rest_url, READY_TIMEOUT).await;
    }

    #[cfg(not(feature = "flink"))]
    async fn wait_scheduled(&self) {
        panic!("test-support is built without its flink feature");
    }

    /// A Kubernetes client acting with the identity in `kubeconfig`.
    #[cfg(feature = "kubernetes")]
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
    #[cfg(feature = "flink")]
    pub async fn restart_flink_with_job(&self, class: &str, args: &str) {
        self.restart_flink(&[("FLINK_JOB_CLASS", class), ("FLINK_JOB_ARGS", args)])
            .await;
    }

    /// Restarts the stack's Flink, on the Flink version running now, with one TaskManager and
    /// the stack's `FLINK_*` variables in `env` (else their defaults: the smoke job in reactive
    /// mode); returns once the job runs.
    #[cfg(feature = "flink")]
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
        stdout_of(
            Command::new(&self.stack_script)
                .args(args)
                .env("SEGMENT_AUTOSCALER_RUN_DIR", &self.run_dir)
                .envs(env.iter().copied()),
            &format!("`stack {}`", args.join(" ")),
        )
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

/// A loopback port free at the time of the call, for a child process to listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A name unique to this test run, for scopes, streams and Kubernetes objects.
pub fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}{}", nanos % 1_000_000_000_000)
}

//! The autoscaler as a process: `plan` runs, `run` children with their metrics and logs, and
//! signals.

use std::fs::File;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{eventually, repo_root};

fn binary() -> PathBuf {
    crate::workspace_binary("segment-autoscaler")
}

/// Runs `segment-autoscaler plan --output json` on `config` (YAML) and returns its records;
/// panics, with its log, if it does not exit 0 (plan is bounded by its reconcile_timeout).
pub fn plan_records(name: &str, config: &str) -> serde_json::Value {
    let dir = repo_root().join("target/test-autoscaler");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.plan.yaml"));
    std::fs::write(&path, config).unwrap();
    let stdout = crate::stdout_of(
        Command::new(binary())
            .args(["plan", "--output", "json", "--config"])
            .arg(&path),
        "segment-autoscaler plan",
    );
    serde_json::from_str(&stdout).expect("plan prints JSON")
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
        let port = crate::free_port();
        let dir = repo_root().join("target/test-autoscaler");
        std::fs::create_dir_all(&dir).unwrap();
        let config_path = dir.join(format!("{name}.yaml"));
        std::fs::write(
            &config_path,
            format!("{config}\ntelemetry: {{listen: \"127.0.0.1:{port}\"}}\n"),
        )
        .unwrap();
        let log = dir.join(format!("{name}.log"));
        let binary = binary();
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
        self.samples(series).await?.first().copied()
    }

    /// The sum of every sample whose line starts with `series` (0 when there is none).
    pub async fn metric_sum(&self, series: &str) -> f64 {
        self.samples(series).await.unwrap_or_default().iter().sum()
    }

    /// The value of every sample whose line starts with `series`, in the page's order; None
    /// when the page cannot be read.
    async fn samples(&self, series: &str) -> Option<Vec<f64>> {
        let text = reqwest::get(&self.metrics_url)
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        Some(
            text.lines()
                .filter(|l| l.starts_with(series))
                .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
                .collect(),
        )
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

    /// Waits until the first sample of `series` reads `value`; panics after `timeout`, naming
    /// `what`.
    pub async fn wait_metric(&self, series: &str, value: f64, what: &str, timeout: Duration) {
        eventually(what, timeout, || async {
            match self.metric(series).await {
                Some(v) if v == value => Ok(()),
                other => Err(format!("{series}= {other:?}")),
            }
        })
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

/// The leader gauge's series.
pub const LEADER: &str = "segment_autoscaler_leader ";

/// Waits until exactly one of `candidates` reports leading (every other one standing by);
/// returns its index.
pub async fn single_leader(candidates: &[&AutoscalerProcess], timeout: Duration) -> usize {
    eventually("exactly one leader", timeout, || async {
        let mut states = Vec::new();
        for c in candidates {
            states.push(c.metric(LEADER).await);
        }
        let leaders: Vec<usize> = states
            .iter()
            .enumerate()
            .filter(|(_, s)| **s == Some(1.0))
            .map(|(i, _)| i)
            .collect();
        match leaders.as_slice() {
            [one] if states.iter().all(Option::is_some) => Ok(*one),
            _ => Err(format!("leader gauges {states:?}")),
        }
    })
    .await
}

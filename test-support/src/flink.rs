//! The Flink job as its JobManager's REST API reports it.

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

/// The running job and its latest checkpoints, from its checkpoint statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoints {
    /// The job's id.
    pub job: String,
    /// The latest completed checkpoint, if any.
    pub completed: Option<u64>,
    /// The checkpoint the job last restored from, if any.
    pub restored: Option<u64>,
}

/// The running job's latest completed and restored checkpoints.
pub async fn checkpoints(rest: &str) -> Result<Checkpoints, String> {
    let http = client()?;
    let job = running_job(&http, rest).await?;
    let stats = get(&http, format!("{rest}/jobs/{job}/checkpoints")).await?;
    Ok(Checkpoints {
        completed: stats["latest"]["completed"]["id"].as_u64(),
        restored: stats["latest"]["restored"]["id"].as_u64(),
        job,
    })
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
    crate::eventually(
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
    crate::eventually(
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

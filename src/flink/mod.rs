//! The Flink client: the job's status and the JobManager's settings, read while observing,
//! and the job's parallelism requirement, read and written in the prewarmed mode (the
//! JobManager's REST API).
//!
//! The job's status is read at the start of each reconciliation, beside the segments and the
//! target's replicas: its max parallelism bounds the plan, and [`crate::verify`] compares its
//! parallelism with the plan's.

pub mod timers;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::ErrorReason;
use crate::http::{self, ClientSecurity, NoAnswer};
pub use timers::RescaleTimers;

/// Why the job's state could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FlinkError {
    /// The REST API did not answer in time.
    #[error("flink {url}: no answer within {after:?}")]
    Timeout {
        /// The URL asked.
        url: String,
        /// The timeout.
        after: Duration,
    },
    /// The REST API could not be reached.
    #[error("flink {url}: {message}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The TLS handshake failed.
    #[error("flink {url}: TLS handshake failed: {message} (see {settings})")]
    Tls {
        /// The URL asked.
        url: String,
        /// Why, in the TLS stack's words.
        message: String,
        /// The configuration that decides it, e.g. `bindings[0].flink.tls`.
        settings: String,
    },
    /// The REST API answered with an error status.
    #[error("flink {url}: HTTP {status}{}", if detail.is_empty() { String::new() } else { format!(": {detail}") })]
    Status {
        /// The URL asked.
        url: String,
        /// The status code.
        status: u16,
        /// What Flink said: its `errors`, without exception classes and stack traces; empty when
        /// nothing.
        detail: String,
    },
    /// The answer did not have the expected shape.
    #[error("flink {url}: unexpected answer: {message}")]
    BadAnswer {
        /// The URL asked.
        url: String,
        /// What is missing or wrong.
        message: String,
    },
    /// No job is running or restarting.
    #[error("flink {url}: no job that is running or about to run")]
    NoJob {
        /// The URL asked.
        url: String,
    },
}

impl FlinkError {
    /// A bounded label for the failure.
    pub fn reason(&self) -> ErrorReason {
        match self {
            FlinkError::Timeout { .. } => ErrorReason::Timeout,
            FlinkError::Unreachable { .. } => ErrorReason::Unreachable,
            FlinkError::Tls { .. } => ErrorReason::Tls,
            FlinkError::Status { status, .. } => ErrorReason::of_http_status(*status),
            FlinkError::BadAnswer { .. } => ErrorReason::InvalidAnswer,
            FlinkError::NoJob { .. } => ErrorReason::NotFound,
        }
    }
}

/// The job as its JobManager reports it: which job, its state, and the parallelism its source
/// runs at, or why that is not known now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobStatus {
    /// Flink's job id.
    pub job_id: String,
    /// e.g. `RUNNING`, `RESTARTING`, `CREATED`.
    pub state: String,
    /// Max parallelism of the source vertex; None while Flink reports no vertex.
    pub max_parallelism: Option<u32>,
    /// Whether the adaptive scheduler runs the job (reactive mode does), whose timers
    /// ([`RescaleTimers`]) decide when it uses a TaskManager change; None when the REST API
    /// does not say (Flink 1.x), see [`FlinkClient::jobmanager_settings`].
    pub adaptive: Option<bool>,
    /// Whether the job runs, and at what, or is between two schedules.
    pub schedule: JobSchedule,
}

/// Whether a job runs, with its source vertex, or is between two schedules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum JobSchedule {
    /// RUNNING with every task deployed: `parallelism` is what the source really runs at.
    Running {
        /// The source vertex's id.
        source_vertex: String,
        /// Parallelism of the source vertex (the Pravega readers).
        parallelism: u32,
    },
    /// Created, waiting for resources, restarting, or its tasks still being deployed: the
    /// parallelism Flink shows meanwhile is not one the job runs at (each vertex at its max
    /// parallelism while a restart is prepared, or no vertex at all), so it is unknown.
    Between(BetweenSchedules),
}

/// Why a job is between two schedules (see [`JobSchedule::Between`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum BetweenSchedules {
    /// Flink reports no vertex: the job is being created, or waits for resources under the
    /// adaptive scheduler.
    NoVertices {
        /// The job's state.
        state: String,
    },
    /// The job is not RUNNING (e.g. `CREATED`, `INITIALIZING`, `RESTARTING`).
    NotRunning {
        /// The job's state.
        state: String,
    },
    /// RUNNING, but not every task is (some are still being deployed or initialized).
    TasksNotRunning {
        /// Tasks not RUNNING.
        not_running: u64,
        /// All the job's tasks (the sum of its vertices' parallelism).
        tasks: u64,
    },
}

impl fmt::Display for BetweenSchedules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BetweenSchedules::NoVertices { state } => write!(
                f,
                "the job is {state} with no vertices yet (being created or waiting for resources)"
            ),
            BetweenSchedules::NotRunning { state } => write!(f, "the job is {state}"),
            BetweenSchedules::TasksNotRunning { not_running, tasks } => write!(
                f,
                "the job is RUNNING with {not_running} of {tasks} tasks not running yet"
            ),
        }
    }
}

impl JobStatus {
    /// The parallelism the job's source runs at; None between two schedules.
    pub fn running_parallelism(&self) -> Option<u32> {
        match &self.schedule {
            JobSchedule::Running { parallelism, .. } => Some(*parallelism),
            JobSchedule::Between(_) => None,
        }
    }

    /// Whether the job runs at `expected` parallelism (false between two schedules).
    pub fn runs_at(&self, expected: u32) -> bool {
        self.running_parallelism() == Some(expected)
    }

    /// Whether the job runs at the parallelism `desired_replicas` TaskManagers of `slots`
    /// slots give, within its max parallelism; None between two schedules, when it is unknown.
    pub fn aligned_with(&self, desired_replicas: u32, slots: u32) -> Option<bool> {
        let running = self.running_parallelism()?;
        let wanted = desired_replicas.saturating_mul(slots);
        Some(running == self.max_parallelism.map_or(wanted, |max| wanted.min(max)))
    }
}

/// What a job's source reports of its load: Flink's standard metrics of the source operator
/// (`pendingRecords`, FLIP-33, and `numRecordsOutPerSecond`, summed over its subtasks) and of
/// its vertex (`busyTimeMsPerSecond`, their mean). Each is None when no subtask reports it (a
/// source without `pendingRecords`, or before its first estimate).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceLoad {
    /// Events in the source's input not read yet.
    pub pending_records: Option<u64>,
    /// Events the source emits per second.
    pub records_per_second: Option<f64>,
    /// Share of the time its subtasks are busy, 0 to 1.
    pub busy_ratio: Option<f64>,
    /// That share for its least busy subtask: near 0 when a reader has nothing to read (no
    /// segment, or only successors of a segment another reader still reads).
    pub least_busy_ratio: Option<f64>,
}

/// One aggregated entry of `GET /jobs/:id/vertices/:vid/subtasks/metrics`.
#[derive(Deserialize)]
struct AggregatedMetric {
    id: String,
    #[serde(default)]
    sum: Option<f64>,
    #[serde(default)]
    avg: Option<f64>,
    #[serde(default)]
    min: Option<f64>,
}

/// The source operator's name in its metrics' ids (`Source__pravega-reader` of
/// `Source__pravega-reader.pendingRecords`), found among the vertex's metric ids: the one that
/// reports `pendingRecords`, else the first source operator.
fn source_operator(ids: &[AggregatedMetric]) -> Option<&str> {
    let named = |suffix: &str| {
        ids.iter()
            .find_map(|m| m.id.strip_suffix(suffix).filter(|op| !op.is_empty()))
    };
    named(".pendingRecords").or_else(|| {
        ids.iter()
            .filter(|m| m.id.starts_with("Source"))
            .find_map(|m| m.id.strip_suffix(".numRecordsOutPerSecond"))
    })
}

/// What the autoscaler needs of a JobManager's configuration, read once per job
/// ([`FlinkClient::jobmanager_settings`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobManagerSettings {
    /// Whether it runs in reactive mode (`scheduler-mode: reactive`), which refuses a job's
    /// parallelism set through its resource requirements.
    pub reactive: bool,
    /// The adaptive scheduler's timers before it uses a TaskManager change; None when another
    /// scheduler runs the job.
    pub rescale_timers: Option<RescaleTimers>,
}

/// Job states after which a job never runs again.
const TERMINAL_STATES: [&str; 3] = ["FINISHED", "CANCELED", "FAILED"];

/// `GET /jobs/overview`.
#[derive(Deserialize)]
struct JobsOverview {
    jobs: Vec<JobSummary>,
}

/// One job of the overview.
#[derive(Deserialize)]
struct JobSummary {
    jid: String,
    state: String,
    #[serde(rename = "start-time", default)]
    start_time: i64,
    #[serde(rename = "schedulerType", default)]
    scheduler_type: Option<String>,
}

/// One entry of `GET /jobmanager/config`.
#[derive(Deserialize)]
struct ConfigEntry {
    key: String,
    value: String,
}

/// `GET /overview`, the fields used.
#[derive(Deserialize)]
struct ClusterOverview {
    #[serde(rename = "flink-version")]
    flink_version: String,
    taskmanagers: Option<u32>,
}

/// `GET /jobs/:id/checkpoints/config`, the field used.
#[derive(Deserialize)]
struct CheckpointConfig {
    interval: i64,
}

/// `GET /jobs/:id`, the fields used.
#[derive(Deserialize)]
struct JobDetails {
    state: String,
    vertices: Vec<Vertex>,
}

/// A job vertex.
#[derive(Deserialize)]
struct Vertex {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    parallelism: u32,
    #[serde(rename = "maxParallelism")]
    max_parallelism: u32,
    /// How many of its tasks are in each state (`RUNNING`, `DEPLOYING`, ...).
    tasks: BTreeMap<String, u64>,
}

/// One vertex's entry of `GET`/`PUT /jobs/:id/resource-requirements` (Flink 1.18+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct VertexRequirement {
    parallelism: ParallelismBounds,
}

/// The parallelism the adaptive scheduler may give a vertex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ParallelismBounds {
    lower_bound: u32,
    upper_bound: u32,
}

/// A client for one Flink cluster's REST API.
pub struct FlinkClient {
    http: reqwest::Client,
    base: String,
    timeout: Duration,
    /// The configuration section of its TLS settings, named in TLS errors.
    tls_settings: String,
}

impl FlinkClient {
    /// A client for the JobManager at `rest_url` with the system's trust and no credentials;
    /// every request is bounded by `timeout`.
    pub fn new(rest_url: &str, timeout: Duration) -> FlinkClient {
        FlinkClient::secured(rest_url, timeout, ClientSecurity::default(), "flink")
    }

    /// A client secured by `security`, read from the configuration section `section`
    /// (`bindings[0].flink`).
    pub fn secured(
        rest_url: &str,
        timeout: Duration,
        security: ClientSecurity,
        section: &str,
    ) -> FlinkClient {
        FlinkClient {
            http: http::client(timeout, security),
            base: rest_url.trim_end_matches('/').to_string(),
            timeout,
            tls_settings: format!("{section}.rest_url, {section}.tls"),
        }
    }

    /// Sends `request` to `url` and returns the body of a successful answer.
    async fn send(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Vec<u8>, FlinkError> {
        let transport = |e: reqwest::Error| match NoAnswer::from(&e) {
            NoAnswer::Timeout => FlinkError::Timeout {
                url: url.to_string(),
                after: self.timeout,
            },
            NoAnswer::Tls(message) => FlinkError::Tls {
                url: url.to_string(),
                message,
                settings: self.tls_settings.clone(),
            },
            NoAnswer::Unreachable(message) => FlinkError::Unreachable {
                url: url.to_string(),
                message,
            },
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        if !status.is_success() {
            // The body says why (e.g. reactive mode refusing a parallelism); unreadable: unsaid.
            let body = response.bytes().await.unwrap_or_default();
            return Err(FlinkError::Status {
                url: url.to_string(),
                status: status.as_u16(),
                detail: flink_errors(&body),
            });
        }
        // Small answers (a few KB): a copy costs nothing worth a dependency.
        response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(transport)
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, FlinkError> {
        let url = format!("{}{path}", self.base);
        let body = self.send(&url, self.http.get(&url)).await?;
        serde_json::from_slice(&body).map_err(|e| FlinkError::BadAnswer {
            url: url.clone(),
            message: e.to_string(),
        })
    }

    /// The state of the cluster's job (in reactive mode there is exactly one) and its source
    /// vertex's parallelism.
    pub async fn job_status(&self) -> Result<JobStatus, FlinkError> {
        let overview: JobsOverview = self.get("/jobs/overview").await?;
        let job = pick_job(overview).ok_or_else(|| FlinkError::NoJob {
            url: format!("{}/jobs/overview", self.base),
        })?;
        let details: JobDetails = self.get(&format!("/jobs/{}", job.jid)).await?;
        let adaptive = job.scheduler_type.as_deref().map(|t| t == "Adaptive");
        job_status(job.jid.clone(), adaptive, details).map_err(|message| FlinkError::BadAnswer {
            url: format!("{}/jobs/{}", self.base, job.jid),
            message,
        })
    }

    /// The parallelism the job's source vertex is allowed now: the upper bound of its resource
    /// requirements (the adaptive scheduler runs it there once it has the slots).
    pub async fn required_parallelism(
        &self,
        job_id: &str,
        source_vertex: &str,
    ) -> Result<u32, FlinkError> {
        let path = format!("/jobs/{job_id}/resource-requirements");
        let requirements: BTreeMap<String, VertexRequirement> = self.get(&path).await?;
        requirements
            .get(source_vertex)
            .map(|r| r.parallelism.upper_bound)
            .ok_or_else(|| FlinkError::BadAnswer {
                url: format!("{}{path}", self.base),
                message: format!("no entry for the source vertex {source_vertex}"),
            })
    }

    /// Sets the job's parallelism (the prewarmed mode's actuation): every vertex may run at 1
    /// up to `parallelism`, within its own max parallelism. The adaptive scheduler then
    /// rescales the job as soon as its timers let it; reactive mode refuses this (HTTP 500).
    pub async fn set_parallelism(&self, job_id: &str, parallelism: u32) -> Result<(), FlinkError> {
        let details: JobDetails = self.get(&format!("/jobs/{job_id}")).await?;
        let requirements =
            requirements_for(&details, parallelism).map_err(|message| FlinkError::BadAnswer {
                url: format!("{}/jobs/{job_id}", self.base),
                message,
            })?;
        let url = format!("{}/jobs/{job_id}/resource-requirements", self.base);
        self.send(&url, self.http.put(&url).json(&requirements))
            .await
            .map(drop)
    }

    /// The load of the job's source vertex `source_vertex` ([`SourceLoad`]). Operator metrics
    /// carry the operator's name, so the vertex's metric ids are listed first (two requests).
    pub async fn source_load(
        &self,
        job_id: &str,
        source_vertex: &str,
    ) -> Result<SourceLoad, FlinkError> {
        let path = format!("/jobs/{job_id}/vertices/{source_vertex}/subtasks/metrics");
        let ids: Vec<AggregatedMetric> = self.get(&path).await?;
        let Some(operator) = source_operator(&ids) else {
            return Ok(SourceLoad {
                pending_records: None,
                records_per_second: None,
                busy_ratio: None,
                least_busy_ratio: None,
            });
        };
        let (pending, rate) = (
            format!("{operator}.pendingRecords"),
            format!("{operator}.numRecordsOutPerSecond"),
        );
        let query = format!("{path}?get={pending},{rate},busyTimeMsPerSecond&agg=sum,avg,min");
        let figures: Vec<AggregatedMetric> = self.get(&query).await?;
        let find = |id: &str| figures.iter().find(|m| m.id == id);
        let finite = |v: Option<f64>| v.filter(|v| v.is_finite() && *v >= 0.0);
        Ok(SourceLoad {
            pending_records: finite(find(&pending).and_then(|m| m.sum)).map(|v| v.round() as u64),
            records_per_second: finite(find(&rate).and_then(|m| m.sum)),
            busy_ratio: finite(find("busyTimeMsPerSecond").and_then(|m| m.avg))
                .map(|ms| (ms / 1000.0).min(1.0)),
            least_busy_ratio: finite(find("busyTimeMsPerSecond").and_then(|m| m.min))
                .map(|ms| (ms / 1000.0).min(1.0)),
        })
    }

    /// The TaskManagers registered with the JobManager (`GET /overview`).
    pub async fn registered_taskmanagers(&self) -> Result<u32, FlinkError> {
        let overview: ClusterOverview = self.get("/overview").await?;
        overview.taskmanagers.ok_or_else(|| FlinkError::BadAnswer {
            url: format!("{}/overview", self.base),
            message: "no `taskmanagers` field".into(),
        })
    }

    /// What the JobManager's configuration says for the job `job_id`: whether it runs in
    /// reactive mode, and the adaptive scheduler's rescale timers (for that job, whose
    /// checkpoint interval sets the 2.x default checkpoint wait; None when another scheduler
    /// runs it: `adaptive` as [`JobStatus::adaptive`], else told by the configuration). A job
    /// keeps its JobManager, so one read per job is enough.
    pub async fn jobmanager_settings(
        &self,
        job_id: &str,
        adaptive: Option<bool>,
    ) -> Result<JobManagerSettings, FlinkError> {
        let overview: ClusterOverview = self.get("/overview").await?;
        let entries: Vec<ConfigEntry> = self.get("/jobmanager/config").await?;
        let config: BTreeMap<String, String> =
            entries.into_iter().map(|e| (e.key, e.value)).collect();
        let reactive = timers::runs_reactive(&config);
        if !adaptive.unwrap_or_else(|| timers::uses_adaptive_scheduler(&config)) {
            return Ok(JobManagerSettings {
                reactive,
                rescale_timers: None,
            });
        }
        // Not found or not a number of milliseconds: the job does not checkpoint.
        let interval = match self
            .get::<CheckpointConfig>(&format!("/jobs/{job_id}/checkpoints/config"))
            .await
        {
            Ok(c) if c.interval > 0 && c.interval < i64::from(u32::MAX) => {
                Some(Duration::from_millis(c.interval as u64))
            }
            Ok(_) | Err(FlinkError::Status { .. }) => None,
            Err(e) => return Err(e),
        };
        let rescale_timers = timers::rescale_timers(&overview.flink_version, &config, interval)
            .map_err(|message| FlinkError::BadAnswer {
                url: format!("{}/jobmanager/config", self.base),
                message,
            })?;
        Ok(JobManagerSettings {
            reactive,
            rescale_timers: Some(rescale_timers),
        })
    }
}

/// What a Flink error answer (`{"errors": [...]}`) says, for people: of each entry its first
/// line of text (Flink wraps server-side exceptions in `<Exception on server side:` and appends
/// their stack trace) without the exception's class, the generic "Internal server error." left
/// out when more follows; at most [`ERROR_DETAIL_CHARS`] characters, empty when nothing is said.
fn flink_errors(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        #[serde(default)]
        errors: Vec<String>,
    }
    let Ok(answer) = serde_json::from_slice::<ErrorBody>(body) else {
        return String::new();
    };
    let mut lines: Vec<&str> = answer
        .errors
        .iter()
        .filter_map(|error| {
            error
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with("<Exception on server side"))
        })
        .map(without_exception_class)
        .collect();
    if lines.len() > 1 {
        lines.retain(|l| *l != "Internal server error.");
    }
    let text = lines.join("; ");
    match text.char_indices().nth(ERROR_DETAIL_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// `message` of `java.lang.SomeException: message` (a line without such a prefix as it is).
fn without_exception_class(line: &str) -> &str {
    match line.split_once(": ") {
        Some((class, message))
            if (class.ends_with("Exception") || class.ends_with("Error"))
                && !class.contains(char::is_whitespace) =>
        {
            message
        }
        _ => line,
    }
}

/// The longest error detail kept from a Flink answer (a log line, a reason, an Event note).
const ERROR_DETAIL_CHARS: usize = 300;

/// The newest job that is not finished, cancelled or failed.
fn pick_job(overview: JobsOverview) -> Option<JobSummary> {
    overview
        .jobs
        .into_iter()
        .filter(|job| !TERMINAL_STATES.contains(&job.state.as_str()))
        .max_by_key(|job| job.start_time)
}

/// The resource requirements that let every vertex of `details` run at up to `parallelism`.
fn requirements_for(
    details: &JobDetails,
    parallelism: u32,
) -> Result<BTreeMap<String, VertexRequirement>, String> {
    if details.vertices.is_empty() {
        return Err("the job has no vertices (it is not scheduled)".into());
    }
    if details.vertices.iter().any(|v| v.id.is_empty()) {
        return Err("a vertex without an id".into());
    }
    Ok(details
        .vertices
        .iter()
        .map(|v| {
            let upper_bound = parallelism.min(v.max_parallelism).max(1);
            let bounds = ParallelismBounds {
                lower_bound: 1,
                upper_bound,
            };
            (
                v.id.clone(),
                VertexRequirement {
                    parallelism: bounds,
                },
            )
        })
        .collect())
}

/// State and source vertex of a job. Vertices come in topological order, so the source is the
/// first one (or one whose name says so). Its parallelism counts only once the job runs with
/// every task deployed: before, Flink shows a parallelism the job does not run at.
fn job_status(
    job_id: String,
    adaptive: Option<bool>,
    details: JobDetails,
) -> Result<JobStatus, String> {
    let source = details
        .vertices
        .iter()
        .find(|v| v.name.starts_with("Source"))
        .or_else(|| details.vertices.first());
    let Some(source) = source else {
        return Ok(JobStatus {
            job_id,
            adaptive,
            max_parallelism: None,
            schedule: JobSchedule::Between(BetweenSchedules::NoVertices {
                state: details.state.clone(),
            }),
            state: details.state,
        });
    };
    // Flink calls a job RUNNING as soon as its tasks are being deployed (a vertex may even
    // say RUNNING with a task still DEPLOYING): only tasks in RUNNING count.
    let tasks: u64 = details
        .vertices
        .iter()
        .map(|v| u64::from(v.parallelism))
        .sum();
    let running: u64 = details
        .vertices
        .iter()
        .map(|v| {
            v.tasks
                .get("RUNNING")
                .copied()
                .unwrap_or(0)
                .min(u64::from(v.parallelism))
        })
        .sum();
    let schedule = if details.state != "RUNNING" {
        JobSchedule::Between(BetweenSchedules::NotRunning {
            state: details.state.clone(),
        })
    } else if running < tasks {
        JobSchedule::Between(BetweenSchedules::TasksNotRunning {
            not_running: tasks - running,
            tasks,
        })
    } else {
        JobSchedule::Running {
            source_vertex: source.id.clone(),
            parallelism: source.parallelism,
        }
    };
    Ok(JobStatus {
        job_id,
        state: details.state,
        max_parallelism: Some(source.max_parallelism),
        adaptive,
        schedule,
    })
}

/// Flink's real answers, for tests.
#[cfg(test)]
pub(crate) mod captured {
    /// `GET /jobs/:id` as Flink `version` answered it on the stack (`deploy/local/stack`, the
    /// smoke job, reactive and adaptive schedulers) while the job started, rescaled, lost a
    /// TaskManager and waited for one (`metrics` and `plan` left out): `initializing`,
    /// `waiting-for-resources`, `created-at-max-parallelism`, `restarting`,
    /// `running-deploying`, `running-initializing` and `running` (at 2, max parallelism 128).
    pub fn job_details(version: &str, name: &str) -> &'static str {
        ANSWERS
            .iter()
            .find(|(v, n, _)| *v == version && *n == name)
            .map(|(_, _, text)| *text)
            .unwrap_or_else(|| panic!("no captured answer {version} {name}"))
    }

    /// Each answer on each version: `testdata/flink-VERSION-NAME.json`.
    macro_rules! on_both_versions {
        ($($name:literal),*) => {
            [$(
                ("2.3.0", $name, include_str!(concat!("testdata/flink-2.3.0-", $name, ".json"))),
                ("1.20.5", $name, include_str!(concat!("testdata/flink-1.20.5-", $name, ".json"))),
            )*]
        };
    }

    const ANSWERS: [(&str, &str, &str); 14] = on_both_versions!(
        "initializing",
        "waiting-for-resources",
        "created-at-max-parallelism",
        "restarting",
        "running-deploying",
        "running-initializing",
        "running"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn overview(json: serde_json::Value) -> JobsOverview {
        serde_json::from_value(json).unwrap()
    }

    fn details(json: serde_json::Value) -> Result<JobDetails, serde_json::Error> {
        serde_json::from_value(json)
    }

    fn metric_ids(ids: &[&str]) -> Vec<AggregatedMetric> {
        serde_json::from_value(json!(ids
            .iter()
            .map(|id| json!({"id": id}))
            .collect::<Vec<_>>()))
        .unwrap()
    }

    #[test]
    fn the_source_operator_is_the_one_reporting_pending_records() {
        // Ids as Flink 2.3.0 lists them for the busy reader's chained source vertex.
        let ids = metric_ids(&[
            "busyTimeMsPerSecond",
            "burn-cpu.numRecordsInPerSecond",
            "Source__pravega-reader.numRecordsOutPerSecond",
            "parse-sequence.numRecordsOut",
            "Source__pravega-reader.pendingRecords",
        ]);
        assert_eq!(source_operator(&ids), Some("Source__pravega-reader"));
        // Before its first estimate (or a source without it): the source operator by name.
        let ids = metric_ids(&[
            "burn-cpu.numRecordsOutPerSecond",
            "Source__kafka.numRecordsOutPerSecond",
        ]);
        assert_eq!(source_operator(&ids), Some("Source__kafka"));
        assert_eq!(source_operator(&metric_ids(&["busyTimeMsPerSecond"])), None);
    }

    #[test]
    fn picks_the_newest_live_job() {
        let jobs = overview(json!({"jobs": [
            {"jid": "old", "state": "FAILED", "start-time": 30},
            {"jid": "a", "state": "RUNNING", "start-time": 10},
            {"jid": "b", "state": "RESTARTING", "start-time": 20}
        ]}));
        assert_eq!(pick_job(jobs).map(|j| j.jid).as_deref(), Some("b"));
        let finished = overview(json!({"jobs": [{"jid": "x", "state": "FINISHED"}]}));
        assert!(pick_job(finished).is_none());
        let reactive = overview(json!({"jobs": [
            {"jid": "r", "state": "RUNNING", "schedulerType": "Adaptive"}
        ]}));
        assert_eq!(
            pick_job(reactive).unwrap().scheduler_type.as_deref(),
            Some("Adaptive")
        );
        assert!(serde_json::from_value::<JobsOverview>(json!({})).is_err());
    }

    #[test]
    fn reads_the_source_vertex() {
        let answer = details(json!({"state": "RUNNING", "vertices": [
            {"id": "s", "name": "Source: Pravega reader -> map", "parallelism": 4, "maxParallelism": 128, "tasks": {"RUNNING": 4}},
            {"id": "k", "name": "Sink: discard", "parallelism": 4, "maxParallelism": 128, "tasks": {"RUNNING": 4}}
        ]}))
        .unwrap();
        let status = job_status("j".into(), Some(true), answer).unwrap();
        assert_eq!(
            (
                status.running_parallelism(),
                status.max_parallelism,
                status.state.as_str()
            ),
            (Some(4), Some(128), "RUNNING")
        );
        assert!(
            matches!(&status.schedule, JobSchedule::Running { source_vertex, .. } if source_vertex == "s")
        );
        assert!(status.runs_at(4));
        assert!(!status.runs_at(3));
        assert_eq!(
            status.aligned_with(2, 2),
            Some(true),
            "2 TaskManagers of 2 slots"
        );
        assert_eq!(status.aligned_with(4, 2), Some(false));
    }

    #[test]
    fn alignment_is_capped_by_max_parallelism() {
        let status = JobStatus {
            job_id: "j".into(),
            state: "RUNNING".into(),
            max_parallelism: Some(2),
            adaptive: Some(true),
            schedule: JobSchedule::Running {
                source_vertex: "v".into(),
                parallelism: 2,
            },
        };
        assert_eq!(status.aligned_with(5, 1), Some(true));
        assert_eq!(
            status.aligned_with(u32::MAX, u32::MAX),
            Some(true),
            "no overflow"
        );
    }

    fn captured(version: &str, name: &str) -> JobDetails {
        serde_json::from_str(captured::job_details(version, name))
            .unwrap_or_else(|e| panic!("{version} {name}: {e}"))
    }

    #[test]
    fn a_job_between_two_schedules_has_no_parallelism() {
        for version in ["2.3.0", "1.20.5"] {
            let between = |name| {
                let status = job_status("j".into(), Some(true), captured(version, name))
                    .unwrap_or_else(|e| panic!("{version} {name}: {e}"));
                let JobSchedule::Between(why) = &status.schedule else {
                    panic!("{version} {name}: read as running: {status:?}");
                };
                assert_eq!(status.running_parallelism(), None, "{version} {name}");
                assert_eq!(status.aligned_with(1, 1), None, "{version} {name}");
                assert!(!status.runs_at(128) && !status.runs_at(1) && !status.runs_at(2));
                (why.clone(), status.max_parallelism)
            };
            // Created or waiting for resources: no vertex at all, then vertices without tasks.
            assert_eq!(
                between("initializing"),
                (
                    BetweenSchedules::NoVertices {
                        state: "INITIALIZING".into()
                    },
                    None
                )
            );
            assert_eq!(
                between("waiting-for-resources").0,
                BetweenSchedules::NotRunning {
                    state: "CREATED".into()
                }
            );
            // Each vertex shown at its max parallelism while a restart is prepared: the max
            // parallelism still holds, the parallelism is not the job's.
            assert_eq!(
                between("created-at-max-parallelism"),
                (
                    BetweenSchedules::NotRunning {
                        state: "CREATED".into()
                    },
                    Some(128)
                )
            );
            assert_eq!(
                between("restarting").0,
                BetweenSchedules::NotRunning {
                    state: "RESTARTING".into()
                }
            );
            // RUNNING, with a task still being deployed or initialized.
            for name in ["running-deploying", "running-initializing"] {
                let (why, _) = between(name);
                assert!(
                    matches!(
                        why,
                        BetweenSchedules::TasksNotRunning { not_running: 1, .. }
                    ),
                    "{version} {name}: {why}"
                );
            }
            let running = job_status("j".into(), Some(true), captured(version, "running")).unwrap();
            assert_eq!(running.running_parallelism(), Some(2), "{version}");
            assert_eq!(running.max_parallelism, Some(128), "{version}");
            assert_eq!(running.aligned_with(2, 1), Some(true), "{version}");
        }
        let why = BetweenSchedules::TasksNotRunning {
            not_running: 1,
            tasks: 2,
        };
        assert_eq!(
            why.to_string(),
            "the job is RUNNING with 1 of 2 tasks not running yet"
        );
    }

    #[test]
    fn requirements_list_every_vertex_within_its_max_parallelism() {
        let answer = details(json!({"state": "RUNNING", "vertices": [
            {"id": "a", "name": "Source: readers", "parallelism": 2, "maxParallelism": 128, "tasks": {"RUNNING": 2}},
            {"id": "b", "name": "verify", "parallelism": 2, "maxParallelism": 3, "tasks": {"RUNNING": 2}}
        ]}))
        .unwrap();
        let body = serde_json::to_value(requirements_for(&answer, 4).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({
                "a": {"parallelism": {"lowerBound": 1, "upperBound": 4}},
                "b": {"parallelism": {"lowerBound": 1, "upperBound": 3}}
            })
        );
        let anonymous = details(json!({"state": "RUNNING", "vertices": [
            {"name": "Source: readers", "parallelism": 2, "maxParallelism": 128, "tasks": {"RUNNING": 2}}
        ]}))
        .unwrap();
        assert!(requirements_for(&anonymous, 2).is_err());
        // A job between two schedules has no vertex to require anything of.
        assert!(requirements_for(&captured("2.3.0", "initializing"), 2).is_err());
    }

    #[test]
    fn rejects_answers_without_what_it_needs() {
        assert!(details(
            json!({"vertices": [{"parallelism": 1, "maxParallelism": 1, "tasks": {}}]})
        )
        .is_err());
        assert!(details(
            json!({"state": "RUNNING", "vertices": [{"name": "x", "parallelism": -1, "maxParallelism": 2, "tasks": {}}]})
        )
        .is_err());
        assert!(
            details(json!({"state": "RUNNING", "vertices": [{"name": "x", "parallelism": 1, "maxParallelism": 2}]}))
                .is_err(),
            "without the tasks per state, whether it runs is unknown"
        );
    }

    #[tokio::test]
    async fn an_unreachable_jobmanager_is_an_error_naming_the_url() {
        let client = FlinkClient::new("http://127.0.0.1:1/", Duration::from_secs(1));
        let error = client.job_status().await.unwrap_err();
        assert_eq!(error.reason(), ErrorReason::Unreachable);
        let error = error.to_string();
        assert!(
            error.starts_with("flink http://127.0.0.1:1/jobs/overview:"),
            "{error}"
        );
    }

    #[test]
    fn flink_errors_keep_what_flink_says_without_its_stack_trace() {
        // PUT /jobs/:id/resource-requirements on a reactive JobManager (Flink 2.3.0).
        let reactive = json!({"errors": [
            "Internal server error.",
            "<Exception on server side:\njava.lang.UnsupportedOperationException: Cannot change \
             the parallelism of a job running in reactive mode.\n\tat org.apache.flink.runtime.\
             scheduler.adaptive.AdaptiveScheduler.updateJobResourceRequirements(AdaptiveScheduler.\
             java:1140)\n\nEnd of exception on server side>"
        ]});
        assert_eq!(
            flink_errors(reactive.to_string().as_bytes()),
            "Cannot change the parallelism of a job running in reactive mode."
        );
        let bad_request = json!({"errors": [
            "org.apache.flink.runtime.rest.handler.RestHandlerException: Request did not match \
             expected format JobResourceRequirementsBody.\n\tat org.apache.flink.runtime.rest.\
             handler.AbstractHandler.respondAsLeader(AbstractHandler.java:165)"
        ]});
        assert_eq!(
            flink_errors(bad_request.to_string().as_bytes()),
            "Request did not match expected format JobResourceRequirementsBody."
        );
        let generic = json!({"errors": ["Internal server error."]});
        assert_eq!(
            flink_errors(generic.to_string().as_bytes()),
            "Internal server error."
        );
        let not_found = json!({"errors": ["Not found: /jobs/x"]});
        assert_eq!(
            flink_errors(not_found.to_string().as_bytes()),
            "Not found: /jobs/x"
        );
        assert_eq!(flink_errors(b"<html>proxy error</html>"), "");
        assert_eq!(flink_errors(b"{}"), "");
        let long = json!({"errors": ["x".repeat(1000)]});
        let kept = flink_errors(long.to_string().as_bytes());
        assert_eq!(kept.chars().count(), ERROR_DETAIL_CHARS + 3, "{kept}");
    }

    #[test]
    fn every_verify_error_has_its_reason() {
        let url = || "u".to_string();
        assert_eq!(
            FlinkError::Status {
                url: url(),
                status: 404,
                detail: String::new(),
            }
            .reason(),
            ErrorReason::NotFound
        );
        assert_eq!(
            FlinkError::NoJob { url: url() }.reason(),
            ErrorReason::NotFound
        );
        assert_eq!(
            FlinkError::BadAnswer {
                url: url(),
                message: String::new()
            }
            .reason(),
            ErrorReason::InvalidAnswer
        );
        assert_eq!(
            FlinkError::Timeout {
                url: url(),
                after: Duration::from_secs(1)
            }
            .reason(),
            ErrorReason::Timeout
        );
    }
}

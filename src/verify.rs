//! Verify: what the Flink job really runs at, from the JobManager's REST API, so that
//! alignment with the segments is checked rather than assumed.

use std::time::Duration;

use serde::Serialize;

/// Why the job's state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The REST API did not answer, or not with JSON.
    #[error("flink {url}: {message}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// What went wrong.
        message: String,
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

/// The job's state and the parallelism of its source vertex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobStatus {
    /// Flink's job id.
    pub job_id: String,
    /// e.g. `RUNNING`, `RESTARTING`, `CREATED`.
    pub state: String,
    /// Parallelism of the source vertex (the Pravega readers).
    pub parallelism: u32,
    /// Max parallelism of the source vertex.
    pub max_parallelism: u32,
}

impl JobStatus {
    /// Whether the job runs at `expected` parallelism.
    pub fn runs_at(&self, expected: u32) -> bool {
        self.state == "RUNNING" && self.parallelism == expected
    }
}

/// Job states after which a job never runs again.
const TERMINAL_STATES: [&str; 3] = ["FINISHED", "CANCELED", "FAILED"];

/// A client for one Flink cluster's REST API.
pub struct FlinkClient {
    http: reqwest::Client,
    base: String,
}

impl FlinkClient {
    /// A client for the JobManager at `rest_url`.
    pub fn new(rest_url: &str, timeout: Duration) -> FlinkClient {
        FlinkClient {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .expect("HTTP client"),
            base: rest_url.trim_end_matches('/').to_string(),
        }
    }

    async fn get(&self, path: &str) -> Result<serde_json::Value, VerifyError> {
        let url = format!("{}{path}", self.base);
        let unreachable = |message: String| VerifyError::Unreachable {
            url: url.clone(),
            message,
        };
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(unreachable(format!("HTTP {status}")));
        }
        response
            .json()
            .await
            .map_err(|e| unreachable(format!("body is not JSON: {e}")))
    }

    /// The state of the cluster's job (in reactive mode there is exactly one) and its source
    /// vertex's parallelism.
    pub async fn job_status(&self) -> Result<JobStatus, VerifyError> {
        let overview = self.get("/jobs/overview").await?;
        let job_id = pick_job(&overview).ok_or_else(|| VerifyError::NoJob {
            url: format!("{}/jobs/overview", self.base),
        })?;
        let details = self.get(&format!("/jobs/{job_id}")).await?;
        parse_job(&job_id, &details).map_err(|message| VerifyError::BadAnswer {
            url: format!("{}/jobs/{job_id}", self.base),
            message,
        })
    }
}

/// The newest job that is not finished, cancelled or failed.
fn pick_job(overview: &serde_json::Value) -> Option<String> {
    overview["jobs"]
        .as_array()?
        .iter()
        .filter(|job| !TERMINAL_STATES.contains(&job["state"].as_str().unwrap_or("")))
        .max_by_key(|job| job["start-time"].as_i64().unwrap_or(0))
        .and_then(|job| job["jid"].as_str().map(String::from))
}

/// Reads state and source vertex from `/jobs/:id`. Vertices come in topological order, so the
/// source is the first one (or one whose name says so).
fn parse_job(job_id: &str, details: &serde_json::Value) -> Result<JobStatus, String> {
    let state = details["state"].as_str().ok_or("no state")?.to_string();
    let vertices = details["vertices"].as_array().ok_or("no vertices")?;
    let source = vertices
        .iter()
        .find(|v| v["name"].as_str().is_some_and(|n| n.starts_with("Source")))
        .or_else(|| vertices.first())
        .ok_or("the job has no vertices")?;
    let number = |field: &str| -> Result<u32, String> {
        source[field]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("source vertex has no valid {field}"))
    };
    Ok(JobStatus {
        job_id: job_id.into(),
        state,
        parallelism: number("parallelism")?,
        max_parallelism: number("maxParallelism")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn picks_the_newest_live_job() {
        let overview = json!({"jobs": [
            {"jid": "old", "state": "FAILED", "start-time": 30},
            {"jid": "a", "state": "RUNNING", "start-time": 10},
            {"jid": "b", "state": "RESTARTING", "start-time": 20}
        ]});
        assert_eq!(pick_job(&overview).as_deref(), Some("b"));
        assert_eq!(
            pick_job(&json!({"jobs": [{"jid": "x", "state": "FINISHED"}]})),
            None
        );
        assert_eq!(pick_job(&json!({})), None);
    }

    #[test]
    fn reads_the_source_vertex() {
        let details = json!({"state": "RUNNING", "vertices": [
            {"name": "Source: Pravega reader -> map", "parallelism": 4, "maxParallelism": 128},
            {"name": "Sink: discard", "parallelism": 4, "maxParallelism": 128}
        ]});
        let status = parse_job("j", &details).unwrap();
        assert_eq!(
            (
                status.parallelism,
                status.max_parallelism,
                status.state.as_str()
            ),
            (4, 128, "RUNNING")
        );
        assert!(status.runs_at(4));
        assert!(!status.runs_at(3));
        let restarting = JobStatus {
            state: "RESTARTING".into(),
            ..status
        };
        assert!(!restarting.runs_at(4), "a restarting job is not aligned");
    }

    #[test]
    fn rejects_answers_without_what_it_needs() {
        assert!(parse_job("j", &json!({"state": "RUNNING", "vertices": []})).is_err());
        assert!(parse_job(
            "j",
            &json!({"vertices": [{"parallelism": 1, "maxParallelism": 1}]})
        )
        .is_err());
        let error = parse_job(
            "j",
            &json!({"state": "RUNNING", "vertices": [{"name": "x", "parallelism": -1, "maxParallelism": 2}]}),
        );
        assert_eq!(error.unwrap_err(), "source vertex has no valid parallelism");
    }

    #[tokio::test]
    async fn an_unreachable_jobmanager_is_an_error_naming_the_url() {
        let client = FlinkClient::new("http://127.0.0.1:1/", Duration::from_secs(1));
        let error = client.job_status().await.unwrap_err().to_string();
        assert!(
            error.starts_with("flink http://127.0.0.1:1/jobs/overview:"),
            "{error}"
        );
    }
}

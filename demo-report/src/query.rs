//! The series of a run, read from Prometheus over a time range.

use std::time::Duration;

use segment_autoscaler::domain::StreamId;

use crate::summary::{DashboardCheck, VerifiedEvents};
use crate::ReportError;

/// The acting autoscaler's `metric`: a standby replica (leader gauge 0) is left out, since it
/// may be a step behind; a replica without leader election counts.
fn acting(metric: &str) -> String {
    format!("max({metric} unless on (instance) (segment_autoscaler_leader == 0))")
}

/// The series a report plots, each sampled on the same grid.
pub struct RunSeries {
    /// Seconds since the start of each sample.
    pub seconds: Vec<f64>,
    /// Target load, events/s.
    pub target_rate: Vec<Option<f64>>,
    /// Achieved load, events/s.
    pub achieved_rate: Vec<Option<f64>>,
    /// Active segments (summed over the streams).
    pub segments: Vec<Option<f64>>,
    /// TaskManagers registered with Flink.
    pub taskmanagers: Vec<Option<f64>>,
    /// The job's source parallelism.
    pub parallelism: Vec<Option<f64>>,
    /// TaskManagers the autoscaler kept beyond the job's (its prewarmed mode; unknown in
    /// reactive mode).
    pub warm_taskmanagers: Vec<Option<f64>>,
    /// Events written and not read yet, as the acting autoscaler read them from the job's
    /// `pendingRecords` (unknown where the job reports none).
    pub backlog: Vec<Option<f64>>,
    /// 1 while the acting autoscaler judged the job, aligned, falling behind; 0 when not.
    pub falling_behind: Vec<Option<f64>>,
    /// The stream's scaling-policy target the autoscaler read, events/s per segment.
    pub policy_target: Vec<Option<f64>>,
    /// The autoscaler's alignment modes during the run (`reactive`, `prewarmed`), sorted.
    pub alignment_modes: Vec<String>,
    /// Moments marked on the chart (seconds since the start, a label): a chaos run's faults.
    /// Not from Prometheus: empty until the caller adds them.
    pub marks: Vec<(f64, String)>,
}

/// The end-to-end event figures Prometheus holds now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventFigures {
    /// Events the generators wrote (the highest each reported in the run).
    pub written: Option<u64>,
    /// The busy reader's verifier's figures now.
    pub verified: Option<VerifiedEvents>,
    /// Whether the verifier reported at any time in the run: its figures may be absent now
    /// only because its tasks are restarting.
    pub verifier_in_run: bool,
}

/// Where a report's data comes from.
pub struct ReportQuery {
    /// Prometheus base URL.
    pub prometheus: String,
    /// Start, Unix seconds.
    pub from: f64,
    /// End, Unix seconds.
    pub to: f64,
    /// Sampling step.
    pub step: Duration,
    /// `scope/stream` whose segments to count; empty: the autoscaler's own segment gauges.
    pub streams: Vec<StreamId>,
    /// How to reach a secured Prometheus (its CA, basic auth), as the autoscaler does.
    pub security: segment_autoscaler::http::ClientSecurity,
}

impl ReportQuery {
    async fn range(
        &self,
        prometheus: &prometheus_http_query::Client,
        query: &str,
    ) -> Result<Vec<Option<f64>>, ReportError> {
        let failed = |message: String| ReportError::Query {
            query: query.into(),
            message,
        };
        let step = self.step.as_secs_f64();
        // The API takes whole seconds; the grid starts at the first of them.
        let start = self.from.floor();
        let answer = prometheus
            .query_range(query, start as i64, self.to.ceil() as i64, step)
            .get()
            .await
            .map_err(|e| failed(e.to_string()))?;
        let Some(series) = answer.data().as_matrix() else {
            return Err(failed("the answer is not a range vector".into()));
        };
        let samples = ((self.to - self.from) / step).floor() as usize + 1;
        let mut values = vec![None; samples];
        // Several series (e.g. one per TaskManager) are summed per sample.
        for point in series.iter().flat_map(|s| s.samples()) {
            let i = ((point.timestamp() - start) / step).round() as usize;
            if i < samples && point.value().is_finite() {
                values[i] = Some(values[i].unwrap_or(0.0) + point.value());
            }
        }
        Ok(values)
    }

    /// A client for the run's Prometheus, each request bounded by 30 s.
    pub fn client(&self) -> Result<prometheus_http_query::Client, ReportError> {
        prometheus_client(
            &self.prometheus,
            Duration::from_secs(30),
            self.security.clone(),
        )
    }

    /// Evaluates `queries` over the run; returns which gave no sample at all.
    pub async fn check_dashboards(
        &self,
        queries: &[(String, String)],
    ) -> Result<DashboardCheck, ReportError> {
        let http = self.client()?;
        let mut without_data = Vec::new();
        for (place, expr) in queries {
            let values = self.range(&http, expr).await?;
            if values.iter().all(Option::is_none) {
                without_data.push(format!("{place}: {expr}"));
            }
        }
        Ok(DashboardCheck {
            checked: queries.len(),
            without_data,
        })
    }

    /// Events written by the generator and verified by the busy reader, now (each None when
    /// not scraped: no generator, another job than the busy reader, or the busy reader
    /// restarting), and whether the busy reader's verifier reported at any time in the run.
    pub async fn event_figures(
        &self,
        http: &prometheus_http_query::Client,
    ) -> Result<EventFigures, ReportError> {
        // The highest count each generator reported since the run began: a generator that
        // has stopped (its series gone stale) still counts.
        let now = crate::unix_now();
        let window = (now - self.from).ceil().max(1.0);
        let written = instant_sum(
            http,
            &format!("sum(max_over_time(data_generator_events_total[{window}s]))"),
        )
        .await?;
        let mut verified = Vec::new();
        for metric in ["eventsRead", "duplicates", "unsequenced", "gaps"] {
            verified.push(instant_sum(http, &format!("sum({})", verifier_series(metric))).await?);
        }
        let whole = |v: f64| v.max(0.0).round() as u64;
        let verified = match verified[..] {
            [Some(read), Some(duplicates), Some(unsequenced), Some(gaps)] => Some(VerifiedEvents {
                read: whole(read),
                duplicates: whole(duplicates),
                unsequenced: whole(unsequenced),
                gaps: whole(gaps),
            }),
            _ => None,
        };
        // Mid-rescale the verifier's series are gone until its tasks run again: absent now
        // is not absent from the run (asked only when absent now).
        let verifier_in_run = verified.is_some()
            || instant_sum(
                http,
                &format!(
                    "count(max_over_time({}[{window}s]))",
                    verifier_series("eventsRead")
                ),
            )
            .await?
            .is_some();
        Ok(EventFigures {
            written: written.map(whole),
            verified,
            verifier_in_run,
        })
    }

    /// Fetches every series of the report.
    pub async fn fetch(&self) -> Result<RunSeries, ReportError> {
        let http = self.client()?;
        let segments_query = if self.streams.is_empty() {
            "sum(segment_autoscaler_stream_segments)".to_string()
        } else {
            let matchers: Vec<String> = self
                .streams
                .iter()
                // The last reported count: Pravega drops a stream's gauge 3 minutes after
                // its last scale (by default), and its count stays what it was.
                .map(|s| format!("max by (scope, stream) (last_over_time(pravega_controller_segments_count{{scope=\"{}\",stream=\"{}\"}}[1d]))", s.scope, s.stream))
                .collect();
            format!("sum({})", matchers.join(" or "))
        };
        let target_rate = self.range(&http, "sum(data_generator_target_rate)").await?;
        let achieved_rate = self
            .range(&http, "sum(data_generator_achieved_rate)")
            .await?;
        let segments = self.range(&http, &segments_query).await?;
        let taskmanagers = self
            .range(&http, "max(flink_jobmanager_numRegisteredTaskManagers)")
            .await?;
        let parallelism = self
            .range(&http, &acting("segment_autoscaler_job_parallelism"))
            .await?;
        let warm_taskmanagers = self
            .range(&http, &acting("segment_autoscaler_warm_taskmanagers"))
            .await?;
        let backlog = self
            .range(&http, &acting("segment_autoscaler_backlog_records"))
            .await?;
        let falling_behind = self
            .range(&http, &acting("segment_autoscaler_falling_behind"))
            .await?;
        let policy_target = self
            .range(&http, &acting("segment_autoscaler_policy_target"))
            .await?;
        let alignment_modes = self.alignment_modes(&http).await?;
        let step = self.step.as_secs_f64();
        let seconds = (0..segments.len()).map(|i| i as f64 * step).collect();
        Ok(RunSeries {
            seconds,
            target_rate,
            achieved_rate,
            segments,
            taskmanagers,
            parallelism,
            warm_taskmanagers,
            backlog,
            falling_behind,
            policy_target,
            alignment_modes,
            marks: Vec::new(),
        })
    }

    /// The `mode` labels of `segment_autoscaler_alignment` over the run.
    async fn alignment_modes(
        &self,
        prometheus: &prometheus_http_query::Client,
    ) -> Result<Vec<String>, ReportError> {
        let window = (self.to - self.from).ceil().max(1.0);
        let query =
            format!("max by (mode) (max_over_time(segment_autoscaler_alignment[{window}s]))");
        let vector = instant_vector(prometheus, &query, Some(self.to.ceil() as i64)).await?;
        let mut modes: Vec<String> = vector
            .iter()
            .filter_map(|s| s.metric().get("mode").cloned())
            .collect();
        modes.sort();
        Ok(modes)
    }
}

/// A client for the Prometheus at `url`, each request bounded by `timeout`.
pub fn prometheus_client(
    url: &str,
    timeout: Duration,
    security: segment_autoscaler::http::ClientSecurity,
) -> Result<prometheus_http_query::Client, ReportError> {
    let http = segment_autoscaler::http::client(timeout, security);
    prometheus_http_query::Client::from(http, url.trim_end_matches('/')).map_err(|e| {
        ReportError::Query {
            query: String::new(),
            message: format!("--prometheus {url}: {e}"),
        }
    })
}

/// The busy reader's verifier's series of `metric` (e.g. `eventsRead`), one per subtask.
fn verifier_series(metric: &str) -> String {
    format!("flink_taskmanager_job_task_operator_{metric}{{operator_name=\"verify_sequence\"}}")
}

/// Events written by the generators and counted by the busy reader's verifier, as Prometheus
/// last scraped them (each None when not scraped now: the verifier's while its tasks restart).
pub async fn events_now(
    prometheus: &prometheus_http_query::Client,
) -> Result<(Option<u64>, Option<u64>), ReportError> {
    let whole = |v: f64| v.max(0.0).round() as u64;
    let written = instant_sum(prometheus, "sum(data_generator_events_total)").await?;
    let read = instant_sum(
        prometheus,
        &format!("sum({})", verifier_series("eventsRead")),
    )
    .await?;
    Ok((written.map(whole), read.map(whole)))
}

/// One figure now: the sum of `query`'s series, None when there is none.
async fn instant_sum(
    prometheus: &prometheus_http_query::Client,
    query: &str,
) -> Result<Option<f64>, ReportError> {
    let vector = instant_vector(prometheus, query, None).await?;
    Ok((!vector.is_empty()).then(|| vector.iter().map(|s| s.sample().value()).sum()))
}

/// The series of the instant query `query` (now, or at the Unix time `at`).
async fn instant_vector(
    prometheus: &prometheus_http_query::Client,
    query: &str,
    at: Option<i64>,
) -> Result<Vec<prometheus_http_query::response::InstantVector>, ReportError> {
    let failed = |message: String| ReportError::Query {
        query: query.into(),
        message,
    };
    let mut request = prometheus.query(query);
    if let Some(at) = at {
        request = request.at(at);
    }
    let answer = request.get().await.map_err(|e| failed(e.to_string()))?;
    match answer.into_inner().0 {
        prometheus_http_query::response::Data::Vector(vector) => Ok(vector),
        _ => Err(failed("the answer is not an instant vector".into())),
    }
}

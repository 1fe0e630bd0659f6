//! `demo-report`: from any Prometheus that scraped a run of the demo or a benchmark, a chart of
//! load, segments, TaskManagers and job parallelism over time (`report.png`) and alignment
//! figures (`summary.json`). Demo tooling: the autoscaler itself does not link it.

pub mod catch_up;
mod chart;
pub mod dashboards;
pub mod faults;
pub mod query;
pub mod summary;

use std::path::Path;
use std::time::Duration;

pub use catch_up::{CatchUp, WRITTEN_SETTLE};
pub use dashboards::dashboard_queries;
pub use query::{EventFigures, ReportQuery, RunSeries};
pub use summary::{
    summarize, AlignmentSummary, DashboardCheck, EventCounts, Platform, VerifiedEvents,
};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Prometheus did not answer a query.
    #[error("prometheus query {query:?}: {message}")]
    Query {
        /// The PromQL.
        query: String,
        /// What went wrong.
        message: String,
    },
    /// The output could not be written.
    #[error("{path}: {message}")]
    Output {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// Writes `report.png` and `summary.json` into `out`.
pub fn write_report(
    out: &Path,
    series: &RunSeries,
    step: Duration,
    slots: u32,
    platform: Option<Platform>,
    dashboards: Option<DashboardCheck>,
    events: EventCounts,
) -> Result<AlignmentSummary, ReportError> {
    std::fs::create_dir_all(out).map_err(|e| ReportError::Output {
        path: out.display().to_string(),
        message: e.to_string(),
    })?;
    let warm: Vec<f64> = series.warm_taskmanagers.iter().flatten().copied().collect();
    let summary = AlignmentSummary {
        platform,
        dashboard_queries: dashboards,
        events,
        alignment_mode: (!series.alignment_modes.is_empty())
            .then(|| series.alignment_modes.join("+")),
        warm_taskmanager_seconds: (!warm.is_empty())
            .then(|| warm.iter().sum::<f64>() * step.as_secs_f64()),
        backlog: summary::summarize_backlog(
            &series.backlog,
            &series.falling_behind,
            &series.policy_target,
            step,
        ),
        ..summarize(&series.segments, &series.parallelism, step, slots)
    };
    let summary_path = out.join("summary.json");
    std::fs::write(
        &summary_path,
        serde_json::to_string_pretty(&summary).expect("summary serializes") + "\n",
    )
    .map_err(|e| ReportError::Output {
        path: summary_path.display().to_string(),
        message: e.to_string(),
    })?;
    let chart_path = out.join("report.png");
    chart::render(
        &chart_path,
        series,
        summary.alignment_mode.as_deref(),
        summary.events.describe().as_deref(),
    )
    .map_err(|message| ReportError::Output {
        path: chart_path.display().to_string(),
        message,
    })?;
    Ok(summary)
}

/// Now, in Unix seconds: the clock every time of a report is on.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// Parses a time for `--from`/`--to`: Unix seconds, RFC 3339, `now`, or `now-DURATION`.
pub fn parse_time(text: &str, now: f64) -> Result<f64, String> {
    if text == "now" {
        return Ok(now);
    }
    if let Some(ago) = text.strip_prefix("now-") {
        let ago = humantime::parse_duration(ago).map_err(|e| format!("{text:?}: {e}"))?;
        return Ok(now - ago.as_secs_f64());
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return Ok(seconds);
    }
    let at = humantime::parse_rfc3339_weak(text)
        .map_err(|_| format!("{text:?} is not Unix seconds, RFC 3339, now or now-DURATION"))?;
    Ok(at
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_every_form() {
        assert_eq!(parse_time("now", 1000.0).unwrap(), 1000.0);
        assert_eq!(parse_time("now-15m", 1000.0).unwrap(), 100.0);
        assert_eq!(parse_time("1700000000.5", 0.0).unwrap(), 1_700_000_000.5);
        assert_eq!(
            parse_time("2026-01-01T00:00:00Z", 0.0).unwrap(),
            1_767_225_600.0
        );
        assert!(parse_time("yesterday", 0.0).is_err());
    }

    #[test]
    fn the_chart_and_summary_are_written() {
        let dir = std::env::temp_dir().join(format!("sa-report-{}", std::process::id()));
        let n = 60;
        let run = RunSeries {
            seconds: (0..n).map(f64::from).collect(),
            target_rate: (0..n)
                .map(|i| Some(1000.0 + 500.0 * (f64::from(i) / 10.0).sin()))
                .collect(),
            achieved_rate: (0..n)
                .map(|i| (i % 7 != 3).then(|| 990.0 + 500.0 * (f64::from(i) / 10.0).sin()))
                .collect(),
            segments: (0..n)
                .map(|i| Some(if i < 30 { 1.0 } else { 2.0 }))
                .collect(),
            taskmanagers: (0..n)
                .map(|i| Some(if i < 33 { 1.0 } else { 2.0 }))
                .collect(),
            parallelism: (0..n)
                .map(|i| Some(if i < 34 { 1.0 } else { 2.0 }))
                .collect(),
            warm_taskmanagers: (0..n).map(|i| (i >= 10).then_some(1.0)).collect(),
            backlog: (0..n)
                .map(|i| (i >= 5).then(|| f64::from(i * 100)))
                .collect(),
            falling_behind: (0..n).map(|i| Some(f64::from(u8::from(i >= 20)))).collect(),
            policy_target: (0..n)
                .map(|i| Some(if i < 25 { 1000.0 } else { 150.0 }))
                .collect(),
            alignment_modes: vec!["prewarmed".into()],
            marks: vec![(12.0, "taskmanager".into())],
        };
        let summary = write_report(
            &dir,
            &run,
            Duration::from_secs(1),
            1,
            Some(Platform::Kubernetes),
            None,
            EventCounts::new(Some(10), None),
        )
        .unwrap();
        assert_eq!(summary.alignment_seconds_max, Some(4.0));
        let png = std::fs::read(dir.join("report.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(json["rescales"], 1);
        assert_eq!(json["events_written"], 10);
        assert_eq!(json["alignment_mode"], "prewarmed");
        assert_eq!(json["warm_taskmanager_seconds"], 50.0);
        assert!(
            json["events_lost"].is_null(),
            "unknown without the verifier: {json}"
        );
        assert_eq!(json["platform"], "kubernetes");
        assert_eq!(json["backlog"]["peak_records"], 5900.0);
        assert_eq!(json["backlog"]["policy_target_last"], 150.0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

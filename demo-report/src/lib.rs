//! `demo-report`: from any Prometheus that scraped a run of the demo or a benchmark, a chart of
//! load, segments, TaskManagers and job parallelism over time (`report.png`) and alignment
//! figures (`summary.json`). Demo tooling: the autoscaler itself does not link it.

pub mod catch_up;
mod chart;
pub mod dashboards;
pub mod faults;
pub mod peers;
pub mod query;
pub mod summary;
pub mod timeline;

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

/// Reads each contender's run of `benches/peers` from `out/NAME/` (`timeline.jsonl` from
/// `run-timeline`, `summary.json` from `demo-report` for the events), and writes `peers.md`
/// (the table), `peers.json` (every figure, each segment change included) and `peers.png` (a
/// panel per contender) into `out`. Returns the table.
pub fn write_peers(out: &Path, contenders: &[String]) -> Result<String, ReportError> {
    let failed = |path: &Path, message: String| ReportError::Output {
        path: path.display().to_string(),
        message,
    };
    let read = |path: &Path| std::fs::read_to_string(path).map_err(|e| failed(path, e.to_string()));
    let mut timelines = Vec::new();
    let mut figures = Vec::new();
    for name in contenders {
        let dir = out.join(name);
        let path = dir.join("timeline.jsonl");
        let timeline = timeline::parse_timeline(&read(&path)?).map_err(|e| failed(&path, e))?;
        let path = dir.join("summary.json");
        // The event counts of the summary; a run whose report failed has none.
        let events = match read(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| failed(&path, e.to_string()))?,
            Err(_) => EventCounts::default(),
        };
        figures.push(peers::contender_figures(name, &timeline, events));
        timelines.push(timeline);
    }
    let table = peers::table(&figures);
    let write = |file: &str, bytes: &[u8]| {
        let path = out.join(file);
        std::fs::write(&path, bytes).map_err(|e| failed(&path, e.to_string()))
    };
    write("peers.md", table.as_bytes())?;
    let json = serde_json::to_vec_pretty(&figures).expect("figures serialize");
    write("peers.json", &json)?;
    let panels: Vec<(String, &[timeline::TimelineSample])> = figures
        .iter()
        .zip(&timelines)
        .map(|(f, t)| {
            let caption = format!(
                "{}: aligned {:.0} % of the run, idle + missing {:.0} reader-s",
                f.contender,
                f.aligned_share * 100.0,
                f.idle_reader_seconds + f.missing_reader_seconds
            );
            (caption, t.as_slice())
        })
        .collect();
    let path = out.join("peers.png");
    chart::render_peers(&path, &panels).map_err(|e| failed(&path, e))?;
    Ok(table)
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
    fn a_peers_run_is_measured_charted_and_tabled() {
        let dir = std::env::temp_dir().join(format!("sa-peers-{}", std::process::id()));
        for (name, parallelism) in [("fast", 2), ("slow", 1)] {
            let run = dir.join(name);
            std::fs::create_dir_all(&run).unwrap();
            let lines: Vec<String> = (0..120)
                .map(|i| {
                    let segments = if i < 60 { 1 } else { 2 };
                    let p = if i < 70 { 1 } else { parallelism };
                    format!(
                        r#"{{"at":{},"segments":{segments},"parallelism":{p},"replicas":{p},"leader":null,"taskmanagers":{p},"written":{},"read":{}}}"#,
                        1000 + i,
                        i * 100,
                        i * 90
                    )
                })
                .collect();
            std::fs::write(run.join("timeline.jsonl"), lines.join("\n")).unwrap();
        }
        // One run's report counted the events; the other's is missing.
        std::fs::write(
            dir.join("fast/summary.json"),
            r#"{"rescales":1,"events_written":12000,"events_lost":0,"events_duplicated":3}"#,
        )
        .unwrap();
        let table = write_peers(&dir, &["fast".into(), "slow".into()]).unwrap();
        assert!(
            table.contains("| fast | 2.0 | 1 | 1 | 10 / 10 |"),
            "{table}"
        );
        assert!(table.contains("| 0 | 3 |\n"), "{table}");
        assert!(table.contains("| slow | 2.0 | 1 | 0 | - / - |"), "{table}");
        for file in ["peers.md", "peers.json", "peers.png"] {
            assert!(dir.join(file).metadata().unwrap().len() > 0, "{file}");
        }
        assert!(write_peers(&dir, &["absent".into()]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
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

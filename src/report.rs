//! `segment-autoscaler report`: from any Prometheus that scraped a run, a chart of load,
//! segments, TaskManagers and job parallelism over time (`report.png`) and alignment figures
//! (`summary.json`).

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

/// What a run's alignment looked like.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlignmentSummary {
    /// How many times the job's parallelism changed.
    pub rescales: usize,
    /// How many times the segment count changed.
    pub segment_changes: usize,
    /// Median time from a segment change until the job ran at the matching parallelism.
    pub alignment_seconds_median: Option<f64>,
    /// Longest such time.
    pub alignment_seconds_max: Option<f64>,
    /// Median alignment time after segment increases (the scale-up path).
    pub scale_up_alignment_seconds_median: Option<f64>,
    /// Median alignment time after segment decreases (includes the scale-down stabilization).
    pub scale_down_alignment_seconds_median: Option<f64>,
    /// Segment changes the job never caught up with before the end.
    pub unaligned_at_end: usize,
    /// Share of samples where the job's parallelism did not match the segments.
    pub misaligned_fraction: Option<f64>,
    /// Seconds covered by samples with both figures known.
    pub observed_seconds: f64,
    /// Dashboard queries evaluated over the run (with `--dashboards`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dashboard_queries: Option<DashboardCheck>,
}

/// Whether every dashboard query had data during the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DashboardCheck {
    /// Queries evaluated.
    pub checked: usize,
    /// `dashboard / panel: query` of those that returned no sample.
    pub without_data: Vec<String>,
}

/// Every PromQL query of the Grafana dashboards in `dir`, as `(dashboard / panel, expr)`,
/// with the template variables replaced so Prometheus can run them: `$job` and `$instance`
/// match everything, `$__rate_interval` is `rate_interval`.
pub fn dashboard_queries(dir: &Path, rate_interval: &str) -> Result<Vec<(String, String)>, String> {
    let mut queries = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    for file in files {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let dashboard: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        let title = dashboard["title"].as_str().unwrap_or("?").to_string();
        // Panels may sit inside collapsed rows.
        let mut panels: Vec<&serde_json::Value> = dashboard["panels"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        while let Some(panel) = panels.pop() {
            panels.extend(panel["panels"].as_array().into_iter().flatten());
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    let runnable = expr
                        .replace("$__rate_interval", rate_interval)
                        .replace("\"$job\"", "\".+\"")
                        .replace("\"$instance\"", "\".+\"");
                    queries.push((
                        format!("{title} / {}", panel["title"].as_str().unwrap_or("?")),
                        runnable,
                    ));
                }
            }
        }
    }
    Ok(queries)
}

/// The parallelism that matches `segments`: one reader per segment, in whole TaskManagers of
/// `slots` slots.
fn matching_parallelism(segments: f64, slots: u32) -> f64 {
    (segments / f64::from(slots)).ceil() * f64::from(slots)
}

/// Summarizes sampled series (one sample per `step`, `None` where unknown).
pub fn summarize(
    segments: &[Option<f64>],
    parallelism: &[Option<f64>],
    step: Duration,
    slots: u32,
) -> AlignmentSummary {
    let step_secs = step.as_secs_f64();
    let aligned_at = |i: usize| match (segments[i], parallelism[i]) {
        (Some(s), Some(p)) => Some(p == matching_parallelism(s, slots)),
        _ => None,
    };
    let samples = segments.len().min(parallelism.len());
    let known: Vec<bool> = (0..samples).filter_map(aligned_at).collect();
    let misaligned_fraction = (!known.is_empty())
        .then(|| known.iter().filter(|a| !**a).count() as f64 / known.len() as f64);

    let changes = |series: &[Option<f64>]| -> Vec<usize> {
        let mut last = None;
        let mut at = Vec::new();
        for (i, value) in series.iter().enumerate() {
            if let Some(v) = value {
                if last.is_some_and(|l| l != *v) {
                    at.push(i);
                }
                last = Some(*v);
            }
        }
        at
    };
    let segment_changes = changes(segments);
    let (mut all, mut ups, mut downs) = (Vec::new(), Vec::new(), Vec::new());
    let mut unaligned_at_end = 0;
    for &start in &segment_changes {
        let Some(end) = (start..samples).find(|&i| aligned_at(i) == Some(true)) else {
            unaligned_at_end += 1;
            continue;
        };
        let seconds = (end - start) as f64 * step_secs;
        all.push(seconds);
        let before = segments[..start].iter().rev().find_map(|v| *v);
        if before.is_some_and(|b| segments[start].is_some_and(|now| now > b)) {
            ups.push(seconds);
        } else {
            downs.push(seconds);
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (!v.is_empty()).then(|| v[v.len() / 2])
    };
    let max = all.iter().copied().reduce(f64::max);
    AlignmentSummary {
        rescales: changes(parallelism).len(),
        segment_changes: segment_changes.len(),
        alignment_seconds_median: median(all),
        alignment_seconds_max: max,
        scale_up_alignment_seconds_median: median(ups),
        scale_down_alignment_seconds_median: median(downs),
        unaligned_at_end,
        misaligned_fraction,
        observed_seconds: known.len() as f64 * step_secs,
        dashboard_queries: None,
    }
}

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
    pub streams: Vec<crate::observe::StreamId>,
}

impl ReportQuery {
    async fn range(
        &self,
        http: &reqwest::Client,
        query: &str,
    ) -> Result<Vec<Option<f64>>, ReportError> {
        let failed = |message: String| ReportError::Query {
            query: query.into(),
            message,
        };
        let step = self.step.as_secs_f64();
        let body: serde_json::Value = http
            .get(format!(
                "{}/api/v1/query_range",
                self.prometheus.trim_end_matches('/')
            ))
            .query(&[
                ("query", query.to_string()),
                ("start", format!("{:.3}", self.from)),
                ("end", format!("{:.3}", self.to)),
                ("step", format!("{step}")),
            ])
            .send()
            .await
            .map_err(|e| failed(e.to_string()))?
            .json()
            .await
            .map_err(|e| failed(e.to_string()))?;
        if body["status"] != "success" {
            return Err(failed(
                body["error"].as_str().unwrap_or("query failed").into(),
            ));
        }
        let samples = ((self.to - self.from) / step).floor() as usize + 1;
        let mut values = vec![None; samples];
        // Several series (e.g. one per TaskManager) are summed per sample.
        for series in body["data"]["result"].as_array().into_iter().flatten() {
            for point in series["values"].as_array().into_iter().flatten() {
                let (Some(t), Some(v)) = (
                    point[0].as_f64(),
                    point[1].as_str().and_then(|v| v.parse::<f64>().ok()),
                ) else {
                    continue;
                };
                let i = ((t - self.from) / step).round() as usize;
                if i < samples && v.is_finite() {
                    values[i] = Some(values[i].unwrap_or(0.0) + v);
                }
            }
        }
        Ok(values)
    }

    /// Evaluates `queries` over the run; returns which gave no sample at all.
    pub async fn check_dashboards(
        &self,
        queries: &[(String, String)],
    ) -> Result<DashboardCheck, ReportError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
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

    /// Fetches every series of the report.
    pub async fn fetch(&self) -> Result<RunSeries, ReportError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        let segments_query = if self.streams.is_empty() {
            "sum(segment_autoscaler_stream_segments)".to_string()
        } else {
            let matchers: Vec<String> = self
                .streams
                .iter()
                .map(|s| format!("max by (scope, stream) (pravega_controller_segments_count{{scope=\"{}\",stream=\"{}\"}})", s.scope, s.stream))
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
            .range(&http, "max(segment_autoscaler_job_parallelism)")
            .await?;
        let step = self.step.as_secs_f64();
        let seconds = (0..segments.len()).map(|i| i as f64 * step).collect();
        Ok(RunSeries {
            seconds,
            target_rate,
            achieved_rate,
            segments,
            taskmanagers,
            parallelism,
        })
    }
}

/// Writes `report.png` and `summary.json` into `out`.
pub fn write_report(
    out: &Path,
    series: &RunSeries,
    step: Duration,
    slots: u32,
    dashboards: Option<DashboardCheck>,
) -> Result<AlignmentSummary, ReportError> {
    std::fs::create_dir_all(out).map_err(|e| ReportError::Output {
        path: out.display().to_string(),
        message: e.to_string(),
    })?;
    let summary = AlignmentSummary {
        dashboard_queries: dashboards,
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
    render(&chart_path, series).map_err(|message| ReportError::Output {
        path: chart_path.display().to_string(),
        message,
    })?;
    Ok(summary)
}

/// One line of a panel.
struct Line<'a> {
    name: &'static str,
    values: &'a [Option<f64>],
    color: plotters::style::RGBColor,
    width: u32,
    /// Counts hold until they change: drawn as steps rather than slopes.
    stepped: bool,
}

/// Two panels over time: load (target vs achieved) above; segments, TaskManagers and job
/// parallelism (steps) below.
fn render(path: &Path, s: &RunSeries) -> Result<(), String> {
    use plotters::prelude::*;
    let root = BitMapBackend::new(path, (1400, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (top, bottom) = root.split_vertically(450);
    let line = |name, values, color, width, stepped| Line {
        name,
        values,
        color,
        width,
        stepped,
    };
    let max_of = |lines: &[Line]| {
        lines
            .iter()
            .flat_map(|l| l.values.iter().flatten())
            .copied()
            .fold(0.0, f64::max)
    };

    let load = [
        line("target", &s.target_rate, BLUE, 2, false),
        line("achieved", &s.achieved_rate, GREEN, 2, false),
    ];
    let rate_max = (max_of(&load) * 1.1).max(1.0);
    draw_panel(
        &top,
        "Load (events/s)",
        "events/s",
        rate_max,
        &s.seconds,
        &load,
    )?;
    let counts = [
        line("segments", &s.segments, RED, 4, true),
        line(
            "TaskManagers",
            &s.taskmanagers,
            RGBColor(230, 120, 0),
            2,
            true,
        ),
        line("job parallelism", &s.parallelism, BLUE, 2, true),
    ];
    let count_max = (max_of(&counts) + 1.0).max(2.0);
    draw_panel(
        &bottom,
        "Segments, TaskManagers and job parallelism",
        "count",
        count_max,
        &s.seconds,
        &counts,
    )?;
    root.present().map_err(|e| e.to_string())
}

/// Draws `lines` against `seconds` in `area`, with a caption, axes and a legend. Unknown
/// samples split a line instead of being drawn as 0.
fn draw_panel<DB: plotters::prelude::DrawingBackend>(
    area: &plotters::prelude::DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    y_desc: &str,
    y_max: f64,
    seconds: &[f64],
    lines: &[Line],
) -> Result<(), String> {
    use plotters::prelude::*;
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let end = seconds.last().copied().unwrap_or(1.0).max(1.0);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 26))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..end, 0.0..y_max)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc(y_desc)
        .draw()
        .map_err(|e| err(&e))?;
    for line in lines {
        let mut runs = vec![Vec::new()];
        for (t, value) in seconds.iter().zip(line.values) {
            match value {
                Some(y) => {
                    let run = runs.last_mut().expect("non-empty");
                    if let (true, Some(&(_, previous))) = (line.stepped, run.last()) {
                        run.push((*t, previous));
                    }
                    run.push((*t, *y));
                }
                None if !runs.last().expect("non-empty").is_empty() => runs.push(Vec::new()),
                None => {}
            }
        }
        let color = line.color;
        for (i, run) in runs.into_iter().enumerate() {
            let drawn = chart
                .draw_series(LineSeries::new(run, color.stroke_width(line.width)))
                .map_err(|e| err(&e))?;
            if i == 0 {
                drawn.label(line.name).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
                });
            }
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))
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

    fn series(values: &[i64]) -> Vec<Option<f64>> {
        values
            .iter()
            .map(|&v| (v >= 0).then_some(v as f64))
            .collect()
    }

    #[test]
    fn alignment_is_timed_from_each_segment_change() {
        // segments 1 -> 2 at 2, 2 -> 1 at 8; the job follows 3 s and 2 s later.
        let segments = series(&[1, 1, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1]);
        let parallelism = series(&[1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 1, 1]);
        let s = summarize(&segments, &parallelism, Duration::from_secs(1), 1);
        assert_eq!((s.segment_changes, s.rescales), (2, 2));
        assert_eq!(
            (s.alignment_seconds_median, s.alignment_seconds_max),
            (Some(3.0), Some(3.0))
        );
        assert_eq!(s.unaligned_at_end, 0);
        assert_eq!(s.misaligned_fraction, Some(5.0 / 12.0));
        assert_eq!(s.observed_seconds, 12.0);
    }

    #[test]
    fn unknown_samples_are_left_out_and_open_changes_counted() {
        let segments = series(&[1, -1, 1, 3, 3]);
        let parallelism = series(&[1, 1, -1, 1, 1]);
        let s = summarize(&segments, &parallelism, Duration::from_secs(2), 1);
        assert_eq!(
            (
                s.segment_changes,
                s.unaligned_at_end,
                s.alignment_seconds_median
            ),
            (1, 1, None)
        );
        assert_eq!(s.misaligned_fraction, Some(2.0 / 3.0));
        assert_eq!(s.observed_seconds, 6.0);
    }

    #[test]
    fn slots_round_the_matching_parallelism_up() {
        let s = summarize(
            &series(&[3, 3]),
            &series(&[4, 4]),
            Duration::from_secs(1),
            2,
        );
        assert_eq!(
            s.misaligned_fraction,
            Some(0.0),
            "3 segments on 2-slot TaskManagers: parallelism 4"
        );
    }

    #[test]
    fn dashboard_queries_are_made_runnable() {
        let dir = std::env::temp_dir().join(format!("sa-dash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dashboard = serde_json::json!({"title": "d", "panels": [
            {"title": "p", "targets": [{"expr": "sum(rate(x_total{job=~\"$job\", instance=~\"$instance\"}[$__rate_interval]))"}]},
            {"title": "row", "type": "row", "panels": [{"title": "inner", "targets": [{"expr": "up"}]}]}
        ]});
        std::fs::write(dir.join("d.json"), dashboard.to_string()).unwrap();
        std::fs::write(dir.join("notes.txt"), "not a dashboard").unwrap();
        let mut queries = dashboard_queries(&dir, "1m").unwrap();
        queries.sort();
        assert_eq!(
            queries,
            vec![
                ("d / inner".to_string(), "up".to_string()),
                (
                    "d / p".to_string(),
                    "sum(rate(x_total{job=~\".+\", instance=~\".+\"}[1m]))".to_string()
                ),
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_project_dashboards_have_queries() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards");
        let queries = dashboard_queries(&dir, "1m").unwrap();
        assert!(queries.len() >= 9, "{queries:?}");
        assert!(
            queries.iter().all(|(_, q)| !q.contains('$')),
            "every variable is replaced: {queries:?}"
        );
    }

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
        };
        let summary = write_report(&dir, &run, Duration::from_secs(1), 1, None).unwrap();
        assert_eq!(summary.alignment_seconds_max, Some(4.0));
        let png = std::fs::read(dir.join("report.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(json["rescales"], 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

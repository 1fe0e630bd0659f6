//! `report.png`: load above; segments, TaskManagers and job parallelism below; and, when the
//! job reported a backlog, the backlog under them.

use std::path::Path;

use crate::query::RunSeries;

/// One line of a panel.
struct Line<'a> {
    name: &'static str,
    values: &'a [Option<f64>],
    color: plotters::style::RGBColor,
    width: u32,
    /// Counts hold until they change: drawn as steps rather than slopes.
    stepped: bool,
}

/// Two panels over time: load (target vs achieved, and the stream's policy target when the
/// autoscaler read one) above; segments, TaskManagers and job parallelism (steps) below; a third
/// with the backlog and when the job fell behind, when a backlog was known.
/// `events` (e.g. "30 000 written, 0 lost, 0 duplicated") goes into the load panel's caption;
/// each of the run's marks (a chaos run's faults) is a labelled vertical line in the lower one.
pub(crate) fn render(
    path: &Path,
    s: &RunSeries,
    alignment_mode: Option<&str>,
    events: Option<&str>,
) -> Result<(), String> {
    use plotters::prelude::*;
    let with_backlog = s.backlog.iter().any(Option::is_some);
    let height = if with_backlog { 1300 } else { 900 };
    let root = BitMapBackend::new(path, (1400, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (top, rest) = root.split_vertically(450);
    let (bottom, lowest) = rest.split_vertically(450);
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
        line(
            "policy target per segment",
            &s.policy_target,
            RGBColor(150, 0, 150),
            2,
            true,
        ),
    ];
    let rate_max = (max_of(&load) * 1.1).max(1.0);
    let load_caption = match events {
        Some(events) => format!("Load (events/s): {events}"),
        None => "Load (events/s)".to_string(),
    };
    draw_panel(
        &top,
        &load_caption,
        "events/s",
        rate_max,
        &s.seconds,
        &load,
        &[],
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
        line(
            "warm TaskManagers",
            &s.warm_taskmanagers,
            RGBColor(150, 150, 150),
            1,
            true,
        ),
    ];
    let count_max = (max_of(&counts) + 1.0).max(2.0);
    let counts_caption = match alignment_mode {
        Some(mode) => format!("Segments, TaskManagers and job parallelism ({mode} mode)"),
        None => "Segments, TaskManagers and job parallelism".to_string(),
    };
    draw_panel(
        &bottom,
        &counts_caption,
        "count",
        count_max,
        &s.seconds,
        &counts,
        &s.marks,
    )?;
    if with_backlog {
        let backlog_max = (s.backlog.iter().flatten().copied().fold(0.0, f64::max) * 1.1).max(1.0);
        // Falling behind drawn as a band along the top: 0 or 95 % of the panel.
        let behind: Vec<Option<f64>> = s
            .falling_behind
            .iter()
            .map(|v| v.map(|v| if v > 0.0 { backlog_max * 0.95 } else { 0.0 }))
            .collect();
        let lines = [
            line("backlog (events)", &s.backlog, RED, 2, false),
            line("falling behind", &behind, RGBColor(120, 120, 120), 1, true),
        ];
        draw_panel(
            &lowest,
            "Backlog: events written and not read (pendingRecords)",
            "events",
            backlog_max,
            &s.seconds,
            &lines,
            &[],
        )?;
    }
    root.present().map_err(|e| e.to_string())
}

/// Draws `lines` against `seconds` in `area`, with a caption, axes, a legend and `marks`.
/// Unknown samples split a line instead of being drawn as 0.
fn draw_panel<DB: plotters::prelude::DrawingBackend>(
    area: &plotters::prelude::DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    y_desc: &str,
    y_max: f64,
    seconds: &[f64],
    lines: &[Line],
    marks: &[(f64, String)],
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
    let grey = RGBColor(90, 90, 90);
    for (i, (at, label)) in marks.iter().enumerate() {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(*at, 0.0), (*at, y_max)],
                grey.stroke_width(1),
            )))
            .map_err(|e| err(&e))?;
        // Labels alternate between two heights, so neighbours do not overlap.
        let height = y_max * if i % 2 == 0 { 0.96 } else { 0.88 };
        chart
            .draw_series(std::iter::once(Text::new(
                label.clone(),
                (*at, height),
                ("sans-serif", 14).into_font().color(&grey),
            )))
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))
}

/// The chart of `benches/peers`: one panel per contender (its name and a figure in the
/// caption), the stream's segments against the job's parallelism (0 while it restarts) over the
/// run, every panel on the same axes so they compare at a glance.
pub(crate) fn render_peers(
    path: &Path,
    panels: &[(String, &[crate::timeline::TimelineSample])],
) -> Result<(), String> {
    use plotters::prelude::*;
    const PANEL_HEIGHT: u32 = 260;
    let height = PANEL_HEIGHT * panels.len().max(1) as u32;
    let root = BitMapBackend::new(path, (1400, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let areas = root.split_evenly((panels.len().max(1), 1));
    let longest = panels
        .iter()
        .filter_map(|(_, t)| Some(t.last()?.at - t.first()?.at))
        .fold(1.0, f64::max);
    let highest = panels
        .iter()
        .flat_map(|(_, t)| t.iter())
        .flat_map(|s| [s.segments, s.parallelism])
        .flatten()
        .max()
        .unwrap_or(1);
    for ((caption, timeline), area) in panels.iter().zip(&areas) {
        let start = timeline.first().map_or(0.0, |s| s.at);
        let mut seconds: Vec<f64> = timeline.iter().map(|s| s.at - start).collect();
        let segments: Vec<Option<f64>> =
            timeline.iter().map(|s| s.segments.map(f64::from)).collect();
        let readers: Vec<Option<f64>> = timeline
            .iter()
            .map(|s| Some(f64::from(s.parallelism.unwrap_or(0))))
            .collect();
        // Every panel spans the longest run: a point at its end, unknown.
        let (mut segments, mut readers) = (segments, readers);
        seconds.push(longest);
        segments.push(None);
        readers.push(None);
        let lines = [
            Line {
                name: "segments",
                values: &segments,
                color: RED,
                width: 4,
                stepped: true,
            },
            Line {
                name: "job parallelism (0: restarting)",
                values: &readers,
                color: BLUE,
                width: 2,
                stepped: true,
            },
        ];
        draw_panel(
            area,
            caption,
            "count",
            f64::from(highest) + 1.0,
            &seconds,
            &lines,
            &[],
        )?;
    }
    root.present().map_err(|e| e.to_string())
}

//! The figures of `benches/peers`: how closely each contender (segment-autoscaler, KEDA, the
//! HPA pipeline, Flink's own autoscaler) kept the job's readers at the stream's segments, all
//! computed from the same one-second [`TimelineSample`]s (`run-timeline`), so no contender is
//! measured by its own numbers. Pure: a timeline in, [`ContenderFigures`] out.
//!
//! The backlog is events written minus verified, each counter at its highest so far.
//!
//! Readers are the job's source subtasks: the source's parallelism while every task runs, none
//! while the job is between two schedules (restarting, waiting for resources). A sample lasts
//! until the next one (at most [`MAX_SAMPLE_SECONDS`], so a stalled sampler does not stretch
//! one reading over a gap). Segments and counters the sampler could not read at an instant keep
//! their last value: the controller's count and the events only change when read again.

use serde::Serialize;

use crate::faults::median;
use crate::summary::EventCounts;
use crate::timeline::TimelineSample;

/// The longest time one sample stands for.
pub const MAX_SAMPLE_SECONDS: f64 = 5.0;

/// One change of the stream's segments and how long the contender took to follow it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentChange {
    /// Seconds since the start of the run.
    pub at_seconds: f64,
    /// Segments before.
    pub from: u32,
    /// Segments after.
    pub to: u32,
    /// Seconds until the job first ran at parallelism = `to`; None when it did not before the
    /// next change (or the end of the run).
    pub aligned_after: Option<f64>,
}

/// What a contender did over its run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContenderFigures {
    /// Its name in the benchmark (e.g. `keda-pravega-samples`).
    pub contender: String,
    /// Seconds with the segments known.
    pub observed_seconds: f64,
    /// Every segment change, in order.
    pub changes: Vec<SegmentChange>,
    /// Median and longest time to align after segment increases.
    pub scale_up_seconds_median: Option<f64>,
    /// See `scale_up_seconds_median`.
    pub scale_up_seconds_max: Option<f64>,
    /// Median and longest time to align after segment decreases.
    pub scale_down_seconds_median: Option<f64>,
    /// See `scale_down_seconds_median`.
    pub scale_down_seconds_max: Option<f64>,
    /// Changes the job never followed before the next one.
    pub changes_not_followed: usize,
    /// Share of `observed_seconds` with parallelism = segments.
    pub aligned_share: f64,
    /// Reader-subtask-seconds beyond the segments (readers with no segment to read).
    pub idle_reader_seconds: f64,
    /// Reader-subtask-seconds short of the segments (segments no reader reads, restarts
    /// included).
    pub missing_reader_seconds: f64,
    /// TaskManagers registered, integrated over the run.
    pub taskmanager_seconds: f64,
    /// Times the job left its running parallelism (a restart or a rescale).
    pub restarts: usize,
    /// The highest backlog (events written minus verified), when both were sampled.
    pub peak_backlog: Option<u64>,
    /// Seconds from that peak until the backlog was back at the run's median (its steady
    /// level); None when it never was.
    pub backlog_drain_seconds: Option<f64>,
    /// Events end to end after the run, once the job caught up (from `demo-report`).
    pub events: EventCounts,
}

/// The figures of one contender's `timeline`, with the event counts read after its run.
pub fn contender_figures(
    contender: &str,
    timeline: &[TimelineSample],
    events: EventCounts,
) -> ContenderFigures {
    let start = timeline.first().map_or(0.0, |s| s.at);
    let carried = |field: fn(&TimelineSample) -> Option<u64>| {
        let mut last = None;
        timeline
            .iter()
            .map(|s| {
                last = field(s).or(last);
                last
            })
            .collect::<Vec<_>>()
    };
    let segments = carried(|s| s.segments.map(u64::from));
    let taskmanagers = carried(|s| s.taskmanagers.map(u64::from));
    // Counters, so their highest so far: mid-rescale the sum over the verifier's subtasks is
    // low while some of their series are gone and the others not yet there.
    let running_max = |values: Vec<Option<u64>>| {
        let mut highest = None;
        values
            .into_iter()
            .map(|v| {
                highest = v.max(highest);
                highest
            })
            .collect::<Vec<_>>()
    };
    let written = running_max(carried(|s| s.written));
    let read = running_max(carried(|s| s.read));
    let readers = |i: usize| u64::from(timeline[i].parallelism.unwrap_or(0));
    let lasts = |i: usize| {
        timeline.get(i + 1).map_or(0.0, |next| {
            (next.at - timeline[i].at).clamp(0.0, MAX_SAMPLE_SECONDS)
        })
    };

    let (mut observed, mut aligned, mut idle, mut missing, mut tm_seconds) =
        (0.0, 0.0, 0.0, 0.0, 0.0);
    for i in 0..timeline.len() {
        let dt = lasts(i);
        tm_seconds += taskmanagers[i].unwrap_or(0) as f64 * dt;
        let Some(s) = segments[i] else { continue };
        observed += dt;
        let p = readers(i);
        if timeline[i].parallelism.is_some() && p == s {
            aligned += dt;
        }
        idle += p.saturating_sub(s) as f64 * dt;
        missing += s.saturating_sub(p) as f64 * dt;
    }

    let mut changes = Vec::new();
    let change_at: Vec<usize> = (1..timeline.len())
        .filter(|&i| segments[i - 1].is_some() && segments[i] != segments[i - 1])
        .collect();
    for (k, &i) in change_at.iter().enumerate() {
        let (Some(from), Some(to)) = (segments[i - 1], segments[i]) else {
            continue;
        };
        let until = change_at.get(k + 1).copied().unwrap_or(timeline.len());
        let aligned_after = (i..until)
            .find(|&j| timeline[j].parallelism.map(u64::from) == Some(to))
            .map(|j| timeline[j].at - timeline[i].at);
        changes.push(SegmentChange {
            at_seconds: timeline[i].at - start,
            from: from as u32,
            to: to as u32,
            aligned_after,
        });
    }
    let times = |up: bool| {
        let mut v: Vec<f64> = changes
            .iter()
            .filter(|c| (c.to > c.from) == up)
            .filter_map(|c| c.aligned_after)
            .collect();
        v.sort_by(f64::total_cmp);
        (median(&v), v.last().copied())
    };
    let (scale_up_seconds_median, scale_up_seconds_max) = times(true);
    let (scale_down_seconds_median, scale_down_seconds_max) = times(false);

    let restarts = timeline
        .windows(2)
        .filter(|w| w[0].parallelism.is_some() && w[1].parallelism != w[0].parallelism)
        .count();

    let backlog: Vec<Option<u64>> = written
        .iter()
        .zip(&read)
        .map(|(w, r)| Some(w.as_ref()?.saturating_sub(*r.as_ref()?)))
        .collect();
    let (peak_backlog, backlog_drain_seconds) = backlog_peak_and_drain(timeline, &backlog);

    ContenderFigures {
        contender: contender.to_string(),
        observed_seconds: observed,
        changes_not_followed: changes.iter().filter(|c| c.aligned_after.is_none()).count(),
        changes,
        scale_up_seconds_median,
        scale_up_seconds_max,
        scale_down_seconds_median,
        scale_down_seconds_max,
        aligned_share: if observed > 0.0 {
            aligned / observed
        } else {
            0.0
        },
        idle_reader_seconds: idle,
        missing_reader_seconds: missing,
        taskmanager_seconds: tm_seconds,
        restarts,
        peak_backlog,
        backlog_drain_seconds,
        events,
    }
}

/// The highest backlog, and the seconds from it until the backlog was back at the run's median.
fn backlog_peak_and_drain(
    timeline: &[TimelineSample],
    backlog: &[Option<u64>],
) -> (Option<u64>, Option<f64>) {
    let known: Vec<(usize, u64)> = backlog
        .iter()
        .enumerate()
        .filter_map(|(i, b)| b.map(|b| (i, b)))
        .collect();
    let Some(&(peak_at, peak)) = known
        .iter()
        .max_by_key(|(i, b)| (*b, std::cmp::Reverse(*i)))
    else {
        return (None, None);
    };
    let mut levels: Vec<f64> = known.iter().map(|(_, b)| *b as f64).collect();
    levels.sort_by(f64::total_cmp);
    let steady = median(&levels).unwrap_or(0.0);
    let drained = known
        .iter()
        .find(|(i, b)| *i > peak_at && *b as f64 <= steady)
        .map(|(i, _)| timeline[*i].at - timeline[peak_at].at);
    (Some(peak), drained)
}

/// The table of `benches/peers` (Markdown), one row per contender.
pub fn table(figures: &[ContenderFigures]) -> String {
    let seconds = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
    let count = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    let mut out = String::from(
        "| contender | run (min) | segment changes | followed | up: median / max (s) | down: median / max (s) | aligned | idle reader-s | missing reader-s | TaskManager-s | restarts | peak backlog | drained after (s) | lost | duplicated |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for f in figures {
        out.push_str(&format!(
            "| {} | {:.1} | {} | {} | {} / {} | {} / {} | {:.1} % | {:.0} | {:.0} | {:.0} | {} | {} | {} | {} | {} |\n",
            f.contender,
            f.observed_seconds / 60.0,
            f.changes.len(),
            f.changes.len() - f.changes_not_followed,
            seconds(f.scale_up_seconds_median),
            seconds(f.scale_up_seconds_max),
            seconds(f.scale_down_seconds_median),
            seconds(f.scale_down_seconds_max),
            f.aligned_share * 100.0,
            f.idle_reader_seconds,
            f.missing_reader_seconds,
            f.taskmanager_seconds,
            f.restarts,
            count(f.peak_backlog),
            seconds(f.backlog_drain_seconds),
            count(f.events.events_lost),
            count(f.events.events_duplicated),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A timeline of one sample a second from `(segments, parallelism)` pairs.
    fn timeline(samples: &[(u32, Option<u32>)]) -> Vec<TimelineSample> {
        samples
            .iter()
            .enumerate()
            .map(|(i, &(segments, parallelism))| TimelineSample {
                at: 1000.0 + i as f64,
                segments: Some(segments),
                parallelism,
                taskmanagers: parallelism,
                ..TimelineSample::default()
            })
            .collect()
    }

    fn figures(samples: &[(u32, Option<u32>)]) -> ContenderFigures {
        contender_figures("c", &timeline(samples), EventCounts::default())
    }

    #[test]
    fn a_change_is_followed_when_the_job_first_runs_at_the_new_segments() {
        let f = figures(&[
            (1, Some(1)),
            (2, Some(1)),
            (2, None),
            (2, None),
            (2, Some(2)),
            (2, Some(2)),
        ]);
        assert_eq!(
            f.changes,
            vec![SegmentChange {
                at_seconds: 1.0,
                from: 1,
                to: 2,
                aligned_after: Some(3.0)
            }]
        );
        assert_eq!(
            (f.scale_up_seconds_median, f.scale_up_seconds_max),
            (Some(3.0), Some(3.0))
        );
        assert_eq!(f.scale_down_seconds_median, None);
        assert_eq!(f.changes_not_followed, 0);
        // 5 seconds observed (the last sample lasts 0), 2 of them aligned.
        assert_eq!(f.observed_seconds, 5.0);
        assert!((f.aligned_share - 0.4).abs() < 1e-9, "{}", f.aligned_share);
        // Short one reader for a second at 1 of 2, two readers for two seconds restarting.
        assert_eq!(f.missing_reader_seconds, 5.0);
        assert_eq!(f.idle_reader_seconds, 0.0);
        assert_eq!(f.restarts, 1);
    }

    #[test]
    fn a_change_overtaken_by_the_next_is_not_followed() {
        let f = figures(&[
            (1, Some(1)),
            (3, Some(1)),
            (3, Some(2)),
            (2, Some(2)),
            (2, Some(2)),
        ]);
        let followed: Vec<Option<f64>> = f.changes.iter().map(|c| c.aligned_after).collect();
        // 1 -> 3 never reached 3 before the 3 -> 2, which was aligned at once.
        assert_eq!(followed, vec![None, Some(0.0)]);
        assert_eq!(f.changes_not_followed, 1);
        assert_eq!(f.scale_down_seconds_max, Some(0.0));
    }

    #[test]
    fn readers_beyond_the_segments_are_idle() {
        // Flink's autoscaler knows no segments: 4 readers on 2 segments.
        let f = figures(&[(2, Some(4)), (2, Some(4)), (2, Some(4))]);
        assert_eq!(f.idle_reader_seconds, 4.0);
        assert_eq!(f.missing_reader_seconds, 0.0);
        assert_eq!(f.aligned_share, 0.0);
        assert_eq!(f.taskmanager_seconds, 8.0);
    }

    #[test]
    fn unknown_segments_keep_their_last_value_and_long_gaps_count_at_most_the_cap() {
        let mut t = timeline(&[(2, Some(2)), (2, Some(2)), (2, Some(2))]);
        t[1].segments = None;
        t[2].at += 60.0;
        let f = contender_figures("c", &t, EventCounts::default());
        assert!(f.changes.is_empty(), "{:?}", f.changes);
        assert_eq!(f.observed_seconds, 1.0 + MAX_SAMPLE_SECONDS);
        assert_eq!(f.aligned_share, 1.0);
    }

    #[test]
    fn the_backlog_peaks_and_drains_back_to_its_steady_level() {
        let mut t = timeline(&[(1, Some(1)); 8]);
        let written = [100, 200, 300, 400, 500, 600, 700, 800];
        // The reader falls behind, stops while restarting (no figure), then catches up.
        let read = [
            Some(90),
            Some(190),
            Some(200),
            None,
            Some(250),
            Some(560),
            Some(690),
            Some(790),
        ];
        for (s, (w, r)) in t.iter_mut().zip(written.iter().zip(read)) {
            s.written = Some(*w);
            s.read = r;
        }
        let f = contender_figures("c", &t, EventCounts::default());
        // Backlogs 10 10 100 200 250 40 10 10 (at 3 s the read count carried: 400 - 200).
        assert_eq!(f.peak_backlog, Some(250));
        // Their median is 25: back at or below it at 6 s, 2 s after the peak.
        assert_eq!(f.backlog_drain_seconds, Some(2.0));
    }

    #[test]
    fn a_verified_count_low_mid_rescale_is_no_backlog() {
        let mut t = timeline(&[(1, Some(1)); 4]);
        // The second sample sums only some of the verifier's subtasks.
        for (s, (w, r)) in t
            .iter_mut()
            .zip([(100, 100), (200, 20), (300, 300), (400, 400)])
        {
            s.written = Some(w);
            s.read = Some(r);
        }
        let f = contender_figures("c", &t, EventCounts::default());
        assert_eq!(f.peak_backlog, Some(100));
    }

    #[test]
    fn without_events_sampled_there_is_no_backlog() {
        let f = figures(&[(1, Some(1)), (1, Some(1))]);
        assert_eq!((f.peak_backlog, f.backlog_drain_seconds), (None, None));
    }

    #[test]
    fn the_table_has_a_row_per_contender() {
        let f = figures(&[(1, Some(1)), (2, Some(1)), (2, Some(2))]);
        let table = table(&[
            f.clone(),
            ContenderFigures {
                contender: "d".into(),
                ..f
            },
        ]);
        assert_eq!(table.lines().count(), 4);
        assert!(
            table.contains("| c | 0.0 | 1 | 1 | 1 / 1 | - / - | 50.0 % |"),
            "{table}"
        );
    }
}

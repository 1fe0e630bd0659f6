//! The alignment figures of `summary.json`: how often and how fast the job's parallelism
//! followed the segments.

use std::time::Duration;

use serde::Serialize;

/// Where the demo ran: the figures of a local run and of a Kubernetes run differ (a TaskManager
/// pod takes longer to start than a local process).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// Processes on this machine (`deploy/local/demo`).
    Local,
    /// Pods on a Kubernetes cluster (`deploy/local/demo --kubernetes`).
    Kubernetes,
}

/// What a run's alignment looked like.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlignmentSummary {
    /// Where the run happened, when told (`--platform`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
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
    /// The autoscaler's alignment mode (`reactive`, `prewarmed`; both joined by `+` when it
    /// changed during the run), null when no autoscaler reported one.
    pub alignment_mode: Option<String>,
    /// TaskManagers kept warm beyond the job's, summed over the run: the prewarmed mode's cost
    /// (null when none were reported, as in reactive mode).
    pub warm_taskmanager_seconds: Option<f64>,
    /// The job's backlog over the run, when it reported one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backlog: Option<BacklogSummary>,
    /// Dashboard queries evaluated over the run (with `--dashboards`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dashboard_queries: Option<DashboardCheck>,
    /// Events written by the generator against those the busy reader verified (null when a
    /// figure was not there to read).
    #[serde(flatten)]
    pub events: EventCounts,
}

/// Events end to end: what the data generator wrote (acknowledged by Pravega) and what the busy
/// reader's `verify-sequence` operator counted in its checkpointed state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct EventCounts {
    /// Events Pravega acknowledged to the generator.
    pub events_written: Option<u64>,
    /// Events the job verified, duplicates included.
    pub events_read: Option<u64>,
    /// Written events the job has not verified: missing sequence numbers, and those never read
    /// by the end (so only meaningful once the job has caught up, see `events_caught_up`).
    pub events_lost: Option<u64>,
    /// Events the job verified more than once.
    pub events_duplicated: Option<u64>,
    /// Sequence numbers the job saw skipped and still misses.
    pub events_gaps: Option<u64>,
    /// Whether the job had verified exactly the events written when the figures were read.
    /// More than written is not caught up either: the figures were read mid-rescale (a
    /// stopping TaskManager's subtasks still scraped beside the restored ones).
    pub events_caught_up: Option<bool>,
}

/// The backlog figures of a run (README: Backlog).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacklogSummary {
    /// The highest backlog, events.
    pub peak_records: f64,
    /// Seconds from the start to that peak.
    pub peak_at_seconds: f64,
    /// The last backlog known.
    pub last_records: f64,
    /// Seconds the job was judged falling behind.
    pub falling_behind_seconds: f64,
    /// The stream's policy target first and last read, events/s per segment (null when none
    /// was read): they differ when the autoscaler tuned it.
    pub policy_target_first: Option<f64>,
    /// See `policy_target_first`.
    pub policy_target_last: Option<f64>,
}

/// The backlog figures of sampled series (one sample per `step`), None when no backlog was
/// known during the run.
pub fn summarize_backlog(
    backlog: &[Option<f64>],
    falling_behind: &[Option<f64>],
    policy_target: &[Option<f64>],
    step: Duration,
) -> Option<BacklogSummary> {
    let step = step.as_secs_f64();
    let (peak_at, peak) = backlog
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, v)))
        .fold(None, |best: Option<(usize, f64)>, (i, v)| match best {
            Some((_, b)) if b >= v => best,
            _ => Some((i, v)),
        })?;
    let behind = falling_behind
        .iter()
        .filter(|v| v.is_some_and(|v| v > 0.0))
        .count();
    Some(BacklogSummary {
        peak_records: peak,
        peak_at_seconds: peak_at as f64 * step,
        last_records: backlog.iter().rev().find_map(|v| *v)?,
        falling_behind_seconds: behind as f64 * step,
        policy_target_first: policy_target.iter().find_map(|v| *v),
        policy_target_last: policy_target.iter().rev().find_map(|v| *v),
    })
}

/// The verifier's figures, summed over its subtasks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VerifiedEvents {
    /// Events verified, duplicates and unsequenced ones included.
    pub read: u64,
    /// Events seen again.
    pub duplicates: u64,
    /// Events without a sequence number (not the generator's).
    pub unsequenced: u64,
    /// Sequence numbers missing now.
    pub gaps: u64,
}

impl EventCounts {
    /// "N written, N read, N lost, N duplicated" (what is known), None when nothing is.
    pub fn describe(&self) -> Option<String> {
        let parts: Vec<String> = [
            (self.events_written, "written"),
            (self.events_read, "read"),
            (self.events_lost, "lost"),
            (self.events_duplicated, "duplicated"),
        ]
        .iter()
        .filter_map(|(n, what)| n.map(|n| format!("{n} {what}")))
        .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// The counts from `written` and the verifier's figures; either may be unknown.
    pub fn new(written: Option<u64>, verified: Option<VerifiedEvents>) -> EventCounts {
        let distinct = verified.map(|v| {
            v.read
                .saturating_sub(v.duplicates)
                .saturating_sub(v.unsequenced)
        });
        let (lost, caught_up) = match (written, distinct) {
            (Some(w), Some(d)) => (Some(w.saturating_sub(d)), Some(w == d)),
            _ => (None, None),
        };
        EventCounts {
            events_written: written,
            events_read: verified.map(|v| v.read),
            events_lost: lost,
            events_duplicated: verified.map(|v| v.duplicates),
            events_gaps: verified.map(|v| v.gaps),
            events_caught_up: caught_up,
        }
    }
}

/// Whether every dashboard query had data during the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DashboardCheck {
    /// Queries evaluated.
    pub checked: usize,
    /// `dashboard / panel: query` of those that returned no sample.
    pub without_data: Vec<String>,
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
        platform: None,
        rescales: changes(parallelism).len(),
        segment_changes: segment_changes.len(),
        alignment_seconds_median: median(all),
        alignment_seconds_max: max,
        scale_up_alignment_seconds_median: median(ups),
        scale_down_alignment_seconds_median: median(downs),
        unaligned_at_end,
        misaligned_fraction,
        observed_seconds: known.len() as f64 * step_secs,
        alignment_mode: None,
        warm_taskmanager_seconds: None,
        backlog: None,
        dashboard_queries: None,
        events: EventCounts::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_events_are_those_written_and_never_verified_once() {
        let verified = VerifiedEvents {
            read: 105,
            duplicates: 3,
            unsequenced: 2,
            gaps: 0,
        };
        let counts = EventCounts::new(Some(100), Some(verified));
        assert_eq!(counts.events_lost, Some(0));
        assert_eq!(counts.events_caught_up, Some(true));
        let behind = EventCounts::new(Some(110), Some(verified));
        assert_eq!(
            (behind.events_lost, behind.events_caught_up),
            (Some(10), Some(false))
        );
        let counted_twice = EventCounts::new(Some(90), Some(verified));
        assert_eq!(
            (counted_twice.events_lost, counted_twice.events_caught_up),
            (Some(0), Some(false))
        );
        let unknown = EventCounts::new(None, Some(verified));
        assert_eq!(
            (
                unknown.events_read,
                unknown.events_lost,
                unknown.events_caught_up
            ),
            (Some(105), None, None)
        );
        let json = serde_json::to_value(AlignmentSummary {
            events: counts.clone(),
            ..summarize(&[], &[], Duration::from_secs(1), 1)
        })
        .unwrap();
        assert_eq!(
            counts.describe().as_deref(),
            Some("100 written, 105 read, 0 lost, 3 duplicated")
        );
        assert_eq!(EventCounts::default().describe(), None);
        assert_eq!(json["events_written"], 100);
        assert_eq!(json["events_duplicated"], 3);
    }

    #[test]
    fn the_backlog_summary_has_its_peak_the_time_behind_and_the_targets() {
        let step = Duration::from_secs(2);
        assert_eq!(
            summarize_backlog(&series(&[-1, -1]), &[], &[], step),
            None,
            "no backlog known: no summary"
        );
        let summary = summarize_backlog(
            &series(&[-1, 100, 400, 900, 700, 200, -1]),
            &series(&[-1, 0, 1, 1, 1, 0, 0]),
            &series(&[1000, 1000, 1000, 150, 150, 150, 150]),
            step,
        )
        .unwrap();
        assert_eq!(
            summary,
            BacklogSummary {
                peak_records: 900.0,
                peak_at_seconds: 6.0,
                last_records: 200.0,
                falling_behind_seconds: 6.0,
                policy_target_first: Some(1000.0),
                policy_target_last: Some(150.0),
            }
        );
    }

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
}

//! Plan: from observations and history to a [`ScaleDecision`] with a human-readable reason.
//!
//! Pure: no I/O and no clock (the time is an input), so every case is unit-tested below.
//! The rules:
//! - desired = ceil(segments / slots per TaskManager), clamped to [min, max] replicas and to
//!   the job's max parallelism when Flink reports it (min replicas wins over the latter);
//!   never below 1;
//! - scale up at once; scale down only once the lower target has held for the whole
//!   stabilization window (then to the highest target seen in that window);
//! - hold, saying why, when any stream's count is unknown or invalid, a source is down, or the
//!   current replica count is unknown;
//! - hold while the target is paused: its replicas are 0, which only someone else can set.

pub mod prewarmed;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::domain::Combine;
use crate::observe::Observation;

/// A binding's bounds, from its configuration.
#[derive(Debug, Clone)]
pub struct ScalingPolicy {
    /// Fewest TaskManagers.
    pub min_replicas: u32,
    /// Most TaskManagers.
    pub max_replicas: u32,
    /// Task slots per TaskManager.
    pub slots_per_taskmanager: u32,
    /// How streams' counts combine.
    pub combine: Combine,
    /// How long a lower target must hold before scaling down.
    pub scale_down_stabilization: Duration,
}

impl From<&crate::config::Binding> for ScalingPolicy {
    fn from(b: &crate::config::Binding) -> Self {
        ScalingPolicy {
            min_replicas: b.min_replicas,
            max_replicas: b.max_replicas,
            slots_per_taskmanager: b.slots_per_taskmanager,
            combine: b.combine,
            scale_down_stabilization: b.scale_down_stabilization,
        }
    }
}

/// What one reconciliation knows about a binding.
#[derive(Debug)]
pub struct PlanInput {
    /// One observation per bound stream.
    pub observations: Vec<Observation>,
    /// The target's current replicas (in the prewarmed mode: the job's size, see
    /// [`prewarmed::job_size`]), or why they are unknown.
    pub current_replicas: Result<u32, String>,
    /// The job's max parallelism (of its source vertex), when Flink reported it.
    pub max_parallelism: Option<u32>,
    /// The time of this reconciliation.
    pub now: Instant,
}

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Raise the replicas to `desired_replicas`.
    ScaleUp,
    /// Lower the replicas to `desired_replicas`.
    ScaleDown,
    /// Change nothing.
    Hold,
}

impl Action {
    /// The label value used in metrics and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ScaleUp => "scale_up",
            Action::ScaleDown => "scale_down",
            Action::Hold => "hold",
        }
    }
}

/// The outcome of planning one binding.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleDecision {
    /// The combined segment count, if every stream's count is known.
    pub segments: Option<u32>,
    /// The target's replicas, if known.
    pub current_replicas: Option<u32>,
    /// The replicas the segments call for (after clamping), if the segments are known.
    pub desired_replicas: Option<u32>,
    /// What to do now.
    pub action: Action,
    /// Why, for people.
    pub reason: String,
}

impl ScaleDecision {
    /// Whether the target is paused: its replicas are 0, which the autoscaler never writes
    /// (`min_replicas` is at least 1), so someone else set them.
    pub fn paused(&self) -> bool {
        self.current_replicas == Some(0)
    }

    /// The replica count to apply, for a scale action.
    pub fn apply_to(&self) -> Option<u32> {
        match self.action {
            Action::ScaleUp | Action::ScaleDown => self.desired_replicas,
            Action::Hold => None,
        }
    }
}

/// Recent desired-replica figures of one binding, for scale-down stabilization.
#[derive(Debug, Clone, Default)]
pub struct ScaleHistory {
    recommendations: VecDeque<(Instant, u32)>,
}

impl ScaleHistory {
    fn record(&mut self, now: Instant, desired: u32, window: Duration) {
        self.recommendations.push_back((now, desired));
        // Keep the newest entry at or before the window's start: it tells what held then.
        while self.recommendations.len() > 1
            && now.saturating_duration_since(self.recommendations[1].0) >= window
        {
            self.recommendations.pop_front();
        }
    }

    /// The highest figure over the window ending at `now`, or `None` if the history does not
    /// reach back over the whole window yet.
    fn highest_over(&self, now: Instant, window: Duration) -> Option<u32> {
        let oldest = self.recommendations.front()?;
        if now.saturating_duration_since(oldest.0) < window {
            return None;
        }
        self.recommendations.iter().map(|&(_, d)| d).max()
    }

    /// How long the figures have stayed below `current`.
    fn below_since(&self, now: Instant, current: u32) -> Duration {
        let since = self
            .recommendations
            .iter()
            .rev()
            .take_while(|&&(_, d)| d < current)
            .last()
            .map(|&(t, _)| t);
        since.map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
    }
}

/// Plans one binding. Records the new desired figure in `history`.
pub fn plan(
    policy: &ScalingPolicy,
    input: &PlanInput,
    history: &mut ScaleHistory,
) -> ScaleDecision {
    let current = input.current_replicas.as_ref().ok().copied();
    let hold = |segments, desired, reason: String| ScaleDecision {
        segments,
        current_replicas: current,
        desired_replicas: desired,
        action: Action::Hold,
        reason,
    };

    // Every stream's count must be known and plausible; otherwise hold, naming each problem.
    let problems: Vec<String> = input
        .observations
        .iter()
        .filter(|o| o.reading.segments().is_none())
        .map(|o| format!("{} ({}): {}", o.stream, o.source.as_str(), o.reading))
        .collect();
    if input.observations.is_empty() {
        return hold(None, None, "hold: no stream observed".into());
    }
    // Someone else scaled the target to 0: a pause to respect, not a gap to fill.
    if current == Some(0) {
        return hold(
            None,
            None,
            "hold: paused, the target's replicas were set to 0 by someone else; scaling resumes when they are set above 0".into(),
        );
    }
    if !problems.is_empty() {
        return hold(
            None,
            None,
            format!("hold: segment count unknown for {}", problems.join("; ")),
        );
    }
    let counts = input
        .observations
        .iter()
        .filter_map(|o| o.reading.segments());
    let segments = match policy.combine {
        // Each count is at most MAX_PLAUSIBLE_SEGMENTS, but many streams could still overflow.
        Combine::Sum => counts.fold(0u32, u32::saturating_add),
        Combine::Max => counts.max().unwrap_or(0),
    };

    let (desired, clamp_note) = desired_replicas(policy, segments, input.max_parallelism);
    history.record(input.now, desired, policy.scale_down_stabilization);

    let current = match &input.current_replicas {
        Ok(current) => *current,
        Err(why) => {
            return hold(
                Some(segments),
                Some(desired),
                format!("hold: current replicas unknown: {why}"),
            )
        }
    };
    let basis = format!("{segments} segments -> {desired} TaskManagers{clamp_note}");
    if desired > current {
        return ScaleDecision {
            segments: Some(segments),
            current_replicas: Some(current),
            desired_replicas: Some(desired),
            action: Action::ScaleUp,
            reason: format!("scale up from {current}: {basis}"),
        };
    }
    if desired == current {
        return hold(
            Some(segments),
            Some(desired),
            format!("hold: aligned, {basis}"),
        );
    }
    let window = policy.scale_down_stabilization;
    match history.highest_over(input.now, window) {
        Some(stabilized) if stabilized < current => ScaleDecision {
            segments: Some(segments),
            current_replicas: Some(current),
            desired_replicas: Some(stabilized),
            action: Action::ScaleDown,
            reason: if stabilized == desired {
                format!(
                    "scale down from {current}: {basis}, held for {}",
                    humantime::format_duration(window)
                )
            } else {
                format!("scale down from {current} to {stabilized}, the highest target of the last {}: {basis}", humantime::format_duration(window))
            },
        },
        _ => {
            let held = history.below_since(input.now, current);
            hold(
                Some(segments),
                Some(desired),
                format!(
                    "hold: scale down from {current} waits for stabilization ({basis}; below {current} for {}s of {}s)",
                    held.as_secs(),
                    window.as_secs()
                ),
            )
        }
    }
}

/// ceil(segments / slots), clamped to the policy and to the job's max parallelism, never below
/// 1; with a note on which clamp applied.
fn desired_replicas(
    policy: &ScalingPolicy,
    segments: u32,
    max_parallelism: Option<u32>,
) -> (u32, String) {
    let needed = segments.div_ceil(policy.slots_per_taskmanager);
    let mut desired = needed.clamp(policy.min_replicas, policy.max_replicas);
    let mut note = match needed {
        n if n < policy.min_replicas => {
            format!(" (raised to min_replicas {})", policy.min_replicas)
        }
        n if n > policy.max_replicas => {
            format!(" (capped at max_replicas {})", policy.max_replicas)
        }
        _ => String::new(),
    };
    if let Some(max_parallelism) = max_parallelism {
        let useful = max_parallelism
            .div_ceil(policy.slots_per_taskmanager)
            .max(1);
        // min_replicas is the operator's explicit floor and wins over the cap: the extra
        // TaskManagers idle, which is cheaper to notice than a floor silently broken.
        if desired > useful && useful < policy.min_replicas {
            desired = policy.min_replicas;
            note = format!(
                " (min_replicas {} kept, above the job's max parallelism {max_parallelism}: {} TaskManager(s) idle)",
                policy.min_replicas,
                policy.min_replicas - useful
            );
        } else if desired > useful {
            desired = useful;
            note = format!(" (capped by the job's max parallelism {max_parallelism})");
        }
    }
    (desired.max(1), note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{SourceKind, StreamId};
    use crate::observe::{SegmentReading, SourceError, Undetermined};

    fn policy() -> ScalingPolicy {
        ScalingPolicy {
            min_replicas: 1,
            max_replicas: 32,
            slots_per_taskmanager: 1,
            combine: Combine::Sum,
            scale_down_stabilization: Duration::from_secs(60),
        }
    }

    fn observed(stream: &str, reading: SegmentReading) -> Observation {
        Observation {
            stream: stream.parse::<StreamId>().unwrap(),
            reading,
            source: SourceKind::Controller,
        }
    }

    fn input(now: Instant, segments: &[u32], current: u32) -> PlanInput {
        PlanInput {
            observations: segments
                .iter()
                .enumerate()
                .map(|(i, &n)| observed(&format!("demo/s{i}"), SegmentReading::Segments(n)))
                .collect(),
            current_replicas: Ok(current),
            max_parallelism: None,
            now,
        }
    }

    fn at(start: Instant, secs: u64) -> Instant {
        start + Duration::from_secs(secs)
    }

    #[test]
    fn scales_up_at_once() {
        let t0 = Instant::now();
        let d = plan(&policy(), &input(t0, &[4], 1), &mut ScaleHistory::default());
        assert_eq!(
            (d.action, d.desired_replicas, d.segments, d.current_replicas),
            (Action::ScaleUp, Some(4), Some(4), Some(1))
        );
        assert_eq!(d.apply_to(), Some(4));
        assert!(
            d.reason
                .contains("scale up from 1: 4 segments -> 4 TaskManagers"),
            "{}",
            d.reason
        );
    }

    #[test]
    fn holds_when_aligned() {
        let d = plan(
            &policy(),
            &input(Instant::now(), &[3], 3),
            &mut ScaleHistory::default(),
        );
        assert_eq!((d.action, d.desired_replicas), (Action::Hold, Some(3)));
        assert_eq!(d.apply_to(), None);
        assert!(d.reason.starts_with("hold: aligned"), "{}", d.reason);
    }

    #[test]
    fn scales_down_only_after_the_lower_target_held_for_the_window() {
        let t0 = Instant::now();
        let mut history = ScaleHistory::default();
        // Running at 4 for a while, then the stream merges to 2.
        assert_eq!(
            plan(&policy(), &input(t0, &[4], 4), &mut history).action,
            Action::Hold
        );
        let d = plan(&policy(), &input(at(t0, 10), &[2], 4), &mut history);
        assert_eq!((d.action, d.desired_replicas), (Action::Hold, Some(2)));
        assert!(d.reason.contains("waits for stabilization"), "{}", d.reason);
        let d = plan(&policy(), &input(at(t0, 69), &[2], 4), &mut history);
        assert_eq!(
            d.action,
            Action::Hold,
            "59 s of 60 s is not enough: {}",
            d.reason
        );
        assert!(d.reason.contains("below 4 for 59s of 60s"), "{}", d.reason);
        let d = plan(&policy(), &input(at(t0, 70), &[2], 4), &mut history);
        assert_eq!(
            (d.action, d.desired_replicas),
            (Action::ScaleDown, Some(2)),
            "{}",
            d.reason
        );
    }

    #[test]
    fn a_fresh_process_does_not_scale_down_before_a_full_window() {
        let t0 = Instant::now();
        let mut history = ScaleHistory::default();
        let d = plan(&policy(), &input(t0, &[1], 5), &mut history);
        assert_eq!(d.action, Action::Hold, "no history yet: {}", d.reason);
        let d = plan(&policy(), &input(at(t0, 60), &[1], 5), &mut history);
        assert_eq!((d.action, d.desired_replicas), (Action::ScaleDown, Some(1)));
    }

    #[test]
    fn scale_down_goes_to_the_highest_target_of_the_window() {
        let t0 = Instant::now();
        let mut history = ScaleHistory::default();
        plan(&policy(), &input(t0, &[8], 8), &mut history);
        plan(&policy(), &input(at(t0, 30), &[3], 8), &mut history);
        plan(&policy(), &input(at(t0, 50), &[2], 8), &mut history);
        // The target was 8 until 30 s, so at 70 s nothing lower has held for 60 s yet.
        assert_eq!(
            plan(&policy(), &input(at(t0, 70), &[2], 8), &mut history).action,
            Action::Hold
        );
        // At 90 s the window [30 s, 90 s] saw 3 and 2: go to 3, not 2.
        let d = plan(&policy(), &input(at(t0, 90), &[2], 8), &mut history);
        assert_eq!(
            (d.action, d.desired_replicas),
            (Action::ScaleDown, Some(3)),
            "{}",
            d.reason
        );
        assert!(d.reason.contains("highest target"), "{}", d.reason);
        // Once 3 is out of the window too, on down to 2.
        let d = plan(&policy(), &input(at(t0, 110), &[2], 3), &mut history);
        assert_eq!(
            (d.action, d.desired_replicas),
            (Action::ScaleDown, Some(2)),
            "{}",
            d.reason
        );
    }

    #[test]
    fn a_rise_inside_the_window_restarts_the_wait() {
        let t0 = Instant::now();
        let mut history = ScaleHistory::default();
        plan(&policy(), &input(t0, &[4], 4), &mut history);
        plan(&policy(), &input(at(t0, 10), &[2], 4), &mut history);
        plan(&policy(), &input(at(t0, 40), &[4], 4), &mut history);
        plan(&policy(), &input(at(t0, 41), &[2], 4), &mut history);
        let d = plan(&policy(), &input(at(t0, 75), &[2], 4), &mut history);
        assert_eq!(
            d.action,
            Action::Hold,
            "the target was 4 at 40 s: {}",
            d.reason
        );
        let d = plan(&policy(), &input(at(t0, 101), &[2], 4), &mut history);
        assert_eq!(
            (d.action, d.desired_replicas),
            (Action::ScaleDown, Some(2)),
            "{}",
            d.reason
        );
    }

    #[test]
    fn zero_stabilization_scales_down_at_once() {
        let policy = ScalingPolicy {
            scale_down_stabilization: Duration::ZERO,
            ..policy()
        };
        let d = plan(
            &policy,
            &input(Instant::now(), &[1], 3),
            &mut ScaleHistory::default(),
        );
        assert_eq!((d.action, d.desired_replicas), (Action::ScaleDown, Some(1)));
    }

    #[test]
    fn scale_up_is_not_delayed_by_the_window() {
        let t0 = Instant::now();
        let mut history = ScaleHistory::default();
        plan(&policy(), &input(t0, &[2], 4), &mut history);
        let d = plan(&policy(), &input(at(t0, 1), &[6], 4), &mut history);
        assert_eq!((d.action, d.desired_replicas), (Action::ScaleUp, Some(6)));
    }

    #[test]
    fn slots_per_taskmanager_round_up() {
        let policy = ScalingPolicy {
            slots_per_taskmanager: 2,
            ..policy()
        };
        let d = plan(
            &policy,
            &input(Instant::now(), &[5], 1),
            &mut ScaleHistory::default(),
        );
        assert_eq!(
            d.desired_replicas,
            Some(3),
            "5 segments need 3 TaskManagers of 2 slots"
        );
        let d = plan(
            &policy,
            &input(Instant::now(), &[4], 1),
            &mut ScaleHistory::default(),
        );
        assert_eq!(d.desired_replicas, Some(2));
    }

    #[test]
    fn clamps_to_min_and_max_replicas() {
        let policy = ScalingPolicy {
            min_replicas: 2,
            max_replicas: 5,
            ..policy()
        };
        let d = plan(
            &policy,
            &input(Instant::now(), &[1], 2),
            &mut ScaleHistory::default(),
        );
        assert_eq!((d.action, d.desired_replicas), (Action::Hold, Some(2)));
        assert!(
            d.reason.contains("raised to min_replicas 2"),
            "{}",
            d.reason
        );
        let d = plan(
            &policy,
            &input(Instant::now(), &[9], 2),
            &mut ScaleHistory::default(),
        );
        assert_eq!((d.action, d.desired_replicas), (Action::ScaleUp, Some(5)));
        assert!(
            d.reason.contains("capped at max_replicas 5"),
            "{}",
            d.reason
        );
    }

    #[test]
    fn clamps_to_the_jobs_max_parallelism() {
        let mut i = input(Instant::now(), &[12], 2);
        i.max_parallelism = Some(8);
        let d = plan(&policy(), &i, &mut ScaleHistory::default());
        assert_eq!((d.action, d.desired_replicas), (Action::ScaleUp, Some(8)));
        assert!(d.reason.contains("max parallelism 8"), "{}", d.reason);
        let policy = ScalingPolicy {
            slots_per_taskmanager: 3,
            ..policy()
        };
        let d = plan(&policy, &i, &mut ScaleHistory::default());
        assert_eq!(
            d.desired_replicas,
            Some(3),
            "8 subtasks fit in 3 TaskManagers of 3 slots"
        );
    }

    #[test]
    fn replicas_at_zero_mean_paused() {
        let t0 = Instant::now();
        let mut history = ScaleHistory::default();
        let d = plan(&policy(), &input(t0, &[4], 0), &mut history);
        assert_eq!((d.action, d.apply_to()), (Action::Hold, None));
        assert!(d.paused());
        assert!(d.reason.starts_with("hold: paused"), "{}", d.reason);
        // Set back above 0: the segments are followed again at once.
        let d = plan(&policy(), &input(at(t0, 5), &[4], 1), &mut history);
        assert!(!d.paused());
        assert_eq!((d.action, d.apply_to()), (Action::ScaleUp, Some(4)));
    }

    #[test]
    fn min_replicas_wins_over_a_lower_max_parallelism() {
        let policy = ScalingPolicy {
            min_replicas: 3,
            ..policy()
        };
        let mut i = input(Instant::now(), &[12], 1);
        i.max_parallelism = Some(2);
        let d = plan(&policy, &i, &mut ScaleHistory::default());
        assert_eq!((d.action, d.desired_replicas), (Action::ScaleUp, Some(3)));
        assert!(
            d.reason.contains(
                "min_replicas 3 kept, above the job's max parallelism 2: 1 TaskManager(s) idle"
            ),
            "{}",
            d.reason
        );
        // Between the two, the cap applies as usual.
        i.max_parallelism = Some(5);
        let d = plan(&policy, &i, &mut ScaleHistory::default());
        assert_eq!(d.desired_replicas, Some(5));
    }

    #[test]
    fn a_sum_of_many_streams_saturates_instead_of_overflowing() {
        let i = input(Instant::now(), &[u32::MAX / 2, u32::MAX / 2, 10], 1);
        let d = plan(&policy(), &i, &mut ScaleHistory::default());
        assert_eq!((d.segments, d.desired_replicas), (Some(u32::MAX), Some(32)));
    }

    #[test]
    fn never_below_one() {
        let mut i = input(Instant::now(), &[3], 1);
        i.max_parallelism = Some(0);
        let d = plan(&policy(), &i, &mut ScaleHistory::default());
        assert_eq!(d.desired_replicas, Some(1));
        assert_eq!(
            desired_replicas(
                &ScalingPolicy {
                    min_replicas: 0,
                    ..policy()
                },
                0,
                None
            )
            .0,
            1
        );
    }

    #[test]
    fn combines_streams_by_sum_or_max() {
        let d = plan(
            &policy(),
            &input(Instant::now(), &[2, 3], 1),
            &mut ScaleHistory::default(),
        );
        assert_eq!((d.segments, d.desired_replicas), (Some(5), Some(5)));
        let policy = ScalingPolicy {
            combine: Combine::Max,
            ..policy()
        };
        let d = plan(
            &policy,
            &input(Instant::now(), &[2, 3], 1),
            &mut ScaleHistory::default(),
        );
        assert_eq!((d.segments, d.desired_replicas), (Some(3), Some(3)));
    }

    #[test]
    fn holds_on_every_kind_of_bad_reading() {
        let bad = [
            SegmentReading::Undetermined(Undetermined::NoSeries {
                lookback: Duration::from_secs(600),
            }),
            SegmentReading::Undetermined(Undetermined::Unordered {
                reports: vec!["c1: 3".into(), "c2: 5".into()],
            }),
            SegmentReading::Undetermined(Undetermined::NotScraped {
                targets: vec!["c1: up == 0".into()],
            }),
            SegmentReading::from_sample(f64::NAN),
            SegmentReading::from_sample(-2.0),
            SegmentReading::from_sample(0.0),
            SegmentReading::from_sample(1.5),
            SegmentReading::from_sample(1e12),
            SegmentReading::Unavailable(SourceError::Unreachable {
                endpoint: "controller tcp://c:9090".into(),
                message: "connection refused".into(),
            }),
        ];
        for reading in bad {
            let mut i = input(Instant::now(), &[4], 2);
            i.observations
                .push(observed("demo/broken", reading.clone()));
            let mut history = ScaleHistory::default();
            let d = plan(&policy(), &i, &mut history);
            assert_eq!(
                (d.action, d.segments, d.desired_replicas),
                (Action::Hold, None, None),
                "{reading:?}"
            );
            assert!(
                d.reason.contains("demo/broken (controller)"),
                "{}",
                d.reason
            );
            assert!(d.reason.contains(&reading.to_string()), "{}", d.reason);
            assert!(
                history.recommendations.is_empty(),
                "bad data is not recorded"
            );
        }
    }

    #[test]
    fn a_count_last_reported_a_while_ago_is_a_count() {
        let mut i = input(Instant::now(), &[], 1);
        i.observations.push(observed(
            "demo/s0",
            SegmentReading::LastReported {
                segments: 3,
                age: Duration::from_secs(600),
            },
        ));
        let d = plan(&policy(), &i, &mut ScaleHistory::default());
        assert_eq!(
            (d.action, d.desired_replicas),
            (Action::ScaleUp, Some(3)),
            "{}",
            d.reason
        );
    }

    #[test]
    fn bad_data_never_scales_down_even_after_the_window() {
        let t0 = Instant::now();
        let mut history = ScaleHistory::default();
        plan(&policy(), &input(t0, &[4], 4), &mut history);
        let mut i = input(at(t0, 120), &[], 4);
        i.observations.push(observed(
            "demo/s0",
            SegmentReading::Undetermined(Undetermined::NoSeries {
                lookback: Duration::from_secs(600),
            }),
        ));
        assert_eq!(plan(&policy(), &i, &mut history).action, Action::Hold);
    }

    #[test]
    fn holds_when_current_replicas_are_unknown() {
        let mut i = input(Instant::now(), &[4], 0);
        i.current_replicas = Err(crate::actuate::ActuateError::Command {
            command: "stack taskmanagers".into(),
            message: "exit status: 3: deployments.apps \"tm\" is forbidden".into(),
        }
        .to_string());
        let d = plan(&policy(), &i, &mut ScaleHistory::default());
        assert_eq!(
            (d.action, d.current_replicas, d.desired_replicas),
            (Action::Hold, None, Some(4))
        );
        assert!(
            d.reason
                .contains("current replicas unknown: command \"stack taskmanagers\": exit status: 3: deployments.apps"),
            "{}",
            d.reason
        );
    }

    #[test]
    fn holds_with_no_streams() {
        let d = plan(
            &policy(),
            &input(Instant::now(), &[], 1),
            &mut ScaleHistory::default(),
        );
        assert_eq!(d.action, Action::Hold);
    }
}

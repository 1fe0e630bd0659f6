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
//! - hold while the bound job has not answered once since the binding was declared: a wrong
//!   Flink URL or job name is a mistake to report, not an outage to scale through;
//! - hold while the target is paused: its replicas are 0, which only someone else can set.

pub mod backlog;
pub mod prewarmed;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::actuate::ActuateError;
use crate::domain::Combine;
use crate::flink::FlinkError;
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
    /// The TaskManagers the job runs on, or why that is unknown: every TaskManager in
    /// reactive mode; in the prewarmed mode, its requirement's worth of slots
    /// ([`prewarmed::job_size`]), the headroom apart. 0 when the target is paused.
    pub job_taskmanagers: Result<u32, Unknown>,
    /// The job's max parallelism (of its source vertex), when Flink reported it.
    pub max_parallelism: Option<u32>,
    /// Why the bound job has not answered once since the binding was declared, while it has
    /// not. Once it has, a later outage no longer holds: the TaskManagers follow the segments
    /// within the last known cap.
    pub job_unconfirmed: Option<FlinkError>,
    /// The time of this reconciliation.
    pub now: Instant,
}

/// Why the TaskManagers the job runs on are unknown.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unknown {
    /// The target's replicas could not be read.
    #[error("{0}")]
    Target(Arc<ActuateError>),
    /// The prewarmed mode's job requirement could not be read.
    #[error("{0}")]
    Requirement(#[from] prewarmed::RequirementUnknown),
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
#[derive(Debug, Clone)]
pub struct ScaleDecision {
    /// The combined segment count, if every stream's count is known.
    pub segments: Option<u32>,
    /// The TaskManagers the job runs on ([`PlanInput::job_taskmanagers`]), if known.
    pub job_taskmanagers: Option<u32>,
    /// The TaskManagers the segments call for (after clamping), if the segments are known.
    pub desired_replicas: Option<u32>,
    /// What to do now.
    pub action: Action,
    /// Why, for people (its `Display`).
    pub reason: Reason,
}

impl ScaleDecision {
    /// Whether the target is paused: its replicas are 0, which the autoscaler never writes
    /// (`min_replicas` is at least 1), so someone else set them.
    pub fn paused(&self) -> bool {
        self.job_taskmanagers == Some(0)
    }

    /// The replica count to apply, for a scale action.
    pub fn apply_to(&self) -> Option<u32> {
        match self.action {
            Action::ScaleUp | Action::ScaleDown => self.desired_replicas,
            Action::Hold => None,
        }
    }
}

/// Why the plan decided as it did.
#[derive(Debug, Clone)]
pub enum Reason {
    /// The binding observed no stream.
    NoStream,
    /// The target's replicas are 0: someone else paused it.
    Paused,
    /// These streams' counts are unknown or implausible.
    SegmentsUnknown(Vec<Observation>),
    /// The TaskManagers the job runs on are unknown.
    CurrentUnknown(Unknown),
    /// The bound job has not answered since the binding was declared.
    JobUnconfirmed(FlinkError),
    /// The job runs on the TaskManagers the segments call for.
    Aligned(Basis),
    /// More TaskManagers are needed, from `from`.
    ScaleUp {
        /// The job's TaskManagers now.
        from: u32,
        /// The figures behind it.
        basis: Basis,
    },
    /// Fewer are needed, and have been for the whole `window`.
    ScaleDown {
        /// The job's TaskManagers now.
        from: u32,
        /// Where to: the highest target of the window.
        to: u32,
        /// The figures behind it.
        basis: Basis,
        /// The stabilization window.
        window: Duration,
    },
    /// Fewer are needed, but not yet for the whole window.
    AwaitingStabilization {
        /// The job's TaskManagers now.
        from: u32,
        /// The figures behind it.
        basis: Basis,
        /// How long the targets have stayed below `from`.
        below_for: Duration,
        /// The stabilization window.
        window: Duration,
    },
}

impl Reason {
    /// The kind of reason, a bounded word for conditions and labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Reason::NoStream => "NoStream",
            Reason::Paused => "Paused",
            Reason::SegmentsUnknown(_) => "SegmentsUnknown",
            Reason::CurrentUnknown(_) => "CurrentUnknown",
            Reason::JobUnconfirmed(_) => "JobUnconfirmed",
            Reason::Aligned(_) => "Aligned",
            Reason::ScaleUp { .. } => "ScaleUp",
            Reason::ScaleDown { .. } => "ScaleDown",
            Reason::AwaitingStabilization { .. } => "AwaitingStabilization",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NoStream => write!(f, "hold: no stream observed"),
            Reason::Paused => write!(f, "hold: paused, the target's replicas were set to 0 by someone else; scaling resumes when they are set above 0"),
            Reason::SegmentsUnknown(observations) => {
                write!(f, "hold: segment count unknown for ")?;
                for (i, o) in observations.iter().enumerate() {
                    let separator = if i == 0 { "" } else { "; " };
                    write!(f, "{separator}{} ({}): {}", o.stream, o.source.as_str(), o.reading)?;
                }
                Ok(())
            }
            Reason::CurrentUnknown(why) => write!(f, "hold: current replicas unknown: {why}"),
            Reason::JobUnconfirmed(why) => write!(f, "hold: the bound job has not answered since the binding was declared ({why}); nothing is scaled until it answers once"),
            Reason::Aligned(basis) => write!(f, "hold: aligned, {basis}"),
            Reason::ScaleUp { from, basis } => write!(f, "scale up from {from}: {basis}"),
            Reason::ScaleDown { from, to, basis, window } => {
                let window = humantime::format_duration(*window);
                if *to == basis.desired {
                    write!(f, "scale down from {from}: {basis}, held for {window}")
                } else {
                    write!(f, "scale down from {from} to {to}, the highest target of the last {window}: {basis}")
                }
            }
            Reason::AwaitingStabilization { from, basis, below_for, window } => write!(
                f,
                "hold: scale down from {from} waits for stabilization ({basis}; below {from} for {}s of {}s)",
                below_for.as_secs(),
                window.as_secs()
            ),
        }
    }
}

/// The figures a decision on known segments rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Basis {
    /// The combined segment count.
    pub segments: u32,
    /// The TaskManagers they call for, clamped.
    pub desired: u32,
    /// Which bound clamped them, if any.
    pub clamp: Option<Clamp>,
}

impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} segments -> {} TaskManagers",
            self.segments, self.desired
        )?;
        match self.clamp {
            None => Ok(()),
            Some(clamp) => write!(f, " ({clamp})"),
        }
    }
}

/// A bound that moved the TaskManagers the segments call for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clamp {
    /// Raised to `min_replicas`.
    RaisedToMin(u32),
    /// Capped at `max_replicas`.
    CappedAtMax(u32),
    /// Capped by the job's max parallelism.
    CappedByMaxParallelism(u32),
    /// `min_replicas` kept although the job's max parallelism leaves some TaskManagers idle.
    MinAboveMaxParallelism {
        /// `min_replicas`.
        min_replicas: u32,
        /// The job's max parallelism.
        max_parallelism: u32,
        /// TaskManagers left idle.
        idle: u32,
    },
}

impl fmt::Display for Clamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Clamp::RaisedToMin(min) => write!(f, "raised to min_replicas {min}"),
            Clamp::CappedAtMax(max) => write!(f, "capped at max_replicas {max}"),
            Clamp::CappedByMaxParallelism(max) => {
                write!(f, "capped by the job's max parallelism {max}")
            }
            Clamp::MinAboveMaxParallelism {
                min_replicas,
                max_parallelism,
                idle,
            } => write!(f, "min_replicas {min_replicas} kept, above the job's max parallelism {max_parallelism}: {idle} TaskManager(s) idle"),
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
    let current = input.job_taskmanagers.as_ref().ok().copied();
    let hold = |segments, desired, reason: Reason| ScaleDecision {
        segments,
        job_taskmanagers: current,
        desired_replicas: desired,
        action: Action::Hold,
        reason,
    };
    let segments = match combined_segments(policy, input) {
        Ok(segments) => segments,
        Err(why) => return hold(None, None, why),
    };
    let basis = desired_replicas(policy, segments, input.max_parallelism);
    let desired = basis.desired;
    history.record(input.now, desired, policy.scale_down_stabilization);
    if let Some(why) = &input.job_unconfirmed {
        return hold(
            Some(segments),
            Some(desired),
            Reason::JobUnconfirmed(why.clone()),
        );
    }
    let current = match &input.job_taskmanagers {
        Ok(current) => *current,
        Err(why) => {
            return hold(
                Some(segments),
                Some(desired),
                Reason::CurrentUnknown(why.clone()),
            )
        }
    };
    let (action, to, reason) = compare(policy, input.now, history, current, basis);
    ScaleDecision {
        segments: Some(segments),
        job_taskmanagers: Some(current),
        desired_replicas: Some(to),
        action,
        reason,
    }
}

/// The streams' combined count, or why the plan holds without one: no stream, a pause, or a
/// count unknown or implausible.
fn combined_segments(policy: &ScalingPolicy, input: &PlanInput) -> Result<u32, Reason> {
    if input.observations.is_empty() {
        return Err(Reason::NoStream);
    }
    // Someone else scaled the target to 0: a pause to respect, not a gap to fill.
    if input.job_taskmanagers.as_ref().ok() == Some(&0) {
        return Err(Reason::Paused);
    }
    // Every stream's count must be known and plausible; otherwise hold, naming each problem.
    let unknown: Vec<Observation> = input
        .observations
        .iter()
        .filter(|o| o.reading.segments().is_none())
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(Reason::SegmentsUnknown(unknown));
    }
    let counts = input
        .observations
        .iter()
        .filter_map(|o| o.reading.segments());
    Ok(match policy.combine {
        // Each count is at most MAX_PLAUSIBLE_SEGMENTS, but many streams could still overflow.
        Combine::Sum => counts.fold(0u32, u32::saturating_add),
        Combine::Max => counts.max().unwrap_or(0),
    })
}

/// The action from `current` TaskManagers towards `basis.desired`, and where to: up at once,
/// down only to the highest target of a full stabilization window.
fn compare(
    policy: &ScalingPolicy,
    now: Instant,
    history: &ScaleHistory,
    current: u32,
    basis: Basis,
) -> (Action, u32, Reason) {
    let desired = basis.desired;
    if desired > current {
        let reason = Reason::ScaleUp {
            from: current,
            basis,
        };
        return (Action::ScaleUp, desired, reason);
    }
    if desired == current {
        return (Action::Hold, desired, Reason::Aligned(basis));
    }
    let window = policy.scale_down_stabilization;
    match history.highest_over(now, window) {
        Some(stabilized) if stabilized < current => {
            let reason = Reason::ScaleDown {
                from: current,
                to: stabilized,
                basis,
                window,
            };
            (Action::ScaleDown, stabilized, reason)
        }
        _ => {
            let reason = Reason::AwaitingStabilization {
                from: current,
                basis,
                below_for: history.below_since(now, current),
                window,
            };
            (Action::Hold, desired, reason)
        }
    }
}

/// ceil(segments / slots), clamped to the policy and to the job's max parallelism, never below
/// 1; with the clamp that applied.
fn desired_replicas(policy: &ScalingPolicy, segments: u32, max_parallelism: Option<u32>) -> Basis {
    let needed = segments.div_ceil(policy.slots_per_taskmanager);
    let mut desired = needed.clamp(policy.min_replicas, policy.max_replicas);
    let mut clamp = match needed {
        n if n < policy.min_replicas => Some(Clamp::RaisedToMin(policy.min_replicas)),
        n if n > policy.max_replicas => Some(Clamp::CappedAtMax(policy.max_replicas)),
        _ => None,
    };
    if let Some(max_parallelism) = max_parallelism {
        let useful = max_parallelism
            .div_ceil(policy.slots_per_taskmanager)
            .max(1);
        // min_replicas is the operator's explicit floor and wins over the cap: the extra
        // TaskManagers idle, which is cheaper to notice than a floor silently broken.
        if desired > useful && useful < policy.min_replicas {
            desired = policy.min_replicas;
            clamp = Some(Clamp::MinAboveMaxParallelism {
                min_replicas: policy.min_replicas,
                max_parallelism,
                idle: policy.min_replicas - useful,
            });
        } else if desired > useful {
            desired = useful;
            clamp = Some(Clamp::CappedByMaxParallelism(max_parallelism));
        }
    }
    Basis {
        segments,
        desired: desired.max(1),
        clamp,
    }
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
            job_taskmanagers: Ok(current),
            max_parallelism: None,
            job_unconfirmed: None,
            now,
        }
    }

    /// Asserts the decision's action and desired replicas, showing its reason otherwise.
    fn expect(d: &ScaleDecision, action: Action, desired: Option<u32>) {
        assert_eq!(
            (d.action, d.desired_replicas),
            (action, desired),
            "{}",
            d.reason
        );
    }

    fn at(start: Instant, secs: u64) -> Instant {
        start + Duration::from_secs(secs)
    }

    #[test]
    fn scales_up_at_once() {
        let t0 = Instant::now();
        let d = plan(&policy(), &input(t0, &[4], 1), &mut ScaleHistory::default());
        assert_eq!(
            (d.action, d.desired_replicas, d.segments, d.job_taskmanagers),
            (Action::ScaleUp, Some(4), Some(4), Some(1))
        );
        assert_eq!(d.apply_to(), Some(4));
        assert!(
            d.reason
                .to_string()
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
        expect(&d, Action::Hold, Some(3));
        assert_eq!(d.apply_to(), None);
        assert!(
            d.reason.to_string().starts_with("hold: aligned"),
            "{}",
            d.reason
        );
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
        expect(&d, Action::Hold, Some(2));
        assert!(
            d.reason.to_string().contains("waits for stabilization"),
            "{}",
            d.reason
        );
        let d = plan(&policy(), &input(at(t0, 69), &[2], 4), &mut history);
        assert_eq!(
            d.action,
            Action::Hold,
            "59 s of 60 s is not enough: {}",
            d.reason
        );
        assert!(
            d.reason.to_string().contains("below 4 for 59s of 60s"),
            "{}",
            d.reason
        );
        let d = plan(&policy(), &input(at(t0, 70), &[2], 4), &mut history);
        expect(&d, Action::ScaleDown, Some(2));
    }

    #[test]
    fn a_fresh_process_does_not_scale_down_before_a_full_window() {
        let t0 = Instant::now();
        let mut history = ScaleHistory::default();
        let d = plan(&policy(), &input(t0, &[1], 5), &mut history);
        assert_eq!(d.action, Action::Hold, "no history yet: {}", d.reason);
        let d = plan(&policy(), &input(at(t0, 60), &[1], 5), &mut history);
        expect(&d, Action::ScaleDown, Some(1));
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
        expect(&d, Action::ScaleDown, Some(3));
        assert!(
            d.reason.to_string().contains("highest target"),
            "{}",
            d.reason
        );
        // Once 3 is out of the window too, on down to 2.
        let d = plan(&policy(), &input(at(t0, 110), &[2], 3), &mut history);
        expect(&d, Action::ScaleDown, Some(2));
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
        expect(&d, Action::ScaleDown, Some(2));
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
        expect(&d, Action::ScaleDown, Some(1));
    }

    #[test]
    fn scale_up_is_not_delayed_by_the_window() {
        let t0 = Instant::now();
        let mut history = ScaleHistory::default();
        plan(&policy(), &input(t0, &[2], 4), &mut history);
        let d = plan(&policy(), &input(at(t0, 1), &[6], 4), &mut history);
        expect(&d, Action::ScaleUp, Some(6));
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
        expect(&d, Action::Hold, Some(2));
        assert!(
            d.reason.to_string().contains("raised to min_replicas 2"),
            "{}",
            d.reason
        );
        let d = plan(
            &policy,
            &input(Instant::now(), &[9], 2),
            &mut ScaleHistory::default(),
        );
        expect(&d, Action::ScaleUp, Some(5));
        assert!(
            d.reason.to_string().contains("capped at max_replicas 5"),
            "{}",
            d.reason
        );
    }

    #[test]
    fn clamps_to_the_jobs_max_parallelism() {
        let mut i = input(Instant::now(), &[12], 2);
        i.max_parallelism = Some(8);
        let d = plan(&policy(), &i, &mut ScaleHistory::default());
        expect(&d, Action::ScaleUp, Some(8));
        assert!(
            d.reason.to_string().contains("max parallelism 8"),
            "{}",
            d.reason
        );
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
        assert!(
            d.reason.to_string().starts_with("hold: paused"),
            "{}",
            d.reason
        );
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
        expect(&d, Action::ScaleUp, Some(3));
        assert!(
            d.reason.to_string().contains(
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
            .desired,
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
                d.reason.to_string().contains("demo/broken (controller)"),
                "{}",
                d.reason
            );
            assert!(
                d.reason.to_string().contains(&reading.to_string()),
                "{}",
                d.reason
            );
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
        expect(&d, Action::ScaleUp, Some(3));
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
        i.job_taskmanagers = Err(Unknown::Target(Arc::new(
            crate::actuate::ActuateError::Command {
                command: "stack taskmanagers".into(),
                message: "exit status: 3: deployments.apps \"tm\" is forbidden".into(),
            },
        )));
        let d = plan(&policy(), &i, &mut ScaleHistory::default());
        assert_eq!(
            (d.action, d.job_taskmanagers, d.desired_replicas),
            (Action::Hold, None, Some(4))
        );
        assert!(
            d.reason.to_string()
                .contains("current replicas unknown: command \"stack taskmanagers\": exit status: 3: deployments.apps"),
            "{}",
            d.reason
        );
    }

    #[test]
    fn holds_until_the_bound_job_answers_once() {
        let mut i = input(Instant::now(), &[4], 1);
        i.job_unconfirmed = Some(FlinkError::Unreachable {
            url: "http://jm:8081".into(),
            message: "connection refused".into(),
        });
        let d = plan(&policy(), &i, &mut ScaleHistory::default());
        expect(&d, Action::Hold, Some(4));
        assert_eq!(d.reason.kind(), "JobUnconfirmed");
        assert!(
            d.reason
                .to_string()
                .contains("has not answered since the binding was declared")
                && d.reason.to_string().contains("http://jm:8081"),
            "{}",
            d.reason
        );
        // Nor downwards, whatever the window.
        let mut i = input(Instant::now(), &[1], 4);
        i.job_unconfirmed = Some(FlinkError::Unreachable {
            url: "http://jm:8081".into(),
            message: "connection refused".into(),
        });
        let mut zero = policy();
        zero.scale_down_stabilization = Duration::ZERO;
        expect(
            &plan(&zero, &i, &mut ScaleHistory::default()),
            Action::Hold,
            Some(1),
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

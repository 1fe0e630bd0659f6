//! The prewarmed alignment mode's writes, decided from the plan's [`ScaleDecision`] (made on
//! the job's size, in TaskManagers' worth of slots: see [`job_size`]) and what was read:
//! - the job first: its parallelism requirement follows a scale decision at once (on
//!   scale-up the headroom's slots are already there; on scale-down the plan has already
//!   waited for the stabilization);
//! - then the TaskManagers: the job's plus the headroom, within `max_replicas`, raised at once
//!   and released only once the job runs at its (lowered) requirement, so the slots it no
//!   longer needs are free.
//!
//! Pure, like the plan: every case is unit-tested below.

use std::fmt;
use std::sync::Arc;

use super::{ScaleDecision, ScalingPolicy, Unknown};
use crate::actuate::ActuateError;
use crate::domain::Alignment;
use crate::flink::{BetweenSchedules, FlinkError};

/// The job's parallelism requirement in the prewarmed mode: what the mode writes, and what
/// the plan weighs (as [`job_size`]).
#[derive(Debug, Clone)]
pub enum Requirement {
    /// Reactive mode: the job uses every TaskManager, no requirement is read.
    NotUsed,
    /// The requirement (its source vertex's upper bound).
    Known(u32),
    /// Unknown: the prewarmed mode holds.
    Unknown(RequirementUnknown),
}

impl Requirement {
    /// The requirement, when known.
    pub fn known(&self) -> Option<u32> {
        match self {
            Requirement::Known(required) => Some(*required),
            Requirement::NotUsed | Requirement::Unknown(_) => None,
        }
    }
}

/// Why the job's parallelism requirement is unknown (or must not be written).
#[derive(Debug, Clone, thiserror::Error)]
pub enum RequirementUnknown {
    /// The binding names no JobManager.
    #[error("the job's parallelism requirement is unknown: no flink.rest_url")]
    NoFlink,
    /// The JobManager did not answer as expected.
    #[error("the job's parallelism requirement is unknown: {0}")]
    Flink(FlinkError),
    /// The job is between two schedules: nothing is written until the next pass sees where
    /// it runs.
    #[error("{0}; holding until it runs")]
    Between(BetweenSchedules),
    /// The JobManager runs in reactive mode, which refuses a job's parallelism with HTTP 500.
    #[error("{REACTIVE_JOBMANAGER}")]
    ReactiveJobManager,
}

/// Why the prewarmed mode holds on a JobManager in reactive mode.
pub const REACTIVE_JOBMANAGER: &str = "the JobManager runs in reactive mode (scheduler-mode: \
    reactive), which refuses to set a job's parallelism: the prewarmed alignment needs \
    jobmanager.scheduler: adaptive without reactive mode (README: Alignment modes)";

/// The binding's settings that matter to this mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrewarmedPolicy {
    /// Task slots per TaskManager.
    pub slots_per_taskmanager: u32,
    /// Most TaskManagers.
    pub max_replicas: u32,
    /// TaskManagers kept started beyond the job's.
    pub headroom: u32,
}

impl PrewarmedPolicy {
    /// The mode's settings from a binding's policy and alignment.
    pub fn new(policy: &ScalingPolicy, alignment: Alignment) -> Self {
        PrewarmedPolicy {
            slots_per_taskmanager: policy.slots_per_taskmanager,
            max_replicas: policy.max_replicas,
            headroom: alignment.headroom(),
        }
    }
}

/// What this mode reads besides the segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrewarmedView {
    /// The TaskManagers' replicas now.
    pub taskmanagers: u32,
    /// The job's parallelism requirement now (its source vertex's upper bound).
    pub required: u32,
    /// The parallelism the job runs at, None while it is not RUNNING with its tasks deployed.
    pub running: Option<u32>,
    /// The job's max parallelism (its source vertex's), as the plan caps it; None: no cap known.
    pub max_parallelism: Option<u32>,
}

/// The writes of one reconciliation, in the order to make them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrewarmedSteps {
    /// First, the job's new parallelism requirement (None: keep it).
    pub job_parallelism: Option<u32>,
    /// Then, the TaskManagers' new replicas (None: keep them).
    pub taskmanagers: Option<u32>,
    /// What is done or waited for, for the decision's reason (empty when nothing).
    pub note: PrewarmedNote,
}

/// What the prewarmed mode does or waits for in one reconciliation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrewarmedNote(Vec<PrewarmedStep>);

impl PrewarmedNote {
    /// Whether nothing is done or waited for.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for PrewarmedNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            let separator = if i == 0 { "" } else { "; " };
            write!(f, "{separator}{step}")?;
        }
        Ok(())
    }
}

/// One thing the prewarmed mode does or waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrewarmedStep {
    /// The job's requirement changes.
    JobParallelism {
        /// Now.
        from: u32,
        /// Next.
        to: u32,
    },
    /// TaskManagers are added.
    AddTaskManagers {
        /// Now.
        from: u32,
        /// Next.
        to: u32,
        /// Of which started ahead.
        warm: u32,
    },
    /// TaskManagers are released: the job runs at its requirement.
    ReleaseTaskManagers {
        /// Now.
        from: u32,
        /// Next.
        to: u32,
        /// Of which started ahead.
        warm: u32,
        /// The job's parallelism.
        running: u32,
    },
    /// TaskManagers are kept until the job runs at its (lower) requirement.
    KeepTaskManagers {
        /// Now.
        taskmanagers: u32,
        /// The requirement.
        required: u32,
        /// Where the job runs, None when not running.
        running: Option<u32>,
    },
}

impl fmt::Display for PrewarmedStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PrewarmedStep::JobParallelism { from, to } => {
                write!(f, "job parallelism {from} -> {to}")
            }
            PrewarmedStep::AddTaskManagers { from, to, warm } => {
                write!(f, "TaskManagers {from} -> {to} ({warm} warm)")
            }
            PrewarmedStep::ReleaseTaskManagers {
                from,
                to,
                warm,
                running,
            } => write!(
                f,
                "TaskManagers {from} -> {to} ({warm} warm; the job runs at {running})"
            ),
            PrewarmedStep::KeepTaskManagers {
                taskmanagers,
                required,
                running,
            } => {
                write!(
                    f,
                    "keeping {taskmanagers} TaskManagers until the job runs at {required} "
                )?;
                match running {
                    Some(running) => write!(f, "(now at {running})"),
                    None => write!(f, "(now not running)"),
                }
            }
        }
    }
}

/// The job's size in TaskManagers' worth of slots: what the plan compares its desired figure
/// with in this mode (where the TaskManagers also count the headroom).
pub fn job_size(required: u32, slots_per_taskmanager: u32) -> u32 {
    required.div_ceil(slots_per_taskmanager.max(1))
}

/// The TaskManagers the job runs on, as the plan weighs them ([`super::PlanInput`]): the
/// target's replicas in reactive mode, the job's size in the prewarmed mode (its TaskManagers
/// also count the headroom there). TaskManagers at 0 are a pause in both modes.
pub fn job_taskmanagers(
    taskmanagers: Result<u32, Arc<ActuateError>>,
    requirement: &Requirement,
    slots_per_taskmanager: u32,
) -> Result<u32, Unknown> {
    match (taskmanagers, requirement) {
        (Err(e), _) => Err(Unknown::Target(e)),
        (Ok(0), _) => Ok(0),
        (Ok(count), Requirement::NotUsed) => Ok(count),
        (Ok(_), Requirement::Known(required)) => Ok(job_size(*required, slots_per_taskmanager)),
        (Ok(_), Requirement::Unknown(why)) => Err(Unknown::Requirement(why.clone())),
    }
}

/// The writes that follow `decision`, given what was read.
pub fn prewarmed_steps(
    policy: &PrewarmedPolicy,
    decision: &ScaleDecision,
    view: &PrewarmedView,
) -> PrewarmedSteps {
    let slots = policy.slots_per_taskmanager.max(1);
    // A hold on unknown data (or a pause) moves nothing.
    if decision.desired_replicas.is_none() {
        return PrewarmedSteps {
            job_parallelism: None,
            taskmanagers: None,
            note: PrewarmedNote::default(),
        };
    }
    let mut notes = Vec::new();
    let job_parallelism = decision
        .apply_to()
        .map(|units| {
            units
                .saturating_mul(slots)
                .min(view.max_parallelism.unwrap_or(u32::MAX))
                .max(1)
        })
        .filter(|&parallelism| parallelism != view.required);
    if let Some(parallelism) = job_parallelism {
        notes.push(PrewarmedStep::JobParallelism {
            from: view.required,
            to: parallelism,
        });
    }
    let required = job_parallelism.unwrap_or(view.required);
    let used = job_size(required, slots);
    // Never fewer than the job uses, even when someone set it above max_replicas.
    let target = used
        .saturating_add(policy.headroom)
        .min(policy.max_replicas.max(used));
    let warm = target - used;
    let taskmanagers = if target > view.taskmanagers {
        notes.push(PrewarmedStep::AddTaskManagers {
            from: view.taskmanagers,
            to: target,
            warm,
        });
        Some(target)
    } else if target < view.taskmanagers {
        // Which TaskManager goes is not ours to choose (a Deployment picks the pod): wait at
        // least until the job has let go of the slots it no longer needs.
        match view.running {
            Some(running) if job_parallelism.is_none() && running == required => {
                notes.push(PrewarmedStep::ReleaseTaskManagers {
                    from: view.taskmanagers,
                    to: target,
                    warm,
                    running,
                });
                Some(target)
            }
            running => {
                notes.push(PrewarmedStep::KeepTaskManagers {
                    taskmanagers: view.taskmanagers,
                    required,
                    running,
                });
                None
            }
        }
    } else {
        None
    };
    PrewarmedSteps {
        job_parallelism,
        taskmanagers,
        note: PrewarmedNote(notes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, Reason};

    const POLICY: PrewarmedPolicy = PrewarmedPolicy {
        slots_per_taskmanager: 1,
        max_replicas: 8,
        headroom: 1,
    };

    /// A decision on the job's size: from `current` to `desired` TaskManagers' worth.
    fn decision(current: u32, desired: u32, action: Action) -> ScaleDecision {
        ScaleDecision {
            segments: Some(desired),
            job_taskmanagers: Some(current),
            desired_replicas: Some(desired),
            action,
            reason: Reason::NoStream,
        }
    }

    fn view(taskmanagers: u32, required: u32, running: Option<u32>) -> PrewarmedView {
        PrewarmedView {
            taskmanagers,
            required,
            running,
            max_parallelism: Some(128),
        }
    }

    #[test]
    fn scale_up_raises_the_job_first_then_tops_up_the_headroom() {
        let steps = prewarmed_steps(
            &POLICY,
            &decision(2, 3, Action::ScaleUp),
            &view(3, 2, Some(2)),
        );
        assert_eq!(
            (steps.job_parallelism, steps.taskmanagers),
            (Some(3), Some(4))
        );
        assert_eq!(
            steps.note.to_string(),
            "job parallelism 2 -> 3; TaskManagers 3 -> 4 (1 warm)"
        );
    }

    #[test]
    fn a_jump_beyond_the_headroom_raises_both_at_once() {
        let steps = prewarmed_steps(
            &POLICY,
            &decision(1, 4, Action::ScaleUp),
            &view(2, 1, Some(1)),
        );
        assert_eq!(
            (steps.job_parallelism, steps.taskmanagers),
            (Some(4), Some(5))
        );
    }

    #[test]
    fn scale_down_lowers_the_job_and_keeps_the_taskmanagers_until_it_runs_there() {
        let lowered = prewarmed_steps(
            &POLICY,
            &decision(3, 2, Action::ScaleDown),
            &view(4, 3, Some(3)),
        );
        assert_eq!(
            (lowered.job_parallelism, lowered.taskmanagers),
            (Some(2), None)
        );
        assert_eq!(
            lowered.note.to_string(),
            "job parallelism 3 -> 2; keeping 4 TaskManagers until the job runs at 2 (now at 3)"
        );
        // Next ticks: the plan sees the job at its new size and holds.
        let restarting = prewarmed_steps(&POLICY, &decision(2, 2, Action::Hold), &view(4, 2, None));
        assert_eq!(
            (restarting.job_parallelism, restarting.taskmanagers),
            (None, None)
        );
        assert!(
            restarting.note.to_string().ends_with("(now not running)"),
            "{}",
            restarting.note
        );
        let still_old =
            prewarmed_steps(&POLICY, &decision(2, 2, Action::Hold), &view(4, 2, Some(3)));
        assert_eq!(
            (still_old.taskmanagers, still_old.note.to_string().as_str()),
            (
                None,
                "keeping 4 TaskManagers until the job runs at 2 (now at 3)"
            ),
            "the job has not applied its lower requirement yet"
        );
    }

    #[test]
    fn taskmanagers_are_released_once_the_job_fits_in_those_that_stay() {
        let released =
            prewarmed_steps(&POLICY, &decision(2, 2, Action::Hold), &view(4, 2, Some(2)));
        assert_eq!(
            (released.job_parallelism, released.taskmanagers),
            (None, Some(3))
        );
        assert_eq!(
            released.note.to_string(),
            "TaskManagers 4 -> 3 (1 warm; the job runs at 2)"
        );
    }

    #[test]
    fn the_headroom_stays_within_max_replicas() {
        let at_max = prewarmed_steps(
            &POLICY,
            &decision(7, 8, Action::ScaleUp),
            &view(8, 7, Some(7)),
        );
        assert_eq!(
            (at_max.job_parallelism, at_max.taskmanagers),
            (Some(8), None),
            "8 TaskManagers: all used, none warm"
        );
        let no_headroom = PrewarmedPolicy {
            headroom: 0,
            ..POLICY
        };
        let steps = prewarmed_steps(
            &no_headroom,
            &decision(2, 3, Action::ScaleUp),
            &view(2, 2, Some(2)),
        );
        assert_eq!(
            (steps.job_parallelism, steps.taskmanagers),
            (Some(3), Some(3))
        );
    }

    #[test]
    fn a_job_required_above_max_replicas_keeps_its_taskmanagers() {
        // Someone set the requirement to 10 by hand; the plan wants it back to 8.
        let steps = prewarmed_steps(
            &POLICY,
            &decision(10, 8, Action::Hold),
            &view(10, 10, Some(10)),
        );
        assert_eq!((steps.job_parallelism, steps.taskmanagers), (None, None));
    }

    #[test]
    fn slots_and_max_parallelism_bound_the_job() {
        let two_slots = PrewarmedPolicy {
            slots_per_taskmanager: 2,
            ..POLICY
        };
        let steps = prewarmed_steps(
            &two_slots,
            &decision(1, 2, Action::ScaleUp),
            &view(2, 2, Some(2)),
        );
        assert_eq!(
            (steps.job_parallelism, steps.taskmanagers),
            (Some(4), Some(3))
        );
        let capped = prewarmed_steps(
            &POLICY,
            &decision(2, 3, Action::ScaleUp),
            &PrewarmedView {
                max_parallelism: Some(2),
                ..view(3, 2, Some(2))
            },
        );
        assert_eq!(
            (capped.job_parallelism, capped.taskmanagers),
            (None, None),
            "the job is at its max parallelism already"
        );
    }

    #[test]
    fn missing_taskmanagers_are_restored_while_the_job_holds() {
        let steps = prewarmed_steps(&POLICY, &decision(3, 3, Action::Hold), &view(1, 3, Some(1)));
        assert_eq!((steps.job_parallelism, steps.taskmanagers), (None, Some(4)));
    }

    #[test]
    fn a_hold_on_unknown_data_moves_nothing() {
        let unknown = ScaleDecision {
            segments: None,
            job_taskmanagers: Some(2),
            desired_replicas: None,
            action: Action::Hold,
            reason: Reason::SegmentsUnknown(Vec::new()),
        };
        let steps = prewarmed_steps(&POLICY, &unknown, &view(1, 2, Some(1)));
        assert_eq!(
            steps,
            PrewarmedSteps {
                job_parallelism: None,
                taskmanagers: None,
                note: PrewarmedNote::default()
            }
        );
    }

    #[test]
    fn the_job_size_counts_whole_taskmanagers() {
        assert_eq!(job_size(3, 2), 2);
        assert_eq!(job_size(4, 2), 2);
        assert_eq!(job_size(1, 0), 1, "no division by zero");
    }
}

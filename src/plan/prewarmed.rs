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

use super::ScaleDecision;

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
    pub note: String,
}

/// The job's size in TaskManagers' worth of slots: what the plan compares its desired figure
/// with in this mode (where the TaskManagers also count the headroom).
pub fn job_size(required: u32, slots_per_taskmanager: u32) -> u32 {
    required.div_ceil(slots_per_taskmanager.max(1))
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
            note: String::new(),
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
        notes.push(format!(
            "job parallelism {} -> {parallelism}",
            view.required
        ));
    }
    let required = job_parallelism.unwrap_or(view.required);
    let used = job_size(required, slots);
    // Never fewer than the job uses, even when someone set it above max_replicas.
    let target = used
        .saturating_add(policy.headroom)
        .min(policy.max_replicas.max(used));
    let warm = target - used;
    let taskmanagers = if target > view.taskmanagers {
        notes.push(format!(
            "TaskManagers {} -> {target} ({warm} warm)",
            view.taskmanagers
        ));
        Some(target)
    } else if target < view.taskmanagers {
        // Which TaskManager goes is not ours to choose (a Deployment picks the pod): wait at
        // least until the job has let go of the slots it no longer needs.
        match view.running {
            Some(running) if job_parallelism.is_none() && running == required => {
                notes.push(format!(
                    "TaskManagers {} -> {target} ({warm} warm; the job runs at {running})",
                    view.taskmanagers
                ));
                Some(target)
            }
            running => {
                let now = running.map_or("not running".to_string(), |r| format!("at {r}"));
                notes.push(format!(
                    "keeping {} TaskManagers until the job runs at {required} (now {now})",
                    view.taskmanagers
                ));
                None
            }
        }
    } else {
        None
    };
    PrewarmedSteps {
        job_parallelism,
        taskmanagers,
        note: notes.join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;

    const POLICY: PrewarmedPolicy = PrewarmedPolicy {
        slots_per_taskmanager: 1,
        max_replicas: 8,
        headroom: 1,
    };

    /// A decision on the job's size: from `current` to `desired` TaskManagers' worth.
    fn decision(current: u32, desired: u32, action: Action) -> ScaleDecision {
        ScaleDecision {
            segments: Some(desired),
            current_replicas: Some(current),
            desired_replicas: Some(desired),
            action,
            reason: String::new(),
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
            steps.note,
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
            lowered.note,
            "job parallelism 3 -> 2; keeping 4 TaskManagers until the job runs at 2 (now at 3)"
        );
        // Next ticks: the plan sees the job at its new size and holds.
        let restarting = prewarmed_steps(&POLICY, &decision(2, 2, Action::Hold), &view(4, 2, None));
        assert_eq!(
            (restarting.job_parallelism, restarting.taskmanagers),
            (None, None)
        );
        assert!(
            restarting.note.ends_with("(now not running)"),
            "{}",
            restarting.note
        );
        let still_old =
            prewarmed_steps(&POLICY, &decision(2, 2, Action::Hold), &view(4, 2, Some(3)));
        assert_eq!(
            (still_old.taskmanagers, still_old.note.as_str()),
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
            released.note,
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
            current_replicas: Some(2),
            desired_replicas: None,
            action: Action::Hold,
            reason: "hold: segment count unknown".into(),
        };
        let steps = prewarmed_steps(&POLICY, &unknown, &view(1, 2, Some(1)));
        assert_eq!(
            steps,
            PrewarmedSteps {
                job_parallelism: None,
                taskmanagers: None,
                note: String::new()
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

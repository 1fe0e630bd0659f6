//! A reconciliation's stages as values: what was read ([`Observed`]), what was decided
//! ([`Planned`]) and what came of it ([`Outcome`], whose `Display` is the reason people read),
//! and the record `plan` prints ([`BindingReport`]).

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::actuate::{ActuateError, Replicas};
use crate::domain::StreamId;
use crate::flink::{BetweenSchedules, FlinkError, JobStatus, SourceLoad};
use crate::observe::Observation;
use crate::plan::backlog::BacklogView;
use crate::plan::prewarmed::{PrewarmedSteps, Requirement};
use crate::plan::{Action, Reason, ScaleDecision};

/// One binding's outcome: the record `segment-autoscaler plan` prints.
#[derive(Debug, Clone, Serialize)]
pub struct BindingReport {
    /// The binding's name.
    pub binding: String,
    /// Its streams.
    pub streams: Vec<StreamId>,
    /// Combined segment count, null when unknown.
    pub segments: Option<u32>,
    /// Which source(s) answered, e.g. `controller` or `prometheus`.
    pub source: String,
    /// Each stream's count and the age of its evidence.
    pub evidence: Vec<StreamEvidence>,
    /// How the job is aligned: `reactive` or `prewarmed`.
    pub alignment: &'static str,
    /// The target's replicas (the TaskManagers), null when unknown.
    pub current_replicas: Option<u32>,
    /// The TaskManagers the segments call for (the prewarmed mode keeps its headroom on top),
    /// null when unknown.
    pub desired_replicas: Option<u32>,
    /// `scale_up`, `scale_down` or `hold`.
    pub action: Action,
    /// Whether the target is paused (replicas set to 0 by someone else).
    pub paused: bool,
    /// Why.
    pub reason: String,
    /// The kind of reason, a bounded word (`Aligned`, `FallingBehind`, `SegmentsUnknown`,
    /// `ScaleUp`, ...).
    pub reason_kind: &'static str,
    /// The parallelism the job runs at, null when unknown or unbound.
    pub job_parallelism: Option<u32>,
    /// Whether the job runs at the parallelism the segments call for, null when unknown.
    pub job_aligned: Option<bool>,
    /// Why the target's replicas could not be read, when they could not (e.g. `not_found`).
    pub target_error: Option<&'static str>,
    /// Why the job could not be read from Flink, when it could not.
    pub flink_error: Option<&'static str>,
    /// Whether a scale write was made in this reconciliation.
    pub scaled: bool,
    /// The job's backlog, while its source runs and the binding reads Flink.
    pub backlog: Option<BacklogView>,
}

/// One stream's count in a [`BindingReport`] and how old the evidence of it is.
#[derive(Debug, Clone, Serialize)]
pub struct StreamEvidence {
    /// The stream.
    pub stream: StreamId,
    /// Its count, null when unknown.
    pub segments: Option<u32>,
    /// Seconds since the count was last reported: 0 when reported now (the controller, or a
    /// gauge Prometheus scrapes now), more once Pravega evicted the gauge; null when unknown.
    pub evidence_age_seconds: Option<f64>,
}

/// What one reconciliation read for a binding.
pub(super) struct Observed {
    /// One observation per bound stream.
    pub(super) observations: Vec<Observation>,
    /// The target's replicas: the TaskManagers.
    pub(super) taskmanagers: Result<Replicas, Arc<ActuateError>>,
    /// The job's status, when the binding names a JobManager.
    pub(super) job: Option<Result<JobStatus, FlinkError>>,
    /// The job's parallelism requirement (the prewarmed mode's).
    pub(super) requirement: Requirement,
    /// The job's max parallelism, as last reported.
    pub(super) max_parallelism: Option<u32>,
    /// The load of the job's source, while it runs.
    pub(super) source_load: Option<Result<SourceLoad, FlinkError>>,
}

impl Observed {
    /// The TaskManagers' replicas, when read.
    pub(super) fn replicas(&self) -> Option<&Replicas> {
        self.taskmanagers.as_ref().ok()
    }
}

/// What a reconciliation decided for a binding.
pub(super) struct Planned {
    /// The plan's decision.
    pub(super) decision: ScaleDecision,
    /// Why the job's alignment is unknown, when it is.
    pub(super) job_unknown: Option<JobUnknown>,
    /// The prewarmed mode's writes (shown in plan mode too).
    pub(super) prewarmed: Option<PrewarmedPlan>,
    /// The job's backlog, while its source runs.
    pub(super) backlog: Option<BacklogView>,
}

/// The prewarmed mode's writes for a job.
pub(super) struct PrewarmedPlan {
    pub(super) job_id: String,
    /// The job's requirement as read.
    pub(super) required: u32,
    pub(super) steps: PrewarmedSteps,
}

/// Why the job's alignment is unknown.
#[derive(Debug, Clone)]
pub(super) enum JobUnknown {
    /// Its status could not be read; the plan keeps the last known cap.
    Unreadable { error: FlinkError, cap: Option<u32> },
    /// Not an error: Flink is between two schedules (a start or a rescale) and the parallelism
    /// it shows meanwhile is not the job's.
    Between(BetweenSchedules),
}

impl fmt::Display for JobUnknown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobUnknown::Unreadable { error, cap } => {
                write!(f, "job alignment unknown ({error})")?;
                match cap {
                    Some(cap) => {
                        write!(f, ", still capped by its last known max parallelism {cap}")
                    }
                    None => Ok(()),
                }
            }
            JobUnknown::Between(why) => write!(f, "job alignment unknown ({why})"),
        }
    }
}

/// A write the decision called for that was not made.
#[derive(Debug)]
pub(super) enum NotApplied {
    /// This replica lost the Lease between planning and writing.
    LeaseLost,
    /// The target refused or failed the write.
    Target(ActuateError),
    /// The JobManager refused or failed the job's new requirement.
    Job(FlinkError),
}

impl fmt::Display for NotApplied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotApplied::LeaseLost => {
                write!(
                    f,
                    "not applied: this replica lost the lease before the write"
                )
            }
            NotApplied::Target(e) => write!(f, "not applied: {e}"),
            NotApplied::Job(e) => write!(f, "job not changed: {e}"),
        }
    }
}

/// What came of a reconciliation: its `Display` is the reason people read (report, logs,
/// Events).
pub(super) struct Outcome {
    pub(super) planned: Planned,
    /// The writes that were not made, and why.
    pub(super) not_applied: Vec<NotApplied>,
    /// Whether a scale write was attempted (it logs itself).
    pub(super) scaled: bool,
}

impl Outcome {
    /// Nothing written (plan mode, a standby).
    pub(super) fn unwritten(planned: Planned) -> Self {
        Outcome {
            planned,
            not_applied: Vec::new(),
            scaled: false,
        }
    }

    pub(super) fn decision(&self) -> &ScaleDecision {
        &self.planned.decision
    }

    /// The decision's kind of reason, `FallingBehind` for an aligned job that falls behind.
    pub(super) fn reason_kind(&self) -> &'static str {
        match (&self.planned.decision.reason, self.falling_behind()) {
            (Reason::Aligned(_), true) => "FallingBehind",
            (reason, _) => reason.kind(),
        }
    }

    fn falling_behind(&self) -> bool {
        self.planned
            .backlog
            .as_ref()
            .is_some_and(|b| b.falling_behind.is_some())
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.planned.decision.reason)?;
        if let Some(job) = &self.planned.job_unknown {
            write!(f, "; {job}")?;
        }
        if let Some(behind) = self
            .planned
            .backlog
            .as_ref()
            .and_then(|b| b.falling_behind.as_ref())
        {
            write!(f, "; {behind}")?;
        }
        if let Some(prewarmed) = &self.planned.prewarmed {
            if !prewarmed.steps.note.is_empty() {
                write!(f, "; {}", prewarmed.steps.note)?;
            }
        }
        for not_applied in &self.not_applied {
            write!(f, " ({not_applied})")?;
        }
        Ok(())
    }
}

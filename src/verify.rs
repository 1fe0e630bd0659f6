//! Verify: whether the Flink job runs at the parallelism the plan wants, so that alignment is
//! checked rather than assumed (the `job_parallelism` and `job_aligned` series).
//!
//! Judged after the pass's writes, on the job's status read at the start of that pass: a
//! rescale a pass asks for shows as aligned on a later pass, once Flink has rescheduled the job
//! (the verdict lags a write by at least one interval; README: Verification).

use crate::flink::{FlinkError, JobStatus};

/// What Flink's REST API said about a binding's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobAlignment {
    /// Parallelism of the source vertex.
    pub parallelism: u32,
    /// Whether it is the parallelism the plan wants.
    pub aligned: bool,
}

/// The job's alignment with `desired_replicas` TaskManagers of `slots` slots; None when it is
/// unknown: the job could not be read, or it is between two schedules (Flink shows a
/// parallelism then that is not the job's).
pub fn job_alignment(
    job: &Result<JobStatus, FlinkError>,
    desired_replicas: Option<u32>,
    slots: u32,
) -> Option<JobAlignment> {
    let status = job.as_ref().ok()?;
    let parallelism = status.running_parallelism()?;
    let aligned = desired_replicas
        .and_then(|desired| status.aligned_with(desired, slots))
        .unwrap_or(false);
    Some(JobAlignment {
        parallelism,
        aligned,
    })
}

//! A SegmentScaler's status from what one reconciliation found: its figures and the
//! `Ready`, `Aligned`, `Paused`, `Holding` and `FallingBehind` conditions. Pure: the caller writes the result
//! only when it differs from what the resource shows.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::catalog::Refusal;
use super::SegmentScalerStatus;
use crate::reconcile::BindingReport;

/// What a reconciliation made of one SegmentScaler.
#[derive(Debug, Clone, Copy)]
pub enum Found<'a> {
    /// It declares no binding.
    Refused(&'a Refusal),
    /// Its binding was reconciled.
    Reconciled(&'a BindingReport),
}

/// The status to show for `found`, at `now`. From `previous` it keeps what this pass did not
/// learn (the last scale time) and each condition's transition time while its status holds.
pub fn status(
    previous: Option<&SegmentScalerStatus>,
    generation: Option<i64>,
    found: Found,
    now: &Time,
) -> SegmentScalerStatus {
    let last_scale_time = previous.and_then(|p| p.last_scale_time.clone());
    let mut status = match found {
        Found::Refused(refusal) => SegmentScalerStatus {
            conditions: vec![condition(
                "Ready",
                false,
                refusal.reason(),
                refusal.message(),
            )],
            last_scale_time,
            ..SegmentScalerStatus::default()
        },
        Found::Reconciled(report) => SegmentScalerStatus {
            segments: report.segments,
            desired_task_managers: report.desired_replicas,
            current_task_managers: report.current_replicas,
            job_parallelism: report.job_parallelism,
            aligned: report.job_aligned,
            evidence_time: evidence_time(report, now),
            last_scale_time: if report.scaled {
                Some(now.clone())
            } else {
                last_scale_time
            },
            conditions: conditions(report),
            observed_generation: None,
        },
    };
    status.observed_generation = generation;
    let previous_conditions = previous.map_or(&[][..], |p| &p.conditions[..]);
    for condition in &mut status.conditions {
        condition.observed_generation = generation;
        condition.last_transition_time = previous_conditions
            .iter()
            .find(|p| p.type_ == condition.type_ && p.status == condition.status)
            .map_or_else(|| now.clone(), |p| p.last_transition_time.clone());
    }
    status
}

/// When the oldest of the counts in use was reported, if that was before this pass (Pravega
/// evicted its gauge); `None` while every count is current, or any is unknown. Whole seconds,
/// so that the same evidence gives the same time on every pass and the status stays unwritten.
fn evidence_time(report: &BindingReport, now: &Time) -> Option<Time> {
    let oldest = report
        .evidence
        .iter()
        .map(|e| e.evidence_age_seconds)
        .collect::<Option<Vec<f64>>>()?
        .into_iter()
        .reduce(f64::max)?;
    if oldest < 1.0 {
        return None;
    }
    let reported = now.0.as_second() - oldest.round() as i64;
    k8s_openapi::jiff::Timestamp::from_second(reported)
        .ok()
        .map(Time)
}

fn conditions(report: &BindingReport) -> Vec<Condition> {
    let ready = match (report.target_error, report.flink_error) {
        (Some("not_found"), _) => condition(
            "Ready",
            false,
            "TargetNotFound",
            &format!("the target does not exist: {}", report.reason),
        ),
        (Some(error), _) => condition(
            "Ready",
            false,
            "TargetUnavailable",
            &format!(
                "the target's replicas cannot be read ({error}): {}",
                report.reason
            ),
        ),
        (None, Some(error)) => condition(
            "Ready",
            false,
            "FlinkUnavailable",
            &format!(
                "the job cannot be read from Flink ({error}): {}",
                report.reason
            ),
        ),
        (None, None) => condition(
            "Ready",
            true,
            "Reconciled",
            "the target is read, and the job when one is bound",
        ),
    };
    let aligned = match report.job_aligned {
        Some(true) => condition("Aligned", true, "Aligned", "the job runs at the parallelism the segments call for"),
        Some(false) => condition(
            "Aligned",
            false,
            "Misaligned",
            &format!(
                "the job runs at parallelism {}, the segments call for {} TaskManagers",
                cell(report.job_parallelism),
                cell(report.desired_replicas)
            ),
        ),
        None => condition(
            "Aligned",
            false,
            "Unverified",
            "the job's parallelism is unknown: no Flink job is bound, it cannot be read, or it is between two schedules",
        ),
    };
    let paused = if report.paused {
        condition("Paused", true, "ReplicasZero", &report.reason)
    } else {
        condition(
            "Paused",
            false,
            "NotPaused",
            "the target's replicas are above 0",
        )
    };
    // Holding on purpose (aligned) is not holding: the condition says the autoscaler cannot
    // or will not yet act on what the segments call for.
    let holding = match report.reason_kind {
        "Aligned" | "FallingBehind" | "ScaleUp" | "ScaleDown" => {
            condition("Holding", false, report.reason_kind, &report.reason)
        }
        kind => condition("Holding", true, kind, &report.reason),
    };
    // Messages without the figures, which change every pass: a status is written only when it
    // changes (the figures are in the FallingBehind Event, the metrics and `plan`).
    let falling_behind = match report.backlog.as_ref() {
        Some(b) if b.falling_behind.is_some() => condition(
            "FallingBehind",
            true,
            "BacklogGrowing",
            "the job runs aligned at the segment count and its backlog grew over the whole backlog window: one subtask is slower than the stream's scaling policy assumes (the FallingBehind Event has the figures; README: Backlog)",
        ),
        Some(b) if b.records.is_some() => condition(
            "FallingBehind",
            false,
            "KeepingUp",
            "the job's backlog did not grow over the backlog window while it ran aligned",
        ),
        _ => condition(
            "FallingBehind",
            false,
            "BacklogUnknown",
            "the job's backlog is unknown: no Flink job is bound, it does not run, or its source reports no pendingRecords",
        ),
    };
    vec![ready, aligned, paused, holding, falling_behind]
}

fn cell(value: Option<u32>) -> String {
    value.map_or_else(|| "unknown".into(), |v| v.to_string())
}

/// A condition without its times (set by [`status`]).
fn condition(type_: &str, status: bool, reason: &str, message: &str) -> Condition {
    Condition {
        type_: type_.into(),
        status: if status { "True" } else { "False" }.into(),
        reason: reason.into(),
        // The API server refuses messages over 32768 bytes.
        message: truncate(message, 4096),
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
        observed_generation: None,
    }
}

fn truncate(text: &str, bytes: usize) -> String {
    if text.len() <= bytes {
        return text.into();
    }
    let mut end = bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;
    use crate::reconcile::StreamEvidence;

    fn at(second: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(second).unwrap())
    }

    fn report() -> BindingReport {
        BindingReport {
            binding: "jobs/reader".into(),
            streams: vec!["demo/load".parse().unwrap()],
            segments: Some(3),
            source: "controller".into(),
            evidence: vec![StreamEvidence {
                stream: "demo/load".parse().unwrap(),
                segments: Some(3),
                evidence_age_seconds: Some(0.0),
            }],
            alignment: "reactive",
            current_replicas: Some(3),
            desired_replicas: Some(3),
            action: Action::Hold,
            paused: false,
            reason: "hold: aligned, 3 segments".into(),
            reason_kind: "Aligned",
            job_parallelism: Some(3),
            job_aligned: Some(true),
            target_error: None,
            flink_error: None,
            scaled: false,
            backlog: None,
        }
    }

    fn get<'a>(status: &'a SegmentScalerStatus, type_: &str) -> &'a Condition {
        status.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    #[test]
    fn an_aligned_binding_is_ready_and_aligned_and_holds_nothing() {
        let status = status(None, Some(2), Found::Reconciled(&report()), &at(1000));
        assert_eq!(status.observed_generation, Some(2));
        assert_eq!(
            (status.segments, status.current_task_managers),
            (Some(3), Some(3))
        );
        assert_eq!(
            (status.job_parallelism, status.aligned),
            (Some(3), Some(true))
        );
        assert_eq!(status.evidence_time, None, "current evidence");
        assert_eq!(status.last_scale_time, None);
        for (type_, value) in [
            ("Ready", "True"),
            ("Aligned", "True"),
            ("Paused", "False"),
            ("Holding", "False"),
            ("FallingBehind", "False"),
        ] {
            let c = get(&status, type_);
            assert_eq!(c.status, value, "{type_}");
            assert_eq!(c.observed_generation, Some(2));
            assert_eq!(c.last_transition_time, at(1000));
        }
        assert_eq!(get(&status, "FallingBehind").reason, "BacklogUnknown");
    }

    #[test]
    fn an_aligned_job_falling_behind_is_aligned_not_holding_and_its_message_is_stable() {
        use crate::plan::backlog::{BacklogView, FallingBehind};
        let behind = |grew_to| {
            let mut report = report();
            report.reason_kind = "FallingBehind";
            report.backlog = Some(BacklogView {
                records: Some(grew_to),
                catch_up_seconds: None,
                subtask_rate: Some(120.0),
                policy_target: Some(1000.0),
                falling_behind: Some(FallingBehind {
                    window: std::time::Duration::from_secs(120),
                    for_: std::time::Duration::from_secs(120),
                    grew_from: 100,
                    grew_to,
                    segments: 3,
                    subtask_rate: Some(120.0),
                    policy_target: Some(1000.0),
                    keep_up_target: Some(96.0),
                    write_rate: Some(500.0),
                    segments_needed: Some(6),
                }),
            });
            status(None, Some(2), Found::Reconciled(&report), &at(1000))
        };
        let status = behind(5000);
        assert_eq!(get(&status, "Aligned").status, "True");
        assert_eq!(get(&status, "Holding").status, "False");
        let condition = get(&status, "FallingBehind");
        assert_eq!(
            (condition.status.as_str(), condition.reason.as_str()),
            ("True", "BacklogGrowing")
        );
        // The backlog moves every pass; the status, written only when it changes, does not.
        assert_eq!(behind(6000).conditions, status.conditions);
    }

    #[test]
    fn transition_times_move_only_when_a_condition_changes() {
        let first = status(None, Some(1), Found::Reconciled(&report()), &at(1000));
        let same = status(
            Some(&first),
            Some(1),
            Found::Reconciled(&report()),
            &at(1010),
        );
        assert_eq!(same, first, "nothing changed: nothing to write");

        let mut unknown = report();
        unknown.segments = None;
        unknown.desired_replicas = None;
        unknown.evidence[0].evidence_age_seconds = None;
        unknown.reason_kind = "SegmentsUnknown";
        unknown.reason = "hold: segment count unknown for demo/load".into();
        unknown.job_aligned = Some(false);
        let held = status(Some(&same), Some(1), Found::Reconciled(&unknown), &at(1020));
        assert_eq!(held.evidence_time, None);
        assert_eq!(get(&held, "Holding").status, "True");
        assert_eq!(get(&held, "Holding").reason, "SegmentsUnknown");
        assert_eq!(get(&held, "Holding").last_transition_time, at(1020));
        assert_eq!(
            get(&held, "Ready").last_transition_time,
            at(1000),
            "still ready"
        );
        assert_eq!(get(&held, "Aligned").reason, "Misaligned");
    }

    #[test]
    fn evidence_time_is_when_the_oldest_count_was_reported() {
        let mut stale = report();
        stale.evidence[0].evidence_age_seconds = Some(95.4);
        let status = status(None, None, Found::Reconciled(&stale), &at(1000));
        assert_eq!(status.evidence_time, Some(at(905)));
    }

    #[test]
    fn a_scale_write_sets_the_last_scale_time_and_later_passes_keep_it() {
        let mut scaled = report();
        scaled.scaled = true;
        let first = status(None, None, Found::Reconciled(&scaled), &at(1000));
        assert_eq!(first.last_scale_time, Some(at(1000)));
        let later = status(Some(&first), None, Found::Reconciled(&report()), &at(1100));
        assert_eq!(later.last_scale_time, Some(at(1000)));
    }

    #[test]
    fn unreadable_parts_make_it_not_ready_with_their_reason() {
        for (target, flink, reason) in [
            (Some("not_found"), None, "TargetNotFound"),
            (Some("forbidden"), None, "TargetUnavailable"),
            (None, Some("unreachable"), "FlinkUnavailable"),
        ] {
            let mut broken = report();
            broken.target_error = target;
            broken.flink_error = flink;
            let status = status(None, None, Found::Reconciled(&broken), &at(1000));
            let ready = get(&status, "Ready");
            assert_eq!(
                (ready.status.as_str(), ready.reason.as_str()),
                ("False", reason)
            );
        }
    }

    #[test]
    fn a_refused_spec_shows_only_why() {
        let refusal = Refusal::Conflict(
            "deployments.apps jobs/tm is already scaled by SegmentScaler jobs/a".into(),
        );
        let status = status(None, Some(4), Found::Refused(&refusal), &at(1000));
        assert_eq!(status.segments, None);
        assert_eq!(status.conditions.len(), 1);
        let ready = get(&status, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "Conflict")
        );
        assert!(ready.message.contains("already scaled"));
    }

    #[test]
    fn a_paused_target_says_so() {
        let mut paused = report();
        paused.paused = true;
        paused.reason_kind = "Paused";
        let status = status(None, None, Found::Reconciled(&paused), &at(1000));
        assert_eq!(get(&status, "Paused").status, "True");
        assert_eq!(get(&status, "Holding").reason, "Paused");
    }
}

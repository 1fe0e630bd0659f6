//! What each fault of a chaos run cost (`deploy/local/demo --kubernetes --chaos`): how long until
//! the job ran again at parallelism = segments, and whether any write to the target was wrong.
//! Pure: the run's timeline (one [`TimelineSample`] a second, `run-timeline`), the faults it
//! injected and the autoscaler's scale Events in, one [`FaultOutcome`] per fault out.

use serde::Serialize;

pub use crate::timeline::{parse_timeline, TimelineSample};

/// One fault, as the chaos run recorded it (`faults.tsv`: `UNIX-SECONDS<TAB>KIND<TAB>DETAIL`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fault {
    /// When it was injected, Unix seconds.
    pub at: f64,
    /// Its kind (`deploy/local/stack fault --list`).
    pub kind: String,
    /// What it hit, as the injector said.
    pub detail: String,
}

/// Parses `faults.tsv`; a line that is not `SECONDS<TAB>KIND<TAB>DETAIL` is an error naming it.
pub fn parse_faults(text: &str) -> Result<Vec<Fault>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let mut fields = line.splitn(3, '\t');
            let at = fields.next().and_then(|s| s.parse::<f64>().ok());
            match (at, fields.next(), fields.next()) {
                (Some(at), Some(kind), detail) if !kind.is_empty() => Ok(Fault {
                    at,
                    kind: kind.to_string(),
                    detail: detail.unwrap_or_default().to_string(),
                }),
                _ => Err(format!(
                    "faults line {}: {line:?} is not SECONDS<TAB>KIND<TAB>DETAIL",
                    i + 1
                )),
            }
        })
        .collect()
}

/// Whether the job of each sample runs at the parallelism the binding holds it at: the
/// segments, or while a scale-down waits out its `stabilization`, the most segments of the
/// samples within that long before (the autoscaler's rule). A fault's cost then leaves the
/// stabilization aside, which a scale-down spends by design.
fn held_alignment(timeline: &[TimelineSample], stabilization: f64) -> Vec<bool> {
    timeline
        .iter()
        .map(|sample| {
            let held = timeline
                .iter()
                .filter(|s| s.at <= sample.at && s.at >= sample.at - stabilization)
                .filter_map(|s| s.segments)
                .max();
            sample.aligned()
                || (sample.segments.is_some()
                    && sample.parallelism.is_some()
                    && sample.parallelism == held)
        })
        .collect()
}

/// A write to the target the autoscaler reported (its ScaledUp and ScaledDown Events).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScaleWrite {
    /// Unix seconds.
    pub at: f64,
    /// The replica that wrote (the Event's reporting instance, its Lease identity).
    pub instance: String,
    /// The replicas written.
    pub replicas: i32,
}

/// Parses a scale Event's note (`replicas 2 -> 3: REASON`) for the replicas written.
pub fn written_replicas(note: &str) -> Option<i32> {
    note.strip_prefix("replicas ")?
        .split_once(" -> ")?
        .1
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The scale writes among Events (`kubectl get events -o json`): the autoscaler's ScaledUp
/// and ScaledDown, with their time, reporting instance and the replicas in their note. An
/// Event of those reasons without them is an error naming it.
pub fn scale_writes(events: &serde_json::Value) -> Result<Vec<ScaleWrite>, String> {
    let items = events["items"]
        .as_array()
        .ok_or("events: no `items` list (expected `kubectl get events -o json`)")?;
    items
        .iter()
        .filter(|e| matches!(e["reason"].as_str(), Some("ScaledUp" | "ScaledDown")))
        .map(|e| {
            let name = e["metadata"]["name"].as_str().unwrap_or("?");
            let time = ["eventTime", "lastTimestamp", "firstTimestamp"]
                .iter()
                .find_map(|field| e[*field].as_str())
                .ok_or_else(|| format!("event {name}: no time"))?;
            Ok(ScaleWrite {
                at: crate::parse_time(time, 0.0).map_err(|m| format!("event {name}: {m}"))?,
                instance: e["reportingInstance"]
                    .as_str()
                    .ok_or_else(|| format!("event {name}: no reportingInstance"))?
                    .to_string(),
                replicas: e["message"]
                    .as_str()
                    .and_then(written_replicas)
                    .ok_or_else(|| format!("event {name}: no replicas in its message"))?,
            })
        })
        .collect()
}

/// Why a write was wrong.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WrongWrite {
    /// The write.
    pub write: ScaleWrite,
    /// What was wrong with it.
    pub why: String,
}

/// The cost of one fault.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultOutcome {
    /// The fault.
    pub fault: Fault,
    /// Seconds from the fault until the job ran at parallelism = segments and stayed so for
    /// the settle time; None when that did not begin before the next fault (or the run's end).
    pub realigned_after: Option<f64>,
    /// Whether the job was seen out of alignment (or unknown) in that time.
    pub disrupted: bool,
    /// Segment changes in that time: a realignment that includes one includes the autoscaler's
    /// ordinary reaction (and a scale-down's stabilization), not only the fault's cost.
    pub segment_changes: u32,
    /// Writes made between this fault and the next that were wrong.
    pub wrong_writes: Vec<WrongWrite>,
}

/// How long the job must stay aligned for a fault to count as over: a killed TaskManager
/// leaves the job looking aligned until the heartbeat timeout, then restarts it.
pub const SETTLE_SECONDS: f64 = 15.0;

/// How much earlier than a write its writer may have last been seen holding the Lease, for
/// a one-second timeline sampled a moment off the write.
const LEASE_SAMPLING_SLACK: f64 = 2.0;

/// The outcome of every fault in `faults` (sorted by time), each judged on the samples from
/// its injection to the next fault's (the last one's to the run's end), the job counting as
/// aligned at the segments or within a scale-down's `stabilization` (seconds) at the most
/// segments of it, with `writes` checked against `min..=max` replicas and the Lease holders of
/// the timeline.
pub fn outcomes(
    faults: &[Fault],
    timeline: &[TimelineSample],
    writes: &[ScaleWrite],
    stabilization: f64,
    (min, max): (i32, i32),
) -> Vec<FaultOutcome> {
    let held = held_alignment(timeline, stabilization);
    faults
        .iter()
        .enumerate()
        .map(|(i, fault)| {
            let until = faults.get(i + 1).map_or(f64::INFINITY, |next| next.at);
            let after: Vec<(&TimelineSample, bool)> = timeline
                .iter()
                .zip(held.iter().copied())
                .filter(|(s, _)| s.at >= fault.at)
                .collect();
            let (realigned_after, disrupted) = realignment(fault.at, until, &after);
            let window: Vec<&TimelineSample> = after
                .into_iter()
                .map(|(s, _)| s)
                .filter(|s| s.at < until)
                .collect();
            let segment_changes = window
                .windows(2)
                .filter(|pair| {
                    matches!((pair[0].segments, pair[1].segments), (Some(a), Some(b)) if a != b)
                })
                .count() as u32;
            let wrong_writes = writes
                .iter()
                .filter(|w| w.at >= fault.at && w.at < until)
                .filter_map(|w| wrong(w, timeline, min, max))
                .collect();
            FaultOutcome {
                fault: fault.clone(),
                realigned_after,
                disrupted,
                segment_changes,
                wrong_writes,
            }
        })
        .collect()
}

/// Seconds from `from` to the start of the first aligned stretch of `after` (the samples from
/// `from` on, each with whether it is aligned) that begins before `until` (the next fault; the
/// stretch may run past it) and lasts [`SETTLE_SECONDS`] or until the stream's segments change
/// (what follows a segment change is that change's ordinary reaction, not the fault's cost),
/// and whether a sample before that stretch was not aligned.
fn realignment(from: f64, until: f64, after: &[(&TimelineSample, bool)]) -> (Option<f64>, bool) {
    let mut disrupted = false;
    let mut stretch: Option<(f64, Option<u32>)> = None;
    for (sample, aligned) in after {
        if stretch.is_none() && sample.at >= until {
            break;
        }
        if let Some((began, segments)) = stretch {
            let changed = matches!((segments, sample.segments), (Some(a), Some(b)) if a != b);
            if changed {
                return (Some(began - from), disrupted);
            }
        }
        if !aligned {
            disrupted = true;
            stretch = None;
            continue;
        }
        let (began, _) = *stretch.get_or_insert((sample.at, sample.segments));
        if sample.at - began >= SETTLE_SECONDS {
            return (Some(began - from), disrupted);
        }
    }
    (None, disrupted)
}

/// Why `write` was wrong, if it was: outside `min..=max`, or by a replica the timeline did not
/// see holding the Lease near it (or, where the Lease could not be read then, last before it).
fn wrong(
    write: &ScaleWrite,
    timeline: &[TimelineSample],
    min: i32,
    max: i32,
) -> Option<WrongWrite> {
    let why = if write.replicas > max {
        format!("{} replicas, above max {max}", write.replicas)
    } else if write.replicas < min {
        format!("{} replicas, below min {min}", write.replicas)
    } else {
        // The holders seen around the write; when the Lease could not be read then, the last
        // holder seen before it.
        let mut holders: Vec<&str> = timeline
            .iter()
            .filter(|s| (s.at - write.at).abs() <= LEASE_SAMPLING_SLACK)
            .filter_map(|s| s.leader.as_deref())
            .collect();
        if holders.is_empty() {
            holders.extend(
                timeline
                    .iter()
                    .filter(|s| s.at <= write.at)
                    .filter_map(|s| s.leader.as_deref())
                    .next_back(),
            );
        }
        if holders.contains(&write.instance.as_str()) {
            return None;
        }
        format!("{} did not hold the Lease then", write.instance)
    };
    Some(WrongWrite {
        write: write.clone(),
        why,
    })
}

/// The outcomes as a Markdown table, one row per fault, times from `start` (Unix seconds).
pub fn table(outcomes: &[FaultOutcome], start: f64) -> String {
    let mut out = String::from(
        "| at (s) | fault | what it hit | realigned after (s) | disrupted | segment changes | wrong writes |\n\
         |---:|---|---|---:|---|---:|---|\n",
    );
    for o in outcomes {
        let realigned = o
            .realigned_after
            .map_or("not before the next fault".to_string(), |s| {
                format!("{s:.0}")
            });
        let wrong = if o.wrong_writes.is_empty() {
            "none".to_string()
        } else {
            o.wrong_writes
                .iter()
                .map(|w| w.why.clone())
                .collect::<Vec<_>>()
                .join("; ")
        };
        out.push_str(&format!(
            "| {:.0} | {} | {} | {realigned} | {} | {} | {wrong} |\n",
            o.fault.at - start,
            o.fault.kind,
            o.fault.detail,
            if o.disrupted { "yes" } else { "no" },
            o.segment_changes,
        ));
    }
    out
}

/// The outcomes by kind, as a Markdown table: how many of each, the median and the longest
/// realignment among those that realigned, how many did not before the next fault, and the
/// wrong writes; then the same over every fault.
pub fn summary_table(outcomes: &[FaultOutcome]) -> String {
    let mut kinds: Vec<&str> = outcomes.iter().map(|o| o.fault.kind.as_str()).collect();
    kinds.sort();
    kinds.dedup();
    let row = |name: &str, of: Vec<&FaultOutcome>| {
        let mut seconds: Vec<f64> = of.iter().filter_map(|o| o.realigned_after).collect();
        seconds.sort_by(f64::total_cmp);
        let figure = |v: Option<f64>| v.map_or("-".to_string(), |s| format!("{s:.0}"));
        format!(
            "| {name} | {} | {} | {} | {} | {} |\n",
            of.len(),
            figure(median(&seconds)),
            figure(seconds.last().copied()),
            of.len() - seconds.len(),
            of.iter().map(|o| o.wrong_writes.len()).sum::<usize>(),
        )
    };
    let mut out = String::from(
        "| fault | injected | median realigned after (s) | longest (s) | not realigned before the next | wrong writes |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for kind in kinds {
        out.push_str(&row(
            kind,
            outcomes.iter().filter(|o| o.fault.kind == kind).collect(),
        ));
    }
    out.push_str(&row("**every fault**", outcomes.iter().collect()));
    out
}

/// The median of sorted `values`: the middle one, or the mean of the middle two.
pub(crate) fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: f64, segments: u32, parallelism: Option<u32>, leader: &str) -> TimelineSample {
        TimelineSample {
            at,
            segments: Some(segments),
            parallelism,
            replicas: parallelism.map(|p| p as i32),
            leader: Some(leader.to_string()),
            ..TimelineSample::default()
        }
    }

    fn fault(at: f64, kind: &str) -> Fault {
        Fault {
            at,
            kind: kind.into(),
            detail: String::new(),
        }
    }

    /// 2 segments throughout; the job unknown from `gone` to `back` (exclusive), else at 2.
    fn outage(from: f64, to: f64, gone: f64, back: f64) -> Vec<TimelineSample> {
        (from as i64..to as i64)
            .map(|t| t as f64)
            .map(|t| sample(t, 2, (t < gone || t >= back).then_some(2), "a-1"))
            .collect()
    }

    #[test]
    fn a_fault_is_over_when_the_job_is_aligned_again_for_the_settle_time() {
        // A TaskManager killed at 100: aligned-looking until the heartbeat times out at 110,
        // restarting until 131.
        let timeline = outage(90.0, 200.0, 110.0, 131.0);
        let outcome = &outcomes(&[fault(100.0, "taskmanager")], &timeline, &[], 0.0, (1, 8))[0];
        assert_eq!(outcome.realigned_after, Some(31.0));
        assert!(outcome.disrupted);
        assert_eq!(outcome.segment_changes, 0);
    }

    #[test]
    fn a_fault_the_job_never_noticed_costs_nothing() {
        let timeline = outage(90.0, 200.0, 500.0, 500.0);
        let outcome = &outcomes(&[fault(100.0, "leader-pod")], &timeline, &[], 0.0, (1, 8))[0];
        assert_eq!(outcome.realigned_after, Some(0.0));
        assert!(!outcome.disrupted);
    }

    #[test]
    fn a_job_still_out_of_alignment_at_the_next_fault_did_not_realign() {
        let timeline = outage(90.0, 300.0, 101.0, 250.0);
        let faults = [
            fault(100.0, "jobmanager-pod"),
            fault(200.0, "controller-freeze"),
        ];
        let all = outcomes(&faults, &timeline, &[], 0.0, (1, 8));
        assert_eq!(all[0].realigned_after, None);
        assert_eq!(all[1].realigned_after, Some(50.0));
    }

    #[test]
    fn a_realignment_cut_short_by_a_segment_change_still_ends_the_faults_cost() {
        // The JobManager's pod deleted at 100: the job back at 1 segment from 130; the stream
        // splits at 135, 5 s into the settle time, and the job follows 40 s later.
        let mut timeline: Vec<TimelineSample> = (90..=230)
            .map(|t| {
                let t = t as f64;
                let segments = if t < 135.0 { 1 } else { 2 };
                let parallelism = match t {
                    t if (100.0..130.0).contains(&t) => None,
                    t if t < 175.0 => Some(1),
                    _ => Some(2),
                };
                sample(t, segments, parallelism, "a")
            })
            .collect();
        let faults = [fault(100.0, "jobmanager-pod"), fault(200.0, "leader-pod")];
        let all = outcomes(&faults, &timeline, &[], 0.0, (1, 8));
        assert_eq!(all[0].realigned_after, Some(30.0));
        assert!(all[0].disrupted);
        // Never aligned between the fault and the split: the split does not end its cost.
        for s in timeline
            .iter_mut()
            .filter(|s| s.at < 135.0 && s.at >= 100.0)
        {
            s.parallelism = None;
        }
        let all = outcomes(&faults, &timeline, &[], 0.0, (1, 8));
        assert_eq!(all[0].realigned_after, Some(75.0));
    }

    #[test]
    fn a_realignment_that_begins_before_the_next_fault_may_settle_after_it() {
        // Back at 2 from 131; the next fault (a leader pod, unnoticed by the job) at 135.
        let timeline = outage(90.0, 200.0, 110.0, 131.0);
        let faults = [fault(100.0, "taskmanager"), fault(135.0, "leader-pod")];
        let all = outcomes(&faults, &timeline, &[], 0.0, (1, 8));
        assert_eq!(all[0].realigned_after, Some(31.0));
        assert_eq!(all[1].realigned_after, Some(0.0));
    }

    #[test]
    fn a_scale_down_waiting_out_its_stabilization_is_not_a_faults_cost() {
        // 3 segments, then 1 from 120; the job stays at 3 for the 60 s stabilization, then
        // scales down (restarting until 185) and runs at 1.
        let timeline: Vec<TimelineSample> = (90..260)
            .map(|t| {
                let t = f64::from(t);
                let segments = if t < 120.0 { 3 } else { 1 };
                let parallelism = match t {
                    t if t < 180.0 => Some(3),
                    t if t < 185.0 => None,
                    _ => Some(1),
                };
                sample(t, segments, parallelism, "a-1")
            })
            .collect();
        let faults = [fault(130.0, "leader-pod")];
        let held = outcomes(&faults, &timeline, &[], 60.0, (1, 8));
        assert_eq!(held[0].realigned_after, Some(0.0));
        assert!(!held[0].disrupted);
        // Judged on the segments alone, the stabilization and the restart would count.
        let strict = outcomes(&faults, &timeline, &[], 0.0, (1, 8));
        assert_eq!(strict[0].realigned_after, Some(55.0));
    }

    #[test]
    fn segment_changes_in_the_window_are_counted() {
        let mut timeline = outage(90.0, 200.0, 500.0, 500.0);
        for s in timeline.iter_mut().filter(|s| s.at >= 105.0) {
            s.segments = Some(3);
            s.parallelism = (s.at >= 115.0).then_some(3);
        }
        let outcome = &outcomes(
            &[fault(100.0, "kubelet-restart")],
            &timeline,
            &[],
            0.0,
            (1, 8),
        )[0];
        assert_eq!(outcome.segment_changes, 1);
        // Aligned from the fault until the segments changed: what follows is the change's own
        // reaction, not the fault's cost.
        assert_eq!(outcome.realigned_after, Some(0.0));
        assert!(!outcome.disrupted);
    }

    #[test]
    fn writes_outside_the_bounds_or_by_a_replica_without_the_lease_are_wrong() {
        let timeline = outage(90.0, 200.0, 500.0, 500.0);
        let write = |at: f64, instance: &str, replicas| ScaleWrite {
            at,
            instance: instance.into(),
            replicas,
        };
        let writes = [
            write(110.0, "a-1", 3),
            write(120.0, "a-1", 9),
            write(130.0, "a-1", 0),
            write(140.0, "b-1", 2),
        ];
        // The Lease unread around 170: the holder seen last before counts.
        let mut timeline = timeline;
        for s in timeline
            .iter_mut()
            .filter(|s| s.at >= 165.0 && s.at < 175.0)
        {
            s.leader = None;
        }
        let writes = [
            &writes[..],
            &[write(170.0, "a-1", 2), write(171.0, "b-1", 2)],
        ]
        .concat();
        let outcome = &outcomes(
            &[fault(100.0, "leader-pod")],
            &timeline,
            &writes,
            0.0,
            (1, 8),
        )[0];
        let why: Vec<&str> = outcome
            .wrong_writes
            .iter()
            .map(|w| w.why.as_str())
            .collect();
        assert_eq!(
            why,
            [
                "9 replicas, above max 8",
                "0 replicas, below min 1",
                "b-1 did not hold the Lease then",
                "b-1 did not hold the Lease then"
            ]
        );
    }

    #[test]
    fn the_replicas_written_are_read_from_the_event_note() {
        assert_eq!(written_replicas("replicas 2 -> 3: segments 3"), Some(3));
        assert_eq!(written_replicas("replicas 12 -> 10"), Some(10));
        assert_eq!(written_replicas("paused"), None);
    }

    #[test]
    fn fault_lines_are_parsed_and_a_bad_one_is_named() {
        let faults = parse_faults("1700000000.5\tleader-pod\tdeleted pod a\n\n").unwrap();
        assert_eq!(faults[0].at, 1_700_000_000.5);
        assert_eq!(faults[0].detail, "deleted pod a");
        let error = parse_faults("soon\tleader-pod\tx").unwrap_err();
        assert!(error.contains("faults line 1"), "{error}");
        // Lines are counted in the file, blank ones too.
        let error = parse_faults("1\tleader-pod\tx\n\nsoon\ttaskmanager\ty").unwrap_err();
        assert!(error.contains("faults line 3"), "{error}");
    }

    #[test]
    fn scale_writes_are_read_from_the_autoscalers_events() {
        let events = serde_json::json!({"items": [
            {"metadata": {"name": "e1"}, "reason": "ScaledUp",
             "eventTime": "2026-12-05T19:36:00.500000Z",
             "reportingInstance": "segment-autoscaler-abc-1", "message": "replicas 1 -> 2: segments 2"},
            {"metadata": {"name": "e2"}, "reason": "Pulled", "message": "image"},
        ]});
        let writes = scale_writes(&events).unwrap();
        assert_eq!(writes.len(), 1);
        assert_eq!(writes[0].replicas, 2);
        assert_eq!(writes[0].instance, "segment-autoscaler-abc-1");
        assert_eq!(writes[0].at, 1_796_499_360.5);
        let unnamed = serde_json::json!({"items": [
            {"metadata": {"name": "e3"}, "reason": "ScaledDown", "eventTime": "2026-12-05T19:36:00Z",
             "message": "replicas 2 -> 1: x"}]});
        assert!(scale_writes(&unnamed).unwrap_err().contains("e3"));
    }

    #[test]
    fn timeline_lines_parse_and_a_bad_one_is_named() {
        let timeline = parse_timeline(
            "{\"at\":1.5,\"segments\":2,\"parallelism\":null,\"replicas\":2,\"leader\":\"a-1\"}\n",
        )
        .unwrap();
        assert_eq!(timeline[0].segments, Some(2));
        assert!(!timeline[0].aligned());
        assert!(parse_timeline("{}\n").unwrap_err().contains("line 1"));
    }

    #[test]
    fn the_table_has_a_row_per_fault() {
        let timeline = outage(90.0, 200.0, 110.0, 131.0);
        let table = table(
            &outcomes(&[fault(100.0, "taskmanager")], &timeline, &[], 0.0, (1, 8)),
            90.0,
        );
        assert_eq!(table.lines().count(), 3, "{table}");
        assert!(
            table.contains("| 10 | taskmanager |  | 31 | yes | 0 | none |"),
            "{table}"
        );
    }

    #[test]
    fn the_summary_gives_each_kind_its_median_and_counts_what_did_not_realign() {
        let outcome = |kind: &str, realigned: Option<f64>, wrong: usize| FaultOutcome {
            fault: fault(0.0, kind),
            realigned_after: realigned,
            disrupted: true,
            segment_changes: 0,
            wrong_writes: (0..wrong)
                .map(|_| WrongWrite {
                    write: ScaleWrite {
                        at: 1.0,
                        replicas: 9,
                        instance: "a-1".into(),
                    },
                    why: "9 replicas, above max 8".into(),
                })
                .collect(),
        };
        let table = summary_table(&[
            outcome("taskmanager", Some(30.0), 0),
            outcome("leader-pod", Some(2.0), 0),
            outcome("taskmanager", Some(10.0), 1),
            outcome("leader-pod", None, 0),
            outcome("taskmanager", Some(20.0), 0),
        ]);
        let rows: Vec<&str> = table.lines().skip(2).collect();
        assert_eq!(
            rows,
            [
                "| leader-pod | 2 | 2 | 2 | 1 | 0 |",
                "| taskmanager | 3 | 20 | 30 | 0 | 1 |",
                "| **every fault** | 5 | 15 | 30 | 1 | 1 |",
            ]
        );
        assert_eq!(median(&[]), None);
    }
}

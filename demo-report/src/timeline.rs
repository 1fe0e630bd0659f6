//! A run's timeline: what `run-timeline` sampled every second from outside the autoscaler (the
//! stream's segments, the job, its TaskManagers, the target, the events end to end). The chaos
//! run judges its faults on it ([`crate::faults`]), `benches/peers` each contender
//! ([`crate::peers`]).

use serde::{Deserialize, Serialize};

/// What the run looked like at one instant; a field is None when its source did not answer
/// (or, in a timeline written before it existed, was not sampled).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimelineSample {
    /// Unix seconds.
    pub at: f64,
    /// Active segments of the stream, from the Pravega controller.
    pub segments: Option<u32>,
    /// The job's source parallelism while it runs with every task RUNNING; None between two
    /// schedules or when the JobManager does not answer.
    pub parallelism: Option<u32>,
    /// The target's desired replicas (its scale subresource's spec).
    pub replicas: Option<i32>,
    /// The autoscaler's Lease holder.
    pub leader: Option<String>,
    /// TaskManagers registered with the JobManager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taskmanagers: Option<u32>,
    /// Events the data generator wrote so far, as Prometheus last scraped them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<u64>,
    /// Events the busy reader's verifier counted so far (its checkpointed count), as
    /// Prometheus last scraped them; None while its tasks restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<u64>,
    /// The sources that did not answer within the read bound, or answered with an error
    /// ([`Source`] names): their fields say "unknown", not "absent" (a job not running).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unanswered: Vec<Source>,
}

/// What `run-timeline` reads each sample from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The Pravega controller (segments).
    Segments,
    /// The JobManager's job overview (parallelism).
    Job,
    /// The JobManager's cluster overview (TaskManagers).
    Taskmanagers,
    /// The API server's scale subresource of the target (replicas).
    Target,
    /// The API server's Lease (leader).
    Lease,
    /// Prometheus (events written and read).
    Events,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Segments => "segments",
            Source::Job => "job",
            Source::Taskmanagers => "taskmanagers",
            Source::Target => "target",
            Source::Lease => "lease",
            Source::Events => "events",
        })
    }
}

impl TimelineSample {
    /// Whether the job runs at parallelism = segments (unknown counts as not).
    pub fn aligned(&self) -> bool {
        matches!((self.segments, self.parallelism), (Some(s), Some(p)) if s == p)
    }
}

/// One line on how blind `timeline` was: its samples, their span, and per source how many
/// went unanswered (a judgment on a timeline with many reads unanswered says more about the
/// machine than about the run).
pub fn coverage(timeline: &[TimelineSample]) -> String {
    let (Some(first), Some(last)) = (timeline.first(), timeline.last()) else {
        return "Timeline: no samples.".into();
    };
    let mut unanswered = std::collections::BTreeMap::<Source, usize>::new();
    for source in timeline.iter().flat_map(|s| &s.unanswered) {
        *unanswered.entry(*source).or_default() += 1;
    }
    let reads = if unanswered.is_empty() {
        "every read answered".to_string()
    } else {
        let each: Vec<String> = unanswered
            .iter()
            .map(|(source, n)| format!("{source} {n}"))
            .collect();
        format!("reads unanswered: {}", each.join(", "))
    };
    format!(
        "Timeline: {} samples over {:.0} s; {reads}.",
        timeline.len(),
        last.at - first.at
    )
}

/// Parses the timeline `run-timeline` wrote (one JSON sample a line).
pub fn parse_timeline(text: &str) -> Result<Vec<TimelineSample>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| format!("timeline line {}: {e}", i + 1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeline_from_before_the_peer_fields_still_parses() {
        let old = r#"{"at":1.0,"segments":2,"parallelism":2,"replicas":2,"leader":"a"}"#;
        let samples = parse_timeline(old).unwrap();
        assert_eq!(samples[0].taskmanagers, None);
        assert!(samples[0].aligned());
    }

    #[test]
    fn the_coverage_counts_each_unanswered_source() {
        let samples = parse_timeline(
            "{\"at\":10.0,\"segments\":2,\"parallelism\":null,\"replicas\":null,\"leader\":null,\"unanswered\":[\"job\",\"target\"]}\n\
             {\"at\":11.0,\"segments\":2,\"parallelism\":null,\"replicas\":2,\"leader\":null,\"unanswered\":[\"job\"]}\n\
             {\"at\":40.0,\"segments\":2,\"parallelism\":2,\"replicas\":2,\"leader\":null}",
        )
        .unwrap();
        assert_eq!(samples[0].unanswered, vec![Source::Job, Source::Target]);
        assert_eq!(
            coverage(&samples),
            "Timeline: 3 samples over 30 s; reads unanswered: job 2, target 1."
        );
        assert_eq!(
            coverage(&samples[2..]),
            "Timeline: 1 samples over 0 s; every read answered."
        );
        assert_eq!(coverage(&[]), "Timeline: no samples.");
    }

    #[test]
    fn a_bad_line_is_named() {
        let error = parse_timeline("{\"at\":1.0}\nnot json").unwrap_err();
        assert!(error.starts_with("timeline line 2:"), "{error}");
    }
}

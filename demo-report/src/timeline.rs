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
}

impl TimelineSample {
    /// Whether the job runs at parallelism = segments (unknown counts as not).
    pub fn aligned(&self) -> bool {
        matches!((self.segments, self.parallelism), (Some(s), Some(p)) if s == p)
    }
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
    fn a_bad_line_is_named() {
        let error = parse_timeline("{\"at\":1.0}\nnot json").unwrap_err();
        assert!(error.starts_with("timeline line 2:"), "{error}");
    }
}

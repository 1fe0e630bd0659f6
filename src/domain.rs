//! The domain's vocabulary, shared by every stage: streams, how a binding reads and combines
//! them, which source answered, how a job is aligned with its segments, and the bounded reasons an I/O step fails for.
//!
//! A leaf: it imports nothing of the crate, so configuration and the stages can all use it
//! without depending on one another.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Pravega stream, written `scope/stream`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    /// The scope.
    pub scope: String,
    /// The stream within the scope.
    pub stream: String,
}

impl FromStr for StreamId {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let valid = |part: &str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        };
        match text.split_once('/') {
            Some((scope, stream)) if valid(scope) && valid(stream) => Ok(StreamId {
                scope: scope.to_string(),
                stream: stream.to_string(),
            }),
            _ => Err(format!(
                "{text:?} is not scope/stream (letters, digits, '-', '.', '_')"
            )),
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.scope, self.stream)
    }
}

impl<'de> Deserialize<'de> for StreamId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for StreamId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// How the segment counts of a binding's streams combine into one figure.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Combine {
    /// One reader per segment across all streams (a job reading every stream).
    #[default]
    Sum,
    /// As many readers as the widest stream.
    Max,
}

/// Where a binding's segment counts come from.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SourceChoice {
    /// Prometheus only.
    Prometheus,
    /// The Pravega controller only.
    Controller,
    /// The controller first, Prometheus when the controller does not answer.
    #[default]
    Auto,
}

impl SourceChoice {
    /// The source this choice reads first, and those it falls back to, in order.
    pub fn preference(self) -> (SourceKind, &'static [SourceKind]) {
        match self {
            SourceChoice::Prometheus => (SourceKind::Prometheus, &[]),
            SourceChoice::Controller => (SourceKind::Controller, &[]),
            SourceChoice::Auto => (SourceKind::Controller, &[SourceKind::Prometheus]),
        }
    }
}

/// Which source answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Prometheus.
    Prometheus,
    /// The Pravega controller.
    Controller,
}

impl SourceKind {
    /// The label value used in metrics and output.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Prometheus => "prometheus",
            SourceKind::Controller => "controller",
        }
    }
}

/// Why an I/O step failed, in a word: the `reason` label of the error counters. The set is
/// closed so a metric never grows a series per message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorReason {
    /// No answer within the step's timeout.
    Timeout,
    /// No connection (refused, reset, DNS).
    Unreachable,
    /// The TLS handshake failed: a certificate refused (unknown CA, expired, another host's),
    /// or TLS and plain text on the two ends.
    Tls,
    /// No credentials, or wrong ones (HTTP 401, gRPC UNAUTHENTICATED).
    Unauthenticated,
    /// The credentials were accepted but do not allow the call (HTTP 403, gRPC
    /// PERMISSION_DENIED).
    Forbidden,
    /// The object or job asked for does not exist (HTTP 404).
    NotFound,
    /// Another writer changed the object since it was read (HTTP 409).
    Conflict,
    /// An answer came, but not one that can be understood or believed.
    InvalidAnswer,
    /// The other side answered with an error of another kind (an error status, a failed
    /// command, a gRPC error).
    Rejected,
    /// The step needs a source or client the configuration does not have.
    NotConfigured,
}

impl ErrorReason {
    /// Every reason, so counters can be exported at 0 before the first failure.
    pub const ALL: [ErrorReason; 10] = [
        ErrorReason::Timeout,
        ErrorReason::Unreachable,
        ErrorReason::Tls,
        ErrorReason::Unauthenticated,
        ErrorReason::Forbidden,
        ErrorReason::NotFound,
        ErrorReason::Conflict,
        ErrorReason::InvalidAnswer,
        ErrorReason::Rejected,
        ErrorReason::NotConfigured,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorReason::Timeout => "timeout",
            ErrorReason::Unreachable => "unreachable",
            ErrorReason::Tls => "tls",
            ErrorReason::Unauthenticated => "unauthenticated",
            ErrorReason::Forbidden => "forbidden",
            ErrorReason::NotFound => "not_found",
            ErrorReason::Conflict => "conflict",
            ErrorReason::InvalidAnswer => "invalid_answer",
            ErrorReason::Rejected => "rejected",
            ErrorReason::NotConfigured => "not_configured",
        }
    }

    /// The reason an HTTP error status stands for.
    pub fn of_http_status(status: u16) -> ErrorReason {
        match status {
            401 => ErrorReason::Unauthenticated,
            403 => ErrorReason::Forbidden,
            404 => ErrorReason::NotFound,
            409 => ErrorReason::Conflict,
            408 | 504 => ErrorReason::Timeout,
            _ => ErrorReason::Rejected,
        }
    }
}

/// TaskManagers the prewarmed alignment keeps started beyond the job's, unless configured.
pub const DEFAULT_HEADROOM: u32 = 1;

/// How a binding brings its job to the parallelism the segments call for
/// (`{mode: reactive}` or `{mode: prewarmed, headroom: N}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "AlignmentFields")]
pub enum Alignment {
    /// Flink's reactive mode (`scheduler-mode: reactive`): the job uses every TaskManager, so
    /// the autoscaler sets the TaskManagers and Flink follows.
    #[default]
    Reactive,
    /// Flink's adaptive scheduler (`jobmanager.scheduler: adaptive`, not reactive): the
    /// autoscaler sets the job's parallelism through the JobManager's resource-requirements
    /// API, on TaskManagers it keeps started ahead: the job's plus `headroom`.
    Prewarmed {
        /// TaskManagers kept started beyond what the job uses, so a scale-up finds its slots
        /// waiting (default 1; never beyond `max_replicas`).
        headroom: u32,
    },
}

/// `flink.alignment` as written: a headroom only makes sense with `mode: prewarmed`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlignmentFields {
    mode: AlignmentMode,
    headroom: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum AlignmentMode {
    Reactive,
    Prewarmed,
}

impl TryFrom<AlignmentFields> for Alignment {
    type Error = String;

    fn try_from(fields: AlignmentFields) -> Result<Self, Self::Error> {
        Alignment::from_mode(
            matches!(fields.mode, AlignmentMode::Prewarmed),
            fields.headroom,
        )
    }
}

impl Alignment {
    /// The mode as written (`prewarmed` or reactive, and a headroom, which only the prewarmed
    /// mode takes), for a configuration file's binding and a SegmentScaler alike.
    pub fn from_mode(prewarmed: bool, headroom: Option<u32>) -> Result<Self, String> {
        match (prewarmed, headroom) {
            (false, None) => Ok(Alignment::Reactive),
            (false, Some(_)) => Err(
                "headroom applies only to mode: prewarmed (reactive mode uses every TaskManager)"
                    .into(),
            ),
            (true, headroom) => Ok(Alignment::Prewarmed {
                headroom: headroom.unwrap_or(DEFAULT_HEADROOM),
            }),
        }
    }

    /// The mode's name, as in the configuration, metrics and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Alignment::Reactive => "reactive",
            Alignment::Prewarmed { .. } => "prewarmed",
        }
    }

    /// TaskManagers kept beyond the job's (0 in reactive mode).
    pub fn headroom(self) -> u32 {
        match self {
            Alignment::Reactive => 0,
            Alignment::Prewarmed { headroom } => headroom,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_parse_and_print() {
        let id: StreamId = "demo/load-1.a_b".parse().unwrap();
        assert_eq!(
            (id.scope.as_str(), id.stream.as_str()),
            ("demo", "load-1.a_b")
        );
        assert_eq!(id.to_string(), "demo/load-1.a_b");
        for bad in ["", "demo", "demo/", "/load", "a/b/c", "a b/c", "a/ü"] {
            assert!(
                bad.parse::<StreamId>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn reason_labels_are_distinct_snake_case_words() {
        let labels: std::collections::BTreeSet<&str> =
            ErrorReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(labels.len(), ErrorReason::ALL.len());
        assert!(labels
            .iter()
            .all(|l| l.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
    }

    #[test]
    fn http_statuses_map_to_reasons() {
        assert_eq!(ErrorReason::of_http_status(403), ErrorReason::Forbidden);
        assert_eq!(
            ErrorReason::of_http_status(401),
            ErrorReason::Unauthenticated
        );
        assert_eq!(ErrorReason::of_http_status(404), ErrorReason::NotFound);
        assert_eq!(ErrorReason::of_http_status(409), ErrorReason::Conflict);
        assert_eq!(ErrorReason::of_http_status(504), ErrorReason::Timeout);
        assert_eq!(ErrorReason::of_http_status(500), ErrorReason::Rejected);
    }
}

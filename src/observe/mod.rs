//! Observe: the active segment count of each bound stream, from Prometheus (the controller's
//! `pravega_controller_segments_count` gauge, [`prometheus`]) or from the Pravega controller
//! over gRPC ([`controller`]), and the policy that picks a binding's reading among them
//! ([`SourceReadings::observe`]).
//!
//! A reading is a count only when it is a plausible one: a missing series, NaN, a negative,
//! fractional, zero or absurd value, or a source that did not answer are all kept as such, so
//! that the plan holds instead of scaling on them.

pub mod controller;
pub mod evidence;
pub mod prometheus;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

pub use controller::ControllerSource;
pub use prometheus::PrometheusSource;

use crate::domain::{ErrorReason, SourceChoice, SourceKind, StreamId};

/// More active segments than any real stream has: a value above it is treated as nonsense.
pub const MAX_PLAUSIBLE_SEGMENTS: u32 = 100_000;

/// What a source says about one stream's active segments.
#[derive(Debug, Clone, PartialEq)]
pub enum SegmentReading {
    /// A plausible count (at least 1), reported now.
    Segments(u32),
    /// A plausible count last reported `age` ago: Prometheus after Pravega evicted the gauge.
    LastReported {
        /// The count.
        segments: u32,
        /// Time since its newest sample.
        age: Duration,
    },
    /// Prometheus' series cannot tell the count.
    Undetermined(Undetermined),
    /// The source gave a value no stream can have.
    Invalid(ImplausibleCount),
    /// The source did not answer.
    Unavailable(SourceError),
}

/// A segment count no live stream can have.
#[derive(Debug, Clone, PartialEq)]
pub enum ImplausibleCount {
    /// Not a number.
    NotANumber,
    /// Below zero.
    Negative(f64),
    /// Not a whole number.
    Fractional(f64),
    /// Zero: a live stream has at least one segment (sealed or deleted?).
    Zero,
    /// More than [`MAX_PLAUSIBLE_SEGMENTS`].
    Absurd(f64),
}

/// Why Prometheus' series of a stream cannot tell its count (see [`evidence::judge`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Undetermined {
    /// No series within the look-back.
    NoSeries {
        /// The look-back.
        lookback: Duration,
    },
    /// Controller instances report different counts and which changed last cannot be told.
    Unordered {
        /// Each reporter with its count.
        reports: Vec<String>,
    },
    /// None of the controller instances that reported the stream is scraped now.
    NotScraped {
        /// Each reporter with its `up` state.
        targets: Vec<String>,
    },
}

/// What a user can do about an undetermined count.
const ADVICE: &str = "use source: auto or controller to ask the Pravega controller directly";

impl fmt::Display for Undetermined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Undetermined::NoSeries { lookback } => write!(
                f,
                "no series within the look-back of {} (Pravega reports the gauge only when a stream is created or scaled, and evicts it 3 minutes later by default); raise prometheus.lookback or {ADVICE}",
                humantime::format_duration(*lookback)
            ),
            Undetermined::Unordered { reports } => write!(
                f,
                "controller instances report different counts and which changed last cannot be told ({}); {ADVICE}",
                reports.join(", ")
            ),
            Undetermined::NotScraped { targets } => write!(
                f,
                "no controller instance that reported it is being scraped ({}), so a scale could go unseen; fix the scrape or {ADVICE}",
                targets.join(", ")
            ),
        }
    }
}

impl fmt::Display for ImplausibleCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImplausibleCount::NotANumber => write!(f, "NaN"),
            ImplausibleCount::Negative(v) => write!(f, "negative value {v}"),
            ImplausibleCount::Fractional(v) => write!(f, "fractional value {v}"),
            ImplausibleCount::Zero => write!(
                f,
                "0 active segments (a live stream has at least 1; sealed or deleted?)"
            ),
            ImplausibleCount::Absurd(v) => {
                write!(f, "absurd value {v} (above {MAX_PLAUSIBLE_SEGMENTS})")
            }
        }
    }
}

/// Why a source could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    /// No answer within the source's timeout.
    #[error("{endpoint} did not answer within {after:?}")]
    Timeout {
        /// What was asked.
        endpoint: String,
        /// The timeout.
        after: Duration,
    },
    /// No connection.
    #[error("{endpoint}: {message}")]
    Unreachable {
        /// What was asked.
        endpoint: String,
        /// The transport's error.
        message: String,
    },
    /// The TLS handshake failed.
    #[error("{endpoint}: TLS handshake failed: {message} (see {settings})")]
    Tls {
        /// What was asked.
        endpoint: String,
        /// Why, in the TLS stack's words.
        message: String,
        /// The configuration that decides it, e.g. `pravega.tls`.
        settings: String,
    },
    /// The source refused the credentials (or asked for some).
    #[error("{endpoint}: not authenticated: {message} (see {settings})")]
    Unauthenticated {
        /// What was asked.
        endpoint: String,
        /// The source's error.
        message: String,
        /// The configuration that decides it, e.g. `pravega.credentials`.
        settings: String,
    },
    /// The credentials were accepted, but do not allow the call.
    #[error("{endpoint}: permission denied: {message} (see {settings})")]
    Forbidden {
        /// What was asked.
        endpoint: String,
        /// The source's error.
        message: String,
        /// The configuration that decides it, e.g. `pravega.credentials`.
        settings: String,
    },
    /// An HTTP error status.
    #[error("{endpoint}: HTTP {status}: {message}")]
    Status {
        /// What was asked.
        endpoint: String,
        /// The status code.
        status: u16,
        /// The error the server gave.
        message: String,
    },
    /// The source answered with an error of its own (a gRPC error, a failed query).
    #[error("{endpoint}: {message}")]
    Rejected {
        /// What was asked.
        endpoint: String,
        /// The source's error.
        message: String,
    },
    /// An answer that cannot be understood.
    #[error("{endpoint}: unexpected answer: {message}")]
    InvalidAnswer {
        /// What was asked.
        endpoint: String,
        /// What is wrong with it.
        message: String,
    },
    /// The binding reads a source the configuration does not have.
    #[error("{} is not configured", .0.as_str())]
    NotConfigured(SourceKind),
    /// `auto`: the controller failed and so did the Prometheus fallback.
    #[error("controller: {controller}; prometheus: {prometheus}")]
    BothFailed {
        /// The controller's failure.
        controller: Box<SourceError>,
        /// Prometheus' failure.
        prometheus: Box<SourceError>,
    },
}

impl SourceError {
    /// The bounded label of `source_errors_total`.
    pub fn reason(&self) -> ErrorReason {
        match self {
            SourceError::Timeout { .. } => ErrorReason::Timeout,
            SourceError::Unreachable { .. } => ErrorReason::Unreachable,
            SourceError::Tls { .. } => ErrorReason::Tls,
            SourceError::Unauthenticated { .. } => ErrorReason::Unauthenticated,
            SourceError::Forbidden { .. } => ErrorReason::Forbidden,
            SourceError::Status { status, .. } => ErrorReason::of_http_status(*status),
            SourceError::Rejected { .. } => ErrorReason::Rejected,
            SourceError::InvalidAnswer { .. } => ErrorReason::InvalidAnswer,
            SourceError::NotConfigured(_) => ErrorReason::NotConfigured,
            SourceError::BothFailed { prometheus, .. } => prometheus.reason(),
        }
    }
}

impl SegmentReading {
    /// Checks a raw sample (Prometheus values are floats) and keeps it only if plausible.
    pub fn from_sample(value: f64) -> SegmentReading {
        let implausible = if value.is_nan() {
            ImplausibleCount::NotANumber
        } else if value < 0.0 {
            ImplausibleCount::Negative(value)
        } else if value.fract() != 0.0 {
            ImplausibleCount::Fractional(value)
        } else if value == 0.0 {
            ImplausibleCount::Zero
        } else if value > f64::from(MAX_PLAUSIBLE_SEGMENTS) {
            ImplausibleCount::Absurd(value)
        } else {
            return SegmentReading::Segments(value as u32);
        };
        SegmentReading::Invalid(implausible)
    }

    /// The count, when the reading is one.
    pub fn segments(&self) -> Option<u32> {
        match self {
            SegmentReading::Segments(n) => Some(*n),
            SegmentReading::LastReported { segments, .. } => Some(*segments),
            _ => None,
        }
    }

    /// How old the evidence of the count is: zero when reported now, `None` without a count.
    pub fn evidence_age(&self) -> Option<Duration> {
        match self {
            SegmentReading::Segments(_) => Some(Duration::ZERO),
            SegmentReading::LastReported { age, .. } => Some(*age),
            _ => None,
        }
    }
}

impl fmt::Display for SegmentReading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SegmentReading::Segments(n) => write!(f, "{n} segments"),
            SegmentReading::LastReported { segments, age } => write!(
                f,
                "{segments} segments, last reported {} ago",
                humantime::format_duration(Duration::from_secs(age.as_secs()))
            ),
            SegmentReading::Undetermined(why) => write!(f, "undetermined: {why}"),
            SegmentReading::Invalid(why) => write!(f, "invalid: {why}"),
            SegmentReading::Unavailable(why) => write!(f, "source unavailable: {why}"),
        }
    }
}

/// One stream's reading and the source it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The stream.
    pub stream: StreamId,
    /// What was read.
    pub reading: SegmentReading,
    /// Who answered (or failed to).
    pub source: SourceKind,
}

/// A source of segment counts. One call covers every stream the tick needs.
#[async_trait]
pub trait SegmentSource: Send + Sync {
    /// Which source this is.
    fn kind(&self) -> SourceKind;

    /// Reads every stream in `streams`; a stream the source could not read maps to
    /// [`SegmentReading::Unavailable`] (a whole-source failure marks them all).
    async fn read(&self, streams: &BTreeSet<StreamId>) -> HashMap<StreamId, SegmentReading>;
}

/// The configured sources, by kind.
#[derive(Default)]
pub struct Sources(BTreeMap<SourceKind, Box<dyn SegmentSource>>);

impl Sources {
    /// The sources given, each under its own kind (a later one of a kind replaces an earlier).
    pub fn new(sources: impl IntoIterator<Item = Box<dyn SegmentSource>>) -> Self {
        Sources(sources.into_iter().map(|s| (s.kind(), s)).collect())
    }

    /// Which sources are configured.
    pub fn kinds(&self) -> impl Iterator<Item = SourceKind> + '_ {
        self.0.keys().copied()
    }

    /// Reads, once and concurrently, every stream that `demands` (a binding's source choice
    /// and streams) need from each source. `auto` reads every configured source it may use in
    /// the same tick, so the fallback costs no extra tick.
    pub async fn read<'a>(
        &self,
        demands: impl IntoIterator<Item = (SourceChoice, &'a [StreamId])>,
    ) -> SourceReadings {
        let mut wanted: BTreeMap<SourceKind, BTreeSet<StreamId>> = BTreeMap::new();
        for (choice, streams) in demands {
            let (first, fallbacks) = choice.preference();
            for kind in std::iter::once(first).chain(fallbacks.iter().copied()) {
                // A choice of one source asks it even when unconfigured (nothing is read: the
                // binding's observation says so); `auto` asks only those configured.
                if choice == SourceChoice::Auto && !self.0.contains_key(&kind) {
                    continue;
                }
                wanted
                    .entry(kind)
                    .or_default()
                    .extend(streams.iter().cloned());
            }
        }
        let reads = wanted.iter().filter_map(|(kind, streams)| {
            let source = self.0.get(kind).filter(|_| !streams.is_empty())?;
            Some(async move { (*kind, source.read(streams).await) })
        });
        SourceReadings(futures::future::join_all(reads).await.into_iter().collect())
    }
}

/// What each source said in one tick.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceReadings(BTreeMap<SourceKind, HashMap<StreamId, SegmentReading>>);

impl SourceReadings {
    /// Readings as given, e.g. in a test.
    pub fn new(
        readings: impl IntoIterator<Item = (SourceKind, HashMap<StreamId, SegmentReading>)>,
    ) -> Self {
        SourceReadings(readings.into_iter().collect())
    }

    /// What `kind` said, by stream (empty when it was not asked).
    pub fn of(&self, kind: SourceKind) -> impl Iterator<Item = (&StreamId, &SegmentReading)> {
        self.0.get(&kind).into_iter().flatten()
    }

    fn reading(&self, kind: SourceKind, stream: &StreamId) -> Option<&SegmentReading> {
        self.0.get(&kind)?.get(stream)
    }

    /// The distinct (source, reason) failures of this tick.
    pub fn failures(&self) -> BTreeSet<(SourceKind, ErrorReason)> {
        self.0
            .iter()
            .flat_map(|(kind, readings)| {
                readings.values().filter_map(move |r| match r {
                    SegmentReading::Unavailable(e) => Some((*kind, e.reason())),
                    _ => None,
                })
            })
            .collect()
    }

    /// The observation of `stream` for a binding reading from `choice`. `auto` takes the
    /// controller's answer (a count, a missing or an implausible one alike) and falls back to
    /// Prometheus only when the controller did not answer.
    pub fn observe(&self, choice: SourceChoice, stream: &StreamId) -> Observation {
        let from =
            |kind: SourceKind| Observation {
                stream: stream.clone(),
                reading: self.reading(kind, stream).cloned().unwrap_or(
                    SegmentReading::Unavailable(SourceError::NotConfigured(kind)),
                ),
                source: kind,
            };
        // The first source that answers; a fallback with no reading leaves the failure as it is.
        let (first, fallbacks) = choice.preference();
        let mut observed = from(first);
        for &fallback in fallbacks {
            let SegmentReading::Unavailable(preferred_error) = &observed.reading else {
                break;
            };
            match self.reading(fallback, stream) {
                None => {}
                Some(SegmentReading::Unavailable(fallback_error)) => {
                    observed = Observation {
                        stream: stream.clone(),
                        reading: SegmentReading::Unavailable(SourceError::BothFailed {
                            controller: Box::new(preferred_error.clone()),
                            prometheus: Box::new(fallback_error.clone()),
                        }),
                        source: fallback,
                    }
                }
                Some(_) => observed = from(fallback),
            }
        }
        observed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plausible_samples_are_counts() {
        assert_eq!(
            SegmentReading::from_sample(4.0),
            SegmentReading::Segments(4)
        );
        assert_eq!(
            SegmentReading::from_sample(1.0),
            SegmentReading::Segments(1)
        );
        for bad in [f64::NAN, -1.0, 2.5, 0.0, f64::INFINITY, 1e9] {
            assert!(
                matches!(SegmentReading::from_sample(bad), SegmentReading::Invalid(_)),
                "{bad} should be invalid"
            );
        }
    }

    fn unreachable(endpoint: &str) -> SourceError {
        SourceError::Unreachable {
            endpoint: endpoint.into(),
            message: "connection refused".into(),
        }
    }

    fn timeout(endpoint: &str) -> SourceError {
        SourceError::Timeout {
            endpoint: endpoint.into(),
            after: Duration::from_secs(1),
        }
    }

    #[test]
    fn every_source_error_has_its_reason() {
        let status = |status| SourceError::Status {
            endpoint: "p".into(),
            status,
            message: String::new(),
        };
        let cases = [
            (timeout("p"), ErrorReason::Timeout),
            (unreachable("p"), ErrorReason::Unreachable),
            (status(403), ErrorReason::Forbidden),
            (status(503), ErrorReason::Rejected),
            (
                SourceError::Rejected {
                    endpoint: "c".into(),
                    message: "no such stream".into(),
                },
                ErrorReason::Rejected,
            ),
            (
                SourceError::InvalidAnswer {
                    endpoint: "p".into(),
                    message: "not JSON".into(),
                },
                ErrorReason::InvalidAnswer,
            ),
            (
                SourceError::NotConfigured(SourceKind::Prometheus),
                ErrorReason::NotConfigured,
            ),
            (
                SourceError::BothFailed {
                    controller: Box::new(unreachable("c")),
                    prometheus: Box::new(timeout("p")),
                },
                ErrorReason::Timeout,
            ),
        ];
        for (error, reason) in cases {
            assert_eq!(error.reason(), reason, "{error}");
        }
    }

    fn readings(pairs: &[(&str, SegmentReading)]) -> HashMap<StreamId, SegmentReading> {
        pairs
            .iter()
            .map(|(s, r)| (s.parse().unwrap(), r.clone()))
            .collect()
    }

    fn both(
        prometheus: HashMap<StreamId, SegmentReading>,
        controller: HashMap<StreamId, SegmentReading>,
    ) -> SourceReadings {
        SourceReadings::new([
            (SourceKind::Prometheus, prometheus),
            (SourceKind::Controller, controller),
        ])
    }

    #[test]
    fn auto_prefers_the_controller_and_falls_back_to_prometheus() {
        let s: StreamId = "demo/load".parse().unwrap();
        let prom = readings(&[("demo/load", SegmentReading::Segments(3))]);
        let ok = readings(&[("demo/load", SegmentReading::Segments(4))]);
        let down = readings(&[(
            "demo/load",
            SegmentReading::Unavailable(unreachable("controller")),
        )]);
        let o = both(prom.clone(), ok).observe(SourceChoice::Auto, &s);
        assert_eq!(
            (o.reading, o.source),
            (SegmentReading::Segments(4), SourceKind::Controller)
        );
        let o = both(prom.clone(), down.clone()).observe(SourceChoice::Auto, &s);
        assert_eq!(
            (o.reading, o.source),
            (SegmentReading::Segments(3), SourceKind::Prometheus)
        );
        let prom_down = readings(&[("demo/load", SegmentReading::Unavailable(timeout("p")))]);
        let o = both(prom_down, down.clone()).observe(SourceChoice::Auto, &s);
        assert!(
            matches!(&o.reading, SegmentReading::Unavailable(e @ SourceError::BothFailed { .. })
                if e.to_string().contains("refused") && e.to_string().contains("did not answer")),
            "{o:?}"
        );
        // A controller that answers with nonsense is not overridden by Prometheus.
        let invalid = readings(&[("demo/load", SegmentReading::Invalid(ImplausibleCount::Zero))]);
        assert_eq!(
            both(prom.clone(), invalid)
                .observe(SourceChoice::Auto, &s)
                .source,
            SourceKind::Controller
        );
        // Without Prometheus configured, the controller's failure stands.
        let o = both(HashMap::new(), down).observe(SourceChoice::Auto, &s);
        assert_eq!(o.source, SourceKind::Controller);
    }

    #[test]
    fn explicit_sources_are_used_alone() {
        let s: StreamId = "demo/load".parse().unwrap();
        let prom = readings(&[("demo/load", SegmentReading::Segments(3))]);
        let ctrl = readings(&[("demo/load", SegmentReading::Unavailable(unreachable("c")))]);
        let tick = both(prom, ctrl.clone());
        assert_eq!(
            tick.observe(SourceChoice::Controller, &s).source,
            SourceKind::Controller
        );
        assert!(matches!(
            tick.observe(SourceChoice::Controller, &s).reading,
            SegmentReading::Unavailable(_)
        ));
        assert_eq!(
            tick.observe(SourceChoice::Prometheus, &s).reading,
            SegmentReading::Segments(3)
        );
        assert_eq!(
            both(HashMap::new(), ctrl)
                .observe(SourceChoice::Prometheus, &s)
                .reading,
            SegmentReading::Unavailable(SourceError::NotConfigured(SourceKind::Prometheus))
        );
    }

    #[test]
    fn failures_are_distinct_per_source_and_reason() {
        let tick = both(
            readings(&[
                ("demo/a", SegmentReading::Unavailable(timeout("p"))),
                ("demo/b", SegmentReading::Unavailable(timeout("p"))),
                (
                    "demo/c",
                    SegmentReading::Undetermined(Undetermined::NoSeries {
                        lookback: Duration::from_secs(600),
                    }),
                ),
            ]),
            readings(&[
                ("demo/a", SegmentReading::Unavailable(unreachable("c"))),
                ("demo/b", SegmentReading::Segments(2)),
            ]),
        );
        assert_eq!(
            tick.failures().into_iter().collect::<Vec<_>>(),
            vec![
                (SourceKind::Prometheus, ErrorReason::Timeout),
                (SourceKind::Controller, ErrorReason::Unreachable),
            ]
        );
    }

    /// A source answering a fixed table; counts the streams it was asked for.
    struct Table(SourceKind, SegmentReading, std::sync::Mutex<Vec<StreamId>>);

    #[async_trait]
    impl SegmentSource for Table {
        fn kind(&self) -> SourceKind {
            self.0
        }
        async fn read(&self, streams: &BTreeSet<StreamId>) -> HashMap<StreamId, SegmentReading> {
            self.2.lock().unwrap().extend(streams.iter().cloned());
            streams
                .iter()
                .map(|s| (s.clone(), self.1.clone()))
                .collect()
        }
    }

    #[tokio::test]
    async fn each_source_is_asked_once_for_the_streams_that_need_it() {
        let sources = Sources::new([
            Box::new(Table(
                SourceKind::Prometheus,
                SegmentReading::Segments(1),
                Default::default(),
            )) as Box<dyn SegmentSource>,
            Box::new(Table(
                SourceKind::Controller,
                SegmentReading::Segments(2),
                Default::default(),
            )),
        ]);
        let a: Vec<StreamId> = vec!["s/a".parse().unwrap()];
        let b: Vec<StreamId> = vec!["s/b".parse().unwrap(), "s/a".parse().unwrap()];
        let tick = sources
            .read([
                (SourceChoice::Prometheus, &a[..]),
                (SourceChoice::Controller, &b[..]),
            ])
            .await;
        assert_eq!(tick.of(SourceKind::Prometheus).count(), 1);
        assert_eq!(tick.of(SourceKind::Controller).count(), 2);
        let tick = sources.read([(SourceChoice::Auto, &a[..])]).await;
        assert_eq!(
            (
                tick.of(SourceKind::Prometheus).count(),
                tick.of(SourceKind::Controller).count()
            ),
            (1, 1),
            "auto reads both in the same tick"
        );
        assert_eq!(
            sources.kinds().collect::<Vec<_>>(),
            vec![SourceKind::Prometheus, SourceKind::Controller]
        );
    }
}

//! Observe: the active segment count of each bound stream, from Prometheus (the controller's
//! `pravega_controller_segments_count` gauge) or from the Pravega controller over gRPC.
//!
//! A reading is a count only when it is a plausible one: a missing series, NaN, a negative,
//! fractional, zero or absurd value, or a source that did not answer are all kept as such, so
//! that the plan holds instead of scaling on them.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
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

/// Which source answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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

/// More active segments than any real stream has: a value above it is treated as nonsense.
pub const MAX_PLAUSIBLE_SEGMENTS: u32 = 100_000;

/// What a source says about one stream's active segments.
#[derive(Debug, Clone, PartialEq)]
pub enum SegmentReading {
    /// A plausible count (at least 1).
    Segments(u32),
    /// The source answered but has no value for the stream: unknown, never 0.
    Missing,
    /// The source gave a value no stream can have.
    Invalid(String),
    /// The source did not answer.
    Unavailable(String),
}

impl SegmentReading {
    /// Checks a raw sample (Prometheus values are floats) and keeps it only if plausible.
    pub fn from_sample(value: f64) -> SegmentReading {
        if value.is_nan() {
            SegmentReading::Invalid("NaN".into())
        } else if value < 0.0 {
            SegmentReading::Invalid(format!("negative value {value}"))
        } else if value.fract() != 0.0 {
            SegmentReading::Invalid(format!("fractional value {value}"))
        } else if value == 0.0 {
            SegmentReading::Invalid("0 active segments (a live stream has at least 1)".into())
        } else if value > f64::from(MAX_PLAUSIBLE_SEGMENTS) {
            SegmentReading::Invalid(format!(
                "absurd value {value} (above {MAX_PLAUSIBLE_SEGMENTS})"
            ))
        } else {
            SegmentReading::Segments(value as u32)
        }
    }

    /// The count, when the reading is one.
    pub fn segments(&self) -> Option<u32> {
        match self {
            SegmentReading::Segments(n) => Some(*n),
            _ => None,
        }
    }
}

impl fmt::Display for SegmentReading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SegmentReading::Segments(n) => write!(f, "{n} segments"),
            SegmentReading::Missing => write!(f, "no series (unknown, not 0)"),
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

/// Several controller instances may report the same stream: their values are never added up.
/// They agree in the steady state; during a scale the newest is the highest on a split and the
/// lowest on a merge, so disagreement is reported as invalid and the plan holds for a tick.
pub fn merge_instances(values: &[f64]) -> SegmentReading {
    let readings: Vec<SegmentReading> = values
        .iter()
        .map(|&v| SegmentReading::from_sample(v))
        .collect();
    match readings.as_slice() {
        [] => SegmentReading::Missing,
        [first, rest @ ..] => {
            if let Some(bad) = readings
                .iter()
                .find(|r| !matches!(r, SegmentReading::Segments(_)))
            {
                return bad.clone();
            }
            if rest.iter().all(|r| r == first) {
                first.clone()
            } else {
                SegmentReading::Invalid(format!("controller instances disagree: {values:?}"))
            }
        }
    }
}

/// Reads `pravega_controller_segments_count` (or the configured query) from Prometheus: one
/// instant query per tick for all streams, filtered on the scope and stream labels.
pub struct PrometheusSource {
    http: reqwest::Client,
    query_url: String,
    query: String,
    scope_label: String,
    stream_label: String,
    bearer_token: Option<String>,
}

impl PrometheusSource {
    /// A source for the Prometheus at `base_url`.
    pub fn new(
        config: &crate::config::PrometheusConfig,
        bearer_token: Option<String>,
    ) -> PrometheusSource {
        PrometheusSource {
            http: reqwest::Client::builder()
                .timeout(config.timeout)
                .build()
                .expect("HTTP client"),
            query_url: format!("{}/api/v1/query", config.url.trim_end_matches('/')),
            query: config.query.clone(),
            scope_label: config.scope_label.clone(),
            stream_label: config.stream_label.clone(),
            bearer_token,
        }
    }

    async fn query(&self) -> Result<serde_json::Value, String> {
        let mut request = self
            .http
            .get(&self.query_url)
            .query(&[("query", self.query.as_str())]);
        if let Some(token) = &self.bearer_token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{}: {e}", self.query_url))?;
        let status = response.status();
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|e| format!("{}: HTTP {status}, body is not JSON: {e}", self.query_url))?;
        if !status.is_success() || body["status"] != "success" {
            return Err(format!(
                "{}: HTTP {status}: {}",
                self.query_url,
                body["error"].as_str().unwrap_or("query failed")
            ));
        }
        Ok(body)
    }

    /// Groups an instant-query answer by stream: every series' value, per stream.
    pub fn parse_vector(
        &self,
        body: &serde_json::Value,
    ) -> Result<HashMap<StreamId, Vec<f64>>, String> {
        if body["data"]["resultType"] != "vector" {
            return Err(format!(
                "query result is {} rather than an instant vector",
                body["data"]["resultType"]
            ));
        }
        let mut by_stream: HashMap<StreamId, Vec<f64>> = HashMap::new();
        for series in body["data"]["result"].as_array().into_iter().flatten() {
            let labels = &series["metric"];
            let (Some(scope), Some(stream)) = (
                labels[&self.scope_label].as_str(),
                labels[&self.stream_label].as_str(),
            ) else {
                continue;
            };
            // Prometheus encodes sample values as strings ("NaN", "+Inf" included).
            let value = series["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN);
            by_stream
                .entry(StreamId {
                    scope: scope.into(),
                    stream: stream.into(),
                })
                .or_default()
                .push(value);
        }
        Ok(by_stream)
    }
}

#[async_trait]
impl SegmentSource for PrometheusSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Prometheus
    }

    async fn read(&self, streams: &BTreeSet<StreamId>) -> HashMap<StreamId, SegmentReading> {
        let grouped = self.query().await.and_then(|body| self.parse_vector(&body));
        streams
            .iter()
            .map(|stream| {
                let reading = match &grouped {
                    Ok(by_stream) => by_stream
                        .get(stream)
                        .map_or(SegmentReading::Missing, |values| merge_instances(values)),
                    Err(e) => SegmentReading::Unavailable(e.clone()),
                };
                (stream.clone(), reading)
            })
            .collect()
    }
}

/// Asks the Pravega controller (`getCurrentSegments`) for each stream, concurrently.
pub struct ControllerSource {
    client: pravega_controller_client::ControllerClientImpl,
    endpoint: String,
    timeout: Duration,
}

impl ControllerSource {
    /// A source for the controller at `tcp://host:port`. Connects lazily, so a controller
    /// that is down at start-up is only a failed reading later.
    pub fn new(config: &crate::config::PravegaConfig) -> ControllerSource {
        let address = config
            .controller
            .trim_start_matches("tcp://")
            .trim_start_matches("tls://");
        let client_config = pravega_client_config::ClientConfigBuilder::default()
            .controller_uri(pravega_client_shared::PravegaNodeUri::from(address))
            .is_tls_enabled(config.controller.starts_with("tls://"))
            .build()
            .expect("controller client config");
        let client = pravega_controller_client::ControllerClientImpl::new(
            client_config,
            &tokio::runtime::Handle::current(),
        );
        ControllerSource {
            client,
            endpoint: config.controller.clone(),
            timeout: config.timeout,
        }
    }

    async fn read_one(&self, stream: &StreamId) -> SegmentReading {
        use pravega_controller_client::ControllerClient;
        let scoped = pravega_client_shared::ScopedStream {
            scope: pravega_client_shared::Scope::from(stream.scope.clone()),
            stream: pravega_client_shared::Stream::from(stream.stream.clone()),
        };
        match tokio::time::timeout(self.timeout, self.client.get_current_segments(&scoped)).await {
            Err(_) => SegmentReading::Unavailable(format!(
                "controller {} did not answer within {:?}",
                self.endpoint, self.timeout
            )),
            Ok(Err(e)) => SegmentReading::Unavailable(format!("controller {}: {e}", self.endpoint)),
            Ok(Ok(segments)) => match u32::try_from(segments.get_segments().len()) {
                Ok(0) => SegmentReading::Invalid(
                    "controller reports 0 active segments (sealed or deleted stream)".into(),
                ),
                Ok(n) if n <= MAX_PLAUSIBLE_SEGMENTS => SegmentReading::Segments(n),
                _ => SegmentReading::Invalid(
                    "controller reports an absurd number of segments".into(),
                ),
            },
        }
    }
}

#[async_trait]
impl SegmentSource for ControllerSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Controller
    }

    async fn read(&self, streams: &BTreeSet<StreamId>) -> HashMap<StreamId, SegmentReading> {
        let readings = futures::future::join_all(streams.iter().map(|s| self.read_one(s))).await;
        streams.iter().cloned().zip(readings).collect()
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

    #[test]
    fn instances_are_never_added_up() {
        assert_eq!(merge_instances(&[3.0, 3.0]), SegmentReading::Segments(3));
        assert!(
            matches!(merge_instances(&[3.0, 4.0]), SegmentReading::Invalid(why) if why.contains("disagree"))
        );
        assert!(matches!(
            merge_instances(&[3.0, f64::NAN]),
            SegmentReading::Invalid(_)
        ));
        assert_eq!(merge_instances(&[]), SegmentReading::Missing);
    }

    fn prometheus() -> PrometheusSource {
        let config = crate::config::PrometheusConfig {
            url: "http://127.0.0.1:1".into(),
            query: "pravega_controller_segments_count".into(),
            scope_label: "scope".into(),
            stream_label: "stream".into(),
            timeout: Duration::from_secs(1),
            bearer_token_file: None,
            bearer_token_env: None,
        };
        PrometheusSource::new(&config, None)
    }

    #[test]
    fn vector_answers_are_grouped_by_stream() {
        let body = serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"scope": "demo", "stream": "a", "instance": "c1"}, "value": [1.0, "2"]},
            {"metric": {"scope": "demo", "stream": "a", "instance": "c2"}, "value": [1.0, "2"]},
            {"metric": {"scope": "demo", "stream": "b"}, "value": [1.0, "NaN"]},
            {"metric": {"stream": "no-scope"}, "value": [1.0, "5"]}
        ]}});
        let grouped = prometheus().parse_vector(&body).unwrap();
        assert_eq!(grouped[&"demo/a".parse().unwrap()], vec![2.0, 2.0]);
        assert!(grouped[&"demo/b".parse().unwrap()][0].is_nan());
        assert_eq!(grouped.len(), 2, "series without the labels are ignored");
        let matrix = serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": []}});
        assert!(prometheus().parse_vector(&matrix).is_err());
    }

    #[tokio::test]
    async fn an_unreachable_prometheus_makes_every_stream_unavailable() {
        let streams: BTreeSet<StreamId> =
            ["demo/a".parse().unwrap(), "demo/b".parse().unwrap()].into();
        let readings = prometheus().read(&streams).await;
        assert_eq!(readings.len(), 2);
        assert!(
            readings
                .values()
                .all(|r| matches!(r, SegmentReading::Unavailable(_))),
            "{readings:?}"
        );
    }
}

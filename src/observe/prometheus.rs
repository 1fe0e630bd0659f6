//! The Prometheus source: one instant query per tick through prometheus-http-query, selecting
//! only the bound streams on the server with label matchers on the segment gauge
//! (`pravega_controller_segments_count{scope="demo",stream=~"a|b"}`), so its cost follows the
//! bound streams, not every stream Prometheus knows. Series of one stream from several
//! controller instances are never added up.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use prometheus_http_query::response::{Data, PromqlResult};
use serde::Deserialize;

use super::{ImplausibleCount, SegmentReading, SegmentSource, SourceError};
use crate::config::PrometheusConfig;
use crate::domain::{SourceKind, StreamId};

/// Reads the segment gauge from Prometheus' HTTP API.
pub struct PrometheusSource {
    client: prometheus_http_query::Client,
    endpoint: String,
    query: String,
    scope_label: String,
    stream_label: String,
    timeout: std::time::Duration,
}

/// The envelope of a Prometheus API answer. The status is checked here, before the crate's
/// result types read `data`, so that an HTTP error keeps its status (and its error reason).
#[derive(Deserialize)]
struct ApiAnswer {
    status: String,
    error: Option<String>,
    data: Option<PromqlResult>,
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
                SegmentReading::Invalid(ImplausibleCount::InstancesDisagree(values.to_vec()))
            }
        }
    }
}

impl PrometheusSource {
    /// A source for the Prometheus `config` names, sending `bearer_token` if given.
    pub fn new(config: &PrometheusConfig, bearer_token: Option<String>) -> PrometheusSource {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = bearer_token {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .expect("a token read from a file or variable is a header value");
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .default_headers(headers)
            .build()
            .expect("HTTP client");
        let base = config.url.trim_end_matches('/');
        PrometheusSource {
            // Validation checked the URL.
            client: prometheus_http_query::Client::from(http, base).expect("a valid URL"),
            endpoint: format!("{base}/api/v1/query"),
            query: config.query.clone(),
            scope_label: config.scope_label.clone(),
            stream_label: config.stream_label.clone(),
            timeout: config.timeout,
        }
    }

    /// The gauge's selector narrowed to `streams`: per scope, `stream=~"a|b"` (names hold only
    /// letters, digits, '-', '_' and '.', the last escaped for the regex), joined with `or`.
    pub fn selector(&self, streams: &BTreeSet<StreamId>) -> String {
        let mut by_scope: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for s in streams {
            by_scope
                .entry(s.scope.as_str())
                .or_default()
                .push(s.stream.replace('.', "\\\\."));
        }
        let (name, matchers) = match self.query.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}').trim().to_string()),
            None => (self.query.as_str(), String::new()),
        };
        by_scope
            .iter()
            .map(|(scope, names)| {
                let ours = format!(
                    "{}=\"{}\",{}=~\"{}\"",
                    self.scope_label,
                    scope,
                    self.stream_label,
                    names.join("|")
                );
                match matchers.as_str() {
                    "" => format!("{name}{{{ours}}}"),
                    theirs => format!("{name}{{{theirs},{ours}}}"),
                }
            })
            .collect::<Vec<_>>()
            .join(" or ")
    }

    async fn query(&self, selector: String) -> Result<Data, SourceError> {
        let endpoint = || self.endpoint.clone();
        let transport = |e: &reqwest::Error| {
            if e.is_timeout() {
                SourceError::Timeout {
                    endpoint: endpoint(),
                    after: self.timeout,
                }
            } else {
                SourceError::Unreachable {
                    endpoint: endpoint(),
                    message: e.to_string(),
                }
            }
        };
        // POST: the selector of many streams can outgrow a URL.
        let response = match self.client.query(selector).post_raw().await {
            Ok(response) => response,
            Err(prometheus_http_query::Error::Client(e)) => {
                return Err(match e.inner() {
                    Some(inner) => transport(inner),
                    None => SourceError::Unreachable {
                        endpoint: endpoint(),
                        message: e.to_string(),
                    },
                })
            }
            Err(e) => {
                return Err(SourceError::Unreachable {
                    endpoint: endpoint(),
                    message: e.to_string(),
                })
            }
        };
        let status = response.status();
        let body = response.bytes().await.map_err(|e| transport(&e))?;
        let answer: Result<ApiAnswer, _> = serde_json::from_slice(&body);
        match answer {
            Ok(ApiAnswer {
                status: ok,
                data: Some(data),
                ..
            }) if status.is_success() && ok == "success" => Ok(data.into_inner().0),
            Ok(answer) if !status.is_success() => Err(SourceError::Status {
                endpoint: endpoint(),
                status: status.as_u16(),
                message: answer.error.unwrap_or_else(|| "query failed".into()),
            }),
            Ok(answer) => Err(SourceError::Rejected {
                endpoint: endpoint(),
                message: answer.error.unwrap_or_else(|| "query failed".into()),
            }),
            Err(_) if !status.is_success() => Err(SourceError::Status {
                endpoint: endpoint(),
                status: status.as_u16(),
                message: "body is not a Prometheus answer".into(),
            }),
            Err(e) => Err(SourceError::InvalidAnswer {
                endpoint: endpoint(),
                message: format!("body is not a Prometheus answer: {e}"),
            }),
        }
    }

    /// Groups an instant-query answer by stream: every series' value, per stream.
    fn group_by_stream(&self, data: Data) -> Result<HashMap<StreamId, Vec<f64>>, SourceError> {
        let Data::Vector(samples) = data else {
            return Err(SourceError::InvalidAnswer {
                endpoint: self.endpoint.clone(),
                message: "the query's result is not an instant vector".into(),
            });
        };
        let mut by_stream: HashMap<StreamId, Vec<f64>> = HashMap::new();
        for sample in samples {
            let (labels, value) = sample.into_inner();
            let (Some(scope), Some(stream)) = (
                labels.get(&self.scope_label),
                labels.get(&self.stream_label),
            ) else {
                continue;
            };
            by_stream
                .entry(StreamId {
                    scope: scope.clone(),
                    stream: stream.clone(),
                })
                .or_default()
                .push(value.value());
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
        if streams.is_empty() {
            return HashMap::new();
        }
        let grouped = match self.query(self.selector(streams)).await {
            Ok(data) => self.group_by_stream(data),
            Err(e) => Err(e),
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ErrorReason;
    use std::time::Duration;

    #[test]
    fn instances_are_never_added_up() {
        assert_eq!(merge_instances(&[3.0, 3.0]), SegmentReading::Segments(3));
        assert!(matches!(
            merge_instances(&[3.0, 4.0]),
            SegmentReading::Invalid(ImplausibleCount::InstancesDisagree(_))
        ));
        assert!(matches!(
            merge_instances(&[3.0, f64::NAN]),
            SegmentReading::Invalid(_)
        ));
        assert_eq!(merge_instances(&[]), SegmentReading::Missing);
    }

    fn prometheus(url: &str) -> PrometheusSource {
        PrometheusSource::new(&config(url), None)
    }

    fn config(url: &str) -> PrometheusConfig {
        PrometheusConfig {
            url: url.into(),
            query: "pravega_controller_segments_count".into(),
            scope_label: "scope".into(),
            stream_label: "stream".into(),
            timeout: Duration::from_secs(1),
            bearer_token_file: None,
            bearer_token_env: None,
        }
    }

    fn data(json: serde_json::Value) -> Data {
        serde_json::from_value::<ApiAnswer>(json)
            .unwrap()
            .data
            .unwrap()
            .into_inner()
            .0
    }

    #[test]
    fn the_bound_streams_are_selected_on_the_server() {
        let streams: BTreeSet<StreamId> = ["demo/a", "demo/b.c", "other/x"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let source = prometheus("http://127.0.0.1:1");
        assert_eq!(
            source.selector(&streams),
            r#"pravega_controller_segments_count{scope="demo",stream=~"a|b\\.c"} or pravega_controller_segments_count{scope="other",stream=~"x"}"#
        );
        let mut config = config("http://127.0.0.1:1");
        config.query = r#"pravega_controller_segments_count{job="pravega"}"#.into();
        let narrowed = PrometheusSource::new(&config, None);
        let one: BTreeSet<StreamId> = ["demo/a".parse().unwrap()].into();
        assert_eq!(
            narrowed.selector(&one),
            r#"pravega_controller_segments_count{job="pravega",scope="demo",stream=~"a"}"#
        );
    }

    #[test]
    fn vector_answers_are_grouped_by_stream() {
        let body = serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"scope": "demo", "stream": "a", "instance": "c1"}, "value": [1.0, "2"]},
            {"metric": {"scope": "demo", "stream": "a", "instance": "c2"}, "value": [1.0, "2"]},
            {"metric": {"scope": "demo", "stream": "b"}, "value": [1.0, "NaN"]},
            {"metric": {"stream": "no-scope"}, "value": [1.0, "5"]}
        ]}});
        let source = prometheus("http://127.0.0.1:1");
        let grouped = source.group_by_stream(data(body)).unwrap();
        assert_eq!(grouped[&"demo/a".parse().unwrap()], vec![2.0, 2.0]);
        assert!(grouped[&"demo/b".parse().unwrap()][0].is_nan());
        assert_eq!(grouped.len(), 2, "series without the labels are ignored");
        let matrix = serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": []}});
        let error = source.group_by_stream(data(matrix)).unwrap_err();
        assert_eq!(error.reason(), ErrorReason::InvalidAnswer, "{error}");
    }

    #[tokio::test]
    async fn an_unreachable_prometheus_makes_every_stream_unavailable() {
        let streams: BTreeSet<StreamId> =
            ["demo/a".parse().unwrap(), "demo/b".parse().unwrap()].into();
        let readings = prometheus("http://127.0.0.1:1").read(&streams).await;
        assert_eq!(readings.len(), 2);
        assert!(
            readings.values().all(|r| matches!(
                r,
                SegmentReading::Unavailable(e) if e.reason() == ErrorReason::Unreachable
            )),
            "{readings:?}"
        );
    }

    /// Serves one canned HTTP answer per connection, for the error cases a real Prometheus
    /// does not produce on demand. Returns the base URL.
    async fn canned(status: u16, body: &'static str, delay: Duration) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                tokio::time::sleep(delay).await;
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        url
    }

    async fn reason_of(url: String) -> ErrorReason {
        let streams: BTreeSet<StreamId> = ["demo/a".parse().unwrap()].into();
        match prometheus(&url).read(&streams).await.into_values().next() {
            Some(SegmentReading::Unavailable(e)) => e.reason(),
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn each_failure_of_prometheus_has_its_reason() {
        let no_wait = Duration::ZERO;
        let forbidden = r#"{"status":"error","error":"forbidden"}"#;
        assert_eq!(
            reason_of(canned(403, forbidden, no_wait).await).await,
            ErrorReason::Forbidden
        );
        assert_eq!(
            reason_of(canned(503, "overloaded", no_wait).await).await,
            ErrorReason::Rejected
        );
        let bad_query = r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert_eq!(
            reason_of(canned(200, bad_query, no_wait).await).await,
            ErrorReason::Rejected
        );
        assert_eq!(
            reason_of(canned(200, "<html>a proxy</html>", no_wait).await).await,
            ErrorReason::InvalidAnswer
        );
        let vector = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(
            reason_of(canned(200, vector, Duration::from_secs(3)).await).await,
            ErrorReason::Timeout
        );
    }
}

//! The Prometheus source, through prometheus-http-query. Each tick, one instant query reads the
//! segment gauge of the bound streams, selected on the server with label matchers
//! (`pravega_controller_segments_count{scope="demo",stream=~"a|b"}`), so its cost follows the
//! bound streams. A stream whose gauge is reported now by one or more controller instances with
//! one value has that count. Only for the others (the gauge evicted, or instances disagreeing)
//! two more queries read the gauge's samples within the look-back and the `up` series of the
//! instances that reported them, and [`evidence::judge`] tells the count or why it cannot.
//! Series of one stream from several controller instances are never added up.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;

use super::evidence::{self, Reporter, Scrape, SeriesHistory, Window};
use super::{SegmentReading, SegmentSource, SourceError};
use crate::config::PrometheusConfig;
use crate::domain::{SourceKind, StreamId};
use crate::http::{self, ClientSecurity, NoAnswer};

mod answer;
use answer::{Answer, Labels, ResultData, VectorSeries};

/// Reads the segment gauge from Prometheus' HTTP API.
pub struct PrometheusSource {
    client: prometheus_http_query::Client,
    endpoint: String,
    query: String,
    scope_label: String,
    stream_label: String,
    lookback: std::time::Duration,
    timeout: std::time::Duration,
}

/// A Prometheus API answer as received: the HTTP status and the body, decoded where read
/// (the series borrow their labels from it).
struct Body {
    status: reqwest::StatusCode,
    bytes: bytes::Bytes,
}

/// What the instances reporting a stream's gauge now say, folded series by series: one value,
/// or values that differ (never added up).
#[derive(Debug, Clone, Copy, PartialEq)]
enum ReportedNow {
    Agreed(f64),
    Differ,
}

impl ReportedNow {
    /// With one more instance's value.
    fn and(self, value: f64) -> ReportedNow {
        match self {
            ReportedNow::Agreed(agreed) if agreed == value => self,
            _ => ReportedNow::Differ,
        }
    }

    /// The stream's count when the instances agree; `None` when they differ: the look-back
    /// must order them.
    fn reading(self) -> Option<SegmentReading> {
        match self {
            ReportedNow::Agreed(value) => Some(SegmentReading::from_sample(value)),
            ReportedNow::Differ => None,
        }
    }
}

/// Escapes `text` for a PromQL regex matcher inside a double-quoted string: regex
/// metacharacters get a backslash, which the string literal needs doubled.
fn regex_literal(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            escaped.push_str("\\\\");
        } else if c == '"' {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

impl PrometheusSource {
    /// A source for the Prometheus `config` names, its connections secured by `security`
    /// (the CA, client certificate and credentials setup read from `config`).
    pub fn new(config: &PrometheusConfig, security: ClientSecurity) -> PrometheusSource {
        let http = http::client(config.timeout, security);
        let base = config.url.trim_end_matches('/');
        PrometheusSource {
            // Validation checked the URL.
            client: prometheus_http_query::Client::from(http, base).expect("a valid URL"),
            endpoint: format!("{base}/api/v1/query"),
            query: config.query.clone(),
            scope_label: config.scope_label.clone(),
            stream_label: config.stream_label.clone(),
            lookback: config.lookback,
            timeout: config.timeout,
        }
    }

    /// The gauge's selector narrowed to `streams`: per scope, `stream=~"a|b"`, joined with
    /// `or`.
    pub fn selector(&self, streams: &BTreeSet<StreamId>) -> String {
        let mut by_scope: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for s in streams {
            by_scope
                .entry(s.scope.as_str())
                .or_default()
                .push(s.stream.as_str());
        }
        by_scope
            .iter()
            .map(|(scope, names)| self.narrowed(&[scope], names))
            .collect::<Vec<_>>()
            .join(" or ")
    }

    /// The gauge's raw samples of `streams` within the look-back: one range selector, so every
    /// scope and stream name is matched (a stream of one scope named like one of another is
    /// read too, and dropped when grouped).
    fn lookback_selector(&self, streams: &BTreeSet<StreamId>) -> String {
        let scopes: BTreeSet<&str> = streams.iter().map(|s| s.scope.as_str()).collect();
        let names: BTreeSet<&str> = streams.iter().map(|s| s.stream.as_str()).collect();
        let scopes: Vec<&str> = scopes.into_iter().collect();
        let names: Vec<&str> = names.into_iter().collect();
        format!(
            "{}[{}s]",
            self.narrowed(&scopes, &names),
            self.lookback.as_secs()
        )
    }

    /// The gauge (with the query's own matchers) narrowed to `scopes` and `streams`.
    fn narrowed(&self, scopes: &[&str], streams: &[&str]) -> String {
        let (name, matchers) = match self.query.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}').trim().to_string()),
            None => (self.query.as_str(), String::new()),
        };
        let alternatives = |names: &[&str]| {
            names
                .iter()
                .map(|n| regex_literal(n))
                .collect::<Vec<_>>()
                .join("|")
        };
        let scope = match scopes {
            [one] => format!("{}=\"{}\"", self.scope_label, one),
            many => format!("{}=~\"{}\"", self.scope_label, alternatives(many)),
        };
        let ours = format!(
            "{scope},{}=~\"{}\"",
            self.stream_label,
            alternatives(streams)
        );
        match matchers.as_str() {
            "" => format!("{name}{{{ours}}}"),
            theirs => format!("{name}{{{theirs},{ours}}}"),
        }
    }

    /// One instant query evaluated at `at` (Unix seconds, to the millisecond: whole seconds
    /// would miss samples scraped within the last one); the answer as received.
    async fn query(&self, query: String, at: f64) -> Result<Body, SourceError> {
        let endpoint = || self.endpoint.clone();
        let transport = |e: &reqwest::Error| match NoAnswer::from(e) {
            NoAnswer::Timeout => SourceError::Timeout {
                endpoint: endpoint(),
                after: self.timeout,
            },
            NoAnswer::Tls(message) => SourceError::Tls {
                endpoint: endpoint(),
                message,
                settings: "prometheus.url, prometheus.tls".into(),
            },
            NoAnswer::Unreachable(message) => SourceError::Unreachable {
                endpoint: endpoint(),
                message,
            },
        };
        // POST: the selector of many streams can outgrow a URL.
        let response = match self
            .client
            .query(query)
            .query("time", format!("{at:.3}"))
            .post_raw()
            .await
        {
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
        let bytes = response.bytes().await.map_err(|e| transport(&e))?;
        Ok(Body { status, bytes })
    }

    /// The result of an answer to [`Self::query`], checked: an HTTP error keeps its status
    /// (and its error reason), a refused query its reason.
    fn result<'b>(&self, body: &'b Body) -> Result<ResultData<'b>, SourceError> {
        let endpoint = || self.endpoint.clone();
        let Body { status, bytes } = body;
        match serde_json::from_slice::<Answer>(bytes) {
            Ok(Answer {
                status: ok,
                data: Some(data),
                ..
            }) if status.is_success() && ok.as_str() == "success" => Ok(data),
            Ok(answer) if !status.is_success() => Err(SourceError::Status {
                endpoint: endpoint(),
                status: status.as_u16(),
                message: answer.error.unwrap_or_else(|| "query failed".into()),
            }),
            Ok(answer) => Err(SourceError::Rejected {
                endpoint: endpoint(),
                message: answer.error.unwrap_or_else(|| "query failed".into()),
            }),
            // Go's HTTPS servers answer plain HTTP with this 400.
            Err(_) if bytes.starts_with(b"Client sent an HTTP request to an HTTPS server") => {
                Err(SourceError::Tls {
                    endpoint: endpoint(),
                    message: "the server speaks HTTPS: use https:// with prometheus.tls".into(),
                    settings: "prometheus.url".into(),
                })
            }
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

    /// The series of an instant-vector answer (`what` names the query in errors).
    fn vector<'b>(&self, body: &'b Body, what: &str) -> Result<Vec<VectorSeries<'b>>, SourceError> {
        match self.result(body)?.vector() {
            Some(Ok(series)) => Ok(series),
            Some(Err(e)) => Err(self.invalid(&format!("{what}: {e}"))),
            None => Err(self.invalid(&format!("{what}'s result is not an instant vector"))),
        }
    }

    /// The (scope, stream) a series' labels name, if it names one.
    fn stream_of<'l>(&self, labels: &'l Labels) -> Option<(&'l str, &'l str)> {
        Some((
            labels.get(&self.scope_label)?,
            labels.get(&self.stream_label)?,
        ))
    }

    fn invalid(&self, message: &str) -> SourceError {
        SourceError::InvalidAnswer {
            endpoint: self.endpoint.clone(),
            message: message.into(),
        }
    }

    /// Groups an instant vector by (scope, stream): what the instances reporting it say.
    fn group_by_stream<'s>(
        &self,
        series: &'s [VectorSeries],
    ) -> Result<HashMap<(&'s str, &'s str), ReportedNow>, SourceError> {
        let mut by_stream: HashMap<(&str, &str), ReportedNow> = HashMap::new();
        for one in series {
            let Some(stream) = self.stream_of(&one.metric) else {
                continue;
            };
            let value = one
                .value
                .value()
                .ok_or_else(|| self.invalid("a sample's value is not a number"))?;
            by_stream
                .entry(stream)
                .and_modify(|reported| *reported = reported.and(value))
                .or_insert(ReportedNow::Agreed(value));
        }
        Ok(by_stream)
    }

    /// Groups a range-selector answer by stream: each reporter's samples, per stream.
    fn histories(&self, body: &Body) -> Result<HashMap<StreamId, Vec<SeriesHistory>>, SourceError> {
        let series = match self.result(body)?.matrix() {
            Some(Ok(series)) => series,
            Some(Err(e)) => return Err(self.invalid(&format!("the look-back query: {e}"))),
            None => return Err(self.invalid("the look-back query's result is not a range vector")),
        };
        let mut by_stream: HashMap<StreamId, Vec<SeriesHistory>> = HashMap::new();
        for one in series {
            let Some((scope, stream)) = self.stream_of(&one.metric) else {
                continue;
            };
            let samples = one
                .values
                .iter()
                .map(|s| Some((s.timestamp(), s.value()?)))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| self.invalid("a sample's value is not a number"))?;
            let stream = StreamId {
                scope: scope.to_owned(),
                stream: stream.to_owned(),
            };
            by_stream.entry(stream).or_default().push(SeriesHistory {
                reporter: reporter(&one.metric),
                samples,
            });
        }
        Ok(by_stream)
    }

    /// Whether Prometheus scrapes each of `reporters` now, from their `up` series.
    async fn scrapes(
        &self,
        reporters: &BTreeSet<&Reporter>,
        at: f64,
    ) -> Result<HashMap<Reporter, Scrape>, SourceError> {
        let instances: BTreeSet<String> = reporters
            .iter()
            .filter_map(|r| r.instance.as_deref())
            .map(regex_literal)
            .collect();
        if instances.is_empty() {
            return Ok(HashMap::new());
        }
        let query = format!(
            "up{{instance=~\"{}\"}}",
            instances.into_iter().collect::<Vec<_>>().join("|")
        );
        let body = self.query(query, at).await?;
        Ok(self
            .vector(&body, "the up query")?
            .iter()
            .map(|series| {
                let state = if series.value.value() == Some(1.0) {
                    Scrape::Up
                } else {
                    Scrape::Down
                };
                (reporter(&series.metric), state)
            })
            .collect())
    }

    /// Every bound stream's reading, or the failure of a query.
    async fn read_all(
        &self,
        streams: &BTreeSet<StreamId>,
    ) -> Result<HashMap<StreamId, SegmentReading>, SourceError> {
        // One evaluation time for the three queries: also the `now` the ages are measured from.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let body = self.query(self.selector(streams), now).await?;
        let series = self.vector(&body, "the query")?;
        let reported = self.group_by_stream(&series)?;
        let mut readings = HashMap::with_capacity(streams.len());
        let mut undecided = BTreeSet::new();
        for stream in streams {
            let key = (stream.scope.as_str(), stream.stream.as_str());
            match reported.get(&key).and_then(|reported| reported.reading()) {
                Some(reading) => {
                    readings.insert(stream.clone(), reading);
                }
                None => {
                    undecided.insert(stream.clone());
                }
            }
        }
        if undecided.is_empty() {
            return Ok(readings);
        }
        let histories =
            self.histories(&self.query(self.lookback_selector(&undecided), now).await?)?;
        let reporters: BTreeSet<&Reporter> = undecided
            .iter()
            .filter_map(|s| histories.get(s))
            .flatten()
            .map(|h| &h.reporter)
            .collect();
        let scrapes = self.scrapes(&reporters, now).await?;
        let window = Window {
            now,
            lookback: self.lookback,
        };
        for stream in undecided {
            let series = histories.get(&stream).map_or(&[][..], Vec::as_slice);
            let scrape = |r: &Reporter| scrapes.get(r).copied().unwrap_or(Scrape::Unknown);
            readings.insert(stream, evidence::judge(series, scrape, window));
        }
        Ok(readings)
    }
}

/// The scrape target a series came from.
fn reporter(labels: &Labels) -> Reporter {
    Reporter {
        job: labels.get("job").map(str::to_owned),
        instance: labels.get("instance").map(str::to_owned),
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
        // Up to three queries in a row: the timeout bounds the read as a whole.
        let read = match tokio::time::timeout(self.timeout, self.read_all(streams)).await {
            Ok(read) => read,
            Err(_) => Err(SourceError::Timeout {
                endpoint: self.endpoint.clone(),
                after: self.timeout,
            }),
        };
        match read {
            Ok(readings) => readings,
            Err(e) => streams
                .iter()
                .map(|s| (s.clone(), SegmentReading::Unavailable(e.clone())))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ErrorReason;
    use std::time::Duration;

    #[test]
    fn instances_reporting_now_are_never_added_up() {
        let agreed = ReportedNow::Agreed(3.0);
        assert_eq!(agreed.reading(), Some(SegmentReading::Segments(3)));
        assert_eq!(agreed.and(3.0).reading(), Some(SegmentReading::Segments(3)));
        assert_eq!(
            agreed.and(4.0),
            ReportedNow::Differ,
            "the look-back orders them"
        );
        assert_eq!(agreed.and(4.0).and(3.0), ReportedNow::Differ);
        assert_eq!(ReportedNow::Differ.reading(), None);
        assert!(matches!(
            ReportedNow::Agreed(f64::NAN).reading(),
            Some(SegmentReading::Invalid(_))
        ));
        assert_eq!(
            ReportedNow::Agreed(f64::NAN).and(f64::NAN),
            ReportedNow::Differ,
            "NaN agrees with nothing"
        );
    }

    #[test]
    fn regex_metacharacters_are_escaped_for_promql() {
        assert_eq!(regex_literal("b.c"), r"b\\.c");
        assert_eq!(regex_literal("[::1]:9091"), r"\\[::1\\]:9091");
        assert_eq!(regex_literal("plain-name_1"), "plain-name_1");
    }

    fn prometheus(url: &str) -> PrometheusSource {
        PrometheusSource::new(&config(url), ClientSecurity::default())
    }

    fn config(url: &str) -> PrometheusConfig {
        PrometheusConfig {
            url: url.into(),
            query: "pravega_controller_segments_count".into(),
            scope_label: "scope".into(),
            stream_label: "stream".into(),
            lookback: Duration::from_secs(3600),
            timeout: Duration::from_secs(1),
            bearer_token_file: None,
            bearer_token_env: None,
            basic_auth: None,
            tls: None,
        }
    }

    fn body(json: serde_json::Value) -> Body {
        Body {
            status: reqwest::StatusCode::OK,
            bytes: serde_json::to_vec(&json).unwrap().into(),
        }
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
        let narrowed = PrometheusSource::new(&config, ClientSecurity::default());
        let one: BTreeSet<StreamId> = ["demo/a".parse().unwrap()].into();
        assert_eq!(
            narrowed.selector(&one),
            r#"pravega_controller_segments_count{job="pravega",scope="demo",stream=~"a"}"#
        );
        assert_eq!(
            source.lookback_selector(&streams),
            r#"pravega_controller_segments_count{scope=~"demo|other",stream=~"a|b\\.c|x"}[3600s]"#
        );
    }

    #[test]
    fn vector_answers_are_grouped_by_stream() {
        let answer = serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"scope": "demo", "stream": "a", "instance": "c1"}, "value": [1.0, "2"]},
            {"metric": {"scope": "demo", "stream": "a", "instance": "c2"}, "value": [1.0, "2"]},
            {"metric": {"scope": "demo", "stream": "b"}, "value": [1.0, "NaN"]},
            {"metric": {"stream": "no-scope"}, "value": [1.0, "5"]}
        ]}});
        let source = prometheus("http://127.0.0.1:1");
        let answer = body(answer);
        let series = source.vector(&answer, "the query").unwrap();
        let grouped = source.group_by_stream(&series).unwrap();
        assert_eq!(grouped[&("demo", "a")], ReportedNow::Agreed(2.0));
        assert!(matches!(grouped[&("demo", "b")], ReportedNow::Agreed(v) if v.is_nan()));
        assert_eq!(grouped.len(), 2, "series without the labels are ignored");
        let matrix = serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": []}});
        let error = source.vector(&body(matrix), "the query").unwrap_err();
        assert_eq!(error.reason(), ErrorReason::InvalidAnswer, "{error}");
        assert!(
            error.to_string().contains("not an instant vector"),
            "{error}"
        );
        let not_a_number = serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"scope": "demo", "stream": "a"}, "value": [1.0, "many"]}
        ]}});
        let not_a_number = body(not_a_number);
        let series = source.vector(&not_a_number, "the query").unwrap();
        let error = source.group_by_stream(&series).unwrap_err();
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

//! What the two HTTP clients (the Prometheus source and the Flink client) share: how a client
//! is built, and how a request that got no answer is classified.

use std::time::Duration;

use reqwest::header::HeaderMap;

/// A client whose every request is bounded by `timeout` as a whole, sending `headers`.
pub fn client(timeout: Duration, headers: HeaderMap) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .default_headers(headers)
        .build()
        // Fails only when the TLS backend cannot start, which no configuration changes.
        .expect("HTTP client")
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoAnswer {
    /// Its timeout ran out.
    Timeout,
    /// No connection, or it broke: what went wrong.
    Unreachable(String),
}

impl From<&reqwest::Error> for NoAnswer {
    fn from(e: &reqwest::Error) -> Self {
        if e.is_timeout() {
            NoAnswer::Timeout
        } else {
            NoAnswer::Unreachable(e.to_string())
        }
    }
}

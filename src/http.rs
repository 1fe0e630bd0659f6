//! What the two HTTP clients (the Prometheus source and the Flink client) share: how a client
//! is built (its timeout, what it trusts, the certificate it shows, what it authenticates with),
//! and how a request that got no answer is classified.

use std::time::Duration;

use reqwest::header::{HeaderMap, AUTHORIZATION};

use crate::credentials::Authorization;

/// Which server certificates a client accepts.
#[derive(Debug, Clone, Default)]
pub enum Trust {
    /// Those that chain to the system's CAs.
    #[default]
    System,
    /// Only those that chain to these CAs (a `ca_file`).
    Only(Vec<reqwest::Certificate>),
    /// Any (`insecure_skip_verify`: lab certificates only).
    Anything,
}

/// How a client secures its connections and requests.
#[derive(Debug, Clone, Default)]
pub struct ClientSecurity {
    /// Which server certificates it accepts.
    pub trust: Trust,
    /// The client certificate it shows a server that asks for one.
    pub identity: Option<reqwest::Identity>,
    /// The `Authorization` header of every request.
    pub authorization: Option<Authorization>,
}

/// A client whose every request is bounded by `timeout` as a whole, secured by `security`.
pub fn client(timeout: Duration, security: ClientSecurity) -> reqwest::Client {
    let mut headers = HeaderMap::new();
    if let Some(authorization) = &security.authorization {
        headers.insert(AUTHORIZATION, authorization.header().clone());
    }
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .default_headers(headers);
    builder = match security.trust {
        Trust::System => builder,
        Trust::Only(cas) => builder.tls_certs_only(cas),
        Trust::Anything => builder.tls_danger_accept_invalid_certs(true),
    };
    if let Some(identity) = security.identity {
        builder = builder.identity(identity);
    }
    builder
        .build()
        // Fails only when the TLS backend cannot start: certificates were parsed at setup.
        .expect("HTTP client")
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoAnswer {
    /// Its timeout ran out.
    Timeout,
    /// The TLS handshake failed (a certificate refused either way, TLS spoken to a plain port):
    /// what went wrong.
    Tls(String),
    /// No connection, or it broke: what went wrong.
    Unreachable(String),
}

impl From<&reqwest::Error> for NoAnswer {
    fn from(e: &reqwest::Error) -> Self {
        if e.is_timeout() {
            return NoAnswer::Timeout;
        }
        let chain = error_chain(e);
        if is_tls_failure(&chain) {
            NoAnswer::Tls(chain)
        } else {
            NoAnswer::Unreachable(chain)
        }
    }
}

/// An error and its causes, joined: reqwest's own message ("error sending request") hides
/// what a user needs to see (which certificate was refused, and why).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Whether an error's text is a TLS handshake's failure, in the words of rustls (the HTTP
/// clients' TLS) or of the Pravega client's gRPC stack (an older rustls and webpki).
pub fn is_tls_failure(text: &str) -> bool {
    const SIGNS: [&str; 8] = [
        "invalid peer certificate",
        "received fatal alert",
        "corrupt message",
        "InvalidCertificate",
        "WebPKIError",
        "AlertReceived",
        "CorruptMessage",
        "certificate",
    ];
    SIGNS.iter().any(|sign| text.contains(sign))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_failures_are_told_from_other_transport_errors() {
        assert!(is_tls_failure(
            "error sending request: client error (Connect): invalid peer certificate: UnknownIssuer"
        ));
        assert!(is_tls_failure(
            "transport error: received corrupt message of type InvalidContentType"
        ));
        assert!(is_tls_failure("received fatal alert: CertificateRequired"));
        assert!(is_tls_failure(
            "Custom { kind: InvalidData, error: WebPKIError(CertExpired) }"
        ));
        assert!(!is_tls_failure(
            "error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)"
        ));
        assert!(!is_tls_failure(
            "connection closed before message completed"
        ));
    }
}

//! The controller source: the Pravega controller's `getCurrentSegments` over gRPC, one call
//! per stream, concurrently.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use pravega_controller_client::ControllerError;

use super::{ImplausibleCount, SegmentReading, SegmentSource, SourceError, MAX_PLAUSIBLE_SEGMENTS};
use crate::config::PravegaConfig;
use crate::domain::{SourceKind, StreamId};

/// Asks the Pravega controller for each stream's active segments.
pub struct ControllerSource {
    client: pravega_controller_client::ControllerClientImpl,
    endpoint: String,
    timeout: Duration,
}

impl ControllerSource {
    /// A source for the controller at `tcp://host:port` (or `tls://`). Connects lazily, so a
    /// controller that is down at start-up is only a failed reading later.
    pub fn new(config: &PravegaConfig) -> ControllerSource {
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
            endpoint: format!("controller {}", config.controller),
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
            Err(_) => SegmentReading::Unavailable(SourceError::Timeout {
                endpoint: self.endpoint.clone(),
                after: self.timeout,
            }),
            Ok(Err(e)) => SegmentReading::Unavailable(self.error(e.error)),
            Ok(Ok(segments)) => count(segments.get_segments().len()),
        }
    }

    fn error(&self, error: ControllerError) -> SourceError {
        let endpoint = self.endpoint.clone();
        let message = error.to_string();
        match error {
            ControllerError::ConnectionError { .. } => {
                SourceError::Unreachable { endpoint, message }
            }
            ControllerError::InvalidResponse { .. } => {
                SourceError::InvalidAnswer { endpoint, message }
            }
            ControllerError::OperationError { .. }
            | ControllerError::InvalidConfiguration { .. } => {
                SourceError::Rejected { endpoint, message }
            }
        }
    }
}

/// A count of active segments as the controller listed them, if plausible.
fn count(segments: usize) -> SegmentReading {
    match u32::try_from(segments) {
        Ok(0) => SegmentReading::Invalid(ImplausibleCount::Zero),
        Ok(n) if n <= MAX_PLAUSIBLE_SEGMENTS => SegmentReading::Segments(n),
        _ => SegmentReading::Invalid(ImplausibleCount::Absurd(segments as f64)),
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
    use crate::domain::ErrorReason;

    #[test]
    fn only_plausible_segment_lists_are_counts() {
        assert_eq!(count(3), SegmentReading::Segments(3));
        assert_eq!(count(0), SegmentReading::Invalid(ImplausibleCount::Zero));
        assert!(matches!(
            count(MAX_PLAUSIBLE_SEGMENTS as usize + 1),
            SegmentReading::Invalid(ImplausibleCount::Absurd(_))
        ));
    }

    #[tokio::test]
    async fn controller_errors_have_their_reasons() {
        let source = ControllerSource::new(&PravegaConfig {
            controller: "tcp://127.0.0.1:1".into(),
            timeout: Duration::from_secs(1),
        });
        let error = |e| source.error(e).reason();
        assert_eq!(
            error(ControllerError::ConnectionError {
                can_retry: true,
                error_msg: "refused".into()
            }),
            ErrorReason::Unreachable
        );
        assert_eq!(
            error(ControllerError::InvalidResponse {
                can_retry: false,
                error_msg: "garbage".into()
            }),
            ErrorReason::InvalidAnswer
        );
        assert_eq!(
            error(ControllerError::OperationError {
                can_retry: false,
                operation: "get_current_segments".into(),
                error_msg: "no such stream".into()
            }),
            ErrorReason::Rejected
        );
    }

    #[tokio::test]
    async fn a_silent_controller_is_a_timeout() {
        // A port that accepts connections and never answers: gRPC waits, the timeout ends it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let source = ControllerSource::new(&PravegaConfig {
            controller: format!("tcp://{}", listener.local_addr().unwrap()),
            timeout: Duration::from_millis(500),
        });
        let streams: BTreeSet<StreamId> = ["demo/a".parse().unwrap()].into();
        let reading = source.read(&streams).await.into_values().next().unwrap();
        assert!(
            matches!(&reading, SegmentReading::Unavailable(e) if e.reason() == ErrorReason::Timeout),
            "{reading:?}"
        );
    }
}

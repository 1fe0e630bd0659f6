//! The controller source: the Pravega controller's `getCurrentSegments` over gRPC, one call
//! per stream, concurrently.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use std::sync::Arc;

use async_trait::async_trait;
use pravega_controller_client::controller::controller_service_client::ControllerServiceClient;
use pravega_controller_client::controller::scaling_policy::ScalingPolicyType;
use pravega_controller_client::controller::stream_info::AccessOperation;
use pravega_controller_client::controller::{
    update_stream_status, RetentionPolicy, ScalingPolicy, StreamInfo, Tags, UpdateStreamStatus,
};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

use super::{ImplausibleCount, SegmentReading, SegmentSource, SourceError, MAX_PLAUSIBLE_SEGMENTS};
use crate::config::PravegaConfig;
use crate::credentials::{Authorization, BasicCredentials};
use crate::domain::{SourceKind, StreamId};
use crate::http::error_chain;
use crate::tls::{self, Handshake};

/// Asks the Pravega controller for each stream's active segments.
pub struct ControllerSource {
    client: ControllerServiceClient<Channel>,
    /// The client's channel, for the calls made with [`FullStreamConfig`].
    channel: Channel,
    /// `Basic ...`, sent with every call when the cluster has auth on.
    authorization: Option<MetadataValue<Ascii>>,
    endpoint: String,
    /// The controller's host and port, for a handshake that tells why a connection failed.
    address: (String, u16),
    trust: ControllerTrust,
    timeout: Duration,
}

/// Which certificates the controller source accepts from a `tls://` controller.
#[derive(Debug, Clone)]
pub enum ControllerTrust {
    /// `tcp://`: no TLS.
    Plain,
    /// Those that chain to these CAs (PEM) and name the controller's host.
    Only(String),
    /// Any (`insecure_skip_verify`: lab certificates only).
    Anything,
}

/// How the controller source connects.
#[derive(Debug, Clone)]
pub struct ControllerSecurity {
    /// What it trusts.
    pub trust: ControllerTrust,
    /// Pravega basic-auth credentials, if the cluster has auth on.
    pub credentials: Option<BasicCredentials>,
}

/// Why a controller source cannot be made.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ControllerSetupError(String);

impl ControllerSource {
    /// A source for the controller at `tcp://host:port` (or `tls://`), secured by `security`.
    /// Connects lazily, so a controller that is down at start-up is only a failed reading later.
    ///
    /// The call is made with the controller's generated gRPC client rather than the Pravega
    /// client's `getCurrentSegments`, which asks for a delegation token (access operation
    /// UNSPECIFIED) and so needs READ_UPDATE: this one asks for none (NONE) and needs READ only.
    pub fn new(
        config: &PravegaConfig,
        security: ControllerSecurity,
    ) -> Result<ControllerSource, ControllerSetupError> {
        let tls = config.controller.starts_with("tls://");
        let address = config
            .controller
            .trim_start_matches("tcp://")
            .trim_start_matches("tls://");
        let (host, port) = address
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host.to_string(), port.parse::<u16>().ok()?)))
            .ok_or_else(|| ControllerSetupError(format!("{address:?} is not host:port")))?;
        let scheme = if tls { "https" } else { "http" };
        let setup_error = |e: tonic::transport::Error| ControllerSetupError(error_chain(&e));
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))
            .map_err(|e| ControllerSetupError(e.to_string()))?
            .connect_timeout(config.timeout)
            .timeout(config.timeout);
        endpoint = match &security.trust {
            ControllerTrust::Plain => endpoint,
            ControllerTrust::Only(pem) => endpoint
                .tls_config(
                    ClientTlsConfig::new()
                        .ca_certificate(Certificate::from_pem(pem))
                        .domain_name(host.clone()),
                )
                .map_err(setup_error)?,
            ControllerTrust::Anything => {
                let mut rustls = legacy_rustls::ClientConfig::new();
                rustls.alpn_protocols.push(b"h2".to_vec());
                rustls
                    .dangerous()
                    .set_certificate_verifier(Arc::new(pravega_client_shared::NoVerifier));
                endpoint
                    .tls_config(
                        ClientTlsConfig::new()
                            .rustls_client_config(rustls)
                            .domain_name(host.clone()),
                    )
                    .map_err(setup_error)?
            }
        };
        let authorization = security
            .credentials
            .map(|c| {
                let value =
                    Authorization::basic(&c).map_err(|e| ControllerSetupError(e.to_string()))?;
                let text = value.header().to_str().expect("basic auth is ASCII");
                MetadataValue::from_str(text).map_err(|e| ControllerSetupError(e.to_string()))
            })
            .transpose()?;
        let channel = endpoint.connect_lazy().map_err(setup_error)?;
        Ok(ControllerSource {
            client: ControllerServiceClient::new(channel.clone()),
            channel,
            authorization,
            endpoint: format!("controller {}", config.controller),
            address: (host, port),
            trust: security.trust,
            timeout: config.timeout,
        })
    }

    /// `message` as a request, with the credentials when the cluster has auth on.
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        request
    }

    /// Awaits `call` within the timeout; a failure is a [`SourceError`] (`probe` holds the
    /// pass's one TLS handshake, made by the first call that fails to connect).
    async fn answer<T>(
        &self,
        call: impl std::future::Future<Output = Result<tonic::Response<T>, Status>>,
        probe: &TlsProbe,
    ) -> Result<T, SourceError> {
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Err(SourceError::Timeout {
                endpoint: self.endpoint.clone(),
                after: self.timeout,
            }),
            Ok(Err(status)) => Err(self.error(status, probe).await),
            Ok(Ok(answer)) => Ok(answer.into_inner()),
        }
    }

    /// The stream's info, asking for no delegation token (READ is enough).
    fn stream_info(stream: &StreamId) -> StreamInfo {
        StreamInfo {
            scope: stream.scope.clone(),
            stream: stream.stream.clone(),
            access_operation: AccessOperation::None as i32,
        }
    }

    /// One stream's reading; `probe` holds the pass's one TLS handshake, made by the first
    /// call that fails to connect and shared by the others.
    async fn read_one(&self, stream: &StreamId, probe: &TlsProbe) -> SegmentReading {
        // Each call has a client of its own (cheap: they share the channel).
        let mut client = self.client.clone();
        let call = client.get_current_segments(self.request(Self::stream_info(stream)));
        match self.answer(call, probe).await {
            Err(e) => SegmentReading::Unavailable(e),
            Ok(answer) => count(answer.segment_ranges.len()),
        }
    }

    async fn error(&self, status: Status, probe: &TlsProbe) -> SourceError {
        let endpoint = self.endpoint.clone();
        // The status's message only: its metadata would hold the request's credentials.
        let message = format!("{:?}: {}", status.code(), status.message());
        match status.code() {
            Code::Unauthenticated => SourceError::Unauthenticated {
                endpoint,
                message,
                settings: "pravega.credentials".into(),
            },
            Code::PermissionDenied => SourceError::Forbidden {
                endpoint,
                message,
                settings: "pravega.credentials (READ on the scope and its streams)".into(),
            },
            // tonic's own deadline (the channel's timeout) ends a call as Cancelled.
            Code::DeadlineExceeded | Code::Cancelled => SourceError::Timeout {
                endpoint,
                after: self.timeout,
            },
            // What failed to connect says only "transport error" with its causes below.
            Code::Unknown | Code::Unavailable => {
                match probe.get_or_init(|| self.tls_failure()).await.clone() {
                    Some(why) => SourceError::Tls {
                        endpoint,
                        message: why,
                        settings: "pravega.controller, pravega.tls".into(),
                    },
                    None => SourceError::Unreachable {
                        endpoint,
                        message: match std::error::Error::source(&status) {
                            Some(cause) => format!("{message}: {}", error_chain(cause)),
                            None => message,
                        },
                    },
                }
            }
            _ => SourceError::Rejected { endpoint, message },
        }
    }

    /// Whether TLS is why the client could not connect: a handshake of our own, with the same
    /// trust, tells.
    async fn tls_failure(&self) -> Option<String> {
        let (host, port) = (&self.address.0, self.address.1);
        let probe_timeout = self.timeout.min(Duration::from_secs(2));
        match &self.trust {
            ControllerTrust::Only(pem) => {
                match tls::handshake(host, port, pem.as_bytes(), probe_timeout).await {
                    Handshake::Refused(why) => Some(format!("certificate refused: {why}")),
                    Handshake::NotTls(why) => Some(format!(
                        "no TLS on this port ({why}): is the controller tcp://?"
                    )),
                    Handshake::Completed | Handshake::NoConnection(_) => None,
                }
            }
            // No CA: any certificate shown proves TLS is spoken there.
            ControllerTrust::Plain => match tls::handshake(host, port, &[], probe_timeout).await {
                Handshake::Refused(_) | Handshake::Completed => {
                    Some("the controller speaks TLS: use tls:// with pravega.tls".into())
                }
                Handshake::NotTls(_) | Handshake::NoConnection(_) => None,
            },
            ControllerTrust::Anything => None,
        }
    }
}

/// A stream's scaling policy, as its controller holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct StreamScaling {
    /// What the target is a rate of.
    pub kind: ScalingKind,
    /// Events/s or KB/s per segment (0 for a fixed count).
    pub target_rate: u32,
    /// How many segments a split makes.
    pub scale_factor: u32,
    /// The fewest segments.
    pub min_segments: u32,
}

/// What a stream's segments are split and merged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScalingKind {
    /// A fixed number of segments.
    Fixed,
    /// Events per second per segment.
    EventsPerSecond,
    /// Kilobytes per second per segment.
    KBytesPerSecond,
}

impl StreamScaling {
    /// The target in events/s per segment, when the policy is by event rate.
    pub fn events_per_second(&self) -> Option<f64> {
        (self.kind == ScalingKind::EventsPerSecond).then_some(f64::from(self.target_rate))
    }
}

/// Reads streams' scaling policies (the figures behind a job that falls behind) and, opt-in,
/// changes their target.
#[async_trait]
pub trait StreamPolicies: Send + Sync {
    /// The scaling policy of `stream`.
    async fn scaling(&self, stream: &StreamId) -> Result<StreamScaling, SourceError>;

    /// Sets the target and the fewest segments of `stream`'s event-rate scaling policy, every
    /// other setting of the stream as it is; returns the policy as it was. A higher minimum
    /// makes the controller split the stream to it at once.
    async fn set_event_rate_policy(
        &self,
        stream: &StreamId,
        target_rate: u32,
        min_segments: u32,
    ) -> Result<StreamScaling, SourceError>;
}

/// A stream's configuration as Pravega 0.13's controller sends it. The generated client's
/// `StreamConfig` (crate 0.3.7) lacks fields 5 and 6: an update made with it would reset the
/// stream's timestamp aggregation timeout and rollover size, so reads and updates of the
/// policy go through this message, which carries them over.
#[derive(Clone, PartialEq, prost::Message)]
struct FullStreamConfig {
    #[prost(message, optional, tag = "1")]
    stream_info: Option<StreamInfo>,
    #[prost(message, optional, tag = "2")]
    scaling_policy: Option<ScalingPolicy>,
    #[prost(message, optional, tag = "3")]
    retention_policy: Option<RetentionPolicy>,
    #[prost(message, optional, tag = "4")]
    tags: Option<Tags>,
    #[prost(int64, tag = "5")]
    timestamp_aggregation_timeout: i64,
    #[prost(int64, tag = "6")]
    rollover_size_bytes: i64,
}

impl ControllerSource {
    /// One unary call of the controller service's `path` with messages of our own.
    async fn unary<Req, Resp>(&self, path: &'static str, message: Req) -> Result<Resp, SourceError>
    where
        Req: prost::Message + 'static,
        Resp: prost::Message + Default + 'static,
    {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
        let request = self.request(message);
        let call = async move {
            grpc.ready()
                .await
                .map_err(|e| Status::unavailable(format!("service not ready: {e}")))?;
            grpc.unary(request, path, tonic::codec::ProstCodec::default())
                .await
        };
        self.answer(call, &TlsProbe::new()).await
    }

    /// `stream`'s whole configuration.
    async fn stream_config(&self, stream: &StreamId) -> Result<FullStreamConfig, SourceError> {
        self.unary(GET_STREAM_CONFIGURATION, Self::stream_info(stream))
            .await
    }

    fn rejected(&self, message: String) -> SourceError {
        SourceError::Rejected {
            endpoint: self.endpoint.clone(),
            message,
        }
    }

    /// The policy of `config`, for `stream`.
    fn scaling_of(
        &self,
        stream: &StreamId,
        config: &FullStreamConfig,
    ) -> Result<StreamScaling, SourceError> {
        let policy = config.scaling_policy.as_ref().ok_or_else(|| {
            self.rejected(format!("{stream}: no scaling policy in its configuration"))
        })?;
        let kind = match ScalingPolicyType::from_i32(policy.scale_type) {
            Some(ScalingPolicyType::FixedNumSegments) => ScalingKind::Fixed,
            Some(ScalingPolicyType::ByRateInEventsPerSec) => ScalingKind::EventsPerSecond,
            Some(ScalingPolicyType::ByRateInKbytesPerSec) => ScalingKind::KBytesPerSecond,
            None => {
                return Err(self.rejected(format!(
                    "{stream}: unknown scaling policy type {}",
                    policy.scale_type
                )))
            }
        };
        let positive = |field: &str, value: i32| {
            u32::try_from(value)
                .map_err(|_| self.rejected(format!("{stream}: scaling policy {field} {value}")))
        };
        Ok(StreamScaling {
            kind,
            target_rate: positive("targetRate", policy.target_rate)?,
            scale_factor: positive("scaleFactor", policy.scale_factor)?,
            min_segments: positive("minNumSegments", policy.min_num_segments)?,
        })
    }
}

/// The controller service's gRPC methods called with [`FullStreamConfig`].
const GET_STREAM_CONFIGURATION: &str =
    "/io.pravega.controller.stream.api.grpc.v1.ControllerService/getStreamConfiguration";
const UPDATE_STREAM: &str =
    "/io.pravega.controller.stream.api.grpc.v1.ControllerService/updateStream";

#[async_trait]
impl StreamPolicies for ControllerSource {
    async fn scaling(&self, stream: &StreamId) -> Result<StreamScaling, SourceError> {
        let config = self.stream_config(stream).await?;
        self.scaling_of(stream, &config)
    }

    async fn set_event_rate_policy(
        &self,
        stream: &StreamId,
        target_rate: u32,
        min_segments: u32,
    ) -> Result<StreamScaling, SourceError> {
        let mut config = self.stream_config(stream).await?;
        let before = self.scaling_of(stream, &config)?;
        if before.kind != ScalingKind::EventsPerSecond {
            return Err(self.rejected(format!(
                "{stream}: its policy is {:?}, not by event rate: its target is left as it is",
                before.kind
            )));
        }
        let rate = i32::try_from(target_rate)
            .map_err(|_| self.rejected(format!("{stream}: target rate {target_rate}")))?;
        let segments = i32::try_from(min_segments)
            .map_err(|_| self.rejected(format!("{stream}: min segments {min_segments}")))?;
        if let Some(policy) = config.scaling_policy.as_mut() {
            policy.target_rate = rate;
            policy.min_num_segments = segments;
        }
        // The update names the stream it changes, whatever the answer said.
        config.stream_info = Some(Self::stream_info(stream));
        let status: UpdateStreamStatus = self.unary(UPDATE_STREAM, config).await?;
        match update_stream_status::Status::from_i32(status.status) {
            Some(update_stream_status::Status::Success) => Ok(before),
            other => Err(self.rejected(format!(
                "{stream}: updateStream answered {:?}",
                other.map_or_else(|| status.status.to_string(), |s| format!("{s:?}"))
            ))),
        }
    }
}

/// Why the controller could not be reached over TLS, if that is why: asked once per pass.
type TlsProbe = tokio::sync::OnceCell<Option<String>>;

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
        let probe = TlsProbe::new();
        let readings =
            futures::future::join_all(streams.iter().map(|s| self.read_one(s, &probe))).await;
        streams.iter().cloned().zip(readings).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ErrorReason;

    fn plain_source(controller: &str, timeout: Duration) -> ControllerSource {
        let config = PravegaConfig {
            controller: controller.into(),
            timeout,
            tls: None,
            credentials: None,
            tune_scaling_policy: None,
        };
        let security = ControllerSecurity {
            trust: ControllerTrust::Plain,
            credentials: None,
        };
        ControllerSource::new(&config, security).unwrap()
    }

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
        // Nothing listens on port 1: a transport error is no TLS failure.
        let source = plain_source("tcp://127.0.0.1:1", Duration::from_secs(1));
        let cases = [
            (Status::unknown("transport error"), ErrorReason::Unreachable),
            (
                Status::unavailable("connection refused"),
                ErrorReason::Unreachable,
            ),
            (Status::deadline_exceeded("late"), ErrorReason::Timeout),
            (Status::cancelled("Timeout expired"), ErrorReason::Timeout),
            (Status::not_found("no such stream"), ErrorReason::Rejected),
            (Status::internal("boom"), ErrorReason::Rejected),
            (Status::unauthenticated(""), ErrorReason::Unauthenticated),
            (
                Status::permission_denied("Authorization failed"),
                ErrorReason::Forbidden,
            ),
        ];
        for (status, reason) in cases {
            let error = source.error(status, &TlsProbe::new()).await;
            assert_eq!(error.reason(), reason, "{error}");
        }
    }

    #[tokio::test]
    async fn a_status_shows_its_message_never_its_metadata() {
        let source = plain_source("tcp://127.0.0.1:1", Duration::from_secs(1));
        let mut status = Status::unauthenticated("bad credentials");
        status
            .metadata_mut()
            .insert("authorization", "Basic c2VjcmV0".parse().unwrap());
        let error = source.error(status, &TlsProbe::new()).await.to_string();
        assert!(error.contains("bad credentials"), "{error}");
        assert!(!error.contains("c2VjcmV0"), "{error}");
    }

    #[tokio::test]
    async fn a_silent_controller_is_a_timeout() {
        // A port that accepts connections and never answers: gRPC waits, the timeout ends it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let source = plain_source(&format!("tcp://{address}"), Duration::from_millis(500));
        let streams: BTreeSet<StreamId> = ["demo/a".parse().unwrap()].into();
        let reading = source.read(&streams).await.into_values().next().unwrap();
        assert!(
            matches!(&reading, SegmentReading::Unavailable(e) if e.reason() == ErrorReason::Timeout),
            "{reading:?}"
        );
    }
}

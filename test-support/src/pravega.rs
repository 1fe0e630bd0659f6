//! Pravega helpers on the real controller.

use pravega_client_config::credentials::Credentials;
use pravega_client_config::ClientConfigBuilder;
use pravega_client_shared::{
    PravegaNodeUri, Retention, ScaleType, Scaling, Scope, ScopedStream, Stream, StreamConfiguration,
};
use pravega_controller_client::{ControllerClient, ControllerClientImpl};

/// A controller client for `tcp://host:port`.
pub fn controller(endpoint: &str) -> ControllerClientImpl {
    let config = ClientConfigBuilder::default()
        .controller_uri(PravegaNodeUri::from(endpoint.trim_start_matches("tcp://")))
        .build()
        .expect("client config");
    ControllerClientImpl::new(config, &tokio::runtime::Handle::current())
}

/// A controller client for a `tls://` controller, trusting the CA in `ca` and authenticating
/// as `username`.
pub fn secured_controller(
    endpoint: &str,
    ca: &std::path::Path,
    username: &str,
    password: &str,
) -> ControllerClientImpl {
    let ca = std::fs::read_to_string(ca).expect("read the CA");
    let config = ClientConfigBuilder::default()
        .controller_uri(PravegaNodeUri::from(endpoint.trim_start_matches("tls://")))
        .is_tls_enabled(true)
        .trustcerts(vec![ca])
        .credentials(Credentials::basic(username.into(), password.into()))
        .is_auth_enabled(true)
        .build()
        .expect("client config");
    let handle = tokio::runtime::Handle::current();
    // With auth on, the client blocks on the runtime while it is made: not on a runtime thread.
    std::thread::scope(|scope| {
        scope
            .spawn(|| ControllerClientImpl::new(config, &handle))
            .join()
            .expect("controller client")
    })
}

/// Creates `scope/stream` with one segment and a fixed scaling policy (segments change only
/// through [`scale_to`]).
pub async fn create_stream(
    controller: &ControllerClientImpl,
    scope: &str,
    stream: &str,
) -> ScopedStream {
    let scoped = ScopedStream {
        scope: Scope::from(scope.to_string()),
        stream: Stream::from(stream.to_string()),
    };
    controller
        .create_scope(&scoped.scope)
        .await
        .expect("create scope");
    controller
        .create_stream(&StreamConfiguration {
            scoped_stream: scoped.clone(),
            scaling: Scaling {
                scale_type: ScaleType::FixedNumSegments,
                target_rate: 0,
                scale_factor: 0,
                min_num_segments: 1,
            },
            retention: Retention::default(),
            tags: None,
        })
        .await
        .expect("create stream");
    scoped
}

/// Active segments, over gRPC.
pub async fn segment_count(controller: &ControllerClientImpl, stream: &ScopedStream) -> usize {
    try_segment_count(controller, stream)
        .await
        .expect("current segments")
}

/// Active segments, over gRPC, or why they could not be read (e.g. no such stream yet).
pub async fn try_segment_count(
    controller: &ControllerClientImpl,
    stream: &ScopedStream,
) -> Result<usize, String> {
    let segments = controller
        .get_current_segments(stream)
        .await
        .map_err(|e| e.to_string())?;
    Ok(segments.get_segments().len())
}

/// Seals every active segment and replaces them with `n` equal key ranges; returns once the
/// controller has completed the scale.
pub async fn scale_to(controller: &ControllerClientImpl, stream: &ScopedStream, n: usize) {
    let current = controller
        .get_current_segments(stream)
        .await
        .expect("current segments");
    let sealed: Vec<_> = current
        .key_segment_map
        .values()
        .map(|s| s.get_segment())
        .collect();
    let ranges: Vec<(f64, f64)> = (0..n)
        .map(|i| (i as f64 / n as f64, (i + 1) as f64 / n as f64))
        .collect();
    controller
        .scale_stream(stream, &sealed, &ranges)
        .await
        .expect("scale the stream");
    assert_eq!(
        segment_count(controller, stream).await,
        n,
        "the stream has {n} segments after the scale"
    );
}

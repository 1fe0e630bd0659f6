//! The stack's Pravega is real: the Rust client creates and splits a stream through the
//! controller, and the controller's segment gauge reaches Prometheus.

mod support;

use std::time::Duration;

use pravega_client_config::ClientConfigBuilder;
use pravega_client_shared::{
    PravegaNodeUri, Retention, ScaleType, Scaling, Scope, ScopedStream, Stream, StreamConfiguration,
};
use pravega_controller_client::{ControllerClient, ControllerClientImpl};
use support::{eventually, unique_name, Component, Stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_is_seen_over_grpc_and_in_prometheus() {
    let stack = Stack::require(&[Component::Pravega, Component::Prometheus]).await;
    let config = ClientConfigBuilder::default()
        .controller_uri(PravegaNodeUri::from(stack.pravega_controller.trim_start_matches("tcp://")))
        .build()
        .expect("client config");
    let controller = ControllerClientImpl::new(config, &tokio::runtime::Handle::current());

    let stream = ScopedStream {
        scope: Scope::from(unique_name("smoke")),
        stream: Stream::from("load".to_string()),
    };
    assert!(controller.create_scope(&stream.scope).await.expect("create scope"));
    let created = controller
        .create_stream(&StreamConfiguration {
            scoped_stream: stream.clone(),
            scaling: Scaling { scale_type: ScaleType::FixedNumSegments, target_rate: 0, scale_factor: 0, min_num_segments: 1 },
            retention: Retention::default(),
            tags: None,
        })
        .await
        .expect("create stream");
    assert!(created, "the stream is new");

    let before = controller.get_current_segments(&stream).await.expect("current segments");
    assert_eq!(before.get_segments().len(), 1, "a new stream with min 1 segment has one segment");

    // Split the only segment in two halves of the key space.
    let sealed: Vec<_> = before.key_segment_map.values().map(|s| s.get_segment()).collect();
    controller
        .scale_stream(&stream, &sealed, &[(0.0, 0.5), (0.5, 1.0)])
        .await
        .expect("scale the stream");
    let after = controller.get_current_segments(&stream).await.expect("current segments");
    assert_eq!(after.get_segments().len(), 2, "the split leaves two active segments");

    // The controller's gauge for this stream, scraped by Prometheus, follows.
    let query = format!(
        "pravega_controller_segments_count{{scope=\"{}\",stream=\"{}\"}}",
        stream.scope.name, stream.stream.name
    );
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/query", stack.prometheus_url);
    let value = eventually(&format!("{query} = 2 in Prometheus"), Duration::from_secs(60), || {
        let request = http.get(&url).query(&[("query", query.as_str())]);
        async move {
            let body: serde_json::Value = request
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            let results = body["data"]["result"].as_array().cloned().unwrap_or_default();
            let values: Vec<f64> = results
                .iter()
                .filter_map(|series| series["value"][1].as_str()?.parse().ok())
                .collect();
            match values.as_slice() {
                [v] if *v == 2.0 => Ok(*v),
                _ => Err(format!("{values:?}")),
            }
        }
    })
    .await;
    assert_eq!(value, 2.0);
}

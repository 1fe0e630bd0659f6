//! The stack's Pravega is real: the Rust client creates and splits a stream through the
//! controller, and the controller's segment gauge reaches Prometheus.

use test_support as support;

use std::time::Duration;

use support::pravega::{controller, create_stream, scale_to, segment_count};
use support::{eventually, prometheus_values, unique_name, Component, Stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_is_seen_over_grpc_and_in_prometheus() {
    let stack = Stack::require(&[Component::Pravega, Component::Prometheus]).await;
    let controller = controller(&stack.pravega_controller);
    let stream = create_stream(&controller, &unique_name("smoke"), "load").await;
    assert_eq!(
        segment_count(&controller, &stream).await,
        1,
        "a new stream with min 1 segment has one segment"
    );

    // Split the only segment into two halves of the key space; read the count back over gRPC.
    scale_to(&controller, &stream, 2).await;
    assert_eq!(
        segment_count(&controller, &stream).await,
        2,
        "the split leaves two active segments"
    );

    // The controller's gauge for this stream, scraped by Prometheus, follows.
    let query = format!(
        "pravega_controller_segments_count{{scope=\"{}\",stream=\"{}\"}}",
        stream.scope.name, stream.stream.name
    );
    let value = eventually(
        &format!("{query} = 2 in Prometheus"),
        Duration::from_secs(60),
        || async {
            match prometheus_values(&stack.prometheus_url, &query)
                .await?
                .as_slice()
            {
                [v] if *v == 2.0 => Ok(*v),
                values => Err(format!("{values:?}")),
            }
        },
    )
    .await;
    assert_eq!(value, 2.0);
}

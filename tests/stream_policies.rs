//! Streams' scaling policies on the real controller: what `pravega.tune_scaling_policy` reads and
//! changes (README: Backlog). The target and the fewest segments move (the stream splits to the
//! new minimum at once) and every other setting of the stream stays as it was, including the two
//! the generated gRPC client does not know; a policy that is not by event rate is refused and
//! left alone.

use test_support as support;

use segment_autoscaler::config::Config;
use segment_autoscaler::domain::StreamId;
use segment_autoscaler::observe::controller::{ScalingKind, StreamPolicies};
use serde_json::{json, Value};
use support::{unique_name, Component, Stack};

/// Creates `scope/name` through the controller's REST API with `scaling` and settings other
/// than the defaults everywhere else; returns the stream as the REST API shows it.
async fn create(stack: &Stack, scope: &str, name: &str, scaling: Value) -> Value {
    let http = reqwest::Client::new();
    let base = format!("{}/v1/scopes", stack.pravega_rest_url);
    let scope_created = http
        .post(&base)
        .json(&json!({"scopeName": scope}))
        .send()
        .await
        .expect("create scope")
        .status();
    assert!(
        scope_created.is_success() || scope_created == reqwest::StatusCode::CONFLICT,
        "create scope: {scope_created}"
    );
    http.post(format!("{base}/{scope}/streams"))
        .json(&json!({
            "streamName": name,
            "scalingPolicy": scaling,
            "retentionPolicy": {"type": "LIMITED_SIZE_MB", "value": 100},
            "tags": ["backlog-test"],
            "timestampAggregationTimeout": 12345,
            "rolloverSizeBytes": 7654321
        }))
        .send()
        .await
        .expect("create stream")
        .error_for_status()
        .expect("stream created");
    shown(stack, scope, name).await
}

/// The stream as the controller's REST API shows it.
async fn shown(stack: &Stack, scope: &str, name: &str) -> Value {
    reqwest::get(format!(
        "{}/v1/scopes/{scope}/streams/{name}",
        stack.pravega_rest_url
    ))
    .await
    .expect("read stream")
    .json()
    .await
    .expect("stream JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_target_moves_and_everything_else_stays() {
    let stack = Stack::require(&[Component::Pravega]).await;
    let scope = unique_name("policies");
    let config = Config::parse(&format!(
        "pravega: {{controller: {}}}\nbindings:\n- {{name: b, streams: [s/s], max_replicas: 2, target: {{kind: command, get: [x], set: [x, '{{{{replicas}}}}']}}}}\n",
        stack.pravega_controller
    ))
    .expect("config");
    let source = segment_autoscaler::setup::controller_source(config.pravega.as_ref().unwrap())
        .expect("controller source");

    let events = json!({"type": "BY_RATE_IN_EVENTS_PER_SEC", "targetRate": 1000, "scaleFactor": 3, "minSegments": 1});
    let before = create(&stack, &scope, "load", events).await;
    let stream: StreamId = format!("{scope}/load").parse().unwrap();
    let read = source.scaling(&stream).await.expect("read the policy");
    assert_eq!(read.kind, ScalingKind::EventsPerSecond);
    assert_eq!((read.target_rate, read.scale_factor), (1000, 3));

    let old = source
        .set_event_rate_policy(&stream, 150, 3)
        .await
        .expect("set the policy");
    assert_eq!(
        (old.target_rate, old.min_segments),
        (1000, 1),
        "the policy as it was"
    );
    let now = source.scaling(&stream).await.unwrap();
    assert_eq!((now.target_rate, now.min_segments), (150, 3));
    let mut expected = before.clone();
    expected["scalingPolicy"]["targetRate"] = json!(150);
    expected["scalingPolicy"]["minSegments"] = json!(3);
    assert_eq!(
        shown(&stack, &scope, "load").await,
        expected,
        "only the target and the minimum changed"
    );
    // A higher minimum splits the stream at once.
    let pravega = support::pravega::controller(&stack.pravega_controller);
    let scoped = pravega_client_shared::ScopedStream {
        scope: pravega_client_shared::Scope::from(scope.clone()),
        stream: pravega_client_shared::Stream::from("load".to_string()),
    };
    support::eventually(
        "the stream split to its new minimum",
        std::time::Duration::from_secs(30),
        || async {
            match support::pravega::try_segment_count(&pravega, &scoped).await? {
                3 => Ok(()),
                n => Err(format!("{n} segments")),
            }
        },
    )
    .await;

    // By data rate or fixed: refused, unchanged.
    for (name, policy) in [
        (
            "kbytes",
            json!({"type": "BY_RATE_IN_KBYTES_PER_SEC", "targetRate": 1000, "scaleFactor": 2, "minSegments": 1}),
        ),
        (
            "fixed",
            json!({"type": "FIXED_NUM_SEGMENTS", "minSegments": 2}),
        ),
    ] {
        let before = create(&stack, &scope, name, policy).await;
        let stream: StreamId = format!("{scope}/{name}").parse().unwrap();
        let refused = source.set_event_rate_policy(&stream, 150, 1).await;
        let error = refused.expect_err("only a policy by event rate is tuned");
        assert!(error.to_string().contains("not by event rate"), "{error}");
        assert_eq!(shown(&stack, &scope, name).await, before);
    }

    // A stream that does not exist: a clear error naming it.
    let missing: StreamId = format!("{scope}/missing").parse().unwrap();
    let error = source
        .set_event_rate_policy(&missing, 150, 1)
        .await
        .expect_err("no such stream");
    assert!(error.to_string().contains("missing"), "{error}");
}

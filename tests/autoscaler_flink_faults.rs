//! Flink's REST API failing under a running autoscaler (issue 14), with the real Flink behind
//! a proxy: answering garbage, then cut off. The TaskManagers still follow the segments, the
//! job's alignment is reported unknown (its series disappear rather than read 0), the reason
//! says why, and verification resumes when Flink answers again.

use test_support as support;

use std::time::Duration;

use support::config::AutoscalerConfig;
use support::pravega::{controller, create_stream, scale_to};
use support::proxy::{Mode, Proxy};
use support::{eventually, unique_name, AutoscalerProcess, Component, Stack};

const ALIGNED: &str = "segment_autoscaler_job_aligned{";
const PARALLELISM: &str = "segment_autoscaler_job_parallelism{";

/// Waits until the stack runs `n` TaskManagers and the job's alignment is unknown.
async fn wait_followed_blind(stack: &Stack, autoscaler: &AutoscalerProcess, n: usize) {
    eventually(
        &format!("{n} TaskManagers with the job's alignment unknown"),
        Duration::from_secs(60),
        || async {
            let running = stack.stack_command(&["taskmanagers"]).trim().to_string();
            let aligned = autoscaler.metric(ALIGNED).await;
            let parallelism = autoscaler.metric(PARALLELISM).await;
            match (running == n.to_string(), aligned, parallelism) {
                (true, None, None) => Ok(()),
                other => Err(format!(
                    "(TaskManagers {running}, job_aligned, job_parallelism) = {other:?}"
                )),
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_segments_are_followed_while_flink_answers_garbage_or_nothing() {
    let stack = Stack::require(&[Component::Pravega, Component::Flink]).await;
    stack.stack_command(&["taskmanagers", "1"]);
    let controller = controller(&stack.pravega_controller);
    let scope = unique_name("flink-faults");
    let stream = create_stream(&controller, &scope, "load").await;
    let flink = Proxy::start(stack.flink_rest_url.trim_start_matches("http://")).await;
    let config = AutoscalerConfig::local_taskmanagers(&stack, &scope)
        .flink(&format!("http://{}", flink.address), "timeout: 2s");
    let autoscaler = AutoscalerProcess::start("flink-faults", &config.yaml());
    autoscaler.wait_aligned(1.0).await;

    flink.set(Mode::Garbage);
    scale_to(&controller, &stream, 2).await;
    wait_followed_blind(&stack, &autoscaler, 2).await;

    flink.set(Mode::Cut);
    scale_to(&controller, &stream, 3).await;
    wait_followed_blind(&stack, &autoscaler, 3).await;
    let log = autoscaler.log_text();
    assert!(
        log.contains("job alignment unknown (flink http://")
            && log.contains("still capped by its last known max parallelism 128"),
        "the reason says why: {log}"
    );

    // Flink answers again: the real job is seen at the new parallelism.
    flink.set(Mode::Forward);
    autoscaler.wait_aligned(3.0).await;
    scale_to(&controller, &stream, 1).await;
    autoscaler.wait_aligned(1.0).await;
    assert_eq!(stack.stack_command(&["taskmanagers"]).trim(), "1");
}

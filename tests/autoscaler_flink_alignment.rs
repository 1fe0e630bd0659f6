//! The command target and Flink verification on the real stack: the autoscaler starts and stops
//! local TaskManagers through `deploy/local/stack taskmanagers`, the reactive job follows, and
//! the autoscaler reads the job's parallelism back and reports it aligned; it also reads the
//! JobManager's rescale timers (the stack's: 1 s + 1 s) and warns that they exceed a tolerance
//! set below them.

use test_support as support;

use support::config::AutoscalerConfig;
use support::pravega::{controller, create_stream, scale_to};
use support::{unique_name, AutoscalerProcess, Component, Stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taskmanagers_and_job_parallelism_follow_segments() {
    let stack = Stack::require(&[Component::Pravega, Component::Flink]).await;
    stack.stack_command(&["taskmanagers", "1"]);
    let controller = controller(&stack.pravega_controller);
    let scope = unique_name("align");
    let stream = create_stream(&controller, &scope, "load").await;
    let config = AutoscalerConfig::local_taskmanagers(&stack, &scope)
        .flink(&stack.flink_rest_url, "rescale_tolerance: 1s");
    let autoscaler = AutoscalerProcess::start("align", &config.yaml());
    autoscaler.wait_aligned(1.0).await;
    // The stack's timers on either Flink line: 1 s stabilization + 1 s cooldown (2.x: no
    // checkpoint wait), read from the real JobManager's configuration.
    assert_eq!(
        autoscaler
            .metric("segment_autoscaler_flink_rescale_delay_seconds{")
            .await,
        Some(2.0)
    );
    let log = autoscaler.log_text();
    assert!(
        log.contains("Flink may wait up to 2s before using a TaskManager change")
            && log.contains("flink.rescale_tolerance (1s)"),
        "{log}"
    );

    scale_to(&controller, &stream, 2).await;
    autoscaler.wait_aligned(2.0).await;
    assert_eq!(stack.stack_command(&["taskmanagers"]).trim(), "2");

    // Capped by max_replicas: 4 segments, at most 3 TaskManagers, still reported aligned.
    scale_to(&controller, &stream, 4).await;
    autoscaler.wait_aligned(3.0).await;
    assert_eq!(
        autoscaler
            .metric("segment_autoscaler_desired_replicas{")
            .await,
        Some(3.0)
    );

    scale_to(&controller, &stream, 1).await;
    autoscaler.wait_aligned(1.0).await;
    assert_eq!(stack.stack_command(&["taskmanagers"]).trim(), "1");
}

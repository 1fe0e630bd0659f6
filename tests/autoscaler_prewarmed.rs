//! The prewarmed alignment mode on the real stack: Flink's adaptive scheduler (not reactive
//! mode), the autoscaler setting the job's parallelism through the JobManager's
//! resource-requirements API and keeping a TaskManager warm through `deploy/local/stack
//! taskmanagers`, in both directions, and verifying through REST that the job got there; and
//! the same binding holding on a JobManager in reactive mode, which refuses a parallelism.

use test_support as support;

use std::time::{Duration, Instant};

use support::config::AutoscalerConfig;
use support::pravega::{controller, create_stream, scale_to};
use support::{eventually, unique_name, AutoscalerProcess, Component, Stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_follows_segments_on_warm_taskmanagers() {
    let stack = Stack::require(&[Component::Pravega, Component::Flink]).await;
    stack
        .restart_flink(&[("FLINK_SCHEDULER", "adaptive")])
        .await;
    let controller = controller(&stack.pravega_controller);
    let scope = unique_name("prewarm");
    let stream = create_stream(&controller, &scope, "load").await;
    let config = AutoscalerConfig::local_taskmanagers(&stack, &scope).flink(
        &stack.flink_rest_url,
        "alignment: {mode: prewarmed, headroom: 1}",
    );
    let autoscaler = AutoscalerProcess::start("prewarmed", &config.yaml());
    // `n` TaskManagers running, `warm` of them beyond the job's as the autoscaler reports it
    // (its figure of a tick's start: one tick after a write).
    let taskmanagers = |n: u32, warm: f64| {
        let stack = &stack;
        let autoscaler = &autoscaler;
        async move {
            eventually(
                &format!("{n} TaskManagers, {warm} warm"),
                Duration::from_secs(120),
                || async {
                    let running = stack.stack_command(&["taskmanagers"]);
                    let reported = autoscaler
                        .metric("segment_autoscaler_warm_taskmanagers{")
                        .await;
                    match running.trim().parse::<u32>() {
                        Ok(count) if count == n && reported == Some(warm) => Ok(()),
                        other => Err(format!("{other:?} running, {reported:?} warm")),
                    }
                },
            )
            .await
        }
    };

    // One segment: the job at 1, one TaskManager more started and kept warm.
    autoscaler.wait_aligned(1.0).await;
    taskmanagers(2, 1.0).await;
    assert_eq!(
        autoscaler
            .metric("segment_autoscaler_alignment{binding=\"local\",mode=\"prewarmed\"}")
            .await,
        Some(1.0)
    );

    // Scale-up: the job moves onto the warm TaskManager, then one more is started.
    scale_to(&controller, &stream, 2).await;
    let changed = Instant::now();
    autoscaler.wait_aligned(2.0).await;
    eprintln!("1 -> 2 segments: job aligned after {:?}", changed.elapsed());
    taskmanagers(3, 1.0).await;

    // Up to max_replicas: every TaskManager used, none warm.
    scale_to(&controller, &stream, 3).await;
    autoscaler.wait_aligned(3.0).await;
    taskmanagers(3, 0.0).await;

    // Scale-down: the job is lowered first; its TaskManagers are released once it runs at 1.
    scale_to(&controller, &stream, 1).await;
    autoscaler.wait_aligned(1.0).await;
    taskmanagers(2, 1.0).await;
    let log = autoscaler.log_text();
    assert!(
        log.contains("job parallelism 3 -> 1")
            && log.contains("keeping 3 TaskManagers until the job runs at 1"),
        "the job was lowered before its TaskManagers were released:\n{log}"
    );
    drop(autoscaler);

    // Back on the stack's reactive JobManager (as the other tests expect it), which refuses a
    // job's parallelism: the prewarmed binding holds and names the setting, and changes
    // nothing.
    stack.restart_flink(&[]).await;
    let before = stack.stack_command(&["taskmanagers"]);
    let autoscaler = AutoscalerProcess::start("prewarmed-on-reactive", &config.yaml());
    eventually(
        "the hold naming reactive mode",
        Duration::from_secs(60),
        || async {
            let log = autoscaler.log_text();
            if log.contains("the JobManager runs in reactive mode (scheduler-mode: reactive)")
                && log.contains("jobmanager.scheduler: adaptive")
            {
                Ok(())
            } else {
                Err(log)
            }
        },
    )
    .await;
    // A few more ticks: still nothing written, nothing refused by Flink.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(stack.stack_command(&["taskmanagers"]), before);
    let log = autoscaler.log_text();
    assert!(
        !log.contains(" scaled ")
            && !log.contains("set the job's parallelism")
            && !log.contains("setting the job's parallelism failed"),
        "{log}"
    );
}

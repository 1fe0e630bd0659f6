//! Nothing lost across rescales, counted end to end: the data generator writes sequenced events
//! into the real Pravega while the busy reader (deploy/flink-job) runs on the stack's real Flink
//! and is rescaled up and down (one TaskManager killed with SIGKILL); once the job has caught up,
//! the sequence numbers it verified in its state account for every event written.

use test_support as support;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::pravega::{controller, create_stream, scale_to};
use support::{eventually, unique_name, Component, Stack};

/// The verifier's gauges (sums over its subtasks), named as Flink's REST API names them.
const COUNTS: [&str; 5] = [
    "verify-sequence.eventsRead",
    "verify-sequence.gaps",
    "verify-sequence.duplicates",
    "verify-sequence.late",
    "verify-sequence.unsequenced",
];

async fn counts(stack: &Stack) -> Result<BTreeMap<String, f64>, String> {
    support::flink::vertex_metric_sums(&stack.flink_rest_url, "verify-sequence", &COUNTS).await
}

fn count(counts: &BTreeMap<String, f64>, name: &str) -> u64 {
    counts[&format!("verify-sequence.{name}")] as u64
}

/// Scales the local TaskManagers to `n` (or, with `kill`, SIGKILLs the newest one instead),
/// then waits until the job runs at `n` and has verified more events than before.
async fn rescale(stack: &Stack, n: u64, kill: bool) {
    let before = eventually("the verifier's counts", Duration::from_secs(60), || {
        counts(stack)
    })
    .await;
    if kill {
        let listed = stack.stack_command(&["taskmanagers", "--list"]);
        let pid = listed
            .lines()
            .last()
            .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("pid=")))
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or_else(|| panic!("no TaskManager pid in {listed:?}"));
        support::send_signal(pid, "KILL");
    } else {
        stack.stack_command(&["taskmanagers", &n.to_string()]);
    }
    let what = format!("the job running at parallelism {n}");
    eventually(&what, Duration::from_secs(180), || async {
        let view = support::flink::view(&stack.flink_rest_url).await?;
        if view.aligned_at(n) {
            Ok(())
        } else {
            Err(format!("{view:?}"))
        }
    })
    .await;
    let read_before = count(&before, "eventsRead");
    eventually(
        "events verified after the rescale",
        Duration::from_secs(120),
        || async {
            let now = counts(stack).await?;
            if count(&now, "eventsRead") > read_before {
                Ok(())
            } else {
                Err(format!("{now:?}"))
            }
        },
    )
    .await;
}

fn start_generator(stack: &Stack, scope: &str, seconds: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_data-generator"))
        .args(["--controller", &stack.pravega_controller, "--scope", scope])
        .args([
            "--stream",
            "load",
            "--scaling",
            "fixed",
            "--shape",
            "constant",
        ])
        .args(["--base", "200", "--duration", &format!("{seconds}s")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start data-generator")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_is_lost_across_rescales_and_a_killed_taskmanager() {
    let stack = Stack::require(&[Component::Pravega, Component::Flink]).await;
    let scope = unique_name("counted");
    let pravega = controller(&stack.pravega_controller);
    let stream = create_stream(&pravega, &scope, "load").await;
    scale_to(&pravega, &stream, 2).await;
    let job_args = format!(
        "--controller {} --scope {scope} --stream load --reader-group busy-{scope} --burn-iterations 10",
        stack.pravega_controller
    );
    stack
        .restart_flink_with_job("io.segmentautoscaler.flink.BusyReaderJob", &job_args)
        .await;

    // Long enough for every step below on a slow machine; the test waits for the end anyway.
    let generator = start_generator(&stack, &scope, 150);
    rescale(&stack, 2, false).await;
    rescale(&stack, 3, false).await;
    // The stream splits while the job reads: readers must follow the successors in order.
    scale_to(&pravega, &stream, 3).await;
    rescale(&stack, 2, true).await;
    rescale(&stack, 1, false).await;
    rescale(&stack, 2, false).await;

    let output = tokio::task::spawn_blocking(move || generator.wait_with_output())
        .await
        .unwrap()
        .expect("the generator's output");
    assert!(output.status.success(), "data-generator failed: {output:?}");
    let summary: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the generator's JSON summary");
    let written = summary["events"].as_u64().expect("events written");
    assert!(written > 0, "{summary}");
    println!("generator: {summary}");

    // Caught up: every sequence number seen (or the verifier stops moving and the counts below
    // say what is missing).
    let mut last = BTreeMap::new();
    let caught_up = tokio::time::timeout(Duration::from_secs(180), async {
        loop {
            if let Ok(now) = counts(&stack).await {
                let unique = count(&now, "eventsRead") - count(&now, "duplicates");
                last = now;
                if unique >= written {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
    .await;
    let read = count(&last, "eventsRead");
    let duplicates = count(&last, "duplicates");
    let lost = written.saturating_sub(read - duplicates);
    println!(
        "events_written {written}, events_read {read}, events_lost {lost}, events_duplicated \
         {duplicates}, gaps {}, late {}",
        count(&last, "gaps"),
        count(&last, "late")
    );
    assert!(caught_up.is_ok(), "the job never caught up: {last:?}");
    assert_eq!(lost, 0, "events lost: {last:?}");
    assert_eq!(count(&last, "gaps"), 0, "sequence gaps: {last:?}");
    assert_eq!(count(&last, "unsequenced"), 0, "{last:?}");
    // Reader positions are restored with the state they belong to: nothing counted twice.
    assert_eq!(duplicates, 0, "events counted twice: {last:?}");
    // ... and that state came from a checkpoint (a job restarted from nothing would re-read the
    // stream from its head and count right too, without proving anything about checkpoints).
    let restored = support::flink::checkpoints(&stack.flink_rest_url)
        .await
        .expect("the job's checkpoint statistics")
        .restored;
    assert!(
        restored.is_some(),
        "the last rescale restored no checkpoint"
    );

    // Leave the stack's Flink as the other tests expect it: the smoke job on one TaskManager.
    stack
        .restart_flink_with_job("io.segmentautoscaler.flink.SmokeJob", "")
        .await;
}

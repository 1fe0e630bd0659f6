//! The stack's Flink runs its job in reactive mode: the job's parallelism follows the number of
//! TaskManagers (one slot each).

use test_support as support;

use std::time::Duration;

use support::{eventually, Component, Stack};

/// Both tests change the number of TaskManagers of the one shared Flink: one at a time.
static TASKMANAGERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits until the job runs with every vertex at `expected`, every subtask RUNNING.
async fn wait_for_parallelism(flink: &str, expected: u64) {
    support::flink::wait_runs_at(flink, expected, Duration::from_secs(120)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_taskmanager_raises_job_parallelism_to_two() {
    let _one_at_a_time = TASKMANAGERS.lock().await;
    let stack = Stack::require(&[Component::Flink]).await;
    let flink = stack.flink_rest_url.as_str();

    stack.stack_command(&["taskmanagers", "1"]);
    wait_for_parallelism(flink, 1).await;
    assert_eq!(stack.stack_command(&["taskmanagers"]).trim(), "1");

    stack.stack_command(&["taskmanagers", "2"]);
    assert_eq!(stack.stack_command(&["taskmanagers"]).trim(), "2");
    let listed = stack.stack_command(&["taskmanagers", "--list"]);
    assert_eq!(
        listed.lines().count(),
        2,
        "two TaskManagers listed: {listed}"
    );
    assert!(
        listed
            .lines()
            .all(|l| l.contains(" pid=") && l.contains(" log=")),
        "{listed}"
    );
    wait_for_parallelism(flink, 2).await;

    // Leave the stack as the test found it: one TaskManager, and the job follows back down.
    stack.stack_command(&["taskmanagers", "1"]);
    wait_for_parallelism(flink, 1).await;
}

/// The TaskManager JVMs running for this stack's Flink (found by their command lines), sorted.
fn taskmanager_processes(run_dir: &std::path::Path) -> Vec<u32> {
    let flink_dir = run_dir.join("flink");
    let flink_dir = flink_dir.to_string_lossy();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            cmdline.contains("TaskManagerRunner") && cmdline.contains(flink_dir.as_ref())
        })
        .collect::<std::collections::BTreeSet<u32>>()
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_scalings_leave_no_taskmanager_unrecorded() {
    let _one_at_a_time = TASKMANAGERS.lock().await;
    let stack = Stack::require(&[Component::Flink]).await;
    stack.stack_command(&["taskmanagers", "1"]);

    // Two callers at once (an autoscaler's command target and a person, say): without the
    // lock both picked the next free id and one TaskManager lost its record.
    let callers: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(&stack.stack_script)
                .args(["taskmanagers", "3"])
                .env("SEGMENT_AUTOSCALER_RUN_DIR", &stack.run_dir)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for caller in callers {
        let output = caller.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(stack.stack_command(&["taskmanagers"]).trim(), "3");
    // Once every JVM started has registered with the JobManager, each must be one on record.
    let flink = stack.flink_rest_url.as_str();
    let jvms = eventually(
        "every TaskManager JVM started and registered",
        Duration::from_secs(120),
        || {
            let run_dir = &stack.run_dir;
            async move {
                let registered = support::flink::view(flink).await?.taskmanagers as usize;
                let jvms = taskmanager_processes(run_dir);
                if jvms.len() >= 3 && registered == jvms.len() {
                    Ok(jvms)
                } else {
                    Err(format!("{} JVMs, {registered} registered", jvms.len()))
                }
            }
        },
    )
    .await;
    let mut recorded: Vec<u32> = stack
        .stack_command(&["taskmanagers", "--list"])
        .lines()
        .filter_map(|line| line.split(" pid=").nth(1)?.split(' ').next()?.parse().ok())
        .collect();
    recorded.sort_unstable();
    assert_eq!(jvms, recorded, "TaskManager JVMs against the recorded pids");
    assert_eq!(
        jvms.len(),
        3,
        "TaskManager JVMs after two concurrent `taskmanagers 3`"
    );

    // Every JVM is recorded, so scaling back down stops all but one.
    stack.stack_command(&["taskmanagers", "1"]);
    let left = taskmanager_processes(&stack.run_dir);
    assert_eq!(
        left.len(),
        1,
        "TaskManager JVMs after `taskmanagers 1`: {left:?}"
    );
    wait_for_parallelism(flink, 1).await;
}

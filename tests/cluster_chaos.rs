//! A shortened chaos run on the real single-node cluster (`deploy/local/demo --kubernetes
//! --chaos`): under the demo's sine load, the leading autoscaler's pod deleted, a TaskManager
//! container SIGKILLed and the JobManager's pod deleted, one at a time. After each the job runs
//! again at parallelism = segments, no write to the target is wrong, and over the whole run no
//! event is lost or counted twice (the busy reader's counts against the generator's).

use test_support as support;

use std::process::Command;

use serde_json::Value;
use support::{repo_root, Component, Stack};

/// The faults of the shortened run, each once.
const FAULTS: [&str; 3] = ["leader-pod", "taskmanager", "jobmanager-pod"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_realigns_after_each_fault_and_loses_no_event() {
    let _stack = Stack::require(&[Component::Cluster]).await;
    let out = repo_root().join("target/chaos-test-out");
    let _ = std::fs::remove_dir_all(&out);
    // One round, seed 16: the leader's pod, a TaskManager, then the JobManager's pod (the
    // slowest to recover: a new JVM, HA leadership, the restore, the TaskManagers registering,
    // 25-56 s here), each 45-50 s after the one before and then once the job is steady (its
    // parallelism at the segments for 5 s), so a fault is not charged a segment change's
    // reaction under way. The sine's period is 20 minutes, not deploy/local/k8s's 5: a split
    // about every 150 s, where a reactive scale-up waits 40-75 s for a new pod on this loaded
    // node (every 37 s it left the job steady too rarely). A fault waits up to 100 s for it;
    // the last comes at the latest 50 s before the end: 360 s leave 150 s of waiting in all.
    let output = Command::new(repo_root().join("deploy/local/demo"))
        .args([
            "--kubernetes",
            "--chaos",
            "--seed",
            "16",
            "--fault-every",
            "45-50",
            "--rounds",
            "1",
            "--period",
            "20m",
        ])
        .args(["--faults", &FAULTS.join(","), "--duration", "360"])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run deploy/local/demo");
    let printed = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the chaos run failed:\n{printed}");

    let read = |name: &str| {
        std::fs::read_to_string(out.join(name))
            .unwrap_or_else(|e| panic!("{name} in {}: {e}\n{printed}", out.display()))
    };
    let outcomes: Value = serde_json::from_str(&read("faults.json")).expect("faults.json");
    let table = read("faults.md");
    let outcomes = outcomes.as_array().expect("a list of outcomes");
    let mut kinds: Vec<&str> = outcomes
        .iter()
        .filter_map(|o| o["fault"]["kind"].as_str())
        .collect();
    kinds.sort_unstable();
    let mut expected = FAULTS.to_vec();
    expected.sort_unstable();
    assert_eq!(kinds, expected, "each fault once:\n{table}");
    for outcome in outcomes {
        assert!(
            !outcome["fault"]["detail"]
                .as_str()
                .unwrap_or_default()
                .starts_with("FAILED"),
            "every fault injected:\n{table}"
        );
        assert!(
            outcome["realigned_after"].is_number(),
            "the job ran again at parallelism = segments after each fault:\n{table}"
        );
        assert_eq!(
            outcome["wrong_writes"].as_array().map(Vec::len),
            Some(0),
            "no wrong write:\n{table}"
        );
    }
    eprintln!("{table}");

    let summary: Value =
        serde_json::from_str(read("summary.line").trim()).expect("summary.line is JSON");
    assert!(
        summary["events_read"].as_u64().unwrap_or(0) > 0,
        "events counted: {summary}"
    );
    assert_eq!(summary["events_lost"], 0, "no event lost: {summary}");
    assert_eq!(summary["events_duplicated"], 0, "none twice: {summary}");
    assert_eq!(summary["events_caught_up"], true, "{summary}");
}

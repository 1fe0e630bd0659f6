//! The stack's Flink runs its job in reactive mode: the job's parallelism follows the number of
//! TaskManagers (one slot each).

mod support;

use std::time::Duration;

use support::{eventually, Component, Stack};

/// State and per-vertex parallelism of the cluster's only job, from `/jobs/:id`.
async fn job_parallelism(
    http: &reqwest::Client,
    flink: &str,
) -> Result<(String, Vec<u64>), String> {
    let get = |url: String| async move {
        let response = http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        response
            .json::<serde_json::Value>()
            .await
            .map_err(|e| format!("{url}: {e}"))
    };
    let overview = get(format!("{flink}/jobs/overview")).await?;
    let jobs = overview["jobs"]
        .as_array()
        .ok_or("no jobs array in /jobs/overview")?;
    let [job] = jobs.as_slice() else {
        return Err(format!("expected one job, got {}", jobs.len()));
    };
    let id = job["jid"].as_str().ok_or("job without jid")?;
    let details = get(format!("{flink}/jobs/{id}")).await?;
    let state = details["state"].as_str().unwrap_or("?").to_string();
    let parallelism = details["vertices"]
        .as_array()
        .ok_or("job without vertices")?
        .iter()
        .filter_map(|v| v["parallelism"].as_u64())
        .collect();
    Ok((state, parallelism))
}

/// Waits until the job runs with every vertex at `expected`.
async fn wait_for_parallelism(http: &reqwest::Client, flink: &str, expected: u64) {
    eventually(
        &format!("job RUNNING at parallelism {expected}"),
        Duration::from_secs(120),
        || async move {
            let (state, parallelism) = job_parallelism(http, flink).await?;
            if state == "RUNNING"
                && !parallelism.is_empty()
                && parallelism.iter().all(|&p| p == expected)
            {
                Ok(())
            } else {
                Err(format!("state {state}, parallelism {parallelism:?}"))
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_taskmanager_raises_job_parallelism_to_two() {
    let stack = Stack::require(&[Component::Flink]).await;
    let http = reqwest::Client::new();
    let flink = stack.flink_rest_url.as_str();

    stack.stack_command(&["taskmanagers", "1"]);
    wait_for_parallelism(&http, flink, 1).await;
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
    wait_for_parallelism(&http, flink, 2).await;

    // Leave the stack as the test found it: one TaskManager, and the job follows back down.
    stack.stack_command(&["taskmanagers", "1"]);
    wait_for_parallelism(&http, flink, 1).await;
}

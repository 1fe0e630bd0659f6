//! The dashboards shipped in `dashboards/` hold valid PromQL: every query, made runnable the
//! way the report runs it, passes the stack's real promtool.

use test_support as support;

use std::process::Command;

use serde_json::{json, Value};
use support::{repo_root, Component, Stack};

/// Runs `promtool check rules` on the queries as recording rules.
fn promtool_accepts(stack: &Stack, name: &str, queries: &[(String, String)]) -> (bool, String) {
    let rules: Vec<Value> = queries
        .iter()
        .enumerate()
        .map(|(i, (_, expr))| json!({"record": format!("dashboard:query_{i}"), "expr": expr}))
        .collect();
    let file = repo_root().join(format!("target/{name}.rules.yml"));
    std::fs::write(
        &file,
        json!({"groups": [{"name": "dashboards", "rules": rules}]}).to_string(),
    )
    .unwrap();
    let output = Command::new(&stack.promtool)
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("run promtool");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_is_valid_promql() {
    let stack = Stack::require(&[Component::Prometheus]).await;
    let queries = demo_report::dashboard_queries(&repo_root().join("dashboards"), "1m")
        .expect("read the dashboards");
    assert!(queries.len() >= 9, "{queries:?}");
    let (ok, output) = promtool_accepts(&stack, "dashboards", &queries);
    assert!(ok, "promtool rejects a dashboard query:\n{output}");
    // The check can fail: a broken query is rejected.
    let (ok, _) = promtool_accepts(
        &stack,
        "broken",
        &[("broken".into(), "sum(rate(x[1m])".into())],
    );
    assert!(!ok, "promtool accepted a broken query");
}

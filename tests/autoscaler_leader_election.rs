//! Acceptance (c): two instances with leader election on the restricted identity's Lease.
//! Only the leader patches (every scale Event names it); stopping it hands over within the
//! lease time, and so does killing it outright.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};
use support::kubernetes::{taskmanagers_at_one, wait_for_replicas, NAMESPACE, TASKMANAGERS};
use support::pravega::{controller, create_stream, scale_to};
use support::{eventually, unique_name, AutoscalerProcess, Component, Stack};

const LEASE_SECS: u64 = 4;
const LEADER: &str = "segment_autoscaler_leader ";

fn config(stack: &Stack, scope: &str, identity: &str) -> String {
    format!(
        r#"
interval: 500ms
pravega: {{controller: "{pravega}"}}
kubernetes: {{kubeconfig: "{kubeconfig}", timeout: 1s}}
leader_election: {{namespace: {NAMESPACE}, lease_name: segment-autoscaler, lease_duration: {LEASE_SECS}s, renew_deadline: 2s, retry_period: 500ms, identity: {identity}}}
bindings:
  - name: ha
    streams: [{scope}/load]
    source: controller
    max_replicas: 8
    scale_down_stabilization: 2s
    target: {{kind: deployment, namespace: {NAMESPACE}, name: {TASKMANAGERS}}}
"#,
        pravega = stack.pravega_controller,
        kubeconfig = stack.kubeconfig_restricted.display(),
    )
}

/// Waits until exactly one of `candidates` reports leading; returns its index.
async fn single_leader(candidates: &[&AutoscalerProcess], timeout: Duration) -> usize {
    eventually("exactly one leader", timeout, || async {
        let mut states = Vec::new();
        for c in candidates {
            states.push(c.metric(LEADER).await);
        }
        let leaders: Vec<usize> = states
            .iter()
            .enumerate()
            .filter(|(_, s)| **s == Some(1.0))
            .map(|(i, _)| i)
            .collect();
        match leaders.as_slice() {
            [one] if states.iter().all(Option::is_some) => Ok(*one),
            _ => Err(format!("leader gauges {states:?}")),
        }
    })
    .await
}

/// Waits until `instance`'s leader gauge reads `value` (1: leads, 0: standby).
async fn wait_for_leader_gauge(
    instance: &AutoscalerProcess,
    value: f64,
    what: &str,
    timeout: Duration,
) {
    eventually(what, timeout, || async {
        match instance.metric(LEADER).await {
            Some(v) if v == value => Ok(()),
            other => Err(format!("leader gauge {other:?}")),
        }
    })
    .await;
}

/// Reporting instances of the scale Events recorded by any of `identities`.
async fn event_reporters(events: &Api<Event>, identities: &[String]) -> Vec<String> {
    let list = events
        .list(&ListParams::default())
        .await
        .expect("admin lists events");
    list.items
        .iter()
        .filter_map(|e| e.reporting_instance.clone())
        .filter(|r| identities.contains(r))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_acts_and_a_standby_takes_over() {
    let stack = Stack::require(&[Component::Pravega, Component::Kubernetes]).await;
    let (deployments, events) = taskmanagers_at_one(&stack).await;
    let controller = controller(&stack.pravega_controller);
    let scope = unique_name("ha");
    let stream = create_stream(&controller, &scope, "load").await;

    let ids: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|s| format!("{scope}-{s}"))
        .collect();
    let a = AutoscalerProcess::start("ha-a", &config(&stack, &scope, &ids[0]));
    let b = AutoscalerProcess::start("ha-b", &config(&stack, &scope, &ids[1]));
    // A Lease left by an earlier run expires within LEASE_SECS.
    let first = single_leader(&[&a, &b], Duration::from_secs(30)).await;
    let (mut leader, standby) = if first == 0 { (a, b) } else { (b, a) };
    let leader_id = ids[first].clone();

    scale_to(&controller, &stream, 2).await;
    wait_for_replicas(&deployments, 2, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let reporters = event_reporters(&events, &ids).await;
    assert!(!reporters.is_empty(), "the scale was recorded as an Event");
    assert!(
        reporters.iter().all(|r| *r == leader_id),
        "only the leader {leader_id} patched: {reporters:?}"
    );
    assert_eq!(standby.metric(LEADER).await, Some(0.0));

    // Graceful stop: the leader releases the Lease and the standby takes over.
    let stopped = Instant::now();
    assert!(
        leader.terminate().success(),
        "the leader exits cleanly on SIGTERM"
    );
    let standby_id = ids[1 - first].clone();
    wait_for_leader_gauge(
        &standby,
        1.0,
        "the standby leads",
        Duration::from_secs(LEASE_SECS + 2),
    )
    .await;
    let graceful = stopped.elapsed();
    scale_to(&controller, &stream, 4).await;
    wait_for_replicas(&deployments, 4, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let reporters = event_reporters(&events, &ids).await;
    assert!(
        reporters.contains(&standby_id),
        "the new leader patched: {reporters:?}"
    );

    // Hard stop: a third instance waits while the new leader is killed without releasing.
    let c = AutoscalerProcess::start("ha-c", &config(&stack, &scope, &ids[2]));
    wait_for_leader_gauge(
        &c,
        0.0,
        "the third instance is up as a standby",
        Duration::from_secs(30),
    )
    .await;
    let killed = Instant::now();
    drop(standby); // SIGKILL: no release, the Lease must expire
    wait_for_leader_gauge(
        &c,
        1.0,
        "the third instance leads after the lease expires",
        Duration::from_secs(LEASE_SECS * 3),
    )
    .await;
    let hard = killed.elapsed();
    eprintln!("handover: graceful {graceful:?}, after SIGKILL {hard:?} (lease {LEASE_SECS}s)");
    assert!(
        hard <= Duration::from_secs(LEASE_SECS + 2),
        "taken over within the lease time (+1 tick): {hard:?}"
    );
    scale_to(&controller, &stream, 1).await;
    wait_for_replicas(&deployments, 1, Duration::from_secs(30)).await;
}

//! Acceptance (c): two instances with leader election on the restricted identity's Lease.
//! Only the leader patches (every scale Event names it); stopping it hands over within the
//! lease time, and so does killing it outright.

use test_support as support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Event;
use kube::api::Api;
use support::autoscaler::{single_leader, LEADER};
use support::config::{deployment, AutoscalerConfig, LEASE_SECS};
use support::kubernetes::event_reporters;
use support::kubernetes::{taskmanagers_at_one, wait_for_replicas, NAMESPACE, TASKMANAGERS};
use support::pravega::{controller, create_stream, scale_to};
use support::{unique_name, AutoscalerProcess, Component, Stack};

/// The reporting instances of the Events recorded by any of `identities`.
async fn reporters_among(events: &Api<Event>, identities: &[String]) -> Vec<String> {
    let mut reporters = event_reporters(events).await;
    reporters.retain(|r| identities.contains(r));
    reporters
}

fn config(stack: &Stack, scope: &str, identity: &str) -> String {
    let load = format!("{scope}/load");
    AutoscalerConfig::binding("ha", &[&load], deployment(NAMESPACE, TASKMANAGERS))
        .pravega(&stack.pravega_controller)
        .kubernetes(&stack.kubeconfig_restricted, Some("1s"))
        .leader_election(NAMESPACE, identity)
        .source("controller")
        .yaml()
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
    let reporters = reporters_among(&events, &ids).await;
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
    standby
        .wait_metric(
            LEADER,
            1.0,
            "the standby leads",
            Duration::from_secs(LEASE_SECS + 2),
        )
        .await;
    let graceful = stopped.elapsed();
    scale_to(&controller, &stream, 4).await;
    wait_for_replicas(&deployments, 4, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let reporters = reporters_among(&events, &ids).await;
    assert!(
        reporters.contains(&standby_id),
        "the new leader patched: {reporters:?}"
    );

    // Hard stop: a third instance waits while the new leader is killed without releasing.
    let c = AutoscalerProcess::start("ha-c", &config(&stack, &scope, &ids[2]));
    c.wait_metric(
        LEADER,
        0.0,
        "the third instance is up as a standby",
        Duration::from_secs(30),
    )
    .await;
    let killed = Instant::now();
    drop(standby); // SIGKILL: no release, the Lease must expire
    c.wait_metric(
        LEADER,
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

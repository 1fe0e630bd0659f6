//! Faults against the real components (issue 14): a frozen kube-apiserver, a frozen leader,
//! a signal during a slow write, and a target someone else scaled to 0. Each asserts the outcome: the loop keeps turning and says
//! so, a deposed leader writes nothing, shutdown releases the Lease in time.
//!
//! The tests share the API server, its `flink-taskmanager` Deployment and the restricted
//! identity's Lease, and one of them freezes the API server: they run one at a time.

use test_support as support;

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Event;
use kube::api::Api;
use support::autoscaler::{single_leader, LEADER};
use support::config::{command, deployment, AutoscalerConfig, LEASE_SECS};
use support::kubernetes::{event_reporters, events_reported_by};
use support::kubernetes::{replicas, set_replicas, taskmanagers_at_one, wait_for_replicas};
use support::kubernetes::{NAMESPACE, TASKMANAGERS};
use support::pravega::{controller, create_stream, scale_to};
use support::{eventually, unique_name, AutoscalerProcess, Component, Frozen, Stack};

/// One test at a time: they share the API server, the Deployment and the Lease.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const ABANDONED: &str = "segment_autoscaler_reconciliations_abandoned_total ";
/// The controller with a 2 s timeout, for a binding of `scope/load`.
fn pravega(stack: &Stack) -> String {
    format!(
        "pravega: {{controller: \"{}\", timeout: 2s}}",
        stack.pravega_controller
    )
}

/// A binding of `scope/load` (controller source) on the stack's TaskManager Deployment.
fn config(stack: &Stack, scope: &str) -> AutoscalerConfig {
    let load = format!("{scope}/load");
    AutoscalerConfig::binding("faults", &[&load], deployment(NAMESPACE, TASKMANAGERS))
        .section(pravega(stack))
        .source("controller")
}

/// `config` with leader election on the restricted identity's Lease.
fn leading(stack: &Stack, config: AutoscalerConfig, identity: &str) -> AutoscalerConfig {
    config
        .kubernetes(&stack.kubeconfig_restricted, Some("1s"))
        .leader_election(NAMESPACE, identity)
}

/// Scale Events on the Deployment recorded by `identity`.
async fn events_by(events: &Api<Event>, identity: &str) -> usize {
    let reporters = event_reporters(events).await;
    reporters.iter().filter(|r| *r == identity).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_api_server_abandons_reconciliations_and_the_loop_recovers() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::require(&[Component::Pravega, Component::Kubernetes]).await;
    let (deployments, _) = taskmanagers_at_one(&stack).await;
    let controller = controller(&stack.pravega_controller);
    let scope = unique_name("frozen-api");
    let stream = create_stream(&controller, &scope, "load").await;
    // The deadline equals the call timeout, so a pass whose scale read hangs is cut by the
    // deadline (the source read before it takes some milliseconds).
    let config = config(&stack, &scope)
        .section("reconcile_timeout: 3s")
        .kubernetes(&stack.kubeconfig_restricted, Some("3s"));
    let autoscaler = AutoscalerProcess::start("frozen-api", &config.yaml());
    eventually(
        "a first reconciliation",
        Duration::from_secs(30),
        || async {
            match autoscaler.get("/readyz").await {
                Some((200, _)) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert_eq!(autoscaler.metric(ABANDONED).await, Some(0.0));

    let apiserver = Frozen::freeze(stack.recorded_pid("kube-apiserver"));
    let frozen_at = Instant::now();
    eventually(
        "reconciliations abandoned while the API server is frozen",
        Duration::from_secs(30),
        || async {
            match autoscaler.metric(ABANDONED).await {
                Some(n) if n >= 2.0 => Ok(()),
                other => Err(format!("abandoned {other:?}")),
            }
        },
    )
    .await;
    let (status, body) = autoscaler.get("/healthz").await.expect("healthz answers");
    assert_eq!(status, 200, "the loop turns: {body}");
    assert!(
        body.contains("reconciliation(s) were abandoned at reconcile_timeout"),
        "{body}"
    );
    // `plan` is bounded the same way: it ends (with an answer or a deadline error).
    let plan_started = Instant::now();
    let mut plan = std::process::Command::new(env!("CARGO_BIN_EXE_segment-autoscaler"))
        .args(["plan", "--config"])
        .arg(autoscaler.log.with_extension("yaml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run plan");
    while plan.try_wait().unwrap().is_none() {
        assert!(
            plan_started.elapsed() < Duration::from_secs(15),
            "plan hangs on the frozen API server"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The loop ticked on: passes kept ending while the API server stayed frozen.
    let abandoned = autoscaler.metric(ABANDONED).await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let later = autoscaler.metric(ABANDONED).await.unwrap();
    assert!(later > abandoned, "abandoned {abandoned} then {later}");
    eprintln!(
        "frozen for {:?}: {later} reconciliations abandoned",
        frozen_at.elapsed()
    );
    drop(apiserver);

    // Thawed: a segment change is followed, and the health note clears.
    scale_to(&controller, &stream, 2).await;
    wait_for_replicas(&deployments, 2, Duration::from_secs(30)).await;
    let (status, body) = autoscaler.get("/healthz").await.expect("healthz answers");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_leader_is_replaced_and_writes_nothing_when_it_resumes() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::require(&[Component::Pravega, Component::Kubernetes]).await;
    let (deployments, events) = taskmanagers_at_one(&stack).await;
    let controller = controller(&stack.pravega_controller);
    let scope = unique_name("frozen-leader");
    let stream = create_stream(&controller, &scope, "load").await;

    let ids = [format!("{scope}-a"), format!("{scope}-b")];
    let a = AutoscalerProcess::start(
        "frozen-leader-a",
        &leading(&stack, config(&stack, &scope), &ids[0]).yaml(),
    );
    let b = AutoscalerProcess::start(
        "frozen-leader-b",
        &leading(&stack, config(&stack, &scope), &ids[1]).yaml(),
    );
    let leader = single_leader(&[&a, &b], Duration::from_secs(30)).await;
    let (old, standby) = if leader == 0 { (&a, &b) } else { (&b, &a) };
    let (old_id, standby_id) = (&ids[leader], &ids[1 - leader]);

    let frozen = Frozen::freeze(old.pid());
    let frozen_at = Instant::now();
    standby
        .wait_metric(
            LEADER,
            1.0,
            "the standby takes over",
            Duration::from_secs(30),
        )
        .await;
    let takeover = frozen_at.elapsed();
    assert!(
        takeover >= Duration::from_secs(LEASE_SECS),
        "took over after {takeover:?}, before the frozen leader's lease could expire"
    );
    let old_events = events_by(&events, old_id).await;
    scale_to(&controller, &stream, 3).await;
    wait_for_replicas(&deployments, 3, Duration::from_secs(30)).await;
    assert!(
        events_by(&events, standby_id).await >= 1,
        "the new leader scaled"
    );

    // Now the new leader freezes too, and the segments change: the old leader resumes with
    // every reason to scale (4 segments, 3 replicas) and a Lease it last renewed before it
    // froze. It must not write until it has seen the new leader's record unchanged for a
    // whole lease, then lead legitimately.
    let standby_frozen = Frozen::freeze(standby.pid());
    let standby_events = events_by(&events, standby_id).await;
    scale_to(&controller, &stream, 4).await;
    drop(frozen);
    let resumed = Instant::now();
    old.wait_metric(
        LEADER,
        0.0,
        "the resumed leader knows it does not lead",
        Duration::from_secs(30),
    )
    .await;
    while resumed.elapsed() < Duration::from_secs(LEASE_SECS - 1) {
        assert_eq!(
            replicas(&deployments, TASKMANAGERS).await,
            3,
            "the resumed leader wrote within {:?}, before the new leader's lease expired",
            resumed.elapsed()
        );
        assert_eq!(old.metric(LEADER).await, Some(0.0));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        events_by(&events, old_id).await,
        old_events,
        "no Event either"
    );
    wait_for_replicas(&deployments, 4, Duration::from_secs(30)).await;
    let retaken = resumed.elapsed();
    assert!(
        retaken >= Duration::from_secs(LEASE_SECS),
        "led again after {retaken:?}"
    );
    assert_eq!(old.metric(LEADER).await, Some(1.0));

    // The other one resumes in turn: it steps down and writes nothing.
    drop(standby_frozen);
    standby
        .wait_metric(
            LEADER,
            0.0,
            "the resumed second leader steps down",
            Duration::from_secs(30),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(replicas(&deployments, TASKMANAGERS).await, 4);
    assert_eq!(events_by(&events, standby_id).await, standby_events);
    // The leader still follows the segments.
    scale_to(&controller, &stream, 2).await;
    wait_for_replicas(&deployments, 2, Duration::from_secs(30)).await;
    assert_eq!(events_by(&events, standby_id).await, standby_events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_during_a_slow_write_exits_and_releases_the_lease_in_time() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::require(&[Component::Pravega, Component::Kubernetes]).await;
    let admin = stack.kube_client(&stack.kubeconfig_admin).await;
    let leases: Api<Lease> = Api::namespaced(admin, NAMESPACE);
    let controller = controller(&stack.pravega_controller);
    let scope = unique_name("sigint");
    let stream = create_stream(&controller, &scope, "load").await;
    let dir = support::repo_root().join("target/test-autoscaler");
    std::fs::create_dir_all(&dir).unwrap();
    let replicas_file = dir.join(format!("{scope}.replicas"));
    std::fs::write(&replicas_file, "1\n").unwrap();
    let started_file = dir.join(format!("{scope}.set-started"));
    let identity = format!("{scope}-a");
    // A command target whose `set` takes 15 s: far longer than a pod's grace period leaves
    // once the Lease must still be released.
    let (replicas, started) = (
        replicas_file.display().to_string(),
        started_file.display().to_string(),
    );
    let slow_set = [
        "sh",
        "-c",
        r#"touch "$1"; sleep 15; echo "$0" > "$2""#,
        "{replicas}",
        &started,
        &replicas,
    ];
    let load = format!("{scope}/load");
    let target = command(&["cat", &replicas], &slow_set, Some("20s"));
    let config = AutoscalerConfig::binding("slow", &[&load], target)
        .section(pravega(&stack))
        .source("controller")
        .stabilization(None);
    let mut autoscaler =
        AutoscalerProcess::start("sigint", &leading(&stack, config, &identity).yaml());
    autoscaler
        .wait_metric(LEADER, 1.0, "it leads", Duration::from_secs(30))
        .await;
    scale_to(&controller, &stream, 2).await;
    eventually(
        "the slow set command runs",
        Duration::from_secs(30),
        || async {
            if started_file.exists() {
                Ok(())
            } else {
                Err("not yet".to_string())
            }
        },
    )
    .await;

    let signalled = Instant::now();
    support::send_signal(autoscaler.pid(), "INT");
    let status = autoscaler
        .wait_exit(Duration::from_secs(10))
        .expect("exited within 10 s of SIGINT, mid-write");
    let took = signalled.elapsed();
    assert!(status.success(), "{status}");
    let lease = leases.get("segment-autoscaler").await.expect("the Lease");
    let holder = lease.spec.and_then(|s| s.holder_identity);
    assert_eq!(holder, None, "the Lease was released on the way out");
    assert_eq!(
        std::fs::read_to_string(&replicas_file).unwrap(),
        "1\n",
        "the interrupted write was abandoned, not completed"
    );
    let log = autoscaler.log_text();
    assert!(
        log.contains("SIGINT received") && log.contains("released the lease"),
        "{log}"
    );
    eprintln!("SIGINT to exit with the Lease released: {took:?}");
    std::fs::remove_file(&replicas_file).ok();
    std::fs::remove_file(&started_file).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_scaled_to_zero_by_someone_else_is_paused_until_set_back() {
    let _serial = SERIAL.lock().await;
    let stack = Stack::require(&[Component::Pravega, Component::Kubernetes]).await;
    let (deployments, events) = taskmanagers_at_one(&stack).await;
    let controller = controller(&stack.pravega_controller);
    let scope = unique_name("paused");
    let stream = create_stream(&controller, &scope, "load").await;
    let identity = format!("{scope}-a");
    let autoscaler = AutoscalerProcess::start(
        "paused",
        &leading(&stack, config(&stack, &scope), &identity).yaml(),
    );
    scale_to(&controller, &stream, 2).await;
    wait_for_replicas(&deployments, 2, Duration::from_secs(30)).await;
    let paused_series = "segment_autoscaler_paused{binding=\"faults\"} ";
    assert_eq!(autoscaler.metric(paused_series).await, Some(0.0));

    // Someone else pauses the job; the segments then change: nothing is written.
    set_replicas(&deployments, TASKMANAGERS, 0).await;
    autoscaler
        .wait_metric(paused_series, 1.0, "paused", Duration::from_secs(30))
        .await;
    scale_to(&controller, &stream, 3).await;
    let held = Instant::now();
    while held.elapsed() < Duration::from_secs(4) {
        assert_eq!(
            replicas(&deployments, TASKMANAGERS).await,
            0,
            "written while paused"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let reasons =
        |list: Vec<Event>| -> Vec<String> { list.into_iter().filter_map(|e| e.reason).collect() };
    let seen = reasons(events_reported_by(&events, &identity).await);
    assert!(seen.contains(&"Paused".to_string()), "{seen:?}");

    // Set back above 0: the segments are followed again.
    set_replicas(&deployments, TASKMANAGERS, 1).await;
    wait_for_replicas(&deployments, 3, Duration::from_secs(30)).await;
    assert_eq!(autoscaler.metric(paused_series).await, Some(0.0));
    let seen = reasons(events_reported_by(&events, &identity).await);
    assert!(seen.contains(&"Resumed".to_string()), "{seen:?}");
}

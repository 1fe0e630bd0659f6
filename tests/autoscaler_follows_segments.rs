//! Acceptance (a): with the restricted identity, the autoscaler makes the TaskManager
//! Deployment's scale follow a stream split 1 -> 2 -> 4 and merged back to 1 through the
//! controller's scale call, with each source. Reaction times are printed (not asserted).

use test_support as support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};
use support::config::{deployment, AutoscalerConfig};
use support::kubernetes::{
    ensure_deployment, set_replicas, wait_for_replicas, NAMESPACE, TASKMANAGERS,
};
use support::pravega::{controller, create_stream, scale_to};
use support::{eventually, unique_name, AutoscalerProcess, Component, Stack};

/// Scale-down stabilization used here, short so the merge shows within the test.
const STABILIZATION_SECS: u64 = 3;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_scale_follows_splits_and_merges() {
    let stack = Stack::require(&[
        Component::Pravega,
        Component::Prometheus,
        Component::Kubernetes,
    ])
    .await;
    let admin = stack.kube_client(&stack.kubeconfig_admin).await;
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), NAMESPACE);
    ensure_deployment(&deployments, TASKMANAGERS).await;
    let controller = controller(&stack.pravega_controller);

    for source in ["controller", "prometheus"] {
        let scope = unique_name("follow");
        let stream = create_stream(&controller, &scope, "load").await;
        set_replicas(&deployments, TASKMANAGERS, 1).await;
        let (name, load) = (format!("follow-{source}"), format!("{scope}/load"));
        let stabilization = format!("{STABILIZATION_SECS}s");
        let config =
            AutoscalerConfig::binding(&name, &[&load], deployment(NAMESPACE, TASKMANAGERS))
                .interval("1s")
                .prometheus(&stack.prometheus_url)
                .pravega(&stack.pravega_controller)
                .kubernetes(&stack.kubeconfig_restricted, None)
                .source(source)
                .stabilization(Some(&stabilization));
        let autoscaler = AutoscalerProcess::start(&name, &config.yaml());
        // The first tick sees 1 segment and 1 replica: nothing to do.
        eventually(
            "the autoscaler reports its first decision",
            Duration::from_secs(30),
            || async {
                autoscaler
                    .metric("segment_autoscaler_desired_replicas")
                    .await
                    .ok_or_else(|| "no desired_replicas yet".to_string())
            },
        )
        .await;

        assert_eq!(autoscaler.get("/healthz").await.map(|r| r.0), Some(200));
        assert_eq!(
            autoscaler.get("/readyz").await.map(|r| r.0),
            Some(200),
            "ready after a reconciliation"
        );

        let (mut ups, mut downs) = (Vec::new(), Vec::new());
        for _round in 0..3 {
            scale_to(&controller, &stream, 2).await;
            ups.push(wait_for_replicas(&deployments, 2, Duration::from_secs(30)).await);
            scale_to(&controller, &stream, 4).await;
            ups.push(wait_for_replicas(&deployments, 4, Duration::from_secs(30)).await);
            scale_to(&controller, &stream, 1).await;
            downs.push(wait_for_replicas(&deployments, 1, Duration::from_secs(60)).await);
        }
        eprintln!(
            "reaction source={source}: scale-up median {:?} over {} (max {:?}); scale-down median {:?} incl. {STABILIZATION_SECS}s stabilization over {}",
            median(ups.clone()),
            ups.len(),
            ups.iter().max().unwrap(),
            median(downs.clone()),
            downs.len()
        );
        assert!(
            downs
                .iter()
                .all(|d| *d >= Duration::from_secs(STABILIZATION_SECS)),
            "a merge never scales down before the stabilization window: {downs:?}"
        );
        assert_eq!(
            autoscaler
                .metric("segment_autoscaler_stream_segments{")
                .await,
            Some(1.0),
            "the segments gauge shows the merged stream"
        );
        drop(autoscaler);
    }

    // Each change was recorded as an Event on the Deployment.
    let events: Api<Event> = Api::namespaced(admin, NAMESPACE);
    let recorded = events
        .list(&ListParams::default())
        .await
        .expect("admin lists events");
    let ours: Vec<&Event> = recorded
        .items
        .iter()
        .filter(|e| e.reporting_component.as_deref() == Some("segment-autoscaler"))
        .filter(|e| e.involved_object.name.as_deref() == Some(TASKMANAGERS))
        .collect();
    assert!(
        ours.iter().any(|e| e.reason.as_deref() == Some("ScaledUp")),
        "ScaledUp events recorded"
    );
    assert!(
        ours.iter()
            .any(|e| e.reason.as_deref() == Some("ScaledDown")),
        "ScaledDown events recorded"
    );
}

//! Issue 13: the Prometheus source on a Pravega with its default 3-minute gauge eviction.
//! - A stream scaled 1 -> 3 and left alone past the eviction: its series is really gone from
//!   the instant query, and `plan` still reports 3, with the age of that evidence.
//! - A second controller instance (a stand-in: one Pravega standalone has one controller) whose
//!   series for a stream appears after the real controller's, with another count: the newer
//!   count wins.
//! - The controller's scrape target down (Pravega stopped with SIGSTOP for a few seconds):
//!   `plan` holds, naming the target and what to do.
//!
//! One test: the SIGSTOP would disturb any other running beside it.

use test_support as support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::config::{command, AutoscalerConfig};
use support::pravega::{controller, create_stream, scale_to};
use support::{eventually, plan_records, prometheus_values, unique_name, Component, Frozen, Stack};

/// A controller-like exporter serving `/prometheus` with the text it holds, scraped by the
/// stack's Prometheus through a file of its `pravega` job's file discovery (removed on drop).
struct StandInController {
    exposition: Arc<Mutex<String>>,
    target_file: std::path::PathBuf,
}

impl StandInController {
    async fn start(stack: &Stack) -> StandInController {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let exposition = Arc::new(Mutex::new(String::new()));
        let served = exposition.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let body = served.lock().unwrap().clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = socket.read(&mut request).await;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        let target_file = stack
            .run_dir
            .join("prometheus/pravega-targets")
            .join(format!("stand-in-{}.json", address.replace(':', "-")));
        std::fs::write(&target_file, format!(r#"[{{"targets": ["{address}"]}}]"#))
            .expect("register the stand-in with Prometheus");
        StandInController {
            exposition,
            target_file,
        }
    }

    fn report(&self, scope: &str, stream: &str, segments: u32) {
        *self.exposition.lock().unwrap() = format!(
            "pravega_controller_segments_count{{host=\"stand-in\",scope=\"{scope}\",stream=\"{stream}\"}} {segments}\n"
        );
    }
}

impl Drop for StandInController {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.target_file);
    }
}

fn config(stack: &Stack, stream: &str) -> String {
    let target = command(&["echo", "1"], &["echo", "{replicas}"], None);
    let prometheus = format!(
        "prometheus: {{url: \"{}\", timeout: 3s, lookback: 30m}}",
        stack.prometheus_url
    );
    AutoscalerConfig::binding("evidence", &[stream], target)
        .default_interval()
        .section(prometheus)
        .source("prometheus")
        .stabilization(None)
        .yaml()
}

/// The one record `plan` prints for a binding on `stream`.
fn plan(stack: &Stack, stream: &str) -> serde_json::Value {
    let records = plan_records("prometheus-source", &config(stack, stream));
    records[0].clone()
}

fn age_of(record: &serde_json::Value) -> Option<f64> {
    record["evidence"][0]["evidence_age_seconds"].as_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_count_outlives_the_gauge_the_newest_change_wins_and_a_lost_target_holds() {
    let stack = Stack::require(&[Component::Pravega, Component::Prometheus]).await;
    let controller = controller(&stack.pravega_controller);
    let scope = unique_name("evidence");
    let evicted = create_stream(&controller, &scope, "evicted").await;
    scale_to(&controller, &evicted, 3).await;
    let scaled_at = Instant::now();
    let contested = create_stream(&controller, &scope, "contested").await;
    scale_to(&controller, &contested, 2).await;
    let gauge = |stream: &str| {
        format!("pravega_controller_segments_count{{scope=\"{scope}\",stream=\"{stream}\"}}")
    };
    let prometheus = stack.prometheus_url.clone();
    eventually("the scaled gauges scraped", Duration::from_secs(60), || {
        let (a, b) = (gauge("evicted"), gauge("contested"));
        let prometheus = prometheus.clone();
        async move {
            let now = (
                prometheus_values(&prometheus, &a).await?,
                prometheus_values(&prometheus, &b).await?,
            );
            match now {
                (a, b) if a == [3.0] && b == [2.0] => Ok(()),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;
    let record = plan(&stack, &format!("{scope}/evicted"));
    assert_eq!(record["segments"], 3, "{record}");
    assert_eq!(age_of(&record), Some(0.0), "reported now: {record}");

    // A second instance reports the contested stream later, with another count: it ran the
    // later scale. Both series are live; the newer report wins, never the sum.
    let stand_in = StandInController::start(&stack).await;
    stand_in.report(&scope, "contested", 4);
    // Twice each: a series seen in one sample only tells no scrape interval, and so not when
    // it began (the judgement then holds, rightly: which report is newer cannot be told).
    eventually(
        "both instances scraped twice",
        Duration::from_secs(60),
        || {
            let (query, prometheus) = (gauge("contested"), prometheus.clone());
            async move {
                let mut values = prometheus_values(&prometheus, &query).await?;
                values.sort_by(f64::total_cmp);
                let samples =
                    prometheus_values(&prometheus, &format!("count_over_time({query}[5m])"))
                        .await?;
                (values == [2.0, 4.0] && samples.len() == 2 && samples.iter().all(|n| *n >= 2.0))
                    .then_some(())
                    .ok_or(format!("{values:?}, samples {samples:?}"))
            }
        },
    )
    .await;
    let record = plan(&stack, &format!("{scope}/contested"));
    assert_eq!(record["segments"], 4, "the newer report wins: {record}");
    assert_eq!(record["action"], "scale_up", "{record}");

    // Past Pravega's default eviction (3 minutes) the gauge is gone from the instant query.
    // The controller's cache drops expired gauges on its next write (Guava's maintenance), so
    // once they have expired a stream is created now and then, as on any cluster in use.
    let mut nudges = 0;
    eventually("the gauge evicted", Duration::from_secs(420), || {
        let (query, prometheus) = (gauge("evicted"), prometheus.clone());
        let nudge = scaled_at.elapsed() > Duration::from_secs(185 + 20 * nudges);
        if nudge {
            nudges += 1;
        }
        let (controller, scope) = (&controller, &scope);
        async move {
            if nudge {
                create_stream(controller, scope, &unique_name("nudge")).await;
            }
            let values = prometheus_values(&prometheus, &query).await?;
            values
                .is_empty()
                .then_some(())
                .ok_or(format!("still {values:?}"))
        }
    })
    .await;
    let evicted_after = scaled_at.elapsed();
    assert!(
        evicted_after >= Duration::from_secs(150),
        "evicted after {evicted_after:?}: is the stack still lengthening the eviction?"
    );
    // ... and the count is still known, as old as its last sample.
    let record = plan(&stack, &format!("{scope}/evicted"));
    assert_eq!(record["segments"], 3, "{record}");
    assert_eq!(record["action"], "scale_up", "{record}");
    let age = age_of(&record).expect("an age of evidence");
    assert!((1.0..120.0).contains(&age), "age {age}: {record}");
    eprintln!(
        "gauge gone from the instant query {evicted_after:?} after the scale ({nudges} streams created to let the cache drop it); plan: 3 segments, evidence {age:.1} s old"
    );
    // The contested stream: the real controller's series is gone too, the stand-in's is live.
    let record = plan(&stack, &format!("{scope}/contested"));
    assert_eq!(record["segments"], 4, "{record}");

    // The real controller's scrape target down: its stream holds, naming the target.
    let pravega = stack.recorded_pid("pravega");
    let target = stack
        .pravega_rest_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let up = format!("up{{job=\"pravega\",instance=\"{target}\"}}");
    let record = {
        let _frozen = Frozen::freeze(pravega);
        eventually(
            "the controller's target down",
            Duration::from_secs(10),
            || {
                let (up, prometheus) = (up.clone(), prometheus.clone());
                async move {
                    let values = prometheus_values(&prometheus, &up).await?;
                    (values == [0.0])
                        .then_some(())
                        .ok_or(format!("up {values:?}"))
                }
            },
        )
        .await;
        plan(&stack, &format!("{scope}/evicted"))
    };
    let reason = record["reason"].as_str().unwrap();
    assert_eq!(record["action"], "hold", "{record}");
    assert!(
        reason.contains(&format!("{target} (job pravega): up == 0"))
            && reason.contains("use source: auto or controller"),
        "{reason}"
    );
    assert_eq!(
        record["evidence"][0]["evidence_age_seconds"],
        serde_json::Value::Null
    );
    // Scraped again: the count is back.
    eventually("the count back", Duration::from_secs(60), || {
        let record = plan(&stack, &format!("{scope}/evicted"));
        async move {
            (record["segments"] == 3)
                .then_some(())
                .ok_or(record.to_string())
        }
    })
    .await;
    drop(stand_in);
}

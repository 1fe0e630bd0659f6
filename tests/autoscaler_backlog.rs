//! Backlog on the real stack: the busy reader made slower per event than the stream's scaling
//! policy assumes (the policy splits a segment at 1000 events/s, one subtask processes about
//! 240: it waits 4 ms per event, as a job calling an external service would), under a steady
//! load that does not split the stream. The job runs aligned at its one segment and falls
//! behind; the autoscaler reports it with the figures that explain it and leaves the stream
//! alone, and the source's `pendingRecords` it reads accounts for the events written and not
//! read. Opted in (`pravega.tune_scaling_policy`), on a second stream, it lowers the stream's
//! target to what one subtask keeps up with and raises its minimum to the segments that would
//! keep the job caught up: the controller splits the stream at once, the job follows and the
//! backlog drains.
//!
//! The job waits rather than burns CPU so that its throughput grows with its subtasks on a
//! two-core machine, as it would on a cluster. The opted-in half starts on a fresh stream: the
//! old segment's backlog is read by one reader before its successors are read (Pravega keeps a
//! key's order), so the backlog at the split sets how long the drain takes.

use test_support as support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pravega_client_shared::ScopedStream;
use support::config::AutoscalerConfig;
use support::pravega::{controller, try_segment_count};
use support::{eventually, unique_name, AutoscalerProcess, Component, Stack};

/// The load, events/s: under the policy's target (no split), over what one subtask processes
/// (about 240), under what three do.
const WRITTEN_PER_SECOND: &str = "450";

/// One scope's load: its generator writing at a steady rate and the busy reader reading it,
/// slower per event than the stream's policy assumes.
struct SlowJob {
    scope: String,
    stream: ScopedStream,
    /// Until stopped by [`SlowJob::stop_writing`].
    generator: Option<Child>,
    flink_rest_url: String,
}

impl SlowJob {
    /// Creates a new scope's stream `load` (events policy, 1000 events/s per segment, at least
    /// 1), restarts the stack's Flink with the busy reader on it, then starts writing: the
    /// backlog starts with the job, not with its start-up.
    async fn start(stack: &Stack, prefix: &str) -> SlowJob {
        let scope = unique_name(prefix);
        let generator = |rate: &str, duration: &str| {
            let mut command = Command::new(support::workspace_binary("data-generator"));
            command
                .args(["--controller", &stack.pravega_controller, "--scope", &scope])
                .args(["--stream", "load", "--scaling", "events"])
                .args(["--target-rate-per-segment", "1000", "--min-segments", "1"])
                .args(["--shape", "constant", "--base", rate])
                .args(["--duration", duration])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            command
        };
        // Nothing written: the generator creates the stream with its policy and exits.
        let created = generator("0", "1s").status().expect("run data-generator");
        assert!(created.success(), "creating the stream: {created}");
        let job_args = format!(
            "--controller {} --scope {scope} --stream load --reader-group busy-{scope} \
             --burn-iterations 0 --wait-micros 4000",
            stack.pravega_controller
        );
        stack
            .restart_flink_with_job("io.segmentautoscaler.flink.BusyReaderJob", &job_args)
            .await;
        let generator = generator(WRITTEN_PER_SECOND, "15m")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start data-generator");
        SlowJob {
            stream: ScopedStream {
                scope: pravega_client_shared::Scope::from(scope.clone()),
                stream: pravega_client_shared::Stream::from("load".to_string()),
            },
            scope,
            generator: Some(generator),
            flink_rest_url: stack.flink_rest_url.clone(),
        }
    }

    /// Stops the generator; the events it wrote (its JSON summary).
    async fn stop_writing(&mut self) -> f64 {
        let generator = self.generator.take().expect("still writing");
        support::send_signal(generator.id(), "TERM");
        let output = tokio::task::spawn_blocking(move || generator.wait_with_output())
            .await
            .unwrap()
            .expect("the generator's output");
        let summary: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("the generator's JSON summary");
        summary["events"].as_u64().expect("events written") as f64
    }

    /// The source's `pendingRecords` (summed over its subtasks) and the events the job read
    /// once, from one snapshot of Flink's metrics.
    async fn pending_and_read(&self) -> Result<(f64, f64), String> {
        let rest = &self.flink_rest_url;
        let source = support::flink::vertex_metric_sums(
            rest,
            "Source",
            &["Source__pravega-reader.pendingRecords"],
        )
        .await?;
        let verified = support::flink::vertex_metric_sums(
            rest,
            "verify-sequence",
            &["verify-sequence.eventsRead", "verify-sequence.duplicates"],
        )
        .await?;
        let read = verified["verify-sequence.eventsRead"] - verified["verify-sequence.duplicates"];
        Ok((source["Source__pravega-reader.pendingRecords"], read))
    }
}

impl Drop for SlowJob {
    fn drop(&mut self) {
        if let Some(mut generator) = self.generator.take() {
            let _ = generator.kill();
            let _ = generator.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aligned_job_slower_than_the_policy_is_reported_falling_behind() {
    let stack = Stack::require(&[Component::Pravega, Component::Flink]).await;
    let mut job = SlowJob::start(&stack, "backlog").await;
    let scope = &job.scope;
    let config = AutoscalerConfig::local_taskmanagers(&stack, scope)
        .flink(&stack.flink_rest_url, "backlog_window: 30s");
    let autoscaler = AutoscalerProcess::start("backlog", &config.yaml());
    autoscaler.wait_aligned(1.0).await;
    autoscaler
        .wait_metric(
            "segment_autoscaler_falling_behind{",
            1.0,
            "the job reported falling behind",
            Duration::from_secs(300),
        )
        .await;
    let log = autoscaler.log_text();
    assert!(
        log.contains("falling behind: the backlog grew from")
            && log.contains("while the job ran aligned at 1 segments")
            && log.contains("the stream's policy splits a segment at 1000 events/s")
            && log.contains("events/s per segment would keep it caught up"),
        "{log}"
    );
    let rate = autoscaler
        .metric("segment_autoscaler_subtask_processing_rate{")
        .await
        .expect("the subtask's processing rate");
    assert!(rate > 0.0 && rate < 1000.0, "{rate} events/s per subtask");
    assert!(
        autoscaler
            .metric("segment_autoscaler_backlog_records{")
            .await
            .unwrap_or(0.0)
            > 0.0
    );
    // Aligned all along: falling behind changes nothing of the one-to-one rule.
    assert_eq!(stack.stack_command(&["taskmanagers"]).trim(), "1");
    assert_eq!(
        policy(&stack, scope).await,
        (1000, 1),
        "not opted in: the stream is left alone"
    );
    drop(autoscaler);

    // pendingRecords against written minus read: once the backlog is well grown, the writes
    // stop (the generator's count is then final; the job's figures come from one snapshot of
    // Flink's metrics, fetched every 10 s, so they agree with each other; the estimate counts
    // from the last reader-group checkpoint, up to one checkpoint interval of reads behind).
    eventually(
        "a backlog over 12 000 events",
        Duration::from_secs(120),
        || async {
            match job.pending_and_read().await? {
                (pending, _) if pending > 12_000.0 => Ok(()),
                (pending, _) => Err(format!("pendingRecords {pending}")),
            }
        },
    )
    .await;
    let written = job.stop_writing().await;
    eventually(
        "pendingRecords = written - read",
        Duration::from_secs(60),
        || async {
            let (pending, read) = job.pending_and_read().await?;
            let unread = written - read;
            let tolerance = (unread * 0.1).max(2000.0);
            let figures =
                format!("pendingRecords {pending}, written {written} - read {read} = {unread}");
            println!("{figures}");
            if unread > 10_000.0 && (pending - unread).abs() <= tolerance {
                Ok(())
            } else {
                Err(figures)
            }
        },
    )
    .await;
    drop(job);

    // Opted in, on a fresh stream and job: the target goes down to what one subtask keeps up
    // with and the minimum up to the segments that would keep the job caught up, within the
    // bounds; the log says from what to what; the controller splits the stream at once, the
    // job follows and the backlog drains.
    let job = SlowJob::start(&stack, "backlog-tuned").await;
    let scope = &job.scope;
    let tuning = AutoscalerProcess::start(
        "backlog-tuning",
        &AutoscalerConfig::local_taskmanagers(&stack, scope)
            // At least the minute Flink's rates average over (a shorter one is refused).
            .flink(&stack.flink_rest_url, "backlog_window: 1m")
            .pravega_fields(
                "tune_scaling_policy: {enabled: true, min_target: 10, max_target: 1000, max_segments: 3}",
            )
            .yaml(),
    );
    let changed = format!("{scope}/load: scaling policy target 1000 -> ");
    let (tuned, segments): (u64, u64) = eventually(
        "the stream's policy tuned",
        Duration::from_secs(240),
        || async {
            let log = tuning.log_text();
            let (_, rest) = log.split_once(&changed).ok_or("no change logged")?;
            let (to, rest) = rest
                .split_once(" events/s per segment, min segments 1 -> ")
                .ok_or("no min segments")?;
            let (segments, why) = rest.split_once(": ").ok_or("no figures")?;
            let to: u64 = to.parse().map_err(|e| format!("{to}: {e}"))?;
            let segments: u64 = segments.parse().map_err(|e| format!("{segments}: {e}"))?;
            let because = format!("a target of {to} events/s per segment would keep it caught up");
            if !why.starts_with("falling behind") || !why.contains(&because) {
                return Err(format!("why: {why}"));
            }
            Ok((to, segments))
        },
    )
    .await;
    assert!((10..1000).contains(&tuned), "{tuned}: within the bounds");
    assert!((2..=3).contains(&segments), "{segments}: within the bounds");
    assert_eq!(
        policy(&stack, scope).await,
        (tuned, segments),
        "the controller's"
    );
    tuning
        .wait_metric(
            "segment_autoscaler_policy_target{",
            tuned as f64,
            "the policy target read again after the change",
            Duration::from_secs(30),
        )
        .await;
    let pravega = controller(&stack.pravega_controller);
    eventually(
        "the stream split to its new minimum",
        Duration::from_secs(60),
        || async {
            match try_segment_count(&pravega, &job.stream).await? {
                n if n as u64 == segments => Ok(()),
                n => Err(format!("{n} segments")),
            }
        },
    )
    .await;
    tuning.wait_aligned(segments as f64).await;
    assert_eq!(
        stack.stack_command(&["taskmanagers"]).trim(),
        segments.to_string(),
        "the job follows the segments, one to one"
    );

    // The backlog drains: it peaks while the old segment is read to its end by one reader,
    // then the job reads faster than the stream is written, down to what a job caught up
    // shows (the estimate runs up to one checkpoint interval of reads, 5 s, ahead).
    let peak = std::cell::Cell::new(0.0_f64);
    eventually("the backlog drained", Duration::from_secs(300), || {
        let (job, peak) = (&job, &peak);
        async move {
            let (pending, _) = job.pending_and_read().await?;
            peak.set(peak.get().max(pending));
            let figures = format!("pendingRecords {pending}, peak {}", peak.get());
            println!("{figures}");
            if peak.get() > 10_000.0 && pending < 3_000.0 {
                Ok(())
            } else {
                Err(figures)
            }
        }
    })
    .await;
    assert_eq!(
        policy(&stack, scope).await,
        (tuned, segments),
        "caught up, the job is not idle: the policy stays"
    );
}

/// The target rate and the fewest segments of `scope/load`'s scaling policy, from the
/// controller's REST API.
async fn policy(stack: &Stack, scope: &str) -> (u64, u64) {
    let stream: serde_json::Value = reqwest::get(format!(
        "{}/v1/scopes/{scope}/streams/load",
        stack.pravega_rest_url
    ))
    .await
    .expect("read the stream")
    .json()
    .await
    .expect("the stream's JSON");
    let policy = &stream["scalingPolicy"];
    (
        policy["targetRate"].as_u64().expect("an event-rate target"),
        policy["minSegments"].as_u64().expect("a minimum"),
    )
}

//! The data generator against the real Pravega of the local stack.

use test_support as support;

use std::process::{Command, Output};
use std::time::Duration;

use support::pravega::{controller, try_segment_count};
use support::{eventually, repo_root, unique_name, Component, Stack};

fn generator(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_data-generator"));
    command.args(args);
    command
}

fn run(mut command: impl std::borrow::BorrowMut<Command>) -> Output {
    command.borrow_mut().output().expect("run data-generator")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn achieved_rate_tracks_a_sine() {
    let stack = Stack::require(&[Component::Pravega]).await;
    let scope = unique_name("sine");
    let report = repo_root().join(format!("target/{scope}.csv"));
    let output = run(generator(&[
        "--controller",
        &stack.pravega_controller,
        "--scope",
        &scope,
        "--stream",
        "load",
        "--shape",
        "sine",
        "--base",
        "2000",
        "--amplitude",
        "1000",
        "--period",
        "20s",
        "--duration",
        "42s",
        "--report",
        report.to_str().unwrap(),
        "--log-format",
        "json",
    ]));
    assert!(
        output.status.success(),
        "data-generator failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("a JSON summary");
    assert_eq!(summary["failed_events"], 0, "{summary}");
    // Logs as a container wants them: one JSON object per line.
    let logs = String::from_utf8_lossy(&output.stderr);
    support::assert_json_logs(&logs);
    assert!(logs.contains(r#""message":"writing""#), "{logs}");

    // Per second after a 2 s warm-up, leaving out the last (partial) second.
    let text = std::fs::read_to_string(&report).expect("the report");
    let rows: Vec<(f64, f64)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<f64> = l.split(',').map(|c| c.parse().unwrap()).collect();
            (cells[1], cells[2])
        })
        .collect();
    let window = &rows[2..rows.len() - 1];
    assert!(
        window.len() >= 38,
        "a 42 s run covers two periods: {} rows",
        rows.len()
    );
    let mean = window.iter().map(|r| r.0).sum::<f64>() / window.len() as f64;
    let rms = (window
        .iter()
        .map(|(target, achieved)| (achieved - target).powi(2))
        .sum::<f64>()
        / window.len() as f64)
        .sqrt();
    eprintln!(
        "sine tracking: mean target {mean:.0}/s, RMS error {rms:.1}/s = {:.2}% of the mean",
        100.0 * rms / mean
    );
    assert!(
        rms <= 0.05 * mean,
        "RMS error {rms:.1}/s exceeds 5% of the mean {mean:.0}/s"
    );
    let (low, high) = window
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), r| (lo.min(r.1), hi.max(r.1)));
    assert!(
        low < 1300.0 && high > 2700.0,
        "the achieved rate really swings: {low}..{high}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drive_segments_takes_the_stream_up_and_back_down() {
    let stack = Stack::require(&[Component::Pravega]).await;
    let scope = unique_name("drive");
    let trace = repo_root().join(format!("target/{scope}-trace.csv"));
    // 500/s -> 3500/s at 5 s -> 500/s at 16 s; 1000/s per segment: 1 -> 4 -> 1 segments.
    std::fs::write(&trace, "seconds,rate\n0,500\n5,3500\n16,500\n").unwrap();
    let _child = KillOnDrop(
        generator(&[
            "--controller",
            &stack.pravega_controller,
            "--scope",
            &scope,
            "--stream",
            "load",
            "--scaling",
            "fixed",
            "--shape",
            "trace",
            "--trace",
            trace.to_str().unwrap(),
            "--drive-segments",
            "--drive-interval",
            "1s",
            "--target-rate-per-segment",
            "1000",
            "--duration",
            "40s",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start data-generator"),
    );

    let pravega = controller(&stack.pravega_controller);
    let stream = pravega_client_shared::ScopedStream::from(format!("{scope}/load").as_str());
    let segments = |expected: usize| {
        let (pravega, stream) = (&pravega, &stream);
        async move {
            eventually(
                &format!("{expected} segments over gRPC"),
                Duration::from_secs(30),
                || async move {
                    match try_segment_count(pravega, stream).await? {
                        n if n == expected => Ok(()),
                        n => Err(format!("{n} segments")),
                    }
                },
            )
            .await
        }
    };
    segments(4).await;
    segments(1).await;
}

/// A child process killed when the test ends, failed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_stream_with_another_policy_is_refused() {
    let stack = Stack::require(&[Component::Pravega]).await;
    let scope = unique_name("policy");
    let common = [
        "--controller",
        &stack.pravega_controller,
        "--scope",
        &scope,
        "--stream",
        "load",
        "--shape",
        "constant",
        "--base",
        "10",
        "--duration",
        "1s",
    ];
    let first =
        run(generator(&common).args(["--scaling", "events", "--target-rate-per-segment", "800"]));
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let again =
        run(generator(&common).args(["--scaling", "events", "--target-rate-per-segment", "800"]));
    assert!(
        again.status.success(),
        "the same policy is accepted: {}",
        String::from_utf8_lossy(&again.stderr)
    );
    let other =
        run(generator(&common).args(["--scaling", "kbytes", "--target-rate-per-segment", "800"]));
    assert_eq!(other.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert!(
        stderr.contains("exists with scaling by event rate, 800 events/s per segment")
            && stderr.contains("by data rate"),
        "{stderr}"
    );
}

#[test]
fn an_unreachable_controller_and_bad_flags_are_clear_errors() {
    let started = std::time::Instant::now();
    let down = run(generator(&[
        "--controller",
        "tcp://127.0.0.1:1",
        "--connect-timeout",
        "6s",
        "--duration",
        "1s",
    ]));
    assert_eq!(down.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&down.stderr);
    // Refused: tried again until --connect-timeout (a controller may start after the
    // generator), then the transport's error.
    assert!(
        stderr.contains("trying again") && started.elapsed() >= Duration::from_secs(4),
        "{stderr}"
    );
    assert!(
        stderr.contains("error: Pravega controller at tcp://127.0.0.1:1: create scope demo:")
            && stderr.contains("Could not connect to controller"),
        "{stderr}"
    );

    let bad = run(generator(&["--shape", "trace"]));
    assert_eq!(bad.status.code(), Some(2), "usage errors exit with 2");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--trace goes with --shape trace"));
    assert_eq!(run(generator(&["--rate", "5"])).status.code(), Some(2));
}

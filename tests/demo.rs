//! The one-command local demo, shortened: on a stack of its own (ports shifted, so the shared
//! test stack is untouched) the load rises and falls once; TaskManagers and the job's
//! parallelism follow up to 2 and back to 1; the report is written; nothing is left running.
//! Once as users start it, once with `--secure` (TLS and authentication on everywhere).

use test_support as support;

use std::process::Command;

use support::repo_root;

/// Ports of the demo's own stack: every default shifted by this.
const PORT_OFFSET: u16 = 100;

/// Status lines (time, load, segments, TaskManagers, parallelism, aligned, backlog) as
/// (TaskManagers, parallelism, aligned) tuples.
fn status_rows(stdout: &str) -> Vec<(String, String, String)> {
    stdout
        .lines()
        .filter(|line| line.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .filter_map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            (cells.len() == 8).then(|| {
                (
                    cells[4].to_string(),
                    cells[5].to_string(),
                    cells[6].to_string(),
                )
            })
        })
        .collect()
}

/// The two demos must not run at once: they share the shifted ports.
static ONE_DEMO_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn shortened_demo_follows_one_rise_and_fall() {
    shortened_demo("target/demo-test-out", &[]);
}

/// The same with `--secure`: every component with TLS and authentication on, each client with
/// its own account; no password appears in anything the demo printed or wrote.
#[test]
fn shortened_secure_demo_follows_one_rise_and_fall() {
    let out = repo_root().join("target/demo-test-secure-out");
    let stdout = shortened_demo("target/demo-test-secure-out", &["--secure"]);
    let passwords = support::secured::passwords();
    assert!(!passwords.is_empty());
    let mut printed = stdout;
    for entry in std::fs::read_dir(&out).expect("the demo's output") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "png") {
            continue;
        }
        printed.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
    }
    for (name, password) in passwords {
        assert!(
            !printed.contains(&password),
            "the demo's output shows the password {name}"
        );
    }
}

/// Runs the shortened demo with `extra` arguments, writing to `out_dir` (under the repository),
/// checks what both variants must show, and returns what it printed (stdout and stderr).
fn shortened_demo(out_dir: &str, extra: &[&str]) -> String {
    let _one = ONE_DEMO_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = repo_root().join(out_dir);
    let _ = std::fs::remove_dir_all(&out);
    // From 200 up to 800 events/s and back over 100 s at 500 per segment: 2 segments from about
    // 25 s to 75 s after the generator starts (once Flink runs), 1 before and after. A new
    // TaskManager JVM can take 30 s to register on a loaded 2-core machine: the 50 s at 2
    // segments leave room for it, the last 65 s for the stabilization and the job's restart.
    let output = Command::new(repo_root().join("deploy/local/demo"))
        .args([
            "--duration",
            "140",
            "--period",
            "100s",
            "--base",
            "500",
            "--amplitude",
            "300",
            "--per-segment",
            "500",
            "--stabilization",
            "10s",
        ])
        .args(extra)
        .arg("--out")
        .arg(&out)
        .env("STACK_PORT_OFFSET", PORT_OFFSET.to_string())
        .env(
            "SEGMENT_AUTOSCALER_RUN_DIR",
            repo_root().join("target/demo-stack"),
        )
        .output()
        .expect("run deploy/local/demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let logs = || {
        ["autoscaler.log", "generator.log"]
            .iter()
            .map(|f| {
                format!(
                    "--- {f} ---\n{}",
                    std::fs::read_to_string(out.join(f)).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    // Its last lines first: where a long log is cut off, they say why.
    let last_lines = stderr.lines().rev().take(6).collect::<Vec<_>>();
    assert!(
        output.status.success(),
        "the demo failed ({}), ending:\n{}\n--- all it printed ---\n{stdout}\n{stderr}\n{}",
        output.status,
        last_lines.into_iter().rev().collect::<Vec<_>>().join("\n"),
        logs()
    );

    let rows = status_rows(&stdout);
    assert!(
        rows.len() >= 10,
        "status lines every few seconds:\n{stdout}"
    );
    let up = rows.iter().position(|(tms, parallelism, aligned)| {
        tms == "2" && parallelism == "2" && aligned == "yes"
    });
    let up = up.unwrap_or_else(|| {
        panic!(
            "TaskManagers and job parallelism reached 2, aligned:\n{stdout}\n{}",
            logs()
        )
    });
    assert!(
        rows[up..]
            .iter()
            .any(|(tms, parallelism, aligned)| tms == "1"
                && parallelism == "1"
                && aligned == "yes"),
        "and came back to 1, aligned:\n{stdout}\n{}",
        logs()
    );

    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("summary.json")).expect("summary.json"),
    )
    .expect("JSON");
    for field in [
        "rescales",
        "alignment_seconds_median",
        "alignment_seconds_max",
        "misaligned_fraction",
    ] {
        assert!(
            summary.get(field).is_some(),
            "summary.json has {field}: {summary}"
        );
    }
    assert!(summary["rescales"].as_u64().unwrap() >= 2, "{summary}");
    assert_eq!(summary["alignment_mode"], "reactive", "{summary}");
    assert!(summary["warm_taskmanager_seconds"].is_null(), "{summary}");
    // Every event the generator wrote was verified by the busy reader, across the rescales.
    assert!(summary["events_written"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(summary["events_caught_up"], true, "{summary}");
    assert_eq!(summary["events_lost"], 0, "{summary}");
    assert_eq!(summary["events_duplicated"], 0, "{summary}");
    // Every Grafana dashboard query returned data during the run.
    let dashboards = &summary["dashboard_queries"];
    assert!(
        dashboards["checked"].as_u64().unwrap_or(0) >= 9,
        "{summary}"
    );
    assert_eq!(
        dashboards["without_data"],
        serde_json::json!([]),
        "dashboard queries without data: {summary}"
    );
    let png = std::fs::read(out.join("report.png")).expect("report.png");
    assert_eq!(&png[1..4], b"PNG");

    // Nothing the demo started is left listening.
    for port in [9090u16, 9091, 6000, 6061, 4000, 19090, 8081, 9464, 9465] {
        let shifted = port + PORT_OFFSET;
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", shifted)).is_err(),
            "port {shifted} still open after the demo"
        );
    }
    format!("{stdout}{stderr}")
}

#[test]
fn an_unknown_alignment_mode_is_refused_before_anything_starts() {
    let output = Command::new(repo_root().join("deploy/local/demo"))
        .args(["--alignment", "eager", "--out"])
        .arg(repo_root().join("target/demo-test-refused"))
        .output()
        .expect("run deploy/local/demo");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--alignment takes reactive or prewarmed, not 'eager'"),
        "{stderr}"
    );
}

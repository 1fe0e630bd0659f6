//! `deploy/local/stack` refuses bad input before it touches anything, and never signals a
//! process it did not start. Each test runs the script on a run directory of its own (and
//! shifted ports), so the stack the other tests use is left alone.

use test_support as support;

use std::path::Path;
use std::process::{Command, Output};

use support::repo_root;

/// Runs `deploy/local/stack ARGS...` on the run directory `run_dir`, with ports shifted.
fn stack(run_dir: &Path, args: &[&str]) -> Output {
    Command::new(repo_root().join("deploy/local/stack"))
        .args(args)
        .env("SEGMENT_AUTOSCALER_RUN_DIR", run_dir)
        .env("STACK_PORT_OFFSET", "700")
        .output()
        .expect("deploy/local/stack runs")
}

fn temp_run_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(support::unique_name(name));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn an_unknown_component_fails_before_any_component_starts() {
    let run_dir = temp_run_dir("stack-unknown");
    let output = stack(&run_dir, &["up", "prometheus", "bogus"]);
    let started = run_dir.join("pids").exists();
    if started {
        // Leave nothing running if the guard is gone.
        stack(&run_dir, &["down", "prometheus"]);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "`up prometheus bogus` succeeded: {stderr}"
    );
    assert!(
        stderr.contains("unknown component 'bogus'"),
        "the error names the component: {stderr}"
    );
    assert!(
        !started,
        "prometheus was started before the unknown name was refused: {stderr}"
    );
    std::fs::remove_dir_all(&run_dir).ok();
}

#[test]
fn a_pid_record_naming_another_process_signals_nothing() {
    let run_dir = temp_run_dir("stack-stale-pid");
    std::fs::create_dir_all(run_dir.join("pids")).unwrap();
    let mut bystander = Command::new("sleep").arg("600").spawn().unwrap();
    let pid = bystander.id();
    // A record from an earlier run whose process is gone and whose pid now belongs to another
    // program: right pid, another start time; and an old record holding the pid alone.
    for record in [format!("{pid} 1\n"), format!("{pid}\n")] {
        std::fs::write(run_dir.join("pids/prometheus.pid"), &record).unwrap();
        let running = stack(&run_dir, &["running", "prometheus"]);
        assert!(
            !running.status.success(),
            "record {record:?} counted as running"
        );
        let down = stack(&run_dir, &["down", "prometheus"]);
        assert!(
            down.status.success(),
            "{}",
            String::from_utf8_lossy(&down.stderr)
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(
            bystander.try_wait().unwrap().is_none(),
            "`down` signalled pid {pid} through the record {record:?}"
        );
        assert!(
            !run_dir.join("pids/prometheus.pid").exists(),
            "the stale record is removed"
        );
    }
    bystander.kill().ok();
    bystander.wait().ok();
    std::fs::remove_dir_all(&run_dir).ok();
}

#[test]
fn a_component_with_a_hyphen_in_its_name_is_dispatched() {
    // prometheus-adapter's functions are prometheus_adapter_*: status, running and down reach
    // them (the name as is would be "command not found", which `status` and `running` would
    // otherwise take for "down").
    let run_dir = temp_run_dir("stack-hyphen");
    for (args, code) in [
        (["status", "prometheus-adapter"], 0),
        (["running", "prometheus-adapter"], 1),
        (["down", "prometheus-adapter"], 0),
    ] {
        let output = stack(&run_dir, &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(!stderr.contains("not found"), "{args:?}: {stderr}");
    }
    std::fs::remove_dir_all(&run_dir).ok();
}

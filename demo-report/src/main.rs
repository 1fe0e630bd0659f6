//! `demo-report`: chart a past run from Prometheus (`report.png`) and summarize its alignment
//! (`summary.json`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use demo_report::{
    dashboard_queries, faults, parse_time, unix_now, write_report, CatchUp, EventCounts, Platform,
    ReportQuery, WRITTEN_SETTLE,
};
use segment_autoscaler::credentials::{Authorization, BasicCredentials, Secret};
use segment_autoscaler::domain::StreamId;
use segment_autoscaler::http::{ClientSecurity, Trust};

/// Charts a past run of the demo from Prometheus (report.png) and summarizes how closely the
/// job's parallelism followed the segments (summary.json, also printed on stdout).
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Prometheus base URL.
    #[arg(long)]
    prometheus: String,
    /// CA certificates (PEM) to trust for an https:// Prometheus.
    #[arg(long)]
    prometheus_ca_file: Option<PathBuf>,
    /// Prometheus basic-auth user; the password comes from --prometheus-password-file.
    #[arg(long, requires = "prometheus_password_file")]
    prometheus_user: Option<String>,
    /// File holding the basic-auth password.
    #[arg(long, requires = "prometheus_user")]
    prometheus_password_file: Option<PathBuf>,
    /// Start: Unix seconds, RFC 3339, `now` or `now-DURATION`.
    #[arg(long, default_value = "now-15m")]
    from: String,
    /// End, in the same forms.
    #[arg(long, default_value = "now")]
    to: String,
    /// Sampling step.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    step: Duration,
    /// A `scope/stream` whose Pravega segment gauge to use (repeatable); default: the
    /// autoscaler's own segment gauges.
    #[arg(long = "stream")]
    streams: Vec<StreamId>,
    /// Task slots per TaskManager (the matching parallelism is segments rounded up to them).
    #[arg(long, default_value_t = 1)]
    slots: u32,
    /// Output folder.
    #[arg(long, default_value = "demo-out")]
    out: PathBuf,
    /// Also evaluate every query of the Grafana dashboards in this folder over the run and
    /// list those without data in summary.json.
    #[arg(long)]
    dashboards: Option<PathBuf>,
    /// Where the run happened, recorded in summary.json.
    #[arg(long, value_enum)]
    platform: Option<Platform>,
    /// Before reporting, wait up to this long for the busy reader to have verified every event
    /// the generator wrote (its figures, read from Prometheus now, go into summary.json).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    catch_up: Duration,
    /// Events the generator wrote, from its exit summary: exact, where Prometheus' last scrape
    /// may miss the last second (default: read from Prometheus).
    #[arg(long)]
    events_written: Option<u64>,
    /// A chaos run's faults (`faults.tsv`, `SECONDS<TAB>KIND<TAB>DETAIL` a line): judge each on
    /// --timeline and --scale-events, writing faults.md (a table) and faults.json.
    #[arg(long, requires_all = ["timeline", "scale_events"])]
    faults: Option<PathBuf>,
    /// The run's timeline, written by `run-timeline`.
    #[arg(long)]
    timeline: Option<PathBuf>,
    /// The target namespace's Events (`kubectl get events -o json`): the scale writes.
    #[arg(long)]
    scale_events: Option<PathBuf>,
    /// The binding's scale-down stabilization: while one waits it out, the job counts as
    /// aligned at the most segments of that window (a fault's cost leaves it aside).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    stabilization: Duration,
    /// The binding's minimum replicas: a write below is wrong.
    #[arg(long, default_value_t = 1)]
    min_replicas: i32,
    /// The binding's maximum replicas: a write above is wrong.
    #[arg(long, default_value_t = i32::MAX)]
    max_replicas: i32,
}

#[tokio::main]
async fn main() -> ExitCode {
    match report(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The event counts once they are final (see [`CatchUp`]), or when `wait` is over.
async fn catch_up(
    query: &ReportQuery,
    wait: Duration,
    written: Option<u64>,
) -> Result<EventCounts, String> {
    let prometheus = query.client().map_err(|e| e.to_string())?;
    let mut rule = CatchUp::new(WRITTEN_SETTLE, written.is_some());
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let figures = query
            .event_figures(&prometheus)
            .await
            .map_err(|e| e.to_string())?;
        let counts = EventCounts::new(written.or(figures.written), figures.verified);
        if rule.is_final(&counts, figures.verifier_in_run, std::time::Instant::now()) {
            return Ok(counts);
        }
        if tokio::time::Instant::now() >= deadline {
            eprintln!("--catch-up {wait:?} over before the counts were final: {counts:?}");
            return Ok(counts);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The CA and basic auth of a secured Prometheus, from the flags.
fn prometheus_security(
    ca_file: Option<&std::path::Path>,
    user: Option<&str>,
    password_file: Option<&std::path::Path>,
) -> Result<ClientSecurity, String> {
    let mut security = ClientSecurity::default();
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("--prometheus-ca-file {}: {e}", path.display()))?;
        let cas = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("--prometheus-ca-file {}: {e}", path.display()))?;
        security.trust = Trust::Only(cas);
    }
    if let (Some(username), Some(path)) = (user, password_file) {
        let password = std::fs::read_to_string(path)
            .map_err(|e| format!("--prometheus-password-file {}: {e}", path.display()))?;
        let credentials = BasicCredentials {
            username: username.to_string(),
            password: Secret::new(&password),
        };
        let authorization = Authorization::basic(&credentials)
            .map_err(|e| format!("--prometheus-password-file: {e}"))?;
        security.authorization = Some(authorization);
    }
    Ok(security)
}

async fn report(cli: Cli) -> Result<(), String> {
    let now = unix_now();
    let query = ReportQuery {
        prometheus: cli.prometheus,
        from: parse_time(&cli.from, now).map_err(|e| format!("--from {e}"))?,
        to: parse_time(&cli.to, now).map_err(|e| format!("--to {e}"))?,
        step: cli.step,
        streams: cli.streams,
        security: prometheus_security(
            cli.prometheus_ca_file.as_deref(),
            cli.prometheus_user.as_deref(),
            cli.prometheus_password_file.as_deref(),
        )?,
    };
    if query.to <= query.from || cli.step.is_zero() || cli.slots == 0 {
        return Err("--to must be after --from, and --step and --slots above 0".into());
    }
    let events = catch_up(&query, cli.catch_up, cli.events_written).await?;
    let mut series = query.fetch().await.map_err(|e| e.to_string())?;
    let dashboards = match &cli.dashboards {
        Some(dir) => {
            let queries = dashboard_queries(dir, "1m").map_err(|e| format!("--dashboards {e}"))?;
            Some(
                query
                    .check_dashboards(&queries)
                    .await
                    .map_err(|e| e.to_string())?,
            )
        }
        None => None,
    };
    let injected = match &cli.faults {
        Some(path) => faults::parse_faults(&read(path)?)?,
        None => Vec::new(),
    };
    series.marks = injected
        .iter()
        .map(|f| (f.at - query.from, f.kind.clone()))
        .collect();
    let summary = write_report(
        &cli.out,
        &series,
        cli.step,
        cli.slots,
        cli.platform,
        dashboards,
        events,
    )
    .map_err(|e| e.to_string())?;
    if let (Some(timeline), Some(events)) = (&cli.timeline, &cli.scale_events) {
        judge_faults(
            &cli.out,
            &injected,
            timeline,
            events,
            cli.stabilization,
            (cli.min_replicas, cli.max_replicas),
            query.from,
        )?;
    }
    println!(
        "{}",
        serde_json::to_string(&summary).expect("summary serializes")
    );
    eprintln!(
        "wrote {} and {}",
        cli.out.join("report.png").display(),
        cli.out.join("summary.json").display()
    );
    Ok(())
}

/// A file's text, or an error naming it.
fn read(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes faults.md and faults.json into `out`: each of `injected` judged on `timeline` (with
/// the binding's scale-down `stabilization` set aside) and the scale writes among `events`,
/// within `bounds` (min, max replicas).
fn judge_faults(
    out: &std::path::Path,
    injected: &[faults::Fault],
    timeline: &std::path::Path,
    events: &std::path::Path,
    stabilization: Duration,
    bounds: (i32, i32),
    start: f64,
) -> Result<(), String> {
    let timeline = faults::parse_timeline(&read(timeline)?)?;
    let events: serde_json::Value =
        serde_json::from_str(&read(events)?).map_err(|e| format!("{}: {e}", events.display()))?;
    let outcomes = faults::outcomes(
        injected,
        &timeline,
        &faults::scale_writes(&events)?,
        stabilization.as_secs_f64(),
        bounds,
    );
    let write = |name: &str, text: String| {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    write(
        "faults.md",
        format!(
            "{}\n{}\n{}\n",
            faults::summary_table(&outcomes),
            faults::table(&outcomes, start),
            demo_report::timeline::coverage(&timeline)
        ),
    )?;
    write(
        "faults.json",
        serde_json::to_string_pretty(&outcomes).expect("outcomes serialize") + "\n",
    )?;
    eprintln!(
        "judged {} faults: {}",
        outcomes.len(),
        out.join("faults.md").display()
    );
    Ok(())
}

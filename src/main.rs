//! The `segment-autoscaler` command: `run` the control loop, or `plan` once without acting.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use segment_autoscaler::config::Config;
use segment_autoscaler::leader::{default_identity, LeaderElector};
use segment_autoscaler::reconcile::{kube_client, needs_kubernetes, Autoscaler, BindingReport};
use segment_autoscaler::telemetry::{self, LogFormat, Telemetry};

/// Keeps Flink TaskManagers aligned one-to-one with the active segments of Pravega streams.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format: readable text for terminals, JSON lines for containers.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control loop until SIGTERM or Ctrl-C.
    Run {
        /// The YAML configuration file (see README).
        #[arg(long)]
        config: PathBuf,
    },
    /// Observe and decide once, change nothing, print one record per binding.
    Plan {
        /// The YAML configuration file (see README).
        #[arg(long)]
        config: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Chart a past run from Prometheus (report.png) and summarize its alignment (summary.json).
    Report {
        /// Prometheus base URL.
        #[arg(long)]
        prometheus: String,
        /// Start: Unix seconds, RFC 3339, `now` or `now-DURATION`.
        #[arg(long, default_value = "now-15m")]
        from: String,
        /// End, in the same forms.
        #[arg(long, default_value = "now")]
        to: String,
        /// Sampling step.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        step: std::time::Duration,
        /// A `scope/stream` whose Pravega segment gauge to use (repeatable); default: the
        /// autoscaler's own segment gauges.
        #[arg(long = "stream")]
        streams: Vec<segment_autoscaler::observe::StreamId>,
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
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    /// A JSON array of records.
    Json,
    /// An aligned table for people.
    Table,
}

/// Exit status of a configuration error.
const EXIT_CONFIG: u8 = 2;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init_logging(cli.log_format);
    let path = match &cli.command {
        Command::Run { config } | Command::Plan { config, .. } => config,
        Command::Report {
            prometheus,
            from,
            to,
            step,
            streams,
            slots,
            out,
            dashboards,
        } => {
            let options = ReportOptions {
                step: *step,
                streams,
                slots: *slots,
                out,
                dashboards: dashboards.as_deref(),
            };
            return exit_with(report(prometheus, from, to, options).await);
        }
    };
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let result = match cli.command {
        Command::Run { .. } => run(config).await,
        Command::Plan { output, .. } => plan_once(config, output).await,
        Command::Report { .. } => unreachable!("handled above"),
    };
    exit_with(result)
}

fn exit_with(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What `report` makes, besides the time range.
struct ReportOptions<'a> {
    step: std::time::Duration,
    streams: &'a [segment_autoscaler::observe::StreamId],
    slots: u32,
    out: &'a std::path::Path,
    dashboards: Option<&'a std::path::Path>,
}

async fn report(
    prometheus: &str,
    from: &str,
    to: &str,
    options: ReportOptions<'_>,
) -> Result<(), String> {
    use segment_autoscaler::report::{dashboard_queries, parse_time, write_report, ReportQuery};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64();
    let query = ReportQuery {
        prometheus: prometheus.to_string(),
        from: parse_time(from, now).map_err(|e| format!("--from {e}"))?,
        to: parse_time(to, now).map_err(|e| format!("--to {e}"))?,
        step: options.step,
        streams: options.streams.to_vec(),
    };
    if query.to <= query.from || options.step.is_zero() || options.slots == 0 {
        return Err("--to must be after --from, and --step and --slots above 0".into());
    }
    let series = query.fetch().await.map_err(|e| e.to_string())?;
    let dashboards = match options.dashboards {
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
    let summary = write_report(
        options.out,
        &series,
        options.step,
        options.slots,
        dashboards,
    )
    .map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::to_string(&summary).expect("summary serializes")
    );
    eprintln!(
        "wrote {} and {}",
        options.out.join("report.png").display(),
        options.out.join("summary.json").display()
    );
    Ok(())
}

async fn setup(
    config: &Config,
    identity: &str,
) -> Result<(Autoscaler, Arc<Telemetry>, Option<kube::Client>), String> {
    let kube = if needs_kubernetes(config) {
        Some(kube_client(config).await.map_err(|e| e.to_string())?)
    } else {
        None
    };
    let telemetry = Telemetry::new(config.interval);
    let autoscaler = Autoscaler::new(config, kube.clone(), identity, telemetry.clone())
        .map_err(|e| e.to_string())?;
    Ok((autoscaler, telemetry, kube))
}

async fn plan_once(config: Config, output: Output) -> Result<(), String> {
    let (mut autoscaler, _, _) = setup(&config, &default_identity()).await?;
    let reports = autoscaler.reconcile(false).await;
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&reports).expect("reports serialize")
        ),
        Output::Table => print!("{}", table(&reports)),
    }
    Ok(())
}

fn table(reports: &[BindingReport]) -> String {
    let cell = |v: Option<u32>| v.map_or("-".to_string(), |n| n.to_string());
    let mut rows = vec![[
        "BINDING", "STREAMS", "SEGMENTS", "SOURCE", "CURRENT", "DESIRED", "ACTION", "REASON",
    ]
    .map(String::from)
    .to_vec()];
    for r in reports {
        rows.push(vec![
            r.binding.clone(),
            r.streams
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            cell(r.segments),
            r.source.clone(),
            cell(r.current_replicas),
            cell(r.desired_replicas),
            r.action.as_str().into(),
            r.reason.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..8)
        .map(|i| rows.iter().map(|row| row[i].len()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:w$}"))
                .collect();
            format!("{}\n", cells.join("  ").trim_end())
        })
        .collect()
}

async fn run(config: Config) -> Result<(), String> {
    let identity = config
        .leader_election
        .as_ref()
        .and_then(|le| le.identity.clone())
        .unwrap_or_else(default_identity);
    let (mut autoscaler, telemetry, kube) = setup(&config, &identity).await?;
    let elector = match (&config.leader_election, kube) {
        (Some(le), Some(client)) => Some(LeaderElector::new(
            client,
            &le.namespace,
            &le.lease_name,
            &identity,
            le.lease_duration,
        )),
        _ => None,
    };

    let listener = telemetry::bind(config.telemetry.listen).await?;
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(telemetry.clone().serve(listener, async {
        server_stopped.await.ok();
    }));
    tracing::info!(
        identity, bindings = config.bindings.len(), interval = ?config.interval,
        telemetry = %config.telemetry.listen, leader_election = elector.is_some(), "segment-autoscaler started"
    );

    let mut ticks = tokio::time::interval(config.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    let mut leading = false;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
        let may_act = match &elector {
            None => true,
            Some(elector) => match elector.try_lead().await {
                Ok(lead) => lead,
                Err(e) => {
                    tracing::warn!(error = %e, "leader election failed; not acting this tick");
                    false
                }
            },
        };
        if may_act != leading && elector.is_some() {
            tracing::info!(identity, leader = may_act, "leadership changed");
        }
        leading = may_act;
        telemetry.metrics.leader.set(i64::from(may_act));
        // A standby still observes and plans, so its history is warm when it takes over.
        autoscaler.reconcile(may_act).await;
    }

    tracing::info!("stopping");
    if let Some(elector) = &elector {
        if let Err(e) = elector.release().await {
            tracing::warn!(error = %e, "could not release the lease; a standby takes over when it expires");
        }
    }
    stop_server.send(()).ok();
    server
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

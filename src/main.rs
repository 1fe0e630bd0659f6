//! The `segment-autoscaler` command: `run` the control loop, or `plan` once without acting.
//! Parses the command line and the configuration, builds everything through
//! [`segment_autoscaler::setup`], and maps failures to exit statuses.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use logging::LogFormat;
use segment_autoscaler::config::Config;
use segment_autoscaler::leader::Leadership;
use segment_autoscaler::reconcile::BindingReport;
use segment_autoscaler::setup::{self, SetupError};
use segment_autoscaler::telemetry::Telemetry;

/// Keeps Flink TaskManagers aligned one-to-one with the active segments of Pravega streams.
#[derive(Parser)]
#[command(
    version,
    about,
    long_about = None,
    after_help = "Each interval: observe (segments, current replicas, the Flink job's status) -> \
plan -> act (the leader only) -> verify. Configuration, metrics and RBAC: README.md. Charts \
and summaries of a past run come from the separate `demo-report` binary."
)]
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
    /// Observe and decide once, change nothing, print one record per binding: its segments,
    /// the source that answered, how old that evidence is (`now`, or the time since Pravega's
    /// evicted gauge was last reported), the replicas, the action and its reason.
    Plan {
        /// The YAML configuration file (see README).
        #[arg(long)]
        config: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Print the SegmentScaler CustomResourceDefinition (YAML), as the chart installs it.
    Crd,
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

/// Why `run` or `plan` could not start or finish.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// Sources, targets or clients could not be built.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The telemetry listener could not be bound.
    #[error("telemetry.listen {address}: {source}")]
    Listen {
        /// The configured address.
        address: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A signal handler could not be installed.
    #[error("signal handler: {0}")]
    Signal(std::io::Error),
    /// `plan` did not finish within `reconcile_timeout`.
    #[error("plan did not finish within reconcile_timeout ({0:?})")]
    Deadline(std::time::Duration),
    /// The telemetry server failed.
    #[error("telemetry server: {0}")]
    Server(std::io::Error),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The Pravega client's per-retry warnings are left out: its failures surface in our logs.
    logging::init(
        cli.log_format,
        "info,pravega_controller_client=error,pravega_client_retry=error",
    );
    let path = match &cli.command {
        Command::Run { config } | Command::Plan { config, .. } => config,
        Command::Crd => {
            print!("{}", segment_autoscaler::segment_scaler::crd_yaml());
            return ExitCode::SUCCESS;
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
        Command::Crd => unreachable!("printed above"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A file or variable the configuration names (a CA, a password) is a configuration
        // error too.
        Err(Failure::Setup(e)) if e.is_configuration() => {
            eprintln!("error: {}: {e}", path.display());
            ExitCode::from(EXIT_CONFIG)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The Kubernetes clients, when the configuration needs them.
async fn kube_clients(config: &Config) -> Result<Option<setup::KubeClients>, SetupError> {
    if setup::needs_kubernetes(config) {
        Ok(Some(setup::kube_clients(&config.kubernetes).await?))
    } else {
        Ok(None)
    }
}

async fn plan_once(config: Config, output: Output) -> Result<(), Failure> {
    let kube = kube_clients(&config).await?;
    let telemetry = Telemetry::new(config.interval, config.reconcile_timeout);
    let mut autoscaler =
        setup::autoscaler(&config, kube.as_ref(), &setup::identity(&config), telemetry)?;
    // SegmentScalers are listed first: without them, plan would show none.
    let pass = async {
        autoscaler.declared_listed().await;
        autoscaler.reconcile(None).await
    };
    let reports = tokio::time::timeout(config.reconcile_timeout, pass)
        .await
        .map_err(|_| Failure::Deadline(config.reconcile_timeout))?;
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
        "BINDING", "STREAMS", "SEGMENTS", "SOURCE", "EVIDENCE", "CURRENT", "DESIRED", "BACKLOG",
        "ACTION", "REASON",
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
            evidence_age(r),
            cell(r.current_replicas),
            cell(r.desired_replicas),
            backlog(r),
            r.action.as_str().into(),
            r.reason.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len())
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

/// The job's backlog in events, with the time to read it when it shrinks (`1200 (40s)`), or
/// `-` when unknown.
fn backlog(report: &BindingReport) -> String {
    let Some(records) = report.backlog.as_ref().and_then(|b| b.records) else {
        return "-".into();
    };
    match report.backlog.as_ref().and_then(|b| b.catch_up_seconds) {
        Some(seconds) if records > 0 => format!(
            "{records} ({})",
            humantime::format_duration(std::time::Duration::from_secs(seconds.ceil() as u64))
        ),
        _ => records.to_string(),
    }
}

/// The oldest evidence among a binding's streams: `now`, an age such as `4m 12s`, or `-`
/// when a count is unknown.
fn evidence_age(report: &BindingReport) -> String {
    let ages: Option<Vec<f64>> = report
        .evidence
        .iter()
        .map(|e| e.evidence_age_seconds)
        .collect();
    match ages.and_then(|ages| ages.into_iter().reduce(f64::max)) {
        None => "-".into(),
        Some(age) if age < 1.0 => "now".into(),
        Some(age) => {
            humantime::format_duration(std::time::Duration::from_secs(age as u64)).to_string()
        }
    }
}

async fn run(config: Config) -> Result<(), Failure> {
    let identity = setup::identity(&config);
    let kube = kube_clients(&config).await?;
    let telemetry = Telemetry::new(config.interval, config.reconcile_timeout);
    let autoscaler = setup::autoscaler(&config, kube.as_ref(), &identity, telemetry.clone())?;
    let elector = setup::leader_elector(&config, kube.as_ref(), &identity)?;

    let address = config.telemetry.listen;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| Failure::Listen { address, source })?;
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(telemetry.clone().serve(listener, async {
        server_stopped.await.ok();
    }));
    tracing::info!(
        identity, bindings = config.bindings.len(), interval = ?config.interval,
        telemetry = %address, leader_election = elector.is_some(), "segment-autoscaler started"
    );

    // Both handlers are installed now, before the first reconciliation: a signal that arrives
    // while a reconciliation runs is kept until the loop looks.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(Failure::Signal)?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(Failure::Signal)?;
    let shutdown = async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
            _ = interrupt.recv() => tracing::info!("SIGINT received"),
        }
    };
    let (stop_campaign, campaign_stopped) = tokio::sync::oneshot::channel::<()>();
    let (leadership, campaign) = match elector {
        Some(elector) => {
            let (leadership, task) = elector.spawn(async {
                campaign_stopped.await.ok();
            });
            (leadership, Some(task))
        }
        None => (Leadership::unconditional(), None),
    };
    autoscaler
        .run(
            config.interval,
            config.reconcile_timeout,
            leadership,
            shutdown,
        )
        .await;
    // The campaign releases the Lease, within its own bound, before the process exits.
    stop_campaign.send(()).ok();
    if let Some(campaign) = campaign {
        campaign.await.ok();
    }

    stop_server.send(()).ok();
    match server.await {
        Ok(served) => served.map_err(Failure::Server),
        Err(e) => Err(Failure::Server(std::io::Error::other(e))),
    }
}

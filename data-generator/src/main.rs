//! `data-generator`: writes a shaped event load into a Pravega stream, for demos and benchmarks.

mod drive;
mod keys;
mod metrics;
mod pacer;
mod security;
mod shape;
mod stream;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser, ValueEnum};
use futures::stream::{FuturesUnordered, StreamExt};
use pravega_client::client_factory::ClientFactoryAsync;
use pravega_client_shared::{ScaleType, Scaling, Scope, ScopedStream, Stream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::keys::{payload, SequencedKeys};
use crate::metrics::Metrics;
use crate::pacer::Pacer;
use crate::shape::LoadShape;

/// Writes a shaped event load into a Pravega stream.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Log format: readable text for terminals, JSON lines for containers.
    #[arg(long, value_enum, default_value_t = logging::LogFormat::Text)]
    log_format: logging::LogFormat,
    /// Pravega controller URI: tcp://host:port, or tls://host:port with --tls-ca-file.
    #[arg(long, default_value = "tcp://127.0.0.1:9090")]
    controller: String,
    #[command(flatten)]
    security: security::SecurityArgs,
    /// Scope (created if missing).
    #[arg(long, default_value = "demo")]
    scope: String,
    /// Stream (created if missing, with the scaling policy below).
    #[arg(long, default_value = "load")]
    stream: String,
    /// The stream's scaling policy: by event rate, by data rate (KB/s), or a fixed count.
    #[arg(long, value_enum, default_value_t = ScalingKind::Events)]
    scaling: ScalingKind,
    /// Target per segment: events/s (events), KB/s (kbytes). Also the divisor of --drive-segments.
    #[arg(long, default_value_t = 1000)]
    target_rate_per_segment: u32,
    /// How many segments a split creates (Pravega's scale factor).
    #[arg(long, default_value_t = 2)]
    scale_factor: u32,
    /// Fewest segments (and the count of a fixed stream).
    #[arg(long, default_value_t = 1)]
    min_segments: u32,
    /// Load shape.
    #[arg(long, value_enum, default_value_t = ShapeKind::Sine)]
    shape: ShapeKind,
    /// Base rate, events/s (sine: mean; step/square: low; ramp: start; constant: the rate).
    #[arg(long, default_value_t = 1000.0)]
    base: f64,
    /// Amplitude, events/s (sine: swing; step/square: added when high; ramp: total rise).
    #[arg(long, default_value_t = 500.0)]
    amplitude: f64,
    /// Period of the sine or square, duration of the ramp; step rises at half of it.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    period: Duration,
    /// Phase of the sine, radians.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    phase: f64,
    /// CSV of `seconds,rate` points for --shape trace.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Bytes per event.
    #[arg(long, default_value_t = 100)]
    event_size: usize,
    /// Payload text, repeated or cut to --event-size (default: a sequence number and filler).
    #[arg(long)]
    payload: Option<String>,
    /// Routing keys, spread over the key space and taken in turn; each event carries its key
    /// and that key's sequence number (what the busy reader verifies).
    #[arg(long, default_value_t = 4096)]
    keys: u64,
    /// Also set the stream's segment count from the load with the controller's scale call.
    #[arg(long)]
    drive_segments: bool,
    /// Most segments --drive-segments creates.
    #[arg(long, default_value_t = 64)]
    max_segments: u32,
    /// Least time between two scale calls of --drive-segments.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    drive_interval: Duration,
    /// Stop after this long (else on SIGTERM or Ctrl-C).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Serve Prometheus metrics on HOST:PORT at /metrics.
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,
    /// After the last event is flushed, keep serving the metrics this long before exiting, so
    /// Prometheus scrapes the final counts (more than its scrape interval).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    metrics_linger: Duration,
    /// Write a per-second CSV `second,target_rate,achieved_rate` here on exit.
    #[arg(long)]
    report: Option<PathBuf>,
    /// After a stall, send at most this much of the missed load (bounded catch-up).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    max_catch_up: Duration,
    /// Most events written but not yet acknowledged.
    #[arg(long, default_value_t = 10_000)]
    max_in_flight: usize,
    /// How long to wait for the controller at start-up (tried again every second while it
    /// cannot be reached).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    connect_timeout: Duration,
    /// Attempts per event before it is counted as failed.
    #[arg(long, default_value_t = 5)]
    attempts: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ScalingKind {
    /// By event rate (events/s per segment).
    Events,
    /// By data rate (KB/s per segment).
    Kbytes,
    /// A fixed number of segments.
    Fixed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ShapeKind {
    /// base + amplitude * sin(2π t / period + phase).
    Sine,
    /// base.
    Constant,
    /// base, then base + amplitude from half of --period on.
    Step,
    /// Alternating base and base + amplitude, each for half of --period.
    Square,
    /// base rising linearly to base + amplitude over --period.
    Ramp,
    /// Replay --trace.
    Trace,
    /// As fast as the stream acknowledges (within --max-in-flight): the write benchmark.
    Unthrottled,
}

impl Cli {
    /// Checks what clap cannot; `Err` is a usage error (exit status 2).
    fn load_shape(&self) -> Result<Option<LoadShape>, String> {
        if !(self.base.is_finite() && self.base >= 0.0) {
            return Err("--base must be a non-negative number".into());
        }
        if !(self.amplitude.is_finite() && self.amplitude >= 0.0) {
            return Err("--amplitude must be a non-negative number".into());
        }
        if self.period.is_zero() {
            return Err("--period must be longer than 0".into());
        }
        if self.event_size == 0 || self.event_size > 8 * 1024 * 1024 {
            return Err("--event-size must be between 1 and 8388608 bytes".into());
        }
        if self.target_rate_per_segment == 0 || self.min_segments == 0 || self.scale_factor == 0 {
            return Err(
                "--target-rate-per-segment, --scale-factor and --min-segments must be at least 1"
                    .into(),
            );
        }
        if self.max_segments < self.min_segments {
            return Err("--max-segments must be at least --min-segments".into());
        }
        if self.keys == 0 || self.max_in_flight == 0 || self.attempts == 0 {
            return Err("--keys, --max-in-flight and --attempts must be at least 1".into());
        }
        if self.keys > MAX_KEYS {
            return Err(format!("--keys: at most {MAX_KEYS} (each keeps a counter)"));
        }
        if self.trace.is_some() != (self.shape == ShapeKind::Trace) {
            return Err("--trace goes with --shape trace, and --shape trace needs --trace".into());
        }
        if self.drive_segments && self.shape == ShapeKind::Unthrottled {
            return Err("--drive-segments needs a shaped load, not --shape unthrottled".into());
        }
        let (base, amplitude, period) = (self.base, self.amplitude, self.period);
        Ok(Some(match self.shape {
            ShapeKind::Sine => LoadShape::Sine {
                base,
                amplitude,
                period,
                phase: self.phase,
            },
            ShapeKind::Constant => LoadShape::Constant { base },
            ShapeKind::Step => LoadShape::Step {
                base,
                amplitude,
                at: period / 2,
            },
            ShapeKind::Square => LoadShape::Square {
                base,
                amplitude,
                period,
            },
            ShapeKind::Ramp => LoadShape::Ramp {
                base,
                amplitude,
                period,
            },
            ShapeKind::Trace => {
                LoadShape::trace_from_csv(self.trace.as_deref().expect("checked above"))?
            }
            ShapeKind::Unthrottled => return Ok(None),
        }))
    }

    fn scaling(&self) -> Scaling {
        let (scale_type, target_rate, scale_factor) = match self.scaling {
            ScalingKind::Events => (
                ScaleType::ByRateInEventsPerSec,
                self.target_rate_per_segment,
                self.scale_factor,
            ),
            ScalingKind::Kbytes => (
                ScaleType::ByRateInKbytesPerSec,
                self.target_rate_per_segment,
                self.scale_factor,
            ),
            ScalingKind::Fixed => (ScaleType::FixedNumSegments, 0, 0),
        };
        let clamp = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        Scaling {
            scale_type,
            target_rate: clamp(target_rate),
            scale_factor: clamp(scale_factor),
            min_num_segments: clamp(self.min_segments),
        }
    }
}

/// An event written and not yet acknowledged.
struct InFlight {
    receiver: tokio::sync::oneshot::Receiver<Result<(), pravega_client::error::Error>>,
    event: PendingEvent,
    sent: Instant,
    _permit: OwnedSemaphorePermit,
}

/// Most routing keys --keys accepts.
const MAX_KEYS: u64 = 1_000_000;

/// What is needed to write an event again.
struct PendingEvent {
    key: String,
    payload: Vec<u8>,
    second: usize,
    attempt: u32,
}

/// Acknowledged events per second of the run (by the second they were first sent in).
type AckedPerSecond = Arc<Mutex<Vec<u64>>>;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(
        cli.log_format,
        "info,pravega_client=warn,pravega_controller_client=error,pravega_client_retry=error",
    );
    let shape = match cli.load_shape() {
        Ok(shape) => shape,
        Err(message) => Cli::command()
            .error(clap::error::ErrorKind::ValueValidation, message)
            .exit(),
    };
    match run(cli, shape).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Creates the scope and stream, trying again while the controller cannot be reached (it may
/// start after this process) until --connect-timeout has passed; any other error ends at once.
async fn ensure_stream_within(
    cli: &Cli,
    controller: &dyn pravega_controller_client::ControllerClient,
    stream: &ScopedStream,
) -> Result<(), String> {
    let deadline = Instant::now() + cli.connect_timeout;
    let mut last: Option<stream::EnsureError> = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let attempt = stream::ensure_stream(controller, stream, cli.scaling());
        let error = match tokio::time::timeout(left, attempt).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error)) => error,
            Err(_) => {
                return Err(match last {
                    Some(error) => format!("Pravega controller at {}: {error}", cli.controller),
                    None => format!(
                        "cannot reach the Pravega controller at {} (no answer in {:?})",
                        cli.controller, cli.connect_timeout
                    ),
                })
            }
        };
        if !error.unreachable || Instant::now() + Duration::from_secs(1) >= deadline {
            return Err(format!("Pravega controller at {}: {error}", cli.controller));
        }
        tracing::warn!(controller = %cli.controller, %error, "controller not reachable yet; trying again");
        last = Some(error);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn run(cli: Cli, shape: Option<LoadShape>) -> Result<(), String> {
    let config = cli.security.client_config(&cli.controller)?;
    let handle = tokio::runtime::Handle::current();
    // With auth on, the client blocks on the runtime while it is made: not on a runtime thread.
    let factory = std::thread::scope(|scope| {
        scope
            .spawn(|| ClientFactoryAsync::new(config, handle))
            .join()
            .map_err(|_| "the Pravega client could not be made".to_string())
    })?;
    let stream = ScopedStream {
        scope: Scope::from(cli.scope.clone()),
        stream: Stream::from(cli.stream.clone()),
    };
    ensure_stream_within(&cli, factory.controller_client(), &stream).await?;

    let metrics = Arc::new(Metrics::default());
    if let Some(address) = cli.metrics_addr {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| format!("--metrics-addr {address}: {e}"))?;
        tokio::spawn(metrics.clone().serve(listener));
    }

    let start = Instant::now();
    let acked: AckedPerSecond = Arc::default();
    let (retry_tx, mut retry_rx) = mpsc::unbounded_channel::<PendingEvent>();
    let (flight_tx, flight_rx) = mpsc::unbounded_channel::<InFlight>();
    let acks = tokio::spawn(track_acks(
        flight_rx,
        retry_tx,
        acked.clone(),
        metrics.clone(),
        cli.attempts,
        start,
    ));
    let drive = match (&shape, cli.drive_segments) {
        (Some(shape), true) => Some(tokio::spawn(drive_segments(
            factory.clone(),
            stream.clone(),
            shape.clone(),
            DriveSettings::from_cli(&cli),
            metrics.clone(),
            start,
        ))),
        _ => None,
    };

    let mut writer = factory.create_event_writer(stream.clone());
    let in_flight = Arc::new(Semaphore::new(cli.max_in_flight));
    let mut pacer = Pacer::new(cli.max_catch_up);
    let mut ticks = tokio::time::interval(Duration::from_millis(10));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    let deadline = cli.duration.map(|d| start + d);
    let mut keys = SequencedKeys::new(cli.keys as usize);
    let (mut last_tick, mut last_rate) = (
        start,
        shape.as_ref().map_or(0.0, |s| s.rate_at(Duration::ZERO)),
    );
    tracing::info!(%stream, controller = %cli.controller, shape = ?cli.shape, "writing");
    'writing: loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        let elapsed = now - start;
        let rate = shape.as_ref().map_or(0.0, |s| s.rate_at(elapsed));
        metrics.target_rate.set(rate);
        let due = match &shape {
            Some(_) => pacer.due(last_rate, rate, now - last_tick),
            None => in_flight.available_permits() as u64,
        };
        (last_tick, last_rate) = (now, rate);
        let second = elapsed.as_secs() as usize;
        // Retries first, then the new events due now.
        let retries = std::iter::from_fn(|| retry_rx.try_recv().ok());
        let fresh = (0..due).map(|_| {
            let key = keys.next_key();
            let sequence = keys.take_sequence(key);
            PendingEvent {
                key: keys.key(key).to_string(),
                payload: payload(
                    keys.key(key),
                    sequence,
                    cli.payload.as_deref(),
                    cli.event_size,
                ),
                second,
                attempt: 1,
            }
        });
        for event in retries.chain(fresh).collect::<Vec<_>>() {
            // Waiting for room in flight, or for the writer to take the event, must still end at
            // the deadline or on a signal: a stream that stops acknowledging (or a writer stuck
            // reconnecting) would otherwise hold the generator forever.
            let until_deadline = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            let write = async {
                let permit = in_flight
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("semaphore is never closed");
                let receiver = writer
                    .write_event_by_routing_key(event.key.clone(), event.payload.clone())
                    .await;
                (permit, receiver)
            };
            let (permit, receiver) = tokio::select! {
                written = write => written,
                _ = until_deadline => break 'writing,
                _ = terminate.recv() => break 'writing,
                _ = tokio::signal::ctrl_c() => break 'writing,
            };
            if flight_tx
                .send(InFlight {
                    receiver,
                    event,
                    sent: Instant::now(),
                    _permit: permit,
                })
                .is_err()
            {
                break 'writing;
            }
        }
    }

    tracing::info!("stopping: flushing what is in flight");
    let flushed = tokio::time::timeout(Duration::from_secs(30), writer.flush()).await;
    drop(flight_tx);
    let _ = tokio::time::timeout(Duration::from_secs(30), acks).await;
    if let Some(drive) = drive {
        drive.abort();
    }
    let seconds = start.elapsed().as_secs_f64();
    let summary = metrics.summary(seconds);
    if cli.metrics_addr.is_some() && !cli.metrics_linger.is_zero() {
        tracing::info!(linger = ?cli.metrics_linger, "serving the final counts before exiting");
        tokio::time::sleep(cli.metrics_linger).await;
    }
    // A closed stdout (the reader went away) is no reason to fail the run.
    let _ = writeln!(std::io::stdout(), "{summary}");
    if let Some(path) = &cli.report {
        write_report(path, shape.as_ref(), &acked.lock().expect("lock"))?;
    }
    match flushed {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("flush on exit failed: {e}")),
        Err(_) => Err("flush on exit did not finish within 30 s".into()),
    }
}

/// Settings of --drive-segments.
struct DriveSettings {
    per_segment: f64,
    min: u32,
    max: u32,
    interval: Duration,
    /// KB per event when the policy is by data rate (then rates are compared in KB/s).
    kbytes_per_event: Option<f64>,
}

impl DriveSettings {
    fn from_cli(cli: &Cli) -> DriveSettings {
        DriveSettings {
            per_segment: f64::from(cli.target_rate_per_segment),
            min: cli.min_segments,
            max: cli.max_segments,
            interval: cli.drive_interval,
            kbytes_per_event: (cli.scaling == ScalingKind::Kbytes)
                .then(|| cli.event_size as f64 / 1024.0),
        }
    }

    /// The load in the unit of --target-rate-per-segment.
    fn load(&self, events_per_second: f64) -> f64 {
        events_per_second * self.kbytes_per_event.unwrap_or(1.0)
    }
}

/// Every second: the segments the current target rate calls for; a scale call when they differ
/// from the stream's and the last call is at least the drive interval ago.
async fn drive_segments(
    factory: ClientFactoryAsync,
    stream: ScopedStream,
    shape: LoadShape,
    settings: DriveSettings,
    metrics: Arc<Metrics>,
    start: Instant,
) {
    let controller = factory.controller_client();
    let mut last_scale: Option<Instant> = None;
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    loop {
        ticks.tick().await;
        let rate = settings.load(shape.rate_at(start.elapsed()));
        let wanted = drive::segments_for(rate, settings.per_segment, settings.min, settings.max);
        metrics.segments_target.set(i64::from(wanted));
        if last_scale.is_some_and(|t| t.elapsed() < settings.interval) {
            continue;
        }
        match drive::current_segments(controller, &stream).await {
            Ok(current) if current == wanted => {}
            Ok(current) => match drive::scale_to(controller, &stream, wanted).await {
                Ok(()) => {
                    tracing::info!(%stream, from = current, to = wanted, rate, "scaled the stream");
                    last_scale = Some(Instant::now());
                }
                Err(e) => tracing::warn!(%stream, error = %e, "scale call failed; will retry"),
            },
            Err(e) => tracing::warn!(%stream, error = %e, "could not read the segment count"),
        }
    }
}

/// Awaits acknowledgements: counts successes per second of sending, measures latency, and sends
/// failed events back for another attempt (counted as errors; after the last, as failed).
async fn track_acks(
    mut flights: mpsc::UnboundedReceiver<InFlight>,
    retry: mpsc::UnboundedSender<PendingEvent>,
    acked: AckedPerSecond,
    metrics: Arc<Metrics>,
    attempts: u32,
    start: Instant,
) {
    let mut pending = FuturesUnordered::new();
    let mut open = true;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            flight = flights.recv(), if open => match flight {
                Some(f) => pending.push(async move {
                    let result = f.receiver.await;
                    (result, f.event, f.sent.elapsed())
                }),
                None => open = false,
            },
            Some((result, event, latency)) = pending.next() => {
                match result {
                    Ok(Ok(())) => {
                        metrics.acknowledged(event.payload.len(), latency);
                        let mut acked = acked.lock().expect("lock");
                        if acked.len() <= event.second {
                            acked.resize(event.second + 1, 0);
                        }
                        acked[event.second] += 1;
                    }
                    other => {
                        let error = match other {
                            Ok(Err(e)) => e.to_string(),
                            _ => "the writer dropped the event".into(),
                        };
                        metrics.write_errors.inc();
                        if event.attempt < attempts {
                            tracing::debug!(%error, attempt = event.attempt, "write failed; retrying");
                            let _ = retry.send(PendingEvent { attempt: event.attempt + 1, ..event });
                        } else {
                            metrics.failed_events.inc();
                            tracing::warn!(%error, attempts, "event failed after every attempt");
                        }
                    }
                }
            }
            _ = ticker.tick() => {
                // The last whole second (none yet during the first).
                let previous = (start.elapsed().as_secs() as usize).checked_sub(1);
                let last = previous.and_then(|s| acked.lock().expect("lock").get(s).copied()).unwrap_or(0);
                metrics.achieved_rate.set(last as f64);
            }
            else => break,
        }
        if !open && pending.is_empty() {
            break;
        }
    }
}

/// Per-second CSV: the target integrated over each second, and the events acknowledged among
/// those sent in it.
fn write_report(
    path: &std::path::Path,
    shape: Option<&LoadShape>,
    acked: &[u64],
) -> Result<(), String> {
    let mut text = String::from("second,target_rate,achieved_rate\n");
    for (second, achieved) in acked.iter().enumerate() {
        let target = shape.map_or(f64::NAN, |s| {
            (0..100)
                .map(|i| {
                    s.rate_at(Duration::from_secs_f64(
                        second as f64 + (f64::from(i) + 0.5) / 100.0,
                    ))
                })
                .sum::<f64>()
                / 100.0
        });
        text.push_str(&format!("{second},{target:.3},{achieved}\n"));
    }
    std::fs::write(path, text).map_err(|e| format!("--report {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("data-generator").chain(args.iter().copied()))
            .expect("valid flags")
    }

    #[test]
    fn defaults_make_a_sine_on_an_event_rate_stream() {
        let cli = parse(&[]);
        assert!(matches!(
            cli.load_shape().unwrap(),
            Some(LoadShape::Sine { .. })
        ));
        assert_eq!(cli.scaling().scale_type, ScaleType::ByRateInEventsPerSec);
        assert_eq!(cli.scaling().target_rate, 1000);
    }

    #[test]
    fn usage_errors_are_caught() {
        for args in [
            &["--shape", "trace"][..],
            &["--trace", "x.csv"],
            &["--base=-5"],
            &["--period", "0s"],
            &["--event-size", "0"],
            &["--min-segments", "3", "--max-segments", "2"],
            &["--keys", "0"],
            &["--keys", "1000001"],
            &["--shape", "unthrottled", "--drive-segments"],
        ] {
            assert!(
                parse(args).load_shape().is_err(),
                "{args:?} should be a usage error"
            );
        }
        assert!(Cli::try_parse_from(["data-generator", "--shape", "zigzag"]).is_err());
    }

    #[test]
    fn step_rises_half_way_through_its_period() {
        let cli = parse(&[
            "--shape",
            "step",
            "--base",
            "100",
            "--amplitude",
            "300",
            "--period",
            "20s",
        ]);
        let shape = cli.load_shape().unwrap().unwrap();
        assert_eq!(shape.rate_at(Duration::from_secs(5)), 100.0);
        assert_eq!(shape.rate_at(Duration::from_secs(15)), 400.0);
        assert_eq!(
            shape.rate_at(Duration::from_secs(25)),
            400.0,
            "a step stays up"
        );
    }

    #[test]
    fn kbytes_policies_scale_on_data_rate() {
        let cli = parse(&["--scaling", "kbytes", "--event-size", "1024"]);
        assert_eq!(cli.scaling().scale_type, ScaleType::ByRateInKbytesPerSec);
        assert_eq!(
            DriveSettings::from_cli(&cli).load(500.0),
            500.0,
            "1 KiB events: events/s = KB/s"
        );
        assert_eq!(DriveSettings::from_cli(&parse(&[])).load(500.0), 500.0);
        let fixed = parse(&["--scaling", "fixed", "--min-segments", "3"]);
        assert_eq!(
            (fixed.scaling().scale_type, fixed.scaling().min_num_segments),
            (ScaleType::FixedNumSegments, 3)
        );
    }
}

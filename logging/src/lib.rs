//! The workspace's one way to set up `tracing` logs, shared by `segment-autoscaler` and
//! `data-generator`: readable text for terminals, one JSON object per line for containers,
//! always on stderr, `RUST_LOG` overriding the binary's default filter.

/// Log output format, as a `--log-format` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, for terminals.
    Text,
    /// One JSON object per line, for containers.
    Json,
}

/// Installs the `tracing` subscriber writing `format` to stderr, filtered by `RUST_LOG` or, when
/// unset, by `default_filter` (an `EnvFilter` directive such as `info,noisy_crate=error`).
pub fn init(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_filter.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
}

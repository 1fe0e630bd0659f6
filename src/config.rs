//! The autoscaler's YAML configuration: parsed strictly (unknown keys are errors), then
//! validated, so that every mistake is reported at start-up with the field it concerns.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::actuate::ScaleResource;
use crate::domain::{Alignment, Combine, SourceChoice, StreamId};

/// The most TaskManagers a binding may ask for: Flink's highest max parallelism (2^15), so
/// that replica counts and their products with slots fit every integer they meet.
pub const MAX_REPLICAS: u32 = 32_768;

/// The span Flink's rate metrics (`numRecordsOutPerSecond`) average over; they restart with
/// the job, so they read low for this long after each (re)start.
pub const FLINK_RATE_SPAN: Duration = Duration::from_secs(60);

/// The most task slots per TaskManager a binding may declare.
pub const MAX_SLOTS_PER_TASKMANAGER: u32 = 1_024;

/// A configuration error, naming the field (`bindings[0].max_replicas`) or the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The YAML does not match the expected shape (unknown key, wrong type, bad value).
    #[error("{field}: {message}")]
    Parse {
        /// Where in the document, e.g. `bindings[0].max_replicas` (`.` for the top level).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The values are well-formed but do not make sense together.
    #[error("{field}: {message}")]
    Invalid {
        /// The field at fault, e.g. `bindings[0].max_replicas`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Time between two reconciliations.
    #[serde(default = "defaults::interval", deserialize_with = "duration")]
    pub interval: Duration,
    /// The deadline of one reconciliation (every binding's observe, plan, act and verify); a
    /// reconciliation still running then is abandoned, counted, and the next one starts on time.
    #[serde(default = "defaults::reconcile_timeout", deserialize_with = "duration")]
    pub reconcile_timeout: Duration,
    /// Prometheus as a segment-count source.
    pub prometheus: Option<PrometheusConfig>,
    /// The Pravega controller as a segment-count source (gRPC `getCurrentSegments`).
    pub pravega: Option<PravegaConfig>,
    /// How to reach Kubernetes (for Deployment and StatefulSet targets, Events, leases).
    #[serde(default)]
    pub kubernetes: KubernetesConfig,
    /// The `/metrics`, `/healthz` and `/readyz` listener.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// Lease-based leader election, so that only one of several replicas acts.
    pub leader_election: Option<LeaderElectionConfig>,
    /// SegmentScaler resources to watch: each one is a binding, declared in the namespace of
    /// the job it scales.
    pub segment_scalers: Option<SegmentScalersConfig>,
    /// What to watch and what to scale (optional when `segment_scalers` is set).
    #[serde(default)]
    pub bindings: Vec<Binding>,
}

/// Where to watch SegmentScaler resources.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentScalersConfig {
    /// The namespaces to watch; empty (the default) for all of them, which needs cluster-wide
    /// read access to SegmentScalers.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// How to reach the Flink REST APIs the SegmentScalers name: a CA, a client certificate,
    /// credentials, from files or variables of the autoscaler's own (a SegmentScaler names
    /// none). The TLS settings apply to `https://` URLs.
    pub flink: Option<FlinkClientConfig>,
}

/// The security settings of a Flink REST client, as in a binding's `flink` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlinkClientConfig {
    /// How to trust an `https://` REST API, and the client certificate to show.
    pub tls: Option<TlsConfig>,
    /// Basic auth, for a proxy in front of the REST API.
    pub basic_auth: Option<BasicAuthConfig>,
    /// File holding a bearer token.
    pub bearer_token_file: Option<PathBuf>,
    /// Environment variable holding a bearer token.
    pub bearer_token_env: Option<String>,
}

/// Prometheus source settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusConfig {
    /// Base URL, e.g. `http://127.0.0.1:19090`.
    pub url: String,
    /// The segment gauge: a metric name, optionally with label matchers of its own; the bound
    /// streams are selected on it with matchers on the scope and stream labels, once per tick
    /// for all bindings.
    #[serde(default = "defaults::prometheus_query")]
    pub query: String,
    /// Label holding the scope name.
    #[serde(default = "defaults::scope_label")]
    pub scope_label: String,
    /// Label holding the stream name.
    #[serde(default = "defaults::stream_label")]
    pub stream_label: String,
    /// How far back to look for a stream's last reported count once Pravega has evicted its
    /// gauge (3 minutes after the last scale, by default): older evidence is not trusted.
    #[serde(
        default = "defaults::prometheus_lookback",
        deserialize_with = "duration"
    )]
    pub lookback: Duration,
    /// Timeout of one read of every bound stream (up to three queries).
    #[serde(default = "defaults::source_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// File holding a bearer token for Prometheus (read at start-up, never logged).
    pub bearer_token_file: Option<PathBuf>,
    /// Environment variable holding a bearer token for Prometheus.
    pub bearer_token_env: Option<String>,
    /// Basic auth for Prometheus (its `--web.config.file` users, or a proxy in front).
    pub basic_auth: Option<BasicAuthConfig>,
    /// How to trust an `https://` Prometheus.
    pub tls: Option<TlsConfig>,
}

/// How a client trusts a TLS server, and what certificate it shows when asked for one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The CA certificates (PEM) to trust, instead of the system's; the server's certificate
    /// must chain to one of them and name the host of the URL.
    pub ca_file: Option<PathBuf>,
    /// A client certificate (PEM), for servers that ask for one (mutual TLS).
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key_file: Option<PathBuf>,
    /// Accept any certificate, for lab certificates only: the connection is encrypted but the
    /// server is not authenticated. Logged as a warning at start-up.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// A user name and a password read from a file or an environment variable (never from the
/// configuration file itself).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    /// The user name.
    pub username: String,
    /// A file holding the password (a mounted Secret); surrounding white space is ignored.
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the password.
    pub password_env: Option<String>,
}

/// Pravega controller source settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PravegaConfig {
    /// Controller URI, e.g. `tcp://127.0.0.1:9090`, or `tls://host:9090` with `tls`.
    pub controller: String,
    /// Per-call timeout (the client retries inside it).
    #[serde(default = "defaults::source_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// How to trust a `tls://` controller: its `ca_file` (required: the Pravega client trusts
    /// no system CA) or `insecure_skip_verify`. No client certificate: Pravega asks for none.
    pub tls: Option<TlsConfig>,
    /// Pravega's basic auth (its password file's accounts); reading segments needs READ on the
    /// scope and its streams.
    pub credentials: Option<BasicAuthConfig>,
    /// Opt-in: lower a bound stream's scaling-policy target while its job falls behind, and
    /// raise it back while the job idles (README: Backlog). Off by default.
    pub tune_scaling_policy: Option<TuneScalingPolicy>,
}

/// The bounds of the opt-in tuning of streams' event-rate scaling policies.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuneScalingPolicy {
    /// Whether the autoscaler changes streams' policies at all.
    #[serde(default)]
    pub enabled: bool,
    /// The lowest target it sets, events/s per segment.
    pub min_target: u32,
    /// The highest target it sets, events/s per segment.
    pub max_target: u32,
    /// The fewest segments it brings an idle job's stream back to (the stream's own minimum).
    #[serde(default = "one")]
    pub min_segments: u32,
    /// The most segments it asks for; default: the binding's `max_replicas`.
    pub max_segments: Option<u32>,
}

fn one() -> u32 {
    1
}

/// Kubernetes client settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// A kubeconfig file; when absent, `KUBECONFIG`, `~/.kube/config` or the in-cluster
    /// ServiceAccount are used, in the usual order.
    pub kubeconfig: Option<PathBuf>,
    /// The bound of every Kubernetes API call (connect, send, and each read of the answer).
    #[serde(
        default = "defaults::kubernetes_timeout",
        deserialize_with = "duration"
    )]
    pub timeout: Duration,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        KubernetesConfig {
            kubeconfig: None,
            timeout: defaults::kubernetes_timeout(),
        }
    }
}

/// Telemetry listener settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Address of the HTTP listener serving `/metrics`, `/healthz` and `/readyz`.
    #[serde(default = "defaults::telemetry_listen")]
    pub listen: SocketAddr,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            listen: defaults::telemetry_listen(),
        }
    }
}

/// Leader election on a coordination.k8s.io Lease.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderElectionConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    #[serde(default = "defaults::lease_name")]
    pub lease_name: String,
    /// How long a leader's claim lasts without renewal; a standby takes over after it.
    #[serde(default = "defaults::lease_duration", deserialize_with = "duration")]
    pub lease_duration: Duration,
    /// How long the leader keeps acting after its last successful renewal: it renews every
    /// `retry_period`, and steps down when none succeeded for this long.
    #[serde(default = "defaults::renew_deadline", deserialize_with = "duration")]
    pub renew_deadline: Duration,
    /// Time between two attempts to acquire or renew the Lease.
    #[serde(default = "defaults::retry_period", deserialize_with = "duration")]
    pub retry_period: Duration,
    /// This replica's identity in the Lease (default: host name and process id).
    pub identity: Option<String>,
}

/// One job to keep aligned: its streams, its bounds and the replicas to scale.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// A name for logs, metrics and Events.
    pub name: String,
    /// `scope/stream` names, one or more.
    pub streams: Vec<StreamId>,
    /// How the streams' segment counts combine.
    #[serde(default)]
    pub combine: Combine,
    /// Which source to ask.
    #[serde(default)]
    pub source: SourceChoice,
    /// Fewest TaskManagers (at least 1).
    #[serde(default = "defaults::min_replicas")]
    pub min_replicas: u32,
    /// Most TaskManagers.
    pub max_replicas: u32,
    /// Task slots per TaskManager (`taskmanager.numberOfTaskSlots`).
    #[serde(default = "defaults::slots_per_taskmanager")]
    pub slots_per_taskmanager: u32,
    /// How long a lower target must hold before scaling down.
    #[serde(
        default = "defaults::scale_down_stabilization",
        deserialize_with = "duration"
    )]
    pub scale_down_stabilization: Duration,
    /// What to scale.
    pub target: TargetConfig,
    /// The Flink job, for clamping to its max parallelism and verifying alignment.
    pub flink: Option<FlinkConfig>,
}

/// What a binding scales.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "TargetSpec")]
pub enum TargetConfig {
    /// The scale subresource of a namespaced Kubernetes resource.
    Kubernetes(ScaleResource),
    /// External commands.
    Command(CommandConfig),
}

/// External commands that read and set a binding's replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandConfig {
    /// argv printing the current replica count on stdout.
    pub get: Vec<String>,
    /// argv applying a replica count; must contain `{replicas}`.
    pub set: Vec<String>,
    /// How long either command may run.
    pub timeout: Duration,
}

/// A target as written (`kind: deployment | statefulset | resource | command`).
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum TargetSpec {
    /// The scale subresource of a Deployment.
    Deployment { namespace: String, name: String },
    /// The scale subresource of a StatefulSet.
    Statefulset { namespace: String, name: String },
    /// The scale subresource of any namespaced resource that has one, e.g. the Flink
    /// Kubernetes Operator's `FlinkDeployment` (whose scale is `.spec.taskManager.replicas`).
    Resource {
        /// `group/version` of the resource, e.g. `flink.apache.org/v1beta1` (`v1` for core).
        api_version: String,
        /// Its kind, e.g. `FlinkDeployment`.
        resource_kind: String,
        /// Its plural resource name in URLs and RBAC (default: the kind in lower case + `s`).
        plural: Option<String>,
        namespace: String,
        name: String,
    },
    /// `get` prints the current count, `set` applies one (`{replicas}` in its arguments is
    /// replaced by the count).
    Command {
        get: Vec<String>,
        set: Vec<String>,
        #[serde(default = "defaults::command_timeout", deserialize_with = "duration")]
        timeout: Duration,
    },
}

impl From<TargetSpec> for TargetConfig {
    fn from(spec: TargetSpec) -> Self {
        match spec {
            TargetSpec::Deployment { namespace, name } => {
                TargetConfig::Kubernetes(ScaleResource::deployment(&namespace, &name))
            }
            TargetSpec::Statefulset { namespace, name } => {
                TargetConfig::Kubernetes(ScaleResource::statefulset(&namespace, &name))
            }
            TargetSpec::Resource {
                api_version,
                resource_kind,
                plural,
                namespace,
                name,
            } => TargetConfig::Kubernetes(ScaleResource::new(
                &api_version,
                &resource_kind,
                plural.as_deref(),
                &namespace,
                &name,
            )),
            TargetSpec::Command { get, set, timeout } => {
                TargetConfig::Command(CommandConfig { get, set, timeout })
            }
        }
    }
}

/// Flink REST settings of a binding.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlinkConfig {
    /// Base URL of the JobManager's REST API.
    pub rest_url: String,
    /// Per-request timeout.
    #[serde(default = "defaults::source_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// How long the job may take to use a TaskManager change: when the JobManager's adaptive
    /// scheduler timers add up to more, the autoscaler warns (log, Event, metric).
    #[serde(default = "defaults::rescale_tolerance", deserialize_with = "duration")]
    pub rescale_tolerance: Duration,
    /// How the job is brought to the segments' parallelism.
    #[serde(default)]
    pub alignment: Alignment,
    /// How long the job's backlog must grow, while it runs aligned, before the binding reports
    /// it falling behind (README: Backlog).
    #[serde(default = "defaults::backlog_window", deserialize_with = "duration")]
    pub backlog_window: Duration,
    /// How to trust an `https://` REST API, and the client certificate to show when it asks
    /// for one (Flink's `security.ssl.rest.authentication-enabled`).
    pub tls: Option<TlsConfig>,
    /// Basic auth, for a proxy in front of the REST API.
    pub basic_auth: Option<BasicAuthConfig>,
    /// File holding a bearer token, for a proxy in front of the REST API.
    pub bearer_token_file: Option<PathBuf>,
    /// Environment variable holding a bearer token.
    pub bearer_token_env: Option<String>,
}

impl TargetConfig {
    /// The resource whose scale subresource is set; `None` for command targets.
    pub fn scale_resource(&self) -> Option<&ScaleResource> {
        match self {
            TargetConfig::Kubernetes(resource) => Some(resource),
            TargetConfig::Command(_) => None,
        }
    }

    /// What makes two targets the same, to refuse two bindings fighting over one.
    pub(crate) fn identity(&self) -> String {
        match self {
            TargetConfig::Kubernetes(r) => {
                format!("{}.{} {}/{}", r.plural, r.group, r.namespace, r.name)
            }
            TargetConfig::Command(command) => format!("command {:?}", command.set),
        }
    }
}

pub(crate) mod defaults {
    use std::net::SocketAddr;
    use std::time::Duration;

    pub fn interval() -> Duration {
        Duration::from_secs(2)
    }
    pub fn prometheus_query() -> String {
        "pravega_controller_segments_count".into()
    }
    pub fn scope_label() -> String {
        "scope".into()
    }
    pub fn stream_label() -> String {
        "stream".into()
    }
    pub fn reconcile_timeout() -> Duration {
        Duration::from_secs(30)
    }
    pub fn kubernetes_timeout() -> Duration {
        Duration::from_secs(5)
    }
    pub fn renew_deadline() -> Duration {
        Duration::from_secs(10)
    }
    pub fn retry_period() -> Duration {
        Duration::from_secs(2)
    }
    /// A day: a stream under steady load may not scale for hours (Pravega merges only
    /// segments older than 20 minutes, after a 10-minute cooldown), a day covers a daily load
    /// cycle, and it stays well inside Prometheus' default retention (15 days). The series
    /// read are sparse (a few minutes after each scale), so the look-back costs little.
    pub fn prometheus_lookback() -> Duration {
        Duration::from_secs(24 * 60 * 60)
    }
    pub fn rescale_tolerance() -> Duration {
        Duration::from_secs(15)
    }
    /// Two minutes: longer than a few reader-group checkpoints (the backlog estimate jumps
    /// with each), shorter than the minutes Pravega takes to split a segment.
    pub fn backlog_window() -> Duration {
        Duration::from_secs(120)
    }
    pub fn source_timeout() -> Duration {
        Duration::from_secs(5)
    }
    pub fn command_timeout() -> Duration {
        Duration::from_secs(20)
    }
    pub fn telemetry_listen() -> SocketAddr {
        SocketAddr::from(([0, 0, 0, 0], 9464))
    }
    pub fn lease_name() -> String {
        "segment-autoscaler".into()
    }
    pub fn lease_duration() -> Duration {
        Duration::from_secs(15)
    }
    pub fn min_replicas() -> u32 {
        1
    }
    pub fn slots_per_taskmanager() -> u32 {
        1
    }
    pub fn scale_down_stabilization() -> Duration {
        Duration::from_secs(60)
    }
}

/// Durations are strings such as `2s`, `1m` or `500ms`.
fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "invalid duration {text:?} ({e}); use e.g. 2s, 1m, 500ms"
        ))
    })
}

impl Config {
    /// Reads, parses and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Config::parse(&text)
    }

    /// Parses and validates a configuration document.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let deserializer = serde_yaml_ng::Deserializer::from_str(text);
        let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let field = e.path().to_string();
            let message = e.into_inner().to_string();
            // serde_yaml_ng puts the path of some errors (a missing field) in its own message.
            let message = match message.strip_prefix(&format!("{field}: ")) {
                Some(rest) => rest.to_string(),
                None => message,
            };
            ConfigError::Parse { field, message }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what the types cannot, section by section, in the file's order; the first
    /// problem is returned, naming its field.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.interval < Duration::from_millis(100) {
            return Err(ConfigError::invalid("interval", "must be at least 100ms"));
        }
        if self.bindings.is_empty() && self.segment_scalers.is_none() {
            return Err(ConfigError::invalid(
                "bindings",
                "at least one binding is required (or segment_scalers, to watch SegmentScaler resources)",
            ));
        }
        if let Some(p) = &self.prometheus {
            p.validate()?;
        }
        if let Some(p) = &self.pravega {
            p.validate()?;
        }
        self.validate_timeouts()?;
        if let Some(le) = &self.leader_election {
            self.validate_leader_election(le)?;
        }
        let mut names = std::collections::HashSet::new();
        for (i, b) in self.bindings.iter().enumerate() {
            let field = |name: &str| format!("bindings[{i}].{name}");
            if b.name.trim().is_empty() {
                return Err(ConfigError::invalid(field("name"), "must not be empty"));
            }
            if !names.insert(b.name.as_str()) {
                return Err(ConfigError::invalid(
                    field("name"),
                    format!("{:?} is used by another binding", b.name),
                ));
            }
            if let Some(other) = self.bindings[..i]
                .iter()
                .position(|o| o.target.identity() == b.target.identity())
            {
                return Err(ConfigError::invalid(
                    field("target"),
                    format!(
                        "the same target as bindings[{other}] ({}); two bindings would fight over it",
                        b.target.identity()
                    ),
                ));
            }
            self.validate_binding(b, &field)?;
        }
        if let Some(scalers) = &self.segment_scalers {
            for (i, namespace) in scalers.namespaces.iter().enumerate() {
                if namespace.is_empty() {
                    return Err(ConfigError::invalid(
                        format!("segment_scalers.namespaces[{i}]"),
                        "must not be empty",
                    ));
                }
            }
            if let Some(flink) = &scalers.flink {
                // Checked as for an https:// URL: the TLS settings apply to those only.
                validate_http_security(
                    &|name| format!("segment_scalers.flink.{name}"),
                    "https://",
                    flink.security(),
                )?;
            }
        }
        Ok(())
    }

    /// Checks one binding against this configuration (its sources, its deadlines), whether a
    /// file or a SegmentScaler declared it; `field` names one of its fields.
    pub(crate) fn validate_binding(
        &self,
        b: &Binding,
        field: &dyn Fn(&str) -> String,
    ) -> Result<(), ConfigError> {
        b.validate(field, self)?;
        b.target.validate(field)?;
        if let Some(f) = &b.flink {
            f.validate(field, self)?;
        }
        if let TargetConfig::Command(command) = &b.target {
            self.within_deadline(field("target.timeout"), command.timeout)?;
        }
        Ok(())
    }

    /// The reconciliation's deadline, and every I/O timeout within it.
    fn validate_timeouts(&self) -> Result<(), ConfigError> {
        if self.reconcile_timeout < self.interval.min(Duration::from_secs(1)) {
            return Err(ConfigError::invalid(
                "reconcile_timeout",
                "must be at least 1s (or the interval, if shorter)",
            ));
        }
        if let Some(p) = &self.prometheus {
            self.within_deadline("prometheus.timeout".into(), p.timeout)?;
        }
        if let Some(p) = &self.pravega {
            self.within_deadline("pravega.timeout".into(), p.timeout)?;
        }
        if self.kubernetes.timeout < Duration::from_millis(100) {
            return Err(ConfigError::invalid(
                "kubernetes.timeout",
                "must be at least 100ms",
            ));
        }
        self.within_deadline("kubernetes.timeout".into(), self.kubernetes.timeout)
    }

    /// A deadline shorter than an I/O timeout inside it would cut that I/O every time it is
    /// slow, before its own, clearer error.
    fn within_deadline(&self, field: String, timeout: Duration) -> Result<(), ConfigError> {
        if timeout > self.reconcile_timeout {
            return Err(ConfigError::invalid(
                field,
                format!(
                    "{} is longer than reconcile_timeout ({}); shorten it or raise reconcile_timeout",
                    humantime::format_duration(timeout),
                    humantime::format_duration(self.reconcile_timeout)
                ),
            ));
        }
        Ok(())
    }
}

impl PrometheusConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        validate_url("prometheus.url", &self.url)?;
        if !is_series_selector(&self.query) {
            return Err(ConfigError::invalid(
                "prometheus.query",
                format!(
                    "{:?} is not a metric name, optionally with label matchers (e.g. pravega_controller_segments_count{{job=\"pravega\"}}): the bound streams are selected on it with label matchers",
                    self.query
                ),
            ));
        }
        // Below Pravega's default eviction the look-back would forget a count before its
        // gauge is even gone; whole seconds, as PromQL ranges are written here.
        if self.lookback < Duration::from_secs(5 * 60) || self.lookback.subsec_nanos() != 0 {
            return Err(ConfigError::invalid(
                "prometheus.lookback",
                format!(
                    "{} must be whole seconds and at least 5m (Pravega evicts the segment gauge 3 minutes after a scale)",
                    humantime::format_duration(self.lookback)
                ),
            ));
        }
        validate_http_security(
            &|name| format!("prometheus.{name}"),
            &self.url,
            self.security(),
        )
    }
}

impl PravegaConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let tls_scheme = self.controller.starts_with("tls://");
        if !self.controller.starts_with("tcp://") && !tls_scheme {
            return Err(ConfigError::invalid(
                "pravega.controller",
                format!("{:?} must start with tcp:// or tls://", self.controller),
            ));
        }
        match &self.tls {
            None if tls_scheme => Err(ConfigError::invalid(
                "pravega.tls.ca_file",
                format!("required for {} (the Pravega client trusts no system CA)", self.controller),
            )),
            Some(_) if !tls_scheme => Err(ConfigError::invalid(
                "pravega.tls",
                format!("set, but {:?} is not tls://", self.controller),
            )),
            Some(tls) if tls.cert_file.is_some() || tls.key_file.is_some() => {
                Err(ConfigError::invalid(
                    "pravega.tls.cert_file",
                    "Pravega asks clients for no certificate: leave cert_file and key_file out",
                ))
            }
            Some(tls) if tls.ca_file.is_none() && !tls.insecure_skip_verify => {
                Err(ConfigError::invalid(
                    "pravega.tls.ca_file",
                    "required (the Pravega client trusts no system CA), unless insecure_skip_verify",
                ))
            }
            Some(tls) => tls.validate(&|name| format!("pravega.tls.{name}")),
            None => Ok(()),
        }?;
        if let Some(credentials) = &self.credentials {
            credentials.validate(&|name| format!("pravega.credentials.{name}"))?;
        }
        if let Some(tune) = &self.tune_scaling_policy {
            if tune.min_target == 0 {
                return Err(ConfigError::invalid(
                    "pravega.tune_scaling_policy.min_target",
                    "0: a target of 0 events/s would split without end",
                ));
            }
            if tune.min_target > tune.max_target {
                return Err(ConfigError::invalid(
                    "pravega.tune_scaling_policy.min_target",
                    format!(
                        "{} is above max_target ({})",
                        tune.min_target, tune.max_target
                    ),
                ));
            }
            if tune.min_segments == 0 {
                return Err(ConfigError::invalid(
                    "pravega.tune_scaling_policy.min_segments",
                    "0: a stream has at least one segment",
                ));
            }
            if tune.max_segments.is_some_and(|max| max < tune.min_segments) {
                return Err(ConfigError::invalid(
                    "pravega.tune_scaling_policy.max_segments",
                    format!("below min_segments ({})", tune.min_segments),
                ));
            }
            if tune.max_target > i32::MAX as u32 {
                return Err(ConfigError::invalid(
                    "pravega.tune_scaling_policy.max_target",
                    format!(
                        "{} is above {} (the controller's limit)",
                        tune.max_target,
                        i32::MAX
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl TlsConfig {
    fn validate(&self, field: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err(ConfigError::invalid(
                field(if self.cert_file.is_some() {
                    "key_file"
                } else {
                    "cert_file"
                }),
                "a client certificate needs both cert_file and key_file",
            ));
        }
        if self.ca_file.is_some() && self.insecure_skip_verify {
            return Err(ConfigError::invalid(
                field("insecure_skip_verify"),
                "set together with ca_file: either verify against the CA or skip verification",
            ));
        }
        Ok(())
    }
}

impl BasicAuthConfig {
    fn validate(&self, field: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
        if self.username.is_empty() || self.username.contains(':') {
            return Err(ConfigError::invalid(
                field("username"),
                "must be non-empty and hold no ':'",
            ));
        }
        match (&self.password_file, &self.password_env) {
            (Some(_), Some(_)) => Err(ConfigError::invalid(
                field("password_env"),
                "set either password_file or password_env, not both",
            )),
            (None, None) => Err(ConfigError::invalid(
                field("password_file"),
                "a password_file or a password_env is required (never the password itself)",
            )),
            _ => Ok(()),
        }
    }
}

/// The security settings of an HTTP client section (Prometheus, a binding's Flink), as one
/// value: validated here, read by `setup`.
pub struct HttpSecurity<'a> {
    /// `tls`.
    pub tls: Option<&'a TlsConfig>,
    /// `basic_auth`.
    pub basic_auth: Option<&'a BasicAuthConfig>,
    /// `bearer_token_file`.
    pub bearer_token_file: Option<&'a Path>,
    /// `bearer_token_env`.
    pub bearer_token_env: Option<&'a str>,
}

/// `security()` for the sections that have the four HTTP security fields.
macro_rules! http_security {
    ($($section:ty),*) => {$(
        impl $section {
            /// Its security settings.
            pub fn security(&self) -> HttpSecurity<'_> {
                HttpSecurity {
                    tls: self.tls.as_ref(),
                    basic_auth: self.basic_auth.as_ref(),
                    bearer_token_file: self.bearer_token_file.as_deref(),
                    bearer_token_env: self.bearer_token_env.as_deref(),
                }
            }
        }
    )*};
}
http_security!(PrometheusConfig, FlinkConfig, FlinkClientConfig);

/// TLS only with https://, one way to authenticate; `field` names a field of the section.
fn validate_http_security(
    field: &dyn Fn(&str) -> String,
    url: &str,
    security: HttpSecurity,
) -> Result<(), ConfigError> {
    if let Some(tls) = security.tls {
        if !url.starts_with("https://") {
            return Err(ConfigError::invalid(
                field("tls"),
                format!("set, but {url:?} is not https://"),
            ));
        }
        tls.validate(&|name| field(&format!("tls.{name}")))?;
    }
    if let Some(basic_auth) = security.basic_auth {
        basic_auth.validate(&|name| field(&format!("basic_auth.{name}")))?;
    }
    match (
        security.bearer_token_file.is_some(),
        security.bearer_token_env.is_some(),
    ) {
        (true, true) => Err(ConfigError::invalid(
            field("bearer_token_env"),
            "set either bearer_token_file or bearer_token_env, not both",
        )),
        (true, false) | (false, true) if security.basic_auth.is_some() => {
            Err(ConfigError::invalid(
                field("basic_auth"),
                "set either basic_auth or a bearer token, not both",
            ))
        }
        _ => Ok(()),
    }
}

impl Binding {
    /// Its own bounds and source (its name, target and Flink settings are checked with the
    /// other bindings); `field` names one of its fields.
    fn validate(&self, field: &dyn Fn(&str) -> String, config: &Config) -> Result<(), ConfigError> {
        if self.streams.is_empty() {
            return Err(ConfigError::invalid(
                field("streams"),
                "at least one scope/stream is required",
            ));
        }
        if self.min_replicas < 1 {
            return Err(ConfigError::invalid(
                field("min_replicas"),
                "must be at least 1",
            ));
        }
        if self.max_replicas > MAX_REPLICAS {
            return Err(ConfigError::invalid(
                field("max_replicas"),
                format!(
                    "{} is above {MAX_REPLICAS}, Flink's highest max parallelism",
                    self.max_replicas
                ),
            ));
        }
        if self.slots_per_taskmanager > MAX_SLOTS_PER_TASKMANAGER {
            return Err(ConfigError::invalid(
                field("slots_per_taskmanager"),
                format!(
                    "{} is above {MAX_SLOTS_PER_TASKMANAGER}",
                    self.slots_per_taskmanager
                ),
            ));
        }
        if self.max_replicas < self.min_replicas {
            return Err(ConfigError::invalid(
                field("max_replicas"),
                format!(
                    "{} is below min_replicas ({})",
                    self.max_replicas, self.min_replicas
                ),
            ));
        }
        if self.slots_per_taskmanager < 1 {
            return Err(ConfigError::invalid(
                field("slots_per_taskmanager"),
                "must be at least 1",
            ));
        }
        self.validate_source(field, config)
    }

    /// The source it names must be configured.
    fn validate_source(
        &self,
        field: &dyn Fn(&str) -> String,
        config: &Config,
    ) -> Result<(), ConfigError> {
        let missing = match self.source {
            SourceChoice::Prometheus if config.prometheus.is_none() => {
                "is prometheus but no top-level `prometheus` is configured"
            }
            SourceChoice::Controller if config.pravega.is_none() => {
                "is controller but no top-level `pravega` is configured"
            }
            SourceChoice::Auto if config.prometheus.is_none() && config.pravega.is_none() => {
                "is auto but neither `pravega` nor `prometheus` is configured"
            }
            _ => return Ok(()),
        };
        Err(ConfigError::invalid(field("source"), missing))
    }
}

impl TargetConfig {
    fn validate(&self, field: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
        match self {
            TargetConfig::Kubernetes(r) => {
                let well_formed = |part: &str| {
                    !part.is_empty()
                        && part
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
                };
                if !(r.group.is_empty() || well_formed(&r.group)) || !well_formed(&r.version) {
                    return Err(ConfigError::invalid(
                        field("target.api_version"),
                        format!(
                            "{:?} is not group/version (or version for core)",
                            r.api_version()
                        ),
                    ));
                }
                if !well_formed(&r.kind) {
                    return Err(ConfigError::invalid(
                        field("target.resource_kind"),
                        format!("{:?} is not a kind, e.g. FlinkDeployment", r.kind),
                    ));
                }
                if !well_formed(&r.plural) {
                    return Err(ConfigError::invalid(
                        field("target.plural"),
                        "must be a resource name, e.g. flinkdeployments",
                    ));
                }
                if r.namespace.is_empty() {
                    return Err(ConfigError::invalid(
                        field("target.namespace"),
                        "must not be empty",
                    ));
                }
                if r.name.is_empty() {
                    return Err(ConfigError::invalid(
                        field("target.name"),
                        "must not be empty",
                    ));
                }
            }
            TargetConfig::Command(CommandConfig { get, set, .. }) => {
                if get.is_empty() {
                    return Err(ConfigError::invalid(
                        field("target.get"),
                        "must name a command",
                    ));
                }
                if set.is_empty() {
                    return Err(ConfigError::invalid(
                        field("target.set"),
                        "must name a command",
                    ));
                }
                if !set.iter().any(|arg| arg.contains("{replicas}")) {
                    return Err(ConfigError::invalid(
                        field("target.set"),
                        "must contain {replicas} in an argument",
                    ));
                }
            }
        }
        Ok(())
    }
}

impl FlinkConfig {
    fn validate(&self, field: &dyn Fn(&str) -> String, config: &Config) -> Result<(), ConfigError> {
        validate_url(&field("flink.rest_url"), &self.rest_url)?;
        validate_http_security(
            &|name| field(&format!("flink.{name}")),
            &self.rest_url,
            self.security(),
        )?;
        config.within_deadline(field("flink.timeout"), self.timeout)?;
        // Its first and last quarters must each hold a reconciliation's sample.
        if self.backlog_window < config.interval * 8 {
            return Err(ConfigError::invalid(
                field("flink.backlog_window"),
                format!(
                    "{} is shorter than 8 intervals ({}): too few samples to tell growth from noise",
                    humantime::format_duration(self.backlog_window),
                    humantime::format_duration(config.interval * 8)
                ),
            ));
        }
        // Flink's rates (numRecordsOutPerSecond) average the last minute and restart with the
        // job: a window that covers less reads them low after every rescale, and the tuning
        // would lower a stream's target for a job that keeps up (seen in CI: 79 -> 38 events/s
        // 48 s after a split, the job reading about 240 per subtask).
        let tunes = config
            .pravega
            .as_ref()
            .and_then(|p| p.tune_scaling_policy)
            .is_some_and(|t| t.enabled);
        if tunes && self.backlog_window < FLINK_RATE_SPAN {
            return Err(ConfigError::invalid(
                field("flink.backlog_window"),
                format!(
                    "{} is shorter than {}, the span of Flink's rate metrics: with \
                     pravega.tune_scaling_policy on, a shorter window reads them low after a \
                     rescale",
                    humantime::format_duration(self.backlog_window),
                    humantime::format_duration(FLINK_RATE_SPAN)
                ),
            ));
        }
        if self.alignment.headroom() > MAX_REPLICAS {
            return Err(ConfigError::invalid(
                field("flink.alignment.headroom"),
                format!(
                    "{} is above {MAX_REPLICAS}, the most TaskManagers a binding may ask for",
                    self.alignment.headroom()
                ),
            ));
        }
        Ok(())
    }
}

impl Config {
    /// The Lease's timings must leave a deposed leader no window to write: it acts only until
    /// `renew_deadline` after its last renewal began, a write it starts then ends within
    /// `kubernetes.timeout`, and a standby takes over only `lease_duration` after it saw that
    /// renewal.
    fn validate_leader_election(&self, le: &LeaderElectionConfig) -> Result<(), ConfigError> {
        let secs = |d: Duration| humantime::format_duration(d).to_string();
        if le.lease_duration < Duration::from_secs(2) {
            return Err(ConfigError::invalid(
                "leader_election.lease_duration",
                "must be at least 2s",
            ));
        }
        if le.lease_duration.subsec_nanos() != 0 {
            return Err(ConfigError::invalid(
                "leader_election.lease_duration",
                "must be whole seconds (the Lease stores seconds)",
            ));
        }
        if le.lease_duration.as_secs() > i32::MAX as u64 {
            return Err(ConfigError::invalid(
                "leader_election.lease_duration",
                "is too long",
            ));
        }
        if le.retry_period < Duration::from_millis(100) {
            return Err(ConfigError::invalid(
                "leader_election.retry_period",
                "must be at least 100ms",
            ));
        }
        if le.retry_period >= le.renew_deadline {
            return Err(ConfigError::invalid(
                "leader_election.retry_period",
                format!(
                    "{} must be shorter than renew_deadline ({}), or one failed renewal deposes the leader",
                    secs(le.retry_period),
                    secs(le.renew_deadline)
                ),
            ));
        }
        if le.renew_deadline + self.kubernetes.timeout > le.lease_duration {
            return Err(ConfigError::invalid(
                "leader_election.renew_deadline",
                format!(
                    "{} plus kubernetes.timeout ({}) exceeds lease_duration ({}): a write started just before the deadline could land after a standby took over",
                    secs(le.renew_deadline),
                    secs(self.kubernetes.timeout),
                    secs(le.lease_duration)
                ),
            ));
        }
        Ok(())
    }
}

/// A metric name, optionally followed by `{label matchers}`.
fn is_series_selector(query: &str) -> bool {
    let (name, matchers) = match query.split_once('{') {
        Some((name, rest)) => (name, Some(rest)),
        None => (query, None),
    };
    let mut chars = name.chars();
    let name_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    name_ok && matchers.is_none_or(|m| m.ends_with('}') && !m[..m.len() - 1].contains(['{', '}']))
}

fn validate_url(field: &str, url: &str) -> Result<(), ConfigError> {
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(()),
        Ok(u) => Err(ConfigError::invalid(
            field,
            format!("{url:?}: scheme {} is not http or https", u.scheme()),
        )),
        Err(e) => Err(ConfigError::invalid(
            field,
            format!("{url:?} is not a URL: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
interval: 2s
prometheus: {url: "http://127.0.0.1:19090"}
pravega: {controller: "tcp://127.0.0.1:9090"}
bindings:
  - name: busy-reader
    streams: [demo/load]
    combine: sum
    source: auto
    min_replicas: 1
    max_replicas: 32
    slots_per_taskmanager: 1
    scale_down_stabilization: 60s
    target:
      kind: deployment
      namespace: flink
      name: flink-taskmanager
    flink: {rest_url: "http://127.0.0.1:8081"}
"#;

    fn error_of(text: &str) -> String {
        Config::parse(text)
            .expect_err("config should be rejected")
            .to_string()
    }

    /// `FULL` with its `pravega:` line replaced.
    fn with_pravega(pravega: &str) -> String {
        FULL.replace(r#"pravega: {controller: "tcp://127.0.0.1:9090"}"#, pravega)
    }

    #[test]
    fn tuning_needs_a_backlog_window_of_flinks_rate_span() {
        let config = |enabled: bool, window: &str| {
            with_pravega(&format!(
                "pravega: {{controller: tcp://127.0.0.1:9090, tune_scaling_policy: \
                 {{enabled: {enabled}, min_target: 10, max_target: 1000}}}}"
            ))
            .replace(
                r#"flink: {rest_url: "http://127.0.0.1:8081"}"#,
                &format!(
                    r#"flink: {{rest_url: "http://127.0.0.1:8081", backlog_window: {window}}}"#
                ),
            )
        };
        let error = error_of(&config(true, "30s"));
        assert!(
            error.contains(
                "flink.backlog_window: 30s is shorter than 1m, the span of Flink's rate metrics"
            ),
            "{error}"
        );
        Config::parse(&config(true, "1m")).expect("a minute covers the rates' span");
        Config::parse(&config(false, "30s")).expect("not tuning: the window only reports");
    }

    #[test]
    fn a_secured_controller_is_configured_with_a_ca_and_credentials() {
        let config = Config::parse(&with_pravega(
            "pravega:\n  controller: tls://pravega.example:9090\n  tls: {ca_file: /ca.pem}\n  credentials: {username: reader, password_env: PRAVEGA_PASSWORD}",
        ))
        .unwrap();
        let pravega = config.pravega.unwrap();
        assert_eq!(
            pravega.tls.unwrap().ca_file.unwrap(),
            PathBuf::from("/ca.pem")
        );
        assert_eq!(pravega.credentials.unwrap().username, "reader");
    }

    #[test]
    fn controller_tls_settings_must_match_the_scheme() {
        let cases = [
            ("{controller: tls://p:9090}", "pravega.tls.ca_file: required for tls://p:9090"),
            (
                "{controller: tcp://p:9090, tls: {ca_file: /ca.pem}}",
                "pravega.tls: set, but \"tcp://p:9090\" is not tls://",
            ),
            (
                "{controller: tls://p:9090, tls: {insecure_skip_verify: false}}",
                "pravega.tls.ca_file: required",
            ),
            (
                "{controller: tls://p:9090, tls: {ca_file: /ca.pem, cert_file: /c.pem, key_file: /k.pem}}",
                "pravega.tls.cert_file: Pravega asks clients for no certificate",
            ),
            (
                "{controller: tls://p:9090, tls: {ca_file: /ca.pem, insecure_skip_verify: true}}",
                "pravega.tls.insecure_skip_verify: set together with ca_file",
            ),
        ];
        for (pravega, expected) in cases {
            let error = error_of(&with_pravega(&format!("pravega: {pravega}")));
            assert!(error.starts_with(expected), "{pravega}: {error}");
        }
    }

    #[test]
    fn a_password_comes_from_a_file_or_the_environment_never_the_file_itself() {
        let cases = [
            (
                "{username: r}",
                "pravega.credentials.password_file: a password_file or a password_env is required",
            ),
            (
                "{username: r, password_file: /p, password_env: P}",
                "pravega.credentials.password_env: set either",
            ),
            (
                "{username: 'a:b', password_env: P}",
                "pravega.credentials.username: must be non-empty",
            ),
            (
                "{username: r, password: hunter2}",
                "pravega.credentials.password: pravega.credentials: unknown field `password`",
            ),
        ];
        for (credentials, expected) in cases {
            let error = error_of(&with_pravega(&format!(
                "pravega: {{controller: tcp://p:9090, credentials: {credentials}}}"
            )));
            assert!(error.starts_with(expected), "{credentials}: {error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn http_clients_take_tls_only_with_https_and_one_way_to_authenticate() {
        let prometheus = |settings: &str| {
            FULL.replace(
                r#"prometheus: {url: "http://127.0.0.1:19090"}"#,
                &format!("prometheus: {settings}"),
            )
        };
        let cases = [
            ("{url: 'http://p:1', tls: {ca_file: /ca.pem}}", "prometheus.tls: set, but \"http://p:1\" is not https://"),
            ("{url: 'https://p:1', tls: {cert_file: /c.pem}}", "prometheus.tls.key_file: a client certificate needs both"),
            (
                "{url: 'https://p:1', basic_auth: {username: u, password_env: P}, bearer_token_env: T}",
                "prometheus.basic_auth: set either basic_auth or a bearer token",
            ),
            ("{url: 'https://p:1', basic_auth: {username: u}}", "prometheus.basic_auth.password_file: a password_file"),
        ];
        for (settings, expected) in cases {
            let error = error_of(&prometheus(settings));
            assert!(error.starts_with(expected), "{settings}: {error}");
        }
        let flink = FULL.replace(
            r#"flink: {rest_url: "http://127.0.0.1:8081"}"#,
            "flink: {rest_url: 'http://f:1', tls: {ca_file: /ca.pem}}",
        );
        assert!(error_of(&flink).starts_with("bindings[0].flink.tls: set, but"));
        let flink = FULL.replace(
            r#"flink: {rest_url: "http://127.0.0.1:8081"}"#,
            "flink: {rest_url: 'https://f:1', tls: {ca_file: /ca.pem, cert_file: /c.pem, key_file: /k.pem}, basic_auth: {username: u, password_file: /p}}",
        );
        Config::parse(&flink).unwrap();
    }

    #[test]
    fn the_documented_example_parses() {
        let config = Config::parse(FULL).expect("valid");
        assert_eq!(config.interval, Duration::from_secs(2));
        let b = &config.bindings[0];
        assert_eq!(b.streams, vec!["demo/load".parse::<StreamId>().unwrap()]);
        assert_eq!(b.max_replicas, 32);
        assert_eq!(b.scale_down_stabilization, Duration::from_secs(60));
        assert!(
            b.target
                == TargetConfig::Kubernetes(ScaleResource::deployment(
                    "flink",
                    "flink-taskmanager"
                ))
        );
        assert_eq!(
            config.prometheus.as_ref().unwrap().query,
            "pravega_controller_segments_count"
        );
        assert_eq!(config.telemetry.listen.port(), 9464);
    }

    #[test]
    fn defaults_fill_in_optional_fields() {
        let config = Config::parse(
            "pravega: {controller: tcp://c:9090}\nbindings:\n- {name: b, streams: [s/t], max_replicas: 4, target: {kind: statefulset, namespace: n, name: tm}}\n",
        )
        .unwrap();
        let b = &config.bindings[0];
        assert_eq!(
            (b.min_replicas, b.slots_per_taskmanager, b.combine, b.source),
            (1, 1, Combine::Sum, SourceChoice::Auto)
        );
        assert_eq!(config.interval, Duration::from_secs(2));
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_place() {
        let text = FULL.replace("max_replicas: 32", "max_replicas: 32\n    max_replica: 3");
        assert!(
            error_of(&text).starts_with("bindings[0]"),
            "{}",
            error_of(&text)
        );
        assert!(error_of(&text).contains("max_replica"));
        assert!(error_of(&format!("{FULL}\nextra: 1\n")).contains("extra"));
    }

    #[test]
    fn wrong_types_name_the_field() {
        let text = FULL.replace("max_replicas: 32", "max_replicas: lots");
        assert!(
            error_of(&text).starts_with("bindings[0].max_replicas:"),
            "{}",
            error_of(&text)
        );
        let text = FULL.replace("max_replicas: 32", "max_replicas: -3");
        assert!(error_of(&text).starts_with("bindings[0].max_replicas:"));
    }

    #[test]
    fn a_missing_field_names_its_place_once() {
        let error = error_of(&FULL.replace("    max_replicas: 32\n", ""));
        assert!(
            error.starts_with("bindings[0]: missing field `max_replicas`"),
            "{error}"
        );
    }

    #[test]
    fn bad_durations_name_the_field() {
        let text = FULL.replace(
            "scale_down_stabilization: 60s",
            "scale_down_stabilization: soon",
        );
        let error = error_of(&text);
        assert!(
            error.starts_with("bindings[0].scale_down_stabilization:"),
            "{error}"
        );
        assert!(error.contains("invalid duration"));
        assert!(error_of(&FULL.replace("interval: 2s", "interval: 10ms")).starts_with("interval:"));
    }

    #[test]
    fn bounds_are_checked() {
        let error = error_of(&FULL.replace("max_replicas: 32", "max_replicas: 0"));
        assert_eq!(
            error,
            "bindings[0].max_replicas: 0 is below min_replicas (1)"
        );
        assert!(
            error_of(&FULL.replace("min_replicas: 1", "min_replicas: 0"))
                .starts_with("bindings[0].min_replicas:")
        );
        assert!(
            error_of(&FULL.replace("slots_per_taskmanager: 1", "slots_per_taskmanager: 0"))
                .starts_with("bindings[0].slots_per_taskmanager:")
        );
    }

    #[test]
    fn stream_names_must_be_scope_slash_stream() {
        for bad in ["demo", "demo/", "/load", "a/b/c", "de mo/load"] {
            let error = error_of(&FULL.replace("demo/load", bad));
            assert!(
                error.starts_with("bindings[0].streams[0]:"),
                "{bad}: {error}"
            );
        }
        assert!(
            error_of(&FULL.replace("streams: [demo/load]", "streams: []"))
                .starts_with("bindings[0].streams:")
        );
    }

    #[test]
    fn sources_must_be_configured() {
        let no_prometheus = FULL.replace("prometheus: {url: \"http://127.0.0.1:19090\"}\n", "");
        assert!(
            Config::parse(&no_prometheus).is_ok(),
            "auto works with the controller alone"
        );
        let error = error_of(&no_prometheus.replace("source: auto", "source: prometheus"));
        assert!(error.starts_with("bindings[0].source:"), "{error}");
        let neither =
            no_prometheus.replace("pravega: {controller: \"tcp://127.0.0.1:9090\"}\n", "");
        assert!(error_of(&neither).starts_with("bindings[0].source:"));
        assert!(
            error_of(&FULL.replace("tcp://127.0.0.1:9090", "127.0.0.1:9090"))
                .starts_with("pravega.controller:")
        );
        assert!(error_of(&FULL.replace("http://127.0.0.1:19090", "ftp://x"))
            .starts_with("prometheus.url:"));
    }

    #[test]
    fn command_targets_need_a_replicas_placeholder() {
        let text = FULL.replace(
            "kind: deployment\n      namespace: flink\n      name: flink-taskmanager",
            "kind: command\n      get: [stack, taskmanagers]\n      set: [stack, taskmanagers]",
        );
        assert_eq!(
            error_of(&text),
            "bindings[0].target.set: must contain {replicas} in an argument"
        );
        let good = text.replace(
            "set: [stack, taskmanagers]",
            "set: [stack, taskmanagers, \"{replicas}\"]",
        );
        assert!(matches!(
            Config::parse(&good).unwrap().bindings[0].target,
            TargetConfig::Command(_)
        ));
    }

    #[test]
    fn unknown_target_kinds_and_fields_are_rejected() {
        let error = error_of(&FULL.replace("kind: deployment", "kind: replicaset"));
        assert!(error.starts_with("bindings[0].target"), "{error}");
        let error = error_of(&FULL.replace(
            "name: flink-taskmanager",
            "name: flink-taskmanager\n      replicas: 3",
        ));
        assert!(error.starts_with("bindings[0].target"), "{error}");
    }

    #[test]
    fn binding_names_are_unique() {
        let text = FULL.replace("bindings:\n", "bindings:\n  - {name: busy-reader, streams: [a/b], max_replicas: 2, target: {kind: deployment, namespace: n, name: m}}\n");
        assert_eq!(
            error_of(&text),
            "bindings[1].name: \"busy-reader\" is used by another binding"
        );
    }

    #[test]
    fn timeouts_must_fit_in_the_reconciliation_deadline() {
        let defaults = Config::parse(FULL).unwrap();
        assert_eq!(defaults.reconcile_timeout, Duration::from_secs(30));
        assert_eq!(defaults.kubernetes.timeout, Duration::from_secs(5));
        assert_eq!(
            error_of(&format!("reconcile_timeout: 4s\n{FULL}")),
            "prometheus.timeout: 5s is longer than reconcile_timeout (4s); shorten it or raise reconcile_timeout"
        );
        let text = FULL.replace(
            "flink: {rest_url: \"http://127.0.0.1:8081\"}",
            "flink: {rest_url: \"http://127.0.0.1:8081\", timeout: 40s}",
        );
        assert!(error_of(&text).starts_with("bindings[0].flink.timeout: 40s is longer"));
        let command = FULL.replace(
            "kind: deployment\n      namespace: flink\n      name: flink-taskmanager",
            "kind: command\n      get: [g]\n      set: [s, \"{replicas}\"]\n      timeout: 1m",
        );
        assert!(error_of(&command).starts_with("bindings[0].target.timeout: 1m is longer"));
        assert!(error_of(&format!("kubernetes: {{timeout: 31s}}\n{FULL}"))
            .starts_with("kubernetes.timeout: 31s is longer"));
        assert!(
            error_of(&format!("reconcile_timeout: 10ms\n{FULL}")).starts_with("reconcile_timeout:")
        );
    }

    #[test]
    fn lease_timings_leave_a_deposed_leader_no_window() {
        let lease = |fields: &str| format!("leader_election: {{namespace: n, {fields}}}\n{FULL}");
        let config = Config::parse(&lease("identity: a")).unwrap();
        let le = config.leader_election.unwrap();
        assert_eq!(
            (le.lease_duration, le.renew_deadline, le.retry_period),
            (
                Duration::from_secs(15),
                Duration::from_secs(10),
                Duration::from_secs(2)
            )
        );
        assert_eq!(
            error_of(&lease("lease_duration: 12s")),
            "leader_election.renew_deadline: 10s plus kubernetes.timeout (5s) exceeds lease_duration (12s): a write started just before the deadline could land after a standby took over"
        );
        assert!(error_of(&lease("retry_period: 10s"))
            .starts_with("leader_election.retry_period: 10s must be shorter than renew_deadline"));
        assert!(error_of(&lease("lease_duration: 15500ms"))
            .starts_with("leader_election.lease_duration: must be whole seconds"));
        assert!(
            Config::parse(&lease(
                "lease_duration: 4s, renew_deadline: 2s, retry_period: 500ms"
            ))
            .is_err(),
            "2s + the default 5s kubernetes.timeout is over 4s"
        );
        let text = format!(
            "kubernetes: {{timeout: 1s}}\n{}",
            lease("lease_duration: 4s, renew_deadline: 2s, retry_period: 500ms")
        );
        assert!(Config::parse(&text).is_ok());
    }

    #[test]
    fn integer_settings_are_bounded() {
        assert_eq!(
            error_of(&FULL.replace("max_replicas: 32", "max_replicas: 4000000000")),
            "bindings[0].max_replicas: 4000000000 is above 32768, Flink's highest max parallelism"
        );
        assert!(
            error_of(&FULL.replace("max_replicas: 32", "max_replicas: 5000000000"))
                .starts_with("bindings[0].max_replicas:")
        );
        assert!(
            error_of(&FULL.replace("slots_per_taskmanager: 1", "slots_per_taskmanager: 2000"))
                .starts_with("bindings[0].slots_per_taskmanager: 2000 is above 1024")
        );
        let most = FULL
            .replace("max_replicas: 32", &format!("max_replicas: {MAX_REPLICAS}"))
            .replace(
                "slots_per_taskmanager: 1",
                &format!("slots_per_taskmanager: {MAX_SLOTS_PER_TASKMANAGER}"),
            );
        let b = &Config::parse(&most).unwrap().bindings[0];
        assert!(
            i32::try_from(u64::from(b.max_replicas) * u64::from(b.slots_per_taskmanager)).is_ok()
        );
    }

    #[test]
    fn any_resource_with_a_scale_subresource_is_a_target() {
        let text = FULL.replace(
            "kind: deployment\n      namespace: flink\n      name: flink-taskmanager",
            "kind: resource\n      api_version: flink.apache.org/v1beta1\n      resource_kind: FlinkDeployment\n      namespace: flink\n      name: reader-job",
        );
        let target = &Config::parse(&text).unwrap().bindings[0].target;
        let resource = target.scale_resource().unwrap();
        assert_eq!(
            (
                resource.group.as_str(),
                resource.version.as_str(),
                resource.plural.as_str()
            ),
            ("flink.apache.org", "v1beta1", "flinkdeployments")
        );
        assert_eq!(resource.api_version(), "flink.apache.org/v1beta1");
        assert_eq!(
            resource.to_string(),
            "flinkdeployment.flink.apache.org flink/reader-job"
        );
        let core = text.replace("flink.apache.org/v1beta1", "v1");
        let core = Config::parse(&core).unwrap();
        let resource = core.bindings[0].target.scale_resource().unwrap();
        assert_eq!(
            (resource.group.as_str(), resource.api_version().as_str()),
            ("", "v1")
        );
        let full = Config::parse(FULL).unwrap();
        let shortcut = full.bindings[0].target.scale_resource().unwrap();
        assert_eq!(shortcut.to_string(), "deployment flink/flink-taskmanager");
        assert_eq!(shortcut.api_version(), "apps/v1");
        assert!(error_of(&text.replace("flink.apache.org/v1beta1", "a/b/c"))
            .starts_with("bindings[0].target.api_version:"));
        assert!(error_of(&text.replace("FlinkDeployment", "\"\""))
            .starts_with("bindings[0].target.resource_kind:"));
        assert!(error_of(&text.replace("name: reader-job", "name: \"\""))
            .starts_with("bindings[0].target.name:"));
    }

    #[test]
    fn two_bindings_on_one_target_are_refused() {
        let second = "  - {name: other, streams: [a/b], max_replicas: 2, target: {kind: deployment, namespace: flink, name: flink-taskmanager}}\n";
        assert_eq!(
            error_of(&format!("{FULL}{second}")),
            "bindings[1].target: the same target as bindings[0] (deployments.apps flink/flink-taskmanager); two bindings would fight over it"
        );
        // The same object named through the generic form is the same target.
        let generic = second.replace(
            "kind: deployment,",
            "kind: resource, api_version: apps/v1, resource_kind: Deployment,",
        );
        assert!(error_of(&format!("{FULL}{generic}"))
            .starts_with("bindings[1].target: the same target"));
        let elsewhere = second.replace("namespace: flink", "namespace: other");
        assert!(Config::parse(&format!("{FULL}{elsewhere}")).is_ok());
    }

    #[test]
    fn the_lookback_outlasts_pravegas_eviction_in_whole_seconds() {
        let with = |lookback: &str| {
            FULL.replace(
                "prometheus: {url: \"http://127.0.0.1:19090\"}",
                &format!("prometheus: {{url: \"http://127.0.0.1:19090\", lookback: {lookback}}}"),
            )
        };
        let default = Config::parse(FULL).unwrap();
        assert_eq!(
            default.prometheus.unwrap().lookback,
            Duration::from_secs(86_400)
        );
        assert_eq!(
            Config::parse(&with("90m"))
                .unwrap()
                .prometheus
                .unwrap()
                .lookback,
            Duration::from_secs(5400)
        );
        for bad in ["4m", "300500ms"] {
            let error = error_of(&with(bad));
            assert!(
                error.starts_with("prometheus.lookback: ") && error.contains("at least 5m"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn the_prometheus_query_is_a_series_selector() {
        for good in [
            "pravega_controller_segments_count",
            "pravega_controller_segments_count{job=\"pravega\"}",
            "ns:segments",
        ] {
            assert!(is_series_selector(good), "{good}");
        }
        for bad in ["", "sum(x)", "x{a=\"b\"", "1x", "x{a=\"}\"}"] {
            assert!(!is_series_selector(bad), "{bad}");
        }
        let error = error_of(&FULL.replace(
            "prometheus: {url: \"http://127.0.0.1:19090\"}",
            "prometheus: {url: \"http://127.0.0.1:19090\", query: \"sum(x)\"}",
        ));
        assert!(
            error.starts_with("prometheus.query: \"sum(x)\" is not a metric name"),
            "{error}"
        );
    }

    #[test]
    fn the_alignment_mode_defaults_to_reactive_and_prewarmed_takes_a_headroom() {
        let flink = |alignment: &str| {
            FULL.replace(
                "flink: {rest_url: \"http://127.0.0.1:8081\"}",
                &format!("flink: {{rest_url: \"http://127.0.0.1:8081\"{alignment}}}"),
            )
        };
        let alignment = |text: &str| {
            Config::parse(text).unwrap().bindings[0]
                .flink
                .as_ref()
                .unwrap()
                .alignment
        };
        assert_eq!(alignment(&flink("")), Alignment::Reactive);
        assert_eq!(
            alignment(&flink(", alignment: {mode: prewarmed}")),
            Alignment::Prewarmed { headroom: 1 }
        );
        assert_eq!(
            alignment(&flink(", alignment: {mode: prewarmed, headroom: 0}")).headroom(),
            0
        );
        let error = error_of(&flink(", alignment: {mode: eager}"));
        assert!(
            error.starts_with("bindings[0].flink.alignment.mode:") && error.contains("eager"),
            "{error}"
        );
        let error = error_of(&flink(", alignment: {mode: reactive, headroom: 2}"));
        assert!(
            error.starts_with("bindings[0].flink.alignment") && error.contains("headroom"),
            "a headroom means nothing in reactive mode: {error}"
        );
        assert!(
            error_of(&flink(", alignment: {mode: prewarmed, headroom: 40000}"))
                .starts_with("bindings[0].flink.alignment.headroom: 40000 is above")
        );
    }
}

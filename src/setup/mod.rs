//! The composition root: sources, targets, Flink clients and the leader elector built from a
//! validated [`Config`]. Nothing else in the crate reads the configuration to build I/O.

mod security;

use std::path::PathBuf;
use std::sync::Arc;

use crate::actuate::{CommandTarget, KubernetesScaleTarget, ScaleTarget};
use crate::config::{Binding, Config, KubernetesConfig, PravegaConfig, TargetConfig};
use crate::credentials::InvalidToken;
use crate::flink::FlinkClient;
use crate::leader::{LeaderElector, LeaseTimings};
use crate::observe::controller::StreamPolicies;
use crate::observe::{ControllerSource, PrometheusSource, SegmentSource, Sources};
use crate::plan::backlog::TuningBounds;
use crate::reconcile::{Autoscaler, LiveBinding};
use crate::segment_scaler::watch::{BindingBuilder, SegmentScalers, WATCH_SECONDS};
use crate::telemetry::Telemetry;

/// Why the autoscaler could not be set up from a valid configuration.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The kubeconfig file named by `kubernetes.kubeconfig` is unusable.
    #[error("kubernetes.kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        source: kube::config::KubeconfigError,
    },
    /// No Kubernetes configuration could be inferred (KUBECONFIG, ~/.kube/config, in-cluster).
    #[error("kubernetes client: {0}")]
    InferConfig(#[from] kube::config::InferConfigError),
    /// The Kubernetes client could not be built from its configuration.
    #[error("kubernetes client: {0}")]
    Client(#[from] kube::Error),
    /// A Deployment or StatefulSet target, or leader election, without a Kubernetes client.
    #[error("{0} needs a Kubernetes client")]
    NoKubernetes(String),
    /// A file the configuration names (a CA, a certificate, a secret) could not be read.
    #[error("{field}: {path}: {source}")]
    File {
        /// The config field naming the file.
        field: String,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A CA or certificate file holds no usable PEM.
    #[error("{field}: {path}: {message}")]
    Pem {
        /// The config field naming the file.
        field: String,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A secret's value cannot be sent.
    #[error("{field}: {source}")]
    InvalidSecret {
        /// The config field naming the secret.
        field: String,
        /// Why.
        source: InvalidToken,
    },
    /// A secret's environment variable is not set.
    #[error("{field}: environment variable {name} is not set")]
    SecretEnv {
        /// The config field naming the variable.
        field: String,
        /// The variable.
        name: String,
    },
    /// The controller source could not be made from `pravega.controller` and its TLS settings.
    #[error("pravega.controller: {0}")]
    Controller(String),
    /// Neither a file nor an environment variable holds a required secret.
    #[error("{field}: no password_file or password_env is set")]
    NoSecret {
        /// The config field naming the secret.
        field: String,
    },
}

impl SetupError {
    /// Whether the configuration is at fault (a file or variable it names), which the binary
    /// reports as a configuration error.
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            SetupError::File { .. }
                | SetupError::Pem { .. }
                | SetupError::InvalidSecret { .. }
                | SetupError::SecretEnv { .. }
                | SetupError::NoSecret { .. }
                | SetupError::Controller(_)
        )
    }
}

/// Whether the configuration needs a Kubernetes client.
pub fn needs_kubernetes(config: &Config) -> bool {
    config.leader_election.is_some()
        || config.segment_scalers.is_some()
        || config
            .bindings
            .iter()
            .any(|b| !matches!(b.target, TargetConfig::Command(_)))
}

/// The Kubernetes clients: one for calls, one for watches.
#[derive(Clone)]
pub struct KubeClients {
    /// Every call bounded by `kubernetes.timeout`.
    pub calls: kube::Client,
    /// For watches: the API server sends nothing on a quiet watch until it closes it after
    /// [`WATCH_SECONDS`], so each read may wait a little longer than that (and no longer: a
    /// silent API server is noticed, and the watch started again).
    pub watches: kube::Client,
}

/// Kubernetes clients from `kubernetes.kubeconfig`, or inferred (KUBECONFIG, ~/.kube/config,
/// in-cluster ServiceAccount), every call bounded by `kubernetes.timeout`.
pub async fn kube_clients(config: &KubernetesConfig) -> Result<KubeClients, SetupError> {
    let mut kube_config = match &config.kubeconfig {
        Some(path) => {
            let kubeconfig_error = |source| SetupError::Kubeconfig {
                path: path.clone(),
                source,
            };
            let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(kubeconfig_error)?;
            kube::Config::from_custom_kubeconfig(
                kubeconfig,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .map_err(kubeconfig_error)?
        }
        None => kube::Config::infer().await?,
    };
    // kube sets no read timeout: without one, an apiserver that accepts a request and never
    // answers would hold the call forever.
    let timeout = Some(config.timeout);
    kube_config.connect_timeout = timeout;
    kube_config.write_timeout = timeout;
    let mut watch_config = kube_config.clone();
    kube_config.read_timeout = timeout;
    watch_config.read_timeout = Some(std::time::Duration::from_secs(
        u64::from(WATCH_SECONDS) + 10,
    ));
    Ok(KubeClients {
        calls: kube::Client::try_from(kube_config)?,
        watches: kube::Client::try_from(watch_config)?,
    })
}

/// The configured segment-count sources.
pub fn sources(config: &Config) -> Result<Sources, SetupError> {
    let mut sources: Vec<Box<dyn SegmentSource>> = Vec::new();
    if let Some(p) = &config.prometheus {
        sources.push(Box::new(PrometheusSource::new(p, security::prometheus(p)?)));
    }
    if let Some(p) = &config.pravega {
        sources.push(Box::new(controller_source(p)?));
    }
    Ok(Sources::new(sources))
}

/// The controller source of `pravega`, with its CA and credentials.
pub fn controller_source(pravega: &PravegaConfig) -> Result<ControllerSource, SetupError> {
    ControllerSource::new(pravega, security::controller(pravega)?)
        .map_err(|e| SetupError::Controller(e.to_string()))
}

/// The autoscaler for a validated configuration. `kube` is required when [`needs_kubernetes`]
/// says so; `identity` names this replica in Events. With `segment_scalers`, it starts
/// watching them.
pub fn autoscaler(
    config: &Config,
    kube: Option<&KubeClients>,
    identity: &str,
    telemetry: Arc<Telemetry>,
) -> Result<Autoscaler, SetupError> {
    // One controller client for every binding's policy reads (apart from the source's: a
    // slow policy read never delays a count).
    let policies: Option<Arc<dyn StreamPolicies>> = match &config.pravega {
        Some(p) => Some(Arc::new(controller_source(p)?)),
        None => None,
    };
    let bindings = config
        .bindings
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let calls = kube.map(|k| &k.calls);
            let section = format!("bindings[{i}]");
            live_binding(config, calls, identity, b, &section, policies.clone())
        })
        .collect::<Result<Vec<_>, SetupError>>()?;
    let autoscaler = Autoscaler::new(sources(config)?, bindings, telemetry);
    if config.segment_scalers.is_none() {
        return Ok(autoscaler);
    }
    let KubeClients { calls, watches } = kube
        .cloned()
        .ok_or_else(|| SetupError::NoKubernetes("segment_scalers".into()))?;
    let (config_for_build, identity) = (config.clone(), identity.to_string());
    let build_client = calls.clone();
    let build: BindingBuilder = Box::new(move |binding| {
        live_binding(
            &config_for_build,
            Some(&build_client),
            &identity,
            binding,
            // Their files and variables are named in this section.
            "segment_scalers",
            policies.clone(),
        )
        .map_err(|e| e.to_string())
    });
    let scalers = SegmentScalers::start(
        watches,
        calls,
        config.kubernetes.timeout,
        config.clone(),
        build,
    );
    Ok(autoscaler.with_declared(Box::new(scalers)))
}

/// One binding's live parts: its target, Flink client and where its streams' policies are
/// read; `section` names it in errors.
fn live_binding(
    config: &Config,
    kube: Option<&kube::Client>,
    identity: &str,
    b: &Binding,
    section: &str,
    policies: Option<Arc<dyn StreamPolicies>>,
) -> Result<LiveBinding, SetupError> {
    let target: Box<dyn ScaleTarget> = match &b.target {
        TargetConfig::Command(command) => Box::new(CommandTarget::new(
            command.get.clone(),
            command.set.clone(),
            command.timeout,
        )),
        TargetConfig::Kubernetes(resource) => Box::new(KubernetesScaleTarget::new(
            kube.cloned()
                .ok_or_else(|| SetupError::NoKubernetes(format!("target {resource}")))?,
            resource.clone(),
            identity,
            config.kubernetes.timeout,
        )),
    };
    let flink = b
        .flink
        .as_ref()
        .map(|f| {
            let section = format!("{section}.flink");
            let security = security::flink(&section, f)?;
            Ok::<_, SetupError>(FlinkClient::secured(
                &f.rest_url,
                f.timeout,
                security,
                &section,
            ))
        })
        .transpose()?;
    let binding = LiveBinding::new(b.clone(), target, flink);
    let tuning = config
        .pravega
        .as_ref()
        .and_then(|p| p.tune_scaling_policy)
        .filter(|t| t.enabled)
        .map(|t| TuningBounds {
            min_target: t.min_target,
            max_target: t.max_target,
            min_segments: t.min_segments,
            max_segments: t.max_segments.unwrap_or(b.max_replicas).max(t.min_segments),
        });
    Ok(match policies {
        Some(policies) => binding.with_policies(policies, tuning),
        None => binding,
    })
}

/// The leader elector, when leader election is configured.
pub fn leader_elector(
    config: &Config,
    kube: Option<&KubeClients>,
    identity: &str,
) -> Result<Option<LeaderElector>, SetupError> {
    let Some(le) = &config.leader_election else {
        return Ok(None);
    };
    let client = kube
        .map(|k| k.calls.clone())
        .ok_or_else(|| SetupError::NoKubernetes("leader election".into()))?;
    Ok(Some(LeaderElector::new(
        client,
        &le.namespace,
        &le.lease_name,
        identity,
        LeaseTimings::from(le),
        config.kubernetes.timeout,
    )))
}

/// This replica's identity: `leader_election.identity`, else host name and process id.
pub fn identity(config: &Config) -> String {
    config
        .leader_election
        .as_ref()
        .and_then(|le| le.identity.clone())
        .unwrap_or_else(crate::leader::default_identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMAND_TARGET: &str = "{kind: command, get: [x], set: [x, '{replicas}']}";

    fn config(extra: &str, target: &str) -> Config {
        Config::parse(&format!(
            "pravega: {{controller: tcp://127.0.0.1:1}}\n{extra}bindings:\n- {{name: b, streams: [s/t], max_replicas: 2, target: {target}}}\n"
        ))
        .unwrap()
    }

    #[tokio::test]
    async fn command_targets_need_no_kubernetes() {
        let config = config("", COMMAND_TARGET);
        assert!(!needs_kubernetes(&config));
        let autoscaler = autoscaler(
            &config,
            None,
            "me",
            Telemetry::new(config.interval, config.reconcile_timeout),
        );
        assert!(autoscaler.is_ok());
    }

    #[tokio::test]
    async fn kubernetes_targets_and_leases_are_refused_without_a_client() {
        let config = config("", "{kind: deployment, namespace: n, name: tm}");
        assert!(needs_kubernetes(&config));
        let error = autoscaler(
            &config,
            None,
            "me",
            Telemetry::new(config.interval, config.reconcile_timeout),
        )
        .err()
        .unwrap();
        assert_eq!(
            error.to_string(),
            "target deployment n/tm needs a Kubernetes client"
        );
        let config = config_with_lease();
        assert!(needs_kubernetes(&config));
        assert!(leader_elector(&config, None, "me").is_err());
        assert_eq!(identity(&config), "pod-a");
    }

    fn config_with_lease() -> Config {
        config(
            "leader_election: {namespace: n, identity: pod-a}\n",
            COMMAND_TARGET,
        )
    }

    #[tokio::test]
    async fn secrets_that_cannot_be_read_name_their_field() {
        let config = config(
            "prometheus: {url: 'http://p:1', bearer_token_file: /nonexistent/token}\n",
            COMMAND_TARGET,
        );
        let error = sources(&config).err().unwrap().to_string();
        assert!(
            error.starts_with("prometheus.bearer_token_file: /nonexistent/token:"),
            "{error}"
        );
        let config = self::config(
            "prometheus: {url: 'http://p:1', bearer_token_env: SEGMENT_AUTOSCALER_NO_SUCH_VAR}\n",
            COMMAND_TARGET,
        );
        let error = sources(&config).err().unwrap().to_string();
        assert_eq!(
            error,
            "prometheus.bearer_token_env: environment variable SEGMENT_AUTOSCALER_NO_SUCH_VAR is not set"
        );
    }

    #[tokio::test]
    async fn a_token_no_header_can_carry_is_an_error_naming_its_field() {
        let file = std::env::temp_dir().join(format!("token-{}", std::process::id()));
        std::fs::write(&file, "abc\u{7}def\n").unwrap();
        let config = config(
            &format!(
                "prometheus: {{url: 'http://p:1', bearer_token_file: {}}}\n",
                file.display()
            ),
            COMMAND_TARGET,
        );
        let error = sources(&config).err().unwrap().to_string();
        std::fs::remove_file(&file).unwrap();
        assert!(
            error.starts_with("prometheus.bearer_token_file: the secret holds a character"),
            "{error}"
        );
        assert!(!error.contains("abc"), "the token is not shown: {error}");
    }

    #[tokio::test]
    async fn a_broken_kubeconfig_names_the_field_and_file() {
        let file = std::env::temp_dir().join(format!("sa-kubeconfig-{}", std::process::id()));
        std::fs::write(&file, "not: [a kubeconfig").unwrap();
        let config = config(
            &format!("kubernetes: {{kubeconfig: {}}}\n", file.display()),
            COMMAND_TARGET,
        );
        let error = kube_clients(&config.kubernetes)
            .await
            .err()
            .unwrap()
            .to_string();
        std::fs::remove_file(&file).unwrap();
        assert!(
            error.starts_with(&format!("kubernetes.kubeconfig {}:", file.display())),
            "{error}"
        );
    }
}

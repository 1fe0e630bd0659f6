//! Actuate: read and set a binding's replica count, through the Kubernetes scale subresource
//! of any resource that has one (Deployment, StatefulSet, a `FlinkDeployment`...), or through
//! external commands.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::autoscaling::v1::{Scale, ScaleSpec};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use crate::domain::ErrorReason;

/// Why a target could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum ActuateError {
    /// The Kubernetes API refused or failed the request.
    #[error("{target}: {source}")]
    Kubernetes {
        /// The target, e.g. `deployment flink/flink-taskmanager`.
        target: String,
        /// The API error.
        source: kube::Error,
    },
    /// Someone else changed the scale between our read and our write; re-read next tick.
    #[error("{target}: changed by another writer since it was read; will re-read")]
    Conflict {
        /// The target.
        target: String,
    },
    /// The API did not answer within `kubernetes.timeout`.
    #[error("{target}: no answer within {after:?}")]
    KubernetesTimeout {
        /// The target.
        target: String,
        /// The timeout.
        after: Duration,
    },
    /// The API answered with a scale no workload can have.
    #[error("{target}: the scale subresource says {message}")]
    InvalidScale {
        /// The target.
        target: String,
        /// What is wrong.
        message: String,
    },
    /// An external command did not finish in time (it is killed).
    #[error("command {command:?}: did not finish within {after:?}")]
    CommandTimeout {
        /// The argv, joined.
        command: String,
        /// Its timeout.
        after: Duration,
    },
    /// An external command could not start or failed.
    #[error("command {command:?}: {message}")]
    Command {
        /// The argv, joined.
        command: String,
        /// What went wrong.
        message: String,
    },
    /// The `get` command printed something that is not a replica count.
    #[error("command {command:?}: printed {output:?}, not a replica count")]
    CommandOutput {
        /// The argv, joined.
        command: String,
        /// What it printed, trimmed.
        output: String,
    },
}

impl ActuateError {
    /// The bounded label of `scale_errors_total`.
    pub fn reason(&self) -> ErrorReason {
        match self {
            ActuateError::Kubernetes { source, .. } => kube_error_reason(source),
            ActuateError::Conflict { .. } => ErrorReason::Conflict,
            ActuateError::InvalidScale { .. } | ActuateError::CommandOutput { .. } => {
                ErrorReason::InvalidAnswer
            }
            ActuateError::CommandTimeout { .. } | ActuateError::KubernetesTimeout { .. } => {
                ErrorReason::Timeout
            }
            ActuateError::Command { .. } => ErrorReason::Rejected,
        }
    }
}

/// The reason a Kubernetes client call failed for.
pub fn kube_error_reason(error: &kube::Error) -> ErrorReason {
    match error {
        kube::Error::Api(status) => ErrorReason::of_http_status(status.code),
        kube::Error::SerdeError(_) => ErrorReason::InvalidAnswer,
        kube::Error::HyperError(e) if e.is_timeout() => ErrorReason::Timeout,
        kube::Error::Service(e)
            if e.is::<tokio::time::error::Elapsed>() || e.to_string().contains("timed out") =>
        {
            ErrorReason::Timeout
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => ErrorReason::Unreachable,
        _ => ErrorReason::Rejected,
    }
}

/// A replica count as read, with what is needed to change it safely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replicas {
    /// Desired replicas of the target (spec, not status).
    pub count: u32,
    /// The object's resourceVersion when read (Kubernetes targets), so a write fails instead
    /// of overwriting a concurrent change.
    pub version: Option<String>,
}

/// Something whose replica count the autoscaler sets.
#[async_trait]
pub trait ScaleTarget: Send + Sync {
    /// A description for logs, e.g. `deployment flink/flink-taskmanager`.
    fn describe(&self) -> String;

    /// Reads the current replica count.
    async fn current(&self) -> Result<Replicas, ActuateError>;

    /// Changes the count from `current` to `replicas`; `reason` is recorded where the target
    /// can keep it (a Kubernetes Event).
    async fn apply(
        &self,
        current: &Replicas,
        replicas: u32,
        reason: &str,
    ) -> Result<(), ActuateError>;

    /// Records a notice (`reason` in PascalCase, a `note` for people) where the target can
    /// keep one (a Kubernetes Event); best effort, nothing by default.
    async fn record(&self, _reason: &str, _note: &str) {}
}

/// A resource whose scale subresource a binding sets: where it lives in the API.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScaleResource {
    /// API group, empty for the core group.
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Plural resource name, e.g. `deployments`.
    pub plural: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ScaleResource {
    /// An `apps/v1` Deployment.
    pub fn deployment(namespace: &str, name: &str) -> Self {
        Self::apps("Deployment", "deployments", namespace, name)
    }

    /// An `apps/v1` StatefulSet.
    pub fn statefulset(namespace: &str, name: &str) -> Self {
        Self::apps("StatefulSet", "statefulsets", namespace, name)
    }

    fn apps(kind: &str, plural: &str, namespace: &str, name: &str) -> Self {
        ScaleResource {
            group: "apps".into(),
            version: "v1".into(),
            kind: kind.into(),
            plural: plural.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// Any resource: `api_version` is `group/version` (`version` for core); `plural` defaults
    /// to the kind in lower case + `s`. Not validated (see `Config::parse`): a malformed
    /// `api_version` keeps a `/` in its version.
    pub fn new(
        api_version: &str,
        kind: &str,
        plural: Option<&str>,
        namespace: &str,
        name: &str,
    ) -> Self {
        let (group, version) = match api_version.split_once('/') {
            Some((group, version)) if !group.is_empty() => (group, version),
            _ => ("", api_version),
        };
        ScaleResource {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.map_or_else(|| format!("{}s", kind.to_lowercase()), String::from),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// `group/version` (or `version` for the core group).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

impl std::fmt::Display for ScaleResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = self.kind.to_lowercase();
        match self.group.as_str() {
            "" | "apps" => write!(f, "{kind} {}/{}", self.namespace, self.name),
            group => write!(f, "{kind}.{group} {}/{}", self.namespace, self.name),
        }
    }
}

/// The scale subresource of a namespaced resource (Deployment, StatefulSet, or any resource
/// that has one, such as a `FlinkDeployment`), with Events through kube-runtime's [`Recorder`]
/// (events.k8s.io, repeats aggregated into a series).
pub struct KubernetesScaleTarget {
    api: Api<DynamicObject>,
    resource: ScaleResource,
    recorder: Recorder,
    timeout: Duration,
}

impl KubernetesScaleTarget {
    /// A target for `resource`, acting with `client`'s identity and naming
    /// `reporting_instance` in its Events; each call bounded by `timeout` as a whole (the
    /// client's own timeouts bound each read, not a slow trickle).
    pub fn new(
        client: kube::Client,
        resource: ScaleResource,
        reporting_instance: &str,
        timeout: Duration,
    ) -> Self {
        let gvk = GroupVersionKind::gvk(&resource.group, &resource.version, &resource.kind);
        let api_resource = ApiResource::from_gvk_with_plural(&gvk, &resource.plural);
        let reporter = Reporter {
            controller: "segment-autoscaler".into(),
            instance: Some(reporting_instance.into()),
        };
        KubernetesScaleTarget {
            api: Api::namespaced_with(client.clone(), &resource.namespace, &api_resource),
            recorder: Recorder::new(client, reporter),
            resource,
            timeout,
        }
    }

    /// Runs one API call within the timeout.
    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, ActuateError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(answer) => answer.map_err(|e| self.error(e)),
            Err(_) => Err(ActuateError::KubernetesTimeout {
                target: self.describe(),
                after: self.timeout,
            }),
        }
    }

    fn error(&self, source: kube::Error) -> ActuateError {
        match source {
            kube::Error::Api(status) if status.code == 409 => ActuateError::Conflict {
                target: self.describe(),
            },
            source => ActuateError::Kubernetes {
                target: self.describe(),
                source,
            },
        }
    }

    fn reference(&self, uid: Option<String>) -> ObjectReference {
        ObjectReference {
            api_version: Some(self.resource.api_version()),
            kind: Some(self.resource.kind.clone()),
            name: Some(self.resource.name.clone()),
            namespace: Some(self.resource.namespace.clone()),
            uid,
            ..ObjectReference::default()
        }
    }

    /// Publishes an Event on the resource. Best effort: what it reports already happened.
    async fn publish(&self, uid: Option<String>, reason: &str, note: &str) {
        // The API refuses notes over 1 kB.
        let note: String = note.chars().take(1000).collect();
        let event = Event {
            type_: EventType::Normal,
            reason: reason.into(),
            note: Some(note),
            action: "Scale".into(),
            secondary: None,
        };
        let reference = self.reference(uid);
        if let Err(e) = self
            .bounded(self.recorder.publish(&event, &reference))
            .await
        {
            tracing::warn!(target_ref = %self.describe(), error = %e, "could not record an Event");
        }
    }
}

#[async_trait]
impl ScaleTarget for KubernetesScaleTarget {
    fn describe(&self) -> String {
        self.resource.to_string()
    }

    async fn current(&self) -> Result<Replicas, ActuateError> {
        let scale = self
            .bounded(self.api.get_scale(&self.resource.name))
            .await?;
        // The API leaves `replicas` out when it is 0.
        let count = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let count = u32::try_from(count).map_err(|_| ActuateError::InvalidScale {
            target: self.describe(),
            message: format!("{count} replicas"),
        })?;
        Ok(Replicas {
            count,
            version: scale.metadata.resource_version,
        })
    }

    async fn apply(
        &self,
        current: &Replicas,
        replicas: u32,
        reason: &str,
    ) -> Result<(), ActuateError> {
        if current.count == replicas {
            return Ok(());
        }
        // Validation bounds replicas far below i32::MAX; never write a clamped number.
        let replicas_field = i32::try_from(replicas).map_err(|_| ActuateError::InvalidScale {
            target: self.describe(),
            message: format!("{replicas} replicas would be written, beyond what it can hold"),
        })?;
        // A replace carrying the resourceVersion we read: if another writer changed the scale
        // meanwhile, the API server answers 409 and nothing is overwritten.
        let scale = Scale {
            metadata: ObjectMeta {
                name: Some(self.resource.name.clone()),
                namespace: Some(self.resource.namespace.clone()),
                resource_version: current.version.clone(),
                ..ObjectMeta::default()
            },
            spec: Some(ScaleSpec {
                replicas: Some(replicas_field),
            }),
            status: None,
        };
        let written = self
            .bounded(
                self.api
                    .replace_scale(&self.resource.name, &PostParams::default(), &scale),
            )
            .await?;
        let direction = if replicas > current.count {
            "ScaledUp"
        } else {
            "ScaledDown"
        };
        let note = format!("replicas {} -> {replicas}: {reason}", current.count);
        self.publish(written.metadata.uid, direction, &note).await;
        Ok(())
    }

    async fn record(&self, reason: &str, note: &str) {
        self.publish(None, reason, note).await;
    }
}

/// External commands: `get` prints the current count; `set` applies one, with `{replicas}` in
/// its arguments replaced by the count. For bare-metal setups and the local demo.
pub struct CommandTarget {
    get: Vec<String>,
    set: Vec<String>,
    timeout: Duration,
}

impl CommandTarget {
    /// A target running `get` and `set` (argv lists), each within `timeout`.
    pub fn new(get: Vec<String>, set: Vec<String>, timeout: Duration) -> Self {
        CommandTarget { get, set, timeout }
    }

    async fn run(&self, argv: &[String]) -> Result<String, ActuateError> {
        let failed = |message: String| ActuateError::Command {
            command: argv.join(" "),
            message,
        };
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| failed("empty command".into()))?;
        let child = tokio::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(self.timeout, child)
            .await
            .map_err(|_| ActuateError::CommandTimeout {
                command: argv.join(" "),
                after: self.timeout,
            })?
            .map_err(|e| failed(format!("could not start: {e}")))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(failed(format!("{}: {}", output.status, stderr.trim())));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

#[async_trait]
impl ScaleTarget for CommandTarget {
    fn describe(&self) -> String {
        format!("command {}", self.set.join(" "))
    }

    async fn current(&self) -> Result<Replicas, ActuateError> {
        let stdout = self.run(&self.get).await?;
        let count = stdout
            .trim()
            .parse::<u32>()
            .map_err(|_| ActuateError::CommandOutput {
                command: self.get.join(" "),
                output: stdout.trim().into(),
            })?;
        Ok(Replicas {
            count,
            version: None,
        })
    }

    async fn apply(
        &self,
        current: &Replicas,
        replicas: u32,
        _reason: &str,
    ) -> Result<(), ActuateError> {
        if current.count == replicas {
            return Ok(());
        }
        let argv: Vec<String> = self
            .set
            .iter()
            .map(|arg| arg.replace("{replicas}", &replicas.to_string()))
            .collect();
        self.run(&argv).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[tokio::test]
    async fn command_target_reads_and_sets_through_its_commands() {
        let dir = std::env::temp_dir().join(format!("sa-command-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("replicas");
        std::fs::write(&file, "2\n").unwrap();
        let target = CommandTarget::new(
            sh(&format!("cat {}", file.display())),
            vec![
                "sh".into(),
                "-c".into(),
                format!("echo $0 > {}", file.display()),
                "{replicas}".into(),
            ],
            Duration::from_secs(10),
        );
        let current = target.current().await.unwrap();
        assert_eq!(current.count, 2);
        target.apply(&current, 5, "test").await.unwrap();
        assert_eq!(target.current().await.unwrap().count, 5);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn command_target_reports_failures_and_garbage() {
        let timeout = Duration::from_secs(10);
        let garbage = CommandTarget::new(sh("echo lots"), sh("true"), timeout);
        let error = garbage.current().await.unwrap_err();
        assert_eq!(error.reason(), ErrorReason::InvalidAnswer);
        let error = error.to_string();
        assert!(
            error.contains("printed \"lots\", not a replica count"),
            "{error}"
        );
        let failing = CommandTarget::new(sh("echo broken >&2; exit 3"), sh("exit 1"), timeout);
        let error = failing.current().await.unwrap_err();
        assert_eq!(error.reason(), ErrorReason::Rejected);
        let error = error.to_string();
        assert!(
            error.contains("broken") && error.contains("exit status: 3"),
            "{error}"
        );
        let error = failing
            .apply(
                &Replicas {
                    count: 1,
                    version: None,
                },
                2,
                "r",
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("exit status: 1"), "{error}");
        let slow = CommandTarget::new(sh("sleep 5"), sh("true"), Duration::from_millis(200));
        let error = slow.current().await.unwrap_err();
        assert_eq!(error.reason(), ErrorReason::Timeout);
        assert!(error.to_string().contains("did not finish"), "{error}");
        let missing = CommandTarget::new(vec!["/nonexistent/tool".into()], sh("true"), timeout);
        assert!(missing
            .current()
            .await
            .unwrap_err()
            .to_string()
            .contains("could not start"));
    }

    #[test]
    fn kubernetes_errors_have_their_reasons() {
        let api = |code: u16| {
            let status = kube::core::Status::failure("refused", "Reason").with_code(code);
            ActuateError::Kubernetes {
                target: "deployment flink/tm".into(),
                source: kube::Error::Api(Box::new(status)),
            }
            .reason()
        };
        assert_eq!(api(403), ErrorReason::Forbidden);
        assert_eq!(api(404), ErrorReason::NotFound);
        assert_eq!(api(500), ErrorReason::Rejected);
        let conflict = ActuateError::Conflict {
            target: "deployment flink/tm".into(),
        };
        assert_eq!(conflict.reason(), ErrorReason::Conflict);
        let bad_json = serde_json::from_str::<u32>("x").unwrap_err();
        assert_eq!(
            kube_error_reason(&kube::Error::SerdeError(bad_json)),
            ErrorReason::InvalidAnswer
        );
        let elapsed: Box<dyn std::error::Error + Send + Sync> = Box::new(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "operation timed out",
        ));
        assert_eq!(
            kube_error_reason(&kube::Error::Service(elapsed)),
            ErrorReason::Timeout
        );
        let refused: Box<dyn std::error::Error + Send + Sync> = Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        ));
        assert_eq!(
            kube_error_reason(&kube::Error::Service(refused)),
            ErrorReason::Unreachable
        );
    }

    #[tokio::test]
    async fn no_write_when_already_at_target() {
        // `set` would fail, so success proves it was not run.
        let target = CommandTarget::new(sh("echo 3"), sh("exit 1"), Duration::from_secs(10));
        target
            .apply(
                &Replicas {
                    count: 3,
                    version: None,
                },
                3,
                "aligned",
            )
            .await
            .unwrap();
    }
}

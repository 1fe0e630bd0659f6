//! From the SegmentScalers seen to the bindings they declare: each spec becomes a [`Binding`],
//! checked by the same code as a file's, or a [`Refusal`] that its status shows. Pure.

use std::collections::HashSet;
use std::time::Duration;

use crate::actuate::ScaleResource;
use crate::config::{defaults, Binding, Config, ConfigError, FlinkConfig, TargetConfig};
use crate::domain::{Alignment, StreamId};

use super::{AlignmentModeSpec, SegmentScaler, SegmentScalerSpec};

/// A SegmentScaler's identity: its namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScalerKey {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl std::fmt::Display for ScalerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Why a SegmentScaler declares no binding; shown as its `Ready=False` reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A value the API server's schema cannot check (a duration too short, a target's
    /// apiVersion) is wrong; the message names the field.
    InvalidSpec(String),
    /// Another binding (an older SegmentScaler, or the file's) already scales this target.
    Conflict(String),
    /// The autoscaler cannot build its clients: a file or variable its configuration names
    /// for SegmentScalers (`segment_scalers.flink`) is unusable.
    SetupFailed(String),
}

impl Refusal {
    /// The condition reason: a bounded word.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::InvalidSpec(_) => "InvalidSpec",
            Refusal::Conflict(_) => "Conflict",
            Refusal::SetupFailed(_) => "SetupFailed",
        }
    }

    /// The condition message.
    pub fn message(&self) -> &str {
        match self {
            Refusal::InvalidSpec(message)
            | Refusal::Conflict(message)
            | Refusal::SetupFailed(message) => message,
        }
    }
}

/// What one SegmentScaler declares.
#[derive(Debug, Clone)]
pub struct Declared {
    /// Which SegmentScaler.
    pub key: ScalerKey,
    /// Its `metadata.generation`, for `status.observedGeneration`.
    pub generation: Option<i64>,
    /// The spec it was declared from, to tell an edit.
    pub spec: SegmentScalerSpec,
    /// Its binding, or why it has none.
    pub binding: Result<Binding, Refusal>,
}

/// The bindings `scalers` declare, in a stable order. A target already scaled by a file
/// binding, or by an older SegmentScaler (creation time, then namespace and name), is refused
/// as a [`Refusal::Conflict`]: one writer per target, whichever was there first.
pub fn declare(scalers: &[&SegmentScaler], config: &Config) -> Vec<Declared> {
    let mut ordered: Vec<&SegmentScaler> = scalers.to_vec();
    ordered.sort_by_key(|s| (s.metadata.creation_timestamp.clone().map(|t| t.0), key(s)));
    let mut claimed: HashSet<String> = config
        .bindings
        .iter()
        .map(|b| b.target.identity())
        .collect();
    let mut owners: Vec<(String, ScalerKey)> = Vec::new();
    ordered
        .into_iter()
        .map(|scaler| {
            let key = key(scaler);
            let binding = binding(scaler, config).and_then(|binding| {
                let target = binding.target.identity();
                if claimed.insert(target.clone()) {
                    owners.push((target, key.clone()));
                    return Ok(binding);
                }
                let owner = owners.iter().find(|(t, _)| *t == target).map_or_else(
                    || "a binding of the configuration file".to_string(),
                    |(_, owner)| format!("SegmentScaler {owner}"),
                );
                Err(Refusal::Conflict(format!(
                    "{target} is already scaled by {owner}; two writers would fight over it"
                )))
            });
            Declared {
                key,
                generation: scaler.metadata.generation,
                spec: scaler.spec.clone(),
                binding,
            }
        })
        .collect()
}

fn key(scaler: &SegmentScaler) -> ScalerKey {
    ScalerKey {
        namespace: scaler.metadata.namespace.clone().unwrap_or_default(),
        name: scaler.metadata.name.clone().unwrap_or_default(),
    }
}

/// The binding a SegmentScaler's spec declares, checked like a file's; errors name the spec's
/// field (`spec.maxReplicas`).
pub fn binding(scaler: &SegmentScaler, config: &Config) -> Result<Binding, Refusal> {
    let refused = |e: ConfigError| Refusal::InvalidSpec(e.to_string());
    let spec = &scaler.spec;
    let namespace = scaler.metadata.namespace.as_deref().unwrap_or_default();
    let binding = Binding {
        name: scaler.binding_name(),
        streams: streams(spec).map_err(refused)?,
        combine: spec.combine.unwrap_or_default(),
        source: spec.source.unwrap_or_default(),
        min_replicas: spec.min_replicas.unwrap_or(defaults::min_replicas()),
        max_replicas: spec.max_replicas,
        slots_per_taskmanager: spec
            .slots_per_task_manager
            .unwrap_or(defaults::slots_per_taskmanager()),
        scale_down_stabilization: duration(
            "scaleDownStabilization",
            spec.scale_down_stabilization.as_deref(),
            defaults::scale_down_stabilization(),
        )
        .map_err(refused)?,
        target: TargetConfig::Kubernetes(ScaleResource::new(
            &spec.target.api_version,
            &spec.target.kind,
            spec.target.plural.as_deref(),
            namespace,
            &spec.target.name,
        )),
        flink: flink(spec, config).map_err(refused)?,
    };
    config
        .validate_binding(&binding, &spec_field)
        .map_err(refused)?;
    Ok(binding)
}

fn streams(spec: &SegmentScalerSpec) -> Result<Vec<StreamId>, ConfigError> {
    spec.streams
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse()
                .map_err(|message| invalid(&format!("spec.streams[{i}]"), message))
        })
        .collect()
}

/// The spec's Flink job, reached with the configuration's `segment_scalers.flink` security.
fn flink(spec: &SegmentScalerSpec, config: &Config) -> Result<Option<FlinkConfig>, ConfigError> {
    let Some(f) = &spec.flink else {
        return Ok(None);
    };
    let alignment = match &f.alignment {
        None => Alignment::default(),
        Some(a) => Alignment::from_mode(a.mode == AlignmentModeSpec::Prewarmed, a.headroom)
            .map_err(|message| invalid("spec.flink.alignment.headroom", message))?,
    };
    let security = config
        .segment_scalers
        .as_ref()
        .and_then(|s| s.flink.clone())
        .unwrap_or_default();
    let https = f.rest_url.starts_with("https://");
    Ok(Some(FlinkConfig {
        rest_url: f.rest_url.clone(),
        timeout: duration(
            "flink.timeout",
            f.timeout.as_deref(),
            defaults::source_timeout(),
        )?,
        rescale_tolerance: duration(
            "flink.rescaleTolerance",
            f.rescale_tolerance.as_deref(),
            defaults::rescale_tolerance(),
        )?,
        alignment,
        backlog_window: duration(
            "flink.backlogWindow",
            f.backlog_window.as_deref(),
            defaults::backlog_window(),
        )?,
        tls: security.tls.filter(|_| https),
        basic_auth: security.basic_auth,
        bearer_token_file: security.bearer_token_file,
        bearer_token_env: security.bearer_token_env,
    }))
}

/// A Go duration (what the schema's pattern admits), or `default` when absent.
fn duration(field: &str, text: Option<&str>, default: Duration) -> Result<Duration, ConfigError> {
    let Some(text) = text else {
        return Ok(default);
    };
    let parsed: kube::core::Duration = text
        .parse()
        .map_err(|e| invalid(&format!("spec.{field}"), format!("{text:?}: {e}")))?;
    if parsed.is_negative() {
        return Err(invalid(
            &format!("spec.{field}"),
            format!("{text:?} is negative"),
        ));
    }
    Ok(parsed.into())
}

fn invalid(field: &str, message: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.to_string(),
    }
}

/// A binding's field as the spec spells it: `flink.rest_url` -> `spec.flink.restUrl`.
fn spec_field(name: &str) -> String {
    let camel: Vec<String> = name
        .split('.')
        .map(|part| {
            let mut words = part.split('_');
            let first = words.next().unwrap_or_default().to_string();
            words.fold(first, |mut out, word| {
                let mut chars = word.chars();
                if let Some(c) = chars.next() {
                    out.extend(c.to_uppercase());
                    out.push_str(chars.as_str());
                }
                out
            })
        })
        .collect();
    let path = camel.join(".");
    // The file's names that the spec spells otherwise.
    let path = path
        .replace("slotsPerTaskmanager", "slotsPerTaskManager")
        .replace("target.resourceKind", "target.kind");
    format!("spec.{path}")
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::segment_scaler::{
        AlignmentSpec, FlinkJobSpec, ScaleTargetReference, SegmentScalerSpec,
    };

    fn config(file_bindings: &str) -> Config {
        Config::parse(&format!(
            "pravega: {{controller: tcp://127.0.0.1:1}}\nsegment_scalers: {{}}\nbindings: [{file_bindings}]\n"
        ))
        .unwrap()
    }

    fn spec(target: &str) -> SegmentScalerSpec {
        SegmentScalerSpec {
            streams: vec!["demo/load".into()],
            combine: None,
            source: None,
            min_replicas: None,
            max_replicas: 4,
            slots_per_task_manager: None,
            scale_down_stabilization: None,
            target: ScaleTargetReference {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name: target.into(),
                plural: None,
            },
            flink: None,
        }
    }

    fn scaler(namespace: &str, name: &str, created: i64, spec: SegmentScalerSpec) -> SegmentScaler {
        let mut scaler = SegmentScaler::new(name, spec);
        scaler.metadata.namespace = Some(namespace.into());
        scaler.metadata.generation = Some(3);
        scaler.metadata.creation_timestamp = Some(Time(
            k8s_openapi::jiff::Timestamp::from_second(created).unwrap(),
        ));
        scaler
    }

    #[test]
    fn a_spec_declares_the_binding_a_file_would() {
        let mut spec = spec("tm");
        spec.scale_down_stabilization = Some("1m30s".into());
        spec.flink = Some(FlinkJobSpec {
            rest_url: "http://jm:8081".into(),
            timeout: Some("2s".into()),
            rescale_tolerance: None,
            backlog_window: None,
            alignment: Some(AlignmentSpec {
                mode: AlignmentModeSpec::Prewarmed,
                headroom: None,
            }),
        });
        let declared = declare(&[&scaler("jobs", "reader", 1, spec)], &config(""));
        let binding = declared[0].binding.as_ref().unwrap();
        assert_eq!(declared[0].key.to_string(), "jobs/reader");
        assert_eq!(declared[0].generation, Some(3));
        assert_eq!(binding.name, "jobs/reader");
        assert_eq!(binding.min_replicas, 1);
        assert_eq!(binding.scale_down_stabilization, Duration::from_secs(90));
        assert_eq!(
            binding.target,
            TargetConfig::Kubernetes(ScaleResource::deployment("jobs", "tm"))
        );
        let flink = binding.flink.as_ref().unwrap();
        assert_eq!(flink.timeout, Duration::from_secs(2));
        assert_eq!(flink.alignment, Alignment::Prewarmed { headroom: 1 });
    }

    #[test]
    fn the_flink_security_of_the_configuration_reaches_every_spec() {
        let config = Config::parse(
            "pravega: {controller: tcp://127.0.0.1:1}
segment_scalers: {flink: {tls: {ca_file: /ca.pem}, basic_auth: {username: a, password_env: P}}}
",
        )
        .unwrap();
        for (url, tls) in [("https://jm:8081", true), ("http://jm:8081", false)] {
            let mut spec = spec("tm");
            spec.flink = Some(FlinkJobSpec {
                rest_url: url.into(),
                timeout: None,
                rescale_tolerance: None,
                backlog_window: None,
                alignment: None,
            });
            let binding = binding(&scaler("jobs", "reader", 1, spec), &config).unwrap();
            let flink = binding.flink.unwrap();
            assert_eq!(flink.tls.is_some(), tls, "{url}");
            assert_eq!(flink.basic_auth.unwrap().username, "a");
        }
        let error = Config::parse(
            "pravega: {controller: tcp://127.0.0.1:1}
segment_scalers: {flink: {tls: {cert_file: /c.pem}}}
",
        )
        .err()
        .unwrap();
        assert_eq!(
            error.to_string(),
            "segment_scalers.flink.tls.key_file: a client certificate needs both cert_file and key_file"
        );
    }

    #[test]
    fn what_the_schema_cannot_check_is_refused_naming_the_spec_field() {
        type Change = Box<dyn Fn(&mut SegmentScalerSpec)>;
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|s| s.streams = vec!["no-slash".into()]),
                "spec.streams[0]: \"no-slash\" is not scope/stream",
            ),
            (
                Box::new(|s| s.min_replicas = Some(5)),
                "spec.maxReplicas: 4 is below min_replicas (5)",
            ),
            (
                Box::new(|s| s.target.api_version = "apps/v1/x y".into()),
                "spec.target.apiVersion:",
            ),
            (
                Box::new(|s| s.scale_down_stabilization = Some("5 fortnights".into())),
                "spec.scaleDownStabilization: \"5 fortnights\"",
            ),
            (
                Box::new(|s| s.source = Some(crate::domain::SourceChoice::Prometheus)),
                "spec.source: is prometheus but no top-level `prometheus` is configured",
            ),
            (
                Box::new(|s| {
                    s.flink = Some(FlinkJobSpec {
                        rest_url: "http://jm:8081".into(),
                        timeout: Some("1h".into()),
                        rescale_tolerance: None,
                        backlog_window: None,
                        alignment: None,
                    })
                }),
                "spec.flink.timeout: 1h is longer than reconcile_timeout",
            ),
        ];
        for (change, expected) in cases {
            let mut spec = spec("tm");
            change(&mut spec);
            let declared = declare(&[&scaler("jobs", "reader", 1, spec)], &config(""));
            match &declared[0].binding {
                Err(refusal @ Refusal::InvalidSpec(message)) => {
                    assert!(message.starts_with(expected), "{message} vs {expected}");
                    assert_eq!(refusal.reason(), "InvalidSpec");
                }
                other => panic!("{expected}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_older_claim_on_a_target_wins_and_the_other_is_a_conflict() {
        let older = scaler("jobs", "b-older", 100, spec("tm"));
        let newer = scaler("jobs", "a-newer", 200, spec("tm"));
        let elsewhere = scaler("other", "a-newer", 300, spec("tm"));
        let declared = declare(&[&newer, &elsewhere, &older], &config(""));
        let by_name = |ns: &str, name: &str| {
            declared
                .iter()
                .find(|d| d.key.namespace == ns && d.key.name == name)
                .unwrap()
        };
        assert!(by_name("jobs", "b-older").binding.is_ok());
        assert!(
            by_name("other", "a-newer").binding.is_ok(),
            "another namespace, another target"
        );
        match &by_name("jobs", "a-newer").binding {
            Err(Refusal::Conflict(message)) => assert_eq!(
                message,
                "deployments.apps jobs/tm is already scaled by SegmentScaler jobs/b-older; two writers would fight over it"
            ),
            other => panic!("{other:?}"),
        }

        let file = "{name: f, streams: [s/t], max_replicas: 2, target: {kind: deployment, namespace: jobs, name: tm}}";
        let declared = declare(&[&older], &config(file));
        assert!(
            matches!(&declared[0].binding, Err(Refusal::Conflict(m)) if m.ends_with("already scaled by a binding of the configuration file; two writers would fight over it")),
            "{declared:?}"
        );
    }
}

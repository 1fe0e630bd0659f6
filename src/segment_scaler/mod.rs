//! The `SegmentScaler` custom resource: one binding declared in the namespace of the job it
//! scales, with its live state in `status`.
//!
//! The types here are the CRD: `segment-autoscaler crd` prints it from them, and the committed
//! copy (`deploy/helm/segment-autoscaler/crds/`) is checked against them by a test. A spec
//! becomes the same [`Binding`] a configuration file declares ([`catalog`]), and each
//! reconciliation's [`crate::reconcile::BindingReport`] becomes its status ([`status`]); the
//! watch and the status writes are in [`watch`].

pub mod catalog;
pub mod status;
pub mod watch;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::domain::{Combine, SourceChoice};

/// The API group of the project's resources.
pub const GROUP: &str = "segment-autoscaler.io";

/// A Go duration as the API server's CEL reads it (`90s`, `1m30s`, `500ms`).
const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";

/// Keeps a Flink job's TaskManagers, and so its parallelism, aligned one-to-one with the
/// active segments of Pravega streams.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "segment-autoscaler.io",
    version = "v1alpha1",
    kind = "SegmentScaler",
    namespaced,
    status = "SegmentScalerStatus",
    shortname = "ssc",
    category = "all",
    doc = "A Flink job whose TaskManagers segment-autoscaler keeps aligned with the segments of Pravega streams.",
    printcolumn = r#"{"name": "Streams", "type": "string", "jsonPath": ".spec.streams"}"#,
    printcolumn = r#"{"name": "Segments", "type": "integer", "jsonPath": ".status.segments"}"#,
    printcolumn = r#"{"name": "Replicas", "type": "integer", "jsonPath": ".status.currentTaskManagers"}"#,
    printcolumn = r#"{"name": "Parallelism", "type": "integer", "jsonPath": ".status.jobParallelism"}"#,
    printcolumn = r#"{"name": "Aligned", "type": "boolean", "jsonPath": ".status.aligned"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("!has(self.minReplicas) || self.minReplicas <= self.maxReplicas")
    .message("maxReplicas must not be below minReplicas")
    .field_path(".maxReplicas")
    .reason(Reason::FieldValueInvalid))]
#[serde(rename_all = "camelCase")]
pub struct SegmentScalerSpec {
    /// The `scope/stream` names whose segments the job reads.
    #[schemars(
        length(min = 1),
        inner(regex(pattern = r"^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+$"))
    )]
    pub streams: Vec<String>,
    /// How the streams' counts combine: `sum` (one reader per segment across them, the
    /// default) or `max` (the widest stream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combine: Option<Combine>,
    /// Which source to ask: `auto` (the controller, then Prometheus; the default),
    /// `controller` or `prometheus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceChoice>,
    /// Fewest TaskManagers (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 32768))]
    pub min_replicas: Option<u32>,
    /// Most TaskManagers.
    #[schemars(range(min = 1, max = 32768))]
    pub max_replicas: u32,
    /// Task slots per TaskManager, `taskmanager.numberOfTaskSlots` (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1024))]
    pub slots_per_task_manager: Option<u32>,
    /// How long a lower target must hold before scaling down (default `60s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub scale_down_stabilization: Option<String>,
    /// What to scale: a resource with a scale subresource in this namespace.
    pub target: ScaleTargetReference,
    /// The Flink job, to cap at its max parallelism and verify its alignment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flink: Option<FlinkJobSpec>,
}

/// A resource with a scale subresource, in the SegmentScaler's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScaleTargetReference {
    /// `group/version`, e.g. `apps/v1` or `flink.apache.org/v1beta1` (`v1` for core).
    #[schemars(length(min = 1))]
    pub api_version: String,
    /// Its kind, e.g. `Deployment` or `FlinkDeployment`.
    #[schemars(length(min = 1))]
    pub kind: String,
    /// Its name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Its plural resource name (default: the kind in lower case + `s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plural: Option<String>,
}

/// The JobManager's REST API and how the job is aligned.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FlinkJobSpec {
    /// Base URL of the JobManager's REST API, e.g. `http://flink-jobmanager:8081`.
    #[schemars(regex(pattern = r"^https?://"))]
    pub rest_url: String,
    /// Per-request timeout (default `5s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub timeout: Option<String>,
    /// How long the job may take to use a TaskManager change before the autoscaler warns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub rescale_tolerance: Option<String>,
    /// How long the job's backlog must grow, while it runs aligned, before it is reported
    /// falling behind (default `2m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub backlog_window: Option<String>,
    /// How the job is brought to the segments' parallelism (default `reactive`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alignment: Option<AlignmentSpec>,
}

/// `reactive` (Flink's reactive mode uses every TaskManager) or `prewarmed` (the autoscaler
/// sets the job's parallelism on TaskManagers kept started ahead by `headroom`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("!has(self.headroom) || self.mode == 'prewarmed'")
    .message("headroom applies only to mode prewarmed")
    .field_path(".headroom")
    .reason(Reason::FieldValueForbidden))]
#[serde(rename_all = "camelCase")]
pub struct AlignmentSpec {
    /// `reactive` or `prewarmed`.
    pub mode: AlignmentModeSpec,
    /// TaskManagers kept started beyond the job's (prewarmed only; default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 32768))]
    pub headroom: Option<u32>,
}

/// The alignment modes.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AlignmentModeSpec {
    /// Flink's reactive mode.
    Reactive,
    /// The adaptive scheduler with TaskManagers started ahead.
    Prewarmed,
}

/// What the autoscaler last saw and did for a SegmentScaler (written by the leader only, when
/// it changed).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SegmentScalerStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The streams' combined active segments (absent while unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<u32>,
    /// The TaskManagers the segments call for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_task_managers: Option<u32>,
    /// The target's replicas, as read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_task_managers: Option<u32>,
    /// The parallelism the job runs at, per Flink's REST API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_parallelism: Option<u32>,
    /// Whether the job runs at the parallelism the segments call for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aligned: Option<bool>,
    /// When the oldest segment count in use was last reported, once Pravega evicted its gauge
    /// and the count comes from Prometheus' look-back (the evidence's age); absent while every
    /// count is current.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_time: Option<Time>,
    /// When the autoscaler last wrote the target's replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<Time>,
    /// `Ready`, `Aligned`, `Paused`, `Holding` and `FallingBehind`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// The CustomResourceDefinition, as YAML.
pub fn crd_yaml() -> String {
    use kube::CustomResourceExt;
    serde_yaml_ng::to_string(&SegmentScaler::crd()).expect("the CRD serializes")
}

impl SegmentScaler {
    /// `namespace/name`: the binding's name in logs, metrics and Events.
    pub fn binding_name(&self) -> String {
        format!(
            "{}/{}",
            self.metadata.namespace.as_deref().unwrap_or_default(),
            self.metadata.name.as_deref().unwrap_or_default()
        )
    }
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;

    use super::*;

    /// The CRD users apply, as committed.
    const COMMITTED_CRD: &str = include_str!(
        "../../deploy/helm/segment-autoscaler/crds/segmentscalers.segment-autoscaler.io.yaml"
    );

    #[test]
    fn the_committed_crd_is_the_one_the_types_make() {
        let committed: serde_json::Value = serde_yaml_ng::from_str(COMMITTED_CRD).unwrap();
        let generated = serde_json::to_value(SegmentScaler::crd()).unwrap();
        assert!(
            committed == generated,
            "deploy/helm/segment-autoscaler/crds/ is stale: regenerate it with `cargo run -- crd > deploy/helm/segment-autoscaler/crds/segmentscalers.segment-autoscaler.io.yaml`"
        );
    }

    #[test]
    fn the_crd_validates_what_the_types_cannot_say() {
        let crd = serde_json::to_string(&SegmentScaler::crd()).unwrap();
        for rule in [
            "!has(self.minReplicas) || self.minReplicas <= self.maxReplicas",
            "!has(self.headroom) || self.mode == 'prewarmed'",
        ] {
            assert!(
                crd.contains(&serde_json::to_string(rule).unwrap()),
                "{rule}"
            );
        }
        assert!(crd.contains(r#""enum":["reactive","prewarmed"]"#), "{crd}");
        assert!(crd.contains(r#""enum":["sum","max"]"#), "{crd}");
        assert!(crd.contains(r#""subresources":{"status":{}}"#), "{crd}");
    }
}

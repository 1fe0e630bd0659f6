//! `segment-autoscaler` keeps Flink TaskManager replicas, and so a reactive-mode job's
//! parallelism, aligned one-to-one with the active segments of Pravega streams.
//!
//! The data flows through one module per stage:
//! [`config`] -> [`observe`] -> [`plan`] (pure) -> [`actuate`] -> [`verify`], with
//! [`telemetry`] beside them, [`reconcile`] tying one pass together, [`leader`] deciding
//! which replica may act, and [`report`] charting a finished run from Prometheus.

pub mod actuate;
pub mod config;
pub mod leader;
pub mod observe;
pub mod plan;
pub mod reconcile;
pub mod report;
pub mod telemetry;
pub mod verify;

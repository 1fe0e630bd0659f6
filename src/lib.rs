//! `segment-autoscaler` keeps Flink TaskManager replicas, and so a reactive-mode job's
//! parallelism, aligned one-to-one with the active segments of Pravega streams.
//!
//! The data flows through one module per stage:
//! [`config`] -> [`observe`] -> [`plan`] (pure) -> [`actuate`] -> [`verify`], with
//! [`telemetry`] beside them. [`domain`] holds the vocabulary they share and imports nothing
//! of the crate; [`flink`] is the JobManager's REST client (read while observing, written in
//! the prewarmed mode); [`setup`] builds the I/O from the configuration, reading the CAs and
//! [`credentials`] it names; [`http`] and [`tls`] are what the clients share to connect (and to
//! tell why they could not); [`reconcile`] is the loop that runs the stages; [`leader`] decides
//! which replica may act.

pub mod actuate;
pub mod config;
pub mod credentials;
pub mod domain;
pub mod flink;
pub mod http;
pub mod leader;
pub mod observe;
pub mod plan;
pub mod reconcile;
pub mod segment_scaler;
pub mod setup;
pub mod telemetry;
pub mod tls;
pub mod verify;

//! Every metric the autoscaler exports (prefix `segment_autoscaler_`), and the functions that
//! record a reconciliation's outcome into them.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

use crate::domain::Alignment;
use crate::domain::{ErrorReason, SourceKind, StreamId};
use crate::observe::Observation;
use crate::plan::backlog::BacklogView;
use crate::plan::{Action, ScaleDecision};
use crate::verify::JobAlignment;

/// Labels of per-binding series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BindingLabels {
    /// The binding's name.
    pub binding: String,
}

/// Labels of per-stream series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabels {
    /// The binding's name.
    pub binding: String,
    /// `scope/stream`.
    pub stream: String,
}

/// Labels of the alignment mode series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlignmentLabels {
    /// The binding's name.
    pub binding: String,
    /// `reactive` or `prewarmed`.
    pub mode: String,
}

/// Labels of decision counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// The binding's name.
    pub binding: String,
    /// `scale_up`, `scale_down` or `hold`.
    pub action: String,
}

/// Labels of a binding's error counters (scale writes, Flink reads).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BindingErrorLabels {
    /// The binding's name.
    pub binding: String,
    /// One of [`ErrorReason`]'s labels.
    pub reason: String,
}

/// Labels of source error counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceErrorLabels {
    /// `prometheus` or `controller`.
    pub source: String,
    /// One of [`ErrorReason`]'s labels.
    pub reason: String,
}

/// Every metric the autoscaler exports, registered once.
pub struct Metrics {
    /// Active segments per bound stream (absent while unknown).
    pub stream_segments: Family<StreamLabels, Gauge>,
    /// How old the evidence of a stream's count is: 0 when reported now, the time since the
    /// last sample once Pravega evicted the gauge (absent while unknown).
    pub stream_evidence_age: Family<StreamLabels, Gauge<f64, AtomicU64>>,
    /// 1 for each binding's alignment mode.
    pub alignment: Family<AlignmentLabels, Gauge>,
    /// Replicas of the target (the TaskManagers), as read.
    pub current_replicas: Family<BindingLabels, Gauge>,
    /// TaskManagers started beyond the job's needs (prewarmed mode; absent while unknown).
    pub warm_taskmanagers: Family<BindingLabels, Gauge>,
    /// Replicas the segments call for.
    pub desired_replicas: Family<BindingLabels, Gauge>,
    /// Decisions taken, by action.
    pub decisions: Family<DecisionLabels, Counter>,
    /// Scale writes that failed, by reason.
    pub scale_errors: Family<BindingErrorLabels, Counter>,
    /// Reconciliations in which the job could not be read from Flink's REST API, by reason.
    pub flink_errors: Family<BindingErrorLabels, Counter>,
    /// Reconciliations in which a source failed, by source and reason.
    pub source_errors: Family<SourceErrorLabels, Counter>,
    /// Duration of a whole reconciliation.
    pub reconcile_duration: Histogram,
    /// Reconciliations abandoned at `reconcile_timeout`.
    pub reconciliations_abandoned: Counter,
    /// Parallelism of the job's source vertex, per Flink's REST API.
    pub job_parallelism: Family<BindingLabels, Gauge>,
    /// 1 when the job runs at the desired parallelism (segments, within the replica bounds).
    pub job_aligned: Family<BindingLabels, Gauge>,
    /// 1 while the binding's target is paused (replicas set to 0 by someone else).
    pub paused: Family<BindingLabels, Gauge>,
    /// The longest Flink's adaptive scheduler may wait before it uses a TaskManager change,
    /// from the JobManager's timers (absent until read).
    pub flink_rescale_delay: Family<BindingLabels, Gauge<f64, AtomicU64>>,
    /// Events written to the bound streams and not read yet (the job source's
    /// `pendingRecords`; absent while unknown).
    pub backlog_records: Family<BindingLabels, Gauge>,
    /// Seconds until the backlog is read at the pace it shrinks (absent while it does not).
    pub catch_up_seconds: Family<BindingLabels, Gauge<f64, AtomicU64>>,
    /// Events one source subtask processes per second of busy time (absent while unknown).
    pub subtask_processing_rate: Family<BindingLabels, Gauge<f64, AtomicU64>>,
    /// 1 while the job, aligned at the segment count, falls behind (absent while the backlog
    /// is unknown).
    pub falling_behind: Family<BindingLabels, Gauge>,
    /// The lowest event-rate target of the bound streams' scaling policies (absent while
    /// unknown, or without a controller to read it from).
    pub policy_target: Family<BindingLabels, Gauge<f64, AtomicU64>>,
    /// 1 when this replica may act (leader, or no leader election), else 0.
    pub leader: Gauge,
    registry: Registry,
    /// Held while one reconciliation's figures are written and while the page is encoded.
    sample: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("segment_autoscaler");
        let m = Metrics {
            stream_segments: Family::default(),
            stream_evidence_age: Family::default(),
            alignment: Family::default(),
            current_replicas: Family::default(),
            warm_taskmanagers: Family::default(),
            desired_replicas: Family::default(),
            decisions: Family::default(),
            scale_errors: Family::default(),
            flink_errors: Family::default(),
            source_errors: Family::default(),
            reconcile_duration: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            reconciliations_abandoned: Counter::default(),
            job_parallelism: Family::default(),
            job_aligned: Family::default(),
            paused: Family::default(),
            flink_rescale_delay: Family::default(),
            backlog_records: Family::default(),
            catch_up_seconds: Family::default(),
            subtask_processing_rate: Family::default(),
            falling_behind: Family::default(),
            policy_target: Family::default(),
            leader: Gauge::default(),
            registry: Registry::default(),
            sample: Mutex::new(()),
        };
        m.register(&mut registry);
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// Registers every metric in `registry`, with its help text (a table), in the order the
    /// page lists them.
    fn register(&self, registry: &mut Registry) {
        let m = self;
        registry.register(
            "stream_segments",
            "Active segments of a bound stream",
            m.stream_segments.clone(),
        );
        registry.register_with_unit(
            "stream_evidence_age",
            "Age of the evidence of a bound stream's segment count (0: reported now)",
            Unit::Seconds,
            m.stream_evidence_age.clone(),
        );
        registry.register(
            "alignment",
            "1 for the binding's alignment mode (reactive or prewarmed)",
            m.alignment.clone(),
        );
        registry.register(
            "current_replicas",
            "Replicas of the binding's target (the TaskManagers)",
            m.current_replicas.clone(),
        );
        registry.register(
            "warm_taskmanagers",
            "TaskManagers started beyond the job's needs (prewarmed mode)",
            m.warm_taskmanagers.clone(),
        );
        registry.register(
            "desired_replicas",
            "Replicas the segments call for",
            m.desired_replicas.clone(),
        );
        registry.register(
            "decisions",
            "Decisions taken, by action",
            m.decisions.clone(),
        );
        registry.register(
            "scale_errors",
            "Scale writes that failed, by reason",
            m.scale_errors.clone(),
        );
        registry.register(
            "flink_errors",
            "Reconciliations in which the job could not be read from Flink's REST API, by reason",
            m.flink_errors.clone(),
        );
        registry.register(
            "source_errors",
            "Reconciliations in which a segment-count source failed, by source and reason",
            m.source_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one reconciliation",
            m.reconcile_duration.clone(),
        );
        registry.register(
            "reconciliations_abandoned",
            "Reconciliations abandoned because they were still running at reconcile_timeout",
            m.reconciliations_abandoned.clone(),
        );
        self.register_job(registry);
    }

    /// Registers what is read of the Flink job, and the leader gauge.
    fn register_job(&self, registry: &mut Registry) {
        let m = self;
        registry.register(
            "job_parallelism",
            "Parallelism of the Flink job's source vertex",
            m.job_parallelism.clone(),
        );
        registry.register(
            "job_aligned",
            "1 if the job runs at the desired parallelism (segments, within the replica bounds)",
            m.job_aligned.clone(),
        );
        registry.register(
            "paused",
            "1 while the target's replicas are 0, set by someone else: the autoscaler holds",
            m.paused.clone(),
        );
        registry.register_with_unit(
            "flink_rescale_delay",
            "Longest wait of Flink's adaptive scheduler before it uses a TaskManager change (its timers summed)",
            Unit::Seconds,
            m.flink_rescale_delay.clone(),
        );
        registry.register(
            "backlog_records",
            "Events written to the bound streams and not read yet (the job source's pendingRecords)",
            m.backlog_records.clone(),
        );
        registry.register_with_unit(
            "catch_up",
            "Time until the backlog is read at the pace it shrinks",
            Unit::Seconds,
            m.catch_up_seconds.clone(),
        );
        registry.register(
            "subtask_processing_rate",
            "Events one source subtask processes per second of busy time",
            m.subtask_processing_rate.clone(),
        );
        registry.register(
            "falling_behind",
            "1 while the job, aligned at the segment count, falls behind its streams",
            m.falling_behind.clone(),
        );
        registry.register(
            "policy_target",
            "The lowest event-rate target (events/s per segment) of the bound streams' scaling policies",
            m.policy_target.clone(),
        );
        registry.register("leader", "1 if this replica may act", m.leader.clone());
    }
}

fn binding_labels(binding: &str) -> BindingLabels {
    BindingLabels {
        binding: binding.into(),
    }
}

impl Metrics {
    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let _sample = self.sample.lock().expect("lock");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("encoding to a String");
        text
    }

    /// Holds encoding back while the caller writes one binding's figures (segments, replicas,
    /// the job's parallelism and alignment), so a scrape sees all of them from one
    /// reconciliation, never a mix of two.
    pub fn sample(&self) -> MutexGuard<'_, ()> {
        self.sample.lock().expect("lock")
    }

    /// Exports a source's error counters at 0, so `rate()` works before the first failure.
    pub fn register_source(&self, source: SourceKind) {
        for reason in ErrorReason::ALL {
            self.source_errors
                .get_or_create(&SourceErrorLabels {
                    source: source.as_str().into(),
                    reason: reason.as_str().into(),
                })
                .inc_by(0);
        }
    }

    /// Exports a binding's counters at 0.
    pub fn register_binding(&self, binding: &str, alignment: Alignment) {
        self.alignment
            .get_or_create(&AlignmentLabels {
                binding: binding.into(),
                mode: alignment.as_str().into(),
            })
            .set(1);
        for action in [Action::ScaleUp, Action::ScaleDown, Action::Hold] {
            self.decisions
                .get_or_create(&DecisionLabels {
                    binding: binding.into(),
                    action: action.as_str().into(),
                })
                .inc_by(0);
        }
        for reason in ErrorReason::ALL {
            let labels = BindingErrorLabels {
                binding: binding.into(),
                reason: reason.as_str().into(),
            };
            self.scale_errors.get_or_create(&labels).inc_by(0);
            self.flink_errors.get_or_create(&labels).inc_by(0);
        }
    }

    /// Removes every series of a binding that is no longer reconciled (a deleted
    /// SegmentScaler), so that its last figures do not linger as if current.
    pub fn forget_binding(&self, binding: &str, alignment: Alignment, streams: &[StreamId]) {
        let _sample = self.sample();
        for stream in streams {
            let labels = StreamLabels {
                binding: binding.into(),
                stream: stream.to_string(),
            };
            self.stream_segments.remove(&labels);
            self.stream_evidence_age.remove(&labels);
        }
        self.alignment.remove(&AlignmentLabels {
            binding: binding.into(),
            mode: alignment.as_str().into(),
        });
        let labels = BindingLabels {
            binding: binding.into(),
        };
        for family in [
            &self.current_replicas,
            &self.warm_taskmanagers,
            &self.desired_replicas,
            &self.job_parallelism,
            &self.job_aligned,
            &self.paused,
            &self.backlog_records,
            &self.falling_behind,
        ] {
            family.remove(&labels);
        }
        for family in [
            &self.flink_rescale_delay,
            &self.catch_up_seconds,
            &self.subtask_processing_rate,
            &self.policy_target,
        ] {
            family.remove(&labels);
        }
        for action in [Action::ScaleUp, Action::ScaleDown, Action::Hold] {
            self.decisions.remove(&DecisionLabels {
                binding: binding.into(),
                action: action.as_str().into(),
            });
        }
        for reason in ErrorReason::ALL {
            let labels = BindingErrorLabels {
                binding: binding.into(),
                reason: reason.as_str().into(),
            };
            self.scale_errors.remove(&labels);
            self.flink_errors.remove(&labels);
        }
    }

    /// Counts one reconciliation's source failures, once per source and reason.
    pub fn record_source_failures(&self, failures: &BTreeSet<(SourceKind, ErrorReason)>) {
        for (source, reason) in failures {
            self.source_errors
                .get_or_create(&SourceErrorLabels {
                    source: source.as_str().into(),
                    reason: reason.as_str().into(),
                })
                .inc();
        }
    }

    /// Counts a failed scale write.
    pub fn record_scale_error(&self, binding: &str, reason: ErrorReason) {
        self.scale_errors
            .get_or_create(&BindingErrorLabels {
                binding: binding.into(),
                reason: reason.as_str().into(),
            })
            .inc();
    }

    /// Records a binding's observations, its target's replicas (`None` when unknown) and the
    /// decision.
    pub fn record_decision(
        &self,
        binding: &str,
        observations: &[Observation],
        replicas: Option<u32>,
        decision: &ScaleDecision,
    ) {
        // One label set, its stream rewritten in place: a binding of 10 000 streams would
        // otherwise allocate two strings per stream every tick (the family copies it only for a
        // new series).
        let mut labels = StreamLabels {
            binding: binding.into(),
            stream: String::new(),
        };
        for o in observations {
            labels.stream.clear();
            let _ = write!(labels.stream, "{}", o.stream);
            match (o.reading.segments(), o.reading.evidence_age()) {
                (Some(n), Some(age)) => {
                    self.stream_segments
                        .get_or_create(&labels)
                        .set(i64::from(n));
                    self.stream_evidence_age
                        .get_or_create(&labels)
                        .set(age.as_secs_f64());
                }
                // Unknown is not 0: the series disappear rather than lie.
                _ => {
                    self.stream_segments.remove(&labels);
                    self.stream_evidence_age.remove(&labels);
                }
            }
        }
        let labels = binding_labels(binding);
        match replicas {
            Some(n) => {
                self.current_replicas
                    .get_or_create(&labels)
                    .set(i64::from(n));
            }
            None => {
                self.current_replicas.remove(&labels);
            }
        }
        if let Some(n) = decision.desired_replicas {
            self.desired_replicas
                .get_or_create(&labels)
                .set(i64::from(n));
        }
        self.paused
            .get_or_create(&labels)
            .set(i64::from(decision.paused()));
        self.decisions
            .get_or_create(&DecisionLabels {
                binding: binding.into(),
                action: decision.action.as_str().into(),
            })
            .inc();
    }

    /// Records the TaskManagers started beyond the job's needs (`None` when unknown: the series
    /// disappears).
    pub fn record_warm_taskmanagers(&self, binding: &str, warm: Option<u32>) {
        let labels = binding_labels(binding);
        match warm {
            Some(n) => {
                self.warm_taskmanagers
                    .get_or_create(&labels)
                    .set(i64::from(n));
            }
            None => {
                self.warm_taskmanagers.remove(&labels);
            }
        }
    }

    /// Records how long the binding's JobManager may wait before it uses a TaskManager change.
    pub fn record_rescale_delay(&self, binding: &str, delay: std::time::Duration) {
        self.flink_rescale_delay
            .get_or_create(&binding_labels(binding))
            .set(delay.as_secs_f64());
    }

    /// Counts a reconciliation in which the binding's job could not be read from Flink.
    pub fn record_flink_error(&self, binding: &str, reason: ErrorReason) {
        self.flink_errors
            .get_or_create(&BindingErrorLabels {
                binding: binding.into(),
                reason: reason.as_str().into(),
            })
            .inc();
    }

    /// Records a binding's backlog (`None`, or a figure unknown: its series disappears).
    pub fn record_backlog(&self, binding: &str, backlog: Option<&BacklogView>) {
        let labels = binding_labels(binding);
        let records = backlog.and_then(|b| b.records);
        set_or_remove(&self.backlog_records, &labels, records.map(|r| r as i64));
        set_or_remove(
            &self.falling_behind,
            &labels,
            records.and(backlog.map(|b| i64::from(b.falling_behind.is_some()))),
        );
        set_or_remove(
            &self.catch_up_seconds,
            &labels,
            backlog.and_then(|b| b.catch_up_seconds),
        );
        set_or_remove(
            &self.subtask_processing_rate,
            &labels,
            backlog.and_then(|b| b.subtask_rate),
        );
        set_or_remove(
            &self.policy_target,
            &labels,
            backlog.and_then(|b| b.policy_target),
        );
    }

    /// Records what Flink says of a binding's job: its parallelism (`None` when it could not
    /// be read: the series disappears) and whether it is aligned.
    pub fn record_job(&self, binding: &str, job: Option<JobAlignment>) {
        let labels = binding_labels(binding);
        match job {
            Some(job) => {
                self.job_parallelism
                    .get_or_create(&labels)
                    .set(i64::from(job.parallelism));
                self.job_aligned
                    .get_or_create(&labels)
                    .set(i64::from(job.aligned));
            }
            // Unknown is neither aligned nor not: both series disappear.
            None => {
                self.job_parallelism.remove(&labels);
                self.job_aligned.remove(&labels);
            }
        }
    }
}

/// Sets the series `labels` of `family` to `value`, or removes it when `None` (unknown).
fn set_or_remove<N, A>(
    family: &Family<BindingLabels, Gauge<N, A>>,
    labels: &BindingLabels,
    value: Option<N>,
) where
    A: prometheus_client::metrics::gauge::Atomic<N> + Default,
{
    match value {
        Some(v) => {
            family.get_or_create(labels).set(v);
        }
        None => {
            family.remove(labels);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::{SegmentReading, Undetermined};
    use crate::plan::Reason;
    use std::time::Duration;

    #[test]
    fn metrics_are_exported_with_their_labels() {
        let m = Metrics::default();
        m.register_binding("b", Alignment::Prewarmed { headroom: 1 });
        m.record_warm_taskmanagers("b", Some(1));
        m.register_source(SourceKind::Prometheus);
        m.record_source_failures(
            &[(SourceKind::Prometheus, ErrorReason::Timeout)]
                .into_iter()
                .collect(),
        );
        m.record_scale_error("b", ErrorReason::Forbidden);
        let decision = ScaleDecision {
            segments: Some(3),
            job_taskmanagers: Some(1),
            desired_replicas: Some(3),
            action: Action::ScaleUp,
            reason: Reason::NoStream,
        };
        let observed = Observation {
            stream: "demo/a".parse().unwrap(),
            reading: SegmentReading::LastReported {
                segments: 3,
                age: Duration::from_millis(250_500),
            },
            source: SourceKind::Prometheus,
        };
        let second = Observation {
            stream: "demo/b".parse().unwrap(),
            reading: SegmentReading::LastReported {
                segments: 5,
                age: Duration::from_secs(2),
            },
            source: SourceKind::Prometheus,
        };
        m.record_decision(
            "b",
            &[observed, second],
            decision.job_taskmanagers,
            &decision,
        );
        m.record_job(
            "b",
            Some(JobAlignment {
                parallelism: 1,
                aligned: false,
            }),
        );
        let text = m.encode();
        for line in [
            "segment_autoscaler_current_replicas{binding=\"b\"} 1",
            "segment_autoscaler_stream_segments{binding=\"b\",stream=\"demo/b\"} 5",
            "segment_autoscaler_desired_replicas{binding=\"b\"} 3",
            "segment_autoscaler_stream_segments{binding=\"b\",stream=\"demo/a\"} 3",
            "segment_autoscaler_stream_evidence_age_seconds{binding=\"b\",stream=\"demo/a\"} 250.5",
            "segment_autoscaler_decisions_total{binding=\"b\",action=\"scale_up\"} 1",
            "segment_autoscaler_decisions_total{binding=\"b\",action=\"hold\"} 0",
            "segment_autoscaler_source_errors_total{source=\"prometheus\",reason=\"timeout\"} 1",
            "segment_autoscaler_source_errors_total{source=\"prometheus\",reason=\"unreachable\"} 0",
            "segment_autoscaler_scale_errors_total{binding=\"b\",reason=\"forbidden\"} 1",
            "segment_autoscaler_scale_errors_total{binding=\"b\",reason=\"conflict\"} 0",
            "segment_autoscaler_job_parallelism{binding=\"b\"} 1",
            "segment_autoscaler_job_aligned{binding=\"b\"} 0",
            "segment_autoscaler_paused{binding=\"b\"} 0",
            "segment_autoscaler_alignment{binding=\"b\",mode=\"prewarmed\"} 1",
            "segment_autoscaler_warm_taskmanagers{binding=\"b\"} 1",
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
        assert!(
            text.contains("segment_autoscaler_reconcile_duration_seconds_bucket"),
            "{text}"
        );
    }

    #[test]
    fn unknown_figures_disappear_rather_than_read_0() {
        let m = Metrics::default();
        let mut decision = ScaleDecision {
            segments: Some(2),
            job_taskmanagers: Some(2),
            desired_replicas: Some(2),
            action: Action::Hold,
            reason: Reason::NoStream,
        };
        let mut observed = Observation {
            stream: "demo/a".parse().unwrap(),
            reading: SegmentReading::Segments(2),
            source: SourceKind::Controller,
        };
        m.record_decision(
            "b",
            std::slice::from_ref(&observed),
            decision.job_taskmanagers,
            &decision,
        );
        m.record_job(
            "b",
            Some(JobAlignment {
                parallelism: 2,
                aligned: true,
            }),
        );
        observed.reading = SegmentReading::Undetermined(Undetermined::NoSeries {
            lookback: Duration::from_secs(600),
        });
        decision.job_taskmanagers = None;
        m.record_decision("b", &[observed], decision.job_taskmanagers, &decision);
        m.record_job("b", None);
        let text = m.encode();
        for gone in [
            "segment_autoscaler_stream_segments{",
            "segment_autoscaler_stream_evidence_age_seconds{",
            "segment_autoscaler_current_replicas{",
            "segment_autoscaler_job_parallelism{",
            "segment_autoscaler_job_aligned{",
        ] {
            assert!(!text.contains(gone), "{gone} in:\n{text}");
        }
    }

    #[test]
    fn a_scrape_sees_one_reconciliations_figures_never_two() {
        let m = std::sync::Arc::new(Metrics::default());
        let writer = {
            let m = m.clone();
            std::thread::spawn(move || {
                for i in 0..20_000u32 {
                    let n = 1 + i % 2;
                    let decision = ScaleDecision {
                        segments: Some(n),
                        job_taskmanagers: Some(n),
                        desired_replicas: Some(n),
                        action: Action::Hold,
                        reason: Reason::NoStream,
                    };
                    let observed = Observation {
                        stream: "demo/a".parse().unwrap(),
                        reading: SegmentReading::Segments(n),
                        source: SourceKind::Controller,
                    };
                    let _sample = m.sample();
                    m.record_decision("b", &[observed], decision.job_taskmanagers, &decision);
                    let job = JobAlignment {
                        parallelism: n,
                        aligned: true,
                    };
                    m.record_job("b", Some(job));
                }
            })
        };
        let value = |text: &str, series: &str| {
            text.lines()
                .find(|l| l.starts_with(series))
                .map(|l| l.rsplit(' ').next().unwrap().to_string())
        };
        let mut pages = 0;
        while !writer.is_finished() {
            let text = m.encode();
            let segments = value(&text, "segment_autoscaler_stream_segments{");
            let parallelism = value(&text, "segment_autoscaler_job_parallelism{");
            if let (Some(s), Some(p)) = (&segments, &parallelism) {
                assert_eq!(s, p, "a page mixing two reconciliations");
                pages += 1;
            }
        }
        writer.join().unwrap();
        assert!(pages > 10, "only {pages} pages read while writing");
    }
}

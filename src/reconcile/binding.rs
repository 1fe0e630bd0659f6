//! One binding's reconciliation, stage by stage: observe, plan, act, verify and record, then
//! report.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::outcome::{
    BindingReport, JobUnknown, NotApplied, Observed, Outcome, Planned, PrewarmedPlan,
    StreamEvidence,
};
use crate::actuate::{Replicas, ScaleTarget};
use crate::config::Binding;
use crate::domain::Alignment;
use crate::flink::{
    FlinkClient, FlinkError, JobManagerSettings, JobSchedule, JobStatus, SourceLoad,
};
use crate::leader::Leadership;
use crate::observe::controller::{ScalingKind, StreamPolicies};
use crate::observe::SourceReadings;
use crate::plan::backlog::{
    idles, tuned_policy, BacklogHistory, BacklogInput, BacklogView, TunedPolicy, TuningBounds,
};
use crate::plan::prewarmed::{
    job_size, job_taskmanagers, prewarmed_steps, PrewarmedPolicy, PrewarmedView, Requirement,
    RequirementUnknown, REACTIVE_JOBMANAGER,
};
use crate::plan::{plan, PlanInput, ScaleHistory, ScalingPolicy};
use crate::telemetry::Metrics;
use crate::verify::job_alignment;

/// A binding with its live parts: target, Flink client and scale-down history.
pub struct LiveBinding {
    pub(super) config: Binding,
    policy: ScalingPolicy,
    target: Box<dyn ScaleTarget>,
    pub(super) flink: Option<FlinkClient>,
    history: ScaleHistory,
    /// The last reason logged: a hold is logged again only when its reason changes.
    last_reason: String,
    /// The job's max parallelism as last reported: a failed Flink call must not lift the cap.
    known_max_parallelism: Option<u32>,
    /// Whether the target was paused at the last reconciliation, to record the change once.
    paused: bool,
    /// How the job is brought to the segments' parallelism.
    pub(super) alignment: Alignment,
    /// The JobManager's settings for the job it runs (by job id), read once per job.
    jobmanager: Option<(String, JobManagerSettings)>,
    /// Whether the bound job has answered since the binding was declared: until it has, a
    /// failed call may be a wrong URL or job name, and the plan holds.
    job_confirmed: bool,
    /// The job's backlog over the window.
    backlog: BacklogHistory,
    /// Where the streams' scaling policies are read (the controller), when configured.
    policies: Option<Arc<dyn StreamPolicies>>,
    /// The lowest event-rate target of the bound streams' policies, and when it was read
    /// (read again after a backlog window).
    policy_target: Option<(Instant, Option<f64>)>,
    /// Whether the job was falling behind at the last reconciliation, to record the change
    /// once.
    falling_behind: bool,
    /// The bounds within which the streams' policy targets are tuned, when opted in.
    tuning: Option<TuningBounds>,
    /// When the streams' targets were last tuned (or tried).
    last_tuned: Option<Instant>,
}

impl LiveBinding {
    /// A binding acting on `target`, verified through `flink` when given.
    pub fn new(config: Binding, target: Box<dyn ScaleTarget>, flink: Option<FlinkClient>) -> Self {
        LiveBinding {
            policy: ScalingPolicy::from(&config),
            alignment: config
                .flink
                .as_ref()
                .map(|f| f.alignment)
                .unwrap_or_default(),
            config,
            target,
            flink,
            history: ScaleHistory::default(),
            last_reason: String::new(),
            known_max_parallelism: None,
            paused: false,
            jobmanager: None,
            job_confirmed: false,
            backlog: BacklogHistory::default(),
            policies: None,
            policy_target: None,
            falling_behind: false,
            tuning: None,
            last_tuned: None,
        }
    }

    /// Reads the bound streams' scaling policies from `policies` (the figures of a job
    /// falling behind) and, with `tuning`, changes their targets within those bounds.
    pub fn with_policies(
        mut self,
        policies: Arc<dyn StreamPolicies>,
        tuning: Option<TuningBounds>,
    ) -> Self {
        self.policies = Some(policies);
        self.tuning = tuning;
        self
    }
}

impl LiveBinding {
    /// One reconciliation: observe, plan, act (when `acting` is held), verify and record.
    pub(super) async fn reconcile(
        &mut self,
        readings: &SourceReadings,
        now: Instant,
        acting: Option<&Leadership>,
        metrics: &Metrics,
    ) -> BindingReport {
        let act = acting.is_some_and(Leadership::is_held);
        let observed = self.observe(readings, act, metrics).await;
        let planned = self.plan(&observed, now);
        let outcome = match acting {
            Some(leadership) if act => self.act(&observed, planned, leadership, metrics).await,
            _ => Outcome::unwritten(planned),
        };
        self.log(&outcome, act);
        if act && outcome.decision().paused() != self.paused {
            self.record_pause(outcome.decision().paused()).await;
        }
        self.record_falling_behind(&outcome, act).await;
        if act {
            self.tune_policies(&observed, &outcome, now).await;
        }
        self.record(&observed, &outcome, metrics);
        self.report(&observed, &outcome)
    }

    /// Reads the target's replicas and the job together, beside the sources' readings.
    async fn observe(
        &mut self,
        readings: &SourceReadings,
        act: bool,
        metrics: &Metrics,
    ) -> Observed {
        let observations = self
            .config
            .streams
            .iter()
            .map(|s| readings.observe(self.config.source, s))
            .collect();
        let job_status = async {
            match &self.flink {
                Some(flink) => Some(flink.job_status().await),
                None => None,
            }
        };
        let (taskmanagers, job) = futures::join!(self.target.current(), job_status);
        let settings = match &job {
            Some(Ok(status)) => self.read_jobmanager_once(status, act, metrics).await,
            _ => None,
        };
        let requirement = self.requirement(job.as_ref(), settings.as_ref()).await;
        let source_load = self.source_load(job.as_ref()).await;
        if source_load.is_some() {
            self.read_policy_target().await;
        }
        Observed {
            observations,
            taskmanagers: taskmanagers.map_err(Arc::new),
            max_parallelism: self.max_parallelism(job.as_ref()),
            job,
            requirement,
            source_load,
        }
    }

    /// The load of the job's source, while the job runs (None without Flink or between two
    /// schedules).
    async fn source_load(
        &self,
        job: Option<&Result<JobStatus, FlinkError>>,
    ) -> Option<Result<SourceLoad, FlinkError>> {
        let (Some(flink), Some(Ok(status))) = (&self.flink, job) else {
            return None;
        };
        let JobSchedule::Running { source_vertex, .. } = &status.schedule else {
            return None;
        };
        let load = flink.source_load(&status.job_id, source_vertex).await;
        if let Err(e) = &load {
            tracing::debug!(error = %e, reason = e.reason().as_str(), "flink source metrics unavailable");
        }
        Some(load)
    }

    /// Reads the streams' policy target when not read within the last backlog window.
    async fn read_policy_target(&mut self) {
        let Some(policies) = &self.policies else {
            return;
        };
        let now = Instant::now();
        if self
            .policy_target
            .is_some_and(|(read, _)| now.duration_since(read) < self.backlog_window())
        {
            return;
        }
        let reads =
            futures::future::join_all(self.config.streams.iter().map(|s| policies.scaling(s)))
                .await;
        let mut targets = Vec::new();
        for read in reads {
            match read {
                Ok(scaling) => targets.extend(scaling.events_per_second()),
                Err(e) => tracing::debug!(error = %e, "stream scaling policy unavailable"),
            }
        }
        let lowest = targets.into_iter().reduce(f64::min);
        self.policy_target = Some((now, lowest));
    }

    fn backlog_window(&self) -> Duration {
        self.config
            .flink
            .as_ref()
            .map_or(crate::config::defaults::backlog_window(), |f| {
                f.backlog_window
            })
    }

    /// The plan's decision on what was observed, what is unknown of the job, and the prewarmed
    /// mode's writes.
    fn plan(&mut self, observed: &Observed, now: Instant) -> Planned {
        let job_unconfirmed = match &observed.job {
            Some(Ok(_)) => {
                self.job_confirmed = true;
                None
            }
            Some(Err(error)) if !self.job_confirmed => Some(error.clone()),
            Some(Err(_)) | None => None,
        };
        let input = PlanInput {
            observations: observed.observations.clone(),
            job_taskmanagers: job_taskmanagers(
                observed
                    .taskmanagers
                    .as_ref()
                    .map(|r| r.count)
                    .map_err(Arc::clone),
                &observed.requirement,
                self.policy.slots_per_taskmanager,
            ),
            max_parallelism: observed.max_parallelism,
            job_unconfirmed,
            now,
        };
        let decision = plan(&self.policy, &input, &mut self.history);
        let job_unknown = match &observed.job {
            // The plan's reason already names the error.
            Some(Err(_)) if input.job_unconfirmed.is_some() => None,
            Some(Err(error)) => Some(JobUnknown::Unreadable {
                error: error.clone(),
                cap: observed.max_parallelism,
            }),
            // The prewarmed mode's hold already names a job between two schedules.
            Some(Ok(JobStatus {
                schedule: JobSchedule::Between(why),
                ..
            })) if matches!(observed.requirement, Requirement::NotUsed) => {
                Some(JobUnknown::Between(why.clone()))
            }
            _ => None,
        };
        let prewarmed = match (&observed.job, &observed.requirement, observed.replicas()) {
            (Some(Ok(status)), Requirement::Known(required), Some(read)) => {
                let view = PrewarmedView {
                    taskmanagers: read.count,
                    required: *required,
                    running: status.running_parallelism(),
                    max_parallelism: observed.max_parallelism,
                };
                let policy = PrewarmedPolicy::new(&self.policy, self.alignment);
                Some(PrewarmedPlan {
                    job_id: status.job_id.clone(),
                    required: *required,
                    steps: prewarmed_steps(&policy, &decision, &view),
                })
            }
            _ => None,
        };
        let backlog = self.judge_backlog(observed, &decision, now);
        Planned {
            decision,
            job_unknown,
            prewarmed,
            backlog,
        }
    }

    /// The backlog's judgement, when the job's source load was read (its source runs).
    fn judge_backlog(
        &mut self,
        observed: &Observed,
        decision: &crate::plan::ScaleDecision,
        now: Instant,
    ) -> Option<BacklogView> {
        let Some(load) = &observed.source_load else {
            // Not running (a restart, a rescale): the next run's window starts afresh.
            self.backlog = BacklogHistory::default();
            return None;
        };
        let load = load.as_ref().ok();
        let slots = self.policy.slots_per_taskmanager;
        let alignment = observed
            .job
            .as_ref()
            .and_then(|job| job_alignment(job, decision.desired_replicas, slots));
        let parallelism = alignment.map(|a| a.parallelism);
        // At the segment count itself: a job capped below it falls behind for another reason.
        let aligned = alignment.is_some_and(|a| a.aligned) && parallelism == decision.segments;
        let window = self.backlog_window();
        Some(self.backlog.observe(
            window,
            &BacklogInput {
                load,
                parallelism,
                aligned,
                policy_target: self.policy_target.and_then(|(_, target)| target),
                now,
            },
        ))
    }

    /// Makes the writes `planned` calls for: the TaskManagers in reactive mode, the job then
    /// the TaskManagers in the prewarmed mode.
    async fn act(
        &self,
        observed: &Observed,
        planned: Planned,
        leadership: &Leadership,
        metrics: &Metrics,
    ) -> Outcome {
        let mut outcome = Outcome::unwritten(planned);
        let Some(read) = observed.replicas() else {
            return outcome;
        };
        if self.alignment != Alignment::Reactive {
            self.apply_prewarmed(read, leadership, &mut outcome, metrics)
                .await;
        } else if let Some(replicas) = outcome.decision().apply_to() {
            self.apply(read, replicas, leadership, &mut outcome, metrics)
                .await;
            outcome.scaled = true;
        }
        outcome
    }

    /// Logs a decision that no write logged, when its reason changed (holds repeat every tick).
    fn log(&mut self, outcome: &Outcome, act: bool) {
        let reason = outcome.to_string();
        if !outcome.scaled && reason != self.last_reason {
            let action = outcome.decision().action.as_str();
            tracing::info!(action, act, reason = %reason, "decision");
        }
        self.last_reason = reason;
    }

    /// Verifies the job against the plan and records the figures, as one sample.
    fn record(&self, observed: &Observed, outcome: &Outcome, metrics: &Metrics) {
        let _sample = metrics.sample();
        let name = &self.config.name;
        let decision = outcome.decision();
        let taskmanagers = observed.replicas().map(|r| r.count);
        metrics.record_decision(name, &observed.observations, taskmanagers, decision);
        if self.alignment != Alignment::Reactive {
            let slots = self.policy.slots_per_taskmanager;
            let used = observed.requirement.known().map(|r| job_size(r, slots));
            let warm = taskmanagers.zip(used).map(|(t, u)| t.saturating_sub(u));
            metrics.record_warm_taskmanagers(name, warm);
        }
        if let Some(job) = &observed.job {
            if let Err(e) = job {
                tracing::debug!(error = %e, reason = e.reason().as_str(), "flink job status unavailable");
                metrics.record_flink_error(name, e.reason());
            }
            let slots = self.policy.slots_per_taskmanager;
            metrics.record_job(name, job_alignment(job, decision.desired_replicas, slots));
        }
        metrics.record_backlog(name, outcome.planned.backlog.as_ref());
    }

    /// Logs, and records on the target (an Event, when acting), a job that starts or stops
    /// falling behind.
    async fn record_falling_behind(&mut self, outcome: &Outcome, act: bool) {
        let behind = outcome
            .planned
            .backlog
            .as_ref()
            .and_then(|b| b.falling_behind.as_ref());
        if behind.is_some() == self.falling_behind {
            return;
        }
        self.falling_behind = behind.is_some();
        let (reason, note) = match behind {
            Some(behind) => {
                tracing::warn!(
                    records = behind.grew_to,
                    subtask_rate = behind.subtask_rate,
                    policy_target = behind.policy_target,
                    keep_up_target = behind.keep_up_target,
                    "{behind}"
                );
                ("FallingBehind", behind.to_string())
            }
            None => {
                let note = "no longer falling behind: the backlog stopped growing, or the job is not aligned at the segment count";
                tracing::info!("{note}");
                ("KeepingUp", note.to_string())
            }
        };
        if act {
            self.target.record(reason, &note).await;
        }
    }

    /// The record `segment-autoscaler plan` prints.
    fn report(&self, observed: &Observed, outcome: &Outcome) -> BindingReport {
        let decision = outcome.decision();
        let slots = self.policy.slots_per_taskmanager;
        let alignment = observed
            .job
            .as_ref()
            .and_then(|job| job_alignment(job, decision.desired_replicas, slots));
        let sources: BTreeSet<&str> = observed
            .observations
            .iter()
            .map(|o| o.source.as_str())
            .collect();
        BindingReport {
            binding: self.config.name.clone(),
            streams: self.config.streams.clone(),
            segments: decision.segments,
            source: sources.into_iter().collect::<Vec<_>>().join("+"),
            evidence: observed
                .observations
                .iter()
                .map(|o| StreamEvidence {
                    stream: o.stream.clone(),
                    segments: o.reading.segments(),
                    evidence_age_seconds: o.reading.evidence_age().map(|a| a.as_secs_f64()),
                })
                .collect(),
            alignment: self.alignment.as_str(),
            current_replicas: observed.replicas().map(|r| r.count),
            desired_replicas: decision.desired_replicas,
            action: decision.action,
            paused: decision.paused(),
            reason: outcome.to_string(),
            reason_kind: outcome.reason_kind(),
            job_parallelism: alignment.map(|a| a.parallelism),
            job_aligned: alignment.map(|a| a.aligned),
            target_error: observed
                .taskmanagers
                .as_ref()
                .err()
                .map(|e| e.reason().as_str()),
            flink_error: match &observed.job {
                Some(Err(e)) => Some(e.reason().as_str()),
                _ => None,
            },
            scaled: outcome.scaled && outcome.not_applied.is_empty(),
            backlog: outcome.planned.backlog.clone(),
        }
    }

    /// Writes `replicas` if this replica still leads at this instant (observing and planning
    /// took time, during which the Lease may have lapsed); a failure is counted and joins the
    /// outcome.
    async fn apply(
        &self,
        read: &Replicas,
        replicas: u32,
        leadership: &Leadership,
        outcome: &mut Outcome,
        metrics: &Metrics,
    ) {
        if !leadership.is_held() {
            tracing::warn!(target_ref = %self.target.describe(), to = replicas, "not scaling: the lease lapsed before the write");
            outcome.not_applied.push(NotApplied::LeaseLost);
            return;
        }
        let reason = outcome.to_string();
        match self.target.apply(read, replicas, &reason).await {
            Ok(()) => tracing::info!(
                target_ref = %self.target.describe(), from = read.count, to = replicas,
                segments = outcome.decision().segments, reason = %reason, "scaled"
            ),
            Err(e) => {
                metrics.record_scale_error(&self.config.name, e.reason());
                tracing::warn!(
                    target_ref = %self.target.describe(), error = %e,
                    reason = e.reason().as_str(), "scale failed; will retry"
                );
                outcome.not_applied.push(NotApplied::Target(e));
            }
        }
    }

    /// Makes the prewarmed mode's writes: the job's parallelism first, then the TaskManagers;
    /// a failure joins the outcome.
    async fn apply_prewarmed(
        &self,
        read: &Replicas,
        leadership: &Leadership,
        outcome: &mut Outcome,
        metrics: &Metrics,
    ) {
        let Some(pass) = &outcome.planned.prewarmed else {
            return;
        };
        let (job_id, required) = (pass.job_id.clone(), pass.required);
        let (job_parallelism, taskmanagers) = (pass.steps.job_parallelism, pass.steps.taskmanagers);
        if let (Some(parallelism), Some(flink)) = (job_parallelism, &self.flink) {
            if !leadership.is_held() {
                outcome.not_applied.push(NotApplied::LeaseLost);
                return;
            }
            match flink.set_parallelism(&job_id, parallelism).await {
                Ok(()) => {
                    let reason = outcome.to_string();
                    tracing::info!(
                        job_id,
                        from = required,
                        to = parallelism,
                        segments = outcome.decision().segments,
                        reason,
                        "set the job's parallelism"
                    );
                    let event = if parallelism > required {
                        "JobScaledUp"
                    } else {
                        "JobScaledDown"
                    };
                    let note =
                        format!("job {job_id} parallelism {required} -> {parallelism}: {reason}");
                    self.target.record(event, &note).await;
                }
                Err(e) => {
                    metrics.record_scale_error(&self.config.name, e.reason());
                    tracing::warn!(
                        job_id, error = %e,
                        reason = e.reason().as_str(), "setting the job's parallelism failed; will retry"
                    );
                    outcome.not_applied.push(NotApplied::Job(e));
                }
            }
        }
        if let Some(taskmanagers) = taskmanagers {
            self.apply(read, taskmanagers, leadership, outcome, metrics)
                .await;
        }
    }

    /// The job's parallelism requirement in the prewarmed mode ([`Requirement::NotUsed`] in
    /// reactive mode); unknown is the reason to hold.
    async fn requirement(
        &self,
        job: Option<&Result<JobStatus, FlinkError>>,
        settings: Option<&Result<JobManagerSettings, FlinkError>>,
    ) -> Requirement {
        if self.alignment == Alignment::Reactive {
            return Requirement::NotUsed;
        }
        let (flink, status) = match (&self.flink, job) {
            (Some(flink), Some(Ok(status))) => (flink, status),
            (_, Some(Err(e))) => return Requirement::Unknown(RequirementUnknown::Flink(e.clone())),
            (None, _) | (_, None) => return Requirement::Unknown(RequirementUnknown::NoFlink),
        };
        // Nothing is written to a job between two schedules: the next pass sees where it runs.
        let source_vertex = match &status.schedule {
            JobSchedule::Running { source_vertex, .. } => source_vertex,
            JobSchedule::Between(why) => {
                return Requirement::Unknown(RequirementUnknown::Between(why.clone()))
            }
        };
        match settings {
            Some(Ok(settings)) if settings.reactive => {
                return Requirement::Unknown(RequirementUnknown::ReactiveJobManager)
            }
            Some(Err(e)) => return Requirement::Unknown(RequirementUnknown::Flink(e.clone())),
            Some(Ok(_)) | None => {}
        }
        match flink
            .required_parallelism(&status.job_id, source_vertex)
            .await
        {
            Ok(required) => Requirement::Known(required),
            Err(e) => Requirement::Unknown(RequirementUnknown::Flink(e)),
        }
    }

    /// Records a pause or its end on the target (an Event), once per change.
    async fn record_pause(&mut self, paused: bool) {
        self.paused = paused;
        let (reason, note) = if paused {
            ("Paused", "replicas set to 0 by someone else: segment-autoscaler holds until they are set above 0")
        } else {
            (
                "Resumed",
                "replicas set above 0 again: segment-autoscaler follows the segments",
            )
        };
        tracing::info!(target_ref = %self.target.describe(), paused, "{note}");
        self.target.record(reason, note).await;
    }

    /// Opt-in: sets each bound stream's event-rate policy (target, fewest segments) to what
    /// [`tuned_policy`] says, at most once per backlog window; every change an Event with the
    /// old and new values.
    async fn tune_policies(&mut self, observed: &Observed, outcome: &Outcome, now: Instant) {
        let (Some(policies), Some(bounds)) = (&self.policies, self.tuning) else {
            return;
        };
        let Some(view) = &outcome.planned.backlog else {
            return;
        };
        let load = match &observed.source_load {
            Some(Ok(load)) => Some(load),
            _ => None,
        };
        let busy = load.and_then(|l| l.busy_ratio);
        let window = self.backlog_window();
        let since = self.last_tuned.map(|at| now.duration_since(at));
        // Read the policies only when a change may follow.
        if since.is_some_and(|since| since < window)
            || (view.falling_behind.is_none() && !idles(view, busy))
        {
            return;
        }
        let why = match &view.falling_behind {
            Some(behind) => behind.to_string(),
            None => format!(
                "the job idles (busy {:.0} % of the time)",
                busy.unwrap_or(0.0) * 100.0
            ),
        };
        // The segments the job needs, shared evenly among its streams (their own rates are
        // not known here).
        let mut view = view.clone();
        let streams = self.config.streams.len().max(1) as u32;
        if let Some(behind) = view.falling_behind.as_mut() {
            behind.segments_needed = behind.segments_needed.map(|n| n.div_ceil(streams));
        }
        let mut tried = false;
        for stream in &self.config.streams {
            let current = match policies.scaling(stream).await {
                Ok(scaling) if scaling.kind == ScalingKind::EventsPerSecond => Some(TunedPolicy {
                    target: scaling.target_rate,
                    min_segments: scaling.min_segments,
                }),
                Ok(scaling) => {
                    tracing::debug!(%stream, kind = ?scaling.kind, "not a policy by event rate: left alone");
                    None
                }
                Err(e) => {
                    tracing::debug!(%stream, error = %e, "stream scaling policy unavailable");
                    None
                }
            };
            let Some(to) = current
                .and_then(|current| tuned_policy(current, &view, load, bounds, since, window))
            else {
                continue;
            };
            tried = true;
            match policies
                .set_event_rate_policy(stream, to.target, to.min_segments)
                .await
            {
                Ok(before) => {
                    let note = format!(
                        "{stream}: scaling policy target {} -> {} events/s per segment, min segments {} -> {}: {why}",
                        before.target_rate, to.target, before.min_segments, to.min_segments
                    );
                    tracing::info!(%stream, from = before.target_rate, to = to.target, min_segments_from = before.min_segments, min_segments_to = to.min_segments, "{note}");
                    self.target.record("ScalingPolicyTuned", &note).await;
                }
                Err(e) => {
                    tracing::warn!(%stream, to = to.target, min_segments = to.min_segments, error = %e, reason = e.reason().as_str(), "changing the stream's scaling policy failed; tried again after the backlog window");
                }
            }
        }
        if tried {
            self.last_tuned = Some(now);
            // Read again at the next pass.
            self.policy_target = None;
        }
    }

    /// The JobManager's settings for the job `status` names (None without Flink), read at the
    /// job's first pass and again after a failed read; a new read is checked at once (log,
    /// metric, and an Event when acting: see [`Self::check_jobmanager`]).
    async fn read_jobmanager_once(
        &mut self,
        status: &JobStatus,
        act: bool,
        metrics: &Metrics,
    ) -> Option<Result<JobManagerSettings, FlinkError>> {
        if let Some((job_id, settings)) = &self.jobmanager {
            if *job_id == status.job_id {
                return Some(Ok(settings.clone()));
            }
        }
        let read = self
            .flink
            .as_ref()?
            .jobmanager_settings(&status.job_id, status.adaptive)
            .await;
        match &read {
            Ok(settings) => {
                self.jobmanager = Some((status.job_id.clone(), settings.clone()));
                self.check_jobmanager(&status.job_id, settings, act, metrics)
                    .await;
            }
            Err(e) => {
                tracing::debug!(error = %e, reason = e.reason().as_str(), "flink jobmanager settings unavailable; will retry");
            }
        }
        Some(read)
    }

    /// Warns (log, Event when acting, metric) when the JobManager's settings do not suit the
    /// binding: reactive mode under the prewarmed alignment, or rescale timers that may delay
    /// using a TaskManager change beyond the binding's tolerance.
    async fn check_jobmanager(
        &self,
        job_id: &str,
        settings: &JobManagerSettings,
        act: bool,
        metrics: &Metrics,
    ) {
        if settings.reactive && self.alignment != Alignment::Reactive {
            tracing::warn!(job_id, "{REACTIVE_JOBMANAGER}");
        }
        // None: another scheduler, no timers between a TaskManager change and its use.
        let (Some(timers), Some(config)) = (&settings.rescale_timers, &self.config.flink) else {
            return;
        };
        let tolerance = config.rescale_tolerance;
        let delay = timers.worst_delay();
        metrics.record_rescale_delay(&self.config.name, delay);
        if delay <= tolerance {
            tracing::info!(job_id, delay_seconds = delay.as_secs_f64(), timers = %timers.describe(), "flink rescale timers within flink.rescale_tolerance");
            return;
        }
        let note = format!(
            "Flink may wait up to {delay:?} before using a TaskManager change, more than \
             flink.rescale_tolerance ({tolerance:?}): {}; lower them (README: Flink settings)",
            timers.describe()
        );
        tracing::warn!(
            job_id,
            delay_seconds = delay.as_secs_f64(),
            tolerance_seconds = tolerance.as_secs_f64(),
            "{note}"
        );
        if act {
            self.target.record("SlowFlinkRescale", &note).await;
        }
    }

    /// The job's max parallelism: as reported now, else as last reported (a job is rarely
    /// redeployed with another, and scaling past the cap costs a stabilization to come back).
    pub(super) fn max_parallelism(
        &mut self,
        job: Option<&Result<JobStatus, FlinkError>>,
    ) -> Option<u32> {
        if let Some(max) = job.and_then(|j| j.as_ref().ok()?.max_parallelism) {
            self.known_max_parallelism = Some(max);
        }
        self.known_max_parallelism
    }
}

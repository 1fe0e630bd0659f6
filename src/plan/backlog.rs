//! Backlog: whether a job that runs at its segment count still falls behind its stream.
//!
//! Segments bound how many readers are useful, and the plan keeps the job at that bound. But
//! Pravega splits a segment by the rate it is written (the stream's scaling policy), not by what
//! one reader subtask of this job can process: a job slower per event than the policy assumes is
//! aligned and still falls behind. This judges it from the job's own figures (Flink's standard
//! source metrics, [`SourceLoad`]), pure like the rest of the plan:
//! - the backlog is the source's `pendingRecords`, summed over its subtasks;
//! - it *falls behind* when, the whole window long, the job ran aligned at the segment count and
//!   its backlog grew: its lowest value in the window's last quarter is above its highest in the
//!   first quarter (the estimate jumps with each reader-group checkpoint, so a fitted slope
//!   alone would call noise growth);
//! - one subtask's true processing rate is what it reads per second of busy time (DS2), and a
//!   policy target of [`KEEP_UP_SHARE`] of it would keep the job caught up.
//!
//! - opt-in ([`tuned_target`]), a stream's policy target is lowered to that rate while the job
//!   falls behind, so Pravega splits more segments and the job follows them, and raised back
//!   while it idles; within bounds, at most once per window.
//!
//! None of it changes the alignment rule: parallelism still equals segments.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::flink::SourceLoad;

/// Share of one subtask's true processing rate a segment may be written at and the job still
/// catch up: Pravega lets a segment run above its target for minutes before it splits (5x for
/// 2 minutes, 2x for 5), so the rest is the room to drain what piled up meanwhile.
pub const KEEP_UP_SHARE: f64 = 0.8;

/// Below this share of busy time, a rate per second of busy time is mostly noise.
const MIN_BUSY_RATIO: f64 = 0.05;

/// A backlog the job reads in this many seconds is caught up, however it moved: the estimate
/// jumps with each reader-group checkpoint, and a drained job's jitter is not falling behind.
const CAUGHT_UP_SECONDS: f64 = 10.0;

/// Two measures of one subtask's rate differ by this share or less from noise alone: the
/// tuning lowers a target only by more.
const RATE_NOISE: f64 = 0.1;

/// Below this share of busy time the job idles: its streams' targets may rise again.
pub const IDLE_BUSY_RATIO: f64 = 0.25;

/// What the backlog judgement knows now.
#[derive(Debug, Clone, Copy)]
pub struct BacklogInput<'a> {
    /// What the job's source reports; None when it could not be read (or the job is between
    /// two schedules).
    pub load: Option<&'a SourceLoad>,
    /// The parallelism the job's source runs at, when it runs.
    pub parallelism: Option<u32>,
    /// Whether the job runs at the parallelism the segments call for.
    pub aligned: bool,
    /// The stream's scaling policy target, events/s per segment, when known.
    pub policy_target: Option<f64>,
    /// Now.
    pub now: Instant,
}

/// A binding's backlog samples over the window.
#[derive(Debug, Default)]
pub struct BacklogHistory {
    /// (when, pending records), oldest first, taken while the job ran aligned.
    samples: VecDeque<(Instant, u64)>,
    /// Since when the job has been falling behind, while it is.
    behind_since: Option<Instant>,
}

/// The judgement of one reconciliation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacklogView {
    /// Events written to the bound streams and not read yet (the source's `pendingRecords`);
    /// None when unknown.
    pub records: Option<u64>,
    /// Seconds until the backlog is read at the pace it shrank over the window; 0 with no
    /// backlog; None while it does not shrink (or is unknown).
    pub catch_up_seconds: Option<f64>,
    /// Events one source subtask reads per second of busy time (DS2's true processing rate);
    /// None when unknown or the job is nearly idle.
    pub subtask_rate: Option<f64>,
    /// The lowest event-rate target of the bound streams' scaling policies, when known.
    pub policy_target: Option<f64>,
    /// Set while the job, aligned, falls behind.
    pub falling_behind: Option<FallingBehind>,
}

/// An aligned job whose backlog grew over the whole window, with the figures that explain it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FallingBehind {
    /// The window.
    #[serde(serialize_with = "seconds")]
    pub window: Duration,
    /// How long it has been falling behind (the window included).
    #[serde(serialize_with = "seconds")]
    pub for_: Duration,
    /// The backlog at the start and the end of the window.
    pub grew_from: u64,
    /// See `grew_from`.
    pub grew_to: u64,
    /// The segments (= the job's parallelism).
    pub segments: u32,
    /// One subtask's true processing rate, events/s.
    pub subtask_rate: Option<f64>,
    /// The stream's scaling policy target, events/s per segment.
    pub policy_target: Option<f64>,
    /// The target that would keep the job caught up: [`KEEP_UP_SHARE`] of `subtask_rate`.
    pub keep_up_target: Option<f64>,
    /// The rate the streams are written at, events/s: what the job reads plus what the
    /// backlog grows by (a least-squares slope over the window).
    pub write_rate: Option<f64>,
    /// The segments (one subtask each) that would keep the job caught up at that rate, each at
    /// `keep_up_target`.
    pub segments_needed: Option<u32>,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl fmt::Display for FallingBehind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "falling behind: the backlog grew from {} to {} events over {} while the job ran aligned at {} segments",
            self.grew_from,
            self.grew_to,
            humantime::format_duration(self.window),
            self.segments
        )?;
        if let Some(rate) = self.subtask_rate {
            write!(f, "; one subtask processes {rate:.0} events/s (busy time)")?;
        }
        if let Some(target) = self.policy_target {
            write!(
                f,
                ", the stream's policy splits a segment at {target:.0} events/s"
            )?;
        }
        if let Some(target) = self.keep_up_target {
            write!(
                f,
                "; a target of {target:.0} events/s per segment would keep it caught up"
            )?;
        }
        if let (Some(rate), Some(needed)) = (self.write_rate, self.segments_needed) {
            write!(
                f,
                "; written at {rate:.0} events/s, it needs {needed} segments at that target"
            )?;
        }
        Ok(())
    }
}

impl BacklogHistory {
    /// Takes this reconciliation's figures and judges them over `window`.
    pub fn observe(&mut self, window: Duration, input: &BacklogInput<'_>) -> BacklogView {
        let records = input.load.and_then(|l| l.pending_records);
        let subtask_rate = input.load.zip(input.parallelism).and_then(|(load, p)| {
            let busy = load.busy_ratio.filter(|b| *b >= MIN_BUSY_RATIO)?;
            let rate = load.records_per_second?;
            (p > 0).then(|| rate / f64::from(p) / busy)
        });
        // A rescale restarts the readers (and the estimate): only an aligned run counts.
        match (records, input.aligned) {
            (Some(pending), true) => self.samples.push_back((input.now, pending)),
            (_, false) => self.samples.clear(),
            (None, true) => {}
        }
        let start = input.now.checked_sub(window);
        // Keep one sample at or before the window's start: it shows the window is covered.
        while self.samples.len() > 1 && start.is_some_and(|s| self.samples[1].0 <= s) {
            self.samples.pop_front();
        }
        let read_rate = input.load.and_then(|l| l.records_per_second);
        let caught_up = |records: u64| {
            read_rate.is_some_and(|rate| (records as f64) < rate * CAUGHT_UP_SECONDS)
        };
        let grew = self
            .grew(window, input.now)
            .filter(|(_, newest)| !caught_up(*newest));
        self.behind_since = match grew {
            Some(_) => Some(self.behind_since.unwrap_or(input.now - window)),
            None => None,
        };
        let growth = self.slope().filter(|g| *g > 0.0);
        let falling_behind = grew.map(|(grew_from, grew_to)| {
            let keep_up_target = subtask_rate.map(|r| (r * KEEP_UP_SHARE).floor());
            let write_rate = read_rate.zip(growth).map(|(read, growth)| read + growth);
            let segments_needed =
                write_rate
                    .zip(keep_up_target.filter(|t| *t >= 1.0))
                    .map(|(rate, target)| {
                        (rate / target).ceil().clamp(1.0, f64::from(u32::MAX)) as u32
                    });
            FallingBehind {
                window,
                for_: self.behind_since.map_or(window, |since| input.now - since),
                grew_from,
                grew_to,
                segments: input.parallelism.unwrap_or(0),
                subtask_rate,
                policy_target: input.policy_target,
                keep_up_target,
                write_rate,
                segments_needed,
            }
        });
        BacklogView {
            records,
            catch_up_seconds: records.and_then(|r| self.catch_up_seconds(r)),
            subtask_rate,
            policy_target: input.policy_target,
            falling_behind,
        }
    }

    /// The backlog at the window's start and now, when it grew over the whole window.
    fn grew(&self, window: Duration, now: Instant) -> Option<(u64, u64)> {
        let &(first_at, first_records) = self.samples.front()?;
        let &(_, newest_records) = self.samples.back()?;
        if window.is_zero() || now.duration_since(first_at) < window {
            return None;
        }
        let quarter = window / 4;
        let highest_early = self
            .samples
            .iter()
            .take_while(|(t, _)| t.duration_since(first_at) <= quarter)
            .map(|(_, r)| *r)
            .max()?;
        let lowest_late = self
            .samples
            .iter()
            .filter(|(t, _)| now.duration_since(*t) <= quarter)
            .map(|(_, r)| *r)
            .min()?;
        (lowest_late > highest_early).then_some((first_records, newest_records))
    }

    /// Seconds to read `records` at the pace the backlog shrank over the samples; None while it
    /// does not shrink.
    fn catch_up_seconds(&self, records: u64) -> Option<f64> {
        if records == 0 {
            return Some(0.0);
        }
        let slope = self.slope()?;
        (slope < 0.0).then(|| records as f64 / -slope)
    }

    /// How fast the backlog changed over the samples, events/s (a least-squares slope); None
    /// with fewer than 3 samples.
    fn slope(&self) -> Option<f64> {
        if self.samples.len() < 3 {
            return None;
        }
        let (t0, _) = self.samples[0];
        let n = self.samples.len() as f64;
        let points = self
            .samples
            .iter()
            .map(|(t, r)| (t.duration_since(t0).as_secs_f64(), *r as f64));
        let (sx, sy, sxx, sxy) = points.fold((0.0, 0.0, 0.0, 0.0), |(sx, sy, sxx, sxy), (x, y)| {
            (sx + x, sy + y, sxx + x * x, sxy + x * y)
        });
        let spread = n * sxx - sx * sx;
        if spread <= 0.0 {
            return None;
        }
        Some((n * sxy - sx * sy) / spread)
    }
}

/// The bounds of the opt-in tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TuningBounds {
    /// The lowest target set, events/s per segment.
    pub min_target: u32,
    /// The highest target set, events/s per segment.
    pub max_target: u32,
    /// The fewest segments an idle job's stream is brought back to (the stream's own minimum).
    pub min_segments: u32,
    /// The most segments asked for (no more than the job can use).
    pub max_segments: u32,
}

/// A stream's event-rate policy, as far as the tuning changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunedPolicy {
    /// Events/s per segment above which Pravega splits a segment.
    pub target: u32,
    /// The fewest segments: Pravega splits up to it at once and never merges below it.
    pub min_segments: u32,
}

/// What a stream's policy should be instead of `current`, or None to leave it.
///
/// While the job falls behind, unless one of its subtasks idles (`least_busy_ratio` under
/// [`IDLE_BUSY_RATIO`]: a reader with nothing to read, such as the successors of a split while
/// another reader still reads the old segment, which Pravega's order keeps to one reader; more
/// segments would not help): the target lowered to the one that keeps it caught up and the
/// minimum raised to the segments that would (so the stream splits now rather than when
/// Pravega's slow rates cross the target, and is not merged back below what the job needs);
/// never a raise of the target nor a cut of the minimum. While it idles (busy under
/// [`IDLE_BUSY_RATIO`] of the time, not falling behind): the target doubled and the minimum
/// halved. Within `bounds`, and never within `window` of the last change (`since_change`).
pub fn tuned_policy(
    current: TunedPolicy,
    view: &BacklogView,
    load: Option<&SourceLoad>,
    bounds: TuningBounds,
    since_change: Option<Duration>,
    window: Duration,
) -> Option<TunedPolicy> {
    if since_change.is_some_and(|since| since < window) {
        return None;
    }
    let busy_ratio = load.and_then(|l| l.busy_ratio);
    let a_reader_idles = load
        .and_then(|l| l.least_busy_ratio)
        .is_some_and(|b| b < IDLE_BUSY_RATIO);
    let target_within = |target: u32| target.clamp(bounds.min_target, bounds.max_target);
    let segments_within = |n: u32| n.clamp(bounds.min_segments.max(1), bounds.max_segments.max(1));
    let tuned = match &view.falling_behind {
        Some(_) if a_reader_idles => return None,
        Some(behind) => {
            let keep_up = behind.keep_up_target?;
            let target = target_within(keep_up.clamp(0.0, f64::from(u32::MAX)) as u32);
            let needed = behind
                .segments_needed
                .map_or(current.min_segments, segments_within);
            // A target within the rate's noise of the current one is the same figure measured
            // again (seen: 190 -> 185 from 238 and 232 events/s): not a change.
            let lower = f64::from(target) < f64::from(current.target) * (1.0 - RATE_NOISE);
            TunedPolicy {
                target: if lower { target } else { current.target },
                min_segments: needed.max(current.min_segments),
            }
        }
        None if idles(view, busy_ratio) => {
            let target = target_within(current.target.saturating_mul(2));
            let min_segments = segments_within(current.min_segments.div_ceil(2));
            TunedPolicy {
                target: target.max(current.target),
                min_segments: min_segments.min(current.min_segments),
            }
        }
        None => return None,
    };
    (tuned != current).then_some(tuned)
}

/// Whether the job idles: its backlog known, not falling behind, busy under
/// [`IDLE_BUSY_RATIO`] of the time.
pub fn idles(view: &BacklogView, busy_ratio: Option<f64>) -> bool {
    view.falling_behind.is_none()
        && view.records.is_some()
        && busy_ratio.is_some_and(|b| b < IDLE_BUSY_RATIO)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(120);

    fn load(pending: Option<u64>, rate: f64, busy: f64) -> SourceLoad {
        SourceLoad {
            pending_records: pending,
            records_per_second: Some(rate),
            busy_ratio: Some(busy),
            least_busy_ratio: Some(busy),
        }
    }

    /// Busy `busy` on average, `least` for the least busy subtask.
    fn busy(busy: f64, least: f64) -> SourceLoad {
        SourceLoad {
            least_busy_ratio: Some(least),
            ..load(None, 100.0, busy)
        }
    }

    /// Feeds one sample every 10 s from `t0` (backlog, aligned); returns the last view.
    fn run(
        history: &mut BacklogHistory,
        t0: Instant,
        samples: impl IntoIterator<Item = (u64, bool)>,
    ) -> BacklogView {
        let mut view = None;
        for (i, (pending, aligned)) in samples.into_iter().enumerate() {
            let load = load(Some(pending), 400.0, 0.5);
            view = Some(history.observe(
                WINDOW,
                &BacklogInput {
                    load: Some(&load),
                    parallelism: Some(2),
                    aligned,
                    policy_target: Some(1000.0),
                    now: t0 + Duration::from_secs(10 * i as u64),
                },
            ));
        }
        view.unwrap()
    }

    #[test]
    fn a_backlog_that_grows_for_the_whole_window_is_falling_behind_with_its_figures() {
        let mut history = BacklogHistory::default();
        let view = run(
            &mut history,
            Instant::now(),
            (0..=12).map(|i| (1000 + 500 * i, true)),
        );
        let behind = view.falling_behind.expect("falling behind");
        assert_eq!((behind.grew_from, behind.grew_to), (1000, 7000));
        assert_eq!(behind.segments, 2);
        // 400 events/s over 2 subtasks busy half the time: 400 events/s of busy time each.
        assert_eq!(behind.subtask_rate, Some(400.0));
        assert_eq!(behind.keep_up_target, Some(320.0));
        assert_eq!(behind.policy_target, Some(1000.0));
        assert_eq!(behind.for_, WINDOW);
        assert_eq!(view.records, Some(7000));
        assert_eq!(view.catch_up_seconds, None);
        let text = behind.to_string();
        assert!(
            text.contains("grew from 1000 to 7000 events over 2m"),
            "{text}"
        );
        assert!(text.contains("320 events/s per segment"), "{text}");
    }

    #[test]
    fn not_before_the_window_is_covered() {
        let mut history = BacklogHistory::default();
        let view = run(
            &mut history,
            Instant::now(),
            (0..12).map(|i| (1000 + 500 * i, true)),
        );
        assert_eq!(view.falling_behind, None);
    }

    #[test]
    fn checkpoint_jitter_is_not_growth() {
        // A caught-up job: the estimate jumps between 0 and 5 s of input with each checkpoint.
        let mut history = BacklogHistory::default();
        let view = run(
            &mut history,
            Instant::now(),
            (0..=24).map(|i| (if i % 2 == 0 { 0 } else { 2000 }, true)),
        );
        assert_eq!(view.falling_behind, None);
    }

    #[test]
    fn a_backlog_read_within_seconds_is_caught_up_however_it_moved() {
        // Read at 400 events/s: under 4000 events is less than 10 s of reading.
        let mut history = BacklogHistory::default();
        let view = run(
            &mut history,
            Instant::now(),
            (0..=12).map(|i| (300 + 250 * i, true)),
        );
        assert_eq!(view.records, Some(3300));
        assert_eq!(view.falling_behind, None);
        let view = run(
            &mut history,
            Instant::now() + Duration::from_secs(130),
            (0..=12).map(|i| (3300 + 250 * i, true)),
        );
        assert!(view.falling_behind.is_some(), "6300: over 10 s of reading");
    }

    #[test]
    fn a_rescale_restarts_the_window() {
        let mut history = BacklogHistory::default();
        let t0 = Instant::now();
        // Grows for 2 minutes, with a rescale (not aligned) 50 s in.
        let view = run(&mut history, t0, (0..=12).map(|i| (1000 + 500 * i, i != 5)));
        assert_eq!(view.falling_behind, None);
    }

    #[test]
    fn falling_behind_lasts_while_it_grows_and_ends_when_it_shrinks() {
        let mut history = BacklogHistory::default();
        let t0 = Instant::now();
        let view = run(&mut history, t0, (0..=18).map(|i| (1000 + 500 * i, true)));
        assert_eq!(
            view.falling_behind.map(|b| b.for_),
            Some(WINDOW + Duration::from_secs(60))
        );
        // Then it drains: 500 events fewer every 10 s.
        let last = 1000 + 500 * 18;
        let view = run(
            &mut history,
            t0 + Duration::from_secs(190),
            (0..=12).map(|i| (last - 500 * i, true)),
        );
        assert_eq!(view.falling_behind, None);
        // 50 events/s less: 4000 left take 80 s.
        assert_eq!(view.records, Some(4000));
        let eta = view.catch_up_seconds.expect("draining");
        assert!((eta - 80.0).abs() < 1.0, "{eta}");
    }

    #[test]
    fn unknown_backlog_is_absent_not_zero() {
        let mut history = BacklogHistory::default();
        let load = load(None, 400.0, 0.5);
        let view = history.observe(
            WINDOW,
            &BacklogInput {
                load: Some(&load),
                parallelism: Some(2),
                aligned: true,
                policy_target: None,
                now: Instant::now(),
            },
        );
        assert_eq!(view.records, None);
        assert_eq!(view.catch_up_seconds, None);
        let view = history.observe(
            WINDOW,
            &BacklogInput {
                load: None,
                parallelism: None,
                aligned: false,
                policy_target: None,
                now: Instant::now(),
            },
        );
        assert_eq!(view.records, None);
        assert_eq!(view.subtask_rate, None);
    }

    #[test]
    fn no_backlog_is_caught_up_now() {
        let mut history = BacklogHistory::default();
        let view = run(&mut history, Instant::now(), [(0, true)]);
        assert_eq!(view.catch_up_seconds, Some(0.0));
    }

    #[test]
    fn a_nearly_idle_job_has_no_rate_per_busy_second() {
        let mut history = BacklogHistory::default();
        let load = load(Some(0), 1.0, 0.01);
        let view = history.observe(
            WINDOW,
            &BacklogInput {
                load: Some(&load),
                parallelism: Some(2),
                aligned: true,
                policy_target: None,
                now: Instant::now(),
            },
        );
        assert_eq!(view.subtask_rate, None);
    }

    fn behind(keep_up: Option<f64>, needed: Option<u32>) -> BacklogView {
        BacklogView {
            records: Some(9000),
            catch_up_seconds: None,
            subtask_rate: keep_up.map(|k| k / KEEP_UP_SHARE),
            policy_target: Some(1000.0),
            falling_behind: Some(FallingBehind {
                window: WINDOW,
                for_: WINDOW,
                grew_from: 1000,
                grew_to: 9000,
                segments: 1,
                subtask_rate: keep_up.map(|k| k / KEEP_UP_SHARE),
                policy_target: Some(1000.0),
                keep_up_target: keep_up,
                write_rate: needed.zip(keep_up).map(|(n, k)| f64::from(n) * k),
                segments_needed: needed,
            }),
        }
    }

    fn keeping_up() -> BacklogView {
        BacklogView {
            records: Some(100),
            catch_up_seconds: Some(0.0),
            subtask_rate: Some(500.0),
            policy_target: Some(100.0),
            falling_behind: None,
        }
    }

    const BOUNDS: TuningBounds = TuningBounds {
        min_target: 50,
        max_target: 1000,
        min_segments: 1,
        max_segments: 4,
    };

    fn policy(target: u32, min_segments: u32) -> TunedPolicy {
        TunedPolicy {
            target,
            min_segments,
        }
    }

    #[test]
    fn falling_behind_lowers_the_target_and_raises_the_minimum_to_what_keeps_it_caught_up() {
        let all_busy = busy(1.0, 1.0);
        let tune = |current, keep_up, needed| {
            tuned_policy(
                current,
                &behind(keep_up, needed),
                Some(&all_busy),
                BOUNDS,
                None,
                WINDOW,
            )
        };
        assert_eq!(
            tune(policy(1000, 1), Some(101.0), Some(3)),
            Some(policy(101, 3))
        );
        assert_eq!(
            tune(policy(1000, 1), Some(20.0), Some(9)),
            Some(policy(50, 4)),
            "not below min_target, not above max_segments"
        );
        assert_eq!(
            tune(policy(1000, 1), Some(101.0), None),
            Some(policy(101, 1)),
            "no write rate: the target alone"
        );
        // Already there (the split is under way): no change; never a raise of the target
        // nor a cut of the minimum while it falls behind.
        assert_eq!(tune(policy(100, 3), Some(101.0), Some(3)), None);
        // Within the rate's noise of the current target: the same figure measured again.
        assert_eq!(tune(policy(190, 3), Some(185.0), Some(3)), None);
        assert_eq!(
            tune(policy(190, 3), Some(170.0), Some(3)),
            Some(policy(170, 3))
        );
        assert_eq!(tune(policy(40, 4), Some(20.0), Some(2)), None);
        assert_eq!(
            tune(policy(100, 1), Some(101.0), Some(2)),
            Some(policy(100, 2))
        );
        assert_eq!(
            tune(policy(1000, 1), None, Some(3)),
            None,
            "no rate, no figure"
        );
        // A reader idles (the successors of a split wait for the old segment): more segments
        // would not be read either.
        assert_eq!(
            tuned_policy(
                policy(196, 2),
                &behind(Some(174.0), Some(3)),
                Some(&busy(0.55, 0.1)),
                BOUNDS,
                None,
                WINDOW
            ),
            None
        );
    }

    #[test]
    fn an_idle_job_doubles_the_target_and_halves_the_minimum_within_bounds() {
        let tune = |current, ratio: Option<f64>| {
            let load = ratio.map(|r| busy(r, r));
            tuned_policy(current, &keeping_up(), load.as_ref(), BOUNDS, None, WINDOW)
        };
        assert_eq!(tune(policy(100, 4), Some(0.1)), Some(policy(200, 2)));
        assert_eq!(
            tune(policy(600, 1), Some(0.1)),
            Some(policy(1000, 1)),
            "not above max_target"
        );
        assert_eq!(tune(policy(1000, 3), Some(0.1)), Some(policy(1000, 2)));
        assert_eq!(tune(policy(1000, 1), Some(0.1)), None, "at the bounds");
        assert_eq!(tune(policy(100, 4), Some(0.5)), None, "busy: not idle");
        assert_eq!(tune(policy(100, 4), None), None, "unknown: not idle");
        // Beyond the bounds by the user's hand: an idle job neither lowers the target nor
        // raises the minimum.
        assert_eq!(tune(policy(2000, 1), Some(0.1)), None);
        let floor = TuningBounds {
            min_segments: 3,
            ..BOUNDS
        };
        assert_eq!(
            tuned_policy(
                policy(1000, 2),
                &keeping_up(),
                Some(&busy(0.1, 0.1)),
                floor,
                None,
                WINDOW
            ),
            None,
            "a minimum under the floor is not raised by an idle job"
        );
    }

    #[test]
    fn at_most_one_change_per_window() {
        let view = behind(Some(101.0), Some(2));
        let since = |s| Some(Duration::from_secs(s));
        let tune = |since| tuned_policy(policy(1000, 1), &view, None, BOUNDS, since, WINDOW);
        assert_eq!(tune(since(119)), None);
        assert_eq!(tune(since(120)), Some(policy(101, 2)));
    }

    #[test]
    fn falling_behind_names_the_write_rate_and_the_segments_it_needs() {
        let mut history = BacklogHistory::default();
        let t0 = Instant::now();
        let load = SourceLoad {
            pending_records: None,
            records_per_second: Some(240.0),
            busy_ratio: Some(1.0),
            least_busy_ratio: Some(1.0),
        };
        let mut view = None;
        // Grows by 160 events/s, read at 240: written at 400.
        for i in 0..=12u64 {
            let load = SourceLoad {
                pending_records: Some(1000 + 1600 * i),
                ..load.clone()
            };
            view = Some(history.observe(
                WINDOW,
                &BacklogInput {
                    load: Some(&load),
                    parallelism: Some(1),
                    aligned: true,
                    policy_target: Some(1000.0),
                    now: t0 + Duration::from_secs(10 * i),
                },
            ));
        }
        let behind = view.unwrap().falling_behind.expect("falling behind");
        assert_eq!(behind.keep_up_target, Some(192.0));
        let rate = behind.write_rate.expect("write rate");
        assert!((rate - 400.0).abs() < 1e-6, "{rate}");
        assert_eq!(behind.segments_needed, Some(3));
        assert!(
            behind
                .to_string()
                .ends_with("; written at 400 events/s, it needs 3 segments at that target"),
            "{behind}"
        );
    }
}

//! What a stream's gauge series in Prometheus tell about its count once the live answer is not
//! enough: the gauge was evicted, or controller instances report different counts.
//!
//! Pure (the series, the scrape state and the time are inputs). The Pravega facts behind it:
//! the controller sets `pravega_controller_segments_count` when a stream is created and when a
//! scale completes, only on the instance that ran it, and evicts it 3 minutes later (by
//! default). So a count stays true after its series is gone, until the next scale, which sets
//! the gauge again; and of two instances reporting different counts, the one that reported its
//! count as a change more recently ran the later scale.

use std::fmt;
use std::time::Duration;

use super::{SegmentReading, Undetermined};

/// A scrape target that reported a stream's gauge: its `job` and `instance` labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reporter {
    /// The `job` label, if the series has one.
    pub job: Option<String>,
    /// The `instance` label, if the series has one.
    pub instance: Option<String>,
}

impl fmt::Display for Reporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let instance = self.instance.as_deref().unwrap_or("(no instance label)");
        match &self.job {
            Some(job) => write!(f, "{instance} (job {job})"),
            None => write!(f, "{instance}"),
        }
    }
}

/// Whether Prometheus scrapes a reporter now, by its `up` series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scrape {
    /// `up == 1`.
    Up,
    /// `up == 0`: the last scrape failed.
    Down,
    /// No `up` series: Prometheus no longer has the target.
    Unknown,
}

impl fmt::Display for Scrape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scrape::Up => "up == 1",
            Scrape::Down => "up == 0",
            Scrape::Unknown => "no up series",
        })
    }
}

/// One reporter's samples of one stream's gauge within the look-back, oldest first, as
/// (Unix seconds, value).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesHistory {
    /// Who reported it.
    pub reporter: Reporter,
    /// The raw samples.
    pub samples: Vec<(f64, f64)>,
}

/// The look-back window of one judgement.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Now, in Unix seconds.
    pub now: f64,
    /// How far back the samples go.
    pub lookback: Duration,
}

/// One series reduced to what the judgement needs.
struct LastRun {
    value: f64,
    /// When the last sample was scraped.
    last_seen: f64,
    /// When the series started reporting `value` (a change, or a reappearance after a gap);
    /// `None` when that lies before the window, so cannot be told.
    since: Option<f64>,
}

/// The stream's count from its series within the window:
/// - no series: [`Undetermined::NoSeries`];
/// - none of the reporters is scraped now: [`Undetermined::NotScraped`] (a scale could go
///   unseen);
/// - a reporter's last value is no plausible count: that [`SegmentReading::Invalid`];
/// - one value (however many reporters): that count, as old as its newest sample;
/// - several: the value a reporter started reporting most recently wins; when that cannot be
///   told (the newest start is before the window, or two starts tie),
///   [`Undetermined::Unordered`].
pub fn judge(
    series: &[SeriesHistory],
    scrape: impl Fn(&Reporter) -> Scrape,
    window: Window,
) -> SegmentReading {
    let gap = gap(series);
    let runs: Vec<(&Reporter, LastRun)> = series
        .iter()
        .filter_map(|s| Some((&s.reporter, last_run(&s.samples, gap, window)?)))
        .collect();
    if runs.is_empty() {
        return SegmentReading::Undetermined(Undetermined::NoSeries {
            lookback: window.lookback,
        });
    }
    let states: Vec<(&Reporter, Scrape)> = runs.iter().map(|(r, _)| (*r, scrape(r))).collect();
    if states.iter().all(|(_, state)| *state != Scrape::Up) {
        let mut targets: Vec<String> = states.iter().map(|(r, s)| format!("{r}: {s}")).collect();
        targets.sort();
        targets.dedup();
        return SegmentReading::Undetermined(Undetermined::NotScraped { targets });
    }
    if let Some(bad) = runs
        .iter()
        .map(|(_, run)| SegmentReading::from_sample(run.value))
        .find(|reading| reading.segments().is_none())
    {
        return bad;
    }
    let age = |run: &LastRun| Duration::from_secs_f64((window.now - run.last_seen).max(0.0));
    let first = &runs[0].1;
    if runs.iter().all(|(_, run)| run.value == first.value) {
        let newest = runs
            .iter()
            .map(|(_, run)| run)
            .max_by(|a, b| a.last_seen.total_cmp(&b.last_seen))
            .expect("runs is not empty");
        return last_reported(newest.value, age(newest));
    }
    // Several counts: the latest change wins, if it can be told apart.
    let start = |run: &LastRun| run.since.unwrap_or(f64::NEG_INFINITY);
    let (_, winner) = runs
        .iter()
        .max_by(|(_, a), (_, b)| start(a).total_cmp(&start(b)))
        .expect("runs is not empty");
    let tied = runs
        .iter()
        .any(|(_, run)| run.value != winner.value && start(run) == start(winner));
    if winner.since.is_none() || tied {
        let mut reports: Vec<String> = runs
            .iter()
            .map(|(r, run)| match run.since {
                Some(_) => format!("{r}: {}", run.value),
                None => format!("{r}: {} (since before the look-back)", run.value),
            })
            .collect();
        reports.sort();
        return SegmentReading::Undetermined(Undetermined::Unordered { reports });
    }
    last_reported(winner.value, age(winner))
}

fn last_reported(value: f64, age: Duration) -> SegmentReading {
    match SegmentReading::from_sample(value) {
        SegmentReading::Segments(segments) => SegmentReading::LastReported { segments, age },
        other => other,
    }
}

/// The longest pause between two samples of one run: three scrape intervals, the interval
/// being the shortest spacing seen among the stream's series. A longer pause means the series
/// disappeared (evicted) and a new report brought it back. Infinite when no series has two
/// samples (nothing to split).
fn gap(series: &[SeriesHistory]) -> f64 {
    let interval = series
        .iter()
        .flat_map(|s| s.samples.windows(2).map(|w| w[1].0 - w[0].0))
        .filter(|d| *d > 0.0)
        .fold(f64::INFINITY, f64::min);
    3.0 * interval
}

/// The value a series ended on, when it was last seen and since when it reported it.
fn last_run(samples: &[(f64, f64)], gap: f64, window: Window) -> Option<LastRun> {
    let &(last_seen, value) = samples.last()?;
    let same = |v: f64| v == value || (v.is_nan() && value.is_nan());
    let mut first = samples.len() - 1;
    while first > 0 && same(samples[first - 1].1) && samples[first].0 - samples[first - 1].0 <= gap
    {
        first -= 1;
    }
    let window_start = window.now - window.lookback.as_secs_f64();
    let began = samples[first].0;
    // A run reaching the window's first sample may have begun before the window.
    let since = (first > 0 || began - window_start > gap.min(window.lookback.as_secs_f64()))
        .then_some(began);
    Some(LastRun {
        value,
        last_seen,
        since,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::ImplausibleCount;

    const NOW: f64 = 100_000.0;

    fn window() -> Window {
        Window {
            now: NOW,
            lookback: Duration::from_secs(3600),
        }
    }

    fn reporter(instance: &str) -> Reporter {
        Reporter {
            job: Some("pravega".into()),
            instance: Some(instance.into()),
        }
    }

    /// A series scraped every second from `from` to `to` (seconds before NOW), at `value`.
    fn run(from: f64, to: f64, value: f64) -> Vec<(f64, f64)> {
        let mut t = NOW - from;
        let mut samples = Vec::new();
        while t <= NOW - to {
            samples.push((t, value));
            t += 1.0;
        }
        samples
    }

    fn series(instance: &str, runs: &[Vec<(f64, f64)>]) -> SeriesHistory {
        SeriesHistory {
            reporter: reporter(instance),
            samples: runs.concat(),
        }
    }

    fn all_up(_: &Reporter) -> Scrape {
        Scrape::Up
    }

    fn judged(series: &[SeriesHistory]) -> SegmentReading {
        judge(series, all_up, window())
    }

    #[test]
    fn an_evicted_gauge_keeps_its_last_count_with_its_age() {
        // Scaled to 3 twenty minutes ago, reported for 3 minutes, then evicted.
        let reading = judged(&[series("c1", &[run(1200.0, 1020.0, 3.0)])]);
        assert_eq!(
            reading,
            SegmentReading::LastReported {
                segments: 3,
                age: Duration::from_secs(1020)
            }
        );
    }

    #[test]
    fn no_series_within_the_lookback_is_undetermined() {
        assert_eq!(
            judged(&[]),
            SegmentReading::Undetermined(Undetermined::NoSeries {
                lookback: Duration::from_secs(3600)
            })
        );
    }

    #[test]
    fn equal_counts_of_several_instances_are_one_count() {
        let reading = judged(&[
            series("c1", &[run(900.0, 700.0, 4.0)]),
            series("c2", &[run(600.0, 400.0, 4.0)]),
        ]);
        assert_eq!(
            reading,
            SegmentReading::LastReported {
                segments: 4,
                age: Duration::from_secs(400)
            },
            "never added up, as old as the newest sample"
        );
    }

    #[test]
    fn the_instance_that_reported_a_change_last_wins() {
        // c1 ran the scale to 3 long ago and still shows it; c2 scaled to 5 later.
        let older_still_shown = series("c1", &[run(3000.0, 0.0, 3.0)]);
        let newer = series("c2", &[run(120.0, 0.0, 5.0)]);
        assert_eq!(
            judged(&[older_still_shown.clone(), newer.clone()]).segments(),
            Some(5)
        );
        // Same when both are evicted: the start of the newer report decides, not its end.
        let evicted_older = series("c1", &[run(1000.0, 100.0, 3.0)]);
        let evicted_newer = series("c2", &[run(900.0, 720.0, 5.0)]);
        assert_eq!(judged(&[evicted_older, evicted_newer]).segments(), Some(5));
        // A value changed within one series starts a new report.
        let changed = series("c1", &[run(3000.0, 61.0, 2.0), run(60.0, 0.0, 6.0)]);
        assert_eq!(judged(&[changed, newer]).segments(), Some(6));
    }

    #[test]
    fn a_reappearing_series_is_a_new_report() {
        // c1: 3, evicted; c2: 5 later; then c1 scaled again to 3 (its series is back).
        let c1 = series("c1", &[run(2000.0, 1820.0, 3.0), run(300.0, 120.0, 3.0)]);
        let c2 = series("c2", &[run(1000.0, 820.0, 5.0)]);
        assert_eq!(judged(&[c1, c2]).segments(), Some(3));
    }

    #[test]
    fn counts_that_cannot_be_ordered_are_undetermined() {
        // Both reported since before the look-back: which changed last cannot be told.
        let c1 = series("c1", &[run(3600.0, 0.0, 3.0)]);
        let c2 = series("c2", &[run(3600.0, 0.0, 5.0)]);
        let reading = judged(&[c1.clone(), c2]);
        let SegmentReading::Undetermined(Undetermined::Unordered { reports }) = &reading else {
            panic!("{reading:?}");
        };
        assert_eq!(
            reports,
            &vec![
                "c1 (job pravega): 3 (since before the look-back)".to_string(),
                "c2 (job pravega): 5 (since before the look-back)".to_string()
            ]
        );
        assert!(reading.to_string().contains("source: auto"), "{reading}");
        // Two reports starting at the same scrape.
        let tie = series("c3", &[run(100.0, 0.0, 7.0)]);
        let other = series("c4", &[run(100.0, 0.0, 8.0)]);
        assert!(matches!(
            judged(&[tie, other]),
            SegmentReading::Undetermined(Undetermined::Unordered { .. })
        ));
        // A newer report beats one from before the window.
        assert_eq!(
            judged(&[c1, series("c2", &[run(100.0, 0.0, 5.0)])]).segments(),
            Some(5)
        );
    }

    #[test]
    fn without_a_scraped_reporter_it_holds_naming_each() {
        let c1 = series("c1", &[run(1200.0, 1020.0, 3.0)]);
        let c2 = series("c2", &[run(1200.0, 1020.0, 3.0)]);
        let scrape = |r: &Reporter| match r.instance.as_deref() {
            Some("c1") => Scrape::Down,
            _ => Scrape::Unknown,
        };
        let reading = judge(&[c1.clone(), c2.clone()], scrape, window());
        assert_eq!(
            reading,
            SegmentReading::Undetermined(Undetermined::NotScraped {
                targets: vec![
                    "c1 (job pravega): up == 0".into(),
                    "c2 (job pravega): no up series".into()
                ]
            })
        );
        let text = reading.to_string();
        assert!(
            text.contains("c1 (job pravega): up == 0") && text.contains("source: auto"),
            "{text}"
        );
        // One of them scraped is enough: a scale on it would show.
        let one_up = |r: &Reporter| match r.instance.as_deref() {
            Some("c1") => Scrape::Up,
            _ => Scrape::Down,
        };
        assert_eq!(judge(&[c1, c2], one_up, window()).segments(), Some(3));
    }

    #[test]
    fn an_implausible_last_value_is_invalid() {
        let reading = judged(&[series(
            "c1",
            &[run(600.0, 400.0, 2.0), run(399.0, 300.0, 0.0)],
        )]);
        assert_eq!(reading, SegmentReading::Invalid(ImplausibleCount::Zero));
        let reading = judged(&[series("c1", &[run(600.0, 400.0, f64::NAN)])]);
        assert_eq!(
            reading,
            SegmentReading::Invalid(ImplausibleCount::NotANumber)
        );
    }

    #[test]
    fn a_series_beginning_inside_the_window_began_then() {
        let gap = 3.0;
        let w = window();
        let inside = last_run(&run(1800.0, 0.0, 2.0), gap, w).unwrap();
        assert_eq!(inside.since, Some(NOW - 1800.0));
        let at_the_edge = last_run(&run(3600.0, 0.0, 2.0), gap, w).unwrap();
        assert_eq!(at_the_edge.since, None);
        assert!(last_run(&[], gap, w).is_none());
    }
}

//! When the end-to-end event counts are final: the job has verified every event written, and
//! the written figure itself has stopped moving.

use std::time::{Duration, Instant};

use crate::EventCounts;

/// How long a written figure scraped from Prometheus must stay unchanged before it is taken as
/// final: three scrape intervals of the demo's Prometheus (5 s), so a final count the generator
/// serves while it lingers is in.
pub const WRITTEN_SETTLE: Duration = Duration::from_secs(15);

/// Decides when `demo-report --catch-up` may stop waiting, from successive readings.
#[derive(Debug)]
pub struct CatchUp {
    settle: Duration,
    exact_written: bool,
    /// The written figure last read, and since when it has had that value.
    written: Option<(u64, Instant)>,
}

impl CatchUp {
    /// `exact_written`: the written figure is the generator's exit summary, final already.
    /// Otherwise it is scraped and must stay unchanged for `settle`: a scrape may still be
    /// about to take the generator's last count, and until then the job can look caught up
    /// with a figure that is too low.
    pub fn new(settle: Duration, exact_written: bool) -> CatchUp {
        CatchUp {
            settle,
            exact_written,
            written: None,
        }
    }

    /// Records the counts read at `now`; true once they are final. Counts without a written
    /// figure (no generator) have nothing to wait for, nor those without a verified figure
    /// unless `verifier_in_run`: a busy reader that reported earlier in the run and has no
    /// figures now is restarting (a rescale), and they come back.
    pub fn is_final(&mut self, counts: &EventCounts, verifier_in_run: bool, now: Instant) -> bool {
        let Some(written) = counts.events_written else {
            return true;
        };
        let since = match self.written {
            Some((last, since)) if last == written => since,
            _ => now,
        };
        self.written = Some((written, since));
        match counts.events_caught_up {
            None => !verifier_in_run,
            Some(false) => false,
            Some(true) => self.exact_written || now.duration_since(since) >= self.settle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VerifiedEvents;

    fn counts(written: u64, read: u64) -> EventCounts {
        EventCounts::new(
            Some(written),
            Some(VerifiedEvents {
                read,
                duplicates: 0,
                unsequenced: 0,
                gaps: 0,
            }),
        )
    }

    const SETTLE: Duration = Duration::from_secs(15);

    #[test]
    fn a_scraped_figure_must_hold_still_for_the_settle_time() {
        let start = Instant::now();
        let mut catch_up = CatchUp::new(SETTLE, false);
        // Caught up with a figure still rising (the last scrape is yet to come).
        assert!(!catch_up.is_final(&counts(100, 100), true, start));
        assert!(!catch_up.is_final(&counts(120, 120), true, start + Duration::from_secs(5)));
        assert!(!catch_up.is_final(&counts(120, 120), true, start + Duration::from_secs(19)));
        assert!(catch_up.is_final(&counts(120, 120), true, start + Duration::from_secs(20)));
    }

    #[test]
    fn a_settled_figure_the_job_has_not_verified_yet_is_not_final() {
        let start = Instant::now();
        let mut catch_up = CatchUp::new(SETTLE, false);
        assert!(!catch_up.is_final(&counts(120, 80), true, start));
        assert!(!catch_up.is_final(&counts(120, 119), true, start + Duration::from_secs(30)));
        // Settled long ago: final as soon as the job has verified them all.
        assert!(catch_up.is_final(&counts(120, 120), true, start + Duration::from_secs(31)));
    }

    #[test]
    fn more_verified_than_written_is_not_final() {
        // Mid-rescale, a stopping TaskManager's subtasks still scraped beside the new ones.
        let start = Instant::now();
        let mut catch_up = CatchUp::new(SETTLE, true);
        assert!(!catch_up.is_final(&counts(120, 170), true, start));
        assert!(catch_up.is_final(&counts(120, 120), true, start + Duration::from_secs(5)));
    }

    #[test]
    fn an_exact_figure_is_final_once_verified() {
        let start = Instant::now();
        let mut catch_up = CatchUp::new(SETTLE, true);
        assert!(!catch_up.is_final(&counts(120, 100), true, start));
        assert!(catch_up.is_final(&counts(120, 120), true, start + Duration::from_secs(1)));
    }

    #[test]
    fn without_figures_there_is_nothing_to_wait_for() {
        let mut catch_up = CatchUp::new(SETTLE, false);
        let now = Instant::now();
        assert!(catch_up.is_final(&EventCounts::new(None, None), false, now));
        // Another job than the busy reader: no verifier in the whole run.
        assert!(catch_up.is_final(&EventCounts::new(Some(5), None), false, now));
        assert!(catch_up.is_final(&EventCounts::new(None, None), true, now));
    }

    #[test]
    fn a_verifier_gone_mid_rescale_is_waited_for() {
        // A CI demo stopped while the job restarted at a new parallelism: the verifier had
        // reported all run, had no series at that moment, and the report gave up at once.
        let start = Instant::now();
        let mut catch_up = CatchUp::new(SETTLE, true);
        assert!(!catch_up.is_final(&EventCounts::new(Some(120), None), true, start));
        assert!(catch_up.is_final(&counts(120, 120), true, start + Duration::from_secs(20)));
    }
}

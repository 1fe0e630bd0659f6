//! Rate control: how many events are due now, so that the count sent over any second matches
//! the target's integral over it, with bounded catch-up after a stall.

use std::time::Duration;

/// Accumulates the target's integral and releases whole events.
#[derive(Debug, Clone)]
pub struct Pacer {
    credit: f64,
    max_catch_up: Duration,
}

impl Pacer {
    /// A pacer that, after a stall, sends at most `max_catch_up` worth of missed events.
    pub fn new(max_catch_up: Duration) -> Pacer {
        Pacer {
            credit: 0.0,
            max_catch_up,
        }
    }

    /// Events due after `dt` at `rate` events per second (trapezoid of the rates at both ends
    /// of the step). Missed events beyond the catch-up bound are dropped from the plan, never
    /// sent in a burst.
    pub fn due(&mut self, rate_before: f64, rate_now: f64, dt: Duration) -> u64 {
        self.credit += (rate_before + rate_now) / 2.0 * dt.as_secs_f64();
        let cap = rate_now.max(rate_before) * self.max_catch_up.as_secs_f64() + 1.0;
        self.credit = self.credit.min(cap);
        let whole = self.credit.floor().max(0.0);
        self.credit -= whole;
        whole as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_the_integral_exactly_over_time() {
        let mut pacer = Pacer::new(Duration::from_secs(1));
        let step = Duration::from_millis(10);
        let sent: u64 = (0..100).map(|_| pacer.due(1234.0, 1234.0, step)).sum();
        assert!(
            (1233..=1234).contains(&sent),
            "one second at 1234/s sent {sent}"
        );
    }

    #[test]
    fn fractional_rates_accumulate() {
        let mut pacer = Pacer::new(Duration::from_secs(1));
        let sent: u64 = (0..1000)
            .map(|_| pacer.due(2.5, 2.5, Duration::from_millis(10)))
            .sum();
        assert_eq!(sent, 25, "10 s at 2.5/s");
    }

    #[test]
    fn catch_up_after_a_stall_is_bounded() {
        let mut pacer = Pacer::new(Duration::from_millis(500));
        // A 5 s stall at 1000/s: only half a second's worth is sent at once.
        let burst = pacer.due(1000.0, 1000.0, Duration::from_secs(5));
        assert_eq!(burst, 501);
    }

    #[test]
    fn zero_rate_sends_nothing() {
        let mut pacer = Pacer::new(Duration::from_secs(1));
        assert_eq!(pacer.due(0.0, 0.0, Duration::from_secs(3)), 0);
    }
}

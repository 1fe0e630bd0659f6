//! Load shapes: the target event rate as a function of time since the start.

use std::path::Path;
use std::time::Duration;

/// A target rate over time, in events per second.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadShape {
    /// `base` all the time.
    Constant {
        /// Events per second.
        base: f64,
    },
    /// `base + amplitude * sin(2π (t / period) + phase)`.
    Sine {
        /// Mean rate.
        base: f64,
        /// Swing above and below the mean.
        amplitude: f64,
        /// Length of one cycle.
        period: Duration,
        /// Phase in radians.
        phase: f64,
    },
    /// `base` until `at`, then `base + amplitude` for good.
    Step {
        /// Rate before the step.
        base: f64,
        /// Added from `at` on.
        amplitude: f64,
        /// When the step happens.
        at: Duration,
    },
    /// `base` for the first half of each period, `base + amplitude` for the second half.
    Square {
        /// Low rate.
        base: f64,
        /// Added during the high half.
        amplitude: f64,
        /// Length of one low+high cycle.
        period: Duration,
    },
    /// From `base` to `base + amplitude` linearly over `period`, then holding.
    Ramp {
        /// Start rate.
        base: f64,
        /// Total rise.
        amplitude: f64,
        /// Duration of the rise.
        period: Duration,
    },
    /// Replays `(seconds, rate)` points, holding each rate until the next point; the last one
    /// holds to the end.
    Trace {
        /// Points sorted by time.
        points: Vec<(f64, f64)>,
    },
}

impl LoadShape {
    /// The target rate `elapsed` after the start, never negative.
    pub fn rate_at(&self, elapsed: Duration) -> f64 {
        let t = elapsed.as_secs_f64();
        let rate = match self {
            LoadShape::Constant { base } => *base,
            LoadShape::Sine {
                base,
                amplitude,
                period,
                phase,
            } => {
                base + amplitude * (std::f64::consts::TAU * t / period.as_secs_f64() + phase).sin()
            }
            LoadShape::Step {
                base,
                amplitude,
                at,
            } => {
                if t < at.as_secs_f64() {
                    *base
                } else {
                    base + amplitude
                }
            }
            LoadShape::Square {
                base,
                amplitude,
                period,
            } => {
                let cycle = period.as_secs_f64();
                if (t % cycle) < cycle / 2.0 {
                    *base
                } else {
                    base + amplitude
                }
            }
            LoadShape::Ramp {
                base,
                amplitude,
                period,
            } => base + amplitude * (t / period.as_secs_f64()).min(1.0),
            LoadShape::Trace { points } => points
                .iter()
                .take_while(|(at, _)| *at <= t)
                .last()
                .map_or(0.0, |&(_, r)| r),
        };
        rate.max(0.0)
    }

    /// Reads a trace CSV of `seconds,rate` lines (an optional header line, `#` comments and
    /// blank lines are skipped). Errors name the file and line.
    pub fn trace_from_csv(path: &Path) -> Result<LoadShape, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--trace {}: {e}", path.display()))?;
        LoadShape::trace_from_text(&text).map_err(|e| format!("--trace {}: {e}", path.display()))
    }

    fn trace_from_text(text: &str) -> Result<LoadShape, String> {
        let mut points: Vec<(f64, f64)> = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parsed = line.split_once(',').and_then(|(a, b)| {
                Some((a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?))
            });
            let (at, rate) = match parsed {
                Some(point) => point,
                None if points.is_empty() && number == 0 => continue, // a header such as "seconds,rate"
                None => {
                    return Err(format!(
                        "line {}: expected `seconds,rate`, got {line:?}",
                        number + 1
                    ))
                }
            };
            if !(at.is_finite() && rate.is_finite() && at >= 0.0 && rate >= 0.0) {
                return Err(format!(
                    "line {}: seconds and rate must be non-negative numbers",
                    number + 1
                ));
            }
            if points.last().is_some_and(|&(prev, _)| at <= prev) {
                return Err(format!("line {}: seconds must increase", number + 1));
            }
            points.push((at, rate));
        }
        if points.is_empty() {
            return Err("no `seconds,rate` points".into());
        }
        Ok(LoadShape::Trace { points })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn sine_swings_around_its_base() {
        let shape = LoadShape::Sine {
            base: 1000.0,
            amplitude: 500.0,
            period: secs(60.0),
            phase: 0.0,
        };
        assert!((shape.rate_at(secs(0.0)) - 1000.0).abs() < 1e-9);
        assert!((shape.rate_at(secs(15.0)) - 1500.0).abs() < 1e-9);
        assert!((shape.rate_at(secs(45.0)) - 500.0).abs() < 1e-9);
        let shifted = LoadShape::Sine {
            base: 1000.0,
            amplitude: 500.0,
            period: secs(60.0),
            phase: std::f64::consts::FRAC_PI_2,
        };
        assert!((shifted.rate_at(secs(0.0)) - 1500.0).abs() < 1e-9);
    }

    #[test]
    fn rates_are_never_negative() {
        let shape = LoadShape::Sine {
            base: 100.0,
            amplitude: 500.0,
            period: secs(60.0),
            phase: 0.0,
        };
        assert_eq!(shape.rate_at(secs(45.0)), 0.0);
    }

    #[test]
    fn square_ramp_and_constant() {
        let square = LoadShape::Square {
            base: 100.0,
            amplitude: 300.0,
            period: secs(20.0),
        };
        assert_eq!(
            (
                square.rate_at(secs(5.0)),
                square.rate_at(secs(15.0)),
                square.rate_at(secs(25.0))
            ),
            (100.0, 400.0, 100.0)
        );
        let ramp = LoadShape::Ramp {
            base: 100.0,
            amplitude: 900.0,
            period: secs(10.0),
        };
        assert_eq!(
            (
                ramp.rate_at(secs(0.0)),
                ramp.rate_at(secs(5.0)),
                ramp.rate_at(secs(30.0))
            ),
            (100.0, 550.0, 1000.0)
        );
        assert_eq!(LoadShape::Constant { base: 42.0 }.rate_at(secs(1e6)), 42.0);
        let step = LoadShape::Step {
            base: 10.0,
            amplitude: 5.0,
            at: secs(3.0),
        };
        assert_eq!(
            (
                step.rate_at(secs(2.9)),
                step.rate_at(secs(3.0)),
                step.rate_at(secs(1e4))
            ),
            (10.0, 15.0, 15.0)
        );
    }

    #[test]
    fn traces_hold_each_point() {
        let shape =
            LoadShape::trace_from_text("seconds,rate\n0,100\n# spike\n10, 500\n\n20,50\n").unwrap();
        assert_eq!(shape.rate_at(secs(0.0)), 100.0);
        assert_eq!(shape.rate_at(secs(9.9)), 100.0);
        assert_eq!(shape.rate_at(secs(10.0)), 500.0);
        assert_eq!(shape.rate_at(secs(100.0)), 50.0);
        let late = LoadShape::trace_from_text("5,100\n").unwrap();
        assert_eq!(
            late.rate_at(secs(1.0)),
            0.0,
            "nothing before the first point"
        );
    }

    #[test]
    fn bad_traces_name_the_line() {
        assert_eq!(
            LoadShape::trace_from_text("0,1\nx,2\n").unwrap_err(),
            "line 2: expected `seconds,rate`, got \"x,2\""
        );
        assert_eq!(
            LoadShape::trace_from_text("0,1\n0,2\n").unwrap_err(),
            "line 2: seconds must increase"
        );
        assert!(LoadShape::trace_from_text("0,-1\n")
            .unwrap_err()
            .contains("non-negative"));
        assert!(LoadShape::trace_from_text("# nothing\n").is_err());
    }
}

//! How long Flink's adaptive scheduler may wait before it uses a TaskManager change: the
//! timers of the JobManager's configuration (or their defaults), read once per job. Pure: the
//! REST calls are in [`super::FlinkClient::jobmanager_settings`].

use std::collections::BTreeMap;
use std::time::Duration;

/// One timer that delays a rescale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RescaleTimer {
    /// The configuration key (for 2.x, the key the value came from: a deprecated 1.x name
    /// still set is reported as such).
    pub key: String,
    /// Its value.
    pub value: Duration,
    /// Whether the value is Flink's default (the key is not set).
    pub default: bool,
}

/// The timers of one JobManager, and what they add up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RescaleTimers {
    /// The timers, in the order they apply.
    pub timers: Vec<RescaleTimer>,
}

impl RescaleTimers {
    /// The longest a TaskManager change may wait before the job rescales: every timer at once
    /// (a change right after a rescale waits out the cooldown, then the stabilization, then a
    /// checkpoint).
    pub fn worst_delay(&self) -> Duration {
        self.timers.iter().map(|t| t.value).sum()
    }

    /// "key = 60s (default), ..." of the timers that are not zero.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .timers
            .iter()
            .filter(|t| !t.value.is_zero())
            .map(|t| {
                let default = if t.default { " (default)" } else { "" };
                format!("{} = {:?}{default}", t.key, t.value)
            })
            .collect();
        parts.join(", ")
    }
}

const PREFIX: &str = "jobmanager.adaptive-scheduler.";

/// Whether a JobManager with `config` runs jobs with the adaptive scheduler: in reactive mode,
/// or when asked for (`jobmanager.scheduler: adaptive`). Flink 1.x's REST API does not say per
/// job; 2.x's job overview does.
pub fn uses_adaptive_scheduler(config: &BTreeMap<String, String>) -> bool {
    runs_reactive(config) || set_to(config, "jobmanager.scheduler", "adaptive")
}

/// Whether a JobManager with `config` runs in reactive mode (`scheduler-mode: reactive`), where
/// the job takes every slot and refuses a parallelism set through its resource requirements.
pub fn runs_reactive(config: &BTreeMap<String, String>) -> bool {
    set_to(config, "scheduler-mode", "reactive")
}

/// Whether `key` is set to `value` in `config` (Flink reads enum values in any case).
fn set_to(config: &BTreeMap<String, String>, key: &str, value: &str) -> bool {
    config
        .get(key)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(value))
}

/// The rescale timers of a JobManager running Flink `version` (e.g. `2.3.0`) with the
/// configuration `config` (key to value, as `/jobmanager/config` lists it), for a job that
/// checkpoints every `checkpoint_interval` (None: no checkpoints). Errors name the key whose
/// value is not a duration, or an unknown version.
pub fn rescale_timers(
    version: &str,
    config: &BTreeMap<String, String>,
    checkpoint_interval: Option<Duration>,
) -> Result<RescaleTimers, String> {
    let major_minor: Vec<u32> = version
        .split('.')
        .take(2)
        .map(|p| p.parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("flink-version {version:?} is not MAJOR.MINOR..."))?;
    let (major, minor) = match major_minor[..] {
        [major, minor] => (major, minor),
        _ => return Err(format!("flink-version {version:?} is not MAJOR.MINOR...")),
    };
    // The value of the first of `keys` that is set, else `default`.
    let timer = |keys: &[&str], default: Duration| -> Result<RescaleTimer, String> {
        for key in keys {
            let key = format!("{PREFIX}{key}");
            if let Some(text) = config.get(&key) {
                let value = parse_flink_duration(text)
                    .map_err(|e| format!("{key}: {text:?} is not a duration ({e})"))?;
                return Ok(RescaleTimer {
                    key,
                    value,
                    default: false,
                });
            }
        }
        Ok(RescaleTimer {
            key: format!("{PREFIX}{}", keys[0]),
            value: default,
            default: true,
        })
    };
    let secs = Duration::from_secs;
    let timers = if major >= 2 {
        // The checkpoint wait: by default the checkpoint interval times (allowed failed
        // checkpoints + 1), none without checkpoints.
        let failures = match config.get(&format!("{PREFIX}rescale-trigger.max-checkpoint-failures")) {
            Some(text) => text.trim().parse::<u32>().map_err(|_| {
                format!("{PREFIX}rescale-trigger.max-checkpoint-failures: {text:?} is not a whole number")
            })?,
            None => 2,
        };
        let checkpoint_wait = checkpoint_interval.map_or(Duration::ZERO, |i| i * (failures + 1));
        vec![
            timer(
                &["executing.cooldown-after-rescaling", "scaling-interval.min"],
                secs(30),
            )?,
            // No older name: 2.x reads 1.x's `resource-stabilization-timeout` as the
            // submission's timer (the job's first start), not this one.
            timer(&["executing.resource-stabilization-timeout"], secs(60))?,
            timer(&["rescale-trigger.max-delay"], checkpoint_wait)?,
        ]
    } else if major == 1 && minor >= 18 {
        let mut timers = vec![timer(&["resource-stabilization-timeout"], secs(10))?];
        if minor >= 19 {
            timers.insert(0, timer(&["scaling-interval.min"], secs(30))?);
        }
        timers
    } else if major == 1 {
        vec![timer(&["resource-stabilization-timeout"], secs(10))?]
    } else {
        return Err(format!("flink-version {version:?}: unknown line"));
    };
    Ok(RescaleTimers { timers })
}

/// A duration as Flink writes them: a number and an optional unit (default milliseconds),
/// e.g. `1s`, `1 s`, `60000`, `1 min`, `2 h`.
pub fn parse_flink_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| "no number".to_string())?;
    let millis_per = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        other => return Err(format!("unknown unit {other:?}")),
    };
    number
        .checked_mul(millis_per)
        .map(Duration::from_millis)
        .ok_or_else(|| "too large".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), v.to_string()))
            .collect()
    }

    #[test]
    fn flink_durations_parse_in_their_units() {
        let ms = Duration::from_millis;
        for (text, value) in [
            ("1s", ms(1_000)),
            ("1 s", ms(1_000)),
            ("60000", ms(60_000)),
            ("250 ms", ms(250)),
            ("1 min", ms(60_000)),
            ("2 h", ms(7_200_000)),
            ("0s", ms(0)),
        ] {
            assert_eq!(parse_flink_duration(text), Ok(value), "{text}");
        }
        for bad in ["", "s", "1 fortnight", "-1 s", "99999999999999999999 d"] {
            assert!(parse_flink_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flink_2_defaults_wait_over_a_minute_and_a_checkpoint() {
        let timers =
            rescale_timers("2.3.0", &BTreeMap::new(), Some(Duration::from_secs(5))).unwrap();
        // cooldown 30 s + stabilization 60 s + 3 checkpoint intervals.
        assert_eq!(timers.worst_delay(), Duration::from_secs(105));
        assert!(timers.timers.iter().all(|t| t.default));
        assert!(
            timers
                .describe()
                .contains("executing.resource-stabilization-timeout = 60s (default)"),
            "{}",
            timers.describe()
        );
        let without_checkpoints = rescale_timers("2.0.1", &BTreeMap::new(), None).unwrap();
        assert_eq!(without_checkpoints.worst_delay(), Duration::from_secs(90));
    }

    #[test]
    fn the_stacks_settings_make_it_seconds() {
        let tuned = config(&[
            ("executing.resource-stabilization-timeout", "1 s"),
            ("executing.cooldown-after-rescaling", "1 s"),
            ("rescale-trigger.max-delay", "0 ms"),
        ]);
        let timers = rescale_timers("2.3.0", &tuned, Some(Duration::from_secs(5))).unwrap();
        assert_eq!(timers.worst_delay(), Duration::from_secs(2));
        assert!(
            !timers.describe().contains("max-delay"),
            "zero timers are left out"
        );
        let lts = config(&[
            ("resource-stabilization-timeout", "1s"),
            ("scaling-interval.min", "1s"),
        ]);
        let timers = rescale_timers("1.20.5", &lts, Some(Duration::from_secs(5))).unwrap();
        assert_eq!(timers.worst_delay(), Duration::from_secs(2));
    }

    #[test]
    fn a_deprecated_name_counts_on_2x_only_where_flink_reads_it() {
        // Flink 2.3.0's JobManagerOptions: `scaling-interval.min` is the cooldown's deprecated
        // key; `resource-stabilization-timeout` is that of the submission's stabilization, so
        // the 1.20 settings leave a 2.x job's rescale at the 60 s default.
        let lts = config(&[
            ("resource-stabilization-timeout", "1s"),
            ("scaling-interval.min", "3s"),
        ]);
        let timers = rescale_timers("2.3.0", &lts, None).unwrap();
        let (cooldown, stabilization) = (&timers.timers[0], &timers.timers[1]);
        assert_eq!(cooldown.key, format!("{PREFIX}scaling-interval.min"));
        assert_eq!(cooldown.value, Duration::from_secs(3));
        assert_eq!(
            stabilization.key,
            format!("{PREFIX}executing.resource-stabilization-timeout")
        );
        assert_eq!(
            (stabilization.value, stabilization.default),
            (Duration::from_secs(60), true)
        );
    }

    #[test]
    fn each_1x_line_has_its_timers() {
        let none = BTreeMap::new();
        assert_eq!(
            rescale_timers("1.20.5", &none, None).unwrap().worst_delay(),
            Duration::from_secs(40)
        );
        assert_eq!(
            rescale_timers("1.18.1", &none, None).unwrap().worst_delay(),
            Duration::from_secs(10)
        );
        assert_eq!(
            rescale_timers("1.16.3", &none, None).unwrap().worst_delay(),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn reactive_mode_and_the_adaptive_scheduler_are_told_by_the_configuration() {
        let of = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(uses_adaptive_scheduler(&of(&[(
            "scheduler-mode",
            "reactive"
        )])));
        assert!(uses_adaptive_scheduler(&of(&[(
            "jobmanager.scheduler",
            "Adaptive"
        )])));
        assert!(!uses_adaptive_scheduler(&of(&[(
            "jobmanager.scheduler",
            "default"
        )])));
        assert!(!uses_adaptive_scheduler(&BTreeMap::new()));
    }

    #[test]
    fn bad_values_and_versions_are_named() {
        let bad = config(&[("executing.cooldown-after-rescaling", "soon")]);
        let error = rescale_timers("2.3.0", &bad, None).unwrap_err();
        assert!(
            error.contains("executing.cooldown-after-rescaling: \"soon\""),
            "{error}"
        );
        assert!(rescale_timers("x.y", &BTreeMap::new(), None)
            .unwrap_err()
            .contains("x.y"));
        assert!(rescale_timers("0.9", &BTreeMap::new(), None).is_err());
    }
}

//! Creating the scope and stream, and refusing to write into a stream whose scaling policy
//! differs from the one asked for (rather than silently changing it).

use pravega_client_retry::retry_result::RetryError;
use pravega_client_shared::{
    Retention, ScaleType, Scaling, Scope, ScopedStream, StreamConfiguration,
};
use pravega_controller_client::{ControllerClient, ControllerError};

use crate::security::without_metadata;

/// Why the stream could not be made ready.
#[derive(Debug)]
pub struct EnsureError {
    /// The controller could not be reached (worth another try while it may still be starting).
    pub unreachable: bool,
    /// What failed, without the request's credentials.
    pub message: String,
}

impl EnsureError {
    fn controller(what: String, error: RetryError<ControllerError>) -> Self {
        EnsureError {
            unreachable: matches!(error.error, ControllerError::ConnectionError { .. }),
            message: format!("{what}: {}", without_metadata(&error)),
        }
    }
}

impl std::fmt::Display for EnsureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Describes a scaling policy for messages.
pub fn describe(s: &Scaling) -> String {
    match s.scale_type {
        ScaleType::FixedNumSegments => format!("fixed, {} segments", s.min_num_segments),
        ScaleType::ByRateInEventsPerSec => format!(
            "by event rate, {} events/s per segment, scale factor {}, min {} segments",
            s.target_rate, s.scale_factor, s.min_num_segments
        ),
        ScaleType::ByRateInKbytesPerSec => format!(
            "by data rate, {} KB/s per segment, scale factor {}, min {} segments",
            s.target_rate, s.scale_factor, s.min_num_segments
        ),
    }
}

/// Whether an existing stream's policy is the one asked for (fields that a policy type ignores
/// are not compared).
pub fn same_policy(existing: &Scaling, wanted: &Scaling) -> bool {
    existing.scale_type == wanted.scale_type
        && existing.min_num_segments == wanted.min_num_segments
        && (existing.scale_type == ScaleType::FixedNumSegments
            || (existing.target_rate == wanted.target_rate
                && existing.scale_factor == wanted.scale_factor))
}

/// Creates the scope and the stream if missing. If the stream exists with another scaling
/// policy, says so and stops.
pub async fn ensure_stream(
    controller: &dyn ControllerClient,
    stream: &ScopedStream,
    scaling: Scaling,
) -> Result<(), EnsureError> {
    controller
        .create_scope(&Scope::from(stream.scope.name.clone()))
        .await
        .map_err(|e| EnsureError::controller(format!("create scope {}", stream.scope.name), e))?;
    let config = StreamConfiguration {
        scoped_stream: stream.clone(),
        scaling: scaling.clone(),
        retention: Retention::default(),
        tags: None,
    };
    let created = controller
        .create_stream(&config)
        .await
        .map_err(|e| EnsureError::controller(format!("create stream {stream}"), e))?;
    if created {
        tracing::info!(%stream, policy = %describe(&scaling), "created the stream");
        return Ok(());
    }
    let existing = controller
        .get_stream_configuration(stream)
        .await
        .map_err(|e| {
            EnsureError::controller(
                format!("read the configuration of existing stream {stream}"),
                e,
            )
        })?;
    if !same_policy(&existing.scaling, &scaling) {
        let message = format!(
            "stream {stream} exists with scaling {}, but {} was asked for; \
             pass matching --scaling/--target-rate-per-segment/--scale-factor/--min-segments, or use another stream",
            describe(&existing.scaling),
            describe(&scaling)
        );
        return Err(EnsureError {
            unreachable: false,
            message,
        });
    }
    tracing::info!(%stream, policy = %describe(&scaling), "using the existing stream");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scaling(scale_type: ScaleType, target_rate: i32, scale_factor: i32, min: i32) -> Scaling {
        Scaling {
            scale_type,
            target_rate,
            scale_factor,
            min_num_segments: min,
        }
    }

    #[test]
    fn policies_compare_on_what_they_use() {
        let events = scaling(ScaleType::ByRateInEventsPerSec, 1000, 2, 1);
        assert!(same_policy(&events, &events.clone()));
        assert!(!same_policy(
            &events,
            &scaling(ScaleType::ByRateInEventsPerSec, 800, 2, 1)
        ));
        assert!(!same_policy(
            &events,
            &scaling(ScaleType::ByRateInKbytesPerSec, 1000, 2, 1)
        ));
        assert!(same_policy(
            &scaling(ScaleType::FixedNumSegments, 0, 0, 2),
            &scaling(ScaleType::FixedNumSegments, 1000, 2, 2)
        ));
        assert!(!same_policy(
            &scaling(ScaleType::FixedNumSegments, 0, 0, 2),
            &scaling(ScaleType::FixedNumSegments, 0, 0, 3)
        ));
    }

    #[test]
    fn policies_are_described_for_people() {
        assert_eq!(
            describe(&scaling(ScaleType::ByRateInEventsPerSec, 800, 1, 1)),
            "by event rate, 800 events/s per segment, scale factor 1, min 1 segments"
        );
        assert_eq!(
            describe(&scaling(ScaleType::FixedNumSegments, 0, 0, 4)),
            "fixed, 4 segments"
        );
    }
}

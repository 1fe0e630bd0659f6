//! `--drive-segments`: set the stream's segment count from the load with the controller's
//! scale call, for demos that cannot wait for Pravega's minutes-long auto-scaling.

use pravega_client_shared::ScopedStream;
use pravega_controller_client::ControllerClient;

use crate::security::without_metadata;

/// Segments the load calls for: ceil(rate / per-segment target), within [min, max].
pub fn segments_for(
    rate: f64,
    target_rate_per_segment: f64,
    min_segments: u32,
    max_segments: u32,
) -> u32 {
    let needed = (rate / target_rate_per_segment).ceil();
    let needed = if needed.is_finite() && needed > 0.0 {
        needed.min(f64::from(u32::MAX)) as u32
    } else {
        0
    };
    needed.clamp(min_segments.max(1), max_segments.max(min_segments.max(1)))
}

/// Key ranges splitting [0, 1) into `n` equal parts.
pub fn equal_ranges(n: u32) -> Vec<(f64, f64)> {
    let n = n.max(1);
    (0..n)
        .map(|i| (f64::from(i) / f64::from(n), f64::from(i + 1) / f64::from(n)))
        .collect()
}

/// Active segments of the stream, over gRPC.
pub async fn current_segments(
    controller: &dyn ControllerClient,
    stream: &ScopedStream,
) -> Result<u32, String> {
    let segments = controller
        .get_current_segments(stream)
        .await
        .map_err(|e| format!("getCurrentSegments: {}", without_metadata(&e)))?;
    Ok(segments.get_segments().len() as u32)
}

/// Seals every active segment and replaces them with `n` equal key ranges; returns once the
/// controller completed the scale.
pub async fn scale_to(
    controller: &dyn ControllerClient,
    stream: &ScopedStream,
    n: u32,
) -> Result<(), String> {
    let current = controller
        .get_current_segments(stream)
        .await
        .map_err(|e| format!("getCurrentSegments: {}", without_metadata(&e)))?;
    let sealed: Vec<_> = current
        .key_segment_map
        .values()
        .map(|s| s.get_segment())
        .collect();
    controller
        .scale_stream(stream, &sealed, &equal_ranges(n))
        .await
        .map_err(|e| format!("scaleStream to {n} segments: {}", without_metadata(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_follow_the_rate_within_bounds() {
        assert_eq!(segments_for(2500.0, 1000.0, 1, 16), 3);
        assert_eq!(segments_for(3000.0, 1000.0, 1, 16), 3);
        assert_eq!(
            segments_for(0.0, 1000.0, 1, 16),
            1,
            "never below min (and 1)"
        );
        assert_eq!(segments_for(0.0, 1000.0, 0, 16), 1);
        assert_eq!(segments_for(100.0, 1000.0, 2, 16), 2);
        assert_eq!(segments_for(1e9, 1000.0, 1, 16), 16);
        assert_eq!(segments_for(f64::NAN, 1000.0, 1, 16), 1);
    }

    #[test]
    fn ranges_cover_the_key_space() {
        assert_eq!(equal_ranges(1), vec![(0.0, 1.0)]);
        assert_eq!(
            equal_ranges(4),
            vec![(0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0)]
        );
        assert_eq!(equal_ranges(0), vec![(0.0, 1.0)]);
    }
}

//! `segment-autoscaler`: keeps Flink TaskManagers aligned with Pravega stream segments.
//!
//! The control loop is being built (see README); this binary currently only reports its version.

fn main() {
    println!("segment-autoscaler {}", env!("CARGO_PKG_VERSION"));
}

//! What the benchmarks share: the length-prefixed decoding runs that both
//! `prefix` and `compare` measure.

pub mod prefix_runs;

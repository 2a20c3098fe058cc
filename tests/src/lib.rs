//! The independent reference every test compares against: Nadaraya–Watson smoothing written
//! plainly in `f64`, with no SIMD, no tiling and no online rescaling, and the tolerance helpers
//! the tests share.
//!
//! It depends on nothing, so the firmware's build script can use it to produce golden vectors.

pub mod reference;

/// The workspace README's quick start, compiled and run as a doctest.
#[doc = include_str!("../../README.md")]
mod readme {}

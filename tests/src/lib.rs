//! The independent reference every test compares against: Nadaraya–Watson smoothing written
//! plainly in `f64`, with no SIMD, no tiling and no online rescaling, and the tolerance helpers
//! the tests share; ([`rf`]) the random-feature estimators written the same way; and
//! ([`verdict`]) the rule the adversarial suites hold every result to.
//!
//! It depends on nothing, so the firmware's build script can use it to produce golden vectors.

pub mod reference;
pub mod rf;
pub mod verdict;

/// A deterministic generator of `f32` uniform in `[-1, 1)` (xorshift64), for test data that is
/// the same on every run and every machine.
pub fn uniform(seed: u64) -> impl FnMut() -> f32 {
    let mut s = seed | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

/// The workspace README's quick start, compiled and run as a doctest.
#[doc = include_str!("../../README.md")]
mod readme {}

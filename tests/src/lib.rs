//! The independent reference every test compares against: Nadaraya–Watson smoothing written
//! plainly in `f64`, with no SIMD, no tiling and no online rescaling, and the tolerance helpers
//! the tests share; ([`rf`]) the random-feature estimators written the same way; and
//! ([`verdict`]) the rule the adversarial suites hold every result to.
//!
//! It depends on nothing, so the firmware's build script can use it to produce golden vectors.

pub mod reference;
pub mod rf;
pub mod rng;
pub mod verdict;

pub use rng::Rng;

/// A deterministic generator of `f32` uniform in `[-1, 1)` ([`Rng`]), for test data that is the
/// same on every run and every machine.
pub fn uniform(seed: u64) -> impl FnMut() -> f32 {
    let mut r = Rng::new(seed);
    move || r.next_f32()
}

impl Rng {
    /// `n` values uniform in `[-1, 1)`.
    #[must_use]
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next_f32()).collect()
    }

    /// `n` values in `[lo, hi)` ([`Rng::range`]).
    #[must_use]
    pub fn vec_range(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.range(lo, hi)).collect()
    }
}

/// The workspace README's quick start, compiled and run as a doctest.
#[doc = include_str!("../../README.md")]
mod readme {}

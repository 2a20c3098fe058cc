//! The vectorised exponential behind every weight, exposed for measurement and reuse.
//!
//! Softmax only ever needs `exp(x)` for `x ≤ 0` (scores minus their maximum). Both functions
//! here clamp `x` to `≤ 0` and return 0 below `ln(f32::MIN_POSITIVE) ≈ -87.34`, where the true
//! value is subnormal (less than `1.2e-38`, invisible next to the maximum's weight of 1).
//!
//! # Accuracy
//! Measured over every `f32` in `[-87.33, 0]` against `f64::exp`, rounded to `f32`
//! (`cargo run --release -p nadaraya --example exp_ulp`): see the crate README for the figures.

use crate::simd;

/// `exp(x)` for `x ≤ 0` by the same algorithm as the SIMD lanes, in scalar arithmetic.
///
/// Positive `x` (including `+inf`) is clamped to 0 and gives 1; `x` below
/// `ln(f32::MIN_POSITIVE) ≈ -87.34` (including `-inf`) gives 0; NaN gives NaN.
///
/// # Examples
/// ```
/// assert_eq!(nadaraya::math::exp_neg(0.0), 1.0);
/// assert!((nadaraya::math::exp_neg(-1.0) - (-1.0f32).exp()).abs() < 1e-7);
/// ```
#[inline]
#[must_use]
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn exp_neg(x: f32) -> f32 {
    simd::exp_scalar(x)
}

/// `xs[i] = exp(xs[i])` for `xs[i] ≤ 0`, eight lanes at a time: element for element what
/// [`exp_neg`] gives, to within the lanes' fused multiply-adds (at most 2 ε apart).
///
/// Positive values (`+0`, subnormals, `+inf`) are clamped to 0 and give 1, as do `-0` and
/// negative subnormals; values below `ln(f32::MIN_POSITIVE) ≈ -87.34` (and `-inf`) give 0; NaN
/// gives NaN.
///
/// # Examples
/// ```
/// let mut xs = [0.0, -1.0, -100.0, f32::NAN];
/// nadaraya::math::exp_neg_in_place(&mut xs);
/// assert_eq!(xs[0], 1.0);
/// assert_eq!(xs[2], 0.0); // below ln(f32::MIN_POSITIVE)
/// assert!(xs[3].is_nan()); // as exp_neg(NaN)
/// ```
#[inline]
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn exp_neg_in_place(xs: &mut [f32]) {
    simd::exp_in_place(xs);
}

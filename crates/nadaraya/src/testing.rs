//! Test-only helpers shared by the unit tests: tolerances, ulp distance, a tiny generator.

use std::vec::Vec;

/// Asserts `|got - want| <= tol` with a readable message.
#[track_caller]
pub(crate) fn assert_close(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got:e}, want {want:e}, |diff| {:e} > tol {tol:e}",
        (got - want).abs()
    );
}

/// The error of `got` in units in the last place of the `f32` nearest to `want`.
pub(crate) fn ulp_error(got: f32, want: f64) -> f64 {
    let w = want as f32;
    if w == 0.0 || !w.is_normal() {
        // Flushed subnormal results count as exact: the module documents the flush.
        return if got == 0.0 || (f64::from(got) - want).abs() < f64::from(f32::MIN_POSITIVE) {
            0.0
        } else {
            f64::INFINITY
        };
    }
    let ulp = f64::from(f32::from_bits(w.to_bits() + 1) - w);
    (f64::from(got) - want).abs() / ulp
}

/// A small deterministic generator of floats in `[0, 1)`.
pub(crate) fn lcg(seed: u64) -> impl FnMut() -> f32 {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 40) as f32) / ((1u64 << 24) as f32)
    }
}

/// Values at the edges of `f32`.
pub(crate) fn edge_values() -> Vec<f32> {
    std::vec![
        0.0,
        -0.0,
        f32::MIN_POSITIVE,
        f32::MIN_POSITIVE / 4.0,
        -f32::MIN_POSITIVE / 4.0,
        f32::EPSILON,
        1.0,
        -1.0,
        f32::MAX,
        f32::MIN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
    ]
}

//! Adapters to the plain `f64` random-feature estimators of `nadaraya-tests` (the workspace's
//! path-only test crate) the implementation is checked against.

#![allow(dead_code)]

use nadaraya_rf::{FavorPlus, Variant};
use nadaraya_tests::rf;

pub use nadaraya_tests::reference::widen;

/// The projection rows of `f`, widened.
fn rows(f: &FavorPlus) -> Vec<f64> {
    widen(f.projection().rows())
}

/// The random-feature estimate `Σ_i κ(q, k_i) v_i / Σ_i κ(q, k_i)` of `f`, written plainly in
/// `f64` from the same projection rows ([`nadaraya_tests::rf`]).
pub fn reference_rf(
    f: &FavorPlus,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    dv: usize,
    causal: bool,
) -> Vec<f64> {
    let (w, tau, hyp) = (
        rows(f),
        f64::from(f.temperature()),
        f.variant() == Variant::Hyperbolic,
    );
    let kernel = |a: &[f64], b: &[f64]| rf::favor_kernel(&w, tau, hyp, a, b);
    rf::smooth(
        kernel,
        &widen(q),
        &widen(k),
        &widen(v),
        f.dim(),
        dv,
        causal,
        f64::MIN,
    )
}

/// The implied weights of one query, plainly in `f64`.
pub fn reference_weights(f: &FavorPlus, q: &[f32], k: &[f32]) -> Vec<f64> {
    let (w, tau, hyp) = (
        rows(f),
        f64::from(f.temperature()),
        f.variant() == Variant::Hyperbolic,
    );
    let kernel = |a: &[f64], b: &[f64]| rf::favor_kernel(&w, tau, hyp, a, b);
    rf::weights(kernel, &widen(q), &widen(k))
}

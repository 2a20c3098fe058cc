//! Shared helpers: seeded inputs, the error measure, and adapters to the plain `f64`
//! random-feature estimators of `nadaraya-tests` the implementation is checked against.

#![allow(dead_code)]

use nadaraya_rf::{FavorPlus, Variant};
use nadaraya_tests::rf;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rand_distr::{Distribution, Normal};

/// `n` draws of `N(mean, sigma²)` from a seeded generator.
pub fn normal(n: usize, mean: f32, sigma: f32, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let dist = Normal::new(mean, sigma).unwrap();
    (0..n).map(|_| dist.sample(&mut rng)).collect()
}

/// `‖a − b‖ / ‖b‖` in `f64`.
pub fn rel_err(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - y).powi(2))
        .sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (num / den).sqrt()
}

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

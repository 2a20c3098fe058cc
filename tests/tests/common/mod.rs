//! Shared helpers: seeded inputs, the error measure, and views of flat test data. No dependency
//! on `nadaraya-tests` (the plain `f64` references are in `tests/reference/`), so a test that
//! uses only these compiles from the packaged crate.

#![allow(dead_code)]

use nadaraya_rf::{Rows, RowsMut};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rand_distr::{Distribution, Normal};

/// `x` as rows of `width` (the tests' inputs always split evenly).
pub fn view(x: &[f32], width: usize) -> Rows<'_> {
    Rows::new(x, width).unwrap()
}

/// `x` as rows of `width`.
pub fn view_mut(x: &mut [f32], width: usize) -> RowsMut<'_> {
    RowsMut::new(x, width).unwrap()
}

/// `x` as one row (the output of one query's weights).
pub fn row_mut(x: &mut [f32]) -> RowsMut<'_> {
    let w = x.len();
    RowsMut::new(x, w).unwrap()
}

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

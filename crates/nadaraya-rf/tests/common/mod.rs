//! Shared helpers: seeded inputs, the error measure, and the plain `f64` random-feature
//! estimator the implementation is checked against.

#![allow(dead_code)]

use nadaraya_rf::{FavorPlus, Variant};
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

/// Widens to `f64`.
pub fn widen(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| f64::from(v)).collect()
}

/// The log features of the definition, in `f64`, unstabilised: `ω_i·x/√τ − |x|²/2τ` for each
/// projection row (and its negation for the hyperbolic variant).
fn log_features(f: &FavorPlus, x: &[f32]) -> Vec<f64> {
    let d = f.dim();
    let tau = f64::from(f.temperature());
    let half = x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / (2.0 * tau);
    let mut out: Vec<f64> = f
        .projection()
        .rows()
        .chunks_exact(d)
        .map(|w| {
            w.iter()
                .zip(x)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum::<f64>()
                / tau.sqrt()
        })
        .collect();
    if f.variant() == Variant::Hyperbolic {
        let neg: Vec<f64> = out.iter().map(|v| -v).collect();
        out.extend(neg);
    }
    out.iter().map(|v| v - half).collect()
}

/// The random-feature estimate `Σ_i φ(q)·φ(k_i) v_i / Σ_i φ(q)·φ(k_i)` written plainly in `f64`
/// with the same projection: every kernel estimate `Σ_r exp(log φ(q)_r + log φ(k)_r)` directly.
pub fn reference_rf(
    f: &FavorPlus,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    dv: usize,
    causal: bool,
) -> Vec<f64> {
    let d = f.dim();
    let lk: Vec<Vec<f64>> = k.chunks_exact(d).map(|x| log_features(f, x)).collect();
    let mut out = Vec::new();
    for (t, qr) in q.chunks_exact(d).enumerate() {
        let lq = log_features(f, qr);
        let seen = if causal { t + 1 } else { lk.len() };
        let mut num = vec![0.0f64; dv];
        let mut den = 0.0f64;
        for (lki, vi) in lk[..seen].iter().zip(v.chunks_exact(dv)) {
            let kern: f64 = lq.iter().zip(lki).map(|(a, b)| (a + b).exp()).sum();
            den += kern;
            for (n, &x) in num.iter_mut().zip(vi) {
                *n += kern * f64::from(x);
            }
        }
        out.extend(num.iter().map(|n| n / den));
    }
    out
}

/// The implied weights of one query, plainly in `f64`.
pub fn reference_weights(f: &FavorPlus, q: &[f32], k: &[f32]) -> Vec<f64> {
    let lq = log_features(f, q);
    let kern: Vec<f64> = k
        .chunks_exact(f.dim())
        .map(|x| {
            let lk = log_features(f, x);
            lq.iter().zip(&lk).map(|(a, b)| (a + b).exp()).sum()
        })
        .collect();
    let total: f64 = kern.iter().sum();
    kern.iter().map(|x| x / total).collect()
}

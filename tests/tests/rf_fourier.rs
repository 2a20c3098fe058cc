//! Random Fourier features: Gaussian smoothing converges to the core's exact smoothing.

mod common;
mod rf_reference;
use rf_reference as reference;

use common::{rel_err, view, view_mut};
use nadaraya::Gaussian;
use nadaraya_rf::{
    FOURIER_MASS_FLOOR, FeatureMap, FourierFeatures, Mask, MassGuard, Projection, RowNorm, Sampling,
};
use nadaraya_tests::rf;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use reference::widen;

fn uniform(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

#[test]
fn gaussian_rff_smoothing_converges_to_exact() {
    let (n, nq, d, h) = (600, 50, 2, 0.4f32);
    let x = uniform(n * d, 1);
    let y: Vec<f32> = x
        .chunks_exact(d)
        .map(|p| (3.0 * p[0]).sin() + p[1])
        .collect();
    let q = uniform(nq * d, 2);
    let mut ex = vec![0.0; nq];
    nadaraya::attention(
        &Gaussian::new(h).unwrap(),
        view(&q, d),
        view(&x, d),
        view(&y, 1),
        Mask::None,
        view_mut(&mut ex, 1),
    )
    .unwrap();
    let ex = widen(&ex);
    let mut out = vec![0.0; nq];
    let errs: Vec<f64> = [16usize, 64, 256, 1024, 4096]
        .iter()
        .map(|&m| {
            (0..4)
                .map(|s| {
                    let p = Projection::new(d, m, Sampling::Iid, 50 + s).unwrap();
                    FourierFeatures::new(p, h)
                        .unwrap()
                        .smooth(view(&q, d), view(&x, d), view(&y, 1), view_mut(&mut out, 1))
                        .unwrap();
                    rel_err(&out, &ex)
                })
                .sum::<f64>()
                / 4.0
        })
        .collect();
    eprintln!("errors {errs:?}");
    for w in errs.windows(2) {
        assert!(w[1] < 0.8 * w[0], "{errs:?}");
    }
    assert!(errs[4] < 0.05, "{errs:?}");
}

#[test]
fn features_estimate_the_gaussian_kernel() {
    let f = FourierFeatures::for_dim(3, 4096, 0.7, 3).unwrap();
    let a = [0.1, -0.2, 0.3];
    let b = [0.5, 0.1, -0.2];
    let (mut pa, mut pb) = (vec![0.0; 8192], vec![0.0; 8192]);
    f.map(&a, &mut pa).unwrap();
    f.map(&b, &mut pb).unwrap();
    let est: f64 = pa.iter().zip(&pb).map(|(x, y)| f64::from(x * y)).sum();
    let d2: f64 = a
        .iter()
        .zip(&b)
        .map(|(x, y)| f64::from(x - y).powi(2))
        .sum();
    let k = (-d2 / (2.0 * 0.49)).exp();
    assert!((est - k).abs() < 0.03, "{est} vs {k}");
    // Self-similarity is exactly 1: cos² + sin².
    let s: f32 = pa.iter().map(|x| x * x).sum();
    assert!((s - 1.0).abs() < 1e-4);
}

#[test]
fn far_queries_are_rejected_or_finite() {
    let x = uniform(100, 4);
    let y = vec![1.0f32; 100];
    let f = FourierFeatures::for_dim(1, 8, 0.01, 5).unwrap();
    for q in [1e3f32, -7.5, 0.0, 3.3e4] {
        let mut out = [0.0];
        match f.smooth(
            view(&[q], 1),
            view(&x, 1),
            view(&y, 1),
            view_mut(&mut out, 1),
        ) {
            Ok(()) => assert!(out[0].is_finite(), "{q}: {out:?}"),
            Err(e) => assert_eq!(e, nadaraya_rf::Error::Empty, "{q}"),
        }
    }
    // The old behaviour on request: divided by the floor, finite.
    let f = f.with_guard(MassGuard::Floor);
    let mut out = [0.0; 4];
    f.smooth(
        view(&[1e3f32, -7.5, 0.0, 3.3e4], 1),
        view(&x, 1),
        view(&y, 1),
        view_mut(&mut out, 1),
    )
    .unwrap();
    assert!(out.iter().all(|v| v.is_finite()), "{out:?}");
}

/// Issue 11, class 6: one sample with `y = 1`, so the estimate is `κ̂·1/κ̂` wherever `κ̂` is
/// usable: the trigonometric estimator returns 1 or rejects the query, never a wild value (it
/// returned −1 048 576 = −2²⁰ where `κ̂ = −1`, divided by the floor 2⁻²⁰).
#[test]
fn one_sample_gives_its_response_or_an_error() {
    let q: Vec<f32> = (-40..=40).map(|i| i as f32 * 0.25).collect();
    for m in [1usize, 2, 3, 8] {
        for seed in 0..8 {
            let f = FourierFeatures::for_dim(1, m, 0.5, seed).unwrap();
            for &qi in &q {
                let mut out = [0.0];
                match f.smooth(
                    view(&[qi], 1),
                    view(&[0.3], 1),
                    view(&[1.0], 1),
                    view_mut(&mut out, 1),
                ) {
                    Ok(()) => assert!((out[0] - 1.0).abs() < 1e-4, "m={m} q={qi}: {out:?}"),
                    Err(e) => assert_eq!(e, nadaraya_rf::Error::Empty),
                }
            }
        }
    }
}

#[test]
fn matches_plain_f64_estimator_with_the_same_features() {
    // 130 samples: two full tiles of 64 and a tail of 2; queries inside the data so the
    // estimated mass is far from the guard.
    let (n, nq, d, dy, h) = (130, 70, 3, 2, 0.6f32);
    let x = uniform(n * d, 21);
    let y = uniform(n * dy, 22);
    let q: Vec<f32> = uniform(nq * d, 23).iter().map(|v| 0.5 * v).collect();
    for sampling in [Sampling::Iid, Sampling::Orthogonal(RowNorm::Chi)] {
        let p = Projection::new(d, 200, sampling, 24).unwrap();
        let rows = widen(p.rows());
        let f = FourierFeatures::new(p, h).unwrap();
        let mut out = vec![0.0; nq * dy];
        f.smooth(
            view(&q, d),
            view(&x, d),
            view(&y, dy),
            view_mut(&mut out, dy),
        )
        .unwrap();
        let kernel = |a: &[f64], b: &[f64]| rf::fourier_kernel(&rows, f64::from(h), a, b);
        let floor = n as f64 * f64::from(FOURIER_MASS_FLOOR);
        let want = rf::smooth(
            kernel,
            &widen(&q),
            &widen(&x),
            &widen(&y),
            d,
            dy,
            false,
            floor,
        );
        let e = rel_err(&out, &want);
        assert!(e < 2e-5, "{sampling:?}: {e}");
    }
}

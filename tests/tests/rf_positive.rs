//! Positive random features for the Gaussian kernel ([`smooth`]) and optimal positive random
//! features ([`Variant::Optimal`]): convexity, agreement with a plain `f64` estimator on the same
//! features, and unbiasedness against the exact kernels.

mod common;
mod rf_reference;
use rf_reference as reference;

use common::{rel_err, row_mut, view, view_mut};
use nadaraya_rf::{
    CausalState, FavorPlus, GaussianFeatures, Mask, Oprf, Projection, RowNorm, Sampling, Variant,
};
use nadaraya_tests::rf;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use reference::widen;

fn uniform(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// The plain `f64` estimate of `exp(q·k/τ)` of one pair with the projection `rows` (`m×d`) and
/// the positive map `variant`, straight from the definitions (no stabilisers, no tiling):
/// `(1/r) Σ_i D² exp(2A|ω_i|² + B ω_i·(q + k)/√τ − (|q|² + |k|²)/2τ)`, with `A = 0, B = D = 1`
/// for FAVOR+ ([`rf::favor_kernel`]) and the ± pair for the hyperbolic map.
fn softmax_kernel(rows: &[f64], tau: f64, variant: Variant, q: &[f64], k: &[f64]) -> f64 {
    let a = match variant {
        Variant::Optimal(o) => f64::from(o.a()),
        Variant::Positive => return rf::favor_kernel(rows, tau, false, q, k),
        Variant::Hyperbolic => return rf::favor_kernel(rows, tau, true, q, k),
    };
    let d = q.len();
    let (b, d2) = ((1.0 - 4.0 * a).sqrt(), (1.0 - 4.0 * a).powf(d as f64 / 2.0));
    let half = q.iter().chain(k).map(|v| v * v).sum::<f64>() / (2.0 * tau);
    let terms: Vec<f64> = rows
        .chunks_exact(d)
        .map(|w| {
            let n2: f64 = w.iter().map(|v| v * v).sum();
            let dot: f64 = w
                .iter()
                .zip(q.iter().zip(k))
                .map(|(w, (q, k))| w * (q + k))
                .sum();
            d2 * (2.0 * a * n2 + b * dot / tau.sqrt() - half).exp()
        })
        .collect();
    terms.iter().sum::<f64>() / terms.len() as f64
}

/// The plain `f64` Gaussian-kernel estimate `exp(−(|q'|² + |x'|²)/2) · κ̂_softmax(q, x)` at
/// `τ = h²`, divided by the query's own factor `exp(−|q'|²)` (a constant per query that cancels
/// in the smoother, and would underflow `f64` for far queries):
/// `(1/r) Σ_i D² exp(2A|ω_i|² + B ω_i·(q' + x') − |x'|²)` (both signs of `ω_i` for the
/// hyperbolic map).
fn gaussian_kernel(f: &GaussianFeatures, rows: &[f64], q: &[f64], x: &[f64]) -> f64 {
    let h = f64::from(f.favor().temperature()).sqrt();
    let d = q.len();
    let (a, signs): (f64, &[f64]) = match f.variant() {
        Variant::Optimal(o) => (f64::from(o.a()), &[1.0]),
        Variant::Positive => (0.0, &[1.0]),
        Variant::Hyperbolic => (0.0, &[1.0, -1.0]),
    };
    let (b, d2) = ((1.0 - 4.0 * a).sqrt(), (1.0 - 4.0 * a).powf(d as f64 / 2.0));
    let x2 = x.iter().map(|v| v * v).sum::<f64>() / (h * h);
    let mut terms = Vec::new();
    for w in rows.chunks_exact(d) {
        let n2: f64 = w.iter().map(|v| v * v).sum();
        let dot: f64 = w
            .iter()
            .zip(q.iter().zip(x))
            .map(|(w, (q, x))| w * (q + x))
            .sum();
        for s in signs {
            terms.push(d2 * (2.0 * a * n2 + s * b * dot / h - x2).exp());
        }
    }
    terms.iter().sum::<f64>() / terms.len() as f64
}

/// `rows` moved by the per-coordinate midrange of the samples `x` (in `f32`, as [`smooth`] does).
fn centred(rows: &[f32], x: &[f32], d: usize) -> Vec<f32> {
    let c: Vec<f32> = (0..d)
        .map(|j| {
            let col = x.iter().skip(j).step_by(d);
            let lo = col.clone().fold(f32::INFINITY, |a, &b| a.min(b));
            let hi = col.fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            ((f64::from(lo) + f64::from(hi)) / 2.0) as f32
        })
        .collect();
    rows.chunks_exact(d)
        .flat_map(|r| r.iter().zip(&c).map(|(v, c)| v - c))
        .collect()
}

/// [`smooth`] written plainly in `f64` from the same features at the same (centred) points.
fn reference_smooth(f: &GaussianFeatures, q: &[f32], x: &[f32], y: &[f32], dy: usize) -> Vec<f64> {
    let rows = widen(f.projection().rows());
    let kernel = |a: &[f64], b: &[f64]| gaussian_kernel(f, &rows, a, b);
    let d = f.dim();
    rf::smooth(
        kernel,
        &widen(&centred(q, x, d)),
        &widen(&centred(x, x, d)),
        &widen(y),
        f.dim(),
        dy,
        false,
        f64::MIN,
    )
}

fn gaussian(
    d: usize,
    m: usize,
    h: f32,
    sampling: Sampling,
    variant: Variant,
    seed: u64,
) -> GaussianFeatures {
    GaussianFeatures::new(Projection::new(d, m, sampling, seed).unwrap(), h, variant).unwrap()
}

/// Every output row inside the per-column range of the responses.
fn assert_inside(out: &[f32], y: &[f32], dy: usize) {
    for j in 0..dy {
        let col = y.iter().skip(j).step_by(dy);
        let lo = col.clone().fold(f32::INFINITY, |a, &b| a.min(b));
        let hi = col.fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        for v in out.iter().skip(j).step_by(dy) {
            assert!(
                v.is_finite() && *v >= lo && *v <= hi,
                "{v} outside [{lo}, {hi}]"
            );
        }
    }
}

#[test]
fn positive_smoother_matches_plain_f64_estimator_on_the_same_features() {
    // 130 samples: two full tiles of 64 and a tail of 2.
    let (n, nq, d, dy, h) = (130, 70, 3, 2, 0.8f32);
    let x = uniform(n * d, 31);
    let y = uniform(n * dy, 32);
    // Off-centre samples and queries: the centring matters.
    let x: Vec<f32> = x.iter().map(|v| v + 3.0).collect();
    let q: Vec<f32> = uniform(nq * d, 33).iter().map(|v| v + 3.0).collect();
    let p = |s| Projection::new(d, 200, s, 34).unwrap();
    let oprf = GaussianFeatures::optimal(p(Sampling::Iid), h, view(&q, d), view(&x, d))
        .unwrap()
        .variant();
    let Variant::Optimal(o) = oprf else {
        panic!("{oprf:?}")
    };
    assert!(o.a() < -0.05, "{}", o.a());
    for sampling in [Sampling::Iid, Sampling::Orthogonal(RowNorm::Chi)] {
        for variant in [Variant::Positive, Variant::Hyperbolic, oprf] {
            let f = GaussianFeatures::new(p(sampling), h, variant).unwrap();
            let mut out = vec![0.0; nq * dy];
            f.smooth(
                view(&q, d),
                view(&x, d),
                view(&y, dy),
                view_mut(&mut out, dy),
            )
            .unwrap();
            let e = rel_err(&out, &reference_smooth(&f, &q, &x, &y, dy));
            assert!(e < 2e-5, "{sampling:?} {variant:?}: {e}");
            assert_inside(&out, &y, dy);
        }
    }
}

#[test]
fn positive_smoother_converges_to_exact_gaussian_smoothing() {
    // The rf README quotes both rows: the error shrinks with m at either bandwidth, and is larger
    // at the smaller h, where |x - centre|/h is larger (the estimator's variance grows like
    // exp(|q' + x'|²)).
    let (n, nq, d) = (600, 50, 2);
    let x = uniform(n * d, 1);
    let y: Vec<f32> = x
        .chunks_exact(d)
        .map(|p| (3.0 * p[0]).sin() + p[1])
        .collect();
    let q = uniform(nq * d, 2);
    let errors = |h: f32| -> Vec<f64> {
        let mut ex = vec![0.0; nq];
        nadaraya::attention(
            &nadaraya::Gaussian::new(h).unwrap(),
            view(&q, d),
            view(&x, d),
            view(&y, 1),
            Mask::None,
            view_mut(&mut ex, 1),
        )
        .unwrap();
        let ex = widen(&ex);
        let mut out = vec![0.0; nq];
        [16usize, 256, 4096]
            .iter()
            .map(|&m| {
                (0..4)
                    .map(|s| {
                        let f = GaussianFeatures::for_dim(d, m, h, 50 + s).unwrap();
                        f.smooth(view(&q, d), view(&x, d), view(&y, 1), view_mut(&mut out, 1))
                            .unwrap();
                        rel_err(&out, &ex)
                    })
                    .sum::<f64>()
                    / 4.0
            })
            .collect()
    };
    let (wide, narrow) = (errors(1.0), errors(0.5));
    eprintln!("errors at m = 16, 256, 4096: h = 1: {wide:.2?}; h = 0.5: {narrow:.2?}");
    // Measured 0.44, 0.23, 0.055 (h = 1) and 0.39, 0.28, 0.16 (h = 0.5).
    assert!(
        wide[1] < 0.7 * wide[0] && wide[2] < 0.5 * wide[1],
        "{wide:?}"
    );
    assert!(wide[2] < 0.08, "{wide:?}");
    assert!(
        narrow[1] < 0.85 * narrow[0] && narrow[2] < 0.7 * narrow[1],
        "{narrow:?}"
    );
    assert!(
        narrow[2] < 0.2 && narrow[2] > wide[2],
        "{narrow:?} against {wide:?}"
    );
}

/// Issue 11, class 6: one sample with `y = 1` must give 1 at every query (the old random-Fourier
/// `smooth` gave −1 048 576 where its estimated mass was negative).
#[test]
fn one_sample_gives_its_response_everywhere() {
    for m in [1usize, 2, 3, 8, 64] {
        for seed in 0..8 {
            let f = GaussianFeatures::for_dim(1, m, 0.5, seed).unwrap();
            let q: Vec<f32> = (-40..=40).map(|i| i as f32 * 0.25).collect();
            let mut out = vec![0.0; q.len()];
            f.smooth(
                view(&q, 1),
                view(&[0.3], 1),
                view(&[1.0], 1),
                view_mut(&mut out, 1),
            )
            .unwrap();
            assert!(out.iter().all(|&v| v == 1.0), "m={m} seed={seed}: {out:?}");
        }
    }
}

/// The plot tool's default data (`sine`, twelve points in [-3, 3]) at `h = 0.5` with `m = 2`:
/// the old random-Fourier `smooth` gave values near 5e5 there; every estimate must lie inside
/// the data.
#[test]
fn plot_sine_with_two_features_stays_inside_the_data() {
    let x = [
        -2.9f32, -2.4, -1.8, -1.3, -0.9, -0.4, 0.2, 0.7, 1.1, 1.6, 2.2, 2.8,
    ];
    let y = [
        -0.12f32, -0.76, -0.92, -1.11, -0.68, -0.44, 0.34, 0.54, 0.95, 0.88, 0.9, 0.29,
    ];
    let q: Vec<f32> = (0..241).map(|i| -3.6 + 7.2 * i as f32 / 240.0).collect();
    let mut out = vec![0.0; q.len()];
    for m in [1usize, 2, 4] {
        for seed in 0..16 {
            let f = GaussianFeatures::for_dim(1, m, 0.5, seed).unwrap();
            f.smooth(view(&q, 1), view(&x, 1), view(&y, 1), view_mut(&mut out, 1))
                .unwrap();
            assert_inside(&out, &y, 1);
        }
    }
}

#[test]
fn hostile_inputs_give_convex_results_or_score_overflow() {
    let f = gaussian(
        2,
        16,
        1.0,
        Sampling::Orthogonal(RowNorm::Chi),
        Variant::Positive,
        3,
    );
    let x = [0.0f32, 0.0, 1.0, -1.0, 1e8, 1e8, -3.0, 2.0];
    // Columns: ±f32::MAX, subnormals, ordinary.
    let y = [
        f32::MAX,
        1e-45,
        1.0,
        -f32::MAX,
        -1e-45,
        2.0,
        f32::MAX,
        3e-45,
        -1.0,
        -f32::MAX,
        0.0,
        5.0,
    ];
    let q = [0.5f32, 0.5, 1e8, 1e8, -1e8, 3.0, 1e15, -1e15, 0.0, 0.0];
    let mut out = vec![0.0; 15];
    f.smooth(view(&q, 2), view(&x, 2), view(&y, 3), view_mut(&mut out, 3))
        .unwrap();
    assert_inside(&out, &y, 3);
    // Every permutation of the samples: the same verdict, the same values within rounding.
    let perms = [[0usize, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]];
    for p in perms {
        let xp: Vec<f32> = p
            .iter()
            .flat_map(|&i| x[2 * i..2 * i + 2].to_vec())
            .collect();
        let yp: Vec<f32> = p
            .iter()
            .flat_map(|&i| y[3 * i..3 * i + 3].to_vec())
            .collect();
        let mut o = vec![0.0; 15];
        f.smooth(view(&q, 2), view(&xp, 2), view(&yp, 3), view_mut(&mut o, 3))
            .unwrap();
        assert_inside(&o, &y, 3);
        for (a, b) in o.iter().zip(&out) {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                "{p:?}: {a} vs {b}"
            );
        }
    }
    // A sample whose |x|² overflows f32 is outside the features' domain, in any position.
    for pos in 0..3 {
        let mut xs = vec![0.0f32; 6];
        xs[2 * pos] = 3e38;
        let r = f.smooth(
            view(&[0.0, 0.0], 2),
            view(&xs, 2),
            view(&[1.0, 2.0, 3.0], 1),
            view_mut(&mut [0.0], 1),
        );
        assert_eq!(r, Err(nadaraya_rf::Error::ScoreOverflow));
    }
    // Queries: a huge one is convex or overflows its exponent; NaN is rejected up front.
    let mut o = [0.0];
    match f.smooth(
        view(&[3e38, -3e38], 2),
        view(&x, 2),
        view(&y[..4], 1),
        view_mut(&mut o, 1),
    ) {
        Ok(()) => assert_inside(&o, &y[..4], 1),
        Err(e) => assert_eq!(e, nadaraya_rf::Error::ScoreOverflow),
    }
    let r = f.smooth(
        view(&[f32::NAN, 0.0], 2),
        view(&x, 2),
        view(&y[..4], 1),
        view_mut(&mut [0.0], 1),
    );
    assert_eq!(r, Err(nadaraya_rf::Error::NonFinite));
}

/// Issue 11, classes 4 and 6: over several tiles, with responses near ±f32::MAX and the
/// dominant sample first, last or mid-tile, every order (reversal, rotations across the tile
/// boundary) gives the same verdict (`Ok`) and the same values within rounding, inside the data.
#[test]
fn every_order_of_the_samples_gives_the_same_result() {
    let (n, d, dy) = (200usize, 2usize, 2usize);
    let f = gaussian(
        d,
        32,
        0.7,
        Sampling::Orthogonal(RowNorm::Chi),
        Variant::Positive,
        9,
    );
    let mut x: Vec<f32> = uniform(n * d, 51).iter().map(|v| 2.0 * v).collect();
    let mut y: Vec<f32> = uniform(n * dy, 52)
        .iter()
        .enumerate()
        .map(|(i, v)| if i % 2 == 0 { v * f32::MAX } else { v * 1e-30 })
        .collect();
    // The sample nearest the query at the origin, with the largest response, first.
    x[0] = 0.0;
    x[1] = 0.0;
    y[0] = f32::MAX;
    let q = [0.0f32, 0.0, 1.5, -1.5, 30.0, 30.0];
    let mut base = vec![0.0; 3 * dy];
    f.smooth(
        view(&q, d),
        view(&x, d),
        view(&y, dy),
        view_mut(&mut base, dy),
    )
    .unwrap();
    assert_inside(&base, &y, dy);
    let reference = reference_smooth(&f, &q, &x, &y, dy);
    for (a, b) in base.iter().zip(&reference) {
        assert!(
            (f64::from(*a) - b).abs() <= 1e-4 * b.abs().max(1e-30),
            "{a} vs {b}"
        );
    }
    for rot in [1usize, 63, 64, 65, 137, 199] {
        for rev in [false, true] {
            let mut idx: Vec<usize> = (0..n).map(|i| (i + rot) % n).collect();
            if rev {
                idx.reverse();
            }
            let xp: Vec<f32> = idx.iter().flat_map(|&i| x[i * d..][..d].to_vec()).collect();
            let yp: Vec<f32> = idx
                .iter()
                .flat_map(|&i| y[i * dy..][..dy].to_vec())
                .collect();
            let mut o = vec![0.0; 3 * dy];
            f.smooth(
                view(&q, d),
                view(&xp, d),
                view(&yp, dy),
                view_mut(&mut o, dy),
            )
            .unwrap();
            for (a, b) in o.iter().zip(&base) {
                assert!(
                    (a - b).abs() <= 1e-5 * b.abs().max(1e-30),
                    "rot {rot} rev {rev}: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn bandwidth_range() {
    let p = || Projection::new(1, 4, Sampling::Iid, 0).unwrap();
    // The core's rule (`nadaraya::Gaussian::check_bandwidth`), checked at its edges in
    // `tests/api.rs::every_parameter_has_the_cores_validity_rule`.
    for h in [0.0f32, -1.0, f32::NAN, f32::INFINITY, 1e-20, 9e18, 1e20] {
        assert_eq!(
            GaussianFeatures::new(p(), h, Variant::Positive).unwrap_err(),
            nadaraya_rf::Error::InvalidBandwidth,
            "{h}"
        );
    }
    for h in [5e-20f32, 2e-19, 1.0, 6.5e18] {
        assert!(
            GaussianFeatures::new(p(), h, Variant::Positive).is_ok(),
            "{h}"
        );
    }
}

#[test]
fn oprf_closed_form() {
    // A = (1 − 2ρ − √((2ρ + 1)² + 8ρ))/16 minimises the log-variance
    // d·ln(1 − 4A) − (d/2)·ln(1 − 8A) + 2ρd(1 − 4A)/(1 − 8A): check by a grid search in f64.
    for rho in [0.0f64, 0.1, 0.5, 1.0, 4.0, 30.0] {
        let a = f64::from(Oprf::from_rho(rho).unwrap().a());
        let lv = |a: f64| {
            (1.0 - 4.0 * a).ln() - 0.5 * (1.0 - 8.0 * a).ln()
                + 2.0 * rho * (1.0 - 4.0 * a) / (1.0 - 8.0 * a)
        };
        let best = (0..200_000)
            .map(|i| -20.0 + 20.0 * f64::from(i) / 200_000.0)
            .fold(0.0f64, |b, t| if lv(t) < lv(b) { t } else { b });
        assert!(
            (a - best).abs() < 2e-4 * (1.0 + best.abs()),
            "ρ={rho}: {a} vs {best}"
        );
    }
    for bad in [-1.0, f64::NAN, f64::INFINITY, 1e300] {
        assert!(Oprf::from_rho(bad).is_none(), "{bad}");
    }
    // ρ from data is the mean |q' + k'|²/d over all pairs.
    let (q, k) = (uniform(5 * 3, 1), uniform(7 * 3, 2));
    let mut total = 0.0f64;
    for a in q.chunks_exact(3) {
        for b in k.chunks_exact(3) {
            total += a
                .iter()
                .zip(b)
                .map(|(a, b)| f64::from(a + b).powi(2))
                .sum::<f64>();
        }
    }
    let rho = total / (35.0 * 3.0 * 2.0);
    let fit = Oprf::fit(view(&q, 3), view(&k, 3), 2.0).unwrap().a();
    let want = Oprf::from_rho(rho).unwrap().a();
    assert!((fit - want).abs() <= 1e-6 * want.abs(), "{fit} vs {want}");
}

/// Mean and standard error over `draws` independent draws of the estimate `Σ_i exp(lx_i + ly_i)`
/// of a kernel, from `log_features`.
fn mean_and_se(draws: u64, mut estimate: impl FnMut(u64) -> f64) -> (f64, f64) {
    let xs: Vec<f64> = (0..draws).map(&mut estimate).collect();
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

fn estimate(lx: &[f32], ly: &[f32]) -> f64 {
    lx.iter()
        .zip(ly)
        .map(|(a, b)| (f64::from(*a) + f64::from(*b)).exp())
        .sum()
}

/// Issue 11, class 6, part 3: the mean over independent draws of `φ(x)·φ(y)` converges to the
/// exact `exp(x·y/τ)` (FAVOR+, OPRF) or `exp(−|x − y|²/2h²)` (positive Gaussian), within four
/// standard errors, and the test has the power to see a 3% bias (a wrong `D`, `B` or `A` is
/// far more than that: see the asserts on `bias_power`).
#[test]
fn positive_features_are_unbiased() {
    let (d, m, draws) = (4usize, 16usize, 6000u64);
    let x = [0.3f32, -0.15, 0.25, 0.1];
    let y = [0.2f32, 0.05, 0.3, -0.25];
    let tau = 1.0f32;
    let dot: f64 = x.iter().zip(&y).map(|(a, b)| f64::from(a * b)).sum();
    let d2: f64 = x
        .iter()
        .zip(&y)
        .map(|(a, b)| f64::from(a - b).powi(2))
        .sum();
    let oprf = Oprf::fit(view(&x, d), view(&y, d), tau).unwrap();
    assert!(oprf.a() < -0.05, "A = {}", oprf.a());
    let check = |name: &str, exact: f64, (mean, se): (f64, f64)| {
        let z = (mean - exact) / se;
        eprintln!("{name}: mean {mean:.5} ± {se:.5}, exact {exact:.5}, z = {z:.2}");
        assert!(z.abs() < 4.0, "{name}: z = {z}");
        // Power: a 3% bias would be detected.
        assert!(0.03 * exact / se > 8.0, "{name}: se {se} too large");
    };
    for sampling in [Sampling::Iid, Sampling::Orthogonal(RowNorm::Chi)] {
        for variant in [Variant::Positive, Variant::Optimal(oprf)] {
            let est = mean_and_se(draws, |draw| {
                let p = Projection::with_draw(d, m, sampling, 7, draw).unwrap();
                let f = FavorPlus::new(p, tau, variant).unwrap();
                let (mut lx, mut ly) = (vec![0.0; m], vec![0.0; m]);
                f.log_features(&x, &mut lx).unwrap();
                f.log_features(&y, &mut ly).unwrap();
                estimate(&lx, &ly)
            });
            check(&format!("softmax {sampling:?} {variant:?}"), dot.exp(), est);
            let h = 1.0f32;
            let gv = match variant {
                Variant::Optimal(_) => {
                    Variant::Optimal(Oprf::fit(view(&x, d), view(&y, d), h * h).unwrap())
                }
                v => v,
            };
            let est = mean_and_se(draws, |draw| {
                let p = Projection::with_draw(d, m, sampling, 8, draw).unwrap();
                let f = GaussianFeatures::new(p, h, gv).unwrap();
                let (mut lx, mut ly) = (vec![0.0; m], vec![0.0; m]);
                f.log_features(&x, &mut lx).unwrap();
                f.log_features(&y, &mut ly).unwrap();
                estimate(&lx, &ly)
            });
            let exact = (-d2 / (2.0 * f64::from(h * h))).exp();
            check(&format!("gaussian {sampling:?} {gv:?}"), exact, est);
        }
    }
}

/// OPRF for softmax attention through the paths that use the features' key exponents: causal
/// attention, the recurrent state and the implied weights, against the plain `f64` estimator.
#[test]
fn oprf_attention_matches_plain_f64_estimator() {
    let (l, d, dv) = (70, 4, 3);
    let q: Vec<f32> = uniform(l * d, 41).iter().map(|v| 0.8 * v).collect();
    let k: Vec<f32> = uniform(l * d, 42).iter().map(|v| 0.8 * v).collect();
    let v = uniform(l * dv, 43);
    let tau = 2.0f32;
    let oprf = Oprf::fit(view(&q, d), view(&k, d), tau).unwrap();
    let p = Projection::new(d, 64, Sampling::Orthogonal(RowNorm::Chi), 44).unwrap();
    let f = FavorPlus::new(p, tau, Variant::Optimal(oprf)).unwrap();
    let rows = widen(f.projection().rows());
    let kernel = |a: &[f64], b: &[f64]| softmax_kernel(&rows, f64::from(tau), f.variant(), a, b);
    let want = rf::smooth(
        kernel,
        &widen(&q),
        &widen(&k),
        &widen(&v),
        d,
        dv,
        true,
        f64::MIN,
    );
    let mut out = vec![0.0; l * dv];
    f.attention(
        view(&q, d),
        view(&k, d),
        view(&v, dv),
        Mask::Causal,
        view_mut(&mut out, dv),
    )
    .unwrap();
    let e = rel_err(&out, &want);
    assert!(e < 2e-5, "causal: {e}");
    let mut s = CausalState::new(&f, dv).unwrap();
    let mut o = vec![0.0; dv];
    for t in 0..l {
        s.step(
            &q[t * d..][..d],
            &k[t * d..][..d],
            &v[t * dv..][..dv],
            &mut o,
        )
        .unwrap();
    }
    assert!(rel_err(&o, &want[(l - 1) * dv..]) < 2e-5);
    let mut w = vec![0.0; l];
    f.weights(
        view(&q[..d], q[..d].len()),
        view(&k, q[..d].len()),
        row_mut(&mut w),
    )
    .unwrap();
    let ww = rf::weights(kernel, &widen(&q[..d]), &widen(&k));
    assert!(rel_err(&w, &ww) < 2e-5);
}

/// Non-causal [`attention`] with OPRF adds the per-feature `2A|ω_i|²` to its key exponents
/// (through `FavorPlus::finish_key_exponents`, as the causal paths do): without it, OPRF's
/// importance weights are dropped (21% off here).
#[test]
fn oprf_noncausal_attention_matches_plain_f64_estimator() {
    let (l, d, dv) = (70, 4, 3);
    let q: Vec<f32> = uniform(l * d, 41).iter().map(|v| 0.8 * v).collect();
    let k: Vec<f32> = uniform(l * d, 42).iter().map(|v| 0.8 * v).collect();
    let v = uniform(l * dv, 43);
    let tau = 2.0f32;
    let oprf = Oprf::fit(view(&q, d), view(&k, d), tau).unwrap();
    let p = Projection::new(d, 64, Sampling::Orthogonal(RowNorm::Chi), 44).unwrap();
    let f = FavorPlus::new(p, tau, Variant::Optimal(oprf)).unwrap();
    let rows = widen(f.projection().rows());
    let kernel = |a: &[f64], b: &[f64]| softmax_kernel(&rows, f64::from(tau), f.variant(), a, b);
    let mut out = vec![0.0; l * dv];
    // Non-causal attention: the same estimator.
    let want = rf::smooth(
        kernel,
        &widen(&q),
        &widen(&k),
        &widen(&v),
        d,
        dv,
        false,
        f64::MIN,
    );
    f.attention(
        view(&q, d),
        view(&k, d),
        view(&v, dv),
        Mask::None,
        view_mut(&mut out, dv),
    )
    .unwrap();
    let e = rel_err(&out, &want);
    assert!(e < 2e-5, "attention: {e}");
}

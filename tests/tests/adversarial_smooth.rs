//! The adversarial suite of `nadaraya-rf`'s smoothing (issue 11, class 6): Gaussian
//! Nadaraya–Watson through positive random features ([`GaussianFeatures::smooth`]) against the `f64` estimator on
//! the same features at the same centred points, with the rule of [`nadaraya_tests::verdict`]
//! (`Ok` finite, inside the responses' range and within the bound of [`rf_common::want_row`];
//! `ScoreOverflow` per exponent; the same verdict in every order); and the trigonometric
//! estimator [`FourierFeatures::smooth`], asked for by name, never `Ok` with a non-finite value; and every
//! positive variant, OPRF included, against the `f64` estimator of its own log-features.

mod rf_common;

use nadaraya_rf::{
    CausalState, Error, FavorPlus, FourierFeatures, GaussianFeatures, Mask, MassGuard, Oprf,
    Projection, RowNorm, Sampling, Variant,
};
use nadaraya_tests::uniform;
use nadaraya_tests::verdict::{RowWant, judge, subnormal_slack};
use rf_common::{Feat, SPARE, index, problem, row_mut, spare_untouched, view, view_mut, want_row};

/// The per-column midrange of `x` and `rows − centre`, in `f32`, as `GaussianFeatures::smooth` centres its inputs.
fn centred(x: &[f32], d: usize, rows: &[f32]) -> Vec<f32> {
    let mut c = vec![0.0f32; d];
    for (j, cj) in c.iter_mut().enumerate() {
        let (lo, hi) = x
            .chunks_exact(d)
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), r| {
                (l.min(r[j]), h.max(r[j]))
            });
        *cj = ((f64::from(lo) + f64::from(hi)) / 2.0) as f32;
    }
    rows.chunks_exact(d)
        .flat_map(|r| r.iter().zip(&c).map(|(v, c)| v - c).collect::<Vec<_>>())
        .collect()
}

/// `smooth` of every query against the `f64` estimator on the same features at the centred
/// points; returns the verdict (`None` if undecided).
fn check_smooth(
    what: &str,
    g: &GaussianFeatures,
    q: &[f32],
    x: &[f32],
    y: &[f32],
    dy: usize,
) -> Option<Result<(), Error>> {
    let mut ft = Feat::of(g.favor().clone());
    ft.key_sq = ft.inv_tau;
    let d = ft.d();
    let (m, n) = (q.len() / d, x.len() / d);
    let mut out = vec![f32::NAN; (m + SPARE) * dy];
    let got = g.smooth(
        view(q, d),
        view(x, d),
        view(y, dy),
        view_mut(&mut out[..m * dy], dy),
    );
    spare_untouched(what, &out, m * dy);
    let finite = q.iter().chain(x).chain(y).all(|v| v.is_finite());
    if !finite {
        assert_eq!(got, Err(Error::NonFinite), "{what}: non-finite input");
        return Some(got);
    }
    let (qc, xc) = (centred(x, d, q), centred(x, d, x));
    let rows: Vec<RowWant<Error>> = qc
        .chunks_exact(d)
        .map(|qr| want_row(&ft, qr, &xc, y, dy))
        .collect();
    judge(
        &format!("{what}: smooth n={n}"),
        got,
        &out[..m * dy],
        &rows,
        dy,
    );
    let undecided = rows.iter().any(|r| r.may_fail.is_some());
    (!undecided).then_some(got)
}

/// One sample with `y = 1` gives exactly 1 wherever the query is (on a2f252f the random-Fourier
/// `smooth` gave `-1 048 576`), and the plot tool's sine with `m = 2` stays inside `[-1, 1]` (on
/// a2f252f: `5e5`).
#[test]
fn gaussian_smoothing_is_a_convex_combination() {
    for (m, h, seed) in [
        (2usize, 0.3f32, 0),
        (2, 1e-3, 1),
        (16, 1.0, 2),
        (64, 0.05, 3),
    ] {
        let g = GaussianFeatures::for_dim(1, m, h, seed).unwrap();
        for xq in [0.0f32, 0.5, 3.0, -1e3, 1e8, 3e38] {
            let mut out = [f32::NAN];
            let r = g.smooth(
                view(&[xq], 1),
                view(&[0.25], 1),
                view(&[1.0], 1),
                view_mut(&mut out, 1),
            );
            if r.is_ok() {
                assert_eq!(out[0], 1.0, "m={m} h={h} xq={xq}: one sample y = 1");
            }
            let _ = check_smooth(
                &format!("one sample m={m} h={h} xq={xq}"),
                &g,
                &[xq],
                &[0.25],
                &[1.0],
                1,
            );
        }
        let x: Vec<f32> = (0..200)
            .map(|i| i as f32 * std::f32::consts::TAU / 200.0)
            .collect();
        let y: Vec<f32> = x.iter().map(|v| v.sin()).collect();
        let q: Vec<f32> = (0..50).map(|i| i as f32 * 0.15 - 0.5).collect();
        let _ = check_smooth(&format!("sine m={m} h={h}"), &g, &q, &x, &y, 1);
    }
}

/// Hostile responses and locations at lane and tile boundaries, every order of small sample sets
/// and random orders of larger ones: the rule, and the same verdict.
#[test]
fn gaussian_smoothing_obeys_the_rule_in_every_order() {
    let mut u = uniform(31);
    for (c, &(d, dy, n, scale)) in [
        (1usize, 1usize, 1usize, 1.0f32),
        (2, 3, 3, 1e-40),
        (3, 1, 4, 3e38),
        (1, 2, 5, 1e19),
        (9, 2, 65, 1.0),
        (17, 9, 130, 0.5),
    ]
    .iter()
    .enumerate()
    {
        let g = GaussianFeatures::for_dim(d, 16, 0.7, c as u64).unwrap();
        let p = problem(200 + c as u64, d, dy, 3, n, scale, true);
        let want = check_smooth("smooth", &g, &p.q, &p.keys, &p.values, dy);
        for _ in 0..if n <= 5 { 24 } else { 4 } {
            let mut perm: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                perm.swap(i, index(&mut u, i + 1));
            }
            let pp = p.permuted(d, &perm);
            let got = check_smooth("smooth perm", &g, &pp.q, &pp.keys, &pp.values, dy);
            assert_eq!(got, want, "case {c}: {perm:?}");
        }
        for bad in [f32::NAN, f32::INFINITY] {
            let mut pp = p.clone();
            let i = index(&mut u, pp.values.len());
            pp.values[i] = bad;
            let _ = check_smooth("smooth non-finite", &g, &pp.q, &pp.keys, &pp.values, dy);
            let mut pp = p.clone();
            let i = index(&mut u, pp.keys.len());
            pp.keys[i] = bad;
            let _ = check_smooth("smooth non-finite", &g, &pp.q, &pp.keys, &pp.values, dy);
        }
    }
}

/// The trigonometric estimator, asked for by name: never `Ok` with a non-finite value, and with
/// the default guard never the `-1 048 576` of one sample with `y = 1`.
#[test]
fn fourier_smoothing_never_returns_non_finite_values() {
    for (m, h) in [(2usize, 0.3f32), (8, 1e-3), (64, 1.0)] {
        for guard in [MassGuard::Reject, MassGuard::Floor] {
            let f = FourierFeatures::for_dim(1, m, h, 5)
                .unwrap()
                .with_guard(guard);
            for xq in [0.0f32, 0.5, 3.0, -1e3, 1e8, 3e38] {
                let mut out = [f32::NAN; 1 + SPARE];
                let r = f.smooth(
                    view(&[xq], 1),
                    view(&[0.25], 1),
                    view(&[1.0], 1),
                    view_mut(&mut out[..1], 1),
                );
                spare_untouched("smooth_fourier", &out, 1);
                if r.is_ok() {
                    assert!(
                        out[0].is_finite(),
                        "m={m} h={h} xq={xq} {guard:?}: {}",
                        out[0]
                    );
                    if guard == MassGuard::Reject {
                        assert!(
                            out[0].abs() <= 1.0 + 1e-5,
                            "m={m} h={h} xq={xq}: {}",
                            out[0]
                        );
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Every positive variant through its own log-features
// ---------------------------------------------------------------------------------------------

/// Every positive variant (FAVOR+, hyperbolic, OPRF with `A` fitted to the data) on every path
/// against the `f64` estimator built from the crate's own `f32` log-features
/// ([`FavorPlus::log_features`]: `κ_j = Σ_i exp(log φ(q)_i + log φ(k_j)_i − max)`): `Ok`,
/// finite, inside the values' range and within `scale·(1e-5 + 64ε·E)` of it, `E` the largest
/// `|log φ(q)_i| + |log φ(k_j)_i|`; the same verdict on every path and in reversed key order.
#[test]
fn every_positive_variant_matches_the_estimator_of_its_own_features() {
    let mut u = uniform(77);
    for (c, &(d, n, vscale)) in [
        (2usize, 1usize, 1.0f32),
        (9, 64, 1e30),
        (17, 65, 1e-40),
        (3, 130, 1.0),
    ]
    .iter()
    .enumerate()
    {
        let dv = 2;
        let q: Vec<f32> = (0..3 * d).map(|_| u() * 0.6).collect();
        let keys: Vec<f32> = (0..n * d).map(|_| u() * 0.6).collect();
        let values: Vec<f32> = (0..n * dv).map(|_| u() * vscale).collect();
        let tau = (d as f32).sqrt();
        let oprf = Oprf::fit(view(&q, d), view(&keys, d), tau).unwrap();
        for variant in [
            Variant::Positive,
            Variant::Hyperbolic,
            Variant::Optimal(oprf),
        ] {
            let p = Projection::new(d, 16, Sampling::Orthogonal(RowNorm::Chi), c as u64).unwrap();
            let f = FavorPlus::new(p, tau, variant).unwrap();
            let r = f.features();
            let logf = |x: &[f32]| -> Vec<f64> {
                let mut o = vec![0.0f32; r];
                f.log_features(x, &mut o).unwrap();
                o.iter().map(|&v| f64::from(v)).collect()
            };
            let lk: Vec<Vec<f64>> = keys.chunks_exact(d).map(logf).collect();
            let scale = values.iter().fold(0.0f64, |m, v| m.max(f64::from(v.abs())));
            let rows: Vec<RowWant<Error>> = q
                .chunks_exact(d)
                .map(|qr| {
                    let lq = logf(qr);
                    let e: Vec<Vec<f64>> = lk
                        .iter()
                        .map(|k| k.iter().zip(&lq).map(|(a, b)| a + b).collect())
                        .collect();
                    let kappa = nadaraya_tests::rf::kappas_log(&e);
                    let total: f64 = kappa.iter().sum();
                    let mut w = RowWant::convex(&values, dv);
                    w.exact = (0..dv)
                        .map(|j| {
                            kappa
                                .iter()
                                .zip(values.chunks_exact(dv))
                                .map(|(k, v)| k * f64::from(v[j]))
                                .sum::<f64>()
                                / total
                        })
                        .collect();
                    let big = lq.iter().fold(0.0f64, |m, x| m.max(x.abs()))
                        + lk.iter().flatten().fold(0.0f64, |m, x| m.max(x.abs()));
                    w.tol =
                        scale * (1e-5 + 64.0 * f64::from(f32::EPSILON) * big) + subnormal_slack(n);
                    w
                })
                .collect();
            let what = format!("case {c} {variant:?} d={d} n={n}");
            let mut out = vec![f32::NAN; (3 + SPARE) * dv];
            let got = f.attention(
                view(&q, d),
                view(&keys, d),
                view(&values, dv),
                Mask::None,
                view_mut(&mut out[..3 * dv], dv),
            );
            spare_untouched(&what, &out, 3 * dv);
            judge(
                &format!("{what}: attention"),
                got,
                &out[..3 * dv],
                &rows,
                dv,
            );
            assert_eq!(got, Ok(()), "{what}: attention");
            // Reversed keys: the same estimate within the bound.
            let rk: Vec<f32> = keys.chunks_exact(d).rev().flatten().copied().collect();
            let rv: Vec<f32> = values.chunks_exact(dv).rev().flatten().copied().collect();
            let mut out_r = vec![0.0f32; 3 * dv];
            let got_r = f.attention(
                view(&q, d),
                view(&rk, d),
                view(&rv, dv),
                Mask::None,
                view_mut(&mut out_r, dv),
            );
            judge(&format!("{what}: reversed"), got_r, &out_r, &rows, dv);
            // CausalState over every key answers each query as attention does.
            let mut s = CausalState::new(&f, dv).unwrap();
            for (k, v) in keys.chunks_exact(d).zip(values.chunks_exact(dv)) {
                s.absorb(k, v).unwrap();
            }
            for (t, qr) in q.chunks_exact(d).enumerate() {
                let mut o = vec![0.0f32; dv];
                let r = s.query(qr, &mut o);
                judge(
                    &format!("{what}: CausalState::query {t}"),
                    r,
                    &o,
                    std::slice::from_ref(&rows[t]),
                    dv,
                );
                let mut w = vec![0.0f32; n];
                f.weights(view(qr, qr.len()), view(&keys, qr.len()), row_mut(&mut w))
                    .unwrap();
                let sum: f64 = w.iter().map(|&x| f64::from(x)).sum();
                assert!(
                    (sum - 1.0).abs() < 1e-5 && w.iter().all(|&x| x >= 0.0),
                    "{what}: weights {t}"
                );
            }
            if 3 <= n {
                let mut out_c = vec![0.0f32; 3 * dv];
                let got_c = f.attention(
                    view(&q, d),
                    view(&keys, d),
                    view(&values, dv),
                    Mask::Causal,
                    view_mut(&mut out_c, dv),
                );
                assert_eq!(got_c, Ok(()), "{what}: causal_attention");
                assert!(out_c.iter().all(|v| v.is_finite()));
            }
        }
    }
}

//! The adversarial suite of `nadaraya-rf`'s smoothing (issue 11, class 6): Gaussian
//! Nadaraya–Watson through positive random features ([`smooth`]) against the `f64` estimator on
//! the same features at the same centred points, with the rule of [`nadaraya_tests::verdict`]
//! (`Ok` finite, inside the responses' range and within the bound of [`rf_common::want_row`];
//! `ScoreOverflow` per exponent; the same verdict in every order); and the trigonometric
//! estimator [`smooth_fourier`], asked for by name, never `Ok` with a non-finite value.

mod rf_common;

use nadaraya_rf::{Error, FourierFeatures, GaussianFeatures, MassGuard, smooth, smooth_fourier};
use nadaraya_tests::uniform;
use nadaraya_tests::verdict::{RowWant, judge};
use rf_common::{Feat, SPARE, index, problem, spare_untouched, want_row};

/// The per-column midrange of `x` and `rows − centre`, in `f32`, as `smooth` centres its inputs.
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
    let got = smooth(g, q, x, y, d, dy, &mut out);
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
            let r = smooth(&g, &[xq], &[0.25], &[1.0], 1, 1, &mut out);
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
                let r = smooth_fourier(&f, &[xq], &[0.25], &[1.0], 1, 1, &mut out);
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

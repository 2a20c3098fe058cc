//! FAVOR+ attention against the core's exact attention and against a plain `f64` estimator.

mod common;
mod rf_reference;
use rf_reference as reference;

use common::{normal, rel_err, row_mut, view, view_mut};
use nadaraya::SoftmaxDot;
use nadaraya_rf::{CausalState, FavorPlus, Mask, Projection, RowNorm, Sampling, Variant};
use reference::{reference_rf, reference_weights, widen};

/// The core's exact softmax attention, as `f64` for [`rel_err`].
fn exact(q: &[f32], k: &[f32], v: &[f32], d: usize, dv: usize) -> Vec<f64> {
    let mut out = vec![0.0; q.len() / d * dv];
    nadaraya::attention(
        &SoftmaxDot::for_dim(d).unwrap(),
        view(q, d),
        view(k, d),
        view(v, dv),
        Mask::None,
        view_mut(&mut out, dv),
    )
    .unwrap();
    widen(&out)
}

fn favor(d: usize, m: usize, sampling: Sampling, variant: Variant, seed: u64) -> FavorPlus {
    let p = Projection::new(d, m, sampling, seed).unwrap();
    FavorPlus::new(p, (d as f32).sqrt(), variant).unwrap()
}

/// Mean relative error against exact attention over `seeds` feature draws.
fn mean_err(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    d: usize,
    m: usize,
    sampling: Sampling,
    seeds: u64,
) -> f64 {
    let ex = exact(q, k, v, d, d);
    let mut out = vec![0.0; q.len()];
    (0..seeds)
        .map(|s| {
            favor(d, m, sampling, Variant::Positive, 100 + s)
                .attention(
                    view(q, d),
                    view(k, d),
                    view(v, d),
                    Mask::None,
                    view_mut(&mut out, d),
                )
                .unwrap();
            rel_err(&out, &ex)
        })
        .sum::<f64>()
        / seeds as f64
}

const L: usize = 256;
const D: usize = 8;

fn inputs() -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    (
        normal(L * D, 0.0, 0.5, 1),
        normal(L * D, 0.0, 0.5, 2),
        normal(L * D, 0.0, 1.0, 3),
    )
}

#[test]
fn error_falls_roughly_as_one_over_sqrt_m() {
    let (q, k, v) = inputs();
    let e: Vec<f64> = [16, 64, 256]
        .iter()
        .map(|&m| mean_err(&q, &k, &v, D, m, Sampling::Iid, 12))
        .collect();
    // 1/√m predicts a factor 2 per 4× features and 4 over 16×.
    assert!(e[1] < 0.85 * e[0], "{e:?}");
    assert!(e[2] < 0.75 * e[1], "{e:?}");
    let ratio = e[0] / e[2];
    eprintln!("errors {e:?}");
    assert!((2.0..=8.0).contains(&ratio), "e16/e256 = {ratio}, {e:?}");
}

#[test]
fn orthogonal_beats_iid_on_average() {
    let (q, k, v) = inputs();
    for m in [8, 32] {
        let iid = mean_err(&q, &k, &v, D, m, Sampling::Iid, 16);
        let orth = mean_err(&q, &k, &v, D, m, Sampling::Orthogonal(RowNorm::Chi), 16);
        eprintln!("m = {m}: orthogonal {orth} vs iid {iid}");
        assert!(orth < iid, "m = {m}: orthogonal {orth} vs iid {iid}");
    }
}

#[test]
fn matches_plain_f64_estimator_with_the_same_features() {
    // 130 rows: two full tiles of 64 and a tail of 2.
    let (l, d, dv) = (130, 6, 3);
    let q = normal(l * d, 0.0, 0.7, 4);
    let k = normal(l * d, 0.2, 0.7, 5);
    let v = normal(l * dv, 1.0, 1.0, 6);
    for (sampling, variant) in [
        (Sampling::Iid, Variant::Positive),
        (Sampling::Orthogonal(RowNorm::Chi), Variant::Positive),
        (Sampling::Orthogonal(RowNorm::SqrtD), Variant::Hyperbolic),
    ] {
        let f = favor(d, 20, sampling, variant, 7);
        let mut out = vec![0.0; l * dv];
        f.attention(
            view(&q, d),
            view(&k, d),
            view(&v, dv),
            Mask::None,
            view_mut(&mut out, dv),
        )
        .unwrap();
        let e = rel_err(&out, &reference_rf(&f, &q, &k, &v, dv, false));
        assert!(e < 2e-5, "{sampling:?} {variant:?}: {e}");
        f.attention(
            view(&q, d),
            view(&k, d),
            view(&v, dv),
            Mask::Causal,
            view_mut(&mut out, dv),
        )
        .unwrap();
        let e = rel_err(&out, &reference_rf(&f, &q, &k, &v, dv, true));
        assert!(e < 2e-5, "causal {sampling:?} {variant:?}: {e}");
    }
}

#[test]
fn causal_equals_step_api() {
    let (l, d, dv) = (70, 4, 5);
    let q = normal(l * d, 0.0, 1.0, 8);
    let k = normal(l * d, 0.0, 1.0, 9);
    let v = normal(l * dv, 0.0, 1.0, 10);
    let f = FavorPlus::for_dim(d, 32, 11).unwrap();
    let mut batch = vec![0.0; l * dv];
    f.attention(
        view(&q, d),
        view(&k, d),
        view(&v, dv),
        Mask::Causal,
        view_mut(&mut batch, dv),
    )
    .unwrap();
    let mut state = CausalState::new(&f, dv).unwrap();
    let mut stepped = vec![0.0; l * dv];
    for t in 0..l {
        state
            .step(
                &q[t * d..(t + 1) * d],
                &k[t * d..(t + 1) * d],
                &v[t * dv..(t + 1) * dv],
                &mut stepped[t * dv..(t + 1) * dv],
            )
            .unwrap();
    }
    assert_eq!(state.len(), l);
    assert_eq!(batch, stepped);
    // The last causal row sees every key: it equals the non-causal row.
    let mut full = vec![0.0; dv];
    f.attention(
        view(&q[(l - 1) * d..], d),
        view(&k, d),
        view(&v, dv),
        Mask::None,
        view_mut(&mut full, dv),
    )
    .unwrap();
    let last = &batch[(l - 1) * dv..];
    for (a, b) in last.iter().zip(&full) {
        assert!(
            (a - b).abs() <= 1e-5 * b.abs().max(1.0),
            "{last:?} vs {full:?}"
        );
    }
    // Fewer queries than keys: the first rows only.
    let mut head = vec![0.0; 10 * dv];
    f.attention(
        view(&q[..10 * d], d),
        view(&k, d),
        view(&v, dv),
        Mask::Causal,
        view_mut(&mut head, dv),
    )
    .unwrap();
    assert_eq!(head, batch[..10 * dv]);
}

#[test]
fn positive_features_never_give_negative_weights() {
    let d = 5;
    for (scale, seed) in [(0.3, 0), (1.0, 1), (3.0, 2), (10.0, 3)] {
        let k = normal(40 * d, 0.0, scale, 20 + seed);
        let q = normal(d, 0.0, scale, 30 + seed);
        for variant in [Variant::Positive, Variant::Hyperbolic] {
            let f = favor(d, 16, Sampling::Iid, variant, seed);
            let mut w = vec![-1.0; 40];
            f.weights(view(&q, q.len()), view(&k, q.len()), row_mut(&mut w))
                .unwrap();
            assert!(w.iter().all(|&a| a >= 0.0), "{w:?}");
            assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            if scale <= 1.0 {
                let e = rel_err(&w, &reference_weights(&f, &q, &k));
                assert!(e < 1e-5, "{e}");
            }
        }
    }
}

#[test]
fn large_finite_inputs_stay_finite() {
    // Keys of norm ~ 60: the unstabilised features exp(ω·k' − |k'|²/2) underflow f32 entirely.
    let (l, d, dv) = (50, 16, 2);
    let q = normal(l * d, 0.0, 15.0, 40);
    let k = normal(l * d, 0.0, 15.0, 41);
    let v = normal(l * dv, 0.0, 1e30, 42);
    let f = FavorPlus::for_dim(d, 64, 43).unwrap();
    let mut out = vec![0.0; l * dv];
    f.attention(
        view(&q, d),
        view(&k, d),
        view(&v, dv),
        Mask::None,
        view_mut(&mut out, dv),
    )
    .unwrap();
    assert!(out.iter().all(|x| x.is_finite()));
    f.attention(
        view(&q, d),
        view(&k, d),
        view(&v, dv),
        Mask::Causal,
        view_mut(&mut out, dv),
    )
    .unwrap();
    assert!(out.iter().all(|x| x.is_finite()));
    // Every output is a convex combination of the values: bounded by the largest.
    let vmax = v.iter().fold(0.0f32, |a, x| a.max(x.abs()));
    assert!(out.iter().all(|x| x.abs() <= vmax * 1.0001));
}

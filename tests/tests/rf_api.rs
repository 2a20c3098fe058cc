//! Reproducibility, batches and threads, and every rejected input.

mod common;

use common::normal;
use nadaraya_rf::{
    CausalState, Error, FavorPlus, FourierFeatures, Mask, Projection, RowNorm, Sampling, Variant,
    attention, batch_attention, batch_attention_serial, causal_attention, smooth_fourier as smooth,
    weights,
};

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn same_seed_gives_bit_identical_output_and_redraw_moves_on() {
    let (l, d) = (100, 8);
    let q = normal(l * d, 0.0, 0.5, 1);
    let v = normal(l * d, 0.0, 1.0, 2);
    for sampling in [
        Sampling::Iid,
        Sampling::Orthogonal(RowNorm::Chi),
        Sampling::Orthogonal(RowNorm::SqrtD),
    ] {
        let make = || {
            let p = Projection::new(d, 20, sampling, 77).unwrap();
            FavorPlus::new(p, 2.0, Variant::Positive).unwrap()
        };
        let (a, b) = (make(), make());
        assert_eq!(bits(a.projection().rows()), bits(b.projection().rows()));
        let (mut oa, mut ob) = (vec![0.0; l * d], vec![0.0; l * d]);
        attention(&a, &q, &q, &v, d, d, &mut oa).unwrap();
        attention(&b, &q, &q, &v, d, d, &mut ob).unwrap();
        assert_eq!(bits(&oa), bits(&ob));

        let mut c = make();
        c.redraw().unwrap();
        assert_eq!(c.projection().draw(), 1);
        assert_ne!(c.projection().rows(), a.projection().rows());
        let direct = Projection::with_draw(d, 20, sampling, 77, 1).unwrap();
        assert_eq!(bits(c.projection().rows()), bits(direct.rows()));
        let other_seed = Projection::new(d, 20, sampling, 78).unwrap();
        assert_ne!(other_seed.rows(), a.projection().rows());
    }
}

#[test]
fn orthogonal_blocks_are_orthogonal_with_the_stated_norms() {
    let d = 6;
    let p = Projection::new(d, 15, Sampling::Orthogonal(RowNorm::SqrtD), 3).unwrap();
    let r = p.rows();
    let dot = |a: usize, b: usize| -> f64 {
        (0..d)
            .map(|j| f64::from(r[a * d + j]) * f64::from(r[b * d + j]))
            .sum()
    };
    for block in [0..6, 6..12, 12..15] {
        for i in block.clone() {
            assert!((dot(i, i) - d as f64).abs() < 1e-5);
            for j in block.clone().filter(|&j| j != i) {
                assert!(dot(i, j).abs() < 1e-5, "rows {i}, {j}");
            }
        }
    }
    // Chi norms: different per row, mean square d.
    let p = Projection::new(d, 600, Sampling::Orthogonal(RowNorm::Chi), 4).unwrap();
    let sq: Vec<f64> = p
        .rows()
        .chunks_exact(d)
        .map(|w| w.iter().map(|x| f64::from(*x).powi(2)).sum())
        .collect();
    let mean = sq.iter().sum::<f64>() / sq.len() as f64;
    assert!((mean - d as f64).abs() < 0.5, "{mean}");
    assert!(sq.windows(2).any(|w| (w[0] - w[1]).abs() > 0.1));
}

#[test]
fn batches_equal_per_head_calls_and_the_parallel_path_equals_serial() {
    let (h, l, d, dv) = (5, 40, 4, 3);
    let heads: Vec<FavorPlus> = (0..h as u64)
        .map(|s| FavorPlus::for_dim(d, 24, s).unwrap())
        .collect();
    let q = normal(h * l * d, 0.0, 0.8, 5);
    let k = normal(h * l * d, 0.0, 0.8, 6);
    let v = normal(h * l * dv, 0.0, 1.0, 7);
    for mask in [Mask::None, Mask::Causal] {
        let mut serial = vec![0.0; h * l * dv];
        batch_attention_serial(&heads, &q, &k, &v, d, dv, mask, &mut serial).unwrap();
        let mut par = vec![0.0; h * l * dv];
        batch_attention(&heads, &q, &k, &v, d, dv, mask, &mut par).unwrap();
        assert_eq!(bits(&serial), bits(&par), "{mask:?}");
        for (i, f) in heads.iter().enumerate() {
            let (qs, ks, vs) = (
                &q[i * l * d..(i + 1) * l * d],
                &k[i * l * d..(i + 1) * l * d],
                &v[i * l * dv..(i + 1) * l * dv],
            );
            let mut one = vec![0.0; l * dv];
            match mask {
                Mask::None => attention(f, qs, ks, vs, d, dv, &mut one).unwrap(),
                Mask::Causal => causal_attention(f, qs, ks, vs, d, dv, &mut one).unwrap(),
            }
            assert_eq!(bits(&one), bits(&serial[i * l * dv..(i + 1) * l * dv]));
        }
    }
    // The same first error from both paths: head 3 has a NaN key.
    let mut bad = k.clone();
    bad[3 * l * d + 5] = f32::NAN;
    let mut out = vec![0.0; h * l * dv];
    assert_eq!(
        batch_attention(&heads, &q, &bad, &v, d, dv, Mask::None, &mut out),
        Err(Error::NonFinite)
    );
    assert_eq!(
        batch_attention_serial(&heads, &q, &bad, &v, d, dv, Mask::None, &mut out),
        Err(Error::NonFinite)
    );
    assert_eq!(
        batch_attention(&[], &q, &k, &v, d, dv, Mask::None, &mut out),
        Err(Error::Empty)
    );
    assert_eq!(
        batch_attention(&heads, &q[..7], &k, &v, d, dv, Mask::None, &mut out),
        Err(Error::ShapeMismatch)
    );
    assert_eq!(
        batch_attention(&heads, &q, &k, &v, d, dv, Mask::None, &mut out[..10]),
        Err(Error::OutputTooSmall)
    );
}

#[test]
fn bad_shapes_and_non_finite_inputs_are_errors() {
    let f = FavorPlus::for_dim(2, 8, 0).unwrap();
    let x = [0.1, 0.2, 0.3, 0.4];
    let v = [1.0, 2.0];
    let mut out = [0.0; 2];
    let call = |q: &[f32], k: &[f32], v: &[f32], d, dv, out: &mut [f32]| {
        let a = attention(&f, q, k, v, d, dv, out);
        let c = causal_attention(&f, q, k, v, d, dv, out);
        assert_eq!(a, c);
        a
    };
    assert_eq!(call(&x, &x, &v, 2, 1, &mut out), Ok(()));
    assert_eq!(call(&x, &x, &v, 0, 1, &mut out), Err(Error::ZeroDimension));
    assert_eq!(call(&x, &x, &v, 2, 0, &mut out), Err(Error::ZeroDimension));
    assert_eq!(
        call(&x, &x, &v, 4, 1, &mut out),
        Err(Error::DimensionMismatch {
            expected: 2,
            found: 4
        })
    );
    assert_eq!(
        call(&x[..3], &x, &v, 2, 1, &mut out),
        Err(Error::ShapeMismatch)
    );
    assert_eq!(
        call(&x, &x, &v[..1], 2, 1, &mut out),
        Err(Error::ShapeMismatch)
    );
    assert_eq!(call(&x, &[], &[], 2, 1, &mut out), Err(Error::Empty));
    assert_eq!(
        call(&x, &x, &v, 2, 1, &mut out[..1]),
        Err(Error::OutputTooSmall)
    );
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut y = x;
        y[1] = bad;
        assert_eq!(call(&y, &x, &v, 2, 1, &mut out), Err(Error::NonFinite));
        assert_eq!(call(&x, &y, &v, 2, 1, &mut out), Err(Error::NonFinite));
        assert_eq!(
            call(&x, &x, &[1.0, bad], 2, 1, &mut out),
            Err(Error::NonFinite)
        );
    }
    // More causal queries than keys.
    assert_eq!(
        causal_attention(&f, &x, &x[..2], &v[..1], 2, 1, &mut out),
        Err(Error::ShapeMismatch)
    );
    // Keys so large that the exponent overflows f32.
    assert_eq!(
        attention(&f, &x, &[1e20, 1e20], &[1.0], 2, 1, &mut out),
        Err(Error::ScoreOverflow)
    );
    // Values so large that their sum overflows f32: their average does not, so it is the answer
    // (the sums are kept scaled; `tests/hostile.rs` checks this against `f64` on every path).
    assert_eq!(
        attention(&f, &x, &[0.0; 4], &[3e38, 3e38], 2, 1, &mut out),
        Ok(())
    );
    assert_eq!(out, [3e38, 3e38]);
    let mut w = [0.0; 2];
    assert_eq!(
        weights(&f, &x, &x, &mut w),
        Err(Error::DimensionMismatch {
            expected: 2,
            found: 4
        })
    );
    assert_eq!(
        weights(&f, &x[..2], &x[..3], &mut w),
        Err(Error::ShapeMismatch)
    );
    assert_eq!(
        weights(&f, &x[..2], &x, &mut w[..1]),
        Err(Error::OutputTooSmall)
    );
    assert_eq!(
        weights(&f, &[f32::NAN, 0.0], &x, &mut w),
        Err(Error::NonFinite)
    );
    assert_eq!(weights(&f, &x[..2], &[], &mut w), Err(Error::Empty));
}

#[test]
fn constructors_reject_bad_parameters() {
    assert_eq!(
        Projection::new(0, 4, Sampling::Iid, 0),
        Err(Error::ZeroDimension)
    );
    assert_eq!(
        Projection::new(4, 0, Sampling::Iid, 0),
        Err(Error::ZeroFeatures)
    );
    assert_eq!(
        Projection::new(usize::MAX, 2, Sampling::Iid, 0),
        Err(Error::TooManyFeatures)
    );
    let p = Projection::new(2, 4, Sampling::Iid, 0).unwrap();
    for tau in [0.0, -1.0, f32::NAN, f32::INFINITY, 1e-45] {
        assert_eq!(
            FavorPlus::new(p.clone(), tau, Variant::Positive),
            Err(Error::InvalidTemperature),
            "{tau}"
        );
    }
    for h in [0.0, -1.0, f32::NAN, f32::INFINITY, 1e-45] {
        assert_eq!(
            FourierFeatures::new(p.clone(), h),
            Err(Error::InvalidBandwidth),
            "{h}"
        );
    }
    let f = FourierFeatures::new(p, 1.0).unwrap();
    let mut out = [0.0];
    assert_eq!(
        smooth(&f, &[0.0, f32::NAN], &[0.0, 0.0], &[1.0], 2, 1, &mut out),
        Err(Error::NonFinite)
    );
    assert_eq!(
        smooth(&f, &[0.0], &[0.0, 0.0], &[1.0], 1, 1, &mut out),
        Err(Error::DimensionMismatch {
            expected: 2,
            found: 1
        })
    );
}

#[test]
fn the_step_api_rejects_bad_tokens_without_changing_state() {
    let f = FavorPlus::for_dim(2, 8, 1).unwrap();
    assert_eq!(CausalState::new(&f, 0).err(), Some(Error::ZeroDimension));
    let mut s = CausalState::new(&f, 1).unwrap();
    let mut y = [0.0];
    assert_eq!(s.query(&[0.0, 0.0], &mut y), Err(Error::Empty));
    s.step(&[0.1, 0.1], &[0.2, 0.3], &[4.0], &mut y).unwrap();
    let snapshot = s.clone();
    let mut y2 = [0.0];
    assert_eq!(
        s.step(&[0.1, 0.1], &[f32::NAN, 0.3], &[4.0], &mut y2),
        Err(Error::NonFinite)
    );
    assert_eq!(
        s.step(&[0.1], &[0.2, 0.3], &[4.0], &mut y2),
        Err(Error::DimensionMismatch {
            expected: 2,
            found: 1
        })
    );
    assert_eq!(
        s.absorb(&[0.2, 0.3], &[4.0, 1.0]),
        Err(Error::ShapeMismatch)
    );
    assert_eq!(
        s.step(&[0.1, 0.1], &[0.2, 0.3], &[4.0], &mut []),
        Err(Error::OutputTooSmall)
    );
    assert_eq!(s.len(), 1);
    s.query(&[0.1, 0.1], &mut y2).unwrap();
    let mut y3 = [0.0];
    let mut t = snapshot;
    t.query(&[0.1, 0.1], &mut y3).unwrap();
    assert_eq!(y2, y3);
    s.reset();
    assert!(s.is_empty());
}

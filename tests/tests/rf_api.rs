//! Reproducibility, batches and threads, and every rejected input.

mod common;

use common::{normal, view, view_mut};
use nadaraya_rf::{
    CausalState, Dim, Error, FavorPlus, FourierFeatures, GaussianFeatures, Mask, Projection,
    RowNorm, Rows, Sampling, Variant,
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
        let (qs, vs) = (view(&q, d), view(&v, d));
        a.attention(qs, qs, vs, Mask::None, view_mut(&mut oa, d))
            .unwrap();
        b.attention(qs, qs, vs, Mask::None, view_mut(&mut ob, d))
            .unwrap();
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
fn batches_equal_per_problem_calls_and_the_parallel_path_equals_serial() {
    let (h, l, d, dv) = (5, 40, 4, 3);
    let shared = FavorPlus::for_dim(d, 24, 9).unwrap();
    let heads: Vec<FavorPlus> = (0..h as u64)
        .map(|s| FavorPlus::for_dim(d, 24, s).unwrap())
        .collect();
    let q = normal(h * l * d, 0.0, 0.8, 5);
    let k = normal(h * l * d, 0.0, 0.8, 6);
    let v = normal(h * l * dv, 0.0, 1.0, 7);
    let (qs, ks, vs) = (view(&q, d), view(&k, d), view(&v, dv));
    for mask in [Mask::None, Mask::Causal] {
        let mut serial = vec![0.0; h * l * dv];
        let mut par = vec![0.0; h * l * dv];
        let mut hs = vec![0.0; h * l * dv];
        let mut hp = vec![0.0; h * l * dv];
        shared
            .attention_batch_serial(h, qs, ks, vs, mask, view_mut(&mut serial, dv))
            .unwrap();
        shared
            .attention_batch(h, qs, ks, vs, mask, view_mut(&mut par, dv))
            .unwrap();
        FavorPlus::attention_heads_serial(&heads, qs, ks, vs, mask, view_mut(&mut hs, dv)).unwrap();
        FavorPlus::attention_heads(&heads, qs, ks, vs, mask, view_mut(&mut hp, dv)).unwrap();
        assert_eq!(bits(&serial), bits(&par), "{mask:?}");
        assert_eq!(bits(&hs), bits(&hp), "{mask:?}");
        for i in 0..h {
            let (qi, ki, vi) = (
                qs.slice(i * l, (i + 1) * l).unwrap(),
                ks.slice(i * l, (i + 1) * l).unwrap(),
                vs.slice(i * l, (i + 1) * l).unwrap(),
            );
            let mut one = vec![0.0; l * dv];
            shared
                .attention(qi, ki, vi, mask, view_mut(&mut one, dv))
                .unwrap();
            assert_eq!(bits(&one), bits(&serial[i * l * dv..(i + 1) * l * dv]));
            heads[i]
                .attention(qi, ki, vi, mask, view_mut(&mut one, dv))
                .unwrap();
            assert_eq!(bits(&one), bits(&hs[i * l * dv..(i + 1) * l * dv]));
        }
    }
    // The same first error from every path: problem 3 has a NaN key.
    let mut bad = k.clone();
    bad[3 * l * d + 5] = f32::NAN;
    let bs = view(&bad, d);
    let mut out = vec![0.0; h * l * dv];
    for r in [
        shared.attention_batch(h, qs, bs, vs, Mask::None, view_mut(&mut out, dv)),
        shared.attention_batch_serial(h, qs, bs, vs, Mask::None, view_mut(&mut out, dv)),
        FavorPlus::attention_heads(&heads, qs, bs, vs, Mask::None, view_mut(&mut out, dv)),
    ] {
        assert_eq!(r, Err(Error::NonFinite));
    }
    // The batch's own shape errors: the core's, with the core's payloads.
    let core = |batch: usize, q: Rows<'_>, out: &mut [f32]| {
        let sm = nadaraya::SoftmaxDot::new(1.0).unwrap();
        let mut o = out.to_vec();
        nadaraya::attention_batch(&sm, batch, q, ks, vs, Mask::None, view_mut(&mut o, dv))
            .map_err(Error::from)
    };
    assert_eq!(
        FavorPlus::attention_heads(&[], qs, ks, vs, Mask::None, view_mut(&mut out, dv)),
        Err(Error::ZeroDimension)
    );
    let q7 = qs.slice(0, 7).unwrap();
    let r = shared.attention_batch(h, q7, ks, vs, Mask::None, view_mut(&mut out[..7 * dv], dv));
    assert_eq!(
        r,
        Err(Error::Shape {
            what: Dim::Batch,
            expected: h,
            found: 7
        })
    );
    assert_eq!(r, core(h, q7, &mut out[..7 * dv]));
    let r = shared.attention_batch(h, qs, ks, vs, Mask::None, view_mut(&mut out[..10 * dv], dv));
    assert_eq!(
        r,
        Err(Error::Shape {
            what: Dim::OutputRows,
            expected: h * l,
            found: 10
        })
    );
    assert_eq!(r, core(h, qs, &mut out[..10 * dv]));
    // A wrong output width is the problems' error, as in the core.
    let mut wide = vec![0.0; h * l * (dv + 1)];
    assert_eq!(
        shared.attention_batch(h, qs, ks, vs, Mask::None, view_mut(&mut wide, dv + 1)),
        Err(Error::Shape {
            what: Dim::OutputWidth,
            expected: dv,
            found: dv + 1
        })
    );
}

#[test]
fn bad_shapes_and_non_finite_inputs_are_errors() {
    let f = FavorPlus::for_dim(2, 8, 0).unwrap();
    let x = [0.1, 0.2, 0.3, 0.4];
    let v = [1.0, 2.0];
    let mut out = [0.0; 2];
    let call = |q: &[f32], k: &[f32], v: &[f32], d, dv, out: &mut [f32]| {
        let (q, k, v) = (view(q, d), view(k, d), view(v, dv));
        let a = f.attention(q, k, v, Mask::None, view_mut(out, dv));
        let c = f.attention(q, k, v, Mask::Causal, view_mut(out, dv));
        assert_eq!(a, c);
        a
    };
    let shape = |what, expected, found| {
        Err(Error::Shape {
            what,
            expected,
            found,
        })
    };
    assert_eq!(call(&x, &x, &v, 2, 1, &mut out), Ok(()));
    assert_eq!(
        Rows::new(&x, 0).map_err(Error::from),
        Err(Error::ZeroDimension)
    );
    assert_eq!(
        call(&x, &x, &v[..1], 4, 1, &mut out[..1]),
        shape(Dim::Width, 2, 4)
    );
    assert_eq!(
        call(&x, &x[..2], &v[..1], 1, 1, &mut out[..1]),
        shape(Dim::Width, 2, 1)
    );
    assert_eq!(
        call(&x, &x, &v[..1], 2, 1, &mut out),
        shape(Dim::ValueRows, 2, 1)
    );
    assert_eq!(call(&x, &[], &[], 2, 1, &mut out), Err(Error::Empty));
    assert_eq!(
        call(&x, &x, &v, 2, 1, &mut out[..1]),
        shape(Dim::OutputRows, 2, 1)
    );
    // The query width against the keys' (the core's rule).
    assert_eq!(
        f.attention(
            view(&x, 4),
            view(&x, 2),
            view(&v, 1),
            Mask::None,
            view_mut(&mut out[..1], 1)
        ),
        shape(Dim::QueryWidth, 2, 4)
    );
    // The output width against the values'.
    let mut o4 = [0.0; 4];
    assert_eq!(
        f.attention(
            view(&x, 2),
            view(&x, 2),
            view(&v, 1),
            Mask::None,
            view_mut(&mut o4, 2)
        ),
        shape(Dim::OutputWidth, 1, 2)
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
        f.attention(
            view(&x, 2),
            view(&x[..2], 2),
            view(&v[..1], 1),
            Mask::Causal,
            view_mut(&mut out, 1)
        ),
        shape(Dim::CausalQueries, 1, 2)
    );
    // Keys so large that the exponent overflows f32.
    assert_eq!(
        f.attention(
            view(&x, 2),
            view(&[1e20, 1e20], 2),
            view(&[1.0], 1),
            Mask::None,
            view_mut(&mut out, 1)
        ),
        Err(Error::ScoreOverflow)
    );
    // Values so large that their sum overflows f32: their average does not, so it is the answer
    // (the sums are kept scaled; `tests/hostile.rs` checks this against `f64` on every path).
    assert_eq!(
        f.attention(
            view(&x, 2),
            view(&[0.0; 4], 2),
            view(&[3e38, 3e38], 1),
            Mask::None,
            view_mut(&mut out, 1)
        ),
        Ok(())
    );
    assert_eq!(out, [3e38, 3e38]);
    let mut w = [0.0; 2];
    let weights = |q: &[f32], k: &[f32], d, w: &mut [f32], n| {
        f.weights(view(q, d), view(k, d), view_mut(w, n))
    };
    assert_eq!(weights(&x, &x, 4, &mut w[..1], 1), shape(Dim::Width, 2, 4));
    assert_eq!(
        weights(&x, &x[..2], 2, &mut w[..1], 1),
        shape(Dim::OutputRows, 2, 1)
    );
    assert_eq!(
        weights(&x[..2], &x, 2, &mut w[..1], 1),
        shape(Dim::OutputWidth, 2, 1)
    );
    assert_eq!(
        weights(&[f32::NAN, 0.0], &x, 2, &mut w, 2),
        Err(Error::NonFinite)
    );
    assert_eq!(weights(&x[..2], &[], 2, &mut w, 2), Err(Error::Empty));
    let mut w2 = [0.0; 4];
    weights(&x, &x, 2, &mut w2, 2).unwrap();
    for row in w2.chunks(2) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
}

/// Every `h` (resp. `τ`) the exact core accepts, the random features accept, and no other: the
/// one rule of the workspace (`Gaussian::check_bandwidth`, `SoftmaxDot::new`). Before, the
/// Fourier features accepted `h = 1e19` (rejected by the core) and the Gaussian features rejected
/// `h` below `1.09e-19` (accepted by the core).
#[test]
fn every_parameter_has_the_cores_validity_rule() {
    let p = Projection::new(2, 4, Sampling::Iid, 0).unwrap();
    let lo = 3.833_233_8e-20f32;
    let hi = 6.521_909e18f32;
    let below = f32::from_bits(lo.to_bits() - 1);
    let above = f32::from_bits(hi.to_bits() + 1);
    for h in [
        lo,
        below,
        hi,
        above,
        1e19,
        1e-19,
        5e-20,
        1.0,
        0.0,
        -1.0,
        1e-45,
        f32::NAN,
        f32::INFINITY,
        f32::MAX,
    ] {
        let core = nadaraya::Gaussian::new(h).map(|_| ()).map_err(Error::from);
        let fourier = FourierFeatures::new(p.clone(), h).map(|_| ());
        let positive = GaussianFeatures::new(p.clone(), h, Variant::Positive).map(|_| ());
        let hyp = GaussianFeatures::new(p.clone(), h, Variant::Hyperbolic).map(|_| ());
        assert_eq!(fourier, core, "Fourier, h = {h:e}");
        assert_eq!(positive, core, "positive, h = {h:e}");
        assert_eq!(hyp, core, "hyperbolic, h = {h:e}");
    }
    assert!(nadaraya::Gaussian::new(lo).is_ok() && nadaraya::Gaussian::new(below).is_err());
    let tlo = 2.938_737e-39f32;
    let thi = 8.507_059e37f32;
    for tau in [
        tlo,
        f32::from_bits(tlo.to_bits() - 1),
        thi,
        f32::from_bits(thi.to_bits() + 1),
        1.0,
        0.0,
        -1.0,
        1e-45,
        f32::NAN,
        f32::INFINITY,
    ] {
        let core = nadaraya::SoftmaxDot::new(tau)
            .map(|_| ())
            .map_err(Error::from);
        let favor = FavorPlus::new(p.clone(), tau, Variant::Positive).map(|_| ());
        assert_eq!(favor, core, "tau = {tau:e}");
    }
    // The smallest valid bandwidth works: points at its scale are smoothed like points at h = 1
    // scaled up (the features see x/h only).
    let h = lo;
    let x = [0.0, 0.0, h, 0.0, 0.0, 2.0 * h];
    let y = [1.0, 2.0, 3.0];
    let q = [0.5 * h, 0.5 * h];
    let p = Projection::new(2, 256, Sampling::Orthogonal(RowNorm::Chi), 3).unwrap();
    let mut small = [0.0];
    GaussianFeatures::new(p.clone(), h, Variant::Positive)
        .unwrap()
        .smooth(
            view(&q, 2),
            view(&x, 2),
            view(&y, 1),
            view_mut(&mut small, 1),
        )
        .unwrap();
    let mut unit = [0.0];
    let xs: Vec<f32> = x.iter().map(|v| v / h).collect();
    let qs: Vec<f32> = q.iter().map(|v| v / h).collect();
    GaussianFeatures::new(p, 1.0, Variant::Positive)
        .unwrap()
        .smooth(
            view(&qs, 2),
            view(&xs, 2),
            view(&y, 1),
            view_mut(&mut unit, 1),
        )
        .unwrap();
    assert!((small[0] - unit[0]).abs() < 1e-4, "{small:?} {unit:?}");
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
    let f = FourierFeatures::new(p, 1.0).unwrap();
    let mut out = [0.0];
    assert_eq!(
        f.smooth(
            view(&[0.0, f32::NAN], 2),
            view(&[0.0, 0.0], 2),
            view(&[1.0], 1),
            view_mut(&mut out, 1)
        ),
        Err(Error::NonFinite)
    );
    assert_eq!(
        f.smooth(
            view(&[0.0], 1),
            view(&[0.0, 0.0], 1),
            view(&[1.0, 1.0], 1),
            view_mut(&mut out, 1)
        ),
        Err(Error::Shape {
            what: Dim::Width,
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
        Err(Error::Shape {
            what: Dim::Width,
            expected: 2,
            found: 1
        })
    );
    assert_eq!(
        s.absorb(&[0.2, 0.3], &[4.0, 1.0]),
        Err(Error::Shape {
            what: Dim::Width,
            expected: 1,
            found: 2
        })
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

/// A state that owns (or shares) its features can live beside them, and answers exactly as one
/// that borrows them.
#[test]
fn a_causal_state_can_own_or_share_its_features() {
    use std::sync::Arc;
    struct Layer {
        features: Arc<FavorPlus>,
        state: CausalState<Arc<FavorPlus>>,
    }
    let f = FavorPlus::for_dim(3, 16, 4).unwrap();
    let shared = Arc::new(f.clone());
    let mut layer = Layer {
        state: CausalState::new(Arc::clone(&shared), 2).unwrap(),
        features: shared,
    };
    let mut owned: CausalState = CausalState::new(f.clone(), 2).unwrap();
    let mut borrowed = CausalState::new(&f, 2).unwrap();
    let (q, k, v) = (
        normal(30, 0.0, 0.5, 1),
        normal(30, 0.0, 0.5, 2),
        normal(20, 0.0, 1.0, 3),
    );
    for t in 0..10 {
        let (qt, kt, vt) = (&q[3 * t..][..3], &k[3 * t..][..3], &v[2 * t..][..2]);
        let (mut a, mut b, mut c) = ([0.0; 2], [0.0; 2], [0.0; 2]);
        layer.state.step(qt, kt, vt, &mut a).unwrap();
        owned.step(qt, kt, vt, &mut b).unwrap();
        borrowed.step(qt, kt, vt, &mut c).unwrap();
        assert_eq!((bits(&a), bits(&b)), (bits(&c), bits(&c)));
    }
    assert!(std::ptr::eq(layer.state.features(), &*layer.features));
}

/// `?` carries the core's errors into this crate's, with the same names and payloads.
#[test]
fn core_errors_convert_with_the_same_names() {
    fn build(h: f32, width: usize) -> Result<f32, Error> {
        let k = nadaraya::Gaussian::new(h)?;
        let x = Rows::new(&[0.0, 1.0, 2.0], width)?;
        let f = GaussianFeatures::for_dim(x.width(), 8, k.bandwidth(), 0)?;
        Ok(f.bandwidth())
    }
    assert_eq!(build(1.0, 1), Ok(1.0));
    assert_eq!(build(-1.0, 1), Err(Error::InvalidBandwidth));
    assert_eq!(
        build(1.0, 2),
        Err(Error::Shape {
            what: Dim::Flat,
            expected: 2,
            found: 3
        })
    );
    assert_eq!(build(1.0, 0), Err(Error::ZeroDimension));
    for (core, rf) in [
        (nadaraya::Error::Overflow, Error::Overflow),
        (nadaraya::Error::ScoreOverflow, Error::ScoreOverflow),
        (nadaraya::Error::NonFinite, Error::NonFinite),
        (nadaraya::Error::Empty, Error::Empty),
        (nadaraya::Error::OutputTooSmall, Error::OutputTooSmall),
        (
            nadaraya::Error::InvalidTemperature,
            Error::InvalidTemperature,
        ),
        (nadaraya::Error::Full, Error::Core(nadaraya::Error::Full)),
    ] {
        assert_eq!(Error::from(core), rf);
    }
}

/// Glob imports of both crates do not clash on the names a user calls: the core's free
/// functions, this crate's methods, and the shared types (the same items).
mod globs {
    use nadaraya::*;
    use nadaraya_rf::*;

    #[test]
    fn glob_imports_of_both_crates_compile_and_agree() -> Result<(), nadaraya_rf::Error> {
        let x = [[0.1f32, 0.2], [0.3, -0.1], [-0.2, 0.4]];
        let v = [[1.0f32], [2.0], [3.0]];
        let (x, v) = (Rows::from_arrays(&x), Rows::from_arrays(&v));
        let mut exact = [[0.0f32]; 3];
        attention(
            &SoftmaxDot::for_dim(2)?,
            x,
            x,
            v,
            Mask::Causal,
            RowsMut::from_arrays(&mut exact),
        )?;
        let f = FavorPlus::for_dim(2, 1024, 1)?;
        let mut rf = [[0.0f32]; 3];
        f.attention(x, x, v, Mask::Causal, RowsMut::from_arrays(&mut rf))?;
        assert_eq!(exact[0], [1.0]);
        for (a, b) in rf.iter().zip(&exact) {
            assert!((a[0] - b[0]).abs() < 0.05, "{a:?} {b:?}");
        }
        let k = f.kernel(&[0.1, 0.2], &[0.3, -0.1])?;
        assert!(k > 0.0);
        Ok(())
    }
}

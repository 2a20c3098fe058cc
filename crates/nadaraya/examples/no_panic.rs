//! Instantiates every public entry point with concrete types so that, built with
//! `RUSTFLAGS="--cfg nadaraya_assert_no_panic"` in release mode, the link fails if the compiler cannot
//! prove that one of them never panics (the `no-panic` crate's check, as libm uses it).
//!
//! The `const fn`s (kernel constructors, `Rows::new`, `RowsMut::new`) cannot carry the attribute
//! (`no-panic` refuses `const fn`); the wrappers below carry it for them.
//!
//! `scripts/no-panic` runs the check; without the cfg this is an ordinary program.

use nadaraya::{
    Epanechnikov, Error, Gaussian, Mask, MhaScratch, MhaWeights, MultiHeadAttention, OnlineSoftmax,
    Rows, RowsMut, Smoother, SoftmaxDot, Tricube, Uniform, attention, attention_batch,
    attention_shape, math, scalar, weights, weights_shape,
};
use std::hint::black_box;

#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
fn gaussian(h: f32) -> Result<Gaussian, Error> {
    Gaussian::check_bandwidth(h).and_then(|_| Gaussian::new(h))
}

#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
fn compact(h: f32) -> Result<(Epanechnikov, Tricube, Uniform), Error> {
    Ok((Epanechnikov::new(h)?, Tricube::new(h)?, Uniform::new(h)?))
}

#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
fn softmax_dot(tau: f32) -> Result<SoftmaxDot, Error> {
    SoftmaxDot::new(tau)
}

#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
fn rows(data: &[f32], width: usize) -> Result<Rows<'_>, Error> {
    Rows::new(data, width)
}

#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
fn rows_mut(data: &mut [f32], width: usize) -> Result<RowsMut<'_>, Error> {
    RowsMut::new(data, width)
}

#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
fn row_access(r: Rows<'_>, m: &mut RowsMut<'_>, i: usize) -> f32 {
    let a = r.row(i).and_then(|x| x.first()).copied().unwrap_or(0.0);
    let b = r.slice(0, i).map_or(0, |s| s.len());
    if let Some(x) = m.row_mut(i).and_then(|x| x.first_mut()) {
        *x = a;
    }
    a + b as f32 + r.iter().count() as f32
}

fn exit<T>(_: Error) -> T {
    std::process::exit(1)
}

fn main() {
    let g = gaussian(black_box(0.5)).unwrap_or_else(exit);
    let s = SoftmaxDot::for_dim(black_box(4))
        .and_then(|_| softmax_dot(black_box(2.0)))
        .unwrap_or_else(exit);
    let qv: Vec<f32> = black_box(vec![0.1; 8]);
    let kv: Vec<f32> = black_box(vec![0.2; 64]);
    let vv: Vec<f32> = black_box(vec![0.3; 32]);
    let mut ov = vec![0.0f32; 16];
    let (d, dv) = (black_box(4), black_box(2));
    let q = rows(&qv, d).unwrap_or_else(exit);
    let keys = rows(&kv, d).unwrap_or_else(exit);
    let values = rows(&vv, dv).unwrap_or_else(exit);
    let mut ok = true;
    {
        let mut out = rows_mut(&mut ov[..4], dv).unwrap_or_else(exit);
        ok &= attention_shape(q, keys, values, Mask::None, out.as_rows()).is_ok();
        ok &= attention(&g, q, keys, values, Mask::None, out.reborrow()).is_ok();
        ok &= attention(&s, q, keys, values, black_box(Mask::Causal), out.reborrow()).is_ok();
        ok &= scalar::attention(&s, q, keys, values, Mask::Causal, out.reborrow()).is_ok();
        ok &= attention_batch(
            &s,
            black_box(2),
            q,
            keys,
            values,
            Mask::None,
            out.reborrow(),
        )
        .is_ok();
        ok &= row_access(q, &mut out, black_box(1)) > 0.0;
        // The compact kernels: every score inside the support here (u = 0.4).
        let (ep, tc, un) = compact(black_box(0.5)).unwrap_or_else(exit);
        ok &= attention(&ep, q, keys, values, Mask::None, out.reborrow()).is_ok();
        ok &= attention(&tc, q, keys, values, Mask::Causal, out.reborrow()).is_ok();
        ok &= attention(&un, q, keys, values, Mask::None, out.reborrow()).is_ok();
        ok &= scalar::attention(&tc, q, keys, values, Mask::None, out.reborrow()).is_ok();
        let mut sc: Smoother<Tricube, 16, 4, 2> = Smoother::new(tc);
        ok &= sc.push(black_box([0.2; 4]), [1.0, 2.0]).is_ok();
        ok &= sc.predict(&black_box([0.1; 4])).is_ok();
        ok &= sc.predict(&black_box([9.0; 4])) == Err(Error::NoSupport);
        ok &= sc.predict_many(q, out.reborrow()).is_ok();
    }
    {
        let w = rows_mut(&mut ov, 16).unwrap_or_else(exit);
        ok &= weights_shape(q, keys, w.as_rows()).is_err();
        let mut w = rows_mut(&mut ov[..16], 16).unwrap_or_else(exit);
        let q1 = q.slice(0, 1).unwrap_or(q);
        ok &= weights(&g, q1, keys, w.reborrow()).is_ok();
        ok &= scalar::weights(&s, q1, keys, w.reborrow()).is_ok();
    }

    let mut sm: Smoother<Gaussian, 16, 4, 2> = Smoother::from_rows(
        g,
        keys.slice(0, 8).unwrap_or(keys),
        values.slice(0, 8).unwrap_or(values),
    )
    .unwrap_or_else(exit);
    for i in 0..20 {
        let x = [i as f32; 4];
        ok &= sm.push_evicting(black_box(x), [1.0, 2.0]).is_ok();
        let _ = black_box(sm.push(x, [0.0, 1.0]));
    }
    ok &= sm.predict(&black_box([0.5; 4])).is_ok();
    ok &= sm.weights(&black_box([0.5; 4]), &mut ov).is_ok();
    {
        let out = rows_mut(&mut ov[..4], dv).unwrap_or_else(exit);
        ok &= sm.predict_many(q, out).is_ok();
    }
    let _ = black_box(sm.pop_oldest());

    let mut a = OnlineSoftmax::<2>::new();
    let mut b = OnlineSoftmax::<2>::new();
    let q0 = q.row(0).unwrap_or(&[]);
    ok &= a.update(&s, q0, keys, values).is_ok();
    ok &= b.push_score(black_box(1.5), &[1.0, 2.0]).is_ok();
    ok &= a.merge(&b).finish().is_ok();

    let mut e = black_box([-1.0f32, -2.0, -3.0]);
    math::exp_neg_in_place(&mut e);
    ok &= math::exp_neg(black_box(-0.5)) > 0.0;

    let w = Box::new(MhaWeights::<4, 2, 2> {
        w_q: [[[0.1f32; 2]; 4]; 2],
        w_k: [[[0.1f32; 2]; 4]; 2],
        w_v: [[[0.1f32; 2]; 4]; 2],
        w_o: [[[0.1f32; 4]; 2]; 2],
    });
    let mha = MultiHeadAttention::new([s; 2], &w).unwrap_or_else(exit);
    let mut scratch = Box::new(MhaScratch::<8, 4, 2>::new());
    let x = black_box([[0.5f32; 4]; 3]);
    let mut y = [[0.0f32; 4]; 3];
    ok &= mha
        .forward(&x, black_box(Mask::Causal), &mut scratch, &mut y)
        .is_ok();

    println!(
        "no-panic entry points exercised: {}",
        if ok { "all Ok" } else { "some Err" }
    );
    std::process::exit(i32::from(!ok));
}

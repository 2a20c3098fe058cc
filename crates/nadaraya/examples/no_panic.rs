//! Instantiates every public entry point with concrete types so that, built with
//! `RUSTFLAGS="--cfg nadaraya_assert_no_panic"` in release mode, the link fails if the compiler cannot
//! prove that one of them never panics (the `no-panic` crate's check, as libm uses it).
//!
//! `scripts/no-panic` runs the check; without the cfg this is an ordinary program.

use nadaraya::{
    Gaussian, MultiHeadAttention, OnlineSoftmax, Smoother, SoftmaxDot, attention, attention_shape,
    causal_attention, math, scalar, weights, weights_shape,
};
use std::hint::black_box;

fn main() {
    let g = Gaussian::new(black_box(0.5)).unwrap_or_else(|_| std::process::exit(1));
    let s = SoftmaxDot::for_dim(black_box(4))
        .and_then(|_| SoftmaxDot::new(black_box(2.0)))
        .unwrap_or_else(|_| std::process::exit(1));
    let q: Vec<f32> = black_box(vec![0.1; 8]);
    let keys: Vec<f32> = black_box(vec![0.2; 64]);
    let values: Vec<f32> = black_box(vec![0.3; 32]);
    let mut out = vec![0.0f32; 16];
    let d = black_box(4);
    let dv = black_box(2);
    let mut ok = attention_shape(&q, &keys, &values, d, dv, &out).is_ok();
    ok &= weights_shape(&q[..d], &keys, &out).is_ok();
    ok &= attention(&g, &q, &keys, &values, d, dv, &mut out).is_ok();
    ok &= causal_attention(&s, &q, &keys, &values, d, dv, &mut out).is_ok();
    ok &= weights(&g, &q[..d], &keys, &mut out).is_ok();
    ok &= scalar::attention(&s, &q, &keys, &values, d, dv, &mut out).is_ok();
    ok &= scalar::weights(&s, &q[..d], &keys, &mut out).is_ok();

    let mut sm: Smoother<Gaussian, 16, 4, 2> = Smoother::new(g);
    for i in 0..20 {
        let x = [i as f32; 4];
        ok &= sm.push_evicting(black_box(x), [1.0, 2.0]).is_ok();
        let _ = black_box(sm.push(x, [0.0, 1.0]));
    }
    ok &= sm.predict(&black_box([0.5; 4])).is_ok();
    ok &= sm.weights(&black_box([0.5; 4]), &mut out).is_ok();
    let _ = black_box(sm.pop_oldest());

    let mut a = OnlineSoftmax::<2>::new();
    let mut b = OnlineSoftmax::<2>::new();
    ok &= a.update(&s, &q[..d], &keys[..32], &values[..16]).is_ok();
    ok &= b.push_score(black_box(1.5), &[1.0, 2.0]).is_ok();
    ok &= a.merge(&b).finish().is_ok();

    let mut e = black_box([-1.0f32, -2.0, -3.0]);
    math::exp_neg_in_place(&mut e);
    ok &= math::exp_neg(black_box(-0.5)) > 0.0;

    let w = [[[0.1f32; 2]; 4]; 2];
    let wo = [[[0.1f32; 4]; 2]; 2];
    let mha = MultiHeadAttention::<_, 4, 2, 2>::new([s; 2], w, w, w, wo)
        .unwrap_or_else(|_| std::process::exit(1));
    let x = black_box([[0.5f32; 4]; 3]);
    let mut y = [[0.0f32; 4]; 3];
    ok &= mha.forward::<8>(&x, black_box(true), &mut y).is_ok();

    println!(
        "no-panic entry points exercised: {}",
        if ok { "all Ok" } else { "some Err" }
    );
    std::process::exit(i32::from(!ok));
}

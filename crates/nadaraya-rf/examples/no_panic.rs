//! The no-panic check of `nadaraya-rf`'s public entry points, the core's mechanism
//! (`crates/nadaraya/examples/no_panic.rs`, `scripts/no-panic`): each entry point is called
//! through a wrapper, and the wrappers of the entry points that are provably panic-free carry
//! `#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]`. A release build with fat LTO, one
//! codegen unit and `RUSTFLAGS="--cfg nadaraya_assert_no_panic"` fails to link, naming the
//! wrapper, if one of them is not.
//!
//! Proved: the `CausalState` methods, `causal_attention` and `FavorPlus::log_features` (7 of 18).
//! The other wrappers carry a comment instead of the attribute; putting it back shows their link
//! errors (the crate README's "Panics" section says which and why).
//!
//! Without the cfg this is an ordinary program that calls every entry point once. With it, it
//! needs `no-panic` as a dev-dependency of `nadaraya-rf` under that cfg, as the core has it.

use nadaraya_rf::{
    CausalState, Error, FavorPlus, FourierFeatures, GaussianFeatures, Mask, Projection, RowNorm,
    Sampling, Variant, attention, batch_attention, batch_attention_serial, causal_attention,
    smooth, smooth_fourier, weights,
};
use std::hint::black_box;

// Not provable (README "Panics"): no attribute, so that the check links.
fn projection_new(d: usize, m: usize, s: Sampling, seed: u64) -> Result<Projection, Error> {
    Projection::new(d, m, s, seed)
}

// Not provable (README "Panics"): no attribute, so that the check links.
fn projection_redraw(p: &mut Projection) -> Result<(), Error> {
    p.redraw()
}

// Not provable (README "Panics"): no attribute, so that the check links.
fn favor_new(p: Projection, tau: f32, v: Variant) -> Result<FavorPlus, Error> {
    FavorPlus::new(p, tau, v)
}

// Not provable (README "Panics"): no attribute, so that the check links.
fn favor_redraw(f: &mut FavorPlus) -> Result<(), Error> {
    f.redraw()
}

#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
fn favor_log_features(f: &FavorPlus, x: &[f32], out: &mut [f32]) -> Result<(), Error> {
    f.log_features(x, out)
}

// Not provable (README "Panics"): no attribute, so that the check links.
#[allow(clippy::too_many_arguments)]
fn rf_attention(
    f: &FavorPlus,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    d: usize,
    dv: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    attention(f, q, k, v, d, dv, out)
}

#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
#[allow(clippy::too_many_arguments)]
fn rf_causal_attention(
    f: &FavorPlus,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    d: usize,
    dv: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    causal_attention(f, q, k, v, d, dv, out)
}

// Not provable (README "Panics"): no attribute, so that the check links.
fn rf_weights(f: &FavorPlus, q: &[f32], k: &[f32], out: &mut [f32]) -> Result<(), Error> {
    weights(f, q, k, out)
}

#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
fn state_new(f: &FavorPlus, dv: usize) -> Result<CausalState<'_>, Error> {
    CausalState::new(f, dv)
}

#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
fn state_step(s: &mut CausalState<'_>, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32]) -> bool {
    s.step(q, k, v, out).is_ok()
}

#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
fn state_absorb(s: &mut CausalState<'_>, k: &[f32], v: &[f32]) -> Result<(), Error> {
    s.absorb(k, v)
}

#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
fn state_query(s: &mut CausalState<'_>, q: &[f32], out: &mut [f32]) -> Result<(), Error> {
    s.query(q, out)
}

#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
fn state_reset(s: &mut CausalState<'_>) {
    s.reset();
}

// Not provable (README "Panics"): no attribute, so that the check links.
#[allow(clippy::too_many_arguments)]
fn rf_batch_serial(
    f: &[FavorPlus],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    d: usize,
    dv: usize,
    mask: Mask,
    out: &mut [f32],
) -> Result<(), Error> {
    batch_attention_serial(f, q, k, v, d, dv, mask, out)
}

// Not provable (README "Panics"): no attribute, so that the check links.
#[allow(clippy::too_many_arguments)]
fn rf_batch(
    f: &[FavorPlus],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    d: usize,
    dv: usize,
    mask: Mask,
    out: &mut [f32],
) -> Result<(), Error> {
    batch_attention(f, q, k, v, d, dv, mask, out)
}

// Not provable (README "Panics"): no attribute, so that the check links.
fn fourier_new(p: Projection, h: f32) -> Result<FourierFeatures, Error> {
    FourierFeatures::new(p, h)
}

// Not provable (README "Panics"): no attribute, so that the check links.
fn fourier_map(f: &FourierFeatures, x: &[f32], out: &mut [f32]) -> Result<(), Error> {
    f.map(x, out)
}

// Not provable (README "Panics"): no attribute, so that the check links.
#[allow(clippy::too_many_arguments)]
fn rf_smooth(
    f: &GaussianFeatures,
    q: &[f32],
    x: &[f32],
    y: &[f32],
    d: usize,
    dy: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    smooth(f, q, x, y, d, dy, out)
}

// Not provable (README "Panics"): no attribute, so that the check links.
#[allow(clippy::too_many_arguments)]
fn rf_smooth_fourier(
    f: &FourierFeatures,
    q: &[f32],
    x: &[f32],
    y: &[f32],
    d: usize,
    dy: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    smooth_fourier(f, q, x, y, d, dy, out)
}

fn main() {
    let (d, dv, m) = (black_box(4), black_box(2), black_box(16));
    let mut p = projection_new(d, m, black_box(Sampling::Orthogonal(RowNorm::Chi)), 1)
        .unwrap_or_else(|_| std::process::exit(1));
    let mut ok = projection_redraw(&mut p).is_ok();
    let mut f = favor_new(p.clone(), black_box(2.0), black_box(Variant::Positive))
        .unwrap_or_else(|_| std::process::exit(1));
    ok &= favor_redraw(&mut f).is_ok();
    let q: Vec<f32> = black_box(vec![0.1; 8 * d]);
    let k: Vec<f32> = black_box(vec![0.2; 8 * d]);
    let v: Vec<f32> = black_box(vec![0.3; 8 * dv]);
    let mut out = vec![0.0f32; 8 * m];
    ok &= favor_log_features(&f, &q[..d], &mut out).is_ok();
    ok &= rf_attention(&f, &q, &k, &v, d, dv, &mut out).is_ok();
    ok &= rf_causal_attention(&f, &q, &k, &v, d, dv, &mut out).is_ok();
    ok &= rf_weights(&f, &q[..d], &k, &mut out).is_ok();
    let mut s = state_new(&f, dv).unwrap_or_else(|_| std::process::exit(1));
    ok &= state_step(&mut s, &q[..d], &k[..d], &v[..dv], &mut out);
    ok &= state_absorb(&mut s, &k[..d], &v[..dv]).is_ok();
    ok &= state_query(&mut s, &q[..d], &mut out).is_ok();
    state_reset(&mut s);
    let heads = [f.clone(), f.clone()];
    ok &= rf_batch_serial(&heads, &q, &k, &v, d, dv, Mask::Causal, &mut out).is_ok();
    ok &= rf_batch(&heads, &q, &k, &v, d, dv, Mask::None, &mut out).is_ok();
    let g = fourier_new(p, black_box(1.0)).unwrap_or_else(|_| std::process::exit(1));
    ok &= fourier_map(&g, &q[..d], &mut out).is_ok();
    ok &= rf_smooth_fourier(&g, &q, &k, &v, d, dv, &mut out).is_ok();
    let gf = GaussianFeatures::for_dim(d, m, black_box(1.0), 2)
        .unwrap_or_else(|_| std::process::exit(1));
    ok &= rf_smooth(&gf, &q, &k, &v, d, dv, &mut out).is_ok();
    println!(
        "nadaraya-rf entry points exercised: {}",
        if ok { "all Ok" } else { "some Err" }
    );
    std::process::exit(i32::from(!ok));
}

//! `nadaraya_rf`: every entry point against an `f64` estimator on the SAME features (the
//! projection's rows), on arbitrary feature counts, temperatures, bandwidths, shapes (consistent
//! or not) and values: FAVOR+ (positive, hyperbolic) and OPRF `attention`, `causal_attention`,
//! `weights`, `CausalState::step`, `absorb` + `query`, `batch_attention_serial` and
//! `batch_attention`; the positive Gaussian `smooth` (every variant, centred as documented);
//! random-Fourier `smooth_fourier` with either mass guard.
//!
//! Invariants: no panic; constructors reject exactly the bad parameters; bad shapes are errors
//! and write nothing; non-finite input is an error; on finite, well-shaped input `Ok` means every
//! output finite, inside the values' range (FAVOR+: every implied weight is `≥ 0`) and within the
//! worst-case bound of the `f64` estimator on the same features (`nadaraya_fuzz::rf`), so wrong
//! weights that still sum to 1 fail; `weights` match the estimator's implied weights;
//! `ScoreOverflow` only where an exponent may overflow (and always where it must),
//! `Overflow` only where the exact result reaches `f32::MAX`; keys reversed give the same
//! verdict; `causal_attention`, `step` and `absorb` + `query` agree bit for bit; a rejected token
//! leaves a `CausalState` unchanged; a batch equals its problems one by one (a failed problem's
//! block zeros, the first error in order), and the parallel path equals the serial one bit for bit;
//! `smooth` always inside the responses' range; `smooth_fourier` inside the interval its `f64`
//! estimator allows, `Empty` (guard `Reject`) only where the estimated mass may be at or below
//! the floor, and always where it must.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use nadaraya_fuzz::rf::{PosFeatures, rf_row};
use nadaraya_fuzz::{EPS, F, NEAR_MAX, OVERFLOW_RISK, Param};
use nadaraya_rf::{
    CausalState, Error, FOURIER_MASS_FLOOR, FavorPlus, FourierFeatures, GaussianFeatures, Mask,
    MassGuard, Oprf, Projection, RowNorm, Rows, RowsMut, Sampling, Variant,
};

/// This target's slice convention (flat slices, widths `d`/`dv`, an output buffer at least
/// `M·dv` long) over the view API: the views of `q`, `keys`, `values` and of the first `M·dv`
/// floats of `out` (all of `out` if shorter, so that the shape error is the API's).
fn views<'a>(
    q: &'a [f32],
    keys: &'a [f32],
    values: &'a [f32],
    d: usize,
    dv: usize,
    out: &'a mut [f32],
) -> Result<(Rows<'a>, Rows<'a>, Rows<'a>, RowsMut<'a>), Error> {
    let (q, k, v) = (
        Rows::new(q, d)?,
        Rows::new(keys, d)?,
        Rows::new(values, dv)?,
    );
    let len = q.len().saturating_mul(dv);
    let o = if out.len() >= len {
        &mut out[..len]
    } else {
        out
    };
    Ok((q, k, v, RowsMut::new(o, dv)?))
}

/// `FavorPlus::attention` in this target's slice convention.
#[allow(clippy::too_many_arguments)]
fn attend(
    f: &FavorPlus,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    d: usize,
    dv: usize,
    mask: Mask,
    out: &mut [f32],
) -> Result<(), Error> {
    let (q, k, v, o) = views(q, keys, values, d, dv, out)?;
    f.attention(q, k, v, mask, o)
}

#[derive(Debug, Arbitrary)]
enum Features {
    /// Softmax features: temperature, variant (positive, hyperbolic, OPRF), OPRF's `ρ·8`.
    Favor(Param, u8, u8),
    /// Random Fourier features: bandwidth, and the `Floor` guard instead of `Reject`.
    Fourier(Param, bool),
    /// The positive Gaussian smoother: bandwidth, variant, OPRF's `ρ·8`.
    Gaussian(Param, u8, u8),
}

/// The variant `v` (OPRF with `ρ = rho/8`), and its `f64` features on `rows` at temperature `τ`.
fn variant(v: u8, rho: u8, rows: &[f32], d: usize, tau: f32) -> Option<(Variant, PosFeatures)> {
    Some(match v % 3 {
        0 => (Variant::Positive, PosFeatures::favor(rows, d, tau, false)),
        1 => (Variant::Hyperbolic, PosFeatures::favor(rows, d, tau, true)),
        _ => {
            let o = Oprf::from_rho(f64::from(rho) / 8.0)?;
            (Variant::Optimal(o), PosFeatures::oprf(rows, d, tau, o.a()))
        }
    })
}

#[derive(Debug, Arbitrary)]
struct Input {
    features: Features,
    /// Feature dimension and count (0 allowed: errors).
    fd: u8,
    fm: u8,
    sampling: u8,
    seed: u64,
    /// The call's `d` differs from the features' dimension when set.
    other_d: Option<u8>,
    dv: u8,
    m: u8,
    n: u8,
    skew: Option<[i8; 4]>,
    head: Vec<F>,
    gen_seed: u32,
    scale: F,
    offset: F,
}

const SENTINEL: f32 = -4321.5;

fuzz_target!(|input: Input| run(&input));

fn skewed(len: usize, skew: Option<[i8; 4]>, i: usize) -> usize {
    len.saturating_add_signed(skew.map_or(0, |s| isize::from(s[i] % 4)))
}

/// The verdict rule for `nadaraya-rf` (as `nadaraya_fuzz::Flags::check`, with its error names).
fn check_verdict(r: &Result<(), Error>, flags: nadaraya_fuzz::Flags, what: &str) -> bool {
    match r {
        Ok(()) => {
            assert!(
                !flags.certain || flags.near_max,
                "{what}: Ok although an exponent is beyond f32 range ({flags:?})"
            );
            true
        }
        Err(Error::ScoreOverflow) => {
            assert!(
                flags.risky,
                "{what}: ScoreOverflow for exponents far inside f32 range"
            );
            false
        }
        Err(Error::Overflow) => {
            assert!(
                flags.near_max,
                "{what}: Overflow although the exact result is representable in f32 \
                 ({flags:?})"
            );
            false
        }
        Err(e) => panic!("{what}: {e:?} for finite, well-shaped input"),
    }
}

fn same_verdict(
    a: &Result<(), Error>,
    b: &Result<(), Error>,
    flags: nadaraya_fuzz::Flags,
    what: &str,
) {
    assert!(
        a == b || flags.near_max,
        "{what}: the verdict depends on the order of the keys: {a:?} vs {b:?}"
    );
}

fn run(input: &Input) {
    let fd = usize::from(input.fd % 9);
    let fm = usize::from(input.fm % 65);
    let sampling = match input.sampling % 3 {
        0 => Sampling::Iid,
        1 => Sampling::Orthogonal(RowNorm::Chi),
        _ => Sampling::Orthogonal(RowNorm::SqrtD),
    };
    let p = match Projection::new(fd, fm, sampling, input.seed) {
        Ok(p) => p,
        Err(e) => {
            let want = if fd == 0 {
                Error::ZeroDimension
            } else {
                Error::ZeroFeatures
            };
            assert!(
                fd == 0 || fm == 0,
                "Projection::new({fd}, {fm}) failed: {e:?}"
            );
            assert_eq!(e, want, "Projection::new({fd}, {fm})");
            return;
        }
    };
    assert!(
        p.rows().iter().all(|v| v.is_finite()),
        "non-finite projection rows"
    );

    let d = input.other_d.map_or(fd, |o| usize::from(o % 9));
    let dv = usize::from(input.dv % 12);
    let mq = usize::from(input.m % 5);
    let n = usize::from(input.n % 80);
    let q_len = skewed(mq * d, input.skew, 0);
    let k_len = skewed(n * d, input.skew, 1);
    let v_len = skewed(n * dv, input.skew, 2);
    let o_len = skewed(mq * dv, input.skew, 3);
    let all = nadaraya_fuzz::fill(
        &input.head,
        q_len + k_len + v_len,
        input.gen_seed,
        input.scale.0,
        input.offset.0,
    );
    let (q, rest) = all.split_at(q_len);
    let (keys, values) = rest.split_at(k_len);
    let finite = all.iter().all(|v| v.is_finite());
    let shapes_ok = d == fd
        && d > 0
        && dv > 0
        && q_len.is_multiple_of(d)
        && k_len.is_multiple_of(d)
        && v_len.is_multiple_of(dv)
        && k_len / d == v_len / dv
        && k_len > 0
        && o_len >= q_len / d * dv;
    let call = Call {
        q,
        keys,
        values,
        d,
        dv,
        o_len,
        finite,
        shapes_ok,
    };

    match input.features {
        Features::Favor(Param(tau), v, rho) => {
            let rows = p.rows().to_vec();
            let Some((variant, pf)) = variant(v, rho, &rows, fd, tau) else {
                return;
            };
            let f = match FavorPlus::new(p, tau, variant) {
                Ok(f) => {
                    assert!(
                        nadaraya::SoftmaxDot::new(tau).is_ok(),
                        "accepted τ = {tau}, the core does not"
                    );
                    f
                }
                Err(e) => {
                    assert_eq!(e, Error::InvalidTemperature, "FavorPlus::new({tau})");
                    assert!(
                        nadaraya::SoftmaxDot::new(tau).is_err(),
                        "rejected a τ = {tau} the core accepts"
                    );
                    return;
                }
            };
            assert_eq!(pf.count(), f.features(), "feature count");
            favor(&f, &pf, &call);
        }
        Features::Fourier(Param(h), floor) => {
            let rows = p.rows().to_vec();
            // The core Gaussian's bandwidth rule, exactly (the same kernel).
            let valid = nadaraya::Gaussian::new(h).is_ok();
            let f = match FourierFeatures::new(p, h) {
                Ok(f) => {
                    assert!(
                        valid,
                        "FourierFeatures::new({h}) accepted what Gaussian::new rejects"
                    );
                    f
                }
                Err(e) => {
                    assert_eq!(e, Error::InvalidBandwidth, "FourierFeatures::new({h})");
                    assert!(!valid, "rejected h = {h} that Gaussian::new accepts");
                    return;
                }
            };
            let guard = if floor {
                MassGuard::Floor
            } else {
                MassGuard::Reject
            };
            fourier(&f.with_guard(guard), &rows, h, guard, &call);
        }
        Features::Gaussian(Param(h), v, rho) => {
            let rows = p.rows().to_vec();
            let tau = (f64::from(h) * f64::from(h)) as f32;
            let Some((variant, pf)) = variant(v, rho, &rows, fd, tau) else {
                return;
            };
            let f = match GaussianFeatures::new(p, h, variant) {
                Ok(f) => {
                    assert!(
                        nadaraya::Gaussian::new(h).is_ok(),
                        "accepted h = {h}, the core does not"
                    );
                    f
                }
                Err(e) => {
                    assert_eq!(e, Error::InvalidBandwidth, "GaussianFeatures::new({h})");
                    assert!(
                        nadaraya::Gaussian::new(h).is_err(),
                        "rejected an h = {h} the core accepts"
                    );
                    return;
                }
            };
            assert_eq!(f.features(), pf.count(), "feature count");
            gaussian(&f, &PosFeatures::gaussian(pf), &call);
        }
    }
}

/// One call's inputs.
struct Call<'a> {
    q: &'a [f32],
    keys: &'a [f32],
    values: &'a [f32],
    d: usize,
    dv: usize,
    o_len: usize,
    finite: bool,
    shapes_ok: bool,
}

impl Call<'_> {
    /// The checks that do not need a reference: bad shapes and non-finite input are errors, and a
    /// shape error writes nothing. Returns whether the values are to be checked.
    fn pre(&self, r: &Result<(), Error>, out: &[f32], shapes_ok: bool, what: &str) -> bool {
        if !shapes_ok {
            assert!(r.is_err(), "{what}: accepted bad shapes");
            if !matches!(
                r,
                Err(Error::NonFinite | Error::ScoreOverflow | Error::Overflow)
            ) {
                assert!(
                    out.iter().all(|v| *v == SENTINEL),
                    "{what}: shape error wrote {r:?}"
                );
            }
            return false;
        }
        if !self.finite {
            assert_eq!(*r, Err(Error::NonFinite), "{what}: non-finite input");
            return false;
        }
        true
    }
}

fn favor(f: &FavorPlus, pf: &PosFeatures, c: &Call<'_>) {
    let (d, dv) = (c.d, c.dv);
    // Non-causal.
    let mut out = vec![SENTINEL; c.o_len];
    let r = attend(f, c.q, c.keys, c.values, d, dv, Mask::None, &mut out);
    if c.pre(&r, &out, c.shapes_ok, "attention") {
        let mq = c.q.len() / d;
        let rows: Vec<_> =
            c.q.chunks_exact(d)
                .map(|qr| rf_row(pf, qr, c.keys, c.values, dv))
                .collect();
        // The keys' own exponents are computed even without a query: a zero query adds
        // their verdicts.
        let mut flags = rf_row(pf, &vec![0.0; d], c.keys, c.values, dv).flags;
        for row in &rows {
            flags |= row.flags;
        }
        if check_verdict(&r, flags, "attention") {
            for (t, row) in rows.iter().enumerate() {
                row.check_out(&out[t * dv..(t + 1) * dv], "attention");
            }
            assert!(
                out[mq * dv..].iter().all(|v| *v == SENTINEL),
                "attention wrote past M·dv"
            );
        }
        // The keys reversed: the same verdict and values within the bound.
        let n = c.keys.len() / d;
        let rk: Vec<f32> = (0..n)
            .rev()
            .flat_map(|i| c.keys[i * d..(i + 1) * d].to_vec())
            .collect();
        let rv: Vec<f32> = (0..n)
            .rev()
            .flat_map(|i| c.values[i * dv..(i + 1) * dv].to_vec())
            .collect();
        let mut o2 = vec![SENTINEL; c.o_len];
        let r2 = attend(f, c.q, &rk, &rv, d, dv, Mask::None, &mut o2);
        if check_verdict(&r2, flags, "attention, keys reversed") {
            for (t, row) in rows.iter().enumerate() {
                row.check_out(&o2[t * dv..(t + 1) * dv], "attention, keys reversed");
            }
        }
        same_verdict(&r, &r2, flags, "attention");
        batches(f, c, &r, &out);
    }
    // Causal, then the same tokens through CausalState.
    let mut out = vec![SENTINEL; c.o_len];
    let r = attend(f, c.q, c.keys, c.values, d, dv, Mask::Causal, &mut out);
    let causal_ok = c.shapes_ok && c.q.len() / d.max(1) <= c.keys.len() / d.max(1);
    if c.pre(&r, &out, causal_ok, "causal_attention") {
        let mq = c.q.len() / d;
        let mut flags = nadaraya_fuzz::Flags::default();
        let rows: Vec<_> = (0..mq)
            .map(|t| {
                let row = rf_row(
                    pf,
                    &c.q[t * d..(t + 1) * d],
                    &c.keys[..(t + 1) * d],
                    &c.values[..(t + 1) * dv],
                    dv,
                );
                flags |= row.flags;
                row
            })
            .collect();
        if check_verdict(&r, flags, "causal_attention") {
            for (t, row) in rows.iter().enumerate() {
                row.check_out(&out[t * dv..(t + 1) * dv], "causal_attention");
            }
            assert!(
                out[mq * dv..].iter().all(|v| *v == SENTINEL),
                "causal_attention wrote past M·dv"
            );
        }
        steps(f, c, &rows, &r, &out);
    }
    weights(f, pf, c);
}

/// `batch_attention_serial` and `batch_attention` over two problems: this call's and the same
/// with the second feature draw; each block as the problem alone, the first error in order, a
/// failed problem's block zeros, the parallel path bit-identical to the serial one.
fn batches(f: &FavorPlus, c: &Call<'_>, first: &Result<(), Error>, first_out: &[f32]) {
    let (d, dv) = (c.d, c.dv);
    let mq = c.q.len() / d;
    let mut g = f.clone();
    // `redraw` returns `()` or a `Result` (an allocation failure), by branch; either way g is usable.
    let _ = g.redraw();
    let mut second = vec![0.0f32; mq * dv];
    let r2 = attend(&g, c.q, c.keys, c.values, d, dv, Mask::None, &mut second);
    let heads = [f.clone(), g];
    let cat = |x: &[f32]| [x, x].concat();
    let (q2, k2, v2) = (cat(c.q), cat(c.keys), cat(c.values));
    let mut serial = vec![SENTINEL; 2 * mq * dv + 1];
    let mut par = vec![SENTINEL; 2 * mq * dv + 1];
    let (rs, rp) = {
        let (qs, ks, vs, os) = views(&q2, &k2, &v2, d, dv, &mut serial).expect("checked shapes");
        let rs = FavorPlus::attention_heads_serial(&heads, qs, ks, vs, Mask::None, os);
        let (qs, ks, vs, op) = views(&q2, &k2, &v2, d, dv, &mut par).expect("checked shapes");
        (
            rs,
            FavorPlus::attention_heads(&heads, qs, ks, vs, Mask::None, op),
        )
    };
    // The same two problems with one shared projection (`f` twice): its blocks are `first`'s.
    let mut shared = vec![SENTINEL; 2 * mq * dv + 1];
    let (qs, ks, vs, osh) = views(&q2, &k2, &v2, d, dv, &mut shared).expect("checked shapes");
    let rsh = f.attention_batch(2, qs, ks, vs, Mask::None, osh);
    assert_eq!(
        rsh, *first,
        "attention_batch: the error of its (equal) problems"
    );
    if first.is_ok() {
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for h in 0..2 {
            let block = &shared[h * mq * dv..(h + 1) * mq * dv];
            assert_eq!(
                bits(block),
                bits(&first_out[..mq * dv]),
                "shared batch block {h}"
            );
        }
    }
    let want = if first.is_err() { *first } else { r2 };
    assert_eq!(
        rs, want,
        "batch_attention_serial: the first error of its problems in order"
    );
    assert_eq!(rp, rs, "batch_attention vs batch_attention_serial");
    let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&par),
        bits(&serial),
        "batch_attention vs serial contents"
    );
    for (h, (res, o)) in [(first, &first_out[..mq * dv]), (&r2, &second[..])]
        .into_iter()
        .enumerate()
    {
        let block = &serial[h * mq * dv..(h + 1) * mq * dv];
        if res.is_ok() {
            assert_eq!(bits(block), bits(o), "batch block {h} vs the problem alone");
        } else {
            assert!(
                block.iter().all(|v| *v == 0.0),
                "failed problem {h}'s block is not zeros"
            );
        }
    }
    assert_eq!(serial[2 * mq * dv], SENTINEL, "batch wrote past its blocks");
}

/// Token by token through `CausalState::step`, and through `absorb` then `query` on a second
/// state: both bit-identical to `causal_attention` while it succeeds; a rejected token leaves
/// the state unchanged.
fn steps(
    f: &FavorPlus,
    c: &Call<'_>,
    rows: &[nadaraya_fuzz::rf::RfRow],
    causal: &Result<(), Error>,
    causal_out: &[f32],
) {
    let (d, dv) = (c.d, c.dv);
    let Ok(mut s) = CausalState::new(f, dv) else {
        panic!("CausalState::new({dv})");
    };
    let Ok(mut s2) = CausalState::new(f, dv) else {
        panic!("CausalState::new({dv})");
    };
    let mut out = vec![0.0; dv];
    let mut out2 = vec![0.0; dv];
    let mut failed = false;
    for (t, row) in rows.iter().enumerate() {
        let (qr, kr, vr) = (
            &c.q[t * d..(t + 1) * d],
            &c.keys[t * d..(t + 1) * d],
            &c.values[t * dv..(t + 1) * dv],
        );
        let before = s.len();
        let r = s.step(qr, kr, vr, &mut out);
        let ra = s2.absorb(kr, vr);
        let r2 = ra.and_then(|()| s2.query(qr, &mut out2));
        assert_eq!(r, r2, "step vs absorb + query at token {t}");
        if r.is_ok() {
            row.check_out(&out, "step");
            assert_eq!(s.len(), before + 1);
            let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&out),
                bits(&out2),
                "step vs absorb + query at token {t}"
            );
            if !failed {
                assert_eq!(
                    bits(&out),
                    bits(&causal_out[t * dv..(t + 1) * dv]),
                    "step vs causal_attention at token {t}"
                );
            }
        } else {
            check_verdict(&r, row.flags, "step");
            // Documented on `step`: an overflow of the query's own exponents is found before the
            // token is absorbed; one that needs the absorbed state after it, and the token stays.
            assert!(
                s.len() == before || s.len() == before + 1,
                "step: token count {} after {before}",
                s.len()
            );
            if s.len() != s2.len() {
                // Keep the two states on the same tokens.
                return;
            }
            if causal.is_ok() {
                panic!("step failed with {r:?} at token {t} where causal_attention succeeded");
            }
            failed = true;
        }
    }
}

fn weights(f: &FavorPlus, pf: &PosFeatures, c: &Call<'_>) {
    let d = c.d;
    if c.q.len() < d || d == 0 {
        return;
    }
    let qr = &c.q[..d];
    let n = c.keys.len() / d;
    let mut w = vec![SENTINEL; n + 1];
    let r = match (Rows::new(qr, d), Rows::new(c.keys, d)) {
        (Ok(qv), Ok(kv)) => match RowsMut::new(&mut w[..n.max(1)], n.max(1)) {
            Ok(o) => f.weights(qv, kv, o),
            Err(e) => Err(e.into()),
        },
        (Err(e), _) | (_, Err(e)) => Err(e.into()),
    };
    let ok_shape = d == f.dim() && c.keys.len().is_multiple_of(d) && n > 0;
    let finite = qr.iter().chain(c.keys).all(|v| v.is_finite());
    if !(ok_shape && finite) {
        assert!(r.is_err(), "weights accepted bad input");
        return;
    }
    let row = rf_row(pf, qr, c.keys, &vec![0.0; n], 1);
    let flags = nadaraya_fuzz::Flags {
        near_max: false,
        ..row.flags
    };
    if check_verdict(&r, flags, "weights") {
        row.check_weights(&w[..n], "weights");
        assert_eq!(w[n], SENTINEL, "weights wrote past N");
    }
}

/// Random-Fourier `smooth` against the same estimator in `f64`:
/// `Σ_i κ_i y_i / max(Σ_i κ_i, m·N·FOURIER_MASS_FLOOR)` with `κ_i = Σ_r cos(ω_r·(q − x_i)/h)`,
/// numerator and denominator each within their worst-case rounding, the quotient checked to lie
/// in the interval they span.
fn fourier(f: &FourierFeatures, rows: &[f32], h: f32, guard: MassGuard, c: &Call<'_>) {
    let (d, dy) = (c.d, c.dv);
    let mut out = vec![SENTINEL; c.o_len];
    let r =
        views(c.q, c.keys, c.values, d, dy, &mut out).and_then(|(q, k, v, o)| f.smooth(q, k, v, o));
    if !c.pre(&r, &out, c.shapes_ok, "smooth_fourier") {
        return;
    }
    let m = rows.len() / d;
    let n = c.keys.len() / d;
    let inv_h = 1.0 / f64::from(h);
    // Phases ω_r·x/h with their error bounds; risky / certain overflow.
    let (mut risky, mut certain) = (false, false);
    let mut phases = |x: &[f32]| -> Vec<(f64, f64)> {
        rows.chunks_exact(d)
            .map(|w| {
                let (mut s, mut abs) = (0.0f64, 0.0f64);
                for (&wj, &xj) in w.iter().zip(x) {
                    let t = f64::from(wj) * inv_h * f64::from(xj);
                    s += t;
                    abs += t.abs();
                }
                let e = (d as f64 + 4.0) * EPS * abs;
                risky |= abs > OVERFLOW_RISK;
                certain |= s.abs() - e > f64::from(f32::MAX);
                (s, e)
            })
            .collect()
    };
    let kp: Vec<Vec<(f64, f64)>> = c.keys.chunks_exact(d).map(&mut phases).collect();
    let qp: Vec<Vec<(f64, f64)>> = c.q.chunks_exact(d).map(&mut phases).collect();
    let floor = m as f64 * n as f64 * f64::from(FOURIER_MASS_FLOOR);
    let round = (n as f64 + 2.0 * m as f64 + 8.0) * 2.0 * EPS;
    let mut intervals = Vec::new();
    let mut near_max = false;
    // Guard `Reject`: a query whose estimate may be at or below the floor may be `Empty`; one
    // whose estimate must be, must.
    let (mut empty_ok, mut empty_must) = (false, false);
    for qt in &qp {
        let mut den = 0.0f64;
        let mut dden = 0.0f64;
        let mut num = vec![0.0f64; dy];
        let mut dnum = vec![0.0f64; dy];
        for (kt, y) in kp.iter().zip(c.values.chunks_exact(dy)) {
            let (mut kappa, mut dk) = (0.0f64, 0.0f64);
            for (&(a, ea), &(b, eb)) in qt.iter().zip(kt) {
                kappa += (a - b).cos();
                dk += (ea + eb + 4.0 * EPS).min(2.0);
            }
            den += kappa;
            dden += dk + round * 2.0 * m as f64;
            for j in 0..dy {
                let v = f64::from(y[j]);
                num[j] += kappa * v;
                dnum[j] += (dk + round * 2.0 * m as f64) * v.abs();
            }
        }
        let reject = guard == MassGuard::Reject;
        empty_ok |= reject && den - dden <= floor;
        empty_must |= reject && den + dden <= floor;
        let (dlo, dhi) = ((den - dden).max(floor), (den + dden).max(floor));
        let row: Vec<(f64, f64)> = (0..dy)
            .map(|j| {
                let (nlo, nhi) = (num[j] - dnum[j], num[j] + dnum[j]);
                let c = [nlo / dlo, nlo / dhi, nhi / dlo, nhi / dhi];
                let lo = c.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = c.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                near_max |= lo.abs().max(hi.abs()) >= NEAR_MAX;
                (lo, hi)
            })
            .collect();
        intervals.push(row);
    }
    let flags = nadaraya_fuzz::Flags {
        risky,
        certain,
        near_max,
        ..Default::default()
    };
    if r == Err(Error::Empty) {
        assert!(
            empty_ok,
            "smooth_fourier: Empty although every estimated mass is above the floor"
        );
        return;
    }
    if check_verdict(&r, flags, "smooth_fourier") {
        assert!(
            !empty_must,
            "smooth_fourier: Ok although an estimated mass is at or below the floor"
        );
        for (t, row) in intervals.iter().enumerate() {
            for (j, &(lo, hi)) in row.iter().enumerate() {
                let g = out[t * dy + j];
                assert!(g.is_finite(), "smooth_fourier: non-finite output {g}");
                let g = f64::from(g);
                let sl = 4.0 * EPS * g.abs() + 1e-37;
                assert!(
                    g >= lo - sl && g <= hi + sl,
                    "smooth_fourier: {g:e} at query {t}, coordinate {j} outside [{lo:e}, {hi:e}], what the \
                     f64 estimator on the same features allows"
                );
            }
        }
        let mq = c.q.len() / d;
        assert!(
            out[mq * dy..].iter().all(|v| *v == SENTINEL),
            "smooth_fourier wrote past M·dy"
        );
    }
}

/// The positive Gaussian `smooth` against the estimator on the same features at the points
/// moved by the samples' midrange (computed as documented, in `f32`): `Ok` inside the responses'
/// range and within the bound; `ScoreOverflow` only by the rule (always where a moved point is
/// beyond `f32` range); keys reversed give the same verdict and values.
fn gaussian(f: &GaussianFeatures, pf: &PosFeatures, c: &Call<'_>) {
    let (d, dy) = (c.d, c.dv);
    let mut out = vec![SENTINEL; c.o_len];
    let r =
        views(c.q, c.keys, c.values, d, dy, &mut out).and_then(|(q, k, v, o)| f.smooth(q, k, v, o));
    if !c.pre(&r, &out, c.shapes_ok, "smooth") {
        return;
    }
    let mut lo = vec![f32::INFINITY; d];
    let mut hi = vec![f32::NEG_INFINITY; d];
    for row in c.keys.chunks_exact(d) {
        for j in 0..d {
            lo[j] = lo[j].min(row[j]);
            hi[j] = hi[j].max(row[j]);
        }
    }
    let centre: Vec<f32> = lo
        .iter()
        .zip(&hi)
        .map(|(&l, &h)| ((f64::from(l) + f64::from(h)) / 2.0) as f32)
        .collect();
    let moved = |x: &[f32]| -> Vec<f32> {
        x.chunks_exact(d)
            .flat_map(|row| {
                row.iter()
                    .zip(&centre)
                    .map(|(&v, &c)| v - c)
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let (mq, mk) = (moved(c.q), moved(c.keys));
    if !mq.iter().chain(&mk).all(|v| v.is_finite()) {
        assert_eq!(
            r,
            Err(Error::ScoreOverflow),
            "smooth: a moved point beyond f32 range"
        );
        return;
    }
    let mut flags = rf_row(pf, &vec![0.0; d], &mk, c.values, dy).flags;
    let rows: Vec<_> = mq
        .chunks_exact(d)
        .map(|qr| {
            let row = rf_row(pf, qr, &mk, c.values, dy);
            flags |= row.flags;
            row
        })
        .collect();
    if check_verdict(&r, flags, "smooth") {
        for (t, row) in rows.iter().enumerate() {
            row.check_out(&out[t * dy..(t + 1) * dy], "smooth");
        }
        assert!(
            out[c.q.len() / d * dy..].iter().all(|v| *v == SENTINEL),
            "smooth wrote past M·dy"
        );
    }
    let n = c.keys.len() / d;
    let rk: Vec<f32> = (0..n)
        .rev()
        .flat_map(|i| c.keys[i * d..(i + 1) * d].to_vec())
        .collect();
    let rv: Vec<f32> = (0..n)
        .rev()
        .flat_map(|i| c.values[i * dy..(i + 1) * dy].to_vec())
        .collect();
    let mut o2 = vec![SENTINEL; c.o_len];
    let r2 = views(c.q, &rk, &rv, d, dy, &mut o2).and_then(|(q, k, v, o)| f.smooth(q, k, v, o));
    if check_verdict(&r2, flags, "smooth, keys reversed") {
        for (t, row) in rows.iter().enumerate() {
            row.check_out(&o2[t * dy..(t + 1) * dy], "smooth, keys reversed");
        }
    }
    same_verdict(&r, &r2, flags, "smooth");
}

//! `nadaraya_rf`: FAVOR+ `attention`, `causal_attention`, `weights`, the `CausalState` step API
//! and random-Fourier-feature `smooth`, on arbitrary feature counts, temperatures, bandwidths,
//! shapes (consistent or not) and values.
//!
//! Invariants: no panic; constructors reject bad parameters with the documented error; finite,
//! well-shaped input gives finite output or an overflow error (`ScoreOverflow`,
//! `OutputOverflow`); non-finite input gives an `Err`; FAVOR+ outputs are convex combinations of
//! the values (every implied weight is `≥ 0`), so they lie inside the values' range up to
//! rounding; `weights` are `≥ 0` and sum to 1 up to rounding; shape errors write nothing.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use nadaraya_fuzz::{EPS, F, Param};
use nadaraya_rf::{
    CausalState, Error, FavorPlus, FourierFeatures, Projection, RowNorm, Sampling, Variant,
};

#[derive(Debug, Arbitrary)]
enum Features {
    Favor(Param, bool),
    Fourier(Param),
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
    let mut state = input.gen_seed | 1;
    let all: Vec<f32> = (0..q_len + k_len + v_len)
        .map(|i| match input.head.get(i) {
            Some(h) => h.0,
            None => {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let u = (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0;
                input.offset.0 + input.scale.0 * u
            }
        })
        .collect();
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

    match input.features {
        Features::Favor(Param(tau), hyperbolic) => {
            let variant = if hyperbolic {
                Variant::Hyperbolic
            } else {
                Variant::Positive
            };
            let f = match FavorPlus::new(p, tau, variant) {
                Ok(f) => f,
                Err(e) => {
                    assert_eq!(e, Error::InvalidTemperature, "FavorPlus::new({tau})");
                    assert!(
                        !(1e-30..=1e30).contains(&tau),
                        "rejected ordinary τ = {tau}"
                    );
                    return;
                }
            };
            let mut out = vec![SENTINEL; o_len];
            let r = nadaraya_rf::attention(&f, q, keys, values, d, dv, &mut out);
            check(
                r,
                &out,
                q_len,
                d,
                dv,
                keys,
                values,
                finite,
                shapes_ok,
                true,
                "attention",
            );
            let mut out = vec![SENTINEL; o_len];
            let r = nadaraya_rf::causal_attention(&f, q, keys, values, d, dv, &mut out);
            let causal_ok = shapes_ok && q_len / d <= k_len / d;
            if causal_ok {
                check(
                    r,
                    &out,
                    q_len,
                    d,
                    dv,
                    keys,
                    values,
                    finite,
                    true,
                    true,
                    "causal_attention",
                );
            } else {
                assert!(r.is_err(), "causal_attention accepted bad shapes");
            }
            weights(&f, q, keys, d, fd);
            if shapes_ok && q_len >= d {
                steps(&f, q, keys, values, d, dv);
            }
        }
        Features::Fourier(Param(h)) => {
            let f = match FourierFeatures::new(p, h) {
                Ok(f) => f,
                Err(e) => {
                    assert_eq!(e, Error::InvalidBandwidth, "FourierFeatures::new({h})");
                    assert!(!(1e-30..=1e30).contains(&h), "rejected ordinary h = {h}");
                    return;
                }
            };
            let mut out = vec![SENTINEL; o_len];
            let r = nadaraya_rf::smooth(&f, q, keys, values, d, dv, &mut out);
            // Random Fourier weights can be negative: finite, not convex.
            check(
                r, &out, q_len, d, dv, keys, values, finite, shapes_ok, false, "smooth",
            );
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn check(
    r: Result<(), Error>,
    out: &[f32],
    q_len: usize,
    d: usize,
    dv: usize,
    keys: &[f32],
    values: &[f32],
    finite: bool,
    shapes_ok: bool,
    convex: bool,
    what: &str,
) {
    if !shapes_ok {
        assert!(r.is_err(), "{what}: accepted bad shapes");
        if !matches!(
            r,
            Err(Error::NonFinite | Error::ScoreOverflow | Error::OutputOverflow)
        ) {
            assert!(
                out.iter().all(|v| *v == SENTINEL),
                "{what}: shape error wrote {r:?}"
            );
        }
        return;
    }
    if !finite {
        assert!(r.is_err(), "{what}: Ok for non-finite input");
        return;
    }
    match r {
        Ok(()) => {
            let mq = q_len / d;
            let n = keys.len() / d;
            for row in out[..mq * dv].chunks_exact(dv) {
                for (j, &y) in row.iter().enumerate() {
                    assert!(
                        y.is_finite(),
                        "{what}: non-finite output {y} from finite input"
                    );
                    if convex {
                        let col = values.iter().skip(j).step_by(dv).map(|v| f64::from(*v));
                        let (lo, hi, vmax) = col.fold(
                            (f64::INFINITY, f64::NEG_INFINITY, 0.0f64),
                            |(l, h, m), v| (l.min(v), h.max(v), m.max(v.abs())),
                        );
                        let slack = (n as f64 + 64.0) * 4.0 * EPS * vmax + 1e-37;
                        let y = f64::from(y);
                        assert!(
                            y >= lo - slack && y <= hi + slack,
                            "{what}: {y:e} outside the values' range [{lo:e}, {hi:e}]"
                        );
                    }
                }
            }
            assert!(
                out[mq * dv..].iter().all(|v| *v == SENTINEL),
                "{what}: wrote past M·dv"
            );
        }
        Err(Error::ScoreOverflow | Error::OutputOverflow) => {}
        Err(e) => panic!("{what}: {e:?} for finite, well-shaped input"),
    }
}

fn weights(f: &FavorPlus, q: &[f32], keys: &[f32], d: usize, fd: usize) {
    if q.len() < d || d == 0 {
        return;
    }
    let qr = &q[..d];
    let n = keys.len() / d;
    let mut w = vec![SENTINEL; n + 1];
    let r = nadaraya_rf::weights(f, qr, keys, &mut w);
    let ok_shape = d == fd && keys.len().is_multiple_of(d) && n > 0;
    match r {
        Ok(()) => {
            assert!(
                ok_shape && qr.iter().chain(keys).all(|v| v.is_finite()),
                "weights accepted bad input"
            );
            let sum: f64 = w[..n].iter().map(|v| f64::from(*v)).sum();
            assert!(
                w[..n].iter().all(|v| v.is_finite() && *v >= 0.0),
                "weights {w:?}"
            );
            assert!(
                (sum - 1.0).abs() <= 1e-5f64.max((n as f64 + 64.0) * 2.0 * EPS),
                "weights sum {sum}"
            );
            assert_eq!(w[n], SENTINEL, "weights wrote past N");
        }
        Err(Error::ScoreOverflow) => {}
        Err(_) => assert!(
            !ok_shape || !qr.iter().chain(keys).all(|v| v.is_finite()),
            "weights: {r:?}"
        ),
    }
}

/// Token by token through `CausalState::step`: each output a convex combination of the values
/// seen so far, or an overflow error that leaves the state unchanged.
fn steps(f: &FavorPlus, q: &[f32], keys: &[f32], values: &[f32], d: usize, dv: usize) {
    let Ok(mut s) = CausalState::new(f, dv) else {
        panic!("CausalState::new({dv})");
    };
    let mut out = vec![0.0; dv];
    let mut lo = vec![f64::INFINITY; dv];
    let mut hi = vec![f64::NEG_INFINITY; dv];
    let mut vmax = vec![0.0f64; dv];
    for ((qr, kr), vr) in q
        .chunks_exact(d)
        .zip(keys.chunks_exact(d))
        .zip(values.chunks_exact(dv))
    {
        let before = s.len();
        match s.step(qr, kr, vr, &mut out) {
            Ok(()) => {
                for j in 0..dv {
                    let v = f64::from(vr[j]);
                    lo[j] = lo[j].min(v);
                    hi[j] = hi[j].max(v);
                    vmax[j] = vmax[j].max(v.abs());
                    let y = f64::from(out[j]);
                    let slack = (s.len() as f64 + 64.0) * 4.0 * EPS * vmax[j] + 1e-37;
                    assert!(out[j].is_finite(), "step: non-finite output");
                    assert!(
                        y >= lo[j] - slack && y <= hi[j] + slack,
                        "step: {y:e} outside [{:e}, {:e}]",
                        lo[j],
                        hi[j]
                    );
                }
                assert_eq!(s.len(), before + 1);
            }
            Err(Error::NonFinite) => {
                assert!(
                    !qr.iter().chain(kr).chain(vr).all(|v| v.is_finite()),
                    "step: NonFinite for finite token"
                );
                assert_eq!(s.len(), before, "rejected token changed the state");
            }
            Err(Error::ScoreOverflow | Error::OutputOverflow) => {
                // Documented on `step`: an overflow of the query's own exponents is found before
                // the token is absorbed (reproducer in tests/tests/fuzz_regressions.rs); one that
                // needs the absorbed state (exponents plus key stabilisers, or the output) is
                // found after it, and the token stays. Either is allowed here.
                if s.len() == before + 1 {
                    for j in 0..dv {
                        let v = f64::from(vr[j]);
                        lo[j] = lo[j].min(v);
                        hi[j] = hi[j].max(v);
                        vmax[j] = vmax[j].max(v.abs());
                    }
                } else {
                    assert_eq!(s.len(), before, "step: rejected token was absorbed");
                }
            }
            Err(e) => panic!("step: {e:?}"),
        }
    }
}

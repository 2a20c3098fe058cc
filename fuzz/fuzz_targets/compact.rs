//! The compact-support kernels (`Epanechnikov`, `Tricube`, `Uniform`) through `attention`, its
//! scalar twin, `weights` and `fit::loo_cv`, on arbitrary bandwidths, shapes and values.
//!
//! Invariants: no panic; the constructor's verdict (a bandwidth that is not finite and `> 0` is
//! `InvalidBandwidth`); `NonFinite` for any NaN or infinite input; a sample outside the support
//! (`u ≥ 1` in `f64`, beyond the rounding band of `u²`) has weight exactly 0; `NoSupport` exactly
//! where no sample of a row is inside the support (both verdicts allowed where the only samples
//! that may be inside sit in the rounding band); `Ok` rows finite, inside the range of the
//! values of the samples that may have weight, and, where the weights are well inside the
//! support, within the error bound of the `f64` reference; the keys reversed give the same
//! verdict and values within the bound; SIMD and scalar agree. `loo_cv` is `NoSupport` exactly
//! where some held-out sample has no other sample in its support (same band).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use nadaraya::fit::{self, Bandwidth};
use nadaraya::{Epanechnikov, Error, Rows, Tricube, Uniform};
use nadaraya_fuzz::core_flat::{self as flat, scalar};
use nadaraya_fuzz::{EPS, F, Param};

#[derive(Debug, Arbitrary)]
struct Input {
    /// 0 Epanechnikov, 1 tricube, 2 uniform.
    which: u8,
    h: Param,
    d: u8,
    dv: u8,
    m: u8,
    n: u8,
    /// The first elements of `q ++ keys ++ values`, as given.
    head: Vec<F>,
    /// The rest: `offset + scale · u`, `u` uniform in `[-1, 1]` from a xorshift seeded here.
    seed: u32,
    scale: F,
    offset: F,
}

fuzz_target!(|input: Input| {
    match input.which % 3 {
        0 => run::<Epanechnikov>(&input, 0),
        1 => run::<Tricube>(&input, 1),
        _ => run::<Uniform>(&input, 2),
    }
});

/// The profile `K(v)` at `v = u²` in `f64` (its normalising constant cancels).
fn profile(which: u8, v: f64) -> f64 {
    if v >= 1.0 {
        return 0.0;
    }
    match which {
        0 => 1.0 - v,
        1 => {
            let t = 1.0 - v * v.sqrt();
            t * t * t
        }
        _ => 1.0,
    }
}

/// `|dK/dv|` bounded on `[0, 1)`: Epanechnikov 1, tricube `4.5 · v^½ (1 - v^{3/2})²` ≤ 1.5,
/// uniform 0 (but its jump at the edge is the rounding band's business).
fn slope(which: u8) -> f64 {
    match which {
        0 => 1.0,
        1 => 1.5,
        _ => 0.0,
    }
}

/// One sample seen from one query, in `f64`.
#[derive(Clone, Copy, Debug)]
struct Seen {
    /// `u² = |q - x|² / h²`.
    v: f64,
    /// Whether the rounded `u²` may land on the other side of 1.
    edge: bool,
}

fn seen(q: &[f32], x: &[f32], h: f64) -> Seen {
    let d2: f64 = q
        .iter()
        .zip(x)
        .map(|(&a, &b)| {
            let t = f64::from(a) - f64::from(b);
            t * t
        })
        .sum();
    let v = d2 / (h * h);
    // u² is the Gaussian's -2·score: each difference, square and sum rounds once, the scale
    // twice; a generous multiple of that, relative.
    let band = 8.0 * (q.len() as f64 + 4.0) * EPS;
    Seen {
        v,
        edge: (v - 1.0).abs() <= band * v.max(1.0),
    }
}

fn run<K: Bandwidth>(input: &Input, which: u8) {
    let h = input.h.0;
    let kernel = match K::with_bandwidth(h) {
        Ok(k) => {
            assert!(h.is_finite() && h > 0.0, "accepted bandwidth {h}");
            assert_eq!(k.bandwidth().to_bits(), h.to_bits(), "bandwidth not kept");
            k
        }
        Err(e) => {
            assert_eq!(e, Error::InvalidBandwidth, "wrong error for bandwidth {h}");
            assert!(
                !(h.is_finite() && (1e-18..=1e18).contains(&h)),
                "rejected bandwidth {h}"
            );
            return;
        }
    };
    let hf = f64::from(h);
    let d = usize::from(input.d % 6) + 1;
    let dv = usize::from(input.dv % 3) + 1;
    let m = usize::from(input.m % 4) + 1;
    let n = usize::from(input.n % 40);

    let total = m * d + n * d + n * dv;
    let all = nadaraya_fuzz::fill(
        &input.head,
        total,
        input.seed,
        input.scale.0,
        input.offset.0,
    );
    let (q, rest) = all.split_at(m * d);
    let (keys, values) = rest.split_at(n * d);

    let mut out = vec![f32::NAN; m * dv];
    let r = flat::attention(&kernel, q, keys, values, d, dv, &mut out);
    let mut out_s = vec![f32::NAN; m * dv];
    let rs = scalar::attention(&kernel, q, keys, values, d, dv, &mut out_s);

    if n == 0 {
        assert_eq!(r, Err(Error::Empty), "no samples");
        assert_eq!(rs, Err(Error::Empty), "scalar: no samples");
        return;
    }
    if all.iter().any(|v| !v.is_finite()) {
        assert_eq!(r, Err(Error::NonFinite), "non-finite input");
        assert_eq!(rs, Err(Error::NonFinite), "scalar: non-finite input");
        return;
    }

    // The reversed key order.
    let keys_rev: Vec<f32> = keys.chunks_exact(d).rev().flatten().copied().collect();
    let values_rev: Vec<f32> = values.chunks_exact(dv).rev().flatten().copied().collect();
    let mut out_r = vec![f32::NAN; m * dv];
    let rr = flat::attention(&kernel, q, &keys_rev, &values_rev, d, dv, &mut out_r);

    // Per row: which verdict is allowed, and the values' bounds.
    let mut all_certain = true; // every row certainly has support: Ok required
    let mut any_none = false; // some row certainly has none: NoSupport required
    let mut rows = Vec::with_capacity(m);
    for qr in q.chunks_exact(d) {
        let s: Vec<Seen> = keys.chunks_exact(d).map(|x| seen(qr, x, hf)).collect();
        let inside = s.iter().any(|t| t.v < 1.0 && !t.edge);
        let maybe = s.iter().any(|t| t.v < 1.0 || t.edge);
        all_certain &= inside;
        any_none |= !maybe;
        rows.push(s);
    }
    // A convex combination of finite values overflows only through rounding, and only when the
    // values are near `f32::MAX`; a loose test of that keeps `Overflow` from being excused
    // anywhere else.
    let huge = values
        .iter()
        .any(|v| f64::from(v.abs()) >= 0.5 * f64::from(f32::MAX));
    for (res, what) in [(&r, "SIMD"), (&rs, "scalar"), (&rr, "reversed")] {
        match res {
            Err(Error::Overflow) if huge => {}
            Ok(()) => assert!(
                !any_none,
                "{what}: Ok although a row has no sample in its support"
            ),
            Err(Error::NoSupport) => assert!(
                !all_certain,
                "{what}: NoSupport although every row has a sample inside"
            ),
            Err(e) => panic!("{what}: unexpected {e:?} from finite input"),
        }
    }

    if all_certain && !huge {
        assert_eq!(r, rr, "the verdict depends on the key order");
        assert_eq!(r, rs, "SIMD and scalar verdicts differ");
    }

    for (t, s) in rows.iter().enumerate() {
        let vrows: Vec<&[f32]> = values.chunks_exact(dv).collect();
        for c in 0..dv {
            // The range of the values that may have weight.
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            let (mut sw, mut swy, mut swa, mut err) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
            let mut well = true;
            for (seen, vr) in s.iter().zip(&vrows) {
                let y = f64::from(vr[c]);
                if seen.v < 1.0 || seen.edge {
                    lo = lo.min(y);
                    hi = hi.max(y);
                }
                if seen.edge && which == 2 {
                    well = false;
                }
                let w = profile(which, seen.v);
                sw += w;
                swy += w * y;
                swa += w * y.abs();
                // The weight's error: u²'s rounding through the profile's slope, plus the
                // log and exp of the score (a few ulp of the weight).
                let band = 8.0 * (d as f64 + 4.0) * EPS;
                err += (band * seen.v.max(1.0) * slope(which) + 16.0 * EPS * w) * (y.abs() + 1.0);
            }
            let slack = 64.0 * EPS * hi.abs().max(lo.abs());
            for (got, what) in [(&out, "SIMD"), (&out_s, "scalar"), (&out_r, "reversed")] {
                let ok = match what {
                    "SIMD" => r.is_ok(),
                    "scalar" => rs.is_ok(),
                    _ => rr.is_ok(),
                };
                if !ok {
                    continue;
                }
                let g = got[t * dv + c];
                assert!(g.is_finite(), "{what}: row {t} col {c} is {g}");
                let g = f64::from(g);
                assert!(
                    g >= lo - slack && g <= hi + slack,
                    "{what}: row {t} col {c}: {g} outside [{lo}, {hi}] of the weighted values"
                );
                // The value bound, where the support's weight dominates its error.
                if well && sw > 0.0 && err < 0.25 * sw {
                    let want = swy / sw;
                    let tol =
                        2.0 * err / sw + 8.0 * (n as f64 + d as f64 + 8.0) * EPS * swa / sw + 1e-30;
                    assert!(
                        (g - want).abs() <= tol,
                        "{what}: row {t} col {c}: {g} vs f64 {want} (tol {tol})"
                    );
                }
            }
        }
    }

    // The weights of the first query: exactly 0 outside the support.
    let mut w = vec![f32::NAN; n];
    let rw = flat::weights(&kernel, &q[..d], keys, &mut w);
    if let Ok(()) = rw {
        for (i, (&wi, seen)) in w.iter().zip(&rows[0]).enumerate() {
            assert!(wi.is_finite() && wi >= 0.0, "weight {i} is {wi}");
            if seen.v >= 1.0 && !seen.edge {
                assert_eq!(wi, 0.0, "weight {i} outside the support (u² = {})", seen.v);
            }
        }
        let sum: f64 = w.iter().map(|&x| f64::from(x)).sum();
        assert!(
            (sum - 1.0).abs() <= 4.0 * (n as f64 + 4.0) * EPS,
            "weights sum to {sum}"
        );
    } else {
        assert_eq!(rw, Err(Error::NoSupport), "weights: {rw:?}");
        assert!(
            !rows[0].iter().any(|t| t.v < 1.0 && !t.edge),
            "weights: NoSupport although a sample is inside"
        );
    }

    // Leave-one-out over the keys and the first value column: NoSupport exactly where a
    // held-out sample has no other sample in its support.
    if n >= 2 {
        let y1: Vec<f32> = values.chunks_exact(dv).map(|v| v[0]).collect();
        let (Ok(x), Ok(y)) = (Rows::new(keys, d), Rows::new(&y1, 1)) else {
            panic!("views of consistent shapes");
        };
        let cv = fit::loo_cv(&kernel, x, y);
        let xr: Vec<&[f32]> = keys.chunks_exact(d).collect();
        let (mut certain, mut none) = (true, false);
        for (i, xi) in xr.iter().enumerate() {
            let s: Vec<Seen> = xr
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, xj)| seen(xi, xj, hf))
                .collect();
            certain &= s.iter().any(|t| t.v < 1.0 && !t.edge);
            none |= !s.iter().any(|t| t.v < 1.0 || t.edge);
        }
        match cv {
            Ok(c) => {
                assert!(!none, "loo_cv Ok although a held-out sample has no support");
                assert!(c.is_finite() && c >= 0.0, "loo_cv {c}");
            }
            Err(Error::NoSupport) => assert!(!certain, "loo_cv NoSupport with support everywhere"),
            // The objective's documented overflow: responses within rounding of ±f32::MAX.
            Err(Error::Overflow) if huge => {}
            Err(e) => panic!("loo_cv: unexpected {e:?}"),
        }
    }
}

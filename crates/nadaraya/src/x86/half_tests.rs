//! Keys and values stored as `f16` and `bf16` in the dispatched kernels, at every level this CPU
//! runs: widened exactly (every bit pattern), and scored and summed bit for bit as the same
//! numbers stored as `f32` (so within the `f32` kernels' bounds of an `f64` reference, which
//! is checked here too).

use super::*;
use crate::testing::{assert_close, lcg};
use std::vec;
use std::vec::Vec;

fn levels() -> Vec<Chosen> {
    Level::ALL
        .into_iter()
        .filter_map(Chosen::new)
        .filter(|c| c.level() != Level::Baseline)
        .collect()
}

/// A half-precision element and its rounding from `f32`.
trait Half: Element + core::fmt::Debug {
    fn round(x: f32) -> Self;
}
impl Half for f16 {
    fn round(x: f32) -> Self {
        f16::from_f32(x)
    }
}
impl Half for bf16 {
    fn round(x: f32) -> Self {
        bf16::from_f32(x)
    }
}

#[test]
fn every_bit_pattern_widens_exactly_at_every_level() {
    let f16s: Vec<f16> = (0..=u16::MAX).map(f16::from_bits).collect();
    let bf16s: Vec<bf16> = (0..=u16::MAX).map(bf16::from_bits).collect();
    for c in levels() {
        // Odd lengths: the scalar tail too.
        for len in [f16s.len(), 65_533] {
            let mut out = vec![0.0f32; len];
            widen_into(c, &f16s[..len], &mut out).expect("a dispatched level");
            for (h, o) in f16s.iter().zip(&out) {
                let want = h.to_f32();
                if want.is_nan() {
                    assert!(o.is_nan(), "f16 {:#06x}", h.to_bits());
                } else {
                    assert_eq!(
                        o.to_bits(),
                        want.to_bits(),
                        "f16 {:#06x} {:?}",
                        h.to_bits(),
                        c
                    );
                }
            }
            widen_into(c, &bf16s[..len], &mut out).expect("a dispatched level");
            for (h, o) in bf16s.iter().zip(&out) {
                let want = h.to_f32();
                if want.is_nan() {
                    assert!(o.is_nan(), "bf16 {:#06x}", h.to_bits());
                } else {
                    assert_eq!(
                        o.to_bits(),
                        want.to_bits(),
                        "bf16 {:#06x} {:?}",
                        h.to_bits(),
                        c
                    );
                }
            }
        }
    }
}

/// `row_scores`, `weighted_sum_into` and `dot` on half storage against the same kernels on the
/// widened numbers (bit for bit) and an `f64` reference on them.
fn kernels_match<H: Half>(seed: u64) {
    let mut rng = lcg(seed);
    for c in levels() {
        for d in [8, 9, 15, 16, 17, 24, 31, 64, 72, 136] {
            let rows = 37;
            let q: Vec<f32> = (0..d).map(|_| 4.0 * rng() - 2.0).collect();
            let kh: Vec<H> = (0..d * rows).map(|_| H::round(4.0 * rng() - 2.0)).collect();
            let kw: Vec<f32> = kh.iter().map(|x| x.to_f32()).collect();
            for gauss in [true, false] {
                let scale = if gauss { -0.7 } else { 0.3 };
                let (mut got, mut want) = (vec![f32::NAN; rows], vec![f32::NAN; rows]);
                if gauss {
                    row_scores::<true, H>(c, &q, &kh, scale, &mut got).expect("dispatched");
                    row_scores::<true, f32>(c, &q, &kw, scale, &mut want).expect("dispatched");
                } else {
                    row_scores::<false, H>(c, &q, &kh, scale, &mut got).expect("dispatched");
                    row_scores::<false, f32>(c, &q, &kw, scale, &mut want).expect("dispatched");
                }
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{c:?} d={d} gauss={gauss}");
                for (k, g) in kw.chunks_exact(d).zip(&got) {
                    let (mut r, mut mag) = (0.0f64, 0.0f64);
                    for (a, b) in q.iter().zip(k) {
                        let (a, b) = (f64::from(*a), f64::from(*b));
                        r += if gauss { (a - b) * (a - b) } else { a * b };
                        mag += (a * b).abs() + (a - b) * (a - b);
                    }
                    let s = f64::from(scale);
                    let tol = 4.0 * f64::from(f32::EPSILON) * mag * s.abs() * (d as f64).sqrt();
                    assert_close(f64::from(*g), r * s, tol, "half score");
                }
            }
        }
        for dv in [1, 8, 9, 15, 16, 17, 24, 32, 64, 72, 136] {
            let n = 203;
            let p: Vec<f32> = (0..n).map(|_| rng()).collect();
            let vh: Vec<H> = (0..n * dv).map(|_| H::round(4.0 * rng() - 2.0)).collect();
            let vw: Vec<f32> = vh.iter().map(|x| x.to_f32()).collect();
            let (mut got, mut want) = (vec![0.5f32; dv], vec![0.5f32; dv]);
            weighted_sum_into(c, &p, &vh, dv, &mut got).expect("dispatched");
            weighted_sum_into(c, &p, &vw, dv, &mut want).expect("dispatched");
            assert_eq!(got, want, "{c:?} dv={dv}");
            for (j, g) in got.iter().enumerate() {
                let r: f64 = 0.5
                    + p.iter()
                        .zip(vw.chunks_exact(dv))
                        .map(|(w, row)| f64::from(*w) * f64::from(row[j]))
                        .sum::<f64>();
                let tol = 4.0 * f64::from(f32::EPSILON) * 2.0 * n as f64;
                assert_close(f64::from(*g), r, tol, "half weighted sum");
            }
            let (a, b) = (
                dot(c, &p, &vh[..n]).expect("dispatched"),
                dot(c, &p, &vw[..n]).expect("dispatched"),
            );
            assert_eq!(a.to_bits(), b.to_bits(), "{c:?} dot");
        }
    }
}

#[test]
fn half_kernels_are_the_f32_kernels_on_the_widened_numbers() {
    kernels_match::<f16>(41);
    kernels_match::<bf16>(43);
}

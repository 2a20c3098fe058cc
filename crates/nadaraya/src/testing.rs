//! Test-only helpers shared by the unit tests: tolerances, ulp distance, a tiny generator.

use std::vec::Vec;

/// Asserts `|got - want| <= tol` with a readable message.
#[track_caller]
pub(crate) fn assert_close(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got:e}, want {want:e}, |diff| {:e} > tol {tol:e}",
        (got - want).abs()
    );
}

/// The error of `got` in units in the last place of the `f32` nearest to `want`.
pub(crate) fn ulp_error(got: f32, want: f64) -> f64 {
    let w = want as f32;
    if w == 0.0 || !w.is_normal() {
        // Flushed subnormal results count as exact: the module documents the flush.
        return if got == 0.0 || (f64::from(got) - want).abs() < f64::from(f32::MIN_POSITIVE) {
            0.0
        } else {
            f64::INFINITY
        };
    }
    // Away from zero: for a negative `w` the next bit pattern is the next more negative float,
    // and without `abs` every error of a negative result came out negative (within any bound).
    let ulp = f64::from(f32::from_bits(w.to_bits() + 1) - w).abs();
    (f64::from(got) - want).abs() / ulp
}

/// The central differences `(f(p + ε e_i) − f(p − ε e_i)) / 2ε` of `f` at `p`, one per entry
/// `i` of `p`: the gradient checks' reference.
pub(crate) fn central_differences(p: &[f64], eps: f64, f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    (0..p.len())
        .map(|i| {
            let at = |h: f64| {
                let mut q = p.to_vec();
                q[i] += h;
                f(&q)
            };
            (at(eps) - at(-eps)) / (2.0 * eps)
        })
        .collect()
}

/// `max |got − want| / max |want|` (the plain maximum error where `want` is all zero): the
/// error of a gradient relative to its largest component.
pub(crate) fn rel_error<G: Copy + Into<f64>>(got: &[G], want: &[f64]) -> f64 {
    let scale = want.iter().fold(0.0f64, |a, w| a.max(w.abs()));
    let err = got
        .iter()
        .zip(want)
        .fold(0.0f64, |a, (g, w)| a.max(((*g).into() - w).abs()));
    if scale == 0.0 { err } else { err / scale }
}

/// A small deterministic generator of floats in `[0, 1)`.
pub(crate) fn lcg(seed: u64) -> impl FnMut() -> f32 {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 40) as f32) / ((1u64 << 24) as f32)
    }
}

/// Values at the edges of `f32`.
pub(crate) fn edge_values() -> Vec<f32> {
    std::vec![
        0.0,
        -0.0,
        f32::MIN_POSITIVE,
        f32::MIN_POSITIVE / 4.0,
        -f32::MIN_POSITIVE / 4.0,
        f32::EPSILON,
        1.0,
        -1.0,
        f32::MAX,
        f32::MIN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
    ]
}

/// Samples (`d = 1`, `dv = 2`) whose plain weighted sum overflows `f32` in some orders while
/// their weighted average is representable (issue 11: `Overflow` depended on the order). With
/// `SoftmaxDot::new(1.0)` and the query `[1.0]` the score of a key is the key itself, exactly:
/// 64 keys at score 0 with value `3e38` (a first tile whose sum overflows), five at score 5 with
/// `-1e38`, and one dominant key at score 10 with `-3e38`. The second value column is small, so
/// that a result is checked per column, at its own scale.
pub(crate) fn huge_samples() -> (Vec<f32>, Vec<f32>) {
    let mut keys = Vec::new();
    let mut values = Vec::new();
    for i in 0..70 {
        let (k, v) = match i {
            0..64 => (0.0, 3e38),
            64..69 => (5.0, -1e38),
            _ => (10.0, -3e38),
        };
        keys.push(k);
        values.extend([v, 1.0 + 0.01 * i as f32]);
    }
    (keys, values)
}

/// The weighted average `Σ exp(s_i - m) v_i / Σ exp(s_i - m)` of the rows of `values` (row length
/// `dv`) for the given `f32` scores, in plain `f64`.
pub(crate) fn reference_average(scores: &[f32], values: &[f32], dv: usize) -> Vec<f64> {
    let m = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let w: Vec<f64> = scores
        .iter()
        .map(|s| (f64::from(*s) - f64::from(m)).exp())
        .collect();
    let total: f64 = w.iter().sum();
    (0..dv)
        .map(|j| {
            w.iter()
                .zip(values.chunks_exact(dv))
                .map(|(w, v)| w * f64::from(v[j]))
                .sum::<f64>()
                / total
        })
        .collect()
}

/// Asserts `got` (one row of `dv`) is `Ok`, finite and within `2e-6 + N·ε/2` of each column's
/// scale (`max |v|` over that column of the `N` rows of `values`) of `want`: the README's
/// promise plus the worst case of summing `N` terms in `f32`, which one large term among many
/// small ones reaches.
#[track_caller]
pub(crate) fn assert_average(
    got: Result<&[f32], crate::Error>,
    want: &[f64],
    values: &[f32],
    what: &str,
) {
    let got = got.unwrap_or_else(|e| panic!("{what}: {e:?}, want {want:?}"));
    let dv = want.len();
    for (j, (g, w)) in got.iter().zip(want).enumerate() {
        let scale = values
            .chunks_exact(dv)
            .map(|v| f64::from(v[j].abs()))
            .fold(0.0, f64::max);
        let n = (values.len() / dv) as f64;
        let tol = (2e-6 + 0.5 * n * f64::from(f32::EPSILON)) * scale;
        assert!(g.is_finite(), "{what}: column {j} is {g}");
        assert_close(f64::from(*g), *w, tol, what);
    }
}

/// Orders of `n` samples (`n ≥ 2`) as permutations of `0..n`: as given, reversed, rotated
/// across the tile boundary, and with the last sample moved to the front, a tile boundary and
/// the end.
pub(crate) fn orders(n: usize) -> Vec<Vec<usize>> {
    let id: Vec<usize> = (0..n).collect();
    let mut out = std::vec![id.clone(), id.iter().rev().copied().collect()];
    for r in [1, 6, 63, 64, 65, n - 1] {
        out.push((0..n).map(|i| (i + r) % n).collect());
    }
    for pos in [0, 63, 64] {
        let mut o: Vec<usize> = (0..n - 1).collect();
        o.insert(pos.min(n - 1), n - 1);
        out.push(o);
    }
    out
}

/// The rows `order[i]` of a row-major `x` with rows of length `w`.
pub(crate) fn permute(x: &[f32], w: usize, order: &[usize]) -> Vec<f32> {
    order
        .iter()
        .flat_map(|&i| x[i * w..(i + 1) * w].iter().copied())
        .collect()
}

/// The slice-and-width calling convention of the tests written before the [`Rows`] API: each
/// helper builds the views (an `out` longer than `M·dv` is cut to its first `M` rows, as the old
/// API wrote only those) and calls the real entry point.
pub(crate) mod flat {
    use crate::{Error, Kernel, Mask, OnlineSoftmax, Rows, RowsMut};

    type Attn<K> = fn(&K, Rows<'_>, Rows<'_>, Rows<'_>, Mask, RowsMut<'_>) -> Result<(), Error>;

    #[allow(clippy::too_many_arguments)]
    fn call<K: Kernel + ?Sized>(
        f: Attn<K>,
        kernel: &K,
        q: &[f32],
        keys: &[f32],
        values: &[f32],
        (d, dv): (usize, usize),
        mask: Mask,
        out: &mut [f32],
    ) -> Result<(), Error> {
        let (q, keys, values) = (
            Rows::new(q, d)?,
            Rows::new(keys, d)?,
            Rows::new(values, dv)?,
        );
        let m = q.len() * dv;
        let out = if out.len() >= m { &mut out[..m] } else { out };
        let out = match RowsMut::new(out, dv) {
            Ok(o) => o,
            Err(_) => return Err(Error::OutputTooSmall),
        };
        f(kernel, q, keys, values, mask, out)
    }

    pub(crate) fn attention<K: Kernel + ?Sized>(
        k: &K,
        q: &[f32],
        keys: &[f32],
        values: &[f32],
        d: usize,
        dv: usize,
        out: &mut [f32],
    ) -> Result<(), Error> {
        call(
            crate::attention::<K, f32>,
            k,
            q,
            keys,
            values,
            (d, dv),
            Mask::None,
            out,
        )
    }

    pub(crate) fn causal_attention<K: Kernel + ?Sized>(
        k: &K,
        q: &[f32],
        keys: &[f32],
        values: &[f32],
        d: usize,
        dv: usize,
        out: &mut [f32],
    ) -> Result<(), Error> {
        call(
            crate::attention::<K, f32>,
            k,
            q,
            keys,
            values,
            (d, dv),
            Mask::Causal,
            out,
        )
    }

    pub(crate) fn weights<K: Kernel + ?Sized>(
        k: &K,
        q: &[f32],
        keys: &[f32],
        out: &mut [f32],
    ) -> Result<(), Error> {
        let (qr, keys) = (Rows::new(q, q.len())?, Rows::new(keys, q.len())?);
        let n = keys.len();
        let out = if out.len() >= n { &mut out[..n] } else { out };
        crate::weights(k, qr, keys, RowsMut::new(out, n.max(1))?)
    }

    pub(crate) fn update<K: Kernel + ?Sized, const DV: usize>(
        s: &mut OnlineSoftmax<DV>,
        k: &K,
        q: &[f32],
        keys: &[f32],
        values: &[f32],
    ) -> Result<(), Error> {
        s.update(k, q, Rows::new(keys, q.len())?, Rows::new(values, DV)?)
    }

    pub(crate) mod scalar {
        use super::*;

        pub(crate) fn attention<K: Kernel + ?Sized>(
            k: &K,
            q: &[f32],
            keys: &[f32],
            values: &[f32],
            d: usize,
            dv: usize,
            out: &mut [f32],
        ) -> Result<(), Error> {
            call(
                crate::scalar::attention::<K>,
                k,
                q,
                keys,
                values,
                (d, dv),
                Mask::None,
                out,
            )
        }

        pub(crate) fn weights<K: Kernel + ?Sized>(
            k: &K,
            q: &[f32],
            keys: &[f32],
            out: &mut [f32],
        ) -> Result<(), Error> {
            let (qr, keys) = (Rows::new(q, q.len())?, Rows::new(keys, q.len())?);
            let n = keys.len();
            let out = if out.len() >= n { &mut out[..n] } else { out };
            crate::scalar::weights(k, qr, keys, RowsMut::new(out, n.max(1))?)
        }
    }
}

//! Plain `f64` random-feature estimators, for checking `nadaraya-rf` and the figures drawn from
//! it.
//!
//! Given the projection rows `ω_1 … ω_m` (`m×d` row-major, as `nadaraya_rf::Projection::rows`
//! returns them, widened), each function computes the kernel estimate of every (query, key) pair
//! straight from its definition, with no feature matrices, no stabilisers, no tiling:
//!
//! - FAVOR+ (positive): `κ(q, k) = (1/m) Σ_r exp(ω_r·(q + k)/√τ − (|q|² + |k|²)/2τ)`, an
//!   estimate of `exp(q·k/τ)`; the hyperbolic variant averages the `ω_r` and `−ω_r` terms.
//! - Random Fourier features: `κ(q, x) = (1/m) Σ_r cos(ω_r·(q − x)/h)`, an estimate of
//!   `exp(−|q − x|²/2h²)` (`cos a cos b + sin a sin b` written as one cosine).
//!
//! and smooths with `Σ_i κ_i v_i / Σ_i κ_i`.

use crate::reference::per_query;

/// FAVOR+ kernel estimate of one pair: see the module docs. `rows` is `m×d` row-major.
#[must_use]
pub fn favor_kernel(rows: &[f64], tau: f64, hyperbolic: bool, q: &[f64], k: &[f64]) -> f64 {
    let d = q.len();
    let half = q.iter().chain(k).map(|v| v * v).sum::<f64>() / (2.0 * tau);
    let (mut total, mut count) = (0.0, 0usize);
    for w in rows.chunks_exact(d) {
        let a = w
            .iter()
            .zip(q.iter().zip(k))
            .map(|(w, (q, k))| w * (q + k))
            .sum::<f64>()
            / tau.sqrt();
        total += (a - half).exp();
        count += 1;
        if hyperbolic {
            total += (-a - half).exp();
            count += 1;
        }
    }
    total / count as f64
}

/// Random-Fourier-feature kernel estimate of one pair: see the module docs.
#[must_use]
pub fn fourier_kernel(rows: &[f64], h: f64, q: &[f64], x: &[f64]) -> f64 {
    let d = q.len();
    let m = rows.len() / d;
    rows.chunks_exact(d)
        .map(|w| {
            let phase = w
                .iter()
                .zip(q.iter().zip(x))
                .map(|(w, (q, x))| w * (q - x))
                .sum::<f64>();
            (phase / h).cos()
        })
        .sum::<f64>()
        / m as f64
}

/// `Σ_i κ(q, k_i) v_i / Σ_i κ(q, k_i)` for every query row (`d` wide), with the kernel estimate
/// `kernel`; `causal` lets query `t` see keys `0..=t` only. A denominator below `floor` (the
/// random-Fourier guard; pass `f64::MIN` for none) is replaced by `floor`.
#[must_use]
#[allow(clippy::too_many_arguments)]
pub fn smooth(
    kernel: impl Fn(&[f64], &[f64]) -> f64,
    q: &[f64],
    keys: &[f64],
    values: &[f64],
    d: usize,
    dv: usize,
    causal: bool,
    floor: f64,
) -> Vec<f64> {
    per_query(q, d, keys.len() / d, causal, |qr, n| {
        let mut num = vec![0.0f64; dv];
        let mut den = 0.0f64;
        for (k, v) in keys.chunks_exact(d).zip(values.chunks_exact(dv)).take(n) {
            let c = kernel(qr, k);
            den += c;
            for (a, &y) in num.iter_mut().zip(v) {
                *a += c * y;
            }
        }
        let den = den.max(floor);
        num.iter().map(|a| a / den).collect()
    })
}

/// The implied weights `κ(q, k_i) / Σ_j κ(q, k_j)` of one query.
#[must_use]
pub fn weights(kernel: impl Fn(&[f64], &[f64]) -> f64, q: &[f64], keys: &[f64]) -> Vec<f64> {
    let k: Vec<f64> = keys.chunks_exact(q.len()).map(|x| kernel(q, x)).collect();
    let total: f64 = k.iter().sum();
    k.iter().map(|x| x / total).collect()
}

/// The log-domain positive-feature exponents of one (query, key) pair, one per feature:
/// `e_i = w_i·q + w_i·k − key_sq·|k|²`, where `w` (`r×d` row-major) holds the rows as the
/// features use them, already scaled by `1/√τ` (and negated for the second half of the hyperbolic
/// variant). FAVOR+ has `key_sq = 1/(2τ)`; the Gaussian features `φ_G = exp(−|x'|²/2)·φ` at
/// `τ = h²` have `key_sq = 1/τ`. The query's own norm term and the `1/√r` are the same for every
/// key and cancel in every ratio, so they are left out.
#[must_use]
pub fn favor_exponents(w: &[f64], key_sq: f64, q: &[f64], k: &[f64]) -> Vec<f64> {
    let half = k.iter().map(|v| v * v).sum::<f64>() * key_sq;
    w.chunks_exact(q.len())
        .map(|wi| {
            wi.iter()
                .zip(q.iter().zip(k))
                .map(|(w, (q, k))| w * q + w * k)
                .sum::<f64>()
                - half
        })
        .collect()
}

/// The implied FAVOR+ weights `κ_j / Σ κ` of one query against `keys` (`N×d`), computed in the
/// log domain (`κ_j = Σ_i exp(e_ij − max e)`, see [`favor_exponents`]), so that no input that
/// `f32` can hold overflows them.
#[must_use]
pub fn favor_weights_log(w: &[f64], key_sq: f64, q: &[f64], keys: &[f64]) -> Vec<f64> {
    let e: Vec<Vec<f64>> = keys
        .chunks_exact(q.len())
        .map(|k| favor_exponents(w, key_sq, q, k))
        .collect();
    let kappa = kappas_log(&e);
    let total: f64 = kappa.iter().sum();
    kappa.iter().map(|x| x / total).collect()
}

/// The kernel estimates `κ_j = Σ_i exp(e_ij − max e)` of the keys `j` from their feature
/// exponents `e_j` (see [`favor_exponents`]): their common scale taken out, so that none
/// overflows; what any ratio of them needs.
#[must_use]
pub fn kappas_log(e: &[Vec<f64>]) -> Vec<f64> {
    let mx = e
        .iter()
        .flatten()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    e.iter()
        .map(|ej| ej.iter().map(|x| (x - mx).exp()).sum())
        .collect()
}

/// FAVOR+ attention of every query row (`M×d`) in `f64`, from [`favor_weights_log`]; `causal`
/// lets query `t` see keys `0..=t` only.
#[must_use]
#[allow(clippy::too_many_arguments)]
pub fn favor_attention_log(
    w: &[f64],
    key_sq: f64,
    q: &[f64],
    keys: &[f64],
    values: &[f64],
    d: usize,
    dv: usize,
    causal: bool,
) -> Vec<f64> {
    per_query(q, d, keys.len() / d, causal, |qr, n| {
        let a = favor_weights_log(w, key_sq, qr, &keys[..n * d]);
        let mut o = vec![0.0; dv];
        for (aj, v) in a.iter().zip(values.chunks_exact(dv)) {
            for (x, y) in o.iter_mut().zip(v) {
                *x += aj * y;
            }
        }
        o
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_approach_their_kernels_with_many_rows() {
        // Deterministic rows from a fixed sequence: a crude normal by summing uniforms.
        let mut u = crate::uniform(3);
        let rows: Vec<f64> = (0..2 * 20_000)
            .map(|_| (0..12).map(|_| f64::from(u()) * 0.5).sum::<f64>())
            .collect();
        let (q, k) = ([0.3, -0.2], [0.1, 0.4]);
        let dot: f64 = q.iter().zip(&k).map(|(a, b)| a * b).sum();
        let d2: f64 = q.iter().zip(&k).map(|(a, b)| (a - b) * (a - b)).sum();
        // The sum of 12 uniforms in [-0.5, 0.5) has variance 1.
        let f = favor_kernel(&rows, 1.0, true, &q, &k);
        assert!((f / dot.exp() - 1.0).abs() < 0.02, "{f} vs {}", dot.exp());
        let g = fourier_kernel(&rows, 0.7, &q, &k);
        let want = (-d2 / (2.0 * 0.49)).exp();
        assert!((g - want).abs() < 0.02, "{g} vs {want}");
    }
}

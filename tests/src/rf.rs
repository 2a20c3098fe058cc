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
    let mut out = Vec::with_capacity(q.len() / d * dv);
    for (t, qr) in q.chunks_exact(d).enumerate() {
        let n = if causal { t + 1 } else { keys.len() / d };
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
        out.extend(num.iter().map(|a| a / den));
    }
    out
}

/// The implied weights `κ(q, k_i) / Σ_j κ(q, k_j)` of one query.
#[must_use]
pub fn weights(kernel: impl Fn(&[f64], &[f64]) -> f64, q: &[f64], keys: &[f64]) -> Vec<f64> {
    let k: Vec<f64> = keys.chunks_exact(q.len()).map(|x| kernel(q, x)).collect();
    let total: f64 = k.iter().sum();
    k.iter().map(|x| x / total).collect()
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

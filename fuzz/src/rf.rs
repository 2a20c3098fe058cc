//! The `f64` reference for `nadaraya-rf`'s positive random features, on the SAME features as the
//! implementation (its projection rows), with worst-case bounds on what `f32` arithmetic may
//! change.
//!
//! Every positive estimator of the crate has the same shape: feature `r` of a key `k` is
//! `exp(a_r(k))`, `a_r(k) = u_r·k − γ|k|² + κ_r`, and of a query `q` is `exp(b_r(q))`,
//! `b_r(q) = u_r·q` (the query's own norm term is a per-row constant and cancels). The kernel
//! estimate of a pair is `Σ_r exp(b_r(q) + a_r(k))` up to a constant factor, and the smoother
//! returns `Σ_i A_i v_i / Σ_i A_i` with `A_i = Σ_r exp(b_r(q) + a_r(k_i))`:
//!
//! - FAVOR+ for `exp(q·k/τ)`: `u_r = ω_r/√τ` (and `−ω_r/√τ` for the hyperbolic half), `γ = 1/2τ`,
//!   `κ_r = 0`;
//! - OPRF (Likhosherstov et al. 2022) with parameter `A`: `u_r = √(1 − 4A)·ω_r/√τ`,
//!   `κ_r = 2A|ω_r|²`, `γ = 1/2τ`;
//! - the positive Gaussian smoother of bandwidth `h`: either of those at `τ = h²` with `γ = 1/τ`
//!   (the sample's own factor `exp(−|x'|²/2)`), on the points moved by the samples' midrange.
//!
//! An implementation computes every exponent in `f32` with an absolute error of at most
//! `(d + 4)·ε·(Σ_j |u_rj x_j| + γ|x|²) + 2ε|κ_r|` plus the rounding of the stabilising shifts
//! (`2ε` of each magnitude involved) and of `exp` (`8ε`). Perturbing every term's exponent by at
//! most `E_ri` moves `A_i` by at most `Σ_r exp(x_ri)·expm1(E_ri)`; the result then moves by
//! `Σ_i |ΔA_i|·|v_i − out| / (Σ A − Σ |ΔA|)`, plus the rounding of the two sums (`(3n + r + 8)·ε`
//! relative, running rescales included) and the flush of features below `1.2e-38` relative to the
//! largest (which is 1). Where the bound is not finite (exponents so large that their rounding
//! is worth more than the terms) only the convexity of the result is checked.

use crate::{EPS, NEAR_MAX, OVERFLOW_RISK};

/// Positive features in the form of the module docs: `u` (`r×d` row-major), `γ`, `κ` (`r`).
#[derive(Clone, Debug)]
pub struct PosFeatures {
    /// The input dimension `d`.
    pub d: usize,
    /// The directions `u_r`, `r×d` row-major.
    pub u: Vec<f64>,
    /// The coefficient of `−|k|²` in a key's exponent.
    pub gamma: f64,
    /// The per-feature constants `κ_r`.
    pub kappa: Vec<f64>,
}

impl PosFeatures {
    /// FAVOR+ for temperature `τ` on the projection rows `rows` (`m×d`, as
    /// `nadaraya_rf::Projection::rows` returns them), with the hyperbolic `±` halves when asked.
    #[must_use]
    pub fn favor(rows: &[f32], d: usize, tau: f32, hyperbolic: bool) -> Self {
        let s = 1.0 / f64::from(tau).sqrt();
        let mut u: Vec<f64> = rows.iter().map(|&w| f64::from(w) * s).collect();
        if hyperbolic {
            let neg: Vec<f64> = u.iter().map(|v| -v).collect();
            u.extend(neg);
        }
        let r = u.len() / d;
        Self {
            d,
            u,
            gamma: 0.5 / f64::from(tau),
            kappa: vec![0.0; r],
        }
    }

    /// Optimal positive random features (OPRF, `Variant::Optimal`) with parameter `A ≤ 0` for
    /// temperature `τ`: `u_r = B·ω_r/√τ` with `B = √(1 − 4A)`, `κ_r = 2A|ω_r|²` (the two factors'
    /// `A|ω_r|²` on the key side; `D²` is a constant and cancels), `γ = 1/2τ`.
    #[must_use]
    pub fn oprf(rows: &[f32], d: usize, tau: f32, a: f32) -> Self {
        let a = f64::from(a);
        let s = (1.0 - 4.0 * a).sqrt() / f64::from(tau).sqrt();
        Self {
            d,
            u: rows.iter().map(|&w| f64::from(w) * s).collect(),
            gamma: 0.5 / f64::from(tau),
            kappa: rows
                .chunks_exact(d)
                .map(|w| 2.0 * a * w.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>())
                .collect(),
        }
    }

    /// The Gaussian kernel `exp(−|x − y|²/2h²)` through softmax features `sm` at `τ = h²`: the
    /// sample's own factor `exp(−|x'|²/2)` doubles `γ` (the query's cancels).
    #[must_use]
    pub fn gaussian(sm: Self) -> Self {
        Self {
            gamma: 2.0 * sm.gamma,
            ..sm
        }
    }

    /// The number of features `r`.
    #[must_use]
    pub fn count(&self) -> usize {
        self.kappa.len()
    }

    /// `(exponent, error bound, Σ|terms|)` of every feature of a key (`key`) or query.
    fn exponents(&self, x: &[f32], key: bool) -> Vec<(f64, f64, f64)> {
        let d = self.d as f64;
        // `|x|²` is summed before it is scaled: its own overflow counts too.
        let raw: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        let norm = raw * self.gamma;
        self.u
            .chunks_exact(self.d)
            .zip(&self.kappa)
            .map(|(u, &kap)| {
                let (mut s, mut abs) = (0.0f64, 0.0f64);
                for (&w, &v) in u.iter().zip(x) {
                    s += w * f64::from(v);
                    abs += (w * f64::from(v)).abs();
                }
                if key {
                    let a = s - norm + kap;
                    let mag = (abs + norm + kap.abs()).max(raw);
                    let err =
                        (d + 4.0) * EPS * (abs + norm) + 2.0 * EPS * kap.abs() + EPS * a.abs();
                    (a, err, mag)
                } else {
                    (s, (d + 4.0) * EPS * abs, abs)
                }
            })
            .collect()
    }
}

/// The reference of one query against a set of keys.
#[derive(Clone, Debug)]
pub struct RfRow {
    /// `Σ_i A_i v_i / Σ_i A_i` per output coordinate.
    pub out: Vec<f64>,
    /// The implied weights `A_i / Σ A`.
    pub weights: Vec<f64>,
    /// Allowed distance from `out` per coordinate (infinite: only convexity is checked).
    pub tol: Vec<f64>,
    /// Allowed distance of weight `i` from `weights[i]` (infinite: only the sum is checked).
    pub weight_tol: Vec<f64>,
    /// Per coordinate: the smallest and largest value, and the slack allowed outside.
    pub range: Vec<(f64, f64, f64)>,
    /// The verdicts a correct implementation may give.
    pub flags: crate::Flags,
}

/// The reference for query `q` against `keys` (`n×d`) and `values` (`n×dv`), `n > 0`.
#[must_use]
pub fn rf_row(f: &PosFeatures, q: &[f32], keys: &[f32], values: &[f32], dv: usize) -> RfRow {
    let d = f.d;
    let r = f.count();
    let n = keys.len() / d;
    let b = f.exponents(q, false);
    let a: Vec<Vec<(f64, f64, f64)>> = keys.chunks_exact(d).map(|k| f.exponents(k, true)).collect();
    let max_f32 = f64::from(f32::MAX);
    let mut flags = crate::Flags::default();
    // Per feature: the key stabiliser c_r = max_i a_ri and the largest key-exponent error.
    let mut c = vec![f64::NEG_INFINITY; r];
    let mut ca = vec![0.0f64; r];
    for row in &a {
        for (j, &(x, e, mag)) in row.iter().enumerate() {
            c[j] = c[j].max(x);
            ca[j] = ca[j].max(e);
            flags.risky |= mag > OVERFLOW_RISK;
            flags.certain |= x.abs() - e > max_f32;
        }
    }
    let mut big = f64::NEG_INFINITY;
    for (j, &(x, e, mag)) in b.iter().enumerate() {
        flags.risky |= mag > OVERFLOW_RISK || x.abs() + c[j].abs() > OVERFLOW_RISK;
        flags.certain |= x.abs() - e > max_f32 || (x + c[j]).abs() - e - ca[j] > max_f32;
        big = big.max(x + c[j]);
    }
    // A_i and its perturbation bound, relative to exp(big).
    let mut aw = vec![0.0f64; n];
    let mut da = vec![0.0f64; n];
    for (i, row) in a.iter().enumerate() {
        for (j, &(x, e, _)) in row.iter().enumerate() {
            let (bx, be, _) = b[j];
            let t = bx + x - big;
            let err = be
                + e
                + 2.0 * ca[j]
                + 2.0 * EPS * (bx.abs() + 2.0 * c[j].abs() + big.abs() + x.abs())
                + 8.0 * EPS;
            let term = t.exp();
            aw[i] += term;
            da[i] += (t + err.min(700.0)).exp() - term + 2.4e-38;
        }
    }
    let total: f64 = aw.iter().sum();
    let dtotal: f64 = da.iter().sum();
    let round = (3.0 * n as f64 + r as f64 + 8.0) * EPS;
    let den_lo = total - dtotal - round * total;
    let weights: Vec<f64> = aw.iter().map(|x| x / total).collect();
    let usable = den_lo.is_finite() && den_lo > 0.5 * total;
    let weight_tol = aw
        .iter()
        .zip(&da)
        .map(|(&x, &e)| {
            if usable {
                (e + x / total * dtotal) / den_lo + round * x / total + 1e-37
            } else {
                f64::INFINITY
            }
        })
        .collect();
    let mut out = vec![0.0f64; dv];
    let mut range = vec![(f64::INFINITY, f64::NEG_INFINITY, 0.0); dv];
    let mut tol = vec![0.0f64; dv];
    for j in 0..dv {
        let col = || values.iter().skip(j).step_by(dv).map(|&v| f64::from(v));
        let o: f64 = col().zip(&weights).map(|(v, w)| v * w).sum();
        let vmax = col().fold(0.0f64, |m, v| m.max(v.abs()));
        let (lo, hi) = col().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
        let slack = (n as f64 + r as f64 + 64.0) * 4.0 * EPS * vmax + 1e-37;
        out[j] = o;
        range[j] = (lo, hi, slack);
        tol[j] = if usable {
            let moved: f64 = col().zip(&da).map(|(v, e)| e * (v - o).abs()).sum();
            let sums: f64 = col().zip(&aw).map(|(v, x)| x * v.abs()).sum::<f64>() + o.abs() * total;
            (moved + round * sums) / den_lo + 2.0 * EPS * o.abs() + slack
        } else {
            f64::INFINITY
        };
        // A convex combination of finite f32 values reaches f32::MAX only where they do.
        flags.near_max |= (o.abs() + tol[j]).min(vmax + slack) >= NEAR_MAX;
    }
    RfRow {
        out,
        weights,
        tol,
        weight_tol,
        range,
        flags,
    }
}

impl RfRow {
    /// Checks an output row: finite, inside the values' range, within the bound of the reference.
    ///
    /// # Panics
    /// If a check fails, with `what` in the message.
    pub fn check_out(&self, got: &[f32], what: &str) {
        for (j, &g) in got.iter().enumerate() {
            assert!(g.is_finite(), "{what}: non-finite output {g} at {j}");
            let g = f64::from(g);
            let (lo, hi, slack) = self.range[j];
            assert!(
                g >= lo - slack && g <= hi + slack,
                "{what}: {g:e} at {j} outside the values' range [{lo:e}, {hi:e}]"
            );
            assert!(
                (g - self.out[j]).abs() <= self.tol[j],
                "{what}: {g:e} at {j} vs the f64 estimator on the same features {:e} (tolerance \
                 {:e})",
                self.out[j],
                self.tol[j]
            );
        }
    }

    /// Checks implied weights: `≥ 0`, summing to 1, each within the bound of the reference.
    ///
    /// # Panics
    /// If a check fails, with `what` in the message.
    pub fn check_weights(&self, got: &[f32], what: &str) {
        let n = self.weights.len();
        let mut sum = 0.0f64;
        for (i, (&g, (&w, &t))) in got
            .iter()
            .zip(self.weights.iter().zip(&self.weight_tol))
            .enumerate()
        {
            assert!(g.is_finite() && g >= 0.0, "{what}: weight {g} at {i}");
            sum += f64::from(g);
            assert!(
                (f64::from(g) - w).abs() <= t,
                "{what}: weight {g:e} at {i} vs the f64 estimator {w:e} (tolerance {t:e})"
            );
        }
        assert!(
            (sum - 1.0).abs() <= 1e-5f64.max((n as f64 + 64.0) * 2.0 * EPS),
            "{what}: weights sum to {sum}"
        );
    }
}

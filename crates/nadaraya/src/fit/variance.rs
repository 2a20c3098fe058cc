//! Pointwise standard errors and confidence bands of the Nadaraya–Watson and local-linear fits.

use crate::fit::local_linear::{Local, check_shapes, for_each, loo_sum};
use crate::fit::{Fit, MAX_DIM};
use crate::{Dim, Error, Kernel, Rows, RowsMut, simd};

/// The noise variance `σ²(x_i)` of the responses, per value component.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Noise<'a> {
    /// The same variance at every sample: one `σ²` per value component (`DV` values), for
    /// example from [`residual_variance`].
    Constant(&'a [f64]),
    /// One variance per sample and component: rows of width `DV`, one per sample, in the order
    /// of the samples. For heteroscedastic noise, smooth the squared leave-one-out residuals
    /// ([`loo_residuals`]) with Nadaraya–Watson at the sample locations (for example with
    /// [`crate::attention`] of the locations against themselves).
    PerSample(Rows<'a>),
}

/// A fitted value and its standard error.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Estimate {
    /// The fit `ŷ(q)`.
    pub value: f32,
    /// `sqrt(Σ l_i(q)² σ²(x_i))`.
    pub se: f32,
}

impl Estimate {
    /// The pointwise band `(ŷ - z·se, ŷ + z·se)`; `z` from [`band_z`]. A band around
    /// `E[ŷ | X]`: the smoothing bias is ignored (see the [`standard_error`] docs).
    ///
    /// # Examples
    /// ```
    /// use nadaraya::fit::Estimate;
    /// let e = Estimate { value: 1.0, se: 0.5 };
    /// assert_eq!(e.band(2.0), (0.0, 2.0));
    /// ```
    #[inline]
    #[must_use]
    pub fn band(&self, z: f64) -> (f32, f32) {
        let (v, w) = (f64::from(self.value), z * f64::from(self.se));
        ((v - w) as f32, (v + w) as f32)
    }
}

/// The fit and its standard error at the query `q`, per value component, into `out[..DV]`.
///
/// `Fit::NadarayaWatson` gives the weighted average (within rounding of
/// [`crate::attention`]); `Fit::LocalLinear` the value of [`local_linear`](crate::fit::local_linear).
/// The variance `Σ l_i² σ_i²` is accumulated in `f64` from the max-shifted weights, without
/// cancellation (every term is `≥ 0`); measured against an `f64` reference that builds every
/// `l_i` from the normal equations: within `2e-6` relative (unit test `matches_reference`).
/// Cost: one more score pass and `O(N·D)` beyond the fit.
///
/// Both fits are linear smoothers: `ŷ(q) = Σ l_i(q) y_i`, with `l_i = w_i / S` (Nadaraya–Watson)
/// or `l_i = w_i (1 + (x_i - x̄)ᵀ M⁻¹ (q - x̄)) / S` (local-linear; `x̄`, `M` the weighted mean
/// and covariance of the locations, `S = Σ w_i`). Given the locations, with independent noise of
/// variance `σ²(x_i)`,
///
/// `Var[ŷ(q) | X] = Σ l_i(q)² σ²(x_i)`,
///
/// which [`standard_error`] computes in one more pass over the samples (the weights rebuilt
/// from their scores with the same maximum shift; no heap). `σ²` comes from the caller
/// ([`Noise`]): a constant estimated by [`residual_variance`] (the mean squared leave-one-out
/// residual), or one value per sample, for example the squared residuals of [`loo_residuals`]
/// smoothed by Nadaraya–Watson (heteroscedastic noise; see [`Noise::PerSample`]).
///
/// The band `ŷ ± z·se` ([`Estimate::band`], `z` from [`band_z`]) is a pointwise band around
/// `E[ŷ(q) | X]`, not around the regression function: it ignores the smoothing bias
/// (`O(h²)`), so it covers the true function at the nominal rate only where the bias is small
/// against `se`, that is for a bandwidth below the one that minimises the mean squared error.
/// Measured (the unit test `coverage_monte_carlo`, `cargo test -p nadaraya --lib
/// coverage_monte_carlo -- --nocapture`): 1000 data sets of `N = 400`, `y = sin(2πx) +
/// N(0, 0.3²)`, `x` uniform in `[0, 1]`, Gaussian `h = 0.02` (bias about `0.15·se`), `σ²` from
/// [`residual_variance`]: the 95 % band covered the true function at `x = 0.25, 0.5, 0.7` in
/// 94.77 % (Nadaraya–Watson) and 95.33 % (local-linear) of the 3000 intervals (binomial standard
/// deviation 0.4 %).
///
/// With heteroscedastic noise (`σ(x) = 0.05 + 0.5x`, 400 data sets, local-linear, unit test
/// `heteroscedastic_coverage`) one constant `σ̂²` covered 100 % at `x = 0.2` and 84.3 % at
/// `x = 0.8`; the squared leave-one-out residuals smoothed by Nadaraya–Watson (`h = 0.1`) as
/// [`Noise::PerSample`] covered 96.5 % and 94.3 %.
///
/// # Errors
/// - as [`local_linear`](crate::fit::local_linear) for the shapes of `q`, `x`, `y`, and its
///   errors for the fit (`Singular` only for `Fit::LocalLinear`);
/// - [`Error::OutputTooSmall`] if `out.len() < y.width()`;
/// - [`Error::Shape`] with [`Dim::Width`] if a `Noise::Constant` has not `y.width()` values, or
///   a `Noise::PerSample`'s width is not `y.width()`; with [`Dim::ValueRows`] if it has not one
///   row per sample;
/// - [`Error::NonFinite`] if a noise variance is negative, NaN or infinite;
/// - [`Error::Overflow`] if a value or standard error rounds beyond `f32::MAX`.
///
/// # Examples
/// ```
/// use nadaraya::{Gaussian, Rows, fit::{self, Estimate, Fit, Noise}};
/// let xs: Vec<[f32; 1]> = (0..50).map(|i| [i as f32 / 50.0]).collect();
/// let ys: Vec<[f32; 1]> = xs.iter().map(|x| [2.0 * x[0] + if x[0] > 0.5 { 0.1 } else { -0.1 }]).collect();
/// let (x, y) = (Rows::from_arrays(&xs), Rows::from_arrays(&ys));
/// let k = Gaussian::new(0.1)?;
/// let mut s2 = [0.0];
/// fit::residual_variance(Fit::LocalLinear, &k, x, y, &mut s2)?;
/// let mut e = [Estimate::default()];
/// fit::standard_error(Fit::LocalLinear, &k, &[0.25], x, y, Noise::Constant(&s2), &mut e)?;
/// let (lo, hi) = e[0].band(fit::band_z(0.95)?);
/// assert!(lo < e[0].value && e[0].value < hi && e[0].se > 0.0);
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn standard_error<K: Kernel + ?Sized>(
    fit: Fit,
    kernel: &K,
    q: &[f32],
    x: Rows<'_>,
    y: Rows<'_>,
    noise: Noise<'_>,
    out: &mut [Estimate],
) -> Result<(), Error> {
    let (_, dv) = check_shapes(q.len(), x, y)?;
    if out.len() < dv {
        return Err(Error::OutputTooSmall);
    }
    let shape = |what, expected, found| Error::Shape {
        what,
        expected,
        found,
    };
    let (sigma, noise_rows): (&[f64], Option<Rows<'_>>) = match noise {
        Noise::Constant(s) => {
            if s.len() != dv {
                return Err(shape(Dim::Width, dv, s.len()));
            }
            if !s.iter().all(|v| *v >= 0.0 && v.is_finite()) {
                return Err(Error::NonFinite);
            }
            (s, None)
        }
        Noise::PerSample(r) => {
            if r.width() != dv {
                return Err(shape(Dim::Width, dv, r.width()));
            }
            if r.len() != x.len() {
                return Err(shape(Dim::ValueRows, x.len(), r.len()));
            }
            if !r.as_slice().iter().all(|v| *v >= 0.0 && v.is_finite()) {
                return Err(Error::NonFinite);
            }
            (&[], Some(r))
        }
    };
    if x.is_empty() {
        return Err(Error::Empty);
    }
    let (xs, ys) = (x.as_slice(), y.as_slice());
    if !(simd::all_finite(q) && simd::all_finite(xs) && simd::all_finite(ys)) {
        return Err(Error::NonFinite);
    }
    let local = Local::fit(kernel, q, &[(xs, ys)], dv, fit == Fit::LocalLinear)?;
    let g = local.leverage_direction(q);
    // Pass 3: Σ u_i² σ_i², u_i = w_i (1 + (d_i - d̄)ᵀ g) = S·l_i.
    let mut var = [0.0f64; MAX_DIM];
    let values = noise_rows.map_or(ys, |r| r.as_slice());
    let (xr, dbar) = (local.xr, local.dbar);
    for_each(
        kernel,
        q,
        &[(xs, values)],
        dv,
        Some(local.m),
        |xi, si, w| {
            if w == 0.0 {
                return Ok(());
            }
            let mut u = 1.0f64;
            for (((a, b), dj), gj) in xi.iter().zip(&xr).zip(&dbar).zip(&g) {
                u += ((f64::from(*a) - f64::from(*b)) - dj) * gj;
            }
            let u = f64::from(w) * u;
            let u2 = u * u;
            if noise_rows.is_some() {
                for (v, s) in var.iter_mut().zip(si) {
                    *v += u2 * f64::from(*s);
                }
            } else if let Some(v) = var.first_mut() {
                *v += u2;
            }
            Ok(())
        },
    )?;
    let s2 = local.s * local.s;
    let first = var.first().copied().unwrap_or(0.0);
    for (c, o) in out.iter_mut().enumerate().take(dv) {
        let v = if noise_rows.is_some() {
            var.get(c).copied().unwrap_or(0.0)
        } else {
            first * sigma.get(c).copied().unwrap_or(0.0)
        };
        let (value, se) = (local.value(q, c) as f32, libm::sqrt(v / s2) as f32);
        if !(value.is_finite() && se.is_finite()) {
            return Err(Error::Overflow);
        }
        *o = Estimate { value, se };
    }
    Ok(())
}

/// The leave-one-out residuals `y_i - ŷ_{-i}(x_i)` of the fit into the rows of `out` (width
/// `DV`, one row per sample); each left-out fit is computed without sample `i`.
///
/// # Errors
/// As [`loo_cv_local_linear`](crate::fit::loo_cv_local_linear) (for `Fit::NadarayaWatson`
/// without `Singular`), and [`Error::Shape`] with [`Dim::OutputWidth`] or [`Dim::OutputRows`]
/// if `out` is not `N × DV`; [`Error::Overflow`] if a residual rounds beyond `f32::MAX`.
///
/// # Examples
/// ```
/// use nadaraya::{Gaussian, Rows, RowsMut, fit::{self, Fit}};
/// let x = Rows::from_arrays(&[[0.0], [1.0], [2.0]]);
/// let y = Rows::from_arrays(&[[0.0], [1.0], [0.0]]);
/// let mut r = [[0.0f32]; 3];
/// fit::loo_residuals(Fit::NadarayaWatson, &Gaussian::new(1.0)?, x, y, RowsMut::from_arrays(&mut r))?;
/// assert!((r[1][0] - 1.0).abs() < 1e-6); // its neighbours average 0
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn loo_residuals<K: Kernel + ?Sized>(
    fit: Fit,
    kernel: &K,
    x: Rows<'_>,
    y: Rows<'_>,
    mut out: RowsMut<'_>,
) -> Result<(), Error> {
    if out.width() != y.width() {
        return Err(Error::Shape {
            what: Dim::OutputWidth,
            expected: y.width(),
            found: out.width(),
        });
    }
    if out.len() != y.len() {
        return Err(Error::Shape {
            what: Dim::OutputRows,
            expected: y.len(),
            found: out.len(),
        });
    }
    let o = out.as_mut_slice();
    let mut k = 0usize;
    let mut big = false;
    loo_sum(kernel, x, y, fit == Fit::LocalLinear, |_, r| {
        if let Some(slot) = o.get_mut(k) {
            *slot = r as f32;
            big |= !slot.is_finite();
        }
        k = k.saturating_add(1);
    })?;
    if big { Err(Error::Overflow) } else { Ok(()) }
}

/// The homoscedastic noise variance per value component: the mean squared leave-one-out
/// residual `σ̂²_c = Σ_i (y_ic - ŷ_{-i,c}(x_i))² / N`, into `out[..DV]`.
///
/// The leave-one-out residual has variance `σ²(1 + Σ_{j≠i} l_j²)` plus its squared bias, so
/// `σ̂²` errs on the large side (conservative bands); its mean over components is the
/// cross-validation score ([`loo_cv`](crate::fit::loo_cv), [`loo_cv_local_linear`](crate::fit::loo_cv_local_linear)).
///
/// # Errors
/// As [`loo_residuals`], and [`Error::OutputTooSmall`] if `out.len() < y.width()`.
///
/// # Examples
/// ```
/// use nadaraya::{Gaussian, Rows, fit::{self, Fit}};
/// let x = Rows::from_arrays(&[[0.0], [1.0], [2.0], [3.0]]);
/// let y = Rows::from_arrays(&[[0.0], [1.0], [2.0], [3.0]]);
/// let mut s2 = [1.0];
/// fit::residual_variance(Fit::LocalLinear, &Gaussian::new(1.0)?, x, y, &mut s2)?;
/// assert!(s2[0] < 1e-10); // linear data: no residual
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn residual_variance<K: Kernel + ?Sized>(
    fit: Fit,
    kernel: &K,
    x: Rows<'_>,
    y: Rows<'_>,
    out: &mut [f64],
) -> Result<(), Error> {
    let dv = y.width();
    let Some(out) = out.get_mut(..dv) else {
        return Err(Error::OutputTooSmall);
    };
    let mut acc = [0.0f64; MAX_DIM];
    let mut c = 0usize;
    loo_sum(kernel, x, y, fit == Fit::LocalLinear, |_, r| {
        if let Some(a) = acc.get_mut(c) {
            *a += r * r;
        }
        c = if c + 1 >= dv { 0 } else { c + 1 };
    })?;
    let n = x.len() as f64;
    for (o, a) in out.iter_mut().zip(&acc) {
        *o = a / n;
        if !o.is_finite() {
            return Err(Error::Overflow);
        }
    }
    Ok(())
}

/// The standard normal quantile `z` of a two-sided pointwise band at confidence `level`:
/// `Φ⁻¹((1 + level) / 2)` (`1.959964` for `0.95`).
///
/// Acklam's rational approximation refined by one Halley step on `libm::erfc`: within `1e-15`
/// relative over `level` in `[1e-6, 1 - 1e-12]` against the reference values of the tests.
///
/// # Errors
/// [`Error::InvalidProbability`] unless `0 < level < 1`.
///
/// # Examples
/// ```
/// let z = nadaraya::fit::band_z(0.95)?;
/// assert!((z - 1.959_963_984_540_054).abs() < 1e-12);
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn band_z(level: f64) -> Result<f64, Error> {
    if !(level > 0.0 && level < 1.0) {
        return Err(Error::InvalidProbability);
    }
    // The lower tail p = (1 - level)/2 ∈ (0, 1/2) and p - 1/2 = -level/2, both without
    // cancellation.
    Ok(-normal_lower_quantile(0.5 * (1.0 - level), -0.5 * level))
}

/// `Φ⁻¹(p)` for `0 < p ≤ 1/2`, given also `c = p - 1/2` exactly (P. J. Acklam's algorithm,
/// one Halley refinement step; near the centre the residual `Φ(x) - p` is formed as
/// `erf(x/√2)/2 - c`, which does not cancel).
fn normal_lower_quantile(p: f64, c: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = p < 0.02425;
    let x = if tail {
        let q = libm::sqrt(-2.0 * libm::log(p));
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else {
        let r = c * c;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * c
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    // Halley: e = Φ(x) - p, u = e·sqrt(2π)·exp(x²/2).
    let t = x / core::f64::consts::SQRT_2;
    let e = if tail {
        0.5 * libm::erfc(-t) - p
    } else {
        0.5 * libm::erf(t) - c
    };
    let u = e * libm::sqrt(2.0 * core::f64::consts::PI) * libm::exp(0.5 * x * x);
    x - u / (1.0 + 0.5 * x * u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Gaussian;
    use crate::fit::local_linear::tests::{gauss_solve, ref_weights};
    use crate::testing::lcg;
    use std::vec::Vec;

    /// The linear-smoother weights `l_i(q)` in plain `f64`: `e_0ᵀ (ZᵀWZ)⁻¹ z_i w_i` for the
    /// design `z_i = [1, x_i - q]` (local-linear) or `z_i = [1]` (Nadaraya–Watson).
    fn ref_l(w: &[f64], q: &[f32], x: &[f32], d: usize, linear: bool) -> Vec<f64> {
        let n = if linear { d + 1 } else { 1 };
        let z = |xi: &[f32]| -> Vec<f64> {
            core::iter::once(1.0)
                .chain(xi.iter().zip(q).map(|(a, b)| f64::from(*a) - f64::from(*b)))
                .take(n)
                .collect()
        };
        let mut a = std::vec![0.0; n * n];
        for (wi, xi) in w.iter().zip(x.chunks_exact(d)) {
            let zi = z(xi);
            for r in 0..n {
                for c in 0..n {
                    a[r * n + c] += wi * zi[r] * zi[c];
                }
            }
        }
        w.iter()
            .zip(x.chunks_exact(d))
            .map(|(wi, xi)| wi * gauss_solve(a.clone(), z(xi), n)[0])
            .collect()
    }

    /// `standard_error` against `sqrt(Σ l_i² σ_i²)` from [`ref_l`], constant and per-sample noise,
    /// both fits, interior and boundary queries; the value against `Σ l_i y_i`.
    #[test]
    fn matches_reference() {
        let mut worst = 0.0f64;
        for (seed, d) in [(1u64, 1usize), (2, 2), (3, 3)] {
            let mut r = lcg(seed);
            let n = 60;
            let x: Vec<f32> = (0..n * d).map(|_| r()).collect();
            let y: Vec<f32> = (0..n).map(|_| r() - 0.5).collect();
            let s2: Vec<f32> = (0..n).map(|_| 0.1 + r()).collect();
            for fit in [Fit::NadarayaWatson, Fit::LocalLinear] {
                for (h, qv) in [(0.3f32, 0.5f32), (0.5, 0.0), (0.2, 0.9)] {
                    let q = std::vec![qv; d];
                    let k = Gaussian::new(h).unwrap();
                    let l = ref_l(
                        &ref_weights(f64::from(h), &q, &x, d),
                        &q,
                        &x,
                        d,
                        fit == Fit::LocalLinear,
                    );
                    let value: f64 = l.iter().zip(&y).map(|(l, y)| l * f64::from(*y)).sum();
                    let (xr, yr) = (Rows::new(&x, d).unwrap(), Rows::new(&y, 1).unwrap());
                    for per in [false, true] {
                        let want = if per {
                            l.iter()
                                .zip(&s2)
                                .map(|(l, s)| l * l * f64::from(*s))
                                .sum::<f64>()
                        } else {
                            0.7 * l.iter().map(|l| l * l).sum::<f64>()
                        }
                        .sqrt();
                        let noise = if per {
                            Noise::PerSample(Rows::new(&s2, 1).unwrap())
                        } else {
                            Noise::Constant(&[0.7])
                        };
                        let mut e = [Estimate::default()];
                        standard_error(fit, &k, &q, xr, yr, noise, &mut e).unwrap();
                        let rel = (f64::from(e[0].se) - want).abs() / want;
                        worst = worst.max(rel);
                        assert!(
                            rel < 2e-6,
                            "{fit:?} d {d} h {h}: se {} want {want}",
                            e[0].se
                        );
                        assert!(
                            (f64::from(e[0].value) - value).abs() < 1e-6,
                            "{fit:?} value"
                        );
                    }
                }
            }
        }
        std::println!("standard_error vs f64 reference: worst relative error {worst:e}");
    }

    fn normal(r: &mut impl FnMut() -> f32) -> f64 {
        let (u, v) = (f64::from(r()).max(1e-12), f64::from(r()));
        (-2.0 * u.ln()).sqrt() * (2.0 * core::f64::consts::PI * v).cos()
    }

    /// Monte Carlo coverage of the 95 % band at interior points with a small `h` (bias ≈ 0.15 se):
    /// near 95 % for both fits (`standard_error`'s docs state the measured figures).
    #[test]
    fn coverage_monte_carlo() {
        let (n, reps, h, sd) = (400usize, 1000usize, 0.02f32, 0.3f64);
        let truth = |x: f64| (2.0 * core::f64::consts::PI * x).sin();
        let qs = [0.25f32, 0.5, 0.7];
        let z = band_z(0.95).unwrap();
        let k = Gaussian::new(h).unwrap();
        let mut r = lcg(77);
        for fit in [Fit::NadarayaWatson, Fit::LocalLinear] {
            let mut hits = 0usize;
            for _ in 0..reps {
                let x: Vec<f32> = (0..n).map(|_| r()).collect();
                let y: Vec<f32> = x
                    .iter()
                    .map(|&v| (truth(f64::from(v)) + sd * normal(&mut r)) as f32)
                    .collect();
                let (xr, yr) = (Rows::new(&x, 1).unwrap(), Rows::new(&y, 1).unwrap());
                let mut s2 = [0.0];
                residual_variance(fit, &k, xr, yr, &mut s2).unwrap();
                for q in qs {
                    let mut e = [Estimate::default()];
                    standard_error(fit, &k, &[q], xr, yr, Noise::Constant(&s2), &mut e).unwrap();
                    let (lo, hi) = e[0].band(z);
                    let t = truth(f64::from(q));
                    hits += usize::from(f64::from(lo) <= t && t <= f64::from(hi));
                }
            }
            let cov = hits as f64 / (reps * qs.len()) as f64;
            std::println!(
                "{fit:?}: 95% band coverage {:.2}% over {} intervals",
                100.0 * cov,
                reps * qs.len()
            );
            // Binomial sd at 3000 intervals: 0.4 %.
            assert!((0.935..=0.965).contains(&cov), "{fit:?}: coverage {cov}");
        }
    }

    /// Residuals and the variance against the LOO objectives; the quantile against tables.
    #[test]
    fn residuals_variance_and_quantiles() {
        let mut r = lcg(5);
        let x: Vec<f32> = (0..30).map(|_| r()).collect();
        let y: Vec<f32> = (0..60).map(|_| r()).collect();
        let k = Gaussian::new(0.2).unwrap();
        let (xr, yr) = (Rows::new(&x, 1).unwrap(), Rows::new(&y, 2).unwrap());
        let mut res = std::vec![0.0f32; 60];
        let mut s2 = [0.0f64; 2];
        loo_residuals(
            Fit::LocalLinear,
            &k,
            xr,
            yr,
            RowsMut::new(&mut res, 2).unwrap(),
        )
        .unwrap();
        residual_variance(Fit::LocalLinear, &k, xr, yr, &mut s2).unwrap();
        let cv = crate::fit::loo_cv_local_linear(&k, xr, yr).unwrap();
        assert!(((s2[0] + s2[1]) / 2.0 - cv).abs() < 1e-12 * cv);
        let m0: f64 = res.chunks(2).map(|p| f64::from(p[0]).powi(2)).sum::<f64>() / 30.0;
        assert!((m0 - s2[0]).abs() < 1e-6 * s2[0]);
        residual_variance(Fit::NadarayaWatson, &k, xr, yr, &mut s2).unwrap();
        let cv = crate::fit::loo_cv(&k, xr, yr).unwrap();
        assert!(
            ((s2[0] + s2[1]) / 2.0 - cv).abs() < 1e-5 * cv,
            "{s2:?} {cv}"
        );
        for (level, z) in [
            // mpmath at 40 digits, of the level as an f64: -√2·erfinv(level - 1).
            (0.95, 1.959_963_984_540_053_9),
            (0.99, 2.575_829_303_548_900_5),
            (0.5, 0.674_489_750_196_081_7),
            (0.999_999, 4.891_638_475_692_932),
            (1e-6, 1.253_314_137_315_828_3e-6),
            (1.0 - 1e-12, 7.130_509_892_879_272),
        ] {
            let got = band_z(level).unwrap();
            assert!((got - z).abs() <= 1e-15 * z, "{level}: {got} vs {z}");
        }
        for bad in [0.0, 1.0, -0.5, f64::NAN] {
            assert_eq!(band_z(bad), Err(Error::InvalidProbability));
        }
    }

    /// Heteroscedastic noise, `σ(x) = 0.05 + 0.5x`: the squared leave-one-out residuals smoothed
    /// by Nadaraya–Watson (`h = 0.1`, [`crate::attention`]) as `Noise::PerSample` keep the band
    /// near 95 % at both a quiet (`x = 0.2`) and a loud (`x = 0.8`) point, where one constant
    /// `σ̂²` over-covers the first and under-covers the second.
    #[test]
    fn heteroscedastic_coverage() {
        let (n, reps, h) = (400usize, 400usize, 0.02f32);
        let truth = |x: f64| (2.0 * core::f64::consts::PI * x).sin();
        let sd = |x: f64| 0.05 + 0.5 * x;
        let z = band_z(0.95).unwrap();
        let (k, ks) = (Gaussian::new(h).unwrap(), Gaussian::new(0.1).unwrap());
        let mut r = lcg(99);
        let mut hits = [[0usize; 2]; 2]; // [constant, per-sample][x = 0.2, 0.8]
        for _ in 0..reps {
            let x: Vec<f32> = (0..n).map(|_| r()).collect();
            let y: Vec<f32> = x
                .iter()
                .map(|&v| (truth(f64::from(v)) + sd(f64::from(v)) * normal(&mut r)) as f32)
                .collect();
            let (xr, yr) = (Rows::new(&x, 1).unwrap(), Rows::new(&y, 1).unwrap());
            let mut res = std::vec![0.0f32; n];
            loo_residuals(
                Fit::LocalLinear,
                &k,
                xr,
                yr,
                RowsMut::new(&mut res, 1).unwrap(),
            )
            .unwrap();
            let r2: Vec<f32> = res.iter().map(|v| v * v).collect();
            let mut s2x = std::vec![0.0f32; n];
            crate::attention(
                &ks,
                xr,
                xr,
                Rows::new(&r2, 1).unwrap(),
                crate::Mask::None,
                RowsMut::new(&mut s2x, 1).unwrap(),
            )
            .unwrap();
            let mut s2 = [0.0];
            residual_variance(Fit::LocalLinear, &k, xr, yr, &mut s2).unwrap();
            for (j, q) in [0.2f32, 0.8].into_iter().enumerate() {
                let t = truth(f64::from(q));
                for (m, noise) in [
                    Noise::Constant(&s2),
                    Noise::PerSample(Rows::new(&s2x, 1).unwrap()),
                ]
                .into_iter()
                .enumerate()
                {
                    let mut e = [Estimate::default()];
                    standard_error(Fit::LocalLinear, &k, &[q], xr, yr, noise, &mut e).unwrap();
                    let (lo, hi) = e[0].band(z);
                    hits[m][j] += usize::from(f64::from(lo) <= t && t <= f64::from(hi));
                }
            }
        }
        let cov = hits.map(|h| h.map(|c| c as f64 / reps as f64));
        std::println!(
            "heteroscedastic 95% coverage at x = 0.2, 0.8: constant σ² {:?}, smoothed σ²(x) {:?}",
            cov[0],
            cov[1]
        );
        // Binomial sd at 400 intervals: 1.1 %.
        for c in cov[1] {
            assert!((0.92..=0.98).contains(&c), "smoothed: {cov:?}");
        }
        assert!(cov[0][0] > 0.985 && cov[0][1] < 0.93, "constant: {cov:?}");
    }
}

//! FAVOR+: positive random features for the softmax kernel `exp(q·k/τ)`.

use nalgebra::DMatrix;

use crate::error::{len2, try_filled};
use crate::{Error, Projection, Sampling};

/// Which positive feature map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// `φ(x)_i = exp(ω_i·x' − |x'|²/2) / √m`, `m` features.
    Positive,
    /// The hyperbolic (±) map `φ(x) = exp(−|x'|²/2) / √(2m) · [exp(ω_i·x'), exp(−ω_i·x')]`, `2m`
    /// features: lower variance for the same projection, twice the feature work.
    Hyperbolic,
    /// Optimal positive random features (OPRF, "FAVOR++", Likhosherstov et al. 2022):
    /// `φ(x)_i = D·exp(A|ω_i|² + B ω_i·x' − |x'|²/2) / √m` with `B = √(1 − 4A)`,
    /// `D = (1 − 4A)^{d/4}` and the parameter `A ≤ 0` of [`Oprf`], `m` features. Unbiased for
    /// every such `A` (`A = 0` is [`Positive`](Self::Positive)); the `A` of [`Oprf::fit`]
    /// minimises the summed log-variance over the given queries and keys.
    Optimal(Oprf),
}

/// The parameter `A` of [`Variant::Optimal`], in closed form from the data's norms.
///
/// For `ω ~ N(0, I_d)` the variance of one OPRF sample of `exp(x·y)` is
/// `(1 − 4A)^d (1 − 8A)^{−d/2} exp(2(1 − 4A)|x + y|²/(1 − 8A)) e^{−|x|²−|y|²} − e^{2x·y}`; its
/// logarithm is linear in `|x + y|²`, so the `A` minimising its sum over a set of pairs depends on
/// `ρ = mean |x + y|² / d` only, and setting the derivative to zero gives
/// `A = (1 − 2ρ − √((2ρ + 1)² + 8ρ)) / 16 ≤ 0` (Likhosherstov et al. 2022, "Chefs' Random
/// Tables", Theorem 3.1; rederived here from the variance above).
///
/// # Examples
/// ```
/// use nadaraya_rf::Oprf;
/// assert_eq!(Oprf::from_rho(0.0).unwrap().a(), 0.0); // FAVOR+
/// let o = Oprf::from_rho(1.0).unwrap();
/// assert!((o.a() - (-1.0 - 17f32.sqrt()) / 16.0).abs() < 1e-6);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Oprf {
    // The bits of A (an f32 ≤ 0, finite), so that `Variant` keeps `Eq` and `Hash`.
    a_bits: u32,
}

impl core::fmt::Debug for Oprf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Oprf").field("a", &self.a()).finish()
    }
}

impl Oprf {
    /// The optimal `A` for `ρ = mean |x + y|² / d` (`x, y` already divided by `√τ`).
    ///
    /// Returns `None` if `ρ` is NaN, negative or infinite, or so large that `A` or `1 − 4A` is
    /// not finite in `f32` (`ρ` beyond about `8e37`).
    #[must_use]
    pub fn from_rho(rho: f64) -> Option<Self> {
        if !(rho.is_finite() && rho >= 0.0) {
            return None;
        }
        let a = (1.0 - 2.0 * rho - ((2.0 * rho + 1.0).powi(2) + 8.0 * rho).sqrt()) / 16.0;
        let a32 = a.min(0.0) as f32;
        let b2 = 1.0 - 4.0 * f64::from(a32);
        (a32.is_finite() && (b2 as f32).is_finite()).then_some(Self {
            a_bits: (a32 + 0.0).to_bits(),
        })
    }

    /// The `A` of [`from_rho`](Self::from_rho) for queries `q` (`M×d`) and keys `k` (`N×d`) at
    /// temperature `τ`: `ρ = (mean |q'|² + mean |k'|² + 2 q̄'·k̄') / d` with `x' = x/√τ` and
    /// `q̄', k̄'` the means, which is `mean_{t,j} |q'_t + k'_j|² / d` over all `M·N` pairs,
    /// computed in `f64` in `O((M + N)·d)`. For the Gaussian kernel of bandwidth `h` pass
    /// `τ = h²` ([`GaussianFeatures`](crate::GaussianFeatures)).
    ///
    /// # Errors
    /// - [`Error::ZeroDimension`] if `d == 0`;
    /// - [`Error::ShapeMismatch`] if a length is not a multiple of `d`;
    /// - [`Error::Empty`] if `q` or `k` has no rows;
    /// - [`Error::NonFinite`] if an input is NaN or infinite;
    /// - [`Error::InvalidTemperature`] if `τ` is not finite and `> 0`;
    /// - [`Error::ScoreOverflow`] if `ρ` is too large for [`from_rho`](Self::from_rho).
    pub fn fit(q: &[f32], k: &[f32], d: usize, tau: f32) -> Result<Self, Error> {
        if d == 0 {
            return Err(Error::ZeroDimension);
        }
        if !(q.len().is_multiple_of(d) && k.len().is_multiple_of(d)) {
            return Err(Error::ShapeMismatch);
        }
        if q.is_empty() || k.is_empty() {
            return Err(Error::Empty);
        }
        if !q.iter().chain(k).all(|v| v.is_finite()) {
            return Err(Error::NonFinite);
        }
        if !(tau.is_finite() && tau > 0.0) {
            return Err(Error::InvalidTemperature);
        }
        // Mean squared norm and mean row, in f64 (|x|² ≤ d·(3.4e38)² stays finite).
        let moments = |x: &[f32]| {
            let n = (x.len() / d) as f64;
            let mut mean = vec![0.0f64; d];
            let mut sq = 0.0f64;
            for row in x.chunks_exact(d) {
                for (m, &v) in mean.iter_mut().zip(row) {
                    let v = f64::from(v);
                    *m += v;
                    sq += v * v;
                }
            }
            mean.iter_mut().for_each(|m| *m /= n);
            (sq / n, mean)
        };
        let ((sq_q, mq), (sq_k, mk)) = (moments(q), moments(k));
        let cross: f64 = mq.iter().zip(&mk).map(|(a, b)| a * b).sum();
        let rho = ((sq_q + sq_k + 2.0 * cross) / (f64::from(tau) * d as f64)).max(0.0);
        Self::from_rho(rho).ok_or(Error::ScoreOverflow)
    }

    /// The parameter `A` (`≤ 0`).
    #[must_use]
    pub fn a(self) -> f32 {
        f32::from_bits(self.a_bits)
    }
}

/// Positive random features for the softmax kernel: `E[φ(q)·φ(k)] = exp(q·k/τ)` with
/// `x' = x/√τ` and `ω_i ~ N(0, I_d)` (FAVOR+, Choromanski et al. 2021).
///
/// Attention with these features ([`attention`](crate::attention),
/// [`causal_attention`](crate::causal_attention), [`CausalState`](crate::CausalState)) never
/// forms the `L×L` weight matrix. Every feature is `exp` of a real number, so every implied weight
/// is `≥ 0`; the stabilisers subtracted from the exponents cancel exactly in the ratio (see the
/// crate docs). There is no additive epsilon anywhere in the map.
///
/// # Examples
/// ```
/// use nadaraya_rf::{FavorPlus, Projection, RowNorm, Sampling, Variant};
/// let p = Projection::new(8, 64, Sampling::Orthogonal(RowNorm::Chi), 1)?;
/// let f = FavorPlus::new(p, 8f32.sqrt(), Variant::Positive)?;
/// assert_eq!(f.features(), 64);
/// let mut logphi = vec![0.0; 64];
/// f.log_features(&[0.1; 8], &mut logphi)?;
/// # Ok::<(), nadaraya_rf::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct FavorPlus {
    projection: Projection,
    variant: Variant,
    tau: f32,
    // 1/τ, for the half squared norm |x|²/(2τ).
    inv_tau: f32,
    // r×d column-major (r = m or 2m): the rows ω_i/√τ (and −ω_i/√τ for the hyperbolic variant).
    // Column j is contiguous, so this is also the row-major d×r matrix used by the step path.
    w: DMatrix<f32>,
    // Variant::Optimal only (empty otherwise): the per-feature 2A|ω_i|², added to the key
    // exponents (the query's A|ω_i|² moved to the key side; the product is what counts).
    bias: Vec<f32>,
}

impl FavorPlus {
    /// Features for temperature `τ` from a drawn projection.
    ///
    /// # Memory
    /// The projection (`4·m·d` bytes) and the scaled feature matrix, `4·r·d` bytes with `r = m`
    /// ([`Variant::Positive`]) or `2m` ([`Variant::Hyperbolic`]), allocated fallibly.
    ///
    /// # Errors
    /// - [`Error::InvalidTemperature`] if `τ` is not finite, not `> 0`, or `1/√τ` or `1/τ` is
    ///   not a normal `f32`;
    /// - [`Error::TooManyFeatures`] if the hyperbolic variant's `2m`, or `r·d`, overflows, or the
    ///   feature matrix cannot be allocated.
    pub fn new(projection: Projection, tau: f32, variant: Variant) -> Result<Self, Error> {
        let tau64 = f64::from(tau);
        let inv_sqrt = (1.0 / tau64.sqrt()) as f32;
        let inv_tau = (1.0 / tau64) as f32;
        if !(tau.is_finite() && tau > 0.0 && inv_sqrt.is_normal() && inv_tau.is_normal()) {
            return Err(Error::InvalidTemperature);
        }
        let r = match variant {
            Variant::Positive | Variant::Optimal(_) => projection.count(),
            Variant::Hyperbolic => projection
                .count()
                .checked_mul(2)
                .ok_or(Error::TooManyFeatures)?,
        };
        let w = build(&projection, r, row_scale(variant, f64::from(inv_sqrt)))?;
        let mut bias = match variant {
            Variant::Optimal(_) => try_filled(projection.count(), 0.0)?,
            Variant::Positive | Variant::Hyperbolic => Vec::new(),
        };
        oprf_bias(&projection, variant, &mut bias);
        Ok(Self {
            projection,
            variant,
            tau,
            inv_tau,
            w,
            bias,
        })
    }

    /// The Transformer default: `τ = √d`, `m` positive features, orthogonal rows with chi norms,
    /// draw 0 of `seed`.
    ///
    /// # Memory
    /// `8·m·d` bytes kept (the projection and the feature matrix), plus the scratch of the
    /// orthogonal draw ([`Projection::new`]).
    ///
    /// # Errors
    /// As [`Projection::new`], and [`Error::TooManyFeatures`] if the feature matrix cannot be
    /// allocated.
    pub fn for_dim(d: usize, m: usize, seed: u64) -> Result<Self, Error> {
        let p = Projection::new(d, m, Sampling::Orthogonal(crate::RowNorm::Chi), seed)?;
        Self::new(p, (d as f64).sqrt() as f32, Variant::Positive)
    }

    /// Replaces the projection by its next draw ([`Projection::redraw`]); the feature matrix is
    /// rewritten in place (no allocation besides the projection's scratch).
    ///
    /// # Errors
    /// [`Error::TooManyFeatures`] if the scratch of the orthogonal draw cannot be allocated; the
    /// features are then unchanged.
    pub fn redraw(&mut self) -> Result<(), Error> {
        self.projection.redraw()?;
        fill(
            &self.projection,
            &mut self.w,
            row_scale(self.variant, 1.0 / f64::from(self.tau).sqrt()),
        );
        oprf_bias(&self.projection, self.variant, &mut self.bias);
        Ok(())
    }

    /// The projection the features use.
    #[must_use]
    pub fn projection(&self) -> &Projection {
        &self.projection
    }

    /// The variant.
    #[must_use]
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// The temperature `τ`.
    #[must_use]
    pub fn temperature(&self) -> f32 {
        self.tau
    }

    /// The input dimension `d`.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.projection.dim()
    }

    /// The number of features `r` (`m`, or `2m` for [`Variant::Hyperbolic`]).
    #[must_use]
    pub fn features(&self) -> usize {
        self.w.nrows()
    }

    /// `log φ(x)`, unstabilised: `ω_i·x' − |x'|²/2 − ln(r)/2` for each of the `r` features
    /// (for [`Variant::Optimal`]: `ln D + A|ω_i|² + B ω_i·x' − |x'|²/2 − ln(r)/2`).
    ///
    /// Kept in the log domain so it never overflows; `exp` of it is the feature map of the
    /// definition, `Σ_i φ(q)_i φ(k)_i ≈ exp(q·k/τ)`.
    ///
    /// # Errors
    /// - [`Error::DimensionMismatch`] if `x.len() != d`;
    /// - [`Error::OutputTooSmall`] if `out.len() < r`;
    /// - [`Error::NonFinite`] if `x` is not finite;
    /// - [`Error::ScoreOverflow`] if an exponent is not finite in `f32`.
    pub fn log_features(&self, x: &[f32], out: &mut [f32]) -> Result<(), Error> {
        if x.len() != self.dim() {
            return Err(Error::DimensionMismatch {
                expected: self.dim(),
                found: x.len(),
            });
        }
        let r = self.features();
        let out = out.get_mut(..r).ok_or(Error::OutputTooSmall)?;
        if !x.iter().all(|v| v.is_finite()) {
            return Err(Error::NonFinite);
        }
        self.key_exponents(x, out)?;
        let mut shift = 0.5 * (r as f32).ln();
        if let Variant::Optimal(o) = self.variant {
            // The key side carries 2A|ω_i|²; the symmetric map has A|ω_i|² and ln D each.
            shift -= self.projection.dim() as f32 / 4.0 * (1.0 - 4.0 * o.a()).ln();
            for (x, &b) in out.iter_mut().zip(&self.bias) {
                *x -= 0.5 * b;
            }
        }
        let mut ok = true;
        for o in out {
            *o -= shift;
            ok &= o.is_finite();
        }
        if ok {
            Ok(())
        } else {
            Err(Error::ScoreOverflow)
        }
    }

    /// `out_i = ω_i·x'` (the query exponents, without the per-row constants that cancel).
    #[inline]
    pub(crate) fn query_exponents(&self, x: &[f32], out: &mut [f32]) {
        // `r ≥ 1` by construction; saying so lets the compiler drop `chunks_exact`'s zero-width
        // panic (the no-panic check, README "Panics").
        let r = self.features().max(1);
        out.fill(0.0);
        for (&xj, col) in x.iter().zip(self.w.as_slice().chunks_exact(r)) {
            for (o, &w) in out.iter_mut().zip(col) {
                *o += xj * w;
            }
        }
    }

    /// `out_i = ω_i·x' − |x'|²/2` (the key exponents; for [`Variant::Optimal`]
    /// `B ω_i·x' − |x'|²/2 + 2A|ω_i|²`).
    #[inline]
    pub(crate) fn key_exponents(&self, x: &[f32], out: &mut [f32]) -> Result<(), Error> {
        self.query_exponents(x, out);
        self.finish_key_exponents(x, out)
    }

    /// Turns query exponents `out = W x` of the key `x` into its key exponents in place:
    /// subtracts `|x'|²/2` and adds the per-feature OPRF bias.
    ///
    /// # Errors
    /// [`Error::ScoreOverflow`] if an exponent is not finite (NaN included).
    #[inline]
    pub(crate) fn finish_key_exponents(&self, x: &[f32], out: &mut [f32]) -> Result<(), Error> {
        let h = self.half_sq_norm(x);
        let mut ok = h.is_finite();
        for o in out.iter_mut() {
            *o -= h;
            ok &= o.is_finite();
        }
        for (o, &b) in out.iter_mut().zip(&self.bias) {
            *o += b;
            ok &= o.is_finite();
        }
        if ok {
            Ok(())
        } else {
            Err(Error::ScoreOverflow)
        }
    }

    /// `|x'|²/2 = |x|²/(2τ)`.
    #[inline]
    pub(crate) fn half_sq_norm(&self, x: &[f32]) -> f32 {
        0.5 * x.iter().map(|v| v * v).sum::<f32>() * self.inv_tau
    }

    /// The `r×d` column-major matrix of scaled rows.
    #[inline]
    pub(crate) fn matrix(&self) -> &DMatrix<f32> {
        &self.w
    }
}

/// The factor of the rows `ω_i` in the matrix: `s = 1/√τ`, times `B = √(1 − 4A)` for OPRF.
fn row_scale(variant: Variant, s: f64) -> f64 {
    match variant {
        Variant::Optimal(o) => s * (1.0 - 4.0 * f64::from(o.a())).sqrt(),
        Variant::Positive | Variant::Hyperbolic => s,
    }
}

/// Writes the per-feature `2A|ω_i|²` of [`Variant::Optimal`] into `bias` (`m` long; computed in
/// `f64`, rounded once); nothing for the other variants, whose `bias` is empty.
fn oprf_bias(p: &Projection, variant: Variant, bias: &mut [f32]) {
    if let Variant::Optimal(o) = variant {
        for (b, w) in bias.iter_mut().zip(p.rows().chunks_exact(p.dim())) {
            let n2: f64 = w.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
            *b = (2.0 * f64::from(o.a()) * n2) as f32;
        }
    }
}

/// The `r×d` column-major matrix `[ω_i·s]` (and `[−ω_i·s]` below it when `r = 2m`).
/// [`Error::TooManyFeatures`] if `r·d` floats cannot be allocated.
fn build(p: &Projection, r: usize, s: f64) -> Result<DMatrix<f32>, Error> {
    let d = p.dim();
    let mut w = DMatrix::from_vec(r, d, try_filled(len2(r, d)?, 0.0)?);
    fill(p, &mut w, s);
    Ok(w)
}

/// Writes the matrix of [`build`] into `w`, already `r×d`.
fn fill(p: &Projection, w: &mut DMatrix<f32>, s: f64) {
    let (m, d, rows) = (p.count(), p.dim(), p.rows());
    let r = w.nrows();
    for (j, col) in w.as_mut_slice().chunks_exact_mut(r).enumerate() {
        for (i, x) in col.iter_mut().enumerate() {
            let (row, sign) = if i < m { (i, 1.0) } else { (i - m, -1.0) };
            *x = (sign * f64::from(rows[row * d + j]) * s) as f32;
        }
    }
}

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
            Variant::Positive => projection.count(),
            Variant::Hyperbolic => projection
                .count()
                .checked_mul(2)
                .ok_or(Error::TooManyFeatures)?,
        };
        let w = build(&projection, r, f64::from(inv_sqrt))?;
        Ok(Self {
            projection,
            variant,
            tau,
            inv_tau,
            w,
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
            1.0 / f64::from(self.tau).sqrt(),
        );
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

    /// `log φ(x)`, unstabilised: `ω_i·x' − |x'|²/2 − ln(r)/2` for each of the `r` features.
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
        let shift = 0.5 * (r as f32).ln();
        for o in out {
            *o -= shift;
        }
        Ok(())
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

    /// `out_i = ω_i·x' − |x'|²/2` (the key exponents).
    #[inline]
    pub(crate) fn key_exponents(&self, x: &[f32], out: &mut [f32]) -> Result<(), Error> {
        self.query_exponents(x, out);
        let h = self.half_sq_norm(x);
        let mut ok = h.is_finite();
        for o in out.iter_mut() {
            *o -= h;
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

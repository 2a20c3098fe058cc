//! The trait every feature map of the crate implements.

use crate::error::try_filled;
use crate::{Error, FavorPlus, FourierFeatures, GaussianFeatures};

/// A random feature map `φ: ℝ^d → ℝ^r` whose inner products estimate a kernel:
/// `E[φ(x)·φ(y)] = K(x, y)`.
///
/// Implemented by [`FavorPlus`] (`K = exp(x·y/τ)`), [`GaussianFeatures`] and
/// [`FourierFeatures`] (`K = exp(−|x − y|²/2h²)`), so code can be generic over the map. The
/// positive maps also have `log_features` ([`FavorPlus::log_features`],
/// [`GaussianFeatures::log_features`]), the same map in the log domain, which never overflows;
/// what attention and smoothing use internally.
///
/// # Examples
/// ```
/// use nadaraya_rf::{FeatureMap, FourierFeatures, GaussianFeatures};
/// fn estimate(f: &impl FeatureMap) -> f32 {
///     f.kernel(&[0.0, 0.0], &[1.0, 0.0]).unwrap()
/// }
/// let exact = (-0.5f32).exp(); // h = 1, |x − y| = 1
/// assert!((estimate(&GaussianFeatures::for_dim(2, 4096, 1.0, 5)?) - exact).abs() < 0.05);
/// assert!((estimate(&FourierFeatures::for_dim(2, 4096, 1.0, 5)?) - exact).abs() < 0.05);
/// # Ok::<(), nadaraya_rf::Error>(())
/// ```
pub trait FeatureMap {
    /// The input dimension `d`.
    fn dim(&self) -> usize;

    /// The number of features `r` (the length of `φ(x)`).
    fn features(&self) -> usize;

    /// `φ(x)` into `out[..r]`.
    ///
    /// For the positive maps this is `exp` of `log_features`, so a feature below `f32`'s range
    /// is 0 (an exponent that high, above it, is [`Error::ScoreOverflow`]).
    ///
    /// # Errors
    /// - [`Error::Shape`] with [`Dim::Width`](nadaraya::Dim::Width) if `x.len() != d`
    ///   (`expected: d`);
    /// - [`Error::OutputTooSmall`] if `out.len() < r`;
    /// - [`Error::NonFinite`] if `x` is not finite;
    /// - [`Error::ScoreOverflow`] if an exponent or phase, or a feature, is not finite in `f32`.
    fn map(&self, x: &[f32], out: &mut [f32]) -> Result<(), Error>;

    /// The kernel estimate `φ(x)·φ(y)`.
    ///
    /// # Errors
    /// As [`map`](Self::map) for `x` then `y`; [`Error::TooManyFeatures`] if the two `r`-float
    /// feature vectors cannot be allocated.
    fn kernel(&self, x: &[f32], y: &[f32]) -> Result<f32, Error> {
        let r = self.features();
        let (mut a, mut b) = (try_filled(r, 0.0f32)?, try_filled(r, 0.0f32)?);
        self.map(x, &mut a)?;
        self.map(y, &mut b)?;
        Ok(a.iter().zip(&b).map(|(p, q)| p * q).sum())
    }
}

/// `out[..r] ← exp(out[..r])`, or [`Error::ScoreOverflow`] if a feature is not finite.
fn exp_features(out: &mut [f32], r: usize) -> Result<(), Error> {
    let mut ok = true;
    for o in out.iter_mut().take(r) {
        *o = o.exp();
        ok &= o.is_finite();
    }
    if ok {
        Ok(())
    } else {
        Err(Error::ScoreOverflow)
    }
}

impl FeatureMap for FavorPlus {
    fn dim(&self) -> usize {
        Self::dim(self)
    }

    fn features(&self) -> usize {
        Self::features(self)
    }

    fn map(&self, x: &[f32], out: &mut [f32]) -> Result<(), Error> {
        self.log_features(x, out)?;
        exp_features(out, Self::features(self))
    }
}

impl FeatureMap for GaussianFeatures {
    fn dim(&self) -> usize {
        Self::dim(self)
    }

    fn features(&self) -> usize {
        Self::features(self)
    }

    fn map(&self, x: &[f32], out: &mut [f32]) -> Result<(), Error> {
        self.log_features(x, out)?;
        exp_features(out, Self::features(self))
    }
}

impl FeatureMap for FourierFeatures {
    fn dim(&self) -> usize {
        Self::dim(self)
    }

    fn features(&self) -> usize {
        Self::features(self)
    }

    fn map(&self, x: &[f32], out: &mut [f32]) -> Result<(), Error> {
        self.map_into(x, out)
    }
}

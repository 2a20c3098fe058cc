//! Kernels: how a query and a sample location become a score.
//!
//! A [`Kernel`] turns `(x_q, x_i)` into a score `s_i`; the smoothing turns scores into weights
//! `α = softmax(s)` in one place ([`crate::OnlineSoftmax`]). A new kernel only has to produce
//! scores.

use crate::Error;
use crate::simd;

/// A similarity that yields log-domain scores: weights are `softmax(score)`.
///
/// [`score`](Kernel::score) is the plain scalar definition. [`scores`](Kernel::scores) computes
/// many rows at once; its default calls `score` per row, and the built-in kernels override it
/// with SIMD lanes. The two must agree to within a few ulp of the score.
pub trait Kernel {
    /// The score of one sample location `x` for the query `q` (`x.len() == q.len()`), in plain
    /// scalar arithmetic.
    #[must_use]
    fn score(&self, q: &[f32], x: &[f32]) -> f32;

    /// The scores of consecutive rows of `keys` (each `q.len()` long, row-major) into `out`.
    ///
    /// Writes `min(out.len(), keys.len() / q.len())` scores. With an empty `q` every score is 0.
    fn scores(&self, q: &[f32], keys: &[f32], out: &mut [f32]) {
        if q.is_empty() {
            out.fill(0.0);
            return;
        }
        for (o, x) in out.iter_mut().zip(keys.chunks_exact(q.len())) {
            *o = self.score(q, x);
        }
    }
}

/// The Gaussian kernel of bandwidth `h`: `score = -|x_q - x_i|² / (2h²)`.
///
/// Nadaraya–Watson smoothing with this kernel is the classical locally weighted average; a small
/// `h` makes the weights local.
///
/// # Examples
/// ```
/// use nadaraya::{Gaussian, Kernel};
/// let k = Gaussian::new(0.5)?;
/// assert_eq!(k.score(&[1.0], &[0.0]), -2.0);
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Gaussian {
    h: f32,
    // -1 / (2h²), rounded once from f64.
    neg_scale: f32,
}

impl Gaussian {
    /// A Gaussian kernel with bandwidth `h`.
    ///
    /// # Errors
    /// [`Error::InvalidBandwidth`] if `h` is not finite, not `> 0`, or `1/(2h²)` is not a normal
    /// `f32` (roughly `h` outside `[5e-20, 1.3e19]`).
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn new(h: f32) -> Result<Self, Error> {
        let scale = 0.5 / (f64::from(h) * f64::from(h));
        if !(h.is_finite() && h > 0.0 && (scale as f32).is_normal()) {
            return Err(Error::InvalidBandwidth);
        }
        Ok(Self {
            h,
            neg_scale: -(scale as f32),
        })
    }

    /// The bandwidth `h`.
    #[inline]
    #[must_use]
    pub fn bandwidth(&self) -> f32 {
        self.h
    }
}

impl Kernel for Gaussian {
    #[inline]
    fn score(&self, q: &[f32], x: &[f32]) -> f32 {
        let mut s = 0.0f32;
        for (a, b) in q.iter().zip(x) {
            let t = a - b;
            s += t * t;
        }
        s * self.neg_scale
    }

    #[inline]
    fn scores(&self, q: &[f32], keys: &[f32], out: &mut [f32]) {
        simd::row_scores::<true>(q, keys, self.neg_scale, out);
    }
}

/// Scaled dot-product similarity: `score = q·k_i / τ`, the kernel of Transformer attention.
///
/// # Examples
/// ```
/// use nadaraya::{Kernel, SoftmaxDot};
/// let k = SoftmaxDot::for_dim(4)?; // τ = √4 = 2
/// assert_eq!(k.score(&[1.0, 1.0, 0.0, 0.0], &[1.0, 1.0, 5.0, 0.0]), 1.0);
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SoftmaxDot {
    tau: f32,
    // 1 / τ, rounded once from f64.
    inv_tau: f32,
}

impl SoftmaxDot {
    /// A softmax-dot kernel with temperature `τ`.
    ///
    /// # Errors
    /// [`Error::InvalidTemperature`] if `τ` is not finite, not `> 0`, or `1/τ` is not a normal
    /// `f32`.
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn new(tau: f32) -> Result<Self, Error> {
        let inv = (1.0 / f64::from(tau)) as f32;
        if !(tau.is_finite() && tau > 0.0 && inv.is_normal()) {
            return Err(Error::InvalidTemperature);
        }
        Ok(Self { tau, inv_tau: inv })
    }

    /// The Transformer default `τ = √d` for key dimension `d`.
    ///
    /// # Errors
    /// [`Error::ZeroDimension`] if `d == 0`.
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn for_dim(d: usize) -> Result<Self, Error> {
        if d == 0 {
            return Err(Error::ZeroDimension);
        }
        Self::new(libm::sqrt(d as f64) as f32)
    }

    /// The temperature `τ`.
    #[inline]
    #[must_use]
    pub fn temperature(&self) -> f32 {
        self.tau
    }
}

impl Kernel for SoftmaxDot {
    #[inline]
    fn score(&self, q: &[f32], x: &[f32]) -> f32 {
        let mut s = 0.0f32;
        for (a, b) in q.iter().zip(x) {
            s += a * b;
        }
        s * self.inv_tau
    }

    #[inline]
    fn scores(&self, q: &[f32], keys: &[f32], out: &mut [f32]) {
        simd::row_scores::<false>(q, keys, self.inv_tau, out);
    }
}

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

    /// The crate's own kernels only (the argument cannot be named outside the crate):
    /// `Some((true, scale))` when [`scores`](Kernel::scores) is the crate's row kernel for
    /// `scale · Σ (q_j − k_j)²`, `Some((false, scale))` for `scale · Σ q_j k_j`, else `None`.
    /// Lets keys stored as `f16` or `bf16` be scored by the same arithmetic with their widening
    /// in registers, and lets the fused pass of the targets without float SIMD take a
    /// Gaussian's exponential range reduction straight from the squared distance, with a shift
    /// of 0 (such a score, `scale < 0`, is never positive), and lets batched attention compute
    /// the scores in the register-blocked kernel of its dispatch level.
    #[doc(hidden)]
    #[inline]
    fn row_form(&self, _: sealed::Crate) -> Option<(bool, f32)> {
        None
    }
}

pub(crate) mod sealed {
    /// A value only the crate can make: methods taking it cannot be overridden outside it.
    #[derive(Clone, Copy, Debug)]
    pub struct Crate(pub(crate) ());
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
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "f32", into = "f32"))]
pub struct Gaussian {
    h: f32,
    // -1 / (2h²), rounded once from f64.
    neg_scale: f32,
}

impl Gaussian {
    /// A Gaussian kernel with bandwidth `h`. A `const fn`, so a kernel can be a `static`:
    ///
    /// ```
    /// use nadaraya::Gaussian;
    /// static KERNEL: Gaussian = match Gaussian::new(0.25) {
    ///     Ok(k) => k,
    ///     Err(_) => panic!("bad bandwidth"), // a compile-time error, never a run-time panic
    /// };
    /// assert_eq!(KERNEL.bandwidth(), 0.25);
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidBandwidth`] if `h` is not finite, not `> 0`, or `1/(2h²)` is not a normal
    /// `f32`: `h` is accepted exactly from `3.833_233_8e-20` (`0x1f35_04f4`) to `6.521_909e18`
    /// (`0x5eb5_04f3`, the largest `f32` below `2^62.5`), inclusive
    /// ([`check_bandwidth`](Self::check_bandwidth)).
    #[inline]
    pub const fn new(h: f32) -> Result<Self, Error> {
        match Self::check_bandwidth(h) {
            Ok(neg_scale) => Ok(Self { h, neg_scale }),
            Err(e) => Err(e),
        }
    }

    /// The one bandwidth rule of the workspace: `Ok(-1/(2h²))` (rounded once from `f64`) if `h`
    /// is a valid bandwidth, as [`new`](Self::new) decides. Other crates with a Gaussian
    /// bandwidth (`nadaraya-rf`'s Fourier features) check theirs with it.
    ///
    /// # Errors
    /// [`Error::InvalidBandwidth`], exactly as [`new`](Self::new).
    ///
    /// # Examples
    /// ```
    /// use nadaraya::{Error, Gaussian};
    /// assert_eq!(Gaussian::check_bandwidth(0.5), Ok(-2.0));
    /// assert_eq!(Gaussian::check_bandwidth(1e19), Err(Error::InvalidBandwidth));
    /// ```
    #[inline]
    pub const fn check_bandwidth(h: f32) -> Result<f32, Error> {
        let scale = 0.5 / (h as f64 * h as f64);
        if !(h.is_finite() && h > 0.0 && (scale as f32).is_normal()) {
            return Err(Error::InvalidBandwidth);
        }
        Ok(-(scale as f32))
    }

    /// The bandwidth `h`.
    #[inline]
    #[must_use]
    pub const fn bandwidth(&self) -> f32 {
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

    #[inline]
    fn row_form(&self, _: sealed::Crate) -> Option<(bool, f32)> {
        Some((true, self.neg_scale))
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
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "f32", into = "f32"))]
pub struct SoftmaxDot {
    tau: f32,
    // 1 / τ, rounded once from f64.
    inv_tau: f32,
}

impl SoftmaxDot {
    /// A softmax-dot kernel with temperature `τ`; a `const fn` (a kernel can be a `static`).
    ///
    /// # Errors
    /// [`Error::InvalidTemperature`] if `τ` is not finite, not `> 0`, or `1/τ` is not a normal
    /// `f32`: `τ` is accepted exactly from `2.938_737e-39` (`0x0020_0001`, a subnormal) to
    /// `8.507_059e37` (`2^126`), inclusive.
    #[inline]
    pub const fn new(tau: f32) -> Result<Self, Error> {
        let inv = (1.0 / tau as f64) as f32;
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
    pub const fn temperature(&self) -> f32 {
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

    #[inline]
    fn row_form(&self, _: sealed::Crate) -> Option<(bool, f32)> {
        Some((false, self.inv_tau))
    }
}

/// Serialised as its parameter alone; deserialising validates it as [`Gaussian::new`] does.
impl TryFrom<f32> for Gaussian {
    type Error = Error;
    fn try_from(p: f32) -> Result<Self, Error> {
        Self::new(p)
    }
}

/// The kernel's parameter (what it is serialised as).
impl From<Gaussian> for f32 {
    fn from(k: Gaussian) -> f32 {
        k.bandwidth()
    }
}

/// Serialised as its parameter alone; deserialising validates it as [`SoftmaxDot::new`] does.
impl TryFrom<f32> for SoftmaxDot {
    type Error = Error;
    fn try_from(p: f32) -> Result<Self, Error> {
        Self::new(p)
    }
}

/// The kernel's parameter (what it is serialised as).
impl From<SoftmaxDot> for f32 {
    fn from(k: SoftmaxDot) -> f32 {
        k.temperature()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented limits of `h` and `τ`, at the boundary bit for bit (issue 11, class 9: the
    /// docs said `h` up to about 1.3e19, the real limit is 2^62.5). The reference is the
    /// definition in `f64`: `1/(2h²)` (or `1/τ`) rounded to `f32` must be normal.
    #[test]
    fn bandwidth_and_temperature_limits_are_exact() {
        let normal = |x: f64| (x as f32).is_normal();
        let (h_lo, h_hi) = (f32::from_bits(0x1f35_04f4), f32::from_bits(0x5eb5_04f3));
        assert_eq!(h_lo, 3.833_233_8e-20);
        assert_eq!(h_hi, 6.521_909e18);
        assert!(f64::from(h_hi) < 2f64.powf(62.5));
        assert!(f64::from(f32::from_bits(0x5eb5_04f4)) > 2f64.powf(62.5));
        for (h, ok) in [
            (h_lo, true),
            (h_hi, true),
            (f32::from_bits(h_lo.to_bits() - 1), false),
            (f32::from_bits(h_hi.to_bits() + 1), false),
        ] {
            assert_eq!(Gaussian::new(h).is_ok(), ok, "h = {h:e}");
            assert_eq!(normal(0.5 / (f64::from(h) * f64::from(h))), ok, "h = {h:e}");
        }
        // At both ends the kernel still scores: a finite, non-positive score.
        for h in [h_lo, h_hi] {
            let g = Gaussian::new(h).unwrap();
            let s = g.score(&[h], &[0.0]);
            assert!(s.is_finite() && (s + 0.5).abs() < 1e-6, "h = {h:e}: {s}");
        }
        let (t_lo, t_hi) = (f32::from_bits(0x0020_0001), f32::from_bits(0x7e80_0000));
        assert_eq!(t_lo, 2.938_737e-39);
        assert_eq!(f64::from(t_hi), 2f64.powi(126));
        for (t, ok) in [
            (t_lo, true),
            (t_hi, true),
            (f32::from_bits(t_lo.to_bits() - 1), false),
            (f32::from_bits(t_hi.to_bits() + 1), false),
        ] {
            assert_eq!(SoftmaxDot::new(t).is_ok(), ok, "tau = {t:e}");
            assert_eq!(normal(1.0 / f64::from(t)), ok, "tau = {t:e}");
        }
        for bad in [0.0, -0.0, -1.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert_eq!(Gaussian::new(bad), Err(Error::InvalidBandwidth));
            assert_eq!(SoftmaxDot::new(bad), Err(Error::InvalidTemperature));
        }
    }
}

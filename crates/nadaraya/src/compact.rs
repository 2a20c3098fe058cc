//! Compact-support kernels: Epanechnikov, tricube (LOESS) and uniform.
//!
//! Each is radial in the Euclidean distance, `u = |x_q - x_i| / h`, and scores `ln K(u)` (the
//! normalising constant cancels in the softmax), exactly `-inf` outside the support: there the
//! weight is exactly 0. `u²` is computed as the [`Gaussian`] of the same `h` computes its score
//! (`u² = -2 · score`, the same SIMD lanes), so the three share the Gaussian's bandwidth rule
//! ([`Gaussian::check_bandwidth`]) and its accuracy in `u²`; the support boundary is decided on
//! that rounded `u²` (exact when `h` is a power of two and the distance is exact).

use crate::fit::Bandwidth;
use crate::simd::{self, EPANECHNIKOV, TRICUBE, UNIFORM};
use crate::{Error, Gaussian, Kernel};

macro_rules! compact_kernel {
    (
        $(#[$doc:meta])*
        $name:ident, $profile:ident
    ) => {
        $(#[$doc])*
        ///
        /// # Accuracy
        /// [`score`](Kernel::score) is the plain scalar definition; [`scores`](Kernel::scores)
        /// computes the same `u²` in SIMD lanes and the profile with a vectorised `ln` (Cephes'
        /// `logf`, measured within 2 ulp of `f64` over `[2^-24, 1]`). The two agree to within a
        /// few ulp of the score plus the score's sensitivity to the rounding of `u²`, which
        /// grows as `1 / (1 - u)` near the edge of the support.
        #[derive(Clone, Copy, Debug, PartialEq)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        #[cfg_attr(feature = "serde", serde(try_from = "f32", into = "f32"))]
        pub struct $name {
            // The Gaussian of the same bandwidth: its score is -u²/2.
            g: Gaussian,
        }

        impl $name {
            #[doc = concat!("The `", stringify!($name), "` kernel with bandwidth `h` (the radius of its support);")]
            /// a `const fn`, so a kernel can be a `static`.
            ///
            /// # Errors
            /// [`Error::InvalidBandwidth`] exactly as [`Gaussian::new`]: `h` is accepted from
            /// `3.833_233_8e-20` (`0x1f35_04f4`) to `6.521_909e18` (`0x5eb5_04f3`), inclusive.
            #[inline]
            pub const fn new(h: f32) -> Result<Self, Error> {
                match Gaussian::new(h) {
                    Ok(g) => Ok(Self { g }),
                    Err(e) => Err(e),
                }
            }

            /// The bandwidth `h`.
            #[inline]
            #[must_use]
            pub const fn bandwidth(&self) -> f32 {
                self.g.bandwidth()
            }
        }

        impl Kernel for $name {
            #[inline]
            fn score(&self, q: &[f32], x: &[f32]) -> f32 {
                simd::profile_scalar::<$profile>(self.g.score(q, x))
            }

            #[inline]
            fn scores(&self, q: &[f32], keys: &[f32], out: &mut [f32]) {
                self.g.scores(q, keys, out);
                let n = if q.is_empty() {
                    out.len()
                } else {
                    (keys.len() / q.len()).min(out.len())
                };
                if let Some(s) = out.get_mut(..n) {
                    simd::profile_in_place::<$profile>(s);
                }
            }
        }

        impl Bandwidth for $name {
            #[inline]
            fn with_bandwidth(h: f32) -> Result<Self, Error> {
                Self::new(h)
            }

            #[inline]
            fn bandwidth(&self) -> f32 {
                $name::bandwidth(self)
            }
        }

        #[doc = concat!("Serialised as its parameter alone; deserialising validates it as [`", stringify!($name), "::new`] does.")]
        impl TryFrom<f32> for $name {
            type Error = Error;
            fn try_from(p: f32) -> Result<Self, Error> {
                Self::new(p)
            }
        }

        /// The kernel's parameter (what it is serialised as).
        impl From<$name> for f32 {
            fn from(k: $name) -> f32 {
                k.bandwidth()
            }
        }
    };
}

compact_kernel! {
    /// The Epanechnikov kernel of bandwidth `h`: `K(u) ∝ 1 - u²` on `u < 1`, 0 from `u = 1` on;
    /// `score = ln(1 - u²)`, `-inf` for `u ≥ 1`. The kernel with the least asymptotic mean
    /// integrated squared error.
    ///
    /// # Examples
    /// ```
    /// use nadaraya::{Epanechnikov, Kernel};
    /// let k = Epanechnikov::new(2.0)?;
    /// assert!((k.score(&[1.0], &[0.0]) - 0.75f32.ln()).abs() < 1e-7); // u = 1/2
    /// assert_eq!(k.score(&[2.0], &[0.0]), f32::NEG_INFINITY); // u = 1: no weight
    /// # Ok::<(), nadaraya::Error>(())
    /// ```
    Epanechnikov, EPANECHNIKOV
}

compact_kernel! {
    /// The tricube kernel of bandwidth `h` (LOESS's): `K(u) ∝ (1 - u³)³` on `u < 1`, 0 from
    /// `u = 1` on; `score = 3·ln(1 - u³)`, `-inf` for `u ≥ 1`.
    ///
    /// # Examples
    /// ```
    /// use nadaraya::{Kernel, Tricube};
    /// let k = Tricube::new(2.0)?;
    /// assert!((k.score(&[1.0], &[0.0]) - 3.0 * 0.875f32.ln()).abs() < 1e-6); // u = 1/2
    /// assert_eq!(k.score(&[0.0], &[-2.5]), f32::NEG_INFINITY);
    /// # Ok::<(), nadaraya::Error>(())
    /// ```
    Tricube, TRICUBE
}

compact_kernel! {
    /// The uniform (box) kernel of bandwidth `h`: `K(u) = 1` on the closed ball `u ≤ 1`, 0
    /// outside; `score = 0` inside, `-inf` outside. Nadaraya–Watson with it is the mean of the
    /// samples within distance `h`.
    ///
    /// # Examples
    /// ```
    /// use nadaraya::{Kernel, Uniform};
    /// let k = Uniform::new(0.5)?;
    /// assert_eq!(k.score(&[0.5], &[0.0]), 0.0); // u = 1: inside (closed support)
    /// assert_eq!(k.score(&[0.6], &[0.0]), f32::NEG_INFINITY);
    /// # Ok::<(), nadaraya::Error>(())
    /// ```
    Uniform, UNIFORM
}

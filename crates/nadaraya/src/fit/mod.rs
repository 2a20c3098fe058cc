//! Fitting: choosing the kernel from the data.
//!
//! The seed says that the bandwidth `h` sets how local the weights are; this module chooses it.
//! Every objective is written plainly first and tested against `f64`; the optimisers are
//! separate and generic over the objective.

mod cv;
mod diagonal;
mod search;

pub use cv::{MAX_VALUE_WIDTH, kfold_cv, loo_cv};
pub use diagonal::{
    CAP_TOLERANCE, DiagonalGaussian, MAX_DIMS, MAX_SPREADS, loo_cv_diagonal, select_bandwidths,
};
pub use search::{
    MAX_GRID, MAX_REFINE, Search, Selection, bracket, minimize_log_bandwidth, rule_of_thumb,
    select_bandwidth,
};

use crate::{Error, Gaussian, Kernel};

mod local_linear;
mod mlkr;
mod variance;

pub use local_linear::{
    Fit, MAX_DIM, MIN_PIVOT, local_linear, local_linear_batch, local_linear_slope,
    loo_cv_local_linear, select_bandwidth_local_linear,
};
pub use mlkr::{
    Descent, Learned, MAX_METRIC_ROWS, learn_metric, loo_cv_metric, metric_scratch_len,
};
pub use variance::{Estimate, Noise, band_z, loo_residuals, residual_variance, standard_error};

/// A kernel family with one bandwidth `h`: what the bandwidth selectors search over.
///
/// # Examples
/// ```
/// use nadaraya::Gaussian;
/// use nadaraya::fit::Bandwidth;
/// let k = Gaussian::with_bandwidth(0.5)?;
/// assert_eq!(Bandwidth::bandwidth(&k), 0.5);
/// # Ok::<(), nadaraya::Error>(())
/// ```
pub trait Bandwidth: Kernel + Sized {
    /// True if the score is a function of the distance `|q − x|` alone that does not increase
    /// with it, in the kernel's `f32` arithmetic too (every built-in family). For such a family
    /// [`select_bandwidth`] on one-column locations sorted ascending absorbs each sample's
    /// neighbours outwards and stops where the next weight is exactly 0 (below `2^-126` of the
    /// largest): the same objective up to rounding, and at a small bandwidth `O(N·w)` for
    /// windows of `w` samples instead of `O(N²)`. Unsorted locations, or `false` (the default),
    /// take the full pass.
    const RADIAL: bool = false;

    /// The search that suits the family's CV curves, what [`select_bandwidth`] should be given
    /// (the `nadaraya fit` CLI passes it): [`Search::DEFAULT`] unless the family overrides it.
    /// The compact families search a finer grid (64 points, the four lowest local minima
    /// refined, at most 200 evaluations): their CV curves are bumpy (samples enter and leave
    /// the support), and the default 16-point grid missed the best basin by 1 %.
    const SEARCH: Search = Search::DEFAULT;

    /// The kernel of this family with bandwidth `h`.
    ///
    /// # Errors
    /// [`Error::InvalidBandwidth`] if `h` is not a valid bandwidth of the family.
    fn with_bandwidth(h: f32) -> Result<Self, Error>;

    /// The bandwidth `h`.
    #[must_use]
    fn bandwidth(&self) -> f32;
}

impl Bandwidth for Gaussian {
    const RADIAL: bool = true;

    #[inline]
    fn with_bandwidth(h: f32) -> Result<Self, Error> {
        Self::new(h)
    }

    #[inline]
    fn bandwidth(&self) -> f32 {
        Gaussian::bandwidth(self)
    }
}

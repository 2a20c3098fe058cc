//! The one error type of the crate.

use core::fmt;

/// Everything that can go wrong in `nadaraya`: one small `Copy` enum.
///
/// Every fallible function lists, in its `# Errors` section, which of these it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Error {
    /// A Gaussian bandwidth `h` that is not finite, not `> 0`, or so small or large that
    /// `1 / (2h²)` is not a normal `f32`: the valid `h` are exactly the `f32` from
    /// `3.833_233_8e-20` to `6.521_909e18` (`2^62.5` rounded down), inclusive.
    InvalidBandwidth,
    /// A softmax temperature `τ` that is not finite, not `> 0`, or whose reciprocal is not a
    /// normal `f32`: the valid `τ` are exactly the `f32` from `2.938_737e-39` to
    /// `8.507_059e37` (`2^126`), inclusive.
    InvalidTemperature,
    /// An input value (query, key, value, sample) is NaN or infinite.
    NonFinite,
    /// There is nothing to average over: an empty [`Smoother`](crate::Smoother), no keys, or an
    /// [`OnlineSoftmax`](crate::OnlineSoftmax) that has seen no sample.
    Empty,
    /// The fixed-capacity store is full; the rejected sample is handed back.
    Full,
    /// A kernel score is NaN or `+inf` in `f32` (for example `q·k` overflowed upwards, or
    /// `inf - inf`). A score of `-inf` is not an error: it means weight exactly 0 (a sample
    /// outside a compact kernel's support, or a Gaussian or softmax-dot score below `-f32::MAX`).
    ScoreOverflow,
    /// A query has no sample with weight: every one of its scores is `-inf`, so no sample lies
    /// in the kernel's support ([`Epanechnikov`](crate::Epanechnikov),
    /// [`Tricube`](crate::Tricube) and [`Uniform`](crate::Uniform) give `-inf` at distances of
    /// `h` or more, `Uniform` beyond `h`). Never answered with a plain average of the samples.
    NoSupport,
    /// A result is not representable in `f32`: its exact value, computed in `f64` from the same
    /// `f32` scores and operands, has a component whose magnitude rounds beyond `f32::MAX`.
    ///
    /// A weighted average of finite values (`attention`, `Smoother::predict`, `OnlineSoftmax`) is
    /// a convex combination of them, so there this happens only for values within rounding of
    /// `±f32::MAX`; an `f32` partial sum that overflows on the way (huge values, in any order,
    /// tiling, ring position or merge order) is recomputed, never reported. In
    /// [`MultiHeadAttention::forward`](crate::MultiHeadAttention::forward) it is a projection or
    /// an output beyond `±f32::MAX`. The verdict depends only on the samples, never on their
    /// order (up to results within a few ulp of `f32::MAX`, which rounding may put either side).
    Overflow,
    /// A row width (`d`, `dv`, a [`Rows`](crate::Rows) width) is zero, or a batch of zero
    /// problems was asked for.
    ZeroDimension,
    /// Operands whose shapes do not fit together: `what` names the dimension, `expected` is what
    /// it must be (given the other operands), `found` what it is. See [`Dim`] for each case.
    Shape {
        /// Which dimension of which operand.
        what: Dim,
        /// What it must be.
        expected: usize,
        /// What it is.
        found: usize,
    },
    /// An output buffer is shorter than the result.
    OutputTooSmall,
    /// A sequence is longer than the fixed capacity chosen at compile time.
    CapacityExceeded,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Self::Shape {
            what,
            expected,
            found,
        } = self
        {
            return write!(
                f,
                "shape mismatch in {what}: expected {expected}, found {found}"
            );
        }
        f.write_str(match self {
            Self::InvalidBandwidth => {
                "bandwidth h must be finite and > 0, with 1/(2h^2) a normal f32"
            }
            Self::InvalidTemperature => {
                "temperature tau must be finite and > 0, with 1/tau a normal f32"
            }
            Self::NonFinite => "input contains NaN or infinity",
            Self::Empty => "nothing to average over",
            Self::Full => "fixed-capacity store is full",
            Self::ScoreOverflow => "a kernel score is NaN or +infinity in f32",
            Self::NoSupport => "no sample in the kernel's support: every score is -infinity",
            Self::Overflow => "a result is not representable in f32",
            Self::ZeroDimension => "a dimension is zero",
            Self::OutputTooSmall => "output buffer is too small",
            Self::CapacityExceeded => "sequence longer than the fixed capacity",
            Self::Shape { .. } => "shape mismatch",
        })
    }
}

impl core::error::Error for Error {}

/// The dimension named by an [`Error::Shape`]: which operand, and which of its sizes.
///
/// Shapes are checked before anything is computed or written, in this order: widths, then row
/// counts, then the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Dim {
    /// A flat slice does not split into rows: `expected` is the row width, `found` the slice
    /// length, which is not a multiple of it ([`Rows::new`](crate::Rows::new)).
    Flat,
    /// The queries' width differs from the keys' width (`expected`: the keys' width).
    QueryWidth,
    /// A row's width differs from the width fixed by the type (`expected`: the const `D` or `DV`
    /// of a [`Smoother`](crate::Smoother) or [`OnlineSoftmax`](crate::OnlineSoftmax)).
    Width,
    /// The values have a different number of rows than the keys (`expected`: key rows).
    ValueRows,
    /// The output has a different number of rows than the queries (`expected`: query rows).
    OutputRows,
    /// The output's width differs from the values' width (`expected`: value width).
    OutputWidth,
    /// A causal query without its key: more query rows than key rows (`expected`: the key rows,
    /// the most queries allowed; `found`: the query rows).
    CausalQueries,
    /// A batched operand's rows do not split into the batch's problems (`expected`: the batch
    /// size, `found`: that operand's row count, not a multiple of it).
    Batch,
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Flat => "a flat slice (expected: the row width, found: its length)",
            Self::QueryWidth => "the query width",
            Self::Width => "a row width",
            Self::ValueRows => "the value rows",
            Self::OutputRows => "the output rows",
            Self::OutputWidth => "the output width",
            Self::CausalQueries => "the causal query rows (expected: at most)",
            Self::Batch => "a batched operand (expected: the batch size, found: its rows)",
        })
    }
}

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
    /// A finite sample coordinate beyond the range of the [`Smoother`](crate::Smoother)'s
    /// storage [`Element`](crate::Element): rounded to it, it would be infinite. For `f16` that
    /// is a magnitude of 65 520 or more (the largest `f16` is 65 504; from 65 520 on, rounding to
    /// nearest gives infinity), for `bf16` one of `3.396_177_5e38` (the `f32` with bits `0x7f7f_8000`) or more; an `f32` store never
    /// returns it. The rejected sample is handed back.
    StorageOverflow,
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
    /// A sequence is longer than the fixed capacity chosen at compile time, or a local-linear
    /// fit's input or value width exceeds [`fit::MAX_DIM`](crate::fit::MAX_DIM).
    CapacityExceeded,
    /// A local-linear fit's weighted design does not determine a line (hyperplane): a
    /// coordinate with zero weighted spread (all the weight on one location, a compact kernel
    /// with one sample in its support), the weight on at most `D` points, or collinear samples
    /// (a Cholesky pivot of the unit-diagonal weighted covariance below
    /// [`fit::MIN_PIVOT`](crate::fit::MIN_PIVOT)). No ridge is added: a larger bandwidth, or
    /// Nadaraya–Watson, is the remedy.
    Singular,
    /// A probability (a confidence level, [`fit::band_z`](crate::fit::band_z)) that is not
    /// strictly between 0 and 1, or NaN.
    InvalidProbability,
    /// An optimiser's hyperparameter out of range ([`optim`](crate::optim)): a learning rate
    /// not finite and `> 0`, a momentum or a decay `β` not in `[0, 1)`, or an `ε` not finite
    /// and `> 0`.
    InvalidHyperparameter,
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
            Self::StorageOverflow => "a sample is beyond the range of the store's element type",
            Self::ScoreOverflow => "a kernel score is NaN or +infinity in f32",
            Self::NoSupport => "no sample in the kernel's support: every score is -infinity",
            Self::Overflow => "a result is not representable in f32",
            Self::ZeroDimension => "a dimension is zero",
            Self::OutputTooSmall => "output buffer is too small",
            Self::CapacityExceeded => "sequence longer than the fixed capacity",
            Self::Singular => "the weighted local-linear design is singular",
            Self::InvalidProbability => "a probability must be strictly between 0 and 1",
            Self::InvalidHyperparameter => {
                "an optimiser hyperparameter is out of range (learning rate and epsilon finite and > 0, momentum and beta in [0, 1))"
            }
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
    /// An `ndarray` view that is not in standard (row-major, contiguous) layout, such as a
    /// transpose or a strided slice (`expected`: the stride it must have, in elements — 1 along
    /// a row, the width between rows; `found`: its stride, 0 if negative). Only with the
    /// `ndarray` feature.
    Stride,
    /// The log-sum-exp slice of [`attention_lse`](crate::attention_lse) or
    /// [`attention_backward`](crate::attention_backward) has not one entry per query
    /// (`expected`: the query rows, `found`: its length).
    Lse,
    /// A gradient operand of [`attention_backward`](crate::attention_backward) (`d_out`, `d_q`,
    /// `d_keys`, `d_values`, checked in that order) has a different number of rows than the
    /// operand it belongs to (`expected`: the rows of the output, queries, keys or values).
    GradientRows,
    /// A gradient operand of [`attention_backward`](crate::attention_backward) (in the order of
    /// [`GradientRows`](Self::GradientRows)) has a different width than the operand it belongs
    /// to (`expected`: the value width for `d_out` and `d_values`, the key width for `d_q` and
    /// `d_keys`).
    GradientWidth,
    /// An [`optim`](crate::optim) step's gradients do not match its parameters: not one
    /// gradient slice per parameter slice (`expected`: the parameter slices, `found`: the
    /// gradient slices), or a gradient slice of another length than its parameters
    /// (`expected`: the parameters' length).
    Parameters,
    /// An [`optim`](crate::optim) step's state slice has not the length the optimiser needs
    /// (`expected`: the total number of parameters, `found`: its length).
    OptimiserState,
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
            Self::Stride => "a view's stride (not row-major: expected, found in elements)",
            Self::Lse => "the log-sum-exp slice (expected: one entry per query)",
            Self::GradientRows => "the rows of a gradient operand",
            Self::GradientWidth => "the width of a gradient operand",
            Self::Parameters => "the gradients of an optimiser step (expected: the parameters')",
            Self::OptimiserState => "an optimiser's state (expected: one entry per parameter)",
        })
    }
}

//! The error type of the crate.

use core::fmt;

/// Everything that can go wrong in `nadaraya-rf`: one small `Copy` enum.
///
/// It mirrors [`nadaraya::Error`] where the meaning is the same (shapes, finiteness,
/// temperature, bandwidth) and adds what only random features need.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// A dimension `d` or `dv` is zero.
    ZeroDimension,
    /// The number of random features `m` is zero.
    ZeroFeatures,
    /// A size set by the arguments does not fit in memory: `m·d` (the projection), `r·d` (the
    /// feature matrix, `r = m` or `2m`), `r·dv` (attention's key sums, a causal state), `N·r`
    /// ([`weights`](crate::weights)) or a scratch buffer of the orthogonal draw overflows `usize`,
    /// or its allocation fails. Allocations set by arguments are fallible, so no argument can
    /// abort the process (the memory each call needs is in its docs and the crate README).
    TooManyFeatures,
    /// The row length `d` of the inputs differs from the dimension the features were drawn for.
    DimensionMismatch {
        /// The dimension of the projection.
        expected: usize,
        /// The dimension passed to the call.
        found: usize,
    },
    /// Slice lengths do not fit the stated shapes (not a multiple of `d` or `dv`, keys and values
    /// with different row counts, a causal query without its key, a batch that does not split
    /// evenly).
    ShapeMismatch,
    /// There is nothing to average over: no keys, or an empty batch.
    Empty,
    /// An output buffer is shorter than the result.
    OutputTooSmall,
    /// An input value (query, key, value, sample) is NaN or infinite.
    NonFinite,
    /// A softmax temperature `τ` that is not finite, not `> 0`, or whose reciprocal square root is
    /// not a normal `f32`.
    InvalidTemperature,
    /// A Gaussian bandwidth `h` that is not finite, not `> 0`, or whose reciprocal is not a normal
    /// `f32`.
    InvalidBandwidth,
    /// A feature exponent `ω·x' − |x'|²/2` (or a Fourier phase) is not finite in `f32`: the inputs
    /// are too large for the features.
    ScoreOverflow,
    /// A result is not finite in `f32`. FAVOR+ attention never returns it for finite inputs (its
    /// outputs are weighted averages with weights `≥ 0`, computed from scaled sums; see
    /// [`attention`](crate::attention)); the signed random-Fourier estimator can.
    OutputOverflow,
}

impl Error {
    /// The error for a shape the core rejected ([`nadaraya::attention_shape`],
    /// [`nadaraya::weights_shape`]): the same variant.
    pub(crate) fn from_shape(e: nadaraya::Error) -> Self {
        match e {
            nadaraya::Error::ZeroDimension => Self::ZeroDimension,
            nadaraya::Error::Empty => Self::Empty,
            nadaraya::Error::OutputTooSmall => Self::OutputTooSmall,
            // The shape checks return nothing else; a mismatch is the closest meaning.
            _ => Self::ShapeMismatch,
        }
    }
}

/// `len` copies of `value` in a freshly, fallibly allocated vector: [`Error::TooManyFeatures`] if
/// `len` elements do not fit in memory (the byte count overflows, or the allocator refuses).
///
/// The one way this crate allocates a buffer whose size an argument sets.
pub(crate) fn try_filled<T: Clone>(len: usize, value: T) -> Result<Vec<T>, Error> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| Error::TooManyFeatures)?;
    v.resize(len, value);
    Ok(v)
}

/// `a·b` as a buffer length: [`Error::TooManyFeatures`] if it overflows `usize`.
pub(crate) fn len2(a: usize, b: usize) -> Result<usize, Error> {
    a.checked_mul(b).ok_or(Error::TooManyFeatures)
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroDimension => f.write_str("a dimension is zero"),
            Self::ZeroFeatures => f.write_str("the number of random features is zero"),
            Self::TooManyFeatures => {
                f.write_str("a buffer the arguments ask for does not fit in memory")
            }
            Self::DimensionMismatch { expected, found } => write!(
                f,
                "features were drawn for dimension {expected}, inputs have dimension {found}"
            ),
            Self::ShapeMismatch => f.write_str("slice lengths do not match the shapes"),
            Self::Empty => f.write_str("nothing to average over"),
            Self::OutputTooSmall => f.write_str("output buffer is too small"),
            Self::NonFinite => f.write_str("input contains NaN or infinity"),
            Self::InvalidTemperature => {
                f.write_str("temperature tau must be finite and > 0, with 1/sqrt(tau) a normal f32")
            }
            Self::InvalidBandwidth => {
                f.write_str("bandwidth h must be finite and > 0, with 1/h a normal f32")
            }
            Self::ScoreOverflow => f.write_str("a feature exponent is not finite in f32"),
            Self::OutputOverflow => f.write_str("the weighted sum of values is not finite in f32"),
        }
    }
}

impl std::error::Error for Error {}

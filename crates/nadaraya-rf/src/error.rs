//! The error type of the crate.

use core::fmt;

use nadaraya::Dim;

/// Everything that can go wrong in `nadaraya-rf`: one small `Copy` enum.
///
/// Where the meaning is the core's, the variant has the core's name and payload
/// ([`ZeroDimension`](Self::ZeroDimension), [`Shape`](Self::Shape), [`Empty`](Self::Empty),
/// [`OutputTooSmall`](Self::OutputTooSmall), [`NonFinite`](Self::NonFinite),
/// [`InvalidTemperature`](Self::InvalidTemperature), [`InvalidBandwidth`](Self::InvalidBandwidth),
/// [`ScoreOverflow`](Self::ScoreOverflow), [`Overflow`](Self::Overflow)), and
/// [`From<nadaraya::Error>`](#impl-From%3CError%3E-for-Error) maps each core error to it, so `?`
/// works on both crates' results in a function returning `nadaraya_rf::Error`. Only random
/// features add [`ZeroFeatures`](Self::ZeroFeatures) and
/// [`TooManyFeatures`](Self::TooManyFeatures).
///
/// Both crates name their error `Error`: after `use nadaraya::*; use nadaraya_rf::*;` write
/// `nadaraya_rf::Error` (or `nadaraya::Error`) by its path; every other name the two crates
/// export is either distinct or the same item (`Rows`, `RowsMut`, `Mask`, `Dim` are the core's,
/// re-exported).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// A row width (`d`, `dv`, a [`Rows`](nadaraya::Rows) width) is zero, or a batch of zero
    /// problems was asked for.
    ZeroDimension,
    /// The number of random features `m` is zero.
    ZeroFeatures,
    /// A size set by the arguments does not fit in memory: `m·d` (the projection), `r·d` (the
    /// feature matrix, `r = m` or `2m`), `r·dv` (attention's key sums, a causal state), `N·r`
    /// ([`FavorPlus::weights`](crate::FavorPlus::weights)) or a scratch buffer of the orthogonal
    /// draw overflows `usize`, or its allocation fails. Allocations set by arguments are fallible,
    /// so no argument can abort the process (the memory each call needs is in its docs and the
    /// crate README).
    TooManyFeatures,
    /// Operands whose shapes do not fit together, with the core's payload
    /// ([`nadaraya::Error::Shape`]): `what` names the dimension ([`Dim`]), `expected` is what it
    /// must be, `found` what it is. A row whose width is not the features' dimension `d` is
    /// [`Dim::Width`] with `expected: d`.
    Shape {
        /// Which dimension of which operand.
        what: Dim,
        /// What it must be.
        expected: usize,
        /// What it is.
        found: usize,
    },
    /// There is nothing to average over: no keys, a query before the first token of a
    /// [`CausalState`](crate::CausalState), or (in
    /// [`FourierFeatures::smooth`](crate::FourierFeatures::smooth)) a query whose estimated kernel
    /// mass is below the floor.
    Empty,
    /// An output buffer is shorter than the result.
    OutputTooSmall,
    /// An input value (query, key, value, sample) is NaN or infinite.
    NonFinite,
    /// A softmax temperature `τ` outside the core's rule ([`nadaraya::SoftmaxDot::new`]): not
    /// finite, not `> 0`, or `1/τ` not a normal `f32`.
    InvalidTemperature,
    /// A Gaussian bandwidth `h` outside the core's rule ([`nadaraya::Gaussian::new`]): not
    /// finite, not `> 0`, or `1/(2h²)` not a normal `f32`.
    InvalidBandwidth,
    /// A feature exponent `ω·x' − |x'|²/2` (or a Fourier phase) is not finite in `f32`: the inputs
    /// are too large for the features.
    ScoreOverflow,
    /// A result is not finite in `f32` (the core's name for the same failure). FAVOR+ attention
    /// never returns it for finite inputs (its outputs are weighted averages with weights `≥ 0`,
    /// computed from scaled sums; see [`FavorPlus::attention`](crate::FavorPlus::attention)); the
    /// signed random-Fourier estimator can.
    Overflow,
    /// A core error with no counterpart above, carried as it is (none of this crate's functions
    /// returns one; it exists because [`nadaraya::Error`] may grow, for example
    /// [`nadaraya::Error::Full`] passed through `?`).
    Core(nadaraya::Error),
}

impl From<nadaraya::Error> for Error {
    /// The variant of the same name (and payload), or [`Error::Core`] for a core error this
    /// crate has no variant for.
    fn from(e: nadaraya::Error) -> Self {
        match e {
            nadaraya::Error::ZeroDimension => Self::ZeroDimension,
            nadaraya::Error::Shape {
                what,
                expected,
                found,
            } => Self::Shape {
                what,
                expected,
                found,
            },
            nadaraya::Error::Empty => Self::Empty,
            nadaraya::Error::OutputTooSmall => Self::OutputTooSmall,
            nadaraya::Error::NonFinite => Self::NonFinite,
            nadaraya::Error::InvalidTemperature => Self::InvalidTemperature,
            nadaraya::Error::InvalidBandwidth => Self::InvalidBandwidth,
            nadaraya::Error::ScoreOverflow => Self::ScoreOverflow,
            nadaraya::Error::Overflow => Self::Overflow,
            e => Self::Core(e),
        }
    }
}

/// The shape error `{ what, expected, found }`.
pub(crate) const fn shape(what: Dim, expected: usize, found: usize) -> Error {
    Error::Shape {
        what,
        expected,
        found,
    }
}

/// `Ok` if `width` is the features' dimension `d`, else the [`Dim::Width`] shape error.
pub(crate) const fn check_width(d: usize, width: usize) -> Result<(), Error> {
    if width == d {
        Ok(())
    } else {
        Err(shape(Dim::Width, d, width))
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
            Self::Shape {
                what,
                expected,
                found,
            } => write!(
                f,
                "shape mismatch in {what}: expected {expected}, found {found}"
            ),
            Self::Empty => f.write_str("nothing to average over"),
            Self::OutputTooSmall => f.write_str("output buffer is too small"),
            Self::NonFinite => f.write_str("input contains NaN or infinity"),
            Self::InvalidTemperature => {
                f.write_str("temperature tau must be finite and > 0, with 1/tau a normal f32")
            }
            Self::InvalidBandwidth => {
                f.write_str("bandwidth h must be finite and > 0, with 1/(2h^2) a normal f32")
            }
            Self::ScoreOverflow => f.write_str("a feature exponent is not finite in f32"),
            Self::Overflow => f.write_str("a result is not representable in f32"),
            Self::Core(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Core(e) => Some(e),
            _ => None,
        }
    }
}

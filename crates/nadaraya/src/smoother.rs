//! A fixed-capacity Nadaraya–Watson smoother.

use heapless::Deque;

use crate::attention::normalise_scores;
use crate::element;
use crate::softmax::{Lse, TILE, finish_or_exact};
use crate::{Dim, Element, Error, Kernel, Mask, Rows, RowsMut, simd};

// The memory promise, checked for every target the crate is built for: the store adds at most
// 64 bytes to its samples.
const _: () = assert!(core::mem::size_of::<Smoother<crate::Gaussian, 64, 1, 1>>() <= 512 + 64);
// And half-precision storage takes half the bytes for its samples, with the same headroom.
#[cfg(feature = "half")]
const _: () =
    assert!(core::mem::size_of::<Smoother<crate::Gaussian, 64, 1, 1, half::f16>>() <= 256 + 64);

/// `predict_many` takes queries four at a time through the samples when they hold more floats
/// than this (32 KiB): below, every sample stays in L1 anyway and one query at a time costs
/// fewer instructions.
const BLOCK_ABOVE_FLOATS: usize = 8192;

/// A sample `(x, y)`: location `x` and response `y`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Sample<const D: usize, const DV: usize> {
    /// Location (key).
    pub x: [f32; D],
    /// Response (value).
    pub y: [f32; DV],
}

/// A sample the store would not take, handed back with the reason.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Rejected<const D: usize, const DV: usize> {
    /// Why: [`Error::Full`], [`Error::NonFinite`] or (a half-precision store)
    /// [`Error::StorageOverflow`].
    pub error: Error,
    /// The sample, untouched.
    pub sample: Sample<D, DV>,
}

/// The samples of a [`Smoother`], oldest first: [`Smoother::iter`], or `&smoother` in a `for`.
/// Over a half-precision store, the stored (rounded) samples widened to `f32` (exactly).
#[derive(Clone, Debug)]
pub struct SampleIter<'a, const D: usize, const DV: usize, E: Element = f32> {
    x: core::iter::Chain<core::slice::Iter<'a, [E; D]>, core::slice::Iter<'a, [E; D]>>,
    y: core::iter::Chain<core::slice::Iter<'a, [E; DV]>, core::slice::Iter<'a, [E; DV]>>,
}

/// A stored sample widened to `f32` (exact).
#[inline]
fn widen<const D: usize, const DV: usize, E: Element>(x: &[E; D], y: &[E; DV]) -> Sample<D, DV> {
    Sample {
        x: x.map(E::to_f32),
        y: y.map(E::to_f32),
    }
}

impl<const D: usize, const DV: usize, E: Element> Iterator for SampleIter<'_, D, DV, E> {
    type Item = Sample<D, DV>;
    #[inline]
    fn next(&mut self) -> Option<Sample<D, DV>> {
        match (self.x.next(), self.y.next()) {
            (Some(x), Some(y)) => Some(widen(x, y)),
            _ => None,
        }
    }
    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.x.size_hint()
    }
}

impl<const D: usize, const DV: usize, E: Element> DoubleEndedIterator for SampleIter<'_, D, DV, E> {
    #[inline]
    fn next_back(&mut self) -> Option<Sample<D, DV>> {
        match (self.x.next_back(), self.y.next_back()) {
            (Some(x), Some(y)) => Some(widen(x, y)),
            _ => None,
        }
    }
}

impl<const D: usize, const DV: usize, E: Element> ExactSizeIterator for SampleIter<'_, D, DV, E> {}

impl<const D: usize, const DV: usize, E: Element> core::iter::FusedIterator
    for SampleIter<'_, D, DV, E>
{
}

impl<'a, K: Kernel, const N: usize, const D: usize, const DV: usize, E: Element> IntoIterator
    for &'a Smoother<K, N, D, DV, E>
{
    type Item = Sample<D, DV>;
    type IntoIter = SampleIter<'a, D, DV, E>;
    #[inline]
    fn into_iter(self) -> SampleIter<'a, D, DV, E> {
        self.iter()
    }
}

impl<const D: usize, const DV: usize> core::fmt::Display for Rejected<D, DV> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "sample rejected: {}", self.error)
    }
}

impl<const D: usize, const DV: usize> core::error::Error for Rejected<D, DV> {}

/// The reason, without the sample: so that `s.push(x, y)?` compiles in a function returning
/// [`Error`]. (Keep the [`Rejected`] when the sample must not be lost.)
///
/// # Examples
/// ```
/// use nadaraya::{Error, Gaussian, Smoother};
/// fn fill(s: &mut Smoother<Gaussian, 2, 1, 1>) -> Result<(), Error> {
///     for i in 0..3 {
///         s.push([i as f32], [0.0])?;
///     }
///     Ok(())
/// }
/// let mut s = Smoother::new(Gaussian::new(1.0)?);
/// assert_eq!(fill(&mut s), Err(Error::Full));
/// # Ok::<(), Error>(())
/// ```
impl<const D: usize, const DV: usize> From<Rejected<D, DV>> for Error {
    fn from(r: Rejected<D, DV>) -> Self {
        r.error
    }
}

/// Nadaraya–Watson smoothing over at most `N` stored samples `x: [f32; D] → y: [f32; DV]`.
///
/// `predict(x_q) = Σ α_i y_i` with `α = softmax(kernel.score(x_q, x_i))`. Samples live in two
/// `heapless::Deque`s (locations and responses), so the store never allocates, a full store
/// refuses a sample and hands it back ([`push`](Self::push)) or evicts the oldest on request
/// ([`push_evicting`](Self::push_evicting), for sensor streams).
///
/// # Storage
/// The samples are stored as `E`: `f32` (the default), or with the `half` feature
/// `half::f16` or `half::bf16`, half the bytes. Samples go in and out as `f32`
/// ([`Sample`]); a half-precision store rounds each coordinate on the way in (to nearest, ties
/// to even: `half`'s `from_f32`), rejects a sample that does not survive the rounding
/// ([`Error::StorageOverflow`], the sample handed back), and hands out what it stored, widened
/// to `f32` exactly ([`iter`](Self::iter), [`pop_oldest`](Self::pop_oldest),
/// [`push_evicting`](Self::push_evicting)'s evicted sample). Queries, weights and all
/// arithmetic stay `f32`: `predict` and `weights` read the stored halves through the same
/// dispatched kernels as [`attention`](crate::attention) over `Rows<'_, f16>` (widened in
/// registers at the AVX2 and AVX-512 levels), and give, bit for bit, what an `f32` store fed the
/// widened samples gives, at every dispatch level (on targets with float SIMD; on Cortex-M the
/// `f32` store takes a fused pass the halves do not, and the two agree within the bound). The
/// error against `f64` on the unrounded samples is the `f32` bound plus the storage rounding's
/// (crate README, "Half-precision keys and values", with measured figures). Keys of a
/// half-precision store are at most [`HALF_KEY_WIDTH`](crate::HALF_KEY_WIDTH) wide (checked at
/// compile time).
///
/// # Memory
/// `size_of` is the samples' `N·(D + DV)·size_of::<E>()` bytes (4 per coordinate for `f32`, 2
/// for `f16` and `bf16`) plus the kernel and two ring-buffer headers:
/// `Smoother<Gaussian, 64, 1, 1>` is 568 bytes on 64-bit targets (512 of them samples), and a
/// compile-time assertion holds it to at most 576 on every target;
/// `Smoother<Gaussian, 256, 8, 1, f16>` is 4664 bytes against the `f32` store's 9272 (measured
/// by `size_of` in `tests/tests/half_smoother.rs`). `predict` and `weights` use a 64-score stack
/// tile and no other memory (`predict`: a second one on the cold path of responses whose
/// weighted sum overflowed `f32`; a half-precision store whose keys are narrower than eight
/// coordinates, or whose kernel is not the built-in Gaussian or softmax-dot, or at the baseline
/// dispatch level, also a 4 KiB buffer its keys are widened into, as `attention` over halves).
///
/// # Examples
/// ```
/// use nadaraya::{Gaussian, Smoother};
/// let mut s: Smoother<Gaussian, 8, 1, 1> = Smoother::new(Gaussian::new(0.2)?);
/// for (x, y) in [(-1.0, 0.0), (0.0, 1.0), (1.0, 0.0)] {
///     s.push([x], [y]).map_err(|r| r.error)?;
/// }
/// let y = s.predict(&[0.0])?;
/// assert!(y[0] > 0.99); // h = 0.2: the weights are local
/// # Ok::<(), nadaraya::Error>(())
/// ```
///
/// Half-precision storage (the `half` feature): the same calls, half the memory.
/// ```
/// # #[cfg(feature = "half")] {
/// use nadaraya::half::f16;
/// use nadaraya::{Error, Gaussian, Smoother};
/// let mut s: Smoother<Gaussian, 8, 1, 1, f16> = Smoother::new(Gaussian::new(0.2)?);
/// for (x, y) in [(-1.0, 0.0), (0.0, 1.0), (1.0, 0.1)] {
///     s.push([x], [y]).map_err(|r| r.error)?;
/// }
/// // What is stored is the rounded sample: 0.1 is 0.099975586 in f16.
/// assert_eq!(s.iter().next_back().map(|p| p.y), Some([f16::from_f32(0.1).to_f32()]));
/// // 70 000 is beyond f16 (65 504): handed back, not stored as infinity.
/// let r = s.push([2.0], [70_000.0]).unwrap_err();
/// assert_eq!((r.error, r.sample.y, s.len()), (Error::StorageOverflow, [70_000.0], 3));
/// assert!(s.predict(&[0.0])?[0] > 0.99);
/// assert!(core::mem::size_of_val(&s) < core::mem::size_of::<Smoother<Gaussian, 8, 1, 1>>());
/// # }
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Smoother<K, const N: usize, const D: usize, const DV: usize, E: Element = f32> {
    kernel: K,
    x: Deque<[E; D], N>,
    y: Deque<[E; DV], N>,
}

impl<K: Kernel, const N: usize, const D: usize, const DV: usize, E: Element>
    Smoother<K, N, D, DV, E>
{
    /// An empty smoother with the given kernel.
    ///
    /// `N`, `D` and `DV` must be non-zero, and `D` at most
    /// [`Element::MAX_KEY_WIDTH`] (for `f16` and `bf16`, [`HALF_KEY_WIDTH`](crate::HALF_KEY_WIDTH))
    /// (checked at compile time).
    #[must_use]
    pub const fn new(kernel: K) -> Self {
        const { assert!(N > 0 && D > 0 && DV > 0, "N, D and DV must be non-zero") };
        const {
            assert!(
                D <= E::MAX_KEY_WIDTH,
                "D exceeds the widest key row of the element type (HALF_KEY_WIDTH)"
            )
        };
        Self {
            kernel,
            x: Deque::new(),
            y: Deque::new(),
        }
    }

    /// A smoother holding the rows of `x` (locations, width `D`) and `y` (responses, width
    /// `DV`), in order: all of them or none.
    ///
    /// # Errors
    /// - [`Error::Shape`] with [`Dim::Width`] if `x`'s width is not `D` or `y`'s is not `DV`
    ///   (`expected` the type's width);
    /// - [`Error::Shape`] with [`Dim::ValueRows`] if `y` has not one row per row of `x`;
    /// - [`Error::CapacityExceeded`] if there are more than `N` rows;
    /// - [`Error::NonFinite`] if any coordinate is NaN or infinite;
    /// - [`Error::StorageOverflow`] if a coordinate is beyond the range of `E` (never for `f32`).
    ///
    /// # Examples
    /// ```
    /// use nadaraya::{Gaussian, Rows, Smoother};
    /// let x = Rows::from_arrays(&[[0.0], [1.0], [2.0]]);
    /// let y = Rows::from_arrays(&[[0.0], [1.0], [4.0]]);
    /// let s: Smoother<_, 8, 1, 1> = Smoother::from_rows(Gaussian::new(0.5)?, x, y)?;
    /// assert_eq!(s.len(), 3);
    /// # Ok::<(), nadaraya::Error>(())
    /// ```
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn from_rows(kernel: K, x: Rows<'_>, y: Rows<'_>) -> Result<Self, Error> {
        if x.width() != D {
            return Err(Error::Shape {
                what: Dim::Width,
                expected: D,
                found: x.width(),
            });
        }
        if y.width() != DV {
            return Err(Error::Shape {
                what: Dim::Width,
                expected: DV,
                found: y.width(),
            });
        }
        if y.len() != x.len() {
            return Err(Error::Shape {
                what: Dim::ValueRows,
                expected: x.len(),
                found: y.len(),
            });
        }
        if x.len() > N {
            return Err(Error::CapacityExceeded);
        }
        if !(simd::all_finite(x.as_slice()) && simd::all_finite(y.as_slice())) {
            return Err(Error::NonFinite);
        }
        let mut s = Self::new(kernel);
        // Paired by hand: `zip` of two `ChunksExact` divides by the chunk sizes, and once it
        // was not inlined (after the dispatch made `all_finite` a call) the no-panic proof failed.
        let mut ys = y.as_slice().chunks_exact(DV);
        for xr in x.as_slice().chunks_exact(D) {
            let Some(yr) = ys.next() else { break };
            let (Ok(xa), Ok(ya)) = (<[f32; D]>::try_from(xr), <[f32; DV]>::try_from(yr)) else {
                return Err(Error::CapacityExceeded);
            };
            let Some((xs, ys)) = Self::narrow(&xa, &ya) else {
                return Err(Error::StorageOverflow);
            };
            s.store(xs, ys);
        }
        Ok(s)
    }

    /// Stores samples from an iterator, in order, until it ends or a sample is refused: then
    /// that sample is handed back in [`Rejected`] (the store keeps the samples before it, and
    /// the iterator the ones after it: pass `iter.by_ref()` to resume later). A fallible
    /// [`Extend`].
    ///
    /// # Errors
    /// As [`push`](Self::push), for the first sample refused.
    ///
    /// # Examples
    /// ```
    /// use nadaraya::{Error, Gaussian, Sample, Smoother};
    /// let mut s: Smoother<Gaussian, 2, 1, 1> = Smoother::new(Gaussian::new(1.0)?);
    /// let mut more = (0..5).map(|i| Sample { x: [i as f32], y: [0.0] });
    /// let r = s.try_extend(more.by_ref()).unwrap_err();
    /// assert_eq!((r.error, r.sample.x, more.len()), (Error::Full, [2.0], 2));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn try_extend<I: IntoIterator<Item = Sample<D, DV>>>(
        &mut self,
        samples: I,
    ) -> Result<(), Rejected<D, DV>> {
        for p in samples {
            self.push(p.x, p.y)?;
        }
        Ok(())
    }

    /// The kernel.
    #[must_use]
    pub fn kernel(&self) -> &K {
        &self.kernel
    }

    /// Replaces the kernel (for example a new bandwidth); the samples stay.
    pub fn set_kernel(&mut self, kernel: K) {
        self.kernel = kernel;
    }

    /// The number of stored samples.
    #[must_use]
    pub fn len(&self) -> usize {
        self.x.len()
    }

    /// True if no sample is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    /// True if `N` samples are stored.
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.x.is_full()
    }

    /// The capacity `N`.
    #[must_use]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Removes every sample.
    pub fn clear(&mut self) {
        self.x.clear();
        self.y.clear();
    }

    /// The sample rounded to `E`, or `None` if a coordinate rounds to an infinity (a finite
    /// `f32` beyond `E`'s range).
    #[inline]
    fn narrow(x: &[f32; D], y: &[f32; DV]) -> Option<([E; D], [E; DV])> {
        let (xs, ys) = (x.map(E::narrow), y.map(E::narrow));
        (E::all_finite(&xs) && E::all_finite(&ys)).then_some((xs, ys))
    }

    /// The sample as stored, or the reason it cannot be: NaN or infinite, or beyond `E`.
    fn check(x: [f32; D], y: [f32; DV]) -> Result<([E; D], [E; DV]), Rejected<D, DV>> {
        let error = if !(simd::all_finite(&x) && simd::all_finite(&y)) {
            Error::NonFinite
        } else if let Some(stored) = Self::narrow(&x, &y) {
            return Ok(stored);
        } else {
            Error::StorageOverflow
        };
        Err(Rejected {
            error,
            sample: Sample { x, y },
        })
    }

    /// Stores a sample (rounded to `E`, see [Storage](Self#storage)).
    ///
    /// # Errors
    /// The sample is handed back untouched in [`Rejected`], and the store is unchanged, with
    /// [`Error::NonFinite`] if any coordinate is NaN or infinite, [`Error::StorageOverflow`] if
    /// one is beyond the range of `E` (it would round to infinity; never for `f32`), or
    /// [`Error::Full`] if `N` samples are stored (nothing is overwritten).
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn push(&mut self, x: [f32; D], y: [f32; DV]) -> Result<(), Rejected<D, DV>> {
        let (xs, ys) = Self::check(x, y)?;
        if self.is_full() {
            return Err(Rejected {
                error: Error::Full,
                sample: Sample { x, y },
            });
        }
        self.store(xs, ys);
        Ok(())
    }

    /// Stores a sample (rounded to `E`), evicting and returning the oldest one if the store is
    /// full: a sliding window over a stream. The evicted sample is returned as stored, widened
    /// to `f32`.
    ///
    /// # Errors
    /// The sample handed back untouched, the store unchanged: [`Error::NonFinite`] if any
    /// coordinate is NaN or infinite, [`Error::StorageOverflow`] if one is beyond the range of
    /// `E` (never for `f32`).
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn push_evicting(
        &mut self,
        x: [f32; D],
        y: [f32; DV],
    ) -> Result<Option<Sample<D, DV>>, Rejected<D, DV>> {
        let (xs, ys) = Self::check(x, y)?;
        let evicted = if self.is_full() {
            self.pop_oldest()
        } else {
            None
        };
        self.store(xs, ys);
        Ok(evicted)
    }

    fn store(&mut self, x: [E; D], y: [E; DV]) {
        // Both deques have the same length, checked not full by the callers.
        let (a, b) = (self.x.push_back(x), self.y.push_back(y));
        debug_assert!(a.is_ok() && b.is_ok());
    }

    /// Removes and returns the oldest sample (as stored, widened to `f32`).
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn pop_oldest(&mut self) -> Option<Sample<D, DV>> {
        match (self.x.pop_front(), self.y.pop_front()) {
            (Some(x), Some(y)) => Some(widen(&x, &y)),
            _ => None,
        }
    }

    /// The stored samples, oldest first (also `for s in &smoother`): as stored, widened to
    /// `f32` (for `f32` storage, the samples pushed).
    ///
    /// # Examples
    /// ```
    /// use nadaraya::{Gaussian, Smoother};
    /// let mut s: Smoother<Gaussian, 2, 1, 1> = Smoother::new(Gaussian::new(1.0)?);
    /// for t in 0..3 {
    ///     s.push_evicting([t as f32], [0.0]).map_err(|r| r.error)?;
    /// }
    /// let xs: Vec<f32> = (&s).into_iter().map(|p| p.x[0]).collect();
    /// assert_eq!(xs, [1.0, 2.0]); // the oldest was evicted
    /// assert_eq!(s.iter().rev().next().map(|p| p.x), Some([2.0]));
    /// # Ok::<(), nadaraya::Error>(())
    /// ```
    #[must_use]
    pub fn iter(&self) -> SampleIter<'_, D, DV, E> {
        let (x0, x1) = self.x.as_slices();
        let (y0, y1) = self.y.as_slices();
        SampleIter {
            x: x0.iter().chain(x1),
            y: y0.iter().chain(y1),
        }
    }

    /// Keys and values as (at most) two contiguous runs each, oldest first.
    pub(crate) fn runs(&self) -> [(&[E], &[E]); 2] {
        let (x0, x1) = self.x.as_slices();
        let (y0, y1) = self.y.as_slices();
        [
            (x0.as_flattened(), y0.as_flattened()),
            (x1.as_flattened(), y1.as_flattened()),
        ]
    }

    /// The smoothed response `ŷ(x_q) = Σ α_i y_i`.
    ///
    /// Accurate to about 1e-6 of the responses' scale plus the cost of rounding the scores to
    /// `f32` (see the crate docs for measured figures).
    ///
    /// The verdict and, to within rounding, the value depend only on the stored samples, not on
    /// where the ring buffer wraps.
    ///
    /// # Errors
    /// [`Error::Empty`] if no sample is stored, [`Error::NonFinite`] if `xq` is not finite,
    /// [`Error::ScoreOverflow`] if a score is NaN or `+inf` (a score of `-inf` is weight 0),
    /// [`Error::NoSupport`] if every score is `-inf` (no stored sample in the kernel's
    /// support), [`Error::Overflow`] if the
    /// weighted average has a component beyond `±f32::MAX` (only for responses within rounding
    /// of `±f32::MAX`; see [`Error::Overflow`]).
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn predict(&self, xq: &[f32; D]) -> Result<[f32; DV], Error> {
        if self.is_empty() {
            return Err(Error::Empty);
        }
        if !simd::all_finite(xq) {
            return Err(Error::NonFinite);
        }
        let mut acc = [0.0f32; DV];
        let mut l = Lse::EMPTY;
        let runs = self.runs();
        for (keys, values) in runs {
            element::absorb(&mut l, &self.kernel, xq, keys, values, DV, &mut acc)?;
        }
        finish_or_exact(&l, &self.kernel, xq, &runs, DV, &mut acc)?;
        Ok(acc)
    }

    /// The smoothed responses of many queries: row `t` of `out` (width `DV`) is
    /// [`predict`](Self::predict) of row `t` of `xq` (width `D`).
    ///
    /// The fastest call for a batch of queries. Where the samples hold more than 8192 floats
    /// (32 KiB) and the ring has not wrapped, it is one call of [`attention`](crate::attention)
    /// over all the queries (blocks of queries through each tile of samples; from eight queries
    /// at the AVX levels its register-blocked kernel): 64 queries against 4096 samples with
    /// `D = DV = 64` cost 14.55 M instructions and 0.13 M L1 read misses against 17.08 M and
    /// 1.90 M for 64 calls of `predict` (at the AVX2 level, the most valgrind runs). Below that
    /// size it is `predict` per query (64 queries against 4096 1-D samples: 8.01 M instructions
    /// per batch, against 9.01 M blocked, measured before the run-time dispatch). Measured on
    /// x86-64 (default build): `cargo build --release -p nadaraya --example icount`, then
    /// `valgrind --tool=callgrind --cache-sim=yes --callgrind-out-file=/dev/null
    /// target/release/examples/icount 64 R MODE` for `R = 1, 3` and `MODE` = `predict64`,
    /// `predict_many64` (`R = 1, 11` and `predict`, `predict_many` for 1-D), the difference
    /// divided by the extra batches. Each row is within rounding of `predict` of that query
    /// alone (bit for bit below the threshold).
    ///
    /// # Errors
    /// - [`Error::Shape`] with [`Dim::Width`] if `xq`'s width is not `D` or `out`'s is not `DV`;
    /// - [`Error::Shape`] with [`Dim::OutputRows`] if `out` has not one row per query;
    /// - [`Error::Empty`] if no sample is stored;
    /// - [`Error::NonFinite`] if any query is not finite (before anything is written);
    /// - then [`Error::ScoreOverflow`], [`Error::NoSupport`] or [`Error::Overflow`] as
    ///   [`predict`](Self::predict) gives for the first query that fails (rows of `out` may
    ///   hold partial results).
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn predict_many(&self, xq: Rows<'_>, out: RowsMut<'_>) -> Result<(), Error> {
        for (w, expected) in [(xq.width(), D), (out.width(), DV)] {
            if w != expected {
                return Err(Error::Shape {
                    what: Dim::Width,
                    expected,
                    found: w,
                });
            }
        }
        if out.len() != xq.len() {
            return Err(Error::Shape {
                what: Dim::OutputRows,
                expected: xq.len(),
                found: out.len(),
            });
        }
        if self.is_empty() {
            return Err(Error::Empty);
        }
        if !simd::all_finite(xq.as_slice()) {
            return Err(Error::NonFinite);
        }
        if xq.is_empty() {
            return Ok(());
        }
        let [(k0, v0), (k1, _)] = self.runs();
        // Blocking pays where the samples outgrow a 32 KiB L1 data cache (see the docs).
        if k1.is_empty() && self.len().saturating_mul(D + DV) > BLOCK_ABOVE_FLOATS {
            let (keys, values) = (Rows::new(k0, D)?, Rows::new(v0, DV)?);
            return crate::attention(&self.kernel, xq, keys, values, Mask::None, out);
        }
        self.predict_each(xq, out)
    }

    /// `predict` per query row (a wrapped ring; queries checked finite).
    #[inline]
    fn predict_each(&self, xq: Rows<'_>, mut out: RowsMut<'_>) -> Result<(), Error> {
        let runs = self.runs();
        for (q, o) in xq.iter().zip(out.iter_mut()) {
            let mut l = Lse::EMPTY;
            o.fill(0.0);
            for (keys, values) in runs {
                element::absorb(&mut l, &self.kernel, q, keys, values, DV, o)?;
            }
            finish_or_exact(&l, &self.kernel, q, &runs, DV, o)?;
        }
        Ok(())
    }

    /// The normalised weights `α_i` at `x_q`, in insertion order (oldest first), into
    /// `out[..len()]`.
    ///
    /// # Errors
    /// [`Error::Empty`] if no sample is stored, [`Error::OutputTooSmall`] if
    /// `out.len() < len()`, [`Error::NonFinite`] if `xq` is not finite,
    /// [`Error::ScoreOverflow`] if a score is NaN or `+inf`, [`Error::NoSupport`] if every
    /// score is `-inf`. A score of `-inf` gives a weight of exactly `0.0`.
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn weights(&self, xq: &[f32; D], out: &mut [f32]) -> Result<(), Error> {
        if self.is_empty() {
            return Err(Error::Empty);
        }
        let Some(out) = out.get_mut(..self.len()) else {
            return Err(Error::OutputTooSmall);
        };
        if !simd::all_finite(xq) {
            return Err(Error::NonFinite);
        }
        let mut rest = &mut *out;
        for (keys, _) in self.runs() {
            let (head, tail) = rest.split_at_mut((keys.len() / D).min(rest.len()));
            for (kt, s) in keys.chunks(TILE * D).zip(head.chunks_mut(TILE)) {
                element::scores(&self.kernel, xq, kt, s);
            }
            rest = tail;
        }
        normalise_scores(out).map(|_| ())
    }
}

/// The kernel and the sizes, not the samples; the element type by name (`half`'s types have no
/// `defmt::Format`, and the samples are not printed).
#[cfg(feature = "defmt")]
impl<K: defmt::Format, const N: usize, const D: usize, const DV: usize, E: Element> defmt::Format
    for Smoother<K, N, D, DV, E>
{
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "Smoother {{ kernel: {}, len: {}, N: {}, D: {}, DV: {}, E: {=str} }}",
            self.kernel,
            self.x.len(),
            N,
            D,
            DV,
            E::STORAGE_NAME
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::flat::{attention, weights as slice_weights};
    use crate::{Gaussian, SoftmaxDot};
    use std::boxed::Box;
    use std::vec::Vec;

    /// `predict_many` (issue 16: no prediction into many outputs) equals `predict` per query,
    /// within rounding, on a contiguous store (the blocked path) and on a wrapped ring (per
    /// query); and both are within the README's bound of the plain `f64` reference.
    #[test]
    fn predict_many_matches_predict_and_the_reference() {
        use crate::testing::{assert_close, lcg, reference_average};
        let mut rng = lcg(5);
        let g = Gaussian::new(0.3).unwrap();
        // 2048·(2 + 3) floats: above the blocking threshold until the ring wraps.
        let mut s: Box<Smoother<Gaussian, 2048, 2, 3>> = Box::new(Smoother::new(g));
        let mut sample = || Sample {
            x: [2.0 * rng() - 1.0, 2.0 * rng() - 1.0],
            y: [rng(), -rng(), 10.0 * rng()],
        };
        s.try_extend((0..2048).map(|_| sample())).unwrap();
        assert!(s.len() * 5 > BLOCK_ABOVE_FLOATS);
        let queries: Vec<[f32; 2]> = (0..9).map(|i| [i as f32 * 0.2 - 0.8, 0.1]).collect();
        for wrapped in [false, true] {
            if wrapped {
                for _ in 0..37 {
                    s.push_evicting(sample().x, sample().y).unwrap();
                }
                assert!(!s.runs()[1].0.is_empty(), "the ring wraps");
            }
            let mut out = [[0.0; 3]; 9];
            s.predict_many(Rows::from_arrays(&queries), RowsMut::from_arrays(&mut out))
                .unwrap();
            let (xs, ys): (Vec<_>, Vec<_>) = s.iter().map(|p| (p.x, p.y)).unzip();
            for (q, o) in queries.iter().zip(&out) {
                let one = s.predict(q).unwrap();
                let scores: Vec<f32> = xs.iter().map(|x| g.score(q, x)).collect();
                let want = reference_average(&scores, ys.as_flattened(), 3);
                for c in 0..3 {
                    assert_close(f64::from(o[c]), f64::from(one[c]), 1e-5, "many vs one");
                    assert_close(f64::from(o[c]), want[c], 2e-6 * 10.0, "many vs f64");
                }
            }
        }
        let sh = |what, expected, found| {
            Err(Error::Shape {
                what,
                expected,
                found,
            })
        };
        let mut out = [[0.0; 3]; 2];
        let q3 = [[0.0; 3]; 2];
        let o = RowsMut::from_arrays(&mut out);
        assert_eq!(
            s.predict_many(Rows::from_arrays(&q3), o),
            sh(Dim::Width, 2, 3)
        );
        let o = RowsMut::from_arrays(&mut out);
        assert_eq!(
            s.predict_many(Rows::from_arrays(&queries), o),
            sh(Dim::OutputRows, 9, 2)
        );
        let mut bad = queries.clone();
        bad[8][1] = f32::NAN;
        let mut out = [[7.0; 3]; 9];
        let o = RowsMut::from_arrays(&mut out);
        assert_eq!(
            s.predict_many(Rows::from_arrays(&bad), o),
            Err(Error::NonFinite)
        );
        assert_eq!(
            out, [[7.0; 3]; 9],
            "a NaN query is found before anything is written"
        );
        s.clear();
        let o = RowsMut::from_arrays(&mut out);
        assert_eq!(
            s.predict_many(Rows::from_arrays(&queries), o),
            Err(Error::Empty)
        );
    }

    /// Bulk loading (issue 16: no `Extend`, no constructor from slices): `from_rows` takes all
    /// or nothing; `try_extend` stops at the first refused sample and hands it back, the rest
    /// stays in the iterator; `?` converts a `Rejected` into its `Error`.
    #[test]
    fn bulk_loading_hands_back_what_does_not_fit() {
        let g = Gaussian::new(1.0).unwrap();
        let x = [[0.0], [1.0], [2.0]];
        let y = [[0.0], [10.0], [20.0]];
        let (xr, yr) = (Rows::from_arrays(&x), Rows::from_arrays(&y));
        let s: Smoother<_, 3, 1, 1> = Smoother::from_rows(g, xr, yr).unwrap();
        let got: Vec<_> = s.iter().map(|p| (p.x[0], p.y[0])).collect();
        assert_eq!(got, [(0.0, 0.0), (1.0, 10.0), (2.0, 20.0)]);
        assert!(matches!(
            Smoother::<_, 2, 1, 1>::from_rows(g, xr, yr),
            Err(Error::CapacityExceeded)
        ));
        assert!(matches!(
            Smoother::<_, 3, 1, 1>::from_rows(g, xr, yr.slice(0, 2).unwrap()),
            Err(Error::Shape {
                what: Dim::ValueRows,
                expected: 3,
                found: 2
            })
        ));
        assert!(matches!(
            Smoother::<_, 3, 2, 1>::from_rows(g, xr, yr),
            Err(Error::Shape {
                what: Dim::Width,
                expected: 2,
                found: 1
            })
        ));
        let nan = [[0.0], [f32::NAN]];
        assert!(matches!(
            Smoother::<_, 3, 1, 1>::from_rows(g, Rows::from_arrays(&nan), yr.slice(0, 2).unwrap()),
            Err(Error::NonFinite)
        ));
        let mut s: Smoother<_, 4, 1, 1> = Smoother::new(g);
        let mut it = [0.0, 1.0, f32::NAN, 3.0, 4.0, 5.0]
            .into_iter()
            .map(|v| Sample { x: [v], y: [v] });
        let r = s.try_extend(it.by_ref()).unwrap_err();
        assert_eq!(r.error, Error::NonFinite);
        assert!(r.sample.x[0].is_nan());
        assert_eq!(s.len(), 2);
        let r = s.try_extend(it.by_ref()).unwrap_err();
        assert_eq!(
            (r.error, r.sample.x, s.len(), it.len()),
            (Error::Full, [5.0], 4, 0)
        );
        fn push_all(s: &mut Smoother<Gaussian, 4, 1, 1>) -> Result<(), Error> {
            s.push([9.0], [9.0])?;
            Ok(())
        }
        assert_eq!(push_all(&mut s), Err(Error::Full));
    }

    #[test]
    fn size_stays_within_64_bytes_of_the_samples() {
        assert!(core::mem::size_of::<Smoother<Gaussian, 64, 1, 1>>() <= 512 + 64);
    }

    #[test]
    fn full_store_hands_the_sample_back_and_overwrites_nothing() {
        let mut s: Smoother<Gaussian, 3, 1, 1> = Smoother::new(Gaussian::new(1.0).unwrap());
        for i in 0..3 {
            s.push([i as f32], [i as f32 * 10.0]).unwrap();
        }
        let r = s.push([9.0], [90.0]).unwrap_err();
        assert_eq!(r.error, Error::Full);
        assert_eq!(
            r.sample,
            Sample {
                x: [9.0],
                y: [90.0]
            }
        );
        let kept: Vec<_> = s.iter().map(|p| (p.x[0], p.y[0])).collect();
        assert_eq!(kept, [(0.0, 0.0), (1.0, 10.0), (2.0, 20.0)]);
    }

    #[test]
    fn non_finite_samples_are_rejected_and_the_store_is_unchanged() {
        let mut s: Smoother<Gaussian, 4, 2, 1> = Smoother::new(Gaussian::new(1.0).unwrap());
        s.push([0.0, 0.0], [1.0]).unwrap();
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for (x, y) in [
                ([bad, 0.0], [0.0]),
                ([0.0, bad], [0.0]),
                ([0.0, 0.0], [bad]),
            ] {
                let r = s.push(x, y).unwrap_err();
                assert_eq!(r.error, Error::NonFinite);
                assert_eq!(r.sample.x.map(f32::to_bits), x.map(f32::to_bits));
                let r = s.push_evicting(x, y).unwrap_err();
                assert_eq!(r.error, Error::NonFinite);
                assert_eq!(s.len(), 1);
            }
            assert_eq!(s.predict(&[bad, 0.0]), Err(Error::NonFinite));
            assert_eq!(s.weights(&[0.0, bad], &mut [0.0; 4]), Err(Error::NonFinite));
        }
        assert_eq!(s.predict(&[0.0, 0.0]), Ok([1.0]));
    }

    #[test]
    fn empty_store_and_short_buffer_are_errors() {
        let mut s: Smoother<SoftmaxDot, 4, 1, 1> = Smoother::new(SoftmaxDot::new(1.0).unwrap());
        assert_eq!(s.predict(&[0.0]), Err(Error::Empty));
        assert_eq!(s.weights(&[0.0], &mut [0.0; 4]), Err(Error::Empty));
        s.push([1.0], [1.0]).unwrap();
        s.push([2.0], [1.0]).unwrap();
        assert_eq!(s.weights(&[0.0], &mut [0.0; 1]), Err(Error::OutputTooSmall));
        s.clear();
        assert!(s.is_empty());
        assert_eq!(s.pop_oldest(), None);
    }

    /// A sliding window that wraps around the ring buffer gives what the same samples give in
    /// one contiguous slice, for every window position.
    /// A sliding window of `N` samples: predictions and weights (in insertion order) equal those
    /// of the same samples as one contiguous slice, bit for bit for the weights, wherever the ring
    /// buffer wraps.
    fn sliding_window_case<const D: usize, const DV: usize>() {
        const N: usize = 70;
        let k = Gaussian::new(0.3 * (D as f32).sqrt()).unwrap();
        let mut s: Smoother<Gaussian, N, D, DV> = Smoother::new(k);
        let sample = |i: usize| {
            let t = i as f32 * 0.1;
            (
                core::array::from_fn::<f32, D, _>(|j| libm::sinf(t * (0.7 + 0.1 * j as f32))),
                core::array::from_fn::<f32, DV, _>(|j| libm::cosf(t + j as f32) + j as f32),
            )
        };
        for i in 0..200 {
            let (x, y) = sample(i);
            let evicted = s.push_evicting(x, y).unwrap();
            if i >= N {
                let (ex, ey) = sample(i - N);
                assert_eq!(evicted, Some(Sample { x: ex, y: ey }));
            } else {
                assert_eq!(evicted, None);
            }
            let lo = (i + 1).saturating_sub(N);
            let keys: Vec<f32> = (lo..=i).flat_map(|j| sample(j).0).collect();
            let values: Vec<f32> = (lo..=i).flat_map(|j| sample(j).1).collect();
            let xq: [f32; D] = core::array::from_fn(|j| 0.2 + 0.3 * j as f32 / D as f32);
            let mut want = [0.0; DV];
            attention(&k, &xq, &keys, &values, D, DV, &mut want).unwrap();
            let got = s.predict(&xq).unwrap();
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-6 * (1.0 + w.abs()), "i={i}: {g} vs {w}");
            }
            let mut w_store = [0.0; N];
            let mut w_slice = [0.0; N];
            s.weights(&xq, &mut w_store).unwrap();
            slice_weights(&k, &xq, &keys, &mut w_slice).unwrap();
            assert_eq!(w_store, w_slice, "weights in insertion order, i={i}");
        }
    }

    /// A ring that has wrapped gives the verdict and value of a fresh store holding the same live
    /// window, against a plain `f64` reference, for every ring position (issue 11, class 4: the
    /// wrapped ring returned `Err(Overflow)` where the fresh store returned `Ok`).
    #[test]
    fn wrapped_ring_of_huge_values_matches_a_fresh_store() {
        use crate::testing::{assert_average, huge_samples, orders, permute, reference_average};
        const N: usize = 70;
        let k = SoftmaxDot::new(1.0).unwrap();
        let (keys, values) = huge_samples();
        let want = reference_average(&keys, &values, 2);
        let sample = |i: usize| {
            (
                [keys[i % N]],
                [values[2 * (i % N)], values[2 * (i % N) + 1]],
            )
        };
        for start in 0..N {
            // Samples start, start+1, … (mod N) pushed into a ring that already holds others:
            // the live window is all N samples, wrapped at `start`.
            let mut ring: Smoother<SoftmaxDot, N, 1, 2> = Smoother::new(k);
            for i in 0..N + start {
                let (x, y) = sample(i);
                ring.push_evicting(x, y).unwrap();
            }
            let got = ring.predict(&[1.0]);
            let what = std::format!("ring wrapped at {start}");
            assert_average(
                got.as_ref().map(|y| &y[..]).map_err(|e| *e),
                &want,
                &values,
                &what,
            );
        }
        for order in orders(N) {
            let (kp, vp) = (permute(&keys, 1, &order), permute(&values, 2, &order));
            let mut fresh: Smoother<SoftmaxDot, N, 1, 2> = Smoother::new(k);
            for (x, y) in kp.iter().zip(vp.chunks_exact(2)) {
                fresh.push([*x], [y[0], y[1]]).unwrap();
            }
            let got = fresh.predict(&[1.0]);
            let what = std::format!("fresh store, order {:?}", &order[..4]);
            assert_average(
                got.as_ref().map(|y| &y[..]).map_err(|e| *e),
                &want,
                &values,
                &what,
            );
        }
    }

    #[test]
    fn sliding_window_matches_contiguous_slices() {
        // Short rows (one lane per row), and rows of whole lanes plus a tail with wide values.
        sliding_window_case::<2, 3>();
        sliding_window_case::<20, 11>();
    }
}

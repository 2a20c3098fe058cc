//! The one place where weights are born: a stable, mergeable log-sum-exp (the online softmax).
//!
//! For scores `s_i` and values `y_i` the state is `(m, S, A)` with `m = max s_i`,
//! `S = Σ exp(s_i - m)` and `A = Σ exp(s_i - m) y_i`; the smoothed value is `A / S`. A new block of
//! scores whose maximum exceeds `m` rescales `S` and `A` by `exp(m - m')` (Milakov & Gimelshein's
//! online softmax, the tiles of FlashAttention). Two states over disjoint samples merge into the
//! state over their union, so long inputs can be split into chunks, run in parallel or streamed.
//!
//! Because every exponent is `≤ 0` and the largest is exactly `exp(0) = 1`, `S ≥ 1`: no finite
//! score can make the sum overflow or vanish. A Gaussian query 1000 bandwidths away from every
//! sample still returns the nearest sample's response, where a plain `exp`/sum gives `0/0`.

use crate::{Error, Kernel, simd};

/// Names the cause of a failed computation: [`Error::NonFinite`] if any input is NaN or
/// infinite (read only now, on the error path), else the error as found.
#[cold]
pub(crate) fn diagnose(e: Error, inputs: &[&[f32]]) -> Error {
    if inputs.iter().all(|x| simd::all_finite(x)) {
        e
    } else {
        Error::NonFinite
    }
}

/// Scores are computed into a stack buffer of this many rows at a time.
pub(crate) const TILE: usize = 64;

/// The `(max, sum)` half of the state; the weighted accumulator lives with the caller.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Lse {
    pub(crate) max: f32,
    pub(crate) sum: f32,
}

impl Lse {
    pub(crate) const EMPTY: Self = Self {
        max: f32::NEG_INFINITY,
        sum: 0.0,
    };

    /// Absorbs one block of scores (`s`, overwritten with their exponentials) and the matching
    /// value rows into `self` and `acc`.
    #[inline]
    pub(crate) fn absorb_scores(
        &mut self,
        s: &mut [f32],
        values: &[f32],
        dv: usize,
        acc: &mut [f32],
    ) -> Result<(), Error> {
        if s.is_empty() {
            return Ok(());
        }
        let m = simd::max_finite(s)?;
        if m > self.max {
            if self.sum != 0.0 {
                let f = simd::exp_scalar(self.max - m);
                self.sum *= f;
                simd::scale_in_place(acc, f);
            }
            self.max = m;
        }
        self.sum += simd::exp_shift_sum(s, self.max);
        simd::weighted_sum_into(s, values, dv, acc);
        Ok(())
    }

    /// Absorbs the rows of `keys` (row length `q.len() > 0`) and `values` (row length `dv`),
    /// [`TILE`] rows at a time. The caller has checked shapes and finiteness.
    #[inline]
    pub(crate) fn absorb<K: Kernel + ?Sized>(
        &mut self,
        kernel: &K,
        q: &[f32],
        keys: &[f32],
        values: &[f32],
        dv: usize,
        acc: &mut [f32],
    ) -> Result<(), Error> {
        let d = q.len();
        if d == 0 || dv == 0 {
            return Err(Error::ZeroDimension);
        }
        let mut buf = [0.0f32; TILE];
        // Saturating: a chunk size can never wrap to 0 (which would panic).
        let (kc, vc) = (TILE.saturating_mul(d), TILE.saturating_mul(dv));
        // Paired by hand: `zip` of two `Chunks` divides by the chunk sizes out of line.
        let mut value_tiles = values.chunks(vc);
        for kt in keys.chunks(kc) {
            let Some(vt) = value_tiles.next() else { break };
            let rows = (kt.len() / d).min(vt.len() / dv).min(TILE);
            let s = &mut buf[..rows];
            kernel.scores(q, kt, s);
            self.absorb_scores(s, vt, dv, acc)?;
        }
        Ok(())
    }

    /// Merges `other` (with accumulator `b`) into `self` (with accumulator `a`).
    #[inline]
    pub(crate) fn merge(&mut self, a: &mut [f32], other: Self, b: &[f32]) {
        if other.sum == 0.0 {
            return;
        }
        if self.sum == 0.0 {
            *self = other;
            a.copy_from_slice(b);
            return;
        }
        // Not `f32::max`: a libm call on Cortex-M4; both maxima are finite or -inf.
        let m = if other.max > self.max {
            other.max
        } else {
            self.max
        };
        let fa = simd::exp_scalar(self.max - m);
        let fb = simd::exp_scalar(other.max - m);
        self.sum = self.sum * fa + other.sum * fb;
        for (x, y) in a.iter_mut().zip(b) {
            *x = *x * fa + *y * fb;
        }
        self.max = m;
    }

    /// `acc / sum`, or [`Error::Empty`] when nothing was absorbed, or [`Error::Overflow`] when
    /// the accumulator is not finite (huge values, or a non-finite value the caller did not
    /// check: it poisons the sum even at weight 0, as `0 · inf = NaN`).
    #[inline]
    pub(crate) fn finish(&self, acc: &mut [f32]) -> Result<(), Error> {
        if self.sum == 0.0 {
            return Err(Error::Empty);
        }
        if !simd::all_finite(acc) {
            return Err(Error::Overflow);
        }
        simd::div_in_place(acc, self.sum);
        Ok(())
    }
}

/// A mergeable online-softmax state over samples with `DV`-dimensional values.
///
/// Feed it blocks of samples with [`update`](Self::update) (or single scores with
/// [`push_score`](Self::push_score)), combine states over disjoint samples with
/// [`merge`](Self::merge) in any order, and read the weighted average with
/// [`finish`](Self::finish). The result equals one pass over all samples to within rounding.
///
/// # Examples
/// Chunked evaluation gives the single-pass answer:
/// ```
/// use nadaraya::{Gaussian, OnlineSoftmax};
/// let k = Gaussian::new(0.5)?;
/// let (x, y) = ([0.0, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0]);
/// let mut left = OnlineSoftmax::<1>::new();
/// let mut right = OnlineSoftmax::<1>::new();
/// left.update(&k, &[1.2], &x[..2], &y[..2])?;
/// right.update(&k, &[1.2], &x[2..], &y[2..])?;
/// let mut whole = OnlineSoftmax::<1>::new();
/// whole.update(&k, &[1.2], &x, &y)?;
/// let merged = right.merge(&left).finish()?;
/// assert!((merged[0] - whole.finish()?[0]).abs() < 1e-6);
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OnlineSoftmax<const DV: usize> {
    max: f32,
    sum: f32,
    acc: [f32; DV],
}

impl<const DV: usize> Default for OnlineSoftmax<DV> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const DV: usize> OnlineSoftmax<DV> {
    /// The state over no samples.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            max: Lse::EMPTY.max,
            sum: Lse::EMPTY.sum,
            acc: [0.0; DV],
        }
    }

    fn lse(&self) -> Lse {
        Lse {
            max: self.max,
            sum: self.sum,
        }
    }

    fn set_lse(&mut self, l: Lse) {
        self.max = l.max;
        self.sum = l.sum;
    }

    /// Absorbs samples: `keys` holds rows of length `q.len()`, `values` rows of length `DV`.
    ///
    /// On error the state is unchanged.
    ///
    /// # Errors
    /// - [`Error::ZeroDimension`] if `q` is empty or `DV == 0`;
    /// - [`Error::ShapeMismatch`] if `keys.len()` is not a multiple of `q.len()` or `values` does
    ///   not hold exactly one row per key;
    /// - [`Error::NonFinite`] if any input is NaN or infinite;
    /// - [`Error::ScoreOverflow`] if a score is not finite.
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn update<K: Kernel + ?Sized>(
        &mut self,
        kernel: &K,
        q: &[f32],
        keys: &[f32],
        values: &[f32],
    ) -> Result<(), Error> {
        let d = q.len();
        if d == 0 || DV == 0 {
            return Err(Error::ZeroDimension);
        }
        if !keys.len().is_multiple_of(d) || values.len() != keys.len() / d * DV {
            return Err(Error::ShapeMismatch);
        }
        if keys.is_empty() && !simd::all_finite(q) {
            // No score reads the query, but a NaN in it is still an input error.
            return Err(Error::NonFinite);
        }
        let mut next = *self;
        let mut l = next.lse();
        // Non-finite inputs surface as a non-finite score or accumulator; only then are the
        // inputs read again to name the cause.
        l.absorb(kernel, q, keys, values, DV, &mut next.acc)
            .and_then(|()| {
                if simd::all_finite(&next.acc) {
                    Ok(())
                } else {
                    Err(Error::Overflow)
                }
            })
            .map_err(|e| diagnose(e, &[q, keys, values]))?;
        next.set_lse(l);
        *self = next;
        Ok(())
    }

    /// Absorbs one sample given by its score and value.
    ///
    /// # Errors
    /// [`Error::ScoreOverflow`] if `score` is not finite, [`Error::NonFinite`] if `value` is not;
    /// the state is then unchanged.
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn push_score(&mut self, score: f32, value: &[f32; DV]) -> Result<(), Error> {
        if !simd::all_finite(value) {
            return Err(Error::NonFinite);
        }
        let mut next = *self;
        let mut l = next.lse();
        l.absorb_scores(&mut [score], value, DV, &mut next.acc)?;
        next.set_lse(l);
        *self = next;
        Ok(())
    }

    /// The state over the union of the samples of `self` and `other` (which must be disjoint).
    ///
    /// Commutative; associative to within rounding.
    #[must_use]
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn merge(&self, other: &Self) -> Self {
        let mut out = *self;
        let mut l = out.lse();
        l.merge(&mut out.acc, other.lse(), &other.acc);
        out.set_lse(l);
        out
    }

    /// True if no sample has been absorbed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.sum == 0.0
    }

    /// The largest score seen (`-inf` when empty).
    #[must_use]
    pub fn max_score(&self) -> f32 {
        self.max
    }

    /// `log Σ exp(s_i)` over the samples seen (`-inf` when empty).
    #[must_use]
    pub fn log_sum_exp(&self) -> f32 {
        if self.is_empty() {
            f32::NEG_INFINITY
        } else {
            self.max + libm::logf(self.sum)
        }
    }

    /// The weighted average `Σ α_i y_i`.
    ///
    /// # Errors
    /// [`Error::Empty`] if no sample has been absorbed, [`Error::Overflow`] if merging states
    /// over huge values overflowed `f32`.
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn finish(&self) -> Result<[f32; DV], Error> {
        let mut out = self.acc;
        self.lse().finish(&mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Gaussian, SoftmaxDot};

    #[test]
    fn empty_state_and_bad_input_are_errors_that_change_nothing() {
        let mut s = OnlineSoftmax::<2>::new();
        assert_eq!(s.finish(), Err(Error::Empty));
        assert!(s.is_empty());
        assert_eq!(s.log_sum_exp(), f32::NEG_INFINITY);
        s.push_score(0.5, &[1.0, 2.0]).unwrap();
        let before = s;
        assert_eq!(
            s.push_score(f32::NAN, &[1.0, 2.0]),
            Err(Error::ScoreOverflow)
        );
        assert_eq!(
            s.push_score(f32::INFINITY, &[1.0, 2.0]),
            Err(Error::ScoreOverflow)
        );
        assert_eq!(s.push_score(1.0, &[f32::NAN, 2.0]), Err(Error::NonFinite));
        let k = Gaussian::new(1.0).unwrap();
        assert_eq!(s.update(&k, &[], &[], &[]), Err(Error::ZeroDimension));
        assert_eq!(
            s.update(&k, &[0.0, 0.0], &[1.0], &[1.0, 1.0]),
            Err(Error::ShapeMismatch)
        );
        assert_eq!(
            s.update(&k, &[0.0], &[1.0], &[1.0]),
            Err(Error::ShapeMismatch)
        );
        assert_eq!(
            s.update(&k, &[0.0], &[f32::NAN], &[1.0, 1.0]),
            Err(Error::NonFinite)
        );
        // A block whose second tile overflows leaves the state as it was.
        let big = SoftmaxDot::new(1.0).unwrap();
        let mut keys = [1.0f32; 100];
        keys[80] = 3e38;
        assert_eq!(
            s.update(&big, &[2.0], &keys, &[0.5; 200]),
            Err(Error::ScoreOverflow)
        );
        assert_eq!(s, before);
        assert_eq!(s.finish(), Ok([1.0, 2.0]));
        assert!((s.log_sum_exp() - 0.5).abs() < 1e-7);
    }

    #[test]
    fn merge_with_empty_is_identity_and_merge_commutes() {
        let k = SoftmaxDot::new(0.3).unwrap();
        let mut a = OnlineSoftmax::<1>::new();
        let mut b = OnlineSoftmax::<1>::new();
        a.update(&k, &[1.0], &[0.1, 0.9, -2.0], &[1.0, 2.0, 3.0])
            .unwrap();
        b.update(&k, &[1.0], &[5.0, -1.0], &[4.0, 5.0]).unwrap();
        let e = OnlineSoftmax::<1>::new();
        assert_eq!(a.merge(&e), a);
        assert_eq!(e.merge(&a), a);
        assert_eq!(a.merge(&b), b.merge(&a));
        assert!(e.merge(&e).is_empty());
    }
}

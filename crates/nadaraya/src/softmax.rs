//! The one place where weights are born: a stable, mergeable log-sum-exp (the online softmax).
//!
//! For scores `s_i` and values `y_i` the state is `(m, S, A)` with `m = max s_i`,
//! `S = Σ exp(s_i - m)` and `A = Σ exp(s_i - m) y_i`; the smoothed value is `A / S`. A new block of
//! scores whose maximum exceeds `m` rescales `S` and `A` by `exp(m - m')` (Milakov & Gimelshein's
//! online softmax, the tiles of FlashAttention). Two states over disjoint samples merge into the
//! state over their union, so long inputs can be split into chunks, run in parallel or streamed;
//! the public [`OnlineSoftmax`] carries `A / S` itself, so that merging cannot overflow.
//!
//! Because every exponent is `≤ 0` and the largest is exactly `exp(0) = 1`, `S ≥ 1`: no finite
//! score can make the sum overflow or vanish. A Gaussian query 1000 bandwidths away from every
//! sample still gets weights (where a plain `exp`/sum gives `0/0`): the softmax of its computed
//! scores, which pick the nearest sample's response when they separate it by more than 87.34
//! (see the crate README, "How the weights are computed").
//!
//! `A` can overflow for huge finite values where `A / S` cannot. The hot loops do not look for
//! that; a non-finite accumulator sends the row to [`exact_average`], a cold path whose result
//! does not depend on the samples' order.

use crate::element;
use crate::{Dim, Element, Error, Kernel, Rows, simd};

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

/// [`diagnose`] for a query and its samples stored as `E`.
#[cold]
pub(crate) fn diagnose_samples<E: Element>(e: Error, q: &[f32], keys: &[E], values: &[E]) -> Error {
    if simd::all_finite(q) && E::all_finite(keys) && E::all_finite(values) {
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
    /// value rows into `self` and `acc`. A score of `-inf` has weight exactly 0; returns whether
    /// the block had one (the caller then checks that its keys are finite: an infinite key
    /// scores `-inf` under a distance kernel, and must be an input error, not "no weight").
    ///
    /// While every score so far is `-inf` the state stays `(-inf, 0)`, and the values still
    /// meet the accumulator at weight 0, so that a NaN among them poisons it as it does under
    /// finite scores.
    #[inline]
    pub(crate) fn absorb_scores<E: Element>(
        &mut self,
        s: &mut [f32],
        values: &[E],
        dv: usize,
        acc: &mut [f32],
    ) -> Result<bool, Error> {
        if s.is_empty() {
            return Ok(false);
        }
        let (m, gaps) = simd::max_score(s)?;
        if m > self.max {
            if self.sum != 0.0 {
                let f = simd::exp_scalar(self.max - m);
                self.sum *= f;
                simd::scale_in_place(acc, f);
            }
            self.max = m;
        }
        if self.max == f32::NEG_INFINITY {
            zero_cold(s);
        } else {
            self.sum += simd::exp_shift_sum(s, self.max);
        }
        simd::weighted_sum_into(s, values, dv, acc);
        Ok(gaps)
    }

    /// Absorbs the rows of `keys` (row length `q.len() > 0`) and `values` (row length `dv`),
    /// [`TILE`] rows at a time. The caller has checked shapes and finiteness.
    #[inline]
    pub(crate) fn absorb<K: Kernel + ?Sized, E: Element>(
        &mut self,
        kernel: &K,
        q: &[f32],
        keys: &[E],
        values: &[E],
        dv: usize,
        acc: &mut [f32],
    ) -> Result<(), Error> {
        let mut buf = [0.0f32; TILE];
        for_each_tile(
            q.len(),
            dv,
            keys,
            values,
            #[inline(always)]
            |kt, vt, rows| self.exact_tile(kernel, q, kt, vt, &mut buf[..rows], dv, acc),
        )
    }

    /// One tile on the exact path: its scores into `s`, then
    /// [`absorb_scores`](Self::absorb_scores), and the keys checked if a score was `-inf`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn exact_tile<K: Kernel + ?Sized, E: Element>(
        &mut self,
        kernel: &K,
        q: &[f32],
        kt: &[E],
        vt: &[E],
        s: &mut [f32],
        dv: usize,
        acc: &mut [f32],
    ) -> Result<(), Error> {
        element::scores(kernel, q, kt, s);
        if self.absorb_scores(s, vt, dv, acc)? {
            finite_or_error(kt, q)?;
        }
        Ok(())
    }

    /// [`absorb`](Self::absorb) for the hot paths of `predict` and `attention`: on targets
    /// without float SIMD (Cortex-M) one fused pass per tile — each row's score
    /// ([`Kernel::score`]), its exponential by the table ([`simd::exp_table`]) and the weighted
    /// sum — with no buffer of scores for one-column values; on the others `absorb` itself.
    ///
    /// The fused pass skips the maximum: `max` is then a *shift*, the first score seen (or the
    /// shift so far), not necessarily the largest, and `sum` is `Σ exp(s_i - shift) ≥ 1`; the
    /// quotient `acc / sum` and [`log_sum_exp`](Self::log_sum_exp) are the same. A tile whose
    /// sum is NaN, infinite or above [`simd::TILE_SUM_MAX`] (a NaN or infinite score, a
    /// `-inf` score, a score far above the shift) is redone by `absorb_scores` with its true
    /// maximum, so every verdict is `absorb`'s. The weights of a tile are summed in
    /// [`simd::FUSED_CHAINS`] interleaved partial sums (four on Helium, else row order). Not for [`OnlineSoftmax`], whose
    /// `max_score` is the largest score.
    ///
    /// For the Gaussian with one-column values (the kernel's hidden
    /// `Kernel::row_form`), the shift is 0 (its scores are never positive) and
    /// each weight is [`simd::exp2_64`] of `|q - x|² · c`, `c = -64/(2h² ln 2)`: the range
    /// reduction straight from the squared distance. Such a pass can underflow every weight of
    /// a far query; if the state was empty and the call's sum of weights ends below
    /// [`FOLD_SUM_MIN`], the call is redone from the state it started with by the pass above
    /// (shift = the first score), so the answer and the verdict are that pass's.
    #[inline(always)]
    pub(crate) fn absorb_fused<K: Kernel + ?Sized>(
        &mut self,
        kernel: &K,
        q: &[f32],
        keys: &[f32],
        values: &[f32],
        dv: usize,
        acc: &mut [f32],
    ) -> Result<(), Error> {
        self.absorb_with::<{ !simd::SIMD }, K>(kernel, q, keys, values, dv, acc)
    }

    /// [`absorb_fused`](Self::absorb_fused) with the fused pass (`FUSED`) or without, on any
    /// target (the host tests run both).
    #[inline(always)]
    pub(crate) fn absorb_with<const FUSED: bool, K: Kernel + ?Sized>(
        &mut self,
        kernel: &K,
        q: &[f32],
        keys: &[f32],
        values: &[f32],
        dv: usize,
        acc: &mut [f32],
    ) -> Result<(), Error> {
        if !FUSED || dv != 1 {
            return self.absorb_table::<FUSED, K>(kernel, q, keys, values, dv, acc);
        }
        let Some(a) = acc.first_mut() else {
            return self.absorb(kernel, q, keys, values, dv, acc);
        };
        if let Some(c) = fold_scale(kernel)
            && (self.sum == 0.0 || self.max == 0.0)
        {
            let entry = (*self, *a);
            self.fused_tiles(
                kernel,
                q,
                keys,
                values,
                a,
                true,
                #[inline(always)]
                |k, _| simd::exp2_64(squared_distance(q, k) * c),
            )?;
            // The state had weight at entry (`max == 0`, `sum ≥ FOLD_SUM_MIN`), or this call's
            // weights are large enough beside the values below 2^-78 of `exp2_64`.
            if self.max != 0.0 || self.sum >= FOLD_SUM_MIN {
                return Ok(());
            }
            (*self, *a) = entry;
            return self.fused_cold(kernel, q, keys, values, a);
        }
        self.fused_tiles(
            kernel,
            q,
            keys,
            values,
            a,
            false,
            #[inline(always)]
            |k, shift| simd::exp_table(kernel.score(q, k) - shift),
        )
    }

    /// The fused pass at shift = the first score, out of line: a far query whose Gaussian
    /// weights all underflowed at shift 0.
    #[cold]
    #[inline(never)]
    fn fused_cold<K: Kernel + ?Sized>(
        &mut self,
        kernel: &K,
        q: &[f32],
        keys: &[f32],
        values: &[f32],
        a: &mut f32,
    ) -> Result<(), Error> {
        self.fused_tiles(
            kernel,
            q,
            keys,
            values,
            a,
            false,
            #[inline(always)]
            |k, shift| simd::exp_table(kernel.score(q, k) - shift),
        )
    }

    /// The tiles of a fused pass over one-column values: `weight(key, shift)` per row, its sum
    /// and weighted sum ([`fused_sum_dot`]), the tile kept if its sum passes
    /// [`simd::TILE_SUM_MAX`], else redone on the exact path. The shift is 0 if `zero_shift`,
    /// else the state's, or the tile's first score while the state is empty.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn fused_tiles<K: Kernel + ?Sized>(
        &mut self,
        kernel: &K,
        q: &[f32],
        keys: &[f32],
        values: &[f32],
        a: &mut f32,
        zero_shift: bool,
        weight: impl Fn(&[f32], f32) -> f32,
    ) -> Result<(), Error> {
        let d = q.len();
        for_each_tile(
            d,
            1,
            keys,
            values,
            #[inline(always)]
            |kt, vt, rows| {
                let (Some(kt), Some(vt)) = (kt.get(..rows * d), vt.get(..rows)) else {
                    return Ok(());
                };
                let Some(k0) = kt.get(..d) else {
                    return Ok(());
                };
                // The shift: the state's, or this tile's first score (then its sum is at least 1).
                let shift = if zero_shift {
                    0.0
                } else if self.sum == 0.0 {
                    kernel.score(q, k0)
                } else {
                    self.max
                };
                let (sum, dot) = fused_sum_dot(
                    d,
                    kt,
                    vt,
                    #[inline(always)]
                    |k| weight(k, shift),
                );
                if sum <= simd::TILE_SUM_MAX {
                    self.max = shift;
                    self.sum += sum;
                    *a += dot;
                    Ok(())
                } else {
                    self.absorb_cold(kernel, q, kt, vt, core::slice::from_mut(a))
                }
            },
        )
    }

    /// One tile on the exact path (`absorb`), for a fused tile whose sum failed the check.
    #[cold]
    #[inline(never)]
    fn absorb_cold<K: Kernel + ?Sized>(
        &mut self,
        kernel: &K,
        q: &[f32],
        keys: &[f32],
        values: &[f32],
        acc: &mut [f32],
    ) -> Result<(), Error> {
        self.absorb(kernel, q, keys, values, acc.len(), acc)
    }

    /// The tiles of scores in a buffer, each through one table pass ([`simd::exp_table_shift_sum`],
    /// when `FUSED`) or through [`absorb_scores`](Self::absorb_scores).
    #[inline]
    fn absorb_table<const FUSED: bool, K: Kernel + ?Sized>(
        &mut self,
        kernel: &K,
        q: &[f32],
        keys: &[f32],
        values: &[f32],
        dv: usize,
        acc: &mut [f32],
    ) -> Result<(), Error> {
        if !FUSED {
            return self.absorb(kernel, q, keys, values, dv, acc);
        }
        let mut buf = [0.0f32; TILE];
        for_each_tile(
            q.len(),
            dv,
            keys,
            values,
            #[inline(always)]
            |kt, vt, rows| {
                let s = &mut buf[..rows];
                kernel.scores(q, kt, s);
                let Some(&first) = s.first() else {
                    return Ok(());
                };
                let shift = if self.sum == 0.0 { first } else { self.max };
                let sum = simd::exp_table_shift_sum(s, shift);
                if sum <= simd::TILE_SUM_MAX {
                    self.max = shift;
                    self.sum += sum;
                    simd::weighted_sum_into(s, vt, dv, acc);
                    Ok(())
                } else {
                    self.exact_tile(kernel, q, kt, vt, s, dv, acc)
                }
            },
        )
    }

    /// `max + ln(sum)`: the log-sum-exp of the scores absorbed (`-inf` when none were).
    #[inline]
    pub(crate) fn log_sum_exp(&self) -> f32 {
        if self.sum == 0.0 {
            f32::NEG_INFINITY
        } else {
            self.max + libm::logf(self.sum)
        }
    }

    /// `acc / sum`, or [`Error::NoSupport`] when no absorbed score had weight (every one was
    /// `-inf`; the callers never finish a state that absorbed no rows at all), or
    /// [`Error::Overflow`] when the accumulator is not finite (a partial sum of huge values
    /// overflowed, or a non-finite value the caller did not check: it poisons the sum even at
    /// weight 0, as `0 · inf = NaN`). Callers with the samples at hand go through
    /// [`finish_or_exact`] instead.
    #[inline]
    pub(crate) fn finish(&self, acc: &mut [f32]) -> Result<(), Error> {
        if self.sum == 0.0 {
            return Err(Error::NoSupport);
        }
        if !simd::all_finite(acc) {
            return Err(Error::Overflow);
        }
        simd::div_in_place(acc, self.sum);
        Ok(())
    }
}

/// The one tile loop of the crate's passes over keys and values: `pass(keys, values, rows)` per
/// tile of [`TILE`] rows (`keys` of row length `d`, `values` of row length `dv`; `rows` is the
/// number of whole rows present in both), or [`Error::ZeroDimension`] if `d` or `dv` is 0.
#[inline(always)]
fn for_each_tile<E>(
    d: usize,
    dv: usize,
    keys: &[E],
    values: &[E],
    mut pass: impl FnMut(&[E], &[E], usize) -> Result<(), Error>,
) -> Result<(), Error> {
    if d == 0 || dv == 0 {
        return Err(Error::ZeroDimension);
    }
    // Saturating: a chunk size can never wrap to 0 (which would panic).
    let (kc, vc) = (TILE.saturating_mul(d), TILE.saturating_mul(dv));
    // Paired by hand: `zip` of two `Chunks` divides by the chunk sizes out of line.
    let mut value_tiles = values.chunks(vc);
    for kt in keys.chunks(kc) {
        let Some(vt) = value_tiles.next() else { break };
        let rows = (kt.len() / d).min(vt.len() / dv).min(TILE);
        pass(kt, vt, rows)?;
    }
    Ok(())
}

/// The smallest sum of weights that a Gaussian pass at shift 0 keeps (`2^-20`): beside it, the
/// values below `2^-78` that [`simd::exp2_64`] gives far below its range are nothing even over
/// `2^30` rows, and every weight that counts is a normal `f32` within its 1.5 ulp.
pub(crate) const FOLD_SUM_MIN: f32 = 1.0 / 1_048_576.0;

/// `64/(2h² ln 2)` negated — the factor that turns a squared distance into the table steps of
/// [`simd::exp2_64`] — for a kernel whose score is a negative multiple of the squared distance
/// (the Gaussian), if it is a normal `f32`.
#[inline(always)]
fn fold_scale<K: Kernel + ?Sized>(kernel: &K) -> Option<f32> {
    let (true, scale) = kernel.row_form(crate::kernel::sealed::Crate(()))? else {
        return None;
    };
    let c = scale * simd::EXP_TABLE_K;
    (f32::MIN..0.0).contains(&c).then_some(c)
}

/// `Σ_j (q_j - x_j)²` in row order, as [`crate::Gaussian`]'s score sums it.
#[inline(always)]
fn squared_distance(q: &[f32], x: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for (a, b) in q.iter().zip(x) {
        let t = a - b;
        s += t * t;
    }
    s
}

/// `(Σ_i e_i, Σ_i e_i·y_i)` with `e_i = weight(key_i)` over the rows of `keys` (row length
/// `d > 0`) and `y`, in [`simd::FUSED_CHAINS`] interleaved partial sums (row `i` goes to sum
/// `i mod C`, added pairwise at the end).
#[inline(always)]
fn fused_sum_dot(d: usize, keys: &[f32], y: &[f32], weight: impl Fn(&[f32]) -> f32) -> (f32, f32) {
    const C: usize = simd::FUSED_CHAINS;
    if C == 1 {
        let (mut sum, mut dot) = (0.0f32, 0.0f32);
        for (k, w) in keys.chunks_exact(d).zip(y) {
            let e = weight(k);
            sum += e;
            dot += e * w;
        }
        return (sum, dot);
    }
    let (mut sum, mut dot) = ([0.0f32; C], [0.0f32; C]);
    let mut kc = keys.chunks_exact(C * d);
    let (yb, yt) = y.as_chunks::<C>();
    for (kr, yc) in (&mut kc).zip(yb) {
        for (j, (k, w)) in kr.chunks_exact(d).zip(yc).enumerate() {
            let e = weight(k);
            sum[j] += e;
            dot[j] += e * w;
        }
    }
    let rest = kc.remainder().chunks_exact(d).zip(yt);
    for ((a, b), (k, w)) in sum.iter_mut().zip(dot.iter_mut()).zip(rest) {
        let e = weight(k);
        *a += e;
        *b += e * w;
    }
    (simd::pairwise(sum), simd::pairwise(dot))
}

/// Weights 0 for a block while no score so far has weight: out of line, as
/// [`finite_or_error`].
#[cold]
#[inline(never)]
fn zero_cold(s: &mut [f32]) {
    s.fill(0.0);
}

/// `Ok` if `keys` and `q` are finite, else [`Error::NonFinite`]: the check behind a tile with a
/// `-inf` score, out of line so that the hot loop stays as it was.
#[cold]
#[inline(never)]
fn finite_or_error<E: Element>(keys: &[E], q: &[f32]) -> Result<(), Error> {
    if E::all_finite(keys) && simd::all_finite(q) {
        Ok(())
    } else {
        Err(Error::NonFinite)
    }
}

/// `acc / sum` of a state built by [`Lse::absorb`] over the rows of `runs`; if its accumulator
/// overflowed, the average is recomputed by [`exact_average`] instead. The verdict then depends
/// only on the samples, not on their order, tiling or ring position: the only `Overflow` left is
/// a weighted average that itself rounds beyond `±f32::MAX`.
#[inline]
pub(crate) fn finish_or_exact<K: Kernel + ?Sized, E: Element>(
    l: &Lse,
    kernel: &K,
    q: &[f32],
    runs: &[(&[E], &[E])],
    dv: usize,
    acc: &mut [f32],
) -> Result<(), Error> {
    match l.finish(acc) {
        Err(Error::Overflow) => exact_average(kernel, q, runs, dv, acc),
        r => r,
    }
}

/// `(2^-k, 2^k)` with `2^k > 2n`: weights `≤ 1` scaled by `2^-k` keep any partial sum of `n`
/// terms `w_i·v_i` below `f32::MAX / 2` for finite `v_i`, rounding included. Powers of two, so
/// the scaling itself is exact (save for weights below `2^(k-126)`, which are negligible beside
/// the maximum's weight of 1).
#[inline]
pub(crate) fn headroom(n: usize) -> (f32, f32) {
    // k ≤ usize::BITS + 1 ≤ 65: both powers are normal f32.
    let k = usize::BITS - n.leading_zeros() + 1;
    (
        f32::from_bits((127 - k) << 23),
        f32::from_bits((127 + k) << 23),
    )
}

/// The weighted average over the rows of `runs` (keys of row length `q.len()`, values of row
/// length `dv`, in that order) into `out[..dv]`, computed so that no partial sum can overflow:
/// the cold path behind an accumulator that did.
///
/// The scores are computed exactly as on the hot path (the same tiles, the same lanes); their
/// maximum `m` is found over all rows first, so no weight is ever rescaled; every weight
/// `exp(s_i - m) ≤ 1` is scaled by `2^-k` ([`headroom`]) before it meets a value, and the
/// quotient is scaled back by `2^k`. For finite values the result is therefore independent of
/// the rows' order to within rounding, and [`Error::Overflow`] means that the average itself
/// rounds beyond `±f32::MAX` (possible only for values within rounding of `±f32::MAX`).
///
/// Errors as found ([`Error::ScoreOverflow`], [`Error::Overflow`], [`Error::Empty`] for no
/// rows, [`Error::NoSupport`] if every score is `-inf`); the caller names a non-finite input
/// with [`diagnose`].
#[cold]
#[inline(never)]
pub(crate) fn exact_average<K: Kernel + ?Sized, E: Element>(
    kernel: &K,
    q: &[f32],
    runs: &[(&[E], &[E])],
    dv: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    let d = q.len();
    if d == 0 || dv == 0 {
        return Err(Error::ZeroDimension);
    }
    let Some(out) = out.get_mut(..dv) else {
        return Err(Error::OutputTooSmall);
    };
    let mut buf = [0.0f32; TILE];
    let (kc, vc) = (TILE.saturating_mul(d), TILE.saturating_mul(dv));
    // Pass 1: the maximum over every row, and the row count.
    let (mut m, mut n) = (f32::NEG_INFINITY, 0usize);
    for (keys, values) in runs {
        let mut value_tiles = values.chunks(vc);
        for kt in keys.chunks(kc) {
            let Some(vt) = value_tiles.next() else { break };
            let rows = (kt.len() / d).min(vt.len() / dv).min(TILE);
            let s = &mut buf[..rows];
            element::scores(kernel, q, kt, s);
            m = max_of_tile(s, m)?;
            n = n.saturating_add(rows);
        }
    }
    if n == 0 {
        return Err(Error::Empty);
    }
    if m == f32::NEG_INFINITY {
        return Err(Error::NoSupport);
    }
    // Pass 2: every weight against the one maximum, scaled down before it meets a value. Scalar
    // exponentials: this path is rare, and on a microcontroller its flash counts.
    let (down, up) = headroom(n);
    out.fill(0.0);
    let mut sum = 0.0f32;
    for (keys, values) in runs {
        let mut value_tiles = values.chunks(vc);
        for kt in keys.chunks(kc) {
            let Some(vt) = value_tiles.next() else { break };
            let rows = (kt.len() / d).min(vt.len() / dv).min(TILE);
            let s = &mut buf[..rows];
            element::scores(kernel, q, kt, s);
            sum += accumulate_tile(s, m, down, vt, dv, out);
        }
    }
    scale_back(out, sum, up)
}

// The kernel-independent steps of `exact_average`, out of line: one copy in flash whatever the
// number of kernels and shapes.

/// The larger of `m` and the largest score of `s` (`-inf` allowed), or `Err(ScoreOverflow)`.
#[inline(never)]
fn max_of_tile(s: &[f32], m: f32) -> Result<f32, Error> {
    let (tm, _) = simd::max_score(s)?;
    // Not `f32::max`: a libm call on Cortex-M4.
    Ok(if tm > m { tm } else { m })
}

/// `out += Σ_i 2^-k·exp(s_i - m)·values_i` with `down = 2^-k` (`m` finite; a score of `-inf`
/// has weight 0); returns `Σ_i exp(s_i - m)`.
#[inline(never)]
fn accumulate_tile<E: Element>(
    s: &mut [f32],
    m: f32,
    down: f32,
    values: &[E],
    dv: usize,
    out: &mut [f32],
) -> f32 {
    let mut sum = 0.0f32;
    for si in s.iter_mut() {
        let w = simd::exp_scalar(*si - m);
        sum += w;
        *si = w * down;
    }
    simd::weighted_sum_into(s, values, dv, out);
    sum
}

/// `out = out / sum · up`, or `Err(Overflow)` if a component is not finite.
#[inline(never)]
fn scale_back(out: &mut [f32], sum: f32, up: f32) -> Result<(), Error> {
    for a in out.iter_mut() {
        *a = *a / sum * up;
    }
    if simd::all_finite(out) {
        Ok(())
    } else {
        Err(Error::Overflow)
    }
}

/// The merge of two states `(max, sum)` of weight, both with `sum > 0` and finite maxima, and
/// their averages: `mean_a` becomes `w_a·mean_a + w_b·mean_b` (`w_a + w_b = 1`); returns the
/// merged `(max, sum)`. The one merge of the crate ([`OnlineSoftmax::merge`],
/// [`merge_averages`]).
#[inline]
fn merge_weighted(a: (f32, f32), mean_a: &mut [f32], b: (f32, f32), mean_b: &[f32]) -> (f32, f32) {
    // Not `f32::max`: a libm call on Cortex-M4; both maxima are finite.
    let m = if b.0 > a.0 { b.0 } else { a.0 };
    let sa = a.1 * simd::exp_scalar(a.0 - m);
    let sb = b.1 * simd::exp_scalar(b.0 - m);
    // The state with the larger maximum has weight exp(0)·S ≥ 1: no division by 0.
    let sum = sa + sb;
    let (wa, wb) = (sa / sum, sb / sum);
    for (x, y) in mean_a.iter_mut().zip(mean_b) {
        *x = *x * wa + *y * wb;
    }
    (m, sum)
}

/// The weighted average over the union of disjoint chunks of samples, from each chunk's
/// log-sum-exp of scores and weighted average (what [`attention_lse`](crate::attention_lse)
/// writes for a query over one chunk of keys), merged in the given order by the same arithmetic
/// as [`OnlineSoftmax::merge`] (a chunk is the state `(max = lse, sum = 1, mean)`). Split-K
/// attention ("flash decoding": chunks of keys on different cores) ends here; for a fixed split
/// and order the result does not depend on where the chunks were computed.
///
/// A chunk of `lse = -inf` has no weight (every score `-inf`) and changes nothing. Returns the
/// log-sum-exp of the union.
///
/// # Errors
/// - [`Error::Shape`] with [`Dim::Width`] if a chunk's average is not `out.len()` long;
/// - [`Error::NonFinite`] if a chunk's `lse` is NaN or `+inf`, or its average is not finite;
/// - [`Error::NoSupport`] if no chunk has weight (also for no chunks at all);
/// - [`Error::Overflow`] if the merged average is not finite.
///
/// # Examples
/// ```
/// use nadaraya::{attention, attention_lse, merge_averages, Mask, Rows, RowsMut, SoftmaxDot};
/// let k = SoftmaxDot::new(1.0)?;
/// let q = Rows::from_arrays(&[[0.5]]);
/// let keys = Rows::from_arrays(&[[0.0], [1.0], [2.0], [3.0]]);
/// let values = Rows::from_arrays(&[[1.0], [2.0], [3.0], [4.0]]);
/// let (mut parts, mut lse) = ([[0.0]; 2], [0.0; 2]);
/// for c in 0..2 {
///     let (kc, vc) = (keys.slice(2 * c, 2 * c + 2).unwrap(), values.slice(2 * c, 2 * c + 2).unwrap());
///     let (o, l) = (RowsMut::from_arrays(&mut parts[c..c + 1]), &mut lse[c..c + 1]);
///     attention_lse(&k, q, kc, vc, Mask::None, o, l)?;
/// }
/// let mut merged = [0.0];
/// merge_averages(lse.iter().copied().zip(parts.iter().map(|p| &p[..])), &mut merged)?;
/// let mut whole = [[0.0]];
/// attention(&k, q, keys, values, Mask::None, RowsMut::from_arrays(&mut whole))?;
/// assert!((merged[0] - whole[0][0]).abs() < 1e-6);
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn merge_averages<'a, I: IntoIterator<Item = (f32, &'a [f32])>>(
    chunks: I,
    out: &mut [f32],
) -> Result<f32, Error> {
    let mut state = (f32::NEG_INFINITY, 0.0f32);
    for (lse, mean) in chunks {
        if mean.len() != out.len() {
            return Err(Error::Shape {
                what: Dim::Width,
                expected: out.len(),
                found: mean.len(),
            });
        }
        // NaN and +inf both fail `lse < inf`.
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        if !(lse < f32::INFINITY) || !simd::all_finite(mean) {
            return Err(Error::NonFinite);
        }
        if lse == f32::NEG_INFINITY {
            continue;
        }
        if state.1 == 0.0 {
            out.copy_from_slice(mean);
            state = (lse, 1.0);
        } else {
            state = merge_weighted(state, out, (lse, 1.0), mean);
        }
    }
    if state.1 == 0.0 {
        return Err(Error::NoSupport);
    }
    if !simd::all_finite(out) {
        return Err(Error::Overflow);
    }
    Ok(state.0 + libm::logf(state.1))
}

/// A mergeable online-softmax state over samples with `DV`-dimensional values.
///
/// Feed it blocks of samples with [`update`](Self::update) (or single scores with
/// [`push_score`](Self::push_score)), combine states over disjoint samples with
/// [`merge`](Self::merge) in any order, and read the weighted average with
/// [`finish`](Self::finish). The result equals one pass over all samples to within rounding.
///
/// The state is `(m, S, μ)`: the largest score `m`, `S = Σ exp(s_i - m)` and the weighted
/// average `μ = Σ exp(s_i - m) y_i / S` itself rather than its numerator. A merge is then a
/// convex combination `μ = w_a μ_a + w_b μ_b` (`w_a + w_b = 1`), which cannot overflow for finite
/// values, so the verdict never depends on the order of pushes, updates or merges (the sum `A`
/// of huge values could overflow in one order and not in another).
///
/// # Examples
/// Chunked evaluation gives the single-pass answer:
/// ```
/// use nadaraya::{Gaussian, OnlineSoftmax, Rows};
/// let k = Gaussian::new(0.5)?;
/// let x = Rows::from_arrays(&[[0.0], [1.0], [2.0], [3.0]]);
/// let y = Rows::from_arrays(&[[1.0], [2.0], [3.0], [4.0]]);
/// let (head, tail) = (|r: Rows<'static>| r.slice(0, 2).unwrap(), |r: Rows<'static>| r.slice(2, 4).unwrap());
/// let mut left = OnlineSoftmax::<1>::new();
/// let mut right = OnlineSoftmax::<1>::new();
/// left.update(&k, &[1.2], head(x), head(y))?;
/// right.update(&k, &[1.2], tail(x), tail(y))?;
/// let mut whole = OnlineSoftmax::<1>::new();
/// whole.update(&k, &[1.2], x, y)?;
/// let merged = right.merge(&left).finish()?;
/// assert!((merged[0] - whole.finish()?[0]).abs() < 1e-6);
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OnlineSoftmax<const DV: usize> {
    max: f32,
    sum: f32,
    mean: [f32; DV],
    // A sample has been absorbed (perhaps only samples of score `-inf`, when `sum == 0`).
    seen: bool,
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
            mean: [0.0; DV],
            seen: false,
        }
    }

    /// The state over samples none of which has weight (every score `-inf`).
    const NO_SUPPORT: Self = Self {
        seen: true,
        ..Self::new()
    };

    /// `self` merged with `other`, or [`Error::Overflow`] if the merged average is not finite.
    fn merged(&self, other: &Self) -> Result<Self, Error> {
        let out = self.merge(other);
        if simd::all_finite(&out.mean) {
            Ok(out)
        } else {
            Err(Error::Overflow)
        }
    }

    /// Absorbs samples: the rows of `keys` (of the query's width) and of `values` (of width
    /// `DV`), one value row per key row.
    ///
    /// On error the state is unchanged.
    ///
    /// # Errors
    /// - [`Error::Shape`] with [`Dim::QueryWidth`] if `q.len()` is not the keys' width;
    /// - [`Error::Shape`] with [`Dim::Width`] `{ expected: E::MAX_KEY_WIDTH, .. }` if the keys
    ///   are wider than their [`Element`] takes (never for `f32`), then if the values' width is
    ///   not `DV`;
    /// - [`Error::Shape`] with [`Dim::ValueRows`] if `values` has not one row per key;
    /// - [`Error::NonFinite`] if any input is NaN or infinite;
    /// - [`Error::ScoreOverflow`] if a score is NaN or `+inf` (a score of `-inf` is weight 0);
    /// - [`Error::Overflow`] if the weighted average over the state's samples and the new ones,
    ///   computed from the `f32` scores, has a component beyond `±f32::MAX` (it is a convex
    ///   combination of the values, so only values within rounding of `±f32::MAX` can get
    ///   there).
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn update<K: Kernel + ?Sized, E: Element>(
        &mut self,
        kernel: &K,
        q: &[f32],
        keys: Rows<'_, E>,
        values: Rows<'_, E>,
    ) -> Result<(), Error> {
        let shape = |what, expected, found| Error::Shape {
            what,
            expected,
            found,
        };
        if q.len() != keys.width() {
            return Err(shape(Dim::QueryWidth, keys.width(), q.len()));
        }
        if keys.width() > E::MAX_KEY_WIDTH {
            return Err(shape(Dim::Width, E::MAX_KEY_WIDTH, keys.width()));
        }
        if values.width() != DV {
            return Err(shape(Dim::Width, DV, values.width()));
        }
        if values.len() != keys.len() {
            return Err(shape(Dim::ValueRows, keys.len(), values.len()));
        }
        let (keys, values) = (keys.as_slice(), values.as_slice());
        if keys.is_empty() {
            // No score reads the query, but a NaN in it is still an input error.
            return if simd::all_finite(q) {
                Ok(())
            } else {
                Err(Error::NonFinite)
            };
        }
        // The block on its own, then merged: non-finite inputs surface as a non-finite score or
        // accumulator, and only then are the inputs read again to name the cause. A block with
        // no score of weight (every one `-inf`) is a state too: it has seen samples.
        let mut block = Self::new();
        let mut l = Lse::EMPTY;
        let r = l
            .absorb(kernel, q, keys, values, DV, &mut block.mean)
            .and_then(|()| finish_or_exact(&l, kernel, q, &[(keys, values)], DV, &mut block.mean))
            .map_err(|e| diagnose_samples(e, q, keys, values));
        match r {
            Ok(()) => {
                block.set_lse(l);
                block.seen = true;
            }
            Err(Error::NoSupport) => block = Self::NO_SUPPORT,
            Err(e) => return Err(e),
        }
        *self = self.merged(&block)?;
        Ok(())
    }

    fn set_lse(&mut self, l: Lse) {
        self.max = l.max;
        self.sum = l.sum;
    }

    /// Absorbs one sample given by its score and value. A score of `-inf` is a sample of weight
    /// 0 (outside a compact kernel's support): it changes no average, but the state is no longer
    /// [empty](Self::is_empty).
    ///
    /// # Errors
    /// [`Error::ScoreOverflow`] if `score` is NaN or `+inf`, [`Error::NonFinite`] if `value` is
    /// not finite, [`Error::Overflow`] as for [`update`](Self::update); the state is then
    /// unchanged.
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn push_score(&mut self, score: f32, value: &[f32; DV]) -> Result<(), Error> {
        if !simd::all_finite(value) {
            return Err(Error::NonFinite);
        }
        // NaN and +inf both fail `score < inf`.
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        if !(score < f32::INFINITY) {
            return Err(Error::ScoreOverflow);
        }
        let one = if score == f32::NEG_INFINITY {
            Self::NO_SUPPORT
        } else {
            Self {
                max: score,
                sum: 1.0,
                mean: *value,
                seen: true,
            }
        };
        *self = self.merged(&one)?;
        Ok(())
    }

    /// The state over the union of the samples of `self` and `other` (which must be disjoint).
    ///
    /// Commutative (bit for bit); associative to within rounding, verdict included: the merged
    /// average is the convex combination `w_a μ_a + w_b μ_b` of the two averages, which cannot
    /// overflow, so whether [`finish`](Self::finish) returns [`Error::Overflow`] does not depend
    /// on the order of merges beyond the rounding of an average within a few ulp of
    /// `±f32::MAX`.
    #[must_use]
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn merge(&self, other: &Self) -> Self {
        // A state without weight (empty, or only `-inf` scores) adds none, but what it has seen.
        let seen = self.seen || other.seen;
        if other.sum == 0.0 {
            return Self { seen, ..*self };
        }
        if self.sum == 0.0 {
            return Self { seen, ..*other };
        }
        let mut mean = self.mean;
        let (max, sum) = merge_weighted(
            (self.max, self.sum),
            &mut mean,
            (other.max, other.sum),
            &other.mean,
        );
        Self {
            max,
            sum,
            mean,
            seen,
        }
    }

    /// True if no sample has been absorbed (a sample of score `-inf` counts: it was absorbed,
    /// with weight 0).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        !self.seen
    }

    /// The largest score seen (`-inf` when empty or when every score was `-inf`).
    #[must_use]
    pub fn max_score(&self) -> f32 {
        self.max
    }

    /// `log Σ exp(s_i)` over the samples seen (`-inf` when empty or when every score was
    /// `-inf`).
    #[must_use]
    pub fn log_sum_exp(&self) -> f32 {
        if self.sum == 0.0 {
            f32::NEG_INFINITY
        } else {
            self.max + libm::logf(self.sum)
        }
    }

    /// The weighted average `Σ α_i y_i`.
    ///
    /// # Errors
    /// [`Error::Empty`] if no sample has been absorbed; [`Error::NoSupport`] if every sample
    /// absorbed had score `-inf` (none has weight); [`Error::Overflow`] if the average has a
    /// component beyond `±f32::MAX` (only after [`merge`](Self::merge)s of averages within
    /// rounding of `±f32::MAX`: [`update`](Self::update) and [`push_score`](Self::push_score)
    /// refuse such a state).
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn finish(&self) -> Result<[f32; DV], Error> {
        if self.is_empty() {
            return Err(Error::Empty);
        }
        if self.sum == 0.0 {
            return Err(Error::NoSupport);
        }
        if !simd::all_finite(&self.mean) {
            return Err(Error::Overflow);
        }
        Ok(self.mean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Gaussian, SoftmaxDot};

    /// `acc / sum` after `absorb_with::<FUSED>` over `keys`/`values`, finished as the callers do.
    fn run_with<const FUSED: bool>(
        kernel: &dyn Kernel,
        q: &[f32],
        keys: &[f32],
        values: &[f32],
        dv: usize,
    ) -> Result<std::vec::Vec<f32>, Error> {
        let mut acc = std::vec![0.0f32; dv];
        let mut l = Lse::EMPTY;
        l.absorb_with::<FUSED, dyn Kernel>(kernel, q, keys, values, dv, &mut acc)?;
        finish_or_exact(&l, kernel, q, &[(keys, values)], dv, &mut acc)?;
        Ok(acc)
    }

    /// The fused table pass of the Cortex-M targets, run here on the host: the same verdict as
    /// the exact path (`absorb`) on every case, and the value within the README's bound of the
    /// `f64` average of the same scores — at every length across the tile boundaries, for
    /// scores that rise from tile to tile (every tile redone), a query far from every sample,
    /// compact kernels with `-inf` scores, non-finite keys and values, and huge values.
    #[test]
    fn fused_pass_matches_the_exact_path_and_the_reference() {
        use crate::testing::{assert_average, lcg, reference_average};
        use crate::{Epanechnikov, Tricube};
        use std::vec::Vec;
        let mut rng = lcg(41);
        let g = Gaussian::new(0.4).unwrap();
        let narrow = Gaussian::new(0.01).unwrap();
        let sd = SoftmaxDot::new(0.05).unwrap();
        let ep = Epanechnikov::new(0.3).unwrap();
        let tc = Tricube::new(0.5).unwrap();
        let kernels: [&dyn Kernel; 5] = [&g, &narrow, &sd, &ep, &tc];
        let mut checked = 0;
        for n in [1usize, 2, 3, 5, 63, 64, 65, 130, 200] {
            for (d, dv) in [(1, 1), (3, 1), (8, 1), (2, 3)] {
                for case in 0..7 {
                    let mut keys: Vec<f32> = (0..n * d).map(|_| 2.0 * rng() - 1.0).collect();
                    let mut values: Vec<f32> = (0..n * dv).map(|_| 4.0 * rng() - 2.0).collect();
                    let mut q: Vec<f32> = (0..d).map(|_| 2.0 * rng() - 1.0).collect();
                    match case {
                        // Rising scores: each key further along the query than the last.
                        1 => {
                            q.fill(1.0);
                            for (i, k) in keys.chunks_exact_mut(d).enumerate() {
                                k.fill(i as f32 / n as f32);
                            }
                        }
                        // Far from every sample: all Gaussian scores very negative.
                        2 => q.iter_mut().for_each(|x| *x += 40.0),
                        // An infinite key, a NaN key, a NaN value.
                        3 => keys[(n / 2) * d] = f32::INFINITY,
                        4 => keys[n * d - 1] = f32::NAN,
                        5 => values[n / 3 * dv] = f32::NAN,
                        // Huge values: the accumulator overflows, the average does not.
                        6 => values.iter_mut().for_each(|v| *v *= 1e38),
                        _ => {}
                    }
                    for kernel in kernels {
                        let fused = run_with::<true>(kernel, &q, &keys, &values, dv);
                        let exact = run_with::<false>(kernel, &q, &keys, &values, dv);
                        let what = std::format!("n {n} d {d} dv {dv} case {case}");
                        match (&fused, &exact) {
                            (Ok(f), Ok(_)) => {
                                // The scores the pass under test computes: one-column values
                                // go through `Kernel::score` row by row, wider ones through the
                                // lanes of `Kernel::scores` (whose last bits differ from the
                                // scalar score's where the build contracts to FMA, as a
                                // `-C target-cpu=native` build does, and a far query's scores
                                // of -3000 make those bits visible in the weights).
                                let mut scores = std::vec![0.0f32; n];
                                if dv == 1 {
                                    for (o, k) in scores.iter_mut().zip(keys.chunks_exact(d)) {
                                        *o = kernel.score(&q, k);
                                    }
                                } else {
                                    kernel.scores(&q, &keys, &mut scores);
                                }
                                let want = reference_average(&scores, &values, dv);
                                assert_average(Ok(f), &want, &values, &what);
                                checked += 1;
                            }
                            _ => assert_eq!(fused, exact, "{what}"),
                        }
                    }
                }
            }
        }
        assert!(
            checked > 500,
            "{checked} cases checked against the reference"
        );
    }

    /// The Gaussian's scores without its hidden fold: the fused pass at shift = the first score.
    struct Unfolded(Gaussian);

    impl Kernel for Unfolded {
        fn score(&self, q: &[f32], x: &[f32]) -> f32 {
            self.0.score(q, x)
        }
        fn scores(&self, q: &[f32], keys: &[f32], out: &mut [f32]) {
            self.0.scores(q, keys, out);
        }
    }

    /// The Gaussian fold (shift 0, `exp2_64` of the squared distance): within the bound of the
    /// `f64` average where its weights are kept; for a query so far that every weight
    /// underflows at shift 0 (the call's sum below `FOLD_SUM_MIN`), bit for bit the answer and
    /// the verdict of the pass at shift = the first score; over two runs (a ring buffer's two
    /// halves) with the far samples first, within the bound again.
    #[test]
    fn gaussian_fold_far_query_takes_the_first_score_pass() {
        use crate::testing::{assert_average, lcg, reference_average};
        use std::vec::Vec;
        let mut rng = lcg(7);
        let g = Gaussian::new(0.25).unwrap();
        let unfolded = Unfolded(g);
        let mut redone = 0;
        for n in [1usize, 2, 63, 64, 65, 200] {
            for d in [1usize, 3] {
                let keys: Vec<f32> = (0..n * d).map(|_| rng() - 0.5).collect();
                let values: Vec<f32> = (0..n).map(|_| 4.0 * rng() - 2.0).collect();
                // Query offsets: near (kept), nearest score about -14, -20, -200, -5000.
                for off in [0.0f32, 1.32, 1.58, 5.0, 25.0] {
                    let q: Vec<f32> = (0..d).map(|_| 0.5 + off).collect();
                    let what = std::format!("n {n} d {d} offset {off}");
                    let mut scores = std::vec![0.0f32; n];
                    for (o, k) in scores.iter_mut().zip(keys.chunks_exact(d)) {
                        *o = g.score(&q, k);
                    }
                    let want = reference_average(&scores, &values, 1);
                    let folded = run_with::<true>(&g, &q, &keys, &values, 1);
                    assert_average(folded.as_deref().map_err(|e| *e), &want, &values, &what);
                    let mut l = Lse::EMPTY;
                    let mut acc = [0.0f32];
                    l.absorb_with::<true, Gaussian>(&g, &q, &keys, &values, 1, &mut acc)
                        .unwrap();
                    if l.max != 0.0 {
                        // Redone: the same bits as the unfolded pass.
                        let first = run_with::<true>(&unfolded, &q, &keys, &values, 1);
                        assert_eq!(folded, first, "{what}");
                        redone += 1;
                    } else {
                        assert!(l.sum >= FOLD_SUM_MIN, "{what}: kept sum {}", l.sum);
                    }
                    // Two runs, the far half first.
                    if n >= 2 {
                        let (k1, k2) = keys.split_at(n / 2 * d);
                        let (v1, v2) = values.split_at(n / 2);
                        let mut far_keys: Vec<f32> = k1.iter().map(|k| k - 60.0).collect();
                        far_keys.extend_from_slice(k2);
                        let mut l = Lse::EMPTY;
                        let mut acc = [0.0f32];
                        l.absorb_with::<true, Gaussian>(
                            &g,
                            &q,
                            &far_keys[..k1.len()],
                            v1,
                            1,
                            &mut acc,
                        )
                        .unwrap();
                        l.absorb_with::<true, Gaussian>(&g, &q, k2, v2, 1, &mut acc)
                            .unwrap();
                        l.finish(&mut acc).unwrap();
                        let mut scores = std::vec![0.0f32; n];
                        for (o, k) in scores.iter_mut().zip(far_keys.chunks_exact(d)) {
                            *o = g.score(&q, k);
                        }
                        let want = reference_average(&scores, &values, 1);
                        assert_average(Ok(&acc), &want, &values, &std::format!("{what}, two runs"));
                    }
                }
            }
        }
        assert!(redone >= 18, "{redone} far queries redone");
    }

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
        let shape = |what, expected, found| {
            Err(Error::Shape {
                what,
                expected,
                found,
            })
        };
        let r = |x: &'static [f32], w| Rows::new(x, w).unwrap();
        let (one, two) = (r(&[1.0], 1), r(&[1.0, 1.0], 2));
        assert_eq!(s.update(&k, &[], one, two), shape(Dim::QueryWidth, 1, 0));
        assert_eq!(
            s.update(&k, &[0.0, 0.0], one, two),
            shape(Dim::QueryWidth, 1, 2)
        );
        assert_eq!(s.update(&k, &[0.0], one, one), shape(Dim::Width, 2, 1));
        assert_eq!(
            s.update(&k, &[0.0], r(&[1.0, 2.0], 1), two),
            shape(Dim::ValueRows, 2, 1)
        );
        assert_eq!(
            crate::testing::flat::update(&mut s, &k, &[0.0], &[f32::NAN], &[1.0, 1.0]),
            Err(Error::NonFinite)
        );
        // A block whose second tile overflows leaves the state as it was.
        let big = SoftmaxDot::new(1.0).unwrap();
        let mut keys = [1.0f32; 100];
        keys[80] = 3e38;
        assert_eq!(
            crate::testing::flat::update(&mut s, &big, &[2.0], &keys, &[0.5; 200]),
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
        crate::testing::flat::update(&mut a, &k, &[1.0], &[0.1, 0.9, -2.0], &[1.0, 2.0, 3.0])
            .unwrap();
        crate::testing::flat::update(&mut b, &k, &[1.0], &[5.0, -1.0], &[4.0, 5.0]).unwrap();
        let e = OnlineSoftmax::<1>::new();
        assert_eq!(a.merge(&e), a);
        assert_eq!(e.merge(&a), a);
        assert_eq!(a.merge(&b), b.merge(&a));
        assert!(e.merge(&e).is_empty());
    }

    /// `OnlineSoftmax` over the same samples, against a plain `f64` reference: every order of
    /// `push_score`, `update`s of every chunking, and merges in every association give the same
    /// verdict and value (issue 11, class 4: an accumulator that overflowed in one order made
    /// `finish` return `Err(Overflow)`, or `0 · inf` a NaN, where another order was `Ok`).
    #[test]
    fn order_chunking_and_merge_order_change_nothing() {
        use crate::testing::{assert_average, huge_samples, orders, permute, reference_average};
        let k = SoftmaxDot::new(1.0).unwrap();
        let (keys, values) = huge_samples();
        let n = keys.len();
        let want = reference_average(&keys, &values, 2);
        let check = |s: &OnlineSoftmax<2>, what: &str| {
            let got = s.finish();
            assert_average(
                got.as_ref().map(|y| &y[..]).map_err(|e| *e),
                &want,
                &values,
                what,
            );
        };
        for order in orders(n) {
            let (kp, vp) = (permute(&keys, 1, &order), permute(&values, 2, &order));
            let tag = std::format!("order {:?}", &order[..4]);
            let mut pushed = OnlineSoftmax::<2>::new();
            for (s, v) in kp.iter().zip(vp.chunks_exact(2)) {
                pushed.push_score(*s, &[v[0], v[1]]).unwrap();
            }
            check(&pushed, &std::format!("push_score, {tag}"));
            for chunk in [1, 3, 7, 64, 65, n] {
                let parts: std::vec::Vec<OnlineSoftmax<2>> = kp
                    .chunks(chunk)
                    .zip(vp.chunks(2 * chunk))
                    .map(|(kc, vc)| {
                        let mut s = OnlineSoftmax::<2>::new();
                        crate::testing::flat::update(&mut s, &k, &[1.0], kc, vc).unwrap();
                        s
                    })
                    .collect();
                let mut streamed = OnlineSoftmax::<2>::new();
                for (kc, vc) in kp.chunks(chunk).zip(vp.chunks(2 * chunk)) {
                    crate::testing::flat::update(&mut streamed, &k, &[1.0], kc, vc).unwrap();
                }
                check(&streamed, &std::format!("update by {chunk}, {tag}"));
                let left = parts.iter().fold(OnlineSoftmax::new(), |a, b| a.merge(b));
                check(&left, &std::format!("left fold of {chunk}, {tag}"));
                let right = parts
                    .iter()
                    .rev()
                    .fold(OnlineSoftmax::new(), |a, b| b.merge(&a));
                check(&right, &std::format!("right fold of {chunk}, {tag}"));
                let mut level = parts;
                while level.len() > 1 {
                    level = level
                        .chunks(2)
                        .map(|p| if let [a, b] = p { a.merge(b) } else { p[0] })
                        .collect();
                }
                check(&level[0], &std::format!("tree of {chunk}, {tag}"));
            }
        }
        // The smallest case of the issue: (a·b)·c against a·(b·c).
        let one = |s: f32, v: f32| {
            let mut o = OnlineSoftmax::<1>::new();
            o.push_score(s, &[v]).unwrap();
            o
        };
        let (a, b, c) = (
            one(0.0, 3e38).merge(&one(0.0, 3e38)),
            one(10.0, -3e38),
            one(0.0, 3e38),
        );
        let w = [3.0 * (-10.0f64).exp(), 1.0];
        let exact = (3e38 * w[0] - 3e38) / (w[0] + w[1]);
        for (s, what) in [
            (a.merge(&b).merge(&c), "(a·b)·c"),
            (a.merge(&b.merge(&c)), "a·(b·c)"),
        ] {
            let got = f64::from(s.finish().unwrap_or_else(|e| panic!("{what}: {e:?}"))[0]);
            crate::testing::assert_close(got, exact, 2e-6 * 3e38, what);
        }
    }
}

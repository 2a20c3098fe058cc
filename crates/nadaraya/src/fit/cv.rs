//! Cross-validation objectives for Nadaraya–Watson smoothing: leave-one-out and K-fold.

use crate::softmax::{Lse, TILE, diagnose, finish_or_exact};
use crate::{Dim, Error, Kernel, Rows, simd};

/// The widest response (`y.width()`) the objectives take: the running weighted sum of one query
/// lives in a stack array of this many `f32`.
pub const MAX_VALUE_WIDTH: usize = 64;

/// Checks the operands of an objective: shapes, capacity, at least two samples, finiteness.
pub(crate) fn check_samples(x: Rows<'_>, y: Rows<'_>) -> Result<(), Error> {
    if y.len() != x.len() {
        return Err(Error::Shape {
            what: Dim::ValueRows,
            expected: x.len(),
            found: y.len(),
        });
    }
    if y.width() > MAX_VALUE_WIDTH {
        return Err(Error::CapacityExceeded);
    }
    if x.len() < 2 {
        return Err(Error::Empty);
    }
    if !(simd::all_finite(x.as_slice()) && simd::all_finite(y.as_slice())) {
        return Err(Error::NonFinite);
    }
    Ok(())
}

/// The least-squares leave-one-out cross-validation score of Nadaraya–Watson smoothing with
/// `kernel` on the samples `(x_i, y_i)`:
///
/// `CV = 1/(N·dv) Σ_i Σ_c (y_ic − ŷ_{−i,c})²`, `ŷ_{−i} = Σ_{j≠i} α_ij y_j`,
/// `α_{i·} = softmax_{j≠i}(kernel.score(x_i, x_j))`.
///
/// Each `ŷ_{−i}` is computed from a softmax state built *without* sample `i` (the runs before
/// and after it), never as the full state minus the self term: at a small bandwidth the self
/// weight is `1` and every other weight is below `f32::EPSILON`, so the subtraction would leave
/// only rounding. One `O(N²·d)` pass; the squared errors are summed in `f64`.
///
/// # Errors
/// - [`Error::Shape`] with [`Dim::ValueRows`] if `y` has not one row per row of `x`;
/// - [`Error::CapacityExceeded`] if `y` is wider than [`MAX_VALUE_WIDTH`];
/// - [`Error::Empty`] if there are fewer than two samples (leaving one out leaves nothing);
/// - [`Error::NonFinite`] if any coordinate or response is NaN or infinite;
/// - [`Error::ScoreOverflow`] if a score is not finite in `f32`;
/// - [`Error::NoSupport`] if a sample has no other sample in the kernel's support (a compact
///   kernel at a bandwidth below the distance to its nearest neighbour);
/// - [`Error::Overflow`] if a leave-one-out prediction is not representable in `f32` (only for
///   responses within rounding of `±f32::MAX`, as everywhere in the crate).
///
/// # Examples
/// ```
/// use nadaraya::{Gaussian, Rows, fit};
/// let x = Rows::from_arrays(&[[0.0], [1.0], [2.0], [3.0]]);
/// let y = Rows::from_arrays(&[[0.0], [1.0], [2.0], [3.0]]);
/// // At a tiny bandwidth the end samples are predicted by their one nearest neighbour (error
/// // 1 each), the inner ones by the average of two equidistant neighbours (error 0).
/// let cv = fit::loo_cv(&Gaussian::new(0.01)?, x, y)?;
/// assert!((cv - 0.5).abs() < 1e-6);
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn loo_cv<K: Kernel + ?Sized>(kernel: &K, x: Rows<'_>, y: Rows<'_>) -> Result<f64, Error> {
    check_samples(x, y)?;
    loo_runs(
        kernel,
        [(x.as_slice(), y.as_slice()), (&[], &[])],
        x.width(),
        y.width(),
    )
    .map_err(|e| diagnose(e, &[x.as_slice(), y.as_slice()]))
}

/// The leave-one-out score over the samples of (up to) two runs of keys (row length `d`) and
/// values (row length `dv ≤ MAX_VALUE_WIDTH`), in that order: the slices' one run, or a
/// `Smoother`'s ring. The caller has checked shapes, sample count and finiteness.
pub(crate) fn loo_runs<K: Kernel + ?Sized>(
    kernel: &K,
    runs: [(&[f32], &[f32]); 2],
    d: usize,
    dv: usize,
) -> Result<f64, Error> {
    if d == 0 || dv == 0 {
        return Err(Error::ZeroDimension);
    }
    let mut total = 0.0f64;
    let mut count = 0usize;
    let mut acc = [0.0f32; MAX_VALUE_WIDTH];
    let Some(acc) = acc.get_mut(..dv) else {
        return Err(Error::CapacityExceeded);
    };
    let mut buf = [0.0f32; WIDE_TILE];
    for (r, &(keys, values)) in runs.iter().enumerate() {
        let other = runs.get(1 - r.min(1)).copied().unwrap_or((&[], &[]));
        let rows = (keys.len() / d).min(values.len() / dv);
        for i in 0..rows {
            let (Some((kb, ka)), Some((vb, va))) =
                (split_out(keys, i, d), split_out(values, i, dv))
            else {
                return Err(Error::Shape {
                    what: Dim::ValueRows,
                    expected: rows,
                    found: i,
                });
            };
            let (q, yi) = (ka.0, va.0);
            let pieces = [(kb, vb), (ka.1, va.1), other];
            acc.fill(0.0);
            let mut l = Lse::EMPTY;
            if dv == 1 {
                let mut a = 0.0f32;
                for (k, v) in pieces {
                    absorb_one_column(&mut l, &mut a, kernel, q, k, v, &mut buf)?;
                }
                if let Some(slot) = acc.first_mut() {
                    *slot = a;
                }
            } else {
                for (k, v) in pieces {
                    l.absorb(kernel, q, k, v, dv, acc)?;
                }
            }
            finish_or_exact(&l, kernel, q, &pieces, dv, acc)?;
            for (a, b) in acc.iter().zip(yi) {
                let e = f64::from(*b) - f64::from(*a);
                total += e * e;
            }
            count += dv;
        }
    }
    if count == 0 {
        return Err(Error::Empty);
    }
    Ok(total / count as f64)
}

/// True if the one-column locations `x` are sorted ascending (`x_i ≤ x_{i+1}`; finite).
#[inline]
pub(crate) fn is_sorted_1d(x: &[f32]) -> bool {
    x.windows(2).all(|w| matches!(w, [a, b] if a <= b))
}

/// The first window of [`loo_sorted`] on each side of a sample; later windows double.
const FIRST_WINDOW: usize = 64;

/// [`loo_runs`] for one-column locations sorted ascending and a kernel whose score does not
/// increase with the distance `|q − x|` (the kernels of [`super::Bandwidth::RADIAL`]): the
/// state of sample `i` absorbs windows of 64, 128, 256, … samples outwards on each side, and
/// stops on a side at the first sample there whose weight is exactly 0
/// (`score − max < EXP_MIN`, where the lane exponential returns 0, or a score of `-inf`; found
/// by bisection in the window that ends in one): every sample beyond it is at least as far
/// away, so its weight relative to the largest is below `2^-126` too. The value is then that of [`loo_runs`] up to rounding (each left-out sample
/// would add less than `2^-126` of the largest weight), and a small bandwidth costs `O(N·w)`
/// for windows of `w` samples instead of `O(N²)`. The caller has checked the samples and
/// [`is_sorted_1d`].
pub(crate) fn loo_sorted<K: Kernel + ?Sized>(
    kernel: &K,
    x: &[f32],
    y: &[f32],
    dv: usize,
) -> Result<f64, Error> {
    if dv == 0 {
        return Err(Error::ZeroDimension);
    }
    let n = x.len().min(y.len() / dv);
    let mut total = 0.0f64;
    let mut acc = [0.0f32; MAX_VALUE_WIDTH];
    let Some(acc) = acc.get_mut(..dv) else {
        return Err(Error::CapacityExceeded);
    };
    let mut buf = [0.0f32; WIDE_TILE];
    for i in 0..n {
        let (Some(q), Some(yi)) = (x.get(i..=i), y.get(i * dv..(i + 1) * dv)) else {
            break;
        };
        // The samples absorbed so far: x[lo..i] and x[i + 1..hi].
        let (mut lo, mut hi) = (i, i + 1);
        let mut l = Lse::EMPTY;
        let mut a = 0.0f32;
        acc.fill(0.0);
        let mut width = FIRST_WINDOW;
        let (mut left, mut right) = (lo > 0, hi < n);
        while left || right {
            if right {
                let mut end = hi.saturating_add(width).min(n);
                if negligible(&l, kernel, q, x, end - 1) {
                    // The window ends in weight 0: absorb up to its first such sample, stop.
                    end = first_negligible(&l, kernel, q, x, hi, end - 1);
                    right = false;
                }
                absorb_window(&mut l, &mut a, acc, &mut buf, kernel, q, x, y, dv, hi..end)?;
                hi = end;
                right = right && hi < n;
            }
            if left {
                let mut start = lo.saturating_sub(width);
                if negligible(&l, kernel, q, x, start) {
                    // The first sample past the cut, counting down from lo − 1.
                    start = last_negligible(&l, kernel, q, x, start, lo - 1) + 1;
                    left = false;
                }
                absorb_window(
                    &mut l,
                    &mut a,
                    acc,
                    &mut buf,
                    kernel,
                    q,
                    x,
                    y,
                    dv,
                    start..lo,
                )?;
                lo = start;
                left = left && lo > 0;
            }
            width = width.saturating_mul(2);
        }
        if dv == 1
            && let Some(slot) = acc.first_mut()
        {
            *slot = a;
        }
        let pieces = [
            (
                x.get(lo..i).unwrap_or(&[]),
                y.get(lo * dv..i * dv).unwrap_or(&[]),
            ),
            (
                x.get(i + 1..hi).unwrap_or(&[]),
                y.get((i + 1) * dv..hi * dv).unwrap_or(&[]),
            ),
        ];
        finish_or_exact(&l, kernel, q, &pieces, dv, acc)?;
        for (a, b) in acc.iter().zip(yi) {
            let e = f64::from(*b) - f64::from(*a);
            total += e * e;
        }
    }
    if n == 0 {
        return Err(Error::Empty);
    }
    Ok(total / (n as f64 * dv as f64))
}

/// True if sample `j` has weight exactly 0 beside the state's maximum: the lane exponential of
/// `score − max` is 0 (below `EXP_MIN`, or a score of `-inf`).
#[inline]
fn negligible<K: Kernel + ?Sized>(l: &Lse, kernel: &K, q: &[f32], x: &[f32], j: usize) -> bool {
    let Some(xj) = x.get(j..=j) else { return true };
    let s = kernel.score(q, xj);
    s == f32::NEG_INFINITY || (l.max != f32::NEG_INFINITY && s - l.max < simd::EXP_MIN)
}

/// The first index `p` in `lo..=hi` whose sample has weight 0 ([`negligible`]), given that
/// `hi`'s has (the weights do not increase with the index: samples right of the query).
#[inline]
fn first_negligible<K: Kernel + ?Sized>(
    l: &Lse,
    kernel: &K,
    q: &[f32],
    x: &[f32],
    mut lo: usize,
    mut hi: usize,
) -> usize {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if negligible(l, kernel, q, x, mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    hi
}

/// The last index `p` in `lo..=hi` whose sample has weight 0, given that `lo`'s has (samples
/// left of the query: the weights do not decrease with the index).
#[inline]
fn last_negligible<K: Kernel + ?Sized>(
    l: &Lse,
    kernel: &K,
    q: &[f32],
    x: &[f32],
    mut lo: usize,
    mut hi: usize,
) -> usize {
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if negligible(l, kernel, q, x, mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// Absorbs the samples `range` of `(x, y)` into the state: the fused one-column path for
/// `dv = 1`, [`Lse::absorb`] otherwise.
#[allow(clippy::too_many_arguments)]
#[inline]
fn absorb_window<K: Kernel + ?Sized>(
    l: &mut Lse,
    a: &mut f32,
    acc: &mut [f32],
    buf: &mut [f32; WIDE_TILE],
    kernel: &K,
    q: &[f32],
    x: &[f32],
    y: &[f32],
    dv: usize,
    range: core::ops::Range<usize>,
) -> Result<(), Error> {
    let (Some(k), Some(v)) = (
        x.get(range.clone()),
        y.get(range.start * dv..range.end * dv),
    ) else {
        return Ok(());
    };
    if dv == 1 {
        absorb_one_column(l, a, kernel, q, k, v, buf)
    } else {
        l.absorb(kernel, q, k, v, dv, acc)
    }
}

/// Rows of scores per tile of the one-column path: 256 (1 KiB of stack) amortises the per-tile
/// work (the scores call, the maximum, a rescale) over four times the rows of [`TILE`].
const WIDE_TILE: usize = 4 * TILE;

/// [`Lse::absorb`] for one-column values, with the exponentials, their sum and the weighted sum
/// fused into one pass ([`simd::exp_shift_sum_dot`]) over tiles of [`WIDE_TILE`] scores: the
/// state `(max, sum)` in `l`, the weighted sum in `acc`.
#[inline]
fn absorb_one_column<K: Kernel + ?Sized>(
    l: &mut Lse,
    acc: &mut f32,
    kernel: &K,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    buf: &mut [f32; WIDE_TILE],
) -> Result<(), Error> {
    let d = q.len();
    if d == 0 {
        return Err(Error::ZeroDimension);
    }
    let mut value_tiles = values.chunks(WIDE_TILE);
    for kt in keys.chunks(WIDE_TILE.saturating_mul(d)) {
        let Some(vt) = value_tiles.next() else { break };
        let rows = (kt.len() / d).min(vt.len()).min(WIDE_TILE);
        let Some(s) = buf.get_mut(..rows) else { break };
        kernel.scores(q, kt, s);
        // A score of -inf is weight 0 (a compact kernel's outside); the samples were checked
        // finite up front, so it never hides a non-finite input.
        let (m, _) = simd::max_score(s)?;
        if m == f32::NEG_INFINITY {
            continue;
        }
        if m > l.max {
            if l.sum != 0.0 {
                let f = simd::exp_scalar(l.max - m);
                l.sum *= f;
                *acc *= f;
            }
            l.max = m;
        }
        if l.max == f32::NEG_INFINITY {
            continue;
        }
        let (sum, dot) = simd::exp_shift_sum_dot(s, vt, l.max);
        l.sum += sum;
        *acc += dot;
    }
    Ok(())
}

/// Row `i` of `xs` (rows of `w`) and the rows before and after it:
/// `(before, (row, after))`.
#[inline]
#[allow(clippy::type_complexity)]
fn split_out(xs: &[f32], i: usize, w: usize) -> Option<(&[f32], (&[f32], &[f32]))> {
    let (before, rest) = xs.split_at_checked(i.checked_mul(w)?)?;
    let (row, after) = rest.split_at_checked(w)?;
    Some((before, (row, after)))
}

/// The fold of a sample location among `folds`: a hash of its coordinates' bits (with `-0.0`
/// counted as `0.0`), so that it depends on the location alone, never on the samples' order,
/// and samples sharing a location are held out together.
#[inline]
pub(crate) fn fold_of(x: &[f32], folds: u64) -> u64 {
    // FNV-1a over the 32-bit words, then a final avalanche (splitmix64's finaliser).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in x {
        let v = if *v == 0.0 { 0.0f32 } else { *v };
        h ^= u64::from(v.to_bits());
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    h % folds.max(1)
}

/// The K-fold cross-validation score of Nadaraya–Watson smoothing with `kernel`:
/// `CV = 1/(N·dv) Σ_i Σ_c (y_ic − ŷ_{−f(i),c})²`, where `ŷ_{−f(i)}` is the prediction at `x_i`
/// from the samples outside `i`'s fold `f(i)`.
///
/// The fold of a sample is a hash of its location's bits (FNV-1a over the coordinates, `-0.0`
/// counted as `0.0`, with a final avalanche) modulo `folds`:
/// it does not depend on the order of the samples, so neither do the verdict and the value, and
/// samples at the same location always share a fold (leave-one-out lets a duplicated location
/// predict itself at a small bandwidth; K-fold does not). Folds are therefore only roughly equal
/// in size.
///
/// Nadaraya–Watson has no fit to reuse between held-out samples, so K-fold costs what
/// [`loo_cv`] costs (`O(N²·d)`), plus the hash of each sample's location per query.
///
/// # Errors
/// As [`loo_cv`], and [`Error::ZeroDimension`] if `folds < 2`; [`Error::Empty`] if a sample has
/// no sample outside its fold.
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn kfold_cv<K: Kernel + ?Sized>(
    kernel: &K,
    x: Rows<'_>,
    y: Rows<'_>,
    folds: usize,
) -> Result<f64, Error> {
    check_samples(x, y)?;
    if folds < 2 {
        return Err(Error::ZeroDimension);
    }
    let dv = y.width();
    let folds = folds as u64;
    let mut total = 0.0f64;
    let mut acc = [0.0f32; MAX_VALUE_WIDTH];
    let Some(acc) = acc.get_mut(..dv) else {
        return Err(Error::CapacityExceeded);
    };
    for (q, yi) in x.iter().zip(y.iter()) {
        let f = fold_of(q, folds);
        masked_average(kernel, q, x, y, |xj| fold_of(xj, folds) != f, acc)
            .map_err(|e| diagnose(e, &[x.as_slice(), y.as_slice()]))?;
        for (a, b) in acc.iter().zip(yi) {
            let e = f64::from(*b) - f64::from(*a);
            total += e * e;
        }
    }
    Ok(total / (x.len() as f64 * dv as f64))
}

/// The weighted average at `q` over the samples whose location passes `keep`, into `out`
/// (`y.width()` long): the same two-pass arithmetic as the crate's exact average (the maximum
/// first, then weights scaled down by [`crate::softmax::headroom`] before they meet a value), so
/// no partial sum can overflow and the result does not depend on the samples' order.
fn masked_average<K: Kernel + ?Sized>(
    kernel: &K,
    q: &[f32],
    x: Rows<'_>,
    y: Rows<'_>,
    keep: impl Fn(&[f32]) -> bool,
    out: &mut [f32],
) -> Result<(), Error> {
    let mut m = f32::NEG_INFINITY;
    let mut n = 0usize;
    for xj in x.iter() {
        if keep(xj) {
            let s = kernel.score(q, xj);
            // -inf is weight 0 (outside a compact kernel's support); NaN and +inf are errors.
            if s.is_nan() || s == f32::INFINITY {
                return Err(Error::ScoreOverflow);
            }
            if s > m {
                m = s;
            }
            n += 1;
        }
    }
    if n == 0 {
        return Err(Error::Empty);
    }
    if m == f32::NEG_INFINITY {
        return Err(Error::NoSupport);
    }
    let (down, up) = crate::softmax::headroom(n);
    out.fill(0.0);
    let mut sum = 0.0f32;
    for (xj, yj) in x.iter().zip(y.iter()) {
        if keep(xj) {
            let w = simd::exp_scalar(kernel.score(q, xj) - m);
            sum += w;
            let wd = w * down;
            for (o, v) in out.iter_mut().zip(yj) {
                *o += wd * v;
            }
        }
    }
    for o in out.iter_mut() {
        *o = *o / sum * up;
    }
    if simd::all_finite(out) {
        Ok(())
    } else {
        Err(Error::Overflow)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::Gaussian;
    use crate::testing::lcg;
    use std::vec::Vec;

    /// Leave-one-out CV of Gaussian Nadaraya–Watson written plainly in `f64` from the `f32`
    /// inputs: scores `-|x_i - x_j|² / (2h²)`, softmax over `j ≠ i` with its maximum subtracted.
    pub(crate) fn reference_loo(h: f64, x: &[f32], d: usize, y: &[f32], dv: usize) -> f64 {
        let n = x.len() / d;
        let row = |v: &[f32], w: usize, i: usize| -> Vec<f64> {
            v[i * w..(i + 1) * w]
                .iter()
                .map(|a| f64::from(*a))
                .collect()
        };
        let mut total = 0.0;
        for i in 0..n {
            let xi = row(x, d, i);
            let s: Vec<(usize, f64)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| {
                    let xj = row(x, d, j);
                    let d2: f64 = xi.iter().zip(&xj).map(|(a, b)| (a - b) * (a - b)).sum();
                    (j, -d2 / (2.0 * h * h))
                })
                .collect();
            let m = s.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
            let w: Vec<f64> = s.iter().map(|p| (p.1 - m).exp()).collect();
            let sw: f64 = w.iter().sum();
            for c in 0..dv {
                let pred: f64 = s
                    .iter()
                    .zip(&w)
                    .map(|(p, w)| w * f64::from(y[p.0 * dv + c]))
                    .sum::<f64>()
                    / sw;
                let e = f64::from(y[i * dv + c]) - pred;
                total += e * e;
            }
        }
        total / (n * dv) as f64
    }

    /// Data: `n` locations in `[0, 1)^d`, responses `sin(6 x_0) + 0.5 x_1 + noise` per column.
    pub(crate) fn data(seed: u64, n: usize, d: usize, dv: usize) -> (Vec<f32>, Vec<f32>) {
        let mut r = lcg(seed);
        let x: Vec<f32> = (0..n * d).map(|_| r()).collect();
        let y: Vec<f32> = (0..n * dv)
            .map(|k| {
                let i = k / dv;
                let x0 = x[i * d];
                let x1 = if d > 1 { x[i * d + 1] } else { 0.0 };
                (6.0 * x0).sin() + 0.5 * x1 + 0.2 * (r() - 0.5) + (k % dv) as f32
            })
            .collect();
        (x, y)
    }

    fn rows(v: &[f32], w: usize) -> Rows<'_> {
        Rows::new(v, w).unwrap()
    }

    /// The objective against the plain `f64` reference at bandwidths from far below the sample
    /// spacing (each sample predicted by its nearest neighbour) to far above the spread (the
    /// mean of the others), for several widths: within 1e-5 relative. Checked to fail: with the
    /// self term left in the state (`pieces = [(kb, vb), (ka.0, ..)..]`) the small bandwidths
    /// give CV = 0.
    #[test]
    fn loo_matches_f64_reference_at_every_bandwidth() {
        for (seed, n, d, dv) in [(1, 150, 1, 1), (2, 97, 2, 1), (3, 70, 3, 2), (4, 130, 9, 1)] {
            let (x, y) = data(seed, n, d, dv);
            for e in -40..=12 {
                let h = 10f64.powf(f64::from(e) / 8.0);
                let k = Gaussian::new(h as f32).unwrap();
                let got = loo_cv(&k, rows(&x, d), rows(&y, dv)).unwrap();
                let want = reference_loo(f64::from(h as f32), &x, d, &y, dv);
                let rel = (got - want).abs() / want;
                assert!(
                    rel < 1e-5,
                    "n {n} d {d} dv {dv} h {h:e}: {got} vs {want} ({rel:e})"
                );
            }
        }
    }

    /// The windowed objective on sorted locations against the plain `f64` reference (and the
    /// full pass's verdict) from far below the spacing to far above the spread, for one and two
    /// response columns, clustered data (windows that stop inside a cluster) and duplicated
    /// locations; and for a compact kernel, whose `NoSupport` verdict it keeps. Checked to fail
    /// with a stop test that leaves out weights up to e^-4.4 (`s - l.max < EXP_MIN / 20.0`);
    /// weights up to e^-22 (`/ 4.0`) are below what 1e-5 can see, as the bound says.
    #[test]
    fn sorted_window_matches_the_full_pass() {
        use crate::Epanechnikov;
        let mut r = lcg(21);
        let mut clustered: Vec<(f32, f32)> = (0..300)
            .map(|i| {
                let c = (i % 6) as f32;
                let x = c + 0.05 * (r() - 0.5);
                (x, (3.0 * x).sin() + 0.3 * r())
            })
            .collect();
        clustered.extend([(2.0, 1.0), (2.0, 3.0), (2.0, -1.0)]);
        let (x0, y0) = data(9, 257, 1, 2);
        let mut smooth: Vec<(f32, f32, f32)> = (0..257)
            .map(|i| (x0[i], y0[2 * i], y0[2 * i + 1]))
            .collect();
        smooth.sort_by(|a, b| a.0.total_cmp(&b.0));
        clustered.sort_by(|a, b| a.0.total_cmp(&b.0));
        let cx: Vec<f32> = clustered.iter().map(|p| p.0).collect();
        let cy: Vec<f32> = clustered.iter().map(|p| p.1).collect();
        let sx: Vec<f32> = smooth.iter().map(|p| p.0).collect();
        let sy: Vec<f32> = smooth.iter().flat_map(|p| [p.1, p.2]).collect();
        for (x, y, dv) in [(&cx, &cy, 1), (&sx, &sy, 2)] {
            assert!(is_sorted_1d(x));
            for e in -40..=12 {
                let h = 10f64.powf(f64::from(e) / 8.0) as f32;
                let k = Gaussian::new(h).unwrap();
                let got = loo_sorted(&k, x, y, dv).unwrap();
                let want = reference_loo(f64::from(h), x, 1, y, dv);
                let full = loo_cv(&k, rows(x, 1), rows(y, dv)).unwrap();
                assert!(
                    (got - want).abs() < 1e-5 * want,
                    "dv {dv} h {h:e}: {got} vs {want}"
                );
                assert!(
                    (got - full).abs() < 1e-5 * want,
                    "dv {dv} h {h:e}: {got} vs {full}"
                );
            }
            for h in [1e-4f32, 3e-3, 0.02, 0.3, 5.0] {
                let k = Epanechnikov::new(h).unwrap();
                let got = loo_sorted(&k, x, y, dv);
                let full = loo_cv(&k, rows(x, 1), rows(y, dv));
                match (got, full) {
                    (Ok(a), Ok(b)) => assert!((a - b).abs() < 1e-5 * b, "h {h}: {a} vs {b}"),
                    (a, b) => assert_eq!(a, b, "h {h}"),
                }
            }
        }
    }

    /// At a bandwidth where the self weight is 1 and every other weight is below `f32::EPSILON`,
    /// the full state minus the self term loses everything to cancellation, while the state
    /// built without sample `i` is exact.
    #[test]
    fn tiny_bandwidth_stays_exact_where_subtraction_cancels() {
        let x: Vec<f32> = (0..40).map(|i| i as f32 * 0.1).collect();
        let y: Vec<f32> = (0..40).map(|i| ((i * 7) % 11) as f32).collect();
        let h = 0.015f32; // neighbours at 0.1: score -22.2, weight 2.3e-10 against 1
        let k = Gaussian::new(h).unwrap();
        let got = loo_cv(&k, rows(&x, 1), rows(&y, 1)).unwrap();
        let want = reference_loo(f64::from(h), &x, 1, &y, 1);
        assert!((got - want).abs() < 1e-6 * want, "{got} vs {want}");
        // The naive form: the full f32 softmax sums, then the self term subtracted.
        let mut naive = 0.0f64;
        for i in 0..40 {
            let (mut sw, mut swy) = (0.0f32, 0.0f32);
            for j in 0..40 {
                let w = crate::math::exp_neg(k.score(&x[i..=i], &x[j..=j]));
                sw += w;
                swy += w * y[j];
            }
            let pred = (swy - y[i]) / (sw - 1.0);
            naive += (f64::from(y[i]) - f64::from(pred)).powi(2) / 40.0;
        }
        assert!(
            naive.is_nan() || (naive - want).abs() > 0.1 * want,
            "naive {naive} vs {want}: the subtraction should have cancelled"
        );
    }

    #[test]
    fn bad_input_is_rejected() {
        let k = Gaussian::new(1.0).unwrap();
        let r = |v: &'static [f32], w| Rows::new(v, w).unwrap();
        assert_eq!(loo_cv(&k, r(&[1.0], 1), r(&[1.0], 1)), Err(Error::Empty));
        assert_eq!(loo_cv(&k, r(&[], 1), r(&[], 1)), Err(Error::Empty));
        assert_eq!(
            loo_cv(&k, r(&[1.0, 2.0], 1), r(&[1.0], 1)),
            Err(Error::Shape {
                what: Dim::ValueRows,
                expected: 2,
                found: 1
            })
        );
        assert_eq!(
            loo_cv(&k, r(&[1.0, f32::NAN], 1), r(&[1.0, 2.0], 1)),
            Err(Error::NonFinite)
        );
        assert_eq!(
            loo_cv(&k, r(&[1.0, 2.0], 1), r(&[1.0, f32::INFINITY], 1)),
            Err(Error::NonFinite)
        );
        let wide = [0.0f32; 2 * 65];
        assert_eq!(
            loo_cv(&k, r(&[1.0, 2.0], 1), Rows::new(&wide, 65).unwrap()),
            Err(Error::CapacityExceeded)
        );
        // Squared distances that overflow f32: scores of -inf, weight 0 (as everywhere in the
        // core), so neither sample has another of weight.
        assert_eq!(
            loo_cv(&k, r(&[-3e38, 3e38], 1), r(&[1.0, 2.0], 1)),
            Err(Error::NoSupport)
        );
        assert_eq!(
            kfold_cv(&k, r(&[1.0, 2.0], 1), r(&[1.0, 2.0], 1), 1),
            Err(Error::ZeroDimension)
        );
    }

    /// A compact kernel: where a sample has no other sample in its support the objective is
    /// `NoSupport` (whatever the order), elsewhere it matches the plain `f64` objective with
    /// weights `1 − u²`; the selector skips the too-narrow bandwidths.
    #[test]
    fn compact_kernel_objective_and_selection() {
        use crate::Epanechnikov;
        let (x, y) = data(4, 120, 1, 1);
        let reference = |h: f64| {
            let mut total = 0.0;
            for i in 0..120 {
                let (mut sw, mut swy) = (0.0, 0.0);
                for j in (0..120).filter(|&j| j != i) {
                    let u = (f64::from(x[i]) - f64::from(x[j])) / h;
                    let w = if u.abs() < 1.0 { 1.0 - u * u } else { 0.0 };
                    sw += w;
                    swy += w * f64::from(y[j]);
                }
                if sw == 0.0 {
                    return None;
                }
                total += (f64::from(y[i]) - swy / sw).powi(2);
            }
            Some(total / 120.0)
        };
        for h in [1e-4f32, 0.01, 0.03, 0.1, 0.5, 3.0] {
            let got = loo_cv(&Epanechnikov::new(h).unwrap(), rows(&x, 1), rows(&y, 1));
            match reference(f64::from(h)) {
                None => assert_eq!(got, Err(Error::NoSupport), "h {h}"),
                Some(want) => {
                    let got = got.unwrap();
                    assert!((got - want).abs() < 1e-5 * want, "h {h}: {got} vs {want}");
                }
            }
        }
        let (k, sel) = crate::fit::select_bandwidth::<Epanechnikov>(
            rows(&x, 1),
            rows(&y, 1),
            &crate::fit::Search::default(),
        )
        .unwrap();
        let want = reference(f64::from(crate::fit::Bandwidth::bandwidth(&k))).unwrap();
        assert!((sel.cv - want).abs() < 1e-5 * want);
    }

    /// Responses near `f32::MAX`: the running sums overflow, the exact average does not.
    #[test]
    fn huge_responses_are_averaged_exactly() {
        let x: Vec<f32> = (0..100).map(|i| i as f32 * 0.01).collect();
        let y: Vec<f32> = (0..100)
            .map(|i| if i % 2 == 0 { 3e38 } else { 2.9e38 })
            .collect();
        let k = Gaussian::new(10.0).unwrap();
        let got = loo_cv(&k, rows(&x, 1), rows(&y, 1)).unwrap();
        let want = reference_loo(10.0, &x, 1, &y, 1);
        assert!((got - want).abs() < 1e-4 * want, "{got:e} vs {want:e}");
    }

    /// K-fold against a plain f64 reference with the same folds, and the same value for every
    /// order of the samples.
    #[test]
    fn kfold_matches_reference_in_every_order() {
        let (x, y) = data(7, 90, 2, 1);
        let h = 0.15f32;
        let k = Gaussian::new(h).unwrap();
        let folds = 5u64;
        let mut want = 0.0;
        for i in 0..90 {
            let fi = fold_of(&x[2 * i..2 * i + 2], folds);
            let (mut sw, mut swy) = (0.0f64, 0.0f64);
            for j in 0..90 {
                if fold_of(&x[2 * j..2 * j + 2], folds) == fi {
                    continue;
                }
                let d2: f64 = (0..2)
                    .map(|c| (f64::from(x[2 * i + c]) - f64::from(x[2 * j + c])).powi(2))
                    .sum();
                let w = (-d2 / (2.0 * f64::from(h) * f64::from(h))).exp();
                sw += w;
                swy += w * f64::from(y[j]);
            }
            want += (f64::from(y[i]) - swy / sw).powi(2) / 90.0;
        }
        for order in crate::testing::orders(90) {
            let xp = crate::testing::permute(&x, 2, &order);
            let yp = crate::testing::permute(&y, 1, &order);
            let got = kfold_cv(&k, rows(&xp, 2), rows(&yp, 1), 5).unwrap();
            assert!((got - want).abs() < 1e-5 * want, "{got} vs {want}");
        }
        // Folds are roughly balanced.
        let mut count = [0usize; 5];
        for i in 0..90 {
            count[fold_of(&x[2 * i..2 * i + 2], folds) as usize] += 1;
        }
        assert!(count.iter().all(|&c| c > 8), "{count:?}");
    }
}

//! Metric learning for kernel regression (MLKR, Weinberger & Tesauro 2007): a linear map `W`
//! (`K×D`) learned so that Gaussian Nadaraya–Watson in `W`-space, with weights proportional to
//! `exp(−|W(x_i − x_j)|²/2)`, has the least leave-one-out squared error.
//!
//! This is the seed's first insight in its classical form: attention's `W_Q = W_K` learned, so
//! that the model learns the geometry of similarity. The objective and its analytic gradient
//! come in one `O(N²·(D+K))` pass ([`loo_cv_metric`]); [`learn_metric`] takes plain gradient
//! steps with a backtracking line search, in fixed arrays (the `nadaraya` command's
//! `learn` runs L-BFGS on the same objective).

use super::MAX_DIMS;
use super::cv::check_samples;
use crate::{Dim, Error, Rows, RowsMut, simd};

/// The most rows `K` a learned map may have (its columns `D` are capped by [`MAX_DIMS`]): the
/// gradient accumulates in a `K×D` stack array of `f64`.
pub const MAX_METRIC_ROWS: usize = MAX_DIMS;

/// The length of the scratch slice [`loo_cv_metric`] and [`learn_metric`] need for `n` samples
/// of `d` inputs and a map to `k` dimensions: `n·(d + 2k + 2)` floats (the centred inputs
/// column by column, their projections row by row and column by column, one row of weights and
/// the column sums of the gradient's coefficients), or `usize::MAX` if that overflows.
///
/// # Examples
/// ```
/// assert_eq!(nadaraya::fit::metric_scratch_len(400, 5, 1), 400 * 9);
/// ```
#[inline]
#[must_use]
pub const fn metric_scratch_len(n: usize, d: usize, k: usize) -> usize {
    let w = d.saturating_add(k.saturating_mul(2)).saturating_add(2);
    n.saturating_mul(w)
}

/// The checked operands: `(n, d, k, dv)`.
fn check_metric(w: Rows<'_>, x: Rows<'_>, y: Rows<'_>) -> Result<(usize, usize, usize), Error> {
    let (d, k) = (x.width(), w.len());
    if w.width() != d {
        return Err(Error::Shape {
            what: Dim::Width,
            expected: d,
            found: w.width(),
        });
    }
    if k == 0 {
        return Err(Error::ZeroDimension);
    }
    if d > MAX_DIMS || k > MAX_METRIC_ROWS {
        return Err(Error::CapacityExceeded);
    }
    check_samples(x, y)?;
    if !simd::all_finite(w.as_slice()) {
        return Err(Error::NonFinite);
    }
    Ok((x.len(), d, k))
}

/// The leave-one-out score of Gaussian Nadaraya–Watson smoothing in the space of the linear
/// map `w` (`K` rows of `D`, row-major), and, if `grad` is given, its gradient with respect to
/// `w` (`K·D` entries, row-major) in the same pass.
///
/// With `z_i = W x_i`, `s_ij = −|z_i − z_j|²/2`, `α_{i·} = softmax_{j≠i}(s_i·)`,
/// `ŷ_{−i} = Σ_{j≠i} α_ij y_j` and `r_i = y_i − ŷ_{−i}`:
///
/// `CV = 1/(N·dv) Σ_i |r_i|²`, `∂CV/∂W = 2/(N·dv) Σ_{i,j} c_ij (z_i − z_j)(x_i − x_j)ᵀ`,
/// `c_ij = α_ij r_i·(y_j − ŷ_{−i})`.
///
/// The sum over pairs never forms a `K×D` (or `D×D`) matrix per pair: it is
/// `Σ_i [−(Σ_j c_ij z_j) x_iᵀ − z_i (Σ_j c_ij x_j)ᵀ] + Σ_j (Σ_i c_ij) z_j x_jᵀ` (the term
/// `(Σ_j c_ij) z_i x_iᵀ` vanishes: `Σ_j α_ij (y_j − ŷ_{−i}) = 0`), so each pair costs
/// `O(D + K)` and each sample `O(K·D)`.
///
/// The inputs are centred (in `f64`) and projected once into `scratch` (the inputs and the
/// projections also column by column, so that the sums over `j` are dot products of contiguous
/// columns); per held-out sample
/// the scores of the samples before and after it are computed separately and its own weight
/// is exactly zero (the softmax state is built without it, never as the full state minus the
/// self term), with the largest score subtracted before the exponentials. Weights, weighted
/// sums and coefficients are `f32` in SIMD lanes; squared errors and the
/// gradient are summed in `f64`.
///
/// # Accuracy
/// Measured on the unit tests' five cases (N from 9 to 60, D ≤ 5, K ≤ 4, dv ≤ 2, inputs on
/// `[−2, 2)`, map entries on `[−0.6, 0.6)`): the score within `4e-8` relative of a plain `f64`
/// evaluation, the gradient within `6e-7` of its largest entry of `f64` central differences
/// (the tests assert `1e-5` and `1e-3`). `cargo test -p nadaraya --lib fit::mlkr`.
///
/// # Errors
/// - [`Error::Shape`] with [`Dim::Width`] if `w` is not as wide as `x` (`expected`: `x`'s
///   width), or `grad` has not `K·D` entries (`expected`: `K·D`);
/// - [`Error::ZeroDimension`] if `w` has no rows;
/// - [`Error::CapacityExceeded`] if `x` is wider than [`MAX_DIMS`], `w` has more than
///   [`MAX_METRIC_ROWS`] rows, or `y` is wider than [`MAX_VALUE_WIDTH`](super::MAX_VALUE_WIDTH);
/// - [`Error::Shape`] with [`Dim::ValueRows`] if `y` has not one row per row of `x`;
/// - [`Error::Empty`] for fewer than two samples;
/// - [`Error::NonFinite`] if a coordinate, a response or an entry of `w` is NaN or infinite;
/// - [`Error::OutputTooSmall`] if `scratch` is shorter than [`metric_scratch_len`];
/// - [`Error::Overflow`] if a projection `W(x_i − x̄)` or a gradient entry is not
///   representable in `f32`;
/// - [`Error::NoSupport`] if every other sample of some `x_i` is so far away in `W`-space that
///   its score is `−inf` in `f32`.
///
/// # Examples
/// ```
/// use nadaraya::{Gaussian, Rows, fit};
/// let x = Rows::from_arrays(&[[0.0, 5.0], [1.0, 1.0], [2.0, 3.0], [3.0, 0.0]]);
/// let y = Rows::from_arrays(&[[0.0], [1.0], [2.0], [3.0]]);
/// let mut scratch = [0.0; fit::metric_scratch_len(4, 2, 1)];
/// let mut g = [0.0; 2];
/// // W = [1, 0]: the first coordinate at bandwidth 1, the second ignored.
/// let w = Rows::from_arrays(&[[1.0, 0.0]]);
/// let cv = fit::loo_cv_metric(w, x, y, &mut scratch, Some(&mut g))?;
/// let x1 = Rows::from_arrays(&[[0.0], [1.0], [2.0], [3.0]]);
/// let one = fit::loo_cv(&Gaussian::new(1.0)?, x1, y)?;
/// assert!((cv - one).abs() < 1e-6);
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn loo_cv_metric(
    w: Rows<'_>,
    x: Rows<'_>,
    y: Rows<'_>,
    scratch: &mut [f32],
    grad: Option<&mut [f64]>,
) -> Result<f64, Error> {
    let (n, d, k) = check_metric(w, x, y)?;
    let dv = y.width_nonzero().get();
    if let Some(g) = &grad
        && g.len() != k * d
    {
        return Err(Error::Shape {
            what: Dim::Width,
            expected: k * d,
            found: g.len(),
        });
    }
    let need = metric_scratch_len(n, d, k);
    let Some(scratch) = scratch.get_mut(..need) else {
        return Err(Error::OutputTooSmall);
    };
    let Some((xt, rest)) = scratch.split_at_mut_checked(n * d) else {
        return Err(Error::OutputTooSmall);
    };
    let Some((z, rest)) = rest.split_at_mut_checked(n * k) else {
        return Err(Error::OutputTooSmall);
    };
    let Some((zt, rest)) = rest.split_at_mut_checked(n * k) else {
        return Err(Error::OutputTooSmall);
    };
    let Some((wbuf, col)) = rest.split_at_mut_checked(n) else {
        return Err(Error::OutputTooSmall);
    };
    // Never 0 (checked above); `max(1)` keeps every `chunks_exact` free of a panic path.
    let (n1, d1, dv1) = (n.max(1), d.max(1), dv.max(1));
    project(w.as_slice(), x, d, k, xt, z, zt)?;
    col.fill(0.0);
    let want = grad.is_some();
    let mut total = 0.0f64;
    let mut g = [[0.0f64; MAX_DIMS]; MAX_METRIC_ROWS];
    let ys = y.as_slice();
    for i in 0..n {
        let mut zi = [0.0f32; MAX_METRIC_ROWS];
        let (Some(zrow), Some(yi)) = (z.get(i * k..(i + 1) * k), ys.get(i * dv..(i + 1) * dv))
        else {
            break;
        };
        for (a, b) in zi.iter_mut().zip(zrow) {
            *a = *b;
        }
        let zi = zi.get(..k).unwrap_or(&[]);
        // The scores of the samples before and after i; i's own slot stays out of both.
        let Some((before, after)) = wbuf.split_at_mut_checked(i) else {
            break;
        };
        let Some((own, after)) = after.split_first_mut() else {
            break;
        };
        let Some((zb, za)) = z.split_at_checked(i * k) else {
            break;
        };
        let za = za.get(k..).unwrap_or(&[]);
        simd::row_scores::<true>(zi, zb, -0.5, before);
        simd::row_scores::<true>(zi, za, -0.5, after);
        let (m1, _) = simd::max_score(before)?;
        let (m2, _) = simd::max_score(after)?;
        let m = if m1 > m2 { m1 } else { m2 };
        if m == f32::NEG_INFINITY {
            return Err(Error::NoSupport);
        }
        let sw = simd::exp_shift_sum(before, m) + simd::exp_shift_sum(after, m);
        *own = 0.0;
        // The nearest other sample has weight exp(0) = 1: sw ≥ 1.
        let sw = f64::from(sw);
        let mut acc = [0.0f32; super::MAX_VALUE_WIDTH];
        let acc = acc.get_mut(..dv).unwrap_or(&mut []);
        simd::weighted_sum_into(wbuf, ys, dv, acc);
        let mut pred = [0.0f64; super::MAX_VALUE_WIDTH];
        if simd::all_finite(acc) {
            for (p, a) in pred.iter_mut().zip(acc.iter()) {
                *p = f64::from(*a) / sw;
            }
        } else {
            // An f32 partial sum overflowed (responses near ±f32::MAX): the same sums in f64.
            for (wj, yj) in wbuf.iter().zip(ys.chunks_exact(dv1)) {
                for (p, v) in pred.iter_mut().zip(yj) {
                    *p += f64::from(*wj) * f64::from(*v);
                }
            }
            for p in pred.iter_mut() {
                *p /= sw;
            }
        }
        let mut r = [0.0f64; super::MAX_VALUE_WIDTH];
        for ((rc, p), v) in r.iter_mut().zip(&pred).zip(yi) {
            *rc = f64::from(*v) - p;
            total += *rc * *rc;
        }
        if !want {
            continue;
        }
        // c_j = w_j / sw · r·(y_j − ŷ), in place of the weights (c_i stays 0).
        if dv == 1 {
            let (p0, f) = (
                pred.first().copied().unwrap_or(0.0) as f32,
                (r.first().copied().unwrap_or(0.0) / sw) as f32,
            );
            for (c, yj) in wbuf.iter_mut().zip(ys) {
                *c *= (yj - p0) * f;
            }
        } else {
            let mut rs = [0.0f32; super::MAX_VALUE_WIDTH];
            let mut ps = [0.0f32; super::MAX_VALUE_WIDTH];
            for ((a, b), (rc, p)) in rs.iter_mut().zip(ps.iter_mut()).zip(r.iter().zip(&pred)) {
                *a = (rc / sw) as f32;
                *b = *p as f32;
            }
            for (c, yj) in wbuf.iter_mut().zip(ys.chunks_exact(dv1)) {
                let mut t = 0.0f32;
                for ((v, p), rc) in yj.iter().zip(&ps).zip(&rs) {
                    t += (v - p) * rc;
                }
                *c *= t;
            }
        }
        // Σ_j c_j x_j and Σ_j c_j z_j, one contiguous column at a time; x_i, z_i from them.
        let (mut sx, mut xi) = ([0.0f64; MAX_DIMS], [0.0f64; MAX_DIMS]);
        let (mut sz, mut zc) = ([0.0f64; MAX_METRIC_ROWS], [0.0f64; MAX_METRIC_ROWS]);
        column_dots(wbuf, xt, (n1, i), &mut sx, &mut xi);
        column_dots(wbuf, zt, (n1, i), &mut sz, &mut zc);
        for (s, c) in col.iter_mut().zip(wbuf.iter()) {
            *s += *c;
        }
        for ((grow, zik), szk) in g.iter_mut().zip(&zc).zip(&sz).take(k) {
            for ((gl, xil), sxl) in grow.iter_mut().zip(&xi).zip(&sx) {
                *gl -= szk * xil + zik * sxl;
            }
        }
    }
    if let Some(out) = grad {
        // Σ_j col_j z_jk x_jl, column against column.
        for (grow, zcol) in g.iter_mut().zip(zt.chunks_exact(n1)) {
            for (gl, xcol) in grow.iter_mut().zip(xt.chunks_exact(n1)) {
                let mut t = 0.0f64;
                for ((c, zv), xv) in col.iter().zip(zcol).zip(xcol) {
                    t += f64::from(*c) * f64::from(*zv) * f64::from(*xv);
                }
                *gl += t;
            }
        }
        let scale = 2.0 / (n as f64 * dv as f64);
        for (orow, grow) in out.chunks_exact_mut(d1).zip(&g) {
            for (o, v) in orow.iter_mut().zip(grow) {
                *o = v * scale;
                if !o.is_finite() || o.abs() > f64::from(f32::MAX) {
                    return Err(Error::Overflow);
                }
            }
        }
    }
    Ok(total / (n as f64 * dv as f64))
}

/// For each column `l` of `n` entries of `columns` (as many as `dots` holds): `dots[l]`, the dot
/// product `c · column_l` (in `f32` lanes, widened), and `at[l]`, its entry `i` (widened).
/// Always inlined: as a call per held-out sample it cost 1% more instructions in
/// [`loo_cv_metric`] (callgrind, `nadaraya learn` on `oblique-400`).
#[inline(always)]
fn column_dots(
    c: &[f32],
    columns: &[f32],
    (n, i): (usize, usize),
    dots: &mut [f64],
    at: &mut [f64],
) {
    for ((s, e), column) in dots
        .iter_mut()
        .zip(at.iter_mut())
        .zip(columns.chunks_exact(n))
    {
        *s = f64::from(simd::dot(c, column));
        *e = f64::from(column.get(i).copied().unwrap_or(0.0));
    }
}

/// Centres the rows of `x` on their mean (in `f64`) into the columns of `xt` (`d` columns of
/// `n`) and writes `z_i = W(x_i − x̄)` into the rows of `z` and the columns of `zt`;
/// [`Error::Overflow`] if a centred input or a projection is not finite in `f32`.
fn project(
    w: &[f32],
    x: Rows<'_>,
    d: usize,
    k: usize,
    xt: &mut [f32],
    z: &mut [f32],
    zt: &mut [f32],
) -> Result<(), Error> {
    let n = x.len();
    let (d, k) = (d.max(1), k.max(1));
    let mut mean = [0.0f64; MAX_DIMS];
    for row in x.iter() {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += f64::from(*v);
        }
    }
    for m in mean.iter_mut() {
        *m /= n as f64;
    }
    for (i, (row, zr)) in x.iter().zip(z.chunks_exact_mut(k)).enumerate() {
        let mut t = [0.0f64; MAX_DIMS];
        for (((l, tv), v), m) in t.iter_mut().enumerate().zip(row).zip(&mean) {
            *tv = f64::from(*v) - m;
            if let Some(slot) = xt.get_mut(l * n + i) {
                *slot = *tv as f32;
            }
        }
        for (r, (zv, wr)) in zr.iter_mut().zip(w.chunks_exact(d)).enumerate() {
            let mut s = 0.0f64;
            for (a, b) in wr.iter().zip(&t) {
                s += f64::from(*a) * b;
            }
            *zv = s as f32;
            if let Some(slot) = zt.get_mut(r * n + i) {
                *slot = *zv;
            }
        }
    }
    if !(simd::all_finite(xt) && simd::all_finite(z)) {
        return Err(Error::Overflow);
    }
    Ok(())
}

/// The options of [`learn_metric`]'s gradient descent.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Descent {
    /// The most gradient steps taken.
    pub max_steps: u32,
    /// Stop when a step lowers the score by less than this, relative.
    pub tolerance: f64,
    /// The most halvings of the step length in one line search.
    pub max_halvings: u32,
}

impl Descent {
    /// 500 steps, relative tolerance `1e-9`, 40 halvings.
    pub const DEFAULT: Self = Self {
        max_steps: 500,
        tolerance: 1e-9,
        max_halvings: 40,
    };
}

impl Default for Descent {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What [`learn_metric`] did.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Learned {
    /// The leave-one-out score ([`loo_cv_metric`]) at the map written back.
    pub cv: f64,
    /// The score at the starting map.
    pub initial_cv: f64,
    /// The gradient steps taken (each lowered the score).
    pub steps: u32,
    /// The evaluations of [`loo_cv_metric`] (with the gradient or without).
    pub evaluations: u32,
}

/// Learns the map `w` (`K` rows of `D`, row-major, the starting point on entry, the result on
/// return) by plain gradient descent on [`loo_cv_metric`], with a backtracking (Armijo) line
/// search; writes the score after each step into `trace` (as many as fit) if given.
///
/// Each step starts from twice the last accepted length (the first from `0.1·|W|/|∇|`, a tenth
/// of the map's own size) and halves it until the score falls by at least `10⁻⁴` of the
/// first-order prediction, up to [`Descent::max_halvings`] times. It stops after
/// [`Descent::max_steps`] steps, when a step lowers the score by less than
/// [`Descent::tolerance`] (relative), or when no length lowers it. The map written back is the
/// one whose score is returned; every step lowers it, so it is never above the start.
///
/// Plain gradient descent is slow on this objective (the `nadaraya learn` command runs L-BFGS
/// on the same gradient); it is what fits in a few hundred bytes of stack on a device.
///
/// # Errors
/// As [`loo_cv_metric`] at the starting map (`w` as the map); an error at a trial map only
/// shortens the step.
///
/// # Examples
/// ```
/// use nadaraya::{Rows, RowsMut, fit};
/// // y depends on x_1 − x_2 only; start from the first coordinate.
/// let xs: Vec<[f32; 2]> = (0..49).map(|i| [(i % 7) as f32 * 0.5, (i / 7) as f32 * 0.5]).collect();
/// let ys: Vec<[f32; 1]> = xs.iter().map(|x| [(0.5 * (x[0] - x[1])).sin()]).collect();
/// let mut w = [[1.0f32, 0.0]];
/// let mut scratch = vec![0.0; fit::metric_scratch_len(49, 2, 1)];
/// let r = fit::learn_metric(RowsMut::from(&mut w[..]), Rows::from_arrays(&xs), Rows::from_arrays(&ys),
///     &mut scratch, &fit::Descent::DEFAULT, None)?;
/// assert!(r.cv < 0.1 * r.initial_cv, "{r:?}");
/// let cos = (w[0][0] - w[0][1]).abs() / (2.0 * (w[0][0] * w[0][0] + w[0][1] * w[0][1])).sqrt();
/// assert!(cos > 0.99, "{w:?}");
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn learn_metric(
    mut w: RowsMut<'_>,
    x: Rows<'_>,
    y: Rows<'_>,
    scratch: &mut [f32],
    descent: &Descent,
    mut trace: Option<&mut [f64]>,
) -> Result<Learned, Error> {
    let (_, d, k) = check_metric(w.as_rows(), x, y)?;
    let kd = k * d;
    let mut cur = [0.0f32; MAX_METRIC_ROWS * MAX_DIMS];
    let mut trial = [0.0f32; MAX_METRIC_ROWS * MAX_DIMS];
    let mut g = [0.0f64; MAX_METRIC_ROWS * MAX_DIMS];
    let mut gt = [0.0f64; MAX_METRIC_ROWS * MAX_DIMS];
    for (c, v) in cur.iter_mut().zip(w.as_slice()) {
        *c = *v;
    }
    let (Some(cur_s), Some(trial_s), Some(g), Some(gt)) = (
        cur.get_mut(..kd),
        trial.get_mut(..kd),
        g.get_mut(..kd),
        gt.get_mut(..kd),
    ) else {
        return Err(Error::CapacityExceeded);
    };
    let mut f = loo_cv_metric(w.as_rows(), x, y, scratch, Some(g))?;
    let mut out = Learned {
        cv: f,
        initial_cv: f,
        steps: 0,
        evaluations: 1,
    };
    let norm = |v: &[f64]| libm::sqrt(v.iter().map(|a| a * a).sum::<f64>());
    let wn = libm::sqrt(
        cur_s
            .iter()
            .map(|a| f64::from(*a) * f64::from(*a))
            .sum::<f64>(),
    );
    let gn = norm(g);
    let mut t = if gn > 0.0 && wn > 0.0 {
        0.1 * wn / gn
    } else {
        1.0
    };
    while out.steps < descent.max_steps {
        let g2 = g.iter().map(|a| a * a).sum::<f64>();
        if g2 == 0.0 || !g2.is_finite() {
            break;
        }
        let mut accepted = None;
        for _ in 0..=descent.max_halvings {
            for ((tw, cw), gv) in trial_s.iter_mut().zip(cur_s.iter()).zip(g.iter()) {
                *tw = (f64::from(*cw) - t * gv) as f32;
            }
            let Ok(tr) = Rows::new(trial_s, d) else { break };
            out.evaluations += 1;
            if let Ok(ft) = loo_cv_metric(tr, x, y, scratch, Some(gt))
                && ft <= f - 1e-4 * t * g2
            {
                accepted = Some(ft);
                break;
            }
            t *= 0.5;
        }
        let Some(ft) = accepted else { break };
        let drop = f - ft;
        for (c, t) in cur_s.iter_mut().zip(trial_s.iter()) {
            *c = *t;
        }
        for (a, b) in g.iter_mut().zip(gt.iter()) {
            *a = *b;
        }
        f = ft;
        if let Some(slot) = trace
            .as_deref_mut()
            .and_then(|s| s.get_mut(out.steps as usize))
        {
            *slot = f;
        }
        out.steps += 1;
        t *= 2.0;
        if drop <= descent.tolerance * f.abs() {
            break;
        }
    }
    for (o, c) in w.as_mut_slice().iter_mut().zip(cur_s.iter()) {
        *o = *c;
    }
    out.cv = f;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, central_differences, lcg};
    use std::vec;
    use std::vec::Vec;

    /// [`loo_cv_metric`] on flat slices: the map `w` and the inputs `x` `d` wide, the responses
    /// `dv` wide.
    fn cv(
        (w, x, y): (&[f32], &[f32], &[f32]),
        (d, dv): (usize, usize),
        scratch: &mut [f32],
        grad: Option<&mut [f64]>,
    ) -> Result<f64, Error> {
        let (w, x, y) = (Rows::new(w, d)?, Rows::new(x, d)?, Rows::new(y, dv)?);
        loo_cv_metric(w, x, y, scratch, grad)
    }

    /// The objective written plainly in f64: every pair's distance in W-space, the softmax over
    /// j ≠ i with its maximum subtracted, the mean squared residual.
    fn reference(w: &[f64], x: &[f32], y: &[f32], d: usize, dv: usize) -> f64 {
        let k = w.len() / d;
        let n = x.len() / d;
        let mut total = 0.0;
        for i in 0..n {
            let s: Vec<f64> = (0..n)
                .map(|j| {
                    let mut q = 0.0;
                    for a in 0..k {
                        let mut t = 0.0;
                        for b in 0..d {
                            t += w[a * d + b] * (f64::from(x[i * d + b]) - f64::from(x[j * d + b]));
                        }
                        q += t * t;
                    }
                    -0.5 * q
                })
                .collect();
            let m = (0..n)
                .filter(|&j| j != i)
                .map(|j| s[j])
                .fold(f64::NEG_INFINITY, f64::max);
            let mut sw = 0.0;
            let mut swy = vec![0.0; dv];
            for j in (0..n).filter(|&j| j != i) {
                let e = (s[j] - m).exp();
                sw += e;
                for c in 0..dv {
                    swy[c] += e * f64::from(y[j * dv + c]);
                }
            }
            for c in 0..dv {
                let r = f64::from(y[i * dv + c]) - swy[c] / sw;
                total += r * r;
            }
        }
        total / (n * dv) as f64
    }

    fn data(n: usize, d: usize, dv: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let mut r = lcg(seed);
        let x: Vec<f32> = (0..n * d).map(|_| 4.0 * r() - 2.0).collect();
        let y: Vec<f32> = (0..n)
            .flat_map(|i| {
                let t: f32 = x[i * d..(i + 1) * d]
                    .iter()
                    .enumerate()
                    .map(|(b, v)| v * (b as f32 - 0.7))
                    .sum();
                let e = 0.1 * (r() - 0.5);
                (0..dv)
                    .map(move |c| (t + c as f32).sin() + e)
                    .collect::<Vec<_>>()
            })
            .collect();
        (x, y)
    }

    #[test]
    fn score_and_gradient_match_f64_central_differences() {
        for (n, d, k, dv, seed) in [
            (60, 4, 1, 1, 1),
            (60, 4, 2, 1, 2),
            (37, 3, 3, 2, 3),
            (50, 5, 4, 1, 4),
            (9, 1, 1, 1, 5),
        ] {
            let (x, y) = data(n, d, dv, seed);
            let mut r = lcg(seed + 100);
            let w: Vec<f32> = (0..k * d).map(|_| 1.2 * r() - 0.6).collect();
            let wd: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
            let mut scratch = vec![0.0; metric_scratch_len(n, d, k)];
            let mut g = vec![0.0; k * d];
            let data = (&w[..], &x[..], &y[..]);
            let got = cv(data, (d, dv), &mut scratch, Some(&mut g)).unwrap();
            let want = reference(&wd, &x, &y, d, dv);
            assert_close(got, want, 1e-5 * want, "cv");
            assert_eq!(got, cv(data, (d, dv), &mut scratch, None).unwrap());
            let scale = g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(scale > 1e-4, "{g:?}");
            let fd = central_differences(&wd, 1e-5, |w| reference(w, &x, &y, d, dv));
            for (g, fd) in g.iter().zip(&fd) {
                assert_close(*g, *fd, 1e-3 * scale, "gradient entry");
            }
        }
    }

    #[test]
    fn far_from_the_origin_the_gradient_is_the_same() {
        let (n, d, k) = (40, 3, 2);
        let (x, y) = data(n, d, 1, 7);
        let shifted: Vec<f32> = x.iter().map(|v| v + 1000.0).collect();
        let w: Vec<f32> = vec![0.5, -0.3, 0.2, 0.1, 0.4, -0.6];
        let mut s = vec![0.0; metric_scratch_len(n, d, k)];
        let (mut g1, mut g2) = (vec![0.0; 6], vec![0.0; 6]);
        let a = cv((&w, &x, &y), (d, 1), &mut s, Some(&mut g1)).unwrap();
        let b = cv((&w, &shifted, &y), (d, 1), &mut s, Some(&mut g2)).unwrap();
        assert_close(a, b, 1e-4 * a, "cv");
        let scale = g1.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (p, q) in g1.iter().zip(&g2) {
            assert_close(*p, *q, 1e-2 * scale, "gradient");
        }
    }

    #[test]
    fn the_held_out_sample_has_no_weight_even_when_it_is_the_only_near_one() {
        // Two coincident samples and one far away: each coincident one is predicted by the
        // other (error 0 and 0); the far one by the mean of the two.
        let x = [0.0f32, 0.0, 50.0];
        let y = [1.0f32, 1.0, 5.0];
        let w = [1.0f32];
        let mut s = [0.0; metric_scratch_len(3, 1, 1)];
        let got = cv((&w, &x, &y), (1, 1), &mut s, None).unwrap();
        assert_close(got, 16.0 / 3.0, 1e-9, "cv");
    }

    #[test]
    fn errors() {
        let x = [0.0f32, 1.0, 2.0, 3.0];
        let y = [0.0f32, 1.0];
        let xr = Rows::new(&x, 2).unwrap();
        let yr = Rows::new(&y, 1).unwrap();
        let mut s = [0.0; 64];
        let w = [1.0f32, 0.0];
        let wr = Rows::new(&w, 2).unwrap();
        assert!(loo_cv_metric(wr, xr, yr, &mut s, None).is_ok());
        let w3 = [1.0f32, 0.0, 1.0];
        assert_eq!(
            loo_cv_metric(Rows::new(&w3, 3).unwrap(), xr, yr, &mut s, None),
            Err(Error::Shape {
                what: Dim::Width,
                expected: 2,
                found: 3
            })
        );
        assert_eq!(
            loo_cv_metric(Rows::new(&[], 2).unwrap(), xr, yr, &mut s, None),
            Err(Error::ZeroDimension)
        );
        assert_eq!(
            loo_cv_metric(wr, xr, yr, &mut s, Some(&mut [0.0; 3])),
            Err(Error::Shape {
                what: Dim::Width,
                expected: 2,
                found: 3
            })
        );
        assert_eq!(
            loo_cv_metric(wr, xr, yr, &mut s[..7], None),
            Err(Error::OutputTooSmall)
        );
        assert_eq!(
            loo_cv_metric(
                wr,
                Rows::new(&x[..2], 2).unwrap(),
                Rows::new(&y[..1], 1).unwrap(),
                &mut s,
                None
            ),
            Err(Error::Empty)
        );
        let nan = [f32::NAN, 0.0];
        assert_eq!(
            loo_cv_metric(Rows::new(&nan, 2).unwrap(), xr, yr, &mut s, None),
            Err(Error::NonFinite)
        );
        assert_eq!(
            loo_cv_metric(
                wr,
                xr,
                Rows::new(&[0.0, f32::NAN], 1).unwrap(),
                &mut s,
                None
            ),
            Err(Error::NonFinite)
        );
        let wide = [0.0f32; 17];
        let mut big = [0.0; 200];
        assert_eq!(
            loo_cv_metric(
                Rows::new(&wide, 17).unwrap(),
                Rows::new(&[0.0; 34], 17).unwrap(),
                yr,
                &mut big,
                None
            ),
            Err(Error::CapacityExceeded)
        );
        let tall = [0.0f32; 17];
        assert_eq!(
            loo_cv_metric(
                Rows::new(&tall, 1).unwrap(),
                Rows::new(&[0.0, 1.0], 1).unwrap(),
                yr,
                &mut big,
                None
            ),
            Err(Error::CapacityExceeded)
        );
        // A map that sends the two samples 1e30 apart: their score is -inf, no support.
        let huge = [1e30f32, 0.0];
        assert_eq!(
            loo_cv_metric(Rows::new(&huge, 2).unwrap(), xr, yr, &mut s, None),
            Err(Error::NoSupport)
        );
        let inf = [f32::MAX, f32::MAX];
        assert_eq!(
            loo_cv_metric(Rows::new(&inf, 2).unwrap(), xr, yr, &mut s, None),
            Err(Error::Overflow)
        );
    }

    #[test]
    fn the_verdict_and_score_do_not_depend_on_the_order() {
        let (n, d) = (30, 3);
        let (x, y) = data(n, d, 1, 11);
        let w = [0.7f32, -0.2, 0.4];
        let mut s = vec![0.0; metric_scratch_len(n, d, 1)];
        let base = cv((&w, &x, &y), (d, 1), &mut s, None).unwrap();
        let order: Vec<usize> = (0..n).rev().collect();
        let xp = crate::testing::permute(&x, d, &order);
        let yp = crate::testing::permute(&y, 1, &order);
        let p = cv((&w, &xp, &yp), (d, 1), &mut s, None).unwrap();
        assert_close(p, base, 1e-6 * base, "permuted cv");
    }

    #[test]
    fn descent_recovers_an_oblique_direction() {
        // y = sin(1.2 u·x) with u = (3, 4)/5, from the map (1, 0) at bandwidth 1.
        let (n, d) = (150, 2);
        let mut r = lcg(21);
        let x: Vec<f32> = (0..n * d).map(|_| 4.0 * r() - 2.0).collect();
        let y: Vec<f32> = x
            .chunks(2)
            .map(|p| (1.2 * (0.6 * p[0] + 0.8 * p[1])).sin() + 0.05 * (r() - 0.5))
            .collect();
        let mut w = [1.0f32, 0.0];
        let mut s = vec![0.0; metric_scratch_len(n, d, 1)];
        let mut trace = [0.0f64; 500];
        let got = learn_metric(
            RowsMut::new(&mut w, d).unwrap(),
            Rows::new(&x, d).unwrap(),
            Rows::new(&y, 1).unwrap(),
            &mut s,
            &Descent::DEFAULT,
            Some(&mut trace),
        )
        .unwrap();
        let norm = (w[0] * w[0] + w[1] * w[1]).sqrt();
        let cos = (0.6 * w[0] + 0.8 * w[1]).abs() / norm;
        assert!(
            cos > 0.99,
            "{w:?} {got:?} {:?}",
            &trace[..got.steps as usize]
        );
        assert!(got.cv < 0.2 * got.initial_cv, "{got:?}");
        let steps = got.steps as usize;
        assert!(
            steps > 1 && trace[..steps].windows(2).all(|p| p[1] < p[0]),
            "{:?}",
            &trace[..steps]
        );
        assert_eq!(trace[steps - 1], got.cv);
        assert_eq!(cv((&w, &x, &y), (d, 1), &mut s, None).unwrap(), got.cv);
    }
}

//! Gradients of attention: the backward pass of [`attention`](crate::attention), recomputing the
//! weights tile by tile from the saved log-sum-exp of each query (FlashAttention-2's scheme).
//!
//! For a loss `L` with `dO = ∂L/∂O` at the output `O_i = Σ_j P_ij v_j`, `P_ij = exp(s_ij - lse_i)`:
//!
//! ```text
//! D_i   = dO_i · O_i
//! dV_j  = Σ_i P_ij dO_i
//! dS_ij = P_ij (dO_i · v_j - D_i)
//! dQ_i  = Σ_j dS_ij ∂s_ij/∂q_i,    dK_j = Σ_i dS_ij ∂s_ij/∂k_j
//! ```
//!
//! No `M×N` matrix is ever held: keys go [`TILE`] at a time (their `dK`, `dV` rows accumulate
//! over every query), and for each key tile the queries go [`TILE`] at a time (16 at a time when
//! there are at most 16, so that the stack block of `∂L/∂s` is 4 KiB, not 16 KiB), their scores
//! and `dO·v` recomputed by the forward's SIMD paths.

use crate::attention::{Shape, check_shapes, smooth_checked};
use crate::softmax::TILE;
use crate::{Dim, Element, Error, Gaussian, Kernel, Mask, Rows, RowsMut, SoftmaxDot, simd};
use wide::f32x8;

/// How a kernel's score depends on the query, the key and the kernel's parameter: what
/// [`attention_backward`] needs to turn `∂L/∂s` into gradients.
///
/// The score has the form `s(q, k) = c · (q·k − γ·(|q|² + |k|²)/2)` with `γ` 0 or 1, so
/// `∂s/∂q = c·(k − γ q)` and `∂s/∂k = c·(q − γ k)`, and it is symmetric in `q` and `k`.
/// [`SoftmaxDot`] is `c = 1/τ, γ = 0`; [`Gaussian`] is `c = 1/h², γ = 1`
/// (`−|q−k|²/(2h²) = (q·k − (|q|²+|k|²)/2)/h²`).
///
/// The derivative with respect to the logarithm of the kernel's own parameter (`ln τ` or `ln h`)
/// is `∂s/∂ln θ = κ·s`: `κ = −1` for [`SoftmaxDot`], `κ = −2` for [`Gaussian`].
///
/// # Examples
/// ```
/// use nadaraya::{Gaussian, KernelGrad, ScoreGrad, SoftmaxDot};
/// assert_eq!(
///     Gaussian::new(0.5)?.score_grad(),
///     ScoreGrad { scale: 4.0, distance: true, log_param: -2.0 }
/// );
/// assert_eq!(SoftmaxDot::new(2.0)?.score_grad().scale, 0.5);
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ScoreGrad {
    /// `c`: the factor of `q·k` in the score.
    pub scale: f32,
    /// `γ = 1`: the score is a function of `q − k` (a distance kernel), so `∂s/∂q = c·(k − q)`.
    /// `γ = 0`: a dot-product kernel, `∂s/∂q = c·k`.
    pub distance: bool,
    /// `κ`: `∂s/∂ln θ = κ·s` for the kernel's parameter `θ`.
    pub log_param: f32,
}

/// A [`Kernel`] whose score can be differentiated by [`attention_backward`]: its score has the
/// form of [`ScoreGrad`], and [`Kernel::scores`] computes it (symmetric in query and key).
///
/// The backward pass needs the structure, not a per-pair gradient callback: with it the
/// gradients are three weighted sums per tile ([`ScoreGrad`]), which run in the forward's SIMD
/// paths.
pub trait KernelGrad: Kernel {
    /// The kernel's [`ScoreGrad`].
    #[must_use]
    fn score_grad(&self) -> ScoreGrad;
}

impl KernelGrad for Gaussian {
    #[inline]
    fn score_grad(&self) -> ScoreGrad {
        let h = f64::from(self.bandwidth());
        ScoreGrad {
            scale: (1.0 / (h * h)) as f32,
            distance: true,
            log_param: -2.0,
        }
    }
}

impl KernelGrad for SoftmaxDot {
    #[inline]
    fn score_grad(&self) -> ScoreGrad {
        ScoreGrad {
            scale: (1.0 / f64::from(self.temperature())) as f32,
            distance: false,
            log_param: -1.0,
        }
    }
}

/// The shape error `{ what, expected, found }`.
const fn shape(what: Dim, expected: usize, found: usize) -> Error {
    Error::Shape {
        what,
        expected,
        found,
    }
}

/// [`attention`](crate::attention) that also writes the log-sum-exp of each query's scores,
/// `lse[t] = ln Σ_i exp(s_ti)` over the keys query `t` sees: the state
/// [`attention_backward`] rebuilds the weights from.
///
/// `out` is what [`attention`](crate::attention) writes, bit for bit for fewer than eight queries
/// or at [`Level::Baseline`](crate::dispatch::Level::Baseline); for more, at the AVX2 and
/// AVX-512 levels, `attention` takes a register-blocked kernel whose scores round differently,
/// while this function keeps the scores of [`Kernel::scores`](crate::Kernel::scores), from which
/// [`attention_backward`] rebuilds the weights: both within the documented bound of the `f64`
/// average. The cost is that of the one-query-at-a-time path plus one `ln` per query.
///
/// # Errors
/// - the shape errors of [`attention_shape`](crate::attention_shape), in its order;
/// - [`Error::Shape`] with [`Dim::Lse`] if `lse` has not one entry per query;
/// - then the errors of [`attention`](crate::attention).
///
/// # Examples
/// ```
/// use nadaraya::{attention_lse, Mask, Rows, RowsMut, SoftmaxDot};
/// let k = SoftmaxDot::new(1.0)?;
/// let keys = Rows::from_arrays(&[[0.0], [1.0]]);
/// let (mut out, mut lse) = ([[0.0]], [0.0]);
/// attention_lse(&k, Rows::from_arrays(&[[1.0]]), keys, keys, Mask::None,
///               RowsMut::from_arrays(&mut out), &mut lse)?;
/// assert!((lse[0] - (1.0 + 1f32.exp()).ln()).abs() < 1e-6);
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn attention_lse<K: Kernel + ?Sized, E: Element>(
    kernel: &K,
    q: Rows<'_>,
    keys: Rows<'_, E>,
    values: Rows<'_, E>,
    mask: Mask,
    out: RowsMut<'_>,
    lse: &mut [f32],
) -> Result<(), Error> {
    let shape = check_shapes(q, keys, values, mask, out.as_rows())?;
    if lse.len() != shape.m {
        return Err(self::shape(Dim::Lse, shape.m, lse.len()));
    }
    let causal = (mask == Mask::Causal).then_some(0);
    smooth_checked(kernel, shape, q, keys, values, causal, out, lse)
}

/// What the forward pass saved, and the gradient arriving at its output: the inputs of
/// [`attention_backward`] beside the forward's own.
#[derive(Clone, Copy, Debug)]
pub struct Upstream<'a> {
    /// `O`, the forward's output (`M×dv`).
    pub out: Rows<'a>,
    /// The log-sum-exp of each query (`M`), as [`attention_lse`] writes it.
    pub lse: &'a [f32],
    /// `dO = ∂L/∂O` (`M×dv`).
    pub d_out: Rows<'a>,
}

/// Where [`attention_backward`] writes `∂L/∂Q`, `∂L/∂K`, `∂L/∂V` (overwritten, not added to).
#[derive(Debug)]
pub struct Gradients<'a> {
    /// `∂L/∂Q` (`M×d`).
    pub d_q: RowsMut<'a>,
    /// `∂L/∂K` (`N×d`).
    pub d_keys: RowsMut<'a>,
    /// `∂L/∂V` (`N×dv`).
    pub d_values: RowsMut<'a>,
}

/// The backward pass of [`attention`](crate::attention): given the forward's inputs, its output
/// `O` and log-sum-exp (from [`attention_lse`]) and `dO = ∂L/∂O`, writes `∂L/∂Q`, `∂L/∂K` and
/// `∂L/∂V`, and returns `∂L/∂ln θ` for the kernel's parameter `θ` (`ln τ` of [`SoftmaxDot`],
/// `ln h` of [`Gaussian`]; see [`KernelGrad`]).
///
/// The weights are rebuilt tile by tile as `exp(s_ij − lse_i)`, never stored: the stack holds
/// one block of `∂L/∂s`, 64 keys by 64 queries (16 KiB), or by 16 queries (4 KiB) when there
/// are at most 16 queries (`M ≤ 16`, the sizes of a microcontroller), and a few tiles of 64
/// floats. Costs
/// `O(M·N·(d + dv))` time: about `3d + 2dv` multiply-adds per (query, key) pair seen, against
/// `d + dv` in the forward (measured ratio in BENCHMARKS.md, "Backward"). `dK`, `dV` and `dQ`
/// accumulate in `f32`.
///
/// `upstream.out` and `upstream.lse` must be the forward's (of [`attention_lse`] on the same
/// inputs, kernel and mask); otherwise the result is finite but not a gradient. Under
/// [`Mask::Causal`] keys that no query sees get zero gradients.
///
/// # Errors
/// Shapes are checked before anything is written:
/// - the shape errors of [`attention_shape`](crate::attention_shape) for `upstream.out` as the
///   output, in its order;
/// - [`Error::Shape`] with [`Dim::Lse`] if `upstream.lse` has not one entry per query;
/// - [`Error::Shape`] with [`Dim::GradientWidth`] or [`Dim::GradientRows`] if `d_out`, `d_q`,
///   `d_keys` or `d_values` (in that order, width before rows) has not the shape of `O`, `Q`,
///   `K` or `V`;
/// - [`Error::NonFinite`] if any input (`Q`, `K`, `V`, `O`, the log-sum-exp, `dO`) is NaN or
///   infinite;
/// - [`Error::ScoreOverflow`] if a score is not finite in `f32`;
/// - [`Error::Overflow`] if a gradient, or the `f32` sum it is accumulated in before the
///   kernel's scale `c` is applied, has a component beyond `±f32::MAX`; the gradients may then
///   hold partial results.
///
/// # Examples
/// The gradient of `L = O` with respect to the value of the only key is 1:
/// ```
/// use nadaraya::{attention_backward, attention_lse, Gradients, Mask, Rows, RowsMut, SoftmaxDot,
///                Upstream};
/// let k = SoftmaxDot::new(1.0)?;
/// let (q, keys, values) = ([[0.5]], [[1.0]], [[3.0]]);
/// let (q, keys, values) = (Rows::from_arrays(&q), Rows::from_arrays(&keys), Rows::from_arrays(&values));
/// let (mut out, mut lse) = ([[0.0]], [0.0]);
/// attention_lse(&k, q, keys, values, Mask::None, RowsMut::from_arrays(&mut out), &mut lse)?;
/// let (mut dq, mut dk, mut dv) = ([[9.0]], [[9.0]], [[9.0]]);
/// let up = Upstream { out: Rows::from_arrays(&out), lse: &lse, d_out: Rows::from_arrays(&[[1.0]]) };
/// let grads = Gradients {
///     d_q: RowsMut::from_arrays(&mut dq),
///     d_keys: RowsMut::from_arrays(&mut dk),
///     d_values: RowsMut::from_arrays(&mut dv),
/// };
/// let d_ln_tau = attention_backward(&k, q, keys, values, Mask::None, up, grads)?;
/// assert_eq!((dq, dk, dv, d_ln_tau), ([[0.0]], [[0.0]], [[1.0]], 0.0));
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn attention_backward<K: KernelGrad + ?Sized>(
    kernel: &K,
    q: Rows<'_>,
    keys: Rows<'_>,
    values: Rows<'_>,
    mask: Mask,
    upstream: Upstream<'_>,
    grads: Gradients<'_>,
) -> Result<f32, Error> {
    let shape = check_shapes(q, keys, values, mask, upstream.out)?;
    if upstream.lse.len() != shape.m {
        return Err(self::shape(Dim::Lse, shape.m, upstream.lse.len()));
    }
    let Gradients {
        d_q,
        d_keys,
        d_values,
    } = grads;
    for (g, like) in [
        (upstream.d_out, upstream.out),
        (d_q.as_rows(), q),
        (d_keys.as_rows(), keys),
        (d_values.as_rows(), values),
    ] {
        if g.width() != like.width() {
            return Err(self::shape(Dim::GradientWidth, like.width(), g.width()));
        }
        if g.len() != like.len() {
            return Err(self::shape(Dim::GradientRows, like.len(), g.len()));
        }
    }
    let inputs = [
        q.as_slice(),
        keys.as_slice(),
        values.as_slice(),
        upstream.out.as_slice(),
        upstream.lse,
        upstream.d_out.as_slice(),
    ];
    if !inputs.iter().all(|x| simd::all_finite(x)) {
        return Err(Error::NonFinite);
    }
    let ops = Operands {
        q: q.as_slice(),
        keys: keys.as_slice(),
        values: values.as_slice(),
        out: upstream.out.as_slice(),
        lse: upstream.lse,
        d_out: upstream.d_out.as_slice(),
    };
    let (dq, dk, dv) = (d_q.into_slice(), d_keys.into_slice(), d_values.into_slice());
    let g = kernel.score_grad();
    let causal = mask == Mask::Causal;
    // The block of ∂L/∂s is `QT×TILE` on the stack: a short block for few queries (the small
    // problems of a microcontroller), the full one otherwise (about 9% fewer instructions than
    // `QT = 16` at M = N = 2048, d = 64).
    let d_log = if shape.m <= SMALL_QT {
        backward_tiles::<_, SMALL_QT>(kernel, g, shape, &ops, causal, dq, dk, dv)
    } else {
        backward_tiles::<_, TILE>(kernel, g, shape, &ops, causal, dq, dk, dv)
    }?;
    let d_log = (d_log * f64::from(g.log_param)) as f32;
    if !(d_log.is_finite() && simd::all_finite(dq) && simd::all_finite(dk)) {
        return Err(Error::Overflow);
    }
    Ok(d_log)
}

/// The query rows of the `∂L/∂s` block when there are at most this many queries: a block of
/// `SMALL_QT × TILE` floats (4 KiB) instead of `TILE × TILE` (16 KiB).
const SMALL_QT: usize = 16;

/// The flat inputs of the backward pass, shapes checked.
struct Operands<'a> {
    q: &'a [f32],
    keys: &'a [f32],
    values: &'a [f32],
    out: &'a [f32],
    lse: &'a [f32],
    d_out: &'a [f32],
}

/// Rows `lo..hi` of the flat `x` of row width `w`, or an empty slice if out of bounds (never,
/// for checked shapes).
#[inline]
fn rows_of(x: &[f32], w: usize, lo: usize, hi: usize) -> &[f32] {
    x.get(lo.saturating_mul(w)..hi.saturating_mul(w))
        .unwrap_or(&[])
}

/// Mutable rows `lo..hi` of the flat `x` of row width `w`, or an empty slice.
#[inline]
fn rows_of_mut(x: &mut [f32], w: usize, lo: usize, hi: usize) -> &mut [f32] {
    x.get_mut(lo.saturating_mul(w)..hi.saturating_mul(w))
        .unwrap_or(&mut [])
}

/// `acc -= f · x`.
#[inline]
fn sub_scaled(acc: &mut [f32], f: f32, x: &[f32]) {
    for (a, v) in acc.iter_mut().zip(x) {
        *a -= f * v;
    }
}

/// The gradients into `dq`, `dk`, `dv` (overwritten); returns `Σ_ij dS_ij s_ij`.
///
/// Keys go [`TILE`] at a time; for each key tile, the queries that see it go `QT` at a time.
/// For key `j` of the tile the scores against the query tile are `kernel.scores(k_j, Q)` (the
/// score is symmetric), then `P = exp(s − lse)`, `dP = V_j·dO`, `dS = P (dP − D)`; `dV_j += P·dO`
/// and `dK_j += dS·Q` are weighted sums held in registers over the query tile. `dS` is stored
/// query-major in a `QT×TILE` block, from which `dQ_i += dS_i·K` is the same weighted sum over
/// the key tile. The factor `c` of [`ScoreGrad`] is applied once at the end, and the distance
/// terms (`−γ Σ_j dS_ij q_i`, `−γ Σ_i dS_ij k_j`) per tile.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn backward_tiles<K: Kernel + ?Sized, const QT: usize>(
    kernel: &K,
    g: ScoreGrad,
    shape: Shape,
    x: &Operands<'_>,
    causal: bool,
    dq: &mut [f32],
    dk: &mut [f32],
    dv: &mut [f32],
) -> Result<f64, Error> {
    let (m, n, d, w) = (shape.m, shape.n, shape.d.get(), shape.dv.get());
    dq.fill(0.0);
    dk.fill(0.0);
    dv.fill(0.0);
    // Under the mask, keys from row `m` on are seen by no query.
    let n_seen = if causal { n.min(m) } else { n };
    let mut ds = [[0.0f32; TILE]; QT];
    let (mut s, mut p, mut dp) = ([0.0f32; QT], [0.0f32; QT], [0.0f32; QT]);
    let (mut dd, mut colsum) = ([0.0f32; QT], [0.0f32; TILE]);
    let (mut ds_s, mut poison) = (0.0f64, 0.0f32);
    let mut j_lo = 0usize;
    while j_lo < n_seen {
        let j_hi = j_lo.saturating_add(TILE).min(n_seen);
        let nj = j_hi - j_lo;
        colsum.fill(0.0);
        let kt = rows_of(x.keys, d, j_lo, j_hi);
        // Queries before the tile's first key see none of it.
        let mut i_lo = if causal { j_lo } else { 0 };
        while i_lo < m {
            let i_hi = i_lo.saturating_add(QT).min(m);
            let ni = i_hi - i_lo;
            let (qt, dot) = (rows_of(x.q, d, i_lo, i_hi), rows_of(x.d_out, w, i_lo, i_hi));
            let (ot, lt) = (
                rows_of(x.out, w, i_lo, i_hi),
                x.lse.get(i_lo..i_hi).unwrap_or(&[]),
            );
            for ((di, o), gi) in dd
                .iter_mut()
                .zip(ot.chunks_exact(w))
                .zip(dot.chunks_exact(w))
            {
                *di = simd::dot(gi, o);
            }
            for jj in 0..nj {
                let j = j_lo + jj;
                // The first row of the query tile that sees key `j`.
                let a = if causal {
                    j.saturating_sub(i_lo).min(ni)
                } else {
                    0
                };
                for row in ds.iter_mut().take(a) {
                    if let Some(v) = row.get_mut(jj) {
                        *v = 0.0;
                    }
                }
                let cnt = ni - a;
                if cnt == 0 {
                    continue;
                }
                let (k_j, v_j) = (rows_of(x.keys, d, j, j + 1), rows_of(x.values, w, j, j + 1));
                let (qa, ga) = (rows_of(qt, d, a, ni), rows_of(dot, w, a, ni));
                let (Some(s), Some(p), Some(dp)) =
                    (s.get_mut(..cnt), p.get_mut(..cnt), dp.get_mut(..cnt))
                else {
                    continue;
                };
                kernel.scores(k_j, qa, s);
                simd::row_scores::<false>(v_j, ga, 1.0, dp);
                let (lse, dd) = (lt.get(a..).unwrap_or(&[]), dd.get(a..).unwrap_or(&[]));
                let (sum_ds, sum_ds_s) = softmax_grad(s, lse, dd, p, dp, &mut poison);
                if let Some(c) = colsum.get_mut(jj) {
                    *c += sum_ds;
                }
                ds_s += f64::from(sum_ds_s);
                simd::weighted_sum_into(p, ga, w, rows_of_mut(dv, w, j, j + 1));
                simd::weighted_sum_into(dp, qa, d, rows_of_mut(dk, d, j, j + 1));
                for (row, v) in ds.iter_mut().skip(a).zip(dp.iter()) {
                    if let Some(x) = row.get_mut(jj) {
                        *x = *v;
                    }
                }
            }
            for (ii, row) in ds.iter().enumerate().take(ni) {
                let i = i_lo + ii;
                // Keys `j_lo..=i` under the mask (the rest of the row is zeros).
                let seen = if causal {
                    i.saturating_add(1).saturating_sub(j_lo).min(nj)
                } else {
                    nj
                };
                let wts = row.get(..seen).unwrap_or(&[]);
                let dq_i = rows_of_mut(dq, d, i, i + 1);
                // Exactly `seen` key rows: `weighted_sum_into` pairs its tails by position.
                simd::weighted_sum_into(
                    wts,
                    kt.get(..seen.saturating_mul(d)).unwrap_or(&[]),
                    d,
                    dq_i,
                );
                if g.distance {
                    let rs: f32 = wts.iter().sum();
                    sub_scaled(dq_i, rs, rows_of(qt, d, ii, ii + 1));
                }
            }
            i_lo = i_hi;
        }
        if g.distance {
            for (jj, c) in colsum.iter().enumerate().take(nj) {
                let j = j_lo + jj;
                sub_scaled(
                    rows_of_mut(dk, d, j, j + 1),
                    *c,
                    rows_of(x.keys, d, j, j + 1),
                );
            }
        }
        j_lo = j_hi;
    }
    if poison != 0.0 {
        return Err(Error::ScoreOverflow);
    }
    simd::scale_in_place(dq, g.scale);
    simd::scale_in_place(dk, g.scale);
    if !simd::all_finite(dv) {
        return Err(Error::Overflow);
    }
    Ok(ds_s)
}

/// `p = exp(s − lse)` and `dp ← p (dp − dd)` elementwise; returns `(Σ dp, Σ dp·s)` after the
/// update, and adds `s·0` to `poison` (NaN if a score is not finite).
#[inline]
fn softmax_grad(
    s: &[f32],
    lse: &[f32],
    dd: &[f32],
    p: &mut [f32],
    dp: &mut [f32],
    poison: &mut f32,
) -> (f32, f32) {
    // Every operand cut to the scores' length, so that the lanes and the tails line up.
    let n = s.len();
    let (Some(lse), Some(dd), Some(p), Some(dp)) =
        (lse.get(..n), dd.get(..n), p.get_mut(..n), dp.get_mut(..n))
    else {
        return (0.0, 0.0);
    };
    let (mut sum, mut sum_s, mut bad) = (0.0f32, 0.0f32, 0.0f32);
    if !simd::SIMD {
        for ((((s, l), d), p), g) in s.iter().zip(lse).zip(dd).zip(p).zip(dp) {
            *p = simd::exp_scalar(s - l);
            *g = *p * (*g - d);
            sum += *g;
            sum_s += *g * s;
            bad += s * 0.0;
        }
        *poison += bad;
        return (sum, sum_s);
    }
    let (mut acc, mut acc_s, mut acc_bad) = (f32x8::ZERO, f32x8::ZERO, f32x8::ZERO);
    let mut step = |sv: f32x8, lv: f32x8, dv: f32x8, gv: f32x8| {
        let pv = simd::exp_lanes(sv - lv);
        let ds = pv * (gv - dv);
        acc += ds;
        acc_s = ds.mul_add(sv, acc_s);
        acc_bad = sv.mul_add(f32x8::ZERO, acc_bad);
        (pv.to_array(), ds.to_array())
    };
    let (sb, st) = s.as_chunks::<{ simd::LANES }>();
    let (lb, lt) = lse.as_chunks::<{ simd::LANES }>();
    let (db, dt) = dd.as_chunks::<{ simd::LANES }>();
    let (pb, pt) = p.as_chunks_mut::<{ simd::LANES }>();
    let (gb, gt) = dp.as_chunks_mut::<{ simd::LANES }>();
    for ((((sc, lc), dc), pc), gc) in sb.iter().zip(lb).zip(db).zip(pb).zip(gb) {
        let (pa, da) = step(
            f32x8::new(*sc),
            f32x8::new(*lc),
            f32x8::new(*dc),
            f32x8::new(*gc),
        );
        *pc = pa;
        *gc = da;
    }
    if !st.is_empty() {
        // The tail padded with zeros (p = 1, ds = 0): every element rounds as in full lanes.
        let lane = |x: &[f32]| {
            let mut c = [0.0f32; simd::LANES];
            for (c, v) in c.iter_mut().zip(x) {
                *c = *v;
            }
            f32x8::new(c)
        };
        let (pa, da) = step(lane(st), lane(lt), lane(dt), lane(gt));
        for (o, v) in pt.iter_mut().zip(pa) {
            *o = v;
        }
        for (o, v) in gt.iter_mut().zip(da) {
            *o = v;
        }
    }
    *poison += acc_bad.reduce_add();
    (acc.reduce_add(), acc_s.reduce_add())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{lcg, rel_error};
    use std::vec;
    use std::vec::Vec;

    /// The kernel of a test case: its kind and parameter (`τ` or `h`).
    #[derive(Clone, Copy, Debug)]
    enum Kind {
        Dot(f32),
        Gauss(f32),
    }

    /// A problem in `f64`: the inputs (promoted from the `f32` ones), shapes and mask.
    struct Problem {
        kind: Kind,
        causal: bool,
        m: usize,
        n: usize,
        d: usize,
        dv: usize,
        q: Vec<f64>,
        k: Vec<f64>,
        v: Vec<f64>,
        d_out: Vec<f64>,
    }

    /// The score, from its definition.
    fn score(kind: Kind, ln_theta: f64, q: &[f64], k: &[f64]) -> f64 {
        let theta = ln_theta.exp();
        match kind {
            Kind::Dot(_) => q.iter().zip(k).map(|(a, b)| a * b).sum::<f64>() / theta,
            Kind::Gauss(_) => {
                -q.iter().zip(k).map(|(a, b)| (a - b) * (a - b)).sum::<f64>()
                    / (2.0 * theta * theta)
            }
        }
    }

    fn ln_param(kind: Kind) -> f64 {
        match kind {
            Kind::Dot(t) | Kind::Gauss(t) => f64::from(t).ln(),
        }
    }

    /// The keys query `i` sees.
    fn seen(p: &Problem, i: usize) -> usize {
        if p.causal { i + 1 } else { p.n }
    }

    /// The plain `f64` forward: scores, softmax, weighted sum; returns `L = Σ dO ∘ O`.
    fn loss(p: &Problem, q: &[f64], k: &[f64], v: &[f64], ln_theta: f64) -> f64 {
        let (d, dv) = (p.d, p.dv);
        let mut total = 0.0;
        for i in 0..p.m {
            let s: Vec<f64> = (0..seen(p, i))
                .map(|j| score(p.kind, ln_theta, &q[i * d..][..d], &k[j * d..][..d]))
                .collect();
            let mx = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = s.iter().map(|x| (x - mx).exp()).collect();
            let z: f64 = e.iter().sum();
            for c in 0..dv {
                let o: f64 = e
                    .iter()
                    .enumerate()
                    .map(|(j, w)| w * v[j * dv + c])
                    .sum::<f64>()
                    / z;
                total += p.d_out[i * dv + c] * o;
            }
        }
        total
    }

    /// The gradients `(dQ, dK, dV, d ln θ)` in `f64`, written from the formulas: `P`, `dP`,
    /// `dS = P (dP − D)` and the score's partial derivatives, pair by pair.
    fn analytic(p: &Problem) -> (Vec<f64>, Vec<f64>, Vec<f64>, f64) {
        let (d, dv, lt) = (p.d, p.dv, ln_param(p.kind));
        let theta = lt.exp();
        let (mut dq, mut dk, mut dvv, mut dl) = (
            vec![0.0; p.m * d],
            vec![0.0; p.n * d],
            vec![0.0; p.n * dv],
            0.0,
        );
        for i in 0..p.m {
            let qi = &p.q[i * d..][..d];
            let s: Vec<f64> = (0..seen(p, i))
                .map(|j| score(p.kind, lt, qi, &p.k[j * d..][..d]))
                .collect();
            let mx = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = s.iter().map(|x| (x - mx).exp()).sum();
            let pr: Vec<f64> = s.iter().map(|x| (x - mx).exp() / z).collect();
            let g = &p.d_out[i * dv..][..dv];
            let dp: Vec<f64> = (0..s.len())
                .map(|j| (0..dv).map(|c| g[c] * p.v[j * dv + c]).sum())
                .collect();
            let big_d: f64 = pr.iter().zip(&dp).map(|(a, b)| a * b).sum();
            for j in 0..s.len() {
                let kj = &p.k[j * d..][..d];
                for c in 0..dv {
                    dvv[j * dv + c] += pr[j] * g[c];
                }
                let ds = pr[j] * (dp[j] - big_d);
                for c in 0..d {
                    let (dsdq, dsdk) = match p.kind {
                        Kind::Dot(_) => (kj[c] / theta, qi[c] / theta),
                        Kind::Gauss(_) => {
                            let t = (qi[c] - kj[c]) / (theta * theta);
                            (-t, t)
                        }
                    };
                    dq[i * d + c] += ds * dsdq;
                    dk[j * d + c] += ds * dsdk;
                }
                let kappa = match p.kind {
                    Kind::Dot(_) => -1.0,
                    Kind::Gauss(_) => -2.0,
                };
                dl += ds * kappa * s[j];
            }
        }
        (dq, dk, dvv, dl)
    }

    /// The problem's gradients by `nadaraya`: `attention_lse`, then `attention_backward`.
    fn ours(p: &Problem, qf: &[f32], kf: &[f32], vf: &[f32], gf: &[f32]) -> [Vec<f32>; 4] {
        match p.kind {
            Kind::Dot(t) => run(&SoftmaxDot::new(t).unwrap(), p, qf, kf, vf, gf),
            Kind::Gauss(h) => run(&Gaussian::new(h).unwrap(), p, qf, kf, vf, gf),
        }
    }

    fn run<K: KernelGrad>(
        k: &K,
        p: &Problem,
        qf: &[f32],
        kf: &[f32],
        vf: &[f32],
        gf: &[f32],
    ) -> [Vec<f32>; 4] {
        let (d, dv) = (p.d, p.dv);
        let mask = if p.causal { Mask::Causal } else { Mask::None };
        let (mut out, mut lse) = (vec![0.0; p.m * dv], vec![0.0; p.m]);
        let (mut dq, mut dk, mut dvv) =
            (vec![7.0; p.m * d], vec![7.0; p.n * d], vec![7.0; p.n * dv]);
        let (q, keys, values) = (
            Rows::new(qf, d).unwrap(),
            Rows::new(kf, d).unwrap(),
            Rows::new(vf, dv).unwrap(),
        );
        let o = RowsMut::new(&mut out, dv).unwrap();
        attention_lse(k, q, keys, values, mask, o, &mut lse).unwrap();
        let up = Upstream {
            out: Rows::new(&out, dv).unwrap(),
            lse: &lse,
            d_out: Rows::new(gf, dv).unwrap(),
        };
        let gr = Gradients {
            d_q: RowsMut::new(&mut dq, d).unwrap(),
            d_keys: RowsMut::new(&mut dk, d).unwrap(),
            d_values: RowsMut::new(&mut dvv, dv).unwrap(),
        };
        let dl = attention_backward(k, q, keys, values, mask, up, gr).unwrap();
        [dq, dk, dvv, vec![dl]]
    }

    /// Random problems of every kind: `(M, N, d, dv)` with 1 and odd sizes, across tiles.
    fn problems() -> Vec<(Problem, [Vec<f32>; 4])> {
        let mut rng = lcg(13);
        let shapes = [
            (1, 1, 1, 1),
            (1, 3, 1, 2),
            (3, 5, 2, 1),
            (4, 4, 7, 3),
            (5, 9, 8, 5),
            (9, 9, 9, 9),
            (2, 17, 16, 1),
            (13, 70, 3, 4),
            (66, 70, 5, 2),
            (70, 131, 1, 9),
            (40, 67, 17, 8),
        ];
        let mut all = Vec::new();
        for (m, n, d, dv) in shapes {
            for kind in [Kind::Dot(0.8), Kind::Gauss(0.9)] {
                for causal in [false, true] {
                    let mut draw = |len: usize, a: f32| -> Vec<f32> {
                        (0..len).map(|_| a * (2.0 * rng() - 1.0)).collect()
                    };
                    let (qf, kf, vf, gf) = (
                        draw(m * d, 1.0),
                        draw(n * d, 1.0),
                        draw(n * dv, 2.0),
                        draw(m * dv, 1.0),
                    );
                    let f = |x: &[f32]| x.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>();
                    let p = Problem {
                        kind,
                        causal,
                        m,
                        n,
                        d,
                        dv,
                        q: f(&qf),
                        k: f(&kf),
                        v: f(&vf),
                        d_out: f(&gf),
                    };
                    all.push((p, [qf, kf, vf, gf]));
                }
            }
        }
        all
    }

    const NAMES: [&str; 4] = ["dQ", "dK", "dV", "d ln theta"];

    /// Every gradient within `1e-5` of its scale (the largest component of that gradient) of the
    /// analytic `f64` gradient, written pair by pair from the formulas.
    #[test]
    fn gradients_match_the_analytic_f64_gradient() {
        let mut worst = [0.0f64; 4];
        for (p, [qf, kf, vf, gf]) in problems() {
            let got = ours(&p, &qf, &kf, &vf, &gf);
            let (dq, dk, dv, dl) = analytic(&p);
            for (t, want) in [dq, dk, dv, vec![dl]].iter().enumerate() {
                let e = rel_error(&got[t], want);
                worst[t] = worst[t].max(e);
                assert!(
                    e <= 1e-5,
                    "{} of {:?} causal={} M={} N={} d={} dv={}: relative error {e:e}",
                    NAMES[t],
                    p.kind,
                    p.causal,
                    p.m,
                    p.n,
                    p.d,
                    p.dv
                );
            }
        }
        std::println!("worst relative error against the analytic f64 gradient: {worst:?}");
    }

    /// Every gradient (and `∂L/∂ln θ`) within `1e-3` of its scale of central differences of the
    /// plain `f64` forward, `L = Σ dO ∘ O`: every component of small problems, a sample of the
    /// others.
    #[test]
    fn gradients_match_central_differences() {
        let mut rng = lcg(29);
        let mut worst = [0.0f64; 4];
        let eps = 1e-5;
        for (p, [qf, kf, vf, gf]) in problems() {
            let got = ours(&p, &qf, &kf, &vf, &gf);
            let lt = ln_param(p.kind);
            for t in 0..4 {
                let len = [p.q.len(), p.k.len(), p.v.len(), 1][t];
                // All components of small operands, 24 random ones of larger.
                let picks: Vec<usize> = if len <= 60 {
                    (0..len).collect()
                } else {
                    (0..24)
                        .map(|_| ((rng() * len as f32) as usize).min(len - 1))
                        .collect()
                };
                let mut fd = vec![0.0f64; len];
                for &e in &picks {
                    let at = |h: f64| {
                        let (mut q, mut k, mut v, mut l) =
                            (p.q.clone(), p.k.clone(), p.v.clone(), lt);
                        match t {
                            0 => q[e] += h,
                            1 => k[e] += h,
                            2 => v[e] += h,
                            _ => l += h,
                        }
                        loss(&p, &q, &k, &v, l)
                    };
                    fd[e] = (at(eps) - at(-eps)) / (2.0 * eps);
                }
                let scale = fd.iter().fold(0.0f64, |a, w| a.max(w.abs()));
                let err = picks
                    .iter()
                    .fold(0.0f64, |a, &e| a.max((f64::from(got[t][e]) - fd[e]).abs()));
                let rel = if scale == 0.0 { err } else { err / scale };
                worst[t] = worst[t].max(rel);
                assert!(
                    rel <= 1e-3,
                    "{} of {:?} causal={} M={} N={} d={} dv={}: relative error {rel:e}",
                    NAMES[t],
                    p.kind,
                    p.causal,
                    p.m,
                    p.n,
                    p.d,
                    p.dv
                );
            }
        }
        std::println!("worst relative error against central differences: {worst:?}");
    }

    /// `attention_lse` writes what `attention` writes (bit for bit where both take the same
    /// path, else within `1e-5` of the values' scale), and each query's log-sum-exp
    /// within `1e-6` of the plain `f64` one (scores promoted from `f32`).
    #[test]
    fn lse_forward_is_attention_plus_the_log_sum_exp() {
        for (p, [qf, kf, vf, _]) in problems() {
            let (d, dv) = (p.d, p.dv);
            let mask = if p.causal { Mask::Causal } else { Mask::None };
            let k = SoftmaxDot::new(0.8).unwrap();
            let (q, keys, values) = (
                Rows::new(&qf, d).unwrap(),
                Rows::new(&kf, d).unwrap(),
                Rows::new(&vf, dv).unwrap(),
            );
            let (mut a, mut b, mut lse) =
                (vec![0.0; p.m * dv], vec![1.0; p.m * dv], vec![0.0; p.m]);
            crate::attention(&k, q, keys, values, mask, RowsMut::new(&mut a, dv).unwrap()).unwrap();
            let o = RowsMut::new(&mut b, dv).unwrap();
            attention_lse(&k, q, keys, values, mask, o, &mut lse).unwrap();
            if p.m < crate::attention::BLOCKED_MIN_QUERIES
                || crate::dispatch::active() == crate::dispatch::Level::Baseline
            {
                assert_eq!(a, b);
            } else {
                // `attention` took the register-blocked kernel, whose scores round differently.
                let scale = vf.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                for (x, y) in a.iter().zip(&b) {
                    let tol = 1e-5 * f64::from(scale);
                    crate::testing::assert_close(f64::from(*x), f64::from(*y), tol, "out");
                }
            }
            for i in 0..p.m {
                let s: Vec<f64> = (0..seen(&p, i))
                    .map(|j| f64::from(k.score(&qf[i * d..][..d], &kf[j * d..][..d])))
                    .collect();
                let mx = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let want = mx + s.iter().map(|x| (x - mx).exp()).sum::<f64>().ln();
                crate::testing::assert_close(
                    f64::from(lse[i]),
                    want,
                    1e-6 * want.abs().max(1.0),
                    "lse",
                );
            }
        }
    }

    /// Every shape error names its operand, before anything is written; a NaN or infinity in
    /// any input is `NonFinite`.
    #[test]
    fn bad_shapes_and_non_finite_inputs_are_errors() {
        let k = Gaussian::new(1.0).unwrap();
        let (q, keys, values) = ([0.5f32; 4], [0.25f32; 6], [1.0f32; 3]);
        let (q, keys, values) = (
            Rows::new(&q, 2).unwrap(),
            Rows::new(&keys, 2).unwrap(),
            Rows::new(&values, 1).unwrap(),
        );
        let (mut out, mut lse) = ([0.0f32; 2], [0.0f32; 2]);
        let sh = |what, expected, found| {
            Err(Error::Shape {
                what,
                expected,
                found,
            })
        };
        let o = RowsMut::new(&mut out, 1).unwrap();
        assert_eq!(
            attention_lse(&k, q, keys, values, Mask::None, o, &mut lse[..1]),
            sh(Dim::Lse, 2, 1)
        );
        let o = RowsMut::new(&mut out, 1).unwrap();
        attention_lse(&k, q, keys, values, Mask::None, o, &mut lse).unwrap();
        let g = [1.0f32; 8];
        // (lse length, d_out, dq, dk, dv as (len, width)) and the error.
        let ok = (2, (2, 1), (4, 2), (6, 2), (3, 1));
        let cases = [
            ((1, ok.1, ok.2, ok.3, ok.4), sh(Dim::Lse, 2, 1)),
            ((2, (4, 2), ok.2, ok.3, ok.4), sh(Dim::GradientWidth, 1, 2)),
            ((2, (3, 1), ok.2, ok.3, ok.4), sh(Dim::GradientRows, 2, 3)),
            ((2, ok.1, (4, 1), ok.3, ok.4), sh(Dim::GradientWidth, 2, 1)),
            ((2, ok.1, (2, 2), ok.3, ok.4), sh(Dim::GradientRows, 2, 1)),
            ((2, ok.1, ok.2, (4, 2), ok.4), sh(Dim::GradientRows, 3, 2)),
            ((2, ok.1, ok.2, ok.3, (6, 2)), sh(Dim::GradientWidth, 1, 2)),
            ((2, ok.1, ok.2, ok.3, (2, 1)), sh(Dim::GradientRows, 3, 2)),
        ];
        for ((nl, (ng, wg), (nq, wq), (nk, wk), (nv, wv)), want) in cases {
            let (mut dq, mut dk, mut dv) = ([7.0f32; 8], [7.0f32; 8], [7.0f32; 8]);
            let up = Upstream {
                out: Rows::new(&out, 1).unwrap(),
                lse: &lse[..nl],
                d_out: Rows::new(&g[..ng], wg).unwrap(),
            };
            let gr = Gradients {
                d_q: RowsMut::new(&mut dq[..nq], wq).unwrap(),
                d_keys: RowsMut::new(&mut dk[..nk], wk).unwrap(),
                d_values: RowsMut::new(&mut dv[..nv], wv).unwrap(),
            };
            assert_eq!(
                attention_backward(&k, q, keys, values, Mask::None, up, gr).map(|_| ()),
                want
            );
            assert_eq!(
                (dq, dk, dv),
                ([7.0; 8], [7.0; 8], [7.0; 8]),
                "nothing written"
            );
        }
        // The forward's own shape errors come first, for `out` as the output.
        let (mut dq, mut dk, mut dv) = ([0.0f32; 4], [0.0f32; 6], [0.0f32; 3]);
        let up = Upstream {
            out: Rows::new(&out[..1], 1).unwrap(),
            lse: &lse,
            d_out: Rows::new(&g[..2], 1).unwrap(),
        };
        let gr = Gradients {
            d_q: RowsMut::new(&mut dq, 2).unwrap(),
            d_keys: RowsMut::new(&mut dk, 2).unwrap(),
            d_values: RowsMut::new(&mut dv, 1).unwrap(),
        };
        assert_eq!(
            attention_backward(&k, q, keys, values, Mask::None, up, gr).map(|_| ()),
            sh(Dim::OutputRows, 2, 1)
        );
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for pos in 0..6 {
                let (mut qa, mut ka, mut va) = ([0.5f32; 4], [0.25f32; 6], [1.0f32; 3]);
                let (mut oa, mut la, mut ga) = (out, lse, [1.0f32; 2]);
                match pos {
                    0 => qa[3] = bad,
                    1 => ka[5] = bad,
                    2 => va[2] = bad,
                    3 => oa[1] = bad,
                    4 => la[1] = bad,
                    _ => ga[0] = bad,
                }
                let (mut dq, mut dk, mut dv) = ([0.0f32; 4], [0.0f32; 6], [0.0f32; 3]);
                let up = Upstream {
                    out: Rows::new(&oa, 1).unwrap(),
                    lse: &la,
                    d_out: Rows::new(&ga, 1).unwrap(),
                };
                let gr = Gradients {
                    d_q: RowsMut::new(&mut dq, 2).unwrap(),
                    d_keys: RowsMut::new(&mut dk, 2).unwrap(),
                    d_values: RowsMut::new(&mut dv, 1).unwrap(),
                };
                let (qr, kr, vr) = (
                    Rows::new(&qa, 2).unwrap(),
                    Rows::new(&ka, 2).unwrap(),
                    Rows::new(&va, 1).unwrap(),
                );
                assert_eq!(
                    attention_backward(&k, qr, kr, vr, Mask::Causal, up, gr),
                    Err(Error::NonFinite),
                    "pos {pos}"
                );
            }
        }
    }
}

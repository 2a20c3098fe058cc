//! Per-dimension bandwidths: the product Gaussian kernel (a diagonal metric), its leave-one-out
//! objective with the gradient in the same pass, and a quasi-Newton selector.

use super::cv::check_samples;
use super::search::{Search, column_variance, minimize_log_bandwidth};
use crate::{Dim, Error, Gaussian, Kernel, Rows, simd};

/// The widest locations (and responses) the per-dimension functions take: their accumulators
/// and the quasi-Newton matrix live in stack arrays of this size.
pub const MAX_DIMS: usize = 16;

/// How far a per-dimension bandwidth may go, in units of its coordinate's standard deviation:
/// [`select_bandwidths`] keeps `h_k` within `[σ_k / MAX_SPREADS, σ_k · MAX_SPREADS]` (and the
/// valid Gaussian bandwidths). An irrelevant coordinate ends at the upper cap, where its weights
/// no longer vary: `10⁶ σ_k`.
pub const MAX_SPREADS: f64 = 1e6;

/// A bandwidth goes to its upper cap when that raises the CV by at most this, relative: a
/// coordinate that explains less than that of the CV is treated as irrelevant (the simpler
/// model), rather than kept at a moderate bandwidth that fits a few parts per million of noise.
pub const CAP_TOLERANCE: f64 = 1e-5;

/// The product Gaussian kernel with one bandwidth per input dimension (a diagonal metric):
/// `score = −Σ_k (q_k − x_k)² / (2 h_k²)`.
///
/// # Examples
/// ```
/// use nadaraya::{Kernel, fit::DiagonalGaussian};
/// let k = DiagonalGaussian::new([0.5, 2.0])?;
/// assert_eq!(k.score(&[1.0, 2.0], &[0.0, 0.0]), -2.0 - 0.5);
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DiagonalGaussian<const D: usize> {
    h: [f32; D],
    // -1 / (2 h_k²), each rounded once from f64.
    neg_scale: [f32; D],
}

impl<const D: usize> DiagonalGaussian<D> {
    /// The kernel with bandwidths `h`.
    ///
    /// # Errors
    /// [`Error::InvalidBandwidth`] if any `h_k` is not a valid Gaussian bandwidth
    /// ([`Gaussian::check_bandwidth`]).
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn new(h: [f32; D]) -> Result<Self, Error> {
        let mut neg_scale = [0.0f32; D];
        for (s, hk) in neg_scale.iter_mut().zip(&h) {
            *s = Gaussian::check_bandwidth(*hk)?;
        }
        Ok(Self { h, neg_scale })
    }

    /// The bandwidths.
    #[must_use]
    pub const fn bandwidths(&self) -> [f32; D] {
        self.h
    }
}

impl<const D: usize> Kernel for DiagonalGaussian<D> {
    #[inline]
    fn score(&self, q: &[f32], x: &[f32]) -> f32 {
        let mut s = 0.0f32;
        for ((a, b), c) in q.iter().zip(x).zip(&self.neg_scale) {
            let t = a - b;
            s += t * t * c;
        }
        s
    }

    #[inline]
    fn scores(&self, q: &[f32], keys: &[f32], out: &mut [f32]) {
        simd::diagonal_scores(q, keys, &self.neg_scale, out);
    }
}

/// The operands of the per-dimension functions, checked: `(d, dv)`.
fn check_diagonal(h: &[f32], x: Rows<'_>, y: Rows<'_>) -> Result<(usize, usize), Error> {
    let (d, dv) = (x.width(), y.width());
    if h.len() != d {
        return Err(Error::Shape {
            what: Dim::Width,
            expected: d,
            found: h.len(),
        });
    }
    if d > MAX_DIMS || dv > MAX_DIMS {
        return Err(Error::CapacityExceeded);
    }
    check_samples(x, y)?;
    Ok((d, dv))
}

/// The leave-one-out score of Nadaraya–Watson smoothing with the product Gaussian of
/// bandwidths `h` (one per column of `x`), and, if `grad` is given, its gradient with respect to
/// `θ_k = ln h_k` in the same pass.
///
/// `CV = 1/(N·dv) Σ_i Σ_c (y_ic − ŷ_{−i,c})²` as [`loo_cv`](super::loo_cv), with
/// `s_ij = −Σ_k u_ijk / 2`, `u_ijk = (x_ik − x_jk)² / h_k²`, so `∂s_ij/∂θ_k = u_ijk` and
///
/// `∂ŷ_{−i}/∂θ_k = Σ_{j≠i} α_ij (y_j − ŷ_{−i}) u_ijk`,
/// `∂CV/∂θ_k = −2/(N·dv) Σ_i Σ_c (y_ic − ŷ_{−i,c}) ∂ŷ_{−i,c}/∂θ_k`.
///
/// Per sample `i`: one pass over `j ≠ i` in tiles of 64 samples, in SIMD lanes: the scores, a
/// running maximum, the weights `w = exp(s − max)`, and per tile, summed into `f64`, `Σ w`,
/// `Σ w (y_j − y_i)`, `Σ w u_k` and `Σ w (y_j − y_i) u_k` (the responses centred on `y_i`, so
/// that `y_i − ŷ_{−i} = −Σ w (y_j − y_i)/Σ w` and the gradient
/// `Σ α (y_j − y_i) u − (ŷ − y_i) Σ α u` lose nothing to a large common offset of `y`). The
/// sample itself never enters a sum. Cost: `O(N²·d)`.
///
/// # Errors
/// - [`Error::Shape`] with [`Dim::Width`] if `h` has not one bandwidth per column of `x`
///   (`expected` the columns), or `grad` is given without one slot per column;
/// - [`Error::CapacityExceeded`] if `x` or `y` is wider than [`MAX_DIMS`];
/// - [`Error::InvalidBandwidth`] if an `h_k` is not a valid Gaussian bandwidth;
/// - [`Error::ZeroDimension`] if `x` or `y` has rows of width 0;
/// - as [`loo_cv`](super::loo_cv) otherwise ([`Error::Empty`] for fewer than two samples,
///   [`Error::NonFinite`], [`Error::ScoreOverflow`]).
///
/// # Examples
/// ```
/// use nadaraya::{Rows, fit};
/// let x = Rows::from_arrays(&[[0.0, 5.0], [1.0, 1.0], [2.0, 3.0], [3.0, 0.0]]);
/// let y = Rows::from_arrays(&[[0.0], [1.0], [2.0], [3.0]]);
/// let mut g = [0.0; 2];
/// let cv = fit::loo_cv_diagonal(&[1.0, 1e6], x, y, Some(&mut g))?;
/// // The second column is irrelevant at h = 1e6: CV equals the 1-D score.
/// let one = fit::loo_cv(&nadaraya::Gaussian::new(1.0)?, Rows::from_arrays(&[[0.0], [1.0], [2.0], [3.0]]), y)?;
/// assert!((cv - one).abs() < 1e-6 && g[1].abs() < 1e-9);
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn loo_cv_diagonal(
    h: &[f32],
    x: Rows<'_>,
    y: Rows<'_>,
    grad: Option<&mut [f64]>,
) -> Result<f64, Error> {
    let (d, dv) = check_diagonal(h, x, y)?;
    if let Some(g) = &grad
        && g.len() != d
    {
        return Err(Error::Shape {
            what: Dim::Width,
            expected: d,
            found: g.len(),
        });
    }
    let mut scale = [0.0f32; MAX_DIMS];
    for (s, hk) in scale.iter_mut().zip(h) {
        *s = Gaussian::check_bandwidth(*hk)?;
    }
    let scale = scale.get(..d).unwrap_or(&[]);
    // 1/h_k² = −2 · (−1/(2h_k²)), exact: u_jk = t² · inv_k, as the kernel's scale.
    let mut inv = [0.0f32; MAX_DIMS];
    for (i, s) in inv.iter_mut().zip(scale) {
        *i = -2.0 * s;
    }
    let inv = inv.get(..d).unwrap_or(&[]);
    let want_grad = grad.is_some();
    let (xs, ys) = (x.as_slice(), y.as_slice());
    let mut total = 0.0f64;
    let mut gsum = [0.0f64; MAX_DIMS];
    let n = x.len();
    if d == 0 || dv == 0 {
        return Err(Error::ZeroDimension);
    }
    let (d, dv) = (d.max(1), dv.max(1));
    let mut tile = Tile::EMPTY;
    let mut states = [const { State::EMPTY }; QUERY_BLOCK];
    let key_tiles = || {
        xs.chunks((DIAG_TILE * d).max(1))
            .zip(ys.chunks((DIAG_TILE * dv).max(1)))
    };
    // Blocks of QUERY_BLOCK queries share each transposed tile of keys.
    for (b, (qs, yqs)) in xs
        .chunks((QUERY_BLOCK * d).max(1))
        .zip(ys.chunks((QUERY_BLOCK * dv).max(1)))
        .enumerate()
    {
        let first = b * QUERY_BLOCK;
        for st in states.iter_mut() {
            st.reset(d, dv);
        }
        for (t, (kt, vt)) in key_tiles().enumerate() {
            let rows = tile.load(kt, d).min(vt.len() / dv);
            let start = t * DIAG_TILE;
            for (o, ((q, yq), st)) in qs
                .chunks_exact(d)
                .zip(yq_rows(yqs, dv))
                .zip(states.iter_mut())
                .enumerate()
            {
                // The query's own row in this tile, if it is there: masked out of every sum.
                let me = (first + o).checked_sub(start).filter(|&j| j < rows);
                st.absorb(&mut tile, rows, me, q, yq, (scale, inv), vt, want_grad)?;
            }
        }
        for (yq, st) in yq_rows(yqs, dv).zip(&states) {
            // The nearest sample has weight exp(0) = 1: sw ≥ 1.
            let sw = st.sw;
            for (c, (v, centre)) in yq.iter().zip(&st.centre).enumerate() {
                // ŷ_{−i} − c = Σ w (y_j − c) / Σ w, with c the response of the nearest sample.
                let dy = st.swy.get(c).copied().unwrap_or(0.0) / sw;
                let r = (f64::from(*v) - f64::from(*centre)) - dy;
                total += r * r;
                if want_grad && let Some(row) = st.swyu.get(c) {
                    for ((g, cy), bk) in gsum.iter_mut().zip(row).zip(&st.swu).take(d) {
                        // ∂ŷ/∂θ_k = Σ α (y_j − c) u_k − (ŷ − c) Σ α u_k.
                        *g += -2.0 * r * (cy / sw - dy * bk / sw);
                    }
                }
            }
        }
    }
    let scale_n = 1.0 / (n as f64 * dv as f64);
    if let Some(g) = grad {
        for (o, v) in g.iter_mut().zip(&gsum) {
            *o = v * scale_n;
        }
    }
    Ok(total * scale_n)
}

/// The rows of `dv`-wide responses.
#[inline]
fn yq_rows(ys: &[f32], dv: usize) -> core::slice::ChunksExact<'_, f32> {
    ys.chunks_exact(dv.max(1))
}

/// Rows per tile of [`loo_cv_diagonal`]: the keys of a tile transposed into columns
/// ([`MAX_DIMS`] of them) take 4 KiB of stack.
const DIAG_TILE: usize = 64;

/// Queries per block of [`loo_cv_diagonal`]: each transposed tile of keys serves this many
/// queries (their states take about 2.3 KiB of stack each).
const QUERY_BLOCK: usize = 4;

/// One tile of keys by columns, the scores (then weights) of one query and its centred
/// responses.
struct Tile {
    cols: [f32; MAX_DIMS * DIAG_TILE],
    s: [f32; DIAG_TILE],
    yc: [f32; DIAG_TILE],
}

impl Tile {
    const EMPTY: Self = Self {
        cols: [0.0; MAX_DIMS * DIAG_TILE],
        s: [0.0; DIAG_TILE],
        yc: [0.0; DIAG_TILE],
    };

    /// Transposes the rows of `keys` (`d` wide, at most [`DIAG_TILE`] of them) into the
    /// columns; returns the number of rows.
    #[inline]
    fn load(&mut self, keys: &[f32], d: usize) -> usize {
        let d = d.max(1);
        let rows = (keys.len() / d).min(DIAG_TILE);
        for (k, col) in self.cols.chunks_exact_mut(DIAG_TILE).take(d).enumerate() {
            for (o, row) in col.iter_mut().zip(keys.chunks_exact(d)) {
                if let Some(v) = row.get(k) {
                    *o = *v;
                }
            }
        }
        rows
    }
}

/// The running sums of one query of [`loo_cv_diagonal`], relative to the running maximum score
/// `m`, in `f64`: `Σ w`, `Σ w (y_j − c)` per response column, `Σ w u_k` and `Σ w (y_j − c) u_k`
/// (`u_k = (x_ik − x_jk)² / h_k²`), the responses centred on those `c` of the sample with the
/// highest score so far. At a small bandwidth that sample has almost all the weight, and its
/// term, which would otherwise dominate both parts of the gradient
/// `Σ α (y_j − c) u − (ŷ − c) Σ α u` and cancel, is exactly 0.
struct State {
    m: f32,
    centre: [f32; MAX_DIMS],
    sw: f64,
    swy: [f64; MAX_DIMS],
    swu: [f64; MAX_DIMS],
    swyu: [[f64; MAX_DIMS]; MAX_DIMS],
}

impl State {
    const EMPTY: Self = Self {
        m: f32::NEG_INFINITY,
        centre: [0.0; MAX_DIMS],
        sw: 0.0,
        swy: [0.0; MAX_DIMS],
        swu: [0.0; MAX_DIMS],
        swyu: [[0.0; MAX_DIMS]; MAX_DIMS],
    };

    /// Back to empty for a query with `d` coordinates and `dv` responses (the sums past those
    /// are never read).
    #[inline]
    fn reset(&mut self, d: usize, dv: usize) {
        self.m = f32::NEG_INFINITY;
        self.sw = 0.0;
        for v in self.swy.iter_mut().take(dv) {
            *v = 0.0;
        }
        for v in self.swu.iter_mut().take(d) {
            *v = 0.0;
        }
        for row in self.swyu.iter_mut().take(dv) {
            for v in row.iter_mut().take(d) {
                *v = 0.0;
            }
        }
    }

    /// Absorbs the first `rows` samples of the tile (keys in `tile.cols`, responses `values`,
    /// rows of `yq.len()`) for the query `(q, yq)`, without its own row `me`: the scores
    /// ([`simd::column_scores`], the kernel's arithmetic), the tile maximum (a score that is not
    /// finite is [`Error::ScoreOverflow`]), the running state rescaled and re-centred when the
    /// maximum rises, the weights ([`simd::exp_shift_sum`]), then per response column the
    /// moments ([`simd::column_moments`]) summed into the `f64` state.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn absorb(
        &mut self,
        tile: &mut Tile,
        rows: usize,
        me: Option<usize>,
        q: &[f32],
        yq: &[f32],
        (scale, inv): (&[f32], &[f32]),
        values: &[f32],
        want_grad: bool,
    ) -> Result<(), Error> {
        let (d, dv) = (q.len(), yq.len());
        if d == 0 || dv == 0 {
            return Err(Error::ZeroDimension);
        }
        let dv = dv.max(1);
        let Some(s) = tile.s.get_mut(..rows) else {
            return Ok(());
        };
        simd::column_scores(q, &tile.cols, DIAG_TILE, scale, s);
        let (mut mt, gaps) = simd::max_score(s)?;
        if gaps || mt == f32::NEG_INFINITY {
            return Err(Error::ScoreOverflow);
        }
        if let Some(j) = me {
            if let Some(v) = s.get_mut(j) {
                *v = f32::NEG_INFINITY;
            }
            // The own score is 0, the tile's maximum: the maximum of the others.
            mt = s
                .iter()
                .fold(f32::NEG_INFINITY, |a, &v| if v > a { v } else { a });
            if mt == f32::NEG_INFINITY {
                // The query alone in this tile.
                return Ok(());
            }
        }
        if mt > self.m {
            // The new centre: the responses of the tile's (first) highest-scoring sample.
            let top = s.iter().position(|v| *v == mt).unwrap_or(0);
            let mut centre = self.centre;
            for (o, v) in centre
                .iter_mut()
                .zip(values.chunks_exact(dv).nth(top).unwrap_or(&[]))
            {
                *o = *v;
            }
            if self.sw != 0.0 {
                let f = f64::from(simd::exp_scalar(self.m - mt));
                self.sw *= f;
                for v in self.swy.iter_mut().take(dv) {
                    *v *= f;
                }
                for v in self.swu.iter_mut().take(d) {
                    *v *= f;
                }
                for row in self.swyu.iter_mut().take(dv) {
                    for v in row.iter_mut().take(d) {
                        *v *= f;
                    }
                }
                // Σ w (y − c') = Σ w (y − c) + (c − c') Σ w, and the same with u_k.
                for (((a, row), old), new) in self
                    .swy
                    .iter_mut()
                    .zip(self.swyu.iter_mut())
                    .zip(&self.centre)
                    .zip(&centre)
                    .take(dv)
                {
                    let shift = f64::from(*old) - f64::from(*new);
                    *a += shift * self.sw;
                    for (b, u) in row.iter_mut().zip(&self.swu).take(d) {
                        *b += shift * u;
                    }
                }
            }
            self.centre = centre;
            self.m = mt;
        }
        self.sw += f64::from(simd::exp_shift_sum(s, self.m));
        for (c, y0) in self.centre.iter().take(dv).enumerate() {
            let Some(yc) = tile.yc.get_mut(..rows) else {
                break;
            };
            if dv == 1 {
                for (o, v) in yc.iter_mut().zip(values) {
                    *o = v - y0;
                }
            } else {
                for (o, row) in yc.iter_mut().zip(values.chunks_exact(dv)) {
                    *o = row.get(c).copied().unwrap_or(*y0) - y0;
                }
            }
            let (mut sq, mut ysq) = ([0.0f32; MAX_DIMS], [0.0f32; MAX_DIMS]);
            let moments = if want_grad {
                Some((
                    sq.get_mut(..d).unwrap_or(&mut []),
                    ysq.get_mut(..d).unwrap_or(&mut []),
                ))
            } else {
                None
            };
            let swy = simd::column_moments(q, &tile.cols, DIAG_TILE, inv, s, yc, moments);
            if let Some(a) = self.swy.get_mut(c) {
                *a += f64::from(swy);
            }
            if want_grad {
                if c == 0 {
                    for (a, v) in self.swu.iter_mut().zip(&sq).take(d) {
                        *a += f64::from(*v);
                    }
                }
                if let Some(row) = self.swyu.get_mut(c) {
                    for (a, v) in row.iter_mut().zip(&ysq).take(d) {
                        *a += f64::from(*v);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Chooses one bandwidth per column of `x` by least-squares leave-one-out cross-validation
/// ([`loo_cv_diagonal`]); writes them into `h` and returns the CV there.
///
/// 1. Start from the per-column rule of thumb `h_k = 1.06 σ_k N^(−1/(d+4))` (a constant column
///    gets `h_k = 1`, and keeps it: its weights do not depend on `h_k`).
/// 2. Scale all of them by one factor chosen by the global scalar search
///    [`minimize_log_bandwidth`] over `[10^−decades_below, 10^decades_above]` (robustness: the
///    quasi-Newton step starts in the lowest basin of the isotropic curve).
/// 3. BFGS on `θ = ln h` with the gradient of [`loo_cv_diagonal`], backtracking (Armijo) line
///    searches, each `θ_k` kept within `ln σ_k ± ln MAX_SPREADS` ([`MAX_SPREADS`]); at most
///    [`Search::max_evaluations`] gradient evaluations.
/// 4. Each bandwidth is tried at its upper cap, and kept there if the CV rises by at most
///    [`CAP_TOLERANCE`] (relative): a coordinate that does not matter ends with a huge
///    bandwidth, `10⁶ σ_k`, rather than wherever the flat curve stopped the descent or at a
///    moderate bandwidth that fits noise (measured: N = 500, D = 3, an irrelevant `x_3` at
///    `h_3 = 8 σ_3` was 4.4e-6 below the cap's CV).
///
/// The result's CV is therefore within `CAP_TOLERANCE` of the lowest the descent found.
///
/// # Errors
/// As [`loo_cv_diagonal`] (with `h` as the output: it must have one slot per column); if the
/// search finds no feasible bandwidth, the error that made the first one infeasible.
///
/// # Examples
/// ```
/// use nadaraya::{Rows, fit};
/// let xs: Vec<[f32; 2]> = (0..60).map(|i| [i as f32 / 60.0, ((i * 37) % 60) as f32]).collect();
/// let ys: Vec<[f32; 1]> = xs.iter().map(|x| [(6.0 * x[0]).sin()]).collect();
/// let mut h = [0.0; 2];
/// let cv = fit::select_bandwidths(Rows::from_arrays(&xs), Rows::from_arrays(&ys), &mut h, &fit::Search::default())?;
/// assert!(h[1] > 1e3 * 17.0, "{h:?}"); // the second column is irrelevant
/// assert!(cv < 1e-3);
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn select_bandwidths(
    x: Rows<'_>,
    y: Rows<'_>,
    h: &mut [f32],
    search: &Search,
) -> Result<f64, Error> {
    let (d, _) = check_diagonal(h, x, y)?;
    let n = x.len();
    // 1. The rule of thumb and the box.
    let mut theta0 = [0.0f64; MAX_DIMS];
    let mut lo = [0.0f64; MAX_DIMS];
    let mut hi = [0.0f64; MAX_DIMS];
    let mut fixed = [false; MAX_DIMS];
    let g_lo = libm::log(3.9e-20);
    let g_hi = libm::log(6.5e18);
    for k in 0..d {
        let sigma = libm::sqrt(column_variance([x.as_slice(), &[]], d, k));
        let (t, l, u, f) = if sigma > 0.0 && sigma.is_finite() {
            let h0 = 1.06 * sigma * libm::pow(n as f64, -1.0 / (d as f64 + 4.0));
            let ls = libm::log(sigma);
            let span = libm::log(MAX_SPREADS);
            (
                (libm::log(h0)),
                (ls - span).max(g_lo),
                (ls + span).min(g_hi),
                false,
            )
        } else {
            (0.0, 0.0, 0.0, true)
        };
        if let (Some(a), Some(b), Some(c), Some(e)) = (
            theta0.get_mut(k),
            lo.get_mut(k),
            hi.get_mut(k),
            fixed.get_mut(k),
        ) {
            (*a, *b, *c, *e) = (within(t, l, u), l, u, f);
        }
    }
    let mut hbuf = [0.0f32; MAX_DIMS];
    let to_h = |t: &[f64; MAX_DIMS], out: &mut [f32; MAX_DIMS]| {
        for (o, v) in out.iter_mut().zip(t).take(d) {
            *o = libm::exp(*v) as f32;
        }
    };
    // 2. One common factor by the global scalar search.
    // A coarse pre-search: a starting basin, not the answer.
    let coarse = Search {
        grid: search.grid.min(12),
        refine: search.refine.min(1),
        tolerance: search.tolerance.max(1e-2),
        ..*search
    };
    let sel = minimize_log_bandwidth(
        |c| {
            let mut hs = [0.0f32; MAX_DIMS];
            for ((o, t), f) in hs.iter_mut().zip(&theta0).zip(&fixed).take(d) {
                *o = if *f {
                    1.0
                } else {
                    (libm::exp(*t) * f64::from(c)) as f32
                };
            }
            loo_cv_diagonal(hs.get(..d).unwrap_or(&[]), x, y, None)
        },
        (libm::pow(10.0, -f64::from(search.decades_below))) as f32,
        (libm::pow(10.0, f64::from(search.decades_above))) as f32,
        &coarse,
    )?;
    let lc = libm::log(f64::from(sel.bandwidth));
    let mut theta = [0.0f64; MAX_DIMS];
    for k in 0..d {
        if let (Some(t), Some(t0), Some(l), Some(u)) =
            (theta.get_mut(k), theta0.get(k), lo.get(k), hi.get(k))
        {
            *t = within(t0 + lc, *l, *u);
        }
    }
    // 3. BFGS on θ.
    let eval = |t: &[f64; MAX_DIMS], g: &mut [f64; MAX_DIMS], hb: &mut [f32; MAX_DIMS]| {
        to_h(t, hb);
        for ((o, f), gk) in hb.iter_mut().zip(&fixed).zip(g.iter_mut()).take(d) {
            if *f {
                *o = 1.0;
            }
            *gk = 0.0;
        }
        let r = loo_cv_diagonal(hb.get(..d).unwrap_or(&[]), x, y, g.get_mut(..d));
        for (gk, f) in g.iter_mut().zip(&fixed) {
            if *f {
                *gk = 0.0;
            }
        }
        r
    };
    let mut g = [0.0f64; MAX_DIMS];
    let mut f = eval(&theta, &mut g, &mut hbuf)?;
    let mut hinv = [[0.0f64; MAX_DIMS]; MAX_DIMS];
    for (k, row) in hinv.iter_mut().enumerate() {
        if let Some(v) = row.get_mut(k) {
            *v = 1.0;
        }
    }
    let mut evals = 1u32;
    let project = |t: &mut [f64; MAX_DIMS]| {
        for ((v, l), u) in t.iter_mut().zip(&lo).zip(&hi).take(d) {
            *v = within(*v, *l, *u);
        }
    };
    let mut first = true;
    while evals < search.max_evaluations.max(2) {
        // Direction p = −H g, with components that push against an active bound dropped.
        let mut p = [0.0f64; MAX_DIMS];
        for (k, pk) in p.iter_mut().enumerate().take(d) {
            let row = hinv.get(k).copied().unwrap_or([0.0; MAX_DIMS]);
            *pk = -row.iter().zip(&g).take(d).map(|(a, b)| a * b).sum::<f64>();
        }
        for k in 0..d {
            let (t, l, u) = (
                theta.get(k).copied().unwrap_or(0.0),
                lo.get(k).copied().unwrap_or(0.0),
                hi.get(k).copied().unwrap_or(0.0),
            );
            if let Some(pk) = p.get_mut(k)
                && ((t <= l && *pk < 0.0) || (t >= u && *pk > 0.0))
            {
                *pk = 0.0;
            }
        }
        let mut slope: f64 = p.iter().zip(&g).take(d).map(|(a, b)| a * b).sum();
        if slope.is_nan() || slope >= 0.0 {
            // Not a descent direction: restart from the steepest descent.
            for (k, row) in hinv.iter_mut().enumerate() {
                *row = [0.0; MAX_DIMS];
                if let Some(v) = row.get_mut(k) {
                    *v = 1.0;
                }
            }
            for (pk, gk) in p.iter_mut().zip(&g) {
                *pk = -gk;
            }
            slope = -g.iter().take(d).map(|v| v * v).sum::<f64>();
            if slope.is_nan() || slope >= 0.0 {
                break;
            }
        }
        // The first step is at most 1 in θ along its largest component (a factor e in h).
        let mut step = 1.0f64;
        if first {
            let big = p.iter().take(d).fold(0.0f64, |a, v| a.max(v.abs()));
            if big > 1.0 {
                step = 1.0 / big;
            }
            first = false;
        }
        let mut accepted = false;
        let mut t_new = theta;
        let mut g_new = [0.0f64; MAX_DIMS];
        let mut f_new = f;
        for _ in 0..20 {
            if evals >= search.max_evaluations.max(2) {
                break;
            }
            for ((tn, t), pk) in t_new.iter_mut().zip(&theta).zip(&p).take(d) {
                *tn = t + step * pk;
            }
            project(&mut t_new);
            evals += 1;
            match eval(&t_new, &mut g_new, &mut hbuf) {
                Ok(v) if v <= f + 1e-4 * step * slope => {
                    f_new = v;
                    accepted = true;
                    break;
                }
                Ok(_) => {}
                Err(Error::ScoreOverflow | Error::InvalidBandwidth) => {}
                Err(e) => return Err(e),
            }
            step *= 0.5;
        }
        if !accepted {
            break;
        }
        // BFGS update of the inverse Hessian with s = Δθ, q = Δg.
        let mut s = [0.0f64; MAX_DIMS];
        let mut q = [0.0f64; MAX_DIMS];
        for k in 0..d {
            if let (Some(sk), Some(qk)) = (s.get_mut(k), q.get_mut(k)) {
                *sk = t_new.get(k).copied().unwrap_or(0.0) - theta.get(k).copied().unwrap_or(0.0);
                *qk = g_new.get(k).copied().unwrap_or(0.0) - g.get(k).copied().unwrap_or(0.0);
            }
        }
        let sq: f64 = s.iter().zip(&q).take(d).map(|(a, b)| a * b).sum();
        let improvement = f - f_new;
        theta = t_new;
        g = g_new;
        f = f_new;
        if sq > 1e-300 {
            bfgs_update(&mut hinv, &s, &q, sq, d);
        }
        if improvement <= 1e-9 * f.abs() {
            break;
        }
    }
    // 4. Each bandwidth at its upper cap, kept if the CV does not rise.
    for k in 0..d {
        if fixed.get(k).copied().unwrap_or(true) {
            continue;
        }
        let mut t = theta;
        if let (Some(v), Some(u)) = (t.get_mut(k), hi.get(k)) {
            if *v >= *u {
                continue;
            }
            *v = *u;
        }
        let mut gg = [0.0f64; MAX_DIMS];
        if let Ok(v) = eval(&t, &mut gg, &mut hbuf)
            && v <= f * (1.0 + CAP_TOLERANCE)
        {
            theta = t;
            f = v;
        }
    }
    to_h(&theta, &mut hbuf);
    for ((o, v), fx) in h.iter_mut().zip(&hbuf).zip(&fixed) {
        *o = if *fx { 1.0 } else { *v };
    }
    Ok(f)
}

/// `v` within `[lo, hi]` (not `clamp`, which panics on a reversed or NaN bound).
#[inline]
fn within(v: f64, lo: f64, hi: f64) -> f64 {
    if v < lo {
        lo
    } else if v > hi {
        hi
    } else {
        v
    }
}

/// `H ← (I − ρ s qᵀ) H (I − ρ q sᵀ) + ρ s sᵀ`, `ρ = 1/(sᵀq)`: the BFGS update of the inverse
/// Hessian, on the leading `d × d` block.
fn bfgs_update(
    hinv: &mut [[f64; MAX_DIMS]; MAX_DIMS],
    s: &[f64; MAX_DIMS],
    q: &[f64; MAX_DIMS],
    sq: f64,
    d: usize,
) {
    let rho = 1.0 / sq;
    // hq = H q, qhq = qᵀ H q.
    let mut hq = [0.0f64; MAX_DIMS];
    for (k, v) in hq.iter_mut().enumerate().take(d) {
        if let Some(row) = hinv.get(k) {
            *v = row.iter().zip(q).take(d).map(|(a, b)| a * b).sum();
        }
    }
    let qhq: f64 = q.iter().zip(&hq).take(d).map(|(a, b)| a * b).sum();
    for (a, row) in hinv.iter_mut().enumerate().take(d) {
        for (b, v) in row.iter_mut().enumerate().take(d) {
            let (sa, sb) = (
                s.get(a).copied().unwrap_or(0.0),
                s.get(b).copied().unwrap_or(0.0),
            );
            let (ha, hb) = (
                hq.get(a).copied().unwrap_or(0.0),
                hq.get(b).copied().unwrap_or(0.0),
            );
            *v += (1.0 + rho * qhq) * rho * sa * sb - rho * (ha * sb + sa * hb);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::cv::tests::reference_loo;
    use crate::testing::lcg;
    use std::vec::Vec;

    /// The per-dimension objective written plainly in `f64`: CV at bandwidths `h`.
    fn reference(h: &[f64], x: &[f32], y: &[f32]) -> f64 {
        let d = h.len();
        let n = x.len() / d;
        let mut total = 0.0;
        for i in 0..n {
            let s: Vec<f64> = (0..n)
                .map(|j| {
                    -(0..d)
                        .map(|k| {
                            (f64::from(x[i * d + k]) - f64::from(x[j * d + k])).powi(2)
                                / (2.0 * h[k] * h[k])
                        })
                        .sum::<f64>()
                })
                .collect();
            let m = (0..n)
                .filter(|&j| j != i)
                .map(|j| s[j])
                .fold(f64::NEG_INFINITY, f64::max);
            let (mut sw, mut swy) = (0.0, 0.0);
            for j in (0..n).filter(|&j| j != i) {
                let w = (s[j] - m).exp();
                sw += w;
                swy += w * f64::from(y[j]);
            }
            total += (f64::from(y[i]) - swy / sw).powi(2);
        }
        total / n as f64
    }

    /// `n` samples in 3-D: `y = sin(4 x_1) + x_2² + noise`, `x_3` irrelevant and on another scale.
    fn data3(seed: u64, n: usize) -> (Vec<f32>, Vec<f32>) {
        let mut r = lcg(seed);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let (a, b, c) = (r(), r(), 10.0 * r());
            x.extend([a, b, c]);
            y.push((4.0 * a).sin() + b * b + 0.1 * (r() - 0.5));
        }
        (x, y)
    }

    /// Value against the `f64` reference and gradient against central differences of it in
    /// `θ = ln h` (step 1e-4), at several bandwidths. Checked to fail with the gradient's sign
    /// flipped, with `u_k` not divided by `h_k²`, and (at `h = [1e-3, 1e-3, 1e-2]`, where the
    /// nearest sample has all the weight) with the responses centred on `y_i` instead of on
    /// the nearest sample's response (-2.5e-5 against 2e-13: the two parts cancel in `f32`).
    #[test]
    fn gradient_matches_central_differences() {
        let (x, y) = data3(3, 80);
        let (xr, yr) = (Rows::new(&x, 3).unwrap(), Rows::new(&y, 1).unwrap());
        for h in [
            [0.1f32, 0.2, 3.0],
            [0.05, 0.5, 30.0],
            [0.3, 0.1, 1.0],
            [1e-3, 1e-3, 1e-2],
        ] {
            let mut g = [0.0f64; 3];
            let got = loo_cv_diagonal(&h, xr, yr, Some(&mut g)).unwrap();
            let hd: Vec<f64> = h.iter().map(|v| f64::from(*v)).collect();
            let want = reference(&hd, &x, &y);
            assert!((got - want).abs() <= 1e-5 * want, "{h:?}: {got} vs {want}");
            assert_eq!(loo_cv_diagonal(&h, xr, yr, None).unwrap(), got);
            for k in 0..3 {
                let e = 1e-4;
                let mut a = hd.clone();
                let mut b = hd.clone();
                a[k] *= f64::exp(e);
                b[k] *= f64::exp(-e);
                let fd = (reference(&a, &x, &y) - reference(&b, &x, &y)) / (2.0 * e);
                let scale = g
                    .iter()
                    .chain([&fd])
                    .fold(1e-3 * want, |m, v| m.max(v.abs()));
                assert!(
                    (g[k] - fd).abs() <= 1e-3 * scale,
                    "{h:?} k {k}: {} vs {fd}",
                    g[k]
                );
            }
        }
        // Two response columns (the second offset by 1e3, which centring on the nearest sample
        // keeps from swamping the sums): the mean of the two one-column objectives, over 150
        // samples (tiles of 64 and blocks of 4 queries, both with a partial last one).
        let (x2, y1) = data3(4, 150);
        let y2: Vec<f32> = y1.iter().flat_map(|v| [*v, 1e3 + 2.0 * v]).collect();
        let col2: Vec<f32> = y2.iter().skip(1).step_by(2).copied().collect();
        let xr2 = Rows::new(&x2, 3).unwrap();
        for h in [[0.1f32, 0.2, 3.0], [0.02, 0.03, 0.5]] {
            let hd: Vec<f64> = h.iter().map(|v| f64::from(*v)).collect();
            let got = loo_cv_diagonal(&h, xr2, Rows::new(&y2, 2).unwrap(), None).unwrap();
            let want = 0.5 * (reference(&hd, &x2, &y1) + reference(&hd, &x2, &col2));
            assert!((got - want).abs() <= 1e-5 * want, "{h:?}: {got} vs {want}");
        }
        // The 1-D objective at equal bandwidths in one dimension.
        let x1: Vec<f32> = x.iter().step_by(3).copied().collect();
        let one = loo_cv_diagonal(&[0.1], Rows::new(&x1, 1).unwrap(), yr, None).unwrap();
        assert!((one - reference_loo(f64::from(0.1f32), &x1, 1, &y, 1)).abs() < 1e-5 * one);
    }

    #[test]
    fn bad_input_is_rejected() {
        let x = [0.0f32, 1.0, 2.0, 3.0];
        let (xr, yr) = (Rows::new(&x, 2).unwrap(), Rows::new(&x[..2], 1).unwrap());
        let shape = |e, f| {
            Err(Error::Shape {
                what: Dim::Width,
                expected: e,
                found: f,
            })
        };
        assert_eq!(loo_cv_diagonal(&[1.0], xr, yr, None), shape(2, 1));
        assert_eq!(
            loo_cv_diagonal(&[1.0, 1.0], xr, yr, Some(&mut [0.0])),
            shape(2, 1)
        );
        assert_eq!(
            loo_cv_diagonal(&[1.0, 0.0], xr, yr, None),
            Err(Error::InvalidBandwidth)
        );
        assert_eq!(
            select_bandwidths(xr, yr, &mut [0.0; 3], &Search::default()),
            shape(2, 3)
        );
        let wide = [0.0f32; 34];
        assert_eq!(
            loo_cv_diagonal(&[1.0; 17], Rows::new(&wide, 17).unwrap(), yr, None),
            Err(Error::CapacityExceeded)
        );
        let nan = [0.0f32, f32::NAN, 2.0, 3.0];
        assert_eq!(
            loo_cv_diagonal(&[1.0, 1.0], Rows::new(&nan, 2).unwrap(), yr, None),
            Err(Error::NonFinite)
        );
        assert_eq!(
            DiagonalGaussian::new([1.0, -1.0]),
            Err(Error::InvalidBandwidth)
        );
    }

    /// The kernel's SIMD scores against its scalar definition at every row count through two
    /// blocks, and in a `Smoother`.
    #[test]
    fn diagonal_kernel_scores_and_smooths() {
        let k = DiagonalGaussian::new([0.3, 2.0, 0.7]).unwrap();
        let mut r = lcg(2);
        for rows in 0..=19 {
            let keys: Vec<f32> = (0..rows * 3).map(|_| r() * 4.0 - 2.0).collect();
            let q = [0.1, -0.4, 1.3];
            let mut out = std::vec![f32::NAN; rows];
            k.scores(&q, &keys, &mut out);
            for (o, x) in out.iter().zip(keys.chunks_exact(3)) {
                let want: f64 = (0..3)
                    .map(|j| {
                        -(f64::from(q[j]) - f64::from(x[j])).powi(2)
                            / (2.0 * f64::from(k.bandwidths()[j]).powi(2))
                    })
                    .sum();
                assert!(
                    (f64::from(*o) - want).abs() <= 1e-6 * (1.0 + want.abs()),
                    "{o} vs {want}"
                );
            }
        }
        let mut s: crate::Smoother<DiagonalGaussian<3>, 8, 3, 1> = crate::Smoother::new(k);
        s.push([0.0, 0.0, 0.0], [1.0]).unwrap();
        s.push([1.0, 0.0, 0.0], [3.0]).unwrap();
        let y = s.predict(&[0.5, 5.0, 0.0]).unwrap();
        assert!((y[0] - 2.0).abs() < 1e-6);
    }

    /// N = 500, D = 3, `x_3` irrelevant: its bandwidth ends at least 1e3 times its spread, and
    /// the CV is within 1e-5 relative of the plain `f64` objective at the result.
    #[test]
    fn irrelevant_dimension_gets_a_huge_bandwidth() {
        let (x, y) = data3(1, 500);
        let (xr, yr) = (Rows::new(&x, 3).unwrap(), Rows::new(&y, 1).unwrap());
        let mut h = [0.0f32; 3];
        let cv = select_bandwidths(xr, yr, &mut h, &Search::default()).unwrap();
        let spread3 = column_variance([&x, &[]], 3, 2).sqrt();
        std::println!("h {h:?} cv {cv} spread3 {spread3}");
        assert!(f64::from(h[2]) >= 1e3 * spread3, "{h:?}");
        assert!(h[0] < 1.0 && h[1] < 2.0, "{h:?}");
        let hd: Vec<f64> = h.iter().map(|v| f64::from(*v)).collect();
        let want = reference(&hd, &x, &y);
        assert!((cv - want).abs() <= 1e-5 * want, "{cv} vs {want}");
    }

    /// The selector's CV at or below the best point of a coarse 3-D `f64` grid (7 bandwidths per
    /// axis from σ/100 to 10σ, and the cap), up to [`CAP_TOLERANCE`].
    #[test]
    fn selector_beats_a_coarse_grid() {
        let (x, y) = data3(5, 150);
        let (xr, yr) = (Rows::new(&x, 3).unwrap(), Rows::new(&y, 1).unwrap());
        let mut h = [0.0f32; 3];
        let cv = select_bandwidths(xr, yr, &mut h, &Search::default()).unwrap();
        let sig: Vec<f64> = (0..3)
            .map(|k| column_variance([&x, &[]], 3, k).sqrt())
            .collect();
        let axis = |k: usize| -> Vec<f64> {
            let mut v: Vec<f64> = (0..7)
                .map(|e| sig[k] * 10f64.powf(-2.0 + 0.5 * e as f64))
                .collect();
            v.push(sig[k] * 1e6);
            v
        };
        let mut best = f64::INFINITY;
        for a in axis(0) {
            for b in axis(1) {
                for c in axis(2) {
                    best = best.min(reference(&[a, b, c], &x, &y));
                }
            }
        }
        let hd: Vec<f64> = h.iter().map(|v| f64::from(*v)).collect();
        let ours = reference(&hd, &x, &y);
        std::println!("ours {ours} at {h:?}, grid {best}");
        assert!(
            ours <= best * (1.0 + CAP_TOLERANCE),
            "{ours} vs grid {best}"
        );
        assert!((cv - ours).abs() <= 1e-5 * ours);
    }
}

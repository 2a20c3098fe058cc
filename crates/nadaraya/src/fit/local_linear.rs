//! Local-linear regression: weighted least squares of `y` on `[1, x - q]` at each query.

use crate::softmax::TILE;
use crate::{Dim, Error, Kernel, Rows, RowsMut, simd};

/// The largest input width `D` and value width `DV` of a local-linear fit (the moments live in
/// stack arrays of this size); wider operands are [`Error::CapacityExceeded`].
pub const MAX_DIM: usize = 16;

/// The smallest Cholesky pivot (squared) of the weighted covariance of `x` scaled to unit
/// diagonal that [`local_linear`] accepts; below it the design is [`Error::Singular`].
///
/// The pivot `j` is `1 - R²_j`, the fraction of the weighted variance of coordinate `j` not
/// explained linearly by the coordinates before it. The weights are known to about `1e-7`
/// relative (`f32` scores and exponential), so below `1e-6` a rounding-level change of them
/// could change the slope by order one.
pub const MIN_PIVOT: f64 = 1e-6;

/// A contiguous run of sample rows: keys (row width `D`) and values (row width `DV`).
pub(crate) type Run<'a> = (&'a [f32], &'a [f32]);

/// Which linear smoother: the local constant (Nadaraya–Watson) or the local-linear fit.
///
/// Both are linear in the responses, `ŷ(q) = Σ l_i(q) y_i`, which is what
/// [`standard_error`](crate::fit::standard_error) uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Fit {
    /// `ŷ(q) = Σ w_i y_i / Σ w_i`, the weighted average ([`crate::attention`],
    /// [`crate::Smoother::predict`]).
    NadarayaWatson,
    /// The weighted least-squares line at `q` ([`local_linear`]).
    LocalLinear,
}

/// The weighted moments of one query's fit, relative to its reference sample, and the solved
/// local model.
pub(crate) struct Local {
    d: usize,
    dv: usize,
    linear: bool,
    /// The largest score.
    pub(crate) m: f32,
    /// The reference sample (a sample of weight 1).
    pub(crate) xr: [f32; MAX_DIM],
    yr: [f32; MAX_DIM],
    /// `S = Σ w_i`.
    pub(crate) s: f64,
    /// `d̄`, the weighted mean of `x - x_r`.
    pub(crate) dbar: [f64; MAX_DIM],
    ebar: [f64; MAX_DIM],
    /// The covariance, then its Cholesky factor (lower) of the equilibrated matrix.
    l: [[f64; MAX_DIM]; MAX_DIM],
    /// `1 / sqrt(M_jj)`.
    r: [f64; MAX_DIM],
    /// `Σ w d eᵀ`, then the slope `β` (`[j][c] = ∂ŷ_c/∂q_j`).
    beta: [[f64; MAX_DIM]; MAX_DIM],
}

/// Calls `f(x_row, y_row, score)` for every sample of `runs`, scores computed in tiles, and
/// with the tile's scores replaced by `exp(s - m)` first when `m` is given.
#[inline]
pub(crate) fn for_each<K: Kernel + ?Sized>(
    kernel: &K,
    q: &[f32],
    runs: &[Run<'_>],
    dv: usize,
    shift: Option<f32>,
    mut f: impl FnMut(&[f32], &[f32], f32) -> Result<(), Error>,
) -> Result<(), Error> {
    let d = q.len();
    if d == 0 || dv == 0 {
        return Err(Error::ZeroDimension);
    }
    let mut buf = [0.0f32; TILE];
    let (kc, vc) = (TILE.saturating_mul(d), TILE.saturating_mul(dv));
    for (keys, values) in runs {
        let mut value_tiles = values.chunks(vc);
        for kt in keys.chunks(kc) {
            let Some(vt) = value_tiles.next() else { break };
            let rows = (kt.len() / d).min(vt.len() / dv).min(TILE);
            let Some(s) = buf.get_mut(..rows) else { break };
            kernel.scores(q, kt, s);
            if let Some(m) = shift {
                simd::exp_shift_sum(s, m);
            }
            for ((xr, yr), &si) in kt.chunks_exact(d).zip(vt.chunks_exact(dv)).zip(s.iter()) {
                f(xr, yr, si)?;
            }
        }
    }
    Ok(())
}

impl Local {
    /// The fit at `q` over the samples of `runs` (shapes and finiteness checked by the caller,
    /// `q.len() ≤ MAX_DIM`, `dv ≤ MAX_DIM`). `linear: false` is the local constant fit.
    ///
    /// Errors as found: `ScoreOverflow` (a NaN or `+inf` score), `NoSupport` (no sample of
    /// positive weight), `Singular`; the caller names a non-finite input with `diagnose`.
    #[inline]
    pub(crate) fn fit<K: Kernel + ?Sized>(
        kernel: &K,
        q: &[f32],
        runs: &[Run<'_>],
        dv: usize,
        linear: bool,
    ) -> Result<Self, Error> {
        let d = q.len();
        let mut me = Self {
            d,
            dv,
            linear,
            m: f32::NEG_INFINITY,
            xr: [0.0; MAX_DIM],
            yr: [0.0; MAX_DIM],
            s: 0.0,
            dbar: [0.0; MAX_DIM],
            ebar: [0.0; MAX_DIM],
            l: [[0.0; MAX_DIM]; MAX_DIM],
            r: [0.0; MAX_DIM],
            beta: [[0.0; MAX_DIM]; MAX_DIM],
        };
        // Pass 1: the largest score and a sample that attains it. A score of -inf is no weight.
        let (mut m, mut xr, mut yr) = (f32::NEG_INFINITY, [0.0f32; MAX_DIM], [0.0f32; MAX_DIM]);
        for_each(kernel, q, runs, dv, None, |x, y, s| {
            // False for NaN and +inf.
            #[allow(clippy::neg_cmp_op_on_partial_ord)]
            if !(s < f32::INFINITY) {
                return Err(Error::ScoreOverflow);
            }
            if s > m {
                m = s;
                for (a, b) in xr.iter_mut().zip(x) {
                    *a = *b;
                }
                for (a, b) in yr.iter_mut().zip(y) {
                    *a = *b;
                }
            }
            Ok(())
        })?;
        if m == f32::NEG_INFINITY {
            return Err(Error::NoSupport);
        }
        me.m = m;
        me.xr = xr;
        me.yr = yr;
        // Pass 2: the weighted sums of the offsets from the reference sample, in f64.
        let (mut s, mut sd, mut se) = (0.0f64, [0.0f64; MAX_DIM], [0.0f64; MAX_DIM]);
        let (sdd, sde) = (&mut me.l, &mut me.beta);
        if d == 1 && dv == 1 {
            // The common scalar case in registers: the same sums, in the same order.
            let (x0, y0) = (f64::from(xr[0]), f64::from(yr[0]));
            let (mut s1, mut d1, mut dd1, mut e1, mut de1) = (0.0f64, 0.0, 0.0, 0.0, 0.0);
            for_each(kernel, q, runs, dv, Some(m), |x, y, w| {
                if let (Some(&xi), Some(&yi), true) = (x.first(), y.first(), w != 0.0) {
                    let w = f64::from(w);
                    let (di, ei) = (f64::from(xi) - x0, f64::from(yi) - y0);
                    s1 += w;
                    e1 += w * ei;
                    let wd = w * di;
                    d1 += wd;
                    dd1 += wd * di;
                    de1 += wd * ei;
                }
                Ok(())
            })?;
            s = s1;
            se[0] = e1;
            if linear {
                (sd[0], sdd[0][0], sde[0][0]) = (d1, dd1, de1);
            }
        } else {
            Self::sums(
                kernel,
                q,
                runs,
                (d, dv, m, linear),
                (&xr, &yr),
                (&mut s, &mut sd, &mut se),
                (sdd, sde),
            )?;
        }
        me.s = s;
        for (a, &b) in me.ebar.iter_mut().zip(&se) {
            *a = b / s;
        }
        if linear {
            me.solve_slope(&sd)?;
        }
        Ok(me)
    }

    /// Pass 2 for any `D`, `DV`: the weighted sums of the offsets from the reference sample.
    #[inline(never)]
    fn sums<K: Kernel + ?Sized>(
        kernel: &K,
        q: &[f32],
        runs: &[Run<'_>],
        (d, dv, m, linear): (usize, usize, f32, bool),
        (xr, yr): (&[f32; MAX_DIM], &[f32; MAX_DIM]),
        (s, sd, se): (&mut f64, &mut [f64; MAX_DIM], &mut [f64; MAX_DIM]),
        (sdd, sde): (
            &mut [[f64; MAX_DIM]; MAX_DIM],
            &mut [[f64; MAX_DIM]; MAX_DIM],
        ),
    ) -> Result<(), Error> {
        for_each(kernel, q, runs, dv, Some(m), |x, y, w| {
            if w == 0.0 {
                return Ok(());
            }
            let w = f64::from(w);
            *s += w;
            let mut e = [0.0f64; MAX_DIM];
            for ((t, a), b) in e.iter_mut().zip(y).zip(yr) {
                *t = f64::from(*a) - f64::from(*b);
            }
            for (acc, &ec) in se.iter_mut().zip(&e).take(dv) {
                *acc += w * ec;
            }
            if linear {
                let mut dd = [0.0f64; MAX_DIM];
                for ((t, a), b) in dd.iter_mut().zip(x).zip(xr) {
                    *t = f64::from(*a) - f64::from(*b);
                }
                for (((acc, row), crow), &dj) in sd
                    .iter_mut()
                    .zip(sdd.iter_mut())
                    .zip(sde.iter_mut())
                    .zip(&dd)
                    .take(d)
                {
                    let wd = w * dj;
                    *acc += wd;
                    for (a, &dk) in row.iter_mut().zip(&dd).take(d) {
                        *a += wd * dk;
                    }
                    for (a, &ec) in crow.iter_mut().zip(&e).take(dv) {
                        *a += wd * ec;
                    }
                }
            }
            Ok(())
        })
    }

    /// From the raw sums in `l` (`Σ w d dᵀ`) and `beta` (`Σ w d eᵀ`): `d̄`, the equilibrated
    /// Cholesky factor of `M` and the slope `β = M⁻¹ C`.
    #[inline(never)]
    fn solve_slope(&mut self, sd: &[f64; MAX_DIM]) -> Result<(), Error> {
        let (d, dv, s) = (self.d, self.dv, self.s);
        for (a, &b) in self.dbar.iter_mut().zip(sd) {
            *a = b / s;
        }
        let (dbar, ebar) = (self.dbar, self.ebar);
        // M = Σ w d dᵀ / S - d̄ d̄ᵀ, C = Σ w d eᵀ / S - d̄ ēᵀ.
        for ((row, crow), &dj) in self
            .l
            .iter_mut()
            .zip(self.beta.iter_mut())
            .zip(&dbar)
            .take(d)
        {
            for (a, &dk) in row.iter_mut().zip(&dbar).take(d) {
                *a = *a / s - dj * dk;
            }
            for (a, &ec) in crow.iter_mut().zip(&ebar).take(dv) {
                *a = *a / s - dj * ec;
            }
        }
        // Equilibrate: r_j = 1/sqrt(M_jj). A zero spread (exactly: every offset 0) is singular.
        for (j, (rj, row)) in self.r.iter_mut().zip(self.l.iter()).enumerate().take(d) {
            let mjj = row.get(j).copied().unwrap_or(0.0);
            #[allow(clippy::neg_cmp_op_on_partial_ord)]
            if !(mjj > 0.0 && mjj.is_finite()) {
                return Err(Error::Singular);
            }
            *rj = 1.0 / libm::sqrt(mjj);
        }
        let r = self.r;
        for (row, &rj) in self.l.iter_mut().zip(&r).take(d) {
            for (a, &rk) in row.iter_mut().zip(&r).take(d) {
                *a *= rj * rk;
            }
        }
        // Cholesky in place (lower triangle), pivots checked against MIN_PIVOT.
        for j in 0..d.min(MAX_DIM) {
            let (before, rest) = self.l.split_at_mut(j);
            let Some(lj) = rest.first_mut() else { break };
            for (k, lk) in before.iter().enumerate() {
                let dot: f64 = lj.iter().zip(lk).take(k).map(|(a, b)| a * b).sum();
                let lkk = lk.get(k).copied().unwrap_or(1.0);
                if let Some(a) = lj.get_mut(k) {
                    *a = (*a - dot) / lkk;
                }
            }
            let dot: f64 = lj.iter().take(j).map(|a| a * a).sum();
            let p = lj.get(j).copied().unwrap_or(0.0) - dot;
            #[allow(clippy::neg_cmp_op_on_partial_ord)]
            if !(p >= MIN_PIVOT) {
                return Err(Error::Singular);
            }
            if let Some(a) = lj.get_mut(j) {
                *a = libm::sqrt(p);
            }
        }
        // β_c = R A⁻¹ R C_c for each value column.
        for c in 0..dv.min(MAX_DIM) {
            let mut b = [0.0f64; MAX_DIM];
            for ((bj, crow), &rj) in b.iter_mut().zip(&self.beta).zip(&r).take(d) {
                *bj = crow.get(c).copied().unwrap_or(0.0) * rj;
            }
            self.cholesky_solve(&mut b);
            for ((crow, &bj), &rj) in self.beta.iter_mut().zip(&b).zip(&r).take(d) {
                if let Some(a) = crow.get_mut(c) {
                    *a = bj * rj;
                }
            }
        }
        Ok(())
    }

    /// `b ← A⁻¹ b` for the equilibrated factor `A = L Lᵀ`.
    fn cholesky_solve(&self, b: &mut [f64; MAX_DIM]) {
        let d = self.d.min(MAX_DIM);
        for j in 0..d {
            let (Some(row), Some(&bj)) = (self.l.get(j), b.get(j)) else {
                return;
            };
            let dot: f64 = row.iter().zip(b.iter()).take(j).map(|(a, x)| a * x).sum();
            let ljj = row.get(j).copied().unwrap_or(1.0);
            if let Some(x) = b.get_mut(j) {
                *x = (bj - dot) / ljj;
            }
        }
        for j in (0..d).rev() {
            let mut acc = b.get(j).copied().unwrap_or(0.0);
            for k in j + 1..d {
                let lkj = self.l.get(k).and_then(|r| r.get(j)).copied().unwrap_or(0.0);
                acc -= lkj * b.get(k).copied().unwrap_or(0.0);
            }
            let ljj = self.l.get(j).and_then(|r| r.get(j)).copied().unwrap_or(1.0);
            if let Some(x) = b.get_mut(j) {
                *x = acc / ljj;
            }
        }
    }

    /// `t = q - x_r - d̄`, the query relative to the weighted mean location.
    pub(crate) fn centred(&self, q: &[f32]) -> [f64; MAX_DIM] {
        let mut t = [0.0f64; MAX_DIM];
        if self.linear {
            for (((t, &qj), &xj), &dj) in t.iter_mut().zip(q).zip(&self.xr).zip(&self.dbar) {
                *t = (f64::from(qj) - f64::from(xj)) - dj;
            }
        }
        t
    }

    /// `g = M⁻¹ t`: the local-linear weights are `l_i = w_i (1 + (d_i - d̄)ᵀ g) / S`.
    pub(crate) fn leverage_direction(&self, q: &[f32]) -> [f64; MAX_DIM] {
        let mut g = self.centred(q);
        if !self.linear {
            return g;
        }
        for (gj, &rj) in g.iter_mut().zip(&self.r) {
            *gj *= rj;
        }
        self.cholesky_solve(&mut g);
        for (gj, &rj) in g.iter_mut().zip(&self.r) {
            *gj *= rj;
        }
        g
    }

    /// The fitted value of component `c` at `q`, in `f64`.
    #[inline]
    pub(crate) fn value(&self, q: &[f32], c: usize) -> f64 {
        let t = self.centred(q);
        let mut v = f64::from(self.yr.get(c).copied().unwrap_or(0.0))
            + self.ebar.get(c).copied().unwrap_or(0.0);
        if self.linear {
            for (row, &tj) in self.beta.iter().zip(&t).take(self.d) {
                v += row.get(c).copied().unwrap_or(0.0) * tj;
            }
        }
        v
    }

    /// The fitted values at `q` into `out[..dv]`, or `Overflow` if one rounds beyond `f32`.
    #[inline]
    pub(crate) fn write(&self, q: &[f32], out: &mut [f32]) -> Result<(), Error> {
        for (c, o) in out.iter_mut().enumerate().take(self.dv) {
            let v = self.value(q, c) as f32;
            if !v.is_finite() {
                return Err(Error::Overflow);
            }
            *o = v;
        }
        Ok(())
    }

    /// The slope `∂ŷ_c/∂q_j` into row `j` of `slope` (width `dv`).
    pub(crate) fn write_slope(&self, slope: &mut RowsMut<'_>) -> Result<(), Error> {
        for (srow, brow) in slope.iter_mut().zip(&self.beta) {
            for (o, &b) in srow.iter_mut().zip(brow) {
                let v = b as f32;
                if !v.is_finite() {
                    return Err(Error::Overflow);
                }
                *o = v;
            }
        }
        Ok(())
    }
}

/// Shape checks shared by the entry points: `Ok((d, dv))`.
pub(crate) fn check_shapes(qw: usize, x: Rows<'_>, y: Rows<'_>) -> Result<(usize, usize), Error> {
    let (d, dv) = (x.width(), y.width());
    if qw != d {
        return Err(Error::Shape {
            what: Dim::QueryWidth,
            expected: d,
            found: qw,
        });
    }
    if y.len() != x.len() {
        return Err(Error::Shape {
            what: Dim::ValueRows,
            expected: x.len(),
            found: y.len(),
        });
    }
    if d > MAX_DIM || dv > MAX_DIM {
        return Err(Error::CapacityExceeded);
    }
    Ok((d, dv))
}

/// The fit at `q` over the rows of `x`, `y`, with the errors named (`diagnose`).
fn fit_checked<K: Kernel + ?Sized>(
    kernel: &K,
    q: &[f32],
    x: Rows<'_>,
    y: Rows<'_>,
    linear: bool,
) -> Result<Local, Error> {
    let (_, dv) = check_shapes(q.len(), x, y)?;
    if x.is_empty() {
        return Err(Error::Empty);
    }
    let (xs, ys) = (x.as_slice(), y.as_slice());
    if !(simd::all_finite(q) && simd::all_finite(xs) && simd::all_finite(ys)) {
        return Err(Error::NonFinite);
    }
    Local::fit(kernel, q, &[(xs, ys)], dv, linear)
}

/// The local-linear fit at the query `q`: the value at `q` of the weighted least-squares line
/// (hyperplane) of `y` on `[1, x - q]`, weights `w_i = exp(s_i - max s)` from `kernel`'s scores,
/// into `out[..DV]` (`DV = y.width()`, every value column fitted under the same weights).
///
/// Reproduces exactly linear data at every query (boundary included, where Nadaraya–Watson is
/// biased). The algorithm, its accuracy (measured within `1.2e-7` of the responses' magnitude of
/// an `f64` reference on well-conditioned designs) and its cost (two passes, `O(N·D·(D + DV))`)
/// follow.
///
/// A score of `-inf` is no weight (a compact kernel's outside); the result does not depend on
/// the samples' order beyond rounding, and its verdict not at all.
///
/// Nadaraya–Watson smoothing fits a constant under the kernel weights, so at the edge of the
/// data, where the weights are one-sided, it is biased towards the interior. Local-linear
/// regression (statsmodels' and R np's `ll`) fits a line (a hyperplane for `D > 1`) under the
/// same weights and reads off its value at the query: exactly linear data is reproduced at every
/// query, boundary included.
///
/// # How it is computed
/// For a query `q` the scores `s_i` come from [`Kernel::scores`] in tiles of 64 rows, as
/// everywhere in the crate. Two passes over the samples, no heap:
/// 1. the largest score `m` and a *reference sample* `(x_r, y_r)` that attains it (its weight
///    is exactly 1);
/// 2. the weights `w_i = exp(s_i - m)` (the stable softmax's own exponential), and in `f64` the
///    sums `S = Σ w_i`, `Σ w_i d_i`, `Σ w_i d_i d_iᵀ`, `Σ w_i e_i`, `Σ w_i d_i e_iᵀ` of the
///    offsets `d_i = x_i - x_r`, `e_i = y_i - y_r` from the reference sample (differences of two
///    `f32`, exact in `f64` for magnitudes within `2^29` of each other).
///
/// Then the weighted means `d̄`, `ē`, the weighted covariance `M = Σ w d dᵀ / S - d̄ d̄ᵀ` and the
/// cross-covariance `C = Σ w d eᵀ / S - d̄ ēᵀ`. Because the reference sample carries weight 1,
/// `|d̄_j|² ≤ S·M_jj`: forming `M` from the raw sums loses at most a factor `1 + S ≤ 1 + N` to
/// cancellation, however far the data sit from the origin (x around `1e6` with a spread of
/// `1e-2` is as accurate as x around 0). The slope is `β = M⁻¹ C`, solved by a Cholesky
/// factorisation of `M` equilibrated to unit diagonal; the fit is
/// `ŷ(q) = y_r + ē + βᵀ (q - x_r - d̄)`.
///
/// # Singular designs
/// No ridge: a design that does not determine a line is [`Error::Singular`], never a silent
/// answer. That is: a coordinate whose weighted spread is exactly zero (all the weight on one
/// location in it, for example a compact kernel with one sample in its support, or every weight
/// but one flushed to 0), or a Cholesky pivot of the unit-diagonal covariance below
/// [`MIN_PIVOT`] (weight on at most `D` points, or collinear samples: one coordinate is a linear
/// function of the others to within about `1e-6` of its spread).
///
/// # Accuracy
/// Measured against an `f64` reference that computes the scores and weights in `f64` and solves
/// the `(D + 1)`-square normal equations by Gaussian elimination with partial pivoting (the
/// unit tests): the error is that of rounding the scores to `f32` and the weights' exponential
/// (about `1e-7·(1 + |s_i - m|)` relative per weight), carried through the solve. On random data
/// (`D = 1, 2, 3`, `N = 50`, interior and boundary queries, `h` from a tenth to twice the
/// spread) the worst error measured was `1.2e-7` of the responses' largest magnitude (the
/// tests hold it to `1e-6`); exactly linear data (`y = 3 - 2x`, `x` in `[0, 1]`, queries at and
/// beyond both edges) are reproduced to `2.3e-8`; near-collinear 2-D designs (the second
/// coordinate the first plus uniform noise of width `ε` from `0.1` down to `5e-4`, pivots
/// approaching [`MIN_PIVOT`]) stayed within `2.8e-7` (the worst: `ε = 1e-3`, a corner query),
/// and at `ε = 5e-4` two of three queries are `Singular` (test `near_collinear_accuracy`); a
/// leave-one-out objective is within `1e-8` relative of its reference (`cargo test -p nadaraya --lib local_linear -- --nocapture` prints
/// the figures).
///
/// # Cost
/// Per query: two score passes (`2·N·D` kernel work) and `N·(D² + D·DV + DV)` `f64`
/// multiply-adds (`D = DV = 1` has its own pass in registers), plus an `O(D³ + D²·DV)` solve;
/// stack: about `6.5 KiB` (three `MAX_DIM × MAX_DIM` `f64` arrays). Measured instruction counts
/// (x86-64, default build; `cargo build --release -p nadaraya --example icount_ll`, then
/// `valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/icount_ll
/// N D R MODE` for `R = 1, 3`, the difference halved): one query over `N = 4096` samples costs
/// 0.32 M instructions for `D = 1` (78 per sample) and 1.49 M for `D = 4` (365 per sample);
/// [`loo_cv_local_linear`] over `N = 1000`, `D = 1` costs 82 M (82 per pair `(i, j)`);
/// [`standard_error`](crate::fit::standard_error) of one query over 4096 samples 0.57 M.
///
/// # Errors
/// - [`Error::Shape`] with [`Dim::QueryWidth`] if `q.len() != x.width()`, with
///   [`Dim::ValueRows`] if `y` has not one row per row of `x`;
/// - [`Error::CapacityExceeded`] if `x.width()` or `y.width()` exceeds [`MAX_DIM`];
/// - [`Error::OutputTooSmall`] if `out.len() < y.width()`;
/// - [`Error::Empty`] if there are no samples;
/// - [`Error::NoSupport`] if every score is `-inf` (no sample in a compact kernel's support);
/// - [`Error::NonFinite`] if `q`, `x` or `y` holds a NaN or an infinity;
/// - [`Error::ScoreOverflow`] if a score is NaN or `+inf`;
/// - [`Error::Singular`] if the weighted design does not determine a line (see "Singular designs" above:
///   all weight on at most `D` points, collinear samples, one sample in a compact support);
/// - [`Error::Overflow`] if a fitted value rounds beyond `±f32::MAX`.
///
/// # Examples
/// Linear data are reproduced, even at the edge of the data:
/// ```
/// use nadaraya::{Gaussian, Rows, fit};
/// let x = Rows::from_arrays(&[[0.0], [1.0], [2.0], [3.0]]);
/// let y = Rows::from_arrays(&[[1.0], [3.0], [5.0], [7.0]]); // y = 1 + 2x
/// let mut out = [0.0];
/// fit::local_linear(&Gaussian::new(1.0)?, &[0.0], x, y, &mut out)?;
/// assert!((out[0] - 1.0).abs() < 1e-5);
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn local_linear<K: Kernel + ?Sized>(
    kernel: &K,
    q: &[f32],
    x: Rows<'_>,
    y: Rows<'_>,
    out: &mut [f32],
) -> Result<(), Error> {
    let (_, dv) = check_shapes(q.len(), x, y)?;
    if out.len() < dv {
        return Err(Error::OutputTooSmall);
    }
    fit_checked(kernel, q, x, y, true)?.write(q, out)
}

/// [`local_linear`], and the fitted hyperplane's slope: row `j` of `slope` (`D` rows of width
/// `DV`) is `∂ŷ/∂q_j`, the local gradient estimate.
///
/// # Errors
/// As [`local_linear`], and [`Error::Shape`] with [`Dim::OutputRows`] if `slope` has not
/// `x.width()` rows, with [`Dim::OutputWidth`] if its width is not `y.width()`.
///
/// # Examples
/// ```
/// use nadaraya::{Gaussian, Rows, RowsMut, fit};
/// let x = Rows::from_arrays(&[[0.0], [1.0], [2.0], [3.0]]);
/// let y = Rows::from_arrays(&[[1.0], [3.0], [5.0], [7.0]]);
/// let (mut out, mut g) = ([0.0], [[0.0]]);
/// fit::local_linear_slope(&Gaussian::new(1.0)?, &[1.5], x, y, &mut out, RowsMut::from_arrays(&mut g))?;
/// assert!((g[0][0] - 2.0).abs() < 1e-5);
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn local_linear_slope<K: Kernel + ?Sized>(
    kernel: &K,
    q: &[f32],
    x: Rows<'_>,
    y: Rows<'_>,
    out: &mut [f32],
    mut slope: RowsMut<'_>,
) -> Result<(), Error> {
    let (d, dv) = check_shapes(q.len(), x, y)?;
    if slope.width() != dv {
        return Err(Error::Shape {
            what: Dim::OutputWidth,
            expected: dv,
            found: slope.width(),
        });
    }
    if slope.len() != d {
        return Err(Error::Shape {
            what: Dim::OutputRows,
            expected: d,
            found: slope.len(),
        });
    }
    if out.len() < dv {
        return Err(Error::OutputTooSmall);
    }
    let fit = fit_checked(kernel, q, x, y, true)?;
    fit.write(q, out)?;
    fit.write_slope(&mut slope)
}

/// [`local_linear`] at every row of `q` (width `D`) into the rows of `out` (width `DV`).
///
/// # Errors
/// - [`Error::Shape`] with [`Dim::QueryWidth`] if `q.width() != x.width()`, [`Dim::ValueRows`]
///   as [`local_linear`], [`Dim::OutputWidth`] if `out.width() != y.width()`,
///   [`Dim::OutputRows`] if `out` has not one row per query;
/// - [`Error::NonFinite`] if any query or sample is not finite (before anything is written);
/// - otherwise the first error of [`local_linear`] over the queries, in order (earlier rows of
///   `out` hold their results).
///
/// # Examples
/// ```
/// use nadaraya::{Gaussian, Rows, RowsMut, fit};
/// let x = Rows::from_arrays(&[[0.0], [1.0], [2.0], [3.0]]);
/// let y = Rows::from_arrays(&[[1.0], [3.0], [5.0], [7.0]]);
/// let mut out = [[0.0]; 2];
/// let q = Rows::from_arrays(&[[0.0], [3.0]]);
/// fit::local_linear_batch(&Gaussian::new(1.0)?, q, x, y, RowsMut::from_arrays(&mut out))?;
/// assert!((out[1][0] - 7.0).abs() < 1e-4);
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn local_linear_batch<K: Kernel + ?Sized>(
    kernel: &K,
    q: Rows<'_>,
    x: Rows<'_>,
    y: Rows<'_>,
    mut out: RowsMut<'_>,
) -> Result<(), Error> {
    let (_, dv) = check_shapes(q.width(), x, y)?;
    if out.width() != dv {
        return Err(Error::Shape {
            what: Dim::OutputWidth,
            expected: dv,
            found: out.width(),
        });
    }
    if out.len() != q.len() {
        return Err(Error::Shape {
            what: Dim::OutputRows,
            expected: q.len(),
            found: out.len(),
        });
    }
    let (xs, ys) = (x.as_slice(), y.as_slice());
    if !(simd::all_finite(q.as_slice()) && simd::all_finite(xs) && simd::all_finite(ys)) {
        return Err(Error::NonFinite);
    }
    if q.is_empty() {
        return Ok(());
    }
    if x.is_empty() {
        return Err(Error::Empty);
    }
    // Row by row rather than a `zip` of the two chunk iterators, whose length computation
    // divides by a chunk size the no-panic proof cannot see is non-zero.
    for (t, qr) in q.iter().enumerate() {
        let Some(o) = out.row_mut(t) else { break };
        local_linear(kernel, qr, x, y, o)?;
    }
    Ok(())
}

/// The runs of `x`, `y` without row `i`: `[(x[..i], y[..i]), (x[i+1..], y[i+1..])]`.
#[inline]
pub(crate) fn without<'a>(x: Rows<'a>, y: Rows<'a>, i: usize) -> [Run<'a>; 2] {
    let n = x.len();
    let part = |r: Rows<'a>, a: usize, b: usize| r.slice(a, b).map_or(&[][..], |s| s.as_slice());
    [
        (part(x, 0, i), part(y, 0, i)),
        (
            part(x, i.saturating_add(1).min(n), n),
            part(y, i.saturating_add(1).min(n), n),
        ),
    ]
}

/// Leave-one-out cross-validation of the local-linear fit: the mean over samples `i` and value
/// components `c` of `(y_ic - ŷ_{-i,c}(x_i))²`, where `ŷ_{-i}` is the local-linear fit computed
/// over the samples without `i` (never the full fit minus a self term).
///
/// Accumulated in `f64` from each fit's `f64` value. Cost: `N` fits over `N - 1` samples,
/// `O(N²·D·(D + DV))`: 82 M instructions for `N = 1000`, `D = DV = 1` (measured as in
/// [`local_linear`]'s docs, mode `loo`).
///
/// A leave-one-out design that is singular makes the objective undefined at that kernel, and
/// that is the verdict: [`Error::Singular`] (or [`Error::NoSupport`] when sample `i` has no
/// neighbour of positive weight). [`select_bandwidth_local_linear`](crate::fit::select_bandwidth_local_linear)
/// treats such bandwidths as infeasible.
///
/// # Errors
/// - [`Error::Shape`] with [`Dim::ValueRows`] if `y` has not one row per row of `x`;
/// - [`Error::CapacityExceeded`] if a width exceeds [`MAX_DIM`];
/// - [`Error::Empty`] if there are fewer than 2 samples;
/// - [`Error::NoSupport`] if a sample has no other sample of positive weight (a compact kernel);
/// - [`Error::NonFinite`] if `x` or `y` holds a NaN or an infinity;
/// - [`Error::ScoreOverflow`], [`Error::Singular`] as [`local_linear`] for some leave-one-out
///   fit;
/// - [`Error::Overflow`] if the mean squared error is not finite.
///
/// # Examples
/// ```
/// use nadaraya::{Gaussian, Rows, fit};
/// let x = Rows::from_arrays(&[[0.0], [1.0], [2.0], [3.0], [4.0]]);
/// let y = Rows::from_arrays(&[[1.0], [3.0], [5.0], [7.0], [9.0]]);
/// let cv = fit::loo_cv_local_linear(&Gaussian::new(1.0)?, x, y)?;
/// assert!(cv < 1e-8); // linear data: every left-out point is predicted
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn loo_cv_local_linear<K: Kernel + ?Sized>(
    kernel: &K,
    x: Rows<'_>,
    y: Rows<'_>,
) -> Result<f64, Error> {
    loo_sum(kernel, x, y, true, |_, _| {})
}

/// Σ over samples of the squared leave-one-out residuals, divided by `N·DV`; `each(i, r)` sees
/// every residual `r = y_ic - ŷ_{-i,c}` of component `c` of sample `i` (in order of `c`).
pub(crate) fn loo_sum<K: Kernel + ?Sized>(
    kernel: &K,
    x: Rows<'_>,
    y: Rows<'_>,
    linear: bool,
    mut each: impl FnMut(usize, f64),
) -> Result<f64, Error> {
    let (_, dv) = check_shapes(x.width(), x, y)?;
    if x.len() < 2 {
        return Err(Error::Empty);
    }
    if !(simd::all_finite(x.as_slice()) && simd::all_finite(y.as_slice())) {
        return Err(Error::NonFinite);
    }
    let mut total = 0.0f64;
    for (i, (xi, yi)) in x.iter().zip(y.iter()).enumerate() {
        let fit = Local::fit(kernel, xi, &without(x, y, i), dv, linear)?;
        for (c, &yc) in yi.iter().enumerate() {
            let r = f64::from(yc) - fit.value(xi, c);
            each(i, r);
            total += r * r;
        }
    }
    let cv = total / (x.len() as f64 * dv as f64);
    if cv.is_finite() {
        Ok(cv)
    } else {
        Err(Error::Overflow)
    }
}

/// Chooses the bandwidth of the kernel family `K` for the local-linear fit by least-squares
/// leave-one-out cross-validation ([`loo_cv_local_linear`]): the rule of thumb
/// ([`rule_of_thumb`](crate::fit::rule_of_thumb)), its [`bracket`](crate::fit::bracket) and the
/// global search [`minimize_log_bandwidth`](crate::fit::minimize_log_bandwidth), as
/// [`select_bandwidth`](crate::fit::select_bandwidth) does for Nadaraya–Watson.
///
/// A bandwidth at which some leave-one-out design is singular (too small an `h`: a left-out
/// point with fewer than `D + 1` neighbours of non-negligible weight), or at which a compact
/// kernel leaves a sample without neighbours ([`Error::NoSupport`]), has no objective value; the
/// search skips it as infeasible, as it skips the bandwidths the family refuses. The result is
/// therefore always a bandwidth at which every leave-one-out fit exists, with its finite score.
///
/// # Errors
/// - [`Error::Shape`], [`Error::CapacityExceeded`], [`Error::Empty`] (fewer than two samples),
///   [`Error::NonFinite`] as [`loo_cv_local_linear`], checked before the search;
/// - if no bandwidth was feasible, [`Error::Singular`] or [`Error::NoSupport`] (a compact kernel
///   leaving a sample without neighbours) when one of them was among the reasons, the first of
///   them met; else the error that made the first bandwidth infeasible.
///
/// # Examples
/// ```
/// use nadaraya::{Gaussian, Rows, fit};
/// let xs: Vec<[f32; 1]> = (0..60).map(|i| [i as f32 / 60.0]).collect();
/// let ys: Vec<[f32; 1]> = xs.iter().map(|x| [(4.0 * x[0]).sin()]).collect();
/// let (k, sel) = fit::select_bandwidth_local_linear::<Gaussian>(
///    Rows::from_arrays(&xs),
///    Rows::from_arrays(&ys),
///    &fit::Search::default(),
/// )?;
/// assert_eq!(k.bandwidth(), sel.bandwidth);
/// assert!(sel.cv.is_finite() && sel.cv < 1e-4);
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn select_bandwidth_local_linear<K: crate::fit::Bandwidth>(
    x: Rows<'_>,
    y: Rows<'_>,
    search: &crate::fit::Search,
) -> Result<(K, crate::fit::Selection), Error> {
    check_shapes(x.width(), x, y)?;
    if x.len() < 2 {
        return Err(Error::Empty);
    }
    if !(simd::all_finite(x.as_slice()) && simd::all_finite(y.as_slice())) {
        return Err(Error::NonFinite);
    }
    let (lo, hi) = crate::fit::bracket(crate::fit::rule_of_thumb(x)?, search);
    // The first reason a bandwidth had no objective value, of those the search cannot know.
    let mut undefined: Option<Error> = None;
    let sel = crate::fit::minimize_log_bandwidth(
        |h| {
            let k = K::with_bandwidth(h)?;
            match loo_cv_local_linear(&k, x, y) {
                // No value: the search skips a non-finite objective and never returns it.
                Err(e @ (Error::Singular | Error::NoSupport)) => {
                    undefined.get_or_insert(e);
                    Ok(f64::INFINITY)
                }
                r => r,
            }
        },
        lo,
        hi,
        search,
    );
    let sel = match (sel, undefined) {
        (Err(_), Some(e)) => return Err(e),
        (r, _) => r?,
    };
    if !sel.cv.is_finite() {
        return Err(undefined.unwrap_or(Error::Overflow));
    }
    Ok((K::with_bandwidth(sel.bandwidth)?, sel))
}

impl<K: Kernel, const N: usize, const D: usize, const DV: usize> crate::Smoother<K, N, D, DV> {
    /// The local-linear fit at `xq` over the stored samples ([`local_linear`]), whatever
    /// where the ring buffer wraps (both runs are passed through, nothing is copied).
    ///
    /// # Errors
    /// [`Error::CapacityExceeded`] if `D` or `DV` exceeds [`MAX_DIM`]; [`Error::Empty`] if no
    /// sample is stored; [`Error::NoSupport`] if none has weight; [`Error::NonFinite`] if `xq` is not finite (stored
    /// samples are finite); [`Error::ScoreOverflow`], [`Error::Singular`], [`Error::Overflow`]
    /// as [`local_linear`].
    ///
    /// # Examples
    /// ```
    /// use nadaraya::{Gaussian, Smoother};
    /// let mut s: Smoother<Gaussian, 8, 1, 1> = Smoother::new(Gaussian::new(1.0)?);
    /// for i in 0..12 {
    ///     s.push_evicting([i as f32], [2.0 * i as f32])?; // the ring wraps
    /// }
    /// let y = s.predict_local_linear(&[11.0])?; // the edge: NW would be biased low
    /// assert!((y[0] - 22.0).abs() < 1e-4);
    /// # Ok::<(), nadaraya::Error>(())
    /// ```
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn predict_local_linear(&self, xq: &[f32; D]) -> Result<[f32; DV], Error> {
        if D > MAX_DIM || DV > MAX_DIM {
            return Err(Error::CapacityExceeded);
        }
        if self.is_empty() {
            return Err(Error::Empty);
        }
        if !simd::all_finite(xq) {
            return Err(Error::NonFinite);
        }
        let mut out = [0.0f32; DV];
        Local::fit(self.kernel(), xq, &self.runs(), DV, true)?.write(xq, &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::Gaussian;
    use crate::testing::{lcg, orders, permute};
    use std::vec::Vec;

    /// Gaussian weights `exp(-|q - x_i|²/(2h²) + max)` computed in `f64` from the definition.
    pub(crate) fn ref_weights(h: f64, q: &[f32], x: &[f32], d: usize) -> Vec<f64> {
        let s: Vec<f64> = x
            .chunks_exact(d)
            .map(|xi| {
                -xi.iter()
                    .zip(q)
                    .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
                    .sum::<f64>()
                    / (2.0 * h * h)
            })
            .collect();
        let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        s.iter().map(|v| (v - m).exp()).collect()
    }

    /// Solves `a z = b` (`n × n`, row-major) by Gaussian elimination with partial pivoting.
    pub(crate) fn gauss_solve(mut a: Vec<f64>, mut b: Vec<f64>, n: usize) -> Vec<f64> {
        for col in 0..n {
            let p = (col..n)
                .max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs()))
                .unwrap();
            for k in 0..n {
                a.swap(col * n + k, p * n + k);
            }
            b.swap(col, p);
            for i in col + 1..n {
                let f = a[i * n + col] / a[col * n + col];
                for k in col..n {
                    a[i * n + k] -= f * a[col * n + k];
                }
                b[i] -= f * b[col];
            }
        }
        let mut z = std::vec![0.0; n];
        for i in (0..n).rev() {
            let s: f64 = (i + 1..n).map(|k| a[i * n + k] * z[k]).sum();
            z[i] = (b[i] - s) / a[i * n + i];
        }
        z
    }

    /// The local-linear fit at `q` in plain `f64` for weights `w`: the normal equations of
    /// `y_c` on `[1, x - q]`, solved by [`gauss_solve`]; returns the intercept per component.
    pub(crate) fn ref_ll(
        w: &[f64],
        q: &[f32],
        x: &[f32],
        y: &[f32],
        d: usize,
        dv: usize,
    ) -> Vec<f64> {
        let n = d + 1;
        let z = |xi: &[f32]| -> Vec<f64> {
            core::iter::once(1.0)
                .chain(xi.iter().zip(q).map(|(a, b)| f64::from(*a) - f64::from(*b)))
                .collect()
        };
        let mut a = std::vec![0.0; n * n];
        for (wi, xi) in w.iter().zip(x.chunks_exact(d)) {
            let zi = z(xi);
            for r in 0..n {
                for c in 0..n {
                    a[r * n + c] += wi * zi[r] * zi[c];
                }
            }
        }
        (0..dv)
            .map(|c| {
                let mut b = std::vec![0.0; n];
                for ((wi, xi), yi) in w.iter().zip(x.chunks_exact(d)).zip(y.chunks_exact(dv)) {
                    for (r, zr) in z(xi).iter().enumerate() {
                        b[r] += wi * zr * f64::from(yi[c]);
                    }
                }
                gauss_solve(a.clone(), b, n)[0]
            })
            .collect()
    }

    fn data(seed: u64, n: usize, d: usize, dv: usize) -> (Vec<f32>, Vec<f32>) {
        let mut r = lcg(seed);
        let x: Vec<f32> = (0..n * d).map(|_| r()).collect();
        let y: Vec<f32> = x
            .chunks_exact(d)
            .flat_map(|xi| {
                let s: f32 = xi.iter().sum();
                (0..dv)
                    .map(|c| libm::sinf(3.0 * s + c as f32) + 0.1 * (c as f32) + 0.2 * r())
                    .collect::<Vec<_>>()
            })
            .collect();
        (x, y)
    }

    fn ll(h: f32, q: &[f32], x: &[f32], y: &[f32], d: usize, dv: usize) -> Result<Vec<f32>, Error> {
        let mut out = std::vec![0.0; dv];
        local_linear(
            &Gaussian::new(h)?,
            q,
            Rows::new(x, d)?,
            Rows::new(y, dv)?,
            &mut out,
        )?;
        Ok(out)
    }

    /// Random data against the `f64` reference: interior and boundary queries, `D = 1..3`,
    /// `DV = 1, 2`, `h` from 0.1 to 2 (the data span [0, 1)). The measured worst error relative
    /// to the responses' spread is printed (`cargo test -p nadaraya --lib local_linear --
    /// --nocapture`, measured 1.2e-7) and held to `1e-6`.
    #[test]
    fn matches_f64_reference() {
        let mut worst = 0.0f64;
        for (seed, d, dv) in [(1, 1, 1), (2, 1, 2), (3, 2, 1), (4, 3, 2), (5, 2, 2)] {
            let (x, y) = data(seed, 50, d, dv);
            let spread = y.iter().fold(0.0f32, |a, v| a.max(v.abs())) as f64;
            for h in [0.1f32, 0.3, 1.0, 2.0] {
                for qv in [0.0f32, 0.5, 0.99, -0.2] {
                    let q = std::vec![qv; d];
                    let w = ref_weights(f64::from(h), &q, &x, d);
                    let want = ref_ll(&w, &q, &x, &y, d, dv);
                    let got = ll(h, &q, &x, &y, d, dv).unwrap();
                    for (g, w) in got.iter().zip(&want) {
                        let e = (f64::from(*g) - w).abs() / spread;
                        worst = worst.max(e);
                        assert!(e < 1e-6, "d {d} h {h} q {qv}: got {g}, want {w}, rel {e:e}");
                    }
                }
            }
        }
        std::println!("local_linear vs f64 reference: worst error / spread {worst:e}");
    }

    /// Exactly linear data `y = a + b·x` are reproduced at every query, the boundary and beyond
    /// included, where Nadaraya–Watson is visibly biased towards the interior.
    #[test]
    fn reproduces_linear_data_where_nw_is_biased() {
        let x: Vec<f32> = (0..40).map(|i| i as f32 * 0.025).collect();
        let y: Vec<f32> = x.iter().map(|v| 3.0 - 2.0 * v).collect();
        let k = Gaussian::new(0.2).unwrap();
        let mut worst = 0.0f64;
        for q in [0.0f32, 0.013, 0.5, 0.975, 1.1] {
            let got = ll(0.2, &[q], &x, &y, 1, 1).unwrap()[0];
            let want = 3.0 - 2.0 * f64::from(q);
            worst = worst.max((f64::from(got) - want).abs());
            assert!(
                (f64::from(got) - want).abs() < 4e-6,
                "q {q}: {got} vs {want}"
            );
            let mut nw = [0.0f32];
            let (xr, yr) = (Rows::new(&x, 1).unwrap(), Rows::new(&y, 1).unwrap());
            crate::attention(
                &k,
                Rows::new(&[q], 1).unwrap(),
                xr,
                yr,
                crate::Mask::None,
                RowsMut::new(&mut nw, 1).unwrap(),
            )
            .unwrap();
            if q == 0.0 || q == 0.975 {
                assert!(
                    (f64::from(nw[0]) - want).abs() > 0.1,
                    "NW at the edge {q}: {}",
                    nw[0]
                );
            }
        }
        // Two dimensions, two outputs, with the slope.
        let x2: Vec<f32> = (0..36)
            .flat_map(|i| [(i % 6) as f32 * 0.2, (i / 6) as f32 * 0.2])
            .collect();
        let y2: Vec<f32> = x2
            .chunks(2)
            .flat_map(|p| [1.0 + p[0] - 3.0 * p[1], -2.0 + 0.5 * p[1]])
            .collect();
        let mut out = [0.0f32; 2];
        let mut g = [[0.0f32; 2]; 2];
        local_linear_slope(
            &Gaussian::new(0.3).unwrap(),
            &[0.0, 1.0],
            Rows::new(&x2, 2).unwrap(),
            Rows::new(&y2, 2).unwrap(),
            &mut out,
            RowsMut::from_arrays(&mut g),
        )
        .unwrap();
        assert!(
            (out[0] - -2.0).abs() < 1e-5 && (out[1] - -1.5).abs() < 1e-5,
            "{out:?}"
        );
        assert!(
            (g[0][0] - 1.0).abs() < 1e-5 && (g[1][0] - -3.0).abs() < 1e-5,
            "{g:?}"
        );
        assert!(
            g[0][1].abs() < 1e-5 && (g[1][1] - 0.5).abs() < 1e-5,
            "{g:?}"
        );
        std::println!("linear data: worst error {worst:e}");
    }

    /// x around 1e6 with a spread of 0.5 and y around -1e5: centring at the reference sample
    /// keeps the fit as accurate as at the origin (uncentred normal equations in f64 lose about
    /// 24 digits of `x⁴` here).
    #[test]
    fn large_offsets() {
        let x: Vec<f32> = (0..30).map(|i| 1e6 + i as f32 * 0.0625 * 0.27).collect();
        let y: Vec<f32> = x
            .iter()
            .map(|v| -1e5 + 0.5 * (f64::from(*v) - 1e6) as f32)
            .collect();
        for q in [x[0], x[15], x[29]] {
            let got = ll(0.1, &[q], &x, &y, 1, 1).unwrap()[0];
            let w = ref_weights(0.1, &[q], &x, 1);
            // The reference centred at q (its design [1, x - q] already is).
            let want = ref_ll(&w, &[q], &x, &y, 1, 1)[0];
            assert!(
                (f64::from(got) - want).abs() < 0.02,
                "q {q}: {got} vs {want}"
            );
        }
    }

    /// Tiny `h`: the weight on one sample (others flushed to 0) is singular; a query midway
    /// between two samples has them at equal weight, and the line through them is exact.
    #[test]
    fn tiny_bandwidth() {
        let x = [0.0f32, 1.0, 2.0, 3.0];
        let y = [0.0f32, 10.0, 30.0, 20.0];
        assert_eq!(ll(1e-3, &[1.0], &x, &y, 1, 1), Err(Error::Singular));
        assert_eq!(ll(1e-3, &[1.2], &x, &y, 1, 1), Err(Error::Singular));
        let got = ll(1e-2, &[1.5], &x, &y, 1, 1).unwrap()[0];
        assert!((got - 20.0).abs() < 1e-4, "{got}");
    }

    /// Degenerate designs are `Singular`, never an answer: duplicated locations, collinear
    /// coordinates in 2-D, fewer than D + 1 distinct points.
    #[test]
    fn singular_designs() {
        assert_eq!(
            ll(1.0, &[0.5], &[2.0; 5], &[1.0, 2.0, 3.0, 4.0, 5.0], 1, 1),
            Err(Error::Singular)
        );
        let line: Vec<f32> = (0..10)
            .flat_map(|i| [i as f32 * 0.1, 1.0 + i as f32 * 0.2])
            .collect();
        let y: Vec<f32> = (0..10).map(|i| i as f32).collect();
        assert_eq!(ll(1.0, &[0.3, 0.2], &line, &y, 2, 1), Err(Error::Singular));
        assert_eq!(
            ll(1.0, &[0.3, 0.2], &[0.0, 0.0, 1.0, 0.0], &[1.0, 2.0], 2, 1),
            Err(Error::Singular)
        );
        // Nearly collinear, but well above MIN_PIVOT: fine.
        let near: Vec<f32> = (0..10)
            .flat_map(|i| {
                [
                    i as f32 * 0.1,
                    i as f32 * 0.1 + if i % 2 == 0 { 0.01 } else { -0.01 },
                ]
            })
            .collect();
        assert!(ll(1.0, &[0.3, 0.2], &near, &y, 2, 1).is_ok());
    }

    /// Bad input: shapes, capacity, NaN, empty.
    #[test]
    fn bad_input() {
        let x = [0.0f32, 1.0, 2.0];
        let y = [0.0f32, 1.0, 2.0];
        assert!(matches!(
            ll(1.0, &[0.0, 0.0], &x, &y, 1, 1),
            Err(Error::Shape {
                what: Dim::QueryWidth,
                ..
            })
        ));
        assert_eq!(ll(1.0, &[f32::NAN], &x, &y, 1, 1), Err(Error::NonFinite));
        assert_eq!(
            ll(1.0, &[0.0], &x, &[0.0, f32::INFINITY, 1.0], 1, 1),
            Err(Error::NonFinite)
        );
        assert_eq!(ll(1.0, &[0.0], &[], &[], 1, 1), Err(Error::Empty));
        let wide = [0.0f32; 17];
        assert_eq!(
            ll(1.0, &wide, &wide, &[1.0], 17, 1),
            Err(Error::CapacityExceeded)
        );
        let mut out = [0.0f32; 1];
        let k = Gaussian::new(1.0).unwrap();
        let r = local_linear(
            &k,
            &[0.0],
            Rows::new(&x, 1).unwrap(),
            Rows::new(&[0.0; 6], 2).unwrap(),
            &mut out,
        );
        assert_eq!(r, Err(Error::OutputTooSmall));
    }

    /// The same samples in every order: the same verdict, values within rounding.
    #[test]
    fn order_independent() {
        let (x, y) = data(9, 70, 2, 1);
        let q = [0.3f32, 0.8];
        let base = ll(0.2, &q, &x, &y, 2, 1).unwrap()[0];
        for o in orders(70) {
            let got = ll(0.2, &q, &permute(&x, 2, &o), &permute(&y, 1, &o), 2, 1).unwrap()[0];
            assert!((got - base).abs() < 1e-5, "{got} vs {base}");
        }
        let dup = [2.0f32; 70];
        for o in orders(70) {
            assert_eq!(
                ll(0.2, &[1.0], &permute(&dup, 1, &o), &y, 1, 1),
                Err(Error::Singular)
            );
        }
    }

    /// The batch and the Smoother (its ring wrapped) give the single-query results.
    #[test]
    fn batch_and_smoother_agree() {
        let (x, y) = data(11, 24, 1, 1);
        let q = [0.1f32, 0.5, 0.95];
        let mut out = [0.0f32; 3];
        let k = Gaussian::new(0.25).unwrap();
        local_linear_batch(
            &k,
            Rows::new(&q, 1).unwrap(),
            Rows::new(&x, 1).unwrap(),
            Rows::new(&y, 1).unwrap(),
            RowsMut::new(&mut out, 1).unwrap(),
        )
        .unwrap();
        let mut s: crate::Smoother<Gaussian, 16, 1, 1> = crate::Smoother::new(k);
        for (xi, yi) in x.iter().zip(&y) {
            s.push_evicting([*xi], [*yi]).unwrap();
        }
        for (i, qi) in q.iter().enumerate() {
            let one = ll(0.25, &[*qi], &x, &y, 1, 1).unwrap()[0];
            assert_eq!(out[i], one);
            let last = ll(0.25, &[*qi], &x[8..], &y[8..], 1, 1).unwrap()[0];
            let sm = s.predict_local_linear(&[*qi]).unwrap()[0];
            assert!((sm - last).abs() < 1e-5, "{sm} vs {last}");
        }
    }

    /// LOO against the reference: each left-out fit by [`ref_ll`] over the other samples.
    #[test]
    fn loo_matches_reference() {
        for (seed, d, h) in [(21, 1, 0.1f32), (22, 2, 0.4), (23, 1, 0.03)] {
            let (x, y) = data(seed, 40, d, 1);
            let n = 40;
            let mut want = 0.0;
            for i in 0..n {
                let xo: Vec<f32> = (0..n)
                    .filter(|&j| j != i)
                    .flat_map(|j| x[j * d..(j + 1) * d].to_vec())
                    .collect();
                let yo: Vec<f32> = (0..n).filter(|&j| j != i).map(|j| y[j]).collect();
                let q = &x[i * d..(i + 1) * d];
                let w = ref_weights(f64::from(h), q, &xo, d);
                want += (f64::from(y[i]) - ref_ll(&w, q, &xo, &yo, d, 1)[0]).powi(2);
            }
            want /= n as f64;
            let got = loo_cv_local_linear(
                &Gaussian::new(h).unwrap(),
                Rows::new(&x, d).unwrap(),
                Rows::new(&y, 1).unwrap(),
            )
            .unwrap();
            std::println!(
                "loo_cv_local_linear d {d} h {h}: rel error {:e}",
                (got - want).abs() / want
            );
            assert!(
                (got - want).abs() <= 1e-5 * want,
                "d {d} h {h}: {got} vs {want}"
            );
        }
    }

    /// The LOO objective of the local-linear fit in plain `f64` ([`ref_ll`] per left-out point).
    fn ref_loo(h: f64, x: &[f32], y: &[f32], d: usize) -> f64 {
        let n = y.len();
        let mut total = 0.0;
        for i in 0..n {
            let xo: Vec<f32> = (0..n)
                .filter(|&j| j != i)
                .flat_map(|j| x[j * d..(j + 1) * d].to_vec())
                .collect();
            let yo: Vec<f32> = (0..n).filter(|&j| j != i).map(|j| y[j]).collect();
            let q = &x[i * d..(i + 1) * d];
            let w = ref_weights(h, q, &xo, d);
            total += (f64::from(y[i]) - ref_ll(&w, q, &xo, &yo, d, 1)[0]).powi(2);
        }
        total / n as f64
    }

    /// The selector against a brute-force grid of the `f64` objective (400 bandwidths, log-spaced
    /// over the bracket): its score at or below the grid's best plus `1e-6` relative, always
    /// finite, although the small bandwidths of the bracket are singular.
    #[test]
    fn selector_matches_grid() {
        for (seed, d) in [(31u64, 1usize), (32, 2)] {
            let (x, y) = data(seed, 40, d, 1);
            let (xr, yr) = (Rows::new(&x, d).unwrap(), Rows::new(&y, 1).unwrap());
            let search = crate::fit::Search::default();
            let (k, sel) = select_bandwidth_local_linear::<Gaussian>(xr, yr, &search).unwrap();
            assert_eq!(k.bandwidth(), sel.bandwidth);
            assert!(sel.cv.is_finite());
            let (lo, hi) = crate::fit::bracket(crate::fit::rule_of_thumb(xr).unwrap(), &search);
            let (mut best, mut singular) = (f64::INFINITY, 0);
            for t in 0..400 {
                let h = f64::from(lo) * (f64::from(hi) / f64::from(lo)).powf(t as f64 / 399.0);
                match loo_cv_local_linear(&Gaussian::new(h as f32).unwrap(), xr, yr) {
                    Ok(_) => best = best.min(ref_loo(h, &x, &y, d)),
                    Err(Error::Singular) => singular += 1,
                    Err(e) => panic!("{e:?}"),
                }
            }
            std::println!(
                "select_bandwidth_local_linear d {d}: h {} cv {} (grid best {best}, {singular} singular h), {} evaluations",
                sel.bandwidth,
                sel.cv,
                sel.evaluations
            );
            assert!(singular > 0, "the bracket should reach singular bandwidths");
            assert!(
                sel.cv <= best * (1.0 + 1e-6),
                "d {d}: {} vs grid {best}",
                sel.cv
            );
            let want = ref_loo(f64::from(sel.bandwidth), &x, &y, d);
            assert!((sel.cv - want).abs() < 1e-6 * want);
        }
        // Every bandwidth singular (without sample 0 one location is left): the verdict, not a
        // value.
        let x = [0.0f32, 1.0, 1.0, 1.0];
        let y = [0.0f32, 1.0, 2.0, 3.0];
        let r = select_bandwidth_local_linear::<Gaussian>(
            Rows::new(&x, 1).unwrap(),
            Rows::new(&y, 1).unwrap(),
            &crate::fit::Search::default(),
        );
        assert_eq!(r.map(|(_, s)| s), Err(Error::Singular));
    }

    /// Compact kernels (Epanechnikov, tricube, uniform): against the `f64` solve of the same
    /// scores' weights; linear data reproduced at the edge; a query with no sample in the support
    /// is `NoSupport`, one with a single sample `Singular`; the LL selector finds a finite score.
    #[test]
    fn compact_kernels() {
        use crate::{Epanechnikov, Tricube, Uniform};
        fn check<K: crate::fit::Bandwidth>(name: &str) {
            let (x, y) = data(41, 60, 1, 1);
            let k = K::with_bandwidth(0.2).unwrap();
            let (xr, yr) = (Rows::new(&x, 1).unwrap(), Rows::new(&y, 1).unwrap());
            for q in [0.0f32, 0.3, 0.77, 0.99] {
                let s: Vec<f32> = x.iter().map(|xi| k.score(&[q], &[*xi])).collect();
                let m = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let w: Vec<f64> = s
                    .iter()
                    .map(|v| (f64::from(*v) - f64::from(m)).exp())
                    .collect();
                let want = ref_ll(&w, &[q], &x, &y, 1, 1)[0];
                let mut out = [0.0f32];
                local_linear(&k, &[q], xr, yr, &mut out).unwrap();
                assert!(
                    (f64::from(out[0]) - want).abs() < 1e-5,
                    "{name} q {q}: {} vs {want}",
                    out[0]
                );
            }
            let lin: Vec<f32> = x.iter().map(|v| 1.0 + 4.0 * v).collect();
            let mut out = [0.0f32];
            local_linear(&k, &[0.0], xr, Rows::new(&lin, 1).unwrap(), &mut out).unwrap();
            assert!((out[0] - 1.0).abs() < 1e-5, "{name}: {}", out[0]);
            assert_eq!(
                local_linear(&k, &[5.0], xr, yr, &mut out),
                Err(Error::NoSupport),
                "{name}"
            );
            let two = [0.0f32, 1.0];
            let r = local_linear(
                &k,
                &[0.05],
                Rows::new(&two, 1).unwrap(),
                Rows::new(&two, 1).unwrap(),
                &mut out,
            );
            assert_eq!(r, Err(Error::Singular), "{name}");
            assert_eq!(
                loo_cv_local_linear(&K::with_bandwidth(0.01).unwrap(), xr, yr)
                    .map(|_| ())
                    .unwrap_err(),
                Error::NoSupport,
                "{name}"
            );
            let (_, sel) =
                select_bandwidth_local_linear::<K>(xr, yr, &crate::fit::Search::default()).unwrap();
            assert!(sel.cv.is_finite() && sel.cv < 0.05, "{name}: {sel:?}");
            std::println!("{name}: LL selection {sel:?}");
            let mut e = [crate::fit::Estimate::default()];
            let se = |q: f32, e: &mut [crate::fit::Estimate]| {
                crate::fit::standard_error(
                    Fit::LocalLinear,
                    &k,
                    &[q],
                    xr,
                    yr,
                    crate::fit::Noise::Constant(&[0.01]),
                    e,
                )
            };
            se(0.5, &mut e).unwrap();
            assert!(e[0].se > 0.0 && e[0].se < 0.1, "{name}: {e:?}");
            assert_eq!(se(5.0, &mut e), Err(Error::NoSupport), "{name}");
        }
        check::<Epanechnikov>("Epanechnikov");
        check::<Tricube>("Tricube");
        check::<Uniform>("Uniform");
    }

    /// Near-collinear 2-D designs just above [`MIN_PIVOT`] (the second coordinate the first plus
    /// noise of relative size `ε`, pivot about `ε²`): the error against the `f64` reference,
    /// relative to the responses' magnitude, printed and bounded (the docs state it).
    #[test]
    fn near_collinear_accuracy() {
        let (mut worst, mut singular) = (0.0f64, 0);
        for eps in [1e-1f32, 1e-2, 3e-3, 1.5e-3, 1e-3, 5e-4] {
            let mut r = lcg(51);
            let x: Vec<f32> = (0..60)
                .flat_map(|_| {
                    let a = r();
                    [a, a + eps * (r() - 0.5)]
                })
                .collect();
            let y: Vec<f32> = x
                .chunks(2)
                .map(|p| libm::sinf(3.0 * p[0]) + 0.2 * r())
                .collect();
            for q in [[0.5f32, 0.5], [0.0, 0.0], [0.9, 0.95]] {
                let w = ref_weights(0.3, &q, &x, 2);
                let want = ref_ll(&w, &q, &x, &y, 2, 1)[0];
                match ll(0.3, &q, &x, &y, 2, 1) {
                    Ok(g) => {
                        let e = (f64::from(g[0]) - want).abs();
                        worst = worst.max(e);
                        std::println!("eps {eps} q {q:?}: error {e:e}");
                    }
                    Err(e) => {
                        assert_eq!(e, Error::Singular);
                        assert!(eps <= 1e-3, "eps {eps}: singular");
                        singular += 1;
                    }
                }
            }
        }
        std::println!("near-collinear worst error {worst:e}, {singular} singular");
        assert!(worst < 1e-6 && singular > 0, "{worst} {singular}");
    }
}

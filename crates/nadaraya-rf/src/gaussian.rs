//! Gaussian Nadaraya–Watson smoothing through positive random features: every result is a convex
//! combination of the responses.

use nadaraya::math::{exp_neg, exp_neg_in_place};
use nalgebra::{DMatrix, DMatrixView, DMatrixViewMut};

use nadaraya::{Dim, Gaussian, Mask, Rows, RowsMut};

use crate::attention::{TILE, all_finite, check_shapes};
use crate::error::{check_width, shape};
use crate::{Error, FavorPlus, Projection, RowNorm, Sampling, Variant};

/// Positive random features for the Gaussian kernel of bandwidth `h`.
///
/// With `x' = x/h`, `exp(−|x − y|²/2h²) = exp(−|x'|²/2) · exp(−|y'|²/2) · exp(x'·y')`, and the
/// last factor is the softmax kernel at temperature `τ = h²`, which [`FavorPlus`] estimates with
/// positive features. So `φ_G(x) = exp(−|x'|²/2) · φ(x)` with `φ` the [`FavorPlus`] map of the
/// chosen [`Variant`] satisfies `E[φ_G(x)·φ_G(y)] = exp(−|x − y|²/2h²)`, and every estimated kernel
/// value is a sum of exponentials: `> 0`. Smoothing with it ([`smooth`](Self::smooth)) therefore weighs every
/// sample by a non-negative weight, and its output is a convex combination of the responses,
/// unlike the signed random Fourier features of [`FourierFeatures::smooth`](crate::FourierFeatures::smooth).
///
/// The price is variance: the estimator's relative variance grows like `exp(|x' + y'|²)`, so it
/// is accurate where `|x|/h` is moderate (centre the data; see the crate README's accuracy
/// table), while its output stays inside the data whatever the inputs.
///
/// # Examples
/// ```
/// use nadaraya_rf::GaussianFeatures;
/// let f = GaussianFeatures::for_dim(2, 4096, 1.0, 5)?;
/// let (mut a, mut b) = (vec![0.0; 4096], vec![0.0; 4096]);
/// f.log_features(&[0.0, 0.0], &mut a)?;
/// f.log_features(&[1.0, 0.0], &mut b)?;
/// let k: f32 = a.iter().zip(&b).map(|(x, y)| (x + y).exp()).sum();
/// assert!((k - (-0.5f32).exp()).abs() < 0.05);
/// # Ok::<(), nadaraya_rf::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct GaussianFeatures {
    favor: FavorPlus,
    h: f32,
}

impl GaussianFeatures {
    /// Features for bandwidth `h` from a drawn projection, with the positive map `variant`
    /// ([`Variant::Positive`], [`Variant::Hyperbolic`], or [`Variant::Optimal`] with an
    /// [`Oprf`](crate::Oprf) fitted at `τ = h²`).
    ///
    /// # Errors
    /// - [`Error::InvalidBandwidth`] if `h` breaks the core's rule
    ///   ([`nadaraya::Gaussian::check_bandwidth`]: not finite, not `> 0`, or `1/(2h²)` not a
    ///   normal `f32`; so `h` lies in `[3.833_233_8e-20, 6.521_909e18]`), exactly the `h` the
    ///   exact [`nadaraya::Gaussian`] kernel accepts;
    /// - [`Error::TooManyFeatures`] as [`FavorPlus::new`].
    ///
    /// For [`Variant::Optimal`], [`optimal`](Self::optimal) fits `A` to the data as
    /// [`smooth`](Self::smooth) sees it.
    pub fn new(projection: Projection, h: f32, variant: Variant) -> Result<Self, Error> {
        let half_inv_tau = -Gaussian::check_bandwidth(h)?;
        let h64 = f64::from(h);
        // τ = h² may be subnormal (h < 1.08e-19): only `temperature()` reports it; the features
        // use 1/h and 1/(2h²), both normal for every valid h.
        let favor = FavorPlus::with_scales(
            projection,
            (h64 * h64) as f32,
            1.0 / h64,
            half_inv_tau,
            variant,
        )?;
        Ok(Self { favor, h })
    }

    /// OPRF features ([`Variant::Optimal`]) with `A` fitted as [`Oprf::fit`](crate::Oprf::fit)
    /// does at `τ = h²`, to `queries` and the samples `x` after the centring of
    /// [`smooth`](Self::smooth), for smoothing those queries over those samples.
    ///
    /// # Errors
    /// - [`Error::InvalidBandwidth`] as [`new`](Self::new);
    /// - [`Error::Shape`] with [`Dim::Width`](nadaraya::Dim::Width) if the samples' width is not
    ///   the projection's dimension, or [`QueryWidth`](nadaraya::Dim::QueryWidth) if the
    ///   queries' width is not the samples';
    /// - [`Error::Empty`] if `queries` or `x` has no rows; [`Error::NonFinite`];
    /// - [`Error::ScoreOverflow`] if a moved point or `ρ` is too large
    ///   ([`Oprf::from_rho`](crate::Oprf::from_rho));
    /// - [`Error::TooManyFeatures`] as [`new`](Self::new), or if the moved copies of the inputs
    ///   cannot be allocated.
    pub fn optimal(
        projection: Projection,
        h: f32,
        queries: Rows<'_>,
        x: Rows<'_>,
    ) -> Result<Self, Error> {
        Gaussian::check_bandwidth(h)?;
        let d = projection.dim();
        check_width(d, x.width())?;
        if queries.width() != d {
            return Err(shape(Dim::QueryWidth, d, queries.width()));
        }
        if x.is_empty() || queries.is_empty() {
            return Err(Error::Empty);
        }
        if !(all_finite(x.as_slice()) && all_finite(queries.as_slice())) {
            return Err(Error::NonFinite);
        }
        let centre = midrange(x.as_slice(), d);
        let mut qs = zeros(queries.as_slice().len())?;
        let mut xs = zeros(x.as_slice().len())?;
        shift(queries.as_slice(), &centre, &mut qs);
        shift(x.as_slice(), &centre, &mut xs);
        // A moved query beyond f32 range: its exponents could not be finite either.
        if !(all_finite(&qs) && all_finite(&xs)) {
            return Err(Error::ScoreOverflow);
        }
        let (qs, xs) = (Rows::new(&qs, d)?, Rows::new(&xs, d)?);
        let h64 = f64::from(h);
        let oprf = crate::Oprf::fit_checked(qs, xs, h64 * h64)?;
        Self::new(projection, h, Variant::Optimal(oprf))
    }

    /// `m` positive ([`Variant::Positive`]) features for dimension `d` and bandwidth `h`,
    /// orthogonal rows with chi norms, draw 0 of `seed`.
    ///
    /// # Errors
    /// As [`Projection::new`] and [`new`](Self::new).
    pub fn for_dim(d: usize, m: usize, h: f32, seed: u64) -> Result<Self, Error> {
        let p = Projection::new(d, m, Sampling::Orthogonal(RowNorm::Chi), seed)?;
        Self::new(p, h, Variant::Positive)
    }

    /// Replaces the projection by its next draw ([`Projection::redraw`]).
    ///
    /// # Errors
    /// [`Error::TooManyFeatures`] if the scratch of the orthogonal draw cannot be allocated; the
    /// features are then unchanged.
    pub fn redraw(&mut self) -> Result<(), Error> {
        self.favor.redraw()
    }

    /// The softmax-kernel features at `τ = h²` these are built on.
    #[must_use]
    pub fn favor(&self) -> &FavorPlus {
        &self.favor
    }

    /// The projection the features use.
    #[must_use]
    pub fn projection(&self) -> &Projection {
        self.favor.projection()
    }

    /// The bandwidth `h`.
    #[must_use]
    pub fn bandwidth(&self) -> f32 {
        self.h
    }

    /// The variant of the positive map.
    #[must_use]
    pub fn variant(&self) -> Variant {
        self.favor.variant()
    }

    /// The input dimension `d`.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.favor.dim()
    }

    /// The number of features `r` (as [`FavorPlus::features`]).
    #[must_use]
    pub fn features(&self) -> usize {
        self.favor.features()
    }

    /// `log φ_G(x) = log φ(x) − |x'|²/2` ([`FavorPlus::log_features`] at `τ = h²`), so
    /// `Σ_i exp(log φ_G(x)_i + log φ_G(y)_i) ≈ exp(−|x − y|²/2h²)`.
    ///
    /// # Errors
    /// As [`FavorPlus::log_features`].
    pub fn log_features(&self, x: &[f32], out: &mut [f32]) -> Result<(), Error> {
        self.favor.log_features(x, out)?;
        let h = self.favor.half_sq_norm(x);
        let mut ok = true;
        for o in out.iter_mut().take(self.features()) {
            *o -= h;
            ok &= o.is_finite();
        }
        if ok {
            Ok(())
        } else {
            Err(Error::ScoreOverflow)
        }
    }
}

/// The midrange `(min + max)/2` of each of the `d` columns of `x` (`N×d`, finite, `N ≥ 1`):
/// the centre [`GaussianFeatures::smooth`] moves the samples to. Exactly the same for every order of the rows.
#[must_use]
pub(crate) fn midrange(x: &[f32], d: usize) -> Vec<f32> {
    let mut lo = vec![f32::INFINITY; d];
    let mut hi = vec![f32::NEG_INFINITY; d];
    for row in x.chunks_exact(d) {
        for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(row) {
            *l = l.min(v);
            *h = h.max(v);
        }
    }
    lo.iter()
        .zip(&hi)
        .map(|(&l, &h)| ((f64::from(l) + f64::from(h)) / 2.0) as f32)
        .collect()
}

/// `out = rows − centre` row by row (in `f32`; a difference beyond `f32::MAX` becomes infinite
/// and is caught as [`Error::ScoreOverflow`] by the exponents); returns `out`.
fn shift<'a>(rows: &[f32], centre: &[f32], out: &'a mut [f32]) -> &'a [f32] {
    for (o, r) in out
        .chunks_exact_mut(centre.len())
        .zip(rows.chunks_exact(centre.len()))
    {
        for ((o, &v), &c) in o.iter_mut().zip(r).zip(centre) {
            *o = v - c;
        }
    }
    out
}

/// A zeroed buffer of `len` floats, or [`Error::TooManyFeatures`] if it cannot be allocated.
pub(crate) fn zeros(len: usize) -> Result<Vec<f32>, Error> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| Error::TooManyFeatures)?;
    v.resize(len, 0.0);
    Ok(v)
}

impl GaussianFeatures {
    /// Linear-time Gaussian Nadaraya–Watson smoothing with positive random features (the default
    /// Gaussian smoother): `out_t = Σ_i κ̂(q_t, x_i) y_i / Σ_i κ̂(q_t, x_i)` with
    /// `κ̂(q, x) = φ_G(q)·φ_G(x) > 0` ([`GaussianFeatures`]), a random-feature estimate of
    /// [`nadaraya::attention`] with the [`nadaraya::Gaussian`] kernel of the same bandwidth.
    ///
    /// Same shapes as [`nadaraya::attention`]: `queries` `M×d`, sample locations `x` `N×d`,
    /// responses `y` `N×dy`, `out` `M×dy`. `O((M + N)·r·(d + dy))` time; extra memory
    /// `r·(dy + 64) + 2r + 64·dy + 4·dy` floats, `r` the number of features.
    ///
    /// # Centring
    /// The Gaussian kernel depends on `q − x` only, while the positive estimator's variance grows
    /// like `exp(|q' + x'|²)`: so both the samples and the queries are first moved by the samples'
    /// per-coordinate midrange `(min_i x_ij + max_i x_ij)/2` (order-independent, and it keeps every
    /// moved sample within `f32` range). The estimate is the one of the features at the moved
    /// points.
    ///
    /// # A convex combination, always
    /// Every weight is `≥ 0` and the denominator is `≥ 1` (the stabilisers of
    /// [`FavorPlus::attention`]: per-feature maxima over the samples, a per-row maximum over
    /// the features, cancelling exactly). Each response column is scaled by a power of two that
    /// keeps the running sums below `2N` (so no sum overflows and no order of the samples can make
    /// one overflow), and the result is clamped into the column's range `[min_i y_ij, max_i y_ij]`,
    /// which only rounding could leave. So every output lies inside the responses' range, for every
    /// finite input and every order of the samples; there is no `Overflow`.
    ///
    /// Against the plain `f64` estimator on the same features the relative error is at rounding
    /// level while the exponents `ω·x/h` are moderate; for very large `|x|/h` the `f32` exponents
    /// lose absolute precision (an exponent near `E` carries an error of about `E·6e-8`), so each
    /// weight carries a relative error of about `exp(|E|·6e-8) − 1`, and the output, still convex,
    /// is only as close to the `f64` estimate as that.
    ///
    /// # Errors
    /// - [`Error::Shape`], [`Error::Empty`], [`Error::NonFinite`] as
    ///   [`FavorPlus::attention`] without a mask (with `y` for the values);
    /// - [`Error::ScoreOverflow`] if a feature exponent (`ω·x'`, `|x'|²`, or a query exponent plus
    ///   the samples' maximum) is not finite in `f32`: inputs too large for the features, decided per
    ///   exponent and so the same for every order of the samples;
    /// - [`Error::TooManyFeatures`] if the `r·dy` sums cannot be allocated.
    ///
    /// Nothing is written when the inputs are rejected up front; after a [`Error::ScoreOverflow`]
    /// in a query `out` may hold partial results.
    ///
    /// # Examples
    /// ```
    /// use nadaraya_rf::{GaussianFeatures, Rows, RowsMut};
    /// let x: Vec<f32> = (0..200).map(|i| i as f32 / 100.0 - 1.0).collect();
    /// let y: Vec<f32> = x.iter().map(|v| v * v).collect();
    /// let f = GaussianFeatures::for_dim(1, 512, 0.3, 11)?;
    /// let mut out = [[0.0]];
    /// f.smooth(Rows::from_arrays(&[[0.0]]), Rows::new(&x, 1)?, Rows::new(&y, 1)?,
    ///          RowsMut::from_arrays(&mut out))?;
    /// assert!(out[0][0] >= 0.0 && out[0][0] < 0.2); // the exact smoother gives ≈ 0.08
    /// # Ok::<(), nadaraya_rf::Error>(())
    /// ```
    pub fn smooth(
        &self,
        queries: Rows<'_>,
        x: Rows<'_>,
        y: Rows<'_>,
        out: RowsMut<'_>,
    ) -> Result<(), Error> {
        smooth_positive(self, queries, x, y, out)
    }
}

/// [`GaussianFeatures::smooth`].
fn smooth_positive(
    features: &GaussianFeatures,
    queries: Rows<'_>,
    x: Rows<'_>,
    y: Rows<'_>,
    out: RowsMut<'_>,
) -> Result<(), Error> {
    let (mq, _) = check_shapes(features.dim(), queries, x, y, Mask::None, out.as_rows())?;
    let (d, dy) = (x.width(), y.width());
    let (queries, x, y, out) = (
        queries.as_slice(),
        x.as_slice(),
        y.as_slice(),
        out.into_slice(),
    );
    let f = &features.favor;
    let r = f.features();
    let w = f.matrix();
    let centre = midrange(x, d);

    // Per response column: its range, and the power of two 2^e ≤ max |y| (e ≥ 0) it is divided
    // by, so that every scaled response is below 2 in magnitude.
    let mut lo = vec![f32::INFINITY; dy];
    let mut hi = vec![f32::NEG_INFINITY; dy];
    for row in y.chunks_exact(dy) {
        for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(row) {
            *l = l.min(v);
            *h = h.max(v);
        }
    }
    let (mut scale, mut inv) = (vec![1.0f32; dy], vec![1.0f32; dy]);
    for (((s, i), &l), &h) in scale.iter_mut().zip(inv.iter_mut()).zip(&lo).zip(&hi) {
        let big = l.abs().max(h.abs());
        if big >= 1.0 {
            // A normal f32 ≥ 1: its biased exponent is 127 + e with e in 0..=127.
            let e = ((big.to_bits() >> 23) & 0xff) as i32 - 127;
            *s = 2f64.powi(e) as f32;
            *i = 2f64.powi(-e) as f32; // 2^-127 is a subnormal f32, still exact
        }
    }

    let mut c = vec![f32::NEG_INFINITY; r];
    let mut z = vec![0.0f32; r];
    let mut mb = vec![0.0f32; r];
    let mut s = DMatrix::from_vec(
        dy,
        r,
        zeros(dy.checked_mul(r).ok_or(Error::TooManyFeatures)?)?,
    );
    let mut buf = zeros(r.checked_mul(TILE).ok_or(Error::TooManyFeatures)?)?;
    let mut ys = zeros(dy.checked_mul(TILE).ok_or(Error::TooManyFeatures)?)?;
    let mut xs = zeros(d.checked_mul(TILE).ok_or(Error::TooManyFeatures)?)?;
    for (xt, yt) in x.chunks(TILE * d).zip(y.chunks(TILE * dy)) {
        let t = xt.len() / d;
        let xt = shift(xt, &centre, &mut xs[..t * d]);
        let a = &mut buf[..r * t];
        DMatrixViewMut::from_slice(a, r, t).gemm(1.0, w, &DMatrixView::from_slice(xt, d, t), 0.0);
        for (col, k) in a.chunks_exact_mut(r).zip(xt.chunks_exact(d)) {
            f.finish_key_exponents(k, col)?;
            // The Gaussian's own factor exp(−|x'|²/2) of the sample.
            let h = f.half_sq_norm(k);
            let mut ok = h.is_finite();
            for v in col.iter_mut() {
                *v -= h;
                ok &= v.is_finite();
            }
            if !ok {
                return Err(Error::ScoreOverflow);
            }
        }
        // Every exponent is finite here, so these maxima see no NaN.
        mb.fill(f32::NEG_INFINITY);
        for col in a.chunks_exact(r) {
            for (m, &v) in mb.iter_mut().zip(col) {
                *m = m.max(v);
            }
        }
        for (i, &m) in mb.iter().enumerate() {
            if m > c[i] {
                if z[i] != 0.0 {
                    let g = exp_neg(c[i] - m);
                    z[i] *= g;
                    s.column_mut(i).scale_mut(g);
                }
                c[i] = m;
            }
        }
        for col in a.chunks_exact_mut(r) {
            for (v, &ci) in col.iter_mut().zip(&c) {
                *v -= ci;
            }
        }
        exp_neg_in_place(a);
        for col in a.chunks_exact(r) {
            for (zi, &p) in z.iter_mut().zip(col) {
                *zi += p;
            }
        }
        let yst = &mut ys[..t * dy];
        for (o, i) in yst.chunks_exact_mut(dy).zip(yt.chunks_exact(dy)) {
            for ((o, &v), &sc) in o.iter_mut().zip(i).zip(&inv) {
                *o = v * sc;
            }
        }
        // Sᵀ (dy×r) += Yᵀ (dy×t) · Φᵀ (t×r).
        let phi_t = DMatrixView::from_slice_with_strides(a, t, r, r, 1);
        s.gemm(1.0, &DMatrixView::from_slice(yst, dy, t), &phi_t, 1.0);
    }

    let out = &mut out[..mq * dy];
    for (qt, ot) in queries.chunks(TILE * d).zip(out.chunks_mut(TILE * dy)) {
        let t = qt.len() / d;
        let qt = shift(qt, &centre, &mut xs[..t * d]);
        let b = &mut buf[..r * t];
        DMatrixViewMut::from_slice(b, r, t).gemm(1.0, w, &DMatrixView::from_slice(qt, d, t), 0.0);
        for col in b.chunks_exact_mut(r) {
            let mut mx = f32::NEG_INFINITY;
            let mut ok = true;
            for (v, &ci) in col.iter_mut().zip(&c) {
                *v += ci;
                ok &= v.is_finite();
                mx = mx.max(*v);
            }
            if !ok {
                return Err(Error::ScoreOverflow);
            }
            for v in col.iter_mut() {
                *v -= mx;
            }
        }
        exp_neg_in_place(b);
        // Oᵀ (dy×t) = Sᵀ (dy×r) · W (r×t).
        DMatrixViewMut::from_slice(ot, dy, t).gemm(1.0, &s, &DMatrixView::from_slice(b, r, t), 0.0);
        for (col, o) in b.chunks_exact(r).zip(ot.chunks_exact_mut(dy)) {
            // ≥ 1: the feature at the row maximum has weight 1 and a sample sum ≥ 1.
            let den: f32 = col.iter().zip(&z).map(|(p, z)| p * z).sum();
            let inv_den = 1.0 / den;
            for (((v, &sc), &l), &h) in o.iter_mut().zip(&scale).zip(&lo).zip(&hi) {
                *v = (*v * inv_den * sc).max(l).min(h);
            }
        }
    }
    Ok(())
}

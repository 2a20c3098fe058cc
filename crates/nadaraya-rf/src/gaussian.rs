//! Gaussian Nadaraya–Watson smoothing through positive random features: every result is a convex
//! combination of the responses.

use nadaraya::math::{exp_neg, exp_neg_in_place};
use nalgebra::{DMatrix, DMatrixView, DMatrixViewMut};

use crate::attention::{TILE, all_finite, check_shapes};
use crate::{Error, FavorPlus, Projection, RowNorm, Sampling, Variant};

/// Positive random features for the Gaussian kernel of bandwidth `h`.
///
/// With `x' = x/h`, `exp(−|x − y|²/2h²) = exp(−|x'|²/2) · exp(−|y'|²/2) · exp(x'·y')`, and the
/// last factor is the softmax kernel at temperature `τ = h²`, which [`FavorPlus`] estimates with
/// positive features. So `φ_G(x) = exp(−|x'|²/2) · φ(x)` with `φ` the [`FavorPlus`] map of the
/// chosen [`Variant`] satisfies `E[φ_G(x)·φ_G(y)] = exp(−|x − y|²/2h²)`, and every estimated kernel
/// value is a sum of exponentials: `> 0`. Smoothing with it ([`smooth`]) therefore weighs every
/// sample by a non-negative weight, and its output is a convex combination of the responses,
/// unlike the signed random Fourier features of [`smooth_fourier`](crate::smooth_fourier).
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
    /// - [`Error::InvalidBandwidth`] if `h` is not finite, not `> 0`, or `h²` or `1/h²` is not a
    ///   normal `f32` (so `h` lies in `[1.09e-19, 9.22e18]`);
    /// - [`Error::TooManyFeatures`] as [`FavorPlus::new`].
    ///
    /// For [`Variant::Optimal`], [`optimal`](Self::optimal) fits `A` to the data as [`smooth`]
    /// sees it.
    pub fn new(projection: Projection, h: f32, variant: Variant) -> Result<Self, Error> {
        let tau = (f64::from(h) * f64::from(h)) as f32;
        if !(h.is_finite() && h > 0.0 && tau.is_normal()) {
            return Err(Error::InvalidBandwidth);
        }
        let favor = FavorPlus::new(projection, tau, variant).map_err(|e| match e {
            Error::InvalidTemperature => Error::InvalidBandwidth,
            e => e,
        })?;
        Ok(Self { favor, h })
    }

    /// OPRF features ([`Variant::Optimal`]) with `A` fitted by [`Oprf::fit`](crate::Oprf::fit)
    /// at `τ = h²` to `queries` and the samples `x` (`d` wide) after the centring of
    /// [`smooth`], for smoothing those queries over those samples.
    ///
    /// # Errors
    /// As [`Oprf::fit`](crate::Oprf::fit) (with [`Error::InvalidBandwidth`] for an invalid `h`)
    /// and [`new`](Self::new); [`Error::DimensionMismatch`] if `d` is not the projection's.
    pub fn optimal(
        projection: Projection,
        h: f32,
        queries: &[f32],
        x: &[f32],
        d: usize,
    ) -> Result<Self, Error> {
        if d != projection.dim() {
            return Err(Error::DimensionMismatch {
                expected: projection.dim(),
                found: d,
            });
        }
        let tau = (f64::from(h) * f64::from(h)) as f32;
        if !(h.is_finite() && h > 0.0 && tau.is_normal()) {
            return Err(Error::InvalidBandwidth);
        }
        if !(x.len().is_multiple_of(d) && queries.len().is_multiple_of(d)) {
            return Err(Error::ShapeMismatch);
        }
        if x.is_empty() || queries.is_empty() {
            return Err(Error::Empty);
        }
        if !(all_finite(x) && all_finite(queries)) {
            return Err(Error::NonFinite);
        }
        let centre = midrange(x, d);
        let mut qs = zeros(queries.len())?;
        let mut xs = zeros(x.len())?;
        shift(queries, &centre, &mut qs);
        shift(x, &centre, &mut xs);
        let oprf = crate::Oprf::fit(&qs, &xs, d, tau).map_err(|e| match e {
            // A moved query beyond f32 range: its exponents could not be finite either.
            Error::NonFinite => Error::ScoreOverflow,
            e => e,
        })?;
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
    pub fn redraw(&mut self) {
        self.favor.redraw();
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
/// the centre [`smooth`] moves the samples to. Exactly the same for every order of the rows.
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

/// Linear-time Gaussian Nadaraya–Watson smoothing with positive random features (the default
/// Gaussian smoother): `out_t = Σ_i κ̂(q_t, x_i) y_i / Σ_i κ̂(q_t, x_i)` with
/// `κ̂(q, x) = φ_G(q)·φ_G(x) > 0` ([`GaussianFeatures`]), a random-feature estimate of
/// [`nadaraya::attention`] with the [`nadaraya::Gaussian`] kernel of the same bandwidth.
///
/// Same shapes as [`nadaraya::attention`]: `queries` `M×d`, sample locations `x` `N×d`,
/// responses `y` `N×dy`, `out` at least `M×dy`. `O((M + N)·r·(d + dy))` time; extra memory
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
/// [`attention`](crate::attention): per-feature maxima over the samples, a per-row maximum over
/// the features, cancelling exactly). Each response column is scaled by a power of two that
/// keeps the running sums below `2N` (so no sum overflows and no order of the samples can make
/// one overflow), and the result is clamped into the column's range `[min_i y_ij, max_i y_ij]`,
/// which only rounding could leave. So every output lies inside the responses' range, for every
/// finite input and every order of the samples; there is no `OutputOverflow`.
///
/// Against the plain `f64` estimator on the same features the relative error is at rounding
/// level while the exponents `ω·x/h` are moderate; for very large `|x|/h` the `f32` exponents
/// lose absolute precision (an exponent near `E` carries an error of about `E·6e-8`), so each
/// weight carries a relative error of about `exp(|E|·6e-8) − 1`, and the output, still convex,
/// is only as close to the `f64` estimate as that.
///
/// # Errors
/// - [`Error::ZeroDimension`], [`Error::DimensionMismatch`], [`Error::ShapeMismatch`],
///   [`Error::Empty`], [`Error::OutputTooSmall`], [`Error::NonFinite`] as
///   [`attention`](crate::attention) (with `dy` for `dv`);
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
/// use nadaraya_rf::{smooth, GaussianFeatures};
/// let x: Vec<f32> = (0..200).map(|i| i as f32 / 100.0 - 1.0).collect();
/// let y: Vec<f32> = x.iter().map(|v| v * v).collect();
/// let f = GaussianFeatures::for_dim(1, 512, 0.3, 11)?;
/// let mut out = [0.0];
/// smooth(&f, &[0.0], &x, &y, 1, 1, &mut out)?;
/// assert!(out[0] >= 0.0 && out[0] < 0.2); // the exact smoother gives ≈ 0.08
/// # Ok::<(), nadaraya_rf::Error>(())
/// ```
pub fn smooth(
    features: &GaussianFeatures,
    queries: &[f32],
    x: &[f32],
    y: &[f32],
    d: usize,
    dy: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    let (mq, _) = check_shapes(features.dim(), queries, x, y, d, dy, out)?;
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

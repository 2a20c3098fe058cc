//! Random Fourier features for the Gaussian kernel: the trigonometric estimator, kept for those who
//! ask for it (the default Gaussian smoother is [`smooth`](crate::smooth), with positive features).

use nalgebra::{DMatrix, DMatrixView, DMatrixViewMut};

use crate::attention::{TILE, check_shapes};
use crate::gaussian::zeros;
use crate::{Error, Projection, Sampling};

/// The guard on the trigonometric smoothing denominator, as a fraction of its largest possible
/// value.
///
/// The denominator `Σ_i φ(q)·φ(x_i)` estimates the kernel mass `Σ_i exp(−|q − x_i|²/2h²) ∈ (0, N]`
/// but random Fourier features are signed, so the estimate can be tiny or negative when the true
/// mass is below the estimator's noise (about `N/√m`). [`smooth_fourier`] rejects a query whose
/// estimated mean kernel mass is at most `2⁻²⁰ ≈ 9.5e-7` (a denominator `≤ N · FOURIER_MASS_FLOOR`)
/// with [`Error::Empty`] ([`MassGuard::Reject`], the default): no sample is within the
/// estimator's reach there. Above the floor the ratio is returned as it is, and may still lie
/// outside the responses' range.
pub const FOURIER_MASS_FLOOR: f32 = 1.0 / 1_048_576.0;

/// What [`smooth_fourier`] does with a query whose estimated kernel mass is at or below
/// `N·m·`[`FOURIER_MASS_FLOOR`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MassGuard {
    /// Return [`Error::Empty`] (the default): better an error than a value far outside the data.
    #[default]
    Reject,
    /// Divide by the floor instead (the behaviour before `Reject` existed, kept so that old
    /// figures can be reproduced): the row comes out finite but may be far outside the data, as
    /// far as `2²⁰·max|y|` (one sample with `y = 1` gave `−1 048 576`).
    Floor,
}

/// Random Fourier features for the Gaussian kernel of bandwidth `h`:
/// `φ(x) = [cos(ω_i·x/h), sin(ω_i·x/h)]_{i≤m} / √m`, so `E[φ(x)·φ(y)] = exp(−|x − y|²/2h²)`
/// (Rahimi & Recht 2007).
///
/// # Examples
/// ```
/// use nadaraya_rf::{FourierFeatures, Projection, Sampling};
/// let f = FourierFeatures::new(Projection::new(2, 512, Sampling::Iid, 5)?, 1.0)?;
/// let (mut a, mut b) = (vec![0.0; 1024], vec![0.0; 1024]);
/// f.map(&[0.0, 0.0], &mut a)?;
/// f.map(&[1.0, 0.0], &mut b)?;
/// let k: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
/// assert!((k - (-0.5f32).exp()).abs() < 0.1);
/// # Ok::<(), nadaraya_rf::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct FourierFeatures {
    projection: Projection,
    h: f32,
    guard: MassGuard,
    // m×d column-major: ω_i / h.
    w: DMatrix<f32>,
}

impl FourierFeatures {
    /// Features for bandwidth `h` from a drawn projection, with [`MassGuard::Reject`].
    ///
    /// # Errors
    /// [`Error::InvalidBandwidth`] if `h` is not finite, not `> 0`, or `1/h` is not a normal
    /// `f32`.
    pub fn new(projection: Projection, h: f32) -> Result<Self, Error> {
        let inv = (1.0 / f64::from(h)) as f32;
        if !(h.is_finite() && h > 0.0 && inv.is_normal()) {
            return Err(Error::InvalidBandwidth);
        }
        let w = build(&projection, 1.0 / f64::from(h));
        Ok(Self {
            projection,
            h,
            guard: MassGuard::Reject,
            w,
        })
    }

    /// The same features with the guard `guard` for [`smooth_fourier`].
    #[must_use]
    pub fn with_guard(self, guard: MassGuard) -> Self {
        Self { guard, ..self }
    }

    /// The guard [`smooth_fourier`] applies.
    #[must_use]
    pub fn guard(&self) -> MassGuard {
        self.guard
    }

    /// `m` features for dimension `d` and bandwidth `h`, orthogonal rows with chi norms, draw 0
    /// of `seed`.
    ///
    /// # Errors
    /// As [`Projection::new`] and [`new`](Self::new).
    pub fn for_dim(d: usize, m: usize, h: f32, seed: u64) -> Result<Self, Error> {
        let p = Projection::new(d, m, Sampling::Orthogonal(crate::RowNorm::Chi), seed)?;
        Self::new(p, h)
    }

    /// Replaces the projection by its next draw ([`Projection::redraw`]).
    ///
    /// # Errors
    /// [`Error::TooManyFeatures`] if the scratch of the orthogonal draw cannot be allocated; the
    /// features are then unchanged.
    pub fn redraw(&mut self) -> Result<(), Error> {
        self.projection.redraw()?;
        self.w = build(&self.projection, 1.0 / f64::from(self.h));
        Ok(())
    }

    /// The projection the features use.
    #[must_use]
    pub fn projection(&self) -> &Projection {
        &self.projection
    }

    /// The bandwidth `h`.
    #[must_use]
    pub fn bandwidth(&self) -> f32 {
        self.h
    }

    /// The input dimension `d`.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.projection.dim()
    }

    /// The number of features, `2m` (a cosine and a sine per row).
    #[must_use]
    pub fn features(&self) -> usize {
        2 * self.w.nrows()
    }

    /// `φ(x)` into `out[..2m]`: the `m` cosines, then the `m` sines, each divided by `√m`.
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`], [`Error::OutputTooSmall`], [`Error::NonFinite`], and
    /// [`Error::ScoreOverflow`] if a phase `ω_i·x/h` is not finite.
    pub fn map(&self, x: &[f32], out: &mut [f32]) -> Result<(), Error> {
        let d = self.dim();
        if x.len() != d {
            return Err(Error::DimensionMismatch {
                expected: d,
                found: x.len(),
            });
        }
        let m = self.w.nrows();
        let out = out.get_mut(..2 * m).ok_or(Error::OutputTooSmall)?;
        if !x.iter().all(|v| v.is_finite()) {
            return Err(Error::NonFinite);
        }
        let mut phase = vec![0.0f32; m];
        DMatrixViewMut::from_slice(&mut phase, m, 1).gemm(
            1.0,
            &self.w,
            &DMatrixView::from_slice(x, d, 1),
            0.0,
        );
        let s = 1.0 / (m as f32).sqrt();
        let (cos, sin) = out.split_at_mut(m);
        for ((p, c), sn) in phase.iter().zip(cos).zip(sin) {
            if !p.is_finite() {
                return Err(Error::ScoreOverflow);
            }
            let (a, b) = p.sin_cos();
            *c = b * s;
            *sn = a * s;
        }
        Ok(())
    }
}

/// The `m×d` column-major matrix `[ω_i·s]`.
fn build(p: &Projection, s: f64) -> DMatrix<f32> {
    let (d, rows) = (p.dim(), p.rows());
    DMatrix::from_fn(p.count(), d, |i, j| (f64::from(rows[i * d + j]) * s) as f32)
}

/// Maps a tile of phases (`m×t` column-major, from `ω·x/h`) to unscaled features `[cos; sin]`
/// (`2m×t` column-major) in `phi`.
fn fourier_tile(phase: &[f32], m: usize, phi: &mut [f32]) -> Result<(), Error> {
    for (p, f) in phase.chunks_exact(m).zip(phi.chunks_exact_mut(2 * m)) {
        let (cos, sin) = f.split_at_mut(m);
        for ((x, c), s) in p.iter().zip(cos).zip(sin) {
            if !x.is_finite() {
                return Err(Error::ScoreOverflow);
            }
            let (a, b) = x.sin_cos();
            *c = b;
            *s = a;
        }
    }
    Ok(())
}

/// Linear-time Nadaraya–Watson smoothing with the Gaussian kernel through random Fourier
/// features (the trigonometric estimator): `out_t = Σ_i φ(q_t)·φ(x_i) y_i / Σ_i φ(q_t)·φ(x_i)`,
/// a random-feature estimate of [`nadaraya::attention`] with the [`nadaraya::Gaussian`] kernel
/// of the same bandwidth.
///
/// **Prefer [`smooth`](crate::smooth)** (positive features: always a convex combination of the
/// responses). The trigonometric estimate `φ(q)·φ(x_i)` is signed, so its weights can be
/// negative and its denominator near zero or negative wherever the true kernel mass is below
/// the estimator's noise (about `N/√m`: far from the data, small `h`, few features). There the
/// ratio lies far outside the data (one sample with `y = 1` gave `−1 048 576` before the
/// guard below rejected it). This function returns [`Error::Empty`] for a query whose estimated
/// mass is `≤ N·m·`[`FOURIER_MASS_FLOOR`] (the unscaled features' largest mass is `N·m`), or
/// divides by that floor if the features carry [`MassGuard::Floor`], and returns the ratio
/// otherwise, which may still lie outside the responses' range when the denominator is small
/// but above the floor.
///
/// Same shapes as [`nadaraya::attention`]: `queries` `M×d`, sample locations `x` `N×d`,
/// responses `y` `N×dy`, `out` at least `M×dy`. `O((M + N)·m·(d + dy))` time, `O(m·dy)` extra
/// memory (`2m·dy + 3m·64 + 2m` floats).
///
/// # Errors
/// - As [`attention`](crate::attention) (with `dy` for `dv`): [`Error::ZeroDimension`],
///   [`Error::DimensionMismatch`], [`Error::ShapeMismatch`], [`Error::Empty`] for no samples,
///   [`Error::OutputTooSmall`], [`Error::NonFinite`], [`Error::ScoreOverflow`] for a phase
///   `ω·x/h` that is not finite, [`Error::OutputOverflow`] for a ratio that is not finite;
/// - [`Error::Empty`] also for a query whose estimated kernel mass is at or below the floor,
///   unless the features carry [`MassGuard::Floor`];
/// - [`Error::TooManyFeatures`] if the `2m·dy` sums cannot be allocated.
///
/// After a computing error `out` may hold partial results.
///
/// # Examples
/// ```
/// use nadaraya_rf::{smooth_fourier, FourierFeatures};
/// let x: Vec<f32> = (0..200).map(|i| i as f32 / 100.0 - 1.0).collect();
/// let y: Vec<f32> = x.iter().map(|v| v * v).collect();
/// let f = FourierFeatures::for_dim(1, 512, 0.3, 11)?;
/// let mut out = [0.0];
/// smooth_fourier(&f, &[0.0], &x, &y, 1, 1, &mut out)?;
/// assert!(out[0] > -0.05 && out[0] < 0.2); // the exact smoother gives ≈ 0.08
/// # Ok::<(), nadaraya_rf::Error>(())
/// ```
pub fn smooth_fourier(
    features: &FourierFeatures,
    queries: &[f32],
    x: &[f32],
    y: &[f32],
    d: usize,
    dy: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    let (mq, n) = check_shapes(features.dim(), queries, x, y, d, dy, out)?;
    let m = features.w.nrows();
    let r = 2 * m;
    let too_many = Error::TooManyFeatures;
    let mut phase = zeros(m.checked_mul(TILE).ok_or(too_many)?)?;
    let mut phi = zeros(r.checked_mul(TILE).ok_or(too_many)?)?;
    let mut s = DMatrix::from_vec(dy, r, zeros(dy.checked_mul(r).ok_or(too_many)?)?);
    let mut z = zeros(r)?;
    for (xt, yt) in x.chunks(TILE * d).zip(y.chunks(TILE * dy)) {
        let t = xt.len() / d;
        let (ph, f) = (&mut phase[..m * t], &mut phi[..r * t]);
        DMatrixViewMut::from_slice(ph, m, t).gemm(
            1.0,
            &features.w,
            &DMatrixView::from_slice(xt, d, t),
            0.0,
        );
        fourier_tile(ph, m, f)?;
        for col in f.chunks_exact(r) {
            for (zi, &p) in z.iter_mut().zip(col) {
                *zi += p;
            }
        }
        let phi_t = DMatrixView::from_slice_with_strides(f, t, r, r, 1);
        s.gemm(1.0, &DMatrixView::from_slice(yt, dy, t), &phi_t, 1.0);
    }
    // The features are unscaled (no 1/√m), so the denominator's largest value is m·N.
    let floor = m as f32 * n as f32 * FOURIER_MASS_FLOOR;
    let out = &mut out[..mq * dy];
    let mut ok = true;
    for (qt, ot) in queries.chunks(TILE * d).zip(out.chunks_mut(TILE * dy)) {
        let t = qt.len() / d;
        let (ph, f) = (&mut phase[..m * t], &mut phi[..r * t]);
        DMatrixViewMut::from_slice(ph, m, t).gemm(
            1.0,
            &features.w,
            &DMatrixView::from_slice(qt, d, t),
            0.0,
        );
        fourier_tile(ph, m, f)?;
        DMatrixViewMut::from_slice(ot, dy, t).gemm(1.0, &s, &DMatrixView::from_slice(f, r, t), 0.0);
        for (col, o) in f.chunks_exact(r).zip(ot.chunks_exact_mut(dy)) {
            let den: f32 = col.iter().zip(&z).map(|(a, b)| a * b).sum();
            let den = if den <= floor {
                match features.guard {
                    MassGuard::Reject => return Err(Error::Empty),
                    MassGuard::Floor => floor,
                }
            } else {
                den
            };
            let inv = 1.0 / den;
            for v in o.iter_mut() {
                *v *= inv;
                ok &= v.is_finite();
            }
        }
    }
    if ok {
        Ok(())
    } else {
        Err(Error::OutputOverflow)
    }
}

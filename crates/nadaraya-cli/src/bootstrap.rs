//! Bootstrap bands for a fitted smoother: resample the pairs `(x_i, y_i)`, refit, take
//! percentiles.
//!
//! Each replicate draws `N` pairs with replacement (a ChaCha8 stream from the seed, so a seed
//! gives the same bands on every platform) and refits **at the model's bandwidth(s)**, selected
//! once on the original data; the bandwidth is not re-selected per replicate. Re-selecting would
//! cost a whole cross-validation per replicate, and leave-one-out CV on a resample is biased
//! towards small `h`: a pair drawn twice is its own best predictor once the other copy is left
//! in. The bands are therefore conditional on `h`, as the asymptotic ones are.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::Error;
use crate::fit::Model;

/// The bootstrap at every query: the standard error and the percentile band.
#[derive(Clone, Debug, PartialEq)]
pub struct Bands {
    /// The standard deviation of the replicates' fits (divisor `B_q − 1`).
    pub se: Vec<f64>,
    /// The lower percentile, `(1 − level)/2`.
    pub lo: Vec<f64>,
    /// The upper percentile, `(1 + level)/2`.
    pub hi: Vec<f64>,
    /// How many replicates `B_q` had a fit at the query: a replicate whose fit fails there (a
    /// compact kernel with no resampled pair in its support, a singular local-linear design) is
    /// left out of that query's figures, and counted here, never silently.
    pub used: Vec<usize>,
}

/// The `q`-quantile of sorted `v` (linear between order statistics, as numpy's default and R's
/// type 7).
fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = q * (v.len() - 1) as f64;
    let (i, f) = (pos.floor() as usize, pos - pos.floor());
    let j = (i + 1).min(v.len() - 1);
    v[i] + f * (v[j] - v[i])
}

/// `replicates` pairs-bootstrap fits of `model` on the samples `(x, y)` (`x` row-major) at the
/// query rows `q`, summarised as [`Bands`] with a central `level` (such as 0.95).
///
/// # Errors
/// [`Error::Option`] if `replicates < 2` or `level` is not in `(0, 1)`.
///
/// # Examples
/// ```
/// use nadaraya_cli::{bootstrap, fit::{KernelName, Model}};
/// let model = Model { kernel: KernelName::Gaussian, local_linear: false, bandwidths: vec![0.5] };
/// let x = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5];
/// let y = [0.1, 0.4, 0.9, 1.6, 1.9, 2.6];
/// let b = bootstrap::bands(&model, &x, &y, &[1.25], 200, 7, 0.9)?;
/// assert!(b.lo[0] < b.hi[0] && b.se[0] > 0.0 && b.used[0] == 200);
/// assert_eq!(b, bootstrap::bands(&model, &x, &y, &[1.25], 200, 7, 0.9)?);
/// # Ok::<(), nadaraya_cli::Error>(())
/// ```
pub fn bands(
    model: &Model,
    x: &[f32],
    y: &[f32],
    q: &[f32],
    replicates: usize,
    seed: u64,
    level: f64,
) -> Result<Bands, Error> {
    if replicates < 2 {
        return Err(Error::Option(
            "`--bootstrap` needs at least 2 replicates".into(),
        ));
    }
    if !(level > 0.0 && level < 1.0) {
        return Err(Error::Option(format!(
            "`--level {level}`: a confidence level is between 0 and 1"
        )));
    }
    let n = y.len();
    let d = x.len() / n.max(1);
    let m = q.len() / d.max(1);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut fits: Vec<Vec<f64>> = vec![Vec::with_capacity(replicates); m];
    let (mut bx, mut by) = (vec![0.0; n * d], vec![0.0; n]);
    let mut one = [0.0f32];
    let mut out = vec![0.0f32; m];
    for _ in 0..replicates {
        for i in 0..n {
            let k = rng.random_range(0..n);
            bx[i * d..(i + 1) * d].copy_from_slice(&x[k * d..(k + 1) * d]);
            by[i] = y[k];
        }
        if model.predict(&bx, &by, q, &mut out).is_ok() {
            for (f, &v) in fits.iter_mut().zip(&out) {
                f.push(f64::from(v));
            }
            continue;
        }
        // Some query failed: fit the queries one by one and keep those that succeed.
        for (j, f) in fits.iter_mut().enumerate() {
            if model
                .predict(&bx, &by, &q[j * d..(j + 1) * d], &mut one)
                .is_ok()
            {
                f.push(f64::from(one[0]));
            }
        }
    }
    let mut b = Bands {
        se: Vec::with_capacity(m),
        lo: Vec::with_capacity(m),
        hi: Vec::with_capacity(m),
        used: Vec::with_capacity(m),
    };
    for mut f in fits {
        f.sort_by(f64::total_cmp);
        let k = f.len();
        let mean = f.iter().sum::<f64>() / k.max(1) as f64;
        let var = f.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (k.max(2) - 1) as f64;
        b.se.push(if k >= 2 { var.sqrt() } else { f64::NAN });
        b.lo.push(quantile(&f, (1.0 - level) / 2.0));
        b.hi.push(quantile(&f, (1.0 + level) / 2.0));
        b.used.push(k);
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::KernelName;

    fn model(h: f32) -> Model {
        Model {
            kernel: KernelName::Gaussian,
            local_linear: false,
            bandwidths: vec![h],
        }
    }

    /// `n` samples with x uniform on [0, 1) and y = 1 + σ·(uniform on [-√3, √3)): a constant
    /// mean, so Nadaraya–Watson has no bias and its variance at q is σ² Σ_i w_i(q)².
    fn flat(n: usize, sigma: f64, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        let x = (0..n).map(|_| r.random::<f32>()).collect();
        let y = (0..n)
            .map(|_| (1.0 + sigma * 3f64.sqrt() * (2.0 * r.random::<f64>() - 1.0)) as f32)
            .collect();
        (x, y)
    }

    /// σ √(Σ w_i²) with Gaussian weights at q, plainly in f64.
    fn asymptotic_se(x: &[f32], q: f64, h: f64, sigma: f64) -> f64 {
        let w: Vec<f64> = x
            .iter()
            .map(|&xi| (-(f64::from(xi) - q).powi(2) / (2.0 * h * h)).exp())
            .collect();
        let s: f64 = w.iter().sum();
        sigma * (w.iter().map(|v| (v / s).powi(2)).sum::<f64>()).sqrt()
    }

    #[test]
    fn the_bootstrap_se_is_near_the_asymptotic_se() {
        let (sigma, h) = (0.5, 0.1);
        let (x, y) = flat(400, sigma, 3);
        let q = [0.2f32, 0.5, 0.8];
        let b = bands(&model(h as f32), &x, &y, &q, 2000, 11, 0.95).unwrap();
        for (j, &qj) in q.iter().enumerate() {
            let a = asymptotic_se(&x, f64::from(qj), h, sigma);
            let r = b.se[j] / a;
            assert!(
                (r - 1.0).abs() < 0.15,
                "q {qj}: bootstrap {} asymptotic {a}",
                b.se[j]
            );
            // The 95% band is about ±1.96 SE wide around the fit.
            let width = (b.hi[j] - b.lo[j]) / (2.0 * 1.96 * a);
            assert!((width - 1.0).abs() < 0.2, "q {qj}: width ratio {width}");
            assert_eq!(b.used[j], 2000);
        }
    }

    #[test]
    fn a_seed_gives_the_same_bands_and_another_seed_others() {
        let (x, y) = flat(50, 0.3, 4);
        let q = [0.1f32, 0.9];
        let a = bands(&model(0.2), &x, &y, &q, 100, 5, 0.9).unwrap();
        assert_eq!(a, bands(&model(0.2), &x, &y, &q, 100, 5, 0.9).unwrap());
        let b = bands(&model(0.2), &x, &y, &q, 100, 6, 0.9).unwrap();
        assert_ne!(a.se, b.se);
    }

    #[test]
    fn quantiles_interpolate_and_bad_options_are_errors() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.625), 3.5);
        assert_eq!(quantile(&v, 1.0), 5.0);
        let (x, y) = flat(10, 0.3, 1);
        assert!(bands(&model(0.2), &x, &y, &[0.5], 1, 0, 0.9).is_err());
        assert!(bands(&model(0.2), &x, &y, &[0.5], 10, 0, 1.0).is_err());
        assert!(bands(&model(0.2), &x, &y, &[0.5], 10, 0, f64::NAN).is_err());
    }
}

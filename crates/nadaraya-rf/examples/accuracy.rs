//! The accuracy tables of the crate README: relative error `‖O_rf − O_exact‖ / ‖O_exact‖` of
//! random-feature attention against the core's exact `nadaraya::attention` (`SoftmaxDot`,
//! `τ = √d`), and of random-feature Gaussian smoothing against the exact `Gaussian` kernel,
//! mean ± standard deviation over 8 seeds of the features (same inputs).
//!
//! `cargo run --release -p nadaraya-rf --example accuracy`

use nadaraya::{Gaussian, SoftmaxDot};
use nadaraya_rf::{
    FavorPlus, FourierFeatures, GaussianFeatures, MassGuard, Oprf, Projection, RowNorm, Sampling,
    Variant, attention, smooth, smooth_fourier,
};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rand_distr::{Distribution, Normal};

const SEEDS: u64 = 8;

fn normal(n: usize, sigma: f32, rng: &mut ChaCha20Rng) -> Vec<f32> {
    let dist = Normal::new(0.0, sigma).expect("valid sigma");
    (0..n).map(|_| dist.sample(rng)).collect()
}

/// Mean and sample standard deviation.
fn mean_sd(errs: &[f64]) -> (f64, f64) {
    let mean = errs.iter().sum::<f64>() / errs.len() as f64;
    let var = errs.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (errs.len() - 1) as f64;
    (mean, var.sqrt())
}

fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum();
    let den: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
    (num / den).sqrt()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cases = [
        (
            "(i) L=4096, d=16, q,k,v ~ N(0, 0.5²)",
            4096usize,
            16usize,
            0.5f32,
            0.5f32,
        ),
        ("(ii) L=1024, d=64, q,k,v ~ N(0, 1)", 1024, 64, 1.0, 1.0),
    ];
    let kinds = [
        ("iid, positive", Sampling::Iid, Variant::Positive),
        (
            "orthogonal (chi), positive",
            Sampling::Orthogonal(RowNorm::Chi),
            Variant::Positive,
        ),
        (
            "orthogonal (chi), hyperbolic",
            Sampling::Orthogonal(RowNorm::Chi),
            Variant::Hyperbolic,
        ),
        // The variant's A is fitted to these q, k below.
        (
            "orthogonal (chi), OPRF",
            Sampling::Orthogonal(RowNorm::Chi),
            Variant::Positive,
        ),
    ];
    let ms = [16usize, 64, 256, 1024];
    for (name, l, d, sqk, sv) in cases {
        let mut rng = ChaCha20Rng::seed_from_u64(2021);
        let q = normal(l * d, sqk, &mut rng);
        let k = normal(l * d, sqk, &mut rng);
        let v = normal(l * d, sv, &mut rng);
        let mut exact = vec![0.0; l * d];
        nadaraya::attention(
            &SoftmaxDot::for_dim(d)?,
            nadaraya::Rows::new(&q, d)?,
            nadaraya::Rows::new(&k, d)?,
            nadaraya::Rows::new(&v, d)?,
            nadaraya::Mask::None,
            nadaraya::RowsMut::new(&mut exact, d)?,
        )?;
        println!("\n{name}, dv = d, τ = √d; relative error, mean ± sd over {SEEDS} seeds\n");
        print!("| features |");
        for m in ms {
            print!(" m = {m} |");
        }
        println!("\n|---|{}", "---|".repeat(ms.len()));
        let tau = (d as f32).sqrt();
        let oprf = Variant::Optimal(Oprf::fit(&q, &k, d, tau)?);
        for (i, (kname, sampling, variant)) in kinds.into_iter().enumerate() {
            let variant = if i == 3 { oprf } else { variant };
            print!("| {kname} |");
            for m in ms {
                let errs: Vec<f64> = (0..SEEDS)
                    .map(|seed| {
                        let p = Projection::new(d, m, sampling, seed)?;
                        let f = FavorPlus::new(p, (d as f32).sqrt(), variant)?;
                        let mut out = vec![0.0; l * d];
                        attention(&f, &q, &k, &v, d, d, &mut out)?;
                        Ok(rel_err(&out, &exact))
                    })
                    .collect::<Result<_, nadaraya_rf::Error>>()?;
                let (mean, sd) = mean_sd(&errs);
                print!(" {mean:.4} ± {sd:.4} |");
            }
            println!();
        }
    }
    gaussian_table(&ms)
}

/// Gaussian Nadaraya–Watson smoothing: the signed random Fourier features (`smooth_fourier`,
/// with `MassGuard::Floor` so that a near-zero denominator is measured rather than rejected)
/// against the positive ones of `smooth` (FAVOR+ and OPRF features at `τ = h²`).
fn gaussian_table(ms: &[usize]) -> Result<(), Box<dyn std::error::Error>> {
    let (l, d, sigma, h) = (4096usize, 16usize, 0.5f32, 2.0f32);
    let mut rng = ChaCha20Rng::seed_from_u64(2022);
    let q = normal(l * d, sigma, &mut rng);
    let x = normal(l * d, sigma, &mut rng);
    let y = normal(l * d, sigma, &mut rng);
    let mut exact = vec![0.0; l * d];
    nadaraya::attention(
        &Gaussian::new(h)?,
        nadaraya::Rows::new(&q, d)?,
        nadaraya::Rows::new(&x, d)?,
        nadaraya::Rows::new(&y, d)?,
        nadaraya::Mask::None,
        nadaraya::RowsMut::new(&mut exact, d)?,
    )?;
    println!(
        "\n(iii) Gaussian smoothing, L=4096, d=16, q,x,y ~ N(0, 0.5²), dy = d, h = 2; \
         relative error, mean ± sd over {SEEDS} seeds\n"
    );
    print!("| features |");
    for m in ms {
        print!(" m = {m} |");
    }
    println!("\n|---|{}", "---|".repeat(ms.len()));
    let orth = Sampling::Orthogonal(RowNorm::Chi);
    let kinds = [
        "orthogonal (chi), random Fourier (`smooth_fourier`)",
        "orthogonal (chi), positive (`smooth`)",
        "orthogonal (chi), OPRF (`smooth`)",
    ];
    for (i, kname) in kinds.iter().enumerate() {
        print!("| {kname} |");
        for &m in ms {
            let errs: Vec<f64> = (0..SEEDS)
                .map(|seed| {
                    let p = Projection::new(d, m, orth, seed)?;
                    let mut out = vec![0.0; l * d];
                    match i {
                        0 => {
                            let f = FourierFeatures::new(p, h)?.with_guard(MassGuard::Floor);
                            smooth_fourier(&f, &q, &x, &y, d, d, &mut out)?;
                        }
                        1 => {
                            let f = GaussianFeatures::new(p, h, Variant::Positive)?;
                            smooth(&f, &q, &x, &y, d, d, &mut out)?;
                        }
                        _ => {
                            let f = GaussianFeatures::optimal(p, h, &q, &x, d)?;
                            smooth(&f, &q, &x, &y, d, d, &mut out)?;
                        }
                    }
                    Ok(rel_err(&out, &exact))
                })
                .collect::<Result<_, nadaraya_rf::Error>>()?;
            let (mean, sd) = mean_sd(&errs);
            print!(" {mean:.4} ± {sd:.4} |");
        }
        println!();
    }
    Ok(())
}

//! Measures the core's error against the plain f64 reference over a grid of shapes and kernels,
//! for the accuracy table in `crates/nadaraya/README.md`.
//!
//! `cargo run --release -p nadaraya-tests --example accuracy`
//!
//! Inputs are uniform in `[-1, 1]`, values uniform in `[-1, 1]` (scale 1); 50 queries per row.
//! "max |err|" is the largest absolute error of any output coordinate against the f64 result;
//! "weights" the largest absolute error of any normalised weight.

#[path = "../tests/core_flat/mod.rs"]
mod core_flat;
use core_flat::{attention, weights};
use nadaraya::{Gaussian, Kernel, SoftmaxDot};
use nadaraya_tests::reference::{self, RefKernel, widen};

fn measure<K: Kernel>(k: &K, rk: RefKernel, n: usize, d: usize, dv: usize) -> (f64, f64) {
    let mut r = nadaraya_tests::uniform((n * 131 + d * 7 + dv) as u64);
    let keys: Vec<f32> = (0..n * d).map(|_| r()).collect();
    let values: Vec<f32> = (0..n * dv).map(|_| r()).collect();
    let (k64, v64) = (widen(&keys), widen(&values));
    let (mut worst, mut worst_w) = (0.0f64, 0.0f64);
    let mut out = vec![0.0; dv];
    let mut w = vec![0.0; n];
    for _ in 0..50 {
        let q: Vec<f32> = (0..d).map(|_| r()).collect();
        let q64 = widen(&q);
        attention(k, &q, &keys, &values, d, dv, &mut out).unwrap();
        let want = reference::smooth(rk, &q64, &k64, &v64, dv);
        for (g, w) in out.iter().zip(&want) {
            worst = worst.max((f64::from(*g) - w).abs());
        }
        weights(k, &q, &keys, &mut w).unwrap();
        for (g, w) in w.iter().zip(reference::weights(rk, &q64, &k64)) {
            worst_w = worst_w.max((f64::from(*g) - w).abs());
        }
    }
    (worst, worst_w)
}

fn main() {
    println!("| kernel | N | d | dv | max abs err (values in [-1, 1]) | max weight err |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for &(n, d, dv) in &[
        (16, 1, 1),
        (256, 1, 1),
        (4096, 1, 1),
        (256, 8, 8),
        (4096, 16, 16),
        (4096, 64, 64),
    ] {
        let sd = (d as f32).sqrt();
        for h in [0.2f32, 1.0] {
            let h = h * sd;
            let k = Gaussian::new(h).unwrap();
            let (e, ew) = measure(&k, RefKernel::Gaussian { h: f64::from(h) }, n, d, dv);
            println!("| Gaussian h = {h:.2} | {n} | {d} | {dv} | {e:.2e} | {ew:.2e} |");
        }
        for tau in [sd, 0.1] {
            let k = SoftmaxDot::new(tau).unwrap();
            let (e, ew) = measure(
                &k,
                RefKernel::SoftmaxDot {
                    tau: f64::from(tau),
                },
                n,
                d,
                dv,
            );
            println!("| softmax-dot τ = {tau:.2} | {n} | {d} | {dv} | {e:.2e} | {ew:.2e} |");
        }
    }
}

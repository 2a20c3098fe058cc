//! Fixed local-linear workloads to count instructions of (`valgrind --tool=callgrind`):
//!
//! - `icount_ll N D R fit`: `fit::local_linear` of one query over `N` samples of width `D`
//!   (`DV = 1`), `R` times;
//! - `icount_ll N D R loo`: `fit::loo_cv_local_linear` over `N` samples, `R` times;
//! - `icount_ll N D R se`: `fit::standard_error` (local-linear, constant noise), `R` times.
//!
//! ```text
//! cargo build --release -p nadaraya --example icount_ll
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/icount_ll N D R mode
//! ```
//! The difference between `R = 3` and `R = 1`, halved, is the cost of one call.

use nadaraya::fit::{self, Estimate, Fit, Noise};
use nadaraya::{Gaussian, Rows};
use std::hint::black_box;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, def: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(def);
    let (n, d, reps) = (num(0, 1000).max(2), num(1, 1).clamp(1, 16), num(2, 1));
    let mode = args.get(3).map_or("fit", String::as_str);
    let mut s = 1u64;
    let mut rng = || {
        s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((s >> 40) as f32) / 16_777_216.0
    };
    let x: Vec<f32> = (0..n * d).map(|_| rng()).collect();
    let y: Vec<f32> = x
        .chunks(d)
        .map(|r| r.iter().sum::<f32>().sin() + 0.1 * rng())
        .collect();
    let (xr, yr) = (
        Rows::new(&x, d).expect("shape"),
        Rows::new(&y, 1).expect("shape"),
    );
    let k = Gaussian::new(0.2 * (d as f32).sqrt()).expect("h");
    let q = vec![0.5f32; d];
    let mut acc = 0.0f64;
    for _ in 0..reps {
        acc += match mode {
            "loo" => fit::loo_cv_local_linear(&k, black_box(xr), yr).unwrap_or(f64::NAN),
            "se" => {
                let mut e = [Estimate::default()];
                let r = fit::standard_error(
                    Fit::LocalLinear,
                    &k,
                    black_box(&q),
                    xr,
                    yr,
                    Noise::Constant(&[0.01]),
                    &mut e,
                );
                r.map_or(f64::NAN, |()| f64::from(e[0].se))
            }
            _ => {
                let mut o = [0.0f32];
                let r = fit::local_linear(&k, black_box(&q), xr, yr, &mut o);
                r.map_or(f64::NAN, |()| f64::from(o[0]))
            }
        };
    }
    println!("{acc}");
}

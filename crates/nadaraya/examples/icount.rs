//! Fixed workloads to count instructions of (`valgrind --tool=callgrind`), which unlike wall time
//! is stable on a shared machine.
//!
//! - `icount M R` (or `icount M R attention`): `attention` with `N = 4096` keys, `d = dv = 64`,
//!   `M` queries, called `R` times; `icount M R f16` (build with `--features half`) the same
//!   with keys and values stored as `f16`;
//! - `icount M R predict` / `icount M R predict_many`: a `Smoother<Gaussian, 4096, 1, 1>` holding
//!   4096 samples, `M` queries answered by `M` calls of `predict` or one `predict_many`, `R`
//!   times; `predict64` / `predict_many64` the same with `D = DV = 64`;
//! - `icount M R sm256` / `icount M R sm256f16` (build with `--features half`): a full
//!   `Smoother<Gaussian, 256, 8, 1>` (samples stored as `f32`, or as `f16`), `M` calls of
//!   `predict`, `R` times;
//! - `icount 1 R loo`: `fit::loo_cv` with a Gaussian kernel over `N = 4096` samples, `D = DV = 1`
//!   (`N·(N − 1)` kernel evaluations per call), `R` times;
//! - `icount 1 R select3`: `fit::select_bandwidths` on `N = 500`, `D = 3` samples whose third
//!   coordinate is irrelevant, `R` times (prints the bandwidths and the CV).
//!
//! ```text
//! cargo build --release -p nadaraya --example icount
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/icount M R [mode]
//! ```
//! The difference between `R = 11` and `R = 1`, divided by 10, is the cost of one call (or of
//! one batch of `M` queries). `NADARAYA_LEVEL=baseline|avx2|avx512` forces a run-time dispatch
//! level (`nadaraya::dispatch`; valgrind runs AVX2 at most).

use nadaraya::{Gaussian, Mask, Rows, RowsMut, Sample, Smoother, SoftmaxDot, attention};
use std::hint::black_box;

fn main() {
    if let Some(l) = std::env::var("NADARAYA_LEVEL")
        .ok()
        .and_then(|n| nadaraya::dispatch::Level::from_name(&n))
    {
        let got = nadaraya::dispatch::force(l);
        eprintln!("dispatch level {got} (asked for {l})");
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(1usize);
    let (m, reps) = (num(0).clamp(1, 64), num(1));
    let mode = args.get(2).map_or("attention", String::as_str);
    let (n, d, dv) = (4096usize, 64usize, 64usize);
    let mut s = 1u64;
    let mut rng = || {
        s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((s >> 40) as f32) / 16_777_216.0 - 0.5
    };
    match mode {
        "predict" | "predict_many" => return smoother::<1>(m, reps, mode == "predict", &mut rng),
        "predict64" | "predict_many64" => {
            return smoother::<64>(m, reps, mode == "predict64", &mut rng);
        }
        "sm256" => return small::<f32>(m, reps, &mut rng),
        #[cfg(feature = "half")]
        "sm256f16" => return small::<nadaraya::half::f16>(m, reps, &mut rng),
        "loo" => return loo(reps, &mut rng),
        "select3" => return select3(reps, &mut rng),
        _ => {}
    }
    let keys: Vec<f32> = (0..n * d).map(|_| rng()).collect();
    let values: Vec<f32> = (0..n * dv).map(|_| rng()).collect();
    let q: Vec<f32> = (0..m * d).map(|_| rng()).collect();
    let k = SoftmaxDot::for_dim(d).unwrap_or_else(|_| std::process::exit(1));
    let mut out = vec![0.0; m * dv];
    #[cfg(feature = "half")]
    if mode == "f16" {
        let kh: Vec<nadaraya::half::f16> = keys
            .iter()
            .map(|&x| nadaraya::half::f16::from_f32(x))
            .collect();
        let vh: Vec<nadaraya::half::f16> = values
            .iter()
            .map(|&x| nadaraya::half::f16::from_f32(x))
            .collect();
        let (Ok(kr), Ok(vr)) = (Rows::new(&kh, d), Rows::new(&vh, dv)) else {
            std::process::exit(1)
        };
        for _ in 0..reps {
            let (Ok(qr), Ok(o)) = (Rows::new(black_box(&q), d), RowsMut::new(&mut out, dv)) else {
                std::process::exit(1)
            };
            if attention(&k, qr, kr, vr, Mask::None, o).is_err() {
                std::process::exit(1);
            }
        }
        println!("{}", black_box(out[0]));
        return;
    }
    let (Ok(kr), Ok(vr)) = (Rows::new(&keys, d), Rows::new(&values, dv)) else {
        std::process::exit(1)
    };
    for _ in 0..reps {
        let (Ok(qr), Ok(o)) = (Rows::new(black_box(&q), d), RowsMut::new(&mut out, dv)) else {
            std::process::exit(1)
        };
        if attention(&k, qr, kr, vr, Mask::None, o).is_err() {
            std::process::exit(1);
        }
    }
    println!("{}", black_box(out[0]));
}

/// `M` queries against a `Smoother<Gaussian, 4096, D, D>` full of samples, `R` times.
fn smoother<const D: usize>(
    m: usize,
    reps: usize,
    one_by_one: bool,
    rng: &mut impl FnMut() -> f32,
) {
    let g = Gaussian::new(0.05 * (D as f32).sqrt()).unwrap_or_else(|_| std::process::exit(1));
    let mut sm: Box<Smoother<Gaussian, 4096, D, D>> = Box::new(Smoother::new(g));
    let samples: Vec<Sample<D, D>> = (0..4096)
        .map(|_| Sample {
            x: core::array::from_fn(|_| rng()),
            y: core::array::from_fn(|_| rng()),
        })
        .collect();
    if sm.try_extend(samples).is_err() {
        std::process::exit(1);
    }
    let q: Vec<[f32; D]> = (0..m).map(|_| core::array::from_fn(|_| rng())).collect();
    let mut out = vec![[0.0f32; D]; m];
    for _ in 0..reps {
        let ok = if one_by_one {
            black_box(&q)
                .iter()
                .zip(out.iter_mut())
                .all(|(x, o)| sm.predict(x).map(|y| *o = y).is_ok())
        } else {
            let o = RowsMut::from_arrays(&mut out);
            sm.predict_many(Rows::from_arrays(black_box(&q)), o).is_ok()
        };
        if !ok {
            std::process::exit(1);
        }
    }
    println!("{}", black_box(out[0][0]));
}

/// `M` calls of `predict` on a full `Smoother<Gaussian, 256, 8, 1, E>`, `R` times.
fn small<E: nadaraya::Element>(m: usize, reps: usize, rng: &mut impl FnMut() -> f32) {
    let g = Gaussian::new(0.5).unwrap_or_else(|_| std::process::exit(1));
    let mut sm: Smoother<Gaussian, 256, 8, 1, E> = Smoother::new(g);
    for _ in 0..256 {
        let x: [f32; 8] = core::array::from_fn(|_| rng());
        if sm.push(x, [rng()]).is_err() {
            std::process::exit(1);
        }
    }
    let q: Vec<[f32; 8]> = (0..m).map(|_| core::array::from_fn(|_| rng())).collect();
    let mut acc = 0.0f32;
    for _ in 0..reps {
        for x in black_box(&q) {
            match sm.predict(x) {
                Ok(y) => acc += y[0],
                Err(_) => std::process::exit(1),
            }
        }
    }
    println!("{}", black_box(acc));
}

/// `fit::loo_cv` over 4096 one-dimensional samples, `R` times.
fn loo(reps: usize, rng: &mut impl FnMut() -> f32) {
    let n = 4096;
    let x: Vec<f32> = (0..n).map(|_| rng()).collect();
    let y: Vec<f32> = x.iter().map(|x| (6.0 * x).sin() + 0.1 * rng()).collect();
    let (Ok(xr), Ok(yr), Ok(k)) = (Rows::new(&x, 1), Rows::new(&y, 1), Gaussian::new(0.05)) else {
        std::process::exit(1)
    };
    let mut total = 0.0;
    for _ in 0..reps {
        total += nadaraya::fit::loo_cv(&k, black_box(xr), yr).unwrap_or(f64::NAN);
    }
    println!("{}", black_box(total));
}

/// `fit::select_bandwidths` on 500 three-dimensional samples, `x_3` irrelevant, `R` times.
fn select3(reps: usize, rng: &mut impl FnMut() -> f32) {
    let n = 500;
    let x: Vec<f32> = (0..3 * n).map(|_| rng()).collect();
    let y: Vec<f32> = x
        .chunks_exact(3)
        .map(|r| (4.0 * r[0]).sin() + r[1] * r[1] + 0.1 * rng())
        .collect();
    let (Ok(xr), Ok(yr)) = (Rows::new(&x, 3), Rows::new(&y, 1)) else {
        std::process::exit(1)
    };
    let mut h = [0.0f32; 3];
    let mut cv = 0.0;
    for _ in 0..reps {
        cv = nadaraya::fit::select_bandwidths(black_box(xr), yr, &mut h, &Default::default())
            .unwrap_or(f64::NAN);
    }
    println!("h {h:?} cv {cv}");
}

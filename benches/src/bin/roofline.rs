//! Measures this machine's limits on one core: peak `f32` fused multiply-add rate, vectorised
//! `exp` throughput, and streaming read bandwidth for buffers from L1-sized to DRAM-sized.
//!
//! ```text
//! cargo run --release -p nadaraya-benches --bin roofline -- [OUT.json]
//! ```
//!
//! Prints a table and, given a path, writes the figures as JSON for the `report` binary. The
//! figures depend on the instructions the build may use (`wide` picks them at compile time):
//! run it in each build flavour, as `benches/run.sh` does.

use std::hint::black_box;
use std::time::{Duration, Instant};

use nadaraya_benches::Limits;
use wide::{f32x8, f32x16};

/// Best time of `reps` runs of `f`, each repeated until it has taken at least `min` in total;
/// returns seconds per call of `f`.
fn best_time(reps: usize, min: Duration, mut f: impl FnMut()) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let start = Instant::now();
        let mut calls = 0u64;
        while start.elapsed() < min {
            f();
            calls += 1;
        }
        best = best.min(start.elapsed().as_secs_f64() / calls as f64);
    }
    best
}

macro_rules! peak_fma {
    ($name:ident, $v:ty, $lanes:expr) => {
        /// Flop/s of `acc = acc·x + y` over `ACC` independent accumulators (FMA = 2 flops).
        fn $name<const ACC: usize>() -> f64 {
            const ITERS: usize = 4096;
            let x = <$v>::splat(black_box(0.999_999));
            let y = <$v>::splat(black_box(1e-7));
            let mut acc = [<$v>::splat(black_box(1.0)); ACC];
            let t = best_time(5, Duration::from_millis(60), || {
                for _ in 0..ITERS {
                    for a in &mut acc {
                        *a = a.mul_add(x, y);
                    }
                }
                black_box(&mut acc);
            });
            (ITERS * ACC * $lanes * 2) as f64 / t
        }
    };
}
peak_fma!(peak8, f32x8, 8);
peak_fma!(peak16, f32x16, 16);

/// Exponentials per second of `nadaraya::math::exp_neg_in_place` over an L1-resident buffer.
fn exp_rate() -> f64 {
    let mut buf: Vec<f32> = (0..4096).map(|i| -(i as f32) / 512.0).collect();
    let t = best_time(5, Duration::from_millis(60), || {
        nadaraya::math::exp_neg_in_place(black_box(&mut buf));
    });
    buf.len() as f64 / t
}

/// `f32::exp` per second, one at a time (what the naive loop pays).
fn libm_exp_rate() -> f64 {
    let src: Vec<f32> = (0..4096).map(|i| -(i as f32) / 512.0).collect();
    let mut dst = vec![0.0f32; src.len()];
    let t = best_time(5, Duration::from_millis(60), || {
        for (d, s) in dst.iter_mut().zip(black_box(&src)) {
            *d = s.exp();
        }
        black_box(&mut dst);
    });
    src.len() as f64 / t
}

/// Bytes per second of summing a `bytes`-sized buffer of `f32` with eight independent vector
/// accumulators (enough to hide the add latency, so that loads, not adds, limit the rate),
/// in `f32x8` and in `f32x16` lanes; the better of the two.
fn read_bandwidth(bytes: usize) -> f64 {
    let buf = vec![1.0f32; bytes / 4];
    let (body, _) = buf.as_chunks::<128>();
    let min = Duration::from_millis(if bytes > 64 << 20 { 400 } else { 60 });
    let t8 = best_time(5, min, || {
        let mut acc = [f32x8::ZERO; 8];
        for c in black_box(body) {
            let (lanes, _) = c.as_chunks::<8>();
            for (i, l) in lanes.iter().enumerate() {
                acc[i % 8] += f32x8::new(*l);
            }
        }
        black_box(acc);
    });
    let t16 = best_time(5, min, || {
        let mut acc = [f32x16::ZERO; 8];
        for c in black_box(body) {
            let (lanes, _) = c.as_chunks::<16>();
            for (a, l) in acc.iter_mut().zip(lanes) {
                *a += f32x16::new(*l);
            }
        }
        black_box(acc);
    });
    (body.len() * 512) as f64 / t8.min(t16)
}

fn features() -> Vec<&'static str> {
    let mut f = Vec::new();
    if cfg!(target_feature = "sse2") {
        f.push("sse2");
    }
    if cfg!(target_feature = "avx") {
        f.push("avx");
    }
    if cfg!(target_feature = "avx2") {
        f.push("avx2");
    }
    if cfg!(target_feature = "fma") {
        f.push("fma");
    }
    if cfg!(target_feature = "avx512f") {
        f.push("avx512f");
    }
    if cfg!(target_feature = "neon") {
        f.push("neon");
    }
    f
}

fn main() {
    let f8 = [peak8::<4>(), peak8::<8>(), peak8::<12>()];
    let f16 = [peak16::<4>(), peak16::<8>(), peak16::<12>()];
    let peak = f8.iter().chain(&f16).copied().fold(0.0, f64::max);
    let exps = exp_rate();
    let libm = libm_exp_rate();
    let sizes: [usize; 10] = [
        16 << 10,
        64 << 10,
        256 << 10,
        1 << 20,
        2 << 20,
        3 << 20,
        8 << 20,
        32 << 20,
        128 << 20,
        1 << 30,
    ];
    let bandwidth: Vec<(f64, f64)> = sizes
        .iter()
        .map(|&s| (s as f64, read_bandwidth(s)))
        .collect();
    println!("target features: {}", features().join(" "));
    println!(
        "peak f32 FMA (f32x8, 4/8/12 accumulators):  {:.1} / {:.1} / {:.1} GFLOP/s",
        f8[0] / 1e9,
        f8[1] / 1e9,
        f8[2] / 1e9
    );
    println!(
        "peak f32 FMA (f32x16, 4/8/12 accumulators): {:.1} / {:.1} / {:.1} GFLOP/s",
        f16[0] / 1e9,
        f16[1] / 1e9,
        f16[2] / 1e9
    );
    println!(
        "vectorised exp (nadaraya::math::exp_neg_in_place): {:.0} M/s",
        exps / 1e6
    );
    println!("f32::exp one at a time: {:.0} M/s", libm / 1e6);
    for (s, b) in &bandwidth {
        println!(
            "read bandwidth, {:>8} KiB buffer: {:.1} GB/s",
            s / 1024.0,
            b / 1e9
        );
    }
    let limits = Limits {
        flops_per_s: peak,
        exps_per_s: exps,
        bandwidth,
    };
    if let Some(path) = std::env::args().nth(1) {
        let mut json = limits.to_json();
        json["libm_exps_per_s"] = libm.into();
        json["features"] = features().into();
        json["peak_f32x8"] = f8.iter().copied().fold(0.0, f64::max).into();
        json["peak_f32x16"] = f16.iter().copied().fold(0.0, f64::max).into();
        let text = serde_json::to_string_pretty(&json).unwrap_or_default();
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("cannot write {path}: {e}");
            std::process::exit(1);
        }
        println!("wrote {path}");
    }
}

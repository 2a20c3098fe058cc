//! `attention` with `N = 4096` keys, `d = dv = 64`, `M` queries, called `R` times: a fixed
//! workload to count instructions of (`valgrind --tool=callgrind`), which unlike wall time is
//! stable on a shared machine.
//!
//! ```text
//! cargo build --release -p nadaraya --example icount
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/icount M R
//! ```
//! The difference between `R = 11` and `R = 1`, divided by 10, is the cost of one call.

use nadaraya::{SoftmaxDot, attention};
use std::hint::black_box;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap_or(1))
        .collect();
    let (m, reps) = (
        args.first().copied().unwrap_or(1).clamp(1, 64),
        args.get(1).copied().unwrap_or(1),
    );
    let (n, d, dv) = (4096usize, 64usize, 64usize);
    let mut s = 1u64;
    let mut rng = || {
        s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((s >> 40) as f32) / 16_777_216.0 - 0.5
    };
    let keys: Vec<f32> = (0..n * d).map(|_| rng()).collect();
    let values: Vec<f32> = (0..n * dv).map(|_| rng()).collect();
    let q: Vec<f32> = (0..m * d).map(|_| rng()).collect();
    let k = SoftmaxDot::for_dim(d).unwrap_or_else(|_| std::process::exit(1));
    let mut out = vec![0.0; m * dv];
    for _ in 0..reps {
        if attention(&k, black_box(&q), &keys, &values, d, dv, &mut out).is_err() {
            std::process::exit(1);
        }
    }
    println!("{}", black_box(out[0]));
}

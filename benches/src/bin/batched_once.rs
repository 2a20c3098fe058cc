//! One attention call, `M` queries against `L` keys (M = L by default), d = dv = 64, softmax-dot
//! with τ = √64, on the same inputs as the `batched` benchmark: a fixed amount of work for a
//! deterministic counter (`valgrind --tool=cachegrind`, see `benches/cachegrind.sh`), where
//! wall-clock timing on a shared machine is too noisy.
//!
//! ```text
//! cargo run --release -p nadaraya-benches --bin batched_once -- 2048       # L = M = 2048
//! cargo run --release -p nadaraya-benches --bin batched_once -- 4096 1     # one query
//! cargo run --release -p nadaraya-benches --bin batched_once -- 2048 2048 causal  # Mask::Causal
//! NADARAYA_LEVEL=baseline cargo run ...                                    # a forced level
//! ```

use nadaraya::{Mask, Rows, RowsMut, SoftmaxDot};
use nadaraya_benches::Rng;
use std::hint::black_box;

const D: usize = 64;

fn main() {
    nadaraya_benches::force_level_from_env();
    let arg = |i: usize| std::env::args().nth(i).map(|a| a.parse::<usize>());
    let l = arg(1)
        .unwrap_or(Ok(2048))
        .expect("L must be a whole number");
    let m = arg(2).unwrap_or(Ok(l)).expect("M must be a whole number");
    let causal = std::env::args().nth(3).is_some_and(|a| a == "causal");
    let kernel = SoftmaxDot::for_dim(D).expect("d > 0");
    let mut g = Rng::new(l as u64);
    let (q, k, v) = (g.vec(m * D), g.vec(l * D), g.vec(l * D));
    let mut out = vec![0.0f32; m * D];
    if causal {
        fn rows(x: &[f32]) -> Rows<'_> {
            Rows::new(x, D).expect("whole rows")
        }
        let o = RowsMut::new(&mut out, D).expect("whole rows");
        nadaraya::attention(
            &kernel,
            rows(black_box(&q)),
            rows(&k),
            rows(&v),
            Mask::Causal,
            o,
        )
        .expect("valid shapes (M <= L)");
    } else {
        nadaraya_benches::core_flat::attention(&kernel, black_box(&q), &k, &v, D, D, &mut out)
            .expect("valid shapes");
    }
    let sum: f64 = out.iter().map(|&x| f64::from(x)).sum();
    let mask = if causal { " causal" } else { "" };
    println!("M={m} L={l} d={D}{mask}: sum of outputs {sum:.6}");
}

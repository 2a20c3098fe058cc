//! Exact softmax attention (the core, one thread) against FAVOR+ random-feature attention
//! (`nadaraya-rf`, m = 256 positive orthogonal features) at d = dv = 64, for L = 128 … 32768
//! (below 1024 to locate the crossover).
//!
//! `cargo bench -p nadaraya-benches --bench random_features`
//!
//! The exact path is O(L²): one call takes seconds at L = 8192 and about a minute at L = 32768,
//! and criterion needs at least 11 calls per point (warm-up and 10 flat samples). So by default
//! the exact path runs for L ≤ 8192 only (the whole group then takes a few minutes on the
//! development machine); set `NADARAYA_BENCH_EXACT_MAX=32768` to extend it to the full range
//! (about half an hour). The random-feature path always runs the full range. With `-- --test`
//! (one call of each benchmark, as a smoke test) only L ≤ 2048 runs.

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use nadaraya::SoftmaxDot;
use nadaraya_benches::Rng;
use nadaraya_rf::FavorPlus;

const D: usize = 64;
const M: usize = 256;

/// Deterministic inputs in `[-1, 1)`, from the workspace's one generator.
fn inputs(n: usize, salt: usize) -> Vec<f32> {
    Rng::new(salt as u64).vec(n)
}

/// `(lengths, largest length for the exact path)`.
fn lengths() -> (Vec<usize>, usize) {
    let test_mode = std::env::args().any(|a| a == "--test");
    let max = if test_mode { 2048 } else { 32768 };
    let exact_max = std::env::var("NADARAYA_BENCH_EXACT_MAX")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8192);
    let ls = (7..=15)
        .map(|p| 1usize << p)
        .filter(|&l| l <= max)
        .collect();
    (ls, exact_max)
}

fn exact_vs_random_features(c: &mut Criterion) {
    let mut g = c.benchmark_group("random_features");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(1));
    let exact = SoftmaxDot::for_dim(D).expect("d > 0");
    let rf = FavorPlus::for_dim(D, M, 0).expect("valid shape");
    let (ls, exact_max) = lengths();
    for l in ls {
        let q = inputs(l * D, 1);
        let k = inputs(l * D, 2);
        let v = inputs(l * D, 3);
        let mut out = vec![0.0f32; l * D];
        if l <= exact_max {
            g.bench_with_input(BenchmarkId::new("exact", l), &l, |b, _| {
                b.iter(|| {
                    nadaraya_benches::core_flat::attention(
                        &exact,
                        black_box(&q),
                        &k,
                        &v,
                        D,
                        D,
                        &mut out,
                    )
                    .expect("valid inputs");
                    black_box(&out);
                });
            });
        }
        g.bench_with_input(BenchmarkId::new("rf_m256", l), &l, |b, _| {
            b.iter(|| {
                let q = nadaraya_rf::Rows::new(black_box(&q), D).expect("whole rows");
                let (k, v) = (nadaraya_rf::Rows::new(&k, D), nadaraya_rf::Rows::new(&v, D));
                let (k, v) = (k.expect("whole rows"), v.expect("whole rows"));
                let o = nadaraya_rf::RowsMut::new(&mut out, D).expect("whole rows");
                rf.attention(q, k, v, nadaraya_rf::Mask::None, o)
                    .expect("valid inputs");
                black_box(&out);
            });
        });
    }
    g.finish();
}

criterion_group!(benches, exact_vs_random_features);
criterion_main!(benches);

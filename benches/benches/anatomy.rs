//! Where the time of one single-query call goes, at N = 4096, d = dv = 64 (the aims' case):
//! the whole `nadaraya::attention` call against its parts, each timed alone.
//!
//! - `attention`: the call (finiteness check of q, keys and values, scores, exponentials,
//!   weighted sum);
//! - `weights`: `nadaraya::weights`, i.e. the finiteness check of q and keys, the scores and the
//!   normalised exponentials, without values;
//! - `read_keys_values`: one plain vectorised read of keys and values (a sum), what a single
//!   pass over the working set costs at this cache level; `nadaraya::attention` checks every
//!   input for NaN/∞ in such a pass before its main pass;
//! - `read_keys`: the same over the keys only.
//!
//! Criterion ids: `anatomy_<kernel>_d64_n4096/<part>/4096`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use nadaraya::{Gaussian, Kernel, SoftmaxDot};
use nadaraya_benches::{Rng, bandwidth_for};
use wide::f32x8;

const N: usize = 4096;
const D: usize = 64;

fn read_sum(xs: &[f32]) -> f32 {
    let (body, tail) = xs.as_chunks::<32>();
    let mut acc = [f32x8::ZERO; 4];
    for c in body {
        for (k, a) in acc.iter_mut().enumerate() {
            let lane: [f32; 8] = c[8 * k..8 * k + 8].try_into().unwrap_or([0.0; 8]);
            *a += f32x8::new(lane);
        }
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])).reduce_add() + tail.iter().sum::<f32>()
}

fn parts<K: Kernel>(c: &mut Criterion, name: &str, kernel: &K) {
    let mut group = c.benchmark_group(format!("anatomy_{name}_d64_n{N}"));
    let mut g = Rng::new(99);
    let (q, keys, values) = (g.vec(D), g.vec(N * D), g.vec(N * D));
    let mut out = [0.0f32; D];
    let mut w = vec![0.0f32; N];
    group.bench_with_input(BenchmarkId::new("attention", N), &N, |b, _| {
        b.iter(|| {
            nadaraya_benches::core_flat::attention(
                kernel,
                black_box(&q),
                &keys,
                &values,
                D,
                D,
                &mut out,
            )
            .expect("valid");
            black_box(&out);
        });
    });
    group.bench_with_input(BenchmarkId::new("weights", N), &N, |b, _| {
        b.iter(|| {
            nadaraya_benches::core_flat::weights(kernel, black_box(&q), &keys, &mut w)
                .expect("valid");
            black_box(&w);
        });
    });
    group.bench_with_input(BenchmarkId::new("read_keys_values", N), &N, |b, _| {
        b.iter(|| black_box(read_sum(black_box(&keys)) + read_sum(black_box(&values))));
    });
    group.bench_with_input(BenchmarkId::new("read_keys", N), &N, |b, _| {
        b.iter(|| black_box(read_sum(black_box(&keys))));
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(30)
        .configure_from_args();
    parts(
        &mut c,
        "gaussian",
        &Gaussian::new(bandwidth_for(D)).expect("valid bandwidth"),
    );
    parts(&mut c, "dot", &SoftmaxDot::for_dim(D).expect("d > 0"));
    c.final_summary();
}

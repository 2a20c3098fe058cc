//! Batched attention: `L` queries against `L` keys, `d = dv = 64`, softmax-dot with `τ = √d`,
//! one thread. `ours` is `nadaraya::attention`; `candle` is candle-core CPU matmul +
//! `candle_nn::ops::softmax_last_dim` + matmul with `RAYON_NUM_THREADS=1`.
//! Criterion ids: `batched_d64/<implementation>/<L>`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use candle_core::{Device, Tensor};
use criterion::{BenchmarkId, Criterion};
use nadaraya::SoftmaxDot;
use nadaraya_benches::{Rng, ensure_single_thread};

const LS: [usize; 3] = [512, 2048, 4096];
const D: usize = 64;

fn candle_attention(q: &Tensor, k: &Tensor, v: &Tensor) -> candle_core::Result<Tensor> {
    let scores = q.matmul(&k.t()?)?.affine(1.0 / (D as f64).sqrt(), 0.0)?;
    candle_nn::ops::softmax_last_dim(&scores)?.matmul(v)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("batched_d64");
    let kernel = SoftmaxDot::for_dim(D).expect("d > 0");
    for l in LS {
        let mut g = Rng::new(l as u64);
        let (q, k, v) = (g.vec(l * D), g.vec(l * D), g.vec(l * D));
        let mut out = vec![0.0f32; l * D];
        group.bench_with_input(BenchmarkId::new("ours", l), &l, |b, _| {
            b.iter(|| {
                nadaraya_benches::core_flat::attention(
                    &kernel,
                    black_box(&q),
                    &k,
                    &v,
                    D,
                    D,
                    &mut out,
                )
                .expect("valid shapes");
                black_box(&out);
            });
        });
        let dev = Device::Cpu;
        let qt = Tensor::from_slice(&q, (l, D), &dev).expect("tensor");
        let kt = Tensor::from_slice(&k, (l, D), &dev).expect("tensor");
        let vt = Tensor::from_slice(&v, (l, D), &dev).expect("tensor");
        group.bench_with_input(BenchmarkId::new("candle", l), &l, |b, _| {
            b.iter(|| black_box(candle_attention(black_box(&qt), &kt, &vt).expect("candle")));
        });
        nadaraya_benches::core_flat::attention(&kernel, &q, &k, &v, D, D, &mut out)
            .expect("valid shapes");
        let cand: Vec<f32> = candle_attention(&qt, &kt, &vt)
            .and_then(|t| t.flatten_all()?.to_vec1())
            .expect("candle result");
        for (a, b) in out.iter().zip(&cand) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }
    group.finish();
}

fn main() {
    ensure_single_thread();
    nadaraya_benches::force_level_from_env();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
        .configure_from_args();
    bench(&mut c);
    c.final_summary();
}

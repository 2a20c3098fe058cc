//! The online-softmax merge: one query against `N` keys, `d = dv = 64`, softmax-dot, evaluated
//! as `C` chunks with one `nadaraya::OnlineSoftmax` each, merged, versus a single pass
//! (`single_pass`: one `OnlineSoftmax::update` over all keys; `attention`: `nadaraya::attention`).
//! Criterion ids: `online_merge_d64_n<N>/<single_pass|attention|chunks_C>/<N>`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use nadaraya::{OnlineSoftmax, SoftmaxDot};
use nadaraya_benches::Rng;

const D: usize = 64;
const NS: [usize; 2] = [4096, 16384];
const CHUNKS: [usize; 2] = [8, 64];

fn chunked(kernel: &SoftmaxDot, q: &[f32], k: &[f32], v: &[f32], chunks: usize) -> [f32; D] {
    let rows = k.len() / D / chunks;
    let states: Vec<OnlineSoftmax<D>> = k
        .chunks(rows * D)
        .zip(v.chunks(rows * D))
        .map(|(kc, vc)| {
            let mut s = OnlineSoftmax::new();
            nadaraya_benches::core_flat::update(&mut s, kernel, q, kc, vc).expect("valid chunk");
            s
        })
        .collect();
    states
        .iter()
        .fold(OnlineSoftmax::new(), |acc, s| acc.merge(s))
        .finish()
        .expect("non-empty")
}

fn bench(c: &mut Criterion) {
    let kernel = SoftmaxDot::for_dim(D).expect("d > 0");
    for n in NS {
        let mut group = c.benchmark_group(format!("online_merge_d64_n{n}"));
        let mut g = Rng::new(n as u64 + 5);
        let (q, k, v) = (g.vec(D), g.vec(n * D), g.vec(n * D));
        group.bench_with_input(BenchmarkId::new("single_pass", n), &n, |b, _| {
            b.iter(|| {
                let mut s = OnlineSoftmax::<D>::new();
                nadaraya_benches::core_flat::update(&mut s, &kernel, black_box(&q), &k, &v)
                    .expect("valid");
                black_box(s.finish().expect("non-empty"))
            });
        });
        let mut out = [0.0f32; D];
        group.bench_with_input(BenchmarkId::new("attention", n), &n, |b, _| {
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
                .expect("valid");
                black_box(&out);
            });
        });
        for chunks in CHUNKS {
            group.bench_with_input(
                BenchmarkId::new(format!("chunks_{chunks}"), n),
                &n,
                |b, _| {
                    b.iter(|| black_box(chunked(&kernel, black_box(&q), &k, &v, chunks)));
                },
            );
            nadaraya_benches::core_flat::attention(&kernel, &q, &k, &v, D, D, &mut out)
                .expect("valid");
            let merged = chunked(&kernel, &q, &k, &v, chunks);
            for (a, b) in merged.iter().zip(&out) {
                assert!((a - b).abs() < 1e-5, "merged {a} vs single pass {b}");
            }
        }
        group.finish();
    }
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(30)
        .configure_from_args();
    bench(&mut c);
    c.final_summary();
}

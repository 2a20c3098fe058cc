//! Exact attention on several cores (`nadaraya_rf::par`, issue 14): one thread against two in
//! one run, on explicit rayon pools (this bench does not pin itself to one thread).
//!
//! - `par_batched_d64/<threads>/2048`: self-attention, `L = 2048` queries = keys = values,
//!   `d = dv = 64`, softmax-dot, `par::attention` (query-parallel); `core` is the serial
//!   `nadaraya::attention` of the same call.
//! - `par_split_d64/<threads>/65536`: one query against `N = 65536` keys, `d = dv = 64`,
//!   `par::attention_split` with 2 chunks on a pool of 1 and of 2 threads (the same split: the
//!   results are bit-identical, checked below); `threads<t>_chunks8` the same with 8 chunks (a
//!   few per thread, so that a worker that starts late costs less); `core` is the unsplit
//!   serial call.
//!
//! Scaling is `threads1 / threads2`. Under contention (other processes on the cores) wall-clock
//! figures are unreliable: re-run on an idle machine with
//! `cargo bench -p nadaraya-benches --bench parallel`, and `bash benches/scaling.sh` for the
//! machine's own two-core ceiling beside these.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use nadaraya::{Mask, Rows, RowsMut, SoftmaxDot};
use nadaraya_benches::Rng;
use nadaraya_rf::par;

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon pool")
}

fn bench(c: &mut Criterion) {
    let d = 64;
    let k = SoftmaxDot::for_dim(d).expect("d > 0");
    let pools = [(1, pool(1)), (2, pool(2))];

    let l = 2048;
    let x = Rng::new(2048).vec(l * d);
    let xr = Rows::new(&x, d).expect("rows");
    let mut out = vec![0.0f32; l * d];
    let mut group = c.benchmark_group("par_batched_d64");
    group.bench_with_input(BenchmarkId::new("core", l), &l, |b, _| {
        b.iter(|| {
            let o = RowsMut::new(&mut out, d).expect("rows");
            nadaraya::attention(&k, black_box(xr), xr, xr, Mask::None, o).expect("ok");
        });
    });
    for (t, p) in &pools {
        group.bench_with_input(BenchmarkId::new(format!("threads{t}"), l), &l, |b, _| {
            b.iter(|| {
                p.install(|| {
                    let o = RowsMut::new(&mut out, d).expect("rows");
                    par::attention(&k, black_box(xr), xr, xr, Mask::None, o).expect("ok");
                });
            });
        });
    }
    group.finish();

    let n = 65536;
    let mut g = Rng::new(65536);
    let (q, keys, values) = (g.vec(d), g.vec(n * d), g.vec(n * d));
    let (qr, kr, vr) = (
        Rows::new(&q, d).expect("rows"),
        Rows::new(&keys, d).expect("rows"),
        Rows::new(&values, d).expect("rows"),
    );
    let mut one = vec![0.0f32; d];
    let mut group = c.benchmark_group("par_split_d64");
    group.bench_with_input(BenchmarkId::new("core", n), &n, |b, _| {
        b.iter(|| {
            let o = RowsMut::new(&mut one, d).expect("rows");
            nadaraya::attention(&k, black_box(qr), kr, vr, Mask::None, o).expect("ok");
        });
    });
    for (chunks, suffix) in [(2, ""), (8, "_chunks8")] {
        let mut results = Vec::new();
        for (t, p) in &pools {
            let id = BenchmarkId::new(format!("threads{t}{suffix}"), n);
            group.bench_with_input(id, &n, |b, _| {
                b.iter(|| {
                    p.install(|| {
                        let o = RowsMut::new(&mut one, d).expect("rows");
                        par::attention_split(&k, black_box(qr), kr, vr, chunks, o).expect("ok");
                    });
                });
            });
            results.push(one.clone());
        }
        assert_eq!(results[0], results[1], "the same split on 1 and 2 threads");
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .configure_from_args();
    bench(&mut c);
    c.final_summary();
}

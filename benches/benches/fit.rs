//! Bandwidth selection: the leave-one-out objective `fit::loo_cv` (Gaussian, `D = DV = 1`) at
//! `N` = 256, 1024, 4096 — `N·(N − 1)` kernel evaluations per call — and the whole selection
//! `fit::select_bandwidth` at `N = 200` (the statsmodels anchor of issue 12). Criterion ids:
//! `fit_loo/ours/<N>`, `fit_select/ours/200`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use nadaraya::{Gaussian, Rows, fit};
use nadaraya_benches::Rng;

fn data(n: usize) -> (Vec<f32>, Vec<f32>) {
    let mut g = Rng::new(n as u64 * 7 + 1);
    let x = g.vec(n);
    let y = x.iter().map(|x| (3.0 * x).sin() + 0.2 * g.next_f32()).collect();
    (x, y)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("fit_loo");
    for n in [256usize, 1024, 4096] {
        let (x, y) = data(n);
        let (xr, yr) = (Rows::new(&x, 1).unwrap(), Rows::new(&y, 1).unwrap());
        let k = Gaussian::new(0.1).unwrap();
        group.bench_with_input(BenchmarkId::new("ours", n), &n, |b, _| {
            b.iter(|| fit::loo_cv(&k, black_box(xr), yr).unwrap());
        });
    }
    group.finish();
    let mut group = c.benchmark_group("fit_select");
    let (x, y) = data(200);
    let (xr, yr) = (Rows::new(&x, 1).unwrap(), Rows::new(&y, 1).unwrap());
    group.bench_function(BenchmarkId::new("ours", 200), |b| {
        b.iter(|| {
            fit::select_bandwidth::<Gaussian>(black_box(xr), yr, &fit::Search::default()).unwrap()
        });
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    bench(&mut c);
    c.final_summary();
}

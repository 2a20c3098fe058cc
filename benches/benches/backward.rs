//! The backward pass of attention against its forward: `L` queries against `L` keys,
//! `d = dv = 64`, softmax-dot with `τ = √d`, one thread. `forward` is `nadaraya::attention_lse`
//! (attention that also saves each query's log-sum-exp), `backward` is
//! `nadaraya::attention_backward` (dQ, dK, dV from dO, the output and the log-sum-exp).
//! Criterion ids: `backward_d64/<forward|backward>/<L>`. After criterion, one line per `L`:
//! `ratio L=<L>: forward <ms> ms, backward <ms> ms, backward/forward <r>`, from the fastest of
//! 7 interleaved forward/backward pairs (so that a change of load hits both alike), the figure
//! of the target (backward at most 2.5x the forward at L = 2048). Pinned on an idle
//! machine: `taskset -c 1 cargo bench -p nadaraya-benches --bench backward`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use nadaraya::{
    Gradients, Mask, Rows, RowsMut, SoftmaxDot, Upstream, attention_backward, attention_lse,
};
use nadaraya_benches::{Rng, ensure_single_thread};

const LS: [usize; 2] = [512, 2048];
const D: usize = 64;

fn rows(x: &[f32]) -> Rows<'_> {
    Rows::new(x, D).expect("width divides")
}

/// The problem of size `l`: `(q, k, v, dO)`, each `l×D`.
fn problem(l: usize) -> [Vec<f32>; 4] {
    let mut g = Rng::new(l as u64);
    [g.vec(l * D), g.vec(l * D), g.vec(l * D), g.vec(l * D)]
}

/// The fastest of 7 interleaved (forward, backward) pairs, in seconds.
fn interleaved(l: usize) -> (f64, f64) {
    let kernel = SoftmaxDot::for_dim(D).expect("d > 0");
    let [q, k, v, d_out] = problem(l);
    let (mut out, mut lse) = (vec![0.0f32; l * D], vec![0.0f32; l]);
    let (mut dq, mut dk, mut dv) = (vec![0.0; l * D], vec![0.0; l * D], vec![0.0; l * D]);
    let (mut fwd, mut bwd) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..7 {
        let t = Instant::now();
        let o = RowsMut::new(&mut out, D).expect("width divides");
        attention_lse(
            &kernel,
            rows(black_box(&q)),
            rows(&k),
            rows(&v),
            Mask::None,
            o,
            &mut lse,
        )
        .expect("valid shapes");
        black_box(&out);
        fwd = fwd.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let up = Upstream {
            out: rows(&out),
            lse: &lse,
            d_out: rows(&d_out),
        };
        let grads = Gradients {
            d_q: RowsMut::new(&mut dq, D).expect("width divides"),
            d_keys: RowsMut::new(&mut dk, D).expect("width divides"),
            d_values: RowsMut::new(&mut dv, D).expect("width divides"),
        };
        let r = attention_backward(
            &kernel,
            rows(black_box(&q)),
            rows(&k),
            rows(&v),
            Mask::None,
            up,
            grads,
        );
        black_box(r.expect("valid shapes"));
        bwd = bwd.min(t.elapsed().as_secs_f64());
    }
    (fwd, bwd)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("backward_d64");
    let kernel = SoftmaxDot::for_dim(D).expect("d > 0");
    for l in LS {
        let [q, k, v, d_out] = problem(l);
        let (mut out, mut lse) = (vec![0.0f32; l * D], vec![0.0f32; l]);
        let forward = |out: &mut [f32], lse: &mut [f32]| {
            let o = RowsMut::new(out, D).expect("width divides");
            attention_lse(
                &kernel,
                rows(black_box(&q)),
                rows(&k),
                rows(&v),
                Mask::None,
                o,
                lse,
            )
            .expect("valid shapes");
        };
        group.bench_with_input(BenchmarkId::new("forward", l), &l, |b, _| {
            b.iter(|| {
                forward(&mut out, &mut lse);
                black_box(&out);
            });
        });
        forward(&mut out, &mut lse);
        let (mut dq, mut dk, mut dv) = (vec![0.0; l * D], vec![0.0; l * D], vec![0.0; l * D]);
        group.bench_with_input(BenchmarkId::new("backward", l), &l, |b, _| {
            b.iter(|| {
                let up = Upstream {
                    out: rows(&out),
                    lse: &lse,
                    d_out: rows(&d_out),
                };
                let grads = Gradients {
                    d_q: RowsMut::new(&mut dq, D).expect("width divides"),
                    d_keys: RowsMut::new(&mut dk, D).expect("width divides"),
                    d_values: RowsMut::new(&mut dv, D).expect("width divides"),
                };
                let r = attention_backward(
                    &kernel,
                    rows(black_box(&q)),
                    rows(&k),
                    rows(&v),
                    Mask::None,
                    up,
                    grads,
                );
                black_box(r.expect("valid shapes"));
            });
        });
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
    // Criterion's `--list`/`--test` runs (and a name filter) skip the figures.
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--list") {
        return;
    }
    for l in LS {
        let (f, b) = interleaved(l);
        println!(
            "ratio L={l}: forward {:.2} ms, backward {:.2} ms, backward/forward {:.2}",
            f * 1e3,
            b * 1e3,
            b / f
        );
    }
}

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

fn rows_mut(x: &mut [f32]) -> RowsMut<'_> {
    RowsMut::new(x, D).expect("width divides")
}

/// The problem of size `l` (`q`, `k`, `v`, `dO`, each `l×D`) and the buffers of its forward
/// (output, log-sum-exp) and backward (dQ, dK, dV): the one place both the criterion runs and
/// the interleaved pairs call the two passes from.
struct Problem {
    kernel: SoftmaxDot,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    d_out: Vec<f32>,
    out: Vec<f32>,
    lse: Vec<f32>,
    dq: Vec<f32>,
    dk: Vec<f32>,
    dv: Vec<f32>,
}

impl Problem {
    fn new(l: usize) -> Self {
        let mut g = Rng::new(l as u64);
        Self {
            kernel: SoftmaxDot::for_dim(D).expect("d > 0"),
            q: g.vec(l * D),
            k: g.vec(l * D),
            v: g.vec(l * D),
            d_out: g.vec(l * D),
            out: vec![0.0; l * D],
            lse: vec![0.0; l],
            dq: vec![0.0; l * D],
            dk: vec![0.0; l * D],
            dv: vec![0.0; l * D],
        }
    }

    /// `attention_lse`: the output and the log-sum-exp the backward reads.
    fn forward(&mut self) {
        let (q, k, v) = (rows(black_box(&self.q)), rows(&self.k), rows(&self.v));
        let o = rows_mut(&mut self.out);
        attention_lse(&self.kernel, q, k, v, Mask::None, o, &mut self.lse).expect("valid shapes");
        black_box(&self.out);
    }

    /// `attention_backward` from the last [`forward`](Self::forward)'s output.
    fn backward(&mut self) {
        let up = Upstream {
            out: rows(&self.out),
            lse: &self.lse,
            d_out: rows(&self.d_out),
        };
        let grads = Gradients {
            d_q: rows_mut(&mut self.dq),
            d_keys: rows_mut(&mut self.dk),
            d_values: rows_mut(&mut self.dv),
        };
        let (q, k, v) = (rows(black_box(&self.q)), rows(&self.k), rows(&self.v));
        let r = attention_backward(&self.kernel, q, k, v, Mask::None, up, grads);
        black_box(r.expect("valid shapes"));
    }
}

/// The seconds `f` takes.
fn seconds(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

/// The fastest of 7 interleaved (forward, backward) pairs, in seconds.
fn interleaved(l: usize) -> (f64, f64) {
    let mut p = Problem::new(l);
    let (mut fwd, mut bwd) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..7 {
        fwd = fwd.min(seconds(|| p.forward()));
        bwd = bwd.min(seconds(|| p.backward()));
    }
    (fwd, bwd)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("backward_d64");
    for l in LS {
        let mut p = Problem::new(l);
        group.bench_with_input(BenchmarkId::new("forward", l), &l, |b, _| {
            b.iter(|| p.forward());
        });
        p.forward();
        group.bench_with_input(BenchmarkId::new("backward", l), &l, |b, _| {
            b.iter(|| p.backward());
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

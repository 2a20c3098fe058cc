//! One kernel of the two-core scaling experiment (`benches/scaling.sh`), timed in a loop for a
//! fixed time so that two processes started together overlap for their whole run:
//!
//! ```text
//! cargo run --release -p nadaraya-benches --example scaling -- CASE THREADS [SECONDS]
//! ```
//!
//! Prints one line, `CASE threads=T calls=C median_ms=… min_ms=…`. The cases, `d = dv = 64`,
//! softmax-dot, the inputs of `benches/benches/parallel.rs`:
//!
//! - `core-batched`: the serial core, `nadaraya::attention`, `L = 2048` queries = keys = values;
//! - `par-batched`: `nadaraya_rf::par::attention` of the same call on a pool of `THREADS`;
//! - `core-causal-batched`, `par-causal-batched`: the same two under `Mask::Causal`;
//! - `core-split`: the serial core, one query against `N = 65536` keys (32 MiB of keys and values);
//! - `split-serial`: `par::attention_split_serial` with `CHUNKS` chunks (an environment
//!   variable, 2 when unset) on the calling thread;
//! - `par-split`: `par::attention_split` with `CHUNKS` chunks (the same split, so the same bits)
//!   on a pool of `THREADS`;
//! - `stream`: a plain read (a lane-wise sum) of the same 32 MiB as `core-split`, cut into
//!   `THREADS` equal parts on a pool of `THREADS`: the memory-bandwidth ceiling of split-K.
//!
//! `core-*` and `split-serial` ignore `THREADS` (they run on the calling thread). With
//! `--count` in place of `SECONDS` every case makes exactly one call after its inputs, for an
//! instruction counter (`valgrind --tool=callgrind --separate-threads=yes`).
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use nadaraya::{Mask, Rows, RowsMut, SoftmaxDot};
use nadaraya_benches::Rng;
use nadaraya_rf::par;

const D: usize = 64;
const L: usize = 2048;
const N: usize = 65536;

/// A lane-wise sum of `x`: 32 independent accumulators, so the loop is bound by the loads.
fn stream_sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 32];
    let mut it = x.chunks_exact(32);
    for c in &mut it {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + it.remainder().iter().sum::<f32>()
}

fn rows(x: &[f32]) -> Rows<'_> {
    Rows::new(x, D).expect("width divides")
}

fn main() {
    nadaraya_benches::force_level_from_env();
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: scaling CASE THREADS [SECONDS|--count]";
    let case = args.get(1).expect(usage).clone();
    let threads: usize = args.get(2).expect(usage).parse().expect(usage);
    let (count, secs) = match args.get(3).map(String::as_str) {
        Some("--count") => (true, 0.0),
        Some(s) => (false, s.parse::<f64>().expect(usage)),
        None => (false, 5.0),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon pool");
    let k = SoftmaxDot::for_dim(D).expect("d > 0");
    let chunks: usize = std::env::var("CHUNKS").map_or(2, |c| c.parse().expect("CHUNKS: a number"));

    let batched = case.ends_with("batched");
    let (q, keys, values) = if batched {
        let x = Rng::new(L as u64).vec(L * D);
        (x.clone(), x.clone(), x)
    } else {
        let mut g = Rng::new(N as u64);
        (g.vec(D), g.vec(N * D), g.vec(N * D))
    };
    let mut out = vec![0.0f32; q.len()];
    let (qr, kr, vr) = (rows(&q), rows(&keys), rows(&values));
    let mut call = || -> f32 {
        let o = RowsMut::new(&mut out, D).expect("width divides");
        let r = match case.as_str() {
            "core-batched" | "core-split" => {
                nadaraya::attention(&k, black_box(qr), kr, vr, Mask::None, o).map_err(Into::into)
            }
            "par-batched" => {
                pool.install(|| par::attention(&k, black_box(qr), kr, vr, Mask::None, o))
            }
            "core-causal-batched" => {
                nadaraya::attention(&k, black_box(qr), kr, vr, Mask::Causal, o).map_err(Into::into)
            }
            "par-causal-batched" => {
                pool.install(|| par::attention(&k, black_box(qr), kr, vr, Mask::Causal, o))
            }
            "split-serial" => par::attention_split_serial(&k, black_box(qr), kr, vr, chunks, o),
            "par-split" => {
                pool.install(|| par::attention_split(&k, black_box(qr), kr, vr, chunks, o))
            }
            "stream" => {
                let parts = [&keys, &values].map(|x| x.chunks(x.len().div_ceil(threads)));
                let sum = pool.install(|| {
                    use rayon::prelude::*;
                    let p: Vec<&[f32]> = parts.into_iter().flatten().collect();
                    // Part `i` of the keys and part `i` of the values on the same task.
                    (0..threads)
                        .into_par_iter()
                        .map(|i| stream_sum(p[i]) + stream_sum(p[threads + i]))
                        .sum::<f32>()
                });
                return black_box(sum);
            }
            _ => panic!("unknown case {case}: {usage}"),
        };
        r.expect("valid inputs");
        black_box(out[0])
    };
    if count {
        call();
        return;
    }
    call(); // warm-up: pages touched, pool threads started
    let (start, mut times) = (Instant::now(), Vec::new());
    while start.elapsed() < Duration::from_secs_f64(secs) || times.len() < 3 {
        let t = Instant::now();
        call();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let split = if case.ends_with("split") && !case.starts_with("core") {
        format!(" chunks={chunks}")
    } else {
        String::new()
    };
    println!(
        "{case} threads={threads}{split} calls={} median_ms={:.4} min_ms={:.4}",
        times.len(),
        times[times.len() / 2],
        times[0]
    );
}

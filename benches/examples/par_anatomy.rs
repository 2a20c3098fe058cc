//! Where the time of a two-thread query-parallel call goes (`benches/scaling.sh`'s `par-batched`:
//! L = 2048, d = dv = 64, softmax-dot): ways of running the same work on two threads, in one
//! process, alternated call by call so that a load on the machine hits them alike.
//!
//! ```text
//! cargo run --release -p nadaraya-benches --example par_anatomy -- [SECONDS]
//! ```
//!
//! Each round runs, in turn:
//! - `serial`: `nadaraya::attention` of the whole call on the calling thread;
//! - `two-own`: two threads (started once, woken through a barrier), each the whole serial call
//!   on its own copy of the inputs: what two independent processes do; the machine's capacity
//!   is the sum of the two threads' rates over the serial call's rate in the same round;
//! - `halves`: the same two threads, each one contiguous half of the queries over the shared
//!   keys and values (a static split, no pool);
//! - `par`: `nadaraya_rf::par::attention` on a rayon pool of two threads;
//! - `rayon-64`, `rayon-64/1`, `rayon-32/1`: tasks of 64 (or 32) queries on the same pool,
//!   rayon's default splitting (what `par` did until 2026-12-01) or `with_max_len(1)` (every
//!   task a leaf), each task stamped with its thread, start and end; `cold-32/1` the same
//!   after 20 ms of sleep, so that the pool's threads are asleep when the call starts (`par`
//!   also runs after a pause: the serial and two-thread calls before it; `par-warm` and
//!   `par-cold` time it again right after the traced calls and after 20 ms of sleep).
//!
//! Prints medians over the rounds, in ms: the call's wall time; for the traced ones `lost` =
//! wall − (busy₀ + busy₁)/2 (the time the two threads were not both computing), the later
//! thread's first start, the earlier thread's idle tail, |busy₀ − busy₁|, and the longest run of
//! consecutive tasks one thread ran as one unstealable piece.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nadaraya::{Mask, Rows, RowsMut, SoftmaxDot};
use nadaraya_benches::Rng;
use nadaraya_rf::par;
use rayon::prelude::*;

const D: usize = 64;
const L: usize = 2048;

fn rows(x: &[f32]) -> Rows<'_> {
    Rows::new(x, D).expect("width divides")
}

/// The core's call of queries `q.0..q.1` of `x` over all of `x`.
fn core(k: &SoftmaxDot, x: &[f32], q: (usize, usize), out: &mut [f32]) {
    let r = rows(x);
    let qb = r.slice(q.0, q.1).expect("in range");
    let o = RowsMut::new(out, D).expect("width divides");
    nadaraya::attention(k, black_box(qb), r, r, Mask::None, o).expect("valid");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Per round of a traced variant: wall, lost, later start, earlier tail, imbalance, longest run.
type Trace = [f64; 6];

fn main() {
    nadaraya_benches::force_level_from_env();
    let secs: f64 = std::env::args()
        .nth(1)
        .map_or(10.0, |s| s.parse().expect("SECONDS"));
    let k = SoftmaxDot::for_dim(D).expect("d > 0");
    let x = Rng::new(L as u64).vec(L * D);
    let own = x.clone();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("a rayon pool");
    let mut out = vec![0.0f32; L * D];
    let stamps: Vec<[AtomicU64; 3]> = (0..L).map(|_| Default::default()).collect();

    // A traced run: tasks of `task` queries, `with_max_len(max)`.
    let mut out2 = vec![0.0f32; L * D];
    let mut traced = |task: usize, max: usize| -> Trace {
        let t0 = Instant::now();
        pool.install(|| {
            out2.par_chunks_mut(task * D)
                .with_max_len(max)
                .enumerate()
                .for_each(|(i, o)| {
                    let a = t0.elapsed().as_nanos() as u64;
                    core(&k, &x, (i * task, (i + 1) * task), o);
                    let b = t0.elapsed().as_nanos() as u64;
                    let th = rayon::current_thread_index().unwrap_or(0) as u64;
                    stamps[i][0].store(a, Ordering::Relaxed);
                    stamps[i][1].store(b, Ordering::Relaxed);
                    stamps[i][2].store(th, Ordering::Relaxed);
                });
        });
        let w = ms(t0.elapsed());
        let (mut first, mut end, mut busy) = ([f64::MAX; 2], [0.0f64; 2], [0.0f64; 2]);
        let (mut run, mut longest, mut prev) = (0, 0, usize::MAX);
        for st in &stamps[..L / task] {
            let (a, b) = (
                st[0].load(Ordering::Relaxed) as f64 / 1e6,
                st[1].load(Ordering::Relaxed) as f64 / 1e6,
            );
            let th = (st[2].load(Ordering::Relaxed) as usize).min(1);
            first[th] = first[th].min(a);
            end[th] = end[th].max(b);
            busy[th] += b - a;
            run = if th == prev { run + 1 } else { 1 };
            longest = longest.max(run);
            prev = th;
        }
        // A thread that ran no task starts at the end.
        let first = first.map(|f| if f == f64::MAX { w } else { f });
        [
            w,
            w - (busy[0] + busy[1]) / 2.0,
            first[0].max(first[1]),
            w - end[0].min(end[1]),
            (busy[0] - busy[1]).abs(),
            longest as f64,
        ]
    };

    let mode = AtomicUsize::new(0);
    let (start, end, stop) = (Barrier::new(3), Barrier::new(3), AtomicUsize::new(0));
    let busy: [AtomicU64; 2] = Default::default();
    let mut outs = [vec![0.0f32; L * D], vec![0.0f32; L * D]];
    let mut wall: [Vec<f64>; 6] = Default::default();
    let mut pair_busy: [Vec<f64>; 4] = Default::default();
    let variants = [
        ("rayon-64", 64, usize::MAX),
        ("rayon-64/1", 64, 1),
        ("rayon-32/1", 32, 1),
        ("cold-32/1", 32, 1),
    ];
    let mut traces: Vec<Vec<Trace>> = vec![Vec::new(); variants.len()];
    let mut round = 0usize;
    std::thread::scope(|s| {
        let [o0, o1] = &mut outs;
        for (i, o) in [o0, o1].into_iter().enumerate() {
            let (mode, start, end, stop, busy, x, own, k) =
                (&mode, &start, &end, &stop, &busy, &x, &own, &k);
            s.spawn(move || {
                loop {
                    start.wait();
                    if stop.load(Ordering::Relaxed) == 1 {
                        return;
                    }
                    let t = Instant::now();
                    if mode.load(Ordering::Relaxed) == 1 {
                        core(k, if i == 0 { x } else { own }, (0, L), o);
                    } else {
                        core(k, x, (i * L / 2, (i + 1) * L / 2), &mut o[..L / 2 * D]);
                    }
                    busy[i].store(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    end.wait();
                }
            });
        }
        let t_all = Instant::now();
        while t_all.elapsed() < Duration::from_secs_f64(secs) || round < 5 {
            round += 1;
            let t = Instant::now();
            core(&k, &x, (0, L), &mut out);
            wall[0].push(ms(t.elapsed()));
            for m in [1, 2] {
                mode.store(m, Ordering::Relaxed);
                let t = Instant::now();
                start.wait();
                end.wait();
                wall[m].push(ms(t.elapsed()));
                for (j, b) in busy.iter().enumerate() {
                    pair_busy[2 * (m - 1) + j].push(b.load(Ordering::Relaxed) as f64 / 1e6);
                }
            }
            let t = Instant::now();
            pool.install(|| {
                let o = RowsMut::new(&mut out, D).expect("width divides");
                par::attention(&k, black_box(rows(&x)), rows(&x), rows(&x), Mask::None, o)
            })
            .expect("valid");
            wall[3].push(ms(t.elapsed()));
            for (v, &(name, task, max)) in traces.iter_mut().zip(&variants) {
                if name.starts_with("cold") {
                    // The pool's threads asleep, as after any pause between calls.
                    std::thread::sleep(Duration::from_millis(20));
                }
                v.push(traced(task, max));
            }
            // `par` again: warm (right after the traced calls), then cold (after 20 ms).
            for slot in [4, 5] {
                if slot == 5 {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let t = Instant::now();
                pool.install(|| {
                    let o = RowsMut::new(&mut out, D).expect("width divides");
                    par::attention(&k, black_box(rows(&x)), rows(&x), rows(&x), Mask::None, o)
                })
                .expect("valid");
                wall[slot].push(ms(t.elapsed()));
            }
        }
        stop.store(1, Ordering::Relaxed);
        start.wait();
    });
    println!("rounds={round}, L={L}, d={D}, medians in ms");
    let s = median(&wall[0]);
    println!("serial      {s:7.3}");
    let w = median(&wall[1]);
    // The machine's capacity: the serial call's rate on each thread, over its rate alone.
    let rate: Vec<f64> = (0..wall[0].len())
        .map(|r| wall[0][r] / pair_busy[0][r] + wall[0][r] / pair_busy[1][r])
        .collect();
    println!(
        "two-own     {w:7.3}  busy {:.3} / {:.3}; the machine's capacity (rate on both over \
         serial alone, round by round) {:.2}x",
        median(&pair_busy[0]),
        median(&pair_busy[1]),
        median(&rate)
    );
    let w = median(&wall[2]);
    println!(
        "halves      {w:7.3}  busy {:.3} / {:.3}; serial over this {:.2}x",
        median(&pair_busy[2]),
        median(&pair_busy[3]),
        s / w
    );
    let w = median(&wall[3]);
    println!(
        "par         {w:7.3}  serial over this {:.2}x (after the two-thread calls)",
        s / w
    );
    let w = median(&wall[4]);
    println!(
        "par-warm    {w:7.3}  serial over this {:.2}x (right after the traced calls)",
        s / w
    );
    let w = median(&wall[5]);
    println!(
        "par-cold    {w:7.3}  serial over this {:.2}x (after 20 ms of sleep)",
        s / w
    );
    for (v, (name, _, _)) in traces.iter().zip(&variants) {
        let col = |c: usize| median(&v.iter().map(|t| t[c]).collect::<Vec<_>>());
        println!(
            "{name:11} {:7.3}  serial over this {:.2}x; lost {:.3} (later start {:.3}, earlier \
             tail {:.3}), |busy0 - busy1| {:.3}, longest run {:.0} tasks",
            col(0),
            s / col(0),
            col(1),
            col(2),
            col(3),
            col(4),
            col(5)
        );
    }
}

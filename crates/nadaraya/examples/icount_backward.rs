//! Fixed workloads for the cost of the backward pass against the forward, counted with
//! `valgrind --tool=callgrind` (stable on a shared machine, unlike wall time).
//!
//! `icount_backward L R MODE [dot|gauss] [causal]`: `L` queries against `L` keys, `d = dv = 64`,
//! softmax-dot with `τ = √d` (or a Gaussian of `h = 8`); `MODE` is `forward` (`attention_lse`,
//! `R` times) or `backward` (one `attention_lse`, then `attention_backward` `R` times).
//!
//! ```text
//! cargo build --release -p nadaraya --example icount_backward
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/icount_backward 2048 2 backward
//! ```
//! The difference between `R = 2` and `R = 1` is the cost of one call.

use nadaraya::{
    Gaussian, Gradients, KernelGrad, Mask, Rows, RowsMut, SoftmaxDot, Upstream, attention_backward,
    attention_lse,
};
use std::hint::black_box;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(1usize);
    let (l, reps) = (num(0).max(1), num(1));
    let backward = args.get(2).is_some_and(|m| m == "backward");
    let gauss = args.iter().any(|a| a == "gauss");
    let mask = if args.iter().any(|a| a == "causal") {
        Mask::Causal
    } else {
        Mask::None
    };
    let ok = if gauss {
        run(
            &Gaussian::new(8.0).unwrap_or_else(|_| std::process::exit(1)),
            l,
            reps,
            backward,
            mask,
        )
    } else {
        let k = SoftmaxDot::for_dim(64).unwrap_or_else(|_| std::process::exit(1));
        run(&k, l, reps, backward, mask)
    };
    if !ok {
        std::process::exit(1);
    }
}

fn r(x: &[f32]) -> Result<Rows<'_>, nadaraya::Error> {
    Rows::new(x, 64)
}

fn run<K: KernelGrad>(k: &K, l: usize, reps: usize, backward: bool, mask: Mask) -> bool {
    let d = 64usize;
    let mut s = 1u64;
    let mut rng = || {
        s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((s >> 40) as f32) / 16_777_216.0 - 0.5
    };
    let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| rng()).collect() };
    let (q, keys, values, d_out) = (draw(l * d), draw(l * d), draw(l * d), draw(l * d));
    let (mut out, mut lse) = (vec![0.0f32; l * d], vec![0.0f32; l]);
    let (mut dq, mut dk, mut dv) = (
        vec![0.0f32; l * d],
        vec![0.0f32; l * d],
        vec![0.0f32; l * d],
    );
    let (Ok(qr), Ok(kr), Ok(vr)) = (r(&q), r(&keys), r(&values)) else {
        return false;
    };
    let forward = |out: &mut [f32], lse: &mut [f32]| {
        RowsMut::new(out, d)
            .and_then(|o| attention_lse(k, black_box(qr), kr, vr, mask, o, lse))
            .is_ok()
    };
    if !backward {
        return (0..reps).all(|_| forward(&mut out, &mut lse));
    }
    if !forward(&mut out, &mut lse) {
        return false;
    }
    (0..reps).all(|_| {
        let (Ok(o), Ok(g)) = (r(&out), r(&d_out)) else {
            return false;
        };
        let up = Upstream {
            out: o,
            lse: &lse,
            d_out: g,
        };
        let grads = match (
            RowsMut::new(&mut dq, d),
            RowsMut::new(&mut dk, d),
            RowsMut::new(&mut dv, d),
        ) {
            (Ok(d_q), Ok(d_keys), Ok(d_values)) => Gradients {
                d_q,
                d_keys,
                d_values,
            },
            _ => return false,
        };
        black_box(attention_backward(
            k,
            black_box(qr),
            kr,
            vr,
            mask,
            up,
            grads,
        ))
        .is_ok()
    })
}

//! `nadaraya::attention` over keys and values stored as `f16` or `bf16`, at every dispatch level
//! this CPU runs, on arbitrary well-shaped inputs (widths around the 8- and 16-lane kernels).
//!
//! Invariants: no panic; the verdict and, when `Ok`, every output bit of the `f32` path on the
//! widened numbers (the documented promise, at each level); the verdict within the rule of the
//! `f64` reference on the widened numbers (`nadaraya_fuzz::Flags`), and `Ok` rows within its
//! worst-case bound; a non-finite stored element (f16 overflows to infinity at 65 520) is
//! `NonFinite`.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use nadaraya::dispatch::{self, Level};
use nadaraya::half::{bf16, f16};
use nadaraya::{Element, Error, Kernel, Mask, Rows, RowsMut, attention};
use nadaraya_fuzz::{AnyKernel, F, KernelSpec, RefKernel, build_kernel, ref_row};

#[derive(Debug, Arbitrary)]
struct Input {
    kernel: KernelSpec,
    /// Store as `bf16` (else `f16`).
    bf16: bool,
    d: u8,
    dv: u8,
    m: u8,
    n: u8,
    /// The first elements of `q ++ keys ++ values`, as given.
    head: Vec<F>,
    /// The rest: `offset + scale · u`, `u` uniform in `[-1, 1]` from a xorshift seeded here.
    seed: u32,
    scale: F,
    offset: F,
}

fuzz_target!(|input: Input| {
    let Some(kernel) = build_kernel(input.kernel) else {
        return;
    };
    let rk = kernel.reference();
    match (kernel, input.bf16) {
        (AnyKernel::Gaussian(g), false) => run(&g, rk, &input, f16::from_f32),
        (AnyKernel::Gaussian(g), true) => run(&g, rk, &input, bf16::from_f32),
        (AnyKernel::SoftmaxDot(s), false) => run(&s, rk, &input, f16::from_f32),
        (AnyKernel::SoftmaxDot(s), true) => run(&s, rk, &input, bf16::from_f32),
    }
});

fn run<K: Kernel, H: Element>(k: &K, rk: RefKernel, input: &Input, round: fn(f32) -> H) {
    let d = 1 + usize::from(input.d % 72);
    let dv = 1 + usize::from(input.dv % 40);
    let m = 1 + usize::from(input.m % 4);
    let n = 1 + usize::from(input.n % 140);
    let (q_len, k_len, v_len) = (m * d, n * d, n * dv);
    let all = nadaraya_fuzz::fill(
        &input.head,
        q_len + k_len + v_len,
        input.seed,
        input.scale.0,
        input.offset.0,
    );
    let (q, rest) = all.split_at(q_len);
    let (keys, values) = rest.split_at(k_len);
    let (kh, vh): (Vec<H>, Vec<H>) = (
        keys.iter().map(|&x| round(x)).collect(),
        values.iter().map(|&x| round(x)).collect(),
    );
    let (kw, vw): (Vec<f32>, Vec<f32>) = (
        kh.iter().map(|x| x.to_f32()).collect(),
        vh.iter().map(|x| x.to_f32()).collect(),
    );
    let finite = |xs: &[f32]| xs.iter().all(|v| v.is_finite());
    let all_finite = finite(q) && finite(&kw) && finite(&vw);
    let rows: Vec<_> = if all_finite {
        q.chunks_exact(d)
            .map(|qr| ref_row(rk, qr, &kw, &vw, dv))
            .collect()
    } else {
        Vec::new()
    };
    let qr = Rows::new(q, d).unwrap();
    let before = dispatch::active();
    for level in Level::ALL {
        if dispatch::force(level) != level {
            continue;
        }
        let (mut got, mut want) = (vec![0.5f32; m * dv], vec![0.5f32; m * dv]);
        let a = attention(
            k,
            qr,
            Rows::new(&kh, d).unwrap(),
            Rows::new(&vh, dv).unwrap(),
            Mask::None,
            RowsMut::new(&mut got, dv).unwrap(),
        );
        let b = attention(
            k,
            qr,
            Rows::new(&kw, d).unwrap(),
            Rows::new(&vw, dv).unwrap(),
            Mask::None,
            RowsMut::new(&mut want, dv).unwrap(),
        );
        assert_eq!(
            a, b,
            "{level}: the verdict of the f32 path on the widened numbers"
        );
        if a.is_ok() {
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{level}: not the f32 path's bits");
        }
        if !all_finite {
            assert_eq!(a, Err(Error::NonFinite), "{level}: non-finite storage");
            continue;
        }
        let mut flags = nadaraya_fuzz::Flags::default();
        for r in &rows {
            flags |= r.flags;
        }
        if flags.check(&a, "half attention") {
            for (t, r) in rows.iter().enumerate() {
                r.check_out(&got[t * dv..(t + 1) * dv], "half attention");
            }
        }
    }
    dispatch::force(before);
}

//! `nadaraya::attention`, `causal_attention`, `weights` and their scalar twins on arbitrary
//! shapes, lengths (consistent or not) and values.
//!
//! Invariants: no panic; shape errors exactly as documented and nothing written when the shapes
//! are rejected; `NonFinite` for any NaN or infinite input; `Ok` rows finite, inside the
//! per-column range of the values they average and within the worst-case bound of the `f64` reference; causal row `t` equals plain attention
//! over the first `t + 1` keys; SIMD and scalar agree on `Ok`/`Err` and on values; the keys
//! reordered (reversed and rotated across tiles) give the same verdict and values within the
//! bound; `ScoreOverflow` only where a score may overflow `f32` (and always where it must),
//! `Overflow` only where the exact result reaches `f32::MAX` (the rule in `nadaraya_fuzz::Flags`).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use nadaraya::{Error, Kernel};
use nadaraya_fuzz::core_flat::{self as flat, SHAPE, scalar};
use nadaraya_fuzz::{
    AnyKernel, F, Flags, KernelSpec, RefKernel, build_kernel, check_agree, ref_row,
};

#[derive(Debug, Arbitrary)]
struct Input {
    kernel: KernelSpec,
    d: u8,
    dv: u8,
    m: u8,
    n: u8,
    /// Length changes of `q`, `keys`, `values`, `out` (each in `-3..=3`).
    skew: Option<[i8; 4]>,
    /// `weights` gets all of `q` (not just its first row): shape errors.
    weights_whole_q: bool,
    /// The first elements of `q ++ keys ++ values`, as given.
    head: Vec<F>,
    /// The rest: `offset + scale · u`, `u` uniform in `[-1, 1]` from a xorshift seeded here.
    seed: u32,
    scale: F,
    offset: F,
    /// Rotation of the reversed key order for the order-independence check.
    rotate: u8,
}

fuzz_target!(|input: Input| {
    let Some(kernel) = build_kernel(input.kernel) else {
        return;
    };
    match kernel {
        AnyKernel::Gaussian(g) => run(&g, kernel.reference(), &input),
        AnyKernel::SoftmaxDot(s) => run(&s, kernel.reference(), &input),
    }
});

fn skewed(len: usize, skew: Option<[i8; 4]>, i: usize) -> usize {
    let s = skew.map_or(0, |s| isize::from(s[i] % 4));
    len.saturating_add_signed(s)
}

const SENTINEL: f32 = 12345.5;

fn run<K: Kernel>(k: &K, rk: RefKernel, input: &Input) {
    let d = usize::from(input.d % 20);
    let dv = usize::from(input.dv % 20);
    let m = usize::from(input.m % 5);
    let n = usize::from(input.n % 80);
    let q_len = skewed(m * d, input.skew, 0);
    let k_len = skewed(n * d, input.skew, 1);
    let v_len = skewed(n * dv, input.skew, 2);
    let o_len = skewed(m * dv, input.skew, 3);

    let all = nadaraya_fuzz::fill(
        &input.head,
        q_len + k_len + v_len,
        input.seed,
        input.scale.0,
        input.offset.0,
    );
    let (q, rest) = all.split_at(q_len);
    let (keys, values) = rest.split_at(k_len);

    // The documented shape errors, in the documented order; they are found before anything is
    // written. Non-finite inputs are found while computing (rows may hold partial results).
    let finite = |xs: &[f32]| xs.iter().all(|v| v.is_finite());
    let shape_err = if d == 0 || dv == 0 {
        Some(Error::ZeroDimension)
    } else if !q_len.is_multiple_of(d)
        || !k_len.is_multiple_of(d)
        || !v_len.is_multiple_of(dv)
        || k_len / d != v_len / dv
    {
        Some(SHAPE)
    } else if k_len == 0 {
        Some(Error::Empty)
    } else if o_len < q_len / d * dv {
        Some(Error::OutputTooSmall)
    } else {
        None
    };
    let all_finite = finite(q) && finite(keys) && finite(values);

    let mut simd_out = vec![SENTINEL; o_len];
    let mut scalar_out = vec![SENTINEL; o_len];
    let a = flat::attention(k, q, keys, values, d, dv, &mut simd_out);
    let b = scalar::attention(k, q, keys, values, d, dv, &mut scalar_out);
    let untouched = |o: &[f32]| o.iter().all(|v| *v == SENTINEL);

    if let Some(e) = shape_err {
        assert_eq!(a, Err(e), "attention");
        assert_eq!(b, Err(e), "scalar::attention");
        assert!(
            untouched(&simd_out) && untouched(&scalar_out),
            "call rejected for its shapes wrote"
        );
        let mut c = vec![SENTINEL; o_len];
        assert_eq!(
            flat::causal_attention(k, q, keys, values, d, dv, &mut c),
            Err(e)
        );
        assert!(untouched(&c), "causal call rejected for its shapes wrote");
    } else if !all_finite {
        let (mq, n) = (q_len / d, k_len / d);
        assert_eq!(a, Err(Error::NonFinite), "attention");
        assert_eq!(b, Err(Error::NonFinite), "scalar::attention");
        let mut c = vec![SENTINEL; o_len];
        let want = if mq > n { SHAPE } else { Error::NonFinite };
        assert_eq!(
            flat::causal_attention(k, q, keys, values, d, dv, &mut c),
            Err(want),
            "causal_attention"
        );
    } else {
        let (mq, n) = (q_len / d, k_len / d);
        let rows: Vec<_> = q
            .chunks_exact(d)
            .map(|qr| ref_row(rk, qr, keys, values, dv))
            .collect();
        let mut flags = Flags::default();
        for r in &rows {
            flags |= r.flags;
        }
        let ok_a = flags.check(&a, "attention");
        let ok_b = flags.check(&b, "scalar::attention");
        // At the edge of overflow the two roundings may disagree; elsewhere they must not.
        flags.check_same(&a, &b, true, "attention vs scalar::attention");
        for (t, r) in rows.iter().enumerate() {
            let sa = &simd_out[t * dv..(t + 1) * dv];
            let sb = &scalar_out[t * dv..(t + 1) * dv];
            if ok_a {
                r.check_out(sa, "attention");
            }
            if ok_b {
                r.check_out(sb, "scalar::attention");
            }
            if ok_a && ok_b {
                check_agree(sa, sb, r, "SIMD vs scalar");
            }
        }
        if ok_a {
            assert!(untouched(&simd_out[mq * dv..]), "attention wrote past M·dv");
        }
        if ok_b {
            assert!(untouched(&scalar_out[mq * dv..]), "scalar wrote past M·dv");
        }
        // The same samples in another order (reversed, then rotated so that the first key lands
        // in another 64-key tile): the same verdict and, within rounding, the same values.
        let rot = usize::from(input.rotate) % n;
        let order: Vec<usize> = (0..n).rev().cycle().skip(rot).take(n).collect();
        let pk: Vec<f32> = order
            .iter()
            .flat_map(|&i| keys[i * d..(i + 1) * d].iter().copied())
            .collect();
        let pv: Vec<f32> = order
            .iter()
            .flat_map(|&i| values[i * dv..(i + 1) * dv].iter().copied())
            .collect();
        for (twin, what) in [
            (false, "attention, keys reordered"),
            (true, "scalar::attention, keys reordered"),
        ] {
            let mut po = vec![SENTINEL; o_len];
            let p = if twin {
                scalar::attention(k, q, &pk, &pv, d, dv, &mut po)
            } else {
                flat::attention(k, q, &pk, &pv, d, dv, &mut po)
            };
            if flags.check(&p, what) {
                for (t, r) in rows.iter().enumerate() {
                    r.check_out(&po[t * dv..(t + 1) * dv], what);
                }
            }
            flags.check_same(&a, &p, twin, what);
        }
        causal(k, rk, q, keys, values, d, dv, mq, n, o_len);
    }
    weights(k, rk, q, keys, d, input);
}

#[allow(clippy::too_many_arguments)]
fn causal<K: Kernel>(
    k: &K,
    rk: RefKernel,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    d: usize,
    dv: usize,
    mq: usize,
    n: usize,
    o_len: usize,
) {
    let mut out = vec![SENTINEL; o_len];
    let got = flat::causal_attention(k, q, keys, values, d, dv, &mut out);
    if mq > n {
        assert_eq!(got, Err(SHAPE), "causal with a query past its key");
        assert!(
            out.iter().all(|v| *v == SENTINEL),
            "rejected causal call wrote"
        );
        return;
    }
    let mut flags = Flags::default();
    for t in 0..mq {
        let (qr, kp, vp) = (
            &q[t * d..(t + 1) * d],
            &keys[..(t + 1) * d],
            &values[..(t + 1) * dv],
        );
        let r = ref_row(rk, qr, kp, vp, dv);
        flags |= r.flags;
        if got.is_ok() {
            let row = &out[t * dv..(t + 1) * dv];
            r.check_out(row, "causal_attention");
            let mut one = vec![0.0; dv];
            let single = flat::attention(k, qr, kp, vp, d, dv, &mut one);
            assert_eq!(single, Ok(()), "attention over the prefix");
            let same = row
                .iter()
                .zip(&one)
                .all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(
                same,
                "causal row {t} {row:?} vs attention over its prefix {one:?}"
            );
        }
    }
    if flags.check(&got, "causal_attention") {
        assert!(
            out[mq * dv..].iter().all(|v| *v == SENTINEL),
            "causal wrote past M·dv"
        );
    }
}

fn weights<K: Kernel>(k: &K, rk: RefKernel, q: &[f32], keys: &[f32], d: usize, input: &Input) {
    let wq = if input.weights_whole_q || q.len() < d {
        q
    } else {
        &q[..d]
    };
    let wd = wq.len();
    let nk = keys.len().checked_div(wd).unwrap_or(0);
    let o_len = skewed(nk, input.skew, 3);
    let finite = |xs: &[f32]| xs.iter().all(|v| v.is_finite());
    let expected = if wd == 0 {
        Some(Error::ZeroDimension)
    } else if !keys.len().is_multiple_of(wd) {
        Some(SHAPE)
    } else if nk == 0 {
        Some(Error::Empty)
    } else if o_len < nk {
        Some(Error::OutputTooSmall)
    } else if !(finite(wq) && finite(keys)) {
        Some(Error::NonFinite)
    } else {
        None
    };
    let mut a = vec![SENTINEL; o_len];
    let mut b = vec![SENTINEL; o_len];
    let ra = flat::weights(k, wq, keys, &mut a);
    let rb = scalar::weights(k, wq, keys, &mut b);
    if let Some(e) = expected {
        assert_eq!(ra, Err(e), "weights");
        assert_eq!(rb, Err(e), "scalar::weights");
        // Shape errors are found before anything is written.
        if e != Error::NonFinite {
            assert!(
                a.iter().chain(&b).all(|v| *v == SENTINEL),
                "weights call rejected for its shapes wrote"
            );
        }
        return;
    }
    // Values of zero: only the weights matter here.
    let r = ref_row(rk, wq, keys, &vec![0.0; nk], 1);
    // Weights of zero values never overflow: only the score verdicts apply.
    let flags = Flags {
        near_max: false,
        ..r.flags
    };
    for (res, w, what) in [(&ra, &a, "weights"), (&rb, &b, "scalar::weights")] {
        if flags.check(res, what) {
            r.check_weights(&w[..nk], what);
            assert!(
                w[nk..].iter().all(|v| *v == SENTINEL),
                "{what} wrote past N"
            );
        }
    }
    flags.check_same(&ra, &rb, true, "weights vs scalar::weights");
}

//! Sequences of operations on a `nadaraya::Smoother`, checked against a plain `Vec` model of the
//! store and the `f64` reference.
//!
//! Invariants: a rejected sample is handed back bit for bit and leaves the store equal to the
//! model; `push` on a full store and `push_evicting` evict exactly as the model says (the oldest);
//! the store's contents, oldest first, always equal the model; `predict` of a finite query is
//! finite, a convex combination of the stored responses and within the reference bound, or a
//! documented error (`ScoreOverflow` only where a score may overflow, `Overflow` only where the
//! exact result reaches `f32::MAX`: the rule in `nadaraya_fuzz::Flags`), with the same verdict
//! and value as a fresh store holding the same live window in order and reversed (so the ring
//! position cannot matter); `weights` are `≥ 0`, sum to `1 ± 1e-5`, match the reference, and
//! leave the rest of the buffer untouched.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use nadaraya::{Error, Gaussian, Kernel, Sample, Smoother, SoftmaxDot};
use nadaraya_fuzz::{AnyKernel, F, Flags, KernelSpec, Param, RefKernel, build_kernel, ref_row};

#[derive(Debug, Arbitrary)]
enum Op<const D: usize, const DV: usize> {
    Push([F; D], [F; DV]),
    PushEvicting([F; D], [F; DV]),
    /// `count` samples on a line: `x0 + i·dx → y0 + i·dy`, with or without eviction.
    Ramp {
        count: u8,
        evict: bool,
        x0: [F; D],
        dx: F,
        y0: [F; DV],
        dy: F,
    },
    PopOldest,
    Clear,
    Predict([F; D]),
    Weights([F; D], u8),
    SetKernel(Param),
}

#[derive(Debug, Arbitrary)]
enum Input {
    /// The brief's shape: 8 samples of 2 → 2.
    Small(KernelSpec, Vec<Op<2, 2>>),
    /// Capacity past the 64-score tile, rows of 9 (SIMD along the row), 3 responses.
    Large(KernelSpec, Vec<Op<9, 3>>),
    /// One sample of one coordinate.
    Tiny(KernelSpec, Vec<Op<1, 1>>),
}

fuzz_target!(|input: Input| {
    match input {
        Input::Small(k, ops) => run::<8, 2, 2>(k, &ops),
        Input::Large(k, ops) => run::<70, 9, 3>(k, &ops),
        Input::Tiny(k, ops) => run::<1, 1, 1>(k, &ops),
    }
});

fn run<const N: usize, const D: usize, const DV: usize>(spec: KernelSpec, ops: &[Op<D, DV>]) {
    match build_kernel(spec) {
        Some(AnyKernel::Gaussian(g)) => {
            let mut s: Smoother<Gaussian, N, D, DV> = Smoother::new(g);
            drive(&mut s, ops, |p| {
                match build_kernel(KernelSpec::Gaussian(p)) {
                    Some(AnyKernel::Gaussian(g)) => Some(g),
                    _ => None,
                }
            });
        }
        Some(AnyKernel::SoftmaxDot(t)) => {
            let mut s: Smoother<SoftmaxDot, N, D, DV> = Smoother::new(t);
            drive(&mut s, ops, |p| {
                match build_kernel(KernelSpec::SoftmaxDot(p)) {
                    Some(AnyKernel::SoftmaxDot(t)) => Some(t),
                    _ => None,
                }
            });
        }
        None => {}
    }
}

trait RefOf {
    fn reference(&self) -> RefKernel;
}
impl RefOf for Gaussian {
    fn reference(&self) -> RefKernel {
        AnyKernel::Gaussian(*self).reference()
    }
}
impl RefOf for SoftmaxDot {
    fn reference(&self) -> RefKernel {
        AnyKernel::SoftmaxDot(*self).reference()
    }
}

type Model<const D: usize, const DV: usize> = Vec<([f32; D], [f32; DV])>;

fn bits<const L: usize>(a: &[f32; L]) -> [u32; L] {
    a.map(f32::to_bits)
}

fn same_sample<const D: usize, const DV: usize>(
    s: &Sample<D, DV>,
    x: &[f32; D],
    y: &[f32; DV],
) -> bool {
    bits(&s.x) == bits(x) && bits(&s.y) == bits(y)
}

fn check_store<K: Kernel, const N: usize, const D: usize, const DV: usize>(
    s: &Smoother<K, N, D, DV>,
    model: &Model<D, DV>,
) {
    assert_eq!(s.len(), model.len(), "len");
    assert_eq!(s.is_empty(), model.is_empty(), "is_empty");
    assert_eq!(s.is_full(), model.len() == N, "is_full");
    assert_eq!(s.capacity(), N);
    assert_eq!(s.iter().len(), model.len(), "iter len");
    for (i, (got, (x, y))) in s.iter().zip(model).enumerate() {
        assert!(
            same_sample(&got, x, y),
            "sample {i}: store {got:?} vs model {x:?} {y:?}"
        );
    }
}

fn finite(xs: &[f32]) -> bool {
    xs.iter().all(|v| v.is_finite())
}

/// Stores one sample through `push` or `push_evicting` and checks the outcome against the model.
fn store<K: Kernel, const N: usize, const D: usize, const DV: usize>(
    s: &mut Smoother<K, N, D, DV>,
    model: &mut Model<D, DV>,
    x: [f32; D],
    y: [f32; DV],
    evict: bool,
) {
    let ok = finite(&x) && finite(&y);
    if evict {
        match s.push_evicting(x, y) {
            Ok(evicted) => {
                assert!(ok, "push_evicting took a non-finite sample");
                let want = (model.len() == N).then(|| model.remove(0));
                match (evicted, want) {
                    (None, None) => {}
                    (Some(e), Some((wx, wy))) => {
                        assert!(
                            same_sample(&e, &wx, &wy),
                            "evicted {e:?}, oldest was {wx:?} {wy:?}"
                        );
                    }
                    (e, w) => panic!("evicted {e:?}, model says {w:?}"),
                }
                model.push((x, y));
            }
            Err(r) => {
                assert!(!ok, "push_evicting rejected a finite sample: {r:?}");
                assert_eq!(r.error, Error::NonFinite);
                assert!(same_sample(&r.sample, &x, &y), "rejected sample altered");
            }
        }
    } else {
        match s.push(x, y) {
            Ok(()) => {
                assert!(ok, "push took a non-finite sample");
                assert!(model.len() < N, "push overwrote a full store");
                model.push((x, y));
            }
            Err(r) => {
                let want = if !ok { Error::NonFinite } else { Error::Full };
                assert_eq!(r.error, want, "push error");
                if want == Error::Full {
                    assert_eq!(model.len(), N, "Full below capacity");
                }
                assert!(same_sample(&r.sample, &x, &y), "rejected sample altered");
            }
        }
    }
    check_store(s, model);
}

fn drive<K: Kernel + RefOf + Copy, const N: usize, const D: usize, const DV: usize>(
    s: &mut Smoother<K, N, D, DV>,
    ops: &[Op<D, DV>],
    make: impl Fn(Param) -> Option<K>,
) {
    let mut model: Model<D, DV> = Vec::new();
    for op in ops {
        match op {
            Op::Push(x, y) => store(s, &mut model, x.map(|v| v.0), y.map(|v| v.0), false),
            Op::PushEvicting(x, y) => store(s, &mut model, x.map(|v| v.0), y.map(|v| v.0), true),
            Op::Ramp {
                count,
                evict,
                x0,
                dx,
                y0,
                dy,
            } => {
                for i in 0..usize::from(*count).min(2 * N) {
                    let t = i as f32;
                    let x = x0.map(|v| v.0 + t * dx.0);
                    let y = y0.map(|v| v.0 + t * dy.0);
                    store(s, &mut model, x, y, *evict);
                }
            }
            Op::PopOldest => {
                let got = s.pop_oldest();
                let want = (!model.is_empty()).then(|| model.remove(0));
                match (got, want) {
                    (None, None) => {}
                    (Some(g), Some((x, y))) => assert!(same_sample(&g, &x, &y), "pop_oldest {g:?}"),
                    (g, w) => panic!("pop_oldest gave {g:?}, model says {w:?}"),
                }
                check_store(s, &model);
            }
            Op::Clear => {
                s.clear();
                model.clear();
                check_store(s, &model);
            }
            Op::Predict(xq) => predict(s, &model, &xq.map(|v| v.0)),
            Op::Weights(xq, len) => weights(s, &model, &xq.map(|v| v.0), usize::from(*len)),
            Op::SetKernel(p) => {
                if let Some(k) = make(*p) {
                    s.set_kernel(k);
                }
                check_store(s, &model);
            }
        }
    }
}

fn flat<const D: usize, const DV: usize>(model: &Model<D, DV>) -> (Vec<f32>, Vec<f32>) {
    (
        model.iter().flat_map(|(x, _)| *x).collect(),
        model.iter().flat_map(|(_, y)| *y).collect(),
    )
}

fn predict<K: Kernel + RefOf + Copy, const N: usize, const D: usize, const DV: usize>(
    s: &Smoother<K, N, D, DV>,
    model: &Model<D, DV>,
    xq: &[f32; D],
) {
    let got = s.predict(xq);
    if model.is_empty() {
        assert_eq!(got, Err(Error::Empty));
        return;
    }
    if !finite(xq) {
        assert_eq!(got, Err(Error::NonFinite));
        return;
    }
    let (keys, values) = flat(model);
    let r = ref_row(s.kernel().reference(), xq, &keys, &values, DV);
    if let Ok(y) = &got {
        r.check_out(y, "predict");
    }
    r.flags.check(&got, "predict");
    // The same live window in a fresh store (ring position 0) and in reverse order: the same
    // verdict, and within the bound the same value, wherever the ring has wrapped to.
    for (rev, what) in [
        (false, "predict, fresh store"),
        (true, "predict, reversed store"),
    ] {
        let mut fresh: Smoother<K, N, D, DV> = Smoother::new(*s.kernel());
        let mut samples: Vec<_> = model.clone();
        if rev {
            samples.reverse();
        }
        for (x, y) in samples {
            assert!(fresh.push(x, y).is_ok(), "{what}: push");
        }
        let again = fresh.predict(xq);
        if let Ok(y) = &again {
            r.check_out(y, what);
        }
        r.flags.check(&again, what);
        r.flags.check_same(&got, &again, false, what);
    }
}

fn weights<K: Kernel + RefOf, const N: usize, const D: usize, const DV: usize>(
    s: &Smoother<K, N, D, DV>,
    model: &Model<D, DV>,
    xq: &[f32; D],
    len: usize,
) {
    const SENTINEL: f32 = -7.25;
    let mut out = vec![SENTINEL; len];
    let got = s.weights(xq, &mut out);
    let n = model.len();
    let want_err = if n == 0 {
        Some(Error::Empty)
    } else if len < n {
        Some(Error::OutputTooSmall)
    } else if !finite(xq) {
        Some(Error::NonFinite)
    } else {
        None
    };
    if let Some(e) = want_err {
        assert_eq!(got, Err(e));
        assert!(
            out.iter().all(|v| *v == SENTINEL),
            "rejected weights call wrote"
        );
        return;
    }
    let (keys, values) = flat(model);
    let r = ref_row(s.kernel().reference(), xq, &keys, &values, DV);
    // Weights never overflow: only the score verdicts apply.
    let flags = Flags {
        near_max: false,
        ..r.flags
    };
    if flags.check(&got, "weights") {
        r.check_weights(&out[..n], "weights");
        assert!(
            out[n..].iter().all(|v| *v == SENTINEL),
            "weights wrote past len()"
        );
    }
}

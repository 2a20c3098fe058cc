//! `nadaraya::OnlineSoftmax` states over random chunks of one sample set, merged in arbitrary
//! orders and trees, against the single pass and the `f64` reference.
//!
//! Invariants: every way of splitting and merging gives the single pass's result within rounding
//! (and within the reference bound, inside the values' range), and so does one `push_score` per
//! sample in reverse order, with the same verdict (`Overflow` only where the exact result reaches
//! `f32::MAX`: the rule in `nadaraya_fuzz::Flags`); `merge` is commutative bit for bit and the
//! empty state is its identity; a failed `update` or `push_score` leaves the state unchanged;
//! `log_sum_exp` and `max_score` match the reference.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use nadaraya::{Error, Kernel, OnlineSoftmax};
use nadaraya_fuzz::core_flat::{self as flat, SHAPE};
use nadaraya_fuzz::{AnyKernel, EPS, F, KernelSpec, RefKernel, build_kernel, ref_row};

const DV: usize = 3;

#[derive(Debug, Arbitrary)]
struct Input {
    kernel: KernelSpec,
    d: u8,
    n: u8,
    q: Vec<F>,
    head: Vec<F>,
    seed: u32,
    scale: F,
    offset: F,
    /// Chunk lengths (taken modulo 40, cycled until the samples run out).
    chunks: Vec<u8>,
    /// Per chunk: feed it with `update` (SIMD scores) or one `push_score` per sample.
    by_score: Vec<bool>,
    /// Merge plan: pairs of indices into the list of states (modulo its length), and whether to
    /// merge `a.merge(b)` or `b.merge(a)`.
    plan: Vec<(u8, u8)>,
    /// A bad update to try on some chunk state: it must change nothing.
    bad: Option<(u8, Bad)>,
}

#[derive(Debug, Arbitrary)]
enum Bad {
    NonFiniteValue(F),
    ShortValues,
    NonFiniteScore(F),
    EmptyQuery,
    /// `update` over one sample with a non-finite key coordinate (found while computing).
    NonFiniteKey(F, u8),
    /// `update` over one sample with a non-finite value coordinate.
    NonFiniteValueUpdate(F, u8),
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

fn run<K: Kernel>(k: &K, rk: RefKernel, input: &Input) {
    let d = 1 + usize::from(input.d % 12);
    let n = usize::from(input.n % 100);
    let q: Vec<f32> = (0..d)
        .map(|j| input.q.get(j).map_or(0.25 * j as f32, |f| f.0))
        .collect();
    let all = nadaraya_fuzz::fill(
        &input.head,
        n * (d + DV),
        input.seed,
        input.scale.0,
        input.offset.0,
    );
    let (keys, values) = all.split_at(n * d);
    if !all.iter().chain(&q).all(|v| v.is_finite()) {
        let mut s = OnlineSoftmax::<DV>::new();
        assert_eq!(
            flat::update(&mut s, k, &q, keys, values),
            Err(Error::NonFinite)
        );
        assert!(s.is_empty());
        return;
    }

    let mut whole = OnlineSoftmax::<DV>::new();
    let single = flat::update(&mut whole, k, &q, keys, values);
    if n == 0 {
        assert_eq!(single, Ok(()));
        assert!(whole.is_empty());
        assert_eq!(whole.finish(), Err(Error::Empty));
        assert_eq!(whole.log_sum_exp(), f32::NEG_INFINITY);
        return;
    }
    let r = ref_row(rk, &q, keys, values, DV);
    if r.flags.risky {
        // ScoreOverflow is legitimate somewhere; the merge comparison would be moot.
        return;
    }
    // `update` may refuse with `Overflow` (changing nothing) only where the exact result of its
    // samples reaches f32::MAX.
    r.flags.check(&single, "single update");
    if single.is_err() {
        assert!(whole.is_empty(), "failed update changed the state");
    }
    // Every sample of a chunk state is in the merged total unless a chunk update failed.
    let mut complete = single.is_ok();

    // Chunk states.
    let mut states: Vec<OnlineSoftmax<DV>> = Vec::new();
    let mut at = 0;
    let mut c = 0;
    while at < n {
        let len = input
            .chunks
            .get(c % input.chunks.len().max(1))
            .map_or(n, |l| usize::from(l % 40))
            // Empty chunks (empty states) only on the first pass over `chunks`.
            .max(usize::from(c >= input.chunks.len()))
            .min(n - at);
        let mut s = OnlineSoftmax::<DV>::new();
        let (kc, vc) = (
            &keys[at * d..(at + len) * d],
            &values[at * DV..(at + len) * DV],
        );
        if input.by_score.get(c).copied().unwrap_or(false) {
            for (i, (kr, vr)) in kc.chunks_exact(d).zip(vc.chunks_exact(DV)).enumerate() {
                let v: [f32; DV] = vr.try_into().unwrap();
                let before = s;
                let res = s.push_score(k.score(&q, kr), &v);
                if res.is_err() {
                    // Legitimate only if the chunk's samples so far, this one included, reach
                    // f32::MAX.
                    let upto = i + 1;
                    let rc = ref_row(rk, &q, &kc[..upto * d], &vc[..upto * DV], DV);
                    rc.flags.check(&res, "push_score");
                    assert_eq!(
                        format!("{s:?}"),
                        format!("{before:?}"),
                        "failed push_score changed the state"
                    );
                    complete = false;
                }
            }
        } else if len > 0 {
            let res = flat::update(&mut s, k, &q, kc, vc);
            ref_row(rk, &q, kc, vc, DV)
                .flags
                .check(&res, "update of a chunk");
            match res {
                Ok(()) => assert!(!s.is_empty()),
                Err(_) => {
                    assert!(s.is_empty(), "failed update changed the state");
                    complete = false;
                }
            }
        }
        states.push(s);
        at += len;
        c += 1;
    }

    // All samples pushed one by one in reverse order: the same verdict and value.
    let mut reversed = OnlineSoftmax::<DV>::new();
    let mut rev_ok = true;
    for (kr, vr) in keys.chunks_exact(d).zip(values.chunks_exact(DV)).rev() {
        let v: [f32; DV] = vr.try_into().unwrap();
        rev_ok &= reversed.push_score(k.score(&q, kr), &v).is_ok();
    }

    if let Some((i, bad)) = &input.bad {
        let i = usize::from(*i) % states.len();
        let before = states[i];
        let res = match bad {
            Bad::NonFiniteValue(f) => {
                let v = if f.0.is_finite() { f32::NAN } else { f.0 };
                states[i].push_score(0.0, &[1.0, v, 2.0])
            }
            Bad::ShortValues => flat::update(&mut states[i], k, &q, &keys[..d], &values[..DV - 1]),
            Bad::NonFiniteScore(f) => {
                // NaN or +inf: a score of -inf is a sample of weight 0, not an error.
                let s = if f.0.is_nan() { f.0 } else { f32::INFINITY };
                states[i].push_score(s, &[1.0; DV])
            }
            Bad::EmptyQuery => flat::update(&mut states[i], k, &[], &keys[..d], &values[..DV]),
            Bad::NonFiniteKey(f, j) => {
                let mut kr = keys[..d].to_vec();
                kr[usize::from(*j) % d] = if f.0.is_finite() { f32::NAN } else { f.0 };
                flat::update(&mut states[i], k, &q, &kr, &values[..DV])
            }
            Bad::NonFiniteValueUpdate(f, j) => {
                let mut vr = values[..DV].to_vec();
                vr[usize::from(*j) % DV] = if f.0.is_finite() { f32::INFINITY } else { f.0 };
                flat::update(&mut states[i], k, &q, &keys[..d], &vr)
            }
        };
        let want = match bad {
            Bad::NonFiniteValue(_) | Bad::NonFiniteKey(..) | Bad::NonFiniteValueUpdate(..) => {
                Error::NonFinite
            }
            Bad::ShortValues => SHAPE,
            Bad::NonFiniteScore(_) => Error::ScoreOverflow,
            Bad::EmptyQuery => Error::ZeroDimension,
        };
        assert_eq!(res, Err(want), "bad update");
        let same = format!("{:?}", states[i]) == format!("{before:?}");
        assert!(
            same,
            "failed update changed the state: {before:?} -> {:?}",
            states[i]
        );
    }

    // Merge along the plan, then fold what is left in list order.
    let empty = OnlineSoftmax::<DV>::new();
    let mut merges = 0usize;
    for &(a, b) in &input.plan {
        if states.len() < 2 {
            break;
        }
        let i = usize::from(a) % states.len();
        let mut j = usize::from(b) % states.len();
        if i == j {
            j = (j + 1) % states.len();
        }
        let (x, y) = (states[i], states[j]);
        let xy = x.merge(&y);
        let yx = y.merge(&x);
        assert_eq!(
            format!("{xy:?}"),
            format!("{yx:?}"),
            "merge not commutative"
        );
        assert_eq!(
            format!("{:?}", x.merge(&empty)),
            format!("{x:?}"),
            "empty not identity"
        );
        assert_eq!(
            format!("{:?}", empty.merge(&x)),
            format!("{x:?}"),
            "empty not identity"
        );
        let keep = if b & 1 == 0 { xy } else { yx };
        let (lo, hi) = (i.min(j), i.max(j));
        states.remove(hi);
        states[lo] = keep;
        merges += 1;
    }
    let mut total = OnlineSoftmax::<DV>::new();
    for s in &states {
        total = total.merge(s);
        merges += 1;
    }

    let merged = total.finish();
    let one = whole.finish();
    let rev = reversed.finish();
    // A state that lost a sample to a failed update covers a subset: checked for range only.
    for (what, res, all) in [
        ("merged", &merged, complete),
        ("single pass", &one, single.is_ok()),
        ("reversed pushes", &rev, rev_ok),
    ] {
        match res {
            Ok(y) if all => r.check_out(y, what),
            Ok(y) => r.check_range(y, what),
            Err(Error::Empty) if !all => {}
            Err(_) => {
                r.flags.check(res, what);
            }
        }
    }
    if complete && single.is_ok() {
        r.flags
            .check_same(&one, &merged, false, "single pass vs merged chunks");
    }
    if rev_ok && single.is_ok() {
        r.flags
            .check_same(&one, &rev, false, "single pass vs reversed pushes");
    }
    let (Ok(got), Ok(one), true) = (merged, one, complete && single.is_ok()) else {
        return;
    };
    // Each merge and each tile rescales by an exponential with a few ulp of error.
    for j in 0..DV {
        let vmax = values
            .chunks_exact(DV)
            .fold(0.0f64, |m, v| m.max(f64::from(v[j]).abs()));
        let tol = 2.0 * r.tol[j] + 16.0 * (n + merges) as f64 * EPS * vmax;
        let diff = (f64::from(got[j]) - f64::from(one[j])).abs();
        assert!(
            diff <= tol,
            "merged {:e} vs single pass {:e} at {j} (tolerance {tol:e})",
            got[j],
            one[j]
        );
    }
    let lse_tol = 2.0 * r.score_err + 16.0 * EPS * (r.lse.abs() + 5.0);
    for (what, s) in [("merged", &total), ("single pass", &whole)] {
        let lse = f64::from(s.log_sum_exp());
        assert!(
            (lse - r.lse).abs() <= lse_tol,
            "{what} log_sum_exp {lse:e} vs {:e} (tolerance {lse_tol:e})",
            r.lse
        );
        let ms = f64::from(s.max_score());
        assert!(
            (ms - r.max_score).abs() <= r.score_err,
            "{what} max_score {ms:e} vs {:e}",
            r.max_score
        );
    }
}

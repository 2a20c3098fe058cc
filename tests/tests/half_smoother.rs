//! `Smoother<K, N, D, DV, E>` with samples stored as `f16` or `bf16`: bit for bit the `f32`
//! store fed the widened samples at every dispatch level; within the `f32` bound plus the
//! storage rounding's of a plain `f64` reference on the *unrounded* samples; samples that do not
//! survive the rounding handed back; eviction order and ring wrap-around; size and serde.

use nadaraya::dispatch::{self, Level};
use nadaraya::half::{bf16, f16};
use nadaraya::{
    Element, Error, Gaussian, Kernel, Mask, Rows, RowsMut, Sample, Smoother, SoftmaxDot, attention,
};
use nadaraya_tests::Rng;
use nadaraya_tests::reference::{self, RefKernel, tolerance, widen};

/// Serialises the tests' switches of the dispatch level (a process-wide setting).
static LEVEL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A half-precision storage type, with what its rounding can cost a finite `x` inside its
/// range: `|round(x) − x| ≤ U·|x| + ETA`.
trait Half: Element + Copy + PartialEq + std::fmt::Debug {
    const LABEL: &'static str;
    /// Unit roundoff: `2^-11` for `f16`, `2^-8` for `bf16`.
    const U: f64;
    /// Half the smallest subnormal: the absolute error below the normal range.
    const ETA: f64;
    /// Independent of the crate: `half`'s own round-to-nearest-even.
    fn round(x: f32) -> Self;
}

impl Half for f16 {
    const LABEL: &'static str = "f16";
    const U: f64 = 1.0 / 2048.0;
    const ETA: f64 = 1.0 / 33_554_432.0; // 2^-25
    fn round(x: f32) -> Self {
        f16::from_f32(x)
    }
}

impl Half for bf16 {
    const LABEL: &'static str = "bf16";
    const U: f64 = 1.0 / 256.0;
    const ETA: f64 = 1.0e-40; // above 2^-134
    fn round(x: f32) -> Self {
        bf16::from_f32(x)
    }
}

fn rounded<H: Half>(x: f32) -> f32 {
    H::round(x).to_f32()
}

/// What storing the samples as `H` can move the output of one query by, beyond the `f32`
/// bound, derived plainly: every key coordinate moves by `|Δk| ≤ u|k| + η`, so a score by at
/// most `Δ_i = Σ_j |q_j||Δk_ij| / τ` (softmax-dot) or `Σ_j (|q_j − k_ij||Δk_ij| + Δk_ij²/2) / h²`
/// (Gaussian); a weight `α_i e^{δ_i} / Σ_j α_j e^{δ_j}` with `|δ| ≤ Δ = max Δ_i` changes by a
/// factor within `e^{±2Δ}`, so `Σ_i |α̃_i − α_i| ≤ e^{2Δ} − 1` and the average by at most
/// `scale·(e^{2Δ} − 1)`; every value moves by at most `u·|v| + η`.
fn storage_bound<H: Half>(kernel: RefKernel, q: &[f64], keys: &[f64], values: &[f64]) -> f64 {
    let scale = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let dk = |k: f64| H::U * k.abs() + H::ETA;
    let delta = keys
        .chunks_exact(q.len())
        .map(|k| match kernel {
            RefKernel::SoftmaxDot { tau } => {
                q.iter().zip(k).map(|(a, b)| a.abs() * dk(*b)).sum::<f64>() / tau
            }
            RefKernel::Gaussian { h } => {
                q.iter()
                    .zip(k)
                    .map(|(a, b)| (a - b).abs() * dk(*b) + dk(*b) * dk(*b) / 2.0)
                    .sum::<f64>()
                    / (h * h)
            }
        })
        .fold(0.0f64, f64::max);
    scale * (2.0 * delta).exp_m1() + H::U * scale + H::ETA
}

/// [`check`] with softmax-dot (`τ = √D`) and the Gaussian (`h = √D / 2`): their results in
/// that order.
fn both<H: Half, const N: usize, const D: usize, const DV: usize>(
    total: usize,
    seed: u64,
) -> [(RefKernel, (f64, f64)); 2] {
    let tau = (D as f64).sqrt();
    let h = 0.5 * (D as f64).sqrt();
    let (rs, rg) = (RefKernel::SoftmaxDot { tau }, RefKernel::Gaussian { h });
    [
        (
            rs,
            check::<_, H, N, D, DV>(rs, SoftmaxDot::new(tau as f32).unwrap(), total, seed),
        ),
        (
            rg,
            check::<_, H, N, D, DV>(rg, Gaussian::new(h as f32).unwrap(), total, seed),
        ),
    ]
}

/// Pushes `total` random samples (keys in `[-1, 1)`, values in `[-3, 3)`) through
/// `push_evicting` into a half store and an `f32` store fed the same samples rounded by `half`
/// itself; returns the unrounded live window, oldest first.
fn fill<K: Kernel + Clone, H: Half, const N: usize, const D: usize, const DV: usize>(
    half: &mut Smoother<K, N, D, DV, H>,
    wide: &mut Smoother<K, N, D, DV>,
    rng: &mut Rng,
    total: usize,
) -> Vec<([f32; D], [f32; DV])> {
    let mut window = Vec::new();
    for _ in 0..total {
        let x: [f32; D] = core::array::from_fn(|_| rng.next_f32());
        let y: [f32; DV] = core::array::from_fn(|_| rng.range(-3.0, 3.0));
        let evicted = half.push_evicting(x, y).unwrap();
        let evicted_wide = wide
            .push_evicting(x.map(rounded::<H>), y.map(rounded::<H>))
            .unwrap();
        assert_eq!(evicted, evicted_wide, "{}: evicted", H::LABEL);
        window.push((x, y));
        if window.len() > N {
            let (ox, oy) = window.remove(0);
            // The oldest, as stored: rounded, widened.
            let want = Sample {
                x: ox.map(rounded::<H>),
                y: oy.map(rounded::<H>),
            };
            assert_eq!(evicted, Some(want), "{}: eviction order", H::LABEL);
        } else {
            assert_eq!(evicted, None);
        }
    }
    window
}

/// Runs one shape for storage `H`: the bit-for-bit promise at every level, and the two bounds.
/// Returns the largest error against `f64` on the unrounded samples, relative to the values'
/// scale, and the `f32` store's against `f64` on its own (rounded) samples.
fn check<K: Kernel + Clone, H: Half, const N: usize, const D: usize, const DV: usize>(
    rk: RefKernel,
    k: K,
    total: usize,
    seed: u64,
) -> (f64, f64) {
    let mut rng = Rng::new(seed);
    let mut half: Box<Smoother<K, N, D, DV, H>> = Box::new(Smoother::new(k.clone()));
    let mut wide: Box<Smoother<K, N, D, DV>> = Box::new(Smoother::new(k));
    let window = fill(&mut half, &mut wide, &mut rng, total);
    let what = format!("{} {rk:?} N={N} D={D} DV={DV} total={total}", H::LABEL);
    // The stored samples are the rounded ones, oldest first.
    let stored: Vec<Sample<D, DV>> = half.iter().collect();
    let want: Vec<Sample<D, DV>> = window
        .iter()
        .map(|(x, y)| Sample {
            x: x.map(rounded::<H>),
            y: y.map(rounded::<H>),
        })
        .collect();
    assert_eq!(stored, want, "{what}: iter");
    let queries: Vec<[f32; D]> = (0..5)
        .map(|_| core::array::from_fn(|_| rng.next_f32()))
        .collect();
    let n = half.len();
    {
        let _one_at_a_time = LEVEL.lock().unwrap_or_else(|e| e.into_inner());
        let before = dispatch::active();
        for level in Level::ALL {
            if dispatch::force(level) != level {
                continue;
            }
            for q in &queries {
                let (a, b) = (half.predict(q).unwrap(), wide.predict(q).unwrap());
                assert_eq!(
                    a.map(f32::to_bits),
                    b.map(f32::to_bits),
                    "{what} at {level}: predict is not the f32 store's"
                );
                let (mut wa, mut wb) = (vec![7.0f32; n + 1], vec![8.0f32; n + 1]);
                half.weights(q, &mut wa).unwrap();
                wide.weights(q, &mut wb).unwrap();
                assert_eq!(wa[..n], wb[..n], "{what} at {level}: weights");
                assert_eq!(wa[n], 7.0, "{what}: weights wrote past len()");
            }
            // `predict_many`: each row `predict` of that query (bit for bit, contiguous or not).
            let mut many = vec![[0.0f32; DV]; queries.len()];
            half.predict_many(Rows::from_arrays(&queries), RowsMut::from_arrays(&mut many))
                .unwrap();
            for (q, row) in queries.iter().zip(&many) {
                let one = half.predict(q).unwrap();
                assert_eq!(
                    row.map(f32::to_bits),
                    one.map(f32::to_bits),
                    "{what} at {level}: predict_many"
                );
            }
        }
        dispatch::force(before);
    }
    let keys: Vec<f32> = window.iter().flat_map(|(x, _)| *x).collect();
    let values: Vec<f32> = window.iter().flat_map(|(_, y)| *y).collect();
    let (k64, v64) = (widen(&keys), widen(&values));
    let kr64: Vec<f64> = keys.iter().map(|&x| f64::from(rounded::<H>(x))).collect();
    let vr64: Vec<f64> = values.iter().map(|&x| f64::from(rounded::<H>(x))).collect();
    let (mut worst, mut worst_rounded) = (0.0f64, 0.0f64);
    for q in &queries {
        let got = half.predict(q).unwrap();
        let q64 = widen(q);
        let on_exact = reference::smooth(rk, &q64, &k64, &v64, DV);
        let on_rounded = reference::smooth(rk, &q64, &kr64, &vr64, DV);
        let bound = tolerance(rk, &q64, &kr64, &vr64);
        let stored = storage_bound::<H>(rk, &q64, &k64, &v64);
        let scale = v64.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for j in 0..DV {
            let g = f64::from(got[j]);
            let e = (g - on_rounded[j]).abs();
            assert!(e <= bound, "{what} j={j}: {e:e} > f32 bound {bound:e}");
            worst_rounded = worst_rounded.max(e / scale);
            let e = (g - on_exact[j]).abs();
            assert!(
                e <= bound + stored,
                "{what} j={j}: {e:e} > {bound:e} + storage {stored:e}"
            );
            worst = worst.max(e / scale);
        }
    }
    (worst, worst_rounded)
}

/// The promise and the bounds over shapes around the lane widths, the 64-row tile, a wrapped
/// ring (more samples pushed than `N`), a contiguous store above `predict_many`'s blocking
/// threshold (1024·(8 + 1) floats) and a store of one sample, both kernels and both half types.
#[test]
fn half_store_is_the_f32_store_of_the_widened_samples_and_within_the_bound() {
    both::<f16, 70, 2, 3>(200, 1);
    both::<bf16, 70, 2, 3>(200, 1);
    both::<f16, 130, 9, 1>(301, 2);
    both::<bf16, 130, 9, 1>(301, 2);
    both::<f16, 100, 16, 17>(165, 3);
    both::<bf16, 100, 16, 17>(165, 3);
    both::<f16, 1024, 8, 1>(1024, 4);
    both::<bf16, 1024, 8, 1>(1024, 4);
    // One sample, all the weight: the prediction is its stored response, where the bound on
    // the values' rounding (`u·|v| + η`) is attained.
    both::<f16, 1, 4, 8>(5, 5);
    both::<bf16, 1, 4, 8>(5, 5);
}

/// The figures of the crate README ("Half-precision keys and values", the `Smoother` rows): the
/// largest error of `predict` against `f64` on the unrounded samples, relative to the values'
/// scale, at `N = 256, D = 8, DV = 1` (a full ring that has wrapped: 300 samples pushed; keys
/// and queries uniform in `[-1, 1)`, values in `[-3, 3)`, five queries), and the `f32` store's
/// error on the same samples. `--nocapture` prints them; the assertions hold them to the
/// documented figures.
#[test]
fn smoother_errors_are_as_documented() {
    let f16s = both::<f16, 256, 8, 1>(300, 42);
    let bf16s = both::<bf16, 256, 8, 1>(300, 42);
    for ((rk, (e16, r16)), (_, (ebf, _))) in f16s.into_iter().zip(bf16s) {
        println!(
            "{rk:?}: f16 {e16:.2e} (f32 path on the rounded samples {r16:.2e}), bf16 {ebf:.2e}"
        );
        assert!(
            e16 < 4e-5 && ebf < 1e-4 && r16 < 2e-8,
            "{e16:e} {ebf:e} {r16:e}"
        );
    }
}

/// A sample that does not survive the rounding is handed back untouched with
/// `StorageOverflow` (NaN and infinities with `NonFinite`, as in an `f32` store), never stored
/// as infinity; the store is unchanged; at the edge of the range rounding decides.
#[test]
fn samples_beyond_the_element_are_handed_back() {
    let g = Gaussian::new(1.0).unwrap();
    let mut s: Smoother<Gaussian, 3, 2, 1, f16> = Smoother::new(g);
    s.push([0.5, 0.25], [1.0]).unwrap();
    for (x, y, err) in [
        ([70_000.0, 0.0], [0.0], Error::StorageOverflow),
        ([0.0, -70_000.0], [0.0], Error::StorageOverflow),
        ([0.0, 0.0], [70_000.0], Error::StorageOverflow),
        ([0.0, 0.0], [65_520.0], Error::StorageOverflow),
        ([0.0, 0.0], [f32::MAX], Error::StorageOverflow),
        ([f32::NAN, 0.0], [0.0], Error::NonFinite),
        ([0.0, 0.0], [f32::NAN], Error::NonFinite),
        ([0.0, f32::INFINITY], [0.0], Error::NonFinite),
    ] {
        let r = s.push(x, y).unwrap_err();
        assert_eq!(r.error, err, "{x:?} {y:?}");
        assert_eq!(r.sample.x.map(f32::to_bits), x.map(f32::to_bits));
        assert_eq!(r.sample.y.map(f32::to_bits), y.map(f32::to_bits));
        let r = s.push_evicting(x, y).unwrap_err();
        assert_eq!(r.error, err, "push_evicting {x:?} {y:?}");
        assert_eq!(r.sample.y.map(f32::to_bits), y.map(f32::to_bits));
        let r = s.try_extend([Sample { x, y }]).unwrap_err();
        assert_eq!(r.error, err, "try_extend");
        let rows = Smoother::<Gaussian, 3, 2, 1, f16>::from_rows(
            g,
            Rows::from_arrays(&[[0.0, 0.0], x]),
            Rows::from_arrays(&[[0.0], y]),
        );
        assert_eq!(rows.err(), Some(err), "from_rows");
        let kept: Vec<_> = s.iter().collect();
        assert_eq!(
            kept,
            [Sample {
                x: [0.5, 0.25],
                y: [1.0]
            }]
        );
    }
    // 65 519 rounds to the largest f16, 65 504; a full store's reason stays `Full`.
    s.push([0.0, 0.0], [65_519.0]).unwrap();
    assert_eq!(s.iter().next_back().unwrap().y, [65_504.0]);
    s.push([1.0, 0.0], [-65_504.0]).unwrap();
    let r = s.push([0.0, 0.0], [1.0]).unwrap_err();
    assert_eq!(r.error, Error::Full);
    let r = s.push([0.0, 0.0], [70_000.0]).unwrap_err();
    assert_eq!(
        r.error,
        Error::StorageOverflow,
        "the sample's own fault first"
    );
    // bf16 has f32's exponent range: only the last rounding step overflows.
    let mut b: Smoother<Gaussian, 2, 1, 1, bf16> = Smoother::new(g);
    assert_eq!(
        b.push([0.0], [f32::MAX]).unwrap_err().error,
        Error::StorageOverflow
    );
    let edge = f32::from_bits(0x7f7f_7fff); // just below the midpoint to infinity
    b.push([0.0], [edge]).unwrap();
    assert_eq!(b.iter().next().unwrap().y, [bf16::MAX.to_f32()]);
    assert_eq!(b.push([70_000.0], [0.0]), Ok(()));
    // An f32 store takes every finite f32.
    let mut w: Smoother<Gaussian, 1, 1, 1> = Smoother::new(g);
    assert_eq!(w.push([f32::MAX], [f32::MIN]), Ok(()));
    // Rounding is to nearest, ties to even (1 + 2^-11 is halfway between 1 and 1 + 2^-10).
    let mut t: Smoother<Gaussian, 4, 1, 1, f16> = Smoother::new(g);
    let tie: f32 = 1.0 + 1.0 / 2048.0;
    let above = f32::from_bits(tie.to_bits() + 1);
    t.push([tie], [above]).unwrap();
    let p = t.pop_oldest().unwrap();
    assert_eq!((p.x, p.y), ([1.0], [1.0 + 1.0 / 1024.0]));
}

/// A wrapped ring of halves gives the weights of a fresh store holding the same window, bit for
/// bit, and the prediction of `attention` over the window as one contiguous `Rows<f16>` slice
/// within the `f32` bound, for every ring position.
#[test]
fn wrapped_half_ring_matches_one_slice() {
    // Bits compared across calls: no other test may switch the level meanwhile.
    let _one_at_a_time = LEVEL.lock().unwrap_or_else(|e| e.into_inner());
    const N: usize = 70;
    let g = Gaussian::new(0.4).unwrap();
    let rk = RefKernel::Gaussian { h: 0.4 };
    let mut rng = Rng::new(9);
    let samples: Vec<([f32; 3], [f32; 2])> = (0..2 * N)
        .map(|_| {
            (
                core::array::from_fn(|_| rng.next_f32()),
                core::array::from_fn(|_| rng.range(-3.0, 3.0)),
            )
        })
        .collect();
    let q = [0.1f32, -0.2, 0.3];
    for start in 0..N {
        let mut ring: Smoother<Gaussian, N, 3, 2, f16> = Smoother::new(g);
        for (x, y) in &samples[..N + start] {
            ring.push_evicting(*x, *y).unwrap();
        }
        let live = &samples[start..N + start];
        let mut fresh: Smoother<Gaussian, N, 3, 2, f16> = Smoother::new(g);
        for (x, y) in live {
            fresh.push(*x, *y).unwrap();
        }
        let (mut wr, mut wf) = ([0.0f32; N], [0.0f32; N]);
        ring.weights(&q, &mut wr).unwrap();
        fresh.weights(&q, &mut wf).unwrap();
        assert_eq!(wr, wf, "weights, ring wrapped at {start}");
        let kh: Vec<f16> = live
            .iter()
            .flat_map(|(x, _)| x.map(f16::from_f32))
            .collect();
        let vh: Vec<f16> = live
            .iter()
            .flat_map(|(_, y)| y.map(f16::from_f32))
            .collect();
        let mut one = [[0.0f32; 2]];
        attention(
            &g,
            Rows::from_arrays(&[q]),
            Rows::new(&kh, 3).unwrap(),
            Rows::new(&vh, 2).unwrap(),
            Mask::None,
            RowsMut::from_arrays(&mut one),
        )
        .unwrap();
        let got = ring.predict(&q).unwrap();
        let k64: Vec<f64> = kh.iter().map(|x| f64::from(x.to_f32())).collect();
        let v64: Vec<f64> = vh.iter().map(|x| f64::from(x.to_f32())).collect();
        let bound = tolerance(rk, &widen(&q), &k64, &v64);
        let want = reference::smooth(rk, &widen(&q), &k64, &v64, 2);
        for j in 0..2 {
            let (g, o) = (f64::from(got[j]), f64::from(one[0][j]));
            assert!((g - o).abs() <= 2.0 * bound, "start {start}: {g} vs {o}");
            assert!(
                (g - want[j]).abs() <= bound,
                "start {start}: {g} vs {}",
                want[j]
            );
        }
    }
}

/// The memory promise, measured: an `f16` store holds its samples in half the bytes.
#[test]
fn half_store_takes_half_the_bytes() {
    use core::mem::size_of;
    let (h, w) = (
        size_of::<Smoother<Gaussian, 256, 8, 1, f16>>(),
        size_of::<Smoother<Gaussian, 256, 8, 1>>(),
    );
    println!("Smoother<Gaussian, 256, 8, 1>: f16 {h} bytes, f32 {w} bytes");
    assert!(h <= 256 * 9 * 2 + 64 && w <= 256 * 9 * 4 + 64, "{h} {w}");
    assert_eq!(size_of::<Smoother<Gaussian, 256, 8, 1, bf16>>(), h);
    if cfg!(target_pointer_width = "64") {
        assert_eq!((h, w), (4664, 9272), "the figures in the Smoother's docs");
    }
}

/// serde: a half store is written as its stored samples widened (an `f32` store's document) and
/// read back exactly; a document with a sample beyond `f16` is an error.
#[test]
fn half_store_round_trips_through_serde() {
    let g = Gaussian::new(0.5).unwrap();
    let mut s: Smoother<Gaussian, 4, 2, 1, f16> = Smoother::new(g);
    s.push([0.1, 0.2], [0.3]).unwrap();
    s.push([-1.5, 1e-6], [123.456]).unwrap();
    let json = serde_json::to_string(&s).unwrap();
    let back: Smoother<Gaussian, 4, 2, 1, f16> = serde_json::from_str(&json).unwrap();
    let (a, b): (Vec<_>, Vec<_>) = (s.iter().collect(), back.iter().collect());
    assert_eq!(a, b);
    let as_f32: Smoother<Gaussian, 4, 2, 1> = serde_json::from_str(&json).unwrap();
    assert_eq!(as_f32.iter().collect::<Vec<_>>(), a);
    let bad = r#"{"kernel":0.5,"samples":[{"x":[0.0,0.0],"y":[70000.0]}]}"#;
    let e = serde_json::from_str::<Smoother<Gaussian, 4, 2, 1, f16>>(bad).unwrap_err();
    assert!(e.to_string().contains("range"), "{e}");
    assert!(serde_json::from_str::<Smoother<Gaussian, 4, 2, 1>>(bad).is_ok());
}

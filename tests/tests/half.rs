//! Keys and values stored as `f16` and `bf16` (the core's `half` feature): bit for bit the `f32`
//! path on the widened numbers at every dispatch level, within the `f32` bound of an `f64` reference on the rounded
//! inputs, and within that bound plus the storage rounding's of an `f64` reference on the
//! unrounded ones.

use nadaraya::dispatch::{self, Level};
use nadaraya::half::{bf16, f16};
use nadaraya::{
    Dim, Element, Error, Gaussian, HALF_KEY_WIDTH, Kernel, Mask, OnlineSoftmax, Rows, RowsMut,
    SoftmaxDot, attention, attention_batch,
};
use nadaraya_tests::Rng;

/// Serialises the tests' switches of the dispatch level (a process-wide setting).
static LEVEL: std::sync::Mutex<()> = std::sync::Mutex::new(());
use nadaraya_tests::reference::{self, RefKernel, tolerance, widen};

/// A half-precision storage type with its unit roundoff (half an ulp of 1).
trait Half: Element + Copy {
    const NAME: &'static str;
    /// Unit roundoff: `2^-11` for `f16`, `2^-8` for `bf16`.
    const U: f64;
    fn round(x: f32) -> Self;
}

impl Half for f16 {
    const NAME: &'static str = "f16";
    const U: f64 = 1.0 / 2048.0;
    fn round(x: f32) -> Self {
        f16::from_f32(x)
    }
}

impl Half for bf16 {
    const NAME: &'static str = "bf16";
    const U: f64 = 1.0 / 256.0;
    fn round(x: f32) -> Self {
        bf16::from_f32(x)
    }
}

/// What storing keys and values with unit roundoff `u` can cost one output coordinate, on top of
/// the `f32` bound: each value moves by at most `u·|v|`, each score by at most `δ_i` (its
/// first-order sensitivity to a relative change `u` of every key coordinate, doubled for the
/// second-order term and the rounding of `q·k` itself), and a weight by a factor
/// `exp(±(δ_i + max δ))`, so the average by at most `scale·(u + 2·max δ)` (with `e^x - 1 ≤ 1.2x`
/// for the small `x` here).
fn storage_bound(kernel: RefKernel, q: &[f64], keys: &[f64], values: &[f64], u: f64) -> f64 {
    let scale = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let d = q.len();
    let delta = keys
        .chunks_exact(d)
        .map(|k| match kernel {
            RefKernel::SoftmaxDot { tau } => {
                2.0 * u * q.iter().zip(k).map(|(a, b)| (a * b).abs()).sum::<f64>() / tau
            }
            RefKernel::Gaussian { h } => {
                2.0 * u
                    * q.iter()
                        .zip(k)
                        .map(|(a, b)| ((a - b) * b).abs())
                        .sum::<f64>()
                    / (h * h)
            }
        })
        .fold(0.0f64, f64::max);
    scale * (u + 1.2 * 2.0 * delta)
}

struct Case {
    kernel: RefKernel,
    m: usize,
    n: usize,
    d: usize,
    dv: usize,
}

fn kernels(d: usize) -> [(RefKernel, Box<dyn Kernel>); 2] {
    let tau = (d as f64).sqrt();
    let h = 0.5 * (d as f64).sqrt();
    [
        (
            RefKernel::SoftmaxDot { tau },
            Box::new(SoftmaxDot::new(tau as f32).unwrap()),
        ),
        (
            RefKernel::Gaussian { h },
            Box::new(Gaussian::new(h as f32).unwrap()),
        ),
    ]
}

/// Runs one case for storage `H`: returns the largest error against the `f64` reference on the
/// unrounded inputs, relative to the values' scale.
fn check<H: Half>(c: &Case, kernel: &dyn Kernel, seed: u64) -> f64 {
    let mut rng = Rng::new(seed);
    let q = rng.vec(c.m * c.d);
    let keys = rng.vec(c.n * c.d);
    let values = rng.vec_range(c.n * c.dv, -3.0, 3.0);
    let (kh, vh): (Vec<H>, Vec<H>) = (
        keys.iter().map(|&x| H::round(x)).collect(),
        values.iter().map(|&x| H::round(x)).collect(),
    );
    let (kw, vw): (Vec<f32>, Vec<f32>) = (
        kh.iter().map(|x| x.to_f32()).collect(),
        vh.iter().map(|x| x.to_f32()).collect(),
    );
    let mut worst = 0.0f64;
    for mask in [Mask::None, Mask::Causal] {
        let (mut got, mut want) = (vec![7.0; c.m * c.dv], vec![8.0; c.m * c.dv]);
        let (qr, o) = (
            Rows::new(&q, c.d).unwrap(),
            RowsMut::new(&mut got, c.dv).unwrap(),
        );
        let (keys_h, values_h) = (Rows::new(&kh, c.d).unwrap(), Rows::new(&vh, c.dv).unwrap());
        attention(kernel, qr, keys_h, values_h, mask, o).unwrap();
        let (keys_w, values_w) = (Rows::new(&kw, c.d).unwrap(), Rows::new(&vw, c.dv).unwrap());
        let what = format!(
            "{} {:?} m={} n={} d={} dv={}",
            H::NAME,
            mask,
            c.m,
            c.n,
            c.d,
            c.dv
        );
        // Bit for bit at every dispatch level (the promise: the dispatched kernels widen half
        // storage in registers and then run the f32 arithmetic of each query alone), each level
        // in turn. Each query alone: from eight queries on, an f32 call without a mask takes the
        // register-blocked kernel, whose rows are only within the bound of the query alone.
        {
            let _one_at_a_time = LEVEL.lock().unwrap_or_else(|e| e.into_inner());
            let before = dispatch::active();
            for level in Level::ALL {
                if dispatch::force(level) != level {
                    continue;
                }
                let mut base = vec![9.0; c.m * c.dv];
                let o = RowsMut::new(&mut base, c.dv).unwrap();
                attention(kernel, qr, keys_h, values_h, mask, o).unwrap();
                for (t, w) in want.chunks_mut(c.dv).enumerate() {
                    let seen = if mask == Mask::Causal { t + 1 } else { c.n };
                    let (kt, vt) = (
                        keys_w.slice(0, seen).unwrap(),
                        values_w.slice(0, seen).unwrap(),
                    );
                    let qt = qr.slice(t, t + 1).unwrap();
                    let o = RowsMut::new(w, c.dv).unwrap();
                    attention(kernel, qt, kt, vt, Mask::None, o).unwrap();
                }
                assert_eq!(
                    base, want,
                    "{what} at {level}: not the f32 path on the widened inputs"
                );
            }
            dispatch::force(before);
        }
        let (q64, k64, v64) = (widen(&q), widen(&keys), widen(&values));
        let (kr64, vr64) = (widen(&kw), widen(&vw));
        let causal = mask == Mask::Causal;
        let on_rounded = reference::attention(c.kernel, &q64, &kr64, &vr64, c.d, c.dv, causal);
        let on_exact = reference::attention(c.kernel, &q64, &k64, &v64, c.d, c.dv, causal);
        for t in 0..c.m {
            let seen = if causal { t + 1 } else { c.n };
            let qt = &q64[t * c.d..(t + 1) * c.d];
            let (kr, vr) = (&kr64[..seen * c.d], &vr64[..seen * c.dv]);
            let bound = tolerance(c.kernel, qt, kr, vr);
            let (ke, ve) = (&k64[..seen * c.d], &v64[..seen * c.dv]);
            let stored = storage_bound(c.kernel, qt, ke, ve, H::U);
            let scale = ve.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for j in 0..c.dv {
                let g = f64::from(got[t * c.dv + j]);
                let e = (g - on_rounded[t * c.dv + j]).abs();
                assert!(
                    e <= bound,
                    "{what} t={t} j={j}: {e:e} > f32 bound {bound:e}"
                );
                let e = (g - on_exact[t * c.dv + j]).abs();
                assert!(
                    e <= bound + stored,
                    "{what} t={t} j={j}: {e:e} > {bound:e} + storage {stored:e}"
                );
                worst = worst.max(e / scale);
            }
        }
    }
    worst
}

/// The property, over shapes around the SIMD lane width, the 64-row tile and the 4-query block,
/// both built-in kernels and both half types.
#[test]
fn half_storage_is_the_f32_path_on_rounded_inputs_and_within_its_bound() {
    let mut seed = 1;
    for (m, n, d, dv) in [
        (1, 1, 1, 1),
        (3, 7, 3, 2),
        (5, 65, 8, 8),
        (4, 130, 9, 17),
        (2, 64, 64, 64),
        (9, 200, 16, 1),
        (1, 100, 130, 5),
    ] {
        for (rk, k) in kernels(d) {
            let c = Case {
                kernel: rk,
                m,
                n,
                d,
                dv,
            };
            check::<f16>(&c, &*k, seed);
            check::<bf16>(&c, &*k, seed);
            seed += 1;
        }
    }
}

/// The figures of the core README's table ("Half-precision keys and values"): the largest error
/// against `f64` on the unrounded inputs, relative to the values' scale, at the decoding shape
/// `N = 4096, d = dv = 64` (keys, queries uniform in `[-1, 1)`, values in `[-3, 3)`).
/// Run with `--nocapture` to print them; the assertions hold them to the documented figures.
#[test]
fn decoding_shape_errors_are_as_documented() {
    let (n, d, dv) = (4096, 64, 64);
    for (rk, k) in kernels(d) {
        let c = Case {
            kernel: rk,
            m: 4,
            n,
            d,
            dv,
        };
        let e16 = check::<f16>(&c, &*k, 99);
        let ebf = check::<bf16>(&c, &*k, 99);
        println!("{rk:?}: relative error f16 {e16:.2e}, bf16 {ebf:.2e}");
        assert!(e16 < 4e-4 && ebf < 3e-3, "{e16:e} {ebf:e}");
    }
}

/// Errors are the `f32` path's, and the half-specific ones: NaN and infinity in half storage are
/// input errors; keys wider than the widening buffer are a shape error, never a wrong result.
#[test]
fn half_errors_are_named() {
    let k = SoftmaxDot::new(1.0).unwrap();
    let q = [0.5f32; 2];
    let mut out = [0.0f32; 1];
    for bad in [f16::NAN, f16::INFINITY, f16::NEG_INFINITY] {
        for at_key in [true, false] {
            let mut keys = [f16::ONE; 4];
            let mut values = [f16::ONE; 2];
            if at_key {
                keys[3] = bad;
            } else {
                values[1] = bad;
            }
            for mask in [Mask::None, Mask::Causal] {
                let r = attention(
                    &k,
                    Rows::new(&q, 2).unwrap(),
                    Rows::new(&keys, 2).unwrap(),
                    Rows::new(&values, 1).unwrap(),
                    mask,
                    RowsMut::new(&mut out, 1).unwrap(),
                );
                assert_eq!(r, Err(Error::NonFinite), "{bad} key={at_key} {mask:?}");
            }
        }
    }
    let bad = [bf16::NAN, bf16::ONE];
    let r = attention(
        &k,
        Rows::new(&q[..1], 1).unwrap(),
        Rows::new(&bad, 1).unwrap(),
        Rows::new(&[bf16::ONE; 2], 1).unwrap(),
        Mask::None,
        RowsMut::new(&mut out, 1).unwrap(),
    );
    assert_eq!(r, Err(Error::NonFinite));
    // One key of HALF_KEY_WIDTH is fine, one more is the documented shape error.
    for w in [HALF_KEY_WIDTH, HALF_KEY_WIDTH + 1] {
        let qw = vec![0.01f32; w];
        let kw = vec![f16::ONE; w];
        let r = attention(
            &k,
            Rows::new(&qw, w).unwrap(),
            Rows::new(&kw, w).unwrap(),
            Rows::new(&[f16::ONE], 1).unwrap(),
            Mask::None,
            RowsMut::new(&mut out, 1).unwrap(),
        );
        let want = if w > HALF_KEY_WIDTH {
            Err(Error::Shape {
                what: Dim::Width,
                expected: HALF_KEY_WIDTH,
                found: w,
            })
        } else {
            Ok(())
        };
        assert_eq!(r, want, "w={w}");
        let mut s = OnlineSoftmax::<1>::new();
        let r = s.update(
            &k,
            &qw,
            Rows::new(&kw, w).unwrap(),
            Rows::new(&[f16::ONE], 1).unwrap(),
        );
        assert_eq!(r, want, "update w={w}");
    }
}

/// `attention_batch` and `OnlineSoftmax::update` over half storage equal their `f32` runs on the
/// widened numbers, bit for bit.
#[test]
fn batch_and_online_softmax_take_half_storage() {
    // Bits compared across calls: no other test may switch the level meanwhile.
    let _one_at_a_time = LEVEL.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng::new(5);
    let (b, m, n, d, dv) = (3, 2, 70, 5, 3);
    let q = rng.vec(b * m * d);
    let kh: Vec<bf16> = rng
        .vec(b * n * d)
        .iter()
        .map(|&x| bf16::from_f32(x))
        .collect();
    let vh: Vec<bf16> = rng
        .vec(b * n * dv)
        .iter()
        .map(|&x| bf16::from_f32(x))
        .collect();
    let kw: Vec<f32> = kh.iter().map(|x| x.to_f32()).collect();
    let vw: Vec<f32> = vh.iter().map(|x| x.to_f32()).collect();
    let g = Gaussian::new(0.8).unwrap();
    let (mut a, mut w) = (vec![0.0; b * m * dv], vec![0.0; b * m * dv]);
    let qr = Rows::new(&q, d).unwrap();
    attention_batch(
        &g,
        b,
        qr,
        Rows::new(&kh, d).unwrap(),
        Rows::new(&vh, dv).unwrap(),
        Mask::Causal,
        RowsMut::new(&mut a, dv).unwrap(),
    )
    .unwrap();
    attention_batch(
        &g,
        b,
        qr,
        Rows::new(&kw, d).unwrap(),
        Rows::new(&vw, dv).unwrap(),
        Mask::Causal,
        RowsMut::new(&mut w, dv).unwrap(),
    )
    .unwrap();
    assert_eq!(a, w);
    let (mut sh, mut sw) = (OnlineSoftmax::<3>::new(), OnlineSoftmax::<3>::new());
    for (kc, vc) in kh.chunks(13 * d).zip(vh.chunks(13 * dv)) {
        sh.update(
            &g,
            &q[..d],
            Rows::new(kc, d).unwrap(),
            Rows::new(vc, dv).unwrap(),
        )
        .unwrap();
    }
    for (kc, vc) in kw.chunks(13 * d).zip(vw.chunks(13 * dv)) {
        sw.update(
            &g,
            &q[..d],
            Rows::new(kc, d).unwrap(),
            Rows::new(vc, dv).unwrap(),
        )
        .unwrap();
    }
    assert_eq!(sh.finish(), sw.finish());
}

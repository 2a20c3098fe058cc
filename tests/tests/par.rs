//! `nadaraya_rf::par`: query-parallel attention equals the core's, bit for bit; split-K attention
//! equals its serial run for the same split, bit for bit, and the `f64` reference within the
//! core's bound; errors are the core's.

use nadaraya::half::f16;
use nadaraya::{
    Epanechnikov, Error as CoreError, Gaussian, Kernel, Mask, Rows, RowsMut, SoftmaxDot,
};
use nadaraya_rf::{Error, par};
use nadaraya_tests::Rng;
use nadaraya_tests::reference::{self, RefKernel, tolerance, widen};

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

/// Every row of `par::attention` is the core's, on 1, 2 and 3 threads, with and without a mask,
/// at query counts around the task size, for `f32` and `f16` storage.
#[test]
fn query_parallel_rows_are_the_cores() {
    let mut rng = Rng::new(3);
    let s = SoftmaxDot::new(0.9).unwrap();
    let g = Gaussian::new(0.7).unwrap();
    for (m, n, d, dv) in [
        (1, 1, 1, 1),
        (15, 40, 3, 2),
        (17, 17, 8, 8),
        (70, 130, 9, 17),
        // Tasks of 32: 137 = 4·32 + 9, a last task of 9 of its own; 130 = 4·32 + 2, a last 2
        // joining the one before; 263 = 8·32 + 7, eight tasks (every one its own leaf of the
        // pool's splitting, so threads take them in any order), a last 7 joining.
        (137, 150, 16, 8),
        (130, 130, 4, 3),
        (263, 270, 5, 3),
    ] {
        let q = rng.vec(m * d);
        let keys = rng.vec(n * d);
        let values = rng.vec(n * dv);
        let kh: Vec<f16> = keys.iter().map(|&x| f16::from_f32(x)).collect();
        let vh: Vec<f16> = values.iter().map(|&x| f16::from_f32(x)).collect();
        let (qr, kr, vr) = (
            Rows::new(&q, d).unwrap(),
            Rows::new(&keys, d).unwrap(),
            Rows::new(&values, dv).unwrap(),
        );
        let (khr, vhr) = (Rows::new(&kh, d).unwrap(), Rows::new(&vh, dv).unwrap());
        for kernel in [&s as &(dyn Kernel + Sync), &g] {
            for mask in [Mask::None, Mask::Causal] {
                if mask == Mask::Causal && m > n {
                    continue;
                }
                let mut want = vec![0.0; m * dv];
                nadaraya::attention(
                    kernel,
                    qr,
                    kr,
                    vr,
                    mask,
                    RowsMut::new(&mut want, dv).unwrap(),
                )
                .unwrap();
                let mut want_h = vec![0.0; m * dv];
                let o = RowsMut::new(&mut want_h, dv).unwrap();
                nadaraya::attention(kernel, qr, khr, vhr, mask, o).unwrap();
                for threads in [1, 2, 3] {
                    let mut got = vec![7.0; m * dv];
                    pool(threads).install(|| {
                        let o = RowsMut::new(&mut got, dv).unwrap();
                        par::attention(kernel, qr, kr, vr, mask, o).unwrap();
                    });
                    assert_eq!(got, want, "m={m} n={n} {mask:?} threads={threads}");
                    pool(threads).install(|| {
                        let o = RowsMut::new(&mut got, dv).unwrap();
                        par::attention(kernel, qr, khr, vhr, mask, o).unwrap();
                    });
                    assert_eq!(got, want_h, "f16 m={m} n={n} {mask:?} threads={threads}");
                }
            }
        }
    }
}

/// For a fixed split, the parallel result is the serial one bit for bit (on 2 and 3 threads), and
/// both are within the core's bound of the `f64` reference.
#[test]
fn split_k_is_bit_identical_to_serial_and_within_the_bound() {
    let mut rng = Rng::new(8);
    for (m, n, d, dv) in [
        (1, 1, 1, 1),
        (1, 1000, 64, 64),
        (3, 257, 5, 3),
        (2, 64, 8, 1),
    ] {
        let tau = (d as f64).sqrt();
        let k = SoftmaxDot::new(tau as f32).unwrap();
        let rk = RefKernel::SoftmaxDot { tau };
        let q = rng.vec(m * d);
        let keys = rng.vec(n * d);
        let values = rng.vec_range(n * dv, -2.0, 2.0);
        let (qr, kr, vr) = (
            Rows::new(&q, d).unwrap(),
            Rows::new(&keys, d).unwrap(),
            Rows::new(&values, dv).unwrap(),
        );
        let want =
            reference::attention(rk, &widen(&q), &widen(&keys), &widen(&values), d, dv, false);
        for chunks in [1, 2, 3, 7, 64, n + 5] {
            let mut serial = vec![0.0; m * dv];
            let o = RowsMut::new(&mut serial, dv).unwrap();
            par::attention_split_serial(&k, qr, kr, vr, chunks, o).unwrap();
            for threads in [2, 3] {
                let mut got = vec![7.0; m * dv];
                pool(threads).install(|| {
                    let o = RowsMut::new(&mut got, dv).unwrap();
                    par::attention_split(&k, qr, kr, vr, chunks, o).unwrap();
                });
                let what = format!("m={m} n={n} chunks={chunks} threads={threads}");
                assert_eq!(
                    got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    serial.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    "{what}"
                );
            }
            for t in 0..m {
                let bound = tolerance(
                    rk,
                    &widen(&q[t * d..(t + 1) * d]),
                    &widen(&keys),
                    &widen(&values),
                );
                for j in 0..dv {
                    let e = (f64::from(serial[t * dv + j]) - want[t * dv + j]).abs();
                    assert!(e <= bound, "chunks={chunks} t={t} j={j}: {e:e} > {bound:e}");
                }
            }
        }
    }
}

/// A compact kernel's chunk without support for a query has no weight; a query without support
/// anywhere is the core's `NoSupport`; a NaN in any chunk is `NonFinite`, whichever chunk fails
/// first; shape errors are the core's.
#[test]
fn split_k_errors_are_the_cores() {
    let e = Epanechnikov::new(1.0).unwrap();
    let q = [0.0f32];
    let keys = [0.1f32, 0.2, 5.0, 6.0, 7.0, 8.0];
    let values = [1.0f32, 3.0, 100.0, 100.0, 100.0, 100.0];
    let (qr, kr, vr) = (
        Rows::new(&q, 1).unwrap(),
        Rows::new(&keys, 1).unwrap(),
        Rows::new(&values, 1).unwrap(),
    );
    let mut whole = [0.0];
    nadaraya::attention(
        &e,
        qr,
        kr,
        vr,
        Mask::None,
        RowsMut::new(&mut whole, 1).unwrap(),
    )
    .unwrap();
    for chunks in [1, 2, 3, 6] {
        let mut out = [0.0];
        par::attention_split(&e, qr, kr, vr, chunks, RowsMut::new(&mut out, 1).unwrap()).unwrap();
        assert!(
            (out[0] - whole[0]).abs() < 1e-6,
            "chunks={chunks}: {} vs {}",
            out[0],
            whole[0]
        );
    }
    let far = [50.0f32];
    let r = par::attention_split(
        &e,
        Rows::new(&far, 1).unwrap(),
        kr,
        vr,
        3,
        RowsMut::new(&mut whole, 1).unwrap(),
    );
    assert_eq!(r, Err(Error::Core(CoreError::NoSupport)));
    // Scores overflow in the first chunk, a NaN sits in the last: the input error wins.
    let s = SoftmaxDot::new(1e-30).unwrap();
    let keys = [1e10f32, 1.0, 1.0, f32::NAN];
    let r = par::attention_split(
        &s,
        Rows::new(&[1e10f32], 1).unwrap(),
        Rows::new(&keys, 1).unwrap(),
        Rows::new(&[1.0f32; 4], 1).unwrap(),
        4,
        RowsMut::new(&mut whole, 1).unwrap(),
    );
    assert_eq!(r, Err(Error::NonFinite));
    let r = par::attention(
        &s,
        Rows::new(&[1e10f32, 0.0], 1).unwrap(),
        Rows::new(&keys, 1).unwrap(),
        Rows::new(&[1.0f32; 4], 1).unwrap(),
        Mask::Causal,
        RowsMut::new(&mut [0.0; 2], 1).unwrap(),
    );
    assert_eq!(
        r,
        Err(Error::NonFinite),
        "a NaN only later rows read (causal)"
    );
    let mut out = [0.0; 2];
    for mask in [Mask::None, Mask::Causal] {
        let want = nadaraya::attention(
            &s,
            kr,
            kr,
            Rows::new(&values[..5], 1).unwrap(),
            mask,
            RowsMut::new(&mut out[..1], 1).unwrap(),
        )
        .map_err(Error::from);
        let got = par::attention(
            &s,
            kr,
            kr,
            Rows::new(&values[..5], 1).unwrap(),
            mask,
            RowsMut::new(&mut out[..1], 1).unwrap(),
        );
        assert_eq!(got, want);
        assert!(got.is_err());
    }
    let got = par::attention_split(
        &s,
        qr,
        kr,
        Rows::new(&values[..5], 1).unwrap(),
        2,
        RowsMut::new(&mut out[..1], 1).unwrap(),
    );
    assert!(matches!(got, Err(Error::Shape { .. })), "{got:?}");
}

//! The Q15 path (`nadaraya::fixed`) against a plain `f64` reference on random problems, its
//! error answers, and its order independence (integer sums are exact).

use nadaraya::fixed::{self, Q15Kernel};
use nadaraya::{Dim, Error, Gaussian, SoftmaxDot};
use nadaraya_tests::Rng;
use nadaraya_tests::reference::{self, RefKernel};

/// The documented bound: three Q15 steps.
const TOL: f64 = 3.0 / 32768.0;

fn deq(x: i16) -> f64 {
    f64::from(x) / 32768.0
}

/// Nadaraya–Watson in f64 on the dequantised inputs (the workspace's reference), one query.
fn reference(gaussian: bool, param: f64, q: &[i16], keys: &[i16], values: &[i16]) -> Vec<f64> {
    let dv = values.len() / (keys.len() / q.len());
    let deq_all = |xs: &[i16]| -> Vec<f64> { xs.iter().map(|&x| deq(x)).collect() };
    let k = if gaussian {
        RefKernel::Gaussian { h: param }
    } else {
        RefKernel::SoftmaxDot { tau: param }
    };
    reference::smooth(k, &deq_all(q), &deq_all(keys), &deq_all(values), dv)
}

fn random_i16(rng: &mut Rng, spread: f32) -> i16 {
    fixed::q15(rng.range(-spread, spread))
}

/// Random problems over both kernels, several widths, sizes and scales; returns the worst error.
fn sweep(gaussian: bool) -> f64 {
    let mut rng = Rng::new(if gaussian { 0xf1ed_0001 } else { 0xf1ed_0002 });
    let mut worst = 0.0f64;
    for &d in &[1usize, 2, 3, 8, 16] {
        for &n in &[1usize, 2, 7, 64, 300] {
            for &dv in &[1usize, 3] {
                let params: &[f64] = if gaussian {
                    &[0.02, 0.1, 0.3, 1.0, 4.0]
                } else {
                    &[0.05, 0.3, 1.0, 2.8, 20.0]
                };
                for &param in params {
                    for &spread in &[1.0f32, 0.05] {
                        let q: Vec<i16> = (0..d).map(|_| random_i16(&mut rng, spread)).collect();
                        let keys: Vec<i16> =
                            (0..n * d).map(|_| random_i16(&mut rng, spread)).collect();
                        let values: Vec<i16> =
                            (0..n * dv).map(|_| random_i16(&mut rng, 1.0)).collect();
                        let k = if gaussian {
                            Q15Kernel::gaussian(&Gaussian::new(param as f32).unwrap()).unwrap()
                        } else {
                            Q15Kernel::softmax_dot(&SoftmaxDot::new(param as f32).unwrap()).unwrap()
                        };
                        let mut out = vec![0i16; dv];
                        fixed::attention(&k, &q, &keys, &values, &mut out).unwrap();
                        let want = reference(gaussian, f64::from(param as f32), &q, &keys, &values);
                        for (o, w) in out.iter().zip(&want) {
                            let err = (deq(*o) - w).abs();
                            assert!(
                                err <= TOL,
                                "gaussian {gaussian} d {d} n {n} dv {dv} param {param} spread \
                                 {spread}: got {}, want {w}, error {err:e}",
                                deq(*o)
                            );
                            worst = worst.max(err);
                        }
                    }
                }
            }
        }
    }
    worst
}

#[test]
fn gaussian_within_three_steps_of_f64() {
    let worst = sweep(true);
    println!("Q15 Gaussian: worst error {:.2} Q15 steps", worst * 32768.0);
}

#[test]
fn softmax_dot_within_three_steps_of_f64() {
    let worst = sweep(false);
    println!(
        "Q15 softmax-dot: worst error {:.2} Q15 steps",
        worst * 32768.0
    );
}

/// Extreme inputs: every value at the ends of the range, a query far from every key (every
/// float weight would underflow without the shift), keys all equal.
#[test]
fn extremes() {
    let k = Q15Kernel::gaussian(&Gaussian::new(0.01).unwrap()).unwrap();
    let mut out = [0i16];
    fixed::attention(
        &k,
        &[i16::MIN],
        &[i16::MAX, 0],
        &[i16::MAX, i16::MIN],
        &mut out,
    )
    .unwrap();
    assert_eq!(out[0], i16::MIN, "the nearer key (0) wins outright");
    fixed::attention(&k, &[i16::MAX], &[i16::MIN], &[i16::MIN], &mut out).unwrap();
    assert_eq!(out[0], i16::MIN);
    fixed::attention(&k, &[5], &[7; 10], &[100; 10], &mut out).unwrap();
    assert_eq!(out[0], 100);
    let k = Q15Kernel::softmax_dot(&SoftmaxDot::new(1e-3).unwrap()).unwrap();
    let q = [i16::MIN; 16];
    let keys = [[i16::MIN; 16], [i16::MAX; 16]].concat();
    fixed::attention(&k, &q, &keys, &[i16::MAX, i16::MIN], &mut out).unwrap();
    assert_eq!(out[0], i16::MAX);
}

/// Integer sums are exact, so any order of the same samples gives the same bits.
#[test]
fn order_independent() {
    let mut rng = Rng::new(0xf1ed_0003);
    let k = Q15Kernel::gaussian(&Gaussian::new(0.2).unwrap()).unwrap();
    let (d, n) = (3, 50);
    let q: Vec<i16> = (0..d).map(|_| random_i16(&mut rng, 1.0)).collect();
    let mut rows: Vec<(Vec<i16>, i16)> = (0..n)
        .map(|_| {
            (
                (0..d).map(|_| random_i16(&mut rng, 1.0)).collect(),
                random_i16(&mut rng, 1.0),
            )
        })
        .collect();
    let run = |rows: &[(Vec<i16>, i16)]| {
        let keys: Vec<i16> = rows.iter().flat_map(|r| r.0.clone()).collect();
        let values: Vec<i16> = rows.iter().map(|r| r.1).collect();
        let mut out = [0i16];
        fixed::attention(&k, &q, &keys, &values, &mut out).unwrap();
        out[0]
    };
    let first = run(&rows);
    rows.reverse();
    assert_eq!(run(&rows), first);
    rows.rotate_left(17);
    assert_eq!(run(&rows), first);
}

#[test]
fn errors_as_the_float_api() {
    let k = Q15Kernel::gaussian(&Gaussian::new(0.5).unwrap()).unwrap();
    let mut out = [0i16; 2];
    let att = |q: &[i16], keys: &[i16], values: &[i16], out: &mut [i16]| {
        fixed::attention(&k, q, keys, values, out)
    };
    assert_eq!(
        att(&[], &[1, 2], &[1, 2], &mut out),
        Err(Error::ZeroDimension)
    );
    assert_eq!(
        att(&[1], &[1, 2], &[1, 2], &mut []),
        Err(Error::ZeroDimension)
    );
    let shape = |what, expected, found| Error::Shape {
        what,
        expected,
        found,
    };
    assert_eq!(
        att(&[1, 2], &[1, 2, 3], &[1, 2], &mut out),
        Err(shape(Dim::Flat, 2, 3))
    );
    assert_eq!(
        att(&[1, 2], &[1, 2], &[1, 2, 3], &mut out),
        Err(shape(Dim::Flat, 2, 3))
    );
    assert_eq!(
        att(&[1, 2], &[1, 2, 3, 4], &[1, 2], &mut out),
        Err(shape(Dim::ValueRows, 2, 1))
    );
    assert_eq!(att(&[1, 2], &[], &[], &mut out), Err(Error::Empty));
    let wide = vec![0i16; fixed::MAX_WIDTH + 1];
    assert_eq!(
        att(&wide, &wide, &[1], &mut out[..1]),
        Err(shape(Dim::Width, fixed::MAX_WIDTH, fixed::MAX_WIDTH + 1))
    );
    let many = vec![0i16; fixed::MAX_KEYS + 1];
    assert_eq!(
        att(&[0], &many, &many, &mut out[..1]),
        Err(Error::CapacityExceeded)
    );
    // The kernels: the float rules first, then the Q15 scale's range.
    assert_eq!(
        Q15Kernel::gaussian(&Gaussian::new(0.0046).unwrap()),
        Err(Error::InvalidBandwidth)
    );
    assert!(Q15Kernel::gaussian(&Gaussian::new(0.0048).unwrap()).is_ok());
    assert!(Q15Kernel::gaussian(&Gaussian::new(200.0).unwrap()).is_ok());
    assert_eq!(
        Q15Kernel::gaussian(&Gaussian::new(250.0).unwrap()),
        Err(Error::InvalidBandwidth)
    );
    assert_eq!(
        Q15Kernel::softmax_dot(&SoftmaxDot::new(1e5).unwrap()),
        Err(Error::InvalidTemperature)
    );
    assert!(Q15Kernel::softmax_dot(&SoftmaxDot::new(9e4).unwrap()).is_ok());
    assert_eq!(
        Q15Kernel::softmax_dot(&SoftmaxDot::new(4.3e-5).unwrap()),
        Err(Error::InvalidTemperature)
    );
    assert!(Q15Kernel::softmax_dot(&SoftmaxDot::new(4.5e-5).unwrap()).is_ok());
}

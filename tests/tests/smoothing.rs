//! The core against the plain f64 reference: random shapes, invariants, and the seed's
//! "What to Try" scenarios as assertions.

mod core_flat;
use core_flat::{attention, causal_attention, weights};
use nadaraya::{Error, Gaussian, Kernel, OnlineSoftmax, Smoother, SoftmaxDot};
use nadaraya_tests::reference::{self, RefKernel, widen};
use proptest::prelude::*;

/// A kernel in both worlds.
#[derive(Clone, Copy, Debug)]
enum Both {
    Gaussian(f32),
    Dot(f32),
}

impl Both {
    fn reference(self) -> RefKernel {
        match self {
            Self::Gaussian(h) => RefKernel::Gaussian { h: f64::from(h) },
            Self::Dot(t) => RefKernel::SoftmaxDot { tau: f64::from(t) },
        }
    }
    fn run(
        self,
        q: &[f32],
        keys: &[f32],
        values: &[f32],
        d: usize,
        dv: usize,
        out: &mut [f32],
    ) -> Result<(), Error> {
        match self {
            Self::Gaussian(h) => attention(&Gaussian::new(h)?, q, keys, values, d, dv, out),
            Self::Dot(t) => attention(&SoftmaxDot::new(t)?, q, keys, values, d, dv, out),
        }
    }
    fn weights(self, q: &[f32], keys: &[f32], out: &mut [f32]) -> Result<(), Error> {
        match self {
            Self::Gaussian(h) => weights(&Gaussian::new(h)?, q, keys, out),
            Self::Dot(t) => weights(&SoftmaxDot::new(t)?, q, keys, out),
        }
    }
}

#[derive(Clone, Debug)]
struct Case {
    kernel: Both,
    d: usize,
    dv: usize,
    q: Vec<f32>,
    keys: Vec<f32>,
    values: Vec<f32>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        1usize..=300,
        1usize..=70,
        1usize..=70,
        1usize..=3,
        0usize..8,
        prop::num::f32::NORMAL,
        any::<u64>(),
    )
        .prop_map(|(n, d, dv, m, k, vscale, seed)| {
            let mut rnd = nadaraya_tests::uniform(seed);
            let sqrt_d = (d as f32).sqrt();
            let kernel = match k {
                0 => Both::Gaussian(0.3 * sqrt_d),
                1 => Both::Gaussian(sqrt_d),
                2 => Both::Gaussian(3.0 * sqrt_d),
                3 => Both::Gaussian(0.05),
                4 => Both::Dot(sqrt_d),
                5 => Both::Dot(0.5),
                6 => Both::Dot(4.0 * sqrt_d),
                _ => Both::Dot(1.0),
            };
            // Values of any normal magnitude, capped so that sums stay finite.
            let vscale = vscale.abs().clamp(1e-30, 1e30);
            Case {
                kernel,
                d,
                dv,
                q: (0..m * d).map(|_| rnd()).collect(),
                keys: (0..n * d).map(|_| rnd()).collect(),
                values: (0..n * dv).map(|_| rnd() * vscale).collect(),
            }
        })
}

fn check_against_reference(
    c: &Case,
    keys: &[f32],
    values: &[f32],
) -> Result<Vec<f32>, TestCaseError> {
    let (d, dv) = (c.d, c.dv);
    let mut out = vec![f32::NAN; c.q.len() / d * dv];
    c.kernel
        .run(&c.q, keys, values, d, dv, &mut out)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let (k64, v64) = (widen(keys), widen(values));
    for (qr, o) in c.q.chunks_exact(d).zip(out.chunks_exact(dv)) {
        let q64 = widen(qr);
        let want = reference::smooth(c.kernel.reference(), &q64, &k64, &v64, dv);
        let tol = reference::tolerance(c.kernel.reference(), &q64, &k64, &v64);
        for (j, (g, w)) in o.iter().zip(&want).enumerate() {
            prop_assert!(
                (f64::from(*g) - w).abs() <= tol,
                "coord {j}: got {g:e} want {w:e} tol {tol:e}"
            );
        }
        // A convex combination: inside the range of the values, coordinate by coordinate.
        for j in 0..dv {
            let col = values.chunks_exact(dv).map(|v| v[j]);
            let (lo, hi) = col.fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
            let slack = (hi - lo).abs().max(hi.abs()) * 4.0 * f32::EPSILON;
            prop_assert!(
                o[j] >= lo - slack && o[j] <= hi + slack,
                "{} outside [{lo}, {hi}]",
                o[j]
            );
        }
    }
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn attention_matches_f64_reference(c in case()) {
        check_against_reference(&c, &c.keys, &c.values)?;
    }

    #[test]
    fn weights_are_a_distribution_matching_the_reference(c in case()) {
        let n = c.keys.len() / c.d;
        let mut w = vec![0.0f32; n];
        c.kernel.weights(&c.q[..c.d], &c.keys, &mut w).unwrap();
        let want = reference::weights(c.kernel.reference(), &widen(&c.q[..c.d]), &widen(&c.keys));
        let sum: f64 = w.iter().map(|&v| f64::from(v)).sum();
        prop_assert!((sum - 1.0).abs() <= 1e-6, "sum {sum}");
        let tol = reference::tolerance(c.kernel.reference(), &widen(&c.q[..c.d]), &widen(&c.keys), &[1.0]);
        for (g, r) in w.iter().zip(&want) {
            prop_assert!(*g >= 0.0);
            prop_assert!((f64::from(*g) - r).abs() <= tol, "{g} vs {r}");
        }
    }

    #[test]
    fn permuting_samples_does_not_change_the_output(c in case(), rot in 0usize..300) {
        let (d, dv) = (c.d, c.dv);
        let n = c.keys.len() / d;
        // Reverse, then rotate: a permutation that moves every sample across tile borders.
        let order: Vec<usize> = (0..n).rev().cycle().skip(rot % n).take(n).collect();
        let keys: Vec<f32> = order.iter().flat_map(|&i| c.keys[i * d..(i + 1) * d].iter().copied()).collect();
        let values: Vec<f32> = order.iter().flat_map(|&i| c.values[i * dv..(i + 1) * dv].iter().copied()).collect();
        let a = check_against_reference(&c, &c.keys, &c.values)?;
        let b = check_against_reference(&c, &keys, &values)?;
        let k64 = widen(&c.keys);
        let v64 = widen(&c.values);
        let tol = 2.0 * reference::tolerance(c.kernel.reference(), &widen(&c.q[..d]), &k64, &v64);
        for (x, y) in a.iter().zip(&b) {
            prop_assert!((f64::from(*x) - f64::from(*y)).abs() <= tol);
        }
    }

    #[test]
    fn chunked_merges_in_any_order_equal_one_pass(c in case(), cuts in prop::collection::vec(0usize..300, 0..6), order_seed in any::<u64>()) {
        let d = c.d;
        let n = c.keys.len() / d;
        let q = &c.q[..d];
        let vals: Vec<f32> = c.values.chunks_exact(c.dv).map(|v| v[0]).collect();
        let mut bounds: Vec<usize> = cuts.iter().map(|&x| x % (n + 1)).chain([0, n]).collect();
        bounds.sort_unstable();
        let mut parts: Vec<OnlineSoftmax<1>> = bounds.windows(2).map(|w| {
            let mut s = OnlineSoftmax::<1>::new();
            match c.kernel {
                Both::Gaussian(h) => core_flat::update(&mut s, &Gaussian::new(h).unwrap(), q, &c.keys[w[0] * d..w[1] * d], &vals[w[0]..w[1]]),
                Both::Dot(t) => core_flat::update(&mut s, &SoftmaxDot::new(t).unwrap(), q, &c.keys[w[0] * d..w[1] * d], &vals[w[0]..w[1]]),
            }.unwrap();
            s
        }).collect();
        // Shuffle the parts, then fold.
        let mut rng = nadaraya_tests::Rng::new(order_seed);
        for i in (1..parts.len()).rev() {
            parts.swap(i, (rng.next_u64() >> 33) as usize % (i + 1));
        }
        let merged = parts.iter().fold(OnlineSoftmax::<1>::new(), |a, b| a.merge(b)).finish().unwrap();
        let want = reference::smooth(c.kernel.reference(), &widen(q), &widen(&c.keys), &widen(&vals), 1);
        let tol = reference::tolerance(c.kernel.reference(), &widen(q), &widen(&c.keys), &widen(&vals));
        prop_assert!((f64::from(merged[0]) - want[0]).abs() <= tol, "{} vs {}", merged[0], want[0]);
    }

    #[test]
    fn causal_attention_matches_reference(c in case()) {
        let (d, dv) = (c.d, c.dv);
        let n = c.keys.len() / d;
        let m = n.min(4);
        let q = &c.keys[..m * d];
        let mut out = vec![0.0; m * dv];
        let r = match c.kernel {
            Both::Gaussian(h) => causal_attention(&Gaussian::new(h).unwrap(), q, &c.keys, &c.values, d, dv, &mut out),
            Both::Dot(t) => causal_attention(&SoftmaxDot::new(t).unwrap(), q, &c.keys, &c.values, d, dv, &mut out),
        };
        r.unwrap();
        let want = reference::attention(c.kernel.reference(), &widen(q), &widen(&c.keys), &widen(&c.values), d, dv, true);
        for t in 0..m {
            let tol = reference::tolerance(c.kernel.reference(), &widen(&q[t * d..(t + 1) * d]), &widen(&c.keys[..(t + 1) * d]), &widen(&c.values[..(t + 1) * dv]));
            for j in 0..dv {
                prop_assert!((f64::from(out[t * dv + j]) - want[t * dv + j]).abs() <= tol);
            }
        }
    }
}

/// For unit-norm query and keys, `-|q - k|²/2h² = (q·k - 1)/h²`: Gaussian weights with bandwidth
/// `h` equal softmax-dot weights with `τ = h²`.
#[test]
fn gaussian_equals_softmax_dot_on_the_unit_sphere() {
    for (d, h) in [(1usize, 0.5f32), (2, 0.2), (3, 1.0), (16, 0.7), (64, 2.0)] {
        let n = 97;
        let mut rnd = nadaraya_tests::uniform(0x9e37_79b9_7f4a_7c15u64 ^ d as u64);
        let mut unit = |len: usize| -> Vec<f32> {
            (0..len)
                .flat_map(|_| {
                    let v: Vec<f32> = (0..d).map(|_| rnd()).collect();
                    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                    v.into_iter().map(move |x| x / norm)
                })
                .collect()
        };
        let q = unit(1);
        let keys = unit(n);
        let mut wg = vec![0.0; n];
        let mut wd = vec![0.0; n];
        weights(&Gaussian::new(h).unwrap(), &q, &keys, &mut wg).unwrap();
        weights(&SoftmaxDot::new(h * h).unwrap(), &q, &keys, &mut wd).unwrap();
        for (a, b) in wg.iter().zip(&wd) {
            assert!((a - b).abs() <= 1e-6, "d={d} h={h}: {a} vs {b}");
        }
    }
}

fn spread(n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n)
        .map(|i| lo + (hi - lo) * i as f32 / (n - 1) as f32)
        .collect()
}

fn centre(x: &[f32], w: &[f32]) -> f32 {
    x.iter().zip(w).map(|(a, b)| a * b).sum()
}

/// (a) Small `h` makes the weights local, and they follow `x_q`.
#[test]
fn what_to_try_a_small_bandwidth_is_local_and_follows_the_query() {
    let x = spread(41, -2.0, 2.0);
    let k = Gaussian::new(0.2).unwrap();
    let mut prev = f32::NEG_INFINITY;
    for xq in [-1.5f32, -0.7, 0.0, 0.3, 1.1, 1.6] {
        let mut w = vec![0.0; x.len()];
        weights(&k, &[xq], &x, &mut w).unwrap();
        let near: f32 = x
            .iter()
            .zip(&w)
            .filter(|(xi, _)| (*xi - xq).abs() <= 0.6)
            .map(|(_, w)| w)
            .sum();
        assert!(near >= 0.99, "x_q={xq}: {near} within 3h");
        let c = centre(&x, &w);
        assert!((c - xq).abs() < 0.05, "centre {c} vs x_q {xq}");
        assert!(c > prev);
        prev = c;
    }
}

/// (b) Small `τ` makes softmax-dot peaky.
#[test]
fn what_to_try_b_small_temperature_is_peaky() {
    // The seed's demo: a handful of points over [-2, 2].
    let x = spread(9, -2.0, 2.0);
    for xq in [-1.0f32, 0.5, 1.0] {
        let mut w = vec![0.0; x.len()];
        weights(&SoftmaxDot::new(0.05).unwrap(), &[xq], &x, &mut w).unwrap();
        let top = w.iter().copied().fold(0.0, f32::max);
        assert!(top >= 0.99, "x_q={xq}: top weight {top}");
    }
}

/// (c) With a large `h`, each cluster's weight mass follows its size.
#[test]
fn what_to_try_c_cluster_mass_follows_cluster_size() {
    let sizes = [3usize, 9, 18];
    let centres = [-1.5f32, 0.0, 1.5];
    let mut x = Vec::new();
    for (s, c) in sizes.iter().zip(centres) {
        x.extend((0..*s).map(|i| c + 0.02 * (i as f32 - *s as f32 / 2.0)));
    }
    let mut w = vec![0.0; x.len()];
    weights(&Gaussian::new(50.0).unwrap(), &[0.0], &x, &mut w).unwrap();
    let total = sizes.iter().sum::<usize>() as f32;
    let mut at = 0;
    for s in sizes {
        let mass: f32 = w[at..at + s].iter().sum();
        assert!(
            (mass - s as f32 / total).abs() < 2e-3,
            "cluster of {s}: {mass}"
        );
        at += s;
    }
}

/// (d) Softmax-dot prefers samples of the query's sign; the Gaussian, symmetric about `x_q`'s
/// nearest points, does not favour a sign by itself.
#[test]
fn what_to_try_d_softmax_dot_prefers_the_query_sign() {
    let x = spread(40, -2.0, 2.0);
    for xq in [0.1f32, 0.5, 1.5] {
        let mut w = vec![0.0; x.len()];
        weights(&SoftmaxDot::new(1.0).unwrap(), &[xq], &x, &mut w).unwrap();
        let pos: f32 = x
            .iter()
            .zip(&w)
            .filter(|(xi, _)| **xi > 0.0)
            .map(|(_, w)| w)
            .sum();
        assert!(pos > 0.5, "x_q={xq}: {pos}");
        // The Gaussian centred at 0 weighs both signs equally: no sign preference.
        weights(&Gaussian::new(1.0).unwrap(), &[0.0], &x, &mut w).unwrap();
        let pos: f32 = x
            .iter()
            .zip(&w)
            .filter(|(xi, _)| **xi > 0.0)
            .map(|(_, w)| w)
            .sum();
        assert!((pos - 0.5).abs() < 1e-5, "gaussian: {pos}");
    }
    // Softmax-dot keeps its preference even far from the points, where the Gaussian at x_q
    // would just pick the nearest; at x_q = 0 softmax-dot is uniform.
    let mut w = vec![0.0; x.len()];
    weights(&SoftmaxDot::new(1.0).unwrap(), &[0.0], &x, &mut w).unwrap();
    assert!(w.iter().all(|v| (v - 1.0 / 40.0).abs() < 1e-6));
}

#[test]
fn smoother_matches_reference_and_every_kernel_error_is_reported() {
    let mut s: Smoother<Gaussian, 32, 3, 2> = Smoother::new(Gaussian::new(0.8).unwrap());
    let mut keys = Vec::new();
    let mut values = Vec::new();
    for i in 0..32 {
        let t = i as f32 * 0.37;
        let (x, y) = ([t.sin(), t.cos(), 0.1 * t], [t * t, -t]);
        s.push(x, y).unwrap();
        keys.extend(x);
        values.extend(y);
    }
    let xq = [0.3f32, -0.2, 1.0];
    let got = s.predict(&xq).unwrap();
    let rk = RefKernel::Gaussian { h: 0.8 };
    let (q64, k64, v64) = (widen(&xq), widen(&keys), widen(&values));
    let want = reference::smooth(rk, &q64, &k64, &v64, 2);
    let tol = reference::tolerance(rk, &q64, &k64, &v64);
    for (g, w) in got.iter().zip(&want) {
        assert!((f64::from(*g) - w).abs() <= tol);
    }
    for bad in [0.0, -1.0, f32::NAN, f32::INFINITY, 1e-30, 1e30] {
        assert_eq!(Gaussian::new(bad), Err(Error::InvalidBandwidth), "h={bad}");
        assert_eq!(
            SoftmaxDot::new(bad).map(|_| ()),
            if bad == 1e-30 || bad == 1e30 {
                Ok(())
            } else {
                Err(Error::InvalidTemperature)
            },
            "tau={bad}"
        );
    }
    assert_eq!(SoftmaxDot::new(1e-39), Err(Error::InvalidTemperature));
    assert_eq!(SoftmaxDot::for_dim(0), Err(Error::ZeroDimension));
    assert_eq!(SoftmaxDot::for_dim(64).unwrap().temperature(), 8.0);
    assert_eq!(Gaussian::new(0.5).unwrap().score(&[1.0], &[0.0]), -2.0);
}

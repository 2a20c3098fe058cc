//! Property tests of the compact-support kernels (issue 12) against a plain `f64` reference:
//! for random samples, some inside the support and some outside, the verdict (`Ok` or
//! `NoSupport`) and the smoothed value do not depend on the order of the samples, the chunking
//! of `OnlineSoftmax` states or the position of a `Smoother`'s ring.

mod core_flat;
use core_flat::attention;
use nadaraya::{Epanechnikov, Error, Kernel, OnlineSoftmax, Smoother, Tricube, Uniform};
use proptest::prelude::*;

/// `ln K(u)` in `f64` from `v = u²` for kernel `w` (0 Epanechnikov, 1 tricube, 2 uniform).
fn score64(w: u8, v: f64) -> f64 {
    match w {
        0 if v < 1.0 => (-v).ln_1p(),
        1 if v < 1.0 => 3.0 * (-(v * v.sqrt())).ln_1p(),
        2 if v <= 1.0 => 0.0,
        _ => f64::NEG_INFINITY,
    }
}

fn kernel(w: u8, h: f32) -> Box<dyn Kernel> {
    match w {
        0 => Box::new(Epanechnikov::new(h).unwrap()),
        1 => Box::new(Tricube::new(h).unwrap()),
        _ => Box::new(Uniform::new(h).unwrap()),
    }
}

/// 1-D samples on a grid of 1/8 (exact distances, never within 1e-3 of the support's edge for
/// `h = 1`), responses in [-4, 4], a query, and a permutation.
fn case() -> impl Strategy<Value = (u8, Vec<f32>, Vec<f32>, f32, Vec<usize>, usize)> {
    (0u8..3, 1usize..140).prop_flat_map(|(w, n)| {
        (
            Just(w),
            prop::collection::vec((-40i32..40).prop_map(|k| k as f32 / 8.0 + 1.0 / 16.0), n),
            prop::collection::vec(-4.0f32..4.0, n),
            (-30i32..30).prop_map(|k| k as f32 / 8.0),
            Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
            1usize..70,
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn verdict_and_value_do_not_depend_on_where_the_minus_infinities_sit(
        (w, xs, ys, q, perm, chunk) in case()
    ) {
        let k = kernel(w, 1.0);
        let kw: Vec<f64> = xs
            .iter()
            .map(|x| score64(w, (f64::from(q) - f64::from(*x)).powi(2)).exp())
            .collect();
        let total: f64 = kw.iter().sum();
        let want = if total > 0.0 {
            Ok(kw.iter().zip(&ys).map(|(k, y)| k * f64::from(*y)).sum::<f64>() / total)
        } else {
            Err(Error::NoSupport)
        };
        let close = |got: Result<f32, Error>, what: &str| -> Result<(), TestCaseError> {
            match (got, want) {
                (Ok(g), Ok(w)) => {
                    prop_assert!((f64::from(g) - w).abs() <= 2e-5, "{}: {} vs {}", what, g, w);
                }
                (g, w) => prop_assert_eq!(g.map(|_| ()), w.map(|_| ()), "{}", what),
            }
            Ok(())
        };
        let (xp, yp): (Vec<f32>, Vec<f32>) = perm.iter().map(|&i| (xs[i], ys[i])).unzip();
        for (xv, yv, what) in [(&xs, &ys, "given order"), (&xp, &yp, "permuted")] {
            let mut out = [0.0f32];
            let r = attention(&*k, &[q], xv, yv, 1, 1, &mut out).map(|()| out[0]);
            close(r, what)?;
            let mut merged = OnlineSoftmax::<1>::new();
            for (kc, vc) in xv.chunks(chunk).zip(yv.chunks(chunk)).rev() {
                let mut part = OnlineSoftmax::<1>::new();
                core_flat::update(&mut part, &*k, &[q], kc, vc).unwrap();
                merged = part.merge(&merged);
            }
            close(merged.finish().map(|y| y[0]), "merged chunks")?;
        }
        // A ring of 64 wrapped at `chunk`: the last 64 samples of the permuted order.
        let mut ring: Smoother<Epanechnikov, 64, 1, 1> = Smoother::new(Epanechnikov::new(1.0).unwrap());
        let n = xp.len();
        let live = n.min(64);
        for i in 0..chunk {
            ring.push_evicting([100.0 + i as f32], [0.0]).unwrap();
        }
        for i in 0..n {
            ring.push_evicting([xp[i]], [yp[i]]).unwrap();
        }
        let tail = n - live;
        let mut flat = [0.0f32];
        let e = Epanechnikov::new(1.0).unwrap();
        let extra: Vec<f32> = (0..chunk.min(64 - live)).map(|i| 100.0 + (chunk - chunk.min(64 - live) + i) as f32).collect();
        let mut keys = extra.clone();
        keys.extend(&xp[tail..]);
        let mut vals = vec![0.0f32; extra.len()];
        vals.extend(&yp[tail..]);
        let want_ring = attention(&e, &[q], &keys, &vals, 1, 1, &mut flat).map(|()| flat[0]);
        let got = ring.predict(&[q]).map(|y| y[0]);
        match (got, want_ring) {
            (Ok(g), Ok(r)) => prop_assert!((g - r).abs() <= 1e-5 * (1.0 + r.abs()), "ring {g} vs {r}"),
            (g, r) => prop_assert_eq!(g.map(|_| ()), r.map(|_| ()), "ring verdict"),
        }
    }
}

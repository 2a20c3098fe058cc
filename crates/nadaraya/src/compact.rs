//! Compact-support kernels: Epanechnikov, tricube (LOESS) and uniform.
//!
//! Each is radial in the Euclidean distance, `u = |x_q - x_i| / h`, and scores `ln K(u)` (the
//! normalising constant cancels in the softmax), exactly `-inf` outside the support: there the
//! weight is exactly 0. `u²` is computed as the [`Gaussian`] of the same `h` computes its score
//! (`u² = -2 · score`, the same SIMD lanes), so the three share the Gaussian's bandwidth rule
//! ([`Gaussian::check_bandwidth`]) and its accuracy in `u²`; the support boundary is decided on
//! that rounded `u²` (exact when `h` is a power of two and the distance is exact).

use crate::fit::Bandwidth;
use crate::simd::{self, EPANECHNIKOV, TRICUBE, UNIFORM};
use crate::{Error, Gaussian, Kernel};

macro_rules! compact_kernel {
    (
        $(#[$doc:meta])*
        $name:ident, $profile:ident
    ) => {
        $(#[$doc])*
        ///
        /// # Accuracy
        /// [`score`](Kernel::score) is the plain scalar definition; [`scores`](Kernel::scores)
        /// computes the same `u²` in SIMD lanes and the profile with a vectorised `ln` (Cephes'
        /// `logf`, measured within 2 ulp of `f64` over `[2^-24, 1]`). The two agree to within a
        /// few ulp of the score plus the score's sensitivity to the rounding of `u²`, which
        /// grows as `1 / (1 - u)` near the edge of the support.
        #[derive(Clone, Copy, Debug, PartialEq)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        #[cfg_attr(feature = "serde", serde(try_from = "f32", into = "f32"))]
        pub struct $name {
            // The Gaussian of the same bandwidth: its score is -u²/2.
            g: Gaussian,
        }

        impl $name {
            #[doc = concat!("The `", stringify!($name), "` kernel with bandwidth `h` (the radius of its support);")]
            /// a `const fn`, so a kernel can be a `static`.
            ///
            /// # Errors
            /// [`Error::InvalidBandwidth`] exactly as [`Gaussian::new`]: `h` is accepted from
            /// `3.833_233_8e-20` (`0x1f35_04f4`) to `6.521_909e18` (`0x5eb5_04f3`), inclusive.
            #[inline]
            pub const fn new(h: f32) -> Result<Self, Error> {
                match Gaussian::new(h) {
                    Ok(g) => Ok(Self { g }),
                    Err(e) => Err(e),
                }
            }

            /// The bandwidth `h`.
            #[inline]
            #[must_use]
            pub const fn bandwidth(&self) -> f32 {
                self.g.bandwidth()
            }
        }

        impl Kernel for $name {
            #[inline]
            fn score(&self, q: &[f32], x: &[f32]) -> f32 {
                simd::profile_scalar::<$profile>(self.g.score(q, x))
            }

            #[inline]
            fn scores(&self, q: &[f32], keys: &[f32], out: &mut [f32]) {
                self.g.scores(q, keys, out);
                let n = if q.is_empty() {
                    out.len()
                } else {
                    (keys.len() / q.len()).min(out.len())
                };
                if let Some(s) = out.get_mut(..n) {
                    simd::profile_in_place::<$profile>(s);
                }
            }
        }

        impl Bandwidth for $name {
            const RADIAL: bool = true;
            const SEARCH: crate::fit::Search = crate::fit::Search {
                grid: 64,
                refine: 4,
                max_evaluations: 200,
                ..crate::fit::Search::DEFAULT
            };

            #[inline]
            fn with_bandwidth(h: f32) -> Result<Self, Error> {
                Self::new(h)
            }

            #[inline]
            fn bandwidth(&self) -> f32 {
                $name::bandwidth(self)
            }
        }

        #[doc = concat!("Serialised as its parameter alone; deserialising validates it as [`", stringify!($name), "::new`] does.")]
        impl TryFrom<f32> for $name {
            type Error = Error;
            fn try_from(p: f32) -> Result<Self, Error> {
                Self::new(p)
            }
        }

        /// The kernel's parameter (what it is serialised as).
        impl From<$name> for f32 {
            fn from(k: $name) -> f32 {
                k.bandwidth()
            }
        }
    };
}

compact_kernel! {
    /// The Epanechnikov kernel of bandwidth `h`: `K(u) ∝ 1 - u²` on `u < 1`, 0 from `u = 1` on;
    /// `score = ln(1 - u²)`, `-inf` for `u ≥ 1`. The kernel with the least asymptotic mean
    /// integrated squared error.
    ///
    /// # Examples
    /// ```
    /// use nadaraya::{Epanechnikov, Kernel};
    /// let k = Epanechnikov::new(2.0)?;
    /// assert!((k.score(&[1.0], &[0.0]) - 0.75f32.ln()).abs() < 1e-7); // u = 1/2
    /// assert_eq!(k.score(&[2.0], &[0.0]), f32::NEG_INFINITY); // u = 1: no weight
    /// # Ok::<(), nadaraya::Error>(())
    /// ```
    Epanechnikov, EPANECHNIKOV
}

compact_kernel! {
    /// The tricube kernel of bandwidth `h` (LOESS's): `K(u) ∝ (1 - u³)³` on `u < 1`, 0 from
    /// `u = 1` on; `score = 3·ln(1 - u³)`, `-inf` for `u ≥ 1`.
    ///
    /// # Examples
    /// ```
    /// use nadaraya::{Kernel, Tricube};
    /// let k = Tricube::new(2.0)?;
    /// assert!((k.score(&[1.0], &[0.0]) - 3.0 * 0.875f32.ln()).abs() < 1e-6); // u = 1/2
    /// assert_eq!(k.score(&[0.0], &[-2.5]), f32::NEG_INFINITY);
    /// # Ok::<(), nadaraya::Error>(())
    /// ```
    Tricube, TRICUBE
}

compact_kernel! {
    /// The uniform (box) kernel of bandwidth `h`: `K(u) = 1` on the closed ball `u ≤ 1`, 0
    /// outside; `score = 0` inside, `-inf` outside. Nadaraya–Watson with it is the mean of the
    /// samples within distance `h`.
    ///
    /// # Examples
    /// ```
    /// use nadaraya::{Kernel, Uniform};
    /// let k = Uniform::new(0.5)?;
    /// assert_eq!(k.score(&[0.5], &[0.0]), 0.0); // u = 1: inside (closed support)
    /// assert_eq!(k.score(&[0.6], &[0.0]), f32::NEG_INFINITY);
    /// # Ok::<(), nadaraya::Error>(())
    /// ```
    Uniform, UNIFORM
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::flat::{attention, causal_attention, scalar, weights};
    use crate::testing::{assert_close, lcg, orders, permute};
    use crate::{OnlineSoftmax, Rows, RowsMut, Smoother};
    use std::vec;
    use std::vec::Vec;

    /// The three kernels behind one interface, with their plain `f64` definitions.
    #[derive(Clone, Copy, Debug)]
    enum Which {
        Epan,
        Tri,
        Unif,
    }
    const ALL: [Which; 3] = [Which::Epan, Which::Tri, Which::Unif];

    impl Which {
        fn kernel(self, h: f32) -> std::boxed::Box<dyn Kernel> {
            match self {
                Which::Epan => std::boxed::Box::new(Epanechnikov::new(h).unwrap()),
                Which::Tri => std::boxed::Box::new(Tricube::new(h).unwrap()),
                Which::Unif => std::boxed::Box::new(Uniform::new(h).unwrap()),
            }
        }
        /// `ln K` of `v = u²` in `f64`.
        fn score64(self, v: f64) -> f64 {
            match self {
                Which::Epan if v < 1.0 => (-v).ln_1p(),
                Which::Tri if v < 1.0 => 3.0 * (-(v * v.sqrt())).ln_1p(),
                Which::Unif if v <= 1.0 => 0.0,
                _ => f64::NEG_INFINITY,
            }
        }
        /// `|d score / d v|` at `v` (the sensitivity to the rounding of `u²`).
        fn slope(self, v: f64) -> f64 {
            match self {
                Which::Epan => 1.0 / (1.0 - v),
                Which::Tri => 4.5 * v.sqrt() / (1.0 - v * v.sqrt()),
                Which::Unif => 0.0,
            }
        }
    }

    /// `u² = |q - x|² / h²` in `f64` from the `f32` operands.
    fn u2(q: &[f32], x: &[f32], h: f32) -> f64 {
        let s: f64 = q
            .iter()
            .zip(x)
            .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
            .sum();
        s / (f64::from(h) * f64::from(h))
    }

    /// `score` (scalar) or `scores` (lanes) against the `f64` definition: within 4 ulp plus the
    /// score's sensitivity to a relative error of `(d + 4)·ε` in `u²`; at the edge of the support
    /// (`|u² - 1|` within that error) either side is right.
    fn check_score(w: Which, got: f32, v: f64, d: usize, what: &str) {
        let dv = (d as f64 + 4.0) * f64::from(f32::EPSILON) * v;
        let want = w.score64(v);
        if (v - 1.0).abs() <= dv || (matches!(w, Which::Tri) && (v - 1.0).abs() <= 2.0 * dv) {
            return;
        }
        if want == f64::NEG_INFINITY {
            assert_eq!(got, f32::NEG_INFINITY, "{what}: {w:?} v={v}");
            return;
        }
        let tol = 4.0 * f64::from(f32::EPSILON) * want.abs() + w.slope(v) * dv + 1e-45;
        assert_close(f64::from(got), want, tol, what);
    }

    /// Both score paths against the `f64` definition at every row count 0..=40 and widths from
    /// 1 to 64 (lanes along the row and one lane per row, odd lengths and tails), with
    /// distances spread over `[0, 1.3 h]` and a cluster at `u` within 1e-3 of 1.
    #[test]
    fn scores_match_the_f64_definition_and_each_other() {
        let mut rng = lcg(41);
        for w in ALL {
            for d in [1usize, 2, 3, 7, 8, 9, 15, 17, 31, 64] {
                for rows in 0..=40 {
                    let h = 0.3 + rng();
                    let k = w.kernel(h);
                    let q: Vec<f32> = (0..d).map(|_| 2.0 * rng() - 1.0).collect();
                    let mut keys = Vec::new();
                    for r in 0..rows {
                        // A random direction scaled to a chosen u.
                        let dir: Vec<f32> = (0..d).map(|_| 2.0 * rng() - 1.0).collect();
                        let norm = dir.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-3);
                        let u = if r % 3 == 0 {
                            1.0 + 2e-3 * (rng() - 0.5)
                        } else {
                            1.3 * rng()
                        };
                        keys.extend(q.iter().zip(&dir).map(|(a, b)| a + b / norm * u * h));
                    }
                    let mut lanes = vec![f32::NAN; rows];
                    k.scores(&q, &keys, &mut lanes);
                    for (x, got) in keys.chunks_exact(d).zip(&lanes) {
                        let v = u2(&q, x, h);
                        check_score(w, *got, v, d, "scores (lanes)");
                        check_score(w, k.score(&q, x), v, d, "score (scalar)");
                    }
                }
            }
        }
    }

    /// `u` exactly 1 (h a power of two, an exact distance): no weight for Epanechnikov and
    /// tricube, full weight for the uniform kernel's closed support; one ulp inside and
    /// outside; both paths.
    #[test]
    fn edge_of_the_support_is_exact() {
        for h in [0.5f32, 1.0, 4.0] {
            let inside = f32::from_bits(h.to_bits() - 1);
            let outside = f32::from_bits(h.to_bits() + 1);
            let keys = [h, -h, inside, outside, 0.0, 3.0 * h, -inside, 0.5 * h, h];
            for w in ALL {
                let k = w.kernel(h);
                let mut lanes = [0.0f32; 9];
                k.scores(&[0.0], &keys, &mut lanes);
                for (x, s) in keys.iter().zip(lanes) {
                    assert_eq!(s.to_bits(), k.score(&[0.0], &[*x]).to_bits(), "{w:?} {x}");
                }
                let ninf = f32::NEG_INFINITY;
                let at_one = if matches!(w, Which::Unif) { 0.0 } else { ninf };
                assert_eq!([lanes[0], lanes[1], lanes[8]], [at_one; 3], "{w:?} h={h}");
                assert!(
                    lanes[2].is_finite() && lanes[6].is_finite(),
                    "{w:?} {lanes:?}"
                );
                assert_eq!([lanes[3], lanes[5]], [ninf; 2], "{w:?}");
                assert_eq!(lanes[4], 0.0);
                assert_close(f64::from(lanes[7]), w.score64(0.25), 1e-6, "u = 1/2");
            }
        }
    }

    /// The bandwidth rule is the Gaussian's, bit for bit at both ends, and at both ends the
    /// kernels still score `u = 1/2` right.
    #[test]
    fn bandwidth_limits_are_the_gaussians() {
        let (lo, hi) = (f32::from_bits(0x1f35_04f4), f32::from_bits(0x5eb5_04f3));
        for (h, ok) in [
            (lo, true),
            (hi, true),
            (f32::from_bits(lo.to_bits() - 1), false),
            (f32::from_bits(hi.to_bits() + 1), false),
            (0.0, false),
            (-1.0, false),
            (f32::NAN, false),
            (f32::INFINITY, false),
        ] {
            for r in [
                Epanechnikov::new(h).map(|k| k.bandwidth()),
                Tricube::new(h).map(|k| k.bandwidth()),
                Uniform::new(h).map(|k| k.bandwidth()),
                Epanechnikov::with_bandwidth(h).map(|k| Bandwidth::bandwidth(&k)),
                Tricube::try_from(h).map(f32::from),
                Uniform::with_bandwidth(h).map(|k| Bandwidth::bandwidth(&k)),
            ] {
                assert_eq!(
                    r,
                    if ok {
                        Ok(h)
                    } else {
                        Err(Error::InvalidBandwidth)
                    }
                );
            }
        }
        for h in [lo, hi] {
            for w in ALL {
                let k = w.kernel(h);
                let s = k.score(&[0.5 * h], &[0.0]);
                assert_close(f64::from(s), w.score64(0.25), 1e-6, "u = 1/2 at a limit");
            }
        }
    }

    /// The Nadaraya–Watson average with `K` in plain `f64`: `None` where no weight is positive.
    fn reference(
        w: Which,
        h: f32,
        q: &[f32],
        keys: &[f32],
        values: &[f32],
        dv: usize,
    ) -> Option<Vec<f64>> {
        let d = q.len();
        let k: Vec<f64> = keys
            .chunks_exact(d)
            .map(|x| w.score64(u2(q, x, h)).exp())
            .collect();
        let total: f64 = k.iter().sum();
        (total > 0.0).then(|| {
            (0..dv)
                .map(|j| {
                    k.iter()
                        .zip(values.chunks_exact(dv))
                        .map(|(k, v)| k * f64::from(v[j]))
                        .sum::<f64>()
                        / total
                })
                .collect()
        })
    }

    /// Smoothed values and weights of each kernel against the `f64` reference, with some
    /// samples inside the support and the rest far outside, at key counts around the tile size:
    /// `attention`, its scalar twin, causal rows, `weights` (exactly 0.0 outside), a `Smoother`
    /// and chunked `OnlineSoftmax` states.
    #[test]
    fn smoothing_matches_the_f64_reference() {
        let mut rng = lcg(43);
        for w in ALL {
            for n in [1usize, 2, 7, 63, 64, 65, 130] {
                for (d, dv) in [(1usize, 1usize), (3, 2), (9, 3)] {
                    let h = 0.5;
                    let k = w.kernel(h);
                    let q: Vec<f32> = (0..d).map(|_| rng() - 0.5).collect();
                    let mut keys = Vec::new();
                    for i in 0..n {
                        // Every third sample (and the first) inside, u < 0.9; the rest u > 1.1.
                        let inside = i % 3 == 0;
                        let u = if inside { 0.9 * rng() } else { 1.1 + rng() };
                        let dir: Vec<f32> = (0..d).map(|_| 2.0 * rng() - 1.0).collect();
                        let norm = dir.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-3);
                        keys.extend(q.iter().zip(&dir).map(|(a, b)| a + b / norm * u * h));
                    }
                    let values: Vec<f32> = (0..n * dv).map(|_| 4.0 * rng() - 2.0).collect();
                    let want = reference(w, h, &q, &keys, &values, dv).unwrap();
                    let check = |got: &[f32], what: &str| {
                        for (g, v) in got.iter().zip(&want) {
                            assert_close(f64::from(*g), *v, 2e-5, what);
                        }
                    };
                    let mut out = vec![0.0; dv];
                    attention(&*k, &q, &keys, &values, d, dv, &mut out).unwrap();
                    check(&out, "attention");
                    scalar::attention(&*k, &q, &keys, &values, d, dv, &mut out).unwrap();
                    check(&out, "scalar::attention");
                    let qs: Vec<f32> = q.iter().copied().cycle().take(n * d).collect();
                    let mut causal = vec![0.0; n * dv];
                    causal_attention(&*k, &qs, &keys, &values, d, dv, &mut causal).unwrap();
                    check(&causal[(n - 1) * dv..], "causal");
                    let mut wt = vec![f32::NAN; n];
                    weights(&*k, &q, &keys, &mut wt).unwrap();
                    let mut ws = vec![f32::NAN; n];
                    scalar::weights(&*k, &q, &keys, &mut ws).unwrap();
                    let kw: Vec<f64> = keys
                        .chunks_exact(d)
                        .map(|x| w.score64(u2(&q, x, h)).exp())
                        .collect();
                    let total: f64 = kw.iter().sum();
                    for ((a, b), r) in wt.iter().zip(&ws).zip(&kw) {
                        if *r == 0.0 {
                            assert_eq!((a.to_bits(), b.to_bits()), (0, 0), "{w:?}: weight 0.0");
                        } else {
                            assert_close(f64::from(*a), r / total, 2e-6, "weights");
                            assert_close(f64::from(*b), r / total, 2e-6, "scalar weights");
                        }
                    }
                    let mut merged = OnlineSoftmax::<1>::new();
                    if dv == 1 {
                        for (kc, vc) in keys.chunks(5 * d).zip(values.chunks(5)).rev() {
                            let mut part = OnlineSoftmax::<1>::new();
                            crate::testing::flat::update(&mut part, &*k, &q, kc, vc).unwrap();
                            merged = part.merge(&merged);
                        }
                        check(&merged.finish().unwrap(), "OnlineSoftmax");
                    }
                }
            }
        }
    }

    /// A query with no sample in the support is `NoSupport` on every path, never a plain
    /// average; an infinite key is `NonFinite`, not "outside the support".
    #[test]
    fn no_sample_in_the_support_is_no_support() {
        let keys = [2.0f32, -3.0, 10.0, 1.0];
        let values = [1.0f32, 2.0, 3.0, 4.0];
        for w in ALL {
            let k = w.kernel(0.5);
            let mut out = [0.0f32; 2];
            let e = Err(Error::NoSupport);
            assert_eq!(attention(&*k, &[0.0], &keys, &values, 1, 1, &mut out), e);
            assert_eq!(
                scalar::attention(&*k, &[0.0], &keys, &values, 1, 1, &mut out),
                e
            );
            assert_eq!(weights(&*k, &[0.0], &keys, &mut [0.0; 4]), e);
            assert_eq!(scalar::weights(&*k, &[0.0], &keys, &mut [0.0; 4]), e);
            // The causal row of the first key sees only it; the second row sees 1.0 at u = 2.
            assert_eq!(
                causal_attention(&*k, &[0.0, 0.0], &keys, &values, 1, 1, &mut out),
                e
            );
            // One query of a batch in the support, the second not: the second's error.
            let (q2, keys2, values2) = ([2.0f32, 0.0], [2.0f32, 3.0, 5.0, 6.0], [1.0f32; 4]);
            let r = crate::attention_batch(
                &*k,
                2,
                Rows::new(&q2, 1).unwrap(),
                Rows::new(&keys2, 1).unwrap(),
                Rows::new(&values2, 1).unwrap(),
                crate::Mask::None,
                RowsMut::new(&mut out, 1).unwrap(),
            );
            assert_eq!(r, e);
            let mut s = OnlineSoftmax::<1>::new();
            crate::testing::flat::update(&mut s, &*k, &[0.0], &keys, &values).unwrap();
            assert!(!s.is_empty());
            assert_eq!(
                (s.finish(), s.log_sum_exp()),
                (e.map(|()| [0.0]), f32::NEG_INFINITY)
            );
            // A NaN value at weight 0 is still an input error; so is an infinite key.
            let nan_v = [1.0, f32::NAN, 3.0, 4.0];
            assert_eq!(
                attention(&*k, &[0.0], &keys, &nan_v, 1, 1, &mut out),
                Err(Error::NonFinite)
            );
            let mut inf_k = [0.1f32, 2.0, 3.0, 4.0];
            for bad in [f32::INFINITY, f32::NEG_INFINITY] {
                inf_k[2] = bad;
                assert_eq!(
                    attention(&*k, &[0.0], &inf_k, &values, 1, 1, &mut out),
                    Err(Error::NonFinite),
                    "{w:?} key {bad}"
                );
                assert_eq!(
                    weights(&*k, &[0.0], &inf_k, &mut [0.0; 4]),
                    Err(Error::NonFinite)
                );
                assert_eq!(
                    crate::testing::flat::update(&mut s, &*k, &[0.0], &inf_k, &values),
                    Err(Error::NonFinite)
                );
            }
        }
        let k = Epanechnikov::new(0.5).unwrap();
        let mut sm: Smoother<Epanechnikov, 8, 1, 1> = Smoother::new(k);
        for (x, y) in keys.iter().zip(&values) {
            sm.push([*x], [*y]).unwrap();
        }
        assert_eq!(sm.predict(&[0.0]), Err(Error::NoSupport));
        assert_eq!(sm.weights(&[0.0], &mut [0.0; 8]), Err(Error::NoSupport));
        let mut out = [[0.0f32]; 2];
        assert_eq!(
            sm.predict_many(
                Rows::from_arrays(&[[1.2], [0.0]]),
                RowsMut::from_arrays(&mut out)
            ),
            Err(Error::NoSupport)
        );
        assert_eq!(
            out[0][0], 4.0,
            "the first query has a sample in its support"
        );
        assert_eq!(sm.predict(&[1.2]), Ok([4.0]));
    }

    /// `push_score(-inf)` and merges of states without weight: the verdict is NoSupport only
    /// when no sample has weight, and otherwise the average of the weighted ones, in every
    /// order of pushes and every merge order.
    #[test]
    fn online_softmax_takes_minus_infinity_as_no_weight() {
        let ninf = f32::NEG_INFINITY;
        let mut s = OnlineSoftmax::<1>::new();
        assert_eq!(s.finish(), Err(Error::Empty));
        s.push_score(ninf, &[5.0]).unwrap();
        assert!(!s.is_empty());
        assert_eq!(s.finish(), Err(Error::NoSupport));
        assert_eq!(s.max_score(), ninf);
        assert_eq!(s.push_score(ninf, &[f32::NAN]), Err(Error::NonFinite));
        assert_eq!(
            s.push_score(f32::INFINITY, &[1.0]),
            Err(Error::ScoreOverflow)
        );
        let samples = [
            (ninf, 100.0),
            (0.0, 1.0),
            (ninf, -7.0),
            (0.0, 3.0),
            (ninf, 9.0),
        ];
        let n = samples.len();
        for order in [
            [0, 1, 2, 3, 4],
            [4, 3, 2, 1, 0],
            [2, 0, 4, 1, 3],
            [1, 3, 0, 2, 4],
        ] {
            let mut pushed = OnlineSoftmax::<1>::new();
            let parts: Vec<OnlineSoftmax<1>> = order
                .iter()
                .map(|&i| {
                    let mut p = OnlineSoftmax::<1>::new();
                    p.push_score(samples[i].0, &[samples[i].1]).unwrap();
                    pushed.push_score(samples[i].0, &[samples[i].1]).unwrap();
                    p
                })
                .collect();
            assert_eq!(pushed.finish(), Ok([2.0]), "{order:?}");
            let left = parts.iter().fold(OnlineSoftmax::new(), |a, b| a.merge(b));
            let right = parts
                .iter()
                .rev()
                .fold(OnlineSoftmax::new(), |a, b| b.merge(&a));
            assert_eq!(left.finish(), Ok([2.0]));
            assert_eq!(right.finish(), Ok([2.0]));
            assert!((left.log_sum_exp() - 2f32.ln()).abs() < 1e-6);
            for i in 0..n {
                for j in 0..n {
                    assert_eq!(parts[i].merge(&parts[j]), parts[j].merge(&parts[i]));
                }
            }
        }
    }

    /// The verdict and value do not depend on where the `-inf` scores sit: every order of
    /// `testing::orders` (across the tile boundary), every ring position of a `Smoother`, and
    /// the merge of chunked states, against the `f64` reference; with exactly one sample in the
    /// support, and with none.
    #[test]
    fn where_the_minus_infinities_sit_changes_nothing() {
        const N: usize = 70;
        for w in ALL {
            let k = w.kernel(1.0);
            for inside in [Some(0usize), Some(37), Some(69), None] {
                let keys: Vec<f32> = (0..N)
                    .map(|i| {
                        if Some(i) == inside {
                            0.25
                        } else {
                            2.0 + i as f32
                        }
                    })
                    .collect();
                let values: Vec<f32> = (0..N).map(|i| i as f32 - 30.0).collect();
                let want = inside.map(|i| values[i]).ok_or(Error::NoSupport);
                for order in orders(N) {
                    let (kp, vp) = (permute(&keys, 1, &order), permute(&values, 1, &order));
                    let mut out = [0.0];
                    let r = attention(&*k, &[0.0], &kp, &vp, 1, 1, &mut out).map(|()| out[0]);
                    assert_eq!(r, want, "{w:?} order {:?}", &order[..4]);
                    let r = scalar::attention(&*k, &[0.0], &kp, &vp, 1, 1, &mut out);
                    assert_eq!(r.map(|()| out[0]), want);
                    let mut merged = OnlineSoftmax::<1>::new();
                    for (kc, vc) in kp.chunks(9).zip(vp.chunks(9)) {
                        let mut part = OnlineSoftmax::<1>::new();
                        crate::testing::flat::update(&mut part, &*k, &[0.0], kc, vc).unwrap();
                        merged = part.merge(&merged);
                    }
                    assert_eq!(merged.finish().map(|y| y[0]), want);
                }
                let e = Epanechnikov::new(1.0).unwrap();
                if !matches!(w, Which::Epan) {
                    continue;
                }
                for start in 0..N {
                    let mut ring: Smoother<Epanechnikov, N, 1, 1> = Smoother::new(e);
                    for i in 0..N + start {
                        ring.push_evicting([keys[i % N]], [values[i % N]]).unwrap();
                    }
                    let got = ring.predict(&[0.0]).map(|y| y[0]);
                    assert_eq!(got, want, "ring wrapped at {start}");
                    let mut wts = [f32::NAN; N];
                    let r = ring.weights(&[0.0], &mut wts);
                    assert_eq!(r.is_ok(), want.is_ok());
                    if r.is_ok() {
                        assert_eq!(wts.iter().filter(|x| **x == 1.0).count(), 1);
                        assert_eq!(wts.iter().filter(|x| x.to_bits() == 0).count(), N - 1);
                    }
                }
            }
        }
    }

    /// The selector over a compact family: bandwidths below a sample's nearest-neighbour
    /// distance have no support (`NoSupport`), are skipped as infeasible, and the chosen `h`
    /// is feasible, its CV what `loo_cv` gives there and no worse than a plain grid's best.
    #[test]
    fn select_bandwidth_skips_bandwidths_without_support() {
        let x: Vec<[f32; 1]> = (0..40).map(|i| [i as f32 * 0.1]).collect();
        let y: Vec<[f32; 1]> = x.iter().map(|x| [libm::sinf(3.0 * x[0])]).collect();
        let (xr, yr) = (Rows::from_arrays(&x), Rows::from_arrays(&y));
        let tiny = Epanechnikov::new(0.05).unwrap();
        assert_eq!(crate::fit::loo_cv(&tiny, xr, yr), Err(Error::NoSupport));
        let search = crate::fit::Search::default();
        let (k, sel) = crate::fit::select_bandwidth::<Epanechnikov>(xr, yr, &search).unwrap();
        assert_eq!(k.bandwidth(), sel.bandwidth);
        assert!(sel.bandwidth > 0.1, "{sel:?}");
        assert_eq!(crate::fit::loo_cv(&k, xr, yr), Ok(sel.cv));
        let best = (1..400)
            .filter_map(|i| {
                let h = 0.1 * 1.01f32.powi(i);
                crate::fit::loo_cv(&Epanechnikov::new(h).unwrap(), xr, yr).ok()
            })
            .fold(f64::INFINITY, f64::min);
        assert!(sel.cv <= best * (1.0 + 1e-3), "{sel:?} vs grid {best}");
    }
}

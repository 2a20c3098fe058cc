//! Small optimisers for training on a device or a host: [`Sgd`] with momentum and [`Adam`],
//! stepping flat `f32` parameter slices with their state in storage the caller owns (a
//! `static`, a const-generic array, a `Vec`): no heap, nothing sized at run time inside.
//!
//! A step takes the parameters as a list of slices (the four of
//! [`MhaWeights::as_slices_mut`](crate::MhaWeights::as_slices_mut), or one), their gradients in
//! the same shapes, and the optimiser's state as one flat slice over all of them. Every input
//! is checked and every update computed before any parameter or state is written: a NaN or an
//! infinite gradient is [`Error::NonFinite`] and leaves everything as it was.
//!
//! # Examples
//! ```
//! use nadaraya::optim::Adam;
//! // Minimise (p - 3)²: the gradient is 2(p - 3).
//! let mut adam = Adam::new(0.1)?;
//! let (mut p, mut state) = ([0.0f32], [0.0f32; 2]);
//! for _ in 0..200 {
//!     let g = [2.0 * (p[0] - 3.0)];
//!     adam.step(&mut [&mut p], &[&g], &mut state)?;
//! }
//! assert!((p[0] - 3.0).abs() < 1e-2);
//! # Ok::<(), nadaraya::Error>(())
//! ```

use crate::{Dim, Error, simd};

/// Stochastic gradient descent with (heavy-ball) momentum `μ`: `v ← μ v + g`, `p ← p − η v`,
/// in `f32`, with `v` the caller's state (one float per parameter, zero to start).
///
/// # Examples
/// ```
/// use nadaraya::optim::Sgd;
/// let sgd = Sgd::new(0.5, 0.0)?;
/// let (mut p, mut v) = ([1.0f32, 2.0], [0.0f32; 2]);
/// sgd.step(&mut [&mut p], &[&[2.0, -2.0]], &mut v)?;
/// assert_eq!(p, [0.0, 3.0]);
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Sgd {
    lr: f32,
    momentum: f32,
}

impl Sgd {
    /// Learning rate `η` and momentum `μ` (0 for plain gradient descent).
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] unless `η` is finite and `> 0` and `0 ≤ μ < 1`.
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn new(lr: f32, momentum: f32) -> Result<Self, Error> {
        if !(positive(lr) && (0.0..1.0).contains(&momentum)) {
            return Err(Error::InvalidHyperparameter);
        }
        Ok(Self { lr, momentum })
    }

    /// The learning rate `η`.
    #[must_use]
    pub fn lr(&self) -> f32 {
        self.lr
    }

    /// One step over `params` with `grads` (the same slice lengths) and `velocity`, one float
    /// per parameter, in the order of the slices.
    ///
    /// # Errors
    /// Nothing is written on an error:
    /// - [`Error::Shape`] with [`Dim::Parameters`] if `grads` has not one slice per parameter
    ///   slice, or a slice of another length than its parameters;
    /// - [`Error::Shape`] with [`Dim::OptimiserState`] if `velocity` has not one entry per
    ///   parameter;
    /// - [`Error::NonFinite`] if a gradient, a parameter or the velocity is NaN or infinite;
    /// - [`Error::Overflow`] if an updated parameter or velocity is not finite in `f32`.
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn step(
        &self,
        params: &mut [&mut [f32]],
        grads: &[&[f32]],
        velocity: &mut [f32],
    ) -> Result<(), Error> {
        let (lr, mu) = (self.lr, self.momentum);
        let update = |p: f32, g: f32, v: [f32; 1]| {
            let v = mu * v[0] + g;
            (p - lr * v, [v])
        };
        apply::<1, _>(params, grads, velocity, update)
    }
}

/// Adam (Kingma & Ba 2015): `m ← β₁ m + (1 − β₁) g`, `v ← β₂ v + (1 − β₂) g²`,
/// `p ← p − η m̂ / (√v̂ + ε)` with the bias corrections `m̂ = m / (1 − β₁ᵗ)`, `v̂ = v / (1 − β₂ᵗ)`
/// at step `t`, in `f32` (the corrections in `f64`). The state is the caller's: two floats per
/// parameter (`m` then `v`, interleaved), zero to start; the step count is here.
///
/// # Examples
/// The first step moves every parameter by about `η` against the sign of its gradient:
/// ```
/// use nadaraya::optim::Adam;
/// let mut adam = Adam::new(0.01)?;
/// let (mut p, mut state) = ([1.0f32, 1.0], [0.0f32; 4]);
/// adam.step(&mut [&mut p], &[&[5.0, -0.001]], &mut state)?;
/// assert!((p[0] - 0.99).abs() < 1e-6 && (p[1] - 1.01).abs() < 1e-5);
/// assert_eq!(adam.steps(), 1);
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Adam {
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    t: u32,
}

impl Adam {
    /// The number of state floats per parameter: `m` and `v`.
    pub const STATE_PER_PARAM: usize = 2;

    /// Learning rate `η` with the usual `β₁ = 0.9`, `β₂ = 0.999`, `ε = 1e-8`.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] unless `η` is finite and `> 0`.
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn new(lr: f32) -> Result<Self, Error> {
        Self::with_betas(lr, 0.9, 0.999, 1e-8)
    }

    /// Learning rate `η`, decays `β₁`, `β₂` and `ε`.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] unless `η` and `ε` are finite and `> 0` and
    /// `0 ≤ β₁, β₂ < 1`.
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn with_betas(lr: f32, beta1: f32, beta2: f32, eps: f32) -> Result<Self, Error> {
        let betas = (0.0..1.0).contains(&beta1) && (0.0..1.0).contains(&beta2);
        if !(positive(lr) && positive(eps) && betas) {
            return Err(Error::InvalidHyperparameter);
        }
        Ok(Self {
            lr,
            beta1,
            beta2,
            eps,
            t: 0,
        })
    }

    /// The steps taken (`t`).
    #[must_use]
    pub fn steps(&self) -> u32 {
        self.t
    }

    /// One step over `params` with `grads` (the same slice lengths) and `state`, two floats per
    /// parameter ([`STATE_PER_PARAM`](Self::STATE_PER_PARAM)), in the order of the slices.
    ///
    /// # Errors
    /// Nothing is written, and the step count is unchanged, on an error:
    /// - [`Error::Shape`] with [`Dim::Parameters`] if `grads` has not one slice per parameter
    ///   slice, or a slice of another length than its parameters;
    /// - [`Error::Shape`] with [`Dim::OptimiserState`] if `state` has not two entries per
    ///   parameter;
    /// - [`Error::NonFinite`] if a gradient, a parameter or the state is NaN or infinite;
    /// - [`Error::Overflow`] if an updated parameter or moment is not finite in `f32`, or after
    ///   `u32::MAX` steps.
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn step(
        &mut self,
        params: &mut [&mut [f32]],
        grads: &[&[f32]],
        state: &mut [f32],
    ) -> Result<(), Error> {
        let Some(t) = self.t.checked_add(1) else {
            return Err(Error::Overflow);
        };
        let (b1, b2, eps) = (self.beta1, self.beta2, self.eps);
        let power = |b: f32| 1.0 - powi(f64::from(b), t);
        // η / (1 − β₁ᵗ) and 1 / √(1 − β₂ᵗ): m̂/(√v̂ + ε) = m/(1−β₁ᵗ) / (√v/√(1−β₂ᵗ) + ε).
        let lr_t = (f64::from(self.lr) / power(b1)) as f32;
        let inv_sqrt_c2 = (1.0 / libm::sqrt(power(b2))) as f32;
        let update = |p: f32, g: f32, [m, v]: [f32; 2]| {
            let m = b1 * m + (1.0 - b1) * g;
            let v = b2 * v + (1.0 - b2) * g * g;
            let denom = libm::sqrtf(v) * inv_sqrt_c2 + eps;
            (p - lr_t * (m / denom), [m, v])
        };
        apply::<2, _>(params, grads, state, update)?;
        self.t = t;
        Ok(())
    }
}

/// `x` finite and `> 0`.
#[inline]
fn positive(x: f32) -> bool {
    x.is_finite() && x > 0.0
}

/// `b^t` by squaring.
fn powi(mut b: f64, mut t: u32) -> f64 {
    let mut r = 1.0;
    while t > 0 {
        if t & 1 == 1 {
            r *= b;
        }
        b *= b;
        t >>= 1;
    }
    r
}

/// `S` state floats per parameter, as one array.
type State<const S: usize> = [f32; S];

/// Checks the shapes, then every input and update (without writing), then writes: `update`
/// maps `(p, g, state)` to the new `(p, state)`.
fn apply<const S: usize, F: Fn(f32, f32, State<S>) -> (f32, State<S>)>(
    params: &mut [&mut [f32]],
    grads: &[&[f32]],
    state: &mut [f32],
    update: F,
) -> Result<(), Error> {
    if grads.len() != params.len() {
        return Err(shape(Dim::Parameters, params.len(), grads.len()));
    }
    let mut total = 0usize;
    for (p, g) in params.iter().zip(grads) {
        if g.len() != p.len() {
            return Err(shape(Dim::Parameters, p.len(), g.len()));
        }
        total = total.saturating_add(p.len());
    }
    let want = total.saturating_mul(S);
    if state.len() != want {
        return Err(shape(Dim::OptimiserState, want, state.len()));
    }
    let finite = grads.iter().all(|g| simd::all_finite(g))
        && params.iter().all(|p| simd::all_finite(p))
        && simd::all_finite(state);
    if !finite {
        return Err(Error::NonFinite);
    }
    let (chunks, _) = state.as_chunks_mut::<S>();
    let pairs = || {
        params
            .iter()
            .zip(grads)
            .flat_map(|(p, g)| p.iter().zip(g.iter()))
    };
    let ok = pairs().zip(chunks.iter()).all(|((p, g), s)| {
        let (p, s) = update(*p, *g, *s);
        p.is_finite() && simd::all_finite(&s)
    });
    if !ok {
        return Err(Error::Overflow);
    }
    let flat = params
        .iter_mut()
        .zip(grads)
        .flat_map(|(p, g)| p.iter_mut().zip(g.iter()));
    for ((p, g), s) in flat.zip(chunks.iter_mut()) {
        (*p, *s) = update(*p, *g, *s);
    }
    Ok(())
}

/// The shape error `{ what, expected, found }`.
const fn shape(what: Dim, expected: usize, found: usize) -> Error {
    Error::Shape {
        what,
        expected,
        found,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, lcg};
    use std::vec::Vec;

    /// Gradients for `steps` steps of 7 parameters (split 3 + 4), in `[-2, 2)`.
    fn grads(steps: usize) -> Vec<[f32; 7]> {
        let mut rng = lcg(5);
        (0..steps)
            .map(|_| core::array::from_fn(|_| 4.0 * rng() - 2.0))
            .collect()
    }

    const P0: [f32; 7] = [0.5, -1.0, 2.0, 0.0, 0.25, -3.0, 1.5];

    /// Momentum SGD against the same steps in plain `f64`: parameters and velocity within
    /// `1e-6` of the reference, over 6 steps.
    #[test]
    fn sgd_matches_an_f64_reference() {
        let (lr, mu) = (0.05f32, 0.9f32);
        let sgd = Sgd::new(lr, mu).unwrap();
        let (mut a, mut b) = ([0.0f32; 3], [0.0f32; 4]);
        a.copy_from_slice(&P0[..3]);
        b.copy_from_slice(&P0[3..]);
        let mut vel = [0.0f32; 7];
        let mut p64: Vec<f64> = P0.iter().map(|&x| f64::from(x)).collect();
        let mut v64 = [0.0f64; 7];
        for g in grads(6) {
            sgd.step(&mut [&mut a, &mut b], &[&g[..3], &g[3..]], &mut vel)
                .unwrap();
            for i in 0..7 {
                v64[i] = f64::from(mu) * v64[i] + f64::from(g[i]);
                p64[i] -= f64::from(lr) * v64[i];
            }
            let got = a.iter().chain(&b);
            for (i, x) in got.enumerate() {
                assert_close(f64::from(*x), p64[i], 1e-6, "sgd parameter");
                assert_close(f64::from(vel[i]), v64[i], 1e-6, "sgd velocity");
            }
        }
    }

    /// Adam against the same steps in plain `f64`, from the paper's formulas (bias-corrected
    /// moments, `p -= η m̂ / (√v̂ + ε)`): parameters within `1e-6`, moments within `1e-6` of
    /// the reference, over 8 steps. (Without the bias correction of `v`, the first step moves
    /// each parameter by `η √(1/(1 − β₂)) ≈ 31.6 η` and the check fails.)
    #[test]
    fn adam_matches_an_f64_reference() {
        let (lr, b1, b2, eps) = (0.1f32, 0.8f32, 0.99f32, 1e-6f32);
        let mut adam = Adam::with_betas(lr, b1, b2, eps).unwrap();
        let mut p = P0;
        let mut state = [0.0f32; 14];
        let mut p64: Vec<f64> = P0.iter().map(|&x| f64::from(x)).collect();
        let (mut m64, mut v64) = ([0.0f64; 7], [0.0f64; 7]);
        let (b1d, b2d) = (f64::from(b1), f64::from(b2));
        for (t, g) in grads(8).iter().enumerate() {
            adam.step(&mut [&mut p], &[g], &mut state).unwrap();
            let t = t as i32 + 1;
            for i in 0..7 {
                let g = f64::from(g[i]);
                m64[i] = b1d * m64[i] + (1.0 - b1d) * g;
                v64[i] = b2d * v64[i] + (1.0 - b2d) * g * g;
                let mh = m64[i] / (1.0 - b1d.powi(t));
                let vh = v64[i] / (1.0 - b2d.powi(t));
                p64[i] -= f64::from(lr) * mh / (vh.sqrt() + f64::from(eps));
                assert_close(f64::from(p[i]), p64[i], 1e-6, "adam parameter");
                assert_close(f64::from(state[2 * i]), m64[i], 1e-6, "adam m");
                assert_close(f64::from(state[2 * i + 1]), v64[i], 1e-6, "adam v");
            }
        }
        assert_eq!(adam.steps(), 8);
    }

    /// A NaN or infinite gradient (in any slice), or a non-finite state, is `NonFinite`; an
    /// update beyond `f32` is `Overflow`; shapes are checked first. Nothing is written on any
    /// error, and Adam's step count stays.
    #[test]
    fn bad_steps_write_nothing() {
        let sgd = Sgd::new(1.0, 0.5).unwrap();
        let mut adam = Adam::new(0.1).unwrap();
        let (mut a, mut b) = ([1.0f32, 2.0], [3.0f32]);
        let (mut vel, mut st) = ([0.25f32; 3], [0.5f32; 6]);
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for (ga, gb) in [([bad, 0.0], [1.0]), ([0.0, 1.0], [bad])] {
                let g: [&[f32]; 2] = [&ga, &gb];
                let r = sgd.step(&mut [&mut a, &mut b], &g, &mut vel);
                assert_eq!(r, Err(Error::NonFinite));
                let r = adam.step(&mut [&mut a, &mut b], &g, &mut st);
                assert_eq!(r, Err(Error::NonFinite));
            }
        }
        let g: [&[f32]; 2] = [&[1.0, 1.0], &[1.0]];
        let mut bad_state = [0.5, 0.5, f32::NAN, 0.5, 0.5, 0.5];
        let r = adam.step(&mut [&mut a, &mut b], &g, &mut bad_state);
        assert_eq!(r, Err(Error::NonFinite));
        let r = sgd.step(&mut [&mut a, &mut b], &g[..1], &mut vel);
        assert_eq!(r, Err(shape(Dim::Parameters, 2, 1)));
        let r = sgd.step(&mut [&mut a, &mut b], &[&[1.0, 1.0], &[]], &mut vel);
        assert_eq!(r, Err(shape(Dim::Parameters, 1, 0)));
        let r = adam.step(&mut [&mut a, &mut b], &g, &mut st[..5]);
        assert_eq!(r, Err(shape(Dim::OptimiserState, 6, 5)));
        assert_eq!((a, b, vel, st), ([1.0, 2.0], [3.0], [0.25; 3], [0.5; 6]));
        assert_eq!(adam.steps(), 0);
        // p − η v beyond f32::MAX.
        let mut big = [f32::MAX];
        let r = sgd.step(&mut [&mut big], &[&[-f32::MAX]], &mut [0.0]);
        assert_eq!((r, big), (Err(Error::Overflow), [f32::MAX]));
        // g² beyond f32::MAX (Adam's step itself is bounded by about η).
        let mut big = [f32::MAX, 1.0];
        let r = adam.step(&mut [&mut big], &[&[-1.0, 1e30]], &mut [0.0; 4]);
        assert_eq!((r, big), (Err(Error::Overflow), [f32::MAX, 1.0]));
        assert_eq!(adam.steps(), 0);
    }

    #[test]
    fn hyperparameters_are_checked() {
        for lr in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            assert_eq!(Sgd::new(lr, 0.0), Err(Error::InvalidHyperparameter));
            assert_eq!(Adam::new(lr), Err(Error::InvalidHyperparameter));
        }
        for b in [1.0, -0.1, f32::NAN] {
            assert_eq!(Sgd::new(0.1, b), Err(Error::InvalidHyperparameter));
            assert_eq!(
                Adam::with_betas(0.1, b, 0.9, 1e-8),
                Err(Error::InvalidHyperparameter)
            );
            assert_eq!(
                Adam::with_betas(0.1, 0.9, b, 1e-8),
                Err(Error::InvalidHyperparameter)
            );
        }
        assert_eq!(
            Adam::with_betas(0.1, 0.9, 0.9, 0.0),
            Err(Error::InvalidHyperparameter)
        );
        assert!(
            Sgd::new(f32::MIN_POSITIVE, 0.0).is_ok()
                && Adam::with_betas(1.0, 0.0, 0.0, 1.0).is_ok()
        );
    }
}

//! Shared pieces of the fuzz targets: how bytes become floats and kernels, the `f64` reference
//! they compare against (`nadaraya-tests`' plain Nadaraya–Watson), and worst-case error bounds.
//!
//! The bounds are rigorous rather than typical: a fuzzer picks adversarial inputs, so a bound
//! that holds "for random data" would report rounding as a bug.
//!
//! A score `s = c · Σ t_j` (Gaussian: `t_j = (q_j - k_j)²`, `c = -1/(2h²)`; softmax-dot:
//! `t_j = q_j k_j`, `c = 1/τ`) computed in `f32` in any summation order, fused or not, is off by
//! at most `(d + 4)·ε·|c|·Σ|t_j|` plus what underflow to subnormals costs (`2⁻¹⁴⁹` per operation,
//! times `|c|`). A weight `exp(s_i - m) / Σ exp(s_k - m)` then moves by a relative
//! `expm1(4·err)`, and the average `Σ α_i v_i` by at most twice that times `max|v|`. Summing `n`
//! weighted rows adds `(n + 16)·2ε·max|v|`.

pub mod core_flat;
pub mod rf;

use arbitrary::{Arbitrary, Result, Unstructured};
use nadaraya::{Error, Gaussian, SoftmaxDot};
pub use nadaraya_tests::reference::{self, RefKernel, widen};

/// `f32::EPSILON` in `f64`.
pub const EPS: f64 = f32::EPSILON as f64;
/// The smallest positive subnormal `f32`, in `f64`.
pub const TINY: f64 = 1.401_298_464_324_817e-45;
/// Above this (in `f64`) a sum of score terms may overflow `f32` on the way, so an
/// `Err(ScoreOverflow)` is legitimate.
pub const OVERFLOW_RISK: f64 = 1e37;

/// Values that find edge cases: zeros, extremes, subnormals, non-finite values.
const SPECIAL: [f32; 22] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    f32::MAX,
    f32::MIN,
    f32::MIN_POSITIVE,
    -f32::MIN_POSITIVE,
    1e-45,
    -1e-40,
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    1e38,
    -3e38,
    1e-20,
    1e20,
    -1e19,
    65504.0,
    87.33655,
    -87.33655,
];

/// `len` inputs: the given `head`, then `offset + scale · u`, `u` uniform in `[-1, 1]` from a
/// xorshift seeded by `seed` (the way every target fills the inputs its bytes do not give).
pub fn fill(head: &[F], len: usize, seed: u32, scale: f32, offset: f32) -> Vec<f32> {
    let mut state = seed | 1;
    (0..len)
        .map(|i| match head.get(i) {
            Some(h) => h.0,
            None => {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let u = (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0;
                offset + scale * u
            }
        })
        .collect()
}

/// One `f32` decoded from bytes: mostly modest values, sometimes special, huge, tiny or raw bits
/// (any NaN payload).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct F(pub f32);

impl<'a> Arbitrary<'a> for F {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let tag: u8 = u.arbitrary()?;
        let v = match tag % 16 {
            // Multiples of 1/256 in [-128, 128): ties, equal keys and exact sums are common.
            0..=7 => f32::from(u.arbitrary::<i16>()?) / 256.0,
            // Small integers.
            8..=9 => f32::from(u.arbitrary::<i8>()?),
            10 => SPECIAL[usize::from(u.arbitrary::<u8>()?) % SPECIAL.len()],
            11 => f32::from_bits(u.arbitrary::<u32>()?),
            // A wide but finite spread of magnitudes: m · 2^e.
            12..=13 => {
                let m = f32::from(u.arbitrary::<i8>()?);
                let e = i32::from(u.arbitrary::<i8>()?);
                m * libm_powi(e)
            }
            // Near-ties: 1 ± a few ulp, scaled.
            _ => {
                let k = i32::from(u.arbitrary::<i8>()?);
                let s = f32::from(u.arbitrary::<i8>()?);
                f32::from_bits(1.0f32.to_bits().wrapping_add_signed(k)) * s
            }
        };
        Ok(Self(v))
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (1, Some(5))
    }
}

/// `2^e` for `e` in `[-128, 127]`, finite or zero (subnormal below `2^-126`).
fn libm_powi(e: i32) -> f32 {
    let e = e.clamp(-149, 127);
    if e >= -126 {
        f32::from_bits(((e + 127) as u32) << 23)
    } else {
        f32::from_bits(1u32 << (e + 149))
    }
}

/// A kernel parameter (bandwidth or temperature): usually a valid `2^(k/8)`, sometimes any `F`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Param(pub f32);

impl<'a> Arbitrary<'a> for Param {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        if u.ratio(3u8, 4u8)? {
            let k = f64::from(u.arbitrary::<i8>()?);
            Ok(Self(2f64.powf(k / 8.0) as f32))
        } else {
            Ok(Self(u.arbitrary::<F>()?.0))
        }
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (1, Some(6))
    }
}

/// Which kernel, with its parameter.
#[derive(Clone, Copy, Debug, PartialEq, Arbitrary)]
pub enum KernelSpec {
    /// `Gaussian::new(h)`.
    Gaussian(Param),
    /// `SoftmaxDot::new(τ)`.
    SoftmaxDot(Param),
}

/// A kernel that can be any of the built-ins, with its `f64` twin.
#[derive(Clone, Copy, Debug)]
pub enum AnyKernel {
    /// A Gaussian.
    Gaussian(Gaussian),
    /// A softmax-dot.
    SoftmaxDot(SoftmaxDot),
}

impl AnyKernel {
    /// The `f64` reference kernel with the same parameter.
    #[must_use]
    pub fn reference(&self) -> RefKernel {
        match self {
            Self::Gaussian(g) => RefKernel::Gaussian {
                h: f64::from(g.bandwidth()),
            },
            Self::SoftmaxDot(s) => RefKernel::SoftmaxDot {
                tau: f64::from(s.temperature()),
            },
        }
    }
}

/// Builds the kernel and checks the constructor's verdict: a parameter that is not finite and
/// `> 0` must be rejected with the documented error, one comfortably inside the normal range
/// must be accepted, and the kernel must report the parameter it was given.
///
/// # Panics
/// If the constructor breaks its contract.
#[must_use]
pub fn build_kernel(spec: KernelSpec) -> Option<AnyKernel> {
    match spec {
        KernelSpec::Gaussian(Param(h)) => {
            let r = Gaussian::new(h);
            check_param(
                h,
                r.map(|g| g.bandwidth()),
                Error::InvalidBandwidth,
                1e-18,
                1e18,
            );
            r.ok().map(AnyKernel::Gaussian)
        }
        KernelSpec::SoftmaxDot(Param(t)) => {
            let r = SoftmaxDot::new(t);
            check_param(
                t,
                r.map(|s| s.temperature()),
                Error::InvalidTemperature,
                1e-37,
                1e37,
            );
            r.ok().map(AnyKernel::SoftmaxDot)
        }
    }
}

fn check_param(p: f32, r: core::result::Result<f32, Error>, err: Error, lo: f32, hi: f32) {
    match r {
        Ok(got) => {
            assert!(p.is_finite() && p > 0.0, "accepted parameter {p}");
            assert_eq!(got.to_bits(), p.to_bits(), "parameter not kept");
        }
        Err(e) => {
            assert_eq!(e, err, "wrong error for parameter {p}");
            assert!(!(lo..=hi).contains(&p), "rejected ordinary parameter {p}");
        }
    }
}

/// The `f64` score of one row with its worst-case `f32` rounding error, and whether computing it
/// in `f32` may, or must, overflow.
#[derive(Clone, Copy, Debug)]
pub struct RefScore {
    /// The score in `f64` from the `f32` inputs.
    pub s: f64,
    /// Bound on `|s_f32 - s|` for any summation order.
    pub err: f64,
    /// True if an intermediate may exceed `f32` range: `ScoreOverflow` is then legitimate.
    pub risky: bool,
    /// True if the score itself is above `f32` range whatever the rounding (`s - err >
    /// f32::MAX`): it is `+inf` in `f32`, so the call must fail with `ScoreOverflow`.
    pub certain: bool,
    /// True if the score may be `-inf` in `f32` (an intermediate may overflow, and the score is
    /// not positive): a sample of weight 0. A score of `-inf` is not an error (issue 12); where
    /// every score of a row may be `-inf`, `NoSupport` is legitimate.
    pub may_vanish: bool,
    /// True if the score is below `-f32::MAX` whatever the rounding: certainly `-inf` in `f32`.
    pub vanishes: bool,
}

/// Scores `q` against one key row.
#[must_use]
pub fn ref_score(kernel: RefKernel, q: &[f32], k: &[f32]) -> RefScore {
    let (q, k) = (widen(q), widen(k));
    let zero = vec![0.0; q.len()];
    ref_score_approx(kernel, &q, &zero, &k, &zero)
}

/// Scores `q` against one key row where both are `f32` quantities the implementation computed
/// itself (projections), known here in `f64` up to the absolute errors `dq`, `dk` per coordinate.
#[must_use]
pub fn ref_score_approx(
    kernel: RefKernel,
    q: &[f64],
    dq: &[f64],
    k: &[f64],
    dk: &[f64],
) -> RefScore {
    let (gauss, c) = match kernel {
        RefKernel::Gaussian { h } => (true, -0.5 / (h * h)),
        RefKernel::SoftmaxDot { tau } => (false, 1.0 / tau),
    };
    let mut sum = 0.0f64;
    let mut abs = 0.0f64;
    let mut pert = 0.0f64;
    let mut biggest = 0.0f64;
    for j in 0..q.len() {
        let (a, b, ea, eb) = (q[j], k[j], dq[j], dk[j]);
        let (t, mag, big) = if gauss {
            let (u, e) = (a - b, ea + eb);
            let m = (u.abs() + e) * (u.abs() + e);
            (u * u, m, u.abs() + e)
        } else {
            let m = (a.abs() + ea) * (b.abs() + eb);
            (a * b, m, m)
        };
        sum += t;
        abs += mag;
        pert += mag - t.abs();
        biggest = biggest.max(big);
    }
    let d = q.len() as f64;
    let s = c * sum;
    let err = c.abs() * pert
        + (d + 4.0) * EPS * c.abs() * abs
        + 4.0 * (d + 2.0) * TINY * c.abs().max(1.0)
        + EPS * s.abs();
    let risky = abs > OVERFLOW_RISK || c.abs() * abs > OVERFLOW_RISK || biggest > OVERFLOW_RISK;
    RefScore {
        s,
        err,
        risky,
        certain: s - err > f64::from(f32::MAX),
        may_vanish: risky && s - err <= 0.0,
        vanishes: s + err < -f64::from(f32::MAX),
    }
}

/// `f32::MAX` less the relative band of `1e-5` the lead's rule leaves undecided.
pub const NEAR_MAX: f64 = f32::MAX as f64 * (1.0 - 1e-5);

/// Nadaraya–Watson for one query in `f64` with the bounds a correct `f32` implementation meets.
#[derive(Clone, Debug)]
pub struct RefRow {
    /// `Σ α_i v_i` per output coordinate.
    pub out: Vec<f64>,
    /// The weights `α_i`.
    pub weights: Vec<f64>,
    /// Per output coordinate: the allowed distance from `out`.
    pub tol: Vec<f64>,
    /// Per output coordinate: the smallest and largest value (a convex combination stays inside).
    pub range: Vec<(f64, f64)>,
    /// Per output coordinate: the rounding slack allowed outside `range`.
    pub slack: Vec<f64>,
    /// Allowed distance of each weight from `weights`.
    pub weight_tol: f64,
    /// The largest score error bound.
    pub score_err: f64,
    /// The verdicts a correct implementation may give.
    pub flags: Flags,
    /// `log Σ exp(s_i)`.
    pub lse: f64,
    /// The largest score.
    pub max_score: f64,
}

/// What a correct implementation may answer for a call (or one row of it), from the reference.
///
/// The rule (issue 11): `Ok` means finite and within the bound of the `f64` reference; `Err` only
/// for invalid input or a result not representable in `f32`; the same verdict for every order of
/// the same samples. `Overflow` is legitimate exactly when the exact result, within its error
/// bound, reaches the band of relative width `1e-5` below `f32::MAX` (which stays undecided); a
/// score that may overflow on the way makes `ScoreOverflow` legitimate, one that must overflow
/// makes it obligatory. A score of `-inf` has weight 0 (issue 12): `NoSupport` is legitimate
/// where every score of a row may be `-inf`, and obligatory where every one certainly is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// A score may overflow on the way: `ScoreOverflow` is legitimate.
    pub risky: bool,
    /// A score is certainly beyond `f32` range: `Ok` is wrong.
    pub certain: bool,
    /// An output coordinate may round beyond `NEAR_MAX`: `Overflow` is legitimate, and the
    /// verdict may differ between orders (the undecided band).
    pub near_max: bool,
    /// Every score of a row may be `-inf` in `f32`: `NoSupport` is legitimate.
    pub no_support: bool,
    /// Every score of a row is certainly `-inf`: `Ok` is wrong (`NoSupport`, or `ScoreOverflow`
    /// where that is legitimate too).
    pub no_support_certain: bool,
}

impl core::ops::BitOrAssign for Flags {
    fn bitor_assign(&mut self, o: Self) {
        self.risky |= o.risky;
        self.certain |= o.certain;
        self.near_max |= o.near_max;
        self.no_support |= o.no_support;
        self.no_support_certain |= o.no_support_certain;
    }
}

impl Flags {
    /// Checks the verdict of a call on finite, well-shaped input against the rule; returns
    /// whether it is `Ok` (the caller then checks the values).
    ///
    /// # Panics
    /// If the verdict breaks the rule, with `what` in the message.
    pub fn check<T: core::fmt::Debug>(
        self,
        r: &core::result::Result<T, Error>,
        what: &str,
    ) -> bool {
        match r {
            Ok(_) => {
                assert!(
                    !self.certain || self.near_max,
                    "{what}: Ok although a score is beyond f32 range ({self:?})"
                );
                assert!(
                    !self.no_support_certain,
                    "{what}: Ok although every score of a row is -inf in f32 ({self:?})"
                );
                true
            }
            Err(Error::NoSupport) => {
                assert!(
                    self.no_support,
                    "{what}: NoSupport although a score has weight ({self:?})"
                );
                false
            }
            Err(Error::ScoreOverflow) => {
                assert!(
                    self.risky,
                    "{what}: ScoreOverflow for scores far inside f32 range"
                );
                false
            }
            Err(Error::Overflow) => {
                assert!(
                    self.near_max,
                    "{what}: Overflow although the exact result is representable in f32 ({self:?})"
                );
                false
            }
            Err(e) => panic!("{what}: unexpected {e:?} from finite, well-shaped input"),
        }
    }

    /// Checks that two orders of the same samples (or two twins, `twins`: SIMD and scalar, which
    /// may round a score differently at the edge of overflow) got the same verdict, outside the
    /// undecided band.
    ///
    /// # Panics
    /// If they did not.
    pub fn check_same<T: core::fmt::Debug, U: core::fmt::Debug>(
        self,
        a: &core::result::Result<T, Error>,
        b: &core::result::Result<U, Error>,
        twins: bool,
        what: &str,
    ) {
        let same = match (a, b) {
            (Ok(_), Ok(_)) => true,
            (Err(x), Err(y)) => x == y,
            _ => false,
        };
        assert!(
            same || self.near_max || (twins && self.risky),
            "{what}: the verdict depends on the order: {a:?} vs {b:?} ({self:?})"
        );
    }
}

/// The reference for one query row against `keys` (`n×d`) and `values` (`n×dv`), `n > 0`.
#[must_use]
pub fn ref_row(kernel: RefKernel, q: &[f32], keys: &[f32], values: &[f32], dv: usize) -> RefRow {
    let zq = vec![0.0; q.len()];
    let zk = vec![0.0; keys.len()];
    let zv = vec![0.0; values.len()];
    ref_row_approx(
        kernel,
        Inexact::new(&widen(q), &zq),
        Inexact::new(&widen(keys), &zk),
        Inexact::new(&widen(values), &zv),
        dv,
    )
}

/// `f32` quantities an implementation computed itself, known here in `f64` with an absolute
/// error bound per element.
#[derive(Clone, Copy, Debug)]
pub struct Inexact<'a> {
    /// The `f64` values.
    pub v: &'a [f64],
    /// Bounds on `|f32 value − v|`, one per element.
    pub e: &'a [f64],
}

impl<'a> Inexact<'a> {
    /// Pairs values with their error bounds (the same length).
    #[must_use]
    pub fn new(v: &'a [f64], e: &'a [f64]) -> Self {
        assert_eq!(v.len(), e.len());
        Self { v, e }
    }
}

/// [`ref_row`] for inputs that are themselves computed (projections): `q`, `keys`, `values`
/// known up to their error bounds, which widen the score errors, the range and the tolerance.
#[must_use]
pub fn ref_row_approx(
    kernel: RefKernel,
    q: Inexact<'_>,
    keys: Inexact<'_>,
    values: Inexact<'_>,
    dv: usize,
) -> RefRow {
    let d = q.v.len();
    let scores: Vec<RefScore> = keys
        .v
        .chunks_exact(d)
        .zip(keys.e.chunks_exact(d))
        .map(|(k, dk)| ref_score_approx(kernel, q.v, q.e, k, dk))
        .collect();
    let n = scores.len();
    let s: Vec<f64> = scores.iter().map(|r| r.s).collect();
    let weights = reference::softmax(&s);
    let score_err = scores.iter().fold(0.0f64, |m, r| m.max(r.err));
    let mut flags = Flags {
        risky: scores.iter().any(|r| r.risky),
        certain: scores.iter().any(|r| r.certain),
        near_max: false,
        no_support: scores.iter().all(|r| r.may_vanish),
        no_support_certain: scores.iter().all(|r| r.vanishes),
    };
    let max_score = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lse = max_score + s.iter().map(|v| (v - max_score).exp()).sum::<f64>().ln();
    let rel = (4.0 * score_err).min(700.0).exp_m1() + 16.0 * EPS;
    let mut out = vec![0.0; dv];
    let mut range = vec![(f64::INFINITY, f64::NEG_INFINITY); dv];
    let mut vmax = vec![0.0f64; dv];
    let mut verr = vec![0.0f64; dv];
    for (w, (row, er)) in weights
        .iter()
        .zip(values.v.chunks_exact(dv).zip(values.e.chunks_exact(dv)))
    {
        for j in 0..dv {
            let (v, e) = (row[j], er[j]);
            out[j] += w * v;
            range[j] = (range[j].0.min(v - e), range[j].1.max(v + e));
            vmax[j] = vmax[j].max(v.abs() + e);
            verr[j] = verr[j].max(e);
        }
    }
    let nf = n as f64;
    // Subnormal products and the flush of weights below e^-87.34 cost an absolute amount.
    let slack: Vec<f64> = vmax
        .iter()
        .map(|m| (nf + 16.0) * 2.0 * EPS * m + nf * 1.2e-38 * m + 4.0 * (nf + 4.0) * TINY)
        .collect();
    let tol: Vec<f64> = vmax
        .iter()
        .zip(&slack)
        .zip(&verr)
        .map(|((m, sl), e)| 2.0 * rel * m + sl + e)
        .collect();
    // Every output is a convex combination of finite f32 values, so the exact result reaches
    // f32::MAX only when the values do: Overflow is legitimate only in that band.
    flags.near_max = out.iter().zip(&tol).any(|(o, t)| o.abs() + t >= NEAR_MAX);
    RefRow {
        out,
        weights,
        tol,
        range,
        slack,
        weight_tol: 2.0 * rel + (nf + 16.0) * 2.0 * EPS + 1.2e-38 * nf,
        score_err,
        flags,
        lse,
        max_score,
    }
}

impl RefRow {
    /// Checks an `f32` result row: finite, inside the values' range (up to rounding), and within
    /// the bound of the `f64` reference.
    ///
    /// # Panics
    /// If any check fails, with `what` in the message.
    pub fn check_out(&self, got: &[f32], what: &str) {
        assert_eq!(got.len(), self.out.len());
        for (j, &g) in got.iter().enumerate() {
            assert!(
                g.is_finite(),
                "{what}: non-finite output {g} at {j} from finite input"
            );
            let g = f64::from(g);
            let (lo, hi) = self.range[j];
            assert!(
                g >= lo - self.slack[j] && g <= hi + self.slack[j],
                "{what}: output {g:e} at {j} outside the values' range [{lo:e}, {hi:e}] (slack {:e})",
                self.slack[j]
            );
            assert!(
                (g - self.out[j]).abs() <= self.tol[j],
                "{what}: output {g:e} at {j} vs f64 reference {:e} (tolerance {:e}, score error {:e})",
                self.out[j],
                self.tol[j],
                self.score_err
            );
        }
    }

    /// Checks only that an `f32` result row is finite and inside the values' range (up to
    /// rounding): for results over an unknown subset of the samples.
    ///
    /// # Panics
    /// If any check fails, with `what` in the message.
    pub fn check_range(&self, got: &[f32], what: &str) {
        for (j, &g) in got.iter().enumerate() {
            assert!(
                g.is_finite(),
                "{what}: non-finite output {g} at {j} from finite input"
            );
            let (lo, hi) = self.range[j];
            let g = f64::from(g);
            assert!(
                g >= lo - self.slack[j] && g <= hi + self.slack[j],
                "{what}: output {g:e} at {j} outside the values' range [{lo:e}, {hi:e}]"
            );
        }
    }

    /// Checks `f32` weights: non-negative, finite, summing to 1 within `1e-5` (or `(n + 16)·ε` for
    /// more than about 80 weights), each within the
    /// bound of the `f64` reference.
    ///
    /// # Panics
    /// If any check fails, with `what` in the message.
    pub fn check_weights(&self, got: &[f32], what: &str) {
        assert_eq!(got.len(), self.weights.len());
        let mut sum = 0.0f64;
        for (i, (&g, &w)) in got.iter().zip(&self.weights).enumerate() {
            assert!(g.is_finite() && g >= 0.0, "{what}: weight {g} at {i}");
            sum += f64::from(g);
            assert!(
                (f64::from(g) - w).abs() <= self.weight_tol,
                "{what}: weight {g:e} at {i} vs f64 reference {w:e} (tolerance {:e})",
                self.weight_tol
            );
        }
        // 1e-5 up to about 80 weights; a sum of n rounded terms may drift by n·ε beyond that.
        let sum_tol = 1e-5f64.max((got.len() as f64 + 16.0) * EPS);
        assert!((sum - 1.0).abs() <= sum_tol, "{what}: weights sum to {sum}");
    }
}

/// Checks two `f32` results of the same computation (SIMD lanes and scalar twin) agree within
/// twice the reference bound.
///
/// # Panics
/// If they do not.
pub fn check_agree(a: &[f32], b: &[f32], r: &RefRow, what: &str) {
    for (j, (x, y)) in a.iter().zip(b).enumerate() {
        let diff = (f64::from(*x) - f64::from(*y)).abs();
        assert!(
            diff <= 2.0 * r.tol[j],
            "{what}: {x:e} vs {y:e} at {j} (tolerance {:e})",
            2.0 * r.tol[j]
        );
    }
}

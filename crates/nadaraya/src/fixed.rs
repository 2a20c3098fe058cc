//! Fixed point for cores without an FPU (Cortex-M0, M3): Q15 kernel smoothing and softmax-dot
//! attention with integer arithmetic only.
//!
//! A Q15 number is an `i16` read as `i / 32768`: every value in `[-1, 1)`, with a resolution of
//! `2^-15`. Inputs (queries, keys, values) are Q15; scores and sums are integers: `i32`
//! products, `u32` penalties and weights, an `i64` for each weighted sum of values (an `i32`
//! product of a Q16 weight and a Q15 value, added with a carry: two instructions on a
//! Cortex-M0). The exponential is base 2 from a 129-entry table of `2^(-j/128)` (Q20) with linear
//! interpolation ([`exp2_neg`]). As in the float API the largest weight is 1 (the stable
//! max-shift: the best-scoring sample's penalty is subtracted from every penalty first), so a
//! result exists for every input and the weight sum never underflows.
//!
//! Kernels are built from the float ones, so a bandwidth or temperature is valid here exactly when
//! it is there, plus a range the integer scale can hold ([`Q15Kernel::gaussian`],
//! [`Q15Kernel::softmax_dot`]).
//!
//! # Bad input
//! The same answers as the float API for the same mistakes: no keys is [`Error::Empty`], a zero
//! width is [`Error::ZeroDimension`], shapes that do not fit are [`Error::Shape`] with the same
//! [`Dim`]. There is no NaN or infinity in Q15: every `i16` is a valid value (`i16::MIN` is
//! exactly `-1`), so nothing is rejected as [`Error::NonFinite`] and no result overflows (a
//! weighted average of Q15 values is a Q15 value). A NaN can only reach this module through the
//! kernel's `f32` parameter, which is rejected when the kernel is built.
//!
//! # Accuracy
//! Against an `f64` reference on the same (dequantised) inputs and the same `h` or `τ`:
//! - [`exp2_neg`]: at most 0.78 units of the last place of its Q16 result (`2^-16`; measured on
//!   every input from 0 to `17 · 2^15`, which the tests check against a bound of 1);
//! - [`attention`]: within 1.76 Q15 steps (`2^-15`) for the Gaussian and 1.59 for softmax-dot
//!   (measured; the tests' bound is 3 steps) on the random problems of the tests: `d` from 1 to
//!   16, `N` from 1 to 300, `dv` 1 and 3, five bandwidths from 0.02 to 4 and five temperatures
//!   from 0.05 to 20, inputs spread over the whole range or within ±0.05. The output is rounded
//!   to the nearest Q15 step.
//!
//! Integer sums are exact, so any order of the same samples gives the same bits.
//!
//! # Examples
//! ```
//! use nadaraya::fixed::{self, Q15Kernel};
//! use nadaraya::Gaussian;
//! // Samples at x = -0.5 and 0.5 with values 0.25 and 0.75, a query at 0: the average 0.5.
//! let k = Q15Kernel::gaussian(&Gaussian::new(0.25)?)?;
//! let (xs, ys) = ([fixed::q15(-0.5), fixed::q15(0.5)], [fixed::q15(0.25), fixed::q15(0.75)]);
//! let mut out = [0i16];
//! fixed::attention(&k, &[0], &xs, &ys, &mut out)?;
//! assert_eq!(out[0], fixed::q15(0.5));
//! # Ok::<(), nadaraya::Error>(())
//! ```

use crate::{Dim, Error, Gaussian, SoftmaxDot};

/// `2^(-j/128)` in Q20 (`2^20` is 1), rounded to nearest, for `j = 0..=128`.
const EXP2_TABLE: [u32; 129] = [
    1048576, 1042913, 1037281, 1031679, 1026107, 1020566, 1015054, 1009572, 1004120, 998697,
    993303, 987939, 982604, 977297, 972019, 966770, 961548, 956356, 951191, 946054, 940944, 935863,
    930809, 925782, 920782, 915809, 910863, 905944, 901051, 896185, 891345, 886532, 881744, 876982,
    872246, 867535, 862850, 858190, 853555, 848946, 844361, 839801, 835265, 830754, 826268, 821806,
    817367, 812953, 808563, 804196, 799853, 795533, 791237, 786964, 782714, 778487, 774282, 770101,
    765942, 761805, 757691, 753599, 749529, 745481, 741455, 737451, 733468, 729507, 725567, 721649,
    717752, 713875, 710020, 706185, 702372, 698578, 694806, 691053, 687321, 683609, 679917, 676245,
    672593, 668961, 665348, 661755, 658181, 654627, 651091, 647575, 644078, 640599, 637140, 633699,
    630276, 626872, 623487, 620120, 616771, 613440, 610127, 606832, 603555, 600295, 597053, 593829,
    590622, 587432, 584260, 581104, 577966, 574845, 571740, 568652, 565581, 562527, 559489, 556467,
    553462, 550473, 547500, 544543, 541603, 538678, 535768, 532875, 529997, 527135, 524288,
];

/// Exponents (Q15) from which [`exp2_neg`] returns 0: `2^-17` rounds to 0 in Q16.
pub const EXP2_NEG_ZERO_FROM: u32 = 17 << 15;

/// The largest key width [`attention`] takes: scores of wider rows would need more than 32 bits.
pub const MAX_WIDTH: usize = 8192;

/// The most keys [`attention`] takes: the `u32` sum of Q16 weights holds 65535 of them.
pub const MAX_KEYS: usize = 65535;

/// The Q15 value nearest `x`, saturated to `[-1, 1 - 2^-15]`; NaN gives 0.
///
/// # Examples
/// ```
/// assert_eq!(nadaraya::fixed::q15(0.5), 16384);
/// assert_eq!(nadaraya::fixed::q15(-1.0), i16::MIN);
/// assert_eq!(nadaraya::fixed::q15(2.0), i16::MAX);
/// ```
#[must_use]
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn q15(x: f32) -> i16 {
    // `as` saturates and maps NaN to 0.
    libm::roundf(x * 32768.0) as i16
}

/// `2^(-e / 2^15)` in Q16 (65536 is 1): a base-2 exponential of a non-negative Q15 exponent,
/// from a 129-entry table of `2^(-j/128)` (Q20) and a linear interpolation between neighbours, then a
/// rounding shift by the integer part. 0 from [`EXP2_NEG_ZERO_FROM`] on.
///
/// Error: at most 0.78 units of `2^-16` from the exact value, measured on every `e` below
/// [`EXP2_NEG_ZERO_FROM`] against `f64` (the tests' bound is 1). Costs about a dozen integer instructions.
///
/// # Examples
/// ```
/// use nadaraya::fixed::exp2_neg;
/// assert_eq!(exp2_neg(0), 65536); // 2^0
/// assert_eq!(exp2_neg(1 << 15), 32768); // 2^-1
/// assert_eq!(exp2_neg(3 << 14), 23170); // 2^-1.5 = 0.353553…
/// ```
#[inline]
#[must_use]
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn exp2_neg(e: u32) -> u32 {
    let n = e >> 15;
    if n >= 17 {
        return 0;
    }
    let j = ((e >> 8) & 127) as usize;
    let r = e & 255;
    let (a, b) = (EXP2_TABLE[j], EXP2_TABLE[j + 1]);
    // Q20, then a rounding shift to Q16 and by the integer part.
    let w = a - (((a - b) * r + 128) >> 8);
    let sh = n + 4;
    (w + ((1 << sh) >> 1)) >> sh
}

/// A kernel for [`attention`]: the scale of a [`Gaussian`] or [`SoftmaxDot`] kernel as an
/// integer mantissa and a power of two, `log2(e)/(2h²)` or `log2(e)/τ` (a base-2 exponent per
/// unit of squared distance or of dot product).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Q15Kernel {
    dot: bool,
    // The scale is `m · 2^-s0`, `m` in `[2^13, 2^14)`.
    m: u32,
    s0: i32,
}

/// Scales `c` must be within (reals of `h` or `τ`, below).
const MIN_SCALE: f64 = 1.0 / 65536.0;
const MAX_SCALE: f64 = 32768.0;

impl Q15Kernel {
    /// The Q15 form of a Gaussian kernel, for Q15 samples and queries (`h` in the same units:
    /// 0.25 is a quarter of the Q15 range's half-width).
    ///
    /// # Errors
    /// [`Error::InvalidBandwidth`] if `log2(e)/(2h²)` is outside `[2^-16, 2^15]`, that is if
    /// `h` is below `0.0047` (154 Q15 steps: the integer scale would not fit in 32 bits) or
    /// above 217 (a kernel flat across any Q15 data). Every `h` that [`Gaussian::new`] accepts in between is taken.
    ///
    /// # Examples
    /// ```
    /// use nadaraya::{fixed::Q15Kernel, Error, Gaussian};
    /// assert!(Q15Kernel::gaussian(&Gaussian::new(0.1)?).is_ok());
    /// assert_eq!(Q15Kernel::gaussian(&Gaussian::new(1e-3)?), Err(Error::InvalidBandwidth));
    /// # Ok::<(), nadaraya::Error>(())
    /// ```
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn gaussian(k: &Gaussian) -> Result<Self, Error> {
        let h = f64::from(k.bandwidth());
        Self::from_scale(core::f64::consts::LOG2_E / (2.0 * h * h), false)
            .ok_or(Error::InvalidBandwidth)
    }

    /// The Q15 form of a softmax-dot kernel (`τ` in the units of the Q15 dot product: `q·k`
    /// of two Q15 rows of width `d` lies in `[-d, d]`).
    ///
    /// # Errors
    /// [`Error::InvalidTemperature`] if `log2(e)/τ` is outside `[2^-16, 2^15]`, that is if `τ`
    /// is below `4.4e-5` or above 94 548. Every `τ` that [`SoftmaxDot::new`] accepts in between
    /// is taken.
    ///
    /// # Examples
    /// ```
    /// use nadaraya::{fixed::Q15Kernel, Error, SoftmaxDot};
    /// assert!(Q15Kernel::softmax_dot(&SoftmaxDot::for_dim(8)?).is_ok());
    /// assert_eq!(Q15Kernel::softmax_dot(&SoftmaxDot::new(1e6)?), Err(Error::InvalidTemperature));
    /// # Ok::<(), nadaraya::Error>(())
    /// ```
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn softmax_dot(k: &SoftmaxDot) -> Result<Self, Error> {
        Self::from_scale(core::f64::consts::LOG2_E / f64::from(k.temperature()), true)
            .ok_or(Error::InvalidTemperature)
    }

    fn from_scale(c: f64, dot: bool) -> Option<Self> {
        if !(MIN_SCALE..=MAX_SCALE).contains(&c) {
            return None;
        }
        // c = m · 2^-s0 with m in [2^13, 2^14): at most 47 halvings or doublings.
        let (mut x, mut s0) = (c, 0i32);
        while x >= 16384.0 {
            x *= 0.5;
            s0 -= 1;
        }
        while x < 8192.0 {
            x *= 2.0;
            s0 += 1;
        }
        // Rounding may give 2^14 exactly: still fits (the product bound needs m ≤ 2^14).
        let m = libm::round(x) as u32;
        Some(Self { dot, m, s0 })
    }

    /// Whether this is the softmax-dot kernel (else the Gaussian).
    #[must_use]
    pub const fn is_softmax_dot(&self) -> bool {
        self.dot
    }
}

/// Smallest `g` with `2^g ≥ d`: the shift of each product or square so that `d` of them fit.
fn width_shift(d: usize) -> u32 {
    usize::BITS - (d - 1).leading_zeros()
}

/// Q15 Nadaraya–Watson attention of one query: `out = Σ_i w_i v_i / Σ_i w_i` with
/// `w_i = 2^(-(p_i - min p))` computed in integers, where the penalty `p_i` is the scaled
/// squared distance `|q - k_i|² log2(e)/(2h²)` ([`Q15Kernel::gaussian`]: the kernel smoother) or
/// the negated scaled dot product `-q·k_i log2(e)/τ` ([`Q15Kernel::softmax_dot`]).
///
/// `q` is one query of width `d = q.len()`, `keys` is `N×d` and `values` `N×dv` row-major,
/// `out` has width `dv = out.len()`. Two passes over the keys (the smallest penalty, then weights
/// and sums), no memory beyond a few registers, and one `i64` division per output component.
/// Results are rounded to the nearest Q15 step; see the [module](self) for the error.
///
/// # Errors
/// In this order:
/// - [`Error::ZeroDimension`] if `d` or `dv` is 0;
/// - [`Error::Shape`] with [`Dim::Flat`] if `keys` does not split into rows of `d` (`expected`:
///   `d`, `found`: its length), then the same for `values` and `dv`;
/// - [`Error::Shape`] with [`Dim::ValueRows`] if `values` has not one row per key;
/// - [`Error::Empty`] if there are no keys;
/// - [`Error::Shape`] with [`Dim::Width`] if `d` is above [`MAX_WIDTH`] (`expected`: that
///   limit);
/// - [`Error::CapacityExceeded`] if there are more than [`MAX_KEYS`] keys.
///
/// Never [`Error::NonFinite`] or [`Error::Overflow`]: see the [module](self).
///
/// # Examples
/// ```
/// use nadaraya::fixed::{self, Q15Kernel};
/// use nadaraya::{Dim, Error, SoftmaxDot};
/// let k = Q15Kernel::softmax_dot(&SoftmaxDot::new(0.25)?)?;
/// // Two keys, the first aligned with the query: most of the weight goes to its value.
/// let q = [fixed::q15(0.5), 0];
/// let keys = [fixed::q15(0.5), 0, fixed::q15(-0.5), 0];
/// let values = [fixed::q15(0.75), fixed::q15(-0.75)];
/// let mut out = [0i16];
/// fixed::attention(&k, &q, &keys, &values, &mut out)?;
/// let w = 1.0 / (1.0 + (-0.5f64 / 0.25).exp()); // softmax of (0.25, -0.25) / τ
/// assert!((f64::from(out[0]) / 32768.0 - (0.75 * w - 0.75 * (1.0 - w))).abs() < 1e-4);
/// assert_eq!(
///     fixed::attention(&k, &q, &keys[..3], &values, &mut out),
///     Err(Error::Shape { what: Dim::Flat, expected: 2, found: 3 })
/// );
/// assert_eq!(fixed::attention(&k, &q, &[], &[], &mut out), Err(Error::Empty));
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn attention(
    kernel: &Q15Kernel,
    q: &[i16],
    keys: &[i16],
    values: &[i16],
    out: &mut [i16],
) -> Result<(), Error> {
    let (d, dv) = (q.len(), out.len());
    if d == 0 || dv == 0 {
        return Err(Error::ZeroDimension);
    }
    if !keys.len().is_multiple_of(d) {
        return Err(shape(Dim::Flat, d, keys.len()));
    }
    if !values.len().is_multiple_of(dv) {
        return Err(shape(Dim::Flat, dv, values.len()));
    }
    let n = keys.len() / d;
    if values.len() / dv != n {
        return Err(shape(Dim::ValueRows, n, values.len() / dv));
    }
    if n == 0 {
        return Err(Error::Empty);
    }
    if d > MAX_WIDTH {
        return Err(shape(Dim::Width, MAX_WIDTH, d));
    }
    if n > MAX_KEYS {
        return Err(Error::CapacityExceeded);
    }
    // Penalties are in units of 2^(g - 30) (squares or products of two Q15 numbers, each
    // shifted right by g so that d of them fit in 32 bits).
    let g = width_shift(d);
    // The scale per penalty unit is m · 2^-base; e = ((p >> k) · m) >> s with p >> k < 2^18,
    // so the product stays below 2^32: k as small as that allows while m · 2^(k - s) ≥ 4
    // keeps every clamped penalty at a zero weight.
    let base = (kernel.s0 + 15 - g as i32).max(0) as u32;
    let k = base.saturating_sub(11).min(14);
    let s = base - k;
    // s ≤ 30: base ≤ 29 + 15 (MIN_SCALE), and k = 14 whenever base > 25.
    let params = Params {
        g,
        k,
        s: s.min(31),
        m: kernel.m,
    };
    // Widths 1, 8 and 16 get loops of a constant length (unrolled); others a run-time width.
    match (kernel.dot, d) {
        (false, 1) => smooth::<false, 1>(q, keys, values, out, params),
        (false, 8) => smooth::<false, 8>(q, keys, values, out, params),
        (false, 16) => smooth::<false, 16>(q, keys, values, out, params),
        (false, _) => smooth::<false, 0>(q, keys, values, out, params),
        (true, 1) => smooth::<true, 1>(q, keys, values, out, params),
        (true, 8) => smooth::<true, 8>(q, keys, values, out, params),
        (true, 16) => smooth::<true, 16>(q, keys, values, out, params),
        (true, _) => smooth::<true, 0>(q, keys, values, out, params),
    }
    Ok(())
}

/// The integer scale of one call: width shift, penalty shift, product shift and mantissa.
#[derive(Clone, Copy)]
struct Params {
    g: u32,
    k: u32,
    s: u32,
    m: u32,
}

/// The penalty of key row `x`: the squared distance, or `2^31 -` the dot product (so that a
/// larger score is a smaller penalty; in `[0, 2^32)` because the shifted sum is within `±2^30`).
#[inline(always)]
fn penalty<const DOT: bool, const W: usize>(q: &[i16], x: &[i16], g: u32) -> u32 {
    if W == 1 {
        // g = 0 at width 1: no shift, no loop.
        let (a, b) = (
            i32::from(q.first().copied().unwrap_or(0)),
            i32::from(x.first().copied().unwrap_or(0)),
        );
        return if DOT {
            (1u32 << 31).wrapping_sub((a * b) as u32)
        } else {
            let t = (a - b).unsigned_abs();
            t * t
        };
    }
    // W > 1: the caller checked that q and x have W elements.
    let (q, x) = match (q.first_chunk::<W>(), x.first_chunk::<W>()) {
        (Some(a), Some(b)) if W > 0 => (a.as_slice(), b.as_slice()),
        _ => (q, x),
    };
    if DOT {
        let mut acc = 0i32;
        for (a, b) in q.iter().zip(x) {
            acc += (i32::from(*a) * i32::from(*b)) >> g;
        }
        (1u32 << 31).wrapping_sub(acc as u32)
    } else {
        let mut acc = 0u32;
        for (a, b) in q.iter().zip(x) {
            let t = (i32::from(*a) - i32::from(*b)).unsigned_abs();
            acc += (t * t) >> g;
        }
        acc
    }
}

/// Both passes: the smallest penalty, then weights and sums; shapes are checked by the caller
/// (`d = q.len() ≥ 1`, `dv = out.len() ≥ 1`, one value row per key row).
fn smooth<const DOT: bool, const W: usize>(
    q: &[i16],
    keys: &[i16],
    values: &[i16],
    out: &mut [i16],
    p: Params,
) {
    let (d, dv) = (q.len(), out.len());
    let mut p_min = u32::MAX;
    for x in keys.chunks_exact(d) {
        p_min = p_min.min(penalty::<DOT, W>(q, x, p.g));
    }
    let weight = |x: &[i16]| -> u32 {
        let pk = ((penalty::<DOT, W>(q, x, p.g) - p_min) >> p.k).min((1 << 18) - 1);
        exp2_neg((pk * p.m) >> p.s)
    };
    if let [o] = out {
        let (mut num, mut den) = (0i64, 0u32);
        for (x, v) in keys.chunks_exact(d).zip(values) {
            let w = weight(x);
            den += w;
            num += i64::from(w as i32 * i32::from(*v));
        }
        *o = round_div(num, den);
        return;
    }
    // Wider values: the weights are recomputed for each output component, which needs no
    // buffer; dv is small where this module is used.
    for (j, o) in out.iter_mut().enumerate() {
        let (mut num, mut den) = (0i64, 0u32);
        for (x, v) in keys.chunks_exact(d).zip(values.chunks_exact(dv)) {
            let w = weight(x);
            den += w;
            num += i64::from(w as i32 * i32::from(v.get(j).copied().unwrap_or(0)));
        }
        *o = round_div(num, den);
    }
}

fn shape(what: Dim, expected: usize, found: usize) -> Error {
    Error::Shape {
        what,
        expected,
        found,
    }
}

/// `num / den` rounded to nearest (ties away from zero), as Q15: `den > 0` and `|num / den|` is
/// within the Q15 range (a weighted average of Q15 values).
fn round_div(num: i64, den: u32) -> i16 {
    let den = i64::from(den.max(1));
    let half = den / 2;
    let q = if num >= 0 {
        (num + half) / den
    } else {
        -((-num + half) / den)
    };
    q.clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_exp2() {
        for (j, &t) in EXP2_TABLE.iter().enumerate() {
            let exact = 1048576.0 * libm::exp2(-(j as f64) / 128.0);
            assert!((f64::from(t) - exact).abs() <= 0.5, "entry {j}");
        }
    }

    /// Every exponent below the zero threshold, against f64: at most 1 unit of 2^-16.
    #[test]
    fn exp2_neg_within_one_unit_everywhere() {
        let mut worst = 0.0f64;
        for e in 0..EXP2_NEG_ZERO_FROM + 4096 {
            let exact = 65536.0 * libm::exp2(-f64::from(e) / 32768.0);
            let err = (f64::from(exp2_neg(e)) - exact).abs();
            worst = worst.max(err);
        }
        std::println!("exp2_neg: worst error {worst:.3} units of 2^-16");
        assert!(worst <= 1.0, "worst error {worst} units of 2^-16");
        assert_eq!(exp2_neg(u32::MAX), 0);
    }
}

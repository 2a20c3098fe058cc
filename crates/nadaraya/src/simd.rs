//! SIMD lanes: every hot loop of the crate, eight `f32` at a time with [`wide::f32x8`].
//!
//! `wide` picks instructions at compile time from `target_feature`: SSE2 on a default x86-64
//! build, AVX2 + FMA with `-C target-cpu=native` on a recent x86-64, NEON on aarch64, and plain
//! scalar (VFP) code on Cortex-M, which has no float SIMD. Every loop has an explicit tail; the
//! exponential pads its tail into a full lane so that every element is rounded the same way.

use wide::{f32x8, i32x8};

use crate::Element;

/// Lanes per vector.
pub(crate) const LANES: usize = 8;

/// True where `wide` has float SIMD (x86 SSE2 and up, aarch64 NEON, wasm simd128). Elsewhere —
/// Cortex-M — its lanes are emulated one float at a time, and plain scalar loops over the same
/// arithmetic cost fewer instructions (measured by `scripts/firmware-cost`).
pub(crate) const SIMD: bool = cfg!(any(
    target_feature = "sse2",
    all(target_arch = "aarch64", target_feature = "neon"),
    target_feature = "simd128"
));

/// True where an `f32x8` fits one register and there are at least 16 of them (x86 with AVX,
/// aarch64 with 32 NEON registers of which an `f32x8` takes two). There the hot loops keep eight
/// vector accumulators live; with SSE2 alone an `f32x8` is two of its 16 registers, eight
/// accumulators spill, and the loops keep four (measured: eight made the default x86-64 build
/// 17–82 % slower, and the AVX-512 build 12–26 % faster).
const WIDE_REGISTERS: bool = cfg!(any(target_feature = "avx", target_arch = "aarch64"));

/// Vector accumulators per key row in [`row_scores`] (rows of eight floats or more).
const SCORE_CHAINS: usize = if WIDE_REGISTERS { 2 } else { 1 };

// Range reduction exp(x) = 2^n · exp(r), n = round(x·log2 e), r = x - n·ln 2, with ln 2 split in
// two (Cody–Waite) so that n·LN2_HI is exact for |n| ≤ 2^9.
pub(crate) const LOG2E: f32 = core::f32::consts::LOG2_E;
#[allow(clippy::excessive_precision)] // exact: 355/512
pub(crate) const LN2_HI: f32 = 0.693_359_375;
pub(crate) const LN2_LO: f32 = -2.121_944_4e-4;
// Minimax polynomial for (exp(r) - 1 - r) / r² on |r| ≤ ln2/2: the coefficients of Cephes'
// `expf` (S. L. Moshier, Cephes Math Library 2.2), highest degree first, as published.
#[allow(clippy::excessive_precision)]
pub(crate) const P: [f32; 6] = [
    1.987_569_2e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    5.000_000_1e-1,
];
/// 1.5·2^23, the round-to-nearest-even constant, and its bit pattern.
pub(crate) const ROUNDER: f32 = 12_582_912.0;
pub(crate) const ROUNDER_BITS: i32 = 0x4b40_0000;
/// `ln(f32::MIN_POSITIVE)`: below it `exp` would be subnormal and is flushed to 0.
pub(crate) const EXP_MIN: f32 = -87.336_55;

/// `exp(x)` in eight lanes for `x ≤ 0` (positive lanes are clamped to 0, lanes below
/// [`EXP_MIN`] give 0).
#[inline(always)]
pub(crate) fn exp_lanes(x: f32x8) -> f32x8 {
    exp_lanes_nonpositive(x.fast_min(f32x8::ZERO))
}

/// [`exp_lanes`] for lanes already known to be `≤ 0` (scores minus their maximum): one
/// instruction fewer, the same results (NaN lanes give 0 here; callers that can see NaN
/// select it back, as [`exp_in_place`] does).
#[inline(always)]
pub(crate) fn exp_lanes_nonpositive(x: f32x8) -> f32x8 {
    let keep = x.simd_ge(f32x8::splat(EXP_MIN));
    // Lanes below EXP_MIN (and NaN) are computed at x = 0 and masked to 0 at the end. Not clamped
    // to EXP_MIN: there `y` can round below 1, `y · 2^-126` is subnormal, and on x86 every such
    // lane costs a microcode assist (`fit::loo_cv` at N = 4096, where most samples are far from
    // each other, ran 3.4x slower per evaluation than `Smoother::predict`).
    let x = x & keep;
    // Round to nearest even by adding 1.5·2^23: the fraction bits fall off, and the low bits of
    // the sum's representation are n itself (valid for |n| < 2^22). Cheaper than `round` on
    // every target, and the same arithmetic as the scalar twin.
    let big = x.mul_add(f32x8::splat(LOG2E), f32x8::splat(ROUNDER));
    let n = big - f32x8::splat(ROUNDER);
    let r = n.mul_add(f32x8::splat(-LN2_HI), x);
    let r = n.mul_add(f32x8::splat(-LN2_LO), r);
    let mut p = f32x8::splat(P[0]);
    for c in &P[1..] {
        p = p.mul_add(r, f32x8::splat(*c));
    }
    let y = p.mul_add(r * r, r) + f32x8::ONE;
    let n_bits: i32x8 = wide::bytemuck::cast(big);
    let bits = (n_bits - i32x8::splat(ROUNDER_BITS - 127)) << 23;
    let scale: f32x8 = wide::bytemuck::cast(bits);
    // Lanes below EXP_MIN flush to 0: one `and` with the mask.
    (y * scale) & keep
}

/// The same algorithm as [`exp_lanes`] on one value, in plain scalar arithmetic.
#[inline]
pub(crate) fn exp_scalar(x: f32) -> f32 {
    // One comparison on the common path: NaN and x < EXP_MIN both fail it.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    if !(x >= EXP_MIN) {
        return if x.is_nan() { x } else { 0.0 };
    }
    // Not `f32::min`: without an FPU min instruction (Cortex-M4) it is a call to libm's fminf.
    let x = if x > 0.0 { 0.0 } else { x };
    // Round to nearest even as in the lanes.
    let n = (x * LOG2E + ROUNDER) - ROUNDER;
    let r = x - n * LN2_HI;
    let r = r - n * LN2_LO;
    let mut p = P[0];
    for c in &P[1..] {
        p = p * r + c;
    }
    let y = p * (r * r) + r + 1.0;
    y * f32::from_bits((((n as i32) + 127) << 23) as u32)
}

// The table-driven exponential of the targets without float SIMD (Cortex-M): exp(x) = 2^e ·
// 2^(j/64) · exp(r) with k = 64e + j = round(x·64/ln 2) and |r| ≤ ln 2/128, so that a degree-3
// polynomial is exact to 4e-11 and the error is the table entry's rounding plus the last one.
// Measured over every f32 in [EXP_MIN, 0] against f64 `exp` (the ignored test
// `exp_table_within_1_5_ulp_exhaustive`): see `exp_table`.

/// The fraction bits of `2^(j/64)` rounded to `f32` (exponent 0 removed), for `j = 0..64`.
const EXP2_64_FRACTION: [u32; 64] = [
    0x000000, 0x0164d2, 0x02cd87, 0x043a29, 0x05aac3, 0x071f62, 0x08980f, 0x0a14d5, 0x0b95c2,
    0x0d1adf, 0x0ea43a, 0x1031dc, 0x11c3d3, 0x135a2b, 0x14f4f0, 0x16942d, 0x1837f0, 0x19e046,
    0x1b8d3a, 0x1d3eda, 0x1ef532, 0x20b051, 0x227043, 0x243516, 0x25fed7, 0x27cd94, 0x29a15b,
    0x2b7a3a, 0x2d583f, 0x2f3b79, 0x3123f6, 0x3311c4, 0x3504f3, 0x36fd92, 0x38fbaf, 0x3aff5b,
    0x3d08a4, 0x3f179a, 0x412c4d, 0x4346cd, 0x45672a, 0x478d75, 0x49b9be, 0x4bec15, 0x4e248c,
    0x506334, 0x52a81e, 0x54f35b, 0x5744fd, 0x599d16, 0x5bfbb8, 0x5e60f5, 0x60ccdf, 0x633f89,
    0x65b907, 0x68396a, 0x6ac0c7, 0x6d4f30, 0x6fe4ba, 0x728177, 0x75257d, 0x77d0df, 0x7a83b3,
    0x7d3e0c,
];
/// 64 / ln 2.
pub(crate) const EXP_TABLE_K: f32 = 92.332_48;
/// `exp(f · ln 2/64) - 1 ≈ f · (EXP2_64_B1 + f · EXP2_64_B2)` for `|f| ≤ 1/2`: the minimax
/// line through the cubic term of the Taylor series (`B1 = L + L³/32`, `B2 = L²/2 + L⁴/96`,
/// `L = ln 2/64`), error at most 6.7e-9 (0.11 of `2^-24`) over that interval.
#[allow(clippy::excessive_precision)]
const EXP2_64_B1: f32 = 0.010_830_464_772_880_077;
#[allow(clippy::excessive_precision)]
const EXP2_64_B2: f32 = 5.864_919_148_734_771e-5;
/// ln 2 / 64 to 11 significant bits, so that `n · EXP_TABLE_HI` is exact for `|n| < 2^13`, and
/// the rest (Cody–Waite).
#[allow(clippy::excessive_precision)]
const EXP_TABLE_HI: f32 = 0.010_833_740_234_375;
const EXP_TABLE_LO: f32 = -3.315_538_2e-6;
/// The bits of `ROUNDER + k` minus these, shifted right by 6, are `floor(k/64) + 127`: the
/// biased exponent of `2^floor(k/64)`.
const EXP_TABLE_BIAS: i32 = ROUNDER_BITS - (127 << 6);

/// `exp(x)` by a 64-entry table of `2^(j/64)` and a degree-3 polynomial, branch-free, for the
/// fused passes of the targets without float SIMD (`Lse::absorb_fused`).
///
/// - `x` in `[EXP_MIN, 0]`: within 1.5 ulp of `exp(x)` (measured over every `f32` there, see
///   the tests; results below `f32::MIN_POSITIVE` are subnormal).
/// - `x` below about -88.03: a value below `2^-79` in magnitude (between `EXP_MIN` and -88.03,
///   0 or a subnormal; exactly 0 below about -1.36e5), or NaN where the reduction loses every
///   bit (`|x|` beyond about 1e19). The callers' shift is one of the scores, so their sum of
///   weights is at least 1, beside which such a value is nothing.
/// - NaN and `±inf` give NaN, `x` above 88.72 an infinity or NaN: the callers check the tile's
///   sum once ([`TILE_SUM_MAX`]) and redo such a tile on the exact path.
#[inline(always)]
pub(crate) fn exp_table(x: f32) -> f32 {
    let big = x * EXP_TABLE_K + ROUNDER;
    let n = big - ROUNDER;
    let r = x - n * EXP_TABLE_HI;
    let r = r - n * EXP_TABLE_LO;
    // exp(r) - 1 = r + r²·(1/2 + r/6) to 4e-11 for |r| ≤ ln 2/128.
    let q = r + (r * r) * (0.5 + r * (1.0 / 6.0));
    let b = big.to_bits() as i32;
    // A negative `big` (x below about -1.36e5) counts as k = -inf: exponent 0, entry 0, t = +0.
    let b = b & !(b >> 31);
    // The biased exponent of 2^floor(k/64), saturated to [0, 255] (one `usat` on Armv7E-M),
    // added to the entry's fraction: field 0 makes t a subnormal below 2^-126, field 255 an
    // infinity or a NaN.
    let e = ((b - EXP_TABLE_BIAS) >> 6).clamp(0, 255) as u32;
    let t = f32::from_bits(EXP2_64_FRACTION[(b & 63) as usize] | (e << 23));
    t * q + t
}

/// `2^(y/64)`, that is `exp(y · ln 2/64)`, for `y ≤ 0` already in the table's steps: the
/// Gaussian's fused pass (`Lse::absorb_fused`) computes `y = |q - x|² · c` with
/// `c = -64/(2h² ln 2)` and starts here. `n = round(y)`, `f = y - n` (exact, `|f| ≤ 1/2`),
/// `exp(f · ln 2/64) - 1` by a degree-2 minimax polynomial in `f` (the step `ln 2/64` folded
/// into its coefficients), then the table as in [`exp_table`]: three multiplies and the
/// shift's subtraction fewer than `exp_table(score - shift)`.
///
/// - `y` in `[-8064, 0]` (`EXP_MIN · 64/ln 2` is -8063.9): within 1.5 ulp of `2^(y/64)`
///   (measured over every `f32` there: 1.328 ulp at worst, see the tests).
/// - `y` below: a value of magnitude below `2^-78` (no sign mask: one instruction fewer than
///   [`exp_table`]). The caller keeps a pass only if its sum of weights is at least `2^-20`
///   (`FOLD_SUM_MIN` in `softmax.rs`), beside which such values are nothing.
/// - NaN and `-inf` give NaN: the callers check the tile's sum once.
#[inline(always)]
pub(crate) fn exp2_64(y: f32) -> f32 {
    let big = y + ROUNDER;
    let n = big - ROUNDER;
    let f = y - n;
    let q = f * (EXP2_64_B1 + f * EXP2_64_B2);
    let b = big.to_bits() as i32;
    // A negative `big` (y below -1.5·2^23) saturates to exponent field 0: a subnormal `t`
    // (the subtraction saturates too: one `qsub` on Armv7E-M, as cheap as `sub`).
    let e = (b.saturating_sub(EXP_TABLE_BIAS) >> 6).clamp(0, 255) as u32;
    let t = f32::from_bits(EXP2_64_FRACTION[(b & 63) as usize] | (e << 23));
    t * q + t
}

/// [`exp2_64`] without the exponent's clamp, for callers that select 0 for every `y` below
/// `EXP_MIN · 64/ln 2` anyway (Helium's [`exp_shift_sum_helium`]): there the exponent field is
/// in `[1, 127]`, the same bits as [`exp2_64`]; below, a meaningless value that the caller
/// discards. Two vector instructions fewer on MVE (`vmax`, `vmin`; `usat` has no lane form).
#[inline(always)]
fn exp2_64_in_range(y: f32) -> f32 {
    let big = y + ROUNDER;
    let n = big - ROUNDER;
    let f = y - n;
    let q = f * (EXP2_64_B1 + f * EXP2_64_B2);
    let b = big.to_bits();
    let e = (b.wrapping_sub(EXP_TABLE_BIAS as u32) >> 6) << 23;
    let t = f32::from_bits(EXP2_64_FRACTION[(b & 63) as usize] | e);
    t * q + t
}

/// The largest tile sum of `exp(s_i - shift)` that a fused pass accepts (the shift is one of
/// the scores or an earlier tile's shift, so every accepted weight is below `2^16`); a NaN,
/// infinite or larger sum sends the tile to the exact path.
pub(crate) const TILE_SUM_MAX: f32 = 65_536.0;

/// Partial sums of the fused table passes: 4 interleaved chains on Helium (`-C
/// target-cpu=cortex-m55`, cfg `nadaraya_helium` from the build script), where LLVM vectorises
/// four of them into one MVE register; one elsewhere (an in-order Cortex-M4 gains nothing from
/// more, and four chains spill registers there: an earlier four-chain form of the pass took 39.3
/// instructions per sample at Gaussian D = 1, N = 256, the one-chain loop took 29.3 before the Gaussian fold,
/// `scripts/firmware-cost`).
pub(crate) const FUSED_CHAINS: usize = if cfg!(nadaraya_helium) { 4 } else { 1 };

/// `((a_0 + a_1) + (a_2 + a_3)) …`: the pairwise sum of the partial sums of a fused pass.
#[inline(always)]
pub(crate) fn pairwise<const C: usize>(a: [f32; C]) -> f32 {
    match C {
        1 => a[0],
        2 => a[0] + a[1],
        4 => (a[0] + a[1]) + (a[2] + a[3]),
        _ => a.iter().sum(),
    }
}

/// True on a Cortex-M55 build (cfg `nadaraya_helium`): the loops below that LLVM vectorises
/// with Helium (MVE) lanes replace the scalar ones there.
pub(crate) const HELIUM: bool = cfg!(nadaraya_helium);

/// On Helium, [`div_in_place`] of more elements than this multiplies by the reciprocal (an
/// accumulator of a few values keeps the exact quotient).
const DIV_BY_RECIPROCAL_ABOVE: usize = 16;

/// [`exp_shift_sum`] for Helium: [`exp2_64_in_range`] of `(s_i - m) · 64/ln 2` over the slice (a loop
/// LLVM vectorises, the table read by a gather), `-inf` and anything below `EXP_MIN` selected
/// to exactly 0, then the sum in four interleaved partial sums (element `i` into sum `i mod 4`,
/// added pairwise): another order than the scalar loop's. The product's rounding adds
/// `|x| · 2^-24` to the relative error of `exp(x)` (measured over a dense sweep of
/// `[EXP_MIN, 0]`: test `exp2_64_of_scaled_scores_match_f64`), an absolute error of at most
/// `0.37 · 2^-24` beside the maximum's weight of 1; it took the Gaussian `weights` at D = 1,
/// N = 256 on the M55 from 15.8 to 13.6 instructions per weight (14.1 with the clamp of
/// `exp2_64`; `scripts/firmware-cost`).
/// `m` is the maximum of `s`.
#[inline]
fn exp_shift_sum_helium(s: &mut [f32], m: f32) -> f32 {
    for v in s.iter_mut() {
        let x = *v - m;
        let e = exp2_64_in_range(x * EXP_TABLE_K);
        *v = if x >= EXP_MIN { e } else { 0.0 };
    }
    sum_interleaved(s)
}

/// `Σ s_i` in four interleaved partial sums, added pairwise (Helium: one MVE register; fused
/// into the exponential's loop instead, LLVM's SLP form cost 21.0 instructions per weight
/// against 15.8 for the two loops, `scripts/firmware-cost`).
#[inline]
fn sum_interleaved(s: &[f32]) -> f32 {
    let (b, t) = s.as_chunks::<4>();
    let mut a = [0.0f32; 4];
    for c in b {
        for (x, v) in a.iter_mut().zip(c) {
            *x += v;
        }
    }
    for (x, v) in a.iter_mut().zip(t) {
        *x += v;
    }
    pairwise(a)
}

/// [`max_score`] for Helium: four running maxima and four poison sums, lane-parallel.
#[inline]
fn max_score_helium(s: &[f32]) -> Result<(f32, bool), crate::Error> {
    let (b, t) = s.as_chunks::<4>();
    let mut mx = [f32::NEG_INFINITY; 4];
    let mut poison = [0.0f32; 4];
    for c in b {
        for ((m, p), &v) in mx.iter_mut().zip(&mut poison).zip(c) {
            *m = if v > *m { v } else { *m };
            *p += v * 0.0;
        }
    }
    for ((m, p), &v) in mx.iter_mut().zip(&mut poison).zip(t) {
        *m = if v > *m { v } else { *m };
        *p += v * 0.0;
    }
    let m01 = if mx[1] > mx[0] { mx[1] } else { mx[0] };
    let m23 = if mx[3] > mx[2] { mx[3] } else { mx[2] };
    if pairwise(poison) == 0.0 {
        Ok((if m23 > m01 { m23 } else { m01 }, false))
    } else {
        max_score_cold(s)
    }
}

/// `s[i] = exp_table(s[i] - m)` in place; returns their sum, in [`FUSED_CHAINS`] interleaved
/// partial sums (element `i` goes to sum `i mod C`, added pairwise at the end).
#[inline]
pub(crate) fn exp_table_shift_sum(s: &mut [f32], m: f32) -> f32 {
    const C: usize = FUSED_CHAINS;
    if C == 1 {
        let mut sum = 0.0f32;
        for v in s.iter_mut() {
            *v = exp_table(*v - m);
            sum += *v;
        }
        return sum;
    }
    let (sb, st) = s.as_chunks_mut::<C>();
    let mut sum = [0.0f32; C];
    for sc in sb {
        for (a, v) in sum.iter_mut().zip(sc.iter_mut()) {
            let e = exp_table(*v - m);
            *v = e;
            *a += e;
        }
    }
    for (a, v) in sum.iter_mut().zip(st.iter_mut()) {
        let e = exp_table(*v - m);
        *v = e;
        *a += e;
    }
    pairwise(sum)
}

// ln x = e·ln 2 + ln m with x = m·2^e, m in [√½, √2): Cephes' `logf` (S. L. Moshier, Cephes
// Math Library 2.2), its minimax polynomial for (ln(1+f) - f + f²/2) / f³ on f = m - 1, highest
// degree first, as published; ln 2 split as in the exponential (LN2_HI, LN2_LO).
#[allow(clippy::excessive_precision)]
const LN_P: [f32; 9] = [
    7.037_683_6e-2,
    -1.151_461_03e-1,
    1.167_699_874e-1,
    -1.242_014_084_6e-1,
    1.424_932_278_7e-1,
    -1.666_805_766_5e-1,
    2.000_071_476_5e-1,
    -2.499_999_399_3e-1,
    3.333_333_117_4e-1,
];
const SQRT_HALF: f32 = core::f32::consts::FRAC_1_SQRT_2;

/// `ln x` in eight lanes for normal positive `x` (the compact kernels pass `x` in
/// `[2^-24, 1]`); other inputs give unspecified values, which the callers replace.
#[inline(always)]
fn ln_lanes(x: f32x8) -> f32x8 {
    let bits: i32x8 = wide::bytemuck::cast(x);
    // x = m·2^e with m in [0.5, 1).
    let e: i32x8 = (bits >> 23_u32) - i32x8::splat(126);
    let m: f32x8 =
        wide::bytemuck::cast((bits & i32x8::splat(0x007f_ffff)) | i32x8::splat(0x3f00_0000));
    // m < √½: take m·2 and e - 1, so that f = m - 1 lies in [√½ - 1, √2 - 1).
    let small = m.simd_lt(f32x8::splat(SQRT_HALF));
    let f = small.select(m + m, m) - f32x8::ONE;
    let e = e.round_float() - small.select(f32x8::ONE, f32x8::ZERO);
    let z = f * f;
    let mut y = f32x8::splat(LN_P[0]);
    for c in &LN_P[1..] {
        y = y.mul_add(f, f32x8::splat(*c));
    }
    let y = y * f * z;
    let y = e.mul_add(f32x8::splat(LN2_LO), y);
    let y = z.mul_add(f32x8::splat(-0.5), y);
    e.mul_add(f32x8::splat(LN2_HI), f + y)
}

/// The same algorithm as [`ln_lanes`] on one value, in plain scalar arithmetic.
#[inline]
pub(crate) fn ln_scalar(x: f32) -> f32 {
    let bits = x.to_bits() as i32;
    let mut e = ((bits >> 23) - 126) as f32;
    let mut m = f32::from_bits(((bits & 0x007f_ffff) | 0x3f00_0000) as u32);
    if m < SQRT_HALF {
        m += m;
        e -= 1.0;
    }
    let f = m - 1.0;
    let z = f * f;
    let mut y = LN_P[0];
    for c in &LN_P[1..] {
        y = y * f + c;
    }
    let y = y * f * z;
    let y = e * LN2_LO + y;
    let y = z * -0.5 + y;
    e * LN2_HI + (f + y)
}

/// `ln(1 - v)` for `v` in `[0, 1)` in lanes, accurate in relative terms for small `v` too:
/// `w = 1 - v` is rounded, and `ln w · (-v) / (w - 1)` undoes the rounding (Goldberg's
/// `log1p`; `w - 1` is exact). NaN gives NaN.
#[inline(always)]
fn ln_one_minus_lanes(v: f32x8) -> f32x8 {
    let w = f32x8::ONE - v;
    let r = ln_lanes(w) * (-v / (w - f32x8::ONE));
    w.simd_eq(f32x8::ONE).select(-v, r)
}

/// The scalar twin of [`ln_one_minus_lanes`].
#[inline]
fn ln_one_minus_scalar(v: f32) -> f32 {
    let w = 1.0 - v;
    if w == 1.0 {
        -v
    } else {
        ln_scalar(w) * (-v / (w - 1.0))
    }
}

/// The profile of a compact kernel: `ln K(u)` from the Gaussian score `g = -u²/2` of the same
/// bandwidth, `-inf` outside the support, NaN for NaN.
pub(crate) const EPANECHNIKOV: u8 = 0;
/// See [`EPANECHNIKOV`]: `3·ln(1 - u³)`.
pub(crate) const TRICUBE: u8 = 1;
/// See [`EPANECHNIKOV`]: `0` on `u ≤ 1`.
pub(crate) const UNIFORM: u8 = 2;

/// `ln K(u)` of profile `P` from `g = -u²/2`, in lanes.
#[inline(always)]
fn profile_lanes<const P: u8>(g: f32x8) -> f32x8 {
    let v = g * f32x8::splat(-2.0);
    let ninf = f32x8::splat(f32::NEG_INFINITY);
    match P {
        EPANECHNIKOV => v.simd_ge(f32x8::ONE).select(ninf, ln_one_minus_lanes(v)),
        TRICUBE => {
            let c = v * v.sqrt();
            let r = ln_one_minus_lanes(c) * f32x8::splat(3.0);
            c.simd_ge(f32x8::ONE).select(ninf, r)
        }
        // v·0 keeps NaN as NaN.
        _ => v.simd_gt(f32x8::ONE).select(ninf, v * f32x8::ZERO),
    }
}

/// `ln K(u)` of profile `P` from `g = -u²/2`: the scalar twin of [`profile_lanes`], and the
/// definition of the compact kernels' scores.
#[inline]
pub(crate) fn profile_scalar<const P: u8>(g: f32) -> f32 {
    let v = g * -2.0;
    if v.is_nan() {
        return v;
    }
    match P {
        EPANECHNIKOV if v < 1.0 => ln_one_minus_scalar(v),
        TRICUBE => {
            // Not `f32::sqrt`: `libm` keeps the core free of std; a square root is exact.
            let c = v * libm::sqrtf(v);
            if c < 1.0 {
                3.0 * ln_one_minus_scalar(c)
            } else {
                f32::NEG_INFINITY
            }
        }
        UNIFORM if v <= 1.0 => 0.0,
        _ => f32::NEG_INFINITY,
    }
}

/// `s[i] = profile(s[i])` (profile `P`, see [`profile_lanes`]) in place; the tail is padded
/// into a full lane so that every element is rounded the same way.
#[inline]
pub(crate) fn profile_in_place<const P: u8>(s: &mut [f32]) {
    if !SIMD {
        for v in s {
            *v = profile_scalar::<P>(*v);
        }
        return;
    }
    let (body, tail) = s.as_chunks_mut::<LANES>();
    for c in body {
        *c = profile_lanes::<P>(load(c)).to_array();
    }
    if !tail.is_empty() {
        let mut pad = [0.0; LANES];
        pad[..tail.len()].copy_from_slice(tail);
        let e = profile_lanes::<P>(load(&pad)).to_array();
        tail.copy_from_slice(&e[..tail.len()]);
    }
}

#[inline(always)]
fn load(c: &[f32; LANES]) -> f32x8 {
    f32x8::new(*c)
}

/// `s[i] = exp(s[i] - m)` in place; returns the sum of the results.
#[inline]
pub(crate) fn exp_shift_sum(s: &mut [f32], m: f32) -> f32 {
    if HELIUM {
        return exp_shift_sum_helium(s, m);
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(r) = crate::x86::exp_shift_sum(crate::x86::Chosen::active(), s, m) {
        return r;
    }
    if !SIMD {
        let mut sum = 0.0;
        for v in s {
            *v = exp_scalar(*v - m);
            sum += *v;
        }
        return sum;
    }
    let mv = f32x8::splat(m);
    let (body, tail) = s.as_chunks_mut::<LANES>();
    let mut acc = [f32x8::ZERO; 2];
    let mut pairs = body.chunks_exact_mut(2);
    for pair in &mut pairs {
        for (a, c) in acc.iter_mut().zip(pair.iter_mut()) {
            let e = exp_lanes_nonpositive(load(c) - mv);
            *c = e.to_array();
            *a += e;
        }
    }
    for c in pairs.into_remainder() {
        let e = exp_lanes_nonpositive(load(c) - mv);
        *c = e.to_array();
        acc[0] += e;
    }
    if !tail.is_empty() {
        // Pad with -inf: exp gives 0 there, and every element is rounded as in the body.
        let mut pad = [f32::NEG_INFINITY; LANES];
        pad[..tail.len()].copy_from_slice(tail);
        let e = exp_lanes_nonpositive(load(&pad) - mv);
        let e = e.to_array();
        tail.copy_from_slice(&e[..tail.len()]);
        acc[1] += f32x8::new(e);
    }
    (acc[0] + acc[1]).reduce_add()
}

/// `(Σ_i exp(s_i - m), Σ_i exp(s_i - m)·y_i)` over the elements present in both `s` and `y`,
/// in one pass with four accumulators (the fused form of [`exp_shift_sum`] and [`dot`] for
/// one-column values; `s` is not written). `m` must be at least every `s_i` (a running
/// maximum). Every `exp` is rounded as in [`exp_shift_sum`]: the tail is padded with `-inf`
/// into a full lane.
#[inline]
pub(crate) fn exp_shift_sum_dot(s: &[f32], y: &[f32], m: f32) -> (f32, f32) {
    #[cfg(target_arch = "x86_64")]
    if let Some(r) = crate::x86::exp_shift_sum_dot(crate::x86::Chosen::active(), s, y, m) {
        return r;
    }
    let n = s.len().min(y.len());
    let (Some(s), Some(y)) = (s.get(..n), y.get(..n)) else {
        return (0.0, 0.0);
    };
    if !SIMD {
        let (mut sum, mut dot) = (0.0f32, 0.0f32);
        for (v, w) in s.iter().zip(y) {
            let e = exp_scalar(*v - m);
            sum += e;
            dot += e * w;
        }
        return (sum, dot);
    }
    let mv = f32x8::splat(m);
    let (sb, st) = s.as_chunks::<LANES>();
    let (yb, yt) = y.as_chunks::<LANES>();
    // One pair of accumulators: the exponentials of successive chunks are independent, so the
    // out-of-order core overlaps them; with a second pair the AVX2 build spilled registers
    // (`fit::loo_cv`, N = 4096: 7.08 instructions per evaluation against 7.18 with two).
    let (mut sum, mut dot) = (f32x8::ZERO, f32x8::ZERO);
    for (sc, yc) in sb.iter().zip(yb) {
        let e = exp_lanes_nonpositive(load(sc) - mv);
        sum += e;
        dot = e.mul_add(load(yc), dot);
    }
    if !st.is_empty() {
        let mut ps = [f32::NEG_INFINITY; LANES];
        let mut py = [0.0f32; LANES];
        ps[..st.len()].copy_from_slice(st);
        py[..yt.len().min(st.len())].copy_from_slice(&yt[..yt.len().min(st.len())]);
        let e = exp_lanes_nonpositive(load(&ps) - mv);
        sum += e;
        dot = e.mul_add(load(&py), dot);
    }
    (sum.reduce_add(), dot.reduce_add())
}

/// `exp(x)` for every element, in lanes (the public face of [`exp_lanes`]), NaN kept as NaN as
/// [`exp_scalar`] keeps it. The hot loops never pass NaN ([`max_score`] has rejected it first),
/// so only this entry point pays for the select.
#[inline]
pub(crate) fn exp_in_place(s: &mut [f32]) {
    if !SIMD {
        for v in s {
            *v = exp_scalar(*v);
        }
        return;
    }
    let (body, tail) = s.as_chunks_mut::<LANES>();
    for c in body {
        let x = load(c);
        *c = x.simd_eq(x).select(exp_lanes(x), x).to_array();
    }
    if !tail.is_empty() {
        let mut pad = [0.0; LANES];
        pad[..tail.len()].copy_from_slice(tail);
        let x = load(&pad);
        let e = x.simd_eq(x).select(exp_lanes(x), x).to_array();
        tail.copy_from_slice(&e[..tail.len()]);
    }
}

/// The largest score and whether any score is `-inf` (no weight), or `Err(ScoreOverflow)` if a
/// score is NaN or `+inf`. The maximum is `-inf` when every score is (or `s` is empty).
///
/// The lanes only look for non-finite scores; a block that has one is scanned again in scalar
/// code ([`max_score_cold`]), so finite blocks (every Gaussian and softmax-dot block in range)
/// cost what they cost before `-inf` meant "no weight".
#[inline]
pub(crate) fn max_score(s: &[f32]) -> Result<(f32, bool), crate::Error> {
    if HELIUM {
        return max_score_helium(s);
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(r) = crate::x86::max_score(crate::x86::Chosen::active(), s) {
        return r;
    }
    if !SIMD {
        let (mut m, mut poison) = (f32::NEG_INFINITY, 0.0f32);
        for &v in s {
            // Not `f32::max` (a libm call on Cortex-M4); NaN is caught by the poison.
            if v > m {
                m = v;
            }
            poison += v * 0.0;
        }
        return if poison == 0.0 {
            Ok((m, false))
        } else {
            max_score_cold(s)
        };
    }
    let (body, tail) = s.as_chunks::<LANES>();
    let mut mx = f32x8::splat(f32::NEG_INFINITY);
    // x·0 is 0 for finite x and NaN for ±inf or NaN: one NaN poisons the sum.
    let mut poison = f32x8::ZERO;
    for c in body {
        let v = load(c);
        mx = mx.fast_max(v);
        poison = v.mul_add(f32x8::ZERO, poison);
    }
    let mut m = mx.to_array().into_iter().fold(f32::NEG_INFINITY, f32::max);
    let mut p = poison.reduce_add();
    for &v in tail {
        m = m.max(v);
        p += v * 0.0;
    }
    if p == 0.0 {
        Ok((m, false))
    } else {
        max_score_cold(s)
    }
}

/// [`max_score`] of a block with a non-finite score, one score at a time.
#[cold]
#[inline(never)]
pub(crate) fn max_score_cold(s: &[f32]) -> Result<(f32, bool), crate::Error> {
    let (mut m, mut gaps) = (f32::NEG_INFINITY, false);
    for &v in s {
        // NaN and +inf both fail `v < inf`.
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        if !(v < f32::INFINITY) {
            return Err(crate::Error::ScoreOverflow);
        }
        if v > m {
            m = v;
        } else if v == f32::NEG_INFINITY {
            gaps = true;
        }
    }
    Ok((m, gaps))
}

/// True if every element is finite.
#[inline]
pub(crate) fn all_finite(xs: &[f32]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if let Some(r) = crate::x86::all_finite(crate::x86::Chosen::active(), xs) {
        return r;
    }
    if !SIMD {
        return xs.iter().fold(0.0f32, |p, v| p + v * 0.0) == 0.0;
    }
    let (body, tail) = xs.as_chunks::<LANES>();
    let mut poison = [f32x8::ZERO; 2];
    let mut pairs = body.chunks_exact(2);
    for pair in &mut pairs {
        poison[0] = load(&pair[0]).mul_add(f32x8::ZERO, poison[0]);
        poison[1] = load(&pair[1]).mul_add(f32x8::ZERO, poison[1]);
    }
    for c in pairs.remainder() {
        poison[0] = load(c).mul_add(f32x8::ZERO, poison[0]);
    }
    let mut p = (poison[0] + poison[1]).reduce_add();
    for &v in tail {
        p += v * 0.0;
    }
    p == 0.0
}

/// `Σ a_i b_i` with four accumulators.
#[inline]
pub(crate) fn dot<E: Element>(a: &[f32], b: &[E]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if let Some(r) = crate::x86::dot(crate::x86::Chosen::active(), a, b) {
        return r;
    }
    let (ab, at) = a.as_chunks::<LANES>();
    let (bb, bt) = b.as_chunks::<LANES>();
    let mut acc = [f32x8::ZERO; 4];
    let mut ai = ab.chunks_exact(4);
    let mut bi = bb.chunks_exact(4);
    for (a4, b4) in (&mut ai).zip(&mut bi) {
        for k in 0..4 {
            acc[k] = load(&a4[k]).mul_add(E::lanes(&b4[k]), acc[k]);
        }
    }
    for (x, y) in ai.remainder().iter().zip(bi.remainder()) {
        acc[0] = load(x).mul_add(E::lanes(y), acc[0]);
    }
    let mut s = ((acc[0] + acc[1]) + (acc[2] + acc[3])).reduce_add();
    for (x, y) in at.iter().zip(bt) {
        s += x * y.widen();
    }
    s
}

/// `Σ_j (q_j − k_j)²` (when `GAUSS`) or `Σ_j q_j k_j` over the whole lanes of four key rows, with
/// `H` accumulators per row (alternate lane chunks) so that `4H` independent FMA chains cover the
/// FMA latency.
#[inline(always)]
fn four_row_sums<const GAUSS: bool, const H: usize>(
    q: &[[f32; LANES]],
    rows: [&[[f32; LANES]]; 4],
) -> [f32; 4] {
    let mut acc = [[f32x8::ZERO; H]; 4];
    let step = |a: &mut f32x8, qv: f32x8, k: &[f32; LANES]| {
        *a = if GAUSS {
            let t = qv - load(k);
            t.mul_add(t, *a)
        } else {
            qv.mul_add(load(k), *a)
        };
    };
    let (qp, qr) = q.as_chunks::<H>();
    let [(p0, r0), (p1, r1), (p2, r2), (p3, r3)] = rows.map(<[[f32; LANES]]>::as_chunks::<H>);
    for ((((qc, k0), k1), k2), k3) in qp.iter().zip(p0).zip(p1).zip(p2).zip(p3) {
        for h in 0..H {
            let qv = load(&qc[h]);
            for (a, k) in acc.iter_mut().zip([k0, k1, k2, k3]) {
                step(&mut a[h], qv, &k[h]);
            }
        }
    }
    for ((((qc, k0), k1), k2), k3) in qr.iter().zip(r0).zip(r1).zip(r2).zip(r3) {
        let qv = load(qc);
        for (a, k) in acc.iter_mut().zip([k0, k1, k2, k3]) {
            if let Some(a0) = a.first_mut() {
                step(a0, qv, k);
            }
        }
    }
    acc.map(|a| a.iter().fold(f32x8::ZERO, |s, &x| s + x).reduce_add())
}

/// Scores of the rows of `keys` (row length `q.len()`) into `out`: `scale · Σ (q_j - k_j)²` when
/// `GAUSS`, else `scale · Σ q_j k_j`.
///
/// Rows of eight or more floats run in lanes along the row; shorter rows run eight rows at a time
/// with one lane per row.
#[inline]
pub(crate) fn row_scores<const GAUSS: bool>(q: &[f32], keys: &[f32], scale: f32, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if let Some(r) =
        crate::x86::row_scores::<GAUSS, f32>(crate::x86::Chosen::active(), q, keys, scale, out)
    {
        return r;
    }
    let d = q.len();
    if d == 0 {
        out.fill(0.0);
        return;
    }
    if !SIMD {
        for (o, k) in out.iter_mut().zip(keys.chunks_exact(d)) {
            let mut s = 0.0f32;
            for (a, b) in q.iter().zip(k) {
                s += if GAUSS { (a - b) * (a - b) } else { a * b };
            }
            *o = scale * s;
        }
        return;
    }
    // As many rows as scores, exactly: the blocked loops below pair whole blocks of rows with
    // whole blocks of scores, and give the last partial block of rows the rest of `out`.
    let n = (keys.len() / d).min(out.len());
    let (Some(out), Some(keys)) = (out.get_mut(..n), keys.get(..n * d)) else {
        return;
    };
    if d >= LANES {
        // Four rows at a time share each load of the query. A last block of fewer rows repeats
        // its first row to make four, so that every row's score is summed in the same order
        // wherever it falls (a ring buffer's two halves give the same scores as one slice).
        let (qb, qt) = q.as_chunks::<LANES>();
        // Rows by offset, not `chunks_exact(d)`: that divides by `d` once per block.
        let block = |b: &[f32], o: &mut [f32]| {
            let Some(first) = b.get(..d) else { return };
            let row = |i: usize| b.get(i * d..(i + 1) * d).unwrap_or(first);
            let split = [first, row(1), row(2), row(3)].map(<[f32]>::as_chunks::<LANES>);
            let sums = four_row_sums::<GAUSS, SCORE_CHAINS>(qb, split.map(|(b, _)| b));
            for ((o, mut s), (_, t)) in o.iter_mut().zip(sums).zip(split) {
                for (x, y) in qt.iter().zip(t) {
                    s += if GAUSS { (x - y) * (x - y) } else { x * y };
                }
                *o = scale * s;
            }
        };
        let mut blocks = keys.chunks_exact(d.saturating_mul(4));
        let mut outs = out.chunks_exact_mut(4);
        for (b, o) in (&mut blocks).zip(&mut outs) {
            block(b, o);
        }
        block(blocks.remainder(), outs.into_remainder());
        return;
    }
    // Eight rows at a time, one lane per row; a last block of fewer rows is padded with zero
    // rows, so every row is computed by the same lane arithmetic wherever it falls.
    let sv = f32x8::splat(scale);
    let lanes = |block: &[f32]| {
        let mut acc = f32x8::ZERO;
        for (j, &qj) in q.iter().enumerate() {
            let k = f32x8::new(core::array::from_fn(|l| {
                block.get(l * d + j).copied().unwrap_or(0.0)
            }));
            let qv = f32x8::splat(qj);
            acc = if GAUSS {
                let t = qv - k;
                t.mul_add(t, acc)
            } else {
                qv.mul_add(k, acc)
            };
        }
        (acc * sv).to_array()
    };
    if d == 1 {
        // One float per row: the eight rows of a block are one contiguous load. The same
        // arithmetic as `lanes` (an accumulator from zero, one multiply-add), bit for bit.
        let qv = f32x8::splat(q.first().copied().unwrap_or(0.0));
        let (kb, kt) = keys.as_chunks::<LANES>();
        let (ob, ot) = out.as_chunks_mut::<LANES>();
        for (o, k) in ob.iter_mut().zip(kb) {
            let acc = if GAUSS {
                let t = qv - load(k);
                t.mul_add(t, f32x8::ZERO)
            } else {
                qv.mul_add(load(k), f32x8::ZERO)
            };
            *o = (acc * sv).to_array();
        }
        if !kt.is_empty() {
            for (o, v) in ot.iter_mut().zip(lanes(kt)) {
                *o = v;
            }
        }
        return;
    }
    let mut blocks = keys.chunks_exact(LANES * d);
    let mut outs = out.chunks_exact_mut(LANES);
    for (b, o) in (&mut blocks).zip(&mut outs) {
        for (o, v) in o.iter_mut().zip(lanes(b)) {
            *o = v;
        }
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        for (o, v) in outs.into_remainder().iter_mut().zip(lanes(rest)) {
            *o = v;
        }
    }
}

/// Scores of the rows of `keys` (row length `q.len()`) with one scale per column:
/// `Σ_j scale_j (q_j − k_j)²` (the product Gaussian, `scale_j = −1/(2h_j²)`), eight rows at a
/// time with one lane per row; a last block of fewer rows is padded with zero rows, so every
/// row is computed by the same lane arithmetic wherever it falls.
#[inline]
pub(crate) fn diagonal_scores(q: &[f32], keys: &[f32], scale: &[f32], out: &mut [f32]) {
    let d = q.len().min(scale.len());
    if d == 0 {
        out.fill(0.0);
        return;
    }
    if !SIMD {
        for (o, k) in out.iter_mut().zip(keys.chunks_exact(q.len())) {
            let mut s = 0.0f32;
            for ((a, b), c) in q.iter().zip(k).zip(scale) {
                let t = a - b;
                s += t * t * c;
            }
            *o = s;
        }
        return;
    }
    let w = q.len();
    let lanes = |block: &[f32]| {
        let mut acc = f32x8::ZERO;
        for (j, (&qj, &cj)) in q.iter().zip(scale).enumerate() {
            let k = f32x8::new(core::array::from_fn(|l| {
                block.get(l * w + j).copied().unwrap_or(0.0)
            }));
            let t = f32x8::splat(qj) - k;
            acc = (t * t).mul_add(f32x8::splat(cj), acc);
        }
        acc.to_array()
    };
    let n = (keys.len() / w).min(out.len());
    let (Some(out), Some(keys)) = (out.get_mut(..n), keys.get(..n * w)) else {
        return;
    };
    let mut blocks = keys.chunks_exact(LANES * w);
    let mut outs = out.chunks_exact_mut(LANES);
    for (b, o) in (&mut blocks).zip(&mut outs) {
        for (o, v) in o.iter_mut().zip(lanes(b)) {
            *o = v;
        }
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        for (o, v) in outs.into_remainder().iter_mut().zip(lanes(rest)) {
            *o = v;
        }
    }
}

/// The scores `Σ_k scale_k (q_k − x_jk)²` of the first `out.len()` rows of a tile stored by
/// columns (`cols[k·stride + j]` is coordinate `k` of row `j`): the arithmetic of
/// [`diagonal_scores`] (coordinates in order, one multiply-add each), bit for bit, with
/// contiguous loads. A last partial block is padded with zero rows.
#[inline]
pub(crate) fn column_scores(
    q: &[f32],
    cols: &[f32],
    stride: usize,
    scale: &[f32],
    out: &mut [f32],
) {
    let d = q.len().min(scale.len());
    let n = out.len().min(stride);
    let Some(out) = out.get_mut(..n) else { return };
    let col = |k: usize| cols.get(k * stride..k * stride + n).unwrap_or(&[]);
    if !SIMD {
        out.fill(0.0);
        for (k, (&qk, &ck)) in q.iter().zip(scale).enumerate().take(d) {
            for (o, x) in out.iter_mut().zip(col(k)) {
                let t = qk - x;
                *o += t * t * ck;
            }
        }
        return;
    }
    // Coordinate by coordinate, the partial sums kept in `out`: the first coordinate starts
    // from zero as the lanes of `diagonal_scores` do, so the sums are the same bit for bit.
    let (ob, ot) = out.as_chunks_mut::<LANES>();
    let start = ob.len() * LANES;
    let mut tail = [0.0f32; LANES];
    for (k, (&qk, &ck)) in q.iter().zip(scale).enumerate().take(d) {
        let c = col(k);
        let (cb, ct) = c.as_chunks::<LANES>();
        let (qv, cv) = (f32x8::splat(qk), f32x8::splat(ck));
        for (o, x) in ob.iter_mut().zip(cb) {
            let acc = if k == 0 { f32x8::ZERO } else { load(o) };
            let t = qv - load(x);
            *o = (t * t).mul_add(cv, acc).to_array();
        }
        if !ot.is_empty() {
            let mut pad = [0.0f32; LANES];
            for (p, v) in pad.iter_mut().zip(c.get(start..).unwrap_or(ct)) {
                *p = *v;
            }
            let acc = if k == 0 { f32x8::ZERO } else { load(&tail) };
            let t = qv - load(&pad);
            tail = (t * t).mul_add(cv, acc).to_array();
        }
    }
    for (o, v) in ot.iter_mut().zip(tail) {
        *o = v;
    }
}

/// Over the rows `j` present in `w` and `y` of a tile stored by columns (as [`column_scores`]):
/// returns `Σ_j w_j y_j`, and with `moments = Some((sq, ysq))` adds `Σ_j w_j u_jk` into `sq[k]`
/// and `Σ_j w_j y_j u_jk` into `ysq[k]`, `u_jk = (q_k − x_jk)² · inv[k]`, for every coordinate
/// `k < q.len()`: the sums of the per-dimension leave-one-out gradient. Two accumulators per coordinate; a last
/// partial block is padded with zero weights.
#[inline]
pub(crate) fn column_moments(
    q: &[f32],
    cols: &[f32],
    stride: usize,
    inv: &[f32],
    w: &[f32],
    y: &[f32],
    moments: Option<(&mut [f32], &mut [f32])>,
) -> f32 {
    let n = w.len().min(y.len()).min(stride);
    let (Some(w), Some(y)) = (w.get(..n), y.get(..n)) else {
        return 0.0;
    };
    let col = |k: usize| cols.get(k * stride..k * stride + n).unwrap_or(&[]);
    if !SIMD {
        let mut swy = 0.0f32;
        for (a, b) in w.iter().zip(y) {
            swy += a * b;
        }
        if let Some((sq, ysq)) = moments {
            for (k, (((&qk, &ik), s), ys)) in q.iter().zip(inv).zip(sq).zip(ysq).enumerate() {
                let (mut a, mut b) = (0.0f32, 0.0f32);
                for ((wj, yj), x) in w.iter().zip(y).zip(col(k)) {
                    let t = qk - x;
                    let t2 = t * t * ik;
                    a += wj * t2;
                    b += wj * yj * t2;
                }
                *s += a;
                *ys += b;
            }
        }
        return swy;
    }
    let (wb, wt) = w.as_chunks::<LANES>();
    let (yb, yt) = y.as_chunks::<LANES>();
    let mut pw = [0.0f32; LANES];
    let mut py = [0.0f32; LANES];
    for (p, v) in pw.iter_mut().zip(wt) {
        *p = *v;
    }
    for (p, v) in py.iter_mut().zip(yt).take(wt.len()) {
        *p = *v;
    }
    let tail = !wt.is_empty();
    let mut swy = f32x8::ZERO;
    for (wc, yc) in wb.iter().zip(yb) {
        swy = load(wc).mul_add(load(yc), swy);
    }
    if tail {
        swy = load(&pw).mul_add(load(&py), swy);
    }
    if let Some((sq, ysq)) = moments {
        let start = wb.len() * LANES;
        for (k, (((&qk, &ik), s), ys)) in q.iter().zip(inv).zip(sq).zip(ysq).enumerate() {
            let c = col(k);
            let (cb, _) = c.as_chunks::<LANES>();
            let qv = f32x8::splat(qk);
            let iv = f32x8::splat(ik);
            let (mut a, mut b) = (f32x8::ZERO, f32x8::ZERO);
            for ((wc, yc), xc) in wb.iter().zip(yb).zip(cb) {
                let wv = load(wc);
                let t = qv - load(xc);
                let t2 = t * t * iv;
                a = wv.mul_add(t2, a);
                b = (wv * load(yc)).mul_add(t2, b);
            }
            if tail {
                let mut px = [0.0f32; LANES];
                for (p, v) in px.iter_mut().zip(c.get(start..).unwrap_or(&[])) {
                    *p = *v;
                }
                let wv = load(&pw);
                let t = qv - load(&px);
                let t2 = t * t * iv;
                a = wv.mul_add(t2, a);
                b = (wv * load(&py)).mul_add(t2, b);
            }
            *s += a.reduce_add();
            *ys += b.reduce_add();
        }
    }
    swy.reduce_add()
}

/// `acc[j] += Σ_i p_i · values[i·dv + j]` over the rows present in both `p` and `values`.
#[inline]
pub(crate) fn weighted_sum_into<E: Element>(p: &[f32], values: &[E], dv: usize, acc: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if let Some(r) = crate::x86::weighted_sum_into(crate::x86::Chosen::active(), p, values, dv, acc)
    {
        return r;
    }
    if dv == 0 {
        return;
    }
    // The common rows, once, so that no path below can pair a weight with another row.
    let n = p.len().min(values.len() / dv);
    let (Some(p), Some(values)) = (p.get(..n), values.get(..n.saturating_mul(dv))) else {
        return;
    };
    if !SIMD {
        for (&w, row) in p.iter().zip(values.chunks_exact(dv)) {
            for (a, v) in acc.iter_mut().zip(row) {
                *a += w * v.widen();
            }
        }
        return;
    }
    if dv == 1 {
        if let Some(a) = acc.first_mut() {
            *a += dot(p, values);
        }
        return;
    }
    if dv >= LANES {
        // Column blocks of up to eight lane vectors (64 floats; four without WIDE_REGISTERS) stay
        // in registers over every row of the call, so the accumulator touches memory once per
        // tile, and each row feeds up to eight independent FMA chains.
        let (acc_body, acc_tail) = acc.as_chunks_mut::<LANES>();
        let mut blocks = acc_body;
        let mut col = 0usize;
        while !blocks.is_empty() {
            let taken = match blocks.len() {
                8.. if WIDE_REGISTERS => column_block::<E, 8>(p, values, dv, col, &mut blocks),
                4.. if WIDE_REGISTERS => column_block::<E, 4>(p, values, dv, col, &mut blocks),
                2.. => column_block::<E, 2>(p, values, dv, col, &mut blocks),
                _ => column_block::<E, 1>(p, values, dv, col, &mut blocks),
            };
            if taken == 0 {
                break;
            }
            col = col.saturating_add(taken * LANES);
        }
        if !acc_tail.is_empty() {
            for (&w, row) in p.iter().zip(values.chunks_exact(dv)) {
                let Some(rt) = row.get(col..) else { break };
                for (a, r) in acc_tail.iter_mut().zip(rt) {
                    *a += w * r.widen();
                }
            }
        }
        return;
    }
    // 1 < dv < 8: eight rows at a time, one lane per row, one accumulator per column.
    let mut cols = [f32x8::ZERO; LANES];
    let mut ps = p.chunks_exact(LANES);
    let mut blocks = values.chunks_exact(LANES * dv);
    for (pc, block) in (&mut ps).zip(&mut blocks) {
        let pv = f32x8::new(core::array::from_fn(|l| pc.get(l).copied().unwrap_or(0.0)));
        for (j, c) in cols.iter_mut().enumerate().take(dv) {
            let v = f32x8::new(core::array::from_fn(|l| {
                block.get(l * dv + j).map_or(0.0, |x| x.widen())
            }));
            *c = pv.mul_add(v, *c);
        }
    }
    for (a, c) in acc.iter_mut().zip(&cols) {
        *a += c.reduce_add();
    }
    for (&w, row) in ps
        .remainder()
        .iter()
        .zip(blocks.remainder().chunks_exact(dv))
    {
        for (a, v) in acc.iter_mut().zip(row) {
            *a += w * v.widen();
        }
    }
}

/// `acc[..G] += Σ_i p_i · values[i][col .. col + 8G]` with the `G` accumulator lanes held in
/// registers over all rows; takes the first `G` lane blocks off `blocks` and returns `G`, or 0
/// (touching nothing) if fewer than `G` are left.
#[inline(always)]
fn column_block<E: Element, const G: usize>(
    p: &[f32],
    values: &[E],
    dv: usize,
    col: usize,
    blocks: &mut &mut [[f32; LANES]],
) -> usize {
    let Some((acc, rest)) = core::mem::take(blocks).split_first_chunk_mut::<G>() else {
        return 0;
    };
    *blocks = rest;
    let mut regs: [f32x8; G] = core::array::from_fn(|j| load(&acc[j]));
    let end = col.saturating_add(G * LANES);
    for (&w, row) in p.iter().zip(values.chunks_exact(dv)) {
        let Some(seg) = row.get(col..end) else { break };
        let Some(chunks) = seg.as_chunks::<LANES>().0.first_chunk::<G>() else {
            break;
        };
        let wv = f32x8::splat(w);
        for (r, c) in regs.iter_mut().zip(chunks) {
            *r = wv.mul_add(E::lanes(c), *r);
        }
    }
    for (a, r) in acc.iter_mut().zip(regs) {
        *a = r.to_array();
    }
    G
}

/// `xs[i] *= f`.
#[inline]
pub(crate) fn scale_in_place(xs: &mut [f32], f: f32) {
    let fv = f32x8::splat(f);
    let (body, tail) = xs.as_chunks_mut::<LANES>();
    for c in body {
        *c = (load(c) * fv).to_array();
    }
    for x in tail {
        *x *= f;
    }
}

/// `xs[i] /= d`.
#[inline]
pub(crate) fn div_in_place(xs: &mut [f32], d: f32) {
    if HELIUM && xs.len() > DIV_BY_RECIPROCAL_ABOVE {
        // Helium has no vector divide: one reciprocal, then lanes of multiplies (two roundings
        // instead of one: within 2^-23 of the quotient, relative).
        let r = 1.0 / d;
        for x in xs.iter_mut() {
            *x *= r;
        }
        return;
    }
    let dv = f32x8::splat(d);
    let (body, tail) = xs.as_chunks_mut::<LANES>();
    for c in body {
        *c = (load(c) / dv).to_array();
    }
    for x in tail {
        *x /= d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, edge_values, lcg};
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn exp_lanes_match_scalar_twin_at_every_length() {
        let mut rng = lcg(7);
        for n in 0..=67 {
            let xs: Vec<f32> = (0..n).map(|_| -90.0 * rng()).collect();
            let mut lanes = xs.clone();
            exp_in_place(&mut lanes);
            for (x, got) in xs.iter().zip(&lanes) {
                let want = exp_scalar(*x);
                // The lanes may fuse multiply-adds the scalar twin rounds twice.
                assert_close(
                    f64::from(*got),
                    f64::from(want),
                    2.0 * f64::from(f32::EPSILON) * f64::from(want),
                    "exp",
                );
            }
        }
    }

    #[test]
    fn exp_edges() {
        assert_eq!(exp_scalar(0.0), 1.0);
        assert_eq!(exp_scalar(-0.0), 1.0);
        assert_eq!(exp_scalar(-100.0), 0.0);
        assert_eq!(exp_scalar(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_scalar(5.0), 1.0, "positive inputs are clamped");
        assert!(exp_scalar(f32::NAN).is_nan());
        let mut v = [
            0.0,
            -0.0,
            -100.0,
            f32::NEG_INFINITY,
            EXP_MIN,
            -f32::MAX,
            3.0,
            -1e-30,
        ];
        exp_in_place(&mut v);
        assert_eq!(&v[..4], &[1.0, 1.0, 0.0, 0.0]);
        assert!(v[4] > 0.0 && v[4] <= f32::MIN_POSITIVE * 1.000_001);
        assert_eq!(v[5], 0.0);
        assert_eq!(v[6], 1.0);
        assert_eq!(v[7], 1.0);
    }

    /// The lanes and the scalar twin agree on every special input, NaN included (issue 11,
    /// class 3: the lanes mapped NaN to 1.0). The reference is `f64::exp` of the clamped input.
    #[test]
    fn exp_in_place_agrees_with_exp_scalar_on_special_values() {
        let tiny = f32::from_bits(1);
        let specials = [
            f32::NAN,
            -f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            0.0,
            -0.0,
            tiny,
            -tiny,
            f32::MIN_POSITIVE / 2.0,
            -f32::MIN_POSITIVE / 2.0,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
            EXP_MIN,
            -87.4,
            f32::MAX,
            f32::MIN,
            1.0,
            -1.0,
        ];
        // Every position in a full lane and in a tail.
        for n in [1, 7, 8, 9, 17] {
            for (i, &x) in specials.iter().enumerate() {
                let mut v = vec![-0.5f32; n];
                let pos = i % n;
                v[pos] = x;
                exp_in_place(&mut v);
                let (got, twin) = (v[pos], exp_scalar(x));
                let want = if x.is_nan() {
                    f64::NAN
                } else if x < EXP_MIN {
                    0.0
                } else {
                    f64::from(x.min(0.0)).exp()
                };
                if want.is_nan() {
                    assert!(got.is_nan() && twin.is_nan(), "exp({x}): {got}, {twin}");
                    continue;
                }
                // The lanes may fuse multiply-adds the scalar twin rounds twice.
                assert!(
                    (f64::from(got) - f64::from(twin)).abs()
                        <= 2.0 * f64::from(f32::EPSILON) * f64::from(twin),
                    "lanes {got:e} vs scalar {twin:e} at {x:e}"
                );
                assert!(
                    crate::testing::ulp_error(got, want) <= 2.0,
                    "exp({x:e}) = {got:e}, want {want:e}"
                );
                for (j, &o) in v.iter().enumerate() {
                    if j != pos {
                        assert_eq!(o, exp_scalar(-0.5), "neighbour of {x} at {j}");
                    }
                }
            }
        }
    }

    /// Every 251st `f32` in `[EXP_MIN, 0]`: the exhaustive sweep is `examples/exp_ulp.rs`.
    #[test]
    fn exp_within_two_ulp_sampled() {
        let lo = EXP_MIN.to_bits();
        let mut worst = 0.0f64;
        let mut buf = Vec::new();
        let mut bits = 0x8000_0000u32;
        while bits <= lo {
            buf.push(f32::from_bits(bits));
            bits += 251;
        }
        let mut got = buf.clone();
        exp_in_place(&mut got);
        for (x, g) in buf.iter().zip(&got) {
            worst = worst.max(crate::testing::ulp_error(*g, f64::from(*x).exp()));
            worst = worst.max(crate::testing::ulp_error(
                exp_scalar(*x),
                f64::from(*x).exp(),
            ));
        }
        assert!(worst <= 2.0, "worst exp error {worst} ulp");
    }

    /// The lane `ln` and its scalar twin within 2 ulp of `f64` over `[2^-24, 1]` (every 97th
    /// `f32`, and every `f32` in the last binade below 1 at a stride of 7), where the compact
    /// kernels use it; the twins within 2 ulp of each other; and `ln(1 - v)` (Goldberg's
    /// `log1p`) within 3 ulp of `f64::ln_1p` for `v` in `[0, 1)`, small `v` included.
    #[test]
    fn ln_within_two_ulp_of_f64() {
        let (lo, one) = (2f32.powi(-24).to_bits(), 1f32.to_bits());
        let xs: Vec<f32> = (lo..=one)
            .step_by(97)
            .chain((0.5f32.to_bits()..one).step_by(7))
            .chain([one])
            .map(f32::from_bits)
            .collect();
        let mut worst = (0.0f64, 0.0f64);
        for c in xs.chunks(LANES) {
            let mut pad = [1.0f32; LANES];
            pad[..c.len()].copy_from_slice(c);
            let lanes = ln_lanes(f32x8::new(pad)).to_array();
            for (x, l) in c.iter().zip(lanes) {
                let want = f64::from(*x).ln();
                let twin = ln_scalar(*x);
                let (el, es) = if want == 0.0 {
                    (f64::from(l.abs()) * 1e30, f64::from(twin.abs()) * 1e30)
                } else {
                    (
                        crate::testing::ulp_error(l, want),
                        crate::testing::ulp_error(twin, want),
                    )
                };
                worst = (worst.0.max(el), worst.1.max(es));
                assert!(
                    crate::testing::ulp_error(l, f64::from(twin)) <= 2.0 || l == twin,
                    "lanes {l:e} vs twin {twin:e} at {x:e}"
                );
            }
        }
        assert!(
            worst.0 <= 2.0 && worst.1 <= 2.0,
            "worst ln error {worst:?} ulp"
        );
        let mut rng = crate::testing::lcg(13);
        let vs: Vec<f32> = (0..4000)
            .map(|i| match i % 4 {
                0 => rng(),
                1 => rng() * 1e-4,
                2 => 2f32.powf(-30.0 * rng()),
                _ => 1.0 - 2f32.powf(-24.0 * rng()),
            })
            .filter(|v| *v < 1.0)
            .collect();
        for c in vs.chunks(LANES) {
            let mut pad = [0.0f32; LANES];
            pad[..c.len()].copy_from_slice(c);
            let lanes = ln_one_minus_lanes(f32x8::new(pad)).to_array();
            for (v, l) in c.iter().zip(lanes) {
                let want = (-f64::from(*v)).ln_1p();
                for got in [l, ln_one_minus_scalar(*v)] {
                    assert!(
                        crate::testing::ulp_error(got, want) <= 3.0,
                        "ln(1 - {v:e}) = {got:e}, want {want:e}"
                    );
                }
            }
        }
        assert!(ln_one_minus_lanes(f32x8::splat(f32::NAN)).to_array()[0].is_nan());
        assert!(ln_one_minus_scalar(f32::NAN).is_nan());
        for p in [
            profile_scalar::<EPANECHNIKOV>,
            profile_scalar::<TRICUBE>,
            profile_scalar::<UNIFORM>,
        ] {
            assert!(p(f32::NAN).is_nan());
            assert_eq!(p(f32::NEG_INFINITY), f32::NEG_INFINITY);
        }
        let mut s = [f32::NAN, f32::NEG_INFINITY, -0.5, 0.0, -0.125];
        profile_in_place::<UNIFORM>(&mut s);
        assert!(s[0].is_nan());
        assert_eq!(&s[1..], &[f32::NEG_INFINITY, 0.0, 0.0, 0.0]);
    }

    fn scalar_rows(gauss: bool, q: &[f32], keys: &[f32], scale: f32) -> Vec<f64> {
        keys.chunks_exact(q.len())
            .map(|k| {
                let s: f64 = q
                    .iter()
                    .zip(k)
                    .map(|(a, b)| {
                        let (a, b) = (f64::from(*a), f64::from(*b));
                        if gauss { (a - b) * (a - b) } else { a * b }
                    })
                    .sum();
                s * f64::from(scale)
            })
            .collect()
    }

    #[test]
    fn row_scores_match_plain_sums_at_every_shape() {
        let mut rng = lcg(11);
        // Every width up to 20, then odd and even numbers of lane chunks (paired accumulators).
        for d in (1..=20).chain([24, 31, 40, 64, 72, 136]) {
            for rows in 0..=67 {
                let q: Vec<f32> = (0..d).map(|_| 4.0 * rng() - 2.0).collect();
                let keys: Vec<f32> = (0..d * rows).map(|_| 4.0 * rng() - 2.0).collect();
                for gauss in [true, false] {
                    let mut out = vec![f32::NAN; rows];
                    if gauss {
                        row_scores::<true>(&q, &keys, -0.7, &mut out);
                    } else {
                        row_scores::<false>(&q, &keys, 0.3, &mut out);
                    }
                    let scale = if gauss { -0.7 } else { 0.3 };
                    let want = scalar_rows(gauss, &q, &keys, scale);
                    for (k, (g, w)) in keys.chunks_exact(d).zip(out.iter().zip(&want)) {
                        let mag: f64 = q
                            .iter()
                            .zip(k)
                            .map(|(a, b)| f64::from((a * b).abs() + (a - b) * (a - b)))
                            .sum();
                        let tol = 4.0
                            * f64::from(f32::EPSILON)
                            * mag
                            * f64::from(scale).abs()
                            * (d as f64).sqrt();
                        assert_close(f64::from(*g), *w, tol, "score");
                    }
                }
            }
        }
    }

    /// The fused exp–sum–dot against the plain sums of its scalar twin's exponentials, at every
    /// length through two pairs of lanes and a tail (and a `y` shorter than `s`).
    #[test]
    fn exp_shift_sum_dot_matches_plain_sums() {
        let mut rng = lcg(9);
        for n in 0..=41usize {
            let s: Vec<f32> = (0..n).map(|_| -30.0 * rng()).collect();
            let y: Vec<f32> = (0..n).map(|_| 2.0 * rng() - 1.0).collect();
            // `m` at least every score, as the callers pass it: the maximum, or above it.
            let top = s.iter().copied().fold(-100.0f32, f32::max);
            for (m, ny) in [(top, n), (top + 3.0, n.saturating_sub(3))] {
                let (sum, dot) = exp_shift_sum_dot(&s, &y[..ny], m);
                let e: Vec<f64> = s[..ny]
                    .iter()
                    .map(|v| f64::from(exp_scalar(v - m)))
                    .collect();
                let want_sum: f64 = e.iter().sum();
                let want_dot: f64 = e.iter().zip(&y).map(|(e, y)| e * f64::from(*y)).sum();
                let tol = 4.0 * f64::from(f32::EPSILON) * (1.0 + want_sum);
                assert_close(f64::from(sum), want_sum, tol, "sum");
                assert_close(f64::from(dot), want_dot, tol, "dot");
            }
        }
    }

    #[test]
    fn weighted_sum_matches_plain_sums_at_every_shape() {
        let mut rng = lcg(5);
        // Every width up to 19, then 3 to 17 lane blocks: each register-block size and their mix.
        for dv in (1..=19).chain([24, 32, 40, 56, 64, 72, 100, 120, 136]) {
            for rows in 0..=67 {
                let p: Vec<f32> = (0..rows).map(|_| rng()).collect();
                let v: Vec<f32> = (0..rows * dv).map(|_| 2.0 * rng() - 1.0).collect();
                let mut acc = vec![0.5f32; dv];
                weighted_sum_into(&p, &v, dv, &mut acc);
                for j in 0..dv {
                    let want: f64 = 0.5
                        + (0..rows)
                            .map(|i| f64::from(p[i]) * f64::from(v[i * dv + j]))
                            .sum::<f64>();
                    let tol = 4.0 * f64::from(f32::EPSILON) * (rows as f64 + 1.0);
                    assert_close(f64::from(acc[j]), want, tol, "weighted sum");
                }
            }
        }
    }

    /// "Over the rows present in both": more value rows than weights, or more weights than value
    /// rows, sums the common prefix only (the 1 < dv < 8 path paired its leftover weights with
    /// the leftover rows of a longer `values`, by position).
    #[test]
    fn weighted_sum_takes_the_rows_present_in_both() {
        let mut rng = lcg(9);
        for dv in (1..=19).chain([64, 72]) {
            for (np, nv) in [
                (10, 17),
                (17, 10),
                (8, 16),
                (9, 9),
                (3, 40),
                (40, 3),
                (0, 5),
            ] {
                let p: Vec<f32> = (0..np).map(|_| rng()).collect();
                let v: Vec<f32> = (0..nv * dv).map(|_| 2.0 * rng() - 1.0).collect();
                let mut acc = vec![0.5f32; dv];
                weighted_sum_into(&p, &v, dv, &mut acc);
                let n = np.min(nv);
                for j in 0..dv {
                    let want: f64 = 0.5
                        + (0..n)
                            .map(|i| f64::from(p[i]) * f64::from(v[i * dv + j]))
                            .sum::<f64>();
                    let tol = 4.0 * f64::from(f32::EPSILON) * (n as f64 + 1.0);
                    assert_close(f64::from(acc[j]), want, tol, "weighted sum, unequal rows");
                }
            }
        }
    }

    #[test]
    fn finite_checks_find_every_position() {
        for n in 0..=67 {
            assert!(all_finite(&vec![1.0f32; n]));
            for bad in [f32::NAN, -f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                for pos in 0..n {
                    let mut v = vec![1.0f32; n];
                    v[pos] = bad;
                    assert!(!all_finite(&v), "n={n} pos={pos}");
                    // -inf is a score of weight 0: accepted, and reported; NaN and +inf are not.
                    let want = if bad == f32::NEG_INFINITY {
                        Ok((if n > 1 { 1.0 } else { f32::NEG_INFINITY }, true))
                    } else {
                        Err(crate::Error::ScoreOverflow)
                    };
                    assert_eq!(max_score(&v), want, "n={n} pos={pos} {bad}");
                    // A NaN or +inf after or among -inf scores is still found.
                    let mut w = vec![f32::NEG_INFINITY; n];
                    w[pos] = bad;
                    let want = if bad == f32::NEG_INFINITY {
                        Ok((f32::NEG_INFINITY, true))
                    } else {
                        Err(crate::Error::ScoreOverflow)
                    };
                    assert_eq!(max_score(&w), want, "all -inf but {bad} at {pos} of {n}");
                }
            }
        }
        for v in edge_values() {
            assert_eq!(all_finite(&[v]), v.is_finite());
        }
    }

    #[test]
    fn max_and_exp_sum_at_every_length() {
        let mut rng = lcg(3);
        for n in 1..=67 {
            let s: Vec<f32> = (0..n).map(|_| 50.0 * rng() - 25.0).collect();
            let (m, gaps) = max_score(&s).unwrap();
            assert!(!gaps);
            assert_eq!(m, s.iter().copied().fold(f32::NEG_INFINITY, f32::max));
            let mut e = s.clone();
            let sum = exp_shift_sum(&mut e, m);
            let want: f64 = s.iter().map(|x| (f64::from(*x) - f64::from(m)).exp()).sum();
            assert_close(
                f64::from(sum),
                want,
                4.0 * f64::from(f32::EPSILON) * want * (n as f64).sqrt(),
                "exp sum",
            );
            let es: f32 = e.iter().sum();
            assert_close(
                f64::from(es),
                want,
                4.0 * f64::from(f32::EPSILON) * want * n as f64,
                "stored exps",
            );
        }
    }

    /// The worst ulp error of [`exp_table`] over the `f32` whose bit patterns run from `-0`
    /// (0x8000_0000) to `EXP_MIN` in steps of `step`, against `f64::exp`.
    fn exp_table_worst_ulp(step: usize) -> (f64, f32) {
        let mut worst = (0.0f64, 0.0f32);
        for bits in (0x8000_0000u32..=EXP_MIN.to_bits()).step_by(step) {
            let x = f32::from_bits(bits);
            let e = crate::testing::ulp_error(exp_table(x), f64::from(x).exp());
            if e > worst.0 {
                worst = (e, x);
            }
        }
        worst
    }

    /// 1.5 ulp over a dense sample of [EXP_MIN, 0] (every 1009th `f32`, about 1.1 M values,
    /// both ends included); the table entries are 2^(j/64) correctly rounded.
    #[test]
    fn exp_table_within_1_5_ulp_sampled() {
        for (j, f) in EXP2_64_FRACTION.iter().enumerate() {
            let want = (j as f64 / 64.0).exp2() as f32;
            assert_eq!(f32::from_bits(0x3f80_0000 | f), want, "2^({j}/64)");
        }
        let (worst, at) = exp_table_worst_ulp(1009);
        assert!(worst <= 1.5, "exp_table: {worst} ulp at {at:e}");
        for x in [0.0f32, -0.0, EXP_MIN, -1e-30, -0.5, -1.0, -10.0, -87.0] {
            let e = crate::testing::ulp_error(exp_table(x), f64::from(x).exp());
            assert!(e <= 1.5, "exp_table({x:e}): {e} ulp");
        }
        assert_eq!(exp_table(0.0), 1.0);
    }

    /// Every `f32` in [EXP_MIN, 0] (1.12e9 values): `cargo test --release -p nadaraya --lib
    /// exp_table_within_1_5_ulp_exhaustive -- --ignored` (measured: 1.02 ulp at worst).
    #[test]
    #[ignore = "exhaustive, 1.12e9 values: run in release"]
    fn exp_table_within_1_5_ulp_exhaustive() {
        let (worst, at) = exp_table_worst_ulp(1);
        std::println!("exp_table: worst {worst} ulp at {at:e}");
        assert!(worst <= 1.5, "exp_table: {worst} ulp at {at:e}");
    }

    /// Outside [EXP_MIN, 0]: negligible below, NaN for NaN and ±inf, non-finite above 88.72 —
    /// what the fused passes' one check per tile relies on.
    #[test]
    fn exp_table_outside_its_range() {
        let mut x = -88.0f32;
        while x > -f32::MAX / 1.01 {
            let e = exp_table(x);
            if x > -1.36e5 {
                assert!(e.abs() < 2f32.powi(-79), "exp_table({x:e}) = {e:e}");
            } else if x > -1e19 {
                assert_eq!(e, 0.0, "exp_table({x:e})");
            } else {
                assert!(e == 0.0 || e.is_nan(), "exp_table({x:e}) = {e:e}");
            }
            x *= 1.01;
        }
        for x in [f32::NAN, f32::NEG_INFINITY, f32::INFINITY] {
            assert!(exp_table(x).is_nan(), "exp_table({x:e}) = {}", exp_table(x));
        }
        for x in [88.8f32, 100.0, 1e6, f32::MAX] {
            assert!(
                !exp_table(x).is_finite(),
                "exp_table({x:e}) = {}",
                exp_table(x)
            );
        }
        let mut v = [0.0f32, -1.0, -100.0, 0.5];
        let sum = exp_table_shift_sum(&mut v, 0.5);
        let want: f64 = [0.0f64, -1.0, -100.0, 0.5]
            .iter()
            .map(|x| (x - 0.5).exp())
            .sum();
        assert_close(f64::from(sum), want, 4e-7 * want, "exp_table_shift_sum");
    }

    /// The worst ulp error of [`exp2_64`] over the `f32` whose bit patterns run from `-0` to
    /// -8064 in steps of `step`, against `f64::exp2(y / 64)`.
    fn exp2_64_worst_ulp(step: usize) -> (f64, f32) {
        let mut worst = (0.0f64, 0.0f32);
        for bits in (0x8000_0000u32..=(-8064.0f32).to_bits()).step_by(step) {
            let y = f32::from_bits(bits);
            let e = crate::testing::ulp_error(exp2_64(y), (f64::from(y) / 64.0).exp2());
            if e > worst.0 {
                worst = (e, y);
            }
        }
        worst
    }

    /// 1.5 ulp over a dense sample of [-8064, 0] (every 1009th `f32`, about 1.1 M values).
    #[test]
    fn exp2_64_within_1_5_ulp_sampled() {
        let (worst, at) = exp2_64_worst_ulp(1009);
        assert!(worst <= 1.5, "exp2_64: {worst} ulp at {at:e}");
        for y in [
            0.0f32, -0.0, -0.5, -1.0, -31.5, -32.5, -63.5, -64.0, -1000.25, -8064.0,
        ] {
            let e = crate::testing::ulp_error(exp2_64(y), (f64::from(y) / 64.0).exp2());
            assert!(e <= 1.5, "exp2_64({y:e}): {e} ulp");
        }
        assert_eq!(exp2_64(0.0), 1.0);
        assert_eq!(exp2_64(-64.0), 0.5);
    }

    /// Every `f32` in [-8064, 0] (1.17e9 values): `cargo test --release -p nadaraya --lib
    /// exp2_64_within_1_5_ulp_exhaustive -- --ignored` (measured: 1.328 ulp at worst, at y = -7948.7).
    #[test]
    #[ignore = "exhaustive, 1.17e9 values: run in release"]
    fn exp2_64_within_1_5_ulp_exhaustive() {
        let (worst, at) = exp2_64_worst_ulp(1);
        std::println!("exp2_64: worst {worst} ulp at {at:e}");
        assert!(worst <= 1.5, "exp2_64: {worst} ulp at {at:e}");
    }

    /// Below -8064 every value is below `2^-78` in magnitude, down to `-f32::MAX`; NaN and
    /// `-inf` give NaN: what the Gaussian fused pass's sum checks rely on.
    #[test]
    fn exp2_64_outside_its_range() {
        let mut y = -8064.0f32;
        let mut worst = 0.0f32;
        while y > -f32::MAX / 1.001 {
            for y in [
                y,
                f32::from_bits(y.to_bits() + 1),
                f32::from_bits(y.to_bits() + 7),
            ] {
                let e = exp2_64(y);
                assert!(e.abs() < 2f32.powi(-78), "exp2_64({y:e}) = {e:e}");
                worst = worst.max(e.abs());
            }
            y *= 1.001;
        }
        std::println!("exp2_64 below -8064: largest magnitude {worst:e}");
        for y in [f32::NAN, f32::NEG_INFINITY] {
            assert!(exp2_64(y).is_nan(), "exp2_64({y:e}) = {}", exp2_64(y));
        }
    }

    /// The Gaussian weight as the fused pass computes it, `exp2_64(fl(|q - x|² · c))` with
    /// `c = fl(-1/(2h²) · 64/ln 2)`, against `f64` `exp(-|q - x|²/(2h²))`: the relative error
    /// is the exponential's 1.5 ulp plus the two roundings of the exponent (`|x| · 2^-23` at a
    /// score `x`), over a dense sweep of squared distances for several bandwidths.
    #[test]
    fn gaussian_fold_weights_match_f64() {
        let mut worst = 0.0f64;
        for h in [0.01f32, 0.3, 1.0, 7.5] {
            let ns = crate::Gaussian::check_bandwidth(h).unwrap();
            let c = ns * EXP_TABLE_K;
            let dmax = 87.0 / -f64::from(ns);
            for i in 0..=200_000u32 {
                let d2 = (dmax * f64::from(i) / 200_000.0) as f32;
                let x = -f64::from(d2) / (2.0 * f64::from(h) * f64::from(h));
                let want = x.exp();
                let got = f64::from(exp2_64(d2 * c));
                let rel = (got - want).abs() / want;
                let allowed = (1.5 + 2.0 * x.abs()) * f64::from(f32::EPSILON);
                assert!(rel <= allowed, "h {h} d2 {d2:e}: {got:e} vs {want:e}");
                worst = worst.max(rel / (f64::from(f32::EPSILON) * (1.0 + x.abs())));
            }
        }
        std::println!("fold weights: worst relative error {worst:.3} eps·(1 + |x|)");
    }

    /// `exp2_64(x · 64/ln 2)`, Helium's exact-path exponential (`exp2_64_in_range`, bit for bit
    /// the same here), against `f64` `exp(x)` over a dense sweep of `[EXP_MIN, 0]` (every 1009th `f32`): relative error within
    /// `(1.5 + |x|) · 2^-23`, absolute within `2^-23` (the weights are at most 1).
    #[test]
    fn exp2_64_of_scaled_scores_match_f64() {
        let mut worst = (0.0f64, 0.0f64);
        for bits in (0x8000_0000u32..=EXP_MIN.to_bits()).step_by(1009) {
            let x = f32::from_bits(bits);
            let want = f64::from(x).exp();
            let e = exp2_64(x * EXP_TABLE_K);
            // Helium's unclamped twin: the same bits wherever the caller keeps it.
            let e2 = exp2_64_in_range(x * EXP_TABLE_K);
            assert_eq!(e.to_bits(), e2.to_bits(), "exp2_64_in_range({x:e} · K)");
            let got = f64::from(e);
            let rel = (got - want).abs() / want;
            let bound = (1.5 + f64::from(x).abs()) * f64::from(f32::EPSILON);
            assert!(rel <= bound, "exp2_64({x:e} · K) = {got:e}, want {want:e}");
            assert!((got - want).abs() <= f64::from(f32::EPSILON), "{x:e}");
            worst.0 = worst.0.max(rel / bound);
            worst.1 = worst.1.max((got - want).abs());
        }
        std::println!(
            "exp2_64(x·K): worst {:.3} of the bound, {:e} absolute",
            worst.0,
            worst.1
        );
    }
}

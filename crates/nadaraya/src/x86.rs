//! Everything `unsafe` in the crate: x86-64 feature detection (CPUID, XGETBV), the two vector
//! types of [`crate::lanes`] (AVX2 + FMA `__m256`, AVX-512F `__m512`), and the
//! `#[target_feature]` entry points that instantiate the generic kernels for each level.
//!
//! Soundness rests on one invariant: a value of [`Avx2`] or [`Avx512`] (the tokens whose
//! methods call the intrinsics) exists only inside a function compiled for that level, and such
//! a function is only called through [`Chosen`], which only holds a level that [`detected`]
//! found. Both token types have a private field, so no code outside this module can make one.

use crate::Element;
use crate::dispatch::Level;
use crate::lanes::{self, Simd};
use core::arch::x86_64::*;
use core::sync::atomic::{AtomicU8, Ordering};
#[cfg(feature = "half")]
use half::{bf16, f16};

mod blocked;
pub(crate) use blocked::{block_queries, query_block};

/// 0: not yet detected; else `1 + Level as u8`.
static DETECTED: AtomicU8 = AtomicU8::new(0);
/// 0: not yet chosen; else `1 + Level as u8`.
static ACTIVE: AtomicU8 = AtomicU8::new(0);

const fn encode(l: Level) -> u8 {
    match l {
        Level::Baseline => 1,
        Level::Avx2 => 2,
        Level::Avx512 => 3,
    }
}

const fn decode(v: u8) -> Option<Level> {
    match v {
        1 => Some(Level::Baseline),
        2 => Some(Level::Avx2),
        3 => Some(Level::Avx512),
        _ => None,
    }
}

/// Asks the CPU. CPUID leaf 1 ECX: FMA (bit 12), OSXSAVE (27), AVX (28), F16C (29); leaf 7.0
/// EBX: AVX2 (5), AVX512F (16). XCR0 (XGETBV 0), the state the OS saves on a context switch:
/// XMM and YMM (bits 1, 2) for AVX2, and the opmask and both halves of the ZMM registers (5, 6,
/// 7) for AVX-512 (as ggml's `cpu-feats.cpp` and std's `is_x86_feature_detected!` check).
#[cold]
#[inline(never)]
fn detect() -> Level {
    // SAFETY: CPUID exists on every x86-64 CPU; leaf 0 is always valid. (Safe to call since
    // Rust 1.94; `unsafe` for the declared rust-version.)
    #[allow(unused_unsafe)]
    let max_leaf = unsafe { __cpuid(0) }.eax;
    if max_leaf < 7 {
        return Level::Baseline;
    }
    // SAFETY: leaves 1 and 7 are at most `max_leaf`.
    #[allow(unused_unsafe)]
    let (l1, l7) = unsafe { (__cpuid(1), __cpuid_count(7, 0)) };
    let bit = |r: u32, b: u32| r & (1 << b) != 0;
    let (fma, osxsave, avx, f16c) = (
        bit(l1.ecx, 12),
        bit(l1.ecx, 27),
        bit(l1.ecx, 28),
        bit(l1.ecx, 29),
    );
    let (avx2, avx512f) = (bit(l7.ebx, 5), bit(l7.ebx, 16));
    if !(osxsave && avx) {
        return Level::Baseline;
    }
    // SAFETY: OSXSAVE is set, so XGETBV is enabled; `xcr0` is compiled for XSAVE only.
    let xcr0 = unsafe { xcr0() };
    let ymm = xcr0 & 0b110 == 0b110;
    let zmm = xcr0 & 0b1110_0110 == 0b1110_0110;
    match (ymm && avx2 && fma && f16c, zmm && avx512f) {
        (true, true) => Level::Avx512,
        (true, false) => Level::Avx2,
        _ => Level::Baseline,
    }
}

#[target_feature(enable = "xsave")]
fn xcr0() -> u64 {
    // SAFETY: the caller checked OSXSAVE; register 0 always exists.
    unsafe { _xgetbv(0) }
}

/// See [`crate::dispatch::detected`].
#[inline]
pub(crate) fn detected() -> Level {
    if let Some(l) = decode(DETECTED.load(Ordering::Relaxed)) {
        return l;
    }
    let l = detect();
    DETECTED.store(encode(l), Ordering::Relaxed);
    l
}

/// See [`crate::dispatch::active`].
#[inline]
pub(crate) fn active() -> Level {
    match decode(ACTIVE.load(Ordering::Relaxed)) {
        Some(l) => l,
        None => choose(),
    }
}

#[cold]
#[inline(never)]
fn choose() -> Level {
    #[allow(unused_mut)]
    let mut want = detected();
    // The unit tests (a std build) take their level from the environment: scripts/test-all
    // runs them once per level.
    #[cfg(test)]
    if let Some(l) = std::env::var("NADARAYA_LEVEL")
        .ok()
        .and_then(|n| Level::from_name(&n))
    {
        want = l;
    }
    force(want)
}

/// See [`crate::dispatch::force`].
#[inline]
pub(crate) fn force(level: Level) -> Level {
    let l = level.min(detected());
    ACTIVE.store(encode(l), Ordering::Relaxed);
    l
}

/// A level this CPU runs: the only way to reach the kernels below.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Chosen(Level);

impl Chosen {
    /// The active level.
    #[inline]
    pub(crate) fn active() -> Self {
        // `active` never exceeds `detected` (`force` clamps).
        Self(active())
    }

    /// `level`, if this CPU runs it.
    #[cfg(test)]
    pub(crate) fn new(level: Level) -> Option<Self> {
        (level <= detected()).then_some(Self(level))
    }

    /// The level.
    #[cfg(test)]
    pub(crate) fn level(self) -> Level {
        self.0
    }
}

/// AVX2 + FMA + F16C are present: eight lanes in `__m256`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2(());
/// AVX-512F (and AVX2 + FMA + F16C) are present: sixteen lanes in `__m512`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512(());

// Every block below calls an intrinsic of the token's own level; the token proves that the CPU
// runs it (module docs). Loads and stores go through references to arrays of exactly one
// vector's floats: in bounds, and unaligned accesses are what `loadu`/`storeu` allow.
impl Simd<8> for Avx2 {
    type V = __m256;
    type M = __m256;
    #[inline(always)]
    fn splat(self, x: f32) -> __m256 {
        // SAFETY: AVX is present (token).
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    fn load(self, c: &[f32; 8]) -> __m256 {
        // SAFETY: AVX is present (token); `c` is 32 readable bytes.
        unsafe { _mm256_loadu_ps(c.as_ptr()) }
    }
    #[inline(always)]
    fn store(self, c: &mut [f32; 8], v: __m256) {
        // SAFETY: AVX is present (token); `c` is 32 writable bytes.
        unsafe { _mm256_storeu_ps(c.as_mut_ptr(), v) }
    }
    #[cfg(feature = "half")]
    #[inline(always)]
    fn load_f16(self, c: &[half::f16; 8]) -> __m256 {
        // SAFETY: F16C is present (token); `c` is 16 readable bytes (`f16` is a `u16`).
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(c.as_ptr().cast())) }
    }
    #[cfg(feature = "half")]
    #[inline(always)]
    fn load_bf16(self, c: &[half::bf16; 8]) -> __m256 {
        // SAFETY: AVX2 is present (token); `c` is 16 readable bytes (`bf16` is a `u16`). A bf16
        // is the top half of an f32: zero-extend to 32 bits, shift up by 16.
        unsafe {
            let w = _mm256_cvtepu16_epi32(_mm_loadu_si128(c.as_ptr().cast()));
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(w))
        }
    }
    #[inline(always)]
    fn add(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: AVX is present (token).
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: AVX is present (token).
        unsafe { _mm256_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: AVX is present (token).
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    fn fma(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        // SAFETY: FMA is present (token).
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn max(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: AVX is present (token).
        unsafe { _mm256_max_ps(a, b) }
    }
    #[inline(always)]
    fn ge(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: AVX is present (token).
        unsafe { _mm256_cmp_ps::<_CMP_GE_OQ>(a, b) }
    }
    #[inline(always)]
    fn zero_unless(self, v: __m256, m: __m256) -> __m256 {
        // SAFETY: AVX is present (token).
        unsafe { _mm256_and_ps(v, m) }
    }
    #[inline(always)]
    fn pow2n(self, big: __m256) -> __m256 {
        // SAFETY: AVX2 is present (token).
        unsafe {
            let n = _mm256_castps_si256(big);
            let e = _mm256_sub_epi32(n, _mm256_set1_epi32(lanes::POW2_BIAS));
            _mm256_castsi256_ps(_mm256_slli_epi32::<23>(e))
        }
    }
    #[inline(always)]
    fn sum(self, v: __m256) -> f32 {
        // SAFETY: AVX is present (token). Pairs lane i with lane i + 4, then i + 2, then i + 1.
        unsafe {
            let h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
            _mm_cvtss_f32(_mm_add_ss(h, _mm_shuffle_ps::<0b01>(h, h)))
        }
    }
    #[inline(always)]
    fn sum4(self, v: [__m256; 4]) -> [f32; 4] {
        // SAFETY: AVX is present (token). The pairs of `sum`, four vectors at once: halves
        // (i, i + 4) of a|b and c|d side by side, then (i, i + 2), then (i, i + 1).
        unsafe {
            let [a, b, c, d] = v;
            let ab = _mm256_add_ps(
                _mm256_permute2f128_ps::<0x20>(a, b),
                _mm256_permute2f128_ps::<0x31>(a, b),
            );
            let cd = _mm256_add_ps(
                _mm256_permute2f128_ps::<0x20>(c, d),
                _mm256_permute2f128_ps::<0x31>(c, d),
            );
            // [a0 a1 c0 c1 | b0 b1 d0 d1] + [a2 a3 c2 c3 | b2 b3 d2 d3]
            let t = _mm256_add_ps(
                _mm256_shuffle_ps::<0b01_00_01_00>(ab, cd),
                _mm256_shuffle_ps::<0b11_10_11_10>(ab, cd),
            );
            let u = _mm256_add_ps(t, _mm256_permute_ps::<0b10_11_00_01>(t));
            let mut o = [0.0f32; 8];
            _mm256_storeu_ps(o.as_mut_ptr(), u);
            [o[0], o[4], o[2], o[6]]
        }
    }
}

impl Simd<16> for Avx512 {
    type V = __m512;
    type M = __mmask16;
    #[inline(always)]
    fn splat(self, x: f32) -> __m512 {
        // SAFETY: AVX-512F is present (token).
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    fn load(self, c: &[f32; 16]) -> __m512 {
        // SAFETY: AVX-512F is present (token); `c` is 64 readable bytes.
        unsafe { _mm512_loadu_ps(c.as_ptr()) }
    }
    #[inline(always)]
    fn store(self, c: &mut [f32; 16], v: __m512) {
        // SAFETY: AVX-512F is present (token); `c` is 64 writable bytes.
        unsafe { _mm512_storeu_ps(c.as_mut_ptr(), v) }
    }
    #[cfg(feature = "half")]
    #[inline(always)]
    fn load_f16(self, c: &[half::f16; 16]) -> __m512 {
        // SAFETY: AVX-512F is present (token; `vcvtph2ps` on `zmm` is AVX-512F); `c` is 32
        // readable bytes (`f16` is a `u16`).
        unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(c.as_ptr().cast())) }
    }
    #[cfg(feature = "half")]
    #[inline(always)]
    fn load_bf16(self, c: &[half::bf16; 16]) -> __m512 {
        // SAFETY: AVX-512F is present (token); `c` is 32 readable bytes (`bf16` is a `u16`).
        // Zero-extend to 32 bits, shift up by 16.
        unsafe {
            let w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(c.as_ptr().cast()));
            _mm512_castsi512_ps(_mm512_slli_epi32::<16>(w))
        }
    }
    #[inline(always)]
    fn add(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: AVX-512F is present (token).
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: AVX-512F is present (token).
        unsafe { _mm512_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: AVX-512F is present (token).
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    fn fma(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        // SAFETY: AVX-512F is present (token).
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn max(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: AVX-512F is present (token).
        unsafe { _mm512_max_ps(a, b) }
    }
    #[inline(always)]
    fn ge(self, a: __m512, b: __m512) -> __mmask16 {
        // SAFETY: AVX-512F is present (token).
        unsafe { _mm512_cmp_ps_mask::<_CMP_GE_OQ>(a, b) }
    }
    #[inline(always)]
    fn zero_unless(self, v: __m512, m: __mmask16) -> __m512 {
        // SAFETY: AVX-512F is present (token).
        unsafe { _mm512_maskz_mov_ps(m, v) }
    }
    #[inline(always)]
    fn pow2n(self, big: __m512) -> __m512 {
        // SAFETY: AVX-512F is present (token).
        unsafe {
            let n = _mm512_castps_si512(big);
            let e = _mm512_sub_epi32(n, _mm512_set1_epi32(lanes::POW2_BIAS));
            _mm512_castsi512_ps(_mm512_slli_epi32::<23>(e))
        }
    }
    #[inline(always)]
    fn sum(self, v: __m512) -> f32 {
        // SAFETY: AVX-512F and AVX are present (token). Pairs lane i with lane i + 8, then as
        // the eight-lane sum.
        unsafe {
            let lo = _mm512_castps512_ps256(v);
            let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
            Avx2(()).sum(_mm256_add_ps(lo, hi))
        }
    }
    #[inline(always)]
    fn sum4(self, v: [__m512; 4]) -> [f32; 4] {
        // SAFETY: AVX-512F is present (token). The pairs of `sum`, four vectors at once: 128-bit
        // quarters (q, q + 2) of a|b and c|d, then (q, q + 1), then within each quarter
        // (i, i + 2) and (i, i + 1).
        unsafe {
            let [a, b, c, d] = v;
            let ab = _mm512_add_ps(
                _mm512_shuffle_f32x4::<0b01_00_01_00>(a, b),
                _mm512_shuffle_f32x4::<0b11_10_11_10>(a, b),
            );
            let cd = _mm512_add_ps(
                _mm512_shuffle_f32x4::<0b01_00_01_00>(c, d),
                _mm512_shuffle_f32x4::<0b11_10_11_10>(c, d),
            );
            // ab = [a0+a2, a1+a3, b0+b2, b1+b3] by quarters, cd likewise.
            let t = _mm512_add_ps(
                _mm512_shuffle_f32x4::<0b10_00_10_00>(ab, cd),
                _mm512_shuffle_f32x4::<0b11_01_11_01>(ab, cd),
            );
            let t = _mm512_add_ps(t, _mm512_permute_ps::<0b01_00_11_10>(t));
            let u = _mm512_add_ps(t, _mm512_permute_ps::<0b10_11_00_01>(t));
            let mut o = [0.0f32; 16];
            _mm512_storeu_ps(o.as_mut_ptr(), u);
            [o[0], o[4], o[8], o[12]]
        }
    }
}

/// The `#[target_feature]` entry points of one level: each instantiates a kernel of
/// [`crate::lanes`] with the level's token, so that its body is compiled for the level.
macro_rules! level {
    ($name:ident, $token:ident, $n:literal, $features:literal) => {
        mod $name {
            use super::*;

            #[target_feature(enable = $features)]
            pub(super) fn exp_shift_sum(s: &mut [f32], m: f32) -> f32 {
                lanes::exp_shift_sum::<_, $n>($token(()), s, m)
            }

            #[target_feature(enable = $features)]
            pub(super) fn exp_shift_sum_dot(s: &[f32], y: &[f32], m: f32) -> (f32, f32) {
                lanes::exp_shift_sum_dot::<_, $n>($token(()), s, y, m)
            }

            #[target_feature(enable = $features)]
            pub(super) fn max_score(s: &[f32]) -> Result<(f32, bool), crate::Error> {
                lanes::max_score::<_, $n>($token(()), s)
            }

            #[target_feature(enable = $features)]
            pub(super) fn all_finite(xs: &[f32]) -> bool {
                lanes::all_finite::<_, $n>($token(()), xs)
            }

            #[target_feature(enable = $features)]
            pub(super) fn dot<E: lanes::Load<$token, $n>>(a: &[f32], b: &[E]) -> f32 {
                lanes::dot::<E, _, $n>($token(()), a, b)
            }

            #[target_feature(enable = $features)]
            pub(super) fn row_scores<const GAUSS: bool, E: lanes::Load<$token, $n>>(
                q: &[f32],
                keys: &[E],
                scale: f32,
                out: &mut [f32],
            ) {
                lanes::row_scores::<GAUSS, E, _, $n>($token(()), q, keys, scale, out)
            }

            #[target_feature(enable = $features)]
            pub(super) fn weighted_sum_into<E: lanes::Load<$token, $n>>(
                p: &[f32],
                values: &[E],
                dv: usize,
                acc: &mut [f32],
            ) {
                lanes::weighted_sum_into::<E, _, $n>($token(()), p, values, dv, acc)
            }

            #[cfg(feature = "half")]
            #[target_feature(enable = $features)]
            pub(super) fn widen_into<E: lanes::Load<$token, $n>>(xs: &[E], out: &mut [f32]) {
                lanes::widen_into::<E, _, $n>($token(()), xs, out)
            }
        }
    };
}

level!(avx2, Avx2, 8, "avx2,fma,f16c");
level!(avx512, Avx512, 16, "avx512f,avx2,fma,f16c");

/// Calls `$f` of the chosen level's module with `$args`: `Some(result)`, or `None` at
/// [`Level::Baseline`] (the caller runs its portable code).
macro_rules! at_level {
    ($chosen:expr, $f:ident $(::<$($g:ident),*>)?, $($args:expr),*) => {
        match $chosen.0 {
            // SAFETY: a `Chosen` only holds a level this CPU runs (its constructors).
            Level::Avx512 => Some(unsafe { avx512::$f $(::<$($g),*>)? ($($args),*) }),
            // SAFETY: as above.
            Level::Avx2 => Some(unsafe { avx2::$f $(::<$($g),*>)? ($($args),*) }),
            Level::Baseline => None,
        }
    };
}

/// [`crate::simd::exp_shift_sum`] at level `c`, or `None` at the baseline.
#[inline]
pub(crate) fn exp_shift_sum(c: Chosen, s: &mut [f32], m: f32) -> Option<f32> {
    at_level!(c, exp_shift_sum, s, m)
}

/// [`crate::simd::exp_shift_sum_dot`] at level `c`, or `None` at the baseline.
#[inline]
pub(crate) fn exp_shift_sum_dot(c: Chosen, s: &[f32], y: &[f32], m: f32) -> Option<(f32, f32)> {
    at_level!(c, exp_shift_sum_dot, s, y, m)
}

/// [`crate::simd::max_score`] at level `c`, or `None` at the baseline.
#[inline]
pub(crate) fn max_score(c: Chosen, s: &[f32]) -> Option<Result<(f32, bool), crate::Error>> {
    at_level!(c, max_score, s)
}

/// [`crate::simd::all_finite`] at level `c`, or `None` at the baseline. Out of line: it is
/// called on whole inputs (once per call, not per tile), and inlined at each of its call sites
/// it grew `Smoother::from_rows` past what the no-panic proof could follow.
#[inline(never)]
pub(crate) fn all_finite(c: Chosen, xs: &[f32]) -> Option<bool> {
    at_level!(c, all_finite, xs)
}

/// Calls `$f::<$g.., E>` for the storage element behind `$xs` (`f32`, or with the `half` feature
/// `f16` or `bf16`), `$xs` viewed as that element: `$xs` is rebound to the view in `$args`.
macro_rules! by_element {
    ($chosen:expr, $e:ident, $xs:ident, $f:ident $(<$($g:ident),*>)?, $($args:expr),*) => {{
        if let Some($xs) = $e::as_f32($xs) {
            return at_level!($chosen, $f::<$($($g,)*)? f32>, $($args),*);
        }
        #[cfg(feature = "half")]
        {
            if let Some($xs) = $e::as_f16($xs) {
                return at_level!($chosen, $f::<$($($g,)*)? f16>, $($args),*);
            }
            if let Some($xs) = $e::as_bf16($xs) {
                return at_level!($chosen, $f::<$($($g,)*)? bf16>, $($args),*);
            }
        }
        None
    }};
}

/// [`crate::simd::dot`] at level `c` (`b` of any storage element), or `None` at the baseline.
#[inline]
pub(crate) fn dot<E: Element>(c: Chosen, a: &[f32], b: &[E]) -> Option<f32> {
    by_element!(c, E, b, dot, a, b)
}

/// [`crate::simd::row_scores`] at level `c` for rows of at least eight floats (keys of any
/// storage element, widened in registers), or `None` (the caller runs its portable code): at the
/// baseline, and for shorter rows. AVX-512 takes rows of sixteen floats or more; rows of 8 to 15
/// floats run at AVX2, so that every row of a call (of one width) takes the same arithmetic.
#[inline]
pub(crate) fn row_scores<const GAUSS: bool, E: Element>(
    c: Chosen,
    q: &[f32],
    keys: &[E],
    scale: f32,
    out: &mut [f32],
) -> Option<()> {
    let c = narrow(c, q.len());
    by_element!(c, E, keys, row_scores<GAUSS>, q, keys, scale, out)
}

/// [`crate::simd::weighted_sum_into`] at level `c` for `dv == 1` or `dv ≥ 8` (values of any
/// storage element, widened in registers), or `None` (as [`row_scores`] chooses by `dv`).
#[inline]
pub(crate) fn weighted_sum_into<E: Element>(
    c: Chosen,
    p: &[f32],
    values: &[E],
    dv: usize,
    acc: &mut [f32],
) -> Option<()> {
    let c = if dv == 1 { c } else { narrow(c, dv) };
    by_element!(c, E, values, weighted_sum_into, p, values, dv, acc)
}

/// `xs` widened to `f32` into `out` (`min` of the lengths) at level `c` (F16C or AVX-512F's
/// conversion for `f16`, a shift for `bf16`), or `None` at the baseline. Exact at every level.
#[cfg(feature = "half")]
#[inline]
pub(crate) fn widen_into<E: Element>(c: Chosen, xs: &[E], out: &mut [f32]) -> Option<()> {
    by_element!(c, E, xs, widen_into, xs, out)
}

/// The widest level at or below `c` whose vector fits in a row of `width` floats.
#[inline]
fn narrow(c: Chosen, width: usize) -> Chosen {
    match c.0 {
        Level::Avx512 if width >= 16 => c,
        Level::Avx512 | Level::Avx2 if width >= 8 => Chosen(Level::Avx2),
        _ => Chosen(Level::Baseline),
    }
}

/// Every kernel at every level this CPU runs, called through [`Chosen`] directly (the rest of
/// the unit tests run at the one level `NADARAYA_LEVEL` selects; scripts/test-all runs them at
/// each). References are plain `f64`.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, lcg, ulp_error};
    use std::vec;
    use std::vec::Vec;

    fn levels() -> Vec<Chosen> {
        let v: Vec<Chosen> = Level::ALL.into_iter().filter_map(Chosen::new).collect();
        assert!(v.len() >= 2 || detected() == Level::Baseline);
        v
    }

    /// The same arithmetic as the portable code wherever that is the level.
    fn exp_sum(c: Chosen, s: &mut [f32], m: f32) -> f32 {
        exp_shift_sum(c, s, m).unwrap_or_else(|| crate::simd::exp_shift_sum(s, m))
    }

    /// The transposed four-way sums are the one-vector sums, bit for bit (the scores' sums
    /// go through `sum4`; a query's scores must not depend on which rows share its block).
    #[test]
    fn sum4_is_four_sums_bit_for_bit() {
        let mut rng = lcg(27);
        let mut val = || {
            let x = (rng() - 0.5) * 2f32.powi((rng() * 40.0) as i32 - 20);
            if rng() < 0.05 { -0.0 } else { x }
        };
        for _ in 0..2000 {
            if Chosen::new(Level::Avx2).is_some() {
                let t = Avx2(());
                let v: [[f32; 8]; 4] = core::array::from_fn(|_| core::array::from_fn(|_| val()));
                let vs = v.map(|a| t.load(&a));
                assert_eq!(t.sum4(vs).map(f32::to_bits), vs.map(|x| t.sum(x).to_bits()));
            }
            if Chosen::new(Level::Avx512).is_some() {
                let t = Avx512(());
                let v: [[f32; 16]; 4] = core::array::from_fn(|_| core::array::from_fn(|_| val()));
                let vs = v.map(|a| t.load(&a));
                assert_eq!(t.sum4(vs).map(f32::to_bits), vs.map(|x| t.sum(x).to_bits()));
            }
        }
    }

    #[test]
    fn exp_within_two_ulp_at_every_level() {
        let lo = crate::simd::EXP_MIN.to_bits();
        let xs: Vec<f32> = (0x8000_0000u32..=lo)
            .step_by(509)
            .map(f32::from_bits)
            .collect();
        for c in levels() {
            // Shifted by m = 0.5: the kernels see x - m, the reference the same rounded value.
            for m in [0.0f32, 0.5] {
                let mut got: Vec<f32> = xs.iter().map(|x| x + m).collect();
                let shifted: Vec<f32> = got.iter().map(|v| v - m).collect();
                let sum = exp_sum(c, &mut got, m);
                let mut want_sum = 0.0f64;
                for (x, g) in shifted.iter().zip(&got) {
                    let want = if *x < crate::simd::EXP_MIN {
                        0.0
                    } else {
                        f64::from(*x).exp()
                    };
                    want_sum += want;
                    let e = ulp_error(*g, want);
                    assert!(e <= 2.0, "{:?}: exp({x:e}) = {g:e}, {e} ulp", c.level());
                }
                let tol = 4.0 * f64::from(f32::EPSILON) * want_sum * (xs.len() as f64).sqrt();
                assert_close(f64::from(sum), want_sum, tol, "exp sum");
            }
        }
    }

    #[test]
    fn exp_shift_sum_dot_at_every_level_and_length() {
        let mut rng = lcg(21);
        for c in levels() {
            for n in 0..=70usize {
                let s: Vec<f32> = (0..n).map(|_| -30.0 * rng()).collect();
                let y: Vec<f32> = (0..n).map(|_| 2.0 * rng() - 1.0).collect();
                let top = s.iter().copied().fold(-100.0f32, f32::max);
                for (m, ny) in [(top, n), (top + 3.0, n.saturating_sub(5))] {
                    let (sum, dot) = exp_shift_sum_dot(c, &s, &y[..ny], m)
                        .unwrap_or_else(|| crate::simd::exp_shift_sum_dot(&s, &y[..ny], m));
                    let e: Vec<f64> = s[..ny].iter().map(|v| f64::from(v - m).exp()).collect();
                    let want_sum: f64 = e.iter().sum();
                    let want_dot: f64 = e.iter().zip(&y).map(|(e, y)| e * f64::from(*y)).sum();
                    let tol = 6.0 * f64::from(f32::EPSILON) * (1.0 + want_sum);
                    assert_close(f64::from(sum), want_sum, tol, "sum");
                    assert_close(f64::from(dot), want_dot, tol, "dot");
                }
            }
        }
    }

    /// Scores within the `row_scores` bound of `f64`, and each row's score the same bits
    /// wherever the row falls in the slice (the promise the ring buffer's halves rely on).
    #[test]
    fn row_scores_at_every_level_and_position() {
        let mut rng = lcg(23);
        for c in levels() {
            for d in [1, 7, 8, 9, 15, 16, 17, 24, 31, 32, 40, 64, 72, 136] {
                let rows = 37;
                let q: Vec<f32> = (0..d).map(|_| 4.0 * rng() - 2.0).collect();
                let keys: Vec<f32> = (0..d * rows).map(|_| 4.0 * rng() - 2.0).collect();
                for gauss in [true, false] {
                    let scale = if gauss { -0.7 } else { 0.3 };
                    let score = |k: &[f32], out: &mut [f32]| {
                        let done = if gauss {
                            row_scores::<true, f32>(c, &q, k, scale, out)
                        } else {
                            row_scores::<false, f32>(c, &q, k, scale, out)
                        };
                        if done.is_none() {
                            if gauss {
                                crate::simd::row_scores::<true>(&q, k, scale, out);
                            } else {
                                crate::simd::row_scores::<false>(&q, k, scale, out);
                            }
                        }
                    };
                    let mut all = vec![f32::NAN; rows];
                    score(&keys, &mut all);
                    for (k, g) in keys.chunks_exact(d).zip(&all) {
                        let (mut want, mut mag) = (0.0f64, 0.0f64);
                        for (a, b) in q.iter().zip(k) {
                            let (a, b) = (f64::from(*a), f64::from(*b));
                            want += if gauss { (a - b) * (a - b) } else { a * b };
                            mag += (a * b).abs() + (a - b) * (a - b);
                        }
                        let s = f64::from(scale);
                        let tol = 4.0 * f64::from(f32::EPSILON) * mag * s.abs() * (d as f64).sqrt();
                        assert_close(f64::from(*g), want * s, tol, "score");
                    }
                    for start in 1..rows {
                        let mut part = vec![f32::NAN; rows - start];
                        score(&keys[start * d..], &mut part);
                        assert_eq!(
                            &part[..],
                            &all[start..],
                            "{:?} d={d} from row {start}",
                            c.level()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn weighted_sum_and_dot_at_every_level() {
        let mut rng = lcg(25);
        for c in levels() {
            for dv in [1, 2, 7, 8, 9, 15, 16, 17, 24, 32, 48, 64, 72, 100, 136, 200] {
                for rows in [0, 1, 3, 8, 17, 64, 67] {
                    let p: Vec<f32> = (0..rows).map(|_| rng()).collect();
                    let v: Vec<f32> = (0..rows * dv).map(|_| 2.0 * rng() - 1.0).collect();
                    let mut acc = vec![0.5f32; dv];
                    if weighted_sum_into(c, &p, &v, dv, &mut acc).is_none() {
                        crate::simd::weighted_sum_into(&p, &v, dv, &mut acc);
                    }
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
            for n in 0..=70 {
                let a: Vec<f32> = (0..n).map(|_| 2.0 * rng() - 1.0).collect();
                let b: Vec<f32> = (0..n).map(|_| 2.0 * rng() - 1.0).collect();
                let got = dot(c, &a, &b).unwrap_or_else(|| crate::simd::dot(&a, &b));
                let want: f64 = a
                    .iter()
                    .zip(&b)
                    .map(|(x, y)| f64::from(*x) * f64::from(*y))
                    .sum();
                assert_close(
                    f64::from(got),
                    want,
                    4.0 * f64::from(f32::EPSILON) * n as f64,
                    "dot",
                );
            }
        }
    }

    #[test]
    fn finite_checks_and_maximum_at_every_level_and_position() {
        for c in levels() {
            let max = |s: &[f32]| max_score(c, s).unwrap_or_else(|| crate::simd::max_score(s));
            let fin = |s: &[f32]| all_finite(c, s).unwrap_or_else(|| crate::simd::all_finite(s));
            for n in 0..=70usize {
                let ramp: Vec<f32> = (0..n).map(|i| -((i * 7 % 13) as f32)).collect();
                let top = ramp.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                assert_eq!(max(&ramp), Ok((top, false)));
                assert!(fin(&ramp));
                for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                    for pos in 0..n {
                        let mut v = ramp.clone();
                        v[pos] = bad;
                        assert!(!fin(&v), "{:?} n={n} pos={pos}", c.level());
                        let want = if bad == f32::NEG_INFINITY {
                            let m = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                            Ok((m, true))
                        } else {
                            Err(crate::Error::ScoreOverflow)
                        };
                        assert_eq!(max(&v), want, "{:?} n={n} pos={pos} {bad}", c.level());
                    }
                }
            }
        }
    }
}

#[cfg(all(test, feature = "half"))]
mod half_tests;

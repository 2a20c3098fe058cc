//! Storage elements of keys and values: `f32`, and with the `half` feature `f16` and `bf16`.
//!
//! Arithmetic is always `f32`: a half-precision element is widened to `f32` (exactly: every
//! `f16` and `bf16` is an `f32`) as it is loaded, a vector at a time in lanes (F16C or AVX-512F
//! conversions at the x86-64 dispatch levels, portable bit arithmetic otherwise), and everything after
//! the load is the `f32` path. So keys and values stored as halves cost half the memory traffic
//! of `f32` ones, and the results are those of the `f32` path on the widened inputs.

use wide::f32x8;

use crate::simd::{self, LANES};
use crate::softmax::Lse;

mod sealed {
    use wide::f32x8;

    /// What the crate needs of an element; not implementable outside it.
    pub trait Sealed: Copy + Send + Sync + 'static {
        /// The widest key row the scoring path takes (see [`super::Element::MAX_KEY_WIDTH`]).
        const MAX_WIDTH: usize;
        /// The element's name: `"f32"`, `"f16"` or `"bf16"`.
        const STORAGE_NAME: &'static str;
        /// The element widened to `f32` (exact).
        fn widen(self) -> f32;
        /// `x` rounded to the element, to nearest, ties to even (the identity for `f32`; a
        /// finite `x` beyond the element's range gives an infinity).
        fn narrow(x: f32) -> Self;
        /// Eight elements widened to `f32` lanes (exact).
        fn lanes(c: &[Self; super::LANES]) -> f32x8;
        /// True if every element is finite.
        fn all_finite(xs: &[Self]) -> bool;
        /// `xs` widened into `out`, element by element (`min` of the two lengths).
        fn widen_into(xs: &[Self], out: &mut [f32]);
        /// `Some(xs)` when the element is `f32`.
        fn as_f32(xs: &[Self]) -> Option<&[f32]>;
        /// `Some(xs)` when the element is `f16`.
        #[cfg(feature = "half")]
        #[inline(always)]
        fn as_f16(_: &[Self]) -> Option<&[half::f16]> {
            None
        }
        /// `Some(xs)` when the element is `bf16`.
        #[cfg(feature = "half")]
        #[inline(always)]
        fn as_bf16(_: &[Self]) -> Option<&[half::bf16]> {
            None
        }
    }
}

/// A type keys and values can be stored as: `f32`, and with the `half` feature
/// `half::f16` and `half::bf16` (sealed: no other type).
///
/// [`attention`](crate::attention), [`attention_batch`](crate::attention_batch),
/// [`attention_shape`](crate::attention_shape) and [`OnlineSoftmax::update`](crate::OnlineSoftmax::update)
/// take keys and values as [`Rows<E>`](crate::Rows) of any element `E` (queries and outputs are
/// always `f32`), and a [`Smoother<K, N, D, DV, E>`](crate::Smoother) stores its samples as `E`
/// (rounded on the way in; see its "Storage" section). Every element is widened to `f32` exactly when it is loaded — on x86-64 at the
/// AVX2 and AVX-512 [dispatch levels](crate::dispatch) inside the vector kernels, by F16C's or
/// AVX-512F's `vcvtph2ps` (`f16`) or a 16-bit shift (`bf16`), so a memory-bound call reads half
/// the bytes — and the arithmetic is the `f32` path's: each row of the result on half-precision
/// inputs is, bit for bit, the result of that query alone on the same numbers stored as `f32`,
/// at every dispatch level on x86-64 and on the other targets with float SIMD (aarch64 NEON, wasm
/// `simd128`; tested on x86-64). On cores without it (every Cortex-M, the base wasm module) an
/// `f32` call takes a fused pass that half storage does not, and there the two agree within the
/// documented bound, not bit for bit. (From eight queries on, an `f32` call
/// without a mask takes the register-blocked kernel at the AVX levels, whose rows are within the
/// documented bound of the query alone, not bit for bit; half storage does not take it.) Its error against an `f64` reference on the *unrounded* data is
/// therefore the `f32` bound plus the storage rounding, measured in the crate README
/// ("Half-precision keys and values").
pub trait Element: sealed::Sealed {
    /// The widest key row a call takes with keys of this element: `usize::MAX` for `f32`; for
    /// `f16` and `bf16`, [`HALF_KEY_WIDTH`] (wider keys are a shape error with
    /// [`Dim::Width`](crate::Dim::Width)). The built-in [`Gaussian`](crate::Gaussian) and
    /// [`SoftmaxDot`](crate::SoftmaxDot) at the AVX2 and AVX-512 levels score rows of eight or
    /// more half-precision keys in registers; other kernels, narrower rows and the baseline
    /// level widen the keys into a stack buffer of `HALF_KEY_WIDTH` floats (4 KiB, in L1), whole
    /// rows at a time, and score them there by the kernel's `f32`
    /// [`scores`](crate::Kernel::scores). Values are widened in registers.
    const MAX_KEY_WIDTH: usize = Self::MAX_WIDTH;

    /// The element as `f32` (exact for every element type).
    #[must_use]
    fn to_f32(self) -> f32 {
        self.widen()
    }
}

/// The widest half-precision key row: the floats of the stack buffer keys are widened into.
pub const HALF_KEY_WIDTH: usize = 1024;

impl sealed::Sealed for f32 {
    const MAX_WIDTH: usize = usize::MAX;
    const STORAGE_NAME: &'static str = "f32";
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
    #[inline(always)]
    fn narrow(x: f32) -> f32 {
        x
    }
    #[inline(always)]
    fn lanes(c: &[f32; LANES]) -> f32x8 {
        f32x8::new(*c)
    }
    #[inline]
    fn all_finite(xs: &[f32]) -> bool {
        simd::all_finite(xs)
    }
    #[inline]
    fn widen_into(xs: &[f32], out: &mut [f32]) {
        let n = xs.len().min(out.len());
        if let (Some(o), Some(x)) = (out.get_mut(..n), xs.get(..n)) {
            o.copy_from_slice(x);
        }
    }
    #[inline(always)]
    fn as_f32(xs: &[f32]) -> Option<&[f32]> {
        Some(xs)
    }
}

impl Element for f32 {}

#[cfg(feature = "half")]
mod halves {
    use half::{bf16, f16};
    use wide::{f32x8, i32x8};

    use super::{Element, HALF_KEY_WIDTH, LANES, sealed::Sealed};

    /// `f16` bit patterns (in the low 16 bits of each lane, sign-extended) widened to `f32`,
    /// exactly, without a branch or subnormal arithmetic: the exponent is rebased by
    /// `127 - 15`; infinities and NaN get the `f32` exponent 255 (NaN payloads kept, quieted); zeros and
    /// subnormals are rebased one step further and have `2^-14` subtracted, which is exact
    /// (F. Giesen's `half_to_float`). Checked against `half`'s own conversion on every one of
    /// the 65 536 patterns.
    #[inline(always)]
    pub(crate) fn f16_bits_to_f32(h: i32x8) -> f32x8 {
        const EXP: i32 = 0x7c00 << 13;
        let o: i32x8 = (h & i32x8::splat(0x7fff)) << 13;
        let exp: i32x8 = o & i32x8::splat(EXP);
        let o = o + i32x8::splat((127 - 15) << 23);
        // Inf and NaN: a second rebase puts the exponent at 255; NaN is quieted (as `half` and
        // the F16C instruction do).
        let inf_nan = exp.simd_eq(i32x8::splat(EXP));
        let payload = !(h & i32x8::splat(0x03ff)).simd_eq(i32x8::ZERO);
        let o = o + (inf_nan & i32x8::splat((128 - 16) << 23));
        let o = o | (inf_nan & payload & i32x8::splat(0x0040_0000));
        let tiny = exp.simd_eq(i32x8::ZERO);
        // Zero and subnormals: exponent 113, less 2^-14 (exact).
        let t: f32x8 = wide::bytemuck::cast(o + i32x8::splat(1 << 23));
        let t: i32x8 = wide::bytemuck::cast(t - f32x8::splat(f32::from_bits(113 << 23)));
        let o = tiny.select(t, o);
        let sign = (h & i32x8::splat(0x8000)) << 16;
        wide::bytemuck::cast(o | sign)
    }

    /// The `Sealed` impl of a half-precision element: `$lanes` widens eight bit patterns,
    /// `$exp` is its exponent field (all ones: not finite), `$view` the `Sealed` method that
    /// sees a slice of it as itself.
    macro_rules! half_element {
        ($t:ty, $name:literal, $exp:literal, $view:ident, |$c:ident| $lanes:expr) => {
            impl Sealed for $t {
                const MAX_WIDTH: usize = HALF_KEY_WIDTH;
                const STORAGE_NAME: &'static str = $name;
                #[inline(always)]
                fn widen(self) -> f32 {
                    self.to_f32()
                }
                #[inline]
                fn narrow(x: f32) -> Self {
                    <$t>::from_f32(x)
                }
                #[inline(always)]
                fn lanes($c: &[$t; LANES]) -> f32x8 {
                    $lanes
                }
                #[inline]
                fn all_finite(xs: &[$t]) -> bool {
                    xs.iter().all(|x| x.to_bits() & $exp != $exp)
                }
                #[inline]
                fn widen_into(xs: &[$t], out: &mut [f32]) {
                    #[cfg(target_arch = "x86_64")]
                    if crate::x86::widen_into(crate::x86::Chosen::active(), xs, out).is_some() {
                        return;
                    }
                    let (xb, xt) = xs.as_chunks::<LANES>();
                    let (ob, ot) = out.as_chunks_mut::<LANES>();
                    for (o, x) in ob.iter_mut().zip(xb) {
                        *o = Self::lanes(x).to_array();
                    }
                    if ob.len() >= xb.len() {
                        for (o, x) in ot.iter_mut().zip(xt) {
                            *o = x.to_f32();
                        }
                    }
                }
                #[inline(always)]
                fn as_f32(_: &[Self]) -> Option<&[f32]> {
                    None
                }
                #[inline(always)]
                fn $view(xs: &[Self]) -> Option<&[Self]> {
                    Some(xs)
                }
            }

            impl Element for $t {}
        };
    }

    half_element!(f16, "f16", 0x7c00, as_f16, |c| f16_bits_to_f32(i32x8::new(
        c.map(|x| i32::from(x.to_bits()))
    )));
    // A bf16 is the top half of an f32: a shift.
    half_element!(bf16, "bf16", 0x7f80, as_bf16, |c| wide::bytemuck::cast(
        i32x8::new(c.map(|x| i32::from(x.to_bits()))) << 16
    ));
}

/// [`Lse::absorb_fused`] of stored rows: `f32` storage takes it as it is (the fused pass on
/// targets without float SIMD), half-precision storage the exact path, which widens it in the
/// dispatched kernels' registers. On targets with float SIMD the two are the same arithmetic,
/// so a half-precision store gives the bits of an `f32` store of the widened numbers.
#[inline(always)]
pub(crate) fn absorb<K: crate::Kernel + ?Sized, E: Element>(
    l: &mut Lse,
    kernel: &K,
    q: &[f32],
    keys: &[E],
    values: &[E],
    dv: usize,
    acc: &mut [f32],
) -> Result<(), crate::Error> {
    match (E::as_f32(keys), E::as_f32(values)) {
        (Some(k), Some(v)) => l.absorb_fused(kernel, q, k, v, dv, acc),
        _ => l.absorb(kernel, q, keys, values, dv, acc),
    }
}

/// Scores of the key rows of `keys` (row length `q.len()`, elements `E`) into `out`, through
/// the kernel's `f32` [`scores`](crate::Kernel::scores): `f32` keys directly, half-precision ones
/// widened whole rows at a time into a stack buffer of [`HALF_KEY_WIDTH`] floats. Rows wider than
/// that are rejected by the shape check before any call gets here; should one arrive, its scores
/// are NaN (an error, never a wrong weight).
#[inline]
pub(crate) fn scores<K: crate::Kernel + ?Sized, E: Element>(
    kernel: &K,
    q: &[f32],
    keys: &[E],
    out: &mut [f32],
) {
    if let Some(keys) = E::as_f32(keys) {
        // `f32`: the keys are the kernel's input as they are.
        kernel.scores(q, keys, out);
        return;
    }
    let d = q.len();
    if d == 0 {
        out.fill(0.0);
        return;
    }
    // The crate's row kernels take the half-precision keys themselves, widened in registers:
    // the arithmetic `kernel.scores` does on `f32` keys, on half the bytes.
    #[cfg(target_arch = "x86_64")]
    if let Some((gauss, scale)) = kernel.row_form(crate::kernel::sealed::Crate(())) {
        let c = crate::x86::Chosen::active();
        let done = if gauss {
            crate::x86::row_scores::<true, E>(c, q, keys, scale, out)
        } else {
            crate::x86::row_scores::<false, E>(c, q, keys, scale, out)
        };
        if done.is_some() {
            return;
        }
    }
    let per = HALF_KEY_WIDTH / d;
    if per == 0 {
        out.fill(f32::NAN);
        return;
    }
    let mut buf = [0.0f32; HALF_KEY_WIDTH];
    let n = (keys.len() / d).min(out.len());
    let (Some(keys), Some(out)) = (keys.get(..n.saturating_mul(d)), out.get_mut(..n)) else {
        return;
    };
    let mut outs = out.chunks_mut(per);
    for kc in keys.chunks(per.saturating_mul(d)) {
        let Some(o) = outs.next() else { break };
        let Some(b) = buf.get_mut(..kc.len()) else {
            break;
        };
        E::widen_into(kc, b);
        kernel.scores(q, b, o);
    }
}

#[cfg(all(test, feature = "half"))]
mod tests {
    use super::sealed::Sealed;
    use half::{bf16, f16};
    use std::vec::Vec;

    /// Every one of the 65 536 `f16` and `bf16` bit patterns, in lanes and in the buffer
    /// widening, against `half`'s own scalar conversion: bit for bit (NaN payloads included).
    #[test]
    fn lanes_widen_every_bit_pattern_exactly() {
        let f16s: Vec<f16> = (0..=u16::MAX).map(f16::from_bits).collect();
        let bf16s: Vec<bf16> = (0..=u16::MAX).map(bf16::from_bits).collect();
        let mut wide = std::vec![0.0f32; f16s.len()];
        f16::widen_into(&f16s, &mut wide);
        for (c, w) in f16s.as_chunks::<8>().0.iter().zip(wide.as_chunks::<8>().0) {
            let got = f16::lanes(c).to_array();
            for ((h, g), b) in c.iter().zip(got).zip(w) {
                assert_eq!(
                    g.to_bits(),
                    h.to_f32().to_bits(),
                    "f16 {:#06x}",
                    h.to_bits()
                );
                assert_eq!(
                    b.to_bits(),
                    h.to_f32().to_bits(),
                    "f16 {:#06x}",
                    h.to_bits()
                );
            }
        }
        bf16::widen_into(&bf16s, &mut wide);
        for (c, w) in bf16s.as_chunks::<8>().0.iter().zip(wide.as_chunks::<8>().0) {
            let got = bf16::lanes(c).to_array();
            for ((h, g), b) in c.iter().zip(got).zip(w) {
                // A shift: NaN stays NaN but is not quieted (`half` sets the quiet bit).
                let want = h.to_f32();
                if want.is_nan() {
                    assert!(g.is_nan() && b.is_nan(), "bf16 {:#06x}", h.to_bits());
                    continue;
                }
                assert_eq!(g.to_bits(), want.to_bits(), "bf16 {:#06x}", h.to_bits());
                assert_eq!(b.to_bits(), want.to_bits(), "bf16 {:#06x}", h.to_bits());
            }
        }
        // The tails (fewer than eight) too, and the finiteness test on every pattern.
        let mut tail = [0.0f32; 5];
        f16::widen_into(&f16s[0x7bfe..0x7c03], &mut tail);
        for (h, t) in f16s[0x7bfe..0x7c03].iter().zip(tail) {
            assert_eq!(t.to_bits(), h.to_f32().to_bits());
        }
        for h in &f16s {
            assert_eq!(f16::all_finite(&[*h]), h.to_f32().is_finite());
        }
        for h in &bf16s {
            assert_eq!(bf16::all_finite(&[*h]), h.to_f32().is_finite());
        }
    }
}

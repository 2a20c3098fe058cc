//! The hot kernels of [`crate::simd`] once more, generic over a vector of `N` lanes, for the
//! run-time levels of [`crate::dispatch`]: `crate::x86` instantiates them for AVX2 + FMA
//! (`N = 8`) and AVX-512F (`N = 16`) inside `#[target_feature]` functions.
//!
//! Why not `wide` there: its types keep their compile-time representation inside a
//! `#[target_feature]` function. Measured on `f32x8::mul_add` in a function compiled for
//! `avx2,fma` of a default build (`--emit asm`): 128-bit `vmulps %xmm` and `vaddps %xmm`
//! pairs, no `ymm` register and no FMA.
//!
//! Each kernel is the same algorithm as its portable twin in `simd` (same range reduction and
//! polynomial, same tails, same blocking of rows and chains, same "every row by the same
//! arithmetic wherever it falls"), with `N` lanes and FMA: so the results are within the
//! twin's documented bounds, and every bit-identity the twin promises holds within a level.
//! Safe code: the vector operations are the methods of [`Simd`], whose only implementers (in
//! `crate::x86`) can only be made where their instructions run.

use crate::simd::{EXP_MIN, LN2_HI, LN2_LO, LOG2E, P, ROUNDER, ROUNDER_BITS};

/// `ROUNDER_BITS - 127`: subtracted from the rounded value's bits, then shifted into the
/// exponent field, gives `2^n`.
pub(crate) const POW2_BIAS: i32 = ROUNDER_BITS - 127;

/// A vector of `N` floats and the operations the kernels need, in the arithmetic of one
/// instruction level. A value of an implementing type proves that the level's instructions run
/// on this CPU (see `crate::x86`).
pub(crate) trait Simd<const N: usize>: Copy {
    /// `N` floats.
    type V: Copy;
    /// A lane mask, as [`Simd::ge`] gives it.
    type M: Copy;
    /// Every lane `x`.
    fn splat(self, x: f32) -> Self::V;
    /// The floats of `c`.
    fn load(self, c: &[f32; N]) -> Self::V;
    /// Writes `v` to `c`.
    fn store(self, c: &mut [f32; N], v: Self::V);
    /// The `f16`s of `c` widened to floats in the register (F16C), exactly.
    #[cfg(feature = "half")]
    fn load_f16(self, c: &[half::f16; N]) -> Self::V;
    /// The `bf16`s of `c` widened to floats in the register (a 16-bit shift), exactly.
    #[cfg(feature = "half")]
    fn load_bf16(self, c: &[half::bf16; N]) -> Self::V;
    /// `a + b`.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a - b`.
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a · b`.
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a · b + c`, rounded once.
    fn fma(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// The larger of `a` and `b` (either lane where one is NaN).
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    /// Lanes where `a ≥ b` (false for NaN).
    fn ge(self, a: Self::V, b: Self::V) -> Self::M;
    /// `v` where `m`, else `+0`.
    fn zero_unless(self, v: Self::V, m: Self::M) -> Self::V;
    /// `2^n` from `big = n + 1.5·2^23` (the exponential's rounded value): the bits of `big`
    /// minus [`POW2_BIAS`], shifted into the exponent field.
    fn pow2n(self, big: Self::V) -> Self::V;
    /// The sum of the lanes (lane `i` paired with `i + N/2` first, and so on down).
    fn sum(self, v: Self::V) -> f32;
    /// The four [`Simd::sum`]s of `v`, bit for bit, in fewer instructions where the level can
    /// transpose as it adds.
    #[inline(always)]
    fn sum4(self, v: [Self::V; 4]) -> [f32; 4] {
        [
            self.sum(v[0]),
            self.sum(v[1]),
            self.sum(v[2]),
            self.sum(v[3]),
        ]
    }
}

/// The array of `v`'s lanes.
#[inline(always)]
fn to_array<S: Simd<N>, const N: usize>(s: S, v: S::V) -> [f32; N] {
    let mut a = [0.0; N];
    s.store(&mut a, v);
    a
}

/// A stored element the kernels load into `N` lanes: `f32` as it is; with the `half` feature
/// `f16` and `bf16`, widened in the register as they are loaded (half the bytes read).
pub(crate) trait Load<S: Simd<N>, const N: usize>: Copy {
    /// The `N` elements of `c` as floats (exact).
    fn load(s: S, c: &[Self; N]) -> S::V;
    /// One element as a float (exact), for the scalar tails.
    fn widen(self) -> f32;
}

impl<S: Simd<N>, const N: usize> Load<S, N> for f32 {
    #[inline(always)]
    fn load(s: S, c: &[f32; N]) -> S::V {
        s.load(c)
    }
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
}

#[cfg(feature = "half")]
impl<S: Simd<N>, const N: usize> Load<S, N> for half::f16 {
    #[inline(always)]
    fn load(s: S, c: &[half::f16; N]) -> S::V {
        s.load_f16(c)
    }
    #[inline(always)]
    fn widen(self) -> f32 {
        self.to_f32()
    }
}

#[cfg(feature = "half")]
impl<S: Simd<N>, const N: usize> Load<S, N> for half::bf16 {
    #[inline(always)]
    fn load(s: S, c: &[half::bf16; N]) -> S::V {
        s.load_bf16(c)
    }
    #[inline(always)]
    fn widen(self) -> f32 {
        self.to_f32()
    }
}

/// `xs` widened into `out` (`min` of the two lengths), `N` at a time in lanes.
#[cfg(feature = "half")]
#[inline(always)]
pub(crate) fn widen_into<E: Load<S, N>, S: Simd<N>, const N: usize>(
    s: S,
    xs: &[E],
    out: &mut [f32],
) {
    let n = xs.len().min(out.len());
    let (Some(xs), Some(out)) = (xs.get(..n), out.get_mut(..n)) else {
        return;
    };
    let (xb, xt) = xs.as_chunks::<N>();
    let (ob, ot) = out.as_chunks_mut::<N>();
    for (o, x) in ob.iter_mut().zip(xb) {
        s.store(o, E::load(s, x));
    }
    for (o, x) in ot.iter_mut().zip(xt) {
        *o = x.widen();
    }
}

/// `exp(x)` in lanes for `x ≤ 0`: [`crate::simd::exp_lanes_nonpositive`] in `N` lanes.
#[inline(always)]
pub(crate) fn exp_nonpositive<S: Simd<N>, const N: usize>(s: S, x: S::V) -> S::V {
    let keep = s.ge(x, s.splat(EXP_MIN));
    // Lanes below EXP_MIN (and NaN) are computed at 0 and masked at the end: no subnormals.
    let x = s.zero_unless(x, keep);
    let big = s.fma(x, s.splat(LOG2E), s.splat(ROUNDER));
    let n = s.sub(big, s.splat(ROUNDER));
    let r = s.fma(n, s.splat(-LN2_HI), x);
    let r = s.fma(n, s.splat(-LN2_LO), r);
    let mut p = s.splat(P[0]);
    for c in &P[1..] {
        p = s.fma(p, r, s.splat(*c));
    }
    let y = s.add(s.fma(p, s.mul(r, r), r), s.splat(1.0));
    s.zero_unless(s.mul(y, s.pow2n(big)), keep)
}

/// [`crate::simd::exp_shift_sum`] in `N` lanes.
#[inline(always)]
pub(crate) fn exp_shift_sum<S: Simd<N>, const N: usize>(s: S, xs: &mut [f32], m: f32) -> f32 {
    let mv = s.splat(m);
    let (body, tail) = xs.as_chunks_mut::<N>();
    let mut acc = [s.splat(0.0); 2];
    let mut pairs = body.chunks_exact_mut(2);
    for pair in &mut pairs {
        for (a, c) in acc.iter_mut().zip(pair.iter_mut()) {
            let e = exp_nonpositive(s, s.sub(s.load(c), mv));
            s.store(c, e);
            *a = s.add(*a, e);
        }
    }
    for c in pairs.into_remainder() {
        let e = exp_nonpositive(s, s.sub(s.load(c), mv));
        s.store(c, e);
        acc[0] = s.add(acc[0], e);
    }
    if !tail.is_empty() {
        let mut pad = [f32::NEG_INFINITY; N];
        pad[..tail.len()].copy_from_slice(tail);
        let e = exp_nonpositive(s, s.sub(s.load(&pad), mv));
        let e = to_array(s, e);
        tail.copy_from_slice(&e[..tail.len()]);
        acc[1] = s.add(acc[1], s.load(&e));
    }
    s.sum(s.add(acc[0], acc[1]))
}

/// [`crate::simd::exp_shift_sum_dot`] in `N` lanes.
#[inline(always)]
pub(crate) fn exp_shift_sum_dot<S: Simd<N>, const N: usize>(
    s: S,
    xs: &[f32],
    y: &[f32],
    m: f32,
) -> (f32, f32) {
    let n = xs.len().min(y.len());
    let (Some(xs), Some(y)) = (xs.get(..n), y.get(..n)) else {
        return (0.0, 0.0);
    };
    let mv = s.splat(m);
    let (sb, st) = xs.as_chunks::<N>();
    let (yb, yt) = y.as_chunks::<N>();
    let (mut sum, mut dot) = (s.splat(0.0), s.splat(0.0));
    for (sc, yc) in sb.iter().zip(yb) {
        let e = exp_nonpositive(s, s.sub(s.load(sc), mv));
        sum = s.add(sum, e);
        dot = s.fma(e, s.load(yc), dot);
    }
    if !st.is_empty() {
        let mut ps = [f32::NEG_INFINITY; N];
        let mut py = [0.0f32; N];
        ps[..st.len()].copy_from_slice(st);
        let k = yt.len().min(st.len());
        py[..k].copy_from_slice(&yt[..k]);
        let e = exp_nonpositive(s, s.sub(s.load(&ps), mv));
        sum = s.add(sum, e);
        dot = s.fma(e, s.load(&py), dot);
    }
    (s.sum(sum), s.sum(dot))
}

/// [`crate::simd::max_score`] in `N` lanes (a block with a non-finite score goes to the same
/// cold scalar scan).
#[inline(always)]
pub(crate) fn max_score<S: Simd<N>, const N: usize>(
    s: S,
    xs: &[f32],
) -> Result<(f32, bool), crate::Error> {
    let (body, tail) = xs.as_chunks::<N>();
    let mut mx = s.splat(f32::NEG_INFINITY);
    let mut poison = s.splat(0.0);
    let zero = s.splat(0.0);
    for c in body {
        let v = s.load(c);
        mx = s.max(mx, v);
        poison = s.fma(v, zero, poison);
    }
    let mut m = f32::NEG_INFINITY;
    for v in to_array(s, mx) {
        m = m.max(v);
    }
    let mut p = s.sum(poison);
    for &v in tail {
        m = m.max(v);
        p += v * 0.0;
    }
    if p == 0.0 {
        Ok((m, false))
    } else {
        crate::simd::max_score_cold(xs)
    }
}

/// [`crate::simd::all_finite`] in `N` lanes.
#[inline(always)]
pub(crate) fn all_finite<S: Simd<N>, const N: usize>(s: S, xs: &[f32]) -> bool {
    let (body, tail) = xs.as_chunks::<N>();
    let zero = s.splat(0.0);
    let mut poison = [zero; 2];
    let mut pairs = body.chunks_exact(2);
    for pair in &mut pairs {
        for (p, c) in poison.iter_mut().zip(pair) {
            *p = s.fma(s.load(c), zero, *p);
        }
    }
    for c in pairs.remainder() {
        poison[0] = s.fma(s.load(c), zero, poison[0]);
    }
    let mut p = s.sum(s.add(poison[0], poison[1]));
    for &v in tail {
        p += v * 0.0;
    }
    p == 0.0
}

/// [`crate::simd::dot`] in `N` lanes, four accumulators.
#[inline(always)]
pub(crate) fn dot<E: Load<S, N>, S: Simd<N>, const N: usize>(s: S, a: &[f32], b: &[E]) -> f32 {
    let (ab, at) = a.as_chunks::<N>();
    let (bb, bt) = b.as_chunks::<N>();
    let mut acc = [s.splat(0.0); 4];
    let mut ai = ab.chunks_exact(4);
    let mut bi = bb.chunks_exact(4);
    for (a4, b4) in (&mut ai).zip(&mut bi) {
        for ((acc, x), y) in acc.iter_mut().zip(a4).zip(b4) {
            *acc = s.fma(s.load(x), E::load(s, y), *acc);
        }
    }
    for (x, y) in ai.remainder().iter().zip(bi.remainder()) {
        acc[0] = s.fma(s.load(x), E::load(s, y), acc[0]);
    }
    let mut r = s.sum(s.add(s.add(acc[0], acc[1]), s.add(acc[2], acc[3])));
    for (x, y) in at.iter().zip(bt) {
        r += x * y.widen();
    }
    r
}

/// Accumulator chains per key row in [`row_scores`]: with 16 or 32 registers, four rows of two
/// chains each (eight independent FMA chains cover the FMA latency) fit beside the query.
const SCORE_CHAINS: usize = 2;

/// One step of a score chain: `a + (q − k)²` (when `GAUSS`) or `a + q·k`, fused.
#[inline(always)]
fn score_step<const GAUSS: bool, E: Load<S, N>, S: Simd<N>, const N: usize>(
    s: S,
    a: S::V,
    qv: S::V,
    k: &[E; N],
) -> S::V {
    if GAUSS {
        let t = s.sub(qv, E::load(s, k));
        s.fma(t, t, a)
    } else {
        s.fma(qv, E::load(s, k), a)
    }
}

/// [`crate::simd`]'s `four_row_sums` in `N` lanes: `Σ (q_j − k_j)²` (when `GAUSS`) or
/// `Σ q_j k_j` over the whole lanes of four rows, `H` chains per row (alternate lane chunks).
///
/// No closures here or in the other kernels: a closure does not inherit the `#[target_feature]`
/// of the function it is written in, and one that is not inlined calls every intrinsic out of
/// line (measured: 2.3x the instructions of the SSE2 build on batched attention).
#[inline(always)]
fn four_row_sums<const GAUSS: bool, const H: usize, E: Load<S, N>, S: Simd<N>, const N: usize>(
    s: S,
    q: &[[f32; N]],
    rows: [&[[E; N]]; 4],
) -> [f32; 4] {
    let zero = s.splat(0.0);
    let mut acc = [[zero; H]; 4];
    let (qp, qr) = q.as_chunks::<H>();
    let (p0, r0) = rows[0].as_chunks::<H>();
    let (p1, r1) = rows[1].as_chunks::<H>();
    let (p2, r2) = rows[2].as_chunks::<H>();
    let (p3, r3) = rows[3].as_chunks::<H>();
    // Indexed over slices cut to one length (the bounds checks fold away): a five-way `zip`
    // cost seven instructions per key row and lane chunk at d = 64.
    let n = qp
        .len()
        .min(p0.len())
        .min(p1.len())
        .min(p2.len())
        .min(p3.len());
    let (qp, p0, p1, p2, p3) = (&qp[..n], &p0[..n], &p1[..n], &p2[..n], &p3[..n]);
    for i in 0..n {
        for h in 0..H {
            let qv = s.load(&qp[i][h]);
            acc[0][h] = score_step::<GAUSS, E, S, N>(s, acc[0][h], qv, &p0[i][h]);
            acc[1][h] = score_step::<GAUSS, E, S, N>(s, acc[1][h], qv, &p1[i][h]);
            acc[2][h] = score_step::<GAUSS, E, S, N>(s, acc[2][h], qv, &p2[i][h]);
            acc[3][h] = score_step::<GAUSS, E, S, N>(s, acc[3][h], qv, &p3[i][h]);
        }
    }
    for ((((qc, k0), k1), k2), k3) in qr.iter().zip(r0).zip(r1).zip(r2).zip(r3) {
        let qv = s.load(qc);
        for (a, k) in acc.iter_mut().zip([k0, k1, k2, k3]) {
            if let Some(a0) = a.first_mut() {
                *a0 = score_step::<GAUSS, E, S, N>(s, *a0, qv, k);
            }
        }
    }
    // The chains of a row added from its first one, not from +0: a chain starts at +0 and
    // adds by round-to-nearest, so it is never -0, and `+0 + c` is `c` bit for bit (NaN
    // included). The same bits as starting from 0, one vector add per row fewer (LLVM may
    // not drop `0 + c` itself, because of -0).
    let mut rows = [zero; 4];
    for (r, a) in rows.iter_mut().zip(&acc) {
        let (Some(&first), Some(rest)) = (a.first(), a.get(1..)) else {
            continue;
        };
        let mut t = first;
        for x in rest {
            t = s.add(t, *x);
        }
        *r = t;
    }
    s.sum4(rows)
}

/// Scores one block of up to four rows `b` (row length `q.len()`) into `o`; a block of fewer
/// rows repeats its first row, so that every row is summed in the same order wherever it falls.
#[inline(always)]
fn score_block<const GAUSS: bool, E: Load<S, N>, S: Simd<N>, const N: usize>(
    s: S,
    q: &[f32],
    b: &[E],
    scale: f32,
    o: &mut [f32],
) {
    let d = q.len();
    let (qb, qt) = q.as_chunks::<N>();
    let Some(first) = b.get(..d) else { return };
    let r1 = b.get(d..2 * d).unwrap_or(first);
    let r2 = b.get(2 * d..3 * d).unwrap_or(first);
    let r3 = b.get(3 * d..4 * d).unwrap_or(first);
    let split = [
        first.as_chunks::<N>(),
        r1.as_chunks::<N>(),
        r2.as_chunks::<N>(),
        r3.as_chunks::<N>(),
    ];
    let bodies = [split[0].0, split[1].0, split[2].0, split[3].0];
    let sums = four_row_sums::<GAUSS, SCORE_CHAINS, E, S, N>(s, qb, bodies);
    for ((o, mut t), (_, kt)) in o.iter_mut().zip(sums).zip(split) {
        for (x, y) in qt.iter().zip(kt) {
            let y = y.widen();
            t += if GAUSS { (x - y) * (x - y) } else { x * y };
        }
        *o = scale * t;
    }
}

/// [`crate::simd::row_scores`] in `N` lanes for rows of at least `N` floats (`crate::x86`
/// sends no shorter rows; they would be scored in plain scalar code here).
#[inline(always)]
pub(crate) fn row_scores<const GAUSS: bool, E: Load<S, N>, S: Simd<N>, const N: usize>(
    s: S,
    q: &[f32],
    keys: &[E],
    scale: f32,
    out: &mut [f32],
) {
    let d = q.len();
    if d == 0 {
        out.fill(0.0);
        return;
    }
    let n = (keys.len() / d).min(out.len());
    let (Some(out), Some(keys)) = (out.get_mut(..n), keys.get(..n * d)) else {
        return;
    };
    let mut blocks = keys.chunks_exact(d.saturating_mul(4));
    let mut outs = out.chunks_exact_mut(4);
    for (b, o) in (&mut blocks).zip(&mut outs) {
        score_block::<GAUSS, E, S, N>(s, q, b, scale, o);
    }
    score_block::<GAUSS, E, S, N>(s, q, blocks.remainder(), scale, outs.into_remainder());
}

/// [`crate::simd::weighted_sum_into`] in `N` lanes for `dv == 1` (a [`dot`]) and `dv ≥ N`
/// (column blocks of up to eight vectors held in registers over every row); `crate::x86` sends
/// no other widths (they would run in plain scalar code here).
#[inline(always)]
pub(crate) fn weighted_sum_into<E: Load<S, N>, S: Simd<N>, const N: usize>(
    s: S,
    p: &[f32],
    values: &[E],
    dv: usize,
    acc: &mut [f32],
) {
    if dv == 0 {
        return;
    }
    let n = p.len().min(values.len() / dv);
    let (Some(p), Some(values)) = (p.get(..n), values.get(..n.saturating_mul(dv))) else {
        return;
    };
    if dv == 1 {
        if let Some(a) = acc.first_mut() {
            *a += dot(s, p, values);
        }
        return;
    }
    let (acc_body, acc_tail) = acc.as_chunks_mut::<N>();
    let mut blocks = acc_body;
    let mut col = 0usize;
    while !blocks.is_empty() {
        let taken = match blocks.len() {
            8.. => column_block::<8, E, S, N>(s, p, values, dv, col, &mut blocks),
            4.. => column_block::<4, E, S, N>(s, p, values, dv, col, &mut blocks),
            2.. => column_block::<2, E, S, N>(s, p, values, dv, col, &mut blocks),
            _ => column_block::<1, E, S, N>(s, p, values, dv, col, &mut blocks),
        };
        if taken == 0 {
            break;
        }
        col = col.saturating_add(taken * N);
    }
    if !acc_tail.is_empty() {
        for (&w, row) in p.iter().zip(values.chunks_exact(dv)) {
            let Some(rt) = row.get(col..) else { break };
            for (a, r) in acc_tail.iter_mut().zip(rt) {
                *a += w * r.widen();
            }
        }
    }
}

/// `simd`'s `column_block` in `N` lanes: `acc[..G] += Σ_i p_i · values[i][col .. col + NG]`
/// with the `G` accumulators in registers over all rows; takes `G` blocks off `blocks` and
/// returns `G`, or 0 if fewer are left.
#[inline(always)]
fn column_block<const G: usize, E: Load<S, N>, S: Simd<N>, const N: usize>(
    s: S,
    p: &[f32],
    values: &[E],
    dv: usize,
    col: usize,
    blocks: &mut &mut [[f32; N]],
) -> usize {
    let Some((acc, rest)) = core::mem::take(blocks).split_first_chunk_mut::<G>() else {
        return 0;
    };
    *blocks = rest;
    let mut regs = [s.splat(0.0); G];
    for (r, a) in regs.iter_mut().zip(acc.iter()) {
        *r = s.load(a);
    }
    let end = col.saturating_add(G * N);
    for (&w, row) in p.iter().zip(values.chunks_exact(dv)) {
        let Some(seg) = row.get(col..end) else { break };
        let Some(chunks) = seg.as_chunks::<N>().0.first_chunk::<G>() else {
            break;
        };
        let wv = s.splat(w);
        for (r, c) in regs.iter_mut().zip(chunks) {
            *r = s.fma(wv, E::load(s, c), *r);
        }
    }
    for (a, r) in acc.iter_mut().zip(regs) {
        s.store(a, r);
    }
    G
}

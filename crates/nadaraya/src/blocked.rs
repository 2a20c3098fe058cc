//! Register-blocked batched attention for the run-time levels of [`crate::dispatch`] (issue 14,
//! item 3): a block of `N·C` queries against each tile of [`TILE`] keys, gemm-style.
//!
//! - **Scores**, `S = Q·Kᵀ` (or `Σ_j (k_j − q_j)²` for the Gaussian, still the difference
//!   form): the query block is transposed once, so that the lanes run over *queries*; each key
//!   element is broadcast once and feeds `C` FMAs against query-column vectors, for `KR` keys at
//!   a time held in `KR·C` accumulators over the whole width `d`. No horizontal reduction: a
//!   score is one sequential FMA chain over `j = 0..d` in its own lane.
//! - **Softmax**: the tile's maximum, the rescale and the exponentials are vectorised over the
//!   score tile (one lane per query, [`crate::lanes::exp_nonpositive`]), off the FMA loops.
//! - **P·V**: one value-row vector load feeds the FMAs of `R` queries, whose `R·G`
//!   accumulators stay in registers over the tile.
//!
//! Every (query, key) pair is computed by the same lane arithmetic wherever the query falls:
//! its lane, its block, the other queries of the block (padding included) and the vector width
//! change nothing, so a row of a call is the same bits whatever the other rows of that call.
//! Safe code, as [`crate::lanes`]: `crate::x86` instantiates it inside `#[target_feature]`
//! functions.

use crate::lanes::{Simd, exp_nonpositive};
use crate::softmax::TILE;

/// The widest key rows the blocked kernel takes (its transposed query block is a stack array of
/// `BLOCK_MAX_D · QMAX` floats, 32 KiB); wider rows take the one-query-at-a-time path.
pub(crate) const BLOCK_MAX_D: usize = 256;
/// The most queries in one block (`N·C` at AVX-512).
pub(crate) const QMAX: usize = 32;
/// The most query vectors `C` of a block.
const CMAX: usize = 2;
/// Queries per P·V micro-kernel (a divisor of every lane count).
const R: usize = 4;

/// The online-softmax state of one block's queries, one entry per query (lane order), and what
/// was found on the way.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockState {
    /// The running maximum score (`-inf` while every score was `-inf`).
    pub(crate) max: [f32; QMAX],
    /// `Σ exp(s_i − max)` so far.
    pub(crate) sum: [f32; QMAX],
    /// A score was NaN or `+inf` (the verdict [`crate::Error::ScoreOverflow`]).
    pub(crate) overflow: [bool; QMAX],
    /// A score seen by the query was `-inf` (the caller checks that the inputs are finite).
    pub(crate) gaps: [bool; QMAX],
}

impl BlockState {
    /// No scores absorbed yet.
    pub(crate) const EMPTY: Self = Self {
        max: [f32::NEG_INFINITY; QMAX],
        sum: [0.0; QMAX],
        overflow: [false; QMAX],
        gaps: [false; QMAX],
    };
}

/// One block's operands: `q` holds the block's query rows (at most `N·C`, row length `d`),
/// `keys`/`values` every key and value row of the problem, `out` the block's output rows
/// (`dv` wide, zeroed by the caller). Under a causal mask `first` is the block's first query
/// row in the problem: query `first + t` sees keys `0..=first + t`.
#[derive(Debug)]
pub(crate) struct Block<'a> {
    pub(crate) q: &'a [f32],
    pub(crate) keys: &'a [f32],
    pub(crate) values: &'a [f32],
    pub(crate) d: usize,
    pub(crate) dv: usize,
    pub(crate) scale: f32,
    pub(crate) causal: Option<usize>,
}

/// One step of a score chain in the query lanes: `a + (k − q)²` (when `GAUSS`) or `a + k·q`.
#[inline(always)]
fn step<const GAUSS: bool, S: Simd<N>, const N: usize>(s: S, a: S::V, k: S::V, q: S::V) -> S::V {
    if GAUSS {
        let t = s.sub(k, q);
        s.fma(t, t, a)
    } else {
        s.fma(k, q, a)
    }
}

/// The scores of `K` key rows (`keys`, row length `d = qt.len() / C`) against the transposed
/// query block `qt` (`d` groups of `C` query vectors), times `scale`, into `out[..K·C]`.
#[inline(always)]
fn score_keys<const GAUSS: bool, const C: usize, const K: usize, S: Simd<N>, const N: usize>(
    s: S,
    qt: &[[[f32; N]; C]],
    keys: &[f32],
    scale: f32,
    out: &mut [[[f32; N]; C]],
) {
    let d = qt.len();
    let zero = s.splat(0.0);
    let mut acc = [[zero; C]; K];
    let mut rows: [&[f32]; K] = [&[]; K];
    for (k, r) in rows.iter_mut().enumerate() {
        let Some(row) = keys.get(k * d..(k + 1) * d) else {
            return;
        };
        *r = row;
    }
    for (j, qc) in qt.iter().enumerate() {
        let mut qv = [zero; C];
        for (v, c) in qv.iter_mut().zip(qc) {
            *v = s.load(c);
        }
        for (a, row) in acc.iter_mut().zip(&rows) {
            let Some(&x) = row.get(j) else { return };
            let b = s.splat(x);
            for (a, q) in a.iter_mut().zip(&qv) {
                *a = step::<GAUSS, S, N>(s, *a, b, *q);
            }
        }
    }
    let sv = s.splat(scale);
    for (o, a) in out.iter_mut().zip(&acc) {
        for (o, a) in o.iter_mut().zip(a) {
            s.store(o, s.mul(*a, sv));
        }
    }
}

/// `out[ρ][col..col + G·N] += Σ_i w_i^ρ · values[i][col..]` for the `R` queries of lane group
/// `g` of query vector `c` (weights `p[i][c][g·R + ρ]`), the `R·G` accumulators in registers
/// over the tile; rows `ρ ≥ rows` of the group are computed on zeros and not stored.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pv_block<const C: usize, const G: usize, S: Simd<N>, const N: usize>(
    s: S,
    p: &[[[f32; N]; C]],
    values: &[f32],
    dv: usize,
    c: usize,
    g: usize,
    col: usize,
    out: &mut [f32],
    rows: usize,
) {
    let zero = s.splat(0.0);
    let mut acc = [[zero; G]; R];
    for (rho, a) in acc.iter_mut().enumerate().take(rows) {
        let start = rho * dv + col;
        let Some(seg) = out.get(start..start + G * N) else {
            return;
        };
        for (a, x) in a.iter_mut().zip(seg.as_chunks::<N>().0) {
            *a = s.load(x);
        }
    }
    for (pi, row) in p.iter().zip(values.chunks_exact(dv)) {
        let Some(seg) = row.get(col..col + G * N) else {
            return;
        };
        let Some(vs) = seg.as_chunks::<N>().0.first_chunk::<G>() else {
            return;
        };
        let Some(pc) = pi.get(c) else { return };
        let Some(w) = pc.as_chunks::<R>().0.get(g) else {
            return;
        };
        let mut v = [zero; G];
        for (v, x) in v.iter_mut().zip(vs) {
            *v = s.load(x);
        }
        for (a, &w) in acc.iter_mut().zip(w) {
            let wv = s.splat(w);
            for (a, v) in a.iter_mut().zip(&v) {
                *a = s.fma(wv, *v, *a);
            }
        }
    }
    for (rho, a) in acc.iter().enumerate().take(rows) {
        let start = rho * dv + col;
        let Some(seg) = out.get_mut(start..start + G * N) else {
            return;
        };
        for (x, a) in seg.as_chunks_mut::<N>().0.iter_mut().zip(a) {
            s.store(x, *a);
        }
    }
}

/// The value columns `col..` that do not fill a vector, in scalar code, for the same `R`
/// queries as [`pv_block`].
#[inline(always)]
fn pv_tail<const C: usize, const N: usize>(
    p: &[[[f32; N]; C]],
    values: &[f32],
    dv: usize,
    c: usize,
    g: usize,
    col: usize,
    out: &mut [f32],
) {
    for (pi, row) in p.iter().zip(values.chunks_exact(dv)) {
        let Some(tail) = row.get(col..) else { return };
        let Some(w) = pi.get(c).and_then(|pc| pc.as_chunks::<R>().0.get(g)) else {
            return;
        };
        for (o, &w) in out.chunks_mut(dv).zip(w) {
            if let Some(o) = o.get_mut(col..) {
                for (o, v) in o.iter_mut().zip(tail) {
                    *o += w * v;
                }
            }
        }
    }
}

/// Absorbs the tile `p` (scores on entry, weights on exit) of `rows` keys starting at key `lo`
/// into the state; rescales the output rows whose maximum grew.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn softmax_tile<const C: usize, S: Simd<N>, const N: usize>(
    s: S,
    p: &mut [[[f32; N]; C]],
    lo: usize,
    nq: usize,
    causal: Option<usize>,
    dv: usize,
    out: &mut [f32],
    st: &mut BlockState,
) {
    let zero = s.splat(0.0);
    let rows = p.len();
    // The keys a query does not see score -inf: weight exactly 0, and no "gap".
    if let Some(first) = causal {
        for qi in 0..nq {
            let t = first.saturating_add(qi);
            let from = t.saturating_add(1).saturating_sub(lo);
            for pi in p.iter_mut().skip(from) {
                if let Some(x) = pi.get_mut(qi / N).and_then(|v| v.get_mut(qi % N)) {
                    *x = f32::NEG_INFINITY;
                }
            }
        }
    }
    let (maxes, _) = st.max.as_chunks_mut::<N>();
    let (sums, _) = st.sum.as_chunks_mut::<N>();
    for (c, (mc, sc)) in maxes.iter_mut().zip(sums.iter_mut()).enumerate().take(C) {
        let mut mx = s.splat(f32::NEG_INFINITY);
        let mut poison = zero;
        for pi in p.iter() {
            let Some(v) = pi.get(c) else { break };
            let v = s.load(v);
            mx = s.max(mx, v);
            poison = s.fma(v, zero, poison);
        }
        let mut mxa = [0.0f32; N];
        let mut pa = [0.0f32; N];
        s.store(&mut mxa, mx);
        s.store(&mut pa, poison);
        for l in 0..N {
            let qi = c * N + l;
            if qi >= nq {
                break;
            }
            let seen = match causal {
                Some(first) => first
                    .saturating_add(qi)
                    .saturating_add(1)
                    .saturating_sub(lo),
                None => rows,
            }
            .min(rows);
            if seen == 0 {
                continue;
            }
            let (Some(&m), Some(&p0)) = (mxa.get(l), pa.get(l)) else {
                break;
            };
            if p0 != 0.0 {
                // A NaN, +inf or -inf score among the lane's: the scan `max_score` makes.
                for pi in p.iter().take(seen) {
                    let Some(&v) = pi.get(c).and_then(|x| x.get(l)) else {
                        break;
                    };
                    #[allow(clippy::neg_cmp_op_on_partial_ord)]
                    if !(v < f32::INFINITY) {
                        if let Some(o) = st.overflow.get_mut(qi) {
                            *o = true;
                        }
                    } else if v == f32::NEG_INFINITY
                        && let Some(gp) = st.gaps.get_mut(qi)
                    {
                        *gp = true;
                    }
                }
            }
            let (Some(old), Some(sum)) = (mc.get_mut(l), sc.get_mut(l)) else {
                break;
            };
            if m > *old {
                if *sum != 0.0 {
                    let f = crate::simd::exp_scalar(*old - m);
                    *sum *= f;
                    if let Some(row) = out.get_mut(qi * dv..(qi + 1) * dv) {
                        for a in row {
                            *a *= f;
                        }
                    }
                }
                *old = m;
            }
        }
        let mv = s.load(mc);
        let mut tile_sum = zero;
        for pi in p.iter_mut() {
            let Some(v) = pi.get_mut(c) else { break };
            let e = exp_nonpositive(s, s.sub(s.load(v), mv));
            s.store(v, e);
            tile_sum = s.add(tile_sum, e);
        }
        let total = s.add(s.load(sc), tile_sum);
        s.store(sc, total);
    }
}

/// One block of queries against every key they see: scores, online softmax and `P·V` tile by
/// tile into `out` (the block's `nq` rows, zeroed by the caller) and `st`. `C ≤ CMAX` query
/// vectors, `KR` keys per score micro-kernel, `G` value vectors per P·V micro-kernel.
#[inline(always)]
pub(crate) fn query_block<
    const GAUSS: bool,
    const C: usize,
    const KR: usize,
    const G: usize,
    S: Simd<N>,
    const N: usize,
>(
    s: S,
    b: &Block<'_>,
    out: &mut [f32],
    st: &mut BlockState,
) {
    let (d, dv) = (b.d, b.dv);
    if d == 0 || dv == 0 || d > BLOCK_MAX_D || C > CMAX || !N.is_multiple_of(R) {
        return;
    }
    let nq = (b.q.len() / d).min(N * C).min(out.len() / dv);
    let n = (b.keys.len() / d).min(b.values.len() / dv);
    let hi = match b.causal {
        Some(first) => first.saturating_add(nq).min(n),
        None => n,
    };
    // The transposed block: qt[j][c][l] = query c·N + l, element j (zero for padding lanes).
    let mut qt_buf = [[[0.0f32; N]; C]; BLOCK_MAX_D];
    let Some(qt) = qt_buf.get_mut(..d) else {
        return;
    };
    for (qi, row) in b.q.chunks_exact(d).take(nq).enumerate() {
        for (x, qj) in row.iter().zip(qt.iter_mut()) {
            if let Some(v) = qj.get_mut(qi / N).and_then(|v| v.get_mut(qi % N)) {
                *v = *x;
            }
        }
    }
    let qt = &*qt;
    let mut tile = [[[0.0f32; N]; C]; TILE];
    let mut lo = 0usize;
    while lo < hi {
        let rows = (hi - lo).min(TILE);
        let (Some(kt), Some(vt), Some(p)) = (
            b.keys.get(lo * d..(lo + rows) * d),
            b.values.get(lo * dv..(lo + rows) * dv),
            tile.get_mut(..rows),
        ) else {
            return;
        };
        // Scores, KR keys at a time, then one at a time: the same chain for every key.
        let mut kb = kt.chunks_exact(KR * d);
        let mut pb = p.chunks_exact_mut(KR);
        for (k, o) in (&mut kb).zip(&mut pb) {
            score_keys::<GAUSS, C, KR, S, N>(s, qt, k, b.scale, o);
        }
        for (k, o) in kb
            .remainder()
            .chunks_exact(d)
            .zip(pb.into_remainder().chunks_exact_mut(1))
        {
            score_keys::<GAUSS, C, 1, S, N>(s, qt, k, b.scale, o);
        }
        softmax_tile::<C, S, N>(s, p, lo, nq, b.causal, dv, out, st);
        let p = &*p;
        // P·V, R queries by G (then 1) value vectors, then the scalar columns.
        let full = dv / N;
        for c in 0..C {
            for g in 0..N / R {
                let q0 = c * N + g * R;
                if q0 >= nq {
                    break;
                }
                let Some(o) = out.get_mut(q0 * dv..) else {
                    break;
                };
                let qrows = (nq - q0).min(R);
                let mut v = 0usize;
                while v + G <= full {
                    pv_block::<C, G, S, N>(s, p, vt, dv, c, g, v * N, o, qrows);
                    v += G;
                }
                while v < full {
                    pv_block::<C, 1, S, N>(s, p, vt, dv, c, g, v * N, o, qrows);
                    v += 1;
                }
                if full * N < dv {
                    let end = (qrows * dv).min(o.len());
                    if let Some(o) = o.get_mut(..end) {
                        pv_tail::<C, N>(p, vt, dv, c, g, full * N, o);
                    }
                }
            }
        }
        lo += rows;
    }
}

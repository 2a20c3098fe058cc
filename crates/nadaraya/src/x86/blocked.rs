//! The `#[target_feature]` entry points of the register-blocked batched attention
//! ([`crate::blocked`]) and its dispatch.
//!
//! Block shapes, chosen so that nothing spills (checked in the `--emit asm`):
//! - AVX-512F (32 registers of 16 lanes): 32 queries (`C = 2` vectors); scores 8 keys × 2 = 16
//!   accumulators, 2 query vectors, the key elements broadcast from memory; P·V 4 queries × 4
//!   value vectors = 16 accumulators and 4 value vectors. A block of at most 16 queries (a call
//!   of 8–16, or the last block of a call) takes one vector (`C = 1`), not two half empty.
//! - AVX2 + FMA (16 registers of 8 lanes): 16 queries (`C = 2`); scores 4 keys × 2 = 8
//!   accumulators beside 2 query vectors and a broadcast; P·V 4 queries × 2 value vectors = 8
//!   accumulators and 2 value vectors.

use super::{Avx2, Avx512, Chosen, Level};
use crate::blocked::{self, Block, BlockState};

#[target_feature(enable = "avx2,fma,f16c")]
fn avx2_block<const GAUSS: bool>(b: &Block<'_>, out: &mut [f32], st: &mut BlockState) {
    blocked::query_block::<GAUSS, 2, 4, 2, _, 8>(Avx2(()), b, out, st);
}

#[target_feature(enable = "avx512f,avx2,fma,f16c")]
fn avx512_block<const GAUSS: bool, const C: usize>(
    b: &Block<'_>,
    out: &mut [f32],
    st: &mut BlockState,
) {
    blocked::query_block::<GAUSS, C, 8, 4, _, 16>(Avx512(()), b, out, st);
}

/// Queries per block at level `c`, or `None` at the baseline (no blocked kernel).
#[inline]
pub(crate) fn block_queries(c: Chosen) -> Option<usize> {
    match c.0 {
        Level::Avx512 => Some(32),
        Level::Avx2 => Some(16),
        Level::Baseline => None,
    }
}

/// [`blocked::query_block`] at level `c` (`Some(())`), or `None` at the baseline.
#[inline]
pub(crate) fn query_block<const GAUSS: bool>(
    c: Chosen,
    b: &Block<'_>,
    out: &mut [f32],
    st: &mut BlockState,
) -> Option<()> {
    match c.0 {
        // A block of at most 16 queries (a call of 8-16, or a call's last block) in one vector
        // of lanes: half the score work of two. The lanes' arithmetic is the same, so are the
        // bits.
        // SAFETY: a `Chosen` only holds a level this CPU runs (its constructors).
        Level::Avx512 if b.q.len() <= b.d.saturating_mul(16) => unsafe {
            avx512_block::<GAUSS, 1>(b, out, st)
        },
        // SAFETY: as above.
        Level::Avx512 => unsafe { avx512_block::<GAUSS, 2>(b, out, st) },
        // SAFETY: as above.
        Level::Avx2 => unsafe { avx2_block::<GAUSS>(b, out, st) },
        Level::Baseline => return None,
    }
    Some(())
}

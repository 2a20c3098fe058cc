//! Batches and heads: many independent attention problems, optionally on the rayon pool.

use crate::{Error, FavorPlus, attention, causal_attention};

/// Whether each query sees every key or only the keys up to its own position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mask {
    /// Every query sees every key ([`attention`]).
    None,
    /// Query `t` sees keys `0..=t` ([`causal_attention`]).
    Causal,
}

/// The per-problem block lengths `(q, keys, values, out)` of a batch of `h` problems.
fn blocks(
    h: usize,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    d: usize,
    dv: usize,
    out: &[f32],
) -> Result<(usize, usize, usize, usize), Error> {
    if h == 0 {
        return Err(Error::Empty);
    }
    if d == 0 || dv == 0 {
        return Err(Error::ZeroDimension);
    }
    if !q.len().is_multiple_of(h)
        || !keys.len().is_multiple_of(h)
        || !values.len().is_multiple_of(h)
    {
        return Err(Error::ShapeMismatch);
    }
    let (qb, kb, vb) = (q.len() / h, keys.len() / h, values.len() / h);
    if !qb.is_multiple_of(d) {
        return Err(Error::ShapeMismatch);
    }
    let ob = qb / d * dv;
    if out.len() < h * ob {
        return Err(Error::OutputTooSmall);
    }
    Ok((qb, kb, vb, ob))
}

/// One problem of a batch. On error its whole output block is set to zeros, so what a failed
/// problem leaves does not depend on how far it got (nor on the path that ran it).
#[allow(clippy::too_many_arguments)]
fn one(
    f: &FavorPlus,
    mask: Mask,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    d: usize,
    dv: usize,
    o: &mut [f32],
) -> Result<(), Error> {
    let r = match mask {
        Mask::None => attention(f, q, k, v, d, dv, o),
        Mask::Causal => causal_attention(f, q, k, v, d, dv, o),
    };
    if r.is_err() {
        o.fill(0.0);
    }
    r
}

/// `H = features.len()` independent attention problems (a batch, or the heads of a layer), one
/// after another on the calling thread.
///
/// Problem `h` uses `features[h]` and the `h`-th of `H` equal contiguous blocks of `q`, `keys`,
/// `values` and `out` (each block shaped as in [`attention`]). Problems are independent, so
/// [`batch_attention`] can run them in parallel with bit-identical results.
///
/// # What the output holds after an error
/// Every problem runs, even after one has failed. A problem that succeeded holds its result; a
/// problem that failed has its whole block of `out` set to `0.0`; `out` past the `H` blocks is
/// never written. An error found before any problem runs (the batch's own shape checks below)
/// writes nothing. [`batch_attention`] leaves exactly the same contents.
///
/// # Errors
/// [`Error::Empty`] if `features` is empty; [`Error::ZeroDimension`] if `d == 0` or `dv == 0`;
/// [`Error::ShapeMismatch`] if a slice does not split into `H` blocks of whole rows;
/// [`Error::OutputTooSmall`]; otherwise the error of the first failing problem in order, as
/// [`attention`] / [`causal_attention`] report it.
///
/// # Examples
/// ```
/// use nadaraya_rf::{batch_attention_serial, FavorPlus, Mask};
/// let heads = [FavorPlus::for_dim(2, 16, 0)?, FavorPlus::for_dim(2, 16, 1)?];
/// let x = [0.1, 0.2, 0.3, 0.4]; // one token of d = 2 per head
/// let v = [1.0, 2.0];
/// let mut out = [0.0; 2];
/// batch_attention_serial(&heads, &x, &x, &v, 2, 1, Mask::Causal, &mut out)?;
/// assert!((out[0] - 1.0).abs() < 1e-6 && (out[1] - 2.0).abs() < 1e-6);
/// # Ok::<(), nadaraya_rf::Error>(())
/// ```
#[allow(clippy::too_many_arguments)]
pub fn batch_attention_serial(
    features: &[FavorPlus],
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    d: usize,
    dv: usize,
    mask: Mask,
    out: &mut [f32],
) -> Result<(), Error> {
    let (qb, kb, vb, ob) = blocks(features.len(), q, keys, values, d, dv, out)?;
    let mut first = Ok(());
    for (h, f) in features.iter().enumerate() {
        let r = one(
            f,
            mask,
            &q[h * qb..(h + 1) * qb],
            &keys[h * kb..(h + 1) * kb],
            &values[h * vb..(h + 1) * vb],
            d,
            dv,
            &mut out[h * ob..(h + 1) * ob],
        );
        if first.is_ok() {
            first = r;
        }
    }
    first
}

/// As [`batch_attention_serial`], with the problems spread over the rayon thread pool when the
/// `rayon` feature is on (serially otherwise).
///
/// Each problem runs the same serial code on its own block, so the output is bit-identical to
/// [`batch_attention_serial`], after an error too (failed problems' blocks are zeros, the others
/// hold their results), and so is the error: that of the first failing problem in order.
///
/// # Errors
/// As [`batch_attention_serial`].
#[allow(clippy::too_many_arguments)]
pub fn batch_attention(
    features: &[FavorPlus],
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    d: usize,
    dv: usize,
    mask: Mask,
    out: &mut [f32],
) -> Result<(), Error> {
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        let (qb, kb, vb, ob) = blocks(features.len(), q, keys, values, d, dv, out)?;
        if ob == 0 {
            // No queries: nothing to write, only the checks of every problem.
            return batch_attention_serial(features, q, keys, values, d, dv, mask, out);
        }
        // Every problem runs (no short-circuit); the error kept is the one of the lowest index.
        let first = features
            .par_iter()
            .zip(out[..features.len() * ob].par_chunks_mut(ob))
            .enumerate()
            .filter_map(|(h, (f, o))| {
                one(
                    f,
                    mask,
                    &q[h * qb..(h + 1) * qb],
                    &keys[h * kb..(h + 1) * kb],
                    &values[h * vb..(h + 1) * vb],
                    d,
                    dv,
                    o,
                )
                .err()
                .map(|e| (h, e))
            })
            .min_by_key(|&(h, _)| h);
        first.map_or(Ok(()), |(_, e)| Err(e))
    }
    #[cfg(not(feature = "rayon"))]
    {
        batch_attention_serial(features, q, keys, values, d, dv, mask, out)
    }
}

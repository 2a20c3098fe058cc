//! Exact attention on several cores: query-parallel ([`attention`]) and split-K over the keys
//! ([`attention_split`], "flash decoding"), on the rayon pool with the `rayon` feature and on the
//! calling thread without it, with the same results bit for bit either way.
//!
//! These are the core's exact [`nadaraya::attention`], not random features: they live here
//! because this is the workspace's std layer, the one crate that already runs work on rayon
//! (batches and heads of [`FavorPlus`](crate::FavorPlus)), so an application gets one optional
//! `rayon` dependency and one pool for both; the `no_std` core stays free of threads and
//! allocation. The core's keys and values may be stored as any [`Element`] (with the core's
//! `half` feature, `f16` or `bf16`).

use nadaraya::{
    Element, Kernel, Mask, Rows, RowsMut, attention_lse, attention_shape, causal_attention_from,
};

use crate::Error;

/// Queries per task of [`attention`]: a multiple of the core's query blocks (4 on the per-pair
/// path; 16 at AVX2 and 32 at AVX-512 in its register-blocked kernel), so a task fills whole
/// blocks as the serial call does. With 16, every AVX-512 task filled half a block and did
/// twice the serial call's score work (`bash benches/scaling.sh`: one thread 25.6 ms against
/// the serial core's 14.8 ms at L = 2048). 32 rather than 64: the same instructions (callgrind,
/// L = 2048 at AVX2: 203.90 M against 203.88 M, the serial core 203.87 M) and half the tail a
/// thread waits for at the end of a call (`benches/examples/par_anatomy.rs`, eight runs: 0.06
/// to 0.16 ms of the call not spent computing on both threads, against 0.08 to 0.23 ms).
const QUERY_TASK: usize = 32;

/// The fewest queries of a task of [`attention`], when the call has that many: the core
/// computes calls of eight queries or more in its register-blocked kernel (at the AVX levels,
/// see [`nadaraya::attention`]), whose rows are the same bits whatever their companions (under
/// the causal mask: whatever the run of rows, [`causal_attention_from`]), and fewer in another
/// order. A last task shorter than this joins the one before.
const MIN_TASK: usize = 8;

/// The task splitting of both entry points: runs `task(i, part)` for every part (disjoint pieces
/// of the output), on the rayon pool when `parallel`, else in order on the calling thread; every
/// part runs. One part, or a pool of one thread, runs on the calling thread too: the same
/// results without handing the call to a pool thread and back. Returns [`Error::NonFinite`] if
/// any of `inputs` is not finite (the core names a non-finite input anywhere, even one only
/// another task reads), else the error of the lowest `i` that failed.
///
/// Every part is its own leaf of rayon's splitting (`with_max_len(1)`), so a thread that runs
/// out of work can take any part not yet started. Rayon's default splits a list only into as
/// many pieces as it has threads, and again only where a piece is stolen: on two threads, 32
/// parts ran as pieces of 8 and 4 that no other thread could take, and when one vCPU ran slower
/// than the other (on this machine two serial calls, one per thread, took e.g. 14.8 and 10.6
/// ms) the call waited for its last pieces. Measured by `benches/examples/par_anatomy.rs`
/// (L = 2048, d = 64, alternated round by round in one process; eight runs at real-time
/// priority under contention, 2026-12-01; benches/analysis.md, "Two cores"): the time the two
/// threads were not both computing went from 0.14–1.46 ms of a 5.0–11.3 ms call (|busy₀ −
/// busy₁| up to 2.7 ms) to 0.06–0.16 ms, and the serial core over the call from 1.35–1.88× to
/// 1.62–1.92×, 0.94–0.98 of what two independent serial calls on the two threads got in the
/// same rounds (1.82–2.02× in the six runs that measured it). Causal calls are split into the
/// same blocks (each through [`causal_attention_from`]).
fn run_tasks<T: Send, E: Element, F: Fn(usize, T) -> Result<(), Error> + Sync + Send>(
    inputs: (Rows<'_>, Rows<'_, E>, Rows<'_, E>),
    parts: Vec<T>,
    parallel: bool,
    task: F,
) -> Result<(), Error> {
    let first = || {
        #[cfg(feature = "rayon")]
        if parallel && parts.len() > 1 && rayon::current_num_threads() > 1 {
            use rayon::prelude::*;
            return parts
                .into_par_iter()
                .with_max_len(1)
                .enumerate()
                .filter_map(|(i, x)| task(i, x).err().map(|e| (i, e)))
                .min_by_key(|&(i, _)| i)
                .map_or(Ok(()), |(_, e)| Err(e));
        }
        let _ = parallel;
        let mut first = Ok(());
        for (i, x) in parts.into_iter().enumerate() {
            let r = task(i, x);
            if first.is_ok() {
                first = r;
            }
        }
        first
    };
    let (q, keys, values) = inputs;
    first().map_err(|e| {
        if all_finite(q, keys, values) {
            e
        } else {
            Error::NonFinite
        }
    })
}

/// True if every query, key and value is finite.
fn all_finite<E: Element>(q: Rows<'_>, keys: Rows<'_, E>, values: Rows<'_, E>) -> bool {
    let all = |r: Rows<'_, E>| r.as_slice().iter().all(|x| x.to_f32().is_finite());
    q.as_slice().iter().all(|x| x.is_finite()) && all(keys) && all(values)
}

/// [`nadaraya::attention`] with the queries split over the cores: blocks of 32 queries (the last
/// one up to 39, so that none has fewer than eight), each a task any thread of the pool can take;
/// under [`Mask::Causal`] each block is the core's [`causal_attention_from`] its first row, over
/// the keys up to its last row. Every row is exactly the core's, whatever the number of threads
/// (tested bit for bit against [`nadaraya::attention`]).
///
/// On the rayon pool with the `rayon` feature, else on the calling thread.
///
/// # Errors
/// Those of [`nadaraya::attention`], mapped to this crate's [`Error`], the same one the core
/// returns: shapes first (nothing written), then the first failing query's error in row order
/// (every task runs; rows of failed tasks may hold partial results).
///
/// # Examples
/// ```
/// use nadaraya_rf::{par, Mask, Rows, RowsMut};
/// use nadaraya_rf::nadaraya::{attention, SoftmaxDot};
/// let k = SoftmaxDot::new(1.0)?;
/// let x: Vec<f32> = (0..40).map(|i| (i as f32 * 0.37).sin()).collect();
/// let x = Rows::new(&x, 2)?;
/// let (mut a, mut b) = (vec![0.0; 40], vec![0.0; 40]);
/// par::attention(&k, x, x, x, Mask::Causal, RowsMut::new(&mut a, 2)?)?;
/// attention(&k, x, x, x, Mask::Causal, RowsMut::new(&mut b, 2)?)?;
/// assert_eq!(a, b);
/// # Ok::<(), nadaraya_rf::Error>(())
/// ```
pub fn attention<K: Kernel + Sync + ?Sized, E: Element>(
    kernel: &K,
    q: Rows<'_>,
    keys: Rows<'_, E>,
    values: Rows<'_, E>,
    mask: Mask,
    out: RowsMut<'_>,
) -> Result<(), Error> {
    attention_on(kernel, q, keys, values, mask, out, true)
}

/// [`attention`] on the calling thread, or on the pool (`parallel`).
fn attention_on<K: Kernel + Sync + ?Sized, E: Element>(
    kernel: &K,
    q: Rows<'_>,
    keys: Rows<'_, E>,
    values: Rows<'_, E>,
    mask: Mask,
    out: RowsMut<'_>,
    parallel: bool,
) -> Result<(), Error> {
    let (m, _) = attention_shape(q, keys, values, mask, out.as_rows())?;
    let dv = out.width();
    let causal = mask == Mask::Causal;
    if m == 0 || (causal && keys.len() > m && !all_finite(q, keys, values)) {
        // No query, or keys no query sees: the core's own checks (a NaN there is an error).
        return nadaraya::attention(kernel, q, keys, values, mask, out).map_err(Error::from);
    }
    let mut blocks: Vec<(usize, &mut [f32])> = Vec::new();
    let (mut rest, mut lo) = (out.into_slice(), 0);
    while lo < m {
        let mut take = QUERY_TASK.min(m - lo);
        if m - lo - take < MIN_TASK {
            take = m - lo;
        }
        let (block, tail) = rest.split_at_mut(take * dv);
        blocks.push((lo, block));
        (rest, lo) = (tail, lo + take);
    }
    run_tasks((q, keys, values), blocks, parallel, |_, (lo, o)| {
        let o = RowsMut::new(o, dv)?;
        let hi = (lo + o.len()).min(m);
        let qb = q.slice(lo, hi).unwrap_or(q);
        if causal {
            let (kb, vb) = (
                keys.slice(0, hi).unwrap_or(keys),
                values.slice(0, hi).unwrap_or(values),
            );
            return causal_attention_from(kernel, lo, qb, kb, vb, o).map_err(Error::from);
        }
        nadaraya::attention(kernel, qb, keys, values, Mask::None, o).map_err(Error::from)
    })
}

/// Split-K attention ("flash decoding"): the keys and values are cut into `chunks` consecutive
/// runs of near-equal length (`chunks` is clamped to `1..=N`), every chunk is attended over for
/// every query on its own core ([`nadaraya::attention_lse`]: each chunk's average and
/// log-sum-exp), and the chunks are merged in order by [`nadaraya::merge_averages`], the core's
/// [`OnlineSoftmax`](nadaraya::OnlineSoftmax) merge. For a single query over a long cache this
/// is what spreads the work over the cores (query-parallel [`attention`] cannot).
///
/// For a given `chunks` the result does not depend on the threads: the serial path runs the
/// same chunks and the same merge (tested bit for bit). It differs from the unsplit
/// [`nadaraya::attention`] only by rounding, within the same bound of an `f64` reference (a
/// merge of chunk states, as for [`OnlineSoftmax`](nadaraya::OnlineSoftmax)). No mask: decoding
/// sees the whole cache.
///
/// Memory: `chunks·M·(dv + 1)` floats of partial results, allocated fallibly.
///
/// Choosing `chunks`: the result depends on it, never on the threads, so fix it for
/// reproducible bits. The chunks are the tasks: with exactly one chunk per thread, a thread
/// that starts its chunk late (a worker woken from sleep) adds its delay to the whole call, and
/// nothing evens out uneven speeds; with a few chunks per thread the others take its share.
/// Each extra chunk costs one logarithm and one merge of `dv` floats per query, and a chunk of
/// at least a few thousand keys keeps the core's tiles long (`benches/scaling.sh` compares 2
/// and 8 chunks on two threads).
///
/// # Errors
/// - the shape errors of [`nadaraya::attention`] (nothing written);
/// - [`Error::TooManyFeatures`] if the partial results do not fit in memory;
/// - [`Error::NonFinite`] if any input is NaN or infinite (whichever chunk found what);
/// - else the error of the lowest failing chunk ([`Error::ScoreOverflow`]; a chunk where a query
///   has no support under a compact kernel is a chunk of no weight for that query), then
///   [`Error::Core`]`(`[`nadaraya::Error::NoSupport`]`)` if a query has no support in any chunk,
///   or [`Error::Overflow`] if a merged average is not finite.
///
/// # Examples
/// ```
/// use nadaraya_rf::{par, Mask, Rows, RowsMut};
/// use nadaraya_rf::nadaraya::{attention, SoftmaxDot};
/// let k = SoftmaxDot::new(1.0)?;
/// let x: Vec<f32> = (0..400).map(|i| (i as f32 * 0.37).sin()).collect();
/// let (q, kv) = (Rows::new(&x[..2], 2)?, Rows::new(&x, 2)?);
/// let (mut split, mut whole) = ([0.0; 2], [0.0; 2]);
/// par::attention_split(&k, q, kv, kv, 4, RowsMut::new(&mut split, 2)?)?;
/// attention(&k, q, kv, kv, Mask::None, RowsMut::new(&mut whole, 2)?)?;
/// assert!((split[0] - whole[0]).abs() < 1e-6 && (split[1] - whole[1]).abs() < 1e-6);
/// # Ok::<(), nadaraya_rf::Error>(())
/// ```
pub fn attention_split<K: Kernel + Sync + ?Sized, E: Element>(
    kernel: &K,
    q: Rows<'_>,
    keys: Rows<'_, E>,
    values: Rows<'_, E>,
    chunks: usize,
    out: RowsMut<'_>,
) -> Result<(), Error> {
    attention_split_on(kernel, q, keys, values, chunks, out, true)
}

/// [`attention_split`] with every chunk on the calling thread: the reference the parallel path
/// equals bit for bit.
///
/// # Errors
/// As [`attention_split`].
pub fn attention_split_serial<K: Kernel + Sync + ?Sized, E: Element>(
    kernel: &K,
    q: Rows<'_>,
    keys: Rows<'_, E>,
    values: Rows<'_, E>,
    chunks: usize,
    out: RowsMut<'_>,
) -> Result<(), Error> {
    attention_split_on(kernel, q, keys, values, chunks, out, false)
}

/// Fallibly allocated zeros.
fn zeros(n: usize) -> Result<Vec<f32>, Error> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::TooManyFeatures)?;
    v.resize(n, 0.0);
    Ok(v)
}

fn attention_split_on<K: Kernel + Sync + ?Sized, E: Element>(
    kernel: &K,
    q: Rows<'_>,
    keys: Rows<'_, E>,
    values: Rows<'_, E>,
    chunks: usize,
    mut out: RowsMut<'_>,
    parallel: bool,
) -> Result<(), Error> {
    let (m, n) = attention_shape(q, keys, values, Mask::None, out.as_rows())?;
    let dv = out.width();
    let c = chunks.clamp(1, n);
    let bounds = |i: usize| (i * n / c, (i + 1) * n / c);
    let size = c
        .checked_mul(m)
        .and_then(|cm| cm.checked_mul(dv))
        .ok_or(Error::TooManyFeatures)?;
    let mut parts = zeros(size)?;
    let mut lse = zeros(c * m)?;
    if m == 0 {
        return if all_finite(q, keys, values) {
            Ok(())
        } else {
            Err(Error::NonFinite)
        };
    }
    let jobs: Vec<(&mut [f32], &mut [f32])> =
        parts.chunks_mut(m * dv).zip(lse.chunks_mut(m)).collect();
    run_tasks((q, keys, values), jobs, parallel, |i, (p, l)| {
        let (lo, hi) = bounds(i);
        let (kc, vc) = (
            keys.slice(lo, hi).unwrap_or(keys),
            values.slice(lo, hi).unwrap_or(values),
        );
        match attention_lse(kernel, q, kc, vc, Mask::None, RowsMut::new(p, dv)?, l) {
            Err(nadaraya::Error::NoSupport) => {
                // Cold: the queries with support here, one at a time; the others get no weight
                // from this chunk.
                for t in 0..m {
                    let (qt, pt) = (q.slice(t, t + 1).unwrap_or(q), &mut p[t * dv..(t + 1) * dv]);
                    let lt = &mut l[t..t + 1];
                    match attention_lse(kernel, qt, kc, vc, Mask::None, RowsMut::new(pt, dv)?, lt) {
                        Err(nadaraya::Error::NoSupport) => {
                            pt.fill(0.0);
                            lt[0] = f32::NEG_INFINITY;
                        }
                        r => r?,
                    }
                }
                Ok(())
            }
            r => r.map_err(Error::from),
        }
    })?;
    for (t, o) in out.iter_mut().enumerate() {
        let chunk = |i: usize| {
            let at = i * m + t;
            (lse[at], &parts[at * dv..(at + 1) * dv])
        };
        nadaraya::merge_averages((0..c).map(chunk), o)?;
    }
    Ok(())
}

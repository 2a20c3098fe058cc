//! Batches and heads: many independent attention problems, optionally on the rayon pool.

use nadaraya::{Dim, Mask, Rows, RowsMut};

use crate::error::shape;
use crate::{Error, FavorPlus};

/// Checks a batch of `batch` problems (the core's rules and order, as
/// [`nadaraya::attention_batch`]) and returns the per-problem row counts of `(q, keys)`.
fn batch_rows(
    batch: usize,
    q: Rows<'_>,
    keys: Rows<'_>,
    values: Rows<'_>,
    out: Rows<'_>,
) -> Result<(usize, usize), Error> {
    if batch == 0 {
        return Err(Error::ZeroDimension);
    }
    for r in [q, keys, values, out] {
        if !r.len().is_multiple_of(batch) {
            return Err(shape(Dim::Batch, batch, r.len()));
        }
    }
    if values.len() != keys.len() {
        return Err(shape(Dim::ValueRows, keys.len(), values.len()));
    }
    if out.len() != q.len() {
        return Err(shape(Dim::OutputRows, q.len(), out.len()));
    }
    Ok((q.len() / batch, keys.len() / batch))
}

/// Rows `b·len..(b + 1)·len` of `x` (in range: the batch was checked).
fn block(x: Rows<'_>, b: usize, len: usize) -> Rows<'_> {
    x.slice(b * len, (b + 1) * len).unwrap_or(x)
}

/// One problem of a batch. On error its whole output block is set to zeros, so what a failed
/// problem leaves does not depend on how far it got (nor on the path that ran it).
#[allow(clippy::too_many_arguments)]
fn one(
    f: &FavorPlus,
    b: usize,
    (m, n): (usize, usize),
    q: Rows<'_>,
    keys: Rows<'_>,
    values: Rows<'_>,
    mask: Mask,
    mut o: RowsMut<'_>,
) -> Result<(), Error> {
    let r = f.attention(
        block(q, b, m),
        block(keys, b, n),
        block(values, b, n),
        mask,
        o.reborrow(),
    );
    if r.is_err() {
        o.as_mut_slice().fill(0.0);
    }
    r
}

/// The shared body of the four batch entry points: problem `b` uses `features(b)`.
#[allow(clippy::too_many_arguments)]
fn run<'f>(
    features: &(dyn Fn(usize) -> &'f FavorPlus + Sync),
    batch: usize,
    q: Rows<'_>,
    keys: Rows<'_>,
    values: Rows<'_>,
    mask: Mask,
    out: RowsMut<'_>,
    parallel: bool,
) -> Result<(), Error> {
    let mn = batch_rows(batch, q, keys, values, out.as_rows())?;
    let m = mn.0;
    // Blocks of `out` in its own width, so that a wrong width is the problems' shape error.
    let dv = out.width();
    let out = out.into_slice();
    #[cfg(feature = "rayon")]
    if parallel && m > 0 {
        use rayon::prelude::*;
        // Every problem runs (no short-circuit); the error kept is the one of the lowest index.
        let first = out
            .par_chunks_mut(m * dv)
            .enumerate()
            .filter_map(|(b, o)| {
                let o = RowsMut::new(o, dv).ok()?;
                one(features(b), b, mn, q, keys, values, mask, o)
                    .err()
                    .map(|e| (b, e))
            })
            .min_by_key(|&(b, _)| b);
        return first.map_or(Ok(()), |(_, e)| Err(e));
    }
    #[cfg(not(feature = "rayon"))]
    let _ = parallel;
    let mut first = Ok(());
    for b in 0..batch {
        let o = &mut out[b * m * dv..(b + 1) * m * dv];
        let r = one(
            features(b),
            b,
            mn,
            q,
            keys,
            values,
            mask,
            RowsMut::new(o, dv)?,
        );
        if first.is_ok() {
            first = r;
        }
    }
    first
}

impl FavorPlus {
    /// `batch` independent attention problems sharing these features (one projection for the
    /// whole batch, never a copy per problem), one after another on the calling thread.
    ///
    /// The layout is the core's [`nadaraya::attention_batch`]: problem `b` is rows
    /// `b·M..(b+1)·M` of `q` and `out` and rows `b·N..(b+1)·N` of `keys` and `values`, each block
    /// shaped as in [`attention`](Self::attention). Problems are independent, so
    /// [`attention_batch`](Self::attention_batch) can run them in parallel with bit-identical
    /// results. For a different feature map per problem (the heads of a layer) see
    /// [`attention_heads_serial`](Self::attention_heads_serial).
    ///
    /// # What the output holds after an error
    /// Every problem runs, even after one has failed. A problem that succeeded holds its result; a
    /// problem that failed has its whole block of `out` set to `0.0`. An error found before any
    /// problem runs (the batch's own shape checks below) writes nothing.
    /// [`attention_batch`](Self::attention_batch) leaves exactly the same contents.
    ///
    /// # Errors
    /// - [`Error::ZeroDimension`] if `batch == 0`;
    /// - [`Error::Shape`] with [`Dim::Batch`] if the rows of `q`, `keys`, `values` or `out` (in
    ///   that order) are not a multiple of `batch`;
    /// - [`Error::Shape`] with [`Dim::ValueRows`] or [`Dim::OutputRows`] if `values` and `keys`,
    ///   or `out` and `q`, have different row counts;
    /// - otherwise the error of the first failing problem in order, as
    ///   [`attention`](Self::attention) reports it.
    ///
    /// # Examples
    /// ```
    /// use nadaraya_rf::{FavorPlus, Mask, Rows, RowsMut};
    /// let f = FavorPlus::for_dim(2, 16, 0)?;
    /// let x = Rows::from_arrays(&[[0.1, 0.2], [0.3, 0.4]]); // one token per problem
    /// let v = Rows::from_arrays(&[[1.0], [2.0]]);
    /// let mut out = [[0.0]; 2];
    /// f.attention_batch_serial(2, x, x, v, Mask::Causal, RowsMut::from_arrays(&mut out))?;
    /// assert!((out[0][0] - 1.0).abs() < 1e-6 && (out[1][0] - 2.0).abs() < 1e-6);
    /// # Ok::<(), nadaraya_rf::Error>(())
    /// ```
    pub fn attention_batch_serial(
        &self,
        batch: usize,
        q: Rows<'_>,
        keys: Rows<'_>,
        values: Rows<'_>,
        mask: Mask,
        out: RowsMut<'_>,
    ) -> Result<(), Error> {
        run(&|_| self, batch, q, keys, values, mask, out, false)
    }

    /// As [`attention_batch_serial`](Self::attention_batch_serial), with the problems spread over
    /// the rayon thread pool when the `rayon` feature is on (serially otherwise).
    ///
    /// Each problem runs the same serial code on its own block, so the output is bit-identical
    /// to [`attention_batch_serial`](Self::attention_batch_serial), after an error too, and so is
    /// the error: that of the first failing problem in order.
    ///
    /// # Errors
    /// As [`attention_batch_serial`](Self::attention_batch_serial).
    pub fn attention_batch(
        &self,
        batch: usize,
        q: Rows<'_>,
        keys: Rows<'_>,
        values: Rows<'_>,
        mask: Mask,
        out: RowsMut<'_>,
    ) -> Result<(), Error> {
        run(&|_| self, batch, q, keys, values, mask, out, true)
    }

    /// `H = heads.len()` independent problems, problem `h` with its own features `heads[h]` (the
    /// heads of a layer), in the layout of
    /// [`attention_batch_serial`](Self::attention_batch_serial) with `batch = H`, one after another
    /// on the calling thread.
    ///
    /// # Errors
    /// As [`attention_batch_serial`](Self::attention_batch_serial) with `batch = heads.len()`
    /// ([`Error::ZeroDimension`] for no heads).
    ///
    /// # Examples
    /// ```
    /// use nadaraya_rf::{FavorPlus, Mask, Rows, RowsMut};
    /// let heads = [FavorPlus::for_dim(2, 16, 0)?, FavorPlus::for_dim(2, 16, 1)?];
    /// let x = Rows::from_arrays(&[[0.1, 0.2], [0.3, 0.4]]); // one token per head
    /// let v = Rows::from_arrays(&[[1.0], [2.0]]);
    /// let mut out = [[0.0]; 2];
    /// FavorPlus::attention_heads_serial(&heads, x, x, v, Mask::Causal,
    ///                                   RowsMut::from_arrays(&mut out))?;
    /// assert!((out[0][0] - 1.0).abs() < 1e-6 && (out[1][0] - 2.0).abs() < 1e-6);
    /// # Ok::<(), nadaraya_rf::Error>(())
    /// ```
    pub fn attention_heads_serial(
        heads: &[Self],
        q: Rows<'_>,
        keys: Rows<'_>,
        values: Rows<'_>,
        mask: Mask,
        out: RowsMut<'_>,
    ) -> Result<(), Error> {
        run(
            &|h| &heads[h],
            heads.len(),
            q,
            keys,
            values,
            mask,
            out,
            false,
        )
    }

    /// As [`attention_heads_serial`](Self::attention_heads_serial), on the rayon pool with the
    /// `rayon` feature (bit-identical results and errors), serially otherwise.
    ///
    /// # Errors
    /// As [`attention_heads_serial`](Self::attention_heads_serial).
    pub fn attention_heads(
        heads: &[Self],
        q: Rows<'_>,
        keys: Rows<'_>,
        values: Rows<'_>,
        mask: Mask,
        out: RowsMut<'_>,
    ) -> Result<(), Error> {
        run(
            &|h| &heads[h],
            heads.len(),
            q,
            keys,
            values,
            mask,
            out,
            true,
        )
    }
}

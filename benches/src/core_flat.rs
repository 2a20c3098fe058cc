//! The core's entry points in the slice-and-width convention the benchmarks were written in:
//! each builds the `Rows` views (checking the width once, as the core does) and calls the core.

use nadaraya::{Error, Kernel, Mask, OnlineSoftmax, Rows, RowsMut};

/// `nadaraya::attention` of `q` (`M×d`) against `keys` (`N×d`), `values` (`N×dv`) into `out`
/// (exactly `M×dv`), no mask.
///
/// # Errors
/// As `nadaraya::attention`, and the shape errors of `Rows::new`.
pub fn attention<K: Kernel + ?Sized>(
    k: &K,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    d: usize,
    dv: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    let (q, keys, values) = (
        Rows::new(q, d)?,
        Rows::new(keys, d)?,
        Rows::new(values, dv)?,
    );
    nadaraya::attention(k, q, keys, values, Mask::None, RowsMut::new(out, dv)?)
}

/// `nadaraya::scalar::attention`, as [`attention`].
///
/// # Errors
/// As `nadaraya::scalar::attention`.
pub fn scalar_attention<K: Kernel + ?Sized>(
    k: &K,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    d: usize,
    dv: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    let (q, keys, values) = (
        Rows::new(q, d)?,
        Rows::new(keys, d)?,
        Rows::new(values, dv)?,
    );
    nadaraya::scalar::attention(k, q, keys, values, Mask::None, RowsMut::new(out, dv)?)
}

/// `nadaraya::weights` of one query `q` against `keys` (of its width) into `out` (one per key).
///
/// # Errors
/// As `nadaraya::weights`.
pub fn weights<K: Kernel + ?Sized>(
    k: &K,
    q: &[f32],
    keys: &[f32],
    out: &mut [f32],
) -> Result<(), Error> {
    let (qr, keys) = (Rows::new(q, q.len())?, Rows::new(keys, q.len())?);
    let n = keys.len().max(1);
    nadaraya::weights(k, qr, keys, RowsMut::new(out, n)?)
}

/// `OnlineSoftmax::update` on flat keys (of width `q.len()`) and values (of width `DV`).
///
/// # Errors
/// As `OnlineSoftmax::update`.
pub fn update<K: Kernel + ?Sized, const DV: usize>(
    s: &mut OnlineSoftmax<DV>,
    k: &K,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
) -> Result<(), Error> {
    s.update(k, q, Rows::new(keys, q.len())?, Rows::new(values, DV)?)
}

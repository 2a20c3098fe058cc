//! The core's entry points in the slice-and-width convention this firmware was written in:
//! each builds the `Rows` views and calls the core (no allocation).
#![allow(dead_code)]

use nadaraya::{Error, Kernel, Mask, OnlineSoftmax, Rows, RowsMut};

fn views<'a>(
    q: &'a [f32],
    keys: &'a [f32],
    values: &'a [f32],
    (d, dv): (usize, usize),
) -> Result<(Rows<'a>, Rows<'a>, Rows<'a>), Error> {
    Ok((
        Rows::new(q, d)?,
        Rows::new(keys, d)?,
        Rows::new(values, dv)?,
    ))
}

/// The first `M` rows of `out` (`OutputTooSmall` if it is shorter).
fn out_rows<'o>(out: &'o mut [f32], m: usize, dv: usize) -> Result<RowsMut<'o>, Error> {
    match out.get_mut(..m * dv) {
        Some(o) => RowsMut::new(o, dv),
        None => Err(Error::OutputTooSmall),
    }
}

/// `nadaraya::attention` with `mask`, `out` at least `M·dv` long.
#[allow(clippy::too_many_arguments)]
pub fn attention_masked<K: Kernel + ?Sized>(
    k: &K,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    d: usize,
    dv: usize,
    mask: Mask,
    out: &mut [f32],
) -> Result<(), Error> {
    let (q, keys, values) = views(q, keys, values, (d, dv))?;
    nadaraya::attention(k, q, keys, values, mask, out_rows(out, q.len(), dv)?)
}

/// `nadaraya::attention` without a mask.
pub fn attention<K: Kernel + ?Sized>(
    k: &K,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    d: usize,
    dv: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    attention_masked(k, q, keys, values, d, dv, Mask::None, out)
}

/// `nadaraya::attention` with [`Mask::Causal`].
pub fn causal_attention<K: Kernel + ?Sized>(
    k: &K,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    d: usize,
    dv: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    attention_masked(k, q, keys, values, d, dv, Mask::Causal, out)
}

/// `nadaraya::weights` of one query `q` into `out[..N]`.
pub fn weights<K: Kernel + ?Sized>(
    k: &K,
    q: &[f32],
    keys: &[f32],
    out: &mut [f32],
) -> Result<(), Error> {
    let (qr, keys) = (Rows::new(q, q.len())?, Rows::new(keys, q.len())?);
    let n = keys.len();
    let out = out.get_mut(..n).ok_or(Error::OutputTooSmall)?;
    nadaraya::weights(k, qr, keys, RowsMut::new(out, n.max(1))?)
}

/// `OnlineSoftmax::update` on flat keys (of width `q.len()`) and values (of width `DV`).
pub fn update<K: Kernel + ?Sized, const DV: usize>(
    s: &mut OnlineSoftmax<DV>,
    k: &K,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
) -> Result<(), Error> {
    s.update(k, q, Rows::new(keys, q.len())?, Rows::new(values, DV)?)
}

/// The scalar twins.
pub mod scalar {
    use super::*;

    /// `nadaraya::scalar::attention` without a mask.
    pub fn attention<K: Kernel + ?Sized>(
        k: &K,
        q: &[f32],
        keys: &[f32],
        values: &[f32],
        d: usize,
        dv: usize,
        out: &mut [f32],
    ) -> Result<(), Error> {
        let (q, keys, values) = views(q, keys, values, (d, dv))?;
        nadaraya::scalar::attention(k, q, keys, values, Mask::None, out_rows(out, q.len(), dv)?)
    }

    /// `nadaraya::scalar::weights` of one query.
    pub fn weights<K: Kernel + ?Sized>(
        k: &K,
        q: &[f32],
        keys: &[f32],
        out: &mut [f32],
    ) -> Result<(), Error> {
        let (qr, keys) = (Rows::new(q, q.len())?, Rows::new(keys, q.len())?);
        let n = keys.len();
        let out = out.get_mut(..n).ok_or(Error::OutputTooSmall)?;
        nadaraya::scalar::weights(k, qr, keys, RowsMut::new(out, n.max(1))?)
    }
}

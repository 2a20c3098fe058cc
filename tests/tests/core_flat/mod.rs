//! The slice-and-width calling convention these suites were written in, over the core's `Rows`
//! API (issue 16): each helper builds the views and calls the real entry point, so the suites
//! test the new API unchanged. An `out` longer than `M·dv` is cut to its first `M` rows (the old
//! API wrote only those); one too short is `OutputTooSmall`, as it was.
#![allow(dead_code)]

use nadaraya::{
    Error, Kernel, Mask, MhaScratch, MhaWeights, MultiHeadAttention, OnlineSoftmax, Rows, RowsMut,
};

type Attn<K> = fn(&K, Rows<'_>, Rows<'_>, Rows<'_>, Mask, RowsMut<'_>) -> Result<(), Error>;

#[allow(clippy::too_many_arguments)]
fn call<K: Kernel + ?Sized>(
    f: Attn<K>,
    kernel: &K,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    (d, dv): (usize, usize),
    mask: Mask,
    out: &mut [f32],
) -> Result<(), Error> {
    let (q, keys, values) = (
        Rows::new(q, d)?,
        Rows::new(keys, d)?,
        Rows::new(values, dv)?,
    );
    let m = q.len() * dv;
    if out.len() < m {
        // The shape errors that come before the output's, then the output's.
        nadaraya::attention_shape(q, keys, values, mask, q.slice(0, 0).unwrap_or(q)).map_err(
            |e| match e {
                Error::Shape {
                    what: nadaraya::Dim::OutputWidth | nadaraya::Dim::OutputRows,
                    ..
                } => Error::OutputTooSmall,
                e => e,
            },
        )?;
        return Err(Error::OutputTooSmall);
    }
    f(
        kernel,
        q,
        keys,
        values,
        mask,
        RowsMut::new(&mut out[..m], dv)?,
    )
}

/// `attention(kernel, q, keys, values, d, dv, out)` with [`Mask::None`].
pub fn attention<K: Kernel + ?Sized>(
    k: &K,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    d: usize,
    dv: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    call(
        nadaraya::attention::<K, f32>,
        k,
        q,
        keys,
        values,
        (d, dv),
        Mask::None,
        out,
    )
}

/// `attention` with [`Mask::Causal`].
pub fn causal_attention<K: Kernel + ?Sized>(
    k: &K,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    d: usize,
    dv: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    call(
        nadaraya::attention::<K, f32>,
        k,
        q,
        keys,
        values,
        (d, dv),
        Mask::Causal,
        out,
    )
}

fn weights_with<K: Kernel + ?Sized>(
    f: fn(&K, Rows<'_>, Rows<'_>, RowsMut<'_>) -> Result<(), Error>,
    k: &K,
    q: &[f32],
    keys: &[f32],
    out: &mut [f32],
) -> Result<(), Error> {
    let (qr, keys) = (Rows::new(q, q.len())?, Rows::new(keys, q.len())?);
    let n = keys.len();
    if n == 0 {
        return Err(Error::Empty);
    }
    if out.len() < n {
        return Err(Error::OutputTooSmall);
    }
    f(k, qr, keys, RowsMut::new(&mut out[..n], n)?)
}

/// The weights of one query `q` (its length is the key width) into `out[..N]`.
pub fn weights<K: Kernel + ?Sized>(
    k: &K,
    q: &[f32],
    keys: &[f32],
    out: &mut [f32],
) -> Result<(), Error> {
    weights_with(nadaraya::weights::<K>, k, q, keys, out)
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

/// A layer over leaked weights (the by-value constructor these suites were written with).
pub fn mha<K: Kernel, const DM: usize, const H: usize, const DH: usize>(
    kernels: [K; H],
    w_q: [[[f32; DH]; DM]; H],
    w_k: [[[f32; DH]; DM]; H],
    w_v: [[[f32; DH]; DM]; H],
    w_o: [[[f32; DM]; DH]; H],
) -> Result<MultiHeadAttention<'static, K, DM, H, DH>, Error> {
    let w = Box::leak(Box::new(MhaWeights { w_q, w_k, w_v, w_o }));
    MultiHeadAttention::new(kernels, w)
}

/// `forward` with fresh scratch for `L` tokens and a `bool` mask.
pub fn forward<const L: usize, K: Kernel, const DM: usize, const H: usize, const DH: usize>(
    m: &MultiHeadAttention<'_, K, DM, H, DH>,
    x: &[[f32; DM]],
    causal: bool,
    out: &mut [[f32; DM]],
) -> Result<(), Error> {
    let mask = if causal { Mask::Causal } else { Mask::None };
    let mut scratch = Box::new(MhaScratch::<L, DM, DH>::new());
    m.forward(x, mask, &mut scratch, out)
}

/// The scalar twins.
pub mod scalar {
    use super::*;

    /// `scalar::attention` with [`Mask::None`].
    pub fn attention<K: Kernel + ?Sized>(
        k: &K,
        q: &[f32],
        keys: &[f32],
        values: &[f32],
        d: usize,
        dv: usize,
        out: &mut [f32],
    ) -> Result<(), Error> {
        call(
            nadaraya::scalar::attention::<K>,
            k,
            q,
            keys,
            values,
            (d, dv),
            Mask::None,
            out,
        )
    }

    /// `scalar::weights` of one query.
    pub fn weights<K: Kernel + ?Sized>(
        k: &K,
        q: &[f32],
        keys: &[f32],
        out: &mut [f32],
    ) -> Result<(), Error> {
        weights_with(nadaraya::scalar::weights::<K>, k, q, keys, out)
    }
}

//! Plain scalar paths beside the SIMD ones: the same computation, one float at a time.
//!
//! These exist to test the lanes against (at every length and at edge values) and to measure
//! what SIMD buys (`benches/`). They use [`Kernel::score`] and the scalar twin of the lanes'
//! exponential, in two passes (maximum, then exponentials and sums).

use crate::attention::{check_shapes, check_weights_shape};
use crate::softmax::headroom;
use crate::{Error, Kernel, simd};

/// Scalar [`attention`](crate::attention): same shapes, same errors.
///
/// # Errors
/// As [`attention`](crate::attention).
///
/// # Examples
/// ```
/// use nadaraya::{scalar, Gaussian};
/// let mut out = [0.0];
/// scalar::attention(&Gaussian::new(1.0)?, &[0.0], &[-1.0, 1.0], &[2.0, 4.0], 1, 1, &mut out)?;
/// assert!((out[0] - 3.0).abs() < 1e-6);
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn attention<K: Kernel + ?Sized>(
    kernel: &K,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    d: usize,
    dv: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    let shape = check_shapes(q, keys, values, d, dv, out)?;
    let (d, dv) = (shape.d.get(), shape.dv.get());
    if !q.iter().chain(keys).chain(values).all(|v| v.is_finite()) {
        return Err(Error::NonFinite);
    }
    let mut rows = out.chunks_exact_mut(dv);
    for qr in q.chunks_exact(d) {
        let Some(o) = rows.next() else { break };
        let mut m = f32::NEG_INFINITY;
        for k in keys.chunks_exact(d) {
            let s = kernel.score(qr, k);
            if !s.is_finite() {
                return Err(Error::ScoreOverflow);
            }
            m = m.max(s);
        }
        o.fill(0.0);
        let mut sum = 0.0f32;
        for (k, v) in keys.chunks_exact(d).zip(values.chunks_exact(dv)) {
            let e = simd::exp_scalar(kernel.score(qr, k) - m);
            sum += e;
            for (a, y) in o.iter_mut().zip(v) {
                *a += e * y;
            }
        }
        if o.iter().all(|v| v.is_finite()) {
            for a in o.iter_mut() {
                *a /= sum;
            }
            continue;
        }
        // A partial sum overflowed: the same weights again, scaled by 2^-k with 2^k > 2N so that
        // no partial sum can (the SIMD path's `exact_average`, one float at a time).
        let (down, up) = headroom(keys.len() / d);
        o.fill(0.0);
        for (k, v) in keys.chunks_exact(d).zip(values.chunks_exact(dv)) {
            let e = simd::exp_scalar(kernel.score(qr, k) - m) * down;
            for (a, y) in o.iter_mut().zip(v) {
                *a += e * y;
            }
        }
        for a in o.iter_mut() {
            *a = *a / sum * up;
        }
        if !o.iter().all(|v| v.is_finite()) {
            return Err(Error::Overflow);
        }
    }
    Ok(())
}

/// Scalar [`weights`](crate::weights): same shapes, same errors.
///
/// # Errors
/// As [`weights`](crate::weights).
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn weights<K: Kernel + ?Sized>(
    kernel: &K,
    q: &[f32],
    keys: &[f32],
    out: &mut [f32],
) -> Result<(), Error> {
    let (d, out) = check_weights_shape(q, keys, out)?;
    if !(q.iter().chain(keys).all(|v| v.is_finite())) {
        return Err(Error::NonFinite);
    }
    let mut m = f32::NEG_INFINITY;
    for (o, k) in out.iter_mut().zip(keys.chunks_exact(d)) {
        *o = kernel.score(q, k);
        if !o.is_finite() {
            return Err(Error::ScoreOverflow);
        }
        m = m.max(*o);
    }
    let mut sum = 0.0f32;
    for o in out.iter_mut() {
        *o = simd::exp_scalar(*o - m);
        sum += *o;
    }
    for o in out.iter_mut() {
        *o /= sum;
    }
    Ok(())
}

//! Plain scalar paths beside the SIMD ones: the same computation, one float at a time.
//!
//! These exist to test the lanes against (at every length and at edge values) and to measure
//! what SIMD buys (`benches/`). They use [`Kernel::score`] and the scalar twin of the lanes'
//! exponential, in two passes (maximum, then exponentials and sums). A score of `-inf` has
//! weight exactly 0, and a query whose every score is `-inf` is [`Error::NoSupport`], as in the
//! SIMD paths.

use crate::attention::check_shapes;
use crate::softmax::headroom;
use crate::{Error, Kernel, Mask, Rows, RowsMut, simd};

/// Scalar [`attention`](crate::attention): same shapes, same errors.
///
/// # Errors
/// As [`attention`](crate::attention).
///
/// # Examples
/// ```
/// use nadaraya::{scalar, Gaussian, Mask, Rows, RowsMut};
/// let mut out = [0.0];
/// let (q, keys, values) = (Rows::new(&[0.0], 1)?, Rows::new(&[-1.0, 1.0], 1)?, Rows::new(&[2.0, 4.0], 1)?);
/// scalar::attention(&Gaussian::new(1.0)?, q, keys, values, Mask::None, RowsMut::new(&mut out, 1)?)?;
/// assert!((out[0] - 3.0).abs() < 1e-6);
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn attention<K: Kernel + ?Sized>(
    kernel: &K,
    q: Rows<'_>,
    keys: Rows<'_>,
    values: Rows<'_>,
    mask: Mask,
    out: RowsMut<'_>,
) -> Result<(), Error> {
    let shape = check_shapes(q, keys, values, mask, out.as_rows())?;
    let (d, dv) = (shape.d.get(), shape.dv.get());
    let (q, all_keys, all_values, out) = (
        q.as_slice(),
        keys.as_slice(),
        values.as_slice(),
        out.into_slice(),
    );
    if !q
        .iter()
        .chain(all_keys)
        .chain(all_values)
        .all(|v| v.is_finite())
    {
        return Err(Error::NonFinite);
    }
    let mut rows = out.chunks_exact_mut(dv);
    for (t, qr) in q.chunks_exact(d).enumerate() {
        let Some(o) = rows.next() else { break };
        let seen = if mask == Mask::Causal {
            t.saturating_add(1)
        } else {
            shape.n
        };
        let (Some(keys), Some(values)) = (
            all_keys.get(..seen.saturating_mul(d)),
            all_values.get(..seen.saturating_mul(dv)),
        ) else {
            break;
        };
        let mut m = f32::NEG_INFINITY;
        for k in keys.chunks_exact(d) {
            let s = kernel.score(qr, k);
            if s.is_nan() || s == f32::INFINITY {
                return Err(Error::ScoreOverflow);
            }
            m = m.max(s);
        }
        // Every score -inf: no key in the support. (A score of -inf otherwise has weight 0.)
        if m == f32::NEG_INFINITY {
            return Err(Error::NoSupport);
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
    q: Rows<'_>,
    keys: Rows<'_>,
    mut out: RowsMut<'_>,
) -> Result<(), Error> {
    crate::weights_shape(q, keys, out.as_rows())?;
    let (d, qs, keys) = (keys.width(), q.as_slice(), keys.as_slice());
    if !(qs.iter().chain(keys).all(|v| v.is_finite())) {
        return Err(Error::NonFinite);
    }
    for (q, out) in q.iter().zip(out.iter_mut()) {
        weights_row(kernel, q, keys, d, out)?;
    }
    Ok(())
}

/// One query's weights, inputs already checked finite.
fn weights_row<K: Kernel + ?Sized>(
    kernel: &K,
    q: &[f32],
    keys: &[f32],
    d: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    let mut m = f32::NEG_INFINITY;
    for (o, k) in out.iter_mut().zip(keys.chunks_exact(d)) {
        *o = kernel.score(q, k);
        if o.is_nan() || *o == f32::INFINITY {
            return Err(Error::ScoreOverflow);
        }
        m = m.max(*o);
    }
    if m == f32::NEG_INFINITY {
        return Err(Error::NoSupport);
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

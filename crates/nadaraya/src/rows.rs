//! Typed row-major views: a flat `f32` slice and its row width, checked once.

use core::num::NonZeroUsize;
use core::slice::{ChunksExact, ChunksExactMut};

use crate::{Dim, Element, Error};

/// A row-major matrix view: `len()` rows of `width()` elements each, borrowed from a flat slice.
///
/// The elements are `f32` unless said otherwise (`Rows<'a>` is `Rows<'a, f32>`); keys and values
/// may also be stored as another [`Element`] (with the `half` feature, `half::f16` or
/// `half::bf16`: `Rows::new(&keys_f16, d)` is a `Rows<'_, f16>`), which attention widens to `f32`
/// as it loads them.
///
/// The width is checked once, when the view is made, so every function that takes a `Rows`
/// knows its operands' shapes without a separate `d` argument. A column-major buffer cannot be
/// passed by accident: with the `ndarray` or `nalgebra` features, only contiguous row-major
/// views convert (anything else is an error, never a silent transpose).
///
/// # Examples
/// ```
/// use nadaraya::{Dim, Error, Rows};
/// let keys = Rows::new(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2)?;
/// assert_eq!((keys.len(), keys.width()), (3, 2));
/// assert_eq!(keys.row(1), Some(&[3.0, 4.0][..]));
/// assert_eq!(Rows::from_arrays(&[[1.0, 2.0], [3.0, 4.0]]).len(), 2);
/// assert_eq!(
///     Rows::new(&[0.0; 5], 2),
///     Err(Error::Shape { what: Dim::Flat, expected: 2, found: 5 })
/// );
/// assert_eq!(Rows::<f32>::new(&[], 0), Err(Error::ZeroDimension));
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Rows<'a, E = f32> {
    data: &'a [E],
    width: NonZeroUsize,
}

/// Checks that `len` floats split into rows of `width`.
const fn check(len: usize, width: usize) -> Result<NonZeroUsize, Error> {
    let Some(w) = NonZeroUsize::new(width) else {
        return Err(Error::ZeroDimension);
    };
    if !len.is_multiple_of(w.get()) {
        return Err(Error::Shape {
            what: Dim::Flat,
            expected: width,
            found: len,
        });
    }
    Ok(w)
}

impl<'a, E: Element> Rows<'a, E> {
    /// The rows of `width` elements in `data`.
    ///
    /// # Errors
    /// - [`Error::ZeroDimension`] if `width == 0`;
    /// - [`Error::Shape`] `{ what: Dim::Flat, expected: width, found: data.len() }` if
    ///   `data.len()` is not a multiple of `width`.
    #[inline]
    pub const fn new(data: &'a [E], width: usize) -> Result<Self, Error> {
        match check(data.len(), width) {
            Ok(width) => Ok(Self { data, width }),
            Err(e) => Err(e),
        }
    }

    /// The rows of an array of arrays; `W` must be non-zero (checked at compile time).
    #[inline]
    #[must_use]
    pub const fn from_arrays<const W: usize>(rows: &'a [[E; W]]) -> Self {
        const { assert!(W > 0, "rows must have a non-zero width") };
        match NonZeroUsize::new(W) {
            Some(width) => Self {
                data: rows.as_flattened(),
                width,
            },
            // Unreachable: `W > 0` is asserted at compile time.
            None => Self {
                data: &[],
                width: NonZeroUsize::MIN,
            },
        }
    }

    /// The row width (the number of columns), never zero.
    #[inline]
    #[must_use]
    pub const fn width(&self) -> usize {
        self.width.get()
    }

    /// The row width as a `NonZeroUsize`.
    #[inline]
    #[must_use]
    pub const fn width_nonzero(&self) -> NonZeroUsize {
        self.width
    }

    /// The number of rows.
    #[inline]
    #[must_use]
    pub fn len(&self) -> usize {
        self.data.len() / self.width
    }

    /// True if there are no rows.
    #[inline]
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The flat row-major data, `len() · width()` floats.
    #[inline]
    #[must_use]
    pub const fn as_slice(&self) -> &'a [E] {
        self.data
    }

    /// Row `i`, or `None` if `i >= len()`.
    #[inline]
    #[must_use]
    pub fn row(&self, i: usize) -> Option<&'a [E]> {
        let w = self.width.get();
        self.data
            .get(i.checked_mul(w)?..i.checked_mul(w)?.checked_add(w)?)
    }

    /// Rows `start..end` as a view, or `None` if the range is out of bounds or reversed.
    #[inline]
    #[must_use]
    pub fn slice(&self, start: usize, end: usize) -> Option<Self> {
        let w = self.width.get();
        let data = self.data.get(start.checked_mul(w)?..end.checked_mul(w)?)?;
        Some(Self {
            data,
            width: self.width,
        })
    }

    /// The rows, in order.
    #[inline]
    pub fn iter(&self) -> ChunksExact<'a, E> {
        self.data.chunks_exact(self.width.get().max(1))
    }
}

impl<'a, E: Element> IntoIterator for Rows<'a, E> {
    type Item = &'a [E];
    type IntoIter = ChunksExact<'a, E>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a, E: Element, const W: usize> From<&'a [[E; W]]> for Rows<'a, E> {
    fn from(rows: &'a [[E; W]]) -> Self {
        Self::from_arrays(rows)
    }
}

/// A mutable row-major matrix view: the output counterpart of [`Rows`].
///
/// # Examples
/// ```
/// use nadaraya::RowsMut;
/// let mut buf = [0.0; 6];
/// let mut out = RowsMut::new(&mut buf, 3)?;
/// assert_eq!((out.len(), out.width()), (2, 3));
/// out.row_mut(1).unwrap()[0] = 1.0;
/// assert_eq!(buf, [0.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[derive(Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RowsMut<'a> {
    data: &'a mut [f32],
    width: NonZeroUsize,
}

impl<'a> RowsMut<'a> {
    /// The rows of `width` floats in `data`.
    ///
    /// # Errors
    /// As [`Rows::new`].
    #[inline]
    pub const fn new(data: &'a mut [f32], width: usize) -> Result<Self, Error> {
        match check(data.len(), width) {
            Ok(width) => Ok(Self { data, width }),
            Err(e) => Err(e),
        }
    }

    /// The rows of an array of arrays; `W` must be non-zero (checked at compile time).
    #[inline]
    #[must_use]
    pub const fn from_arrays<const W: usize>(rows: &'a mut [[f32; W]]) -> Self {
        const { assert!(W > 0, "rows must have a non-zero width") };
        let width = match NonZeroUsize::new(W) {
            Some(width) => width,
            // Unreachable: `W > 0` is asserted at compile time.
            None => NonZeroUsize::MIN,
        };
        Self {
            data: rows.as_flattened_mut(),
            width,
        }
    }

    /// The row width, never zero.
    #[inline]
    #[must_use]
    pub const fn width(&self) -> usize {
        self.width.get()
    }

    /// The number of rows.
    #[inline]
    #[must_use]
    pub fn len(&self) -> usize {
        self.data.len() / self.width
    }

    /// True if there are no rows.
    #[inline]
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The flat row-major data.
    #[inline]
    #[must_use]
    pub fn as_slice(&self) -> &[f32] {
        self.data
    }

    /// The flat row-major data, mutable.
    #[inline]
    #[must_use]
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        self.data
    }

    /// The same rows, read-only.
    #[inline]
    #[must_use]
    pub fn as_rows(&self) -> Rows<'_> {
        Rows {
            data: self.data,
            width: self.width,
        }
    }

    /// A shorter-lived `RowsMut` of the same rows (to pass the view on and keep it).
    #[inline]
    #[must_use]
    pub fn reborrow(&mut self) -> RowsMut<'_> {
        RowsMut {
            data: self.data,
            width: self.width,
        }
    }

    /// Row `i`, or `None` if `i >= len()`.
    #[inline]
    #[must_use]
    pub fn row(&self, i: usize) -> Option<&[f32]> {
        let w = self.width.get();
        self.data
            .get(i.checked_mul(w)?..i.checked_mul(w)?.checked_add(w)?)
    }

    /// Row `i`, mutable, or `None` if `i >= len()`.
    #[inline]
    #[must_use]
    pub fn row_mut(&mut self, i: usize) -> Option<&mut [f32]> {
        let w = self.width.get();
        self.data
            .get_mut(i.checked_mul(w)?..i.checked_mul(w)?.checked_add(w)?)
    }

    /// Rows `start..end` as a mutable view, or `None` if out of bounds or reversed.
    #[inline]
    #[must_use]
    pub fn slice_mut(&mut self, start: usize, end: usize) -> Option<RowsMut<'_>> {
        let w = self.width.get();
        let data = self
            .data
            .get_mut(start.checked_mul(w)?..end.checked_mul(w)?)?;
        Some(RowsMut {
            data,
            width: self.width,
        })
    }

    /// The rows, in order.
    #[inline]
    pub fn iter(&self) -> ChunksExact<'_, f32> {
        self.data.chunks_exact(self.width.get().max(1))
    }

    /// The rows, in order, mutable.
    #[inline]
    pub fn iter_mut(&mut self) -> ChunksExactMut<'_, f32> {
        self.data.chunks_exact_mut(self.width.get().max(1))
    }

    /// The flat data with its lifetime, consuming the view.
    #[inline]
    #[must_use]
    pub fn into_slice(self) -> &'a mut [f32] {
        self.data
    }
}

impl<'a, const W: usize> From<&'a mut [[f32; W]]> for RowsMut<'a> {
    fn from(rows: &'a mut [[f32; W]]) -> Self {
        Self::from_arrays(rows)
    }
}

/// Which keys each query sees in [`attention`](crate::attention).
///
/// # Examples
/// ```
/// use nadaraya::{attention, Mask, Rows, RowsMut, SoftmaxDot};
/// let k = SoftmaxDot::new(1.0)?;
/// let x = [[0.5], [1.0], [2.0]];
/// let mut out = [[0.0]; 3];
/// let v = Rows::from_arrays(&[[1.0], [2.0], [3.0]]);
/// attention(&k, Rows::from_arrays(&x), Rows::from_arrays(&x), v, Mask::Causal,
///           RowsMut::from_arrays(&mut out))?;
/// assert_eq!(out[0], [1.0]); // the first token sees only itself
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Mask {
    /// Every query sees every key.
    #[default]
    None,
    /// Query row `t` sees only keys `0..=t` (a query without its key is a shape error).
    Causal,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_check_their_shape_once() {
        let data = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0];
        let r = Rows::new(&data, 3).unwrap();
        assert_eq!((r.len(), r.width(), r.is_empty()), (2, 3, false));
        assert_eq!(r.row(0), Some(&data[..3]));
        assert_eq!(r.row(2), None);
        assert_eq!(r.row(usize::MAX), None);
        assert_eq!(r.slice(1, 2).unwrap().as_slice(), &data[3..]);
        assert_eq!(r.slice(2, 1), None);
        assert_eq!(r.iter().count(), 2);
        assert_eq!(
            Rows::new(&data, 4),
            Err(Error::Shape {
                what: Dim::Flat,
                expected: 4,
                found: 6
            })
        );
        assert_eq!(Rows::new(&data, 0), Err(Error::ZeroDimension));
        assert!(Rows::<f32>::new(&[], 5).unwrap().is_empty());
        let mut buf = [0.0; 4];
        let mut m = RowsMut::new(&mut buf, 2).unwrap();
        m.iter_mut().for_each(|r| r[1] = 1.0);
        assert_eq!(m.as_rows().as_slice(), &[0.0, 1.0, 0.0, 1.0]);
        assert_eq!(
            RowsMut::new(&mut buf, 3).unwrap_err(),
            Error::Shape {
                what: Dim::Flat,
                expected: 3,
                found: 4
            }
        );
    }
}

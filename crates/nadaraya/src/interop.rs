//! Conversions from `ndarray` and `nalgebra` into [`Rows`] and [`RowsMut`] (optional features).
//!
//! Only layouts that *are* row-major samples convert, without a copy; anything else is an error,
//! never a silent transpose:
//! - `ndarray`: a two-dimensional view in standard (C, row-major) layout; one sample per row.
//! - `nalgebra`: a matrix with contiguous storage; nalgebra is column-major, so each *column* is
//!   one sample (the `D × N` matrix of `N` points as column vectors, nalgebra's own convention).

#[cfg(feature = "ndarray")]
mod nd {
    use crate::{Dim, Error, Rows, RowsMut};
    use ndarray::{ArrayView2, ArrayViewMut2};

    /// The error for a view that is not in standard layout: the first stride that is wrong,
    /// column stride first (`expected` 1), then row stride (`expected` the width); a negative
    /// stride is reported as `found: 0`.
    fn layout_error(strides: &[isize], width: usize) -> Error {
        let found = |s: isize| usize::try_from(s).unwrap_or(0);
        let (col, row) = match strides {
            [r, c] => (*c, *r),
            _ => (0, 0),
        };
        if col != 1 {
            Error::Shape {
                what: Dim::Stride,
                expected: 1,
                found: found(col),
            }
        } else {
            Error::Shape {
                what: Dim::Stride,
                expected: width,
                found: found(row),
            }
        }
    }

    /// A view of an `N × D` array in standard layout: one sample per row, without a copy.
    ///
    /// # Errors
    /// - [`Error::ZeroDimension`] if the array has no columns;
    /// - [`Error::Shape`] with [`Dim::Stride`] if it is not in standard (row-major, contiguous)
    ///   layout: a column-major or strided view (`expected`/`found`: the first wrong stride, in
    ///   elements, column stride first).
    ///
    /// # Examples
    /// ```
    /// use nadaraya::{Dim, Error, Rows};
    /// let a = ndarray::array![[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]];
    /// let rows = Rows::try_from(a.view())?;
    /// assert_eq!((rows.len(), rows.width()), (3, 2));
    /// assert_eq!(rows.row(1), Some(&[3.0, 4.0][..]));
    /// // The transpose is column-major: refused, not silently read as rows.
    /// assert_eq!(
    ///     Rows::try_from(a.t()),
    ///     Err(Error::Shape { what: Dim::Stride, expected: 1, found: 2 })
    /// );
    /// # Ok::<(), nadaraya::Error>(())
    /// ```
    impl<'a> TryFrom<ArrayView2<'a, f32>> for Rows<'a> {
        type Error = Error;
        fn try_from(v: ArrayView2<'a, f32>) -> Result<Self, Error> {
            let width = v.ncols();
            if width == 0 {
                return Err(Error::ZeroDimension);
            }
            let strides = v.strides();
            let strides = [strides[0], strides[1]];
            match v.to_slice() {
                Some(data) => Rows::new(data, width),
                None => Err(layout_error(&strides, width)),
            }
        }
    }

    /// A mutable view of an `N × D` array in standard layout, without a copy.
    ///
    /// # Errors
    /// As `Rows::try_from(ArrayView2)`.
    ///
    /// # Examples
    /// ```
    /// use nadaraya::RowsMut;
    /// let mut a = ndarray::Array2::<f32>::zeros((2, 3));
    /// RowsMut::try_from(a.view_mut())?.row_mut(1).unwrap()[2] = 1.0;
    /// assert_eq!(a[[1, 2]], 1.0);
    /// # Ok::<(), nadaraya::Error>(())
    /// ```
    impl<'a> TryFrom<ArrayViewMut2<'a, f32>> for RowsMut<'a> {
        type Error = Error;
        fn try_from(v: ArrayViewMut2<'a, f32>) -> Result<Self, Error> {
            let width = v.ncols();
            if width == 0 {
                return Err(Error::ZeroDimension);
            }
            let strides = v.strides();
            let strides = [strides[0], strides[1]];
            match v.into_slice() {
                Some(data) => RowsMut::new(data, width),
                None => Err(layout_error(&strides, width)),
            }
        }
    }
}

#[cfg(feature = "nalgebra")]
mod na {
    use crate::{Error, Rows, RowsMut};
    use nalgebra::storage::{IsContiguous, RawStorage, RawStorageMut};
    use nalgebra::{Dim, Matrix};

    /// The columns of a contiguous `D × N` matrix as `N` samples of width `D`, without a copy
    /// (nalgebra stores columns contiguously, so a column is a row of the view). Strided views
    /// do not implement `IsContiguous` and so cannot be passed.
    ///
    /// # Errors
    /// [`Error::ZeroDimension`] if the matrix has no rows (samples of width 0).
    ///
    /// # Examples
    /// ```
    /// use nadaraya::Rows;
    /// // Three 2-D points as the columns of a 2 × 3 matrix.
    /// let m = nalgebra::Matrix2x3::new(1.0f32, 3.0, 5.0, 2.0, 4.0, 6.0);
    /// let rows = Rows::try_from(&m)?;
    /// assert_eq!((rows.len(), rows.width()), (3, 2));
    /// assert_eq!(rows.row(1), Some(&[3.0, 4.0][..]));
    /// # Ok::<(), nadaraya::Error>(())
    /// ```
    impl<'a, R: Dim, C: Dim, S> TryFrom<&'a Matrix<f32, R, C, S>> for Rows<'a>
    where
        S: RawStorage<f32, R, C> + IsContiguous,
    {
        type Error = Error;
        fn try_from(m: &'a Matrix<f32, R, C, S>) -> Result<Self, Error> {
            Rows::new(m.as_slice(), m.nrows())
        }
    }

    /// The columns of a contiguous `D × N` matrix as `N` mutable rows of width `D`.
    ///
    /// # Errors
    /// As `Rows::try_from(&Matrix)`.
    ///
    /// # Examples
    /// ```
    /// use nadaraya::RowsMut;
    /// let mut m = nalgebra::Matrix2x3::<f32>::zeros();
    /// RowsMut::try_from(&mut m)?.row_mut(2).unwrap()[0] = 1.0;
    /// assert_eq!(m[(0, 2)], 1.0);
    /// # Ok::<(), nadaraya::Error>(())
    /// ```
    impl<'a, R: Dim, C: Dim, S> TryFrom<&'a mut Matrix<f32, R, C, S>> for RowsMut<'a>
    where
        S: RawStorageMut<f32, R, C> + IsContiguous,
    {
        type Error = Error;
        fn try_from(m: &'a mut Matrix<f32, R, C, S>) -> Result<Self, Error> {
            let width = m.nrows();
            RowsMut::new(m.as_mut_slice(), width)
        }
    }
}

//! The optional features of the core: `ndarray`/`nalgebra` views into `Rows`/`RowsMut` (only
//! layouts that are row-major samples, never a silent transpose) and the `serde` impls of the
//! const-generic types (shapes checked on the way back in).

use nadaraya::{Dim, Error, Gaussian, MhaWeights, Rows, RowsMut, Sample, Smoother};
use ndarray::{Array2, Axis, Slice};

#[test]
fn ndarray_standard_layout_converts_and_nothing_else_does() {
    let a = Array2::from_shape_fn((4, 3), |(i, j)| (10 * i + j) as f32);
    let r = Rows::try_from(a.view()).unwrap();
    assert_eq!((r.len(), r.width()), (4, 3));
    for i in 0..4 {
        for j in 0..3 {
            assert_eq!(r.row(i).unwrap()[j], a[[i, j]]);
        }
    }
    // A row block of a standard array is still standard.
    let block = a.slice_axis(Axis(0), Slice::from(1..3));
    assert_eq!(
        Rows::try_from(block).unwrap().row(0),
        Some(&[10.0, 11.0, 12.0][..])
    );
    // The transpose (column-major, 3 × 4): its column stride is 3, not 1.
    let e = |expected, found| {
        Err(Error::Shape {
            what: Dim::Stride,
            expected,
            found,
        })
    };
    assert_eq!(Rows::try_from(a.t()), e(1, 3));
    // Every other column: column stride 2.
    assert_eq!(
        Rows::try_from(a.slice_axis(Axis(1), Slice::new(0, None, 2))),
        e(1, 2)
    );
    // Columns 0..2 of 3: rows are 3 apart but 2 wide.
    assert_eq!(
        Rows::try_from(a.slice_axis(Axis(1), Slice::from(0..2))),
        e(2, 3)
    );
    // Rows reversed: a negative row stride, reported as 0.
    assert_eq!(
        Rows::try_from(a.slice_axis(Axis(0), Slice::new(0, None, -1))),
        e(3, 0)
    );
    // No columns.
    let empty = Array2::<f32>::zeros((2, 0));
    assert_eq!(Rows::try_from(empty.view()), Err(Error::ZeroDimension));

    let mut b = Array2::<f32>::zeros((2, 2));
    {
        let mut m = RowsMut::try_from(b.view_mut()).unwrap();
        m.row_mut(1).unwrap().copy_from_slice(&[5.0, 6.0]);
    }
    assert_eq!(b[[1, 0]], 5.0);
    assert_eq!(b[[1, 1]], 6.0);
    assert_eq!(
        RowsMut::try_from(b.view_mut().reversed_axes()).unwrap_err(),
        Error::Shape {
            what: Dim::Stride,
            expected: 1,
            found: 2
        }
    );
}

#[test]
fn nalgebra_columns_are_samples() {
    // Five 3-D points as the columns of a 3 × 5 matrix, static and dynamic.
    let m = nalgebra::DMatrix::<f32>::from_fn(3, 5, |i, j| (10 * j + i) as f32);
    let r = Rows::try_from(&m).unwrap();
    assert_eq!((r.len(), r.width()), (5, 3));
    for j in 0..5 {
        for i in 0..3 {
            assert_eq!(r.row(j).unwrap()[i], m[(i, j)]);
        }
    }
    let s = nalgebra::SMatrix::<f32, 2, 4>::from_fn(|i, j| (i + 2 * j) as f32);
    assert_eq!(Rows::try_from(&s).unwrap().row(3), Some(&[6.0, 7.0][..]));
    let empty = nalgebra::DMatrix::<f32>::zeros(0, 3);
    assert_eq!(Rows::try_from(&empty), Err(Error::ZeroDimension));
    let mut w = nalgebra::DMatrix::<f32>::zeros(2, 3);
    RowsMut::try_from(&mut w).unwrap().row_mut(2).unwrap()[1] = 1.0;
    assert_eq!(w[(1, 2)], 1.0);
    // The conversion feeds the core: the same smoothing as from the flat buffer.
    let x = nalgebra::DMatrix::<f32>::from_fn(1, 6, |_, j| j as f32);
    let y = nalgebra::DMatrix::<f32>::from_fn(1, 6, |_, j| (j * j) as f32);
    let sm: Smoother<_, 8, 1, 1> = Smoother::from_rows(
        Gaussian::new(0.7).unwrap(),
        (&x).try_into().unwrap(),
        (&y).try_into().unwrap(),
    )
    .unwrap();
    let flat: Smoother<_, 8, 1, 1> = Smoother::from_rows(
        Gaussian::new(0.7).unwrap(),
        Rows::new(x.as_slice(), 1).unwrap(),
        Rows::new(y.as_slice(), 1).unwrap(),
    )
    .unwrap();
    assert_eq!(sm.predict(&[2.5]), flat.predict(&[2.5]));
}

#[test]
fn samples_and_smoothers_round_trip_through_serde() {
    let s = Sample {
        x: [1.5, -2.0, 3.25],
        y: [0.5, 7.0],
    };
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(json, r#"{"x":[1.5,-2.0,3.25],"y":[0.5,7.0]}"#);
    assert_eq!(serde_json::from_str::<Sample<3, 2>>(&json).unwrap(), s);
    // Wrong lengths, missing and duplicate fields are errors, never padding or truncation.
    for bad in [
        r#"{"x":[1.5,-2.0],"y":[0.5,7.0]}"#,
        r#"{"x":[1.5,-2.0,3.25,4.0],"y":[0.5,7.0]}"#,
        r#"{"x":[1.5,-2.0,3.25]}"#,
        r#"{"x":[1,2,3],"x":[1,2,3],"y":[0,0]}"#,
        r#"{"x":[1,2,3],"y":[0,0],"z":[]}"#,
    ] {
        assert!(serde_json::from_str::<Sample<3, 2>>(bad).is_err(), "{bad}");
    }
    assert_eq!(
        serde_json::from_str::<Sample<3, 2>>(r#"[[1,2,3],[4,5]]"#)
            .unwrap()
            .y,
        [4.0, 5.0]
    );

    let mut sm: Smoother<Gaussian, 4, 1, 1> = Smoother::new(Gaussian::new(0.25).unwrap());
    for i in 0..6 {
        sm.push_evicting([i as f32], [(i * i) as f32]).unwrap();
    }
    let json = serde_json::to_string(&sm).unwrap();
    assert_eq!(
        json,
        r#"{"kernel":0.25,"samples":[{"x":[2.0],"y":[4.0]},{"x":[3.0],"y":[9.0]},{"x":[4.0],"y":[16.0]},{"x":[5.0],"y":[25.0]}]}"#
    );
    let back: Smoother<Gaussian, 4, 1, 1> = serde_json::from_str(&json).unwrap();
    assert!(back.iter().eq(sm.iter()));
    assert_eq!(back.kernel(), sm.kernel());
    // More samples than the capacity, and an invalid bandwidth, are errors.
    let e = serde_json::from_str::<Smoother<Gaussian, 3, 1, 1>>(&json).unwrap_err();
    assert!(
        e.to_string().contains(&Error::CapacityExceeded.to_string()),
        "{e}"
    );
    assert!(
        serde_json::from_str::<Smoother<Gaussian, 4, 1, 1>>(r#"{"kernel":0.0,"samples":[]}"#)
            .is_err()
    );
    assert!(serde_json::from_str::<Smoother<Gaussian, 4, 1, 1>>(r#"{"samples":[]}"#).is_err());
}

#[test]
fn attention_weights_round_trip_in_place() {
    let mut w = Box::new(MhaWeights::<3, 2, 2>::zeros());
    for (i, v) in w
        .w_q
        .as_flattened_mut()
        .as_flattened_mut()
        .iter_mut()
        .enumerate()
    {
        *v = i as f32;
    }
    w.w_o[1][0][2] = -4.5;
    let json = serde_json::to_string(&*w).unwrap();
    assert!(json.starts_with(r#"{"w_q":[0.0,1.0,2.0,"#), "{json}");
    let back: MhaWeights<3, 2, 2> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, *w);
    let mut place = Box::new(MhaWeights::<3, 2, 2>::zeros());
    serde::Deserialize::deserialize_in_place(
        &mut serde_json::Deserializer::from_str(&json),
        &mut *place,
    )
    .unwrap();
    assert_eq!(place, w);
    // The wrong shape (weights of a 3-dimensional model read as a 4-dimensional one) fails.
    assert!(serde_json::from_str::<MhaWeights<4, 2, 2>>(&json).is_err());
}

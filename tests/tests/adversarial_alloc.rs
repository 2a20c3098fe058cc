//! Huge allocation requests to `nadaraya-rf` (issue 11, class 5): `Err(TooManyFeatures)`, never
//! a panic or an abort. In its own test binary, because on code that aborts (a2f252f) the abort
//! kills every test of the binary it runs in.

use nadaraya_rf::{CausalState, Error, FavorPlus, FourierFeatures, Projection, RowNorm, Sampling};

/// Issue 11 class 5: projections, features and causal states whose `m·d` or `m·dv` fits `usize`
/// but not memory are `Err(TooManyFeatures)`, never a panic or an abort (on a2f252f: "capacity
/// overflow" panics and allocation aborts, which kill this whole test binary).
#[test]
fn huge_allocation_requests_are_errors() {
    let huge = [
        (1usize << 31, 1usize << 31), // 2^62 floats: the byte count overflows usize
        (1 << 23, 1 << 22),           // 2^45 floats = 128 TiB
        (usize::MAX / 2, 2),          // m·d overflows usize
    ];
    for (d, m) in huge {
        for sampling in [Sampling::Iid, Sampling::Orthogonal(RowNorm::Chi)] {
            assert_eq!(
                Projection::new(d, m, sampling, 0).map(|_| ()),
                Err(Error::TooManyFeatures),
                "Projection::new({d}, {m}, {sampling:?})"
            );
            assert_eq!(
                Projection::with_draw(d, m, sampling, 0, 3).map(|_| ()),
                Err(Error::TooManyFeatures)
            );
        }
        assert_eq!(
            FavorPlus::for_dim(d, m, 0).map(|_| ()),
            Err(Error::TooManyFeatures)
        );
        assert_eq!(
            FourierFeatures::for_dim(d, m, 1.0, 0).map(|_| ()),
            Err(Error::TooManyFeatures)
        );
    }
    let f = FavorPlus::for_dim(4, 16, 0).unwrap();
    for dv in [1usize << 40, 1 << 58, usize::MAX / 8, usize::MAX] {
        assert_eq!(
            CausalState::new(&f, dv).map(|_| ()),
            Err(Error::TooManyFeatures),
            "CausalState::new(dv = {dv})"
        );
    }
}

/// Issue 11 class 5: orthogonal sampling with `m ≪ d` costs `O(m·d)`, not a `d×d` matrix:
/// `d = 100 000, m = 4` works (on a2f252f it aborted), and its rows are orthogonal.
#[test]
fn orthogonal_rows_with_few_features_in_a_huge_dimension() {
    let d = 100_000;
    for norm in [RowNorm::Chi, RowNorm::SqrtD] {
        let p = Projection::new(d, 4, Sampling::Orthogonal(norm), 1).unwrap();
        let r = p.rows();
        assert_eq!(r.len(), 4 * d);
        let dot = |a: usize, b: usize| -> f64 {
            (0..d)
                .map(|j| f64::from(r[a * d + j]) * f64::from(r[b * d + j]))
                .sum()
        };
        for a in 0..4 {
            let na = dot(a, a).sqrt();
            assert!(na.is_finite() && na > 0.0);
            if norm == RowNorm::SqrtD {
                assert!((na / (d as f64).sqrt() - 1.0).abs() < 1e-4, "norm {na}");
            }
            for b in 0..a {
                let c = dot(a, b) / (na * dot(b, b).sqrt());
                assert!(c.abs() < 1e-4, "rows {a}, {b}: cosine {c}");
            }
        }
    }
}

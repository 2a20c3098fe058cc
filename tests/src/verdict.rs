//! The rule every result of the adversarial suites is held to, for any error type: what one
//! output row must be ([`RowWant`]), and the judgement of a call against its rows ([`judge`]).
//!
//! - `Ok` means every output is finite, inside the range of the values averaged (when the
//!   weights are a convex combination), and within the bound of the `f64` reference;
//! - `Err(e)` is correct only if some row must or may fail with `e`;
//! - if some row must fail, `Ok` is wrong.

use core::fmt::Debug;

/// The absolute error that rounding `n` weighted terms to the subnormal grid may add (half the
/// smallest subnormal each, and as much again for the division). Bounds relative to the values'
/// scale have no such term, so subnormal values need it.
#[must_use]
pub fn subnormal_slack(n: usize) -> f64 {
    (n as f64 + 2.0) * 1.5e-45
}

/// What one output row (one query over its keys) must be.
#[derive(Clone, Debug, PartialEq)]
pub struct RowWant<E> {
    /// The call must fail, with this error (or another row's).
    pub must_fail: Option<E>,
    /// The call may fail with this error instead of succeeding.
    pub may_fail: Option<E>,
    /// The `f64` reference of the row, checked against `tol` when not empty.
    pub exact: Vec<f64>,
    /// The bound on `|out − exact|`, per coordinate.
    pub tol: f64,
    /// Every `Ok` output lies in `[lo, hi]` per coordinate (empty: no range check).
    pub lo: Vec<f64>,
    /// See `lo`.
    pub hi: Vec<f64>,
}

impl<E> RowWant<E> {
    /// A row that must succeed, inside the range of `values` (`N×dv` row-major, with slack
    /// `2e-6` of their scale plus [`subnormal_slack`]), with no reference value yet.
    #[must_use]
    pub fn convex(values: &[f32], dv: usize) -> Self {
        let scale = values.iter().fold(0.0f64, |m, v| m.max(f64::from(v.abs())));
        let slack = 2e-6 * scale + subnormal_slack(values.len() / dv);
        let mut lo = vec![f64::INFINITY; dv];
        let mut hi = vec![f64::NEG_INFINITY; dv];
        for v in values.chunks_exact(dv) {
            for j in 0..dv {
                lo[j] = lo[j].min(f64::from(v[j]) - slack);
                hi[j] = hi[j].max(f64::from(v[j]) + slack);
            }
        }
        Self {
            must_fail: None,
            may_fail: None,
            exact: Vec::new(),
            tol: 0.0,
            lo,
            hi,
        }
    }
}

/// Judges a call's result `got` (with its output rows `out`, each `dv` wide) against `rows`:
/// panics with `what` and the reason if it breaks the rule of the module docs.
pub fn judge<E: Copy + PartialEq + Debug>(
    what: &str,
    got: Result<(), E>,
    out: &[f32],
    rows: &[RowWant<E>],
    dv: usize,
) {
    let must: Vec<E> = rows.iter().filter_map(|r| r.must_fail).collect();
    match got {
        Ok(()) => {
            assert!(
                must.is_empty(),
                "{what}: Ok, but the reference says {must:?}"
            );
            for (t, (r, o)) in rows.iter().zip(out.chunks_exact(dv)).enumerate() {
                for j in 0..dv {
                    let y = f64::from(o[j]);
                    assert!(o[j].is_finite(), "{what}: row {t} Ok({}) not finite", o[j]);
                    if !r.lo.is_empty() {
                        assert!(
                            r.lo[j] <= y && y <= r.hi[j],
                            "{what}: row {t}[{j}] = {y:e} outside the values' range [{:e}, {:e}]",
                            r.lo[j],
                            r.hi[j]
                        );
                    }
                    if !r.exact.is_empty() {
                        assert!(
                            (y - r.exact[j]).abs() <= r.tol,
                            "{what}: row {t}[{j}] = {y:e}, reference {:e}, bound {:e}",
                            r.exact[j],
                            r.tol
                        );
                    }
                }
            }
        }
        Err(e) => {
            let allowed = rows
                .iter()
                .any(|r| r.must_fail == Some(e) || r.may_fail == Some(e));
            assert!(
                allowed,
                "{what}: Err({e:?}), but the reference allows only {:?} / {:?}",
                must,
                rows.iter().filter_map(|r| r.may_fail).collect::<Vec<_>>()
            );
        }
    }
}

//! Linear-time attention with FAVOR+ features: non-causal, causal, and the recurrent step.

use nadaraya::math::{exp_neg, exp_neg_in_place};
use nalgebra::{DMatrix, DMatrixView, DMatrixViewMut};

use crate::error::{len2, try_filled};
use crate::{Error, FavorPlus};

/// Keys (and queries) are mapped to features this many rows at a time, so the extra memory is
/// `r·(dv + TILE + 3)` floats whatever the sequence length.
pub(crate) const TILE: usize = 64;

/// Checked shapes `(queries, keys)` of an attention call against features of dimension `fd`.
///
/// The shape rules are the core's ([`nadaraya::attention_shape`]); the dimension is checked
/// first, and finiteness last.
pub(crate) fn check_shapes(
    fd: usize,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    d: usize,
    dv: usize,
    out: &[f32],
) -> Result<(usize, usize), Error> {
    if d != fd && d != 0 {
        return Err(Error::DimensionMismatch {
            expected: fd,
            found: d,
        });
    }
    let rows = core_attention_shape(q, keys, values, d, dv, out).map_err(Error::from_shape)?;
    if !(all_finite(q) && all_finite(keys) && all_finite(values)) {
        return Err(Error::NonFinite);
    }
    Ok(rows)
}

/// The slice-level shape rules of the core before its `Rows` API (a shim until this crate
/// takes `Rows` views too): `out` at least `M·dv` long.
fn core_attention_shape(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    d: usize,
    dv: usize,
    out: &[f32],
) -> Result<(usize, usize), nadaraya::Error> {
    use nadaraya::{Mask, Rows};
    let (q, keys, values) = (
        Rows::new(q, d)?,
        Rows::new(keys, d)?,
        Rows::new(values, dv)?,
    );
    match q.len().checked_mul(dv).and_then(|l| out.get(..l)) {
        Some(o) => nadaraya::attention_shape(q, keys, values, Mask::None, Rows::new(o, dv)?),
        None if values.len() != keys.len() || keys.is_empty() => {
            nadaraya::attention_shape(q, keys, values, Mask::None, q)
        }
        None => Err(nadaraya::Error::OutputTooSmall),
    }
}

/// The slice-level shape rules of the core's `weights` before its `Rows` API (a shim).
fn core_weights_shape(q: &[f32], keys: &[f32], out: &[f32]) -> Result<usize, nadaraya::Error> {
    let keys = nadaraya::Rows::new(keys, nadaraya::Rows::new(q, q.len())?.width())?;
    if keys.is_empty() {
        return Err(nadaraya::Error::Empty);
    }
    if out.len() < keys.len() {
        return Err(nadaraya::Error::OutputTooSmall);
    }
    Ok(keys.len())
}

#[inline]
pub(crate) fn all_finite(xs: &[f32]) -> bool {
    xs.iter().fold(true, |ok, v| ok & v.is_finite())
}

/// Random-feature attention: `out_t = Σ_i φ(q_t)·φ(k_i) v_i / Σ_i φ(q_t)·φ(k_i)`, an unbiased-
/// feature estimate of softmax attention `Σ_i softmax_i(q_t·k_i/τ) v_i`.
///
/// Same shapes as [`nadaraya::attention`]: `q` is `M×d`, `keys` `N×d`, `values` `N×dv`, `out` at
/// least `M×dv`, all row-major, and `d` must be the features' dimension. The keys are summed once
/// into `S = Σ_i φ(k_i) v_iᵀ` (`r×dv`) and `z = Σ_i φ(k_i)` (`r`), then every query reads them:
/// `O(M·r·(d + dv) + N·r·(d + dv))` time and `O(r·dv)` extra memory, `r` the number of features.
/// Both passes are matrix products in tiles of 64 rows ([`nalgebra`]'s `gemm`, backed by
/// `matrixmultiply`).
///
/// # Memory
/// `4·r·(dv + 67) + 8·dv` bytes, allocated fallibly: the key sums `S` and `z`, the stabilisers,
/// one tile of 64 feature columns, one scratch row and the per-component value scale; plus
/// `256·dv` bytes (one tile of scaled values) when the values need scaling (see below).
/// `matrixmultiply` adds its own packing buffer, whose size it caps by its block sizes whatever
/// the arguments.
///
/// # Stabilisers and the denominator guard
/// A key's feature `i` is `exp(a_i)` with `a_i = ω_i·k' − |k'|²/2`; a query's is `exp(b_i)` with
/// `b_i = ω_i·q'` (its own `−|q'|²/2` and the `1/√r` are per-row constants and cancel). With
/// `c_i = max_keys a_i` (taken once over all keys, one per feature, kept as a running maximum
/// that rescales `S_i, z_i` when it grows) and `C = max_i (b_i + c_i)` per query row,
/// `exp(b_i + a_i) = exp(C) · exp(b_i + c_i − C) · exp(a_i − c_i)`, and `exp(C)` cancels between
/// numerator and denominator: the result is exactly the unstabilised estimator. Every exponent is
/// `≤ 0`, and the feature `i*` attaining `C` has query weight exactly 1 and key sum `z_i* ≥ 1`
/// (its largest key contributes `exp(0)`), so **the denominator is always `≥ 1`**: finite inputs
/// never divide by zero or overflow it. No epsilon is added anywhere.
///
/// # Values near `f32::MAX`
/// Every weight is `≥ 0`, so each output is a weighted average of the values and lies within
/// their range: it is always finite. The sums behind it are kept scaled by a power of two per
/// value component when `r·N·max|v_j|` exceeds `2^100` (exact; no scaling, and the same bits as
/// without it, below that), unscaled once after the division, and clamped to
/// `±max_i |v_ij|` against rounding: values whose sums overflow `f32` (say `±3.4e38`) are
/// averaged like any others, in every key order. [`Error::OutputOverflow`] is never returned for
/// finite inputs; the check stays so that no path can return `Ok` holding inf or NaN.
///
/// # Errors
/// - [`Error::ZeroDimension`] if `d == 0` or `dv == 0`;
/// - [`Error::DimensionMismatch`] if `d` is not the features' dimension;
/// - [`Error::ShapeMismatch`] if a length is not a multiple of its row length, or `keys` and
///   `values` have different row counts;
/// - [`Error::Empty`] if there are no keys;
/// - [`Error::OutputTooSmall`] if `out.len() < M·dv`;
/// - [`Error::NonFinite`] if any input is NaN or infinite;
/// - [`Error::TooManyFeatures`] if the memory above cannot be allocated;
/// - [`Error::ScoreOverflow`] if a feature exponent (a key's `ω_i·k' − |k'|²/2`, a query's
///   `ω_i·q'`, or that plus the key stabiliser) is NaN or infinite in `f32`, decided per
///   exponent, so in every key order and on every path.
///
/// Nothing is written when the inputs are rejected up front; after a computing error `out` may
/// hold partial results.
///
/// # Examples
/// ```
/// use nadaraya::SoftmaxDot;
/// use nadaraya_rf::{attention, FavorPlus};
/// let (d, dv, l) = (4, 2, 32);
/// let x: Vec<f32> = (0..l * d).map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.05).collect();
/// let v: Vec<f32> = (0..l * dv).map(|i| (i % 7) as f32).collect();
/// let f = FavorPlus::for_dim(d, 256, 42)?;
/// let mut rf = vec![0.0; l * dv];
/// attention(&f, &x, &x, &v, d, dv, &mut rf)?;
/// let mut exact = vec![0.0; l * dv];
/// let (xr, vr) = (nadaraya::Rows::new(&x, d).unwrap(), nadaraya::Rows::new(&v, dv).unwrap());
/// let out = nadaraya::RowsMut::new(&mut exact, dv).unwrap();
/// let k = SoftmaxDot::for_dim(d).unwrap();
/// nadaraya::attention(&k, xr, xr, vr, nadaraya::Mask::None, out).unwrap();
/// let err = rf.iter().zip(&exact).map(|(a, b)| (a - b).powi(2)).sum::<f32>().sqrt()
///     / exact.iter().map(|b| b * b).sum::<f32>().sqrt();
/// assert!(err < 0.05);
/// # Ok::<(), nadaraya_rf::Error>(())
/// ```
pub fn attention(
    features: &FavorPlus,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    d: usize,
    dv: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    let (m, n) = check_shapes(features.dim(), q, keys, values, d, dv, out)?;
    let r = features.features();
    let w = features.matrix();
    let mut sums = KeySums::new(r, dv)?;
    sums.set_shifts(values, n)?;
    let mut buf = try_filled(len2(r, TILE)?, 0.0f32)?;
    let mut tmp = try_filled(r, 0.0f32)?;
    for (kt, vt) in keys.chunks(TILE * d).zip(values.chunks(TILE * dv)) {
        let t = kt.len() / d;
        let a = &mut buf[..r * t];
        DMatrixViewMut::from_slice(a, r, t).gemm(1.0, w, &DMatrixView::from_slice(kt, d, t), 0.0);
        let mut ok = true;
        for (col, k) in a.chunks_exact_mut(r).zip(kt.chunks_exact(d)) {
            ok &= features.finish_key_exponents(k, col).is_ok();
        }
        if !ok {
            return Err(Error::ScoreOverflow);
        }
        sums.absorb_tile(a, vt, &mut tmp);
    }
    let out = &mut out[..m * dv];
    for (qt, ot) in q.chunks(TILE * d).zip(out.chunks_mut(TILE * dv)) {
        let t = qt.len() / d;
        let b = &mut buf[..r * t];
        DMatrixViewMut::from_slice(b, r, t).gemm(1.0, w, &DMatrixView::from_slice(qt, d, t), 0.0);
        sums.query_tile(b, ot)?;
    }
    Ok(())
}

/// Each value component `j` is summed scaled by `2^−e_j` so that the sums cannot overflow before
/// the last step: with `|v_j| ≤ vmax_j`, `N` keys and `r` features every partial sum of `S` and
/// of the output product is at most `r·N·vmax_j·2^−e_j`, and `e_j` is the least shift making that
/// `≤ 2^100` (`e_j = 0`, no scaling at all, for every input below that bound). The result is
/// multiplied by `2^e_j` once, in `f64`, after the division: it overflows exactly when the
/// weighted average itself is not finite in `f32`. Scaling by a power of two is exact (barring
/// underflow of values below `2^(e_j − 149)`, some `2^249 / (r·N)` times smaller than the
/// component's largest), so the value does not depend on the shift, nor on the order in which a
/// running shift grew.
const SUM_BOUND_LOG2: i32 = 100;

/// The least shift `e ≥ 0` with `bound·2^−e ≤ 2^100`, for `bound = vmax·count·r` (at most 126, so
/// that `2^−e` is a normal `f32`; larger would need more than `2^98` keys times features).
fn value_shift(vmax: f32, count: usize, r: usize) -> i32 {
    let bound = f64::from(vmax) * count as f64 * r as f64;
    // 2^100, exactly.
    if bound <= 1_267_650_600_228_229_401_496_703_205_376.0 {
        0
    } else {
        (bound.log2().ceil() as i32 - SUM_BOUND_LOG2).clamp(0, 126)
    }
}

/// `2^−e` as an `f32` (`0 ≤ e ≤ 126`).
fn down(e: i32) -> f32 {
    (-f64::from(e)).exp2() as f32
}

/// `out_j = v_j·2^−shift_j` (exact but for underflow; `v_j` itself where the shift is 0).
fn scale_down(out: &mut [f32], v: &[f32], shift: &[i32]) {
    for ((o, &x), &e) in out.iter_mut().zip(v).zip(shift) {
        *o = if e > 0 { x * down(e) } else { x };
    }
}

/// The running key sums `S` (stored as `dv×r` column-major, i.e. `r` rows of `dv`), `z`, and the
/// per-feature stabilisers `c`; component `j` of `S` holds `2^−shift_j` times the sums.
#[derive(Clone, Debug)]
struct KeySums {
    shift: Vec<i32>,
    // The largest |v_j| of every value component.
    vmax: Vec<f32>,
    // A tile of scaled values (`TILE×dv`), allocated only when a shift is not 0.
    scaled: Vec<f32>,
    dv: usize,
    c: Vec<f32>,
    z: Vec<f32>,
    s: DMatrix<f32>,
}

impl KeySums {
    fn new(r: usize, dv: usize) -> Result<Self, Error> {
        Ok(Self {
            shift: try_filled(dv, 0)?,
            vmax: try_filled(dv, 0.0)?,
            scaled: Vec::new(),
            dv,
            c: try_filled(r, f32::NEG_INFINITY)?,
            z: try_filled(r, 0.0)?,
            s: DMatrix::from_vec(dv, r, try_filled(len2(r, dv)?, 0.0)?),
        })
    }

    /// Sets the shift of every value component from the values (`n` rows) it will absorb.
    fn set_shifts(&mut self, values: &[f32], n: usize) -> Result<(), Error> {
        let r = self.c.len();
        for row in values.chunks_exact(self.dv) {
            for (m, x) in self.vmax.iter_mut().zip(row) {
                // Finite values: `max` skips no NaN here.
                *m = m.max(x.abs());
            }
        }
        for (e, &m) in self.shift.iter_mut().zip(&self.vmax) {
            *e = value_shift(m, n, r);
        }
        if self.shift.iter().any(|&e| e > 0) {
            self.scaled = try_filled(len2(TILE, self.dv)?, 0.0)?;
        }
        Ok(())
    }

    /// Absorbs a tile of key exponents `a` (`r×t` column-major, finite; overwritten with the
    /// stabilised features) and the matching value rows `vt` (`t×dv`).
    fn absorb_tile(&mut self, a: &mut [f32], vt: &[f32], mb: &mut [f32]) {
        let r = self.c.len();
        let t = a.len() / r;
        mb.fill(f32::NEG_INFINITY);
        for col in a.chunks_exact(r) {
            for (m, &x) in mb.iter_mut().zip(col) {
                *m = m.max(x);
            }
        }
        for (i, &m) in mb.iter().enumerate() {
            if m > self.c[i] {
                if self.z[i] != 0.0 {
                    let f = exp_neg(self.c[i] - m);
                    self.z[i] *= f;
                    self.s.column_mut(i).scale_mut(f);
                }
                self.c[i] = m;
            }
        }
        for col in a.chunks_exact_mut(r) {
            for (x, &c) in col.iter_mut().zip(&self.c) {
                *x -= c;
            }
        }
        exp_neg_in_place(a);
        for col in a.chunks_exact(r) {
            for (z, &p) in self.z.iter_mut().zip(col) {
                *z += p;
            }
        }
        let vt = if self.scaled.is_empty() {
            vt
        } else {
            let vs = &mut self.scaled[..vt.len()];
            for (o, i) in vs.chunks_exact_mut(self.dv).zip(vt.chunks_exact(self.dv)) {
                scale_down(o, i, &self.shift);
            }
            &*vs
        };
        // Sᵀ (dv×r) += Vᵀ (dv×t) · Φᵀ (t×r).
        let phi_t = DMatrixView::from_slice_with_strides(a, t, r, r, 1);
        self.s
            .gemm(1.0, &DMatrixView::from_slice(vt, self.dv, t), &phi_t, 1.0);
    }

    /// Reads a tile of query exponents `b` (`r×t`, overwritten with the stabilised query
    /// features) into `ot` (`t×dv`).
    fn query_tile(&self, b: &mut [f32], ot: &mut [f32]) -> Result<(), Error> {
        let r = self.c.len();
        let t = b.len() / r;
        for col in b.chunks_exact_mut(r) {
            query_weights(col, &self.c)?;
        }
        // Oᵀ (dv×t) = Sᵀ (dv×r) · W (r×t).
        DMatrixViewMut::from_slice(ot, self.dv, t).gemm(
            1.0,
            &self.s,
            &DMatrixView::from_slice(b, r, t),
            0.0,
        );
        for (col, o) in b.chunks_exact(r).zip(ot.chunks_exact_mut(self.dv)) {
            let den: f32 = col.iter().zip(&self.z).map(|(w, z)| w * z).sum();
            divide(o, den, &self.shift, &self.vmax)?;
        }
        Ok(())
    }
}

/// Turns a query's exponents `b_i = ω_i·q'` into its stabilised feature weights in place:
/// `b_i ← exp(b_i + c_i − max_j (b_j + c_j))`, with `c` the per-feature key stabilisers. The
/// largest weight is exactly 1.
///
/// Every `b_i + c_i` is checked, not only their maximum: `f32::max` skips NaN, so a NaN exponent
/// (`inf − inf` in `ω_i·q'` for a finite but huge query) would otherwise pass and be averaged.
/// This is the one check of a query's exponents for every path ([`attention`],
/// [`causal_attention`], [`CausalState`], [`weights`]), so they all give the same verdict.
///
/// # Errors
/// [`Error::ScoreOverflow`] if any `b_i + c_i` is not finite (NaN or infinite).
fn query_weights(b: &mut [f32], c: &[f32]) -> Result<(), Error> {
    let mut mx = f32::NEG_INFINITY;
    let mut ok = true;
    for (x, &c) in b.iter_mut().zip(c) {
        *x += c;
        ok &= x.is_finite();
        mx = mx.max(*x);
    }
    if !ok {
        return Err(Error::ScoreOverflow);
    }
    for x in b.iter_mut() {
        *x -= mx;
    }
    exp_neg_in_place(b);
    Ok(())
}

/// `o_j ← clamp(o_j / den · 2^shift_j, ±vmax_j)` for a query's output row (the sums were scaled
/// by `2^−shift_j`; see [`SUM_BOUND_LOG2`]). `den ≥ 1` by construction: the feature at the row
/// maximum has weight `exp(0) = 1` and a key sum `≥ 1`.
///
/// # Errors
/// [`Error::OutputOverflow`] if a result is not finite. Not reachable from finite inputs (the
/// sums are bounded by the shifts, the quotient by the clamp); kept so that no path can return
/// `Ok` with a non-finite value.
fn divide(o: &mut [f32], den: f32, shift: &[i32], vmax: &[f32]) -> Result<(), Error> {
    let inv = 1.0 / den;
    let mut ok = true;
    for ((x, &e), &m) in o.iter_mut().zip(shift).zip(vmax) {
        *x *= inv;
        if e > 0 {
            *x = (f64::from(*x) * f64::from(e).exp2()) as f32;
        }
        // A weighted average with weights ≥ 0 lies within the values' range: rounding past it
        // (or past f32::MAX) is pulled back. A NaN fails both comparisons and stays NaN, so the
        // check below sees it (and, unlike `f32::clamp`, this has no panic path).
        if *x > m {
            *x = m;
        } else if *x < -m {
            *x = -m;
        }
        ok &= x.is_finite();
    }
    if ok {
        Ok(())
    } else {
        Err(Error::OutputOverflow)
    }
}

/// Causal random-feature attention: query row `t` sees only keys `0..=t`.
///
/// The prefix sums `S_t = Σ_{i≤t} φ(k_i) v_iᵀ`, `z_t = Σ_{i≤t} φ(k_i)` are carried token by token
/// by a [`CausalState`], so this is exactly the recurrent step applied to every token:
/// `O(M·r·(d + dv))` time, `O(r·dv)` memory (the state's `4·r·(dv + 3) + 12·dv` bytes, allocated
/// fallibly). The stabiliser `c_i` is the running maximum over the keys seen so far, so the
/// denominator is `≥ 1` for every row as in [`attention`].
///
/// # Errors
/// As [`attention`] ([`Error::TooManyFeatures`] if the state cannot be allocated), plus
/// [`Error::ShapeMismatch`] when there are more queries than keys.
///
/// # Examples
/// ```
/// use nadaraya_rf::{causal_attention, FavorPlus};
/// let f = FavorPlus::for_dim(1, 16, 0)?;
/// let x = [0.5, 1.0, 2.0];
/// let v = [1.0, 2.0, 3.0];
/// let mut out = [0.0; 3];
/// causal_attention(&f, &x, &x, &v, 1, 1, &mut out)?;
/// assert!((out[0] - 1.0).abs() < 1e-6); // the first token sees only itself
/// # Ok::<(), nadaraya_rf::Error>(())
/// ```
pub fn causal_attention(
    features: &FavorPlus,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    d: usize,
    dv: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    let (m, n) = check_shapes(features.dim(), q, keys, values, d, dv, out)?;
    if m > n {
        return Err(Error::ShapeMismatch);
    }
    let mut state = CausalState::new(features, dv)?;
    for (((qt, kt), vt), ot) in q
        .chunks_exact(d)
        .zip(keys.chunks_exact(d))
        .zip(values.chunks_exact(dv))
        .zip(out.chunks_exact_mut(dv))
    {
        state.absorb_unchecked(kt, vt)?;
        state.query_unchecked(qt, ot)?;
    }
    Ok(())
}

/// The recurrent form of causal random-feature attention: one token in, one output out.
///
/// The state is `S` (`r×dv`), `z` (`r`) and the `r` running stabilisers `c` — a fixed
/// `r·dv + 2r` floats (plus an `r`-float scratch row) whatever the sequence length, `r` the number
/// of features. [`step`](Self::step) absorbs the token's key and value, then answers its query
/// against everything absorbed so far, exactly as [`causal_attention`] does for that row.
///
/// # Examples
/// ```
/// use nadaraya_rf::{CausalState, FavorPlus};
/// let f = FavorPlus::for_dim(2, 32, 9)?;
/// let mut s = CausalState::new(&f, 1)?;
/// let mut y = [0.0];
/// s.step(&[0.1, 0.2], &[0.1, 0.2], &[5.0], &mut y)?;
/// assert!((y[0] - 5.0).abs() < 1e-5);
/// s.step(&[0.3, -0.1], &[-1.0, 0.4], &[1.0], &mut y)?;
/// assert!(y[0] > 1.0 && y[0] < 5.0);
/// assert_eq!(s.len(), 2);
/// # Ok::<(), nadaraya_rf::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct CausalState<'f> {
    features: &'f FavorPlus,
    dv: usize,
    c: Vec<f32>,
    z: Vec<f32>,
    // Row-major r×dv.
    s: Vec<f32>,
    scratch: Vec<f32>,
    seen: usize,
    // Component j of `s` holds 2^−shift_j times the sums; `vmax_j` is the largest |v_j| absorbed;
    // `vs` is a scratch row of scaled values.
    shift: Vec<i32>,
    vmax: Vec<f32>,
    vs: Vec<f32>,
}

impl<'f> CausalState<'f> {
    /// An empty state for values of dimension `dv`.
    ///
    /// # Memory
    /// `4·r·(dv + 3) + 12·dv` bytes (`S`, `z`, the stabilisers, a scratch row, and the
    /// per-component value scale, maximum and scratch), allocated fallibly.
    ///
    /// # Errors
    /// [`Error::ZeroDimension`] if `dv == 0`; [`Error::TooManyFeatures`] if `r·dv` overflows or
    /// the state cannot be allocated.
    pub fn new(features: &'f FavorPlus, dv: usize) -> Result<Self, Error> {
        if dv == 0 {
            return Err(Error::ZeroDimension);
        }
        let r = features.features();
        Ok(Self {
            features,
            dv,
            c: try_filled(r, f32::NEG_INFINITY)?,
            z: try_filled(r, 0.0)?,
            s: try_filled(len2(r, dv)?, 0.0)?,
            scratch: try_filled(r, 0.0)?,
            seen: 0,
            shift: try_filled(dv, 0)?,
            vmax: try_filled(dv, 0.0)?,
            vs: try_filled(dv, 0.0)?,
        })
    }

    /// Forgets every absorbed token.
    pub fn reset(&mut self) {
        self.c.fill(f32::NEG_INFINITY);
        self.z.fill(0.0);
        self.s.fill(0.0);
        self.seen = 0;
        self.shift.fill(0);
        self.vmax.fill(0.0);
    }

    /// The number of tokens absorbed.
    #[must_use]
    pub fn len(&self) -> usize {
        self.seen
    }

    /// Whether no token has been absorbed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.seen == 0
    }

    /// Absorbs key `k` (`d`) and value `v` (`dv`), then writes the query's output into
    /// `out[..dv]`.
    ///
    /// # Errors
    /// As [`absorb`](Self::absorb) and [`query`](Self::query). Input errors (shapes, NaN or
    /// infinity, a key or query exponent that overflows) are found before anything changes and
    /// leave the state unchanged; only an overflow that needs the absorbed state (the query's
    /// exponents plus the key stabilisers) is found after the key was absorbed.
    pub fn step(&mut self, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32]) -> Result<(), Error> {
        self.check_row(q)?;
        let out = out.get_mut(..self.dv).ok_or(Error::OutputTooSmall)?;
        // The query's own exponents do not depend on the state: reject them before absorbing.
        self.features.query_exponents(q, &mut self.scratch);
        if !all_finite(&self.scratch) {
            return Err(Error::ScoreOverflow);
        }
        self.absorb(k, v)?;
        self.query_unchecked(q, out)
    }

    /// Absorbs one key and value without querying.
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`] / [`Error::ShapeMismatch`] for a key of the wrong length or a
    /// value that is not `dv` long, [`Error::NonFinite`], [`Error::ScoreOverflow`]; the state is
    /// unchanged on error.
    pub fn absorb(&mut self, k: &[f32], v: &[f32]) -> Result<(), Error> {
        self.check_row(k)?;
        if v.len() != self.dv {
            return Err(Error::ShapeMismatch);
        }
        if !all_finite(v) {
            return Err(Error::NonFinite);
        }
        self.absorb_unchecked(k, v)
    }

    /// The output for query `q` against every token absorbed so far, into `out[..dv]`.
    ///
    /// # Errors
    /// [`Error::Empty`] before the first token; [`Error::DimensionMismatch`],
    /// [`Error::NonFinite`], [`Error::OutputTooSmall`], [`Error::ScoreOverflow`] (never
    /// [`Error::OutputOverflow`]: see [`attention`]).
    pub fn query(&mut self, q: &[f32], out: &mut [f32]) -> Result<(), Error> {
        self.check_row(q)?;
        let out = out.get_mut(..self.dv).ok_or(Error::OutputTooSmall)?;
        self.query_unchecked(q, out)
    }

    fn check_row(&self, x: &[f32]) -> Result<(), Error> {
        let d = self.features.dim();
        if x.len() != d {
            return Err(Error::DimensionMismatch {
                expected: d,
                found: x.len(),
            });
        }
        if all_finite(x) {
            Ok(())
        } else {
            Err(Error::NonFinite)
        }
    }

    /// Absorbs a checked, finite key row and value row.
    pub(crate) fn absorb_unchecked(&mut self, k: &[f32], v: &[f32]) -> Result<(), Error> {
        let a = &mut self.scratch;
        self.features.key_exponents(k, a)?;
        // `dv ≥ 1` by construction (`new`); saying so lets the compiler drop the zero-width
        // panics of `chunks_exact_mut` and `step_by` (the no-panic check, README "Panics").
        let dv = self.dv.max(1);
        for (((x, c), z), srow) in a
            .iter_mut()
            .zip(&mut self.c)
            .zip(&mut self.z)
            .zip(self.s.chunks_exact_mut(dv))
        {
            if *x > *c {
                if *z != 0.0 {
                    let f = exp_neg(*c - *x);
                    *z *= f;
                    for s in srow {
                        *s *= f;
                    }
                }
                *c = *x;
            }
            *x -= *c;
        }
        exp_neg_in_place(a);
        // Grow the shift of the value sums if this value needs it (see `SUM_BOUND_LOG2`):
        // rescaling by a power of two is exact, so the order in which it grows does not matter.
        let r = a.len();
        for (j, ((m, e), &x)) in self.vmax.iter_mut().zip(&mut self.shift).zip(v).enumerate() {
            *m = m.max(x.abs());
            let shift = value_shift(*m, self.seen + 1, r);
            if shift > *e {
                let f = down(shift - *e);
                for s in self.s.iter_mut().skip(j).step_by(dv) {
                    *s *= f;
                }
                *e = shift;
            }
        }
        scale_down(&mut self.vs, v, &self.shift);
        for ((p, z), srow) in a.iter().zip(&mut self.z).zip(self.s.chunks_exact_mut(dv)) {
            *z += p;
            for (s, &vj) in srow.iter_mut().zip(&self.vs) {
                *s += p * vj;
            }
        }
        self.seen += 1;
        Ok(())
    }

    /// Answers a checked, finite query row into `out` (exactly `dv` long).
    pub(crate) fn query_unchecked(&mut self, q: &[f32], out: &mut [f32]) -> Result<(), Error> {
        if self.seen == 0 {
            return Err(Error::Empty);
        }
        let b = &mut self.scratch;
        self.features.query_exponents(q, b);
        query_weights(b, &self.c)?;
        out.fill(0.0);
        let mut den = 0.0f32;
        // `dv ≥ 1` by construction; see `absorb_unchecked`.
        let dv = self.dv.max(1);
        for ((&w, &z), srow) in b.iter().zip(&self.z).zip(self.s.chunks_exact(dv)) {
            den += w * z;
            for (o, &s) in out.iter_mut().zip(srow) {
                *o += w * s;
            }
        }
        divide(out, den, &self.shift, &self.vmax)
    }
}

/// The implied attention weights of one query: `α_i = φ(q)·φ(k_i) / Σ_j φ(q)·φ(k_j)`, into
/// `out[..N]` in key order.
///
/// Each `α_i` is a sum of products of exponentials, so it is `≥ 0`, and the weights sum to 1 (up
/// to rounding). This materialises the `N×r` key features (`4·r·(N + 2)` bytes, allocated
/// fallibly); it is a diagnostic, attention itself never does.
///
/// # Errors
/// - [`Error::DimensionMismatch`] if `q.len()` is not the features' dimension;
/// - [`Error::ShapeMismatch`] if `keys.len()` is not a multiple of it;
/// - [`Error::Empty`] if there are no keys; [`Error::OutputTooSmall`] if `out.len() < N`;
/// - [`Error::NonFinite`], [`Error::ScoreOverflow`] as [`attention`];
/// - [`Error::TooManyFeatures`] if `N·r` overflows or the key features cannot be allocated.
///
/// # Examples
/// ```
/// use nadaraya_rf::{weights, FavorPlus};
/// let f = FavorPlus::for_dim(1, 64, 3)?;
/// let mut w = [0.0; 3];
/// weights(&f, &[1.0], &[-1.0, 0.0, 1.0], &mut w)?;
/// assert!(w.iter().all(|&a| a >= 0.0));
/// assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-5);
/// # Ok::<(), nadaraya_rf::Error>(())
/// ```
pub fn weights(
    features: &FavorPlus,
    q: &[f32],
    keys: &[f32],
    out: &mut [f32],
) -> Result<(), Error> {
    let d = features.dim();
    if q.len() != d {
        return Err(Error::DimensionMismatch {
            expected: d,
            found: q.len(),
        });
    }
    let n = core_weights_shape(q, keys, out).map_err(Error::from_shape)?;
    let out = out.get_mut(..n).ok_or(Error::OutputTooSmall)?;
    if !(all_finite(q) && all_finite(keys)) {
        return Err(Error::NonFinite);
    }
    let r = features.features();
    let mut a = try_filled(len2(n, r)?, 0.0f32)?;
    let mut c = try_filled(r, f32::NEG_INFINITY)?;
    for (row, k) in a.chunks_exact_mut(r).zip(keys.chunks_exact(d)) {
        features.key_exponents(k, row)?;
        for (ci, &x) in c.iter_mut().zip(row.iter()) {
            *ci = ci.max(x);
        }
    }
    let mut b = try_filled(r, 0.0f32)?;
    features.query_exponents(q, &mut b);
    query_weights(&mut b, &c)?;
    for row in a.chunks_exact_mut(r) {
        for (x, &ci) in row.iter_mut().zip(&c) {
            *x -= ci;
        }
    }
    exp_neg_in_place(&mut a);
    let mut total = 0.0f32;
    for (o, row) in out.iter_mut().zip(a.chunks_exact(r)) {
        *o = row.iter().zip(&b).map(|(p, w)| p * w).sum();
        total += *o;
    }
    // total ≥ 1 as the denominator of `attention`.
    for o in out.iter_mut() {
        *o /= total;
    }
    Ok(())
}

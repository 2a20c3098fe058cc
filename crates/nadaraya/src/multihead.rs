//! Multi-head self-attention with learned projections: each head is one learned kernel.

use crate::softmax::{Lse, finish_or_exact};
use crate::{Error, Kernel, Mask, Rows, RowsMut, attention, simd};

/// The learned weights of a [`MultiHeadAttention`] layer: plain data, owned by the caller (a
/// `static`, a `Box`, a memory-mapped blob) and lent to the layer, never copied.
///
/// Layout: `w_q[h][i][j]` multiplies input coordinate `i` into head coordinate `j` (row-vector
/// convention `q = x W_Q`), and `w_o[h][j][i]` maps head coordinate `j` back to model
/// coordinate `i`. `4·H·DM·DH` floats.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MhaWeights<const DM: usize, const H: usize, const DH: usize> {
    /// Query projections `W_Q^h: DM → DH`.
    pub w_q: [[[f32; DH]; DM]; H],
    /// Key projections `W_K^h: DM → DH`.
    pub w_k: [[[f32; DH]; DM]; H],
    /// Value projections `W_V^h: DM → DH`.
    pub w_v: [[[f32; DH]; DM]; H],
    /// Each head's slice of the output projection, `W_O^h: DH → DM`.
    pub w_o: [[[f32; DM]; DH]; H],
}

impl<const DM: usize, const H: usize, const DH: usize> MhaWeights<DM, H, DH> {
    /// All weights zero; a `const fn`, so a `static` can hold them.
    #[must_use]
    pub const fn zeros() -> Self {
        Self {
            w_q: [[[0.0; DH]; DM]; H],
            w_k: [[[0.0; DH]; DM]; H],
            w_v: [[[0.0; DH]; DM]; H],
            w_o: [[[0.0; DM]; DH]; H],
        }
    }
}

/// The working memory of [`MultiHeadAttention::forward`] for sequences of up to `L` tokens:
/// `4·L·DH + L·DM` floats the caller owns (a `static`, a `Box`, a long-lived buffer), so that
/// `forward` keeps no sequence-sized array on its own stack frame.
///
/// Its contents between calls mean nothing; any `MhaScratch` of the right shape will do.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MhaScratch<const L: usize, const DM: usize, const DH: usize> {
    q: [[f32; DH]; L],
    k: [[f32; DH]; L],
    v: [[f32; DH]; L],
    o: [[f32; DH]; L],
    y: [[f32; DM]; L],
}

impl<const L: usize, const DM: usize, const DH: usize> MhaScratch<L, DM, DH> {
    /// Zeroed scratch; a `const fn`, so a `static` can hold it.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            q: [[0.0; DH]; L],
            k: [[0.0; DH]; L],
            v: [[0.0; DH]; L],
            o: [[0.0; DH]; L],
            y: [[0.0; DM]; L],
        }
    }
}

impl<const L: usize, const DM: usize, const DH: usize> Default for MhaScratch<L, DM, DH> {
    fn default() -> Self {
        Self::new()
    }
}

/// `H` heads of self-attention over a sequence of `DM`-dimensional tokens, each head with its
/// own projections `W_Q, W_K, W_V: DM → DH`, its own kernel, and its slice `W_O^h: DH → DM` of
/// the output projection.
///
/// `out_t = Σ_h Σ_i α^h_{t,i} (x_i W_V^h) W_O^h` with `α^h = softmax(kernel_h(x_t W_Q^h, x_i W_K^h))`:
/// the projections learn the geometry of each head's kernel (the seed's "Key Insights"). There
/// are no biases. The layer holds its kernels and borrows its [`MhaWeights`] (the layer itself
/// is small: `size_of` is the kernels and one pointer); [`forward`](Self::forward) works in an
/// [`MhaScratch`] the caller passes, sized for `L` tokens by const generics, so no call hides a
/// multi-MiB stack frame.
///
/// # Examples
/// ```
/// use nadaraya::{Mask, MhaScratch, MhaWeights, MultiHeadAttention, SoftmaxDot};
/// // Two heads of width 1 over 2-D tokens: head 0 reads coordinate 0, head 1 coordinate 1.
/// let k = SoftmaxDot::for_dim(1)?;
/// let pick = |c: usize| core::array::from_fn(|i| [if i == c { 1.0 } else { 0.0 }]);
/// let w = MhaWeights::<2, 2, 1> {
///     w_q: [pick(0), pick(1)],
///     w_k: [pick(0), pick(1)],
///     w_v: [pick(0), pick(1)],
///     w_o: [[[1.0, 0.0]], [[0.0, 1.0]]],
/// };
/// let mha = MultiHeadAttention::new([k; 2], &w)?;
/// let mut scratch = MhaScratch::<4, 2, 1>::new();
/// let x = [[1.0, 2.0], [3.0, 4.0]];
/// let mut out = [[0.0; 2]; 2];
/// mha.forward(&x, Mask::Causal, &mut scratch, &mut out)?;
/// assert_eq!(out[0], [1.0, 2.0]); // causal: the first token sees only itself
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct MultiHeadAttention<'w, K, const DM: usize, const H: usize, const DH: usize> {
    kernels: [K; H],
    weights: &'w MhaWeights<DM, H, DH>,
}

#[cfg(feature = "defmt")]
impl<K: defmt::Format, const DM: usize, const H: usize, const DH: usize> defmt::Format
    for MultiHeadAttention<'_, K, DM, H, DH>
{
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "MultiHeadAttention {{ kernels: {}, DM: {}, H: {}, DH: {} }}",
            self.kernels,
            DM,
            H,
            DH
        );
    }
}

impl<'w, K: Kernel, const DM: usize, const H: usize, const DH: usize>
    MultiHeadAttention<'w, K, DM, H, DH>
{
    /// A layer from per-head kernels and borrowed weights. `DM`, `H`, `DH` must be non-zero
    /// (checked at compile time).
    ///
    /// # Errors
    /// [`Error::NonFinite`] if any weight is NaN or infinite.
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn new(kernels: [K; H], weights: &'w MhaWeights<DM, H, DH>) -> Result<Self, Error> {
        const { assert!(DM > 0 && H > 0 && DH > 0, "DM, H and DH must be non-zero") };
        let w = weights;
        let finite = [&w.w_q, &w.w_k, &w.w_v]
            .iter()
            .all(|w| simd::all_finite(w.as_flattened().as_flattened()))
            && simd::all_finite(w.w_o.as_flattened().as_flattened());
        if !finite {
            return Err(Error::NonFinite);
        }
        Ok(Self { kernels, weights })
    }

    /// The per-head kernels.
    #[must_use]
    pub fn kernels(&self) -> &[K; H] {
        &self.kernels
    }

    /// The weights.
    #[must_use]
    pub fn weights(&self) -> &'w MhaWeights<DM, H, DH> {
        self.weights
    }

    /// Self-attention over `x` (at most `L` tokens) into `out[..x.len()]`, working in
    /// `scratch`; [`Mask::Causal`] restricts token `t` to tokens `0..=t`.
    ///
    /// # Errors
    /// - [`Error::Empty`] if `x` is empty;
    /// - [`Error::CapacityExceeded`] if `x.len() > L`;
    /// - [`Error::OutputTooSmall`] if `out.len() < x.len()`;
    /// - [`Error::NonFinite`] if a token is not finite;
    /// - [`Error::Overflow`] if a result is not representable in `f32`: a projection
    ///   `x_t W_Q^h`, `x_t W_K^h` or `x_t W_V^h`, or an output `Σ_h o^h_t W_O^h`, whose exact
    ///   value (computed in `f64` from the same `f32` operands) has a component that rounds
    ///   beyond `±f32::MAX`; an `f32` partial sum that overflows while the exact value is
    ///   representable is recomputed, not reported;
    /// - [`Error::ScoreOverflow`] if a score of the projected queries and keys is NaN or `+inf`
    ///   in `f32` (a score of `-inf` is weight 0);
    /// - [`Error::NoSupport`] if every score of a query is `-inf`.
    ///
    /// `out` is written only on success: `Ok` means every output is finite.
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn forward<const L: usize>(
        &self,
        x: &[[f32; DM]],
        mask: Mask,
        scratch: &mut MhaScratch<L, DM, DH>,
        out: &mut [[f32; DM]],
    ) -> Result<(), Error> {
        let n = x.len();
        if n == 0 {
            return Err(Error::Empty);
        }
        if n > L {
            return Err(Error::CapacityExceeded);
        }
        let Some(out) = out.get_mut(..n) else {
            return Err(Error::OutputTooSmall);
        };
        if !simd::all_finite(x.as_flattened()) {
            return Err(Error::NonFinite);
        }
        let MhaScratch { q, k, v, o, y } = scratch;
        for yt in y.iter_mut() {
            *yt = [0.0; DM];
        }
        let w = self.weights;
        let heads = self
            .kernels
            .iter()
            .zip(&w.w_q)
            .zip(&w.w_k)
            .zip(&w.w_v)
            .zip(&w.w_o);
        for ((((kernel, w_q), w_k), w_v), w_o) in heads {
            let rows = q.iter_mut().zip(k.iter_mut()).zip(v.iter_mut());
            for (xt, ((qt, kt), vt)) in x.iter().zip(rows) {
                *qt = project(xt, w_q)?;
                *kt = project(xt, w_k)?;
                *vt = project(xt, w_v)?;
            }
            let (qs, ks, vs) = (
                q[..n].as_flattened(),
                k[..n].as_flattened(),
                v[..n].as_flattened(),
            );
            let os = o[..n].as_flattened_mut();
            let (qs, ks, vs) = (Rows::new(qs, DH)?, Rows::new(ks, DH)?, Rows::new(vs, DH)?);
            attention(kernel, qs, ks, vs, mask, RowsMut::new(os, DH)?)?;
            for (yt, ot) in y.iter_mut().zip(&o[..n]) {
                simd::weighted_sum_into(ot, w_o.as_flattened(), DM, yt);
            }
        }
        // A partial sum over heads that overflowed is not finite, whatever came after it; only
        // then is the token's output recomputed in f64 and its representability decided.
        for (t, yt) in y.iter_mut().enumerate().take(n) {
            if !simd::all_finite(yt) {
                *yt = self.output_exact(x, mask, t, k, v)?;
            }
        }
        for (a, b) in out.iter_mut().zip(y.iter()) {
            *a = *b;
        }
        Ok(())
    }

    /// Token `t`'s output `Σ_h o^h_t W_O^h`, summed in `f64` from the same head outputs `o^h_t`
    /// as [`forward`](Self::forward) computes (each head's row `t` recomputed alone, which the
    /// slice functions give bit for bit), or [`Error::Overflow`] if a component rounds beyond
    /// `±f32::MAX`. `k` and `v` are scratch. The cold path behind an `f32` sum that overflowed.
    #[cold]
    fn output_exact<const L: usize>(
        &self,
        x: &[[f32; DM]],
        mask: Mask,
        t: usize,
        k: &mut [[f32; DH]; L],
        v: &mut [[f32; DH]; L],
    ) -> Result<[f32; DM], Error> {
        let seen = match mask {
            Mask::Causal => t.saturating_add(1),
            Mask::None => x.len(),
        };
        let (Some(xt), Some(xs)) = (x.get(t), x.get(..seen)) else {
            return Err(Error::CapacityExceeded);
        };
        let (Some(ks), Some(vs)) = (k.get_mut(..seen), v.get_mut(..seen)) else {
            return Err(Error::CapacityExceeded);
        };
        let mut acc = [0.0f64; DM];
        let w = self.weights;
        let heads = self
            .kernels
            .iter()
            .zip(&w.w_q)
            .zip(&w.w_k)
            .zip(&w.w_v)
            .zip(&w.w_o);
        for ((((kernel, w_q), w_k), w_v), w_o) in heads {
            for (xi, (ki, vi)) in xs.iter().zip(ks.iter_mut().zip(vs.iter_mut())) {
                *ki = project(xi, w_k)?;
                *vi = project(xi, w_v)?;
            }
            let qt = project(xt, w_q)?;
            // Row t of `attention` alone: the same tiles through the same state, bit for bit.
            let (kf, vf) = (ks.as_flattened(), vs.as_flattened());
            let mut o = [0.0f32; DH];
            let mut l = Lse::EMPTY;
            l.absorb_fused(kernel, &qt, kf, vf, DH, &mut o)?;
            finish_or_exact(&l, kernel, &qt, &[(kf, vf)], DH, &mut o)?;
            for (oj, row) in o.iter().zip(w_o) {
                for (a, w) in acc.iter_mut().zip(row) {
                    *a += f64::from(*oj) * f64::from(*w);
                }
            }
        }
        narrow(&acc)
    }
}

/// `x W` for a row vector `x` and a `R×C` matrix `W`; if an `f32` partial sum overflowed, the
/// product recomputed in `f64`, or [`Error::Overflow`] if a component of it rounds beyond
/// `±f32::MAX`.
#[inline]
fn project<const R: usize, const C: usize>(
    x: &[f32; R],
    w: &[[f32; C]; R],
) -> Result<[f32; C], Error> {
    let mut out = [0.0f32; C];
    simd::weighted_sum_into(x, w.as_flattened(), C, &mut out);
    if simd::all_finite(&out) {
        Ok(out)
    } else {
        project_exact(x, w)
    }
}

/// The cold path of [`project`]: every product of two `f32` is exact in `f64`, and a sum of `R`
/// of them cannot overflow it.
#[cold]
#[inline(never)]
fn project_exact<const R: usize, const C: usize>(
    x: &[f32; R],
    w: &[[f32; C]; R],
) -> Result<[f32; C], Error> {
    let mut acc = [0.0f64; C];
    for (xi, row) in x.iter().zip(w) {
        for (a, wij) in acc.iter_mut().zip(row) {
            *a += f64::from(*xi) * f64::from(*wij);
        }
    }
    narrow(&acc)
}

/// `f64` components rounded to `f32`, or [`Error::Overflow`] if one rounds to `±inf`.
fn narrow<const C: usize>(acc: &[f64; C]) -> Result<[f32; C], Error> {
    let out = acc.map(|a| a as f32);
    if simd::all_finite(&out) {
        Ok(out)
    } else {
        Err(Error::Overflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SoftmaxDot;
    use crate::testing::assert_close;
    use std::boxed::Box;
    use std::vec::Vec;

    /// A layer over leaked weights (the old by-value constructor, for the tests).
    #[allow(clippy::type_complexity)]
    fn layer<K: Kernel, const DM: usize, const H: usize, const DH: usize>(
        kernels: [K; H],
        w_q: [[[f32; DH]; DM]; H],
        w_k: [[[f32; DH]; DM]; H],
        w_v: [[[f32; DH]; DM]; H],
        w_o: [[[f32; DM]; DH]; H],
    ) -> Result<MultiHeadAttention<'static, K, DM, H, DH>, Error> {
        let w = Box::leak(Box::new(MhaWeights { w_q, w_k, w_v, w_o }));
        MultiHeadAttention::new(kernels, w)
    }

    /// `forward` with fresh scratch for `L` tokens.
    fn run<const L: usize, K: Kernel, const DM: usize, const H: usize, const DH: usize>(
        m: &MultiHeadAttention<'_, K, DM, H, DH>,
        x: &[[f32; DM]],
        causal: bool,
        out: &mut [[f32; DM]],
    ) -> Result<(), Error> {
        let mask = if causal { Mask::Causal } else { Mask::None };
        m.forward(x, mask, &mut MhaScratch::<L, DM, DH>::new(), out)
    }

    /// The layer in plain `f64`: projections in `f64` rounded to `f32` (the operands the kernel
    /// scores), weights and head outputs in `f64`. Returns each output and the scale
    /// `Σ_h Σ_j |o_j W_O[j][i]|` its rounding error is measured against, or the error: `Overflow`
    /// where an exact projection or output is not representable in `f32`, `ScoreOverflow` where
    /// an `f32` score is NaN or `+inf`, `NoSupport` where every score of a query is `-inf` (in
    /// `forward`'s order: head by head, outputs last).
    #[allow(clippy::type_complexity)]
    fn reference<K: Kernel, const DM: usize, const H: usize, const DH: usize>(
        m: &MultiHeadAttention<'_, K, DM, H, DH>,
        x: &[[f32; DM]],
        causal: bool,
    ) -> Result<Vec<([f64; DM], [f64; DM])>, Error> {
        let proj = |xt: &[f32; DM], w: &[[f32; DH]; DM]| -> Result<[f32; DH], Error> {
            let p: [f64; DH] = core::array::from_fn(|j| {
                (0..DM).map(|i| f64::from(xt[i]) * f64::from(w[i][j])).sum()
            });
            let p = p.map(|v| v as f32);
            if p.iter().all(|v| v.is_finite()) {
                Ok(p)
            } else {
                Err(Error::Overflow)
            }
        };
        let mut out = std::vec![([0.0; DM], [0.0; DM]); x.len()];
        for h in 0..H {
            let q: Result<Vec<_>, _> = x.iter().map(|t| proj(t, &m.weights.w_q[h])).collect();
            let k: Result<Vec<_>, _> = x.iter().map(|t| proj(t, &m.weights.w_k[h])).collect();
            let v: Result<Vec<_>, _> = x.iter().map(|t| proj(t, &m.weights.w_v[h])).collect();
            let (q, k, v) = (q?, k?, v?);
            for (t, (y, scale)) in out.iter_mut().enumerate() {
                let seen = if causal { t + 1 } else { x.len() };
                let s: Vec<f32> = (0..seen)
                    .map(|i| m.kernels[h].score(&q[t], &k[i]))
                    .collect();
                if s.iter().any(|s| s.is_nan() || *s == f32::INFINITY) {
                    return Err(Error::ScoreOverflow);
                }
                if s.iter().all(|s| *s == f32::NEG_INFINITY) {
                    return Err(Error::NoSupport);
                }
                let s: Vec<f64> = s.into_iter().map(f64::from).collect();
                let mx = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let w: Vec<f64> = s.iter().map(|s| (s - mx).exp()).collect();
                let total: f64 = w.iter().sum();
                for j in 0..DH {
                    let o: f64 = (0..seen).map(|i| w[i] * f64::from(v[i][j])).sum::<f64>() / total;
                    for c in 0..DM {
                        y[c] += o * f64::from(m.weights.w_o[h][j][c]);
                        scale[c] += (o * f64::from(m.weights.w_o[h][j][c])).abs();
                    }
                }
            }
        }
        if out
            .iter()
            .all(|(y, _)| y.iter().all(|v| (*v as f32).is_finite()))
        {
            Ok(out)
        } else {
            Err(Error::Overflow)
        }
    }

    /// `forward` against [`reference`]: `Ok` with every output finite and within rounding of it,
    /// or the reference's error: `Overflow` exactly where a result is not representable.
    #[track_caller]
    fn check<const DM: usize, const H: usize, const DH: usize>(
        m: &MultiHeadAttention<'_, SoftmaxDot, DM, H, DH>,
        x: &[[f32; DM]],
    ) {
        for causal in [false, true] {
            let mut out = std::vec![[7.0f32; DM]; x.len()];
            let got = run::<4, _, _, _, _>(m, x, causal, &mut out);
            match reference(m, x, causal) {
                Err(e) => assert_eq!(got, Err(e), "causal={causal}"),
                Ok(want) => {
                    assert_eq!(got, Ok(()), "causal={causal}");
                    for (o, (w, scale)) in out.iter().zip(&want) {
                        for c in 0..DM {
                            assert!(o[c].is_finite(), "causal={causal}: {o:?}");
                            let tol = 1e-6 * scale[c] + 1e-30;
                            assert_close(f64::from(o[c]), w[c], tol, "forward");
                        }
                    }
                }
            }
        }
    }

    /// Issue 11, class 1: two heads whose contributions to the output are `6e38` and `-6e38`
    /// (each an `f32` sum that overflows) gave `Ok` with NaN; the exact output is representable.
    /// Contributions that really add up beyond `f32::MAX` are `Err(Overflow)`.
    #[test]
    fn output_projection_overflow_is_exact() {
        let k = SoftmaxDot::for_dim(2).unwrap();
        let id = [[1.0, 0.0], [0.0, 1.0]];
        let x = [[1.0, 1.0], [0.5, 1.0]];
        let (a, b) = (3e38f32, 1.0f32);
        let cancel = [[[a, b], [a, b]], [[-a, b], [-a, b]]];
        let mha = layer::<_, 2, 2, 2>([k; 2], [id; 2], [id; 2], [id; 2], cancel).unwrap();
        check(&mha, &x);
        let mut out = [[0.0; 2]; 2];
        run::<4, _, _, _, _>(&mha, &x, false, &mut out).unwrap();
        assert!(out.iter().all(|o| o[0].abs() < 1e33), "{out:?}");
        let add = [[[a, b], [a, b]], [[a, b], [a, b]]];
        let mha = layer::<_, 2, 2, 2>([k; 2], [id; 2], [id; 2], [id; 2], add).unwrap();
        check(&mha, &x);
        assert_eq!(
            run::<4, _, _, _, _>(&mha, &x, true, &mut out),
            Err(Error::Overflow)
        );
        // One head's own sum beyond f32::MAX while the other head brings it back in range.
        let back = [[[a, b], [a, b]], [[-a, b], [0.0, b]]];
        let mha = layer::<_, 2, 2, 2>([k; 2], [id; 2], [id; 2], [id; 2], back).unwrap();
        check(&mha, &x);
    }

    /// Projections `x W` whose `f32` partial sums overflow: `Ok` from the exact value where it is
    /// representable (`3e38 + 3e38 - 3e38`), `Err(Overflow)` where it is not (`3e38 + 3e38`), never
    /// `NonFinite` for finite tokens and weights.
    #[test]
    fn input_projection_overflow_is_exact() {
        let k = SoftmaxDot::for_dim(1).unwrap();
        let x = [[3e38f32, 3e38, 3e38], [3e38, 3e38, 3e38]];
        let small = [[1e-39f32], [0.0], [0.0]];
        let back = [[1.0f32], [1.0], [-1.0]];
        let w_o = [[[1.0f32, 0.0, 2.0]]];
        for (w_q, w_k, w_v) in [
            (small, small, back),
            (back, small, small),
            (small, back, small),
        ] {
            let mha = layer::<_, 3, 1, 1>([k], [w_q], [w_k], [w_v], w_o).unwrap();
            check(&mha, &x);
        }
        // v = 3e38 exactly: the output is 3e38 and 6e38, the latter not representable.
        let mha = layer::<_, 3, 1, 1>([k], [small], [small], [back], w_o).unwrap();
        let mut out = [[0.0; 3]; 2];
        assert_eq!(
            run::<4, _, _, _, _>(&mha, &x, false, &mut out),
            Err(Error::Overflow)
        );
        let w_o = [[[1.0f32, 0.0, -1.0]]];
        let mha = layer::<_, 3, 1, 1>([k], [small], [small], [back], w_o).unwrap();
        run::<4, _, _, _, _>(&mha, &x, false, &mut out).unwrap();
        assert_eq!(out, [[3e38, 0.0, -3e38]; 2]);
        let over = [[1.0f32], [1.0], [0.0]];
        for (w_q, w_k, w_v) in [
            (small, small, over),
            (over, small, small),
            (small, over, small),
        ] {
            let mha = layer::<_, 3, 1, 1>([k], [w_q], [w_k], [w_v], w_o).unwrap();
            assert_eq!(
                run::<4, _, _, _, _>(&mha, &x, true, &mut out),
                Err(Error::Overflow)
            );
            check(&mha, &x);
        }
    }
}

//! Multi-head self-attention with learned projections: each head is one learned kernel.

use crate::{Error, Kernel, attention, causal_attention, simd};

/// `H` heads of self-attention over a sequence of `DM`-dimensional tokens, each head with its
/// own projections `W_Q, W_K, W_V: DM → DH`, its own kernel, and its slice `W_O^h: DH → DM` of
/// the output projection.
///
/// `out_t = Σ_h Σ_i α^h_{t,i} (x_i W_V^h) W_O^h` with `α^h = softmax(kernel_h(x_t W_Q^h, x_i W_K^h))`:
/// the projections learn the geometry of each head's kernel (the seed's "Key Insights"). There
/// are no biases. Everything lives in fixed-size arrays; [`forward`](Self::forward) takes the
/// sequence capacity `L` as a const parameter and keeps `4·L·DH` floats of scratch on the stack.
///
/// Weight layout: `w_q[h][i][j]` multiplies input coordinate `i` into head coordinate `j`
/// (row-vector convention `q = x W_Q`), and `w_o[h][j][i]` maps head coordinate `j` back to model
/// coordinate `i`.
///
/// # Examples
/// ```
/// use nadaraya::{MultiHeadAttention, SoftmaxDot};
/// // Two heads of width 1 over 2-D tokens: head 0 reads coordinate 0, head 1 coordinate 1.
/// let k = SoftmaxDot::for_dim(1)?;
/// let pick = |c: usize| core::array::from_fn(|i| [if i == c { 1.0 } else { 0.0 }]);
/// let w_o = [[[1.0, 0.0]], [[0.0, 1.0]]];
/// let mha = MultiHeadAttention::<_, 2, 2, 1>::new([k; 2], [pick(0), pick(1)], [pick(0), pick(1)],
///                                                 [pick(0), pick(1)], w_o)?;
/// let x = [[1.0, 2.0], [3.0, 4.0]];
/// let mut out = [[0.0; 2]; 2];
/// mha.forward::<4>(&x, true, &mut out)?;
/// assert_eq!(out[0], [1.0, 2.0]); // causal: the first token sees only itself
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct MultiHeadAttention<K, const DM: usize, const H: usize, const DH: usize> {
    kernels: [K; H],
    w_q: [[[f32; DH]; DM]; H],
    w_k: [[[f32; DH]; DM]; H],
    w_v: [[[f32; DH]; DM]; H],
    w_o: [[[f32; DM]; DH]; H],
}

impl<K: Kernel, const DM: usize, const H: usize, const DH: usize> MultiHeadAttention<K, DM, H, DH> {
    /// A layer from per-head kernels and weights. `DM`, `H`, `DH` must be non-zero (checked at
    /// compile time).
    ///
    /// # Errors
    /// [`Error::NonFinite`] if any weight is NaN or infinite.
    pub fn new(
        kernels: [K; H],
        w_q: [[[f32; DH]; DM]; H],
        w_k: [[[f32; DH]; DM]; H],
        w_v: [[[f32; DH]; DM]; H],
        w_o: [[[f32; DM]; DH]; H],
    ) -> Result<Self, Error> {
        const { assert!(DM > 0 && H > 0 && DH > 0, "DM, H and DH must be non-zero") };
        let finite = [&w_q, &w_k, &w_v]
            .iter()
            .all(|w| simd::all_finite(w.as_flattened().as_flattened()))
            && simd::all_finite(w_o.as_flattened().as_flattened());
        if !finite {
            return Err(Error::NonFinite);
        }
        Ok(Self {
            kernels,
            w_q,
            w_k,
            w_v,
            w_o,
        })
    }

    /// The per-head kernels.
    #[must_use]
    pub fn kernels(&self) -> &[K; H] {
        &self.kernels
    }

    /// Self-attention over `x` (at most `L` tokens) into `out[..x.len()]`; `causal` restricts
    /// token `t` to tokens `0..=t`.
    ///
    /// # Errors
    /// - [`Error::Empty`] if `x` is empty;
    /// - [`Error::CapacityExceeded`] if `x.len() > L`;
    /// - [`Error::OutputTooSmall`] if `out.len() < x.len()`;
    /// - [`Error::NonFinite`] if a token, or a projection of it, is not finite;
    /// - [`Error::ScoreOverflow`] if a score is not finite in `f32`;
    /// - [`Error::Overflow`] if a weighted sum overflows `f32`.
    ///
    /// `out` is written only on success.
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn forward<const L: usize>(
        &self,
        x: &[[f32; DM]],
        causal: bool,
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
        let mut q = [[0.0f32; DH]; L];
        let mut k = [[0.0f32; DH]; L];
        let mut v = [[0.0f32; DH]; L];
        let mut o = [[0.0f32; DH]; L];
        let mut y = [[0.0f32; DM]; L];
        let heads = self
            .kernels
            .iter()
            .zip(&self.w_q)
            .zip(&self.w_k)
            .zip(&self.w_v)
            .zip(&self.w_o);
        for ((((kernel, w_q), w_k), w_v), w_o) in heads {
            let rows = q.iter_mut().zip(k.iter_mut()).zip(v.iter_mut());
            for (xt, ((qt, kt), vt)) in x.iter().zip(rows) {
                *qt = project(xt, w_q);
                *kt = project(xt, w_k);
                *vt = project(xt, w_v);
            }
            let (qs, ks, vs) = (
                q[..n].as_flattened(),
                k[..n].as_flattened(),
                v[..n].as_flattened(),
            );
            let os = o[..n].as_flattened_mut();
            if causal {
                causal_attention(kernel, qs, ks, vs, DH, DH, os)?;
            } else {
                attention(kernel, qs, ks, vs, DH, DH, os)?;
            }
            for (yt, ot) in y.iter_mut().zip(&o[..n]) {
                simd::weighted_sum_into(ot, w_o.as_flattened(), DM, yt);
            }
        }
        for (a, b) in out.iter_mut().zip(&y) {
            *a = *b;
        }
        Ok(())
    }
}

/// `x W` for a row vector `x` and a `R×C` matrix `W`.
#[inline]
fn project<const R: usize, const C: usize>(x: &[f32; R], w: &[[f32; C]; R]) -> [f32; C] {
    let mut out = [0.0f32; C];
    simd::weighted_sum_into(x, w.as_flattened(), C, &mut out);
    out
}

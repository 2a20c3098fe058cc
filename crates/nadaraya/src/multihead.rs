//! Multi-head self-attention with learned projections: each head is one learned kernel.

use crate::softmax::{Lse, finish_or_exact};
use crate::{
    Dim, Error, Gradients, Kernel, KernelGrad, Mask, Rows, RowsMut, Upstream, attention,
    attention_backward, attention_lse, simd,
};

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

    /// The number of weights, `4·H·DM·DH`: the length of an optimiser's state for them.
    pub const LEN: usize = 4 * H * DM * DH;

    /// The four weight arrays as flat slices, in the order `w_q, w_k, w_v, w_o`: what an
    /// optimiser of [`optim`](crate::optim) steps (the gradients of
    /// [`MultiHeadAttention::backward`] have the same layout).
    #[must_use]
    pub fn as_slices(&self) -> [&[f32]; 4] {
        [
            self.w_q.as_flattened().as_flattened(),
            self.w_k.as_flattened().as_flattened(),
            self.w_v.as_flattened().as_flattened(),
            self.w_o.as_flattened().as_flattened(),
        ]
    }

    /// [`as_slices`](Self::as_slices), mutable.
    #[must_use]
    pub fn as_slices_mut(&mut self) -> [&mut [f32]; 4] {
        [
            self.w_q.as_flattened_mut().as_flattened_mut(),
            self.w_k.as_flattened_mut().as_flattened_mut(),
            self.w_v.as_flattened_mut().as_flattened_mut(),
            self.w_o.as_flattened_mut().as_flattened_mut(),
        ]
    }

    /// Head by head, its four projections: the one walk over the heads of the weights (and of
    /// gradients, which have their layout) that `forward`, `backward` and the exact path share.
    fn heads(&self) -> impl Iterator<Item = Head<&[[f32; DH]; DM], &[[f32; DM]; DH]>> {
        let qkv = self.w_q.iter().zip(&self.w_k).zip(&self.w_v);
        qkv.zip(&self.w_o)
            .map(|(((q, k), v), o)| Head { q, k, v, o })
    }

    /// [`heads`](Self::heads), mutable.
    fn heads_mut(
        &mut self,
    ) -> impl Iterator<Item = Head<&mut [[f32; DH]; DM], &mut [[f32; DM]; DH]>> {
        let qkv = self.w_q.iter_mut().zip(&mut self.w_k).zip(&mut self.w_v);
        qkv.zip(&mut self.w_o)
            .map(|(((q, k), v), o)| Head { q, k, v, o })
    }
}

/// One head's projections (or their gradients): `W_Q`, `W_K`, `W_V` of type `P`, `W_O^h` of
/// type `O`.
struct Head<P, O> {
    q: P,
    k: P,
    v: P,
    o: O,
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

/// The working memory of [`MultiHeadAttention::backward`] for sequences of up to `L` tokens:
/// `8·L·DH + L` floats the caller owns, one head's projections, output, log-sum-exp and
/// gradients at a time (heads are recomputed one after another, never all held).
///
/// Its contents between calls mean nothing.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MhaGradScratch<const L: usize, const DH: usize> {
    q: [[f32; DH]; L],
    k: [[f32; DH]; L],
    v: [[f32; DH]; L],
    o: [[f32; DH]; L],
    d_o: [[f32; DH]; L],
    d_q: [[f32; DH]; L],
    d_k: [[f32; DH]; L],
    d_v: [[f32; DH]; L],
    lse: [f32; L],
}

impl<const L: usize, const DH: usize> MhaGradScratch<L, DH> {
    /// Zeroed scratch; a `const fn`, so a `static` can hold it.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            q: [[0.0; DH]; L],
            k: [[0.0; DH]; L],
            v: [[0.0; DH]; L],
            o: [[0.0; DH]; L],
            d_o: [[0.0; DH]; L],
            d_q: [[0.0; DH]; L],
            d_k: [[0.0; DH]; L],
            d_v: [[0.0; DH]; L],
            lse: [0.0; L],
        }
    }
}

impl<const L: usize, const DH: usize> Default for MhaGradScratch<L, DH> {
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
        for (kernel, w) in self.kernels.iter().zip(self.weights.heads()) {
            project_qkv(x, &w, q, k, v)?;
            let (qs, ks, vs) = (rows(q, n)?, rows(k, n)?, rows(v, n)?);
            attention(kernel, qs, ks, vs, mask, rows_mut(o, n)?)?;
            for (yt, ot) in y.iter_mut().zip(&o[..n]) {
                simd::weighted_sum_into(ot, w.o.as_flattened(), DM, yt);
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
        for (kernel, w) in self.kernels.iter().zip(self.weights.heads()) {
            for (xi, (ki, vi)) in xs.iter().zip(ks.iter_mut().zip(vs.iter_mut())) {
                *ki = project(xi, w.k)?;
                *vi = project(xi, w.v)?;
            }
            let qt = project(xt, w.q)?;
            // Row t of `attention` alone: the same tiles through the same state, bit for bit.
            let (kf, vf) = (ks.as_flattened(), vs.as_flattened());
            let mut o = [0.0f32; DH];
            let mut l = Lse::EMPTY;
            l.absorb_fused(kernel, &qt, kf, vf, DH, &mut o)?;
            finish_or_exact(&l, kernel, &qt, &[(kf, vf)], DH, &mut o)?;
            add_product_exact(&o, w.o, &mut acc);
        }
        narrow(&acc)
    }
}

impl<K: KernelGrad, const DM: usize, const H: usize, const DH: usize>
    MultiHeadAttention<'_, K, DM, H, DH>
{
    /// The backward pass of [`forward`](Self::forward): given the tokens `x`, the mask and
    /// `d_out = ∂L/∂out` for a loss `L`, **adds** `∂L/∂W` to `grads` (same layout as the
    /// weights, so that the gradients of a batch sum over calls; start from
    /// [`MhaWeights::zeros`]), writes `∂L/∂x` into `d_x[..x.len()]`, and returns `∂L/∂ln θ_h` for
    /// each head's kernel parameter (`ln τ` or `ln h`, see [`KernelGrad`]).
    ///
    /// Head by head, in `scratch`: the projections and the head's output are recomputed
    /// ([`attention_lse`]), `dO^h = d_out W_O^hᵀ`, then [`attention_backward`] gives `dQ`, `dK`,
    /// `dV`, and `∂L/∂W_Q^h = xᵀ dQ` (likewise `W_K`, `W_V`), `∂L/∂W_O^h = O^hᵀ d_out`,
    /// `∂L/∂x = Σ_h dQ W_Q^hᵀ + dK W_K^hᵀ + dV W_V^hᵀ`. Accumulated in `f32`; the accuracy of
    /// [`attention_backward`] per head (measured against central differences of an `f64`
    /// reference in the tests: worst 5e-6 of each gradient's largest component, tested at
    /// `1e-4`).
    ///
    /// # Errors
    /// - [`Error::Empty`] if `x` is empty;
    /// - [`Error::CapacityExceeded`] if `x.len() > L`;
    /// - [`Error::Shape`] with [`Dim::GradientRows`] if `d_out` has not one row per token;
    /// - [`Error::OutputTooSmall`] if `d_x.len() < x.len()`;
    /// - [`Error::NonFinite`] if a token or a component of `d_out` is not finite, or a
    ///   gradient in `grads` is not finite on entry;
    /// - the errors of [`forward`](Self::forward) for the projections and scores
    ///   ([`Error::Overflow`], [`Error::ScoreOverflow`], [`Error::NoSupport`]);
    /// - [`Error::Overflow`] if a gradient is not representable in `f32`.
    ///
    /// On an error after the checks of the inputs, `grads` and `d_x` may hold partial results.
    ///
    /// # Examples
    /// ```
    /// use nadaraya::{Mask, MhaGradScratch, MhaWeights, MultiHeadAttention, SoftmaxDot};
    /// // One head of width 1 over 1-D tokens, every weight 1: out_t = Σ_i α_ti x_i.
    /// let w = MhaWeights::<1, 1, 1> { w_q: [[[1.0]]], w_k: [[[1.0]]], w_v: [[[1.0]]], w_o: [[[1.0]]] };
    /// let mha = MultiHeadAttention::new([SoftmaxDot::new(1.0)?], &w)?;
    /// let (x, d_out) = ([[2.0]], [[1.0]]);
    /// let (mut grads, mut d_x) = (MhaWeights::zeros(), [[0.0]]);
    /// mha.backward(&x, Mask::None, &d_out, &mut MhaGradScratch::<4, 1>::new(), &mut grads, &mut d_x)?;
    /// // One token: out = x W_V W_O, so ∂out/∂W_V = x W_O = 2 and ∂out/∂x = W_V W_O = 1.
    /// assert_eq!((grads.w_v, grads.w_o, grads.w_q, d_x), ([[[2.0]]], [[[2.0]]], [[[0.0]]], [[1.0]]));
    /// # Ok::<(), nadaraya::Error>(())
    /// ```
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn backward<const L: usize>(
        &self,
        x: &[[f32; DM]],
        mask: Mask,
        d_out: &[[f32; DM]],
        scratch: &mut MhaGradScratch<L, DH>,
        grads: &mut MhaWeights<DM, H, DH>,
        d_x: &mut [[f32; DM]],
    ) -> Result<[f32; H], Error> {
        let n = x.len();
        if n == 0 {
            return Err(Error::Empty);
        }
        if n > L {
            return Err(Error::CapacityExceeded);
        }
        if d_out.len() != n {
            return Err(Error::Shape {
                what: Dim::GradientRows,
                expected: n,
                found: d_out.len(),
            });
        }
        let Some(d_x) = d_x.get_mut(..n) else {
            return Err(Error::OutputTooSmall);
        };
        let finite = simd::all_finite(x.as_flattened())
            && simd::all_finite(d_out.as_flattened())
            && grads.as_slices().iter().all(|g| simd::all_finite(g));
        if !finite {
            return Err(Error::NonFinite);
        }
        for r in d_x.iter_mut() {
            *r = [0.0; DM];
        }
        let mut d_log = [0.0f32; H];
        let heads = self.kernels.iter().zip(self.weights.heads());
        for ((kernel, w), (g, d_log)) in heads.zip(grads.heads_mut().zip(d_log.iter_mut())) {
            let s = &mut *scratch;
            project_qkv(x, &w, &mut s.q, &mut s.k, &mut s.v)?;
            let (q, k, v) = (rows(&s.q, n)?, rows(&s.k, n)?, rows(&s.v, n)?);
            let Some(lse) = s.lse.get_mut(..n) else {
                return Err(Error::CapacityExceeded);
            };
            attention_lse(kernel, q, k, v, mask, rows_mut(&mut s.o, n)?, lse)?;
            // dO = d_out W_Oᵀ and ∂L/∂W_O += Oᵀ d_out.
            let put = |d: &mut f32, v: f32| *d = v;
            linear_backward(&s.o[..n], d_out, w.o, g.o, &mut s.d_o, put);
            if !simd::all_finite(s.d_o[..n].as_flattened()) {
                return Err(Error::Overflow);
            }
            let up = Upstream {
                out: rows(&s.o, n)?,
                lse: &s.lse[..n],
                d_out: rows(&s.d_o, n)?,
            };
            let gr = Gradients {
                d_q: rows_mut(&mut s.d_q, n)?,
                d_keys: rows_mut(&mut s.d_k, n)?,
                d_values: rows_mut(&mut s.d_v, n)?,
            };
            *d_log = attention_backward(kernel, q, k, v, mask, up, gr)?;
            // ∂L/∂W_P += xᵀ dP and ∂L/∂x += dP W_Pᵀ for P = Q, K, V.
            let per_proj = [(&s.d_q, w.q, g.q), (&s.d_k, w.k, g.k), (&s.d_v, w.v, g.v)];
            for (dp, w, g) in per_proj {
                linear_backward(x, dp, w, g, d_x, |d: &mut f32, v: f32| *d += v);
            }
        }
        let finite = simd::all_finite(d_x.as_flattened())
            && grads.as_slices().iter().all(|g| simd::all_finite(g));
        if !finite {
            return Err(Error::Overflow);
        }
        Ok(d_log)
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
    add_product_exact(x, w, &mut acc);
    narrow(&acc)
}

/// `acc += x W` in `f64` (each product of two `f32` exact), row by row of `W`: the exact sums
/// of [`project_exact`] and of the layer's cold output path.
#[inline]
fn add_product_exact<const R: usize, const C: usize>(
    x: &[f32; R],
    w: &[[f32; C]; R],
    acc: &mut [f64; C],
) {
    for (xi, row) in x.iter().zip(w) {
        for (a, wij) in acc.iter_mut().zip(row) {
            *a += f64::from(*xi) * f64::from(*wij);
        }
    }
}

/// Each token's projections `q_t = x_t W_Q`, `k_t = x_t W_K`, `v_t = x_t W_V` ([`project`]) into
/// the first `x.len()` rows of `q`, `k`, `v`.
#[inline]
fn project_qkv<const DM: usize, const DH: usize, O>(
    x: &[[f32; DM]],
    w: &Head<&[[f32; DH]; DM], O>,
    q: &mut [[f32; DH]],
    k: &mut [[f32; DH]],
    v: &mut [[f32; DH]],
) -> Result<(), Error> {
    let rows = q.iter_mut().zip(k.iter_mut()).zip(v.iter_mut());
    for (xt, ((qt, kt), vt)) in x.iter().zip(rows) {
        *qt = project(xt, w.q)?;
        *kt = project(xt, w.k)?;
        *vt = project(xt, w.v)?;
    }
    Ok(())
}

/// The backward pass of the row-vector products `p_t = a_t W` (`W` is `A×B`), given
/// `dp_t = ∂L/∂p_t`: adds `∂L/∂W = Σ_t a_tᵀ dp_t` to `g` (row `i` gains `a_t[i] dp_t`) and hands
/// each `∂L/∂a_t[i] = dp_t · W[i]` to `put` with its slot of `d_a`, which sets or adds it. The
/// one backward of a projection in the layer: `W_O^h` (`a` the head's outputs) and `W_Q^h`,
/// `W_K^h`, `W_V^h` (`a` the tokens). Rows beyond the shortest of `a`, `dp`, `d_a` are left.
#[inline]
fn linear_backward<const A: usize, const B: usize>(
    a: &[[f32; A]],
    dp: &[[f32; B]],
    w: &[[f32; B]; A],
    g: &mut [[f32; B]; A],
    d_a: &mut [[f32; A]],
    put: impl Fn(&mut f32, f32),
) {
    for ((at, dpt), dat) in a.iter().zip(dp).zip(d_a.iter_mut()) {
        let per_row = at.iter().zip(w).zip(g.iter_mut()).zip(dat.iter_mut());
        for (((ai, w_row), g_row), dai) in per_row {
            simd::weighted_sum_into(core::slice::from_ref(ai), dpt, B, g_row);
            put(dai, simd::dot(dpt, w_row));
        }
    }
}

/// The first `n` rows of `a` as [`Rows`]; [`Error::CapacityExceeded`] if `a` has fewer (the
/// callers have checked `n` against the scratch's capacity).
#[inline]
fn rows<const C: usize>(a: &[[f32; C]], n: usize) -> Result<Rows<'_>, Error> {
    let Some(a) = a.get(..n) else {
        return Err(Error::CapacityExceeded);
    };
    Rows::new(a.as_flattened(), C)
}

/// [`rows`], mutable.
#[inline]
fn rows_mut<const C: usize>(a: &mut [[f32; C]], n: usize) -> Result<RowsMut<'_>, Error> {
    let Some(a) = a.get_mut(..n) else {
        return Err(Error::CapacityExceeded);
    };
    RowsMut::new(a.as_flattened_mut(), C)
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
    use crate::testing::{assert_close, central_differences, rel_error};
    use crate::{Gaussian, SoftmaxDot};
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

    /// A layer's weights in `f64`, flat in the order of [`MhaWeights::as_slices`], with each
    /// head's kernel parameter `ln θ` last: what the central differences perturb.
    fn flat<const DM: usize, const H: usize, const DH: usize>(
        w: &MhaWeights<DM, H, DH>,
        ln_theta: &[f64],
    ) -> Vec<f64> {
        let mut p: Vec<f64> = w
            .as_slices()
            .iter()
            .flat_map(|s| s.iter().map(|&v| f64::from(v)))
            .collect();
        p.extend_from_slice(ln_theta);
        p
    }

    /// The layer's loss `Σ_t G_t · out_t` in plain `f64`, from its definition: per head
    /// `q = x W_Q`, `k = x W_K`, `v = x W_V`, scores `q·k/τ` or `−|q−k|²/(2h²)`, softmax over
    /// the keys each query sees, `out = Σ_h o^h W_O^h`. `p` is [`flat`]'s layout.
    #[allow(clippy::too_many_arguments)]
    fn ref_loss(
        gauss: bool,
        causal: bool,
        (dm, h, dh): (usize, usize, usize),
        p: &[f64],
        x: &[f64],
        g: &[f64],
    ) -> f64 {
        let n = x.len() / dm;
        let blk = dm * dh;
        let w = |m: usize, hh: usize, i: usize, j: usize| p[m * h * blk + hh * blk + i * dh + j];
        let wo = |hh: usize, j: usize, c: usize| p[3 * h * blk + hh * blk + j * dm + c];
        let mut total = 0.0;
        for hh in 0..h {
            let theta = p[4 * h * blk + hh].exp();
            let proj = |m: usize| -> Vec<Vec<f64>> {
                (0..n)
                    .map(|t| {
                        (0..dh)
                            .map(|j| (0..dm).map(|i| x[t * dm + i] * w(m, hh, i, j)).sum())
                            .collect()
                    })
                    .collect()
            };
            let (q, k, v) = (proj(0), proj(1), proj(2));
            for t in 0..n {
                let seen = if causal { t + 1 } else { n };
                let s: Vec<f64> = (0..seen)
                    .map(|i| {
                        if gauss {
                            -(0..dh).map(|j| (q[t][j] - k[i][j]).powi(2)).sum::<f64>()
                                / (2.0 * theta * theta)
                        } else {
                            (0..dh).map(|j| q[t][j] * k[i][j]).sum::<f64>() / theta
                        }
                    })
                    .collect();
                let mx = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = s.iter().map(|s| (s - mx).exp()).collect();
                let z: f64 = e.iter().sum();
                for j in 0..dh {
                    let o: f64 = (0..seen).map(|i| e[i] * v[i][j]).sum::<f64>() / z;
                    for c in 0..dm {
                        total += g[t * dm + c] * o * wo(hh, j, c);
                    }
                }
            }
        }
        total
    }

    /// `backward` on a random layer of `n` tokens against central differences of [`ref_loss`]
    /// for every weight, every token component and each head's `ln θ`; returns the worst
    /// relative error of (weights, inputs, kernel parameters).
    fn fd_case<const DM: usize, const H: usize, const DH: usize>(
        n: usize,
        gauss: bool,
        causal: bool,
        rng: &mut impl FnMut() -> f32,
    ) -> [f64; 3] {
        let mut draw = |a: f32| a * (2.0 * rng() - 1.0);
        let mut w = MhaWeights::<DM, H, DH>::zeros();
        for s in w.as_slices_mut() {
            for v in s.iter_mut() {
                *v = draw(0.8);
            }
        }
        let x: Vec<[f32; DM]> = (0..n)
            .map(|_| core::array::from_fn(|_| draw(1.0)))
            .collect();
        let g: Vec<[f32; DM]> = (0..n)
            .map(|_| core::array::from_fn(|_| draw(1.0)))
            .collect();
        let params: [f32; H] = core::array::from_fn(|h| 0.6 + 0.3 * h as f32);
        let mask = if causal { Mask::Causal } else { Mask::None };
        let mut grads = MhaWeights::<DM, H, DH>::zeros();
        let mut d_x = std::vec![[9.0f32; DM]; n];
        let mut scratch = Box::new(MhaGradScratch::<40, DH>::new());
        let d_log = if gauss {
            let k = params.map(|h| Gaussian::new(h).unwrap());
            let m = MultiHeadAttention::new(k, &w).unwrap();
            m.backward(&x, mask, &g, &mut scratch, &mut grads, &mut d_x)
                .unwrap()
        } else {
            let k = params.map(|t| SoftmaxDot::new(t).unwrap());
            let m = MultiHeadAttention::new(k, &w).unwrap();
            m.backward(&x, mask, &g, &mut scratch, &mut grads, &mut d_x)
                .unwrap()
        };
        let ln: Vec<f64> = params.iter().map(|&t| f64::from(t).ln()).collect();
        let p = flat(&w, &ln);
        let (xf, gf): (Vec<f64>, Vec<f64>) = (
            x.as_flattened().iter().map(|&v| f64::from(v)).collect(),
            g.as_flattened().iter().map(|&v| f64::from(v)).collect(),
        );
        let shape = (DM, H, DH);
        let eps = 1e-6;
        let fd_p = central_differences(&p, eps, |q| ref_loss(gauss, causal, shape, q, &xf, &gf));
        let fd_x = central_differences(&xf, eps, |y| ref_loss(gauss, causal, shape, &p, y, &gf));
        let nw = MhaWeights::<DM, H, DH>::LEN;
        let got_w = flat(&grads, &[]);
        let got_x: Vec<f64> = d_x.as_flattened().iter().map(|&v| f64::from(v)).collect();
        let got_l: Vec<f64> = d_log.iter().map(|&v| f64::from(v)).collect();
        [
            rel_error(&got_w, &fd_p[..nw]),
            rel_error(&got_x, &fd_x),
            rel_error(&got_l, &fd_p[nw..]),
        ]
    }

    /// Every gradient of `backward` (each weight, each token component, each head's `ln θ`)
    /// within `1e-4` of its largest component of central differences of the plain `f64` layer,
    /// on random shapes, both kernels, with and without the mask. (With `∂L/∂W_O` scaled by 1.01
    /// in `backward` the weights' error is about `1e-2`: the check fails.)
    #[test]
    fn backward_matches_central_differences() {
        let mut rng = crate::testing::lcg(131);
        let mut worst = [0.0f64; 3];
        for gauss in [false, true] {
            for causal in [false, true] {
                let cases = [
                    fd_case::<1, 1, 1>(1, gauss, causal, &mut rng),
                    fd_case::<3, 1, 2>(7, gauss, causal, &mut rng),
                    fd_case::<4, 2, 3>(9, gauss, causal, &mut rng),
                    fd_case::<5, 3, 1>(12, gauss, causal, &mut rng),
                    fd_case::<2, 2, 9>(17, gauss, causal, &mut rng),
                    fd_case::<8, 1, 8>(40, gauss, causal, &mut rng),
                ];
                for (c, e) in cases.iter().enumerate() {
                    for (t, e) in e.iter().enumerate() {
                        worst[t] = worst[t].max(*e);
                        assert!(
                            *e <= 1e-4,
                            "case {c} gauss={gauss} causal={causal}: {} relative error {e:e}",
                            ["weights", "inputs", "ln theta"][t]
                        );
                    }
                }
            }
        }
        std::println!("worst relative error (weights, inputs, ln theta): {worst:?}");
    }

    /// The gradients add to `grads` (a batch sums over calls), `d_x` is overwritten, and bad
    /// inputs are the documented errors.
    #[test]
    fn backward_accumulates_and_rejects_bad_input() {
        let k = SoftmaxDot::for_dim(2).unwrap();
        let w = MhaWeights::<2, 1, 2> {
            w_q: [[[0.3, -0.2], [0.1, 0.5]]],
            w_k: [[[0.7, 0.1], [-0.4, 0.2]]],
            w_v: [[[1.0, 0.0], [0.5, -1.0]]],
            w_o: [[[0.2, 0.9], [-0.3, 0.4]]],
        };
        let m = MultiHeadAttention::new([k], &w).unwrap();
        let x = [[1.0, 2.0], [-0.5, 0.25], [0.75, -1.0]];
        let g = [[1.0, 0.0], [0.5, -0.5], [0.0, 2.0]];
        let mut s = MhaGradScratch::<4, 2>::new();
        let (mut once, mut twice) = (MhaWeights::zeros(), MhaWeights::zeros());
        let (mut dx1, mut dx2) = ([[7.0; 2]; 3], [[7.0; 2]; 3]);
        m.backward(&x, Mask::Causal, &g, &mut s, &mut once, &mut dx1)
            .unwrap();
        m.backward(&x, Mask::Causal, &g, &mut s, &mut twice, &mut dx2)
            .unwrap();
        m.backward(&x, Mask::Causal, &g, &mut s, &mut twice, &mut dx2)
            .unwrap();
        assert_eq!(dx1, dx2);
        for (a, b) in once.as_slices().iter().zip(twice.as_slices()) {
            for (a, b) in a.iter().zip(b) {
                assert_close(
                    f64::from(*b),
                    2.0 * f64::from(*a),
                    1e-6 * f64::from(b.abs()),
                    "sum",
                );
                assert!(*a != 0.0);
            }
        }
        let mut gr = MhaWeights::zeros();
        let mut dx = [[0.0; 2]; 3];
        assert_eq!(
            m.backward(&x[..0], Mask::None, &g[..0], &mut s, &mut gr, &mut dx),
            Err(Error::Empty)
        );
        let x5 = [[0.0; 2]; 5];
        assert_eq!(
            m.backward(&x5, Mask::None, &x5, &mut s, &mut gr, &mut [[0.0; 2]; 5]),
            Err(Error::CapacityExceeded)
        );
        assert_eq!(
            m.backward(&x, Mask::None, &g[..2], &mut s, &mut gr, &mut dx),
            Err(Error::Shape {
                what: Dim::GradientRows,
                expected: 3,
                found: 2
            })
        );
        assert_eq!(
            m.backward(&x, Mask::None, &g, &mut s, &mut gr, &mut dx[..2]),
            Err(Error::OutputTooSmall)
        );
        let bad = [[1.0, f32::NAN], [0.0; 2], [0.0; 2]];
        assert_eq!(
            m.backward(&bad, Mask::None, &g, &mut s, &mut gr, &mut dx),
            Err(Error::NonFinite)
        );
        assert_eq!(
            m.backward(&x, Mask::None, &bad, &mut s, &mut gr, &mut dx),
            Err(Error::NonFinite)
        );
        gr.w_o[0][1][1] = f32::INFINITY;
        assert_eq!(
            m.backward(&x, Mask::None, &g, &mut s, &mut gr, &mut dx),
            Err(Error::NonFinite)
        );
        assert_eq!(dx, [[0.0; 2]; 3], "nothing written before the checks");
    }
}

//! The task of the `train_head` example, shared with the firmware's on-target training test
//! (`firmware-example/src/bin/target-tests.rs` includes this file): `no_std`, no heap, every
//! buffer a fixed array.
//!
//! **Find the marked token.** A sequence has [`L`] tokens `x_t = [v_t, m_t, 1]`: a value `v_t`
//! uniform in `[-1, 1]`, a marker `m_t` that is 1 on exactly one token and 0 on the others, and
//! a constant. Every output `out_t[0]` must be the marked token's value. One head of width
//! [`DH`] with softmax-dot attention can do it only by learning to look there: a query and key
//! projection that make `q_t · k_i` large for the marked `i` (through the constant and the
//! marker), and a value and output projection that carry `v_i` to coordinate 0. From random
//! weights the attention is spread over the tokens (weight on the marked one about `1/L`,
//! entropy near `ln L`); the loss falls only as it focuses.

use nadaraya::optim::Adam;
use nadaraya::{
    Error, Mask, MhaGradScratch, MhaScratch, MhaWeights, MultiHeadAttention, Rows, RowsMut,
    SoftmaxDot, weights,
};

/// Tokens per sequence.
pub const L: usize = 8;
/// Token width: value, marker, constant.
pub const DM: usize = 3;
/// Head width.
pub const DH: usize = 2;
/// Sequences per step (their gradients summed).
pub const BATCH: usize = 4;
/// Sequences of the fixed evaluation set.
pub const EVAL: usize = 16;
/// Adam's learning rate.
pub const LR: f32 = 0.05;

/// One head's weights.
pub type Weights = MhaWeights<DM, 1, DH>;

/// A small deterministic generator (a 64-bit LCG) of floats in `[0, 1)`.
pub struct Rng(u64);

impl Rng {
    /// The generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1))
    }

    /// The next float in `[0, 1)`.
    pub fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 40) as f32) / 16_777_216.0
    }
}

/// A sequence and the index of its marked token.
pub fn sequence(rng: &mut Rng) -> ([[f32; DM]; L], usize) {
    let mut x = [[0.0f32, 0.0, 1.0]; L];
    for t in x.iter_mut() {
        t[0] = 2.0 * rng.next() - 1.0;
    }
    let marked = ((rng.next() * L as f32) as usize).min(L - 1);
    x[marked][1] = 1.0;
    (x, marked)
}

/// Weights uniform in `[-0.5, 0.5]`.
pub fn init(seed: u64) -> Weights {
    let mut rng = Rng::new(seed);
    let mut w = Weights::zeros();
    for s in w.as_slices_mut() {
        for v in s.iter_mut() {
            *v = rng.next() - 0.5;
        }
    }
    w
}

/// What the evaluation measures, averaged over the fixed set.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    /// Mean squared error of `out_t[0]` against the marked value.
    pub loss: f32,
    /// The attention weight on the marked token, averaged over every query.
    pub on_marked: f32,
    /// The entropy of each query's attention weights (nats), averaged: `ln L` when uniform.
    pub entropy: f32,
}

/// The layer, its gradients, Adam and their working memory: everything training needs, in
/// fixed arrays (`2·4·DM·DH` floats of state).
pub struct Trainer {
    /// The weights being learned.
    pub w: Weights,
    grads: Weights,
    adam: Adam,
    state: [f32; 2 * Weights::LEN],
    fwd: MhaScratch<L, DM, DH>,
    bwd: MhaGradScratch<L, DH>,
    rng: Rng,
}

/// The task's kernel: softmax-dot with `τ = √DH`.
pub fn kernel() -> Result<SoftmaxDot, Error> {
    SoftmaxDot::for_dim(DH)
}

impl Trainer {
    /// A trainer from random weights (`init(seed)`), drawing its sequences from `seed + 1`.
    pub fn new(seed: u64) -> Result<Self, Error> {
        Ok(Self {
            w: init(seed),
            grads: Weights::zeros(),
            adam: Adam::new(LR)?,
            state: [0.0; 2 * Weights::LEN],
            fwd: MhaScratch::new(),
            bwd: MhaGradScratch::new(),
            rng: Rng::new(seed.wrapping_add(1)),
        })
    }

    /// One Adam step on a fresh batch of [`BATCH`] sequences; returns the batch's loss before
    /// the step.
    pub fn step(&mut self) -> Result<f32, Error> {
        self.grads = Weights::zeros();
        let mha = MultiHeadAttention::new([kernel()?], &self.w)?;
        let mut total = 0.0f32;
        let scale = 1.0 / (BATCH * L) as f32;
        for _ in 0..BATCH {
            let (x, marked) = sequence(&mut self.rng);
            let target = x[marked][0];
            let mut out = [[0.0f32; DM]; L];
            mha.forward(&x, Mask::None, &mut self.fwd, &mut out)?;
            let mut d_out = [[0.0f32; DM]; L];
            for (o, g) in out.iter().zip(d_out.iter_mut()) {
                let e = o[0] - target;
                total += e * e * scale;
                g[0] = 2.0 * e * scale;
            }
            let mut d_x = [[0.0f32; DM]; L];
            mha.backward(
                &x,
                Mask::None,
                &d_out,
                &mut self.bwd,
                &mut self.grads,
                &mut d_x,
            )?;
        }
        let mut params = self.w.as_slices_mut();
        self.adam
            .step(&mut params, &self.grads.as_slices(), &mut self.state)?;
        Ok(total)
    }

    /// [`Stats`] of the current weights on the fixed set of [`EVAL`] sequences (seed 999).
    pub fn eval(&mut self) -> Result<Stats, Error> {
        let k = kernel()?;
        let mha = MultiHeadAttention::new([k], &self.w)?;
        let mut rng = Rng::new(999);
        let mut s = Stats::default();
        let per = 1.0 / (EVAL * L) as f32;
        for _ in 0..EVAL {
            let (x, marked) = sequence(&mut rng);
            let mut out = [[0.0f32; DM]; L];
            mha.forward(&x, Mask::None, &mut self.fwd, &mut out)?;
            // The head's weights: q = x W_Q, k = x W_K, then softmax of the scores.
            let proj = |w: &[[f32; DH]; DM]| -> [[f32; DH]; L] {
                core::array::from_fn(|t| {
                    core::array::from_fn(|j| (0..DM).map(|i| x[t][i] * w[i][j]).sum())
                })
            };
            let (q, keys) = (proj(&self.w.w_q[0]), proj(&self.w.w_k[0]));
            let mut a = [[0.0f32; L]; L];
            weights(
                &k,
                Rows::from_arrays(&q),
                Rows::from_arrays(&keys),
                RowsMut::from_arrays(&mut a),
            )?;
            for (o, row) in out.iter().zip(&a) {
                let e = o[0] - x[marked][0];
                s.loss += e * e * per;
                s.on_marked += row[marked] * per;
                let h: f32 = row
                    .iter()
                    .filter(|p| **p > 0.0)
                    .map(|p| -p * libm::logf(*p))
                    .sum();
                s.entropy += h * per;
            }
        }
        Ok(s)
    }
}

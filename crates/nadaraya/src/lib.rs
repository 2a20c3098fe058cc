#![no_std]
#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(test)]
extern crate std;

mod attention;
mod backward;
#[cfg(target_arch = "x86_64")]
mod blocked;
mod compact;
pub mod dispatch;
mod element;
mod error;
pub mod fit;
pub mod fixed;
#[cfg(any(feature = "ndarray", feature = "nalgebra"))]
mod interop;
mod kernel;
#[cfg(target_arch = "x86_64")]
mod lanes;
pub mod math;
mod multihead;
pub mod optim;
mod rows;
pub mod scalar;
#[cfg(feature = "serde")]
mod serde_impls;
mod simd;
mod smoother;
mod softmax;
#[cfg(test)]
mod testing;
// The only module with `unsafe` (the workspace denies it everywhere else): CPUID, XGETBV and the
// vector intrinsics of the run-time dispatch levels, each block with its SAFETY comment.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86;

pub use attention::{
    attention, attention_batch, attention_shape, causal_attention_from, weights, weights_shape,
};
pub use backward::{Gradients, KernelGrad, ScoreGrad, Upstream, attention_backward, attention_lse};
pub use compact::{Epanechnikov, Tricube, Uniform};
pub use element::{Element, HALF_KEY_WIDTH};
pub use error::{Dim, Error};
/// The `half` crate, re-exported: its `f16` and `bf16` are the half-precision [`Element`]s.
#[cfg(feature = "half")]
pub use half;
pub use kernel::{Gaussian, Kernel, SoftmaxDot};
pub use multihead::{MhaGradScratch, MhaScratch, MhaWeights, MultiHeadAttention};
pub use rows::{Mask, Rows, RowsMut};
pub use smoother::{Rejected, Sample, SampleIter, Smoother};
pub use softmax::{OnlineSoftmax, merge_averages};

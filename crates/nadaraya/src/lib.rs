#![no_std]
#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(test)]
extern crate std;

mod attention;
mod backward;
mod compact;
mod error;
pub mod fit;
pub mod fixed;
#[cfg(any(feature = "ndarray", feature = "nalgebra"))]
mod interop;
mod kernel;
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

pub use attention::{attention, attention_batch, attention_shape, weights, weights_shape};
pub use backward::{Gradients, KernelGrad, ScoreGrad, Upstream, attention_backward, attention_lse};
pub use compact::{Epanechnikov, Tricube, Uniform};
pub use error::{Dim, Error};
pub use kernel::{Gaussian, Kernel, SoftmaxDot};
pub use multihead::{MhaGradScratch, MhaScratch, MhaWeights, MultiHeadAttention};
pub use rows::{Mask, Rows, RowsMut};
pub use smoother::{Rejected, Sample, SampleIter, Smoother};
//XRejected, Sample, Smoother};
pub use softmax::OnlineSoftmax;

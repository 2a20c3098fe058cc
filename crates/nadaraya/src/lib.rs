#![no_std]
#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(test)]
extern crate std;

mod attention;
mod compact;
mod error;
pub mod fit;
mod kernel;
pub mod math;
mod multihead;
mod rows;
pub mod scalar;
mod simd;
mod smoother;
mod softmax;
#[cfg(test)]
mod testing;

pub use attention::{attention, attention_batch, attention_shape, weights, weights_shape};
pub use compact::{Epanechnikov, Tricube, Uniform};
pub use error::{Dim, Error};
pub use kernel::{Gaussian, Kernel, SoftmaxDot};
pub use multihead::{MhaScratch, MhaWeights, MultiHeadAttention};
pub use rows::{Mask, Rows, RowsMut};
pub use smoother::{Rejected, Sample, Smoother};
pub use softmax::OnlineSoftmax;

#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod attention;
mod batch;
mod error;
mod favor;
mod fourier;
mod gaussian;
mod projection;

pub use attention::{CausalState, attention, causal_attention, weights};
pub use batch::{Mask, batch_attention, batch_attention_serial};
pub use error::Error;
pub use favor::{FavorPlus, Oprf, Variant};
pub use fourier::{FOURIER_MASS_FLOOR, FourierFeatures, MassGuard, smooth_fourier};
pub use gaussian::{GaussianFeatures, smooth};
pub use projection::{Projection, RowNorm, Sampling};

#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod attention;
mod batch;
mod error;
mod favor;
mod feature_map;
mod fourier;
mod gaussian;
pub mod par;
mod projection;

/// The core crate, re-exported: its kernels, its exact attention and everything this crate's
/// API uses from it.
pub use nadaraya;
/// The core's types in this crate's signatures (the same items: no clash with
/// `use nadaraya::*`).
pub use nadaraya::{Dim, Mask, Rows, RowsMut};

pub use attention::CausalState;
pub use error::Error;
pub use favor::{FavorPlus, Oprf, Variant};
pub use feature_map::FeatureMap;
pub use fourier::{FOURIER_MASS_FLOOR, FourierFeatures, MassGuard};
pub use gaussian::GaussianFeatures;
pub use projection::{Projection, RowNorm, Sampling};

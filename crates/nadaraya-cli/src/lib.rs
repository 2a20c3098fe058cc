//! The library behind the `nadaraya` command: fitting bandwidths to a CSV file's data
//! ([`fit`]), predicting from the fit with standard errors and bootstrap bands ([`predict`],
//! [`bootstrap`]), and the benchmark data sets ([`generate`]).
//!
//! `nadaraya plot` lives in the `nadaraya-plot` crate; its CSV rules are shared
//! ([`nadaraya_plot::Table`]).

pub mod bootstrap;
mod error;
pub mod fit;
pub mod generate;
pub mod predict;

pub use error::Error;

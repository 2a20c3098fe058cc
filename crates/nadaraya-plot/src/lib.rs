//! Figures of the seed's "What to Try" scenarios, computed by the `nadaraya` crate and drawn
//! with `plotters`: the data with the prediction curve `ŷ(x)`, and under it the normalised
//! weights `α_i` at the query `x_q` as bars; and `nadaraya-rf`'s linear-time random-feature
//! estimates against exact smoothing as the number of features `m` grows.
//!
//! Each figure is written as PNG, SVG and the CSV of exactly the plotted values. The binary
//! `nadaraya-plot` draws them all:
//!
//! ```sh
//! cargo run --release -p nadaraya-cli -- plot --out docs/figures
//! ```
//!
//! Every [`Series`] carries the computation that produced it ([`Source`]), so the crate's tests
//! recompute each value with the plain `f64` reference and compare the committed CSVs with what
//! the library computes now: a figure cannot drift from the code.
//!
//! # Examples
//! ```
//! use nadaraya_plot::{scenarios, Params, Source};
//! let fig = scenarios::figure("default", &Params::default())?;
//! let weights = &fig.panels[1].series[0];
//! assert!(matches!(weights.source, Source::Weights { .. }));
//! let total: f32 = weights.points.iter().map(|&(_, a)| a).sum();
//! assert!((total - 1.0).abs() < 1e-5);
//! # Ok::<(), nadaraya_plot::Error>(())
//! ```

pub mod cli;
pub mod csv;
mod data;
pub mod draw;
mod error;
mod figure;
pub mod learned;
pub mod scenarios;

pub use data::{BUILTIN, CSV_RULES, Column, Columns, Dataset, TABLE_RULES, Table};
pub use error::Error;
pub use figure::{Figure, KernelSpec, Mark, Panel, SAMPLING, Series, Source, median, rms_diff};
pub use scenarios::Params;

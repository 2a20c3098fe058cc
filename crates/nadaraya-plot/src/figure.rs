//! What a figure holds: panels of series, each series with the computation that produced it.
//!
//! Every plotted number comes from the `nadaraya` crate; a [`Series`] keeps its [`Source`] (the
//! kernel, queries, keys and values) so that a test can recompute it independently.

use nadaraya::{Gaussian, SoftmaxDot};

use crate::Error;

/// A kernel and its parameter, as plotted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KernelSpec {
    /// [`nadaraya::Gaussian`] with bandwidth `h`.
    Gaussian {
        /// The bandwidth.
        h: f32,
    },
    /// [`nadaraya::SoftmaxDot`] with temperature `τ`.
    SoftmaxDot {
        /// The temperature.
        tau: f32,
    },
}

impl KernelSpec {
    /// A short label such as `Gaussian h=0.5` or `softmax-dot τ=1`.
    #[must_use]
    pub fn label(&self) -> String {
        match *self {
            Self::Gaussian { h } => format!("Gaussian h={h}"),
            Self::SoftmaxDot { tau } => format!("softmax-dot τ={tau}"),
        }
    }

    /// `out[j] = Σ_i α_i(q_j) values_i` for every query row (`d` wide) with the core's
    /// [`nadaraya::attention`].
    ///
    /// # Errors
    /// [`Error::Core`] as [`nadaraya::attention`], or for an invalid `h` or `τ`.
    pub fn smooth(
        &self,
        queries: &[f32],
        keys: &[f32],
        values: &[f32],
        d: usize,
    ) -> Result<Vec<f32>, Error> {
        let mut out = vec![0.0; queries.len() / d.max(1)];
        match *self {
            Self::Gaussian { h } => {
                nadaraya::attention(&Gaussian::new(h)?, queries, keys, values, d, 1, &mut out)?;
            }
            Self::SoftmaxDot { tau } => {
                let k = SoftmaxDot::new(tau)?;
                nadaraya::attention(&k, queries, keys, values, d, 1, &mut out)?;
            }
        }
        Ok(out)
    }

    /// The normalised weights `α_i` of one query against `keys` with the core's
    /// [`nadaraya::weights`].
    ///
    /// # Errors
    /// [`Error::Core`] as [`nadaraya::weights`], or for an invalid `h` or `τ`.
    pub fn weights(&self, query: &[f32], keys: &[f32]) -> Result<Vec<f32>, Error> {
        let mut out = vec![0.0; keys.len() / query.len().max(1)];
        match *self {
            Self::Gaussian { h } => nadaraya::weights(&Gaussian::new(h)?, query, keys, &mut out)?,
            Self::SoftmaxDot { tau } => {
                nadaraya::weights(&SoftmaxDot::new(tau)?, query, keys, &mut out)?;
            }
        }
        Ok(out)
    }
}

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Filled dots (the data).
    Points,
    /// A solid line.
    Line,
    /// A dashed line (drawn over a solid one it shows that the two coincide).
    Dashed,
    /// Vertical bars from zero (weights); bars of several series at one `x` stand side by side.
    Bars,
}

/// Where a series' values come from, with everything needed to recompute them.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// The data set itself: points `(x_i, y_i)`.
    Data,
    /// Predictions `ŷ(q_j) = Σ α_i(q_j) y_i`: point `j` is `(plotted x_j, ŷ(q_j))`.
    Prediction {
        /// The kernel.
        kernel: KernelSpec,
        /// Query rows, `M×d` row-major.
        queries: Vec<f32>,
        /// Key rows (sample locations), `N×d` row-major.
        keys: Vec<f32>,
        /// The responses, `N` of them.
        values: Vec<f32>,
        /// The dimension of queries and keys.
        d: usize,
    },
    /// Normalised weights at one query: point `i` is `(x_i, α_i)`.
    Weights {
        /// The kernel.
        kernel: KernelSpec,
        /// The query, `d` values.
        query: Vec<f32>,
        /// Key rows, `N×d` row-major.
        keys: Vec<f32>,
    },
}

/// One plotted series.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The legend text (also its name in the CSV).
    pub label: String,
    /// How it is drawn.
    pub mark: Mark,
    /// Index into the figure palette.
    pub color: usize,
    /// The plotted points `(x, value)`.
    pub points: Vec<(f32, f32)>,
    /// How the values were computed.
    pub source: Source,
}

impl Series {
    /// The data points `(x_i, y_i)`.
    #[must_use]
    pub fn data(label: &str, x: &[f32], y: &[f32]) -> Self {
        Self {
            label: label.to_owned(),
            mark: Mark::Points,
            color: 0,
            points: x.iter().copied().zip(y.iter().copied()).collect(),
            source: Source::Data,
        }
    }

    /// Predictions of `kernel` at every query row (`d` wide), plotted at `plot_x`.
    ///
    /// # Errors
    /// [`Error::Core`] from the smoothing; [`Error::Data`] if `plot_x` does not have one entry
    /// per query row.
    pub fn prediction(
        label: String,
        mark: Mark,
        color: usize,
        kernel: KernelSpec,
        plot_x: &[f32],
        queries: Vec<f32>,
        (keys, values, d): (Vec<f32>, Vec<f32>, usize),
    ) -> Result<Self, Error> {
        let y = kernel.smooth(&queries, &keys, &values, d)?;
        if y.len() != plot_x.len() {
            return Err(Error::Data(format!(
                "{} queries but {} plot positions",
                y.len(),
                plot_x.len()
            )));
        }
        Ok(Self {
            label,
            mark,
            color,
            points: plot_x.iter().copied().zip(y).collect(),
            source: Source::Prediction {
                kernel,
                queries,
                keys,
                values,
                d,
            },
        })
    }

    /// Weights of `kernel` at `query` over the key rows, drawn as bars at `plot_x` (one per key).
    ///
    /// # Errors
    /// [`Error::Core`] from the weights; [`Error::Data`] if `plot_x` does not have one entry per
    /// key.
    pub fn weights(
        label: String,
        color: usize,
        kernel: KernelSpec,
        plot_x: &[f32],
        query: Vec<f32>,
        keys: Vec<f32>,
    ) -> Result<Self, Error> {
        let a = kernel.weights(&query, &keys)?;
        if a.len() != plot_x.len() {
            return Err(Error::Data(format!(
                "{} weights but {} plot positions",
                a.len(),
                plot_x.len()
            )));
        }
        Ok(Self {
            label,
            mark: Mark::Bars,
            color,
            points: plot_x.iter().copied().zip(a).collect(),
            source: Source::Weights {
                kernel,
                query,
                keys,
            },
        })
    }
}

/// One chart of a figure: axes, series and the marked query positions.
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    /// Short identifier (its name in the CSV), such as `prediction` or `weights`.
    pub id: String,
    /// The x-axis label.
    pub x_label: String,
    /// The y-axis label.
    pub y_label: String,
    /// The x range shown.
    pub x_range: (f32, f32),
    /// The y range shown; computed from the series (with a margin) when `None`.
    pub y_range: Option<(f32, f32)>,
    /// Query positions, drawn as vertical dashed lines labelled `x_q`.
    pub queries: Vec<f32>,
    /// An x interval to shade (for example `x > 0`), with its label.
    pub shade: Option<((f32, f32), String)>,
    /// The series, drawn in order.
    pub series: Vec<Series>,
}

/// A figure: a title over one or more panels stacked vertically, saved under `name`.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// File stem: `name.png`, `name.svg`, `name.csv`.
    pub name: String,
    /// The title drawn above the panels.
    pub title: String,
    /// The panels, top to bottom.
    pub panels: Vec<Panel>,
}

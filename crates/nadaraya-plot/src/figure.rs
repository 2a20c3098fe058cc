//! What a figure holds: panels of series, each series with the computation that produced it.
//!
//! Every plotted number comes from the `nadaraya` crate; a [`Series`] keeps its [`Source`] (the
//! kernel, queries, keys and values) so that a test can recompute it independently.

use nadaraya::{Gaussian, Mask, Rows, RowsMut, SoftmaxDot};
use nadaraya_rf::{FavorPlus, FourierFeatures, MassGuard, Projection, RowNorm, Sampling, Variant};

use crate::Error;

/// A number as figure text shows it: Rust's shortest round-trip form, in scientific notation
/// (`1e18`, `2.5e-7`) outside `1e-4 ≤ |v| < 1e6`, so that a label stays short at any magnitude.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Short(pub(crate) f32);

impl std::fmt::Display for Short {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let a = self.0.abs();
        if a == 0.0 || (1e-4..1e6).contains(&a) {
            write!(f, "{}", self.0)
        } else {
            write!(f, "{:e}", self.0)
        }
    }
}

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
            Self::Gaussian { h } => format!("Gaussian h={}", Short(h)),
            Self::SoftmaxDot { tau } => format!("softmax-dot τ={}", Short(tau)),
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
        let (q, k, v) = (
            Rows::new(queries, d)?,
            Rows::new(keys, d)?,
            Rows::new(values, 1)?,
        );
        let o = RowsMut::new(&mut out, 1)?;
        match *self {
            Self::Gaussian { h } => {
                nadaraya::attention(&Gaussian::new(h)?, q, k, v, Mask::None, o)?
            }
            Self::SoftmaxDot { tau } => {
                nadaraya::attention(&SoftmaxDot::new(tau)?, q, k, v, Mask::None, o)?;
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
        let (q, k) = (
            Rows::new(query, query.len())?,
            Rows::new(keys, query.len())?,
        );
        let o = RowsMut::new(&mut out, k.len().max(1))?;
        match *self {
            Self::Gaussian { h } => nadaraya::weights(&Gaussian::new(h)?, q, k, o)?,
            Self::SoftmaxDot { tau } => nadaraya::weights(&SoftmaxDot::new(tau)?, q, k, o)?,
        }
        Ok(out)
    }
}

/// How the random projections of [`KernelSpec::random_features`] are drawn: blocks of
/// orthogonal rows with chi-distributed norms (the `nadaraya-rf` default).
pub const SAMPLING: Sampling = Sampling::Orthogonal(RowNorm::Chi);

impl KernelSpec {
    /// The `m` projection rows of dimension `d` drawn from `seed` (draw 0) with [`SAMPLING`]:
    /// the rows [`random_features`](Self::random_features) uses.
    ///
    /// # Errors
    /// [`Error::RandomFeatures`] for `d == 0` or `m == 0`.
    pub fn projection(d: usize, m: usize, seed: u64) -> Result<Projection, Error> {
        Ok(Projection::new(d, m, SAMPLING, seed)?)
    }

    /// The linear-time random-feature estimate of [`smooth`](Self::smooth) with `m` features
    /// drawn from `seed`: random Fourier features ([`FourierFeatures::smooth`], guard
    /// [`MassGuard::Floor`]) for the Gaussian kernel, positive FAVOR+ features
    /// ([`FavorPlus::attention`]) for softmax-dot.
    ///
    /// # Errors
    /// [`Error::RandomFeatures`] as those functions, for `m == 0`, or for an invalid `h` or `τ`.
    pub fn random_features(
        &self,
        m: usize,
        seed: u64,
        queries: &[f32],
        keys: &[f32],
        values: &[f32],
        d: usize,
    ) -> Result<Vec<f32>, Error> {
        let p = Self::projection(d, m, seed)?;
        let mut out = vec![0.0; queries.len() / d.max(1)];
        match *self {
            Self::Gaussian { h } => {
                let f = FourierFeatures::new(p, h)?.with_guard(MassGuard::Floor);
                let (q, k, v) = (
                    Rows::new(queries, d)?,
                    Rows::new(keys, d)?,
                    Rows::new(values, 1)?,
                );
                f.smooth(q, k, v, RowsMut::new(&mut out, 1)?)?;
            }
            Self::SoftmaxDot { tau } => {
                let f = FavorPlus::new(p, tau, Variant::Positive)?;
                let (q, k, v) = (
                    Rows::new(queries, d)?,
                    Rows::new(keys, d)?,
                    Rows::new(values, 1)?,
                );
                f.attention(q, k, v, Mask::None, RowsMut::new(&mut out, 1)?)?;
            }
        }
        Ok(out)
    }

    /// The name of the random-feature map used for this kernel: `random Fourier` or `FAVOR+`.
    #[must_use]
    pub fn feature_map(&self) -> &'static str {
        match self {
            Self::Gaussian { .. } => "random Fourier",
            Self::SoftmaxDot { .. } => "FAVOR+",
        }
    }
}

/// The root-mean-square of `a − b` (in `f64`, returned as `f32`).
#[must_use]
pub fn rms_diff(a: &[f32], b: &[f32]) -> f32 {
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum();
    (sum / a.len().max(1) as f64).sqrt() as f32
}

/// The median of `v` (the mean of the two middle values for an even count; NaN if empty).
#[must_use]
pub fn median(mut v: Vec<f32>) -> f32 {
    v.sort_by(f32::total_cmp);
    let n = v.len();
    match n {
        0 => f32::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => 0.5 * (v[n / 2 - 1] + v[n / 2]),
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
    /// A solid line with a dot at every point (a measured sweep).
    LinePoints,
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
    /// Random-feature predictions ([`KernelSpec::random_features`]) with `m` features drawn
    /// from `seed`: point `j` is `(plotted x_j, ŷ_rf(q_j))`.
    RandomFeatures {
        /// The kernel being approximated.
        kernel: KernelSpec,
        /// The number of random features (projection rows).
        m: usize,
        /// The projection seed.
        seed: u64,
        /// Query rows, `M×d` row-major.
        queries: Vec<f32>,
        /// Key rows, `N×d` row-major.
        keys: Vec<f32>,
        /// The responses, `N` of them.
        values: Vec<f32>,
        /// The dimension of queries and keys.
        d: usize,
    },
    /// The error of random features against exact smoothing as `m` grows: point `j` is
    /// `(m_j, median over seeds 0..seeds of the RMS over the queries of ŷ_rf − ŷ)`, with `ŷ_rf`
    /// from [`KernelSpec::random_features`] and `ŷ` from [`KernelSpec::smooth`].
    ///
    /// The median, not the mean: a random-Fourier denominator is a signed sum that a few seeds
    /// bring near zero at small `m`, and their errors (up to `10⁵` on the default data at
    /// `m = 2`) would swamp the typical one.
    FeatureError {
        /// The kernel being approximated.
        kernel: KernelSpec,
        /// How many seeds (`0..seeds`) each point is the median of.
        seeds: u64,
        /// Query rows, `M×d` row-major.
        queries: Vec<f32>,
        /// Key rows, `N×d` row-major.
        keys: Vec<f32>,
        /// The responses, `N` of them.
        values: Vec<f32>,
        /// The dimension of queries and keys.
        d: usize,
    },
    /// The leave-one-out cross-validation score of Gaussian Nadaraya–Watson smoothing against
    /// the bandwidth: point `j` is `(h_j, nadaraya::fit::loo_cv(Gaussian h_j))`, the mean over
    /// samples of `(y_i − ŷ_{−i}(x_i))²`.
    Cv {
        /// Key rows (sample locations), `N×d` row-major.
        keys: Vec<f32>,
        /// The responses, `N` of them.
        values: Vec<f32>,
        /// The dimension of the keys.
        d: usize,
    },
    /// A guide line `c/√x`: point `j` is `(x_j, c/√x_j)`.
    InverseSqrt {
        /// The constant.
        c: f32,
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
        Ok(Self {
            label,
            mark,
            color,
            points: zip_exact(plot_x, y)?,
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
        Ok(Self {
            label,
            mark: Mark::Bars,
            color,
            points: zip_exact(plot_x, a)?,
            source: Source::Weights {
                kernel,
                query,
                keys,
            },
        })
    }

    /// Random-feature predictions of `kernel` with `m` features drawn from `seed` at every query
    /// row (`d` wide), plotted at `plot_x`.
    ///
    /// # Errors
    /// As [`KernelSpec::random_features`]; [`Error::Data`] if `plot_x` does not have one entry
    /// per query row.
    #[allow(clippy::too_many_arguments)]
    pub fn random_features(
        label: String,
        mark: Mark,
        color: usize,
        (kernel, m, seed): (KernelSpec, usize, u64),
        plot_x: &[f32],
        queries: Vec<f32>,
        (keys, values, d): (Vec<f32>, Vec<f32>, usize),
    ) -> Result<Self, Error> {
        let y = kernel.random_features(m, seed, &queries, &keys, &values, d)?;
        Ok(Self {
            label,
            mark,
            color,
            points: zip_exact(plot_x, y)?,
            source: Source::RandomFeatures {
                kernel,
                m,
                seed,
                queries,
                keys,
                values,
                d,
            },
        })
    }

    /// The median over the seeds `0..seeds` of the RMS error of `kernel`'s random-feature
    /// estimate against exact smoothing at the query rows, for every `m` in `features`.
    ///
    /// # Errors
    /// As [`KernelSpec::random_features`] and [`KernelSpec::smooth`]; [`Error::Option`] if
    /// `seeds == 0`.
    pub fn feature_error(
        label: String,
        color: usize,
        (kernel, seeds): (KernelSpec, u64),
        features: &[usize],
        queries: Vec<f32>,
        (keys, values, d): (Vec<f32>, Vec<f32>, usize),
    ) -> Result<Self, Error> {
        if seeds == 0 {
            return Err(Error::Option("the error needs at least one seed".into()));
        }
        let exact = kernel.smooth(&queries, &keys, &values, d)?;
        let mut points = Vec::with_capacity(features.len());
        for &m in features {
            let errors = (0..seeds)
                .map(|seed| {
                    let rf = kernel.random_features(m, seed, &queries, &keys, &values, d)?;
                    Ok(rms_diff(&rf, &exact))
                })
                .collect::<Result<Vec<f32>, Error>>()?;
            points.push((m as f32, median(errors)));
        }
        Ok(Self {
            label,
            mark: Mark::LinePoints,
            color,
            points,
            source: Source::FeatureError {
                kernel,
                seeds,
                queries,
                keys,
                values,
                d,
            },
        })
    }

    /// The leave-one-out CV score ([`nadaraya::fit::loo_cv`]) of Gaussian smoothing of the
    /// samples at every bandwidth of `hs`.
    ///
    /// # Errors
    /// [`Error::Core`] from the objective or for an invalid bandwidth.
    pub fn cv(
        label: String,
        mark: Mark,
        color: usize,
        hs: &[f32],
        (keys, values, d): (Vec<f32>, Vec<f32>, usize),
    ) -> Result<Self, Error> {
        let (x, y) = (Rows::new(&keys, d)?, Rows::new(&values, 1)?);
        let points = hs
            .iter()
            .map(|&h| Ok((h, nadaraya::fit::loo_cv(&Gaussian::new(h)?, x, y)? as f32)))
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Self {
            label,
            mark,
            color,
            points,
            source: Source::Cv { keys, values, d },
        })
    }

    /// The guide line `c/√x` at every `x` of `xs`, drawn dashed.
    #[must_use]
    pub fn inverse_sqrt(label: String, color: usize, xs: &[f32], c: f32) -> Self {
        Self {
            label,
            mark: Mark::Dashed,
            color,
            points: xs.iter().map(|&x| (x, c / x.sqrt())).collect(),
            source: Source::InverseSqrt { c },
        }
    }
}

/// Pairs each plot position with its value; an error if the counts differ.
fn zip_exact(plot_x: &[f32], y: Vec<f32>) -> Result<Vec<(f32, f32)>, Error> {
    if y.len() == plot_x.len() {
        Ok(plot_x.iter().copied().zip(y).collect())
    } else {
        Err(Error::Data(format!(
            "{} values but {} plot positions",
            y.len(),
            plot_x.len()
        )))
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
    /// Both axes on a logarithmic scale (every plotted coordinate must then be `> 0`).
    pub log_log: bool,
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

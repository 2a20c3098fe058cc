//! The seed's interactive page, computed by the nadaraya crates in WebAssembly.
//!
//! [`Page`] is the whole state of the page: the samples `(x_i, y_i)`, the bandwidth `h`, the
//! temperature `τ`, the query `x_q`, the random-feature count `m`, and every number the page
//! shows: `ŷ(x)` over a grid for the Gaussian and softmax-dot kernels ([`nadaraya::attention`]),
//! the weights `α_i` at `x_q` ([`nadaraya::weights`]), a FAVOR+ estimate against exact
//! ([`nadaraya_rf::attention`]), and a few summaries ([`Summary`]). It is plain safe Rust, tested
//! natively; the `nw_*` functions of [`exports`] hand it to JavaScript over wasm linear memory,
//! and the `nadaraya-page-expected` binary prints, from the same functions run natively, the
//! numbers `scripts/page --check` expects the browser to show.
//!
//! # Examples
//! ```
//! use nadaraya_wasm::{Page, SCENARIOS};
//! let mut page = Page::new();
//! page.apply(&SCENARIOS[1]); // small h
//! page.compute()?;
//! let a = page.buffer(nadaraya_wasm::Buffer::AlphaGauss);
//! assert!((a.iter().sum::<f32>() - 1.0).abs() < 1e-5);
//! # Ok::<(), nadaraya_wasm::Error>(())
//! ```

use core::fmt;

use nadaraya::{Gaussian, SoftmaxDot};
use nadaraya_rf::{FavorPlus, Projection, RowNorm, Sampling, Variant};

#[allow(unsafe_code)]
pub mod exports;

/// Points of the prediction grid (as in `nadaraya-plot`'s figures).
pub const GRID: usize = 241;
/// The most samples the page holds; a sample pushed beyond is handed back.
pub const MAX_POINTS: usize = 5000;
/// Samples of the [`Data::Dense`] set.
pub const DENSE_POINTS: usize = 2000;
/// The feature counts `m` the random-feature slider steps through.
pub const FEATURES: [usize; 10] = [4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048];
/// The projection seed of the random features.
pub const SEED: u64 = 1;
/// How the random projections are drawn (as in `nadaraya-plot`): orthogonal blocks with
/// chi-distributed norms.
pub const SAMPLING: Sampling = Sampling::Orthogonal(RowNorm::Chi);

// The built-in data of `nadaraya-plot` (`crates/nadaraya-plot/src/data.rs`), repeated here so
// that the wasm module does not link plotters; a test checks the page against the committed
// figures' CSV (`docs/figures`), data, curves and weights.
const X: [f32; 12] = [
    -2.9, -2.4, -1.8, -1.3, -0.9, -0.4, 0.2, 0.7, 1.1, 1.6, 2.2, 2.8,
];
const SINE: [f32; 12] = [
    -0.12, -0.76, -0.92, -1.11, -0.68, -0.44, 0.34, 0.54, 0.95, 0.88, 0.9, 0.29,
];

/// A built-in data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Data {
    /// The twelve noisy `sin` samples of the figures.
    Sine,
    /// The same `y_i` with the `x_i` pulled into two clusters (each half of the points, by
    /// position, moved to a quarter of its distance from the half's mean, as the figures do).
    Clustered,
    /// [`DENSE_POINTS`] noisy `sin` samples over `[-3, 3]`, for dragging at scale.
    Dense,
}

impl Data {
    /// The samples `(x, y)` of this set.
    #[must_use]
    pub fn samples(self) -> (Vec<f32>, Vec<f32>) {
        match self {
            Self::Sine => (X.to_vec(), SINE.to_vec()),
            Self::Clustered => (clustered(&X), SINE.to_vec()),
            Self::Dense => dense(DENSE_POINTS),
        }
    }
}

fn clustered(x: &[f32]) -> Vec<f32> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let half = order.len() / 2;
    let mut out = x.to_vec();
    for group in [&order[..half], &order[half..]] {
        if group.is_empty() {
            continue;
        }
        let mean = group.iter().map(|&i| f64::from(x[i])).sum::<f64>() / group.len() as f64;
        for &i in group {
            out[i] = (mean + 0.25 * (f64::from(x[i]) - mean)) as f32;
        }
    }
    out
}

/// `n` samples of `sin(x)` plus a deterministic offset in `[-0.2, 0.2)` (a 64-bit LCG), with
/// `x` evenly spaced over `[-3, 3]` and jittered by up to a quarter step.
fn dense(n: usize) -> (Vec<f32>, Vec<f32>) {
    let mut state: u64 = 0x853c_49e6_748f_ea9b;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let step = 6.0 / (n.max(2) - 1) as f64;
    let mut x = Vec::with_capacity(n);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let xi = (-3.0 + step * i as f64 + 0.5 * step * next()).clamp(-3.0, 3.0);
        x.push(xi as f32);
        y.push((xi.sin() + 0.4 * next()) as f32);
    }
    (x, y)
}

/// One of the seed's "What to Try" steps, as the page's buttons set it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scenario {
    /// The name the page and the check use.
    pub name: &'static str,
    /// The data set it loads.
    pub data: Data,
    /// Gaussian bandwidth `h`.
    pub h: f32,
    /// Softmax-dot temperature `τ` (ignored when `unit`: then `τ = h²`).
    pub tau: f32,
    /// The queries `x_q` to visit: the button sets the first, the check visits each.
    pub x_q: &'static [f32],
    /// Embed every point as `(x, 1)/√(x² + 1)` and tie `τ` to `h²`.
    pub unit: bool,
}

/// The page's scenarios: the default view, the seed's four "What to Try" steps, the bandwidth
/// against temperature insight, and the dense set for dragging at scale.
///
/// The `small-h` queries are the figures' `sweep_queries` of the sine data (1/6, 1/2 and 5/6 of
/// the way across, to two decimals).
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "default",
        data: Data::Sine,
        h: 0.5,
        tau: 1.0,
        x_q: &[1.0],
        unit: false,
    },
    Scenario {
        name: "small-h",
        data: Data::Sine,
        h: 0.2,
        tau: 1.0,
        x_q: &[-1.95, -0.05, 1.85],
        unit: false,
    },
    Scenario {
        name: "small-tau",
        data: Data::Sine,
        h: 0.5,
        tau: 0.2,
        x_q: &[1.0],
        unit: false,
    },
    Scenario {
        name: "clustered",
        data: Data::Clustered,
        h: 0.5,
        tau: 1.0,
        x_q: &[1.0],
        unit: false,
    },
    Scenario {
        name: "sign",
        data: Data::Sine,
        h: 0.5,
        tau: 1.0,
        x_q: &[1.0, -1.0],
        unit: false,
    },
    Scenario {
        name: "bandwidth-temperature",
        data: Data::Sine,
        h: 0.5,
        tau: 0.25,
        x_q: &[1.0],
        unit: true,
    },
    Scenario {
        name: "dense",
        data: Data::Dense,
        h: 0.3,
        tau: 1.0,
        x_q: &[0.5],
        unit: false,
    },
];

/// The unit-normalised embedding of a 1-D location: `(x, 1) / √(x² + 1)` (as `nadaraya-plot`'s
/// `unit`). On unit vectors the Gaussian score with bandwidth `h` is the softmax-dot score with
/// `τ = h²` minus a constant, so their weights coincide.
#[must_use]
pub fn unit(x: f32) -> [f32; 2] {
    let n = (f64::from(x) * f64::from(x) + 1.0).sqrt();
    [(f64::from(x) / n) as f32, (1.0 / n) as f32]
}

/// What went wrong; the page shows its text.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Error {
    /// The core rejected the input (an invalid `h` or `τ`, no samples, a non-finite value, a
    /// score or sum that overflows `f32`).
    Core(nadaraya::Error),
    /// `nadaraya-rf` rejected the input.
    RandomFeatures(nadaraya_rf::Error),
    /// A sample was not added: the page holds [`MAX_POINTS`] already, or a coordinate is not
    /// finite. The rejected sample is handed back.
    Rejected {
        /// Its location.
        x: f32,
        /// Its response.
        y: f32,
    },
    /// No sample has this index.
    NoSuchPoint(usize),
    /// A parameter (`h`, `τ`, `x_q`, a feature index or a scenario index) is not valid.
    Parameter,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Core(nadaraya::Error::Empty) => f.write_str("no samples: click to add a point"),
            Self::Core(e) => write!(f, "{e}"),
            Self::RandomFeatures(e) => write!(f, "random features: {e}"),
            Self::Rejected { x, y } => write!(
                f,
                "sample ({x}, {y}) rejected: at most {MAX_POINTS} finite samples"
            ),
            Self::NoSuchPoint(i) => write!(f, "no sample {i}"),
            Self::Parameter => f.write_str("parameter out of range"),
        }
    }
}

impl std::error::Error for Error {}

/// The core's attention on flat `f32` buffers: queries and keys of width `d`, one value per
/// key, one output per query.
fn core_attention<K: nadaraya::Kernel>(
    k: &K,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    d: usize,
    out: &mut [f32],
) -> Result<(), nadaraya::Error> {
    use nadaraya::{Mask, Rows, RowsMut};
    let (q, keys, values) = (Rows::new(q, d)?, Rows::new(keys, d)?, Rows::new(values, 1)?);
    nadaraya::attention(k, q, keys, values, Mask::None, RowsMut::new(out, 1)?)
}

/// The core's weights of one query `q` against the keys (of its width) into `out` (one per key).
fn core_weights<K: nadaraya::Kernel>(
    k: &K,
    q: &[f32],
    keys: &[f32],
    out: &mut [f32],
) -> Result<(), nadaraya::Error> {
    use nadaraya::{Rows, RowsMut};
    let (qr, keys) = (Rows::new(q, q.len())?, Rows::new(keys, q.len())?);
    let n = keys.len();
    nadaraya::weights(k, qr, keys, RowsMut::new(out, n.max(1))?)
}

impl From<nadaraya::Error> for Error {
    fn from(e: nadaraya::Error) -> Self {
        Self::Core(e)
    }
}

impl From<nadaraya_rf::Error> for Error {
    fn from(e: nadaraya_rf::Error) -> Self {
        Self::RandomFeatures(e)
    }
}

/// The page's output arrays, each readable as `f32`s with [`Page::buffer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Buffer {
    /// Sample locations `x_i`.
    X = 0,
    /// Sample responses `y_i`.
    Y = 1,
    /// The grid `x` over the view, [`GRID`] points.
    Grid = 2,
    /// Gaussian `ŷ(x)` over the grid.
    YGauss = 3,
    /// Softmax-dot `ŷ(x)` over the grid.
    YDot = 4,
    /// Gaussian `α_i` at `x_q`, one per sample.
    AlphaGauss = 5,
    /// Softmax-dot `α_i` at `x_q`, one per sample.
    AlphaDot = 6,
    /// FAVOR+ estimate of softmax-dot `ŷ(x)` (raw `x`, temperature `τ`) over the grid.
    RfEstimate = 7,
    /// Exact softmax-dot `ŷ(x)` (raw `x`, temperature `τ`) over the grid.
    RfExact = 8,
    /// The [`Summary`] as `f32`s, in the order of [`Summary::NAMES`].
    Summary = 9,
}

impl Buffer {
    /// Every buffer, in the order of its number.
    pub const ALL: [Self; 10] = [
        Self::X,
        Self::Y,
        Self::Grid,
        Self::YGauss,
        Self::YDot,
        Self::AlphaGauss,
        Self::AlphaDot,
        Self::RfEstimate,
        Self::RfExact,
        Self::Summary,
    ];
}

/// The scalars the page shows beside its plots.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Summary {
    /// The bandwidth used.
    pub h: f32,
    /// The temperature used (`h²` in the unit-normalised scenario).
    pub tau: f32,
    /// The query.
    pub x_q: f32,
    /// `1` when points are unit-normalised, else `0`.
    pub unit: f32,
    /// Gaussian `ŷ(x_q)`.
    pub y_gauss: f32,
    /// Softmax-dot `ŷ(x_q)`.
    pub y_dot: f32,
    /// The largest Gaussian `α_i`.
    pub max_gauss: f32,
    /// The `x_i` with the largest Gaussian `α_i` (the first, on ties).
    pub argmax_gauss: f32,
    /// The largest softmax-dot `α_i`.
    pub max_dot: f32,
    /// The `x_i` with the largest softmax-dot `α_i`.
    pub argmax_dot: f32,
    /// Gaussian weight on the `x_i` with the sign of `x_q` (`x_i > 0` when `x_q ≥ 0`).
    pub same_sign_gauss: f32,
    /// Softmax-dot weight on the `x_i` with the sign of `x_q`.
    pub same_sign_dot: f32,
    /// Samples.
    pub n: f32,
    /// Random features `m`.
    pub m: f32,
    /// RMS difference of the FAVOR+ estimate from exact over the grid.
    pub rf_rms: f32,
    /// The left end of the view.
    pub x_lo: f32,
    /// The right end of the view.
    pub x_hi: f32,
    /// The bottom of the view.
    pub y_lo: f32,
    /// The top of the view.
    pub y_hi: f32,
}

impl Summary {
    /// The field names, in buffer order.
    pub const NAMES: [&'static str; 19] = [
        "h",
        "tau",
        "x_q",
        "unit",
        "y_gauss",
        "y_dot",
        "max_gauss",
        "argmax_gauss",
        "max_dot",
        "argmax_dot",
        "same_sign_gauss",
        "same_sign_dot",
        "n",
        "m",
        "rf_rms",
        "x_lo",
        "x_hi",
        "y_lo",
        "y_hi",
    ];

    /// The fields in the order of [`NAMES`](Self::NAMES).
    #[must_use]
    pub fn to_array(&self) -> [f32; 19] {
        [
            self.h,
            self.tau,
            self.x_q,
            self.unit,
            self.y_gauss,
            self.y_dot,
            self.max_gauss,
            self.argmax_gauss,
            self.max_dot,
            self.argmax_dot,
            self.same_sign_gauss,
            self.same_sign_dot,
            self.n,
            self.m,
            self.rf_rms,
            self.x_lo,
            self.x_hi,
            self.y_lo,
            self.y_hi,
        ]
    }
}

/// The whole state of the page and every number it shows.
#[derive(Clone, Debug)]
pub struct Page {
    x: Vec<f32>,
    y: Vec<f32>,
    h: f32,
    tau: f32,
    x_q: f32,
    unit: bool,
    feature: usize,
    view: (f32, f32),
    y_view: (f32, f32),
    grid: Vec<f32>,
    y_gauss: Vec<f32>,
    y_dot: Vec<f32>,
    a_gauss: Vec<f32>,
    a_dot: Vec<f32>,
    rf: Vec<f32>,
    rf_exact: Vec<f32>,
    summary: Vec<f32>,
    s: Summary,
}

impl Default for Page {
    fn default() -> Self {
        Self::new()
    }
}

impl Page {
    /// The page as it opens: the `default` scenario, `m = 32`.
    #[must_use]
    pub fn new() -> Self {
        let mut p = Self {
            x: Vec::new(),
            y: Vec::new(),
            h: 0.5,
            tau: 1.0,
            x_q: 1.0,
            unit: false,
            feature: 3,
            view: (-1.0, 1.0),
            y_view: (-1.0, 1.0),
            grid: Vec::new(),
            y_gauss: Vec::new(),
            y_dot: Vec::new(),
            a_gauss: Vec::new(),
            a_dot: Vec::new(),
            rf: Vec::new(),
            rf_exact: Vec::new(),
            summary: vec![0.0; Summary::NAMES.len()],
            s: Summary::default(),
        };
        p.apply(&SCENARIOS[0]);
        p
    }

    /// Sets a scenario: its data (and the view around it), `h`, `τ`, the first of its `x_q` and
    /// whether points are unit-normalised. Nothing is computed until [`compute`](Self::compute).
    pub fn apply(&mut self, s: &Scenario) {
        self.load(s.data);
        self.h = s.h;
        self.tau = s.tau;
        self.x_q = s.x_q.first().copied().unwrap_or(0.0);
        self.unit = s.unit;
    }

    /// Loads a data set and fits the view to it.
    pub fn load(&mut self, data: Data) {
        let (x, y) = data.samples();
        self.x = x;
        self.y = y;
        self.fit_view();
    }

    /// Fits the view to the samples (their range plus 8 % each side, at least the unit
    /// interval, as the figures do) and lays the grid over it. Called on loading; dragging and
    /// adding points keep the view, so the axes stay still under the pointer.
    pub fn fit_view(&mut self) {
        let (lo, hi) = min_max(&self.x);
        let pad = 0.08 * (hi - lo).max(1.0);
        self.view = (lo - pad, hi + pad);
        let (ylo, yhi) = min_max(&self.y);
        let ypad = 0.25 * (yhi - ylo).max(1.0);
        self.y_view = (ylo - ypad, yhi + ypad);
        let step = (f64::from(self.view.1) - f64::from(self.view.0)) / (GRID - 1) as f64;
        self.grid = (0..GRID)
            .map(|i| (f64::from(self.view.0) + step * i as f64) as f32)
            .collect();
    }

    /// Sets `h`.
    ///
    /// # Errors
    /// [`Error::Core`]`(InvalidBandwidth)` if the core's [`Gaussian::new`] rejects it; the old
    /// value stays.
    pub fn set_h(&mut self, h: f32) -> Result<(), Error> {
        Gaussian::new(h)?;
        self.h = h;
        Ok(())
    }

    /// Sets `τ` (used unless points are unit-normalised, where `τ = h²`).
    ///
    /// # Errors
    /// [`Error::Core`]`(InvalidTemperature)` if the core's [`SoftmaxDot::new`] rejects it; the
    /// old value stays.
    pub fn set_tau(&mut self, tau: f32) -> Result<(), Error> {
        SoftmaxDot::new(tau)?;
        self.tau = tau;
        Ok(())
    }

    /// Sets the query `x_q`.
    ///
    /// # Errors
    /// [`Error::Parameter`] if it is not finite; the old value stays.
    pub fn set_x_q(&mut self, x_q: f32) -> Result<(), Error> {
        if !x_q.is_finite() {
            return Err(Error::Parameter);
        }
        self.x_q = x_q;
        Ok(())
    }

    /// Unit-normalises the points (and ties `τ` to `h²`) or not.
    pub fn set_unit(&mut self, unit: bool) {
        self.unit = unit;
    }

    /// Sets the random-feature count to `FEATURES[index]`.
    ///
    /// # Errors
    /// [`Error::Parameter`] if `index >= FEATURES.len()`.
    pub fn set_feature_index(&mut self, index: usize) -> Result<(), Error> {
        if index >= FEATURES.len() {
            return Err(Error::Parameter);
        }
        self.feature = index;
        Ok(())
    }

    /// Moves sample `i` to `(x, y)`.
    ///
    /// # Errors
    /// [`Error::NoSuchPoint`] if there is no sample `i`; [`Error::Rejected`] if a coordinate is
    /// not finite (the sample stays where it was).
    pub fn set_point(&mut self, i: usize, x: f32, y: f32) -> Result<(), Error> {
        if i >= self.x.len() {
            return Err(Error::NoSuchPoint(i));
        }
        if !(x.is_finite() && y.is_finite()) {
            return Err(Error::Rejected { x, y });
        }
        self.x[i] = x;
        self.y[i] = y;
        Ok(())
    }

    /// Adds a sample.
    ///
    /// # Errors
    /// [`Error::Rejected`], handing the sample back, if a coordinate is not finite or the page
    /// holds [`MAX_POINTS`] samples.
    pub fn push(&mut self, x: f32, y: f32) -> Result<(), Error> {
        if !(x.is_finite() && y.is_finite()) || self.x.len() >= MAX_POINTS {
            return Err(Error::Rejected { x, y });
        }
        self.x.push(x);
        self.y.push(y);
        Ok(())
    }

    /// Removes sample `i`, handing it back.
    ///
    /// # Errors
    /// [`Error::NoSuchPoint`] if there is no sample `i`.
    pub fn remove(&mut self, i: usize) -> Result<(f32, f32), Error> {
        if i >= self.x.len() {
            return Err(Error::NoSuchPoint(i));
        }
        Ok((self.x.remove(i), self.y.remove(i)))
    }

    /// Computes `ŷ` over the grid and at `x_q`, and `α_i` at `x_q`, for both kernels, with the
    /// core, and the summaries. On error the curves and weights are empty.
    ///
    /// # Errors
    /// [`Error::Core`] as [`nadaraya::attention`] and [`nadaraya::weights`]: `Empty` when there
    /// are no samples, and, for inputs the setters cannot produce, `InvalidBandwidth`,
    /// `InvalidTemperature`, `NonFinite`, `ScoreOverflow` or `Overflow`.
    pub fn compute(&mut self) -> Result<(), Error> {
        let r = self.compute_exact();
        if r.is_err() {
            for v in [
                &mut self.y_gauss,
                &mut self.y_dot,
                &mut self.a_gauss,
                &mut self.a_dot,
            ] {
                v.clear();
            }
        }
        self.write_summary();
        r
    }

    fn tau_used(&self) -> f32 {
        if self.unit {
            (f64::from(self.h) * f64::from(self.h)) as f32
        } else {
            self.tau
        }
    }

    fn compute_exact(&mut self) -> Result<(), Error> {
        let g = Gaussian::new(self.h)?;
        let s = SoftmaxDot::new(self.tau_used())?;
        let (keys, queries, q, d) = if self.unit {
            (
                self.x.iter().flat_map(|&x| unit(x)).collect::<Vec<f32>>(),
                self.grid
                    .iter()
                    .flat_map(|&x| unit(x))
                    .collect::<Vec<f32>>(),
                unit(self.x_q).to_vec(),
                2,
            )
        } else {
            (self.x.clone(), self.grid.clone(), vec![self.x_q], 1)
        };
        let n = self.x.len();
        self.y_gauss.resize(GRID, 0.0);
        self.y_dot.resize(GRID, 0.0);
        self.a_gauss.resize(n, 0.0);
        self.a_dot.resize(n, 0.0);
        core_attention(&g, &queries, &keys, &self.y, d, &mut self.y_gauss)?;
        core_attention(&s, &queries, &keys, &self.y, d, &mut self.y_dot)?;
        core_weights(&g, &q, &keys, &mut self.a_gauss)?;
        core_weights(&s, &q, &keys, &mut self.a_dot)?;
        let mut at = [0.0f32; 2];
        core_attention(&g, &q, &keys, &self.y, d, &mut at[..1])?;
        core_attention(&s, &q, &keys, &self.y, d, &mut at[1..])?;
        self.s.y_gauss = at[0];
        self.s.y_dot = at[1];
        (self.s.argmax_gauss, self.s.max_gauss) = argmax(&self.x, &self.a_gauss);
        (self.s.argmax_dot, self.s.max_dot) = argmax(&self.x, &self.a_dot);
        self.s.same_sign_gauss = same_sign(&self.x, &self.a_gauss, self.x_q);
        self.s.same_sign_dot = same_sign(&self.x, &self.a_dot, self.x_q);
        Ok(())
    }

    /// Computes the FAVOR+ estimate of softmax-dot `ŷ(x)` over the grid with `m` positive
    /// features ([`nadaraya_rf::attention`]), the exact curve it estimates (the core, raw `x`,
    /// temperature `τ`) and the RMS difference. On error both curves are empty.
    ///
    /// # Errors
    /// [`Error::RandomFeatures`] as [`nadaraya_rf::attention`] (`Empty` when there are no
    /// samples, `ScoreOverflow` when a feature exponent overflows); [`Error::Core`] as
    /// [`nadaraya::attention`].
    pub fn compute_rf(&mut self) -> Result<(), Error> {
        let r = self.compute_rf_inner();
        if r.is_err() {
            self.rf.clear();
            self.rf_exact.clear();
            self.s.rf_rms = f32::NAN;
        }
        self.write_summary();
        r
    }

    fn compute_rf_inner(&mut self) -> Result<(), Error> {
        let m = FEATURES[self.feature];
        let tau = self.tau_used();
        let f = FavorPlus::new(
            Projection::new(1, m, SAMPLING, SEED)?,
            tau,
            Variant::Positive,
        )?;
        self.rf.resize(GRID, 0.0);
        self.rf_exact.resize(GRID, 0.0);
        nadaraya_rf::attention(&f, &self.grid, &self.x, &self.y, 1, 1, &mut self.rf)?;
        if !self.unit && self.y_dot.len() == GRID {
            // The exact curve on raw x at this τ is the softmax-dot curve `compute` made.
            self.rf_exact.copy_from_slice(&self.y_dot);
        } else {
            let k = SoftmaxDot::new(tau)?;
            core_attention(&k, &self.grid, &self.x, &self.y, 1, &mut self.rf_exact)?;
        }
        let sq: f64 = self
            .rf
            .iter()
            .zip(&self.rf_exact)
            .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
            .sum();
        self.s.rf_rms = (sq / GRID as f64).sqrt() as f32;
        Ok(())
    }

    fn write_summary(&mut self) {
        self.s.h = self.h;
        self.s.tau = self.tau_used();
        self.s.x_q = self.x_q;
        self.s.unit = f32::from(u8::from(self.unit));
        self.s.n = self.x.len() as f32;
        self.s.m = FEATURES[self.feature] as f32;
        (self.s.x_lo, self.s.x_hi) = self.view;
        (self.s.y_lo, self.s.y_hi) = self.y_view;
        self.summary.clear();
        self.summary.extend_from_slice(&self.s.to_array());
    }

    /// The summaries of the last computation.
    #[must_use]
    pub fn summary(&self) -> &Summary {
        &self.s
    }

    /// One output array (empty after a failed computation).
    #[must_use]
    pub fn buffer(&self, b: Buffer) -> &[f32] {
        match b {
            Buffer::X => &self.x,
            Buffer::Y => &self.y,
            Buffer::Grid => &self.grid,
            Buffer::YGauss => &self.y_gauss,
            Buffer::YDot => &self.y_dot,
            Buffer::AlphaGauss => &self.a_gauss,
            Buffer::AlphaDot => &self.a_dot,
            Buffer::RfEstimate => &self.rf,
            Buffer::RfExact => &self.rf_exact,
            Buffer::Summary => &self.summary,
        }
    }
}

/// The `x_i` with the largest weight and that weight (the first on ties; `(0, 0)` if empty).
fn argmax(x: &[f32], a: &[f32]) -> (f32, f32) {
    let mut best = (0.0, f32::NEG_INFINITY);
    for (&xi, &ai) in x.iter().zip(a) {
        if ai > best.1 {
            best = (xi, ai);
        }
    }
    if best.1.is_finite() { best } else { (0.0, 0.0) }
}

/// The weight on the `x_i` with the sign of `x_q` (`x_i > 0` for `x_q ≥ 0`, else `x_i < 0`),
/// summed in `f64`.
fn same_sign(x: &[f32], a: &[f32], x_q: f32) -> f32 {
    x.iter()
        .zip(a)
        .filter(|&(&xi, _)| if x_q >= 0.0 { xi > 0.0 } else { xi < 0.0 })
        .map(|(_, &ai)| f64::from(ai))
        .sum::<f64>() as f32
}

/// The smallest and largest value (`(0, 0)` for an empty slice).
fn min_max(v: &[f32]) -> (f32, f32) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nadaraya_tests::reference::{self, RefKernel};

    fn check(page: &Page) {
        let (keys, queries, q, d): (Vec<f32>, Vec<f32>, Vec<f32>, usize) = if page.unit {
            (
                page.x.iter().flat_map(|&x| unit(x)).collect(),
                page.grid.iter().flat_map(|&x| unit(x)).collect(),
                unit(page.x_q).to_vec(),
                2,
            )
        } else {
            (page.x.clone(), page.grid.clone(), vec![page.x_q], 1)
        };
        let (k, q64, y) = (
            reference::widen(&keys),
            reference::widen(&q),
            reference::widen(&page.y),
        );
        let kernels = [
            (
                RefKernel::Gaussian {
                    h: f64::from(page.h),
                },
                Buffer::YGauss,
                Buffer::AlphaGauss,
                page.s.y_gauss,
            ),
            (
                RefKernel::SoftmaxDot {
                    tau: f64::from(page.tau_used()),
                },
                Buffer::YDot,
                Buffer::AlphaDot,
                page.s.y_dot,
            ),
        ];
        for (kernel, curve, alpha, at) in kernels {
            let w = reference::weights(kernel, &q64, &k);
            for (a, b) in page.buffer(alpha).iter().zip(&w) {
                assert!((f64::from(*a) - b).abs() < 1e-5, "{kernel:?}: α {a} vs {b}");
            }
            let yq = reference::smooth(kernel, &q64, &k, &y, 1)[0];
            assert!(
                (f64::from(at) - yq).abs() < 1e-4,
                "{kernel:?}: ŷ(x_q) {at} vs {yq}"
            );
            for (j, &v) in page.buffer(curve).iter().enumerate() {
                let r =
                    reference::smooth(kernel, &reference::widen(&queries[j * d..][..d]), &k, &y, 1)
                        [0];
                assert!((f64::from(v) - r).abs() < 1e-4, "{kernel:?}: ŷ {v} vs {r}");
            }
        }
    }

    #[test]
    fn every_scenario_matches_the_f64_reference() {
        let mut page = Page::new();
        for s in SCENARIOS {
            page.apply(s);
            for &x_q in s.x_q {
                page.set_x_q(x_q).unwrap();
                page.compute().unwrap();
                assert_eq!(page.buffer(Buffer::AlphaGauss).len(), page.x.len());
                check(&page);
            }
        }
    }

    /// The `(x, value)` rows of one series of a committed figure's CSV.
    fn figure_series(figure: &str, series: &str) -> Vec<(f32, f32)> {
        let path = format!(
            "{}/../../docs/figures/{figure}.csv",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let prefix = format!("\",\"{series}\",");
        text.lines()
            .filter_map(|l| l.split_once(&prefix).map(|(_, rest)| rest))
            .map(|rest| {
                let (x, v) = rest.split_once(',').unwrap();
                (x.parse().unwrap(), v.parse().unwrap())
            })
            .collect()
    }

    fn same_as_figure(figure: &str, series: &str, x: &[f32], v: &[f32]) {
        let rows = figure_series(figure, series);
        assert_eq!(rows.len(), v.len(), "{figure}: {series}");
        for (&(fx, fv), (&px, &pv)) in rows.iter().zip(x.iter().zip(v)) {
            assert_eq!(fx, px, "{figure}: {series} at x");
            assert!(
                (fv - pv).abs() <= 1e-6,
                "{figure}: {series} at {fx}: {fv} vs {pv}"
            );
        }
    }

    #[test]
    fn the_page_shows_what_the_committed_figures_show() {
        let mut page = Page::new();
        page.compute().unwrap();
        let b = |page: &Page, k| page.buffer(k).to_vec();
        let (x, grid) = (b(&page, Buffer::X), b(&page, Buffer::Grid));
        same_as_figure("default", "data (x_i, y_i)", &x, &b(&page, Buffer::Y));
        same_as_figure(
            "default",
            "ŷ(x), Gaussian h=0.5",
            &grid,
            &b(&page, Buffer::YGauss),
        );
        same_as_figure(
            "default",
            "ŷ(x), softmax-dot τ=1",
            &grid,
            &b(&page, Buffer::YDot),
        );
        same_as_figure(
            "default",
            "α_i at x_q=1, Gaussian h=0.5",
            &x,
            &b(&page, Buffer::AlphaGauss),
        );
        same_as_figure(
            "default",
            "α_i at x_q=1, softmax-dot τ=1",
            &x,
            &b(&page, Buffer::AlphaDot),
        );
        page.apply(&SCENARIOS[3]);
        page.compute().unwrap();
        let x = b(&page, Buffer::X);
        same_as_figure(
            "clustered",
            "clustered (x_i, y_i)",
            &x,
            &b(&page, Buffer::Y),
        );
        same_as_figure(
            "clustered",
            "α_i at x_q=1, clustered x_i",
            &x,
            &b(&page, Buffer::AlphaGauss),
        );
    }

    #[test]
    fn bandwidth_and_temperature_coincide_on_unit_points() {
        let mut page = Page::new();
        page.apply(&SCENARIOS[5]);
        page.compute().unwrap();
        assert_eq!(page.summary().tau, 0.25);
        for (a, b) in page
            .buffer(Buffer::AlphaGauss)
            .iter()
            .zip(page.buffer(Buffer::AlphaDot))
        {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn random_features_approach_exact_as_m_grows() {
        let mut page = Page::new();
        let mut rms = Vec::new();
        for i in [0, FEATURES.len() - 1] {
            page.set_feature_index(i).unwrap();
            page.compute_rf().unwrap();
            rms.push(page.summary().rf_rms);
        }
        assert!(rms[1] < 0.5 * rms[0] && rms[1] < 0.2, "{rms:?}");
        // Whether the exact curve is reused from `compute` or computed afresh, it is the same.
        let fresh = page.buffer(Buffer::RfExact).to_vec();
        page.compute().unwrap();
        page.compute_rf().unwrap();
        assert_eq!(page.buffer(Buffer::RfExact), &fresh[..]);
        page.apply(&SCENARIOS[5]);
        page.compute().unwrap();
        page.compute_rf().unwrap();
        let mut raw = vec![0.0; GRID];
        let s = SoftmaxDot::new(0.25).unwrap();
        core_attention(&s, &page.grid, &page.x, &page.y, 1, &mut raw).unwrap();
        assert_eq!(page.buffer(Buffer::RfExact), &raw[..]);
        assert_eq!(
            page.set_feature_index(FEATURES.len()),
            Err(Error::Parameter)
        );
    }

    #[test]
    fn edits_hand_back_what_they_reject() {
        let mut page = Page::new();
        let n = page.x.len();
        assert_eq!(
            page.push(f32::NAN, 0.0).unwrap_err().to_string(),
            Error::Rejected {
                x: f32::NAN,
                y: 0.0
            }
            .to_string()
        );
        assert_eq!(page.set_point(n, 0.0, 0.0), Err(Error::NoSuchPoint(n)));
        assert_eq!(page.remove(0), Ok((X[0], SINE[0])));
        assert!(page.set_h(0.0).is_err() && page.h == 0.5);
        assert!(page.set_tau(f32::INFINITY).is_err() && page.tau == 1.0);
        while page.remove(0).is_ok() {}
        assert_eq!(page.compute(), Err(Error::Core(nadaraya::Error::Empty)));
        assert!(page.buffer(Buffer::YGauss).is_empty());
        page.push(0.5, 2.0).unwrap();
        page.compute().unwrap();
        assert!(page.buffer(Buffer::YGauss).iter().all(|&v| v == 2.0));
        let mut full = Page::new();
        full.load(Data::Dense);
        while full.x.len() < MAX_POINTS {
            full.push(0.0, 0.0).unwrap();
        }
        assert_eq!(full.push(1.0, 2.0), Err(Error::Rejected { x: 1.0, y: 2.0 }));
    }

    #[test]
    fn dragging_a_point_changes_the_prediction() {
        let mut page = Page::new();
        page.compute().unwrap();
        let before = page.summary().y_gauss;
        page.set_point(8, 1.1, -1.0).unwrap();
        page.compute().unwrap();
        assert!((page.summary().y_gauss - before).abs() > 0.1);
        check(&page);
    }
}

//! The seed's "What to Try" scenarios, one [`Figure`] each.

use nadaraya::{Gaussian, SoftmaxDot};

use crate::data::min_max;
use crate::draw::padded;
use crate::figure::{Figure, KernelSpec, Mark, Panel, Series, Short};

// Palette index of the near-black data colour (see `draw::PALETTE`).
const DARK: usize = 0;
use crate::{Dataset, Error};

/// Default Gaussian bandwidth `h`.
pub const DEFAULT_H: f32 = 0.5;
/// Default softmax-dot temperature `τ` (`√d_k` for `d_k = 1`).
pub const DEFAULT_TAU: f32 = 1.0;
/// Default query position `x_q`.
pub const DEFAULT_X_Q: f32 = 1.0;
/// The seed's small bandwidth.
pub const DEFAULT_SMALL_H: f32 = 0.2;
/// A small temperature: weights become peaky.
pub const DEFAULT_SMALL_TAU: f32 = 0.2;
/// Points of the prediction grid.
pub const GRID: usize = 241;

/// The names of every scenario, in the order they are drawn.
pub const NAMES: &[&str] = &[
    "default",
    "small-h",
    "small-tau",
    "clustered",
    "sign",
    "bandwidth-temperature",
    "random-features",
    "bandwidth-selection",
];

/// The feature counts `m` whose predictions the `random-features` scenario draws.
pub const DEFAULT_FEATURES: [usize; 4] = [4, 32, 256, 2048];
/// The projection seed of those predictions.
pub const DEFAULT_SEED: u64 = 1;
/// The feature counts of the error sweep: `4, 8, …, 4096` (at `m = 2` most random-Fourier
/// denominators of the default data come near zero and the error explodes).
pub const ERROR_FEATURES: [usize; 11] = [4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];
/// How many seeds (`0..ERROR_SEEDS`) each point of the error sweep is the median of.
pub const ERROR_SEEDS: u64 = 16;
/// How many evenly spaced queries the error sweep measures at.
pub const ERROR_QUERIES: usize = 61;
/// The error sweep also runs FAVOR+ at this multiple of `τ`, where `|q + k|²/τ` is smaller.
pub const WIDE_TAU: f32 = 4.0;
/// The largest feature count `--features` accepts: the query features of one curve alone are
/// [`GRID`]`·m` floats (63 MB at this `m`), and a count near `usize::MAX` would otherwise end the
/// process with an allocation failure.
pub const MAX_FEATURES: usize = 1 << 16;

// Palette indices (see `draw::PALETTE`).
const BLUE: usize = 1;
const ORANGE: usize = 2;
const GREEN: usize = 3;
const RED: usize = 4;
const PURPLE: usize = 5;

/// Everything the scenarios are computed from.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// Gaussian bandwidth `h`.
    pub h: f32,
    /// Softmax-dot temperature `τ`.
    pub tau: f32,
    /// The query `x_q` whose weights are drawn.
    pub x_q: f32,
    /// The small bandwidth of the `small-h` scenario.
    pub small_h: f32,
    /// The small temperature of the `small-tau` scenario.
    pub small_tau: f32,
    /// The data set.
    pub data: Dataset,
    /// The feature counts `m` drawn by the `random-features` scenario.
    pub features: Vec<usize>,
    /// The projection seed of those curves.
    pub seed: u64,
}

impl Default for Params {
    /// The parameters the committed figures are drawn with: the built-in `sine` data,
    /// `h = 0.5`, `τ = 1`, `x_q = 1`, small `h = 0.2`, small `τ = 0.2`, random-feature curves
    /// for `m` = 4, 16, 64, 256 from seed 1.
    fn default() -> Self {
        Self {
            h: DEFAULT_H,
            tau: DEFAULT_TAU,
            x_q: DEFAULT_X_Q,
            small_h: DEFAULT_SMALL_H,
            small_tau: DEFAULT_SMALL_TAU,
            data: Dataset::sine(),
            features: DEFAULT_FEATURES.to_vec(),
            seed: DEFAULT_SEED,
        }
    }
}

/// The command-line flags whose values a scenario uses, as its error messages name them.
fn flags(name: &str, p: &Params) -> String {
    let h = format!("--h {}", Short(p.h));
    let tau = format!("--tau {}", Short(p.tau));
    let x_q = format!("--x-q {}", Short(p.x_q));
    let used = match name {
        "default" | "sign" => vec![h, tau, x_q],
        "small-h" => vec![h, format!("--small-h {}", Short(p.small_h))],
        "small-tau" => vec![tau, format!("--small-tau {}", Short(p.small_tau)), x_q],
        "clustered" | "bandwidth-temperature" => vec![h, x_q],
        "bandwidth-selection" => vec![format!("--data {}", p.data.name())],
        _ => {
            let m: Vec<String> = p.features.iter().map(usize::to_string).collect();
            vec![
                h,
                tau,
                format!("--features {}", m.join(",")),
                format!("--seed {}", p.seed),
            ]
        }
    };
    used.join(", ")
}

fn check_bandwidth(flag: &str, h: f32) -> Result<(), Error> {
    match Gaussian::new(h) {
        Ok(_) => Ok(()),
        Err(_) => Err(Error::Option(format!(
            "`{flag} {}`: not a valid bandwidth (it must be finite and > 0 with 1/(2h²) a \
             normal f32, from about 3.9e-20 to 6.5e18)",
            Short(h)
        ))),
    }
}

/// `flag` is the flag with its value; `what` names the temperature derived from it.
fn check_temperature(flag: &str, tau: f32, what: &str) -> Result<(), Error> {
    match SoftmaxDot::new(tau) {
        Ok(_) => Ok(()),
        Err(_) => Err(Error::Option(format!(
            "`{flag}`: {what}{} is not a valid temperature (it must be finite and > 0 with 1/τ \
             a normal f32, from about 3e-39 to 8.5e37)",
            Short(tau)
        ))),
    }
}

impl Params {
    /// Checks the parameters scenario `name` uses before anything is computed. Messages name the
    /// command-line flag that sets the value (`--small-h` for `small_h`, `--x-q` for `x_q`) and
    /// say what is wrong with it.
    ///
    /// # Errors
    /// [`Error::Option`] for an unknown `name`; a bandwidth (`h`, `small_h`) that
    /// [`nadaraya::Gaussian::new`] rejects; a temperature (`tau`, `small_tau`, the
    /// `bandwidth-temperature` scenario's `h²`, the `random-features` sweep's [`WIDE_TAU`]`·τ`)
    /// that [`nadaraya::SoftmaxDot::new`] rejects; a non-finite `x_q`; no feature counts, or a
    /// count of zero or above [`MAX_FEATURES`].
    pub fn validate(&self, name: &str) -> Result<(), Error> {
        let x_q = || {
            if self.x_q.is_finite() {
                Ok(())
            } else {
                Err(Error::Option(format!(
                    "`--x-q {}`: the query must be a finite number",
                    Short(self.x_q)
                )))
            }
        };
        let h = || check_bandwidth("--h", self.h);
        let tau = || check_temperature(&format!("--tau {}", Short(self.tau)), self.tau, "τ = ");
        match name {
            "default" | "sign" => {
                h()?;
                tau()?;
                x_q()
            }
            "small-h" => {
                h()?;
                check_bandwidth("--small-h", self.small_h)
            }
            "small-tau" => {
                tau()?;
                check_temperature(
                    &format!("--small-tau {}", Short(self.small_tau)),
                    self.small_tau,
                    "τ = ",
                )?;
                x_q()
            }
            "clustered" => {
                h()?;
                x_q()
            }
            // Uses no flag's value: the bandwidth is chosen from the data, which leave-one-out
            // needs two samples of.
            "bandwidth-selection" if self.data.x().len() < 2 => Err(Error::Option(format!(
                "`--data {}`: the bandwidth-selection scenario leaves one sample out, so it needs \
                 at least two (name the others with `--only`)",
                self.data.name()
            ))),
            "bandwidth-selection" => Ok(()),
            "bandwidth-temperature" => {
                h()?;
                let t = (f64::from(self.h) * f64::from(self.h)) as f32;
                check_temperature(
                    &format!("--h {}", Short(self.h)),
                    t,
                    "the bandwidth-temperature scenario's τ = h² = ",
                )?;
                x_q()
            }
            "random-features" => {
                h()?;
                tau()?;
                check_temperature(
                    &format!("--tau {}", Short(self.tau)),
                    WIDE_TAU * self.tau,
                    &format!("the random-features error sweep's τ = {WIDE_TAU}·τ = "),
                )?;
                if self.features.is_empty() {
                    return Err(Error::Option(
                        "`--features`: no feature counts to draw".into(),
                    ));
                }
                if self.features.contains(&0) {
                    return Err(Error::Option(
                        "`--features`: a feature count must be at least 1, found 0".into(),
                    ));
                }
                if let Some(m) = self.features.iter().find(|&&m| m > MAX_FEATURES) {
                    return Err(Error::Option(format!(
                        "`--features`: a feature count must be at most {MAX_FEATURES} (each \
                         curve holds {GRID}·m feature values), found {m}"
                    )));
                }
                Ok(())
            }
            _ => Err(Error::Option(format!(
                "`--only {name}`: no such scenario (scenarios: {})",
                NAMES.join(", ")
            ))),
        }
    }
}

/// Every scenario figure for `p`, in the order of [`NAMES`].
///
/// # Errors
/// As [`figures`].
pub fn all(p: &Params) -> Result<Vec<Figure>, Error> {
    figures(NAMES, p)
}

/// The figures of scenarios `names`, in that order: every name and its parameters are checked
/// ([`Params::validate`]) before any figure is computed, so an error leaves nothing half done.
///
/// # Errors
/// [`Error::Option`] from [`Params::validate`]; [`Error::Scenario`] wrapping the
/// [`Error::Core`] or [`Error::RandomFeatures`] of a computation the data make fail (a score
/// that overflows `f32`, a weighted sum that overflows), naming the scenario and the flags it
/// uses.
pub fn figures(names: &[&str], p: &Params) -> Result<Vec<Figure>, Error> {
    for name in names {
        p.validate(name)?;
    }
    names
        .iter()
        .map(|&name| {
            compute(name, p).map_err(|e| Error::Scenario {
                name: name.to_owned(),
                flags: flags(name, p),
                source: Box::new(e),
            })
        })
        .collect()
}

/// One scenario figure by name (see [`NAMES`]).
///
/// # Errors
/// As [`figures`].
pub fn figure(name: &str, p: &Params) -> Result<Figure, Error> {
    let mut figs = figures(&[name], p)?;
    figs.pop()
        .ok_or_else(|| Error::Option(format!("`--only {name}`: no figure")))
}

fn compute(name: &str, p: &Params) -> Result<Figure, Error> {
    match name {
        "default" => default(p),
        "small-h" => small_h(p),
        "small-tau" => small_tau(p),
        "clustered" => clustered(p),
        "sign" => sign(p),
        "bandwidth-temperature" => bandwidth_temperature(p),
        "random-features" => random_features(p),
        "bandwidth-selection" => bandwidth_selection(p),
        _ => Err(Error::Option(format!(
            "`--only {name}`: no such scenario (scenarios: {})",
            NAMES.join(", ")
        ))),
    }
}

/// The x range shown for a data set (its range plus 8 % each side, and `extra` positions).
///
/// The span is at least 1 and at least [`MIN_REL_SPAN`](crate::draw::MIN_REL_SPAN) times the
/// largest magnitude, and the range is clamped to `±f32::MAX`.
fn view(x: &[f32], extra: &[f32]) -> (f32, f32) {
    let (lo, hi) = min_max(x);
    let (lo, hi) = (lo.min(min_max(extra).0), hi.max(min_max(extra).1));
    padded((lo, hi), 1.0, (0.08, 0.08))
}

/// `GRID` evenly spaced positions over `range`.
fn grid((lo, hi): (f32, f32)) -> Vec<f32> {
    let step = (f64::from(hi) - f64::from(lo)) / (GRID - 1) as f64;
    (0..GRID)
        .map(|i| (f64::from(lo) + step * i as f64) as f32)
        .collect()
}

fn prediction_panel(range: (f32, f32), queries: Vec<f32>, series: Vec<Series>) -> Panel {
    Panel {
        id: "prediction".into(),
        x_label: "x".into(),
        y_label: "y, ŷ(x)".into(),
        x_range: range,
        y_range: None,
        queries,
        shade: None,
        log_log: false,
        series,
    }
}

fn weights_panel(range: (f32, f32), queries: Vec<f32>, series: Vec<Series>) -> Panel {
    Panel {
        id: "weights".into(),
        x_label: "x_i".into(),
        y_label: "weight α_i".into(),
        x_range: range,
        y_range: None,
        queries,
        shade: None,
        log_log: false,
        series,
    }
}

/// ŷ over the grid for a 1-D data set.
fn curve(
    kernel: KernelSpec,
    label: String,
    mark: Mark,
    color: usize,
    d: &Dataset,
    range: (f32, f32),
) -> Result<Series, Error> {
    let g = grid(range);
    Series::prediction(
        label,
        mark,
        color,
        kernel,
        &g,
        g.clone(),
        (d.x().to_vec(), d.y().to_vec(), 1),
    )
}

/// α at `x_q` for a 1-D data set.
fn bars(
    kernel: KernelSpec,
    label: String,
    color: usize,
    d: &Dataset,
    x_q: f32,
) -> Result<Series, Error> {
    Series::weights(label, color, kernel, d.x(), vec![x_q], d.x().to_vec())
}

fn default(p: &Params) -> Result<Figure, Error> {
    let d = &p.data;
    let r = view(d.x(), &[p.x_q]);
    let g = KernelSpec::Gaussian { h: p.h };
    let s = KernelSpec::SoftmaxDot { tau: p.tau };
    Ok(Figure {
        name: "default".into(),
        title: format!("Nadaraya–Watson smoothing: {} and {}", g.label(), s.label()),
        panels: vec![
            prediction_panel(
                r,
                vec![p.x_q],
                vec![
                    Series::data("data (x_i, y_i)", d.x(), d.y()),
                    curve(g, format!("ŷ(x), {}", g.label()), Mark::Line, BLUE, d, r)?,
                    curve(s, format!("ŷ(x), {}", s.label()), Mark::Line, ORANGE, d, r)?,
                ],
            ),
            weights_panel(
                r,
                vec![p.x_q],
                vec![
                    bars(
                        g,
                        format!("α_i at x_q={}, {}", Short(p.x_q), g.label()),
                        BLUE,
                        d,
                        p.x_q,
                    )?,
                    bars(
                        s,
                        format!("α_i at x_q={}, {}", Short(p.x_q), s.label()),
                        ORANGE,
                        d,
                        p.x_q,
                    )?,
                ],
            ),
        ],
    })
}

/// The queries of the `small-h` scenario: 1/6, 1/2 and 5/6 of the way across the data, to two
/// decimals.
#[must_use]
pub fn sweep_queries(d: &Dataset) -> [f32; 3] {
    let (lo, hi) = d.x_range();
    // Rounded to two decimals so the labels read `x_q=1.85`, not `x_q=1.8499999`.
    let at = |t: f64| {
        let v = f64::from(lo) + t * (f64::from(hi) - f64::from(lo));
        ((v * 100.0).round() / 100.0) as f32
    };
    [at(1.0 / 6.0), at(0.5), at(5.0 / 6.0)]
}

fn small_h(p: &Params) -> Result<Figure, Error> {
    let d = &p.data;
    let qs = sweep_queries(d);
    let r = view(d.x(), &qs);
    let small = KernelSpec::Gaussian { h: p.small_h };
    let wide = KernelSpec::Gaussian { h: p.h };
    let colors = [GREEN, RED, PURPLE];
    let mut weights = Vec::new();
    for (&q, &c) in qs.iter().zip(&colors) {
        weights.push(bars(small, format!("α_i at x_q={}", Short(q)), c, d, q)?);
    }
    Ok(Figure {
        name: "small-h".into(),
        title: format!(
            "Small bandwidth h={}: weights become local as x_q moves",
            Short(p.small_h)
        ),
        panels: vec![
            prediction_panel(
                r,
                qs.to_vec(),
                vec![
                    Series::data("data (x_i, y_i)", d.x(), d.y()),
                    curve(
                        wide,
                        format!("ŷ(x), {}", wide.label()),
                        Mark::Line,
                        BLUE,
                        d,
                        r,
                    )?,
                    curve(
                        small,
                        format!("ŷ(x), {}", small.label()),
                        Mark::Line,
                        ORANGE,
                        d,
                        r,
                    )?,
                ],
            ),
            weights_panel(r, qs.to_vec(), weights),
        ],
    })
}

fn small_tau(p: &Params) -> Result<Figure, Error> {
    let d = &p.data;
    let r = view(d.x(), &[p.x_q]);
    let s = KernelSpec::SoftmaxDot { tau: p.tau };
    let small = KernelSpec::SoftmaxDot { tau: p.small_tau };
    Ok(Figure {
        name: "small-tau".into(),
        title: format!(
            "Small temperature τ={}: softmax-dot weights become peaky",
            Short(p.small_tau)
        ),
        panels: vec![
            prediction_panel(
                r,
                vec![p.x_q],
                vec![
                    Series::data("data (x_i, y_i)", d.x(), d.y()),
                    curve(s, format!("ŷ(x), {}", s.label()), Mark::Line, ORANGE, d, r)?,
                    curve(
                        small,
                        format!("ŷ(x), {}", small.label()),
                        Mark::Line,
                        RED,
                        d,
                        r,
                    )?,
                ],
            ),
            weights_panel(
                r,
                vec![p.x_q],
                vec![
                    bars(
                        s,
                        format!("α_i at x_q={}, {}", Short(p.x_q), s.label()),
                        ORANGE,
                        d,
                        p.x_q,
                    )?,
                    bars(
                        small,
                        format!("α_i at x_q={}, {}", Short(p.x_q), small.label()),
                        RED,
                        d,
                        p.x_q,
                    )?,
                ],
            ),
        ],
    })
}

fn clustered(p: &Params) -> Result<Figure, Error> {
    let d = &p.data;
    let c = d.clustered();
    let r = view(d.x(), &[p.x_q]);
    let g = KernelSpec::Gaussian { h: p.h };
    Ok(Figure {
        name: "clustered".into(),
        title: format!(
            "Clustered x_i ({}): α redistributes over the cluster near x_q",
            g.label()
        ),
        panels: vec![
            prediction_panel(
                r,
                vec![p.x_q],
                vec![
                    Series::data("data (x_i, y_i)", d.x(), d.y()),
                    Series {
                        color: GREEN,
                        ..Series::data("clustered (x_i, y_i)", c.x(), c.y())
                    },
                    curve(g, "ŷ(x), spread x_i".into(), Mark::Line, BLUE, d, r)?,
                    curve(g, "ŷ(x), clustered x_i".into(), Mark::Line, GREEN, &c, r)?,
                ],
            ),
            weights_panel(
                r,
                vec![p.x_q],
                vec![
                    bars(
                        g,
                        format!("α_i at x_q={}, spread x_i", Short(p.x_q)),
                        BLUE,
                        d,
                        p.x_q,
                    )?,
                    bars(
                        g,
                        format!("α_i at x_q={}, clustered x_i", Short(p.x_q)),
                        GREEN,
                        &c,
                        p.x_q,
                    )?,
                ],
            ),
        ],
    })
}

fn sign(p: &Params) -> Result<Figure, Error> {
    let d = &p.data;
    // The scenario is about a positive query; a negative or zero x_q is mirrored to |x_q| (or 1).
    let q = if p.x_q.abs() > 0.0 { p.x_q.abs() } else { 1.0 };
    let r = view(d.x(), &[q, -q]);
    let g = KernelSpec::Gaussian { h: p.h };
    let s = KernelSpec::SoftmaxDot { tau: p.tau };
    let mut w = weights_panel(
        r,
        vec![q, -q],
        vec![
            bars(
                g,
                format!("α_i at x_q={}, {}", Short(q), g.label()),
                BLUE,
                d,
                q,
            )?,
            bars(
                s,
                format!("α_i at x_q={}, {}", Short(q), s.label()),
                ORANGE,
                d,
                q,
            )?,
            bars(
                s,
                format!("α_i at x_q={}, {}", Short(-q), s.label()),
                PURPLE,
                d,
                -q,
            )?,
        ],
    );
    w.shade = Some(((0.0, r.1), "same sign as x_q > 0".into()));
    Ok(Figure {
        name: "sign".into(),
        title: format!(
            "Gaussian vs softmax-dot at x_q={}: softmax-dot prefers x_i of the same sign",
            Short(q)
        ),
        panels: vec![
            prediction_panel(
                r,
                vec![q, -q],
                vec![
                    Series::data("data (x_i, y_i)", d.x(), d.y()),
                    curve(g, format!("ŷ(x), {}", g.label()), Mark::Line, BLUE, d, r)?,
                    curve(s, format!("ŷ(x), {}", s.label()), Mark::Line, ORANGE, d, r)?,
                ],
            ),
            w,
        ],
    })
}

/// The unit-normalised embedding of a 1-D location: `(x, 1) / √(x² + 1)`.
///
/// On unit vectors `|q − k|² = 2 − 2 q·k`, so the Gaussian score `−|q − k|²/(2h²)` is
/// `q·k/h² − 1/h²`: the softmax-dot score with `τ = h²` shifted by a constant, which the
/// softmax removes. Gaussian(h) and softmax-dot(τ = h²) weights coincide.
#[must_use]
pub fn unit(x: f32) -> [f32; 2] {
    let n = (f64::from(x) * f64::from(x) + 1.0).sqrt();
    [(f64::from(x) / n) as f32, (1.0 / n) as f32]
}

fn bandwidth_temperature(p: &Params) -> Result<Figure, Error> {
    let d = &p.data;
    let r = view(d.x(), &[p.x_q]);
    let h = p.h;
    let tau = (f64::from(h) * f64::from(h)) as f32;
    let g = KernelSpec::Gaussian { h };
    let s = KernelSpec::SoftmaxDot { tau };
    let keys: Vec<f32> = d.x().iter().flat_map(|&x| unit(x)).collect();
    let gx = grid(r);
    let queries: Vec<f32> = gx.iter().flat_map(|&x| unit(x)).collect();
    let q = unit(p.x_q).to_vec();
    let kv = || (keys.clone(), d.y().to_vec(), 2);
    Ok(Figure {
        name: "bandwidth-temperature".into(),
        title: format!(
            "Unit-normalised points: Gaussian h={} and softmax-dot τ=h²={} coincide",
            Short(h),
            Short(tau)
        ),
        panels: vec![
            Panel {
                x_label: "x  (query and keys embedded as (x, 1)/√(x²+1))".into(),
                ..prediction_panel(
                    r,
                    vec![p.x_q],
                    vec![
                        Series::data("data (x_i, y_i)", d.x(), d.y()),
                        curve(
                            g,
                            format!("ŷ(x), {} on raw x", g.label()),
                            Mark::Line,
                            GREEN,
                            d,
                            r,
                        )?,
                        Series::prediction(
                            format!("ŷ(x), {} normalised", g.label()),
                            Mark::Line,
                            BLUE,
                            g,
                            &gx,
                            queries.clone(),
                            kv(),
                        )?,
                        Series::prediction(
                            format!("ŷ(x), {} normalised", s.label()),
                            Mark::Dashed,
                            ORANGE,
                            s,
                            &gx,
                            queries,
                            kv(),
                        )?,
                    ],
                )
            },
            weights_panel(
                r,
                vec![p.x_q],
                vec![
                    Series::weights(
                        format!("α_i at x_q={}, {} normalised", Short(p.x_q), g.label()),
                        BLUE,
                        g,
                        d.x(),
                        q.clone(),
                        keys.clone(),
                    )?,
                    Series::weights(
                        format!("α_i at x_q={}, {} normalised", Short(p.x_q), s.label()),
                        ORANGE,
                        s,
                        d.x(),
                        q,
                        keys,
                    )?,
                ],
            ),
        ],
    })
}

/// One random-feature panel: the data, the estimate for every `m` of `p.features`, and the exact
/// curve drawn last, on top.
fn feature_panel(p: &Params, kernel: KernelSpec, range: (f32, f32)) -> Result<Panel, Error> {
    let d = &p.data;
    let g = grid(range);
    let colors = [RED, ORANGE, GREEN, PURPLE, BLUE];
    let mut series = vec![Series::data("data (x_i, y_i)", d.x(), d.y())];
    for (i, &m) in p.features.iter().enumerate() {
        series.push(Series::random_features(
            format!("ŷ(x), {}, m={m}", kernel.feature_map()),
            Mark::Line,
            colors[i % colors.len()],
            (kernel, m, p.seed),
            &g,
            g.clone(),
            (d.x().to_vec(), d.y().to_vec(), 1),
        )?);
    }
    series.push(curve(
        kernel,
        format!("ŷ(x), exact {}", kernel.label()),
        Mark::Dashed,
        DARK,
        d,
        range,
    )?);
    // The y range of the data with room for the legend: a poor estimate may leave it, and is
    // clipped rather than squashing the rest.
    Ok(Panel {
        id: match kernel {
            KernelSpec::Gaussian { .. } => "gaussian".into(),
            KernelSpec::SoftmaxDot { .. } => "softmax-dot".into(),
        },
        y_range: Some(padded(min_max(d.y()), 1e-3, (0.3, 1.1))),
        ..prediction_panel(range, vec![], series)
    })
}

fn random_features(p: &Params) -> Result<Figure, Error> {
    if p.features.is_empty() {
        return Err(Error::Option("no feature counts to draw".into()));
    }
    let d = &p.data;
    let r = view(d.x(), &[]);
    let g = KernelSpec::Gaussian { h: p.h };
    let s = KernelSpec::SoftmaxDot { tau: p.tau };
    let queries: Vec<f32> = grid(r)
        .into_iter()
        .step_by(GRID / (ERROR_QUERIES - 1))
        .collect();
    let kv = || (d.x().to_vec(), d.y().to_vec(), 1);
    let wide = KernelSpec::SoftmaxDot {
        tau: WIDE_TAU * p.tau,
    };
    let mut errors = Vec::new();
    for (k, color) in [(g, BLUE), (s, ORANGE), (wide, RED)] {
        errors.push(Series::feature_error(
            format!("{} vs exact {}", k.feature_map(), k.label()),
            color,
            (k, ERROR_SEEDS),
            &ERROR_FEATURES,
            queries.clone(),
            kv(),
        )?);
    }
    // The guide passes through the Gaussian point of the largest m.
    let ms: Vec<f32> = ERROR_FEATURES.iter().map(|&m| m as f32).collect();
    let (m1, e1) = errors[0].points[ERROR_FEATURES.len() - 1];
    let guide = Series::inverse_sqrt("∝ 1/√m".into(), DARK, &ms, e1 * m1.sqrt());
    let (lo, hi) = errors
        .iter()
        .chain([&guide])
        .flat_map(|s| s.points.iter().map(|&(_, e)| e))
        .filter(|&e| e > 0.0)
        .fold((f32::INFINITY, 0.0f32), |(a, b), e| (a.min(e), b.max(e)));
    // A logarithmic axis needs 0 < lo < hi, both finite: errors of exactly 0 (constant data)
    // are left out of the range (and drawn at its bottom edge); none positive gives 1e-8..1.
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (1e-8, 1.0) };
    let y_lo = (0.5 * lo).max(f32::MIN_POSITIVE);
    let y_range = (y_lo, (30.0 * hi).clamp(10.0 * y_lo, f32::MAX));
    let error_panel = Panel {
        id: "error".into(),
        x_label: "m, random features (log scale)".into(),
        y_label: format!("RMS error of ŷ, median of {ERROR_SEEDS} seeds"),
        x_range: (3.0, 6000.0),
        y_range: Some(y_range),
        queries: vec![],
        shade: None,
        log_log: true,
        series: errors.into_iter().chain([guide]).collect(),
    };
    Ok(Figure {
        name: "random-features".into(),
        title: "Random-feature attention against exact as m grows".into(),
        panels: vec![
            feature_panel(p, g, r)?,
            feature_panel(p, s, r)?,
            error_panel,
        ],
    })
}

/// How far the `bandwidth-selection` figure's under- and over-smoothed fits are from the chosen
/// bandwidth: `h/4` and `4h`.
pub const SMOOTHING_FACTOR: f32 = 4.0;
/// The `bandwidth-selection` figure's CV curve spans the chosen `h` times `1/30 … 30`, at this
/// many points evenly spaced in `ln h`.
pub const CV_POINTS: usize = 61;

/// The CV curve against `h` with the bandwidth that `nadaraya::fit::select_bandwidth` chooses
/// marked, and the fit at it beside an under- and an over-smoothed fit.
fn bandwidth_selection(p: &Params) -> Result<Figure, Error> {
    use nadaraya::fit::{Search, select_bandwidth};
    let d = &p.data;
    let (x, y) = (
        nadaraya::Rows::new(d.x(), 1)?,
        nadaraya::Rows::new(d.y(), 1)?,
    );
    let (_, sel) = select_bandwidth::<Gaussian>(x, y, &Search::default())?;
    let h = sel.bandwidth;
    let samples = || (d.x().to_vec(), d.y().to_vec(), 1);
    let hs: Vec<f32> = (0..CV_POINTS)
        .map(|k| {
            let t = -1.0 + 2.0 * k as f64 / (CV_POINTS - 1) as f64;
            (f64::from(h) * 30f64.powf(t)) as f32
        })
        .collect();
    let curve_cv = Series::cv("CV(h)".into(), Mark::Line, BLUE, &hs, samples())?;
    let chosen = Series::cv(
        format!("chosen h={} (cv_ls)", Short(h)),
        Mark::Points,
        RED,
        &[h],
        samples(),
    )?;
    let (lo, hi) = min_max(&curve_cv.points.iter().map(|p| p.1).collect::<Vec<_>>());
    // Logarithmic axes unless some score is 0 (data the smoother fits exactly), which a
    // logarithmic axis cannot show.
    let log_log = lo > 0.0 && lo.is_finite() && hi.is_finite();
    let cv_panel = Panel {
        id: "cv".into(),
        x_label: "bandwidth h".into(),
        y_label: "leave-one-out CV".into(),
        x_range: (hs[0], hs[CV_POINTS - 1]),
        y_range: log_log.then_some((lo / 1.2, hi * 1.2)),
        queries: Vec::new(),
        shade: None,
        log_log,
        series: vec![curve_cv, chosen],
    };
    let r = view(d.x(), &[]);
    let under = KernelSpec::Gaussian {
        h: h / SMOOTHING_FACTOR,
    };
    let best = KernelSpec::Gaussian { h };
    let over = KernelSpec::Gaussian {
        h: h * SMOOTHING_FACTOR,
    };
    Ok(Figure {
        name: "bandwidth-selection".into(),
        title: format!(
            "Bandwidth chosen by leave-one-out cross-validation: h={}",
            Short(h)
        ),
        panels: vec![
            cv_panel,
            prediction_panel(
                r,
                Vec::new(),
                vec![
                    Series::data("data (x_i, y_i)", d.x(), d.y()),
                    curve(
                        under,
                        format!("under-smoothed, h/4={}", Short(h / SMOOTHING_FACTOR)),
                        Mark::Line,
                        ORANGE,
                        d,
                        r,
                    )?,
                    curve(
                        best,
                        format!("chosen, h={}", Short(h)),
                        Mark::Line,
                        RED,
                        d,
                        r,
                    )?,
                    curve(
                        over,
                        format!("over-smoothed, 4h={}", Short(h * SMOOTHING_FACTOR)),
                        Mark::Line,
                        GREEN,
                        d,
                        r,
                    )?,
                ],
            ),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ranges_the_messages_quote_are_the_core_limits() {
        for (h, ok) in [
            (3.8e-20, false),
            (3.9e-20, true),
            (6.5e18, true),
            (6.6e18, false),
        ] {
            assert_eq!(check_bandwidth("--h", h).is_ok(), ok, "h = {h}");
        }
        for (t, ok) in [
            (2.9e-39, false),
            (3e-39, true),
            (8.5e37, true),
            (8.6e37, false),
        ] {
            assert_eq!(check_temperature("--tau", t, "τ = ").is_ok(), ok, "τ = {t}");
        }
    }
}

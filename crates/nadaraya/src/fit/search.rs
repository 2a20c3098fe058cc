//! Bandwidth selection: a rule of thumb, the bracket it implies, and a robust global search on
//! `log h` that is generic over the objective.

use super::Bandwidth;
use super::cv::{MAX_VALUE_WIDTH, check_samples, is_sorted_1d, loo_cv, loo_runs, loo_sorted};
use crate::softmax::diagnose;
use crate::{Error, Rows, Smoother, simd};

/// The most grid points [`minimize_log_bandwidth`] evaluates over its bracket
/// ([`Search::grid`] is clamped to it).
pub const MAX_GRID: usize = 64;

/// The most local minima of the grid [`minimize_log_bandwidth`] refines
/// ([`Search::refine`] is clamped to it).
pub const MAX_REFINE: usize = 8;

/// Extra grid steps taken beyond an edge of the bracket while the objective keeps falling there.
const EXTEND: usize = 8;

/// The smallest and largest valid Gaussian bandwidths ([`crate::Gaussian::new`]).
const H_MIN: f32 = 3.833_233_8e-20;
const H_MAX: f32 = 6.521_909e18;

/// Options of the bandwidth search: the bracket around the rule of thumb, the coarse grid, and
/// the refinement.
///
/// The search ([`minimize_log_bandwidth`]) evaluates the objective on [`grid`](Self::grid)
/// points evenly spaced in `ln h` over the bracket, extends the grid by up to 8 steps past an
/// edge while the objective keeps falling there, then refines the [`refine`](Self::refine)
/// lowest local minima of the grid by Brent's method (golden section with parabolic steps) on
/// `ln h` to within [`tolerance`](Self::tolerance), never exceeding
/// [`max_evaluations`](Self::max_evaluations) evaluations in all.
///
/// # Examples
/// ```
/// use nadaraya::fit::Search;
/// let s = Search { grid: 24, ..Search::default() };
/// assert_eq!(s.refine, Search::DEFAULT.refine);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Search {
    /// Points of the coarse grid over the bracket, evenly spaced in `ln h` (2 to [`MAX_GRID`]).
    pub grid: u32,
    /// The bracket starts this many decades below the rule of thumb.
    pub decades_below: f32,
    /// The bracket ends this many decades above the rule of thumb.
    pub decades_above: f32,
    /// How many of the grid's lowest local minima are refined (0 to [`MAX_REFINE`]).
    pub refine: u32,
    /// The refinement stops when the minimum is located to within this in `ln h` (a relative
    /// precision of `h`).
    pub tolerance: f64,
    /// The most objective evaluations in all.
    pub max_evaluations: u32,
}

impl Search {
    /// The defaults: a 16-point grid over `[h₀/10³, h₀·10²]` around the rule of thumb `h₀`, the
    /// two lowest local minima refined to `1e-3` in `ln h`, at most 80 evaluations.
    pub const DEFAULT: Self = Self {
        grid: 16,
        decades_below: 3.0,
        decades_above: 2.0,
        refine: 2,
        tolerance: 1e-3,
        max_evaluations: 80,
    };
}

impl Default for Search {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The outcome of a bandwidth search.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Selection {
    /// The bandwidth with the lowest objective seen.
    pub bandwidth: f32,
    /// The objective there (for [`select_bandwidth`]: the leave-one-out score [`loo_cv`]).
    pub cv: f64,
    /// How many times the objective was evaluated.
    pub evaluations: u32,
}

/// True for the errors that make one bandwidth infeasible rather than the whole problem
/// invalid: the search skips such a bandwidth.
fn infeasible(e: Error) -> bool {
    matches!(
        e,
        Error::InvalidBandwidth
            | Error::ScoreOverflow
            | Error::Empty
            | Error::NoSupport
            | Error::Overflow
    )
}

/// The objective with its bookkeeping: evaluations, budget, the best point seen.
struct Tracker<F> {
    f: F,
    evaluations: u32,
    budget: u32,
    best: Option<(f32, f64)>,
    skipped: Option<Error>,
}

impl<F: FnMut(f32) -> Result<f64, Error>> Tracker<F> {
    fn exhausted(&self) -> bool {
        self.evaluations >= self.budget
    }

    /// The objective at `h = exp(t)`; `+inf` for an infeasible bandwidth.
    fn eval(&mut self, t: f64) -> Result<f64, Error> {
        let h = libm::exp(t) as f32;
        if !(h.is_finite() && h > 0.0) {
            self.skipped.get_or_insert(Error::InvalidBandwidth);
            return Ok(f64::INFINITY);
        }
        self.evaluations = self.evaluations.saturating_add(1);
        match (self.f)(h) {
            Ok(v) if v.is_finite() => {
                if self.best.is_none_or(|(_, b)| v < b) {
                    self.best = Some((h, v));
                }
                Ok(v)
            }
            Ok(_) => Ok(f64::INFINITY),
            Err(e) if infeasible(e) => {
                self.skipped.get_or_insert(e);
                Ok(f64::INFINITY)
            }
            Err(e) => Err(e),
        }
    }

    /// Brent's minimisation (golden section and parabolic interpolation, after R. P. Brent,
    /// "Algorithms for Minimization without Derivatives", 1973, ch. 5) of the objective on
    /// `[a, b]` in `t = ln h`, from the point `x` whose value `fx` is known.
    fn brent(&mut self, mut a: f64, mut b: f64, x: f64, fx: f64, tol: f64) -> Result<(), Error> {
        const GOLD: f64 = 0.381_966_011_250_105_1;
        let (mut x, mut w, mut v) = (x, x, x);
        let (mut fx, mut fw, mut fv) = (fx, fx, fx);
        let (mut d, mut e) = (0.0f64, 0.0f64);
        let tol1 = tol.max(1e-12);
        let tol2 = 2.0 * tol1;
        while !self.exhausted() {
            let xm = 0.5 * (a + b);
            if (x - xm).abs() <= tol2 - 0.5 * (b - a) {
                break;
            }
            let mut golden = true;
            if e.abs() > tol1 {
                let r = (x - w) * (fx - fv);
                let mut q = (x - v) * (fx - fw);
                let mut p = (x - v) * q - (x - w) * r;
                q = 2.0 * (q - r);
                if q > 0.0 {
                    p = -p;
                }
                q = q.abs();
                let etemp = e;
                if p.abs() < (0.5 * q * etemp).abs() && p > q * (a - x) && p < q * (b - x) {
                    e = d;
                    d = p / q;
                    let u = x + d;
                    if u - a < tol2 || b - u < tol2 {
                        d = if xm >= x { tol1 } else { -tol1 };
                    }
                    golden = false;
                }
            }
            if golden {
                e = if x >= xm { a - x } else { b - x };
                d = GOLD * e;
            }
            let u = if d.abs() >= tol1 {
                x + d
            } else if d >= 0.0 {
                x + tol1
            } else {
                x - tol1
            };
            let fu = self.eval(u)?;
            if fu <= fx {
                if u >= x {
                    a = x;
                } else {
                    b = x;
                }
                (v, fv, w, fw, x, fx) = (w, fw, x, fx, u, fu);
            } else {
                if u < x {
                    a = u;
                } else {
                    b = u;
                }
                if fu <= fw || w == x {
                    (v, fv, w, fw) = (w, fw, u, fu);
                } else if fu <= fv || v == x || v == w {
                    (v, fv) = (u, fu);
                }
            }
        }
        Ok(())
    }
}

/// Finds the bandwidth `h` in (about) `[lo, hi]` that minimises `objective(h)`: a global search
/// on `ln h` that finds the lowest basin of a multimodal curve as a fine grid would.
///
/// 1. The objective is evaluated on [`Search::grid`] points evenly spaced in `ln h` from `lo` to
///    `hi`; where the lowest point is an edge, the grid is extended past it by up to 8 steps
///    while the objective keeps falling (a curve whose minimum lies outside the bracket).
/// 2. The [`Search::refine`] lowest local minima of the grid are refined by Brent's method
///    between their neighbours, to within [`Search::tolerance`] in `ln h`.
/// 3. The best point seen is returned, with the number of evaluations.
///
/// A bandwidth whose objective fails with [`Error::InvalidBandwidth`], [`Error::ScoreOverflow`],
/// [`Error::Empty`], [`Error::NoSupport`] (a compact kernel too narrow for some sample) or
/// [`Error::Overflow`] is skipped as infeasible (for example a bandwidth
/// that the kernel family does not accept); any other error ends the search and is returned.
///
/// # Errors
/// - [`Error::InvalidBandwidth`] if `lo` or `hi` is not finite and `> 0`, or `lo > hi`;
/// - the first error of the objective that is not one of the five above;
/// - if no bandwidth was feasible, the first error that made one infeasible.
///
/// # Examples
/// ```
/// use nadaraya::fit::{Search, minimize_log_bandwidth};
/// // Two basins in ln h; the deeper one is at h = 8.
/// let f = |h: f32| {
///     let t = f64::from(h).ln();
///     Ok(1.0 - (-(t - 0.5f64.ln()).powi(2)).exp() - 1.5 * (-(t - 8f64.ln()).powi(2)).exp())
/// };
/// let s = minimize_log_bandwidth(f, 1e-2, 1e3, &Search::default())?;
/// assert!((s.bandwidth / 8.0 - 1.0).abs() < 1e-2, "{s:?}");
/// assert!(s.evaluations <= 60);
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn minimize_log_bandwidth(
    objective: impl FnMut(f32) -> Result<f64, Error>,
    lo: f32,
    hi: f32,
    search: &Search,
) -> Result<Selection, Error> {
    if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi) {
        return Err(Error::InvalidBandwidth);
    }
    let mut tr = Tracker {
        f: objective,
        evaluations: 0,
        budget: search.max_evaluations.max(1),
        best: None,
        skipped: None,
    };
    let (t_lo, t_hi) = (libm::log(f64::from(lo)), libm::log(f64::from(hi)));
    let n = if lo == hi {
        1
    } else {
        (search.grid as usize).clamp(2, MAX_GRID)
    };
    let step = if n > 1 {
        (t_hi - t_lo) / (n - 1) as f64
    } else {
        1.0
    };
    // The grid sits at EXTEND.. in `ts`/`fs`, with room for the extensions either side.
    let mut ts = [0.0f64; MAX_GRID + 2 * EXTEND];
    let mut fs = [f64::INFINITY; MAX_GRID + 2 * EXTEND];
    let (mut start, mut end) = (EXTEND, EXTEND + n - 1);
    for k in 0..n {
        if tr.exhausted() {
            end = EXTEND + k.saturating_sub(1);
            break;
        }
        let t = if k + 1 == n {
            t_hi
        } else {
            t_lo + step * k as f64
        };
        if let (Some(ts), Some(fs)) = (ts.get_mut(EXTEND + k), fs.get_mut(EXTEND + k)) {
            *ts = t;
            *fs = tr.eval(t)?;
        }
    }
    if n > 1 {
        extend(&mut tr, &mut ts, &mut fs, &mut start, &mut end, step)?;
        refine(&mut tr, &ts, &fs, start, end, search)?;
    }
    match tr.best {
        Some((bandwidth, cv)) => Ok(Selection {
            bandwidth,
            cv,
            evaluations: tr.evaluations,
        }),
        None => Err(tr.skipped.unwrap_or(Error::InvalidBandwidth)),
    }
}

/// The lowest finite value of `fs[start..=end]` and its index.
fn lowest(fs: &[f64], start: usize, end: usize) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (k, f) in fs.iter().enumerate().take(end + 1).skip(start) {
        if f.is_finite() && best.is_none_or(|(_, b)| *f < b) {
            best = Some((k, *f));
        }
    }
    best.map(|(k, _)| k)
}

/// Extends the grid past an edge holding its lowest value while the objective keeps falling.
fn extend<F: FnMut(f32) -> Result<f64, Error>>(
    tr: &mut Tracker<F>,
    ts: &mut [f64],
    fs: &mut [f64],
    start: &mut usize,
    end: &mut usize,
    step: f64,
) -> Result<(), Error> {
    for _ in 0..EXTEND {
        if tr.exhausted() {
            break;
        }
        let Some(k) = lowest(fs, *start, *end) else {
            break;
        };
        let (edge, next) = if k == *start && *start > 0 {
            (k, k - 1)
        } else if k == *end && *end + 1 < ts.len() {
            (k, k + 1)
        } else {
            break;
        };
        let (Some(&te), Some(&fe)) = (ts.get(edge), fs.get(edge)) else {
            break;
        };
        let t = if next < edge { te - step } else { te + step };
        let f = tr.eval(t)?;
        if let (Some(tn), Some(fnext)) = (ts.get_mut(next), fs.get_mut(next)) {
            *tn = t;
            *fnext = f;
        }
        if next < edge {
            *start = next;
        } else {
            *end = next;
        }
        // A plateau (a curve flat past the bracket) is not worth following.
        if f.is_nan() || f >= fe - 1e-9 * fe.abs() {
            break;
        }
    }
    Ok(())
}

/// Refines the lowest local minima of the grid `fs[start..=end]` by Brent's method.
fn refine<F: FnMut(f32) -> Result<f64, Error>>(
    tr: &mut Tracker<F>,
    ts: &[f64],
    fs: &[f64],
    start: usize,
    end: usize,
    search: &Search,
) -> Result<(), Error> {
    let want = (search.refine as usize).min(MAX_REFINE);
    let mut chosen = [usize::MAX; MAX_REFINE];
    let mut count = 0usize;
    // Local minima: strictly below the left neighbour (so a plateau counts once), not above the
    // right one; kept sorted by value, the lowest `want`.
    for k in start..=end {
        let Some(&f) = fs.get(k) else { break };
        let left = k == start || fs.get(k - 1).is_some_and(|&l| f < l);
        let right = k == end || fs.get(k + 1).is_some_and(|&r| f <= r);
        if !(f.is_finite() && left && right) {
            continue;
        }
        let mut pos = count.min(want);
        while pos > 0
            && chosen
                .get(pos - 1)
                .and_then(|&c| fs.get(c))
                .is_some_and(|&c| f < c)
        {
            pos -= 1;
        }
        if pos < want {
            let last = want.min(count + 1);
            let mut j = last.saturating_sub(1);
            while j > pos {
                if let Some(&prev) = chosen.get(j - 1)
                    && let Some(slot) = chosen.get_mut(j)
                {
                    *slot = prev;
                }
                j -= 1;
            }
            if let Some(slot) = chosen.get_mut(pos) {
                *slot = k;
            }
            count = last;
        }
    }
    for &k in chosen.iter().take(count) {
        let (Some(&x), Some(&fx)) = (ts.get(k), fs.get(k)) else {
            continue;
        };
        let a = ts.get(k.saturating_sub(1).max(start)).copied().unwrap_or(x);
        let b = ts.get((k + 1).min(end)).copied().unwrap_or(x);
        if b > a {
            tr.brent(a, b, x, fx, search.tolerance)?;
        }
    }
    Ok(())
}

/// The normal-reference rule of thumb for a scalar bandwidth over the locations `x` (`N` rows of
/// `d`): `h₀ = 1.06 · σ · N^(−1/(d+4))`, where `σ² = (1/d) Σ_k var(x_{·k})` is the mean sample
/// variance of the coordinates (Silverman's rule for `d = 1`; statsmodels' `normal_reference`,
/// the start of its `cv_ls`, per coordinate). Locations that do not vary give `h₀ = 1` (every
/// bandwidth then gives the same fit); the result is clamped to the valid Gaussian bandwidths.
///
/// # Errors
/// [`Error::Empty`] for fewer than two rows, [`Error::NonFinite`] if a coordinate is not finite.
///
/// # Examples
/// ```
/// use nadaraya::{Rows, fit};
/// let x = Rows::from_arrays(&[[0.0], [1.0], [2.0], [3.0]]);
/// let h = fit::rule_of_thumb(x)?;
/// // σ² = 5/3, N = 4: 1.06 · 1.291 · 4^(−1/5) = 1.0372
/// assert!((h - 1.0372).abs() < 1e-3);
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn rule_of_thumb(x: Rows<'_>) -> Result<f32, Error> {
    let n = x.len();
    if n < 2 {
        return Err(Error::Empty);
    }
    if !simd::all_finite(x.as_slice()) {
        return Err(Error::NonFinite);
    }
    let d = x.width();
    let mut var = 0.0f64;
    for k in 0..d {
        var += column_variance([x.as_slice(), &[]], d, k);
    }
    Ok(normal_reference(libm::sqrt(var / d as f64), n, d))
}

/// `1.06 σ N^(−1/(d+4))`, or 1 for `σ = 0`, clamped to the valid Gaussian bandwidths.
fn normal_reference(sigma: f64, n: usize, d: usize) -> f32 {
    let h = 1.06 * sigma * libm::pow(n as f64, -1.0 / (d as f64 + 4.0));
    if h.is_nan() || h <= 0.0 {
        return 1.0;
    }
    (h as f32).clamp(H_MIN, H_MAX)
}

/// The sample variance (divisor `N − 1`) of column `k` of the rows (of width `d`) of two runs,
/// two-pass in `f64`.
pub(crate) fn column_variance(runs: [&[f32]; 2], d: usize, k: usize) -> f64 {
    let rows = || runs.into_iter().flat_map(move |r| r.chunks_exact(d.max(1)));
    let col = |r: &[f32]| f64::from(r.get(k).copied().unwrap_or(0.0));
    let n = rows().count() as f64;
    let mean = rows().map(col).sum::<f64>() / n.max(1.0);
    let ss: f64 = rows().map(|r| (col(r) - mean) * (col(r) - mean)).sum();
    ss / (n - 1.0).max(1.0)
}

/// The bracket `[h₀ / 10^decades_below, h₀ · 10^decades_above]` of the search around the rule
/// of thumb `h₀`, clamped to the valid Gaussian bandwidths.
///
/// # Examples
/// ```
/// use nadaraya::fit::{Search, bracket};
/// let (lo, hi) = bracket(1.0, &Search::default());
/// assert!((lo - 1e-3).abs() < 1e-9 && (hi - 1e2).abs() < 1e-4);
/// ```
#[must_use]
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn bracket(h0: f32, search: &Search) -> (f32, f32) {
    let h0 = f64::from(h0);
    let lo = h0 * libm::pow(10.0, -f64::from(search.decades_below));
    let hi = h0 * libm::pow(10.0, f64::from(search.decades_above));
    let clamp = |h: f64| {
        let h = h as f32;
        if h > H_MIN && h < H_MAX {
            h
        } else if h >= H_MAX {
            H_MAX
        } else {
            H_MIN
        }
    };
    let (lo, hi) = (clamp(lo), clamp(hi));
    if lo <= hi { (lo, hi) } else { (hi, lo) }
}

/// Chooses the bandwidth of the kernel family `K` by least-squares leave-one-out
/// cross-validation ([`loo_cv`]): the rule of thumb ([`rule_of_thumb`]), the [`bracket`] around
/// it, and the global search [`minimize_log_bandwidth`]. Returns the kernel at the chosen
/// bandwidth and the [`Selection`].
///
/// # Errors
/// - [`Error::Shape`], [`Error::CapacityExceeded`], [`Error::Empty`] (fewer than two samples),
///   [`Error::NonFinite`] as [`loo_cv`], checked before the search;
/// - if no bandwidth of the bracket was feasible, the error that made the first one infeasible
///   (for example [`Error::ScoreOverflow`] for locations so far apart that every score
///   overflows).
///
/// # Examples
/// ```
/// use nadaraya::{Gaussian, Rows, fit};
/// let xs: Vec<[f32; 1]> = (0..100).map(|i| [i as f32 / 100.0]).collect();
/// let ys: Vec<[f32; 1]> = xs.iter().map(|x| [(6.0 * x[0]).sin()]).collect();
/// let (k, sel) = fit::select_bandwidth::<Gaussian>(
///     Rows::from_arrays(&xs),
///     Rows::from_arrays(&ys),
///     &fit::Search::default(),
/// )?;
/// assert_eq!(k.bandwidth(), sel.bandwidth);
/// assert!(sel.cv < 1e-3);
/// # Ok::<(), nadaraya::Error>(())
/// ```
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn select_bandwidth<K: Bandwidth>(
    x: Rows<'_>,
    y: Rows<'_>,
    search: &Search,
) -> Result<(K, Selection), Error> {
    check_samples(x, y)?;
    let (lo, hi) = bracket(rule_of_thumb(x)?, search);
    let sorted = K::RADIAL && x.width() == 1 && is_sorted_1d(x.as_slice());
    let sel = minimize_log_bandwidth(
        |h| {
            let k = K::with_bandwidth(h)?;
            if sorted {
                loo_sorted(&k, x.as_slice(), y.as_slice(), y.width())
                    .map_err(|e| diagnose(e, &[x.as_slice(), y.as_slice()]))
            } else {
                loo_cv(&k, x, y)
            }
        },
        lo,
        hi,
        search,
    )?;
    Ok((K::with_bandwidth(sel.bandwidth)?, sel))
}

impl<K: Bandwidth, const N: usize, const D: usize, const DV: usize> Smoother<K, N, D, DV> {
    /// Chooses the bandwidth of the smoother's kernel family by leave-one-out cross-validation
    /// over its stored samples, as [`select_bandwidth`] does on the same samples as slices, and
    /// sets the kernel to it. The samples stay.
    ///
    /// # Errors
    /// [`Error::Empty`] for fewer than two stored samples, [`Error::CapacityExceeded`] if `DV` is
    /// wider than [`MAX_VALUE_WIDTH`], and as [`select_bandwidth`]; on error the kernel is
    /// unchanged.
    ///
    /// # Examples
    /// ```
    /// use nadaraya::{Gaussian, Smoother, fit::Search};
    /// let mut s: Smoother<Gaussian, 64, 1, 1> = Smoother::new(Gaussian::new(1.0)?);
    /// for i in 0..64 {
    ///     let x = i as f32 / 64.0;
    ///     s.push_evicting([x], [(6.0 * x).sin()]).map_err(|r| r.error)?;
    /// }
    /// let sel = s.select_bandwidth(&Search::default())?;
    /// assert_eq!(s.kernel().bandwidth(), sel.bandwidth);
    /// # Ok::<(), nadaraya::Error>(())
    /// ```
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn select_bandwidth(&mut self, search: &Search) -> Result<Selection, Error> {
        if DV > MAX_VALUE_WIDTH {
            return Err(Error::CapacityExceeded);
        }
        if self.len() < 2 {
            return Err(Error::Empty);
        }
        let runs = self.runs();
        let (a, b) = (runs[0].0, runs[1].0);
        let h0 = rule_of_thumb_runs::<D>(a, b)?;
        let (lo, hi) = bracket(h0, search);
        let sel = minimize_log_bandwidth(
            |h| {
                let k = K::with_bandwidth(h)?;
                loo_runs(&k, runs, D, DV)
            },
            lo,
            hi,
            search,
        )?;
        let k = K::with_bandwidth(sel.bandwidth)?;
        self.set_kernel(k);
        Ok(sel)
    }
}

/// [`rule_of_thumb`] over two runs of `D`-wide rows (finite: a `Smoother`'s store).
fn rule_of_thumb_runs<const D: usize>(a: &[f32], b: &[f32]) -> Result<f32, Error> {
    let n = a.len() / D + b.len() / D;
    if n < 2 {
        return Err(Error::Empty);
    }
    let mut var = 0.0f64;
    for k in 0..D {
        var += column_variance([a, b], D, k);
    }
    Ok(normal_reference(libm::sqrt(var / D as f64), n, D))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::cv::tests::{data, reference_loo};
    use crate::testing::lcg;
    use crate::{Gaussian, Rows};
    use std::vec::Vec;

    /// Two-scale data: a slow wave and a fast one of amplitude `fast`, noise of `noise`.
    fn two_scale(seed: u64, n: usize, fast: f32, noise: f32) -> (Vec<f32>, Vec<f32>) {
        let mut r = lcg(seed);
        let x: Vec<f32> = (0..n).map(|_| r()).collect();
        let tau = core::f32::consts::TAU;
        let y = x
            .iter()
            .map(|&x| (tau * x).sin() + fast * (tau * 12.0 * x).sin() + noise * (r() - 0.5))
            .collect();
        (x, y)
    }

    /// The lowest point of a fine grid (`points` bandwidths evenly spaced in `ln h` over
    /// `[lo, hi]`) of the plain `f64` objective, and its value.
    fn fine_grid(x: &[f32], d: usize, y: &[f32], lo: f64, hi: f64, points: usize) -> (f64, f64) {
        (0..points)
            .map(|k| {
                let t = lo.ln() + (hi.ln() - lo.ln()) * k as f64 / (points - 1) as f64;
                let h = f64::from(t.exp() as f32);
                (h, reference_loo(h, x, d, y, 1))
            })
            .fold((0.0, f64::INFINITY), |a, b| if b.1 < a.1 { b } else { a })
    }

    /// The selector against a brute-force fine grid of the plain `f64` objective (2000
    /// bandwidths over ten times the bracket either side): the same basin, and a CV within
    /// 1e-6 relative of the grid's best (or below it), on smooth, two-scale (bimodal CV curves,
    /// with either basin the deeper), noise-free, pure-noise and 2-D data. Checked to fail with
    /// `refine: 1` (the bimodal case with the nearly equal basins picks the wrong one) and with
    /// `tolerance: 0.1`.
    #[test]
    fn selector_matches_a_fine_f64_grid() {
        let mut r = lcg(11);
        let noise_x: Vec<f32> = (0..120).map(|_| r()).collect();
        let noise_y: Vec<f32> = (0..120).map(|_| r()).collect();
        let exact_x: Vec<f32> = (0..100).map(|i| i as f32 / 100.0).collect();
        let exact_y: Vec<f32> = exact_x.iter().map(|x| (3.0 * x).sin()).collect();
        let mut cases: Vec<(&str, Vec<f32>, usize, Vec<f32>)> = std::vec![
            ("smooth", data(1, 150, 1, 1).0, 1, data(1, 150, 1, 1).1),
            ("noise", noise_x, 1, noise_y),
            ("exact", exact_x, 1, exact_y),
            ("2-d", data(2, 120, 2, 1).0, 2, data(2, 120, 2, 1).1),
        ];
        for (name, fast, noise) in [
            ("bimodal near tie", 0.35, 3.5),
            ("bimodal", 0.3, 3.5),
            ("bimodal small", 0.5, 3.5),
        ] {
            let (x, y) = two_scale(5, 200, fast, noise);
            cases.push((name, x, 1, y));
        }
        let search = Search::default();
        for (name, x, d, y) in &cases {
            let (xr, yr) = (Rows::new(x, *d).unwrap(), Rows::new(y, 1).unwrap());
            let (k, sel) = select_bandwidth::<Gaussian>(xr, yr, &search).unwrap();
            assert_eq!(k.bandwidth(), sel.bandwidth);
            let (lo, hi) = bracket(rule_of_thumb(xr).unwrap(), &search);
            let (gh, gcv) = fine_grid(x, *d, y, f64::from(lo) / 10.0, f64::from(hi) * 10.0, 2000);
            let ours = reference_loo(f64::from(sel.bandwidth), x, *d, y, 1);
            std::println!(
                "{name}: ours h {:.6e} cv {ours:.9e} ({} evaluations), grid h {gh:.6e} cv {gcv:.9e}",
                sel.bandwidth,
                sel.evaluations
            );
            assert!(ours <= gcv * (1.0 + 1e-6), "{name}: {ours} vs grid {gcv}");
            assert!(
                (sel.cv - ours).abs() <= 1e-5 * ours,
                "{name}: reported {} vs {ours}",
                sel.cv
            );
            // The same basin, unless the curve is flat there (pure noise: a plateau at large h).
            if gcv < 0.999 * reference_loo(1e6, x, *d, y, 1) {
                let gap = (f64::from(sel.bandwidth) / gh).ln().abs();
                assert!(gap < 0.3, "{name}: h {} vs grid {gh}", sel.bandwidth);
            }
            assert!(
                sel.evaluations <= 60,
                "{name}: {} evaluations",
                sel.evaluations
            );
        }
    }

    /// The smoother's ring (wrapped at every position) selects what the slices select.
    #[test]
    fn smoother_selects_as_the_slices() {
        let (x, y) = two_scale(3, 100, 0.35, 3.5);
        let search = Search::default();
        let (_, want) = select_bandwidth::<Gaussian>(
            Rows::new(&x, 1).unwrap(),
            Rows::new(&y, 1).unwrap(),
            &search,
        )
        .unwrap();
        for wrap in [0, 1, 37, 64, 99] {
            let mut s: crate::Smoother<Gaussian, 100, 1, 1> =
                crate::Smoother::new(Gaussian::new(1.0).unwrap());
            // Fill with junk first so the ring wraps at `wrap`.
            for _ in 0..wrap {
                s.push_evicting([0.0], [0.0]).unwrap();
            }
            for (a, b) in x.iter().zip(&y) {
                s.push_evicting([*a], [*b]).unwrap();
            }
            let got = s.select_bandwidth(&search).unwrap();
            assert_eq!(s.kernel().bandwidth(), got.bandwidth);
            assert!(
                (got.bandwidth / want.bandwidth - 1.0).abs() < 1e-3,
                "wrap {wrap}: {got:?} vs {want:?}"
            );
            assert!(
                (got.cv - want.cv).abs() < 1e-6 * want.cv,
                "wrap {wrap}: {got:?} vs {want:?}"
            );
        }
        let mut one: crate::Smoother<Gaussian, 4, 1, 1> =
            crate::Smoother::new(Gaussian::new(1.0).unwrap());
        one.push([1.0], [1.0]).unwrap();
        assert_eq!(one.select_bandwidth(&search), Err(Error::Empty));
        assert_eq!(one.kernel().bandwidth(), 1.0);
    }

    #[test]
    fn search_edges_and_errors() {
        let s = Search::default();
        for (lo, hi) in [
            (0.0, 1.0),
            (1.0, 0.5),
            (f32::NAN, 1.0),
            (1.0, f32::INFINITY),
        ] {
            assert_eq!(
                minimize_log_bandwidth(|_| Ok(1.0), lo, hi, &s),
                Err(Error::InvalidBandwidth)
            );
        }
        // Every bandwidth infeasible: the first reason.
        assert_eq!(
            minimize_log_bandwidth(|_| Err(Error::ScoreOverflow), 1.0, 2.0, &s),
            Err(Error::ScoreOverflow)
        );
        // A fatal error ends the search.
        let mut calls = 0;
        let r = minimize_log_bandwidth(
            |_| {
                calls += 1;
                Err(Error::NonFinite)
            },
            1.0,
            2.0,
            &s,
        );
        assert_eq!((r, calls), (Err(Error::NonFinite), 1));
        // A single point, a budget.
        let one = minimize_log_bandwidth(|h| Ok(f64::from(h)), 3.0, 3.0, &s).unwrap();
        assert_eq!((one.bandwidth, one.evaluations), (3.0, 1));
        let tight = Search {
            max_evaluations: 5,
            ..s
        };
        let r = minimize_log_bandwidth(|h| Ok((f64::from(h) - 2.0).powi(2)), 0.1, 10.0, &tight);
        assert_eq!(r.unwrap().evaluations, 5);
        // A minimum beyond the bracket is followed past its edge.
        let far = minimize_log_bandwidth(
            |h| Ok((f64::from(h).ln() - 30f64.ln()).powi(2)),
            0.1,
            10.0,
            &s,
        )
        .unwrap();
        assert!((far.bandwidth / 30.0 - 1.0).abs() < 1e-2, "{far:?}");
        assert_eq!(
            rule_of_thumb(Rows::new(&[1.0], 1).unwrap()),
            Err(Error::Empty)
        );
        assert_eq!(
            rule_of_thumb(Rows::new(&[1.0, f32::NAN], 1).unwrap()),
            Err(Error::NonFinite)
        );
        assert_eq!(rule_of_thumb(Rows::new(&[2.0, 2.0], 1).unwrap()), Ok(1.0));
    }
}

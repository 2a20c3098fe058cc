//! `nadaraya fit`: the bandwidth(s) of a CSV file's data chosen by least-squares leave-one-out
//! cross-validation (cv_ls), and the fitted model that `nadaraya predict` evaluates.

use std::path::PathBuf;
use std::time::Instant;

use nadaraya::fit::{self as corefit, Bandwidth, Search};
use nadaraya::{Epanechnikov, Gaussian, Kernel, Mask, Rows, RowsMut, Tricube, Uniform};
use nadaraya_plot::{TABLE_RULES, Table};

use crate::Error;

/// The kernel families `--kernel` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KernelName {
    /// `exp(-u²/2)`: every sample has some weight.
    Gaussian,
    /// `1 - u²` on `|u| < 1`.
    Epanechnikov,
    /// `(1 - |u|³)³` on `|u| < 1` (LOESS).
    Tricube,
    /// `1` on `|u| < 1`.
    Uniform,
}

impl KernelName {
    /// The name as `--kernel` spells it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gaussian => "gaussian",
            Self::Epanechnikov => "epanechnikov",
            Self::Tricube => "tricube",
            Self::Uniform => "uniform",
        }
    }
}

/// The options of `nadaraya fit`.
#[derive(Clone, Debug, clap::Args)]
#[command(after_long_help = TABLE_RULES)]
pub struct FitArgs {
    /// The data: a CSV file whose last column is y and whose other columns are x (`--help`
    /// gives the rules).
    pub file: PathBuf,
    /// One bandwidth per input column (a product Gaussian kernel: a diagonal metric) instead of
    /// one for all.
    #[arg(long)]
    pub per_dim: bool,
    /// Local-linear regression instead of Nadaraya–Watson (local-constant) smoothing.
    #[arg(long)]
    pub local_linear: bool,
    /// The kernel family.
    #[arg(long, value_enum, default_value_t = KernelName::Gaussian)]
    pub kernel: KernelName,
    /// Also print the CV curve: `curve h_1 … h_D cv` at this many bandwidths, the chosen ones
    /// times factors log-spaced from 1/10 to 10.
    #[arg(long, value_name = "POINTS")]
    pub curve: Option<usize>,
}

/// A fitted smoother: the data, the method and the bandwidth(s).
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// The kernel family.
    pub kernel: KernelName,
    /// Local-linear (true) or Nadaraya–Watson (false).
    pub local_linear: bool,
    /// One bandwidth for all columns, or one per column.
    pub bandwidths: Vec<f32>,
}

/// What the selection found.
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    /// The selected model.
    pub model: Model,
    /// The mean squared leave-one-out error at the selected bandwidth(s).
    pub cv: f64,
    /// How many objective evaluations the search made, where the selector counts them (not
    /// [`corefit::select_bandwidths`]).
    pub evaluations: Option<u32>,
}

/// The columns of the row-major `x` divided by their bandwidths `h` (one per column, or one for
/// all): a Gaussian of bandwidth 1 on the scaled inputs is the product Gaussian with bandwidths
/// `h_j` on the inputs, and local-linear fits are unchanged by the scaling.
#[must_use]
pub fn scaled(x: &[f32], h: &[f32]) -> Vec<f32> {
    let d = h.len().max(1);
    x.iter()
        .enumerate()
        .map(|(i, &v)| (f64::from(v) / f64::from(h[i % d])) as f32)
        .collect()
}

fn option(m: &str) -> Error {
    Error::Option(m.to_owned())
}

/// Calls `f` with the kernel of family `name` and bandwidth `h`.
fn with_kernel<R>(
    name: KernelName,
    h: f32,
    f: impl FnOnce(&dyn Kernel) -> Result<R, Error>,
) -> Result<R, Error> {
    match name {
        KernelName::Gaussian => f(&Gaussian::with_bandwidth(h)?),
        KernelName::Epanechnikov => f(&Epanechnikov::with_bandwidth(h)?),
        KernelName::Tricube => f(&Tricube::with_bandwidth(h)?),
        KernelName::Uniform => f(&Uniform::with_bandwidth(h)?),
    }
}

/// The objective of one method at one kernel: Nadaraya–Watson's [`corefit::loo_cv`] or
/// [`corefit::loo_cv_local_linear`].
fn objective(
    kernel: &dyn Kernel,
    x: Rows,
    y: Rows,
    local_linear: bool,
) -> Result<f64, nadaraya::Error> {
    if local_linear {
        corefit::loo_cv_local_linear(kernel, x, y)
    } else {
        corefit::loo_cv(kernel, x, y)
    }
}

/// The objective as a search sees it: a bandwidth at which some leave-one-out fit does not
/// exist scores `+inf`, never the minimum, as [`corefit::select_bandwidth_local_linear`] scores
/// it: a singular local-linear design (too few samples with weight around some `x_i`), or a
/// compact kernel with no other sample in the support of some `x_i`.
fn searched(r: Result<f64, nadaraya::Error>) -> Result<f64, nadaraya::Error> {
    match r {
        Err(nadaraya::Error::Singular | nadaraya::Error::NoSupport) => Ok(f64::INFINITY),
        other => other,
    }
}

/// The one-bandwidth selection of family `K` with the family's own search
/// ([`Bandwidth::SEARCH`]): [`corefit::select_bandwidth`] or
/// [`corefit::select_bandwidth_local_linear`] (with `search`).
fn select_one<K: Bandwidth>(
    x: Rows,
    y: Rows,
    local_linear: bool,
    search: &Search,
) -> Result<corefit::Selection, nadaraya::Error> {
    if local_linear {
        return Ok(corefit::select_bandwidth_local_linear::<K>(x, y, search)?.1);
    }
    Ok(corefit::select_bandwidth::<K>(x, y, &K::SEARCH)?.1)
}

/// One-column samples sorted by location (then by response, bit patterns in total order): a
/// canonical order, whatever the file's, in which the core's selector takes its windowed path
/// ([`Bandwidth::RADIAL`]).
fn sorted_samples(x: &[f32], y: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut pairs: Vec<(f32, f32)> = x.iter().copied().zip(y.iter().copied()).collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    pairs.into_iter().unzip()
}

/// The widest bracket a per-dimension coordinate search looks in: from 1/100 of the starting
/// bandwidth to 10⁷ times it (an irrelevant dimension ends near the top: its CV is flat there).
const PER_DIM_DECADES: (f32, f32) = (2.0, 7.0);

/// Selects the bandwidth(s) of `table` by cv_ls.
///
/// One bandwidth: [`corefit::select_bandwidth`] (Gaussian Nadaraya–Watson) or
/// [`corefit::select_bandwidth_local_linear`] (`local_linear`, any family); Nadaraya–Watson
/// searches with the family's [`Bandwidth::SEARCH`] (a finer grid for the compact families), on
/// one-column samples sorted by location (a canonical order, and the core's windowed path).
///
/// Per dimension (the product Gaussian kernel, `h_j` for column `j`): Nadaraya–Watson by the
/// core's [`corefit::select_bandwidths`]. Local-linear: from the one common bandwidth,
/// coordinate searches with [`corefit::minimize_log_bandwidth`] over each `ln h_j` in turn,
/// from `h_j/100` to `10⁷·h_j`, then a decade either side (up to three sweeps, a move kept only
/// if it lowers the CV), the objective evaluated on the columns scaled by `1/h_j` with a Gaussian
/// of
/// bandwidth 1. Exact for local-linear too: its fit is unchanged by scaling the inputs.
///
/// # Errors
/// [`Error::Option`] for `per_dim` with a compact kernel; [`Error::Core`] if the core rejects
/// the data (fewer than two samples, a value out of range) or finds no bandwidth whose
/// objective is finite ([`nadaraya::Error::Singular`], [`nadaraya::Error::NoSupport`]).
pub fn select(
    table: &Table,
    kernel: KernelName,
    per_dim: bool,
    local_linear: bool,
) -> Result<Fit, Error> {
    let d = table.dims();
    let sorted;
    let (x, y) = if d == 1 && !local_linear {
        sorted = sorted_samples(table.x(), table.y());
        (Rows::new(&sorted.0, 1)?, Rows::new(&sorted.1, 1)?)
    } else {
        (Rows::new(table.x(), d)?, Rows::new(table.y(), 1)?)
    };
    let search = Search::default();
    if per_dim && kernel != KernelName::Gaussian {
        return Err(option(
            "`--per-dim` is a product Gaussian kernel: it needs `--kernel gaussian`",
        ));
    }
    if per_dim && d > 1 && !local_linear {
        // The core's selector: per-column rules of thumb, one common factor, then BFGS on
        // ln h with the gradient from the same pass (it does not count its evaluations). It
        // does its own isotropic pre-search, so the one-bandwidth selection is not run first.
        let mut h = vec![0.0f32; d];
        let cv = corefit::select_bandwidths(x, y, &mut h, &search)?;
        return Ok(Fit {
            model: Model {
                kernel,
                local_linear,
                bandwidths: h,
            },
            cv,
            evaluations: None,
        });
    }
    let sel = match kernel {
        KernelName::Gaussian => select_one::<Gaussian>(x, y, local_linear, &search)?,
        KernelName::Epanechnikov => select_one::<Epanechnikov>(x, y, local_linear, &search)?,
        KernelName::Tricube => select_one::<Tricube>(x, y, local_linear, &search)?,
        KernelName::Uniform => select_one::<Uniform>(x, y, local_linear, &search)?,
    };
    let mut fit = Fit {
        model: Model {
            kernel,
            local_linear,
            bandwidths: vec![sel.bandwidth; if per_dim { d } else { 1 }],
        },
        cv: sel.cv,
        evaluations: Some(sel.evaluations),
    };
    if per_dim && d > 1 {
        per_dim_search(table, &mut fit, &search)?;
    }
    Ok(fit)
}

/// The coordinate searches of [`select`] with `--per-dim`, from the bandwidths in `fit`.
fn per_dim_search(table: &Table, fit: &mut Fit, search: &Search) -> Result<(), Error> {
    let d = table.dims();
    let y = Rows::new(table.y(), 1)?;
    let unit = Gaussian::new(1.0)?;
    let ll = fit.model.local_linear;
    // The first sweep searches the wide bracket; later ones a decade either side of h_j with
    // a coarser grid (the basin is known by then).
    let narrow = Search { grid: 8, ..*search };
    for sweep in 0..3 {
        let before = fit.cv;
        let (below, above, search) = if sweep == 0 {
            (PER_DIM_DECADES.0, PER_DIM_DECADES.1, search)
        } else {
            (1.0, 1.0, &narrow)
        };
        for j in 0..d {
            let mut h = fit.model.bandwidths.clone();
            let h0 = h[j];
            let (lo, hi) = (
                h0 * 10f32.powf(-below),
                (f64::from(h0) * 10f64.powf(f64::from(above))).min(1e18) as f32,
            );
            let sel = corefit::minimize_log_bandwidth(
                |hj| {
                    h[j] = hj;
                    let xs = scaled(table.x(), &h);
                    let x = Rows::new(&xs, d)?;
                    searched(objective(&unit, x, y, ll))
                },
                lo,
                hi,
                search,
            )?;
            fit.evaluations = fit.evaluations.map(|e| e + sel.evaluations);
            if sel.cv < fit.cv {
                fit.cv = sel.cv;
                fit.model.bandwidths[j] = sel.bandwidth;
            }
        }
        if fit.cv >= before * (1.0 - 1e-7) {
            break;
        }
    }
    Ok(())
}

impl Model {
    /// The kernel and the inputs it sees: the kernel's own bandwidth with one bandwidth, or
    /// bandwidth 1 on inputs scaled column by column.
    fn view(&self, x: &[f32]) -> (f32, std::borrow::Cow<'_, [f32]>) {
        if self.bandwidths.len() == 1 {
            (self.bandwidths[0], x.to_vec().into())
        } else {
            (1.0, scaled(x, &self.bandwidths).into())
        }
    }

    /// The mean squared leave-one-out error of this model on `table`.
    ///
    /// # Errors
    /// [`Error::Core`] as the core's objective.
    pub fn cv(&self, table: &Table) -> Result<f64, Error> {
        let d = table.dims();
        let (h, x) = self.view(table.x());
        let (x, y) = (Rows::new(&x, d)?, Rows::new(table.y(), 1)?);
        with_kernel(self.kernel, h, |k| {
            Ok(objective(k, x, y, self.local_linear)?)
        })
    }

    /// The fit of the samples `(x, y)` (`x` row-major, `dims` wide) at every query row of `q`
    /// into `out` (one value a query).
    ///
    /// # Errors
    /// [`Error::Core`] as the core's smoothing (for example no sample in a compact kernel's
    /// support at a query).
    pub fn predict(&self, x: &[f32], y: &[f32], q: &[f32], out: &mut [f32]) -> Result<(), Error> {
        let d = x.len() / y.len().max(1);
        let (h, xs) = self.view(x);
        let (_, qs) = self.view(q);
        let (k, v, q) = (Rows::new(&xs, d)?, Rows::new(y, 1)?, Rows::new(&qs, d)?);
        let out = RowsMut::new(out, 1)?;
        with_kernel(self.kernel, h, |kernel| {
            if self.local_linear {
                Ok(corefit::local_linear_batch(kernel, q, k, v, out)?)
            } else {
                Ok(nadaraya::attention(kernel, q, k, v, Mask::None, out)?)
            }
        })
    }
}

impl Model {
    /// The fit and its asymptotic standard error at every query row of `q` (the core's
    /// [`corefit::standard_error`], the noise variance a constant from
    /// [`corefit::residual_variance`], the mean squared leave-one-out residual).
    ///
    /// # Errors
    /// [`Error::Core`] as those functions.
    pub fn standard_errors(
        &self,
        x: &[f32],
        y: &[f32],
        q: &[f32],
    ) -> Result<Vec<corefit::Estimate>, Error> {
        let d = x.len() / y.len().max(1);
        let (h, xs) = self.view(x);
        let (_, qs) = self.view(q);
        let (xr, yr) = (Rows::new(&xs, d)?, Rows::new(y, 1)?);
        let how = if self.local_linear {
            corefit::Fit::LocalLinear
        } else {
            corefit::Fit::NadarayaWatson
        };
        with_kernel(self.kernel, h, |k| {
            let mut s2 = [0.0];
            corefit::residual_variance(how, k, xr, yr, &mut s2)?;
            let mut out = Vec::with_capacity(qs.len() / d.max(1));
            for row in qs.chunks_exact(d.max(1)) {
                let mut e = [corefit::Estimate::default()];
                corefit::standard_error(
                    how,
                    k,
                    row,
                    xr,
                    yr,
                    corefit::Noise::Constant(&s2),
                    &mut e,
                )?;
                out.push(e[0]);
            }
            Ok(out)
        })
    }
}

/// Joins numbers with spaces.
fn join(v: &[f32]) -> String {
    v.iter().map(f32::to_string).collect::<Vec<_>>().join(" ")
}

/// Runs `nadaraya fit`: prints `bandwidth h_1 … h_D`, `cv <value>`, then `evaluations`, the
/// `time` the selection took and, with `--curve`, the CV curve.
///
/// # Errors
/// [`Error::Data`] for a file that cannot be read or used (naming the line and the column);
/// otherwise as [`select`].
pub fn run(args: &FitArgs) -> Result<(), Error> {
    let table = Table::from_csv_file(&args.file, 2)?;
    let start = Instant::now();
    let fit = select(&table, args.kernel, args.per_dim, args.local_linear)?;
    let took = start.elapsed();
    let mut out = format!("bandwidth {}\ncv {}\n", join(&fit.model.bandwidths), fit.cv);
    if let Some(e) = fit.evaluations {
        out.push_str(&format!("evaluations {e}\n"));
    }
    out.push_str(&format!("time {:.6} s\n", took.as_secs_f64()));
    if let Some(points) = args.curve {
        for (factor, cv) in curve(&fit.model, &table, points)? {
            let h: Vec<f32> = fit.model.bandwidths.iter().map(|h| h * factor).collect();
            out.push_str(&format!("curve {} {cv}\n", join(&h)));
        }
    }
    crate::write_out(None, &out)
}

/// The CV of `model` with its bandwidths times `points` factors log-spaced from 1/10 to 10;
/// factors where the objective fails (no sample in the support) are left out.
///
/// # Errors
/// [`Error::Option`] if `points < 2`.
pub fn curve(model: &Model, table: &Table, points: usize) -> Result<Vec<(f32, f64)>, Error> {
    if points < 2 {
        return Err(option("`--curve` needs at least 2 points"));
    }
    let mut out = Vec::with_capacity(points);
    for k in 0..points {
        let e = -1.0 + 2.0 * k as f64 / (points - 1) as f64;
        let factor = 10f64.powf(e) as f32;
        let m = Model {
            bandwidths: model.bandwidths.iter().map(|h| h * factor).collect(),
            ..model.clone()
        };
        if let Ok(cv) = m.cv(table) {
            out.push((factor, cv));
        }
    }
    Ok(out)
}

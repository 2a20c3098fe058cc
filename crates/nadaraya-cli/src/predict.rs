//! `nadaraya predict`: the fit of a CSV file's data at given points or over a grid, as CSV, with
//! asymptotic standard errors and bands (`--se`) and bootstrap bands (`--bootstrap`).

use std::fmt::Write as _;
use std::path::PathBuf;

use nadaraya::fit as corefit;
use nadaraya_plot::{TABLE_RULES, Table};

use crate::fit::{self, KernelName, Model};
use crate::{Error, bootstrap};

/// One axis of `--grid`: `lo:hi:n`, `n ≥ 1` evenly spaced points from `lo` to `hi`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Axis {
    /// The first point.
    pub lo: f32,
    /// The last point.
    pub hi: f32,
    /// How many points.
    pub n: usize,
}

impl std::str::FromStr for Axis {
    type Err = String;

    /// # Errors
    /// A message unless the value is `lo:hi:n` with finite `lo ≤ hi` and `1 ≤ n ≤ 10⁶`.
    fn from_str(s: &str) -> Result<Self, String> {
        let p: Vec<&str> = s.split(':').collect();
        let bad = || format!("`{s}`: a grid axis is `lo:hi:n` (for example `-3:3:61`)");
        if p.len() != 3 {
            return Err(bad());
        }
        let (lo, hi, n) = (
            p[0].trim().parse::<f32>().map_err(|_| bad())?,
            p[1].trim().parse::<f32>().map_err(|_| bad())?,
            p[2].trim().parse::<usize>().map_err(|_| bad())?,
        );
        if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
            return Err(format!("`{s}`: lo and hi must be finite with lo ≤ hi"));
        }
        if !(1..=1_000_000).contains(&n) {
            return Err(format!("`{s}`: n must be from 1 to 1000000"));
        }
        Ok(Self { lo, hi, n })
    }
}

impl Axis {
    /// The points of the axis.
    #[must_use]
    pub fn points(&self) -> Vec<f32> {
        if self.n == 1 {
            return vec![self.lo];
        }
        let (lo, hi) = (f64::from(self.lo), f64::from(self.hi));
        (0..self.n)
            .map(|k| (lo + (hi - lo) * k as f64 / (self.n - 1) as f64) as f32)
            .collect()
    }
}

/// The options of `nadaraya predict`.
#[derive(Clone, Debug, clap::Args)]
#[command(after_long_help = TABLE_RULES)]
pub struct PredictArgs {
    /// The data: a CSV file whose last column is y and whose other columns are x (the rules of
    /// `nadaraya fit`).
    pub file: PathBuf,
    /// The points: a CSV file of x rows (the data's D columns, no y; header optional).
    #[arg(long, conflicts_with = "grid", required_unless_present = "grid")]
    pub at: Option<PathBuf>,
    /// The points: a grid, `lo:hi:n` (n evenly spaced points from lo to hi); once for every
    /// column, or once for all columns (the grid is then the product of D such axes).
    #[arg(long, value_name = "LO:HI:N", allow_hyphen_values = true)]
    pub grid: Vec<Axis>,
    /// The bandwidth(s) instead of selecting them by cv_ls: one for all columns, or one per
    /// column (separated by commas).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub bandwidth: Vec<f32>,
    /// Select one bandwidth per column (as `nadaraya fit --per-dim`).
    #[arg(long)]
    pub per_dim: bool,
    /// Local-linear regression instead of Nadaraya–Watson.
    #[arg(long)]
    pub local_linear: bool,
    /// The kernel family.
    #[arg(long, value_enum, default_value_t = KernelName::Gaussian)]
    pub kernel: KernelName,
    /// Add the asymptotic standard error `se` and the band `lo,hi` = fit ± z·se (the noise
    /// variance: the mean squared leave-one-out residual; the smoothing bias is ignored).
    #[arg(long)]
    pub se: bool,
    /// Add pairs-bootstrap columns `boot_se,boot_lo,boot_hi,boot_n` from this many replicates,
    /// refitted at the selected (or given) bandwidth(s), not re-selected; percentile bands.
    #[arg(long, value_name = "B")]
    pub bootstrap: Option<usize>,
    /// The seed of the bootstrap's resampling.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The confidence level of the bands.
    #[arg(long, default_value_t = 0.95)]
    pub level: f64,
    /// The file to write (standard output if not given).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The query rows of `--at` or `--grid` for `d` columns.
fn queries(args: &PredictArgs, d: usize) -> Result<Vec<f32>, Error> {
    if let Some(path) = &args.at {
        let t = Table::points_from_csv_file(path)?;
        if t.dims() != d {
            return Err(Error::Option(format!(
                "`--at {}`: {} column{}, but the data has {d} x column{}",
                path.display(),
                t.dims(),
                if t.dims() == 1 { "" } else { "s" },
                if d == 1 { "" } else { "s" }
            )));
        }
        return Ok(t.x().to_vec());
    }
    let axes: Vec<Vec<f32>> = match args.grid.len() {
        1 => vec![args.grid[0].points(); d],
        k if k == d => args.grid.iter().map(Axis::points).collect(),
        k => {
            return Err(Error::Option(format!(
                "{k} `--grid` axes for {d} x columns: give one for all or one per column"
            )));
        }
    };
    let total: usize = axes.iter().map(Vec::len).product();
    if total > 1_000_000 {
        return Err(Error::Option(format!(
            "the grid has {total} points; at most 1000000"
        )));
    }
    let mut q = Vec::with_capacity(total * d);
    for k in 0..total {
        let mut rest = k;
        let mut row = vec![0.0; d];
        for j in (0..d).rev() {
            row[j] = axes[j][rest % axes[j].len()];
            rest /= axes[j].len();
        }
        q.extend_from_slice(&row);
    }
    Ok(q)
}

/// The model `predict` evaluates: the given bandwidths, or the cv_ls selection.
fn model(args: &PredictArgs, table: &Table) -> Result<Model, Error> {
    let d = table.dims();
    if args.bandwidth.is_empty() {
        return Ok(fit::select(table, args.kernel, args.per_dim, args.local_linear)?.model);
    }
    if args.bandwidth.len() != 1 && args.bandwidth.len() != d {
        return Err(Error::Option(format!(
            "{} bandwidths for {d} x columns: give one for all or one per column",
            args.bandwidth.len()
        )));
    }
    if args.bandwidth.len() > 1 && args.kernel != KernelName::Gaussian {
        return Err(Error::Option(
            "one bandwidth per column is a product Gaussian kernel: it needs `--kernel gaussian`"
                .into(),
        ));
    }
    if let Some(h) = args
        .bandwidth
        .iter()
        .find(|h| nadaraya::Gaussian::new(**h).is_err())
    {
        return Err(Error::Option(format!(
            "`--bandwidth {h}`: not a valid bandwidth (finite, > 0, from about 3.9e-20 to 6.5e18)"
        )));
    }
    Ok(Model {
        kernel: args.kernel,
        local_linear: args.local_linear,
        bandwidths: args.bandwidth.clone(),
    })
}

/// Runs `nadaraya predict`: writes the CSV `x1,…,xD,fit` (then `se,lo,hi` with `--se`, then
/// `boot_se,boot_lo,boot_hi,boot_n` with `--bootstrap`), one query a line, after a comment line
/// `# bandwidth h_1 … h_D` naming the bandwidth(s) used.
///
/// # Errors
/// [`Error::Data`] for a data or points file that cannot be used; [`Error::Option`] for option
/// values that cannot be used; [`Error::Core`] if a fit fails (for example a singular
/// local-linear design at a query).
pub fn run(args: &PredictArgs) -> Result<(), Error> {
    let table = Table::from_csv_file(&args.file, 2)?;
    let d = table.dims();
    let q = queries(args, d)?;
    let model = model(args, &table)?;
    let m = q.len() / d;
    let mut fitted = vec![0.0f32; m];
    model.predict(table.x(), table.y(), &q, &mut fitted)?;
    let se = if args.se {
        let z = corefit::band_z(args.level).map_err(|_| {
            Error::Option(format!(
                "`--level {}`: a confidence level is between 0 and 1",
                args.level
            ))
        })?;
        Some((model.standard_errors(table.x(), table.y(), &q)?, z))
    } else {
        None
    };
    let boot = match args.bootstrap {
        Some(b) => Some(bootstrap::bands(
            &model,
            table.x(),
            table.y(),
            &q,
            b,
            args.seed,
            args.level,
        )?),
        None => None,
    };
    let mut s = String::new();
    let h: Vec<String> = model.bandwidths.iter().map(f32::to_string).collect();
    let _ = writeln!(s, "# bandwidth {}", h.join(" "));
    for j in 1..=d {
        let _ = write!(s, "x{j},");
    }
    s.push_str("fit");
    if se.is_some() {
        s.push_str(",se,lo,hi");
    }
    if boot.is_some() {
        s.push_str(",boot_se,boot_lo,boot_hi,boot_n");
    }
    s.push('\n');
    for (k, row) in q.chunks_exact(d).enumerate() {
        for v in row {
            let _ = write!(s, "{v},");
        }
        let _ = write!(s, "{}", fitted[k]);
        if let Some((e, z)) = &se {
            let (lo, hi) = e[k].band(*z);
            let _ = write!(s, ",{},{lo},{hi}", e[k].se);
        }
        if let Some(b) = &boot {
            let _ = write!(
                s,
                ",{},{},{},{}",
                b.se[k] as f32, b.lo[k] as f32, b.hi[k] as f32, b.used[k]
            );
        }
        s.push('\n');
    }
    crate::write_out(args.out.as_deref(), &s)
}

//! `nadaraya learn`: metric learning for kernel regression (MLKR, Weinberger & Tesauro 2007) on
//! a CSV file's data: the `K×D` map `W` that minimises the leave-one-out squared error of
//! Gaussian Nadaraya–Watson with weights `∝ exp(−|W(x_i − x_j)|²/2)`.
//!
//! The objective and its gradient are the core's [`corefit::loo_cv_metric`]; the optimiser is
//! L-BFGS ([`crate::lbfgs`]), or with `--descent` the core's plain gradient descent
//! [`corefit::learn_metric`].

use std::path::PathBuf;
use std::time::Instant;

use nadaraya::fit as corefit;
use nadaraya::{Rows, RowsMut};
use nadaraya_plot::{TABLE_RULES, Table};

use crate::{Error, lbfgs};

/// The options of `nadaraya learn`.
#[derive(Clone, Debug, clap::Args)]
#[command(after_long_help = TABLE_RULES)]
pub struct LearnArgs {
    /// The data: a CSV file whose last column is y and whose other columns are x (`--help`
    /// gives the rules).
    pub file: PathBuf,
    /// The dimension K of the learned space (the rows of W), from 1 to 16.
    #[arg(long, value_name = "K")]
    pub dim: usize,
    /// The most iterations of the optimiser.
    #[arg(long, default_value_t = 1000)]
    pub max_iterations: usize,
    /// Plain gradient descent with backtracking (the core's no_std `learn_metric`) instead of
    /// L-BFGS.
    #[arg(long)]
    pub descent: bool,
    /// Also print `cos |cos θ|` between this direction (comma-separated, D entries) and the
    /// learned map's principal direction (its top right singular vector).
    #[arg(
        long,
        value_delimiter = ',',
        allow_hyphen_values = true,
        value_name = "U"
    )]
    pub direction: Option<Vec<f64>>,
    /// Draw the figures `metric-learning` (y against the learned coordinate and against x1) and
    /// `metric-training` (the training loss of L-BFGS and of gradient descent against steps)
    /// into this folder (PNG, SVG and CSV).
    #[arg(long, value_name = "DIR")]
    pub figures: Option<PathBuf>,
}

/// What [`learn`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct Learned {
    /// The map, `K×D` row-major.
    pub w: Vec<f32>,
    /// Its rows `K`.
    pub k: usize,
    /// The mean squared leave-one-out error with it.
    pub cv: f64,
    /// The same at the starting map.
    pub initial_cv: f64,
    /// The iterations (steps) taken.
    pub iterations: usize,
    /// The objective evaluations.
    pub evaluations: usize,
    /// The score at the start and after each step.
    pub trace: Vec<f64>,
}

/// The starting map: the identity when `k == d`, otherwise the top `k` principal axes of `x`
/// (unit rows, the eigenvectors of the covariance by cyclic Jacobi rotations in `f64`, in
/// decreasing order of variance, each signed so that its largest entry is positive), as
/// metric-learn's MLKR starts (`init='auto'`: PCA for `K < D`) but deterministic. No scaling:
/// the bandwidth in the learned space is 1, as there.
///
/// # Errors
/// [`Error::Option`] if `k` is 0 or more than [`corefit::MAX_METRIC_ROWS`].
pub fn initial_map(x: &[f32], d: usize, k: usize) -> Result<Vec<f32>, Error> {
    if k == 0 || k > corefit::MAX_METRIC_ROWS {
        return Err(Error::Option(format!(
            "`--dim {k}`: the learned dimension must be from 1 to {}",
            corefit::MAX_METRIC_ROWS
        )));
    }
    let mut w = vec![0.0f32; k * d];
    if k == d {
        for i in 0..d {
            w[i * d + i] = 1.0;
        }
        return Ok(w);
    }
    let n = (x.len() / d.max(1)).max(1);
    let mut mean = vec![0.0f64; d];
    for row in x.chunks_exact(d) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += f64::from(*v) / n as f64;
        }
    }
    let mut c = vec![0.0f64; d * d];
    for row in x.chunks_exact(d) {
        for a in 0..d {
            for b in 0..d {
                c[a * d + b] += (f64::from(row[a]) - mean[a]) * (f64::from(row[b]) - mean[b]);
            }
        }
    }
    let (vals, vecs) = jacobi_eigen(c, d);
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| vals[b].total_cmp(&vals[a]).then(a.cmp(&b)));
    for (r, &e) in order.iter().take(k).enumerate() {
        let col: Vec<f64> = (0..d).map(|i| vecs[i * d + e]).collect();
        let big = col
            .iter()
            .copied()
            .fold(0.0f64, |m, v| if v.abs() > m.abs() { v } else { m });
        let sign = if big < 0.0 { -1.0 } else { 1.0 };
        for (i, v) in col.iter().enumerate() {
            w[r * d + i] = (sign * v) as f32;
        }
    }
    Ok(w)
}

/// The eigenvalues and eigenvectors (columns of the row-major result) of the symmetric `d×d`
/// matrix `a`, by cyclic Jacobi rotations.
fn jacobi_eigen(mut a: Vec<f64>, d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0f64; d * d];
    for i in 0..d {
        v[i * d + i] = 1.0;
    }
    for _ in 0..100 {
        let off: f64 = (0..d)
            .flat_map(|p| (0..d).filter(move |&q| q != p).map(move |q| (p, q)))
            .map(|(p, q)| a[p * d + q] * a[p * d + q])
            .sum();
        if off < 1e-30 {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = a[p * d + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * d + q] - a[p * d + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for r in 0..d {
                    let (arp, arq) = (a[r * d + p], a[r * d + q]);
                    a[r * d + p] = c * arp - s * arq;
                    a[r * d + q] = s * arp + c * arq;
                }
                for r in 0..d {
                    let (apr, aqr) = (a[p * d + r], a[q * d + r]);
                    a[p * d + r] = c * apr - s * aqr;
                    a[q * d + r] = s * apr + c * aqr;
                }
                for r in 0..d {
                    let (vrp, vrq) = (v[r * d + p], v[r * d + q]);
                    v[r * d + p] = c * vrp - s * vrq;
                    v[r * d + q] = s * vrp + c * vrq;
                }
            }
        }
    }
    ((0..d).map(|i| a[i * d + i]).collect(), v)
}

/// The principal direction of the `k×d` map `w`: its top right singular vector (the top
/// eigenvector of `WᵀW`), unit length.
#[must_use]
pub fn principal_direction(w: &[f32], d: usize) -> Vec<f64> {
    let mut m = vec![0.0f64; d * d];
    for row in w.chunks_exact(d) {
        for a in 0..d {
            for b in 0..d {
                m[a * d + b] += f64::from(row[a]) * f64::from(row[b]);
            }
        }
    }
    let (vals, vecs) = jacobi_eigen(m, d);
    let top = (0..d).fold(0, |best, i| if vals[i] > vals[best] { i } else { best });
    (0..d).map(|i| vecs[i * d + top]).collect()
}

/// `|cos θ|` between `u` and `v`.
#[must_use]
pub fn abs_cos(u: &[f64], v: &[f64]) -> f64 {
    let dot: f64 = u.iter().zip(v).map(|(a, b)| a * b).sum();
    let nu: f64 = u.iter().map(|a| a * a).sum::<f64>().sqrt();
    let nv: f64 = v.iter().map(|a| a * a).sum::<f64>().sqrt();
    (dot / (nu * nv)).abs()
}

/// Learns a `k`-row map for `table`'s data from [`initial_map`], by L-BFGS
/// ([`lbfgs::minimize`] with its defaults and `max_iterations`) or, with `descent`, by the
/// core's [`corefit::learn_metric`].
///
/// # Errors
/// [`Error::Option`] for a `k` out of range; [`Error::Core`] as [`corefit::loo_cv_metric`] at
/// the starting map (more than [`corefit::MAX_DIMS`] input columns, for example).
pub fn learn(
    table: &Table,
    k: usize,
    max_iterations: usize,
    descent: bool,
) -> Result<Learned, Error> {
    let d = table.dims();
    let (x, y) = (Rows::new(table.x(), d)?, Rows::new(table.y(), 1)?);
    let mut w = initial_map(table.x(), d, k)?;
    let mut scratch = vec![0.0f32; corefit::metric_scratch_len(x.len(), d, k)];
    if descent {
        let mut trace = vec![0.0f64; max_iterations];
        let steps = corefit::Descent {
            max_steps: u32::try_from(max_iterations).unwrap_or(u32::MAX),
            ..corefit::Descent::DEFAULT
        };
        let r = corefit::learn_metric(
            RowsMut::new(&mut w, d)?,
            x,
            y,
            &mut scratch,
            &steps,
            Some(&mut trace),
        )?;
        trace.truncate(r.steps as usize);
        trace.insert(0, r.initial_cv);
        return Ok(Learned {
            w,
            k,
            cv: r.cv,
            initial_cv: r.initial_cv,
            iterations: r.steps as usize,
            evaluations: r.evaluations as usize,
            trace,
        });
    }
    let x0: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
    let mut wf = vec![0.0f32; k * d];
    let objective = |p: &[f64], g: &mut [f64]| -> Result<f64, nadaraya::Error> {
        for (a, b) in wf.iter_mut().zip(p) {
            *a = *b as f32;
        }
        corefit::loo_cv_metric(Rows::new(&wf, d)?, x, y, &mut scratch, Some(g))
    };
    let options = lbfgs::Options {
        max_iterations,
        ..lbfgs::Options::default()
    };
    let m = lbfgs::minimize(&x0, objective, &options)?;
    let w: Vec<f32> = m.x.iter().map(|&v| v as f32).collect();
    // The score of the f32 map printed, evaluated once more (the optimiser's last value is
    // at the same f32 map: its points are rounded to f32 before every evaluation).
    let cv = corefit::loo_cv_metric(Rows::new(&w, d)?, x, y, &mut scratch, None)?;
    Ok(Learned {
        w,
        k,
        cv,
        initial_cv: m.trace[0],
        iterations: m.iterations,
        evaluations: m.evaluations + 1,
        trace: m.trace,
    })
}

/// Joins numbers with spaces.
fn join(v: &[f32]) -> String {
    v.iter().map(f32::to_string).collect::<Vec<_>>().join(" ")
}

/// Runs `nadaraya learn`: prints `projection w_11 … w_KD` (row-major, one line), `cv <LOO MSE
/// with that projection>`, then `identity-cv` (the score with `W = I`), `initial-cv` (at the
/// starting map), `iterations`, `evaluations`, the `time` the learning took, and with
/// `--direction` the `cos`.
///
/// # Errors
/// [`Error::Data`] for a file that cannot be read or used (naming the line and the column);
/// [`Error::Option`] for a `--direction` without one entry per input column; otherwise as
/// [`learn`].
pub fn run(args: &LearnArgs) -> Result<(), Error> {
    let table = Table::from_csv_file(&args.file, 2)?;
    let d = table.dims();
    if let Some(u) = &args.direction
        && u.len() != d
    {
        return Err(Error::Option(format!(
            "`--direction`: {} entries, but the data have {d} input columns",
            u.len()
        )));
    }
    let start = Instant::now();
    let fit = learn(&table, args.dim, args.max_iterations, args.descent)?;
    let took = start.elapsed();
    let (x, y) = (Rows::new(table.x(), d)?, Rows::new(table.y(), 1)?);
    let eye: Vec<f32> = (0..d * d)
        .map(|i| if i / d == i % d { 1.0 } else { 0.0 })
        .collect();
    let mut scratch = vec![0.0f32; corefit::metric_scratch_len(x.len(), d, d)];
    let identity = corefit::loo_cv_metric(Rows::new(&eye, d)?, x, y, &mut scratch, None)?;
    let mut out = format!(
        "projection {}\ncv {}\nidentity-cv {identity}\ninitial-cv {}\niterations {}\n\
         evaluations {}\ntime {:.6} s\n",
        join(&fit.w),
        fit.cv,
        fit.initial_cv,
        fit.iterations,
        fit.evaluations,
        took.as_secs_f64()
    );
    if let Some(u) = &args.direction {
        let c = abs_cos(u, &principal_direction(&fit.w, d));
        out.push_str(&format!("cos {c:.6}\n"));
    }
    if let Some(dir) = &args.figures {
        let other = learn(&table, args.dim, args.max_iterations, !args.descent)?;
        let (lbfgs_run, descent_run) = if args.descent {
            (&other, &fit)
        } else {
            (&fit, &other)
        };
        let v = principal_direction(&fit.w, d);
        let coord: Vec<f32> = table
            .x()
            .chunks_exact(d)
            .map(|r| {
                r.iter()
                    .zip(&v)
                    .map(|(a, b)| f64::from(*a) * b)
                    .sum::<f64>() as f32
            })
            .collect();
        let raw: Vec<f32> = table.x().chunks_exact(d).map(|r| r[0]).collect();
        let figs = [
            nadaraya_plot::learned::coordinates(&coord, &raw, table.y(), fit.cv, identity),
            nadaraya_plot::learned::training(&[
                ("L-BFGS", &lbfgs_run.trace),
                ("gradient descent (core, no_std)", &descent_run.trace),
            ]),
        ];
        for f in &figs {
            nadaraya_plot::draw::write(f, dir)?;
        }
    }
    crate::write_out(None, &out)
}

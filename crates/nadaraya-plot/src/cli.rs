//! The `nadaraya plot` subcommand: its options ([`PlotArgs`], a `clap` argument group the
//! `nadaraya` binary of the `nadaraya-cli` crate mounts) and what it does ([`run`]).

use std::path::{Path, PathBuf};

use crate::{BUILTIN, CSV_RULES, Column, Columns, Dataset, Error, Params, draw, scenarios};

/// The folder `nadaraya plot` writes to when `--out` is not given: a new folder in the current
/// directory, never the committed `docs/figures` (regenerating those needs `--out docs/figures`).
pub const DEFAULT_OUT: &str = "nadaraya-figures";

/// The long help of `--data`: the short one and the CSV rules.
fn data_help() -> String {
    format!(
        "The data: a built-in set ({}) or a CSV file of x,y lines.\n\n{CSV_RULES}",
        BUILTIN.join(", ")
    )
}

/// Draw the seed's "What to Try" scenarios from the nadaraya crates: ŷ(x) for Gaussian and
/// softmax-dot smoothing with the weights α_i at x_q under the points. Each figure is written as
/// NAME.png, NAME.svg and NAME.csv (the plotted values).
#[derive(Clone, Debug, clap::Args)]
pub struct PlotArgs {
    /// Gaussian bandwidth h.
    #[arg(long, default_value_t = scenarios::DEFAULT_H, allow_hyphen_values = true)]
    pub h: f32,
    /// Softmax-dot temperature τ.
    #[arg(long, default_value_t = scenarios::DEFAULT_TAU, allow_hyphen_values = true)]
    pub tau: f32,
    /// The query x_q whose weights are drawn (the `sign` scenario uses |x_q|).
    #[arg(long = "x-q", default_value_t = scenarios::DEFAULT_X_Q, allow_hyphen_values = true)]
    pub x_q: f32,
    /// The small bandwidth of the `small-h` scenario.
    #[arg(long, default_value_t = scenarios::DEFAULT_SMALL_H, allow_hyphen_values = true)]
    pub small_h: f32,
    /// The small temperature of the `small-tau` scenario.
    #[arg(long, default_value_t = scenarios::DEFAULT_SMALL_TAU, allow_hyphen_values = true)]
    pub small_tau: f32,
    /// The feature counts m of the random-feature curves (separate by commas).
    #[arg(long, value_delimiter = ',', default_values_t = scenarios::DEFAULT_FEATURES)]
    pub features: Vec<usize>,
    /// The projection seed of the random-feature curves.
    #[arg(long, default_value_t = scenarios::DEFAULT_SEED)]
    pub seed: u64,
    /// The data: a built-in set (sine, step) or a CSV file of x,y lines (an optional header,
    /// `#` comments; `--help` gives the rules).
    #[arg(long, default_value = "sine", long_help = data_help())]
    pub data: String,
    /// The CSV column of x with `--data FILE`: a 1-based position or a header name (the first
    /// column by default).
    #[arg(long = "x-col")]
    pub x_col: Option<Column>,
    /// The CSV column of y with `--data FILE`: a 1-based position or a header name (the second
    /// column by default).
    #[arg(long = "y-col")]
    pub y_col: Option<Column>,
    /// The output folder (created if missing). The committed figures are regenerated with
    /// `--out docs/figures`.
    #[arg(long, default_value = DEFAULT_OUT)]
    pub out: PathBuf,
    /// Draw only these scenarios (repeat or separate by commas); all by default.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// List the scenario names and exit.
    #[arg(long)]
    pub list: bool,
}

/// The data set `--data` names: a CSV file (read with `columns`) or a built-in set.
fn load(data: &str, columns: &Columns) -> Result<Dataset, Error> {
    let path = Path::new(data);
    if path.is_file() {
        Dataset::from_csv_file(path, columns)
    } else if columns.x.is_some() || columns.y.is_some() {
        Err(Error::Option(format!(
            "`--x-col`/`--y-col` choose columns of a CSV file, but `--data {data}` is not a file"
        )))
    } else if BUILTIN.contains(&data) {
        Dataset::builtin(data)
    } else {
        Err(Error::Option(format!(
            "`--data {data}`: neither a file nor a built-in set ({})",
            BUILTIN.join(", ")
        )))
    }
}

/// Runs `nadaraya plot`: prints the scenario names with `--list`, otherwise computes every
/// chosen figure and writes it (all or nothing) to `--out`, printing each written path.
///
/// # Errors
/// [`Error::Option`] for an unknown `--data` or scenario name or columns given without a file;
/// [`Error::Data`] for a CSV file that cannot be used; [`Error::Scenario`] if a figure's
/// computation fails; [`Error::Io`], [`Error::Font`] or [`Error::Draw`] if writing fails (then
/// nothing is written).
pub fn run(args: &PlotArgs) -> Result<(), Error> {
    // The committed figures are the same bits on every x86-64 machine: the baseline level's
    // arithmetic, not whichever wider level this CPU has (a bandwidth chosen by the search, and
    // so the CV curve's grid, moves in its last bits with the level).
    nadaraya::dispatch::force(nadaraya::dispatch::Level::Baseline);
    if args.list {
        for n in scenarios::NAMES {
            println!("{n}");
        }
        return Ok(());
    }
    let columns = Columns {
        x: args.x_col.clone(),
        y: args.y_col.clone(),
    };
    let params = Params {
        h: args.h,
        tau: args.tau,
        x_q: args.x_q,
        small_h: args.small_h,
        small_tau: args.small_tau,
        data: load(&args.data, &columns)?,
        features: args.features.clone(),
        seed: args.seed,
    };
    let names: Vec<&str> = if args.only.is_empty() {
        scenarios::NAMES.to_vec()
    } else {
        args.only.iter().map(String::as_str).collect()
    };
    // Every figure is computed before any is drawn, and written all or nothing.
    let figs = scenarios::figures(&names, &params)?;
    for path in draw::write_all(&figs, &args.out)? {
        println!("{}", path.display());
    }
    Ok(())
}

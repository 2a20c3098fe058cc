//! `nadaraya-plot`: draws every scenario figure (PNG, SVG and the plotted values as CSV).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use nadaraya_plot::{BUILTIN, CSV_RULES, Dataset, Error, Params, draw, scenarios};

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
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Gaussian bandwidth h.
    #[arg(long, default_value_t = scenarios::DEFAULT_H, allow_hyphen_values = true)]
    h: f32,
    /// Softmax-dot temperature τ.
    #[arg(long, default_value_t = scenarios::DEFAULT_TAU, allow_hyphen_values = true)]
    tau: f32,
    /// The query x_q whose weights are drawn (the `sign` scenario uses |x_q|).
    #[arg(long = "x-q", default_value_t = scenarios::DEFAULT_X_Q, allow_hyphen_values = true)]
    x_q: f32,
    /// The small bandwidth of the `small-h` scenario.
    #[arg(long, default_value_t = scenarios::DEFAULT_SMALL_H, allow_hyphen_values = true)]
    small_h: f32,
    /// The small temperature of the `small-tau` scenario.
    #[arg(long, default_value_t = scenarios::DEFAULT_SMALL_TAU, allow_hyphen_values = true)]
    small_tau: f32,
    /// The feature counts m of the random-feature curves (separate by commas).
    #[arg(long, value_delimiter = ',', default_values_t = scenarios::DEFAULT_FEATURES)]
    features: Vec<usize>,
    /// The projection seed of the random-feature curves.
    #[arg(long, default_value_t = scenarios::DEFAULT_SEED)]
    seed: u64,
    /// The data: a built-in set (sine, step) or a CSV file of x,y lines (an optional header,
    /// `#` comments; `--help` gives the rules).
    #[arg(long, default_value = "sine", long_help = data_help())]
    data: String,
    /// The output folder (created if missing).
    #[arg(long, default_value = "docs/figures")]
    out: PathBuf,
    /// Draw only these scenarios (repeat or separate by commas); all by default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// List the scenario names and exit.
    #[arg(long)]
    list: bool,
}

fn load(data: &str) -> Result<Dataset, Error> {
    let path = PathBuf::from(data);
    if path.is_file() {
        Dataset::from_csv_file(&path)
    } else if BUILTIN.contains(&data) {
        Dataset::builtin(data)
    } else {
        Err(Error::Option(format!(
            "`--data {data}`: neither a file nor a built-in set ({})",
            BUILTIN.join(", ")
        )))
    }
}

fn run(args: Args) -> Result<(), Error> {
    if args.list {
        for n in scenarios::NAMES {
            println!("{n}");
        }
        return Ok(());
    }
    let params = Params {
        h: args.h,
        tau: args.tau,
        x_q: args.x_q,
        small_h: args.small_h,
        small_tau: args.small_tau,
        data: load(&args.data)?,
        features: args.features,
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

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nadaraya-plot: {e}");
            ExitCode::FAILURE
        }
    }
}

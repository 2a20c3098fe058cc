//! `nadaraya`: the command line of the nadaraya crates.
//!
//! `plot` draws the figures of `nadaraya-plot`; `fit` chooses bandwidths by cross-validation,
//! `predict` evaluates the fit with standard errors and bootstrap bands, `learn` learns a metric
//! for kernel regression (MLKR), `generate` writes the benchmark data sets (the library
//! `nadaraya_cli`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The nadaraya crates from the command line: attention as Nadaraya–Watson kernel smoothing.
#[derive(Debug, Parser)]
#[command(name = "nadaraya", version)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Draw the seed's scenario figures (PNG, SVG and the plotted values as CSV) into a folder
    /// (`./nadaraya-figures` unless `--out` says otherwise).
    Plot(nadaraya_plot::cli::PlotArgs),
    /// Choose the bandwidth(s) of a CSV file's data by least-squares leave-one-out
    /// cross-validation; prints `bandwidth h_1 … h_D` and `cv <mean squared LOO error>`.
    Fit(nadaraya_cli::fit::FitArgs),
    /// Evaluate the fit (cv_ls bandwidths, or `--bandwidth`) at points or over a grid, as CSV,
    /// with standard errors and bootstrap bands.
    Predict(nadaraya_cli::predict::PredictArgs),
    /// Learn a linear map W (K×D) for Gaussian kernel regression (MLKR) by leave-one-out
    /// cross-validation; prints `projection w_11 … w_KD` and `cv <mean squared LOO error>`.
    Learn(nadaraya_cli::learn::LearnArgs),
    /// Write a benchmark data set (benches/statsmodels) as CSV.
    Generate(nadaraya_cli::generate::GenerateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (name, result) = match &cli.command {
        Command::Plot(args) => (
            "plot",
            nadaraya_plot::cli::run(args).map_err(|e| e.to_string()),
        ),
        Command::Fit(args) => (
            "fit",
            nadaraya_cli::fit::run(args).map_err(|e| e.to_string()),
        ),
        Command::Predict(args) => (
            "predict",
            nadaraya_cli::predict::run(args).map_err(|e| e.to_string()),
        ),
        Command::Learn(args) => (
            "learn",
            nadaraya_cli::learn::run(args).map_err(|e| e.to_string()),
        ),
        Command::Generate(args) => (
            "generate",
            nadaraya_cli::generate::run(args).map_err(|e| e.to_string()),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nadaraya {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

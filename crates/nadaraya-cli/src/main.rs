//! `nadaraya`: the command line of the nadaraya crates.
//!
//! One subcommand so far, `plot` (the figures of `nadaraya-plot`); fitting a bandwidth (`fit`),
//! learning projections (`learn`) and predicting from a fitted model (`predict`) are planned as
//! further variants of [`Command`].

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (name, result) = match &cli.command {
        Command::Plot(args) => ("plot", nadaraya_plot::cli::run(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nadaraya {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

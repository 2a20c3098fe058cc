//! The library behind the `nadaraya` command: fitting bandwidths to a CSV file's data
//! ([`fit`]), predicting from the fit with standard errors and bootstrap bands ([`predict`],
//! [`bootstrap`]), learning a metric for kernel regression ([`learn`], with the L-BFGS of
//! [`lbfgs`]), and the benchmark data sets ([`generate`]).
//!
//! `nadaraya plot` lives in the `nadaraya-plot` crate; its CSV rules are shared
//! ([`nadaraya_plot::Table`]).

pub mod bootstrap;
mod error;
pub mod fit;
pub mod generate;
pub mod lbfgs;
pub mod learn;
pub mod predict;

pub use error::Error;

/// Writes `text` to the file `path`, or to standard output (a closed pipe is an error, never a
/// panic).
///
/// # Errors
/// [`Error::Data`] with the I/O error if writing fails.
pub fn write_out(path: Option<&std::path::Path>, text: &str) -> Result<(), Error> {
    use std::io::Write as _;
    let io =
        |path: std::path::PathBuf, source| Error::Data(nadaraya_plot::Error::Io { path, source });
    match path {
        Some(p) => std::fs::write(p, text).map_err(|e| io(p.to_owned(), e)),
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(|e| io("<stdout>".into(), e)),
    }
}

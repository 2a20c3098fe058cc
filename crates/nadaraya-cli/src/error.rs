//! The one error type of the `nadaraya` command's library.

use std::fmt;

/// Everything that can go wrong in `nadaraya fit`, `predict` or `generate`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The data file cannot be used (the message names the line and the column), or a file
    /// cannot be read or written.
    Data(nadaraya_plot::Error),
    /// The core library rejected a computation (a bandwidth out of range, no sample in a
    /// compact kernel's support, ...).
    Core(nadaraya::Error),
    /// An option value, or a combination of options, that cannot be used.
    Option(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Data(e) => write!(f, "{e}"),
            Self::Core(e) => write!(f, "nadaraya: {e}"),
            Self::Option(m) => write!(f, "option: {m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Data(e) => Some(e),
            Self::Core(e) => Some(e),
            Self::Option(_) => None,
        }
    }
}

impl From<nadaraya::Error> for Error {
    fn from(e: nadaraya::Error) -> Self {
        Self::Core(e)
    }
}

impl From<nadaraya_plot::Error> for Error {
    fn from(e: nadaraya_plot::Error) -> Self {
        Self::Data(e)
    }
}

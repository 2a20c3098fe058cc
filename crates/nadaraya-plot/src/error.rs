//! The one error type of the figure tool.

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong while computing, drawing or writing a figure.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The core library rejected a computation (a bad `h` or `τ`, a score that overflowed, ...).
    Core(nadaraya::Error),
    /// The random-feature crate rejected a computation (no features, an overflowing exponent, ...).
    RandomFeatures(nadaraya_rf::Error),
    /// A data set that cannot be used: the message says which line or value, and why.
    Data(String),
    /// An option value that cannot be used (for example an unknown scenario name).
    Option(String),
    /// Reading or writing a file failed.
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The embedded font could not be loaded, so text would be missing from the figures.
    Font,
    /// The drawing backend failed (the message is the backend's).
    Draw(String),
    /// A scenario's computation failed on these data and parameters.
    Scenario {
        /// The scenario.
        name: String,
        /// The command-line flags (with their values) the scenario uses, such as
        /// `--h 0.5, --small-h 0.2`.
        flags: String,
        /// What failed.
        source: Box<Error>,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Core(e) => write!(f, "nadaraya: {e}"),
            Self::RandomFeatures(e) => write!(f, "nadaraya-rf: {e}"),
            Self::Data(m) => write!(f, "data: {m}"),
            Self::Option(m) => write!(f, "option: {m}"),
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Font => f.write_str("the embedded DejaVu Sans font could not be loaded"),
            Self::Draw(m) => write!(f, "drawing: {m}"),
            Self::Scenario {
                name,
                flags,
                source,
            } => write!(f, "scenario `{name}` ({flags}): {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Core(e) => Some(e),
            Self::RandomFeatures(e) => Some(e),
            Self::Io { source, .. } => Some(source),
            Self::Scenario { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

impl From<nadaraya::Error> for Error {
    fn from(e: nadaraya::Error) -> Self {
        Self::Core(e)
    }
}

impl From<nadaraya_rf::Error> for Error {
    fn from(e: nadaraya_rf::Error) -> Self {
        Self::RandomFeatures(e)
    }
}

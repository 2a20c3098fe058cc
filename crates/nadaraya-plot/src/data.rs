//! One-dimensional data sets `(x_i, y_i)`: the built-in ones and CSV files.

use std::path::Path;

use crate::Error;

/// The names of the built-in data sets, for [`Dataset::builtin`].
pub const BUILTIN: &[&str] = &["sine", "step"];

// Twelve unevenly spaced points in [-3, 3]; y = sin(x) (`sine`) or 0.8·sign(x) (`step`), each plus
// a fixed offset in [-0.15, 0.14] so that the smoothing visibly averages noise. Written out as
// literals (rounded to two decimals) so the figures never depend on a platform's `sin`.
const X: [f32; 12] = [
    -2.9, -2.4, -1.8, -1.3, -0.9, -0.4, 0.2, 0.7, 1.1, 1.6, 2.2, 2.8,
];
const SINE: [f32; 12] = [
    -0.12, -0.76, -0.92, -1.11, -0.68, -0.44, 0.34, 0.54, 0.95, 0.88, 0.9, 0.29,
];
const STEP: [f32; 12] = [
    -0.68, -0.88, -0.75, -0.95, -0.7, -0.85, 0.94, 0.7, 0.86, 0.68, 0.89, 0.76,
];

/// Sample locations `x_i` and responses `y_i`, all finite, at least one sample.
///
/// # Examples
/// ```
/// use nadaraya_plot::Dataset;
/// let d = Dataset::from_csv_str("mine", "x,y\n0,1\n1,3\n")?;
/// assert_eq!(d.x(), &[0.0, 1.0]);
/// assert_eq!(d.y(), &[1.0, 3.0]);
/// # Ok::<(), nadaraya_plot::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    name: String,
    x: Vec<f32>,
    y: Vec<f32>,
}

impl Dataset {
    /// A data set from its columns.
    ///
    /// # Errors
    /// [`Error::Data`] if the columns differ in length, are empty, or hold NaN or infinity.
    pub fn new(name: &str, x: Vec<f32>, y: Vec<f32>) -> Result<Self, Error> {
        if x.len() != y.len() {
            return Err(Error::Data(format!(
                "{name}: {} x values but {} y values",
                x.len(),
                y.len()
            )));
        }
        if x.is_empty() {
            return Err(Error::Data(format!("{name}: no samples")));
        }
        if let Some(i) = x.iter().chain(&y).position(|v| !v.is_finite()) {
            return Err(Error::Data(format!(
                "{name}: value {} of the {} column is not finite",
                i % x.len() + 1,
                if i < x.len() { "x" } else { "y" }
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            x,
            y,
        })
    }

    /// A built-in data set by name (see [`BUILTIN`]).
    ///
    /// # Errors
    /// [`Error::Data`] if there is no built-in set of that name.
    pub fn builtin(name: &str) -> Result<Self, Error> {
        let y = match name {
            "sine" => SINE,
            "step" => STEP,
            _ => {
                return Err(Error::Data(format!(
                    "no built-in data set `{name}` (built-in: {})",
                    BUILTIN.join(", ")
                )));
            }
        };
        Ok(Self::constant(name, &y))
    }

    /// The built-in `sine` set: the default data of every figure.
    #[must_use]
    pub fn sine() -> Self {
        Self::constant("sine", &SINE)
    }

    // The built-in columns are finite constants of equal length (a unit test validates them).
    fn constant(name: &str, y: &[f32; 12]) -> Self {
        Self {
            name: name.to_owned(),
            x: X.to_vec(),
            y: y.to_vec(),
        }
    }

    /// A data set from CSV text: one `x,y` pair a line.
    ///
    /// Blank lines and lines starting with `#` are skipped; a first line that does not parse as
    /// two numbers is taken as a header.
    ///
    /// # Errors
    /// [`Error::Data`] naming the line that is not two finite numbers, or if nothing is left.
    pub fn from_csv_str(name: &str, text: &str) -> Result<Self, Error> {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        let mut first = true;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parsed = parse_pair(line);
            let header = first && parsed.is_none();
            first = false;
            if header {
                continue;
            }
            let Some((a, b)) = parsed else {
                return Err(Error::Data(format!(
                    "{name}, line {}: expected two numbers `x,y`, found `{line}`",
                    n + 1
                )));
            };
            x.push(a);
            y.push(b);
        }
        Self::new(name, x, y)
    }

    /// A data set from a CSV file (see [`from_csv_str`](Self::from_csv_str)).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read, otherwise as
    /// [`from_csv_str`](Self::from_csv_str).
    pub fn from_csv_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_csv_str(&path.display().to_string(), &text)
    }

    /// The name (built-in name or file path).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The sample locations `x_i`.
    #[must_use]
    pub fn x(&self) -> &[f32] {
        &self.x
    }

    /// The responses `y_i`.
    #[must_use]
    pub fn y(&self) -> &[f32] {
        &self.y
    }

    /// The smallest and largest `x_i`.
    #[must_use]
    pub fn x_range(&self) -> (f32, f32) {
        min_max(&self.x)
    }

    /// The same responses with the locations pulled into two clusters: the lower half of the
    /// `x_i` (by rank) moves three quarters of the way to its mean, and so does the upper half.
    /// The order of the samples is kept.
    ///
    /// # Examples
    /// ```
    /// use nadaraya_plot::Dataset;
    /// let d = Dataset::new("d", vec![0.0, 4.0, 10.0, 14.0], vec![1.0, 2.0, 3.0, 4.0])?;
    /// assert_eq!(d.clustered().x(), &[1.5, 2.5, 11.5, 12.5]);
    /// # Ok::<(), nadaraya_plot::Error>(())
    /// ```
    #[must_use]
    pub fn clustered(&self) -> Self {
        let mut order: Vec<usize> = (0..self.x.len()).collect();
        order.sort_by(|&a, &b| self.x[a].total_cmp(&self.x[b]));
        let half = order.len() / 2;
        let mut x = self.x.clone();
        for group in [&order[..half], &order[half..]] {
            if group.is_empty() {
                continue;
            }
            let mean =
                group.iter().map(|&i| f64::from(self.x[i])).sum::<f64>() / group.len() as f64;
            for &i in group {
                x[i] = (mean + 0.25 * (f64::from(self.x[i]) - mean)) as f32;
            }
        }
        Self {
            name: format!("{} (clustered)", self.name),
            x,
            y: self.y.clone(),
        }
    }
}

fn parse_pair(line: &str) -> Option<(f32, f32)> {
    let mut it = line.split(',').map(str::trim);
    let a = it.next()?.parse::<f32>().ok()?;
    let b = it.next()?.parse::<f32>().ok()?;
    (it.next().is_none() && a.is_finite() && b.is_finite()).then_some((a, b))
}

/// The smallest and largest value of a non-empty slice (`(0, 0)` for an empty one).
pub(crate) fn min_max(v: &[f32]) -> (f32, f32) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &a| {
            (lo.min(a), hi.max(a))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_load_and_unknown_names_are_errors() {
        for name in BUILTIN {
            let d = Dataset::builtin(name).unwrap();
            assert_eq!(
                Dataset::new(name, d.x().to_vec(), d.y().to_vec()).unwrap(),
                d
            );
        }
        assert_eq!(Dataset::sine(), Dataset::builtin("sine").unwrap());
        let e = Dataset::builtin("nope").unwrap_err().to_string();
        assert!(e.contains("sine"), "{e}");
    }

    #[test]
    fn csv_header_comments_and_bad_lines() {
        let d = Dataset::from_csv_str("t", "# c\nx, y\n\n1, 2\n-3.5,4e1\n").unwrap();
        assert_eq!(d.x(), &[1.0, -3.5]);
        assert_eq!(d.y(), &[2.0, 40.0]);
        let e = Dataset::from_csv_str("t", "1,2\n3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = Dataset::from_csv_str("t", "1,2\nnan,3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = Dataset::from_csv_str("t", "1,2,3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no samples"), "{e}");
        assert!(Dataset::from_csv_str("t", "x,y\n").is_err());
    }

    #[test]
    fn new_rejects_mismatch_and_non_finite() {
        assert!(Dataset::new("t", vec![1.0], vec![]).is_err());
        let e = Dataset::new("t", vec![1.0, 2.0], vec![0.0, f32::NAN])
            .unwrap_err()
            .to_string();
        assert!(e.contains("value 2 of the y column"), "{e}");
    }

    #[test]
    fn clustering_keeps_order_and_responses_and_shrinks_spread() {
        let d = Dataset::builtin("sine").unwrap();
        let c = d.clustered();
        assert_eq!(c.y(), d.y());
        assert!(c.x().windows(2).all(|w| w[0] <= w[1]));
        let half = d.x().len() / 2;
        for (lo, hi) in [(0, half), (half, d.x().len())] {
            let (a, b) = min_max(&d.x()[lo..hi]);
            let (ca, cb) = min_max(&c.x()[lo..hi]);
            assert!((f64::from(cb - ca) - 0.25 * f64::from(b - a)).abs() < 1e-5);
        }
    }
}

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

    /// A data set from CSV text: one `x,y` pair a line (see [`CSV_RULES`]); as
    /// [`from_csv_columns`](Self::from_csv_columns) with the default [`Columns`].
    ///
    /// A UTF-8 byte-order mark at the start is removed; blank lines and lines starting with `#`
    /// are skipped. The first remaining line is a header exactly when none of its fields is empty
    /// or number-like (an optional sign, then a digit or `.`, or a spelling of NaN or infinity):
    /// `x,y` and `time, "value"` are headers; `nan,3`, `1e39,2` and `1;2` are data lines, and
    /// errors. Every other line must be two numbers separated by one comma (each may be enclosed
    /// in double quotes), each finite and within the `f32` range once rounded to the nearest
    /// `f32`.
    ///
    /// # Errors
    /// [`Error::Data`] naming the line (and the column, for a bad number) of the first line that
    /// is not two fields, a field that is not a number, a NaN or infinity, or a number beyond
    /// `±f32::MAX`; a line separated by `;` or a tab says so; also if no sample is left.
    ///
    /// # Examples
    /// ```
    /// use nadaraya_plot::Dataset;
    /// let d = Dataset::from_csv_str("t", "\u{feff}x,y\n0,1\n")?;
    /// assert_eq!(d.x(), &[0.0]);
    /// let e = Dataset::from_csv_str("t", "nan,1\n0,1\n").unwrap_err().to_string();
    /// assert!(e.contains("line 1, column 1 (x): `nan` is not finite"), "{e}");
    /// # Ok::<(), nadaraya_plot::Error>(())
    /// ```
    pub fn from_csv_str(name: &str, text: &str) -> Result<Self, Error> {
        Self::from_csv_columns(name, text, &Columns::default())
    }

    /// A data set from two columns of CSV text, chosen by [`Columns`]: by 1-based position or by
    /// header name. Fields are split by the [`csv`](https://docs.rs/csv) crate (quotes, doubled
    /// quotes, spaces around fields trimmed), one line at a time so that every message names the
    /// line as the file numbers it.
    ///
    /// With the default columns (`x` the first, `y` the second, neither chosen) a line must hold
    /// exactly two fields, as [`from_csv_str`](Self::from_csv_str) states. With a chosen column a
    /// line may hold any number of fields that includes both columns; a column chosen by name
    /// needs a header line. Blank lines, `#` comments, the byte-order mark and the header rule are
    /// as in [`from_csv_str`](Self::from_csv_str).
    ///
    /// # Errors
    /// [`Error::Data`] naming the line and the column (by position, and `x` or `y`) of the first
    /// cell that is missing, empty, not a number, NaN or infinite, or beyond `±f32::MAX`; a
    /// column name that no header holds (or a name with no header line at all); a line that is
    /// not two fields in the default mode (as [`from_csv_str`](Self::from_csv_str)); no sample.
    ///
    /// # Examples
    /// ```
    /// use nadaraya_plot::{Column, Columns, Dataset};
    /// let text = "time,noise,signal\n0,9,1\n1,9,3\n";
    /// let cols = Columns { x: Some(Column::Name("time".into())), y: Some(Column::Index(3)) };
    /// let d = Dataset::from_csv_columns("t", text, &cols)?;
    /// assert_eq!((d.x(), d.y()), (&[0.0, 1.0][..], &[1.0, 3.0][..]));
    /// let cols = Columns { x: Some(Column::Name("t".into())), y: None };
    /// let e = Dataset::from_csv_columns("t", text, &cols).unwrap_err().to_string();
    /// assert!(e.contains("no column named `t`"), "{e}");
    /// # Ok::<(), nadaraya_plot::Error>(())
    /// ```
    pub fn from_csv_columns(name: &str, text: &str, columns: &Columns) -> Result<Self, Error> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let strict = columns.x.is_none() && columns.y.is_none();
        let (mut x, mut y) = (Vec::new(), Vec::new());
        // The 0-based positions of the x and y columns, known once the first line is read.
        let mut at: Option<(usize, usize)> = None;
        let mut splitter = Splitter::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at_line = |why: String| Error::Data(format!("{name}, line {}{why}", n + 1));
            let fields = splitter.split(line).map_err(at_line)?;
            let (ix, iy) = match at {
                Some(p) => p,
                None => {
                    let header = is_header(&fields);
                    let p = columns
                        .positions(header.then_some(&fields[..]))
                        .map_err(|why| Error::Data(format!("{name}: {why}")))?;
                    at = Some(p);
                    if header {
                        continue;
                    }
                    p
                }
            };
            if strict && fields.len() != 2 {
                return Err(at_line(two_fields(line, fields.len())));
            }
            let cell = |i: usize, axis: &str| match fields.get(i) {
                Some(f) => parse_field(f, i + 1, axis),
                None => Err(format!(
                    ", column {} ({axis}) is missing: the line has {} field{} (`{line}`)",
                    i + 1,
                    fields.len(),
                    if fields.len() == 1 { "" } else { "s" }
                )),
            };
            x.push(cell(ix, "x").map_err(at_line)?);
            y.push(cell(iy, "y").map_err(at_line)?);
        }
        Self::new(name, x, y)
    }

    /// A data set from a CSV file (see [`from_csv_columns`](Self::from_csv_columns)).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read (or is not UTF-8), otherwise as
    /// [`from_csv_columns`](Self::from_csv_columns).
    pub fn from_csv_file(path: &Path, columns: &Columns) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_csv_columns(&path.display().to_string(), &text, columns)
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

/// A table of numbers read from CSV: `D ≥ 1` input columns `x_1 … x_D` and, last, the response
/// `y`, one sample a line; what `nadaraya fit` and `nadaraya predict` read (see [`TABLE_RULES`]).
///
/// # Examples
/// ```
/// use nadaraya_plot::Table;
/// let t = Table::from_csv_str("t", "a,b,y\n0,1,2\n3,4,5\n", 2)?;
/// assert_eq!((t.len(), t.dims()), (2, 2));
/// assert_eq!((t.x(), t.y()), (&[0.0, 1.0, 3.0, 4.0][..], &[2.0, 5.0][..]));
/// assert_eq!(t.header(), Some(&["a".to_owned(), "b".to_owned(), "y".to_owned()][..]));
/// let e = Table::from_csv_str("t", "0,1,2\n3,x,5\n", 2).unwrap_err().to_string();
/// assert!(e.contains("line 2, column 2 (x_2): `x` is not a number"), "{e}");
/// # Ok::<(), nadaraya_plot::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    name: String,
    header: Option<Vec<String>>,
    dims: usize,
    rows: usize,
    x: Vec<f32>,
    y: Vec<f32>,
}

impl Table {
    /// A table from CSV text whose last column is `y` and whose other columns are `x_1 … x_D`;
    /// at least `min_rows` samples (see [`TABLE_RULES`]). Fields are split by the
    /// [`csv`](https://docs.rs/csv) crate one line at a time, so that every message names the
    /// line as the file numbers it. The byte-order mark, blank lines, `#` comments and the
    /// header rule are those of [`Dataset::from_csv_str`]: the first line is a header exactly
    /// when none of its fields is empty or number-like.
    ///
    /// # Errors
    /// [`Error::Data`] naming the line and the column of the first cell that is empty, not a
    /// number, NaN or infinite, or beyond `±f32::MAX`; a line with another number of fields than
    /// the first (naming the line and both counts); a first line of one field (there is no `x`);
    /// fewer than `min_rows` samples.
    pub fn from_csv_str(name: &str, text: &str, min_rows: usize) -> Result<Self, Error> {
        Self::read(name, text, min_rows, true)
    }

    /// Points without a response: every column is an input `x_1 … x_D` (`y()` is empty). The
    /// rules and messages are those of [`from_csv_str`](Self::from_csv_str), a single column
    /// allowed, at least one point.
    ///
    /// # Errors
    /// As [`from_csv_str`](Self::from_csv_str).
    ///
    /// # Examples
    /// ```
    /// use nadaraya_plot::Table;
    /// let t = Table::points_from_csv_str("q", "0.5\n1.5\n")?;
    /// assert_eq!((t.len(), t.dims(), t.x()), (2, 1, &[0.5, 1.5][..]));
    /// # Ok::<(), nadaraya_plot::Error>(())
    /// ```
    pub fn points_from_csv_str(name: &str, text: &str) -> Result<Self, Error> {
        Self::read(name, text, 1, false)
    }

    /// Points from a CSV file (see [`points_from_csv_str`](Self::points_from_csv_str)).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read, otherwise as
    /// [`points_from_csv_str`](Self::points_from_csv_str).
    pub fn points_from_csv_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::points_from_csv_str(&path.display().to_string(), &text)
    }

    fn read(name: &str, text: &str, min_rows: usize, response: bool) -> Result<Self, Error> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut header = None;
        let mut width = None;
        let mut rows = 0usize;
        let (mut x, mut y) = (Vec::new(), Vec::new());
        let mut splitter = Splitter::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at_line = |why: String| Error::Data(format!("{name}, line {}{why}", n + 1));
            let fields = splitter.split(line).map_err(at_line)?;
            let w = match width {
                Some(w) => w,
                None => {
                    let w = fields.len();
                    if response && w < 2 {
                        return Err(at_line(format!(
                            ": one field (`{line}`), but a line needs the x columns and then y, \
                             separated by commas"
                        )));
                    }
                    width = Some(w);
                    if is_header(&fields) {
                        header = Some(fields);
                        continue;
                    }
                    w
                }
            };
            if fields.len() != w {
                return Err(at_line(format!(
                    ": {} field{} where the first line has {w} (`{line}`)",
                    fields.len(),
                    if fields.len() == 1 { "" } else { "s" }
                )));
            }
            for (i, f) in fields.iter().enumerate() {
                let last = response && i + 1 == w;
                let axis = if last {
                    "y".to_owned()
                } else {
                    format!("x_{}", i + 1)
                };
                let v = parse_field(f, i + 1, &axis).map_err(at_line)?;
                if last { y.push(v) } else { x.push(v) }
            }
            rows += 1;
        }
        if rows < min_rows.max(1) {
            return Err(Error::Data(format!(
                "{name}: {rows} {}{}, at least {} needed",
                if response { "sample" } else { "point" },
                if rows == 1 { "" } else { "s" },
                min_rows.max(1)
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            header,
            dims: width.unwrap_or(2) - usize::from(response),
            rows,
            x,
            y,
        })
    }

    /// A table from a CSV file (see [`from_csv_str`](Self::from_csv_str)).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read (or is not UTF-8), otherwise as
    /// [`from_csv_str`](Self::from_csv_str).
    pub fn from_csv_file(path: &Path, min_rows: usize) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_csv_str(&path.display().to_string(), &text, min_rows)
    }

    /// The name (the file path).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The header line's fields, if the first line was one.
    #[must_use]
    pub fn header(&self) -> Option<&[String]> {
        self.header.as_deref()
    }

    /// The number of input columns `D`.
    #[must_use]
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// The number of samples (rows).
    #[must_use]
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Never true: a table holds at least one row.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The inputs, `len() × dims()` row-major.
    #[must_use]
    pub fn x(&self) -> &[f32] {
        &self.x
    }

    /// The responses `y_i` (empty for points read without a response).
    #[must_use]
    pub fn y(&self) -> &[f32] {
        &self.y
    }
}

/// The rules [`Table::from_csv_str`] reads a CSV file by, as `nadaraya fit --help` states them.
pub const TABLE_RULES: &str = "The CSV file holds one sample a line: the inputs x_1 … x_D and, \
last, the response y, separated by commas (a field may be enclosed in double quotes). A UTF-8 \
byte-order mark is removed; blank lines and lines starting with `#` are skipped. The first other \
line is a header exactly when none of its fields is empty or number-like (an optional sign, then \
a digit or `.`, or a spelling of NaN or infinity). Every data line must have as many fields as \
the first line, each a finite number within the f32 range (rounded to the nearest f32); anything \
else (NaN, infinity, 1e39, a missing or extra field, a word) is an error naming the line and \
column. At least two samples are needed.";

/// The rules [`Dataset::from_csv_str`] reads a CSV file by, as `--help` and the README state
/// them.
pub const CSV_RULES: &str = "A CSV file holds one `x,y` pair a line, separated by a comma (a field \
may be enclosed in double quotes). A UTF-8 byte-order mark is removed; blank lines and lines starting with `#` are skipped. The first \
other line is a header exactly when none of its fields is empty or number-like (an optional \
sign, then a digit or `.`, or a spelling of NaN or infinity), so `x,y` is a header and `nan,3` \
is a data line. Every data line must be two finite numbers within the f32 range (rounded to the \
nearest f32); anything else (NaN, infinity, 1e39, a `;` or tab separator, a third field) is an \
error naming the line and column. With `--x-col` or `--y-col` (a 1-based position or a header \
name) any other columns may be present and are ignored; a name needs the header line.";

/// A field without surrounding blanks and one pair of enclosing double quotes.
fn unquote(field: &str) -> &str {
    let f = field.trim();
    f.strip_prefix('"')
        .and_then(|g| g.strip_suffix('"'))
        .map_or(f, str::trim)
}

/// Whether a field looks like a number: an optional sign, then a digit or `.`, or a spelling of
/// NaN or infinity (quoted or not).
fn number_like(field: &str) -> bool {
    let f = unquote(field);
    let unsigned = f.strip_prefix(['+', '-']).unwrap_or(f);
    let lower = unsigned.to_ascii_lowercase();
    unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        || lower.starts_with("nan")
        || lower.starts_with("inf")
}

/// A first line is a header when none of its fields is empty or number-like.
fn is_header(fields: &[String]) -> bool {
    fields.iter().all(|f| !f.is_empty() && !number_like(f))
}

/// Splits lines into fields with one `csv_core` reader, the engine of the `csv` crate, reset
/// between lines (quotes honoured, spaces around fields trimmed). A `csv::Reader` per line would
/// rebuild the parser's state machine every time: that was 30 % of the instructions of
/// `nadaraya fit` on a 1000-line file (callgrind).
struct Splitter {
    core: csv_core::Reader,
    buf: Vec<u8>,
}

impl Splitter {
    fn new() -> Self {
        Self {
            core: csv_core::Reader::new(),
            buf: vec![0; 256],
        }
    }

    /// One line's fields; `Err` says what is wrong (`: …`).
    fn split(&mut self, line: &str) -> Result<Vec<String>, String> {
        use csv_core::ReadFieldResult;
        self.core.reset();
        let mut input = line.as_bytes();
        let (mut fields, mut field) = (Vec::new(), Vec::new());
        loop {
            let (res, nin, nout) = self.core.read_field(input, &mut self.buf);
            input = input.get(nin..).unwrap_or_default();
            field.extend_from_slice(self.buf.get(..nout).unwrap_or_default());
            match res {
                ReadFieldResult::InputEmpty | ReadFieldResult::OutputFull => {}
                ReadFieldResult::Field { record_end } => {
                    let f = String::from_utf8(std::mem::take(&mut field))
                        .map_err(|_| format!(": cannot split `{line}` into fields (not UTF-8)"))?;
                    // `1, "2"`: a quote after a blank is literal to the csv crate; strip one pair.
                    fields.push(unquote(&f).to_owned());
                    if record_end {
                        return Ok(fields);
                    }
                }
                ReadFieldResult::End => return Ok(fields),
            }
        }
    }
}

/// The message for a line of `found` fields where the default columns need two.
fn two_fields(line: &str, found: usize) -> String {
    let sep = [(';', "`;`"), ('\t', "a tab")]
        .into_iter()
        .find(|&(c, _)| line.contains(c));
    match sep {
        Some((_, s)) if found == 1 => format!(
            ": expected two numbers `x,y` separated by a comma, found {s} in `{line}` (only `,` \
             separates)"
        ),
        _ => format!(
            ": expected two numbers `x,y`, found {found} field{} in `{line}`",
            if found == 1 { "" } else { "s" }
        ),
    }
}

/// One field as an `f32`: `Err` says which column and why (`, column 1 (x): …`).
fn parse_field(f: &str, column: usize, axis: &str) -> Result<f32, String> {
    let col = format!(", column {column} ({axis})");
    if f.is_empty() {
        return Err(format!("{col} is empty"));
    }
    match f.parse::<f32>() {
        Err(_) => Err(format!("{col}: `{f}` is not a number")),
        Ok(v) if v.is_finite() => Ok(v),
        // Digits that round to infinity (`1e39`), not a spelling of NaN or infinity.
        Ok(_)
            if f.trim_start_matches(['+', '-'])
                .starts_with(|c: char| c.is_ascii_digit() || c == '.') =>
        {
            Err(format!(
                "{col}: `{f}` is beyond the f32 range (magnitude at most {:e})",
                f32::MAX
            ))
        }
        Ok(_) => Err(format!("{col}: `{f}` is not finite")),
    }
}

/// One CSV column: by 1-based position or by its name in the header line.
///
/// Parsed from a command-line value: digits are a position (`2`), anything else a name (`time`).
///
/// # Examples
/// ```
/// use nadaraya_plot::Column;
/// assert_eq!("3".parse::<Column>()?, Column::Index(3));
/// assert_eq!("time".parse::<Column>()?, Column::Name("time".into()));
/// assert!("0".parse::<Column>().is_err());
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Column {
    /// The column at this 1-based position.
    Index(usize),
    /// The column whose header field is this name (exactly, after trimming spaces).
    Name(String),
}

impl std::str::FromStr for Column {
    type Err = String;

    /// # Errors
    /// A message if the value is empty, or all digits but `0` or beyond `usize`.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("a column is a 1-based position or a header name, not empty".into());
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return match s.parse::<usize>() {
                Ok(0) => Err("columns are numbered from 1".into()),
                Ok(i) => Ok(Self::Index(i)),
                Err(_) => Err(format!("column position `{s}` is too large")),
            };
        }
        Ok(Self::Name(s.to_owned()))
    }
}

impl std::fmt::Display for Column {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Index(i) => write!(f, "{i}"),
            Self::Name(n) => f.write_str(n),
        }
    }
}

/// Which CSV columns hold `x` and `y`; `None` is the default: the first column for `x`, the
/// second for `y`, and then every line must be exactly those two fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Columns {
    /// The `x` column (`--x-col`), the first by default.
    pub x: Option<Column>,
    /// The `y` column (`--y-col`), the second by default.
    pub y: Option<Column>,
}

impl Columns {
    /// The 0-based positions of x and y, given the header's fields if the first line is one.
    fn positions(&self, header: Option<&[String]>) -> Result<(usize, usize), String> {
        let find = |c: &Option<Column>, default: usize, axis: &str| match c {
            None => Ok(default),
            Some(Column::Index(i)) => Ok(i - 1),
            Some(Column::Name(n)) => match header {
                None => Err(format!(
                    "the {axis} column `{n}` is chosen by name, but the first line is data, not \
                     a header"
                )),
                Some(h) => h.iter().position(|f| f == n).ok_or_else(|| {
                    format!(
                        "no column named `{n}` (for {axis}) in the header ({})",
                        h.join(", ")
                    )
                }),
            },
        };
        Ok((find(&self.x, 0, "x")?, find(&self.y, 1, "y")?))
    }
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
        assert!(
            e.contains("line 1: expected two numbers `x,y`, found 3 fields"),
            "{e}"
        );
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

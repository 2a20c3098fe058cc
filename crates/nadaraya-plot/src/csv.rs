//! The plotted series as CSV, written beside each image: `panel,series,x,value`.
//!
//! Written and read by the [`csv`](https://docs.rs/csv) crate, a row as a `serde` record. Numbers
//! are written with Rust's shortest round-trip formatting, so reading a file back gives exactly
//! the `f32` values that were drawn. Text fields are double-quoted (a quote inside is doubled).

use crate::{Error, Figure};

/// One plotted point: one record of the CSV.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct Row {
    /// The panel id (`prediction`, `weights`, ...).
    pub panel: String,
    /// The series label.
    pub series: String,
    /// The x coordinate.
    pub x: f32,
    /// The plotted value.
    pub value: f32,
}

/// The header line of every figure CSV.
pub const HEADER: &str = "panel,series,x,value";

/// Every point of `fig`, panel by panel, series by series.
#[must_use]
pub fn rows(fig: &Figure) -> Vec<Row> {
    let mut out = Vec::new();
    for p in &fig.panels {
        for s in &p.series {
            for &(x, value) in &s.points {
                out.push(Row {
                    panel: p.id.clone(),
                    series: s.label.clone(),
                    x,
                    value,
                });
            }
        }
    }
    out
}

/// The CSV text of `fig`.
///
/// # Examples
/// ```
/// use nadaraya_plot::{csv, scenarios, Params};
/// let fig = scenarios::figure("default", &Params::default())?;
/// let text = csv::to_csv(&fig);
/// assert_eq!(csv::parse(&text)?, csv::rows(&fig));
/// # Ok::<(), nadaraya_plot::Error>(())
/// ```
#[must_use]
pub fn to_csv(fig: &Figure) -> String {
    // Text is quoted and numbers are not (`QuoteStyle::NonNumeric`); numbers are written by
    // `Display`, Rust's shortest round trip. Writing to a `Vec` cannot fail.
    let mut w = ::csv::WriterBuilder::new()
        .quote_style(::csv::QuoteStyle::NonNumeric)
        .from_writer(Vec::new());
    let mut ok = true;
    for r in rows(fig) {
        let (x, value) = (r.x.to_string(), r.value.to_string());
        ok &= w
            .write_record([r.panel.as_str(), r.series.as_str(), &x, &value])
            .is_ok();
    }
    debug_assert!(ok, "writing CSV into memory failed");
    let body = String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default();
    format!("{HEADER}\n{body}")
}

/// Reads CSV text written by [`to_csv`].
///
/// # Errors
/// [`Error::Data`] naming the first line that is not `panel,series,x,value` with two numbers,
/// or a missing header.
pub fn parse(text: &str) -> Result<Vec<Row>, Error> {
    if text.lines().next().map(str::trim) != Some(HEADER) {
        return Err(Error::Data(format!(
            "CSV: the first line must be `{HEADER}`"
        )));
    }
    let mut reader = ::csv::ReaderBuilder::new()
        .trim(::csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    for row in reader.deserialize::<Row>() {
        out.push(row.map_err(|e| {
            let line = e.position().map_or(0, ::csv::Position::line);
            Error::Data(format!("CSV line {line}: cannot read it ({e})"))
        })?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_round_trip_and_bad_lines_are_errors() {
        let text = format!("{HEADER}\n\"a\",\"say \"\"hi\"\", x=1\",0.5,-2e-3\n");
        let r = parse(&text).unwrap();
        assert_eq!(r[0].series, "say \"hi\", x=1");
        assert_eq!((r[0].x, r[0].value), (0.5, -0.002));
        assert!(parse("x,y\n").is_err());
        let e = parse(&format!("{HEADER}\n\"a\",\"b\",1\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        assert!(parse(&format!("{HEADER}\n\"a,\"b\",1,2\n")).is_err());
        assert!(parse(&format!("{HEADER}\n\"a\",\"b\",one,2\n")).is_err());
    }
}

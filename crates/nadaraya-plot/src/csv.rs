//! The plotted series as CSV, written beside each image: `panel,series,x,value`.
//!
//! Numbers are written with Rust's shortest round-trip formatting, so reading a file back gives
//! exactly the `f32` values that were drawn. Text fields are always double-quoted (a quote inside
//! is doubled).

use crate::{Error, Figure};

/// One plotted point.
#[derive(Clone, Debug, PartialEq)]
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

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
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
    let mut out = String::from(HEADER);
    out.push('\n');
    for r in rows(fig) {
        out.push_str(&format!(
            "{},{},{},{}\n",
            quote(&r.panel),
            quote(&r.series),
            r.x,
            r.value
        ));
    }
    out
}

/// Splits one line into fields, honouring double quotes.
fn fields(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') if cur.is_empty() => quoted = true,
            (false, ',') => out.push(std::mem::take(&mut cur)),
            (_, c) => cur.push(c),
        }
    }
    if quoted {
        return None;
    }
    out.push(cur);
    Some(out)
}

/// Reads CSV text written by [`to_csv`].
///
/// # Errors
/// [`Error::Data`] naming the first line that is not `panel,series,x,value` with two numbers,
/// or a missing header.
pub fn parse(text: &str) -> Result<Vec<Row>, Error> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h.trim() == HEADER => {}
        _ => {
            return Err(Error::Data(format!(
                "CSV: the first line must be `{HEADER}`"
            )));
        }
    }
    let mut out = Vec::new();
    for (n, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let bad = || Error::Data(format!("CSV line {}: cannot read `{line}`", n + 1));
        let f = fields(line).ok_or_else(bad)?;
        let [panel, series, x, value] = <[String; 4]>::try_from(f).map_err(|_| bad())?;
        out.push(Row {
            panel,
            series,
            x: x.trim().parse().map_err(|_| bad())?,
            value: value.trim().parse().map_err(|_| bad())?,
        });
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

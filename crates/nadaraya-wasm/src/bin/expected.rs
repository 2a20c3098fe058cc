//! Prints, as JSON, the numbers the page must show, computed natively by the same [`Page`]
//! functions the wasm module runs: `scripts/page --check` compares the browser against them.
//!
//! `nadaraya-page-expected` prints one record per scenario and query `x_q` (and, for the
//! `default` scenario, per random-feature count `m` of the check); `nadaraya-page-expected
//! --state FILE` prints one record for the state in `FILE`: a first line `h tau x_q unit
//! feature_index`, then one line `x y` per sample (the check writes it after a drag).

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use nadaraya_wasm::{Buffer, Page, SCENARIOS, Summary};

/// The feature indices of `FEATURES` the check visits: m = 4, 32, 256, 2048.
const CHECKED_FEATURES: [usize; 4] = [0, 3, 6, 9];

fn array(out: &mut String, v: &[f32]) {
    out.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // `{:?}` is the shortest text that reads back as the same f32; not finite is null.
        if x.is_finite() {
            let _ = write!(out, "{x:?}");
        } else {
            out.push_str("null");
        }
    }
    out.push(']');
}

fn record(out: &mut String, name: &str, feature: usize, page: &mut Page) {
    let exact = page.compute().map_err(|e| e.to_string());
    let rf = page.compute_rf().map_err(|e| e.to_string());
    let _ = write!(
        out,
        "{{\"scenario\":\"{name}\",\"feature\":{feature},\"error\":"
    );
    match exact.and(rf) {
        Ok(()) => out.push_str("null"),
        Err(e) => {
            let _ = write!(out, "\"{}\"", e.replace('"', "'"));
        }
    }
    out.push_str(",\"summary\":{");
    for (i, (n, v)) in Summary::NAMES
        .iter()
        .zip(page.summary().to_array())
        .enumerate()
    {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"{n}\":");
        array(out, &[v]);
    }
    out.push('}');
    for (key, b) in [
        ("x", Buffer::X),
        ("y", Buffer::Y),
        ("grid", Buffer::Grid),
        ("y_gauss", Buffer::YGauss),
        ("y_dot", Buffer::YDot),
        ("alpha_gauss", Buffer::AlphaGauss),
        ("alpha_dot", Buffer::AlphaDot),
        ("rf", Buffer::RfEstimate),
        ("rf_exact", Buffer::RfExact),
    ] {
        let _ = write!(out, ",\"{key}\":");
        array(out, page.buffer(b));
    }
    out.push('}');
}

fn state(path: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut lines = text.lines();
    let head: Vec<f32> = lines
        .next()
        .ok_or("empty state file")?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{path}: {e}"))?;
    let [h, tau, x_q, unit, feature] = head[..] else {
        return Err(format!(
            "{path}: the first line needs h tau x_q unit feature"
        ));
    };
    let mut page = Page::new();
    while page.remove(0).is_ok() {}
    for line in lines {
        let v: Vec<f32> = line
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{path}: {e}"))?;
        if let [x, y] = v[..] {
            page.push(x, y).map_err(|e| e.to_string())?;
        }
    }
    page.set_h(h).map_err(|e| e.to_string())?;
    page.set_tau(tau).map_err(|e| e.to_string())?;
    page.set_x_q(x_q).map_err(|e| e.to_string())?;
    page.set_unit(unit != 0.0);
    page.set_feature_index(feature as usize)
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    record(&mut out, "state", feature as usize, &mut page);
    Ok(out)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = match args.as_slice() {
        [] => {
            let mut out = String::from("[");
            let mut page = Page::new();
            for s in SCENARIOS {
                let features: &[usize] = if s.name == "default" {
                    &CHECKED_FEATURES
                } else {
                    &CHECKED_FEATURES[1..2]
                };
                for &x_q in s.x_q {
                    for &f in features {
                        page.apply(s);
                        // Scenario values are valid by construction (the tests compute them).
                        let _ = page.set_x_q(x_q);
                        let _ = page.set_feature_index(f);
                        if out.len() > 1 {
                            out.push_str(",\n");
                        }
                        record(&mut out, s.name, f, &mut page);
                    }
                }
            }
            out.push(']');
            Ok(out)
        }
        [flag, path] if flag == "--state" => state(path),
        _ => Err("usage: nadaraya-page-expected [--state FILE]".into()),
    };
    match out {
        // A closed pipe is a failure to report, not a panic.
        Ok(s) => match writeln!(std::io::stdout().lock(), "{s}") {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        },
        Err(e) => {
            eprintln!("nadaraya-page-expected: {e}");
            ExitCode::FAILURE
        }
    }
}

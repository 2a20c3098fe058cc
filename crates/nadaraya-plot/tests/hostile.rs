//! Hostile input to the figure tool (issue 11, class 8): no data row is silently dropped, axes
//! stay readable and flat data stay flat at any magnitude, a failing run writes nothing, and every
//! message names the flag the user typed and what is wrong with it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nadaraya_plot::{Dataset, Params, draw, scenarios};

fn err(text: &str) -> String {
    match Dataset::from_csv_str("t", text) {
        Ok(d) => panic!("{text:?} was read as x={:?} y={:?}", d.x(), d.y()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_first_row_that_does_not_parse_is_an_error_never_a_dropped_header() {
    for (text, want) in [
        ("nan,3\n1,2\n", "line 1, column 1 (x): `nan` is not finite"),
        ("1,inf\n1,2\n", "line 1, column 2 (y): `inf` is not finite"),
        (
            "1e39,2\n1,2\n",
            "line 1, column 1 (x): `1e39` is beyond the f32 range",
        ),
        (
            "1,-4e38\n1,2\n",
            "line 1, column 2 (y): `-4e38` is beyond the f32 range",
        ),
        (
            "1;2\n3;4\n",
            "line 1: expected two numbers `x,y` separated by a comma, found `;`",
        ),
        (
            "1\t2\n3,4\n",
            "line 1: expected two numbers `x,y` separated by a comma, found a tab",
        ),
        (
            "# c\n\n1,2,3\n3,4\n",
            "line 3: expected two numbers `x,y`, found 3 fields",
        ),
        // A header named like data (`x;y`) is a header; the `;` rows after it are errors.
        (
            "x;y\n1;2\n",
            "line 2: expected two numbers `x,y` separated by a comma, found `;`",
        ),
        // Only the first line may be a header.
        (
            "x,y\n1,2\nx,y\n",
            "line 3, column 1 (x): `x` is not a number",
        ),
        (",\n1,2\n", "line 1, column 1 (x) is empty"),
    ] {
        let e = err(text);
        assert!(e.contains(want), "{text:?}: {e}");
    }
    // A byte-order mark is removed: the first row is data, not a header.
    let d = Dataset::from_csv_str("t", "\u{feff}1,2\n3,4\n").unwrap();
    assert_eq!((d.x(), d.y()), (&[1.0, 3.0][..], &[2.0, 4.0][..]));
    let d = Dataset::from_csv_str("t", "\u{feff}x,y\r\n-1.5,+2e-3\r\n").unwrap();
    assert_eq!((d.x(), d.y()), (&[-1.5][..], &[0.002][..]));
    // Headers: every field a non-empty name.
    for header in ["x,y", "time, \"value\"", "x", "X;Y"] {
        let d = Dataset::from_csv_str("t", &format!("{header}\n5,6\n")).unwrap();
        assert_eq!(d.x(), &[5.0], "{header}");
    }
    // f32::MAX itself and values that round to it are in range; a subnormal is kept.
    let d = Dataset::from_csv_str("t", "3.4028235e38,1e-45\n").unwrap();
    assert_eq!((d.x()[0], d.y()[0]), (f32::MAX, 1e-45));
}

#[test]
fn a_non_finite_number_is_called_that_not_a_missing_number() {
    let e = err("1,2\n1,nan\n");
    assert!(
        e.contains("line 2, column 2 (y): `nan` is not finite"),
        "{e}"
    );
    assert!(!e.contains("expected two numbers"), "{e}");
}

/// The rows of the top panel (at 1×, `draw::SIZE`) holding pixels of one of the colours `cs`
/// right of the legend, as (first, last).
fn rows_of_colour(buf: &[u8], cs: &[[u8; 3]]) -> Option<(u32, u32)> {
    let (w, _) = draw::SIZE;
    let near = |p: &[u8]| {
        cs.iter()
            .any(|c| p.iter().zip(c).all(|(&a, &b)| a.abs_diff(b) < 30))
    };
    let mut rows = (40..420u32).filter(|&y| {
        (420..980u32).any(|x| {
            let i = ((y * w + x) * 3) as usize;
            near(&buf[i..i + 3])
        })
    });
    let first = rows.next()?;
    Some((first, rows.next_back().unwrap_or(first)))
}

#[test]
fn constant_large_data_draw_flat_not_rounding_noise() {
    use plotters::prelude::*;
    let x: Vec<f32> = (-2..=2).map(|i| i as f32).collect();
    for y0 in [1e6f32, -3e7, 1e30] {
        let data = Dataset::new("flat", x.clone(), vec![y0; x.len()]).unwrap();
        let p = Params {
            data,
            ..Params::default()
        };
        let fig = scenarios::figure("default", &p).unwrap();
        let (w, h) = draw::SIZE;
        let mut buf = vec![0u8; (w * h * 3) as usize];
        draw::draw(
            &fig,
            &BitMapBackend::with_buffer(&mut buf, draw::SIZE).into_drawing_area(),
        )
        .unwrap();
        // Both curves (blue Gaussian, orange softmax-dot drawn over it) are one horizontal line
        // of width 3: rounding noise of a few ulp must not move them by more than a few pixels.
        let cs: Vec<[u8; 3]> = [draw::PALETTE[1], draw::PALETTE[2]]
            .iter()
            .map(|c| [c.0, c.1, c.2])
            .collect();
        let (a, b) = rows_of_colour(&buf, &cs).expect("curve drawn");
        assert!(b - a <= 6, "y = {y0}: curves span rows {a}..={b}");
    }
}

/// Every text of the SVG that reads as a number: the tick labels.
fn numeric_labels(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = t.split_once('>')?.1.split_once("</text>")?.0.trim();
            body.parse::<f64>().is_ok().then(|| body.to_owned())
        })
        .collect()
}

#[test]
fn tick_labels_stay_short_at_any_magnitude() {
    use plotters::prelude::*;
    for (x_q, scenario) in [(1e18f32, "default"), (-1e37, "small-tau"), (2.5e-7, "sign")] {
        let p = Params {
            x_q,
            ..Params::default()
        };
        let fig = scenarios::figure(scenario, &p).unwrap();
        let mut svg = String::new();
        draw::draw(
            &fig,
            &SVGBackend::with_string(&mut svg, draw::size(&fig)).into_drawing_area(),
        )
        .unwrap();
        let labels = numeric_labels(&svg);
        assert!(labels.len() > 10, "{x_q}: {labels:?}");
        for l in &labels {
            assert!(l.chars().count() <= 10, "x_q = {x_q}: tick label {l}");
        }
        // The query's own label is short too.
        if scenario == "default" {
            assert!(svg.contains("x_q=1e18"), "no `x_q=1e18` label");
        }
    }
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nadaraya-plot"))
}

/// A fresh, empty temporary folder for one test.
fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("nadaraya-plot-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn a_failing_scenario_writes_nothing() {
    let dir = scratch("atomic");
    std::fs::write(dir.join("keep.txt"), "mine").unwrap();
    let out = dir.join("figs");
    let out_s = out.to_str().unwrap();
    // A computation that fails in the second scenario (a score that overflows at x_q = 1e30),
    // a feature count rejected in the last, an unknown name after a good one.
    for args in [
        &["--only", "small-h,default", "--x-q", "1e30"][..],
        &["--features", "0"][..],
        &["--only", "default,nope"][..],
    ] {
        let o = bin().args(args).args(["--out", out_s]).output().unwrap();
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(!out.exists(), "{args:?} left {:?}", entries(&out));
    }
    // Into an existing folder: its files stay as they were and nothing is added.
    for args in [
        &["--only", "small-h,default", "--x-q", "1e30"][..],
        &["--features", "0"][..],
    ] {
        let o = bin()
            .args(args)
            .args(["--out", dir.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!o.status.success());
        assert_eq!(entries(&dir), ["keep.txt"], "{args:?}");
    }
    // A good run writes all three files of each scenario and no staging folder.
    let o = run(&["--only", "small-tau,default,small-tau", "--out", out_s]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        entries(&out),
        [
            "default.csv",
            "default.png",
            "default.svg",
            "small-tau.csv",
            "small-tau.png",
            "small-tau.svg"
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn stderr_of(args: &[&str]) -> String {
    let dir = scratch("messages");
    let o = bin()
        .args(args)
        .args(["--out", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!o.status.success(), "{args:?} succeeded");
    assert!(entries(&dir).is_empty(), "{args:?} wrote files");
    std::fs::remove_dir_all(&dir).unwrap();
    String::from_utf8(o.stderr).unwrap()
}

#[test]
fn every_message_names_the_flag_typed_and_what_is_wrong() {
    for (args, want) in [
        (
            &["--small-h", "0"][..],
            "`--small-h 0`: not a valid bandwidth",
        ),
        (&["--h", "1e19"][..], "`--h 1e19`: not a valid bandwidth"),
        (
            &["--small-tau", "-1"][..],
            "`--small-tau -1`: τ = -1 is not a valid temperature",
        ),
        (
            &["--tau", "inf"][..],
            "`--tau inf`: τ = inf is not a valid temperature",
        ),
        (
            &["--h", "4e-20"][..],
            "`--h 4e-20`: the bandwidth-temperature scenario's τ = h² = 1.6e-39 is not",
        ),
        (
            &["--tau", "5e37"][..],
            "`--tau 5e37`: the random-features error sweep's τ = 4·τ = 2e38 is not",
        ),
        (
            &["--x-q", "nan"][..],
            "`--x-q NaN`: the query must be a finite number",
        ),
        (
            &["--features", "0"][..],
            "`--features`: a feature count must be at least 1",
        ),
        (&["--only", "nope"][..], "`--only nope`: no such scenario"),
        (
            &["--data", "no-such-file"][..],
            "`--data no-such-file`: neither a file",
        ),
        (
            &["--only", "default", "--x-q", "1e30"][..],
            "scenario `default` (--h 0.5, --tau 1, --x-q 1e30): nadaraya: a kernel score",
        ),
    ] {
        let e = stderr_of(args);
        assert!(e.contains(want), "{args:?}: {e}");
    }
    // The value only matters where it is used: `--x-q` is not used by `small-h`.
    let dir = scratch("unused");
    let o = run(&[
        "--only",
        "small-h",
        "--x-q",
        "nan",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
    // A data file's message names the file, the line and the column.
    let dir = scratch("data");
    let file = dir.join("d.csv");
    std::fs::write(&file, "1,2\n1,nan\n").unwrap();
    let e = stderr_of(&["--data", file.to_str().unwrap()]);
    assert!(
        e.contains(&format!(
            "{}, line 2, column 2 (y): `nan` is not finite",
            file.display()
        )),
        "{e}"
    );
    // The rules are in --help.
    let o = run(&["--help"]);
    let help = String::from_utf8(o.stdout).unwrap();
    assert!(
        help.contains("byte-order mark") && help.contains("header exactly when"),
        "{help}"
    );
}

#[test]
fn constant_zero_data_draw_the_random_feature_errors_and_finish() {
    // Exact random-feature errors of 0 once gave a logarithmic axis from 0: drawing never ended.
    let dir = scratch("zero");
    std::fs::write(dir.join("d.csv"), "0,0\n1,0\n").unwrap();
    let mut child = bin()
        .args(["--only", "random-features", "--data"])
        .arg(dir.join("d.csv"))
        .arg("--out")
        .arg(dir.join("out"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert_eq!(
        entries(&dir.join("out")),
        [
            "random-features.csv",
            "random-features.png",
            "random-features.svg"
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The rows of the README table whose header line is `header`: the cells of each row.
fn readme_table(header: &str) -> Vec<Vec<String>> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let rows: Vec<Vec<String>> = text
        .lines()
        .skip_while(|l| l.trim() != header)
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect();
    assert!(rows.len() > 5, "table `{header}` not found");
    rows
}

/// Whether `text` holds every piece of `pattern` between `…`, in order.
fn matches(text: &str, pattern: &str) -> bool {
    let mut rest = text;
    pattern.split('…').all(|piece| match rest.find(piece) {
        Some(i) => {
            rest = &rest[i + piece.len()..];
            true
        }
        None => false,
    })
}

#[test]
fn the_readme_csv_table_is_the_behaviour() {
    for row in readme_table("| file | result |") {
        let file = row[0].trim_matches('`');
        let text = file
            .replace("\\n", "\n")
            .replace("\\t", "\t")
            .replace("<BOM>", "\u{feff}");
        let got = Dataset::from_csv_str("t", &text);
        match row[1].strip_prefix("error: ") {
            Some(want) => {
                let e = got.map(|d| format!("read as {:?}", d.x())).unwrap_err();
                assert!(matches(&e.to_string(), want), "{file}: {e} vs {want}");
            }
            None => {
                let want: Vec<f32> = row[1]
                    .strip_prefix("x = ")
                    .unwrap()
                    .split(", ")
                    .map(|v| v.parse().unwrap())
                    .collect();
                let d = got.unwrap_or_else(|e| panic!("{file}: {e}"));
                assert_eq!(d.x(), want, "{file}");
            }
        }
    }
}

#[test]
fn the_readme_message_table_is_the_behaviour() {
    for row in readme_table("| input | message |") {
        let args: Vec<&str> = row[0].trim_matches('`').split(' ').collect();
        let want = row[1]
            .strip_prefix("`` ")
            .and_then(|m| m.split_once(" ``"))
            .map(|(m, _)| m)
            .unwrap_or_else(|| panic!("cell {}", row[1]));
        let e = stderr_of(&args);
        assert!(matches(&e, want), "{args:?}: {e} vs {want}");
    }
}

#[test]
fn estimates_far_outside_the_axis_are_drawn_without_overflow() {
    use plotters::prelude::*;
    // One sample: random-Fourier estimates land near -1e6 while the axis spans about 1e-3.
    for y in [1.0f32, 1e6] {
        let p = Params {
            data: Dataset::new("one", vec![5.0], vec![y]).unwrap(),
            ..Params::default()
        };
        for fig in scenarios::all(&p).unwrap() {
            let (w, h) = draw::size(&fig);
            let mut buf = vec![0u8; (w * h * 3) as usize];
            draw::draw(
                &fig,
                &BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area(),
            )
            .unwrap();
        }
    }
}

//! `nadaraya plot` as a user runs it (issue 11, class 8, and issue 16): a failing run writes
//! nothing, every message names the flag the user typed and what is wrong with it, the README's
//! CSV and message tables are the behaviour, the default output is a new folder (never the
//! committed figures), and `--x-col`/`--y-col` choose CSV columns by position or header name.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nadaraya_plot::Dataset;

/// `nadaraya plot`, ready for more arguments.
fn bin() -> Command {
    common::nadaraya(&["plot"])
}

/// A fresh, empty temporary folder for one test.
fn scratch(name: &str) -> PathBuf {
    common::scratch(&format!("plot-{name}"))
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
            "scenario `default` (--h 0.5, --tau 1, --x-q 1e30): nadaraya: no sample in the kernel",
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

/// The rows of the table in nadaraya-plot's README whose header line is `header`: the cells of
/// each row.
fn readme_table(header: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../nadaraya-plot/README.md"),
    )
    .unwrap();
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
fn without_out_it_writes_a_new_folder_never_docs_figures() {
    // Run from a folder that looks like the repository root: `docs/figures` holds a figure.
    let dir = scratch("default-out");
    let figures = dir.join("docs/figures");
    std::fs::create_dir_all(&figures).unwrap();
    std::fs::write(figures.join("default.csv"), "committed").unwrap();
    let o = bin()
        .args(["--only", "default"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(entries(&figures), ["default.csv"]);
    assert_eq!(
        std::fs::read_to_string(figures.join("default.csv")).unwrap(),
        "committed"
    );
    assert_eq!(
        entries(&dir.join(nadaraya_plot::cli::DEFAULT_OUT)),
        ["default.csv", "default.png", "default.svg"]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The `data` panel's points of a figure CSV: the `(x, y)` the figure drew.
fn drawn_data(csv: &Path) -> Vec<(f32, f32)> {
    let rows = nadaraya_plot::csv::parse(&std::fs::read_to_string(csv).unwrap()).unwrap();
    let first = &rows[0];
    rows.iter()
        .filter(|r| r.panel == first.panel && r.series == first.series)
        .map(|r| (r.x, r.value))
        .collect()
}

#[test]
fn columns_are_chosen_by_position_or_header_name() {
    let dir = scratch("columns");
    let file = dir.join("d.csv");
    // Quoted names, a comment, spaces: the csv crate splits the fields.
    std::fs::write(
        &file,
        "# a log\n\"time\",\"noise\",\"a, b\"\n0, 9, 1\n1, 9, 3\n2.5, 9, -2\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let want = vec![(0.0, 1.0), (1.0, 3.0), (2.5, -2.0)];
    for cols in [
        &["--x-col", "time", "--y-col", "a, b"][..],
        &["--x-col", "1", "--y-col", "3"][..],
        &["--y-col", "3"][..],
    ] {
        let out = dir.join(format!("out-{}", cols.join("-").replace([',', ' '], "")));
        let o = bin()
            .args(["--only", "default", "--data", f])
            .args(cols)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{cols:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let mut got = drawn_data(&out.join("default.csv"));
        got.sort_by(|a, b| a.0.total_cmp(&b.0));
        // The first series of the first panel is the data (as the figure tests check).
        assert_eq!(got, want, "{cols:?}");
    }
    // Errors name the file, the line and the cell, or the missing name.
    for (cols, want) in [
        (
            &["--x-col", "tim"][..],
            "no column named `tim` (for x) in the header (time, noise, a, b)",
        ),
        (
            &["--y-col", "4"][..],
            "line 3, column 4 (y) is missing: the line has 3 fields",
        ),
        (&["--y-col", "0"][..], "columns are numbered from 1"),
    ] {
        let e = stderr_of(&[&["--only", "default", "--data", f][..], cols].concat());
        assert!(e.contains(want), "{cols:?}: {e}");
    }
    std::fs::write(&file, "t,y,z\n0,1,2\n1,x,3\n").unwrap();
    let e = stderr_of(&["--data", f, "--x-col", "1"]);
    assert!(
        e.contains(&format!("{f}, line 3, column 2 (y): `x` is not a number")),
        "{e}"
    );
    // A name needs a header; columns need a file.
    std::fs::write(&file, "0,1\n1,2\n").unwrap();
    let e = stderr_of(&["--data", f, "--x-col", "t"]);
    assert!(
        e.contains("chosen by name, but the first line is data"),
        "{e}"
    );
    let e = stderr_of(&["--data", "sine", "--x-col", "2"]);
    assert!(e.contains("`--data sine` is not a file"), "{e}");
    // The library reads the same way.
    let d = Dataset::from_csv_columns(
        "t",
        "a,b,c\n1,2,3\n",
        &nadaraya_plot::Columns {
            x: Some("c".parse().unwrap()),
            y: Some("1".parse().unwrap()),
        },
    )
    .unwrap();
    assert_eq!((d.x(), d.y()), (&[3.0][..], &[1.0][..]));
    std::fs::remove_dir_all(&dir).unwrap();
}

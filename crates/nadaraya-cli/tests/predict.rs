//! `nadaraya predict` as a user runs it: values, standard errors and grids against plain f64
//! computations written here; the bootstrap is deterministic for a seed; bad options are errors.

mod common;

use std::path::PathBuf;
use std::process::Output;

fn file(name: &str, text: &str) -> PathBuf {
    common::file("predict", name, text)
}

fn predict(args: &[&str]) -> Output {
    common::nadaraya(&["predict"]).args(args).output().unwrap()
}

/// The CSV rows after the `# bandwidth` comment and the header, as numbers.
fn rows(o: &Output) -> (String, Vec<Vec<f64>>) {
    let out = String::from_utf8(o.stdout.clone()).unwrap();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut lines = out.lines();
    assert!(lines.next().unwrap().starts_with("# bandwidth "));
    let header = lines.next().unwrap().to_owned();
    let v = lines
        .map(|l| l.split(',').map(|f| f.parse().unwrap()).collect())
        .collect();
    (header, v)
}

/// 40 samples x_i = i/8 - 2.5 (plus a wobble), y_i = x_i² / 3 + a fixed ±0.2 pattern.
fn data() -> (Vec<f64>, Vec<f64>, PathBuf) {
    let mut text = String::from("x,y\n");
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for i in 0..40 {
        let x = (i as f64 / 8.0 - 2.5 + 0.03 * ((i * 7) % 5) as f64) as f32;
        let y = (f64::from(x).powi(2) / 3.0 + 0.2 * [1.0, -1.0, 0.5, -0.5][i % 4]) as f32;
        text.push_str(&format!("{x},{y}\n"));
        xs.push(f64::from(x));
        ys.push(f64::from(y));
    }
    (xs, ys, file("d.csv", &text))
}

/// Gaussian weights of the samples at q, normalised, in f64.
fn weights(x: &[f64], q: f64, h: f64, skip: Option<usize>) -> Vec<f64> {
    let w: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, &xi)| {
            if Some(i) == skip {
                0.0
            } else {
                (-(xi - q).powi(2) / (2.0 * h * h)).exp()
            }
        })
        .collect();
    let s: f64 = w.iter().sum();
    w.into_iter().map(|v| v / s).collect()
}

#[test]
fn values_and_standard_errors_match_f64() {
    let (x, y, path) = data();
    let at = file("q.csv", "q\n-2\n-0.3\n0\n1.7\n");
    let h = 0.4;
    let o = predict(&[
        path.to_str().unwrap(),
        "--at",
        at.to_str().unwrap(),
        "--bandwidth",
        "0.4",
        "--se",
    ]);
    let (header, r) = rows(&o);
    assert_eq!(header, "x1,fit,se,lo,hi");
    // σ² = the mean squared leave-one-out residual.
    let s2 = (0..x.len())
        .map(|i| {
            let w = weights(&x, x[i], h, Some(i));
            (y[i] - w.iter().zip(&y).map(|(a, b)| a * b).sum::<f64>()).powi(2)
        })
        .sum::<f64>()
        / x.len() as f64;
    for (row, q) in r.iter().zip([-2.0, -0.3, 0.0, 1.7]) {
        let w = weights(&x, q, h, None);
        let fit: f64 = w.iter().zip(&y).map(|(a, b)| a * b).sum();
        let se = (s2 * w.iter().map(|v| v * v).sum::<f64>()).sqrt();
        assert_eq!(row[0], q);
        assert!((row[1] - fit).abs() < 1e-5, "{row:?} fit {fit}");
        assert!((row[2] / se - 1.0).abs() < 1e-4, "{row:?} se {se}");
        let z = 1.959_963_984_540_054;
        assert!((row[3] - (row[1] - z * row[2])).abs() < 1e-5, "{row:?}");
        assert!((row[4] - (row[1] + z * row[2])).abs() < 1e-5, "{row:?}");
    }
}

#[test]
fn a_grid_lists_its_points_in_column_order() {
    let (_, _, path) = data();
    let (_, r) = rows(&predict(&[
        path.to_str().unwrap(),
        "--grid",
        "-2:2:5",
        "--bandwidth",
        "0.5",
    ]));
    let xs: Vec<f64> = r.iter().map(|row| row[0]).collect();
    assert_eq!(xs, [-2.0, -1.0, 0.0, 1.0, 2.0]);
    // Two columns: the last varies fastest.
    let two = file("two.csv", "1,2,3\n2,3,4\n3,1,2\n0,0,1\n");
    let (h, r) = rows(&predict(&[
        two.to_str().unwrap(),
        "--grid",
        "0:1:2",
        "--grid",
        "5:7:3",
        "--bandwidth",
        "1,2",
    ]));
    assert_eq!(h, "x1,x2,fit");
    let pts: Vec<(f64, f64)> = r.iter().map(|row| (row[0], row[1])).collect();
    assert_eq!(
        pts,
        [
            (0.0, 5.0),
            (0.0, 6.0),
            (0.0, 7.0),
            (1.0, 5.0),
            (1.0, 6.0),
            (1.0, 7.0)
        ]
    );
}

#[test]
fn the_bootstrap_is_deterministic_for_a_seed() {
    let (_, _, path) = data();
    let p = path.to_str().unwrap();
    let args = [p, "--grid", "-2:2:3", "--bootstrap", "200", "--seed", "9"];
    let a = predict(&args);
    let (header, r) = rows(&a);
    assert_eq!(header, "x1,fit,boot_se,boot_lo,boot_hi,boot_n");
    for row in &r {
        assert!(
            row[2] > 0.0 && row[3] < row[1] && row[1] < row[4] && row[5] == 200.0,
            "{row:?}"
        );
    }
    assert_eq!(a.stdout, predict(&args).stdout);
    let other = predict(&[p, "--grid", "-2:2:3", "--bootstrap", "200", "--seed", "10"]);
    assert_ne!(a.stdout, other.stdout);
}

#[test]
fn bad_options_are_errors() {
    let (_, _, path) = data();
    let p = path.to_str().unwrap();
    let wide = file("w.csv", "1,2\n");
    for (args, want) in [
        (vec!["--grid", "1:0:3"], "lo ≤ hi"),
        (vec!["--grid", "0:1"], "a grid axis is `lo:hi:n`"),
        (vec!["--grid", "0:1:0"], "n must be from 1"),
        (
            vec!["--grid", "0:1:3", "--bandwidth", "1,2"],
            "2 bandwidths for 1 x columns",
        ),
        (
            vec!["--grid", "0:1:3", "--bandwidth", "-1"],
            "`--bandwidth -1`: not a valid bandwidth",
        ),
        (
            vec!["--at", wide.to_str().unwrap()],
            "2 columns, but the data has 1 x column",
        ),
        (
            vec!["--grid", "0:1:3", "--se", "--level", "1.5"],
            "a confidence level is between 0 and 1",
        ),
        (
            vec!["--grid", "0:1:3", "--bootstrap", "1"],
            "at least 2 replicates",
        ),
    ] {
        let mut all = vec![p];
        all.extend(args.iter());
        let o = predict(&all);
        let e = String::from_utf8(o.stderr).unwrap();
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(e.contains(want), "{args:?}: {e}");
    }
}

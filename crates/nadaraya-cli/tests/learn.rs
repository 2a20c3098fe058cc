//! `nadaraya learn` as a user runs it: on the `oblique-400` data of `nadaraya generate`, its
//! exact output format, its `cv` against a leave-one-out score written plainly in f64 below, the
//! hidden direction recovered, and its messages for bad files and options.

mod common;

use common::run as nadaraya;
use std::path::PathBuf;

/// The hidden direction of `oblique-400`: (1, 2, −1, 0.5, 1.5)/√8.5, written out here.
fn hidden() -> [f64; 5] {
    let n = 8.5f64.sqrt();
    [1.0 / n, 2.0 / n, -1.0 / n, 0.5 / n, 1.5 / n]
}

fn dir() -> PathBuf {
    common::scratch("learn")
}

/// The oblique-400 data written by `nadaraya generate`, and its path.
fn oblique() -> (PathBuf, Vec<Vec<f64>>, Vec<f64>) {
    let p = dir().join("oblique-400.csv");
    let o = nadaraya(&["generate", "oblique-400", "--out", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&p).unwrap();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for line in text.lines().skip(1) {
        let v: Vec<f64> = line.split(',').map(|c| c.parse().unwrap()).collect();
        y.push(v[v.len() - 1]);
        x.push(v[..v.len() - 1].to_vec());
    }
    (p, x, y)
}

/// The mean squared leave-one-out error of Gaussian Nadaraya–Watson with weights
/// exp(−|W(x_i − x_j)|²/2) over j ≠ i, in f64.
fn loo(w: &[f64], k: usize, x: &[Vec<f64>], y: &[f64]) -> f64 {
    let d = x[0].len();
    let z: Vec<Vec<f64>> = x
        .iter()
        .map(|r| {
            (0..k)
                .map(|a| (0..d).map(|b| w[a * d + b] * r[b]).sum())
                .collect()
        })
        .collect();
    let mut total = 0.0;
    for i in 0..x.len() {
        let s: Vec<f64> = (0..x.len())
            .map(|j| {
                -0.5 * z[i]
                    .iter()
                    .zip(&z[j])
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f64>()
            })
            .collect();
        let m = (0..x.len())
            .filter(|&j| j != i)
            .map(|j| s[j])
            .fold(f64::NEG_INFINITY, f64::max);
        let (mut sw, mut swy) = (0.0, 0.0);
        for j in (0..x.len()).filter(|&j| j != i) {
            let e = (s[j] - m).exp();
            sw += e;
            swy += e * y[j];
        }
        total += (y[i] - swy / sw).powi(2);
    }
    total / x.len() as f64
}

/// The top right singular vector of the k×d map, by power iteration on WᵀW.
fn principal(w: &[f64], k: usize, d: usize) -> Vec<f64> {
    let mut v = vec![1.0; d];
    for _ in 0..500 {
        let wv: Vec<f64> = (0..k)
            .map(|a| (0..d).map(|b| w[a * d + b] * v[b]).sum())
            .collect();
        let mut n: Vec<f64> = (0..d)
            .map(|b| (0..k).map(|a| w[a * d + b] * wv[a]).sum())
            .collect();
        let norm = n.iter().map(|t| t * t).sum::<f64>().sqrt();
        n.iter_mut().for_each(|t| *t /= norm);
        v = n;
    }
    v
}

#[test]
fn learns_the_hidden_direction_with_the_anchor_error() {
    let (p, x, y) = oblique();
    let u = hidden();
    for k in [1usize, 5] {
        let o = nadaraya(&["learn", p.to_str().unwrap(), "--dim", &k.to_string()]);
        let out = String::from_utf8(o.stdout).unwrap();
        assert!(
            o.status.success(),
            "{out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let mut lines = out.lines();
        let w: Vec<f64> = lines
            .next()
            .unwrap()
            .strip_prefix("projection ")
            .unwrap()
            .split(' ')
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(w.len(), k * 5, "{out}");
        let cv: f64 = lines
            .next()
            .unwrap()
            .strip_prefix("cv ")
            .unwrap()
            .parse()
            .unwrap();
        let want = loo(&w, k, &x, &y);
        assert!(
            (cv - want).abs() <= 1e-5 * want,
            "K={k}: cv {cv}, f64 {want}"
        );
        assert!(cv <= 0.0115, "K={k}: cv {cv}");
        let v = principal(&w, k, 5);
        let cos = v.iter().zip(&u).map(|(a, b)| a * b).sum::<f64>().abs();
        assert!(cos >= 0.999, "K={k}: |cos| {cos}, {w:?}");
        let identity: Vec<f64> = (0..25)
            .map(|i| if i / 5 == i % 5 { 1.0 } else { 0.0 })
            .collect();
        let id = loo(&identity, 5, &x, &y);
        let printed: f64 = out
            .lines()
            .find_map(|l| l.strip_prefix("identity-cv "))
            .unwrap()
            .parse()
            .unwrap();
        assert!((printed - id).abs() <= 1e-5 * id, "{printed} {id}");
        assert!((0.2..0.3).contains(&id), "identity cv {id}");
    }
}

#[test]
fn gradient_descent_learns_it_too() {
    let (p, x, y) = oblique();
    let o = nadaraya(&["learn", p.to_str().unwrap(), "--dim", "1", "--descent"]);
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let w: Vec<f64> = out.lines().next().unwrap()[11..]
        .split(' ')
        .map(|v| v.parse().unwrap())
        .collect();
    let cv = loo(&w, 1, &x, &y);
    assert!(cv <= 0.0125, "cv {cv}: {out}");
    let cos = principal(&w, 1, 5)
        .iter()
        .zip(&hidden())
        .map(|(a, b)| a * b)
        .sum::<f64>()
        .abs();
    assert!(cos >= 0.99, "|cos| {cos}");
}

#[test]
fn a_bad_file_names_the_line_and_the_cell() {
    for (text, want) in [
        (
            "a,b,y\n1,2,3\n4,five,6\n7,8,9\n",
            "line 3, column 2 (x_2): `five` is not a number",
        ),
        (
            "1,2,3\n4,NaN,6\n7,8,9\n",
            "line 2, column 2 (x_2): `NaN` is not finite",
        ),
        (
            "1,2,3\n4,5\n",
            "line 2: 2 fields where the first line has 3",
        ),
        ("x,y\n1,2\n", "1 sample, at least 2 needed"),
    ] {
        let p = dir().join("bad.csv");
        std::fs::write(&p, text).unwrap();
        let o = nadaraya(&["learn", p.to_str().unwrap(), "--dim", "1"]);
        let e = String::from_utf8(o.stderr).unwrap();
        assert!(!o.status.success(), "{text:?} succeeded");
        assert!(o.stdout.is_empty());
        assert!(e.contains(want), "{text:?}: {e}");
        assert!(e.contains(p.to_str().unwrap()), "{text:?}: {e}");
    }
}

#[test]
fn bad_options_are_named() {
    let p = dir().join("ok.csv");
    std::fs::write(&p, "1,2,3\n4,5,6\n7,8,10\n").unwrap();
    for (args, want) in [
        (vec!["--dim", "0"], "`--dim 0`"),
        (vec!["--dim", "17"], "`--dim 17`"),
        (
            vec!["--dim", "1", "--direction", "1,2,3"],
            "`--direction`: 3 entries",
        ),
    ] {
        let mut a = vec!["learn", p.to_str().unwrap()];
        a.extend(args);
        let o = nadaraya(&a);
        let e = String::from_utf8(o.stderr).unwrap();
        assert!(!o.status.success() && e.contains(want), "{a:?}: {e}");
    }
}

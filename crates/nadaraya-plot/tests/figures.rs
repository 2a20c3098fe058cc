//! The figures cannot drift from the code: the committed CSVs must equal what the library
//! computes now, and every plotted value must match the plain `f64` reference.

use std::path::{Path, PathBuf};

use nadaraya_plot::{
    Figure, KernelSpec, Mark, Params, Series, Source, csv, draw, median, scenarios,
};
use nadaraya_rf::FOURIER_MASS_FLOOR;
use nadaraya_tests::reference::{self, RefKernel, widen};
use nadaraya_tests::rf;

fn figures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/figures")
}

fn figures() -> Vec<Figure> {
    // As `nadaraya plot` computes the committed figures: at the baseline dispatch level.
    nadaraya::dispatch::force(nadaraya::dispatch::Level::Baseline);
    scenarios::all(&Params::default()).expect("the default scenarios compute")
}

fn ref_kernel(k: KernelSpec) -> RefKernel {
    match k {
        KernelSpec::Gaussian { h } => RefKernel::Gaussian { h: f64::from(h) },
        KernelSpec::SoftmaxDot { tau } => RefKernel::SoftmaxDot {
            tau: f64::from(tau),
        },
    }
}

fn series<'a>(fig: &'a Figure, panel: &str, label_part: &str) -> Vec<&'a Series> {
    fig.panels
        .iter()
        .filter(|p| p.id == panel)
        .flat_map(|p| &p.series)
        .filter(|s| s.label.contains(label_part))
        .collect()
}

#[test]
fn committed_csvs_match_what_the_library_computes_now() {
    let dir = figures_dir();
    let regen = "regenerate with `cargo run --release -p nadaraya-cli -- plot --out docs/figures`";
    let figs = figures();
    for fig in &figs {
        // Series computed by nadaraya-rf go through nalgebra's gemm, which picks its kernel (and
        // so its rounding) by the CPU it runs on; they get a relative slack of 1e-4.
        let rf_series: Vec<&str> = fig
            .panels
            .iter()
            .flat_map(|p| &p.series)
            .filter(|s| {
                matches!(
                    s.source,
                    Source::RandomFeatures { .. }
                        | Source::FeatureError { .. }
                        | Source::InverseSqrt { .. }
                )
            })
            .map(|s| s.label.as_str())
            .collect();
        let path = dir.join(format!("{}.csv", fig.name));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; {regen}", path.display()));
        let committed = csv::parse(&text).unwrap();
        let now = csv::rows(fig);
        assert_eq!(
            committed.len(),
            now.len(),
            "{}: row count; {regen}",
            fig.name
        );
        for (c, n) in committed.iter().zip(&now) {
            assert_eq!(
                (&c.panel, &c.series, c.x),
                (&n.panel, &n.series, n.x),
                "{regen}"
            );
            // A few ulp of slack: a build for another CPU may round the lanes differently.
            let rel = if rf_series.contains(&n.series.as_str()) {
                1e-4
            } else {
                4.0 * f32::EPSILON
            };
            let tol = rel * n.value.abs().max(1.0);
            assert!(
                (c.value - n.value).abs() <= tol,
                "{} / {} at x={}: committed {} but the library gives {}; {regen}",
                fig.name,
                n.series,
                n.x,
                c.value,
                n.value
            );
        }
        for ext in ["png", "svg"] {
            let p = dir.join(format!("{}.{ext}", fig.name));
            let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            assert!(len > 1000, "{} missing or empty; {regen}", p.display());
        }
    }
    // No stale figure from a scenario that no longer exists.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let stem = name.rsplit_once('.').map_or(name.as_str(), |(s, _)| s);
        assert!(
            figs.iter().any(|f| f.name == stem),
            "{name} in docs/figures belongs to no scenario"
        );
    }
}

#[test]
fn every_plotted_value_matches_the_f64_reference() {
    let mut checked = 0usize;
    let data = Params::default().data;
    for fig in figures() {
        for panel in &fig.panels {
            for s in &panel.series {
                match &s.source {
                    Source::Data => {
                        let ok = s.points.iter().all(|&(x, y)| {
                            data.x()
                                .iter()
                                .zip(data.y())
                                .any(|(&a, &b)| (a, b) == (x, y))
                                || data
                                    .clustered()
                                    .x()
                                    .iter()
                                    .zip(data.y())
                                    .any(|(&a, &b)| (a, b) == (x, y))
                        });
                        assert!(ok, "{}: data points are not the data set", fig.name);
                    }
                    Source::Prediction {
                        kernel,
                        queries,
                        keys,
                        values,
                        d,
                    } => {
                        let k = ref_kernel(*kernel);
                        let (keys, values) = (widen(keys), widen(values));
                        assert_eq!(queries.len(), s.points.len() * d);
                        for (&(x, v), q) in s.points.iter().zip(queries.chunks_exact(*d)) {
                            // The plotted position is the query (or its unit embedding).
                            match *d {
                                1 => assert_eq!(q, [x]),
                                2 => assert_eq!(q, scenarios::unit(x)),
                                _ => panic!("unexpected dimension {d}"),
                            }
                            let q = widen(q);
                            let want = reference::smooth(k, &q, &keys, &values, 1)[0];
                            let tol = reference::tolerance(k, &q, &keys, &values);
                            assert!(
                                (f64::from(v) - want).abs() <= tol,
                                "{} / {} at x={x}: {v} vs reference {want} (tol {tol:e})",
                                fig.name,
                                s.label
                            );
                            checked += 1;
                        }
                    }
                    Source::RandomFeatures {
                        kernel,
                        m,
                        seed,
                        queries,
                        keys,
                        values,
                        d,
                    } => {
                        let want = rf_reference(*kernel, *m, *seed, queries, keys, values, *d);
                        assert_eq!(want.len(), s.points.len());
                        for (&(x, v), &(w, tol)) in s.points.iter().zip(&want) {
                            assert!(
                                (f64::from(v) - w).abs() <= tol,
                                "{} / {} at x={x}: {v} vs reference {w} (tol {tol:e})",
                                fig.name,
                                s.label
                            );
                            checked += 1;
                        }
                    }
                    Source::FeatureError {
                        kernel,
                        seeds,
                        queries,
                        keys,
                        values,
                        d,
                    } => {
                        let k = ref_kernel(*kernel);
                        let (q64, k64, v64) = (widen(queries), widen(keys), widen(values));
                        let exact: Vec<(f64, f64)> = q64
                            .chunks_exact(*d)
                            .map(|q| {
                                let w = reference::smooth(k, q, &k64, &v64, 1)[0];
                                (w, reference::tolerance(k, q, &k64, &v64))
                            })
                            .collect();
                        for &(m, e) in &s.points {
                            let mut tol = 1e-6f64;
                            let errors: Vec<f32> = (0..*seeds)
                                .map(|seed| {
                                    let rf = rf_reference(
                                        *kernel, m as usize, seed, queries, keys, values, *d,
                                    );
                                    let mut sq = 0.0;
                                    for (&(a, ta), &(b, tb)) in rf.iter().zip(&exact) {
                                        sq += (a - b).powi(2);
                                        tol = tol.max(ta + tb);
                                    }
                                    (sq / rf.len() as f64).sqrt() as f32
                                })
                                .collect();
                            let want = f64::from(median(errors));
                            assert!(
                                (f64::from(e) - want).abs() <= tol + 1e-6 * want,
                                "{} / {} at m={m}: {e} vs reference {want} (tol {tol:e})",
                                fig.name,
                                s.label
                            );
                            checked += 1;
                        }
                    }
                    Source::Cv { keys, values, d } => {
                        assert_eq!(*d, 1);
                        let (x, y) = (widen(keys), widen(values));
                        for &(h, v) in &s.points {
                            let want = loo_cv_f64(&x, &y, f64::from(h));
                            assert!(
                                (f64::from(v) - want).abs() <= 1e-5 * want,
                                "{} / {} at h={h}: {v} vs reference {want}",
                                fig.name,
                                s.label
                            );
                            checked += 1;
                        }
                    }
                    Source::InverseSqrt { c } => {
                        for &(x, v) in &s.points {
                            let want = f64::from(*c) / f64::from(x).sqrt();
                            assert!((f64::from(v) - want).abs() <= 2e-7 * want, "{x}: {v}");
                        }
                    }
                    Source::Weights {
                        kernel,
                        query,
                        keys,
                    } => {
                        let k = ref_kernel(*kernel);
                        let (q, keys) = (widen(query), widen(keys));
                        let want = reference::weights(k, &q, &keys);
                        let ones = vec![1.0; want.len()];
                        let tol = reference::tolerance(k, &q, &keys, &ones);
                        assert_eq!(want.len(), s.points.len());
                        for (&(x, a), w) in s.points.iter().zip(&want) {
                            assert!(
                                (f64::from(a) - w).abs() <= tol,
                                "{} / {} at x_i={x}: {a} vs reference {w}",
                                fig.name,
                                s.label
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(
        checked > 5 * scenarios::GRID,
        "only {checked} values checked"
    );
}

/// The random-feature estimate of `kernel` with `m` rows drawn from `seed`, computed plainly in
/// `f64` from the same projection rows ([`nadaraya_tests::rf`]), with the error bound a correct
/// `f32` implementation meets at each query: each kernel term carries a rounding error of about
/// `ε·(1 + E)` (relative for FAVOR+'s exponentials, absolute for random Fourier cosines), where
/// `E` bounds the exponents or phases, and the ratio turns an error `δκ_i` into
/// `Σ_i δκ_i |y_i − ŷ| / |Σ_i κ_i|`.
fn rf_reference(
    kernel: KernelSpec,
    m: usize,
    seed: u64,
    queries: &[f32],
    keys: &[f32],
    values: &[f32],
    d: usize,
) -> Vec<(f64, f64)> {
    let rows = widen(KernelSpec::projection(d, m, seed).unwrap().rows());
    let (q64, k64, y) = (widen(queries), widen(keys), widen(values));
    let eps = f64::from(f32::EPSILON);
    let scale = y.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let norm = |x: &[f64]| x.iter().map(|v| v * v).sum::<f64>().sqrt();
    let wmax = rows.chunks_exact(d).map(norm).fold(0.0f64, f64::max);
    let xmax = q64
        .chunks_exact(d)
        .chain(k64.chunks_exact(d))
        .map(norm)
        .fold(0.0, f64::max);
    q64.chunks_exact(d)
        .map(|q| {
            let (kappa, e, floor): (Vec<f64>, f64, f64) = match kernel {
                KernelSpec::Gaussian { h } => {
                    let h = f64::from(h);
                    let kappa = k64
                        .chunks_exact(d)
                        .map(|x| rf::fourier_kernel(&rows, h, q, x))
                        .collect();
                    let n = (k64.len() / d) as f64;
                    (kappa, wmax * xmax / h, n * f64::from(FOURIER_MASS_FLOOR))
                }
                KernelSpec::SoftmaxDot { tau } => {
                    let tau = f64::from(tau);
                    let kappa = k64
                        .chunks_exact(d)
                        .map(|k| rf::favor_kernel(&rows, tau, false, q, k))
                        .collect();
                    (
                        kappa,
                        2.0 * wmax * xmax / tau.sqrt() + xmax * xmax / tau,
                        f64::MIN,
                    )
                }
            };
            let den: f64 = kappa.iter().sum::<f64>().max(floor);
            let want = kappa.iter().zip(&y).map(|(k, v)| k * v).sum::<f64>() / den;
            let delta = |k: f64| match kernel {
                KernelSpec::Gaussian { .. } => 8.0 * eps * (1.0 + e),
                KernelSpec::SoftmaxDot { .. } => 8.0 * eps * (1.0 + e) * k.abs(),
            };
            let spread: f64 = kappa
                .iter()
                .zip(&y)
                .map(|(&k, v)| delta(k) * (v - want).abs())
                .sum();
            (want, spread / den.abs() + 1e-6 * scale)
        })
        .collect()
}

/// Values of a series sorted by x.
/// Leave-one-out CV of 1-D Gaussian Nadaraya–Watson smoothing, plainly in f64 (weights relative
/// to the largest score of the other samples).
fn loo_cv_f64(x: &[f64], y: &[f64], h: f64) -> f64 {
    let n = x.len();
    let mut sum = 0.0;
    for i in 0..n {
        let s: Vec<f64> = x
            .iter()
            .map(|&xj| -(x[i] - xj).powi(2) / (2.0 * h * h))
            .collect();
        let m = (0..n)
            .filter(|&j| j != i)
            .map(|j| s[j])
            .fold(f64::NEG_INFINITY, f64::max);
        let (mut w, mut wy) = (0.0, 0.0);
        for j in (0..n).filter(|&j| j != i) {
            let e = (s[j] - m).exp();
            w += e;
            wy += e * y[j];
        }
        sum += (y[i] - wy / w).powi(2);
    }
    sum / n as f64
}

#[test]
fn the_chosen_bandwidth_is_the_curves_minimum_and_the_fits_bracket_it() {
    let fig = scenarios::figure("bandwidth-selection", &Params::default()).unwrap();
    let curve = &fig.panels[0].series[0].points;
    let (h, cv) = fig.panels[0].series[1].points[0];
    // No bandwidth of the plotted curve (h/30 … 30h) nor of a fine f64 grid does better.
    assert!(
        curve.iter().all(|&(_, c)| cv <= c * (1.0 + 1e-6)),
        "{cv} {curve:?}"
    );
    let data = Params::default().data;
    let (x, y) = (widen(data.x()), widen(data.y()));
    let best = (0..2000)
        .map(|k| 1e-2 * 1e4f64.powf(k as f64 / 1999.0))
        .map(|g| loo_cv_f64(&x, &y, g))
        .fold(f64::INFINITY, f64::min);
    assert!(f64::from(cv) <= best * (1.0 + 1e-5), "{cv} vs grid {best}");
    let labels: Vec<&str> = fig.panels[1]
        .series
        .iter()
        .map(|s| s.label.as_str())
        .collect();
    assert_eq!(labels[1], format!("under-smoothed, h/4={}", h / 4.0));
    assert_eq!(labels[2], format!("chosen, h={h}"));
    assert_eq!(labels[3], format!("over-smoothed, 4h={}", h * 4.0));
    assert!(fig.title.ends_with(&format!("h={h}")));
}

fn by_x(s: &Series) -> Vec<(f32, f32)> {
    let mut p = s.points.clone();
    p.sort_by(|a, b| a.0.total_cmp(&b.0));
    p
}

fn argmax(s: &Series) -> f32 {
    s.points
        .iter()
        .fold((f32::NAN, f32::NEG_INFINITY), |m, &(x, a)| {
            if a > m.1 { (x, a) } else { m }
        })
        .0
}

fn nearest(xs: &[f32], q: f32) -> f32 {
    xs.iter().copied().fold(f32::NAN, |m, x| {
        if m.is_nan() || (x - q).abs() < (m - q).abs() {
            x
        } else {
            m
        }
    })
}

#[test]
fn the_figures_show_what_their_titles_say() {
    let p = Params::default();
    let figs = figures();
    let fig = |n: &str| figs.iter().find(|f| f.name == n).unwrap();
    let xs = p.data.x();

    // Weights are a distribution in every weights panel.
    for f in &figs {
        for s in series(f, "weights", "") {
            assert_eq!(s.mark, Mark::Bars);
            let total: f32 = s.points.iter().map(|&(_, a)| a).sum();
            assert!((total - 1.0).abs() < 1e-5, "{} / {}", f.name, s.label);
        }
    }

    // Small h: at every query the heaviest weight sits on the nearest sample.
    for (s, q) in series(fig("small-h"), "weights", "")
        .into_iter()
        .zip(scenarios::sweep_queries(&p.data))
    {
        assert_eq!(argmax(s), nearest(xs, q), "{}", s.label);
        assert!(s.points.iter().map(|&(_, a)| a).fold(0.0, f32::max) > 0.6);
    }

    // Small τ: peakier (larger largest weight) than τ.
    let st = series(fig("small-tau"), "weights", "");
    let peak = |s: &Series| s.points.iter().map(|&(_, a)| a).fold(0.0, f32::max);
    assert!(peak(st[1]) > peak(st[0]) + 0.3);

    // Sign: at x_q > 0 softmax-dot weights grow with x_i, at -x_q they shrink; Gaussian peaks at
    // the nearest sample.
    let sg = fig("sign");
    let up = by_x(series(sg, "weights", "softmax-dot")[0]);
    let down = by_x(series(sg, "weights", "softmax-dot")[1]);
    assert!(up.windows(2).all(|w| w[1].1 > w[0].1));
    assert!(down.windows(2).all(|w| w[1].1 < w[0].1));
    let pos: f32 = up.iter().filter(|&&(x, _)| x > 0.0).map(|&(_, a)| a).sum();
    assert!(pos > 0.9, "softmax-dot puts {pos} on x_i > 0");
    assert_eq!(
        argmax(series(sg, "weights", "Gaussian")[0]),
        nearest(xs, p.x_q.abs())
    );

    // Clustered: the weight near x_q is shared among the cluster, so no sample gets as much.
    let cl = series(fig("clustered"), "weights", "");
    assert!(peak(cl[1]) < peak(cl[0]));

    // Bandwidth vs temperature: the two normalised curves and weight sets coincide.
    let bt = fig("bandwidth-temperature");
    for panel in ["prediction", "weights"] {
        let n = series(bt, panel, "normalised");
        assert_eq!(n.len(), 2);
        for (a, b) in n[0].points.iter().zip(&n[1].points) {
            assert_eq!(a.0, b.0);
            assert!(
                (a.1 - b.1).abs() < 2e-5,
                "{panel} at x={}: {} vs {}",
                a.0,
                a.1,
                b.1
            );
        }
    }
}

#[test]
fn random_features_converge_as_the_figure_says() {
    let figs = figures();
    let rf = figs.iter().find(|f| f.name == "random-features").unwrap();
    let at = |s: &Series, m: usize| {
        s.points
            .iter()
            .find(|&&(x, _)| x == m as f32)
            .map(|&(_, e)| e)
            .unwrap()
    };
    let (first, last) = (
        scenarios::ERROR_FEATURES[0],
        scenarios::ERROR_FEATURES[scenarios::ERROR_FEATURES.len() - 1],
    );
    let fourier = series(rf, "error", "random Fourier")[0];
    let favor = series(rf, "error", "FAVOR+");
    let (favor_tau, favor_wide) = (favor[0], favor[1]);
    assert!(
        favor_wide
            .label
            .contains(&format!("τ={}", scenarios::WIDE_TAU))
    );

    // Random Fourier features converge like 1/√m: a least-squares slope of log error against
    // log m over m ≥ 128 between -0.8 and -0.3, and 16× more features cut the error by > 4.
    let tail: Vec<(f64, f64)> = fourier
        .points
        .iter()
        .filter(|&&(m, _)| m >= 128.0)
        .map(|&(m, e)| (f64::from(m).ln(), f64::from(e).ln()))
        .collect();
    let n = tail.len() as f64;
    let (mx, my) = tail
        .iter()
        .fold((0.0, 0.0), |(a, b), &(x, y)| (a + x / n, b + y / n));
    let slope = tail.iter().map(|&(x, y)| (x - mx) * (y - my)).sum::<f64>()
        / tail.iter().map(|&(x, _)| (x - mx).powi(2)).sum::<f64>();
    assert!((-0.8..=-0.3).contains(&slope), "slope {slope}");
    assert!(at(fourier, last) < at(fourier, last / 16) / 4.0);

    // FAVOR+ converges at the wider temperature, and stalls at τ: |q + k|²/τ is too large.
    assert!(at(favor_wide, last) < at(favor_wide, first) / 8.0);
    assert!(
        at(favor_tau, last) > 4.0 * at(favor_wide, last),
        "{} vs {}",
        at(favor_tau, last),
        at(favor_wide, last)
    );
    assert!(at(favor_tau, last) > at(favor_tau, first) / 4.0);

    // The guide passes through the last random-Fourier point.
    let guide = series(rf, "error", "1/√m")[0];
    assert!((at(guide, last) - at(fourier, last)).abs() <= 1e-6 * at(fourier, last));

    // The curves: the most random Fourier features come closest to exact, within 0.05 RMS.
    let exact = series(rf, "gaussian", "exact")[0];
    let curves = series(rf, "gaussian", "random Fourier");
    let rms = |s: &Series| {
        let sq: f32 = s
            .points
            .iter()
            .zip(&exact.points)
            .map(|(a, b)| (a.1 - b.1).powi(2))
            .sum();
        (sq / s.points.len() as f32).sqrt()
    };
    let diffs: Vec<f32> = curves.iter().map(|s| rms(s)).collect();
    assert!(diffs[diffs.len() - 1] < 0.05, "{diffs:?}");
    assert!(diffs[diffs.len() - 1] < diffs[0], "{diffs:?}");
}

#[test]
fn text_is_drawn_with_the_embedded_font() {
    use plotters::prelude::*;
    let fig = &figures()[0];
    let (w, h) = draw::SIZE;
    let mut buf = vec![0u8; (w * h * 3) as usize];
    draw::draw(
        fig,
        &BitMapBackend::with_buffer(&mut buf, draw::SIZE).into_drawing_area(),
    )
    .unwrap();
    // The title band above the first panel holds only text: it must have dark pixels.
    let dark = buf[..(w * 28 * 3) as usize]
        .chunks_exact(3)
        .filter(|p| p.iter().all(|&c| c < 100))
        .count();
    assert!(dark > 300, "title band has {dark} dark pixels");

    let mut svg = String::new();
    draw::draw(
        fig,
        &SVGBackend::with_string(&mut svg, draw::SIZE).into_drawing_area(),
    )
    .unwrap();
    assert!(svg.contains("<text") && svg.contains("ŷ(x)"));
}

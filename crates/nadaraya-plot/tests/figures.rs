//! The figures cannot drift from the code: the committed CSVs must equal what the library
//! computes now, and every plotted value must match the plain `f64` reference.

use std::path::{Path, PathBuf};

use nadaraya_plot::{Figure, KernelSpec, Mark, Params, Series, Source, csv, draw, scenarios};
use nadaraya_tests::reference::{self, RefKernel, widen};

fn figures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/figures")
}

fn figures() -> Vec<Figure> {
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
    let regen = "regenerate with `cargo run --release -p nadaraya-plot -- --out docs/figures`";
    let figs = figures();
    for fig in &figs {
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
            let tol = 4.0 * f32::EPSILON * n.value.abs().max(1.0);
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

/// Values of a series sorted by x.
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

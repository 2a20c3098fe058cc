//! Hostile input to the figure library (issue 11, class 8): no data row is silently dropped, and
//! axes stay readable and flat data stay flat at any magnitude. The command's side (a failing run
//! writes nothing, every message names the flag typed, the README tables) is tested through the
//! `nadaraya plot` binary in `crates/nadaraya-cli/tests/plot.rs`.

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

#[test]
fn estimates_far_outside_the_axis_are_drawn_without_overflow() {
    use plotters::prelude::*;
    // One sample: random-Fourier estimates land near -1e6 while the axis spans about 1e-3.
    for y in [1.0f32, 1e6] {
        let p = Params {
            data: Dataset::new("one", vec![5.0], vec![y]).unwrap(),
            ..Params::default()
        };
        // Leave-one-out needs two samples: that scenario says so, the others draw.
        let e = scenarios::all(&p).unwrap_err().to_string();
        assert!(
            e.contains("bandwidth-selection scenario leaves one sample out"),
            "{e}"
        );
        let others: Vec<&str> = scenarios::NAMES
            .iter()
            .copied()
            .filter(|n| *n != "bandwidth-selection")
            .collect();
        for fig in scenarios::figures(&others, &p).unwrap() {
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

#[test]
fn a_cv_curve_of_zeros_is_drawn_on_linear_axes_and_finishes() {
    use plotters::prelude::*;
    // Constant responses: every leave-one-out residual is 0, which a logarithmic axis cannot
    // show (drawing one once never ended).
    let p = Params {
        data: Dataset::new("flat", vec![0.0, 1.0, 2.0], vec![0.5; 3]).unwrap(),
        ..Params::default()
    };
    let fig = scenarios::figure("bandwidth-selection", &p).unwrap();
    assert!(!fig.panels[0].log_log);
    assert!(
        fig.panels[0].series[0]
            .points
            .iter()
            .all(|&(_, c)| c == 0.0)
    );
    let (w, h) = draw::size(&fig);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    draw::draw(
        &fig,
        &BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area(),
    )
    .unwrap();
}

//! Drawing figures with `plotters`, to PNG and SVG, with an embedded font.
//!
//! Text is rendered with DejaVu Sans compiled into the binary (the `dejavu` crate) through
//! plotters' `ab_glyph` backend, so PNG labels never depend on the fonts a machine has installed.
//! A family that is not registered is an error, never blank text. SVG files name the
//! `sans-serif` family and are rendered by the viewer's fonts.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::figure::{Mark, Panel};
use crate::{Error, Figure, csv};

/// Width and height of a figure of one or two panels, in pixels.
pub const SIZE: (u32, u32) = (1000, 760);

/// Width and height of `fig` in pixels: [`SIZE`], and 340 pixels more for every panel after the
/// second.
#[must_use]
pub fn size(fig: &Figure) -> (u32, u32) {
    let extra = u32::try_from(fig.panels.len().saturating_sub(2)).unwrap_or(u32::MAX);
    (SIZE.0, SIZE.1.saturating_add(extra.saturating_mul(340)))
}

/// The series colours: data (near black), blue, orange, green, red, purple.
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(40, 40, 40),
    RGBColor(31, 119, 180),
    RGBColor(230, 120, 0),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

const FONT: &str = "sans-serif";

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn draw_err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> Error {
    Error::Draw(e.to_string())
}

/// Registers the embedded DejaVu Sans as the `sans-serif` family (once per process).
///
/// # Errors
/// [`Error::Font`] if the embedded font does not parse.
pub fn register_font() -> Result<(), Error> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok()
            && plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).is_ok()
    });
    if ok { Ok(()) } else { Err(Error::Font) }
}

/// The y range of a panel: its own, or the series' extent with room for the legend on top.
fn y_range(p: &Panel) -> (f32, f32) {
    if let Some(r) = p.y_range {
        return r;
    }
    let bars = p.series.iter().any(|s| s.mark == Mark::Bars);
    let vals = p
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|&(_, v)| v));
    let (lo, hi) = vals.fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (0.0, 1.0) };
    let lo = if bars { 0.0 } else { lo };
    let span = (hi - lo).max(1e-3);
    let lo = if bars { 0.0 } else { lo - 0.06 * span };
    (lo, hi + 0.45 * span)
}

/// Bar widths in data units and whether the bar series stand side by side.
///
/// Bar series at the same positions share 80 % of the smallest gap between positions, side by
/// side; series at different positions (clustered against spread data) each get 80 % of their
/// own smallest gap and overlap where they meet. Widths stay between 0.6 % and 5 % of the x
/// range so that bars remain visible.
fn bar_widths(p: &Panel) -> (Vec<f32>, bool) {
    let span = p.x_range.1 - p.x_range.0;
    let bars: Vec<Vec<f32>> = p
        .series
        .iter()
        .filter(|s| s.mark == Mark::Bars)
        .map(|s| s.points.iter().map(|&(x, _)| x).collect())
        .collect();
    let gap = |xs: &[f32]| {
        let mut xs = xs.to_vec();
        xs.sort_by(f32::total_cmp);
        xs.windows(2)
            .filter(|w| w[1] > w[0])
            .map(|w| w[1] - w[0])
            .fold(f32::INFINITY, f32::min)
    };
    let grouped = bars.windows(2).all(|w| w[0] == w[1]);
    let widths = if grouped {
        let g = bars.first().map_or(f32::INFINITY, |xs| gap(xs));
        let w = (0.8 * g / bars.len().max(1) as f32).clamp(0.006 * span, 0.05 * span);
        vec![w; bars.len()]
    } else {
        bars.iter()
            .map(|xs| (0.8 * gap(xs)).clamp(0.006 * span, 0.05 * span))
            .collect()
    };
    (widths, grouped)
}

fn panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Panel) -> Result<(), Error>
where
    DB::ErrorType: 'static,
{
    let (x0, x1) = p.x_range;
    let (y0, y1) = y_range(p);
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(64);
    if p.log_log {
        let chart = builder
            .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
            .map_err(draw_err)?;
        series(chart, p, (y0, y1))
    } else {
        let chart = builder
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(draw_err)?;
        series(chart, p, (y0, y1))
    }
}

/// Draws the mesh, the shading, the query lines, the series and the legend of `p` on a chart
/// with linear or logarithmic axes.
fn series<'a, DB, X, Y>(
    mut chart: ChartContext<'a, DB, Cartesian2d<X, Y>>,
    p: &Panel,
    (y0, y1): (f32, f32),
) -> Result<(), Error>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f32> + ValueFormatter<f32>,
    Y: Ranged<ValueType = f32> + ValueFormatter<f32>,
{
    chart
        .configure_mesh()
        .x_desc(p.x_label.as_str())
        .y_desc(p.y_label.as_str())
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 18))
        .bold_line_style(BLACK.mix(0.1))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(draw_err)?;

    if let Some(((a, b), label)) = &p.shade {
        let style = RGBColor(120, 120, 120).mix(0.12).filled();
        chart
            .draw_series(std::iter::once(Rectangle::new([(*a, y0), (*b, y1)], style)))
            .map_err(draw_err)?
            .label(label.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 20, y + 6)], style));
    }
    let grey = RGBColor(90, 90, 90);
    for &q in &p.queries {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(q, y0), (q, y1)],
                6,
                4,
                grey.stroke_width(1),
            ))
            .map_err(draw_err)?;
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((q, y1)) + Text::new(format!("x_q={q}"), (4, 4), (FONT, 15)),
            ))
            .map_err(draw_err)?;
    }

    let (widths, grouped) = bar_widths(p);
    let n_bars = widths.len();
    let mut bar_k = 0usize;
    for s in &p.series {
        let c = color(s.color);
        let pts = s.points.clone();
        let drawn = match s.mark {
            Mark::Points => chart
                .draw_series(
                    pts.into_iter()
                        .map(|(x, y)| Circle::new((x, y), 5, c.filled())),
                )
                .map_err(draw_err)?
                .legend(move |(x, y)| Circle::new((x + 10, y), 5, c.filled())),
            Mark::LinePoints => chart
                .draw_series(LineSeries::new(pts, c.stroke_width(3)).point_size(5))
                .map_err(draw_err)?
                .legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (20, 0)], c.stroke_width(3))
                        + Circle::new((10, 0), 5, c.filled())
                }),
            Mark::Line => chart
                .draw_series(LineSeries::new(pts, c.stroke_width(3)))
                .map_err(draw_err)?
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3))
                }),
            Mark::Dashed => chart
                .draw_series(DashedLineSeries::new(pts, 10, 7, c.stroke_width(3)))
                .map_err(draw_err)?
                .legend(move |(x, y)| {
                    DashedPathElement::new(vec![(x, y), (x + 20, y)], 6, 3, c.stroke_width(3))
                }),
            Mark::Bars => {
                let bw = widths.get(bar_k).copied().unwrap_or(0.0);
                let off = if grouped {
                    (bar_k as f32 - (n_bars as f32 - 1.0) / 2.0) * bw
                } else {
                    0.0
                };
                bar_k += 1;
                let style = c.mix(0.85).filled();
                chart
                    .draw_series(pts.into_iter().map(|(x, a)| {
                        Rectangle::new([(x + off - bw / 2.0, 0.0), (x + off + bw / 2.0, a)], style)
                    }))
                    .map_err(draw_err)?
                    .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 20, y + 6)], style))
            }
        };
        drawn.label(s.label.as_str());
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(draw_err)?;
    Ok(())
}

/// Draws `fig` on `root`: the title, then the panels stacked (a two-panel figure gives the top
/// one 58 % of the height).
///
/// # Errors
/// [`Error::Font`] if the embedded font cannot be registered; [`Error::Draw`] from the backend.
pub fn draw<DB: DrawingBackend>(fig: &Figure, root: &DrawingArea<DB, Shift>) -> Result<(), Error>
where
    DB::ErrorType: 'static,
{
    register_font()?;
    root.fill(&WHITE).map_err(draw_err)?;
    let body = root
        .titled(&fig.title, (FONT, 22).into_font().style(FontStyle::Bold))
        .map_err(draw_err)?;
    let areas = match fig.panels.len() {
        2 => {
            let h = body.dim_in_pixel().1;
            let (a, b) = body.split_vertically(h * 58 / 100);
            vec![a, b]
        }
        n => body.split_evenly((n.max(1), 1)),
    };
    for (area, p) in areas.iter().zip(&fig.panels) {
        panel(area, p)?;
    }
    root.present().map_err(draw_err)
}

/// Writes `dir/NAME.png`, `dir/NAME.svg` and `dir/NAME.csv` for `fig`, creating `dir`, and
/// returns the three paths.
///
/// # Errors
/// [`Error::Io`] if the folder or a file cannot be written; as [`draw`].
pub fn write(fig: &Figure, dir: &Path) -> Result<[PathBuf; 3], Error> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let png = dir.join(format!("{}.png", fig.name));
    let svg = dir.join(format!("{}.svg", fig.name));
    let csv_path = dir.join(format!("{}.csv", fig.name));
    std::fs::write(&csv_path, csv::to_csv(fig)).map_err(io(&csv_path))?;
    draw(
        fig,
        &BitMapBackend::new(&png, size(fig)).into_drawing_area(),
    )?;
    draw(fig, &SVGBackend::new(&svg, size(fig)).into_drawing_area())?;
    Ok([png, svg, csv_path])
}

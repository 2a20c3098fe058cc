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
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::figure::{Mark, Panel, Short};
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

/// The smallest span an axis shows, relative to the largest magnitude on it: `f32` rounding
/// noise (a few units in the last place, about `1e-7` relative) stays below a thousandth of the
/// axis, so data that are constant up to rounding draw as a flat line.
pub const MIN_REL_SPAN: f32 = 1e-3;

/// `(lo, hi)` widened by `below·s` under and `above·s` over, where the span `s` is `hi − lo`
/// but at least `floor` and at least [`MIN_REL_SPAN`] times the largest magnitude; clamped to
/// `±f32::MAX`, so the range stays finite however large the data are.
pub(crate) fn padded((lo, hi): (f32, f32), floor: f32, (below, above): (f32, f32)) -> (f32, f32) {
    let mag = lo.abs().max(hi.abs());
    let span = (hi - lo).max(floor).max(MIN_REL_SPAN * mag).min(f32::MAX);
    (
        (lo - below * span).max(-f32::MAX),
        (hi + above * span).min(f32::MAX),
    )
}

/// The y range of a panel: its own, or the series' extent (see [`padded`]) with room for the
/// legend on top (more for more legend entries).
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
    // Room above the data for the legend in the upper left: a line per entry.
    let entries = p.series.len() + usize::from(p.shade.is_some());
    let below = if bars { 0.0 } else { 0.06 };
    padded((lo, hi), 1e-3, (below, 0.15 + 0.1 * entries as f32))
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

/// The tick label of `v` on an axis showing `(lo, hi)`, readable at any magnitude.
///
/// On a linear axis: plotters' own form (one to five decimals, `-1.5`, `0.25`) while the
/// magnitudes stay below `1e6` and the ticks need at most five decimals; otherwise scientific
/// notation with as many mantissa digits as the tick spacing needs (`0`, `2e17`, `1.0001e6`).
/// On the figures' axes, whose spans are at least `1e-3` (y) or `1` (x) and at least
/// [`MIN_REL_SPAN`] of the magnitude, a label is at most four mantissa decimals and ten
/// characters (`-1.0001e38`). On a
/// logarithmic axis: plotters' form for `1e-4 ≤ |v| < 1e6`, one significant digit in scientific
/// notation outside (`2e-8`).
///
/// # Examples
/// ```
/// use nadaraya_plot::draw::tick_label;
/// assert_eq!(tick_label(0.5, (-3.0, 3.0), false), "0.5");
/// assert_eq!(tick_label(2e17, (-8e16, 1.08e18), false), "2e17");
/// assert_eq!(tick_label(1_000_100.0, (999_940.0, 1_000_550.0), false), "1.0001e6");
/// assert_eq!(tick_label(2e-8, (1e-8, 1e-6), true), "2e-8");
/// ```
#[must_use]
pub fn tick_label(v: f32, (lo, hi): (f32, f32), log: bool) -> String {
    let plotters = || {
        plotters::data::float::FloatPrettyPrinter {
            allow_scientific: false,
            min_decimal: 1,
            max_decimal: 5,
        }
        .print(f64::from(v))
    };
    let v64 = f64::from(v);
    let (lo, hi) = (f64::from(lo), f64::from(hi));
    let mag = lo.abs().max(hi.abs());
    let digits = if log {
        if v64 == 0.0 || (1e-4..1e6).contains(&v64.abs()) {
            return plotters();
        }
        0
    } else {
        // Ticks are multiples of a power of ten at least a hundredth of the span.
        let step = ((hi - lo).abs().log10().floor() - 1.0).max(-60.0);
        if mag < 1e6 && step >= -5.0 {
            return plotters();
        }
        if v64 == 0.0 {
            return "0".into();
        }
        (mag.log10().floor() - step).clamp(0.0, 9.0) as usize
    };
    let sci = format!("{v64:.digits$e}");
    match sci.split_once('e') {
        Some((m, e)) if m.contains('.') => {
            format!("{}e{e}", m.trim_end_matches('0').trim_end_matches('.'))
        }
        _ => sci,
    }
}

/// How many spans outside a linear axis' range a drawn point may lie.
const BAND: f64 = 100.0;

/// `v` pulled in to within [`BAND`] spans of `(lo, hi)`. Plotters maps coordinates to `i32`
/// pixels, which overflow (a panic in a debug build) for a point millions of spans away, such
/// as a random-feature estimate of `-10⁶` against data near 1. Where a line leaves the panel
/// its visible part moves by at most about `1/BAND` of the distance to the next point.
fn pull_in(v: f32, (lo, hi): (f32, f32)) -> f32 {
    let (lo, hi) = (f64::from(lo), f64::from(hi));
    let s = BAND * (hi - lo);
    f64::from(v).clamp(lo - s, hi + s) as f32
}

/// The longest tick label of a linear axis over `range` with at most `n` ticks, in characters.
fn longest_label(range: (f32, f32), n: usize) -> usize {
    let coord: plotters::coord::types::RangedCoordf32 = (range.0..range.1).into();
    coord
        .key_points(n)
        .into_iter()
        .map(|v| tick_label(v, range, false).chars().count())
        .max()
        .unwrap_or(0)
}

fn panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Panel, k: i32) -> Result<(), Error>
where
    DB::ErrorType: 'static,
{
    let (x0, x1) = p.x_range;
    let (y0, y1) = y_range(p);
    // Room for the longest y label (about 10 pixels a character at 16 pixels), and fewer x
    // ticks when their labels are long, so that labels never overlap or leave the picture.
    let (y_area, x_ticks) = if p.log_log {
        // The labels at the powers of ten in range.
        let (a, b) = (f64::from(y0).log10().ceil(), f64::from(y1).log10().floor());
        let y_chars = (a as i32..=b as i32)
            .map(|e| tick_label(10f32.powi(e), (y0, y1), true).chars().count())
            .max()
            .unwrap_or(0);
        let y_chars = i32::try_from(y_chars).unwrap_or(i32::MAX);
        (y_chars.saturating_mul(10).saturating_add(14).max(64), 11)
    } else {
        let y_chars = i32::try_from(longest_label((y0, y1), 11)).unwrap_or(i32::MAX);
        let x_chars = longest_label((x0, x1), 11);
        let x_ticks = (900 / (10 * x_chars + 30).max(1)).clamp(3, 11);
        (
            y_chars.saturating_mul(10).saturating_add(14).max(64),
            x_ticks,
        )
    };
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(12 * k)
        .x_label_area_size(48 * k)
        .y_label_area_size(y_area * k);
    if p.log_log {
        let chart = builder
            .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
            .map_err(draw_err)?;
        series(chart, p, (y0, y1), k, (x_ticks, true))
    } else {
        let chart = builder
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(draw_err)?;
        series(chart, p, (y0, y1), k, (x_ticks, false))
    }
}

/// Draws the mesh, the shading, the query lines, the series and the legend of `p` on a chart
/// with linear or logarithmic axes.
fn series<'a, DB, X, Y>(
    mut chart: ChartContext<'a, DB, Cartesian2d<X, Y>>,
    p: &Panel,
    (y0, y1): (f32, f32),
    k: i32,
    (x_ticks, log): (usize, bool),
) -> Result<(), Error>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f32> + ValueFormatter<f32>,
    Y: Ranged<ValueType = f32> + ValueFormatter<f32>,
{
    let w = 3 * k as u32;
    let x_fmt = |v: &f32| tick_label(*v, p.x_range, log);
    let y_fmt = |v: &f32| tick_label(*v, (y0, y1), log);
    chart
        .configure_mesh()
        .x_labels(x_ticks)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .x_desc(p.x_label.as_str())
        .y_desc(p.y_label.as_str())
        .label_style((FONT, 16 * k))
        .set_all_tick_mark_size(5 * k)
        .axis_desc_style((FONT, 18 * k))
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
            .legend(move |(x, y)| Rectangle::new([(x, y - 6 * k), (x + 20 * k, y + 6 * k)], style));
    }
    let grey = RGBColor(90, 90, 90);
    for &q in &p.queries {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(q, y0), (q, y1)],
                6 * k,
                4 * k,
                grey.stroke_width(k as u32),
            ))
            .map_err(draw_err)?;
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((q, y1))
                    + Text::new(format!("x_q={}", Short(q)), (4 * k, 4 * k), (FONT, 15 * k)),
            ))
            .map_err(draw_err)?;
    }

    let (widths, grouped) = bar_widths(p);
    let n_bars = widths.len();
    let mut bar_k = 0usize;
    for s in &p.series {
        let c = color(s.color);
        let pts: Vec<(f32, f32)> = if log {
            s.points.clone()
        } else {
            s.points
                .iter()
                .map(|&(x, y)| (pull_in(x, p.x_range), pull_in(y, (y0, y1))))
                .collect()
        };
        let drawn = match s.mark {
            Mark::Points => chart
                .draw_series(
                    pts.into_iter()
                        .map(|(x, y)| Circle::new((x, y), 5 * k, c.filled())),
                )
                .map_err(draw_err)?
                .legend(move |(x, y)| Circle::new((x + 10 * k, y), 5 * k, c.filled())),
            Mark::LinePoints => chart
                .draw_series(LineSeries::new(pts, c.stroke_width(w)).point_size(5 * k as u32))
                .map_err(draw_err)?
                .legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (20 * k, 0)], c.stroke_width(w))
                        + Circle::new((10 * k, 0), 5 * k, c.filled())
                }),
            Mark::Line => chart
                .draw_series(LineSeries::new(pts, c.stroke_width(w)))
                .map_err(draw_err)?
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20 * k, y)], c.stroke_width(w))
                }),
            Mark::Dashed => chart
                .draw_series(DashedLineSeries::new(pts, 10 * k, 7 * k, c.stroke_width(w)))
                .map_err(draw_err)?
                .legend(move |(x, y)| {
                    DashedPathElement::new(
                        vec![(x, y), (x + 20 * k, y)],
                        6 * k,
                        3 * k,
                        c.stroke_width(w),
                    )
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
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 6 * k), (x + 20 * k, y + 6 * k)], style)
                    })
            }
        };
        drawn.label(s.label.as_str());
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 15 * k))
        .legend_area_size(30 * k)
        .margin(10 * k)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(draw_err)?;
    Ok(())
}

/// Draws `fig` on `root`: the title, then the panels stacked (a two-panel figure gives the top
/// one 58 % of the height). `root` is [`size`]`(fig)` pixels.
///
/// # Errors
/// [`Error::Font`] if the embedded font cannot be registered; [`Error::Draw`] from the backend.
pub fn draw<DB: DrawingBackend>(fig: &Figure, root: &DrawingArea<DB, Shift>) -> Result<(), Error>
where
    DB::ErrorType: 'static,
{
    draw_scaled(fig, root, 1)
}

/// As [`draw`] on a `root` of `k` times [`size`]`(fig)` in each direction, with every length in
/// pixels (fonts, strokes, margins, marks) scaled by `k`: the picture [`write()`] shrinks into an
/// anti-aliased PNG.
///
/// # Errors
/// As [`draw`].
pub fn draw_scaled<DB: DrawingBackend>(
    fig: &Figure,
    root: &DrawingArea<DB, Shift>,
    k: u32,
) -> Result<(), Error>
where
    DB::ErrorType: 'static,
{
    register_font()?;
    let k = i32::try_from(k.max(1)).unwrap_or(1);
    root.fill(&WHITE).map_err(draw_err)?;
    // The title band by hand: plotters' `titled` pads by a fixed 5 pixels, too little at k > 1.
    let style = TextStyle::from((FONT, 22 * k).into_font().style(FontStyle::Bold))
        .pos(Pos::new(HPos::Center, VPos::Top));
    let (_, text_h) = root
        .estimate_text_size(&fig.title, &style)
        .map_err(draw_err)?;
    let pad = 5 * k;
    let (title, body) = root.split_vertically(i32::try_from(text_h).unwrap_or(0) + 2 * pad);
    let half_width = i32::try_from(title.dim_in_pixel().0 / 2).unwrap_or(0);
    title
        .draw_text(&fig.title, &style, (half_width, pad))
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
        panel(area, p, k)?;
    }
    root.present().map_err(draw_err)
}

/// How many times larger PNGs are drawn before [`write()`] shrinks them (each output pixel is the
/// mean of `SUPERSAMPLE²` drawn ones): plotters' bitmap backend does not anti-alias lines.
pub const SUPERSAMPLE: u32 = 3;

/// The RGB image `rgb` (`w·k × h·k` pixels) shrunk to `w × h`, each pixel the mean of its
/// `k × k` block.
fn shrink(rgb: &[u8], (w, h): (u32, u32), k: u32) -> Vec<u8> {
    let (w, h, k) = (w as usize, h as usize, k as usize);
    let mut out = vec![0u8; w * h * 3];
    for (y, row) in out.chunks_exact_mut(w * 3).enumerate() {
        for (x, px) in row.chunks_exact_mut(3).enumerate() {
            let mut sum = [0u32; 3];
            for dy in 0..k {
                let start = ((y * k + dy) * w * k + x * k) * 3;
                for src in rgb[start..start + 3 * k].chunks_exact(3) {
                    for (s, &v) in sum.iter_mut().zip(src) {
                        *s += u32::from(v);
                    }
                }
            }
            let n = (k * k) as u32;
            for (p, s) in px.iter_mut().zip(sum) {
                *p = ((s + n / 2) / n) as u8;
            }
        }
    }
    out
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
    let (w, h) = size(fig);
    let k = SUPERSAMPLE;
    let mut big = vec![0u8; (w * k * h * k * 3) as usize];
    draw_scaled(
        fig,
        &BitMapBackend::with_buffer(&mut big, (w * k, h * k)).into_drawing_area(),
        k,
    )?;
    image::save_buffer(&png, &shrink(&big, (w, h), k), w, h, image::ColorType::Rgb8)
        .map_err(|e| Error::Draw(format!("{}: {e}", png.display())))?;
    draw(fig, &SVGBackend::new(&svg, size(fig)).into_drawing_area())?;
    Ok([png, svg, csv_path])
}

/// Writes every figure of `figs` into `dir` as [`write()`] does, all or nothing, and returns the
/// paths: the files are first written into a fresh staging folder inside `dir`, and renamed into
/// place only when every figure has been drawn and written. On an error the staging folder is
/// removed, and so are the folders this call created, so `dir` is left as it was. A figure whose
/// name repeats an earlier one is not written again. (A process killed midway leaves the
/// staging folder `.nadaraya-plot-staging-PID` behind.)
///
/// # Errors
/// As [`write()`], and [`Error::Io`] if the staging folder cannot be created or a file cannot
/// be renamed into `dir`.
pub fn write_all(figs: &[Figure], dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io { path, source }
    };
    // The folders that do not exist yet, deepest first: removed again if anything fails.
    let created: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
        .map(Path::to_path_buf)
        .collect();
    let stage = dir.join(format!(".nadaraya-plot-staging-{}", std::process::id()));
    let staged = std::fs::create_dir_all(dir)
        .map_err(io(dir))
        .and_then(|()| {
            if stage.exists() {
                std::fs::remove_dir_all(&stage).map_err(io(&stage))?;
            }
            std::fs::create_dir(&stage).map_err(io(&stage))
        })
        .and_then(|()| {
            let mut paths = Vec::new();
            let mut names = std::collections::HashSet::new();
            for fig in figs.iter().filter(|f| names.insert(f.name.as_str())) {
                paths.extend(write(fig, &stage)?);
            }
            Ok(paths)
        });
    let done = staged.and_then(|paths| {
        let mut out = Vec::with_capacity(paths.len());
        for from in paths {
            let to = dir.join(from.file_name().unwrap_or_default());
            std::fs::rename(&from, &to).map_err(io(&to))?;
            out.push(to);
        }
        Ok(out)
    });
    // The staging folder goes in every case (empty after a success).
    let _ = std::fs::remove_dir_all(&stage);
    if done.is_err() {
        for d in &created {
            let _ = std::fs::remove_dir(d);
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrink_averages_each_block() {
        // 4×2 pixels shrunk by 2 to 2×1: the left block is black and white (mean 128 after
        // rounding), the right one uniform.
        let mut big = Vec::new();
        for row in [[0u8, 255, 7, 7], [255, 0, 7, 7]] {
            for v in row {
                big.extend([v, v / 2, 255 - v]);
            }
        }
        let small = shrink(&big, (2, 1), 2);
        assert_eq!(small, vec![128, 64, 128, 7, 3, 248]);
    }
}

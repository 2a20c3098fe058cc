//! Writes `BENCHMARKS.md` and the plots under `docs/` from criterion's output.
//!
//! ```text
//! cargo run --release -p nadaraya-benches --bin report -- default=target/bench-default native=target/bench-native
//! ```
//!
//! Each `NAME=DIR` argument is one build flavour: `DIR` is the `CARGO_TARGET_DIR` its benchmarks
//! ran in (criterion's `DIR/criterion/**/new/{benchmark,estimates}.json`) and holds the
//! `roofline` binary's `DIR/roofline.json`. Optional `--out FILE` (default `BENCHMARKS.md`) and
//! `--docs DIR` (default `docs`). Hand-written analysis in `benches/analysis.md` is included
//! verbatim. `benches/run.sh` runs the benchmarks and then this.

use std::collections::BTreeSet;
use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use nadaraya_benches::{Limits, Work};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use serde_json::Value;

type Res<T> = Result<T, Box<dyn Error>>;

/// The font every plot uses, embedded so text renders on a machine without fonts installed:
/// DejaVu Sans Mono from the `dejavu` crate, the one copy of DejaVu the workspace uses (nadaraya-plot
/// takes DejaVu Sans from it).
fn font() -> &'static [u8] {
    dejavu::sans_mono::regular()
}

const KERNELS: [(&str, &str); 2] = [("gaussian", "Gaussian"), ("dot", "softmax-dot")];
const DS: [usize; 3] = [1, 16, 64];
const SINGLE_IMPLS: [(&str, &str); 4] = [
    ("ours_simd", "ours SIMD"),
    ("ours_scalar", "ours scalar"),
    ("naive", "naive loop"),
    ("candle", "candle"),
];

/// One criterion benchmark: its median in nanoseconds.
#[derive(Clone, Debug)]
struct Bench {
    group: String,
    function: String,
    param: String,
    median: f64,
}

#[derive(Debug)]
struct Flavour {
    name: String,
    dir: PathBuf,
    limits: Option<Limits>,
    roofline: Value,
    benches: Vec<Bench>,
}

impl Flavour {
    fn get(&self, group: &str, function: &str, param: usize) -> Option<f64> {
        let p = param.to_string();
        self.benches
            .iter()
            .find(|b| b.group == group && b.function == function && b.param == p)
            .map(|b| b.median)
    }
}

fn read_json(path: &Path) -> Res<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?)
}

fn collect(dir: &Path, out: &mut Vec<Bench>) -> Res<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.file_name().is_some_and(|n| n == "benchmark.json")
            && path
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|n| n == "new")
        {
            let meta = read_json(&path)?;
            let est = read_json(&path.with_file_name("estimates.json"))?;
            let s = |k: &str| {
                meta.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let median = &est["median"];
            let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
            out.push(Bench {
                group: s("group_id"),
                function: s("function_id"),
                param: s("value_str"),
                median: f(&median["point_estimate"]),
            });
        }
    }
    Ok(())
}

fn load(arg: &str) -> Res<Flavour> {
    let (name, dir) = arg
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=TARGET_DIR, got {arg:?}"))?;
    let dir = PathBuf::from(dir);
    let mut benches = Vec::new();
    let crit = dir.join("criterion");
    if crit.is_dir() {
        collect(&crit, &mut benches)?;
    } else {
        eprintln!("warning: {} has no criterion results", crit.display());
    }
    let roof_path = dir.join("roofline.json");
    let roofline = if roof_path.is_file() {
        read_json(&roof_path)?
    } else {
        eprintln!("warning: {} missing", roof_path.display());
        Value::Null
    };
    Ok(Flavour {
        name: name.to_string(),
        limits: Limits::from_json(&roofline),
        roofline,
        dir,
        benches,
    })
}

/// A duration in nanoseconds, three significant digits, in a readable unit.
fn time(ns: f64) -> String {
    if !ns.is_finite() {
        return "–".into();
    }
    let (v, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {unit}")
}

fn ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r.is_finite() => format!("{r:.2}×"),
        _ => "–".into(),
    }
}

fn opt_time(t: Option<f64>) -> String {
    t.map_or_else(|| "–".into(), time)
}

fn div(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? / b?)
}

/// `"4 MiB (2 instances)"` → `" = 2 MiB per instance"`; empty when the form does not match.
fn per_instance(v: &str) -> String {
    let mut it = v.split_whitespace();
    let (Some(size), Some(unit), Some(count)) = (it.next(), it.next(), it.next()) else {
        return String::new();
    };
    let (Ok(size), Ok(count)) = (
        size.parse::<f64>(),
        count.trim_start_matches('(').parse::<f64>(),
    ) else {
        return String::new();
    };
    if count > 1.0 {
        format!(" = {} {unit} per instance", tick(size / count))
    } else {
        String::new()
    }
}

fn machine_info() -> String {
    let mut s = String::new();
    match Command::new("lscpu").output() {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout);
            let keep = [
                "Architecture",
                "Model name",
                "CPU(s):",
                "Thread(s) per core",
                "Core(s) per socket",
                "Hypervisor vendor",
                "L1d cache",
                "L2 cache",
                "L3 cache",
            ];
            for line in text.lines() {
                if keep.iter().any(|k| line.starts_with(k)) {
                    let (k, v) = line.split_once(':').unwrap_or((line, ""));
                    let _ = writeln!(
                        s,
                        "| {} | {}{} |",
                        k.trim(),
                        v.trim(),
                        per_instance(v.trim())
                    );
                }
            }
            let flags: Vec<&str> = text
                .lines()
                .find(|l| l.starts_with("Flags"))
                .map(|l| {
                    l.split_whitespace()
                        .filter(|f| {
                            ["sse2", "avx", "avx2", "fma", "avx512f", "avx512_fp16"].contains(f)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let _ = writeln!(s, "| SIMD flags (of interest) | {} |", flags.join(" "));
        }
        Err(e) => {
            let _ = writeln!(s, "| lscpu | unavailable: {e} |");
        }
    }
    if let Ok(o) = Command::new("rustc").arg("-V").output() {
        let _ = writeln!(
            s,
            "| rustc | {} |",
            String::from_utf8_lossy(&o.stdout).trim()
        );
    }
    format!("| | |\n|---|---|\n{s}")
}

fn roofline_table(flavours: &[Flavour]) -> String {
    let mut s = String::from("| | ");
    s += &flavours
        .iter()
        .map(|f| f.name.as_str())
        .collect::<Vec<_>>()
        .join(" | ");
    s += " |\n|---|";
    s += &"---|".repeat(flavours.len());
    s += "\n";
    let row = |label: &str, f: &dyn Fn(&Flavour) -> String| {
        let cells: Vec<String> = flavours.iter().map(f).collect();
        format!("| {label} | {} |\n", cells.join(" | "))
    };
    let num = |v: &Value, scale: f64, unit: &str| {
        v.as_f64()
            .map_or_else(|| "–".into(), |x| format!("{:.1} {unit}", x / scale))
    };
    s += &row("target features", &|f| {
        f.roofline["features"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    });
    s += &row("peak f32 FMA, f32x8", &|f| {
        num(&f.roofline["peak_f32x8"], 1e9, "GFLOP/s")
    });
    s += &row("peak f32 FMA, f32x16", &|f| {
        num(&f.roofline["peak_f32x16"], 1e9, "GFLOP/s")
    });
    s += &row("vectorised exp (ours)", &|f| {
        num(&f.roofline["exps_per_s"], 1e6, "M/s")
    });
    s += &row("`f32::exp`, one at a time", &|f| {
        num(&f.roofline["libm_exps_per_s"], 1e6, "M/s")
    });
    let sizes: BTreeSet<u64> = flavours
        .iter()
        .filter_map(|f| f.limits.as_ref())
        .flat_map(|l| l.bandwidth.iter().map(|(s, _)| *s as u64))
        .collect();
    for size in sizes {
        s += &row(&format!("read bandwidth, {} KiB", size / 1024), &|f| {
            f.limits
                .as_ref()
                .and_then(|l| l.bandwidth.iter().find(|(b, _)| *b as u64 == size))
                .map_or_else(|| "–".into(), |(_, bw)| format!("{:.1} GB/s", bw / 1e9))
        });
    }
    s
}

/// The headline ratios and whether each aim is met.
fn aims(flavours: &[Flavour], machine: Option<&Limits>) -> String {
    let mut s = String::from(
        "| build | case | ours | naive / ours (aim ≥ 5) | candle / ours (aim ≥ 3) | ours / limit (aim ≤ 2, native) |\n|---|---|---|---|---|---|\n",
    );
    for f in flavours {
        for (kernel, label) in KERNELS {
            let g = format!("single_{kernel}_d64");
            let ours = f.get(&g, "ours_simd", 4096);
            let bound = machine
                .map(|l| l.bound(Work::single_query(kernel == "gaussian", 4096, 64, 64)) * 1e9);
            let _ = writeln!(
                s,
                "| {} | single query, {label}, N = 4096, d = 64 | {} | {} | {} | {} |",
                f.name,
                opt_time(ours),
                ratio(div(f.get(&g, "naive", 4096), ours)),
                ratio(div(f.get(&g, "candle", 4096), ours)),
                ratio(div(ours, bound)),
            );
        }
        let ours = f.get("batched_d64", "ours", 2048);
        let bound = machine.map(|l| l.bound(Work::batched(2048, 64, 64)) * 1e9);
        let _ = writeln!(
            s,
            "| {} | batched, L = 2048, d = 64, one thread (aim: candle / ours > 1) | {} | | {} | {} |",
            f.name,
            opt_time(ours),
            ratio(div(f.get("batched_d64", "candle", 2048), ours)),
            ratio(div(ours, bound)),
        );
    }
    s
}

fn single_tables(f: &Flavour, machine: Option<&Limits>) -> String {
    let mut s = String::new();
    for (kernel, label) in KERNELS {
        for d in DS {
            let dv = if d == 1 { 1 } else { d };
            let g = format!("single_{kernel}_d{d}");
            let ns: BTreeSet<usize> = f
                .benches
                .iter()
                .filter(|b| b.group == g)
                .filter_map(|b| b.param.parse().ok())
                .collect();
            if ns.is_empty() {
                continue;
            }
            let _ = writeln!(
                s,
                "\n#### {label}, d = {d}, dv = {dv} (`{g}`)\n\n| N | ours SIMD | ours scalar | naive | candle | limit (bound by) | scalar / ours | naive / ours | candle / ours | ours / limit |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            for n in ns {
                let ours = f.get(&g, "ours_simd", n);
                let w = Work::single_query(kernel == "gaussian", n, d, dv);
                let bound = machine.map(|l| l.bound(w) * 1e9);
                let _ = writeln!(
                    s,
                    "| {n} | {} | {} | {} | {} | {} ({}) | {} | {} | {} | {} |",
                    opt_time(ours),
                    opt_time(f.get(&g, "ours_scalar", n)),
                    opt_time(f.get(&g, "naive", n)),
                    opt_time(f.get(&g, "candle", n)),
                    opt_time(bound),
                    machine.map_or("–", |l| l.limiter(w)),
                    ratio(div(f.get(&g, "ours_scalar", n), ours)),
                    ratio(div(f.get(&g, "naive", n), ours)),
                    ratio(div(f.get(&g, "candle", n), ours)),
                    ratio(div(ours, bound)),
                );
            }
        }
    }
    s
}

fn batched_table(flavours: &[Flavour], machine: Option<&Limits>) -> String {
    let mut s = String::from(
        "| build | L | ours | candle | limit (bound by) | candle / ours | ours / limit |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for f in flavours {
        for l in [512, 2048, 4096] {
            let ours = f.get("batched_d64", "ours", l);
            let w = Work::batched(l, 64, 64);
            let bound = machine.map(|m| m.bound(w) * 1e9);
            let _ = writeln!(
                s,
                "| {} | {l} | {} | {} | {} ({}) | {} | {} |",
                f.name,
                opt_time(ours),
                opt_time(f.get("batched_d64", "candle", l)),
                opt_time(bound),
                machine.map_or("–", |m| m.limiter(w)),
                ratio(div(f.get("batched_d64", "candle", l), ours)),
                ratio(div(ours, bound)),
            );
        }
    }
    s
}

fn merge_table(flavours: &[Flavour]) -> String {
    let mut s = String::from(
        "| build | N | single pass (`OnlineSoftmax::update`) | `attention` | 8 chunks merged | 64 chunks merged | 8 chunks / single pass | 64 chunks / single pass |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for f in flavours {
        for n in [4096, 16384] {
            let g = format!("online_merge_d64_n{n}");
            let single = f.get(&g, "single_pass", n);
            let _ = writeln!(
                s,
                "| {} | {n} | {} | {} | {} | {} | {} | {} |",
                f.name,
                opt_time(single),
                opt_time(f.get(&g, "attention", n)),
                opt_time(f.get(&g, "chunks_8", n)),
                opt_time(f.get(&g, "chunks_64", n)),
                ratio(div(f.get(&g, "chunks_8", n), single)),
                ratio(div(f.get(&g, "chunks_64", n), single)),
            );
        }
    }
    s
}

fn anatomy_table(flavours: &[Flavour]) -> String {
    let mut s = String::from(
        "| build | kernel | `attention` | `weights` (no values) | one read of keys + values | one read of keys | attention / read of keys + values |\n|---|---|---:|---:|---:|---:|---:|\n",
    );
    for f in flavours {
        for (kernel, label) in KERNELS {
            let g = format!("anatomy_{kernel}_d64_n4096");
            let full = f.get(&g, "attention", 4096);
            let read = f.get(&g, "read_keys_values", 4096);
            let _ = writeln!(
                s,
                "| {} | {label} | {} | {} | {} | {} | {} |",
                f.name,
                opt_time(full),
                opt_time(f.get(&g, "weights", 4096)),
                opt_time(read),
                opt_time(f.get(&g, "read_keys", 4096)),
                ratio(div(full, read)),
            );
        }
    }
    s
}

fn is_known(group: &str) -> bool {
    group.starts_with("single_")
        || group == "batched_d64"
        || group.starts_with("online_merge_")
        || group.starts_with("anatomy_")
}

/// Tables (and plots) of any other benchmark group, such as the random-feature comparison:
/// medians by parameter and function.
fn other_groups(flavours: &[Flavour], docs: &Path) -> Res<String> {
    let mut s = String::new();
    let groups: BTreeSet<&str> = flavours
        .iter()
        .flat_map(|f| f.benches.iter().map(|b| b.group.as_str()))
        .filter(|g| !is_known(g))
        .collect();
    for g in groups {
        let _ = writeln!(s, "\n### `{g}`\n");
        for f in flavours {
            let rows: Vec<&Bench> = f.benches.iter().filter(|b| b.group == g).collect();
            if rows.is_empty() {
                continue;
            }
            let funcs: BTreeSet<&str> = rows.iter().map(|b| b.function.as_str()).collect();
            let mut params: Vec<&str> = rows.iter().map(|b| b.param.as_str()).collect();
            params.sort_by(|a, b| {
                let (x, y) = (a.parse::<f64>().ok(), b.parse::<f64>().ok());
                x.partial_cmp(&y)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then(a.cmp(b))
            });
            params.dedup();
            let _ = writeln!(s, "{} build:\n", f.name);
            let _ = writeln!(
                s,
                "| parameter | {} |\n|---|{}",
                funcs.iter().copied().collect::<Vec<_>>().join(" | "),
                "---:|".repeat(funcs.len())
            );
            for p in &params {
                let cells: Vec<String> = funcs
                    .iter()
                    .map(|func| {
                        rows.iter()
                            .find(|b| b.function == *func && b.param == *p)
                            .map_or_else(|| "–".into(), |b| time(b.median))
                    })
                    .collect();
                let _ = writeln!(s, "| {p} | {} |", cells.join(" | "));
            }
            let series: Vec<(String, Vec<(f64, f64)>)> = funcs
                .iter()
                .map(|func| {
                    let mut pts = rows
                        .iter()
                        .filter(|b| b.function == *func)
                        .filter_map(|b| Some((b.param.parse::<f64>().ok()?, b.median / 1e3)))
                        .collect::<Vec<_>>();
                    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                    (func.to_string(), pts)
                })
                .filter(|(_, p)| p.len() > 1)
                .collect();
            if !series.is_empty() {
                let file = format!("bench-{}-{}.png", safe(g), f.name);
                let xlabel = if g == "random_features" {
                    "L (queries = keys)"
                } else {
                    "parameter"
                };
                plot_panels(
                    &docs.join(&file),
                    &[(format!("{g} ({} build)", f.name), xlabel, series)],
                )?;
                let _ = writeln!(s, "\n![{g}, {} build](docs/{file})\n", f.name);
            }
        }
    }
    Ok(s)
}

fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// An axis label: no trailing zeros (`1000`, `0.5`, `0.01`), and only at 1, 2 and 5 times a
/// power of ten so that log axes stay readable.
fn tick(v: f64) -> String {
    let m = v / 10f64.powf(v.log10().floor());
    if ![1.0, 2.0, 5.0].iter().any(|k| (m - k).abs() < 1e-6 * k) {
        return String::new();
    }
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

type Panel = (String, &'static str, Vec<(String, Vec<(f64, f64)>)>);

/// Log-log plot of time (µs) against a size, one panel per entry, one line per series.
fn plot_panels(path: &Path, panels: &[Panel]) -> Res<()> {
    let width = 560 * panels.len() as u32;
    let root = BitMapBackend::new(path, (width, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let areas = root.split_evenly((1, panels.len()));
    let colors = [
        RGBColor(0, 114, 178),
        RGBColor(230, 159, 0),
        RGBColor(0, 158, 115),
        RGBColor(204, 121, 167),
        RGBColor(86, 180, 233),
        RGBColor(213, 94, 0),
        RGBColor(0, 0, 0),
    ];
    for (area, (title, xlabel, series)) in areas.iter().zip(panels) {
        let pts = series
            .iter()
            .flat_map(|(_, p)| p.iter())
            .filter(|(x, y)| *x > 0.0 && *y > 0.0);
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in pts {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if x0 > x1 {
            continue;
        }
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(
                (x0 / 1.3..x1 * 1.3).log_scale(),
                (y0 / 1.5..y1 * 1.5).log_scale(),
            )?;
        chart
            .configure_mesh()
            .x_desc(*xlabel)
            .y_desc("time (µs)")
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 15))
            .draw()?;
        for (i, (name, p)) in series.iter().enumerate() {
            let color = colors[i % colors.len()];
            let style = if name.starts_with("limit") {
                color.stroke_width(1)
            } else {
                color.stroke_width(2)
            };
            chart
                .draw_series(LineSeries::new(p.iter().copied(), style))?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart.draw_series(p.iter().map(|&pt| Circle::new(pt, 3, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

fn single_plots(f: &Flavour, machine: Option<&Limits>, docs: &Path) -> Res<Vec<String>> {
    let mut files = Vec::new();
    for (kernel, label) in KERNELS {
        let mut panels = Vec::new();
        for d in DS {
            let dv = if d == 1 { 1 } else { d };
            let g = format!("single_{kernel}_d{d}");
            let mut series: Vec<(String, Vec<(f64, f64)>)> = SINGLE_IMPLS
                .iter()
                .map(|(id, name)| {
                    let mut p: Vec<(f64, f64)> = f
                        .benches
                        .iter()
                        .filter(|b| b.group == g && b.function == *id)
                        .filter_map(|b| Some((b.param.parse::<f64>().ok()?, b.median / 1e3)))
                        .collect();
                    p.sort_by(|a, b| a.0.total_cmp(&b.0));
                    (name.to_string(), p)
                })
                .filter(|(_, p)| !p.is_empty())
                .collect();
            if let (Some(m), Some((_, first))) = (machine, series.first()) {
                let limit = first
                    .iter()
                    .map(|&(n, _)| {
                        (
                            n,
                            m.bound(Work::single_query(kernel == "gaussian", n as usize, d, dv))
                                * 1e6,
                        )
                    })
                    .collect();
                series.push(("limit (roofline)".into(), limit));
            }
            if !series.is_empty() {
                panels.push((format!("{label}, d = {d}"), "N (keys)", series));
            }
        }
        if panels.is_empty() {
            continue;
        }
        let file = format!("bench-single-{kernel}-{}.png", f.name);
        plot_panels(&docs.join(&file), &panels)?;
        files.push(file);
    }
    Ok(files)
}

fn batched_plot(
    flavours: &[Flavour],
    machine: Option<&Limits>,
    docs: &Path,
) -> Res<Option<String>> {
    let mut series = Vec::new();
    for f in flavours {
        for (id, name) in [("ours", "ours"), ("candle", "candle")] {
            let mut p: Vec<(f64, f64)> = f
                .benches
                .iter()
                .filter(|b| b.group == "batched_d64" && b.function == id)
                .filter_map(|b| Some((b.param.parse::<f64>().ok()?, b.median / 1e3)))
                .collect();
            p.sort_by(|a, b| a.0.total_cmp(&b.0));
            if !p.is_empty() {
                series.push((format!("{name} ({})", f.name), p));
            }
        }
    }
    if series.is_empty() {
        return Ok(None);
    }
    if let Some(m) = machine {
        let limit = [512.0, 2048.0, 4096.0]
            .iter()
            .map(|&l| (l, m.bound(Work::batched(l as usize, 64, 64)) * 1e6))
            .collect();
        series.push(("limit (roofline)".into(), limit));
    }
    let file = "bench-batched.png".to_string();
    plot_panels(
        &docs.join(&file),
        &[(
            "batched attention, d = 64, one thread".into(),
            "L (queries = keys)",
            series,
        )],
    )?;
    Ok(Some(file))
}

fn main() -> Res<()> {
    let mut out = PathBuf::from("BENCHMARKS.md");
    let mut docs = PathBuf::from("docs");
    let mut specs = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = args.next().ok_or("--out needs a path")?.into(),
            "--docs" => docs = args.next().ok_or("--docs needs a path")?.into(),
            _ => specs.push(a),
        }
    }
    if specs.is_empty() {
        return Err("usage: report [--out FILE] [--docs DIR] NAME=TARGET_DIR...".into());
    }
    register_font("sans-serif", FontStyle::Normal, font())
        .map_err(|_| "embedded font is not a valid TTF")?;
    std::fs::create_dir_all(&docs)?;
    let flavours = specs.iter().map(|s| load(s)).collect::<Res<Vec<_>>>()?;
    // The machine's limit: the best each measurement reached in any build flavour.
    let machine = flavours
        .iter()
        .filter_map(|f| f.limits.clone())
        .reduce(|a, b| a.best(&b));
    let m = machine.as_ref();

    let mut s = String::new();
    s += "# Benchmarks\n\n";
    s += "<!-- Generated by `cargo run --release -p nadaraya-benches --bin report` (see below); do not edit: \
          edit benches/src/bin/report.rs or benches/analysis.md and regenerate. -->\n\n";
    s += "Every figure below comes from one run of `bash benches/run.sh` on the machine described here: \
          criterion medians (with 95 % confidence intervals in `target/bench-*/criterion/`), and the \
          machine's one-core limits measured in the same run by `benches/src/bin/roofline.rs`.\n\n";
    s += "## Machine\n\n";
    s += &machine_info();
    s += "\nlscpu sums each cache over its instances (one per core for L1 and L2 here). The machine these \
          figures come from is a 2-vCPU KVM guest shared with other jobs: even pinned and prioritised, medians move by up \
          to ±20 % between runs (see the analysis at the end); ratios within one run are steadier than \
          absolute times.\n\n";
    s += "## Commands\n\n```sh\nbash benches/run.sh          # both flavours, then this report\nbash benches/run.sh report   # only this report, from the results in target/bench-*\nbash benches/ab.sh OLD FLAVOUR BENCH FILTER 3   # A/B: OLD commit against the working tree, alternating\nbash benches/cachegrind.sh OLD default 2048      # A/B in instructions and simulated cache misses\n```\n\n";
    s += "For each flavour `benches/run.sh` runs, with `DIR` = `target/bench-NAME`:\n\n```sh\n";
    for f in &flavours {
        let flags = if f.name == "native" {
            "-C target-cpu=native"
        } else {
            ""
        };
        let dir = f.dir.display();
        let _ = writeln!(
            s,
            "export RUSTFLAGS=\"{flags}\" CARGO_TARGET_DIR=$PWD/{dir} RAYON_NUM_THREADS=1\n\
             cargo build --release -p nadaraya-benches --bins && cargo bench -p nadaraya-benches --no-run\n\
             pinned {dir}/release/roofline {dir}/roofline.json\n\
             pinned cargo bench -p nadaraya-benches\n"
        );
    }
    let _ = writeln!(
        s,
        "cargo run --release -p nadaraya-benches --bin report -- {}\n```\n",
        specs.join(" ")
    );
    s += "`CARGO_TARGET_DIR` must be absolute: criterion resolves it from the package directory when it \
          writes `criterion/`. `pinned` runs its command on CPU 1 with `nice -n -20` in a new session whose scheduler autogroup \
          is set to nice -20 (as root), so that other jobs on this shared 2-vCPU machine do not take half \
          the core during a measurement. ";
    s += "`default` is the plain x86-64 build: `wide`'s portable lanes are SSE2 there, and the hot \
          kernels run at the widest level `nadaraya::dispatch` detects at run time (AVX2 + FMA or \
          AVX-512F; `NADARAYA_LEVEL=baseline|avx2|avx512` forces one, and the bench logs print the \
          level); `native` adds `-C target-cpu=native`, which also widens the portable lanes. \
          candle runs on one thread: the benches re-run themselves with `RAYON_NUM_THREADS=1`, the variable \
          candle's matmul (`candle_core::utils::get_num_threads`) and its rayon softmax both read; candle's \
          `gemm` picks its SIMD at run time, so it is the same in both builds.\n\n";
    s += "## The aims\n\nAt N = 4096, d = 64, single query, and batched L = 2048 (limit: the machine's best \
          roofline bound, below).\n\n";
    s += &aims(&flavours, m);
    s += "\n## The limit\n\nMeasured on one core by `cargo run --release -p nadaraya-benches --bin roofline` in each \
          build. The roofline bound of a benchmark is `max(flops / peak, bytes / bandwidth, exps / exp rate)`, \
          with the best figure of either build (the machine's, not the build's, limit), the read bandwidth \
          of the smallest buffer that holds the benchmark's working set (the cache level it lives in \
          between criterion's iterations), flops counting an FMA as 2, and the exp rate that of our own \
          vectorised `exp` (`nadaraya::math::exp_neg_in_place`). Cost model: `nadaraya_benches::Work`.\n\n";
    s += &roofline_table(&flavours);
    s += "\n## Single-query smoothing\n\nOne query against N keys; values of dimension dv. `ours SIMD` is \
          `nadaraya::attention` with one query row, `ours scalar` `nadaraya::scalar::attention`, `naive` a \
          two-pass loop with `f32::exp` (`nadaraya_benches::naive_gaussian`/`naive_dot`), `candle` \
          candle-core matmul + `candle_nn::ops::softmax_last_dim` + matmul (Gaussian scores as \
          `2q·k - |k|²` by matmul, `|k|²` computed per call). Ratios above 1 in `… / ours` mean we are faster.\n";
    for f in &flavours {
        let _ = writeln!(s, "\n### {} build\n", f.name);
        for file in single_plots(f, m, &docs)? {
            let _ = writeln!(s, "![{file}](docs/{file})\n");
        }
        s += &single_tables(f, m);
    }
    s += "\n## Batched attention\n\nL queries against L keys, d = dv = 64, softmax-dot, one thread. \
          The limit counts compulsory traffic only (Q, K, V read and the output written once).\n\n";
    if let Some(file) = batched_plot(&flavours, m, &docs)? {
        let _ = writeln!(s, "![batched attention](docs/{file})\n");
    }
    s += &batched_table(&flavours, m);
    s += "\n## Online-softmax merge\n\nOne query, d = dv = 64, softmax-dot: the keys split into C chunks, one \
          `OnlineSoftmax<64>` per chunk, merged; against one state over all keys and against \
          `nadaraya::attention`.\n\n";
    s += &merge_table(&flavours);
    s += "\n## Anatomy of one call\n\nN = 4096, d = dv = 64, single query (`benches/benches/anatomy.rs`): \
          the whole call, its score-and-weight half alone, and plain vectorised reads of the same data \
          (what one pass over the working set costs at this cache level).\n\n";
    s += &anatomy_table(&flavours);
    s += "\n## Exact vs random-feature attention\n\n";
    let others = other_groups(&flavours, &docs)?;
    if others.is_empty() {
        s += "No results yet: this section is filled from `benches/benches/random_features.rs` \
              (nadaraya-rf) when its results are in the target dirs.\n";
    } else {
        s += "`benches/benches/random_features.rs`: exact attention (`nadaraya::attention`, one thread) \
              against FAVOR+ random-feature attention (`nadaraya_rf::FavorPlus::attention`, m = 256), d = dv = 64, \
              L queries and L keys; the exact path runs up to L = 8192 unless \
              `NADARAYA_BENCH_EXACT_MAX` raises it. Any other benchmark group found in the results is \
              tabulated and plotted here the same way.\n";
        s += &others;
    }
    s += "\n## Fitting against statsmodels\n\n";
    match std::fs::read_to_string("benches/statsmodels/README.md") {
        Ok(text) => s += &text,
        Err(_) => s += "(benches/statsmodels/README.md not found)\n",
    }
    s += "\n## Metric learning against metric-learn\n\n";
    match std::fs::read_to_string("benches/metric-learn/README.md") {
        Ok(text) => s += &text,
        Err(_) => s += "(benches/metric-learn/README.md not found)\n",
    }
    s += "\n## What holds us back\n\n";
    match std::fs::read_to_string("benches/analysis.md") {
        Ok(text) => s += &text,
        Err(_) => s += "(benches/analysis.md not found)\n",
    }
    std::fs::write(&out, s)?;
    println!("wrote {} and plots under {}", out.display(), docs.display());
    Ok(())
}

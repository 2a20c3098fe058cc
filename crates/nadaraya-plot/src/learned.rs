//! The figures of `nadaraya learn` (metric learning for kernel regression): the data in the
//! learned coordinate beside a raw one, and the training loss against steps.

use crate::data::min_max;
use crate::figure::{Figure, Mark, Panel, Series, Source};

/// The figure `metric-learning`: `y` against the learned coordinate `coord` (the data projected
/// on the learned map's principal direction) above `y` against the raw coordinate `raw`
/// (`x1`), with the leave-one-out scores of the learned map (`cv`) and of the identity
/// (`identity_cv`) in the title.
#[must_use]
pub fn coordinates(coord: &[f32], raw: &[f32], y: &[f32], cv: f64, identity_cv: f64) -> Figure {
    let panel = |id: &str, label: &str, x: &[f32]| {
        let (lo, hi) = min_max(x);
        let pad = 0.05 * (hi - lo).max(f32::MIN_POSITIVE);
        Panel {
            id: id.into(),
            x_label: label.into(),
            y_label: "y".into(),
            x_range: (lo - pad, hi + pad),
            y_range: None,
            queries: Vec::new(),
            shade: None,
            log_log: false,
            series: vec![Series::data("data (x_i, y_i)", x, y)],
        }
    };
    Figure {
        name: "metric-learning".into(),
        title: format!(
            "Learned metric (MLKR): leave-one-out MSE {cv:.4} in the learned coordinate, {identity_cv:.3} with the identity"
        ),
        panels: vec![
            panel(
                "learned",
                "learned coordinate v·x (v: the learned direction)",
                coord,
            ),
            panel("raw", "raw coordinate x1", raw),
        ],
    }
}

/// The figure `metric-training`: each trace's leave-one-out score (the start, then after each
/// step) against the step, on logarithmic axes (step + 1).
#[must_use]
pub fn training(traces: &[(&str, &[f64])]) -> Figure {
    let series: Vec<Series> = traces
        .iter()
        .enumerate()
        .map(|(c, (label, t))| Series {
            label: format!("{label} ({} steps)", t.len().saturating_sub(1)),
            mark: Mark::Line,
            color: c + 1,
            points: t
                .iter()
                .enumerate()
                .map(|(i, v)| ((i + 1) as f32, *v as f32))
                .collect(),
            source: Source::Data,
        })
        .collect();
    let steps = traces.iter().map(|t| t.1.len()).max().unwrap_or(1).max(2);
    let values: Vec<f32> = traces
        .iter()
        .flat_map(|t| t.1.iter().map(|v| *v as f32))
        .collect();
    let (lo, hi) = min_max(&values);
    let log = lo > 0.0 && lo.is_finite() && hi.is_finite();
    Figure {
        name: "metric-training".into(),
        title: "Training loss of the learned metric: leave-one-out MSE against steps".into(),
        panels: vec![Panel {
            id: "loss".into(),
            x_label: "step + 1".into(),
            y_label: "leave-one-out MSE".into(),
            x_range: (1.0, steps as f32),
            y_range: log.then_some((lo / 1.2, hi * 1.2)),
            queries: Vec::new(),
            shade: None,
            log_log: log,
            series,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_figures_plot_the_values_given() {
        let f = coordinates(
            &[0.0, 1.0, 2.0],
            &[5.0, 4.0, 3.0],
            &[1.0, -1.0, 0.5],
            0.01,
            0.25,
        );
        assert_eq!(f.panels.len(), 2);
        assert_eq!(
            f.panels[0].series[0].points,
            vec![(0.0, 1.0), (1.0, -1.0), (2.0, 0.5)]
        );
        assert_eq!(
            f.panels[1].series[0].points,
            vec![(5.0, 1.0), (4.0, -1.0), (3.0, 0.5)]
        );
        assert!(f.panels[0].x_range.0 < 0.0 && f.panels[0].x_range.1 > 2.0);
        let t = training(&[("a", &[0.5, 0.1, 0.01][..]), ("b", &[0.5, 0.2][..])]);
        let s = &t.panels[0].series;
        assert_eq!(s[0].points, vec![(1.0, 0.5), (2.0, 0.1), (3.0, 0.01)]);
        assert_eq!(s[0].label, "a (2 steps)");
        assert_eq!(s[1].label, "b (1 steps)");
        assert!(t.panels[0].log_log && t.panels[0].x_range == (1.0, 3.0));
    }
}

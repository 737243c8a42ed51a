//! Training curves as an SVG file: the loss (every iteration, faint; training and
//! validation per epoch) and the validation metric per epoch.

use crate::error::{Error, Result};
use crate::train::EpochStats;
use std::fmt::Write;
use std::path::Path;

const W: f64 = 760.0;
const H: f64 = 300.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 45.0;

/// One line: its legend name, colour, stroke width and points.
type Series<'a> = (&'a str, &'a str, f64, Vec<(f64, f64)>);

struct Panel<'a> {
    title: &'a str,
    x_label: &'a str,
    series: Vec<Series<'a>>,
    /// Start the y axis at zero (losses), instead of just below the smallest value.
    y_from_zero: bool,
}

fn nice_range(lo: f64, hi: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    if (hi - lo).abs() < 1e-12 {
        return (lo - 0.5, hi + 0.5);
    }
    let pad = (hi - lo) * 0.05;
    (lo - pad, hi + pad)
}

fn panel(svg: &mut String, y0: f64, p: &Panel<'_>) {
    let pts: Vec<(f64, f64)> = p
        .series
        .iter()
        .flat_map(|s| s.3.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let x_max = pts
        .iter()
        .map(|p| p.0)
        .fold(f64::NEG_INFINITY, f64::max)
        .max(1.0)
        .ceil();
    let (x_lo, x_hi) = (0.0, x_max);
    let y_min = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let y_max = pts.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let (y_lo, y_hi) = if p.y_from_zero && y_min >= 0.0 {
        (0.0, nice_range(y_min, y_max).1)
    } else {
        nice_range(y_min, y_max)
    };
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let sx = |x: f64| LEFT + (x - x_lo) / (x_hi - x_lo) * pw;
    let sy = |y: f64| y0 + TOP + ph - (y - y_lo) / (y_hi - y_lo) * ph;
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" font-size="15" font-weight="bold">{}</text>"#,
        LEFT,
        y0 + 24.0,
        p.title
    );
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>"##,
        y0 + TOP
    );
    for i in 0..=4 {
        let yv = y_lo + i as f64 / 4.0 * (y_hi - y_lo);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" x2="{}" y1="{y}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" font-size="11" text-anchor="end">{}</text>"##,
            LEFT + pw,
            LEFT - 6.0,
            sy(yv) + 4.0,
            fmt_tick(yv),
            y = sy(yv)
        );
    }
    // Whole epochs on the x axis, at most about ten labels.
    let step = (x_hi / 10.0).ceil().max(1.0);
    let mut xv = 0.0;
    while xv <= x_hi + 1e-9 {
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" font-size="11" text-anchor="middle">{xv}</text>"#,
            sx(xv),
            y0 + TOP + ph + 16.0
        );
        xv += step;
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" font-size="12" text-anchor="middle">{}</text>"#,
        LEFT + pw / 2.0,
        y0 + H - 8.0,
        p.x_label
    );
    let mut legend_x = LEFT + 260.0;
    for (name, colour, width, points) in &p.series {
        let path: Vec<String> = points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        if path.is_empty() {
            continue;
        }
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="{width}" points="{}"/>"#,
            path.join(" ")
        );
        if points.len() <= 60 {
            for &(x, y) in points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
            {
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/>"#,
                    sx(x),
                    sy(y)
                );
            }
        }
        let _ = writeln!(
            svg,
            r#"<rect x="{legend_x}" y="{}" width="14" height="4" fill="{colour}"/><text x="{}" y="{}" font-size="12">{name}</text>"#,
            y0 + 19.0,
            legend_x + 18.0,
            y0 + 24.0
        );
        legend_x += 30.0 + 7.0 * name.len() as f64;
    }
}

fn fmt_tick(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Writes the curves of a run to `path` (`.svg`); `metric_name` labels the metric panel.
pub fn write_svg(
    path: &Path,
    history: &[EpochStats],
    iteration_losses: &[f32],
    iterations_per_epoch: f64,
    metric_name: &str,
) -> Result<()> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !ext.eq_ignore_ascii_case("svg") {
        return Err(Error::data(
            path,
            "--plot writes SVG: give a file name ending in .svg",
        ));
    }
    let per_iter: Vec<(f64, f64)> = iteration_losses
        .iter()
        .enumerate()
        .map(|(i, &l)| ((i + 1) as f64 / iterations_per_epoch.max(1.0), l as f64))
        .collect();
    let train: Vec<(f64, f64)> = history
        .iter()
        .map(|e| (e.epoch as f64, e.train_loss))
        .collect();
    let val: Vec<(f64, f64)> = history
        .iter()
        .filter_map(|e| e.val.map(|v| (e.epoch as f64, v.loss)))
        .collect();
    let metric: Vec<(f64, f64)> = history
        .iter()
        .filter_map(|e| e.val.map(|v| (e.epoch as f64, v.metric)))
        .collect();
    let panels = [
        Panel {
            title: "loss",
            x_label: "epoch",
            series: vec![
                ("train (iterations)", "#9ecae1", 1.0, per_iter),
                ("train", "#1f77b4", 2.5, train),
                ("validation", "#d62728", 2.5, val),
            ],
            y_from_zero: true,
        },
        Panel {
            title: metric_name,
            x_label: "epoch",
            series: vec![(metric_name, "#2ca02c", 2.5, metric)],
            y_from_zero: false,
        },
    ];
    let count = if panels[1].series[0].3.is_empty() {
        1
    } else {
        2
    };
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{}" font-family="sans-serif">"#,
        H * count as f64
    );
    svg.push('\n');
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (i, p) in panels.iter().take(count).enumerate() {
        panel(&mut svg, i as f64 * H, p);
    }
    svg.push_str("</svg>\n");
    crate::weights::write_atomic(path, svg.as_bytes())
}

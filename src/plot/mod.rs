//! Training curves as an SVG or PNG file: the loss (every iteration, faint; training and
//! validation per epoch) and the validation metric per epoch.

mod canvas;

use crate::error::{Error, Result};
use crate::train::EpochStats;
use canvas::{Anchor, Canvas, Raster, Svg};
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

fn panel(canvas: &mut dyn Canvas, y0: f64, p: &Panel<'_>) {
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
    canvas.text(LEFT, y0 + 24.0, 15.0, Anchor::Start, true, p.title);
    canvas.outline(LEFT, y0 + TOP, pw, ph, "#888888");
    for i in 0..=4 {
        let yv = y_lo + i as f64 / 4.0 * (y_hi - y_lo);
        canvas.line(LEFT, sy(yv), LEFT + pw, sy(yv), "#dddddd");
        canvas.text(
            LEFT - 6.0,
            sy(yv) + 4.0,
            11.0,
            Anchor::End,
            false,
            &fmt_tick(yv),
        );
    }
    // Whole epochs on the x axis, at most about ten labels.
    let step = (x_hi / 10.0).ceil().max(1.0);
    let mut xv = 0.0;
    while xv <= x_hi + 1e-9 {
        let label = format!("{xv}");
        canvas.text(
            sx(xv),
            y0 + TOP + ph + 16.0,
            11.0,
            Anchor::Middle,
            false,
            &label,
        );
        xv += step;
    }
    canvas.text(
        LEFT + pw / 2.0,
        y0 + H - 8.0,
        12.0,
        Anchor::Middle,
        false,
        p.x_label,
    );
    // The legend starts after the title (16 pixels a character in the PNG's bold font).
    let mut legend_x = LEFT + (17.0 * p.title.len() as f64 + 20.0).max(260.0);
    for (name, colour, width, points) in &p.series {
        let path: Vec<(f64, f64)> = points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| (sx(x), sy(y)))
            .collect();
        if path.is_empty() {
            continue;
        }
        canvas.polyline(&path, colour, *width);
        if points.len() <= 60 {
            for &(x, y) in &path {
                canvas.dot(x, y, 3.0, colour);
            }
        }
        canvas.fill(legend_x, y0 + 19.0, 14.0, 4.0, colour);
        canvas.text(legend_x + 18.0, y0 + 24.0, 12.0, Anchor::Start, false, name);
        legend_x += 30.0 + 8.0 * name.len() as f64;
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

/// The format `path` asks for, "svg" or "png" (by its extension, any case); an error naming
/// the path for any other (checked before training, so that a wrong name cannot cost a run).
pub fn check_format(path: &Path) -> Result<String> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext != "svg" && ext != "png" {
        return Err(Error::data(
            path,
            "--plot writes SVG or PNG: give a file name ending in .svg or .png",
        ));
    }
    Ok(ext)
}

/// Writes the curves of a run to `path` (`.svg` or `.png`); `metric_name` labels the metric
/// panel. The file is replaced atomically.
pub fn write_plot(
    path: &Path,
    history: &[EpochStats],
    iteration_losses: &[f32],
    iterations_per_epoch: f64,
    metric_name: &str,
) -> Result<()> {
    let ext = check_format(path)?;
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
    let height = H * count as f64;
    let bytes = if ext == "svg" {
        let mut svg = Svg::new(W, height);
        for (i, p) in panels.iter().take(count).enumerate() {
            panel(&mut svg, i as f64 * H, p);
        }
        svg.finish().into_bytes()
    } else {
        let mut raster = Raster::new(W as usize, height as usize);
        for (i, p) in panels.iter().take(count).enumerate() {
            panel(&mut raster, i as f64 * H, p);
        }
        encode_png(&raster).map_err(|e| Error::data(path, format!("encoding PNG: {e}")))?
    };
    crate::weights::write_atomic(path, &bytes)
}

fn encode_png(raster: &Raster) -> std::result::Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, raster.width as u32, raster.height as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&raster.pixels)?;
    writer.finish()?;
    Ok(out)
}

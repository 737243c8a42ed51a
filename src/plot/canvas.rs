//! The drawing operations a plot needs, and the two back ends: SVG text and a raster that
//! is written as PNG.

use font8x8::UnicodeFonts;
use std::fmt::Write;

/// Where a text's x coordinate sits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

/// Drawing in pixel coordinates (origin top left). Colours are `#rrggbb`.
pub trait Canvas {
    /// Text with its baseline at `y`, `size` pixels tall.
    fn text(&mut self, x: f64, y: f64, size: f64, anchor: Anchor, bold: bool, text: &str);
    fn outline(&mut self, x: f64, y: f64, w: f64, h: f64, colour: &str);
    fn fill(&mut self, x: f64, y: f64, w: f64, h: f64, colour: &str);
    fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, colour: &str);
    fn polyline(&mut self, points: &[(f64, f64)], colour: &str, width: f64);
    fn dot(&mut self, x: f64, y: f64, radius: f64, colour: &str);
}

/// An SVG document.
pub struct Svg {
    pub out: String,
}

impl Svg {
    pub fn new(width: f64, height: f64) -> Self {
        let mut out = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">"#
        );
        out.push('\n');
        out.push_str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        Self { out }
    }
    pub fn finish(mut self) -> String {
        self.out.push_str("</svg>\n");
        self.out
    }
}

impl Canvas for Svg {
    fn text(&mut self, x: f64, y: f64, size: f64, anchor: Anchor, bold: bool, text: &str) {
        let anchor = match anchor {
            Anchor::Start => "",
            Anchor::Middle => r#" text-anchor="middle""#,
            Anchor::End => r#" text-anchor="end""#,
        };
        let weight = if bold { r#" font-weight="bold""# } else { "" };
        let _ = writeln!(
            self.out,
            r#"<text x="{x}" y="{y}" font-size="{size}"{weight}{anchor}>{text}</text>"#
        );
    }
    fn outline(&mut self, x: f64, y: f64, w: f64, h: f64, colour: &str) {
        let _ = writeln!(
            self.out,
            r#"<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="none" stroke="{colour}"/>"#
        );
    }
    fn fill(&mut self, x: f64, y: f64, w: f64, h: f64, colour: &str) {
        let _ = writeln!(
            self.out,
            r#"<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{colour}"/>"#
        );
    }
    fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, colour: &str) {
        let _ = writeln!(
            self.out,
            r#"<line x1="{x1}" x2="{x2}" y1="{y1}" y2="{y2}" stroke="{colour}"/>"#
        );
    }
    fn polyline(&mut self, points: &[(f64, f64)], colour: &str, width: f64) {
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            self.out,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="{width}" points="{}"/>"#,
            path.join(" ")
        );
    }
    fn dot(&mut self, x: f64, y: f64, radius: f64, colour: &str) {
        let _ = writeln!(
            self.out,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="{radius}" fill="{colour}"/>"#
        );
    }
}

/// An RGB raster (white background), drawn with disc-stamped lines and an 8x8 bitmap font.
pub struct Raster {
    pub width: usize,
    pub height: usize,
    /// `[height, width, 3]` bytes.
    pub pixels: Vec<u8>,
}

fn rgb(colour: &str) -> [u8; 3] {
    let hex = colour.trim_start_matches('#');
    let part = |i: usize| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0);
    [part(0), part(2), part(4)]
}

impl Raster {
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            pixels: vec![255; width * height * 3],
        }
    }

    fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let at = (y as usize * self.width + x as usize) * 3;
            self.pixels[at..at + 3].copy_from_slice(&c);
        }
    }

    fn disc(&mut self, x: f64, y: f64, radius: f64, c: [u8; 3]) {
        let r = radius.max(0.5);
        let (x0, x1) = ((x - r).floor() as i64, (x + r).ceil() as i64);
        let (y0, y1) = ((y - r).floor() as i64, (y + r).ceil() as i64);
        for py in y0..=y1 {
            for px in x0..=x1 {
                let (dx, dy) = (px as f64 + 0.5 - x, py as f64 + 0.5 - y);
                if dx * dx + dy * dy <= r * r {
                    self.set(px, py, c);
                }
            }
        }
    }

    fn segment(&mut self, (x1, y1): (f64, f64), (x2, y2): (f64, f64), width: f64, c: [u8; 3]) {
        let steps = ((x2 - x1).abs().max((y2 - y1).abs()) * 2.0).ceil().max(1.0) as usize;
        for i in 0..=steps {
            let t = i as f64 / steps as f64;
            self.disc(x1 + (x2 - x1) * t, y1 + (y2 - y1) * t, width / 2.0, c);
        }
    }
}

impl Canvas for Raster {
    fn text(&mut self, x: f64, y: f64, size: f64, anchor: Anchor, bold: bool, text: &str) {
        // 8x8 glyphs, doubled for titles; the baseline sits at the glyph's bottom row.
        let scale = if size >= 14.0 { 2 } else { 1 };
        let advance = 8 * scale;
        let width = (text.chars().count() * advance) as f64;
        let left = match anchor {
            Anchor::Start => x,
            Anchor::Middle => x - width / 2.0,
            Anchor::End => x - width,
        }
        .round() as i64;
        let top = (y - 8.0 * scale as f64).round() as i64;
        let black = [0, 0, 0];
        for (i, ch) in text.chars().enumerate() {
            let Some(glyph) = font8x8::BASIC_FONTS.get(ch) else {
                continue;
            };
            let gx = left + (i * advance) as i64;
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits >> col & 1 == 0 {
                        continue;
                    }
                    for sy in 0..scale {
                        for sx in 0..scale + bold as usize {
                            self.set(
                                gx + (col * scale + sx) as i64,
                                top + (row * scale + sy) as i64,
                                black,
                            );
                        }
                    }
                }
            }
        }
    }
    fn outline(&mut self, x: f64, y: f64, w: f64, h: f64, colour: &str) {
        let c = rgb(colour);
        for (a, b) in [
            ((x, y), (x + w, y)),
            ((x + w, y), (x + w, y + h)),
            ((x + w, y + h), (x, y + h)),
            ((x, y + h), (x, y)),
        ] {
            self.segment(a, b, 1.0, c);
        }
    }
    fn fill(&mut self, x: f64, y: f64, w: f64, h: f64, colour: &str) {
        let c = rgb(colour);
        for py in y.round() as i64..(y + h).round() as i64 {
            for px in x.round() as i64..(x + w).round() as i64 {
                self.set(px, py, c);
            }
        }
    }
    fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, colour: &str) {
        self.segment((x1, y1), (x2, y2), 1.0, rgb(colour));
    }
    fn polyline(&mut self, points: &[(f64, f64)], colour: &str, width: f64) {
        let c = rgb(colour);
        for pair in points.windows(2) {
            self.segment(pair[0], pair[1], width, c);
        }
        if let [only] = points {
            self.disc(only.0, only.1, width / 2.0, c);
        }
    }
    fn dot(&mut self, x: f64, y: f64, radius: f64, colour: &str) {
        self.disc(x, y, radius, rgb(colour));
    }
}

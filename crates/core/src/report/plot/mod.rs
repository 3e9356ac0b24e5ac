//! Pictures of a sweep, drawn from plain data (no database access): learning curves,
//! the leaderboard, per-image box plots and prediction overlays.
//!
//! Every chart is written twice, as `<stem>.png` and `<stem>.svg`, by one drawing function
//! generic over plotters' `DrawingBackend` (a `Figure`), run on the bitmap and the SVG
//! backend by `write_both`. Text is set in the embedded DejaVu Sans (ab_glyph: pure Rust,
//! so no fontconfig or freetype on the machine).

mod anytime;
mod boxes;
mod curves;
mod leaderboard;
mod overlay;
mod smooth;

pub use anytime::anytime_chart;
pub use boxes::box_plots;
pub use curves::{learning_curves, CurveGroup, RunCurve};
pub use leaderboard::{leaderboard_chart, BoardMark, BoardRow};
pub use overlay::{overlays, OverlayPanel};

use anyhow::{anyhow, ensure, Context, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The family every chart asks for; the embedded font is registered under it.
const FONT: &str = "sans-serif";

/// DejaVu Sans (license: assets/DejaVuSans-LICENSE.txt), so PNG text looks the same on
/// every machine.
static DEJAVU_SANS: &[u8] = include_bytes!("../../../assets/DejaVuSans.ttf");

/// Result of a drawing function on backend `DB`.
type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A chart: its pixel size and how to draw it on any backend.
trait Figure {
    /// Width and height in pixels (the SVG uses the same user units).
    fn size(&self) -> (u32, u32);
    /// Draws the whole picture, background included, on `area`.
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

/// Registers the embedded font once; plotters' ab_glyph text has no other font source.
fn font_ready() -> Result<()> {
    static OK: OnceLock<bool> = OnceLock::new();
    let ok = *OK.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, DEJAVU_SANS).is_ok()
    });
    ensure!(ok, "the embedded DejaVu Sans font does not parse");
    Ok(())
}

/// Draws `fig` into `dir/<stem>.png` and `dir/<stem>.svg`; returns both paths.
fn write_both(fig: &impl Figure, dir: &Path, stem: &str) -> Result<Vec<PathBuf>> {
    font_ready()?;
    let size = fig.size();
    let png = dir.join(format!("{stem}.png"));
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        fig.draw(&root)
            .and_then(|_| root.present())
            .map_err(|e| anyhow!("drawing {}: {e}", png.display()))?;
    }
    let svg = dir.join(format!("{stem}.svg"));
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        fig.draw(&root)
            .and_then(|_| root.present())
            .map_err(|e| anyhow!("drawing {}: {e}", svg.display()))?;
    }
    // plotters-svg writes `data:png;base64,`, which is not a media type; viewers want
    // `image/png` before they show an embedded bitmap.
    let text = text.replace("\"data:png;base64,", "\"data:image/png;base64,");
    std::fs::write(&svg, text).with_context(|| format!("writing {}", svg.display()))?;
    Ok(vec![png, svg])
}

/// Class colours when the data set gives no palette: background dark, class 1 red, class 2
/// green, 3 blue, 4 yellow, then Tableau 10.
const CLASS_COLOURS: [[u8; 3]; 5] = [
    [20, 20, 20],
    [230, 57, 70],
    [42, 157, 143],
    [69, 123, 157],
    [233, 196, 106],
];

/// The colour of class `c` in prediction pictures (dashboard, `sweep predict --palette`):
/// the data set's palette, else [`CLASS_COLOURS`], then Tableau 10.
pub fn class_colour(c: usize, palette: Option<&[[u8; 3]]>) -> [u8; 3] {
    match palette
        .and_then(|p| p.get(c))
        .or_else(|| CLASS_COLOURS.get(c))
    {
        Some(colour) => *colour,
        None => tableau10(c - CLASS_COLOURS.len()),
    }
}

/// Colour `i` of Tableau 10 (cycling): distinct, print-friendly.
pub fn tableau10(i: usize) -> [u8; 3] {
    const C: [[u8; 3]; 10] = [
        [31, 119, 180],
        [255, 127, 14],
        [44, 160, 44],
        [214, 39, 40],
        [148, 103, 189],
        [140, 86, 75],
        [227, 119, 194],
        [127, 127, 127],
        [188, 189, 34],
        [23, 190, 207],
    ];
    C[i % C.len()]
}

fn palette(i: usize) -> RGBColor {
    let [r, g, b] = tableau10(i);
    RGBColor(r, g, b)
}

/// Width of `text` at `size` px in the embedded font (a generous guess if it is missing),
/// so that label areas grow with the longest label.
fn text_width(text: &str, size: u32) -> u32 {
    let guess = (text.chars().count() as u32 * size * 3).div_ceil(5);
    if font_ready().is_err() {
        return guess;
    }
    (FONT, size)
        .into_font()
        .box_size(text)
        .map(|(w, _)| w)
        .unwrap_or(guess)
}

/// The widest of `labels` at `size` px (0 for none).
fn max_text_width<'a>(labels: impl IntoIterator<Item = &'a str>, size: u32) -> u32 {
    labels
        .into_iter()
        .map(|l| text_width(l, size))
        .max()
        .unwrap_or(0)
}

/// A text style of the chart font, anchored at `pos`.
fn font(size: u32, pos: Pos) -> TextStyle<'static> {
    (FONT, size).into_font().color(&BLACK).pos(pos)
}

/// Major and minor grid lines: light, so that the data stays in front.
const GRID: RGBColor = RGBColor(215, 215, 215);
const GRID_FINE: RGBColor = RGBColor(242, 242, 242);
/// Minor grid lines between two major ones (plotters' default of 10 is busy).
const FINE_LINES: usize = 1;

/// Left-aligned, vertically centred text anchor.
const LEFT: Pos = Pos {
    h_pos: HPos::Left,
    v_pos: VPos::Center,
};

/// A grey "no data" note in the middle of `area` (an empty chart still gets both files).
fn no_data<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, note: &str) -> DrawResult<DB> {
    let (w, h) = area.dim_in_pixel();
    let style = (FONT, 18)
        .into_font()
        .color(&RGBColor(110, 110, 110))
        .pos(Pos::new(HPos::Center, VPos::Center));
    area.draw(&Text::new(
        note.to_string(),
        (w as i32 / 2, h as i32 / 2),
        style,
    ))
}

/// A title at the top left of `area`.
fn title<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, text: &str) -> DrawResult<DB> {
    area.draw(&Text::new(text.to_string(), (12, 18), font(18, LEFT)))
}

/// One legend entry: a filled swatch (or a line when `line`) and its text.
struct Swatch {
    color: RGBAColor,
    line: bool,
    text: String,
}

/// Legend entries side by side from `(x, y)` (centre line); returns the x after the last.
fn legend_row<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    items: &[Swatch],
    (mut x, y): (i32, i32),
) -> std::result::Result<i32, DrawingAreaErrorKind<DB::ErrorType>> {
    for s in items {
        if s.line {
            area.draw(&PathElement::new(
                vec![(x, y), (x + 22, y)],
                s.color.stroke_width(3),
            ))?;
        } else {
            area.draw(&Rectangle::new(
                [(x, y - 7), (x + 22, y + 7)],
                s.color.filled(),
            ))?;
            area.draw(&Rectangle::new(
                [(x, y - 7), (x + 22, y + 7)],
                BLACK.mix(0.5),
            ))?;
        }
        area.draw(&Text::new(s.text.clone(), (x + 28, y), font(13, LEFT)))?;
        x += 28 + text_width(&s.text, 13) as i32 + 22;
    }
    Ok(x)
}

/// The pixel width a [`legend_row`] of these texts needs.
fn legend_row_width<'a>(texts: impl IntoIterator<Item = &'a str>) -> u32 {
    texts.into_iter().map(|t| 28 + text_width(t, 13) + 22).sum()
}

/// `lo..hi` with 5 % room either side; `0..1` when there is nothing finite, and a small
/// span around a single value.
fn padded_range(lo: f64, hi: f64) -> Range<f64> {
    if !lo.is_finite() || !hi.is_finite() {
        return 0.0..1.0;
    }
    let span = hi - lo;
    let pad = if span > 0.0 {
        span * 0.05
    } else {
        (hi.abs() * 0.05).max(1e-6)
    };
    (lo - pad)..(hi + pad)
}

/// Smallest and largest finite value (infinite bounds when there is none).
fn finite_bounds(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
}

/// An axis tick: scientific for tiny or huge magnitudes (learning rates), else up to
/// 4 significant digits without trailing zeros.
/// The grid of a chart of horizontal rows: the metric (percent) along x, no row lines.
fn rows_mesh<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    metric: &str,
) -> DrawResult<DB> {
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc(format!("{metric} (%)"))
        .x_label_formatter(&tick)
        .label_style((FONT, 12))
        .bold_line_style(GRID)
        .light_line_style(GRID_FINE)
        .max_light_lines(FINE_LINES)
        .draw()
}

fn tick(v: &f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        return format!("{v:.1e}");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use std::path::Path;

    /// Width and height from a PNG's IHDR chunk, after checking the signature.
    pub fn png_size(path: &Path) -> (u32, u32) {
        let b = std::fs::read(path).unwrap();
        assert!(b.len() > 33, "{} is too short", path.display());
        assert_eq!(
            &b[..8],
            b"\x89PNG\r\n\x1a\n",
            "{} is no PNG",
            path.display()
        );
        assert_eq!(&b[12..16], b"IHDR");
        let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        (be(16), be(20))
    }

    /// The SVG's text, after checking it is a non-empty `<svg>` document.
    pub fn svg_text(path: &Path) -> String {
        let s = std::fs::read_to_string(path).unwrap();
        assert!(
            s.contains("<svg") && s.contains("</svg>"),
            "{}",
            path.display()
        );
        s
    }

    /// Where sample pictures go: `SWEEP_PLOT_SAMPLES` if set (to look at them), else a
    /// temporary folder that lives as long as the returned guard.
    pub fn out_dir() -> (Option<tempfile::TempDir>, std::path::PathBuf) {
        match std::env::var_os("SWEEP_PLOT_SAMPLES") {
            Some(d) => {
                std::fs::create_dir_all(&d).unwrap();
                (None, d.into())
            }
            None => {
                let t = tempfile::tempdir().unwrap();
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(&0.5), "0.5");
        assert_eq!(tick(&80.0), "80");
        assert_eq!(tick(&0.0001), "1.0e-4");
        assert_eq!(tick(&-0.0), "0");
        assert_eq!(tick(&0.12345), "0.1235");
    }

    #[test]
    fn ranges_survive_nothing_and_one_value() {
        assert_eq!(padded_range(f64::INFINITY, f64::NEG_INFINITY), 0.0..1.0);
        let r = padded_range(2.0, 2.0);
        assert!(r.start < 2.0 && r.end > 2.0);
        assert_eq!(finite_bounds([f64::NAN, 3.0, 1.0]), (1.0, 3.0));
    }

    #[test]
    fn the_font_measures_text() {
        font_ready().unwrap();
        let short = text_width("ab", 13);
        let long = text_width("a much longer label", 13);
        assert!(short > 0 && long > 4 * short, "{short} {long}");
    }
}

//! The leaderboard as horizontal bars: mean per configuration, 95 % CI as error bars, the
//! per-seed (or per-fold) values as dots, a colour per test outcome and an optional floor.

use super::{
    font, legend_row, legend_row_width, max_text_width, no_data, palette, rows_mesh, write_both,
    DrawResult, Figure, Swatch, FONT, LEFT,
};
use anyhow::Result;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};

/// One bar of the leaderboard.
#[derive(Clone, Debug, PartialEq)]
pub struct BoardRow {
    /// Configuration name, written left of the bar.
    pub label: String,
    /// Bar length; a non-finite mean draws no bar ("no value").
    pub mean: f64,
    /// 95 % confidence interval of the mean, drawn as an error bar.
    pub ci95: Option<(f64, f64)>,
    /// The values behind the mean (per seed or fold), drawn as small dots.
    pub values: Vec<f64>,
    /// Outcome of the comparison with the best row, as the bar's colour.
    pub mark: BoardMark,
}

/// How a row compares with the best one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoardMark {
    /// The best row.
    Best,
    /// Not significantly different from the best.
    Indistinguishable,
    /// Significantly worse than the best.
    Worse,
    /// Not compared (e.g. too few seeds for a test).
    Untested,
}

impl BoardMark {
    const ALL: [BoardMark; 4] = [
        BoardMark::Best,
        BoardMark::Indistinguishable,
        BoardMark::Worse,
        BoardMark::Untested,
    ];

    /// Strong blue for the best, a lighter blue for its ties, grey for worse (colour-blind
    /// safe: they differ in lightness too), a pale beige for untested.
    fn color(self) -> RGBColor {
        match self {
            BoardMark::Best => RGBColor(0, 90, 160),
            BoardMark::Indistinguishable => RGBColor(120, 180, 225),
            BoardMark::Worse => RGBColor(170, 170, 170),
            BoardMark::Untested => RGBColor(235, 220, 190),
        }
    }

    fn legend(self) -> &'static str {
        match self {
            BoardMark::Best => "best",
            BoardMark::Indistinguishable => "not significantly different from best",
            BoardMark::Worse => "significantly worse than best",
            BoardMark::Untested => "not tested",
        }
    }
}

/// Draws `rows` for `metric` (e.g. `mDice`) to `dir/<stem>.png` and `.svg`, in the given
/// order from the top (pass them ranked, best first). `floor` is a reference value and its
/// label, e.g. `(49.78, "all background")`, drawn as a dashed vertical line.
pub fn leaderboard_chart(
    rows: &[BoardRow],
    metric: &str,
    floor: Option<(f64, String)>,
    dir: &Path,
    stem: &str,
) -> Result<Vec<PathBuf>> {
    let floor = floor.filter(|(v, _)| v.is_finite());
    let fig = Board {
        rows,
        metric,
        floor,
        label_px: max_text_width(rows.iter().map(|r| r.label.as_str()), 13).max(60) + 24,
    };
    write_both(&fig, dir, stem)
}

struct Board<'a> {
    rows: &'a [BoardRow],
    metric: &'a str,
    floor: Option<(f64, String)>,
    /// Pixels left of the axis for the names.
    label_px: u32,
}

/// Half a bar's height, in y units (one unit per bar).
const BAR_HALF: f64 = 0.36;
const ROW_H: u32 = 34;
const PLOT_W: u32 = 720;
/// Right of the axis, for the value written after the longest bar.
const VALUE_W: u32 = 200;
const LEGEND_H: u32 = 40;

type BarChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

impl Board<'_> {
    /// The marks present, in legend order.
    fn marks(&self) -> Vec<BoardMark> {
        BoardMark::ALL
            .into_iter()
            .filter(|m| self.rows.iter().any(|r| r.mark == *m))
            .collect()
    }

    /// The axis' upper end: everything drawn (bar, CI, dots, floor) plus a little room.
    fn x_max(&self) -> f64 {
        let ends = self.rows.iter().flat_map(|r| {
            let ci = r.ci95.map(|(lo, hi)| [lo, hi]).unwrap_or([r.mean; 2]);
            r.values.iter().copied().chain(ci).chain([r.mean])
        });
        let floor = self.floor.as_ref().map(|f| f.0);
        let max = ends
            .chain(floor)
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        // Metrics are percentages: a full axis when nothing positive is drawn.
        if max > 0.0 {
            max * 1.04
        } else {
            100.0
        }
    }

    /// y units above the top bar: room for the floor's label.
    fn top_slot(&self) -> f64 {
        if self.floor.is_some() {
            0.8
        } else {
            0.0
        }
    }
}

impl Figure for Board<'_> {
    fn size(&self) -> (u32, u32) {
        let legend = legend_row_width(self.marks().iter().map(|m| m.legend())) + 40;
        let width = (self.label_px + PLOT_W + VALUE_W).max(legend);
        let slot = if self.floor.is_some() { 28 } else { 0 };
        let rows = self.rows.len().max(1) as u32;
        (width, 60 + 40 + slot + ROW_H * rows + LEGEND_H)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        area.fill(&WHITE)?;
        let (_, h) = area.dim_in_pixel();
        let (plot, legend) = area.split_vertically(h - LEGEND_H);
        let caption = format!(
            "{} (bars: mean, error bars: 95 % CI, dots: seeds or folds)",
            self.metric
        );
        if self.rows.is_empty() {
            super::title(&plot, &caption)?;
            return no_data(&plot, "no data");
        }
        let n = self.rows.len();
        let mut chart = ChartBuilder::on(&plot)
            .caption(caption, (FONT, 18))
            .margin(12)
            .margin_right(VALUE_W)
            .x_label_area_size(36)
            .y_label_area_size(self.label_px)
            .build_cartesian_2d(0f64..self.x_max(), -0.5..(n as f64 - 0.5 + self.top_slot()))?;
        rows_mesh(&mut chart, self.metric)?;
        for (k, row) in self.rows.iter().enumerate() {
            draw_row(&plot, &mut chart, row, (n - 1 - k) as f64, self.x_max())?;
        }
        if let Some((v, label)) = &self.floor {
            draw_floor(
                &mut chart,
                *v,
                label,
                n as f64 - 0.5 + self.top_slot() / 2.0,
            )?;
        }
        let items: Vec<Swatch> = self
            .marks()
            .into_iter()
            .map(|m| Swatch {
                color: m.color().to_rgba(),
                line: false,
                text: m.legend().into(),
            })
            .collect();
        legend_row(&legend, &items, (self.label_px as i32, LEGEND_H as i32 / 2)).map(|_| ())
    }
}

/// One row at height `y`: its name left of the axis, the bar, error bar, dots and value.
fn draw_row<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &mut BarChart<'_, DB>,
    row: &BoardRow,
    y: f64,
    x_max: f64,
) -> DrawResult<DB> {
    // Names in pixels left of the axis: plotters' category axis cannot hold a single bar.
    let (px, py) = chart.backend_coord(&(0.0, y));
    let right = Pos::new(HPos::Right, VPos::Center);
    root.draw(&Text::new(row.label.clone(), (px - 8, py), font(13, right)))?;
    if !row.mean.is_finite() {
        let note = Text::new("no value", (x_max * 0.01, y), font(12, LEFT));
        return chart.draw_series(std::iter::once(note)).map(|_| ());
    }
    let bar = [(0.0, y - BAR_HALF), (row.mean, y + BAR_HALF)];
    chart.draw_series([
        Rectangle::new(bar, row.mark.color().filled()),
        Rectangle::new(bar, BLACK.mix(0.45)),
    ])?;
    if let Some((lo, hi)) = row.ci95.filter(|(l, h)| l.is_finite() && h.is_finite()) {
        draw_error_bar(chart, lo, hi, y)?;
    }
    draw_dots(chart, &row.values, y)?;
    let end = [row.mean, row.ci95.map_or(row.mean, |c| c.1)]
        .into_iter()
        .chain(row.values.iter().copied())
        .filter(|v| v.is_finite())
        .fold(row.mean, f64::max);
    let text = Text::new(value_text(row), (end + x_max * 0.012, y), font(12, LEFT));
    chart.draw_series(std::iter::once(text)).map(|_| ())
}

/// `81.00 [78.12, 83.88] (n=3)`: the mean, its CI when known, the number of values.
fn value_text(row: &BoardRow) -> String {
    let mut s = format!("{:.2}", row.mean);
    if let Some((lo, hi)) = row.ci95 {
        s += &format!(" [{lo:.2}, {hi:.2}]");
    }
    let n = row.values.iter().filter(|v| v.is_finite()).count();
    if n > 1 {
        s += &format!(" (n={n})");
    }
    s
}

/// The values as small dots spread over the bar's height, so that equal ones stay visible.
fn draw_dots<DB: DrawingBackend>(
    chart: &mut BarChart<'_, DB>,
    values: &[f64],
    y: f64,
) -> DrawResult<DB> {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let m = finite.len();
    let dots = finite.iter().enumerate().map(|(j, &v)| {
        let dy = if m > 1 {
            (j as f64 / (m - 1) as f64 - 0.5) * BAR_HALF
        } else {
            0.0
        };
        (v, y + dy)
    });
    let dots: Vec<(f64, f64)> = dots.collect();
    // A white ring under each dot keeps it visible on the dark "best" bar.
    let halo = dots.iter().map(|&p| Circle::new(p, 4, WHITE.filled()));
    chart.draw_series(halo)?;
    let dots = dots
        .iter()
        .map(|&p| Circle::new(p, 3, BLACK.mix(0.8).filled()));
    chart.draw_series(dots).map(|_| ())
}

/// A horizontal line from `lo` to `hi` at `y` with a short tick at each end.
fn draw_error_bar<DB: DrawingBackend>(
    chart: &mut BarChart<'_, DB>,
    lo: f64,
    hi: f64,
    y: f64,
) -> DrawResult<DB> {
    let h = BAR_HALF / 2.0;
    chart.draw_series([
        PathElement::new(vec![(lo, y), (hi, y)], BLACK.stroke_width(2)),
        PathElement::new(vec![(lo, y - h), (lo, y + h)], BLACK.stroke_width(2)),
        PathElement::new(vec![(hi, y - h), (hi, y + h)], BLACK.stroke_width(2)),
    ])?;
    Ok(())
}

/// The floor as a dashed vertical line over all bars, its label and value at `label_y`.
fn draw_floor<DB: DrawingBackend>(
    chart: &mut BarChart<'_, DB>,
    v: f64,
    label: &str,
    label_y: f64,
) -> DrawResult<DB> {
    let c = palette(3);
    let (top, bottom) = (label_y + 0.35, -0.5);
    chart.draw_series(std::iter::once(DashedPathElement::new(
        vec![(v, bottom), (v, top)],
        6,
        4,
        c.stroke_width(2),
    )))?;
    let text = format!("{label} {v:.2}");
    let style = font(12, LEFT).color(&c);
    // A few pixels right of the line, in the slot above the bars.
    let label = EmptyElement::at((v, label_y)) + Text::new(text, (6, 0), style);
    chart.draw_series(std::iter::once(label))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{out_dir, png_size, svg_text};
    use super::*;

    fn row(label: &str, values: &[f64], mark: BoardMark) -> BoardRow {
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        BoardRow {
            label: label.into(),
            mean,
            ci95: (values.len() > 1).then_some((mean - 2.0, mean + 2.0)),
            values: values.to_vec(),
            mark,
        }
    }

    #[test]
    fn leaderboard_renders_as_png_and_svg() {
        let (_guard, dir) = out_dir();
        let rows = vec![
            row(
                "deeplabv3_unet_s5-d16, 256x256",
                &[81.0, 78.0, 84.0],
                BoardMark::Best,
            ),
            row(
                "fcn_unet_s5-d16, 256x256",
                &[80.0, 79.0, 82.5],
                BoardMark::Indistinguishable,
            ),
            row("pspnet_unet_s5-d16", &[70.0, 72.0, 71.0], BoardMark::Worse),
            row(
                "fcn_unet_s5-d16, 320x320 (one seed)",
                &[75.5],
                BoardMark::Untested,
            ),
        ];
        let floor = Some((49.78, "all background".to_string()));
        let files = leaderboard_chart(&rows, "mDice", floor, &dir, "leaderboard").unwrap();
        assert_eq!(files.len(), 2);
        let (w, h) = png_size(&files[0]);
        assert!(w >= PLOT_W + VALUE_W && h > ROW_H * 4, "{w}x{h}");
        let svg = svg_text(&files[1]);
        for r in &rows {
            assert!(svg.contains(&r.label), "{} missing", r.label);
        }
        for t in [
            "81.00 [79.00, 83.00] (n=3)",
            "all background 49.78",
            "not tested",
        ] {
            assert!(svg.contains(t), "{t} missing");
        }
        assert!(svg.contains("stroke-dasharray") || svg.matches("<polyline").count() > 4);
    }

    #[test]
    fn nan_and_empty_leaderboards_do_not_panic() {
        let (_guard, dir) = out_dir();
        let nan = vec![BoardRow {
            label: "diverged".into(),
            mean: f64::NAN,
            ci95: Some((f64::NAN, f64::NAN)),
            values: vec![f64::NAN],
            mark: BoardMark::Untested,
        }];
        let files = leaderboard_chart(&nan, "mDice", None, &dir, "board_nan").unwrap();
        assert!(svg_text(&files[1]).contains("no value"));
        png_size(&files[0]);
        let nan_floor = Some((f64::NAN, "floor".to_string()));
        let files = leaderboard_chart(&[], "mDice", nan_floor, &dir, "board_empty").unwrap();
        assert!(svg_text(&files[1]).contains("no data"));
        png_size(&files[0]);
    }
}

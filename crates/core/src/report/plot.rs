//! SVG pictures of a sweep: training curves and the leaderboard.

use super::{rank, MetricKey, ReportOptions};
use crate::store::JobRow;
use anyhow::{anyhow, Context, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

fn color(i: usize) -> RGBColor {
    // Tableau 10: distinct, print-friendly.
    const C: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    let (r, g, b) = C[i % C.len()];
    RGBColor(r, g, b)
}

fn draw_err<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> anyhow::Error + '_ {
    move |e| anyhow!("drawing {}: {e}", path.display())
}

/// Training loss against iteration, one line per job, with a legend. Non-finite losses
/// (a diverged job's last points) are left out.
pub fn write_curves_svg(curves: &[(String, Vec<(usize, f64)>)], path: &Path) -> Result<()> {
    let finite = |c: &(String, Vec<(usize, f64)>)| -> Vec<(f64, f64)> {
        c.1.iter()
            .filter(|(_, l)| l.is_finite())
            .map(|&(i, l)| (i as f64, l))
            .collect()
    };
    let series: Vec<(String, Vec<(f64, f64)>)> =
        curves.iter().map(|c| (c.0.clone(), finite(c))).collect();
    let points = series.iter().flat_map(|s| s.1.iter());
    let (mut x_max, mut y_min, mut y_max) = (1.0f64, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in points {
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    if !y_min.is_finite() {
        (y_min, y_max) = (0.0, 1.0);
    }
    let pad = ((y_max - y_min) * 0.05).max(1e-6);
    let y_range = (y_min - pad)..(y_max + pad);

    let legend_chars = curves
        .iter()
        .map(|c| c.0.chars().count())
        .max()
        .unwrap_or(0);
    let width = 900u32.max(legend_chars as u32 * 8 + 200);
    let root = SVGBackend::new(path, (width, 560)).into_drawing_area();
    let err = draw_err(path);
    root.fill(&WHITE).map_err(&err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Training loss", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max, y_range)
        .map_err(&err)?;
    chart
        .configure_mesh()
        .x_desc("iteration")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc("loss")
        .draw()
        .map_err(&err)?;
    for (i, (label, pts)) in series.iter().enumerate() {
        let c = color(i);
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
            .map_err(&err)?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    if !series.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(&err)?;
    }
    root.present()
        .map_err(&err)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The leaderboard for `metric` (e.g. `mDice`, `Dice.1`) as horizontal bars, best on top,
/// with ± one sample std as error bars where seeds were repeated. Succeeded jobs only.
pub fn write_leaderboard_svg(rows: &[JobRow], metric: &str, path: &Path) -> Result<()> {
    let bars = leaderboard_bars(rows, metric)?;
    let n = bars.len().max(1);
    let x_max = bars.iter().map(|b| b.mean + b.std).fold(1.0f64, f64::max) * 1.05;
    let label_chars = bars
        .iter()
        .map(|b| b.label.chars().count())
        .max()
        .unwrap_or(10);
    let label_px = (label_chars as u32) * 7 + 20;
    let height = 120 + 34 * n as u32;
    let root = SVGBackend::new(path, (label_px + 800, height)).into_drawing_area();
    let err = draw_err(path);
    root.fill(&WHITE).map_err(&err)?;
    let mut chart = leaderboard_chart(&root, metric, label_px, x_max, n).map_err(&err)?;
    // Bar k (rank order) is centred on y = n-1-k: best on top.
    let y_of = |k: usize| (n - 1 - k) as f64;
    chart
        .draw_series(bars.iter().enumerate().map(|(k, b)| {
            Rectangle::new(
                [(0.0, y_of(k) - BAR_HALF), (b.mean, y_of(k) + BAR_HALF)],
                color(0).mix(0.8).filled(),
            )
        }))
        .map_err(&err)?;
    for (k, bar) in bars.iter().enumerate() {
        annotate_bar(&root, &mut chart, bar, y_of(k), x_max).map_err(&err)?;
    }
    root.present()
        .map_err(&err)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// One leaderboard bar: a configuration's mean over its seeds and their spread.
struct Bar {
    label: String,
    mean: f64,
    std: f64,
    /// Seeds behind the mean; error bars and `± std` only when more than one.
    count: usize,
}

/// Half the height of a bar, in y units (one unit per bar).
const BAR_HALF: f64 = 0.36;

type BarChart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
type DrawResult = std::result::Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// The ranked configurations' bars for `metric`, best first; those without a finite mean
/// (metric absent, or a diverged run's NaN) have no bar.
fn leaderboard_bars(rows: &[JobRow], metric: &str) -> Result<Vec<Bar>> {
    let opts = ReportOptions {
        sort: metric.to_string(),
        ..ReportOptions::default()
    };
    let key = MetricKey::parse(metric)?;
    let groups = rank(rows, &opts)?;
    Ok(groups
        .iter()
        .filter_map(|g| {
            let s = g.stat(&key, None)?;
            s.mean.is_finite().then(|| Bar {
                label: g.label.clone(),
                mean: s.mean,
                std: s.std.unwrap_or(0.0),
                count: s.values.len(),
            })
        })
        .collect())
}

/// The axes of `n` bars up to `x_max`, with `label_px` pixels left of the axis for the names.
fn leaderboard_chart<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    metric: &str,
    label_px: u32,
    x_max: f64,
    n: usize,
) -> std::result::Result<BarChart<'a, 'b>, DrawingAreaErrorKind<std::io::Error>> {
    let mut chart = ChartBuilder::on(root)
        .caption(format!("{metric} (%)"), ("sans-serif", 22))
        .margin(12)
        // Room for the value written after the longest bar.
        .margin_right(170)
        .x_label_area_size(36)
        .y_label_area_size(label_px)
        .build_cartesian_2d(0f64..x_max, -0.5f64..(n as f64 - 0.5))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(WHITE)
        .y_label_formatter(&|_| String::new())
        .x_desc(format!("{metric} (%)"))
        .draw()?;
    Ok(chart)
}

/// The bar's name left of the axis, its error bar (repeated seeds) and its value after it.
fn annotate_bar(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    chart: &mut BarChart<'_, '_>,
    bar: &Bar,
    y: f64,
    x_max: f64,
) -> DrawResult {
    let Bar {
        label,
        mean,
        std,
        count,
    } = bar;
    let label_style = ("sans-serif", 13)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Right, VPos::Center));
    // Model names left of the axis, in pixels (a category axis of plotters cannot
    // hold a single bar).
    let (px, py) = chart.backend_coord(&(0.0, y));
    root.draw(&Text::new(label.clone(), (px - 8, py), label_style))?;
    if *count > 1 {
        draw_error_bar(chart, mean - std, mean + std, y)?;
    }
    let text = if *count > 1 {
        format!("{mean:.2} ± {std:.2} (n={count})")
    } else {
        format!("{mean:.2}")
    };
    chart.draw_series(std::iter::once(Text::new(
        text,
        (mean + std + x_max * 0.01, y),
        ("sans-serif", 12)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center)),
    )))?;
    Ok(())
}

/// A horizontal line from `lo` to `hi` at `y` with a short tick at each end.
fn draw_error_bar(chart: &mut BarChart<'_, '_>, lo: f64, hi: f64, y: f64) -> DrawResult {
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(lo, y), (hi, y)],
        BLACK.stroke_width(2),
    )))?;
    for x in [lo, hi] {
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(x, y - BAR_HALF / 2.0), (x, y + BAR_HALF / 2.0)],
            BLACK.stroke_width(2),
        )))?;
    }
    Ok(())
}

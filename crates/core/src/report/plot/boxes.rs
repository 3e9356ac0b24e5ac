//! Box plots of a per-image metric (Dice per image), one box per configuration.

use super::{
    finite_bounds, font, max_text_width, no_data, padded_range, palette, rows_mesh, title,
    write_both, DrawResult, Figure, FONT,
};
use anyhow::Result;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};

/// Draws one horizontal box per `(configuration, per-image values)` to `dir/<stem>.png`
/// and `.svg`, in the given order from the top: median, quartiles (numpy's linear
/// interpolation), whiskers at the last values within 1.5 IQR, the values beyond as
/// points. NaN values (an image where the metric is undefined) are left out; `n` in each
/// label counts the rest.
pub fn box_plots(
    groups: &[(String, Vec<f64>)],
    metric: &str,
    dir: &Path,
    stem: &str,
) -> Result<Vec<PathBuf>> {
    let rows: Vec<(String, Option<BoxStats>)> = groups
        .iter()
        .map(|(label, values)| {
            let stats = BoxStats::of(values);
            let n = stats.as_ref().map_or(0, |s| s.n);
            (format!("{label} (n = {n})"), stats)
        })
        .collect();
    let label_px = max_text_width(rows.iter().map(|r| r.0.as_str()), 13).max(60) + 24;
    write_both(
        &Boxes {
            rows,
            metric,
            label_px,
        },
        dir,
        stem,
    )
}

/// The five numbers of a box and what lies beyond its whiskers.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BoxStats {
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    /// Smallest value at or above `q1 - 1.5 IQR`.
    pub lo: f64,
    /// Largest value at or below `q3 + 1.5 IQR`.
    pub hi: f64,
    pub outliers: Vec<f64>,
    /// Finite values behind the box.
    pub n: usize,
}

/// Quantile `p` of ascending `sorted` values, linearly interpolated between closest ranks
/// (numpy's default, `method="linear"`).
pub(crate) fn quantile(sorted: &[f64], p: f64) -> f64 {
    let pos = p * (sorted.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos.fract());
    match sorted.get(i + 1) {
        Some(next) => sorted[i] + (next - sorted[i]) * frac,
        None => sorted[i],
    }
}

impl BoxStats {
    /// The box of the finite values (NaN: metric undefined on that image); None if none.
    pub(crate) fn of(values: &[f64]) -> Option<BoxStats> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let (q1, median, q3) = (quantile(&v, 0.25), quantile(&v, 0.5), quantile(&v, 0.75));
        let reach = 1.5 * (q3 - q1);
        let inside = |x: &&f64| **x >= q1 - reach && **x <= q3 + reach;
        let (lo, hi) = finite_bounds(v.iter().filter(inside).copied());
        let outliers = v.iter().filter(|x| !inside(x)).copied().collect();
        Some(BoxStats {
            q1,
            median,
            q3,
            lo,
            hi,
            outliers,
            n: v.len(),
        })
    }
}

struct Boxes<'a> {
    /// Label with `n`, and the box (None: no finite value).
    rows: Vec<(String, Option<BoxStats>)>,
    metric: &'a str,
    label_px: u32,
}

const ROW_H: u32 = 40;
const PLOT_W: u32 = 760;
/// Half a box's height, in y units (one unit per box).
const HALF: f64 = 0.3;

type BoxChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

impl Figure for Boxes<'_> {
    fn size(&self) -> (u32, u32) {
        let rows = self.rows.len().max(1) as u32;
        (self.label_px + PLOT_W + 30, 60 + 44 + ROW_H * rows)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        area.fill(&WHITE)?;
        let caption = format!(
            "{} per image (n = images with a defined value; whiskers: 1.5 IQR)",
            self.metric
        );
        let all = self.rows.iter().flat_map(|(_, s)| s.iter());
        let (lo, hi) = finite_bounds(all.flat_map(|s| {
            let ends = [s.lo, s.hi];
            ends.into_iter().chain(s.outliers.iter().copied())
        }));
        if !lo.is_finite() {
            title(area, &caption)?;
            return no_data(area, "no data");
        }
        let n = self.rows.len();
        let mut chart = ChartBuilder::on(area)
            .caption(caption, (FONT, 18))
            .margin(12)
            .margin_right(30)
            .x_label_area_size(36)
            .y_label_area_size(self.label_px)
            .build_cartesian_2d(padded_range(lo, hi), -0.5..(n as f64 - 0.5))?;
        rows_mesh(&mut chart, self.metric)?;
        for (k, (label, stats)) in self.rows.iter().enumerate() {
            let y = (n - 1 - k) as f64;
            let (px, py) = chart.backend_coord(&(chart.x_range().start, y));
            let right = Pos::new(HPos::Right, VPos::Center);
            area.draw(&Text::new(label.clone(), (px - 8, py), font(13, right)))?;
            if let Some(s) = stats {
                draw_box(&mut chart, s, y, palette(k))?;
            }
        }
        Ok(())
    }
}

/// One box at height `y`: quartile box, median, whiskers with caps, outliers as rings.
fn draw_box<DB: DrawingBackend>(
    chart: &mut BoxChart<'_, DB>,
    s: &BoxStats,
    y: f64,
    c: RGBColor,
) -> DrawResult<DB> {
    let (top, bottom) = (y + HALF, y - HALF);
    let line = BLACK.stroke_width(1);
    let cap = HALF / 2.0;
    chart.draw_series([
        Rectangle::new([(s.q1, bottom), (s.q3, top)], c.mix(0.35).filled()),
        Rectangle::new([(s.q1, bottom), (s.q3, top)], c.stroke_width(2)),
    ])?;
    chart.draw_series([
        PathElement::new(vec![(s.lo, y), (s.q1, y)], line),
        PathElement::new(vec![(s.q3, y), (s.hi, y)], line),
        PathElement::new(vec![(s.lo, y - cap), (s.lo, y + cap)], line),
        PathElement::new(vec![(s.hi, y - cap), (s.hi, y + cap)], line),
        PathElement::new(
            vec![(s.median, bottom), (s.median, top)],
            BLACK.stroke_width(3),
        ),
    ])?;
    let rings = s
        .outliers
        .iter()
        .map(|&v| Circle::new((v, y), 3, c.stroke_width(1)));
    chart.draw_series(rings)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{out_dir, png_size, svg_text};
    use super::*;

    #[test]
    fn quartiles_match_numpy() {
        // numpy.percentile([1, 2, 3, 4], [25, 50, 75]) = [1.75, 2.5, 3.25].
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.25), 1.75);
        assert_eq!(quantile(&v, 0.5), 2.5);
        assert_eq!(quantile(&v, 0.75), 3.25);
        assert_eq!(quantile(&[7.0], 0.25), 7.0);
        // 1..=5 and 100: q1 2.25, q3 4.75, IQR 2.5 -> whiskers within [-1.5, 8.5].
        let s = BoxStats::of(&[3.0, 1.0, f64::NAN, 2.0, 5.0, 4.0, 100.0]).unwrap();
        assert_eq!((s.q1, s.median, s.q3), (2.25, 3.5, 4.75));
        assert_eq!((s.lo, s.hi, s.n), (1.0, 5.0, 6));
        assert_eq!(s.outliers, vec![100.0]);
        assert!(BoxStats::of(&[f64::NAN]).is_none());
    }

    #[test]
    fn box_plots_render_as_png_and_svg() {
        let (_guard, dir) = out_dir();
        let spread = |base: f64, k: usize| -> Vec<f64> {
            (0..k)
                .map(|i| base + ((i * 37) % 23) as f64 - 11.0)
                .chain([base - 45.0, f64::NAN])
                .collect()
        };
        let groups = vec![
            (
                "deeplabv3_unet_s5-d16, 256x256".to_string(),
                spread(82.0, 40),
            ),
            ("fcn_unet_s5-d16".to_string(), spread(76.0, 40)),
            ("all NaN".to_string(), vec![f64::NAN; 3]),
        ];
        let files = box_plots(&groups, "Dice.1", &dir, "boxes").unwrap();
        let (w, h) = png_size(&files[0]);
        assert!(w > PLOT_W && h >= 60 + 3 * ROW_H, "{w}x{h}");
        let svg = svg_text(&files[1]);
        for t in [
            "deeplabv3_unet_s5-d16, 256x256 (n = 41)",
            "all NaN (n = 0)",
            "n = images with a defined value",
        ] {
            assert!(svg.contains(t), "{t} missing");
        }
    }

    #[test]
    fn empty_box_plots_still_write_both_files() {
        let (_guard, dir) = out_dir();
        for (stem, groups) in [
            ("boxes_empty", vec![]),
            ("boxes_nan", vec![("x".to_string(), vec![f64::NAN])]),
        ] {
            let files = box_plots(&groups, "Dice.1", &dir, stem).unwrap();
            png_size(&files[0]);
            assert!(svg_text(&files[1]).contains("no data"));
        }
    }
}

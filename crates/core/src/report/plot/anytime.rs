//! Best result so far against job-hours, one step line per sweep (see
//! [`crate::report::anytime`]): a grid and a search of the same space at equal compute.

use super::{
    finite_bounds, legend_row, no_data, padded_range, palette, tick, title, write_both, DrawResult,
    Figure, Swatch, FINE_LINES, FONT, GRID, GRID_FINE,
};
use crate::report::anytime::Anytime;
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Draws `series` to `dir/<stem>.png` and `.svg`; `metric` names the y axis.
pub fn anytime_chart(
    series: &[Anytime],
    metric: &str,
    dir: &Path,
    stem: &str,
) -> Result<Vec<PathBuf>> {
    write_both(
        &Chart {
            series,
            metric: metric.to_string(),
        },
        dir,
        stem,
    )
}

struct Chart<'a> {
    series: &'a [Anytime],
    metric: String,
}

impl Chart<'_> {
    /// Each series' corners: up at every improvement, flat to the sweep's last job-hour.
    fn path(s: &Anytime) -> Vec<(f64, f64)> {
        let mut pts = Vec::new();
        for (i, step) in s.steps.iter().enumerate() {
            if i > 0 {
                pts.push((step.hours, s.steps[i - 1].best));
            }
            pts.push((step.hours, step.best));
        }
        if let Some(last) = s.steps.last() {
            pts.push((s.total_hours.max(last.hours), last.best));
        }
        pts
    }
}

impl Figure for Chart<'_> {
    fn size(&self) -> (u32, u32) {
        (760, 420)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        area.fill(&WHITE)?;
        title(
            area,
            &format!("best {} so far against job-hours", self.metric),
        )?;
        let (_, plot) = area.split_vertically(30);
        let (plot, legend) = plot.split_vertically(350);
        let paths: Vec<Vec<(f64, f64)>> = self.series.iter().map(Self::path).collect();
        if paths.iter().all(Vec::is_empty) {
            return no_data(&plot, "no configuration finished yet");
        }
        let (lo, hi) = finite_bounds(paths.iter().flatten().map(|p| p.1));
        let x_max = self
            .series
            .iter()
            .map(|s| s.total_hours)
            .fold(0.0, f64::max)
            .max(1e-6);
        let mut chart = ChartBuilder::on(&plot)
            .margin(10)
            .margin_right(20)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..x_max * 1.02, padded_range(lo, hi))?;
        chart
            .configure_mesh()
            .x_desc("job-hours (every attempt of every job, stages excepted)")
            .y_desc(format!("best {} (%)", self.metric))
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .label_style((FONT, 12))
            .bold_line_style(GRID)
            .light_line_style(GRID_FINE)
            .max_light_lines(FINE_LINES)
            .draw()?;
        for (i, pts) in paths.iter().enumerate() {
            let colour = palette(i);
            chart.draw_series(LineSeries::new(pts.clone(), colour.stroke_width(2)))?;
            let marks = self.series[i].steps.iter().map(|s| (s.hours, s.best));
            chart.draw_series(marks.map(|p| Circle::new(p, 3, colour.filled())))?;
        }
        let items: Vec<Swatch> = self
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| Swatch {
                color: palette(i).to_rgba(),
                line: true,
                text: format!("{} ({:.2} h)", s.sweep, s.total_hours),
            })
            .collect();
        legend_row(&legend, &items, (70, 18))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::anytime::Step;
    use crate::report::plot::test_util::{out_dir, png_size, svg_text};

    #[test]
    fn anytime_renders_as_png_and_svg() {
        let step = |hours, best: f64| Step {
            hours,
            best,
            label: format!("row {best}"),
        };
        let series = [
            Anytime {
                sweep: "grid".into(),
                total_hours: 0.5,
                steps: vec![step(0.1, 50.0), step(0.3, 60.0)],
            },
            Anytime {
                sweep: "search".into(),
                total_hours: 0.4,
                steps: vec![step(0.05, 55.0), step(0.2, 63.0)],
            },
        ];
        let (_keep, dir) = out_dir();
        let files = anytime_chart(&series, "mDice", &dir, "anytime").unwrap();
        assert_eq!(png_size(&files[0]), (760, 420));
        let svg = svg_text(&files[1]);
        assert!(svg.contains("search (0.40 h)") && svg.contains("best mDice so far"));
    }
}

//! Learning curves: training loss, learning rate and validation mDice against iteration,
//! one panel each, one colour per configuration; repeated seeds as mean line and min–max band.

use super::{
    finite_bounds, font, legend_row, max_text_width, no_data, padded_range, palette, tick, title,
    write_both, DrawResult, Figure, Swatch, FINE_LINES, FONT, GRID, GRID_FINE, LEFT,
};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One configuration: its runs (usually one per seed), drawn in one colour.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CurveGroup {
    /// Legend text, e.g. `fcn_unet_s5-d16, 256x256`.
    pub label: String,
    pub runs: Vec<RunCurve>,
}

/// One run's logged series as `(iteration, value)`; non-finite values are skipped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunCurve {
    pub seed: u64,
    /// Training loss.
    pub loss: Vec<(usize, f64)>,
    /// Learning rate.
    pub lr: Vec<(usize, f64)>,
    /// Validation mDice (%) per evaluated iteration; may be empty.
    pub val: Vec<(usize, f64)>,
}

/// Draws the learning curves of `groups` to `dir/<stem>.png` and `.svg`: panels stacked
/// vertically (training loss, learning rate, and validation mDice when some run has it).
/// A group with several runs is drawn as their mean (line) and min–max (lighter band).
pub fn learning_curves(groups: &[CurveGroup], dir: &Path, stem: &str) -> Result<Vec<PathBuf>> {
    write_both(&Curves::new(groups), dir, stem)
}

/// Which series of a run a panel shows.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Series {
    Loss,
    Lr,
    Val,
}

impl Series {
    fn of(self, run: &RunCurve) -> &[(usize, f64)] {
        match self {
            Series::Loss => &run.loss,
            Series::Lr => &run.lr,
            Series::Val => &run.val,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Series::Loss => "training loss",
            Series::Lr => "learning rate",
            Series::Val => "validation mDice (%)",
        }
    }
}

/// A group's series at one iteration, over the runs with a finite value there.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Point {
    x: f64,
    mean: f64,
    lo: f64,
    hi: f64,
    runs: usize,
}

/// Mean, min and max over the runs at each iteration any of them logged.
fn summarise(runs: &[RunCurve], series: Series) -> Vec<Point> {
    let mut at: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for r in runs {
        for &(i, v) in series.of(r).iter().filter(|(_, v)| v.is_finite()) {
            at.entry(i).or_default().push(v);
        }
    }
    at.into_iter()
        .map(|(i, vs)| {
            let (lo, hi) = finite_bounds(vs.iter().copied());
            Point {
                x: i as f64,
                mean: vs.iter().sum::<f64>() / vs.len() as f64,
                lo,
                hi,
                runs: vs.len(),
            }
        })
        .collect()
}

/// One group, ready to draw: its legend text and a summary per panel.
struct Line {
    label: String,
    seeds: usize,
    panels: Vec<Vec<Point>>,
}

/// The figure: the panels' series and every group's summaries.
struct Curves {
    panels: Vec<Series>,
    lines: Vec<Line>,
    legend_w: u32,
}

const PANEL_H: u32 = 260;
const PLOT_W: u32 = 900;
const LEGEND_ROW: u32 = 22;

impl Curves {
    fn new(groups: &[CurveGroup]) -> Curves {
        let mut panels = vec![Series::Loss, Series::Lr];
        let has_val = groups
            .iter()
            .flat_map(|g| &g.runs)
            .any(|r| r.val.iter().any(|(_, v)| v.is_finite()));
        if has_val {
            panels.push(Series::Val);
        }
        let lines: Vec<Line> = groups
            .iter()
            .map(|g| Line {
                label: legend_text(g),
                seeds: g.runs.len(),
                panels: panels.iter().map(|&s| summarise(&g.runs, s)).collect(),
            })
            .collect();
        // Room for the longest label after its swatch: long labels widen the picture.
        let legend_w = max_text_width(lines.iter().map(|l| l.label.as_str()), 13) + 60;
        Curves {
            panels,
            lines,
            legend_w: legend_w.max(120),
        }
    }

    fn has_points(&self) -> bool {
        self.lines
            .iter()
            .any(|l| l.panels.iter().any(|p| !p.is_empty()))
    }
}

/// `label (3 runs)` for repeated runs (seeds or folds), else the label.
fn legend_text(g: &CurveGroup) -> String {
    match g.runs.len() {
        0 | 1 => g.label.clone(),
        n => format!("{} ({n} runs)", g.label),
    }
}

impl Figure for Curves {
    fn size(&self) -> (u32, u32) {
        let panels = 44 + PANEL_H * self.panels.len() as u32;
        let legend = 60 + LEGEND_ROW * self.lines.len() as u32;
        (PLOT_W + self.legend_w, panels.max(legend))
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        area.fill(&WHITE)?;
        let (head, body) = area.split_vertically(44);
        let banded = self.lines.iter().any(|l| l.seeds > 1);
        let caption = if banded {
            "Learning curves (line: mean over runs, i.e. seeds or folds; band: min–max)"
        } else {
            "Learning curves"
        };
        title(&head, caption)?;
        if !self.has_points() {
            return no_data(&body, "no data");
        }
        let (plots, legend) = body.split_horizontally(PLOT_W);
        let plots = plots.split_vertically(PANEL_H * self.panels.len() as u32).0;
        let x_max = self
            .lines
            .iter()
            .flat_map(|l| l.panels.iter().flatten())
            .map(|p| p.x)
            // At least 10 iterations wide, so that integer ticks do not repeat.
            .fold(10.0, f64::max);
        for (k, (panel, series)) in plots
            .split_evenly((self.panels.len(), 1))
            .iter()
            .zip(&self.panels)
            .enumerate()
        {
            draw_panel(panel, *series, &self.lines, k, x_max)?;
        }
        draw_legend(&legend, &self.lines)
    }
}

/// Panel `k` (`series`): every group's band and line, or a note when none has a point.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    series: Series,
    lines: &[Line],
    k: usize,
    x_max: f64,
) -> DrawResult<DB> {
    let points = || lines.iter().flat_map(|l| l[k].iter());
    if points().next().is_none() {
        area.draw(&Text::new(series.title(), (70, 14), font(15, LEFT)))?;
        return no_data(area, &format!("no {}", series.title()));
    }
    let (lo, hi) = finite_bounds(points().flat_map(|p| [p.lo, p.hi]));
    let mut chart = ChartBuilder::on(area)
        .caption(series.title(), (FONT, 15))
        .margin(8)
        .margin_right(16)
        .x_label_area_size(34)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, padded_range(lo, hi))?;
    chart
        .configure_mesh()
        .x_desc("iteration")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&tick)
        .label_style((FONT, 12))
        .bold_line_style(GRID)
        .light_line_style(GRID_FINE)
        .max_light_lines(FINE_LINES)
        .draw()?;
    for (i, line) in lines.iter().enumerate() {
        let c = palette(i);
        for stretch in banded_stretches(&line[k]) {
            let outline = stretch
                .iter()
                .map(|p| (p.x, p.hi))
                .chain(stretch.iter().rev().map(|p| (p.x, p.lo)));
            chart.draw_series(std::iter::once(Polygon::new(
                outline.collect::<Vec<_>>(),
                c.mix(0.22).filled(),
            )))?;
        }
        let pts = line[k].iter().map(|p| (p.x, p.mean));
        chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?;
        // Evaluations are sparse and a lone point draws no line: mark them.
        if series == Series::Val || line[k].len() < 2 {
            chart.draw_series(pts.map(|p| Circle::new(p, 3, c.filled())))?;
        }
    }
    Ok(())
}

impl std::ops::Index<usize> for Line {
    type Output = Vec<Point>;
    fn index(&self, k: usize) -> &Vec<Point> {
        &self.panels[k]
    }
}

/// Runs of consecutive points with at least two runs behind them (a band needs a spread).
fn banded_stretches(points: &[Point]) -> Vec<&[Point]> {
    points
        .split(|p| p.runs < 2)
        .filter(|s| s.len() >= 2)
        .collect()
}

/// The legend at the top of the right column: one line swatch (band behind it for seeds)
/// and label per group.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    lines: &[Line],
) -> DrawResult<DB> {
    for (i, line) in lines.iter().enumerate() {
        let y = 30 + (i as u32 * LEGEND_ROW) as i32;
        let c = palette(i);
        if line.seeds > 1 {
            area.draw(&Rectangle::new(
                [(10, y - 6), (32, y + 6)],
                c.mix(0.22).filled(),
            ))?;
        }
        let swatch = Swatch {
            color: c.to_rgba(),
            line: true,
            text: line.label.clone(),
        };
        legend_row(area, std::slice::from_ref(&swatch), (10, y))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{out_dir, png_size, svg_text};
    use super::*;

    fn run(seed: u64, shift: f64, with_val: bool) -> RunCurve {
        let it = (0..50).map(|i| i * 20);
        RunCurve {
            seed,
            loss: it
                .clone()
                .map(|i| (i, 1.2 * (-(i as f64) / 300.0).exp() + 0.1 + shift))
                .collect(),
            lr: it
                .clone()
                .map(|i| (i, 0.01 * (1.0 - i as f64 / 1000.0).powf(0.9)))
                .collect(),
            val: if with_val {
                (1..=5)
                    .map(|k| (k * 200, 50.0 + 7.0 * k as f64 + 10.0 * shift))
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    #[test]
    fn seeds_are_summarised_per_iteration() {
        let runs = [
            RunCurve {
                loss: vec![(1, 1.0), (2, 3.0), (3, f64::NAN)],
                ..RunCurve::default()
            },
            RunCurve {
                loss: vec![(1, 3.0), (2, 5.0), (3, 2.0)],
                ..RunCurve::default()
            },
        ];
        let s = summarise(&runs, Series::Loss);
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].mean, s[0].lo, s[0].hi, s[0].runs), (2.0, 1.0, 3.0, 2));
        assert_eq!((s[2].mean, s[2].runs), (2.0, 1));
        assert_eq!(banded_stretches(&s).len(), 1);
        assert_eq!(banded_stretches(&s)[0].len(), 2);
    }

    #[test]
    fn curves_render_as_png_and_svg() {
        let (_guard, dir) = out_dir();
        let long = "deeplabv3_unet_s5-d16, 128x128, lr 0.01, a rather long label indeed";
        let groups = vec![
            CurveGroup {
                label: "fcn_unet_s5-d16".into(),
                runs: vec![run(0, 0.0, true), run(1, 0.05, true), run(2, -0.03, true)],
            },
            CurveGroup {
                label: long.into(),
                runs: vec![run(0, 0.1, false)],
            },
        ];
        let files = learning_curves(&groups, &dir, "curves").unwrap();
        assert_eq!(files.len(), 2);
        let (w, h) = png_size(&files[0]);
        let fig = Curves::new(&groups);
        assert_eq!((w, h), fig.size());
        assert!(
            w > PLOT_W + super::super::text_width(long, 13),
            "legend fits"
        );
        assert_eq!(
            fig.panels.len(),
            3,
            "val panel when some run has val points"
        );
        let svg = svg_text(&files[1]);
        for t in [
            "fcn_unet_s5-d16 (3 runs)",
            long,
            "learning rate",
            "validation mDice",
        ] {
            assert!(svg.contains(t), "{t} missing");
        }
        assert!(svg.contains("min–max"));
    }

    #[test]
    fn nan_and_empty_curves_still_write_both_files() {
        let (_guard, dir) = out_dir();
        let nan = vec![CurveGroup {
            label: "diverged".into(),
            runs: vec![RunCurve {
                loss: vec![(1, f64::NAN), (2, f64::INFINITY)],
                lr: vec![(1, f64::NAN)],
                ..RunCurve::default()
            }],
        }];
        for (stem, groups) in [("curves_nan", nan), ("curves_empty", Vec::new())] {
            let files = learning_curves(&groups, &dir, stem).unwrap();
            assert_eq!(png_size(&files[0]), Curves::new(&groups).size());
            assert!(svg_text(&files[1]).contains("no data"));
        }
        let one = vec![CurveGroup {
            label: "one point".into(),
            runs: vec![RunCurve {
                loss: vec![(0, 0.5)],
                ..RunCurve::default()
            }],
        }];
        let files = learning_curves(&one, &dir, "curves_one").unwrap();
        assert!(svg_text(&files[1]).contains("no learning rate"));
    }

    #[test]
    fn an_unwritable_folder_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("no-such-dir");
        let msg = format!("{:#}", learning_curves(&[], &bad, "x").unwrap_err());
        assert!(msg.contains("no-such-dir"), "{msg}");
    }
}

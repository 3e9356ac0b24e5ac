//! Learning curves: training loss, learning rate and validation mDice against iteration,
//! one colour per configuration, one column of panels per data set (a pretraining stage of
//! 1000 iterations beside 200-iteration fine-tuning rows gets its own x range). The loss is
//! drawn smoothed ([`super::smooth`]) with the raw values faint behind it; repeated seeds
//! as mean line and min–max band.

use super::boxes::quantile;
use super::smooth::{decay_for, ema};
use super::{
    finite_bounds, font, legend_row, max_text_width, no_data, padded_range, palette, tick, title,
    write_both, DrawResult, Figure, Swatch, FINE_LINES, FONT, GRID, GRID_FINE, LEFT,
};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One configuration: its runs (usually one per seed), drawn in one colour.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CurveGroup {
    /// Legend text, e.g. `fcn_unet_s5-d16, 256x256`.
    pub label: String,
    /// The data set it trained on (`dme`); groups of one data set and stage share panels.
    pub data_set: String,
    /// The sweep stage it belongs to (`pretrain-chase`), none for the sweep's own rows.
    pub stage: Option<String>,
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

/// Draws the learning curves of `groups` to `dir/<stem>.png` and `.svg`: a column per data
/// set (and stage), panels stacked in it (training loss, learning rate, and validation
/// mDice when some run has it). A group with several runs is drawn as their mean (line)
/// and min–max (lighter band).
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

/// The groups (by index) that share a column of panels, under its heading.
#[derive(Clone, Debug, PartialEq)]
struct Column {
    heading: String,
    members: Vec<usize>,
}

/// One column per data set and stage: the sweep's own rows first, then the stages, each in
/// order of first appearance.
fn columns(groups: &[CurveGroup]) -> Vec<Column> {
    let mut cols: Vec<(bool, Column)> = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        let heading = match &g.stage {
            Some(s) => format!("{}, stage {s}", g.data_set),
            None => g.data_set.clone(),
        };
        match cols.iter_mut().find(|(_, c)| c.heading == heading) {
            Some((_, c)) => c.members.push(i),
            None => cols.push((
                g.stage.is_some(),
                Column {
                    heading,
                    members: vec![i],
                },
            )),
        }
    }
    cols.sort_by_key(|(staged, _)| *staged);
    cols.into_iter().map(|(_, c)| c).collect()
}

/// One group, ready to draw: legend text, colour, a summary per panel (the loss smoothed)
/// and the raw loss.
struct Line {
    label: String,
    colour: usize,
    seeds: usize,
    panels: Vec<Vec<Point>>,
    raw_loss: Vec<Point>,
}

/// A column, ready to draw: its heading, x range and lines.
struct Panels {
    heading: String,
    x_max: f64,
    lines: Vec<Line>,
}

/// The figure: the panels' series, the columns, and the legend's width.
struct Curves {
    panels: Vec<Series>,
    columns: Vec<Panels>,
    legend_w: u32,
}

const PANEL_H: u32 = 260;
/// Width of the only column; several columns get [`COL_W`] each.
const PLOT_W: u32 = 900;
const COL_W: u32 = 620;
const HEAD_H: u32 = 44;
const COL_HEAD_H: u32 = 26;
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
        let mut colour = 0;
        let columns = columns(groups)
            .into_iter()
            .map(|c| {
                let members: Vec<&CurveGroup> = c.members.iter().map(|&i| &groups[i]).collect();
                let x_max = x_extent(&members, &panels);
                let decay = decay_for(x_max);
                let lines = members
                    .into_iter()
                    .map(|g| {
                        colour += 1;
                        line(g, &panels, decay, colour - 1)
                    })
                    .collect();
                Panels {
                    heading: c.heading,
                    x_max,
                    lines,
                }
            })
            .collect::<Vec<_>>();
        let labels = columns
            .iter()
            .flat_map(|c| &c.lines)
            .map(|l| l.label.as_str());
        // Room for the longest label after its swatch: long labels widen the picture.
        let legend_w = max_text_width(labels, 13) + 60;
        Curves {
            panels,
            columns,
            legend_w: legend_w.max(120),
        }
    }

    fn lines(&self) -> impl Iterator<Item = &Line> {
        self.columns.iter().flat_map(|c| &c.lines)
    }

    fn has_points(&self) -> bool {
        self.lines().any(|l| l.panels.iter().any(|p| !p.is_empty()))
    }

    /// Column headings only when there is something to tell apart.
    fn headed(&self) -> bool {
        self.columns.len() > 1 || self.columns.iter().any(|c| !c.heading.is_empty())
    }

    fn col_w(&self) -> u32 {
        if self.columns.len() > 1 {
            COL_W
        } else {
            PLOT_W
        }
    }
}

/// The last iteration any series of `groups` logged, at least 10 (so that integer ticks do
/// not repeat).
fn x_extent(groups: &[&CurveGroup], panels: &[Series]) -> f64 {
    groups
        .iter()
        .flat_map(|g| &g.runs)
        .flat_map(|r| panels.iter().flat_map(|s| s.of(r)))
        .map(|&(i, _)| i as f64)
        .fold(10.0, f64::max)
}

/// `g` summarised per panel, its loss smoothed run by run (before the mean over seeds, so
/// that the band shows how the seeds' trends differ, not their single-batch noise).
fn line(g: &CurveGroup, panels: &[Series], decay: f64, colour: usize) -> Line {
    let smoothed: Vec<RunCurve> = g
        .runs
        .iter()
        .map(|r| RunCurve {
            loss: ema(&r.loss, decay),
            ..r.clone()
        })
        .collect();
    Line {
        label: legend_text(g),
        colour,
        seeds: g.runs.len(),
        panels: panels.iter().map(|&s| summarise(&smoothed, s)).collect(),
        raw_loss: summarise(&g.runs, Series::Loss),
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
        let head = if self.headed() { COL_HEAD_H } else { 0 };
        let panels = HEAD_H + head + PANEL_H * self.panels.len() as u32;
        let legend = 60 + LEGEND_ROW * self.lines().count() as u32;
        let cols = self.columns.len().max(1) as u32;
        (cols * self.col_w() + self.legend_w, panels.max(legend))
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        area.fill(&WHITE)?;
        let (head, body) = area.split_vertically(HEAD_H);
        let banded = self.lines().any(|l| l.seeds > 1);
        let caption = if banded {
            "Learning curves (loss: moving average, raw faint; line: mean over runs, i.e. seeds or folds; band: min–max)"
        } else {
            "Learning curves (loss: moving average, raw values faint)"
        };
        title(&head, caption)?;
        if !self.has_points() {
            return no_data(&body, "no data");
        }
        let cols = self.columns.len() as u32;
        let (plots, legend) = body.split_horizontally(self.col_w() * cols);
        for (col, area) in self
            .columns
            .iter()
            .zip(plots.split_evenly((1, self.columns.len())))
        {
            self.draw_column(&area, col)?;
        }
        draw_legend(&legend, &self.lines().collect::<Vec<_>>())
    }
}

impl Curves {
    /// One column: its heading, then a panel per series.
    fn draw_column<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        col: &Panels,
    ) -> DrawResult<DB> {
        let area = if self.headed() {
            let (head, rest) = area.split_vertically(COL_HEAD_H);
            head.draw(&Text::new(
                format!("data set {}", col.heading),
                (70, COL_HEAD_H as i32 / 2),
                font(16, LEFT),
            ))?;
            rest
        } else {
            area.clone()
        };
        let area = area.split_vertically(PANEL_H * self.panels.len() as u32).0;
        for (k, (panel, series)) in area
            .split_evenly((self.panels.len(), 1))
            .iter()
            .zip(&self.panels)
            .enumerate()
        {
            draw_panel(panel, *series, &col.lines, k, col.x_max)?;
        }
        Ok(())
    }
}

/// Panel `k` (`series`): every group's band and line (the raw loss faint behind the
/// smoothed one), or a note when none has a point.
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
    let values = points().flat_map(|p| [p.lo, p.hi]);
    let (lo, hi) = match series {
        Series::Loss => robust_bounds(values),
        _ => finite_bounds(values),
    };
    let y = padded_range(lo, hi);
    let mut chart = ChartBuilder::on(area)
        .caption(series.title(), (FONT, 15))
        .margin(8)
        .margin_right(16)
        .x_label_area_size(34)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, y.clone())?;
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
    if series == Series::Loss {
        for line in lines {
            let raw = line.raw_loss.iter().map(|p| (p.x, clamp(p.mean, &y)));
            let c = palette(line.colour).mix(RAW_ALPHA);
            chart.draw_series(LineSeries::new(raw, c.stroke_width(1)))?;
        }
    }
    for line in lines {
        draw_line(&mut chart, line, &line[k], series == Series::Val)?;
    }
    Ok(())
}

/// The 1st and 99th percentile of the smoothed loss: a raw spike, or what is left of it in
/// one seed's average, runs off the top rather than flattening every curve to the floor
/// (TensorBoard's "ignore outliers in chart scaling", on by default).
fn robust_bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let mut v: Vec<f64> = values.filter(|v| v.is_finite()).collect();
    if v.is_empty() {
        return (f64::INFINITY, f64::NEG_INFINITY);
    }
    v.sort_by(f64::total_cmp);
    (quantile(&v, 0.01), quantile(&v, 0.99))
}

/// How strongly the raw loss shows behind the smoothed line (TensorBoard draws it at
/// about this opacity).
const RAW_ALPHA: f64 = 0.18;

/// `v` held inside `y`: a spike is drawn up to the panel's edge, not across the caption.
fn clamp(v: f64, y: &Range<f64>) -> f64 {
    v.clamp(y.start, y.end)
}

type Chart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// One group's band (where two or more runs overlap), mean line, and dots where points are
/// sparse (`marked`) or alone.
fn draw_line<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    line: &Line,
    points: &[Point],
    marked: bool,
) -> DrawResult<DB> {
    let c = palette(line.colour);
    for stretch in banded_stretches(points) {
        let outline = stretch
            .iter()
            .map(|p| (p.x, p.hi))
            .chain(stretch.iter().rev().map(|p| (p.x, p.lo)));
        chart.draw_series(std::iter::once(Polygon::new(
            outline.collect::<Vec<_>>(),
            c.mix(0.22).filled(),
        )))?;
    }
    let pts = points.iter().map(|p| (p.x, p.mean));
    chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?;
    // Evaluations are sparse and a lone point draws no line: mark them.
    if marked || points.len() < 2 {
        chart.draw_series(pts.map(|p| Circle::new(p, 3, c.filled())))?;
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
/// and label per group, in column order.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    lines: &[&Line],
) -> DrawResult<DB> {
    for (i, line) in lines.iter().enumerate() {
        let y = 30 + (i as u32 * LEGEND_ROW) as i32;
        let c = palette(line.colour);
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
                ..CurveGroup::default()
            },
            CurveGroup {
                label: long.into(),
                runs: vec![run(0, 0.1, false)],
                ..CurveGroup::default()
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

    fn group(label: &str, data_set: &str, stage: Option<&str>, iters: usize) -> CurveGroup {
        let spiky = |i: usize| {
            if i % 97 == 50 {
                14.0
            } else {
                1.0 / (1.0 + i as f64 / 50.0)
            }
        };
        CurveGroup {
            label: label.into(),
            data_set: data_set.into(),
            stage: stage.map(Into::into),
            runs: vec![RunCurve {
                loss: (1..=iters).map(|i| (i, spiky(i))).collect(),
                lr: (1..=iters).map(|i| (i, 0.003)).collect(),
                ..RunCurve::default()
            }],
        }
    }

    #[test]
    fn each_data_set_and_stage_gets_a_column_sweep_rows_first() {
        let groups = [
            group("pretrain", "chase_db1", Some("pretrain-chase"), 1000),
            group("fcn", "dme", None, 200),
            group("dlv3", "dme", None, 300),
        ];
        let cols = columns(&groups);
        let headings: Vec<&str> = cols.iter().map(|c| c.heading.as_str()).collect();
        assert_eq!(headings, ["dme", "chase_db1, stage pretrain-chase"]);
        assert_eq!(cols[0].members, [1, 2]);
        assert_eq!(cols[1].members, [0]);
        let fig = Curves::new(&groups);
        let x: Vec<f64> = fig.columns.iter().map(|c| c.x_max).collect();
        assert_eq!(x, [300.0, 1000.0], "each column its own x range");
        let colours: Vec<usize> = fig.lines().map(|l| l.colour).collect();
        assert_eq!(colours, [0, 1, 2], "colours follow the legend");
    }

    #[test]
    fn two_data_sets_render_side_by_side_with_the_loss_smoothed() {
        let (_guard, dir) = out_dir();
        let groups = [
            group("pretrain", "chase_db1", Some("pretrain-chase"), 1000),
            group("fcn", "dme", None, 200),
        ];
        let files = learning_curves(&groups, &dir, "curves_two_sets").unwrap();
        let fig = Curves::new(&groups);
        assert_eq!(png_size(&files[0]), fig.size());
        assert_eq!(fig.size().0, 2 * COL_W + fig.legend_w);
        let svg = svg_text(&files[1]);
        for t in ["data set dme", "data set chase_db1, stage pretrain-chase"] {
            assert!(svg.contains(t), "{t} missing");
        }
        // The smoothed line stays far below the spikes of 14; the raw line is kept.
        let line = &fig.columns[0].lines[0];
        let top = line[0].iter().map(|p| p.hi).fold(0.0, f64::max);
        assert!(top < 3.0, "{top}");
        assert_eq!(line.raw_loss.len(), 200);
        assert!(line.raw_loss.iter().any(|p| p.mean == 14.0));
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
            ..CurveGroup::default()
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
            ..CurveGroup::default()
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

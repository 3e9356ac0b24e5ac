//! `sweep plot` (and `report --plot`): gathers from the store what the charts of
//! [`super::plot`] draw: learning curves per configuration, the leaderboard with its
//! intervals and verdicts, per-image Dice per configuration, and prediction overlays.

use super::plot::{
    anytime_chart, box_plots, leaderboard_chart, learning_curves, overlays, BoardMark, BoardRow,
    CurveGroup, OverlayPanel, RunCurve,
};
use super::significance::{metric_fn, Evidence};
use super::{board, Board, Group, ReportOptions};
use crate::job::JobConfig;
use crate::metrics::Metrics;
use crate::protocol::ImageMetric;
use crate::store::{JobRow, Store};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Pixels the overlays need, read by whoever knows the data sets (`sweep-data`).
pub trait Pictures: Send + Sync {
    /// Validation images to overlay; empty: the best row's best, median and worst.
    fn chosen(&self) -> &[String];
    /// Validation image `name` of the job's data set as (RGB, label, w, h) at the label's size.
    fn image(&self, config: &JobConfig, name: &str) -> Result<(Vec<u8>, Vec<u8>, usize, usize)>;
    /// A saved prediction (8-bit class indices) as (pixels, w, h).
    fn prediction(&self, path: &Path) -> Result<(Vec<u8>, usize, usize)>;
}

/// No overlays: for callers without the data sets at hand.
pub struct NoOverlays;

impl Pictures for NoOverlays {
    fn chosen(&self) -> &[String] {
        &[]
    }
    fn image(&self, _: &JobConfig, name: &str) -> Result<(Vec<u8>, Vec<u8>, usize, usize)> {
        anyhow::bail!("no image source for {name}: overlays are drawn by `sweep plot`")
    }
    fn prediction(&self, path: &Path) -> Result<(Vec<u8>, usize, usize)> {
        anyhow::bail!("no image source for {}", path.display())
    }
}

/// Writes every picture into `dir` (the per-image ones when per-image results exist, the
/// overlays when the best row saved its predictions); returns the files written.
pub async fn write_plots(
    store: &dyn Store,
    opts: &ReportOptions,
    dir: &Path,
    pictures: &dyn Pictures,
) -> Result<Vec<PathBuf>> {
    let opts = ReportOptions {
        all: false,
        ..opts.clone()
    };
    let rows = store.report_rows(opts.sweep.as_deref()).await?;
    let evidence = Evidence::load(store, &rows).await?;
    let board = board(&rows, &evidence, &opts)?;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create plot folder {}", dir.display()))?;
    let split = opts.split.as_deref().unwrap_or("val");
    let mut files = learning_curves(&curve_groups(store, &board.groups).await?, dir, "curves")?;
    let floor = all_background(&board, &evidence, split);
    let metric = board.sort.to_string();
    files.extend(leaderboard_chart(
        &board_rows(&board, &opts),
        &metric,
        floor,
        dir,
        "leaderboard",
    )?);
    files.extend(anytime_files(store, &rows, &board, &opts, dir).await?);
    let dice = per_image_dice(&board.groups, &evidence, split);
    if !dice.is_empty() {
        let class = board.groups[0].runs[0].class_name(1);
        files.extend(box_plots(
            &dice,
            &format!("per-image Dice ({class}, %)"),
            dir,
            "per_image_dice",
        )?);
    }
    // Overlays the user did not ask for by name are skipped, with a warning, when the data
    // set is not at hand (a laptop with a copied database).
    let panels = match overlay_panels(&board, &evidence, split, pictures) {
        Ok(p) => p,
        Err(e) if pictures.chosen().is_empty() => {
            tracing::warn!("no prediction overlays: {e:#}");
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    if !panels.is_empty() {
        files.extend(overlays(&panels, dir, "overlays")?);
    }
    Ok(files)
}

/// `anytime.png`/`.svg` and `anytime.csv`: each sweep's best configuration so far against
/// job-hours, when some sweep has two finished configurations (one is no progress to show).
async fn anytime_files(
    store: &dyn Store,
    rows: &[JobRow],
    board: &Board<'_>,
    opts: &ReportOptions,
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    let split = opts.split.as_deref();
    let value = |g: &Group<'_>| g.stat(&board.sort, split).map(|s| s.mean);
    let series = super::anytime::anytime(store, rows, &board.groups, value, !opts.asc).await?;
    if series.iter().all(|s| s.steps.len() < 2) {
        return Ok(Vec::new());
    }
    let mut files = anytime_chart(&series, &board.sort.to_string(), dir, "anytime")?;
    let csv = dir.join("anytime.csv");
    std::fs::write(&csv, super::anytime::csv(&series))
        .with_context(|| format!("writing {}", csv.display()))?;
    files.push(csv);
    Ok(files)
}

/// Each group's runs: loss and learning rate per iteration, validation mDice when recorded.
async fn curve_groups(store: &dyn Store, groups: &[Group<'_>]) -> Result<Vec<CurveGroup>> {
    let mut out = Vec::new();
    for g in groups {
        let mut runs = Vec::new();
        for r in &g.runs {
            let c = store.curve(r.job_id).await?;
            let val: Vec<(usize, f64)> = store
                .eval_curve(r.job_id)
                .await?
                .into_iter()
                .filter(|(_, m)| m.name == "mDice" && m.class.is_none())
                .map(|(it, m)| (it, m.value))
                .collect();
            if !c.is_empty() || !val.is_empty() {
                runs.push(RunCurve {
                    seed: r.seed,
                    loss: c.iter().map(|p| (p.iteration, p.loss)).collect(),
                    lr: c.iter().map(|p| (p.iteration, p.lr)).collect(),
                    val,
                });
            }
        }
        if !runs.is_empty() {
            out.push(CurveGroup {
                label: g.label.clone(),
                // Curves of different data sets get their own panels.
                data_set: super::data_sets::dataset_name(g),
                stage: g.runs[0].stage.clone(),
                runs,
            });
        }
    }
    Ok(out)
}

/// The leaderboard's bars: mean, t interval, per-run values, and the bootstrap's verdict.
fn board_rows(board: &Board, opts: &ReportOptions) -> Vec<BoardRow> {
    let split = opts.split.as_deref();
    (0..board.groups.len())
        .filter_map(|i| {
            let stat = board.groups[i].stat(&board.sort, split)?;
            let mark = match board.test(i) {
                Some(t) if t.best => BoardMark::Best,
                Some(t) if t.indistinguishable => BoardMark::Indistinguishable,
                Some(_) => BoardMark::Worse,
                None => BoardMark::Untested,
            };
            Some(BoardRow {
                label: board.groups[i].label.clone(),
                mean: stat.mean,
                ci95: board.summary(i, split).and_then(|s| s.ci95),
                values: stat.values,
                mark,
            })
        })
        .collect()
}

/// The sort metric of predicting background everywhere on the tested images (the floor
/// every model must beat), from the label counts of the first row with per-image results.
fn all_background(board: &Board, evidence: &Evidence, split: &str) -> Option<(f64, String)> {
    let f = metric_fn(&board.sort)?;
    let run = ranked_for_pictures(board)
        .flat_map(|g| g.runs.iter())
        .find_map(|r| evidence.images.get(&r.job_id))?;
    let rows: Vec<&ImageMetric> = run.iter().filter(|m| m.split == split).collect();
    let classes = rows.iter().map(|m| m.class + 1).max()?;
    let mut m = Metrics::new(classes);
    for r in &rows {
        m.label[r.class] += r.label;
    }
    let total: u64 = m.label.iter().sum();
    m.pred[0] = total;
    m.intersect[0] = m.label[0];
    for c in 0..classes {
        m.union[c] = m.pred[c] + m.label[c] - m.intersect[c];
    }
    let v = f(&m);
    v.is_finite().then(|| (v, "all background".to_string()))
}

/// The groups with the bootstrap's best row first (a pretraining stage on another data set
/// may rank above it), then all in rank order.
fn ranked_for_pictures<'b>(board: &'b Board) -> impl Iterator<Item = &'b Group<'b>> {
    let best = (0..board.groups.len()).find(|&i| board.test(i).is_some_and(|t| t.best));
    best.into_iter()
        .chain(0..board.groups.len())
        .map(|i| &board.groups[i])
}

/// Per-image Dice of the first foreground class, every run of each group.
fn per_image_dice(groups: &[Group], evidence: &Evidence, split: &str) -> Vec<(String, Vec<f64>)> {
    groups
        .iter()
        .map(|g| {
            let values = g
                .runs
                .iter()
                .filter_map(|r| evidence.images.get(&r.job_id))
                .flatten()
                .filter(|m| m.split == split && m.class == 1)
                .map(|m| m.dice.unwrap_or(f64::NAN))
                .collect();
            (g.label.clone(), values)
        })
        .filter(|(_, v): &(String, Vec<f64>)| !v.is_empty())
        .collect()
}

/// The best row's first run with saved predictions: its chosen images, or its best, median
/// and worst by Dice.
fn overlay_panels(
    board: &Board,
    evidence: &Evidence,
    split: &str,
    pictures: &dyn Pictures,
) -> Result<Vec<OverlayPanel>> {
    // The first run that saved predictions, the bootstrap's best row first.
    let Some((run, dir)) = ranked_for_pictures(board).find_map(|g| {
        g.runs.iter().find_map(|r| {
            let dir = Path::new(r.artifact_dir.as_ref()?).join("predictions");
            dir.is_dir().then_some((*r, dir))
        })
    }) else {
        return Ok(Vec::new());
    };
    let Some(config) = run.train_config()? else {
        // A command job's images are its program's to draw.
        return Ok(Vec::new());
    };
    let mut panels = Vec::new();
    for (title, name) in chosen_images(run, evidence, split, pictures.chosen()) {
        let (image, label, w, h) = pictures.image(&config, &name)?;
        let (pred, pw, ph) = pictures.prediction(&dir.join(format!("{name}.png")))?;
        anyhow::ensure!(
            (pw, ph) == (w, h),
            "prediction of {name} is {pw}x{ph}, its label {w}x{h}"
        );
        panels.push(OverlayPanel {
            title: format!("{title} ({})", run.label),
            image,
            label,
            pred,
            w,
            h,
            class: 1,
            class_name: run.class_name(1),
        });
    }
    Ok(panels)
}

/// (title, image name) of the images to overlay.
fn chosen_images(
    run: &JobRow,
    evidence: &Evidence,
    split: &str,
    chosen: &[String],
) -> Vec<(String, String)> {
    if !chosen.is_empty() {
        return chosen.iter().map(|n| (n.clone(), n.clone())).collect();
    }
    let mut scored: Vec<(f64, &str)> = evidence
        .images
        .get(&run.job_id)
        .into_iter()
        .flatten()
        .filter(|m| m.split == split && m.class == 1)
        .filter_map(|m| Some((m.dice?, m.image.as_str())))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    let Some(last) = scored.len().checked_sub(1) else {
        return Vec::new();
    };
    let mut picks = vec![("best", 0), ("median", last / 2), ("worst", last)];
    picks.dedup_by_key(|p| p.1);
    picks
        .into_iter()
        .map(|(what, i)| {
            let (dice, name) = scored[i];
            (format!("{what}: {name}, Dice {dice:.1}"), name.to_string())
        })
        .collect()
}

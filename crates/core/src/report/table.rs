//! The four renderings of a ranked leaderboard.

use super::{Board, Group, MetricKey, ReportOptions};
use crate::protocol::MetricValue;
use anyhow::Result;
use comfy_table::{presets, CellAlignment, ContentArrangement, Table};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

fn show_n(groups: &[Group]) -> bool {
    groups.iter().any(|g| g.runs.len() > 1)
}

fn show_ci(board: &Board, opts: &ReportOptions) -> bool {
    (0..board.groups.len()).any(|i| {
        board
            .summary(i, opts.split.as_deref())
            .is_some_and(|s| s.ci95.is_some())
    })
}

fn ci_cell(board: &Board, i: usize, opts: &ReportOptions) -> String {
    match board.summary(i, opts.split.as_deref()).and_then(|s| s.ci95) {
        Some((lo, hi)) => format!("{lo:.2} to {hi:.2}"),
        None => "-".into(),
    }
}

fn best_cells(board: &Board, i: usize) -> [String; 2] {
    match board.test(i) {
        Some(t) => [
            if t.best {
                "best".into()
            } else if t.indistinguishable {
                "yes".into()
            } else {
                "no".into()
            },
            format!("{:.0}%", 100.0 * t.prob_best),
        ],
        None => ["-".into(), "-".into()],
    }
}

/// Header and cells of the human-readable tables.
fn grid(board: &Board, opts: &ReportOptions) -> (Vec<String>, Vec<Vec<String>>) {
    let groups = &board.groups;
    let (with_n, with_ci) = (show_n(groups), show_ci(board, opts));
    let with_test = board.significance.is_some();
    let mut header = vec!["Model".to_string()];
    if opts.all {
        header.push("Status".into());
    }
    header.extend(board.columns.iter().map(|(h, _)| h.clone()));
    if with_n {
        header.push("n".into());
    }
    if with_ci {
        header.push(format!("{} 95% CI", board.sort));
    }
    if with_test {
        header.extend(["≈ best".to_string(), "P(best)".to_string()]);
    }
    let with_reason = opts.all && groups.iter().any(|g| g.reason().is_some());
    if with_reason {
        header.push("Reason".into());
    }
    let rows = groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let mut row = vec![g.shown_label()];
            if opts.all {
                row.push(g.status.clone());
            }
            for (_, key) in &board.columns {
                row.push(
                    g.stat(key, opts.split.as_deref())
                        .map(|s| s.display())
                        .unwrap_or_else(|| "-".into()),
                );
            }
            if with_n {
                row.push(g.runs.len().to_string());
            }
            if with_ci {
                row.push(ci_cell(board, i, opts));
            }
            if with_test {
                row.extend(best_cells(board, i));
            }
            if with_reason {
                row.push(g.reason().unwrap_or_default());
            }
            row
        })
        .collect();
    (header, rows)
}

/// What the statistics columns mean, and how many images the empty-mask policy decided.
fn footnotes(board: &Board, opts: &ReportOptions) -> String {
    let mut out = String::new();
    if show_ci(board, opts) {
        out += "95% CI: Student's t interval of the mean over the row's runs (seeds, folds).\n";
    }
    if let Some(sig) = &board.significance {
        out += &format!(
            "≈ best: not distinguishable from the best row of its data set in {} (paired \
             bootstrap over {} validation images and the seeds, {} replicates, Holm-corrected \
             at α = {}); P(best): share of replicates in which the row is best.\n",
            sig.metric, sig.images, sig.replicates, sig.alpha
        );
    }
    if let Some(note) = &board.image_note {
        out += &super::image_note::render(note);
    }
    for note in super::data_sets::changed_files(&board.groups) {
        out += &note;
    }
    out + &external_note(&board.groups)
}

/// Which rows are external, and where their predictions came from.
fn external_note(groups: &[Group]) -> String {
    let sources: Vec<String> = groups
        .iter()
        .filter_map(|g| {
            let e = g.runs[0].external.as_ref()?;
            Some(format!("{} from {}", g.label, e.predictions))
        })
        .collect();
    if sources.is_empty() {
        return String::new();
    }
    format!(
        "(external): rows scored by `sweep evaluate` from another program's predictions, not \
         trained by this sweep: {}.\n",
        sources.join("; ")
    )
}

/// Terminal table (comfy-table); numbers right-aligned.
pub(super) fn text(board: &Board, opts: &ReportOptions) -> String {
    let (header, rows) = grid(board, opts);
    let text_cols = if opts.all { 2 } else { 1 };
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.clone());
    for row in rows {
        table.add_row(row);
    }
    for i in text_cols..numbers_end(&header) {
        if let Some(c) = table.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = table.to_string();
    out.push('\n');
    out + &footnotes(board, opts)
}

/// Where the numeric columns end: the reason (when shown) is text, left-aligned.
fn numbers_end(header: &[String]) -> usize {
    header.len() - usize::from(header.last().is_some_and(|h| h == "Reason"))
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

/// GitHub Markdown table, like the study's README.
pub(super) fn markdown(board: &Board, opts: &ReportOptions) -> String {
    let (header, rows) = grid(board, opts);
    let text_cols = if opts.all { 2 } else { 1 };
    let line = |cells: &[String]| {
        format!(
            "| {} |\n",
            cells
                .iter()
                .map(|c| md_escape(c))
                .collect::<Vec<_>>()
                .join(" | ")
        )
    };
    let mut out = line(&header);
    let numbers_end = numbers_end(&header);
    let rule: Vec<String> = (0..header.len())
        .map(|i| {
            if i < text_cols || i >= numbers_end {
                "---".into()
            } else {
                "---:".into()
            }
        })
        .collect();
    out.push_str(&format!("|{}|\n", rule.join("|")));
    for row in &rows {
        out.push_str(&line(row));
    }
    let notes = footnotes(board, opts);
    if !notes.is_empty() {
        out.push('\n');
        out.push_str(&notes.trim_end().replace('\n', "\n\n"));
        out.push('\n');
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else {
        v.to_string()
    }
}

/// CSV at full precision: `sweep,job_ids,model,status,n`, then `<metric>,<metric>_std` per
/// column (std empty for a single run, both empty when the metric is missing).
pub(super) fn csv(board: &Board, opts: &ReportOptions) -> String {
    let (groups, columns) = (&board.groups, &board.columns);
    let mut header: Vec<String> = ["sweep", "job_ids", "model", "status", "n"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (h, _) in columns {
        header.push(h.clone());
        header.push(format!("{h}_std"));
    }
    for extra in ["ci95_lo", "ci95_hi"] {
        header.push(format!("{}_{extra}", board.sort));
    }
    header.extend(["indistinguishable".into(), "prob_best".into()]);
    let mut out = header
        .iter()
        .map(|h| csv_field(h))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    for (i, g) in groups.iter().enumerate() {
        let ids: Vec<String> = g.runs.iter().map(|r| r.job_id.to_string()).collect();
        let mut cells = vec![
            g.sweep.clone(),
            ids.join(";"),
            g.label.clone(),
            g.status.clone(),
            g.runs.len().to_string(),
        ];
        for (_, key) in columns {
            match g.stat(key, opts.split.as_deref()) {
                Some(s) => {
                    cells.push(num(s.mean));
                    cells.push(s.std.map(num).unwrap_or_default());
                }
                None => {
                    cells.push(String::new());
                    cells.push(String::new());
                }
            }
        }
        let ci = board.summary(i, opts.split.as_deref()).and_then(|s| s.ci95);
        cells.push(ci.map(|c| num(c.0)).unwrap_or_default());
        cells.push(ci.map(|c| num(c.1)).unwrap_or_default());
        let test = board.test(i);
        cells.push(
            test.map(|t| t.indistinguishable.to_string())
                .unwrap_or_default(),
        );
        cells.push(test.map(|t| num(t.prob_best)).unwrap_or_default());
        out.push_str(
            &cells
                .iter()
                .map(|c| csv_field(c))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    out
}

fn config_value(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_string()))
}

/// JSON: one object per row with everything known about its runs. NaN becomes null.
/// The sort metric's statistics of row `i`: n, mean, std, per-run values, t interval, and
/// the bootstrap's verdict (null when the row was not tested).
fn row_stats(board: &Board, i: usize, opts: &ReportOptions) -> Value {
    let split = opts.split.as_deref();
    let values = board.groups[i].stat(&board.sort, split).map(|s| s.values);
    let summary = board.summary(i, split);
    let test = board.test(i);
    json!({
        "metric": board.sort.to_string(),
        "n": summary.as_ref().map(|s| s.n),
        "mean": summary.as_ref().map(|s| s.mean),
        "std": summary.as_ref().and_then(|s| s.std),
        "ci95": summary.as_ref().and_then(|s| s.ci95).map(|(lo, hi)| [lo, hi]),
        "values": values,
        "best": test.map(|t| t.best),
        "indistinguishable": test.map(|t| t.indistinguishable),
        "prob_best": test.map(|t| t.prob_best),
        "p_vs_best": test.and_then(|t| t.p),
        "p_vs_best_holm": test.and_then(|t| t.p_adjusted),
        "test": board.significance.as_ref().map(|s| json!({
            "kind": "paired bootstrap over validation images and seeds",
            "images": s.images,
            "replicates": s.replicates,
            "alpha": s.alpha,
            "correction": "holm",
        })),
        "images": board.images[i],
    })
}

pub(super) fn json(board: &Board, opts: &ReportOptions) -> Result<String> {
    let split = opts.split.as_deref();
    let mut out = Vec::new();
    for (rank, g) in board.groups.iter().enumerate() {
        let mut metrics = Map::new();
        for key in g.metric_keys(split) {
            if let Some(s) = g.stat(&key, split) {
                let ci = crate::stats::summarize(&s.values).and_then(|s| s.ci95);
                metrics.insert(
                    key.to_string(),
                    json!({
                        "mean": s.mean,
                        "std": s.std,
                        "ci95": ci.map(|(lo, hi)| [lo, hi]),
                        "values": s.values,
                    }),
                );
            }
        }
        let runs: Vec<Value> = g
            .runs
            .iter()
            .map(|r| {
                json!({
                    "job_id": r.job_id,
                    "hash": r.hash,
                    "seed": r.seed,
                    "status": r.status,
                    "attempts": r.attempts,
                    "iteration": r.iteration,
                    "artifact_dir": r.artifact_dir,
                    "error": r.error,
                    "sweep_version": r.sweep_version,
                    "data_fingerprint": r.data_fingerprint,
                    "external": r.external,
                    "config": config_value(&r.config_json),
                    "metrics": by_split(&r.metrics),
                })
            })
            .collect();
        out.push(json!({
            "rank": rank + 1,
            "sweep": g.sweep,
            "model": g.label,
            "stage": g.runs[0].stage,
            "status": g.status,
            "reason": g.reason(),
            "n": g.runs.len(),
            "job_ids": g.runs.iter().map(|r| r.job_id).collect::<Vec<_>>(),
            "config": config_value(&g.runs[0].config_json),
            "external": g.is_external(),
            "classes": g.runs[0].classes,
            "metrics": metrics,
            "stats": row_stats(board, rank, opts),
            "artifact_dirs": g.runs.iter().map(|r| r.artifact_dir.clone()).collect::<Vec<_>>(),
            "runs": runs,
        }));
    }
    let mut s = serde_json::to_string_pretty(&out)?;
    s.push('\n');
    Ok(s)
}

/// A run's metrics as `{split: {key: value}}`, keys as the report's columns (`mDice`,
/// `Dice.1`); NaN is written as null.
pub(super) fn by_split(metrics: &[MetricValue]) -> BTreeMap<&str, BTreeMap<String, f64>> {
    let mut by_split: BTreeMap<&str, BTreeMap<String, f64>> = BTreeMap::new();
    for m in metrics {
        let key = MetricKey {
            name: m.name.clone(),
            class: m.class,
            split: None,
        };
        by_split
            .entry(m.split.as_str())
            .or_default()
            .insert(key.to_string(), m.value);
    }
    by_split
}

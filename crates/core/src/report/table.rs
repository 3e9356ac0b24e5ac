//! The four renderings of a ranked leaderboard.

use super::{Group, MetricKey, ReportOptions};
use anyhow::Result;
use comfy_table::{presets, CellAlignment, ContentArrangement, Table};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

type Columns = [(String, MetricKey)];

fn show_n(groups: &[Group]) -> bool {
    groups.iter().any(|g| g.runs.len() > 1)
}

/// Header and cells of the human-readable tables.
fn grid(
    groups: &[Group],
    columns: &Columns,
    opts: &ReportOptions,
) -> (Vec<String>, Vec<Vec<String>>) {
    let with_n = show_n(groups);
    let mut header = vec!["Model".to_string()];
    if opts.all {
        header.push("Status".into());
    }
    header.extend(columns.iter().map(|(h, _)| h.clone()));
    if with_n {
        header.push("n".into());
    }
    let with_reason = opts.all && groups.iter().any(|g| g.reason().is_some());
    if with_reason {
        header.push("Reason".into());
    }
    let rows = groups
        .iter()
        .map(|g| {
            let mut row = vec![g.label.clone()];
            if opts.all {
                row.push(g.status.clone());
            }
            for (_, key) in columns {
                row.push(
                    g.stat(key, opts.split.as_deref())
                        .map(|s| s.display())
                        .unwrap_or_else(|| "-".into()),
                );
            }
            if with_n {
                row.push(g.runs.len().to_string());
            }
            if with_reason {
                row.push(g.reason().unwrap_or_default());
            }
            row
        })
        .collect();
    (header, rows)
}

/// Terminal table (comfy-table); numbers right-aligned.
pub(super) fn text(groups: &[Group], columns: &Columns, opts: &ReportOptions) -> String {
    let (header, rows) = grid(groups, columns, opts);
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
    out
}

/// Where the numeric columns end: the reason (when shown) is text, left-aligned.
fn numbers_end(header: &[String]) -> usize {
    header.len() - usize::from(header.last().is_some_and(|h| h == "Reason"))
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

/// GitHub Markdown table, like the study's README.
pub(super) fn markdown(groups: &[Group], columns: &Columns, opts: &ReportOptions) -> String {
    let (header, rows) = grid(groups, columns, opts);
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
pub(super) fn csv(groups: &[Group], columns: &Columns, opts: &ReportOptions) -> String {
    let mut header: Vec<String> = ["sweep", "job_ids", "model", "status", "n"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (h, _) in columns {
        header.push(h.clone());
        header.push(format!("{h}_std"));
    }
    let mut out = header
        .iter()
        .map(|h| csv_field(h))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    for g in groups {
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
pub(super) fn json(groups: &[Group], opts: &ReportOptions) -> Result<String> {
    let split = opts.split.as_deref();
    let mut out = Vec::new();
    for (rank, g) in groups.iter().enumerate() {
        let mut metrics = Map::new();
        for key in g.metric_keys(split) {
            if let Some(s) = g.stat(&key, split) {
                metrics.insert(
                    key.to_string(),
                    json!({ "mean": s.mean, "std": s.std, "values": s.values }),
                );
            }
        }
        let runs: Vec<Value> = g
            .runs
            .iter()
            .map(|r| {
                let mut by_split: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
                for m in &r.metrics {
                    let key = MetricKey {
                        name: m.name.clone(),
                        class: m.class,
                        split: None,
                    };
                    by_split
                        .entry(m.split.as_str())
                        .or_default()
                        .insert(key.to_string(), json!(m.value));
                }
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
                    "config": config_value(&r.config_json),
                    "metrics": by_split,
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
            "metrics": metrics,
            "artifact_dirs": g.runs.iter().map(|r| r.artifact_dir.clone()).collect::<Vec<_>>(),
            "runs": runs,
        }));
    }
    let mut s = serde_json::to_string_pretty(&out)?;
    s.push('\n');
    Ok(s)
}

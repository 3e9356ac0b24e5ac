//! `sweep plan`: the jobs a sweep file expands to, as a table or JSON.

use crate::job::SplitConfig;
use crate::sweepfile::{PlannedJob, SweepSpec};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

pub fn plan_table(spec: &SweepSpec, plan: &[PlannedJob]) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    // Columns: the keys the grid / include / seeds vary (`seed` has its own column). A stage
    // varies its own keys, which its label already spells out, so columns come from the jobs
    // that are not stages and each row looks its values up by key.
    let mut varied: Vec<&str> = Vec::new();
    for p in plan.iter().filter(|p| p.stage.is_none()) {
        for (k, _) in &p.varied {
            if k != "seed" && !varied.contains(&k.as_str()) {
                varied.push(k);
            }
        }
    }
    let mut header = vec!["#", "job", "Model", "seed"];
    header.extend(varied.iter().copied());
    header.push("after");
    table.set_header(header);
    for (i, p) in plan.iter().enumerate() {
        let mut row = vec![
            (i + 1).to_string(),
            p.hash.clone(),
            p.label.clone(),
            p.config.seed.to_string(),
        ];
        for key in &varied {
            let value = p.varied.iter().find(|(k, _)| k == key).map(|(_, v)| v);
            row.push(match (&p.stage, value) {
                (None, Some(v)) => v.clone(),
                _ => String::new(),
            });
        }
        // The stage this job waits for, by name.
        let after = p.depends_on.as_ref().map(|h| {
            plan.iter()
                .find(|q| &q.hash == h)
                .and_then(|q| q.stage.clone())
                .unwrap_or_else(|| h.clone())
        });
        row.push(after.unwrap_or_default());
        table.add_row(row);
    }
    format!(
        "sweep {} ({}): {} job(s){}\n{table}",
        spec.name,
        spec.path.display(),
        plan.len(),
        cv_note(plan)
    )
}

/// `; 5-fold cross-validation by subject (...)` when the jobs are folds (`cv:`), else nothing.
fn cv_note(plan: &[PlannedJob]) -> String {
    let cv = plan.iter().find_map(|p| match p.config.data.split {
        SplitConfig::Fold { folds, by, .. } if p.stage.is_none() => Some((folds, by)),
        _ => None,
    });
    cv.map_or_else(String::new, |(n, by)| {
        format!(
            "; {n}-fold cross-validation by {by} (fold k/{n} validates on the k-th of {n} \
             contiguous groups of the data set's {by}s, in order, and trains on the others)"
        )
    })
}

pub fn plan_json(spec: &SweepSpec, plan: &[PlannedJob]) -> serde_json::Result<String> {
    let jobs: Vec<serde_json::Value> = plan
        .iter()
        .map(|p| {
            serde_json::json!({
                "hash": p.hash,
                "label": p.label,
                "stage": p.stage,
                "depends_on": p.depends_on,
                "varied": p.varied.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
                "config": p.config,
            })
        })
        .collect();
    serde_json::to_string_pretty(
        &serde_json::json!({ "sweep": spec.name, "file": spec.path, "jobs": jobs }),
    )
}

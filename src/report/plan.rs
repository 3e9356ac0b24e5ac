//! `sweep plan`: the jobs a sweep file expands to, as a table or JSON.

use crate::spec::{PlannedJob, SweepSpec};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

pub fn plan_table(spec: &SweepSpec, plan: &[PlannedJob]) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    // `seed` has its own column.
    let shown = |k: &str| k != "seed";
    let varied: Vec<&str> = plan
        .first()
        .map(|p| {
            p.varied
                .iter()
                .map(|(k, _)| k.as_str())
                .filter(|k| shown(k))
                .collect()
        })
        .unwrap_or_default();
    let mut header = vec!["#", "job", "Model", "seed"];
    header.extend(varied.iter().copied());
    header.push("after");
    table.set_header(header);
    for (i, p) in plan.iter().enumerate() {
        let mut row = vec![
            (i + 1).to_string(),
            p.hash.clone(),
            p.stage
                .clone()
                .map(|s| format!("[{s}] {}", p.label))
                .unwrap_or_else(|| p.label.clone()),
            p.config.seed.to_string(),
        ];
        row.extend(
            p.varied
                .iter()
                .filter(|(k, _)| shown(k))
                .map(|(_, v)| v.clone()),
        );
        row.push(p.depends_on.clone().unwrap_or_default());
        table.add_row(row);
    }
    format!(
        "sweep {} ({}): {} job(s)\n{table}",
        spec.name,
        spec.path.display(),
        plan.len()
    )
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

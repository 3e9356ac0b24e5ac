//! `sweep show JOB`: one job in full: its resolved config, status, every attempt with the
//! reason it ended, its metrics, its artifact folder and the tail of its log.

use crate::metrics::surface::Presence;
use crate::protocol::{ImageMetric, WORKER_LOG};
use crate::store::{AttemptRow, JobRow, Store};
use anyhow::Result;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use std::fmt::Write;
use std::path::Path;

/// Lines of the job's log shown.
const LOG_TAIL_LINES: usize = 20;

/// The job `selector` names (id, hash prefix or label), rendered for a terminal; with
/// `images`, also its per-image results.
pub async fn show(store: &dyn Store, selector: &str, images: bool) -> Result<String> {
    let job = store.find_job(selector).await?;
    let attempts = store.attempts(job.job_id).await?;
    let mut out = String::new();
    header(&mut out, &job)?;
    writeln!(out, "\nconfig:")?;
    for line in config_yaml(&job.config_json).lines() {
        writeln!(out, "  {line}")?;
    }
    if !attempts.is_empty() {
        writeln!(out, "\nattempts:\n{}", attempts_table(&attempts))?;
    }
    if !job.metrics.is_empty() {
        writeln!(out, "\nmetrics:\n{}", metrics_table(&job))?;
    }
    if images {
        let rows = store.image_metrics(job.job_id).await?;
        if rows.is_empty() {
            writeln!(
                out,
                "\nper-image results: none recorded (sweep 0.2 and earlier did not)"
            )?;
        } else {
            writeln!(out, "\nper-image results:\n{}", images_table(&rows))?;
        }
    }
    if let Some(dir) = &job.artifact_dir {
        writeln!(out, "\nartifacts: {dir}")?;
        for (kind, path, iteration) in store.artifacts(job.job_id).await? {
            let at = iteration
                .map(|i| format!(" (iteration {i})"))
                .unwrap_or_default();
            writeln!(out, "  {kind:<10} {path}{at}")?;
        }
        if let Some(tail) = log_tail(&Path::new(dir).join(WORKER_LOG)) {
            writeln!(out, "\nlog ({}, last {LOG_TAIL_LINES} lines):", WORKER_LOG)?;
            for line in tail {
                writeln!(out, "  {line}")?;
            }
        }
    }
    Ok(out.trim_end().to_string())
}

fn header(out: &mut String, job: &JobRow) -> std::fmt::Result {
    writeln!(
        out,
        "job {} ({}) of sweep {}",
        job.job_id, job.hash, job.sweep
    )?;
    writeln!(out, "  model      {}", job.label)?;
    if let Some(stage) = &job.stage {
        writeln!(out, "  stage      {stage}")?;
    }
    let retired = if job.retired { " (retired)" } else { "" };
    writeln!(out, "  status     {}{retired}", job.status)?;
    if let Some(reason) = &job.error {
        writeln!(
            out,
            "  reason     {}",
            reason.lines().next().unwrap_or_default()
        )?;
    }
    let total = job.total_iters.map(|t| t.to_string()).unwrap_or("?".into());
    writeln!(out, "  iteration  {}/{total}", job.iteration)?;
    writeln!(out, "  attempts   {}", job.attempts)?;
    if let Some(v) = &job.sweep_version {
        writeln!(out, "  result by  sweep {v}")?;
    }
    Ok(())
}

/// The stored canonical JSON as YAML (the sweep file's language).
fn config_yaml(config_json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(config_json)
        .ok()
        .and_then(|v| serde_yaml::to_string(&v).ok())
        .unwrap_or_else(|| config_json.to_string())
}

fn attempts_table(attempts: &[AttemptRow]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec!["attempt", "ended as", "failure", "reason", "owner"]);
    for a in attempts {
        t.add_row(vec![
            a.attempt.to_string(),
            match a.ended_as {
                crate::job::JobStatus::Pending => "retried".to_string(),
                s => s.to_string(),
            },
            a.failure
                .map(|f| format!("{f:?}").to_lowercase())
                .unwrap_or_default(),
            a.reason
                .as_deref()
                .and_then(|r| r.lines().next())
                .unwrap_or("")
                .to_string(),
            a.owner.clone().unwrap_or_default(),
        ]);
    }
    t
}

fn metrics_table(job: &JobRow) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec!["split", "metric", "class", "value"]);
    for m in &job.metrics {
        t.add_row(vec![
            m.split.clone(),
            m.name.clone(),
            m.class.map(|c| c.to_string()).unwrap_or("mean".into()),
            format!("{:.2}", m.value),
        ]);
    }
    t
}

fn images_table(rows: &[ImageMetric]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "split", "image", "class", "I", "P", "G", "Dice", "HD95", "ASSD", "unit", "fluid in",
    ]);
    let num = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    for m in rows {
        let presence = m.presence.map(|p| match p {
            Presence::Both => "both",
            Presence::Neither => "neither",
            Presence::LabelOnly => "label only (missed)",
            Presence::PredictionOnly => "prediction only",
        });
        t.add_row(vec![
            m.split.clone(),
            m.image.clone(),
            m.class.to_string(),
            m.intersect.to_string(),
            m.pred.to_string(),
            m.label.to_string(),
            num(m.dice),
            num(m.hd95),
            num(m.assd),
            m.unit.clone(),
            presence.unwrap_or("").to_string(),
        ]);
    }
    t
}

fn log_tail(path: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(path).ok()?;
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let start = lines.len().saturating_sub(LOG_TAIL_LINES);
    Some(lines[start..].to_vec())
}

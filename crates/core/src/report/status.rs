//! `sweep status`: job counts by state and the running jobs with iteration and ETA.

use crate::job::JobStatus;
use crate::store::Store;
use anyhow::{bail, Result};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use std::fmt::Write;

pub async fn status(store: &dyn Store, sweep: Option<&str>) -> Result<String> {
    let sweeps = store.sweeps().await?;
    let selected: Vec<_> = sweeps
        .iter()
        .filter(|s| sweep.is_none_or(|n| n == s.name))
        .collect();
    if selected.is_empty() {
        match sweep {
            Some(name) => {
                let known: Vec<&str> = sweeps.iter().map(|s| s.name.as_str()).collect();
                bail!(
                    "no sweep {name:?} in {} (sweeps there: {})",
                    store.location(),
                    known.join(", ")
                )
            }
            None => bail!("{} holds no sweep yet", store.location()),
        }
    }
    let now = crate::store::now_ms();
    let mut out = String::new();
    let mut counts_table = Table::new();
    counts_table.load_preset(UTF8_FULL_CONDENSED);
    let mut header = vec!["sweep", "jobs"];
    header.extend(JobStatus::ALL.iter().map(|s| s.as_str()));
    counts_table.set_header(header);
    let mut running_table = Table::new();
    running_table.load_preset(UTF8_FULL_CONDENSED);
    running_table.set_header(vec![
        "sweep",
        "job",
        "Model",
        "attempt",
        "iteration",
        "elapsed",
        "ETA",
        "last heartbeat",
        "owner",
    ]);
    let mut any_running = false;
    let mut failed_table = Table::new();
    failed_table.load_preset(UTF8_FULL_CONDENSED);
    failed_table.set_header(vec!["sweep", "job", "hash", "Model", "status", "attempts", "reason"]);
    let mut any_failed = false;
    for s in selected {
        let counts = store.counts(s.id).await?;
        let mut row = vec![s.name.clone(), counts.values().sum::<usize>().to_string()];
        row.extend(
            JobStatus::ALL
                .iter()
                .map(|st| counts.get(st).copied().unwrap_or(0).to_string()),
        );
        counts_table.add_row(row);
        for r in store.report_rows(Some(&s.name)).await? {
            if r.retired || !matches!(r.status, JobStatus::Failed | JobStatus::Diverged) {
                continue;
            }
            any_failed = true;
            failed_table.add_row(vec![
                s.name.clone(),
                r.job_id.to_string(),
                r.hash.clone(),
                r.label.clone(),
                r.status.to_string(),
                r.attempts.to_string(),
                r.reason().unwrap_or("-").to_string(),
            ]);
        }
        for r in store.running(s.id).await? {
            any_running = true;
            let elapsed = r.started_at.map(|t| (now - t).max(0) as f64 / 1e3);
            let total = r.total_iters.unwrap_or(0);
            // Linear ETA from the job's own pace so far.
            let eta = match (elapsed, r.iteration) {
                (Some(e), it) if it > 0 && total > it => Some(e / it as f64 * (total - it) as f64),
                _ => None,
            };
            running_table.add_row(vec![
                s.name.clone(),
                r.id.to_string(),
                r.label.clone(),
                r.attempts.to_string(),
                format!("{}/{}", r.iteration, total),
                elapsed.map(secs).unwrap_or_default(),
                eta.map(secs).unwrap_or_else(|| "-".into()),
                r.heartbeat_at
                    .map(|t| format!("{} ago", secs((now - t).max(0) as f64 / 1e3)))
                    .unwrap_or_default(),
                r.owner.clone().unwrap_or_default(),
            ]);
        }
    }
    writeln!(out, "{counts_table}")?;
    if any_running {
        writeln!(out, "running:\n{running_table}")?;
    }
    if any_failed {
        writeln!(out, "failed or diverged (`sweep show JOB` for the log):\n{failed_table}")?;
    }
    Ok(out.trim_end().to_string())
}

fn secs(s: f64) -> String {
    let s = s.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

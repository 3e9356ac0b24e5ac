//! `sweep status`: job counts by state, the running jobs with iteration and ETA, and the
//! failed jobs with the reason each failed.

use crate::job::JobStatus;
use crate::store::{Store, SweepRow};
use anyhow::{bail, Result};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use std::fmt::Write;

pub async fn status(store: &dyn Store, sweep: Option<&str>) -> Result<String> {
    let selected = select(store, sweep).await?;
    let mut counts = table(
        ["sweep", "jobs"]
            .into_iter()
            .chain(JobStatus::ALL.iter().map(|s| s.as_str())),
    );
    let mut running = table([
        "sweep",
        "job",
        "Model",
        "attempt",
        "iteration",
        "elapsed",
        "ETA",
        "last heartbeat",
        "lease",
        "node",
        "pid",
        "slurm job",
    ]);
    let mut failed = table([
        "sweep", "job", "hash", "Model", "status", "attempts", "reason",
    ]);
    for s in &selected {
        counts.add_row(count_row(store, s).await?);
        for row in running_rows(store, s).await? {
            running.add_row(row);
        }
        for row in failed_rows(store, s).await? {
            failed.add_row(row);
        }
    }
    let mut out = String::new();
    writeln!(out, "{counts}")?;
    for s in &selected {
        let log = store.search_log(s.id).await?;
        if let Some(line) = super::replay::summary(&s.name, &log) {
            writeln!(out, "{line}")?;
        }
    }
    if running.row_count() > 0 {
        writeln!(out, "running:\n{running}")?;
    }
    if failed.row_count() > 0 {
        writeln!(
            out,
            "failed or diverged (`sweep show JOB` for its attempts and log):\n{failed}"
        )?;
    }
    Ok(out.trim_end().to_string())
}

/// The sweeps asked for (all when `sweep` is None); an error names the known ones.
async fn select(store: &dyn Store, sweep: Option<&str>) -> Result<Vec<SweepRow>> {
    let sweeps = store.sweeps().await?;
    let known: Vec<&str> = sweeps.iter().map(|s| s.name.as_str()).collect();
    let selected: Vec<SweepRow> = sweeps
        .iter()
        .filter(|s| sweep.is_none_or(|n| n == s.name))
        .cloned()
        .collect();
    match (selected.is_empty(), sweep) {
        (false, _) => Ok(selected),
        (true, Some(name)) => bail!(
            "no sweep {name:?} in {} (sweeps there: {})",
            store.location(),
            known.join(", ")
        ),
        (true, None) => bail!("{} holds no sweep yet", store.location()),
    }
}

fn table<'a>(header: impl IntoIterator<Item = &'a str>) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(header.into_iter().collect::<Vec<_>>());
    t
}

async fn count_row(store: &dyn Store, s: &SweepRow) -> Result<Vec<String>> {
    let counts = store.counts(s.id).await?;
    let mut row = vec![s.name.clone(), counts.values().sum::<usize>().to_string()];
    row.extend(
        JobStatus::ALL
            .iter()
            .map(|st| counts.get(st).copied().unwrap_or(0).to_string()),
    );
    Ok(row)
}

async fn running_rows(store: &dyn Store, s: &SweepRow) -> Result<Vec<Vec<String>>> {
    let now = crate::store::now_ms();
    let rows = store.running(s.id).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let elapsed = r.started_at.map(|t| (now - t).max(0) as f64 / 1e3);
            let owner = r.owner.as_deref().and_then(crate::store::Owner::parse);
            let total = r.total_iters.unwrap_or(0);
            // Linear ETA from the job's own pace so far.
            let eta = match (elapsed, r.iteration) {
                (Some(e), it) if it > 0 && total > it => Some(e / it as f64 * (total - it) as f64),
                _ => None,
            };
            vec![
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
                r.lease_expires_at
                    .map(|t| lease_left(t - now))
                    .unwrap_or_else(|| "-".into()),
                owner
                    .as_ref()
                    .map(|o| o.host.clone())
                    .unwrap_or_else(|| r.owner.clone().unwrap_or_default()),
                owner
                    .as_ref()
                    .map(|o| o.pid.to_string())
                    .unwrap_or_default(),
                r.slurm_job.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect())
}

/// "12s left" while the lease holds, "expired 3s ago" once any agent may take the job.
fn lease_left(ms: i64) -> String {
    if ms >= 0 {
        format!("{} left", secs(ms as f64 / 1e3))
    } else {
        format!("expired {} ago", secs(-ms as f64 / 1e3))
    }
}

/// Current jobs that ended failed or diverged, with the first line of their error.
async fn failed_rows(store: &dyn Store, s: &SweepRow) -> Result<Vec<Vec<String>>> {
    let rows = store.report_rows(Some(&s.name)).await?;
    Ok(rows
        .iter()
        .filter(|r| !r.retired && matches!(r.status, JobStatus::Failed | JobStatus::Diverged))
        .map(|r| {
            vec![
                s.name.clone(),
                r.job_id.to_string(),
                r.hash.clone(),
                r.label.clone(),
                r.status.to_string(),
                r.attempts.to_string(),
                r.reason().unwrap_or("-").to_string(),
            ]
        })
        .collect())
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

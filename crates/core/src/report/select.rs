//! Which trained runs a selector names, for commands that use models (`sweep predict`,
//! `sweep export`): a configuration's label names every seed and fold of it (an ensemble);
//! anything else names one job as `sweep show` does (id, hash prefix, label).

use super::group_rows;
use crate::job::JobStatus;
use crate::store::{JobRow, Store};
use anyhow::{bail, Context, Result};

/// The succeeded, current runs `selector` names (of `sweep`, or of every sweep), in job-id
/// order. Rows scored from another tool's predictions have no network and are refused.
pub async fn runs(store: &dyn Store, sweep: Option<&str>, selector: &str) -> Result<Vec<JobRow>> {
    let rows: Vec<JobRow> = store
        .report_rows(sweep)
        .await?
        .into_iter()
        .filter(|r| r.status == JobStatus::Succeeded)
        .collect();
    let s = selector.trim();
    let groups = group_rows(&rows, false);
    let matching: Vec<_> = groups
        .iter()
        .filter(|g| g.label.eq_ignore_ascii_case(s))
        .collect();
    let chosen: Vec<JobRow> = match matching.as_slice() {
        [g] => g.runs.iter().map(|r| (*r).clone()).collect(),
        [] => {
            let labels: Vec<&str> = groups.iter().map(|g| g.label.as_str()).collect();
            let job = store
                .find_job(s)
                .await
                .with_context(|| format!("configurations with results: {}", labels.join("; ")))?;
            match rows.iter().find(|r| r.job_id == job.job_id) {
                Some(row) => vec![row.clone()],
                None => bail!(
                    "job {} ({}) is {}: it has no trained model (only a succeeded, current job has)",
                    job.job_id,
                    job.label,
                    job.status
                ),
            }
        }
        several => bail!(
            "{s:?} is a configuration of {} sweeps ({}): name one with --sweep",
            several.len(),
            several
                .iter()
                .map(|g| g.sweep.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    if let Some(r) = chosen.iter().find(|r| r.external.is_some()) {
        bail!(
            "{} (job {}) was scored from another program's predictions (`sweep evaluate`): there is no network to use",
            r.label,
            r.job_id
        );
    }
    Ok(chosen)
}

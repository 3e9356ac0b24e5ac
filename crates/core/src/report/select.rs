//! Which runs a selector names: a configuration's label names every seed and fold of it;
//! anything else names one job as `sweep show` does ([`Store::find_job`]: id, hash prefix,
//! label). `sweep compare` picks its two sides this way, `sweep predict` and `sweep export`
//! their networks (an ensemble when the label has several runs).

use super::{group_rows, Group};
use crate::job::JobStatus;
use crate::store::{JobRow, Store};
use anyhow::{bail, Context, Result};

/// The succeeded jobs of `sweep` (or of every sweep), as the report reads them.
pub(crate) async fn succeeded_rows(store: &dyn Store, sweep: Option<&str>) -> Result<Vec<JobRow>> {
    Ok(store
        .report_rows(sweep)
        .await?
        .into_iter()
        .filter(|r| r.status == JobStatus::Succeeded)
        .collect())
}

/// The group of `groups` (made from `rows`) that `selector` names, or the one job it names,
/// which must be among `rows`.
pub(crate) async fn group<'a>(
    store: &dyn Store,
    rows: &'a [JobRow],
    groups: &[Group<'a>],
    selector: &str,
) -> Result<Group<'a>> {
    let s = selector.trim();
    let named = |g: &&Group| g.label.eq_ignore_ascii_case(s) || g.shown_label() == s;
    if let Some(g) = groups.iter().find(named) {
        return Ok(g.clone());
    }
    let labels: Vec<&str> = groups.iter().map(|g| g.label.as_str()).collect();
    let job = store
        .find_job(s)
        .await
        .with_context(|| format!("configurations: {}", labels.join("; ")))?;
    let Some(row) = rows.iter().find(|r| r.job_id == job.job_id) else {
        bail!(
            "job {} ({}) is {}, not a succeeded current job of the sweep(s) here: it has no result",
            job.job_id,
            job.label,
            job.status
        );
    };
    Ok(Group {
        sweep: row.sweep.clone(),
        label: row.label.clone(),
        status: row.status.to_string(),
        runs: vec![row],
    })
}

/// The trained runs `selector` names (of `sweep`, or of every sweep), in job-id order. A
/// label of several sweeps must be narrowed with `--sweep`; rows scored from another
/// tool's predictions have no network and are refused.
pub async fn runs(store: &dyn Store, sweep: Option<&str>, selector: &str) -> Result<Vec<JobRow>> {
    let rows = succeeded_rows(store, sweep).await?;
    let groups = group_rows(&rows, false);
    let s = selector.trim();
    let sweeps: Vec<&str> = groups
        .iter()
        .filter(|g| g.label.eq_ignore_ascii_case(s))
        .map(|g| g.sweep.as_str())
        .collect();
    if sweeps.len() > 1 {
        bail!(
            "{s:?} is a configuration of {} sweeps ({}): name one with --sweep",
            sweeps.len(),
            sweeps.join(", ")
        );
    }
    let chosen = group(store, &rows, &groups, s).await?;
    if let Some(r) = chosen.runs.iter().find(|r| r.external.is_some()) {
        bail!(
            "{} (job {}) was scored from another program's predictions (`sweep evaluate`): there is no network to use",
            r.label,
            r.job_id
        );
    }
    Ok(chosen.runs.into_iter().cloned().collect())
}

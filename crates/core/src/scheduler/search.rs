//! The sweep file's side of an adaptive search: building the jobs of a proposed trial, in
//! `sweep run` from the file it was given, in an agent from the effective file the database
//! holds (so every node builds the same jobs).

use crate::store::{NewJob, Store, TrialJobs};
use crate::sweepfile::{self, PlannedJob, SweepSpec};
use anyhow::{Context, Result};
use std::path::Path;
use std::sync::Arc;

/// A search's trials, built from its sweep file.
#[derive(Debug)]
pub struct SpecTrials(pub SweepSpec);

impl TrialJobs for SpecTrials {
    fn jobs(&self, trial: u64, params: &[serde_json::Value]) -> Result<Vec<NewJob>, String> {
        let planned = self.0.trial_jobs(trial, params)?;
        Ok(planned.iter().map(new_job).collect())
    }

    fn max_attempts(&self) -> u32 {
        self.0.max_attempts
    }
}

/// A planned job as the store enqueues it.
pub fn new_job(p: &PlannedJob) -> NewJob {
    NewJob {
        hash: p.hash.clone(),
        stage: p.stage.clone(),
        label: p.label.clone(),
        config_json: serde_json::to_string(&p.config).expect("config serialises"),
        seed: p.config.seed(),
        depends_on: p.depends_on.clone(),
        continues: p.continues,
        classes: p.classes.clone(),
    }
}

/// The search of sweep `sweep_id`, if it is one, from the effective sweep file recorded when
/// it was registered (`spec_path` names it in messages).
pub async fn load(
    store: &dyn Store,
    sweep_id: i64,
    spec_path: &str,
) -> Result<Option<Arc<dyn TrialJobs>>> {
    let Some(yaml) = store.search_spec(sweep_id).await? else {
        return Ok(None);
    };
    let spec = sweepfile::parse(Path::new(spec_path), &yaml, &[]).with_context(|| {
        format!(
            "sweep {sweep_id}: the search recorded in {} no longer parses",
            store.location()
        )
    })?;
    Ok(Some(Arc::new(SpecTrials(spec))))
}

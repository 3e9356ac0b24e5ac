//! Rows as the database returns them, and their conversion to the store's types.

use super::{opt_usize, status};
use crate::job::FailureKind;
use crate::protocol::MetricValue;
use crate::store::{AttemptRow, JobRow};
use anyhow::Result;
use sqlx::FromRow;

#[derive(FromRow)]
pub(super) struct ClaimRecord {
    pub id: i64,
    pub sweep_id: i64,
    pub hash: String,
    pub label: String,
    pub config_json: String,
    pub attempts: i64,
    pub failures: i64,
    pub max_attempts: i64,
    pub artifact_dir: Option<String>,
    pub depends_on: Option<String>,
    pub pause_at: Option<i64>,
    pub continues: i64,
    pub keep_state: i64,
}

#[derive(FromRow)]
pub(super) struct SweepRecord {
    pub id: i64,
    pub name: String,
    pub spec_path: String,
    pub runs_dir: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub jobs: i64,
    pub succeeded: i64,
}

#[derive(FromRow)]
pub(super) struct RunningRecord {
    pub id: i64,
    pub label: String,
    pub attempts: i64,
    pub iteration: i64,
    pub total_iters: Option<i64>,
    pub started_at: Option<i64>,
    pub heartbeat_at: Option<i64>,
    pub owner: Option<String>,
    pub slurm_job: Option<String>,
    pub lease_expires_at: Option<i64>,
}

#[derive(FromRow)]
pub(super) struct BlockedRecord {
    pub id: i64,
    pub label: String,
    pub depends_on: String,
    pub dep_status: Option<String>,
}

#[derive(FromRow)]
pub(super) struct JobRecord {
    pub sweep: String,
    pub id: i64,
    pub hash: String,
    pub stage: Option<String>,
    pub label: String,
    pub status: String,
    pub attempts: i64,
    pub seed: i64,
    pub config_json: String,
    pub artifact_dir: Option<String>,
    pub error: Option<String>,
    pub iteration: i64,
    pub total_iters: Option<i64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub retired_at: Option<i64>,
    pub sweep_version: Option<String>,
    pub classes: Option<String>,
    pub data_fingerprint: Option<String>,
    pub external: Option<String>,
}

impl JobRecord {
    pub fn into_row(self, metrics: Vec<MetricValue>) -> Result<JobRow> {
        Ok(JobRow {
            sweep: self.sweep,
            job_id: self.id,
            hash: self.hash,
            stage: self.stage,
            label: self.label,
            status: status(&self.status)?,
            attempts: self.attempts as u32,
            seed: self.seed as u64,
            config_json: self.config_json,
            metrics,
            artifact_dir: self.artifact_dir,
            error: self.error,
            iteration: self.iteration.max(0) as usize,
            total_iters: opt_usize(self.total_iters),
            started_at: self.started_at,
            finished_at: self.finished_at,
            retired: self.retired_at.is_some(),
            sweep_version: self.sweep_version,
            classes: self
                .classes
                .and_then(|c| serde_json::from_str(&c).ok())
                .unwrap_or_default(),
            data_fingerprint: self.data_fingerprint,
            external: match self.external {
                Some(e) => Some(serde_json::from_str(&e).map_err(|err| {
                    anyhow::anyhow!(
                        "job {}: its external record {e:?} does not read: {err}",
                        self.id
                    )
                })?),
                None => None,
            },
        })
    }
}

#[derive(FromRow)]
pub(super) struct MetricRecord {
    pub job_id: i64,
    pub split: String,
    pub name: String,
    pub class: Option<i64>,
    pub value: Option<f64>,
}

#[derive(FromRow)]
pub(super) struct AttemptRecord {
    pub attempt: i64,
    pub owner: Option<String>,
    pub started_at: Option<i64>,
    pub ended_at: i64,
    pub ended_as: String,
    pub failure: Option<String>,
    pub reason: Option<String>,
    pub sweep_version: Option<String>,
}

#[derive(FromRow)]
pub(super) struct CurveRecord {
    pub iteration: i64,
    pub loss: Option<f64>,
    pub lr: Option<f64>,
    pub secs: Option<f64>,
}

impl AttemptRecord {
    pub fn into_row(self) -> Result<AttemptRow> {
        Ok(AttemptRow {
            attempt: self.attempt as u32,
            owner: self.owner,
            started_at: self.started_at,
            ended_at: self.ended_at,
            ended_as: status(&self.ended_as)?,
            failure: match self.failure.as_deref() {
                Some("permanent") => Some(FailureKind::Permanent),
                Some(_) => Some(FailureKind::Transient),
                None => None,
            },
            reason: self.reason,
            sweep_version: self.sweep_version,
        })
    }
}

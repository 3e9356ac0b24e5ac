//! The jobs table as a queue: claims under a lease, heartbeats that renew it, the end of an
//! attempt, and taking back what gone owners left running.
//!
//! Every write about a job is fenced: it names the owner and the attempt number it claimed,
//! and is applied only while the row still says both. A reclaim increments the attempt, so
//! a stalled owner's late heartbeat, curve or result is refused ([`StoreError::NotOwner`]).

use super::search::JobReport;
use super::{batch, now_ms, SqlStore, Tx};
use crate::job::{FailureKind, JobStatus, RetryRule};
use crate::protocol::MetricValue;
use crate::store::{
    ClaimRequest, ClaimedJob, Ending, Fence, Finish, LeaseState, NewArtifact, StoreError,
    TrialJobs, ARTIFACT_KINDS, DEFAULT_LEASE,
};
use anyhow::{Context, Result};
use std::time::Duration;

fn failure_kind_str(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Transient => "transient",
        FailureKind::Permanent => "permanent",
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl SqlStore {
    pub(super) async fn claim_job(&self, req: ClaimRequest<'_>) -> Result<Option<ClaimedJob>> {
        let now = now_ms();
        let sweeps = req
            .sweeps
            .map(|ids| serde_json::to_string(ids).expect("ids serialise"));
        // One statement: the candidate row is locked (PostgreSQL: skipped by concurrent
        // claimers) and updated in the same short transaction; the outer status check
        // re-tests the row once it is locked.
        let sql = format!(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, owner = $1,
                 heartbeat_at = $2, started_at = $2, finished_at = NULL,
                 lease_ms = $3, lease_expires_at = {now_db} + $3, slurm_job = $4
             WHERE status IN ('pending', 'interrupted') AND id = (
                 SELECT j.id FROM jobs j
                 WHERE ($5 IS NULL OR j.sweep_id IN ({ids}))
                   AND j.status IN ('pending', 'interrupted') AND j.retired_at IS NULL
                   AND (j.depends_on IS NULL OR EXISTS (
                        SELECT 1 FROM jobs d WHERE d.sweep_id = j.sweep_id
                          AND d.hash = j.depends_on AND d.status = 'succeeded'))
                 ORDER BY CASE j.status WHEN 'interrupted' THEN 0 ELSE 1 END, j.id
                 LIMIT 1 {skip_locked})
             RETURNING id, sweep_id, hash, label, config_json, attempts, failures, max_attempts,
                 artifact_dir, depends_on, pause_at, continues,
                 CASE WHEN EXISTS (SELECT 1 FROM jobs c WHERE c.sweep_id = jobs.sweep_id
                     AND c.depends_on = jobs.hash AND c.continues = 1)
                     THEN CAST(1 AS BIGINT) ELSE CAST(0 AS BIGINT) END AS keep_state",
            now_db = self.dialect.now_ms(),
            ids = self.dialect.json_ids("$5"),
            skip_locked = self.dialect.skip_locked(),
        );
        let _turn = self.write_turn().await;
        let row: Option<super::records::ClaimRecord> = sqlx::query_as(&sql)
            .bind(req.owner.to_string())
            .bind(now)
            .bind(millis(req.lease))
            .bind(req.slurm_job)
            .bind(sweeps)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.query_error("claiming a job"))?;
        Ok(row.map(|r| ClaimedJob {
            id: r.id,
            sweep_id: r.sweep_id,
            hash: r.hash,
            label: r.label,
            config_json: r.config_json,
            attempts: r.attempts as u32,
            failures: r.failures as u32,
            max_attempts: r.max_attempts as u32,
            artifact_dir: r.artifact_dir,
            init_from_hash: r.depends_on,
            pause_at: r.pause_at.map(|p| p as usize),
            continues: r.continues != 0,
            keep_state: r.keep_state != 0,
        }))
    }

    pub(super) async fn renew(&self, fence: &Fence, iteration: usize) -> Result<bool> {
        let sql = format!(
            "UPDATE jobs SET heartbeat_at = $1, iteration = $2,
                 lease_expires_at = {} + COALESCE(lease_ms, $3)
             WHERE id = $4 AND owner = $5 AND attempts = $6 AND status = 'running'",
            self.dialect.now_ms()
        );
        let _turn = self.write_turn().await;
        let r = sqlx::query(&sql)
            .bind(now_ms())
            .bind(iteration as i64)
            .bind(millis(DEFAULT_LEASE))
            .bind(fence.job_id)
            .bind(&fence.owner)
            .bind(fence.attempt as i64)
            .execute(&self.pool)
            .await
            .map_err(self.query_error(format!("heartbeat of job {}", fence.job_id)))?;
        Ok(r.rows_affected() == 1)
    }

    /// Inside `tx`: fails with [`StoreError::NotOwner`] unless the job is still the fence's,
    /// and (PostgreSQL) keeps its row locked until `tx` ends, so no reclaim slips in between.
    pub(super) async fn hold_fence(&self, tx: &mut Tx, fence: &Fence) -> Result<()> {
        let r = sqlx::query(
            "UPDATE jobs SET heartbeat_at = heartbeat_at WHERE id = $1 AND owner = $2 AND attempts = $3",
        )
        .bind(fence.job_id)
        .bind(&fence.owner)
        .bind(fence.attempt as i64)
        .execute(&mut **tx)
        .await
        .map_err(self.query_error(format!("checking the claim on job {}", fence.job_id)))?;
        if r.rows_affected() == 1 {
            Ok(())
        } else {
            Err(not_owner(fence))
        }
    }

    /// Ends the attempt: what the job reported last, the attempt, the job's new status and
    /// (a success) its final checkpoint, in one transaction under the fence.
    pub(super) async fn record_end(
        &self,
        fence: &Fence,
        ending: Ending,
        trials: Option<&dyn TrialJobs>,
    ) -> Result<JobStatus> {
        check_artifact_kinds(fence, &ending.reported.artifacts)?;
        check_artifact_kinds(fence, ending.final_checkpoint.as_slice())?;
        let Ending {
            finish,
            mut reported,
            final_checkpoint,
        } = ending;
        let job_id = fence.job_id;
        let _turn = self.write_turn().await;
        let mut tx = self.begin().await?;
        let sql = format!(
            "SELECT failures, max_attempts FROM jobs
             WHERE id = $1 AND owner = $2 AND attempts = $3 AND status = 'running' {}",
            self.dialect.for_update()
        );
        let row: Option<(i64, i64)> = sqlx::query_as(&sql)
            .bind(job_id)
            .bind(&fence.owner)
            .bind(fence.attempt as i64)
            .fetch_optional(&mut *tx)
            .await
            .map_err(self.query_error(format!("reading job {job_id}")))?;
        let Some((failures, max_attempts)) = row else {
            return Err(not_owner(fence));
        };
        // A success's final checkpoint goes with the job's last reports: one statement.
        if matches!(finish, Finish::Succeeded { .. }) {
            reported.artifacts.extend(final_checkpoint);
        }
        Self::insert_reported(&mut tx, job_id, &reported)
            .await
            .map_err(self.query_error(format!("recording the last reports of job {job_id}")))?;
        let trial = self.trial_of(&mut tx, job_id).await?;
        let ended = trial.as_ref().map(|_| finish.clone());
        let mut new_status =
            Self::record_outcome(&mut tx, job_id, finish, failures, max_attempts).await?;
        let report = ended.as_ref().and_then(|f| search_report(f, new_status));
        if let (Some(at), Some(report)) = (trial, report) {
            let trials = trials.with_context(|| {
                format!("job {job_id} is a trial of an adaptive search, but its end was recorded without the search")
            })?;
            self.search_report(&mut tx, job_id, &at, report, trials, &fence.owner)
                .await?;
            // A decision may have moved the job on already (promoted at once, or stopped).
            let now: String = sqlx::query_scalar("SELECT status FROM jobs WHERE id = $1")
                .bind(job_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(self.query_error(format!("reading job {job_id}")))?;
            new_status = now.parse()?;
        }
        tx.commit()
            .await
            .map_err(self.query_error(format!("recording the end of job {job_id}")))?;
        Ok(new_status)
    }

    /// The attempt row and the job's new status for how the attempt ended (inside the
    /// transaction that holds the fence).
    async fn record_outcome(
        tx: &mut Tx,
        job_id: i64,
        finish: Finish,
        failures: i64,
        max_attempts: i64,
    ) -> Result<JobStatus> {
        let rule = RetryRule {
            max_attempts: max_attempts as u32,
        };
        let new_status = match &finish {
            Finish::Succeeded {
                metrics,
                images,
                iterations,
                sweep_version,
                data,
            } => {
                let version = sweep_version.as_deref();
                Self::record_attempt(tx, job_id, JobStatus::Succeeded, None, None, version).await?;
                let done = (*iterations, version, data.as_deref());
                Self::finish_succeeded(tx, job_id, metrics, done).await?;
                Self::insert_images(tx, job_id, images).await?;
                JobStatus::Succeeded
            }
            Finish::Diverged {
                iter,
                last_finite_loss,
            } => Self::finish_diverged(tx, job_id, *iter, *last_finite_loss).await?,
            Finish::Failed {
                reason,
                stderr_tail,
                kind,
            } => {
                let failures = failures as u32 + 1;
                let next = rule.status_after_failure(failures, *kind);
                Self::record_attempt(tx, job_id, next, Some(*kind), Some(reason), None).await?;
                Self::finish_failed(tx, job_id, next, failures, reason, stderr_tail).await?;
                next
            }
            Finish::Paused { iter, metrics, .. } => {
                Self::record_attempt(tx, job_id, JobStatus::Paused, None, None, None).await?;
                Self::insert_eval(tx, job_id, *iter, metrics)
                    .await
                    .with_context(|| format!("recording the rung evaluation of job {job_id}"))?;
                sqlx::query(
                    "UPDATE jobs SET status = 'paused', owner = NULL, lease_expires_at = NULL,
                         heartbeat_at = $1, iteration = $2 WHERE id = $3",
                )
                .bind(now_ms())
                .bind(*iter as i64)
                .bind(job_id)
                .execute(&mut **tx)
                .await?;
                JobStatus::Paused
            }
            Finish::Interrupted => {
                Self::record_attempt(tx, job_id, JobStatus::Interrupted, None, None, None).await?;
                sqlx::query(
                    "UPDATE jobs SET status = 'interrupted', owner = NULL, lease_expires_at = NULL,
                         heartbeat_at = $1 WHERE id = $2",
                )
                .bind(now_ms())
                .bind(job_id)
                .execute(&mut **tx)
                .await?;
                JobStatus::Interrupted
            }
        };
        Ok(new_status)
    }

    pub(super) async fn release_gone(
        &self,
        sweep_id: Option<i64>,
        is_gone: &(dyn for<'o> Fn(&'o str, LeaseState) -> bool + Sync),
    ) -> Result<Vec<i64>> {
        let sql = format!(
            "SELECT id, owner, attempts,
                 CASE WHEN lease_expires_at IS NULL OR lease_expires_at < {} THEN 1 ELSE 0 END
             FROM jobs WHERE status = 'running' AND ($1 IS NULL OR sweep_id = $1) ORDER BY id",
            self.dialect.now_ms()
        );
        let rows: Vec<(i64, Option<String>, i64, i64)> = sqlx::query_as(&sql)
            .bind(sweep_id)
            .fetch_all(&self.pool)
            .await
            .map_err(self.query_error("reading the running jobs"))?;
        let mut released = Vec::new();
        for (id, owner, attempt, expired) in rows {
            let owner = owner.unwrap_or_default();
            let lease = LeaseState {
                expired: expired != 0,
            };
            if !is_gone(&owner, lease) {
                continue;
            }
            let reason = if lease.expired {
                format!("its lease expired: agent {owner} stopped renewing it (node down, stalled or cut off)")
            } else {
                format!("its orchestrator {owner} is no longer running")
            };
            if self.release_one(id, attempt, &reason).await? {
                released.push(id);
            }
        }
        Ok(released)
    }

    /// Back to the queue (resumable) if the job is still on the attempt seen: a job that
    /// moved on meanwhile is left alone.
    async fn release_one(&self, id: i64, attempt: i64, reason: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        let sql = format!(
            "SELECT id FROM jobs WHERE id = $1 AND status = 'running' AND attempts = $2 {}",
            self.dialect.for_update()
        );
        let still: Option<i64> = sqlx::query_scalar(&sql)
            .bind(id)
            .bind(attempt)
            .fetch_optional(&mut *tx)
            .await?;
        if still.is_none() {
            return Ok(false);
        }
        Self::record_attempt(
            &mut tx,
            id,
            JobStatus::Interrupted,
            None,
            Some(reason),
            None,
        )
        .await?;
        sqlx::query(
            "UPDATE jobs SET status = 'interrupted', owner = NULL, lease_expires_at = NULL, error = $1
             WHERE id = $2",
        )
        .bind(reason)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit()
            .await
            .map_err(self.query_error(format!("releasing job {id}")))?;
        Ok(true)
    }

    pub(super) async fn interrupt(&self, fence: &Fence) -> Result<()> {
        sqlx::query(
            "UPDATE jobs SET status = 'interrupted', owner = NULL, lease_expires_at = NULL,
                 heartbeat_at = $1
             WHERE id = $2 AND owner = $3 AND attempts = $4 AND status = 'running'",
        )
        .bind(now_ms())
        .bind(fence.job_id)
        .bind(&fence.owner)
        .bind(fence.attempt as i64)
        .execute(&self.pool)
        .await
        .map_err(self.query_error(format!("interrupting job {}", fence.job_id)))?;
        Ok(())
    }

    /// The attempt row, read from the job's row before the job moves on.
    async fn record_attempt(
        tx: &mut Tx,
        job_id: i64,
        ended_as: JobStatus,
        failure: Option<FailureKind>,
        reason: Option<&str>,
        sweep_version: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO attempts (job_id, attempt, owner, started_at, ended_at, ended_as, failure, reason, sweep_version)
             SELECT id, attempts, owner, started_at, $1, $2, $3, $4, $5 FROM jobs WHERE id = $6
             ON CONFLICT (job_id, attempt) DO UPDATE SET ended_at = excluded.ended_at,
                 ended_as = excluded.ended_as, failure = excluded.failure, reason = excluded.reason,
                 sweep_version = excluded.sweep_version",
        )
        .bind(now_ms())
        .bind(ended_as.as_str())
        .bind(failure.map(failure_kind_str))
        .bind(reason)
        .bind(sweep_version)
        .bind(job_id)
        .execute(&mut **tx)
        .await
        .with_context(|| format!("recording the attempt of job {job_id}"))?;
        Ok(())
    }

    async fn finish_succeeded(
        tx: &mut Tx,
        job_id: i64,
        metrics: &[MetricValue],
        (iterations, sweep_version, data): (usize, Option<&str>, Option<&str>),
    ) -> Result<()> {
        sqlx::query("DELETE FROM metrics WHERE job_id = $1")
            .bind(job_id)
            .execute(&mut **tx)
            .await?;
        Self::insert_metrics(tx, job_id, metrics).await?;
        let now = now_ms();
        sqlx::query(
            "UPDATE jobs SET status = 'succeeded', finished_at = $1, heartbeat_at = $1,
                 iteration = $2, error = NULL, stderr_tail = NULL, sweep_version = $3,
                 lease_expires_at = NULL, data_fingerprint = $4 WHERE id = $5",
        )
        .bind(now)
        .bind(iterations as i64)
        .bind(sweep_version)
        .bind(data)
        .bind(job_id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub(super) async fn insert_metrics(
        tx: &mut Tx,
        job_id: i64,
        metrics: &[MetricValue],
    ) -> Result<()> {
        Self::insert_metric_rows(tx, job_id, None, metrics)
            .await
            .with_context(|| format!("recording the metrics of job {job_id}"))
    }

    /// A job's metric rows, many per statement: its result (`metrics`), or one iteration's
    /// validation (`eval_curves`, with `iteration`).
    pub(super) async fn insert_metric_rows(
        tx: &mut Tx,
        job_id: i64,
        iteration: Option<usize>,
        values: &[MetricValue],
    ) -> Result<(), sqlx::Error> {
        let (table, width) = match iteration {
            None => ("metrics (job_id, split, name, class, value)", 5),
            Some(_) => (
                "eval_curves (job_id, iteration, split, name, class, value)",
                6,
            ),
        };
        for chunk in values.chunks(batch::rows_per_statement(width)) {
            let rows = batch::values_rows(chunk.len(), width, 1);
            let sql = format!("INSERT INTO {table} VALUES {rows}");
            let mut q = sqlx::query(&sql);
            for m in chunk {
                q = q.bind(job_id);
                if let Some(i) = iteration {
                    q = q.bind(i as i64);
                }
                q = q
                    .bind(&m.split)
                    .bind(&m.name)
                    .bind(m.class.map(|c| c as i64))
                    .bind(m.value);
            }
            q.execute(&mut **tx).await?;
        }
        Ok(())
    }

    async fn finish_diverged(
        tx: &mut Tx,
        job_id: i64,
        iter: usize,
        last_finite_loss: Option<f64>,
    ) -> Result<JobStatus> {
        let last = last_finite_loss
            .map(|l| format!("last finite loss {l}"))
            .unwrap_or_else(|| "no finite loss".into());
        let reason = format!("loss diverged at iteration {iter} ({last})");
        Self::record_attempt(tx, job_id, JobStatus::Diverged, None, Some(&reason), None).await?;
        sqlx::query(
            "UPDATE jobs SET status = 'diverged', finished_at = $1, heartbeat_at = $1,
                 iteration = $2, error = $3, lease_expires_at = NULL WHERE id = $4",
        )
        .bind(now_ms())
        .bind(iter as i64)
        .bind(&reason)
        .bind(job_id)
        .execute(&mut **tx)
        .await?;
        Ok(JobStatus::Diverged)
    }

    /// `next`: pending (retried: back to the queue, no owner) or failed (terminal: the
    /// owner is kept for the record).
    async fn finish_failed(
        tx: &mut Tx,
        job_id: i64,
        next: JobStatus,
        failures: u32,
        reason: &str,
        stderr_tail: &str,
    ) -> Result<()> {
        let sql = if next == JobStatus::Pending {
            "UPDATE jobs SET status = 'pending', owner = NULL, heartbeat_at = $1, failures = $2,
                 finished_at = $3, error = $4, stderr_tail = $5, lease_expires_at = NULL WHERE id = $6"
        } else {
            "UPDATE jobs SET status = 'failed', heartbeat_at = $1, failures = $2,
                 finished_at = $3, error = $4, stderr_tail = $5, lease_expires_at = NULL WHERE id = $6"
        };
        let now = now_ms();
        sqlx::query(sql)
            .bind(now)
            .bind(failures as i64)
            .bind((next == JobStatus::Failed).then_some(now))
            .bind(reason)
            .bind(stderr_tail)
            .bind(job_id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

/// What an attempt's end is to its trial's search: a rung or the end reached, or the job
/// failed for good (a retried failure and an interruption are nothing yet).
fn search_report(finish: &Finish, status: JobStatus) -> Option<JobReport<'_>> {
    match finish {
        Finish::Succeeded {
            metrics,
            images,
            iterations,
            ..
        } => Some(JobReport::Reached {
            iter: *iterations,
            metrics,
            images,
        }),
        Finish::Paused {
            iter,
            metrics,
            images,
        } => Some(JobReport::Reached {
            iter: *iter,
            metrics,
            images,
        }),
        Finish::Diverged { iter, .. } => Some(JobReport::Failed {
            reason: format!("diverged at iteration {iter}"),
        }),
        Finish::Failed { reason, .. } if status == JobStatus::Failed => Some(JobReport::Failed {
            reason: reason.clone(),
        }),
        Finish::Failed { .. } | Finish::Interrupted => None,
    }
}

pub(super) fn not_owner(fence: &Fence) -> anyhow::Error {
    StoreError::NotOwner {
        job_id: fence.job_id,
        attempt: fence.attempt,
        owner: fence.owner.clone(),
    }
    .into()
}

/// Refuses an artifact of an unknown kind before anything is written.
pub(super) fn check_artifact_kinds(fence: &Fence, artifacts: &[NewArtifact]) -> Result<()> {
    match artifacts
        .iter()
        .find(|a| !ARTIFACT_KINDS.contains(&a.kind.as_str()))
    {
        Some(a) => Err(StoreError::Invalid(format!(
            "artifact kind {:?} of job {}: expected one of {ARTIFACT_KINDS:?}",
            a.kind, fence.job_id
        ))
        .into()),
        None => Ok(()),
    }
}

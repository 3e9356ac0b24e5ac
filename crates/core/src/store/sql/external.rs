//! Recording an external result (`sweep evaluate`): one transaction that finds the row the
//! result already is, or writes it and retires the earlier rows of the same name.

use super::{now_ms, to_i64, SqlStore, Tx};
use crate::store::{NewExternal, Outcome, Recorded, StoreError};
use anyhow::{Context, Result};

impl SqlStore {
    pub(super) async fn write_external(&self, new: &NewExternal) -> Result<Recorded> {
        let (sweep_id, label) = (new.sweep_id, &new.job.label);
        let _turn = self.write_turn().await;
        let mut tx = self.begin().await?;
        self.refuse_own_label(&mut tx, sweep_id, label).await?;
        let sql = format!(
            "SELECT id, retired_at, finished_at FROM jobs WHERE sweep_id = $1 AND hash = $2 {}",
            self.dialect.for_update()
        );
        let found: Option<(i64, Option<i64>, Option<i64>)> = sqlx::query_as(&sql)
            .bind(sweep_id)
            .bind(&new.job.hash)
            .fetch_optional(&mut *tx)
            .await
            .map_err(self.query_error(format!("looking up job {}", new.job.hash)))?;
        let now = now_ms();
        let job_id = match found {
            Some((id, None, scored_at)) => {
                return Ok(Recorded {
                    job_id: id,
                    outcome: Outcome::Unchanged,
                    scored_at: scored_at.unwrap_or(now),
                    retired: Vec::new(),
                });
            }
            // Scored before, then replaced: it is current again, with this scoring's numbers.
            Some((id, Some(_), _)) => id,
            None => Self::insert_external_job(&mut tx, new, now).await?,
        };
        Self::write_external_results(&mut tx, job_id, new, now).await?;
        let retired: Vec<i64> = sqlx::query_scalar(
            "UPDATE jobs SET retired_at = $1 WHERE sweep_id = $2 AND label = $3 AND id <> $4
                 AND external IS NOT NULL AND retired_at IS NULL RETURNING id",
        )
        .bind(now)
        .bind(sweep_id)
        .bind(label)
        .bind(job_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(self.query_error(format!("retiring earlier rows named {label:?}")))?;
        tx.commit()
            .await
            .map_err(self.query_error(format!("recording external row {label:?}")))?;
        Ok(Recorded {
            job_id,
            outcome: match retired.is_empty() {
                true => Outcome::Added,
                false => Outcome::Replaced,
            },
            scored_at: now,
            retired,
        })
    }

    /// An external row never takes the label of one of the sweep's own jobs.
    async fn refuse_own_label(&self, tx: &mut Tx, sweep_id: i64, label: &str) -> Result<()> {
        let own: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE sweep_id = $1 AND label = $2 AND external IS NULL LIMIT 1",
        )
        .bind(sweep_id)
        .bind(label)
        .fetch_optional(&mut **tx)
        .await
        .map_err(self.query_error(format!("looking up {label:?} in sweep {sweep_id}")))?;
        match own {
            Some(id) => Err(StoreError::Invalid(format!(
                "{label:?} is the label of job {id}, one of the sweep's own jobs: give the external row another name (--as)"
            ))
            .into()),
            None => Ok(()),
        }
    }

    /// The job row of a new external result: succeeded, never attempted, nothing to claim.
    async fn insert_external_job(tx: &mut Tx, new: &NewExternal, now: i64) -> Result<i64> {
        let job = &new.job;
        let classes = (!job.classes.is_empty())
            .then(|| serde_json::to_string(&job.classes).expect("strings serialise"));
        sqlx::query_scalar(
            "INSERT INTO jobs (sweep_id, hash, stage, label, config_json, seed, status, attempts,
                 max_attempts, created_at, classes)
             VALUES ($1, $2, $3, $4, $5, $6, 'succeeded', 0, 0, $7, $8) RETURNING id",
        )
        .bind(new.sweep_id)
        .bind(&job.hash)
        .bind(&job.stage)
        .bind(&job.label)
        .bind(&job.config_json)
        .bind(to_i64(job.seed, "seed")?)
        .bind(now)
        .bind(&classes)
        .fetch_one(&mut **tx)
        .await
        .with_context(|| format!("adding external row {} ({})", job.hash, job.label))
    }

    /// The result of an external row: its metrics, per-image rows and what marks it.
    async fn write_external_results(
        tx: &mut Tx,
        job_id: i64,
        new: &NewExternal,
        now: i64,
    ) -> Result<()> {
        let external = serde_json::to_string(&new.external).expect("external serialises");
        sqlx::query(
            "UPDATE jobs SET status = 'succeeded', started_at = $1, finished_at = $1,
                 heartbeat_at = $1, retired_at = NULL, sweep_version = $2, data_fingerprint = $3,
                 external = $4, error = NULL WHERE id = $5",
        )
        .bind(now)
        .bind(&new.sweep_version)
        .bind(&new.data_fingerprint)
        .bind(&external)
        .bind(job_id)
        .execute(&mut **tx)
        .await
        .with_context(|| format!("recording external row {job_id}"))?;
        sqlx::query("DELETE FROM metrics WHERE job_id = $1")
            .bind(job_id)
            .execute(&mut **tx)
            .await?;
        Self::insert_metrics(tx, job_id, &new.metrics).await?;
        Self::insert_images(tx, job_id, &new.images).await
    }
}

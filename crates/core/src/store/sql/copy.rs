//! Export and import of whole sweeps (`sweep db copy`), between any two databases.

use super::{now_ms, SqlStore, Tx};
use crate::job::FailureKind;
use crate::store::{AttemptRow, CopySummary, JobDump, Store, SweepDump};
use anyhow::{Context, Result};
use sqlx::FromRow;

#[derive(FromRow)]
struct SweepRecord {
    id: i64,
    name: String,
    spec_path: String,
    spec_text: String,
    runs_dir: Option<String>,
    created_at: i64,
    updated_at: i64,
}

#[derive(FromRow)]
struct JobRecord {
    id: i64,
    hash: String,
    stage: Option<String>,
    label: String,
    config_json: String,
    seed: i64,
    depends_on: Option<String>,
    status: String,
    attempts: i64,
    failures: i64,
    max_attempts: i64,
    owner: Option<String>,
    heartbeat_at: Option<i64>,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    iteration: i64,
    total_iters: Option<i64>,
    error: Option<String>,
    stderr_tail: Option<String>,
    artifact_dir: Option<String>,
    created_at: i64,
    retired_at: Option<i64>,
    sweep_version: Option<String>,
    slurm_job: Option<String>,
    classes: Option<String>,
    data_fingerprint: Option<String>,
    external: Option<String>,
    continues: i64,
}

const DUMP_COLUMNS: &str = "id, hash, stage, label, config_json, seed, depends_on, status,
    attempts, failures, max_attempts, owner, heartbeat_at, started_at, finished_at, iteration,
    total_iters, error, stderr_tail, artifact_dir, created_at, retired_at, sweep_version, slurm_job, classes, data_fingerprint,
    external, continues";

impl JobRecord {
    /// The row as it travels: a running job arrives interrupted (see `store::dump`).
    fn into_dump(self) -> JobDump {
        let running = self.status == "running";
        JobDump {
            hash: self.hash,
            stage: self.stage,
            label: self.label,
            config_json: self.config_json,
            seed: self.seed,
            depends_on: self.depends_on,
            status: if running {
                "interrupted".into()
            } else {
                self.status
            },
            attempts: self.attempts,
            failures: self.failures,
            max_attempts: self.max_attempts,
            owner: if running { None } else { self.owner },
            heartbeat_at: self.heartbeat_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            iteration: self.iteration,
            total_iters: self.total_iters,
            error: self.error,
            stderr_tail: self.stderr_tail,
            artifact_dir: self.artifact_dir,
            created_at: self.created_at,
            retired_at: self.retired_at,
            sweep_version: self.sweep_version,
            slurm_job: self.slurm_job,
            classes: self.classes,
            data_fingerprint: self.data_fingerprint,
            external: self.external,
            continues: self.continues != 0,
            metrics: Vec::new(),
            curve: Vec::new(),
            eval: Vec::new(),
            images: Vec::new(),
            artifacts: Vec::new(),
            attempt_rows: Vec::new(),
        }
    }
}

impl SqlStore {
    pub(super) async fn export_sweeps(&self, only: Option<&str>) -> Result<Vec<SweepDump>> {
        if let Some(name) = only {
            if self.sweep_id(name).await?.is_none() {
                let known = self.sweeps().await?.into_iter().map(|s| s.name).collect();
                return Err(crate::store::StoreError::no_such_sweep(known, name));
            }
        }
        let sweeps: Vec<SweepRecord> = sqlx::query_as(
            "SELECT id, name, spec_path, spec_text, runs_dir, created_at, updated_at FROM sweeps
             WHERE $1 IS NULL OR name = $1 ORDER BY id",
        )
        .bind(only)
        .fetch_all(&self.pool)
        .await
        .map_err(self.query_error("reading sweeps to copy"))?;
        let mut dumps = Vec::with_capacity(sweeps.len());
        for s in sweeps {
            dumps.push(SweepDump {
                jobs: self.export_jobs(s.id).await?,
                name: s.name,
                spec_path: s.spec_path,
                spec_text: s.spec_text,
                runs_dir: s.runs_dir,
                created_at: s.created_at,
                updated_at: s.updated_at,
            });
        }
        Ok(dumps)
    }

    async fn export_jobs(&self, sweep_id: i64) -> Result<Vec<JobDump>> {
        let sql = format!("SELECT {DUMP_COLUMNS} FROM jobs WHERE sweep_id = $1 ORDER BY id");
        let rows: Vec<JobRecord> = sqlx::query_as(&sql)
            .bind(sweep_id)
            .fetch_all(&self.pool)
            .await
            .map_err(self.query_error(format!("reading the jobs of sweep {sweep_id} to copy")))?;
        let mut metrics = self
            .metrics_by_job(
                "WHERE j.sweep_id = CAST($1 AS BIGINT)",
                Some(&sweep_id.to_string()),
            )
            .await?;
        let mut jobs = Vec::with_capacity(rows.len());
        for r in rows {
            let id = r.id;
            let mut job = r.into_dump();
            job.metrics = metrics.remove(&id).unwrap_or_default();
            job.curve = self.curve(id).await?;
            job.eval = self.eval_curve(id).await?;
            job.images = self.image_metrics(id).await?;
            job.attempt_rows = self.attempts(id).await?;
            job.artifacts = sqlx::query_as(
                "SELECT kind, path, iteration, created_at FROM artifacts WHERE job_id = $1
                 ORDER BY created_at, id",
            )
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(self.query_error(format!("reading the artifacts of job {id}")))?;
            jobs.push(job);
        }
        Ok(jobs)
    }

    /// One transaction per sweep: a copy interrupted halfway leaves the sweep as it was.
    pub(super) async fn import_sweep(&self, dump: &SweepDump) -> Result<CopySummary> {
        let mut summary = CopySummary::default();
        let mut tx = self.begin().await?;
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO sweeps (name, spec_path, spec_text, runs_dir, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING RETURNING id",
        )
        .bind(&dump.name)
        .bind(&dump.spec_path)
        .bind(&dump.spec_text)
        .bind(&dump.runs_dir)
        .bind(dump.created_at)
        .bind(dump.updated_at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(self.query_error(format!("copying sweep {:?}", dump.name)))?;
        let sweep_id = match inserted {
            Some(id) => {
                summary.sweeps_added = 1;
                id
            }
            None => {
                sqlx::query_scalar("SELECT id FROM sweeps WHERE name = $1")
                    .bind(&dump.name)
                    .fetch_one(&mut *tx)
                    .await?
            }
        };
        for job in &dump.jobs {
            match Self::import_job(&mut tx, sweep_id, job).await? {
                true => summary.jobs_added += 1,
                false => summary.jobs_skipped += 1,
            }
        }
        tx.commit()
            .await
            .map_err(self.query_error(format!("copying sweep {:?}", dump.name)))?;
        Ok(summary)
    }

    /// False when the sweep already has a job with this hash (left as it is).
    async fn import_job(tx: &mut Tx, sweep_id: i64, j: &JobDump) -> Result<bool> {
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO jobs (sweep_id, hash, stage, label, config_json, seed, depends_on, status,
                 attempts, failures, max_attempts, owner, heartbeat_at, started_at, finished_at,
                 iteration, total_iters, error, stderr_tail, artifact_dir, created_at, retired_at,
                 sweep_version, slurm_job, classes, data_fingerprint, external, continues)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                 $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28)
             ON CONFLICT (sweep_id, hash) DO NOTHING RETURNING id",
        )
        .bind(sweep_id)
        .bind(&j.hash)
        .bind(&j.stage)
        .bind(&j.label)
        .bind(&j.config_json)
        .bind(j.seed)
        .bind(&j.depends_on)
        .bind(&j.status)
        .bind(j.attempts)
        .bind(j.failures)
        .bind(j.max_attempts)
        .bind(&j.owner)
        .bind(j.heartbeat_at)
        .bind(j.started_at)
        .bind(j.finished_at)
        .bind(j.iteration)
        .bind(j.total_iters)
        .bind(&j.error)
        .bind(&j.stderr_tail)
        .bind(&j.artifact_dir)
        .bind(j.created_at)
        .bind(j.retired_at)
        .bind(&j.sweep_version)
        .bind(&j.slurm_job)
        .bind(&j.classes)
        .bind(&j.data_fingerprint)
        .bind(&j.external)
        .bind(j.continues as i64)
        .fetch_optional(&mut **tx)
        .await
        .with_context(|| format!("copying job {} ({})", j.hash, j.label))?;
        let Some(id) = id else {
            return Ok(false);
        };
        Self::import_results(tx, id, j).await?;
        Ok(true)
    }

    async fn import_results(tx: &mut Tx, id: i64, j: &JobDump) -> Result<()> {
        Self::insert_metrics(tx, id, &j.metrics).await?;
        Self::insert_curve(tx, id, &j.curve).await?;
        for (iteration, values) in group_by_iteration(&j.eval) {
            Self::insert_eval(tx, id, iteration, &values).await?;
        }
        Self::insert_images(tx, id, &j.images).await?;
        for (kind, path, iteration, created_at) in &j.artifacts {
            sqlx::query(
                "INSERT INTO artifacts (job_id, kind, path, iteration, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(kind)
            .bind(path)
            .bind(*iteration)
            .bind(*created_at)
            .execute(&mut **tx)
            .await?;
        }
        for a in &j.attempt_rows {
            insert_attempt(tx, id, a).await?;
        }
        Ok(())
    }
}

async fn insert_attempt(tx: &mut Tx, job_id: i64, a: &AttemptRow) -> Result<()> {
    let failure = a.failure.map(|k| match k {
        FailureKind::Transient => "transient",
        FailureKind::Permanent => "permanent",
    });
    sqlx::query(
        "INSERT INTO attempts (job_id, attempt, owner, started_at, ended_at, ended_as, failure, reason, sweep_version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(job_id)
    .bind(a.attempt as i64)
    .bind(&a.owner)
    .bind(a.started_at)
    .bind(if a.ended_at == 0 { now_ms() } else { a.ended_at })
    .bind(a.ended_as.as_str())
    .bind(failure)
    .bind(&a.reason)
    .bind(&a.sweep_version)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn group_by_iteration(
    eval: &[(usize, crate::protocol::MetricValue)],
) -> Vec<(usize, Vec<crate::protocol::MetricValue>)> {
    let mut groups: Vec<(usize, Vec<crate::protocol::MetricValue>)> = Vec::new();
    for (it, m) in eval {
        match groups.last_mut() {
            Some((last, values)) if last == it => values.push(m.clone()),
            _ => groups.push((*it, vec![m.clone()])),
        }
    }
    groups
}

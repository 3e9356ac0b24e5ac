//! [`Store`] in SQL, once, for SQLite and PostgreSQL (sqlx's `Any` driver). Queries are
//! shared; what the engines spell differently is in [`Dialect`]. Each backend's schema is
//! `migrations/<backend>/` at the workspace root, applied on open ([`connect`]).
//!
//! - [`queue`]: claims, leases, heartbeats, how attempts end (the fenced writes).
//! - [`evaluation`]: per-image results and validation curves.
//! - [`copy`]: export and import for `sweep db copy`.

mod batch;
mod connect;
mod copy;
mod dialect;
mod evaluation;
mod external;
mod log_cache;
mod queue;
mod records;
mod search;

pub use dialect::Dialect;

use super::{
    now_ms, AttemptRow, BlockedJob, ClaimRequest, ClaimedJob, CopySummary, CurvePoint, Ending,
    Fence, JobRow, LeaseState, NewArtifact, NewExternal, NewJob, Recorded, Reported, RunningJob,
    SearchLog, Store, StoreError, SweepDump, SweepRow, TrialJobs,
};
use crate::job::JobStatus;
use crate::protocol::{ImageMetric, MetricValue};
use anyhow::{anyhow, Context, Result};
use async_trait::async_trait;
use records::{
    AttemptRecord, BlockedRecord, CurveRecord, JobRecord, MetricRecord, RunningRecord, SweepRecord,
};
use sqlx::{Any, AnyPool, Transaction};
use std::collections::{BTreeMap, HashMap};

/// Handle on a results database; cheap to clone (a connection pool).
#[derive(Clone, Debug)]
pub struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
    /// For messages: a path, or a URL without its password.
    location: String,
    identity: String,
    /// This process's turn to write (SQLite: one writer at a time). Without it, two slots
    /// of one orchestrator meet in SQLite's busy handler, which sleeps 1, 2, 5... ms
    /// before retrying; waiting here wakes the next writer as soon as the lock is free.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Search logs read before: a decision reads only the rows added since.
    search_logs: std::sync::Arc<log_cache::LogCache>,
}

type Tx = Transaction<'static, Any>;

impl SqlStore {
    /// Upserts a job's curve points, one row per iteration (the last given wins: a
    /// statement may not upsert a row twice), many rows per statement.
    async fn insert_curve(
        tx: &mut Tx,
        job_id: i64,
        points: &[CurvePoint],
    ) -> Result<(), sqlx::Error> {
        let mut by_iter: BTreeMap<usize, &CurvePoint> = BTreeMap::new();
        for p in points {
            by_iter.insert(p.iteration, p);
        }
        let points: Vec<&CurvePoint> = by_iter.into_values().collect();
        for chunk in points.chunks(batch::rows_per_statement(5)) {
            let sql = format!(
                "INSERT INTO curves (job_id, iteration, loss, lr, secs) VALUES {}
                 ON CONFLICT (job_id, iteration) DO UPDATE
                 SET loss = excluded.loss, lr = excluded.lr, secs = excluded.secs",
                batch::values_rows(chunk.len(), 5, 1)
            );
            let mut q = sqlx::query(&sql);
            for p in chunk {
                q = q
                    .bind(job_id)
                    .bind(p.iteration as i64)
                    .bind(p.loss)
                    .bind(p.lr)
                    .bind(p.secs);
            }
            q.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Artifact rows (kinds already checked), many rows per statement.
    async fn insert_artifacts(
        tx: &mut Tx,
        job_id: i64,
        artifacts: &[NewArtifact],
    ) -> Result<(), sqlx::Error> {
        let now = now_ms();
        for chunk in artifacts.chunks(batch::rows_per_statement(5)) {
            let sql = format!(
                "INSERT INTO artifacts (job_id, kind, path, iteration, created_at) VALUES {}",
                batch::values_rows(chunk.len(), 5, 1)
            );
            let mut q = sqlx::query(&sql);
            for a in chunk {
                q = q
                    .bind(job_id)
                    .bind(&a.kind)
                    .bind(&a.path)
                    .bind(a.iteration.map(|i| i as i64))
                    .bind(now);
            }
            q.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// What a running job reported: its curve points and artifacts.
    async fn insert_reported(
        tx: &mut Tx,
        job_id: i64,
        reported: &Reported,
    ) -> Result<(), sqlx::Error> {
        Self::insert_curve(tx, job_id, &reported.curve).await?;
        Self::insert_artifacts(tx, job_id, &reported.artifacts).await
    }
}

fn to_i64(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v)
        .map_err(|_| anyhow!("{what} {v} does not fit the database's signed 64-bit integers"))
}

fn opt_usize(v: Option<i64>) -> Option<usize> {
    v.map(|x| x.max(0) as usize)
}

/// SQLite stores NaN as NULL; read it back as NaN.
fn f64_or_nan(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NAN)
}

fn status(s: &str) -> Result<JobStatus> {
    s.parse()
        .map_err(|e| anyhow!("results database holds a job with {e}"))
}

const JOB_COLUMNS: &str = "s.name AS sweep, j.id, j.hash, j.stage, j.label, j.status, j.attempts,
    j.seed, j.config_json, j.artifact_dir, j.error, j.iteration, j.total_iters, j.started_at,
    j.finished_at, j.retired_at, j.sweep_version, j.classes, j.data_fingerprint, j.external";

impl SqlStore {
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    fn query_error(&self, what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> anyhow::Error {
        let location = self.location.clone();
        let what = what.into();
        move |source| {
            StoreError::Query {
                location,
                what,
                source,
            }
            .into()
        }
    }

    /// Held for the duration of one write (statement or transaction) on SQLite; on
    /// PostgreSQL, where writers of different rows do not wait for each other, nothing.
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.dialect {
            Dialect::Sqlite => Some(self.writer.lock().await),
            Dialect::Postgres => None,
        }
    }

    async fn begin(&self) -> Result<Tx> {
        let tx = match self.dialect.begin_write() {
            Some(statement) => self.pool.begin_with(statement).await,
            None => self.pool.begin().await,
        };
        tx.map_err(self.query_error("starting a write transaction"))
    }

    async fn metrics_by_job(
        &self,
        filter: &str,
        bind: Option<&str>,
    ) -> Result<HashMap<i64, Vec<MetricValue>>> {
        let sql = format!(
            "SELECT m.job_id, m.split, m.name, m.class, m.value
             FROM metrics m JOIN jobs j ON j.id = m.job_id JOIN sweeps s ON s.id = j.sweep_id {filter}
             ORDER BY m.job_id, m.split, m.name, m.class"
        );
        let mut q = sqlx::query_as::<_, MetricRecord>(&sql);
        if let Some(b) = bind {
            q = q.bind(b.to_string());
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .map_err(self.query_error("reading metrics"))?;
        let mut metrics: HashMap<i64, Vec<MetricValue>> = HashMap::new();
        for r in rows {
            metrics.entry(r.job_id).or_default().push(MetricValue {
                split: r.split,
                name: r.name,
                class: r.class.map(|c| c.max(0) as usize),
                value: f64_or_nan(r.value),
            });
        }
        Ok(metrics)
    }

    /// Jobs matching `filter` (a WHERE clause over `j` and `s` with at most one `$1`).
    async fn job_rows(&self, filter: &str, bind: Option<&str>) -> Result<Vec<JobRow>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs j JOIN sweeps s ON s.id = j.sweep_id {filter}
             ORDER BY s.id, j.id"
        );
        let mut q = sqlx::query_as::<_, JobRecord>(&sql);
        if let Some(b) = bind {
            q = q.bind(b.to_string());
        }
        let jobs = q
            .fetch_all(&self.pool)
            .await
            .map_err(self.query_error("reading jobs"))?;
        let mut metrics = self.metrics_by_job(filter, bind).await?;
        jobs.into_iter()
            .map(|r| {
                let m = metrics.remove(&r.id).unwrap_or_default();
                r.into_row(m)
            })
            .collect()
    }
}

#[async_trait]
impl Store for SqlStore {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn identity(&self) -> &str {
        &self.identity
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn upsert_sweep(&self, name: &str, spec_path: &str, spec_text: &str) -> Result<i64> {
        let now = now_ms();
        sqlx::query_scalar(
            "INSERT INTO sweeps (name, spec_path, spec_text, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (name) DO UPDATE SET spec_path = excluded.spec_path,
                 spec_text = excluded.spec_text, updated_at = excluded.updated_at
             RETURNING id",
        )
        .bind(name)
        .bind(spec_path)
        .bind(spec_text)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(self.query_error(format!("recording sweep {name:?}")))
    }

    async fn sweep_id(&self, name: &str) -> Result<Option<i64>> {
        sqlx::query_scalar("SELECT id FROM sweeps WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.query_error(format!("looking up sweep {name:?}")))
    }

    async fn spec_text(&self, sweep_id: i64) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT spec_text FROM sweeps WHERE id = $1")
            .bind(sweep_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.query_error(format!("reading the file of sweep {sweep_id}")))
    }

    async fn set_runs_dir(&self, sweep_id: i64, runs_dir: &str) -> Result<()> {
        sqlx::query("UPDATE sweeps SET runs_dir = $1 WHERE id = $2")
            .bind(runs_dir)
            .bind(sweep_id)
            .execute(&self.pool)
            .await
            .map_err(self.query_error(format!("recording the runs folder of sweep {sweep_id}")))?;
        Ok(())
    }

    async fn sweeps(&self) -> Result<Vec<SweepRow>> {
        let rows: Vec<SweepRecord> = sqlx::query_as(
            "SELECT s.id, s.name, s.spec_path, s.runs_dir, s.created_at, s.updated_at,
                 (SELECT COUNT(*) FROM jobs j WHERE j.sweep_id = s.id AND j.retired_at IS NULL) AS jobs,
                 (SELECT COUNT(*) FROM jobs j WHERE j.sweep_id = s.id AND j.retired_at IS NULL
                     AND j.status = 'succeeded') AS succeeded
             FROM sweeps s ORDER BY s.id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.query_error("listing sweeps"))?;
        Ok(rows
            .into_iter()
            .map(|r| SweepRow {
                id: r.id,
                name: r.name,
                spec_path: r.spec_path,
                runs_dir: r.runs_dir,
                created_at: r.created_at,
                updated_at: r.updated_at,
                jobs: r.jobs as usize,
                succeeded: r.succeeded as usize,
            })
            .collect())
    }

    async fn add_jobs(
        &self,
        sweep_id: i64,
        jobs: &[NewJob],
        max_attempts: u32,
    ) -> Result<(usize, usize)> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let mut added = 0;
        for job in jobs {
            let config: serde_json::Value = serde_json::from_str(&job.config_json)
                .with_context(|| format!("job {} ({}): config is not JSON", job.hash, job.label))?;
            // A command job's length, when it has one, is among its program's parameters.
            let iters = config
                .get("iters")
                .or_else(|| config.pointer("/params/iters"));
            let total_iters = iters.and_then(|v| v.as_i64());
            let classes = (!job.classes.is_empty())
                .then(|| serde_json::to_string(&job.classes).expect("strings serialise"));
            let r = sqlx::query(
                "INSERT INTO jobs (sweep_id, hash, stage, label, config_json, seed, depends_on,
                     status, attempts, max_attempts, total_iters, created_at, classes, continues)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $9, $10, $11, $12)
                 ON CONFLICT (sweep_id, hash) DO NOTHING",
            )
            .bind(sweep_id)
            .bind(&job.hash)
            .bind(&job.stage)
            .bind(&job.label)
            .bind(&job.config_json)
            .bind(to_i64(job.seed, "seed")?)
            .bind(&job.depends_on)
            .bind(max_attempts as i64)
            .bind(total_iters)
            .bind(now)
            .bind(&classes)
            .bind(job.continues as i64)
            .execute(&mut *tx)
            .await
            .map_err(self.query_error(format!(
                "adding job {} ({}) to sweep {sweep_id}",
                job.hash, job.label
            )))?;
            added += r.rows_affected() as usize;
            if r.rows_affected() == 0 && classes.is_some() {
                // A job planned before its classes were recorded learns them now.
                sqlx::query(
                    "UPDATE jobs SET classes = $1 WHERE sweep_id = $2 AND hash = $3 AND classes IS NULL",
                )
                .bind(&classes)
                .bind(sweep_id)
                .bind(&job.hash)
                .execute(&mut *tx)
                .await
                .map_err(self.query_error(format!("recording the classes of job {}", job.hash)))?;
            }
        }
        tx.commit()
            .await
            .map_err(self.query_error(format!("adding the jobs of sweep {sweep_id}")))?;
        Ok((added, jobs.len() - added))
    }

    async fn retire_others(&self, sweep_id: i64, current: &[String]) -> Result<usize> {
        let hashes = serde_json::to_string(current).expect("strings serialise");
        let mut tx = self.begin().await?;
        let sql = format!(
            "UPDATE jobs SET retired_at = CASE
                 WHEN hash IN ({}) THEN NULL
                 ELSE COALESCE(retired_at, $2) END
             WHERE sweep_id = $3 AND external IS NULL AND trial IS NULL",
            self.dialect.json_strings("$1")
        );
        sqlx::query(&sql)
            .bind(&hashes)
            .bind(now_ms())
            .bind(sweep_id)
            .execute(&mut *tx)
            .await
            .map_err(self.query_error(format!("retiring jobs of sweep {sweep_id}")))?;
        let retired: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE sweep_id = $1 AND retired_at IS NOT NULL
                 AND external IS NULL AND trial IS NULL",
        )
        .bind(sweep_id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(retired as usize)
    }

    async fn record_external(&self, new: &NewExternal) -> Result<Recorded> {
        self.write_external(new).await
    }

    async fn claim(&self, req: ClaimRequest<'_>) -> Result<Option<ClaimedJob>> {
        self.claim_job(req).await
    }

    async fn heartbeat(&self, fence: &Fence, iteration: usize) -> Result<bool> {
        self.renew(fence, iteration).await
    }

    async fn end_attempt_in_search(
        &self,
        fence: &Fence,
        ending: Ending,
        trials: Option<&dyn TrialJobs>,
    ) -> Result<JobStatus> {
        self.record_end(fence, ending, trials).await
    }

    async fn start_search(
        &self,
        sweep_id: i64,
        policy: &crate::search::Policy,
        spec_yaml: &str,
        trials: &dyn TrialJobs,
    ) -> Result<Vec<crate::search::Action>> {
        let by = super::Owner::current().to_string();
        self.begin_search(sweep_id, policy, spec_yaml, trials, &by)
            .await
    }

    async fn search_spec(&self, sweep_id: i64) -> Result<Option<String>> {
        let spec: Option<Option<String>> =
            sqlx::query_scalar("SELECT search_spec FROM sweeps WHERE id = $1")
                .bind(sweep_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(self.query_error(format!("reading the search of sweep {sweep_id}")))?;
        Ok(spec.flatten())
    }

    async fn search_log(&self, sweep_id: i64) -> Result<SearchLog> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(self.query_error("reading a search"))?;
        let log = self.load_search(&mut tx, sweep_id).await?;
        tx.rollback()
            .await
            .map_err(self.query_error("reading a search"))?;
        Ok(log)
    }

    async fn release_where(
        &self,
        sweep_id: Option<i64>,
        is_gone: &(dyn for<'o> Fn(&'o str, LeaseState) -> bool + Sync),
    ) -> Result<Vec<i64>> {
        self.release_gone(sweep_id, is_gone).await
    }

    async fn mark_interrupted(&self, fence: &Fence) -> Result<()> {
        self.interrupt(fence).await
    }

    async fn set_artifact_dir(&self, fence: &Fence, dir: &str) -> Result<()> {
        let _turn = self.write_turn().await;
        let r = sqlx::query(
            "UPDATE jobs SET artifact_dir = $1 WHERE id = $2 AND owner = $3 AND attempts = $4",
        )
        .bind(dir)
        .bind(fence.job_id)
        .bind(&fence.owner)
        .bind(fence.attempt as i64)
        .execute(&self.pool)
        .await
        .map_err(self.query_error(format!(
            "recording the artifact folder of job {}",
            fence.job_id
        )))?;
        match r.rows_affected() {
            1 => Ok(()),
            _ => Err(queue::not_owner(fence)),
        }
    }

    async fn inherit_prefix_curves(
        &self,
        fence: &Fence,
        sweep_id: i64,
        prefix: &str,
    ) -> Result<()> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin().await?;
        self.hold_fence(&mut tx, fence).await?;
        let statements = [
            "INSERT INTO curves (job_id, iteration, loss, lr, secs)
             SELECT $1, c.iteration, c.loss, c.lr, c.secs FROM curves c
             JOIN jobs p ON p.id = c.job_id WHERE p.sweep_id = $2 AND p.hash = $3
             ON CONFLICT (job_id, iteration) DO NOTHING",
            "INSERT INTO eval_curves (job_id, iteration, split, name, class, value)
             SELECT $1, e.iteration, e.split, e.name, e.class, e.value FROM eval_curves e
             JOIN jobs p ON p.id = e.job_id WHERE p.sweep_id = $2 AND p.hash = $3
               AND NOT EXISTS (SELECT 1 FROM eval_curves o
                               WHERE o.job_id = $1 AND o.iteration = e.iteration)",
        ];
        for sql in statements {
            sqlx::query(sql)
                .bind(fence.job_id)
                .bind(sweep_id)
                .bind(prefix)
                .execute(&mut *tx)
                .await
                .map_err(self.query_error(format!(
                    "copying the curves of job {prefix} to job {}",
                    fence.job_id
                )))?;
        }
        tx.commit()
            .await
            .map_err(self.query_error("committing inherited curves"))?;
        Ok(())
    }

    async fn record_reported(&self, fence: &Fence, reported: &Reported) -> Result<()> {
        queue::check_artifact_kinds(fence, &reported.artifacts)?;
        if reported.is_empty() {
            return Ok(());
        }
        let _turn = self.write_turn().await;
        let mut tx = self.begin().await?;
        self.hold_fence(&mut tx, fence).await?;
        Self::insert_reported(&mut tx, fence.job_id, reported)
            .await
            .map_err(self.query_error(format!(
                "recording the curve and artifacts of job {}",
                fence.job_id
            )))?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_eval(
        &self,
        fence: &Fence,
        iteration: usize,
        values: &[MetricValue],
    ) -> Result<()> {
        self.write_eval(fence, iteration, values).await
    }

    async fn counts(&self, sweep_id: i64) -> Result<BTreeMap<JobStatus, usize>> {
        let mut counts: BTreeMap<JobStatus, usize> =
            JobStatus::ALL.into_iter().map(|s| (s, 0)).collect();
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, COUNT(*) AS n FROM jobs WHERE sweep_id = $1 AND retired_at IS NULL
             GROUP BY status",
        )
        .bind(sweep_id)
        .fetch_all(&self.pool)
        .await
        .map_err(self.query_error(format!("counting the jobs of sweep {sweep_id}")))?;
        for (s, n) in rows {
            counts.insert(status(&s)?, n as usize);
        }
        Ok(counts)
    }

    async fn running(&self, sweep_id: i64) -> Result<Vec<RunningJob>> {
        let rows: Vec<RunningRecord> = sqlx::query_as(
            "SELECT id, label, attempts, iteration, total_iters, started_at, heartbeat_at, owner,
                 slurm_job, lease_expires_at
             FROM jobs WHERE sweep_id = $1 AND status = 'running' ORDER BY id",
        )
        .bind(sweep_id)
        .fetch_all(&self.pool)
        .await
        .map_err(self.query_error(format!("reading the running jobs of sweep {sweep_id}")))?;
        Ok(rows
            .into_iter()
            .map(|r| RunningJob {
                id: r.id,
                label: r.label,
                attempts: r.attempts as u32,
                iteration: r.iteration.max(0) as usize,
                total_iters: opt_usize(r.total_iters),
                started_at: r.started_at,
                heartbeat_at: r.heartbeat_at,
                owner: r.owner,
                slurm_job: r.slurm_job,
                lease_expires_at: r.lease_expires_at,
            })
            .collect())
    }

    async fn blocked(&self, sweep_id: i64) -> Result<Vec<BlockedJob>> {
        let rows: Vec<BlockedRecord> = sqlx::query_as(
            "SELECT j.id, j.label, j.depends_on, d.status AS dep_status FROM jobs j
             LEFT JOIN jobs d ON d.sweep_id = j.sweep_id AND d.hash = j.depends_on
             WHERE j.sweep_id = $1 AND j.status IN ('pending', 'interrupted')
               AND j.depends_on IS NOT NULL
               AND (d.id IS NULL OR d.status IN ('failed', 'diverged'))
             ORDER BY j.id",
        )
        .bind(sweep_id)
        .fetch_all(&self.pool)
        .await
        .map_err(self.query_error(format!("reading the blocked jobs of sweep {sweep_id}")))?;
        rows.into_iter()
            .map(|r| {
                Ok(BlockedJob {
                    id: r.id,
                    label: r.label,
                    depends_on: r.depends_on,
                    dependency_status: r.dep_status.as_deref().map(status).transpose()?,
                })
            })
            .collect()
    }

    async fn dependency_artifact(&self, sweep_id: i64, hash: &str) -> Result<Option<String>> {
        let dir: Option<Option<String>> = sqlx::query_scalar(
            "SELECT artifact_dir FROM jobs WHERE sweep_id = $1 AND hash = $2 AND status = 'succeeded'",
        )
        .bind(sweep_id)
        .bind(hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.query_error(format!("looking up stage {hash} of sweep {sweep_id}")))?;
        Ok(dir.flatten())
    }

    async fn report_rows(&self, sweep: Option<&str>) -> Result<Vec<JobRow>> {
        let Some(name) = sweep else {
            return self.job_rows("", None).await;
        };
        if self.sweep_id(name).await?.is_none() {
            let known: Vec<String> = self.sweeps().await?.into_iter().map(|s| s.name).collect();
            return Err(StoreError::no_such_sweep(known, name));
        }
        self.job_rows("WHERE s.name = $1", Some(name)).await
    }

    async fn find_job(&self, selector: &str) -> Result<JobRow> {
        if selector.parse::<i64>().is_ok() {
            let by_id = "WHERE j.id = CAST($1 AS BIGINT)";
            if let Some(row) = self.job_rows(by_id, Some(selector)).await?.pop() {
                return Ok(row);
            }
            // A number may also be a hash prefix (hashes are hex).
        }
        let escaped = selector
            .to_ascii_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let pattern = format!("{escaped}%");
        let mut rows = self
            .job_rows("WHERE j.hash LIKE $1 ESCAPE '\\'", Some(&pattern))
            .await?;
        if rows.is_empty() {
            rows = self.job_rows("WHERE j.label = $1", Some(selector)).await?;
            // A label that a retired row shares with one current row names the current one
            // (an external result replaced by another under the same name).
            if rows.iter().filter(|r| !r.retired).count() == 1 {
                rows.retain(|r| !r.retired);
            }
        }
        match rows.len() {
            0 => Err(StoreError::NoSuchJob {
                location: self.location.clone(),
                selector: selector.to_string(),
            }
            .into()),
            1 => Ok(rows.pop().expect("one row")),
            n => Err(StoreError::AmbiguousJob {
                location: self.location.clone(),
                selector: selector.to_string(),
                count: n,
                examples: rows
                    .iter()
                    .take(3)
                    .map(|r| format!("{} {} {}", r.job_id, r.hash, r.label))
                    .collect::<Vec<_>>()
                    .join("; "),
            }
            .into()),
        }
    }

    async fn attempts(&self, job_id: i64) -> Result<Vec<AttemptRow>> {
        let rows: Vec<AttemptRecord> = sqlx::query_as(
            "SELECT attempt, owner, started_at, ended_at, ended_as, failure, reason, sweep_version
             FROM attempts WHERE job_id = $1 ORDER BY attempt",
        )
        .bind(job_id)
        .fetch_all(&self.pool)
        .await
        .map_err(self.query_error(format!("reading the attempts of job {job_id}")))?;
        rows.into_iter().map(AttemptRecord::into_row).collect()
    }

    async fn artifacts(&self, job_id: i64) -> Result<Vec<(String, String, Option<usize>)>> {
        let rows: Vec<(String, String, Option<i64>)> = sqlx::query_as(
            "SELECT kind, path, iteration FROM artifacts WHERE job_id = $1 ORDER BY created_at, id",
        )
        .bind(job_id)
        .fetch_all(&self.pool)
        .await
        .map_err(self.query_error(format!("reading the artifacts of job {job_id}")))?;
        Ok(rows
            .into_iter()
            .map(|(k, p, i)| (k, p, opt_usize(i)))
            .collect())
    }

    async fn curve(&self, job_id: i64) -> Result<Vec<CurvePoint>> {
        let rows: Vec<CurveRecord> = sqlx::query_as(
            "SELECT iteration, loss, lr, secs FROM curves WHERE job_id = $1 ORDER BY iteration",
        )
        .bind(job_id)
        .fetch_all(&self.pool)
        .await
        .map_err(self.query_error(format!("reading the curve of job {job_id}")))?;
        Ok(rows
            .into_iter()
            .map(|r| CurvePoint {
                iteration: r.iteration.max(0) as usize,
                loss: f64_or_nan(r.loss),
                lr: f64_or_nan(r.lr),
                secs: f64_or_nan(r.secs),
            })
            .collect())
    }

    async fn eval_curve(&self, job_id: i64) -> Result<Vec<(usize, MetricValue)>> {
        self.read_eval(job_id).await
    }

    async fn image_metrics(&self, job_id: i64) -> Result<Vec<ImageMetric>> {
        self.read_images(job_id).await
    }

    async fn integrity_check(&self) -> Result<String> {
        if self.dialect != Dialect::Sqlite {
            // The server checks its own pages; a query that answers is all we can ask for.
            sqlx::query("SELECT 1")
                .execute(&self.pool)
                .await
                .map_err(self.query_error("integrity check"))?;
            return Ok("ok".into());
        }
        let lines: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(&self.pool)
            .await
            .map_err(self.query_error("integrity check"))?;
        Ok(lines.join("\n"))
    }

    async fn change_token(&self) -> Result<String> {
        let (n, beat, ended, added, attempts): (
            i64,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
        ) = sqlx::query_as(
            "SELECT COUNT(*), MAX(heartbeat_at), MAX(finished_at), MAX(created_at),
                     CAST(SUM(attempts) AS BIGINT)
                 FROM jobs",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(self.query_error("reading the latest change"))?;
        let v = |x: Option<i64>| x.unwrap_or(0);
        Ok(format!(
            "{n}-{}-{}-{}-{}",
            v(beat),
            v(ended),
            v(added),
            v(attempts)
        ))
    }

    async fn export(&self, sweep: Option<&str>) -> Result<Vec<SweepDump>> {
        self.export_sweeps(sweep).await
    }

    async fn import(&self, dump: &SweepDump) -> Result<CopySummary> {
        self.import_sweep(dump).await
    }
}

/// An optional float as a query argument. sqlx 0.8's `Any` driver sends a NULL `f64` to
/// PostgreSQL typed as float4; a statement first prepared with that NULL then rejects the
/// float8 of a later row ("incorrect binary data format"). This sends NULL typed as float8
/// (the driver's `Real` slot maps to `f64` there; SQLite takes any NULL). Tested by the store
/// suite's per-image round trip on PostgreSQL.
struct OptF64(Option<f64>);

impl sqlx::Type<Any> for OptF64 {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <f64 as sqlx::Type<Any>>::type_info()
    }
}

impl<'q> sqlx::Encode<'q, Any> for OptF64 {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx_core::any::AnyArgumentBuffer<'q>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        use sqlx_core::any::{AnyTypeInfoKind, AnyValueKind};
        match self.0 {
            Some(v) => {
                buf.0.push(AnyValueKind::Double(v));
                Ok(sqlx::encode::IsNull::No)
            }
            None => {
                buf.0.push(AnyValueKind::Null(AnyTypeInfoKind::Real));
                Ok(sqlx::encode::IsNull::Yes)
            }
        }
    }
}

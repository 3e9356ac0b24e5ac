//! [`Store`] on SQLite (sqlx). One file, WAL, shared by every orchestrator process of a
//! sweep on one machine; claims are atomic because SQLite has one writer at a time.
//! Schema: `migrations/sqlite/` at the workspace root, applied on open.

use super::{
    now_ms, AttemptRow, BlockedJob, ClaimedJob, CurvePoint, Finish, JobRow, NewJob, Owner,
    RunningJob, Store, StoreError, SweepRow, ARTIFACT_KINDS,
};
use crate::job::{FailureKind, JobStatus, RetryRule};
use crate::protocol::{ImageMetric, MetricValue};

mod evaluation;
use anyhow::{anyhow, bail, Context, Result};
use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{FromRow, Sqlite, Transaction};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/sqlite");

/// Writers wait this long for the database lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Handle on a SQLite results database; cheap to clone (a connection pool).
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
    identity: String,
}

fn to_i64(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v)
        .map_err(|_| anyhow!("{what} {v} does not fit the database's signed 64-bit integers"))
}

fn opt_usize(v: Option<i64>) -> Option<usize> {
    v.map(|x| x.max(0) as usize)
}

/// SQLite stores NaN as NULL; read it back as NaN.
/// SQLITE_BUSY (5) or SQLITE_LOCKED (6), extended codes included: another connection holds
/// the lock.
fn is_busy(e: &sqlx::Error) -> bool {
    let code = e.as_database_error().and_then(|d| d.code());
    code.and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|n| matches!(n & 0xff, 5 | 6))
}

fn f64_or_nan(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NAN)
}

fn status(s: &str) -> Result<JobStatus> {
    s.parse()
        .map_err(|e| anyhow!("results database holds a job with {e}"))
}

fn failure_kind_str(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Transient => "transient",
        FailureKind::Permanent => "permanent",
    }
}

#[derive(FromRow)]
struct ClaimRecord {
    id: i64,
    hash: String,
    label: String,
    config_json: String,
    attempts: i64,
    failures: i64,
    max_attempts: i64,
    artifact_dir: Option<String>,
    depends_on: Option<String>,
}

#[derive(FromRow)]
struct SweepRecord {
    id: i64,
    name: String,
    spec_path: String,
    created_at: i64,
    updated_at: i64,
    jobs: i64,
    succeeded: i64,
}

#[derive(FromRow)]
struct RunningRecord {
    id: i64,
    label: String,
    attempts: i64,
    iteration: i64,
    total_iters: Option<i64>,
    started_at: Option<i64>,
    heartbeat_at: Option<i64>,
    owner: Option<String>,
}

#[derive(FromRow)]
struct BlockedRecord {
    id: i64,
    label: String,
    depends_on: String,
    dep_status: Option<String>,
}

#[derive(FromRow)]
struct JobRecord {
    sweep: String,
    id: i64,
    hash: String,
    stage: Option<String>,
    label: String,
    status: String,
    attempts: i64,
    seed: i64,
    config_json: String,
    artifact_dir: Option<String>,
    error: Option<String>,
    iteration: i64,
    total_iters: Option<i64>,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    retired_at: Option<i64>,
    sweep_version: Option<String>,
}

impl JobRecord {
    fn into_row(self, metrics: Vec<MetricValue>) -> Result<JobRow> {
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
        })
    }
}

#[derive(FromRow)]
struct MetricRecord {
    job_id: i64,
    split: String,
    name: String,
    class: Option<i64>,
    value: Option<f64>,
}

#[derive(FromRow)]
struct AttemptRecord {
    attempt: i64,
    owner: Option<String>,
    started_at: Option<i64>,
    ended_at: i64,
    ended_as: String,
    failure: Option<String>,
    reason: Option<String>,
    sweep_version: Option<String>,
}

#[derive(FromRow)]
struct CurveRecord {
    iteration: i64,
    loss: Option<f64>,
    lr: Option<f64>,
    secs: Option<f64>,
}

const JOB_COLUMNS: &str = "s.name AS sweep, j.id, j.hash, j.stage, j.label, j.status, j.attempts,
    j.seed, j.config_json, j.artifact_dir, j.error, j.iteration, j.total_iters, j.started_at,
    j.finished_at, j.retired_at, j.sweep_version";

impl SqliteStore {
    /// Opens (creating file and parent folders if missing) and migrates the database at `path`.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).with_context(|| {
                format!(
                    "results database {}: cannot create its folder {}",
                    path.display(),
                    parent.display()
                )
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = Self::connect(options)
            .await
            .with_context(|| format!("cannot open results database {}", path.display()))?;
        let mut store = SqliteStore {
            pool,
            path: path.to_path_buf(),
            identity: String::new(),
        };
        store.migrate().await?;
        store.identity = store.load_identity().await?;
        Ok(store)
    }

    /// Connects, retrying while another process is creating the same file: switching a new
    /// file to WAL takes an exclusive lock, and SQLite reports the loser busy at once rather
    /// than waiting for it.
    async fn connect(
        options: SqliteConnectOptions,
    ) -> std::result::Result<SqlitePool, sqlx::Error> {
        let mut attempt = 0;
        loop {
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(BUSY_TIMEOUT * 2)
                .connect_with(options.clone())
                .await;
            match pool {
                Err(e) if attempt < 20 && is_busy(&e) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(25 * attempt)).await;
                }
                other => return other,
            }
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn query_error(&self, what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> anyhow::Error {
        let location = self.location();
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

    async fn migrate(&self) -> Result<()> {
        // Several processes may open a fresh file at once; sqlx's SQLite migrator takes no
        // lock, so a loser sees "table already exists" and retries, finding it applied.
        let mut last_err = None;
        for attempt in 0..5 {
            self.refuse_newer_schema().await?;
            match MIGRATOR.run(&self.pool).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    last_err = Some(e);
                    tokio::time::sleep(Duration::from_millis(50 * (attempt + 1))).await;
                }
            }
        }
        let e = last_err.expect("loop ran");
        Err(anyhow::Error::new(e)).with_context(|| {
            format!(
                "results database {}: applying the schema migrations failed",
                self.path.display()
            )
        })
    }

    async fn refuse_newer_schema(&self) -> Result<()> {
        let has_table: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_optional(&self.pool)
        .await
        .with_context(|| format!("cannot read results database {}", self.path.display()))?;
        if has_table.is_none() {
            return Ok(());
        }
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
            .fetch_all(&self.pool)
            .await
            .with_context(|| {
                format!(
                    "cannot read the schema version of results database {}",
                    self.path.display()
                )
            })?;
        let known: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        let mut unknown: Vec<i64> = applied.into_iter().filter(|v| !known.contains(v)).collect();
        if !unknown.is_empty() {
            unknown.sort_unstable();
            return Err(StoreError::NewerSchema {
                location: self.location(),
                unknown,
                known_max: known.iter().copied().max().unwrap_or(0),
            }
            .into());
        }
        Ok(())
    }

    /// The identity row, made on first open (two processes racing both read the winner's).
    async fn load_identity(&self) -> Result<String> {
        let fresh = format!(
            "{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        sqlx::query(
            "INSERT INTO store_meta (key, value) VALUES ('identity', ?) ON CONFLICT (key) DO NOTHING",
        )
        .bind(&fresh)
        .execute(&self.pool)
        .await
        .map_err(self.query_error("recording the database identity"))?;
        sqlx::query_scalar("SELECT value FROM store_meta WHERE key = 'identity'")
            .fetch_one(&self.pool)
            .await
            .map_err(self.query_error("reading the database identity"))
    }

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>> {
        // IMMEDIATE: take the write lock up front, so a read-then-write never deadlocks.
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(self.query_error("starting a write transaction"))
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

    async fn record_attempt(
        tx: &mut Transaction<'static, Sqlite>,
        job_id: i64,
        ended_as: JobStatus,
        failure: Option<FailureKind>,
        reason: Option<&str>,
        sweep_version: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO attempts (job_id, attempt, owner, started_at, ended_at, ended_as, failure, reason, sweep_version)
             SELECT id, attempts, owner, started_at, ?, ?, ?, ?, ? FROM jobs WHERE id = ?
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
        tx: &mut Transaction<'static, Sqlite>,
        job_id: i64,
        metrics: &[MetricValue],
        iterations: usize,
        sweep_version: Option<&str>,
    ) -> Result<()> {
        sqlx::query("DELETE FROM metrics WHERE job_id = ?")
            .bind(job_id)
            .execute(&mut **tx)
            .await?;
        for m in metrics {
            sqlx::query(
                "INSERT INTO metrics (job_id, split, name, class, value) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(job_id)
            .bind(&m.split)
            .bind(&m.name)
            .bind(m.class.map(|c| c as i64))
            .bind(m.value)
            .execute(&mut **tx)
            .await
            .with_context(|| format!("recording metric {} of job {job_id}", m.name))?;
        }
        let now = now_ms();
        sqlx::query(
            "UPDATE jobs SET status = 'succeeded', finished_at = ?, heartbeat_at = ?,
                 iteration = ?, error = NULL, stderr_tail = NULL, sweep_version = ? WHERE id = ?",
        )
        .bind(now)
        .bind(now)
        .bind(iterations as i64)
        .bind(sweep_version)
        .bind(job_id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

impl SqliteStore {
    async fn finish_diverged(
        tx: &mut Transaction<'static, Sqlite>,
        job_id: i64,
        iter: usize,
        last_finite_loss: Option<f64>,
    ) -> Result<JobStatus> {
        let last = last_finite_loss
            .map(|l| format!("last finite loss {l}"))
            .unwrap_or_else(|| "no finite loss".into());
        let reason = format!("loss diverged at iteration {iter} ({last})");
        let now = now_ms();
        sqlx::query(
            "UPDATE jobs SET status = 'diverged', finished_at = ?, heartbeat_at = ?,
                 iteration = ?, error = ? WHERE id = ?",
        )
        .bind(now)
        .bind(now)
        .bind(iter as i64)
        .bind(&reason)
        .bind(job_id)
        .execute(&mut **tx)
        .await?;
        Self::record_attempt(tx, job_id, JobStatus::Diverged, None, Some(&reason), None).await?;
        Ok(JobStatus::Diverged)
    }

    /// `next`: pending (retried: back to the queue, no owner) or failed (terminal: the
    /// owner is kept for the record).
    async fn finish_failed(
        tx: &mut Transaction<'static, Sqlite>,
        job_id: i64,
        next: JobStatus,
        failures: u32,
        reason: &str,
        stderr_tail: &str,
    ) -> Result<()> {
        let sql = if next == JobStatus::Pending {
            "UPDATE jobs SET status = 'pending', owner = NULL, heartbeat_at = ?, failures = ?,
                 finished_at = ?, error = ?, stderr_tail = ? WHERE id = ?"
        } else {
            "UPDATE jobs SET status = 'failed', heartbeat_at = ?, failures = ?,
                 finished_at = ?, error = ?, stderr_tail = ? WHERE id = ?"
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

#[async_trait]
impl Store for SqliteStore {
    fn location(&self) -> String {
        self.path.display().to_string()
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
            "INSERT INTO sweeps (name, spec_path, spec_text, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET spec_path = excluded.spec_path,
                 spec_text = excluded.spec_text, updated_at = excluded.updated_at
             RETURNING id",
        )
        .bind(name)
        .bind(spec_path)
        .bind(spec_text)
        .bind(now)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(self.query_error(format!("recording sweep {name:?}")))
    }

    async fn sweep_id(&self, name: &str) -> Result<Option<i64>> {
        sqlx::query_scalar("SELECT id FROM sweeps WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.query_error(format!("looking up sweep {name:?}")))
    }

    async fn sweeps(&self) -> Result<Vec<SweepRow>> {
        let rows: Vec<SweepRecord> = sqlx::query_as(
            "SELECT s.id, s.name, s.spec_path, s.created_at, s.updated_at,
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
            let total_iters = config.get("iters").and_then(|v| v.as_i64());
            let r = sqlx::query(
                "INSERT INTO jobs (sweep_id, hash, stage, label, config_json, seed, depends_on,
                     status, attempts, max_attempts, total_iters, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)
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
            .execute(&mut *tx)
            .await
            .map_err(self.query_error(format!(
                "adding job {} ({}) to sweep {sweep_id}",
                job.hash, job.label
            )))?;
            added += r.rows_affected() as usize;
        }
        tx.commit()
            .await
            .map_err(self.query_error(format!("adding the jobs of sweep {sweep_id}")))?;
        Ok((added, jobs.len() - added))
    }

    async fn retire_others(&self, sweep_id: i64, current: &[String]) -> Result<usize> {
        let hashes = serde_json::to_string(current).expect("strings serialise");
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE jobs SET retired_at = CASE
                 WHEN hash IN (SELECT value FROM json_each(?)) THEN NULL
                 ELSE COALESCE(retired_at, ?) END
             WHERE sweep_id = ?",
        )
        .bind(&hashes)
        .bind(now_ms())
        .bind(sweep_id)
        .execute(&mut *tx)
        .await
        .map_err(self.query_error(format!("retiring jobs of sweep {sweep_id}")))?;
        let retired: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE sweep_id = ? AND retired_at IS NOT NULL",
        )
        .bind(sweep_id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(retired as usize)
    }

    async fn claim_next(&self, sweep_id: i64, owner: &Owner) -> Result<Option<ClaimedJob>> {
        let now = now_ms();
        // One statement under SQLite's write lock: two processes never get the same job.
        let row: Option<ClaimRecord> = sqlx::query_as(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, owner = ?,
                 heartbeat_at = ?, started_at = ?, finished_at = NULL
             WHERE status IN ('pending', 'interrupted') AND id = (
                 SELECT j.id FROM jobs j
                 WHERE j.sweep_id = ? AND j.status IN ('pending', 'interrupted')
                   AND j.retired_at IS NULL
                   AND (j.depends_on IS NULL OR EXISTS (
                        SELECT 1 FROM jobs d WHERE d.sweep_id = j.sweep_id
                          AND d.hash = j.depends_on AND d.status = 'succeeded'))
                 ORDER BY CASE j.status WHEN 'interrupted' THEN 0 ELSE 1 END, j.id
                 LIMIT 1)
             RETURNING id, hash, label, config_json, attempts, failures, max_attempts, artifact_dir, depends_on",
        )
        .bind(owner.to_string())
        .bind(now)
        .bind(now)
        .bind(sweep_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.query_error(format!("claiming a job of sweep {sweep_id}")))?;
        Ok(row.map(|r| ClaimedJob {
            id: r.id,
            hash: r.hash,
            label: r.label,
            config_json: r.config_json,
            attempts: r.attempts as u32,
            failures: r.failures as u32,
            max_attempts: r.max_attempts as u32,
            artifact_dir: r.artifact_dir,
            init_from_hash: r.depends_on,
        }))
    }

    async fn heartbeat(&self, job_id: i64, owner: &Owner, iteration: usize) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE jobs SET heartbeat_at = ?, iteration = ?
             WHERE id = ? AND owner = ? AND status = 'running'",
        )
        .bind(now_ms())
        .bind(iteration as i64)
        .bind(job_id)
        .bind(owner.to_string())
        .execute(&self.pool)
        .await
        .map_err(self.query_error(format!("heartbeat of job {job_id}")))?;
        Ok(r.rows_affected() == 1)
    }

    async fn finish(&self, job_id: i64, owner: &Owner, finish: Finish) -> Result<JobStatus> {
        let now = now_ms();
        let owner_s = owner.to_string();
        let mut tx = self.begin().await?;
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT failures, max_attempts FROM jobs WHERE id = ? AND owner = ? AND status = 'running'",
        )
        .bind(job_id)
        .bind(&owner_s)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((failures, max_attempts)) = row else {
            return Err(StoreError::NotOwner {
                job_id,
                owner: owner_s,
            }
            .into());
        };
        let rule = RetryRule {
            max_attempts: max_attempts as u32,
        };
        let new_status = match &finish {
            Finish::Succeeded {
                metrics,
                images,
                iterations,
                sweep_version,
            } => {
                let version = sweep_version.as_deref();
                Self::finish_succeeded(&mut tx, job_id, metrics, *iterations, version).await?;
                Self::insert_images(&mut tx, job_id, images).await?;
                Self::record_attempt(&mut tx, job_id, JobStatus::Succeeded, None, None, version)
                    .await?;
                JobStatus::Succeeded
            }
            Finish::Diverged {
                iter,
                last_finite_loss,
            } => Self::finish_diverged(&mut tx, job_id, *iter, *last_finite_loss).await?,
            Finish::Failed {
                reason,
                stderr_tail,
                kind,
            } => {
                let failures = failures as u32 + 1;
                let next = rule.status_after_failure(failures, *kind);
                Self::record_attempt(&mut tx, job_id, next, Some(*kind), Some(reason), None)
                    .await?;
                Self::finish_failed(&mut tx, job_id, next, failures, reason, stderr_tail).await?;
                next
            }
            Finish::Interrupted => {
                Self::record_attempt(&mut tx, job_id, JobStatus::Interrupted, None, None, None)
                    .await?;
                sqlx::query(
                    "UPDATE jobs SET status = 'interrupted', owner = NULL, heartbeat_at = ? WHERE id = ?",
                )
                .bind(now)
                .bind(job_id)
                .execute(&mut *tx)
                .await?;
                JobStatus::Interrupted
            }
        };
        tx.commit()
            .await
            .map_err(self.query_error(format!("recording the end of job {job_id}")))?;
        Ok(new_status)
    }

    async fn release_where(
        &self,
        sweep_id: i64,
        is_gone: &(dyn for<'o> Fn(&'o str, Duration) -> bool + Sync),
    ) -> Result<Vec<i64>> {
        let now = now_ms();
        let rows: Vec<(i64, Option<String>, Option<i64>)> = sqlx::query_as(
            "SELECT id, owner, heartbeat_at FROM jobs WHERE sweep_id = ? AND status = 'running'",
        )
        .bind(sweep_id)
        .fetch_all(&self.pool)
        .await
        .map_err(self.query_error(format!("reading the running jobs of sweep {sweep_id}")))?;
        let mut released = Vec::new();
        for (id, owner, beat) in rows {
            let age = Duration::from_millis((now - beat.unwrap_or(0)).max(0) as u64);
            let owner = owner.unwrap_or_default();
            if !is_gone(&owner, age) {
                continue;
            }
            // Guarded by the owner seen above: a job that moved on meanwhile is left alone.
            let reason = format!("its orchestrator {owner} went away");
            let mut tx = self.begin().await?;
            let done = sqlx::query(
                "UPDATE jobs SET status = 'interrupted', owner = NULL, error = ?
                 WHERE id = ? AND status = 'running' AND owner IS ?",
            )
            .bind(&reason)
            .bind(id)
            .bind(if owner.is_empty() { None } else { Some(&owner) })
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                Self::record_attempt(
                    &mut tx,
                    id,
                    JobStatus::Interrupted,
                    None,
                    Some(&reason),
                    None,
                )
                .await?;
                released.push(id);
            }
            tx.commit().await?;
        }
        Ok(released)
    }

    async fn mark_interrupted(&self, job_id: i64, owner: &Owner) -> Result<()> {
        sqlx::query(
            "UPDATE jobs SET status = 'interrupted', owner = NULL, heartbeat_at = ?
             WHERE id = ? AND owner = ? AND status = 'running'",
        )
        .bind(now_ms())
        .bind(job_id)
        .bind(owner.to_string())
        .execute(&self.pool)
        .await
        .map_err(self.query_error(format!("interrupting job {job_id}")))?;
        Ok(())
    }

    async fn set_artifact_dir(&self, job_id: i64, dir: &str) -> Result<()> {
        let r = sqlx::query("UPDATE jobs SET artifact_dir = ? WHERE id = ?")
            .bind(dir)
            .bind(job_id)
            .execute(&self.pool)
            .await
            .map_err(self.query_error(format!("recording the artifact folder of job {job_id}")))?;
        if r.rows_affected() == 0 {
            bail!("set_artifact_dir: no job {job_id} in {}", self.location());
        }
        Ok(())
    }

    async fn record_curve(&self, job_id: i64, points: &[CurvePoint]) -> Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for p in points {
            sqlx::query(
                "INSERT INTO curves (job_id, iteration, loss, lr, secs) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (job_id, iteration) DO UPDATE
                 SET loss = excluded.loss, lr = excluded.lr, secs = excluded.secs",
            )
            .bind(job_id)
            .bind(p.iteration as i64)
            .bind(p.loss)
            .bind(p.lr)
            .bind(p.secs)
            .execute(&mut *tx)
            .await
            .map_err(self.query_error(format!("recording the curve of job {job_id}")))?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn record_artifact(
        &self,
        job_id: i64,
        kind: &str,
        path: &str,
        iteration: Option<usize>,
    ) -> Result<()> {
        if !ARTIFACT_KINDS.contains(&kind) {
            return Err(StoreError::Invalid(format!(
                "artifact kind {kind:?} of job {job_id}: expected one of {ARTIFACT_KINDS:?}"
            ))
            .into());
        }
        sqlx::query(
            "INSERT INTO artifacts (job_id, kind, path, iteration, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(job_id)
        .bind(kind)
        .bind(path)
        .bind(iteration.map(|i| i as i64))
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(self.query_error(format!("recording artifact {path} of job {job_id}")))?;
        Ok(())
    }

    async fn counts(&self, sweep_id: i64) -> Result<BTreeMap<JobStatus, usize>> {
        let mut counts: BTreeMap<JobStatus, usize> =
            JobStatus::ALL.into_iter().map(|s| (s, 0)).collect();
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, COUNT(*) AS n FROM jobs WHERE sweep_id = ? AND retired_at IS NULL
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
            "SELECT id, label, attempts, iteration, total_iters, started_at, heartbeat_at, owner
             FROM jobs WHERE sweep_id = ? AND status = 'running' ORDER BY id",
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
            })
            .collect())
    }

    async fn blocked(&self, sweep_id: i64) -> Result<Vec<BlockedJob>> {
        let rows: Vec<BlockedRecord> = sqlx::query_as(
            "SELECT j.id, j.label, j.depends_on, d.status AS dep_status FROM jobs j
             LEFT JOIN jobs d ON d.sweep_id = j.sweep_id AND d.hash = j.depends_on
             WHERE j.sweep_id = ? AND j.status IN ('pending', 'interrupted')
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
            "SELECT artifact_dir FROM jobs WHERE sweep_id = ? AND hash = ? AND status = 'succeeded'",
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
            return Err(StoreError::NoSuchSweep {
                name: name.to_string(),
                known: if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                },
            }
            .into());
        }
        self.job_rows("WHERE s.name = ?", Some(name)).await
    }

    async fn find_job(&self, selector: &str) -> Result<JobRow> {
        let not_found = || StoreError::NoSuchJob {
            location: self.location(),
            selector: selector.to_string(),
        };
        if let Ok(id) = selector.parse::<i64>() {
            if let Some(row) = self.job_rows("WHERE j.id = ?", Some(selector)).await?.pop() {
                return Ok(row);
            }
            // A number may also be a hash prefix (hashes are hex).
            let _ = id;
        }
        let escaped = selector
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let pattern = format!("{escaped}%");
        let mut rows = self
            .job_rows("WHERE j.hash LIKE ? ESCAPE '\\'", Some(&pattern))
            .await?;
        if rows.is_empty() {
            rows = self.job_rows("WHERE j.label = ?", Some(selector)).await?;
        }
        match rows.len() {
            0 => Err(not_found().into()),
            1 => Ok(rows.pop().expect("one row")),
            n => Err(StoreError::AmbiguousJob {
                location: self.location(),
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
             FROM attempts WHERE job_id = ? ORDER BY attempt",
        )
        .bind(job_id)
        .fetch_all(&self.pool)
        .await
        .map_err(self.query_error(format!("reading the attempts of job {job_id}")))?;
        rows.into_iter()
            .map(|r| {
                Ok(AttemptRow {
                    attempt: r.attempt as u32,
                    owner: r.owner,
                    started_at: r.started_at,
                    ended_at: r.ended_at,
                    ended_as: status(&r.ended_as)?,
                    failure: match r.failure.as_deref() {
                        Some("permanent") => Some(FailureKind::Permanent),
                        Some(_) => Some(FailureKind::Transient),
                        None => None,
                    },
                    reason: r.reason,
                    sweep_version: r.sweep_version,
                })
            })
            .collect()
    }

    async fn artifacts(&self, job_id: i64) -> Result<Vec<(String, String, Option<usize>)>> {
        let rows: Vec<(String, String, Option<i64>)> = sqlx::query_as(
            "SELECT kind, path, iteration FROM artifacts WHERE job_id = ? ORDER BY created_at, id",
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
            "SELECT iteration, loss, lr, secs FROM curves WHERE job_id = ? ORDER BY iteration",
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

    async fn record_eval(
        &self,
        job_id: i64,
        iteration: usize,
        values: &[MetricValue],
    ) -> Result<()> {
        self.write_eval(job_id, iteration, values).await
    }

    async fn eval_curve(&self, job_id: i64) -> Result<Vec<(usize, MetricValue)>> {
        self.read_eval(job_id).await
    }

    async fn image_metrics(&self, job_id: i64) -> Result<Vec<ImageMetric>> {
        self.read_images(job_id).await
    }

    async fn integrity_check(&self) -> Result<String> {
        let lines: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(&self.pool)
            .await
            .map_err(self.query_error("integrity check"))?;
        Ok(lines.join("\n"))
    }
}

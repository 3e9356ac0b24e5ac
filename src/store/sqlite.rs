//! [`Store`] on SQLite (sqlx). One file, WAL, shared by every orchestrator process of a sweep.

use super::{
    now_ms, owner_is_gone, BlockedJob, ClaimedJob, Finish, JobRow, NewJob, Owner, RunningJob,
    StoreError, SweepRow, ARTIFACT_KINDS, STATUSES,
};
use crate::trainer::MetricValue;
use anyhow::{anyhow, bail, Context, Result};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

static MIGRATOR: Migrator = sqlx::migrate!();

/// Writers wait this long for the database lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Handle on the results database; cheap to clone (a connection pool).
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
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

impl Store {
    /// Opens (creating file and parent folders if missing) and migrates the database at `path`.
    pub async fn open(path: &Path) -> Result<Store> {
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
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(BUSY_TIMEOUT * 2)
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open results database {}", path.display()))?;
        let store = Store {
            pool,
            path: path.to_path_buf(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
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
                path: self.path.clone(),
                unknown,
                known_max: known.iter().copied().max().unwrap_or(0),
            }
            .into());
        }
        Ok(())
    }

    /// Creates the sweep or updates its spec; returns its id.
    pub async fn upsert_sweep(&self, name: &str, spec_path: &str, spec_text: &str) -> Result<i64> {
        let now = now_ms();
        let id: i64 = sqlx::query_scalar(
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
        .with_context(|| format!("recording sweep {name:?} in {}", self.path.display()))?;
        Ok(id)
    }

    /// Enqueues jobs (one transaction); a job whose hash the sweep already has is left as it is.
    /// Returns (added, already there).
    pub async fn add_jobs(
        &self,
        sweep_id: i64,
        jobs: &[NewJob],
        max_attempts: u32,
    ) -> Result<(usize, usize)> {
        let now = now_ms();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
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
            .with_context(|| {
                format!(
                    "adding job {} ({}) to sweep {sweep_id}",
                    job.hash, job.label
                )
            })?;
            added += r.rows_affected() as usize;
        }
        tx.commit().await?;
        Ok((added, jobs.len() - added))
    }

    /// Marks the sweep's jobs whose hash is not in `current` (the plan of the file as it is
    /// now) as retired, and un-retires those that are; returns how many are retired now.
    /// Running jobs are left to finish; retired ones are never claimed.
    pub async fn retire_others(&self, sweep_id: i64, current: &[String]) -> Result<usize> {
        let hashes = serde_json::to_string(current).expect("strings serialise");
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
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
        .with_context(|| format!("retiring jobs of sweep {sweep_id}"))?;
        let retired: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE sweep_id = ? AND retired_at IS NOT NULL",
        )
        .bind(sweep_id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(retired as usize)
    }

    /// Atomically hands the next runnable job to `owner`: a pending or interrupted job
    /// (interrupted first, then by id) whose dependency, if any, has succeeded. One
    /// statement under SQLite's write lock, so two processes never get the same job.
    pub async fn claim_next(&self, sweep_id: i64, owner: &Owner) -> Result<Option<ClaimedJob>> {
        let now = now_ms();
        let row = sqlx::query(
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
        .with_context(|| format!("claiming a job of sweep {sweep_id} in {}", self.path.display()))?;
        Ok(row.map(|r| ClaimedJob {
            id: r.get("id"),
            hash: r.get("hash"),
            label: r.get("label"),
            config_json: r.get("config_json"),
            attempts: r.get::<i64, _>("attempts") as u32,
            failures: r.get::<i64, _>("failures") as u32,
            max_attempts: r.get::<i64, _>("max_attempts") as u32,
            artifact_dir: r.get("artifact_dir"),
            init_from_hash: r.get("depends_on"),
        }))
    }

    pub async fn set_artifact_dir(&self, job_id: i64, dir: &str) -> Result<()> {
        let r = sqlx::query("UPDATE jobs SET artifact_dir = ? WHERE id = ?")
            .bind(dir)
            .bind(job_id)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            bail!(
                "set_artifact_dir: no job {job_id} in {}",
                self.path.display()
            );
        }
        Ok(())
    }

    /// Records liveness and progress. Returns false when the job is no longer this owner's
    /// (released as orphan, or finished): the caller should stop the job.
    pub async fn heartbeat(&self, job_id: i64, owner: &Owner, iteration: usize) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE jobs SET heartbeat_at = ?, iteration = ?
             WHERE id = ? AND owner = ? AND status = 'running'",
        )
        .bind(now_ms())
        .bind(iteration as i64)
        .bind(job_id)
        .bind(owner.to_string())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records curve points `(iteration, loss, lr, secs)` in one transaction; an iteration
    /// recorded before (a resumed job) is overwritten.
    pub async fn record_curve(&self, job_id: i64, points: &[(usize, f64, f64, f64)]) -> Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for &(iter, loss, lr, secs) in points {
            sqlx::query(
                "INSERT INTO curves (job_id, iteration, loss, lr, secs) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (job_id, iteration) DO UPDATE
                 SET loss = excluded.loss, lr = excluded.lr, secs = excluded.secs",
            )
            .bind(job_id)
            .bind(iter as i64)
            .bind(loss)
            .bind(lr)
            .bind(secs)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("recording curve of job {job_id}"))?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// `kind`: checkpoint, prediction or final.
    pub async fn record_artifact(
        &self,
        job_id: i64,
        kind: &str,
        path: &str,
        iteration: Option<usize>,
    ) -> Result<()> {
        if !ARTIFACT_KINDS.contains(&kind) {
            bail!("artifact kind {kind:?} of job {job_id}: expected one of {ARTIFACT_KINDS:?}");
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
        .with_context(|| format!("recording artifact {path} of job {job_id}"))?;
        Ok(())
    }

    /// Artifacts of a job: (kind, path, iteration), oldest first.
    pub async fn artifacts(&self, job_id: i64) -> Result<Vec<(String, String, Option<usize>)>> {
        let rows = sqlx::query(
            "SELECT kind, path, iteration FROM artifacts WHERE job_id = ? ORDER BY created_at, id",
        )
        .bind(job_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("kind"), r.get("path"), opt_usize(r.get("iteration"))))
            .collect())
    }

    /// Records how a job ended, in one transaction, if `owner` still owns it (else
    /// [`StoreError::NotOwner`]). Succeeded replaces the job's metrics.
    pub async fn finish(&self, job_id: i64, owner: &Owner, finish: Finish) -> Result<()> {
        let now = now_ms();
        let owner_s = owner.to_string();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query(
            "SELECT failures, max_attempts FROM jobs WHERE id = ? AND owner = ? AND status = 'running'",
        )
        .bind(job_id)
        .bind(&owner_s)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::NotOwner {
                job_id,
                owner: owner_s,
            }
            .into());
        };
        let failures: i64 = row.get("failures");
        let max_attempts: i64 = row.get("max_attempts");
        match finish {
            Finish::Succeeded {
                metrics,
                iterations,
            } => {
                sqlx::query("DELETE FROM metrics WHERE job_id = ?")
                    .bind(job_id)
                    .execute(&mut *tx)
                    .await?;
                for m in &metrics {
                    sqlx::query(
                        "INSERT INTO metrics (job_id, split, name, class, value) VALUES (?, ?, ?, ?, ?)",
                    )
                    .bind(job_id)
                    .bind(&m.split)
                    .bind(&m.name)
                    .bind(m.class.map(|c| c as i64))
                    .bind(m.value)
                    .execute(&mut *tx)
                    .await
                    .with_context(|| format!("recording metric {} of job {job_id}", m.name))?;
                }
                sqlx::query(
                    "UPDATE jobs SET status = 'succeeded', finished_at = ?, heartbeat_at = ?,
                         iteration = ?, error = NULL, stderr_tail = NULL WHERE id = ?",
                )
                .bind(now)
                .bind(now)
                .bind(iterations as i64)
                .bind(job_id)
                .execute(&mut *tx)
                .await?;
            }
            Finish::Diverged {
                iter,
                last_finite_loss,
            } => {
                let last = last_finite_loss
                    .map(|l| format!("last finite loss {l}"))
                    .unwrap_or_else(|| "no finite loss".into());
                sqlx::query(
                    "UPDATE jobs SET status = 'diverged', finished_at = ?, heartbeat_at = ?,
                         iteration = ?, error = ? WHERE id = ?",
                )
                .bind(now)
                .bind(now)
                .bind(iter as i64)
                .bind(format!("loss diverged at iteration {iter} ({last})"))
                .bind(job_id)
                .execute(&mut *tx)
                .await?;
            }
            Finish::Failed {
                reason,
                stderr_tail,
            } => {
                // Retry: back to the queue, no owner; terminal: keep the owner for the record.
                let retry = failures + 1 < max_attempts;
                let sql = if retry {
                    "UPDATE jobs SET status = 'pending', owner = NULL, heartbeat_at = ?, failures = failures + 1,
                         finished_at = ?, error = ?, stderr_tail = ? WHERE id = ?"
                } else {
                    "UPDATE jobs SET status = 'failed', heartbeat_at = ?, failures = failures + 1,
                         finished_at = ?, error = ?, stderr_tail = ? WHERE id = ?"
                };
                sqlx::query(sql)
                    .bind(now)
                    .bind(if retry { None } else { Some(now) })
                    .bind(&reason)
                    .bind(&stderr_tail)
                    .bind(job_id)
                    .execute(&mut *tx)
                    .await?;
            }
            Finish::Interrupted => {
                sqlx::query(
                    "UPDATE jobs SET status = 'interrupted', owner = NULL, heartbeat_at = ? WHERE id = ?",
                )
                .bind(now)
                .bind(job_id)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit()
            .await
            .with_context(|| format!("recording the end of job {job_id}"))?;
        Ok(())
    }

    /// Running jobs of the sweep whose owner `is_gone` (called with the owner string) become
    /// `interrupted` (resumable; attempts unchanged). Returns their ids.
    pub async fn release_orphans(
        &self,
        sweep_id: i64,
        is_gone: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<i64>> {
        self.release_where(sweep_id, &|owner, _age| is_gone(owner))
            .await
    }

    /// [`release_orphans`](Self::release_orphans) with [`owner_is_gone`]: same host, the
    /// process is checked; other hosts, the heartbeat must be younger than `stale_after`.
    pub async fn release_dead_owners(
        &self,
        sweep_id: i64,
        stale_after: Duration,
    ) -> Result<Vec<i64>> {
        self.release_where(sweep_id, &|owner, age| {
            owner_is_gone(owner, stale_after, age)
        })
        .await
    }

    async fn release_where(
        &self,
        sweep_id: i64,
        is_gone: &dyn Fn(&str, Duration) -> bool,
    ) -> Result<Vec<i64>> {
        let now = now_ms();
        let rows = sqlx::query(
            "SELECT id, owner, heartbeat_at FROM jobs WHERE sweep_id = ? AND status = 'running'",
        )
        .bind(sweep_id)
        .fetch_all(&self.pool)
        .await?;
        let mut released = Vec::new();
        for r in rows {
            let id: i64 = r.get("id");
            let owner: Option<String> = r.get("owner");
            let beat: Option<i64> = r.get("heartbeat_at");
            let age = Duration::from_millis((now - beat.unwrap_or(0)).max(0) as u64);
            let owner = owner.unwrap_or_default();
            if !is_gone(&owner, age) {
                continue;
            }
            // Guarded by the owner seen above: a job that moved on meanwhile is left alone.
            let done = sqlx::query(
                "UPDATE jobs SET status = 'interrupted', owner = NULL,
                     error = 'its orchestrator ' || ? || ' went away'
                 WHERE id = ? AND status = 'running' AND owner IS ?",
            )
            .bind(&owner)
            .bind(id)
            .bind(if owner.is_empty() { None } else { Some(&owner) })
            .execute(&self.pool)
            .await?;
            if done.rows_affected() == 1 {
                released.push(id);
            }
        }
        Ok(released)
    }

    /// Stops a running job resumably (Ctrl-C). A job no longer `owner`'s is left as it is.
    pub async fn mark_interrupted(&self, job_id: i64, owner: &Owner) -> Result<()> {
        sqlx::query(
            "UPDATE jobs SET status = 'interrupted', owner = NULL, heartbeat_at = ?
             WHERE id = ? AND owner = ? AND status = 'running'",
        )
        .bind(now_ms())
        .bind(job_id)
        .bind(owner.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Number of the sweep's current (not retired) jobs by status; every status is present
    /// (0 when none).
    pub async fn counts(&self, sweep_id: i64) -> Result<BTreeMap<String, usize>> {
        let mut counts: BTreeMap<String, usize> =
            STATUSES.iter().map(|s| (s.to_string(), 0)).collect();
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM jobs WHERE sweep_id = ? AND retired_at IS NULL
             GROUP BY status",
        )
        .bind(sweep_id)
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            counts.insert(r.get("status"), r.get::<i64, _>("n") as usize);
        }
        Ok(counts)
    }

    pub async fn sweep_id(&self, name: &str) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT id FROM sweeps WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn sweeps(&self) -> Result<Vec<SweepRow>> {
        let rows = sqlx::query(
            "SELECT s.id, s.name, s.spec_path, s.created_at, s.updated_at,
                 (SELECT COUNT(*) FROM jobs j WHERE j.sweep_id = s.id AND j.retired_at IS NULL) AS jobs,
                 (SELECT COUNT(*) FROM jobs j WHERE j.sweep_id = s.id AND j.retired_at IS NULL
                     AND j.status = 'succeeded') AS succeeded
             FROM sweeps s ORDER BY s.id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| SweepRow {
                id: r.get("id"),
                name: r.get("name"),
                spec_path: r.get("spec_path"),
                created_at: r.get("created_at"),
                updated_at: r.get("updated_at"),
                jobs: r.get::<i64, _>("jobs") as usize,
                succeeded: r.get::<i64, _>("succeeded") as usize,
            })
            .collect())
    }

    pub async fn running(&self, sweep_id: i64) -> Result<Vec<RunningJob>> {
        let rows = sqlx::query(
            "SELECT id, label, attempts, iteration, total_iters, started_at, heartbeat_at, owner
             FROM jobs WHERE sweep_id = ? AND status = 'running' ORDER BY id",
        )
        .bind(sweep_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| RunningJob {
                id: r.get("id"),
                label: r.get("label"),
                attempts: r.get::<i64, _>("attempts") as u32,
                iteration: r.get::<i64, _>("iteration").max(0) as usize,
                total_iters: opt_usize(r.get("total_iters")),
                started_at: r.get("started_at"),
                heartbeat_at: r.get("heartbeat_at"),
                owner: r.get("owner"),
            })
            .collect())
    }

    /// Pending jobs that can never be claimed because their dependency failed, diverged or
    /// does not exist: the scheduler reports them instead of waiting forever.
    pub async fn blocked(&self, sweep_id: i64) -> Result<Vec<BlockedJob>> {
        let rows = sqlx::query(
            "SELECT j.id, j.label, j.depends_on, d.status AS dep_status FROM jobs j
             LEFT JOIN jobs d ON d.sweep_id = j.sweep_id AND d.hash = j.depends_on
             WHERE j.sweep_id = ? AND j.status IN ('pending', 'interrupted')
               AND j.depends_on IS NOT NULL
               AND (d.id IS NULL OR d.status IN ('failed', 'diverged'))
             ORDER BY j.id",
        )
        .bind(sweep_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| BlockedJob {
                id: r.get("id"),
                label: r.get("label"),
                depends_on: r.get("depends_on"),
                dependency_status: r.get("dep_status"),
            })
            .collect())
    }

    /// Artifact folder of the sweep's succeeded job with this hash (`init.from`).
    pub async fn dependency_artifact(&self, sweep_id: i64, hash: &str) -> Result<Option<String>> {
        let dir: Option<Option<String>> = sqlx::query_scalar(
            "SELECT artifact_dir FROM jobs WHERE sweep_id = ? AND hash = ? AND status = 'succeeded'",
        )
        .bind(sweep_id)
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(dir.flatten())
    }

    /// Every job (of one sweep, or all) with all its metrics, ordered by sweep then job id.
    pub async fn report_rows(&self, sweep: Option<&str>) -> Result<Vec<JobRow>> {
        if let Some(name) = sweep {
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
        }
        let filter = if sweep.is_some() {
            "WHERE s.name = ?"
        } else {
            ""
        };
        let job_sql = format!(
            "SELECT s.name AS sweep, j.id, j.hash, j.stage, j.label, j.status, j.attempts, j.seed,
                 j.config_json, j.artifact_dir, j.error, j.iteration, j.total_iters, j.started_at, j.finished_at,
                 j.retired_at
             FROM jobs j JOIN sweeps s ON s.id = j.sweep_id {filter} ORDER BY s.id, j.id"
        );
        let metric_sql = format!(
            "SELECT m.job_id, m.split, m.name, m.class, m.value
             FROM metrics m JOIN jobs j ON j.id = m.job_id JOIN sweeps s ON s.id = j.sweep_id {filter}
             ORDER BY m.job_id, m.split, m.name, m.class"
        );
        let mut jq = sqlx::query(&job_sql);
        let mut mq = sqlx::query(&metric_sql);
        if let Some(name) = sweep {
            jq = jq.bind(name);
            mq = mq.bind(name);
        }
        let jobs = jq.fetch_all(&self.pool).await?;
        let metric_rows = mq.fetch_all(&self.pool).await?;
        let mut metrics: HashMap<i64, Vec<MetricValue>> = HashMap::new();
        for r in &metric_rows {
            metrics
                .entry(r.get("job_id"))
                .or_default()
                .push(metric_from_row(r));
        }
        Ok(jobs
            .iter()
            .map(|r| {
                let id: i64 = r.get("id");
                JobRow {
                    sweep: r.get("sweep"),
                    job_id: id,
                    hash: r.get("hash"),
                    stage: r.get("stage"),
                    label: r.get("label"),
                    status: r.get("status"),
                    attempts: r.get::<i64, _>("attempts") as u32,
                    seed: r.get::<i64, _>("seed") as u64,
                    config_json: r.get("config_json"),
                    metrics: metrics.remove(&id).unwrap_or_default(),
                    artifact_dir: r.get("artifact_dir"),
                    error: r.get("error"),
                    iteration: r.get::<i64, _>("iteration").max(0) as usize,
                    total_iters: opt_usize(r.get("total_iters")),
                    started_at: r.get("started_at"),
                    finished_at: r.get("finished_at"),
                    retired: r.get::<Option<i64>, _>("retired_at").is_some(),
                }
            })
            .collect())
    }

    /// A job's curve, `(iteration, loss, lr, secs)` by iteration; NaN losses read back as NaN.
    pub async fn curve(&self, job_id: i64) -> Result<Vec<(usize, f64, f64, f64)>> {
        let rows = sqlx::query(
            "SELECT iteration, loss, lr, secs FROM curves WHERE job_id = ? ORDER BY iteration",
        )
        .bind(job_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get::<i64, _>("iteration").max(0) as usize,
                    f64_or_nan(r.get("loss")),
                    f64_or_nan(r.get("lr")),
                    f64_or_nan(r.get("secs")),
                )
            })
            .collect())
    }

    /// `PRAGMA integrity_check`: "ok" for a sound file, else SQLite's list of problems.
    pub async fn integrity_check(&self) -> Result<String> {
        let lines: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(&self.pool)
            .await
            .with_context(|| format!("integrity check of {}", self.path.display()))?;
        Ok(lines.join("\n"))
    }
}

fn metric_from_row(r: &SqliteRow) -> MetricValue {
    MetricValue {
        split: r.get("split"),
        name: r.get("name"),
        class: r.get::<Option<i64>, _>("class").map(|c| c.max(0) as usize),
        value: f64_or_nan(r.get("value")),
    }
}

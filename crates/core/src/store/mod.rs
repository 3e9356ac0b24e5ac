//! The results database: sweeps, jobs (the work queue), attempts, metrics, loss curves,
//! artifacts.
//!
//! [`Store`] is the contract (as Optuna's `storages/_base.py`); each backend owns its SQL
//! and its migrations (`migrations/<backend>/` at the workspace root). Today: [`SqliteStore`]
//! (one file, WAL, shared by every orchestrator process on a machine). The store's test
//! suite is written once against the trait, so the next backend runs the same suite.
//!
//! The jobs table is also the scheduler's queue: [`Store::claim_next`] hands each runnable
//! job to exactly one [`Owner`], even across processes sharing the database; every write
//! about a running job names its owner and is refused once the job is no longer that
//! owner's (see [`owner`]).

pub mod owner;
mod sqlite;

pub use owner::{local_hostname, now_ms, owner_is_gone, Owner};
pub use sqlite::SqliteStore;

use crate::job::{FailureKind, JobStatus};
use crate::protocol::{ImageMetric, MetricValue};
use anyhow::{bail, Result};
use async_trait::async_trait;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Artifact kinds, as stored.
pub const ARTIFACT_KINDS: &[&str] = &["checkpoint", "prediction", "final"];

/// Typed store errors (wrapped in `anyhow::Error`; downcast to inspect). Each names the
/// database, and the sweep or job a failed operation was about.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "results database {location} has schema version(s) {unknown:?} that this sweep binary does not know \
         (it knows up to {known_max}); it was written by a newer sweep: use that version, or another database file"
    )]
    NewerSchema {
        location: String,
        unknown: Vec<i64>,
        known_max: i64,
    },
    #[error("job {job_id} is no longer owned by {owner} (released or claimed by another process); its result was not recorded")]
    NotOwner { job_id: i64, owner: String },
    #[error("no sweep named {name:?} in the results database (known: {known})")]
    NoSuchSweep { name: String, known: String },
    #[error("{location}: no job matches {selector:?} (give a job id, a hash prefix or a label)")]
    NoSuchJob { location: String, selector: String },
    #[error("{location}: {selector:?} matches {count} jobs ({examples}); give more of the hash or the job id")]
    AmbiguousJob {
        location: String,
        selector: String,
        count: usize,
        examples: String,
    },
    #[error("results database {location}: {what}: {source}")]
    Query {
        location: String,
        what: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// A job to enqueue.
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    pub hash: String,
    /// Stage name (multi-stage sweeps), e.g. `pretrain`.
    pub stage: Option<String>,
    pub label: String,
    /// Canonical JSON of the job's `JobConfig`.
    pub config_json: String,
    pub seed: u64,
    /// Hash of the job (same sweep) that must succeed first; its final checkpoint initialises this one.
    pub depends_on: Option<String>,
}

/// A job handed to one owner by [`Store::claim_next`].
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimedJob {
    pub id: i64,
    pub hash: String,
    pub label: String,
    pub config_json: String,
    /// 1-based number of this attempt (counted on claim: interrupted runs count too).
    pub attempts: u32,
    /// Failed attempts before this one.
    pub failures: u32,
    pub max_attempts: u32,
    /// Set by an earlier attempt: resume from the checkpoints there.
    pub artifact_dir: Option<String>,
    /// `depends_on`: look up its folder with [`Store::dependency_artifact`].
    pub init_from_hash: Option<String>,
}

/// How a job attempt ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Finish {
    Succeeded {
        metrics: Vec<MetricValue>,
        /// Per image and class (empty for jobs that did not record them).
        images: Vec<ImageMetric>,
        iterations: usize,
        /// The sweep build that produced the result.
        sweep_version: Option<String>,
    },
    /// Terminal: a diverged run is deterministic, retrying would diverge again.
    Diverged {
        iter: usize,
        last_finite_loss: Option<f64>,
    },
    /// Back to `pending` or terminal `failed`, as [`crate::job::RetryRule`] decides.
    Failed {
        reason: String,
        stderr_tail: String,
        kind: FailureKind,
    },
    /// Stopped on purpose (Ctrl-C, shutdown): resumable.
    Interrupted,
}

/// One training-curve point.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CurvePoint {
    pub iteration: usize,
    pub loss: f64,
    pub lr: f64,
    pub secs: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweepRow {
    pub id: i64,
    pub name: String,
    pub spec_path: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    pub jobs: usize,
    pub succeeded: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunningJob {
    pub id: i64,
    pub label: String,
    pub attempts: u32,
    pub iteration: usize,
    pub total_iters: Option<usize>,
    /// Unix milliseconds.
    pub started_at: Option<i64>,
    pub heartbeat_at: Option<i64>,
    pub owner: Option<String>,
}

/// A pending job that can never run: its dependency failed, diverged or is missing.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BlockedJob {
    pub id: i64,
    pub label: String,
    pub depends_on: String,
    /// The dependency's status, `None` if no job of the sweep has that hash.
    pub dependency_status: Option<JobStatus>,
}

/// One job with its results, for reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobRow {
    pub sweep: String,
    pub job_id: i64,
    pub hash: String,
    pub stage: Option<String>,
    pub label: String,
    pub status: JobStatus,
    pub attempts: u32,
    pub seed: u64,
    pub config_json: String,
    /// Every stored number: all splits, means and per class. NaN was stored as NULL and reads back as NaN.
    pub metrics: Vec<MetricValue>,
    pub artifact_dir: Option<String>,
    /// Why the job failed, diverged or was released (the first line of its last error).
    pub error: Option<String>,
    pub iteration: usize,
    pub total_iters: Option<usize>,
    /// Unix milliseconds.
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// No longer produced by the sweep file (see `Store::retire_others`).
    pub retired: bool,
    /// The sweep build that produced the recorded result.
    pub sweep_version: Option<String>,
}

impl JobRow {
    /// The first line of the job's error, for one-line displays.
    pub fn reason(&self) -> Option<&str> {
        self.error.as_deref().and_then(|e| e.lines().next())
    }
}

/// One attempt of a job, as recorded when it ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttemptRow {
    pub attempt: u32,
    pub owner: Option<String>,
    pub started_at: Option<i64>,
    pub ended_at: i64,
    /// The job's status after the attempt (`pending`: a failure that is retried).
    pub ended_as: JobStatus,
    pub failure: Option<FailureKind>,
    pub reason: Option<String>,
    pub sweep_version: Option<String>,
}

/// The results database. Every method is one short transaction at most; none is held while
/// a job trains.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Where the database is, for messages (a path; never a password).
    fn location(&self) -> String;
    /// The database's random identity, made when it was created (see [`crate::protocol::Claim`]).
    fn identity(&self) -> &str;
    /// Waits for in-flight work and closes the connections.
    async fn close(&self);

    // Sweeps and their jobs.
    /// Creates the sweep or updates its file; returns its id.
    async fn upsert_sweep(&self, name: &str, spec_path: &str, spec_text: &str) -> Result<i64>;
    async fn sweep_id(&self, name: &str) -> Result<Option<i64>>;
    async fn sweeps(&self) -> Result<Vec<SweepRow>>;
    /// Enqueues jobs (one transaction); a hash the sweep already has is left as it is.
    /// Returns (added, already there).
    async fn add_jobs(
        &self,
        sweep_id: i64,
        jobs: &[NewJob],
        max_attempts: u32,
    ) -> Result<(usize, usize)>;
    /// Retires the sweep's jobs whose hash is not in `current` and brings back those that
    /// are; returns how many are retired now. Retired jobs are never claimed.
    async fn retire_others(&self, sweep_id: i64, current: &[String]) -> Result<usize>;

    // The queue.
    /// Atomically hands the next runnable job to `owner`: a pending or interrupted job
    /// (interrupted first, then by id) whose dependency, if any, has succeeded.
    async fn claim_next(&self, sweep_id: i64, owner: &Owner) -> Result<Option<ClaimedJob>>;
    /// Records liveness and progress. False when the job is no longer `owner`'s: stop it.
    async fn heartbeat(&self, job_id: i64, owner: &Owner, iteration: usize) -> Result<bool>;
    /// Records how an attempt ended (and the attempt itself) if `owner` still owns the job
    /// ([`StoreError::NotOwner`] otherwise); returns the job's status now.
    async fn finish(&self, job_id: i64, owner: &Owner, finish: Finish) -> Result<JobStatus>;
    /// Running jobs whose owner `is_gone(owner, heartbeat age)` become `interrupted`
    /// (resumable). Returns their ids.
    async fn release_where(
        &self,
        sweep_id: i64,
        is_gone: &(dyn for<'o> Fn(&'o str, Duration) -> bool + Sync),
    ) -> Result<Vec<i64>>;
    /// Stops a running job resumably (Ctrl-C). A job no longer `owner`'s is left as it is.
    async fn mark_interrupted(&self, job_id: i64, owner: &Owner) -> Result<()>;

    // What running jobs produce.
    async fn set_artifact_dir(&self, job_id: i64, dir: &str) -> Result<()>;
    /// Curve points in one transaction; an iteration recorded before (a resume) is overwritten.
    async fn record_curve(&self, job_id: i64, points: &[CurvePoint]) -> Result<()>;
    /// Validation metrics measured during training (`eval.every`); an iteration recorded
    /// before (a resume) is overwritten.
    async fn record_eval(
        &self,
        job_id: i64,
        iteration: usize,
        values: &[MetricValue],
    ) -> Result<()>;
    /// `kind`: one of [`ARTIFACT_KINDS`].
    async fn record_artifact(
        &self,
        job_id: i64,
        kind: &str,
        path: &str,
        iteration: Option<usize>,
    ) -> Result<()>;

    // Reads.
    /// Number of the sweep's current (not retired) jobs by status; every status is present.
    async fn counts(&self, sweep_id: i64) -> Result<BTreeMap<JobStatus, usize>>;
    async fn running(&self, sweep_id: i64) -> Result<Vec<RunningJob>>;
    /// Pending jobs whose dependency failed, diverged or does not exist.
    async fn blocked(&self, sweep_id: i64) -> Result<Vec<BlockedJob>>;
    /// Artifact folder of the sweep's succeeded job with this hash (`init.from`).
    async fn dependency_artifact(&self, sweep_id: i64, hash: &str) -> Result<Option<String>>;
    /// Every job (of one sweep, or all) with all its metrics, by sweep then job id.
    async fn report_rows(&self, sweep: Option<&str>) -> Result<Vec<JobRow>>;
    /// One job by id, hash prefix or label (unique, else a [`StoreError`] that says why).
    async fn find_job(&self, selector: &str) -> Result<JobRow>;
    /// A job's attempts, oldest first.
    async fn attempts(&self, job_id: i64) -> Result<Vec<AttemptRow>>;
    /// Artifacts of a job: (kind, path, iteration), oldest first.
    async fn artifacts(&self, job_id: i64) -> Result<Vec<(String, String, Option<usize>)>>;
    /// A job's curve by iteration; NaN losses read back as NaN.
    async fn curve(&self, job_id: i64) -> Result<Vec<CurvePoint>>;
    /// A job's validation curve: (iteration, metric), by iteration then name.
    async fn eval_curve(&self, job_id: i64) -> Result<Vec<(usize, MetricValue)>>;
    /// A job's per-image results, by split, image and class (empty when not recorded).
    async fn image_metrics(&self, job_id: i64) -> Result<Vec<ImageMetric>>;
    /// "ok" for a sound database, else the backend's list of problems.
    async fn integrity_check(&self) -> Result<String>;

    /// [`release_where`](Self::release_where) with any rule on the owner alone.
    async fn release_orphans(
        &self,
        sweep_id: i64,
        is_gone: &(dyn for<'o> Fn(&'o str) -> bool + Sync),
    ) -> Result<Vec<i64>> {
        self.release_where(sweep_id, &|owner, _age| is_gone(owner))
            .await
    }

    /// [`release_where`](Self::release_where) with [`owner_is_gone`]: same host, the
    /// process is checked; other hosts, the heartbeat must be younger than `stale_after`.
    async fn release_dead_owners(&self, sweep_id: i64, stale_after: Duration) -> Result<Vec<i64>> {
        self.release_where(sweep_id, &|owner, age| {
            owner_is_gone(owner, stale_after, age)
        })
        .await
    }
}

/// Opens (creating if missing) and migrates the database at `db`.
pub async fn open(db: &Path) -> Result<Arc<dyn Store>> {
    Ok(Arc::new(SqliteStore::open(db).await?))
}

/// Opens a database that must already exist (`status`, `report`, `show`): reading commands
/// never create an empty database where the user mistyped a path.
pub async fn open_existing(db: &Path) -> Result<Arc<dyn Store>> {
    if !db.exists() {
        bail!(
            "no results database at {} (run `sweep run FILE --db {}` first, or pass --db / SWEEP_DB)",
            db.display(),
            db.display()
        );
    }
    open(db).await
}

/// The default artifact root: `runs/` beside the database file.
pub fn default_runs_dir(db: &Path) -> PathBuf {
    match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join("runs"),
        _ => PathBuf::from("runs"),
    }
}

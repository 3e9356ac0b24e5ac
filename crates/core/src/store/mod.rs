//! The results database: sweeps, jobs (the work queue), attempts, metrics, loss curves,
//! artifacts.
//!
//! [`Store`] is the contract (as Optuna's `storages/_base.py`). One SQL implementation
//! ([`SqlStore`], sqlx's `Any` driver) serves two backends, each with its own migrations
//! (`migrations/<backend>/` at the workspace root) and the few statements that differ
//! ([`sql::Dialect`]): SQLite (one file, WAL, every process on one machine) and PostgreSQL
//! (a server that agents on many nodes share). The store's test suite is written once
//! against the trait and runs against both.
//!
//! The jobs table is also the queue: [`Store::claim`] hands each runnable job to exactly one
//! [`Owner`] under a lease that the owner's heartbeat renews. Every write about a job carries
//! a [`Fence`] (the owner and the attempt number it claimed) and is refused once the job is
//! no longer that attempt's, so a stalled process that wakes after its job was taken over
//! cannot overwrite its successor's work (see [`owner`]).

pub mod dump;
pub mod external;
pub mod location;
pub mod owner;
pub mod search;
pub mod sql;

pub use dump::{CopySummary, JobDump, SweepDump};
pub use external::{External, NewExternal, Outcome, Recorded};
pub use location::{DbLocation, PostgresUrl};
pub use owner::{local_hostname, now_ms, owner_is_gone, Owner};
pub use search::{SearchLog, TrialJobs};
pub use sql::SqlStore;

/// How long a claim holds without a heartbeat unless the agent says otherwise (`--lease`).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

use crate::job::{FailureKind, JobStatus};
use crate::protocol::{ImageMetric, MetricValue};
use anyhow::{bail, Result};
use async_trait::async_trait;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
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
    #[error("job {job_id} is no longer attempt {attempt} of {owner} (its lease was taken over, or it was released); the write was refused")]
    NotOwner {
        job_id: i64,
        attempt: u32,
        owner: String,
    },
    #[error("cannot connect to {location}: {reason}")]
    Connect { location: String, reason: String },
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

impl StoreError {
    /// Whether `e` says this process no longer owns the job (its lease was taken over): the
    /// attempt's result belongs to the new owner and is dropped, not retried.
    pub fn is_not_owner(e: &anyhow::Error) -> bool {
        e.chain().any(|c| {
            matches!(
                c.downcast_ref::<StoreError>(),
                Some(StoreError::NotOwner { .. })
            )
        })
    }

    /// No sweep called `name`; `known` are the sweeps there are.
    pub fn no_such_sweep(known: Vec<String>, name: &str) -> anyhow::Error {
        StoreError::NoSuchSweep {
            name: name.to_string(),
            known: if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            },
        }
        .into()
    }
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
    /// `depends_on` is a shorter run of the same training (a shared prefix): this job
    /// continues from its final checkpoint rather than starting from its weights.
    pub continues: bool,
    /// Class names of the job's data set by id, when its description was read at planning.
    pub classes: Vec<String>,
}

/// A job handed to one owner by [`Store::claim`].
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimedJob {
    pub id: i64,
    pub sweep_id: i64,
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
    /// `init_from_hash` is a shorter run of the same training, continued from its end.
    pub continues: bool,
    /// A longer job continues this one: its final checkpoint keeps the optimiser state.
    pub keep_state: bool,
    /// Adaptive search: the rung iteration to pause at (None: run to the end).
    pub pause_at: Option<usize>,
}

impl ClaimedJob {
    /// What `owner` shows on every write about this attempt.
    pub fn fence(&self, owner: &Owner) -> Fence {
        Fence {
            job_id: self.id,
            attempt: self.attempts,
            owner: owner.to_string(),
        }
    }
}

/// The fencing token of one attempt: writes about the job are accepted only while it is
/// still this owner's and this attempt's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    pub job_id: i64,
    pub attempt: u32,
    /// `host:pid:nonce` ([`Owner`]'s display).
    pub owner: String,
}

/// What [`Store::claim`] may hand out, and to whom.
#[derive(Clone, Debug)]
pub struct ClaimRequest<'a> {
    /// Only jobs of these sweeps (`None`: of every sweep with work).
    pub sweeps: Option<&'a [i64]>,
    pub owner: &'a Owner,
    /// The claim holds this long; each heartbeat renews it.
    pub lease: Duration,
    /// The Slurm job of the agent (`123_4`), shown by `sweep status`.
    pub slurm_job: Option<&'a str>,
}

/// A running job's lease as the store judged it, for [`Store::release_where`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseState {
    /// Past its expiry by the database's clock (or never given one).
    pub expired: bool,
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
        /// The fingerprint of the files it trained and validated on (see `Outcome::Completed`).
        data: Option<String>,
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
    /// Adaptive search: evaluated and checkpointed at a rung (`iter`); waits for the rule.
    Paused {
        iter: usize,
        metrics: Vec<MetricValue>,
        images: Vec<ImageMetric>,
    },
}

/// What a running job reported that the orchestrator has not written yet. Written in one
/// fenced transaction ([`Store::record_reported`]), or with the attempt's end
/// ([`Store::end_attempt`]): the fewer transactions per job, the less the orchestrator costs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reported {
    pub curve: Vec<CurvePoint>,
    pub artifacts: Vec<NewArtifact>,
}

impl Reported {
    pub fn is_empty(&self) -> bool {
        self.curve.is_empty() && self.artifacts.is_empty()
    }

    pub fn clear(&mut self) {
        self.curve.clear();
        self.artifacts.clear();
    }
}

/// A file a job wrote, to be recorded: `kind` is one of [`ARTIFACT_KINDS`].
#[derive(Clone, Debug, PartialEq)]
pub struct NewArtifact {
    pub kind: String,
    pub path: String,
    pub iteration: Option<usize>,
}

/// How an attempt ended, with what the orchestrator had not written yet: all of it is
/// recorded in the one transaction that ends the attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct Ending {
    pub finish: Finish,
    pub reported: Reported,
    /// Recorded (as a `final` artifact) only if the job ends succeeded.
    pub final_checkpoint: Option<NewArtifact>,
}

impl From<Finish> for Ending {
    fn from(finish: Finish) -> Ending {
        Ending {
            finish,
            reported: Reported::default(),
            final_checkpoint: None,
        }
    }
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
    /// Artifact root the sweep was registered with (`--runs`, or the file's `runs:`).
    pub runs_dir: Option<String>,
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
    /// The Slurm job of its agent, if it runs under Slurm.
    pub slurm_job: Option<String>,
    /// Unix milliseconds (database clock).
    pub lease_expires_at: Option<i64>,
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
    /// Class names of the job's data set by id (empty when not recorded).
    pub classes: Vec<String>,
    /// `train:<hex> val:<hex>`: the files its result was trained and scored on.
    pub data_fingerprint: Option<String>,
    /// Scored from another program's predictions (`sweep evaluate`), not trained here.
    pub external: Option<External>,
}

impl JobRow {
    /// The job's configuration, read from its stored JSON: the one place that parses it (an
    /// error names the job).
    pub fn spec(&self) -> Result<crate::job::JobSpec> {
        use anyhow::Context;
        crate::job::JobSpec::from_json(&self.config_json).with_context(|| {
            format!(
                "job {} ({}): its stored config is not a job",
                self.job_id, self.label
            )
        })
    }

    /// The built-in trainer's config: `Ok(None)` for a command job (its program's).
    pub fn train_config(&self) -> Result<Option<crate::job::JobConfig>> {
        Ok(match self.spec()? {
            crate::job::JobSpec::Train(c) => Some(c),
            crate::job::JobSpec::Command(_) => None,
        })
    }

    /// The name of class `c`: the data set's, else the id (`1`).
    pub fn class_name(&self, c: usize) -> String {
        self.classes
            .get(c)
            .cloned()
            .unwrap_or_else(|| c.to_string())
    }

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
    /// The sweep file's text as registered (None for an unknown sweep).
    async fn spec_text(&self, sweep_id: i64) -> Result<Option<String>>;
    /// Records the sweep's artifact root (shared by every node's agents).
    async fn set_runs_dir(&self, sweep_id: i64, runs_dir: &str) -> Result<()>;
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
    /// are; returns how many are retired now. Retired jobs are never claimed. External rows
    /// (see [`external`]) and a search's trials are not the file's plan: left as they are.
    async fn retire_others(&self, sweep_id: i64, current: &[String]) -> Result<usize>;
    /// Records an external result (one transaction): a new row, the row it already is
    /// (nothing written), or a new row retiring the earlier ones of the same name. Refused
    /// when the name is the label of one of the sweep's own jobs.
    async fn record_external(&self, new: &NewExternal) -> Result<Recorded>;

    // The queue.
    /// Atomically hands the next runnable job to `req.owner` under a lease: a pending or
    /// interrupted job (interrupted first, then by id) whose dependency, if any, has
    /// succeeded. One short transaction; concurrent claimers never get the same job.
    async fn claim(&self, req: ClaimRequest<'_>) -> Result<Option<ClaimedJob>>;
    /// Records liveness and progress and renews the lease. False when the job is no longer
    /// this attempt's: stop its process.
    async fn heartbeat(&self, fence: &Fence, iteration: usize) -> Result<bool>;
    /// Records how an attempt ended (and the attempt itself) if the fence still holds
    /// ([`StoreError::NotOwner`] otherwise); returns the job's status now.
    async fn finish(&self, fence: &Fence, finish: Finish) -> Result<JobStatus> {
        self.end_attempt(fence, finish.into()).await
    }
    /// [`Store::finish`] with what the job reported last, in the same transaction.
    async fn end_attempt(&self, fence: &Fence, ending: Ending) -> Result<JobStatus> {
        self.end_attempt_in_search(fence, ending, None).await
    }
    /// [`Store::end_attempt`] for a job of an adaptive search: what it reached (a rung, its
    /// end, a failure) is an event of the search, and the decisions it calls for are taken
    /// in the same transaction (`trials` builds the jobs of proposed trials). Fails for a
    /// search's job without `trials`.
    async fn end_attempt_in_search(
        &self,
        fence: &Fence,
        ending: Ending,
        trials: Option<&dyn TrialJobs>,
    ) -> Result<JobStatus>;
    /// `sweep run` on a search file: records its policy (when new or changed) and the
    /// effective sweep file agents build trials from, then takes the decisions due.
    async fn start_search(
        &self,
        sweep_id: i64,
        policy: &crate::search::Policy,
        spec_yaml: &str,
        trials: &dyn TrialJobs,
    ) -> Result<Vec<crate::search::Action>>;
    /// The effective sweep file of a search (None: the sweep is a grid).
    async fn search_spec(&self, sweep_id: i64) -> Result<Option<String>>;
    /// The search's event and decision logs (empty for a grid).
    async fn search_log(&self, sweep_id: i64) -> Result<SearchLog>;
    /// Running jobs (of one sweep, or all) whose owner `is_gone(owner, lease)` become
    /// `interrupted` (resumable), the attempt recorded. Returns their ids.
    async fn release_where(
        &self,
        sweep_id: Option<i64>,
        is_gone: &(dyn for<'o> Fn(&'o str, LeaseState) -> bool + Sync),
    ) -> Result<Vec<i64>>;
    /// Stops a running job resumably (Ctrl-C, SIGTERM). A job no longer the fence's is left as it is.
    async fn mark_interrupted(&self, fence: &Fence) -> Result<()>;

    // What running jobs produce; refused ([`StoreError::NotOwner`]) once the fence is stale.
    async fn set_artifact_dir(&self, fence: &Fence, dir: &str) -> Result<()>;
    /// A job that continues a shorter run of the same training (a shared prefix) takes that
    /// run's training curve and validation curve as its own first iterations; points it has
    /// already are kept. Idempotent, one transaction.
    async fn inherit_prefix_curves(&self, fence: &Fence, sweep_id: i64, prefix: &str)
        -> Result<()>;
    /// Curve points in one transaction; an iteration recorded before (a resume) is overwritten.
    async fn record_curve(&self, fence: &Fence, points: &[CurvePoint]) -> Result<()> {
        let reported = Reported {
            curve: points.to_vec(),
            artifacts: Vec::new(),
        };
        self.record_reported(fence, &reported).await
    }
    /// Curve points and artifacts in one transaction (curve points as [`Store::record_curve`]).
    async fn record_reported(&self, fence: &Fence, reported: &Reported) -> Result<()>;
    /// Validation metrics measured during training (`eval.every`); an iteration recorded
    /// before (a resume) is overwritten.
    async fn record_eval(
        &self,
        fence: &Fence,
        iteration: usize,
        values: &[MetricValue],
    ) -> Result<()>;
    /// `kind`: one of [`ARTIFACT_KINDS`].
    async fn record_artifact(
        &self,
        fence: &Fence,
        kind: &str,
        path: &str,
        iteration: Option<usize>,
    ) -> Result<()> {
        let artifact = NewArtifact {
            kind: kind.to_string(),
            path: path.to_string(),
            iteration,
        };
        let reported = Reported {
            curve: Vec::new(),
            artifacts: vec![artifact],
        };
        self.record_reported(fence, &reported).await
    }

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
    /// A cheap token that changes whenever a job is added, claimed, beats, or ends (the
    /// dashboard polls it and reloads only what changed).
    async fn change_token(&self) -> Result<String>;

    // Copies between databases (`sweep db copy`).
    /// Every sweep (or one) with its jobs and everything recorded about them.
    async fn export(&self, sweep: Option<&str>) -> Result<Vec<SweepDump>>;
    /// Adds a dumped sweep's jobs that this database lacks (by sweep name and job hash);
    /// jobs it has are left as they are, so importing twice adds nothing.
    async fn import(&self, dump: &SweepDump) -> Result<CopySummary>;

    /// [`claim`](Self::claim) from one sweep with the default lease.
    async fn claim_next(&self, sweep_id: i64, owner: &Owner) -> Result<Option<ClaimedJob>> {
        self.claim(ClaimRequest {
            sweeps: Some(&[sweep_id]),
            owner,
            lease: DEFAULT_LEASE,
            slurm_job: None,
        })
        .await
    }

    /// [`release_where`](Self::release_where) with any rule on the owner alone.
    async fn release_orphans(
        &self,
        sweep_id: i64,
        is_gone: &(dyn for<'o> Fn(&'o str) -> bool + Sync),
    ) -> Result<Vec<i64>> {
        self.release_where(Some(sweep_id), &|owner, _lease| is_gone(owner))
            .await
    }

    /// [`release_where`](Self::release_where) with [`owner_is_gone`]: an expired lease, or
    /// on this host a process that is no longer there.
    async fn release_dead_owners(&self, sweep_id: Option<i64>) -> Result<Vec<i64>> {
        self.release_where(sweep_id, &|owner, lease| {
            owner_is_gone(owner, lease.expired)
        })
        .await
    }
}

/// Opens (creating if missing) and migrates the database at `db`.
pub async fn open(db: impl Into<DbLocation>) -> Result<Arc<dyn Store>> {
    Ok(Arc::new(SqlStore::open(&db.into()).await?))
}

/// Opens a database that must already exist (`status`, `report`, `show`): reading commands
/// never create an empty database where the user mistyped a path.
pub async fn open_existing(db: impl Into<DbLocation>) -> Result<Arc<dyn Store>> {
    let db = db.into();
    if let Some(path) = db.sqlite_path() {
        if !path.exists() {
            bail!(
                "no results database at {} (run `sweep run FILE --db {}` first, or pass --db / SWEEP_DB)",
                path.display(),
                path.display()
            );
        }
    }
    open(&db).await
}

/// The default artifact root: `runs/` beside a database file, `./runs` for a server.
pub fn default_runs_dir(db: &DbLocation) -> PathBuf {
    match db.sqlite_path().and_then(|p| p.parent()) {
        Some(p) if !p.as_os_str().is_empty() => p.join("runs"),
        _ => PathBuf::from("runs"),
    }
}

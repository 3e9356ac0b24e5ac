//! Scheduler: runs a sweep's jobs on a pool of slots, one job process per attempt.
//!
//! The store is the single source of truth. A slot claims a job atomically under a lease
//! (so two orchestrators on one database, on one machine or many, never run a job twice),
//! the job process streams its curve into the store, and each attempt ends with exactly one
//! recorded result. Jobs whose owner is gone (kill -9, a dead node: its lease expired) go
//! back to the queue and continue from their last checkpoint.
//!
//! `sweep run` registers a sweep and works on it ([`run`]); `sweep agent` pulls jobs of any
//! registered sweep until none is left ([`agent`]). Both are the same slot loop ([`pool`]).

mod attempt;
pub mod child;
pub mod command;
pub mod folder;
pub mod overhead;
mod pool;
mod program_lines;
pub mod progress;
pub mod search;
mod slots;
pub mod sweeps;

pub use folder::artifact_dir;
pub use overhead::Overhead;
pub use slots::{slots, DeviceKind, Slot};

use crate::job::JobStatus;
use crate::store::{self, DbLocation, NewJob, Owner, Store, DEFAULT_LEASE};
use crate::sweepfile::{PlannedJob, SweepSpec};
use anyhow::{Context, Result};
use attempt::Shared;
use pool::Until;
use progress::Progress;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use sweeps::SweepDirectory;

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub db: DbLocation,
    /// Artifact root (wins over the sweep file's `runs:`); default `runs/` beside the database.
    pub runs: Option<PathBuf>,
    pub device: DeviceKind,
    /// CPU slots.
    pub workers: usize,
    /// GPU ids and jobs per GPU (CUDA).
    pub gpus: Vec<usize>,
    pub per_gpu: usize,
    /// The binary to run job processes with (tests and benchmarks); default: this executable.
    pub exe: Option<PathBuf>,
    /// Take results and checkpoints that another database left in the artifact folders
    /// as this database's (default: move them aside and train).
    pub adopt: bool,
    /// How long a claim holds without a heartbeat (renewed at a third of it).
    pub lease: Duration,
}

impl RunOptions {
    /// One CPU worker on `db`, the defaults of `sweep run`.
    pub fn new(db: DbLocation) -> RunOptions {
        RunOptions {
            db,
            runs: None,
            device: DeviceKind::Cpu,
            workers: 1,
            gpus: Vec::new(),
            per_gpu: 1,
            exe: None,
            adopt: false,
            lease: DEFAULT_LEASE,
        }
    }
}

/// `sweep agent`: which sweeps, and when to stop.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    pub run: RunOptions,
    /// Sweep names; empty: every sweep with work.
    pub sweeps: Vec<String>,
    pub max_jobs: Option<usize>,
    /// Once no job of its sweeps is left anywhere, wait this long for new work, then exit.
    pub idle_exit: Duration,
    /// Print `{"ready": true, "cpu_s": ...}` on stdout once connected, before the first
    /// claim (the orchestrator benchmark starts its clock there).
    pub announce_ready: bool,
}

/// What one `sweep run` or `sweep agent` did, counted from the statuses the store recorded.
#[derive(Debug, Default, Clone)]
pub struct RunSummary {
    pub planned: usize,
    pub added: usize,
    pub already_done: usize,
    pub attempts: usize,
    pub succeeded: usize,
    /// Jobs that ended failed in this run (after their last allowed attempt, or at once
    /// for a permanent failure).
    pub failed: usize,
    pub diverged: usize,
    /// Failed attempts that went back to the queue and were tried again.
    pub retried: usize,
    /// Attempts that ended at a rung of an adaptive search (paused for the stopping rule).
    pub paused: usize,
    /// Claims given back untouched: this node cannot see the sweep's runs folder.
    pub handed_back: usize,
    /// Attempts taken over by another agent after this one's lease lapsed.
    pub superseded: usize,
    /// Attempts whose end could not be recorded (the store failed).
    pub store_errors: usize,
    pub interrupted: bool,
    pub elapsed: Duration,
    /// Orchestrator time, summed over attempts, by phase (not the job process).
    pub overhead: Overhead,
    /// Job process start-up (spawn to first event), summed over attempts that reported one.
    pub startup: Duration,
    pub startup_samples: usize,
}

impl RunSummary {
    /// Counts one attempt by the status the store gave its job.
    fn tally(&mut self, status: JobStatus) {
        match status {
            JobStatus::Succeeded => self.succeeded += 1,
            JobStatus::Failed => self.failed += 1,
            JobStatus::Diverged => self.diverged += 1,
            JobStatus::Pending => self.retried += 1,
            JobStatus::Paused => self.paused += 1,
            JobStatus::Stopped | JobStatus::Interrupted | JobStatus::Running => {}
        }
    }

    /// The run's exit status: 130 after a stop request, 2 when a job ended failed or could
    /// not be recorded, else 0. A diverged job is a result (that configuration diverges),
    /// not a failure of the run.
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            130
        } else if self.failed > 0 || self.store_errors > 0 {
            2
        } else {
            0
        }
    }
}

/// Registers the sweep's jobs in the store (idempotent): returns (sweep id, added, existing).
/// `runs`: the artifact root to record for the sweep (agents on other nodes use it).
pub async fn register(
    store: &dyn Store,
    spec: &SweepSpec,
    plan: &[PlannedJob],
    runs: Option<&std::path::Path>,
) -> Result<(i64, usize, usize)> {
    let sweep_id = store
        .upsert_sweep(&spec.name, &spec.path.display().to_string(), &spec.source)
        .await?;
    if let Some(runs) = runs.or(spec.runs.as_deref()) {
        sweeps::register_runs(store, sweep_id, runs).await?;
    }
    let jobs: Vec<NewJob> = plan.iter().map(search::new_job).collect();
    let (mut added, existing) = store.add_jobs(sweep_id, &jobs, spec.max_attempts).await?;
    let current: Vec<String> = plan.iter().map(|p| p.hash.clone()).collect();
    if let Some(policy) = &spec.search {
        // A search's trials are its own: the file's plan holds only its stages.
        let trials = search::SpecTrials(spec.clone());
        let taken = store
            .start_search(sweep_id, policy, &spec.effective_yaml(), &trials)
            .await?;
        let proposed = taken.iter().filter(|a| a.name() == "propose").count();
        added += proposed * policy.jobs_per_trial as usize;
    }
    let retired = store.retire_others(sweep_id, &current).await?;
    if retired > 0 {
        tracing::info!(
            "{retired} job(s) of sweep {} are no longer in {} (kept, not run; `sweep report --all` shows them)",
            spec.name,
            spec.path.display()
        );
    }
    Ok((sweep_id, added, existing))
}

/// Registers `spec` and runs every job of it that has no result yet. Returns when none is
/// left to start and none is running here, or after a stop signal once the running jobs
/// have checkpointed.
pub async fn run(spec: &SweepSpec, opts: &RunOptions) -> Result<RunSummary> {
    let started = Instant::now();
    let plan = spec.plan()?;
    let store = store::open(&opts.db).await?;
    let jobs_before = job_count(store.as_ref(), &spec.name).await?;
    let (sweep_id, added, _) = register(store.as_ref(), spec, &plan, opts.runs.as_deref()).await?;
    let (shared, already_done) = start(store, &[sweep_id], opts).await?;
    let planned = match &spec.search {
        Some(p) => plan.len() + (p.trials * p.jobs_per_trial) as usize,
        None => plan.len(),
    };
    let mut summary = RunSummary {
        planned,
        added,
        already_done,
        ..Default::default()
    };
    let until = Until {
        wait_for_others: false,
        idle_exit: Duration::ZERO,
        max_jobs: None,
    };
    let free = slots(opts.device, opts.workers, &opts.gpus, opts.per_gpu);
    pool::drive(&shared, free, Some(vec![sweep_id]), &until, &mut summary).await?;
    shared.progress.clear();
    if spec.search.is_some() {
        // A search adds its trials' jobs as it decides, not only when registered.
        let now = job_count(shared.store.as_ref(), &spec.name).await?;
        summary.added = now.saturating_sub(jobs_before);
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Jobs the sweep has (0 before its first registration).
async fn job_count(store: &dyn Store, name: &str) -> Result<usize> {
    Ok(match store.sweep_id(name).await? {
        Some(id) => store.counts(id).await?.values().sum(),
        None => 0,
    })
}

/// A pull-based agent for one node: runs jobs of the named sweeps (or of every sweep) until
/// none is left anywhere, then exits.
pub async fn agent(opts: &AgentOptions) -> Result<RunSummary> {
    let started = Instant::now();
    let store = store::open(&opts.run.db).await?;
    let ids = sweep_ids(store.as_ref(), &opts.sweeps).await?;
    let scope: Vec<i64> = match &ids {
        Some(ids) => ids.clone(),
        None => store.sweeps().await?.iter().map(|s| s.id).collect(),
    };
    let (shared, already_done) = start(store, &scope, &opts.run).await?;
    if opts.announce_ready {
        let cpu = overhead::own_cpu_secs();
        println!("{}", serde_json::json!({"ready": true, "cpu_s": cpu}));
    }
    let mut summary = RunSummary {
        already_done,
        ..Default::default()
    };
    let until = Until {
        wait_for_others: true,
        idle_exit: opts.idle_exit,
        max_jobs: opts.max_jobs,
    };
    let r = &opts.run;
    let free = slots(r.device, r.workers, &r.gpus, r.per_gpu);
    pool::drive(&shared, free, ids, &until, &mut summary).await?;
    shared.progress.clear();
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Sweep names to ids (`None`: all); an unknown name is an error naming the known ones.
async fn sweep_ids(store: &dyn Store, names: &[String]) -> Result<Option<Vec<i64>>> {
    if names.is_empty() {
        return Ok(None);
    }
    let known = store.sweeps().await?;
    names
        .iter()
        .map(|n| {
            known.iter().find(|s| &s.name == n).map(|s| s.id).with_context(|| {
                let names: Vec<&str> = known.iter().map(|s| s.name.as_str()).collect();
                format!(
                    "no sweep named {n:?} in {} (known: {}); enqueue it with `sweep run FILE --db ... --enqueue-only`",
                    store.location(),
                    if names.is_empty() { "none".into() } else { names.join(", ") }
                )
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// Takes back what gone owners left running and sets up the progress bars.
async fn start(
    store: Arc<dyn Store>,
    sweep_ids: &[i64],
    opts: &RunOptions,
) -> Result<(Arc<Shared>, usize)> {
    let released = store.release_dead_owners(None).await?;
    if !released.is_empty() {
        tracing::info!(
            "resuming {} job(s) left running by a stopped orchestrator",
            released.len()
        );
    }
    let (mut done, mut total) = (0, 0);
    for id in sweep_ids {
        let mut jobs = 0;
        for (status, n) in store.counts(*id).await? {
            jobs += n;
            if status.is_finished() {
                done += n;
            }
        }
        // A search's jobs come as it decides: the bar counts all it may make.
        let log = store.search_log(*id).await?;
        let most = log
            .state()
            .policy()
            .map_or(0, |p| (p.trials * p.jobs_per_trial) as usize);
        total += jobs.max(most);
    }
    let exe = match &opts.exe {
        Some(e) => e.clone(),
        None => std::env::current_exe().context("locating the sweep executable")?,
    };
    let shared = Arc::new(Shared {
        store,
        owner: Owner::current(),
        sweeps: SweepDirectory::new(opts.runs.clone(), store::default_runs_dir(&opts.db)),
        exe,
        progress: Progress::new(total as u64, done as u64),
        adopt: opts.adopt,
        lease: opts.lease,
        slurm_job: crate::slurm::slurm_job_from_env(),
    });
    Ok((shared, done))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retried_failure_is_no_failure_and_the_exit_status_says_so() {
        let mut s = RunSummary::default();
        s.tally(JobStatus::Pending);
        s.tally(JobStatus::Succeeded);
        assert_eq!((s.succeeded, s.failed, s.retried), (1, 0, 1));
        assert_eq!(s.exit_code(), 0);
        s.tally(JobStatus::Failed);
        assert_eq!(s.exit_code(), 2);
        s.interrupted = true;
        assert_eq!(s.exit_code(), 130);
    }
}

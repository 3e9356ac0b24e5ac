//! Scheduler: runs a sweep's jobs on a pool of slots, one job process per attempt.
//!
//! The store is the single source of truth. A slot claims a job atomically (so two
//! `sweep run` processes on one database never run a job twice), the job process streams
//! its curve into the store, and each attempt ends with exactly one recorded result. Jobs
//! owned by a dead orchestrator (kill -9, power loss) are released on start and continue
//! from their last checkpoint.

mod attempt;
pub mod child;
pub mod folder;
pub mod progress;
mod slots;

pub use folder::artifact_dir;
pub use slots::{slots, DeviceKind, Slot};

use crate::job::JobStatus;
use crate::store::{self, NewJob, Owner, Store};
use crate::sweepfile::{PlannedJob, SweepSpec};
use anyhow::{Context, Result};
use attempt::{AttemptEnd, Shared};
use progress::Progress;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A job whose orchestrator runs on another host is presumed dead after this long
/// without a heartbeat (same-host owners are checked directly by pid and start time).
const STALE_AFTER: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub db: PathBuf,
    /// Artifact root; default `runs/` beside the database.
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
}

/// What one `sweep run` did, counted from the statuses the store recorded.
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
    pub interrupted: bool,
    pub elapsed: Duration,
    /// Orchestrator time per attempt: claim, ticket, store writes, finish (not the job process).
    pub overhead: Duration,
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
            JobStatus::Interrupted | JobStatus::Running => {}
        }
    }

    /// The run's exit status: 130 after a stop request, 2 when a job ended failed, else 0.
    /// A diverged job is a result (that configuration diverges), not a failure of the run.
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            130
        } else if self.failed > 0 {
            2
        } else {
            0
        }
    }
}

/// Registers the sweep's jobs in the store (idempotent): returns (sweep id, added, existing).
pub async fn register(
    store: &dyn Store,
    spec: &SweepSpec,
    plan: &[PlannedJob],
) -> Result<(i64, usize, usize)> {
    let sweep_id = store
        .upsert_sweep(&spec.name, &spec.path.display().to_string(), &spec.source)
        .await?;
    let jobs: Vec<NewJob> = plan
        .iter()
        .map(|p| NewJob {
            hash: p.hash.clone(),
            stage: p.stage.clone(),
            label: p.label.clone(),
            config_json: serde_json::to_string(&p.config).expect("config serialises"),
            seed: p.config.seed,
            depends_on: p.depends_on.clone(),
        })
        .collect();
    let (added, existing) = store.add_jobs(sweep_id, &jobs, spec.max_attempts).await?;
    let current: Vec<String> = plan.iter().map(|p| p.hash.clone()).collect();
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

/// Runs every job of `spec` that has no result yet. Returns when none is left to start
/// and none is running, or after Ctrl-C once the running jobs have checkpointed.
pub async fn run(spec: &SweepSpec, opts: &RunOptions) -> Result<RunSummary> {
    let started = Instant::now();
    let plan = spec.plan()?;
    let store = store::open(&opts.db).await?;
    let (sweep_id, added, _) = register(store.as_ref(), spec, &plan).await?;
    let (shared, already_done) = start(store, spec, sweep_id, opts).await?;
    let mut summary = RunSummary {
        planned: plan.len(),
        added,
        already_done,
        ..Default::default()
    };
    drive(
        &shared,
        slots(opts.device, opts.workers, &opts.gpus, opts.per_gpu),
        &mut summary,
    )
    .await?;
    shared.progress.clear();
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Releases what dead orchestrators left running and sets up the progress bars.
async fn start(
    store: Arc<dyn Store>,
    spec: &SweepSpec,
    sweep_id: i64,
    opts: &RunOptions,
) -> Result<(Arc<Shared>, usize)> {
    let released = store.release_dead_owners(sweep_id, STALE_AFTER).await?;
    if !released.is_empty() {
        tracing::info!(
            "resuming {} job(s) left running by a stopped orchestrator",
            released.len()
        );
    }
    let counts = store.counts(sweep_id).await?;
    let done: usize = counts
        .iter()
        .filter(|(s, _)| s.is_finished())
        .map(|(_, n)| n)
        .sum();
    let total: usize = counts.values().sum();
    let exe = match &opts.exe {
        Some(e) => e.clone(),
        None => std::env::current_exe().context("locating the sweep executable")?,
    };
    let shared = Arc::new(Shared {
        store,
        owner: Owner::current(),
        sweep: spec.name.clone(),
        sweep_id,
        runs: opts
            .runs
            .clone()
            .unwrap_or_else(|| store::default_runs_dir(&opts.db)),
        exe,
        progress: Progress::new(total as u64, done as u64),
        adopt: opts.adopt,
    });
    Ok((shared, done))
}

/// The slot loop: claim while slots are free, record each attempt as it ends, stop
/// resumably on Ctrl-C.
async fn drive(shared: &Arc<Shared>, mut free: Vec<Slot>, summary: &mut RunSummary) -> Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    free.reverse();
    let mut running: JoinSet<(Slot, AttemptEnd)> = JoinSet::new();
    let mut stopping = false;
    let mut last_orphan_check = Instant::now();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);

    loop {
        if !stopping {
            while let Some(slot) = free.pop() {
                let t = Instant::now();
                let Some(job) = shared
                    .store
                    .claim_next(shared.sweep_id, &shared.owner)
                    .await?
                else {
                    free.push(slot);
                    break;
                };
                summary.attempts += 1;
                let claim_time = t.elapsed();
                let (shared, stop) = (shared.clone(), stop_rx.clone());
                running.spawn(async move {
                    let end = attempt::run(&shared, &slot, job, stop, claim_time).await;
                    (slot, end)
                });
            }
        }
        if running.is_empty() {
            return Ok(());
        }
        tokio::select! {
            joined = running.join_next() => {
                let Some(joined) = joined else { continue };
                let (slot, end) = joined.context("a job task panicked")?;
                free.push(slot);
                match end {
                    AttemptEnd::Recorded { status, overhead, startup } => {
                        summary.tally(status);
                        summary.overhead += overhead;
                        if let Some(s) = startup {
                            summary.startup += s;
                            summary.startup_samples += 1;
                        }
                    }
                    AttemptEnd::StoreError(e) => tracing::error!("store error, the job resumes on the next run: {e:#}"),
                }
            }
            _ = &mut ctrl_c, if !stopping => {
                stopping = true;
                summary.interrupted = true;
                shared.progress.message("interrupted: running jobs checkpoint and stop; `sweep run` again resumes them");
                let _ = stop_tx.send(true);
            }
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                // Dependencies may have finished elsewhere, or another orchestrator died.
                if !free.is_empty() && last_orphan_check.elapsed() > Duration::from_secs(10) {
                    last_orphan_check = Instant::now();
                    shared.store.release_dead_owners(shared.sweep_id, STALE_AFTER).await?;
                }
            }
        }
    }
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

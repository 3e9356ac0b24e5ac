//! Scheduler: runs a sweep's jobs on a pool of slots, one worker process per job.
//!
//! The store is the single source of truth. A slot claims a job atomically (so two
//! `sweep run` processes on one database never run a job twice), the job's worker
//! streams its curve into the store, and the job ends with exactly one recorded result.
//! Jobs owned by a dead orchestrator (kill -9, power loss) are released on start and
//! continue from their last checkpoint.

pub mod child;
pub mod progress;

use crate::job::JobConfig;
use crate::spec::{PlannedJob, SweepSpec};
use crate::store::{ClaimedJob, Finish, NewJob, Owner, Store};
use crate::trainer::DeviceChoice;
use crate::worker::{write_replace, Ticket, TICKET_FILE};
use anyhow::{Context, Result};
use child::{artifact_dir, run_attempt, ChildSpec};
use progress::Progress;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A job whose orchestrator runs on another host is presumed dead after this long
/// without a heartbeat (same-host owners are checked directly by pid and start time).
const STALE_AFTER: Duration = Duration::from_secs(60);

/// The final checkpoint a finished job leaves for the stages that start from it.
pub const FINAL_CHECKPOINT: &str = "final.ckpt";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    Cpu,
    Cuda,
}

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
    /// The binary to run workers with (tests and benchmarks); default: this executable.
    pub exe: Option<PathBuf>,
}

/// A place a job can run: a device and what the worker sees of it.
#[derive(Clone, Debug)]
struct Slot {
    device: DeviceChoice,
    cuda_visible: Option<String>,
    torch_threads: usize,
}

fn slots(opts: &RunOptions) -> Vec<Slot> {
    match opts.device {
        DeviceKind::Cpu => {
            let workers = opts.workers.max(1);
            let cores = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            // Each worker gets its share of the cores: oversubscribed BLAS threads crawl.
            let threads = (cores / workers).max(1);
            (0..workers)
                .map(|_| Slot {
                    device: DeviceChoice::Cpu,
                    cuda_visible: None,
                    torch_threads: threads,
                })
                .collect()
        }
        DeviceKind::Cuda => {
            let gpus = if opts.gpus.is_empty() {
                vec![0]
            } else {
                opts.gpus.clone()
            };
            let mut v = Vec::new();
            for _ in 0..opts.per_gpu.max(1) {
                for g in &gpus {
                    // The worker sees only its GPU, as device 0.
                    v.push(Slot {
                        device: DeviceChoice::Cuda(0),
                        cuda_visible: Some(g.to_string()),
                        torch_threads: 4,
                    });
                }
            }
            v
        }
    }
}

/// What one `sweep run` did.
#[derive(Debug, Default, Clone)]
pub struct RunSummary {
    pub planned: usize,
    pub added: usize,
    pub already_done: usize,
    pub attempts: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub diverged: usize,
    pub retried: usize,
    pub interrupted: bool,
    pub elapsed: Duration,
    /// Orchestrator time per attempt: claim, ticket, store writes, finish (not the worker).
    pub overhead: Duration,
    /// Worker start-up (spawn to first event), summed over attempts that reported one.
    pub startup: Duration,
    pub startup_samples: usize,
}

struct Shared {
    store: Store,
    owner: Owner,
    sweep: String,
    sweep_id: i64,
    runs: PathBuf,
    exe: PathBuf,
    progress: Progress,
}

enum AttemptEnd {
    Finished {
        finish: Finish,
        overhead: Duration,
        startup: Option<Duration>,
    },
    /// The store failed mid-attempt; the job stays ours and is released on the next run.
    StoreError(anyhow::Error),
}

/// Registers the sweep's jobs in the store (idempotent): returns (sweep id, added, existing).
pub async fn register(
    store: &Store,
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
    preflight(&plan)?;
    let store = Store::open(&opts.db).await?;
    let (sweep_id, added, _) = register(&store, spec, &plan).await?;
    let released = store.release_dead_owners(sweep_id, STALE_AFTER).await?;
    if !released.is_empty() {
        tracing::info!(
            "resuming {} job(s) left running by a stopped orchestrator",
            released.len()
        );
    }
    let counts = store.counts(sweep_id).await?;
    let done: usize = ["succeeded", "failed", "diverged"]
        .iter()
        .map(|s| counts.get(*s).copied().unwrap_or(0))
        .sum();
    let total: usize = counts.values().sum();

    let runs = match &opts.runs {
        Some(r) => r.clone(),
        None => opts
            .db
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .join("runs"),
    };
    let exe = match &opts.exe {
        Some(e) => e.clone(),
        None => std::env::current_exe().context("locating the sweep executable")?,
    };
    let progress = Progress::new(total as u64, done as u64);
    let shared = Arc::new(Shared {
        store,
        owner: Owner::current(),
        sweep: spec.name.clone(),
        sweep_id,
        runs,
        exe,
        progress,
    });
    let mut summary = RunSummary {
        planned: plan.len(),
        added,
        already_done: done,
        ..Default::default()
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut free: Vec<Slot> = slots(opts);
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
                match shared.store.claim_next(sweep_id, &shared.owner).await? {
                    Some(job) => {
                        summary.attempts += 1;
                        if job.attempts > 1 {
                            summary.retried += 1;
                        }
                        let claim_time = t.elapsed();
                        let shared = shared.clone();
                        let stop = stop_rx.clone();
                        running.spawn(async move {
                            let end = run_job(&shared, &slot, job, stop, claim_time).await;
                            (slot, end)
                        });
                    }
                    None => {
                        free.push(slot);
                        break;
                    }
                }
            }
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            joined = running.join_next() => {
                let Some(joined) = joined else { continue };
                let (slot, end) = joined.context("a job task panicked")?;
                free.push(slot);
                match end {
                    AttemptEnd::Finished { finish, overhead, startup } => {
                        summary.overhead += overhead;
                        if let Some(s) = startup {
                            summary.startup += s;
                            summary.startup_samples += 1;
                        }
                        match finish {
                            Finish::Succeeded { .. } => summary.succeeded += 1,
                            Finish::Diverged { .. } => summary.diverged += 1,
                            Finish::Failed { .. } => summary.failed += 1,
                            Finish::Interrupted => {}
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
                    shared.store.release_dead_owners(sweep_id, STALE_AFTER).await?;
                }
            }
        }
    }
    shared.progress.clear();
    summary.elapsed = started.elapsed();
    Ok(summary)
}

async fn run_job(
    shared: &Shared,
    slot: &Slot,
    job: ClaimedJob,
    stop: watch::Receiver<bool>,
    claim_time: Duration,
) -> AttemptEnd {
    match attempt(shared, slot, &job, stop).await {
        Ok((finish, overhead, startup)) => AttemptEnd::Finished {
            finish,
            overhead: overhead + claim_time,
            startup,
        },
        Err(e) => AttemptEnd::StoreError(e.context(format!("job {} ({})", job.id, job.label))),
    }
}

async fn attempt(
    shared: &Shared,
    slot: &Slot,
    job: &ClaimedJob,
    stop: watch::Receiver<bool>,
) -> Result<(Finish, Duration, Option<Duration>)> {
    let t0 = Instant::now();
    let config: JobConfig = serde_json::from_str(&job.config_json)
        .with_context(|| format!("job {}: stored config is not a valid JobConfig", job.id))?;
    let dir = artifact_dir(&shared.runs, &shared.sweep, &job.hash);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = std::fs::canonicalize(&dir)?;
    shared
        .store
        .set_artifact_dir(job.id, &dir.display().to_string())
        .await?;
    let init_checkpoint = match &job.init_from_hash {
        Some(hash) => {
            let dep = shared
                .store
                .dependency_artifact(shared.sweep_id, hash)
                .await?
                .with_context(|| {
                    format!("job {}: its init stage {hash} has no artifacts", job.id)
                })?;
            Some(PathBuf::from(dep).join(FINAL_CHECKPOINT))
        }
        None => None,
    };
    let ticket = Ticket {
        job_id: job.id,
        hash: job.hash.clone(),
        label: job.label.clone(),
        config: config.clone(),
        attempt: job.attempts,
        device: slot.device,
        init_checkpoint,
    };
    let ticket_path = dir.join(TICKET_FILE);
    write_replace(
        &ticket_path,
        serde_json::to_string_pretty(&ticket)?.as_bytes(),
        false,
    )?;
    let mut overhead = t0.elapsed();

    let mut job_progress = shared.progress.job(&job.label, config.iters as u64);
    let spec = ChildSpec {
        exe: &shared.exe,
        ticket: &ticket_path,
        artifact_dir: &dir,
        hash: &job.hash,
        cuda_visible: slot.cuda_visible.clone(),
        torch_threads: slot.torch_threads,
    };
    let (finish, timings) = run_attempt(
        spec,
        &shared.store,
        job.id,
        &shared.owner,
        &mut job_progress,
        stop,
    )
    .await?;
    drop(job_progress);
    overhead += timings.store;

    let t1 = Instant::now();
    shared
        .store
        .finish(job.id, &shared.owner, finish.clone())
        .await?;
    if let Finish::Succeeded { .. } = &finish {
        let final_ckpt = dir.join(FINAL_CHECKPOINT);
        if final_ckpt.exists() {
            shared
                .store
                .record_artifact(
                    job.id,
                    "final",
                    &final_ckpt.display().to_string(),
                    Some(config.iters),
                )
                .await?;
        }
    }
    overhead += t1.elapsed();
    shared.progress.finished(&describe(job, &finish));
    Ok((finish, overhead, timings.startup))
}

fn describe(job: &ClaimedJob, finish: &Finish) -> String {
    match finish {
        Finish::Succeeded { metrics, .. } => {
            let get = |n: &str| {
                metrics
                    .iter()
                    .find(|m| m.name == n && m.class.is_none())
                    .map(|m| m.value)
                    .unwrap_or(f64::NAN)
            };
            format!(
                "done     {}  mDice {:.2}  mIoU {:.2}",
                job.label,
                get("mDice"),
                get("mIoU")
            )
        }
        Finish::Diverged { iter, .. } => format!("diverged {}  at iteration {iter}", job.label),
        Finish::Failed { reason, .. } if job.attempts < job.max_attempts => {
            format!(
                "retry    {}  attempt {}/{} failed: {reason}",
                job.label, job.attempts, job.max_attempts
            )
        }
        Finish::Failed { reason, .. } => format!(
            "FAILED   {}  after {} attempt(s): {reason}",
            job.label, job.attempts
        ),
        Finish::Interrupted => format!("stopped  {}  (resumes from its checkpoint)", job.label),
    }
}

/// Opens every distinct data set the plan trains on, so missing or corrupt files are
/// reported (with their path) before anything is written to the database.
fn preflight(plan: &[PlannedJob]) -> Result<()> {
    let mut seen: Vec<&crate::job::DataConfig> = Vec::new();
    for job in plan.iter().filter(|j| j.config.model.backbone != "noop") {
        if seen.contains(&&job.config.data) {
            continue;
        }
        seen.push(&job.config.data);
        crate::trainer::data::Dataset::open(&job.config.data)
            .with_context(|| format!("job {} ({}): data set", job.hash, job.label))?;
    }
    Ok(())
}

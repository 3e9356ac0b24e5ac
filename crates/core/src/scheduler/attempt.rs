//! One attempt of a claimed job: make its folder safe, write its ticket, run its job process,
//! record how it ended.

use super::child::{run_child, ChildSpec, Launch};
use super::folder::{artifact_dir, claim_folder, FolderState};
use super::overhead::Overhead;
use super::progress::Progress;
use super::sweeps::{SweepDirectory, SweepInfo};
use super::Slot;
use crate::job::{FailureKind, JobSpec, JobStatus};
use crate::protocol::{Claim, Ticket, FINAL_CHECKPOINT};
use crate::store::{ClaimedJob, Ending, Fence, Finish, NewArtifact, Owner, Store, StoreError};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// What every attempt of one orchestrator (`sweep run`, `sweep agent`) shares.
pub(super) struct Shared {
    pub store: Arc<dyn Store>,
    pub owner: Owner,
    pub sweeps: SweepDirectory,
    pub exe: PathBuf,
    pub progress: Progress,
    pub adopt: bool,
    /// Claims hold this long; heartbeats renew them at a third of it.
    pub lease: Duration,
    /// The Slurm job this agent runs in, recorded with each claim.
    pub slurm_job: Option<String>,
}

pub(super) enum AttemptEnd {
    /// The store recorded the attempt; `status` is the job's status now.
    Recorded {
        status: JobStatus,
        overhead: Overhead,
        startup: Option<Duration>,
    },
    /// This node cannot use the sweep's runs folder: the job went back to the queue.
    Unreachable { sweep_id: i64, error: anyhow::Error },
    /// The job was taken over (our lease lapsed): its process was stopped, nothing recorded.
    Superseded,
    /// The store failed mid-attempt; the job stays ours until its lease expires.
    StoreError(anyhow::Error),
}

pub(super) async fn run(
    shared: &Shared,
    slot: &Slot,
    job: ClaimedJob,
    stop: watch::Receiver<bool>,
    claim_time: Duration,
) -> AttemptEnd {
    let fence = job.fence(&shared.owner);
    let t = Instant::now();
    let sweep = match shared.sweeps.get(shared.store.as_ref(), job.sweep_id).await {
        Ok(info) => info,
        Err(error) => {
            // Not the job's fault: hand it back for a node that sees the folder.
            let _ = shared.store.mark_interrupted(&fence).await;
            return AttemptEnd::Unreachable {
                sweep_id: job.sweep_id,
                error,
            };
        }
    };
    let mut overhead = Overhead {
        claim: claim_time,
        folder: t.elapsed(),
        ..Overhead::default()
    };
    match attempt(shared, &sweep, slot, &job, &fence, stop, &mut overhead).await {
        Ok((status, startup)) => AttemptEnd::Recorded {
            status,
            overhead,
            startup,
        },
        Err(e) if StoreError::is_not_owner(&e) => {
            shared.progress.message(&format!(
                "job {} ({}): taken over by another agent after our lease lapsed; its result here was not recorded",
                job.id, job.label
            ));
            AttemptEnd::Superseded
        }
        Err(e) => AttemptEnd::StoreError(e.context(format!("job {} ({})", job.id, job.label))),
    }
}

/// Heartbeats renew the lease at a third of it at the latest, and every 2 s at least, so
/// that `sweep status` shows recent progress whatever the lease.
fn heartbeat_every(lease: Duration) -> Duration {
    (lease / 3).min(Duration::from_secs(2))
}

async fn attempt(
    shared: &Shared,
    sweep: &SweepInfo,
    slot: &Slot,
    job: &ClaimedJob,
    fence: &Fence,
    stop: watch::Receiver<bool>,
    overhead: &mut Overhead,
) -> Result<(JobStatus, Option<Duration>)> {
    let t = Instant::now();
    let config = JobSpec::from_json(&job.config_json)
        .with_context(|| format!("job {}: its stored config is not a job", job.id))?;
    let claim = Claim {
        store: shared.store.identity().to_string(),
        job_id: job.id,
        attempt: job.attempts,
    };
    let dir = prepare_folder(shared, sweep, job, &claim)?;
    let ticket = Ticket {
        claim,
        hash: job.hash.clone(),
        label: job.label.clone(),
        config: config.clone(),
        device: slot.device,
        init_checkpoint: init_checkpoint(shared, job).await?,
        pause_at: job.pause_at,
        continue_from: continue_from(shared, job, fence).await?,
        keep_state: job.keep_state,
    };
    record_folder(shared, job, fence, &dir).await?;
    overhead.folder += t.elapsed();
    // Overlapping this fsync with the store's write (a blocking-pool thread) cost more than
    // it saved on 2 cores: 3.0 ms instead of 1.3-1.5.
    let t = Instant::now();
    let ticket_path = ticket.write(&dir)?;
    let program = match &config {
        JobSpec::Command(c) => Some(super::command::launch(
            c,
            &dir,
            &ticket_path,
            &ticket.claim,
            &job.hash,
            job.pause_at,
        )?),
        JobSpec::Train(_) => None,
    };
    overhead.ticket = t.elapsed();

    let total = config.iters().unwrap_or(0) as u64;
    let mut job_progress = shared.progress.job(&job.label, total);
    let spec = ChildSpec {
        launch: match &program {
            Some(p) => Launch::Program(p),
            None => Launch::Worker {
                exe: &shared.exe,
                ticket: &ticket_path,
            },
        },
        artifact_dir: &dir,
        hash: &job.hash,
        claim: &ticket.claim,
        cuda_visible: slot.cuda_visible.clone(),
        torch_threads: slot.torch_threads,
        pause_at: job.pause_at,
    };
    let (ending, timings) = run_child(
        spec,
        shared.store.as_ref(),
        fence,
        heartbeat_every(shared.lease),
        &mut job_progress,
        stop,
    )
    .await?;
    drop(job_progress);
    overhead.events = timings.events;
    overhead.heartbeats = timings.heartbeats;

    let t = Instant::now();
    let finish = ending.finish.clone();
    let status = record(shared, sweep, fence, &dir, &config, ending).await?;
    overhead.finish = t.elapsed();
    shared
        .progress
        .attempt_ended(status, &describe(job, &finish, status));
    // A pause is what the attempt did, even when the rule promoted the job at once.
    let ended = match finish {
        Finish::Paused { .. } => JobStatus::Paused,
        _ => status,
    };
    Ok((ended, timings.startup))
}

/// Creates the job's folder and moves aside what another database left there.
fn prepare_folder(
    shared: &Shared,
    sweep: &SweepInfo,
    job: &ClaimedJob,
    claim: &Claim,
) -> Result<PathBuf> {
    let dir = artifact_dir(&sweep.runs, &sweep.name, &job.hash);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = std::fs::canonicalize(&dir)?;
    match claim_folder(&dir, &job.hash, claim, shared.adopt)? {
        FolderState::Ours => {}
        FolderState::MovedAside(aside) => shared.progress.message(&format!(
            "job {} ({}): {} held results or checkpoints of another database (or of sweep < 0.2); \
             moved them to {} and training from scratch (`sweep run --adopt` takes them instead)",
            job.id,
            job.label,
            dir.display(),
            aside.display()
        )),
        FolderState::Adopted => shared.progress.message(&format!(
            "job {} ({}): adopting the results and checkpoints found in {} (--adopt)",
            job.id,
            job.label,
            dir.display()
        )),
    }
    Ok(dir)
}

/// Records the job's folder (a resumed or retried job's is on record already).
async fn record_folder(shared: &Shared, job: &ClaimedJob, fence: &Fence, dir: &Path) -> Result<()> {
    let recorded = dir.display().to_string();
    if job.artifact_dir.as_deref() != Some(recorded.as_str()) {
        shared.store.set_artifact_dir(fence, &recorded).await?;
    }
    Ok(())
}

/// The final checkpoint of the stage the job starts from (`init.from`).
async fn init_checkpoint(shared: &Shared, job: &ClaimedJob) -> Result<Option<PathBuf>> {
    match &job.init_from_hash {
        Some(hash) if !job.continues => Ok(Some(
            dependency_checkpoint(shared, job, hash, "init stage").await?,
        )),
        _ => Ok(None),
    }
}

/// A shared prefix: the final checkpoint of the shorter run this job continues, whose curves
/// become the job's first iterations.
async fn continue_from(
    shared: &Shared,
    job: &ClaimedJob,
    fence: &Fence,
) -> Result<Option<PathBuf>> {
    let Some(hash) = job.init_from_hash.as_deref().filter(|_| job.continues) else {
        return Ok(None);
    };
    let path = dependency_checkpoint(shared, job, hash, "shorter run").await?;
    shared
        .store
        .inherit_prefix_curves(fence, job.sweep_id, hash)
        .await?;
    Ok(Some(path))
}

/// The final checkpoint of the sweep's job `hash`, which succeeded (the claim waited for it).
async fn dependency_checkpoint(
    shared: &Shared,
    job: &ClaimedJob,
    hash: &str,
    what: &str,
) -> Result<PathBuf> {
    let dep = shared
        .store
        .dependency_artifact(job.sweep_id, hash)
        .await?
        .with_context(|| format!("job {}: its {what} {hash} has no artifacts", job.id))?;
    Ok(PathBuf::from(dep).join(FINAL_CHECKPOINT))
}

/// Records the attempt's end and, for a success, its final checkpoint: one transaction.
async fn record(
    shared: &Shared,
    sweep: &SweepInfo,
    fence: &Fence,
    dir: &Path,
    config: &JobSpec,
    mut ending: Ending,
) -> Result<JobStatus> {
    let final_ckpt = dir.join(FINAL_CHECKPOINT);
    if let (Finish::Succeeded { .. }, Some(c)) = (&ending.finish, config.train()) {
        if final_ckpt.exists() {
            ending.final_checkpoint = Some(NewArtifact {
                kind: "final".into(),
                path: final_ckpt.display().to_string(),
                iteration: Some(c.iters),
            });
        }
    }
    let search = sweep.search.as_deref();
    shared
        .store
        .end_attempt_in_search(fence, ending, search)
        .await
}

/// The line printed above the progress bars when an attempt ends.
fn describe(job: &ClaimedJob, finish: &Finish, status: JobStatus) -> String {
    match finish {
        Finish::Succeeded { metrics, .. } => {
            // The study's two headline numbers; a program's first two, when it has others.
            let summary: Vec<_> = metrics
                .iter()
                .filter(|m| m.class.is_none() && m.split == "val")
                .collect();
            let study: Vec<_> = ["mDice", "mIoU"]
                .iter()
                .filter_map(|n| summary.iter().find(|m| m.name == *n))
                .collect();
            let shown: Vec<String> = match study.is_empty() {
                false => study
                    .iter()
                    .map(|m| format!("{} {:.2}", m.name, m.value))
                    .collect(),
                true => summary
                    .iter()
                    .take(2)
                    .map(|m| format!("{} {:.4}", m.name, m.value))
                    .collect(),
            };
            format!("done     {}  {}", job.label, shown.join("  "))
        }
        Finish::Diverged { iter, .. } => format!("diverged {}  at iteration {iter}", job.label),
        Finish::Failed { reason, .. } if status == JobStatus::Pending => format!(
            "retry    {}  attempt {} of {} failed: {reason}",
            job.label,
            job.failures + 1,
            job.max_attempts
        ),
        Finish::Failed { reason, kind, .. } => format!(
            "FAILED   {}  after {} attempt(s){}: {reason}",
            job.label,
            job.failures + 1,
            match kind {
                FailureKind::Permanent => " (not retried: bad config or input)",
                FailureKind::Transient => "",
            }
        ),
        Finish::Interrupted => format!("stopped  {}  (resumes from its checkpoint)", job.label),
        Finish::Paused { iter, .. } => match status {
            JobStatus::Pending => format!("promoted {}  past iteration {iter}", job.label),
            JobStatus::Stopped => format!(
                "stopped  {}  at iteration {iter} (stopping rule)",
                job.label
            ),
            _ => format!("paused   {}  at iteration {iter} (rung)", job.label),
        },
    }
}

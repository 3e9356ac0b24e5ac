//! The slot loop shared by `sweep run` and `sweep agent`: claim while slots are free, record
//! each attempt as it ends, take back what gone owners left, stop resumably on a signal.

use super::attempt::{self, AttemptEnd, Shared};
use super::{RunSummary, Slot};
use crate::store::ClaimRequest;
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// When the loop ends.
#[derive(Clone, Debug)]
pub(super) struct Until {
    /// `sweep agent`: wait while jobs of its sweeps run elsewhere (they come back if their
    /// agent dies); end once none is left anywhere for `idle_exit`. `sweep run`: end when
    /// nothing is left to start here and nothing runs here.
    pub wait_for_others: bool,
    pub idle_exit: Duration,
    /// Claim at most this many jobs, then finish those and end.
    pub max_jobs: Option<usize>,
}

/// How often an idle loop looks for work.
const POLL: Duration = Duration::from_millis(500);

struct Signals {
    terminate: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals> {
        Ok(Signals {
            terminate: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            usr1: signal(SignalKind::user_defined1()).context("listening for SIGUSR1")?,
        })
    }

    /// Ctrl-C, SIGTERM, or SIGUSR1 (what Slurm sends before a time limit or a preemption).
    async fn stop_requested(&mut self) -> &'static str {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "interrupted",
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.usr1.recv() => "SIGUSR1",
        }
    }
}

/// The sweeps this loop claims from: `None` is every sweep with work.
struct Scope {
    sweeps: Option<Vec<i64>>,
    /// Sweeps whose runs folder this node cannot see.
    unreachable: BTreeSet<i64>,
}

impl Scope {
    async fn ids(&self, shared: &Shared) -> Result<Option<Vec<i64>>> {
        if self.unreachable.is_empty() {
            return Ok(self.sweeps.clone());
        }
        let all = match &self.sweeps {
            Some(ids) => ids.clone(),
            None => shared.store.sweeps().await?.iter().map(|s| s.id).collect(),
        };
        Ok(Some(
            all.into_iter()
                .filter(|id| !self.unreachable.contains(id))
                .collect(),
        ))
    }
}

pub(super) async fn drive(
    shared: &Arc<Shared>,
    mut free: Vec<Slot>,
    sweeps: Option<Vec<i64>>,
    until: &Until,
    summary: &mut RunSummary,
) -> Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    free.reverse();
    let mut running: JoinSet<(Slot, AttemptEnd)> = JoinSet::new();
    let mut scope = Scope {
        sweeps,
        unreachable: BTreeSet::new(),
    };
    let mut stopping = false;
    let mut claimed = 0usize;
    let mut last_release = Instant::now();
    let mut idle_since: Option<Instant> = None;
    let mut signals = Signals::new()?;
    let release_every = (shared.lease / 3).max(Duration::from_millis(200));

    loop {
        let may_claim = !stopping && until.max_jobs.is_none_or(|m| claimed < m);
        if may_claim {
            let ids = scope.ids(shared).await?;
            if ids.as_ref().is_some_and(|v| v.is_empty()) && running.is_empty() {
                anyhow::bail!(
                    "node {}: no sweep left that this node can run (see the errors above)",
                    crate::store::local_hostname()
                );
            }
            while let Some(slot) = free.pop() {
                if until.max_jobs.is_some_and(|m| claimed >= m) {
                    free.push(slot);
                    break;
                }
                let t = Instant::now();
                let request = ClaimRequest {
                    sweeps: ids.as_deref(),
                    owner: &shared.owner,
                    lease: shared.lease,
                    slurm_job: shared.slurm_job.as_deref(),
                };
                let Some(job) = shared.store.claim(request).await? else {
                    free.push(slot);
                    break;
                };
                claimed += 1;
                summary.attempts += 1;
                idle_since = None;
                let claim_time = t.elapsed();
                let (shared, stop) = (shared.clone(), stop_rx.clone());
                running.spawn(async move {
                    let end = attempt::run(&shared, &slot, job, stop, claim_time).await;
                    (slot, end)
                });
            }
        }
        if running.is_empty() {
            let no_more_claims = stopping || until.max_jobs.is_some_and(|m| claimed >= m);
            if no_more_claims || !until.wait_for_others {
                return Ok(());
            }
            let ids = scope.ids(shared).await?;
            if work_left(shared, ids.as_deref()).await? == 0 {
                let since = *idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= until.idle_exit {
                    return Ok(());
                }
            } else {
                idle_since = None;
            }
        }
        tokio::select! {
            joined = running.join_next(), if !running.is_empty() => {
                let Some(joined) = joined else { continue };
                let (slot, end) = joined.context("a job task panicked")?;
                free.push(slot);
                tally(end, summary, &mut scope);
            }
            why = signals.stop_requested(), if !stopping => {
                stopping = true;
                summary.interrupted = true;
                shared.progress.message(&format!(
                    "{why}: running jobs checkpoint and go back to the queue; `sweep run` or an agent resumes them"
                ));
                let _ = stop_tx.send(true);
            }
            _ = tokio::time::sleep(POLL) => {
                // Dependencies may have finished elsewhere, or another agent died.
                if !free.is_empty() && last_release.elapsed() >= release_every {
                    last_release = Instant::now();
                    let released = shared.store.release_dead_owners(None).await?;
                    if !released.is_empty() {
                        shared.progress.message(&format!(
                            "took back {} job(s) whose agent is gone (lease expired or process dead); they resume from their checkpoints",
                            released.len()
                        ));
                    }
                }
            }
        }
    }
}

/// Counts one attempt's end into the summary (and the scope, for a folder this node lacks).
fn tally(end: AttemptEnd, summary: &mut RunSummary, scope: &mut Scope) {
    match end {
        AttemptEnd::Recorded {
            status,
            overhead,
            startup,
        } => {
            summary.tally(status);
            summary.overhead.add(&overhead);
            if let Some(s) = startup {
                summary.startup += s;
                summary.startup_samples += 1;
            }
        }
        AttemptEnd::Unreachable { sweep_id, error } => {
            summary.handed_back += 1;
            if scope.unreachable.insert(sweep_id) {
                tracing::error!(
                    "{error:#}; its job went back to the queue (not failed) and this agent takes no more of that sweep"
                );
            }
        }
        AttemptEnd::Superseded => summary.superseded += 1,
        AttemptEnd::StoreError(e) => {
            summary.store_errors += 1;
            tracing::error!("store error, the job resumes once its lease expires: {e:#}")
        }
    }
}

/// Jobs of the sweeps still to run anywhere: pending or interrupted (not blocked), or running.
async fn work_left(shared: &Shared, sweeps: Option<&[i64]>) -> Result<usize> {
    let ids: Vec<i64> = match sweeps {
        Some(ids) => ids.to_vec(),
        None => shared.store.sweeps().await?.iter().map(|s| s.id).collect(),
    };
    let mut left = 0;
    for id in ids {
        let counts = shared.store.counts(id).await?;
        let open: usize = counts
            .iter()
            .filter(|(s, _)| !s.is_finished())
            .map(|(_, n)| n)
            .sum();
        let blocked = shared.store.blocked(id).await?.len();
        left += open.saturating_sub(blocked);
    }
    Ok(left)
}

//! One job attempt in its own process: spawn `sweep worker`, stream its events into the
//! store, keep its heartbeat, and turn however it ended into a [`Finish`].

use super::progress::JobProgress;
use crate::job::FailureKind;
use crate::protocol::{Claim, Event, JobResult, Outcome, EXIT_REJECTED, THREADS_ENV, WORKER_LOG};
use crate::store::{CurvePoint, Finish, Owner, Store};
use anyhow::{Context, Result};
use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::watch;

/// How often the running job's row is touched (and its ownership re-checked).
const HEARTBEAT: Duration = Duration::from_secs(2);
/// Curve points are written in batches: one transaction per batch, not per iteration.
const CURVE_FLUSH: Duration = Duration::from_millis(1000);
/// Lines of the worker's stderr kept for the job's error record.
const STDERR_TAIL_LINES: usize = 40;
/// After a stop request, how long a worker may take to checkpoint before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(60);

pub struct ChildSpec<'a> {
    pub exe: &'a Path,
    pub ticket: &'a Path,
    pub artifact_dir: &'a Path,
    pub hash: &'a str,
    /// The claim this attempt works for: only a result produced for it is recorded.
    pub claim: &'a Claim,
    /// CUDA_VISIBLE_DEVICES for this slot; None on CPU.
    pub cuda_visible: Option<String>,
    /// libtorch intra-op threads for this worker (its share of the CPU cores).
    pub torch_threads: usize,
}

/// What the orchestrator measured about one attempt (for the orchestrator benchmark).
#[derive(Default, Clone, Copy, Debug)]
pub struct AttemptTimings {
    /// From spawn to the worker's first event (process start-up, libtorch loading).
    pub startup: Option<Duration>,
    /// Time spent in store calls made for this attempt (curves, heartbeats, artifacts).
    pub store: Duration,
}

/// Runs one attempt to its end. Never fails on the job's behalf: every way a worker can
/// end (result, crash, signal, lost ownership, stop request) becomes a [`Finish`].
pub async fn run_child(
    spec: ChildSpec<'_>,
    store: &dyn Store,
    job_id: i64,
    owner: &Owner,
    progress: &mut JobProgress,
    mut stop: watch::Receiver<bool>,
) -> Result<(Finish, AttemptTimings)> {
    let mut timings = AttemptTimings::default();
    let mut cmd = Command::new(spec.exe);
    cmd.arg("worker")
        .arg(spec.ticket)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd.env(THREADS_ENV, spec.torch_threads.to_string());
    if let Some(devices) = &spec.cuda_visible {
        cmd.env("CUDA_VISIBLE_DEVICES", devices);
    }
    let spawned = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting worker {}", spec.exe.display()))?;
    let pid = child.id();
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");

    // stderr: keep a tail for the error record and a full copy in the job's folder.
    let log_path = spec.artifact_dir.join(WORKER_LOG);
    let stderr_task = tokio::spawn(async move {
        let mut tail: VecDeque<String> = VecDeque::new();
        let mut log = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .await
            .ok();
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(f) = log.as_mut() {
                let _ = f.write_all(format!("{line}\n").as_bytes()).await;
            }
            if tail.len() == STDERR_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
        tail.into_iter().collect::<Vec<_>>().join("\n")
    });

    let mut lines = BufReader::new(stdout).lines();
    let mut curve: Vec<CurvePoint> = Vec::new();
    let mut last_flush = Instant::now();
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut iteration = 0usize;
    let mut lost_ownership = false;
    let mut stop_sent: Option<Instant> = None;
    let mut stdout_open = true;

    while stdout_open {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => {
                    if timings.startup.is_none() {
                        timings.startup = Some(spawned.elapsed());
                    }
                    let Ok(event) = serde_json::from_str::<Event>(&line) else {
                        tracing::debug!("worker {pid:?}: {line}");
                        continue;
                    };
                    match event {
                        Event::Started { resumed_from, .. } => progress.resumed(resumed_from as u64),
                        Event::Iter { iter, loss, lr, secs, .. } => {
                            iteration = iter;
                            progress.update(iter as u64, loss);
                            curve.push(CurvePoint { iteration: iter, loss, lr, secs });
                        }
                        Event::Checkpoint { iter, path } => {
                            let t = Instant::now();
                            store.record_artifact(job_id, "checkpoint", &path.display().to_string(), Some(iter)).await?;
                            timings.store += t.elapsed();
                        }
                        Event::Log { message } => tracing::info!("{message}"),
                    }
                    if !curve.is_empty() && last_flush.elapsed() >= CURVE_FLUSH {
                        let t = Instant::now();
                        store.record_curve(job_id, &curve).await?;
                        timings.store += t.elapsed();
                        curve.clear();
                        last_flush = Instant::now();
                    }
                }
                _ => stdout_open = false,
            },
            _ = heartbeat.tick() => {
                let t = Instant::now();
                let ours = store.heartbeat(job_id, owner, iteration).await?;
                timings.store += t.elapsed();
                if !ours && !lost_ownership {
                    // Another orchestrator declared us dead and took the job: stop at once,
                    // two processes must never train the same job.
                    tracing::warn!("job {job_id}: ownership lost, stopping its worker");
                    lost_ownership = true;
                    let _ = child.start_kill();
                }
                if let Some(sent) = stop_sent {
                    if sent.elapsed() > STOP_GRACE {
                        let _ = child.start_kill();
                    }
                }
            },
            changed = stop.changed(), if stop_sent.is_none() => {
                if changed.is_err() || *stop.borrow() {
                    if let Some(pid) = pid {
                        // SIGTERM: the worker checkpoints and exits with an Interrupted result.
                        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
                    }
                    stop_sent = Some(Instant::now());
                }
            },
        }
    }
    let status = child.wait().await.context("waiting for worker")?;
    // Record where the job got to, so `status` and an interrupted job show it.
    if !lost_ownership {
        store.heartbeat(job_id, owner, iteration).await?;
    }
    let stderr_tail = stderr_task.await.unwrap_or_default();
    if !curve.is_empty() {
        let t = Instant::now();
        store.record_curve(job_id, &curve).await?;
        timings.store += t.elapsed();
    }
    if lost_ownership {
        return Ok((Finish::Interrupted, timings));
    }
    let result = JobResult::read(spec.artifact_dir).filter(|r| r.is_for_job(spec.hash, spec.claim));
    let finish = match result {
        Some(r) => finish_from(r),
        None if stop_sent.is_some() => Finish::Interrupted,
        None => Finish::Failed {
            reason: failure_reason(&status, &stderr_tail),
            kind: if status.code() == Some(EXIT_REJECTED) {
                FailureKind::Permanent
            } else {
                FailureKind::Transient
            },
            stderr_tail,
        },
    };
    Ok((finish, timings))
}

/// What the store records for a result the job process left.
fn finish_from(result: JobResult) -> Finish {
    match result.outcome {
        Outcome::Completed {
            iterations,
            metrics,
        } => Finish::Succeeded {
            metrics,
            iterations,
            sweep_version: result.sweep_version,
        },
        Outcome::Diverged {
            iter,
            last_finite_loss,
        } => Finish::Diverged {
            iter,
            last_finite_loss,
        },
        Outcome::Interrupted { .. } => Finish::Interrupted,
        Outcome::Rejected { reason } => Finish::Failed {
            reason,
            stderr_tail: String::new(),
            kind: FailureKind::Permanent,
        },
    }
}

/// How the process ended, and the error it printed last (`error: ...` on stderr), if any.
fn failure_reason(status: &std::process::ExitStatus, stderr_tail: &str) -> String {
    let exit = describe_exit(status);
    match stderr_tail
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
    {
        Some(error) => format!("{exit}: {error}"),
        None => exit,
    }
}

/// "exit code 3", "killed by signal 6 (SIGABRT)", "killed by signal 9 (SIGKILL: out of memory?)".
pub fn describe_exit(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(sig) = status.signal() {
        let name = match sig {
            libc::SIGABRT => "SIGABRT",
            libc::SIGSEGV => "SIGSEGV",
            libc::SIGKILL => "SIGKILL: killed, possibly by the out-of-memory killer",
            libc::SIGBUS => "SIGBUS",
            libc::SIGTERM => "SIGTERM",
            libc::SIGINT => "SIGINT",
            _ => "signal",
        };
        return format!("killed by signal {sig} ({name})");
    }
    match status.code() {
        Some(0) => "exited without writing a result".into(),
        Some(code) => format!("exit code {code}"),
        None => "ended abnormally".into(),
    }
}

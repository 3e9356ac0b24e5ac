//! The job process: `sweep worker TICKET` runs one job and nothing else.
//!
//! The scheduler starts one worker process per job so that an abort, a segfault or an
//! out-of-memory in one job cannot take the others or the orchestrator down. The
//! protocol is deliberately dumb and durable:
//! - the scheduler writes a [`Ticket`] (JSON) into the job's artifact folder;
//! - the worker prints one JSON [`Event`] per line on stdout while it trains;
//! - the worker writes the [`Outcome`] atomically to `result.json` in the artifact folder
//!   and exits 0. The scheduler trusts `result.json`, not the exit code alone, so a
//!   result survives an orchestrator that died between the worker's exit and its record.

use crate::job::JobConfig;
use crate::trainer::{self, DeviceChoice, Event, Observer, Outcome, TrainContext};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

pub const TICKET_FILE: &str = "ticket.json";
pub const RESULT_FILE: &str = "result.json";

/// Everything a worker needs to run one job attempt.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ticket {
    pub job_id: i64,
    pub hash: String,
    pub label: String,
    pub config: JobConfig,
    pub attempt: u32,
    pub device: DeviceChoice,
    pub init_checkpoint: Option<PathBuf>,
}

/// `result.json`: the outcome, tagged with the job's hash so a stale file is never misread.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobResult {
    pub hash: String,
    pub outcome: Outcome,
}

impl JobResult {
    /// A finished result of this job in `dir`, if any (an interrupted one does not count).
    pub fn read_finished(dir: &Path, hash: &str) -> Option<JobResult> {
        let text = std::fs::read_to_string(dir.join(RESULT_FILE)).ok()?;
        let result: JobResult = serde_json::from_str(&text).ok()?;
        let finished = !matches!(result.outcome, Outcome::Interrupted { .. });
        (result.hash == hash && finished).then_some(result)
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Prints events as JSON lines; reports SIGINT/SIGTERM as a stop request.
struct StdoutObserver;

impl Observer for StdoutObserver {
    fn event(&mut self, event: Event) {
        let line = serde_json::to_string(&event).expect("events serialise");
        let mut out = std::io::stdout().lock();
        // A closed pipe means the orchestrator is gone; training on is pointless.
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            STOP.store(true, Ordering::SeqCst);
        }
    }
    fn stop_requested(&self) -> bool {
        STOP.load(Ordering::SeqCst)
    }
}

/// Writes `bytes` to `path` atomically and durably: a reader sees the old file or the new
/// one, never half, and the new one survives a power cut once this returns.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_replace(path, bytes, true)
}

/// [`write_atomic`], with the fsync optional: files rewritten on every attempt anyway
/// (tickets) need not make the orchestrator wait for the disk.
pub fn write_replace(path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", tmp.display()))?;
    if durable {
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// Entry point of `sweep worker`.
pub fn main(ticket_path: &Path) -> Result<()> {
    // Die with the orchestrator: a job must never outlive the process that records it.
    #[cfg(target_os = "linux")]
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    unsafe {
        libc::signal(
            libc::SIGINT,
            request_stop as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            request_stop as *const () as libc::sighandler_t,
        );
    }
    if let Some(n) = std::env::var("SWEEP_TORCH_THREADS")
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
    {
        tch::set_num_threads(n);
    }
    let text = std::fs::read_to_string(ticket_path)
        .with_context(|| format!("reading ticket {}", ticket_path.display()))?;
    let ticket: Ticket = serde_json::from_str(&text)
        .with_context(|| format!("parsing ticket {}", ticket_path.display()))?;
    let artifact_dir = ticket_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));

    // Finished before (the orchestrator died before recording it): report, don't retrain.
    if JobResult::read_finished(&artifact_dir, &ticket.hash).is_some() {
        return Ok(());
    }
    let ctx = TrainContext {
        device: ticket.device,
        artifact_dir: artifact_dir.clone(),
        attempt: ticket.attempt,
        init_checkpoint: ticket.init_checkpoint.clone(),
    };
    let outcome = trainer::run(&ticket.config, &ctx, &mut StdoutObserver)?;
    let result = JobResult {
        hash: ticket.hash.clone(),
        outcome,
    };
    write_atomic(
        &artifact_dir.join(RESULT_FILE),
        serde_json::to_string_pretty(&result)?.as_bytes(),
    )?;
    Ok(())
}

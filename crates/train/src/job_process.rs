//! The job process: `sweep worker TICKET` runs one job attempt and nothing else.
//!
//! The scheduler starts one job process per attempt so that an abort, a segfault or an
//! out-of-memory in one job cannot take the others or the orchestrator down. What the two
//! sides exchange (ticket, events, result file) is [`sweep_core::protocol`].
//!
//! How it ends: a [`JobResult`] in the artifact folder and exit 0; or, when the job cannot
//! run as configured (bad config, a checkpoint that does not fit, a missing file), a
//! `rejected` result and exit [`EXIT_REJECTED`], which the scheduler does not retry; or any
//! other error, exit 1, which it retries.

use crate::{Event, Observer, TrainContext};
use anyhow::Result;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use sweep_core::job::ConfigError;
use sweep_core::protocol::{JobResult, Outcome, Ticket, EXIT_REJECTED, THREADS_ENV};
use sweep_data::DataError;

/// An error no retry can fix: the job's configuration or input is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct BadInput(pub anyhow::Error);

/// Marks `e` as bad input (see [`BadInput`]).
pub fn bad_input(e: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(BadInput(e))
}

/// Would every attempt fail with this error? Config errors, data errors (other than a
/// loader that stopped) and [`BadInput`] would.
pub fn is_permanent(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<ConfigError>()
            || c.is::<BadInput>()
            || c.downcast_ref::<DataError>()
                .is_some_and(|d| !matches!(d, DataError::LoaderStopped { .. }))
    })
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

/// Entry point of `sweep worker`; returns the process's exit status.
pub fn main(ticket_path: &Path) -> Result<i32> {
    crate::memory::tune_for_training();
    install_signal_handlers();
    install_panic_report();
    if let Some(n) = std::env::var(THREADS_ENV)
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
    {
        tch::set_num_threads(n);
    }
    let ticket = Ticket::read(ticket_path)?;
    let artifact_dir = ticket_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));

    // Finished for this claim's job before (the orchestrator died before recording it):
    // report it again, don't retrain. The scheduler moved aside any other database's files.
    if JobResult::read(&artifact_dir).is_some_and(|r| {
        r.is_for_job(&ticket.hash, &ticket.claim) && r.is_result_for(ticket.pause_at)
    }) {
        return Ok(0);
    }
    let ctx = TrainContext {
        device: ticket.device,
        artifact_dir: artifact_dir.clone(),
        attempt: ticket.claim.attempt,
        init_checkpoint: ticket.init_checkpoint.clone(),
        pause_at: ticket.pause_at,
        continue_from: ticket.continue_from.clone(),
        keep_state: ticket.keep_state,
    };
    let (outcome, code) = match crate::run(ticket.train_config()?, &ctx, &mut StdoutObserver) {
        Ok(outcome) => (outcome, 0),
        Err(e) if is_permanent(&e) => {
            eprintln!("error: {e:#}");
            let reason = format!("{e:#}")
                .lines()
                .next()
                .unwrap_or_default()
                .to_string();
            (Outcome::Rejected { reason }, EXIT_REJECTED)
        }
        Err(e) => return Err(e),
    };
    if superseded(ticket_path, &ticket) {
        // Another agent took the job over while this process ran on (its orchestrator was
        // stalled or cut off): the folder is the new attempt's now, this result is not.
        eprintln!(
            "error: attempt {} of job {} was taken over by a later attempt; its result is not written",
            ticket.claim.attempt, ticket.claim.job_id
        );
        return Ok(EXIT_SUPERSEDED);
    }
    JobResult::new(&ticket.hash, ticket.claim.clone(), outcome).write(&artifact_dir)?;
    Ok(code)
}

/// Exit status of a job process whose attempt was taken over before it finished.
const EXIT_SUPERSEDED: i32 = 75;

/// Has a later attempt of the same job written its ticket into the folder?
fn superseded(ticket_path: &Path, mine: &Ticket) -> bool {
    Ticket::read(ticket_path).is_ok_and(|now| {
        now.claim.store == mine.claim.store
            && now.claim.job_id == mine.claim.job_id
            && now.claim.attempt > mine.claim.attempt
    })
}

/// A panic (how tch reports a failed libtorch call: out of GPU memory, a kernel missing for a
/// dtype) ends with an `error: ` line, which the scheduler records as the failure's reason.
fn install_panic_report() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        let text = crate::torch_error::payload_text(info.payload());
        eprintln!("error: {}", crate::torch_error::summary(&text));
    }));
}

fn install_signal_handlers() {
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
}

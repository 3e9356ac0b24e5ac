//! A job process that trains nothing: it speaks the job protocol (`sweep_core::protocol`) as
//! `sweep worker` does, but its numbers are analytic learning curves with seeded per-image
//! noise (see `curve`), computed in microseconds. Adaptive search, early stopping, pauses,
//! resumes and retries can so be tested end to end in seconds, with results that depend
//! only on the config, the seed and the iteration.
//!
//! Usage (as the scheduler starts workers): `sweep-toy-worker worker TICKET`; the ticket's
//! folder is the job's artifact folder.
//!
//! Environment (tests only; job configs never steer the toy, so its jobs keep the hashes
//! real jobs would have):
//! - `SWEEP_TOY_ITER_MS`: milliseconds slept per iteration (default 0), so a test can stop
//!   or kill it mid-run;
//! - `SWEEP_TOY_FAIL_LR_ABOVE=x`: a config with lr > x is rejected (exit 65);
//! - `SWEEP_TOY_CRASH_AT=k`: abort at iteration k, on the first attempt only (a marker file
//!   in the artifact folder remembers the crash), so that a retry succeeds;
//! - `SWEEP_TOY_FAULTS`: failures by job (seed, label), iteration and attempt, each the way
//!   the real one reaches the scheduler, e.g. `seed=1:abort@4; seed=2:exit@6/1` (see `fault`).
//!
//! The tests set these on the `sweep run` / `sweep agent` process (with the hidden
//! `--worker-exe` naming this program); the job processes inherit its environment.

mod curve;
mod fault;
mod job;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use sweep_core::job::JobConfig;
use sweep_core::protocol::{Event, JobResult, Outcome, Ticket, EXIT_REJECTED};

/// What the environment asks of the toy (see the module documentation).
pub struct ToyEnv {
    pub iter_ms: u64,
    pub fail_lr_above: Option<f64>,
    pub crash_at: Option<usize>,
    pub faults: fault::Faults,
}

impl ToyEnv {
    fn read() -> anyhow::Result<ToyEnv> {
        Ok(ToyEnv {
            iter_ms: var("SWEEP_TOY_ITER_MS")?.unwrap_or(0),
            fail_lr_above: var("SWEEP_TOY_FAIL_LR_ABOVE")?,
            crash_at: var("SWEEP_TOY_CRASH_AT")?,
            faults: var("SWEEP_TOY_FAULTS")?.unwrap_or_default(),
        })
    }
}

/// An environment variable's value; unset or empty is None, unparsable an error (a typo in a
/// test's setup should fail loudly, not run the happy path).
fn var<T: FromStr>(name: &str) -> anyhow::Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    let Some(text) = std::env::var_os(name) else {
        return Ok(None);
    };
    let text = text.to_string_lossy();
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|e| anyhow::anyhow!("{name}={text:?}: {e}"))
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// True once SIGTERM / SIGINT arrived or stdout closed: checkpoint and stop.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Prints one event as a JSON line, as the trainer does.
pub fn emit(event: &Event) {
    let line = serde_json::to_string(event).expect("events serialise");
    let mut out = std::io::stdout().lock();
    // A closed pipe means the orchestrator is gone; running on is pointless.
    if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
        STOP.store(true, Ordering::SeqCst);
    }
}

/// As `sweep worker`: stop on SIGTERM / SIGINT, die with the orchestrator.
fn install_signal_handlers() {
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

fn main() {
    let code = match run_ticket() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

/// Runs the ticket's attempt; returns the exit status (0, or [`EXIT_REJECTED`]).
fn run_ticket() -> anyhow::Result<i32> {
    install_signal_handlers();
    fault::install_panic_report();
    let ticket_path = std::env::args_os()
        .nth(2)
        .map(PathBuf::from)
        .ok_or_else(|| anyhow::anyhow!("usage: sweep-toy-worker worker TICKET"))?;
    let env = ToyEnv::read()?;
    let ticket = Ticket::read(&ticket_path)?;
    let dir = ticket_path.parent().unwrap_or(Path::new(".")).to_path_buf();
    // Done before for this claim's job (the orchestrator died before recording it): as
    // `sweep worker`, report it again rather than rerun.
    if JobResult::read(&dir).is_some_and(|r| {
        r.is_for_job(&ticket.hash, &ticket.claim) && r.is_result_for(ticket.pause_at)
    }) {
        return Ok(0);
    }
    let (outcome, code) = match rejection(ticket.train_config()?, &env) {
        Some(reason) => {
            eprintln!("error: {reason}");
            (Outcome::Rejected { reason }, EXIT_REJECTED)
        }
        None => (job::run(&ticket, &dir, &env)?, 0),
    };
    JobResult::new(&ticket.hash, ticket.claim.clone(), outcome).write(&dir)?;
    Ok(code)
}

/// Why the job cannot run: an invalid config (as the trainer rejects it) or, on request, an
/// lr the toy refuses.
fn rejection(cfg: &JobConfig, env: &ToyEnv) -> Option<String> {
    if let Err(e) = cfg.validate() {
        return Some(e.to_string());
    }
    match env.fail_lr_above {
        Some(max) if cfg.optimizer.lr() > max => Some("lr too high for the toy".into()),
        _ => None,
    }
}

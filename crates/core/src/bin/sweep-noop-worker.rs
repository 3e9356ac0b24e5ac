//! A job process that trains nothing and loads no libtorch, for `sweep bench orchestrator`:
//! it speaks the job protocol (`sweep_core::protocol`) as `sweep worker` does, at once (no
//! curves, no sleeps), so the benchmark measures the scheduler, the queue and the agents
//! rather than libtorch's load time. (The tests use `sweep-toy-worker`.)
//!
//! Usage (as the scheduler starts workers): `sweep-noop-worker worker TICKET`.

use std::io::Write;
use sweep_core::protocol::{Event, JobResult, Outcome, Ticket};

fn main() -> anyhow::Result<()> {
    let ticket_path = std::env::args_os()
        .nth(2)
        .ok_or_else(|| anyhow::anyhow!("usage: sweep-noop-worker worker TICKET"))?;
    let ticket_path = std::path::PathBuf::from(ticket_path);
    let ticket = Ticket::read(&ticket_path)?;
    let dir = ticket_path.parent().unwrap_or(std::path::Path::new("."));
    let iters = ticket.train_config()?.iters;
    let mut out = std::io::stdout().lock();
    let mut emit = |e: &Event| -> anyhow::Result<()> {
        writeln!(out, "{}", serde_json::to_string(e)?)?;
        Ok(())
    };
    emit(&Event::Started {
        iters,
        resumed_from: 0,
    })?;
    for iter in 1..=iters {
        emit(&Event::Iter {
            iter,
            loss: 1.0 / (1.0 + iter as f64),
            lr: 0.01,
            secs: 0.0,
            data_wait_secs: 0.0,
        })?;
    }
    let outcome = Outcome::Completed {
        iterations: iters,
        metrics: Vec::new(),
        images: Vec::new(),
        data: None,
    };
    JobResult::new(&ticket.hash, ticket.claim.clone(), outcome).write(dir)?;
    Ok(())
}

//! Results database: sweeps, jobs (the work queue), metrics, loss curves, artifacts.
//!
//! SQLite through sqlx ([`Store`], in `sqlite.rs`). The jobs table is also the scheduler's
//! queue: [`Store::claim_next`] hands each runnable job to exactly one owner, even across
//! processes sharing the file. Schema: `migrations/` at the crate root, applied on open.
//!
//! # Ownership and liveness
//!
//! A running job carries its owner, the orchestrator process that claimed it, as
//! `host:pid:nonce` ([`Owner`]). Every write about a running job (heartbeat, finish,
//! interrupt) names the owner and is ignored or refused when the job is no longer
//! that owner's, so a process presumed dead cannot overwrite its successor's work.
//!
//! Whether an owner is gone is decided by [`owner_is_gone`]: on the same host the
//! process is checked directly (pid alive and, on Linux, the same process start time
//! that the nonce records, so a reused pid does not pass); on another host only the
//! heartbeat can tell, so the owner is gone once its heartbeat is older than
//! `stale_after`. [`Store::release_dead_owners`] applies that rule;
//! [`Store::release_orphans`] takes any rule the caller prefers.

mod existing;
mod sqlite;

pub use sqlite::Store;

use crate::trainer::MetricValue;
use serde::Serialize;
use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// The job statuses, as stored.
pub const STATUSES: &[&str] = &[
    "pending",
    "running",
    "succeeded",
    "failed",
    "diverged",
    "interrupted",
];

/// Artifact kinds, as stored.
pub const ARTIFACT_KINDS: &[&str] = &["checkpoint", "prediction", "final"];

/// Typed store errors (wrapped in `anyhow::Error`; downcast to inspect).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "results database {path} has schema version(s) {unknown:?} that this sweep binary does not know \
         (it knows up to {known_max}); it was written by a newer sweep: use that version, or another database file"
    )]
    NewerSchema {
        path: PathBuf,
        unknown: Vec<i64>,
        known_max: i64,
    },
    #[error("job {job_id} is no longer owned by {owner} (released or claimed by another process); its result was not recorded")]
    NotOwner { job_id: i64, owner: String },
    #[error("no sweep named {name:?} in the results database (known: {known})")]
    NoSuchSweep { name: String, known: String },
}

/// The orchestrator process that owns running jobs. Displays as `host:pid:nonce`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub host: String,
    pub pid: u32,
    /// `<start time in clock ticks since boot>-<random hex>` from [`Owner::current`]:
    /// the start time tells a reused pid apart, the random part makes it unique anyway.
    pub nonce: String,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.host, self.pid, self.nonce)
    }
}

impl Owner {
    /// This process (the same value for the whole process lifetime).
    pub fn current() -> Owner {
        static CURRENT: OnceLock<Owner> = OnceLock::new();
        CURRENT
            .get_or_init(|| {
                let pid = std::process::id();
                let start = process_start_ticks(pid)
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "0".into());
                Owner {
                    host: local_hostname(),
                    pid,
                    nonce: format!("{start}-{:08x}", rand::random::<u32>()),
                }
            })
            .clone()
    }

    /// Parses `host:pid:nonce` (the host may itself contain `:`; pid and nonce may not).
    pub fn parse(s: &str) -> Option<Owner> {
        let mut parts = s.rsplitn(3, ':');
        let nonce = parts.next()?;
        let pid = parts.next()?.parse().ok()?;
        let host = parts.next()?;
        if host.is_empty() {
            return None;
        }
        Some(Owner {
            host: host.to_string(),
            pid,
            nonce: nonce.to_string(),
        })
    }
}

/// Is the owner of a running job gone? `heartbeat_age`: time since its last heartbeat.
///
/// Same host: gone iff the process no longer exists, or the pid now belongs to a process
/// started at another time than the nonce records (Linux). The heartbeat is not consulted:
/// a live orchestrator keeps its jobs even if it is slow to beat.
/// Other host (or an unparsable owner): gone iff `heartbeat_age > stale_after`.
pub fn owner_is_gone(owner: &str, stale_after: Duration, heartbeat_age: Duration) -> bool {
    match Owner::parse(owner) {
        Some(o) if o.host == local_hostname() => !process_matches(o.pid, &o.nonce),
        _ => heartbeat_age > stale_after,
    }
}

fn process_matches(pid: u32, nonce: &str) -> bool {
    let Ok(pid_t) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid_t <= 0 {
        return false;
    }
    // Signal 0 checks existence; EPERM means it exists but belongs to another user.
    let rc = unsafe { libc::kill(pid_t, 0) };
    if rc != 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EPERM) {
        return false;
    }
    let recorded = nonce.split('-').next().and_then(|s| s.parse::<u64>().ok());
    match (recorded, process_start_ticks(pid)) {
        (Some(r), Some(actual)) if r != 0 => r == actual,
        // No /proc (not Linux) or no start time recorded: the pid check is all we have.
        _ => true,
    }
}

/// Field 22 of `/proc/<pid>/stat`: the process start time in clock ticks since boot.
fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is parenthesised and may contain spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// This machine's host name (`localhost` if it cannot be read).
pub fn local_hostname() -> String {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let mut buf = [0u8; 256];
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc != 0 {
            return "localhost".into();
        }
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let name = String::from_utf8_lossy(&buf[..end]).replace(':', "_");
        if name.is_empty() {
            "localhost".into()
        } else {
            name
        }
    })
    .clone()
}

/// A job to enqueue.
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    pub hash: String,
    /// Stage name (multi-stage sweeps), e.g. `pretrain`.
    pub stage: Option<String>,
    pub label: String,
    /// Canonical JSON of the job's `JobConfig`.
    pub config_json: String,
    pub seed: u64,
    /// Hash of the job (same sweep) that must succeed first; its final checkpoint initialises this one.
    pub depends_on: Option<String>,
}

/// A job handed to one owner by [`Store::claim_next`].
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimedJob {
    pub id: i64,
    pub hash: String,
    pub label: String,
    pub config_json: String,
    /// 1-based number of this attempt (counted on claim: interrupted runs count too).
    pub attempts: u32,
    /// Failed attempts before this one; a job is retried while `failures < max_attempts`.
    pub failures: u32,
    pub max_attempts: u32,
    /// Set by an earlier attempt: resume from the checkpoints there.
    pub artifact_dir: Option<String>,
    /// `depends_on`: look up its folder with [`Store::dependency_artifact`].
    pub init_from_hash: Option<String>,
}

/// How a job ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Finish {
    Succeeded {
        metrics: Vec<MetricValue>,
        iterations: usize,
    },
    /// Terminal: a diverged run is deterministic, retrying would diverge again.
    Diverged {
        iter: usize,
        last_finite_loss: Option<f64>,
    },
    /// Back to `pending` while `attempts < max_attempts`, else terminal `failed`.
    Failed { reason: String, stderr_tail: String },
    /// Stopped on purpose (Ctrl-C, shutdown): resumable.
    Interrupted,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweepRow {
    pub id: i64,
    pub name: String,
    pub spec_path: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    pub jobs: usize,
    pub succeeded: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunningJob {
    pub id: i64,
    pub label: String,
    pub attempts: u32,
    pub iteration: usize,
    pub total_iters: Option<usize>,
    /// Unix milliseconds.
    pub started_at: Option<i64>,
    pub heartbeat_at: Option<i64>,
    pub owner: Option<String>,
}

/// A pending job that can never run: its dependency failed, diverged or is missing.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BlockedJob {
    pub id: i64,
    pub label: String,
    pub depends_on: String,
    /// The dependency's status, `None` if no job of the sweep has that hash.
    pub dependency_status: Option<String>,
}

/// One job with its results, for reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobRow {
    pub sweep: String,
    pub job_id: i64,
    pub hash: String,
    pub stage: Option<String>,
    pub label: String,
    pub status: String,
    pub attempts: u32,
    pub seed: u64,
    pub config_json: String,
    /// Every stored number: all splits, means and per class. NaN was stored as NULL and reads back as NaN.
    pub metrics: Vec<MetricValue>,
    pub artifact_dir: Option<String>,
    pub error: Option<String>,
    pub iteration: usize,
    pub total_iters: Option<usize>,
    /// Unix milliseconds.
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// No longer produced by the sweep file (see `Store::retire_others`).
    pub retired: bool,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_round_trips_through_display() {
        let o = Owner {
            host: "gpu-01".into(),
            pid: 4242,
            nonce: "123-abcd".into(),
        };
        assert_eq!(o.to_string(), "gpu-01:4242:123-abcd");
        assert_eq!(Owner::parse(&o.to_string()), Some(o));
        assert_eq!(Owner::parse("no-pid"), None);
        assert_eq!(Owner::parse("h:notanumber:n"), None);
    }

    #[test]
    fn current_process_is_alive_and_a_dead_pid_is_gone() {
        let me = Owner::current();
        let long = Duration::from_secs(3600);
        assert!(!owner_is_gone(&me.to_string(), Duration::ZERO, long));
        // Same pid, other start time: a reused pid is not the owner.
        let reused = Owner {
            nonce: "1-0".into(),
            ..me.clone()
        };
        if process_start_ticks(me.pid).is_some() {
            assert!(owner_is_gone(&reused.to_string(), long, Duration::ZERO));
        }
        // A child that has exited and been reaped no longer exists.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = Owner {
            pid,
            nonce: "0-0".into(),
            ..me.clone()
        };
        assert!(owner_is_gone(&dead.to_string(), long, Duration::ZERO));
    }

    #[test]
    fn other_host_is_judged_by_heartbeat() {
        let o = "elsewhere-host-that-is-not-this-one:1:0-0";
        assert!(!owner_is_gone(
            o,
            Duration::from_secs(60),
            Duration::from_secs(59)
        ));
        assert!(owner_is_gone(
            o,
            Duration::from_secs(60),
            Duration::from_secs(61)
        ));
    }
}

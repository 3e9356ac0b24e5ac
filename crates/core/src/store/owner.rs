//! Who owns a running job ([`Owner`]) and whether that owner is gone ([`owner_is_gone`]).
//!
//! A running job carries its owner, the orchestrator process that claimed it, as
//! `host:pid:nonce`. Every write about a running job (heartbeat, finish, interrupt) names
//! the owner and is ignored or refused when the job is no longer that owner's, so a process
//! presumed dead cannot overwrite its successor's work.
//!
//! The lease decides: a job whose lease expired (by the database's clock, so node clocks
//! need not agree) is taken back by any agent. On the same host the process is also checked
//! directly (pid alive and, on Linux, the same process start time that the nonce records, so
//! a reused pid does not pass): a killed orchestrator's jobs come back at once, without
//! waiting for the lease.
//!
//! The host is the node name: `hostname`, or `SWEEP_NODE` when set (containers that share a
//! host name, tests that play several nodes on one machine).

use std::fmt;
use std::sync::OnceLock;

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

/// Is the owner of a running job gone? Its lease expired, or it is on this host and the
/// process no longer exists (or the pid now belongs to a process started at another time
/// than the nonce records, on Linux).
pub fn owner_is_gone(owner: &str, lease_expired: bool) -> bool {
    if lease_expired {
        return true;
    }
    match Owner::parse(owner) {
        Some(o) if o.host == local_hostname() => !process_matches(o.pid, &o.nonce),
        _ => false,
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

/// Overrides the node name recorded in owners (default: the host name).
pub const NODE_ENV: &str = "SWEEP_NODE";

/// This node's name: `SWEEP_NODE`, else the host name (`localhost` if it cannot be read).
pub fn local_hostname() -> String {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        if let Some(node) = std::env::var(NODE_ENV)
            .ok()
            .filter(|n| !n.trim().is_empty())
        {
            return node.trim().replace(':', "_");
        }
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
        assert!(!owner_is_gone(&me.to_string(), false));
        // A live owner whose lease expired (stalled, stopped) is gone all the same.
        assert!(owner_is_gone(&me.to_string(), true));
        // Same pid, other start time: a reused pid is not the owner.
        let reused = Owner {
            nonce: "1-0".into(),
            ..me.clone()
        };
        if process_start_ticks(me.pid).is_some() {
            assert!(owner_is_gone(&reused.to_string(), false));
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
        assert!(owner_is_gone(&dead.to_string(), false));
    }

    #[test]
    fn other_host_is_judged_by_its_lease() {
        let o = "elsewhere-host-that-is-not-this-one:1:0-0";
        assert!(!owner_is_gone(o, false));
        assert!(owner_is_gone(o, true));
    }
}

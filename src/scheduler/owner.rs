//! Who owns a running job, and whether that owner is still alive.
//!
//! An owner is `host:pid:start`, where `start` is the process start time read from
//! `/proc/<pid>/stat`. A pid alone is not enough: after a crash the pid can be reused
//! by an unrelated process, and the job would stay "running" forever (the classic
//! stuck-trial bug of sweep tools). With the start time a reused pid is told apart.

use crate::store::Owner;

/// The owner identity of this orchestrator process.
pub fn current() -> Owner {
    let pid = std::process::id();
    Owner { host: hostname(), pid, nonce: process_start(pid).unwrap_or_else(|| "0".into()) }
}

/// True when `owner` (as stored, `host:pid:start`) is certainly gone.
///
/// Owners on other hosts are never declared gone here: SQLite sweeps are single-host,
/// and a shared (Postgres) store would decide by heartbeat age instead.
pub fn is_gone(owner: &str) -> bool {
    let mut parts = owner.rsplitn(3, ':');
    let (Some(start), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next()) else {
        return true; // unparseable owner: nobody can ever finish that job but us
    };
    if host != hostname() {
        return false;
    }
    let Ok(pid) = pid.parse::<u32>() else { return true };
    match process_start(pid) {
        Some(actual) => actual != start,
        None => true,
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Start time of `pid` in clock ticks since boot (field 22 of /proc/pid/stat); None if no
/// such process. Zombies count as gone: they will never record anything again.
fn process_start(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19).map(|s| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive() {
        assert!(!is_gone(&current().to_string()));
    }

    #[test]
    fn a_reused_pid_with_another_start_time_is_gone() {
        let me = current();
        assert!(is_gone(&format!("{}:{}:{}", me.host, me.pid, "1")));
    }

    #[test]
    fn a_dead_pid_is_gone_and_garbage_too() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(is_gone(&format!("{}:{pid}:123", hostname())));
        assert!(is_gone("garbage"));
    }

    #[test]
    fn other_hosts_are_not_judged_here() {
        assert!(!is_gone("some-other-host-xyz:1:1"));
    }
}

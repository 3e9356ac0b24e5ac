//! A job's state in the queue ([`JobStatus`], as Optuna's `TrialState`) and the one rule
//! that decides whether a failed attempt is tried again ([`RetryRule`]). The store, the
//! progress bar and the run summary all ask these, so they cannot disagree.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for a slot (or for the stage it starts from).
    Pending,
    /// Claimed by an orchestrator; its job process trains.
    Running,
    Succeeded,
    /// Every allowed attempt failed, or one failed in a way no retry can fix.
    Failed,
    /// The loss became NaN or infinite: deterministic, not retried.
    Diverged,
    /// Stopped on purpose (Ctrl-C, an orchestrator gone): resumes from its checkpoint.
    Interrupted,
    /// Adaptive search: reached its rung, evaluated and checkpointed; waits for the stopping
    /// rule to promote it (back to pending, to the next rung) or to stop it.
    Paused,
    /// Adaptive search: the stopping rule ended the trial at a rung. Terminal, but its
    /// checkpoint is kept: a later decision (more trials or budget) may continue it.
    Stopped,
}

impl JobStatus {
    pub const ALL: [JobStatus; 8] = [
        JobStatus::Pending,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Diverged,
        JobStatus::Interrupted,
        JobStatus::Paused,
        JobStatus::Stopped,
    ];

    /// The job will not run again: it has its final result (or its final failure).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Diverged | JobStatus::Stopped
        )
    }

    /// A slot may claim it (dependencies permitting).
    pub fn is_claimable(self) -> bool {
        matches!(self, JobStatus::Pending | JobStatus::Interrupted)
    }

    /// As stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Diverged => "diverged",
            JobStatus::Interrupted => "interrupted",
            JobStatus::Paused => "paused",
            JobStatus::Stopped => "stopped",
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown job status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for JobStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

/// Whether a failure is worth another attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// A crash, a signal, an exit without a result: another attempt may succeed.
    Transient,
    /// Bad configuration or input: every attempt would fail the same way.
    Permanent,
}

/// The retry rule: a job gets up to `max_attempts` failed attempts; a permanent failure
/// ends it at once. Interrupted attempts are not failures and never count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryRule {
    pub max_attempts: u32,
}

impl RetryRule {
    /// After a failed attempt that makes `failures` failures in all: try again?
    pub fn retries(self, failures: u32, kind: FailureKind) -> bool {
        kind == FailureKind::Transient && failures < self.max_attempts
    }

    /// The status a job takes after a failed attempt that makes `failures` failures.
    pub fn status_after_failure(self, failures: u32, kind: FailureKind) -> JobStatus {
        if self.retries(failures, kind) {
            JobStatus::Pending
        } else {
            JobStatus::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_finished_ones_are_terminal() {
        for s in JobStatus::ALL {
            assert_eq!(s.as_str().parse::<JobStatus>().unwrap(), s);
            assert!(!(s.is_finished() && s.is_claimable()), "{s}");
        }
        assert!("done".parse::<JobStatus>().is_err());
        let finished: Vec<_> = JobStatus::ALL
            .into_iter()
            .filter(|s| s.is_finished())
            .collect();
        assert_eq!(
            finished,
            [
                JobStatus::Succeeded,
                JobStatus::Failed,
                JobStatus::Diverged,
                JobStatus::Stopped
            ]
        );
    }

    #[test]
    fn transient_failures_retry_until_max_attempts_permanent_never() {
        let rule = RetryRule { max_attempts: 3 };
        assert!(rule.retries(1, FailureKind::Transient));
        assert!(rule.retries(2, FailureKind::Transient));
        assert!(!rule.retries(3, FailureKind::Transient));
        assert!(!rule.retries(1, FailureKind::Permanent));
        assert_eq!(
            rule.status_after_failure(1, FailureKind::Permanent),
            JobStatus::Failed
        );
        assert_eq!(
            RetryRule { max_attempts: 1 }.status_after_failure(1, FailureKind::Transient),
            JobStatus::Failed
        );
    }
}

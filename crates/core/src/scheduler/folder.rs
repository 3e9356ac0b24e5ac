//! A job's artifact folder, `<runs>/<sweep>/<hash>`, and who its files belong to.
//!
//! Results belong to the claim that produced them. Before an attempt starts, the folder's
//! last ticket says which database and job its files were written for. Files of this job in
//! this database are kept (a checkpoint to resume from, a result whose record was lost when
//! the orchestrator died). Anything else (a deleted and recreated database, another database
//! given the same `--runs`, a sweep before 0.2) is moved into `stale/<time>/` with a log
//! line, and the job trains from scratch; `--adopt` takes such files as this job's instead.

use crate::protocol::{
    Claim, JobResult, Ticket, CHECKPOINT_FILE, FINAL_CHECKPOINT, RESULT_FILE, STALE_DIR,
    TICKET_FILE,
};
use crate::store::now_ms;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Where one job's files live: `<runs>/<sweep>/<hash>`.
pub fn artifact_dir(runs: &Path, sweep: &str, hash: &str) -> PathBuf {
    runs.join(sweep).join(hash)
}

/// What [`claim_folder`] found in the folder.
#[derive(Debug, PartialEq, Eq)]
pub enum FolderState {
    /// Nothing there, or only this job's own files.
    Ours,
    /// Another database's (or an unknown) files, moved to this folder.
    MovedAside(PathBuf),
    /// Another database's files, kept and taken as this job's (`--adopt`).
    Adopted,
}

/// Files a job process writes that a later attempt would read.
const JOB_FILES: &[&str] = &[RESULT_FILE, CHECKPOINT_FILE, FINAL_CHECKPOINT, TICKET_FILE];

/// Makes `dir` safe for `claim`'s attempt (see the module doc).
pub fn claim_folder(dir: &Path, hash: &str, claim: &Claim, adopt: bool) -> Result<FolderState> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let present: Vec<&str> = JOB_FILES
        .iter()
        .copied()
        .filter(|f| dir.join(f).exists())
        .collect();
    if present.is_empty() || written_for(dir, hash, claim) {
        return Ok(FolderState::Ours);
    }
    if adopt {
        // The result becomes this claim's, so the job process and the record both take it.
        if let Some(mut result) = JobResult::read(dir).filter(|r| r.hash == hash) {
            result.claim = Some(claim.clone());
            result
                .write(dir)
                .with_context(|| format!("adopting {}", dir.join(RESULT_FILE).display()))?;
        }
        return Ok(FolderState::Adopted);
    }
    let aside = dir.join(STALE_DIR).join(now_ms().to_string());
    std::fs::create_dir_all(&aside).with_context(|| format!("creating {}", aside.display()))?;
    for f in present {
        std::fs::rename(dir.join(f), aside.join(f)).with_context(|| {
            format!("moving {} into {}", dir.join(f).display(), aside.display())
        })?;
    }
    Ok(FolderState::MovedAside(aside))
}

/// Were the folder's files written for this job of this database? The ticket says whom the
/// last attempt worked for; a result file says whom it was produced for.
fn written_for(dir: &Path, hash: &str, claim: &Claim) -> bool {
    let same_job = |c: &Claim| c.store == claim.store && c.job_id == claim.job_id;
    let ticket_ok = match Ticket::read(&dir.join(TICKET_FILE)) {
        Ok(t) => t.hash == hash && same_job(&t.claim),
        Err(_) => false,
    };
    let result_ok = match dir.join(RESULT_FILE).exists() {
        true => JobResult::read(dir).is_some_and(|r| r.is_for_job(hash, claim)),
        false => true,
    };
    ticket_ok && result_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Outcome;

    fn claim(store: &str) -> Claim {
        Claim {
            store: store.into(),
            job_id: 1,
            attempt: 1,
        }
    }

    #[test]
    fn another_databases_result_is_moved_aside_and_ours_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let job = dir.path().join("job");
        std::fs::create_dir_all(&job).unwrap();
        JobResult::new("h", claim("old-db"), Outcome::Interrupted { iter: 1 })
            .write(&job)
            .unwrap();
        assert_eq!(
            claim_folder(&job, "h", &claim("new-db"), true).unwrap(),
            FolderState::Adopted
        );
        let FolderState::MovedAside(aside) =
            claim_folder(&job, "h", &claim("new-db"), false).unwrap()
        else {
            panic!("expected the old result to be moved aside");
        };
        assert!(aside.join(RESULT_FILE).exists());
        assert!(!job.join(RESULT_FILE).exists());
        // A ticket and a result written for the new database stay.
        let ticket = Ticket {
            claim: claim("new-db"),
            hash: "h".into(),
            label: "l".into(),
            config: serde_json::from_str("{}").unwrap(),
            device: crate::protocol::DeviceChoice::Cpu,
            init_checkpoint: None,
            pause_at: None,
            continue_from: None,
            keep_state: false,
        };
        ticket.write(&job).unwrap();
        JobResult::new("h", claim("new-db"), Outcome::Interrupted { iter: 1 })
            .write(&job)
            .unwrap();
        assert_eq!(
            claim_folder(&job, "h", &claim("new-db"), false).unwrap(),
            FolderState::Ours
        );
        assert!(job.join(RESULT_FILE).exists());
    }
}

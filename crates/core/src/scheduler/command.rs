//! How a command job's program is started: its command line, and the environment that
//! hands it its parameters, seed, fold, folders and the Python helper.

use super::child::ProgramLaunch;
use crate::job::CommandJob;
use crate::protocol::{replace_file, Claim};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The parameters file the program may read instead of its arguments.
pub const PARAMS_FILE: &str = "params.json";
/// The folder a program keeps its checkpoints in: the same for every attempt, so that a
/// restarted program finds the checkpoint its killed attempt wrote.
pub const CHECKPOINT_DIR: &str = "checkpoints";

/// The helper shipped with sweep, put on `PYTHONPATH` so that `import sweep_job` works.
const PYTHON_HELPER: &str = include_str!("../../../../python/sweep_job.py");

/// Writes the parameters file and creates the checkpoint folder; returns what to start.
pub fn launch(
    job: &CommandJob,
    dir: &Path,
    ticket: &Path,
    claim: &Claim,
    hash: &str,
    pause_at: Option<usize>,
) -> Result<ProgramLaunch> {
    let checkpoints = dir.join(CHECKPOINT_DIR);
    std::fs::create_dir_all(&checkpoints)
        .with_context(|| format!("creating {}", checkpoints.display()))?;
    let params_file = dir.join(PARAMS_FILE);
    let fold = job.fold();
    let params = serde_json::json!({
        "params": job.params,
        "seed": job.seed(),
        "fold": fold.map(|(k, _)| k),
        "folds": fold.map(|(_, n)| n),
        "job": hash,
        "attempt": claim.attempt,
        "artifact_dir": dir,
        "checkpoint_dir": checkpoints,
    });
    // Written for each attempt before its program starts: no fsync (a file lost in a power
    // cut is written again by the next attempt), which would cost a millisecond a job.
    let json = serde_json::to_vec_pretty(&params)?;
    std::fs::write(&params_file, json)
        .with_context(|| format!("writing {}", params_file.display()))?;

    let path = |p: &Path| p.display().to_string();
    let mut env = vec![
        ("SWEEP_PARAMS_FILE".to_string(), path(&params_file)),
        ("SWEEP_TICKET".into(), path(ticket)),
        ("SWEEP_ARTIFACT_DIR".into(), path(dir)),
        ("SWEEP_CHECKPOINT_DIR".into(), path(&checkpoints)),
        ("SWEEP_SEED".into(), job.seed().to_string()),
        ("SWEEP_JOB".into(), hash.to_string()),
        ("SWEEP_ATTEMPT".into(), claim.attempt.to_string()),
        // Python buffers a pipe's output: the curve would arrive at the end.
        ("PYTHONUNBUFFERED".into(), "1".into()),
    ];
    // A stopping rule's rung: train to it, checkpoint, report its metrics and exit 0.
    if let Some(p) = pause_at {
        env.push(("SWEEP_PAUSE_AT".into(), p.to_string()));
    }
    if let Some((k, n)) = fold {
        env.push(("SWEEP_FOLD".into(), k.to_string()));
        env.push(("SWEEP_FOLDS".into(), n.to_string()));
    }
    if let Some(helper) = python_helper_dir() {
        let joined = match std::env::var_os("PYTHONPATH") {
            Some(old) if !old.is_empty() => {
                format!("{}:{}", helper.display(), old.to_string_lossy())
            }
            _ => helper.display().to_string(),
        };
        env.push(("PYTHONPATH".into(), joined));
    }
    env.extend(job.param_env());
    Ok(ProgramLaunch {
        argv: job.argv(),
        env,
        workdir: job.workdir.clone(),
    })
}

/// A folder holding this build's `sweep_job.py`, written once per process (None if the
/// temporary folder is not writable: the program may ship its own copy).
fn python_helper_dir() -> Option<PathBuf> {
    static DIR: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let digest = <sha2::Sha256 as sha2::Digest>::digest(PYTHON_HELPER);
        let dir = std::env::temp_dir().join(format!("sweep-python-{}", hex::encode(&digest[..6])));
        let file = dir.join("sweep_job.py");
        if std::fs::read_to_string(&file).ok().as_deref() != Some(PYTHON_HELPER) {
            std::fs::create_dir_all(&dir).ok()?;
            replace_file(&file, |w| w.write_all(PYTHON_HELPER.as_bytes())).ok()?;
        }
        Some(dir)
    })
    .clone()
}

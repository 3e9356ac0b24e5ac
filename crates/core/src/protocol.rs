//! What the orchestrator and the job process share: the ticket a job process starts from,
//! the events it prints, the result file it leaves, the names of the files and environment
//! variables both sides use, and the one atomic write both sides write with.
//!
//! The protocol is deliberately dumb and durable:
//! - the scheduler writes a [`Ticket`] (JSON) into the job's artifact folder;
//! - the job process prints one JSON [`Event`] per line on stdout while it trains;
//! - it writes its [`JobResult`] atomically to [`RESULT_FILE`] and exits. The scheduler
//!   trusts that file, not the exit code alone, so a result survives an orchestrator that
//!   died between the job's exit and its record. A result belongs to the claim that
//!   produced it ([`Claim`]): a file some other database (or an older attempt) left in the
//!   folder is never taken for this attempt's work.

pub use crate::metrics::{ImageMetric, MetricValue};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The job's ticket, written by the scheduler before each attempt.
pub const TICKET_FILE: &str = "ticket.json";
/// The job process's result ([`JobResult`]).
pub const RESULT_FILE: &str = "result.json";
/// The rolling checkpoint a job resumes from.
pub const CHECKPOINT_FILE: &str = "checkpoint.ckpt";
/// The final checkpoint a finished job leaves for the stages that start from it.
pub const FINAL_CHECKPOINT: &str = "final.ckpt";
/// What `init` loaded, skipped and missed.
pub const INIT_REPORT_FILE: &str = "init_report.json";
/// The job process's stderr, every attempt appended.
pub const WORKER_LOG: &str = "worker.log";
/// Files an earlier claim left behind are moved into this subfolder, not deleted.
pub const STALE_DIR: &str = "stale";
/// Environment: libtorch's CPU threads for the job process (its share of the cores).
pub const THREADS_ENV: &str = "SWEEP_TORCH_THREADS";
/// Exit status of a job process that refused its job (bad config or input): not retried.
pub const EXIT_REJECTED: i32 = 65;

static BUILD_COMMIT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Records the git commit the binary was built from (its `main` calls this once; the
/// commit is the binary's to know, so a commit does not rebuild the libraries).
pub fn set_build_commit(commit: &str) {
    let _ = BUILD_COMMIT.set(commit.to_string());
}

/// This build of sweep, recorded with every result: the version and, when built from a git
/// checkout, its HEAD commit (`0.2.0+1a2b3c4d`).
pub fn sweep_version() -> String {
    match BUILD_COMMIT.get() {
        Some(c) if !c.is_empty() => format!("{}+{c}", env!("CARGO_PKG_VERSION")),
        _ => env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// Where a job's tensors live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceChoice {
    Cpu,
    Cuda(usize),
}

/// Which claim of which database an attempt works for: the fencing token of a result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The database's own random identity (`Store::identity`), not its path: a copied or
    /// recreated file is another database.
    pub store: String,
    pub job_id: i64,
    /// 1-based attempt number this claim handed out.
    pub attempt: u32,
}

/// Everything a job process needs to run one job attempt.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ticket {
    pub claim: Claim,
    pub hash: String,
    pub label: String,
    /// The job: the built-in trainer's config (what `sweep worker` runs), or a command job's
    /// program and parameters (the scheduler starts that program itself).
    pub config: crate::job::JobSpec,
    pub device: DeviceChoice,
    pub init_checkpoint: Option<PathBuf>,
    /// Adaptive search: stop at this iteration (a rung of the fidelity, below the job's
    /// `iters`), evaluate, checkpoint and end with [`Outcome::Paused`]. The scheduler continues
    /// the job later from that checkpoint if the stopping rule promotes it. Not part of the
    /// job's identity: a paused job is the same job, stopped part-way on purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_at: Option<usize>,
    /// A shared prefix: the final checkpoint (with optimiser state) of the shorter job of
    /// the same training that this job continues, when the job has no checkpoint of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_from: Option<PathBuf>,
    /// A longer job continues this one: keep the optimiser state in the final checkpoint.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_state: bool,
}

impl Ticket {
    /// Written whole, but without a folder fsync (a millisecond per job): the ticket says
    /// whom the folder's checkpoints and result belong to, and each of those is written with
    /// [`write_atomic`] into the same folder, whose fsync makes the ticket's rename last too.
    /// A power cut before that loses only a ticket that nothing yet depends on.
    pub fn write(&self, dir: &Path) -> io::Result<PathBuf> {
        let path = dir.join(TICKET_FILE);
        let json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        replace_file(&path, |w| w.write_all(&json))?;
        Ok(path)
    }

    pub fn read(path: &Path) -> anyhow::Result<Ticket> {
        use anyhow::Context;
        let text = fs::read_to_string(path)
            .with_context(|| format!("reading ticket {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing ticket {}", path.display()))
    }

    /// The built-in trainer's config: what a `sweep worker` runs. A command job's ticket is
    /// its program's, which the scheduler starts itself.
    pub fn train_config(&self) -> anyhow::Result<&crate::job::JobConfig> {
        self.config.train().ok_or_else(|| {
            anyhow::anyhow!(
                "job {}: a command job runs its own program, not `sweep worker`",
                self.hash
            )
        })
    }
}

/// Progress a job reports while it runs; the job process prints these on stdout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Started {
        iters: usize,
        resumed_from: usize,
    },
    Iter {
        iter: usize,
        loss: f64,
        lr: f64,
        secs: f64,
        data_wait_secs: f64,
    },
    Checkpoint {
        iter: usize,
        path: PathBuf,
    },
    /// Validation during training (`eval.every`): the summary metrics at `iter`.
    Eval {
        iter: usize,
        metrics: Vec<MetricValue>,
    },
    Log {
        message: String,
    },
}

/// How a job attempt ended (a crash is no outcome: the scheduler sees the exit status).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Completed {
        iterations: usize,
        metrics: Vec<MetricValue>,
        /// Per image and class (absent in results of sweep 0.2 and earlier).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        images: Vec<ImageMetric>,
        /// The content fingerprint of the files trained and validated on,
        /// `train:<hex> val:<hex>` (absent for jobs that read no data).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<String>,
    },
    /// The loss became NaN or infinite: training stopped at `iter`.
    Diverged {
        iter: usize,
        last_finite_loss: Option<f64>,
    },
    /// A stop was requested; a checkpoint at `iter` was written and the job can resume.
    Interrupted { iter: usize },
    /// The job reached the ticket's `pause_at` (a rung of an adaptive search): it was
    /// evaluated there (`metrics`, `images` as for a completed job) and checkpointed, and
    /// continues from that checkpoint when promoted.
    Paused {
        iter: usize,
        metrics: Vec<MetricValue>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        images: Vec<ImageMetric>,
    },
    /// The job cannot run as configured: bad configuration or input (a checkpoint whose
    /// tensors do not fit the model, a missing file). Another attempt would fail the same way.
    Rejected { reason: String },
}

impl Outcome {
    /// A completed job's numbers of one split (`val`: the evaluation; `train`: this attempt's
    /// throughput and data wait); empty for other outcomes.
    pub fn split_metrics(&self, split: &str) -> Vec<MetricValue> {
        match self {
            Outcome::Completed { metrics, .. } => metrics
                .iter()
                .filter(|m| m.split == split)
                .cloned()
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// `result.json`: the outcome, with the claim it was produced for and the sweep build that
/// produced it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    pub hash: String,
    /// None in files written before results carried their claim (sweep 0.1).
    #[serde(default)]
    pub claim: Option<Claim>,
    #[serde(default)]
    pub sweep_version: Option<String>,
    pub outcome: Outcome,
}

impl JobResult {
    pub fn new(hash: &str, claim: Claim, outcome: Outcome) -> JobResult {
        JobResult {
            hash: hash.to_string(),
            claim: Some(claim),
            sweep_version: Some(sweep_version()),
            outcome,
        }
    }

    /// The result file in `dir`, whatever produced it (None if absent or unreadable).
    pub fn read(dir: &Path) -> Option<JobResult> {
        let text = fs::read_to_string(dir.join(RESULT_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        write_atomic(&dir.join(RESULT_FILE), |w| w.write_all(&json))
    }

    /// Was this result produced for `claim`'s job in `claim`'s database (any attempt)?
    pub fn is_for_job(&self, hash: &str, claim: &Claim) -> bool {
        self.hash == hash
            && self
                .claim
                .as_ref()
                .is_some_and(|c| c.store == claim.store && c.job_id == claim.job_id)
    }

    /// A finished outcome (an interrupted one is work in progress, not a result; a paused
    /// one is the result of its rung only: see [`JobResult::is_result_for`]).
    pub fn is_finished(&self) -> bool {
        !matches!(
            self.outcome,
            Outcome::Interrupted { .. } | Outcome::Paused { .. }
        )
    }

    /// Is this the result an attempt with ticket `pause_at` would produce? A final outcome
    /// always is; a pause only at the same rung (a promoted job continues past it).
    pub fn is_result_for(&self, pause_at: Option<usize>) -> bool {
        match &self.outcome {
            Outcome::Paused { iter, .. } => Some(*iter) == pause_at,
            _ => self.is_finished(),
        }
    }
}

/// Writes `path` atomically and durably: `write` fills a temporary file in the same folder,
/// which is fsynced and renamed over `path`, then the folder is fsynced. A reader sees the
/// old file or the new one, never half of one, and the new one survives a power cut once
/// this returns. If `write` fails, the temporary file is removed and `path` is untouched.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let dir = replace_file(path, write)?;
    sync_folder(&dir)
}

/// fsyncs a folder, so that a rename into it lasts a power cut. A file system that cannot
/// fsync a folder at all (EINVAL or ENOTSUP: some network and FUSE file systems) gives the
/// durability it has; any other failure is an error naming the folder.
fn sync_folder(dir: &Path) -> io::Result<()> {
    let synced = File::open(dir).and_then(|d| d.sync_all());
    match synced {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOTSUP)) => Ok(()),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("syncing the folder {}: {e}", dir.display()),
        )),
        Ok(()) => Ok(()),
    }
}

/// [`write_atomic`] without the folder's fsync: the file is whole and its data on disk, but
/// its rename lasts a power cut only once the folder is fsynced, by the next [`write_atomic`]
/// into it. For a file whose loss matters only together with files written after it into
/// the same folder (the ticket and the job's checkpoints and result). Returns the folder.
pub fn replace_file(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<PathBuf> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{}: no file name", path.display())))?;
    // Unique per process: two writers of one path never share a temporary file.
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut w = BufWriter::new(File::create(&tmp)?);
        write(&mut w)?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io::Error::new(
            e.kind(),
            format!("writing {}: {e}", path.display()),
        ));
    }
    fs::rename(&tmp, path)
        .map_err(|e| io::Error::new(e.kind(), format!("renaming to {}: {e}", path.display())))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_writer_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        write_atomic(&path, |w| w.write_all(b"old")).unwrap();
        let err = write_atomic(&path, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("f.json"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_result_belongs_to_its_database_and_job() {
        let claim = Claim {
            store: "db-a".into(),
            job_id: 3,
            attempt: 1,
        };
        let r = JobResult::new("abc", claim.clone(), Outcome::Interrupted { iter: 2 });
        assert!(r.is_for_job(
            "abc",
            &Claim {
                attempt: 2,
                ..claim.clone()
            }
        ));
        assert!(!r.is_for_job("abd", &claim));
        assert!(!r.is_for_job(
            "abc",
            &Claim {
                store: "db-b".into(),
                ..claim.clone()
            }
        ));
        assert!(!r.is_for_job("abc", &Claim { job_id: 4, ..claim }));
        assert!(!r.is_finished());
        let legacy: JobResult = serde_json::from_str(
            r#"{"hash":"abc","outcome":{"status":"completed","iterations":1,"metrics":[]}}"#,
        )
        .unwrap();
        assert!(legacy.claim.is_none() && legacy.is_finished());
    }
}

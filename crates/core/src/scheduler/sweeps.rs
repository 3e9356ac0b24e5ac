//! Which sweeps an orchestrator serves, and where each one's artifact folders are.
//!
//! A sweep registered with a runs folder (`--runs`, or the file's `runs:`) gets a marker file
//! there, `.sweep-runs`, naming the database. An agent on another node uses the same folder
//! and checks the marker first: a node that cannot see the shared file system (not mounted,
//! another path) is told so, and the job it claimed goes back to the queue untouched instead
//! of training into a local folder that no other node would find.

use crate::store::{Store, SweepRow, TrialJobs};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Mutex;

/// Marks a runs folder as a database's (see the module doc).
pub const RUNS_MARKER: &str = ".sweep-runs";

/// Records `runs` as the sweep's artifact root (absolute) and marks the folder.
pub async fn register_runs(store: &dyn Store, sweep_id: i64, runs: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(runs)
        .with_context(|| format!("creating the runs folder {}", runs.display()))?;
    let runs = std::fs::canonicalize(runs)
        .with_context(|| format!("resolving the runs folder {}", runs.display()))?;
    let marker = runs.join(RUNS_MARKER);
    crate::protocol::write_atomic(&marker, |w| {
        writeln!(w, "results database {}", store.identity())
    })
    .with_context(|| format!("writing {}", marker.display()))?;
    store
        .set_runs_dir(sweep_id, &runs.display().to_string())
        .await?;
    Ok(runs)
}

/// A sweep as an orchestrator needs it.
#[derive(Clone, Debug)]
pub struct SweepInfo {
    pub name: String,
    pub runs: PathBuf,
    /// An adaptive search's trials (None: a grid).
    pub search: Option<Arc<dyn TrialJobs>>,
}

/// Sweep ids to names and artifact roots, looked up once per sweep.
pub struct SweepDirectory {
    /// `--runs` of this process: wins over what the sweep was registered with.
    runs_override: Option<PathBuf>,
    /// Where a sweep registered without a folder keeps its artifacts.
    default_runs: PathBuf,
    known: Mutex<HashMap<i64, SweepInfo>>,
}

impl SweepDirectory {
    pub fn new(runs_override: Option<PathBuf>, default_runs: PathBuf) -> Self {
        SweepDirectory {
            runs_override,
            default_runs,
            known: Mutex::new(HashMap::new()),
        }
    }

    pub async fn get(&self, store: &dyn Store, sweep_id: i64) -> Result<SweepInfo> {
        if let Some(info) = self.known.lock().await.get(&sweep_id) {
            return Ok(info.clone());
        }
        let row = store
            .sweeps()
            .await?
            .into_iter()
            .find(|s| s.id == sweep_id)
            .with_context(|| format!("sweep {sweep_id} vanished from {}", store.location()))?;
        let mut info = self.resolve(&row)?;
        info.search = super::search::load(store, sweep_id, &row.spec_path).await?;
        self.known.lock().await.insert(sweep_id, info.clone());
        Ok(info)
    }

    fn resolve(&self, row: &SweepRow) -> Result<SweepInfo> {
        let registered = row.runs_dir.as_ref().map(PathBuf::from);
        let runs = match (&self.runs_override, registered) {
            (Some(dir), _) => dir.clone(),
            (None, Some(dir)) => {
                check_visible(&dir, &row.name)?;
                dir
            }
            (None, None) => self.default_runs.clone(),
        };
        Ok(SweepInfo {
            name: row.name.clone(),
            runs,
            search: None,
        })
    }
}

/// The registered runs folder must be the one the sweep was registered with: its marker is there.
fn check_visible(dir: &Path, sweep: &str) -> Result<()> {
    if dir.join(RUNS_MARKER).is_file() {
        return Ok(());
    }
    bail!(
        "node {}: cannot see the runs folder {} of sweep {sweep} (no {RUNS_MARKER} there): \
         is the shared file system mounted on this node? Pass --runs with this node's path to it",
        crate::store::local_hostname(),
        dir.display()
    )
}

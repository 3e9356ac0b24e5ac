//! What the benchmarks that call Python share: a scratch folder removed at the end (also on
//! errors) and the interpreter that has the references (Optuna, onnxruntime).

use std::path::PathBuf;

/// A scratch folder, removed when dropped.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `SWEEP_PYTHON`, else the workspace's `.venv/bin/python` (scripts/setup-libtorch installs
/// onnxruntime and optuna there), else `python3`.
pub(crate) fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("SWEEP_PYTHON") {
        return PathBuf::from(p);
    }
    [
        PathBuf::from(".venv/bin/python"),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .unwrap_or_else(|| PathBuf::from("python3"))
}

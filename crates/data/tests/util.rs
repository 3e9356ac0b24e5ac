//! Helpers shared by the data test modules.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The workspace root (`crates/data/../..`): the shipped data sets live in its `data/`.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A shipped data set, `data/<name>` (`dme`, `chase_db1`).
pub fn data_root(name: &str) -> PathBuf {
    workspace_root().join("data").join(name)
}

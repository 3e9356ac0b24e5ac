//! Shared helper of the trainer tests: a DME data root over a few of the shipped images.

use std::path::{Path, PathBuf};

/// A DME data root whose train and val splits are both `ids` (the images themselves are the
/// project's, linked).
pub fn dme_subset(ids: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("dme");
    std::fs::create_dir_all(root.join("splits")).unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/dme");
    for sub in ["256", "full"] {
        std::os::unix::fs::symlink(data.join(sub), root.join(sub)).unwrap();
    }
    for split in ["train", "val"] {
        std::fs::write(root.join(format!("splits/{split}.txt")), ids.join("\n")).unwrap();
    }
    (tmp, root)
}

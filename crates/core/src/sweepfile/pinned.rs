//! The identity hash of every job of every shipped sweep file, pinned.
//!
//! Users' databases key results by these hashes, so a refactor of the config types (or of
//! the expansion) must leave them exactly as `sweep plan` printed them before. The pinned
//! values live in `crates/core/tests/fixtures/job_hashes.txt` (`<sweep file> <hash> <label>`).

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `<sweep file> <hash> <label>` for every planned job of every `sweeps/*.yaml`, files in
/// name order, jobs in plan order.
fn planned_lines(root: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(root.join("sweeps"))
        .expect("the workspace has a sweeps/ folder")
        .map(|e| e.expect("readable sweeps/ entry").file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    files.sort();
    let mut lines = Vec::new();
    for name in files {
        let rel = format!("sweeps/{name}");
        // Planning never opens data, so the data paths (relative to the workspace root)
        // need no particular current directory: the absolute file path is enough.
        let spec = super::load(&root.join(&rel), &[])
            .unwrap_or_else(|e| panic!("{rel} does not load: {e}"));
        let jobs = spec
            .plan()
            .unwrap_or_else(|e| panic!("{rel} does not plan: {e}"));
        lines.extend(jobs.iter().map(|j| format!("{rel} {} {}", j.hash, j.label)));
    }
    lines
}

fn pinned_lines(root: &Path) -> Vec<String> {
    let path = root.join("crates/core/tests/fixtures/job_hashes.txt");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// A line-by-line diff (`-` pinned, `+` planned now) of the lines that differ.
fn diff(pinned: &[String], planned: &[String]) -> String {
    let mut out = String::new();
    for i in 0..pinned.len().max(planned.len()) {
        let (want, got) = (pinned.get(i), planned.get(i));
        if want != got {
            out.push_str(&format!("job {}:\n", i + 1));
            if let Some(w) = want {
                out.push_str(&format!("  - {w}\n"));
            }
            if let Some(g) = got {
                out.push_str(&format!("  + {g}\n"));
            }
        }
    }
    out
}

#[test]
fn shipped_sweeps_keep_their_job_hashes() {
    let root = workspace_root();
    let pinned = pinned_lines(&root);
    let planned = planned_lines(&root);
    assert!(!pinned.is_empty(), "the fixture lists no jobs");
    assert!(
        pinned == planned,
        "job identities changed (pinned {} jobs, planned {}); users' results are keyed by \
         these hashes:\n{}",
        pinned.len(),
        planned.len(),
        diff(&pinned, &planned)
    );
}

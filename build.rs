//! Puts libtorch's folder on the binary's rpath so `target/*/sweep` starts without
//! LD_LIBRARY_PATH, and records the git commit the binary is built from
//! (`SWEEP_GIT_COMMIT`, stored with every result).
use std::process::Command;

include!("crates/train/rpath.rs");

fn main() {
    rpath_to_libtorch("rustc-link-arg-bins");
    println!("cargo:rustc-env=SWEEP_GIT_COMMIT={}", git_commit());
}

/// The checkout's HEAD commit (`1a2b3c4d`), or empty outside a git checkout. Uncommitted
/// edits are not detected: the script reruns only when HEAD or the index moves.
fn git_commit() -> String {
    for f in [".git/HEAD", ".git/index"] {
        if std::path::Path::new(f).exists() {
            println!("cargo:rerun-if-changed={f}");
        }
    }
    Command::new("git")
        .args(["rev-parse", "--short=8", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

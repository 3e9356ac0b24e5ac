//! Helpers shared by the train test modules: paths of the workspace's data and Python, a
//! DME subset, running a test alone in its own process, and (in [`ops`]) seeded tensors
//! and closeness checks for the `ops_*` tests.

#![allow(dead_code)]

pub mod ops;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (`crates/train/../..`): sweep files, data and `.venv` live there.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A shipped data set, `data/<name>` (`dme`, `chase_db1`).
pub fn data_root(name: &str) -> PathBuf {
    workspace_root().join("data").join(name)
}

/// A DME data root whose train and val splits are both `ids` (the images themselves are the
/// project's, linked).
pub fn dme_subset(ids: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("dme");
    std::fs::create_dir_all(root.join("splits")).unwrap();
    let data = data_root("dme");
    for sub in ["256", "full", "dataset.yaml", "subjects.csv"] {
        std::os::unix::fs::symlink(data.join(sub), root.join(sub)).unwrap();
    }
    for split in ["train", "val"] {
        std::fs::write(root.join(format!("splits/{split}.txt")), ids.join("\n")).unwrap();
    }
    (tmp, root)
}

/// The Python the PyTorch-side tests run: `SWEEP_PYTHON`, else the workspace's `.venv`
/// (the symlink scripts/setup-libtorch makes), else `python3`. Tests use the library's own
/// lookup (`sweep_train::bench_train::python`), so they see what `sweep bench train` sees.
pub fn python() -> PathBuf {
    sweep_train::bench_train::python()
}

/// The Python with torch, or a panic that says what is missing and how to get it: a test
/// that compares with PyTorch must fail, never pass silently, where there is no torch.
pub fn require_torch() -> PathBuf {
    let py = python();
    let out = Command::new(&py)
        .args(["-c", "import torch; print(torch.__version__)"])
        .output();
    match out {
        Ok(o) if o.status.success() => py,
        Ok(o) => panic!(
            "this test compares with PyTorch, but {} cannot import torch ({}): {}\n\
             run scripts/setup-libtorch (it makes {}/.venv), or set SWEEP_PYTHON to a Python with torch",
            py.display(),
            o.status,
            String::from_utf8_lossy(&o.stderr).trim(),
            workspace_root().display()
        ),
        Err(e) => panic!(
            "this test compares with PyTorch, but {} does not run: {e}\n\
             run scripts/setup-libtorch (it makes {}/.venv), or set SWEEP_PYTHON to a Python with torch",
            py.display(),
            workspace_root().display()
        ),
    }
}

/// Set in the child process [`in_own_process`] starts, to the test it runs.
const OWN_PROCESS_ENV: &str = "SWEEP_TEST_OWN_PROCESS";

/// Runs `body` in a fresh process of this test binary, with this test alone in it: for tests
/// that change process-wide state (the kernel options, libtorch's threads) that the other
/// tests of this binary, running in parallel threads, would see. `module` is the caller's
/// `module_path!()` and `test` its function name. The child's output is shown on failure.
pub fn in_own_process(module: &str, test: &str, body: impl FnOnce()) {
    // module_path!() starts with the crate's name (`train`); libtest's names do not.
    let name = match module.split_once("::") {
        Some((_, rest)) => format!("{rest}::{test}"),
        None => test.to_string(),
    };
    if std::env::var(OWN_PROCESS_ENV).as_deref() == Ok(name.as_str()) {
        body();
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([name.as_str(), "--exact", "--test-threads=1", "--nocapture"])
        .env(OWN_PROCESS_ENV, &name)
        .output()
        .unwrap_or_else(|e| panic!("cannot start this test binary again for {name}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{name} failed in its own process ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "{name}: the child process did not run exactly this test:\n{stdout}"
    );
}

//! Helpers shared by the core test modules.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use sweep_core::protocol::MetricValue;
use sweep_core::store::{NewJob, Owner};

/// The workspace root (`crates/core/../..`): sweep files and data live there.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A shipped sweep file, `sweeps/<name>.yaml`.
pub fn sweep_file(name: &str) -> PathBuf {
    workspace_root().join("sweeps").join(format!("{name}.yaml"))
}

/// A fixed owner on a made-up host (pid 1): never "this process".
pub fn owner(n: &str) -> Owner {
    Owner {
        host: "test-host".into(),
        pid: 1,
        nonce: n.into(),
    }
}

/// Job `i`: hash `h{i:04}`, 100 iterations, seed `i`.
pub fn job(i: usize) -> NewJob {
    NewJob {
        hash: format!("h{i:04}"),
        stage: None,
        label: format!("job {i}"),
        config_json: format!(r#"{{"iters": 100, "crop": 256, "seed": {i}}}"#),
        seed: i as u64,
        depends_on: None,
    }
}

/// A validation metric.
pub fn metric(name: &str, class: Option<usize>, value: f64) -> MetricValue {
    MetricValue {
        split: "val".into(),
        name: name.into(),
        class,
        value,
    }
}

/// Validation metrics from `(name, class, value)` triples.
pub fn metrics(v: &[(&str, Option<usize>, f64)]) -> Vec<MetricValue> {
    v.iter()
        .map(|&(name, class, value)| metric(name, class, value))
        .collect()
}

//! Helpers shared by the core test modules.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use sweep_core::job::JobStatus;
use sweep_core::protocol::MetricValue;
use sweep_core::store::{JobRow, NewJob, Owner};

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
        continues: false,
        classes: Vec::new(),
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

/// A report row as the store returns it: job `id` of `sweep`, 200 iterations, artifacts in
/// `/runs/{id}`, the error `exit code 3` when `status` is failed.
pub fn job_row(
    sweep: &str,
    id: i64,
    label: &str,
    seed: u64,
    config_json: String,
    status: &str,
    metrics: Vec<MetricValue>,
) -> JobRow {
    JobRow {
        sweep: sweep.into(),
        job_id: id,
        hash: format!("hash{id}"),
        stage: None,
        label: label.into(),
        status: status.parse::<JobStatus>().unwrap(),
        attempts: 1,
        seed,
        config_json,
        metrics,
        artifact_dir: Some(format!("/runs/{id}")),
        error: (status == "failed").then(|| "exit code 3".to_string()),
        iteration: 200,
        total_iters: Some(200),
        started_at: None,
        finished_at: None,
        retired: false,
        sweep_version: None,
        classes: Vec::new(),
        data_fingerprint: None,
        external: None,
    }
}

//! sweep-train's integration tests: one binary, one module per topic (ripgrep style).
//! `util` has the helpers they share (`util::ops` those of the `ops_*` modules).
//!
//! One process runs them all in parallel threads, so a test that changes process-wide state
//! (kernel options, libtorch threads) runs itself alone in a child process
//! (`util::in_own_process`). Tests that compare with PyTorch need the Python with torch
//! (the workspace's `.venv`, made by scripts/setup-libtorch, or `SWEEP_PYTHON`) and fail,
//! saying so, without it.
#![allow(deprecated)] // burn marks its LibTorch backend deprecated; it is the backend this project chose.

/// The export crate's Python runner (export_parity.py), shared rather than copied.
#[allow(dead_code)]
#[path = "../../export/tests/python.rs"]
mod export_python;
mod util;

mod bench_predict;
mod bench_train;
mod export_chain;
mod infer;
mod metrics_eval;
mod ops_batch_norm;
mod ops_bench;
mod ops_chain;
mod ops_conv;
mod ops_fused;
mod ops_options;
mod trainer_checkpoint;
mod trainer_compute;
mod trainer_noop;
mod trainer_torch_parity;
mod trainer_unet;
mod transfer_jobs;
mod transfer_mmseg;

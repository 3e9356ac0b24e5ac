//! sweep-data's integration tests: one binary, one module per topic (ripgrep style).
//! `util` has the helpers they share. Tests that need the trainer (libtorch) are in
//! sweep-train's `train` binary.

mod layouts;
mod util;

mod data_cv;
mod data_evaluate;
mod data_own;
mod data_pipeline;

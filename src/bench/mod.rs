//! Benchmarks: `train` times one training step in sweep (burn on libtorch) against PyTorch eager.

pub mod train;

pub use train::{bench_train, BenchTrainArgs, Recipe};
pub mod orchestrator;

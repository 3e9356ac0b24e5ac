//! Trainer: one job's training and evaluation on burn (libtorch backend).
//!
//! `run` is called inside the job's own process (see `worker`); it reports progress
//! through an [`Observer`] and returns the job's final [`Outcome`].

pub mod data;
pub mod eval;
pub mod metrics;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where a job's tensors live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceChoice {
    Cpu,
    Cuda(usize),
}

impl DeviceChoice {
    pub fn burn_device(&self) -> burn::tensor::Device {
        match self {
            DeviceChoice::Cpu => burn::tensor::Device::libtorch(),
            DeviceChoice::Cuda(i) => burn::tensor::Device::libtorch_cuda(*i),
        }
    }
}

/// What a job's process knows besides its config.
#[derive(Clone, Debug)]
pub struct TrainContext {
    pub device: DeviceChoice,
    /// The job's own folder: checkpoints, predictions, curves.
    pub artifact_dir: PathBuf,
    /// 1-based attempt number (fault injection and logs).
    pub attempt: u32,
    /// Resolved `init.from`: the final checkpoint of the stage this job starts from.
    pub init_checkpoint: Option<PathBuf>,
}

/// Progress a job reports while it runs; the worker forwards these to the orchestrator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Started {
        iters: usize,
        resumed_from: usize,
    },
    Iter {
        iter: usize,
        loss: f64,
        lr: f64,
        secs: f64,
        data_wait_secs: f64,
    },
    Checkpoint {
        iter: usize,
        path: PathBuf,
    },
    Log {
        message: String,
    },
}

pub trait Observer {
    fn event(&mut self, event: Event);
    /// True once the job should checkpoint and stop (Ctrl-C / SIGTERM in the worker).
    /// The train loop polls it every iteration and returns [`Outcome::Interrupted`].
    fn stop_requested(&self) -> bool {
        false
    }
}

/// Collects events (tests).
impl Observer for Vec<Event> {
    fn event(&mut self, event: Event) {
        self.push(event);
    }
}

/// How a job ended (a crash is an `Err`, not an outcome).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Completed {
        iterations: usize,
        metrics: Vec<MetricValue>,
    },
    /// The loss became NaN or infinite: training stopped at `iter`.
    Diverged {
        iter: usize,
        last_finite_loss: Option<f64>,
    },
    /// A stop was requested; a checkpoint at `iter` was written and the job can resume.
    Interrupted { iter: usize },
}

impl Outcome {
    /// A completed job's numbers of one split (`val`: the evaluation; `train`: this attempt's
    /// throughput and data wait); empty for other outcomes.
    pub fn split_metrics(&self, split: &str) -> Vec<MetricValue> {
        match self {
            Outcome::Completed { metrics, .. } => metrics
                .iter()
                .filter(|m| m.split == split)
                .cloned()
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// One number of the evaluation: `class` is None for means / aAcc. Values in percent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricValue {
    pub split: String,
    pub name: String,
    pub class: Option<usize>,
    pub value: f64,
}

pub mod checkpoint;
pub mod freeze;
pub mod import;
pub mod loss;
pub mod model;
pub mod optim;
pub mod train;

pub use train::run;
pub mod ops;

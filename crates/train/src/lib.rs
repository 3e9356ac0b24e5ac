#![allow(deprecated)] // burn marks its LibTorch backend deprecated; it is the backend this project chose.
//! `sweep-train`: one job's training and evaluation on burn (libtorch backend), and the job
//! process that runs it.
//!
//! [`job_process`] is `sweep worker TICKET`: it reads the ticket, calls [`run`] with an
//! [`Observer`] that prints [`Event`]s, and leaves a [`JobResult`](sweep_core::protocol::JobResult).
//! The model code ([`model`]) is burn `Module` + `Tensor`; [`ops`] puts conv, batch norm and
//! ReLU on libtorch's kernels.

pub mod bench_predict;
pub mod bench_train;
pub mod checkpoint;
pub mod doctor;
pub mod eval;
pub mod export;
pub mod freeze;
pub mod import;
pub mod infer;
pub mod job_process;
pub mod loss;
pub mod loss_window;
pub mod memory;
pub mod model;
pub mod ops;
pub mod optim;
pub mod predict;
pub mod torch_error;
pub mod train;
pub mod trained;

pub use sweep_core::protocol::{DeviceChoice, Event, MetricValue, Outcome};
pub use train::run;

use std::path::PathBuf;

/// The burn device of a [`DeviceChoice`].
pub fn burn_device(choice: DeviceChoice) -> burn::tensor::Device {
    match choice {
        DeviceChoice::Cpu => burn::tensor::Device::libtorch(),
        DeviceChoice::Cuda(i) => burn::tensor::Device::libtorch_cuda(i),
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
    /// Adaptive search: stop at this iteration (below `iters`), evaluate and checkpoint
    /// ([`sweep_core::protocol::Outcome::Paused`]).
    pub pause_at: Option<usize>,
    /// A shared prefix: the final checkpoint of the shorter job of the same training that
    /// this job continues (used when the job has no checkpoint of its own yet).
    pub continue_from: Option<PathBuf>,
    /// A longer job continues this one: keep the optimiser state in the final checkpoint.
    pub keep_state: bool,
}

/// Receives a job's progress; the job process prints it for the orchestrator.
pub trait Observer {
    fn event(&mut self, event: Event);
    /// True once the job should checkpoint and stop (Ctrl-C / SIGTERM in the job process).
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

//! `sweep-core`: the orchestrator half of `sweep`, with no burn and no libtorch.
//!
//! The flow, one module each: [`sweepfile`] (the YAML sweep file) -> [`job`] (resolved
//! config, identity, status) -> [`scheduler`] (slots, one job process per attempt, speaking
//! [`protocol`]) -> [`store`] (the results database) -> [`report`] (leaderboard, status,
//! plots). [`external`] records another program's scored predictions (`sweep evaluate`) as a
//! row beside the sweep's own. [`metrics`] is MMSegmentation's IoUMetric arithmetic, shared
//! by the trainer, `sweep evaluate` and the reports; [`stats`] compares configurations on it
//! (t intervals, Welch, Holm, and a paired bootstrap over validation images and seeds).
//! [`slurm`] writes and submits the sbatch array whose tasks each run one agent on the
//! shared queue.

pub mod dataset;
pub mod external;
pub mod job;
pub mod metrics;
pub mod protocol;
pub mod report;
pub mod scheduler;
pub mod search;
pub mod slurm;
pub mod stats;
pub mod store;
pub mod suggest;
pub mod sweepfile;

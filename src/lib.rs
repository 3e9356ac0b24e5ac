#![allow(deprecated)] // burn marks its LibTorch backend deprecated; it is the backend this project chose.
//! `sweep`: experiment sweeps for medical-image segmentation.
//!
//! The flow, one module each: [`spec`] (sweep file) -> [`job`] (resolved config, identity)
//! -> [`scheduler`] (worker pool, child processes) -> [`worker`] + [`trainer`] (burn on
//! libtorch) -> [`store`] (SQLite via sqlx) -> [`report`] (leaderboard, plots).

pub mod job;
pub mod report;
pub mod store;
pub mod trainer;

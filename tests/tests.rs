//! The `sweep` binary end to end: one test binary (ripgrep style), one module per topic,
//! `util` for what they share (the sandbox that runs the real binary).

#[path = "../crates/data/tests/layouts.rs"]
mod layouts;
mod util;

mod agents;
mod cli;
mod commands;
mod dashboard;
mod evaluate;
mod gpu_run;
mod own_data;
mod prefix;
mod reliability;
mod search;
mod services;
mod statistics;
mod use_model;

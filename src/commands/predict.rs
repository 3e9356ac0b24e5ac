//! `sweep predict` and `sweep bench predict`.

use crate::cli::{BenchPredictArgs, PredictArgs};
use anyhow::{bail, Result};
use std::process::ExitCode;

pub fn predict(_args: PredictArgs) -> Result<ExitCode> {
    bail!("sweep predict: in progress")
}

pub fn bench_predict(_args: BenchPredictArgs) -> Result<ExitCode> {
    bail!("sweep bench predict: in progress")
}

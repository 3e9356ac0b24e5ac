//! `sweep evaluate`: another tool's predictions scored and recorded beside the sweep's rows.

use crate::cli::EvaluateArgs;
use anyhow::{bail, Result};
use std::process::ExitCode;

pub fn evaluate(_args: EvaluateArgs) -> Result<ExitCode> {
    bail!("sweep evaluate: in progress")
}

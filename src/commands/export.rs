//! `sweep export`: a job's (or a configuration's) networks as a package.

use crate::cli::ExportArgs;
use anyhow::{bail, Result};
use std::process::ExitCode;

pub fn export(_args: ExportArgs) -> Result<ExitCode> {
    bail!("sweep export: in progress")
}

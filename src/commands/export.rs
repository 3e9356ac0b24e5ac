//! `sweep export`: a job's (or a configuration's) networks as a package.

use crate::cli::ExportArgs;
use anyhow::Result;
use std::process::ExitCode;

#[cfg(feature = "train")]
pub fn export(args: ExportArgs) -> Result<ExitCode> {
    use crate::cli::ExportFormat;
    use sweep_train::export::{export, Format};
    let rows = super::predict::selected_runs(&args.db.db, args.sweep.as_deref(), &args.model)?;
    let mut formats = Vec::new();
    for f in &args.format {
        let f = match f {
            ExportFormat::Safetensors => Format::Safetensors,
            ExportFormat::Onnx => Format::Onnx,
            ExportFormat::Pth => Format::Pth,
        };
        if !formats.contains(&f) {
            formats.push(f);
        }
    }
    let done = export(&rows, &args.out, &formats)?;
    eprintln!(
        "exported {} ({} network{}) to {}: {}",
        rows[0].label,
        done.networks,
        if done.networks == 1 { "" } else { "s" },
        done.dir.display(),
        done.files.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "train"))]
pub fn export(_: ExportArgs) -> Result<ExitCode> {
    super::require_training("sweep export")?;
    unreachable!("require_training fails without the train feature")
}

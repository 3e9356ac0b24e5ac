//! `sweep predict` and `sweep bench predict`.

use crate::cli::{BenchPredictArgs, PredictArgs};
use anyhow::Result;
use std::process::ExitCode;
#[cfg(feature = "train")]
use {
    super::runtime,
    crate::cli::TtaArg,
    std::path::Path,
    sweep_core::store::{self, DbLocation, JobRow},
};

/// The jobs `selector` names in the results database (every seed and fold of a label).
#[cfg(feature = "train")]
pub(super) fn selected_runs(
    db: &DbLocation,
    sweep: Option<&str>,
    selector: &str,
) -> Result<Vec<JobRow>> {
    runtime()?.block_on(async {
        let store = store::open_existing(db).await?;
        sweep_core::report::select::runs(store.as_ref(), sweep, selector).await
    })
}

/// Whether MODEL is an exported package (a folder with `metadata.json`) rather than a job.
#[cfg(feature = "train")]
fn is_package(model: &str) -> bool {
    Path::new(model)
        .join(sweep_export::package::METADATA_FILE)
        .is_file()
}

#[cfg(feature = "train")]
pub fn predict(args: PredictArgs) -> Result<ExitCode> {
    use sweep_train::infer::Tta;
    use sweep_train::predict::{inputs, predict, PredictOptions};
    use sweep_train::trained::Trained;
    let device = sweep_train::burn_device(args.device.choice());
    let inputs = inputs::expand(&args.inputs)?;
    let trained = if is_package(&args.model) {
        Trained::from_package(Path::new(&args.model), &device)?
    } else {
        let rows = selected_runs(&args.db.db, args.sweep.as_deref(), &args.model)?;
        Trained::from_jobs(&rows, &device)?
    };
    let networks = trained.networks.len();
    let name = trained.name.clone();
    let opts = PredictOptions {
        tta: match args.tta {
            TtaArg::None => Tta::None,
            TtaArg::Flip => Tta::Flip,
        },
        batch: args.batch.unwrap_or(sweep_train::infer::WINDOW_BATCH),
        palette: args.palette,
        probabilities: args.probabilities,
        overlay: args.overlay,
        spacing: args.spacing.map(|s| [s[0], s[1]]),
    };
    let summary = predict(trained, &inputs, &args.out, &opts, &device)?;
    eprintln!(
        "predicted {} of {} images with {name} ({networks} network{}, {} pass{} per image) into {}; areas in {}",
        summary.predicted,
        inputs.len(),
        if networks == 1 { "" } else { "s" },
        summary.passes,
        if summary.passes == 1 { "" } else { "es" },
        args.out.display(),
        summary.csv.display()
    );
    if summary.skipped.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("skipped {} unreadable image(s):", summary.skipped.len());
    for s in &summary.skipped {
        eprintln!("  {}: {}", s.path.display(), s.reason);
    }
    Ok(ExitCode::FAILURE)
}

#[cfg(not(feature = "train"))]
pub fn predict(_: PredictArgs) -> Result<ExitCode> {
    super::require_training("sweep predict")?;
    unreachable!("require_training fails without the train feature")
}

#[cfg(feature = "train")]
pub fn bench_predict(args: BenchPredictArgs) -> Result<ExitCode> {
    use anyhow::Context;
    use sweep_train::bench_predict::{bench_predict, parse_size, BenchPredictArgs as Bench};
    let head = serde_yaml::from_str(&args.head)
        .with_context(|| format!("--head {}: expected fcn, deeplabv3 or pspnet", args.head))?;
    let bench = Bench {
        device: args.device.choice(),
        images: args.images,
        size: parse_size(&args.size).map_err(|e| anyhow::anyhow!("--size: {e}"))?,
        crop: args.crop,
        stride: args.stride,
        head,
        base_channels: args.base_channels,
        batch: args.batch,
    };
    let run = bench_predict(&bench)?;
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&run.json()).expect("JSON");
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if run.sides.iter().any(|s| s.failed()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(not(feature = "train"))]
pub fn bench_predict(_: BenchPredictArgs) -> Result<ExitCode> {
    super::require_training("sweep bench predict")?;
    unreachable!("require_training fails without the train feature")
}

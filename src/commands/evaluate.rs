//! `sweep evaluate`: another tool's predictions scored and recorded beside the sweep's rows.
//!
//! Every file is read and checked (`sweep_data::evaluate`) before the database is opened, so
//! bad input writes nothing; then the row is recorded in a sweep (`sweep_core::external`)
//! and read back with its place on the leaderboard (`sweep_core::report::external`).

use super::runtime;
use crate::cli::{EvaluateArgs, PlanFormat};
use crate::output::emit;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::ExitCode;
use sweep_core::dataset::DataSet;
use sweep_core::external::{self, DataSetRef, Submission};
use sweep_core::metrics::per_image::DistanceScale;
use sweep_core::report::external::EvaluationView;
use sweep_core::store;

pub fn evaluate(args: EvaluateArgs) -> Result<ExitCode> {
    let (data_set, data) = resolve_data(&args.data)?;
    let split = external::parse_split(&args.split)?;
    let folder = std::path::absolute(&args.predictions)
        .with_context(|| format!("{}: not a usable path", args.predictions.display()))?;
    let name = match &args.name {
        Some(n) => n.clone(),
        None => folder_name(&folder)?,
    };
    external::check_name(&name)?;
    let scale = DistanceScale::new(data_set.spacing);
    let scored = sweep_data::evaluate::score_folder(&data_set, &split, &folder, scale)?;
    let sub = Submission {
        name,
        data,
        split,
        predictions: folder,
        content: scored.content.clone(),
        cases: scored.cases,
        metrics: scored.values(),
        images: scored.images,
        val_fingerprint: scored.val_fingerprint,
    };
    runtime()?.block_on(async {
        let store = store::open(&args.db.db).await?;
        let (chosen, recorded) =
            external::record(store.as_ref(), &sub, args.sweep.as_deref()).await?;
        let view =
            EvaluationView::load(store.as_ref(), &chosen, &recorded, scored.not_scored).await?;
        store.close().await;
        match args.format {
            PlanFormat::Table => emit(view.text().trim_end())?,
            PlanFormat::Json => emit(view.json()?.trim_end())?,
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `--data`: a folder with a description, else a shipped data set's name (`dme`: `data/dme`,
/// as a sweep file's bare `dataset:` means). Spelled as a sweep file would spell it.
fn resolve_data(arg: &str) -> Result<(DataSet, DataSetRef)> {
    let given = Path::new(arg);
    let shipped = Path::new("data").join(arg);
    let (root, dataset) = if DataSet::is_described(given) {
        (given.to_path_buf(), None)
    } else if !arg.contains('/') && DataSet::is_described(&shipped) {
        (shipped, Some(arg.to_string()))
    } else {
        bail!(
            "--data {arg}: no data set there (a folder with dataset.json or dataset.yaml), and no \
             shipped data set of that name under data/"
        );
    };
    let data_set = DataSet::describe(&root)?;
    data_set.ensure_valid()?;
    let data = DataSetRef {
        dataset: dataset.unwrap_or_else(|| data_set.name.clone()),
        root: root.clone(),
        pixel_spacing: data_set.spacing,
        classes: data_set.classes.clone(),
    };
    Ok((data_set, data))
}

fn folder_name(folder: &Path) -> Result<String> {
    match folder.file_name() {
        Some(n) => Ok(n.to_string_lossy().into_owned()),
        None => bail!("{}: give the row a name with --as", folder.display()),
    }
}

//! Trained networks ready to use: the final checkpoints of a configuration's jobs (one, or
//! every seed and fold as an ensemble) or an exported package, with what applying them
//! needs (classes, palette, the inference recipe, the pixel spacing).

use crate::checkpoint::{load_tensors, Checkpoint, TensorEntry, FINAL_FILE};
use crate::model::{mmseg_key, visit_paths, Segmentor};
use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use sweep_core::dataset::DataSet;
use sweep_core::job::{EvalConfig, JobConfig, ModelConfig};
use sweep_core::store::JobRow;
use sweep_export::package::{Metadata, Recipe};
use sweep_export::{safetensors, NamedTensor};

/// Where the networks came from.
#[derive(Clone, Debug, PartialEq)]
pub enum Origin {
    /// Jobs of the results database (ids).
    Jobs(Vec<i64>),
    /// A package folder.
    Package(PathBuf),
}

/// One or more networks of the same configuration, as applied.
pub struct Trained {
    pub name: String,
    pub origin: Origin,
    pub model: ModelConfig,
    pub recipe: Recipe,
    pub classes: Vec<String>,
    pub palette: Option<Vec<[u8; 3]>>,
    pub spacing: Option<[f64; 2]>,
    pub networks: Vec<Segmentor>,
}

/// The inference recipe of a job's config (its evaluation and its data's resize).
pub fn recipe_of(cfg: &JobConfig) -> Recipe {
    Recipe {
        resize_scale: cfg.data.scale,
        mean: sweep_data::MEAN,
        std: sweep_data::STD,
        mode: cfg.eval.mode,
        crop: cfg.eval.crop,
        stride: cfg.eval.stride,
        pad_multiple: crate::model::unet::DIVISOR,
        output: "logits resized bilinearly (align_corners false) to the image's size; argmax \
                 (an ensemble or TTA: mean of softmax probabilities first)"
            .into(),
    }
}

/// The evaluation settings a recipe stands for.
pub fn eval_of(recipe: &Recipe) -> EvalConfig {
    EvalConfig {
        mode: recipe.mode,
        crop: recipe.crop,
        stride: recipe.stride,
        ..EvalConfig::default()
    }
}

/// A job's config, parsed: the built-in trainer's (a command job's model is its program's).
pub fn job_config(row: &JobRow) -> Result<JobConfig> {
    row.train_config()?.with_context(|| {
        format!(
            "job {} ({}) ran its own program (a command job): sweep predicts, evaluates and exports \
             the built-in trainer's models only",
            row.job_id, row.label
        )
    })
}

/// The config `rows` share: one configuration's seeds and folds have the same model and
/// inference recipe (what an ensemble and a package need).
pub fn one_configuration(rows: &[JobRow]) -> Result<JobConfig> {
    let Some(first) = rows.first() else {
        bail!("no job selected");
    };
    let cfg = job_config(first)?;
    for row in &rows[1..] {
        let other = job_config(row)?;
        if other.model != cfg.model || recipe_of(&other) != recipe_of(&cfg) {
            bail!(
                "jobs {} and {} differ in their model or inference: not one configuration",
                first.job_id,
                row.job_id
            );
        }
    }
    Ok(cfg)
}

/// A job's final checkpoint.
pub fn final_checkpoint(row: &JobRow) -> Result<Checkpoint> {
    let Some(dir) = &row.artifact_dir else {
        bail!("job {} ({}) has no artifact folder", row.job_id, row.label);
    };
    let path = Path::new(dir).join(FINAL_FILE);
    if !path.exists() {
        bail!(
            "job {} ({}): no final checkpoint at {} (is its runs folder on this machine?)",
            row.job_id,
            row.label,
            path.display()
        );
    }
    Checkpoint::load(&path)
}

/// The networks' tensors under MMSegmentation's keys (what a package stores).
pub fn mmseg_tensors(ck: &Checkpoint) -> Vec<NamedTensor> {
    ck.tensors
        .iter()
        .map(|t| NamedTensor {
            key: mmseg_key(&t.path),
            shape: t.shape.clone(),
            data: t.data.clone(),
        })
        .collect()
}

/// The data set's description, when its folder is on this machine (palette, licence).
pub fn describe_data(cfg: &JobConfig) -> Option<DataSet> {
    DataSet::describe(&cfg.data.root).ok()
}

impl Trained {
    /// The final checkpoints of `rows` (one configuration: the same model and recipe).
    pub fn from_jobs(rows: &[JobRow], device: &Device) -> Result<Trained> {
        let cfg = one_configuration(rows)?;
        let first = &rows[0];
        let mut networks = Vec::with_capacity(rows.len());
        for row in rows {
            let ck = final_checkpoint(row)?;
            let what = format!("job {} ({})", row.job_id, row.label);
            networks.push(load_network(&cfg.model, &ck.tensors, device, &what)?);
        }
        let data = describe_data(&cfg);
        Ok(Trained {
            name: first.label.clone(),
            origin: Origin::Jobs(rows.iter().map(|r| r.job_id).collect()),
            recipe: recipe_of(&cfg),
            classes: first.classes.clone(),
            palette: data.and_then(|d| d.palette),
            spacing: cfg.data.pixel_spacing,
            model: cfg.model,
            networks,
        })
    }

    /// The networks of a package folder (checksums checked first).
    pub fn from_package(dir: &Path, device: &Device) -> Result<Trained> {
        let meta = Metadata::open(dir)?;
        if meta.inference.mean != sweep_data::MEAN || meta.inference.std != sweep_data::STD {
            bail!(
                "{}: normalisation mean {:?} / std {:?}: this sweep normalises with {:?} / {:?}",
                dir.display(),
                meta.inference.mean,
                meta.inference.std,
                sweep_data::MEAN,
                sweep_data::STD
            );
        }
        let mut networks = Vec::new();
        for file in meta.files("safetensors")? {
            let path = dir.join(file);
            let tensors = safetensors::read(&path)?;
            let entries = by_module_path(&meta.model, &tensors, &path)?;
            let what = path.display().to_string();
            networks.push(load_network(&meta.model, &entries, device, &what)?);
        }
        Ok(Trained {
            name: meta.name.clone(),
            origin: Origin::Package(dir.to_path_buf()),
            model: meta.model,
            recipe: meta.inference,
            classes: meta.classes,
            palette: meta.palette,
            spacing: meta.data.spacing,
            networks,
        })
    }
}

/// A network of `model` with every tensor set from `entries` (our module paths).
fn load_network(
    model: &ModelConfig,
    entries: &[TensorEntry],
    device: &Device,
    what: &str,
) -> Result<Segmentor> {
    let (net, report) = load_tensors(Segmentor::new(model, device), entries, &|_| true, false);
    if !report.missing.is_empty() || !report.mismatched.is_empty() {
        bail!(
            "{what}: the weights do not fit the model (missing: {}; other shape: {})",
            report.missing.join(", "),
            report.mismatched.join(", ")
        );
    }
    Ok(net)
}

/// Tensors under MMSeg keys -> entries under our module paths (the inverse of [`mmseg_key`]).
fn by_module_path(
    model: &ModelConfig,
    tensors: &[NamedTensor],
    file: &Path,
) -> Result<Vec<TensorEntry>> {
    let by_key: HashMap<&str, &NamedTensor> = tensors.iter().map(|t| (t.key.as_str(), t)).collect();
    let mut entries = Vec::new();
    let mut missing = Vec::new();
    let shell = Segmentor::new(model, &Device::libtorch());
    visit_paths(&shell, |path, _| {
        match by_key.get(mmseg_key(path).as_str()) {
            Some(t) => entries.push(TensorEntry {
                path: path.to_string(),
                id: 0,
                shape: t.shape.clone(),
                data: t.data.clone(),
            }),
            None => missing.push(mmseg_key(path)),
        }
    });
    if !missing.is_empty() {
        bail!(
            "{}: no tensor {} (the package's model config needs it)",
            file.display(),
            missing.join(", ")
        );
    }
    Ok(entries)
}

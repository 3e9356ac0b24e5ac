//! `sweep-data`: the data sets a sweep trains on (DME, CHASE_DB1) loaded into memory,
//! MMSegmentation's train transforms (bit-exact with OpenCV) and the prefetching loader. No
//! burn and no libtorch: the orchestrator opens the data sets before it writes anything.
//!
//! Everything random is a pure function of `(seed, iteration)`: a resumed job sees exactly
//! the batches a never-interrupted job would have seen.

pub mod dataset;
pub mod loader;
pub mod pictures;
pub mod transforms;

pub use dataset::{Dataset, Sample};
pub use loader::TrainLoader;

use std::path::PathBuf;

/// MMSeg's `Normalize` mean (RGB order).
pub const MEAN: [f32; 3] = [123.675, 116.28, 103.53];
/// MMSeg's `Normalize` std (RGB order).
pub const STD: [f32; 3] = [58.395, 57.12, 57.375];
/// Label value that the loss and the metric ignore (also the label padding value).
pub const IGNORE: u8 = 255;

/// One training batch: `images` NCHW normalised (3 channels), `labels` N*H*W (255 = ignore).
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub images: Vec<f32>,
    pub labels: Vec<i64>,
    pub n: usize,
    pub h: usize,
    pub w: usize,
}

/// One evaluation image: `image` is the CHW normalised model input after the test Resize
/// (`h` x `w`); `label` has the original label size (`label_h` x `label_w`).
#[derive(Clone, Debug, PartialEq)]
pub struct EvalImage {
    pub name: String,
    pub image: Vec<f32>,
    pub h: usize,
    pub w: usize,
    pub label: Vec<u8>,
    pub label_h: usize,
    pub label_w: usize,
}

/// A data problem; every variant names the file (and the split-file line where relevant).
#[derive(thiserror::Error, Debug)]
pub enum DataError {
    #[error("{what} not found: {path}")]
    Missing { what: &'static str, path: PathBuf },
    #[error("{split_file}:{line}: id {id:?}: {what} not found: {path}")]
    BadId {
        split_file: PathBuf,
        line: usize,
        id: String,
        what: &'static str,
        path: PathBuf,
    },
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot decode image: {source}")]
    Decode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("{image} is {image_w}x{image_h} but its mask {mask} is {mask_w}x{mask_h}")]
    SizeMismatch {
        image: PathBuf,
        image_w: usize,
        image_h: usize,
        mask: PathBuf,
        mask_w: usize,
        mask_h: usize,
    },
    #[error("{path}: mask value {value} at (x {x}, y {y}) is outside the {num_classes} classes (and not 255 = ignore)")]
    BadLabel {
        path: PathBuf,
        value: u8,
        x: usize,
        y: usize,
        num_classes: usize,
    },
    #[error("{path}: the {split} split is empty")]
    EmptySplit { split: &'static str, path: PathBuf },
    #[error("{path}: {message}")]
    BadSplit { path: PathBuf, message: String },
    #[error("data loader for {root} stopped: {message}")]
    LoaderStopped { root: PathBuf, message: String },
}

/// Opens every distinct data set `jobs` train on, so missing or corrupt files are reported
/// (with their path) before anything is written to the database.
pub fn check_datasets(jobs: &[sweep_core::sweepfile::PlannedJob]) -> anyhow::Result<()> {
    use anyhow::Context;
    use sweep_core::job::Backbone;
    let mut seen: Vec<&sweep_core::job::DataConfig> = Vec::new();
    for job in jobs
        .iter()
        .filter(|j| j.config.model.backbone != Backbone::Noop)
    {
        if seen.contains(&&job.config.data) {
            continue;
        }
        seen.push(&job.config.data);
        Dataset::open(&job.config.data)
            .with_context(|| format!("job {} ({}): data set", job.hash, job.label))?;
    }
    Ok(())
}

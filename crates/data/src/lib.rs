//! `sweep-data`: the data sets a sweep trains on (any folder `sweep_core::dataset`
//! describes: nnU-Net v2, MMSegmentation layouts, the shipped DME and CHASE_DB1) loaded into memory,
//! MMSegmentation's train transforms (bit-exact with OpenCV) and the prefetching loader. No
//! burn and no libtorch: the orchestrator opens the data sets before it writes anything.
//!
//! Everything random is a pure function of `(seed, iteration)`: a resumed job sees exactly
//! the batches a never-interrupted job would have seen.

pub mod bench;
pub mod cases;
pub mod check;
pub mod dataset;
pub mod evaluate;
pub mod loader;
mod parallel;
pub mod pictures;
pub mod samples;
pub mod synthetic;
pub mod transforms;

pub use cases::Sample;
pub use dataset::Dataset;
pub use loader::TrainLoader;
pub use samples::Samples;

use std::path::PathBuf;

/// MMSeg's `Normalize` mean (RGB order).
pub const MEAN: [f32; 3] = [123.675, 116.28, 103.53];
/// MMSeg's `Normalize` std (RGB order).
pub const STD: [f32; 3] = [58.395, 57.12, 57.375];
/// Label value that the loss and the metric ignore (also the label padding value).
pub const IGNORE: u8 = sweep_core::dataset::IGNORE;

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
    #[error("{path}: values {values}, the data set declares {declared}; {hint}")]
    Undeclared {
        path: PathBuf,
        values: String,
        declared: String,
        hint: String,
    },
    #[error("{path}: {count} channel files: sweep trains on 1 channel (grayscale) or 3 (RGB, or three grayscale files)")]
    Channels { path: PathBuf, count: usize },
    #[error(transparent)]
    DataSet(#[from] sweep_core::dataset::DataSetError),
    #[error("data loader for {root} stopped: {message}")]
    LoaderStopped { root: PathBuf, message: String },
}

/// Opens every distinct data set `jobs` train on, so missing or corrupt files are reported
/// (with their path) before anything is written to the database. Returns each one's
/// [`Dataset::fingerprint`], to compare with what finished jobs were trained on.
pub fn check_datasets(
    jobs: &[sweep_core::sweepfile::PlannedJob],
) -> anyhow::Result<Vec<(sweep_core::job::DataConfig, String)>> {
    use anyhow::Context;
    let mut seen: Vec<&sweep_core::job::DataConfig> = Vec::new();
    let mut fingerprints = Vec::new();
    // A command job's program reads its own data.
    for (job, config) in jobs.iter().filter_map(|j| Some((j, j.config.train()?))) {
        if seen.contains(&&config.data) {
            continue;
        }
        seen.push(&config.data);
        let context = || format!("job {} ({}): data set", job.hash, job.label);
        let ds = Dataset::open(&config.data).with_context(context)?;
        // A split too large for memory was not decoded by `open`: read every file now.
        if ds.train.loaded().is_none() {
            let report = check::check(&config.data.root).with_context(context)?;
            if !report.passed() {
                anyhow::bail!(
                    "{}: {} ({} problem(s); `sweep data check {}` lists them)",
                    context(),
                    report.problems[0],
                    report.problems.len(),
                    config.data.root.display()
                );
            }
        }
        if ds.num_classes != config.model.num_classes {
            anyhow::bail!(
                "{}: model.num_classes is {} but the data set {} has {} classes ({})",
                context(),
                config.model.num_classes,
                config.data.root.display(),
                ds.num_classes,
                ds.classes.join(", ")
            );
        }
        fingerprints.push((config.data.clone(), ds.fingerprint().with_context(context)?));
    }
    Ok(fingerprints)
}

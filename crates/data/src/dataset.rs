//! Loading a data set's split into memory: the cases `sweep_core::dataset` describes and
//! selects, decoded and checked (sizes agree, every label value a declared class).

use super::cases::{case_digest, load_sample, LabelReader, Sample};
use super::samples::{Samples, MEMORY_BUDGET};
use super::transforms::{normalize_chw, resize_bilinear, scale_keep_ratio};
use super::{DataError, EvalImage};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use sweep_core::dataset::{Case, DataSet};
use sweep_core::job::DataConfig;

/// A data set's split: its train and val samples, in memory when they fit.
#[derive(Debug)]
pub struct Dataset {
    pub config: DataConfig,
    pub num_classes: usize,
    /// Class names by id, as the data set's description gives them.
    pub classes: Vec<String>,
    pub train: Samples,
    pub val: Samples,
    /// The train cases, in order (their files are what [`Dataset::fingerprint`] hashes).
    pub train_cases: Vec<Case>,
    pub val_cases: Vec<Case>,
}

impl Dataset {
    /// Opens the split named by `cfg` (train and val): decoded into memory when it fits in
    /// [`MEMORY_BUDGET`], else read from disk sample by sample.
    pub fn open(cfg: &DataConfig) -> Result<Dataset, DataError> {
        Self::open_within(cfg, MEMORY_BUDGET)
    }

    /// [`Dataset::open`] with another memory budget (bytes of decoded images and labels).
    pub fn open_within(cfg: &DataConfig, memory_budget: usize) -> Result<Dataset, DataError> {
        let data_set = DataSet::describe(&cfg.root)?;
        data_set.ensure_valid()?;
        let selection = data_set.select(&cfg.split)?;
        let (mut train, mut val) = (selection.train, selection.val);
        train.truncate(cfg.limit_train.unwrap_or(usize::MAX));
        val.truncate(cfg.limit_val.unwrap_or(usize::MAX));
        let labels = Arc::new(LabelReader::new(&data_set));
        // One decoded sample says how large the rest are (within a set, sizes rarely vary much).
        let first = load_sample(train[0], &labels)?;
        let per_sample = first.image.len() + first.label.len();
        let keep = per_sample.saturating_mul(train.len() + val.len()) <= memory_budget;
        let owned = |v: &[&Case]| v.iter().map(|c| (*c).clone()).collect::<Vec<_>>();
        let (train_cases, val_cases) = (owned(&train), owned(&val));
        let samples = |v: Vec<&Case>| -> Result<Samples, DataError> {
            if keep {
                let decoded = v.into_iter().map(|c| load_sample(c, &labels));
                Ok(Samples::in_memory(decoded.collect::<Result<_, _>>()?))
            } else {
                Ok(Samples::on_disk(
                    v.into_iter().cloned().collect(),
                    labels.clone(),
                ))
            }
        };
        Ok(Dataset {
            config: cfg.clone(),
            num_classes: data_set.num_classes(),
            classes: data_set.classes.clone(),
            train: samples(train)?,
            val: samples(val)?,
            train_cases,
            val_cases,
        })
    }

    /// `train:<hex> val:<hex>`: SHA-256 over each split's case ids and file contents, in
    /// order (16 hex digits each): what a result was trained and scored on, recorded with it.
    pub fn fingerprint(&self) -> Result<String, DataError> {
        let split = |cases: &[Case]| -> Result<String, DataError> {
            let mut h = Sha256::new();
            for c in cases {
                h.update(case_digest(c)?);
            }
            Ok(hex::encode(&h.finalize()[..8]))
        };
        Ok(format!(
            "train:{} val:{}",
            split(&self.train_cases)?,
            split(&self.val_cases)?
        ))
    }

    pub fn train_len(&self) -> usize {
        self.train.len()
    }

    pub fn val_len(&self) -> usize {
        self.val.len()
    }

    /// The validation images as MMSeg's test pipeline gives them to the model: Resize
    /// keep-ratio to `data.scale` (bilinear), normalised, CHW; labels at their original size.
    /// One at a time, so that a large split is never all in memory.
    pub fn val_images(&self) -> impl Iterator<Item = Result<EvalImage, DataError>> + '_ {
        self.val.iter().map(|s| s.map(|s| self.eval_image(&s)))
    }

    /// Whether the validation images fit in memory (worth keeping between evaluations).
    pub fn val_in_memory(&self) -> bool {
        self.val.loaded().is_some()
    }

    fn eval_image(&self, s: &Sample) -> EvalImage {
        let (image, h, w) = test_input(&s.image, s.channels, s.w, s.h, self.config.scale);
        EvalImage {
            name: s.name.clone(),
            image,
            h,
            w,
            label: s.label.clone(),
            label_h: s.h,
            label_w: s.w,
        }
    }
}

/// MMSeg's test pipeline on one HWC image (`c` = 1 or 3 channels): Resize keep-ratio to
/// `scale` (bilinear), normalised, CHW with 3 channels; returns `(image, h, w)` after the
/// resize. A job's evaluation and `sweep predict` both prepare their inputs here.
pub fn test_input(
    image: &[u8],
    c: usize,
    w: usize,
    h: usize,
    scale: [usize; 2],
) -> (Vec<f32>, usize, usize) {
    let (rw, rh) = scale_keep_ratio(w, h, scale);
    let resized = resize_bilinear(image, w, h, c, rw, rh);
    (normalize_chw(&resized, c, rw, rh), rh, rw)
}

//! Loading a data set's split into memory: the cases `sweep_core::dataset` describes and
//! selects, decoded and checked (sizes agree, every label value a declared class).

use super::samples::{Samples, MEMORY_BUDGET};
use super::transforms::{normalize_chw, resize_bilinear, scale_keep_ratio};
use super::{DataError, EvalImage};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use sweep_core::dataset::{Case, DataSet};
use sweep_core::job::DataConfig;

/// One decoded image with its label map, as stored in memory (before any transform).
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The case id (`img_20`, `Image_11L`): predictions are written as `{name}.png`.
    pub name: String,
    /// HWC, `channels` (1 or 3) interleaved, RGB order. Grayscale stays 1 channel in memory
    /// and becomes 3 equal channels at normalisation (what MMSeg's colour loading does).
    pub image: Vec<u8>,
    pub channels: usize,
    /// H*W class indices (255 = ignore).
    pub label: Vec<u8>,
    pub h: usize,
    pub w: usize,
}

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

/// One image file as HWC bytes: `(pixels, channels (1 or 3), h, w)`. Grayscale stays one
/// channel; colour (with or without alpha) becomes RGB. For images outside a data set
/// (`sweep predict`).
pub fn read_image(path: &Path) -> Result<(Vec<u8>, usize, usize, usize), DataError> {
    let img = decode(path, "image")?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    Ok(if img.color().has_color() {
        (img.into_rgb8().into_raw(), 3, h, w)
    } else {
        (img.into_luma8().into_raw(), 1, h, w)
    })
}

/// Raw label values -> stored labels, with what the errors need to say.
#[derive(Debug)]
pub struct LabelReader {
    table: [Option<u8>; 256],
    num_classes: usize,
    coding: sweep_core::dataset::LabelCoding,
}

impl LabelReader {
    pub fn new(data_set: &DataSet) -> Self {
        LabelReader {
            table: data_set.coding.table(data_set.num_classes()),
            num_classes: data_set.num_classes(),
            coding: data_set.coding.clone(),
        }
    }

    /// Maps `raw` in place; a value the description does not declare fails, naming the
    /// file, every value it holds and what to add.
    pub fn map(&self, raw: &mut [u8], path: &Path) -> Result<(), DataError> {
        let mut seen = [false; 256];
        let mut bad = false;
        for v in raw.iter_mut() {
            seen[usize::from(*v)] = true;
            match self.table[usize::from(*v)] {
                Some(m) => *v = m,
                None => bad = true,
            }
        }
        if !bad {
            return Ok(());
        }
        let values: Vec<u8> = (0..=255u8).filter(|v| seen[usize::from(*v)]).collect();
        let undeclared: Vec<u8> = values
            .iter()
            .copied()
            .filter(|v| self.table[usize::from(*v)].is_none())
            .collect();
        Err(DataError::Undeclared {
            path: path.to_path_buf(),
            values: braces(&values),
            declared: self.declared(),
            hint: self.coding.hint(&undeclared, self.num_classes),
        })
    }

    /// The raw values the description accepts, as `{0, 1}` (ignore noted).
    fn declared(&self) -> String {
        let ok: Vec<u8> = (0..=255u8)
            .filter(|v| self.table[usize::from(*v)].is_some())
            .collect();
        braces(&ok)
    }
}

fn braces(values: &[u8]) -> String {
    let v: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    format!("{{{}}}", v.join(", "))
}

/// SHA-256 over a case's id and the contents of its files (images, then label).
pub(crate) fn case_digest(case: &Case) -> Result<[u8; 32], DataError> {
    let mut h = Sha256::new();
    h.update(case.id.as_bytes());
    for f in case.images.iter().chain([&case.label]) {
        let bytes = std::fs::read(f).map_err(|source| DataError::Io {
            path: f.clone(),
            source,
        })?;
        h.update(Sha256::digest(&bytes));
    }
    Ok(h.finalize().into())
}

pub(crate) fn decode(path: &Path, what: &'static str) -> Result<image::DynamicImage, DataError> {
    let bytes = std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            DataError::Missing {
                what,
                path: path.to_path_buf(),
            }
        } else {
            DataError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    image::load_from_memory(&bytes).map_err(|source| DataError::Decode {
        path: path.to_path_buf(),
        source,
    })
}

/// The case's image, HWC interleaved with 1 or 3 channels: one grayscale or colour file,
/// or one grayscale file per channel (nnU-Net's `_0000`, `_0001`, ...).
pub(crate) fn load_image(case: &Case) -> Result<(Vec<u8>, usize, usize, usize), DataError> {
    let first = decode(&case.images[0], "image")?;
    let (w, h) = (first.width() as usize, first.height() as usize);
    if case.images.len() == 1 {
        return Ok(if first.color().has_color() {
            (first.into_rgb8().into_raw(), 3, h, w)
        } else {
            (first.into_luma8().into_raw(), 1, h, w)
        });
    }
    if case.images.len() != 3 {
        return Err(DataError::Channels {
            path: case.images[0].clone(),
            count: case.images.len(),
        });
    }
    let mut planes = vec![first.into_luma8().into_raw()];
    for p in &case.images[1..] {
        let img = decode(p, "image")?;
        let (cw, ch) = (img.width() as usize, img.height() as usize);
        if (cw, ch) != (w, h) {
            return Err(size_mismatch(&case.images[0], (w, h), p, (cw, ch)));
        }
        planes.push(img.into_luma8().into_raw());
    }
    let hwc = (0..w * h)
        .flat_map(|i| planes.iter().map(move |p| p[i]))
        .collect();
    Ok((hwc, 3, h, w))
}

fn size_mismatch(
    image: &Path,
    (iw, ih): (usize, usize),
    mask: &Path,
    (mw, mh): (usize, usize),
) -> DataError {
    DataError::SizeMismatch {
        image: image.to_path_buf(),
        image_w: iw,
        image_h: ih,
        mask: mask.to_path_buf(),
        mask_w: mw,
        mask_h: mh,
    }
}

/// The case's label map as stored raw values (first channel of a colour file, as MMSeg's
/// CHASE_DB1 converter reads one).
pub(crate) fn load_raw_label(path: &Path) -> Result<(Vec<u8>, usize, usize), DataError> {
    let mask = decode(path, "label")?;
    let (w, h) = (mask.width() as usize, mask.height() as usize);
    let raw = if mask.color().has_color() {
        mask.into_rgb8().into_raw().into_iter().step_by(3).collect()
    } else {
        mask.into_luma8().into_raw()
    };
    Ok((raw, h, w))
}

pub(crate) fn load_sample(case: &Case, labels: &LabelReader) -> Result<Sample, DataError> {
    let (image, channels, h, w) = load_image(case)?;
    let (mut label, mh, mw) = load_raw_label(&case.label)?;
    if (w, h) != (mw, mh) {
        return Err(size_mismatch(
            &case.images[0],
            (w, h),
            &case.label,
            (mw, mh),
        ));
    }
    labels.map(&mut label, &case.label)?;
    Ok(Sample {
        name: case.id.clone(),
        image,
        channels,
        label,
        h,
        w,
    })
}

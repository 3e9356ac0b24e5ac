//! Loading a data set (DME or CHASE_DB1) and its split into memory.
//!
//! The data sets are small (110 and 28 images), so `Dataset::open` decodes every image and
//! mask of the split once and checks them (sizes agree, label values are classes or 255).

use super::transforms::{normalize_chw, resize_bilinear, scale_keep_ratio};
use super::{DataError, EvalImage, IGNORE};
use std::path::{Path, PathBuf};
use sweep_core::job::{DataConfig, DatasetName, FoldBy, SplitConfig};

/// One decoded image with its label map, as stored in memory (before any transform).
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The image's file stem (`img_20`, `Image_11L`): predictions are written as `{name}.png`.
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

/// A data set with its train and val samples loaded into memory.
#[derive(Debug)]
pub struct Dataset {
    pub config: DataConfig,
    pub num_classes: usize,
    pub train: Vec<Sample>,
    pub val: Vec<Sample>,
}

/// How a mask file's pixel values become class indices.
#[derive(Clone, Copy, Debug, PartialEq)]
enum MaskCoding {
    /// Values are class indices already (DME `256/masks`: 0 / 1; 255 = ignore).
    Index,
    /// Binary 0 / 255 masks: `v / 128` (MMSeg's CHASE_DB1 converter; DME `full/masks`).
    Binary255,
}

/// One image / mask file pair of a split, before decoding.
struct Entry {
    name: String,
    image: PathBuf,
    mask: PathBuf,
}

impl Dataset {
    /// Loads the split named by `cfg` (train and val) into memory.
    pub fn open(cfg: &DataConfig) -> Result<Dataset, DataError> {
        let (train, val, coding) = match cfg.dataset {
            DatasetName::Dme => dme_entries(cfg)?,
            DatasetName::ChaseDb1 => chase_entries(cfg)?,
        };
        let num_classes = 2;
        let limit = |mut v: Vec<Entry>, n: Option<usize>| {
            if let Some(n) = n {
                v.truncate(n);
            }
            v
        };
        let train = limit(train, cfg.limit_train);
        let val = limit(val, cfg.limit_val);
        for (split, v) in [("train", &train), ("val", &val)] {
            if v.is_empty() {
                return Err(DataError::EmptySplit {
                    split,
                    path: cfg.root.clone(),
                });
            }
        }
        let load = |v: Vec<Entry>| -> Result<Vec<Sample>, DataError> {
            v.into_iter()
                .map(|e| load_sample(e, coding, num_classes))
                .collect()
        };
        Ok(Dataset {
            config: cfg.clone(),
            num_classes,
            train: load(train)?,
            val: load(val)?,
        })
    }

    pub fn train_len(&self) -> usize {
        self.train.len()
    }

    pub fn val_len(&self) -> usize {
        self.val.len()
    }

    /// The validation images as MMSeg's test pipeline gives them to the model: Resize
    /// keep-ratio to `data.scale` (bilinear), normalised, CHW; labels at their original size.
    pub fn val_images(&self) -> Result<Vec<EvalImage>, DataError> {
        Ok(self
            .val
            .iter()
            .map(|s| {
                let (w, h) = scale_keep_ratio(s.w, s.h, self.config.scale);
                let image = resize_bilinear(&s.image, s.w, s.h, s.channels, w, h);
                EvalImage {
                    name: s.name.clone(),
                    image: normalize_chw(&image, s.channels, w, h),
                    h,
                    w,
                    label: s.label.clone(),
                    label_h: s.h,
                    label_w: s.w,
                }
            })
            .collect())
    }
}

/// The subjects (patients) of a data set, ascending: DME `img_K` belongs to subject
/// `K / 11 + 1`, CHASE_DB1 `Image_NNL/R` to child NN.
pub fn subjects(dataset: DatasetName, root: &Path) -> Result<Vec<u32>, DataError> {
    let mut out: Vec<u32> = match dataset {
        DatasetName::Dme => dme_ids(&dme_layout(root)?.0.join("images"))?
            .iter()
            .map(|k| k / 11 + 1)
            .collect(),
        DatasetName::ChaseDb1 => chase_names(&root.join("images"))?
            .iter()
            .map(|(c, _)| *c)
            .collect(),
    };
    out.dedup(); // the ids come sorted
    Ok(out)
}

/// The val subjects of each of `folds` folds (see [`SplitConfig::Fold`]): the data set's
/// subjects sorted ascending, cut into contiguous groups, the first `n % folds` groups one
/// subject larger (scikit-learn's `KFold` without shuffling).
pub fn cv_folds(dataset: DatasetName, root: &Path, folds: u32) -> Result<Vec<Vec<u32>>, DataError> {
    let subjects = subjects(dataset, root)?;
    kfold(&subjects, folds).map_err(|message| DataError::BadSplit {
        path: root.to_path_buf(),
        message,
    })
}

/// `subjects` (sorted) into `folds` contiguous groups; the message names the field at fault.
fn kfold(subjects: &[u32], folds: u32) -> Result<Vec<Vec<u32>>, String> {
    let n = subjects.len();
    if folds < 2 {
        return Err(format!(
            "data.split.fold.folds: {folds} fold(s): cross-validation needs at least 2"
        ));
    }
    if folds as usize > n {
        return Err(format!(
            "data.split.fold.folds: {folds} folds but the data set has {n} subjects (each fold validates on at least one)"
        ));
    }
    let (k, extra) = (folds as usize, n % folds as usize);
    let mut start = 0;
    Ok((0..k)
        .map(|i| {
            let len = n / k + usize::from(i < extra);
            start += len;
            subjects[start - len..start].to_vec()
        })
        .collect())
}

/// The (train, val) subjects of a subject-level split, checked against `subjects` (all
/// of the data set's, sorted); `path` is what errors name.
fn subject_split(
    split: &SplitConfig,
    subjects: &[u32],
    path: &Path,
) -> Result<(Vec<u32>, Vec<u32>), DataError> {
    let bad = |message: String| DataError::BadSplit {
        path: path.to_path_buf(),
        message,
    };
    match split {
        SplitConfig::Study => Err(bad("the study split is not a subject split".into())),
        SplitConfig::Subjects { train, val } => {
            check_disjoint(train, val, path)?;
            Ok((train.clone(), val.clone()))
        }
        // Subjects are the only grouping; another would need its own assignment here.
        SplitConfig::Fold {
            folds,
            fold,
            by: FoldBy::Subject,
        } => {
            let groups = kfold(subjects, *folds).map_err(bad)?;
            let Some(val) = groups.get(*fold as usize) else {
                return Err(bad(format!(
                    "data.split.fold.fold: {fold} is not one of the {folds} folds (numbered from 0 to {})",
                    folds - 1
                )));
            };
            let train = subjects.iter().filter(|s| !val.contains(*s)).copied();
            Ok((train.collect(), val.clone()))
        }
    }
}

/// Where the DME images are: (image/mask folder, mask coding, split-file folder).
/// `{root}/256/{images,masks}` (what the study trained on), or the full-size `{root}/full`
/// when `root` itself holds `images/` and `masks/`; split files in `{root}/splits` or the
/// parent's `splits`.
fn dme_layout(root: &Path) -> Result<(PathBuf, MaskCoding, PathBuf), DataError> {
    if root.join("256").join("images").is_dir() {
        return Ok((root.join("256"), MaskCoding::Index, root.join("splits")));
    }
    if root.join("images").is_dir() && root.join("masks").is_dir() {
        let splits = if root.join("splits").is_dir() {
            root.join("splits")
        } else {
            root.parent().unwrap_or(Path::new(".")).join("splits")
        };
        return Ok((root.to_path_buf(), MaskCoding::Binary255, splits));
    }
    Err(DataError::Missing {
        what: "DME image folder",
        path: root.join("256").join("images"),
    })
}

/// The `K` of every `img_K.png` in `images`, ascending.
fn dme_ids(images: &Path) -> Result<Vec<u32>, DataError> {
    let mut ks: Vec<u32> = list_dir(images)?
        .iter()
        .filter_map(|f| f.strip_prefix("img_")?.strip_suffix(".png")?.parse().ok())
        .collect();
    ks.sort_unstable();
    Ok(ks)
}

/// DME: the study's split files, or a subject split over the images found (see
/// [`dme_layout`] for the folders).
fn dme_entries(cfg: &DataConfig) -> Result<(Vec<Entry>, Vec<Entry>, MaskCoding), DataError> {
    let (dir, coding, splits) = dme_layout(&cfg.root)?;
    let entry = |id: &str| Entry {
        name: id.to_string(),
        image: dir.join("images").join(format!("{id}.png")),
        mask: dir.join("masks").join(format!("{id}.png")),
    };
    if cfg.split == SplitConfig::Study {
        let train = dme_split_file(&splits.join("train.txt"), &entry)?;
        let val = dme_split_file(&splits.join("val.txt"), &entry)?;
        return Ok((train, val, coding));
    }
    let images = dir.join("images");
    // img_K belongs to subject K / 11 + 1; ordered by K.
    let ks = dme_ids(&images)?;
    let mut all: Vec<u32> = ks.iter().map(|k| k / 11 + 1).collect();
    all.dedup();
    let (train, val) = subject_split(&cfg.split, &all, &images)?;
    let pick = |subjects: &[u32]| {
        ks.iter()
            .filter(|k| subjects.contains(&(*k / 11 + 1)))
            .map(|k| entry(&format!("img_{k}")))
            .collect::<Vec<_>>()
    };
    Ok((pick(&train), pick(&val), coding))
}

/// The entries a DME split file names, each checked to exist (errors name file and line).
fn dme_split_file(file: &Path, entry: &dyn Fn(&str) -> Entry) -> Result<Vec<Entry>, DataError> {
    read_split_file(file)?
        .into_iter()
        .map(|(line, id)| {
            let e = entry(&id);
            for (what, path) in [("image", &e.image), ("mask", &e.mask)] {
                if !path.is_file() {
                    return Err(DataError::BadId {
                        split_file: file.to_path_buf(),
                        line,
                        id: id.clone(),
                        what,
                        path: path.clone(),
                    });
                }
            }
            Ok(e)
        })
        .collect()
}

/// CHASE_DB1 `(child, stem)` of every `Image_NNX.jpg` in `images`, sorted.
fn chase_names(images: &Path) -> Result<Vec<(u32, String)>, DataError> {
    let mut names: Vec<(u32, String)> = list_dir(images)?
        .into_iter()
        .filter_map(|f| {
            let stem = f.strip_suffix(".jpg")?;
            let child: u32 = stem.strip_prefix("Image_")?.get(..2)?.parse().ok()?;
            Some((child, stem.to_string()))
        })
        .collect();
    names.sort();
    Ok(names)
}

/// CHASE_DB1: `{root}/images/Image_NNX.jpg` + `{root}/1st_manual/Image_NNX_1stHO.png`.
/// Study split: children 01-10 train, 11-14 val (MMSeg: first 20 / last 8 images).
fn chase_entries(cfg: &DataConfig) -> Result<(Vec<Entry>, Vec<Entry>, MaskCoding), DataError> {
    let images = cfg.root.join("images");
    let names = chase_names(&images)?;
    let (train_children, val_children): (Vec<u32>, Vec<u32>) = match &cfg.split {
        SplitConfig::Study => ((1..=10).collect(), (11..=14).collect()),
        split => {
            let mut all: Vec<u32> = names.iter().map(|(c, _)| *c).collect();
            all.dedup();
            subject_split(split, &all, &images)?
        }
    };
    let pick = |children: &[u32]| {
        names
            .iter()
            .filter(|(c, _)| children.contains(c))
            .map(|(_, stem)| Entry {
                name: stem.clone(),
                image: images.join(format!("{stem}.jpg")),
                mask: cfg
                    .root
                    .join("1st_manual")
                    .join(format!("{stem}_1stHO.png")),
            })
            .collect::<Vec<_>>()
    };
    Ok((
        pick(&train_children),
        pick(&val_children),
        MaskCoding::Binary255,
    ))
}

fn check_disjoint(train: &[u32], val: &[u32], path: &Path) -> Result<(), DataError> {
    if let Some(s) = train.iter().find(|s| val.contains(s)) {
        return Err(DataError::BadSplit {
            path: path.to_path_buf(),
            message: format!("subject {s} is in both the train and the val split"),
        });
    }
    Ok(())
}

fn list_dir(dir: &Path) -> Result<Vec<String>, DataError> {
    let rd = std::fs::read_dir(dir).map_err(|source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|source| DataError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        if let Some(n) = e.file_name().to_str() {
            out.push(n.to_string());
        }
    }
    Ok(out)
}

/// Ids of a split file, one a line (blank lines skipped, no trailing newline needed),
/// with their 1-based line numbers.
fn read_split_file(file: &Path) -> Result<Vec<(usize, String)>, DataError> {
    let text = std::fs::read_to_string(file).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            return DataError::Missing {
                what: "split file",
                path: file.to_path_buf(),
            };
        }
        DataError::Io {
            path: file.to_path_buf(),
            source,
        }
    })?;
    let ids: Vec<(usize, String)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim().to_string()))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    if ids.is_empty() {
        let split = if file.file_stem().is_some_and(|s| s == "train") {
            "train"
        } else {
            "val"
        };
        return Err(DataError::EmptySplit {
            split,
            path: file.to_path_buf(),
        });
    }
    Ok(ids)
}

fn decode(path: &Path, what: &'static str) -> Result<image::DynamicImage, DataError> {
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

fn load_sample(e: Entry, coding: MaskCoding, num_classes: usize) -> Result<Sample, DataError> {
    let img = decode(&e.image, "image")?;
    let mask = decode(&e.mask, "mask")?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (mw, mh) = (mask.width() as usize, mask.height() as usize);
    if (w, h) != (mw, mh) {
        return Err(DataError::SizeMismatch {
            image: e.image,
            image_w: w,
            image_h: h,
            mask: e.mask,
            mask_w: mw,
            mask_h: mh,
        });
    }
    let gray = !img.color().has_color();
    let (image, channels) = if gray {
        (img.into_luma8().into_raw(), 1)
    } else {
        (img.into_rgb8().into_raw(), 3)
    };
    // A colour mask (some tools save label maps as RGB) is read by its first channel, as
    // MMSeg's CHASE_DB1 converter does (`img[:, :, 0] // 128`).
    let raw = if mask.color().has_color() {
        mask.into_rgb8().into_raw().into_iter().step_by(3).collect()
    } else {
        mask.into_luma8().into_raw()
    };
    let label: Vec<u8> = match coding {
        MaskCoding::Index => raw,
        MaskCoding::Binary255 => raw.into_iter().map(|v| v / 128).collect(),
    };
    if let Some(i) = label
        .iter()
        .position(|&v| v != IGNORE && usize::from(v) >= num_classes)
    {
        return Err(DataError::BadLabel {
            path: e.mask,
            value: label[i],
            x: i % w,
            y: i / w,
            num_classes,
        });
    }
    Ok(Sample {
        name: e.name,
        image,
        channels,
        label,
        h,
        w,
    })
}

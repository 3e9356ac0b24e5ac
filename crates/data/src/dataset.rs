//! Loading a data set (DME or CHASE_DB1) and its split into memory.
//!
//! The data sets are small (110 and 28 images), so `Dataset::open` decodes every image and
//! mask of the split once and checks them (sizes agree, label values are classes or 255).

use super::transforms::{normalize_chw, resize_bilinear, scale_keep_ratio};
use super::{DataError, EvalImage, IGNORE};
use std::path::{Path, PathBuf};
use sweep_core::job::{DataConfig, DatasetName, SplitConfig};

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

/// DME: `{root}/256/{images,masks}/img_K.png` (what the study trained on), or the full-size
/// `{root}/full/...` when `root` itself is the `full` folder (or any folder holding
/// `images/` and `masks/`); split files in `{root}/splits` or the parent's `splits`.
fn dme_entries(cfg: &DataConfig) -> Result<(Vec<Entry>, Vec<Entry>, MaskCoding), DataError> {
    let root = &cfg.root;
    let (dir, coding, splits) = if root.join("256").join("images").is_dir() {
        (root.join("256"), MaskCoding::Index, root.join("splits"))
    } else if root.join("images").is_dir() && root.join("masks").is_dir() {
        let splits = if root.join("splits").is_dir() {
            root.join("splits")
        } else {
            root.parent().unwrap_or(Path::new(".")).join("splits")
        };
        (root.clone(), MaskCoding::Binary255, splits)
    } else {
        return Err(DataError::Missing {
            what: "DME image folder",
            path: root.join("256").join("images"),
        });
    };
    let entry = |id: &str| Entry {
        name: id.to_string(),
        image: dir.join("images").join(format!("{id}.png")),
        mask: dir.join("masks").join(format!("{id}.png")),
    };
    match &cfg.split {
        SplitConfig::Study => {
            let read = |file: PathBuf| -> Result<Vec<Entry>, DataError> {
                let ids = read_split_file(&file)?;
                ids.into_iter()
                    .map(|(line, id)| {
                        let e = entry(&id);
                        for (what, path) in [("image", &e.image), ("mask", &e.mask)] {
                            if !path.is_file() {
                                return Err(DataError::BadId {
                                    split_file: file.clone(),
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
            };
            Ok((
                read(splits.join("train.txt"))?,
                read(splits.join("val.txt"))?,
                coding,
            ))
        }
        SplitConfig::Subjects { train, val } => {
            let images = dir.join("images");
            check_disjoint(train, val, &images)?;
            // img_K belongs to subject K / 11 + 1; ordered by K.
            let mut ks: Vec<u32> = list_dir(&images)?
                .iter()
                .filter_map(|f| f.strip_prefix("img_")?.strip_suffix(".png")?.parse().ok())
                .collect();
            ks.sort_unstable();
            let pick = |subjects: &[u32]| {
                ks.iter()
                    .filter(|k| subjects.contains(&(*k / 11 + 1)))
                    .map(|k| entry(&format!("img_{k}")))
                    .collect::<Vec<_>>()
            };
            Ok((pick(train), pick(val), coding))
        }
    }
}

/// CHASE_DB1: `{root}/images/Image_NNX.jpg` + `{root}/1st_manual/Image_NNX_1stHO.png`.
/// Study split: children 01-10 train, 11-14 val (MMSeg: first 20 / last 8 images).
fn chase_entries(cfg: &DataConfig) -> Result<(Vec<Entry>, Vec<Entry>, MaskCoding), DataError> {
    let images = cfg.root.join("images");
    let mut names: Vec<(u32, String)> = list_dir(&images)?
        .into_iter()
        .filter_map(|f| {
            let stem = f.strip_suffix(".jpg")?;
            let child: u32 = stem.strip_prefix("Image_")?.get(..2)?.parse().ok()?;
            Some((child, stem.to_string()))
        })
        .collect();
    names.sort();
    let (train_children, val_children): (Vec<u32>, Vec<u32>) = match &cfg.split {
        SplitConfig::Study => ((1..=10).collect(), (11..=14).collect()),
        SplitConfig::Subjects { train, val } => {
            check_disjoint(train, val, &images)?;
            (train.clone(), val.clone())
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

//! One case's files, read and checked: its image (grayscale or RGB), its label map through
//! the data set's label coding (every value a declared class), the digest of both, and the
//! decoded [`Sample`] they make. The data set ([`crate::dataset`]), the samples read on demand
//! ([`crate::samples`]), `sweep data check` and `sweep evaluate` all read files here.

use super::DataError;
use sha2::{Digest, Sha256};
use std::path::Path;
use sweep_core::dataset::{Case, DataSet};

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

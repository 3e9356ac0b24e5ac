//! `sweep evaluate`'s scoring: a folder of another program's predictions (one grayscale label
//! image of class ids per case, `{case}.png`, `.bmp` or `.tif`, as nnU-Net and MMSegmentation
//! write them) against the labels of a split's validation cases, with the trainer's
//! arithmetic: IoUMetric areas summed over the set, and per image the counts, Dice, HD95,
//! ASSD and the empty-mask policy ([`image_metrics`]).
//!
//! Every file is read and checked before anything is recorded; all problems (a case without
//! a prediction, another size, a value that is no class id, a file that does not decode)
//! make one error, each line naming its file. Other files in the folder are listed, not
//! scored.

use crate::cases::{case_digest, load_raw_label, LabelReader};
use anyhow::{bail, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use sweep_core::dataset::{Case, DataSet};
use sweep_core::job::SplitConfig;
use sweep_core::metrics::per_image::{image_metrics, image_summaries, DistanceScale};
use sweep_core::metrics::Metrics;
use sweep_core::protocol::{ImageMetric, MetricValue};

/// The endings a prediction may have (lossless formats only).
pub const PREDICTION_ENDINGS: [&str; 4] = ["png", "bmp", "tif", "tiff"];
/// Problems listed in the error before "... and N more".
const PROBLEMS_SHOWN: usize = 12;

/// A folder of predictions, scored.
#[derive(Clone, Debug)]
pub struct Scored {
    /// The set's areas (the leaderboard's mDice, mIoU, ...).
    pub metrics: Metrics,
    /// Every case's per-class rows (split `val`).
    pub images: Vec<ImageMetric>,
    pub cases: usize,
    /// SHA-256 over the scored files (case ids and contents), 16 hex digits.
    pub content: String,
    /// SHA-256 over the validation cases' files, 16 hex digits (a job's `val:` fingerprint).
    pub val_fingerprint: String,
    /// Files of the folder that are not the prediction of a case of the split.
    pub not_scored: Vec<String>,
}

impl Scored {
    /// The numbers recorded for the row, as a trained job records its own: the IoUMetric
    /// values, then the per-image summaries (imgDice, HD95, ASSD per foreground class).
    pub fn values(&self) -> Vec<MetricValue> {
        let mut values = self.metrics.to_values("val");
        values.extend(image_summaries("val", &self.images));
        values
    }
}

/// One case scored: its areas, its rows, and the digests of both sides.
struct CaseScore {
    metrics: Metrics,
    images: Vec<ImageMetric>,
    prediction: [u8; 32],
    case: [u8; 32],
}

/// Scores the predictions in `folder` against the validation cases `split` selects from
/// `data_set` (described and valid); distances by `scale`.
pub fn score_folder(
    data_set: &DataSet,
    split: &SplitConfig,
    folder: &Path,
    scale: DistanceScale,
) -> Result<Scored> {
    let val = data_set.select(split)?.val;
    let listing = list_predictions(folder, &val)?;
    let labels = LabelReader::new(data_set);
    let scored = crate::parallel::map_indexed(val.len(), "score", |i| {
        let path = listing.found.get(&val[i].id).ok_or(None)?;
        score_case(val[i], path, &labels, data_set, scale).map_err(Some)
    });
    let mut problems = listing.problems;
    problems.extend(
        scored
            .iter()
            .filter_map(|r| r.as_ref().err().cloned().flatten()),
    );
    if !problems.is_empty() {
        bail!("{}", problem_message(folder, &problems));
    }
    let mut out = Scored {
        metrics: Metrics::new(data_set.num_classes()),
        images: Vec::new(),
        cases: val.len(),
        content: String::new(),
        val_fingerprint: String::new(),
        not_scored: listing.others,
    };
    let (mut content, mut cases) = (Sha256::new(), Sha256::new());
    for (case, s) in val.iter().zip(scored.into_iter().flatten()) {
        out.metrics.merge(&s.metrics);
        out.images.extend(s.images);
        content.update(case.id.as_bytes());
        content.update(s.prediction);
        cases.update(s.case);
    }
    out.content = hex::encode(&content.finalize()[..8]);
    out.val_fingerprint = hex::encode(&cases.finalize()[..8]);
    Ok(out)
}

/// The folder's files: the prediction of each case found, problems with names, the rest.
struct Listing {
    found: BTreeMap<String, PathBuf>,
    problems: Vec<String>,
    others: Vec<String>,
}

fn list_predictions(folder: &Path, val: &[&Case]) -> Result<Listing> {
    if !folder.is_dir() {
        bail!("{}: not a folder of predictions", folder.display());
    }
    let rd = std::fs::read_dir(folder)
        .map_err(|e| anyhow::anyhow!("{}: cannot list the folder: {e}", folder.display()))?;
    let mut names: Vec<String> = Vec::new();
    for e in rd {
        let e =
            e.map_err(|e| anyhow::anyhow!("{}: cannot list the folder: {e}", folder.display()))?;
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    names.sort_by(|a, b| sweep_core::dataset::natural_cmp(a, b));
    let wanted: std::collections::HashSet<&str> = val.iter().map(|c| c.id.as_str()).collect();
    let mut listing = Listing {
        found: BTreeMap::new(),
        problems: Vec::new(),
        others: Vec::new(),
    };
    for name in names {
        let case = name.rsplit_once('.').filter(|(stem, ext)| {
            wanted.contains(stem) && PREDICTION_ENDINGS.contains(&ext.to_ascii_lowercase().as_str())
        });
        let Some((stem, _)) = case else {
            listing.others.push(name);
            continue;
        };
        let path = folder.join(&name);
        if let Some(first) = listing.found.get(stem) {
            listing.problems.push(format!(
                "{}: a second prediction of case {stem} beside {}: keep one",
                path.display(),
                first.display()
            ));
            continue;
        }
        listing.found.insert(stem.to_string(), path);
    }
    let missing: Vec<&str> = val
        .iter()
        .map(|c| c.id.as_str())
        .filter(|id| !listing.found.contains_key(*id))
        .collect();
    if !missing.is_empty() {
        listing.problems.insert(
            0,
            missing_message(folder, &missing, val.len(), &listing.others),
        );
    }
    Ok(listing)
}

fn missing_message(folder: &Path, missing: &[&str], of: usize, others: &[String]) -> String {
    let shown: Vec<String> = missing
        .iter()
        .take(5)
        .map(|id| folder.join(format!("{id}.png")).display().to_string())
        .collect();
    let more = if missing.len() > 5 { ", ..." } else { "" };
    let mut m = format!(
        "{}: no prediction for {} of the split's {of} case(s): expected {}{more}",
        folder.display(),
        missing.len(),
        shown.join(", ")
    );
    if let Some(other) = others.first() {
        m += &format!(
            " (the folder holds {} other file(s), e.g. {other}: a prediction is named {{case}}.png, .bmp or .tif)",
            others.len()
        );
    }
    m
}

fn problem_message(folder: &Path, problems: &[String]) -> String {
    if let [one] = problems {
        return format!("{one}; nothing was recorded");
    }
    let mut m = format!(
        "{} problems with the predictions in {}; nothing was recorded:",
        problems.len(),
        folder.display()
    );
    for p in problems.iter().take(PROBLEMS_SHOWN) {
        m += &format!("\n  {p}");
    }
    if problems.len() > PROBLEMS_SHOWN {
        m += &format!("\n  ... and {} more", problems.len() - PROBLEMS_SHOWN);
    }
    m
}

/// One case: its label (mapped to class ids), its prediction, both digests, its rows.
fn score_case(
    case: &Case,
    path: &Path,
    labels: &LabelReader,
    data_set: &DataSet,
    scale: DistanceScale,
) -> Result<CaseScore, String> {
    let (mut label, h, w) = load_raw_label(&case.label).map_err(|e| e.to_string())?;
    labels
        .map(&mut label, &case.label)
        .map_err(|e| e.to_string())?;
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let (pred, pw, ph) = class_ids(&bytes, path, data_set)?;
    if (pw, ph) != (w, h) {
        return Err(format!(
            "{} is {pw}x{ph}, but the label of case {} ({}) is {w}x{h}",
            path.display(),
            case.id,
            case.label.display()
        ));
    }
    let n = data_set.num_classes();
    let mut metrics = Metrics::new(n);
    metrics.add(&pred, &label);
    Ok(CaseScore {
        metrics,
        images: image_metrics("val", &case.id, &pred, &label, (w, h), n, scale),
        prediction: Sha256::digest(&bytes).into(),
        case: case_digest(case).map_err(|e| e.to_string())?,
    })
}

/// The class ids of a prediction file, `(ids, w, h)`: one grayscale channel (8 or 16 bit;
/// a colour file whose channels are equal, as 8-bit BMPs decode, reads as one), every
/// value a class id of the data set.
fn class_ids(
    bytes: &[u8],
    path: &Path,
    data_set: &DataSet,
) -> Result<(Vec<u8>, usize, usize), String> {
    use image::DynamicImage as D;
    let img = image::load_from_memory(bytes)
        .map_err(|e| format!("{}: cannot decode as an image: {e}", path.display()))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let colour = img.color();
    let values: Vec<u16> = match img {
        D::ImageLuma8(g) => g.into_raw().into_iter().map(u16::from).collect(),
        D::ImageLuma16(g) => g.into_raw(),
        D::ImageRgb8(g) if g.pixels().all(|p| p[0] == p[1] && p[1] == p[2]) => {
            g.pixels().map(|p| u16::from(p[0])).collect()
        }
        _ => {
            return Err(format!(
                "{}: a {colour:?} image; a prediction is one grayscale channel of class ids \
                 (a palette PNG reads as its colours)",
                path.display()
            ))
        }
    };
    let n = data_set.num_classes();
    if values.iter().any(|&v| usize::from(v) >= n) {
        return Err(not_class_ids(path, &values, data_set));
    }
    Ok((values.into_iter().map(|v| v as u8).collect(), w, h))
}

fn not_class_ids(path: &Path, values: &[u16], data_set: &DataSet) -> String {
    let n = data_set.num_classes();
    let seen: std::collections::BTreeSet<u16> = values.iter().copied().collect();
    let values: Vec<String> = seen.iter().take(10).map(|v| v.to_string()).collect();
    let more = if seen.len() > 10 { ", ..." } else { "" };
    let table = data_set.coding.table(n);
    let raw = seen
        .iter()
        .all(|&v| v < 256 && table[usize::from(v)].is_some_and(|c| usize::from(c) < n));
    let hint = if raw {
        "; these are the data set's raw label values: write class ids (its label_values map them)"
    } else {
        ""
    };
    format!(
        "{}: values {{{}{more}}}, but the class ids of {} are 0 to {} ({}){hint}",
        path.display(),
        values.join(", "),
        data_set.name,
        n - 1,
        data_set.classes.join(", ")
    )
}

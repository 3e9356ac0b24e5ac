//! nnU-Net v2 raw folders, read as nnU-Net's `documentation/dataset_format.md` lays them out:
//! `dataset.json` (`channel_names`, `labels`, `numTraining`, `file_ending`),
//! `imagesTr/{case}_{XXXX}{ending}` (one file per channel, or one RGB file for three),
//! `labelsTr/{case}{ending}`, optional `imagesTs/`, optional `splits_final.json`.

use super::fields::Fields;
use super::files::{folder_name, list_files, lossless};
use super::labels::LabelCoding;
use super::order::natural_cmp;
use super::settings::Settings;
use super::{Case, DataSet, DataSetError, Layout, OwnSplit, Unlabelled};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub(super) fn describe(root: &Path, file: &Path) -> Result<DataSet, DataSetError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| DataSetError::new(file, format!("cannot read: {e}")))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| DataSetError::new(file, format!("not valid JSON: {e}")))?;
    let f = Fields::new(file, "", &json)?;
    // `modality` is nnU-Net v1's name for `channel_names`.
    let channels: BTreeMap<String, String> = match f.optional("channel_names")? {
        Some(c) => c,
        None => f
            .optional("modality")?
            .ok_or_else(|| DataSetError::new(file, "the key `channel_names` is missing"))?,
    };
    let channels = channel_list(&f, channels)?;
    let (classes, ignore) = classes(&f, f.required("labels")?)?;
    let declared: usize = f.required("numTraining")?;
    let ending: String = f.required("file_ending")?;
    let name: Option<String> = f.optional("name")?;
    let licence: Option<String> = f.optional("licence")?.or(f.optional("license")?);
    let settings = match f.raw("sweep") {
        Some(v) => {
            let sf = Fields::new(file, "sweep.", v)?;
            let s = Settings::read(&sf, root)?;
            sf.deny_unknown()?;
            s
        }
        None => Settings::read(&Fields::new(file, "sweep.", &serde_json::json!({}))?, root)?,
    };

    let ignore = settings.ignore_or(file, ("sweep.ignore", "labels.ignore"), ignore)?;
    let mut problems = Vec::new();
    if !lossless(&ending) {
        problems.push(f.error(
            "file_ending",
            format!("{ending}: label files must be lossless (PNG, BMP or TIFF): a lossy format changes label values at every edge"),
        ));
    }
    let cases = list_cases(root, "imagesTr", &ending, channels.len(), &mut problems);
    let labels_dir = root.join("labelsTr");
    let mut labelled = Vec::new();
    for (id, images) in cases {
        let label = labels_dir.join(format!("{id}{ending}"));
        if label.is_file() {
            labelled.push(Case { id, images, label });
        } else {
            problems.push(DataSetError::new(
                &images[0],
                format!("case {id:?} has no label: {} not found", label.display()),
            ));
        }
    }
    orphan_labels(root, &ending, &mut problems);
    if labelled.len() != declared && problems.is_empty() {
        problems.push(f.error(
            "numTraining",
            format!(
                "{declared}, but imagesTr and labelsTr hold {} cases",
                labelled.len()
            ),
        ));
    }
    let test = list_cases(root, "imagesTs", &ending, channels.len(), &mut problems)
        .into_iter()
        .map(|(id, images)| Unlabelled { id, images })
        .collect();
    let own_split = splits_final(root, settings.splits.as_deref(), &labelled, &mut problems)?;
    Ok(DataSet {
        name: name.unwrap_or_else(|| folder_name(root)),
        root: root.to_path_buf(),
        layout: Layout::NnUnet,
        description: file.to_path_buf(),
        classes,
        palette: None,
        channels,
        coding: LabelCoding {
            values: settings.label_values,
            reduce_zero_label: false,
            ignore,
        },
        spacing: settings.spacing,
        licence: licence.or(settings.licence),
        groups: settings.groups,
        cases: labelled,
        own_split,
        test,
        declared_cases: Some(declared),
        problems,
    })
}

/// `{"0": "OCT", "1": "..."}` in channel order; the keys must be 0, 1, ...
fn channel_list(
    f: &Fields,
    channels: BTreeMap<String, String>,
) -> Result<Vec<String>, DataSetError> {
    let mut by_index: Vec<(usize, String)> = Vec::new();
    for (k, name) in channels {
        let i: usize = k
            .parse()
            .map_err(|_| f.error("channel_names", format!("{k:?} is not a channel number")))?;
        by_index.push((i, name));
    }
    by_index.sort();
    if by_index.is_empty() || by_index.iter().enumerate().any(|(i, (k, _))| i != *k) {
        return Err(f.error(
            "channel_names",
            "channels must be numbered 0, 1, ... without gaps",
        ));
    }
    Ok(by_index.into_iter().map(|(_, n)| n).collect())
}

/// `labels` (name -> id, ids 0, 1, ... consecutive as nnU-Net requires) into class names by
/// id, and the `ignore` label's id.
fn classes(
    f: &Fields,
    labels: BTreeMap<String, serde_json::Value>,
) -> Result<(Vec<String>, Option<u8>), DataSetError> {
    let mut ignore = None;
    let mut by_id: Vec<(u64, String)> = Vec::new();
    for (name, id) in labels {
        let Some(id) = id.as_u64().filter(|id| *id < 255) else {
            let why = if id.is_array() {
                "region-based labels (a list of ids) are not supported; give each label one id"
                    .to_string()
            } else {
                format!("{id} is not a label id (a whole number from 0 to 254)")
            };
            return Err(f.error("labels", format!("{name:?}: {why}")));
        };
        if name == "ignore" {
            ignore = Some(id as u8);
        } else {
            by_id.push((id, name));
        }
    }
    by_id.sort();
    if by_id.len() < 2 || by_id.iter().enumerate().any(|(i, (id, _))| *id != i as u64) {
        let ids: Vec<String> = by_id.iter().map(|(id, n)| format!("{n}: {id}")).collect();
        return Err(f.error(
            "labels",
            format!(
                "ids must be 0 (background), 1, 2, ... without gaps, found {{{}}}",
                ids.join(", ")
            ),
        ));
    }
    if let Some(i) = ignore.filter(|i| usize::from(*i) != by_id.len()) {
        return Err(f.error(
            "labels",
            format!(
                "\"ignore\": {i}: the ignore label must be the highest id ({})",
                by_id.len()
            ),
        ));
    }
    Ok((by_id.into_iter().map(|(_, n)| n).collect(), ignore))
}

/// The cases of `folder` (`imagesTr`, `imagesTs`) with their channel files, ids in natural
/// order. A missing folder holds no cases (`imagesTs` is optional; a missing `imagesTr`
/// is a problem).
fn list_cases(
    root: &Path,
    folder: &str,
    ending: &str,
    channels: usize,
    problems: &mut Vec<DataSetError>,
) -> Vec<(String, Vec<PathBuf>)> {
    let dir = root.join(folder);
    let names = match list_files(&dir, ending) {
        Ok(n) => n,
        Err(e) => {
            if folder == "imagesTr" {
                problems.push(e);
            }
            return Vec::new();
        }
    };
    let mut cases: BTreeMap<String, BTreeMap<usize, PathBuf>> = BTreeMap::new();
    for stem in names {
        let parsed = stem
            .rsplit_once('_')
            .filter(|(_, x)| x.len() == 4 && x.bytes().all(|b| b.is_ascii_digit()));
        match parsed {
            Some((id, x)) => {
                let path = dir.join(format!("{stem}{ending}"));
                cases
                    .entry(id.to_string())
                    .or_default()
                    .insert(x.parse().unwrap_or(0), path);
            }
            None => problems.push(DataSetError::new(
                dir.join(format!("{stem}{ending}")),
                format!(
                    "not named {{case}}_{{XXXX}}{ending} (XXXX: the channel, 0000 for the first)"
                ),
            )),
        }
    }
    let mut out: Vec<(String, Vec<PathBuf>)> = Vec::new();
    for (id, files) in cases {
        let complete = files.keys().copied().eq(0..channels);
        // Three channels may come as one RGB file (nnU-Net's natural-image reader).
        let rgb = channels == 3 && files.keys().copied().eq([0]);
        if complete || rgb {
            out.push((id, files.into_values().collect()));
        } else {
            let missing: Vec<String> = (0..channels)
                .filter(|c| !files.contains_key(c))
                .map(|c| format!("{id}_{c:04}{ending}"))
                .collect();
            problems.push(DataSetError::new(
                &dir,
                format!(
                    "case {id:?}: channel file(s) missing: {} (dataset.json declares {channels} channel(s))",
                    missing.join(", ")
                ),
            ));
        }
    }
    out.sort_by(|a, b| natural_cmp(&a.0, &b.0));
    out
}

/// Label files with no image are named: they are usually a renamed or misplaced case.
fn orphan_labels(root: &Path, ending: &str, problems: &mut Vec<DataSetError>) {
    let dir = root.join("labelsTr");
    let Ok(names) = list_files(&dir, ending) else {
        return;
    };
    for stem in names {
        let first = root.join("imagesTr").join(format!("{stem}_0000{ending}"));
        if !first.is_file() {
            problems.push(DataSetError::new(
                dir.join(format!("{stem}{ending}")),
                format!("a label with no image: {} not found", first.display()),
            ));
        }
    }
}

/// nnU-Net's `splits_final.json` (`[{"train": [...], "val": [...]}, ...]`): the data set's
/// own folds, when the settings name one or the folder holds one.
fn splits_final(
    root: &Path,
    named: Option<&Path>,
    cases: &[Case],
    problems: &mut Vec<DataSetError>,
) -> Result<OwnSplit, DataSetError> {
    let file = match named {
        Some(p) => root.join(p),
        None if root.join("splits_final.json").is_file() => root.join("splits_final.json"),
        None => return Ok(OwnSplit::None),
    };
    #[derive(serde::Deserialize)]
    struct Fold {
        train: Vec<String>,
        val: Vec<String>,
    }
    let text = std::fs::read_to_string(&file)
        .map_err(|e| DataSetError::new(&file, format!("cannot read the splits file: {e}")))?;
    let folds: Vec<Fold> = serde_json::from_str(&text).map_err(|e| {
        DataSetError::new(
            &file,
            format!("expected [{{\"train\": [...], \"val\": [...]}}, ...]: {e}"),
        )
    })?;
    for (k, fold) in folds.iter().enumerate() {
        for id in fold.train.iter().chain(&fold.val) {
            if !cases.iter().any(|c| &c.id == id) {
                problems.push(DataSetError::new(
                    &file,
                    format!("fold {k}: case {id:?} is not a labelled case of the data set"),
                ));
            }
        }
        if let Some(id) = fold.train.iter().find(|id| fold.val.contains(id)) {
            problems.push(DataSetError::new(
                &file,
                format!("fold {k}: case {id:?} is in both train and val"),
            ));
        }
    }
    Ok(OwnSplit::Folds {
        file,
        folds: folds.into_iter().map(|f| (f.train, f.val)).collect(),
    })
}

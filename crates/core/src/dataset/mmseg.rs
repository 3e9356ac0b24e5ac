//! MMSegmentation layouts, described by `dataset.yaml` in MMSeg's own field names: per
//! split an image folder and a label folder (`img_path`, `seg_map_path`, flat or under
//! `data_prefix`) and optionally an `ann_file` of case stems; `img_suffix`,
//! `seg_map_suffix`, `classes`, `palette`, `ignore_index`, `reduce_zero_label`.

use super::fields::Fields;
use super::files::{folder_name, list_files, lossless};
use super::labels::LabelCoding;
use super::order::natural_cmp;
use super::settings::Settings;
use super::{Case, DataSet, DataSetError, Layout, OwnSplit, Unlabelled};
use std::path::{Path, PathBuf};

pub(super) fn describe(root: &Path, file: &Path) -> Result<DataSet, DataSetError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| DataSetError::new(file, format!("cannot read: {e}")))?;
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text)
        .map_err(|e| DataSetError::new(file, format!("not valid YAML: {e}")))?;
    let json = serde_json::to_value(&yaml)
        .map_err(|e| DataSetError::new(file, format!("cannot read its values: {e}")))?;
    let f = Fields::new(file, "", &json)?;
    let name: Option<String> = f.optional("name")?;
    let classes: Vec<String> = f.required("classes")?;
    if classes.len() < 2 {
        return Err(f.error("classes", "name at least two classes (background first)"));
    }
    let palette: Option<Vec<[u8; 3]>> = f.optional("palette")?;
    if palette.as_ref().is_some_and(|p| p.len() != classes.len()) {
        return Err(f.error(
            "palette",
            format!("give one [r, g, b] per class ({})", classes.len()),
        ));
    }
    let suffixes = Suffixes {
        image: f.optional("img_suffix")?.unwrap_or_else(|| ".jpg".into()),
        label: f
            .optional("seg_map_suffix")?
            .unwrap_or_else(|| ".png".into()),
    };
    let reduce_zero_label = f.optional("reduce_zero_label")?.unwrap_or(false);
    let ignore_index: Option<u8> = f.optional("ignore_index")?;
    let settings = Settings::read(&f, root)?;
    if settings.splits.is_some() {
        return Err(f.error(
            "splits",
            "is nnU-Net's splits_final.json; an MMSeg layout names its `train` and `val`",
        ));
    }
    let splits: Vec<(&'static str, Option<SplitSpec>)> = ["train", "val", "test"]
        .into_iter()
        .map(|s| {
            Ok((
                s,
                f.raw(s)
                    .map(|v| SplitSpec::read(file, s, v, root))
                    .transpose()?,
            ))
        })
        .collect::<Result<_, DataSetError>>()?;
    f.deny_unknown()?;

    let ignore = settings.ignore_or(file, ("ignore", "ignore_index"), ignore_index)?;
    let mut problems = Vec::new();
    if !lossless(&suffixes.label) {
        problems.push(f.error(
            "seg_map_suffix",
            format!("{}: label files must be lossless (PNG, BMP or TIFF): a lossy format changes label values at every edge", suffixes.label),
        ));
    }
    let mut lists: Vec<Vec<Case>> = Vec::new();
    let mut test = Vec::new();
    for (split, spec) in &splits {
        let Some(spec) = spec else {
            lists.push(Vec::new());
            continue;
        };
        let listed = spec.cases(&suffixes, *split == "test", &mut problems);
        if *split == "test" {
            test = listed
                .into_iter()
                .map(|c| Unlabelled {
                    id: c.id,
                    images: c.images,
                })
                .collect();
        } else {
            lists.push(listed);
        }
    }
    if splits[0].1.is_none() {
        return Err(f.error(
            "train",
            "is missing: name the training images and labels (img_path, seg_map_path)",
        ));
    }
    let (train, val) = (&lists[0], &lists[1]);
    // The same files on both sides is a choice (an overfitting check); two files under one
    // id is ambiguous.
    for c in val {
        if train.iter().any(|t| t.id == c.id && t.images != c.images) {
            problems.push(DataSetError::new(
                &c.images[0],
                format!(
                    "case {:?}: two cases with one id (in train and in val)",
                    c.id
                ),
            ));
        }
    }
    let own_split = if splits[1].1.is_some() {
        OwnSplit::Lists {
            train: train.iter().map(|c| c.id.clone()).collect(),
            val: val.iter().map(|c| c.id.clone()).collect(),
        }
    } else {
        OwnSplit::None
    };
    let mut cases: Vec<Case> = train.iter().chain(val).cloned().collect();
    cases.sort_by(|a, b| natural_cmp(&a.id, &b.id));
    cases.dedup_by(|a, b| a.id == b.id);
    Ok(DataSet {
        name: name.unwrap_or_else(|| folder_name(root)),
        root: root.to_path_buf(),
        layout: Layout::MmSeg,
        description: file.to_path_buf(),
        classes,
        palette,
        channels: Vec::new(),
        coding: LabelCoding {
            values: settings.label_values,
            reduce_zero_label,
            ignore,
        },
        spacing: settings.spacing,
        licence: settings.licence,
        groups: settings.groups,
        cases,
        own_split,
        test,
        declared_cases: None,
        problems,
    })
}

struct Suffixes {
    image: String,
    label: String,
}

/// One split's folders (relative to the data set folder) and optional list of stems.
struct SplitSpec {
    images: PathBuf,
    labels: Option<PathBuf>,
    ann_file: Option<PathBuf>,
}

impl SplitSpec {
    fn read(
        file: &Path,
        split: &str,
        v: &serde_json::Value,
        root: &Path,
    ) -> Result<Self, DataSetError> {
        let f = Fields::new(file, &format!("{split}."), v)?;
        let (img, seg): (Option<PathBuf>, Option<PathBuf>) = match f.raw("data_prefix") {
            Some(p) => {
                let pf = Fields::new(file, &format!("{split}.data_prefix."), p)?;
                let both = (pf.optional("img_path")?, pf.optional("seg_map_path")?);
                pf.deny_unknown()?;
                both
            }
            None => (f.optional("img_path")?, f.optional("seg_map_path")?),
        };
        let ann_file: Option<PathBuf> = f.optional("ann_file")?;
        f.deny_unknown()?;
        let img = img
            .ok_or_else(|| f.error("img_path", "is missing: the folder of this split's images"))?;
        if seg.is_none() && split != "test" {
            return Err(f.error(
                "seg_map_path",
                "is missing: the folder of this split's label maps",
            ));
        }
        Ok(SplitSpec {
            images: root.join(img),
            labels: seg.map(|s| root.join(s)),
            ann_file: ann_file.map(|a| root.join(a)),
        })
    }

    /// The split's cases, in the `ann_file`'s order or else natural order of the images.
    fn cases(
        &self,
        sfx: &Suffixes,
        unlabelled: bool,
        problems: &mut Vec<DataSetError>,
    ) -> Vec<Case> {
        let stems: Vec<(String, Option<(PathBuf, usize)>)> = match &self.ann_file {
            Some(ann) => match read_lines(ann) {
                Ok(lines) => lines
                    .into_iter()
                    .map(|(n, s)| (s, Some((ann.clone(), n))))
                    .collect(),
                Err(e) => {
                    problems.push(e);
                    return Vec::new();
                }
            },
            None => match list_files(&self.images, &sfx.image) {
                Ok(names) => names.into_iter().map(|s| (s, None)).collect(),
                Err(e) => {
                    problems.push(e);
                    return Vec::new();
                }
            },
        };
        let mut out: Vec<Case> = Vec::new();
        for (id, line) in stems {
            let at = |path: &Path| match &line {
                Some((ann, n)) => PathBuf::from(format!("{}:{n}", ann.display())),
                None => path.to_path_buf(),
            };
            let image = self.images.join(format!("{id}{}", sfx.image));
            let label = self
                .labels
                .as_ref()
                .map(|l| l.join(format!("{id}{}", sfx.label)));
            if out.iter().any(|c| c.id == id) {
                problems.push(DataSetError::new(
                    at(&image),
                    format!("case {id:?} is listed twice"),
                ));
            } else if !image.is_file() {
                problems.push(DataSetError::new(
                    at(&image),
                    format!("case {id:?}: image not found: {}", image.display()),
                ));
            } else if let Some(label) = label.filter(|_| !unlabelled) {
                if label.is_file() {
                    out.push(Case {
                        id,
                        images: vec![image],
                        label,
                    });
                } else {
                    problems.push(DataSetError::new(
                        at(&image),
                        format!("case {id:?} has no label: {} not found", label.display()),
                    ));
                }
            } else {
                out.push(Case {
                    id,
                    images: vec![image],
                    label: PathBuf::new(),
                });
            }
        }
        out
    }
}

/// Non-empty lines of a list file with their 1-based numbers.
fn read_lines(file: &Path) -> Result<Vec<(usize, String)>, DataSetError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| DataSetError::new(file, format!("cannot read the list of cases: {e}")))?;
    let lines: Vec<(usize, String)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim().to_string()))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return Err(DataSetError::new(file, "the list of cases is empty"));
    }
    Ok(lines)
}

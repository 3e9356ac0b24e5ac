//! A data set on disk, described: its cases (image files and a label file each), its
//! classes, how raw label values become class ids, how cases group into patients, and its
//! own split. Read from the folder's own description, nnU-Net v2's `dataset.json`
//! ([`nnunet`]) or a few lines in MMSegmentation's field names, `dataset.yaml` ([`mmseg`]),
//! with `sweep`'s few settings beside them ([`settings`]).
//!
//! No pixel is read here (decoding and the pixel checks are `sweep-data`'s): planning needs
//! the classes, a split needs the case ids and their groups.

mod fields;
mod files;
mod labels;
mod mmseg;
mod nnunet;
pub mod order;
mod settings;
mod split;

pub use labels::{LabelCoding, IGNORE};
pub use order::natural_cmp;
pub use settings::Groups;
pub use split::Selection;

use serde::Serialize;
use std::path::{Path, PathBuf};

/// The description files a data set folder may hold, in the order they are looked for.
pub const DESCRIPTIONS: [&str; 2] = ["dataset.json", "dataset.yaml"];

/// Where the description came from, and so which layout the files follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// nnU-Net v2 raw: `dataset.json`, `imagesTr/{case}_{XXXX}{ending}`, `labelsTr/{case}{ending}`.
    NnUnet,
    /// MMSegmentation: `dataset.yaml` naming each split's image and label folders.
    MmSeg,
}

/// One case: its image file(s) (one per channel, or one colour file) and its label file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    pub id: String,
    pub images: Vec<PathBuf>,
    pub label: PathBuf,
}

/// A case without a label (`imagesTs`, MMSeg's `test`): what `predict` reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unlabelled {
    pub id: String,
    pub images: Vec<PathBuf>,
}

/// The data set's own split, when it states one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnSplit {
    None,
    /// One train and one val list (MMSeg's `train` / `val`), in their files' order.
    Lists {
        train: Vec<String>,
        val: Vec<String>,
    },
    /// nnU-Net's `splits_final.json`: one (train, val) pair per fold.
    Folds {
        file: PathBuf,
        folds: Vec<(Vec<String>, Vec<String>)>,
    },
}

/// A problem with the data set's description or files; names the file (and line, key or
/// case) at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct DataSetError {
    pub path: PathBuf,
    pub message: String,
}

impl DataSetError {
    pub fn new(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        DataSetError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// A data set folder, described.
#[derive(Clone, Debug)]
pub struct DataSet {
    /// `name` of the description, else the folder's name.
    pub name: String,
    pub root: PathBuf,
    pub layout: Layout,
    /// The description file read.
    pub description: PathBuf,
    /// Class names by id (id 0 first); the ignore label is not a class.
    pub classes: Vec<String>,
    /// An RGB colour per class, when the description gives one.
    pub palette: Option<Vec<[u8; 3]>>,
    /// Channel names (nnU-Net's `channel_names`); empty: as the image files are (MMSeg).
    pub channels: Vec<String>,
    pub coding: LabelCoding,
    /// mm per label pixel `[x, y]`, when stated.
    pub spacing: Option<[f64; 2]>,
    pub licence: Option<String>,
    pub groups: Option<Groups>,
    /// Every labelled case, ids in natural order (`img_2` before `img_10`).
    pub cases: Vec<Case>,
    pub own_split: OwnSplit,
    /// Unlabelled cases (`imagesTs`, MMSeg's `test`).
    pub test: Vec<Unlabelled>,
    /// How many labelled cases the description declares (`numTraining`).
    pub declared_cases: Option<usize>,
    /// What listing the files found wrong; [`DataSet::ensure_valid`] turns them into one error.
    pub problems: Vec<DataSetError>,
}

impl DataSet {
    /// Reads the description in `root` (see [`DESCRIPTIONS`]) and lists the files.
    pub fn describe(root: &Path) -> Result<DataSet, DataSetError> {
        let found = DESCRIPTIONS
            .iter()
            .map(|f| root.join(f))
            .find(|p| p.is_file());
        let Some(description) = found else {
            return Err(DataSetError::new(
                root,
                format!(
                    "no data set description: expected {} (nnU-Net v2) or {} (MMSegmentation layout); \
                     the README's \"Your own data\" shows both",
                    DESCRIPTIONS[0], DESCRIPTIONS[1]
                ),
            ));
        };
        let mut data_set = if description.extension().is_some_and(|e| e == "json") {
            nnunet::describe(root, &description)?
        } else {
            mmseg::describe(root, &description)?
        };
        data_set.check_groups();
        Ok(data_set)
    }

    /// Whether `root` holds a description at all (planning resolves classes only then).
    pub fn is_described(root: &Path) -> bool {
        DESCRIPTIONS.iter().any(|f| root.join(f).is_file())
    }

    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    /// The case's group (patient), when the data set has groups.
    pub fn group_of(&self, id: &str) -> Option<String> {
        self.groups.as_ref()?.group_of(id)
    }

    /// Fails with every problem found while listing, one per line.
    pub fn ensure_valid(&self) -> Result<(), DataSetError> {
        match self.problems.as_slice() {
            [] => Ok(()),
            [one] => Err(one.clone()),
            many => Err(DataSetError::new(
                &self.root,
                format!(
                    "{} problems:\n{}",
                    many.len(),
                    many.iter()
                        .map(|p| format!("  {p}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
            )),
        }
    }

    /// Cases a grouping needs but cannot place (a pattern that does not match, a table
    /// without the case) are problems: grouped CV would otherwise split a patient silently.
    fn check_groups(&mut self) {
        let Some(groups) = &self.groups else { return };
        let missing: Vec<&str> = self
            .cases
            .iter()
            .filter(|c| groups.group_of(&c.id).is_none())
            .map(|c| c.id.as_str())
            .collect();
        if !missing.is_empty() {
            let shown: Vec<&str> = missing.iter().take(5).copied().collect();
            self.problems.push(DataSetError::new(
                &self.description,
                format!(
                    "groups: {} case(s) have no group ({}{}): {}",
                    missing.len(),
                    shown.join(", "),
                    if missing.len() > 5 { ", ..." } else { "" },
                    groups.hint()
                ),
            ));
        }
    }
}

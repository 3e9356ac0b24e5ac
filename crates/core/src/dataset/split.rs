//! Which cases train and which validate, for a job's `data.split`: the data set's own split
//! (`study`), whole groups (`subjects`), or fold k of grouped K-fold cross-validation
//! (nnU-Net's `splits_final.json` folds when the data set has them).

use super::order::{kfold, natural_cmp};
use super::{Case, DataSet, DataSetError, OwnSplit};
use crate::job::SplitConfig;

/// The train and val cases of one split, in training order.
#[derive(Debug)]
pub struct Selection<'a> {
    pub train: Vec<&'a Case>,
    pub val: Vec<&'a Case>,
}

impl DataSet {
    /// The groups of the data set's cases in natural order (`9` before `10`); a data set
    /// without groups has one group per case.
    pub fn group_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .cases
            .iter()
            .map(|c| self.group_of(&c.id).unwrap_or_else(|| c.id.clone()))
            .collect();
        names.sort_by(|a, b| natural_cmp(a, b));
        names.dedup();
        names
    }

    /// The val groups of each of `folds` folds: the groups in natural order cut into
    /// contiguous folds (scikit-learn's `KFold` without shuffling), or the val cases of
    /// each fold of `splits_final.json`.
    pub fn folds(&self, folds: u32) -> Result<Vec<Vec<String>>, DataSetError> {
        if let OwnSplit::Folds { file, folds: own } = &self.own_split {
            if own.len() != folds as usize {
                return Err(DataSetError::new(
                    file,
                    format!(
                        "holds {} folds, but {folds} were asked for (data.split.fold.folds / cv.folds): ask for {}",
                        own.len(),
                        own.len()
                    ),
                ));
            }
            return Ok(own.iter().map(|(_, val)| val.clone()).collect());
        }
        let what = if self.groups.is_some() {
            "groups"
        } else {
            "cases"
        };
        kfold(&self.group_names(), folds, what).map_err(|m| DataSetError::new(&self.description, m))
    }

    /// The cases `split` trains and validates on. Fails when either side is empty, when a
    /// case named by the split is not in the data set, or when the data set has no split
    /// of its own and `study` asks for it.
    pub fn select(&self, split: &SplitConfig) -> Result<Selection<'_>, DataSetError> {
        let selection = match split {
            SplitConfig::Study => self.own(0)?,
            SplitConfig::Fold { folds, fold, .. } => {
                if matches!(self.own_split, OwnSplit::Folds { .. }) {
                    self.folds(*folds)?;
                    self.own(*fold as usize)?
                } else {
                    let val_groups = self
                        .folds(*folds)?
                        .into_iter()
                        .nth(*fold as usize)
                        .ok_or_else(|| {
                            DataSetError::new(
                                &self.description,
                                format!(
                                    "data.split.fold.fold: {fold} is not one of the {folds} folds"
                                ),
                            )
                        })?;
                    self.by_groups(|g| !val_groups.contains(g), |g| val_groups.contains(g))
                }
            }
            SplitConfig::Subjects { train, val } => {
                if let Some(s) = train.iter().find(|s| val.contains(s)) {
                    return Err(DataSetError::new(
                        &self.description,
                        format!("data.split.subjects: subject {s} is in both the train and the val split"),
                    ));
                }
                let number = |g: &str| g.parse::<u32>().ok();
                self.by_groups(
                    |g| number(g).is_some_and(|n| train.contains(&n)),
                    |g| number(g).is_some_and(|n| val.contains(&n)),
                )
            }
        };
        for (side, cases) in [("train", &selection.train), ("val", &selection.val)] {
            if cases.is_empty() {
                return Err(DataSetError::new(
                    &self.description,
                    format!("the {side} split is empty ({})", describe_split(split)),
                ));
            }
        }
        Ok(selection)
    }

    /// Cases (natural order) whose group passes `train` / `val`.
    fn by_groups(
        &self,
        train: impl Fn(&String) -> bool,
        val: impl Fn(&String) -> bool,
    ) -> Selection<'_> {
        let group = |c: &Case| self.group_of(&c.id).unwrap_or_else(|| c.id.clone());
        Selection {
            train: self.cases.iter().filter(|c| train(&group(c))).collect(),
            val: self.cases.iter().filter(|c| val(&group(c))).collect(),
        }
    }

    /// The groups with cases on both sides of fold `k` of `splits_final.json`, in
    /// natural order (grouped CV exists to keep them whole).
    pub fn cut_groups(&self, train: &[String], val: &[String]) -> Vec<String> {
        let groups = |ids: &[String]| -> Vec<String> {
            ids.iter().filter_map(|id| self.group_of(id)).collect()
        };
        let val_groups = groups(val);
        let mut cut: Vec<String> = groups(train)
            .into_iter()
            .filter(|g| val_groups.contains(g))
            .collect();
        cut.sort_by(|a, b| natural_cmp(a, b));
        cut.dedup();
        cut
    }

    /// The data set's own split: its train/val lists, or fold `fold` of its folds (which
    /// must keep every group whole).
    fn own(&self, fold: usize) -> Result<Selection<'_>, DataSetError> {
        let (train, val) = match &self.own_split {
            OwnSplit::Lists { train, val } => (train, val),
            OwnSplit::Folds { folds, file } => {
                let Some((t, v)) = folds.get(fold) else {
                    return Err(DataSetError::new(
                        file,
                        format!("has no fold {fold} (it holds {})", folds.len()),
                    ));
                };
                let cut = self.cut_groups(t, v);
                if !cut.is_empty() {
                    return Err(DataSetError::new(
                        file,
                        format!("fold {fold} cuts group(s) {} in two (cases on both the train and the val side)", cut.join(", ")),
                    ));
                }
                (t, v)
            }
            OwnSplit::None => {
                return Err(DataSetError::new(
                    &self.description,
                    "the data set has no split of its own (split: study): name `train` and `val` \
                     (dataset.yaml) or add splits_final.json (nnU-Net), or use `cv: {folds: 5}` \
                     or `split: {fold: {folds: 5, fold: 0}}`",
                ))
            }
        };
        let pick = |ids: &[String]| -> Result<Vec<&Case>, DataSetError> {
            ids.iter()
                .map(|id| {
                    self.cases.iter().find(|c| &c.id == id).ok_or_else(|| {
                        DataSetError::new(
                            &self.description,
                            format!("case {id:?} of the split is not a labelled case"),
                        )
                    })
                })
                .collect()
        };
        Ok(Selection {
            train: pick(train)?,
            val: pick(val)?,
        })
    }
}

fn describe_split(split: &SplitConfig) -> String {
    match split {
        SplitConfig::Study => "the data set's own split".into(),
        SplitConfig::Subjects { .. } => {
            "data.split.subjects: no case has one of those groups".into()
        }
        SplitConfig::Fold { folds, fold, .. } => format!("fold {fold} of {folds}"),
    }
}

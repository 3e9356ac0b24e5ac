//! `sweep`'s own settings of a data set, the same keys in both descriptions (top level of
//! `dataset.yaml`, under `sweep` in nnU-Net's `dataset.json`, which ignores extra keys):
//! `label_values`, `groups`, `spacing`, `splits`, `ignore`, `licence`.

use super::fields::Fields;
use super::DataSetError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How a case maps to its group (patient), for grouped cross-validation.
#[derive(Clone, Debug)]
pub enum Groups {
    /// A regex over the case id; the group is its named group `group`, else its first group.
    Pattern(regex::Regex),
    /// Case id -> group, from the description or a `case,group` CSV file.
    Table(BTreeMap<String, String>),
}

impl Groups {
    pub fn group_of(&self, id: &str) -> Option<String> {
        match self {
            Groups::Pattern(re) => {
                let caps = re.captures(id)?;
                let m = caps.name("group").or_else(|| caps.get(1))?;
                Some(m.as_str().to_string())
            }
            Groups::Table(t) => t.get(id).cloned(),
        }
    }

    /// What to do about a case without a group.
    pub(super) fn hint(&self) -> String {
        match self {
            Groups::Pattern(re) => {
                format!("the pattern {:?} does not match their ids", re.as_str())
            }
            Groups::Table(_) => "add them to the groups table".into(),
        }
    }
}

/// A group's value in a table: patients are often numbered.
#[derive(Deserialize)]
#[serde(untagged)]
enum GroupName {
    Number(u64),
    Text(String),
}

/// `groups:` as written.
#[derive(Deserialize)]
#[serde(untagged)]
enum GroupsSpec {
    Pattern(String),
    File { file: PathBuf },
    Table(BTreeMap<String, GroupName>),
}

pub(super) struct Settings {
    pub label_values: BTreeMap<u8, u8>,
    pub groups: Option<Groups>,
    pub spacing: Option<[f64; 2]>,
    /// nnU-Net's `splits_final.json` (a path relative to the data set folder).
    pub splits: Option<PathBuf>,
    /// The label value (after `label_values`) that is neither trained nor scored: what
    /// nnU-Net's `ignore` label and MMSeg's `ignore_index` say.
    pub ignore: Option<u8>,
    pub licence: Option<String>,
}

impl Settings {
    /// The ignore label, from the settings' `ignore` (at `at`, e.g. `sweep.ignore`) or the
    /// layout's own key (`own`, named `key`); two that disagree are an error.
    pub fn ignore_or(
        &self,
        file: &Path,
        (at, key): (&str, &str),
        own: Option<u8>,
    ) -> Result<Option<u8>, DataSetError> {
        match (self.ignore, own) {
            (Some(a), Some(b)) if a != b => Err(DataSetError::new(
                file,
                format!("`{at}`: {a}, but `{key}` says {b}: give the ignore label once"),
            )),
            (a, b) => Ok(a.or(b)),
        }
    }

    /// Reads the settings from `f`; relative files are under `root`.
    pub fn read(f: &Fields, root: &Path) -> Result<Settings, DataSetError> {
        let label_values = f
            .optional::<BTreeMap<String, serde_json::Value>>("label_values")?
            .unwrap_or_default()
            .into_iter()
            .map(|(raw, value)| {
                let raw_value: u8 = raw.trim().parse().map_err(|_| {
                    f.error(
                        "label_values",
                        format!("{raw:?} is not a pixel value (0 to 255)"),
                    )
                })?;
                let id = value
                    .as_u64()
                    .and_then(|id| u8::try_from(id).ok())
                    .filter(|id| *id < 255);
                let id = id.ok_or_else(|| {
                    f.error(
                        "label_values",
                        format!("{raw}: {value}: a class id is a whole number from 0 to 254"),
                    )
                })?;
                Ok((raw_value, id))
            })
            .collect::<Result<_, DataSetError>>()?;
        let groups = match f.optional::<GroupsSpec>("groups")? {
            None => None,
            Some(GroupsSpec::Pattern(p)) => Some(Groups::Pattern(
                regex::Regex::new(&format!("^(?:{p})$"))
                    .map_err(|e| f.error("groups", format!("not a valid pattern: {e}")))?,
            )),
            Some(GroupsSpec::File { file }) => {
                Some(Groups::Table(read_group_file(&root.join(file))?))
            }
            Some(GroupsSpec::Table(t)) => Some(Groups::Table(
                t.into_iter()
                    .map(|(case, g)| {
                        let g = match g {
                            GroupName::Number(n) => n.to_string(),
                            GroupName::Text(s) => s,
                        };
                        (case, g)
                    })
                    .collect(),
            )),
        };
        let spacing: Option<[f64; 2]> = f.optional("spacing")?;
        if let Some(s) = spacing {
            if !s.iter().all(|v| v.is_finite() && *v > 0.0) {
                return Err(f.error("spacing", "give mm per pixel [x, y], both positive"));
            }
        }
        Ok(Settings {
            label_values,
            groups,
            spacing,
            splits: f.optional("splits")?,
            ignore: f.optional("ignore")?,
            licence: f.optional("licence")?,
        })
    }
}

/// `case,group` lines (a header line `case,group` is allowed; `#` starts a comment).
fn read_group_file(path: &Path) -> Result<BTreeMap<String, String>, DataSetError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| DataSetError::new(path, format!("cannot read the groups file: {e}")))?;
    let mut table = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() || (i == 0 && line.eq_ignore_ascii_case("case,group")) {
            continue;
        }
        let Some((case, group)) = line.split_once(',') else {
            return Err(DataSetError::new(
                path,
                format!("line {}: expected `case,group`, found {line:?}", i + 1),
            ));
        };
        let (case, group) = (case.trim().to_string(), group.trim().to_string());
        if let Some(before) = table.insert(case.clone(), group) {
            return Err(DataSetError::new(
                path,
                format!(
                    "line {}: case {case:?} is listed twice (first in group {before:?})",
                    i + 1
                ),
            ));
        }
    }
    Ok(table)
}

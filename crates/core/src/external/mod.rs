//! `sweep evaluate`: another program's predictions, scored by `sweep-data` with the trainer's
//! arithmetic, recorded as an external row of a sweep ([`crate::store::external`]) so that
//! the leaderboard, its bootstrap, `sweep compare` and the dashboard treat it as any row.
//!
//! The row's config is only the data section a sweep file would write for the data set and
//! split (`{"data": {"dataset", "root", "split"}}`, which reads as a [`crate::job::JobConfig`]):
//! data-set grouping works, and nothing in it claims a model. Its identity is a content
//! hash: the name, the split, the validation files and the predictions scored.

mod sweep_choice;

pub use sweep_choice::{choose, Chosen};

use crate::job::SplitConfig;
use crate::protocol::{ImageMetric, MetricValue};
use crate::store::{External, NewExternal, NewJob, Recorded, Store};
use anyhow::{bail, Result};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// The data set an external row was scored on, spelled as a sweep file's `data` would be.
#[derive(Clone, Debug, PartialEq)]
pub struct DataSetRef {
    /// `data.dataset`: a shipped name (`dme`) or the description's name.
    pub dataset: String,
    /// `data.root` as given (`data/dme`, or the folder named on the command line).
    pub root: PathBuf,
    pub pixel_spacing: Option<[f64; 2]>,
    pub classes: Vec<String>,
}

/// A scored folder of predictions, ready to record.
#[derive(Clone, Debug, PartialEq)]
pub struct Submission {
    /// The row's name (`--as`).
    pub name: String,
    pub data: DataSetRef,
    pub split: SplitConfig,
    /// The predictions folder, absolute.
    pub predictions: PathBuf,
    /// SHA-256 over the scored files, 16 hex digits.
    pub content: String,
    pub cases: usize,
    pub metrics: Vec<MetricValue>,
    pub images: Vec<ImageMetric>,
    /// The validation cases' fingerprint (`<hex>` of `val:<hex>`).
    pub val_fingerprint: String,
}

/// `val` (or `study`): the data set's own split; `fold:K/N` (K from 1, as labels count):
/// fold K of N-fold grouped cross-validation, as a sweep's `cv: {folds: N}` makes it.
pub fn parse_split(s: &str) -> Result<SplitConfig> {
    let s = s.trim();
    if s == "val" || s == "study" {
        return Ok(SplitConfig::Study);
    }
    let fold = s
        .strip_prefix("fold:")
        .or_else(|| s.strip_prefix("fold "))
        .and_then(|f| f.split_once('/'))
        .and_then(|(k, n)| Some((k.trim().parse::<u32>().ok()?, n.trim().parse::<u32>().ok()?)));
    let Some((k, n)) = fold else {
        bail!("--split {s:?}: give `val` (the data set's own split) or `fold:K/N` (fold K of N, from 1)");
    };
    if k == 0 || k > n {
        bail!(
            "--split {s:?}: fold K counts from 1 to N (as job labels do: `fold 1/5` .. `fold 5/5`)"
        );
    }
    let split = SplitConfig::Fold {
        folds: n,
        fold: k - 1,
        by: Default::default(),
    };
    split
        .validate()
        .map_err(|e| anyhow::anyhow!("--split {s:?}: {e}"))?;
    Ok(split)
}

/// How a split reads in messages: `val` or `fold 2/5`.
pub fn split_name(split: &SplitConfig) -> String {
    split.fold_label().unwrap_or_else(|| "val".into())
}

/// Checks a row's name: it becomes a label, so it must read as one.
pub fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.trim() != name || name.chars().any(char::is_control) {
        bail!(
            "--as {name:?}: give a name without leading or trailing spaces or control characters"
        );
    }
    if name.contains(", fold ") || name.ends_with(" (external)") {
        bail!("--as {name:?}: `, fold K/N` and ` (external)` are added by sweep; leave them out");
    }
    Ok(())
}

impl Submission {
    /// The row's label: its name, and the fold as a cross-validation job's label ends.
    pub fn label(&self) -> String {
        match self.split.fold_label() {
            Some(fold) => format!("{}, {fold}", self.name),
            None => self.name.clone(),
        }
    }

    /// The content hash that is the row's identity (16 hex digits, as a job's).
    pub fn hash(&self) -> String {
        let split = serde_json::to_string(&self.split).expect("split serialises");
        let key = format!(
            "external\n{}\n{split}\n{}\n{}",
            self.name, self.val_fingerprint, self.content
        );
        hex::encode(&Sha256::digest(key.as_bytes())[..8])
    }

    /// `{"data": {...}}` with the chosen sweep's spelling of the data set when it has one.
    fn config_json(&self, chosen: &Chosen) -> String {
        let mut data = serde_json::json!({
            "dataset": self.data.dataset,
            "root": self.data.root,
            "split": self.split,
        });
        if let Some((dataset, root)) = &chosen.spelling {
            data["dataset"] = dataset.clone();
            data["root"] = root.clone();
        }
        if let Some(s) = self.data.pixel_spacing {
            data["pixel_spacing"] = serde_json::json!(s);
        }
        serde_json::json!({ "data": data }).to_string()
    }

    fn new_external(&self, chosen: &Chosen) -> NewExternal {
        NewExternal {
            sweep_id: chosen.id,
            job: NewJob {
                hash: self.hash(),
                stage: None,
                label: self.label(),
                config_json: self.config_json(chosen),
                seed: 0,
                depends_on: None,
                continues: false,
                classes: self.data.classes.clone(),
            },
            external: External {
                name: self.name.clone(),
                predictions: self.predictions.display().to_string(),
                content: self.content.clone(),
                cases: self.cases,
            },
            metrics: self.metrics.clone(),
            images: self.images.clone(),
            data_fingerprint: format!("train:- val:{}", self.val_fingerprint),
            sweep_version: crate::protocol::sweep_version(),
        }
    }
}

/// Records `sub` in the sweep `sweep` names (else the one [`choose`] finds or makes).
pub async fn record(
    store: &dyn Store,
    sub: &Submission,
    sweep: Option<&str>,
) -> Result<(Chosen, Recorded)> {
    let chosen = choose(store, sweep, sub).await?;
    let recorded = store.record_external(&sub.new_external(&chosen)).await?;
    Ok((chosen, recorded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_read_as_job_labels_count() {
        assert_eq!(parse_split("val").unwrap(), SplitConfig::Study);
        let f = parse_split("fold:2/5").unwrap();
        assert_eq!(
            f,
            SplitConfig::Fold {
                folds: 5,
                fold: 1,
                by: Default::default()
            }
        );
        assert_eq!(split_name(&f), "fold 2/5");
        for bad in ["fold:0/5", "fold:6/5", "fold:1/1", "train", "fold:a/5"] {
            assert!(parse_split(bad).is_err(), "{bad}");
        }
        assert!(check_name("nnU-Net 2d").is_ok());
        assert!(check_name(" x").is_err() && check_name("a, fold 1/5").is_err());
    }
}

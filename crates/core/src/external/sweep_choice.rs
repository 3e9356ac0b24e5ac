//! Which sweep an external row joins: the one named, else the most recently updated sweep
//! with a row on the same data set (folder) and split, else a new sweep named after the data
//! set (`dme`; `dme-cv5` for folds of 5-fold cross-validation).

use super::{split_name, Submission};
use crate::store::{JobRow, Store, StoreError};
use anyhow::{bail, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The sweep chosen, and what the choice found worth saying.
#[derive(Clone, Debug, PartialEq)]
pub struct Chosen {
    pub id: i64,
    pub name: String,
    /// Made now: no sweep had rows on this data set and split.
    pub created: bool,
    /// `data.dataset` and `data.root` as the sweep's rows spell them, when one uses the data
    /// set: the external row copies them, so that reports compare it with those rows.
    pub spelling: Option<(Value, Value)>,
    pub notes: Vec<String>,
}

/// The sweep `given` names (it must exist), else the most recent one on the submission's
/// data set and split, else a new one.
pub async fn choose(store: &dyn Store, given: Option<&str>, sub: &Submission) -> Result<Chosen> {
    let root = canonical(&sub.data.root);
    if let Some(name) = given {
        let Some(id) = store.sweep_id(name).await? else {
            let known = store.sweeps().await?.into_iter().map(|s| s.name).collect();
            return Err(StoreError::no_such_sweep(known, name));
        };
        let rows = store.report_rows(Some(name)).await?;
        let mut chosen = found(id, name, &rows, &root, sub);
        if chosen.spelling.is_none() && !rows.is_empty() {
            chosen.notes.push(format!(
                "sweep {name:?} has no row on {} ({}): the report ranks the external row on its own, \
                 compared with none of the sweep's rows",
                sub.data.root.display(),
                split_name(&sub.split)
            ));
        }
        return Ok(chosen);
    }
    let mut sweeps = store.sweeps().await?;
    sweeps.sort_by_key(|s| std::cmp::Reverse((s.updated_at, s.id)));
    for s in &sweeps {
        let rows = store.report_rows(Some(&s.name)).await?;
        if rows.iter().any(|r| spelling(r, &root, sub).is_some()) {
            return Ok(found(s.id, &s.name, &rows, &root, sub));
        }
    }
    create(store, sub).await
}

fn found(id: i64, name: &str, rows: &[JobRow], root: &Path, sub: &Submission) -> Chosen {
    let matched = rows.iter().find(|r| spelling(r, root, sub).is_some());
    Chosen {
        id,
        name: name.to_string(),
        created: false,
        spelling: matched.and_then(|r| spelling(r, root, sub)),
        notes: matched.map(|r| notes(r, sub)).unwrap_or_default(),
    }
}

/// A new sweep named after the data set, unless a sweep of that name holds other data.
async fn create(store: &dyn Store, sub: &Submission) -> Result<Chosen> {
    let name = match &sub.split {
        crate::job::SplitConfig::Fold { folds, .. } => format!("{}-cv{folds}", sub.data.dataset),
        _ => sub.data.dataset.clone(),
    };
    if store.sweep_id(&name).await?.is_some() {
        bail!(
            "sweep {name:?} exists but has no row on {} ({}): name the sweep the row joins with --sweep",
            sub.data.root.display(),
            split_name(&sub.split)
        );
    }
    let text = format!(
        "name: {name}\ndescription: rows scored by `sweep evaluate` on {} ({})\n",
        sub.data.dataset,
        split_name(&sub.split)
    );
    let id = store.upsert_sweep(&name, "sweep evaluate", &text).await?;
    Ok(Chosen {
        id,
        name,
        created: true,
        spelling: None,
        notes: Vec::new(),
    })
}

fn canonical(root: &Path) -> PathBuf {
    std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf())
}

/// `(data.dataset, data.root)` of a current row on the same folder and split.
fn spelling(row: &JobRow, root: &Path, sub: &Submission) -> Option<(Value, Value)> {
    if row.retired {
        return None;
    }
    let config = row.train_config().ok()??;
    if config.data.split != sub.split || canonical(&config.data.root) != root {
        return None;
    }
    Some((
        Value::String(config.data.dataset),
        serde_json::json!(config.data.root),
    ))
}

/// What differs between a sweep's row and the external one, beyond the model.
fn notes(row: &JobRow, sub: &Submission) -> Vec<String> {
    let mut notes = Vec::new();
    let Ok(Some(config)) = row.train_config() else {
        return notes;
    };
    if config.data.pixel_spacing != sub.data.pixel_spacing {
        notes.push(format!(
            "job {} measures distances with pixel spacing {:?}, this row with the data set's {:?}: \
             their HD95 and ASSD are not comparable",
            row.job_id, config.data.pixel_spacing, sub.data.pixel_spacing
        ));
    }
    let theirs = row
        .data_fingerprint
        .as_deref()
        .and_then(|f| f.split(' ').nth(1));
    let ours = format!("val:{}", sub.val_fingerprint);
    if config.data.limit_val.is_none() && theirs.is_some_and(|t| t != ours) {
        notes.push(format!(
            "job {} was scored on other validation files ({}, now {ours}): the data set changed since",
            row.job_id,
            theirs.unwrap_or_default()
        ));
    }
    notes
}

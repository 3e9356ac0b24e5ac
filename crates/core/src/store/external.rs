//! Rows scored from another program's predictions (`sweep evaluate`): a succeeded job of a
//! sweep with metrics and per-image results like the sweep's own, marked external so that no
//! one takes it for a trained model, and never claimed or retired by a sweep file.
//!
//! Its hash is a content hash (name, split, the files scored), so evaluating the same folder
//! again finds the row it already made ([`Outcome::Unchanged`]); other files under the same
//! name replace it: the earlier row is retired, kept for the record ([`Outcome::Replaced`]).

use super::NewJob;
use crate::protocol::{ImageMetric, MetricValue};
use serde::{Deserialize, Serialize};

/// What marks a job row as external (stored as JSON in `jobs.external`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct External {
    /// The row's name (`--as`): its label, without a fold.
    pub name: String,
    /// The predictions folder, as an absolute path.
    pub predictions: String,
    /// SHA-256 over the scored files (case ids and contents), 16 hex digits.
    pub content: String,
    /// Cases scored.
    pub cases: usize,
}

/// An external row to record: the job row (label, canonical config, classes), what marks
/// it, and its results.
#[derive(Clone, Debug, PartialEq)]
pub struct NewExternal {
    pub sweep_id: i64,
    pub job: NewJob,
    pub external: External,
    pub metrics: Vec<MetricValue>,
    pub images: Vec<ImageMetric>,
    /// `train:- val:<hex>`: the validation files it was scored on (its training is unknown).
    pub data_fingerprint: String,
    /// The sweep build that scored it.
    pub sweep_version: String,
}

/// What [`crate::store::Store::record_external`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A row scored now (new, or an earlier retired row of these same files made current).
    Added,
    /// The sweep already holds this row (same name, split and files): nothing was written.
    Unchanged,
    /// A new result under a name that had another: the earlier row(s) are retired.
    Replaced,
}

/// The row an external result is in, and how it got there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Recorded {
    pub job_id: i64,
    pub outcome: Outcome,
    /// Unix milliseconds: when the result in the row was scored (earlier than now when
    /// unchanged).
    pub scored_at: i64,
    /// Rows of the same name retired by this one.
    pub retired: Vec<i64>,
}

//! The numbers a job reports, as the store keeps them: summary metrics and per-image rows.
//! The job protocol carries them (`protocol` re-exports both).

use serde::{Deserialize, Serialize};

/// One number of the evaluation: `class` is None for means / aAcc. Values in percent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricValue {
    pub split: String,
    pub name: String,
    pub class: Option<usize>,
    pub value: f64,
}

/// One validation image's numbers for one class: the IoUMetric counts (so any summary can be
/// recomputed for any subset of images), the image's own Dice and, for foreground classes,
/// its surface distances (see [`super::surface`] for the empty-mask policy).
/// Undefined values (NaN) are `None`: JSON and SQL have no NaN.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageMetric {
    pub split: String,
    pub image: String,
    pub class: usize,
    /// #(prediction = label = class), #(prediction = class), #(label = class).
    pub intersect: u64,
    pub pred: u64,
    pub label: u64,
    /// Percent, as the other metrics.
    pub dice: Option<f64>,
    /// In `unit`s (label pixels unless the data set states a pixel spacing).
    pub hd95: Option<f64>,
    pub assd: Option<f64>,
    pub presence: Option<super::surface::Presence>,
    pub unit: String,
}

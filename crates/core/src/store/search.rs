//! What the store keeps of an adaptive search: the event log and the decision log (see
//! [`crate::search`]), and how a trial's jobs are made when a decision proposes it.

use super::NewJob;
use crate::protocol::{ImageMetric, MetricValue};
use crate::search::{Action, Event, Goal};
use serde::Serialize;

/// Builds the jobs of a proposed trial (every seed and fold, in the trial's job order).
/// Implemented from the sweep file by the scheduler; the store calls it inside the
/// transaction that takes the decision.
pub trait TrialJobs: Send + Sync + std::fmt::Debug {
    /// Err: the point is not a valid job (the trial is recorded as failed, with this reason).
    fn jobs(&self, trial: u64, params: &[serde_json::Value]) -> Result<Vec<NewJob>, String>;
    /// Failed attempts a trial's job may have.
    fn max_attempts(&self) -> u32;
}

/// A sweep's search as recorded.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SearchLog {
    pub events: Vec<LoggedEvent>,
    pub decisions: Vec<LoggedDecision>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoggedEvent {
    pub event: Event,
    /// The job whose report it was.
    pub job_id: Option<i64>,
    /// Unix milliseconds.
    pub recorded_at: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoggedDecision {
    pub seq: u64,
    /// The event it was decided after (0: before any, which a sweep's first event is not).
    pub after_event: u64,
    pub action: Action,
    pub decided_at: i64,
    /// The orchestrator whose transaction took it.
    pub decided_by: Option<String>,
}

impl SearchLog {
    /// The rows as the decision step reads them.
    pub fn state(&self) -> crate::search::State {
        crate::search::State {
            events: self.events.iter().map(|e| e.event.clone()).collect(),
            decisions: self.decisions.iter().map(|d| d.action.clone()).collect(),
        }
    }
}

/// The goal metric of a job's evaluation (split `val`), if it reported it.
pub fn goal_value(goal: &Goal, metrics: &[MetricValue]) -> Option<f64> {
    metrics
        .iter()
        .find(|m| m.split == "val" && m.name == goal.metric && m.class == goal.class)
        .map(|m| m.value)
        .filter(|v| v.is_finite())
}

/// Per-image scores of the goal, by image name: the image's Dice of the goal's class, or
/// its mean Dice over classes for `mDice`; empty for other metrics (the `paired` rule then
/// has no images to compare and never stops).
pub fn goal_images(goal: &Goal, images: &[ImageMetric]) -> Vec<f64> {
    use std::collections::BTreeMap;
    let mut by_image: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for m in images.iter().filter(|m| m.split == "val") {
        let wanted = match (goal.metric.as_str(), goal.class) {
            ("Dice", Some(c)) => m.class == c,
            ("mDice", None) => true,
            _ => false,
        };
        if wanted {
            by_image.entry(&m.image).or_default().extend(m.dice);
        }
    }
    by_image
        .into_values()
        .filter(|d| !d.is_empty())
        .map(|d| d.iter().sum::<f64>() / d.len() as f64)
        .collect()
}

//! The rows every decision reads: the events jobs reported (in the order they were recorded,
//! under the sweep's lock) and the decisions taken so far. [`State`] is all a decision may
//! depend on: no clock, no process state, so the same rows always give the same decisions.

use super::action::Action;
use super::policy::Policy;
use serde::{Deserialize, Serialize};

/// One thing that happened to a trial's job, as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// 1-based order in the sweep's log.
    pub seq: u64,
    pub kind: EventKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// The sweep was registered with this policy (first run, or a changed `search:`/`stop:`).
    Policy { policy: Box<Policy> },
    /// Job `job` (0-based: seed-major, then fold) of `trial` reached rung `rung` (index into
    /// the policy's rungs; without rungs, 0 is the job's end) with the goal metric `value`
    /// as stored (not sign-flipped). `images`: per-image scores of the goal metric, in a
    /// fixed image order, for the `paired` rule (empty when not recorded). `cost_s`: job
    /// time spent since this job's previous event.
    Rung {
        trial: u64,
        job: u64,
        rung: usize,
        value: f64,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        images: Vec<f64>,
        cost_s: f64,
    },
    /// Job `job` of `trial` failed for good (or diverged): the trial is over.
    Failed {
        trial: u64,
        job: u64,
        reason: String,
        cost_s: f64,
    },
}

#[cfg(test)]
impl EventKind {
    /// Job 0 of `trial` at `rung` with `value`, without per-image scores (the tests' logs).
    pub(crate) fn rung_for_test(trial: u64, rung: usize, value: f64, cost_s: f64) -> EventKind {
        EventKind::Rung {
            trial,
            job: 0,
            rung,
            value,
            images: Vec::new(),
            cost_s,
        }
    }
}

/// The decisions so far and the events, in order: a decision's whole input.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    pub events: Vec<Event>,
    pub decisions: Vec<Action>,
}

impl State {
    /// The policy in force: the last one registered.
    pub fn policy(&self) -> Option<&Policy> {
        self.events.iter().rev().find_map(|e| match &e.kind {
            EventKind::Policy { policy } => Some(policy.as_ref()),
            _ => None,
        })
    }
}

//! A decision of the search, as taken by [`super::decide()`] and logged as a row: propose a
//! trial, promote it past a rung, or stop it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One decision, as logged. Applying the actions that [`super::decide()`] returned and deciding
/// again returns nothing: a decision is taken once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// A new trial: its jobs (every seed and fold) run to the first rung (or to the end).
    Propose {
        trial: u64,
        /// Values in the order of the policy's space.
        params: Vec<Value>,
    },
    /// Continue `trial`'s jobs from their checkpoints to rung `rung` (the next one).
    Promote {
        trial: u64,
        rung: usize,
        evidence: String,
    },
    /// The trial stops at rung `rung` (the last it completed, 0 if none); it keeps its
    /// checkpoints.
    Stop {
        trial: u64,
        rung: usize,
        evidence: String,
        /// Stopped because the search ended (no room, no budget), not by the rule's verdict
        /// or a failure: if the policy grows (more trials, more budget), the rule may
        /// promote it again like a paused trial.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        resumable: bool,
    },
}

impl Action {
    pub fn trial(&self) -> u64 {
        match self {
            Action::Propose { trial, .. }
            | Action::Promote { trial, .. }
            | Action::Stop { trial, .. } => *trial,
        }
    }

    /// `propose`, `promote`, `stop`: as stored.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Propose { .. } => "propose",
            Action::Promote { .. } => "promote",
            Action::Stop { .. } => "stop",
        }
    }

    /// The rung the action is about (a proposal runs to rung 0).
    pub fn rung(&self) -> usize {
        match self {
            Action::Propose { .. } => 0,
            Action::Promote { rung, .. } | Action::Stop { rung, .. } => *rung,
        }
    }
}

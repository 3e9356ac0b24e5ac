//! The decision step: from the rows ([`State`]) to what to do next ([`Action`]s). Pure.

use super::state::State;
use serde::{Deserialize, Serialize};

/// One decision, as logged. Applying the actions that [`decide`] returned and deciding
/// again returns nothing: a decision is taken once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// A new trial: its jobs (every seed and fold) run to the first rung (or to the end).
    Propose {
        trial: u64,
        /// Values in the order of the policy's space.
        params: Vec<serde_json::Value>,
    },
    /// Continue `trial`'s jobs from their checkpoints to rung `rung` (the next one).
    Promote {
        trial: u64,
        rung: usize,
        evidence: String,
    },
    /// The trial stops at rung `rung` (the last it completed); it keeps its checkpoints and
    /// may be continued by a later decision if the policy allows more.
    Stop {
        trial: u64,
        rung: usize,
        evidence: String,
    },
}

/// What to do now, given everything recorded.
pub fn decide(state: &State) -> Vec<Action> {
    let _ = state;
    todo!("decision step")
}

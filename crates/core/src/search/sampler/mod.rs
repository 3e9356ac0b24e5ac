//! Proposals: which values a new trial gets. Small strategy objects in the manner of
//! Optuna's samplers, each a pure function of its arguments so that a replay re-derives
//! the same proposals from the recorded history.
//!
//! - [`RandomSampler`]: independent uniform draws, the baseline and TPE's warm-up;
//! - [`SobolSampler`]: a scrambled Sobol' sequence, evenly spread for small budgets;
//! - [`TpeSampler`]: Optuna's univariate tree-structured Parzen estimator.

mod gauss;
mod parzen;
pub mod random;
pub mod sobol;
mod sobol_directions;
pub mod tpe;

pub use random::RandomSampler;
pub use sobol::SobolSampler;
pub use tpe::TpeSampler;

use super::space::Space;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Random,
    Sobol,
    Tpe,
}

impl Method {
    pub const NAMES: [&'static str; 3] = ["random", "sobol", "tpe"];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Random => "random",
            Method::Sobol => "sobol",
            Method::Tpe => "tpe",
        }
    }

    /// The sampler with its defaults (Optuna's, for TPE).
    pub fn sampler(self) -> Box<dyn Sampler> {
        match self {
            Method::Random => Box::new(RandomSampler),
            Method::Sobol => Box::new(SobolSampler),
            Method::Tpe => Box::new(TpeSampler::default()),
        }
    }
}

/// What became of an earlier trial, as a sampler sees it.
#[derive(Clone, Debug, PartialEq)]
pub enum Observation {
    /// Its goal value, higher is better (already sign-flipped by the goal).
    Scored(f64),
    /// Still running: TPE counts it as bad (the constant liar), so that parallel workers
    /// do not all propose the region around the current best.
    Pending,
    /// Failed or diverged: ignored.
    Failed,
}

/// An earlier trial: its values (in the order of the space's params) and its outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    pub params: Vec<Value>,
    pub value: Observation,
}

/// A proposal strategy.
pub trait Sampler: Send + Sync {
    /// The values of trial `number` (0-based), one per parameter in the order of
    /// `space.params`. `history` holds the earlier trials in trial order. `draw` is the
    /// redraw index: the caller asks again with `draw + 1` when a proposal duplicates an
    /// existing trial. A pure function of its arguments.
    fn propose(
        &self,
        space: &Space,
        history: &[Observed],
        number: u64,
        draw: u32,
        seed: u64,
    ) -> Vec<Value>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_round_trip_through_serde() {
        for (m, name) in [Method::Random, Method::Sobol, Method::Tpe]
            .into_iter()
            .zip(Method::NAMES)
        {
            assert_eq!(m.as_str(), name);
            assert_eq!(serde_json::to_value(m).unwrap(), Value::from(name));
        }
    }
}

//! What a sweep file's `search:` and `stop:` ask for, checked: the input of every decision.
//! Serialised into the event log when a sweep is (re)registered, so that a replay uses the
//! policy that was in force at each event.

use super::sampler::Method;
use super::space::Space;
use serde::{Deserialize, Serialize};

/// `search:` and `stop:` of one sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub method: Method,
    /// Hard cap on proposals, across every agent and restart.
    pub trials: u64,
    /// Trials in flight at most (running or queued); running ones are TPE's liars.
    pub parallel: u64,
    /// Seeds every random choice of the search (proposals, tie-breaks).
    pub seed: u64,
    /// Stop proposing once this many hours of job time were spent (attempt durations).
    pub budget_hours: Option<f64>,
    pub space: Space,
    /// What is optimised: `stop.metric` when stopping, else `search.metric` (mDice).
    pub goal: Goal,
    pub stop: Option<StopSpec>,
    /// Jobs per trial: seeds x folds. A rung is complete when all of them reached it.
    pub jobs_per_trial: u64,
}

/// The metric a search optimises, and its direction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Goal {
    /// As stored: `mDice`, `mIoU`, `Dice` with `class`, ...
    pub metric: String,
    pub class: Option<usize>,
    pub maximize: bool,
}

impl Goal {
    /// `Dice.1`, `mDice`: as written in the sweep file.
    pub fn key(&self) -> String {
        match self.class {
            Some(c) => format!("{}.{c}", self.metric),
            None => self.metric.clone(),
        }
    }

    /// Reads `mDice`, `Dice.1`, `HD95.1`: metrics whose name says smaller is better
    /// (distances, losses) are minimised, every overlap score maximised.
    pub fn parse(key: &str) -> Result<Goal, String> {
        let (metric, class) = match key.rsplit_once('.') {
            Some((m, c)) => match c.parse::<usize>() {
                Ok(c) => (m, Some(c)),
                Err(_) => {
                    return Err(format!(
                        "{key:?}: expected a metric (mDice) or a metric of one class (Dice.1)"
                    ))
                }
            },
            None => (key, None),
        };
        let maximize = !matches!(metric, "HD95" | "ASSD" | "mHD95" | "mASSD" | "loss");
        if metric.is_empty() {
            return Err("empty metric name".into());
        }
        Ok(Goal {
            metric: metric.to_string(),
            class,
            maximize,
        })
    }

    /// The value in "higher is better" form (what samplers and rules compare).
    pub fn score(&self, value: f64) -> f64 {
        if self.maximize {
            value
        } else {
            -value
        }
    }
}

/// `stop: {rule, metric, fidelity, alpha}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StopSpec {
    pub rule: RuleKind,
    pub fidelity: Fidelity,
    /// `paired`: the family-wise error over the rungs.
    pub alpha: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Every trial runs to `fidelity.max`.
    None,
    /// Stop a trial whose rung value is below the median of the others' at that rung.
    Median,
    /// Asynchronous successive halving, promotion type: pause at each rung, continue the
    /// top 1/eta from their checkpoints.
    Asha,
    /// Stop only when the per-image paired bootstrap says worse than the incumbent at the
    /// same rung beyond noise (alpha over the rungs).
    Paired,
}

impl RuleKind {
    pub const NAMES: [&'static str; 4] = ["none", "median", "asha", "paired"];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::None => "none",
            RuleKind::Median => "median",
            RuleKind::Asha => "asha",
            RuleKind::Paired => "paired",
        }
    }
}

/// `fidelity: {key: iters, min, max, eta}`: rungs `min, min*eta, ...` below `max`, then `max`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fidelity {
    pub key: String,
    pub min: u64,
    pub max: u64,
    pub eta: u64,
}

impl Fidelity {
    /// The rungs, ascending; the last is `max`.
    pub fn rungs(&self) -> Vec<u64> {
        let mut rungs = Vec::new();
        let mut r = self.min.max(1);
        while r < self.max {
            rungs.push(r);
            r = r.saturating_mul(self.eta.max(2));
        }
        rungs.push(self.max);
        rungs
    }
}

impl Policy {
    /// The rungs jobs pause at (empty without a stopping rule: jobs run to their end).
    pub fn rungs(&self) -> Vec<u64> {
        match &self.stop {
            Some(s) if s.rule != RuleKind::None => s.fidelity.rungs(),
            _ => Vec::new(),
        }
    }
}

/// A one-parameter random search with rungs 1, 3, 9 (eta 3) under `rule`, for the tests of
/// the modules that decide and report on searches.
#[cfg(test)]
pub(crate) fn test_policy(trials: u64, parallel: u64, rule: Option<RuleKind>) -> Policy {
    use super::space::{Dist, Param};
    Policy {
        method: Method::Random,
        trials,
        parallel,
        seed: 7,
        budget_hours: None,
        space: Space {
            params: vec![Param {
                key: "optimizer.lr".into(),
                dist: Dist::LogUniform {
                    low: 1e-4,
                    high: 1e-1,
                    step: None,
                },
            }],
        },
        goal: Goal::parse("mDice").unwrap(),
        stop: rule.map(|rule| StopSpec {
            rule,
            fidelity: Fidelity {
                key: "iters".into(),
                min: 1,
                max: 9,
                eta: 3,
            },
            alpha: 0.05,
        }),
        jobs_per_trial: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rungs_grow_by_eta_and_end_at_max() {
        let f = |min, max, eta| {
            Fidelity {
                key: "iters".into(),
                min,
                max,
                eta,
            }
            .rungs()
        };
        assert_eq!(f(50, 450, 3), [50, 150, 450]);
        assert_eq!(f(25, 300, 3), [25, 75, 225, 300]);
        assert_eq!(f(2, 52, 3), [2, 6, 18, 52]);
        assert_eq!(f(100, 100, 3), [100]);
    }

    #[test]
    fn goals_know_their_direction() {
        assert!(Goal::parse("mDice").unwrap().maximize);
        let g = Goal::parse("HD95.1").unwrap();
        assert_eq!(
            (g.metric.as_str(), g.class, g.maximize),
            ("HD95", Some(1), false)
        );
        assert_eq!(g.key(), "HD95.1");
        assert!(Goal::parse("Dice.x").is_err());
    }
}

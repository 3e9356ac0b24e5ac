//! The trials an adaptive search stopped early: where each stopped (the last rung all its
//! jobs reached), its value there, and the stopping rule's evidence as recorded with the
//! decision. Shown under the search's leaderboard and on the dashboard; a stopped trial
//! keeps its checkpoints, so this is also the list of what could be continued.

use crate::search::decide::View;
use crate::search::{Action, Policy, State};
use crate::store::search::SearchLog;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoppedTrial {
    pub trial: u64,
    /// `optimizer.lr=0.0031, model.head=fcn`.
    pub params: String,
    /// The iteration of the last rung all its jobs reached (None: none reached, e.g. a
    /// failed job stopped the trial).
    pub iteration: Option<u64>,
    /// Its value there (the mean over its seeds and folds).
    pub value: Option<f64>,
    /// The rule's words: `asha: rank 5 of 9 at rung 50 (top 3 promoted)`.
    pub evidence: String,
}

/// The search's stopped trials by trial number, each with its last stop decision (a trial
/// continued after a stop and stopped again shows the later one). Empty for a grid.
pub fn stopped_trials(log: &SearchLog) -> Vec<StoppedTrial> {
    super::replay::with_view(log, stopped).unwrap_or_default()
}

fn stopped(view: &View, policy: &Policy, state: &State) -> Vec<StoppedTrial> {
    let table = view.table();
    let levels = policy.rungs();
    // The table holds higher-is-better scores: a minimised metric's are negated.
    let sign = if policy.goal.maximize { 1.0 } else { -1.0 };
    view.trials
        .iter()
        .filter(|(_, t)| t.stopped)
        .map(|(&number, t)| {
            let reached = t.reached();
            let value = reached.and_then(|k| {
                table
                    .at(k)
                    .iter()
                    .find(|(n, _)| *n == number)
                    .map(|(_, v)| sign * v)
            });
            StoppedTrial {
                trial: number,
                params: super::replay::describe_params(&t.params, Some(policy)),
                // Without rungs (no stopping rule) the only level is the end.
                iteration: reached.and_then(|k| levels.get(k).copied()),
                value,
                evidence: last_stop_evidence(state, number).unwrap_or_default(),
            }
        })
        .collect()
}

fn last_stop_evidence(state: &State, trial: u64) -> Option<String> {
    state.decisions.iter().rev().find_map(|a| match a {
        Action::Stop {
            trial: t, evidence, ..
        } if *t == trial => Some(evidence.clone()),
        _ => None,
    })
}

/// The stopped trials as a table under the leaderboard, with the metric's name; None when
/// the search stopped none.
pub fn stopped_table(log: &SearchLog, metric: &str) -> Option<String> {
    let stopped = stopped_trials(log);
    if stopped.is_empty() {
        return None;
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec![
        "trial".to_string(),
        "stopped at".to_string(),
        metric.to_string(),
        "evidence".to_string(),
        "point".to_string(),
    ]);
    for s in &stopped {
        table.add_row(vec![
            s.trial.to_string(),
            s.iteration.map_or("-".into(), |i| format!("{i} it")),
            s.value.map_or("-".into(), |v| format!("{v:.2}")),
            s.evidence.clone(),
            s.params.clone(),
        ]);
    }
    Some(format!(
        "stopped early ({} trial(s); each keeps its checkpoints):\n{table}",
        stopped.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::policy::{test_policy, RuleKind};
    use crate::search::{decide, Event, EventKind};
    use crate::store::search::{LoggedDecision, LoggedEvent};

    /// Three trials under ASHA (rungs 1, 3, 9; eta 3) reporting rung 1 with 10, 20, 30, each
    /// decision taken after each event as the store takes them.
    fn log() -> SearchLog {
        let mut log = SearchLog {
            events: Vec::new(),
            decisions: Vec::new(),
        };
        let policy = test_policy(3, 3, Some(RuleKind::Asha));
        let mut kinds = vec![EventKind::Policy {
            policy: Box::new(policy),
        }];
        // The best is promoted to rung 3 and reports 35 there; one result at rung 3 is too
        // few for eta 3 to promote, so all three stop when nothing else can run.
        for (trial, rung, value) in [(0, 0, 10.0), (1, 0, 20.0), (2, 0, 30.0), (2, 1, 35.0)] {
            kinds.push(EventKind::rung_for_test(trial, rung, value, 1.0));
        }
        for (i, kind) in kinds.into_iter().enumerate() {
            let event = Event {
                seq: i as u64 + 1,
                kind,
            };
            log.events.push(LoggedEvent {
                event,
                job_id: None,
                recorded_at: 0,
            });
            loop {
                let actions = decide(&log.state());
                if actions.is_empty() {
                    break;
                }
                for action in actions {
                    log.decisions.push(LoggedDecision {
                        seq: log.decisions.len() as u64 + 1,
                        after_event: i as u64 + 1,
                        action,
                        decided_at: 0,
                        decided_by: None,
                    });
                }
            }
        }
        log
    }

    #[test]
    fn stopped_trials_say_where_on_what_value_and_why() {
        let stopped = stopped_trials(&log());
        let numbers: Vec<u64> = stopped.iter().map(|s| s.trial).collect();
        assert_eq!(numbers, [0, 1, 2], "{stopped:?}");
        let at = |s: &StoppedTrial| (s.iteration, s.value);
        assert_eq!(at(&stopped[0]), (Some(1), Some(10.0)));
        assert_eq!(at(&stopped[1]), (Some(1), Some(20.0)));
        assert_eq!(
            at(&stopped[2]),
            (Some(3), Some(35.0)),
            "where it got, not where it began"
        );
        assert_eq!(
            stopped[1].evidence,
            "asha: rank 2 of 3 at rung 1 (top 1 promoted)"
        );
        assert!(stopped
            .iter()
            .all(|s| s.params.starts_with("optimizer.lr=")));
        let table = stopped_table(&log(), "mDice").unwrap();
        assert!(table.contains("stopped early (3 trial(s)"), "{table}");
        assert!(table.contains("35.00") && table.contains("3 it"), "{table}");
    }

    #[test]
    fn a_grid_has_no_stopped_trials() {
        let empty = SearchLog {
            events: Vec::new(),
            decisions: Vec::new(),
        };
        assert!(stopped_trials(&empty).is_empty());
        assert_eq!(stopped_table(&empty, "mDice"), None);
    }
}

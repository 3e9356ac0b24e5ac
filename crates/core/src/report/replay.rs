//! `sweep replay SWEEP`: re-derives an adaptive search's decisions from its event log with
//! the same decision step the agents ran, and prints the log with each decision beside the
//! event it followed. Any difference from the recorded decisions is reported: it would mean
//! a decision depended on something other than the rows (a bug, or another sweep version).

use crate::search::{decide, Action, EventKind, Policy, State};
use crate::store::search::{LoggedDecision, SearchLog};
use std::fmt::Write;

/// What a replay found.
#[derive(Debug)]
pub struct Replay {
    /// The log, one line per event and per decision.
    pub text: String,
    /// Decisions re-derived and recorded.
    pub derived: usize,
    pub recorded: usize,
    /// The first decision where they differ (None: they agree).
    pub difference: Option<String>,
}

impl Replay {
    pub fn agrees(&self) -> bool {
        self.difference.is_none() && self.derived == self.recorded
    }
}

/// Replays `log` event by event, deciding to a fixed point after each, as the store does.
pub fn replay(log: &SearchLog) -> Replay {
    let mut state = State::default();
    let mut derived: Vec<(u64, Action)> = Vec::new();
    let mut text = String::new();
    for logged in &log.events {
        let event = &logged.event;
        state.events.push(event.clone());
        let policy = state.policy().cloned();
        let _ = writeln!(
            text,
            "{}",
            describe_event(event, policy.as_ref(), logged.job_id)
        );
        loop {
            let actions = decide(&state);
            if actions.is_empty() {
                break;
            }
            for action in actions {
                let _ = writeln!(text, "    -> {}", describe_action(&action, policy.as_ref()));
                derived.push((event.seq, action.clone()));
                state.decisions.push(action);
            }
        }
    }
    let difference = first_difference(&derived, &log.decisions);
    let _ = writeln!(
        text,
        "replay: {} decision(s) re-derived from {} event(s); {}",
        derived.len(),
        log.events.len(),
        match &difference {
            None if derived.len() == log.decisions.len() =>
                format!("all agree with the {} recorded", log.decisions.len()),
            None => format!("{} recorded", log.decisions.len()),
            Some(d) => format!("DIFFERENT from the recorded log: {d}"),
        }
    );
    Replay {
        text,
        derived: derived.len(),
        recorded: log.decisions.len(),
        difference,
    }
}

fn first_difference(derived: &[(u64, Action)], recorded: &[LoggedDecision]) -> Option<String> {
    for (i, (after, action)) in derived.iter().enumerate() {
        let Some(r) = recorded.get(i) else {
            return Some(format!(
                "decision {} ({}) after event {after} was never recorded",
                i + 1,
                describe_action(action, None)
            ));
        };
        if &r.action != action || r.after_event != *after {
            return Some(format!(
                "decision {}: recorded {} after event {}, re-derived {} after event {after}",
                i + 1,
                describe_action(&r.action, None),
                r.after_event,
                describe_action(action, None)
            ));
        }
    }
    recorded.get(derived.len()).map(|r| {
        format!(
            "decision {} ({}) was recorded but does not follow from the events",
            r.seq,
            describe_action(&r.action, None)
        )
    })
}

/// `event 12  trial 3 job 1 reached rung 0 (iters 50): mDice 51.20  [job 17, 3.2 s]`.
fn describe_event(
    event: &crate::search::Event,
    policy: Option<&Policy>,
    job_id: Option<i64>,
) -> String {
    let head = format!("event {:<4}", event.seq);
    match &event.kind {
        EventKind::Policy { policy } => format!("{head} policy: {}", describe_policy(policy)),
        EventKind::Rung {
            trial,
            job,
            rung,
            value,
            cost_s,
            ..
        } => {
            let at = policy
                .and_then(|p| {
                    let rungs = p.rungs();
                    let key = p.stop.as_ref().map_or("iters", |s| s.fidelity.key.as_str());
                    rungs.get(*rung).map(|r| format!(" ({key} {r})"))
                })
                .unwrap_or_default();
            let metric = policy.map_or("value".to_string(), |p| p.goal.key());
            let job_ref = job_id.map(|id| format!("job {id}, ")).unwrap_or_default();
            format!(
                "{head} trial {trial} job {job} reached rung {rung}{at}: {metric} {value:.2}  [{job_ref}{cost_s:.1} s]"
            )
        }
        EventKind::Failed {
            trial, job, reason, ..
        } => format!("{head} trial {trial} job {job} failed: {reason}"),
    }
}

fn describe_policy(p: &Policy) -> String {
    let stop = match &p.stop {
        Some(s) => format!(
            "{} on {} (rungs {})",
            s.rule.as_str(),
            p.goal.key(),
            s.fidelity
                .rungs()
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join("/")
        ),
        None => format!("no stopping, {} {}", direction(p), p.goal.key()),
    };
    format!(
        "{}, {} trials, {} in parallel, seed {}, {} job(s) per trial, {stop}",
        p.method.as_str(),
        p.trials,
        p.parallel,
        p.seed,
        p.jobs_per_trial
    )
}

fn direction(p: &Policy) -> &'static str {
    if p.goal.maximize {
        "maximising"
    } else {
        "minimising"
    }
}

/// `propose trial 4: optimizer.lr=0.0031, model.head=fcn`.
pub fn describe_action(action: &Action, policy: Option<&Policy>) -> String {
    match action {
        Action::Propose { trial, params } => {
            format!("propose trial {trial}: {}", describe_params(params, policy))
        }
        Action::Promote {
            trial,
            rung,
            evidence,
        } => format!("promote trial {trial} to rung {rung}: {evidence}"),
        Action::Stop {
            trial,
            rung,
            evidence,
            resumable,
        } => {
            let note = if *resumable {
                " (resumable: the search ended, a larger one may continue it)"
            } else {
                ""
            };
            format!("stop trial {trial} at rung {rung}: {evidence}{note}")
        }
    }
}

/// A trial's point: `optimizer.lr=0.0031, model.head=fcn` (keys in the space's order).
pub fn describe_params(params: &[serde_json::Value], policy: Option<&Policy>) -> String {
    let values: Vec<String> = params
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let key = policy
                .and_then(|p| p.space.params.get(i))
                .map_or(format!("#{i}"), |p| p.key.clone());
            format!("{key}={}", crate::sweepfile::format_value(&json_to_yaml(v)))
        })
        .collect();
    values.join(", ")
}

fn json_to_yaml(v: &serde_json::Value) -> serde_yaml::Value {
    serde_yaml::to_value(v).unwrap_or(serde_yaml::Value::Null)
}

/// One line on where a search stands (`sweep status`): trials proposed of the cap, in
/// flight, paused, stopped, finished and failed, job time spent, the last decision.
pub fn summary(name: &str, log: &SearchLog) -> Option<String> {
    let state = log.state();
    let policy = state.policy()?;
    let view = crate::search::decide::View::new(policy, &state);
    let rungs = view.rungs;
    let (mut running, mut paused, mut stopped, mut done, mut failed) = (0, 0, 0, 0, 0);
    for t in view.trials.values() {
        if t.failed {
            failed += 1;
        } else if t.stopped {
            stopped += 1;
        } else if t.completed.contains_key(&(rungs - 1)) {
            done += 1;
        } else if t.completed.contains_key(&t.target) {
            paused += 1;
        } else {
            running += 1;
        }
    }
    let budget = policy
        .budget_hours
        .map(|h| format!(" of {h} h"))
        .unwrap_or_default();
    let rule = policy.stop.as_ref().map_or("none", |s| s.rule.as_str());
    let mut line = format!(
        "search {name}: {} of {} trials proposed ({}, seed {}, stop: {rule}); {running} in flight, \
         {paused} paused at a rung, {done} finished, {stopped} stopped, {failed} failed; job time {:.2} h{budget}",
        view.trials.len(),
        policy.trials,
        policy.method.as_str(),
        policy.seed,
        view.spent_s / 3600.0,
    );
    if let Some(last) = log.decisions.last() {
        line += &format!(
            "\n  last decision: {}",
            describe_action(&last.action, Some(policy))
        );
    }
    Some(line)
}

/// Trials that must have reached the last rung before rung correlations are worth printing.
pub const MIN_FINISHED_FOR_CORRELATION: usize = 10;
/// Below this Spearman correlation a rung ranks trials too unlike their final values for
/// early stopping to be trusted on it.
pub const LOW_CORRELATION: f64 = 0.5;

/// Is early stopping safe here? For each rung below the last: Spearman's rank correlation
/// between the trials' values there and their final values (trials that reached both),
/// with a warning when it is low. Empty without rungs; a note until enough trials finished.
pub fn rung_correlations(log: &SearchLog) -> Vec<String> {
    with_view(log, |view, policy, _| correlations(view, policy)).unwrap_or_default()
}

/// `f` on the search's view of its recorded rows (trials and rung table), its policy and its
/// state; None for a log without a policy (a grid).
pub(crate) fn with_view<T>(
    log: &SearchLog,
    f: impl FnOnce(&decide::View, &Policy, &State) -> T,
) -> Option<T> {
    let state = log.state();
    let policy = state.policy()?;
    let view = decide::View::new(policy, &state);
    Some(f(&view, policy, &state))
}

fn correlations(view: &decide::View, policy: &Policy) -> Vec<String> {
    let table = view.table();
    let last = view.rungs - 1;
    if last == 0 {
        return Vec::new();
    }
    let finals: std::collections::BTreeMap<u64, f64> =
        table.by_rung[last].iter().copied().collect();
    if finals.len() < MIN_FINISHED_FOR_CORRELATION {
        return vec![format!(
            "rung correlations: {} trial(s) reached the last rung, {MIN_FINISHED_FOR_CORRELATION} needed",
            finals.len()
        )];
    }
    let levels = policy.rungs();
    (0..last)
        .map(|k| {
            let pairs: Vec<(f64, f64)> = table.by_rung[k]
                .iter()
                .filter_map(|(t, v)| finals.get(t).map(|f| (*v, *f)))
                .collect();
            let at = levels.get(k).map_or(k.to_string(), |r| r.to_string());
            match crate::search::rank::spearman(&pairs) {
                Some(rho) if rho < LOW_CORRELATION => format!(
                    "rung {at}: Spearman ρ {rho:.2} with the final value over {} trials: LOW, early \
                     stopping at this rung can rank configurations badly",
                    pairs.len()
                ),
                Some(rho) => format!(
                    "rung {at}: Spearman ρ {rho:.2} with the final value over {} trials",
                    pairs.len()
                ),
                None => format!("rung {at}: no correlation ({} trials, or no spread)", pairs.len()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::policy::RuleKind;
    use crate::search::Event;
    use crate::store::search::LoggedEvent;

    /// Ten trials through rungs 1, 3 and 9: rung 3 ranks them as the end does, rung 1 the
    /// other way round.
    fn log() -> SearchLog {
        let policy = crate::search::policy::test_policy(10, 10, Some(RuleKind::Median));
        let mut kinds = vec![EventKind::Policy {
            policy: Box::new(policy),
        }];
        for trial in 0..10u64 {
            let t = trial as f64;
            for (rung, value) in [(0, 50.0 - t), (1, 50.0 + t), (2, 60.0 + t)] {
                kinds.push(EventKind::rung_for_test(trial, rung, value, 1.0));
            }
        }
        let events = kinds
            .into_iter()
            .enumerate()
            .map(|(i, kind)| LoggedEvent {
                event: Event {
                    seq: i as u64 + 1,
                    kind,
                },
                job_id: None,
                recorded_at: 0,
            })
            .collect();
        SearchLog {
            events,
            decisions: Vec::new(),
        }
    }

    #[test]
    fn rung_correlations_warn_where_early_values_rank_unlike_the_final_ones() {
        let lines = rung_correlations(&log());
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with("rung 1: Spearman ρ -1.00") && lines[0].contains("LOW"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with("rung 3: Spearman ρ 1.00 with the final value over 10 trials"),
            "{}",
            lines[1]
        );
        assert!(!lines[1].contains("LOW"));
    }

    #[test]
    fn rung_correlations_wait_for_ten_finished_trials() {
        let mut short = log();
        // Drop the last trial's final report: nine at the end.
        short.events.pop();
        let lines = rung_correlations(&short);
        assert_eq!(
            lines,
            ["rung correlations: 9 trial(s) reached the last rung, 10 needed"]
        );
    }
}

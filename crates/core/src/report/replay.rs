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
            format!("propose trial {trial}: {}", values.join(", "))
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
        } => format!("stop trial {trial} at rung {rung}: {evidence}"),
    }
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

//! The decision step: from the rows ([`State`]) to what to do next ([`Action`]s). Pure: the
//! same rows give the same actions, which is what makes replays, the simulator and
//! exactly-once decisions across agents possible.
//!
//! After each event, in this order:
//! 1. a trial whose job failed is stopped (its other jobs do not start);
//! 2. a trial that the event brought to a rung below the last is judged by the stopping rule
//!    (a stopping rule may end it there; ASHA never does: it pauses);
//! 3. while fewer than `parallel` trials are in flight, the rule's promotion comes first,
//!    else a new proposal (until `trials` or the budget runs out);
//! 4. once nothing runs and nothing more can start, every trial still paused is stopped.

pub use super::action::Action;
use super::policy::Policy;
use super::rule::{self, RungTable, StopRule};
use super::sampler::{Observation, Observed};
use super::state::{EventKind, State};
use serde_json::Value;
use std::collections::BTreeMap;

/// Where a trial stands, derived from the decisions and events.
#[derive(Clone, Debug, Default)]
pub struct Trial {
    pub params: Vec<Value>,
    /// The rung its jobs run to now.
    pub target: usize,
    pub stopped: bool,
    /// Stopped when the search ended rather than by a verdict: promotable again.
    pub resumable: bool,
    pub failed: bool,
    /// Job index -> rung -> (value, per-image scores), as reported.
    pub reports: BTreeMap<u64, BTreeMap<usize, (f64, Vec<f64>)>>,
    /// Rungs completed by every job, with the event seq that completed each.
    pub completed: BTreeMap<usize, u64>,
}

impl Trial {
    /// The highest rung all its jobs reached.
    pub fn reached(&self) -> Option<usize> {
        self.completed.keys().next_back().copied()
    }

    /// Mean over its jobs at `rung` of the value and of each image's score.
    fn mean_at(&self, rung: usize) -> Option<(f64, Vec<f64>)> {
        let at: Vec<&(f64, Vec<f64>)> =
            self.reports.values().filter_map(|r| r.get(&rung)).collect();
        if at.is_empty() {
            return None;
        }
        let n = at.len() as f64;
        let value = at.iter().map(|(v, _)| v).sum::<f64>() / n;
        let len = at[0].1.len();
        let images = if len > 0 && at.iter().all(|(_, i)| i.len() == len) {
            (0..len)
                .map(|i| at.iter().map(|(_, im)| im[i]).sum::<f64>() / n)
                .collect()
        } else {
            Vec::new()
        };
        Some((value, images))
    }

    fn in_flight(&self) -> bool {
        !self.stopped && !self.failed && !self.completed.contains_key(&self.target)
    }
}

/// The search as the rows describe it.
pub struct View<'a> {
    pub policy: &'a Policy,
    /// By trial number.
    pub trials: BTreeMap<u64, Trial>,
    /// Job time spent so far, seconds.
    pub spent_s: f64,
    /// Number of rungs: the policy's, or 1 (the end) without a stopping rule.
    pub rungs: usize,
}

impl<'a> View<'a> {
    /// Replays decisions and events into trials.
    pub fn new(policy: &'a Policy, state: &State) -> View<'a> {
        let rungs = policy.rungs().len().max(1);
        let mut trials: BTreeMap<u64, Trial> = BTreeMap::new();
        for action in &state.decisions {
            match action {
                Action::Propose { trial, params } => {
                    trials.entry(*trial).or_default().params = params.clone();
                }
                Action::Promote { trial, rung, .. } => {
                    let t = trials.entry(*trial).or_default();
                    t.target = *rung;
                    t.stopped = false;
                }
                Action::Stop {
                    trial, resumable, ..
                } => {
                    let t = trials.entry(*trial).or_default();
                    t.stopped = true;
                    t.resumable = *resumable;
                }
            }
        }
        let mut spent_s = 0.0;
        for event in &state.events {
            match &event.kind {
                EventKind::Policy { .. } => {}
                EventKind::Rung {
                    trial,
                    job,
                    rung,
                    value,
                    images,
                    cost_s,
                } => {
                    spent_s += cost_s;
                    let t = trials.entry(*trial).or_default();
                    let reports = t.reports.entry(*job).or_default();
                    reports.insert(*rung, (*value, images.clone()));
                    let done = t.reports.values().filter(|r| r.contains_key(rung)).count();
                    if done as u64 >= policy.jobs_per_trial && !t.completed.contains_key(rung) {
                        t.completed.insert(*rung, event.seq);
                    }
                }
                EventKind::Failed { trial, cost_s, .. } => {
                    spent_s += cost_s;
                    trials.entry(*trial).or_default().failed = true;
                }
            }
        }
        View {
            policy,
            trials,
            spent_s,
            rungs,
        }
    }

    /// Every trial's rung results, higher is better, in completion order.
    pub fn table(&self) -> RungTable {
        let mut order: Vec<(u64, usize, u64)> = Vec::new();
        for (number, t) in &self.trials {
            if t.failed {
                continue;
            }
            for (rung, seq) in &t.completed {
                order.push((*seq, *rung, *number));
            }
        }
        order.sort_unstable();
        let mut table = RungTable {
            by_rung: vec![Vec::new(); self.rungs],
            images: BTreeMap::new(),
            levels: self.policy.rungs(),
        };
        for (_, rung, number) in order {
            let Some((value, images)) = self.trials[&number].mean_at(rung) else {
                continue;
            };
            let sign = if self.policy.goal.maximize { 1.0 } else { -1.0 };
            if let Some(row) = table.by_rung.get_mut(rung) {
                row.push((number, sign * value));
            }
            if !images.is_empty() {
                let images = images.into_iter().map(|v| sign * v).collect();
                table.images.insert((number, rung), images);
            }
        }
        table
    }

    /// Trials paused at a rung below the last, in the order they got there.
    fn paused(&self) -> Vec<(u64, usize)> {
        self.waiting(|t| !t.stopped)
    }

    /// What the rule may promote: the paused trials and those the end of the search
    /// stopped (a grown policy continues them as ASHA would have, had it had the room).
    fn promotable(&self) -> Vec<(u64, usize)> {
        self.waiting(|t| !t.stopped || t.resumable)
    }

    /// Trials that completed their target rung below the last and pass `keep`, in the
    /// order they got there.
    fn waiting(&self, keep: impl Fn(&Trial) -> bool) -> Vec<(u64, usize)> {
        let mut waiting: Vec<(u64, u64, usize)> = self
            .trials
            .iter()
            .filter(|(_, t)| keep(t) && !t.failed && t.target + 1 < self.rungs)
            .filter_map(|(n, t)| t.completed.get(&t.target).map(|seq| (*seq, *n, t.target)))
            .collect();
        waiting.sort_unstable();
        waiting.into_iter().map(|(_, n, r)| (n, r)).collect()
    }

    fn in_flight(&self) -> u64 {
        self.trials.values().filter(|t| t.in_flight()).count() as u64
    }

    fn budget_spent(&self) -> bool {
        self.policy
            .budget_hours
            .is_some_and(|h| self.spent_s >= h * 3600.0)
    }

    /// What the sampler sees: each trial's value at the highest rung enough trials
    /// completed (BOHB's choice); trials still on their way are liars, failed ones ignored.
    fn history(&self, table: &RungTable) -> Vec<Observed> {
        let need = self.policy.space.params.len() + 2;
        let rung = (0..self.rungs)
            .rev()
            .find(|&k| table.by_rung[k].len() >= need)
            .unwrap_or(self.rungs - 1);
        let scored: BTreeMap<u64, f64> = table.by_rung[rung].iter().copied().collect();
        self.trials
            .iter()
            .map(|(n, t)| Observed {
                params: t.params.clone(),
                value: match scored.get(n) {
                    Some(v) => Observation::Scored(*v),
                    None if t.failed => Observation::Failed,
                    None => Observation::Pending,
                },
            })
            .collect()
    }

    /// The next trial's parameters: a fresh point, redrawn while it repeats an earlier
    /// trial's (a finite space can run out: None).
    fn proposal(&self, number: u64, table: &RungTable) -> Option<Vec<Value>> {
        const REDRAWS: u32 = 100;
        let sampler = self.policy.method.sampler();
        let history = self.history(table);
        (0..REDRAWS).find_map(|draw| {
            let params =
                sampler.propose(&self.policy.space, &history, number, draw, self.policy.seed);
            let seen = self.trials.values().any(|t| t.params == params);
            (!seen).then_some(params)
        })
    }
}

/// What to do now, given everything recorded.
pub fn decide(state: &State) -> Vec<Action> {
    let Some(policy) = state.policy() else {
        return Vec::new();
    };
    let mut view = View::new(policy, state);
    let stop = policy.stop.as_ref();
    let rule: Box<dyn StopRule> = rule::rule(
        stop.map_or(super::policy::RuleKind::None, |s| s.rule),
        stop.map_or(3, |s| s.fidelity.eta),
        stop.map_or(0.05, |s| s.alpha),
    );
    let mut actions = Vec::new();
    on_last_event(&mut view, state, rule.as_ref(), &mut actions);
    fill(&mut view, rule.as_ref(), &mut actions);
    actions
}

/// Steps 1 and 2: what the last event itself calls for.
fn on_last_event(view: &mut View, state: &State, rule: &dyn StopRule, out: &mut Vec<Action>) {
    let Some(last) = state.events.last() else {
        return;
    };
    match &last.kind {
        EventKind::Failed {
            trial, job, reason, ..
        } => {
            let t = &view.trials[trial];
            let already = out_of_play_before(state, *trial);
            if !already {
                let rung = t.reached().unwrap_or(0);
                push(
                    view,
                    out,
                    Action::Stop {
                        trial: *trial,
                        rung,
                        evidence: format!("job {job} failed: {reason}"),
                        resumable: false,
                    },
                );
            }
        }
        EventKind::Rung { trial, rung, .. } => {
            let t = &view.trials[trial];
            let completed_now = t.completed.get(rung) == Some(&last.seq);
            if !completed_now || t.stopped || t.failed || rung + 1 >= view.rungs {
                return;
            }
            let table = view.table();
            if let Some(verdict) = rule.on_rung(&table, *trial, *rung) {
                let stop = Action::Stop {
                    trial: *trial,
                    rung: *rung,
                    evidence: verdict.evidence,
                    resumable: false,
                };
                push(view, out, stop);
            }
        }
        EventKind::Policy { .. } => {}
    }
}

/// Was the trial already stopped before its failure (nothing more to say)?
fn out_of_play_before(state: &State, trial: u64) -> bool {
    let failures = state
        .events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::Failed { trial: t, .. } if *t == trial))
        .count();
    failures > 1
        || state
            .decisions
            .iter()
            .rev()
            .find(|a| a.trial() == trial && !matches!(a, Action::Propose { .. }))
            .is_some_and(|a| matches!(a, Action::Stop { .. }))
}

/// Steps 3 and 4: keep `parallel` trials in flight; end the search when nothing can move.
fn fill(view: &mut View, rule: &dyn StopRule, out: &mut Vec<Action>) {
    let policy = view.policy;
    let over_budget = view.budget_spent();
    let mut exhausted = false;
    while view.in_flight() < policy.parallel.max(1) && !over_budget {
        let table = view.table();
        if let Some((trial, verdict)) = rule.promote(&table, &view.promotable()) {
            let rung = view.trials[&trial].target + 1;
            let promote = Action::Promote {
                trial,
                rung,
                evidence: verdict.evidence,
            };
            push(view, out, promote);
            continue;
        }
        let number = view.trials.len() as u64;
        if exhausted || number >= policy.trials {
            break;
        }
        match view.proposal(number, &table) {
            Some(params) => push(
                view,
                out,
                Action::Propose {
                    trial: number,
                    params,
                },
            ),
            None => exhausted = true,
        }
    }
    if view.in_flight() == 0 {
        let table = view.table();
        let why = |trial: u64, rung: usize| match over_budget {
            true => format!(
                "budget of {} h spent ({:.2} h)",
                policy.budget_hours.unwrap_or(0.0),
                view.spent_s / 3600.0
            ),
            false => rule.final_stop(&table, trial, rung).evidence,
        };
        let stops: Vec<Action> = view
            .paused()
            .into_iter()
            .map(|(trial, rung)| Action::Stop {
                trial,
                rung,
                evidence: why(trial, rung),
                resumable: true,
            })
            .collect();
        for stop in stops {
            push(view, out, stop);
        }
    }
}

/// Records an action in the view (as the store will) and in the output.
fn push(view: &mut View, out: &mut Vec<Action>, action: Action) {
    match &action {
        Action::Propose { trial, params } => {
            view.trials.entry(*trial).or_default().params = params.clone();
        }
        Action::Promote { trial, rung, .. } => {
            let t = view.trials.entry(*trial).or_default();
            t.target = *rung;
            t.stopped = false;
        }
        Action::Stop {
            trial, resumable, ..
        } => {
            let t = view.trials.entry(*trial).or_default();
            t.stopped = true;
            t.resumable = *resumable;
        }
    }
    out.push(action);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::policy::RuleKind;
    use crate::search::space::Dist;
    use crate::search::state::Event;

    fn policy(trials: u64, parallel: u64, stop: Option<RuleKind>) -> Policy {
        crate::search::policy::test_policy(trials, parallel, stop)
    }

    /// A state with `policy` registered and its first decisions applied.
    fn start(policy: Policy) -> State {
        let mut state = State::default();
        state.events.push(Event {
            seq: 1,
            kind: EventKind::Policy {
                policy: Box::new(policy),
            },
        });
        settle(&mut state);
        state
    }

    /// Decides to a fixed point, as the store does; returns what was decided.
    fn settle(state: &mut State) -> Vec<Action> {
        let mut all = Vec::new();
        loop {
            let actions = decide(state);
            if actions.is_empty() {
                return all;
            }
            state.decisions.extend(actions.iter().cloned());
            all.extend(actions);
        }
    }

    fn report(state: &mut State, trial: u64, rung: usize, value: f64) -> Vec<Action> {
        let seq = state.events.len() as u64 + 1;
        state.events.push(Event {
            seq,
            kind: EventKind::rung_for_test(trial, rung, value, 10.0),
        });
        settle(state)
    }

    fn count(actions: &[Action], name: &str) -> usize {
        actions.iter().filter(|a| a.name() == name).count()
    }

    #[test]
    fn keeps_parallel_trials_in_flight_until_the_cap_and_decides_once() {
        let mut state = start(policy(5, 2, None));
        assert_eq!(count(&state.decisions, "propose"), 2);
        assert!(decide(&state).is_empty(), "a decision is taken once");
        for trial in 0..5 {
            let next = report(&mut state, trial, 0, 50.0 + trial as f64);
            let expected = usize::from(trial + 2 < 5);
            assert_eq!(count(&next, "propose"), expected, "after trial {trial}");
        }
        assert_eq!(count(&state.decisions, "propose"), 5);
        assert_eq!(count(&state.decisions, "stop"), 0);
    }

    #[test]
    fn asha_promotes_the_top_third_of_each_rung_as_results_come_and_stops_the_rest_at_the_end() {
        let mut state = start(policy(9, 9, Some(RuleKind::Asha)));
        assert_eq!(count(&state.decisions, "propose"), 9);
        // Asynchronous: a trial is promoted once it is in the top third of the results so
        // far, so results arriving best first promote exactly the best three.
        for trial in 0..9 {
            report(&mut state, trial, 0, (9 - trial) as f64);
        }
        let promoted: Vec<u64> = state
            .decisions
            .iter()
            .filter(|a| a.name() == "promote")
            .map(Action::trial)
            .collect();
        assert_eq!(promoted.len(), 3, "{:?}", state.decisions);
        assert_eq!(promoted, [0, 1, 2], "the best three");
        for (i, trial) in promoted.iter().enumerate() {
            report(&mut state, *trial, 1, 10.0 + i as f64);
        }
        let last = state.decisions.last().unwrap().clone();
        assert!(matches!(last, Action::Promote { rung: 2, .. }), "{last:?}");
        let end = report(&mut state, last.trial(), 2, 20.0);
        assert_eq!(count(&end, "stop"), 8, "{end:?}");
        assert!(decide(&state).is_empty());
    }

    #[test]
    fn a_grown_policy_continues_trials_the_end_of_the_search_stopped() {
        // Nine trials: three promoted at rung 0 (values 9, 8, 7), six stopped at the end.
        let mut state = start(policy(9, 9, Some(RuleKind::Asha)));
        for trial in 0..9 {
            report(&mut state, trial, 0, (9 - trial) as f64);
        }
        for trial in 0..3 {
            report(&mut state, trial, 1, 10.0 + trial as f64);
        }
        report(&mut state, 2, 2, 20.0);
        let stops: Vec<&Action> = state
            .decisions
            .iter()
            .filter(|a| a.name() == "stop")
            .collect();
        assert!(stops.iter().all(|a| matches!(
            a,
            Action::Stop {
                resumable: true,
                ..
            }
        )));
        // Run again with trials: 18. Nine new trials, all worse at rung 0: the top third of
        // 18 results is six, so trials 3, 4 and 5 (values 6, 5, 4) are now in it and continue.
        let seq = state.events.len() as u64 + 1;
        state.events.push(Event {
            seq,
            kind: EventKind::Policy {
                policy: Box::new(policy(18, 9, Some(RuleKind::Asha))),
            },
        });
        assert_eq!(count(&settle(&mut state), "propose"), 9);
        let mut continued = Vec::new();
        for trial in 9..18 {
            let next = report(&mut state, trial, 0, 0.5 - trial as f64 / 100.0);
            continued.extend(
                next.iter()
                    .filter(|a| matches!(a, Action::Promote { rung: 1, .. }))
                    .map(Action::trial),
            );
        }
        assert_eq!(continued, [3, 4, 5], "{:?}", state.decisions);
    }

    #[test]
    fn a_failed_job_stops_its_trial_and_frees_its_place() {
        let mut state = start(policy(3, 1, None));
        let seq = state.events.len() as u64 + 1;
        state.events.push(Event {
            seq,
            kind: EventKind::Failed {
                trial: 0,
                job: 0,
                reason: "exit code 3".into(),
                cost_s: 1.0,
            },
        });
        let next = settle(&mut state);
        assert_eq!(next.len(), 2, "{next:?}");
        assert!(
            matches!(&next[0], Action::Stop { trial: 0, evidence, resumable: false, .. } if evidence.contains("exit code 3"))
        );
        // A failure is final: a grown policy never promotes the trial again.
        let view = View::new(state.policy().unwrap(), &state);
        assert!(!view.promotable().iter().any(|(t, _)| *t == 0));
        assert!(matches!(next[1], Action::Propose { trial: 1, .. }));
    }

    #[test]
    fn a_finite_space_ends_when_every_point_was_tried() {
        let mut p = policy(10, 4, None);
        p.space.params[0].dist = Dist::Choice(vec!["fcn".into(), "pspnet".into()]);
        let mut state = start(p);
        assert_eq!(count(&state.decisions, "propose"), 2);
        report(&mut state, 0, 0, 1.0);
        let end = report(&mut state, 1, 0, 2.0);
        assert!(end.is_empty(), "{end:?}");
    }

    #[test]
    fn a_spent_budget_stops_proposing_and_ends_paused_trials() {
        let mut p = policy(10, 2, Some(RuleKind::Asha));
        p.budget_hours = Some(5.0 / 3600.0);
        let mut state = start(p);
        assert!(
            report(&mut state, 0, 0, 1.0).is_empty(),
            "spent: no proposal"
        );
        let end = report(&mut state, 1, 0, 2.0);
        assert_eq!(count(&end, "propose"), 0, "{end:?}");
        assert_eq!(count(&end, "stop"), 2, "{end:?}");
        assert!(end
            .iter()
            .all(|a| !matches!(a, Action::Stop { evidence, .. } if !evidence.contains("budget"))));
    }
}

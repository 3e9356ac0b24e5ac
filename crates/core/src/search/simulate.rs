//! Offline simulation of a search: `workers` asynchronous workers in simulated time, driven
//! by the same decision step ([`decide`]) that agents run, against an [`Oracle`] that says
//! what a configuration scores at a fidelity and what reaching it costs (a surrogate
//! benchmark such as LCBench, or an analytic function in tests).
//!
//! The loop is what agents do, minus the database: every job (trial x job index) waits in
//! one FIFO queue; a free worker takes the next; running from fidelity a to b takes
//! cost(b) - cost(a) simulated seconds (the oracle's cumulative cost); when it finishes its
//! rung event is appended to the [`State`] and the decision step runs; `Propose` and
//! `Promote` enqueue jobs. The run ends when the budget is spent or nothing is queued or
//! running.
//!
//! The budget counts job time, as `budget_hours` does: with `w` busy workers it is spent `w`
//! seconds per simulated second, and a job that would end after it is spent does not count.

use super::policy::Policy;
use super::state::{Event, EventKind, State};
use super::{decide, Action};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};

/// What a configuration scores, and what it costs to get there.
pub trait Oracle {
    /// Value and cumulative cost (seconds) of `params` at fidelity `f` (e.g. epoch) for job
    /// index `job`. The value is the goal metric as measured (not sign-flipped); a
    /// non-finite value is recorded as a failed job.
    fn query(&mut self, params: &[Value], fidelity: u64, job: u64) -> Result<(f64, f64)>;
}

/// One improvement of the best value at full fidelity.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    /// Simulated time (seconds since the start) at which it was recorded.
    pub time_s: f64,
    /// Job time spent by then, all workers together (what the budget counts).
    pub cost_s: f64,
    /// The best value at full fidelity so far (as measured, not sign-flipped).
    pub best: f64,
    pub trial: u64,
}

/// Why a simulation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// The budget was spent.
    Budget,
    /// Nothing was queued or running and the decision step proposed nothing more (the
    /// policy's `trials` or `budget_hours` reached, or nothing left to continue).
    Idle,
}

/// The record of one simulated search.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Trace {
    /// Every improvement of the best value at full fidelity, in time order.
    pub steps: Vec<Step>,
    /// Trials proposed.
    pub trials: u64,
    /// Rung events recorded (one per job reaching a rung, or its end without rungs).
    pub rung_evals: u64,
    /// Of which at each rung index (one entry without rungs: the end).
    pub per_rung: Vec<u64>,
    /// Trials whose every job reached full fidelity.
    pub full_evals: u64,
    /// Jobs recorded as failed (non-finite values).
    pub failed: u64,
    /// Job time spent, all workers together, including the spent part of jobs cut off by
    /// the budget.
    pub cost_s: f64,
    /// Simulated time at the end.
    pub end_s: f64,
    pub end: End,
    /// Whether the goal is maximised (how `best_at` compares).
    pub maximize: bool,
}

impl Trace {
    /// The best value at full fidelity found so far, if any.
    pub fn best(&self) -> Option<f64> {
        self.steps.last().map(|s| s.best)
    }

    /// The best value at full fidelity once `cost_s` of job time was spent.
    pub fn best_at_cost(&self, cost_s: f64) -> Option<f64> {
        self.steps
            .iter()
            .take_while(|s| s.cost_s <= cost_s)
            .last()
            .map(|s| s.best)
    }

    /// The job time spent when the best value first reached `target` (at least as good),
    /// if it did.
    pub fn cost_to_reach(&self, target: f64) -> Option<f64> {
        self.steps
            .iter()
            .find(|s| {
                if self.maximize {
                    s.best >= target
                } else {
                    s.best <= target
                }
            })
            .map(|s| s.cost_s)
    }
}

/// Simulates `policy` on `workers` workers until `budget_s` of job time is spent. Full
/// fidelity (where jobs run to without rungs, and what the trace's best counts) is the
/// policy's `stop.fidelity.max`: give a `stop` with rule `none` for searches without early
/// stopping.
pub fn simulate(
    policy: &Policy,
    workers: usize,
    budget_s: f64,
    oracle: &mut dyn Oracle,
) -> Result<Trace> {
    simulate_with(policy, workers, budget_s, oracle, &decide)
}

/// [`simulate`] with another decision step (tests of the loop itself).
pub fn simulate_with(
    policy: &Policy,
    workers: usize,
    budget_s: f64,
    oracle: &mut dyn Oracle,
    decide: &dyn Fn(&State) -> Vec<Action>,
) -> Result<Trace> {
    let Some(stop) = &policy.stop else {
        bail!("simulate: the policy needs `stop.fidelity` (with rule none for full runs) to know the full fidelity");
    };
    if workers == 0 {
        bail!("simulate: no workers");
    }
    if budget_s.is_nan() || budget_s < 0.0 {
        bail!("simulate: the budget must be a non-negative number of seconds, not {budget_s}");
    }
    let sim = Sim {
        policy,
        rungs: policy.rungs(),
        full: stop.fidelity.max,
        jobs: policy.jobs_per_trial.max(1),
        workers,
        budget_s,
        oracle,
        decide,
        state: State::default(),
        params: BTreeMap::new(),
        reached: BTreeMap::new(),
        full_values: BTreeMap::new(),
        queue: VecDeque::new(),
        running: Vec::new(),
        dispatched: 0,
        now: 0.0,
        spent: 0.0,
        trace: Trace {
            steps: Vec::new(),
            trials: 0,
            rung_evals: 0,
            per_rung: vec![0; policy.rungs().len().max(1)],
            full_evals: 0,
            failed: 0,
            cost_s: 0.0,
            end_s: 0.0,
            end: End::Idle,
            maximize: policy.goal.maximize,
        },
    };
    sim.run()
}

/// A job segment: `trial`'s job `job` from fidelity `from` to `to` (rung index `rung`).
#[derive(Clone, Debug)]
struct Segment {
    trial: u64,
    job: u64,
    from: u64,
    to: u64,
    rung: usize,
}

/// A segment on a worker: when it ends, what it measured, what it cost.
struct Running {
    end: f64,
    /// Dispatch order: ties of `end` resolve by it, so runs are deterministic.
    order: u64,
    seg: Segment,
    value: f64,
    cost: f64,
}

struct Sim<'a> {
    policy: &'a Policy,
    rungs: Vec<u64>,
    full: u64,
    jobs: u64,
    workers: usize,
    budget_s: f64,
    oracle: &'a mut dyn Oracle,
    decide: &'a dyn Fn(&State) -> Vec<Action>,
    state: State,
    params: BTreeMap<u64, Vec<Value>>,
    /// The fidelity each (trial, job) reached so far.
    reached: BTreeMap<(u64, u64), u64>,
    /// Values at full fidelity of each trial's jobs, until all are in.
    full_values: BTreeMap<u64, Vec<f64>>,
    queue: VecDeque<Segment>,
    running: Vec<Running>,
    dispatched: u64,
    now: f64,
    spent: f64,
    trace: Trace,
}

impl Sim<'_> {
    fn run(mut self) -> Result<Trace> {
        self.append(EventKind::Policy {
            policy: Box::new(self.policy.clone()),
        })?;
        loop {
            self.dispatch()?;
            // The next segment to end: earliest, then first dispatched.
            let Some(next) = self
                .running
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.end.total_cmp(&b.1.end).then(a.1.order.cmp(&b.1.order)))
                .map(|(i, _)| i)
            else {
                self.trace.end = End::Idle;
                break;
            };
            let busy = self.running.len() as f64;
            let end = self.running[next].end;
            let spent_at_end = self.spent + busy * (end - self.now);
            if spent_at_end > self.budget_s {
                // Spent before this segment ends: the clock stops where the budget ran out.
                self.now += (self.budget_s - self.spent) / busy;
                self.spent = self.budget_s;
                self.trace.end = End::Budget;
                break;
            }
            self.now = end;
            self.spent = spent_at_end;
            let done = self.running.swap_remove(next);
            self.finish(done)?;
        }
        self.trace.cost_s = self.spent;
        self.trace.end_s = self.now;
        Ok(self.trace)
    }

    /// Free workers take the next queued segments.
    fn dispatch(&mut self) -> Result<()> {
        while self.running.len() < self.workers {
            let Some(seg) = self.queue.pop_front() else {
                break;
            };
            let params = &self.params[&seg.trial];
            let (value, cost_to) =
                self.oracle
                    .query(params, seg.to, seg.job)
                    .with_context(|| {
                        format!("trial {} job {} at fidelity {}", seg.trial, seg.job, seg.to)
                    })?;
            let cost_from = match seg.from {
                0 => 0.0,
                f => self.oracle.query(params, f, seg.job)?.1,
            };
            let cost = cost_to - cost_from;
            if !cost.is_finite() {
                bail!(
                    "trial {} job {}: the oracle gave a non-finite cost",
                    seg.trial,
                    seg.job
                );
            }
            // A cumulative cost that dips (a surrogate's noise) costs nothing, not negative time.
            let cost = cost.max(0.0);
            self.dispatched += 1;
            self.running.push(Running {
                end: self.now + cost,
                order: self.dispatched,
                seg,
                value,
                cost,
            });
        }
        Ok(())
    }

    /// A segment ended: record its event, then decide.
    fn finish(&mut self, done: Running) -> Result<()> {
        let Segment {
            trial,
            job,
            to,
            rung,
            ..
        } = done.seg;
        self.reached.insert((trial, job), to);
        if !done.value.is_finite() {
            self.trace.failed += 1;
            return self.append(EventKind::Failed {
                trial,
                job,
                reason: format!("non-finite value {} at fidelity {to}", done.value),
                cost_s: done.cost,
            });
        }
        self.trace.rung_evals += 1;
        if let Some(n) = self.trace.per_rung.get_mut(rung) {
            *n += 1;
        }
        if to == self.full {
            let values = self.full_values.entry(trial).or_default();
            values.push(done.value);
            if values.len() as u64 == self.jobs {
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                self.full_values.remove(&trial);
                self.trace.full_evals += 1;
                let better = match self.trace.best() {
                    None => true,
                    Some(b) if self.policy.goal.maximize => mean > b,
                    Some(b) => mean < b,
                };
                if better {
                    self.trace.steps.push(Step {
                        time_s: self.now,
                        cost_s: self.spent,
                        best: mean,
                        trial,
                    });
                }
            }
        }
        self.append(EventKind::Rung {
            trial,
            job,
            rung,
            value: done.value,
            images: vec![],
            cost_s: done.cost,
        })
    }

    /// Appends an event, runs the decision step and applies what it decided.
    fn append(&mut self, kind: EventKind) -> Result<()> {
        let seq = self.state.events.len() as u64 + 1;
        self.state.events.push(Event { seq, kind });
        let actions = (self.decide)(&self.state);
        for action in &actions {
            self.apply(action)?;
        }
        self.state.decisions.extend(actions);
        Ok(())
    }

    fn apply(&mut self, action: &Action) -> Result<()> {
        match action {
            Action::Propose { trial, params } => {
                if self.params.insert(*trial, params.clone()).is_some() {
                    bail!("trial {trial} proposed twice");
                }
                self.trace.trials += 1;
                let to = self.rungs.first().copied().unwrap_or(self.full);
                for job in 0..self.jobs {
                    self.queue.push_back(Segment {
                        trial: *trial,
                        job,
                        from: 0,
                        to,
                        rung: 0,
                    });
                }
            }
            Action::Promote { trial, rung, .. } => {
                let Some(&to) = self.rungs.get(*rung) else {
                    bail!("trial {trial} promoted to rung {rung}, past the last");
                };
                if !self.params.contains_key(trial) {
                    bail!("trial {trial} promoted but never proposed");
                }
                for job in 0..self.jobs {
                    let from = self.reached.get(&(*trial, job)).copied().unwrap_or(0);
                    self.queue.push_back(Segment {
                        trial: *trial,
                        job,
                        from,
                        to,
                        rung: *rung,
                    });
                }
            }
            Action::Stop { .. } => {}
        }
        Ok(())
    }
}

/// A progress bar over `n` items for benchmarks built on the simulator (on stderr; hidden
/// when stderr is not a terminal).
pub fn progress(n: u64, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let template = format!("{{prefix}} [{{bar:30.green/white}}] {{pos}}/{{len}} {what}  {{elapsed_precise}} ETA {{eta_precise}} {{msg}}");
    let bar = indicatif::ProgressBar::new(n).with_style(
        indicatif::ProgressStyle::with_template(&template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix("bench");
    bar
}

#[cfg(test)]
mod tests {
    use super::super::policy::{Fidelity, Goal, RuleKind, StopSpec};
    use super::super::sampler::Method;
    use super::super::space::{Dist, Param, Space};
    use super::*;

    /// value = 100 - 400 (x - 0.3)^2 - 30/f: better x are better at every fidelity, and
    /// every curve rises with f; reaching fidelity f costs f seconds.
    struct Bowl {
        calls: u64,
    }

    impl Oracle for Bowl {
        fn query(&mut self, params: &[Value], f: u64, _job: u64) -> Result<(f64, f64)> {
            self.calls += 1;
            let x = params[0].as_f64().context("x")?;
            Ok((
                100.0 - 400.0 * (x - 0.3).powi(2) - 30.0 / f as f64,
                f as f64,
            ))
        }
    }

    fn policy(method: Method, rule: RuleKind, parallel: u64) -> Policy {
        Policy {
            method,
            trials: 100_000,
            parallel,
            seed: 7,
            budget_hours: None,
            space: Space {
                params: vec![Param {
                    key: "x".into(),
                    dist: Dist::uniform(0.0, 1.0, None).unwrap(),
                }],
            },
            goal: Goal {
                metric: "acc".into(),
                class: None,
                maximize: true,
            },
            stop: Some(StopSpec {
                rule,
                fidelity: Fidelity {
                    key: "epoch".into(),
                    min: 1,
                    max: 27,
                    eta: 3,
                },
                alpha: 0.05,
            }),
            jobs_per_trial: 1,
        }
    }

    /// A fixed decision step for the loop's own tests: trial k has x = k/10; `parallel`
    /// trials start, every trial is promoted to the next rung, and a new trial replaces
    /// each one that ends (until `trials`).
    fn promote_all(state: &State) -> Vec<Action> {
        let policy = state.policy().unwrap();
        let rungs = policy.rungs();
        let proposed = state
            .decisions
            .iter()
            .filter(|a| matches!(a, Action::Propose { .. }))
            .count() as u64;
        let new = match &state.events.last().unwrap().kind {
            EventKind::Policy { .. } => policy.parallel,
            EventKind::Rung { trial, rung, .. } if rung + 1 < rungs.len() => {
                return vec![Action::Promote {
                    trial: *trial,
                    rung: rung + 1,
                    evidence: "all".into(),
                }];
            }
            _ => 1,
        };
        (proposed..(proposed + new).min(policy.trials))
            .map(|k| Action::Propose {
                trial: k,
                params: vec![Value::from(k as f64 / 10.0)],
            })
            .collect()
    }

    #[test]
    fn the_loop_charges_each_segment_its_cost_difference() {
        // One worker, rungs 1, 3, 9, 27 promoted in turn: each trial costs 27 s in four
        // segments; 2 trials fit in 60 s, the third is cut off at 60.
        let mut p = policy(Method::Random, RuleKind::Asha, 1);
        p.trials = 5;
        let mut bowl = Bowl { calls: 0 };
        let t = simulate_with(&p, 1, 60.0, &mut bowl, &promote_all).unwrap();
        assert_eq!((t.trials, t.rung_evals, t.full_evals), (3, 10, 2));
        assert_eq!(t.per_rung, [3, 3, 2, 2]);
        assert_eq!(t.end, End::Budget);
        assert_eq!((t.cost_s, t.end_s), (60.0, 60.0));
        assert_eq!(t.steps.len(), 2); // trial 1 (x=0.1) improves on trial 0 (x=0)
        assert_eq!((t.steps[0].time_s, t.steps[1].time_s), (27.0, 54.0));
        assert_eq!(t.steps[1].trial, 1);
        assert_eq!(t.cost_to_reach(t.best().unwrap()), Some(54.0));
        assert_eq!(t.best_at_cost(30.0), Some(t.steps[0].best));
    }

    #[test]
    fn parallel_workers_spend_the_budget_together() {
        // 4 workers without rungs, 27 s per trial.
        let mut p = policy(Method::Random, RuleKind::None, 4);
        p.trials = 8;
        let mut bowl = Bowl { calls: 0 };
        let t = simulate_with(&p, 4, 120.0, &mut bowl, &promote_all).unwrap();
        // 4 trials end at t=27 (108 s spent); the next 4 would end at 54 (216 s): cut.
        assert_eq!((t.trials, t.full_evals, t.end), (8, 4, End::Budget));
        assert_eq!(t.cost_s, 120.0);
        assert_eq!(t.end_s, 30.0);
        // With the budget to spare, it ends idle after the 8 trials.
        let t = simulate_with(&p, 4, 1e6, &mut bowl, &promote_all).unwrap();
        assert_eq!(
            (t.trials, t.full_evals, t.end, t.cost_s, t.end_s),
            (8, 8, End::Idle, 216.0, 54.0)
        );
    }

    #[test]
    fn non_finite_values_are_failed_jobs() {
        struct Nan;
        impl Oracle for Nan {
            fn query(&mut self, _: &[Value], f: u64, _: u64) -> Result<(f64, f64)> {
                Ok((f64::NAN, f as f64))
            }
        }
        let mut p = policy(Method::Random, RuleKind::None, 2);
        p.trials = 3;
        let t = simulate_with(&p, 2, 1e6, &mut Nan, &|s: &State| {
            // Propose only at the start: 2 trials.
            if s.events.len() == 1 {
                promote_all(s)
            } else {
                vec![]
            }
        })
        .unwrap();
        assert_eq!(
            (t.trials, t.failed, t.rung_evals, t.best()),
            (2, 2, 0, None)
        );
    }

    #[test]
    fn a_policy_without_fidelity_is_refused() {
        let mut p = policy(Method::Random, RuleKind::None, 1);
        p.stop = None;
        let err = simulate(&p, 1, 10.0, &mut Bowl { calls: 0 }).unwrap_err();
        assert!(err.to_string().contains("stop.fidelity"), "{err}");
    }

    // The decision step itself (random and TPE proposals, ASHA).

    #[test]
    fn a_search_ends_within_its_budget() {
        for (method, rule) in [
            (Method::Random, RuleKind::None),
            (Method::Random, RuleKind::Asha),
            (Method::Tpe, RuleKind::Asha),
        ] {
            let p = policy(method, rule, 4);
            let t = simulate(&p, 4, 600.0, &mut Bowl { calls: 0 }).unwrap();
            assert_eq!(t.end, End::Budget, "{method:?} {rule:?}");
            assert!(t.cost_s <= 600.0 + 1e-9);
            assert!(t
                .steps
                .iter()
                .all(|s| s.cost_s <= t.cost_s && s.time_s <= t.end_s));
            assert!(t
                .steps
                .windows(2)
                .all(|w| w[1].best > w[0].best && w[1].time_s >= w[0].time_s));
            assert!(
                t.trials > 0 && t.full_evals > 0,
                "{method:?} {rule:?}: {t:?}"
            );
        }
    }

    #[test]
    fn asha_runs_fewer_trials_to_the_end_than_no_rule() {
        let none = simulate(
            &policy(Method::Random, RuleKind::None, 4),
            4,
            600.0,
            &mut Bowl { calls: 0 },
        )
        .unwrap();
        let asha = simulate(
            &policy(Method::Random, RuleKind::Asha, 4),
            4,
            600.0,
            &mut Bowl { calls: 0 },
        )
        .unwrap();
        assert!(
            asha.full_evals < none.full_evals,
            "asha {} vs none {}",
            asha.full_evals,
            none.full_evals
        );
        assert!(
            asha.trials > none.trials,
            "asha {} vs none {}",
            asha.trials,
            none.trials
        );
        // Without a rule every trial runs to the end; only the ones cut off by the budget
        // (at most one per worker) did not.
        assert!(none.trials - none.full_evals <= 4);
    }

    #[test]
    fn the_trace_is_deterministic() {
        for (method, rule) in [
            (Method::Random, RuleKind::Asha),
            (Method::Tpe, RuleKind::Asha),
        ] {
            let p = policy(method, rule, 4);
            let a = simulate(&p, 4, 500.0, &mut Bowl { calls: 0 }).unwrap();
            let b = simulate(&p, 4, 500.0, &mut Bowl { calls: 0 }).unwrap();
            assert_eq!(a, b);
        }
    }
}

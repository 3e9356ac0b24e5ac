//! Adaptive search in SQL: the event and decision logs, and the decision step taken inside
//! the transaction that records an event, under the sweep's lock (SQLite: the write lock of
//! `BEGIN IMMEDIATE`; PostgreSQL: the sweep's row, `FOR UPDATE`). Two agents reporting at
//! once decide one after the other, each on the other's rows; the unique keys of
//! `migrations/*/..._search.sql` refuse whatever would still slip through.

use super::log_cache::CachedLog;
use super::{now_ms, SqlStore, Tx};
use crate::protocol::{ImageMetric, MetricValue};
use crate::search::{decide, Action, Event, EventKind, Policy, State};
use crate::store::search::{
    goal_images, goal_value, LoggedDecision, LoggedEvent, SearchLog, TrialJobs,
};
use crate::store::NewJob;
use anyhow::{Context, Result};

/// A trial's job: its trial and its index among the trial's seeds x folds.
pub(super) struct TrialJob {
    pub trial: u64,
    pub job: u64,
}

/// How a trial's job attempt ended, as far as the search cares.
pub(super) enum JobReport<'a> {
    /// Evaluated at `iter` (a rung, or the end).
    Reached {
        iter: usize,
        metrics: &'a [MetricValue],
        images: &'a [ImageMetric],
    },
    /// Failed for good, or diverged.
    Failed { reason: String },
}

impl JobReport<'_> {
    /// The event this report is under `policy`; None for an evaluation at no rung (a
    /// policy changed since the job started).
    fn event(&self, policy: &Policy, at: &TrialJob, cost_s: f64) -> Option<EventKind> {
        match self {
            JobReport::Failed { reason } => Some(EventKind::Failed {
                trial: at.trial,
                job: at.job,
                reason: reason.clone(),
                cost_s,
            }),
            JobReport::Reached {
                iter,
                metrics,
                images,
            } => {
                let rungs = policy.rungs();
                let rung = match rungs.is_empty() {
                    true => 0,
                    false => rungs.iter().rposition(|r| *r <= *iter as u64)?,
                };
                let Some(value) = goal_value(&policy.goal, metrics) else {
                    return Some(EventKind::Failed {
                        trial: at.trial,
                        job: at.job,
                        reason: format!("reported no {} to search on", policy.goal.key()),
                        cost_s,
                    });
                };
                Some(EventKind::Rung {
                    trial: at.trial,
                    job: at.job,
                    rung,
                    value,
                    images: goal_images(&policy.goal, images),
                    cost_s,
                })
            }
        }
    }
}

impl SqlStore {
    /// PostgreSQL: holds the sweep's row until the transaction ends (SQLite's write lock
    /// already serialises every writer).
    async fn lock_sweep(&self, tx: &mut Tx, sweep_id: i64) -> Result<()> {
        if self.dialect.begin_write().is_none() {
            sqlx::query("SELECT id FROM sweeps WHERE id = $1 FOR UPDATE")
                .bind(sweep_id)
                .execute(&mut **tx)
                .await
                .map_err(self.query_error(format!("locking sweep {sweep_id}")))?;
        }
        Ok(())
    }

    /// The sweep's events and decisions, in order: the rows read before (see [`super::log_cache`])
    /// and those added since.
    pub(super) async fn load_search(&self, tx: &mut Tx, sweep_id: i64) -> Result<SearchLog> {
        let cached = self.search_logs.get(sweep_id);
        let fresh = match self.read_log_since(tx, sweep_id, cached.clone()).await? {
            Some(log) => log,
            // The rows held on to are not there as read: read everything again.
            None => self
                .read_log_since(tx, sweep_id, CachedLog::default())
                .await?
                .context("a search log read from its start has no earlier rows to miss")?,
        };
        self.search_logs.put(sweep_id, fresh.clone());
        Ok(fresh.log)
    }

    /// `known` with the rows from its last ones on; None if its last rows are not as read.
    async fn read_log_since(
        &self,
        tx: &mut Tx,
        sweep_id: i64,
        mut known: CachedLog,
    ) -> Result<Option<CachedLog>> {
        let from_event = known.last_event.as_ref().map_or(0, |e| e.0);
        let events: Vec<(i64, String, Option<i64>, i64)> = sqlx::query_as(
            "SELECT seq, body, job_id, recorded_at FROM search_events
             WHERE sweep_id = $1 AND seq >= $2 ORDER BY seq",
        )
        .bind(sweep_id)
        .bind(from_event)
        .fetch_all(&mut **tx)
        .await
        .map_err(self.query_error(format!("reading the search events of sweep {sweep_id}")))?;
        let from_decision = known.last_decision.as_ref().map_or(0, |d| d.0);
        let decisions: Vec<(i64, i64, String, i64, Option<String>)> = sqlx::query_as(
            "SELECT seq, after_event, body, decided_at, decided_by FROM search_decisions
             WHERE sweep_id = $1 AND seq >= $2 ORDER BY seq",
        )
        .bind(sweep_id)
        .bind(from_decision)
        .fetch_all(&mut **tx)
        .await
        .map_err(self.query_error(format!("reading the search decisions of sweep {sweep_id}")))?;
        let mut events = events.into_iter().peekable();
        if let Some(last) = &known.last_event {
            match events.next() {
                Some((seq, body, ..)) if (seq, &body) == (last.0, &last.1) => {}
                _ => return Ok(None),
            }
        }
        let mut decisions = decisions.into_iter().peekable();
        if let Some(last) = &known.last_decision {
            match decisions.next() {
                Some((seq, _, body, ..)) if (seq, &body) == (last.0, &last.1) => {}
                _ => return Ok(None),
            }
        }
        for (seq, body, job_id, recorded_at) in events {
            let event: Event = serde_json::from_str(&body)
                .with_context(|| format!("sweep {sweep_id}: unreadable search event {body}"))?;
            known.log.events.push(LoggedEvent {
                event,
                job_id,
                recorded_at,
            });
            known.last_event = Some((seq, body));
        }
        for (seq, after_event, body, decided_at, decided_by) in decisions {
            let action: Action = serde_json::from_str(&body)
                .with_context(|| format!("sweep {sweep_id}: unreadable search decision {body}"))?;
            known.log.decisions.push(LoggedDecision {
                seq: seq as u64,
                after_event: after_event as u64,
                action,
                decided_at,
                decided_by,
            });
            known.last_decision = Some((seq, body));
        }
        Ok(Some(known))
    }

    /// Appends an event; returns its number.
    async fn append_event(
        &self,
        tx: &mut Tx,
        sweep_id: i64,
        job_id: Option<i64>,
        kind: EventKind,
    ) -> Result<Event> {
        let seq: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM search_events WHERE sweep_id = $1",
        )
        .bind(sweep_id)
        .fetch_one(&mut **tx)
        .await
        .map_err(self.query_error("numbering a search event"))?;
        let event = Event {
            seq: seq as u64,
            kind,
        };
        let (name, trial, job, rung) = match &event.kind {
            EventKind::Policy { .. } => ("policy", None, None, None),
            EventKind::Rung {
                trial, job, rung, ..
            } => ("rung", Some(*trial), Some(*job), Some(*rung as u64)),
            EventKind::Failed { trial, job, .. } => ("failed", Some(*trial), Some(*job), None),
        };
        let body = serde_json::to_string(&event).expect("events serialise");
        sqlx::query(
            "INSERT INTO search_events (sweep_id, seq, kind, trial, trial_job, rung, job_id, body, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(sweep_id)
        .bind(seq)
        .bind(name)
        .bind(trial.map(|t| t as i64))
        .bind(job.map(|j| j as i64))
        .bind(rung.map(|r| r as i64))
        .bind(job_id)
        .bind(&body)
        .bind(now_ms())
        .execute(&mut **tx)
        .await
        .map_err(self.query_error(format!("recording search event {body}")))?;
        Ok(event)
    }

    /// Records what a trial's job reported and takes the decisions it calls for, in `tx`
    /// (which holds the job's fence). Returns the decisions taken.
    pub(super) async fn search_report(
        &self,
        tx: &mut Tx,
        job_id: i64,
        at: &TrialJob,
        report: JobReport<'_>,
        trials: &dyn TrialJobs,
        by: &str,
    ) -> Result<Vec<Action>> {
        let (sweep_id, started_at): (i64, Option<i64>) =
            sqlx::query_as("SELECT sweep_id, started_at FROM jobs WHERE id = $1")
                .bind(job_id)
                .fetch_one(&mut **tx)
                .await
                .map_err(self.query_error(format!("reading job {job_id}")))?;
        self.lock_sweep(tx, sweep_id).await?;
        let log = self.load_search(tx, sweep_id).await?;
        let mut state = log.state();
        let Some(policy) = state.policy().cloned() else {
            return Ok(Vec::new());
        };
        let cost_s = started_at.map_or(0.0, |t| (now_ms() - t).max(0) as f64 / 1e3);
        let Some(kind) = report.event(&policy, at, cost_s) else {
            return Ok(Vec::new());
        };
        let event = self.append_event(tx, sweep_id, Some(job_id), kind).await?;
        state.events.push(event);
        self.decide_and_apply(tx, sweep_id, &mut state, trials, by)
            .await
    }

    /// Decides until nothing more is due. A proposal whose jobs cannot be built is recorded
    /// as failed before anything else is decided: that is the event the next decision sees,
    /// exactly as a replay of the log will see it.
    async fn decide_and_apply(
        &self,
        tx: &mut Tx,
        sweep_id: i64,
        state: &mut State,
        trials: &dyn TrialJobs,
        by: &str,
    ) -> Result<Vec<Action>> {
        let mut taken = Vec::new();
        let mut invalid = std::collections::VecDeque::new();
        loop {
            let actions = decide(state);
            let policy = state.policy().cloned().context("search without a policy")?;
            let after = state.events.last().map_or(0, |e| e.seq);
            for action in &actions {
                let seq = state.decisions.len() as u64 + 1;
                self.log_decision(tx, sweep_id, seq, after, action, by)
                    .await?;
                if let Some(reason) = self.apply(tx, sweep_id, &policy, action, trials).await? {
                    invalid.push_back((action.trial(), reason));
                }
                state.decisions.push(action.clone());
            }
            let settled = actions.is_empty();
            taken.extend(actions);
            match invalid.pop_front() {
                Some((trial, reason)) => {
                    let kind = EventKind::Failed {
                        trial,
                        job: 0,
                        reason,
                        cost_s: 0.0,
                    };
                    let event = self.append_event(tx, sweep_id, None, kind).await?;
                    state.events.push(event);
                }
                None if settled => return Ok(taken),
                None => {}
            }
        }
    }

    async fn log_decision(
        &self,
        tx: &mut Tx,
        sweep_id: i64,
        seq: u64,
        after: u64,
        action: &Action,
        by: &str,
    ) -> Result<()> {
        let params = match action {
            Action::Propose { params, .. } => Some(serde_json::to_string(params)?),
            _ => None,
        };
        let body = serde_json::to_string(action).expect("actions serialise");
        sqlx::query(
            "INSERT INTO search_decisions (sweep_id, seq, after_event, action, trial, rung, params, body, decided_at, decided_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(sweep_id)
        .bind(seq as i64)
        .bind(after as i64)
        .bind(action.name())
        .bind(action.trial() as i64)
        .bind(action.rung() as i64)
        .bind(params)
        .bind(&body)
        .bind(now_ms())
        .bind(by)
        .execute(&mut **tx)
        .await
        .map_err(self.query_error(format!("recording search decision {body}")))?;
        Ok(())
    }

    /// Makes a decision so in the jobs table. Returns why a proposal could not be built.
    async fn apply(
        &self,
        tx: &mut Tx,
        sweep_id: i64,
        policy: &Policy,
        action: &Action,
        trials: &dyn TrialJobs,
    ) -> Result<Option<String>> {
        let rungs = policy.rungs();
        let pause_at =
            |rung: usize| -> Option<i64> { (rung + 1 < rungs.len()).then(|| rungs[rung] as i64) };
        match action {
            Action::Propose { trial, params } => {
                let jobs = match trials.jobs(*trial, params) {
                    Ok(jobs) => jobs,
                    Err(reason) => return Ok(Some(reason)),
                };
                let max_attempts = trials.max_attempts();
                for (index, job) in jobs.iter().enumerate() {
                    let at = TrialJob {
                        trial: *trial,
                        job: index as u64,
                    };
                    self.insert_trial_job(tx, sweep_id, job, &at, pause_at(0), max_attempts)
                        .await?;
                }
            }
            Action::Promote { trial, rung, .. } => {
                sqlx::query(
                    "UPDATE jobs SET status = 'pending', pause_at = $1, finished_at = NULL
                     WHERE sweep_id = $2 AND trial = $3 AND status IN ('paused', 'stopped')",
                )
                .bind(pause_at(*rung))
                .bind(sweep_id)
                .bind(*trial as i64)
                .execute(&mut **tx)
                .await
                .map_err(self.query_error(format!("promoting trial {trial}")))?;
            }
            Action::Stop {
                trial, evidence, ..
            } => {
                sqlx::query(
                    "UPDATE jobs SET status = 'stopped', finished_at = $1, error = $2, owner = NULL,
                         lease_expires_at = NULL
                     WHERE sweep_id = $3 AND trial = $4 AND status IN ('paused', 'pending', 'interrupted')",
                )
                .bind(now_ms())
                .bind(format!("stopped: {evidence}"))
                .bind(sweep_id)
                .bind(*trial as i64)
                .execute(&mut **tx)
                .await
                .map_err(self.query_error(format!("stopping trial {trial}")))?;
            }
        }
        Ok(None)
    }

    async fn insert_trial_job(
        &self,
        tx: &mut Tx,
        sweep_id: i64,
        job: &NewJob,
        at: &TrialJob,
        pause_at: Option<i64>,
        max_attempts: u32,
    ) -> Result<()> {
        let config: serde_json::Value = serde_json::from_str(&job.config_json)
            .with_context(|| format!("trial {}: config is not JSON", at.trial))?;
        // A command job's length, when it has one, is among its program's parameters.
        let iters = config
            .get("iters")
            .or_else(|| config.pointer("/params/iters"));
        let total_iters = iters.and_then(|v| v.as_i64());
        let classes = (!job.classes.is_empty())
            .then(|| serde_json::to_string(&job.classes).expect("strings serialise"));
        // A job of an earlier version of the sweep with the same identity becomes this trial's.
        sqlx::query(
            "INSERT INTO jobs (sweep_id, hash, stage, label, config_json, seed, depends_on,
                 status, attempts, max_attempts, total_iters, created_at, classes, trial, trial_job, pause_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (sweep_id, hash) DO UPDATE SET trial = excluded.trial,
                 trial_job = excluded.trial_job, pause_at = excluded.pause_at, retired_at = NULL,
                 label = excluded.label",
        )
        .bind(sweep_id)
        .bind(&job.hash)
        .bind(&job.stage)
        .bind(&job.label)
        .bind(&job.config_json)
        .bind(job.seed as i64)
        .bind(&job.depends_on)
        .bind(max_attempts as i64)
        .bind(total_iters)
        .bind(now_ms())
        .bind(&classes)
        .bind(at.trial as i64)
        .bind(at.job as i64)
        .bind(pause_at)
        .execute(&mut **tx)
        .await
        .map_err(self.query_error(format!(
            "adding job {} of trial {} ({})",
            at.job, at.trial, job.label
        )))?;
        Ok(())
    }

    /// `sweep run` on a search: records the policy when it is new or changed, and takes the
    /// decisions due (the first proposals; more if the new policy allows more).
    pub(super) async fn begin_search(
        &self,
        sweep_id: i64,
        policy: &Policy,
        spec: &str,
        trials: &dyn TrialJobs,
        by: &str,
    ) -> Result<Vec<Action>> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin().await?;
        self.lock_sweep(&mut tx, sweep_id).await?;
        sqlx::query("UPDATE sweeps SET search_spec = $1 WHERE id = $2")
            .bind(spec)
            .bind(sweep_id)
            .execute(&mut *tx)
            .await
            .map_err(self.query_error(format!("recording the search of sweep {sweep_id}")))?;
        let log = self.load_search(&mut tx, sweep_id).await?;
        let mut state = log.state();
        if state.policy() != Some(policy) {
            let kind = EventKind::Policy {
                policy: Box::new(policy.clone()),
            };
            let event = self.append_event(&mut tx, sweep_id, None, kind).await?;
            state.events.push(event);
        }
        let taken = self
            .decide_and_apply(&mut tx, sweep_id, &mut state, trials, by)
            .await?;
        tx.commit()
            .await
            .map_err(self.query_error(format!("starting the search of sweep {sweep_id}")))?;
        Ok(taken)
    }

    /// The trial a job belongs to (None: not a search's job).
    pub(super) async fn trial_of(&self, tx: &mut Tx, job_id: i64) -> Result<Option<TrialJob>> {
        let row: Option<(Option<i64>, Option<i64>)> =
            sqlx::query_as("SELECT trial, trial_job FROM jobs WHERE id = $1")
                .bind(job_id)
                .fetch_optional(&mut **tx)
                .await
                .map_err(self.query_error(format!("reading the trial of job {job_id}")))?;
        Ok(match row {
            Some((Some(trial), Some(job))) => Some(TrialJob {
                trial: trial as u64,
                job: job as u64,
            }),
            _ => None,
        })
    }
}

//! The best result so far against the compute spent: for each sweep among the leaderboard's
//! rows, the best configuration known after h job-hours. A configuration counts once every
//! run of it (seeds, folds) succeeded, with the mean of the sort metric over them; job-hours
//! count every attempt of every job of the sweep (stopped, failed and retried ones too, as
//! they cost the same), stages excepted (set-up the configurations share). This is how a
//! grid and an adaptive search of the same space compare at equal compute.

use super::Group;
use crate::job::JobStatus;
use crate::store::Store;
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;

/// One sweep's best-so-far, a step each time it improved.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Anytime {
    pub sweep: String,
    /// Job-hours the sweep spent in all.
    pub total_hours: f64,
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    /// Job-hours spent when the configuration's last run ended.
    pub hours: f64,
    /// Its mean of the metric over its runs.
    pub best: f64,
    pub label: String,
}

impl Anytime {
    /// The best known after `hours` job-hours (None before the first).
    pub fn best_at(&self, hours: f64) -> Option<&Step> {
        self.steps.iter().take_while(|s| s.hours <= hours).last()
    }
}

/// Attempt spans (start, end; Unix ms) -> job-hours spent up to `t`: what each attempt had
/// run by then, so that parallel workers count each.
fn hours_until(spans: &[(i64, i64)], t: i64) -> f64 {
    let ms: i64 = spans
        .iter()
        .map(|&(start, end)| (end.min(t) - start).max(0))
        .sum();
    ms as f64 / 3.6e6
}

/// Pure part: the steps from attempt spans and finished configurations (end, value, label).
fn steps(spans: &[(i64, i64)], mut done: Vec<(i64, f64, String)>, maximize: bool) -> Vec<Step> {
    done.sort_by_key(|d| d.0);
    let mut steps: Vec<Step> = Vec::new();
    for (end, value, label) in done {
        let better = steps.last().is_none_or(|s| {
            if maximize {
                value > s.best
            } else {
                value < s.best
            }
        });
        if value.is_finite() && better {
            steps.push(Step {
                hours: hours_until(spans, end),
                best: value,
                label,
            });
        }
    }
    steps
}

/// Each sweep's [`Anytime`] from the ranked `groups` (the metric's values per run by
/// `value`), reading the attempts of every job of those sweeps.
pub(crate) async fn anytime(
    store: &dyn Store,
    rows: &[crate::store::JobRow],
    groups: &[Group<'_>],
    value: impl Fn(&Group<'_>) -> Option<f64>,
    maximize: bool,
) -> Result<Vec<Anytime>> {
    let mut spans: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
    let mut ends: BTreeMap<i64, i64> = BTreeMap::new();
    for r in rows
        .iter()
        .filter(|r| r.stage.is_none() && r.external.is_none())
    {
        let attempts = store.attempts(r.job_id).await?;
        let sweep = spans.entry(r.sweep.as_str()).or_default();
        for a in &attempts {
            sweep.push((a.started_at.unwrap_or(a.ended_at), a.ended_at));
        }
        if let Some(last) = attempts.iter().map(|a| a.ended_at).max() {
            ends.insert(r.job_id, last);
        }
    }
    let mut done: BTreeMap<&str, Vec<(i64, f64, String)>> = BTreeMap::new();
    for g in groups.iter().filter(|g| g.runs[0].stage.is_none()) {
        let finished = g.runs.iter().all(|r| r.status == JobStatus::Succeeded);
        let end = g
            .runs
            .iter()
            .map(|r| ends.get(&r.job_id).copied())
            .max()
            .flatten();
        if let (true, Some(end), Some(v)) = (finished, end, value(g)) {
            done.entry(g.sweep.as_str())
                .or_default()
                .push((end, v, g.label.clone()));
        }
    }
    Ok(spans
        .into_iter()
        .map(|(sweep, spans)| Anytime {
            sweep: sweep.to_string(),
            total_hours: hours_until(&spans, i64::MAX),
            steps: steps(&spans, done.remove(sweep).unwrap_or_default(), maximize),
        })
        .collect())
}

/// `hours,sweep,best,label` per step, for a table or a spreadsheet.
pub fn csv(series: &[Anytime]) -> String {
    let mut out = String::from("job_hours,sweep,best,label\n");
    for s in series {
        for step in &s.steps {
            out += &format!(
                "{:.4},{},{:.4},\"{}\"\n",
                step.hours,
                s.sweep,
                step.best,
                step.label.replace('"', "'")
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn job_hours_count_every_attempt_running_until_then() {
        // Two workers: [0, 2h] and [1h, 2h], then a retry [2h, 3h].
        let spans = [(0, 2 * H), (H, 2 * H), (2 * H, 3 * H)];
        assert_eq!(hours_until(&spans, H), 1.0);
        assert_eq!(hours_until(&spans, 2 * H), 3.0);
        assert_eq!(hours_until(&spans, i64::MAX), 4.0);
    }

    #[test]
    fn a_step_each_time_the_best_improves_in_the_metrics_direction() {
        let spans = [(0, 4 * H)];
        let done = vec![
            (3 * H, 60.0, "c".to_string()),
            (H, 50.0, "a".to_string()),
            (2 * H, 40.0, "b".to_string()),
            (4 * H, f64::NAN, "d".to_string()),
        ];
        let up = steps(&spans, done.clone(), true);
        let got: Vec<(f64, f64, &str)> = up
            .iter()
            .map(|s| (s.hours, s.best, s.label.as_str()))
            .collect();
        assert_eq!(got, [(1.0, 50.0, "a"), (3.0, 60.0, "c")]);
        let down = steps(&spans, done, false);
        assert_eq!(
            down.iter().map(|s| s.best).collect::<Vec<_>>(),
            [50.0, 40.0]
        );
        let series = Anytime {
            sweep: "s".into(),
            total_hours: 4.0,
            steps: up,
        };
        assert_eq!(series.best_at(0.5), None);
        assert_eq!(series.best_at(2.5).unwrap().label, "a");
        assert!(csv(&[series]).contains("3.0000,s,60.0000,\"c\""));
    }
}

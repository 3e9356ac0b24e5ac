//! Shared prefixes: grid rows that differ only in `iters` train once.
//!
//! Two jobs are the same training up to the shorter one's length when their configs are equal
//! but for `iters` (so they also start from the same stage) and the learning-rate schedule
//! does not depend on `iters` (a poly schedule without `horizon` decays over the job's own
//! length). Data order and dropout are seeded per iteration, so the first 150 iterations of a
//! 300-iteration run are then a 150-iteration run, bit for bit: the longer job waits for the
//! shorter one and continues from its final checkpoint. The trainer checks the same condition
//! on the checkpoint it is given (its config hash must be this job's at that length), so a
//! wrong plan could only make a job fail, never give it another job's training.

use super::PlannedJob;
use std::collections::BTreeMap;

/// Jobs of a plan that are one training stopped at different lengths.
#[derive(Clone, Debug, PartialEq)]
pub struct PrefixGroup {
    /// Indices into the plan, shortest first.
    pub jobs: Vec<usize>,
    /// Why they are trained separately, when they are.
    pub separate: Option<String>,
}

impl PrefixGroup {
    /// Iterations trained for the group: the longest alone when shared, else all of them.
    pub fn trained(&self, plan: &[PlannedJob]) -> usize {
        let iters = self
            .jobs
            .iter()
            .map(|&i| plan[i].config.iters().unwrap_or(0));
        match self.separate {
            None => iters.max().unwrap_or(0),
            Some(_) => iters.sum(),
        }
    }

    /// Iterations the group would train as separate jobs.
    pub fn separately(&self, plan: &[PlannedJob]) -> usize {
        self.jobs
            .iter()
            .map(|&i| plan[i].config.iters().unwrap_or(0))
            .sum()
    }
}

/// The groups of two or more non-stage jobs whose configs differ only in `iters`, in plan
/// order of their first job, each saying whether it shares its training (which
/// [`share`] decided: the schedule does not depend on `iters` and the file did not say
/// `share_prefixes: false`).
pub fn groups(plan: &[PlannedJob]) -> Vec<PrefixGroup> {
    let mut by_training: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, job) in plan.iter().enumerate() {
        // Only the built-in trainer continues a shorter run's checkpoint.
        let Some(config) = job.config.train() else {
            continue;
        };
        if job.stage.is_some() || config.iters == 0 {
            continue;
        }
        let key = serde_json::to_string(&config.with_iters(0)).expect("config serialises");
        by_training.entry(key).or_default().push(i);
    }
    let mut groups: Vec<PrefixGroup> = by_training
        .into_values()
        .filter(|members| members.len() > 1)
        .map(|mut jobs| {
            jobs.sort_by_key(|&i| (plan[i].config.iters(), i));
            let separate = separate_because(plan, &jobs);
            PrefixGroup { jobs, separate }
        })
        .collect();
    groups.sort_by_key(|g| g.jobs.iter().min().copied());
    groups
}

/// Why a group trains separately; None when every longer job continues the next shorter.
fn separate_because(plan: &[PlannedJob], jobs: &[usize]) -> Option<String> {
    let chained = jobs.windows(2).all(|w| {
        let (short, long) = (&plan[w[0]], &plan[w[1]]);
        long.continues && long.depends_on.as_deref() == Some(short.hash.as_str())
    });
    if chained {
        None
    } else if depends_on_iters(&plan[jobs[0]]) {
        Some(
            "the poly schedule's horizon is each job's own `iters`: set schedule.horizon, \
             or schedule.type: constant, to train them once"
                .into(),
        )
    } else {
        Some("share_prefixes: false".into())
    }
}

fn depends_on_iters(job: &PlannedJob) -> bool {
    job.config
        .train()
        .is_some_and(|c| c.schedule_depends_on_iters())
}

/// Chains each group whose schedule does not depend on `iters`: every longer job depends on
/// the next shorter one and continues from its end.
pub(super) fn share(plan: &mut [PlannedJob]) {
    for group in groups(plan) {
        if depends_on_iters(&plan[group.jobs[0]]) {
            continue;
        }
        for w in group.jobs.windows(2) {
            let shorter = plan[w[0]].hash.clone();
            let longer = &mut plan[w[1]];
            longer.depends_on = Some(shorter);
            longer.continues = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::sweepfile::{parse, prefix::groups};
    use std::path::Path;

    const ROWS: &str = "name: p\ndata: {dataset: dme, root: data/dme, split: study}\n\
        base: {crop: 256, schedule: {horizon: 40000}}\n\
        include:\n  - {iters: 200}\n  - {iters: 150}\n  - {iters: 300}\n  - {iters: 200, crop: 320}\n\
        seeds: [0, 1]\n";

    fn plan(text: &str) -> Vec<crate::sweepfile::PlannedJob> {
        parse(Path::new("p.yaml"), text, &[])
            .unwrap()
            .plan()
            .unwrap()
    }

    #[test]
    fn rows_that_differ_only_in_iters_continue_the_next_shorter_one() {
        let plan = plan(ROWS);
        let groups = groups(&plan);
        assert_eq!(groups.len(), 2, "one chain per seed: {groups:?}");
        for g in &groups {
            assert_eq!(g.separate, None);
            let iters: Vec<usize> = g
                .jobs
                .iter()
                .map(|&i| plan[i].config.iters().unwrap_or(0))
                .collect();
            assert_eq!(iters, [150, 200, 300]);
            let seed = plan[g.jobs[0]].config.seed();
            assert!(g.jobs.iter().all(|&i| plan[i].config.seed() == seed));
            assert!(!plan[g.jobs[0]].continues);
            assert_eq!(plan[g.jobs[0]].depends_on, None);
            for w in g.jobs.windows(2) {
                assert!(plan[w[1]].continues);
                assert_eq!(plan[w[1]].depends_on.as_ref(), Some(&plan[w[0]].hash));
            }
            assert_eq!((g.trained(&plan), g.separately(&plan)), (300, 650));
        }
        // crop 320 is another training: alone, it neither continues nor is continued.
        let crop320 = plan
            .iter()
            .find(|j| j.config.train().unwrap().crop == 320)
            .unwrap();
        assert!(!crop320.continues && crop320.depends_on.is_none());
    }

    #[test]
    fn a_schedule_over_iters_or_the_files_word_keeps_them_apart() {
        let over_iters = ROWS.replace("schedule: {horizon: 40000}", "schedule: {power: 0.9}");
        for (text, why) in [
            (over_iters, "horizon is each job's own `iters`"),
            (
                format!("{ROWS}share_prefixes: false\n"),
                "share_prefixes: false",
            ),
        ] {
            let plan = plan(&text);
            let groups = groups(&plan);
            assert_eq!(groups.len(), 2);
            assert!(groups[0].separate.as_deref().unwrap().contains(why));
            assert_eq!(groups[0].trained(&plan), 650);
            assert!(plan.iter().all(|j| !j.continues && j.depends_on.is_none()));
        }
    }

    #[test]
    fn a_stage_dependency_stays_with_the_shortest_job() {
        let text = ROWS.replace(
            "base: {crop: 256,",
            "stages: {pre: {iters: 10}}\nbase: {init: {from: pre}, crop: 256,",
        );
        let plan = plan(&text);
        let stage = &plan[0];
        assert_eq!(stage.stage.as_deref(), Some("pre"));
        for g in groups(&plan) {
            assert_eq!(plan[g.jobs[0]].depends_on.as_ref(), Some(&stage.hash));
            assert!(!plan[g.jobs[0]].continues);
            assert!(plan[g.jobs[2]].continues);
        }
    }
}

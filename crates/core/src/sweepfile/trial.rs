//! A search sweep's jobs: its stages up front, and each trial's jobs on demand (the sampler
//! proposes the values only as the search goes). A trial's jobs are built exactly as a grid
//! point's: base, the values set at their keys, then every fold and seed.

use super::expand::{
    build, build_stages, fail, stages_seeing_folds, with_folds, with_seed_and_fold, with_seeds,
    Built, Candidate, Order,
};
use super::parse::{Cv, Sweep};
use super::space::SpaceKey;
use super::tree::{Kind, Node, Origin, Seg};
use super::{format_value, Ctx, Planned, PlannedJob, SpecError};
use crate::search::Policy;
use serde_yaml::Value;
use std::collections::HashMap;
use std::path::PathBuf;

/// Everything [`TrialPlan::jobs`] needs, kept with the spec (the sweep file is not re-read).
#[derive(Clone, Debug)]
pub(crate) struct TrialPlan {
    file: PathBuf,
    /// Base with `data`, and `iters` = fidelity.max under a stopping rule.
    base: Node,
    keys: Vec<SpaceKey>,
    seeds: Option<Vec<(u64, Origin)>>,
    cv: Option<Cv>,
    stage_hash: HashMap<String, String>,
    varied_keys: Vec<String>,
    /// A command sweep's program.
    program: Option<super::program::Program>,
}

/// The stage jobs and the policy; fails when even the middle of the space cannot make a
/// job for a reason that is not the searched values (a bad base, a missing stage).
pub(super) fn plan(
    sw: &Sweep,
    search: &(Origin, Node),
    mut base: Node,
    ctx: &Ctx,
) -> Result<Planned, SpecError> {
    // Stages start from base as written (the search may add to base what its keys need).
    let stage_base = base.clone();
    let search = super::search::read(sw, search, &mut base, ctx)?;
    let (stages, stage_hash) = build_stages(sw, &stage_base, ctx)?;
    if let Some((iters, at)) = &search.iters {
        let node = Node {
            kind: Kind::Leaf(Value::from(*iters)),
            at: at.clone(),
        };
        base.set(&[Seg::Key("iters".into())], &node, at)
            .map_err(fail(ctx))?;
    }
    let keys: Vec<String> = search.keys.iter().map(|k| k.key.clone()).collect();
    let trials = TrialPlan {
        file: ctx.file.to_path_buf(),
        base,
        keys: search.keys,
        seeds: sw.seeds.clone(),
        cv: sw.cv.clone(),
        stage_hash,
        varied_keys: with_seed_and_fold(keys, sw),
        program: ctx.program.cloned(),
    };
    let order = Order {
        stages: &sw.stages,
        stage_hash: &trials.stage_hash,
        varied_keys: &[],
        trial: None,
    };
    let warnings = trials.check_middle(&search.policy, &stages, ctx)?;
    Ok(Planned {
        jobs: order.jobs(stages, ctx)?,
        warnings,
        search: Some((search.policy, trials)),
    })
}

impl TrialPlan {
    /// Trial `trial`'s jobs for `params` (in the order of the space): seed-major, then
    /// fold. An invalid combination is an error naming the key and value.
    pub(crate) fn jobs(
        &self,
        trial: u64,
        params: &[serde_json::Value],
    ) -> Result<Vec<PlannedJob>, SpecError> {
        let ctx = Ctx {
            file: &self.file,
            program: self.program.as_ref(),
        };
        let built = self.built(trial, params, &ctx)?;
        // Seeds (checked distinct) and folds make distinct hashes, so none is dropped as a
        // duplicate and a job's index is its index within the trial.
        self.order(trial).jobs(built, &ctx)
    }

    fn order(&self, trial: u64) -> Order<'_> {
        Order {
            stages: &[],
            stage_hash: &self.stage_hash,
            varied_keys: &self.varied_keys,
            trial: Some(trial),
        }
    }

    /// Builds the trial in the middle of the space: an error that is not about a searched
    /// value would fail every trial, so it is the file's error. Returns the warnings about
    /// stages that saw the folds.
    fn check_middle(
        &self,
        policy: &Policy,
        stages: &[Built],
        ctx: &Ctx,
    ) -> Result<Vec<SpecError>, SpecError> {
        let middle: Vec<serde_json::Value> = policy
            .space
            .params
            .iter()
            .map(|p| p.dist.from_unit(0.5))
            .collect();
        let checked = self.built(0, &middle, ctx).and_then(|built| {
            let warnings = stages_seeing_folds(self.cv.as_ref(), stages, &built, ctx);
            self.order(0).jobs(built, ctx).map(|_| warnings)
        });
        match checked {
            Ok(warnings) => Ok(warnings),
            Err(e)
                if e.key
                    .as_deref()
                    .is_some_and(|k| k.starts_with("search.space")) =>
            {
                Ok(Vec::new())
            }
            Err(mut e) => {
                e.job = None;
                Err(e)
            }
        }
    }

    /// The trial's jobs built and validated, not yet labelled.
    fn built(
        &self,
        trial: u64,
        params: &[serde_json::Value],
        ctx: &Ctx,
    ) -> Result<Vec<Built>, SpecError> {
        if params.len() != self.keys.len() {
            return Err(ctx.error(
                &Origin::file(None, "search.space"),
                format!(
                    "trial {trial} has {} values for the {} keys of the space",
                    params.len(),
                    self.keys.len()
                ),
            ));
        }
        let mut tree = self.base.clone();
        let mut context = vec![("trial".to_string(), trial.to_string())];
        for (k, v) in self.keys.iter().zip(params) {
            let value = serde_yaml::to_value(v)
                .map_err(|e| ctx.error(&k.at, format!("{v} cannot be a job value: {e}")))?;
            let node = Node::from_value(&value, None, k.at.clone());
            tree.set(&k.path, &node, &k.at).map_err(fail(ctx))?;
            context.push((k.key.clone(), format_value(&value)));
        }
        let point = Candidate {
            tree,
            context,
            stage: None,
        };
        let points = with_folds(vec![point], self.cv.as_ref(), ctx)?;
        with_seeds(points, self.seeds.as_deref(), ctx)?
            .into_iter()
            .map(|c| build(c, ctx))
            .collect()
    }
}

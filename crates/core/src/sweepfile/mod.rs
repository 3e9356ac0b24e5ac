//! Sweep files: one YAML file -> the list of jobs it stands for.
//!
//! ```yaml
//! name: finetune
//! data: {dataset: dme, root: data/dme, split: study}   # merged into every job's `data`
//! base: {model: {head: fcn}, crop: 256, iters: 200}      # a JobConfig minus `data`
//! grid: {crop: [256, 320], model.head: [fcn, deeplabv3]} # cartesian product, first key slowest
//! include: [{crop: 288, loss: dice}]                     # extra jobs, each on top of base
//! exclude: [{crop: 320, model.head: fcn}]                # drop points matching ALL keys
//! seeds: [0, 1, 2]                                       # every job once per seed
//! cv: {folds: 5, by: subject}                            # every job once per fold (data.split)
//! max_attempts: 3                                        # scheduler retries (not identity)
//! share_prefixes: false                                  # rows differing in iters train apart
//! runs: /shared/sweeps/runs                              # artifact root all nodes see (not identity)
//! stages: {pre: {data: {dataset: chase_db1, root: data/chase_db1}}}  # jobs others start from
//! ```
//!
//! Instead of `grid`/`include`, an adaptive search (see [`crate::search`]) proposes the
//! values of `search.space` one trial at a time and `stop:` may end trials early:
//!
//! ```yaml
//! search:
//!   method: tpe                      # random | sobol | tpe
//!   trials: 40                       # at most this many proposals
//!   space:
//!     optimizer.lr: {log_uniform: [1.0e-4, 1.0e-1]}
//!     model.head: {choice: [fcn, deeplabv3, pspnet]}
//! stop: {rule: asha, fidelity: {key: iters, min: 50, max: 450, eta: 3}}
//! ```
//!
//! [`SweepSpec::plan`] then lists the stages only, and [`SweepSpec::trial_jobs`] builds a
//! trial's jobs (one per seed and fold) from the values the sampler proposed.
//!
//! A job whose `init.from` names a stage depends on it; stages are built on `base` minus
//! its `init` (so `base: {init: {from: pre}}` makes every job, not `pre`, start from `pre`).
//!
//! Everything works on the YAML tree: dotted keys set nested values, the tree of each job
//! deserialises into [`JobConfig`] (unknown keys rejected) and is checked with
//! [`JobConfig::validate`]. Errors name file, line, column and the dotted key, with a
//! suggestion for misspelt keys and names. [`parse`] checks and expands everything, so a
//! [`SweepSpec`] that exists plans without error.

mod data_set;
mod de;
mod expand;
mod overrides;
pub(crate) mod parse;
#[cfg(test)]
mod pinned;
mod positions;
pub mod prefix;
mod program;
mod search;
mod space;
#[cfg(test)]
mod tests_search;
mod tree;
mod trial;

use crate::job::JobSpec;
use crate::search::Policy;
use serde_yaml::Value;
use std::fmt;
use std::path::{Path, PathBuf};

pub use positions::Pos;

/// Retries of a failed job when the file gives no `max_attempts`: one retry, enough to
/// ride out a transient crash without looping on a deterministic one.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 2;

/// A plan larger than this is almost certainly a mistake (and would flood the store).
pub const MAX_JOBS: usize = 10_000;

/// A parsed, checked and expanded sweep file.
#[derive(Clone, Debug)]
pub struct SweepSpec {
    /// Unique per database.
    pub name: String,
    pub description: Option<String>,
    pub path: PathBuf,
    /// The file's YAML text, as read.
    pub source: String,
    /// The `--set key=value` arguments applied on top of `source`.
    pub overrides: Vec<String>,
    pub max_attempts: u32,
    /// `runs:`: where checkpoints, predictions and logs go (a folder every node sees when
    /// agents share the sweep), resolved against the file's folder. Not part of job identity.
    pub runs: Option<PathBuf>,
    /// Non-fatal findings (an `exclude` entry that matches no job), formatted like errors.
    pub warnings: Vec<SpecError>,
    /// `search:` and `stop:`, checked (None for a grid sweep).
    pub search: Option<Policy>,
    effective: Value,
    jobs: Vec<PlannedJob>,
    trials: Option<trial::TrialPlan>,
}

/// One job of the plan.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedJob {
    /// The built-in trainer's config, or the user's program with its parameters.
    pub config: JobSpec,
    /// [`JobSpec::hash`] (chained with its stage's): the job's identity.
    pub hash: String,
    /// The study's "Model" column (`UNet + DeepLabV3, crop 320, 200 it, dice`), plus
    /// `key=value` for varied keys it does not show; the seed is not part of it, so runs
    /// that differ only in seed share a label (the report aggregates over them). A
    /// cross-validation fold ends in `, fold k/N` (1-based; the report groups folds too).
    pub label: String,
    /// Dotted key -> value of every key the grid, `include` or `seeds` vary anywhere in
    /// the sweep (the same keys, in the same order, for every job; values as resolved).
    pub varied: Vec<(String, String)>,
    /// Name of the stage this job is (stages come first in the plan).
    pub stage: Option<String>,
    /// Hash of the stage whose final checkpoint initialises this job (`init.from`), or with
    /// `continues`, of the shorter run of the same training that it continues.
    pub depends_on: Option<String>,
    /// A shared prefix ([`prefix`]): `depends_on` is this job's training stopped earlier, so
    /// this job continues from its end instead of training those iterations again.
    pub continues: bool,
    /// Class names of the job's data set by id (empty when its folder has no description
    /// here, or the job trains no network).
    pub classes: Vec<String>,
}

impl SweepSpec {
    /// The jobs: stages first (dependencies before dependants), then the grid points in
    /// order (first grid key slowest), then `include` entries; with `seeds`, that list once
    /// per seed (all configs of seed 0 first, so an interrupted sweep covers every config);
    /// with `cv`, each config once per fold right after each other (seed, config, fold).
    /// Jobs whose config hashes the same as an earlier one are dropped.
    ///
    /// With `search:`, only the stages: the trials' jobs come from [`Self::trial_jobs`].
    pub fn plan(&self) -> Result<Vec<PlannedJob>, SpecError> {
        Ok(self.jobs.clone())
    }

    /// The jobs of trial `trial` of a search, `params` being the values of the space's keys
    /// in its order: one job per seed, then per fold (seed-major, as `jobs_per_trial`
    /// counts them; the index is the job's index within the trial). Under a stopping rule
    /// every job runs to `fidelity.max` (it pauses at the rungs). An invalid combination
    /// (a crop that is no multiple of 16, say) is an error naming the key and value, for
    /// the caller to record as the trial's failure.
    pub fn trial_jobs(
        &self,
        trial: u64,
        params: &[serde_json::Value],
    ) -> Result<Vec<PlannedJob>, String> {
        match &self.trials {
            Some(t) => t.jobs(trial, params).map_err(|e| e.to_string()),
            None => Err(format!(
                "{}: the sweep has no search: (its jobs are all in the plan)",
                self.path.display()
            )),
        }
    }

    /// The sweep after `--set`, as YAML: what was actually run.
    pub fn effective_yaml(&self) -> String {
        serde_yaml::to_string(&self.effective).unwrap_or_default()
    }
}

/// Reads and parses a sweep file.
pub fn load(path: &Path, overrides: &[String]) -> Result<SweepSpec, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        SpecError::from(Diagnostic {
            message: format!("cannot read the sweep file: {e}"),
            ..Diagnostic::new(path)
        })
    })?;
    parse(path, &text, overrides)
}

/// What a sweep file expands to: its jobs (a search's: only its stages), the warnings, and
/// for `search:` the policy and what builds each trial's jobs.
pub(crate) struct Planned {
    pub jobs: Vec<PlannedJob>,
    pub warnings: Vec<SpecError>,
    pub search: Option<(crate::search::Policy, trial::TrialPlan)>,
}

/// Parses, checks and expands a sweep file's text; `path` is used in messages.
pub fn parse(path: &Path, text: &str, overrides: &[String]) -> Result<SweepSpec, SpecError> {
    let ctx = Ctx {
        file: path,
        program: None,
    };
    let value: Value = serde_yaml::from_str(text).map_err(|e| ctx.yaml_error(&e, text))?;
    let positions = positions::scan(text);
    let mut root = tree::Node::from_value(&value, positions.as_ref(), tree::Origin::file(None, ""));
    for set in overrides {
        overrides::apply(&mut root, set, &ctx)?;
    }
    let sweep = parse::structure(&root, &ctx)?;
    let program = match sweep.program.is_empty() {
        true => None,
        false => Some(program::Program::read(&sweep.program, &ctx)?),
    };
    let ctx = Ctx {
        file: path,
        program: program.as_ref(),
    };
    let base = expand::base_tree(&sweep, &ctx)?;
    let planned = match &sweep.search {
        Some(search) => trial::plan(&sweep, search, base, &ctx)?,
        None => expand::plan(&sweep, base, &ctx)?,
    };
    Ok(SweepSpec {
        name: sweep.name,
        description: sweep.description,
        path: path.to_path_buf(),
        source: text.to_string(),
        overrides: overrides.to_vec(),
        max_attempts: sweep.max_attempts,
        runs: sweep.runs.map(|r| {
            let r = PathBuf::from(r);
            match path.parent() {
                Some(dir) if r.is_relative() => dir.join(r),
                _ => r,
            }
        }),
        warnings: planned.warnings,
        effective: root.to_value(),
        jobs: planned.jobs,
        search: planned.search.as_ref().map(|(p, _)| p.clone()),
        trials: planned.search.map(|(_, t)| t),
    })
}

/// A problem in a sweep file or a `--set`, located as precisely as known. Its fields are
/// those of [`Diagnostic`] (boxed: errors are rare, `Result`s are everywhere).
///
/// Displays as `sweeps/x.yaml:7:3: base.model.head: unknown variant "fcm", ...` or, for a
/// value that came from the command line, `--set base.iters=abc: invalid type: ...`.
#[derive(Clone, Debug, PartialEq)]
pub struct SpecError(Box<Diagnostic>);

#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line and column in `file`.
    pub pos: Option<Pos>,
    /// The `--set key=value` argument at fault.
    pub set: Option<String>,
    /// Dotted key in the file (`base.model.head`, `grid.crop[1]`, `include[0].loss`).
    pub key: Option<String>,
    pub message: String,
    /// The grid point / include entry / seed being expanded, when the problem showed
    /// there: `crop=288, loss=focal, seed=1`.
    pub job: Option<String>,
}

impl Diagnostic {
    fn new(file: &Path) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            pos: None,
            set: None,
            key: None,
            message: String::new(),
            job: None,
        }
    }
}

impl From<Diagnostic> for SpecError {
    fn from(d: Diagnostic) -> Self {
        SpecError(Box::new(d))
    }
}

impl std::ops::Deref for SpecError {
    type Target = Diagnostic;
    fn deref(&self) -> &Diagnostic {
        &self.0
    }
}

impl std::ops::DerefMut for SpecError {
    fn deref_mut(&mut self) -> &mut Diagnostic {
        &mut self.0
    }
}

impl Diagnostic {
    /// 1-based line, if known.
    pub fn line(&self) -> Option<u32> {
        self.pos.map(|p| p.line)
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut key = self.key.as_deref().filter(|k| !k.is_empty());
        if let Some(set) = &self.set {
            write!(f, "--set {set}: ")?;
            let set_key = set.split_once('=').map_or(set.as_str(), |(k, _)| k);
            if key == Some(set_key) {
                key = None;
            }
        } else {
            write!(f, "{}", self.file.display())?;
            if let Some(p) = self.pos {
                write!(f, ":{}:{}", p.line, p.column)?;
            }
            f.write_str(": ")?;
        }
        if let Some(k) = key {
            write!(f, "{k}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(job) = &self.job {
            write!(f, " (in job {job})")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecError {}

/// What every error needs: the file being read; and what building a job needs: the
/// user's program, for a command sweep.
pub(crate) struct Ctx<'a> {
    pub file: &'a Path,
    pub program: Option<&'a program::Program>,
}

impl Ctx<'_> {
    pub fn error(&self, at: &tree::Origin, message: impl Into<String>) -> SpecError {
        Diagnostic {
            pos: if at.set.is_some() { None } else { at.pos },
            set: at.set.as_deref().map(str::to_string),
            key: Some(at.key.to_string()),
            message: message.into(),
            ..Diagnostic::new(self.file)
        }
        .into()
    }

    fn yaml_error(&self, e: &serde_yaml::Error, text: &str) -> SpecError {
        let mut message = e.to_string();
        if message.contains("duplicate entry with key") {
            let dup =
                positions::scan(text).and_then(|root| positions::find_duplicate_key(&root, ""));
            if let Some((pos, key)) = dup {
                return Diagnostic {
                    pos: Some(pos),
                    key: Some(key),
                    message: "key written twice in the same mapping".into(),
                    ..Diagnostic::new(self.file)
                }
                .into();
            }
        }
        let pos = e.location().map(|l| {
            message = message.replace(&format!(" at line {} column {}", l.line(), l.column()), "");
            Pos {
                line: l.line() as u32,
                column: l.column() as u32,
            }
        });
        Diagnostic {
            pos,
            message: format!("malformed YAML: {message}"),
            ..Diagnostic::new(self.file)
        }
        .into()
    }
}

/// Compact one-line YAML for messages, labels and `varied`: `256`, `dice`, `[1, 2]`,
/// `{type: ce, weight: 3}`. Floats that are exactly an `f32` print as that `f32` (config
/// fields such as weights are `f32`, and `0.4000000059604645` helps nobody).
pub fn format_value(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(x) if n.is_f64() && x.is_finite() && (x as f32) as f64 == x => {
                format!("{}", x as f32)
            }
            _ => n.to_string(),
        },
        Value::String(s) => {
            let plain = !s.is_empty()
                && !s.starts_with(' ')
                && !s.ends_with(' ')
                && !s.contains(|c: char| ",:[]{}#\"'\n".contains(c) || c.is_control());
            if plain {
                s.clone()
            } else {
                format!("{s:?}")
            }
        }
        Value::Sequence(items) => format!(
            "[{}]",
            items
                .iter()
                .map(format_value)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Mapping(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", format_value(k), format_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Tagged(t) => format!("{} {}", t.tag, format_value(&t.value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_values_compactly() {
        let v: Value =
            serde_yaml::from_str("[1, 0.5, dice, {type: ce, weight: 3.0}, 'a, b', '']").unwrap();
        assert_eq!(
            format_value(&v),
            r#"[1, 0.5, dice, {type: ce, weight: 3}, "a, b", ""]"#
        );
        assert_eq!(format_value(&Value::from(0.4f32)), "0.4");
        assert_eq!(format_value(&Value::from(0.1f64)), "0.1");
    }

    fn err(text: &str, sets: &[&str]) -> SpecError {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        parse(Path::new("sweeps/t.yaml"), text, &sets).unwrap_err()
    }

    #[test]
    fn unknown_backbone_names_value_position_and_suggests() {
        let e = err("name: t\nbase:\n  model:\n    backbone: unet\n", &[]);
        assert_eq!(
            e.to_string(),
            r#"sweeps/t.yaml:4:15: base.model.backbone: unknown variant "unet", expected unet-s5-d16 (did you mean "unet-s5-d16"?)"#
        );
        assert_eq!(e.key.as_deref(), Some("base.model.backbone"));
    }

    #[test]
    fn unknown_schedule_and_mode_are_key_errors() {
        assert_eq!(
            err("name: t\nbase:\n  schedule: {type: pol}\n", &[]).to_string(),
            r#"sweeps/t.yaml:3:20: base.schedule.type: unknown variant "pol", expected one of poly, constant (did you mean "poly"?)"#
        );
        assert_eq!(
            err("name: t\ngrid:\n  eval.mode: [slide, whol]\n", &[]).to_string(),
            r#"sweeps/t.yaml:3:22: grid.eval.mode[1]: unknown variant "whol", expected one of slide, whole (did you mean "whole"?) (in job eval.mode=whol)"#
        );
        assert_eq!(
            err("name: t\n", &["base.eval.mode=slid"]).to_string(),
            r#"--set base.eval.mode=slid: unknown variant "slid", expected one of slide, whole (did you mean "slide"?)"#
        );
    }

    /// Test scaffolding is no part of a job: the toy worker's failures and pace come from
    /// its environment, so `fault:` and the `noop` backbone are refused like any typo.
    #[test]
    fn fault_injection_and_the_noop_backbone_are_refused() {
        let e = err(
            "name: t\nbase:\n  iters: 4\n  fault: {kind: nan, at_iter: 2}\n",
            &[],
        );
        assert!(
            e.to_string()
                .starts_with(r#"sweeps/t.yaml:4:3: base.fault: unknown key "fault""#),
            "{e}"
        );
        assert_eq!(
            err(
                "name: t\nbase:\n  model: {backbone: noop, noop_ms: 5}\n",
                &[]
            )
            .to_string(),
            r#"sweeps/t.yaml:3:21: base.model.backbone: unknown variant "noop", expected unet-s5-d16"#
        );
        let e = err("name: t\ngrid:\n  model.noop_ms: [5]\n", &[]);
        assert!(e.to_string().contains(r#"unknown key "noop_ms""#), "{e}");
    }

    #[test]
    fn new_enums_read_todays_spellings() {
        let spec = parse(
            Path::new("sweeps/t.yaml"),
            "name: t\ndata: {dataset: chase_db1}\nbase:\n  model: {backbone: unet-s5-d16}\n  \
             schedule: {type: constant}\n  eval: {mode: whole}\n",
            &[],
        )
        .unwrap();
        let plan = spec.plan().unwrap();
        let c = plan[0].config.train().unwrap();
        assert_eq!(c.data.dataset, "chase_db1");
        assert_eq!(c.model.backbone, crate::job::Backbone::UnetS5D16);
        assert_eq!(c.schedule.kind, crate::job::ScheduleKind::Constant);
        assert_eq!(c.eval.mode, crate::job::EvalMode::Whole);
    }

    #[test]
    fn error_display() {
        let mut e = SpecError::from(Diagnostic::new(Path::new("sweeps/x.yaml")));
        e.pos = Some(Pos { line: 7, column: 3 });
        e.key = Some("base.model.head".into());
        e.message = "bad".into();
        assert_eq!(e.to_string(), "sweeps/x.yaml:7:3: base.model.head: bad");
        e.set = Some("base.model.head=x".into());
        assert_eq!(e.to_string(), "--set base.model.head=x: bad");
        e.key = Some("base.model.head.y".into());
        e.job = Some("crop=256".into());
        assert_eq!(
            e.to_string(),
            "--set base.model.head=x: base.model.head.y: bad (in job crop=256)"
        );
    }
}

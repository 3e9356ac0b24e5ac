//! A sweep of the user's own program: `command:` (or `program:`), `identity_files:` and
//! `env:`. With one of them, `base`/`grid`/`include`/`search` range over the program's own
//! parameters instead of the built-in trainer's config (see [`crate::job::command`]).
//!
//! ```yaml
//! name: lr-sweep
//! command: [python3, train.py, "${args}"]     # or: program: train.py
//! identity_files: [train.py]                  # editing the script makes new jobs
//! env: {DATA: /data/oct}                      # extra environment, part of identity
//! base: {epochs: 20}
//! grid: {lr: [0.01, 0.001], width: [8, 16]}
//! seeds: [0, 1]
//! ```

use super::parse::{describe, expect_list, expect_map, expect_text, ProgramKeys};
use super::tree::{Kind, Node, Origin};
use super::{Ctx, SpecError};
use crate::job::command::{file_hash, placeholders, Params};
use crate::job::CommandJob;
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What every job of a command sweep shares.
#[derive(Clone, Debug)]
pub(crate) struct Program {
    pub command: Vec<String>,
    pub command_at: Origin,
    pub env: BTreeMap<String, String>,
    pub identity: BTreeMap<String, String>,
    pub workdir: PathBuf,
}

impl Program {
    /// Reads the keys; `identity_files` are hashed now, relative to the sweep file's folder.
    pub fn read(keys: &ProgramKeys, ctx: &Ctx) -> Result<Program, SpecError> {
        let workdir = sweep_folder(ctx.file);
        let (command, command_at) = match (&keys.command, &keys.program) {
            (Some(_), Some((at, _))) => {
                return Err(ctx.error(
                    at,
                    "give command: or program:, not both (program: train.py is command: [python3, train.py, \"${args}\"])",
                ))
            }
            (Some((at, node)), None) => (words(ctx, node)?, at.clone()),
            (None, Some((at, node))) => (program_command(&expect_text(ctx, node)?), at.clone()),
            (None, None) => {
                let at = keys
                    .identity_files
                    .as_ref()
                    .or(keys.env.as_ref())
                    .map_or_else(|| Origin::file(None, ""), |n| n.at.clone());
                return Err(ctx.error(
                    &at,
                    "identity_files: and env: belong to a command sweep: add command: [...] or program: (the built-in trainer takes neither)",
                ));
            }
        };
        if command.is_empty() || command[0].trim().is_empty() {
            return Err(ctx.error(&command_at, "the command is empty"));
        }
        Ok(Program {
            env: env(ctx, keys.env.as_ref())?,
            identity: identity(ctx, keys.identity_files.as_ref(), &workdir)?,
            command,
            command_at,
            workdir,
        })
    }

    /// The job for one point's parameters; a `${key}` of the command that the point does
    /// not set is an error at the command.
    pub fn job(&self, params: Params, ctx: &Ctx) -> Result<CommandJob, SpecError> {
        let job = CommandJob {
            command: self.command.clone(),
            params,
            env: self.env.clone(),
            identity: self.identity.clone(),
            workdir: self.workdir.clone(),
        };
        let known: Vec<String> = crate::job::command::flatten(&job.params)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        for word in &self.command {
            if let Some(key) = placeholders(word).into_iter().find(|k| !known.contains(k)) {
                return Err(ctx.error(
                    &self.command_at,
                    format!(
                        "${{{key}}} is no parameter of the job (its parameters: {}; ${{args}} passes them all)",
                        if known.is_empty() { "none".to_string() } else { known.join(", ") }
                    ),
                ));
            }
        }
        Ok(job)
    }
}

/// The folder a command runs in: the sweep file's, absolute.
fn sweep_folder(file: &Path) -> PathBuf {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::canonicalize(&dir).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|cwd| cwd.join(&dir))
            .unwrap_or(dir)
    })
}

/// `program: train.py` as W&B runs it: `python3 train.py ${args}` for a Python script,
/// `bash run.sh ${args}` for a shell script, else the program itself.
fn program_command(program: &str) -> Vec<String> {
    let args = "${args}".to_string();
    match Path::new(program).extension().and_then(|e| e.to_str()) {
        Some("py") => vec!["python3".into(), program.into(), args],
        Some("sh") => vec!["bash".into(), program.into(), args],
        _ if !program.contains('/') => vec![format!("./{program}"), args],
        _ => vec![program.into(), args],
    }
}

/// A command: a list of words, or one text split at spaces.
fn words(ctx: &Ctx, node: &Node) -> Result<Vec<String>, SpecError> {
    if let Kind::Leaf(Value::String(s)) = &node.kind {
        return Ok(s.split_whitespace().map(str::to_string).collect());
    }
    expect_list(
        ctx,
        node,
        "a list of words, e.g. [python3, train.py, \"${args}\"]",
    )?
    .iter()
    .map(|w| scalar(ctx, w))
    .collect()
}

/// A text, number or boolean, as text.
fn scalar(ctx: &Ctx, node: &Node) -> Result<String, SpecError> {
    match &node.kind {
        Kind::Leaf(Value::String(s)) => Ok(s.clone()),
        Kind::Leaf(v @ (Value::Number(_) | Value::Bool(_))) => Ok(super::format_value(v)),
        _ => Err(ctx.error(
            &node.at,
            format!("expected a text, found {}", describe(node)),
        )),
    }
}

fn env(ctx: &Ctx, node: Option<&Node>) -> Result<BTreeMap<String, String>, SpecError> {
    let Some(map) = node
        .map(|n| expect_map(ctx, n, "a mapping NAME: value"))
        .transpose()?
        .flatten()
    else {
        return Ok(BTreeMap::new());
    };
    let mut out = BTreeMap::new();
    for e in map.entries().unwrap_or_default() {
        let valid = !e.key.is_empty()
            && !e.key.starts_with(|c: char| c.is_ascii_digit())
            && e.key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid || e.key.starts_with("SWEEP_") {
            return Err(ctx.error(
                &e.key_at,
                format!(
                    "{:?} cannot be set here: names are letters, digits and _, and SWEEP_* is sweep's own",
                    e.key
                ),
            ));
        }
        out.insert(e.key.clone(), scalar(ctx, &e.value)?);
    }
    Ok(out)
}

fn identity(
    ctx: &Ctx,
    node: Option<&Node>,
    workdir: &Path,
) -> Result<BTreeMap<String, String>, SpecError> {
    let Some(node) = node else {
        return Ok(BTreeMap::new());
    };
    let mut out = BTreeMap::new();
    for item in expect_list(ctx, node, "a list of files, e.g. [train.py, model.py]")? {
        let name = expect_text(ctx, item)?;
        let hash = file_hash(&workdir.join(&name)).map_err(|e| {
            ctx.error(
                &item.at,
                format!(
                    "cannot read {} (relative to the sweep file's folder): {e}",
                    workdir.join(&name).display()
                ),
            )
        })?;
        out.insert(name, hash);
    }
    Ok(out)
}

/// A job tree's parameters as JSON (YAML keys that are not text become text).
pub(crate) fn params(tree: &Node) -> Params {
    match serde_json::to_value(tree.to_value()) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => Params::new(),
    }
}

#[cfg(test)]
mod tests {
    use crate::job::JobSpec;
    use std::path::Path;

    fn plan(dir: &Path, text: &str) -> Result<Vec<crate::sweepfile::PlannedJob>, String> {
        let file = dir.join("s.yaml");
        std::fs::write(&file, text).unwrap();
        let spec = crate::sweepfile::load(&file, &[]).map_err(|e| e.to_string())?;
        spec.plan().map_err(|e| e.to_string())
    }

    fn command(job: &crate::sweepfile::PlannedJob) -> &crate::job::CommandJob {
        match &job.config {
            JobSpec::Command(c) => c,
            JobSpec::Train(_) => panic!("a trainer job"),
        }
    }

    #[test]
    fn a_grid_over_a_programs_parameters() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("train.py"), "print(1)\n").unwrap();
        const SWEEP: &str = "name: p\nprogram: train.py\nidentity_files: [train.py]\n\
             base: {epochs: 3, data: /x}\ngrid: {lr: [0.1, 0.01]}\nseeds: [0, 1]\ncv: {folds: 2}\n";
        let jobs = plan(d.path(), SWEEP).unwrap();
        assert_eq!(jobs.len(), 8);
        let first = command(&jobs[0]);
        assert_eq!(
            first.argv(),
            [
                "python3",
                "train.py",
                "--data=/x",
                "--epochs=3",
                "--fold=0",
                "--folds=2",
                "--lr=0.1",
                "--seed=0"
            ]
        );
        assert_eq!(first.workdir, std::fs::canonicalize(d.path()).unwrap());
        assert_eq!(jobs[0].label, "train.py, lr=0.1, fold 1/2");
        assert_eq!(jobs[1].label, "train.py, lr=0.1, fold 2/2");
        let hashes: std::collections::HashSet<_> = jobs.iter().map(|j| &j.hash).collect();
        assert_eq!(hashes.len(), 8);
        // Editing the script makes every job new.
        std::fs::write(d.path().join("train.py"), "print(2)\n").unwrap();
        let again = plan(d.path(), SWEEP).unwrap();
        assert_ne!(again[0].hash, jobs[0].hash);
    }

    #[test]
    fn what_only_the_trainer_does_is_refused_with_its_line() {
        let d = tempfile::tempdir().unwrap();
        let err = |text: &str| plan(d.path(), text).unwrap_err();
        let e = err("name: p\ncommand: [./run, \"${args}\"]\ndata: {dataset: dme}\n");
        assert!(
            e.contains("s.yaml:3:1: data: data: describes the built-in trainer's data set"),
            "{e}"
        );
        let e = err("name: p\ncommand: [./run]\nsearch: {method: tpe, trials: 2, metric: m, space: {lr: {uniform: [0, 1]}}}\nstop: {rule: asha, fidelity: {key: iters, min: 1, eta: 3}}\n");
        assert!(
            e.contains(":4:20: stop.fidelity: missing key \"max\""),
            "{e}"
        );
        let e = err("name: p\ncommand: [./run, \"--lr=${lr}\", \"${nope}\"]\nbase: {lr: 1}\n");
        assert!(
            e.contains(":2:1: command: ${nope} is no parameter of the job (its parameters: lr;"),
            "{e}"
        );
        let e = err("name: p\ncommand: [./run]\nprogram: x.py\n");
        assert!(e.contains("give command: or program:, not both"), "{e}");
        let e = err("name: p\nprogram: x.py\nidentity_files: [missing.py]\n");
        assert!(e.contains(":3:18: identity_files[0]: cannot read"), "{e}");
        let e = err("name: p\nenv: {A: 1}\nbase: {}\n");
        assert!(e.contains("add command: [...] or program:"), "{e}");
        let e = err("name: p\ncommand: [./run]\nsearch: {method: tpe, trials: 2, space: {lr: {uniform: [0, 1]}}}\n");
        assert!(
            e.contains(":3:1: search: metric: name the metric your program reports"),
            "{e}"
        );
        let e = err("name: p\nprogram: x.py\nenv: {SWEEP_SEED: 1}\n");
        assert!(e.contains("SWEEP_* is sweep's own"), "{e}");
    }

    #[test]
    fn a_search_proposes_the_programs_parameters() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("s.yaml");
        std::fs::write(
            &file,
            "name: p\ncommand: [./run, \"${args}\"]\nbase: {epochs: 2}\nseeds: [0, 1]\n\
             search: {method: random, trials: 4, metric: loss, goal: minimize, space: {lr: {log_uniform: [0.001, 0.1]}, width: {choice: [8, 16]}}}\n\
             stop: {rule: asha, fidelity: {key: iters, min: 3, max: 27, eta: 3}}\n",
        )
        .unwrap();
        let spec = crate::sweepfile::load(&file, &[]).unwrap();
        let goal = &spec.search.as_ref().unwrap().goal;
        assert_eq!((goal.metric.as_str(), goal.maximize), ("loss", false));
        let jobs = spec
            .trial_jobs(3, &[serde_json::json!(0.01), serde_json::json!(16)])
            .unwrap();
        assert_eq!(jobs.len(), 2);
        let c = command(&jobs[1]);
        assert_eq!(c.params["lr"], serde_json::json!(0.01));
        assert_eq!(c.params["width"], serde_json::json!(16));
        assert_eq!(c.seed(), 1);
        // Under a stopping rule each job runs to the fidelity's max (pausing at the rungs).
        assert_eq!(c.params["iters"], serde_json::json!(27));
        assert_eq!(jobs[1].label, "run, lr=0.01, width=16, trial 3");
    }
}

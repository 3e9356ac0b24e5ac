//! The sweep file's own keys (name, data, base, grid, ...): shape checks, before any job
//! is built.

use super::tree::{parse_path, Kind, Node, Origin, Seg};
use super::{Ctx, SpecError, DEFAULT_MAX_ATTEMPTS};
use crate::job::FoldBy;
use crate::suggest::did_you_mean;
use serde_yaml::Value;

/// The sweep file's keys (and what they are for, in messages).
pub const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "data",
    "base",
    "grid",
    "include",
    "exclude",
    "seeds",
    "cv",
    "max_attempts",
    "stages",
    "runs",
    "search",
    "stop",
    "share_prefixes",
    "command",
    "program",
    "identity_files",
    "env",
];

pub(crate) struct Sweep {
    pub name: String,
    pub description: Option<String>,
    pub max_attempts: u32,
    /// `runs:`, the artifact root (as written; relative to the file's folder).
    pub runs: Option<String>,
    /// The top-level `data` mapping (merged into every job's `data`).
    pub data: Option<Node>,
    pub data_key: Option<Origin>,
    pub base: Option<Node>,
    pub grid: Vec<Axis>,
    pub include: Vec<Node>,
    pub exclude: Vec<Node>,
    pub seeds: Option<Vec<(u64, Origin)>>,
    pub cv: Option<Cv>,
    pub stages: Vec<Stage>,
    /// `search:` and `stop:` as written (key, value): read by [`super::search`], which
    /// needs the base job to check them.
    pub search: Option<(Origin, Node)>,
    pub stop: Option<(Origin, Node)>,
    /// `share_prefixes: false` trains rows that differ only in `iters` separately.
    pub share_prefixes: bool,
    /// `command:`/`program:`/`identity_files:`/`env:`: the jobs run the user's program.
    pub program: ProgramKeys,
}

/// The top-level keys of a command sweep as written (read by [`super::program`]).
#[derive(Clone, Debug, Default)]
pub(crate) struct ProgramKeys {
    pub command: Option<(Origin, Node)>,
    pub program: Option<(Origin, Node)>,
    pub identity_files: Option<Node>,
    pub env: Option<Node>,
}

impl ProgramKeys {
    pub fn is_empty(&self) -> bool {
        self.command.is_none()
            && self.program.is_none()
            && self.identity_files.is_none()
            && self.env.is_none()
    }
}

/// `cv: {folds: 5, by: subject}`: every job once per fold (stages excepted).
#[derive(Clone, Debug)]
pub(crate) struct Cv {
    pub folds: u32,
    pub by: FoldBy,
    /// The `cv` key, and the values (what a fold's split points at in messages).
    pub key_at: Origin,
    pub folds_at: Origin,
    pub by_at: Origin,
}

/// One grid key and its values.
pub(crate) struct Axis {
    pub key: String,
    pub path: Vec<Seg>,
    pub key_at: Origin,
    pub values: Vec<Node>,
}

pub(crate) struct Stage {
    pub name: String,
    pub body: Node,
}

/// Names of the sweep and its stages end up in paths, command lines and `#SBATCH` lines.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// What [`is_valid_name`] asks, for messages.
pub const NAME_RULE: &str =
    "must be 1-64 characters of a-z, A-Z, 0-9, '.', '_', '-' (not starting with '.' or '-')";

fn check_name(ctx: &Ctx, at: &Origin, what: &str, name: &str) -> Result<(), SpecError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(ctx.error(at, format!("{what} {name:?} {NAME_RULE}")))
    }
}

pub(super) fn describe(node: &Node) -> String {
    match &node.kind {
        Kind::Leaf(Value::Null) => "nothing".into(),
        Kind::Leaf(Value::String(s)) => format!("the text {s:?}"),
        Kind::Leaf(v) => super::format_value(v),
        Kind::Seq(_) => "a list".into(),
        Kind::Map(_) => "a mapping".into(),
    }
}

pub(super) fn expect_map<'a>(
    ctx: &Ctx,
    node: &'a Node,
    what: &str,
) -> Result<Option<&'a Node>, SpecError> {
    match &node.kind {
        Kind::Map(_) => Ok(Some(node)),
        Kind::Leaf(Value::Null) => Ok(None),
        _ => Err(ctx.error(
            &node.at,
            format!("expected {what}, found {}", describe(node)),
        )),
    }
}

pub(super) fn expect_list<'a>(
    ctx: &Ctx,
    node: &'a Node,
    what: &str,
) -> Result<&'a [Node], SpecError> {
    match &node.kind {
        Kind::Seq(items) => Ok(items),
        Kind::Leaf(Value::Null) => Ok(&[]),
        _ => Err(ctx.error(
            &node.at,
            format!("expected {what}, found {}", describe(node)),
        )),
    }
}

pub(super) fn expect_text(ctx: &Ctx, node: &Node) -> Result<String, SpecError> {
    match &node.kind {
        Kind::Leaf(Value::String(s)) => Ok(s.clone()),
        _ => Err(ctx.error(
            &node.at,
            format!("expected a text, found {}", describe(node)),
        )),
    }
}

fn expect_bool(ctx: &Ctx, node: &Node) -> Result<bool, SpecError> {
    match &node.kind {
        Kind::Leaf(Value::Bool(b)) => Ok(*b),
        _ => Err(ctx.error(
            &node.at,
            format!("expected true or false, found {}", describe(node)),
        )),
    }
}

pub(super) fn expect_uint(ctx: &Ctx, node: &Node) -> Result<u64, SpecError> {
    match &node.kind {
        Kind::Leaf(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64().unwrap_or(0)),
        _ => Err(ctx.error(
            &node.at,
            format!("expected a non-negative integer, found {}", describe(node)),
        )),
    }
}

pub(crate) fn structure(root: &Node, ctx: &Ctx) -> Result<Sweep, SpecError> {
    let Kind::Map(entries) = &root.kind else {
        return Err(ctx.error(
            &root.at,
            format!(
                "a sweep file is a mapping with keys {} (found {})",
                TOP_KEYS.join(", "),
                describe(root)
            ),
        ));
    };
    let mut sweep = Sweep::empty();
    let mut has_name = false;
    for e in entries {
        let v = &e.value;
        match e.key.as_str() {
            "name" => {
                sweep.name = expect_text(ctx, v)?;
                check_name(ctx, &v.at, "the sweep name", &sweep.name)?;
                has_name = true;
            }
            "description" => {
                if !v.is_null() {
                    sweep.description = Some(expect_text(ctx, v)?);
                }
            }
            "max_attempts" => sweep.max_attempts = max_attempts(ctx, v)?,
            "runs" => sweep.runs = Some(expect_text(ctx, v)?).filter(|r| !r.trim().is_empty()),
            "data" => {
                sweep.data = expect_map(ctx, v, "a mapping of data settings")?.cloned();
                sweep.data_key = Some(e.key_at.clone());
            }
            "base" => sweep.base = base(ctx, v)?,
            "grid" => sweep.grid = grid(ctx, v)?,
            "include" => sweep.include = include(ctx, v)?,
            "exclude" => sweep.exclude = exclude(ctx, v)?,
            "seeds" => sweep.seeds = Some(seeds(ctx, v)?),
            "cv" => sweep.cv = cv(ctx, &e.key_at, v)?,
            "stages" => sweep.stages = stages(ctx, v)?,
            "search" => sweep.search = Some((e.key_at.clone(), v.clone())),
            "stop" => sweep.stop = Some((e.key_at.clone(), v.clone())),
            "share_prefixes" => sweep.share_prefixes = expect_bool(ctx, v)?,
            "command" => sweep.program.command = Some((e.key_at.clone(), v.clone())),
            "program" => sweep.program.program = Some((e.key_at.clone(), v.clone())),
            "identity_files" => sweep.program.identity_files = Some(v.clone()),
            "env" => sweep.program.env = Some(v.clone()),
            other => return Err(unknown_key(ctx, &e.key_at, other)),
        }
    }
    if !has_name {
        return Err(ctx.error(
            &root.at,
            "missing key \"name\" (the sweep's name, unique per database)",
        ));
    }
    // Two ways of setting the seed would multiply (or silently override) each other.
    if let (Some(_), Some(axis)) = (&sweep.seeds, sweep.grid.iter().find(|a| a.key == "seed")) {
        return Err(ctx.error(
            &axis.key_at,
            "seeds are given by `seeds:`; vary them there, not in the grid",
        ));
    }
    search_alone(&sweep, ctx)?;
    if sweep.program.is_empty() {
        data_at_top(&sweep, ctx)?;
    } else {
        trainer_keys_absent(&sweep, ctx)?;
    }
    Ok(sweep)
}

/// One place for the built-in trainer's data set: the top-level `data`, which every job
/// and stage gets.
fn data_at_top(sweep: &Sweep, ctx: &Ctx) -> Result<(), SpecError> {
    match sweep.base.as_ref().and_then(|b| b.get("data")) {
        Some(d) => Err(ctx.error(
            &d.key_at,
            "`data` belongs at the top level of the sweep file (it is merged into every job, stages included)",
        )),
        None => Ok(()),
    }
}

/// What only the built-in trainer does: its data set, and stages that hand over weights.
fn trainer_keys_absent(sweep: &Sweep, ctx: &Ctx) -> Result<(), SpecError> {
    if let Some(at) = &sweep.data_key {
        return Err(ctx.error(
            at,
            "data: describes the built-in trainer's data set; your program reads its own (pass its folder as a parameter under base:)",
        ));
    }
    if let Some(s) = sweep.stages.first() {
        return Err(ctx.error(
            &s.body.at,
            "stages: hand the built-in trainer's weights from job to job; a command sweep has none (run the stage as its own sweep and pass its checkpoint as a parameter)",
        ));
    }
    Ok(())
}

/// `search:` varies jobs by itself (one trial at a time), so the keys that list jobs up
/// front do not combine with it; `stop:` acts on its trials, so it needs it.
fn search_alone(sweep: &Sweep, ctx: &Ctx) -> Result<(), SpecError> {
    if sweep.search.is_none() {
        return match &sweep.stop {
            Some((at, _)) => Err(ctx.error(
                at,
                "needs search: stopping rules act on the trials of an adaptive search; add a search: section or drop stop:",
            )),
            None => Ok(()),
        };
    }
    const ADVICE: &str = "list grid keys in search.space as {choice: [...]}";
    let also = |key: &str| {
        let space = sweep.search.as_ref().and_then(|(_, s)| s.get("space"));
        match space.and_then(|e| e.value.get(key)) {
            Some(_) => format!("{key} is also a search.space key, and "),
            None => String::new(),
        }
    };
    if let Some(axis) = sweep.grid.first() {
        let axis = sweep
            .grid
            .iter()
            .find(|a| !also(&a.key).is_empty())
            .unwrap_or(axis);
        return Err(ctx.error(
            &axis.key_at,
            format!(
                "{}grid does not combine with search: {ADVICE}",
                also(&axis.key)
            ),
        ));
    }
    if let Some(first) = sweep.include.first() {
        let shared = sweep
            .include
            .iter()
            .flat_map(|entry| entry.entries().unwrap_or_default())
            .find(|e| !also(&e.key).is_empty());
        let (at, key) = shared.map_or((&first.at, ""), |e| (&e.key_at, e.key.as_str()));
        return Err(ctx.error(
            at,
            format!(
                "{}include does not combine with search: {ADVICE}",
                also(key)
            ),
        ));
    }
    if let Some(entry) = sweep.exclude.first() {
        return Err(ctx.error(
            &entry.at,
            "exclude does not combine with search: narrow search.space instead",
        ));
    }
    Ok(())
}

impl Sweep {
    /// A sweep with every key absent (the defaults).
    fn empty() -> Self {
        Sweep {
            name: String::new(),
            description: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            runs: None,
            data: None,
            data_key: None,
            base: None,
            grid: Vec::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            seeds: None,
            cv: None,
            stages: Vec::new(),
            search: None,
            stop: None,
            share_prefixes: true,
            program: Default::default(),
        }
    }
}

fn max_attempts(ctx: &Ctx, v: &Node) -> Result<u32, SpecError> {
    let n = expect_uint(ctx, v)?;
    if !(1..=100).contains(&n) {
        return Err(ctx.error(&v.at, format!("{n} is not between 1 and 100")));
    }
    Ok(n as u32)
}

fn base(ctx: &Ctx, v: &Node) -> Result<Option<Node>, SpecError> {
    Ok(expect_map(ctx, v, "a mapping of job settings")?.cloned())
}

fn include(ctx: &Ctx, v: &Node) -> Result<Vec<Node>, SpecError> {
    let mut out = Vec::new();
    for item in expect_list(ctx, v, "a list of job settings")? {
        if expect_map(ctx, item, "a mapping of job settings")?.is_none() {
            return Err(ctx.error(&item.at, "empty include entry"));
        }
        out.push(item.clone());
    }
    Ok(out)
}

fn exclude(ctx: &Ctx, v: &Node) -> Result<Vec<Node>, SpecError> {
    let mut out = Vec::new();
    for item in expect_list(ctx, v, "a list of key: value mappings")? {
        match expect_map(ctx, item, "a mapping of key: value")? {
            Some(m) if !m.entries().unwrap_or_default().is_empty() => out.push(item.clone()),
            // An entry with no keys matches every job.
            _ => {
                return Err(ctx.error(&item.at, "empty exclude entry (it would exclude every job)"))
            }
        }
    }
    Ok(out)
}

fn seeds(ctx: &Ctx, v: &Node) -> Result<Vec<(u64, Origin)>, SpecError> {
    let items = expect_list(ctx, v, "a list of seeds like [0, 1, 2]")?;
    if items.is_empty() {
        return Err(ctx.error(&v.at, "empty list of seeds (drop the key to use base.seed)"));
    }
    items
        .iter()
        .map(|i| Ok((expect_uint(ctx, i)?, i.at.clone())))
        .collect()
}

/// `cv: {folds: N, by: subject}`: known keys only, `folds` given and at least 2.
fn cv(ctx: &Ctx, key_at: &Origin, v: &Node) -> Result<Option<Cv>, SpecError> {
    let Some(m) = expect_map(ctx, v, "a mapping like {folds: 5, by: subject}")? else {
        return Ok(None);
    };
    let (mut folds, mut by) = (None, (FoldBy::Subject, key_at.clone()));
    for e in m.entries().unwrap_or_default() {
        match e.key.as_str() {
            "folds" => folds = Some((expect_uint(ctx, &e.value)?, e.value.at.clone())),
            "by" => {
                let name = expect_text(ctx, &e.value)?;
                let parsed = name
                    .parse::<FoldBy>()
                    .map_err(|m| ctx.error(&e.value.at, m))?;
                by = (parsed, e.value.at.clone());
            }
            other => {
                let hint = did_you_mean(other, ["folds", "by"]);
                let hint = if hint.is_empty() {
                    ", expected folds or by".into()
                } else {
                    hint
                };
                return Err(ctx.error(&e.key_at, format!("unknown key {other:?}{hint}")));
            }
        }
    }
    let Some((n, folds_at)) = folds else {
        return Err(ctx.error(
            key_at,
            "missing key \"folds\" (the number of folds, e.g. {folds: 5, by: subject})",
        ));
    };
    if n < 2 {
        return Err(ctx.error(
            &folds_at,
            format!("{n} fold(s): cross-validation needs at least 2"),
        ));
    }
    // More folds than a plan may have jobs can only be a mistake (and fits the config's u32).
    let folds = u32::try_from(n)
        .ok()
        .filter(|n| (*n as usize) <= super::MAX_JOBS);
    let Some(folds) = folds else {
        return Err(ctx.error(
            &folds_at,
            format!("{n} folds is more than {} jobs", super::MAX_JOBS),
        ));
    };
    Ok(Some(Cv {
        folds,
        by: by.0,
        key_at: key_at.clone(),
        folds_at,
        by_at: by.1,
    }))
}

fn stages(ctx: &Ctx, v: &Node) -> Result<Vec<Stage>, SpecError> {
    let Some(m) = expect_map(ctx, v, "a mapping of stage name -> job settings")? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for s in m.entries().unwrap_or_default() {
        check_name(ctx, &s.key_at, "the stage name", &s.key)?;
        if s.value.entries().is_none() && !s.value.is_null() {
            return Err(ctx.error(
                &s.value.at,
                format!(
                    "expected a mapping of job settings, found {}",
                    describe(&s.value)
                ),
            ));
        }
        out.push(Stage {
            name: s.key.clone(),
            body: s.value.clone(),
        });
    }
    Ok(out)
}

/// An unknown top-level key: a typo of one, or a job setting that belongs under `base:`.
fn unknown_key(ctx: &Ctx, at: &Origin, key: &str) -> SpecError {
    let mut hint = did_you_mean(key, TOP_KEYS.iter().copied());
    if hint.is_empty() && super::de::job_fields().iter().any(|f| f == key) {
        hint = format!(" (job settings go under `base:`, e.g. base.{key})");
    }
    ctx.error(at, format!("unknown key {key:?}{hint}"))
}

fn grid(ctx: &Ctx, node: &Node) -> Result<Vec<Axis>, SpecError> {
    let Some(map) = expect_map(ctx, node, "a mapping of key: [values]")? else {
        return Ok(Vec::new());
    };
    let mut axes = Vec::new();
    for e in map.entries().unwrap_or_default() {
        let Some(path) = parse_path(&e.key).filter(|p| p.iter().all(|s| matches!(s, Seg::Key(_))))
        else {
            return Err(ctx.error(
                &e.key_at,
                format!(
                    "malformed key {:?} (expected a dotted key like model.head)",
                    e.key
                ),
            ));
        };
        let values = match &e.value.kind {
            Kind::Seq(items) if items.is_empty() => {
                return Err(ctx.error(
                    &e.key_at,
                    "empty list of values (the grid would have no points)",
                ))
            }
            Kind::Seq(items) => items.clone(),
            _ => {
                return Err(ctx.error(
                    &e.value.at,
                    format!(
                        "grid values are lists, e.g. `{}: [{}]`; found {}",
                        e.key,
                        match &e.value.kind {
                            Kind::Leaf(v) if !v.is_null() => super::format_value(v),
                            _ => "...".into(),
                        },
                        describe(&e.value)
                    ),
                ))
            }
        };
        axes.push(Axis {
            key: e.key.clone(),
            path,
            key_at: e.key_at.clone(),
            values,
        });
    }
    Ok(axes)
}

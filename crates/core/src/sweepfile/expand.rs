//! From the checked sweep structure to the list of jobs: grid product, include, seeds,
//! exclude, stages, de-duplication; every job deserialised and validated, with errors
//! mapped back to the line that set the offending value.

use super::de::{from_node, humanize, DeError};
use super::parse::{Cv, Stage, Sweep};
use super::tree::{parse_path, path_string, Kind, Node, Origin, Seg};
use super::{format_value, Ctx, Planned, PlannedJob, SpecError, MAX_JOBS};
use crate::job::{chained_hash, JobConfig, JobSpec, LossKind, LossTerm};
use crate::suggest::did_you_mean;
use serde_yaml::Value;
use std::collections::{HashMap, HashSet};

/// Keys the label already shows (besides `seed`, left out on purpose; `fold` as `fold k/N`).
const LABEL_SHOWN: &[&str] = &["crop", "iters", "model.head", "loss", "seed", "fold"];

pub(super) type Located = (Origin, String);

/// Deserialises a job tree, or says where and why not.
pub(super) fn to_config(tree: &Node) -> Result<JobConfig, Located> {
    from_node::<JobConfig>(tree).map_err(|e| locate_de(tree, &[], e))
}

/// Whether a job tree can be a job: the built-in trainer's must read as a [`JobConfig`];
/// a command sweep's parameters are the program's to check.
pub(super) fn check_tree(tree: &Node, ctx: &Ctx) -> Result<(), Located> {
    match ctx.program {
        Some(_) => Ok(()),
        None => to_config(tree).map(|_| ()),
    }
}

/// A job tree's values as `exclude` and `varied` compare them: the trainer's config with
/// every default filled in, or a program's parameters as written (`config` None).
fn resolved(tree: &Node, config: Option<&JobConfig>) -> Result<Value, String> {
    match config {
        Some(c) => serde_yaml::to_value(c).map_err(|e| e.to_string()),
        None => Ok(tree.to_value()),
    }
}

fn first_backticked(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?;
    Some(rest[..rest.find('`')?].to_string())
}

/// Where in `tree` a deserialisation error (at `prefix` + its own path) points.
fn locate_de(tree: &Node, prefix: &[Seg], e: DeError) -> Located {
    let mut path = prefix.to_vec();
    path.extend(e.path.unwrap_or_default());
    if e.message
        .starts_with("data did not match any variant of untagged enum LossSpec")
    {
        return loss_error(tree, &path);
    }
    let (entry, node, depth) = tree.locate(&path);
    let message = humanize(&e.message);
    if depth == path.len() && !e.at_key {
        // Internally tagged enums (optimizer) buffer their map, so serde reports an unknown
        // key or `type` at the map: point at the key or value inside it.
        if let Some(word) = first_backticked(&e.message, "unknown field `") {
            if let Some(inner) = node.get(&word) {
                return (inner.key_at.clone(), message);
            }
        }
        if let Some(word) = first_backticked(&e.message, "unknown variant `") {
            let inner = node
                .entries()
                .unwrap_or_default()
                .iter()
                .find(|i| matches!(&i.value.kind, Kind::Leaf(Value::String(s)) if *s == word));
            if let Some(inner) = inner {
                return (inner.value.at.clone(), message);
            }
        }
    }
    let at = match (entry, &node.kind) {
        (Some(entry), _) if e.at_key && depth == path.len() => entry.key_at.clone(),
        (_, Kind::Leaf(_)) => node.at.clone(),
        (Some(entry), _) => entry.key_at.clone(),
        (None, _) => node.at.clone(),
    };
    (at, message)
}

/// `loss` is "a name or a list of terms" (untagged); serde can only say that neither
/// matched, so look at it again to say what is wrong.
fn loss_error(tree: &Node, path: &[Seg]) -> Located {
    let (entry, node, _) = tree.locate(path);
    let names = LossKind::NAMES
        .iter()
        .copied()
        .chain(["cross_entropy"])
        .collect::<Vec<_>>();
    match &node.kind {
        Kind::Leaf(Value::String(s)) => (
            node.at.clone(),
            format!(
                "unknown loss {s:?}, expected one of {}{}",
                LossKind::NAMES.join(", "),
                did_you_mean(s, names.iter().copied())
            ),
        ),
        Kind::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                if let Err(e) = from_node::<LossTerm>(item) {
                    let mut p = path.to_vec();
                    p.push(Seg::Index(i));
                    return locate_de(tree, &p, e);
                }
            }
            (node.at.clone(), "invalid loss".into())
        }
        other => (
            match (other, entry) {
                (Kind::Map(_), Some(e)) => e.key_at.clone(),
                _ => node.at.clone(),
            },
            format!(
                "expected a loss name ({}) or a list of terms like [{{type: ce, weight: 1.0}}, {{type: dice, weight: 3.0}}]",
                LossKind::NAMES.join(", ")
            ),
        ),
    }
}

/// Where a `validate()` field (`crop`, `data.scale[0]`, `loss[1].class_weight`) was set.
fn locate_field(tree: &Node, field: &str, message: &str) -> Located {
    let path = parse_path(field).unwrap_or_default();
    let (entry, node, depth) = tree.locate(&path);
    let at = match (&node.kind, entry) {
        (Kind::Leaf(_), _) => node.at.clone(),
        (_, Some(e)) => e.key_at.clone(),
        _ => node.at.clone(),
    };
    if depth == path.len() {
        (at, message.to_string())
    } else {
        (at, format!("{field}: {message}"))
    }
}

/// The leaf keys a fragment sets, dotted keys expanded: `{model: {head: x}, crop: 1}` ->
/// `model.head`, `crop`.
fn leaf_paths(fragment: &Node, prefix: &[Seg], out: &mut Vec<Vec<Seg>>) {
    for e in fragment.entries().unwrap_or_default() {
        let mut path = prefix.to_vec();
        path.extend(parse_path(&e.key).unwrap_or_default());
        match e.value.entries() {
            Some(inner) if !inner.is_empty() => leaf_paths(&e.value, &path, out),
            _ => out.push(path),
        }
    }
}

fn get<'a>(value: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, seg| match seg {
        Seg::Key(k) => v.get(k.as_str()),
        Seg::Index(i) => v.get(*i),
    })
}

/// The value at `path`, numeric keys indexing lists (`loss.0.class_weight.1`), as
/// [`Node::set`] reads them.
pub(super) fn lookup<'a>(value: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, seg| match (seg, v) {
        (Seg::Key(k), Value::Sequence(items)) => items.get(k.parse::<usize>().ok()?),
        (Seg::Key(k), _) => v.get(k.as_str()),
        (Seg::Index(i), _) => v.get(*i),
    })
}

pub(super) struct Candidate {
    pub tree: Node,
    /// What this point sets, for messages: `crop=288, loss=focal`.
    pub context: Vec<(String, String)>,
    pub stage: Option<String>,
}

pub(super) struct Built {
    tree: Node,
    stage: Option<String>,
    config: JobSpec,
    hash: String,
    resolved: Value,
    classes: Vec<String>,
}

impl Built {
    /// The stage this job starts from (`init.from`).
    fn init_from(&self) -> Option<&str> {
        self.config.train()?.init.as_ref()?.from.as_deref()
    }
}

pub(super) fn build(c: Candidate, ctx: &Ctx) -> Result<Built, SpecError> {
    let with_job = |mut e: SpecError| {
        if !c.context.is_empty() {
            let pairs: Vec<String> = c.context.iter().map(|(k, v)| format!("{k}={v}")).collect();
            e.job = Some(pairs.join(", "));
        }
        e
    };
    let (config, classes) = match ctx.program {
        Some(program) => (
            JobSpec::Command(
                program
                    .job(super::program::params(&c.tree), ctx)
                    .map_err(with_job)?,
            ),
            Vec::new(),
        ),
        None => {
            let (config, classes) =
                trainer_job(&c.tree).map_err(|(at, m)| with_job(ctx.error(&at, m)))?;
            (JobSpec::Train(config), classes)
        }
    };
    let resolved = resolved(&c.tree, config.train())
        .map_err(|e| with_job(ctx.error(&c.tree.at, format!("cannot serialise the job: {e}"))))?;
    Ok(Built {
        hash: config.hash(),
        tree: c.tree,
        stage: c.stage,
        config,
        resolved,
        classes,
    })
}

/// The built-in trainer's job of a tree: read, its data set resolved (with its class names)
/// and validated.
fn trainer_job(tree: &Node) -> Result<(JobConfig, Vec<String>), Located> {
    let mut config = to_config(tree)?;
    let classes = super::data_set::resolve(&mut config, tree)?;
    if let Err(e) = config.validate() {
        return Err(locate_field(tree, &e.field, &e.message));
    }
    Ok((config, classes))
}

/// Turns a [`Located`] problem into the sweep file's error.
pub(super) fn fail<'a>(ctx: &'a Ctx) -> impl Fn(Located) -> SpecError + 'a {
    move |(at, m)| ctx.error(&at, m)
}

/// A grid's jobs (`grid`, `include`, `exclude`, folds, seeds and stages) from its base tree.
pub(super) fn plan(sw: &Sweep, base: Node, ctx: &Ctx) -> Result<Planned, SpecError> {
    let mut points = grid_points(sw, &base, ctx)?;
    points.extend(include_points(sw, &base, ctx)?);
    if sw.grid.is_empty() && sw.include.is_empty() {
        points.push(Candidate {
            tree: base.clone(),
            context: Vec::new(),
            stage: None,
        });
    }
    let points = with_folds(points, sw.cv.as_ref(), ctx)?;
    let built = with_seeds(points, sw.seeds.as_deref(), ctx)?
        .into_iter()
        .map(|c| build(c, ctx))
        .collect::<Result<Vec<_>, _>>()?;
    let (built, mut warnings) = exclude(sw, &base, built, ctx)?;
    let (stages, stage_hash) = build_stages(sw, &base, ctx)?;
    warnings.extend(stages_seeing_folds(sw.cv.as_ref(), &stages, &built, ctx));
    let varied_keys = varied_keys(sw);
    let order = Order {
        stages: &sw.stages,
        stage_hash: &stage_hash,
        varied_keys: &varied_keys,
        trial: None,
    };
    let mut jobs = order.jobs(stages.into_iter().chain(built), ctx)?;
    if sw.share_prefixes {
        super::prefix::share(&mut jobs);
    }
    Ok(Planned {
        jobs,
        warnings,
        search: None,
    })
}

/// What turns built jobs into the plan's jobs: their stages, labels and `varied` keys.
pub(super) struct Order<'a> {
    pub stages: &'a [Stage],
    pub stage_hash: &'a HashMap<String, String>,
    pub varied_keys: &'a [String],
    /// The trial of an adaptive search the jobs belong to (in their labels).
    pub trial: Option<u64>,
}

impl Order<'_> {
    /// Dependencies resolved and chained into the hashes; a job hashing the same as an
    /// earlier one is dropped.
    pub fn jobs(
        &self,
        built: impl IntoIterator<Item = Built>,
        ctx: &Ctx,
    ) -> Result<Vec<PlannedJob>, SpecError> {
        let mut seen = HashSet::new();
        let mut jobs = Vec::new();
        for mut b in built {
            let depends_on = dependency(&b, self.stage_hash, ctx)?;
            // Fine-tune jobs are new jobs when their stage changes (stages are chained already).
            if let (None, Some(dep)) = (&b.stage, &depends_on) {
                b.hash = chained_hash(&b.hash, dep);
            }
            if !seen.insert(b.hash.clone()) {
                continue;
            }
            jobs.push(self.planned_job(b, depends_on));
        }
        Ok(jobs)
    }
}

/// `base` with the top-level `data` set into it: what every job starts from.
pub(super) fn base_tree(sw: &Sweep, ctx: &Ctx) -> Result<Node, SpecError> {
    let base_at = sw
        .base
        .as_ref()
        .map_or_else(|| Origin::file(None, "base"), |b| b.at.clone());
    let mut base = Node::empty_map(base_at);
    if let Some(b) = &sw.base {
        base.apply(b).map_err(fail(ctx))?;
    }
    if let Some(d) = &sw.data {
        let key_at = sw.data_key.clone().unwrap_or_else(|| d.at.clone());
        base.set(&[Seg::Key("data".into())], d, &key_at)
            .map_err(fail(ctx))?;
    }
    // `base` must be a well-typed config by itself (validate() runs per job: a grid may
    // legitimately override a base value that would not validate alone).
    check_tree(&base, ctx).map_err(fail(ctx))?;
    Ok(base)
}

/// The grid's cartesian product, first key slowest.
fn grid_points(sw: &Sweep, base: &Node, ctx: &Ctx) -> Result<Vec<Candidate>, SpecError> {
    if sw.grid.is_empty() {
        return Ok(Vec::new());
    }
    // Refuse a huge grid before building any of it.
    let total = sw.grid.iter().try_fold(1usize, |n, a| {
        n.checked_mul(a.values.len()).filter(|n| *n <= MAX_JOBS)
    });
    let Some(total) = total else {
        return Err(ctx.error(
            &sw.grid[0].key_at,
            format!("the grid has more than {MAX_JOBS} points"),
        ));
    };
    let mut points = Vec::new();
    for n in 0..total {
        // mixed-radix counter: the last key varies fastest
        let mut rest = n;
        let mut picks = vec![0; sw.grid.len()];
        for (i, axis) in sw.grid.iter().enumerate().rev() {
            picks[i] = rest % axis.values.len();
            rest /= axis.values.len();
        }
        let mut tree = base.clone();
        let mut context = Vec::new();
        for (axis, &j) in sw.grid.iter().zip(&picks) {
            let v = &axis.values[j];
            tree.set(&axis.path, v, &axis.key_at).map_err(fail(ctx))?;
            context.push((axis.key.clone(), format_value(&v.to_value())));
        }
        points.push(Candidate {
            tree,
            context,
            stage: None,
        });
    }
    Ok(points)
}

/// One job per `include` entry, each on top of base.
fn include_points(sw: &Sweep, base: &Node, ctx: &Ctx) -> Result<Vec<Candidate>, SpecError> {
    let mut points = Vec::new();
    for entry in &sw.include {
        let mut tree = base.clone();
        tree.apply(entry).map_err(fail(ctx))?;
        let mut keys = Vec::new();
        leaf_paths(entry, &[], &mut keys);
        let context = keys
            .iter()
            .map(|k| {
                let node = fragment_value(entry, k);
                (path_string(k), format_value(&node.to_value()))
            })
            .collect();
        points.push(Candidate {
            tree,
            context,
            stage: None,
        });
    }
    Ok(points)
}

/// With `cv`, every point once per fold (point-major, then fold), `data.split` set to the
/// fold. A point that sets another split is an error: `cv` defines the split.
pub(super) fn with_folds(
    points: Vec<Candidate>,
    cv: Option<&Cv>,
    ctx: &Ctx,
) -> Result<Vec<Candidate>, SpecError> {
    let Some(cv) = cv else {
        return Ok(points);
    };
    if points.len().saturating_mul(cv.folds as usize) > MAX_JOBS {
        return Err(ctx.error(
            &cv.folds_at,
            format!(
                "{} points x {} folds is more than {MAX_JOBS} jobs",
                points.len(),
                cv.folds
            ),
        ));
    }
    let split_path = [Seg::Key("data".into()), Seg::Key("split".into())];
    let mut out = Vec::new();
    for p in &points {
        if ctx.program.is_none() {
            if let Some(at) = other_split(&p.tree) {
                let mut e = ctx.error(
                &at,
                format!(
                    "cv: {{folds: {}}} defines every job's split (fold k validates on the k-th group of subjects and trains on the rest); drop data.split or set it to study",
                    cv.folds
                ),
            );
                e.job = job_context(&p.context);
                return Err(e);
            }
        }
        for fold in 0..cv.folds {
            let mut tree = p.tree.clone();
            match ctx.program {
                // The program cuts its own folds: it gets `fold` (0-based) and `folds`.
                Some(_) => {
                    for (key, value, at) in [
                        ("fold", fold, &cv.key_at),
                        ("folds", cv.folds, &cv.folds_at),
                    ] {
                        let node = Node {
                            kind: Kind::Leaf(Value::from(value)),
                            at: at.clone(),
                        };
                        tree.set(&[Seg::Key(key.into())], &node, at)
                            .map_err(fail(ctx))?;
                    }
                }
                None => tree
                    .set(&split_path, &fold_node(cv, fold), &cv.key_at)
                    .map_err(fail(ctx))?,
            }
            let mut context = p.context.clone();
            context.push(("fold".into(), format!("{}/{}", fold + 1, cv.folds)));
            out.push(Candidate {
                tree,
                context,
                stage: None,
            });
        }
    }
    Ok(out)
}

/// Where a job tree sets `data.split` to anything but `study`.
fn other_split(tree: &Node) -> Option<Origin> {
    let path = [Seg::Key("data".into()), Seg::Key("split".into())];
    let (entry, node, depth) = tree.locate(&path);
    match (&node.kind, entry) {
        _ if depth < path.len() => None,
        (Kind::Leaf(Value::String(s)), _) if s == "study" => None,
        (Kind::Leaf(Value::Null), _) => None,
        (Kind::Leaf(_), _) => Some(node.at.clone()),
        (_, Some(e)) => Some(e.key_at.clone()),
        (_, None) => Some(node.at.clone()),
    }
}

/// `{fold: {folds: N, fold: k, by: subject}}`, each value located at what `cv` wrote.
fn fold_node(cv: &Cv, fold: u32) -> Node {
    let leaf = |v: Value, at: &Origin| Node {
        kind: Kind::Leaf(v),
        at: at.clone(),
    };
    let entry = |key: &str, value: Node| super::tree::Entry {
        key: key.into(),
        key_at: value.at.clone(),
        value,
    };
    let inner = Node {
        kind: Kind::Map(vec![
            entry("folds", leaf(Value::from(cv.folds), &cv.folds_at)),
            entry("fold", leaf(Value::from(fold), &cv.key_at)),
            entry("by", leaf(Value::from(cv.by.name()), &cv.by_at)),
        ]),
        at: cv.key_at.clone(),
    };
    Node {
        kind: Kind::Map(vec![entry("fold", inner)]),
        at: cv.key_at.clone(),
    }
}

/// `crop=288, fold=2/5`: the point being expanded, for messages.
fn job_context(context: &[(String, String)]) -> Option<String> {
    let pairs: Vec<String> = context.iter().map(|(k, v)| format!("{k}={v}")).collect();
    (!pairs.is_empty()).then(|| pairs.join(", "))
}

/// Warnings for stages that train on the data the folds are cut from: their weights have
/// seen every fold's val subjects, so the dependants' fold scores are not held out.
pub(super) fn stages_seeing_folds(
    cv: Option<&Cv>,
    stages: &[Built],
    built: &[Built],
    ctx: &Ctx,
) -> Vec<SpecError> {
    let Some(cv) = cv else {
        return Vec::new();
    };
    let data = |b: &Built| b.config.train().map(|c| c.data.clone());
    let same_data = |s: &Built| {
        built.iter().any(|b| match (data(b), data(s)) {
            (Some(d), Some(sd)) => {
                b.init_from() == s.stage.as_deref() && d.dataset == sd.dataset && d.root == sd.root
            }
            _ => false,
        })
    };
    stages
        .iter()
        .filter(|s| same_data(s))
        .filter_map(|s| {
            let d = data(s)?;
            Some(ctx.error(
                &cv.key_at,
                format!(
                    "stage {:?} trains on {} ({}), which the folds split: its weights have seen every fold's val subjects",
                    s.stage.as_deref().unwrap_or_default(),
                    d.dataset,
                    d.root.display()
                ),
            ))
        })
        .collect()
}

/// Every point once per seed, all points of the first seed first (so an interrupted sweep
/// has covered every config).
pub(super) fn with_seeds(
    points: Vec<Candidate>,
    seeds: Option<&[(u64, Origin)]>,
    ctx: &Ctx,
) -> Result<Vec<Candidate>, SpecError> {
    let Some(seeds) = seeds else {
        return Ok(points);
    };
    if points.len().saturating_mul(seeds.len()) > MAX_JOBS {
        return Err(ctx.error(
            &seeds[0].1,
            format!(
                "{} points x {} seeds is more than {MAX_JOBS} jobs",
                points.len(),
                seeds.len()
            ),
        ));
    }
    let mut out = Vec::new();
    for (seed, at) in seeds {
        let node = Node {
            kind: Kind::Leaf(Value::from(*seed)),
            at: at.clone(),
        };
        for p in &points {
            let mut tree = p.tree.clone();
            tree.set(&[Seg::Key("seed".into())], &node, at)
                .map_err(fail(ctx))?;
            let mut context = p.context.clone();
            context.push(("seed".into(), seed.to_string()));
            out.push(Candidate {
                tree,
                context,
                stage: None,
            });
        }
    }
    Ok(out)
}

/// Drops the jobs that match every key of some `exclude` entry; warns about entries that
/// match nothing (likely a typo'd value).
fn exclude(
    sw: &Sweep,
    base: &Node,
    mut built: Vec<Built>,
    ctx: &Ctx,
) -> Result<(Vec<Built>, Vec<SpecError>), SpecError> {
    // compare resolved values (aliases and defaults filled in on both sides)
    let mut rules = Vec::new();
    for entry in &sw.exclude {
        let mut tree = base.clone();
        tree.apply(entry).map_err(fail(ctx))?;
        let config = match ctx.program {
            Some(_) => None,
            None => Some(to_config(&tree).map_err(fail(ctx))?),
        };
        let resolved = resolved(&tree, config.as_ref())
            .map_err(|e| ctx.error(&entry.at, format!("cannot serialise: {e}")))?;
        let mut keys = Vec::new();
        leaf_paths(entry, &[], &mut keys);
        let wanted: Vec<(Vec<Seg>, Option<Value>)> = keys
            .into_iter()
            .map(|k| {
                let v = get(&resolved, &k).cloned();
                (k, v)
            })
            .collect();
        rules.push((entry, wanted, 0usize));
    }
    built.retain(|b| {
        let mut keep = true;
        for (_, wanted, hits) in rules.iter_mut() {
            if wanted
                .iter()
                .all(|(k, v)| get(&b.resolved, k) == v.as_ref())
            {
                *hits += 1;
                keep = false;
            }
        }
        keep
    });
    if built.is_empty() {
        if let Some(first) = sw.exclude.first() {
            return Err(ctx.error(&first.at, "every job is excluded (the plan would be empty)"));
        }
    }
    let warnings = rules
        .iter()
        .filter(|(_, _, hits)| *hits == 0)
        .map(|(entry, _, _)| ctx.error(&entry.at, "this exclude entry matches no job"))
        .collect();
    Ok((built, warnings))
}

/// The stages, one job each on top of base, dependencies before dependants; and each
/// stage's name -> its (chained) hash.
pub(super) fn build_stages(
    sw: &Sweep,
    base: &Node,
    ctx: &Ctx,
) -> Result<(Vec<Built>, HashMap<String, String>), SpecError> {
    let mut stages = Vec::new();
    // A stage starts from base without base's `init`: `base: {init: {from: pre}}` means
    // "every job starts from stage pre", which must not make `pre` start from itself.
    let mut stage_base = base.clone();
    if let Kind::Map(entries) = &mut stage_base.kind {
        entries.retain(|e| e.key != "init");
    }
    for s in &sw.stages {
        let mut tree = stage_base.clone();
        tree.apply(&s.body).map_err(fail(ctx))?;
        stages.push(build(
            Candidate {
                tree,
                context: Vec::new(),
                stage: Some(s.name.clone()),
            },
            ctx,
        )?);
    }
    let mut stages = order_stages(stages, ctx)?;
    // A stage's identity includes the identity of the stage it starts from (dependencies
    // come first, so each is final when its dependants read it).
    let mut stage_hash: HashMap<String, String> = HashMap::new();
    for b in &mut stages {
        if let Some(dep) = b.init_from().and_then(|from| stage_hash.get(from)) {
            b.hash = chained_hash(&b.hash, dep);
        }
        if let Some(name) = &b.stage {
            stage_hash.insert(name.clone(), b.hash.clone());
        }
    }
    Ok((stages, stage_hash))
}

/// The keys the sweep varies: grid keys, then include keys, then seed.
fn varied_keys(sw: &Sweep) -> Vec<String> {
    let mut keys: Vec<String> = sw.grid.iter().map(|a| a.key.clone()).collect();
    for entry in &sw.include {
        let mut paths = Vec::new();
        leaf_paths(entry, &[], &mut paths);
        keys.extend(paths.iter().map(|k| path_string(k)));
    }
    with_seed_and_fold(keys, sw)
}

/// `keys`, then `seed` and `fold` when the sweep varies them, `init.*` folded into `init`.
pub(super) fn with_seed_and_fold(mut keys: Vec<String>, sw: &Sweep) -> Vec<String> {
    if sw.seeds.is_some() {
        keys.push("seed".into());
    }
    if sw.cv.is_some() {
        keys.push("fold".into());
    }
    collapse_init(keys)
}

/// The hash of the stage a job's `init.from` names, or an error if there is no such stage.
fn dependency(
    b: &Built,
    stage_hash: &HashMap<String, String>,
    ctx: &Ctx,
) -> Result<Option<String>, SpecError> {
    let Some(from) = b.init_from() else {
        return Ok(None);
    };
    if let Some(h) = stage_hash.get(from) {
        return Ok(Some(h.clone()));
    }
    let (at, _) = locate_field(&b.tree, "init.from", "");
    let hint = if stage_hash.is_empty() {
        " (define it under `stages:`)".to_string()
    } else {
        did_you_mean(from, stage_hash.keys().map(String::as_str))
    };
    Err(ctx.error(&at, format!("no stage named {from:?}{hint}")))
}

impl Order<'_> {
    /// A built job with its `varied` values and label.
    fn planned_job(&self, b: Built, depends_on: Option<String>) -> PlannedJob {
        // A stage shows what its own body sets; the other jobs what the sweep varies.
        let keys: Vec<String> = match (
            &b.stage,
            self.stages
                .iter()
                .find(|s| Some(&s.name) == b.stage.as_ref()),
        ) {
            (Some(_), Some(s)) => {
                let mut keys = Vec::new();
                leaf_paths(&s.body, &[], &mut keys);
                collapse_init(keys.iter().map(|k| path_string(k)).collect())
            }
            _ => self.varied_keys.to_vec(),
        };
        let varied: Vec<(String, String)> = keys
            .into_iter()
            .map(|k| {
                let v = varied_value(&b, &k);
                (k, v)
            })
            .collect();
        let mut label = b.config.label();
        // A command job's label is its program: every varied key but seed and fold shows.
        let shown: &[&str] = match b.config {
            JobSpec::Train(_) => LABEL_SHOWN,
            JobSpec::Command(_) => &["seed", "fold", "folds"],
        };
        for (k, v) in &varied {
            if b.stage.is_none() && !shown.contains(&k.as_str()) {
                label.push_str(&format!(", {k}={v}"));
            }
        }
        if let Some(trial) = self.trial {
            label.push_str(&format!(", trial {trial}"));
        }
        if let Some(fold) = b.config.fold_label() {
            label.push_str(&format!(", {fold}"));
        }
        if let Some(s) = &b.stage {
            label = format!("{s}: {label}");
        }
        PlannedJob {
            config: b.config,
            hash: b.hash,
            label,
            varied,
            stage: b.stage,
            depends_on,
            continues: false,
            classes: b.classes,
        }
    }
}

/// A job's value of a `varied` key, as shown: `init` by [`init_label`], `fold` as `k/N`.
fn varied_value(b: &Built, key: &str) -> String {
    if let (true, Some(config)) = (key == "init", b.config.train()) {
        init_label(config)
    } else if key == "fold" {
        b.config
            .fold_label()
            .map_or_else(|| "-".into(), |l| l.trim_start_matches("fold ").to_string())
    } else {
        parse_path(key)
            .and_then(|p| lookup(&b.resolved, &p).map(format_value))
            .unwrap_or_else(|| "-".into())
    }
}

/// Keys without repeats, every `init.*` key folded into one `init` (shown by [`init_label`]).
fn collapse_init(keys: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    keys.into_iter()
        .map(|k| {
            if k.starts_with("init.") {
                "init".to_string()
            } else {
                k
            }
        })
        .filter(|k| seen.insert(k.clone()))
        .collect()
}

/// What a job starts from, for labels and `varied`: `scratch`, the stage of `init.from`, or
/// the file name of `init.path`; ` backbone-only` when `init.backbone_only` is set.
pub(crate) fn init_label(config: &JobConfig) -> String {
    let Some(init) = &config.init else {
        return "scratch".into();
    };
    let mut s = match (&init.from, &init.path) {
        (Some(from), _) => from.clone(),
        (None, Some(path)) => path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        ),
        (None, None) => "-".into(),
    };
    if init.backbone_only {
        s.push_str(" backbone-only");
    }
    s
}

/// The value a fragment gives for one of its [`leaf_paths`] (following dotted keys).
fn fragment_value<'a>(fragment: &'a Node, path: &[Seg]) -> &'a Node {
    let mut node = fragment;
    let mut rest = path;
    'outer: while !rest.is_empty() {
        for e in node.entries().unwrap_or_default() {
            let Some(p) = parse_path(&e.key) else {
                continue;
            };
            if rest.starts_with(&p) {
                node = &e.value;
                rest = &rest[p.len()..];
                continue 'outer;
            }
        }
        break;
    }
    node
}

/// Stages in dependency order; a stage starting from a missing stage or from itself
/// (directly or through others) is an error.
fn order_stages(stages: Vec<Built>, ctx: &Ctx) -> Result<Vec<Built>, SpecError> {
    let index: HashMap<String, usize> = stages
        .iter()
        .enumerate()
        .filter_map(|(i, b)| Some((b.stage.clone()?, i)))
        .collect();
    let dep = |i: usize| -> Option<usize> {
        let from = stages[i].init_from()?;
        index.get(from).copied()
    };
    let mut order = Vec::new();
    let mut state = vec![0u8; stages.len()]; // 0 new, 1 on the current chain, 2 placed
    for start in 0..stages.len() {
        let mut chain = Vec::new();
        let mut i = Some(start);
        while let Some(cur) = i {
            match state[cur] {
                2 => break,
                1 => {
                    let (at, _) = locate_field(&stages[cur].tree, "init.from", "");
                    return Err(ctx.error(
                        &at,
                        format!(
                            "stage {:?} depends on itself (through init.from)",
                            stages[cur].stage.as_deref().unwrap_or_default()
                        ),
                    ));
                }
                _ => {
                    state[cur] = 1;
                    chain.push(cur);
                    i = dep(cur);
                }
            }
        }
        for &c in chain.iter().rev() {
            state[c] = 2;
            order.push(c);
        }
    }
    let mut slots: Vec<Option<Built>> = stages.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
}

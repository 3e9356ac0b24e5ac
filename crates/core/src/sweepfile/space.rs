//! `search.space`: one typed distribution per dotted job key, each checked against the
//! base job when the file is read, so that a misspelt key or a value of the wrong type is
//! an error at its line rather than forty failed trials.
//!
//! ```yaml
//! space:
//!   optimizer.lr: {log_uniform: [1.0e-4, 1.0e-1]}
//!   loss.0.class_weight.1: {uniform: [10, 100], step: 5}
//!   model.head: {choice: [fcn, deeplabv3, pspnet]}
//!   crop: {int: [128, 256], step: 64}
//! ```

use super::expand::{check_tree, lookup, to_config};
use super::parse::{describe, expect_list};
use super::tree::{parse_path, Entry, Kind, Node, Origin, Seg};
use super::{format_value, Ctx, SpecError};
use crate::search::space::{Dist, Param, Space};
use crate::suggest::did_you_mean;
use serde_yaml::Value;

/// The distribution kinds a space entry may name (exactly one of them).
pub const KINDS: &[&str] = &["uniform", "log_uniform", "int", "choice"];

/// Where a space key's value goes in a job, and where the key was written (every error
/// about a trial's value points there).
#[derive(Clone, Debug)]
pub(crate) struct SpaceKey {
    pub key: String,
    pub path: Vec<Seg>,
    pub at: Origin,
}

/// The space in file order, and where each key goes. `base` gains the `type` of the
/// sections the keys go into (see [`tag_section`]).
pub(super) fn read(
    ctx: &Ctx,
    space: &Entry,
    base: &mut Node,
) -> Result<(Space, Vec<SpaceKey>), SpecError> {
    let entries = match &space.value.kind {
        Kind::Map(entries) if !entries.is_empty() => entries,
        Kind::Map(_) | Kind::Leaf(Value::Null) => {
            return Err(ctx.error(
                &space.key_at,
                "empty: give the keys to search over, e.g. optimizer.lr: {log_uniform: [1.0e-4, 1.0e-1]}",
            ))
        }
        _ => {
            return Err(ctx.error(
                &space.value.at,
                format!(
                    "expected a mapping of job key: distribution, found {}",
                    describe(&space.value)
                ),
            ))
        }
    };
    let mut params = Vec::new();
    let mut keys = Vec::new();
    for e in entries {
        let Some(path) = parse_path(&e.key) else {
            return Err(ctx.error(
                &e.key_at,
                format!(
                    "malformed key {:?} (expected a dotted job key like optimizer.lr)",
                    e.key
                ),
            ));
        };
        if path == [Seg::Key("seed".into())] {
            return Err(ctx.error(
                &e.key_at,
                "the seed is not searched: every trial runs once per seed of `seeds:`",
            ));
        }
        let dist = dist(ctx, e)?;
        tag_section(base, &path, &e.key_at);
        check_key(ctx, base, &path, e, &dist)?;
        params.push(Param {
            key: e.key.clone(),
            dist,
        });
        keys.push(SpaceKey {
            key: e.key.clone(),
            path,
            at: e.key_at.clone(),
        });
    }
    Ok((Space { params }, keys))
}

/// `at`'s position under the space key's name: messages say which key, the position says
/// which part of its entry.
fn under(key: &Entry, at: &Origin) -> Origin {
    Origin {
        key: key.key_at.key.clone(),
        ..at.clone()
    }
}

/// One entry's distribution: exactly one kind, `step` only with a numeric kind.
fn dist(ctx: &Ctx, e: &Entry) -> Result<Dist, SpecError> {
    let fields = match &e.value.kind {
        Kind::Map(fields) => fields,
        Kind::Seq(_) => {
            return Err(ctx.error(
                &e.value.at,
                format!(
                "expected a distribution, found a list: write {{choice: {}}} to pick among values",
                format_value(&e.value.to_value())
            ),
            ))
        }
        _ => {
            return Err(ctx.error(
                &e.value.at,
                format!(
                    "expected a distribution like {{uniform: [low, high]}}, found {}",
                    describe(&e.value)
                ),
            ))
        }
    };
    let mut kind: Option<&Entry> = None;
    let mut step: Option<&Entry> = None;
    for f in fields {
        match f.key.as_str() {
            "step" => step = Some(f),
            k if KINDS.contains(&k) => {
                if let Some(first) = kind {
                    return Err(ctx.error(
                        &under(e, &f.key_at),
                        format!("two distributions ({} and {k}): give one", first.key),
                    ));
                }
                kind = Some(f);
            }
            other => return Err(unknown_kind(ctx, e, f, other)),
        }
    }
    let Some(kind) = kind else {
        return Err(ctx.error(
            &e.key_at,
            "no distribution: give one of {uniform: [low, high]}, {log_uniform: [low, high]}, {int: [low, high]} or {choice: [values]}",
        ));
    };
    let made = match kind.key.as_str() {
        "choice" => choice(ctx, e, kind, step)?,
        "int" => {
            let (low, high) = bounds(ctx, e, kind, |n| n.as_i64())?;
            let step = step.map(|s| int_step(ctx, e, s)).transpose()?;
            Dist::int(low, high, step)
        }
        name => {
            let (low, high) = bounds(ctx, e, kind, |n| n.as_f64())?;
            let step = step.map(|s| float_step(ctx, e, s)).transpose()?;
            match name {
                "log_uniform" => Dist::log_uniform(low, high, step),
                _ => Dist::uniform(low, high, step),
            }
        }
    };
    made.map_err(|m| ctx.error(&under(e, &kind.value.at), m))
}

/// An unknown key in a space entry: a misspelt kind, or a nested key that should be dotted.
fn unknown_kind(ctx: &Ctx, e: &Entry, f: &Entry, word: &str) -> SpecError {
    let mut hint = did_you_mean(word, KINDS.iter().copied().chain(["step"]));
    if hint.is_empty() && f.value.entries().is_some() {
        hint = format!(
            " (space keys are dotted job keys: write `{}.{word}: {{...}}`)",
            e.key
        );
    } else if hint.is_empty() {
        hint = format!(", expected one of {}", KINDS.join(", "));
    }
    ctx.error(
        &under(e, &f.key_at),
        format!("unknown distribution {word:?}{hint}"),
    )
}

/// `[low, high]`, both read by `num` (integers for `int`).
fn bounds<T>(
    ctx: &Ctx,
    e: &Entry,
    kind: &Entry,
    num: impl Fn(&serde_yaml::Number) -> Option<T>,
) -> Result<(T, T), SpecError> {
    let what = if kind.key == "int" {
        "integers"
    } else {
        "numbers"
    };
    let shape_error = || {
        ctx.error(
            &under(e, &kind.value.at),
            format!(
                "{} takes [low, high], two {what}; found {}",
                kind.key,
                format_value(&kind.value.to_value())
            ),
        )
    };
    let items = match &kind.value.kind {
        Kind::Seq(items) if items.len() == 2 => items,
        _ => return Err(shape_error()),
    };
    let read = |n: &Node| match &n.kind {
        Kind::Leaf(Value::Number(x)) => num(x),
        _ => None,
    };
    match (read(&items[0]), read(&items[1])) {
        (Some(low), Some(high)) => Ok((low, high)),
        _ => Err(shape_error()),
    }
}

fn float_step(ctx: &Ctx, e: &Entry, step: &Entry) -> Result<f64, SpecError> {
    match &step.value.kind {
        Kind::Leaf(Value::Number(n)) if n.as_f64().is_some() => Ok(n.as_f64().unwrap_or(0.0)),
        _ => Err(ctx.error(
            &under(e, &step.value.at),
            format!("step: expected a number, found {}", describe(&step.value)),
        )),
    }
}

fn int_step(ctx: &Ctx, e: &Entry, step: &Entry) -> Result<i64, SpecError> {
    match &step.value.kind {
        Kind::Leaf(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64().unwrap_or(0)),
        _ => Err(ctx.error(
            &under(e, &step.value.at),
            format!("step: expected an integer, found {}", describe(&step.value)),
        )),
    }
}

fn choice(
    ctx: &Ctx,
    e: &Entry,
    kind: &Entry,
    step: Option<&Entry>,
) -> Result<Result<Dist, String>, SpecError> {
    if let Some(step) = step {
        return Err(ctx.error(
            &under(e, &step.key_at),
            "step applies to uniform, log_uniform and int, not to choice",
        ));
    }
    let items = expect_list(ctx, &kind.value, "a list of values like [fcn, deeplabv3]").map_err(
        |mut err| {
            err.key = Some(e.key_at.key.to_string());
            err
        },
    )?;
    let mut values = Vec::new();
    for item in items {
        let json = serde_json::to_value(item.to_value()).map_err(|m| {
            ctx.error(
                &under(e, &item.at),
                format!(
                    "{} cannot be a searched value: {m}",
                    format_value(&item.to_value())
                ),
            )
        })?;
        values.push(json);
    }
    Ok(Dist::choice(values))
}

/// The key must be a job key that takes the distribution's values: a job built from base
/// with the key set (to each choice, or to the middle of a range) must deserialise.
fn check_key(
    ctx: &Ctx,
    base: &Node,
    path: &[Seg],
    e: &Entry,
    dist: &Dist,
) -> Result<(), SpecError> {
    let samples: Vec<(Value, Origin)> = match (&e.value.get("choice"), dist) {
        (Some(c), Dist::Choice(_)) => match &c.value.kind {
            Kind::Seq(items) => items
                .iter()
                .map(|i| (i.to_value(), under(e, &i.at)))
                .collect(),
            _ => Vec::new(),
        },
        _ => {
            let middle = serde_yaml::to_value(dist.from_unit(0.5)).unwrap_or_default();
            vec![(middle, e.key_at.clone())]
        }
    };
    let float = matches!(dist, Dist::Uniform { .. } | Dist::LogUniform { .. });
    for (value, at) in samples {
        let node = Node::from_value(&value, None, at);
        let mut tree = base.clone();
        tree.set(path, &node, &e.key_at)
            .map_err(|(at, m)| ctx.error(&at, m))?;
        if let Err((at, m)) = check_tree(&tree, ctx) {
            let mut m = dotted_hint(&m, path);
            if float && m.starts_with("invalid type: floating point") {
                m.push_str(&format!(
                    " ({} takes whole numbers: use {{int: [low, high]}})",
                    e.key
                ));
            }
            return Err(ctx.error(&at, m));
        }
    }
    Ok(())
}

/// `unknown key "optimiser" (did you mean "optimizer"?)` about one segment of a dotted
/// space key, rewritten to name the whole key: `"optimiser.lr"` / `"optimizer.lr"`.
fn dotted_hint(message: &str, path: &[Seg]) -> String {
    let parsed = message.strip_prefix("unknown key \"").and_then(|rest| {
        let (word, rest) = rest.split_once('"')?;
        let fix = rest
            .strip_prefix(" (did you mean \"")?
            .strip_suffix("\"?)")?;
        Some((word, fix))
    });
    let Some((word, fix)) = parsed.filter(|_| path.len() > 1) else {
        return message.to_string();
    };
    let Some(i) = path.iter().position(|s| *s == Seg::Key(word.to_string())) else {
        return message.to_string();
    };
    let mut fixed = path.to_vec();
    fixed[i] = Seg::Key(fix.to_string());
    let dotted = |p: &[Seg]| {
        p.iter()
            .map(|s| match s {
                Seg::Key(k) => k.clone(),
                Seg::Index(n) => n.to_string(),
            })
            .collect::<Vec<_>>()
            .join(".")
    };
    format!(
        "unknown key {:?} (did you mean {:?}?)",
        dotted(path),
        dotted(&fixed)
    )
}

/// A job section read by its `type` (`optimizer: {type: sgd, lr: ..}`) cannot be read
/// without it, so a key below one that base leaves out (`optimizer.lr`) would fail every
/// trial: base gets the default section's `type`, which changes no job (defaults are
/// part of identity either way).
fn tag_section(base: &mut Node, path: &[Seg], at: &Origin) {
    let Some(resolved) = to_config(base)
        .ok()
        .and_then(|c| serde_yaml::to_value(c).ok())
    else {
        return;
    };
    let missing = (1..path.len()).find(|&n| base.locate(&path[..n]).2 < n);
    let Some(n) = missing else {
        return;
    };
    if let Some(tag) = lookup(&resolved, &path[..n]).and_then(|v| v.get("type")) {
        let mut section = serde_yaml::Mapping::new();
        section.insert("type".into(), tag.clone());
        let node = Node::from_value(&Value::Mapping(section), None, at.clone());
        // Cannot fail: the path up to here exists or is created as maps.
        let _ = base.set(&path[..n], &node, at);
    }
}

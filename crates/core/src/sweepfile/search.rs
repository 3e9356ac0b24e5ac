//! `search:` and `stop:` -> a checked [`Policy`]. Everything a decision will rely on is
//! checked here, against the base job, so that a search that starts cannot fail later for
//! a reason the file already showed.
//!
//! ```yaml
//! search: {method: tpe, trials: 40, parallel: 4, seed: 0, metric: mDice, budget: {hours: 2.5},
//!          space: {optimizer.lr: {log_uniform: [1.0e-4, 1.0e-1]}}}
//! stop: {rule: asha, metric: mDice, fidelity: {key: iters, min: 50, max: 450, eta: 3}}
//! ```

use super::parse::{describe, expect_text, expect_uint, Sweep};
use super::space::{self, SpaceKey};
use super::tree::{Entry, Kind, Node, Origin, Seg};
use super::{Ctx, SpecError, MAX_JOBS};
use crate::job::JobConfig;
use crate::search::sampler::Method;
use crate::search::{Fidelity, Goal, Policy, RuleKind, StopSpec};
use crate::suggest::did_you_mean;
use serde_yaml::Value;

const SEARCH_KEYS: &[&str] = &[
    "method", "trials", "parallel", "seed", "metric", "goal", "budget", "space",
];
const STOP_KEYS: &[&str] = &["rule", "metric", "fidelity", "alpha"];
const FIDELITY_KEYS: &[&str] = &["key", "min", "max", "eta"];
const METHODS: &[&str] = &["random", "sobol", "tpe"];
/// The job keys a fidelity may be (it must be a count a job can be continued along).
const FIDELITY_JOB_KEYS: &[&str] = &["iters"];

/// Trials in flight when the file does not say.
pub const DEFAULT_PARALLEL: u64 = 4;
/// What is optimised when the file does not say.
pub const DEFAULT_METRIC: &str = "mDice";

/// The checked policy and what building a trial's jobs needs besides it.
pub(crate) struct Search {
    pub policy: Policy,
    pub keys: Vec<SpaceKey>,
    /// With a stopping rule: every trial job's `iters` (fidelity.max), and where it was set.
    pub iters: Option<(u64, Origin)>,
}

/// A section's entries, its keys checked against `known`.
struct Section<'a> {
    at: &'a Origin,
    entries: &'a [Entry],
}

impl<'a> Section<'a> {
    fn read(ctx: &Ctx, at: &'a Origin, node: &'a Node, known: &[&str]) -> Result<Self, SpecError> {
        let entries = match &node.kind {
            Kind::Map(entries) => entries.as_slice(),
            Kind::Leaf(Value::Null) => &[],
            _ => {
                return Err(ctx.error(
                    &node.at,
                    format!(
                        "expected a mapping with keys {}, found {}",
                        known.join(", "),
                        describe(node)
                    ),
                ))
            }
        };
        for e in entries {
            if !known.contains(&e.key.as_str()) {
                let mut hint = did_you_mean(&e.key, known.iter().copied());
                if hint.is_empty() {
                    hint = format!(", expected one of {}", known.join(", "));
                }
                return Err(ctx.error(&e.key_at, format!("unknown key {:?}{hint}", e.key)));
            }
        }
        Ok(Section { at, entries })
    }

    fn get(&self, key: &str) -> Option<&'a Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    fn require(&self, ctx: &Ctx, key: &str, what: &str) -> Result<&'a Entry, SpecError> {
        self.get(key)
            .ok_or_else(|| ctx.error(self.at, format!("missing key {key:?} ({what})")))
    }

    fn uint(&self, ctx: &Ctx, key: &str, default: u64) -> Result<(u64, &'a Origin), SpecError> {
        match self.get(key) {
            Some(e) => Ok((expect_uint(ctx, &e.value)?, &e.value.at)),
            None => Ok((default, self.at)),
        }
    }
}

fn number(ctx: &Ctx, node: &Node) -> Result<f64, SpecError> {
    match &node.kind {
        Kind::Leaf(Value::Number(n)) if n.as_f64().is_some_and(f64::is_finite) => {
            Ok(n.as_f64().unwrap_or(0.0))
        }
        _ => Err(ctx.error(
            &node.at,
            format!("expected a number, found {}", describe(node)),
        )),
    }
}

/// `search:` and `stop:` of `sw`, checked against `base` (the base job tree, data
/// included), which gains what the space keys need of it (see [`space::read`]).
pub(crate) fn read(
    sw: &Sweep,
    (search_at, body): &(Origin, Node),
    base: &mut Node,
    ctx: &Ctx,
) -> Result<Search, SpecError> {
    let s = Section::read(ctx, search_at, body, SEARCH_KEYS)?;
    let method = method(ctx, &s)?;
    let trials = trials(ctx, &s)?;
    let parallel = parallel(ctx, &s, trials.0)?;
    let (seed, _) = s.uint(ctx, "seed", 0)?;
    let metric = metric(ctx, &s)?;
    let budget_hours = s.get("budget").map(|b| budget(ctx, b)).transpose()?;
    let space_entry = s.require(
        ctx,
        "space",
        "the keys to search over, e.g. space: {optimizer.lr: {log_uniform: [1.0e-4, 1.0e-1]}}",
    )?;
    let (space, keys) = space::read(ctx, space_entry, base)?;
    let stop = match &sw.stop {
        Some((at, node)) => Some(stop(ctx, at, node, &Length::of(base, ctx)?)?),
        None => None,
    };
    let stop_metric = stop.as_ref().and_then(|s| s.metric.clone());
    let mut goal = goal(ctx, search_at, metric, stop_metric)?;
    if let Some(e) = s.get("goal") {
        goal.maximize = direction(ctx, e)?;
    }
    if let Some(st) = &stop {
        fidelity_not_searched(ctx, &st.spec.fidelity, &keys)?;
    }
    let jobs_per_trial = jobs_per_trial(sw, trials, ctx)?;
    let iters = stop
        .as_ref()
        .filter(|s| s.spec.rule != RuleKind::None)
        .map(|s| (s.spec.fidelity.max, s.max_at.clone()));
    let policy = Policy {
        method,
        trials: trials.0,
        parallel,
        seed,
        budget_hours,
        space,
        goal,
        stop: stop.map(|s| s.spec),
        jobs_per_trial,
    };
    Ok(Search {
        policy,
        keys,
        iters,
    })
}

/// `parallel:` (default 4), at most `trials` (more could never be in flight).
fn parallel(ctx: &Ctx, s: &Section, trials: u64) -> Result<u64, SpecError> {
    let (n, at) = s.uint(ctx, "parallel", DEFAULT_PARALLEL)?;
    if n == 0 {
        return Err(ctx.error(at, "0 trials in flight: the search would never start"));
    }
    Ok(n.min(trials))
}

/// The rungs set the fidelity key, so the space may not.
fn fidelity_not_searched(ctx: &Ctx, f: &Fidelity, keys: &[SpaceKey]) -> Result<(), SpecError> {
    let fidelity_key = [Seg::Key(f.key.clone())];
    match keys.iter().find(|k| k.path == fidelity_key) {
        Some(k) => Err(ctx.error(
            &k.at,
            format!(
                "{} is the fidelity of stop: (the rungs set it), so it cannot be searched too",
                k.key
            ),
        )),
        None => Ok(()),
    }
}

fn method(ctx: &Ctx, s: &Section) -> Result<Method, SpecError> {
    let e = s.require(ctx, "method", "random, sobol or tpe")?;
    let name = expect_text(ctx, &e.value)?;
    serde_json::from_value(serde_json::Value::String(name.clone())).map_err(|_| {
        ctx.error(
            &e.value.at,
            format!(
                "unknown method {name:?}, expected one of {}{}",
                METHODS.join(", "),
                did_you_mean(&name, METHODS.iter().copied())
            ),
        )
    })
}

fn trials<'a>(ctx: &Ctx, s: &Section<'a>) -> Result<(u64, &'a Origin), SpecError> {
    let e = s.require(ctx, "trials", "the most trials to run, e.g. trials: 40")?;
    let n = expect_uint(ctx, &e.value)?;
    if n == 0 {
        return Err(ctx.error(&e.value.at, "0 trials: a search needs at least 1"));
    }
    Ok((n, &e.value.at))
}

/// `metric:` as written, with where it was written.
fn metric(ctx: &Ctx, s: &Section) -> Result<Option<(String, Origin)>, SpecError> {
    s.get("metric")
        .map(|e| Ok((expect_text(ctx, &e.value)?, e.value.at.clone())))
        .transpose()
}

/// One goal: `stop.metric`, else `search.metric`, else mDice; the two may not differ.
fn goal(
    ctx: &Ctx,
    search_at: &Origin,
    search: Option<(String, Origin)>,
    stop: Option<(String, Origin)>,
) -> Result<Goal, SpecError> {
    let (key, at) = match (search, stop) {
        (Some((a, _)), Some((b, at))) if a != b => {
            return Err(ctx.error(
                &at,
                format!(
                    "{b:?} but search.metric is {a:?}: a search optimises one metric (give it in one place)"
                ),
            ))
        }
        (_, Some(m)) | (Some(m), None) => m,
        (None, None) if ctx.program.is_some() => {
            return Err(ctx.error(
                search_at,
                "metric: name the metric your program reports in its {\"metrics\": ...} line (e.g. metric: accuracy, goal: maximize)",
            ))
        }
        (None, None) => (DEFAULT_METRIC.to_string(), search_at.clone()),
    };
    Goal::parse(&key).map_err(|m| ctx.error(&at, m))
}

/// `goal: maximize | minimize` (default: by the metric's name; distances and losses are
/// minimised).
fn direction(ctx: &Ctx, e: &Entry) -> Result<bool, SpecError> {
    match expect_text(ctx, &e.value)?.as_str() {
        "maximize" | "maximise" | "max" => Ok(true),
        "minimize" | "minimise" | "min" => Ok(false),
        other => Err(ctx.error(
            &e.value.at,
            format!("{other:?}: expected maximize or minimize"),
        )),
    }
}

fn budget(ctx: &Ctx, e: &Entry) -> Result<f64, SpecError> {
    let b = Section::read(ctx, &e.key_at, &e.value, &["hours"])?;
    let hours = b.require(
        ctx,
        "hours",
        "job time after which no trial is proposed, e.g. budget: {hours: 2.5}",
    )?;
    let h = number(ctx, &hours.value)?;
    if h <= 0.0 {
        return Err(ctx.error(
            &hours.value.at,
            format!("{h} hours: the budget must be positive"),
        ));
    }
    Ok(h)
}

/// Seeds x folds; a trial's jobs are told apart by their index, so seeds must differ.
/// All trials together stay within [`MAX_JOBS`], as a grid does.
fn jobs_per_trial(sw: &Sweep, trials: (u64, &Origin), ctx: &Ctx) -> Result<u64, SpecError> {
    let seeds = sw.seeds.as_deref().unwrap_or_default();
    for (i, (seed, at)) in seeds.iter().enumerate() {
        if seeds[..i].iter().any(|(s, _)| s == seed) {
            return Err(ctx.error(at, format!("seed {seed} is listed twice")));
        }
    }
    let folds = sw.cv.as_ref().map_or(1, |cv| u64::from(cv.folds));
    let per_trial = seeds.len().max(1) as u64 * folds;
    if trials.0.saturating_mul(per_trial) > MAX_JOBS as u64 {
        return Err(ctx.error(
            trials.1,
            format!(
                "{} trials x {per_trial} jobs per trial is more than {MAX_JOBS} jobs",
                trials.0
            ),
        ));
    }
    Ok(per_trial)
}

/// `stop:` read: the spec, the metric it names, and where its values were written.
struct Stop {
    spec: StopSpec,
    metric: Option<(String, Origin)>,
    max_at: Origin,
}

/// What a stopping rule needs of the base job: its length, and whether its learning rate
/// depends on it (a paused job continues from its rung checkpoint).
struct Length {
    /// `iters` of the base job: the trainer's (with its default), or the program's parameter.
    iters: Option<u64>,
    schedule_depends_on_iters: bool,
}

impl Length {
    fn of(base: &Node, ctx: &Ctx) -> Result<Length, SpecError> {
        if ctx.program.is_some() {
            let iters = base.to_value().get("iters").and_then(|v| v.as_u64());
            return Ok(Length {
                iters,
                schedule_depends_on_iters: false,
            });
        }
        let config: JobConfig = super::expand::to_config(base).map_err(super::expand::fail(ctx))?;
        Ok(Length {
            iters: Some(config.iters as u64),
            schedule_depends_on_iters: config.schedule_depends_on_iters(),
        })
    }
}

fn stop(ctx: &Ctx, at: &Origin, node: &Node, base: &Length) -> Result<Stop, SpecError> {
    let s = Section::read(ctx, at, node, STOP_KEYS)?;
    let rule_entry = s.require(ctx, "rule", "none, median, asha or paired")?;
    let rule = rule(ctx, rule_entry)?;
    let metric = match s.get("metric") {
        Some(e) => Some((expect_text(ctx, &e.value)?, e.value.at.clone())),
        None => None,
    };
    let (fidelity, max_at) = fidelity(ctx, &s, rule, base)?;
    let alpha = alpha(ctx, &s, rule)?;
    if rule != RuleKind::None && base.schedule_depends_on_iters {
        return Err(ctx.error(
            &rule_entry.value.at,
            format!(
                "promotion continues a paused job from its rung checkpoint, so the learning-rate schedule must not depend on iters: set base.schedule.horizon: {} (= fidelity.max) or schedule.type: constant",
                fidelity.max
            ),
        ));
    }
    Ok(Stop {
        spec: StopSpec {
            rule,
            fidelity,
            alpha,
        },
        metric,
        max_at,
    })
}

fn rule(ctx: &Ctx, e: &Entry) -> Result<RuleKind, SpecError> {
    let name = expect_text(ctx, &e.value)?;
    serde_json::from_value(serde_json::Value::String(name.clone())).map_err(|_| {
        ctx.error(
            &e.value.at,
            format!(
                "unknown rule {name:?}, expected one of {}{}",
                RuleKind::NAMES.join(", "),
                did_you_mean(&name, RuleKind::NAMES)
            ),
        )
    })
}

fn alpha(ctx: &Ctx, s: &Section, rule: RuleKind) -> Result<f64, SpecError> {
    const DEFAULT: f64 = 0.05;
    let Some(e) = s.get("alpha") else {
        return Ok(DEFAULT);
    };
    if rule != RuleKind::Paired {
        return Err(ctx.error(
            &e.key_at,
            format!(
                "alpha applies to the paired rule only, not {}",
                rule.as_str()
            ),
        ));
    }
    let a = number(ctx, &e.value)?;
    if !(a > 0.0 && a < 1.0) {
        return Err(ctx.error(&e.value.at, format!("{a} is not between 0 and 1")));
    }
    Ok(a)
}

/// `fidelity: {key: iters, min, max, eta}`; `max` defaults to base's iters, and with rule
/// `none` (no rungs) the whole mapping may be left out.
fn fidelity(
    ctx: &Ctx,
    stop: &Section,
    rule: RuleKind,
    base: &Length,
) -> Result<(Fidelity, Origin), SpecError> {
    let example = "the rungs, e.g. fidelity: {key: iters, min: 50, max: 450, eta: 3}";
    let entry = match stop.get("fidelity") {
        Some(e) => e,
        None if rule == RuleKind::None => {
            let Some(iters) = base.iters else {
                return Err(ctx.error(
                    stop.at,
                    format!("missing key \"fidelity\" ({example}; base has no iters)"),
                ));
            };
            let f = Fidelity {
                key: "iters".into(),
                min: iters,
                max: iters,
                eta: 3,
            };
            return Ok((f, stop.at.clone()));
        }
        None => return Err(ctx.error(stop.at, format!("missing key \"fidelity\" ({example})"))),
    };
    let f = Section::read(ctx, &entry.key_at, &entry.value, FIDELITY_KEYS)?;
    let key = fidelity_key(ctx, &f)?;
    let (max, max_at) = match (f.get("max"), base.iters) {
        (None, None) => {
            return Err(ctx.error(
                f.at,
                format!(
                    "missing key \"max\" ({example}; base has no iters parameter to take it from)"
                ),
            ))
        }
        (_, iters) => f.uint(ctx, "max", iters.unwrap_or(0))?,
    };
    let (min, min_at) = match f.get("min") {
        None if rule != RuleKind::None => {
            return Err(ctx.error(f.at, format!("missing key \"min\" ({example})")))
        }
        _ => f.uint(ctx, "min", max)?,
    };
    let (eta, eta_at) = f.uint(ctx, "eta", 3)?;
    if min == 0 {
        return Err(ctx.error(min_at, "0: the first rung must be at least 1 iteration"));
    }
    if min > max {
        let whence = if f.get("max").is_some() {
            ""
        } else {
            " (base iters)"
        };
        return Err(ctx.error(min_at, format!("{min} is above max {max}{whence}")));
    }
    if eta < 2 {
        return Err(ctx.error(
            eta_at,
            format!("{eta}: each rung must be at least twice the one before (eta >= 2)"),
        ));
    }
    Ok((Fidelity { key, min, max, eta }, max_at.clone()))
}

fn fidelity_key(ctx: &Ctx, f: &Section) -> Result<String, SpecError> {
    let Some(e) = f.get("key") else {
        return Ok(FIDELITY_JOB_KEYS[0].to_string());
    };
    let key = match &e.value.kind {
        Kind::Leaf(Value::String(k)) => k.clone(),
        _ => super::format_value(&e.value.to_value()),
    };
    if FIDELITY_JOB_KEYS.contains(&key.as_str()) {
        return Ok(key);
    }
    Err(ctx.error(
        &e.value.at,
        format!(
            "{key:?}: the fidelity must be a numeric job key: {}{}",
            FIDELITY_JOB_KEYS.join(", "),
            did_you_mean(&key, FIDELITY_JOB_KEYS.iter().copied())
        ),
    ))
}

//! `sweep plan`: the jobs a sweep file expands to, as a table or JSON; for an adaptive
//! search, its stages and what the search may cost at worst.

use crate::job::SplitConfig;
use crate::search::{Policy, RuleKind};
use crate::sweepfile::{prefix, PlannedJob, SweepSpec};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use std::fmt::Write;

pub fn plan_table(spec: &SweepSpec, plan: &[PlannedJob]) -> String {
    if spec.search.is_none() {
        return jobs_table(spec, plan);
    }
    let head = format!(
        "sweep {} ({}): adaptive search",
        spec.name,
        spec.path.display()
    );
    if plan.is_empty() {
        return format!("{head}\n{}", search_plan(spec));
    }
    format!(
        "{head} after {} stage job(s)\n{}\n{}",
        plan.len(),
        jobs_table(spec, plan),
        search_plan(spec)
    )
}

fn jobs_table(spec: &SweepSpec, plan: &[PlannedJob]) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    // Columns: the keys the grid / include / seeds vary (`seed` has its own column). A stage
    // varies its own keys, which its label already spells out, so columns come from the jobs
    // that are not stages and each row looks its values up by key.
    let mut varied: Vec<&str> = Vec::new();
    for p in plan.iter().filter(|p| p.stage.is_none()) {
        for (k, _) in &p.varied {
            if k != "seed" && !varied.contains(&k.as_str()) {
                varied.push(k);
            }
        }
    }
    let mut header = vec!["#", "job", "Model", "seed"];
    header.extend(varied.iter().copied());
    header.push("after");
    table.set_header(header);
    for (i, p) in plan.iter().enumerate() {
        let mut row = vec![
            (i + 1).to_string(),
            p.hash.clone(),
            p.label.clone(),
            p.config.seed().to_string(),
        ];
        for key in &varied {
            let value = p.varied.iter().find(|(k, _)| k == key).map(|(_, v)| v);
            row.push(match (&p.stage, value) {
                (None, Some(v)) => v.clone(),
                _ => String::new(),
            });
        }
        row.push(after(plan, p));
        table.add_row(row);
    }
    format!(
        "sweep {} ({}): {} job(s){}\n{table}{}{}",
        spec.name,
        spec.path.display(),
        plan.len(),
        cv_note(plan),
        prefix_note(plan),
        command_note(plan)
    )
}

/// For a command sweep: what job #1 runs, and where.
fn command_note(plan: &[PlannedJob]) -> String {
    let Some(c) = plan.first().and_then(|p| p.config.command()) else {
        return String::new();
    };
    format!(
        "\njob #1 runs `{}` in {} (each job its own parameters; docs/job-protocol.md)",
        c.argv().join(" "),
        c.workdir.display()
    )
}

/// The job this one waits for: a stage by name, or the shorter run it continues by row.
fn after(plan: &[PlannedJob], p: &PlannedJob) -> String {
    let Some(h) = &p.depends_on else {
        return String::new();
    };
    let Some((i, q)) = plan.iter().enumerate().find(|(_, q)| &q.hash == h) else {
        return h.clone();
    };
    match (&q.stage, p.continues) {
        (_, true) => format!("continues #{}", i + 1),
        (Some(stage), false) => stage.clone(),
        (None, false) => format!("#{}", i + 1),
    }
}

/// What shared prefixes save, and which rows that differ only in `iters` train separately
/// and why; empty when no rows differ only in `iters`.
fn prefix_note(plan: &[PlannedJob]) -> String {
    let groups = prefix::groups(plan);
    if groups.is_empty() {
        return String::new();
    }
    let rows = |g: &prefix::PrefixGroup| {
        let rows: Vec<String> = g
            .jobs
            .iter()
            .map(|&i| format!("#{} ({} it)", i + 1, plan[i].config.iters().unwrap_or(0)))
            .collect();
        rows.join(" -> ")
    };
    let (shared, separate): (Vec<_>, Vec<_>) = groups.iter().partition(|g| g.separate.is_none());
    let mut out = String::new();
    if !shared.is_empty() {
        let trained: usize = shared.iter().map(|g| g.trained(plan)).sum();
        let apart: usize = shared.iter().map(|g| g.separately(plan)).sum();
        let _ = write!(
            out,
            "\nshared prefixes: {} group(s) of rows that differ only in iters train {trained} \
             iterations instead of {apart}; each longer row continues the next shorter one \
             from its final checkpoint (same config and schedule, so bit-identical to a \
             separate run):",
            shared.len()
        );
        for g in &shared {
            let _ = write!(out, "\n  {}", rows(g));
        }
    }
    let mut reasons: Vec<&str> = separate
        .iter()
        .filter_map(|g| g.separate.as_deref())
        .collect();
    reasons.dedup();
    for why in reasons {
        let _ = write!(
            out,
            "\ntrained separately, though they differ only in iters ({why}):"
        );
        for g in separate
            .iter()
            .filter(|g| g.separate.as_deref() == Some(why))
        {
            let _ = write!(out, "\n  {}", rows(g));
        }
    }
    out
}

/// `; 5-fold cross-validation by subject (...)` when the jobs are folds (`cv:`), else nothing.
fn cv_note(plan: &[PlannedJob]) -> String {
    let cv = plan
        .iter()
        .find_map(|p| match p.config.train()?.data.split {
            SplitConfig::Fold { folds, by, .. } if p.stage.is_none() => Some((folds, by)),
            _ => None,
        });
    cv.map_or_else(String::new, |(n, by)| {
        format!(
            "; {n}-fold cross-validation by {by} (fold k/{n} validates on the k-th of {n} \
             contiguous groups of the data set's {by}s, in order, and trains on the others)"
        )
    })
}

/// What a search will do and cost at worst: method, goal, space, rule and rungs, jobs per
/// trial, and the iterations of every trial running to the end; for ASHA also the
/// iterations expected when each rung keeps 1/eta. Empty for a grid sweep.
pub fn search_plan(spec: &SweepSpec) -> String {
    let Some(p) = &spec.search else {
        return String::new();
    };
    let mut out = String::new();
    let direction = if p.goal.maximize {
        "maximised"
    } else {
        "minimised"
    };
    let method = serde_json::to_value(p.method).ok();
    let method = method.as_ref().and_then(|m| m.as_str()).unwrap_or("?");
    let _ = writeln!(
        out,
        "search: {method}, {} trial(s), {} in parallel, seed {}; goal {} ({direction})",
        p.trials,
        p.parallel,
        p.seed,
        p.goal.key()
    );
    if let Some(h) = p.budget_hours {
        let _ = writeln!(out, "budget: no new trial after {h} h of job time");
    }
    let _ = writeln!(out, "space:");
    let width = p
        .space
        .params
        .iter()
        .map(|q| q.key.len())
        .max()
        .unwrap_or(0);
    for q in &p.space.params {
        let _ = writeln!(out, "  {:width$}  {}", q.key, q.dist.describe());
    }
    let _ = writeln!(out, "{}", stop_line(p));
    let jpt = p.jobs_per_trial;
    let _ = writeln!(out, "jobs per trial: {jpt} (one per seed and fold)");
    let jobs = p.trials * jpt;
    let iters = trial_iters(spec, p);
    let _ = match iters {
        Some(it) => writeln!(
            out,
            "worst case: {jobs} job(s), {} training iterations (every trial to {it})",
            jobs * it
        ),
        None => writeln!(out, "worst case: {jobs} job(s)"),
    };
    if let Some(expected) = asha_expected(p) {
        let eta = p.stop.as_ref().map_or(0, |s| s.fidelity.eta);
        let _ = writeln!(
            out,
            "expected with asha (each rung keeps 1/{eta}): {expected:.0} training iterations"
        );
    }
    out.trim_end().to_string()
}

/// `stop: asha on iters, rungs 50, 150, 450 (eta 3)`, or that every trial runs to its end.
fn stop_line(p: &Policy) -> String {
    let Some(stop) = p.stop.as_ref().filter(|s| s.rule != RuleKind::None) else {
        return "stop: none (every trial runs to its end)".into();
    };
    let rungs: Vec<String> = stop.fidelity.rungs().iter().map(u64::to_string).collect();
    let alpha = if stop.rule == RuleKind::Paired {
        format!(", alpha {}", stop.alpha)
    } else {
        String::new()
    };
    format!(
        "stop: {} on {}, rungs {} (eta {}{alpha})",
        stop.rule.as_str(),
        stop.fidelity.key,
        rungs.join(", "),
        stop.fidelity.eta
    )
}

/// Iterations of one trial job run to its end: `fidelity.max` under a stopping rule, else
/// the job's `iters` (unknown when the space varies it).
fn trial_iters(spec: &SweepSpec, p: &Policy) -> Option<u64> {
    if let Some(stop) = p.stop.as_ref().filter(|s| s.rule != RuleKind::None) {
        return Some(stop.fidelity.max);
    }
    if p.space.params.iter().any(|q| q.key == "iters") {
        return None;
    }
    let middle: Vec<serde_json::Value> = p
        .space
        .params
        .iter()
        .map(|q| q.dist.from_unit(0.5))
        .collect();
    let jobs = spec.trial_jobs(0, &middle).ok()?;
    jobs.first()?.config.iters().map(|n| n as u64)
}

/// ASHA's expected iterations if each rung keeps 1/eta of the trials that reach it:
/// the sum over rungs k of trials x jobs per trial x (r_k - r_(k-1)) / eta^k.
pub fn asha_expected(p: &Policy) -> Option<f64> {
    let stop = p.stop.as_ref().filter(|s| s.rule == RuleKind::Asha)?;
    let n = (p.trials * p.jobs_per_trial) as f64;
    let eta = stop.fidelity.eta as f64;
    let mut previous = 0;
    let mut total = 0.0;
    for (k, r) in stop.fidelity.rungs().into_iter().enumerate() {
        total += n * (r - previous) as f64 / eta.powi(k as i32);
        previous = r;
    }
    Some(total)
}

pub fn plan_json(spec: &SweepSpec, plan: &[PlannedJob]) -> serde_json::Result<String> {
    let jobs: Vec<serde_json::Value> = plan
        .iter()
        .map(|p| {
            serde_json::json!({
                "hash": p.hash,
                "label": p.label,
                "stage": p.stage,
                "depends_on": p.depends_on,
                "continues": p.continues,
                "varied": p.varied.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
                "config": p.config,
            })
        })
        .collect();
    let mut out = serde_json::json!({ "sweep": spec.name, "file": spec.path, "jobs": jobs });
    // A grid sweep's JSON stays as it was: the key is there only for a search.
    if let (Some(policy), Some(map)) = (&spec.search, out.as_object_mut()) {
        map.insert("search".into(), serde_json::to_value(policy)?);
    }
    serde_json::to_string_pretty(&out)
}

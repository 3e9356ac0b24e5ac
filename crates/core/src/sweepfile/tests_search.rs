//! `search:` and `stop:`: the policy they parse to, the errors they give, and the jobs of
//! a trial.

use super::*;
use crate::search::sampler::Method;
use crate::search::space::{Dist, Param, Space};
use crate::search::{Fidelity, Goal, RuleKind, StopSpec};
use serde_json::json;

const FULL: &str = "name: lr-search
data: {dataset: dme, root: data/dme, split: study}
base: {model: {head: fcn}, crop: 256, schedule: {horizon: 450}, loss: [{type: ce, class_weight: [1, 1]}]}
seeds: [0, 1]
search:
  method: tpe
  trials: 40
  parallel: 4
  seed: 0
  metric: mDice
  budget: {hours: 2.5}
  space:
    optimizer.lr: {log_uniform: [1.0e-4, 1.0e-1]}
    loss.0.class_weight.1: {uniform: [10, 100], step: 5}
    model.head: {choice: [fcn, deeplabv3, pspnet]}
    crop: {int: [128, 256], step: 64}
stop:
  rule: asha
  metric: mDice
  fidelity: {key: iters, min: 50, max: 450, eta: 3}
";

/// A search of one key on a plain base, followed by `rest`.
fn small(rest: &str) -> String {
    format!(
        "name: t\nbase: {{schedule: {{horizon: 100}}}}\nsearch:\n  method: random\n  trials: 3\n  space:\n    optimizer.lr: {{uniform: [0.01, 0.1]}}\n{rest}"
    )
}

fn spec(text: &str) -> SweepSpec {
    parse(Path::new("sweeps/t.yaml"), text, &[]).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> String {
    match parse(Path::new("sweeps/t.yaml"), text, &[]) {
        Ok(_) => panic!("parsed:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn policy(text: &str) -> Policy {
    spec(text).search.expect("a search")
}

#[test]
fn a_full_search_file_parses_to_its_policy() {
    let s = spec(FULL);
    let param = |key: &str, dist: Result<Dist, String>| Param {
        key: key.into(),
        dist: dist.unwrap(),
    };
    let want = Policy {
        method: Method::Tpe,
        trials: 40,
        parallel: 4,
        seed: 0,
        budget_hours: Some(2.5),
        space: Space {
            params: vec![
                param("optimizer.lr", Dist::log_uniform(1e-4, 1e-1, None)),
                param(
                    "loss.0.class_weight.1",
                    Dist::uniform(10.0, 100.0, Some(5.0)),
                ),
                param(
                    "model.head",
                    Dist::choice(vec![json!("fcn"), json!("deeplabv3"), json!("pspnet")]),
                ),
                param("crop", Dist::int(128, 256, Some(64))),
            ],
        },
        goal: Goal::parse("mDice").unwrap(),
        stop: Some(StopSpec {
            rule: RuleKind::Asha,
            fidelity: Fidelity {
                key: "iters".into(),
                min: 50,
                max: 450,
                eta: 3,
            },
            alpha: 0.05,
        }),
        jobs_per_trial: 2,
    };
    assert_eq!(s.search.as_ref(), Some(&want));
    assert_eq!(want.rungs(), [50, 150, 450]);
    // No stages: nothing is planned up front.
    assert!(s.plan().unwrap().is_empty());
}

#[test]
fn defaults_fill_in_and_parallel_is_capped_at_trials() {
    let p = policy(&small(""));
    assert_eq!(
        (p.method, p.trials, p.parallel, p.seed),
        (Method::Random, 3, 3, 0)
    );
    assert_eq!(p.goal, Goal::parse("mDice").unwrap());
    assert_eq!(
        (p.budget_hours, &p.stop, p.jobs_per_trial),
        (None, &None, 1)
    );
    // stop.metric defaults to search.metric; fidelity.max to base iters; eta to 3.
    let text = small("stop: {rule: median, fidelity: {min: 10}}\n")
        .replace("method: random", "method: sobol\n  metric: HD95.1");
    let p = policy(&text);
    assert_eq!(
        (p.goal.key(), p.goal.maximize),
        ("HD95.1".to_string(), false)
    );
    let stop = p.stop.unwrap();
    assert_eq!(
        stop.fidelity,
        Fidelity {
            key: "iters".into(),
            min: 10,
            max: 200,
            eta: 3
        }
    );
    assert_eq!(stop.rule, RuleKind::Median);
    // rule none needs no fidelity and no schedule horizon
    let p = policy(&small("stop: {rule: none, metric: mIoU}\n").replace("{horizon: 100}", "{}"));
    assert_eq!(p.goal.key(), "mIoU");
    assert_eq!(p.rungs(), Vec::<u64>::new());
}

#[test]
fn unknown_keys_suggest_the_known_ones() {
    assert_eq!(
        err(&small("").replace("trials: 3", "trials: 3\n  paralel: 2")),
        r#"sweeps/t.yaml:6:3: search.paralel: unknown key "paralel" (did you mean "parallel"?)"#
    );
    assert_eq!(
        err(&small("stop: {rule: asha, fidelty: {min: 10}}\n")),
        r#"sweeps/t.yaml:8:20: stop.fidelty: unknown key "fidelty" (did you mean "fidelity"?)"#
    );
    assert_eq!(
        err(&small("stop: {rule: asha, fidelity: {min: 10, etta: 2}}\n")),
        r#"sweeps/t.yaml:8:40: stop.fidelity.etta: unknown key "etta" (did you mean "eta"?)"#
    );
    assert!(
        err(&small("").replace("trials: 3", "trials: 3\n  budget: {hour: 2}")).contains(
            r#"sweeps/t.yaml:6:12: search.budget.hour: unknown key "hour" (did you mean "hours"?)"#
        )
    );
    assert_eq!(
        err(&small("stop: {rule: ash, fidelity: {min: 10}}\n")),
        r#"sweeps/t.yaml:8:14: stop.rule: unknown rule "ash", expected one of none, median, asha, paired (did you mean "asha"?)"#
    );
    assert_eq!(
        err(&small("").replace("method: random", "method: tpee")),
        r#"sweeps/t.yaml:4:11: search.method: unknown method "tpee", expected one of random, sobol, tpe (did you mean "tpe"?)"#
    );
}

#[test]
fn space_entries_need_exactly_one_known_distribution() {
    let with = |entry: &str| err(&small("").replace("{uniform: [0.01, 0.1]}", entry));
    assert_eq!(
        with("{}"),
        "sweeps/t.yaml:7:5: search.space.optimizer.lr: no distribution: give one of {uniform: [low, high]}, {log_uniform: [low, high]}, {int: [low, high]} or {choice: [values]}"
    );
    assert_eq!(
        with("{uniform: [0.01, 0.1], int: [1, 2]}"),
        "sweeps/t.yaml:7:42: search.space.optimizer.lr: two distributions (uniform and int): give one"
    );
    assert_eq!(
        with("{loguniform: [0.01, 0.1]}"),
        r#"sweeps/t.yaml:7:20: search.space.optimizer.lr: unknown distribution "loguniform" (did you mean "log_uniform"?)"#
    );
    assert_eq!(
        with("[0.01, 0.1]"),
        "sweeps/t.yaml:7:19: search.space.optimizer.lr: expected a distribution, found a list: write {choice: [0.01, 0.1]} to pick among values"
    );
    assert!(
        with("{choice: [a, b], step: 1}").contains("step applies to uniform, log_uniform and int")
    );
    assert!(
        with("{uniform: [0.01]}").contains("uniform takes [low, high], two numbers; found [0.01]")
    );
}

#[test]
fn ranges_are_checked_where_they_are_written() {
    let with = |entry: &str| err(&small("").replace("{uniform: [0.01, 0.1]}", entry));
    let empty = with("{uniform: [0.1, 0.01]}");
    assert!(
        empty.starts_with("sweeps/t.yaml:7:29: search.space.optimizer.lr: "),
        "{empty}"
    );
    let negative = with("{log_uniform: [-4, -1]}");
    assert!(
        negative.starts_with("sweeps/t.yaml:7:33: search.space.optimizer.lr: "),
        "{negative}"
    );
    assert!(negative.contains("log_uniform"), "{negative}");
    let zero = with("{log_uniform: [0, 0.1]}");
    assert!(
        zero.starts_with("sweeps/t.yaml:7:33: search.space.optimizer.lr: "),
        "{zero}"
    );
    let ints = err(&small("").replace(
        "optimizer.lr: {uniform: [0.01, 0.1]}",
        "crop: {int: [256, 128]}",
    ));
    assert!(
        ints.starts_with("sweeps/t.yaml:7:17: search.space.crop: "),
        "{ints}"
    );
}

#[test]
fn space_keys_must_be_job_keys_of_the_right_type() {
    let with = |entry: &str| err(&small("").replace("optimizer.lr: {uniform: [0.01, 0.1]}", entry));
    assert_eq!(
        with("optimiser.lr: {log_uniform: [1.0e-4, 1.0e-1]}"),
        r#"sweeps/t.yaml:7:5: search.space.optimiser.lr: unknown key "optimiser.lr" (did you mean "optimizer.lr"?)"#
    );
    assert_eq!(
        with("crop: {uniform: [128, 256]}"),
        "sweeps/t.yaml:7:5: search.space.crop: invalid type: floating point `192.0`, expected usize (crop takes whole numbers: use {int: [low, high]})"
    );
    assert_eq!(
        with("model.head: {choice: [fcn, deeplab]}"),
        r#"sweeps/t.yaml:7:32: search.space.model.head: unknown variant "deeplab", expected one of fcn, deeplabv3, pspnet (did you mean "deeplabv3"?)"#
    );
    assert!(with("seed: {int: [0, 3]}").contains("search.space.seed: the seed is not searched"));
}

#[test]
fn search_excludes_grid_include_and_stop_needs_search() {
    assert_eq!(
        err(&small("grid: {crop: [256, 320]}\n")),
        "sweeps/t.yaml:8:8: grid.crop: grid does not combine with search: list grid keys in search.space as {choice: [...]}"
    );
    let both = err(&small("grid: {batch: [2], optimizer.lr: [0.1]}\n"));
    assert!(
        both.starts_with(
            "sweeps/t.yaml:8:20: grid.optimizer.lr: optimizer.lr is also a search.space key"
        ),
        "{both}"
    );
    assert!(err(&small("include: [{crop: 320}]\n")).contains(
        "include does not combine with search: list grid keys in search.space as {choice: [...]}"
    ));
    assert_eq!(
        err("name: t\nstop: {rule: asha}\n"),
        "sweeps/t.yaml:2:1: stop: needs search: stopping rules act on the trials of an adaptive search; add a search: section or drop stop:"
    );
}

#[test]
fn the_fidelity_is_iters_with_sane_rungs() {
    let stop = |f: &str| err(&small(&format!("stop: {{rule: asha, fidelity: {f}}}\n")));
    assert_eq!(
        stop("{key: epochs, min: 10}"),
        r#"sweeps/t.yaml:8:36: stop.fidelity.key: "epochs": the fidelity must be a numeric job key: iters"#
    );
    assert_eq!(
        stop("{min: 300, max: 200}"),
        "sweeps/t.yaml:8:36: stop.fidelity.min: 300 is above max 200"
    );
    assert_eq!(
        stop("{min: 300}"),
        "sweeps/t.yaml:8:36: stop.fidelity.min: 300 is above max 200 (base iters)"
    );
    assert!(stop("{min: 10, eta: 1}")
        .contains("stop.fidelity.eta: 1: each rung must be at least twice"));
    assert!(stop("{min: 0}")
        .contains("stop.fidelity.min: 0: the first rung must be at least 1 iteration"));
    assert!(stop("{max: 100}").contains("stop.fidelity: missing key \"min\""));
    let searched = err(&small("stop: {rule: asha, fidelity: {min: 10}}\n").replace(
        "optimizer.lr: {uniform: [0.01, 0.1]}",
        "iters: {int: [100, 200]}",
    ));
    assert!(
        searched
            .starts_with("sweeps/t.yaml:7:5: search.space.iters: iters is the fidelity of stop:"),
        "{searched}"
    );
}

#[test]
fn promotion_needs_a_schedule_that_ignores_iters() {
    let text = small("stop:\n  rule: asha\n  fidelity: {min: 50, max: 450}\n")
        .replace("{horizon: 100}", "{}");
    assert_eq!(
        err(&text),
        "sweeps/t.yaml:9:9: stop.rule: promotion continues a paused job from its rung checkpoint, so the learning-rate schedule must not depend on iters: set base.schedule.horizon: 450 (= fidelity.max) or schedule.type: constant"
    );
    let constant = text.replace("schedule: {}", "schedule: {type: constant}");
    assert_eq!(policy(&constant).rungs(), [50, 150, 450]);
}

#[test]
fn trials_metrics_and_alpha_are_checked() {
    assert_eq!(
        err(&small("").replace("trials: 3", "trials: 0")),
        "sweeps/t.yaml:5:11: search.trials: 0 trials: a search needs at least 1"
    );
    assert!(
        err(&small("").replace("trials: 3", "trials: 3\n  metric: Dice.x"))
            .starts_with("sweeps/t.yaml:6:11: search.metric: \"Dice.x\": expected a metric")
    );
    assert!(err(
        &small("stop: {rule: asha, metric: mIoU, fidelity: {min: 10}}\n")
            .replace("trials: 3", "trials: 3\n  metric: mDice")
    )
    .contains("stop.metric: \"mIoU\" but search.metric is \"mDice\""));
    assert!(err(&small(
        "stop: {rule: asha, alpha: 0.1, fidelity: {min: 10}}\n"
    ))
    .contains("stop.alpha: alpha applies to the paired rule only, not asha"));
    let p = policy(&small(
        "stop: {rule: paired, alpha: 0.1, fidelity: {min: 10}}\n",
    ));
    assert_eq!(p.stop.unwrap().alpha, 0.1);
    assert!(err(&small("").replace("  method: random\n", ""))
        .contains("search: missing key \"method\""));
    assert!(err(&(small("") + "seeds: [1, 1]\n")).contains("seeds[1]: seed 1 is listed twice"));
}

fn full_params() -> Vec<serde_json::Value> {
    vec![json!(0.001), json!(35.0), json!("deeplabv3"), json!(192)]
}

#[test]
fn trial_jobs_set_the_values_seed_major_with_iters_at_max() {
    let s = spec(&FULL.replace("seeds: [0, 1]", "seeds: [0, 1]\ncv: {folds: 2}"));
    assert_eq!(s.search.as_ref().unwrap().jobs_per_trial, 4);
    let jobs = s.trial_jobs(7, &full_params()).unwrap();
    let order: Vec<(u64, String)> = jobs
        .iter()
        .map(|j| {
            (
                j.config.train().unwrap().seed,
                j.config.train().unwrap().data.split.fold_label().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            (0, "fold 1/2"),
            (0, "fold 2/2"),
            (1, "fold 1/2"),
            (1, "fold 2/2")
        ]
        .map(|(s, f)| (s, f.to_string()))
    );
    for j in &jobs {
        assert_eq!(j.config.train().unwrap().optimizer.lr(), 0.001);
        let weights = j.config.train().unwrap().loss.terms()[0]
            .class_weight
            .clone()
            .unwrap();
        assert_eq!(weights, [1.0, 35.0]);
        assert_eq!(
            j.config.train().unwrap().model.head,
            crate::job::Head::Deeplabv3
        );
        assert_eq!(
            (
                j.config.train().unwrap().crop,
                j.config.train().unwrap().iters
            ),
            (192, 450)
        );
        assert_eq!(j.depends_on, None);
    }
    let hashes: std::collections::HashSet<_> = jobs.iter().map(|j| &j.hash).collect();
    assert_eq!(hashes.len(), 4);
    assert_eq!(
        jobs[1].label,
        "UNet + DeepLabV3, crop 192, 450 it, ce, optimizer.lr=0.001, loss.0.class_weight.1=35, trial 7, fold 2/2"
    );
    let varied: Vec<(&str, &str)> = jobs[3]
        .varied
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        varied,
        [
            ("optimizer.lr", "0.001"),
            ("loss.0.class_weight.1", "35"),
            ("model.head", "deeplabv3"),
            ("crop", "192"),
            ("seed", "1"),
            ("fold", "2/2")
        ]
    );
    // The same values are the same jobs, whichever trial proposes them.
    let again = s.trial_jobs(8, &full_params()).unwrap();
    let same: Vec<_> = again.iter().map(|j| &j.hash).collect();
    assert_eq!(same, jobs.iter().map(|j| &j.hash).collect::<Vec<_>>());
    let mut other = full_params();
    other[0] = json!(0.002);
    assert_ne!(s.trial_jobs(7, &other).unwrap()[0].hash, jobs[0].hash);
}

#[test]
fn without_a_stopping_rule_iters_stays_and_one_job_per_trial() {
    let s = spec(&small(""));
    let jobs = s.trial_jobs(0, &[json!(0.05)]).unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        (
            jobs[0].config.train().unwrap().iters,
            jobs[0].config.train().unwrap().optimizer.lr()
        ),
        (200, 0.05)
    );
    assert_eq!(
        jobs[0].label,
        "UNet + FCN, crop 256, 200 it, ce, optimizer.lr=0.05, trial 0"
    );
}

#[test]
fn an_invalid_trial_is_an_error_naming_key_and_value() {
    let s = spec(&FULL.replace("step: 64", "step: 8"));
    let e = s
        .trial_jobs(3, &[json!(0.001), json!(35.0), json!("fcn"), json!(200)])
        .unwrap_err();
    assert!(
        e.contains("search.space.crop: 200 is not a positive multiple of 16"),
        "{e}"
    );
    assert!(e.contains("crop=200"), "{e}");
    let e = s.trial_jobs(3, &[json!(0.001)]).unwrap_err();
    assert!(
        e.contains("trial 3 has 1 values for the 4 keys of the space"),
        "{e}"
    );
    assert!(spec("name: t\n").trial_jobs(0, &[]).is_err());
}

#[test]
fn trials_start_from_stages_and_the_plan_lists_only_stages() {
    let text = small("stages: {pre: {iters: 50}}\n")
        .replace("{horizon: 100}", "{horizon: 100}, init: {from: pre}");
    let s = spec(&text);
    let plan = s.plan().unwrap();
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].stage.as_deref(), Some("pre"));
    let jobs = s.trial_jobs(0, &[json!(0.05)]).unwrap();
    assert_eq!(jobs[0].depends_on.as_ref(), Some(&plan[0].hash));
    // A base that cannot work fails the file, not every trial.
    let missing = err(&text.replace("from: pre", "from: pree"));
    assert!(
        missing.contains("no stage named \"pree\" (did you mean \"pre\"?)"),
        "{missing}"
    );
}

#[test]
fn the_effective_yaml_recreates_policy_and_trials() {
    let sets = vec!["search.space.crop={choice: [128, 192]}".to_string()];
    let s = parse(Path::new("sweeps/t.yaml"), FULL, &sets).unwrap_or_else(|e| panic!("{e}"));
    let p = s.search.clone().unwrap();
    assert_eq!(
        p.space.params[3].dist,
        Dist::choice(vec![json!(128), json!(192)]).unwrap()
    );
    let again = parse(Path::new("sweeps/t.yaml"), &s.effective_yaml(), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.search, Some(p));
    let params = full_params();
    assert_eq!(again.trial_jobs(2, &params), s.trial_jobs(2, &params));
}

#[test]
fn plan_describes_the_search_and_its_cost() {
    let s = spec(FULL);
    let text = crate::report::plan_table(&s, &s.plan().unwrap());
    for want in [
        "sweep lr-search (sweeps/t.yaml): adaptive search",
        "search: tpe, 40 trial(s), 4 in parallel, seed 0; goal mDice (maximised)",
        "budget: no new trial after 2.5 h of job time",
        "  optimizer.lr           log_uniform [0.0001, 0.1]",
        "  crop                   int [128, 256] step 64",
        "stop: asha on iters, rungs 50, 150, 450 (eta 3)",
        "jobs per trial: 2",
        "worst case: 80 job(s), 36000 training iterations (every trial to 450)",
        // 80 x (50 + 100/3 + 300/9)
        "expected with asha (each rung keeps 1/3): 9333 training iterations",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&crate::report::plan_json(&s, &[]).unwrap()).unwrap();
    assert_eq!(json["search"]["trials"], 40);
    let grid = spec("name: t\n");
    let json = crate::report::plan_json(&grid, &grid.plan().unwrap()).unwrap();
    assert!(!json.contains("search"), "{json}");
    assert_eq!(crate::report::plan::search_plan(&grid), "");
}

#[test]
fn set_replaces_a_distribution_and_adds_keys() {
    let sets: Vec<String> = [
        "search.trials=10",
        "search.space={optimizer.lr: {choice: [0.01, 0.1]}, crop: {int: [128, 256], step: 128}}",
    ]
    .map(String::from)
    .to_vec();
    let s = parse(Path::new("sweeps/t.yaml"), &small(""), &sets).unwrap_or_else(|e| panic!("{e}"));
    let p = s.search.unwrap();
    assert_eq!(p.trials, 10);
    let keys: Vec<(&str, String)> = p
        .space
        .params
        .iter()
        .map(|q| (q.key.as_str(), q.dist.describe()))
        .collect();
    assert_eq!(
        keys,
        [
            ("optimizer.lr", "choice [0.01, 0.1]".to_string()),
            ("crop", "int [128, 256] step 128".to_string())
        ]
    );
    let e = parse(
        Path::new("sweeps/t.yaml"),
        &small(""),
        &["search.space.crop={int: [1]}".into()],
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "--set search.space.crop={int: [1]}: int takes [low, high], two integers; found [1]"
    );
}

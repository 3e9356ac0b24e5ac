//! `sweep bench search`: search efficiency on the LCBench surrogate (YAHPO Gym's ONNX model of
//! learning curves on 34 OpenML tasks). The offline simulator ([`simulate`]) drives the same
//! decision step agents run, with 4 simulated asynchronous workers and a budget of job time;
//! Optuna's RandomSampler + SuccessiveHalvingPruner runs on the same harness as the reference.
//!
//! Methods: random (no stopping), random + ASHA and TPE + ASHA (eta 3, rungs at epochs 2, 6,
//! 18, 52), Optuna random + successive halving (min_resource 2, reduction factor 3).
//! Regret: the best val_accuracy at epoch 52 of a large random sample of the task (computed
//! once, cached) minus the best at epoch 52 the search found.

use super::bench_support::{python, TempDir};
use crate::cli::BenchSearchArgs;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::time::Instant;
use sweep_core::search::sampler::Method;
use sweep_core::search::simulate::{self, Oracle, Trace};
use sweep_core::search::space::{Dist, Param, Space};
use sweep_core::search::{Fidelity, Goal, Policy, RuleKind, StopSpec};

const ORACLE_PY: &str = include_str!("../../scripts/lcbench_oracle.py");
const OPTUNA_PY: &str = include_str!("../../scripts/optuna_lcbench.py");

/// Full fidelity: LCBench's last epoch.
const MAX_EPOCH: u64 = 52;
/// ASHA's rungs: 2, 6, 18, 52 (min 2, eta 3).
const FIDELITY: (u64, u64) = (2, 3);
/// Goal (1): the share of the budget within which random + ASHA should reach random's
/// final regret.
const EARLY: f64 = 0.4;

/// sweep's methods, in the order they run (random + ASHA first: random without a rule then
/// proposes the same first trials, already in the curve cache).
const ARMS: [(&str, Method, RuleKind); 3] = [
    ("random+asha", Method::Random, RuleKind::Asha),
    ("random", Method::Random, RuleKind::None),
    ("tpe+asha", Method::Tpe, RuleKind::Asha),
];
const OPTUNA: &str = "optuna random+sh";

/// `sweep bench search`.
pub fn bench_search(args: BenchSearchArgs) -> Result<ExitCode> {
    if args.workers == 0 || args.seeds == 0 || args.budget <= 0.0 {
        bail!("--workers, --seeds and --budget must be positive");
    }
    let scripts = TempDir(super::bench_orchestrator::tempfile_dir("bench-search")?);
    let scripts = scripts.0.as_path();
    std::fs::write(scripts.join("lcbench_oracle.py"), ORACLE_PY)?;
    std::fs::write(scripts.join("optuna_lcbench.py"), OPTUNA_PY)?;
    let python = python();
    let mut oracle = Lcbench::start(&python, scripts, &args.surrogate)?;
    let tasks: Vec<String> = match args.tasks {
        Some(n) => oracle.tasks.iter().take(n).cloned().collect(),
        None => oracle.tasks.clone(),
    };
    if tasks.is_empty() {
        bail!("--tasks 0: nothing to run");
    }

    // The references (cached: a few seconds per task).
    let started = Instant::now();
    let refs = references(&mut oracle, &tasks, &args)?;
    let ref_file = scripts.join("reference.json");
    std::fs::write(&ref_file, refs_json(&refs).to_string())?;

    // Optuna in its own process, beside sweep's side (the other core).
    let bar = simulate::progress(
        (tasks.len() * if args.no_optuna { 1 } else { 2 }) as u64,
        "task runs",
    );
    let optuna = if args.no_optuna {
        None
    } else {
        let bar = bar.clone();
        Some(start_optuna(
            &python,
            scripts,
            &ref_file,
            &tasks,
            &args,
            &refs,
            move || bar.inc(1),
        )?)
    };

    let mut runs: Runs = BTreeMap::new();
    // Seconds per method: in all, and waiting for the surrogate.
    let mut wall: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for task in &tasks {
        bar.set_message(format!("task {task}"));
        let reference = &refs[task];
        let budget = args.budget * reference.mean_cost;
        oracle.select(task);
        for seed in 0..args.seeds as u64 {
            for (name, method, rule) in ARMS {
                let policy = policy(method, rule, seed, args.workers as u64)?;
                let (t0, busy0) = (Instant::now(), oracle.busy_s);
                let trace = simulate::simulate(&policy, args.workers, budget, &mut oracle)
                    .with_context(|| format!("{name} on task {task}, seed {seed}"))?;
                let w = wall.entry(name).or_default();
                w.0 += t0.elapsed().as_secs_f64();
                w.1 += oracle.busy_s - busy0;
                let run = Run::from_trace(seed, &trace, reference.best, budget);
                runs.entry(name)
                    .or_default()
                    .entry(task.clone())
                    .or_default()
                    .push(run);
            }
        }
        if bar.is_hidden() {
            eprintln!(
                "bench search: task {task} done ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
        bar.inc(1);
    }
    let queries = oracle.queries;
    drop(oracle);
    if let Some(handle) = optuna {
        let rows = handle
            .join()
            .map_err(|_| anyhow::anyhow!("the Optuna reader panicked"))??;
        for (task, run, w) in rows {
            let total = wall.entry(OPTUNA).or_default();
            total.0 += w.0;
            total.1 += w.1;
            runs.entry(OPTUNA)
                .or_default()
                .entry(task)
                .or_default()
                .push(run);
        }
    }
    bar.finish_and_clear();

    // Regret against the best known value: the random sample's best, or a better one any
    // run found (so that no regret is negative and ratios of mean regrets mean something).
    let mut known: BTreeMap<String, f64> = BTreeMap::new();
    for task in &tasks {
        let found = runs
            .values()
            .filter_map(|by_task| by_task.get(task))
            .flatten()
            .filter_map(|r| r.steps.last().map(|s| s.1));
        let best = found.fold(refs[task].best, f64::max);
        known.insert(task.clone(), best);
        for run in runs
            .values_mut()
            .filter_map(|by_task| by_task.get_mut(task))
        {
            for r in run {
                r.rebase(best);
            }
        }
    }
    let shift = mean(tasks.iter().map(|t| known[t] - refs[t].best));
    let summary = Summary::new(&tasks, &runs, &wall, shift);
    let protocol = json!({
        "surrogate": args.surrogate,
        "tasks": tasks.len(),
        "seeds": args.seeds,
        "workers": args.workers,
        "budget": format!("{} x the task's mean 52-epoch time over 200 random configurations (job time, all workers together)", args.budget),
        "reference": format!("best known val_accuracy at epoch 52: the best of {} random configurations, or of any run here where higher", args.reference),
        "rungs": rungs(),
        "eta": FIDELITY.1,
        "wall_s": started.elapsed().as_secs_f64(),
        "surrogate_queries": queries,
    });
    if let Some(path) = &args.json {
        let runs: serde_json::Map<String, Value> = runs
            .iter()
            .map(|(name, by_task)| {
                let by_task = by_task
                    .iter()
                    .map(|(t, rs)| (t.clone(), rs.iter().map(Run::json).collect()))
                    .collect();
                (name.to_string(), Value::Object(by_task))
            })
            .collect();
        let out = json!({
            "protocol": protocol,
            "references": refs_json(&refs),
            "best_known": known,
            "summary": summary.json(),
            "runs": runs,
        });
        let text = serde_json::to_string_pretty(&out)?;
        if path.as_os_str() == "-" {
            println!("{text}");
        } else {
            std::fs::write(path, text + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    if args.json.as_deref() != Some(Path::new("-")) {
        print!("{}", summary.render(&protocol));
    }
    Ok(ExitCode::SUCCESS)
}

/// The search space: LCBench's 7 hyperparameters. Log-scale integers (batch_size, max_units)
/// are `log_uniform` with step 1: the log-uniform law, values on the integer grid.
fn space() -> Result<Space> {
    let p = |key: &str, dist: Result<Dist, String>| -> Result<Param> {
        Ok(Param {
            key: key.into(),
            dist: dist.map_err(|e| anyhow::anyhow!("{key}: {e}"))?,
        })
    };
    Ok(Space {
        params: vec![
            p("batch_size", Dist::log_uniform(16.0, 512.0, Some(1.0)))?,
            p("learning_rate", Dist::log_uniform(1e-4, 1e-1, None))?,
            p("momentum", Dist::uniform(0.1, 0.99, None))?,
            p("weight_decay", Dist::uniform(1e-5, 0.1, None))?,
            p("num_layers", Dist::int(1, 5, None))?,
            p("max_units", Dist::log_uniform(64.0, 1024.0, Some(1.0)))?,
            p("max_dropout", Dist::uniform(0.0, 1.0, None))?,
        ],
    })
}

fn policy(method: Method, rule: RuleKind, seed: u64, workers: u64) -> Result<Policy> {
    Ok(Policy {
        method,
        trials: 1_000_000,
        parallel: workers,
        seed,
        // The simulator spends the budget; the decision step need not stop proposing.
        budget_hours: None,
        space: space()?,
        goal: Goal {
            metric: "val_accuracy".into(),
            class: None,
            maximize: true,
        },
        stop: Some(StopSpec {
            rule,
            fidelity: Fidelity {
                key: "epoch".into(),
                min: FIDELITY.0,
                max: MAX_EPOCH,
                eta: FIDELITY.1,
            },
            alpha: 0.05,
        }),
        jobs_per_trial: 1,
    })
}

/// The surrogate in a Python process (scripts/lcbench_oracle.py), JSON lines over a pipe.
/// A configuration's curve is asked once, at every epoch any method reads (the rungs and 52)
/// in one batch, and cached per (task, values).
struct Lcbench {
    child: Child,
    /// None once closed (closing it ends the script).
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    tasks: Vec<String>,
    task: String,
    epochs: Vec<u64>,
    cache: HashMap<String, Curve>,
    /// Round trips to the surrogate (curves asked).
    queries: u64,
    /// Seconds spent waiting for them.
    busy_s: f64,
}

struct Curve {
    epochs: Vec<u64>,
    acc: Vec<f64>,
    time: Vec<f64>,
}

impl Lcbench {
    fn start(python: &Path, scripts: &Path, surrogate: &Path) -> Result<Lcbench> {
        if !surrogate.join("model.onnx").exists() {
            bail!(
                "{}: no model.onnx (the LCBench surrogate; pass --surrogate DIR)",
                surrogate.display()
            );
        }
        let mut child = Command::new(python)
            .arg(scripts.join("lcbench_oracle.py"))
            .arg("--surrogate")
            .arg(surrogate)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| {
                format!(
                    "cannot run {}: run scripts/setup-libtorch (it makes .venv with onnxruntime), \
                     or set SWEEP_PYTHON to a Python with numpy and onnxruntime",
                    python.display()
                )
            })?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut oracle = Lcbench {
            child,
            stdin,
            stdout,
            tasks: Vec::new(),
            task: String::new(),
            epochs: rungs(),
            cache: HashMap::new(),
            queries: 0,
            busy_s: 0.0,
        };
        let ready = oracle.read().context("starting the LCBench surrogate")?;
        oracle.tasks =
            serde_json::from_value(ready["tasks"].clone()).context("the surrogate's task list")?;
        Ok(oracle)
    }

    /// Queries go to `task` from now on (a new cache).
    fn select(&mut self, task: &str) {
        self.task = task.to_string();
        self.cache.clear();
    }

    fn call(&mut self, request: &Value) -> Result<Value> {
        let stdin = self
            .stdin
            .as_mut()
            .context("the surrogate's input is closed")?;
        writeln!(stdin, "{request}")
            .and_then(|()| stdin.flush())
            .context("writing to the surrogate")?;
        self.read()
    }

    fn read(&mut self) -> Result<Value> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!("the surrogate process ended (its error is above)");
        }
        let v: Value =
            serde_json::from_str(&line).with_context(|| format!("surrogate answered {line:?}"))?;
        if let Some(e) = v.get("error") {
            bail!("surrogate: {}", e.as_str().unwrap_or_default());
        }
        Ok(v)
    }
}

impl Drop for Lcbench {
    fn drop(&mut self) {
        drop(self.stdin.take()); // the script ends at the end of its input
        let _ = self.child.wait();
    }
}

impl Oracle for Lcbench {
    fn query(&mut self, params: &[Value], fidelity: u64, _job: u64) -> Result<(f64, f64)> {
        let key = serde_json::to_string(params)?;
        if let Some(c) = self.cache.get(&key) {
            if let Some(i) = c.epochs.iter().position(|&e| e == fidelity) {
                return Ok((c.acc[i], c.time[i]));
            }
        }
        let mut epochs = self.epochs.clone();
        if let Some(c) = self.cache.get(&key) {
            epochs.extend(&c.epochs);
        }
        epochs.push(fidelity);
        epochs.sort_unstable();
        epochs.dedup();
        let t0 = Instant::now();
        let reply = self
            .call(&json!({"op": "curve", "task": self.task, "params": params, "epochs": epochs}))?;
        self.queries += 1;
        self.busy_s += t0.elapsed().as_secs_f64();
        let floats = |k: &str| -> Result<Vec<f64>> {
            serde_json::from_value(reply[k].clone()).with_context(|| format!("surrogate: {k}"))
        };
        let (acc, time) = (floats("val_accuracy")?, floats("time")?);
        let i = epochs.iter().position(|&e| e == fidelity).expect("asked");
        let out = (acc[i], time[i]);
        self.cache.insert(key, Curve { epochs, acc, time });
        Ok(out)
    }
}

/// The epochs a configuration's curve is asked at: the rungs (the last is 52).
fn rungs() -> Vec<u64> {
    Fidelity {
        key: "epoch".into(),
        min: FIDELITY.0,
        max: MAX_EPOCH,
        eta: FIDELITY.1,
    }
    .rungs()
}

/// A task's reference: the best val_accuracy at epoch 52 over `--reference` random
/// configurations, and the mean time of 52 epochs over the first 200 of them (the budget's
/// unit).
#[derive(Clone, Debug)]
struct Reference {
    best: f64,
    mean_cost: f64,
    n: u64,
    cost_n: u64,
}

impl Reference {
    fn from_json(v: &Value) -> Result<Reference> {
        let f = |k: &str| v[k].as_f64().with_context(|| format!("no {k} in {v}"));
        Ok(Reference {
            best: f("best")?,
            mean_cost: f("mean_cost")?,
            n: f("n")? as u64,
            cost_n: f("cost_n")? as u64,
        })
    }

    fn json(&self) -> Value {
        json!({"best": self.best, "mean_cost": self.mean_cost, "n": self.n, "cost_n": self.cost_n})
    }
}

fn refs_json(refs: &BTreeMap<String, Reference>) -> Value {
    Value::Object(refs.iter().map(|(t, r)| (t.clone(), r.json())).collect())
}

/// Computes the references missing from the cache file (under `--cache`).
fn references(
    oracle: &mut Lcbench,
    tasks: &[String],
    args: &BenchSearchArgs,
) -> Result<BTreeMap<String, Reference>> {
    const COST_N: u64 = 200;
    const SEED: u64 = 0;
    let file = args.cache.join(format!(
        "lcbench-reference-n{}-s{SEED}.json",
        args.reference
    ));
    let mut refs = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(&file) {
        let parsed: Result<()> = (|| {
            let v: Value = serde_json::from_str(&text)?;
            for (task, r) in v.as_object().context("expected an object")? {
                refs.insert(task.clone(), Reference::from_json(r)?);
            }
            Ok(())
        })();
        parsed.with_context(|| format!("{}: delete it to recompute", file.display()))?;
    }
    let missing: Vec<&String> = tasks.iter().filter(|t| !refs.contains_key(*t)).collect();
    if missing.is_empty() {
        return Ok(refs);
    }
    let bar = simulate::progress(missing.len() as u64, "references");
    for task in missing {
        bar.set_message(format!(
            "task {task}: {} random configurations",
            args.reference
        ));
        let reply = oracle.call(&json!({
            "op": "reference", "task": task, "n": args.reference, "cost_n": COST_N, "seed": SEED,
        }))?;
        refs.insert(
            task.clone(),
            Reference::from_json(&reply).context("surrogate: reference")?,
        );
        bar.inc(1);
    }
    bar.finish_and_clear();
    std::fs::create_dir_all(&args.cache)
        .with_context(|| format!("creating {}", args.cache.display()))?;
    std::fs::write(&file, serde_json::to_string_pretty(&refs_json(&refs))?)
        .with_context(|| format!("writing {}", file.display()))?;
    eprintln!("bench search: references cached in {}", file.display());
    Ok(refs)
}

/// One search on one task: what the goals read.
#[derive(Clone, Debug)]
struct Run {
    seed: u64,
    /// Reference minus the best at epoch 52 at the end (infinite when none finished).
    regret: f64,
    /// (share of the budget spent, best val_accuracy at epoch 52 so far) at each improvement.
    steps: Vec<(f64, f64)>,
    reference: f64,
    trials: u64,
    rung_evals: u64,
    full_evals: u64,
    /// Rung evaluations at each rung (sweep's side).
    per_rung: Vec<u64>,
}

impl Run {
    fn from_trace(seed: u64, trace: &Trace, reference: f64, budget: f64) -> Run {
        Run {
            seed,
            regret: trace.best().map_or(f64::INFINITY, |b| reference - b),
            steps: trace
                .steps
                .iter()
                .map(|s| (s.cost_s / budget, s.best))
                .collect(),
            reference,
            trials: trace.trials,
            rung_evals: trace.rung_evals,
            full_evals: trace.full_evals,
            per_rung: trace.per_rung.clone(),
        }
    }

    fn json(&self) -> Value {
        json!({
            "seed": self.seed,
            "regret": finite(self.regret),
            "trials": self.trials,
            "rung_evals": self.rung_evals,
            "full_evals": self.full_evals,
            "per_rung": self.per_rung,
            "steps": self.steps.iter().map(|s| [s.0, s.1]).collect::<Vec<_>>(),
        })
    }

    /// Regret against `reference` from now on.
    fn rebase(&mut self, reference: f64) {
        self.reference = reference;
        self.regret = self.steps.last().map_or(f64::INFINITY, |s| reference - s.1);
    }

    /// The regret once `share` of the budget was spent.
    fn regret_at(&self, share: f64) -> f64 {
        self.steps
            .iter()
            .take_while(|s| s.0 <= share + 1e-12)
            .last()
            .map_or(f64::INFINITY, |s| self.reference - s.1)
    }
}

type Runs<'a> = BTreeMap<&'a str, BTreeMap<String, Vec<Run>>>;

/// One Optuna run: its task, the run, and (seconds in all, seconds in the surrogate).
type OptunaRow = (String, Run, (f64, f64));

/// Runs Optuna's side (scripts/optuna_lcbench.py) in the background; its lines are read
/// as they come (one per task and seed).
fn start_optuna(
    python: &Path,
    scripts: &Path,
    ref_file: &Path,
    tasks: &[String],
    args: &BenchSearchArgs,
    refs: &BTreeMap<String, Reference>,
    done_task: impl Fn() + Send + 'static,
) -> Result<std::thread::JoinHandle<Result<Vec<OptunaRow>>>> {
    let mut child = Command::new(python)
        .arg(scripts.join("optuna_lcbench.py"))
        .arg("--surrogate")
        .arg(&args.surrogate)
        .arg("--reference")
        .arg(ref_file)
        .arg("--tasks")
        .arg(tasks.join(","))
        .arg("--seeds")
        .arg(args.seeds.to_string())
        .arg("--workers")
        .arg(args.workers.to_string())
        .arg("--budget-factor")
        .arg(args.budget.to_string())
        .arg("--epochs")
        .arg(
            rungs()
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(","),
        )
        .arg("--min-resource")
        .arg(FIDELITY.0.to_string())
        .arg("--eta")
        .arg(FIDELITY.1.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| {
            format!(
                "cannot run {} (Optuna's side; --no-optuna skips it)",
                python.display()
            )
        })?;
    let stdout = BufReader::new(child.stdout.take().expect("piped"));
    let seeds = args.seeds as u64;
    let refs = refs.clone();
    Ok(std::thread::spawn(move || {
        let mut rows = Vec::new();
        for line in stdout.lines() {
            let line = line?;
            let v: Value = serde_json::from_str(&line)
                .with_context(|| format!("optuna_lcbench.py printed {line:?}"))?;
            let task = v["task"].as_str().unwrap_or_default().to_string();
            let reference = refs
                .get(&task)
                .with_context(|| format!("optuna_lcbench.py: task {task:?}?"))?
                .best;
            let budget = v["budget_s"]
                .as_f64()
                .context("optuna_lcbench.py: no budget_s")?;
            let steps: Vec<(f64, f64)> = serde_json::from_value(v["steps"].clone())?;
            let seed = v["seed"].as_u64().unwrap_or(0);
            rows.push((
                task,
                Run {
                    seed,
                    regret: v["best"].as_f64().map_or(f64::INFINITY, |b| reference - b),
                    steps: steps.into_iter().map(|(c, b)| (c / budget, b)).collect(),
                    reference,
                    trials: v["trials"].as_u64().unwrap_or(0),
                    rung_evals: v["rung_evals"].as_u64().unwrap_or(0),
                    full_evals: v["full_evals"].as_u64().unwrap_or(0),
                    per_rung: Vec::new(),
                },
                (
                    v["wall_s"].as_f64().unwrap_or(f64::NAN),
                    v["surrogate_s"].as_f64().unwrap_or(f64::NAN),
                ),
            ));
            if seed + 1 == seeds {
                done_task();
            }
        }
        let status = child.wait()?;
        if !status.success() {
            bail!("optuna_lcbench.py failed ({status}); its error is above (--no-optuna skips it)");
        }
        Ok(rows)
    }))
}

/// One method's row of the table.
#[derive(Debug)]
struct MethodRow {
    name: String,
    /// Mean final regret over seeds, per task (in task order).
    per_task: Vec<f64>,
    mean: f64,
    /// Standard error of `mean` over tasks.
    se: f64,
    trials: f64,
    rung_evals: f64,
    full_evals: f64,
    /// Seconds all runs took (both sides run at once, one process each, on this machine).
    wall_s: f64,
    /// Of which waiting for the surrogate (sweep's side: answers not yet cached).
    surrogate_s: f64,
}

#[derive(Debug)]
struct Summary {
    tasks: Vec<String>,
    methods: Vec<MethodRow>,
    /// Goal (1): per task, the share of the budget at which random + ASHA's regret (mean
    /// over seeds) first is at most random's final regret (mean over seeds); None: never.
    asha_reaches_random: Vec<Option<f64>>,
    goal1_tasks: usize,
    /// Goal (2): tasks where TPE + ASHA's final regret is at most random's (means over seeds).
    goal2_tasks: usize,
    /// Goal (3): random + ASHA's mean final regret over Optuna random + SH's.
    goal3_ratio: Option<f64>,
    goal3_within: Option<bool>,
    /// The same ratio with regrets against the random sample's best alone (which some
    /// runs beat: regrets may be negative there).
    goal3_ratio_sample: Option<f64>,
    /// Tasks where random + ASHA's final regret is at most Optuna's.
    goal3_tasks_le: usize,
}

fn mean(xs: impl IntoIterator<Item = f64>) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for x in xs {
        sum += x;
        n += 1;
    }
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

impl Summary {
    /// `shift`: the mean over tasks of best known minus the random sample's best.
    fn new(
        tasks: &[String],
        runs: &Runs,
        wall: &BTreeMap<&str, (f64, f64)>,
        shift: f64,
    ) -> Summary {
        let names = ARMS.iter().map(|a| a.0).chain([OPTUNA]);
        let methods: Vec<MethodRow> = names
            .filter_map(|name| {
                let by_task = runs.get(name)?;
                let per_task: Vec<f64> = tasks
                    .iter()
                    .map(|t| {
                        by_task
                            .get(t)
                            .map_or(f64::NAN, |rs| mean(rs.iter().map(|r| r.regret)))
                    })
                    .collect();
                let all = || by_task.values().flatten();
                let m = mean(per_task.iter().copied());
                let var = per_task.iter().map(|x| (x - m).powi(2)).sum::<f64>()
                    / (per_task.len().max(2) - 1) as f64;
                Some(MethodRow {
                    name: name.to_string(),
                    mean: m,
                    se: (var / per_task.len() as f64).sqrt(),
                    per_task,
                    trials: mean(all().map(|r| r.trials as f64)),
                    rung_evals: mean(all().map(|r| r.rung_evals as f64)),
                    full_evals: mean(all().map(|r| r.full_evals as f64)),
                    wall_s: wall.get(name).map_or(f64::NAN, |w| w.0),
                    surrogate_s: wall.get(name).map_or(f64::NAN, |w| w.1),
                })
            })
            .collect();
        let row = |name: &str| methods.iter().find(|m| m.name == name);
        let (random, asha, tpe, optuna) = (
            row("random"),
            row("random+asha"),
            row("tpe+asha"),
            row(OPTUNA),
        );
        let asha_reaches_random: Vec<Option<f64>> = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let target = random?.per_task[i];
                let seeds = runs.get("random+asha")?.get(t)?;
                (1..=100)
                    .map(|k| k as f64 / 100.0)
                    .find(|&share| mean(seeds.iter().map(|r| r.regret_at(share))) <= target)
            })
            .collect();
        let goal1_tasks = asha_reaches_random
            .iter()
            .filter(|s| s.is_some_and(|s| s <= EARLY + 1e-9))
            .count();
        let goal2_tasks = match (tpe, random) {
            (Some(t), Some(r)) => t
                .per_task
                .iter()
                .zip(&r.per_task)
                .filter(|(t, r)| t <= r)
                .count(),
            _ => 0,
        };
        let goal3_ratio = asha.zip(optuna).map(|(a, o)| a.mean / o.mean);
        let goal3_ratio_sample = asha
            .zip(optuna)
            .map(|(a, o)| (a.mean - shift) / (o.mean - shift));
        let goal3_tasks_le = match (asha, optuna) {
            (Some(a), Some(o)) => a
                .per_task
                .iter()
                .zip(&o.per_task)
                .filter(|(a, o)| a <= o)
                .count(),
            _ => 0,
        };
        Summary {
            tasks: tasks.to_vec(),
            methods,
            asha_reaches_random,
            goal1_tasks,
            goal2_tasks,
            goal3_ratio,
            goal3_within: goal3_ratio.map(|r| (r - 1.0).abs() <= 0.1),
            goal3_ratio_sample,
            goal3_tasks_le,
        }
    }

    fn json(&self) -> Value {
        let methods: Vec<Value> = self
            .methods
            .iter()
            .map(|m| {
                json!({
                    "name": m.name,
                    "mean_regret": finite(m.mean),
                    "se": finite(m.se),
                    "per_task": m.per_task.iter().map(|&x| finite(x)).collect::<Vec<_>>(),
                    "trials": m.trials,
                    "rung_evals": m.rung_evals,
                    "full_evals": m.full_evals,
                    "wall_s": finite(m.wall_s),
                    "surrogate_s": finite(m.surrogate_s),
                })
            })
            .collect();
        json!({
            "tasks": self.tasks,
            "methods": methods,
            "goal1": {
                "what": format!("tasks where random+asha reaches random's final regret within {:.0}% of the budget", EARLY * 100.0),
                "tasks": self.goal1_tasks,
                "share_reached": self.asha_reaches_random,
            },
            "goal2": {"what": "tasks where tpe+asha's final regret <= random's", "tasks": self.goal2_tasks},
            "goal3": {
                "what": format!("random+asha / {OPTUNA} mean final regret, within ±10%"),
                "ratio": self.goal3_ratio,
                "within": self.goal3_within,
                "ratio_against_the_random_sample": self.goal3_ratio_sample,
                "tasks_asha_le_optuna": self.goal3_tasks_le,
            },
        })
    }

    fn render(&self, protocol: &Value) -> String {
        let n = self.tasks.len();
        let mut out =
            format!(
            "sweep bench search: LCBench surrogate, {n} tasks x {} seeds, {} simulated workers\n\
             budget: {}\nregret: {} minus the best found at epoch 52\n\n",
            protocol["seeds"], protocol["workers"], protocol["budget"].as_str().unwrap_or_default(),
            protocol["reference"].as_str().unwrap_or_default(),
        );
        out += &format!(
            "{:<18} {:>20} {:>10} {:>10} {:>9} {:>8} {:>12}\n",
            "method",
            "final regret ± SE",
            "trials/run",
            "rungs/run",
            "full/run",
            "wall s",
            "surrogate s"
        );
        for m in &self.methods {
            out += &format!(
                "{:<18} {:>20} {:>10.1} {:>10.1} {:>9.1} {:>8.1} {:>12.1}\n",
                m.name,
                format!("{:.3} ± {:.3}", m.mean, m.se),
                m.trials,
                m.rung_evals,
                m.full_evals,
                m.wall_s,
                m.surrogate_s
            );
        }
        let mut shares: Vec<f64> = self.asha_reaches_random.iter().flatten().copied().collect();
        shares.sort_by(f64::total_cmp);
        let median = shares
            .get(shares.len() / 2)
            .map_or("-".to_string(), |s| format!("{s:.2}"));
        out += &format!(
            "\ngoals (regrets: means over seeds, per task):\n\
             (1) random+asha reaches random's final regret within {:.0}% of the budget: {}/{n} tasks \
             (reached at all: {}, median share of the budget where reached: {median})\n",
            EARLY * 100.0,
            self.goal1_tasks,
            shares.len()
        );
        out += &format!(
            "(2) tpe+asha's final regret <= random's: {}/{n} tasks\n",
            self.goal2_tasks
        );
        match (self.goal3_ratio, self.goal3_within) {
            (Some(r), Some(w)) => {
                out += &format!(
                    "(3) random+asha / {OPTUNA} mean final regret: {r:.3} (within ±10%: {}; \
                     against the random sample's best alone: {:.3}; random+asha <= optuna on \
                     {}/{n} tasks)\n",
                    if w { "yes" } else { "no" },
                    self.goal3_ratio_sample.unwrap_or(f64::NAN),
                    self.goal3_tasks_le,
                )
            }
            _ => out += "(3) not measured (--no-optuna)\n",
        }
        out += &format!(
            "\n{:.0} s in all, {} surrogate queries on sweep's side\n",
            protocol["wall_s"].as_f64().unwrap_or(f64::NAN),
            protocol["surrogate_queries"]
        );
        out
    }
}

/// A number for JSON: non-finite ones (a search that finished nothing) as null.
fn finite(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

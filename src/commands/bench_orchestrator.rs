//! `sweep bench orchestrator`: the scheduler with jobs that train nothing (their job
//! processes are `sweep-noop-worker`, which speaks the job protocol and loads no libtorch,
//! or a command job's program that exits at once), so what is measured is the orchestrator
//! itself: claiming, ticket writing, event streaming, result recording — and, separately,
//! the job process's start-up. Optuna's trials run beside them for reference.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;
use sweep_core::scheduler::{self, DeviceKind, RunOptions};
use sweep_core::store::{self, DbLocation};
use sweep_core::sweepfile;

/// The job process of the benchmarks: the job protocol, no training, no libtorch.
pub const NOOP_WORKER: &str = "sweep-noop-worker";
/// The test worker: analytic curves at the pace `SWEEP_TOY_ITER_MS` sets (and the failures
/// `SWEEP_TOY_FAULTS` asks for); `sweep bench serve` runs its jobs with it.
pub const TOY_WORKER: &str = "sweep-toy-worker";

/// Optuna's side: trials that do nothing, SQLite storage, `n_jobs` threads.
const OPTUNA_TRIALS_PY: &str = include_str!("../../scripts/optuna_trials.py");

/// One measured way of running `jobs` jobs that do nothing.
struct Measured {
    what: String,
    succeeded: usize,
    wall_s: f64,
    /// Orchestrator time per job (claim, ticket, store writes, finish) and the job
    /// process's start-up (spawn to first event); None for Optuna (in-process trials).
    overhead_ms: Option<f64>,
    startup_ms: Option<f64>,
}

/// `sweep bench orchestrator`: the same number of do-nothing jobs three ways, in this
/// process one after the other: the built-in trainer's path (`sweep-noop-worker`), command
/// jobs (a program that prints its metrics and exits at once), and Optuna's trials with
/// SQLite storage (`scripts/optuna_trials.py`; left out, saying why, without Python+Optuna).
pub async fn run(jobs: usize, workers: usize) -> Result<()> {
    let dir = tempfile_dir("bench")?;
    let exe = std::env::current_exe().context("locating the sweep executable")?;
    let noop = bench_sweep(&dir, "bench-orchestrator", jobs, 1)?;
    let (builtin, _) = measure(
        &dir,
        &noop,
        workers,
        Some(sibling_worker(&exe, NOOP_WORKER)?),
    )
    .await?;
    let (command, command_phases) =
        measure(&dir, &command_sweep(&dir, jobs)?, workers, None).await?;
    let optuna = optuna_trials(&dir, jobs, workers);
    println!("orchestrator benchmark: {jobs} jobs that do nothing, {workers} workers, SQLite, one after the other in this process");
    println!(
        "{:<58} {:>9} {:>8} {:>10} {:>10} {:>12} {:>12}",
        "how", "succeeded", "wall s", "ms/job", "slot ms", "overhead ms", "start-up ms"
    );
    let mut rows = vec![
        Measured {
            what: format!("sweep, built-in path ({NOOP_WORKER})"),
            ..builtin
        },
        Measured {
            what: "sweep, command jobs (`echo {\"metrics\": ...}`)".into(),
            ..command
        },
    ];
    match optuna {
        Ok(o) => rows.push(o),
        Err(e) => println!("  (Optuna left out: {e:#})"),
    }
    let opt_ms = |m: &Measured| m.wall_s * 1e3 / m.succeeded.max(1) as f64;
    let cell = |v: Option<f64>, w: usize| {
        v.map_or_else(|| format!("{:>w$}", "-"), |v| format!("{v:>w$.2}"))
    };
    for m in &rows {
        println!(
            "{:<58} {:>9} {:>8.2} {:>10.2} {:>10.2} {} {}",
            m.what,
            format!("{}/{jobs}", m.succeeded),
            m.wall_s,
            opt_ms(m),
            opt_ms(m) * workers as f64,
            cell(m.overhead_ms, 12),
            cell(m.startup_ms, 12)
        );
    }
    for (phase, d) in command_phases {
        println!(
            "    command jobs: {phase:<23} {:.2} ms/job",
            d.as_secs_f64() * 1e3 / jobs.max(1) as f64
        );
    }
    let slot = opt_ms(&rows[1]) * workers as f64;
    println!("ms/job: wall time / jobs; slot ms: the time one worker slot spends per job, process start and exit included (wall x workers / jobs)");
    println!(
        "goal: a command job < 10 ms of slot time including its process start: {slot:.2} ms, {}",
        if slot < 10.0 { "PASS" } else { "MISS" }
    );
    println!(
        "command / built-in ms/job: {:.3}",
        opt_ms(&rows[1]) / opt_ms(&rows[0]).max(1e-9)
    );
    if let Some(o) = rows.get(2) {
        println!(
            "command / Optuna ms/job: {:.3} (Optuna's trials are function calls in one process: no process start)",
            opt_ms(&rows[1]) / opt_ms(o).max(1e-9)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Runs `spec` on a fresh SQLite database in `dir`; `worker`: the ticket worker's binary.
async fn measure(
    dir: &Path,
    spec: &sweepfile::SweepSpec,
    workers: usize,
    worker: Option<PathBuf>,
) -> Result<(Measured, Vec<(&'static str, std::time::Duration)>)> {
    let opts = RunOptions {
        runs: Some(dir.join("runs")),
        device: DeviceKind::Cpu,
        workers,
        exe: worker,
        ..RunOptions::new(dir.join(format!("{}.db", spec.name)).into())
    };
    let t = Instant::now();
    let summary = scheduler::run(spec, &opts).await?;
    let wall_s = t.elapsed().as_secs_f64();
    let n = summary.attempts.max(1) as f64;
    let measured = Measured {
        what: String::new(),
        succeeded: summary.succeeded,
        wall_s,
        overhead_ms: Some(summary.overhead.total().as_secs_f64() * 1e3 / n),
        startup_ms: Some(
            summary.startup.as_secs_f64() * 1e3 / summary.startup_samples.max(1) as f64,
        ),
    };
    Ok((measured, summary.overhead.phases().to_vec()))
}

/// `jobs` command jobs (one per seed) of a program that reports its metrics and exits.
fn command_sweep(dir: &Path, jobs: usize) -> Result<sweepfile::SweepSpec> {
    let seeds: Vec<String> = (0..jobs).map(|s| s.to_string()).collect();
    let yaml = format!(
        "name: bench-command
command: [echo, '{{\"metrics\": {{\"value\": ${{seed}}}}}}']
seeds: [{}]
",
        seeds.join(", ")
    );
    let path = dir.join("bench-command.yaml");
    std::fs::write(&path, &yaml)?;
    Ok(sweepfile::parse(&path, &yaml, &[])?)
}

/// Optuna's do-nothing trials, or why they could not run.
fn optuna_trials(dir: &Path, trials: usize, workers: usize) -> Result<Measured> {
    let script = dir.join("optuna_trials.py");
    std::fs::write(&script, OPTUNA_TRIALS_PY)?;
    let python = super::bench_support::python();
    let out = std::process::Command::new(&python)
        .arg(&script)
        .args([trials.to_string(), workers.to_string()])
        .arg(dir.join("optuna.db"))
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "{} failed: {}",
            python.display(),
            err.lines().last().unwrap_or("")
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let num = |k: &str| v.get(k).and_then(|x| x.as_f64()).unwrap_or(f64::NAN);
    Ok(Measured {
        what: format!(
            "Optuna {} trials, SQLite storage, n_jobs={workers}",
            v.get("version").and_then(|x| x.as_str()).unwrap_or("?")
        ),
        succeeded: num("trials") as usize,
        wall_s: num("wall_s"),
        overhead_ms: None,
        startup_ms: None,
    })
}

/// A scratch folder of this process for benchmark `what`.
pub fn tempfile_dir(what: &str) -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("sweep-{what}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// One measured configuration of [`agents`].
struct AgentRun {
    backend: String,
    agents: usize,
    jobs: usize,
    wall_s: f64,
    succeeded: usize,
    overhead_ms: f64,
    startup_ms: f64,
    /// The agents' own CPU time per job (their job processes and the database not included).
    cpu_ms: f64,
    /// Jobs claimed more than once (each no-op job should be claimed exactly once).
    duplicates: usize,
}

/// `sweep bench orchestrator --agents 1,4,16 [--db postgres://...]`: `n` agent processes
/// (one worker each) drain one queue of no-op jobs, for each `n`, on a fresh SQLite file and
/// on the given server. Prints jobs/s, the orchestrator's time per job (claim, ticket, store
/// writes, finish; not the job process) and the duplicate claims found in the store.
pub async fn agents(jobs: usize, counts: &[usize], server: Option<DbLocation>) -> Result<()> {
    let dir = tempfile_dir("bench")?;
    let mut backends = vec![DbLocation::Sqlite(dir.join("bench.db"))];
    backends.extend(server);
    let mut results = Vec::new();
    for db in &backends {
        for &n in counts {
            results.push(measure_agents(&dir, db, n.max(1), jobs).await?);
        }
    }
    print_agent_table(&results);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn measure_agents(dir: &Path, db: &DbLocation, n: usize, jobs: usize) -> Result<AgentRun> {
    let name = format!(
        "bench-{n}-agents-{}-{:06x}",
        std::process::id(),
        rand::random::<u32>() & 0xffffff
    );
    let spec = bench_sweep(dir, &name, jobs, 1)?;
    let store = store::open(db).await?;
    // The sweep exists (empty) while the agents start; its jobs come once all are ready, so
    // the clock measures the queue, not 16 processes loading libtorch.
    let sweep_id = store.upsert_sweep(&name, "bench", "").await?;
    scheduler::sweeps::register_runs(store.as_ref(), sweep_id, &dir.join("runs")).await?;
    let mut agents = start_agents(db, &name, n).await?;
    let mut ready_cpu = 0.0;
    for a in &mut agents {
        ready_cpu += a
            .next_json()
            .await?
            .get("cpu_s")
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0);
    }
    let t = Instant::now();
    scheduler::register(store.as_ref(), &spec, &spec.plan()?, None).await?;
    loop {
        let counts = store.counts(sweep_id).await?;
        let finished: usize = counts
            .iter()
            .filter(|(s, _)| s.is_finished())
            .map(|(_, n)| n)
            .sum();
        if finished >= jobs {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let wall_s = t.elapsed().as_secs_f64();
    let mut run = AgentRun {
        backend: db.to_string(),
        agents: n,
        jobs,
        wall_s,
        succeeded: 0,
        overhead_ms: 0.0,
        startup_ms: 0.0,
        cpu_ms: 0.0,
        duplicates: 0,
    };
    let (mut attempts, mut overhead, mut startup, mut samples, mut cpu) =
        (0usize, 0.0, 0.0, 0usize, 0.0);
    for a in &mut agents {
        // Idle now: SIGTERM ends the agent at once, with its summary.
        unsafe { libc::kill(a.child.id().unwrap_or(0) as i32, libc::SIGTERM) };
        let v = a.next_json().await?;
        let num = |k: &str| v.get(k).and_then(|x| x.as_f64()).unwrap_or(0.0);
        attempts += num("attempts") as usize;
        run.succeeded += num("succeeded") as usize;
        overhead += num("overhead_s");
        startup += num("startup_s");
        samples += num("startup_samples") as usize;
        cpu += num("cpu_s");
        let _ = a.child.wait().await;
    }
    run.overhead_ms = overhead * 1e3 / attempts.max(1) as f64;
    run.startup_ms = startup * 1e3 / samples.max(1) as f64;
    run.cpu_ms = (cpu - ready_cpu) * 1e3 / jobs.max(1) as f64;
    let rows = store.report_rows(Some(&name)).await?;
    run.duplicates = rows.iter().filter(|r| r.attempts != 1).count();
    store.close().await;
    Ok(run)
}

/// A sweep file in `dir` of `jobs` plain jobs (one per seed) of `iters` iterations: the
/// benchmarks' workload, run by a worker that trains nothing ([`NOOP_WORKER`], or
/// [`TOY_WORKER`] for a pace per iteration).
pub fn bench_sweep(
    dir: &Path,
    name: &str,
    jobs: usize,
    iters: usize,
) -> Result<sweepfile::SweepSpec> {
    let seeds: Vec<String> = (0..jobs).map(|s| s.to_string()).collect();
    let yaml = format!(
        "name: {name}\nbase:\n  iters: {iters}\n  checkpoint_every: 0\nseeds: [{}]\n",
        seeds.join(", ")
    );
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, &yaml)?;
    Ok(sweepfile::parse(&path, &yaml, &[])?)
}

/// One agent process of the benchmark and the JSON lines it prints.
struct BenchAgent {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl BenchAgent {
    async fn next_json(&mut self) -> Result<serde_json::Value> {
        while let Some(line) = self.lines.next_line().await? {
            if let Ok(v) = serde_json::from_str(&line) {
                return Ok(v);
            }
        }
        bail!("an agent of the benchmark ended without its summary")
    }
}

async fn start_agents(db: &DbLocation, sweep: &str, n: usize) -> Result<Vec<BenchAgent>> {
    let exe = std::env::current_exe().context("locating the sweep executable")?;
    let worker = sibling_worker(&exe, NOOP_WORKER)?;
    (0..n)
        .map(|_| {
            let mut child = tokio::process::Command::new(&exe)
                .args(["agent", "--sweep", sweep, "--workers", "1", "--json"])
                .args(["--idle-exit", "600", "--worker-exe"])
                .arg(&worker)
                .env("SWEEP_DB", db.secret())
                .env("RUST_LOG", "warn")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .context("starting an agent")?;
            let stdout = child.stdout.take().expect("piped stdout");
            let lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
            Ok(BenchAgent { child, lines })
        })
        .collect()
}

/// Worker program `name` beside the `sweep` binary (`cargo build --workspace` makes both).
pub fn sibling_worker(sweep: &Path, name: &str) -> Result<PathBuf> {
    let worker = sweep.with_file_name(name);
    if !worker.is_file() {
        bail!(
            "{} is missing: build it with `cargo build -p sweep-core --bin {name}` (the \
             benchmarks run their jobs with it: they measure the orchestrator, not training)",
            worker.display()
        );
    }
    Ok(worker)
}

fn print_agent_table(results: &[AgentRun]) {
    println!("orchestrator benchmark: no-op jobs (sweep-noop-worker: the job protocol, no libtorch), N `sweep agent` processes of one worker each on one queue");
    println!(
        "{:<44} {:>6} {:>7} {:>7} {:>7} {:>8} {:>11} {:>11} {:>11} {:>10}",
        "database",
        "agents",
        "jobs",
        "wall s",
        "jobs/s",
        "speed-up",
        "overhead ms",
        "agent CPU",
        "start-up ms",
        "duplicates"
    );
    for r in results {
        let base = results
            .iter()
            .find(|b| b.backend == r.backend)
            .map(|b| b.succeeded as f64 / b.wall_s)
            .unwrap_or(1.0);
        let rate = r.succeeded as f64 / r.wall_s;
        println!(
            "{:<44} {:>6} {:>7} {:>7.2} {:>7.1} {:>7.2}x {:>11.2} {:>8.2} ms {:>11.1} {:>10}",
            r.backend,
            r.agents,
            format!("{}/{}", r.succeeded, r.jobs),
            r.wall_s,
            rate,
            rate / base,
            r.overhead_ms,
            r.cpu_ms,
            r.startup_ms,
            r.duplicates
        );
    }
    println!("overhead: wall time per job spent claiming, writing the ticket, storing events and the result (not the job process; goal < 5 ms at 16 agents on PostgreSQL);");
    println!("agent CPU: the agents' own CPU time per job once they were ready (their start-up, loading libtorch, not included); on fewer cores than agents, overhead includes waiting for a core;");
    println!("wall s: from enqueueing the jobs (all agents connected and waiting) to the last result recorded");
    println!("speed-up: jobs/s against the first row of the same database; duplicates: jobs claimed more than once (must be 0)");
}

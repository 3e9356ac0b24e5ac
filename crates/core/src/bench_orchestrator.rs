//! `sweep bench orchestrator`: the scheduler with jobs that train nothing (`model.backbone:
//! noop`), so what is measured is the orchestrator itself: claiming, ticket writing,
//! event streaming, result recording — and, separately, the worker process start-up.

use crate::scheduler::{self, DeviceKind, RunOptions};
use crate::store::{self, DbLocation};
use crate::sweepfile;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::Instant;

pub async fn run(jobs: usize, workers: usize) -> Result<()> {
    let dir = tempfile_dir()?;
    let seeds: Vec<String> = (0..jobs).map(|s| s.to_string()).collect();
    let yaml = format!(
        "name: bench-orchestrator\nbase:\n  model: {{backbone: noop}}\n  iters: 1\n  checkpoint_every: 0\nseeds: [{}]\n",
        seeds.join(", ")
    );
    let path = dir.join("bench.yaml");
    std::fs::write(&path, &yaml)?;
    let spec = sweepfile::parse(&path, &yaml, &[])?;
    let opts = RunOptions {
        runs: Some(dir.join("runs")),
        device: DeviceKind::Cpu,
        workers,
        ..RunOptions::new(dir.join("bench.db").into())
    };
    let t = Instant::now();
    let summary = scheduler::run(&spec, &opts).await?;
    let wall = t.elapsed().as_secs_f64();
    let n = summary.attempts.max(1) as f64;
    let overhead_ms = summary.overhead.as_secs_f64() * 1e3 / n;
    let startup_ms = summary.startup.as_secs_f64() * 1e3 / summary.startup_samples.max(1) as f64;
    println!(
        "orchestrator benchmark: {jobs} noop jobs, {workers} workers, SQLite at {}",
        opts.db
    );
    println!("  jobs succeeded            {}", summary.succeeded);
    println!("  wall time                 {wall:.2} s");
    println!(
        "  throughput                {:.1} jobs/s",
        summary.succeeded as f64 / wall
    );
    println!("  orchestrator overhead     {overhead_ms:.2} ms/job (claim + ticket + store writes + finish; goal < 5 ms)");
    println!("  worker start-up           {startup_ms:.1} ms/job (spawn to first event; process + libtorch load)");
    println!(
        "  ratio overhead/start-up   {:.3} (the orchestrator's share of a job's fixed cost)",
        overhead_ms / startup_ms.max(1e-9)
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("sweep-bench-{}", std::process::id()));
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
    /// Jobs claimed more than once (each no-op job should be claimed exactly once).
    duplicates: usize,
}

/// `sweep bench orchestrator --agents 1,4,16 [--db postgres://...]`: `n` agent processes
/// (one worker each) drain one queue of no-op jobs, for each `n`, on a fresh SQLite file and
/// on the given server. Prints jobs/s, the orchestrator's time per job (claim, ticket, store
/// writes, finish; not the job process) and the duplicate claims found in the store.
pub async fn agents(jobs: usize, counts: &[usize], server: Option<DbLocation>) -> Result<()> {
    let dir = tempfile_dir()?;
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
    let seeds: Vec<String> = (0..jobs).map(|s| s.to_string()).collect();
    let yaml = format!(
        "name: {name}\nbase:\n  model: {{backbone: noop}}\n  iters: 1\n  checkpoint_every: 0\nseeds: [{}]\n",
        seeds.join(", ")
    );
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, &yaml)?;
    let spec = sweepfile::parse(&path, &yaml, &[])?;
    let store = store::open(db).await?;
    scheduler::register(
        store.as_ref(),
        &spec,
        &spec.plan()?,
        Some(&dir.join("runs")),
    )
    .await?;
    let exe = std::env::current_exe().context("locating the sweep executable")?;
    let t = Instant::now();
    let children: Vec<_> = (0..n)
        .map(|_| {
            tokio::process::Command::new(&exe)
                .args(["agent", "--sweep", &name, "--workers", "1", "--json"])
                .env("SWEEP_DB", db.secret())
                .env("RUST_LOG", "warn")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .context("starting an agent")
        })
        .collect::<Result<_>>()?;
    let mut run = AgentRun {
        backend: db.to_string(),
        agents: n,
        jobs,
        wall_s: 0.0,
        succeeded: 0,
        overhead_ms: 0.0,
        startup_ms: 0.0,
        duplicates: 0,
    };
    let (mut attempts, mut overhead, mut startup, mut samples) = (0usize, 0.0, 0.0, 0usize);
    for child in children {
        let out = child.wait_with_output().await?;
        let line = String::from_utf8_lossy(&out.stdout);
        let Some(v) = line
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        else {
            bail!("an agent ended ({}) without its summary", out.status);
        };
        let num = |k: &str| v.get(k).and_then(|x| x.as_f64()).unwrap_or(0.0);
        attempts += num("attempts") as usize;
        run.succeeded += num("succeeded") as usize;
        overhead += num("overhead_s");
        startup += num("startup_s");
        samples += num("startup_samples") as usize;
    }
    run.wall_s = t.elapsed().as_secs_f64();
    run.overhead_ms = overhead * 1e3 / attempts.max(1) as f64;
    run.startup_ms = startup * 1e3 / samples.max(1) as f64;
    let rows = store.report_rows(Some(&name)).await?;
    run.duplicates = rows.iter().filter(|r| r.attempts != 1).count();
    store.close().await;
    Ok(run)
}

fn print_agent_table(results: &[AgentRun]) {
    println!("orchestrator benchmark: no-op jobs, N `sweep agent` processes of one worker each on one queue");
    println!(
        "{:<44} {:>6} {:>5} {:>8} {:>8} {:>9} {:>12} {:>12} {:>10}",
        "database",
        "agents",
        "jobs",
        "wall s",
        "jobs/s",
        "speed-up",
        "overhead ms",
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
            "{:<44} {:>6} {:>5} {:>8.2} {:>8.1} {:>8.2}x {:>12.2} {:>12.1} {:>10}",
            r.backend,
            r.agents,
            format!("{}/{}", r.succeeded, r.jobs),
            r.wall_s,
            rate,
            rate / base,
            r.overhead_ms,
            r.startup_ms,
            r.duplicates
        );
    }
    println!("overhead: claim + ticket + store writes + finish per job, not the job process (goal: < 5 ms at 16 agents on PostgreSQL); speed-up: jobs/s against the first row of the same database");
}

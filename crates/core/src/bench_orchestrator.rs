//! `sweep bench orchestrator`: the scheduler with jobs that train nothing (`model.backbone:
//! noop`), so what is measured is the orchestrator itself: claiming, ticket writing,
//! event streaming, result recording — and, separately, the worker process start-up.

use crate::scheduler::{self, DeviceKind, RunOptions};
use crate::sweepfile;
use anyhow::Result;
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
        db: dir.join("bench.db"),
        runs: Some(dir.join("runs")),
        device: DeviceKind::Cpu,
        workers,
        gpus: vec![],
        per_gpu: 1,
        exe: None,
        adopt: false,
    };
    let t = Instant::now();
    let summary = scheduler::run(&spec, &opts).await?;
    let wall = t.elapsed().as_secs_f64();
    let n = summary.attempts.max(1) as f64;
    let overhead_ms = summary.overhead.as_secs_f64() * 1e3 / n;
    let startup_ms = summary.startup.as_secs_f64() * 1e3 / summary.startup_samples.max(1) as f64;
    println!(
        "orchestrator benchmark: {jobs} noop jobs, {workers} workers, SQLite at {}",
        opts.db.display()
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

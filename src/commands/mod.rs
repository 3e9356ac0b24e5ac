//! One function per command. Commands that train need the `train` feature (libtorch); the
//! rest (plan, status, report, show) run on any machine that has the results database.

use crate::cli::{
    AgentArgs, BenchServeArgs, BenchTrainArgs, CompareArgs, DeviceArg, PlanFormat, PlotArgs,
    ReportArgs, RunArgs, ServeArgs, SlotArgs, SlurmArgs,
};
use crate::output::emit;

mod bench_orchestrator;
mod bench_proposal;
mod bench_search;
mod bench_support;
mod evaluate;
mod export;
mod predict;

use anyhow::{bail, Context, Result};
pub use bench_proposal::bench_proposal;
pub use bench_search::bench_search;
pub use evaluate::evaluate;
pub use export::export;
pub use predict::{bench_predict, predict};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;
use sweep_core::report::{self, ReportOptions};
use sweep_core::scheduler::{self, AgentOptions, DeviceKind, RunOptions, RunSummary};
use sweep_core::store::DbLocation;
use sweep_core::{slurm, store, sweepfile};

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// `sweep run`: check the data, train what has no result, print the leaderboard.
pub fn run(args: RunArgs) -> Result<ExitCode> {
    let spec = sweepfile::load(&args.file, &args.set)?;
    let plan = spec.plan()?;
    let fingerprints = sweep_data::check_datasets(&plan)?;
    if args.enqueue_only {
        return enqueue(&spec, &plan, &args.db.db, args.slots.runs.as_deref());
    }
    if args.slots.worker_exe.is_none() {
        require_training("sweep run")?;
    }
    let opts = RunOptions {
        adopt: args.adopt,
        ..run_options(&args.db.db, &args.slots)?
    };
    runtime()?.block_on(async {
        let store = store::open(&opts.db).await?;
        for w in report::changed_since(store.as_ref(), &spec.name, &fingerprints).await? {
            eprintln!("warning: {w}");
        }
        store.close().await;
        let summary = scheduler::run(&spec, &opts).await?;
        eprintln!("sweep {}: {}", spec.name, summary_line(&summary));
        if summary.interrupted {
            eprintln!("interrupted: run the same command again to resume");
        } else if !args.no_report {
            let store = store::open(&opts.db).await?;
            let ropts = ReportOptions {
                sweep: Some(spec.name.clone()),
                ..ReportOptions::default()
            };
            emit(&report::report(store.as_ref(), &ropts).await?)?;
        }
        Ok(ExitCode::from(summary.exit_code()))
    })
}

/// `sweep run --enqueue-only`: register the jobs for agents and say how to start them.
fn enqueue(
    spec: &sweepfile::SweepSpec,
    plan: &[sweepfile::PlannedJob],
    db: &DbLocation,
    runs: Option<&Path>,
) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let store = store::open(db).await?;
        let (_, added, existing) = scheduler::register(store.as_ref(), spec, plan, runs).await?;
        eprintln!(
            "sweep {}: {added} job(s) enqueued, {existing} already there, in {db}; start agents with \
             `sweep agent --db ... --sweep {}` (or `sweep slurm`)",
            spec.name, spec.name
        );
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

fn run_options(db: &DbLocation, slots: &SlotArgs) -> Result<RunOptions> {
    if !(slots.lease.is_finite() && slots.lease >= 0.3) {
        bail!("--lease {}: give at least 0.3 seconds", slots.lease);
    }
    Ok(RunOptions {
        runs: slots.runs.clone(),
        device: if slots.gpus.is_empty() {
            device_kind(slots.device)
        } else {
            DeviceKind::Cuda
        },
        workers: slots.workers,
        gpus: slots.gpus.clone(),
        per_gpu: slots.per_gpu,
        lease: Duration::from_secs_f64(slots.lease),
        exe: slots.worker_exe.clone(),
        ..RunOptions::new(db.clone())
    })
}

/// `sweep agent`: pull jobs until none is left.
pub fn agent(args: AgentArgs) -> Result<ExitCode> {
    if args.slots.worker_exe.is_none() {
        require_training("sweep agent")?;
    }
    if !(args.idle_exit.is_finite() && args.idle_exit >= 0.0) {
        bail!("--idle-exit {}: give seconds, 0 or more", args.idle_exit);
    }
    let opts = AgentOptions {
        run: run_options(&args.db.db, &args.slots)?,
        sweeps: args.sweeps.clone(),
        max_jobs: args.max_jobs,
        idle_exit: Duration::from_secs_f64(args.idle_exit),
        announce_ready: args.json,
    };
    // One thread: an agent waits on its job processes and the database; on a node running
    // many agents, more threads only contend for the cores the jobs need.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let summary = scheduler::agent(&opts).await?;
        eprintln!(
            "agent {} on {}: {}",
            sweep_core::store::Owner::current(),
            opts.run.db,
            summary_line(&summary)
        );
        if args.json {
            emit(&serde_json::to_string(&summary_json(&summary))?)?;
        }
        Ok(ExitCode::from(summary.exit_code()))
    })
}

fn summary_json(s: &RunSummary) -> serde_json::Value {
    serde_json::json!({
        "attempts": s.attempts,
        "succeeded": s.succeeded,
        "failed": s.failed,
        "diverged": s.diverged,
        "retried": s.retried,
        "handed_back": s.handed_back,
        "superseded": s.superseded,
        "interrupted": s.interrupted,
        "elapsed_s": s.elapsed.as_secs_f64(),
        "overhead_s": s.overhead.total().as_secs_f64(),
        "startup_s": s.startup.as_secs_f64(),
        "startup_samples": s.startup_samples,
        "cpu_s": sweep_core::scheduler::overhead::own_cpu_secs(),
    })
}

fn summary_line(s: &RunSummary) -> String {
    let mut line = format!(
        "{} job(s) planned, {} new; this run: {} succeeded, {} diverged, {} failed, {} retried, {} attempt(s) in {:.1}s",
        s.planned,
        s.added,
        s.succeeded,
        s.diverged,
        s.failed,
        s.retried,
        s.attempts,
        s.elapsed.as_secs_f64()
    );
    if s.paused > 0 {
        line += &format!(", {} paused at a rung", s.paused);
    }
    if s.handed_back + s.superseded + s.store_errors > 0 {
        line += &format!(
            "; {} handed back (runs folder not visible), {} taken over by another agent, {} not recorded (store error)",
            s.handed_back, s.superseded, s.store_errors
        );
    }
    line
}

/// `sweep slurm`: enqueue the sweep, write the sbatch script, submit it if asked.
pub fn slurm(args: SlurmArgs) -> Result<ExitCode> {
    let spec = sweepfile::load(&args.file, &args.set)?;
    let plan = spec.plan()?;
    let out = match &args.out {
        Some(o) => o.clone(),
        None => args.file.parent().unwrap_or(Path::new(".")).join("slurm"),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let out = std::fs::canonicalize(&out)?;
    let job = slurm::SlurmJob {
        sweep: spec.name.clone(),
        agents: args.agents,
        gpus_per_agent: args.gpus_per_agent,
        per_gpu: args.per_gpu,
        workers: args.workers,
        cpus_per_agent: args.cpus_per_agent,
        partition: args.partition.clone(),
        time: args.time.clone(),
        sbatch_args: args.sbatch_args.clone(),
        exe: std::env::current_exe().context("locating the sweep executable")?,
        db_for_script: slurm::db_url_for_script(&args.db.db.secret()),
        runs: args.runs.clone(),
        log_dir: out.clone(),
        job_name: format!("sweep-{}", spec.name),
    };
    job.validate()
        .map_err(|e| anyhow::anyhow!("sweep slurm: {}", e.0))?;
    if matches!(args.db.db, DbLocation::Sqlite(_)) && args.agents > 1 {
        eprintln!(
            "warning: {} is a SQLite file: agents on several nodes need a PostgreSQL server \
             (--db postgres://...); SQLite over a network file system is not safe",
            args.db.db
        );
    }
    enqueue(&spec, &plan, &args.db.db, args.runs.as_deref())?;
    let script = job.script();
    let path = out.join(format!("{}.sbatch", job.job_name));
    std::fs::write(&path, &script).with_context(|| format!("writing {}", path.display()))?;
    emit(&script)?;
    eprintln!("wrote {}", path.display());
    if args.submit {
        // The URL (and its password) reaches the tasks through the environment, not the script.
        std::env::set_var("SWEEP_DB", args.db.db.secret());
        let id = slurm::submit(&path)?;
        eprintln!("submitted Slurm job {id}: {} agent(s); `sweep status --db ...` shows which node runs each job", args.agents);
        emit(&id)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `sweep serve`: the dashboard, until Ctrl-C.
pub fn serve(args: ServeArgs) -> Result<ExitCode> {
    let opts = sweep_serve::ServeOptions {
        db: args.db.db.clone(),
        bind: args.bind,
        port: args.port,
        token: args.token.clone(),
        allow_hosts: args.allow_hosts.clone(),
    };
    runtime()?.block_on(async {
        let server = sweep_serve::Server::bind(&opts).await?;
        eprintln!("sweep serve: {} (read-only) at {}", opts.db, server.url);
        if !args.bind.is_loopback() {
            eprintln!(
                "listening on {}: anyone who can reach it needs the token in that URL",
                server.addr
            );
        }
        if args.open {
            let _ = std::process::Command::new("xdg-open")
                .arg(&server.url)
                .spawn();
        }
        tokio::select! {
            r = server.run() => r?,
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `sweep db copy`: every (or one) sweep from one database to another.
pub fn db_copy(from: &DbLocation, to: &DbLocation, sweep: Option<&str>) -> Result<ExitCode> {
    if from == to {
        bail!("sweep db copy: --from and --to are the same database ({from})");
    }
    runtime()?.block_on(async {
        let source = store::open_existing(from).await?;
        let dumps = source.export(sweep).await?;
        let target = store::open(to).await?;
        let mut total = store::CopySummary::default();
        for dump in &dumps {
            let s = target.import(dump).await?;
            eprintln!(
                "sweep {}: {} job(s) copied, {} already in {to}",
                dump.name, s.jobs_added, s.jobs_skipped
            );
            total.add(s);
        }
        eprintln!(
            "copied {} sweep(s) from {from} to {to}: {} new sweep(s), {} job(s) added, {} skipped",
            dumps.len(),
            total.sweeps_added,
            total.jobs_added,
            total.jobs_skipped
        );
        source.close().await;
        target.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// `sweep plan`: the jobs a file expands to.
pub fn plan(file: &Path, set: &[String], format: PlanFormat) -> Result<ExitCode> {
    let spec = sweepfile::load(file, set)?;
    let plan = spec.plan()?;
    sweep_data::check_datasets(&plan)?;
    emit(&match format {
        PlanFormat::Json => report::plan_json(&spec, &plan)?,
        PlanFormat::Table => report::plan_table(&spec, &plan),
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `sweep data check PATH`: exit status 1 when any check fails.
pub fn data_check(path: &Path, format: PlanFormat) -> Result<ExitCode> {
    let report = sweep_data::check::check(path)?;
    emit(&match format {
        PlanFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
        PlanFormat::Table => sweep_data::check::render(&report),
    })?;
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `sweep data synth PATH`: refuses a folder that already holds a data set.
pub fn data_synth(path: &Path, synth: sweep_data::synthetic::Synthetic) -> Result<ExitCode> {
    if sweep_core::dataset::DataSet::is_described(path) {
        bail!(
            "{}: already holds a data set; give a new folder",
            path.display()
        );
    }
    if synth.size < 16 || synth.cases == 0 || synth.classes.is_empty() || synth.per_group == 0 {
        bail!("give --size 16 or more, at least one case, one class and one case per patient");
    }
    synth
        .write(path)
        .with_context(|| format!("writing the data set to {}", path.display()))?;
    eprintln!(
        "{}: {} cases of {}x{} in nnU-Net v2 layout, classes background, {}; check it with `sweep data check {}`",
        path.display(),
        synth.cases,
        synth.size,
        synth.size,
        synth.classes.join(", "),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `sweep status`.
pub fn status(db: &DbLocation, sweep: Option<&str>) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let store = store::open_existing(db).await?;
        emit(&report::status(store.as_ref(), sweep).await?)?;
        Ok(ExitCode::SUCCESS)
    })
}

/// `sweep replay SWEEP`.
pub fn replay(db: &DbLocation, sweep: &str, json: bool) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let store = store::open_existing(db).await?;
        let Some(id) = store.sweep_id(sweep).await? else {
            let known = store.sweeps().await?.into_iter().map(|s| s.name).collect();
            return Err(store::StoreError::no_such_sweep(known, sweep));
        };
        let log = store.search_log(id).await?;
        if log.events.is_empty() {
            bail!("sweep {sweep:?} is not an adaptive search (it has no `search:`): nothing to replay");
        }
        let replay = report::replay::replay(&log);
        if json {
            let out = serde_json::json!({
                "sweep": sweep,
                "events": log.events,
                "recorded": log.decisions,
                "derived": replay.derived,
                "agrees": replay.agrees(),
                "difference": replay.difference,
            });
            emit(&(serde_json::to_string_pretty(&out)? + "\n"))?;
        } else {
            emit(&replay.text)?;
        }
        Ok(if replay.agrees() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

/// `sweep report`.
pub fn report(args: ReportArgs) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let store = store::open_existing(&args.db.db).await?;
        let rows = store.report_rows(args.options.sweep.as_deref()).await?;
        if rows.is_empty() {
            bail!(
                "{}: no jobs{}",
                args.db.db,
                args.options
                    .sweep
                    .as_ref()
                    .map(|s| format!(" in sweep {s:?}"))
                    .unwrap_or_default()
            );
        }
        emit(&report::report(store.as_ref(), &args.options).await?)?;
        if let Some(dir) = &args.plot {
            write_plots(store.as_ref(), &args.options, dir, &[]).await?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `sweep compare A B`.
pub fn compare(args: CompareArgs) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let store = store::open_existing(&args.db.db).await?;
        let c = report::compare::compare(
            store.as_ref(),
            args.sweep.as_deref(),
            &args.a,
            &args.b,
            &args.metric,
            &args.split,
        )
        .await?;
        match args.format {
            PlanFormat::Table => emit(&report::compare::render(&c))?,
            PlanFormat::Json => emit(&(serde_json::to_string_pretty(&c)? + "\n"))?,
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `sweep plot DIR`.
pub fn plot(args: PlotArgs) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let store = store::open_existing(&args.db.db).await?;
        write_plots(store.as_ref(), &args.options, &args.dir, &args.images).await?;
        Ok(ExitCode::SUCCESS)
    })
}

async fn write_plots(
    store: &dyn sweep_core::store::Store,
    options: &ReportOptions,
    dir: &Path,
    images: &[String],
) -> Result<()> {
    let pictures = sweep_data::pictures::Overlays::new(images);
    for path in report::write_plots(store, options, dir, &pictures).await? {
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// `sweep show JOB`.
pub fn show(db: &DbLocation, job: &str, images: bool, format: PlanFormat) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let store = store::open_existing(db).await?;
        let view = report::show::JobView::load(store.as_ref(), job, images).await?;
        match format {
            PlanFormat::Table => emit(&view.text())?,
            PlanFormat::Json => emit(&view.json()?)?,
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `sweep bench orchestrator`.
pub fn bench_orchestrator(
    jobs: usize,
    workers: usize,
    agents: &[usize],
    db: Option<DbLocation>,
) -> Result<ExitCode> {
    // No libtorch needed: the jobs are the no-op worker's and a program's.
    if agents.is_empty() {
        runtime()?.block_on(bench_orchestrator::run(jobs, workers))?;
    } else {
        runtime()?.block_on(bench_orchestrator::agents(jobs, agents, db))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `sweep bench data`.
pub fn bench_data(
    cases: usize,
    size: u32,
    steps: usize,
    dir: Option<std::path::PathBuf>,
) -> Result<ExitCode> {
    require_training("sweep bench data")?;
    let dir = match dir {
        Some(d) => d,
        None => bench_orchestrator::tempfile_dir("bench-data")?,
    };
    let opts = sweep_data::bench::BenchData {
        cases,
        size,
        steps,
        dir,
        exe: std::env::current_exe().context("locating the sweep binary")?,
    };
    print!("{}", sweep_data::bench::run(&opts)?);
    Ok(ExitCode::SUCCESS)
}

/// `sweep bench serve`: the load time of a large sweep's page (median of 5), then the same
/// no-op sweep run twice, without and with a dashboard polling it as an open page does.
pub fn bench_serve(args: BenchServeArgs) -> Result<ExitCode> {
    require_training("sweep bench serve")?;
    // The runs' jobs: the toy worker at 20 ms per iteration. Its job processes inherit this
    // process's environment; set before any thread exists.
    std::env::set_var("SWEEP_TOY_ITER_MS", "20");
    use sweep_serve::bench;
    let dir = bench_orchestrator::tempfile_dir("bench-serve")?;
    runtime()?.block_on(async {
        let db = dir.join("large.db");
        let t = std::time::Instant::now();
        bench::make_large_sweep(&db, args.jobs, args.points).await?;
        println!("made a sweep of {} jobs x {} curve points in {:.1} s", args.jobs, args.points, t.elapsed().as_secs_f64());
        let addr = bench::start(&db).await?;
        let mut loads = Vec::new();
        let mut bytes = 0;
        for _ in 0..5 {
            let (d, b) = bench::load_sweep_page(addr, "large").await?;
            loads.push(d.as_secs_f64());
            bytes = b;
        }
        loads.sort_by(f64::total_cmp);
        println!(
            "sweep page (page, scripts, leaderboard, jobs): median {:.3} s, min {:.3} s, max {:.3} s over 5 loads, {:.1} MB (goal < 1 s)",
            loads[2], loads[0], loads[4], bytes as f64 / 1e6
        );
        let plain = timed_run(&dir.join("plain"), args.run_jobs, false).await?;
        let watched = timed_run(&dir.join("watched"), args.run_jobs, true).await?;
        println!(
            "sweep run of {} no-op jobs: {:.2} s alone, {:.2} s with a dashboard polling as an open page does (every 1.5 s) ({} polls, all answered): ratio {:.3}",
            args.run_jobs, plain.0, watched.0, watched.1, watched.0 / plain.0
        );
        Ok::<_, anyhow::Error>(())
    })?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ExitCode::SUCCESS)
}

/// Runs a no-op sweep (jobs of 20 iterations on the toy worker) on a fresh database in
/// `dir`; with `watched`, a dashboard polls it.
async fn timed_run(dir: &Path, jobs: usize, watched: bool) -> Result<(f64, usize)> {
    std::fs::create_dir_all(dir)?;
    let spec = bench_orchestrator::bench_sweep(dir, "watched", jobs, 20)?;
    let exe = std::env::current_exe().context("locating the sweep binary")?;
    let toy = bench_orchestrator::sibling_worker(&exe, bench_orchestrator::TOY_WORKER)?;
    let db = dir.join("run.db");
    store::open(&db).await?.close().await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let poller = if watched {
        let addr = sweep_serve::bench::start(&db).await?;
        let every = std::time::Duration::from_millis(1500);
        Some(tokio::spawn(sweep_serve::bench::poll_like_a_page(
            addr,
            "watched".into(),
            every,
            stop_rx,
        )))
    } else {
        None
    };
    let opts = RunOptions {
        workers: 2,
        exe: Some(toy),
        ..RunOptions::new(db.clone().into())
    };
    let t = std::time::Instant::now();
    let summary = scheduler::run(&spec, &opts).await?;
    let wall = t.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    let polls = match poller {
        Some(p) => p.await.context("the polling task")??,
        None => 0,
    };
    anyhow::ensure!(
        summary.succeeded == jobs,
        "{} of {jobs} jobs succeeded",
        summary.succeeded
    );
    Ok((wall, polls))
}

fn device_kind(d: DeviceArg) -> DeviceKind {
    match d {
        DeviceArg::Cpu => DeviceKind::Cpu,
        DeviceArg::Cuda => DeviceKind::Cuda,
    }
}

#[cfg(feature = "train")]
pub(crate) fn require_training(_: &str) -> Result<()> {
    Ok(())
}

#[cfg(not(feature = "train"))]
pub(crate) fn require_training(what: &str) -> Result<()> {
    bail!(
        "{what}: this sweep binary was built without training (cargo feature `train`, which needs \
         libtorch); it can plan, report, show and give status. Build it with default features to train."
    )
}

/// `sweep bench train`.
#[cfg(feature = "train")]
pub fn bench_train(args: BenchTrainArgs) -> Result<ExitCode> {
    use sweep_train::bench_train::{
        bench_train, parse_shapes, rows_json, BenchTrainArgs as Bench, Recipe,
    };
    let head = serde_yaml::from_str(&args.head)
        .with_context(|| format!("--head {}: expected fcn, deeplabv3 or pspnet", args.head))?;
    let shapes = parse_shapes(&args.shapes).map_err(|e| anyhow::anyhow!("--shapes: {e}"))?;
    let recipes = args
        .precision
        .split(',')
        .map(|r| {
            r.parse::<Recipe>()
                .map_err(|e| anyhow::anyhow!("--precision: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let bench = Bench {
        device: args.device.choice(),
        shapes,
        recipes,
        burn_kernels: !args.no_burn_kernels,
        head,
        base_channels: args.base_channels,
        steps: args.steps,
        warmup: args.warmup,
        profile: args.profile,
    };
    // The JSON file is rewritten after every row, so a run cut short keeps its rows.
    let mut write_error = None;
    let run = bench_train(&bench, |run| {
        if let Some(path) = &args.json {
            let text = serde_json::to_string_pretty(&rows_json(&bench, run)).expect("JSON");
            if let Err(e) = std::fs::write(path, text) {
                write_error.get_or_insert(anyhow::anyhow!("writing {}: {e}", path.display()));
            }
        }
    })?;
    if let Some(e) = write_error {
        return Err(e);
    }
    Ok(if run.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(not(feature = "train"))]
pub fn bench_train(_: BenchTrainArgs) -> Result<ExitCode> {
    require_training("sweep bench train")?;
    unreachable!("require_training fails without the train feature")
}

/// `sweep doctor`: exit status 1 when the device cannot train.
#[cfg(feature = "train")]
pub fn doctor(device: DeviceArg, json: bool) -> Result<ExitCode> {
    use sweep_train::doctor::{diagnose, render};
    let d = diagnose(device.choice());
    if json {
        println!("{}", serde_json::to_string_pretty(&d)?);
    } else {
        println!("{}", render(&d));
    }
    Ok(if d.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(not(feature = "train"))]
pub fn doctor(_: DeviceArg, _: bool) -> Result<ExitCode> {
    require_training("sweep doctor")?;
    unreachable!("require_training fails without the train feature")
}

/// `sweep worker TICKET` (started by the scheduler).
#[cfg(feature = "train")]
pub fn worker(ticket: &Path) -> Result<ExitCode> {
    let code = sweep_train::job_process::main(ticket)?;
    Ok(ExitCode::from(code as u8))
}

#[cfg(not(feature = "train"))]
pub fn worker(_: &Path) -> Result<ExitCode> {
    require_training("sweep worker")?;
    unreachable!("require_training fails without the train feature")
}

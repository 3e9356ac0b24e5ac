//! One function per command. Commands that train need the `train` feature (libtorch); the
//! rest (plan, status, report, show) run on any machine that has the results database.

use crate::cli::{
    BenchTrainArgs, CompareArgs, DeviceArg, PlanFormat, PlotArgs, ReportArgs, RunArgs,
};
use crate::output::emit;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::ExitCode;
use sweep_core::report::{self, ReportOptions};
use sweep_core::scheduler::{self, DeviceKind, RunOptions, RunSummary};
use sweep_core::{bench_orchestrator, store, sweepfile};

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// `sweep run`: check the data, train what has no result, print the leaderboard.
pub fn run(args: RunArgs) -> Result<ExitCode> {
    require_training("sweep run")?;
    let spec = sweepfile::load(&args.file, &args.set)?;
    sweep_data::check_datasets(&spec.plan()?)?;
    let opts = RunOptions {
        db: args.db.db.clone(),
        runs: args.runs,
        device: if args.gpus.is_empty() {
            device_kind(args.device)
        } else {
            DeviceKind::Cuda
        },
        workers: args.workers,
        gpus: args.gpus,
        per_gpu: args.per_gpu,
        exe: None,
        adopt: args.adopt,
    };
    runtime()?.block_on(async {
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

fn summary_line(s: &RunSummary) -> String {
    format!(
        "{} job(s) planned, {} new; this run: {} succeeded, {} diverged, {} failed, {} retried, {} attempt(s) in {:.1}s",
        s.planned,
        s.added,
        s.succeeded,
        s.diverged,
        s.failed,
        s.retried,
        s.attempts,
        s.elapsed.as_secs_f64()
    )
}

/// `sweep plan`: the jobs a file expands to.
pub fn plan(file: &Path, set: &[String], format: PlanFormat) -> Result<ExitCode> {
    let spec = sweepfile::load(file, set)?;
    let plan = spec.plan()?;
    emit(&match format {
        PlanFormat::Json => report::plan_json(&spec, &plan)?,
        PlanFormat::Table => report::plan_table(&spec, &plan),
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `sweep status`.
pub fn status(db: &Path, sweep: Option<&str>) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let store = store::open_existing(db).await?;
        emit(&report::status(store.as_ref(), sweep).await?)?;
        Ok(ExitCode::SUCCESS)
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
                args.db.db.display(),
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
pub fn show(db: &Path, job: &str, images: bool) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let store = store::open_existing(db).await?;
        emit(&report::show(store.as_ref(), job, images).await?)?;
        Ok(ExitCode::SUCCESS)
    })
}

/// `sweep bench orchestrator`.
pub fn bench_orchestrator(jobs: usize, workers: usize) -> Result<ExitCode> {
    require_training("sweep bench orchestrator")?;
    runtime()?.block_on(bench_orchestrator::run(jobs, workers))?;
    Ok(ExitCode::SUCCESS)
}

fn device_kind(d: DeviceArg) -> DeviceKind {
    match d {
        DeviceArg::Cpu => DeviceKind::Cpu,
        DeviceArg::Cuda => DeviceKind::Cuda,
    }
}

#[cfg(feature = "train")]
fn require_training(_: &str) -> Result<()> {
    Ok(())
}

#[cfg(not(feature = "train"))]
fn require_training(what: &str) -> Result<()> {
    bail!(
        "{what}: this sweep binary was built without training (cargo feature `train`, which needs \
         libtorch); it can plan, report, show and give status. Build it with default features to train."
    )
}

/// `sweep bench train`.
#[cfg(feature = "train")]
pub fn bench_train(args: BenchTrainArgs) -> Result<ExitCode> {
    use sweep_train::bench_train::{bench_train, parse_shapes, BenchTrainArgs as Bench, Recipe};
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
    bench_train(&Bench {
        device: match args.device {
            DeviceArg::Cpu => sweep_core::protocol::DeviceChoice::Cpu,
            DeviceArg::Cuda => sweep_core::protocol::DeviceChoice::Cuda(0),
        },
        shapes,
        recipes,
        burn_kernels: !args.no_burn_kernels,
        head,
        base_channels: args.base_channels,
        steps: args.steps,
        warmup: args.warmup,
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "train"))]
pub fn bench_train(_: BenchTrainArgs) -> Result<ExitCode> {
    require_training("sweep bench train")?;
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

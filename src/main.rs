//! The `sweep` command line. Each subcommand is a thin shell over the library.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use sweep::report::{self, Format, ReportOptions};
use sweep::scheduler::{self, DeviceKind, RunOptions};
use sweep::store::Store;
use sweep::{bench, spec, worker};

#[derive(Parser)]
#[command(
    name = "sweep",
    version,
    about = "Reproducible experiment sweeps for medical-image segmentation (burn + libtorch, SQLite)"
)]
struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct DbArg {
    /// Results database (SQLite file).
    #[arg(long, env = "SWEEP_DB", default_value = "sweep.db")]
    db: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run a sweep: every job without a result is trained; finished jobs are never rerun.
    Run {
        file: PathBuf,
        #[command(flatten)]
        db: DbArg,
        /// Folder for checkpoints, predictions and logs (default: runs/ beside the database).
        #[arg(long)]
        runs: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
        device: DeviceArg,
        /// Parallel jobs on CPU.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// GPUs to use, e.g. 0,1 (implies --device cuda).
        #[arg(long, value_delimiter = ',')]
        gpus: Vec<usize>,
        /// Jobs per GPU.
        #[arg(long, default_value_t = 1)]
        per_gpu: usize,
        /// Override a key of the sweep file, e.g. --set base.iters=20 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Don't print the leaderboard at the end.
        #[arg(long)]
        no_report: bool,
    },
    /// Print the jobs a sweep file expands to, without running anything.
    Plan {
        file: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[arg(long, value_enum, default_value_t = PlanFormat::Table)]
        format: PlanFormat,
    },
    /// Job counts by state, and the running jobs with iteration and ETA.
    Status {
        /// Sweep name (default: all sweeps in the database).
        sweep: Option<String>,
        #[command(flatten)]
        db: DbArg,
    },
    /// The leaderboard: one row per configuration, seeds as mean ± std.
    Report {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        sweep: Option<String>,
        /// Metric to sort by: mDice, mIoU, mAcc, mFscore, aAcc, Dice.1, IoU.1, ...
        #[arg(long, default_value = "mDice")]
        sort: String,
        /// Ascending order (default: best first).
        #[arg(long)]
        asc: bool,
        #[arg(long)]
        top: Option<usize>,
        #[arg(long, value_enum, default_value_t = FormatArg::Table)]
        format: FormatArg,
        /// Extra metric columns, e.g. --columns aAcc,Dice.1,IoU.1
        #[arg(long, value_delimiter = ',')]
        columns: Vec<String>,
        /// Include jobs that did not succeed (with their status).
        #[arg(long)]
        all: bool,
        /// Also draw the leaderboard and the training curves as SVG files into this folder.
        #[arg(long)]
        plot: Option<PathBuf>,
    },
    /// Benchmarks (ratios against a baseline measured in the same run).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Internal: run one job (started by `sweep run`, one process per job).
    #[command(hide = true)]
    Worker { ticket: PathBuf },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// One training step in sweep (burn-tch) vs PyTorch eager, same network and batch.
    Train {
        #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
        device: DeviceArg,
        /// Rows as BATCHxCROP, comma-separated (the study-sized GPU table: 2x256,4x256,16x256,2x320).
        #[arg(long, default_value = "2x64", value_parser = bench::train::parse_shapes)]
        shapes: std::vec::Vec<(usize, usize)>,
        /// Recipes, comma-separated: fp32, bf16 (PyTorch: autocast), each optionally +nhwc
        /// (channels_last on both sides), e.g. fp32,fp32+nhwc,bf16,bf16+nhwc.
        #[arg(long, value_delimiter = ',', default_value = "fp32")]
        precision: Vec<bench::Recipe>,
        /// Skip timing sweep on burn's own conv / batch norm (the baseline of trainer::ops).
        #[arg(long)]
        no_burn_kernels: bool,
        #[arg(long, default_value = "fcn")]
        head: String,
        #[arg(long, default_value_t = 64)]
        base_channels: usize,
        #[arg(long, default_value_t = 10)]
        steps: usize,
        #[arg(long, default_value_t = 3)]
        warmup: usize,
    },
    /// The orchestrator alone: jobs that train nothing, to measure its own overhead.
    Orchestrator {
        #[arg(long, default_value_t = 1000)]
        jobs: usize,
        #[arg(long, default_value_t = 8)]
        workers: usize,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DeviceArg {
    Cpu,
    Cuda,
}

#[derive(Clone, Copy, ValueEnum)]
enum PlanFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Table,
    Markdown,
    Csv,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose, matches!(cli.command, Command::Worker { .. }));
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(verbose: u8, worker: bool) {
    let default = match (worker, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "info,sweep=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Worker { ticket } => worker::main(&ticket).map(|_| ExitCode::SUCCESS),
        Command::Plan { file, set, format } => {
            let spec = spec::load(&file, &set)?;
            let plan = spec.plan()?;
            match format {
                PlanFormat::Json => println!("{}", report::plan_json(&spec, &plan)?),
                PlanFormat::Table => println!("{}", report::plan_table(&spec, &plan)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            file,
            db,
            runs,
            device,
            workers,
            gpus,
            per_gpu,
            set,
            no_report,
        } => {
            let spec = spec::load(&file, &set)?;
            let device = if !gpus.is_empty() {
                DeviceKind::Cuda
            } else {
                device.into()
            };
            let opts = RunOptions {
                db: db.db.clone(),
                runs,
                device,
                workers,
                gpus,
                per_gpu,
                exe: None,
            };
            runtime()?.block_on(async {
                let summary = scheduler::run(&spec, &opts).await?;
                eprintln!(
                    "sweep {}: {} job(s) planned, {} new; this run: {} succeeded, {} diverged, {} failed, {} retried, {} attempt(s) in {:.1}s",
                    spec.name,
                    summary.planned,
                    summary.added,
                    summary.succeeded,
                    summary.diverged,
                    summary.failed,
                    summary.retried,
                    summary.attempts,
                    summary.elapsed.as_secs_f64()
                );
                if summary.interrupted {
                    eprintln!("interrupted: run the same command again to resume");
                    return Ok(ExitCode::from(130));
                }
                if !no_report {
                    let store = Store::open(&db.db).await?;
                    let rows = store.report_rows(Some(&spec.name)).await?;
                    let opts = ReportOptions { sweep: Some(spec.name.clone()), ..ReportOptions::default() };
                    println!("{}", report::render(&rows, &opts)?);
                }
                Ok(if summary.failed > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
            })
        }
        Command::Status { sweep, db } => runtime()?.block_on(async {
            let store = Store::open_existing(&db.db).await?;
            println!("{}", report::status(&store, sweep.as_deref()).await?);
            Ok(ExitCode::SUCCESS)
        }),
        Command::Report {
            db,
            sweep,
            sort,
            asc,
            top,
            format,
            columns,
            all,
            plot,
        } => runtime()?.block_on(async {
            let store = Store::open_existing(&db.db).await?;
            let rows = store.report_rows(sweep.as_deref()).await?;
            if rows.is_empty() {
                bail!(
                    "{}: no jobs{}",
                    db.db.display(),
                    sweep
                        .map(|s| format!(" in sweep {s:?}"))
                        .unwrap_or_default()
                );
            }
            let opts = ReportOptions {
                sweep,
                sort,
                asc,
                top,
                format: format.into(),
                columns,
                all,
                split: None,
            };
            println!("{}", report::render(&rows, &opts)?);
            if let Some(dir) = plot {
                for path in report::write_plots(&store, &opts, &dir).await? {
                    eprintln!("wrote {}", path.display());
                }
            }
            Ok(ExitCode::SUCCESS)
        }),
        Command::Bench(BenchCommand::Train {
            device,
            shapes,
            precision,
            no_burn_kernels,
            head,
            base_channels,
            steps,
            warmup,
        }) => {
            let head = serde_yaml::from_str(&head)
                .with_context(|| format!("--head {head}: expected fcn, deeplabv3 or pspnet"))?;
            let device = match device {
                DeviceArg::Cpu => sweep::trainer::DeviceChoice::Cpu,
                DeviceArg::Cuda => sweep::trainer::DeviceChoice::Cuda(0),
            };
            bench::train::bench_train(&bench::train::BenchTrainArgs {
                device,
                shapes,
                recipes: precision,
                burn_kernels: !no_burn_kernels,
                head,
                base_channels,
                steps,
                warmup,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Orchestrator { jobs, workers }) => {
            runtime()?.block_on(bench::orchestrator::run(jobs, workers))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

impl From<DeviceArg> for DeviceKind {
    fn from(d: DeviceArg) -> Self {
        match d {
            DeviceArg::Cpu => DeviceKind::Cpu,
            DeviceArg::Cuda => DeviceKind::Cuda,
        }
    }
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Table => Format::Table,
            FormatArg::Markdown => Format::Markdown,
            FormatArg::Csv => Format::Csv,
            FormatArg::Json => Format::Json,
        }
    }
}

//! The command line: every subcommand and its flags (clap).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use sweep_core::report::ReportOptions;
use sweep_core::store::DbLocation;

#[derive(Parser)]
#[command(
    name = "sweep",
    version = concat!(env!("CARGO_PKG_VERSION"), " ", env!("SWEEP_GIT_COMMIT")),
    about = "Reproducible experiment sweeps for medical-image segmentation (burn + libtorch, SQLite)"
)]
pub struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Clone)]
pub struct DbArg {
    /// Results database: a SQLite file, or postgres://user@host:port/database (shared by
    /// agents on many machines; the password may be in the URL, it is never printed).
    #[arg(
        long,
        env = "SWEEP_DB",
        default_value = "sweep.db",
        hide_env_values = true
    )]
    pub db: DbLocation,
}

/// Where jobs run on this machine, and how long a claim holds.
#[derive(Args, Clone)]
pub struct SlotArgs {
    /// Folder for checkpoints, predictions and logs (wins over the sweep file's `runs:`;
    /// default: runs/ beside a SQLite file, ./runs for a server). Agents on several nodes
    /// need one folder they all see.
    #[arg(long)]
    pub runs: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    /// Parallel jobs on CPU.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// GPUs to use, e.g. 0,1 (implies --device cuda).
    #[arg(long, value_delimiter = ',')]
    pub gpus: Vec<usize>,
    /// Jobs per GPU.
    #[arg(long, default_value_t = 1)]
    pub per_gpu: usize,
    /// Seconds a claim holds without a heartbeat (renewed every third of it); after that
    /// any agent takes the job back and resumes it from its checkpoint.
    #[arg(long, default_value_t = 15.0)]
    pub lease: f64,
    /// The program to run job processes with (tests and benchmarks: a worker that speaks
    /// the job protocol without training; default: this executable).
    #[arg(long, hide = true)]
    pub worker_exe: Option<PathBuf>,
}

#[derive(Args)]
pub struct RunArgs {
    pub file: PathBuf,
    #[command(flatten)]
    pub db: DbArg,
    #[command(flatten)]
    pub slots: SlotArgs,
    /// Only register the sweep's jobs, for agents (`sweep agent`, `sweep slurm`) to take.
    #[arg(long)]
    pub enqueue_only: bool,
    /// Override a key of the sweep file, e.g. --set base.iters=20 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Take results and checkpoints that another database (or an older sweep) left in the
    /// artifact folders as this database's, instead of moving them aside and training.
    #[arg(long)]
    pub adopt: bool,
    /// Don't print the leaderboard at the end.
    #[arg(long)]
    pub no_report: bool,
}

#[derive(Args)]
pub struct AgentArgs {
    #[command(flatten)]
    pub db: DbArg,
    /// Only jobs of this sweep (repeatable; default: every sweep with work).
    #[arg(long = "sweep", value_name = "NAME")]
    pub sweeps: Vec<String>,
    #[command(flatten)]
    pub slots: SlotArgs,
    /// Claim at most this many jobs, then exit once they end.
    #[arg(long)]
    pub max_jobs: Option<usize>,
    /// Once no job of its sweeps is left anywhere, wait this many seconds for new work.
    #[arg(long, default_value_t = 0.0)]
    pub idle_exit: f64,
    /// Print the run's counts as one JSON line on stdout at the end (benchmarks, scripts).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct SlurmArgs {
    pub file: PathBuf,
    #[command(flatten)]
    pub db: DbArg,
    /// Array tasks, one agent each.
    #[arg(long, default_value_t = 1)]
    pub agents: usize,
    /// GPUs per agent (0: CPU jobs).
    #[arg(long, default_value_t = 0)]
    pub gpus_per_agent: usize,
    /// Jobs per GPU.
    #[arg(long, default_value_t = 1)]
    pub per_gpu: usize,
    /// CPU jobs per agent when it has no GPU.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// CPUs per array task (default: one per job slot).
    #[arg(long)]
    pub cpus_per_agent: Option<usize>,
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit per task, as Slurm takes it (HH:MM:SS, D-HH:MM, ...).
    #[arg(long)]
    pub time: Option<String>,
    /// Extra `#SBATCH` line (repeatable), e.g. --sbatch-arg=--account=lab.
    #[arg(long = "sbatch-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub sbatch_args: Vec<String>,
    /// Artifact folder every node sees (wins over the sweep file's `runs:`).
    #[arg(long)]
    pub runs: Option<PathBuf>,
    /// Where the script and the tasks' logs go (default: slurm/ beside the sweep file).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override a key of the sweep file (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Submit the script with sbatch and print the Slurm job id.
    #[arg(long)]
    pub submit: bool,
}

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArg,
    #[arg(long, default_value_t = 8765)]
    pub port: u16,
    /// Address to listen on. Anything but loopback requires a token (one is made and
    /// printed unless --token gives it).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
    /// The token every request must carry (default: none on loopback, random otherwise).
    #[arg(long, env = "SWEEP_SERVE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A host name the dashboard is reached by besides localhost and the bound address
    /// (repeatable): requests naming any other Host are refused (DNS rebinding).
    #[arg(long = "allow-host", value_name = "NAME")]
    pub allow_hosts: Vec<String>,
    /// Open the dashboard in the default browser.
    #[arg(long)]
    pub open: bool,
}

#[derive(Subcommand)]
pub enum DbCommand {
    /// Copy sweeps with their jobs, metrics, curves and artifact records between databases
    /// (SQLite or PostgreSQL, either way); jobs the target has already are left as they are.
    Copy {
        #[arg(long)]
        from: DbLocation,
        #[arg(long)]
        to: DbLocation,
        /// Only this sweep.
        #[arg(long)]
        sweep: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum DataCommand {
    /// Read and check every file of a data set folder (nnU-Net v2 `dataset.json` or
    /// MMSeg-layout `dataset.yaml`) and print its fingerprint; exit status 1 on any problem.
    Check {
        /// The data set's folder.
        path: PathBuf,
        #[arg(long, value_enum, default_value_t = PlanFormat::Table)]
        format: PlanFormat,
    },
    /// Write a generated data set in nnU-Net v2's layout (one shape per class, cases
    /// grouped into patients): to try sweep, or to benchmark it at any scale.
    Synth {
        /// The folder to create.
        path: PathBuf,
        #[arg(long, default_value_t = 40)]
        cases: usize,
        /// Width and height, pixels.
        #[arg(long, default_value_t = 64)]
        size: u32,
        /// Foreground class names.
        #[arg(long, value_delimiter = ',', default_value = "IRF,SRF,PED")]
        classes: Vec<String>,
        /// Cases per patient.
        #[arg(long, default_value_t = 4)]
        per_patient: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

#[derive(Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub db: DbArg,
    #[command(flatten)]
    pub options: ReportOptions,
    /// Also draw the pictures (`sweep plot`) into this folder, as PNG and SVG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

#[derive(Args)]
pub struct CompareArgs {
    /// A job id, a hash prefix, or a configuration's label (all its seeds and folds).
    pub a: String,
    pub b: String,
    #[command(flatten)]
    pub db: DbArg,
    /// Only this sweep's jobs.
    #[arg(long)]
    pub sweep: Option<String>,
    /// The metric compared: mDice, mIoU, Dice.1, HD95.1, ...
    #[arg(long, default_value = "mDice")]
    pub metric: String,
    /// Evaluation split.
    #[arg(long, default_value = "val")]
    pub split: String,
    #[arg(long, value_enum, default_value_t = PlanFormat::Table)]
    pub format: PlanFormat,
}

#[derive(Args)]
pub struct PlotArgs {
    /// Folder the pictures go to (PNG and SVG of each).
    pub dir: PathBuf,
    #[command(flatten)]
    pub db: DbArg,
    #[command(flatten)]
    pub options: ReportOptions,
    /// Validation images whose predictions are overlaid (default: the best row's best,
    /// median and worst image by Dice).
    #[arg(long, value_delimiter = ',')]
    pub images: Vec<String>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a sweep: every job without a result is trained; finished jobs are never rerun.
    Run(RunArgs),
    /// Take jobs from a shared database and run them on this node until none is left.
    Agent(AgentArgs),
    /// Write (and with --submit, submit) an sbatch job array of agents for a sweep.
    Slurm(SlurmArgs),
    /// Results databases: copy sweeps between SQLite and PostgreSQL.
    #[command(subcommand)]
    Db(DbCommand),
    /// A live web dashboard of the results database (read-only; loopback unless --bind).
    Serve(ServeArgs),
    /// Data sets: check a folder before anything trains on it.
    #[command(subcommand)]
    Data(DataCommand),
    /// Print the jobs a sweep file expands to (after checking their data), without running anything.
    Plan {
        file: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[arg(long, value_enum, default_value_t = PlanFormat::Table)]
        format: PlanFormat,
    },
    /// Job counts by state, the running jobs with iteration and ETA, failed jobs with why.
    Status {
        /// Sweep name (default: all sweeps in the database).
        sweep: Option<String>,
        #[command(flatten)]
        db: DbArg,
    },
    /// An adaptive search's decision log, re-derived from the database's events with the
    /// decision step the agents ran; exit status 1 if it differs from the recorded one.
    Replay {
        sweep: String,
        #[command(flatten)]
        db: DbArg,
        /// The events and decisions as JSON (re-derived beside recorded).
        #[arg(long)]
        json: bool,
    },
    /// The leaderboard: one row per configuration, seeds as mean ± std.
    Report(ReportArgs),
    /// One job in full: config, status, attempts and why each ended, metrics, files, log.
    Show {
        /// Job id, hash prefix or label.
        job: String,
        #[command(flatten)]
        db: DbArg,
        /// Also every validation image's counts, Dice and surface distances.
        #[arg(long)]
        images: bool,
        #[arg(long, value_enum, default_value_t = PlanFormat::Table)]
        format: PlanFormat,
    },
    /// Is A better than B? The difference of a metric, its 95% interval, p-value and verdict.
    Compare(CompareArgs),
    /// Pictures: learning curves, the leaderboard with intervals, per-image Dice, overlays.
    Plot(PlotArgs),
    /// Apply a trained model (a job, a configuration's seeds and folds as an ensemble, or an
    /// exported package) to images: label PNGs, areas per class, optional probabilities.
    Predict(PredictArgs),
    /// Score a folder of predictions from any tool against a data set's labels and record it
    /// on the leaderboard beside the sweep's own rows.
    Evaluate(EvaluateArgs),
    /// Write a model as a package usable without sweep's database: metadata.json,
    /// model.safetensors (MMSegmentation's key names), model.onnx, README.md.
    Export(ExportArgs),
    /// Benchmarks (ratios against a baseline measured in the same run).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Can this machine train? The libtorch loaded, CUDA and cuDNN, a few steps on the device.
    Doctor {
        #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
        device: DeviceArg,
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Internal: run one job attempt (started by `sweep run`, one process per attempt).
    #[command(hide = true)]
    Worker { ticket: PathBuf },
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// One training step in sweep (burn-tch) vs PyTorch eager, same network and batch.
    Train(BenchTrainArgs),
    /// Slide inference at the study's size: sweep vs PyTorch eager running the same window
    /// loop on the same network, and ONNX Runtime on the exported file.
    Predict(BenchPredictArgs),
    /// The dashboard: a large sweep's page load, and a sweep run with and without it polling.
    Serve(BenchServeArgs),
    /// Search efficiency on the LCBench surrogate: random, random + ASHA and TPE + ASHA run by
    /// the offline simulator (the agents' own decision step, simulated workers) beside
    /// Optuna's random sampler + successive halving on the same harness.
    Search(BenchSearchArgs),
    /// The cost of one TPE proposal with its database transaction (1,000 finished trials,
    /// 8-D mixed space) beside Optuna's `TPESampler` `ask()` on the same space.
    Proposal(BenchProposalArgs),
    /// Data sets at scale: a generated folder of many scans checked, opened and trained on
    /// (scans/s, data wait, peak memory beside a 100-scan set).
    Data {
        #[arg(long, default_value_t = 20000)]
        cases: usize,
        /// Width and height of the generated scans.
        #[arg(long, default_value_t = 256)]
        size: u32,
        /// Training iterations of each job.
        #[arg(long, default_value_t = 100)]
        steps: usize,
        /// Where the generated sets are kept (reused when there; default: a temporary folder).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The orchestrator alone: jobs that train nothing, to measure its own overhead.
    ///
    /// With --agents: N `sweep agent` processes (one worker each) share one queue, for each
    /// N, on a fresh SQLite file and on --db (a PostgreSQL server) when given.
    Orchestrator {
        #[arg(long, default_value_t = 1000)]
        jobs: usize,
        #[arg(long, default_value_t = 8)]
        workers: usize,
        /// Agent counts to measure, e.g. 1,4,16.
        #[arg(long, value_delimiter = ',')]
        agents: Vec<usize>,
        /// A server to measure besides SQLite (postgres://...).
        #[arg(long)]
        db: Option<DbLocation>,
    },
}

#[derive(Args)]
pub struct BenchServeArgs {
    /// Jobs of the large sweep whose page is timed.
    #[arg(long, default_value_t = 2000)]
    pub jobs: usize,
    /// Curve points per job.
    #[arg(long, default_value_t = 300)]
    pub points: usize,
    /// No-op jobs of the sweep run with and without a dashboard polling it.
    #[arg(long, default_value_t = 24)]
    pub run_jobs: usize,
}

#[derive(Args)]
pub struct BenchSearchArgs {
    /// The LCBench surrogate's folder (YAHPO Gym's model.onnx, encoding.json, config_space.json).
    #[arg(long, default_value = "../shared/bench/lcbench")]
    pub surrogate: PathBuf,
    /// Only the first N of the 34 tasks (quick runs).
    #[arg(long)]
    pub tasks: Option<usize>,
    /// Seeds per task and method.
    #[arg(long, default_value_t = 10)]
    pub seeds: usize,
    /// Simulated asynchronous workers.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Budget of job time, in units of the task's mean 52-epoch time.
    #[arg(long, default_value_t = 100.0)]
    pub budget: f64,
    /// Random configurations whose best is each task's reference (computed once, cached).
    #[arg(long, default_value_t = 5000)]
    pub reference: u64,
    /// Where the references are cached.
    #[arg(long, default_value = "target/bench-search")]
    pub cache: PathBuf,
    /// Skip Optuna's side (goal 3).
    #[arg(long)]
    pub no_optuna: bool,
    /// Also write the summary and every run as JSON to this file (`-`: to stdout, instead
    /// of the table).
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
}

#[derive(Args)]
pub struct BenchProposalArgs {
    /// Trials finished before the timed proposals.
    #[arg(long, default_value_t = 1000)]
    pub trials: u64,
    /// Proposals timed (each after one more finished trial).
    #[arg(long, default_value_t = 100)]
    pub measure: u64,
    /// The search's seed (and Optuna's sampler's).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The database (a SQLite file, or postgres://...); default: a temporary SQLite file.
    #[arg(long)]
    pub db: Option<DbLocation>,
    /// Skip Optuna's side.
    #[arg(long)]
    pub no_optuna: bool,
    /// Also time Optuna with its SQLite (RDB) storage, on the same history (slow).
    #[arg(long)]
    pub optuna_sqlite: bool,
    /// Also write the table, the goals and every timing as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
}

#[derive(Args)]
pub struct BenchTrainArgs {
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    /// Rows as BATCHxCROP, comma-separated (the study-sized GPU table: 2x256,4x256,16x256,2x320).
    #[arg(long, default_value = "2x64")]
    pub shapes: String,
    /// Recipes, comma-separated: fp32, bf16 (PyTorch: autocast), each optionally +nhwc
    /// (channels_last on both sides), e.g. fp32,fp32+nhwc,bf16,bf16+nhwc.
    #[arg(long, default_value = "fp32")]
    pub precision: String,
    /// Skip timing sweep on burn's own conv / batch norm (the baseline of the libtorch kernels).
    #[arg(long)]
    pub no_burn_kernels: bool,
    #[arg(long, default_value = "fcn")]
    pub head: String,
    #[arg(long, default_value_t = 64)]
    pub base_channels: usize,
    /// Timed steps per side. At 10 the ratio moved by up to 0.3 between runs on a shared
    /// 2-core machine; at 30 it moved by half that.
    #[arg(long, default_value_t = 30)]
    pub steps: usize,
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Also show where sweep's step time goes: forward, backward and optimiser each timed with
    /// a device sync after it, and the job loop with a loss read every step.
    #[arg(long)]
    pub profile: bool,
    /// Also write the rows, with ratios and profiles, as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
}

#[derive(Args)]
pub struct PredictArgs {
    /// A job id, a hash prefix, a configuration's label (every seed and fold of it, as an
    /// ensemble: the mean of their probabilities) or an exported package's folder.
    pub model: String,
    /// Image files, or folders of them (PNG, JPEG, BMP, TIFF; any size and count).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Folder the predictions go to: `{image}.png` (class ids) and `predictions.csv`.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub db: DbArg,
    /// Only this sweep's jobs (when a label names jobs of several sweeps).
    #[arg(long)]
    pub sweep: Option<String>,
    /// Test-time augmentation: `flip` also predicts the mirrored image and averages.
    #[arg(long, value_enum, default_value_t = TtaArg::None)]
    pub tta: TtaArg,
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    /// Windows per forward pass (slide inference; default: as a job's own evaluation, so
    /// that predictions of its validation images reproduce it exactly; other batches agree
    /// to float rounding).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Write colour PNGs in the data set's palette instead of class ids.
    #[arg(long)]
    pub palette: bool,
    /// Also write each image's class probabilities, `{image}.npy` (float32, C x H x W).
    #[arg(long)]
    pub probabilities: bool,
    /// Also write each image with its prediction drawn over it, `{image}.overlay.png`.
    #[arg(long)]
    pub overlay: bool,
    /// Pixel size in mm as X,Y for the areas in mm² (default: the data set's spacing).
    #[arg(long, value_delimiter = ',', num_args = 2)]
    pub spacing: Option<Vec<f64>>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TtaArg {
    None,
    Flip,
}

#[derive(Args)]
pub struct EvaluateArgs {
    /// Folder of predictions: one grayscale label image of class ids per validation case,
    /// `{case}.png` (or .bmp, .tif), the label's size, as nnU-Net and MMSegmentation write
    /// them. Other files are listed, not scored.
    pub predictions: PathBuf,
    /// The data set: its folder (with dataset.json or dataset.yaml) or a shipped name (dme).
    #[arg(long)]
    pub data: String,
    /// The cases scored: `val` (the data set's own split, a sweep's `split: study`) or
    /// `fold:K/N` (fold K of N, counted from 1 as job labels do; a sweep's `cv: {folds: N}`).
    #[arg(long, default_value = "val")]
    pub split: String,
    /// The row's name on the leaderboard (default: the folder's name). The same name with
    /// other files replaces the earlier row (kept, retired); the same files add nothing.
    #[arg(long = "as")]
    pub name: Option<String>,
    /// The sweep the row joins (default: the most recently updated sweep with rows on this
    /// data set and split, else a new one named after the data set: `dme`, `dme-cv5`).
    #[arg(long)]
    pub sweep: Option<String>,
    #[command(flatten)]
    pub db: DbArg,
    #[arg(long, value_enum, default_value_t = PlanFormat::Table)]
    pub format: PlanFormat,
}

#[derive(Args)]
pub struct ExportArgs {
    /// A job id, a hash prefix or a configuration's label (all its seeds and folds: one
    /// package holding every network).
    pub model: String,
    /// The package's folder (created; must be empty or absent).
    #[arg(long)]
    pub out: PathBuf,
    /// Files to write per network, comma-separated: safetensors, onnx, pth.
    #[arg(long, value_delimiter = ',', default_value = "safetensors,onnx")]
    pub format: Vec<ExportFormat>,
    #[command(flatten)]
    pub db: DbArg,
    /// Only this sweep's jobs.
    #[arg(long)]
    pub sweep: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Safetensors,
    Onnx,
    Pth,
}

#[derive(Args)]
pub struct BenchPredictArgs {
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    /// Images timed per side.
    #[arg(long, default_value_t = 4)]
    pub images: usize,
    /// Image size as HEIGHTxWIDTH (the study's B-scans: 496x768).
    #[arg(long, default_value = "496x768")]
    pub size: String,
    #[arg(long, default_value_t = 256)]
    pub crop: usize,
    #[arg(long, default_value_t = 170)]
    pub stride: usize,
    #[arg(long, default_value = "fcn")]
    pub head: String,
    #[arg(long, default_value_t = 64)]
    pub base_channels: usize,
    /// Windows per forward pass.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Also write the rows as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DeviceArg {
    Cpu,
    Cuda,
}

impl DeviceArg {
    /// The device a benchmark or check runs on (`cuda`: the first visible GPU).
    #[cfg_attr(not(feature = "train"), allow(dead_code))] // only training commands use it
    pub fn choice(self) -> sweep_core::protocol::DeviceChoice {
        match self {
            DeviceArg::Cpu => sweep_core::protocol::DeviceChoice::Cpu,
            DeviceArg::Cuda => sweep_core::protocol::DeviceChoice::Cuda(0),
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum PlanFormat {
    Table,
    Json,
}

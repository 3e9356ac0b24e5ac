//! Training-step benchmark: the same UNet-S5-D16 + decode head, the same batch, cross-entropy
//! and SGD (lr 0.01, momentum 0.9, wd 5e-4), timed in sweep (burn-tch, autodiff) and in PyTorch
//! eager (`torch_train_step.py`, run with the Python that provides libtorch), in one run.
//!
//! No auxiliary head (as the reference measurements in gpu-performance.md); dropout 0.1 on both
//! sides. PyTorch syncs the device once after its timed steps (`loss.item()` +
//! `cuda.synchronize`); sweep runs a job's loop, reading its losses a window at a time
//! ([`crate::loss_window`]). `--profile` adds where sweep's step time goes ([`StepProfile`]).

use crate::loss::cross_entropy;
use crate::loss_window::{self, read_losses, LossWindow, QueuedStep};
use crate::model::blocks::rng_for;
use crate::model::Segmentor;
use crate::ops::{set_kernel_options, KernelOptions};
use crate::optim::build_optimizer;
use crate::train::kernel_options_for;
use crate::DeviceChoice;
use anyhow::{bail, Context};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Int, Tensor, TensorData};
use rand::Rng;
use serde::Serialize;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use sweep_core::job::{ComputeConfig, Head, JobConfig, ModelConfig, Precision};

const SCRIPT: &str = include_str!("torch_train_step.py");

/// A numeric recipe, the same on both sides: precision and memory layout.
///
/// `bf16`: sweep's `compute: {precision: bf16}` (bf16 convolutions forward and backward, fp32
/// master weights, batch norm, loss and optimiser) against PyTorch's
/// `torch.autocast(dtype=bfloat16)`. `nhwc`: channels_last on both sides (sweep's
/// `compute: {channels_last: true}`). `bf16+nhwc` is PyTorch's best eager recipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recipe {
    pub bf16: bool,
    pub channels_last: bool,
}

impl Recipe {
    pub const FP32: Recipe = Recipe {
        bf16: false,
        channels_last: false,
    };
    /// PyTorch's best eager recipe: bf16 autocast and channels_last.
    pub const BF16_NHWC: Recipe = Recipe {
        bf16: true,
        channels_last: true,
    };

    /// The sweep-file `compute` section of this recipe.
    pub fn compute(self) -> ComputeConfig {
        ComputeConfig {
            precision: if self.bf16 {
                Precision::Bf16
            } else {
                Precision::Fp32
            },
            channels_last: self.channels_last,
        }
    }

    pub fn name(self) -> &'static str {
        match (self.bf16, self.channels_last) {
            (false, false) => "fp32",
            (false, true) => "fp32+nhwc",
            (true, false) => "bf16",
            (true, true) => "bf16+nhwc",
        }
    }
}

impl std::str::FromStr for Recipe {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (precision, layout) = match s.split_once('+') {
            Some((p, l)) => (p, Some(l)),
            None => (s, None),
        };
        let bf16 = match precision {
            "fp32" => false,
            "bf16" => true,
            _ => {
                return Err(format!(
                    "unknown precision {precision:?} in {s:?} (expected fp32 or bf16)"
                ))
            }
        };
        let channels_last = match layout {
            None | Some("nchw") => false,
            Some("nhwc") => true,
            Some(l) => {
                return Err(format!(
                    "unknown layout {l:?} in {s:?} (expected nchw or nhwc)"
                ))
            }
        };
        Ok(Recipe {
            bf16,
            channels_last,
        })
    }
}

#[derive(Clone, Debug)]
pub struct BenchTrainArgs {
    pub device: DeviceChoice,
    /// (batch, crop) rows.
    pub shapes: Vec<(usize, usize)>,
    pub recipes: Vec<Recipe>,
    /// Also time sweep with burn's own conv / batch norm (the path before `trainer::ops`).
    pub burn_kernels: bool,
    pub head: Head,
    pub base_channels: usize,
    /// Timed steps.
    pub steps: usize,
    /// Untimed steps first (allocator, cuDNN autotuning).
    pub warmup: usize,
    /// Also time the step's phases and a loss read every step ([`StepProfile`]).
    pub profile: bool,
}

impl Default for BenchTrainArgs {
    fn default() -> Self {
        BenchTrainArgs {
            device: DeviceChoice::Cpu,
            shapes: vec![(2, 64)],
            recipes: vec![Recipe::FP32],
            burn_kernels: true,
            head: Head::Fcn,
            base_channels: 64,
            steps: 10,
            warmup: 2,
            profile: false,
        }
    }
}

/// Parses `2x256,16x256` into (batch, crop) rows.
pub fn parse_shapes(s: &str) -> Result<Vec<(usize, usize)>, String> {
    s.split(',')
        .map(|row| {
            let (b, c) = row
                .trim()
                .split_once('x')
                .ok_or_else(|| format!("{row:?} is not BATCHxCROP (e.g. 2x256)"))?;
            let n = |v: &str| {
                v.parse::<usize>()
                    .map_err(|_| format!("{row:?}: {v:?} is not a number"))
            };
            Ok((n(b)?, n(c)?))
        })
        .collect()
}

/// One side's measurement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepTiming {
    pub img_per_s: f64,
    pub secs_per_step: f64,
    pub last_loss: f64,
}

/// One row: a shape and recipe timed on each side.
#[derive(Debug)]
pub struct BenchRow {
    pub batch: usize,
    pub crop: usize,
    pub recipe: Recipe,
    /// sweep on libtorch kernels (`trainer::ops`, the default).
    pub sweep: StepTiming,
    /// sweep on burn's own conv / batch norm, when asked for.
    pub sweep_burn: Option<StepTiming>,
    pub torch: anyhow::Result<StepTiming>,
    /// Where sweep's step time goes, when asked for (`--profile`).
    pub profile: Option<StepProfile>,
}

impl BenchRow {
    /// sweep img/s over PyTorch img/s.
    pub fn ratio(&self) -> Option<f64> {
        self.torch
            .as_ref()
            .ok()
            .map(|t| self.sweep.img_per_s / t.img_per_s)
    }
}

/// Runs every row on both sides and prints one table with img/s and the ratios.
/// A row that could not be measured: libtorch failed (a kernel missing for a dtype, out of
/// memory) or the row was invalid. The other rows still run.
#[derive(Clone, Debug, Serialize)]
pub struct FailedRow {
    pub batch: usize,
    pub crop: usize,
    pub precision: &'static str,
    pub error: String,
}

/// What a run measured so far.
#[derive(Debug, Default)]
pub struct BenchRun {
    pub rows: Vec<BenchRow>,
    pub failed: Vec<FailedRow>,
}

/// Runs every row on both sides and prints one table with img/s and the ratios. `progress`
/// sees the run after each row (so a run cut short keeps what it measured).
pub fn bench_train(
    args: &BenchTrainArgs,
    mut progress: impl FnMut(&BenchRun),
) -> anyhow::Result<BenchRun> {
    // As a job process does (PyTorch's process keeps glibc's defaults).
    crate::memory::tune_for_training();
    println!(
        "training step, UNet-S5-D16 base {} + {} head, CE + SGD, {:?}, {} steps after {} warm-up",
        args.base_channels,
        args.head.display(),
        args.device,
        args.steps,
        args.warmup
    );
    let mut run = BenchRun::default();
    let mut torch_info = String::new();
    for &(batch, crop) in &args.shapes {
        for &recipe in &args.recipes {
            let measured = std::panic::catch_unwind(|| bench_row(args, batch, crop, recipe));
            let error = match measured {
                Ok(Ok(measured)) => Ok(measured),
                Ok(Err(e)) => Err(format!("{e:#}")),
                Err(panic) => Err(crate::torch_error::summary(
                    &crate::torch_error::payload_text(panic.as_ref()),
                )),
            };
            let (row, info) = match error {
                Ok(measured) => measured,
                Err(error) => {
                    eprintln!("{batch} x {crop} {}: FAILED: {error}", recipe.name());
                    let precision = recipe.name();
                    run.failed.push(FailedRow {
                        batch,
                        crop,
                        precision,
                        error,
                    });
                    progress(&run);
                    continue;
                }
            };
            if let Err(e) = &row.torch {
                eprintln!("PyTorch side of {batch} x {crop} {}: {e:#}", recipe.name());
            }
            eprintln!(
                "{batch} x {crop} {}: sweep {:.2} img/s{}",
                recipe.name(),
                row.sweep.img_per_s,
                row.ratio()
                    .map(|r| format!(", ratio {r:.3}"))
                    .unwrap_or_default()
            );
            if !info.is_empty() {
                torch_info = info;
            }
            run.rows.push(row);
            progress(&run);
        }
    }
    let rows = &run.rows;
    println!("{}", render(rows, args.burn_kernels));
    if !torch_info.is_empty() {
        println!("PyTorch: {torch_info}");
    }
    if args.profile {
        println!(
            "where sweep's step time goes (ms per step; each phase followed by a device sync)"
        );
        println!("{}", render_profile(rows));
    }
    for f in &run.failed {
        println!(
            "{} x {} {}: FAILED: {}",
            f.batch, f.crop, f.precision, f.error
        );
    }
    Ok(run)
}

fn render_profile(rows: &[BenchRow]) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table.set_header([
        "batch",
        "crop",
        "precision",
        "step (job loop)",
        "step, loss read each step",
        "forward + loss",
        "backward",
        "optimiser",
        "param tensors",
    ]);
    let ms = |v: f64| format!("{v:.2}");
    for r in rows {
        let Some(p) = &r.profile else { continue };
        table.add_row([
            r.batch.to_string(),
            r.crop.to_string(),
            r.recipe.name().to_string(),
            ms(r.sweep.secs_per_step * 1e3),
            format!(
                "{} ({:.2}x)",
                ms(p.every_step_read.secs_per_step * 1e3),
                p.every_step_read.secs_per_step / r.sweep.secs_per_step
            ),
            ms(p.forward_ms),
            ms(p.backward_ms),
            ms(p.optimizer_ms),
            p.param_tensors.to_string(),
        ]);
    }
    table
}

/// The rows as JSON (`sweep bench train --json`), for reports assembled from a run.
pub fn rows_json(args: &BenchTrainArgs, run: &BenchRun) -> serde_json::Value {
    let rows: Vec<_> = run
        .rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "batch": r.batch,
                "crop": r.crop,
                "precision": r.recipe.name(),
                "sweep": r.sweep,
                "sweep_burn_kernels": r.sweep_burn,
                "torch": r.torch.as_ref().ok(),
                "torch_error": r.torch.as_ref().err().map(|e| format!("{e:#}")),
                "ratio": r.ratio(),
                "profile": r.profile,
            })
        })
        .collect();
    serde_json::json!({
        "device": format!("{:?}", args.device),
        "head": args.head.display(),
        "base_channels": args.base_channels,
        "steps": args.steps,
        "warmup": args.warmup,
        "rows": rows,
        "failed": run.failed,
    })
}

fn render(rows: &[BenchRow], burn_kernels: bool) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    let mut header = vec!["batch", "crop", "precision", "sweep img/s"];
    if burn_kernels {
        header.push("sweep, burn kernels");
    }
    header.extend(["PyTorch eager img/s", "sweep / PyTorch"]);
    if burn_kernels {
        header.push("libtorch / burn kernels");
    }
    table.set_header(header);
    let f = |v: f64| format!("{v:.2}");
    for r in rows {
        let mut row = vec![
            r.batch.to_string(),
            r.crop.to_string(),
            r.recipe.name().to_string(),
            f(r.sweep.img_per_s),
        ];
        if burn_kernels {
            row.push(r.sweep_burn.as_ref().map_or("-".into(), |t| f(t.img_per_s)));
        }
        row.push(r.torch.as_ref().map_or("failed".into(), |t| f(t.img_per_s)));
        row.push(r.ratio().map_or("-".into(), |v| format!("{v:.3}")));
        if burn_kernels {
            row.push(r.sweep_burn.as_ref().map_or("-".into(), |t| {
                format!("{:.2}x", r.sweep.img_per_s / t.img_per_s)
            }));
        }
        table.add_row(row);
    }
    table
}

/// One shape and recipe: sweep (libtorch kernels, then burn's if asked) and PyTorch eager.
pub fn bench_row(
    args: &BenchTrainArgs,
    batch: usize,
    crop: usize,
    recipe: Recipe,
) -> anyhow::Result<(BenchRow, String)> {
    anyhow::ensure!(
        crop > 0 && crop % 16 == 0,
        "crop {crop} is not a positive multiple of 16"
    );
    anyhow::ensure!(
        batch > 0 && args.steps > 0,
        "batch and --steps must be positive"
    );
    let (images, labels) = random_batch(batch, crop);

    let dir = tempfile_dir()?;
    let img_path = dir.join("images.f32");
    let lab_path = dir.join("labels.i64");
    let script = dir.join("torch_train_step.py");
    std::fs::write(
        &img_path,
        images
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>(),
    )?;
    std::fs::write(
        &lab_path,
        labels
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>(),
    )?;
    std::fs::write(&script, SCRIPT)?;

    // The options a job with this recipe's `compute` section runs with; the baseline row
    // only turns the libtorch kernels off.
    let job_options = kernel_options_for(&recipe.compute(), &args.device);
    let kernels = |torch_kernels: bool| KernelOptions {
        torch_kernels,
        ..job_options
    };
    let (shape, data) = ((batch, crop), (&images[..], &labels[..]));
    set_kernel_options(kernels(true));
    let sweep = time_sweep(args, shape, data, LossRead::Window)?;
    let profile = if args.profile {
        Some(profile_sweep(args, shape, data)?)
    } else {
        None
    };
    let sweep_burn = if args.burn_kernels {
        set_kernel_options(kernels(false));
        let t = time_sweep(args, shape, data, LossRead::Window);
        set_kernel_options(kernels(true));
        Some(t?)
    } else {
        None
    };
    let (torch, torch_info) = time_torch(args, batch, crop, recipe, &script, &img_path, &lab_path);
    let _ = std::fs::remove_dir_all(&dir);
    Ok((
        BenchRow {
            batch,
            crop,
            recipe,
            sweep,
            sweep_burn,
            torch,
            profile,
        },
        torch_info,
    ))
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("sweep-bench-train-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// The network, optimiser and batch of one sweep-side measurement, stepped as a job steps.
struct SweepSide {
    model: Option<Segmentor>,
    optim: ModuleOptimizer,
    x: Tensor<4>,
    y: Tensor<3, Int>,
}

impl SweepSide {
    fn new(args: &BenchTrainArgs, n: usize, s: usize, images: &[f32], labels: &[i64]) -> Self {
        let ad = crate::burn_device(args.device).autodiff();
        let cfg = JobConfig {
            model: ModelConfig {
                head: args.head,
                base_channels: args.base_channels,
                aux_head: false,
                ..Default::default()
            },
            ..Default::default()
        };
        SweepSide {
            model: Some(Segmentor::init(&cfg.model, 0, &ad)),
            optim: build_optimizer(&cfg.optimizer),
            x: Tensor::<4>::from_data(TensorData::new(images.to_vec(), [n, 3, s, s]), &ad),
            y: Tensor::<3, Int>::from_data(TensorData::new(labels.to_vec(), [n, s, s]), &ad),
        }
    }

    fn model(&self) -> &Segmentor {
        self.model
            .as_ref()
            .expect("the model is back after each step")
    }

    /// Forward pass and loss of step `i` (dropout masks from `i`).
    fn forward(&self, i: usize) -> Tensor<1> {
        let mut rng = rng_for(0, 1, i as u64);
        let out = self.model().forward_train(self.x.clone(), Some(&mut rng));
        cross_entropy(out.logits, &self.y, None)
    }

    fn backward(&self, loss: Tensor<1>) -> GradientsParams {
        GradientsParams::from_grads(loss.backward(), self.model())
    }

    fn optimise(&mut self, grads: GradientsParams) {
        let model = self
            .model
            .take()
            .expect("the model is back after each step");
        self.model = Some(self.optim.step(0.01, model, grads));
    }

    /// `n` untimed steps, their work drained from the device.
    fn warm_up(&mut self, n: usize) -> anyhow::Result<()> {
        let losses: Vec<_> = (0..n).map(|i| self.step(i)).collect();
        read_losses(losses).map(|_| ())
    }

    /// One whole step, its loss left on the device.
    fn step(&mut self, i: usize) -> Tensor<1> {
        let loss = self.forward(i);
        let queued = loss.clone().detach();
        let grads = self.backward(loss);
        self.optimise(grads);
        queued
    }
}

/// `args.steps` training steps of a random batch in `recipe` (with its kernel options, restored
/// afterwards), untimed: the last loss. `sweep doctor`'s check that a device can train.
pub fn bench_step_check(
    args: &BenchTrainArgs,
    recipe: Recipe,
    batch: usize,
    crop: usize,
) -> anyhow::Result<f64> {
    let (images, labels) = random_batch(batch, crop);
    let before = crate::ops::kernel_options();
    set_kernel_options(kernel_options_for(&recipe.compute(), &args.device));
    let mut side = SweepSide::new(args, batch, crop, &images, &labels);
    let losses: Vec<_> = (0..args.steps.max(1)).map(|i| side.step(i)).collect();
    let read = read_losses(losses);
    set_kernel_options(before);
    read?
        .last()
        .copied()
        .ok_or_else(|| anyhow::anyhow!("no step ran"))
}

/// The benchmark's batch, fixed by seed 0: images uniform in [-2, 2), labels 0/1.
fn random_batch(n: usize, s: usize) -> (Vec<f32>, Vec<i64>) {
    let mut rng = rng_for(0, 0xBE7C, 0);
    let images = (0..n * 3 * s * s)
        .map(|_| rng.random_range(-2.0..2.0))
        .collect();
    let labels = (0..n * s * s).map(|_| rng.random_range(0..2)).collect();
    (images, labels)
}

/// How the timed loop reads its losses: as a job does (a window at a time), or every step
/// (a device sync per step: what jobs did before [`LossWindow`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossRead {
    Window,
    EveryStep,
}

fn time_sweep(
    args: &BenchTrainArgs,
    (n, s): (usize, usize),
    (images, labels): (&[f32], &[i64]),
    read: LossRead,
) -> anyhow::Result<StepTiming> {
    let mut side = SweepSide::new(args, n, s, images, labels);
    side.warm_up(args.warmup)?;
    let limit = match read {
        LossRead::Window => loss_window::DEFAULT_WINDOW,
        LossRead::EveryStep => Duration::ZERO,
    };
    let mut window = LossWindow::new(limit);
    let mut last_loss = f64::NAN;
    let t0 = Instant::now();
    let steps = args.warmup..args.warmup + args.steps;
    for i in steps.clone() {
        let started = Instant::now();
        let loss = side.step(i);
        window.push(QueuedStep {
            iter: i,
            lr: 0.01,
            images: n,
            loss,
            started,
            data_wait: Duration::ZERO,
        });
        if window.due() || i + 1 == steps.end {
            if let Some(step) = window.read(read_losses)?.last() {
                last_loss = step.loss;
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    Ok(StepTiming {
        img_per_s: (n * args.steps) as f64 / secs,
        secs_per_step: secs / args.steps as f64,
        last_loss,
    })
}

/// Where a step's time goes: each phase timed with a device sync after it (so their sum is
/// the time of a step with three syncs, above the job loop's), and the job loop with a loss
/// read every step beside the windowed one.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepProfile {
    pub forward_ms: f64,
    pub backward_ms: f64,
    pub optimizer_ms: f64,
    /// Tensors the optimiser updates (a few elementwise kernels each).
    pub param_tensors: usize,
    /// The job loop reading the loss every step.
    pub every_step_read: StepTiming,
}

fn profile_sweep(
    args: &BenchTrainArgs,
    shape: (usize, usize),
    data: (&[f32], &[i64]),
) -> anyhow::Result<StepProfile> {
    let every_step_read = time_sweep(args, shape, data, LossRead::EveryStep)?;
    let mut side = SweepSide::new(args, shape.0, shape.1, data.0, data.1);
    side.warm_up(args.warmup)?;
    let sync = || {
        if let DeviceChoice::Cuda(i) = args.device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    let mut ms = [0.0f64; 3];
    let mut param_tensors = 0;
    let mut timed = |phase: usize, t: Instant| {
        sync();
        ms[phase] += t.elapsed().as_secs_f64() * 1e3 / args.steps as f64;
    };
    for i in args.warmup..args.warmup + args.steps {
        let t = Instant::now();
        let loss = side.forward(i);
        timed(0, t);
        let t = Instant::now();
        let grads = side.backward(loss);
        param_tensors = grads.len();
        timed(1, t);
        let t = Instant::now();
        side.optimise(grads);
        timed(2, t);
    }
    Ok(StepProfile {
        forward_ms: ms[0],
        backward_ms: ms[1],
        optimizer_ms: ms[2],
        param_tensors,
        every_step_read,
    })
}

/// `SWEEP_PYTHON`, else the project's `.venv/bin/python` (the one that provided libtorch), else
/// `python3` (on the GPU machine plain python3 has torch).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("SWEEP_PYTHON") {
        return PathBuf::from(p);
    }
    let candidates = [
        PathBuf::from(".venv/bin/python"),
        // The workspace root's .venv (this crate is crates/train).
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"),
    ];
    candidates
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("python3"))
}

fn time_torch(
    args: &BenchTrainArgs,
    batch: usize,
    crop: usize,
    recipe: Recipe,
    script: &std::path::Path,
    images: &std::path::Path,
    labels: &std::path::Path,
) -> (anyhow::Result<StepTiming>, String) {
    let py = python();
    let device = match args.device {
        DeviceChoice::Cpu => "cpu".to_string(),
        DeviceChoice::Cuda(i) => format!("cuda:{i}"),
    };
    let head = match args.head {
        Head::Fcn => "fcn",
        Head::Deeplabv3 => "deeplabv3",
        Head::Pspnet => "pspnet",
    };
    let run = || -> anyhow::Result<(StepTiming, String)> {
        let out = Command::new(&py)
            .arg(script)
            .args(["--images", &images.display().to_string()])
            .args(["--labels", &labels.display().to_string()])
            .args(["--batch", &batch.to_string(), "--crop", &crop.to_string()])
            .args(recipe.bf16.then_some("--bf16"))
            .args(recipe.channels_last.then_some("--channels-last"))
            .args(["--head", head, "--base", &args.base_channels.to_string()])
            .args([
                "--steps",
                &args.steps.to_string(),
                "--warmup",
                &args.warmup.to_string(),
            ])
            .args(["--device", &device])
            .output()
            .with_context(|| format!("running {}", py.display()))?;
        if !out.status.success() {
            bail!(
                "{} {} failed ({}): {}",
                py.display(),
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().last().unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("parsing the PyTorch side's output {line:?}"))?;
        let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        let info = format!(
            "{}, torch {}, {} threads",
            py.display(),
            v["torch"].as_str().unwrap_or("?"),
            v["threads"]
        );
        Ok((
            StepTiming {
                img_per_s: f("img_per_s"),
                secs_per_step: f("secs") / f("steps"),
                last_loss: f("last_loss"),
            },
            info,
        ))
    };
    match run() {
        Ok((t, info)) => (Ok(t), info),
        Err(e) => (Err(e), String::new()),
    }
}

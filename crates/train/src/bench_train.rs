//! Training-step benchmark: the same UNet-S5-D16 + decode head, the same batch, cross-entropy
//! and SGD (lr 0.01, momentum 0.9, wd 5e-4), timed in sweep (burn-tch, autodiff) and in PyTorch
//! eager (`torch_train_step.py`, run with the Python that provides libtorch), in one run.
//!
//! No auxiliary head (as the reference measurements in gpu-performance.md); dropout 0.1 on both
//! sides. Each side syncs the device once after its timed steps (PyTorch: `loss.item()` +
//! `cuda.synchronize`; sweep: `into_scalar` of the last loss).

use crate::loss::cross_entropy;
use crate::model::blocks::rng_for;
use crate::model::Segmentor;
use crate::ops::{set_kernel_options, KernelOptions};
use crate::optim::build_optimizer;
use crate::train::kernel_options_for;
use crate::DeviceChoice;
use anyhow::{bail, Context};
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, TensorData};
use rand::Rng;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;
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
#[derive(Clone, Debug, PartialEq)]
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
pub fn bench_train(args: &BenchTrainArgs) -> anyhow::Result<Vec<BenchRow>> {
    println!(
        "training step, UNet-S5-D16 base {} + {} head, CE + SGD, {:?}, {} steps after {} warm-up",
        args.base_channels,
        args.head.display(),
        args.device,
        args.steps,
        args.warmup
    );
    let mut rows = Vec::new();
    let mut torch_info = String::new();
    for &(batch, crop) in &args.shapes {
        for &recipe in &args.recipes {
            let (row, info) = bench_row(args, batch, crop, recipe)?;
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
            rows.push(row);
        }
    }
    println!("{}", render(&rows, args.burn_kernels));
    if !torch_info.is_empty() {
        println!("PyTorch: {torch_info}");
    }
    Ok(rows)
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
    let (n, s) = (batch, crop);
    // The batch, fixed by seed 0: images uniform in [-2, 2), labels 0/1.
    let mut rng = rng_for(0, 0xBE7C, 0);
    let images: Vec<f32> = (0..n * 3 * s * s)
        .map(|_| rng.random_range(-2.0..2.0))
        .collect();
    let labels: Vec<i64> = (0..n * s * s).map(|_| rng.random_range(0..2)).collect();

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
    set_kernel_options(kernels(true));
    let sweep = time_sweep(args, batch, crop, &images, &labels)?;
    let sweep_burn = if args.burn_kernels {
        set_kernel_options(kernels(false));
        let t = time_sweep(args, batch, crop, &images, &labels);
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
        },
        torch_info,
    ))
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("sweep-bench-train-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

fn time_sweep(
    args: &BenchTrainArgs,
    batch: usize,
    crop: usize,
    images: &[f32],
    labels: &[i64],
) -> anyhow::Result<StepTiming> {
    let (n, s) = (batch, crop);
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
    let x = Tensor::<4>::from_data(TensorData::new(images.to_vec(), [n, 3, s, s]), &ad);
    let y = Tensor::<3, Int>::from_data(TensorData::new(labels.to_vec(), [n, s, s]), &ad);
    let mut model = Segmentor::init(&cfg.model, 0, &ad);
    let mut optim = build_optimizer(&cfg.optimizer);
    let mut last = None;
    let mut t0 = Instant::now();
    for i in 0..args.warmup + args.steps {
        if i == args.warmup {
            if let Some(l) = last.take() {
                let _: f32 = Tensor::<1>::into_scalar(l); // drain the warm-up work
            }
            t0 = Instant::now();
        }
        let mut rng = rng_for(0, 1, i as u64);
        let out = model.forward_train(x.clone(), Some(&mut rng));
        let loss = cross_entropy(out.logits, &y, None);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.01, model, grads);
        last = Some(loss.detach());
    }
    let last_loss = last
        .map(|l| l.into_scalar::<f32>() as f64)
        .unwrap_or(f64::NAN);
    let secs = t0.elapsed().as_secs_f64();
    Ok(StepTiming {
        img_per_s: (n * args.steps) as f64 / secs,
        secs_per_step: secs / args.steps as f64,
        last_loss,
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

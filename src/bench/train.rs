//! Training-step benchmark: the same UNet-S5-D16 + decode head, the same batch, cross-entropy
//! and SGD (lr 0.01, momentum 0.9, wd 5e-4), timed in sweep (burn-tch, autodiff) and in PyTorch
//! eager (`torch_train_step.py`, run with the Python that provides libtorch), in one run.
//!
//! No auxiliary head (as the reference measurements in gpu-performance.md); dropout 0.1 on both
//! sides. Each side syncs the device once after its timed steps (PyTorch: `loss.item()` +
//! `cuda.synchronize`; sweep: `into_scalar` of the last loss).

use crate::job::{Head, JobConfig, ModelConfig};
use crate::trainer::loss::cross_entropy;
use crate::trainer::model::blocks::rng_for;
use crate::trainer::model::Segmentor;
use crate::trainer::optim::build_optimizer;
use crate::trainer::DeviceChoice;
use anyhow::{bail, Context};
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, TensorData};
use rand::Rng;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

const SCRIPT: &str = include_str!("torch_train_step.py");

#[derive(Clone, Debug)]
pub struct BenchTrainArgs {
    pub device: DeviceChoice,
    pub batch: usize,
    pub crop: usize,
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
            batch: 2,
            crop: 64,
            head: Head::Fcn,
            base_channels: 64,
            steps: 10,
            warmup: 2,
        }
    }
}

/// One side's measurement.
#[derive(Clone, Debug, PartialEq)]
pub struct StepTiming {
    pub name: String,
    pub img_per_s: f64,
    pub secs_per_step: f64,
    pub last_loss: f64,
}

#[derive(Clone, Debug)]
pub struct BenchTrainReport {
    pub sweep: StepTiming,
    pub torch: StepTiming,
    /// Python used and its torch version / threads.
    pub torch_info: String,
}

impl BenchTrainReport {
    /// sweep img/s over PyTorch img/s.
    pub fn ratio(&self) -> f64 {
        self.sweep.img_per_s / self.torch.img_per_s
    }
}

/// Runs both sides and prints a table with img/s and the ratio.
pub fn bench_train(args: &BenchTrainArgs) -> anyhow::Result<()> {
    let r = bench_train_report(args)?;
    let mut table = comfy_table::Table::new();
    table.set_header(vec!["side", "img/s", "s/step", "last loss"]);
    for t in [&r.sweep, &r.torch] {
        table.add_row(vec![
            t.name.clone(),
            format!("{:.2}", t.img_per_s),
            format!("{:.4}", t.secs_per_step),
            format!("{:.4}", t.last_loss),
        ]);
    }
    println!(
        "training step, UNet-S5-D16 base {} + {} head, batch {} x {}x{}, {:?}, {} steps after {} warm-up",
        args.base_channels,
        args.head.display(),
        args.batch,
        args.crop,
        args.crop,
        args.device,
        args.steps,
        args.warmup
    );
    println!("{table}");
    println!(
        "ratio sweep / pytorch: {:.3}   ({})",
        r.ratio(),
        r.torch_info
    );
    Ok(())
}

pub fn bench_train_report(args: &BenchTrainArgs) -> anyhow::Result<BenchTrainReport> {
    anyhow::ensure!(
        args.crop > 0 && args.crop % 16 == 0,
        "--crop {} is not a positive multiple of 16",
        args.crop
    );
    anyhow::ensure!(
        args.batch > 0 && args.steps > 0,
        "--batch and --steps must be positive"
    );
    let (n, s) = (args.batch, args.crop);
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

    let sweep = time_sweep(args, images, labels)?;
    let (torch, torch_info) = time_torch(args, &script, &img_path, &lab_path);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(BenchTrainReport {
        sweep,
        torch: torch?,
        torch_info,
    })
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("sweep-bench-train-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

fn time_sweep(
    args: &BenchTrainArgs,
    images: Vec<f32>,
    labels: Vec<i64>,
) -> anyhow::Result<StepTiming> {
    let (n, s) = (args.batch, args.crop);
    let ad = args.device.burn_device().autodiff();
    let cfg = JobConfig {
        model: ModelConfig {
            head: args.head,
            base_channels: args.base_channels,
            aux_head: false,
            ..Default::default()
        },
        ..Default::default()
    };
    let x = Tensor::<4>::from_data(TensorData::new(images, [n, 3, s, s]), &ad);
    let y = Tensor::<3, Int>::from_data(TensorData::new(labels, [n, s, s]), &ad);
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
        name: "sweep (burn-tch)".into(),
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
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
    ];
    candidates
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("python3"))
}

fn time_torch(
    args: &BenchTrainArgs,
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
            .args([
                "--batch",
                &args.batch.to_string(),
                "--crop",
                &args.crop.to_string(),
            ])
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
                name: "PyTorch eager".into(),
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

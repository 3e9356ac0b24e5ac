//! Inference benchmark: images/s of MMSeg's slide inference of whole images (the study's
//! 496x768 B-scans, crop 256, stride 170) in sweep ([`Predictor`], as `sweep predict` runs it),
//! in PyTorch eager and in ONNX Runtime, on the same network and images, in one run.
//!
//! The network is a seeded `Segmentor` (2 classes, no auxiliary head). Its tensors go to the
//! other sides as `sweep export` writes them: `weights.safetensors` (MMSeg keys), loaded
//! strictly into the reference `EncoderDecoder` of `tests/mmseg_reference.py`, and the ONNX
//! graph of one padded window. `torch_slide_infer.py` (embedded, run with the Python that
//! provides libtorch) runs the same windows ([`slide_windows`]) the same number per forward
//! pass, on as many threads as sweep's libtorch. Each side times the whole per-image path
//! (upload, windows, averaging, argmax read back to the host) after one untimed image, and
//! the sides' averaged logits of image 0 are compared with sweep's.
//!
//! The sides take turns image by image (the script stays up and answers one image at a
//! time), so load from other processes on a shared machine slows them alike.
//!
//! sweep's process asks for memory as a job process does ([`crate::memory`]: no fresh
//! mappings for large blocks, so windows after the first do not page-fault their activations
//! in again); Python keeps glibc's defaults, as `bench train` has it. On CPU that is part of
//! the difference to PyTorch eager; `MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1073741824`
//! in the environment gives the script the same, to compare the rest alone.

use crate::checkpoint::model_tensors;
use crate::infer::{slide_windows, window, Predictor, Tta};
use crate::model::blocks::rng_for;
use crate::model::{mmseg_key, Segmentor};
use crate::DeviceChoice;
use anyhow::Context;
use burn::tensor::{Tensor, TensorData};
use rand::Rng;
use serde::Serialize;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;
use sweep_core::job::{EvalConfig, EvalMode, Head, ModelConfig};
use sweep_export::{onnx, safetensors, NamedTensor};

const SCRIPT: &str = include_str!("torch_slide_infer.py");
/// The reference network the script imports (MMSeg's module structure and key names).
const REFERENCE: &str = include_str!("../tests/mmseg_reference.py");
const CLASSES: usize = 2;
/// How the script says an execution provider is missing.
const NOT_AVAILABLE: &str = "not available";

#[derive(Clone, Debug)]
pub struct BenchPredictArgs {
    pub device: DeviceChoice,
    /// Images timed per side (after one untimed).
    pub images: usize,
    /// Image height and width.
    pub size: [usize; 2],
    pub crop: usize,
    pub stride: usize,
    pub head: Head,
    pub base_channels: usize,
    /// Windows per forward pass.
    pub batch: usize,
}

impl Default for BenchPredictArgs {
    /// The study's: 496x768 B-scans, crop 256, stride 170, base 64, FCN, 4 windows a pass.
    fn default() -> Self {
        BenchPredictArgs {
            device: DeviceChoice::Cpu,
            images: 4,
            size: [496, 768],
            crop: 256,
            stride: 170,
            head: Head::Fcn,
            base_channels: 64,
            batch: window::WINDOW_BATCH,
        }
    }
}

/// Parses `496x768` (height x width).
pub fn parse_size(s: &str) -> Result<[usize; 2], String> {
    let (h, w) = s
        .trim()
        .split_once('x')
        .ok_or_else(|| format!("{s:?} is not HEIGHTxWIDTH (e.g. 496x768)"))?;
    let n = |v: &str| match v.parse::<usize>() {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(format!("{s:?}: {v:?} is not a positive number")),
    };
    Ok([n(h)?, n(w)?])
}

/// One side's measurement, or why there is none.
#[derive(Clone, Debug, Serialize)]
pub struct Side {
    /// `sweep`, `PyTorch eager`, `ONNX Runtime`.
    pub name: String,
    /// What it ran on: the device, or ONNX Runtime's execution provider.
    pub runs_on: String,
    pub img_per_s: Option<f64>,
    pub secs_per_image: Option<f64>,
    /// Max |difference| of its averaged logits of image 0 from sweep's.
    pub max_abs_diff: Option<f64>,
    /// Versions and threads.
    pub info: String,
    pub error: Option<String>,
}

/// A run: sweep first, then the other sides.
#[derive(Debug)]
pub struct BenchPredict {
    pub args: BenchPredictArgs,
    pub windows: usize,
    pub threads: usize,
    pub sides: Vec<Side>,
}

impl Side {
    fn new(name: &str, runs_on: &str) -> Side {
        Side {
            name: name.into(),
            runs_on: runs_on.into(),
            img_per_s: None,
            secs_per_image: None,
            max_abs_diff: None,
            info: String::new(),
            error: None,
        }
    }

    /// Whether it should have run and did not (an execution provider this onnxruntime lacks,
    /// "not available", is no failure).
    pub fn failed(&self) -> bool {
        self.error
            .as_ref()
            .is_some_and(|e| !e.starts_with(NOT_AVAILABLE))
    }
}

impl BenchPredict {
    /// sweep's images/s over `side`'s.
    pub fn ratio(&self, side: &Side) -> Option<f64> {
        Some(self.sides[0].img_per_s? / side.img_per_s?)
    }

    pub fn table(&self) -> comfy_table::Table {
        let mut table = comfy_table::Table::new();
        table.set_header([
            "side",
            "runs on",
            "images/s",
            "s / image",
            "sweep / side",
            "max |Δ| logits vs sweep",
        ]);
        let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("-".into(), f);
        for s in &self.sides {
            // The error itself follows the table.
            let failed = s
                .error
                .as_ref()
                .map(|_| if s.failed() { "failed" } else { NOT_AVAILABLE }.to_string());
            table.add_row([
                s.name.clone(),
                s.runs_on.clone(),
                failed.unwrap_or_else(|| opt(s.img_per_s, &|v| format!("{v:.3}"))),
                opt(s.secs_per_image, &|v| format!("{v:.3}")),
                opt(self.ratio(s), &|v| format!("{v:.3}")),
                opt(s.max_abs_diff, &|v| format!("{v:.1e}")),
            ]);
        }
        table
    }

    /// The run as JSON (`sweep bench predict --json`).
    pub fn json(&self) -> serde_json::Value {
        let a = &self.args;
        let sides: Vec<_> = self
            .sides
            .iter()
            .map(|s| {
                let mut v = serde_json::to_value(s).expect("JSON");
                v["ratio"] = serde_json::json!(self.ratio(s));
                v
            })
            .collect();
        serde_json::json!({
            "device": format!("{:?}", a.device),
            "head": a.head.display(),
            "base_channels": a.base_channels,
            "num_classes": CLASSES,
            "size": a.size,
            "crop": a.crop,
            "stride": a.stride,
            "windows": self.windows,
            "batch": a.batch,
            "images": a.images,
            "threads": self.threads,
            "sides": sides,
        })
    }
}

/// Times every side and prints the table.
pub fn bench_predict(args: &BenchPredictArgs) -> anyhow::Result<BenchPredict> {
    let [h, w] = args.size;
    anyhow::ensure!(args.images > 0, "--images must be positive");
    anyhow::ensure!(
        args.crop > 0 && args.stride > 0 && args.batch > 0,
        "crop, stride and batch must be positive"
    );
    // As a job process does before its evaluation (PyTorch's process keeps glibc's defaults).
    crate::memory::tune_for_training();
    let windows = slide_windows(h, w, args.crop, args.stride);
    let threads = tch::get_num_threads().max(1) as usize;
    println!(
        "slide inference, UNet-S5-D16 base {} + {} head, {CLASSES} classes, {h}x{w} images, crop {} \
         stride {} ({} windows, {} per forward), {:?}, {} images after 1 warm-up, {threads} threads",
        args.base_channels,
        args.head.display(),
        args.crop,
        args.stride,
        windows.len(),
        args.batch,
        args.device,
        args.images,
    );
    let dir = temp_dir()?;
    let run = run_sides(args, &dir, windows, threads);
    let _ = std::fs::remove_dir_all(&dir);
    let run = run?;
    println!("{}", run.table());
    println!(
        "sweep allocates as a job process does (glibc: no mmap for large blocks, freed memory \
         kept); the Python sides with glibc's defaults unless MALLOC_MMAP_MAX_ / \
         MALLOC_TRIM_THRESHOLD_ say otherwise"
    );
    for s in &run.sides {
        if let Some(e) = &s.error {
            println!("{} ({}): {e}", s.name, s.runs_on);
        } else if !s.info.is_empty() {
            println!("{}: {}", s.name, s.info);
        }
    }
    Ok(run)
}

fn run_sides(
    args: &BenchPredictArgs,
    dir: &Path,
    windows: Vec<(usize, usize, usize, usize)>,
    threads: usize,
) -> anyhow::Result<BenchPredict> {
    let [h, w] = args.size;
    let images = random_images(args.images, h, w);
    let sweep = SweepSide::new(args, &images);
    let logits = sweep.logits(0)?;
    let tensors = sweep.tensors();

    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
    };
    let f32_bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    write("images.f32", &f32_bytes(&images))?;
    write("sweep_logits.f32", &f32_bytes(&logits))?;
    write("torch_slide_infer.py", SCRIPT.as_bytes())?;
    write("mmseg_reference.py", REFERENCE.as_bytes())?;
    let weights = dir.join("weights.safetensors");
    safetensors::write(&weights, &tensors, &Default::default())?;
    let pad = args.crop.div_ceil(16) * 16;
    let graph = onnx::write(&model_config(args), &tensors, [pad, pad])?;
    write("model.onnx", &graph)?;
    let mut providers = vec!["CPUExecutionProvider"];
    if let DeviceChoice::Cuda(_) = args.device {
        providers.push("CUDAExecutionProvider");
    }
    let config = serde_json::json!({
        "height": h,
        "width": w,
        "windows": windows,
        "pad": [pad, pad],
        "batch": args.batch,
        "head": args.head,
        "base": args.base_channels,
        "classes": CLASSES,
        "threads": threads,
        "device": device_name(args.device),
        "images": args.images,
        "providers": providers,
        "input": onnx::INPUT,
        "output": onnx::OUTPUT,
    });
    write("config.json", config.to_string().as_bytes())?;

    // Sides: sweep, then the script's (key, side).
    let mut sides = vec![Side::new("sweep", &device_name(args.device))];
    let mut keys = vec![String::new(), "torch".to_string()];
    sides.push(Side::new("PyTorch eager", &device_name(args.device)));
    for p in &providers {
        keys.push(p.to_string());
        sides.push(Side::new("ONNX Runtime", p));
    }
    let mut script = match Script::start(dir) {
        Ok((script, status)) => {
            for (side, key) in sides.iter_mut().zip(&keys).skip(1) {
                let s = &status[key.as_str()];
                side.error = s["error"].as_str().map(String::from);
                side.info = s["info"].as_str().unwrap_or_default().into();
            }
            Some(script)
        }
        Err(e) => {
            sides[1..]
                .iter_mut()
                .for_each(|s| s.error = Some(e.clone()));
            None
        }
    };
    // Image by image, every side in turn, each round starting with the next side: a busy
    // machine slows them alike. Image 0 first, untimed (and the script's sides compare their
    // logits of it with sweep's).
    let mut secs = vec![0.0; sides.len()];
    for (round, image) in std::iter::once(0).chain(0..args.images).enumerate() {
        let timed = round > 0;
        let n = sides.len();
        for i in (0..n).map(|k| (k + round) % n) {
            if i == 0 {
                let t = sweep.infer(image)?;
                secs[0] += if timed { t } else { 0.0 };
                continue;
            }
            let side = &mut sides[i];
            let Some(s) = script.as_mut().filter(|_| side.error.is_none()) else {
                continue;
            };
            match s.ask(&keys[i], image) {
                Ok(answer) if timed => secs[i] += answer.secs,
                Ok(answer) => side.max_abs_diff = answer.max_abs_diff,
                Err(e) => side.error = Some(e),
            }
        }
        if timed {
            let so_far: Vec<_> = (sides.iter().zip(&secs))
                .map(|(s, t)| format!("{} ({}) {t:.1} s", s.name, s.runs_on))
                .collect();
            eprintln!("{round} of {} images: {}", args.images, so_far.join(", "));
        }
    }
    if let Some(s) = script {
        s.finish();
    }
    for (side, secs) in sides.iter_mut().zip(secs) {
        if side.error.is_none() {
            side.img_per_s = Some(args.images as f64 / secs);
            side.secs_per_image = Some(secs / args.images as f64);
        }
    }
    Ok(BenchPredict {
        args: args.clone(),
        windows: windows.len(),
        threads,
        sides,
    })
}

/// `cpu` / `cuda:0`, as PyTorch names devices.
fn device_name(device: DeviceChoice) -> String {
    match device {
        DeviceChoice::Cpu => "cpu".to_string(),
        DeviceChoice::Cuda(i) => format!("cuda:{i}"),
    }
}

fn model_config(args: &BenchPredictArgs) -> ModelConfig {
    ModelConfig {
        head: args.head,
        base_channels: args.base_channels,
        num_classes: CLASSES,
        aux_head: false,
        ..Default::default()
    }
}

/// sweep's side: a seeded network in a [`Predictor`], as `sweep predict` applies it.
struct SweepSide<'a> {
    predictor: Predictor,
    images: &'a [f32],
    size: [usize; 2],
    device: burn::tensor::Device,
}

impl<'a> SweepSide<'a> {
    fn new(args: &BenchPredictArgs, images: &'a [f32]) -> Self {
        let device = crate::burn_device(args.device);
        SweepSide {
            predictor: Predictor {
                networks: vec![Segmentor::init(&model_config(args), 0, &device)],
                eval: EvalConfig {
                    mode: EvalMode::Slide,
                    crop: args.crop,
                    stride: args.stride,
                    ..Default::default()
                },
                num_classes: CLASSES,
                batch: args.batch,
                tta: Tta::None,
            },
            images,
            size: args.size,
            device,
        }
    }

    /// Image `i` on the device, [1, 3, h, w].
    fn image(&self, i: usize) -> Tensor<4> {
        let [h, w] = self.size;
        let len = 3 * h * w;
        let data = TensorData::new(self.images[i * len..(i + 1) * len].to_vec(), [1, 3, h, w]);
        Tensor::<4>::from_data(data, &self.device)
    }

    /// The averaged logits of image `i`, [1, C, h, w] row-major.
    fn logits(&self, i: usize) -> anyhow::Result<Vec<f32>> {
        let p = &self.predictor;
        let net = &p.networks[0];
        let forward = &mut |x| net.forward(x);
        window::logits(forward, self.image(i), &p.eval, CLASSES, p.batch)?
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| anyhow::anyhow!("reading the logits: {e:?}"))
    }

    /// Seconds of the whole per-image path of image `i`: upload, windows, labels on the host.
    fn infer(&self, i: usize) -> anyhow::Result<f64> {
        let [h, w] = self.size;
        let t0 = Instant::now();
        let labels = self.predictor.scores(self.image(i), h, w)?.labels();
        let secs = t0.elapsed().as_secs_f64();
        anyhow::ensure!(labels.len() == h * w, "{} labels for {h}x{w}", labels.len());
        Ok(secs)
    }

    /// The network's tensors under MMSeg's keys.
    fn tensors(&self) -> Vec<NamedTensor> {
        model_tensors(&self.predictor.networks[0])
            .into_iter()
            .map(|t| NamedTensor {
                key: mmseg_key(&t.path),
                shape: t.shape,
                data: t.data,
            })
            .collect()
    }
}

/// The script's answer to one image.
struct Answer {
    secs: f64,
    max_abs_diff: Option<f64>,
}

/// torch_slide_infer.py, running: requests to its stdin, answers from its stdout.
struct Script {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// Its stderr (a file: a pipe nobody reads could fill and block it).
    stderr: PathBuf,
}

impl Script {
    /// Starts the script on `dir`: it and what its sides said when set up.
    fn start(dir: &Path) -> Result<(Script, serde_json::Value), String> {
        let py = crate::bench_train::python();
        let stderr = dir.join("stderr.txt");
        let file = std::fs::File::create(&stderr).map_err(|e| e.to_string())?;
        let mut child = Command::new(&py)
            .arg(dir.join("torch_slide_infer.py"))
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(file)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot run {} ({e}): run scripts/setup-libtorch, or set SWEEP_PYTHON to a \
                     Python with torch, onnxruntime and safetensors",
                    py.display()
                )
            })?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut script = Script {
            child,
            stdin,
            stdout,
            stderr,
        };
        let ready = script.read()?;
        Ok((script, ready["sides"].clone()))
    }

    /// One line of JSON from the script, or what it said on stderr.
    fn read(&mut self) -> Result<serde_json::Value, String> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(n) if n > 0 => serde_json::from_str(&line)
                .map_err(|e| format!("the script's answer {line:?}: {e}")),
            _ => {
                let _ = self.child.wait();
                let said = std::fs::read_to_string(&self.stderr).unwrap_or_default();
                Err(format!(
                    "{} torch_slide_infer.py stopped: {}",
                    crate::bench_train::python().display(),
                    said.trim()
                ))
            }
        }
    }

    /// Image `image` on side `key`.
    fn ask(&mut self, key: &str, image: usize) -> Result<Answer, String> {
        let request = serde_json::json!({"side": key, "image": image});
        writeln!(self.stdin, "{request}")
            .and_then(|_| self.stdin.flush())
            .map_err(|e| format!("writing to the script: {e}"))?;
        let v = self.read()?;
        if let Some(e) = v["error"].as_str() {
            return Err(e.to_string());
        }
        Ok(Answer {
            secs: v["secs"]
                .as_f64()
                .ok_or_else(|| format!("no time in the script's answer {v}"))?,
            max_abs_diff: v["max_abs_diff"].as_f64(),
        })
    }

    /// Closes its stdin (it exits) and waits.
    fn finish(self) {
        let Script {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        let _ = child.wait();
    }
}

/// `n` images [3, h, w], fixed by seed 0: uniform in [-2, 2) (normalised pixels).
fn random_images(n: usize, h: usize, w: usize) -> Vec<f32> {
    let mut rng = rng_for(0, 0xBE7D, 0);
    (0..n * 3 * h * w)
        .map(|_| rng.random_range(-2.0..2.0))
        .collect()
}

fn temp_dir() -> anyhow::Result<PathBuf> {
    static RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("sweep-bench-predict-{}-{run}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("496x768"), Ok([496, 768]));
        assert!(parse_size("496").is_err());
        assert!(parse_size("0x768").is_err());
    }
}

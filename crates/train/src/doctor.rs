//! `sweep doctor`: can this binary train on this machine? Checked in seconds, before any long
//! run: which libtorch the process loaded (its files, read from the process's own memory
//! map, since a wrong `LD_LIBRARY_PATH` is the usual failure), whether that libtorch has CUDA
//! and cuDNN and sees a device, and a few real training steps on the device in each recipe
//! the GPU runs use (fp32, and bf16 convolutions in channels_last).

use crate::bench_train::{bench_step_check, BenchTrainArgs, Recipe};
use crate::DeviceChoice;
use serde::Serialize;
use std::time::Instant;

/// What `sweep doctor` found.
#[derive(Clone, Debug, Serialize)]
pub struct Diagnosis {
    pub device: String,
    /// The libtorch, CUDA and cuDNN libraries mapped into this process.
    pub libraries: Vec<String>,
    /// libtorch's CUDA hooks work (a CUDA build with a driver that answers).
    pub has_cuda: bool,
    pub cuda_available: bool,
    pub cuda_devices: i64,
    pub cudnn_available: bool,
    /// cuDNN's version ("9.10.2"), "none" without CUDA.
    pub cudnn_version: String,
    /// The CUDA runtime's version ("13.0"), "none" without CUDA.
    pub cudart_version: String,
    pub steps: Vec<StepCheck>,
    /// Why the device cannot train, when it cannot.
    pub problem: Option<String>,
}

/// A few training steps of a small UNet in one recipe.
#[derive(Clone, Debug, Serialize)]
pub struct StepCheck {
    pub recipe: String,
    pub secs: f64,
    pub loss: Option<f64>,
    pub error: Option<String>,
}

impl Diagnosis {
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// Examines the libtorch of this process and trains a few steps on `device`.
pub fn diagnose(device: DeviceChoice) -> Diagnosis {
    let has_cuda = tch::utils::has_cuda();
    let cuda_available = tch::Cuda::is_available();
    let cuda_devices = if cuda_available {
        tch::Cuda::device_count()
    } else {
        0
    };
    let mut d = Diagnosis {
        device: format!("{device:?}"),
        libraries: loaded_libraries(),
        has_cuda,
        cuda_available,
        cuda_devices,
        cudnn_available: cuda_available && tch::Cuda::cudnn_is_available(),
        cudnn_version: cudnn_version(has_cuda.then(tch::utils::version_cudnn)),
        cudart_version: cuda_version(has_cuda.then(tch::utils::version_cudart)),
        steps: Vec::new(),
        problem: None,
    };
    if let DeviceChoice::Cuda(i) = device {
        d.problem = cuda_problem(&d, i);
        if d.problem.is_some() {
            return d;
        }
    }
    let recipes = match device {
        DeviceChoice::Cpu => vec![Recipe::FP32],
        DeviceChoice::Cuda(_) => vec![Recipe::FP32, Recipe::BF16_NHWC],
    };
    d.steps = recipes
        .into_iter()
        .map(|r| check_steps(device, r))
        .collect();
    if let Some(bad) = d
        .steps
        .iter()
        .find(|s| s.error.is_some() || s.loss.is_none())
    {
        d.problem = Some(format!(
            "training steps in {} on {:?} failed: {}",
            bad.recipe,
            device,
            bad.error.as_deref().unwrap_or("the loss is not finite")
        ));
    }
    d
}

fn cuda_problem(d: &Diagnosis, index: usize) -> Option<String> {
    let library = |name: &str| d.libraries.iter().find(|l| l.contains(name)).cloned();
    let libtorch = library("libtorch_cpu").unwrap_or_else(|| "an unknown path".into());
    let visible = std::env::var("CUDA_VISIBLE_DEVICES").unwrap_or_else(|_| "unset".into());
    let Some(cuda_library) = library("libtorch_cuda") else {
        return Some(format!(
            "this libtorch has no CUDA (no libtorch_cuda.so next to {libtorch}); run with \
             LD_LIBRARY_PATH at a CUDA build's torch/lib (on the GPU machine: source .gpu/env.sh)"
        ));
    };
    if !d.has_cuda || !d.cuda_available || d.cuda_devices == 0 {
        return Some(format!(
            "libtorch has CUDA ({cuda_library}) but finds no usable GPU \
             (CUDA_VISIBLE_DEVICES={visible}); nvidia-smi tells whether the driver sees one"
        ));
    }
    if index as i64 >= d.cuda_devices {
        return Some(format!(
            "cuda:{index} asked for, but only {} device(s) are visible (CUDA_VISIBLE_DEVICES={visible})",
            d.cuda_devices
        ));
    }
    None
}

/// Three steps at 1 x 32, base 8: long enough to run every kernel a job runs, forward and
/// backward, in a fraction of a second. A kernel libtorch lacks panics inside tch, which is
/// caught and reported as this check's error.
fn check_steps(device: DeviceChoice, recipe: Recipe) -> StepCheck {
    let args = BenchTrainArgs {
        device,
        base_channels: 8,
        steps: 3,
        warmup: 0,
        ..Default::default()
    };
    let t0 = Instant::now();
    let outcome = std::panic::catch_unwind(|| bench_step_check(&args, recipe, 1, 32));
    let secs = t0.elapsed().as_secs_f64();
    let (loss, error) = match outcome {
        Ok(Ok(loss)) => (loss.is_finite().then_some(loss), None),
        Ok(Err(e)) => (None, Some(format!("{e:#}"))),
        Err(panic) => {
            let text = crate::torch_error::payload_text(panic.as_ref());
            (None, Some(crate::torch_error::summary(&text)))
        }
    };
    StepCheck {
        recipe: recipe.name().to_string(),
        secs,
        loss,
        error,
    }
}

/// The torch, CUDA and cuDNN shared libraries in this process's memory map (Linux).
fn loaded_libraries() -> Vec<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    libraries_in_maps(&maps)
}

fn libraries_in_maps(maps: &str) -> Vec<String> {
    let wanted = [
        "libtorch",
        "libc10",
        "libcudnn",
        "libcudart",
        "libcublas",
        "libnccl",
    ];
    let mut found: Vec<String> = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .filter(|path| {
            let file = path.rsplit('/').next().unwrap_or(path);
            wanted.iter().any(|w| file.starts_with(w))
        })
        .map(str::to_string)
        .collect();
    found.sort();
    found.dedup();
    found
}

/// The diagnosis as `sweep doctor` prints it.
pub fn render(d: &Diagnosis) -> String {
    let mut out = vec![format!("device: {}", d.device)];
    out.push("libraries:".into());
    out.extend(d.libraries.iter().map(|l| format!("  {l}")));
    out.push(format!(
        "CUDA: built {}, available {}, {} device(s), runtime {}",
        d.has_cuda, d.cuda_available, d.cuda_devices, d.cudart_version
    ));
    out.push(format!(
        "cuDNN: available {}, version {}",
        d.cudnn_available, d.cudnn_version
    ));
    for s in &d.steps {
        let result = match (&s.error, s.loss) {
            (Some(e), _) => format!("FAILED: {e}"),
            (None, Some(l)) => format!("ok, loss {l:.4}"),
            (None, None) => "FAILED: the loss is not finite".into(),
        };
        out.push(format!(
            "train 3 steps, {}: {result} ({:.2} s)",
            s.recipe, s.secs
        ));
    }
    out.push(match &d.problem {
        None => "ready to train".into(),
        Some(p) => format!("NOT READY: {p}"),
    });
    out.join("\n")
}

/// libtorch's cuDNN version number as people write it: 91002 -> "9.10.2".
fn cudnn_version(v: Option<i64>) -> String {
    match v {
        Some(v) if v > 0 => format!("{}.{}.{}", v / 10000, v % 10000 / 100, v % 100),
        _ => "none".into(),
    }
}

/// The CUDA runtime's version number as people write it: 13000 -> "13.0".
fn cuda_version(v: Option<i64>) -> String {
    match v {
        Some(v) if v > 0 => format!("{}.{}", v / 1000, v % 1000 / 10),
        _ => "none".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read_as_libtorch_encodes_them() {
        assert_eq!(cudnn_version(Some(91002)), "9.10.2");
        assert_eq!(cuda_version(Some(13000)), "13.0");
        assert_eq!(cuda_version(Some(12080)), "12.8");
        assert_eq!(cuda_version(Some(0)), "none");
        assert_eq!(cudnn_version(None), "none");
    }

    #[test]
    fn the_memory_map_names_the_torch_and_cuda_libraries_once() {
        let maps = "\
7f00-7f01 r-xp 00000000 08:01 1 /opt/torch/lib/libtorch_cpu.so
7f01-7f02 r--p 00001000 08:01 1 /opt/torch/lib/libtorch_cpu.so
7f02-7f03 r-xp 00000000 08:01 2 /usr/lib/libc.so.6
7f03-7f04 r-xp 00000000 08:01 3 /opt/nvidia/cudnn/lib/libcudnn.so.9
7f04-7f05 rw-p 00000000 00:00 0
";
        assert_eq!(
            libraries_in_maps(maps),
            [
                "/opt/nvidia/cudnn/lib/libcudnn.so.9",
                "/opt/torch/lib/libtorch_cpu.so"
            ]
        );
    }

    #[test]
    fn a_cuda_request_without_cuda_names_the_library_and_the_fix() {
        let d = Diagnosis {
            device: "Cuda(0)".into(),
            libraries: vec!["/x/torch/lib/libtorch_cpu.so".into()],
            has_cuda: false,
            cuda_available: false,
            cuda_devices: 0,
            cudnn_available: false,
            cudnn_version: "none".into(),
            cudart_version: "none".into(),
            steps: Vec::new(),
            problem: None,
        };
        let p = cuda_problem(&d, 0).unwrap();
        assert!(
            p.contains("has no CUDA") && p.contains("/x/torch/lib/libtorch_cpu.so"),
            "{p}"
        );
        let d = Diagnosis {
            libraries: vec![
                "/x/lib/libtorch_cpu.so".into(),
                "/x/lib/libtorch_cuda.so".into(),
            ],
            ..d
        };
        let p = cuda_problem(&d, 0).unwrap();
        assert!(
            p.contains("no usable GPU") && p.contains("/x/lib/libtorch_cuda.so"),
            "{p}"
        );
        let d = Diagnosis {
            has_cuda: true,
            cuda_available: true,
            cuda_devices: 1,
            ..d
        };
        assert!(cuda_problem(&d, 0).is_none());
        assert!(cuda_problem(&d, 1).unwrap().contains("only 1 device"));
    }
}

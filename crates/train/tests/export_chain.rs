//! The export chain from sweep's own network: a burn `Segmentor` (random weights and batch-norm
//! statistics) written as ONNX, safetensors and `.pth` must give sweep's own eval logits in
//! ONNX Runtime and in the PyTorch reference network (crates/train/tests/mmseg_reference.py,
//! loaded with strict=True), within 1e-4.
//!
//! The Python side is sweep-export's crates/export/tests/export_parity.py: `onnx` (checker
//! with full_check, then ONNX Runtime on DIR/input.npy against DIR/logits.npy) and `load`
//! (strict load of a weights file into the reference, its decode and auxiliary logits
//! against DIR/logits.npy and DIR/aux.npy). A missing package fails the test, naming
//! scripts/setup-libtorch.

use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;
use std::path::Path;
use sweep_core::job::{Head, ModelConfig};
use sweep_export::NamedTensor;
use sweep_train::checkpoint::{load_tensors, model_tensors};
use sweep_train::model::blocks::rng_for;
use sweep_train::model::{mmseg_key, Segmentor};

const BASE: usize = 8;
const INPUT: [usize; 4] = [2, 3, 64, 96];
const TOLERANCE: f64 = 1e-4;

fn head_name(head: Head) -> &'static str {
    match head {
        Head::Fcn => "fcn",
        Head::Deeplabv3 => "deeplabv3",
        Head::Pspnet => "pspnet",
    }
}

/// Runs export_parity.py with `args` (the export crate's Python side): its last stdout
/// line as JSON. Panics when Python or a package is missing or the script fails.
fn parity(args: &[&str]) -> serde_json::Value {
    crate::export_python::run(args)
}

fn number(json: &serde_json::Value, key: &str) -> f64 {
    json[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no number `{key}` in {json}"))
}

/// `data` of `shape` as a `.npy` file (`sweep predict --probabilities` writes them so).
fn write_npy(path: &Path, shape: &[usize], data: &[f32]) {
    assert_eq!(shape.iter().product::<usize>(), data.len());
    sweep_train::predict::outputs::write_npy(path, data, shape).unwrap();
}

fn values(t: Tensor<4>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

/// sweep's network of `cfg` (auxiliary head included, as the reference has one) with MMSeg's
/// initialisation, then random batch-norm statistics, weights and biases and a larger
/// `conv_seg` (logits of order 1, so that a mis-mapped tensor shows), set through the
/// checkpoint path.
fn network(cfg: &ModelConfig, seed: u64, dev: &Device) -> Segmentor {
    let model = Segmentor::init(cfg, seed, dev);
    let mut rng = rng_for(seed, 0xC4A1, 0);
    let mut entries = model_tensors(&model);
    let mut changed = 0;
    for e in &mut entries {
        let last = e.path.rsplit('.').next().unwrap();
        let range = match last {
            "running_mean" => -0.3..0.3,
            "running_var" => 0.5..2.0,
            "gamma" => 0.6..1.4,
            "beta" => -0.2..0.2,
            "weight" if e.path.contains("conv_seg") => -0.5..0.5,
            "bias" if e.path.contains("conv_seg") => -0.2..0.2,
            _ => continue,
        };
        e.data
            .iter_mut()
            .for_each(|v| *v = rng.random_range(range.clone()));
        changed += 1;
    }
    assert!(changed > 40, "only {changed} tensors randomised");
    let (model, report) = load_tensors(model, &entries, &|_| true, false);
    assert!(report.missing.is_empty() && report.mismatched.is_empty() && report.unused.is_empty());
    model
}

struct Case {
    head: Head,
    classes: usize,
    seed: u64,
}

/// Writes sweep's input, logits, auxiliary logits and the three files into a folder.
fn export_case(case: &Case, dev: &Device) -> (tempfile::TempDir, ModelConfig) {
    let cfg = ModelConfig {
        head: case.head,
        base_channels: BASE,
        num_classes: case.classes,
        ..Default::default()
    };
    assert!(cfg.aux_head);
    let model = network(&cfg, case.seed, dev);
    let mut rng = rng_for(case.seed, 0x1A9, 0);
    let n: usize = INPUT.iter().product();
    let input: Vec<f32> = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();
    let x = Tensor::<4>::from_data(TensorData::new(input.clone(), INPUT), dev);
    let logits = model.forward(x.clone());
    // No rng: no dropout; a device without autodiff: batch norm uses its running statistics.
    let aux = model
        .forward_train(x, None)
        .aux_logits
        .expect("auxiliary head");
    let (logits_shape, aux_shape) = (logits.dims(), aux.dims());
    assert_eq!(logits_shape, [2, case.classes, 64, 96]);

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_npy(&d.join("input.npy"), &INPUT, &input);
    write_npy(&d.join("logits.npy"), &logits_shape, &values(logits));
    write_npy(&d.join("aux.npy"), &aux_shape, &values(aux));
    let tensors: Vec<NamedTensor> = model_tensors(&model)
        .into_iter()
        .map(|t| NamedTensor {
            key: mmseg_key(&t.path),
            shape: t.shape,
            data: t.data,
        })
        .collect();
    let st = d.join("model.safetensors");
    sweep_export::safetensors::write(&st, &tensors, &Default::default()).unwrap();
    // `load` also compares every tensor with DIR/reference.safetensors: the same file here
    // (the .pth must then hold exactly what the safetensors file holds).
    std::fs::copy(&st, d.join("reference.safetensors")).unwrap();
    let meta = serde_json::json!({"sweep_test": "export_chain"});
    sweep_export::pth::write(&d.join("model.pth"), &tensors, &meta).unwrap();
    let onnx = sweep_export::onnx::write(&cfg, &tensors, [INPUT[2], INPUT[3]]).unwrap();
    std::fs::write(d.join("model.onnx"), onnx).unwrap();
    (dir, cfg)
}

const CASES: [Case; 3] = [
    Case {
        head: Head::Fcn,
        classes: 2,
        seed: 11,
    },
    Case {
        head: Head::Deeplabv3,
        classes: 2,
        seed: 12,
    },
    Case {
        head: Head::Pspnet,
        classes: 4,
        seed: 13,
    },
];

/// sweep's network -> `onnx::write` -> ONNX Runtime reproduces sweep's logits (the checker
/// with full_check passes first).
#[test]
fn onnx_of_sweeps_network_reproduces_its_logits() {
    crate::util::require_torch();
    let dev = Device::libtorch();
    for case in &CASES {
        let (dir, _) = export_case(case, &dev);
        let d = dir.path();
        let onnx = d.join("model.onnx");
        let r = parity(&["onnx", onnx.to_str().unwrap(), d.to_str().unwrap()]);
        let (diff, first) = (
            number(&r, "max_abs_diff"),
            number(&r, "max_abs_diff_batch_1"),
        );
        println!(
            "{} ({} classes) onnx: max |Δ| {diff:.2e} (batch 1: {first:.2e}; logits std {:.3})",
            head_name(case.head),
            case.classes,
            number(&r, "reference_std")
        );
        assert!(number(&r, "reference_std") > 0.1, "{r}");
        assert!(
            diff <= TOLERANCE && first <= TOLERANCE,
            "{}: {r}",
            head_name(case.head)
        );
    }
}

/// sweep's network -> safetensors / `.pth` -> the PyTorch reference (strict=True) reproduces
/// sweep's decode and auxiliary logits.
#[test]
fn safetensors_and_pth_of_sweeps_network_load_into_pytorch() {
    crate::util::require_torch();
    let dev = Device::libtorch();
    for case in &CASES {
        let (dir, cfg) = export_case(case, &dev);
        let d = dir.path();
        for file in ["model.safetensors", "model.pth"] {
            let weights = d.join(file);
            let [head, base, classes] = [
                head_name(cfg.head).to_string(),
                BASE.to_string(),
                cfg.num_classes.to_string(),
            ];
            let r = parity(&[
                "load",
                weights.to_str().unwrap(),
                d.to_str().unwrap(),
                &head,
                &base,
                &classes,
            ]);
            let (logits, aux) = (
                number(&r, "logits_max_abs_diff"),
                number(&r, "aux_max_abs_diff"),
            );
            println!(
                "{head} ({classes} classes) {file}: max |Δ| logits {logits:.2e}, aux {aux:.2e}"
            );
            assert!(
                logits <= TOLERANCE && aux <= TOLERANCE,
                "{head} {file}: {r}"
            );
            assert_eq!(
                number(&r, "tensors_max_abs_diff"),
                0.0,
                "{head} {file}: {r}"
            );
            if file.ends_with(".pth") {
                assert_eq!(r["meta"]["sweep_test"], "export_chain", "{r}");
                assert_eq!(r["zip_ok"], true, "{r}");
            }
        }
    }
}

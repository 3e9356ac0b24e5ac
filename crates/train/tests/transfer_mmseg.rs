//! MMSegmentation `.pth` import: parity with a PyTorch reference of MMSeg's UNet-S5-D16
//! (crates/train/tests/mmseg_reference.py, run once per test process), and the import report.
//!
//! The reference writes MMSeg-layout checkpoints ({'meta', 'state_dict'}) with random
//! weights and batch-norm statistics, a fixed input and its eval-mode logits; we import the
//! file and must reproduce the logits of the decode and auxiliary heads within 1e-4.

use burn::tensor::{Device, Tensor, TensorData};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use sweep_core::job::{Head, ModelConfig};
use sweep_train::import::{counts_by_part, init_model, SourceFormat};
use sweep_train::model::{visit_paths, Segmentor};
use sweep_train::DeviceChoice;

const BASE: usize = 8;

fn cpu() -> Device {
    sweep_train::burn_device(DeviceChoice::Cpu)
}

/// The reference's output folder (made once; kept for the process's lifetime).
fn reference() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mmseg_reference.py");
        let py = crate::util::require_torch();
        let out = Command::new(&py)
            .arg(&script)
            .arg(dir.path())
            .arg(BASE.to_string())
            .output()
            .unwrap_or_else(|e| panic!("running {} {}: {e}", py.display(), script.display()));
        assert!(
            out.status.success(),
            "{} {} failed (needs torch; scripts/setup-libtorch makes .venv): {}",
            py.display(),
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
    .path()
}

fn model_cfg(head: Head, num_classes: usize) -> ModelConfig {
    ModelConfig {
        head,
        base_channels: BASE,
        num_classes,
        ..Default::default()
    }
}

fn read_f32(path: &Path, shape: [usize; 4], dev: &Device) -> Tensor<4> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    Tensor::from_data(TensorData::new(v, shape), dev)
}

fn max_abs_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).abs().max().into_scalar::<f32>()
}

fn pth(head: &str) -> PathBuf {
    reference().join(format!("{head}.pth"))
}

fn tensor_count<M: burn::module::Module>(m: &M) -> usize {
    let mut n = 0;
    visit_paths(m, |_, _| n += 1);
    n
}

#[test]
fn imported_mmseg_weights_reproduce_pytorch_logits() {
    let dev = cpu();
    for (name, head) in [
        ("fcn", Head::Fcn),
        ("deeplabv3", Head::Deeplabv3),
        ("pspnet", Head::Pspnet),
    ] {
        let cfg = model_cfg(head, 2);
        // Seeded weights first: anything the import missed would differ from the reference.
        let model = Segmentor::init(&cfg, 7, &dev);
        let all = tensor_count(&model);
        let (model, report) = init_model(model, &cfg, &pth(name), false).unwrap();
        assert_eq!(report.format, SourceFormat::Mmseg);
        assert_eq!(report.source_head, Some(head));
        assert!(!report.backbone_only);
        assert!(
            report.missing.is_empty(),
            "{name}: missing {:?}",
            report.missing
        );
        assert_eq!(report.loaded.len(), all, "{name}");
        // MMSeg's batch norms carry `num_batches_tracked`, which we have no use for.
        assert!(
            report
                .skipped
                .iter()
                .all(|k| k.ends_with(".bn.num_batches_tracked")),
            "{name}: {:?}",
            report.skipped
        );

        let x = read_f32(
            &reference().join(format!("{name}_input.f32")),
            [2, 3, 32, 48],
            &dev,
        );
        let want = read_f32(
            &reference().join(format!("{name}_logits.f32")),
            [2, 2, 32, 48],
            &dev,
        );
        let want_aux = read_f32(
            &reference().join(format!("{name}_aux.f32")),
            [2, 2, 16, 24],
            &dev,
        );
        let out = model.forward_train(x.clone(), None); // eval batch norm: no autodiff device
        let d = max_abs_diff(out.logits.clone(), want.clone());
        let d_aux = max_abs_diff(out.aux_logits.unwrap(), want_aux);
        let d_fwd = max_abs_diff(model.forward(x), want.clone());
        let scale = want.abs().max().into_scalar::<f32>();
        eprintln!(
            "parity {name}: max |logits diff| {d:.3e}, aux {d_aux:.3e} (logits up to {scale:.3})"
        );
        assert!(
            scale > 0.1,
            "{name}: reference logits are degenerate ({scale})"
        );
        assert!(
            d < 1e-4 && d_aux < 1e-4 && d_fwd < 1e-4,
            "{name}: {d} / {d_aux} / {d_fwd}"
        );
    }
}

#[test]
fn other_head_loads_the_backbone_only_and_reports_counts() {
    let dev = cpu();
    let cfg = model_cfg(Head::Deeplabv3, 2);
    let model = Segmentor::init(&cfg, 1, &dev);
    let before = sweep_train::checkpoint::model_tensors(&model);
    let (model, r) = init_model(model, &cfg, &pth("fcn"), false).unwrap();
    assert!(r.backbone_only);
    assert_eq!(r.source_head, Some(Head::Fcn));
    assert!(
        r.backbone_only_reason.as_deref().unwrap().contains("FCN"),
        "{:?}",
        r.backbone_only_reason
    );
    // Base 8 backbone: 5 encoder stages x 2 ConvModules + 4 decoder blocks x 3 ConvModules
    // = 22 ConvModules, each conv.weight + bn {gamma, beta, running_mean, running_var}.
    assert_eq!(r.loaded.len(), 22 * 5);
    assert!(r.loaded.iter().all(|k| k.starts_with("backbone.")));
    // Skipped: 22 backbone num_batches_tracked + the file's FCN decode head (convs.0: 6 with
    // num_batches_tracked, conv_seg: 2) + auxiliary head (the same 8).
    assert_eq!(r.skipped.len(), 22 + 8 + 8);
    assert_eq!(
        counts_by_part(&r.skipped).into_iter().collect::<Vec<_>>(),
        vec![
            ("auxiliary_head".to_string(), 8),
            ("backbone".to_string(), 22),
            ("decode_head".to_string(), 8)
        ]
    );
    // Missing: our ASPP head (image_pool + 4 branches + bottleneck = 6 ConvModules x 5,
    // conv_seg 2) and auxiliary head (5 + 2).
    assert_eq!(r.missing.len(), 6 * 5 + 2 + 7);
    assert!(r.missing.iter().all(|k| !k.starts_with("backbone.")));
    // The heads kept their seeded initialisation.
    let after = sweep_train::checkpoint::model_tensors(&model);
    for (b, a) in before.iter().zip(&after) {
        if !a.path.starts_with("backbone.") {
            assert_eq!(a.data, b.data, "{}", a.path);
        }
    }
    let lines = r.log_lines();
    assert!(
        lines[0].contains("backbone only")
            && lines[0].contains("loaded 110, skipped 38, missing 39"),
        "{}",
        lines[0]
    );
    assert!(
        lines[2].contains("decode_head.conv_seg.{bias, weight}"),
        "{}",
        lines[2]
    );
}

#[test]
fn other_class_count_or_request_loads_the_backbone_only() {
    let dev = cpu();
    let cfg = model_cfg(Head::Fcn, 3);
    let (_, r) = init_model(Segmentor::new(&cfg, &dev), &cfg, &pth("fcn"), false).unwrap();
    assert!(r.backbone_only);
    assert_eq!(r.source_classes, Some(2));
    assert!(r.backbone_only_reason.unwrap().contains("2 classes"));
    assert_eq!(r.loaded.len(), 110);

    let cfg = model_cfg(Head::Fcn, 2);
    let (_, r) = init_model(Segmentor::new(&cfg, &dev), &cfg, &pth("fcn"), true).unwrap();
    assert_eq!(
        r.backbone_only_reason.as_deref(),
        Some("init.backbone_only")
    );
    assert_eq!((r.loaded.len(), r.missing.len()), (110, 14));
}

#[test]
fn shape_mismatch_names_the_key_and_both_shapes() {
    let dev = cpu();
    let cfg = ModelConfig {
        base_channels: 4,
        ..model_cfg(Head::Fcn, 2)
    };
    let e = init_model(Segmentor::new(&cfg, &dev), &cfg, &pth("fcn"), false)
        .expect_err("base 8 weights do not fit a base 4 model")
        .to_string();
    assert!(
        e.contains("backbone.encoder.0.0.convs.0.conv.weight: [8, 3, 3, 3] in the file, [4, 3, 3, 3] in the model"),
        "{e}"
    );
    assert!(e.contains("fcn.pth"), "{e}");
}

#[test]
fn unreadable_files_are_refused_with_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("junk.pth");
    std::fs::write(&bad, b"not a checkpoint at all").unwrap();
    let cfg = model_cfg(Head::Fcn, 2);
    let e = init_model(Segmentor::new(&cfg, &cpu()), &cfg, &bad, false)
        .expect_err("junk is refused")
        .to_string();
    assert!(
        e.contains("junk.pth") && e.contains("neither a sweep checkpoint nor"),
        "{e}"
    );
}

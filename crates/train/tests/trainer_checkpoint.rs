//! Checkpoints: round trip, exact resume of model + optimiser, atomic writes.

use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use std::io::{self, Write};
use sweep_core::job::{JobConfig, ModelConfig};
use sweep_train::checkpoint::{load_tensors, model_tensors, write_atomic, Checkpoint};
use sweep_train::loss::total_loss;
use sweep_train::model::blocks::rng_for;
use sweep_train::model::Segmentor;
use sweep_train::optim::build_optimizer;
use sweep_train::DeviceChoice;

fn cpu() -> Device {
    // One libtorch thread: tiny networks gain nothing from more, and CI shares its 2 cores.
    sweep_train::train::set_cpu_threads(1);
    sweep_train::burn_device(DeviceChoice::Cpu)
}

fn tiny() -> JobConfig {
    JobConfig {
        model: ModelConfig {
            base_channels: 4,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn batch(dev: &Device, seed: u64) -> (Tensor<4>, Tensor<3, Int>) {
    let n = 2 * 3 * 32 * 32;
    let img: Vec<f32> = (0..n)
        .map(|i| (((i as u64 * 2_654_435_761 + seed) % 1000) as f32) / 500.0 - 1.0)
        .collect();
    let lab: Vec<i64> = (0..2 * 32 * 32)
        .map(|i| ((i / 7 + seed as usize) % 2) as i64)
        .collect();
    (
        Tensor::from_data(TensorData::new(img, [2, 3, 32, 32]), dev),
        Tensor::from_data(TensorData::new(lab, [2, 32, 32]), dev),
    )
}

fn step(
    model: Segmentor,
    optim: &mut burn::optim::ModuleOptimizer,
    cfg: &JobConfig,
    it: u64,
    dev: &Device,
) -> Segmentor {
    let (x, y) = batch(dev, it);
    let mut rng = rng_for(cfg.seed, 1, it);
    let out = model.forward_train(x, Some(&mut rng));
    let loss = total_loss(&out, &y, cfg);
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    optim.step(0.01, model, grads)
}

fn ckpt(model: &Segmentor, optim: &burn::optim::ModuleOptimizer, iteration: usize) -> Checkpoint {
    Checkpoint {
        iteration,
        config_hash: tiny().hash(),
        last_loss: Some(0.5),
        tensors: model_tensors(model),
        optimizer: optim.into_bytes().unwrap().to_vec(),
    }
}

#[test]
fn resume_from_checkpoint_continues_exactly() {
    let cfg = tiny();
    let dev = cpu().autodiff();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.ckpt");

    let mut optim = build_optimizer(&cfg.optimizer);
    let mut model = Segmentor::init(&cfg.model, 0, &dev);
    for it in 0..2 {
        model = step(model, &mut optim, &cfg, it, &dev);
    }
    ckpt(&model, &optim, 2).save(&path).unwrap();

    // Resume in a fresh model (other seed: every value must come from the file).
    let loaded = Checkpoint::load(&path).unwrap();
    assert_eq!(loaded.iteration, 2);
    assert_eq!(loaded.last_loss, Some(0.5));
    let (mut resumed, report) = load_tensors(
        Segmentor::init(&cfg.model, 99, &dev),
        &loaded.tensors,
        &|_| true,
        true,
    );
    assert!(report.missing.is_empty() && report.mismatched.is_empty() && report.unused.is_empty());
    // Running statistics are part of the checkpoint (and were updated by training).
    let rv = loaded
        .tensors
        .iter()
        .find(|t| t.path == "backbone.encoder.0.convs.0.bn.running_var")
        .unwrap();
    assert!(rv.data.iter().any(|v| *v != 1.0));
    let mut optim2 = build_optimizer(&cfg.optimizer)
        .from_bytes(burn::tensor::Bytes::from_bytes_vec(
            loaded.optimizer.clone(),
        ))
        .unwrap();

    model = step(model, &mut optim, &cfg, 2, &dev);
    resumed = step(resumed, &mut optim2, &cfg, 2, &dev);
    let a = model_tensors(&model);
    let b = model_tensors(&resumed);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.path, y.path);
        assert_eq!(x.data, y.data, "{} differs after resume", x.path);
    }

    // Without the optimiser state the next step differs (momentum matters): the test can fail.
    let (fresh, _) = load_tensors(
        Segmentor::init(&cfg.model, 99, &dev),
        &loaded.tensors,
        &|_| true,
        true,
    );
    let mut optim3 = build_optimizer(&cfg.optimizer);
    let fresh = step(fresh, &mut optim3, &cfg, 2, &dev);
    let c = model_tensors(&fresh);
    assert!(a.iter().zip(&c).any(|(x, y)| x.data != y.data));
}

/// Fails after `left` bytes, like a full disk.
struct FailAfter<'a> {
    inner: &'a mut dyn Write,
    left: usize,
}

impl Write for FailAfter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::other("injected: no space left"));
        }
        let n = buf.len().min(self.left);
        self.left -= n;
        self.inner.write(&buf[..n])
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[test]
fn a_write_failing_half_way_keeps_the_previous_checkpoint() {
    let cfg = tiny();
    let dev = cpu();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.ckpt");
    let optim = build_optimizer(&cfg.optimizer);
    let first = ckpt(&Segmentor::init(&cfg.model, 1, &dev), &optim, 10);
    first.save(&path).unwrap();

    let second = ckpt(&Segmentor::init(&cfg.model, 2, &dev), &optim, 20);
    let mut full = Vec::new();
    second.write_to(&mut full).unwrap();
    let err = write_atomic(&path, |w| {
        second.write_to(&mut FailAfter {
            inner: w,
            left: full.len() / 2,
        })
    })
    .unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");

    assert_eq!(Checkpoint::load(&path).unwrap(), first);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("checkpoint.ckpt")],
        "temporary file left behind"
    );

    // A successful write replaces it.
    second.save(&path).unwrap();
    assert_eq!(Checkpoint::load(&path).unwrap().iteration, 20);
}

#[test]
fn a_truncated_or_corrupted_file_is_refused() {
    let cfg = tiny();
    let c = ckpt(
        &Segmentor::init(&cfg.model, 1, &cpu()),
        &build_optimizer(&cfg.optimizer),
        3,
    );
    let mut bytes = Vec::new();
    c.write_to(&mut bytes).unwrap();
    assert_eq!(Checkpoint::read_from(&mut bytes.as_slice()).unwrap(), c);
    let cut = &bytes[..bytes.len() - 100];
    assert!(Checkpoint::read_from(&mut &cut[..])
        .unwrap_err()
        .to_string()
        .contains("checksum"));
    let mut flipped = bytes.clone();
    flipped[200] ^= 1;
    assert!(Checkpoint::read_from(&mut flipped.as_slice()).is_err());
}

#[test]
fn partial_load_skips_other_heads_and_shapes() {
    let dev = cpu();
    let mut src_cfg = tiny();
    src_cfg.model.head = sweep_core::job::Head::Pspnet;
    src_cfg.model.num_classes = 3;
    let src = model_tensors(&Segmentor::init(&src_cfg.model, 1, &dev));
    let dst = Segmentor::init(&tiny().model, 2, &dev); // FCN, 2 classes
    let before = model_tensors(&dst);
    let (dst, report) = load_tensors(dst, &src, &|p| p.starts_with("backbone."), false);
    let after = model_tensors(&dst);
    for (b, a) in before.iter().zip(&after) {
        let s = src.iter().find(|t| t.path == a.path);
        if a.path.starts_with("backbone.") {
            assert_eq!(&a.data, &s.unwrap().data, "{}", a.path);
            assert_eq!(a.id, b.id, "ids are kept when not restoring");
        } else {
            assert_eq!(a.data, b.data, "{}", a.path);
        }
    }
    assert!(report
        .unused
        .iter()
        .any(|p| p.starts_with("decode_head.psp_modules")));
    // Without the filter the 3-class conv_seg is a shape mismatch, not a load.
    let (_, report) = load_tensors(Segmentor::new(&tiny().model, &dev), &src, &|_| true, false);
    assert!(report
        .mismatched
        .iter()
        .any(|m| m.starts_with("decode_head.conv_seg.weight")));
}

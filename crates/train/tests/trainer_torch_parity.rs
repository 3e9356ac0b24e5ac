//! sweep's network, loss and batch norm against the same network in PyTorch
//! (`crates/train/src/torch_train_step.py --parity`): identical weights and batch give the same loss,
//! gradients and updated running statistics, for every head. Needs the Python that provided
//! libtorch (the workspace's `.venv/bin/python`, or `SWEEP_PYTHON`); fails, saying so, where it
//! has no torch.

use burn::module::{ModuleVisitor, Param};
use burn::tensor::{Int, Tensor, TensorData};
use serde_json::json;
use std::collections::BTreeMap;
use std::process::Command;
use sweep_core::job::{Head, JobConfig};
use sweep_train::checkpoint::model_tensors;
use sweep_train::loss::total_loss;
use sweep_train::model::Segmentor;
use sweep_train::DeviceChoice;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/torch_train_step.py");

/// Gradients of the parameters named in `want`, by path.
struct Grads<'a> {
    path: Vec<String>,
    want: &'a [&'a str],
    grads: &'a burn::tensor::Gradients,
    out: BTreeMap<String, Vec<f32>>,
}

impl ModuleVisitor for Grads<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let path = self.path.join(".");
        if self.want.contains(&path.as_str()) {
            let g = param.val().grad(self.grads).expect("a gradient");
            let v = g.into_data().try_into_vec_as::<f32>().unwrap();
            self.out.insert(path, v);
        }
    }
}

/// PyTorch's name of a parameter (batch norm weight/bias are burn's gamma/beta).
fn torch_name(p: &str) -> String {
    p.replace("bn.gamma", "bn.weight")
        .replace("bn.beta", "bn.bias")
}

fn rel_err(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let diff: f64 = a.iter().zip(b).map(|(x, y)| (*x as f64 - y).powi(2)).sum();
    let norm: f64 = b.iter().map(|y| y * y).sum();
    (diff / norm.max(1e-30)).sqrt()
}

#[test]
fn network_loss_and_batch_norm_match_pytorch() {
    // No torch is a failure, not a skip: this is the only check against PyTorch's network.
    let py = crate::util::require_torch();
    sweep_train::train::set_cpu_threads(1);
    let dev = sweep_train::burn_device(DeviceChoice::Cpu).autodiff();
    let dir = tempfile::tempdir().unwrap();
    // Per head: (name, input file, our loss, our gradients, our buffers).
    let mut cases = Vec::new();
    for (head, name, extra) in [
        (
            Head::Fcn,
            "fcn",
            [
                "decode_head.convs.0.conv.weight",
                "decode_head.convs.0.bn.running_var",
            ],
        ),
        (
            Head::Deeplabv3,
            "deeplabv3",
            [
                "decode_head.aspp_modules.3.conv.weight",
                "decode_head.image_pool.bn.running_var",
            ],
        ),
        (
            Head::Pspnet,
            "pspnet",
            [
                "decode_head.psp_modules.3.conv.weight",
                "decode_head.psp_modules.0.bn.running_var",
            ],
        ),
    ] {
        let mut cfg = JobConfig::default();
        cfg.model.base_channels = 4;
        cfg.model.head = head;
        let model = Segmentor::init(&cfg.model, 3, &dev);
        let weights: serde_json::Map<String, serde_json::Value> = model_tensors(&model)
            .into_iter()
            .map(|t| (t.path, json!({"shape": t.shape, "data": t.data})))
            .collect();

        // Batch: 2 x 32x32, some pixels ignored.
        let (n, s) = (2usize, 32usize);
        let img: Vec<f32> = (0..n * 3 * s * s)
            .map(|i| ((i * 7919) % 997) as f32 / 500.0 - 1.0)
            .collect();
        let lab: Vec<i64> = (0..n * s * s)
            .map(|i| {
                if i % 37 == 0 {
                    255
                } else {
                    ((i / 13) % 2) as i64
                }
            })
            .collect();
        let x = Tensor::<4>::from_data(TensorData::new(img.clone(), [n, 3, s, s]), &dev);
        let y = Tensor::<3, Int>::from_data(TensorData::new(lab.clone(), [n, s, s]), &dev);

        // Default loss: CE on the decode head + 0.4 x CE on the (resized) auxiliary head.
        let out = model.forward_train(x, None);
        let loss = total_loss(&out, &y, &cfg);
        let loss_v = loss.clone().into_scalar::<f32>() as f64;
        let grads = loss.backward();
        let want_grads = [
            "backbone.encoder.0.convs.0.conv.weight",
            "backbone.encoder.4.convs.1.conv.weight",
            "backbone.decoder.0.upsample.conv.weight",
            "backbone.decoder.3.conv_block.convs.1.bn.gamma",
            "decode_head.conv_seg.weight",
            "decode_head.conv_seg.bias",
            "auxiliary_head.convs.0.conv.weight",
            extra[0],
        ];
        let mut v = Grads {
            path: Vec::new(),
            want: &want_grads,
            grads: &grads,
            out: BTreeMap::new(),
        };
        burn::module::Module::visit(&model, &mut v);
        let ours_grads = v.out;
        assert_eq!(ours_grads.len(), want_grads.len());
        // Running variances after this training forward (PyTorch: unbiased batch variance).
        let want_buffers = ["backbone.encoder.2.convs.0.bn.running_var", extra[1]];
        let after = model_tensors(&model);

        let input = dir.path().join(format!("{name}.json"));
        std::fs::write(
            &input,
            json!({
                "head": name, "base": 4, "classes": 2, "n": n, "s": s,
                "weights": weights, "img": img, "lab": lab,
                "grads": want_grads.iter().map(|p| torch_name(p)).collect::<Vec<_>>(),
                "buffers": want_buffers,
            })
            .to_string(),
        )
        .unwrap();
        let buffers: Vec<(String, Vec<f32>)> = want_buffers
            .iter()
            .map(|p| {
                let t = after.iter().find(|t| t.path == *p).unwrap();
                (p.to_string(), t.data.clone())
            })
            .collect();
        cases.push((name, input, loss_v, ours_grads, buffers));
    }

    let res = Command::new(&py)
        .arg(SCRIPT)
        .arg("--parity")
        .args(cases.iter().map(|c| &c.1))
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let stdout = String::from_utf8(res.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), cases.len(), "{stdout}");
    for ((name, _, loss_v, ours_grads, buffers), line) in cases.iter().zip(lines) {
        let theirs: serde_json::Value = serde_json::from_str(line).unwrap();
        let t_loss = theirs["loss"].as_f64().unwrap();
        assert!(
            (loss_v - t_loss).abs() < 1e-5 * t_loss,
            "{name}: loss {loss_v} vs {t_loss}"
        );
        for (path, g) in ours_grads {
            let t: Vec<f64> =
                serde_json::from_value(theirs["grads"][torch_name(path)].clone()).unwrap();
            let e = rel_err(g, &t);
            assert!(e < 1e-3, "{name}: gradient of {path}: relative error {e}");
        }
        for (path, ours) in buffers {
            let t: Vec<f64> = serde_json::from_value(theirs["buffers"][path].clone()).unwrap();
            let e = rel_err(ours, &t);
            assert!(e < 1e-5, "{name}: {path}: relative error {e}");
        }
    }
}

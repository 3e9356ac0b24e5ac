//! The Python side: a seeded reference network, and checks that print JSON.

use std::path::{Path, PathBuf};
use std::process::Command;

use sweep_core::job::{Head, ModelConfig};
use sweep_export::NamedTensor;

/// The workspace root (crates/export/../..).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `SWEEP_PYTHON`, else the workspace's `.venv/bin/python` (scripts/setup-libtorch), else
/// `python3`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("SWEEP_PYTHON") {
        return p.into();
    }
    let venv = workspace().join(".venv/bin/python");
    if venv.exists() {
        return venv;
    }
    "python3".into()
}

/// Runs export_parity.py with `args`; its stdout's last line as JSON. Panics (the test
/// fails) when Python or a package is missing, or the script fails.
pub fn run(args: &[&str]) -> serde_json::Value {
    let py = python();
    // By the workspace root: the train crate's tests run this file too.
    let script = workspace().join("crates/export/tests/export_parity.py");
    let out = Command::new(&py)
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): run scripts/setup-libtorch (it makes {}/.venv), or set \
                 SWEEP_PYTHON to a Python with torch, onnx, onnxruntime and safetensors",
                py.display(),
                workspace().display()
            )
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} export_parity.py {args:?} failed ({}):\n{stderr}",
        py.display(),
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    if line.is_empty() {
        return serde_json::Value::Null;
    }
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// One reference network: head, base channels, classes, weight seed.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    pub head: Head,
    pub base: usize,
    pub classes: usize,
    pub seed: u64,
}

/// The input size of the parity tests: not square, PSP bins of 64 / 3 and 64 / 6 overlap.
pub const SIZE: [usize; 2] = [64, 96];

impl Case {
    pub fn new(head: Head, classes: usize) -> Self {
        Case {
            head,
            base: 8,
            classes,
            seed: 1000 + classes as u64,
        }
    }

    pub fn head_name(&self) -> &'static str {
        match self.head {
            Head::Fcn => "fcn",
            Head::Deeplabv3 => "deeplabv3",
            Head::Pspnet => "pspnet",
        }
    }

    pub fn config(&self) -> ModelConfig {
        ModelConfig {
            head: self.head,
            base_channels: self.base,
            num_classes: self.classes,
            ..Default::default()
        }
    }

    /// Head, base, classes as the script's arguments.
    pub fn args(&self) -> [String; 3] {
        [
            self.head_name().to_string(),
            self.base.to_string(),
            self.classes.to_string(),
        ]
    }

    /// Writes the reference to `dir` (reference.safetensors, input.npy, logits.npy, aux.npy)
    /// and returns its tensors as `sweep_export::safetensors::read` gives them.
    pub fn reference(&self, dir: &Path) -> Vec<NamedTensor> {
        let [head, base, classes] = self.args();
        let (seed, h, w) = (
            self.seed.to_string(),
            SIZE[0].to_string(),
            SIZE[1].to_string(),
        );
        let d = dir.to_str().unwrap();
        run(&["reference", d, &head, &base, &classes, &seed, &h, &w]);
        sweep_export::safetensors::read(&dir.join("reference.safetensors")).unwrap()
    }
}

/// A number of a check's JSON output.
pub fn number(json: &serde_json::Value, key: &str) -> f64 {
    json[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no number `{key}` in {json}"))
}

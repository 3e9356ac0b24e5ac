//! The package folder: `metadata.json` says everything a user of the networks needs (classes,
//! palette, normalisation, the inference recipe, the model config, where the data came from,
//! the metrics with their intervals) and the SHA-256 of every other file, so that a missing
//! or edited file is named before anything is used.
//!
//! Field names follow a MONAI bundle's `metadata.json` where one fits (`version`,
//! `task`, `description`, `data_license`, `network_data_format`); the rest are `sweep`'s.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use sweep_core::job::{EvalMode, ModelConfig};

pub const METADATA_FILE: &str = "metadata.json";
/// The layout this code writes and reads.
pub const FORMAT: &str = "sweep-package/1";

/// How an image becomes the network's input and its logits a prediction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    /// Resize keeping the aspect ratio so that the long edge is at most max(scale) and the
    /// short at most min(scale) (mmcv's `rescale_size`, bilinear), `[w, h]`.
    pub resize_scale: [usize; 2],
    /// Normalisation per RGB channel: `(v - mean) / std` on 0..255 values; a grayscale image
    /// is repeated into three channels first.
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// `slide`: `crop` x `crop` windows every `stride` pixels, logits averaged where they
    /// overlap (MMSeg's slide_inference); `whole`: the image at once.
    pub mode: EvalMode,
    pub crop: usize,
    pub stride: usize,
    /// Inputs are padded bottom / right with zeros to a multiple of this (UNet-S5-D16).
    pub pad_multiple: usize,
    /// Logits resized bilinearly (align_corners false) to the image's original size, then
    /// argmax over classes; an ensemble averages softmax probabilities first.
    pub output: String,
}

/// One network of the package (one per seed or fold of an ensemble).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// The job that trained it: id, hash, seed, and its fold when cross-validated.
    pub job_id: i64,
    pub job_hash: String,
    pub seed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fold: Option<String>,
    /// Its files by format (`safetensors`, `onnx`, `pth`).
    pub files: BTreeMap<String, String>,
}

/// A metric of the packaged configuration over its runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    pub split: String,
    pub mean: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<f64>,
    /// Student's t 95% interval of the mean over the runs (two or more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci95: Option<[f64; 2]>,
    pub runs: usize,
}

/// What `model.onnx` takes and gives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OnnxInfo {
    pub opset: i64,
    pub input: String,
    pub output: String,
    /// `[N, 3, H, W]` with N free and H, W fixed: a slide window (or the padded image).
    pub input_shape: [String; 4],
    pub output_shape: [String; 4],
}

/// Where the networks' training data came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    pub dataset: String,
    /// `train:<sha256> val:<sha256>` of the files trained and scored on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// mm per pixel `[x, y]`, when the data set states it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spacing: Option<[f64; 2]>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub format: String,
    pub name: String,
    /// The `sweep` that wrote the package: version and commit.
    pub version: String,
    pub task: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_license: Option<String>,
    pub classes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub palette: Option<Vec<[u8; 3]>>,
    pub input_channels: usize,
    pub inference: Recipe,
    pub model: ModelConfig,
    pub data: DataInfo,
    pub metrics: Vec<MetricSummary>,
    pub networks: Vec<Network>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onnx: Option<OnnxInfo>,
    /// MONAI's description of the inputs and outputs.
    pub network_data_format: serde_json::Value,
    /// SHA-256 (hex) of every other file of the package.
    pub checksums: BTreeMap<String, String>,
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

impl Metadata {
    /// MONAI's `network_data_format` for these classes and channels.
    pub fn data_format(classes: &[String], channels: usize) -> serde_json::Value {
        let channel_def: BTreeMap<String, &String> = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (i.to_string(), c))
            .collect();
        serde_json::json!({
            "inputs": {"image": {
                "type": "image", "format": "magnitude", "modality": "image",
                "num_channels": channels, "dtype": "float32",
                "value_range": ["(v - mean) / std, see inference"],
                "is_patch_data": true, "channel_def": {"0": "R", "1": "G", "2": "B"}
            }},
            "outputs": {"pred": {
                "type": "image", "format": "segmentation", "dtype": "float32",
                "num_channels": classes.len(), "value_range": ["logits"],
                "is_patch_data": true, "channel_def": channel_def
            }}
        })
    }

    /// Records the checksum of every file the networks name (they must exist in `dir`) and
    /// writes `metadata.json` there.
    pub fn seal(&mut self, dir: &Path) -> Result<()> {
        self.checksums.clear();
        for net in &self.networks {
            for file in net.files.values() {
                self.checksums
                    .insert(file.clone(), sha256_file(&dir.join(file))?);
            }
        }
        for extra in ["README.md"] {
            if dir.join(extra).exists() {
                self.checksums
                    .insert(extra.into(), sha256_file(&dir.join(extra))?);
            }
        }
        let text = serde_json::to_string_pretty(self).expect("metadata serialises");
        let path = dir.join(METADATA_FILE);
        std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }

    /// Reads a package's metadata and checks every file against its checksum: a missing or
    /// edited file is an error that names it.
    pub fn open(dir: &Path) -> Result<Metadata> {
        let path = dir.join(METADATA_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{}: not a sweep package (no {METADATA_FILE})",
                dir.display()
            )
        })?;
        let meta: Metadata =
            serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
        if meta.format != FORMAT {
            bail!(
                "{}: format {:?}, this sweep reads {FORMAT:?}",
                path.display(),
                meta.format
            );
        }
        for net in &meta.networks {
            for file in net.files.values() {
                if !meta.checksums.contains_key(file) {
                    bail!("{}: {file} has no checksum", path.display());
                }
            }
        }
        for (file, want) in &meta.checksums {
            // Names inside the package only: a metadata file must not point elsewhere.
            if file.contains(['/', '\\']) || file.starts_with('.') {
                bail!(
                    "{}: {file:?} is not a file name of the package",
                    path.display()
                );
            }
            let p = dir.join(file);
            if !p.exists() {
                bail!(
                    "{}: missing from the package ({METADATA_FILE} lists it)",
                    p.display()
                );
            }
            if &sha256_file(&p)? != want {
                bail!(
                    "{}: changed since the package was written (its SHA-256 is not the one {METADATA_FILE} records)",
                    p.display()
                );
            }
        }
        Ok(meta)
    }

    /// The file of `format` of every network, in order.
    pub fn files(&self, format: &str) -> Result<Vec<&str>> {
        self.networks
            .iter()
            .enumerate()
            .map(|(i, n)| match n.files.get(format) {
                Some(f) => Ok(f.as_str()),
                None => bail!("network {i} of the package has no {format} file"),
            })
            .collect()
    }
}

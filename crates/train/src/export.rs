//! `sweep export`: the final checkpoints of a job (or of every seed and fold of a
//! configuration) written as a package ([`sweep_export::package`]) that needs neither the
//! results database nor the runs folder: `metadata.json`, one `model.safetensors` /
//! `model.onnx` per network, and a README saying how to load them.

use crate::trained::{
    describe_data, final_checkpoint, job_config, mmseg_tensors, one_configuration, recipe_of,
};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use sweep_core::job::{EvalMode, JobConfig, SplitConfig};
use sweep_core::store::JobRow;
use sweep_export::package::{DataInfo, Metadata, MetricSummary, Network, OnnxInfo, FORMAT};
use sweep_export::{onnx, pth, safetensors, NamedTensor};

/// The files a package can hold per network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Safetensors,
    Onnx,
    /// PyTorch's `torch.save` file in MMSeg's checkpoint layout (`{'meta', 'state_dict'}`).
    Pth,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Safetensors => "safetensors",
            Format::Onnx => "onnx",
            Format::Pth => "pth",
        }
    }
}

/// What was written.
#[derive(Clone, Debug)]
pub struct Exported {
    pub dir: PathBuf,
    pub files: Vec<String>,
    pub networks: usize,
}

/// Writes the package of `rows` (one configuration) into `out`, which must be absent or empty.
pub fn export(rows: &[JobRow], out: &Path, formats: &[Format]) -> Result<Exported> {
    let cfg = one_configuration(rows)?;
    // Read every checkpoint before anything is written: a missing one leaves no half package.
    let weights = rows
        .iter()
        .map(|r| final_checkpoint(r).map(|ck| mmseg_tensors(&ck)))
        .collect::<Result<Vec<_>>>()?;
    prepare_dir(out)?;
    let size = onnx_size(&cfg);
    let mut networks = Vec::new();
    for (i, (row, tensors)) in rows.iter().zip(&weights).enumerate() {
        let stem = if rows.len() == 1 {
            "model".to_string()
        } else {
            format!("model-{}", i + 1)
        };
        let mut files = BTreeMap::new();
        for &f in formats {
            let file = format!("{stem}.{}", f.name());
            write_network(&out.join(&file), f, &cfg, tensors, size, row)?;
            files.insert(f.name().to_string(), file);
        }
        networks.push(Network {
            job_id: row.job_id,
            job_hash: row.hash.clone(),
            seed: row.seed,
            fold: fold_of(&job_config(row)?),
            files,
        });
    }
    let mut meta = metadata(
        rows,
        &cfg,
        networks,
        formats.contains(&Format::Onnx).then_some(size),
    );
    std::fs::write(out.join("README.md"), readme(&meta))
        .with_context(|| format!("writing {}", out.join("README.md").display()))?;
    meta.seal(out)?;
    let mut files: Vec<String> = meta.checksums.keys().cloned().collect();
    files.push(sweep_export::package::METADATA_FILE.into());
    Ok(Exported {
        dir: out.to_path_buf(),
        files,
        networks: rows.len(),
    })
}

fn fold_of(cfg: &JobConfig) -> Option<String> {
    match cfg.data.split {
        SplitConfig::Fold { folds, fold, .. } => Some(format!("{fold}/{folds}")),
        _ => None,
    }
}

fn prepare_dir(out: &Path) -> Result<()> {
    if out.exists() {
        let mut entries =
            std::fs::read_dir(out).with_context(|| format!("reading {}", out.display()))?;
        if entries.next().is_some() {
            bail!("{}: not empty; export into a new folder", out.display());
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))
}

/// The ONNX graph's fixed input height and width: a slide window (the crop, padded to a
/// multiple of 16), or for whole-image inference the resize scale padded the same way.
fn onnx_size(cfg: &JobConfig) -> [usize; 2] {
    let up16 = |v: usize| v.div_ceil(16) * 16;
    match cfg.eval.mode {
        EvalMode::Slide => [up16(cfg.eval.crop), up16(cfg.eval.crop)],
        EvalMode::Whole => {
            let [a, b] = cfg.data.scale;
            [up16(a.min(b)), up16(a.max(b))]
        }
    }
}

fn write_network(
    path: &Path,
    format: Format,
    cfg: &JobConfig,
    tensors: &[NamedTensor],
    size: [usize; 2],
    row: &JobRow,
) -> Result<()> {
    match format {
        Format::Safetensors => {
            let meta = BTreeMap::from([
                ("format".to_string(), "pt".to_string()),
                ("sweep_job".to_string(), row.hash.clone()),
            ]);
            safetensors::write(path, tensors, &meta)
        }
        Format::Pth => {
            let meta = serde_json::json!({
                "sweep_job": row.hash,
                "sweep_version": sweep_core::protocol::sweep_version(),
                "CLASSES": row.classes,
            });
            pth::write(path, tensors, &meta)
        }
        Format::Onnx => {
            let bytes = onnx::write(&cfg.model, tensors, size)
                .with_context(|| format!("job {}: the ONNX graph", row.job_id))?;
            std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
        }
    }
}

/// The package's description of `rows`.
fn metadata(
    rows: &[JobRow],
    cfg: &JobConfig,
    networks: Vec<Network>,
    onnx_size: Option<[usize; 2]>,
) -> Metadata {
    let first = &rows[0];
    let data = describe_data(cfg);
    let classes = first.classes.clone();
    let c = classes.len().max(cfg.model.num_classes);
    Metadata {
        format: FORMAT.into(),
        name: first.label.clone(),
        version: sweep_core::protocol::sweep_version(),
        task: "2-D semantic segmentation".into(),
        description: format!(
            "{} ({} network{}) trained by sweep on {}: UNet-S5-D16 with a {} decode head",
            first.label,
            rows.len(),
            if rows.len() == 1 {
                ""
            } else {
                "s, an ensemble: average their softmax probabilities"
            },
            cfg.data.dataset,
            cfg.model.head.display()
        ),
        data_license: data.as_ref().and_then(|d| d.licence.clone()),
        palette: data.and_then(|d| d.palette),
        input_channels: crate::model::IN_CHANNELS,
        inference: recipe_of(cfg),
        model: cfg.model.clone(),
        data: DataInfo {
            dataset: cfg.data.dataset.clone(),
            fingerprint: first.data_fingerprint.clone(),
            spacing: cfg.data.pixel_spacing,
        },
        metrics: metric_summaries(rows),
        networks,
        onnx: onnx_size.map(|[h, w]| OnnxInfo {
            opset: onnx::OPSET,
            input: "input".into(),
            output: "logits".into(),
            input_shape: ["N".into(), "3".into(), h.to_string(), w.to_string()],
            output_shape: ["N".into(), c.to_string(), h.to_string(), w.to_string()],
        }),
        network_data_format: Metadata::data_format(&classes, crate::model::IN_CHANNELS),
        checksums: BTreeMap::new(),
        classes,
    }
}

/// The validation summaries (means, per-class Dice and IoU) over the runs, with t intervals.
fn metric_summaries(rows: &[JobRow]) -> Vec<MetricSummary> {
    const NAMES: [&str; 6] = ["mDice", "mIoU", "mAcc", "aAcc", "mFscore", "Dice"];
    let mut by_key: BTreeMap<(usize, Option<usize>), Vec<f64>> = BTreeMap::new();
    for row in rows {
        for m in row.metrics.iter().filter(|m| m.split == "val") {
            if let Some(i) = NAMES.iter().position(|n| *n == m.name) {
                by_key.entry((i, m.class)).or_default().push(m.value);
            }
        }
    }
    by_key
        .into_iter()
        .filter_map(|((i, class), values)| {
            let s = sweep_core::stats::summarize(&values)?;
            Some(MetricSummary {
                name: NAMES[i].into(),
                class: class.map(|c| rows[0].class_name(c)),
                split: "val".into(),
                mean: s.mean,
                std: s.std,
                ci95: s.ci95.map(|(lo, hi)| [lo, hi]),
                runs: s.n,
            })
        })
        .collect()
}

/// The package's README: what is in it and how to load each file.
fn readme(meta: &Metadata) -> String {
    let r = &meta.inference;
    let mut s = format!(
        "# {}\n\n{}.\n\nClasses: {}. Input: RGB (grayscale repeated), resized keeping its aspect \
         ratio to fit {:?} (w, h), normalised as (v - mean) / std with mean {:?} and std {:?}, \
         padded with zeros to a multiple of {}. Inference: {}{}. Everything is in `metadata.json`, \
         with the SHA-256 of every file.\n\n",
        meta.name,
        meta.description,
        meta.classes.join(", "),
        r.resize_scale,
        r.mean,
        r.std,
        r.pad_multiple,
        r.mode,
        if r.mode == EvalMode::Slide {
            format!(
                " windows of {0}x{0} every {1} pixels, logits averaged where they overlap",
                r.crop, r.stride
            )
        } else {
            String::new()
        },
    );
    s += "## With sweep\n\n```sh\nsweep predict . scans/ --out predictions/\n```\n\n";
    let files = |f: &str| {
        meta.networks
            .iter()
            .filter_map(|n| n.files.get(f).cloned())
            .collect::<Vec<_>>()
    };
    if let Some(f) = files("safetensors").first() {
        s += &format!(
            "## PyTorch (MMSegmentation)\n\nThe weights carry MMSegmentation's state-dict keys: build the \
             same `EncoderDecoder` (UNet-S5-D16, `{}` head, {} classes, base channels {}) and\n\n\
             ```python\nfrom safetensors.torch import load_file\nmodel.load_state_dict(load_file(\"{f}\"), strict=False)  # strict=True without an auxiliary head in the file\nmodel.eval()\n```\n\n",
            meta.model.head.display(),
            meta.model.num_classes,
            meta.model.base_channels
        );
    }
    if let Some(f) = files("pth").first() {
        s += &format!(
            "`{f}` is the same state dict as MMSegmentation's checkpoints store it \
             (`{{'meta', 'state_dict'}}`): `torch.load(\"{f}\", weights_only=True)[\"state_dict\"]`, \
             or `init_cfg`/`load_from` in an MMSeg config.\n\n"
        );
    }
    if let (Some(f), Some(o)) = (files("onnx").first(), &meta.onnx) {
        s += &format!(
            "## ONNX Runtime\n\n`{f}` (opset {}) maps the normalised input `{}` [{}] to the decode head's \
             logits `{}` [{}]. Resize, normalisation, the sliding window and the argmax stay outside \
             the graph, as described above.\n\n```python\nimport onnxruntime as ort\nsession = ort.InferenceSession(\"{f}\")\n\
             logits = session.run([\"{}\"], {{\"{}\": windows}})[0]  # windows: float32 [N, 3, {}, {}]\n```\n",
            o.opset,
            o.input,
            o.input_shape.join(", "),
            o.output,
            o.output_shape.join(", "),
            o.output,
            o.input,
            o.input_shape[2],
            o.input_shape[3]
        );
    }
    if meta.networks.len() > 1 {
        s += "\nThe package holds an ensemble: apply every network and average their softmax probabilities.\n";
    }
    s
}

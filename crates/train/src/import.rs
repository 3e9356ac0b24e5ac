//! `init`: initial weights from a file, either a checkpoint of this project (`.ckpt`, its
//! final or rolling checkpoint), an MMSegmentation state dict (`.pth`, as the model zoo
//! ships them) or a safetensors file with MMSeg's keys (`sweep export` writes one), told
//! apart by the file's first bytes rather than its name.
//!
//! An MMSeg file is read with burn-store's PyTorch reader (zip + pickle, no libtorch); its
//! keys map onto our module paths through [`mmseg_key`] (`backbone.encoder.{i}.{0|1}.convs...`,
//! `...upsample.interp_upsample.1...`, `image_pool.1`, `psp_modules.{j}.1`, `bn.weight/bias`
//! for `bn.gamma/beta`). A zoo checkpoint's `{'meta', 'state_dict'}` layout and a bare state
//! dict are both accepted.
//!
//! Only the backbone is loaded when the file's decode head is of another kind or has another
//! number of classes than the model, or when `init.backbone_only` asks for it; the heads then
//! keep their seeded initialisation. Any other tensor whose shape differs is an error.
//! Every load produces an [`InitReport`]: which model tensors were loaded, which file
//! tensors were skipped (present, not used) and which model tensors are missing (kept as
//! initialised).

use super::checkpoint::{load_tensors, Checkpoint, TensorEntry};
use super::model::{mmseg_key, visit_paths, Segmentor};
use anyhow::{anyhow, bail, Context};
use burn::tensor::{bf16, f16};
use burn_store::pytorch_reader::{DType, PytorchReader, Tensor as PtTensor};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use sweep_core::job::{Head, ModelConfig};

/// What kind of file initialised the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceFormat {
    /// This project's checkpoint (`SWEEPCK1`).
    Sweep,
    /// A PyTorch state dict with MMSegmentation's key names.
    Mmseg,
    /// A safetensors file with MMSegmentation's key names (`sweep export` writes them).
    Safetensors,
}

/// What an initialisation did (also written to the job's `init_report.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InitReport {
    pub source: PathBuf,
    pub format: SourceFormat,
    /// Decode head of the file, when it has one.
    pub source_head: Option<Head>,
    /// Classes of the file's `decode_head.conv_seg`.
    pub source_classes: Option<usize>,
    pub backbone_only: bool,
    /// Why only the backbone was loaded (`init.backbone_only`, head kind, classes).
    pub backbone_only_reason: Option<String>,
    /// Model tensors (our paths) set from the file.
    pub loaded: Vec<String>,
    /// File tensors (the file's keys) not used: other heads, `num_batches_tracked`, heads
    /// left out by the backbone-only rule.
    pub skipped: Vec<String>,
    /// Model tensors (our paths) not set from the file: kept at their seeded initialisation.
    pub missing: Vec<String>,
}

impl InitReport {
    /// One-line summary, then one line each for loaded, skipped and missing (keys grouped
    /// by module: `backbone.encoder.0.convs.0.bn.{gamma, beta, running_mean, running_var}`).
    pub fn log_lines(&self) -> Vec<String> {
        let kind = match self.format {
            SourceFormat::Sweep => "sweep checkpoint",
            SourceFormat::Mmseg => "MMSegmentation state dict",
            SourceFormat::Safetensors => "safetensors file (MMSegmentation keys)",
        };
        let scope = match &self.backbone_only_reason {
            Some(r) => format!("backbone only ({r})"),
            None => "all matching tensors".into(),
        };
        vec![
            format!(
                "init from {} ({kind}): {scope}; loaded {}, skipped {}, missing {}",
                self.source.display(),
                self.loaded.len(),
                self.skipped.len(),
                self.missing.len()
            ),
            format!(
                "init loaded {}: {}",
                self.loaded.len(),
                group_keys(&self.loaded)
            ),
            format!(
                "init skipped {} (in the file, not used): {}",
                self.skipped.len(),
                group_keys(&self.skipped)
            ),
            format!(
                "init missing {} (not in the file or not loaded, kept as initialised): {}",
                self.missing.len(),
                group_keys(&self.missing)
            ),
        ]
    }
}

/// `a.b.x, a.b.y, c` -> `a.b.{x, y}, c` (order of first appearance kept).
pub fn group_keys(keys: &[String]) -> String {
    if keys.is_empty() {
        return "-".into();
    }
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for k in keys {
        let (parent, leaf) = k.rsplit_once('.').unwrap_or(("", k.as_str()));
        match groups.last_mut() {
            Some((p, leaves)) if *p == parent => leaves.push(leaf),
            _ => groups.push((parent, vec![leaf])),
        }
    }
    groups
        .iter()
        .map(|(p, leaves)| match (p.is_empty(), leaves.as_slice()) {
            (true, _) => leaves.join(", "),
            (false, [one]) => format!("{p}.{one}"),
            (false, many) => format!("{p}.{{{}}}", many.join(", ")),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

enum Payload {
    F32(Vec<f32>),
    Pt(PtTensor),
}

/// One tensor of the file, under the file's own key.
struct FileTensor {
    shape: Vec<usize>,
    payload: Payload,
}

impl FileTensor {
    fn is_float(&self) -> bool {
        match &self.payload {
            Payload::F32(_) => true,
            Payload::Pt(t) => matches!(
                t.dtype(),
                DType::F32 | DType::F64 | DType::F16 | DType::BF16
            ),
        }
    }

    fn to_f32(&self) -> anyhow::Result<Vec<f32>> {
        let t = match &self.payload {
            Payload::F32(v) => return Ok(v.clone()),
            Payload::Pt(t) => t,
        };
        let bytes = t.read()?;
        Ok(match t.dtype() {
            DType::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_ne_bytes(c.try_into().expect("4 bytes")))
                .collect(),
            DType::F64 => bytes
                .chunks_exact(8)
                .map(|c| f64::from_ne_bytes(c.try_into().expect("8 bytes")) as f32)
                .collect(),
            DType::F16 => bytes
                .chunks_exact(2)
                .map(|c| f16::from_ne_bytes(c.try_into().expect("2 bytes")).to_f32())
                .collect(),
            DType::BF16 => bytes
                .chunks_exact(2)
                .map(|c| bf16::from_ne_bytes(c.try_into().expect("2 bytes")).to_f32())
                .collect(),
            other => bail!("{} is {other:?}, not a floating-point tensor", t.name),
        })
    }
}

struct Source {
    format: SourceFormat,
    /// The file's keys in file order.
    keys: Vec<String>,
    tensors: HashMap<String, FileTensor>,
}

fn read_source(path: &Path) -> anyhow::Result<Source> {
    let mut magic = [0u8; 8];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut magic))
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    if n == 8 && &magic == b"SWEEPCK1" {
        let ck = Checkpoint::load(path)?;
        let keys = ck.tensors.iter().map(|t| t.path.clone()).collect();
        let tensors = ck
            .tensors
            .into_iter()
            .map(|t| {
                (
                    t.path,
                    FileTensor {
                        shape: t.shape,
                        payload: Payload::F32(t.data),
                    },
                )
            })
            .collect();
        return Ok(Source {
            format: SourceFormat::Sweep,
            keys,
            tensors,
        });
    }
    if is_safetensors(path) {
        return read_safetensors(path);
    }
    let reader = PytorchReader::new(path).map_err(|e| {
        anyhow!(
            "{}: neither a sweep checkpoint nor a readable PyTorch file: {e}",
            path.display()
        )
    })?;
    let mut all = reader.into_tensors();
    // Zoo checkpoints are {'meta': ..., 'state_dict': ...}: the reader flattens nested
    // dictionaries to dotted keys, so the weights come as `state_dict.<key>`.
    if all.keys().any(|k| k.starts_with("state_dict.")) {
        all = all
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("state_dict.")?.to_string(), v)))
            .collect();
    }
    let mut keys: Vec<String> = all.keys().cloned().collect();
    keys.sort();
    let tensors = all
        .into_iter()
        .map(|(k, t)| {
            (
                k,
                FileTensor {
                    shape: t.shape().to_vec(),
                    payload: Payload::Pt(t),
                },
            )
        })
        .collect();
    Ok(Source {
        format: SourceFormat::Mmseg,
        keys,
        tensors,
    })
}

/// A safetensors file starts with its header's length (u64 LE) and the header's `{`.
fn is_safetensors(path: &Path) -> bool {
    let mut head = [0u8; 9];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head));
    read.is_ok()
        && head[8] == b'{'
        && u64::from_le_bytes(head[..8].try_into().expect("8 bytes")) < (1 << 32)
}

fn read_safetensors(path: &Path) -> anyhow::Result<Source> {
    let tensors = sweep_export::safetensors::read(path)?;
    Ok(Source {
        format: SourceFormat::Safetensors,
        keys: tensors.iter().map(|t| t.key.clone()).collect(),
        tensors: tensors
            .into_iter()
            .map(|t| {
                (
                    t.key,
                    FileTensor {
                        shape: t.shape,
                        payload: Payload::F32(t.data),
                    },
                )
            })
            .collect(),
    })
}

/// The decode head a file was trained with, from its tensor names (the same prefixes in both
/// namings), and the classes of its classifier.
fn source_head(src: &Source) -> (Option<Head>, Option<usize>) {
    let has = |p: &str| src.keys.iter().any(|k| k.starts_with(p));
    let head = if has("decode_head.aspp_modules.") {
        Some(Head::Deeplabv3)
    } else if has("decode_head.psp_modules.") {
        Some(Head::Pspnet)
    } else if has("decode_head.convs.") {
        Some(Head::Fcn)
    } else {
        None
    };
    let classes = src
        .tensors
        .get("decode_head.conv_seg.weight")
        .and_then(|t| t.shape.first().copied());
    (head, classes)
}

/// Initialises `model` (built from `cfg`) from the file at `path` (see the module docs).
/// `backbone_only` is `init.backbone_only`.
pub fn init_model(
    model: Segmentor,
    cfg: &ModelConfig,
    path: &Path,
    backbone_only: bool,
) -> anyhow::Result<(Segmentor, InitReport)> {
    let src = read_source(path)?;
    let (source_head, source_classes) = source_head(&src);
    let reason = backbone_only_reason(cfg, backbone_only, source_head, source_classes);
    let matched = match_tensors(&src, &model, reason.is_some(), path)?;
    reject_mismatches(matched.mismatched, cfg, path)?;
    if matched.entries.is_empty() {
        bail!(
            "{}: no tensor of the file matches this model ({} tensors in the file, e.g. {})",
            path.display(),
            src.keys.len(),
            src.keys
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let wanted: HashSet<&str> = matched.entries.iter().map(|e| e.path.as_str()).collect();
    let (model, load) = load_tensors(model, &matched.entries, &|p| wanted.contains(p), false);
    debug_assert!(load.mismatched.is_empty() && load.unused.is_empty());
    let skipped = src
        .keys
        .iter()
        .filter(|k| !matched.used.contains(*k))
        .cloned()
        .collect();
    Ok((
        model,
        InitReport {
            source: path.to_path_buf(),
            format: src.format,
            source_head,
            source_classes,
            backbone_only: reason.is_some(),
            backbone_only_reason: reason,
            loaded: load.loaded,
            skipped,
            missing: matched.missing,
        },
    ))
}

/// Why only the backbone is to be loaded (asked for, or the file's heads cannot fit the
/// model's); None when every matching tensor is.
fn backbone_only_reason(
    cfg: &ModelConfig,
    backbone_only: bool,
    source_head: Option<Head>,
    source_classes: Option<usize>,
) -> Option<String> {
    if backbone_only {
        Some("init.backbone_only".to_string())
    } else if source_head.is_some_and(|h| h != cfg.head) {
        Some(format!(
            "the file's decode head is {}, the model's {}",
            source_head.map_or("?", |h| h.display()),
            cfg.head.display()
        ))
    } else if source_classes.is_some_and(|c| c != cfg.num_classes) {
        Some(format!(
            "the file has {} classes, the model {}",
            source_classes.unwrap_or(0),
            cfg.num_classes
        ))
    } else {
        None
    }
}

/// How the model's tensors found theirs in the file.
#[derive(Default)]
struct Matched {
    /// The file's data for each model tensor it sets, under our paths.
    entries: Vec<TensorEntry>,
    /// The file keys that `entries` came from.
    used: HashSet<String>,
    /// Model tensors not in the file, or left out by the backbone-only rule.
    missing: Vec<String>,
    /// `key: file shape, model shape` of each tensor whose shapes differ (an error).
    mismatched: Vec<String>,
}

/// Looks up each model tensor (in model order) under its file key and reads the data of
/// those whose shape fits; with `backbone_only`, only `backbone.` tensors are looked up.
fn match_tensors(
    src: &Source,
    model: &Segmentor,
    backbone_only: bool,
    path: &Path,
) -> anyhow::Result<Matched> {
    let file_key = |ours: &str| match src.format {
        SourceFormat::Sweep => ours.to_string(),
        SourceFormat::Mmseg | SourceFormat::Safetensors => mmseg_key(ours),
    };
    let mut m = Matched::default();
    for (path_ours, dims) in &model_shapes(model) {
        if backbone_only && !path_ours.starts_with("backbone.") {
            m.missing.push(path_ours.clone());
            continue;
        }
        let key = file_key(path_ours);
        let Some(t) = src.tensors.get(&key) else {
            m.missing.push(path_ours.clone());
            continue;
        };
        if &t.shape != dims {
            m.mismatched.push(format!(
                "{key}: {:?} in the file, {:?} in the model",
                t.shape, dims
            ));
            continue;
        }
        if !t.is_float() {
            bail!("{}: {key} is not a floating-point tensor", path.display());
        }
        let data = t
            .to_f32()
            .with_context(|| format!("{}: reading {key}", path.display()))?;
        m.entries.push(TensorEntry {
            path: path_ours.clone(),
            id: 0,
            shape: dims.clone(),
            data,
        });
        m.used.insert(key);
    }
    Ok(m)
}

/// Each model tensor's path and shape, in model order.
fn model_shapes(model: &Segmentor) -> Vec<(String, Vec<usize>)> {
    let mut shapes = Vec::new();
    visit_paths(model, |p, dims| shapes.push((p.to_string(), dims.to_vec())));
    shapes
}

/// Any shape mismatch is an error (not a skip): the file is of another model size. Names
/// the first five.
fn reject_mismatches(
    mut mismatched: Vec<String>,
    cfg: &ModelConfig,
    path: &Path,
) -> anyhow::Result<()> {
    if !mismatched.is_empty() {
        let n = mismatched.len();
        mismatched.truncate(5);
        bail!(
            "{}: {n} tensor(s) have another shape than the model's (model.base_channels {} here): {}{}",
            path.display(),
            cfg.base_channels,
            mismatched.join("; "),
            if n > 5 { "; ..." } else { "" }
        );
    }
    Ok(())
}

/// Counts of an [`InitReport`]'s lists by top-level part (`backbone`, `decode_head`, ...),
/// for tests and summaries.
pub fn counts_by_part(keys: &[String]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for k in keys {
        let part = k.split('.').next().unwrap_or_default().to_string();
        *out.entry(part).or_insert(0) += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_grouped_by_module() {
        let keys: Vec<String> = ["a.conv.weight", "a.bn.gamma", "a.bn.beta", "b.x", "top"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            group_keys(&keys),
            "a.conv.weight, a.bn.{gamma, beta}, b.x, top"
        );
        assert_eq!(group_keys(&[]), "-");
    }
}

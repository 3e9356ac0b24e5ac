//! `model.safetensors`: the network's tensors under MMSeg's keys, so that
//! `model.load_state_dict(safetensors.torch.load_file(p), strict=True)` works on MMSeg's
//! modules (and on `mmseg_reference.py`'s).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use safetensors::{Dtype, SafeTensors, View};

use crate::NamedTensor;

/// Writes `tensors` as float32 and, beside every `...running_mean`, a
/// `...num_batches_tracked` int64 scalar 0 (unused in eval mode; MMSeg's `momentum` is
/// set, so training does not read it either). `metadata` goes to `__metadata__`.
///
/// Atomic: written to a temporary file in the same folder, synced, then renamed.
pub fn write(
    path: &Path,
    tensors: &[NamedTensor],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    crate::weights::validate(tensors)?;
    let mut views: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|t| (t.key.clone(), Tensor::F32(t)))
        .collect();
    for key in crate::weights::num_batches_tracked_keys(tensors) {
        views.push((key, Tensor::ZeroI64));
    }
    let info: Option<HashMap<String, String>> =
        (!metadata.is_empty()).then(|| metadata.clone().into_iter().collect());
    let bytes = safetensors::serialize(views, info)
        .with_context(|| format!("serialising {}", path.display()))?;
    write_atomic(path, &bytes)
}

/// The float tensors of a safetensors file as f32 (F16, BF16 and F64 converted), sorted by
/// key; integer and bool tensors (`num_batches_tracked`) are skipped.
pub fn read(path: &Path) -> Result<Vec<NamedTensor>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let file = SafeTensors::deserialize(&bytes)
        .with_context(|| format!("{} is not a safetensors file", path.display()))?;
    let mut out = Vec::with_capacity(file.len());
    for (key, view) in file.iter() {
        let data = match view.dtype() {
            Dtype::F32 => convert(view.data(), |b: [u8; 4]| f32::from_le_bytes(b)),
            Dtype::F64 => convert(view.data(), |b: [u8; 8]| f64::from_le_bytes(b) as f32),
            Dtype::F16 => convert(view.data(), |b: [u8; 2]| f16_to_f32(u16::from_le_bytes(b))),
            Dtype::BF16 => convert(view.data(), |b: [u8; 2]| {
                f32::from_bits((u16::from_le_bytes(b) as u32) << 16)
            }),
            Dtype::BOOL
            | Dtype::U8
            | Dtype::I8
            | Dtype::I16
            | Dtype::U16
            | Dtype::I32
            | Dtype::U32
            | Dtype::I64
            | Dtype::U64 => continue,
            other => bail!(
                "{}: tensor `{key}` has dtype {other:?}, which is not supported",
                path.display()
            ),
        };
        out.push(NamedTensor {
            key: key.to_string(),
            shape: view.shape().to_vec(),
            data,
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// Little-endian values of `N` bytes each, converted to f32.
fn convert<const N: usize>(bytes: &[u8], f: impl Fn([u8; N]) -> f32) -> Vec<f32> {
    bytes
        .chunks_exact(N)
        .map(|c| f(c.try_into().expect("chunk of N bytes")))
        .collect()
}

/// IEEE 754 half to single precision (exact: every half is a single).
fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let mant = (h & 0x3ff) as f32;
    match exp {
        0 => sign * mant * 2f32.powi(-24),
        0x1f if mant == 0.0 => sign * f32::INFINITY,
        0x1f => f32::NAN,
        _ => sign * (1.0 + mant / 1024.0) * 2f32.powi(exp - 15),
    }
}

/// A tensor as safetensors writes it.
enum Tensor<'a> {
    F32(&'a NamedTensor),
    /// `num_batches_tracked`: int64, shape `[]`.
    ZeroI64,
}

impl View for Tensor<'_> {
    fn dtype(&self) -> Dtype {
        match self {
            Tensor::F32(_) => Dtype::F32,
            Tensor::ZeroI64 => Dtype::I64,
        }
    }
    fn shape(&self) -> &[usize] {
        match self {
            Tensor::F32(t) => &t.shape,
            Tensor::ZeroI64 => &[],
        }
    }
    fn data(&self) -> Cow<'_, [u8]> {
        match self {
            Tensor::F32(t) => t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Tensor::ZeroI64 => Cow::Borrowed(&[0; 8]),
        }
    }
    fn data_len(&self) -> usize {
        match self {
            Tensor::F32(t) => 4 * t.data.len(),
            Tensor::ZeroI64 => 8,
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder (so the rename is
/// atomic), synced before the rename; readers see the old file or the new one, whole.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_convert_exactly() {
        let cases = [
            (0x3c00, 1.0),
            (0xc000, -2.0),
            (0x7bff, 65504.0),
            (0x0001, 2f32.powi(-24)),
            (0x8000, -0.0),
            (0x3555, 0.333_251_95),
            (0x7c00, f32::INFINITY),
            (0xfc00, f32::NEG_INFINITY),
        ];
        for (h, f) in cases {
            assert_eq!(f16_to_f32(h), f, "{h:#06x}");
        }
        assert!(f16_to_f32(0x7e00).is_nan());
    }
}

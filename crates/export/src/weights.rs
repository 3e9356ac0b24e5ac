//! A network's tensors as MMSegmentation names them.

use std::collections::HashSet;

use anyhow::{bail, Result};

/// One tensor under its MMSeg state-dict key (`backbone.encoder.0.0.convs.0.conv.weight`,
/// `decode_head.conv_seg.bias`, `...bn.running_mean`), f32, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    pub key: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Checks that keys are unique and every tensor has as many values as its shape needs.
pub fn validate(tensors: &[NamedTensor]) -> Result<()> {
    let mut keys = HashSet::with_capacity(tensors.len());
    for t in tensors {
        let numel: usize = t.shape.iter().product();
        if t.data.len() != numel {
            bail!(
                "tensor `{}` has {} values, its shape {:?} needs {numel}",
                t.key,
                t.data.len(),
                t.shape
            );
        }
        if !keys.insert(t.key.as_str()) {
            bail!("tensor `{}` is given twice", t.key);
        }
    }
    Ok(())
}

/// The `...num_batches_tracked` keys PyTorch's batch norms have beside each
/// `...running_mean` (an int64 scalar; our tensors do not carry it), minus those present.
pub fn num_batches_tracked_keys(tensors: &[NamedTensor]) -> Vec<String> {
    let present: HashSet<&str> = tensors.iter().map(|t| t.key.as_str()).collect();
    tensors
        .iter()
        .filter_map(|t| t.key.strip_suffix(".running_mean"))
        .map(|bn| format!("{bn}.num_batches_tracked"))
        .filter(|k| !present.contains(k.as_str()))
        .collect()
}

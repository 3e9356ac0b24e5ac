//! `model.pth`: a PyTorch checkpoint in MMSegmentation's layout,
//! `{'meta': {...}, 'state_dict': OrderedDict(key -> tensor)}`, in the zip + pickle format
//! `torch.save` writes (no libtorch), loadable with `torch.load(p, weights_only=True)` and
//! by MMSeg's `init_model` / `load_checkpoint`.
//!
//! Tensors are float32 on the CPU; every batch norm gets its int64 `num_batches_tracked`
//! 0, as in [`crate::safetensors::write`].

mod pickle;
mod zip;

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{ensure, Result};
use serde_json::Value;

use crate::weights::{num_batches_tracked_keys, validate};
use crate::NamedTensor;
use pickle::Pickler;

/// The folder inside the zip; `torch.load` takes whatever the first record's folder is.
const ARCHIVE: &str = "archive";

/// Writes the checkpoint of `tensors` with `meta` (a JSON object, pickled as Python dicts,
/// lists, strings and numbers; MMSeg reads e.g. `meta['dataset_meta']['classes']`).
///
/// Atomic: written to a temporary file in the same folder, synced, then renamed.
pub fn write(path: &Path, tensors: &[NamedTensor], meta: &Value) -> Result<()> {
    validate(tensors)?;
    ensure!(
        meta.is_object(),
        "checkpoint meta must be a JSON object, not {meta}"
    );
    let storages = state_dict_order(tensors);
    let mut p = Pickler::new();
    p.empty_dict().mark();
    p.str("meta").json(meta);
    p.str("state_dict");
    ordered_dict(&mut p).mark();
    for (i, s) in storages.iter().enumerate() {
        p.str(&s.key);
        tensor(&mut p, i, s);
    }
    p.setitems().setitems();
    let pickle = p.stop();

    let data: Vec<Vec<u8>> = storages.iter().map(Storage::bytes).collect();
    let mut records: Vec<(String, &[u8])> = vec![
        (format!("{ARCHIVE}/data.pkl"), &pickle),
        (format!("{ARCHIVE}/byteorder"), b"little"),
    ];
    for (i, d) in data.iter().enumerate() {
        records.push((format!("{ARCHIVE}/data/{i}"), d));
    }
    records.push((format!("{ARCHIVE}/version"), b"3\n"));
    crate::safetensors::write_atomic(path, &zip::stored(&records)?)
}

/// One tensor of the state dict and its storage.
struct Storage<'a> {
    key: String,
    shape: &'a [usize],
    /// None: a `num_batches_tracked` counter (int64 0, shape `[]`).
    data: Option<&'a [f32]>,
}

impl Storage<'_> {
    fn bytes(&self) -> Vec<u8> {
        match self.data {
            Some(d) => d.iter().flat_map(|v| v.to_le_bytes()).collect(),
            None => 0i64.to_le_bytes().to_vec(),
        }
    }
}

/// The tensors in their order, each batch norm's counter after its `running_var` (PyTorch's
/// own order).
fn state_dict_order(tensors: &[NamedTensor]) -> Vec<Storage<'_>> {
    let mut counters: BTreeSet<String> = num_batches_tracked_keys(tensors).into_iter().collect();
    let counter = |key: String| Storage {
        key,
        shape: &[],
        data: None,
    };
    let mut out = Vec::with_capacity(tensors.len() + counters.len());
    for t in tensors {
        out.push(Storage {
            key: t.key.clone(),
            shape: &t.shape,
            data: Some(&t.data),
        });
        if let Some(bn) = t.key.strip_suffix(".running_var") {
            if let Some(k) = counters.take(&format!("{bn}.num_batches_tracked")) {
                out.push(counter(k));
            }
        }
    }
    out.extend(counters.into_iter().map(counter));
    out
}

/// `collections.OrderedDict()`.
fn ordered_dict(p: &mut Pickler) -> &mut Pickler {
    p.global("collections", "OrderedDict")
        .empty_tuple()
        .reduce()
}

/// `torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())` with
/// the storage `('storage', torch.FloatStorage, '<i>', 'cpu', numel)` as persistent id.
fn tensor(p: &mut Pickler, i: usize, s: &Storage) {
    let (kind, numel) = match s.data {
        Some(d) => ("FloatStorage", d.len()),
        None => ("LongStorage", 1),
    };
    p.global("torch._utils", "_rebuild_tensor_v2").mark();
    p.mark().str("storage").global("torch", kind);
    p.str(&i.to_string())
        .str("cpu")
        .int(numel as i64)
        .tuple()
        .persistent_id();
    p.int(0)
        .int_tuple(s.shape)
        .int_tuple(&strides(s.shape))
        .bool(false);
    ordered_dict(p).tuple().reduce();
}

/// Row-major (contiguous) strides in elements.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn strides_are_row_major() {
        assert_eq!(super::strides(&[4, 3, 2, 2]), [12, 4, 2, 1]);
        assert!(super::strides(&[]).is_empty());
    }
}

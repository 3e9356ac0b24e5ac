//! The network's tensors by MMSeg key, handed to the graph one by one with their shapes
//! checked, and the ones left over.

use std::collections::{BTreeSet, HashMap};

use anyhow::{bail, Result};

use crate::NamedTensor;

pub struct Params<'t> {
    by_key: HashMap<&'t str, &'t NamedTensor>,
    taken: BTreeSet<&'t str>,
}

impl<'t> Params<'t> {
    /// `tensors` checked by [`crate::weights::validate`] (unique keys, consistent sizes).
    pub fn new(tensors: &'t [NamedTensor]) -> Self {
        Params {
            by_key: tensors.iter().map(|t| (t.key.as_str(), t)).collect(),
            taken: BTreeSet::new(),
        }
    }

    /// The data of tensor `key`, which must have `shape`.
    pub fn take(&mut self, key: &str, shape: &[usize]) -> Result<&'t [f32]> {
        let Some(&t) = self.by_key.get(key) else {
            bail!("missing tensor `{key}` (expected shape {shape:?})");
        };
        if t.shape != shape {
            bail!("tensor `{key}` has shape {:?}, expected {shape:?}", t.shape);
        }
        self.taken.insert(t.key.as_str());
        Ok(&t.data)
    }

    /// Keys never taken, sorted; the auxiliary head's are expected (training only).
    pub fn unused(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .by_key
            .keys()
            .filter(|k| !self.taken.contains(*k) && !k.starts_with("auxiliary_head."))
            .map(|k| k.to_string())
            .collect();
        keys.sort();
        keys
    }
}

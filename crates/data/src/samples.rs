//! The samples of one split: decoded into memory when they fit in [`MEMORY_BUDGET`],
//! otherwise read from disk when asked for (a 20,000-scan set opens in seconds and trains in
//! the memory of a small one). Either way sample `i` is the same bytes: decoding is exact.

use crate::cases::{load_sample, LabelReader};
use crate::{DataError, Sample};
use std::borrow::Cow;
use std::sync::Arc;
use sweep_core::dataset::Case;

/// Decoded bytes (images and labels) above which a data set stays on disk.
pub const MEMORY_BUDGET: usize = 256 << 20;

#[derive(Debug)]
pub struct Samples(Storage);

#[derive(Debug)]
enum Storage {
    Memory(Vec<Sample>),
    Disk {
        cases: Vec<Case>,
        labels: Arc<LabelReader>,
    },
}

impl Samples {
    pub fn in_memory(samples: Vec<Sample>) -> Samples {
        Samples(Storage::Memory(samples))
    }

    pub(crate) fn on_disk(cases: Vec<Case>, labels: Arc<LabelReader>) -> Samples {
        Samples(Storage::Disk { cases, labels })
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            Storage::Memory(v) => v.len(),
            Storage::Disk { cases, .. } => cases.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The samples, when they are held in memory (`None`: read from disk on demand).
    pub fn loaded(&self) -> Option<&[Sample]> {
        match &self.0 {
            Storage::Memory(v) => Some(v),
            Storage::Disk { .. } => None,
        }
    }

    /// The case id of sample `i` (no decoding).
    pub fn name(&self, i: usize) -> &str {
        match &self.0 {
            Storage::Memory(v) => &v[i].name,
            Storage::Disk { cases, .. } => &cases[i].id,
        }
    }

    /// Sample `i`, decoded now when the split is on disk.
    pub fn get(&self, i: usize) -> Result<Cow<'_, Sample>, DataError> {
        match &self.0 {
            Storage::Memory(v) => Ok(Cow::Borrowed(&v[i])),
            Storage::Disk { cases, labels } => load_sample(&cases[i], labels).map(Cow::Owned),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Result<Cow<'_, Sample>, DataError>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

//! Loading a data set (DME or CHASE_DB1) and its split into memory.

use super::{DataError, EvalImage};
use crate::job::DataConfig;

/// One decoded image with its label map, as stored in memory (before any transform).
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    /// HWC, `channels` (1 or 3) interleaved, RGB order.
    pub image: Vec<u8>,
    pub channels: usize,
    /// H*W class indices (255 = ignore).
    pub label: Vec<u8>,
    pub h: usize,
    pub w: usize,
}

/// A data set with its train and val samples loaded into memory.
#[derive(Debug)]
pub struct Dataset {
    pub config: DataConfig,
    pub num_classes: usize,
    pub train: Vec<Sample>,
    pub val: Vec<Sample>,
}

impl Dataset {
    pub fn open(cfg: &DataConfig) -> Result<Dataset, DataError> {
        Err(DataError::UnknownDataset {
            dataset: cfg.dataset.clone(),
            root: cfg.root.clone(),
        })
    }
    pub fn train_len(&self) -> usize {
        self.train.len()
    }
    pub fn val_len(&self) -> usize {
        self.val.len()
    }
    pub fn val_images(&self) -> Result<Vec<EvalImage>, DataError> {
        Ok(Vec::new())
    }
}

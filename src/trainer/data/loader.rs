//! Background prefetching of training batches.

use super::{Batch, DataError, Dataset};
use crate::job::JobConfig;
use std::sync::Arc;
use std::time::Duration;

pub struct TrainLoader {
    ds: Arc<Dataset>,
    next: usize,
}

impl TrainLoader {
    pub fn new(ds: Arc<Dataset>, _cfg: &JobConfig, start_iter: usize) -> TrainLoader {
        TrainLoader { ds, next: start_iter }
    }
    pub fn next_batch(&mut self) -> Result<(usize, Batch, Duration), DataError> {
        Err(DataError::LoaderStopped {
            root: self.ds.config.root.clone(),
            message: format!("not implemented yet (iteration {})", self.next),
        })
    }
}

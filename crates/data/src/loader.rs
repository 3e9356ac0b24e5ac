//! Background prefetching of training batches.
//!
//! One thread computes the batches of iterations `start_iter, start_iter + 1, ...` and
//! sends them through a bounded channel (a few batches ahead). Batch `i` is
//! `transforms::train_batch(ds, cfg, i)`, a pure function of `(cfg.seed, i)`: a job resumed
//! at iteration `k` passes `start_iter = k` and sees what an uninterrupted job would have.
//! Dropping the loader closes the channel; the thread notices at its next send and ends.

use super::transforms::train_batch;
use super::{Batch, DataError, Dataset};
use crossbeam_channel::{bounded, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use sweep_core::job::JobConfig;

/// How many batches the thread may compute ahead of the consumer.
pub const PREFETCH: usize = 4;

/// A batch, or why the thread could not make it (it stops after sending that).
type Item = (usize, Result<Batch, String>);

pub struct TrainLoader {
    rx: Option<Receiver<Item>>,
    thread: Option<JoinHandle<()>>,
    root: std::path::PathBuf,
    next: usize,
}

impl TrainLoader {
    /// Starts the prefetch thread; the first batch returned is iteration `start_iter`
    /// (0-based: a job that has completed `k` iterations resumes with `start_iter = k`).
    pub fn new(ds: Arc<Dataset>, cfg: &JobConfig, start_iter: usize) -> TrainLoader {
        let (tx, rx) = bounded::<Item>(PREFETCH);
        let cfg = cfg.clone();
        let root = ds.config.root.clone();
        let thread = std::thread::Builder::new()
            .name("sweep-data".into())
            .spawn(move || {
                for iter in start_iter.. {
                    let batch = train_batch(&ds, &cfg, iter).map_err(|e| e.to_string());
                    let failed = batch.is_err();
                    if tx.send((iter, batch)).is_err() || failed {
                        break; // the loader was dropped, or a file could not be read
                    }
                }
            })
            .expect("spawning the data loader thread");
        TrainLoader {
            rx: Some(rx),
            thread: Some(thread),
            root,
            next: start_iter,
        }
    }

    /// The next iteration's batch, and how long this call waited for it.
    pub fn next_batch(&mut self) -> Result<(usize, Batch, Duration), DataError> {
        let t = Instant::now();
        let rx = self.rx.as_ref().expect("receiver lives until drop");
        match rx.recv() {
            Ok((iter, Ok(batch))) => {
                debug_assert_eq!(iter, self.next);
                self.next = iter + 1;
                Ok((iter, batch, t.elapsed()))
            }
            Ok((iter, Err(message))) => Err(DataError::LoaderStopped {
                root: self.root.clone(),
                message: format!("at iteration {iter}: {message}"),
            }),
            Err(_) => {
                // The thread ended without being asked to: it panicked.
                let message = match self.thread.take().map(JoinHandle::join) {
                    Some(Err(p)) => p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "panicked".into()),
                    _ => "thread ended".into(),
                };
                Err(DataError::LoaderStopped {
                    root: self.root.clone(),
                    message: format!("at iteration {}: {message}", self.next),
                })
            }
        }
    }
}

impl Drop for TrainLoader {
    fn drop(&mut self) {
        // Closing the channel first unblocks a thread waiting to send.
        drop(self.rx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

//! Checkpoints: model weights (parameters and batch-norm statistics, with their burn parameter
//! ids), optimiser state and iteration, written atomically.
//!
//! File layout (`.ckpt`): `SWEEPCK1`, u64 LE header length, JSON header ([`Header`]), the
//! tensors' f32 LE data in header order, the optimiser state (burn's burnpack bytes of
//! `ModuleOptimizer::into_bytes`), then the SHA-256 of everything before it. A file is written
//! to a temporary name in the same folder, fsynced and renamed over the old one, so a crash or
//! a failing writer leaves the previous checkpoint intact; the checksum catches the rest.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

pub use sweep_core::protocol::FINAL_CHECKPOINT as FINAL_FILE;
/// The rolling checkpoint of a job (resume point), in its artifact folder.
pub use sweep_core::protocol::{write_atomic, CHECKPOINT_FILE};

const MAGIC: &[u8; 8] = b"SWEEPCK1";

/// One tensor of the model: its module path (`backbone.encoder.0.convs.0.conv.weight`), burn
/// parameter id (optimiser state is keyed by it) and values.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorEntry {
    pub path: String,
    pub id: u64,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// Completed training iterations.
    pub iteration: usize,
    /// `JobConfig::hash` of the job that wrote it.
    pub config_hash: String,
    /// Loss of the last completed iteration.
    pub last_loss: Option<f64>,
    pub tensors: Vec<TensorEntry>,
    /// Optimiser state (empty in final checkpoints).
    pub optimizer: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    iteration: usize,
    config_hash: String,
    last_loss: Option<f64>,
    tensors: Vec<HeaderTensor>,
    optimizer_bytes: u64,
}

#[derive(Serialize, Deserialize)]
struct HeaderTensor {
    path: String,
    id: u64,
    shape: Vec<usize>,
}

/// Writes through to `inner` and hashes what passes.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Checkpoint {
    pub fn write_to(&self, w: &mut dyn Write) -> io::Result<()> {
        let header = Header {
            iteration: self.iteration,
            config_hash: self.config_hash.clone(),
            last_loss: self.last_loss,
            tensors: self
                .tensors
                .iter()
                .map(|t| HeaderTensor {
                    path: t.path.clone(),
                    id: t.id,
                    shape: t.shape.clone(),
                })
                .collect(),
            optimizer_bytes: self.optimizer.len() as u64,
        };
        let header = serde_json::to_vec(&header).map_err(io::Error::other)?;
        let mut h = Hashing {
            inner: w,
            hash: Sha256::new(),
        };
        h.write_all(MAGIC)?;
        h.write_all(&(header.len() as u64).to_le_bytes())?;
        h.write_all(&header)?;
        let mut buf = Vec::new();
        for t in &self.tensors {
            buf.clear();
            buf.extend(t.data.iter().flat_map(|v| v.to_le_bytes()));
            h.write_all(&buf)?;
        }
        h.write_all(&self.optimizer)?;
        let digest = h.hash.finalize();
        h.inner.write_all(&digest)?;
        h.inner.flush()
    }

    /// Reads and verifies (length, checksum, shapes) a checkpoint.
    pub fn read_from(r: &mut dyn Read) -> anyhow::Result<Checkpoint> {
        let mut bytes = Vec::new();
        r.read_to_end(&mut bytes)?;
        anyhow::ensure!(
            bytes.len() >= MAGIC.len() + 8 + 32 && &bytes[..8] == MAGIC,
            "not a sweep checkpoint (bad magic or too short: {} bytes)",
            bytes.len()
        );
        let (body, digest) = bytes.split_at(bytes.len() - 32);
        anyhow::ensure!(
            Sha256::digest(body).as_slice() == digest,
            "checksum mismatch (truncated or corrupted file)"
        );
        let hlen = u64::from_le_bytes(body[8..16].try_into().expect("8 bytes")) as usize;
        anyhow::ensure!(16 + hlen <= body.len(), "header length {hlen} past the end");
        let header: Header = serde_json::from_slice(&body[16..16 + hlen])?;
        let mut pos = 16 + hlen;
        let mut tensors = Vec::with_capacity(header.tensors.len());
        for t in header.tensors {
            let n: usize = t.shape.iter().product();
            let end = pos + 4 * n;
            anyhow::ensure!(end <= body.len(), "tensor {} past the end", t.path);
            let data = body[pos..end]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect();
            pos = end;
            tensors.push(TensorEntry {
                path: t.path,
                id: t.id,
                shape: t.shape,
                data,
            });
        }
        let end = pos + header.optimizer_bytes as usize;
        anyhow::ensure!(end == body.len(), "optimiser state length mismatch");
        Ok(Checkpoint {
            iteration: header.iteration,
            config_hash: header.config_hash,
            last_loss: header.last_loss,
            tensors,
            optimizer: body[pos..end].to_vec(),
        })
    }

    /// Atomic save (see [`write_atomic`]).
    pub fn save(&self, path: &Path) -> io::Result<()> {
        write_atomic(path, |w| self.write_to(w))
    }

    pub fn load(path: &Path) -> anyhow::Result<Checkpoint> {
        let mut f = File::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Self::read_from(&mut f).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }
}

/// The model's tensors with their paths and ids. Batch-norm running statistics are synced
/// first (burn keeps the latest update per thread until read).
pub fn model_tensors<M: Module>(model: &M) -> Vec<TensorEntry> {
    let _ = model.valid(); // syncs every RunningState shared with `model`
    struct V {
        path: Vec<String>,
        out: Vec<TensorEntry>,
    }
    impl ModuleVisitor for V {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let data = param.val().into_data();
            self.out.push(TensorEntry {
                path: self.path.join("."),
                id: param.id.val(),
                shape: data.shape().to_vec(),
                data: data.try_into_vec_as::<f32>().expect("float tensor data"),
            });
        }
    }
    let mut v = V {
        path: Vec::new(),
        out: Vec::new(),
    };
    model.visit(&mut v);
    v.out
}

/// What [`load_tensors`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    pub loaded: Vec<String>,
    /// Module tensors with no entry (kept as they were).
    pub missing: Vec<String>,
    /// Entries whose shape differs from the module's (skipped): `path: [ckpt] vs [module]`.
    pub mismatched: Vec<String>,
    /// Entries no module tensor has (or that `select` rejected).
    pub unused: Vec<String>,
}

/// Loads entries into the module's tensors of the same path and shape.
///
/// `select(path)` chooses which module tensors may be loaded (e.g. the backbone only);
/// `restore_ids` also restores the saved parameter ids, which resuming needs so that the
/// optimiser state (keyed by id) finds its parameters.
pub fn load_tensors<M: Module>(
    model: M,
    entries: &[TensorEntry],
    select: &dyn Fn(&str) -> bool,
    restore_ids: bool,
) -> (M, LoadReport) {
    struct L<'a> {
        path: Vec<String>,
        by_path: HashMap<&'a str, &'a TensorEntry>,
        select: &'a dyn Fn(&str) -> bool,
        restore_ids: bool,
        report: LoadReport,
    }
    impl ModuleMapper for L<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let path = self.path.join(".");
            let entry = if (self.select)(&path) {
                self.by_path.remove(path.as_str())
            } else {
                None
            };
            let Some(e) = entry else {
                self.report.missing.push(path);
                return param;
            };
            let shape = param.lazy_shape();
            if shape.as_slice() != e.shape.as_slice() {
                self.report.mismatched.push(format!(
                    "{path}: {:?} vs {:?}",
                    e.shape,
                    shape.as_slice()
                ));
                return param;
            }
            let device = param.lazy_device();
            let id = if self.restore_ids {
                ParamId::from(e.id)
            } else {
                param.id
            };
            let t = Tensor::<D>::from_data(TensorData::new(e.data.clone(), shape), &device);
            self.report.loaded.push(path);
            param.transform_for_load(t, id)
        }
    }
    let mut l = L {
        path: Vec::new(),
        by_path: entries.iter().map(|e| (e.path.as_str(), e)).collect(),
        select,
        restore_ids,
        report: LoadReport::default(),
    };
    let model = model.map(&mut l);
    let mut report = l.report;
    report.unused = l.by_path.keys().map(|k| k.to_string()).collect();
    report.unused.sort();
    (model, report)
}

//! The toy's iterations: resume from a checkpoint, iterate (events, evaluations, rolling
//! checkpoints), and end completed, paused at the ticket's `pause_at`, or interrupted.
//! Checkpoints hold only the iteration: the curves need nothing else to continue.

use crate::curve::Toy;
use crate::fault::{self, JobView};
use crate::{emit, stop_requested, ToyEnv};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use sweep_core::job::JobConfig;
use sweep_core::protocol::{
    write_atomic, Event, Outcome, Ticket, CHECKPOINT_FILE, FINAL_CHECKPOINT,
};

/// Remembers that this artifact folder's job already crashed once (`SWEEP_TOY_CRASH_AT`).
const CRASH_MARKER: &str = "toy-crashed";

/// The toy's checkpoint: JSON, the iteration and the config it belongs to.
#[derive(Serialize, Deserialize)]
struct ToyCheckpoint {
    iter: usize,
    config_hash: String,
}

/// One attempt of a job.
struct Attempt<'a> {
    cfg: &'a JobConfig,
    toy: Toy,
    dir: &'a Path,
    env: &'a ToyEnv,
    /// What `SWEEP_TOY_FAULTS` selects faults by.
    job: JobView<'a>,
}

/// Runs the ticket's attempt in artifact folder `dir` and returns its outcome.
pub fn run(ticket: &Ticket, dir: &Path, env: &ToyEnv) -> anyhow::Result<Outcome> {
    let cfg = ticket.train_config()?;
    let a = Attempt {
        cfg,
        toy: Toy::new(cfg),
        dir,
        env,
        job: JobView {
            seed: cfg.seed,
            label: &ticket.label,
            attempt: ticket.claim.attempt,
        },
    };
    let start = a.resume_point()?;
    let pause = ticket.pause_at.filter(|&p| p < cfg.iters);
    if let Some(p) = pause.filter(|&p| p < start) {
        anyhow::bail!("the checkpoint is at iteration {start}, past the ticket's pause_at {p}");
    }
    emit(&Event::Started {
        iters: cfg.iters,
        resumed_from: start,
    });
    for iter in start + 1..=pause.unwrap_or(cfg.iters) {
        if let Some(outcome) = a.step(iter, pause)? {
            return Ok(outcome);
        }
    }
    match pause {
        // Resumed exactly at the rung (its result was lost): pause there again.
        Some(p) if p == start => a.pause(p),
        _ => a.finish(start),
    }
}

impl Attempt<'_> {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The iteration to continue from: the rolling checkpoint's, else the final one's, else
    /// 0. An unreadable checkpoint is ignored (and said so); another config's is an error.
    fn resume_point(&self) -> anyhow::Result<usize> {
        for path in [self.path(CHECKPOINT_FILE), self.path(FINAL_CHECKPOINT)] {
            if !path.exists() {
                continue;
            }
            match read_checkpoint(&path) {
                Ok(ck) if ck.config_hash == self.cfg.hash() => return Ok(ck.iter),
                Ok(ck) => anyhow::bail!(
                    "{}: checkpoint of config {}, but this job's config is {}",
                    path.display(),
                    ck.config_hash,
                    self.cfg.hash()
                ),
                Err(e) => emit(&Event::Log {
                    message: format!("ignoring unreadable checkpoint: {e:#}"),
                }),
            }
        }
        Ok(0)
    }

    /// Iteration `iter`; Some(outcome) when the attempt ends here (paused or interrupted).
    fn step(&self, iter: usize, pause: Option<usize>) -> anyhow::Result<Option<Outcome>> {
        self.maybe_crash(iter)?;
        if let Some(kind) = self.env.faults.at(&self.job, iter) {
            if kind != fault::Kind::Nan {
                fault::die(kind, iter);
            }
            // As the trainer: the diverged iteration reports nothing and saves nothing.
            return Ok(Some(Outcome::Diverged {
                iter,
                last_finite_loss: (iter > 1).then(|| self.toy.loss(iter - 1)),
            }));
        }
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_millis(self.env.iter_ms));
        emit(&Event::Iter {
            iter,
            loss: self.toy.loss(iter),
            lr: self.cfg.optimizer.lr(),
            secs: t0.elapsed().as_secs_f64(),
            data_wait_secs: 0.0,
        });
        if self.validation_due(iter) {
            self.emit_eval(iter);
        }
        if pause == Some(iter) {
            return self.pause(iter).map(Some);
        }
        let stop = stop_requested() && iter < self.cfg.iters;
        if stop || self.checkpoint_due(iter) {
            self.save(iter, CHECKPOINT_FILE)?;
        }
        Ok(stop.then_some(Outcome::Interrupted { iter }))
    }

    /// `SWEEP_TOY_CRASH_AT`: dies of SIGABRT at that iteration unless this folder's job
    /// crashed before.
    fn maybe_crash(&self, iter: usize) -> anyhow::Result<()> {
        let marker = self.path(CRASH_MARKER);
        if self.env.crash_at != Some(iter) || marker.exists() {
            return Ok(());
        }
        std::fs::write(&marker, format!("crashed at iteration {iter}\n"))
            .with_context(|| format!("writing {}", marker.display()))?;
        eprintln!("toy: aborting at iteration {iter} (SWEEP_TOY_CRASH_AT)");
        std::process::abort();
    }

    /// As the trainer: every `eval.every`-th iteration before the last.
    fn validation_due(&self, iter: usize) -> bool {
        let every = self.cfg.eval.every;
        every > 0 && iter % every == 0 && iter < self.cfg.iters
    }

    fn checkpoint_due(&self, iter: usize) -> bool {
        let every = self.cfg.checkpoint_every;
        every > 0 && iter % every == 0 && iter < self.cfg.iters
    }

    fn emit_eval(&self, iter: usize) {
        emit(&Event::Eval {
            iter,
            metrics: self.toy.evaluate(iter).summary(),
        });
    }

    /// Writes checkpoint `name` at `iter` and reports it.
    fn save(&self, iter: usize, name: &str) -> anyhow::Result<()> {
        let path = self.path(name);
        let ck = ToyCheckpoint {
            iter,
            config_hash: self.cfg.hash(),
        };
        let json = serde_json::to_vec_pretty(&ck)?;
        write_atomic(&path, |w| w.write_all(&json))
            .with_context(|| format!("saving checkpoint {}", path.display()))?;
        emit(&Event::Checkpoint { iter, path });
        Ok(())
    }

    /// The rung `pause_at`: evaluated (its point on the curve recorded, as the final
    /// evaluation records the last), checkpointed, paused.
    fn pause(&self, iter: usize) -> anyhow::Result<Outcome> {
        if self.cfg.eval.every > 0 && !self.validation_due(iter) {
            self.emit_eval(iter);
        }
        self.save(iter, CHECKPOINT_FILE)?;
        let e = self.toy.evaluate(iter);
        Ok(Outcome::Paused {
            iter,
            metrics: e.metrics,
            images: e.images,
        })
    }

    /// The end: the final evaluation and checkpoint (for stages that start from this job);
    /// the rolling checkpoint is removed, as the trainer does.
    fn finish(&self, start: usize) -> anyhow::Result<Outcome> {
        let iters = self.cfg.iters;
        if self.cfg.eval.every > 0 {
            self.emit_eval(iters);
        }
        if start < iters || !self.path(FINAL_CHECKPOINT).exists() {
            self.save(iters, FINAL_CHECKPOINT)?;
        }
        let rolling = self.path(CHECKPOINT_FILE);
        if rolling.exists() {
            std::fs::remove_file(&rolling)
                .with_context(|| format!("removing {}", rolling.display()))?;
        }
        let e = self.toy.evaluate(iters);
        Ok(Outcome::Completed {
            iterations: iters,
            metrics: e.metrics,
            images: e.images,
            data: None,
        })
    }
}

fn read_checkpoint(path: &Path) -> anyhow::Result<ToyCheckpoint> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

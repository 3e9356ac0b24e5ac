//! Progress display: bars with ETA on a terminal, plain log lines otherwise.

use crate::job::JobStatus;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The sweep's progress, shared by all slots.
#[derive(Clone)]
pub struct Progress {
    inner: Arc<Inner>,
}

struct Inner {
    bars: Option<MultiProgress>,
    sweep: ProgressBar,
    started: Instant,
    done: Mutex<(u64, u64)>, // (finished, total)
}

/// One running job's line.
pub struct JobProgress {
    bar: Option<ProgressBar>,
    label: String,
    total: u64,
    last_log: Instant,
    last_logged_pct: u64,
}

impl Progress {
    /// `total`: jobs this run will attempt. Bars only when stderr is a terminal.
    pub fn new(total: u64, already_done: u64) -> Self {
        let bars = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        let sweep = match &bars {
            Some(mp) => {
                let pb = mp.add(ProgressBar::new(total));
                pb.set_style(
                    ProgressStyle::with_template("{prefix:>8} [{bar:30.green/white}] {pos}/{len} jobs  {elapsed_precise} ETA {eta_precise} {msg}")
                        .expect("valid template")
                        .progress_chars("=> "),
                );
                pb.set_prefix("sweep");
                pb.set_position(already_done.min(total));
                pb
            }
            None => ProgressBar::hidden(),
        };
        Progress {
            inner: Arc::new(Inner {
                bars,
                sweep,
                started: Instant::now(),
                done: Mutex::new((already_done, total)),
            }),
        }
    }

    pub fn job(&self, label: &str, total_iters: u64) -> JobProgress {
        let bar = self.inner.bars.as_ref().map(|mp| {
            let pb = mp.add(ProgressBar::new(total_iters));
            pb.set_style(
                ProgressStyle::with_template(
                    "{prefix:>8} [{bar:30.cyan/blue}] {pos}/{len} it  ETA {eta}  {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            pb.set_prefix("job");
            pb.set_message(label.to_string());
            pb
        });
        if bar.is_none() {
            tracing::info!("started  {label}");
        }
        JobProgress {
            bar,
            label: label.to_string(),
            total: total_iters,
            last_log: Instant::now(),
            last_logged_pct: 0,
        }
    }

    /// An attempt ended; `status` is the job's status now. Only a job that is finished
    /// ([`JobStatus::is_finished`]) moves the counter: a retried or interrupted attempt
    /// prints its line without counting.
    pub fn attempt_ended(&self, status: JobStatus, line: &str) {
        let (done, total) = {
            let mut d = self.inner.done.lock().expect("progress lock");
            if status.is_finished() {
                d.0 += 1;
            }
            *d
        };
        match &self.inner.bars {
            Some(mp) => {
                if status.is_finished() {
                    self.inner.sweep.inc(1);
                }
                let _ = mp.println(line);
            }
            None => {
                let elapsed = self.inner.started.elapsed().as_secs_f64();
                tracing::info!("[{done}/{total}] {line} ({elapsed:.0}s elapsed)");
            }
        }
    }

    pub fn message(&self, line: &str) {
        match &self.inner.bars {
            Some(mp) => {
                let _ = mp.println(line);
            }
            None => tracing::info!("{line}"),
        }
    }

    pub fn clear(&self) {
        self.inner.sweep.finish_and_clear();
        if let Some(mp) = &self.inner.bars {
            let _ = mp.clear();
        }
    }
}

impl JobProgress {
    pub fn update(&mut self, iter: u64, loss: f64) {
        match &self.bar {
            Some(pb) => {
                pb.set_position(iter);
                pb.set_message(format!("{}  loss {loss:.4}", self.label));
            }
            None => {
                // Plain mode: a line every 25 % or every 30 s, whichever comes first.
                let pct = (iter * 100).checked_div(self.total).unwrap_or(100);
                if pct >= self.last_logged_pct + 25
                    || self.last_log.elapsed() > Duration::from_secs(30)
                {
                    self.last_logged_pct = pct - pct % 25;
                    self.last_log = Instant::now();
                    tracing::info!(
                        "{}: iteration {iter}/{} loss {loss:.4}",
                        self.label,
                        self.total
                    );
                }
            }
        }
    }

    /// The job's length, as its process reported it (a command job's is known only then).
    pub fn set_total(&mut self, total: u64) {
        self.total = total;
        if let Some(pb) = &self.bar {
            pb.set_length(total);
        }
    }

    pub fn resumed(&mut self, from: u64) {
        if let Some(pb) = &self.bar {
            pb.set_position(from);
            pb.reset_eta();
        } else if from > 0 {
            tracing::info!("{}: resumed from iteration {from}", self.label);
        }
    }
}

impl Drop for JobProgress {
    fn drop(&mut self) {
        if let Some(pb) = &self.bar {
            pb.finish_and_clear();
        }
    }
}

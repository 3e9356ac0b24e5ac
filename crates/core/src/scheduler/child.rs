//! One job attempt in its own process: spawn `sweep worker` (or a command job's program),
//! stream its events into the store, keep its heartbeat, and turn however it ended into a
//! [`Finish`].

use super::program_lines::{self, Line};
use super::progress::JobProgress;
use crate::job::FailureKind;
use crate::protocol::{
    Claim, Event, ImageMetric, JobResult, MetricValue, Outcome, EXIT_REJECTED, THREADS_ENV,
    WORKER_LOG,
};
use crate::store::{CurvePoint, Ending, Fence, Finish, NewArtifact, Reported, Store};
use anyhow::{Context, Result};
use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::watch;

/// What a job reports is written in batches: one transaction per batch, not per event.
const REPORT_FLUSH: Duration = Duration::from_millis(1000);
/// Lines of the worker's stderr kept for the job's error record.
const STDERR_TAIL_LINES: usize = 40;
/// After a stop request, how long a worker may take to checkpoint before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(60);

/// What to start for an attempt.
pub enum Launch<'a> {
    /// `EXE worker TICKET`: the built-in trainer (or a binary that speaks the ticket protocol).
    Worker { exe: &'a Path, ticket: &'a Path },
    /// A command job's program, which prints [`program_lines`].
    Program(&'a ProgramLaunch),
}

/// A command job's process: its command line, environment and folder.
#[derive(Clone, Debug)]
pub struct ProgramLaunch {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub workdir: std::path::PathBuf,
}

pub struct ChildSpec<'a> {
    pub launch: Launch<'a>,
    pub artifact_dir: &'a Path,
    pub hash: &'a str,
    /// The claim this attempt works for: only a result produced for it is recorded.
    pub claim: &'a Claim,
    /// CUDA_VISIBLE_DEVICES for this slot; None on CPU.
    pub cuda_visible: Option<String>,
    /// libtorch intra-op threads for this worker (its share of the CPU cores).
    pub torch_threads: usize,
    /// The ticket's rung to pause at: a paused result of another rung is an earlier attempt's.
    pub pause_at: Option<usize>,
}

/// What the orchestrator measured about one attempt (for the orchestrator benchmark).
#[derive(Default, Clone, Copy, Debug)]
pub struct AttemptTimings {
    /// From spawn to the worker's first event (process start-up, libtorch loading).
    pub startup: Option<Duration>,
    /// Store calls for what the job reported: curves, checkpoints, evaluations.
    pub events: Duration,
    /// Store calls renewing the lease.
    pub heartbeats: Duration,
}

/// Runs one attempt to its end. Never fails on the job's behalf: every way a job process
/// can end (result, crash, signal, lost ownership, stop request) becomes a [`Finish`].
///
/// `heartbeat`: how often the lease is renewed (and ownership re-checked).
pub async fn run_child(
    spec: ChildSpec<'_>,
    store: &dyn Store,
    fence: &Fence,
    heartbeat: Duration,
    progress: &mut JobProgress,
    mut stop: watch::Receiver<bool>,
) -> Result<(Ending, AttemptTimings)> {
    let spawned = Instant::now();
    let mut child = match (spawn(&spec), &spec.launch) {
        (Ok(child), _) => child,
        // A program that cannot start (not found, not executable) is the job's failure, and
        // another attempt would fail the same way; sweep's own worker missing is this node's.
        (Err(e), Launch::Program(_)) => {
            let failed = Finish::Failed {
                reason: format!("{e:#}"),
                stderr_tail: String::new(),
                kind: FailureKind::Permanent,
            };
            return Ok((failed.into(), AttemptTimings::default()));
        }
        (Err(e), Launch::Worker { .. }) => return Err(e),
    };
    let pid = child.id();
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr_task = keep_stderr(
        child.stderr.take().expect("piped stderr"),
        spec.artifact_dir.join(WORKER_LOG),
    );
    let program = matches!(spec.launch, Launch::Program(_));
    let mut watch = Watch {
        store,
        fence,
        program: program.then(|| ProgramReport::new(spec.artifact_dir)),
        reported: Reported::default(),
        last_flush: Instant::now(),
        iteration: 0,
        lost_ownership: false,
        killed: false,
        stop_sent: None,
        timings: AttemptTimings::default(),
    };
    let mut lines = BufReader::new(stdout).lines();
    // The claim itself set the lease and the heartbeat: the first renewal is one period on.
    let period = heartbeat.max(Duration::from_millis(100));
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => {
                    watch.timings.startup.get_or_insert(spawned.elapsed());
                    watch.on_line(&line, pid, progress).await?;
                }
                _ => break,
            },
            _ = heartbeat.tick() => watch.on_heartbeat(&mut child).await?,
            changed = stop.changed(), if watch.stop_sent.is_none() => {
                if changed.is_err() || *stop.borrow() {
                    watch.request_stop(pid);
                }
            },
        }
    }
    let status = child.wait().await.context("waiting for the job process")?;
    let stderr_tail = stderr_task.await.unwrap_or_default();
    watch.conclude(&spec, status, stderr_tail).await
}

/// Starts `sweep worker TICKET`, or the program, with the slot's environment.
fn spawn(spec: &ChildSpec<'_>) -> Result<tokio::process::Child> {
    let mut cmd = match spec.launch {
        Launch::Worker { exe, ticket } => {
            let mut cmd = Command::new(exe);
            cmd.arg("worker").arg(ticket);
            cmd
        }
        Launch::Program(p) => {
            let mut cmd = Command::new(&p.argv[0]);
            cmd.args(&p.argv[1..]).current_dir(&p.workdir);
            // Its own process group, so that a stop or a kill reaches what it started too
            // (a shell script's python); and it dies with the orchestrator, as `sweep
            // worker` does, so that a killed agent leaves no program training unowned.
            cmd.process_group(0);
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            // The program's threads: its share of the cores, unless its `env:` says otherwise.
            for var in ["OMP_NUM_THREADS", "MKL_NUM_THREADS"] {
                cmd.env(var, spec.torch_threads.to_string());
            }
            cmd.envs(p.env.iter().map(|(k, v)| (k, v)));
            cmd
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd.env(THREADS_ENV, spec.torch_threads.to_string());
    if let Some(devices) = &spec.cuda_visible {
        cmd.env("CUDA_VISIBLE_DEVICES", devices);
    }
    cmd.spawn().with_context(|| match spec.launch {
        Launch::Worker { exe, .. } => format!("starting the job process {}", exe.display()),
        Launch::Program(p) => format!(
            "starting the command {:?} in {}",
            p.argv.join(" "),
            p.workdir.display()
        ),
    })
}

/// What a command job's program reported that makes its result: the last `metrics`, its
/// per-image rows, its last iteration, and the first malformed line, if any.
struct ProgramReport {
    metrics: Option<Vec<MetricValue>>,
    images: Vec<ImageMetric>,
    lines: usize,
    malformed: Option<String>,
    /// The program's own stdout lines go to its log, after its stderr's.
    log: Option<std::fs::File>,
}

impl ProgramReport {
    fn new(dir: &Path) -> ProgramReport {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(PROGRAM_STDOUT))
            .ok();
        ProgramReport {
            metrics: None,
            images: Vec::new(),
            lines: 0,
            malformed: None,
            log,
        }
    }

    /// Reads one stdout line (the program at `iteration`): an event to act on, or None.
    fn read(&mut self, line: &str, iteration: usize) -> Option<Event> {
        use std::io::Write;
        self.lines += 1;
        match program_lines::read(line, iteration) {
            Ok(Line::Event(e)) => return Some(e),
            Ok(Line::Metrics(m)) => self.metrics = Some(m),
            Ok(Line::Image(i)) => self.images.push(i),
            Ok(Line::Output) => {
                if let Some(log) = self.log.as_mut() {
                    let _ = writeln!(log, "{line}");
                }
            }
            Err(e) => {
                if self.malformed.is_none() {
                    let shown: String = line.chars().take(120).collect();
                    self.malformed = Some(format!("stdout line {}: {e}: {shown}", self.lines));
                }
            }
        }
        None
    }

    /// How the program ended, when its report decides it: a malformed line (not retried:
    /// it would print the same again), or a clean exit with or without its metrics. With a
    /// rung to pause at (`SWEEP_PAUSE_AT`), its metrics are the rung's. `iteration`: the last
    /// one it reported.
    fn finish(
        self,
        status: &std::process::ExitStatus,
        stderr_tail: &str,
        pause_at: Option<usize>,
        iteration: usize,
    ) -> Option<Finish> {
        let permanent = |reason: String| Finish::Failed {
            reason,
            stderr_tail: stderr_tail.to_string(),
            kind: FailureKind::Permanent,
        };
        if let Some(m) = self.malformed {
            return Some(permanent(format!("malformed report, {m}")));
        }
        if !status.success() {
            return None;
        }
        Some(match (self.metrics, pause_at) {
            (Some(_), Some(rung)) if iteration > rung => permanent(format!(
                "ran past SWEEP_PAUSE_AT={rung} (to iteration {iteration}): a stopping rule needs the program to stop at the rung, report its metrics there and exit 0"
            )),
            (Some(metrics), Some(rung)) => Finish::Paused {
                iter: rung,
                metrics,
                images: self.images,
            },
            (Some(metrics), None) => Finish::Succeeded {
                metrics,
                images: self.images,
                iterations: iteration,
                sweep_version: Some(crate::protocol::sweep_version()),
                data: None,
            },
            (None, _) => permanent(
                "exited 0 without reporting its metrics: print {\"metrics\": {\"name\": value}} (sweep_job.result) before exiting".into(),
            ),
        })
    }
}

/// A command job's stdout lines that are not events.
pub const PROGRAM_STDOUT: &str = "stdout.log";

/// Copies stderr into the job's log and keeps its last lines for the error record.
fn keep_stderr(
    stderr: tokio::process::ChildStderr,
    log_path: std::path::PathBuf,
) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let mut tail: VecDeque<String> = VecDeque::new();
        let mut log = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .await
            .ok();
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(f) = log.as_mut() {
                let _ = f.write_all(format!("{line}\n").as_bytes()).await;
            }
            if tail.len() == STDERR_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
        tail.into_iter().collect::<Vec<_>>().join("\n")
    })
}

/// What the orchestrator tracks of a running job process.
struct Watch<'a> {
    store: &'a dyn Store,
    fence: &'a Fence,
    /// A command job's program: its lines, and what makes its result.
    program: Option<ProgramReport>,
    /// Curve points and artifacts not yet written.
    reported: Reported,
    last_flush: Instant,
    iteration: usize,
    lost_ownership: bool,
    /// The process was killed because the job is no longer ours.
    killed: bool,
    stop_sent: Option<Instant>,
    timings: AttemptTimings,
}

impl Watch<'_> {
    /// One line of the job's stdout: an [`Event`], or anything else (logged at debug).
    async fn on_line(
        &mut self,
        line: &str,
        pid: Option<u32>,
        progress: &mut JobProgress,
    ) -> Result<()> {
        let event = match self.program.as_mut() {
            Some(report) => report.read(line, self.iteration),
            None => serde_json::from_str::<Event>(line).ok(),
        };
        let Some(event) = event else {
            tracing::debug!("job process {pid:?}: {line}");
            return Ok(());
        };
        match event {
            Event::Started {
                iters,
                resumed_from,
            } => {
                progress.set_total(iters as u64);
                if resumed_from > 0 {
                    tracing::info!(
                        "job {} (attempt {}): resuming from iteration {resumed_from} (its checkpoint)",
                        self.fence.job_id,
                        self.fence.attempt
                    );
                }
                progress.resumed(resumed_from as u64)
            }
            Event::Iter {
                iter,
                loss,
                lr,
                secs,
                ..
            } => {
                self.iteration = iter;
                progress.update(iter as u64, loss);
                self.reported.curve.push(CurvePoint {
                    iteration: iter,
                    loss,
                    lr,
                    secs,
                });
            }
            Event::Checkpoint { iter, path } => self.reported.artifacts.push(NewArtifact {
                kind: "checkpoint".into(),
                path: path.display().to_string(),
                iteration: Some(iter),
            }),
            Event::Eval { iter, metrics } => {
                let t = Instant::now();
                let written = self.store.record_eval(self.fence, iter, &metrics).await;
                self.timings.events += t.elapsed();
                self.refused_means_lost(written)?;
            }
            Event::Log { message } => tracing::info!("{message}"),
        }
        if self.last_flush.elapsed() >= REPORT_FLUSH {
            self.flush_reported().await?;
        }
        Ok(())
    }

    /// A write the store refused because the job was taken over marks the ownership lost
    /// (the next heartbeat stops the process); any other store error is returned.
    fn refused_means_lost(&mut self, written: Result<()>) -> Result<()> {
        match written {
            Err(e) if crate::store::StoreError::is_not_owner(&e) => {
                self.lost_ownership = true;
                Ok(())
            }
            other => other,
        }
    }

    /// What the job reported since the last flush, in one transaction.
    async fn flush_reported(&mut self) -> Result<()> {
        if !self.reported.is_empty() {
            let t = Instant::now();
            let written = self.store.record_reported(self.fence, &self.reported).await;
            self.timings.events += t.elapsed();
            self.refused_means_lost(written)?;
            self.reported.clear();
        }
        self.last_flush = Instant::now();
        Ok(())
    }

    /// Renews the claim; kills the process when the job is no longer ours or a stop
    /// request went unanswered for [`STOP_GRACE`].
    async fn on_heartbeat(&mut self, child: &mut tokio::process::Child) -> Result<()> {
        let t = Instant::now();
        let ours = !self.lost_ownership && self.store.heartbeat(self.fence, self.iteration).await?;
        self.timings.heartbeats += t.elapsed();
        if !ours && !self.killed {
            // Another orchestrator declared us dead and took the job: stop at once, two
            // processes must never train the same job.
            tracing::warn!(
                "job {}: taken over by another agent (our lease lapsed), stopping its job process",
                self.fence.job_id
            );
            self.lost_ownership = true;
            self.killed = true;
            self.kill(child);
        }
        if self
            .stop_sent
            .is_some_and(|sent| sent.elapsed() > STOP_GRACE)
        {
            self.kill(child);
        }
        Ok(())
    }

    /// Sends `sig` to the job process; to a program's whole process group.
    fn signal(&self, pid: u32, sig: libc::c_int) {
        let target = match self.program {
            Some(_) => -(pid as libc::pid_t),
            None => pid as libc::pid_t,
        };
        unsafe { libc::kill(target, sig) };
    }

    fn kill(&self, child: &mut tokio::process::Child) {
        match (child.id(), &self.program) {
            (Some(pid), Some(_)) => self.signal(pid, libc::SIGKILL),
            _ => {
                let _ = child.start_kill();
            }
        }
    }

    /// SIGTERM: the job process checkpoints and exits with an Interrupted result.
    fn request_stop(&mut self, pid: Option<u32>) {
        if let Some(pid) = pid {
            self.signal(pid, libc::SIGTERM);
        }
        self.stop_sent = Some(Instant::now());
    }

    /// Turns how the process ended into a [`Finish`], with what it reported that is not
    /// written yet (recorded with the attempt's end, in one transaction).
    async fn conclude(
        mut self,
        spec: &ChildSpec<'_>,
        status: std::process::ExitStatus,
        stderr_tail: String,
    ) -> Result<(Ending, AttemptTimings)> {
        let program = self.program.is_some();
        let reported = match self.program.take() {
            Some(report) => report.finish(&status, &stderr_tail, spec.pause_at, self.iteration),
            None => worker_result(spec).map(finish_from),
        };
        let finished = reported
            .as_ref()
            .is_some_and(|f| !matches!(f, Finish::Interrupted | Finish::Paused { .. }));
        if !self.lost_ownership && !finished {
            // So that `status` and an interrupted job show the last iteration (a finished
            // result records its own).
            let t = Instant::now();
            let ours = self.store.heartbeat(self.fence, self.iteration).await?;
            self.timings.heartbeats += t.elapsed();
            self.lost_ownership = !ours;
        }
        if self.lost_ownership {
            // Whatever the process left is not ours to record: the store will refuse it.
            return Ok((Finish::Interrupted.into(), self.timings));
        }
        let finish = match reported {
            Some(f) => f,
            None if self.stop_sent.is_some() => Finish::Interrupted,
            None => Finish::Failed {
                reason: failure_reason(&status, &stderr_tail, program),
                kind: if status.code() == Some(EXIT_REJECTED) {
                    FailureKind::Permanent
                } else {
                    FailureKind::Transient
                },
                stderr_tail,
            },
        };
        let ending = Ending {
            finish,
            reported: self.reported,
            final_checkpoint: None,
        };
        Ok((ending, self.timings))
    }
}

/// The result `sweep worker` left for this claim (see `protocol`): a file of another
/// database, job or earlier rung is not this attempt's.
fn worker_result(spec: &ChildSpec<'_>) -> Option<JobResult> {
    JobResult::read(spec.artifact_dir).filter(|r| {
        let earlier_rung =
            matches!(r.outcome, Outcome::Paused { iter, .. } if Some(iter) != spec.pause_at);
        r.is_for_job(spec.hash, spec.claim) && !earlier_rung
    })
}

/// What the store records for a result the job process left.
fn finish_from(result: JobResult) -> Finish {
    match result.outcome {
        Outcome::Completed {
            iterations,
            metrics,
            images,
            data,
        } => Finish::Succeeded {
            metrics,
            images,
            iterations,
            sweep_version: result.sweep_version,
            data,
        },
        Outcome::Diverged {
            iter,
            last_finite_loss,
        } => Finish::Diverged {
            iter,
            last_finite_loss,
        },
        Outcome::Interrupted { .. } => Finish::Interrupted,
        Outcome::Paused {
            iter,
            metrics,
            images,
        } => Finish::Paused {
            iter,
            metrics,
            images,
        },
        Outcome::Rejected { reason } => Finish::Failed {
            reason,
            stderr_tail: String::new(),
            kind: FailureKind::Permanent,
        },
    }
}

/// How the process ended, and the error it printed last (`error: ...` on stderr), if any;
/// for a program, else its last line on stderr (a Python traceback's exception).
fn failure_reason(status: &std::process::ExitStatus, stderr_tail: &str, program: bool) -> String {
    let mut exit = describe_exit(status);
    if program && status.code() == Some(EXIT_REJECTED) {
        exit.push_str(" (the program rejected its job: not retried)");
    }
    let lines = || stderr_tail.lines().rev().map(str::trim);
    let error = lines()
        .find_map(|l| l.strip_prefix("error: "))
        .or_else(|| lines().find(|l| !l.is_empty()).filter(|_| program));
    match error {
        Some(error) => format!("{exit}: {error}"),
        None => exit,
    }
}

/// "exit code 3", "killed by signal 6 (SIGABRT)", "killed by signal 9 (SIGKILL: out of memory?)".
pub fn describe_exit(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(sig) = status.signal() {
        let name = match sig {
            libc::SIGABRT => "SIGABRT",
            libc::SIGSEGV => "SIGSEGV",
            libc::SIGKILL => "SIGKILL: killed, possibly by the out-of-memory killer",
            libc::SIGBUS => "SIGBUS",
            libc::SIGTERM => "SIGTERM",
            libc::SIGINT => "SIGINT",
            _ => "signal",
        };
        return format!("killed by signal {sig} ({name})");
    }
    match status.code() {
        Some(0) => "exited without writing a result".into(),
        Some(code) => format!("exit code {code}"),
        None => "ended abnormally".into(),
    }
}

//! The train loop of one job: validate, resume or initialise, train with events and
//! checkpoints, evaluate on the validation split.
//!
//! Determinism: initial weights come from `seed` (host-side, see `model::init_weights`),
//! dropout masks from `(seed, iteration)`, batches from `(seed, iteration)` (the data loader),
//! so a resumed job replays nothing and ends with exactly the metrics of an uninterrupted one
//! (on CPU; GPU kernels may be non-deterministic).

use super::checkpoint::{load_tensors, model_tensors, Checkpoint, CHECKPOINT_FILE, FINAL_FILE};
use super::freeze::{apply_freeze, check_freeze};
use super::import::init_model;
use super::loss::{check_spec, total_loss};
use super::loss_window::{self, LossWindow, QueuedStep};
use super::model::blocks::rng_for;
use super::model::Segmentor;
use super::ops::{set_kernel_options, KernelOptions};
use super::optim::{build_optimizer, LrSchedule};
use crate::{eval, DeviceChoice, Event, MetricValue, Observer, Outcome, TrainContext};
use anyhow::{anyhow, bail, Context};
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Bytes, Device, Int, Tensor, TensorData};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use sweep_core::job::{ComputeConfig, ConfigError, JobConfig, Precision};
use sweep_core::metrics::per_image::{image_summaries, DistanceScale};
use sweep_core::metrics::Metrics;
use sweep_data::{Dataset, TrainLoader};

pub use sweep_core::protocol::{INIT_REPORT_FILE, THREADS_ENV};

/// Sets libtorch's intra-op CPU threads (process-wide). Several jobs sharing a CPU should
/// split its cores: libtorch's OpenMP threads spin while waiting, and on an oversubscribed
/// machine a small network's step became ~40x slower with 2 threads than with 1 (measured
/// here, base 4, batch 2 x 32x32: 2.0 s vs 0.05 s per step at load 12 on 2 cores).
pub fn set_cpu_threads(n: usize) {
    tch::set_num_threads(n.max(1) as i32);
}

/// RNG stream of the decode/auxiliary heads' dropout.
const DROPOUT_STREAM: u64 = 1;

/// Trains and evaluates one job. Errors (bad config, missing data, I/O) are `Err`; a loss that
/// became NaN/inf is `Ok(Outcome::Diverged)`. A config error is an `anyhow::Error` wrapping
/// [`ConfigError`] (its message starts with the dotted field).
pub fn run(cfg: &JobConfig, ctx: &TrainContext, obs: &mut dyn Observer) -> anyhow::Result<Outcome> {
    check_config(cfg)?;
    if let Some(n) = std::env::var(THREADS_ENV).ok().and_then(|v| v.parse().ok()) {
        set_cpu_threads(n);
    }
    std::fs::create_dir_all(&ctx.artifact_dir)
        .with_context(|| format!("creating artifact folder {}", ctx.artifact_dir.display()))?;
    run_unet(cfg, ctx, obs)
}

/// `JobConfig::validate` plus what only the trainer knows (losses, frozen parts).
pub fn check_config(cfg: &JobConfig) -> Result<(), ConfigError> {
    cfg.validate()?;
    check_spec("loss", &cfg.loss)?;
    if let Some(aux) = &cfg.aux_loss {
        check_spec("aux_loss", aux)?;
    }
    check_freeze(&cfg.freeze, &cfg.model)?;
    Ok(())
}

/// libtorch kernels always; cuDNN autotuning on CUDA (crops are fixed per job, so every
/// shape is tuned once); precision and layout as the job asks.
pub fn kernel_options_for(compute: &ComputeConfig, device: &DeviceChoice) -> KernelOptions {
    KernelOptions {
        torch_kernels: true,
        cudnn_benchmark: matches!(device, DeviceChoice::Cuda(_)),
        channels_last: compute.channels_last,
        bf16: compute.precision == Precision::Bf16,
    }
}

/// Reports the final checkpoint and removes the rolling one, which it makes redundant.
fn final_saved(
    obs: &mut dyn Observer,
    iters: usize,
    final_path: &Path,
    ckpt_path: &Path,
) -> anyhow::Result<()> {
    obs.event(Event::Checkpoint {
        iter: iters,
        path: final_path.to_path_buf(),
    });
    if ckpt_path.exists() {
        std::fs::remove_file(ckpt_path)
            .with_context(|| format!("removing {}", ckpt_path.display()))?;
    }
    Ok(())
}

/// Whether iteration `iter` validates: every `eval.every`-th before the last (the final
/// evaluation records the last point).
fn validation_due(cfg: &JobConfig, iter: usize) -> bool {
    let every = cfg.eval.every;
    every > 0 && iter % every == 0 && iter < cfg.iters
}

fn checkpoint_due(cfg: &JobConfig, iter: usize) -> bool {
    cfg.checkpoint_every > 0 && iter % cfg.checkpoint_every == 0 && iter < cfg.iters
}

fn check_hash(path: &Path, found: &str, cfg: &JobConfig) -> anyhow::Result<()> {
    let want = cfg.hash();
    if found != want {
        bail!(
            "{}: checkpoint of config {found}, but this job's config is {want}; \
             remove it or use another artifact folder",
            path.display()
        );
    }
    Ok(())
}

fn run_unet(
    cfg: &JobConfig,
    ctx: &TrainContext,
    obs: &mut dyn Observer,
) -> anyhow::Result<Outcome> {
    let device = crate::burn_device(ctx.device);
    let ad = device.clone().autodiff();
    // One job per process, so the process-wide kernel options are this job's.
    set_kernel_options(kernel_options_for(&cfg.compute, &ctx.device));
    let ds = Arc::new(Dataset::open(&cfg.data).map_err(|e| anyhow!(e))?);
    let state = resume_or_init(cfg, ctx, &ad, obs)?;
    obs.event(Event::Started {
        iters: cfg.iters,
        resumed_from: state.start,
    });
    let mut pace = Pace::default();
    if let Some(rung) = rung_reached(cfg, ctx, state.start) {
        // Paused here before and asked for the same rung again: its result was lost.
        return evaluate_rung(&state.model, &ds, cfg, rung, &device);
    }
    let model = if state.start < cfg.iters {
        match train(state, ds.clone(), cfg, ctx, &ad, &mut pace, obs)? {
            ControlFlow::Continue(model) => model,
            ControlFlow::Break(outcome) => return Ok(outcome),
        }
    } else {
        state.model
    };
    evaluate_final(&model, &ds, cfg, ctx, &device, &pace, obs)
}

/// The model and optimiser that training continues with, and how far it already got.
struct TrainState {
    model: Segmentor,
    optim: ModuleOptimizer,
    /// Iterations already done (those of the checkpoint resumed from; 0 for a fresh job).
    start: usize,
    last_loss: Option<f64>,
}

/// The seeded model and a fresh optimiser, then the job's own checkpoint if it has one
/// (resume), else the `init` weights if the job asks for them.
fn resume_or_init(
    cfg: &JobConfig,
    ctx: &TrainContext,
    ad: &Device,
    obs: &mut dyn Observer,
) -> anyhow::Result<TrainState> {
    let model = apply_freeze(Segmentor::init(&cfg.model, cfg.seed, ad), &cfg.freeze)?;
    let optim = build_optimizer(&cfg.optimizer);
    let ckpt_path = ctx.artifact_dir.join(CHECKPOINT_FILE);
    let final_path = ctx.artifact_dir.join(FINAL_FILE);
    if let Some((path, ck)) = find_checkpoint([&ckpt_path, &final_path], Checkpoint::load, obs) {
        check_hash(path, &ck.config_hash, cfg)?;
        return restore(model, optim, path, ck);
    }
    if let Some(prefix) = &ctx.continue_from {
        return continue_prefix(model, optim, cfg, prefix, obs);
    }
    let model = match init_source(cfg, ctx)? {
        Some(init) => init_fresh(model, cfg, ctx, &init, &final_path, obs)?,
        None => model,
    };
    Ok(TrainState {
        model,
        optim,
        start: 0,
        last_loss: None,
    })
}

/// The rolling checkpoint, else the final one (training done, evaluation pending). Writes
/// are atomic, so an unreadable file means outside damage: it is reported and skipped.
fn find_checkpoint<'p, C, E: std::fmt::Display>(
    paths: [&'p PathBuf; 2],
    load: impl Fn(&Path) -> Result<C, E>,
    obs: &mut dyn Observer,
) -> Option<(&'p PathBuf, C)> {
    for path in paths {
        if !path.exists() {
            continue;
        }
        match load(path) {
            Ok(ck) => return Some((path, ck)),
            Err(e) => obs.event(Event::Log {
                message: format!("ignoring unreadable checkpoint: {e:#}"),
            }),
        }
    }
    None
}

/// A shared prefix: continues from the final checkpoint of the shorter job of the same
/// training. That it is one is checked here, not trusted: its config hash must be this
/// config's at the checkpoint's length, the schedule must not depend on `iters` (or the
/// learning rates differ), and the optimiser state must be there.
fn continue_prefix(
    model: Segmentor,
    optim: ModuleOptimizer,
    cfg: &JobConfig,
    path: &Path,
    obs: &mut dyn Observer,
) -> anyhow::Result<TrainState> {
    let ck = Checkpoint::load(path)?;
    let prefix = cfg.with_iters(ck.iteration);
    if ck.iteration >= cfg.iters || ck.config_hash != prefix.hash() {
        bail!(
            "{}: not a shorter run of this job (config {} at iteration {}; this job at \
             iteration {} would be {})",
            path.display(),
            ck.config_hash,
            ck.iteration,
            ck.iteration,
            prefix.hash()
        );
    }
    if cfg.schedule_depends_on_iters() {
        bail!(
            "{}: cannot continue a shorter run: the poly schedule's horizon is `iters`, so \
             its learning rates differ from this job's",
            path.display()
        );
    }
    if ck.optimizer.is_empty() {
        bail!(
            "{}: the shorter run kept no optimiser state to continue from",
            path.display()
        );
    }
    obs.event(Event::Log {
        message: format!(
            "continuing the {}-iteration run of the same training ({})",
            ck.iteration,
            path.display()
        ),
    });
    restore(model, optim, path, ck)
}

/// Continues from checkpoint `ck` (read from `path`), which must fit the model exactly; the
/// optimiser state is absent from a final checkpoint.
fn restore(
    model: Segmentor,
    optim: ModuleOptimizer,
    path: &Path,
    ck: Checkpoint,
) -> anyhow::Result<TrainState> {
    let (model, report) = load_tensors(model, &ck.tensors, &|_| true, true);
    if !(report.missing.is_empty() && report.mismatched.is_empty() && report.unused.is_empty()) {
        bail!(
            "{}: does not fit the model (missing {:?}, mismatched {:?}, unused {:?})",
            path.display(),
            report.missing,
            report.mismatched,
            report.unused
        );
    }
    let optim = if ck.optimizer.is_empty() {
        optim
    } else {
        optim
            .from_bytes(Bytes::from_bytes_vec(ck.optimizer))
            .map_err(|e| anyhow!("{}: optimiser state: {e}", path.display()))?
    };
    Ok(TrainState {
        model,
        optim,
        start: ck.iteration,
        last_loss: ck.last_loss,
    })
}

/// A fresh job's `init` weights from `init`; an evaluation-only job (`iters` 0) also saves
/// them as its final checkpoint.
fn init_fresh(
    model: Segmentor,
    cfg: &JobConfig,
    ctx: &TrainContext,
    init: &Path,
    final_path: &Path,
    obs: &mut dyn Observer,
) -> anyhow::Result<Segmentor> {
    let model = init_from(model, cfg, ctx, init, obs).map_err(crate::job_process::bad_input)?;
    if cfg.iters == 0 {
        // Evaluation only: the evaluated weights are this job's final checkpoint, so a
        // stage that only imports (e.g. a zoo .pth) can initialise others.
        save(&model, None, cfg, 0, None, final_path)?;
        obs.event(Event::Checkpoint {
            iter: 0,
            path: final_path.to_path_buf(),
        });
    }
    Ok(model)
}

/// Trains from `state.start` to `cfg.iters` with rolling checkpoints, then saves the final
/// one. `Continue(model)` when training is done; `Break(outcome)` when it stopped early
/// (diverged, or a stop was requested).
fn train(
    mut state: TrainState,
    ds: Arc<Dataset>,
    cfg: &JobConfig,
    ctx: &TrainContext,
    ad: &Device,
    pace: &mut Pace,
    obs: &mut dyn Observer,
) -> anyhow::Result<ControlFlow<Outcome, Segmentor>> {
    let ckpt_path = ctx.artifact_dir.join(CHECKPOINT_FILE);
    let final_path = ctx.artifact_dir.join(FINAL_FILE);
    let sched = LrSchedule::from_job(cfg);
    let during = DuringTraining::new(ds.clone(), cfg)?;
    let ds_for_rung = ds.clone();
    let mut loader = TrainLoader::new(ds, cfg, state.start);
    let mut window = LossWindow::new(loss_window::DEFAULT_WINDOW);
    for it in state.start..cfg.iters {
        let iter = it + 1;
        let started = Instant::now();
        let (batch, images, data_wait) = next_batch(&mut loader, it, ad)?;
        let lr = sched.lr(it);
        let (model, loss) = train_step(state.model, &mut state.optim, batch, cfg, it, lr);
        state.model = model;
        window.push(QueuedStep {
            iter,
            lr,
            images,
            loss,
            started,
            data_wait,
        });
        // Losses are read a window at a time (no device sync per step), and always before
        // a checkpoint or a validation, so neither ever sees a diverged model.
        let stop = obs.stop_requested();
        let pause = ctx.pause_at == Some(iter) && iter < cfg.iters;
        let needs_losses = stop || pause || iter == cfg.iters || checkpoint_due(cfg, iter);
        if window.due() || needs_losses || validation_due(cfg, iter) {
            if let Some(outcome) = report_steps(&mut window, &mut state, pace, obs)? {
                return Ok(ControlFlow::Break(outcome));
            }
        }
        let (model, optim, last_loss) = (&state.model, &state.optim, state.last_loss);
        let save_rolling = |path: &Path| save(model, Some(optim), cfg, iter, last_loss, path);
        if rolling_checkpoint(cfg, iter, stop || pause, &ckpt_path, obs, save_rolling)? {
            if pause {
                let paused = evaluate_rung(&state.model, &ds_for_rung, cfg, iter, ad)?;
                return Ok(ControlFlow::Break(paused));
            }
            return Ok(ControlFlow::Break(Outcome::Interrupted { iter }));
        }
        during.validate(&state.model, cfg, iter, ad, obs)?;
    }
    // Final weights, without optimiser state unless a longer job continues from them; the
    // rolling checkpoint is then redundant.
    let (model, last_loss) = (state.model, state.last_loss);
    let optim = ctx.keep_state.then_some(&state.optim);
    save(&model, optim, cfg, cfg.iters, last_loss, &final_path)?;
    final_saved(obs, cfg.iters, &final_path, &ckpt_path)?;
    Ok(ControlFlow::Continue(model))
}

/// Validation during training (`eval.every`): the validation images, prepared once when
/// the split is in memory, else read again at each evaluation.
struct DuringTraining {
    ds: Arc<Dataset>,
    images: Option<Vec<sweep_data::EvalImage>>,
}

impl DuringTraining {
    fn new(ds: Arc<Dataset>, cfg: &JobConfig) -> anyhow::Result<DuringTraining> {
        let images = if cfg.eval.every > 0 && ds.val_in_memory() {
            Some(ds.val_images().collect::<Result<_, _>>()?)
        } else {
            None
        };
        Ok(DuringTraining { ds, images })
    }

    /// Evaluates at every `eval.every`-th iteration before the last (the final evaluation
    /// records the last point); the numbers go out as an [`Event::Eval`].
    fn validate(
        &self,
        model: &Segmentor,
        cfg: &JobConfig,
        iter: usize,
        device: &Device,
        obs: &mut dyn Observer,
    ) -> anyhow::Result<()> {
        if !validation_due(cfg, iter) {
            return Ok(());
        }
        let valid = model.valid();
        let mut forward = |x: Tensor<4>| valid.forward(x);
        let n = cfg.model.num_classes;
        let mut images: Box<eval::EvalImages> = match &self.images {
            Some(v) => Box::new(v.iter().cloned().map(Ok)),
            None => Box::new(self.ds.val_images().map(|r| r.map_err(anyhow::Error::from))),
        };
        let metrics = eval::evaluate(&mut forward, &mut images, &cfg.eval, n, device, None)
            .with_context(|| format!("validating at iteration {iter}"))?;
        obs.event(Event::Eval {
            iter,
            metrics: summary_values(&metrics),
        });
        Ok(())
    }
}

/// Iteration `it`'s batch as (images, labels) tensors on `ad`, its image count, and how long
/// the loader kept the step waiting.
fn next_batch(
    loader: &mut TrainLoader,
    it: usize,
    ad: &Device,
) -> anyhow::Result<((Tensor<4>, Tensor<3, Int>), usize, Duration)> {
    let (bi, batch, wait) = loader.next_batch().map_err(|e| anyhow!(e))?;
    anyhow::ensure!(bi == it, "data loader gave iteration {bi}, expected {it}");
    let x = Tensor::<4>::from_data(
        TensorData::new(batch.images, [batch.n, 3, batch.h, batch.w]),
        ad,
    );
    let y = Tensor::<3, Int>::from_data(
        TensorData::new(batch.labels, [batch.n, batch.h, batch.w]),
        ad,
    );
    Ok(((x, y), batch.n, wait))
}

/// One training step on iteration `it`'s batch, the steps of burn's `TrainStep::step` as
/// its examples/custom-training-loop runs them: forward, loss, backward, optimiser step.
/// Returns the updated model and the loss, still on the device (see [`LossWindow`]).
fn train_step(
    model: Segmentor,
    optim: &mut ModuleOptimizer,
    (x, y): (Tensor<4>, Tensor<3, Int>),
    cfg: &JobConfig,
    it: usize,
    lr: f64,
) -> (Segmentor, Tensor<1>) {
    // Dropout masks from (seed, iteration), so a resumed job draws what it would have.
    let mut rng = rng_for(cfg.seed, DROPOUT_STREAM, it as u64);
    let out = model.forward_train(x, Some(&mut rng));
    let loss = total_loss(&out, &y, cfg);
    let queued = loss.clone().detach();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    (optim.step(lr, model, grads), queued)
}

/// Reads the window's losses and reports its steps; the first non-finite loss ends the job as
/// diverged at its iteration (the steps queued after it are dropped with the model).
fn report_steps(
    window: &mut LossWindow<Tensor<1>>,
    state: &mut TrainState,
    pace: &mut Pace,
    obs: &mut dyn Observer,
) -> anyhow::Result<Option<Outcome>> {
    for step in window.read(loss_window::read_losses)? {
        if !step.loss.is_finite() {
            return Ok(Some(diverged(step.iter, step.loss, state.last_loss, obs)));
        }
        state.last_loss = Some(step.loss);
        pace.add(step.images, step.secs, step.data_wait_secs);
        obs.event(Event::Iter {
            iter: step.iter,
            loss: step.loss,
            lr: step.lr,
            secs: step.secs,
            data_wait_secs: step.data_wait_secs,
        });
    }
    Ok(None)
}

/// Logs the non-finite `loss` of iteration `iter` and ends the job as diverged.
fn diverged(iter: usize, loss: f64, last_loss: Option<f64>, obs: &mut dyn Observer) -> Outcome {
    obs.event(Event::Log {
        message: format!("loss is {loss} at iteration {iter}: stopping (diverged)"),
    });
    Outcome::Diverged {
        iter,
        last_finite_loss: last_loss,
    }
}

/// Saves the rolling checkpoint with `save` when one is due or a stop was requested (the
/// stopped job then resumes from it); true when the job should stop now.
fn rolling_checkpoint(
    cfg: &JobConfig,
    iter: usize,
    stop_requested: bool,
    ckpt_path: &Path,
    obs: &mut dyn Observer,
    save: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<bool> {
    let stop = stop_requested && iter < cfg.iters;
    if checkpoint_due(cfg, iter) || stop {
        save(ckpt_path)?;
        obs.event(Event::Checkpoint {
            iter,
            path: ckpt_path.to_path_buf(),
        });
    }
    Ok(stop)
}

/// Evaluates the trained `model` on the validation split (saving predictions if asked); the
/// training pace joins the evaluation's metrics.
fn evaluate_final(
    model: &Segmentor,
    ds: &Dataset,
    cfg: &JobConfig,
    ctx: &TrainContext,
    device: &Device,
    pace: &Pace,
    obs: &mut dyn Observer,
) -> anyhow::Result<Outcome> {
    let pred_dir = cfg
        .eval
        .save_predictions
        .then(|| ctx.artifact_dir.join("predictions"));
    if let Some(d) = &pred_dir {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let evaluation = score_val(model, ds, cfg, device, pred_dir.as_deref())?;
    let mut values = evaluation.metrics.to_values("val");
    values.extend(image_summaries("val", &evaluation.images));
    if cfg.eval.every > 0 {
        obs.event(Event::Eval {
            iter: cfg.iters,
            metrics: summary_values(&evaluation.metrics),
        });
    }
    if let Some(train) = pace.metrics() {
        obs.event(Event::Log {
            message: format!(
                "trained at {:.2} img/s, {:.1}% of step time waiting for data",
                train[0].value, train[1].value
            ),
        });
        values.extend(train);
    }
    Ok(Outcome::Completed {
        iterations: cfg.iters,
        metrics: values,
        images: evaluation.images,
        data: Some(ds.fingerprint()?),
    })
}

/// The pause at a rung of an adaptive search: the same evaluation as the final one (the
/// stopping rule compares rungs with finished runs), no predictions saved.
fn evaluate_rung(
    model: &Segmentor,
    ds: &Dataset,
    cfg: &JobConfig,
    iter: usize,
    device: &Device,
) -> anyhow::Result<Outcome> {
    let evaluation = score_val(model, ds, cfg, device, None)
        .with_context(|| format!("evaluating at the rung at iteration {iter}"))?;
    let mut metrics = evaluation.metrics.to_values("val");
    metrics.extend(image_summaries("val", &evaluation.images));
    Ok(Outcome::Paused {
        iter,
        metrics,
        images: evaluation.images,
    })
}

/// The rung a job resumed at already (its checkpoint is at the ticket's `pause_at`).
fn rung_reached(cfg: &JobConfig, ctx: &TrainContext, start: usize) -> Option<usize> {
    ctx.pause_at
        .filter(|p| *p < cfg.iters && start >= *p && start > 0)
        .map(|_| start)
}

/// The validation split through `model`, with every image's rows.
fn score_val(
    model: &Segmentor,
    ds: &Dataset,
    cfg: &JobConfig,
    device: &Device,
    predictions_dir: Option<&Path>,
) -> anyhow::Result<eval::Evaluation> {
    let valid = model.valid();
    let mut images = ds.val_images().map(|r| r.map_err(anyhow::Error::from));
    let mut forward = |x: Tensor<4>| valid.forward(x);
    let target = eval::EvalTarget {
        split: "val",
        scale: DistanceScale::new(cfg.data.pixel_spacing),
        predictions_dir,
    };
    eval::score(
        &mut forward,
        &mut images,
        &cfg.eval,
        cfg.model.num_classes,
        device,
        &target,
    )
}

/// The summary numbers (no per-class values) of a validation during training.
fn summary_values(metrics: &Metrics) -> Vec<MetricValue> {
    metrics
        .to_values("val")
        .into_iter()
        .filter(|m| m.class.is_none())
        .collect()
}

/// Throughput of this attempt's training iterations, and how much of it the data loader cost.
#[derive(Default)]
struct Pace {
    images: usize,
    secs: f64,
    wait_secs: f64,
}

impl Pace {
    fn add(&mut self, images: usize, secs: f64, wait_secs: f64) {
        self.images += images;
        self.secs += secs;
        self.wait_secs += wait_secs;
    }

    /// `train:img_per_s` and `train:data_wait` (percent of step time), stored with the
    /// evaluation's metrics; None when this attempt trained nothing (evaluation only).
    fn metrics(&self) -> Option<Vec<MetricValue>> {
        (self.secs > 0.0).then(|| {
            let value = |name: &str, value: f64| MetricValue {
                split: "train".into(),
                name: name.into(),
                class: None,
                value,
            };
            vec![
                value("img_per_s", self.images as f64 / self.secs),
                value("data_wait", 100.0 * self.wait_secs / self.secs),
            ]
        })
    }
}

fn save(
    model: &Segmentor,
    optim: Option<&ModuleOptimizer>,
    cfg: &JobConfig,
    iteration: usize,
    last_loss: Option<f64>,
    path: &Path,
) -> anyhow::Result<()> {
    let optimizer = match optim {
        Some(o) => o
            .into_bytes()
            .map_err(|e| anyhow!("serialising the optimiser state: {e}"))?
            .to_vec(),
        None => Vec::new(),
    };
    Checkpoint {
        iteration,
        config_hash: cfg.hash(),
        last_loss,
        tensors: model_tensors(model),
        optimizer,
    }
    .save(path)
    .with_context(|| format!("saving checkpoint {}", path.display()))
}

/// The checkpoint that initialises a fresh job: the resolved `init.from` stage, else `init.path`.
fn init_source(cfg: &JobConfig, ctx: &TrainContext) -> anyhow::Result<Option<PathBuf>> {
    if let Some(p) = &ctx.init_checkpoint {
        return Ok(Some(p.clone()));
    }
    match &cfg.init {
        Some(i) if i.from.is_some() => bail!(
            "init.from: {:?} was not resolved to a checkpoint (the worker passes the stage's \
             final checkpoint as TrainContext::init_checkpoint)",
            i.from.as_deref().unwrap_or_default()
        ),
        Some(i) => Ok(i.path.clone()),
        None => Ok(None),
    }
}

/// Initialises a fresh job's model from `path` (see [`super::import`]); logs the report and
/// writes it to `init_report.json` in the artifact folder.
fn init_from(
    model: Segmentor,
    cfg: &JobConfig,
    ctx: &TrainContext,
    path: &Path,
    obs: &mut dyn Observer,
) -> anyhow::Result<Segmentor> {
    let init = cfg.init.as_ref();
    if !path.exists() {
        match init.and_then(|i| i.from.as_deref()) {
            Some(stage) if ctx.init_checkpoint.is_some() => bail!(
                "init.from: stage {stage:?} left no checkpoint at {} (did it finish?)",
                path.display()
            ),
            _ => bail!("init.path: {}: no such file", path.display()),
        }
    }
    let backbone_only = init.is_some_and(|i| i.backbone_only);
    let (model, report) = init_model(model, &cfg.model, path, backbone_only)?;
    for message in report.log_lines() {
        obs.event(Event::Log { message });
    }
    let json = serde_json::to_vec_pretty(&report).expect("InitReport serialises");
    let report_path = ctx.artifact_dir.join(INIT_REPORT_FILE);
    super::checkpoint::write_atomic(&report_path, |w| w.write_all(&json))
        .with_context(|| format!("writing {}", report_path.display()))?;
    Ok(model)
}

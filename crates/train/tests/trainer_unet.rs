//! The train loop on the real network and data (CPU, tiny UNets): learning, determinism,
//! exact resume, divergence.

use crate::util::dme_subset;
use std::path::Path;
use sweep_core::job::{JobConfig, OptimizerConfig};
use sweep_train::checkpoint::{Checkpoint, CHECKPOINT_FILE, FINAL_FILE};
use sweep_train::{run, DeviceChoice, Event, MetricValue, Observer, Outcome, TrainContext};

fn ctx(dir: &Path, attempt: u32) -> TrainContext {
    // One libtorch thread: tiny networks gain nothing from more, and CI shares its 2 cores.
    sweep_train::train::set_cpu_threads(1);
    TrainContext {
        pause_at: None,
        continue_from: None,
        keep_state: false,
        device: DeviceChoice::Cpu,
        artifact_dir: dir.to_path_buf(),
        attempt,
        init_checkpoint: None,
    }
}

/// The evaluation's numbers (`train` holds this attempt's throughput, which varies).
fn metrics(o: &Outcome) -> Vec<MetricValue> {
    assert!(
        matches!(o, Outcome::Completed { .. }),
        "not completed: {o:?}"
    );
    o.split_metrics("val")
}

fn train_metric(o: &Outcome, name: &str) -> f64 {
    let train = o.split_metrics("train");
    let m = train.iter().find(|m| m.name == name);
    m.unwrap_or_else(|| panic!("no train:{name} in {o:?}"))
        .value
}

fn fluid_dice(o: &Outcome) -> f64 {
    metrics(o)
        .iter()
        .find(|m| m.name == "Dice" && m.class == Some(1))
        .unwrap_or_else(|| panic!("no fluid Dice in {:?}", metrics(o)))
        .value
}

/// Tiny and fast: base 4, batch 2, 32x32 crops of images resized to 64x64, whole-image eval.
fn tiny(root: &Path) -> JobConfig {
    let mut c = JobConfig {
        crop: 32,
        iters: 4,
        batch: 2,
        checkpoint_every: 2,
        ..Default::default()
    };
    c.data.root = root.to_path_buf();
    c.data.scale = [64, 64];
    c.model.base_channels = 4;
    c.eval.mode = "whole".parse().unwrap();
    c.eval.crop = 64;
    c
}

#[test]
fn a_small_unet_overfits_four_images() {
    // Four B-scans with much fluid (4.5 - 5.7 % of pixels), at 64x64 (whole images as crops),
    // evaluated on themselves. Plain CE learns the all-background prior first; MMSeg's weighted
    // CE (fluid x10) gets past it within 100 iterations (fluid Dice ~83 with seeds 0, 1, 2).
    let (_tmp, root) = dme_subset(&["img_5", "img_6", "img_48", "img_49"]);
    let mut cfg = tiny(&root);
    cfg.model.base_channels = 8;
    cfg.crop = 64;
    cfg.batch = 4;
    cfg.iters = 100;
    cfg.checkpoint_every = 0;
    cfg.loss = serde_json::from_str(r#"[{"type": "ce", "class_weight": [1.0, 10.0]}]"#).unwrap();
    cfg.optimizer = OptimizerConfig::Adamw {
        lr: 3e-3,
        weight_decay: 0.0,
        beta1: 0.9,
        beta2: 0.999,
    };
    cfg.schedule.kind = "constant".parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut ev: Vec<Event> = Vec::new();
    let out = run(&cfg, &ctx(dir.path(), 1), &mut ev).unwrap();
    let losses: Vec<f64> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Iter { loss, .. } => Some(*loss),
            _ => None,
        })
        .collect();
    assert_eq!(losses.len(), 100);
    let first: f64 = losses[..10].iter().sum::<f64>() / 10.0;
    let last: f64 = losses[90..].iter().sum::<f64>() / 10.0;
    let dice = fluid_dice(&out);
    eprintln!("overfit: loss {first:.4} -> {last:.4}, fluid Dice {dice:.2}");
    assert!(last < 0.5 * first, "loss {first} -> {last}");
    // Predicting background everywhere gives fluid Dice 0.
    assert!(dice > 60.0, "fluid Dice {dice}");
}

/// Stops the job (as a kill would) right after the checkpoint of iteration `at`.
struct StopAfterCheckpoint(usize);

impl Observer for StopAfterCheckpoint {
    fn event(&mut self, e: Event) {
        if matches!(e, Event::Checkpoint { iter, .. } if iter == self.0) {
            panic!("interrupted after checkpoint {}", self.0);
        }
    }
}

/// Final weights by path (parameter ids are random per process, so they are left out).
fn final_tensors(dir: &Path) -> Vec<(String, Vec<f32>)> {
    Checkpoint::load(&dir.join(FINAL_FILE))
        .unwrap()
        .tensors
        .into_iter()
        .map(|t| (t.path, t.data))
        .collect()
}

#[test]
fn same_seed_is_identical_and_resume_equals_uninterrupted() {
    let (_tmp, root) = dme_subset(&["img_5", "img_48", "img_60"]);
    let cfg = tiny(&root);

    let a = tempfile::tempdir().unwrap();
    let out_a = run(&cfg, &ctx(a.path(), 1), &mut Vec::new()).unwrap();
    let b = tempfile::tempdir().unwrap();
    let out_b = run(&cfg, &ctx(b.path(), 1), &mut Vec::new()).unwrap();
    assert_eq!(metrics(&out_a), metrics(&out_b));
    assert!(!metrics(&out_a).is_empty());
    // Throughput of the attempt: positive images per second, a data wait in [0, 100] %.
    assert!(train_metric(&out_a, "img_per_s") > 0.0);
    let wait = train_metric(&out_a, "data_wait");
    assert!((0.0..=100.0).contains(&wait), "data wait {wait} %");
    assert_eq!(final_tensors(a.path()), final_tensors(b.path()));

    // Interrupted after the checkpoint of iteration 2, then resumed by a second attempt.
    let c = tempfile::tempdir().unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run(&cfg, &ctx(c.path(), 1), &mut StopAfterCheckpoint(2))
    }));
    assert!(r.is_err());
    let mut ev: Vec<Event> = Vec::new();
    let out_c = run(&cfg, &ctx(c.path(), 2), &mut ev).unwrap();
    assert_eq!(
        ev[0],
        Event::Started {
            iters: 4,
            resumed_from: 2
        }
    );
    assert_eq!(metrics(&out_c), metrics(&out_a));
    assert_eq!(final_tensors(c.path()), final_tensors(a.path()));

    // Another seed trains other weights (the comparison above can fail).
    let mut other = cfg.clone();
    other.seed = 1;
    let d = tempfile::tempdir().unwrap();
    run(&other, &ctx(d.path(), 1), &mut Vec::new()).unwrap();
    assert_ne!(final_tensors(d.path()), final_tensors(a.path()));
}

#[test]
fn a_nan_loss_stops_training_as_diverged() {
    let (_tmp, root) = dme_subset(&["img_5", "img_48"]);
    let mut cfg = tiny(&root);
    // A learning rate beyond f32's range: the first update makes the weights infinite, so
    // the loss of iteration 2 is not finite.
    cfg.optimizer = OptimizerConfig::Sgd {
        lr: 1e300,
        momentum: 0.9,
        weight_decay: 0.0,
    };
    let dir = tempfile::tempdir().unwrap();
    let mut ev: Vec<Event> = Vec::new();
    let out = run(&cfg, &ctx(dir.path(), 1), &mut ev).unwrap();
    let first_loss = ev
        .iter()
        .find_map(|e| match e {
            Event::Iter { iter: 1, loss, .. } => Some(*loss),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        out,
        Outcome::Diverged {
            iter: 2,
            last_finite_loss: Some(first_loss)
        }
    );
    assert!(!dir.path().join(FINAL_FILE).exists());
    // Losses are read before the checkpoint due at iteration 2, so the diverged model is
    // never saved, and nothing is reported past the divergence.
    assert!(!dir.path().join(CHECKPOINT_FILE).exists());
    assert!(!ev.iter().any(|e| matches!(e, Event::Checkpoint { .. })));
    assert!(!ev
        .iter()
        .any(|e| matches!(e, Event::Iter { iter, .. } if *iter >= 2)));
}

#[test]
fn a_stage_starts_from_another_jobs_final_weights() {
    let (_tmp, root) = dme_subset(&["img_5", "img_48"]);
    let mut first = tiny(&root);
    first.iters = 2;
    first.eval.save_predictions = true;
    let a = tempfile::tempdir().unwrap();
    run(&first, &ctx(a.path(), 1), &mut Vec::new()).unwrap();
    let mut preds: Vec<String> = std::fs::read_dir(a.path().join("predictions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    preds.sort();
    assert_eq!(preds, ["img_48.png", "img_5.png"]);

    // Another head and class count: only the backbone can (and may) load.
    let mut second = tiny(&root);
    second.iters = 1;
    second.model.head = sweep_core::job::Head::Pspnet;
    second.init = Some(sweep_core::job::InitConfig {
        from: Some("first".into()),
        path: None,
        backbone_only: true,
    });
    let mut backbone = 0;
    sweep_train::model::visit_paths(
        &sweep_train::model::Segmentor::new(
            &second.model,
            &sweep_train::burn_device(DeviceChoice::Cpu),
        ),
        |p, _| backbone += p.starts_with("backbone.") as usize,
    );
    let b = tempfile::tempdir().unwrap();
    let mut c = ctx(b.path(), 1);
    // `init.from` must arrive resolved.
    let err = run(&second, &c, &mut Vec::new()).unwrap_err();
    assert!(err.to_string().starts_with("init.from"), "{err}");
    c.init_checkpoint = Some(a.path().join(FINAL_FILE));
    let mut ev: Vec<Event> = Vec::new();
    run(&second, &c, &mut ev).unwrap();
    let log = ev
        .iter()
        .find_map(|e| match e {
            Event::Log { message } if message.starts_with("init loaded ") => Some(message),
            _ => None,
        })
        .expect("an init log line");
    assert!(
        log.starts_with(&format!("init loaded {backbone}:")),
        "{log}"
    );
}

#[test]
fn a_job_paused_at_a_rung_and_continued_equals_one_that_never_paused() {
    let (_tmp, root) = dme_subset(&["img_5", "img_48", "img_60"]);
    let mut cfg = tiny(&root);
    cfg.iters = 6;
    cfg.checkpoint_every = 0;
    cfg.schedule.horizon = Some(6);
    let straight = tempfile::tempdir().unwrap();
    let out_straight = run(&cfg, &ctx(straight.path(), 1), &mut Vec::new()).unwrap();

    // Paused at the rung of iteration 3: evaluated there, checkpointed, a result of its own.
    let dir = tempfile::tempdir().unwrap();
    let paused_ctx = TrainContext {
        pause_at: Some(3),
        ..ctx(dir.path(), 1)
    };
    let paused = run(&cfg, &paused_ctx, &mut Vec::new()).unwrap();
    let Outcome::Paused {
        iter,
        metrics: at_rung,
        images,
    } = &paused
    else {
        panic!("not paused: {paused:?}");
    };
    assert_eq!(*iter, 3);
    assert!(at_rung
        .iter()
        .any(|m| m.name == "mDice" && m.class.is_none()));
    assert_eq!(images.len(), 3 * 2, "3 images x 2 classes");
    assert!(dir.path().join(CHECKPOINT_FILE).exists());
    assert!(!dir.path().join(FINAL_FILE).exists());

    // The same rung asked again (its result was lost): evaluated again, nothing trained.
    let mut ev: Vec<Event> = Vec::new();
    let again = run(
        &cfg,
        &TrainContext {
            attempt: 2,
            ..paused_ctx
        },
        &mut ev,
    )
    .unwrap();
    assert_eq!(again, paused);

    // Promoted: continues from the rung's checkpoint to the end, bit-identical.
    let mut ev: Vec<Event> = Vec::new();
    let out = run(&cfg, &ctx(dir.path(), 3), &mut ev).unwrap();
    assert_eq!(
        ev[0],
        Event::Started {
            iters: 6,
            resumed_from: 3
        }
    );
    assert_eq!(metrics(&out), metrics(&out_straight));
    assert_eq!(final_tensors(dir.path()), final_tensors(straight.path()));
}

#[test]
fn a_job_continued_from_a_shorter_run_of_the_same_training_equals_one_run_straight() {
    // The shared prefix of grid rows that differ only in `iters`: the 3-iteration row keeps
    // its optimiser state, the 6-iteration row continues from it, bit-identically.
    let (_tmp, root) = dme_subset(&["img_5", "img_48", "img_60"]);
    let mut cfg = tiny(&root);
    cfg.iters = 6;
    cfg.checkpoint_every = 0;
    cfg.eval.every = 3;
    cfg.schedule.horizon = Some(6);
    let straight = tempfile::tempdir().unwrap();
    let out_straight = run(&cfg, &ctx(straight.path(), 1), &mut Vec::new()).unwrap();

    let short = tempfile::tempdir().unwrap();
    let keep = TrainContext {
        keep_state: true,
        ..ctx(short.path(), 1)
    };
    let out_short = run(&cfg.with_iters(3), &keep, &mut Vec::new()).unwrap();
    assert!(matches!(
        out_short,
        Outcome::Completed { iterations: 3, .. }
    ));
    let prefix = short.path().join(FINAL_FILE);
    assert!(!Checkpoint::load(&prefix).unwrap().optimizer.is_empty());

    let long = tempfile::tempdir().unwrap();
    let continuing = TrainContext {
        continue_from: Some(prefix.clone()),
        ..ctx(long.path(), 1)
    };
    let mut ev: Vec<Event> = Vec::new();
    let out = run(&cfg, &continuing, &mut ev).unwrap();
    assert!(ev.contains(&Event::Started {
        iters: 6,
        resumed_from: 3
    }));
    assert_eq!(metrics(&out), metrics(&out_straight));
    assert_eq!(final_tensors(long.path()), final_tensors(straight.path()));

    // What is not the same training is refused, naming the checkpoint.
    let refused = |cfg: &JobConfig, from: &Path| {
        let dir = tempfile::tempdir().unwrap();
        let c = TrainContext {
            continue_from: Some(from.to_path_buf()),
            ..ctx(dir.path(), 1)
        };
        format!("{:#}", run(cfg, &c, &mut Vec::new()).unwrap_err())
    };
    let mut other_lr = cfg.clone();
    other_lr.optimizer = OptimizerConfig::Sgd {
        lr: 0.5,
        momentum: 0.9,
        weight_decay: 0.0,
    };
    assert!(refused(&other_lr, &prefix).contains("not a shorter run of this job"));
    let mut poly_over_iters = cfg.clone();
    poly_over_iters.schedule.horizon = None;
    assert!(refused(&poly_over_iters, &prefix).contains("not a shorter run"));
    let short_poly = tempfile::tempdir().unwrap();
    let keep = TrainContext {
        keep_state: true,
        ..ctx(short_poly.path(), 1)
    };
    run(&poly_over_iters.with_iters(3), &keep, &mut Vec::new()).unwrap();
    let poly_prefix = short_poly.path().join(FINAL_FILE);
    assert!(refused(&poly_over_iters, &poly_prefix).contains("horizon is `iters`"));
    let no_state = straight.path().join(FINAL_FILE);
    let mut longer = cfg.clone();
    longer.iters = 9;
    assert!(refused(&longer, &no_state).contains("kept no optimiser state"));
}

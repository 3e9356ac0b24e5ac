//! Transfer learning through the train loop: `freeze` keeps parameters and batch-norm
//! statistics bit-identical, `init` from a sweep checkpoint (path or stage) with its report,
//! evaluation-only jobs (`iters: 0`), and the plan of sweeps/transfer.yaml.

use burn::module::Module;
use std::path::{Path, PathBuf};
use sweep_core::job::{Head, InitConfig, JobConfig, ModelConfig};
use sweep_data::Dataset;
use sweep_train::checkpoint::{load_tensors, model_tensors, Checkpoint, TensorEntry, FINAL_FILE};
use sweep_train::freeze::{is_frozen, parts};
use sweep_train::import::InitReport;
use sweep_train::model::Segmentor;
use sweep_train::train::INIT_REPORT_FILE;
use sweep_train::{eval, run, DeviceChoice, Event, MetricValue, Outcome, TrainContext};

fn root() -> PathBuf {
    crate::util::workspace_root()
}

/// A tiny real job on DME: base 4, 64 x 64 images, crop 32, 2 training / 2 validation images.
fn tiny(iters: usize) -> JobConfig {
    let mut c = JobConfig {
        model: ModelConfig {
            base_channels: 4,
            ..Default::default()
        },
        crop: 32,
        iters,
        checkpoint_every: 0,
        ..Default::default()
    };
    c.data.root = root().join("data/dme");
    c.data.scale = [64, 64];
    c.data.limit_train = Some(2);
    c.data.limit_val = Some(2);
    c.eval.crop = 32;
    c.eval.stride = 32;
    c
}

fn ctx(dir: &Path, init_checkpoint: Option<PathBuf>) -> TrainContext {
    TrainContext {
        pause_at: None,
        continue_from: None,
        keep_state: false,
        device: DeviceChoice::Cpu,
        artifact_dir: dir.to_path_buf(),
        attempt: 1,
        init_checkpoint,
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

fn final_tensors(dir: &Path) -> Vec<TensorEntry> {
    Checkpoint::load(&dir.join(FINAL_FILE)).unwrap().tensors
}

#[test]
fn frozen_parts_stay_bit_identical_while_the_rest_trains() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny(3);
    cfg.freeze = vec!["encoder:2".into(), "decoder.0".into(), "decode_head".into()];
    let mut ev: Vec<Event> = Vec::new();
    run(&cfg, &ctx(dir.path(), None), &mut ev).unwrap();

    let before = model_tensors(&Segmentor::init(
        &cfg.model,
        cfg.seed,
        &sweep_train::burn_device(DeviceChoice::Cpu),
    ));
    let after = final_tensors(dir.path());
    let frozen_parts = parts(&cfg.freeze, &cfg.model).unwrap();
    let (mut frozen, mut trained, mut stats) = (0, 0, 0);
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b.path, a.path);
        if is_frozen(&frozen_parts, &a.path) {
            // Bit-identical: compare the bits, not the values.
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a.data), bits(&b.data), "frozen {} changed", a.path);
            frozen += 1;
            stats += a.path.contains("running_") as usize;
        } else {
            assert_ne!(a.data, b.data, "trainable {} did not change", a.path);
            trained += 1;
        }
    }
    // encoder 0-1 (4 ConvModules), decoder 0 (3), FCN decode head (1 ConvModule + conv_seg).
    assert_eq!(frozen, 8 * 5 + 2);
    assert_eq!(
        stats,
        8 * 2,
        "running mean and var of every frozen batch norm"
    );
    assert!(trained > 50);
}

#[test]
fn unknown_freeze_names_are_rejected_with_the_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny(1);
    cfg.freeze = vec!["encoder".into(), "encoder:9".into()];
    let e = run(&cfg, &ctx(dir.path(), None), &mut Vec::new())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("freeze[1]: unknown part \"encoder:9\"") && e.contains("decode_head"),
        "{e}"
    );
}

/// A checkpoint of a model that is neither zero nor the seed-0 init, with non-trivial
/// batch-norm statistics (what evaluation reads).
fn weights_file(dir: &Path, model: &ModelConfig) -> (PathBuf, Vec<TensorEntry>) {
    let mut tensors = model_tensors(&Segmentor::init(
        model,
        5,
        &sweep_train::burn_device(DeviceChoice::Cpu),
    ));
    for t in &mut tensors {
        if t.path.ends_with("running_mean") {
            t.data
                .iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v = 0.05 * (i % 3) as f32);
        } else if t.path.ends_with("running_var") {
            t.data
                .iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v = 0.5 + 0.25 * (i % 4) as f32);
        }
    }
    let path = dir.join("weights.ckpt");
    Checkpoint {
        iteration: 7,
        config_hash: "elsewhere".into(),
        last_loss: None,
        tensors: tensors.clone(),
        optimizer: Vec::new(),
    }
    .save(&path)
    .unwrap();
    (path, tensors)
}

#[test]
fn evaluation_only_job_scores_the_given_weights() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny(0);
    let (path, tensors) = weights_file(dir.path(), &cfg.model);
    cfg.init = Some(InitConfig {
        from: None,
        path: Some(path.clone()),
        backbone_only: false,
    });
    let job_dir = dir.path().join("job");
    let mut ev: Vec<Event> = Vec::new();
    let out = run(&cfg, &ctx(&job_dir, None), &mut ev).unwrap();
    let got = metrics(&out);
    assert!(
        !ev.iter().any(|e| matches!(e, Event::Iter { .. })),
        "no training"
    );
    assert!(ev.iter().any(|e| matches!(e, Event::Log { message } if message.starts_with("init from") && message.contains("loaded"))));

    // The same weights evaluated directly.
    let dev = sweep_train::burn_device(DeviceChoice::Cpu);
    let (model, r) = load_tensors(Segmentor::new(&cfg.model, &dev), &tensors, &|_| true, false);
    assert!(r.missing.is_empty() && r.unused.is_empty());
    let valid = model.valid();
    let ds = Dataset::open(&cfg.data).unwrap();
    let mut images = ds.val_images().map(|r| r.map_err(anyhow::Error::from));
    let want = eval::evaluate(
        &mut |x: burn::tensor::Tensor<4>| valid.forward(x),
        &mut images,
        &cfg.eval,
        cfg.model.num_classes,
        &dev,
        None,
    )
    .unwrap()
    .to_values("val");
    // The IoUMetric numbers, then the per-image summaries (imgDice, HD95, ASSD).
    assert_eq!(got[..want.len()], want[..]);
    let rest: Vec<&str> = got[want.len()..].iter().map(|m| m.name.as_str()).collect();
    assert_eq!(rest, ["imgDice", "HD95", "ASSD"]);
    assert!(got.iter().any(|m| m.name == "mDice"));

    // The evaluated weights are the job's final checkpoint; the report is on disk.
    assert_eq!(
        final_tensors(&job_dir)
            .iter()
            .map(|t| &t.data)
            .collect::<Vec<_>>(),
        tensors.iter().map(|t| &t.data).collect::<Vec<_>>()
    );
    let report: InitReport =
        serde_json::from_slice(&std::fs::read(job_dir.join(INIT_REPORT_FILE)).unwrap()).unwrap();
    assert_eq!(
        (
            report.loaded.len(),
            report.skipped.len(),
            report.missing.len()
        ),
        (tensors.len(), 0, 0)
    );
    // Run again: the final checkpoint is found and evaluated again, same numbers.
    let again = run(&cfg, &ctx(&job_dir, None), &mut Vec::new()).unwrap();
    assert_eq!(metrics(&again), got);
}

#[test]
fn zero_iterations_without_init_is_a_config_error() {
    let e = tiny(0).validate().unwrap_err();
    assert_eq!(e.field, "iters");
    assert!(e.message.contains("or 0 with `init`"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny(0);
    cfg.init = Some(InitConfig {
        from: None,
        path: Some(dir.path().join("absent.ckpt")),
        backbone_only: false,
    });
    let e = run(&cfg, &ctx(dir.path(), None), &mut Vec::new())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("init.path: ") && e.contains("absent.ckpt"),
        "{e}"
    );
}

#[test]
fn stage_checkpoint_initialises_another_head_with_its_backbone() {
    // The stage: FCN, trained 2 iterations. Its final checkpoint starts a DeepLabV3 job the
    // way the scheduler passes `init.from` (TrainContext::init_checkpoint).
    let dir = tempfile::tempdir().unwrap();
    let stage_dir = dir.path().join("stage");
    run(&tiny(2), &ctx(&stage_dir, None), &mut Vec::new()).unwrap();
    let stage = final_tensors(&stage_dir);

    let mut cfg = tiny(0);
    cfg.model.head = Head::Deeplabv3;
    cfg.init = Some(InitConfig {
        from: Some("pretrain".into()),
        path: None,
        backbone_only: false,
    });
    let job_dir = dir.path().join("job");
    let mut ev: Vec<Event> = Vec::new();
    run(
        &cfg,
        &ctx(&job_dir, Some(stage_dir.join(FINAL_FILE))),
        &mut ev,
    )
    .unwrap();
    let logs: Vec<&str> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Log { message } => Some(message.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        logs[0].contains("backbone only (the file's decode head is FCN, the model's DeepLabV3)"),
        "{logs:?}"
    );
    assert!(
        logs.iter().any(|l| l.starts_with("init skipped")),
        "{logs:?}"
    );
    let report: InitReport =
        serde_json::from_slice(&std::fs::read(job_dir.join(INIT_REPORT_FILE)).unwrap()).unwrap();
    assert!(report.backbone_only);
    // Backbone: 22 ConvModules x 5 tensors, loaded; the stage's heads are skipped.
    assert_eq!(report.loaded.len(), 110);
    let stage_heads = stage
        .iter()
        .filter(|t| !t.path.starts_with("backbone."))
        .count();
    assert_eq!(report.skipped.len(), stage_heads);
    let after = final_tensors(&job_dir);
    for t in after.iter().filter(|t| t.path.starts_with("backbone.")) {
        let s = stage.iter().find(|s| s.path == t.path).unwrap();
        assert_eq!(s.data, t.data, "{}", t.path);
    }

    // A missing stage checkpoint names the stage.
    let e = run(
        &cfg,
        &ctx(
            &dir.path().join("job2"),
            Some(dir.path().join("nowhere/final.ckpt")),
        ),
        &mut Vec::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("init.from: stage \"pretrain\""), "{e}");
}

#[test]
fn transfer_sweep_plans_the_stage_first_and_labels_the_init() {
    let spec = sweep_core::sweepfile::load(&root().join("sweeps/transfer.yaml"), &[]).unwrap();
    let jobs = spec.plan().unwrap();
    assert_eq!(jobs.len(), 1 + 2 * 3);
    let pre = &jobs[0];
    assert_eq!(pre.stage.as_deref(), Some("pretrain-chase"));
    assert!(pre.depends_on.is_none() && pre.config.train().unwrap().init.is_none());
    let c = pre.config.train().unwrap();
    assert_eq!(c.data.dataset.to_string(), "chase_db1");
    assert_eq!(c.data.scale, [960, 999]);
    assert_eq!(c.data.ratio_range, Some([0.5, 2.0]));
    assert_eq!((c.data.flip, c.data.photometric), (0.5, true));
    assert_eq!((c.crop, c.model.head), (128, Head::Fcn));
    assert_eq!(
        (c.eval.mode.to_string().as_str(), c.eval.crop, c.eval.stride),
        ("slide", 128, 85)
    );

    let mut from_stage = 0;
    for j in &jobs[1..] {
        assert_eq!(j.stage, None);
        assert_eq!(j.config.train().unwrap().data.dataset.to_string(), "dme");
        assert_eq!(
            (
                j.config.train().unwrap().model.head,
                j.config.train().unwrap().crop,
                j.config.train().unwrap().iters
            ),
            (Head::Deeplabv3, 320, 200)
        );
        let init = j
            .varied
            .iter()
            .find(|(k, _)| k == "init")
            .map(|(_, v)| v.as_str());
        match &j.config.train().unwrap().init {
            Some(i) => {
                assert_eq!(i.from.as_deref(), Some("pretrain-chase"));
                assert_eq!(j.depends_on.as_ref(), Some(&pre.hash));
                assert_eq!(init, Some("pretrain-chase"));
                assert_eq!(
                    j.label,
                    "UNet + DeepLabV3, crop 320, 200 it, dice, init=pretrain-chase"
                );
                from_stage += 1;
            }
            None => {
                assert_eq!(j.depends_on, None);
                assert_eq!(init, Some("scratch"));
                assert_eq!(
                    j.label,
                    "UNet + DeepLabV3, crop 320, 200 it, dice, init=scratch"
                );
            }
        }
    }
    assert_eq!(from_stage, 3);
    let mut seeds: Vec<u64> = jobs[1..]
        .iter()
        .map(|j| j.config.train().unwrap().seed)
        .collect();
    seeds.sort();
    assert_eq!(seeds, vec![0, 0, 1, 1, 2, 2]);
}

//! What the train loop refuses, on the real trainer: configs it cannot run (naming the
//! field), a damaged checkpoint (skipped and said so) and another config's checkpoint
//! (refused, naming the file). Orchestration without training (events, retries, faults)
//! is tested on the toy worker (`sweep-toy-worker`) by the end-to-end tests.

use crate::util::dme_subset;
use std::path::Path;
use sweep_core::job::{ConfigError, JobConfig, LossSpec};
use sweep_train::checkpoint::{CHECKPOINT_FILE, FINAL_FILE};
use sweep_train::{run, DeviceChoice, Event, TrainContext};

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

fn config_error(cfg: &JobConfig) -> ConfigError {
    let dir = tempfile::tempdir().unwrap();
    let err = run(cfg, &ctx(dir.path(), 1), &mut Vec::new()).unwrap_err();
    err.downcast_ref::<ConfigError>()
        .unwrap_or_else(|| panic!("not a ConfigError: {err}"))
        .clone()
}

#[test]
fn bad_configs_are_rejected_naming_the_field() {
    let mut c = JobConfig {
        crop: 250,
        ..Default::default()
    };
    assert_eq!(config_error(&c).field, "crop");
    c.crop = 64;
    c.loss =
        serde_json::from_str::<LossSpec>(r#"[{"type": "ce", "class_weight": [1.0]}]"#).unwrap();
    assert_eq!(config_error(&c).field, "loss[0].class_weight");
    c.loss = LossSpec::default();
    c.aux_loss =
        Some(serde_json::from_str(r#"[{"type": "dice", "class_weight": [1.0, 2.0]}]"#).unwrap());
    assert_eq!(config_error(&c).field, "aux_loss[0].class_weight");
    c.aux_loss = None;
    c.freeze = vec!["backbone".into(), "neck".into()];
    assert_eq!(config_error(&c).field, "freeze[1]");
    c.freeze = vec!["auxiliary_head".into()];
    c.model.aux_head = false;
    assert_eq!(config_error(&c).field, "freeze[0]");
}

/// Two iterations of a tiny UNet on two images, a rolling checkpoint after the first.
fn tiny(root: &Path) -> JobConfig {
    let mut c = JobConfig {
        crop: 32,
        iters: 2,
        batch: 1,
        checkpoint_every: 1,
        ..Default::default()
    };
    c.data.root = root.to_path_buf();
    c.data.scale = [64, 64];
    c.model.base_channels = 4;
    c.model.aux_head = false;
    c.eval.mode = "whole".parse().unwrap();
    c.eval.crop = 64;
    c
}

#[test]
fn a_damaged_checkpoint_is_skipped_and_another_configs_refused() {
    let (_tmp, root) = dme_subset(&["img_5", "img_48"]);
    let cfg = tiny(&root);
    // Writes are atomic, so an unreadable file is outside damage: said, then trained anew.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(CHECKPOINT_FILE), b"SWEEPCK1 cut short").unwrap();
    let mut ev: Vec<Event> = Vec::new();
    run(&cfg, &ctx(dir.path(), 1), &mut ev).unwrap();
    let said = ev.iter().any(|e| match e {
        Event::Log { message } => {
            message.contains("ignoring unreadable checkpoint") && message.contains(CHECKPOINT_FILE)
        }
        _ => false,
    });
    assert!(said, "{ev:?}");
    assert!(
        ev.contains(&Event::Started {
            iters: 2,
            resumed_from: 0
        }),
        "{ev:?}"
    );

    // Another config's checkpoint is never resumed from: the error names the file.
    std::fs::copy(
        dir.path().join(FINAL_FILE),
        dir.path().join(CHECKPOINT_FILE),
    )
    .unwrap();
    let mut other = cfg.clone();
    other.seed = 9;
    let err = run(&other, &ctx(dir.path(), 2), &mut Vec::new()).unwrap_err();
    assert!(format!("{err:#}").contains(CHECKPOINT_FILE), "{err:#}");
}

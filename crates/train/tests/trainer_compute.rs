//! A job's `compute` section reaches the kernels: bf16 + channels_last convolutions train the
//! same network to nearly the same losses as fp32 (CPU), and make another job identity.
//! Its own process (`util::in_own_process`): kernel options are process-wide.

use crate::util::dme_subset;
use sweep_core::job::{ComputeConfig, JobConfig, Precision};
use sweep_train::ops::kernel_options;
use sweep_train::{run, DeviceChoice, Event, TrainContext};

fn losses(cfg: &JobConfig) -> Vec<f64> {
    let dir = tempfile::tempdir().unwrap();
    let ctx = TrainContext {
        pause_at: None,
        continue_from: None,
        keep_state: false,
        device: DeviceChoice::Cpu,
        artifact_dir: dir.path().to_path_buf(),
        attempt: 1,
        init_checkpoint: None,
    };
    let mut events: Vec<Event> = Vec::new();
    run(cfg, &ctx, &mut events).unwrap();
    events
        .iter()
        .filter_map(|e| match e {
            Event::Iter { loss, .. } => Some(*loss),
            _ => None,
        })
        .collect()
}

#[test]
fn bf16_channels_last_jobs_train_like_fp32() {
    crate::util::in_own_process(
        module_path!(),
        "bf16_channels_last_jobs_train_like_fp32",
        bf16_channels_last_jobs_train_like_fp32_alone,
    );
}

fn bf16_channels_last_jobs_train_like_fp32_alone() {
    sweep_train::train::set_cpu_threads(1);
    let (_tmp, root) = dme_subset(&["img_5", "img_48"]);
    let mut fp32 = JobConfig {
        crop: 32,
        iters: 3,
        batch: 2,
        checkpoint_every: 0,
        ..Default::default()
    };
    fp32.data.root = root;
    fp32.data.scale = [64, 64];
    fp32.model.base_channels = 4;
    fp32.eval.mode = "whole".parse().unwrap();
    fp32.eval.crop = 64;
    let bf16 = JobConfig {
        compute: ComputeConfig {
            precision: Precision::Bf16,
            channels_last: true,
        },
        ..fp32.clone()
    };
    assert_ne!(fp32.hash(), bf16.hash());

    let reference = losses(&fp32);
    assert!(!kernel_options().bf16 && !kernel_options().channels_last);
    let mixed = losses(&bf16);
    let options = kernel_options();
    assert!(options.bf16 && options.channels_last, "{options:?}");
    assert_eq!(reference.len(), 3);
    for (i, (a, b)) in reference.iter().zip(&mixed).enumerate() {
        // bf16 keeps 8 bits of mantissa: close, not equal.
        let rel = (a - b).abs() / a.abs();
        assert!(rel < 0.05, "iteration {i}: fp32 {a} vs bf16 {b}");
    }
    assert_ne!(reference, mixed, "bf16 convolutions changed nothing");
}

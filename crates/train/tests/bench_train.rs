//! `sweep bench train` on CPU: every side runs, and the libtorch-kernel path trains the same
//! network to the same loss as burn's own ops (same init, batch and dropout masks), so the
//! benchmark compares equal work.

use sweep_core::job::Head;
use sweep_train::bench_train::{bench_row, parse_shapes, BenchTrainArgs, Recipe};

/// Needs torch (fails without it); sets the process-wide kernel options, so runs alone in
/// its own process.
#[test]
fn both_kernel_paths_and_pytorch_run_the_same_step() {
    crate::util::require_torch();
    crate::util::in_own_process(
        module_path!(),
        "both_kernel_paths_and_pytorch_run_the_same_step",
        both_kernel_paths_and_pytorch_run_the_same_step_alone,
    );
}

fn both_kernel_paths_and_pytorch_run_the_same_step_alone() {
    crate::util::require_torch();
    sweep_train::train::set_cpu_threads(1);
    let args = BenchTrainArgs {
        base_channels: 4,
        steps: 3,
        warmup: 1,
        head: Head::Deeplabv3,
        profile: true,
        ..Default::default()
    };
    let (row, info) = bench_row(&args, 2, 32, Recipe::FP32).unwrap();
    let burn = row.sweep_burn.as_ref().expect("burn kernels timed");
    for t in [&row.sweep, burn] {
        assert!(t.img_per_s > 0.0 && t.img_per_s.is_finite(), "{t:?}");
        assert!(t.last_loss.is_finite(), "{t:?}");
    }
    let rel = (row.sweep.last_loss - burn.last_loss).abs() / burn.last_loss.abs();
    assert!(
        rel < 1e-4,
        "libtorch kernels {} vs burn {} after 4 steps",
        row.sweep.last_loss,
        burn.last_loss
    );
    let torch = row.torch.as_ref().expect("PyTorch side ran");
    assert!(torch.img_per_s > 0.0 && torch.last_loss.is_finite());
    assert!(info.contains("torch 2."), "{info}");
    assert!(row.ratio().unwrap() > 0.0);
    // The profile: a loss read every step computes the same losses; every phase took time;
    // the optimiser updated every parameter tensor of the network.
    let p = row.profile.as_ref().expect("profile asked for");
    assert_eq!(p.every_step_read.last_loss, row.sweep.last_loss);
    assert!(
        p.forward_ms > 0.0 && p.backward_ms > 0.0 && p.optimizer_ms > 0.0,
        "{p:?}"
    );
    assert!(p.param_tensors > 20, "{p:?}");
}

/// `sweep doctor`'s check on CPU: the libtorch in use is named, and three real steps train.
#[test]
fn doctor_finds_libtorch_and_trains_on_cpu() {
    crate::util::in_own_process(
        module_path!(),
        "doctor_finds_libtorch_and_trains_on_cpu",
        || {
            let d = sweep_train::doctor::diagnose(sweep_train::DeviceChoice::Cpu);
            assert!(d.ok(), "{}", sweep_train::doctor::render(&d));
            assert!(
                d.libraries.iter().any(|l| l.contains("libtorch_cpu")),
                "{:?}",
                d.libraries
            );
            assert_eq!(d.steps.len(), 1);
            assert!(d.steps[0].loss.is_some_and(f64::is_finite), "{:?}", d.steps);
            let text = sweep_train::doctor::render(&d);
            assert!(text.ends_with("ready to train"), "{text}");
        },
    );
}

/// A row that cannot be measured is reported as failed; the rows after it still run, and the
/// caller sees the run after every row (the CLI rewrites its JSON file then).
#[test]
fn a_failing_row_is_recorded_and_the_rest_still_run() {
    crate::util::require_torch();
    crate::util::in_own_process(
        module_path!(),
        "a_failing_row_is_recorded_and_the_rest_still_run",
        || {
            sweep_train::train::set_cpu_threads(1);
            let args = BenchTrainArgs {
                shapes: vec![(1, 24), (1, 32)],
                base_channels: 4,
                steps: 1,
                warmup: 0,
                burn_kernels: false,
                ..Default::default()
            };
            let mut seen = Vec::new();
            let run = sweep_train::bench_train::bench_train(&args, |run| {
                seen.push((run.rows.len(), run.failed.len()))
            })
            .unwrap();
            assert_eq!(seen, [(0, 1), (1, 1)]);
            assert_eq!((run.failed[0].batch, run.failed[0].crop), (1, 24));
            assert!(run.failed[0].error.contains("crop 24"), "{:?}", run.failed);
            assert_eq!((run.rows[0].batch, run.rows[0].crop), (1, 32));
            let json = sweep_train::bench_train::rows_json(&args, &run);
            assert_eq!(json["failed"][0]["precision"], "fp32");
            assert_eq!(json["rows"][0]["crop"], 32);
        },
    );
}

#[test]
fn recipes_parse() {
    let r = |s: &str| s.parse::<Recipe>();
    assert_eq!(r("fp32").unwrap(), Recipe::FP32);
    let best = r("bf16+nhwc").unwrap();
    assert!(best.bf16 && best.channels_last);
    assert_eq!(best.name(), "bf16+nhwc");
    assert!(!r("bf16+nchw").unwrap().channels_last);
    assert!(r("fp16").unwrap_err().contains("\"fp16\""));
    assert!(r("bf16+nwhc").unwrap_err().contains("\"nwhc\""));
}

#[test]
fn shapes_parse_and_name_the_bad_row() {
    assert_eq!(
        parse_shapes("2x256, 16x256,2x320").unwrap(),
        vec![(2, 256), (16, 256), (2, 320)]
    );
    let e = parse_shapes("2x256,16").unwrap_err();
    assert!(e.contains("\"16\""), "{e}");
    let e = parse_shapes("2xabc").unwrap_err();
    assert!(e.contains("\"abc\""), "{e}");
}

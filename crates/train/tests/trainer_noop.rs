//! The train loop's contract without a network: the `noop` backbone (events, checkpoints,
//! resume, fault injection, synthetic metrics) and config rejection.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use sweep_core::job::{ConfigError, FaultConfig, FaultKind, JobConfig, LossSpec};
use sweep_train::{run, DeviceChoice, Event, Outcome, TrainContext};

fn noop(iters: usize, checkpoint_every: usize) -> JobConfig {
    let mut c = JobConfig {
        iters,
        checkpoint_every,
        ..Default::default()
    };
    c.model.backbone = "noop".parse().unwrap();
    c
}

fn ctx(dir: &std::path::Path, attempt: u32) -> TrainContext {
    TrainContext {
        pause_at: None,
        device: DeviceChoice::Cpu,
        artifact_dir: dir.to_path_buf(),
        attempt,
        init_checkpoint: None,
    }
}

fn metrics(o: &Outcome) -> &[sweep_train::MetricValue] {
    match o {
        Outcome::Completed { metrics, .. } => metrics,
        other => panic!("not completed: {other:?}"),
    }
}

#[test]
fn noop_emits_events_checkpoints_and_synthetic_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = noop(5, 2);
    let mut ev: Vec<Event> = Vec::new();
    let out = run(&cfg, &ctx(dir.path(), 1), &mut ev).unwrap();
    assert_eq!(
        ev[0],
        Event::Started {
            iters: 5,
            resumed_from: 0
        }
    );
    let iters: Vec<usize> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Iter { iter, lr, .. } => {
                assert!(*lr > 0.0);
                Some(*iter)
            }
            _ => None,
        })
        .collect();
    assert_eq!(iters, vec![1, 2, 3, 4, 5]);
    let ckpts: Vec<usize> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Checkpoint { iter, path } => {
                assert!(path.starts_with(dir.path()));
                Some(*iter)
            }
            _ => None,
        })
        .collect();
    assert_eq!(ckpts, vec![2, 4, 5]);
    assert!(dir.path().join("final.ckpt").exists());
    assert!(!dir.path().join("checkpoint.ckpt").exists());

    // Synthetic metrics: a function of the config hash only.
    let m = metrics(&out);
    let mdice = m.iter().find(|v| v.name == "mDice").unwrap();
    assert_eq!(mdice.split, "val");
    assert!((50.0..90.0).contains(&mdice.value));
    let dir2 = tempfile::tempdir().unwrap();
    let again = run(&cfg, &ctx(dir2.path(), 1), &mut Vec::new()).unwrap();
    assert_eq!(metrics(&again), m);
    let other = run(
        &noop(6, 2),
        &ctx(dir2.path().join("x").as_path(), 1),
        &mut Vec::new(),
    )
    .unwrap();
    assert_ne!(metrics(&other), m);
}

#[test]
fn noop_resumes_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = noop(6, 2);
    // Interrupt after the checkpoint of iteration 4: the observer panics, as a killed process stops.
    struct StopAt(usize);
    impl sweep_train::Observer for StopAt {
        fn event(&mut self, e: Event) {
            if let Event::Checkpoint { iter, .. } = e {
                if iter == self.0 {
                    panic!("interrupted");
                }
            }
        }
    }
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run(&cfg, &ctx(dir.path(), 1), &mut StopAt(4))
    }));
    assert!(r.is_err());
    assert!(dir.path().join("checkpoint.ckpt").exists());
    let mut ev = Vec::new();
    let out = run(&cfg, &ctx(dir.path(), 2), &mut ev).unwrap();
    assert_eq!(
        ev[0],
        Event::Started {
            iters: 6,
            resumed_from: 4
        }
    );
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, Event::Iter { .. }))
            .count(),
        2
    );
    let fresh = tempfile::tempdir().unwrap();
    let uninterrupted = run(&cfg, &ctx(fresh.path(), 1), &mut Vec::new()).unwrap();
    assert_eq!(metrics(&out), metrics(&uninterrupted));

    // A damaged checkpoint is reported and skipped (the job starts over).
    let d2 = tempfile::tempdir().unwrap();
    std::fs::write(d2.path().join("checkpoint.ckpt"), b"{\"iteration\": ").unwrap();
    let mut ev = Vec::new();
    run(&cfg, &ctx(d2.path(), 1), &mut ev).unwrap();
    assert!(matches!(&ev[0], Event::Log { message } if message.contains("checkpoint.ckpt")));
    assert_eq!(
        ev[1],
        Event::Started {
            iters: 6,
            resumed_from: 0
        }
    );

    // A checkpoint of another config is refused, naming the file.
    let mut other = cfg.clone();
    other.seed = 9;
    std::fs::copy(
        dir.path().join("final.ckpt"),
        dir.path().join("checkpoint.ckpt"),
    )
    .unwrap();
    let err = run(&other, &ctx(dir.path(), 3), &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("checkpoint.ckpt"), "{err}");
}

#[test]
fn nan_fault_diverges_only_on_listed_attempts() {
    let mut cfg = noop(5, 0);
    cfg.fault = Some(FaultConfig {
        at_iter: 3,
        kind: "nan".parse().unwrap(),
        attempts: vec![1],
    });
    let dir = tempfile::tempdir().unwrap();
    let out = run(&cfg, &ctx(dir.path(), 1), &mut Vec::new()).unwrap();
    assert_eq!(
        out,
        Outcome::Diverged {
            iter: 3,
            last_finite_loss: Some(1.0 / 3.0)
        }
    );
    let out = run(&cfg, &ctx(dir.path(), 2), &mut Vec::new()).unwrap();
    assert!(matches!(out, Outcome::Completed { iterations: 5, .. }));
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
    // The fault kinds are a closed set now (`FaultKind`): an unknown one cannot reach `run`;
    // it is refused where the config is read, naming the known kinds.
    let e = "segfault".parse::<FaultKind>().unwrap_err();
    assert!(
        e.contains("\"segfault\"") && e.contains("abort, exit, oom, nan, torch"),
        "{e}"
    );
    let e = serde_json::from_str::<FaultConfig>(r#"{"at_iter": 1, "kind": "segfault"}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("segfault"), "{e}");
    c.freeze = vec!["backbone".into(), "neck".into()];
    assert_eq!(config_error(&c).field, "freeze[1]");
    c.freeze = vec!["auxiliary_head".into()];
    c.model.aux_head = false;
    assert_eq!(config_error(&c).field, "freeze[0]");
}

/// `abort`, `exit` and `oom` faults end the process: run in a child (this test binary again,
/// this test only), whose job dies at iteration 2.
#[test]
fn process_faults_end_the_process() {
    const CHILD: &str = "SWEEP_TEST_FAULT_CHILD";
    if let Ok(kind) = std::env::var(CHILD) {
        let mut cfg = noop(3, 0);
        cfg.fault = Some(FaultConfig {
            at_iter: 2,
            kind: kind.parse().unwrap(),
            attempts: vec![],
        });
        let dir = tempfile::tempdir().unwrap();
        let mut ev: Vec<Event> = Vec::new();
        let out = run(&cfg, &ctx(dir.path(), 1), &mut ev);
        panic!("the fault did not fire: {out:?}");
    }
    for kind in ["exit", "abort", "oom"] {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "trainer_noop::process_faults_end_the_process",
                "--exact",
                "--nocapture",
            ])
            .env(CHILD, kind)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        match kind {
            "exit" => assert_eq!(out.status.code(), Some(3), "{stderr}"),
            "abort" => assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{stderr}"),
            _ => {
                assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{stderr}");
                assert!(stderr.contains("memory allocation of"), "{stderr}");
            }
        }
    }
}

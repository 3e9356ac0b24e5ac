//! `sweep-toy-worker`: the protocol speaker with analytic curves that the adaptive-search and
//! scheduler tests run instead of the trainer. These tests pin what those tests rely on:
//! complete results, pauses and resumes that change nothing, a sensible ranking, and the
//! failures the environment can ask for.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use sweep_core::job::JobConfig;
use sweep_core::protocol::{
    Claim, DeviceChoice, Event, ImageMetric, JobResult, MetricValue, Outcome, Ticket,
    CHECKPOINT_FILE, EXIT_REJECTED,
};

const TOY: &str = env!("CARGO_BIN_EXE_sweep-toy-worker");
const TOY_VARS: [&str; 3] = [
    "SWEEP_TOY_ITER_MS",
    "SWEEP_TOY_FAIL_LR_ABOVE",
    "SWEEP_TOY_CRASH_AT",
];

/// A 30-iteration job evaluated every 10, no rolling checkpoints, with `overrides` (JSON)
/// merged over it.
fn config(overrides: serde_json::Value) -> JobConfig {
    let mut base = serde_json::json!({
        "iters": 30,
        "checkpoint_every": 0,
        "eval": {"every": 10},
        "optimizer": {"type": "sgd", "lr": 0.01},
    });
    merge(&mut base, overrides);
    serde_json::from_value(base).unwrap()
}

fn merge(base: &mut serde_json::Value, over: serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, o) => *b = o,
    }
}

/// Writes the ticket of `cfg`'s attempt `attempt` into `dir`; returns its path.
fn ticket(dir: &Path, cfg: &JobConfig, attempt: u32, pause_at: Option<usize>) -> PathBuf {
    Ticket {
        claim: Claim {
            store: "toy-test".into(),
            job_id: 1,
            attempt,
        },
        hash: cfg.hash(),
        label: "toy".into(),
        config: cfg.clone().into(),
        device: DeviceChoice::Cpu,
        init_checkpoint: None,
        pause_at,
        continue_from: None,
        keep_state: false,
    }
    .write(dir)
    .unwrap()
}

/// The toy on `ticket` with only the given toy variables set; stdout piped.
fn command(ticket: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(TOY);
    cmd.arg("worker")
        .arg(ticket)
        .current_dir(ticket.parent().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for v in TOY_VARS {
        cmd.env_remove(v);
    }
    cmd.envs(env.iter().copied());
    cmd
}

/// One finished attempt: how it exited, what it printed, what it left.
struct Run {
    status: ExitStatus,
    events: Vec<Event>,
    stderr: String,
    result: Option<JobResult>,
}

impl Run {
    fn outcome(&self) -> &Outcome {
        &self.result.as_ref().expect("a result file").outcome
    }

    fn resumed_from(&self) -> usize {
        match self.events.first() {
            Some(Event::Started { resumed_from, .. }) => *resumed_from,
            other => panic!("first event {other:?}"),
        }
    }

    fn eval_at(&self, iter: usize) -> &[MetricValue] {
        self.events
            .iter()
            .find_map(|e| match e {
                Event::Eval { iter: i, metrics } if *i == iter => Some(metrics.as_slice()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no evaluation at {iter}"))
    }
}

fn parse_events(stdout: &[u8]) -> Vec<Event> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn finished(child: Child, dir: &Path) -> Run {
    let out = child.wait_with_output().unwrap();
    Run {
        status: out.status,
        events: parse_events(&out.stdout),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        result: JobResult::read(dir),
    }
}

/// Runs attempt `attempt` of `cfg` in `dir` to its end.
fn run(
    dir: &Path,
    cfg: &JobConfig,
    attempt: u32,
    pause_at: Option<usize>,
    env: &[(&str, &str)],
) -> Run {
    let path = ticket(dir, cfg, attempt, pause_at);
    let child = command(&path, env).spawn().unwrap();
    finished(child, dir)
}

/// An uninterrupted run of `cfg` in a folder of its own.
fn straight(cfg: &JobConfig) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), cfg, 1, None, &[]);
    assert!(r.status.success(), "{}", r.stderr);
    r
}

/// Starts `cfg` in `dir` and reads its events until `until` holds for one; the child runs on.
fn spawn_until(
    dir: &Path,
    cfg: &JobConfig,
    env: &[(&str, &str)],
    until: impl Fn(&Event) -> bool,
) -> Child {
    let path = ticket(dir, cfg, 1, None);
    let mut child = command(&path, env).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let event: Event = serde_json::from_str(&line.unwrap()).unwrap();
        if until(&event) {
            break;
        }
    }
    // The rest of stdout goes to a thread so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    child
}

fn value(metrics: &[MetricValue], name: &str, class: Option<usize>) -> f64 {
    metrics
        .iter()
        .find(|m| m.split == "val" && m.name == name && m.class == class)
        .unwrap_or_else(|| panic!("no {name} {class:?} in {metrics:?}"))
        .value
}

fn completed(r: &Run) -> (&[MetricValue], &[ImageMetric]) {
    match r.outcome() {
        Outcome::Completed {
            metrics, images, ..
        } => (metrics, images),
        other => panic!("{other:?}\n{}", r.stderr),
    }
}

fn mdice(r: &Run) -> f64 {
    value(completed(r).0, "mDice", None)
}

fn checkpoint_iter(dir: &Path) -> usize {
    let text = std::fs::read_to_string(dir.join(CHECKPOINT_FILE)).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["iter"].as_u64().unwrap() as usize
}

#[test]
fn a_full_run_completes_with_metrics_and_image_rows() {
    let r = straight(&config(serde_json::json!({})));
    assert!(matches!(
        r.events[0],
        Event::Started {
            iters: 30,
            resumed_from: 0
        }
    ));
    let losses: Vec<f64> = r
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Iter { loss, lr, .. } => {
                assert_eq!(*lr, 0.01);
                Some(*loss)
            }
            _ => None,
        })
        .collect();
    assert_eq!(losses.len(), 30);
    assert!(losses.windows(2).all(|w| w[1] < w[0]), "{losses:?}");
    for at in [10, 20, 30] {
        assert!(r.eval_at(at).iter().all(|m| m.class.is_none()));
    }
    let (metrics, images) = completed(&r);
    let md = value(metrics, "mDice", None);
    assert!((50.0..90.0).contains(&md), "mDice {md}");
    let dice = |c| value(metrics, "Dice", Some(c));
    assert!(
        dice(0) > 95.0 && dice(1) < dice(0),
        "{} {}",
        dice(0),
        dice(1)
    );
    assert!((md - (dice(0) + dice(1)) / 2.0).abs() < 1e-9);
    // IoU = D / (2 - D), in fractions.
    for c in [0, 1] {
        let d = dice(c) / 100.0;
        assert!((value(metrics, "IoU", Some(c)) / 100.0 - d / (2.0 - d)).abs() < 1e-9);
    }
    for name in ["aAcc", "mIoU", "mAcc", "mFscore"] {
        value(metrics, name, None);
    }
    value(metrics, "imgDice", Some(1));
    assert_eq!(images.len(), 48);
    for (k, row) in images.iter().enumerate() {
        assert_eq!(row.image, format!("img{:02}", k / 2));
        assert_eq!(
            (row.class, row.split.as_str(), row.unit.as_str()),
            (k % 2, "val", "px")
        );
        // Within an ulp or so: serde_json's default float parsing does not round-trip exactly.
        let d = 200.0 * row.intersect as f64 / (row.pred + row.label) as f64;
        assert!((row.dice.unwrap() - d).abs() < 1e-9, "{row:?}");
        assert!(row.hd95.is_none() && row.assd.is_none() && row.presence.is_none());
    }
}

#[test]
fn pausing_and_continuing_matches_an_uninterrupted_run() {
    let cfg = config(serde_json::json!({}));
    let whole = straight(&cfg);
    let dir = tempfile::tempdir().unwrap();
    let first = run(dir.path(), &cfg, 1, Some(10), &[]);
    assert!(first.status.success(), "{}", first.stderr);
    let Outcome::Paused {
        iter,
        metrics,
        images,
    } = first.outcome()
    else {
        panic!("{:?}", first.outcome());
    };
    assert_eq!(*iter, 10);
    assert_eq!(images.len(), 48);
    let summary: Vec<MetricValue> = metrics
        .iter()
        .filter(|m| m.class.is_none())
        .cloned()
        .collect();
    assert_eq!(summary, whole.eval_at(10));
    let ck: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(CHECKPOINT_FILE)).unwrap())
            .unwrap();
    assert_eq!(ck["iter"], 10);
    assert_eq!(ck["config_hash"], cfg.hash().as_str());
    // Promoted twice: to the next rung, then to the end.
    let second = run(dir.path(), &cfg, 2, Some(20), &[]);
    assert_eq!(second.resumed_from(), 10);
    assert!(matches!(second.outcome(), Outcome::Paused { iter: 20, .. }));
    let last = run(dir.path(), &cfg, 3, None, &[]);
    assert_eq!(last.resumed_from(), 20);
    assert_eq!(last.outcome(), whole.outcome());
    assert!(!dir.path().join(CHECKPOINT_FILE).exists());
}

#[test]
fn nearer_the_optimum_ranks_better_and_seeds_differ_only_in_noise() {
    let lr = |lr: f64| straight(&config(serde_json::json!({"optimizer": {"lr": lr}})));
    let (far, near) = (lr(0.001), lr(0.004));
    assert!(
        mdice(&near) > mdice(&far) + 2.0,
        "{} {}",
        mdice(&near),
        mdice(&far)
    );
    let fcn = straight(&config(serde_json::json!({})));
    let psp = straight(&config(serde_json::json!({"model": {"head": "pspnet"}})));
    assert!(mdice(&psp) > mdice(&fcn));

    let other_seed = straight(&config(serde_json::json!({"seed": 7})));
    assert_ne!(completed(&other_seed).1, completed(&fcn).1);
    assert!((mdice(&other_seed) - mdice(&fcn)).abs() < 1.5);
    // Same images, same curve: per image, only the noise (+-3 each) differs.
    for (a, b) in completed(&other_seed).1.iter().zip(completed(&fcn).1) {
        assert_eq!((&a.image, a.class, a.label), (&b.image, b.class, b.label));
        assert!(
            (a.dice.unwrap() - b.dice.unwrap()).abs() <= 6.1,
            "{a:?} {b:?}"
        );
    }
}

#[test]
fn a_killed_run_resumes_from_its_rolling_checkpoint() {
    let cfg = config(serde_json::json!({"iters": 60, "checkpoint_every": 10}));
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_until(
        dir.path(),
        &cfg,
        &[("SWEEP_TOY_ITER_MS", "20")],
        |e| matches!(e, Event::Checkpoint { iter, .. } if *iter >= 20),
    );
    child.kill().unwrap();
    let killed = finished(child, dir.path());
    assert_eq!(killed.status.signal(), Some(libc::SIGKILL));
    assert!(killed.result.is_none());
    let at = checkpoint_iter(dir.path());
    assert!((20..60).contains(&at), "{at}");
    let resumed = run(dir.path(), &cfg, 2, None, &[]);
    assert_eq!(resumed.resumed_from(), at);
    assert_eq!(resumed.outcome(), straight(&cfg).outcome());
}

#[test]
fn sigterm_checkpoints_and_interrupts() {
    let cfg = config(serde_json::json!({"iters": 200}));
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_until(dir.path(), &cfg, &[("SWEEP_TOY_ITER_MS", "20")], |e| {
        matches!(e, Event::Iter { iter: 3, .. })
    });
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let stopped = finished(child, dir.path());
    assert!(stopped.status.success(), "{}", stopped.stderr);
    let Outcome::Interrupted { iter } = *stopped.outcome() else {
        panic!("{:?}", stopped.outcome());
    };
    assert!((3..200).contains(&iter), "{iter}");
    assert_eq!(checkpoint_iter(dir.path()), iter);
    let resumed = run(dir.path(), &cfg, 2, None, &[]);
    assert_eq!(resumed.resumed_from(), iter);
    assert_eq!(resumed.outcome(), straight(&cfg).outcome());
}

#[test]
fn fail_lr_above_rejects_high_lrs_only() {
    let env = [("SWEEP_TOY_FAIL_LR_ABOVE", "0.05")];
    let dir = tempfile::tempdir().unwrap();
    let high = config(serde_json::json!({"optimizer": {"lr": 0.1}}));
    let r = run(dir.path(), &high, 1, None, &env);
    assert_eq!(r.status.code(), Some(EXIT_REJECTED));
    assert!(
        r.stderr.contains("error: lr too high for the toy"),
        "{}",
        r.stderr
    );
    assert!(
        matches!(r.outcome(), Outcome::Rejected { reason } if reason == "lr too high for the toy")
    );
    assert!(r.events.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let ok = run(dir.path(), &config(serde_json::json!({})), 1, None, &env);
    assert!(ok.status.success(), "{}", ok.stderr);
    completed(&ok);
}

#[test]
fn crash_at_aborts_the_first_attempt_only() {
    let cfg = config(serde_json::json!({"checkpoint_every": 10}));
    let env = [("SWEEP_TOY_CRASH_AT", "15")];
    let dir = tempfile::tempdir().unwrap();
    let crashed = run(dir.path(), &cfg, 1, None, &env);
    assert_eq!(
        crashed.status.signal(),
        Some(libc::SIGABRT),
        "{}",
        crashed.stderr
    );
    assert!(crashed.result.is_none());
    assert!(matches!(
        crashed.events.last(),
        Some(Event::Iter { iter: 14, .. })
    ));
    let retry = run(dir.path(), &cfg, 2, None, &env);
    assert!(retry.status.success(), "{}", retry.stderr);
    assert_eq!(retry.resumed_from(), 10);
    assert_eq!(retry.outcome(), straight(&cfg).outcome());
}

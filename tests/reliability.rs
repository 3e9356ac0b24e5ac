//! Fault-injection suite: the orchestrator killed at random moments, crashing and
//! diverging jobs, two orchestrators on one database, Ctrl-C. Every test runs the real
//! `sweep` binary against a temporary database; jobs run on the toy worker (no training, a
//! sleep per iteration, failures on request through `SWEEP_TOY_FAULTS`) or are tiny real
//! UNets where the numbers matter.
//!
//! The kill schedule is seeded (`SWEEP_FAULT_SEED`, default 7) so a failure can be replayed.

use crate::util::{by_label, metric, rt, stderr_of, Rng, Sandbox, TINY_UNET};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use sweep_core::job::JobStatus;

#[test]
fn rerun_schedules_nothing_twice() {
    let sb = Sandbox::toy(&[("SWEEP_TOY_ITER_MS", "1")]);
    let file = sb.write_sweep("name: idem\nbase:\n  iters: 5\nseeds: [0, 1, 2, 3, 4, 5]\n");
    let first = sb.run(&file, &["--workers", "3"]);
    assert!(first.status.success(), "{}", stderr_of(&first));
    let rows = sb.rows();
    assert_eq!(rows.len(), 6);
    assert!(rows
        .iter()
        .all(|r| r.status == JobStatus::Succeeded && r.attempts == 1));
    let second = sb.run(&file, &["--workers", "3"]);
    assert!(second.status.success(), "{}", stderr_of(&second));
    assert!(
        stderr_of(&second).contains("0 attempt(s)"),
        "second run trained something: {}",
        stderr_of(&second)
    );
    assert_eq!(sb.rows(), rows, "a re-run must not touch finished jobs");

    // Adding a grid value adds only the new jobs.
    let file = sb.write_sweep("name: idem\nbase:\n  iters: 5\nseeds: [0, 1, 2, 3, 4, 5, 6]\n");
    let third = sb.run(&file, &["--workers", "3"]);
    assert!(
        stderr_of(&third).contains("1 attempt(s)"),
        "{}",
        stderr_of(&third)
    );
    assert_eq!(sb.rows().len(), 7);
}

/// Toy jobs of 25 and 30 iterations at 40 ms each: kills land mid-job, between
/// checkpoints, during claims and result writes.
#[test]
fn kill_9_at_random_moments_loses_and_repeats_nothing() {
    let yaml =
        "name: chaos\nbase: {checkpoint_every: 5}\ngrid:\n  iters: [25, 30]\nseeds: [0, 1]\n";
    killed_runs_match_a_calm_one(yaml, Some(&[("SWEEP_TOY_ITER_MS", "40")]));
}

/// The same on tiny real UNets: a job resumed after its orchestrator was killed ends with
/// the numbers of one never interrupted.
#[test]
fn kill_9_at_random_moments_changes_no_real_jobs_numbers() {
    let yaml = format!(
        "name: chaos\ndata: {{scale: [64, 64], limit_train: 4, limit_val: 2}}\nbase:\n  {TINY_UNET}\n  iters: 12\n  checkpoint_every: 3\n\
         seeds: [0, 1]\n"
    );
    killed_runs_match_a_calm_one(&yaml, None);
}

/// Runs sweep `yaml` uninterrupted, then again with its orchestrator killed 5 times at
/// seeded random moments, and compares: no job lost or added, every number the same, each
/// recorded once, no process left. `toy`: the toy worker's environment, else real jobs.
fn killed_runs_match_a_calm_one(yaml: &str, toy: Option<&[(&str, &str)]>) {
    let seed: u64 = std::env::var("SWEEP_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let sandbox = || toy.map_or_else(Sandbox::new, Sandbox::toy);
    // The reference: the same sweep, never interrupted.
    let calm = sandbox();
    let file = calm.write_sweep(yaml);
    let out = calm.run(&file, &["--workers", "2"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let reference = calm.rows();
    assert!(reference.iter().all(|r| r.status == JobStatus::Succeeded));

    let sb = sandbox();
    let file = sb.write_sweep(yaml);
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let kills = 5;
    for k in 0..kills {
        let mut child = sb.spawn(&file, &["--workers", "2"]);
        let wait_ms = 300 + rng.below(1500);
        std::thread::sleep(Duration::from_millis(wait_ms));
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().unwrap();
        let orphans = sb.wait_no_orphans();
        assert!(
            orphans.is_empty(),
            "kill {k} (seed {seed}, after {wait_ms} ms) left worker processes {orphans:?}"
        );
    }
    let out = sb.run(&file, &["--workers", "2"]);
    assert!(out.status.success(), "seed {seed}: {}", stderr_of(&out));
    let rows = sb.rows();
    assert_eq!(
        rows.len(),
        reference.len(),
        "seed {seed}: jobs lost or added"
    );
    same_numbers_once(&by_label(&reference), &by_label(&rows), seed);
    assert_eq!(sb.integrity(), "ok");
    assert!(sb.wait_no_orphans().is_empty());
}

/// Every job of `got` succeeded with `expected`'s numbers, each recorded once.
fn same_numbers_once(
    expected: &std::collections::BTreeMap<String, &sweep_core::store::JobRow>,
    got: &std::collections::BTreeMap<String, &sweep_core::store::JobRow>,
    seed: u64,
) {
    for (label, r) in got {
        assert_eq!(r.status, JobStatus::Succeeded, "seed {seed}: {label}");
        let e = expected[label];
        for name in ["mDice", "mIoU", "mAcc", "aAcc"] {
            assert_eq!(
                metric(r, name).to_bits(),
                metric(e, name).to_bits(),
                "seed {seed}: {label} {name} differs from the uninterrupted run"
            );
        }
        // Exactly one result: each number recorded once.
        let mut keys: Vec<_> = r
            .metrics
            .iter()
            .map(|m| (m.split.clone(), m.name.clone(), m.class))
            .collect();
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n, "{label}: a metric recorded twice");
    }
}

#[test]
fn crashing_jobs_are_retried_then_failed_and_the_rest_finish() {
    let sb = Sandbox::toy(&[
        ("SWEEP_TOY_ITER_MS", "5"),
        (
            "SWEEP_TOY_FAULTS",
            "seed=1:abort@4; seed=2:exit@6/1; seed=3:oom@3",
        ),
    ]);
    let file = sb.write_sweep(
        "name: crashy\nmax_attempts: 2\nbase:\n  iters: 10\n  checkpoint_every: 2\nseeds: [1, 2, 3, 4]\n",
    );
    let out = sb.run(&file, &["--workers", "2"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "failed jobs make the exit code 2: {}",
        stderr_of(&out)
    );
    // A failed attempt that is tried again counts as retried, not failed: seeds 1 and 3 fail
    // twice (1 retried + 1 failed each), seed 2 fails once and then succeeds (1 retried).
    assert!(
        stderr_of(&out)
            .contains("this run: 2 succeeded, 0 diverged, 2 failed, 3 retried, 7 attempt(s)"),
        "{}",
        stderr_of(&out)
    );
    let rows = sb.rows();
    let find = |seed: u64| rows.iter().find(|r| r.seed == seed).unwrap();
    let abort = find(1);
    assert_eq!((abort.status.as_str(), abort.attempts), ("failed", 2));
    assert!(
        abort.error.as_deref().unwrap_or("").contains("SIGABRT"),
        "{:?}",
        abort.error
    );
    let flaky = find(2);
    assert_eq!(
        (flaky.status.as_str(), flaky.attempts),
        ("succeeded", 2),
        "a job failing once is retried"
    );
    let oom = find(3);
    assert_eq!(oom.status, JobStatus::Failed);
    assert!(
        oom.error.as_deref().unwrap_or("").contains("SIGABRT"),
        "{:?}",
        oom.error
    );
    assert_eq!(find(4).status, JobStatus::Succeeded);
    assert!(sb.wait_no_orphans().is_empty());
}

/// tch reports a failed libtorch call (a CUDA out-of-memory, a kernel missing for bf16) by
/// panicking; the job fails with libtorch's own first line as its reason, not "exit code 101".
#[test]
fn a_failed_libtorch_call_is_the_failure_reason_in_one_line() {
    let sb = Sandbox::toy(&[("SWEEP_TOY_FAULTS", "torch@2")]);
    let file = sb.write_sweep("name: torchfail\nmax_attempts: 1\nbase:\n  iters: 4\n");
    let out = sb.run(&file, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    let rows = sb.rows();
    let error = rows[0].error.as_deref().unwrap_or("");
    assert_eq!(rows[0].status, JobStatus::Failed);
    assert!(
        error.contains("libtorch: mat1 and mat2 shapes cannot be multiplied"),
        "{error}"
    );
    assert!(
        !error.contains("Exception raised from"),
        "one line: {error}"
    );
}

#[test]
fn nan_loss_is_recorded_as_diverged_and_not_retried() {
    let sb = Sandbox::toy(&[("SWEEP_TOY_FAULTS", "nan@5")]);
    let file = sb.write_sweep("name: nan\nmax_attempts: 3\nbase:\n  iters: 10\n");
    let out = sb.run(&file, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let rows = sb.rows();
    assert_eq!((rows[0].status.as_str(), rows[0].attempts), ("diverged", 1));
    assert!(
        rows[0].error.as_deref().unwrap_or("").contains('5'),
        "the diverged iteration is recorded: {:?}",
        rows[0].error
    );
}

#[test]
fn two_orchestrators_on_one_database_never_run_a_job_twice() {
    let sb = Sandbox::toy(&[("SWEEP_TOY_ITER_MS", "10")]);
    let seeds: Vec<String> = (0..16).map(|s| s.to_string()).collect();
    let file = sb.write_sweep(&format!(
        "name: twins\nbase:\n  iters: 8\nseeds: [{}]\n",
        seeds.join(", ")
    ));
    let mut a = sb.spawn(&file, &["--workers", "2"]);
    let mut b = sb.spawn(&file, &["--workers", "2"]);
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    let rows = sb.rows();
    assert_eq!(rows.len(), 16);
    for r in &rows {
        assert_eq!(
            (r.status.as_str(), r.attempts),
            ("succeeded", 1),
            "job {} ran {} times",
            r.label,
            r.attempts
        );
    }
    assert_eq!(sb.integrity(), "ok");
}

#[test]
fn ctrl_c_checkpoints_marks_interrupted_and_resumes() {
    let sb = Sandbox::toy(&[("SWEEP_TOY_ITER_MS", "20")]);
    let file = sb.write_sweep("name: ctrlc\nbase:\n  iters: 150\n  checkpoint_every: 1000\n");
    let child = sb.spawn(&file, &[]);
    // Wait until the job is training (its heartbeat reports iterations), then Ctrl-C.
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        if sb.db().exists() && sb.rows().first().is_some_and(|r| r.iteration > 0) {
            break;
        }
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let rows = sb.rows();
    assert_eq!(rows[0].status, JobStatus::Interrupted);
    let stopped_at = rows[0].iteration;
    assert!(
        stopped_at > 0 && stopped_at < 150,
        "stopped at {stopped_at}"
    );
    let dir = PathBuf::from(rows[0].artifact_dir.clone().unwrap());
    assert!(
        dir.join("checkpoint.ckpt").exists(),
        "Ctrl-C wrote a checkpoint to resume from"
    );
    let out = sb.run(&file, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let rows = sb.rows();
    assert_eq!(rows[0].status, JobStatus::Succeeded);
    assert_eq!(rows[0].attempts, 2);
    assert!(sb.wait_no_orphans().is_empty());
}

#[test]
fn bad_databases_are_refused_with_their_path() {
    let sb = Sandbox::toy(&[]);
    let file = sb.write_sweep("name: x\nbase:\n  iters: 1\n");
    let out = sb
        .command(&[
            "run",
            file.to_str().unwrap(),
            "--db",
            "/proc/no-such-dir/sweep.db",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("/proc/no-such-dir/sweep.db"),
        "{}",
        stderr_of(&out)
    );

    // A database written by a newer sweep (a migration this binary does not know).
    let out = sb.run(&file, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let db = sb.db();
    rt().block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display())).await.unwrap();
        sqlx::query("INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) VALUES (99990101000000, 'future', CURRENT_TIMESTAMP, 1, x'00', 0)")
            .execute(&mut c)
            .await
            .unwrap();
    });
    let out = sb.run(&file, &[]);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains(db.to_str().unwrap()) && err.contains("newer"),
        "{err}"
    );
}

#[test]
fn bad_data_is_refused_before_anything_is_written() {
    let sb = Sandbox::new();
    let file = sb.write_sweep(&format!(
        "name: nodata\ndata: {{root: {}}}\nbase:\n  model: {{base_channels: 4}}\n  crop: 32\n  iters: 2\n",
        sb.path().join("missing").display()
    ));
    let out = sb.run(&file, &[]);
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains("missing"), "{}", stderr_of(&out));
    assert!(
        !sb.db().exists() || sb.rows().is_empty(),
        "no job was registered for a sweep that cannot run"
    );
}

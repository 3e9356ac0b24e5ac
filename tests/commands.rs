//! Command jobs end to end: the user's own program swept with the same queue, resume,
//! statistics and report as the built-in trainer. A small PyTorch script (killed with
//! SIGKILL and resumed from its own checkpoint to the numbers of a calm run), programs that
//! fail every way a real one does, and two agents on PostgreSQL.

use crate::agents::running_on;
use crate::util::{
    agent_log, fresh_postgres, python, spawn_agent_with, stderr_of, wait_child, wait_for, OpenDb,
    Sandbox,
};
use std::path::{Path, PathBuf};
use std::time::Duration;
use sweep_core::job::JobStatus;
use sweep_core::store::JobRow;

const PROGRAMS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/programs");

/// Copies the test program `name` into the sandbox (so its processes are the sandbox's) and
/// writes a sweep file running it with `rest` (grid, seeds, ...).
fn program_sweep(sb: &Sandbox, name: &str, sweep: &str, rest: &str) -> PathBuf {
    std::fs::copy(Path::new(PROGRAMS).join(name), sb.path().join(name)).unwrap();
    sb.write_sweep(&format!(
        "name: {sweep}\ncommand: [{py}, {name}, \"${{args}}\"]\nidentity_files: [{name}]\n{rest}",
        py = python().display()
    ))
}

/// The PyTorch sweep: two parameters x 2 seeds, 40 iterations each.
fn tiny_torch(sb: &Sandbox) -> PathBuf {
    program_sweep(
        sb,
        "train_tiny.py",
        "tiny",
        "base: {iters: 40}\ngrid: {lr: [0.2, 0.5], width: [4, 8]}\nseeds: [0, 1]\n",
    )
}

fn value(row: &JobRow, name: &str, class: Option<usize>) -> f64 {
    row.metrics
        .iter()
        .find(|m| m.name == name && m.class == class && m.split == "val")
        .map_or(f64::NAN, |m| m.value)
}

/// `sweep replay`: the search's decisions, derived again from its rows, match its log.
fn replay_agrees(sb: &Sandbox, sweep: &str) {
    let db = sb.db();
    let replay = sb
        .command(&["replay", sweep, "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(replay.status.success(), "{}", stderr_of(&replay));
}

/// Job folders of the sandbox's sweep whose program wrote a checkpoint.
fn checkpointed(sb: &Sandbox, sweep: &str) -> usize {
    let Ok(dirs) = std::fs::read_dir(sb.path().join("runs").join(sweep)) else {
        return 0;
    };
    dirs.flatten()
        .filter(|d| d.path().join("checkpoints/last.pt").exists())
        .count()
}

#[test]
fn a_pytorch_script_killed_with_sigkill_resumes_from_its_checkpoint_to_a_calm_runs_numbers() {
    let calm = Sandbox::new();
    let file = tiny_torch(&calm);
    let out = calm.run(&file, &["--workers", "2"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let reference = calm.rows();
    assert_eq!(reference.len(), 8);
    assert!(
        reference.iter().all(|r| r.status == JobStatus::Succeeded),
        "{reference:?}"
    );

    let sb = Sandbox::new();
    let file = tiny_torch(&sb);
    let (f, db) = (file.to_str().unwrap(), sb.db());
    let mut child = sb
        .command(&[
            "run",
            f,
            "--db",
            db.to_str().unwrap(),
            "--no-report",
            "--workers",
            "2",
        ])
        .env("TINY_PACE_S", "0.1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(120, "a program to checkpoint", || {
        checkpointed(&sb, "tiny") > 0
    });
    std::thread::sleep(Duration::from_millis(300));
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    assert!(
        sb.wait_no_orphans().is_empty(),
        "a program outlived its orchestrator"
    );
    let killed_mid_run = sb
        .rows()
        .iter()
        .filter(|r| r.status == JobStatus::Running)
        .count();
    assert!(
        killed_mid_run > 0,
        "no job was running when the orchestrator was killed"
    );

    let out = sb.run(&file, &["--workers", "2"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let rows = sb.rows();
    assert_eq!(rows.len(), 8);
    for r in &rows {
        assert_eq!(r.status, JobStatus::Succeeded, "{}", r.label);
        let e = reference
            .iter()
            .find(|e| e.label == r.label && e.seed == r.seed)
            .unwrap();
        for (name, class) in [("mDice", None), ("mIoU", None), ("Dice", Some(1))] {
            assert_eq!(
                value(r, name, class).to_bits(),
                value(e, name, class).to_bits(),
                "{} seed {}: {name} differs from the calm run",
                r.label,
                r.seed
            );
        }
    }
    // The killed programs started again from their own checkpoints, not from scratch.
    let resumed = std::fs::read_dir(sb.path().join("runs/tiny"))
        .unwrap()
        .flatten()
        .filter(|d| {
            let log = std::fs::read_to_string(d.path().join("stdout.log")).unwrap_or_default();
            log.lines()
                .any(|l| l.starts_with("resumed from iteration") && !l.ends_with(" 0"))
        })
        .count();
    assert!(resumed >= 1, "no program resumed from its checkpoint");
    assert_eq!(sb.integrity(), "ok");

    // The leaderboard: the columns the script reported, and its per-image rows' bootstrap.
    let report = sb
        .command(&["report", "--db", db.to_str().unwrap(), "--sort", "mDice"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(report.status.success(), "{}", stderr_of(&report));
    assert!(text.contains("train_tiny.py, lr=0.5, width=8"), "{text}");
    // One row per configuration: its two seeds are one row's runs.
    let table_rows = text
        .lines()
        .filter(|l| l.starts_with("│ train_tiny.py, lr="));
    assert_eq!(table_rows.count(), 4, "{text}");
    assert!(
        text.contains("mIoU") && !text.contains("mAccuracy"),
        "{text}"
    );
    let best_rows = text
        .lines()
        .filter(|l| l.starts_with("│ train_tiny.py") && l.split('┆').any(|c| c.trim() == "best"));
    assert_eq!(best_rows.count(), 1, "{text}");
}

#[test]
fn programs_that_crash_reject_garble_or_never_report_are_recorded_and_the_sweep_goes_on() {
    let sb = Sandbox::new();
    let file = program_sweep(
        &sb,
        "misbehave.py",
        "bad",
        "grid: {mode: [ok, crash, reject, malformed, silent]}\nmax_attempts: 2\n",
    );
    let out = sb.run(&file, &["--workers", "2"]);
    assert!(!out.status.success(), "failed jobs make the run fail");
    let rows = sb.rows();
    let row = |mode: &str| {
        rows.iter()
            .find(|r| r.label == format!("misbehave.py, mode={mode}"))
            .unwrap_or_else(|| panic!("no row for mode {mode}: {rows:?}"))
    };
    let ok = row("ok");
    assert_eq!(ok.status, JobStatus::Succeeded);
    assert_eq!(value(ok, "accuracy", None), 0.9);
    let failed = |mode: &str, attempts: u32, reason: &str| {
        let r = row(mode);
        assert_eq!(r.status, JobStatus::Failed, "{mode}");
        assert_eq!(r.attempts, attempts, "{mode}: attempts");
        let got = r.error.as_deref().unwrap_or_default();
        assert!(got.contains(reason), "{mode}: {got:?} lacks {reason:?}");
    };
    // A crash may be transient: retried, then failed with the exception as its reason.
    failed(
        "crash",
        2,
        "exit code 1: RuntimeError: CUDA error: an illegal memory access (at iteration 3)",
    );
    failed(
        "reject",
        1,
        "exit code 65 (the program rejected its job: not retried): width must be even, got 3",
    );
    failed(
        "malformed",
        1,
        r#"malformed report, stdout line 3: not valid JSON"#,
    );
    failed("silent", 1, "exited 0 without reporting its metrics");
    let ok_dir = PathBuf::from(ok.artifact_dir.as_deref().unwrap());
    let stdout = std::fs::read_to_string(ok_dir.join("stdout.log")).unwrap();
    assert_eq!(stdout.trim(), "training done");
    assert_eq!(sb.integrity(), "ok");
}

sweep_test_services::needs_postgres! {
    #[test]
    fn two_agents_on_postgresql_share_the_pytorch_sweep_one_killed_mid_job() {
        let db = fresh_postgres();
        let sb = Sandbox::new();
        let file = tiny_torch(&sb);
        let out = sb
            .command(&["run", file.to_str().unwrap(), "--enqueue-only"])
            .env("SWEEP_DB", &db)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        let store = OpenDb::new(&db);
        let sweep = store.call(|s| s.sweep_id("tiny")).unwrap();
        let args = ["--sweep", "tiny", "--lease", "2", "--workers", "1"];
        let pace = [("TINY_PACE_S", "0.1")];
        let mut a = spawn_agent_with(&sb, &db, "node-a", &args, &pace);
        let mut b = spawn_agent_with(&sb, &db, "node-b", &args, &pace);

        // Kill node-a's agent once its program has checkpointed (every 5 iterations).
        let mut victim = None;
        wait_for(120, "node-a's program to pass iteration 6", || {
            victim = running_on(&store, sweep, "node-a").filter(|(_, it)| *it >= 6);
            victim.is_some()
        });
        let (victim, _) = victim.unwrap();
        a.kill().unwrap();
        a.wait().unwrap();
        assert!(wait_child(&mut b, 300).success(), "{}", agent_log(&sb, "node-b"));

        let rows = store.call(|s| s.report_rows(Some("tiny")));
        assert_eq!(rows.len(), 8);
        assert!(rows.iter().all(|r| r.status == JobStatus::Succeeded), "{rows:?}");
        let log = agent_log(&sb, "node-b");
        assert!(
            log.lines().any(|l| l.contains(&format!("job {victim} (attempt"))
                && l.contains("resuming from iteration")),
            "node-b did not resume job {victim} from its program's checkpoint:\n{log}"
        );
        assert!(sb.wait_no_orphans().is_empty(), "a program outlived its agent");
    }
}

/// The README's example (examples/pytorch: a 30-line script and its sweep file) as written;
/// `python3` is the one with torch.
#[test]
fn the_readme_pytorch_example_runs_as_written() {
    let sb = Sandbox::new();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pytorch/sweep.yaml");
    let py = python();
    let path = match py.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(bin) => format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
        None => std::env::var("PATH").unwrap_or_default(),
    };
    let db = sb.db();
    let out = sb
        .command(&[
            "run",
            file.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--workers",
            "2",
        ])
        .env("PATH", path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let rows = sb.rows();
    assert_eq!(rows.len(), 8);
    assert!(
        rows.iter().all(|r| r.status == JobStatus::Succeeded),
        "{rows:?}"
    );
    assert!(
        rows.iter().all(|r| value(r, "Dice", None) > 0.0),
        "{rows:?}"
    );
    assert!(
        text.contains("train.py, lr=0.2, width=8") && text.contains("Dice"),
        "{text}"
    );
}

/// An adaptive search over a program's parameters: TPE proposes, the program reports its own
/// metric, the decisions replay.
#[test]
fn a_tpe_search_proposes_a_programs_parameters_and_replays() {
    let sb = Sandbox::new();
    std::fs::copy(
        Path::new(PROGRAMS).join("quadratic.py"),
        sb.path().join("quadratic.py"),
    )
    .unwrap();
    let file = sb.write_sweep(&format!(
        "name: quad\ncommand: [{py}, quadratic.py]\nsearch:\n  method: tpe\n  trials: 8\n  parallel: 2\n  \
         metric: score\n  goal: maximize\n  space: {{x: {{uniform: [0.0, 1.0]}}, y: {{int: [0, 4]}}}}\n",
        py = python().display()
    ));
    let out = sb.run(&file, &["--workers", "2"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let rows = sb.rows();
    assert_eq!(rows.len(), 8, "{rows:?}");
    assert!(
        rows.iter().all(|r| r.status == JobStatus::Succeeded),
        "{rows:?}"
    );
    assert!(rows.iter().all(|r| value(r, "score", None) <= 0.0));
    replay_agrees(&sb, "quad");
}

/// ASHA over a program's parameters: the program stops at the rung sweep asks for
/// (`SWEEP_PAUSE_AT`), promoted trials continue from its checkpoint, the rest are stopped.
#[test]
fn asha_pauses_a_program_at_its_rungs_and_promoted_trials_continue_from_its_checkpoint() {
    let sb = Sandbox::new();
    let file = program_sweep(
        &sb,
        "curve.py",
        "asha",
        "search:\n  method: random\n  trials: 9\n  parallel: 3\n  metric: score\n  \
         space: {x: {uniform: [0.0, 1.0]}}\n\
         stop: {rule: asha, fidelity: {key: iters, min: 1, max: 9, eta: 3}}\n",
    );
    let out = sb.run(&file, &["--workers", "2"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let rows = sb.rows();
    assert_eq!(rows.len(), 9, "{rows:?}");
    let count = |s: JobStatus| rows.iter().filter(|r| r.status == s).count();
    assert!(count(JobStatus::Stopped) >= 1, "{rows:?}");
    assert!(count(JobStatus::Succeeded) >= 1, "{rows:?}");
    assert_eq!(
        count(JobStatus::Stopped) + count(JobStatus::Succeeded),
        9,
        "{rows:?}"
    );
    // A trial that ran to the end was paused at rung 1 and 3 and continued each time.
    for r in rows.iter().filter(|r| r.status == JobStatus::Succeeded) {
        let dir = PathBuf::from(r.artifact_dir.as_deref().unwrap());
        let log = std::fs::read_to_string(dir.join("stdout.log")).unwrap();
        let starts: Vec<&str> = log.lines().collect();
        assert_eq!(
            starts,
            [
                "resumed from iteration 0",
                "resumed from iteration 1",
                "resumed from iteration 3"
            ],
            "{}",
            r.label
        );
        assert_eq!(r.iteration, 9, "{}", r.label);
    }
    replay_agrees(&sb, "asha");
}

/// A command that cannot start (a typo'd program) fails its jobs at once, saying what could
/// not be started where; the orchestrator and the other jobs go on.
#[test]
fn a_command_that_cannot_start_fails_its_jobs_with_the_reason() {
    let sb = Sandbox::new();
    let file =
        sb.write_sweep("name: typo\ncommand: [./trian.sh, \"${args}\"]\ngrid: {lr: [0.1, 0.2]}\n");
    let out = sb.run(&file, &["--workers", "2"]);
    assert!(!out.status.success());
    let rows = sb.rows();
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!((r.status, r.attempts), (JobStatus::Failed, 1), "{r:?}");
        let reason = r.error.as_deref().unwrap_or_default();
        assert!(
            reason.contains("starting the command \"./trian.sh --lr=")
                && reason.contains("No such file or directory"),
            "{reason}"
        );
    }
}

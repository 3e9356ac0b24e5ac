//! What the command line says matches what happened: exit statuses, counters, reasons of
//! failures, closed pipes, and results that belong to the database that produced them.

use crate::util::{rt, Sandbox};
use std::io::Read;
use std::process::Stdio;
use sweep_core::job::JobStatus;

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `sweep run FILE --db DB --no-report EXTRA...` with its progress lines logged (info).
fn run_logged(sb: &Sandbox, file: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let (file, db) = (file.to_str().unwrap(), sb.db());
    let mut args = vec!["run", file, "--db", db.to_str().unwrap(), "--no-report"];
    args.extend_from_slice(extra);
    sb.command(&args).env("RUST_LOG", "info").output().unwrap()
}

/// A toy job whose first attempt exits with an error (code 3) at iteration 3; the retry
/// succeeds.
const FLAKY: &str = "name: flaky\nbase: {iters: 6, checkpoint_every: 2}\nmax_attempts: 3\n";

#[test]
fn a_retry_that_succeeds_is_a_success_counted_once() {
    let sb = Sandbox::toy(&[("SWEEP_TOY_FAULTS", "exit@3/1")]);
    let file = sb.write_sweep(FLAKY);
    let out = run_logged(&sb, &file, &[]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("1 succeeded, 0 diverged, 0 failed, 1 retried"),
        "{err}"
    );
    assert!(err.contains("[1/1] done"), "{err}");
    assert!(
        !err.contains("[2/1]") && !err.contains("[1/1] retry"),
        "{err}"
    );
    let rows = sb.rows();
    assert_eq!(
        (rows[0].status, rows[0].attempts),
        (JobStatus::Succeeded, 2)
    );
    // `show` lists both attempts, the first with how it ended.
    let db = sb.db().to_str().unwrap().to_string();
    let out = sb
        .command(&["show", "1", "--db", &db, "--format", "json"])
        .output()
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("show prints JSON");
    let attempts = j["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{j}");
    assert_eq!(attempts[0]["outcome"], "retried");
    let reason = attempts[0]["reason"].as_str().unwrap();
    assert!(reason.contains("exit code 3"), "{}", attempts[0]);
    assert_eq!(attempts[1]["outcome"], "succeeded");
}

/// A real (tiny) UNet job whose init checkpoint does not exist: bad input, not retried.
fn missing_init_sweep(sb: &Sandbox) -> std::path::PathBuf {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/data/dme");
    sb.write_sweep(&format!(
        "name: bad-init\n\
         data: {{dataset: dme, root: {root}, scale: [64, 64]}}\n\
         base:\n  model: {{base_channels: 4, head: fcn, aux_head: false}}\n  crop: 32\n  iters: 2\n  batch: 1\n\
         \x20 eval: {{mode: whole}}\n  init: {{path: {}/no-such.pth}}\n\
         max_attempts: 3\n",
        sb.path().display()
    ))
}

#[test]
fn a_permanent_failure_is_not_retried_and_its_reason_is_shown() {
    let sb = Sandbox::new();
    let file = missing_init_sweep(&sb);
    let out = sb.run(&file, &[]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("0 succeeded, 0 diverged, 1 failed, 0 retried, 1 attempt(s)"),
        "{err}"
    );
    let rows = sb.rows();
    assert_eq!((rows[0].status, rows[0].attempts), (JobStatus::Failed, 1));
    let reason = rows[0].reason().expect("a reason is recorded").to_string();
    assert!(
        reason.contains("no-such.pth") && reason.contains("no such file"),
        "{reason}"
    );

    let db = sb.db().to_str().unwrap().to_string();
    let status = stdout_of(&sb.command(&["status", "--db", &db]).output().unwrap());
    assert!(status.contains("no-such.pth"), "{status}");
    let report = stdout_of(
        &sb.command(&["report", "--all", "--db", &db])
            .output()
            .unwrap(),
    );
    assert!(
        report.contains("Reason") && report.contains("no-such.pth"),
        "{report}"
    );
    let show = sb
        .command(&["show", &rows[0].hash[..6], "--db", &db])
        .output()
        .unwrap();
    let show = stdout_of(&show);
    assert!(show.contains("status     failed"), "{show}");
    assert!(
        show.contains("permanent") && show.contains("no-such.pth"),
        "{show}"
    );
    assert!(show.contains("worker.log"), "the log tail is shown: {show}");
}

#[test]
fn show_names_an_unknown_or_ambiguous_job() {
    let sb = Sandbox::toy(&[]);
    let file = sb.write_sweep("name: two\nbase: {iters: 1, checkpoint_every: 0}\nseeds: [0, 1]\n");
    assert!(sb.run(&file, &[]).status.success());
    let db = sb.db().to_str().unwrap().to_string();
    let out = sb.command(&["show", "zzzz", "--db", &db]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("no job matches \"zzzz\""),
        "{}",
        stderr_of(&out)
    );
    // Both jobs share the label: a label alone is ambiguous, an id is not.
    let label = sb.rows()[0].label.clone();
    let out = sb.command(&["show", &label, "--db", &db]).output().unwrap();
    assert!(
        stderr_of(&out).contains("matches 2 jobs"),
        "{}",
        stderr_of(&out)
    );
    let out = sb.command(&["show", "2", "--db", &db]).output().unwrap();
    assert!(
        stdout_of(&out).starts_with("job 2 ("),
        "{}",
        stdout_of(&out)
    );
}

/// `sweep X | head`: the reader goes away; the command ends quietly with status 0.
#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    let sb = Sandbox::toy(&[]);
    // The plan of the 81-job grid as JSON is over 100 KB: more than a pipe holds, so the
    // writer must meet the closed pipe whatever the timing.
    let mut child = sb
        .command(&["plan", "sweeps/grid.yaml", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked") && err.is_empty(), "{err}");

    let file =
        sb.write_sweep("name: pipe\nbase: {iters: 1, checkpoint_every: 0}\nseeds: [0, 1, 2]\n");
    assert!(sb.run(&file, &[]).status.success());
    let db = sb.db().to_str().unwrap().to_string();
    let out = sb
        .command(&["report", "--format", "json", "--db", &db])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = out;
    drop(out.stdout.take());
    let out = out.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(!stderr_of(&out).contains("panicked"), "{}", stderr_of(&out));
}

/// How many curve points the database holds for each job.
fn curve_lengths(sb: &Sandbox) -> Vec<usize> {
    let db = sb.db();
    rt().block_on(async {
        let store = sweep_core::store::open(&db).await.unwrap();
        let mut n = Vec::new();
        for r in store.report_rows(None).await.unwrap() {
            n.push(store.curve(r.job_id).await.unwrap().len());
        }
        n
    })
}

/// Two toy jobs of 4 iterations.
const TWO_JOBS: &str = "name: again\nbase: {iters: 4, checkpoint_every: 2}\nseeds: [0, 1]\n";

#[test]
fn a_new_database_trains_again_unless_asked_to_adopt() {
    let sb = Sandbox::toy(&[]);
    let file = sb.write_sweep(TWO_JOBS);
    let runs = sb.path().join("runs");
    let runs_arg = runs.to_str().unwrap().to_string();
    let first = sb.run(&file, &["--runs", &runs_arg]);
    assert!(first.status.success(), "{}", stderr_of(&first));
    let before = sb.rows();

    // Start over with a new database on the same artifact folders.
    std::fs::remove_file(sb.db()).unwrap();
    let second = run_logged(&sb, &file, &["--runs", &runs_arg]);
    let err = stderr_of(&second);
    assert!(second.status.success(), "{err}");
    assert!(
        err.contains("moved them to"),
        "a log line says what was moved: {err}"
    );
    let job_dir = runs.join("again").join(&before[0].hash);
    let stale: Vec<_> = std::fs::read_dir(job_dir.join("stale")).unwrap().collect();
    assert_eq!(stale.len(), 1, "the old files are kept aside, not deleted");
    // Trained again: the new database saw every iteration of every job.
    let curves = curve_lengths(&sb);
    assert_eq!(curves, [4, 4], "each job trained its 4 iterations anew");

    // A third database adopts what the second left instead of training.
    std::fs::remove_file(sb.db()).unwrap();
    let third = sb.run(&file, &["--runs", &runs_arg, "--adopt"]);
    assert!(third.status.success(), "{}", stderr_of(&third));
    let curves = curve_lengths(&sb);
    assert_eq!(
        curves,
        [0, 0],
        "adopted results are recorded without training"
    );
    let rows = sb.rows();
    assert!(rows.iter().all(|r| r.status == JobStatus::Succeeded));
    assert_eq!(rows[0].metrics, before[0].metrics);
}

#[test]
fn every_result_records_the_build_that_produced_it() {
    let sb = Sandbox::toy(&[]);
    let file = sb.write_sweep(TWO_JOBS);
    assert!(sb.run(&file, &[]).status.success());
    let version = sb.rows()[0]
        .sweep_version
        .clone()
        .expect("a version is recorded");
    assert!(version.starts_with(env!("CARGO_PKG_VERSION")), "{version}");
}

/// `show --format json` on a real tiny UNet job: its attempt, the metrics, the curve and
/// (with `--images`) every validation image.
#[test]
fn show_as_json_has_the_attempts_metrics_and_images_of_a_real_job() {
    let sb = Sandbox::new();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/data/dme");
    let file = sb.write_sweep(&format!(
        "name: shown\n\
         data: {{dataset: dme, root: {root}, scale: [64, 64], limit_train: 2, limit_val: 2}}\n\
         base:\n  model: {{base_channels: 4, aux_head: false}}\n  crop: 32\n  iters: 2\n  batch: 1\n\
         \x20 eval: {{mode: whole}}\n"
    ));
    let out = sb.run(&file, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let db = sb.db().to_str().unwrap().to_string();
    let show = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["show", "1", "--db", db.as_str(), "--format", "json"];
        args.extend_from_slice(extra);
        let out = sb.command(&args).output().unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        serde_json::from_str(&stdout_of(&out)).expect("show prints JSON")
    };
    let j = show(&[]);
    assert_eq!(
        (j["job_id"].as_i64(), j["sweep"].as_str()),
        (Some(1), Some("shown"))
    );
    assert_eq!(j["status"], "succeeded");
    assert_eq!(j["config"]["iters"], 2, "the config is an object");
    let attempts = j["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{j}");
    assert_eq!(attempts[0]["outcome"], "succeeded");
    assert!(j["metrics"]["val"]["mDice"].is_number(), "{}", j["metrics"]);
    assert_eq!(j["curve"]["last"]["iteration"], 2);
    assert!(j["log"]["lines"].is_array(), "the log tail: {}", j["log"]);
    assert!(j.get("images").is_none(), "images only with --images");

    let images = show(&["--images"])["images"].as_array().unwrap().clone();
    let fluid: Vec<_> = images.iter().filter(|r| r["class"] == 1).collect();
    assert_eq!(
        fluid.len(),
        2,
        "one fluid row per validation image: {images:?}"
    );
    for r in fluid {
        assert!(r["image"].as_str().unwrap().starts_with("img_"), "{r}");
        assert!(r["label"].is_u64() && r["unit"] == "px", "{r}");
        assert!(r["hd95"].is_number() || r["hd95"].is_null(), "{r}");
    }
}

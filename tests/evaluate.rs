//! `sweep evaluate` end to end: another program's predictions (written by numpy, scored by
//! hand in `evaluate_by_hand.py`) recorded beside a sweep's own row, on its leaderboard and
//! in `sweep compare`; the same folder again writes nothing; bad folders are refused in one
//! message that names the file, and nothing is written.

use crate::util::{python, stderr_of, Sandbox, TINY_UNET};
use serde_json::Value;
use std::path::Path;
use std::process::Output;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/evaluate_by_hand.py");

/// Writes the data set and the predictions under `out`; the hand-computed numbers.
fn by_hand(out: &Path) -> Value {
    let py = python();
    let o = std::process::Command::new(&py)
        .arg(SCRIPT)
        .arg(out)
        .output()
        .unwrap_or_else(|e| panic!("{}: cannot run: {e}", py.display()));
    assert!(
        o.status.success(),
        "{} {SCRIPT} failed (it needs numpy: scripts/setup-libtorch makes .venv with it, or set \
         SWEEP_PYTHON): {}",
        py.display(),
        stderr_of(&o)
    );
    serde_json::from_slice(&o.stdout).expect("the script prints JSON")
}

fn sweep(sb: &Sandbox, args: &[&str]) -> Output {
    let db = sb.db();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--db", db.to_str().unwrap()]);
    sb.command(&all).output().unwrap()
}

fn json_of(o: &Output) -> Value {
    assert!(o.status.success(), "{}", stderr_of(o));
    serde_json::from_slice(&o.stdout).expect("JSON on stdout")
}

#[test]
fn another_programs_predictions_score_as_by_hand_and_join_the_leaderboard() {
    let sb = Sandbox::new();
    let hand = by_hand(sb.path());
    let (data, pred) = (sb.path().join("data"), sb.path().join("pred"));
    let file = sb.write_sweep(&format!(
        "name: ev\ndata: {{root: {}, scale: [40, 40]}}\nbase:\n  {TINY_UNET}\n  iters: 2\n",
        data.display()
    ));
    let out = sb.run(&file, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let (d, p) = (data.to_str().unwrap(), pred.to_str().unwrap());
    let args = [
        "evaluate", p, "--data", d, "--as", "numpy", "--format", "json",
    ];
    let v = json_of(&sweep(&sb, &args));
    assert_eq!(
        (&v["outcome"], &v["sweep"]),
        (&Value::from("added"), &Value::from("ev"))
    );
    assert_eq!(v["external"]["cases"], 4);
    assert_eq!(v["not_scored"], serde_json::json!(["summary.json"]));
    for (key, want) in hand.as_object().unwrap() {
        let got = v["metrics"][key].as_f64().unwrap_or(f64::NAN);
        let want = want.as_f64().unwrap();
        assert!(
            (got - want).abs() < 1e-9,
            "{key}: sweep {got}, by hand {want}"
        );
    }
    // The same folder again: the row it already is, nothing new.
    let again = json_of(&sweep(&sb, &args));
    assert_eq!(
        (&again["outcome"], &again["job_id"]),
        (&Value::from("unchanged"), &v["job_id"])
    );
    assert_eq!(sb.rows().len(), 2);

    let board = json_of(&sweep(&sb, &["report", "--format", "json"]));
    let rows = board.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{board}");
    let ext = rows
        .iter()
        .find(|r| r["model"] == "numpy")
        .expect("the row is on the board");
    let own = rows.iter().find(|r| r["model"] != "numpy").unwrap();
    assert_eq!(
        (&ext["external"], &own["external"]),
        (&Value::from(true), &Value::from(false))
    );
    assert_eq!(ext["config"]["data"]["root"], own["config"]["data"]["root"]);
    assert!(ext["config"].get("model").is_none(), "{ext}");
    // Both have per-image results: the bootstrap tested them against each other.
    assert!(ext["stats"]["prob_best"].is_number() && own["stats"]["prob_best"].is_number());
    let text = sweep(&sb, &["report"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("numpy (external)"));

    let own_label = own["model"].as_str().unwrap();
    let c = json_of(&sweep(
        &sb,
        &["compare", "numpy", own_label, "--format", "json"],
    ));
    assert_eq!(c["a"]["label"], "numpy");
    assert!(
        c["test"].as_str().unwrap().contains("paired bootstrap"),
        "{c}"
    );
    let show = sweep(&sb, &["show", "numpy"]);
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(
        text.contains(&format!("external   predictions from {p} (4 cases")),
        "{text}"
    );
}

/// Runs `sweep evaluate` on `folder`: it fails with one line naming `names`.
fn refused(sb: &Sandbox, folder: &Path, data: &Path, names: &str) {
    let (f, d) = (folder.to_str().unwrap(), data.to_str().unwrap());
    let out = sweep(sb, &["evaluate", f, "--data", d]);
    let err = stderr_of(&out);
    assert!(!out.status.success(), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one message: {err}");
    assert!(
        err.contains(names) && err.contains("nothing was recorded"),
        "{err}"
    );
}

#[test]
fn bad_prediction_folders_are_refused_naming_the_file_and_nothing_is_written() {
    let sb = Sandbox::new();
    by_hand(sb.path());
    let (data, pred) = (sb.path().join("data"), sb.path().join("pred"));
    let copy = |name: &str| {
        let dir = sb.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["v1.png", "v2.png", "v3.png", "v4.png"] {
            std::fs::copy(pred.join(f), dir.join(f)).unwrap();
        }
        dir
    };
    let missing = copy("missing");
    std::fs::remove_file(missing.join("v3.png")).unwrap();
    refused(
        &sb,
        &missing,
        &data,
        &missing.join("v3.png").display().to_string(),
    );
    let small = copy("small");
    image::GrayImage::new(39, 32)
        .save(small.join("v2.png"))
        .unwrap();
    refused(
        &sb,
        &small,
        &data,
        &format!("{} is 39x32", small.join("v2.png").display()),
    );
    let values = copy("values");
    image::GrayImage::from_pixel(40, 32, image::Luma([9]))
        .save(values.join("v4.png"))
        .unwrap();
    let at = values.join("v4.png").display().to_string();
    refused(
        &sb,
        &values,
        &data,
        &format!("{at}: values {{9}}, but the class ids"),
    );
    let broken = copy("broken");
    std::fs::write(broken.join("v1.png"), b"\x89PNG truncated").unwrap();
    let at = broken.join("v1.png").display().to_string();
    refused(
        &sb,
        &broken,
        &data,
        &format!("{at}: cannot decode as an image"),
    );
    assert!(!sb.db().exists(), "nothing was written");
    // Into a database that has rows: still nothing written.
    let (p, d) = (pred.to_str().unwrap(), data.to_str().unwrap());
    json_of(&sweep(
        &sb,
        &["evaluate", p, "--data", d, "--format", "json"],
    ));
    refused(&sb, &broken, &data, "cannot decode");
    assert_eq!(sb.rows().len(), 1);
}

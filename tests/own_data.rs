//! Your own data end to end: `sweep data check`, sweeps on the shipped sets rewritten in
//! nnU-Net v2's and MMSegmentation's layouts (the same numbers as the shipped sets), a
//! generated four-class set through 5-fold grouped CV with every class named, and bad data
//! refused before the database is touched.

use crate::layouts::{mmseg_chase, nnunet_dme};
use crate::util::{stderr_of, Sandbox, TINY_UNET};
use std::path::{Path, PathBuf};
use sweep_core::job::JobStatus;
use sweep_core::store::JobRow;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

fn stdout_of(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `sweep data check PATH`.
fn data_check(sb: &Sandbox, path: &Path) -> std::process::Output {
    sb.command(&["data", "check", path.to_str().unwrap()])
        .output()
        .unwrap()
}

fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(path, v.to_string()).unwrap();
}

/// The validation metrics of a job, as `(name, class, value)`, in a stable order.
fn val_metrics(row: &JobRow) -> Vec<(String, Option<usize>, String)> {
    let mut m: Vec<_> = row
        .metrics
        .iter()
        .filter(|m| m.split == "val")
        .map(|m| (m.name.clone(), m.class, format!("{:.10}", m.value)))
        .collect();
    m.sort();
    m
}

/// Runs one tiny job on each of `roots` (a grid over `data.root`), and asserts that their
/// validation metrics are identical.
fn same_scores(roots: [&Path; 2], data: &str) {
    let sb = Sandbox::new();
    let file = sb.write_sweep(&format!(
        "name: same\ndata: {{{data}}}\nbase:\n  {TINY_UNET}\n  iters: 3\n\
         grid:\n  data.root: [{}, {}]\n",
        roots[0].display(),
        roots[1].display()
    ));
    let out = sb.run(&file, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let rows = sb.rows();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.status == JobStatus::Succeeded));
    assert_ne!(rows[0].hash, rows[1].hash, "another folder is another job");
    assert!(!val_metrics(&rows[0]).is_empty());
    assert_eq!(val_metrics(&rows[0]), val_metrics(&rows[1]));
}

#[test]
fn an_nnunet_copy_of_dme_scores_exactly_as_the_shipped_set() {
    let copy = nnunet_dme(&data_dir(), false);
    same_scores(
        [&data_dir().join("dme"), copy.path()],
        "scale: [64, 64], split: {fold: {folds: 5, fold: 1}}, limit_train: 4, limit_val: 3",
    );
}

#[test]
fn chase_db1_in_mmsegs_layout_scores_exactly_as_the_shipped_set() {
    let copy = mmseg_chase(&data_dir());
    same_scores(
        [&data_dir().join("chase_db1"), copy.path()],
        "scale: [64, 64], split: study, limit_train: 2, limit_val: 2",
    );
}

#[test]
fn data_check_reports_and_its_exit_status_says_whether_it_passed() {
    let sb = Sandbox::new();
    let dme = data_dir().join("dme");
    let out = data_check(&sb, &dme);
    let text = stdout_of(&out);
    assert!(out.status.success(), "{text}{}", stderr_of(&out));
    assert!(
        text.contains("classes      0 background, 1 fluid"),
        "{text}"
    );
    assert!(
        text.contains("110 labelled (10 groups)") && text.contains("check passed"),
        "{text}"
    );
    let json = sb
        .command(&["data", "check", dme.to_str().unwrap(), "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["cases"], 110);
    assert_eq!(v["classes"][1], "fluid");
    // A copy whose masks are 0 / 255 and says nothing about it fails, naming the fix.
    let copy = nnunet_dme(&data_dir(), false);
    edit_json(&copy.path().join("dataset.json"), |v| {
        v["sweep"]["unused"] = v["sweep"]["label_values"].take();
        v["sweep"].as_object_mut().unwrap().remove("label_values");
    });
    let out = data_check(&sb, copy.path());
    assert_eq!(out.status.code(), Some(1));
    let text = stderr_of(&out);
    assert!(
        text.contains("dataset.json: `sweep.unused`: unknown key"),
        "{text}"
    );
    // A description that reads but files that do not: the report, then exit status 1.
    edit_json(&copy.path().join("dataset.json"), |v| {
        v["sweep"].as_object_mut().unwrap().remove("unused");
    });
    let out = data_check(&sb, copy.path());
    assert_eq!(out.status.code(), Some(1));
    let text = stdout_of(&out);
    assert!(
        text.contains("check failed: 78 problem(s)") && text.contains("add label_values: {255: 1}"),
        "{text}"
    );
}

#[test]
fn bad_data_is_refused_before_the_database_is_touched() {
    let sb = Sandbox::new();
    let copy = nnunet_dme(&data_dir(), false);
    edit_json(&copy.path().join("dataset.json"), |v| {
        v["sweep"].as_object_mut().unwrap().remove("label_values");
    });
    let file = sb.write_sweep(&format!(
        "name: bad\ndata: {{root: {}}}\ncv: {{folds: 5}}\nbase:\n  {TINY_UNET}\n  iters: 2\n",
        copy.path().display()
    ));
    for cmd in ["plan", "run"] {
        let out = if cmd == "run" {
            sb.run(&file, &[])
        } else {
            sb.command(&["plan", file.to_str().unwrap()])
                .output()
                .unwrap()
        };
        let err = stderr_of(&out);
        assert!(!out.status.success(), "{cmd}: {err}");
        assert!(
            err.contains("labelsTr/img_")
                && err.contains(
                    "values {0, 255}, the data set declares {0, 1}; add label_values: {255: 1}"
                ),
            "{cmd}: {err}"
        );
    }
    assert!(!sb.db().exists(), "nothing was written");
}

#[test]
fn a_four_class_set_runs_grouped_cv_and_every_class_is_named() {
    let sb = Sandbox::new();
    let data = sb.path().join("synth");
    let out = sb
        .command(&[
            "data",
            "synth",
            data.to_str().unwrap(),
            "--cases",
            "30",
            "--size",
            "48",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    // Weighted CE: the shapes are a few % of the pixels each.
    let file = sb.write_sweep(&format!(
        "name: synth\ndata: {{root: {}, scale: [48, 48]}}\ncv: {{folds: 5}}\n\
         base:\n  model: {{base_channels: 8, aux_head: false}}\n  crop: 48\n  batch: 4\n  iters: 250\n\
         \x20 loss: [{{type: ce, class_weight: [1.0, 5.0, 5.0, 5.0]}}]\n\
         \x20 optimizer: {{type: adamw, lr: 0.01, weight_decay: 0.01}}\n  eval: {{mode: whole}}\n",
        data.display()
    ));
    let out = sb.run(&file, &["--workers", "2"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let rows = sb.rows();
    assert_eq!(rows.len(), 5);
    for r in &rows {
        assert_eq!(r.classes, ["background", "IRF", "SRF", "PED"]);
        assert_eq!(r.status, JobStatus::Succeeded, "{}", r.label);
    }
    let db = sb.db();
    let report = sb
        .command(&[
            "report",
            "--db",
            db.to_str().unwrap(),
            "--columns",
            "Dice.IRF,Dice.SRF,Dice.PED",
        ])
        .output()
        .unwrap();
    let text = stdout_of(&report);
    assert!(
        text.contains("Dice.IRF") && text.contains("Dice.PED"),
        "{text}"
    );
    assert!(text.contains("(validation image, class) pairs"), "{text}");
    // The all-background floor scores 0 on every foreground class; the model beats it on each.
    let json = sb
        .command(&["report", "--db", db.to_str().unwrap(), "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let metrics = &v[0]["metrics"];
    for c in 1..=3 {
        let dice = metrics[format!("Dice.{c}")]["mean"].as_f64().unwrap();
        assert!(dice > 5.0, "class {c}: Dice {dice}: {metrics}");
    }
    let show = sb
        .command(&["show", "1", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(stdout_of(&show).contains("SRF (2)"), "{}", stdout_of(&show));
}

#[test]
fn changed_files_under_finished_jobs_are_said_and_noted() {
    let sb = Sandbox::new();
    let copy = nnunet_dme(&data_dir(), false);
    let file = sb.write_sweep(&format!(
        "name: changed\ndata: {{root: {}, scale: [64, 64], split: {{fold: {{folds: 5, fold: 1}}}}, \
         limit_train: 4, limit_val: 3}}\nbase:\n  {TINY_UNET}\n  iters: 2\nseeds: [0]\n",
        copy.path().display()
    ));
    let out = sb.run(&file, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let first = sb.rows()[0]
        .data_fingerprint
        .clone()
        .expect("recorded with the result");
    assert!(
        first.starts_with("train:") && first.contains(" val:"),
        "{first}"
    );
    // A validation label is corrected after the run.
    image::GrayImage::from_pixel(256, 256, image::Luma([255]))
        .save(copy.path().join("labelsTr/img_22.png"))
        .unwrap();
    let out = sb.run(&file, &["--set", "seeds=[0, 1]"]);
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: the files under 1 finished job(s) on")
            && err.contains("changed since they ran"),
        "{err}"
    );
    let db = sb.db();
    let report = sb
        .command(&["report", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    let text = stdout_of(&report);
    assert!(
        text.contains("Changed data: runs of") && text.contains("1 run(s) on val:"),
        "{text}"
    );
}

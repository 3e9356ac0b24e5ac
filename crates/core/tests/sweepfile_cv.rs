//! Cross-validation (`cv: {folds: N, by: subject}`): expansion into folds (with seeds), labels,
//! `sweep plan`, errors with their lines, the shipped `finetune-cv.yaml`, and the report's
//! grouping of folds.

use crate::util::{job_row, metrics, sweep_file};
use std::path::Path;
use sweep_core::job::{FoldBy, SplitConfig};
use sweep_core::report::{self, render, Format, ReportOptions};
use sweep_core::store::JobRow;
use sweep_core::sweepfile::{load, parse, PlannedJob, SweepSpec};

fn spec(text: &str) -> SweepSpec {
    parse(Path::new("sweeps/t.yaml"), text, &[]).unwrap_or_else(|e| panic!("{e}"))
}

fn plan(text: &str) -> Vec<PlannedJob> {
    spec(text).plan().unwrap()
}

fn err(text: &str) -> String {
    match parse(Path::new("sweeps/t.yaml"), text, &[]) {
        Ok(s) => panic!("expected an error, got {} jobs", s.plan().unwrap().len()),
        Err(e) => e.to_string(),
    }
}

fn fold(folds: u32, fold: u32) -> SplitConfig {
    SplitConfig::Fold {
        folds,
        fold,
        by: FoldBy::Subject,
    }
}

#[test]
fn each_config_runs_once_per_fold_and_seed() {
    let jobs = plan(
        "name: t\ngrid:\n  crop: [256, 320]\n  model.head: [fcn, deeplabv3]\n\
         seeds: [0, 1]\ncv: {folds: 5, by: subject}\n",
    );
    assert_eq!(jobs.len(), 2 * 2 * 2 * 5);
    let hashes: std::collections::HashSet<_> = jobs.iter().map(|j| &j.hash).collect();
    assert_eq!(hashes.len(), jobs.len());
    // seed-major (as without cv), then configuration, then fold
    for (i, j) in jobs.iter().enumerate() {
        let (seed, config, k) = (i / 20, (i / 5) % 4, i % 5);
        assert_eq!(j.config.train().unwrap().seed, seed as u64, "job {i}");
        assert_eq!(
            j.config.train().unwrap().crop,
            [256, 320][config / 2],
            "job {i}"
        );
        assert_eq!(
            j.config.train().unwrap().data.split,
            fold(5, k as u32),
            "job {i}"
        );
    }
    assert_eq!(jobs[0].label, "UNet + FCN, crop 256, 200 it, ce, fold 1/5");
    assert_eq!(
        jobs[9].label,
        "UNet + DeepLabV3, crop 256, 200 it, ce, fold 5/5"
    );
    let varied: Vec<(&str, &str)> = jobs[7]
        .varied
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        varied,
        [
            ("crop", "256"),
            ("model.head", "deeplabv3"),
            ("seed", "0"),
            ("fold", "3/5")
        ]
    );
}

#[test]
fn cv_without_grid_and_with_study_split_and_include() {
    // `split: study` may stay: cv replaces it. `by` defaults to subject.
    let jobs = plan("name: t\ndata: {split: study}\ncv: {folds: 3}\n");
    let splits: Vec<_> = jobs
        .iter()
        .map(|j| j.config.train().unwrap().data.split.clone())
        .collect();
    assert_eq!(splits, [fold(3, 0), fold(3, 1), fold(3, 2)]);
    assert_eq!(jobs[2].label, "UNet + FCN, crop 256, 200 it, ce, fold 3/3");
    let jobs =
        plan("name: t\ncv: {folds: 2}\ninclude:\n  - {crop: 320, loss: dice}\n  - {crop: 288}\n");
    let got: Vec<_> = jobs.iter().map(|j| j.label.as_str()).collect();
    assert_eq!(
        got,
        [
            "UNet + FCN, crop 320, 200 it, dice, fold 1/2",
            "UNet + FCN, crop 320, 200 it, dice, fold 2/2",
            "UNet + FCN, crop 288, 200 it, ce, fold 1/2",
            "UNet + FCN, crop 288, 200 it, ce, fold 2/2",
        ]
    );
}

#[test]
fn a_fold_split_written_out_hashes_as_the_cv_job() {
    let by_cv = plan("name: t\ncv: {folds: 5}\n");
    let direct = plan("name: t\ndata: {split: {fold: {folds: 5, fold: 3}}}\n");
    assert_eq!(direct[0].hash, by_cv[3].hash);
    assert_eq!(direct[0].label, by_cv[3].label);
    // The canonical JSON spells the split out; other keys are untouched.
    let json = serde_json::to_value(&by_cv[3].config).unwrap();
    assert_eq!(
        json["data"]["split"],
        serde_json::json!({"fold": {"folds": 5, "fold": 3, "by": "subject"}})
    );
}

#[test]
fn stages_stay_single_jobs_and_a_stage_on_the_folded_data_is_warned_about() {
    let text = "name: t\ncv: {folds: 2}\nstages:\n  pre: {data: {dataset: chase_db1, root: data/chase_db1}}\n\
                base: {init: {from: pre}}\n";
    let s = spec(text);
    let jobs = s.plan().unwrap();
    assert_eq!(jobs.len(), 3);
    assert_eq!(
        jobs[0].config.train().unwrap().data.split,
        SplitConfig::Study
    );
    assert!(jobs[1..]
        .iter()
        .all(|j| j.depends_on == Some(jobs[0].hash.clone())));
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    // pretraining on the DME study split has seen every fold's val patients
    let s =
        spec("name: t\ncv: {folds: 2}\nstages:\n  pre: {iters: 50}\nbase: {init: {from: pre}}\n");
    let w: Vec<String> = s.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        w,
        [
            r#"sweeps/t.yaml:2:1: cv: stage "pre" trains on dme (data/dme), which the folds split: its weights have seen every fold's val subjects"#
        ]
    );
}

#[test]
fn cv_errors_name_line_and_key() {
    assert_eq!(
        err("name: t\ncv: {folds: 1}\n"),
        "sweeps/t.yaml:2:13: cv.folds: 1 fold(s): cross-validation needs at least 2"
    );
    assert_eq!(
        err("name: t\ncv: {fold: 5}\n"),
        r#"sweeps/t.yaml:2:6: cv.fold: unknown key "fold" (did you mean "folds"?)"#
    );
    assert_eq!(
        err("name: t\ncv: {by: subject}\n"),
        r#"sweeps/t.yaml:2:1: cv: missing key "folds" (the number of folds, e.g. {folds: 5, by: subject})"#
    );
    assert_eq!(
        err("name: t\ncv: {folds: 5, by: subjct}\n"),
        r#"sweeps/t.yaml:2:20: cv.by: unknown fold grouping "subjct", expected one of subject (did you mean "subject"?)"#
    );
    assert_eq!(
        err("name: t\ncv: 5\n"),
        "sweeps/t.yaml:2:5: cv: expected a mapping like {folds: 5, by: subject}, found 5"
    );
    assert_eq!(
        err("name: t\ngrid:\n  crop: [256, 320]\ncv: {folds: 6000}\n"),
        "sweeps/t.yaml:4:13: cv.folds: 2 points x 6000 folds is more than 10000 jobs"
    );
}

#[test]
fn cv_with_another_split_is_an_error_at_that_split() {
    let why = "cv: {folds: 5} defines every job's split (fold k validates on the k-th group of \
               subjects and trains on the rest); drop data.split or set it to study";
    assert_eq!(
        err("name: t\ndata:\n  split: {subjects: {train: [1, 2], val: [3]}}\ncv: {folds: 5}\n"),
        format!("sweeps/t.yaml:3:3: data.split: {why}")
    );
    assert_eq!(
        err("name: t\ngrid:\n  data.split: [study, {fold: {folds: 5, fold: 1}}]\ncv: {folds: 5}\n"),
        format!(
            "sweeps/t.yaml:3:3: grid.data.split: {why} (in job data.split={{fold: {{folds: 5, fold: 1}}}})"
        )
    );
    assert_eq!(
        err("name: t\ncv: {folds: 5}\ninclude:\n  - {crop: 320, data.split.subjects: {train: [1], val: [2]}}\n"),
        format!("sweeps/t.yaml:4:17: include[0].data.split.subjects: {why} (in job crop=320, data.split.subjects.train=[1], data.split.subjects.val=[2])")
    );
}

#[test]
fn a_bad_fold_split_written_out_is_located() {
    assert_eq!(
        err("name: t\ndata: {split: {fold: {folds: 5, fold: 5}}}\n"),
        "sweeps/t.yaml:2:39: data.split.fold.fold: 5 is not one of the 5 folds (numbered from 0 to 4)"
    );
    assert_eq!(
        err("name: t\ndata: {split: {fold: {folds: 1, fold: 0}}}\n"),
        "sweeps/t.yaml:2:30: data.split.fold.folds: 1 fold(s): cross-validation needs at least 2"
    );
    assert_eq!(
        err("name: t\ndata: {split: {fold: {folds: 5, fold: 0, by: patient}}}\n"),
        "sweeps/t.yaml:2:46: data.split.fold.by: unknown variant \"patient\", expected subject"
    );
}

#[test]
fn plan_shows_the_folds() {
    let s = spec("name: t\ngrid:\n  crop: [256, 320]\ncv: {folds: 3}\n");
    let jobs = s.plan().unwrap();
    let table = report::plan_table(&s, &jobs);
    let first = table.lines().next().unwrap();
    assert_eq!(
        first,
        "sweep t (sweeps/t.yaml): 6 job(s); 3-fold cross-validation by subject (fold k/3 \
         validates on the k-th of 3 contiguous groups of the data set's subjects, in order, and trains on the others)"
    );
    let header = table.lines().nth(1 + 1).unwrap();
    assert!(header.contains(" fold "), "{table}");
    for k in 1..=3 {
        assert!(table.contains(&format!("┆ {k}/3 ")), "{table}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&report::plan_json(&s, &jobs).unwrap()).unwrap();
    assert_eq!(json["jobs"][4]["varied"]["fold"], "2/3");
    assert_eq!(
        json["jobs"][4]["config"]["data"]["split"]["fold"]["fold"],
        1
    );
    // Without cv: no note, no fold column.
    let s = spec("name: t\ngrid:\n  crop: [256, 320]\n");
    let table = report::plan_table(&s, &s.plan().unwrap());
    assert!(!table.contains("fold"), "{table}");
}

#[test]
fn finetune_cv_yaml_is_the_three_best_rows_in_five_folds_by_three_seeds() {
    let s = load(&sweep_file("finetune-cv"), &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.name, "finetune-cv");
    let jobs = s.plan().unwrap();
    assert_eq!(jobs.len(), 3 * 3 * 5);
    let rows = [
        "UNet + FCN, crop 320, 200 it, ce",
        "UNet + FCN, crop 320, 200 it, dice",
        "UNet + DeepLabV3, crop 320, 200 it, dice",
    ];
    for (i, j) in jobs.iter().enumerate() {
        let (seed, row, k) = (i / 15, (i / 5) % 3, i % 5);
        assert_eq!(j.label, format!("{}, fold {}/5", rows[row], k + 1));
        assert_eq!(j.config.train().unwrap().seed, seed as u64);
        assert_eq!(j.config.train().unwrap().data.split, fold(5, k as u32));
    }
    // The recipe is finetune.yaml's: with the study split and seed 0, the same jobs.
    let study = load(&sweep_file("finetune"), &[]).unwrap().plan().unwrap();
    for j in jobs.iter().filter(|j| j.config.train().unwrap().seed == 0) {
        let mut c = j.config.train().unwrap().clone();
        c.data.split = SplitConfig::Study;
        assert!(study.iter().any(|f| f.hash == c.hash()), "{}", j.label);
    }
}

fn row(id: i64, label: &str, split: &str, seed: u64, dice: f64) -> JobRow {
    let config_json = format!(r#"{{"crop": 320, "data": {{"split": {split}}}, "seed": {seed}}}"#);
    let m = metrics(&[("mDice", None, dice)]);
    job_row("cv", id, label, seed, config_json, "succeeded", m)
}

const FCN: &str = "UNet + FCN, crop 320, 200 it, ce";

/// 5 folds x 2 seeds, 3 folds x 1 seed and the study split of one configuration.
fn cv_rows() -> Vec<JobRow> {
    let mut rows = Vec::new();
    for seed in 0..2 {
        for k in 0..5 {
            let split = format!(r#"{{"fold": {{"folds": 5, "fold": {k}, "by": "subject"}}}}"#);
            let label = format!("{FCN}, fold {}/5", k + 1);
            let dice = 60.0 + f64::from(k) + 10.0 * seed as f64;
            rows.push(row(rows.len() as i64 + 1, &label, &split, seed, dice));
        }
    }
    for k in 0..3 {
        let split = format!(r#"{{"fold": {{"folds": 3, "fold": {k}, "by": "subject"}}}}"#);
        let label = format!("{FCN}, fold {}/3", k + 1);
        rows.push(row(rows.len() as i64 + 1, &label, &split, 0, 70.0));
    }
    rows.push(row(rows.len() as i64 + 1, FCN, r#""study""#, 0, 77.44));
    rows
}

#[test]
fn report_groups_folds_and_seeds_but_not_fold_counts_or_the_study_split() {
    let rows = cv_rows();
    let groups = report::group_rows(&rows, false);
    let got: Vec<(&str, usize)> = groups
        .iter()
        .map(|g| (g.label.as_str(), g.runs.len()))
        .collect();
    let five = format!("{FCN}, 5-fold cv");
    let three = format!("{FCN}, 3-fold cv");
    assert_eq!(got, [(five.as_str(), 10), (three.as_str(), 3), (FCN, 1)]);
    // mean over 5 folds x 2 seeds: (60+61+62+63+64) / 5 = 62 and 72, so 67.
    let opts = ReportOptions {
        format: Format::Markdown,
        ..Default::default()
    };
    let out = render(&rows, &opts).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[2].starts_with(&format!("| {FCN} | 77.44 |")), "{out}");
    assert!(
        lines[3].starts_with(&format!("| {three} | 70.00 ± 0.00 |")),
        "{out}"
    );
    assert!(
        lines[4].starts_with(&format!("| {five} | 67.00 ± ")),
        "{out}"
    );
    assert!(lines[4].contains("| 10 | "), "{out}");
}

#[test]
fn one_finished_fold_is_already_its_cross_validations_row() {
    let rows: Vec<JobRow> = cv_rows().into_iter().skip(2).take(1).collect();
    let groups = report::group_rows(&rows, false);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].label, format!("{FCN}, 5-fold cv"));
}

//! The leaderboard: formats, sorting, seed grouping (hand-computed), pictures.

use crate::util::{job_row, metrics};
use sweep_core::protocol::MetricValue;
use sweep_core::report::{self, render, Format, ReportOptions};
use sweep_core::store::{self, CurvePoint, Finish, JobRow, NewJob, Owner};

const FCN256: &str = "UNet + FCN, crop 256, 200 it, CE";
const FCN320: &str = "UNet + FCN, crop 320, 200 it, CE";
const DLV3: &str = "UNet + DeepLabV3, crop 320, 200 it, dice";
const PSP: &str = "UNet + PSPNet, crop 256, 200 it, CE";

fn row(
    sweep: &str,
    id: i64,
    label: &str,
    seed: u64,
    config: &str,
    status: &str,
    m: Vec<MetricValue>,
) -> JobRow {
    let config_json = format!(r#"{{"model": "{config}", "seed": {seed}}}"#);
    job_row(sweep, id, label, seed, config_json, status, m)
}

/// One single run per FCN config, DeepLabV3 with 3 seeds, one failed job, one other sweep.
fn rows() -> Vec<JobRow> {
    let m = |d: f64, a: f64, i: f64, d1: f64| {
        metrics(&[
            ("mDice", None, d),
            ("mAcc", None, a),
            ("mIoU", None, i),
            ("mFscore", None, d),
            ("aAcc", None, 99.1),
            ("Dice", Some(1), d1),
            ("IoU", Some(1), d1 / 2.0),
        ])
    };
    vec![
        row(
            "dme",
            1,
            FCN256,
            0,
            "fcn256",
            "succeeded",
            m(73.82, 68.77, 65.44, 50.0),
        ),
        row(
            "dme",
            2,
            DLV3,
            0,
            "dlv3",
            "succeeded",
            m(79.0, 77.0, 70.0, 59.0),
        ),
        row(
            "dme",
            3,
            DLV3,
            1,
            "dlv3",
            "succeeded",
            m(80.0, 77.0, 71.0, 60.0),
        ),
        row(
            "dme",
            4,
            DLV3,
            2,
            "dlv3",
            "succeeded",
            m(84.0, 77.0, 72.0, 64.0),
        ),
        row(
            "dme",
            5,
            FCN320,
            0,
            "fcn320",
            "succeeded",
            m(77.44, 75.37, 68.72, 62.0),
        ),
        row("dme", 6, PSP, 0, "psp", "failed", vec![]),
        row(
            "chase",
            7,
            FCN256,
            0,
            "fcn256",
            "succeeded",
            m(90.0, 90.0, 90.0, 90.0),
        ),
    ]
}

fn opts(format: Format) -> ReportOptions {
    ReportOptions {
        sweep: Some("dme".into()),
        format,
        ..Default::default()
    }
}

#[test]
fn markdown_matches_the_studys_table_with_seeds_grouped() {
    let out = render(&rows(), &opts(Format::Markdown)).unwrap();
    // DeepLabV3 seeds 79, 80, 84: mean 81, deviations -2 -1 3, sample var (4+1+9)/2 = 7,
    // std sqrt(7) = 2.6458. mIoU 70 71 72: mean 71, std 1. mAcc 77 x3: std 0.
    // 95% CI of mDice: 81 ± t(0.975, 2) sqrt(7) / sqrt(3) = 81 ± 4.3027 * 1.5275 = 81 ± 6.57.
    let expected = format!(
        "| Model | mDice | mAccuracy | mIoU | mFscore | n | mDice 95% CI |\n\
         |---|---:|---:|---:|---:|---:|---:|\n\
         | {DLV3} | 81.00 ± 2.65 | 77.00 ± 0.00 | 71.00 ± 1.00 | 81.00 ± 2.65 | 3 | 74.43 to 87.57 |\n\
         | {FCN320} | 77.44 | 75.37 | 68.72 | 77.44 | 1 | - |\n\
         | {FCN256} | 73.82 | 68.77 | 65.44 | 73.82 | 1 | - |\n\
         \n\
         95% CI: Student's t interval of the mean over the row's runs (seeds, folds).\n"
    );
    assert_eq!(out, expected);
}

#[test]
fn no_n_column_without_repeated_seeds() {
    let only_single: Vec<JobRow> = rows().into_iter().filter(|r| r.label != DLV3).collect();
    let out = render(&only_single, &opts(Format::Markdown)).unwrap();
    assert!(
        out.starts_with("| Model | mDice | mAccuracy | mIoU | mFscore |\n"),
        "{out}"
    );
}

#[test]
fn sort_by_class_metric_ascending_top_and_extra_columns() {
    let o = ReportOptions {
        sort: "Dice.1".into(),
        asc: true,
        columns: vec!["Dice.1".into(), "aAcc".into()],
        ..opts(Format::Markdown)
    };
    let out = render(&rows(), &o).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "| Model | mDice | mAccuracy | mIoU | mFscore | Dice.1 | aAcc | n | Dice.1 95% CI |"
    );
    // Dice.1: FCN256 50 < DLV3 mean (59+60+64)/3 = 61 < FCN320 62.
    assert!(lines[2].starts_with(&format!("| {FCN256} |")), "{out}");
    assert!(lines[3].starts_with(&format!("| {DLV3} |")), "{out}");
    assert!(
        lines[3].contains("| 61.00 ± 2.65 | 99.10 ± 0.00 | 3 | 54.43 to 67.57 |"),
        "{out}"
    );
    assert!(lines[4].starts_with(&format!("| {FCN320} |")), "{out}");

    let top = ReportOptions {
        sort: "Dice.1".into(),
        top: Some(1),
        ..opts(Format::Markdown)
    };
    let out = render(&rows(), &top).unwrap();
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.contains(FCN320));
}

#[test]
fn all_adds_status_and_puts_jobs_without_metrics_last() {
    let o = ReportOptions {
        all: true,
        ..opts(Format::Markdown)
    };
    let out = render(&rows(), &o).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    // A job with an error adds the Reason column, empty for the others; it is text, so it
    // is left-aligned like the labels.
    assert_eq!(
        lines[0],
        "| Model | Status | mDice | mAccuracy | mIoU | mFscore | n | mDice 95% CI | Reason |"
    );
    assert_eq!(lines[1], "|---|---|---:|---:|---:|---:|---:|---:|---|");
    assert_eq!(
        lines[5],
        format!("| {PSP} | failed | - | - | - | - | 1 | - | exit code 3 |")
    );
    assert!(lines[2].ends_with("| 3 | 74.43 to 87.57 |  |"), "{out}");
    // Without `all`, the failed job is not shown.
    assert!(!render(&rows(), &opts(Format::Markdown))
        .unwrap()
        .contains(PSP));
}

#[test]
fn terminal_table_has_the_rows_in_order() {
    let out = render(&rows(), &opts(Format::Table)).unwrap();
    for h in ["Model", "mDice", "mAccuracy", "mIoU", "mFscore"] {
        assert!(out.contains(h), "{out}");
    }
    let pos = |s: &str| out.find(s).unwrap_or_else(|| panic!("{s} missing:\n{out}"));
    assert!(
        pos(DLV3) < pos(FCN320) && pos(FCN320) < pos(FCN256),
        "{out}"
    );
    assert!(out.contains("81.00 ± 2.65"));
    assert!(!out.contains("90.00"), "other sweep leaked in:\n{out}");
}

#[test]
fn csv_has_full_precision_and_quoted_labels() {
    let out = render(&rows(), &opts(Format::Csv)).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "sweep,job_ids,model,status,n,mDice,mDice_std,mAccuracy,mAccuracy_std,mIoU,mIoU_std,mFscore,mFscore_std,\
         mDice_ci95_lo,mDice_ci95_hi,indistinguishable,prob_best"
    );
    assert_eq!(lines.len(), 4);
    let dl = lines[1];
    assert!(
        dl.starts_with(&format!("dme,2;3;4,\"{DLV3}\",succeeded,3,81,")),
        "{dl}"
    );
    let after_label = dl.split_once("\",").unwrap().1;
    let std: f64 = after_label.split(',').nth(3).unwrap().parse().unwrap();
    assert!((std - 7f64.sqrt()).abs() < 1e-12, "{dl}");
    // A single run: empty std.
    assert!(
        lines[2].contains(",1,77.44,,75.37,,68.72,,77.44,"),
        "{}",
        lines[2]
    );
}

#[test]
fn json_carries_configs_runs_and_per_seed_values() {
    let out = render(&rows(), &opts(Format::Json)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 3);
    let g = &arr[0];
    assert_eq!(g["rank"], 1);
    assert_eq!(g["sweep"], "dme");
    assert_eq!(g["model"], DLV3);
    assert_eq!(g["status"], "succeeded");
    assert_eq!(g["n"], 3);
    assert_eq!(g["job_ids"], serde_json::json!([2, 3, 4]));
    assert_eq!(g["metrics"]["mDice"]["mean"], 81.0);
    assert!((g["metrics"]["mDice"]["std"].as_f64().unwrap() - 7f64.sqrt()).abs() < 1e-12);
    assert_eq!(
        g["metrics"]["mDice"]["values"],
        serde_json::json!([79.0, 80.0, 84.0])
    );
    assert_eq!(g["metrics"]["Dice.1"]["mean"], 61.0);
    assert_eq!(
        g["metrics"]["IoU.1"]["values"],
        serde_json::json!([29.5, 30.0, 32.0])
    );
    let runs = g["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[1]["seed"], 1);
    assert_eq!(runs[1]["config"]["model"], "dlv3");
    assert_eq!(runs[1]["metrics"]["val"]["Dice.1"], 60.0);
    assert_eq!(runs[2]["artifact_dir"], "/runs/4");
    // A single run has std null.
    assert!(arr[1]["metrics"]["mDice"]["std"].is_null());
    assert_eq!(
        arr[1]["metrics"]["mDice"]["values"],
        serde_json::json!([77.44])
    );
}

#[test]
fn unknown_sort_metric_lists_the_known_ones() {
    let o = ReportOptions {
        sort: "mDcie".into(),
        ..opts(Format::Table)
    };
    let msg = format!("{:#}", render(&rows(), &o).unwrap_err());
    assert!(
        msg.contains("mDcie") && msg.contains("mDice") && msg.contains("Dice.1"),
        "{msg}"
    );
}

#[test]
fn seed_in_label_is_dropped_from_the_grouped_row() {
    let mut rs: Vec<JobRow> = rows().into_iter().filter(|r| r.label == DLV3).collect();
    for r in &mut rs {
        r.label = format!("{DLV3}, seed {}", r.seed);
    }
    let out = render(&rs, &opts(Format::Markdown)).unwrap();
    assert!(out.contains(&format!("| {DLV3} | 81.00 ± 2.65 |")), "{out}");
}

#[test]
fn pictures_are_written_as_png_and_svg_with_their_labels() {
    let dir = tempfile::tempdir().unwrap();
    let run = |loss: Vec<(usize, f64)>| report::RunCurve {
        loss,
        ..Default::default()
    };
    let groups = [
        report::CurveGroup {
            label: FCN256.to_string(),
            data_set: "dme".into(),
            runs: vec![run(vec![(1, 0.9), (2, 0.7), (3, 0.6)])],
            ..Default::default()
        },
        report::CurveGroup {
            label: DLV3.to_string(),
            data_set: "dme".into(),
            runs: vec![
                run(vec![(1, 1.1), (2, f64::NAN), (3, 0.5)]),
                run(vec![(1, 1.0), (2, 0.8), (3, 0.4)]),
            ],
            ..Default::default()
        },
    ];
    let files = report::learning_curves(&groups, dir.path(), "curves").unwrap();
    assert_eq!(
        files,
        vec![dir.path().join("curves.png"), dir.path().join("curves.svg")]
    );
    let png = std::fs::read(&files[0]).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let svg = std::fs::read_to_string(&files[1]).unwrap();
    assert!(svg.contains("<svg"));
    assert!(svg.contains(FCN256) && svg.contains(&format!("{DLV3} (2 runs)")));
    assert!(svg.contains("iteration") && svg.contains("training loss"));

    let bar = |label: &str, values: Vec<f64>, mark| report::BoardRow {
        label: label.into(),
        mean: values.iter().sum::<f64>() / values.len() as f64,
        ci95: (values.len() > 1).then_some((76.0, 86.0)),
        values,
        mark,
    };
    let rows = [
        bar(DLV3, vec![78.0, 81.0, 84.0], report::BoardMark::Best),
        bar(FCN256, vec![77.44], report::BoardMark::Untested),
    ];
    let files = report::leaderboard_chart(&rows, "mDice", None, dir.path(), "board").unwrap();
    let svg = std::fs::read_to_string(&files[1]).unwrap();
    assert!(svg.contains(DLV3) && svg.contains(FCN256));
    assert!(svg.contains("81.00 [76.00, 86.00] (n=3)"), "{svg}");

    // An unwritable target names the path.
    let bad = dir.path().join("no-such-dir");
    let msg = format!("{:#}", report::learning_curves(&[], &bad, "x").unwrap_err());
    assert!(msg.contains("no-such-dir"), "{msg}");
}

#[tokio::test]
async fn report_from_the_store_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&dir.path().join("r.db")).await.unwrap();
    let sweep = store.upsert_sweep("dme", "dme.yaml", "").await.unwrap();
    let jobs: Vec<NewJob> = [(FCN256, 0u64, "a"), (DLV3, 0, "b"), (DLV3, 1, "b")]
        .iter()
        .enumerate()
        .map(|(i, &(label, seed, cfg))| NewJob {
            hash: format!("h{i}"),
            stage: None,
            label: label.into(),
            config_json: format!(r#"{{"cfg": "{cfg}", "iters": 10, "seed": {seed}}}"#),
            seed,
            depends_on: None,
            continues: false,
            classes: Vec::new(),
        })
        .collect();
    store.add_jobs(sweep, &jobs, 2).await.unwrap();
    let me = Owner::current();
    for dice in [70.0, 75.0, 78.0] {
        let c = store.claim_next(sweep, &me).await.unwrap().unwrap();
        store
            .record_curve(
                &c.fence(&me),
                &[
                    CurvePoint {
                        iteration: 1,
                        loss: 1.0,
                        lr: 0.01,
                        secs: 0.1,
                    },
                    CurvePoint {
                        iteration: 2,
                        loss: 0.5,
                        lr: 0.01,
                        secs: 0.1,
                    },
                ],
            )
            .await
            .unwrap();
        store
            .finish(
                &c.fence(&me),
                Finish::Succeeded {
                    metrics: metrics(&[("mDice", None, dice), ("mAcc", None, 60.0)]),
                    images: Vec::new(),
                    iterations: 10,
                    sweep_version: None,
                    data: None,
                },
            )
            .await
            .unwrap();
    }
    let out = report::report(store.as_ref(), &opts(Format::Markdown))
        .await
        .unwrap();
    // DLV3: 75, 78 -> mean 76.5, sample std sqrt(((-1.5)^2 + 1.5^2)/1) = 2.1213.
    assert!(
        out.contains(&format!(
            "| {DLV3} | 76.50 ± 2.12 | 60.00 ± 0.00 | - | - | 2 |"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("| {FCN256} | 70.00 | 60.00 | - | - | 1 |")),
        "{out}"
    );
    let files = report::write_plots(
        store.as_ref(),
        &opts(Format::Table),
        &dir.path().join("plots"),
        &report::pictures::NoOverlays,
    )
    .await
    .unwrap();
    let names: Vec<_> = files.iter().map(|f| f.file_name().unwrap()).collect();
    assert_eq!(
        names,
        [
            "curves.png",
            "curves.svg",
            "leaderboard.png",
            "leaderboard.svg",
            "anytime.png",
            "anytime.svg",
            "anytime.csv"
        ]
    );
    let curves = std::fs::read_to_string(&files[1]).unwrap();
    assert!(
        curves.contains(&format!("{DLV3} (2 runs)")),
        "seeds of a configuration are one group"
    );
    let board = std::fs::read_to_string(&files[3]).unwrap();
    assert!(board.contains(DLV3) && board.contains(FCN256), "{board}");
}

#[test]
fn columns_from_another_split_show_training_throughput() {
    // Two seeds of one config: throughput 10 and 14 img/s, data wait 1 % and 3 %.
    let with_train = |id: i64, seed: u64, dice: f64, ips: f64, wait: f64| {
        let mut m = metrics(&[("mDice", None, dice)]);
        for (name, value) in [("img_per_s", ips), ("data_wait", wait)] {
            m.push(MetricValue {
                split: "train".into(),
                name: name.into(),
                class: None,
                value,
            });
        }
        row("dme", id, FCN256, seed, "fcn", "succeeded", m)
    };
    let rows = vec![
        with_train(1, 0, 70.0, 10.0, 1.0),
        with_train(2, 1, 72.0, 14.0, 3.0),
    ];
    let out = render(
        &rows,
        &ReportOptions {
            columns: vec!["train:img_per_s".into(), "train:data_wait".into()],
            ..opts(Format::Csv)
        },
    )
    .unwrap();
    let header = out.lines().next().unwrap();
    assert!(header.contains("train:img_per_s"), "{out}");
    // mDice is read from val (71 = mean of 70, 72), the throughput from train (12, 2).
    let line = out.lines().nth(1).unwrap();
    // Cells after the quoted model label: status, n, then the metric columns.
    let after_label: Vec<&str> = line.rsplit('"').next().unwrap().split(',').collect();
    let headers: Vec<&str> = header.split(',').collect();
    let col = |name: &str| {
        let from_end = headers.len() - headers.iter().position(|h| *h == name).unwrap();
        after_label[after_label.len() - from_end]
    };
    let value = |name: &str| col(name).parse::<f64>().unwrap();
    assert_eq!(value("mDice"), 71.0, "{out}");
    assert_eq!(value("train:img_per_s"), 12.0, "{out}");
    assert_eq!(value("train:data_wait"), 2.0, "{out}");
}

#[test]
fn retired_jobs_only_with_all_and_never_averaged_with_current_ones() {
    let mut old = row(
        "dme",
        1,
        FCN256,
        0,
        "fcn",
        "succeeded",
        metrics(&[("mDice", None, 60.0)]),
    );
    old.retired = true;
    let new = row(
        "dme",
        2,
        FCN256,
        1,
        "fcn",
        "succeeded",
        metrics(&[("mDice", None, 70.0)]),
    );
    let rows = vec![old, new];
    let csv = |all: bool| {
        render(
            &rows,
            &ReportOptions {
                all,
                ..opts(Format::Csv)
            },
        )
        .unwrap()
    };
    let current = csv(false);
    assert_eq!(current.lines().count(), 2, "{current}");
    assert!(
        current.contains(",70,") && !current.contains(",60,"),
        "{current}"
    );
    let everything = csv(true);
    assert_eq!(everything.lines().count(), 3, "{everything}");
    assert!(everything.contains("succeeded (retired)"), "{everything}");
}

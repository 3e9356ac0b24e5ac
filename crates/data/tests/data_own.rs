//! Your own data: the shipped sets rewritten in nnU-Net v2's and MMSegmentation's own
//! layouts read exactly as the shipped ones, a generated multi-class set, and every kind
//! of bad input named (file, value, key or case) by `Dataset::open` and `sweep data check`.

use crate::layouts::{mmseg_chase, nnunet_dme};
use crate::util::data_root;
use image::{GrayImage, Luma};
use std::path::Path;
use sweep_core::dataset::DataSet;
use sweep_core::job::{DataConfig, FoldBy, SplitConfig};
use sweep_data::check::check;
use sweep_data::synthetic::Synthetic;
use sweep_data::Dataset;

fn open(root: &Path, split: SplitConfig) -> Dataset {
    Dataset::open(&DataConfig {
        root: root.to_path_buf(),
        split,
        ..DataConfig::default()
    })
    .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
}

fn fold(folds: u32, fold: u32) -> SplitConfig {
    SplitConfig::Fold {
        folds,
        fold,
        by: FoldBy::Subject,
    }
}

fn same_samples(a: &Dataset, b: &Dataset) {
    for (x, y) in [(&a.train, &b.train), (&a.val, &b.val)] {
        let (x, y) = (x.loaded().unwrap(), y.loaded().unwrap());
        assert_eq!(x.len(), y.len());
        for (s, t) in x.iter().zip(y) {
            assert_eq!(s, t, "{} differs from {}", s.name, t.name);
        }
    }
}

#[test]
fn an_nnunet_folder_of_the_shipped_dme_reads_exactly_as_the_shipped_set() {
    // Grouped CV cuts the same patients as the shipped set's, and reads the same pixels.
    let cv = nnunet_dme(&data_root(""), false);
    let ds = open(cv.path(), fold(5, 2));
    same_samples(&ds, &open(&data_root("dme"), fold(5, 2)));
    assert_eq!(ds.classes, ["background", "fluid"]);
    let d = nnunet_dme(&data_root(""), true);
    let e = Dataset::open(&DataConfig {
        root: d.path().to_path_buf(),
        ..DataConfig::default()
    })
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("splits_final.json: fold 0 cuts group(s) 1, 2, 3"),
        "{e}"
    );
    let report = check(cv.path()).unwrap();
    assert!(report.passed(), "{:?}", report.problems);
    assert_eq!((report.cases, report.groups, report.channels), (110, 10, 1));
    // The study split is by image, not by patient: as nnU-Net folds, that is refused.
    let report = check(d.path()).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(report.problems[0].contains("fold 0 cuts group(s) 1, 2, 3, 4, 5, 7, 8, 9, 10 in two"));
}

#[test]
fn chase_db1_in_mmsegs_layout_reads_exactly_as_the_shipped_set() {
    let d = mmseg_chase(&data_root(""));
    same_samples(
        &open(d.path(), SplitConfig::Study),
        &open(&data_root("chase_db1"), SplitConfig::Study),
    );
    same_samples(
        &open(d.path(), fold(5, 1)),
        &open(&data_root("chase_db1"), fold(5, 1)),
    );
    // The shipped description is MMSeg's field names in at most 10 lines.
    let shipped = std::fs::read_to_string(data_root("chase_db1").join("dataset.yaml")).unwrap();
    assert!(shipped.lines().count() <= 10, "{shipped}");
}

#[test]
fn the_shipped_sets_pass_the_check() {
    for (name, cases, groups) in [("dme", 110, 10), ("chase_db1", 28, 14)] {
        let r = check(&data_root(name)).unwrap();
        assert!(r.passed(), "{name}: {:?}", r.problems);
        assert_eq!((r.cases, r.groups), (cases, groups), "{name}");
        assert!(r.fingerprint.starts_with("sha256:"));
    }
    let r = check(&data_root("dme")).unwrap();
    // README: fluid is 0.83 % of the pixels, 32 of the 110 masks are empty.
    let all = &r.splits[0];
    assert!(
        (all.class_percent[1] - 0.83).abs() < 0.05,
        "{:?}",
        all.class_percent
    );
    assert_eq!(all.empty_masks, 32);
    assert_eq!(
        r.splits.iter().map(|s| s.cases).collect::<Vec<_>>(),
        [110, 88, 22]
    );
}

fn synthetic(cases: usize) -> (tempfile::TempDir, Synthetic) {
    let d = tempfile::tempdir().unwrap();
    let s = Synthetic {
        cases,
        size: 48,
        classes: vec!["IRF".into(), "SRF".into(), "PED".into()],
        per_group: 4,
        seed: 7,
    };
    s.write(d.path()).unwrap();
    (d, s)
}

#[test]
fn a_generated_multi_class_set_folds_by_patient_and_names_its_classes() {
    let (d, _) = synthetic(40);
    let r = check(d.path()).unwrap();
    assert!(r.passed(), "{:?}", r.problems);
    assert_eq!(r.classes, ["background", "IRF", "SRF", "PED"]);
    assert_eq!((r.cases, r.groups), (40, 10));
    assert!(
        r.splits[0].class_percent[1..].iter().all(|p| *p > 0.5),
        "{:?}",
        r.splits
    );
    let text = sweep_data::check::render(&r);
    assert!(text.contains("0 background, 1 IRF, 2 SRF, 3 PED"), "{text}");
    let data_set = DataSet::describe(d.path()).unwrap();
    for k in 0..5 {
        let ds = open(d.path(), fold(5, k));
        assert_eq!((ds.num_classes, ds.train_len(), ds.val_len()), (4, 32, 8));
        let group = |n: &str| data_set.group_of(n).unwrap();
        let val: Vec<String> = ds
            .val
            .loaded()
            .unwrap()
            .iter()
            .map(|s| group(&s.name))
            .collect();
        assert!(
            ds.train
                .loaded()
                .unwrap()
                .iter()
                .all(|s| !val.contains(&group(&s.name))),
            "fold {k}"
        );
        assert!(ds
            .train
            .loaded()
            .unwrap()
            .iter()
            .chain(ds.val.loaded().unwrap())
            .all(|s| s.label.iter().all(|v| *v < 4)));
    }
}

// ---- bad input: one message naming the file (and value, key or case) ----

fn write_gray(path: &Path, w: u32, h: u32, v: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    GrayImage::from_pixel(w, h, Luma([v])).save(path).unwrap();
}

/// A two-class nnU-Net folder of `n` 8 x 8 cases (labels 0 / 1), `json` merged over the
/// generated `dataset.json`.
fn tiny_nnunet(n: usize, json: serde_json::Value) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for k in 0..n {
        write_gray(&d.path().join(format!("imagesTr/c{k}_0000.png")), 8, 8, 100);
        write_gray(
            &d.path().join(format!("labelsTr/c{k}.png")),
            8,
            8,
            (k % 2) as u8,
        );
    }
    let mut base = serde_json::json!({
        "channel_names": {"0": "OCT"},
        "labels": {"background": 0, "fluid": 1},
        "numTraining": n,
        "file_ending": ".png",
    });
    for (k, v) in json.as_object().unwrap() {
        base[k] = v.clone();
    }
    std::fs::write(d.path().join("dataset.json"), base.to_string()).unwrap();
    d
}

/// The first problem `sweep data check` reports, and `Dataset::open`'s error (5-fold CV).
fn problems(root: &Path) -> (String, String) {
    let r = check(root)
        .map(|r| r.problems.join("\n"))
        .unwrap_or_else(|e| e.to_string());
    let open = Dataset::open(&DataConfig {
        root: root.to_path_buf(),
        split: fold(2, 0),
        ..DataConfig::default()
    })
    .map(|_| String::from("opened"))
    .unwrap_or_else(|e| e.to_string());
    (r, open)
}

fn assert_named(root: &Path, want: &[&str]) {
    let (check, open) = problems(root);
    for w in want {
        assert!(check.contains(w), "check: {check}\nwants: {w}");
        assert!(open.contains(w), "open: {open}\nwants: {w}");
    }
}

#[test]
fn a_0_255_mask_without_label_values_names_the_file_and_the_fix() {
    let d = tiny_nnunet(4, serde_json::json!({}));
    write_gray(&d.path().join("labelsTr/c3.png"), 8, 8, 255);
    assert_named(
        d.path(),
        &["labelsTr/c3.png: values {255}, the data set declares {0, 1}; add label_values: {255: 1}"],
    );
}

#[test]
fn label_values_outside_the_declared_ids_are_named() {
    let d = tiny_nnunet(4, serde_json::json!({}));
    write_gray(&d.path().join("labelsTr/c2.png"), 8, 8, 3);
    assert_named(
        d.path(),
        &["labelsTr/c2.png: values {3}, the data set declares {0, 1}"],
    );
}

#[test]
fn an_image_without_a_label_and_a_label_without_an_image_are_named() {
    let d = tiny_nnunet(4, serde_json::json!({}));
    std::fs::remove_file(d.path().join("labelsTr/c1.png")).unwrap();
    assert_named(
        d.path(),
        &["case \"c1\" has no label", "labelsTr/c1.png not found"],
    );
    let d = tiny_nnunet(4, serde_json::json!({}));
    write_gray(&d.path().join("labelsTr/stray.png"), 8, 8, 0);
    assert_named(d.path(), &["labelsTr/stray.png: a label with no image"]);
}

#[test]
fn a_label_of_another_size_is_named() {
    let d = tiny_nnunet(4, serde_json::json!({}));
    write_gray(&d.path().join("labelsTr/c0.png"), 8, 6, 0);
    let (check, open) = problems(d.path());
    assert!(
        check.contains("labelsTr/c0.png: the label is 8x6 but its image")
            && check.contains("is 8x8"),
        "{check}"
    );
    assert!(
        open.contains("imagesTr/c0_0000.png is 8x8 but its mask") && open.contains("8x6"),
        "{open}"
    );
}

#[test]
fn a_lossy_label_format_is_refused() {
    let d = tiny_nnunet(2, serde_json::json!({"file_ending": ".jpg"}));
    assert_named(
        d.path(),
        &["`file_ending`: .jpg: label files must be lossless"],
    );
}

#[test]
fn a_missing_channel_file_is_named() {
    let d = tiny_nnunet(
        3,
        serde_json::json!({"channel_names": {"0": "T1", "1": "T2"}}),
    );
    for k in [0, 2] {
        write_gray(&d.path().join(format!("imagesTr/c{k}_0001.png")), 8, 8, 9);
    }
    assert_named(
        d.path(),
        &["case \"c1\": channel file(s) missing: c1_0001.png"],
    );
}

#[test]
fn a_missing_or_mistyped_dataset_json_key_is_named() {
    let d = tiny_nnunet(2, serde_json::json!({}));
    let path = d.path().join("dataset.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    json.as_object_mut().unwrap().remove("file_ending");
    std::fs::write(&path, json.to_string()).unwrap();
    assert_named(
        d.path(),
        &["dataset.json: the key `file_ending` is missing"],
    );
    json["file_ending"] = ".png".into();
    json["numTraining"] = "2".into();
    std::fs::write(&path, json.to_string()).unwrap();
    assert_named(
        d.path(),
        &["dataset.json: `numTraining`: invalid type: string \"2\""],
    );
    json["numTraining"] = 3.into();
    std::fs::write(&path, json.to_string()).unwrap();
    let (check, _) = problems(d.path());
    assert!(
        check.contains("`numTraining`: 3, but imagesTr and labelsTr hold 2 cases"),
        "{check}"
    );
}

#[test]
fn a_splits_final_fold_that_cuts_a_patient_is_refused() {
    let d = tiny_nnunet(
        4,
        serde_json::json!({"sweep": {"groups": {"c0": "p1", "c1": "p1", "c2": "p2", "c3": "p2"}}}),
    );
    std::fs::write(
        d.path().join("splits_final.json"),
        r#"[{"train": ["c0", "c2"], "val": ["c1", "c3"]}]"#,
    )
    .unwrap();
    let (check, _) = problems(d.path());
    assert!(
        check.contains("splits_final.json: fold 0 cuts group(s) p1, p2 in two"),
        "{check}"
    );
    assert!(!sweep_data::check::check(d.path()).unwrap().passed());
}

#[test]
fn a_case_without_a_group_is_named_when_groups_are_given() {
    let d = tiny_nnunet(
        4,
        serde_json::json!({"sweep": {"groups": "c(?P<group>[012])"}}),
    );
    assert_named(d.path(), &["groups: 1 case(s) have no group (c3)"]);
}

#[test]
fn two_cases_with_one_id_are_named() {
    let d = tempfile::tempdir().unwrap();
    for split in ["train", "val"] {
        write_gray(&d.path().join(format!("{split}/img/a.png")), 8, 8, 1);
        write_gray(&d.path().join(format!("{split}/lab/a.png")), 8, 8, 0);
    }
    std::fs::write(
        d.path().join("dataset.yaml"),
        "classes: [background, x]\nimg_suffix: .png\n\
         train: {img_path: train/img, seg_map_path: train/lab}\n\
         val: {img_path: val/img, seg_map_path: val/lab}\n",
    )
    .unwrap();
    assert_named(
        d.path(),
        &["val/img/a.png: case \"a\": two cases with one id"],
    );
}

#[test]
fn an_unknown_dataset_yaml_key_is_named_with_a_suggestion() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("dataset.yaml"),
        "classes: [background, x]\ntrain: {img_path: a, seg_map_path: b}\nreduce_zero_lable: true\n",
    )
    .unwrap();
    let e = DataSet::describe(d.path()).unwrap_err().to_string();
    assert!(
        e.contains("dataset.yaml: `reduce_zero_lable`: unknown key")
            && e.contains("did you mean \"reduce_zero_label\""),
        "{e}"
    );
}

#[test]
fn the_same_cases_in_train_and_val_are_allowed_and_noted() {
    let d = tempfile::tempdir().unwrap();
    for k in 0..2 {
        write_gray(&d.path().join(format!("img/c{k}.png")), 8, 8, 1);
        write_gray(&d.path().join(format!("lab/c{k}.png")), 8, 8, k);
    }
    std::fs::write(d.path().join("all.txt"), "c0\nc1\n").unwrap();
    std::fs::write(
        d.path().join("dataset.yaml"),
        "classes: [background, x]\nimg_suffix: .png\n\
         train: {img_path: img, seg_map_path: lab, ann_file: all.txt}\n\
         val: {img_path: img, seg_map_path: lab, ann_file: all.txt}\n",
    )
    .unwrap();
    let r = check(d.path()).unwrap();
    assert!(r.passed(), "{:?}", r.problems);
    assert!(
        r.notes
            .iter()
            .any(|n| n.starts_with("2 case(s) are in both")),
        "{:?}",
        r.notes
    );
    let ds = open(d.path(), SplitConfig::Study);
    assert_eq!((ds.train_len(), ds.val_len()), (2, 2));
}

#[test]
fn an_ignore_label_is_neither_a_class_nor_an_error() {
    // `sweep.ignore` (either layout's settings), nnU-Net's `ignore` label: the same thing.
    for json in [
        serde_json::json!({"sweep": {"ignore": 9}}),
        serde_json::json!({"labels": {"background": 0, "fluid": 1, "ignore": 2}}),
    ] {
        let d = tiny_nnunet(4, json.clone());
        let v = json["sweep"]["ignore"].as_u64().unwrap_or(2) as u8;
        write_gray(&d.path().join("labelsTr/c0.png"), 8, 8, v);
        let ds = open(d.path(), fold(2, 0));
        let all: Vec<&sweep_data::Sample> = ds
            .train
            .loaded()
            .unwrap()
            .iter()
            .chain(ds.val.loaded().unwrap())
            .collect();
        let c0 = all.iter().find(|s| s.name == "c0").unwrap();
        assert_eq!(c0.label, vec![255u8; 64], "{json}");
        assert_eq!(ds.num_classes, 2);
    }
    let d = tiny_nnunet(
        4,
        serde_json::json!({"labels": {"background": 0, "fluid": 1, "ignore": 2}, "sweep": {"ignore": 9}}),
    );
    let e = DataSet::describe(d.path()).unwrap_err().to_string();
    assert!(
        e.contains("`sweep.ignore`: 9, but `labels.ignore` says 2"),
        "{e}"
    );
}

//! Patient-level cross-validation (`data.split: {fold: {folds, fold, by: subject}}`):
//! folds hold whole patients, every image is validated exactly once, the assignment is
//! the documented one and deterministic, and bad fold settings are named.

use crate::util::data_root;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use sweep_core::dataset::{DataSet, DataSetError};
use sweep_core::job::{DataConfig, FoldBy, SplitConfig};
use sweep_data::{DataError, Dataset};

/// The shipped data sets, by their short names.
#[derive(Clone, Copy)]
enum DatasetName {
    Dme,
    ChaseDb1,
}

impl DatasetName {
    fn name(self) -> &'static str {
        match self {
            DatasetName::Dme => "dme",
            DatasetName::ChaseDb1 => "chase_db1",
        }
    }
}

/// The data set's groups (patients), as numbers, in order.
fn subjects(_: DatasetName, root: &Path) -> Result<Vec<u32>, DataSetError> {
    let groups = DataSet::describe(root)?.group_names();
    Ok(groups.iter().map(|g| g.parse().unwrap()).collect())
}

/// The val groups of each fold, as numbers.
fn cv_folds(_: DatasetName, root: &Path, folds: u32) -> Result<Vec<Vec<u32>>, DataSetError> {
    let folds = DataSet::describe(root)?.folds(folds)?;
    Ok(folds
        .iter()
        .map(|f| f.iter().map(|g| g.parse().unwrap()).collect())
        .collect())
}

fn fold(folds: u32, fold: u32) -> SplitConfig {
    SplitConfig::Fold {
        folds,
        fold,
        by: FoldBy::Subject,
    }
}

fn config(dataset: DatasetName, split: SplitConfig) -> DataConfig {
    DataConfig {
        dataset: dataset.name().into(),
        root: data_root(dataset.name()),
        split,
        ..DataConfig::default()
    }
}

/// The subject an image belongs to: DME `img_K` -> `K / 11 + 1`, CHASE_DB1 `Image_NNX` -> NN.
fn subject_of(dataset: DatasetName, name: &str) -> u32 {
    match dataset {
        DatasetName::Dme => name["img_".len()..].parse::<u32>().unwrap() / 11 + 1,
        DatasetName::ChaseDb1 => name["Image_".len()..][..2].parse().unwrap(),
    }
}

fn subjects_of(dataset: DatasetName, names: &[String]) -> BTreeSet<u32> {
    names.iter().map(|n| subject_of(dataset, n)).collect()
}

/// Opens every fold of a `folds`-fold cross-validation and checks that each fold's train
/// and val hold disjoint whole patients, that its val patients are `cv_folds`'s, and that
/// the val sets cover every image of the data set exactly once.
fn check_cover(dataset: DatasetName, folds: u32, images: usize) {
    let groups = cv_folds(dataset, &data_root(dataset.name()), folds).unwrap();
    assert_eq!(groups.len(), folds as usize);
    let mut validated: BTreeMap<String, usize> = BTreeMap::new();
    for k in 0..folds {
        let ds = Dataset::open(&config(dataset, fold(folds, k))).unwrap();
        let train: Vec<String> = ds
            .train
            .loaded()
            .unwrap()
            .iter()
            .map(|s| s.name.clone())
            .collect();
        let val: Vec<String> = ds
            .val
            .loaded()
            .unwrap()
            .iter()
            .map(|s| s.name.clone())
            .collect();
        let (ts, vs) = (subjects_of(dataset, &train), subjects_of(dataset, &val));
        assert!(ts.is_disjoint(&vs), "fold {k}: train {ts:?} val {vs:?}");
        assert_eq!(vs, groups[k as usize].iter().copied().collect());
        assert_eq!(train.len() + val.len(), images, "fold {k} uses every image");
        for n in val {
            *validated.entry(n).or_default() += 1;
        }
    }
    assert_eq!(validated.len(), images, "every image is validated");
    assert!(validated.values().all(|&n| n == 1), "{validated:?}");
}

#[test]
fn dme_five_folds_are_contiguous_pairs_of_patients() {
    let root = data_root("dme");
    assert_eq!(
        subjects(DatasetName::Dme, &root).unwrap(),
        (1..=10).collect::<Vec<_>>()
    );
    let five = cv_folds(DatasetName::Dme, &root, 5).unwrap();
    assert_eq!(
        five,
        vec![vec![1, 2], vec![3, 4], vec![5, 6], vec![7, 8], vec![9, 10]]
    );
    // 10 % 3 = 1: the first fold has one subject more (scikit-learn's KFold).
    let three = cv_folds(DatasetName::Dme, &root, 3).unwrap();
    assert_eq!(three, vec![vec![1, 2, 3, 4], vec![5, 6, 7], vec![8, 9, 10]]);
    let four = cv_folds(DatasetName::Dme, &root, 4).unwrap();
    assert_eq!(
        four,
        vec![vec![1, 2, 3], vec![4, 5, 6], vec![7, 8], vec![9, 10]]
    );
    // The full-size layout has the same patients.
    assert_eq!(
        cv_folds(DatasetName::Dme, &root.join("full"), 5).unwrap(),
        five
    );
}

#[test]
fn dme_folds_hold_whole_patients_and_validate_every_scan_once() {
    for folds in [2, 3, 5, 10] {
        check_cover(DatasetName::Dme, folds, 110);
    }
    // Fold 2 of 5 validates on subjects 5 and 6: img_44 .. img_65, in order.
    let ds = Dataset::open(&config(DatasetName::Dme, fold(5, 2))).unwrap();
    assert_eq!((ds.train_len(), ds.val_len()), (88, 22));
    assert_eq!(ds.val.loaded().unwrap()[0].name, "img_44");
    assert_eq!(ds.val.loaded().unwrap()[21].name, "img_65");
    assert_eq!(ds.train.loaded().unwrap()[0].name, "img_0");
}

#[test]
fn chase_db1_folds_hold_whole_children() {
    let root = data_root("chase_db1");
    assert_eq!(
        subjects(DatasetName::ChaseDb1, &root).unwrap(),
        (1..=14).collect::<Vec<_>>()
    );
    // 14 children in 5 folds: 14 % 5 = 4 folds of 3, then one of 2.
    assert_eq!(
        cv_folds(DatasetName::ChaseDb1, &root, 5).unwrap(),
        vec![
            vec![1, 2, 3],
            vec![4, 5, 6],
            vec![7, 8, 9],
            vec![10, 11, 12],
            vec![13, 14]
        ]
    );
    check_cover(DatasetName::ChaseDb1, 5, 28);
}

#[test]
fn folds_are_deterministic() {
    let root = data_root("dme");
    assert_eq!(
        cv_folds(DatasetName::Dme, &root, 5).unwrap(),
        cv_folds(DatasetName::Dme, &root, 5).unwrap()
    );
    let names = |ds: Dataset| -> Vec<String> {
        ds.train
            .loaded()
            .unwrap()
            .iter()
            .chain(ds.val.loaded().unwrap())
            .map(|s| s.name.clone())
            .collect()
    };
    let cfg = config(DatasetName::Dme, fold(5, 3));
    assert_eq!(
        names(Dataset::open(&cfg).unwrap()),
        names(Dataset::open(&cfg).unwrap())
    );
}

/// A DME layout with one 4 x 4 scan for each of `subjects` (`img_{11 (s - 1)}`), described
/// as the shipped one is (groups from the same subjects table).
fn tiny_dme(subjects: &[u32]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::copy(
        data_root("dme").join("subjects.csv"),
        d.path().join("subjects.csv"),
    )
    .unwrap();
    std::fs::write(
        d.path().join("dataset.yaml"),
        "classes: [background, fluid]\nimg_suffix: .png\n\
         train: {img_path: 256/images, seg_map_path: 256/masks}\ngroups: {file: subjects.csv}\n",
    )
    .unwrap();
    for dir in ["256/images", "256/masks"] {
        std::fs::create_dir_all(d.path().join(dir)).unwrap();
        for s in subjects {
            let img = image::GrayImage::from_pixel(4, 4, image::Luma([0]));
            img.save(d.path().join(dir).join(format!("img_{}.png", 11 * (s - 1))))
                .unwrap();
        }
    }
    d
}

#[test]
fn uneven_folds_give_the_first_ones_an_extra_subject() {
    // Subjects 2, 3, 5, 6, 8, 9, 10 (7 of them): 7 % 3 = 1, sizes 3, 2, 2, sorted order.
    let d = tiny_dme(&[10, 2, 9, 3, 8, 5, 6]);
    assert_eq!(
        cv_folds(DatasetName::Dme, d.path(), 3).unwrap(),
        vec![vec![2, 3, 5], vec![6, 8], vec![9, 10]]
    );
    let cfg = DataConfig {
        root: d.path().to_path_buf(),
        split: fold(3, 1),
        ..DataConfig::default()
    };
    let ds = Dataset::open(&cfg).unwrap();
    let val: Vec<&str> = ds
        .val
        .loaded()
        .unwrap()
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(val, ["img_55", "img_77"]);
    assert_eq!(ds.train_len(), 5);
}

fn message(e: impl Into<DataError>) -> String {
    let e = e.into();
    assert!(matches!(e, DataError::DataSet(_)), "{e:?}");
    e.to_string()
}

#[test]
fn bad_folds_are_named() {
    let root = data_root("dme");
    let images = root.join("dataset.yaml");
    let open_err = |split| message(Dataset::open(&config(DatasetName::Dme, split)).unwrap_err());
    assert_eq!(
        open_err(fold(11, 0)),
        format!(
            "{}: data.split.fold.folds: 11 folds but the data set has 10 groups (each fold validates on at least one)",
            images.display()
        )
    );
    assert_eq!(
        open_err(fold(1, 0)),
        format!(
            "{}: data.split.fold.folds: 1 fold(s): cross-validation needs at least 2",
            images.display()
        )
    );
    assert_eq!(
        open_err(fold(5, 5)),
        format!(
            "{}: data.split.fold.fold: 5 is not one of the 5 folds",
            images.display()
        )
    );
    let chase = data_root("chase_db1");
    let e = message(cv_folds(DatasetName::ChaseDb1, &chase, 15).unwrap_err());
    assert!(
        e.ends_with("data.split.fold.folds: 15 folds but the data set has 14 groups (each fold validates on at least one)"),
        "{e}"
    );
    let e = message(cv_folds(DatasetName::Dme, &root, 0).unwrap_err());
    assert!(e.contains("data.split.fold.folds: 0 fold(s)"), "{e}");
    // No folder: its missing description is named.
    let missing = cv_folds(DatasetName::Dme, Path::new("/nonexistent/dme"), 5).unwrap_err();
    assert!(
        missing
            .to_string()
            .starts_with("/nonexistent/dme: no data set description"),
        "{missing}"
    );
}

#[test]
fn preflight_rejects_more_folds_than_patients_before_anything_runs() {
    // Planning cannot know the data set's patients; `check_datasets` opens it first.
    let text = format!(
        "name: t\ndata: {{dataset: dme, root: {:?}}}\ncv: {{folds: 11}}\n",
        data_root("dme").display().to_string()
    );
    let spec = sweep_core::sweepfile::parse(Path::new("t.yaml"), &text, &[]).unwrap();
    let jobs = spec.plan().unwrap();
    assert_eq!(jobs.len(), 11);
    let e = format!("{:#}", sweep_data::check_datasets(&jobs).unwrap_err());
    assert!(
        e.contains("(UNet + FCN, crop 256, 200 it, ce, fold 1/11): data set: ")
            && e.ends_with("data.split.fold.folds: 11 folds but the data set has 10 groups (each fold validates on at least one)"),
        "{e}"
    );
}

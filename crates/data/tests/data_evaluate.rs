//! `sweep evaluate`'s scoring of another program's predictions: the numbers by hand on a
//! 4x3 three-class set with an ignored pixel, and every bad input in one message.

use image::GrayImage;
use std::path::Path;
use sweep_core::dataset::DataSet;
use sweep_core::job::SplitConfig;
use sweep_core::metrics::per_image::DistanceScale;
use sweep_data::evaluate::score_folder;

const W: u32 = 4;
const H: u32 = 3;

fn gray(path: &Path, w: u32, h: u32, v: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    GrayImage::from_raw(w, h, v.to_vec())
        .unwrap()
        .save(path)
        .unwrap();
}

/// Labels of the val cases; the first has pixel (0, 2) ignored (255).
const V1: [u8; 12] = [0, 0, 1, 1, 0, 2, 2, 1, 255, 0, 0, 0];
const V2: [u8; 12] = [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
/// Predictions of them.
const P1: [u8; 12] = [0, 1, 1, 1, 0, 2, 0, 1, 2, 0, 0, 0];
const P2: [u8; 12] = [0; 12];

/// An MMSeg-layout set, classes background, a, b; cases t1 (train), v1 and v2 (val).
fn data_set() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("dataset.yaml"),
        "classes: [background, a, b]\nimg_suffix: .png\nignore_index: 255\n\
         train: {img_path: img/train, seg_map_path: lab/train}\n\
         val: {img_path: img/val, seg_map_path: lab/val}\n",
    )
    .unwrap();
    for (split, case, label) in [("train", "t1", V2), ("val", "v1", V1), ("val", "v2", V2)] {
        let p = |kind: &str| d.path().join(format!("{kind}/{split}/{case}.png"));
        gray(&p("img"), W, H, &[100; 12]);
        gray(&p("lab"), W, H, &label);
    }
    d
}

fn predictions(dir: &Path) {
    gray(&dir.join("v1.png"), W, H, &P1);
    gray(&dir.join("v2.png"), W, H, &P2);
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn a_folder_scores_as_hand_computed() {
    let data = data_set();
    let ds = DataSet::describe(data.path()).unwrap();
    let preds = tempfile::tempdir().unwrap();
    predictions(preds.path());
    std::fs::write(preds.path().join("summary.json"), "{}").unwrap();
    let scale = DistanceScale::new(None);
    let s = score_folder(&ds, &SplitConfig::Study, preds.path(), scale).unwrap();
    // Over both images, the ignored pixel left out: I = [16, 3, 1], P = [18, 4, 1],
    // G = [17, 4, 2].
    assert_eq!(s.metrics.intersect, [16, 3, 1]);
    assert_eq!(s.metrics.pred, [18, 4, 1]);
    assert_eq!(s.metrics.label, [17, 4, 2]);
    let dice = [3200.0 / 35.0, 75.0, 200.0 / 3.0];
    assert!(close(s.metrics.dice()[0], dice[0]) && close(s.metrics.dice()[2], dice[2]));
    assert!(close(s.metrics.mdice(), dice.iter().sum::<f64>() / 3.0));
    assert!(close(s.metrics.miou(), (1600.0 / 19.0 + 60.0 + 50.0) / 3.0));
    assert!(close(s.metrics.aacc(), 2000.0 / 23.0));
    assert_eq!(
        (s.cases, s.not_scored.clone()),
        (2, vec!["summary.json".to_string()])
    );
    // Per image: class 1 of v2 is missed (Dice 0), class 2 is in neither mask (left out).
    let values = s.values();
    let get = |n: &str, c: usize| values.iter().find(|m| m.name == n && m.class == Some(c));
    assert!(close(get("imgDice", 1).unwrap().value, 600.0 / 7.0 / 2.0));
    assert!(close(get("imgDice", 2).unwrap().value, 200.0 / 3.0));
    assert_eq!(s.images.len(), 6);
    // The content hash follows the predictions, the fingerprint the validation files.
    gray(&preds.path().join("v2.png"), W, H, &V2);
    let t = score_folder(&ds, &SplitConfig::Study, preds.path(), scale).unwrap();
    assert_ne!(s.content, t.content);
    assert_eq!(s.val_fingerprint, t.val_fingerprint);
}

#[test]
fn bad_predictions_are_one_message_naming_each_file() {
    let data = data_set();
    let ds = DataSet::describe(data.path()).unwrap();
    let scale = DistanceScale::new(None);
    let err = |dir: &Path| {
        let e = score_folder(&ds, &SplitConfig::Study, dir, scale).unwrap_err();
        format!("{e:#}")
    };
    let preds = tempfile::tempdir().unwrap();
    let (v1, v2) = (preds.path().join("v1.png"), preds.path().join("v2.png"));
    gray(&v1, W, H, &P1);
    let e = err(preds.path());
    assert!(
        e.contains("no prediction for 1 of the split's 2 case(s)")
            && e.contains(&v2.display().to_string()),
        "{e}"
    );
    gray(&v2, H, W, &P2);
    let e = err(preds.path());
    assert!(
        e.contains(&format!(
            "{} is 3x4, but the label of case v2",
            v2.display()
        )),
        "{e}"
    );
    gray(&v2, W, H, &[7; 12]);
    let e = err(preds.path());
    assert!(
        e.contains("values {7}, but the class ids of")
            && e.contains("are 0 to 2 (background, a, b)"),
        "{e}"
    );
    std::fs::write(&v2, b"not an image").unwrap();
    std::fs::write(preds.path().join("v1.tif"), b"").unwrap();
    let e = err(preds.path());
    assert!(e.starts_with("2 problems with the predictions in"), "{e}");
    assert!(
        e.contains(&format!("{}: cannot decode as an image", v2.display())),
        "{e}"
    );
    assert!(e.contains("v1.tif: a second prediction of case v1"), "{e}");
    assert!(e.contains("nothing was recorded"), "{e}");
}

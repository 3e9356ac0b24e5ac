//! The shipped data sets rewritten in other tools' layouts, for the tests that check that
//! `sweep` reads them exactly as the shipped ones (shared by sweep-data's tests and the
//! binary's, which include this file). `data` is the workspace's `data/` folder.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The shipped DME files rewritten as an nnU-Net v2 raw folder: `imagesTr/img_K_0000.png`,
/// `labelsTr/img_K.png` saved as 0 / 255 (as such masks usually arrive), a `dataset.json`
/// with the keys nnU-Net's `generate_dataset_json` writes plus `sweep`'s settings, and
/// (with `study_split`) the study split as a one-fold `splits_final.json`.
pub fn nnunet_dme(data: &Path, study_split: bool) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let (src, dst) = (data.join("dme"), d.path());
    std::fs::create_dir_all(dst.join("imagesTr")).unwrap();
    std::fs::create_dir_all(dst.join("labelsTr")).unwrap();
    for k in 0..110 {
        std::fs::copy(
            src.join(format!("256/images/img_{k}.png")),
            dst.join(format!("imagesTr/img_{k}_0000.png")),
        )
        .unwrap();
        let mut mask = image::open(src.join(format!("256/masks/img_{k}.png")))
            .unwrap()
            .into_luma8();
        mask.pixels_mut().for_each(|p| p.0[0] *= 255);
        mask.save(dst.join(format!("labelsTr/img_{k}.png")))
            .unwrap();
    }
    std::fs::copy(src.join("subjects.csv"), dst.join("subjects.csv")).unwrap();
    let json = serde_json::json!({
        "channel_names": {"0": "OCT"},
        "labels": {"background": 0, "fluid": 1},
        "numTraining": 110,
        "file_ending": ".png",
        "name": "Dataset501_DME",
        "licence": "CC0-1.0",
        "converted_by": "sweep's tests",
        "sweep": {"label_values": {"255": 1}, "groups": {"file": "subjects.csv"}},
    });
    std::fs::write(
        dst.join("dataset.json"),
        serde_json::to_string_pretty(&json).unwrap(),
    )
    .unwrap();
    if study_split {
        let split = serde_json::json!([{
            "train": lines(&src.join("splits/train.txt")),
            "val": lines(&src.join("splits/val.txt")),
        }]);
        std::fs::write(dst.join("splits_final.json"), split.to_string()).unwrap();
    }
    d
}

/// CHASE_DB1 in MMSegmentation's folder layout (`images/{training,validation}`,
/// `annotations/...` with the `_1stHO.png` masks), the shipped files linked.
pub fn mmseg_chase(data: &Path) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let src = data.join("chase_db1");
    for (split, children) in [("training", 1..=10), ("validation", 11..=14)] {
        for kind in ["images", "annotations"] {
            std::fs::create_dir_all(d.path().join(kind).join(split)).unwrap();
        }
        for child in children {
            for eye in ["L", "R"] {
                let stem = format!("Image_{child:02}{eye}");
                let link = |from: PathBuf, kind: &str, name: String| {
                    std::os::unix::fs::symlink(from, d.path().join(kind).join(split).join(name))
                        .unwrap()
                };
                link(
                    src.join(format!("images/{stem}.jpg")),
                    "images",
                    format!("{stem}.jpg"),
                );
                let mask = format!("{stem}_1stHO.png");
                link(src.join("1st_manual").join(&mask), "annotations", mask);
            }
        }
    }
    std::fs::write(
        d.path().join("dataset.yaml"),
        "classes: [background, vessel]\n\
         seg_map_suffix: _1stHO.png\n\
         label_values: {255: 1}\n\
         train: {data_prefix: {img_path: images/training, seg_map_path: annotations/training}}\n\
         val: {data_prefix: {img_path: images/validation, seg_map_path: annotations/validation}}\n\
         groups: 'Image_(\\d+)[LR]'\n",
    )
    .unwrap();
    d
}

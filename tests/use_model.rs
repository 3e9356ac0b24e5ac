//! Using the model a sweep found: `sweep predict` on a job's own validation images
//! reproduces the per-image counts the job recorded; a configuration's seeds predict as an
//! ensemble; `sweep export` writes a package that predicts the same with no database and no
//! runs folder, whose safetensors initialise a job to the same scores; and bad input (an
//! unreadable image, an edited or missing package file, a label naming no job) is named.

use crate::util::{stderr_of, Sandbox};
use image::GenericImageView;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

const DME: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/dme");
const LABEL: &str = "UNet + FCN, crop 32, 3 it, ce";

/// Two seeds of a tiny model on four DME validation images, sliding-window evaluation.
fn trained(sb: &Sandbox, seeds: &str) {
    let file = sb.write_sweep(&format!(
        "name: tiny\ndata: {{dataset: dme, root: {DME}, limit_val: 4}}\n\
         base:\n  model: {{base_channels: 4, aux_head: false}}\n  crop: 32\n  batch: 2\n  iters: 3\n\
         \x20 eval: {{mode: slide, crop: 64, stride: 48, save_predictions: true}}\nseeds: {seeds}\n"
    ));
    let out = sb.run(&file, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
}

fn sweep(sb: &Sandbox, args: &[&str]) -> Output {
    let db = sb.db();
    let mut all = args.to_vec();
    all.extend(["--db", db.to_str().unwrap()]);
    sb.command(&all).output().unwrap()
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", stderr_of(&o));
    o
}

/// The first four validation images of DME, copied into `dir`.
fn val_images(dir: &Path) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    let list = std::fs::read_to_string(Path::new(DME).join("splits/val.txt")).unwrap();
    let names: Vec<String> = list.lines().take(4).map(str::to_string).collect();
    for n in &names {
        let from = Path::new(DME).join(format!("256/images/{n}.png"));
        std::fs::copy(from, dir.join(format!("{n}.png"))).unwrap();
    }
    names
}

fn gray(path: &Path) -> Vec<u8> {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(img.dimensions(), (256, 256), "{}", path.display());
    img.into_luma8().into_raw()
}

/// `(image, class) -> (intersection, predicted, labelled)` pixels, as `sweep show --images`.
type Counts = BTreeMap<(String, u64), (u64, u64, u64)>;

fn recorded_counts(sb: &Sandbox, job: &str) -> Counts {
    let out = ok(sweep(sb, &["show", job, "--images", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let n = |k: &str| r[k].as_u64().unwrap();
            let key = (r["image"].as_str().unwrap().to_string(), n("class"));
            (key, (n("intersect"), n("pred"), n("label")))
        })
        .collect()
}

fn predicted_counts(dir: &Path, names: &[String]) -> Counts {
    let mut out = Counts::new();
    for n in names {
        let pred = gray(&dir.join(format!("{n}.png")));
        let label = gray(&Path::new(DME).join(format!("256/masks/{n}.png")));
        for c in 0..2u8 {
            let count =
                |f: &dyn Fn(usize) -> bool| (0..pred.len()).filter(|&i| f(i)).count() as u64;
            let i = count(&|i| pred[i] == c && label[i] == c);
            let p = count(&|i| pred[i] == c);
            let g = count(&|i| label[i] == c);
            out.insert((n.clone(), u64::from(c)), (i, p, g));
        }
    }
    out
}

fn files_of(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn predict_reproduces_the_counts_a_job_recorded() {
    let sb = Sandbox::new();
    trained(&sb, "[0]");
    let input = sb.path().join("scans");
    let names = val_images(&input);
    let out = sb.path().join("pred");
    let (i, o) = (input.to_str().unwrap(), out.to_str().unwrap());
    ok(sweep(
        &sb,
        &[
            "predict",
            "1",
            i,
            "--out",
            o,
            "--probabilities",
            "--overlay",
            "--palette",
        ],
    ));
    // --palette writes colours: predict again as class ids for the counts.
    let ids = sb.path().join("ids");
    ok(sweep(
        &sb,
        &["predict", "1", i, "--out", ids.to_str().unwrap()],
    ));
    assert_eq!(predicted_counts(&ids, &names), recorded_counts(&sb, "1"));
    // The same PNGs the job wrote at its own evaluation.
    let own: Vec<_> = std::fs::read_dir(sb.path().join("runs/tiny"))
        .unwrap()
        .collect();
    let own = own[0].as_ref().unwrap().path().join("predictions");
    assert_eq!(files_of(&ids), files_of(&own));
    // Areas per class, one row per image in natural order, and the extra outputs.
    let csv = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "image,file,height,width,background_px,fluid_px"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 4);
    let counts = recorded_counts(&sb, "1");
    for row in rows {
        let f: Vec<&str> = row.split(',').collect();
        let fluid = counts[&(f[0].to_string(), 1)].1;
        assert_eq!(f[5].parse::<u64>().unwrap(), fluid, "{row}");
    }
    for n in &names {
        assert!(out.join(format!("{n}.npy")).is_file());
        let overlay = image::open(out.join(format!("{n}.overlay.png"))).unwrap();
        assert_eq!(overlay.color(), image::ColorType::Rgb8);
        assert_eq!(
            image::open(out.join(format!("{n}.png"))).unwrap().color(),
            image::ColorType::Rgb8
        );
    }
}

#[test]
fn an_exported_ensemble_predicts_the_same_without_the_database() {
    let sb = Sandbox::new();
    trained(&sb, "[0, 1]");
    let input = sb.path().join("scans");
    let names = val_images(&input);
    let i = input.to_str().unwrap();
    let ens = sb.path().join("ensemble");
    let o = ok(sweep(
        &sb,
        &["predict", LABEL, i, "--out", ens.to_str().unwrap()],
    ));
    assert!(
        stderr_of(&o).contains("2 networks, 2 passes per image"),
        "{}",
        stderr_of(&o)
    );
    let pkg = sb.path().join("pkg");
    let p = pkg.to_str().unwrap();
    ok(sweep(
        &sb,
        &[
            "export",
            LABEL,
            "--out",
            p,
            "--format",
            "safetensors,onnx,pth",
        ],
    ));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(pkg.join("metadata.json")).unwrap()).unwrap();
    assert_eq!(meta["classes"], serde_json::json!(["background", "fluid"]));
    assert_eq!(meta["networks"].as_array().unwrap().len(), 2);
    assert_eq!(meta["inference"]["crop"], 64);
    assert_eq!(meta["data_license"], "CC0-1.0");
    assert_eq!(meta["checksums"].as_object().unwrap().len(), 7); // 2 x 3 files + README
                                                                 // No database, no runs folder: the package alone.
    std::fs::remove_dir_all(sb.path().join("runs")).unwrap();
    std::fs::remove_file(sb.db()).unwrap();
    let alone = sb.path().join("alone");
    let o = sb
        .command(&["predict", p, i, "--out", alone.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr_of(&o));
    assert_eq!(files_of(&alone), files_of(&ens));
    assert_eq!(files_of(&alone).len(), names.len());

    // An edited file and a missing one are named, and nothing is written.
    let edited = pkg.join("model-2.safetensors");
    let mut bytes = std::fs::read(&edited).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&edited, bytes).unwrap();
    let refused = sb.path().join("refused");
    let o = sb
        .command(&["predict", p, i, "--out", refused.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr_of(&o).contains("model-2.safetensors: changed since the package was written"),
        "{}",
        stderr_of(&o)
    );
    assert!(!refused.exists());
    std::fs::remove_file(pkg.join("model-1.onnx")).unwrap();
    let o = sb
        .command(&["predict", p, i, "--out", refused.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        stderr_of(&o).contains("model-1.onnx: missing from the package"),
        "{}",
        stderr_of(&o)
    );
    assert!(!refused.exists());
}

#[test]
fn exported_weights_initialise_a_job_to_the_same_scores() {
    let sb = Sandbox::new();
    trained(&sb, "[0]");
    let pkg = sb.path().join("pkg");
    let p = pkg.to_str().unwrap();
    ok(sweep(
        &sb,
        &["export", "1", "--out", p, "--format", "safetensors,pth"],
    ));
    for file in ["model.safetensors", "model.pth"] {
        let other = Sandbox::new();
        let path: PathBuf = pkg.join(file);
        let f = other.write_sweep(&format!(
            "name: again\ndata: {{dataset: dme, root: {DME}, limit_val: 4}}\n\
             base:\n  model: {{base_channels: 4, aux_head: false}}\n  crop: 32\n  batch: 2\n  iters: 0\n\
             \x20 init: {{path: {}}}\n  eval: {{mode: slide, crop: 64, stride: 48}}\n",
            path.display()
        ));
        let out = other.run(&f, &[]);
        assert!(out.status.success(), "{}", stderr_of(&out));
        assert_eq!(
            recorded_counts(&other, "1"),
            recorded_counts(&sb, "1"),
            "{file}"
        );
    }
}

#[test]
fn bad_inputs_are_named() {
    let sb = Sandbox::new();
    trained(&sb, "[0]");
    let input = sb.path().join("scans");
    let names = val_images(&input);
    std::fs::write(input.join("broken.png"), b"not a png").unwrap();
    let out = sb.path().join("pred");
    let (i, o) = (input.to_str().unwrap(), out.to_str().unwrap());
    let r = sweep(&sb, &["predict", "1", i, "--out", o]);
    assert_eq!(r.status.code(), Some(1));
    let err = stderr_of(&r);
    assert!(err.contains("predicted 4 of 5 images"), "{err}");
    assert!(err.contains("broken.png: cannot decode image"), "{err}");
    assert_eq!(files_of(&out).len(), names.len());
    // A label naming no job: one message, nothing written.
    let none = sb.path().join("none");
    let r = sweep(
        &sb,
        &[
            "predict",
            "no such model",
            i,
            "--out",
            none.to_str().unwrap(),
        ],
    );
    assert!(!r.status.success());
    assert!(stderr_of(&r).contains("no such model"), "{}", stderr_of(&r));
    assert!(!none.exists());
    let r = sweep(
        &sb,
        &["export", "no such model", "--out", none.to_str().unwrap()],
    );
    assert!(!r.status.success());
    assert!(!none.exists());
}

/// The validation metrics of `show --format json` (by name, class ids as `Dice.1`).
fn val_metrics(v: &serde_json::Value) -> BTreeMap<String, f64> {
    v["metrics"]["val"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, x)| (k.clone(), x.as_f64().unwrap_or(f64::NAN)))
        .collect()
}

#[test]
fn evaluating_predicted_images_reproduces_the_jobs_metrics() {
    let sb = Sandbox::new();
    let file = sb.write_sweep(&format!(
        "name: whole\ndata: {{dataset: dme, root: {DME}}}\n\
         base:\n  model: {{base_channels: 4, aux_head: false}}\n  crop: 32\n  batch: 2\n  iters: 3\n\
         \x20 eval: {{mode: whole}}\n"
    ));
    ok(sb.run(&file, &[]));
    let input = sb.path().join("scans");
    std::fs::create_dir_all(&input).unwrap();
    let list = std::fs::read_to_string(Path::new(DME).join("splits/val.txt")).unwrap();
    for n in list.lines() {
        let from = Path::new(DME).join(format!("256/images/{n}.png"));
        std::fs::copy(from, input.join(format!("{n}.png"))).unwrap();
    }
    let pred = sb.path().join("pred");
    let (i, p) = (input.to_str().unwrap(), pred.to_str().unwrap());
    ok(sweep(&sb, &["predict", "1", i, "--out", p]));
    std::fs::remove_file(pred.join("predictions.csv")).unwrap();
    let o = ok(sweep(
        &sb,
        &[
            "evaluate",
            p,
            "--data",
            DME,
            "--as",
            "predicted",
            "--sweep",
            "whole",
        ],
    ));
    assert!(String::from_utf8_lossy(&o.stdout).contains("predicted (external)"));
    let show = |job: &str| {
        let o = ok(sweep(&sb, &["show", job, "--format", "json"]));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let (job, external) = (val_metrics(&show("1")), val_metrics(&show("predicted")));
    for (name, want) in &job {
        let got = external[name];
        assert!(
            (got - want).abs() < 1e-9 || (got.is_nan() && want.is_nan()),
            "{name}: the job recorded {want}, its predictions score {got}"
        );
    }
    assert_eq!(job.len(), external.len());
}

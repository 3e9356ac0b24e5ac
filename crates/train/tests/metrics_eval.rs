//! Metrics (MMSeg IoUMetric semantics) and evaluation (whole / slide inference, PNG output).
#![allow(deprecated)] // burn marks its LibTorch backend deprecated; it is the project's backend.

use burn::tensor::{Device, Tensor};

use sweep_core::job::{DataConfig, EvalConfig};
use sweep_core::metrics::{round2, Metrics};
use sweep_data::{Dataset, EvalImage};
use sweep_train::eval::evaluate;
use sweep_train::infer::{logits, slide_windows};

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

fn value(m: &Metrics, name: &str, class: Option<usize>) -> Option<f64> {
    m.to_values("val")
        .into_iter()
        .find(|v| v.name == name && v.class == class)
        .map(|v| v.value)
}

#[test]
fn hand_computed_confusion_summed_over_the_set() {
    let mut m = Metrics::new(3);
    // Image A: the last pixel is ignored.
    m.add(&[0, 1, 1, 0, 2, 2], &[0, 0, 1, 1, 2, 255]);
    // Image B.
    m.add(&[0, 0, 2, 1], &[0, 0, 0, 255]);
    // By hand: I = [3, 1, 1], P = [4, 2, 2], G = [5, 2, 1], U = [6, 3, 2].
    assert_eq!(m.intersect, vec![3, 1, 1]);
    assert_eq!(m.pred, vec![4, 2, 2]);
    assert_eq!(m.label, vec![5, 2, 1]);
    assert_eq!(m.union, vec![6, 3, 2]);
    close(m.aacc(), 62.5); // 5 / 8 (per-image averaging would give 63.33)
    close(m.miou(), (50.0 + 100.0 / 3.0 + 50.0) / 3.0);
    close(m.macc(), (60.0 + 50.0 + 100.0) / 3.0);
    close(m.mdice(), (200.0 / 3.0 + 50.0 + 200.0 / 3.0) / 3.0);
    close(m.mprecision(), (75.0 + 50.0 + 50.0) / 3.0);
    close(m.mrecall(), 70.0);
    close(m.mfscore(), m.mdice()); // beta 1
    close(m.iou()[1], 100.0 / 3.0);
    close(m.fscore()[0], 200.0 / 3.0);
    // Stored names and classes.
    let vals = m.to_values("val");
    assert_eq!(vals.len(), 7 + 3 * 6);
    assert!(vals.iter().all(|v| v.split == "val"));
    close(value(&m, "mIoU", None).unwrap(), m.miou());
    close(value(&m, "Precision", Some(0)).unwrap(), 75.0);
    close(value(&m, "Acc", Some(2)).unwrap(), 100.0);
    assert_eq!(round2(value(&m, "mDice", None).unwrap()), 61.11);
}

#[test]
fn absent_class_is_nan_and_skipped() {
    let mut m = Metrics::new(3);
    m.add(&[0, 1, 0, 0], &[0, 1, 1, 0]);
    // Class 2: I = P = G = 0 -> every ratio 0/0.
    assert!(m.iou()[2].is_nan() && m.dice()[2].is_nan() && m.acc()[2].is_nan());
    close(m.miou(), (200.0 / 3.0 + 50.0) / 2.0);
    close(m.macc(), 75.0);
    close(m.mdice(), (80.0 + 200.0 / 3.0) / 2.0);
    close(m.aacc(), 75.0);
    let vals = m.to_values("val");
    assert_eq!(vals.len(), 7 + 2 * 6);
    assert!(vals
        .iter()
        .all(|v| v.value.is_finite() && v.class != Some(2)));
}

#[test]
fn fscore_is_nan_when_precision_and_recall_are_zero() {
    // Class 1 predicted once, never right: Dice 0, but Fscore = 0 / 0 (MMSeg).
    let mut m = Metrics::new(2);
    m.add(&[0, 1, 0, 0], &[0, 0, 1, 1]);
    close(m.dice()[1], 0.0);
    assert!(m.fscore()[1].is_nan());
    close(m.mdice(), 20.0);
    close(m.mfscore(), 40.0); // only class 0: 2 * (1/3) * (1/2) / (5/6)
    assert_eq!(value(&m, "Fscore", Some(1)), None);
    assert_eq!(value(&m, "Dice", Some(1)), Some(0.0));
}

#[test]
fn rounding_is_numpy_half_even() {
    assert_eq!(round2(0.125), 0.12);
    assert_eq!(round2(0.375), 0.38);
    assert_eq!(round2(49.5675), 49.57);
}

#[test]
fn background_everywhere_floor_on_study_val() {
    let ds = Dataset::open(&DataConfig {
        root: crate::util::data_root("dme"),
        ..DataConfig::default()
    })
    .unwrap();
    let mut m = Metrics::new(2);
    for s in ds.val.loaded().unwrap() {
        m.add(&vec![0u8; s.label.len()], &s.label);
    }
    // README: aAcc 99.14, mIoU 49.57, mAcc 50.00, mDice 49.78.
    assert_eq!(round2(m.aacc()), 99.14);
    assert_eq!(round2(m.miou()), 49.57);
    assert_eq!(round2(m.macc()), 50.00);
    assert_eq!(round2(m.mdice()), 49.78);
    assert_eq!(round2(m.dice()[1]), 0.0);
}

// ---- evaluation ----

/// One image as the evaluation reads them.
fn one(im: EvalImage) -> impl Iterator<Item = anyhow::Result<EvalImage>> {
    std::iter::once(Ok(im))
}

fn device() -> Device {
    Device::libtorch()
}

/// CHW image whose 3 channels are equal to `f(x, y)`.
fn eval_image(
    name: &str,
    w: usize,
    h: usize,
    f: impl Fn(usize, usize) -> f32,
    label: Vec<u8>,
    lw: usize,
    lh: usize,
) -> EvalImage {
    let plane: Vec<f32> = (0..w * h).map(|i| f(i % w, i / w)).collect();
    EvalImage {
        name: name.into(),
        image: [plane.clone(), plane.clone(), plane].concat(),
        h,
        w,
        label,
        label_h: lh,
        label_w: lw,
    }
}

fn wave(x: usize, y: usize) -> f32 {
    ((x as f32 * 0.37).sin() + (y as f32 * 0.23).cos()) * 0.8 - 0.1
}

/// Slide / whole logits, one window per forward pass.
fn infer(
    forward: &mut dyn FnMut(Tensor<4>) -> Tensor<4>,
    x: Tensor<4>,
    eval: &EvalConfig,
    num_classes: usize,
) -> anyhow::Result<Tensor<4>> {
    logits(forward, x, eval, num_classes, 1)
}

/// Pixelwise logits [-x0, x0]: class 1 where channel 0 is positive.
fn pointwise(x: Tensor<4>) -> Tensor<4> {
    let n = x.dims()[0];
    let a = x.slice([0..n, 0..1]);
    Tensor::cat(vec![a.clone().neg(), a], 1)
}

/// Logits that depend on the whole window: channel 0 minus its window mean.
fn contextual(x: Tensor<4>) -> Tensor<4> {
    let n = x.dims()[0];
    let a = x.slice([0..n, 0..1]);
    let centred = a.clone() - a.mean_dims(&[2, 3]);
    Tensor::cat(vec![centred.clone().neg(), centred], 1)
}

fn cfg(mode: &str, crop: usize, stride: usize) -> EvalConfig {
    EvalConfig {
        mode: mode.parse().unwrap(),
        crop,
        stride,
        ..EvalConfig::default()
    }
}

fn tensor(im: &EvalImage) -> Tensor<4> {
    Tensor::from_data(
        burn::tensor::TensorData::new(im.image.clone(), [1, 3, im.h, im.w]),
        &device(),
    )
}

fn values(t: Tensor<4>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

fn some_label(w: usize, h: usize) -> Vec<u8> {
    (0..w * h)
        .map(|i| match i % 11 {
            0 => 255,
            k => u8::from(k % 3 == 0 || (i / w) % 5 == 0),
        })
        .collect()
}

#[test]
fn slide_windows_follow_mmseg() {
    let ys: Vec<(usize, usize)> = slide_windows(512, 512, 256, 170)
        .iter()
        .filter(|w| w.2 == 0)
        .map(|w| (w.0, w.1))
        .collect();
    assert_eq!(ys, vec![(0, 256), (170, 426), (256, 512)]);
    assert_eq!(slide_windows(512, 512, 256, 170).len(), 9);
    assert_eq!(
        slide_windows(300, 100, 256, 170),
        vec![(0, 256, 0, 100), (44, 300, 0, 100)]
    );
}

#[test]
fn slide_equals_whole_for_a_pointwise_model() {
    let im = eval_image("a", 48, 48, wave, some_label(48, 48), 48, 48);
    let whole = infer(&mut pointwise, tensor(&im), &cfg("whole", 0, 0), 2).unwrap();
    let slide = infer(&mut pointwise, tensor(&im), &cfg("slide", 16, 10), 2).unwrap();
    for (a, b) in values(whole).iter().zip(values(slide)) {
        assert!((a - b).abs() < 1e-6);
    }
    let mw = evaluate(
        &mut pointwise,
        &mut one(im.clone()),
        &cfg("whole", 0, 0),
        2,
        &device(),
        None,
    )
    .unwrap();
    let ms = evaluate(
        &mut pointwise,
        &mut one(im),
        &cfg("slide", 16, 10),
        2,
        &device(),
        None,
    )
    .unwrap();
    assert_eq!(mw, ms);
    assert!(mw.miou() > 0.0 && mw.miou() < 100.0);
}

#[test]
fn slide_with_window_equal_to_image_is_whole() {
    let im = eval_image("a", 32, 32, wave, some_label(32, 32), 32, 32);
    let whole = values(infer(&mut contextual, tensor(&im), &cfg("whole", 0, 0), 2).unwrap());
    let one = values(infer(&mut contextual, tensor(&im), &cfg("slide", 32, 20), 2).unwrap());
    assert_eq!(whole, one);
    // Smaller windows see other means: the model really is contextual.
    let four = values(infer(&mut contextual, tensor(&im), &cfg("slide", 16, 16), 2).unwrap());
    assert_ne!(whole, four);
}

#[test]
fn overlapping_logits_are_averaged() {
    // The k-th call returns logits [k, 0]. 48 x 48, crop 32, stride 16: windows
    // 1: y 0-32 x 0-32, 2: y 0-32 x 16-48, 3: y 16-48 x 0-32, 4: y 16-48 x 16-48.
    let mut calls = 0.0f32;
    let mut numbered = |x: Tensor<4>| {
        calls += 1.0;
        let [_, _, h, w] = x.dims();
        let d = x.device();
        Tensor::cat(
            vec![
                Tensor::<4>::ones([1, 1, h, w], &d).mul_scalar(calls),
                Tensor::<4>::zeros([1, 1, h, w], &d),
            ],
            1,
        )
    };
    let im = eval_image("a", 48, 48, wave, some_label(48, 48), 48, 48);
    let out = values(infer(&mut numbered, tensor(&im), &cfg("slide", 32, 16), 2).unwrap());
    let at = |x: usize, y: usize| out[y * 48 + x];
    assert_eq!(at(0, 0), 1.0);
    assert_eq!(at(40, 0), 2.0);
    assert_eq!(at(0, 40), 3.0);
    assert_eq!(at(47, 47), 4.0);
    assert_eq!(at(20, 20), 2.5);
    assert_eq!(at(20, 40), 3.5); // windows 3 and 4
    assert_eq!(at(20, 5), 1.5); // windows 1 and 2
    assert!(out[48 * 48..].iter().all(|&v| v == 0.0));
}

#[test]
fn small_images_are_padded_for_the_model() {
    let mut seen = Vec::new();
    let mut recording = |x: Tensor<4>| {
        seen.push(x.dims());
        pointwise(x)
    };
    let im = eval_image("small", 20, 18, wave, some_label(20, 18), 20, 18);
    let m = evaluate(
        &mut recording,
        &mut one(im.clone()),
        &cfg("slide", 32, 20),
        2,
        &device(),
        None,
    )
    .unwrap();
    let m2 = evaluate(
        &mut recording,
        &mut one(im.clone()),
        &cfg("whole", 0, 0),
        2,
        &device(),
        None,
    )
    .unwrap();
    assert_eq!(seen, vec![[1, 3, 32, 32], [1, 3, 32, 32]]);
    assert_eq!(m, m2);
    // Same as scoring the pointwise rule by hand.
    let mut want = Metrics::new(2);
    let pred: Vec<u8> = (0..20 * 18)
        .map(|i| u8::from(wave(i % 20, i / 20) > 0.0))
        .collect();
    want.add(&pred, &im.label);
    assert_eq!(m, want);
}

#[test]
fn windows_go_through_the_network_in_batches() {
    let mut seen = Vec::new();
    let mut recording = |x: Tensor<4>| {
        seen.push(x.dims());
        contextual(x)
    };
    let im = eval_image("b", 48, 48, wave, some_label(48, 48), 48, 48);
    let slide = cfg("slide", 32, 16);
    let batched = values(logits(&mut recording, tensor(&im), &slide, 2, 3).unwrap());
    assert_eq!(seen, vec![[3, 3, 32, 32], [1, 3, 32, 32]]);
    let single = values(infer(&mut contextual, tensor(&im), &slide, 2).unwrap());
    assert_eq!(batched, single);
}

#[test]
fn logits_are_resized_to_the_label() {
    // 32 x 32 input, 16 x 16 label: class 1 on the left half of the input.
    let left = |x: usize, _y: usize| if x < 16 { 1.0 } else { -1.0 };
    let label: Vec<u8> = (0..256).map(|i| u8::from(i % 16 < 8)).collect();
    let im = eval_image("r", 32, 32, left, label, 16, 16);
    let m = evaluate(
        &mut pointwise,
        &mut one(im),
        &cfg("whole", 0, 0),
        2,
        &device(),
        None,
    )
    .unwrap();
    assert_eq!(m.intersect, vec![128, 128]);
    assert_eq!(m.miou(), 100.0);
    // Ramp x - 0.25: half-pixel centres (align_corners false) sample column j at 2j + 0.5,
    // so even column 0 is positive; align_corners true would sample it at 0 (negative).
    let ramp = eval_image("r", 32, 32, |x, _| x as f32 - 0.25, vec![1; 256], 16, 16);
    let m = evaluate(
        &mut pointwise,
        &mut one(ramp),
        &cfg("whole", 0, 0),
        2,
        &device(),
        None,
    )
    .unwrap();
    assert_eq!((m.pred[0], m.intersect[1]), (0, 256));
}

#[test]
fn written_predictions_rescore_to_the_same_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pred");
    let images = vec![
        eval_image("img_20", 32, 32, wave, some_label(24, 20), 24, 20),
        eval_image(
            "img_7",
            48,
            32,
            |x, y| wave(y, x),
            some_label(48, 32),
            48,
            32,
        ),
    ];
    let m = evaluate(
        &mut contextual,
        &mut images.iter().cloned().map(Ok),
        &cfg("slide", 32, 16),
        2,
        &device(),
        Some(&out),
    )
    .unwrap();
    let mut again = Metrics::new(2);
    for im in &images {
        let png = image::open(out.join(format!("{}.png", im.name)))
            .unwrap()
            .into_luma8();
        assert_eq!(
            (png.width() as usize, png.height() as usize),
            (im.label_w, im.label_h)
        );
        let pred = png.into_raw();
        assert!(pred.iter().all(|&v| v <= 1));
        again.add(&pred, &im.label);
    }
    assert_eq!(m, again);
    assert!(m.pred[1] > 0 && m.pred[0] > 0);
}

#[test]
fn bad_mode_and_bad_model_output_are_errors() {
    let im = eval_image("a", 16, 16, wave, some_label(16, 16), 16, 16);
    // The eval modes are a closed set now (`EvalMode`): an unknown one is refused where it
    // is read, before `evaluate`, naming the known ones.
    let e = "tiles".parse::<sweep_core::job::EvalMode>().unwrap_err();
    assert!(e.contains("tiles") && e.contains("slide, whole"), "{e}");
    let mut halving = |x: Tensor<4>| pointwise(x).slice([0..1, 0..2, 0..8, 0..8]);
    let e = evaluate(
        &mut halving,
        &mut one(im.clone()),
        &cfg("whole", 0, 0),
        2,
        &device(),
        None,
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("[1, 2, 8, 8]"), "{e:#}");
    let e = evaluate(
        &mut pointwise,
        &mut one(im),
        &cfg("whole", 0, 0),
        3,
        &device(),
        None,
    )
    .unwrap_err();
    assert!(
        format!("{e:#}").contains("2 logit channels for 3 classes"),
        "{e:#}"
    );
}

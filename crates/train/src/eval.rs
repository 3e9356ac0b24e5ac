//! Evaluation as MMSegmentation's test loop: the logits of [`crate::infer`] (whole image or
//! sliding window on the resized image) bilinearly resized (align_corners false) to the
//! label's size, argmax, [`Metrics`] accumulated over the set; optionally each prediction
//! written as an 8-bit PNG of class indices.

use crate::infer::predictor::resize_logits;
use crate::infer::{window, Scores, WINDOW_BATCH};
use anyhow::{bail, Context};
use burn::tensor::{Device, Tensor, TensorData};
use std::path::Path;
use sweep_core::job::EvalConfig;
use sweep_core::metrics::per_image::{image_metrics, DistanceScale};
use sweep_core::metrics::Metrics;
use sweep_core::protocol::ImageMetric;
use sweep_data::EvalImage;

/// Class-index prediction at `(label_h, label_w)` from logits [1, C, h, w].
pub fn predict(logits: Tensor<4>, label_h: usize, label_w: usize) -> Vec<u8> {
    Scores::Logits(resize_logits(logits, label_h, label_w)).labels()
}

/// Writes a prediction as an 8-bit grayscale PNG of class indices.
pub fn write_prediction(path: &Path, pred: &[u8], w: usize, h: usize) -> anyhow::Result<()> {
    image::save_buffer(path, pred, w as u32, h as u32, image::ExtendedColorType::L8)
        .with_context(|| format!("writing prediction {}", path.display()))
}

/// What one evaluation measured: the set's accumulated areas and every image's own rows.
pub struct Evaluation {
    pub metrics: Metrics,
    pub images: Vec<ImageMetric>,
}

/// Where an evaluation's numbers go: the split name they are stored under, the distance
/// scale of surface metrics, and an optional folder for the predictions (`{name}.png`,
/// class indices, the label's size).
pub struct EvalTarget<'a> {
    pub split: &'a str,
    pub scale: DistanceScale,
    pub predictions_dir: Option<&'a Path>,
}

/// The images an evaluation scores, one at a time (a large split is read as it goes).
pub type EvalImages<'a> = dyn Iterator<Item = anyhow::Result<EvalImage>> + 'a;

/// Scores `images` with `forward` ([1, 3, h, w] -> logits [1, C, h, w]); with
/// `predictions_dir`, writes `{name}.png` (class indices, the label's size) there.
pub fn evaluate(
    forward: &mut dyn FnMut(Tensor<4>) -> Tensor<4>,
    images: &mut EvalImages,
    eval: &EvalConfig,
    num_classes: usize,
    device: &Device,
    predictions_dir: Option<&Path>,
) -> anyhow::Result<Metrics> {
    let target = EvalTarget {
        split: "val",
        scale: DistanceScale::new(None),
        predictions_dir,
    };
    Ok(score(forward, images, eval, num_classes, device, &target)?.metrics)
}

/// [`evaluate`] with the per-image rows ([`image_metrics`]) of every image.
pub fn score(
    forward: &mut dyn FnMut(Tensor<4>) -> Tensor<4>,
    images: &mut EvalImages,
    eval: &EvalConfig,
    num_classes: usize,
    device: &Device,
    target: &EvalTarget,
) -> anyhow::Result<Evaluation> {
    if let Some(dir) = target.predictions_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating predictions folder {}", dir.display()))?;
    }
    let mut out = Evaluation {
        metrics: Metrics::new(num_classes),
        images: Vec::new(),
    };
    for im in images {
        let im = &im?;
        check_sizes(im)?;
        let x = Tensor::<4>::from_data(
            TensorData::new(im.image.clone(), [1, 3, im.h, im.w]),
            device,
        );
        let logits = window::logits(forward, x, eval, num_classes, WINDOW_BATCH)
            .with_context(|| format!("evaluating {}", im.name))?;
        let pred = predict(logits, im.label_h, im.label_w);
        out.metrics.add(&pred, &im.label);
        let size = (im.label_w, im.label_h);
        out.images.extend(image_metrics(
            target.split,
            &im.name,
            &pred,
            &im.label,
            size,
            num_classes,
            target.scale,
        ));
        if let Some(dir) = target.predictions_dir {
            let path = dir.join(format!("{}.png", im.name));
            write_prediction(&path, &pred, im.label_w, im.label_h)?;
        }
    }
    Ok(out)
}

fn check_sizes(im: &EvalImage) -> anyhow::Result<()> {
    if im.image.len() != 3 * im.h * im.w || im.label.len() != im.label_h * im.label_w {
        bail!(
            "evaluation image {}: {} values for 3x{}x{}, {} label values for {}x{}",
            im.name,
            im.image.len(),
            im.h,
            im.w,
            im.label.len(),
            im.label_h,
            im.label_w
        );
    }
    Ok(())
}

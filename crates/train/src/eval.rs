//! Evaluation as MMSegmentation's test loop: whole-image or sliding-window inference on the
//! resized image, logits bilinearly resized (align_corners false) to the label's size,
//! argmax, [`Metrics`] accumulated over the set; optionally each prediction written as an
//! 8-bit PNG of class indices.
//!
//! Where we differ from MMSeg (only for inputs MMSeg rejects or that the study never had):
//! a forward input is padded bottom / right with 0 (the normalised mean colour) to a multiple
//! of 16 (UNet-S5-D16 needs it; MMSeg would fail), and a slide window smaller than the crop
//! (image smaller than the crop) is padded to the crop; the padded logits are cut away.

use anyhow::{bail, Context};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor, TensorData};
use std::path::Path;
use sweep_core::job::{EvalConfig, EvalMode};
use sweep_core::metrics::per_image::{image_metrics, DistanceScale};
use sweep_core::metrics::Metrics;
use sweep_core::protocol::ImageMetric;
use sweep_data::EvalImage;

/// MMSeg slide_inference's windows `(y1, y2, x1, x2)`: `h_grids = max(h - crop + stride - 1, 0)
/// / stride + 1`, each window clamped to the image and shifted back to full size.
pub fn slide_windows(
    h: usize,
    w: usize,
    crop: usize,
    stride: usize,
) -> Vec<(usize, usize, usize, usize)> {
    let grids = |n: usize| (n + stride - 1).saturating_sub(crop) / stride + 1;
    let mut out = Vec::new();
    for hi in 0..grids(h) {
        for wi in 0..grids(w) {
            let (y2, x2) = ((hi * stride + crop).min(h), (wi * stride + crop).min(w));
            out.push((y2.saturating_sub(crop), y2, x2.saturating_sub(crop), x2));
        }
    }
    out
}

fn round_up16(v: usize) -> usize {
    v.div_ceil(16) * 16
}

/// `forward` on `x` ([1, 3, h, w]) padded bottom / right with zeros to `th` x `tw`; returns
/// the logits of the unpadded region, [1, C, h, w].
fn forward_padded(
    forward: &mut dyn FnMut(Tensor<4>) -> Tensor<4>,
    x: Tensor<4>,
    th: usize,
    tw: usize,
) -> anyhow::Result<Tensor<4>> {
    let [n, c, h, w] = x.dims();
    let input = if (th, tw) == (h, w) {
        x
    } else {
        Tensor::<4>::zeros([n, c, th, tw], &x.device()).slice_assign([0..n, 0..c, 0..h, 0..w], x)
    };
    let out = forward(input);
    let [on, oc, oh, ow] = out.dims();
    if on != n || oh != th || ow != tw {
        bail!("the model mapped a [{n}, {c}, {th}, {tw}] input to [{on}, {oc}, {oh}, {ow}] logits (expected [{n}, C, {th}, {tw}])");
    }
    Ok(if (th, tw) == (h, w) {
        out
    } else {
        out.slice([0..n, 0..oc, 0..h, 0..w])
    })
}

/// Logits [1, C, h, w] of one image ([1, 3, h, w]) by `eval.mode` (`whole` or `slide`).
pub fn infer(
    forward: &mut dyn FnMut(Tensor<4>) -> Tensor<4>,
    x: Tensor<4>,
    eval: &EvalConfig,
    num_classes: usize,
) -> anyhow::Result<Tensor<4>> {
    let [_, _, h, w] = x.dims();
    let check = |logits: Tensor<4>| {
        let c = logits.dims()[1];
        if c != num_classes {
            bail!("the model gave {c} logit channels for {num_classes} classes");
        }
        Ok(logits)
    };
    match eval.mode {
        EvalMode::Whole => check(forward_padded(forward, x, round_up16(h), round_up16(w))?),
        EvalMode::Slide => {
            let (crop, stride) = (eval.crop, eval.stride);
            if crop == 0 || stride == 0 {
                bail!("eval.crop ({crop}) and eval.stride ({stride}) must be positive");
            }
            let device = x.device();
            let mut sum = Tensor::<4>::zeros([1, num_classes, h, w], &device);
            let mut count = vec![0f32; h * w];
            for (y1, y2, x1, x2) in slide_windows(h, w, crop, stride) {
                let win = x.clone().slice([0..1, 0..3, y1..y2, x1..x2]);
                let (wh, ww) = (y2 - y1, x2 - x1);
                let logits = forward_padded(
                    forward,
                    win,
                    round_up16(wh.max(crop)),
                    round_up16(ww.max(crop)),
                )?;
                let logits = check(logits)?;
                let c = num_classes;
                let region = [0..1, 0..c, y1..y2, x1..x2];
                let acc = sum.clone().slice(region.clone()) + logits;
                sum = sum.slice_assign(region, acc);
                for y in y1..y2 {
                    count[y * w + x1..y * w + x2]
                        .iter_mut()
                        .for_each(|n| *n += 1.0);
                }
            }
            let count = Tensor::<4>::from_data(TensorData::new(count, [1, 1, h, w]), &device);
            Ok(sum / count)
        }
    }
}

/// Class-index prediction at `(label_h, label_w)` from logits [1, C, h, w].
pub fn predict(logits: Tensor<4>, label_h: usize, label_w: usize) -> Vec<u8> {
    let [_, _, h, w] = logits.dims();
    let logits = if (h, w) == (label_h, label_w) {
        logits
    } else {
        interpolate(
            logits,
            InterpolateOptions::new(InterpolateMode::Bilinear)
                .with_align_corners(false)
                .with_output_size([label_h, label_w]),
        )
    };
    logits
        .argmax(1)
        .into_data()
        .try_into_vec_as::<i64>()
        .expect("argmax gives integers")
        .into_iter()
        .map(|v| v as u8)
        .collect()
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
        let logits = infer(forward, x, eval, num_classes)
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

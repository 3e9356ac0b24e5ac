//! Logits of one prepared image as MMSegmentation's test loop computes them: the whole image
//! at once, or overlapping `crop` windows every `stride` pixels with their logits averaged.
//!
//! Where we differ from MMSeg (only for inputs MMSeg rejects or that the study never had):
//! a forward input is padded bottom / right with 0 (the normalised mean colour) to a multiple
//! of 16 (UNet-S5-D16 needs it; MMSeg would fail), and a window smaller than the crop
//! (image smaller than the crop) is padded to the crop; the padded logits are cut away.

use anyhow::bail;
use burn::tensor::{Tensor, TensorData};
use sweep_core::job::{EvalConfig, EvalMode};

/// Windows per forward pass in a job's own evaluation and `sweep predict`'s default: every
/// window of an image has the same padded size, so they stack into one batch.
pub const WINDOW_BATCH: usize = 4;

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

/// `x` ([n, c, h, w]) padded bottom / right with zeros to `th` x `tw`.
fn pad(x: Tensor<4>, th: usize, tw: usize) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    if (th, tw) == (h, w) {
        return x;
    }
    Tensor::<4>::zeros([n, c, th, tw], &x.device()).slice_assign([0..n, 0..c, 0..h, 0..w], x)
}

/// `forward` on `x`, checking that it kept the batch and the spatial size and gave
/// `num_classes` channels.
fn checked_forward(
    forward: &mut dyn FnMut(Tensor<4>) -> Tensor<4>,
    x: Tensor<4>,
    num_classes: usize,
) -> anyhow::Result<Tensor<4>> {
    let [n, c, h, w] = x.dims();
    let out = forward(x);
    let [on, oc, oh, ow] = out.dims();
    if on != n || oh != h || ow != w {
        bail!("the model mapped a [{n}, {c}, {h}, {w}] input to [{on}, {oc}, {oh}, {ow}] logits (expected [{n}, C, {h}, {w}])");
    }
    if oc != num_classes {
        bail!("the model gave {oc} logit channels for {num_classes} classes");
    }
    Ok(out)
}

/// Logits [1, C, h, w] of one image ([1, 3, h, w]) by `eval.mode`; in `slide` mode `batch`
/// windows go through `forward` at a time.
pub fn logits(
    forward: &mut dyn FnMut(Tensor<4>) -> Tensor<4>,
    x: Tensor<4>,
    eval: &EvalConfig,
    num_classes: usize,
    batch: usize,
) -> anyhow::Result<Tensor<4>> {
    let [_, _, h, w] = x.dims();
    match eval.mode {
        EvalMode::Whole => {
            let out = checked_forward(forward, pad(x, round_up16(h), round_up16(w)), num_classes)?;
            Ok(out.slice([0..1, 0..num_classes, 0..h, 0..w]))
        }
        EvalMode::Slide => slide(forward, x, eval, num_classes, batch.max(1)),
    }
}

fn slide(
    forward: &mut dyn FnMut(Tensor<4>) -> Tensor<4>,
    x: Tensor<4>,
    eval: &EvalConfig,
    num_classes: usize,
    batch: usize,
) -> anyhow::Result<Tensor<4>> {
    let [_, channels, h, w] = x.dims();
    let (crop, stride) = (eval.crop, eval.stride);
    if crop == 0 || stride == 0 {
        bail!("eval.crop ({crop}) and eval.stride ({stride}) must be positive");
    }
    // Every window is min(crop, h) x min(crop, w): all pad to the same size and stack.
    let (th, tw) = (round_up16(crop), round_up16(crop));
    let device = x.device();
    let mut sum = Tensor::<4>::zeros([1, num_classes, h, w], &device);
    let mut count = vec![0f32; h * w];
    for group in slide_windows(h, w, crop, stride).chunks(batch) {
        let inputs = group
            .iter()
            .map(|&(y1, y2, x1, x2)| {
                pad(x.clone().slice([0..1, 0..channels, y1..y2, x1..x2]), th, tw)
            })
            .collect();
        let out = checked_forward(forward, Tensor::cat(inputs, 0), num_classes)?;
        for (i, &(y1, y2, x1, x2)) in group.iter().enumerate() {
            let window = out
                .clone()
                .slice([i..i + 1, 0..num_classes, 0..y2 - y1, 0..x2 - x1]);
            let region = [0..1, 0..num_classes, y1..y2, x1..x2];
            let acc = sum.clone().slice(region.clone()) + window;
            sum = sum.slice_assign(region, acc);
            for y in y1..y2 {
                count[y * w + x1..y * w + x2]
                    .iter_mut()
                    .for_each(|n| *n += 1.0);
            }
        }
    }
    let count = Tensor::<4>::from_data(TensorData::new(count, [1, 1, h, w]), &device);
    Ok(sum / count)
}

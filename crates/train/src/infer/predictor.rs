//! One network or an ensemble applied to prepared images: logits per network (by
//! [`window::logits`]), optionally also of the mirrored image, brought to the output size.
//!
//! A single pass (one network, no augmentation) keeps its logits, so its argmax is exactly a
//! job's own evaluation. Several passes average their softmax probabilities, as nnU-Net
//! averages its folds and MMSeg's TTA its flips.

use super::window;
use crate::model::Segmentor;
use burn::tensor::activation::softmax;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::Tensor;
use sweep_core::job::EvalConfig;

/// Test-time augmentation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tta {
    #[default]
    None,
    /// Also the horizontally mirrored image, its logits mirrored back.
    Flip,
}

/// The networks and how they are applied.
pub struct Predictor {
    pub networks: Vec<Segmentor>,
    pub eval: EvalConfig,
    pub num_classes: usize,
    /// Windows (slide) per forward pass.
    pub batch: usize,
    pub tta: Tta,
}

/// The scores of one image at the output size, [1, C, h, w].
pub enum Scores {
    /// One pass: the logits themselves.
    Logits(Tensor<4>),
    /// Several passes: the mean of their softmax probabilities.
    Probabilities(Tensor<4>),
}

impl Scores {
    /// Class id per pixel, row-major.
    pub fn labels(&self) -> Vec<u8> {
        let t = match self {
            Scores::Logits(t) | Scores::Probabilities(t) => t.clone(),
        };
        t.argmax(1)
            .into_data()
            .try_into_vec_as::<i64>()
            .expect("argmax gives integers")
            .into_iter()
            .map(|v| v as u8)
            .collect()
    }

    /// Class probabilities [1, C, h, w].
    pub fn probabilities(&self) -> Tensor<4> {
        match self {
            Scores::Logits(t) => softmax(t.clone(), 1),
            Scores::Probabilities(t) => t.clone(),
        }
    }
}

/// Logits [1, C, h, w] bilinearly resized (align_corners false, as MMSeg) to `out_h` x `out_w`.
pub fn resize_logits(logits: Tensor<4>, out_h: usize, out_w: usize) -> Tensor<4> {
    let [_, _, h, w] = logits.dims();
    if (h, w) == (out_h, out_w) {
        return logits;
    }
    interpolate(
        logits,
        InterpolateOptions::new(InterpolateMode::Bilinear)
            .with_align_corners(false)
            .with_output_size([out_h, out_w]),
    )
}

impl Predictor {
    /// Passes per image: networks x (1 or 2 with flip).
    pub fn passes(&self) -> usize {
        self.networks.len() * if self.tta == Tta::Flip { 2 } else { 1 }
    }

    /// Scores of one prepared image `x` ([1, 3, h, w]) at `out_h` x `out_w` (the original
    /// image's size).
    pub fn scores(&self, x: Tensor<4>, out_h: usize, out_w: usize) -> anyhow::Result<Scores> {
        let mut passes = Vec::with_capacity(self.passes());
        for net in &self.networks {
            let mut forward = |t: Tensor<4>| net.forward(t);
            let mut run = |x: Tensor<4>| {
                window::logits(&mut forward, x, &self.eval, self.num_classes, self.batch)
            };
            passes.push(resize_logits(run(x.clone())?, out_h, out_w));
            if self.tta == Tta::Flip {
                let mirrored = run(x.clone().flip([3]))?.flip([3]);
                passes.push(resize_logits(mirrored, out_h, out_w));
            }
        }
        if passes.len() == 1 {
            return Ok(Scores::Logits(passes.pop().expect("one pass")));
        }
        let n = passes.len() as f64;
        let sum = passes
            .into_iter()
            .map(|l| softmax(l, 1))
            .reduce(|a, b| a + b)
            .expect("at least one network");
        Ok(Scores::Probabilities(sum / n))
    }
}

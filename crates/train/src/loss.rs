//! Losses with MMSegmentation's semantics (mmseg 1.2.2 unless noted).
//!
//! All take logits `[N, C, h, w]` (bilinearly resized to the label size first, as MMSeg's
//! `BaseDecodeHead.loss_by_feat`) and labels `Int [N, H, W]` where 255 means "ignore", and
//! return a one-element tensor.

use crate::model::blocks::resize;
use crate::model::SegOutput;
use burn::tensor::activation::{log_softmax, sigmoid, softmax};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use sweep_core::job::{DiceActivation, JobConfig, LossKind, LossSpec, LossTerm};

/// Label value of pixels that no loss or metric counts.
pub const IGNORE_INDEX: i64 = 255;
/// Smoothing of MMSeg 1.x's (sigmoid) Dice loss.
pub const DICE_EPS: f64 = 1e-3;
/// Focal loss defaults (MMSeg `FocalLoss`).
pub const FOCAL_GAMMA: f32 = 2.0;
pub const FOCAL_ALPHA: f32 = 0.5;

fn resized(logits: Tensor<4>, labels: &Tensor<3, Int>) -> Tensor<4> {
    let [_, h, w] = labels.dims();
    resize(logits, [h, w])
}

/// `[N, C, H, W]` one-hot of `labels`; a pixel whose label is not in `0..C` (ignored) is all zeros.
fn one_hot(labels: &Tensor<3, Int>, classes: usize) -> Tensor<4> {
    let planes = (0..classes)
        .map(|c| {
            labels
                .clone()
                .equal_elem(c as i64)
                .float()
                .unsqueeze_dim::<4>(1)
        })
        .collect();
    Tensor::cat(planes, 1)
}

fn valid_mask(labels: &Tensor<3, Int>) -> Tensor<3, Bool> {
    labels.clone().not_equal_elem(IGNORE_INDEX)
}

/// Per-class weights as `[1, C, 1, 1]`.
fn class_weights(w: &[f32], device: &Device) -> Tensor<4> {
    Tensor::<4>::from_data(TensorData::new(w.to_vec(), [1, w.len(), 1, 1]), device)
}

/// Cross-entropy, ignore 255, **mean over all N*H*W pixels including ignored ones** (MMSeg's
/// `avg_non_ignore=False`). With class weights each pixel's loss is multiplied by the weight
/// of its class and the mean is still over all pixels (MMSeg's `weight_reduce_loss`; PyTorch's
/// own `reduction='mean'` would divide by the sum of the weights instead).
pub fn cross_entropy(
    logits: Tensor<4>,
    labels: &Tensor<3, Int>,
    class_weight: Option<&[f32]>,
) -> Tensor<1> {
    let logits = resized(logits, labels);
    let [n, c, h, w] = logits.dims();
    let valid = valid_mask(labels);
    let safe = labels.clone().mask_fill(valid.clone().bool_not(), 0);
    let idx = safe.unsqueeze_dim::<4>(1);
    let logp = log_softmax(logits, 1);
    let mut nll = logp.clone().gather(1, idx.clone()).neg();
    if let Some(cw) = class_weight {
        let pixel_w = class_weights(cw, &logp.device())
            .expand([n, c, h, w])
            .gather(1, idx);
        nll = nll * pixel_w;
    }
    let nll = nll.reshape([n, h, w]) * valid.float();
    nll.mean()
}

/// MMSeg 1.x `DiceLoss` (use_sigmoid, naive_dice False): `p = sigmoid(logits)`, one-hot target
/// (an ignored pixel's target is all zeros but its `p` still counts), per image over all
/// classes and pixels `d = 2 sum(p t) / (sum(p^2) + eps + sum(t^2) + eps)`, loss = mean(1 - d).
pub fn dice_sigmoid(logits: Tensor<4>, labels: &Tensor<3, Int>) -> Tensor<1> {
    let logits = resized(logits, labels);
    let [n, c, _, _] = logits.dims();
    let p = sigmoid(logits);
    let t = one_hot(labels, c);
    let a = (p.clone() * t.clone()).reshape([n as i32, -1]).sum_dim(1);
    let b = p
        .powi_scalar(2)
        .reshape([n as i32, -1])
        .sum_dim(1)
        .add_scalar(DICE_EPS);
    let cc = t
        .powi_scalar(2)
        .reshape([n as i32, -1])
        .sum_dim(1)
        .add_scalar(DICE_EPS);
    let d = a.mul_scalar(2.0) / (b + cc);
    d.neg().add_scalar(1.0).mean()
}

/// MMSeg <= 1.0 `DiceLoss` (softmax, smooth 1, exponent 2): target one-hot of
/// `clamp(label, 0, C - 1)`, per class and image
/// `1 - (2 sum(p t valid) + 1) / (sum(p^2 + t^2) + 1)` (the denominator is not masked, as in
/// MMSeg), mean over images, times the class weight, summed over classes, divided by C.
pub fn dice_softmax(
    logits: Tensor<4>,
    labels: &Tensor<3, Int>,
    class_weight: Option<&[f32]>,
) -> Tensor<1> {
    let logits = resized(logits, labels);
    let [n, c, h, w] = logits.dims();
    let p = softmax(logits, 1);
    let clamped = labels.clone().clamp(0, c as i64 - 1);
    let t = one_hot(&clamped, c);
    let valid = valid_mask(labels).float().reshape([n, 1, h, w]);
    let num = (p.clone() * t.clone() * valid)
        .sum_dims(&[2, 3])
        .mul_scalar(2.0)
        .add_scalar(1.0); // [N, C, 1, 1]
    let den = (p.powi_scalar(2) + t.powi_scalar(2))
        .sum_dims(&[2, 3])
        .add_scalar(1.0);
    let mut per = (num / den).neg().add_scalar(1.0).mean_dim(0); // [1, C, 1, 1]
    if let Some(cw) = class_weight {
        per = per * class_weights(cw, &labels.device());
    }
    per.sum().div_scalar(c as f64)
}

/// MMSeg `FocalLoss` (use_sigmoid): one-hot target over C classes, per element
/// `BCEwithLogits * (alpha t + (1 - alpha)(1 - t)) * |t - sigmoid(x)|^gamma`, times the class
/// weight, ignored pixels zeroed, **mean over all N*C*H*W elements**.
pub fn focal(
    logits: Tensor<4>,
    labels: &Tensor<3, Int>,
    gamma: f32,
    alpha: f32,
    class_weight: Option<&[f32]>,
) -> Tensor<1> {
    let logits = resized(logits, labels);
    let [n, c, h, w] = logits.dims();
    let valid = valid_mask(labels);
    let t = one_hot(labels, c);
    let p = sigmoid(logits.clone());
    let one_minus_pt =
        (p.clone().neg().add_scalar(1.0)) * t.clone() + p * t.clone().neg().add_scalar(1.0);
    let focal_w = (t.clone().mul_scalar(alpha)
        + t.clone().neg().add_scalar(1.0).mul_scalar(1.0 - alpha))
        * one_minus_pt.powf_scalar(gamma);
    // Stable BCE with logits: max(x, 0) - x t + log(1 + exp(-|x|)).
    let bce = logits.clone().clamp_min(0.0) - logits.clone() * t + logits.abs().neg().exp().log1p();
    let mut loss = bce * focal_w * valid.float().reshape([n, 1, h, w]);
    if let Some(cw) = class_weight {
        let device = loss.device();
        loss = loss * class_weights(cw, &device);
    }
    loss.mean()
}

/// One term of a [`LossSpec`], times its weight.
pub fn loss_term(logits: Tensor<4>, labels: &Tensor<3, Int>, term: &LossTerm) -> Tensor<1> {
    let cw = term.class_weight.as_deref();
    let l = match term.kind {
        LossKind::Ce => cross_entropy(logits, labels, cw),
        LossKind::Dice => match term.activation.unwrap_or_default() {
            DiceActivation::Sigmoid => dice_sigmoid(logits, labels),
            DiceActivation::Softmax => dice_softmax(logits, labels, cw),
        },
        LossKind::Focal => focal(
            logits,
            labels,
            term.gamma.unwrap_or(FOCAL_GAMMA),
            term.alpha.unwrap_or(FOCAL_ALPHA),
            cw,
        ),
    };
    if (term.weight - 1.0).abs() < f32::EPSILON {
        l
    } else {
        l.mul_scalar(term.weight)
    }
}

/// Sum of a spec's weighted terms (MMSeg sums the losses of a `loss_decode` list).
pub fn spec_loss(logits: Tensor<4>, labels: &Tensor<3, Int>, spec: &LossSpec) -> Tensor<1> {
    let terms = spec.terms();
    let mut total: Option<Tensor<1>> = None;
    for t in &terms {
        let l = loss_term(logits.clone(), labels, t);
        total = Some(match total {
            Some(acc) => acc + l,
            None => l,
        });
    }
    total.expect("a loss spec has at least one term (JobConfig::validate)")
}

/// The training objective: decode-head loss + `aux_weight` x auxiliary-head loss (`aux_loss`,
/// or `loss` when absent).
pub fn total_loss(out: &SegOutput, labels: &Tensor<3, Int>, cfg: &JobConfig) -> Tensor<1> {
    let main = spec_loss(out.logits.clone(), labels, &cfg.loss);
    match &out.aux_logits {
        Some(aux) => {
            let spec = cfg.aux_loss.as_ref().unwrap_or(&cfg.loss);
            main + spec_loss(aux.clone(), labels, spec).mul_scalar(cfg.model.aux_weight)
        }
        None => main,
    }
}

/// Config checks the losses need beyond `JobConfig::validate`: class weights only where the
/// loss uses them (the sigmoid Dice of MMSeg 1.x has none).
pub fn check_spec(name: &str, spec: &LossSpec) -> Result<(), sweep_core::job::ConfigError> {
    for (i, t) in spec.terms().iter().enumerate() {
        let sigmoid_dice =
            t.kind == LossKind::Dice && t.activation.unwrap_or_default() == DiceActivation::Sigmoid;
        if sigmoid_dice && t.class_weight.is_some() {
            return Err(sweep_core::job::ConfigError::new(
                format!("{name}[{i}].class_weight"),
                "the sigmoid Dice loss (MMSeg 1.x) takes no class weights; use activation: softmax or drop class_weight",
            ));
        }
        if t.kind != LossKind::Focal && (t.gamma.is_some() || t.alpha.is_some()) {
            return Err(sweep_core::job::ConfigError::new(
                format!("{name}[{i}]"),
                "gamma / alpha only apply to the focal loss",
            ));
        }
        if t.kind != LossKind::Dice && t.activation.is_some() {
            return Err(sweep_core::job::ConfigError::new(
                format!("{name}[{i}].activation"),
                "activation only applies to the dice loss",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SegOutput;
    use burn::tensor::Device;

    const LN2: f64 = std::f64::consts::LN_2;

    fn logits(v: Vec<f32>, shape: [usize; 4]) -> Tensor<4> {
        Tensor::from_data(TensorData::new(v, shape), &Device::libtorch())
    }
    fn labels(v: Vec<i64>, shape: [usize; 3]) -> Tensor<3, Int> {
        Tensor::from_data(TensorData::new(v, shape), &Device::libtorch())
    }
    fn val(t: Tensor<1>) -> f64 {
        t.into_scalar::<f32>() as f64
    }
    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-5, "{a} != {b}");
    }

    /// Three pixels: logits (0, 0) label 0 -> ln 2; (1, 3) ignored -> 0; (2, 0) label 1 ->
    /// ln(1 + e^2) = 2.126928.
    fn ce_case() -> (Tensor<4>, Tensor<3, Int>) {
        (
            logits(vec![0., 1., 2., 0., 3., 0.], [1, 2, 1, 3]),
            labels(vec![0, 255, 1], [1, 1, 3]),
        )
    }

    #[test]
    fn cross_entropy_means_over_all_pixels_including_ignored() {
        let (x, y) = ce_case();
        close(val(cross_entropy(x, &y, None)), (LN2 + 2.126928) / 3.0); // 0.940025
    }

    #[test]
    fn weighted_cross_entropy_is_mmseg_not_pytorch_mean() {
        let (x, y) = ce_case();
        // MMSeg: (2 ln2 + 0.5 * 2.126928) / 3 = 0.816586 (PyTorch would give 0.979903).
        close(val(cross_entropy(x, &y, Some(&[2.0, 0.5]))), 0.816586);
    }

    #[test]
    fn sigmoid_dice_per_image_then_batch_mean() {
        // p = 0.5 everywhere. Image 1, labels [0, 1]: sum pt = 1, sum p^2 = 1, sum t^2 = 2,
        // d = 2 / 3.002, loss 0.333777. Image 2, labels [0, ignored]: sum pt = 0.5,
        // sum t^2 = 1, d = 1 / 2.002, loss 0.500500 (the ignored pixel's p still counts).
        let x = logits(vec![0.0; 8], [2, 2, 1, 2]);
        let y = labels(vec![0, 1, 0, 255], [2, 1, 2]);
        close(val(dice_sigmoid(x, &y)), (0.333777 + 0.500500) / 2.0);
    }

    #[test]
    fn softmax_dice_is_mmseg_0x() {
        // p = 0.5 for both classes. Labels [0, 1]: per class num = 2 * 0.5 + 1 = 2,
        // den = 0.5 + 1 + 1 = 2.5, loss 0.2 each, mean over classes 0.2.
        let x = logits(vec![0.0; 4], [1, 2, 1, 2]);
        close(
            val(dice_softmax(
                x.clone(),
                &labels(vec![0, 1], [1, 1, 2]),
                None,
            )),
            0.2,
        );
        // Labels [0, ignored]: the ignored pixel's target is clamp(255) = class 1, masked in the
        // numerator only: class 0 loss 0.2, class 1 num 1, den 2.5, loss 0.6 -> 0.4.
        let y = labels(vec![0, 255], [1, 1, 2]);
        close(val(dice_softmax(x.clone(), &y, None)), 0.4);
        // Class weights scale the per-class losses: (2 * 0.2 + 0.5 * 0.6) / 2 = 0.35.
        close(val(dice_softmax(x, &y, Some(&[2.0, 0.5]))), 0.35);
    }

    #[test]
    fn focal_means_over_all_elements() {
        // Pixel (0, 0) label 0: each class ln2 * 0.5 * 0.5^2 = 0.0866434; ignored pixel: 0.
        let x = logits(vec![0., 3., 0., -3.], [1, 2, 1, 2]);
        let y = labels(vec![0, 255], [1, 1, 2]);
        close(val(focal(x, &y, 2.0, 0.5, None)), 2.0 * 0.0866434 / 4.0);
        // Pixel (2, -1) label 1, alpha 0.25: class 0 ln(1+e^2) * 0.75 * sigmoid(2)^2 = 1.237556,
        // class 1 ln(1+e) * 0.25 * (1 - sigmoid(-1))^2 = 0.175468; mean 0.706512.
        let x = logits(vec![2., -1.], [1, 2, 1, 1]);
        close(
            val(focal(x, &labels(vec![1], [1, 1, 1]), 2.0, 0.25, None)),
            0.706512,
        );
    }

    #[test]
    fn logits_are_resized_to_the_label_size() {
        // 1x1 logits (0, ln 3): bilinear resize gives the same values on the 2x2 label grid,
        // CE of label 1 = -ln(3/4) = 0.287682 on every pixel.
        let x = logits(vec![0.0, 3f32.ln()], [1, 2, 1, 1]);
        close(
            val(cross_entropy(x, &labels(vec![1; 4], [1, 2, 2]), None)),
            0.287682,
        );
    }

    #[test]
    fn terms_and_aux_head_are_weighted() {
        let zeros = |h, w| logits(vec![0.0; 2 * h * w], [1, 2, h, w]);
        let y = labels(vec![0; 4], [1, 2, 2]);
        // ce + 3 * dice on p = 0.5, all class 0: dice d = 2 * 2 / (2.001 + 4.001).
        let dice = 1.0 - 4.0 / 6.002;
        let spec: LossSpec =
            serde_json::from_str(r#"[{"type": "ce"}, {"type": "dice", "weight": 3.0}]"#).unwrap();
        close(val(spec_loss(zeros(2, 2), &y, &spec)), LN2 + 3.0 * dice);

        let mut cfg = JobConfig::default();
        let out = SegOutput {
            logits: zeros(2, 2),
            aux_logits: Some(zeros(1, 1)),
        };
        close(val(total_loss(&out, &y, &cfg)), 1.4 * LN2);
        cfg.aux_loss = Some(LossSpec::Name(LossKind::Dice));
        close(val(total_loss(&out, &y, &cfg)), LN2 + 0.4 * dice);
    }

    #[test]
    fn misplaced_loss_options_are_rejected() {
        let spec: LossSpec =
            serde_json::from_str(r#"[{"type": "ce"}, {"type": "dice", "class_weight": [1, 2]}]"#)
                .unwrap();
        assert_eq!(
            check_spec("aux_loss", &spec).unwrap_err().field,
            "aux_loss[1].class_weight"
        );
        let spec: LossSpec = serde_json::from_str(r#"[{"type": "ce", "gamma": 1.0}]"#).unwrap();
        assert_eq!(check_spec("loss", &spec).unwrap_err().field, "loss[0]");
    }
}

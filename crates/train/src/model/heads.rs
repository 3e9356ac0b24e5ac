//! Decode heads of the study (MMSeg `FCNHead`, `ASPPHead`, `PSPHead`) and the auxiliary FCN head.
//!
//! One struct covers the three kinds so that parameter paths are MMSeg's own
//! (`decode_head.convs.0`, `decode_head.aspp_modules.j`, `decode_head.psp_modules.j`,
//! `decode_head.image_pool`, `decode_head.bottleneck`, `decode_head.conv_seg`); the fields a
//! kind does not use are empty.

use super::blocks::{dropout2d, resize, ConvModule};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::Initializer;
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Device, Tensor};
use rand_chacha::ChaCha8Rng;
use sweep_core::job::Head;

/// ASPP dilations of DeepLabV3 (the 1 branch is a 1x1 conv).
pub const ASPP_DILATIONS: [usize; 4] = [1, 12, 24, 36];
/// PSP pooling scales.
pub const PSP_POOL_SCALES: [usize; 4] = [1, 2, 3, 6];

/// Channels of a head's hidden layers. The study (base 64) uses 64 for FCN (decode and
/// auxiliary) and 16 for ASPP / PSP; smaller networks scale them with `base_channels / 64`
/// (at least 1), so the head keeps its proportion to the backbone.
pub fn head_channels(head: Head, base: usize) -> usize {
    match head {
        Head::Fcn => base.max(1),
        Head::Deeplabv3 | Head::Pspnet => (base / 4).max(1),
    }
}

#[derive(Module, Debug)]
pub struct DecodeHead {
    /// FCN: the one conv3x3 + BN + ReLU.
    pub convs: Vec<ConvModule>,
    /// ASPP: global average pool + conv1x1 (MMSeg key `image_pool.1`).
    pub image_pool: Option<ConvModule>,
    /// ASPP: one branch per dilation.
    pub aspp_modules: Vec<ConvModule>,
    /// PSP: adaptive pool to each scale + conv1x1 (MMSeg key `psp_modules.{j}.1`).
    pub psp_modules: Vec<ConvModule>,
    /// ASPP / PSP: conv3x3 over the concatenated branches.
    pub bottleneck: Option<ConvModule>,
    /// Classifier: conv1x1 with bias.
    pub conv_seg: Conv2d,
    #[module(skip)]
    pub kind: Head,
    #[module(skip)]
    pub dropout: f32,
}

impl DecodeHead {
    pub fn new(
        kind: Head,
        in_ch: usize,
        channels: usize,
        num_classes: usize,
        dropout: f32,
        device: &Device,
    ) -> Self {
        let mut head = DecodeHead {
            convs: Vec::new(),
            image_pool: None,
            aspp_modules: Vec::new(),
            psp_modules: Vec::new(),
            bottleneck: None,
            conv_seg: Conv2dConfig::new([channels, num_classes], [1, 1])
                .with_initializer(Initializer::Zeros)
                .init(device),
            kind,
            dropout,
        };
        match kind {
            Head::Fcn => head
                .convs
                .push(ConvModule::new(in_ch, channels, 3, 1, device)),
            Head::Deeplabv3 => {
                head.image_pool = Some(ConvModule::new(in_ch, channels, 1, 1, device));
                head.aspp_modules = ASPP_DILATIONS
                    .iter()
                    .map(|&d| {
                        ConvModule::new(in_ch, channels, if d == 1 { 1 } else { 3 }, d, device)
                    })
                    .collect();
                head.bottleneck = Some(ConvModule::new(
                    (ASPP_DILATIONS.len() + 1) * channels,
                    channels,
                    3,
                    1,
                    device,
                ));
            }
            Head::Pspnet => {
                head.psp_modules = PSP_POOL_SCALES
                    .iter()
                    .map(|_| ConvModule::new(in_ch, channels, 1, 1, device))
                    .collect();
                head.bottleneck = Some(ConvModule::new(
                    in_ch + PSP_POOL_SCALES.len() * channels,
                    channels,
                    3,
                    1,
                    device,
                ));
            }
        }
        head
    }

    /// Logits at the input feature's resolution. `rng` present: training (channel dropout
    /// before `conv_seg`); absent: inference.
    pub fn forward(&self, x: Tensor<4>, rng: Option<&mut ChaCha8Rng>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let feat = match self.kind {
            Head::Fcn => {
                let mut x = x;
                for c in &self.convs {
                    x = c.forward(x);
                }
                x
            }
            Head::Deeplabv3 => {
                let pool = self.image_pool.as_ref().expect("ASPP head has image_pool");
                let mut outs = vec![resize(
                    pool.forward(adaptive_avg_pool2d(x.clone(), [1, 1])),
                    [h, w],
                )];
                outs.extend(self.aspp_modules.iter().map(|m| m.forward(x.clone())));
                let bottleneck = self.bottleneck.as_ref().expect("ASPP head has bottleneck");
                bottleneck.forward(Tensor::cat(outs, 1))
            }
            Head::Pspnet => {
                let mut outs = vec![x.clone()];
                outs.extend(self.psp_modules.iter().zip(PSP_POOL_SCALES).map(|(m, s)| {
                    resize(m.forward(adaptive_avg_pool2d(x.clone(), [s, s])), [h, w])
                }));
                let bottleneck = self.bottleneck.as_ref().expect("PSP head has bottleneck");
                bottleneck.forward(Tensor::cat(outs, 1))
            }
        };
        let feat = dropout2d(feat, self.dropout, rng);
        self.conv_seg.forward(feat)
    }
}

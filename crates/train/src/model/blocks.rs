//! Building blocks of UNet-S5-D16 and its heads.
//!
//! [`ConvModule`] (conv + batch norm + ReLU, MMCV's `ConvModule`) is the one place where the
//! network calls conv2d and batch norm; it routes them to libtorch's kernels
//! ([`crate::ops`]) without the rest of the model knowing.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::ops;

/// conv (no bias) + BatchNorm + ReLU. Field names follow MMCV (`conv`, `bn`), so state-dict keys
/// map one to one (`bn.gamma`/`bn.beta` are PyTorch's `bn.weight`/`bn.bias`).
#[derive(Module, Debug)]
pub struct ConvModule {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl ConvModule {
    /// `kernel` x `kernel` convolution with "same" padding (`dilation * (kernel - 1) / 2`).
    ///
    /// Weights start at zero; [`crate::model::init_weights`] fills them (seeded, on
    /// the host) so that initialisation does not depend on the device's RNG.
    pub fn new(
        in_ch: usize,
        out_ch: usize,
        kernel: usize,
        dilation: usize,
        device: &Device,
    ) -> Self {
        let pad = dilation * (kernel - 1) / 2;
        ConvModule {
            conv: Conv2dConfig::new([in_ch, out_ch], [kernel, kernel])
                .with_dilation([dilation, dilation])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_bias(false)
                .with_initializer(Initializer::Zeros)
                .init(device),
            // PyTorch's defaults: eps 1e-5, momentum 0.1.
            bn: BatchNormConfig::new(out_ch).init(device),
        }
    }

    /// conv -> BN -> ReLU with PyTorch's batch-norm semantics: batch statistics while training
    /// (running variance updated with the *unbiased* batch variance, as `torch.nn.BatchNorm2d`;
    /// burn's own `BatchNorm` uses the biased one), running statistics otherwise, and in eval or
    /// when the BN is frozen.
    ///
    /// On libtorch this is one fused op on libtorch's kernels, forward and backward
    /// ([`ops::conv_bn_relu_block`]); elsewhere, or with `torch_kernels` off, burn's own ops.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        ops::conv_bn_relu_module(&self.conv, &self.bn, x, ops::RunningVariance::Unbiased)
    }
}

/// MMSeg's `BasicConvBlock`: `num_convs` x [conv3x3 + BN + ReLU].
#[derive(Module, Debug)]
pub struct BasicConvBlock {
    pub convs: Vec<ConvModule>,
}

impl BasicConvBlock {
    pub fn new(in_ch: usize, out_ch: usize, num_convs: usize, device: &Device) -> Self {
        BasicConvBlock {
            convs: (0..num_convs)
                .map(|i| ConvModule::new(if i == 0 { in_ch } else { out_ch }, out_ch, 3, 1, device))
                .collect(),
        }
    }

    pub fn forward(&self, mut x: Tensor<4>) -> Tensor<4> {
        for c in &self.convs {
            x = c.forward(x);
        }
        x
    }
}

/// MMSeg's `UpConvBlock` with `InterpConv` upsampling: bilinear x2 (align_corners false), then
/// conv1x1 + BN + ReLU down to the skip's channels, concat `[skip, up]`, then 2 x conv3x3.
#[derive(Module, Debug)]
pub struct UpConvBlock {
    pub conv_block: BasicConvBlock,
    /// MMSeg key: `upsample.interp_upsample.1` (index 0 is the parameterless `Upsample`).
    pub upsample: ConvModule,
}

impl UpConvBlock {
    pub fn new(in_ch: usize, skip_ch: usize, out_ch: usize, device: &Device) -> Self {
        UpConvBlock {
            conv_block: BasicConvBlock::new(2 * skip_ch, out_ch, 2, device),
            upsample: ConvModule::new(in_ch, skip_ch, 1, 1, device),
        }
    }

    pub fn forward(&self, skip: Tensor<4>, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let up = self.upsample.forward(resize(x, [2 * h, 2 * w]));
        self.conv_block.forward(Tensor::cat(vec![skip, up], 1))
    }
}

/// Bilinear resize with `align_corners = false` (PyTorch's and MMSeg's `resize`). A no-op when
/// the size already matches.
pub fn resize(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    if [h, w] == size {
        return x;
    }
    interpolate(
        x,
        InterpolateOptions::new(InterpolateMode::Bilinear)
            .with_align_corners(false)
            .with_output_size(size),
    )
}

/// Channel dropout (`torch.nn.Dropout2d`, which MMSeg's decode heads use): each (sample,
/// channel) plane is zeroed with probability `p`, survivors scaled by `1 / (1 - p)`.
///
/// The mask is drawn on the host from the caller's seeded RNG, so a training step's dropout is a
/// pure function of (seed, iteration) on every device, and resuming needs no RNG replay.
pub fn dropout2d(x: Tensor<4>, p: f32, rng: Option<&mut ChaCha8Rng>) -> Tensor<4> {
    let Some(rng) = rng else { return x };
    if p <= 0.0 {
        return x;
    }
    let [n, c, _, _] = x.dims();
    let scale = 1.0 / (1.0 - p);
    let mask: Vec<f32> = (0..n * c)
        .map(|_| if rng.random::<f32>() < p { 0.0 } else { scale })
        .collect();
    let device = x.device();
    let mask = Tensor::<4>::from_data(TensorData::new(mask, [n, c, 1, 1]), &device);
    x * mask
}

/// A seeded RNG for one purpose (`stream`) of one iteration: a pure function of
/// `(seed, stream, iteration)`.
pub fn rng_for(seed: u64, stream: u64, iteration: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(mix(mix(seed) ^ stream) ^ iteration))
}

/// splitmix64's finaliser: decorrelates nearby seeds.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

//! UNet-S5-D16 (MMSeg `UNet` with its default arguments: 5 stages, 4 downsamplings).

use super::blocks::{BasicConvBlock, UpConvBlock};
use burn::module::Module;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor};

/// Number of encoder stages; stages 1..4 each halve the resolution.
pub const NUM_STAGES: usize = 5;
/// Input height and width must be multiples of this.
pub const DIVISOR: usize = 16;

/// MMSeg keys: `backbone.encoder.{i}.{0 if i == 0 else 1}.convs.{j}` (stages 1..4 are
/// `Sequential(MaxPool2d, BasicConvBlock)`), `backbone.decoder.{k}.conv_block.convs.{j}`,
/// `backbone.decoder.{k}.upsample.interp_upsample.1`. See [`super::mmseg_key`].
#[derive(Module, Debug)]
pub struct UNet {
    /// Stage `i` has `base * 2^i` channels; stages 1..4 start with a 2x2 max pool.
    pub encoder: Vec<BasicConvBlock>,
    /// MMSeg's order: `decoder[k]` joins stage `k + 1` into the skip of stage `k`, so
    /// `decoder[3]` runs first (at 1/8 resolution) and `decoder[0]` last (full resolution).
    pub decoder: Vec<UpConvBlock>,
}

impl UNet {
    pub fn new(in_channels: usize, base: usize, device: &Device) -> Self {
        let ch = |i: usize| base << i;
        let encoder = (0..NUM_STAGES)
            .map(|i| {
                BasicConvBlock::new(
                    if i == 0 { in_channels } else { ch(i - 1) },
                    ch(i),
                    2,
                    device,
                )
            })
            .collect();
        let decoder = (1..NUM_STAGES)
            .map(|i| UpConvBlock::new(ch(i), ch(i - 1), ch(i - 1), device))
            .collect();
        UNet { encoder, decoder }
    }

    /// Channels of the decoder outputs `dec_outs[0..=4]` (MMSeg's `in_index`): bottleneck first,
    /// full resolution last.
    pub fn out_channels(base: usize) -> [usize; NUM_STAGES] {
        [base * 16, base * 8, base * 4, base * 2, base]
    }

    /// The five decoder outputs, coarsest first: `dec_outs[4]` is full resolution with `base`
    /// channels (decode heads), `dec_outs[3]` half resolution with `2 * base` (auxiliary head).
    ///
    /// Panics when the input's height or width is not a multiple of 16.
    pub fn forward(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        let [_, _, h, w] = x.dims();
        assert!(
            h % DIVISOR == 0 && w % DIVISOR == 0 && h > 0 && w > 0,
            "UNet-S5-D16 input is {h}x{w}: height and width must be positive multiples of {DIVISOR} \
             (the encoder halves the resolution 4 times)"
        );
        let mut skips = Vec::with_capacity(NUM_STAGES);
        let mut x = x;
        for (i, stage) in self.encoder.iter().enumerate() {
            if i > 0 {
                x = max_pool2d(x, MaxPoolOptions::new([2, 2]));
            }
            x = stage.forward(x);
            skips.push(x.clone());
        }
        let mut outs = Vec::with_capacity(NUM_STAGES);
        outs.push(x.clone());
        for k in (0..self.decoder.len()).rev() {
            x = self.decoder[k].forward(skips[k].clone(), x);
            outs.push(x.clone());
        }
        outs
    }
}
